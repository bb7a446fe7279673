//! Status page benchmark: N links (after three transfers each, their
//! history sampled), served by the admin endpoint on a loopback port.
//! Reports the size of what a browser loads first (the page, its two files,
//! the first page of links) and the endpoint's answer times (medians): the
//! first page of links, a filtered page, an unchanged poll (304); the
//! history sampler's time; and, when Debian's chromium and chromedriver are
//! installed, the time from navigation to the first rows on screen in a
//! headless browser. An open page polls every 2 s, so its cost to the
//! daemon is one `/ui/links` answer per 2 s.
//!
//! ```text
//! cargo bench --bench status_page                  # 1 000 and 10 000 links
//! cargo bench --bench status_page -- --links 100000 --runs 5
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use databay::admin::{AdminState, Limits, serve};
use databay_core::{BoxError, Inlet, Link, Outlet, Planner, Pull, Record, Update, async_trait};

struct Tick;

#[async_trait]
impl Inlet for Tick {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::value(update.index()))
    }
}

struct Discard;

#[async_trait]
impl Outlet for Discard {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        std::hint::black_box(records);
        Ok(())
    }
}

struct Args {
    links: Vec<usize>,
    runs: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        links: vec![1_000, 10_000],
        runs: 9,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--links" => {
                if let Some(v) = it.next() {
                    args.links = v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
                }
            }
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(args.runs),
            _ => {}
        }
    }
    args
}

async fn planner(n: usize) -> Planner {
    let links: Vec<Link> = (0..n)
        .map(|i| {
            Link::builder(format!("link-{i}"))
                .tags([format!("team-{}", i % 10)])
                .inlet(Tick)
                .outlet(Discard)
                .every(Duration::from_secs(60))
                .immediate_transfer(false)
                .build()
                .expect("valid link")
        })
        .collect();
    let planner = Planner::new(links).expect("unique link names");
    for link in planner.links() {
        for _ in 0..3 {
            link.transfer().await.expect("transfer");
        }
    }
    planner
}

/// One request; the status and the body. Reads up to `Content-Length`
/// (chromedriver keeps connections open), else to EOF.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut want = None;
    loop {
        let n = stream.read(&mut chunk).expect("receive");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if want.is_none()
            && let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "content-length").then(|| v.trim().parse::<usize>().ok())?
            });
            want = Some(end + 4 + length.unwrap_or(usize::MAX - end - 4));
        }
        if want.is_some_and(|w| raw.len() >= w) {
            break;
        }
    }
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let status = String::from_utf8_lossy(&raw[..end])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, raw[end + 4..].to_vec())
}

fn etag_of(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw.lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .to_owned()
}

/// Median time of `runs` requests, and the last body's size.
fn measure(
    runs: usize,
    mut call: impl FnMut() -> (u16, Vec<u8>),
    status: u16,
) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let (got, body) = call();
        times.push(t.elapsed());
        assert_eq!(got, status, "{}", String::from_utf8_lossy(&body));
        size = body.len();
    }
    times.sort();
    (times[times.len() / 2], size)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1e3
}

/// A chromedriver and one headless chromium session.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    fn start() -> Option<Browser> {
        if !Path::new("/usr/bin/chromium").exists() || !Path::new("/usr/bin/chromedriver").exists()
        {
            println!(
                "(no /usr/bin/chromium or chromedriver: run scripts/setup for the browser figures)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let driver = std::os::unix::process::CommandExt::process_group(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .ok()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let caps = r#"{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":"/usr/bin/chromium","args":["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--window-size=1500,900"]}}}}"#;
        let session = browser.call("POST", "/session", caps);
        browser.session = session["sessionId"].as_str()?.to_owned();
        Some(browser)
    }

    fn call(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (status, body) = request(
            self.addr,
            method,
            path,
            "Content-Type: application/json\r\n",
            body,
        );
        let value: serde_json::Value = serde_json::from_slice(&body).expect("WebDriver JSON");
        assert_eq!(status, 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    /// Milliseconds from navigating to `url` to the page's first rows.
    fn first_render(&self, url: &str) -> f64 {
        let s = &self.session;
        self.call(
            "POST",
            &format!("/session/{s}/url"),
            &serde_json::json!({ "url": url }).to_string(),
        );
        let script = r#"{"script":"return document.body.dataset.firstRender || null","args":[]}"#;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.call("POST", &format!("/session/{s}/execute/sync"), script);
            if let Some(t) = v.as_str().and_then(|t| t.parse().ok()) {
                return t;
            }
            assert!(Instant::now() < deadline, "the page never rendered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let s = self.session.clone();
            let _ = std::panic::catch_unwind(|| {
                request(self.addr, "DELETE", &format!("/session/{s}"), "", "")
            });
        }
        let _ = Command::new("kill")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let browser = Browser::start();
    for &n in &args.links {
        let planner = runtime.block_on(planner(n));
        let state = AdminState::new(planner.clone(), Arc::default());
        let rss_before = rss_kib();
        let t = Instant::now();
        state.sample_history();
        let first_sample = t.elapsed();
        let (sample, _) = measure(
            args.runs,
            || {
                state.sample_history();
                (200, Vec::new())
            },
            200,
        );
        let rss_after = rss_kib();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(serve(listener, state, Limits::default(), async move {
            let _ = stopped.await;
        }));

        let get = |path: &str| request(addr, "GET", path, "", "");
        let (t_index, s_index) = measure(args.runs, || get("/"), 200);
        let (_, s_js) = measure(1, || get("/ui/status.js"), 200);
        let (_, s_css) = measure(1, || get("/ui/status.css"), 200);
        let (t_page, s_page) = measure(args.runs, || get("/ui/links"), 200);
        let (t_filter, s_filter) = measure(
            args.runs,
            || get(&format!("/ui/links?q=link-{}", n - 1)),
            200,
        );
        let (t_state, _) = measure(args.runs, || get("/ui/links?state=paused"), 200);
        let etag = etag_of(addr, "/ui/links");
        let (t_304, _) = measure(
            args.runs,
            || {
                request(
                    addr,
                    "GET",
                    "/ui/links",
                    &format!("If-None-Match: {etag}\r\n"),
                    "",
                )
            },
            304,
        );
        println!(
            "links={n:>6} first load: page {:.1} kB + js {:.1} kB + css {:.1} kB + /ui/links (50 rows) {:.1} kB = {:.1} kB",
            kb(s_index),
            kb(s_js),
            kb(s_css),
            kb(s_page),
            kb(s_index + s_js + s_css + s_page)
        );
        println!(
            "links={n:>6} answer: / {:.2} ms, /ui/links {:.2} ms, ?q=<one> {:.2} ms ({:.1} kB), ?state=paused {:.2} ms, unchanged poll (304) {:.2} ms",
            ms(t_index),
            ms(t_page),
            ms(t_filter),
            kb(s_filter),
            ms(t_state),
            ms(t_304),
        );
        println!(
            "links={n:>6} open page: one /ui/links per 2 s = {:.2}% of a core; history sampler: first {:.1} ms, then {:.1} ms per 10 s; rings {:.1} MB RSS",
            t_page.as_secs_f64() / 2.0 * 100.0,
            ms(first_sample),
            ms(sample),
            rss_after.saturating_sub(rss_before) as f64 / 1e3,
        );
        if let Some(b) = &browser {
            let mut renders: Vec<f64> = (0..args.runs.clamp(1, 5))
                .map(|_| b.first_render(&format!("http://{addr}/")))
                .collect();
            renders.sort_by(f64::total_cmp);
            println!(
                "links={n:>6} headless chromium: navigation to first rows {:.0} ms (median of {})",
                renders[renders.len() / 2],
                renders.len()
            );
        }
        let _ = stop.send(());
        let _ = runtime.block_on(server);
    }
}

/// Resident set, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
