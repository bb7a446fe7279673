//! What the end-to-end tests of `databay` share: running the binary (a
//! daemon killed if the test fails, its output collected), waiting on its
//! logs against generous deadlines (a loaded machine slows the tests down
//! rather than failing them), a tiny HTTP/1.1 client for the admin
//! endpoint, and config text, secrets and in-process parsing for the tests
//! of the config loader.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use databay::Registry;
use databay::config::{Config, ConfigError, ConfigErrors};
use serde_json::Value;

/// How long any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_databay")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `databay` command with no log settings inherited from the caller.
pub fn databay() -> Command {
    let mut cmd = Command::new(bin());
    for var in [
        "RUST_LOG",
        "DATABAY_LOG_FORMAT",
        "DATABAY_LOG_LEVEL",
        "ORDERS_FILE",
        "ORDERS_CSV",
        "NOPE",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Collects a pipe into a shared string, line by line, on its own thread.
pub fn collect(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
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

/// A running `databay` process, killed when dropped (a failing test does
/// not leave it behind).
pub struct Daemon {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Daemon {
    pub fn spawn(mut cmd: Command) -> Daemon {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start databay");
        let (stdout, out_reader) = collect(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
        Daemon {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            status: None,
        }
    }

    /// `databay --log-format json ARGS` in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Daemon {
        let mut cmd = databay();
        cmd.args(["--log-format", "json"])
            .args(args)
            .current_dir(dir);
        Daemon::spawn(cmd)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The JSON log lines so far.
    pub fn logs(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many log lines so far have this message (prefix).
    pub fn count_logs(&self, message: &str) -> usize {
        self.logs()
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .count()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    /// Waits for the process to exit (within `limit`), then for its output.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
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

    /// Waits until a log line satisfies `pred`.
    pub fn wait_log(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.logs().into_iter().find(&pred) {
                return line;
            }
            assert!(
                self.running(),
                "databay exited while waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            assert!(
                Instant::now() < deadline,
                "no {what} within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `count_logs(message)` reaches `n`.
    pub fn wait_count(&mut self, message: &str, n: usize) {
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

    /// The admin endpoint's address, from the log.
    pub fn admin_addr(&mut self) -> SocketAddr {
        let line = self.wait_log("`admin endpoint listening`", |l| {
            l["message"] == "admin endpoint listening"
        });
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
    }
}

impl Daemon {
    /// TERM, then the exit code.
    pub fn stop(&mut self) -> Option<i32> {
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

/// Runs `cmd` to the end (killing it after `PATIENCE`).
pub fn output(mut cmd: Command) -> Output {
    let mut daemon = {
        cmd.stdin(Stdio::null());
        Daemon::spawn(cmd)
    };
    let status = daemon.wait_exit(PATIENCE);
    Output {
        status,
        stdout: daemon.stdout().into_bytes(),
        stderr: daemon.stderr().into_bytes(),
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of the file at `path`; none if it does not exist (yet).
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `f` until it gives a value, failing after `PATIENCE`.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        thread::sleep(Duration::from_millis(25));
    }
}

/// Polls until `f` gives a value, or `limit` passes.
pub fn within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

// --- a tiny HTTP/1.1 client -------------------------------------------------

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn http(addr: SocketAddr, method: &str, path: &str) -> Reply {
    try_http(addr, method, path).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// [`http`], with connecting, sending and reading allowed to fail (a
/// server over its connection cap may reset instead of answering).
pub fn try_http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Reply> {
    try_request(addr, method, path, &[], "")
}

/// A request with extra headers and a body (sent as is, with its length).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// [`request`], with connecting, sending and reading allowed to fail.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let raw = text(&read_response(&mut stream)?);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {raw:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A response: up to its `Content-Length` when it has one (a server may
/// keep the connection open after it, as chromedriver does), else to EOF.
fn read_response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&chunk[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let length = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            (name.trim() == "content-length").then(|| value.trim().parse::<usize>().ok())?
        });
        if let Some(length) = length {
            while raw.len() < end + 4 + length {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&chunk[..n]);
            }
            return Ok(raw);
        }
        stream.read_to_end(&mut raw)?;
        return Ok(raw);
    }
}

pub fn dechunk(mut body: &str) -> String {
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
pub fn links(addr: SocketAddr) -> BTreeMap<String, Value> {
    let reply = http(addr, "GET", "/links");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let Value::Array(items) = reply.json() else {
        panic!("/links is not an array: {}", reply.body)
    };
    items
        .into_iter()
        .map(|l| (l["name"].as_str().expect("name").to_owned(), l))
        .collect()
}

pub fn transfers_ok(link: &Value) -> u64 {
    link["counters"]["transfers_ok"]
        .as_u64()
        .unwrap_or_else(|| panic!("no counters.transfers_ok in {link}"))
}

/// Polls `/links` until `link` has at least `n` successful transfers.
pub fn wait_transfers(addr: SocketAddr, link: &str, n: u64) -> u64 {
    eventually(&format!("{n} transfers of `{link}`"), || {
        let ok = links(addr).get(link).map(transfers_ok)?;
        (ok >= n).then_some(ok)
    })
}

// --- configs: shared text, parsed in-process --------------------------------

/// What every `${SECRET_*}` variable holds in these tests, and what the
/// bad-config corpus's `env_*` fixtures read from `DATABAY_TEST_SECRET`; it
/// must never be printed.
pub const SECRET: &str = "hunter2-swordfish";
/// Pieces of [`SECRET`] that must not show up either (any case).
pub const SECRET_PIECES: [&str; 2] = ["hunter2", "swordfish"];

/// `SECRET_*` variables hold [`SECRET`]; the example configs' variables are
/// unset (their defaults apply); anything else is unset.
pub fn env(name: &str) -> Option<String> {
    name.starts_with("SECRET").then(|| SECRET.to_owned())
}

/// `Config::parse` of `text` as if read from `/etc/databay/fuzz.toml`.
pub fn parse_with(
    text: &str,
    registry: &Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    Config::parse(Path::new("/etc/databay/fuzz.toml"), text, registry, env)
}

/// The errors of a config that must not load.
pub fn errors_of(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    match parse_with(text, &databay::builtins(), env) {
        Ok(_) => panic!("expected config errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// A link around `body` (component tables), with a null inlet and outlet.
pub fn link(body: &str) -> String {
    format!(
        "[admin]\nenabled = false\n\n[[link]]\nname = \"l\"\nevery = \"1s\"\n\n[[link.inlet]]\ntype = \"null\"\n\n[[link.outlet]]\ntype = \"null\"\n\n{body}"
    )
}

/// Whether `text` holds the secret or one of its pieces, in any case.
pub fn leaks(text: &str) -> bool {
    let lower = text.to_lowercase();
    SECRET_PIECES.iter().any(|p| lower.contains(p))
}

/// A link `name` pulling a random int in `[0, max]` every 100 ms into a
/// null outlet.
pub fn link_config(name: &str, max: u32) -> String {
    format!(
        r#"
[[link]]
name = "{name}"
every = "100ms"

  [[link.inlet]]
  type = "random_int"
  max = {max}

  [[link.outlet]]
  type = "null"
"#
    )
}

/// A daemon config with the admin endpoint on an ephemeral port and one
/// [`link_config`] per `(name, max)`.
pub fn daemon_config(links: &[(&str, u32)]) -> String {
    let mut text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    for (name, max) in links {
        text.push_str(&link_config(name, *max));
    }
    text
}
