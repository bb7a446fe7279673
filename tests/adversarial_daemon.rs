//! Adversarial end-to-end tests of the daemon: schedules and buffers with
//! extreme durations, reloads (SIGHUP) that replace links holding records or
//! whose replacement cannot start, and `once`.
//!
//! Each daemon runs in its own temp dir, its admin endpoint on an ephemeral
//! port, and is killed if the test fails.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn databay() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_databay"));
    for var in ["RUST_LOG", "DATABAY_LOG_FORMAT", "DATABAY_LOG_LEVEL"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn collect(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let handle = thread::spawn(move || {
        let mut reader = std::io::BufReader::new(pipe);
        let mut line = String::new();
        while let Ok(n) = std::io::BufRead::read_line(&mut reader, &mut line) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    (text, handle)
}

/// A running `databay`, killed when dropped.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// `databay --log-format json ARGS` in `dir`.
    fn start(dir: &Path, args: &[&str]) -> Daemon {
        let mut cmd = databay();
        cmd.args(["--log-format", "json"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start databay");
        let (stderr, reader) = collect(child.stderr.take().unwrap());
        Daemon {
            child,
            stderr,
            readers: vec![reader],
            status: None,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn logs(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn count_logs(&self, message: &str) -> usize {
        self.logs()
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .count()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while self.running() {
            assert!(
                Instant::now() < deadline,
                "databay did not exit within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.status.expect("exited")
    }

    fn wait_count(&mut self, message: &str, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.count_logs(message) < n {
            assert!(
                self.running(),
                "databay exited while waiting for `{message}` #{n}; stderr:\n{}",
                self.stderr()
            );
            assert!(
                Instant::now() < deadline,
                "no `{message}` #{n} within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn admin_addr(&mut self) -> SocketAddr {
        self.wait_count("admin endpoint listening", 1);
        let line = self
            .logs()
            .into_iter()
            .find(|l| l["message"] == "admin endpoint listening")
            .unwrap();
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
    }

    /// TERM, then the exit code.
    fn stop(&mut self) -> Option<i32> {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(20)).code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` on the admin endpoint: the status and the JSON body.
fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect to admin");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// `/links`, by name.
fn links(addr: SocketAddr) -> BTreeMap<String, Value> {
    let (status, body) = get(addr, "/links");
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("an array")
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_owned(), l.clone()))
        .collect()
}

fn transfers_ok(link: &Value) -> u64 {
    link["counters"]["transfers_ok"].as_u64().unwrap_or(0)
}

/// Polls until `f` gives a value, or `limit` passes.
fn within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(25));
    }
}

fn wait_transfers(addr: SocketAddr, link: &str, n: u64) -> u64 {
    within(PATIENCE, || {
        let ok = links(addr).get(link).map(transfers_ok)?;
        (ok >= n).then_some(ok)
    })
    .unwrap_or_else(|| panic!("no {n} transfers of `{link}` within {PATIENCE:?}"))
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

// --- extreme durations ---------------------------------------------------------

/// `every = "500000000000y"` and a buffer `time` of the same size are
/// accepted by `validate` (humantime parses them) but overflow `Instant`
/// arithmetic in the engine: the link's timer task panics, so the link
/// never makes even its immediate transfer, while `/links` still reports it
/// scheduled and the daemon carries on as if all were well.
#[test]
fn huge_durations_do_not_kill_links() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("huge.toml"),
        r#"
[admin]
listen = "127.0.0.1:0"

[[link]]
name = "rare"
every = "500000000000y"

  [[link.inlet]]
  type = "random_int"

  [[link.outlet]]
  type = "null"

[[link]]
name = "patient"
every = "100ms"

  [[link.inlet]]
  type = "random_int"

  [[link.processor]]
  type = "buffer"
  count = 3
  time = "500000000000y"

  [[link.outlet]]
  type = "file"
  path = "out/patient.txt"
"#,
    )
    .unwrap();
    let validated = databay()
        .args(["validate", "huge.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "huge.toml"]);
    let addr = daemon.admin_addr();
    let progress = within(Duration::from_secs(10), || {
        let now = links(addr);
        let (rare, patient) = (transfers_ok(&now["rare"]), transfers_ok(&now["patient"]));
        (rare >= 1 && patient >= 5).then_some((rare, patient))
    });
    let stderr = daemon.stderr();
    let now = links(addr);
    assert_eq!(daemon.stop(), Some(0));
    if !validated.status.success() {
        // Refusing the durations up front is a fix too.
        return;
    }
    assert!(
        progress.is_some(),
        "rare: {} transfers, patient: {} transfers; stderr:\n{stderr}",
        transfers_ok(&now["rare"]),
        transfers_ok(&now["patient"]),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(lines(&dir.path().join("out/patient.txt")).len() >= 3);
}

// --- reload ----------------------------------------------------------------------

fn buffered_link(name: &str, max: u32) -> String {
    format!(
        r#"
[[link]]
name = "{name}"
every = "50ms"

  [[link.inlet]]
  type = "random_int"
  min = 1000
  max = {max}

  [[link.processor]]
  type = "buffer"
  count = 100000

  [[link.outlet]]
  type = "file"
  path = "out/{name}.txt"
"#
    )
}

fn config(links: &[String]) -> String {
    let mut text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    for l in links {
        text.push_str(l);
    }
    text
}

/// A reload flushes what the buffer of a replaced link and of a removed
/// link holds (nothing lost), while an unchanged link keeps its buffer.
#[test]
fn reload_flushes_the_buffers_of_replaced_and_removed_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reload.toml");
    fs::write(
        &path,
        config(&[
            buffered_link("changed", 1999),
            buffered_link("removed", 1999),
            buffered_link("kept", 1999),
        ]),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    let before = ["changed", "removed", "kept"].map(|l| wait_transfers(addr, l, 5));
    for name in ["changed", "removed", "kept"] {
        assert!(lines(&dir.path().join(format!("out/{name}.txt"))).is_empty());
    }

    fs::write(
        &path,
        config(&[buffered_link("changed", 1998), buffered_link("kept", 1999)]),
    )
    .unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    let changed = lines(&dir.path().join("out/changed.txt"));
    let removed = lines(&dir.path().join("out/removed.txt"));
    assert!(
        changed.len() as u64 >= before[0],
        "{} lines after {} transfers",
        changed.len(),
        before[0]
    );
    assert!(removed.len() as u64 >= before[1]);
    assert!(
        lines(&dir.path().join("out/kept.txt")).is_empty(),
        "the unchanged link was flushed"
    );
    let now = links(addr);
    assert_eq!(now.keys().collect::<Vec<_>>(), ["changed", "kept"]);
    assert!(transfers_ok(&now["kept"]) >= before[2]);

    let ok = wait_transfers(addr, "changed", 3);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
    let changed_after = lines(&dir.path().join("out/changed.txt"));
    assert!(changed_after.len() as u64 >= changed.len() as u64 + ok);
    assert!(!lines(&dir.path().join("out/kept.txt")).is_empty());
}

/// A reload whose new version of a link cannot start (its input file is
/// missing, an `on_start` error that `validate` cannot see): the running
/// version was already stopped, so the link disappears until a later
/// reload succeeds. The README promises that a broken new config leaves the
/// old one running; here the old link should be kept (or restarted).
#[test]
fn reload_keeps_a_link_whose_replacement_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reload.toml");
    let link = |inlet: &str| {
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[link]]\nname = \"A\"\nevery = \"50ms\"\n\n{inlet}\n\n  [[link.outlet]]\n  type = \"null\"\n"
        )
    };
    fs::write(
        &path,
        link("  [[link.inlet]]\n  type = \"random_int\"\n  max = 10"),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    wait_transfers(addr, "A", 3);

    fs::write(
        &path,
        link("  [[link.inlet]]\n  type = \"file\"\n  path = \"missing.ndjson\""),
    )
    .unwrap();
    let validated = databay()
        .args(["validate", "reload.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "validate already refuses it: {}",
        String::from_utf8_lossy(&validated.stderr)
    );
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    assert_eq!(
        daemon.count_logs("cannot start the link"),
        1,
        "{}",
        daemon.stderr()
    );
    let now = links(addr);
    let served = now.contains_key("A");
    let stderr = daemon.stderr();
    assert_eq!(daemon.stop(), Some(0));
    assert!(
        served,
        "link A is gone: neither the old nor the new version runs; stderr:\n{stderr}"
    );
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

// --- once ----------------------------------------------------------------------

/// `once`: every link runs once even when another fails to start; buffers
/// are flushed; the exit status reports the failure.
#[test]
fn once_runs_every_link_flushes_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("once.toml"),
        r#"
[[link]]
name = "good"
every = "1h"

  [[link.inlet]]
  type = "random_int"
  min = 5
  max = 5

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/good.txt"

[[link]]
name = "broken"
every = "1h"

  [[link.inlet]]
  type = "file"
  path = "missing.ndjson"

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let out = databay()
        .args(["once", "once.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(lines(&dir.path().join("out/good.txt")), ["5"], "{stderr}");
    assert!(stderr.contains("missing.ndjson"), "{stderr}");
    assert!(stderr.contains("1 of 2 link(s) failed"), "{stderr}");
    assert!(
        stderr.contains("link `good`: 1 transfer, 1 records in, 1 out"),
        "{stderr}"
    );

    let only = databay()
        .args(["once", "once.toml", "--link", "good"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        only.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&only.stderr)
    );
    assert_eq!(lines(&dir.path().join("out/good.txt")), ["5", "5"]);
}

/// `once --until-exhausted` on a finite file: every line, then flush, with
/// a buffer that never fills on its own.
#[test]
fn once_until_exhausted_flushes_a_buffer_that_never_fills() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..25).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    fs::write(dir.path().join("in.ndjson"), input).unwrap();
    fs::write(
        dir.path().join("finite.toml"),
        r#"
[[link]]
name = "finite"
every = "1h"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  lines_per_transfer = 10
  json = true

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/finite.txt"
"#,
    )
    .unwrap();
    let out = databay()
        .args(["once", "finite.toml", "--until-exhausted"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let got = lines(&dir.path().join("out/finite.txt"));
    assert_eq!(got.len(), 25, "{stderr}");
    assert_eq!(got[24], r#"{"i":24}"#);
    assert!(stderr.contains("25 records in, 25 out"), "{stderr}");
}
