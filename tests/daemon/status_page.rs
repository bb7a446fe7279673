//! The status page in a real headless browser: Debian's chromium, driven
//! through chromedriver's WebDriver HTTP API with the tests' own HTTP client
//! (plain JSON over loopback needs no WebDriver crate and no async runtime).
//! The daemon runs three links; the page shows three rows and charts with
//! data points, "Transfer now" raises a count, "Pause" changes a state, and
//! a screenshot is saved. And the guard, against the real binary: a
//! cross-site POST is refused, from curl-like requests and from a form on
//! another origin in the browser.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `orders` and `audit` transfer once at start and then hourly (so only a
/// forced transfer moves their counts); `clicks` transfers every 200 ms.
fn config() -> String {
    let mut text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    for (name, every, tags) in [
        ("orders", "1h", r#"["orders", "shop"]"#),
        ("clicks", "200ms", r#"["clicks", "web"]"#),
        ("audit", "1h", r#"["audit"]"#),
    ] {
        text.push_str(&format!(
            "\n[[link]]\nname = \"{name}\"\ntags = {tags}\nevery = \"{every}\"\n\n  [[link.inlet]]\n  type = \"random_int\"\n\n  [[link.outlet]]\n  type = \"null\"\n"
        ));
    }
    text
}

/// A chromedriver process and one headless chromium session, both ended
/// when dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the status page test needs Debian's {package}; run scripts/setup (it installs chromium and chromium-driver)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, so that the browsers it starts end
            // with it even when no session was made.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e} (run scripts/setup)"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        eventually("chromedriver listening", || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
        });
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1500,620",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ],
            },
        }}});
        let session = browser.call("POST", "/session", &capabilities);
        browser.session = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {session}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = if method == "GET" || method == "DELETE" {
            String::new()
        } else {
            body.to_string()
        };
        let reply = request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json; charset=utf-8")],
            &body,
        );
        let value: Value = serde_json::from_str(&reply.body).unwrap_or_else(|e| {
            panic!("WebDriver {method} {path}: not JSON ({e}): {}", reply.body)
        });
        assert_eq!(reply.status, 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: &Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.session_call("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// Polls `script` until it returns something other than null or false.
    fn wait(&self, what: &str, script: &str) -> Value {
        eventually(what, || {
            let v = self.eval(script);
            (!v.is_null() && v != json!(false)).then_some(v)
        })
    }

    /// Clicks the element `css` selects, as a user would.
    fn click(&self, css: &str) {
        let found = self.session_call(
            "POST",
            "/element",
            &json!({ "using": "css selector", "value": css }),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        self.session_call("POST", &format!("/element/{id}/click"), &json!({}));
    }

    fn screenshot(&self, path: &Path) {
        let png = self.session_call("GET", "/screenshot", &Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 text"))
            .expect("a base64 PNG");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = try_request(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                "",
            );
        }
        // The group's id is chromedriver's pid.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where test artifacts go: `$CARGO_TARGET_DIR` (or the target dir the
/// binary was built in).
fn artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| Path::new(bin()).parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir);
    dir.join(name)
}

fn cell(row: &str, class: &str) -> String {
    format!(
        r#"const c = document.querySelector('#links tr[data-link="{row}"] .{class}'); return c && c.textContent;"#
    )
}

#[test]
fn the_status_page_shows_and_drives_links_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("page.toml"), config()).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "page.toml"]);
    let addr = daemon.admin_addr();
    // Both hourly links have done their first transfer.
    wait_transfers(addr, "orders", 1);
    wait_transfers(addr, "audit", 1);
    let browser = Browser::start();
    browser.goto(&format!("http://{addr}/"));

    let rows = browser.wait(
        "three rows",
        "const r = [...document.querySelectorAll('#links tbody tr')].map(t => t.dataset.link); return r.length === 3 && r;",
    );
    assert_eq!(rows, json!(["orders", "clicks", "audit"]));
    let points = browser.wait(
        "a chart with data points for every row",
        "const c = [...document.querySelectorAll('#links svg.chart')].map(s => Number(s.dataset.points || 0)); return c.length === 3 && c.every(n => n > 0) && c;",
    );
    assert_eq!(points.as_array().map(Vec::len), Some(3), "{points}");
    browser.wait(
        "the daemon-wide transfers chart with data points",
        "return Number(document.getElementById('daemon-transfers').dataset.points || 0) > 0;",
    );
    assert_eq!(browser.eval(&cell("orders", "status")), json!("scheduled"));

    let before: u64 = browser
        .eval(&cell("orders", "records-in"))
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a records-in count");
    browser.click(r#"#links tr[data-link="orders"] button.transfer"#);
    let after: u64 = eventually("the orders count rising on the page", || {
        let n: u64 = browser
            .eval(&cell("orders", "records-in"))
            .as_str()?
            .parse()
            .ok()?;
        (n > before).then_some(n)
    });
    assert_eq!(after, before + 1);
    assert_eq!(transfers_ok(&links(addr)["orders"]), 2);

    browser.click(r#"#links tr[data-link="audit"] button.pause"#);
    eventually("audit shown paused", || {
        (browser.eval(&cell("audit", "status")) == json!("paused")).then_some(())
    });
    assert_eq!(links(addr)["audit"]["paused"], true);
    assert_eq!(links(addr)["clicks"]["paused"], false);
    browser.wait(
        "a Resume button on the paused row",
        r#"return !!document.querySelector('#links tr[data-link="audit"] button.resume');"#,
    );

    let shot = artifact("status-page.png");
    browser.screenshot(&shot);
    println!("status page screenshot: {}", shot.display());

    // A form on another origin (a data: page) posting to the daemon: the
    // browser sends it, the daemon refuses it.
    let form = format!(
        "data:text/html,<form method=post action='http://{addr}/links/audit/resume'></form><script>document.forms[0].submit()</script>"
    );
    browser.goto(&form);
    daemon.wait_log("the browser's cross-site form refused", |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("admin request refused"))
            && l["path"] == "/links/audit/resume"
    });
    assert_eq!(links(addr)["audit"]["paused"], true);

    drop(browser);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
}

#[test]
fn a_cross_site_post_without_the_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("guard.toml"), config()).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "guard.toml"]);
    let addr = daemon.admin_addr();
    let before = transfers_ok(&links(addr)["orders"]);
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        for path in [
            "/links/orders/pause",
            "/links/orders/transfer",
            "/all/pause",
        ] {
            let reply = request(addr, "POST", path, &headers, "");
            assert_eq!(reply.status, 403, "{path} {headers:?}: {}", reply.body);
            assert!(
                reply.json()["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("refused")
            );
        }
    }
    // The daemon listens on loopback: a rebound name is refused too.
    let rebound = request(addr, "GET", "/", &[("Host", "evil.example")], "");
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    let all = links(addr);
    assert_eq!(all["orders"]["paused"], false);
    assert_eq!(transfers_ok(&all["orders"]), before);
    // A plain client, as before the guard, still can.
    assert_eq!(http(addr, "POST", "/links/orders/pause").status, 200);
    assert_eq!(links(addr)["orders"]["paused"], true);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
}

#[test]
fn the_admin_token_guards_reads_and_writes_and_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let text = config().replace("[admin]\n", "[admin]\ntoken = \"${SECRET_ADMIN_TOKEN}\"\n");
    fs::write(dir.path().join("token.toml"), text).unwrap();
    let mut cmd = databay();
    cmd.args([
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "run",
        "token.toml",
    ])
    .env("SECRET_ADMIN_TOKEN", SECRET)
    .current_dir(dir.path());
    let mut daemon = Daemon::spawn(cmd);
    let addr = daemon.admin_addr();
    assert_eq!(http(addr, "GET", "/links").status, 401);
    assert_eq!(http(addr, "POST", "/links/orders/pause").status, 401);
    let bearer = format!("Bearer {SECRET}");
    let auth = [("Authorization", bearer.as_str())];
    let listed = request(addr, "GET", "/links", &auth, "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        request(addr, "POST", "/links/orders/pause", &auth, "").status,
        200
    );
    assert_eq!(http(addr, "GET", "/").status, 200);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
    assert!(!leaks(&daemon.stderr()), "{}", daemon.stderr());
    assert!(!leaks(&daemon.stdout()), "{}", daemon.stdout());
}
