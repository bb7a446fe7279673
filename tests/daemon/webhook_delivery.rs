//! The `http_server` inlet through the daemon: a sender answered `200` has
//! its records in the outlet, and one still waiting when the daemon stops
//! is answered `503` with `Retry-After` and delivered once it sends again
//! to the restarted daemon. Nothing a sender was told is delivered is
//! lost at shutdown.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const CONFIG: &str = r#"
[daemon]
shutdown_grace = "10s"

[admin]
listen = "127.0.0.1:0"

[[link]]
name = "hooks"
every = "1h"
immediate_transfer = false

  [[link.inlet]]
  type = "http_server"
  address = "127.0.0.1:0"
  path = "/hooks"

  [[link.outlet]]
  type = "file"
  path = "out/hooks.ndjson"
"#;

/// Where the daemon's webhook inlet listens, from its log.
fn webhook_addr(daemon: &mut Daemon) -> SocketAddr {
    let line = daemon.wait_log("`http_server listening`", |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("http_server listening on"))
    });
    line["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"))
}

/// POSTs `body` on a thread of its own: the answer waits for a commit.
fn send(addr: SocketAddr, body: Value) -> JoinHandle<std::io::Result<Reply>> {
    thread::spawn(move || {
        try_request(
            addr,
            "POST",
            "/hooks",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        )
    })
}

/// Forces transfers of `hooks` until the request `sent` is answered.
fn transfer_until_answered(admin: SocketAddr, sent: JoinHandle<std::io::Result<Reply>>) -> Reply {
    eventually("an answer to the webhook", || {
        let forced = http(admin, "POST", "/links/hooks/transfer");
        assert!(forced.status < 300, "{}: {}", forced.status, forced.body);
        sent.is_finished().then_some(())
    });
    match sent.join() {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("the webhook request failed: {e}"),
        Err(_) => panic!("the sending thread panicked"),
    }
}

fn delivered(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn a_webhook_answered_200_is_delivered_and_one_waiting_at_shutdown_is_told_to_resend() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hooks.toml"), CONFIG).unwrap();
    let out = dir.path().join("out/hooks.ndjson");

    let mut daemon = Daemon::start(dir.path(), &["run", "hooks.toml"]);
    let admin = daemon.admin_addr();
    let hook = webhook_addr(&mut daemon);
    let first = transfer_until_answered(admin, send(hook, json!({"id": 1})));
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json(), json!({"delivered": 1}));
    assert_eq!(delivered(&out), [json!({"id": 1})], "answered 200: written");

    // No transfer comes before the stop: the sender is still waiting.
    let waiting = send(hook, json!({"id": 2}));
    thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished(), "answered before any transfer");
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
    let told = match waiting.join() {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("no answer to the waiting request: {e}"),
        Err(_) => panic!("the sending thread panicked"),
    };
    assert_eq!(told.status, 503, "{}", told.body);
    assert!(told.headers.contains("retry-after: 1"), "{}", told.headers);
    assert_eq!(
        delivered(&out),
        [json!({"id": 1})],
        "what was not answered 200 is not claimed delivered"
    );

    // The sender sends it again, to the restarted daemon.
    let mut daemon = Daemon::start(dir.path(), &["run", "hooks.toml"]);
    let admin = daemon.admin_addr();
    let hook = webhook_addr(&mut daemon);
    let again = transfer_until_answered(admin, send(hook, json!({"id": 2})));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(delivered(&out), [json!({"id": 1}), json!({"id": 2})]);
    assert_eq!(daemon.stop(), Some(0), "stderr:\n{}", daemon.stderr());
}
