//! Helpers for tests of MQTT components against a real broker: its
//! address, a connection check that fails the test naming Mosquitto and
//! how to start it, topics no other test uses, and a broker of a test's
//! own that requires a login.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ConnectionOptions, Connector};
use crate::testing::{OwnedServer, TcpProxy, require_program};

/// The command that starts the local Mosquitto broker.
pub const START_COMMAND: &str = "mosquitto -d -c /etc/mosquitto/mosquitto.conf";

/// The environment variable naming another broker (`host:port`).
pub const ADDR_VAR: &str = "DATABAY_TEST_MQTT_ADDR";

/// The test broker's host and port: `$DATABAY_TEST_MQTT_ADDR`, or
/// `127.0.0.1:1883`.
pub fn addr() -> (String, u16) {
    let addr = std::env::var(ADDR_VAR).unwrap_or_else(|_| "127.0.0.1:1883".into());
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(1883)),
        None => (addr, 1883),
    }
}

/// A connector to the test broker with client ID `client_id`.
pub fn connector(client_id: &str) -> Connector {
    let (host, port) = addr();
    match (ConnectionOptions {
        host: Some(host),
        port: Some(port),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector(client_id)
    {
        Ok(c) => c,
        Err(e) => panic!("{ADDR_VAR}: {e}"),
    }
}

/// Panics, naming Mosquitto and the command that starts it, unless the
/// test broker accepts a connection.
pub async fn require_broker() {
    if let Err(e) = connector(&unique_name("probe")).connect(false, 1).await {
        panic!(
            "an MQTT broker (Mosquitto) is needed for this test and is not reachable: {e}\n\
             start it with `{START_COMMAND}` (or `bash .ci/services`), \
             or point {ADDR_VAR} at a broker"
        );
    }
}

/// A name no other test uses, fit for a topic level or a client ID:
/// `databay_test_<tag>_<unique>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "databay_test_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connector for `client_id` to the test broker through a [`TcpProxy`]
/// of its own, to take the broker away from one test and bring it back;
/// `clean_session = false`, so the broker keeps the session meanwhile.
pub async fn proxied(client_id: &str) -> (TcpProxy, Connector) {
    let (host, port) = addr();
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("{ADDR_VAR}: cannot resolve {host}:{port}"));
    let proxy = TcpProxy::start(upstream)
        .await
        .unwrap_or_else(|e| panic!("a proxy in front of {ADDR_VAR}: {e}"));
    match (ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(proxy.port()),
        clean_session: Some(false),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector(client_id)
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{ADDR_VAR} through a proxy: {e}"),
    }
}

/// A Mosquitto broker of the test's own on a free port of 127.0.0.1 that
/// takes only `user` with `password` (`allow_anonymous false`, a password
/// file made by `mosquitto_passwd`); killed when dropped. Panics naming
/// the program and how to install it when one is missing.
pub async fn broker_with_login(user: &str, password: &str) -> OwnedServer {
    let mosquitto = require_program("mosquitto", "mosquitto");
    let passwd = require_program("mosquitto_passwd", "mosquitto");
    let dir =
        OwnedServer::dir("mosquitto").unwrap_or_else(|e| panic!("a directory for Mosquitto: {e}"));
    let passwords = dir.join("passwords");
    let made = std::process::Command::new(&passwd)
        .arg("-c")
        .arg("-b")
        .arg(&passwords)
        .args([user, password])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", passwd.display()));
    assert!(
        made.status.success(),
        "{} failed: {}",
        passwd.display(),
        String::from_utf8_lossy(&made.stderr)
    );
    let config = dir.join("mosquitto.conf");
    OwnedServer::start(&mosquitto, dir, move |port| {
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             persistence false\nlog_dest stderr\n",
            passwords.display()
        );
        if let Err(e) = std::fs::write(&config, text) {
            panic!("writing {}: {e}", config.display());
        }
        vec!["-c".to_owned(), config.display().to_string()]
    })
    .await
}

/// A connector for `client_id` to `broker` (see [`broker_with_login`]) as
/// `user` with `password`.
pub fn login_connector(
    broker: &OwnedServer,
    client_id: &str,
    user: &str,
    password: &str,
) -> Connector {
    match (ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(broker.port()),
        username: Some(user.to_owned()),
        password: Some(crate::Secret::new(password.to_owned())),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector(client_id)
    {
        Ok(c) => c,
        Err(e) => panic!("a connector to the test's own Mosquitto: {e}"),
    }
}
