//! Helpers for tests of NATS components against a real server (with
//! JetStream): its URL, a client that fails the test naming NATS and how
//! to start it, subjects and stream names no other test uses, and a
//! server of a test's own that requires a login.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::Client;

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::{OwnedServer, TcpProxy, require_program};

/// The command that starts the local NATS server with JetStream.
pub const START_COMMAND: &str = "start-stop-daemon --start --oknodo --background \
     --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
     -l /var/log/nats-server.log";

/// The environment variable naming another server for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_NATS_URL";

/// The test server: `$DATABAY_TEST_NATS_URL`, or `nats://127.0.0.1:4222`.
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A connector to the test server.
pub fn connector() -> Connector {
    match (ConnectionOptions {
        url: Some(Secret::new(url())),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => c,
        Err(e) => panic!("{URL_VAR}: {e}"),
    }
}

/// A client of the test server. Panics, naming NATS and the command that
/// starts it, when the server cannot be reached.
pub async fn client() -> Client {
    match connector().connect().await {
        Ok(client) => client,
        Err(e) => panic!(
            "NATS (with JetStream) is needed for this test and is not reachable: {e}\n\
             start it with `{START_COMMAND}` (or `bash .ci/services`), \
             or point {URL_VAR} at a server"
        ),
    }
}

/// A name no other test uses, fit for a subject token and a stream or
/// consumer name: `databay_test_<tag>_<unique>`.
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

/// A connector to the test server through a [`TcpProxy`] of its own, to
/// take the server away from one test and bring it back.
pub async fn proxied() -> (TcpProxy, Connector) {
    let (proxy, url) = TcpProxy::for_url(&url())
        .await
        .unwrap_or_else(|e| panic!("a proxy in front of {URL_VAR}: {e}"));
    match (ConnectionOptions {
        url: Some(Secret::new(url)),
        timeout: Some(std::time::Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{URL_VAR} through a proxy: {e}"),
    }
}

/// A NATS server of the test's own on a free port of 127.0.0.1 that
/// takes only `user` with `password`; killed when dropped. Panics naming
/// `nats-server` and how to install it when it is missing.
pub async fn server_with_login(user: &str, password: &str) -> OwnedServer {
    let program = require_program("nats-server", "nats-server");
    let dir = OwnedServer::dir("nats").unwrap_or_else(|e| panic!("a directory for NATS: {e}"));
    let (user, password) = (user.to_owned(), password.to_owned());
    OwnedServer::start(&program, dir, move |port| {
        [
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--user",
            &user,
            "--pass",
            &password,
        ]
        .map(str::to_owned)
        .to_vec()
    })
    .await
}

/// A connector to `server` (see [`server_with_login`]) as `user` with
/// `password`.
pub fn login_connector(server: &OwnedServer, user: &str, password: &str) -> Connector {
    match (ConnectionOptions {
        url: Some(Secret::new(format!("nats://127.0.0.1:{}", server.port()))),
        user: Some(user.to_owned()),
        password: Some(Secret::new(password.to_owned())),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => c,
        Err(e) => panic!("a connector to the test's own NATS server: {e}"),
    }
}
