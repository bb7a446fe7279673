//! How `databay run` stops on SIGTERM: gracefully, flushing what buffers
//! hold, within `shutdown_grace` even while a transfer forced over the
//! admin endpoint hangs; and at once, with exit status 130, on a second
//! signal, even with an admin request pending. Stuck transfers read a FIFO
//! no one writes.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread::{self};
use std::time::{Duration, Instant};

use crate::support::*;

/// Records held by a buffer that never fills reach the outlet on SIGTERM.
#[test]
fn sigterm_flushes_what_a_buffer_holds() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("held.toml"),
        r#"
[daemon]
shutdown_grace = "10s"

[admin]
listen = "127.0.0.1:0"

[[link]]
name = "held"
every = "100ms"

  [[link.inlet]]
  type = "random_int"
  min = 1000
  max = 1999

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/held.txt"
"#,
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "held.toml"]);
    let addr = daemon.admin_addr();
    let ok = wait_transfers(addr, "held", 10);
    let out = dir.path().join("out/held.txt");
    let before = fs::read_to_string(&out).unwrap_or_default();
    assert!(before.is_empty(), "the buffer released early: {before}");

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
    let written = fs::read_to_string(&out).expect("the buffer was flushed to the file");
    let values: Vec<i64> = written
        .lines()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        values.len() as u64 >= ok.max(10),
        "{} lines after {ok} transfers:\n{written}",
        values.len()
    );
    assert!(
        values.iter().all(|v| (1000..=1999).contains(v)),
        "{written}"
    );
}

/// A transfer that never ends (its inlet opens a FIFO no one writes) holds
/// up the graceful stop; a second SIGTERM exits at once with 130.
#[test]
fn second_sigterm_forces_exit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("never.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    fs::write(
        dir.path().join("stuck.toml"),
        r#"
[daemon]
shutdown_grace = "1h"

[admin]
enabled = false

[[link]]
name = "stuck"
every = "1s"
inlet_timeout = "1h"

  [[link.inlet]]
  type = "file"
  mode = "file"
  path = "never.fifo"

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--log-level", "debug", "run", "stuck.toml"]);
    daemon.wait_log("the first transfer", |l| {
        l["message"] == "transfer" && l["span"]["update"] == "stuck.0"
    });
    daemon.signal("TERM");
    daemon.wait_count("shutting down", 1);
    // The graceful stop waits for the stuck transfer.
    thread::sleep(Duration::from_secs(1));
    assert!(daemon.running(), "exited although a transfer was in flight");
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "stderr:\n{}", daemon.stderr());
    assert_eq!(daemon.count_logs("second signal"), 1, "{}", daemon.stderr());
}

/// A daemon whose only link reads a FIFO no one writes, with a transfer
/// forced over the admin endpoint hanging on it (the HTTP request pending).
fn daemon_with_a_hung_forced_transfer(dir: &Path, grace: &str) -> Daemon {
    let made = Command::new("mkfifo")
        .arg(dir.join("never.fifo"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    fs::write(
        dir.join("stuck.toml"),
        r#"
[daemon]
shutdown_grace = "GRACE"

[admin]
listen = "127.0.0.1:0"

[[link]]
name = "stuck"
every = "1h"
immediate_transfer = false

  [[link.inlet]]
  type = "file"
  mode = "file"
  path = "never.fifo"

  [[link.outlet]]
  type = "null"
"#
        .replace("GRACE", grace),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir, &["run", "stuck.toml"]);
    let addr = daemon.admin_addr();
    thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, PATIENCE) else {
            return;
        };
        let _ = write!(
            stream,
            "POST /links/stuck/transfer HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = stream.read_to_end(&mut Vec::new());
    });
    daemon.wait_count("transfer requested over the admin endpoint", 1);
    let state = within(PATIENCE, || {
        let l = links(addr).remove("stuck")?;
        (l["state"] == "transferring").then_some(l)
    });
    assert!(state.is_some(), "the forced transfer is not in flight");
    daemon
}

/// Waits up to `limit` for the daemon to exit; whether it did.
fn exits_within(daemon: &mut Daemon, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while daemon.running() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    !daemon.running()
}

/// SIGTERM while a transfer forced over the admin endpoint hangs: the
/// graceful stop must still be bounded by `shutdown_grace`, as it is for
/// scheduled transfers. Today the planner waits for the forced transfer
/// forever (the flush and `on_shutdown` wait for locks the hung transfer
/// holds), and the admin server's graceful stop waits for the pending
/// request.
#[test]
fn sigterm_is_bounded_by_the_grace_even_during_a_forced_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon_with_a_hung_forced_transfer(dir.path(), "1s");
    daemon.signal("TERM");
    let exited = exits_within(&mut daemon, Duration::from_secs(15));
    assert!(
        exited,
        "still running 15 s after SIGTERM with shutdown_grace = 1s; stderr:\n{}",
        daemon.stderr()
    );
}

/// README: "SIGINT/SIGTERM: graceful stop, again: force". The second signal
/// is seen ("second signal: exiting without waiting") but the process does
/// not exit: `run` still awaits the admin server's graceful shutdown, which
/// waits for the pending HTTP request, which waits for the hung transfer.
#[test]
fn a_second_sigterm_exits_even_with_an_admin_request_pending() {
    let dir = tempfile::tempdir().unwrap();
    // A long grace: the first signal's shutdown is still waiting.
    let mut daemon = daemon_with_a_hung_forced_transfer(dir.path(), "60s");
    daemon.signal("TERM");
    daemon.wait_count("shutting down", 1);
    thread::sleep(Duration::from_secs(2));
    daemon.signal("TERM");
    daemon.wait_count("second signal", 1);
    let exited = exits_within(&mut daemon, Duration::from_secs(15));
    let stderr = daemon.stderr();
    assert!(
        exited,
        "still running 15 s after the second SIGTERM; stderr:\n{stderr}"
    );
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(130), "{stderr}");
}
