//! The daemon at scale: the real binary with N links from a generated TOML
//! config (`random_int` -> `null`, every 1 s, admin on), next to the floor
//! of the same N links in a bare in-process [`Planner`] (same inlet, same
//! outlet, same schedules), each in a process of its own so CPU time and
//! peak RSS are measured the same way for both.
//!
//! ```text
//! cargo bench --bench scale                                  # 10 000, 50 000, 100 000 links
//! cargo bench --bench scale -- --links 100000 --secs 30
//! cargo bench --bench scale -- --links 50000 --unaligned     # phases from start-up order
//! cargo bench --bench scale -- --links 100000 --no-floor
//! ```
//!
//! For each N it reports:
//!
//! - `validate`: wall time and peak RSS of `databay validate CONFIG`; the
//!   floor parses the same file into a `toml::Table`.
//! - `run`: time from spawning `databay run` to the first transfer of the
//!   first link (`link-0`) and of the last one (`link-{N-1}`), read from
//!   `/links/{name}`; then, over a window of `--secs`, transfers achieved
//!   against expected, ticks skipped and schedule lateness p50/p99/max (the
//!   difference of two `/metrics` scrapes of
//!   `databay_daemon_schedule_lateness_seconds`, so bucket bounds: `≤ 1 ms`),
//!   CPU % of one core (between the scrapes, the scrapes left out), peak RSS
//!   (VmHWM) before the first scrape and after the last; then the time from
//!   SIGTERM to exit, whether it exited cleanly, and how many warnings and
//!   "abandoned" links its log had.
//!
//! The config sets `[admin] link_metrics = false`, so that the two
//! scrapes the bench reads lateness from cost the daemon little (with
//! 100 000 links the per-link series are 170 MB a scrape); `--link-metrics`
//! keeps them, and the scrape time shows what a full scrape costs.
//!
//! `DATABAY_BIN=/path/to/databay` measures another build of the binary
//! (one from before `link_metrics` needs `--link-metrics`).
//!
//! Links' phases are spread over the interval (`align_to = i/N s`), as in
//! `benches/scheduling.rs`; with `--unaligned` each link's phase is when
//! it started, so the phases are as spread as the start-up is long.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{cpu_time, peak_rss_kib};

/// The binary under test: `DATABAY_BIN` if set (to compare two builds
/// with one bench), else the one cargo built with the bench.
fn databay() -> PathBuf {
    std::env::var_os("DATABAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_databay")))
}

/// Upper bounds (seconds) of the lateness buckets `/metrics` exports.
const BOUNDS: [f64; 14] = databay_core::HISTOGRAM_BOUNDS;

struct Args {
    links: Vec<usize>,
    secs: u64,
    interval: Duration,
    unaligned: bool,
    floor: bool,
    link_metrics: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        links: vec![10_000, 50_000, 100_000],
        secs: 20,
        interval: Duration::from_secs(1),
        unaligned: false,
        floor: true,
        link_metrics: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--links" => {
                if let Some(v) = it.next() {
                    args.links = v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
                }
            }
            "--secs" => args.secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(args.secs),
            "--interval-ms" => {
                if let Some(ms) = it.next().and_then(|v| v.parse().ok()) {
                    args.interval = Duration::from_millis(ms);
                }
            }
            "--unaligned" => args.unaligned = true,
            "--no-floor" => args.floor = false,
            "--link-metrics" => args.link_metrics = true,
            // cargo bench passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    args
}

/// The generated config: N links, admin on `port`.
fn write_config(dir: &Path, n: usize, port: u16, args: &Args) -> PathBuf {
    // `link_metrics` is left out when on (its default), so that a build
    // from before the option can be measured too.
    let mut text = format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\n{}\n[daemon]\nshutdown_grace = \"30s\"\n",
        if args.link_metrics {
            ""
        } else {
            "link_metrics = false\n"
        }
    );
    let interval_us = args.interval.as_micros() as usize;
    for i in 0..n {
        text.push_str(&format!(
            "\n[[link]]\nname = \"link-{i}\"\nevery = \"{}ms\"\n",
            args.interval.as_millis()
        ));
        if !args.unaligned {
            text.push_str(&format!("align_to = \"{}us\"\n", i * interval_us / n));
        }
        text.push_str("[[link.inlet]]\ntype = \"random_int\"\n[[link.outlet]]\ntype = \"null\"\n");
    }
    let path = dir.join(format!("scale-{n}.toml"));
    std::fs::write(&path, text).expect("write the generated config");
    path
}

/// Samples a child's peak RSS and CPU time every few ms until it exits.
struct Sampled {
    child: Child,
    peak_kib: u64,
    cpu: Duration,
}

impl Sampled {
    fn new(child: Child) -> Self {
        Sampled {
            child,
            peak_kib: 0,
            cpu: Duration::ZERO,
        }
    }

    fn sample(&mut self) {
        if let Some(kib) = peak_rss_kib(self.child.id()) {
            self.peak_kib = self.peak_kib.max(kib);
        }
        if let Some(cpu) = cpu_time(self.child.id()) {
            self.cpu = self.cpu.max(cpu);
        }
    }

    /// Sleeps `d`, sampling every 5 ms.
    fn sleep(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            self.sample();
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(5)));
        }
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        loop {
            self.sample();
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("waiting for the child: {e}"),
            }
        }
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `databay validate CONFIG`: wall time and peak RSS (KiB).
fn validate(config: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let child = Command::new(databay())
        .arg("validate")
        .arg(config)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn databay validate");
    let mut s = Sampled::new(child);
    let status = s.wait();
    assert!(status.success(), "databay validate failed: {status}");
    (start.elapsed(), s.peak_kib)
}

/// A GET on the admin endpoint; calls `line` for each line of the body.
fn get_lines(port: u16, path: &str, mut line: impl FnMut(&str)) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut buf = String::new();
    reader.read_line(&mut buf)?;
    if !buf.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("GET {path}: {}", buf.trim())));
    }
    // Headers.
    loop {
        buf.clear();
        if reader.read_line(&mut buf)? == 0 || buf == "\r\n" {
            break;
        }
    }
    loop {
        buf.clear();
        if reader.read_line(&mut buf)? == 0 {
            return Ok(());
        }
        line(buf.trim_end());
    }
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut body = String::new();
    get_lines(port, path, |l| {
        body.push_str(l);
        body.push('\n');
    })?;
    Ok(body)
}

/// `transfers_ok` of one link, from `/links/{name}`.
fn transfers_of(port: u16, name: &str) -> Option<u64> {
    let body = get(port, &format!("/links/{name}")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.pointer("/counters/transfers_ok")?.as_u64()
}

/// What one `/metrics` scrape says about every link together.
#[derive(Debug, Default, Clone)]
struct Scrape {
    /// Every transfer of every link (the daemon-wide duration histogram's
    /// count).
    transfers: u64,
    /// Skipped ticks and links with no transfer yet: only with per-link
    /// series.
    skipped: Option<u64>,
    idle: Option<u64>,
    /// Cumulative lateness bucket counts, `BOUNDS` then `+Inf`.
    lateness: [u64; BOUNDS.len() + 1],
}

fn value(line: &str) -> u64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn scrape(port: u16) -> Scrape {
    let mut s = Scrape::default();
    get_lines(port, "/metrics", |line| {
        if line.starts_with("databay_daemon_transfer_duration_seconds_count") {
            s.transfers = value(line);
        } else if line.starts_with("databay_transfers_total{") && line.contains("result=\"ok\"") {
            *s.idle.get_or_insert(0) += u64::from(value(line) == 0);
        } else if line.starts_with("databay_ticks_skipped_total{") {
            *s.skipped.get_or_insert(0) += value(line);
        } else if let Some(rest) =
            line.strip_prefix("databay_daemon_schedule_lateness_seconds_bucket{le=\"")
        {
            let le = rest.split('"').next().unwrap_or_default();
            let i = if le == "+Inf" {
                BOUNDS.len()
            } else {
                let b: f64 = le.parse().unwrap_or(f64::NAN);
                match BOUNDS.iter().position(|x| (x - b).abs() < 1e-9) {
                    Some(i) => i,
                    None => return,
                }
            };
            s.lateness[i] = value(line);
        }
    })
    .expect("scrape /metrics");
    s
}

/// The bucket bound below which `q` of the observations fall (cumulative
/// counts `c`), as text.
fn quantile(c: &[u64; BOUNDS.len() + 1], q: f64) -> String {
    let total = c[BOUNDS.len()];
    if total == 0 {
        return "-".to_owned();
    }
    let rank = (q * total as f64).ceil() as u64;
    match c.iter().position(|n| *n >= rank.max(1)) {
        Some(i) if i < BOUNDS.len() => format!("≤{}ms", BOUNDS[i] * 1000.0),
        _ => format!(">{}ms", BOUNDS[BOUNDS.len() - 1] * 1000.0),
    }
}

/// The ticks the log's warnings say were skipped (`skipped=N`).
fn skipped_in_log(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(" WARN ") && l.contains("skipped ticks"))
        .filter_map(|l| l.split("skipped=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A free loopback port (bound and released: another process could take it
/// in between, which the daemon would then report).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct RunFigures {
    first: Duration,
    all: Duration,
    window: Duration,
    transfers: u64,
    expected: u64,
    /// In the window from the per-link series, else over the whole run
    /// from the log's warnings.
    skipped: String,
    idle: String,
    window_lateness: [u64; BOUNDS.len() + 1],
    run_lateness: [u64; BOUNDS.len() + 1],
    cpu_pct: f64,
    scrape: Duration,
    rss_before_scrape: u64,
    rss: u64,
    shutdown: Duration,
    clean: bool,
    warnings: usize,
    abandoned: usize,
    /// What the log's milestones say: (milestone, seconds after spawn or
    /// after SIGTERM).
    phases: Vec<(&'static str, f64)>,
}

/// The log's milestones, as seconds after `spawned` (start-up) or `term`
/// (shutdown), from each line's timestamp.
fn phases(log: &str, spawned: SystemTime, term: SystemTime) -> Vec<(&'static str, f64)> {
    let marks: [(&str, &str, SystemTime); 4] = [
        ("config loaded", "databay starting", spawned),
        ("nodes started", "planner started", spawned),
        ("drivers stopped", "planner stopped", term),
        ("exited", "databay stopped", term),
    ];
    let mut out = Vec::new();
    for (what, needle, from) in marks {
        let at = log
            .lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        if let Some(at) = at {
            let secs = match at.duration_since(from) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            out.push((what, secs));
        }
    }
    out
}

fn run_daemon(config: &Path, n: usize, port: u16, args: &Args, log: &Path) -> RunFigures {
    let stderr = std::fs::File::create(log).expect("create the log file");
    let spawned = Instant::now();
    let spawned_wall = SystemTime::now();
    let child = Command::new(databay())
        .arg("run")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn databay run");
    let mut d = Sampled::new(child);
    let last = format!("link-{}", n - 1);
    let deadline = spawned + Duration::from_secs(180);
    let wait_for = |d: &mut Sampled, name: &str| -> Duration {
        loop {
            d.sample();
            if transfers_of(port, name).is_some_and(|t| t > 0) {
                return spawned.elapsed();
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("databay exited early: {status} (log: {})", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "no transfer of {name} within 180 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let first = wait_for(&mut d, "link-0");
    let all = wait_for(&mut d, &last);
    // Every link has started; let each reach its own schedule.
    d.sleep(args.interval + Duration::from_millis(200));
    let rss_before_scrape = {
        d.sample();
        d.peak_kib
    };
    let t0 = Instant::now();
    let s0 = scrape(port);
    let scrape_took = t0.elapsed();
    let cpu0 = cpu_time(d.child.id()).unwrap_or_default();
    let w0 = Instant::now();
    d.sleep(Duration::from_secs(args.secs));
    let cpu1 = cpu_time(d.child.id()).unwrap_or_default();
    let busy = w0.elapsed();
    let t1 = Instant::now();
    let s1 = scrape(port);
    let window = t1 - t0;
    d.sample();
    let rss = d.peak_kib;

    let term = Instant::now();
    let term_wall = SystemTime::now();
    let killed = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM failed");
    let status = d.wait();
    let shutdown = term.elapsed();

    let mut text = String::new();
    let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
    let warnings = text.lines().filter(|l| l.contains(" WARN ")).count();
    let abandoned = text.lines().filter(|l| l.contains("abandoned")).count();

    let mut window_lateness = [0; BOUNDS.len() + 1];
    for (i, w) in window_lateness.iter_mut().enumerate() {
        *w = s1.lateness[i].saturating_sub(s0.lateness[i]);
    }
    RunFigures {
        first,
        all,
        window,
        transfers: s1.transfers - s0.transfers,
        expected: (n as f64 * window.as_secs_f64() / args.interval.as_secs_f64()).round() as u64,
        skipped: match (s0.skipped, s1.skipped) {
            (Some(a), Some(b)) => (b - a).to_string(),
            _ => format!("{} in the whole run (log)", skipped_in_log(&text)),
        },
        idle: s1.idle.map_or("-".to_owned(), |n| n.to_string()),
        window_lateness,
        run_lateness: s1.lateness,
        cpu_pct: 100.0 * (cpu1.saturating_sub(cpu0)).as_secs_f64() / busy.as_secs_f64(),
        scrape: scrape_took,
        rss_before_scrape,
        rss,
        shutdown,
        clean: status.success(),
        warnings,
        abandoned,
        phases: phases(&text, spawned_wall, term_wall),
    }
}

fn max_bucket(c: &[u64; BOUNDS.len() + 1]) -> String {
    let total = c[BOUNDS.len()];
    if total == 0 {
        return "-".to_owned();
    }
    match c.iter().position(|n| *n == total) {
        Some(i) if i < BOUNDS.len() => format!("≤{}ms", BOUNDS[i] * 1000.0),
        _ => format!(">{}ms", BOUNDS[BOUNDS.len() - 1] * 1000.0),
    }
}

fn main() {
    let mut argv = std::env::args().skip(1);
    match argv.next().as_deref() {
        Some("--floor-parse") => return floor::parse(argv),
        Some("--floor-run") => return floor::run(argv),
        _ => {}
    }
    let args = parse_args();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let me = std::env::current_exe().expect("the bench's own path");
    for &n in &args.links {
        let port = free_port();
        let config = write_config(dir.path(), n, port, &args);
        let size = std::fs::metadata(&config).map(|m| m.len()).unwrap_or(0);
        println!(
            "== {n} links, every {:?}{}, config {:.1} MB",
            args.interval,
            if args.unaligned { ", unaligned" } else { "" },
            size as f64 / 1e6
        );

        let (took, peak) = validate(&config);
        print!(
            "validate: {:.2} s, peak RSS {:.0} MiB",
            took.as_secs_f64(),
            mib(peak)
        );
        if args.floor {
            let (took_f, peak_f) =
                floor::child(&me, &["--floor-parse".into(), config.display().to_string()]);
            print!(
                "   | floor (toml::Table of the file): {:.2} s, {:.0} MiB; ratio {:.1}x time, {:.1}x RSS",
                took_f.as_secs_f64(),
                mib(peak_f),
                took.as_secs_f64() / took_f.as_secs_f64().max(1e-9),
                peak as f64 / peak_f.max(1) as f64
            );
        }
        println!();

        let log = dir.path().join(format!("run-{n}.log"));
        let r = run_daemon(&config, n, port, &args, &log);
        println!(
            "run: first transfer {:.2} s, last link's first {:.2} s after spawn",
            r.first.as_secs_f64(),
            r.all.as_secs_f64()
        );
        println!(
            "     window {:.1} s: transfers {} / expected {} ({:.2}%), skipped {}, links never run {}",
            r.window.as_secs_f64(),
            r.transfers,
            r.expected,
            100.0 * r.transfers as f64 / r.expected.max(1) as f64,
            r.skipped,
            r.idle
        );
        println!(
            "     lateness in the window p50 {} p99 {} max {}; whole run p50 {} p99 {} max {}",
            quantile(&r.window_lateness, 0.5),
            quantile(&r.window_lateness, 0.99),
            max_bucket(&r.window_lateness),
            quantile(&r.run_lateness, 0.5),
            quantile(&r.run_lateness, 0.99),
            max_bucket(&r.run_lateness)
        );
        println!(
            "     CPU {:.1}% of one core; peak RSS {:.0} MiB before scraping, {:.0} MiB after (one /metrics scrape {:.2} s)",
            r.cpu_pct,
            mib(r.rss_before_scrape),
            mib(r.rss),
            r.scrape.as_secs_f64()
        );
        println!(
            "     SIGTERM -> exit {:.2} s ({}), {} warnings, {} abandoned",
            r.shutdown.as_secs_f64(),
            if r.clean { "exit 0" } else { "FAILED" },
            r.warnings,
            r.abandoned
        );
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(what, secs)| format!("{what} {secs:.2} s"))
            .collect();
        println!(
            "     log: {} (start-up after spawn, the rest after SIGTERM)",
            phases.join(", ")
        );
        if args.floor {
            let mut fargs = vec![
                "--floor-run".to_owned(),
                n.to_string(),
                args.secs.to_string(),
                args.interval.as_millis().to_string(),
            ];
            if args.unaligned {
                fargs.push("--unaligned".into());
            }
            let out = floor::child_output(&me, &fargs);
            println!("floor (in-process Planner, same links): {out}");
        }
    }
}

/// The floors, each run in a child process (the bench binary again) so its
/// CPU time and RSS are its own.
mod floor {
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use databay_core::{LinkState, Planner, Schedule};

    use super::{BOUNDS, Sampled, max_bucket, mib, quantile};

    /// Runs the bench binary with `args`: wall time and peak RSS (KiB).
    pub(super) fn child(me: &Path, args: &[String]) -> (Duration, u64) {
        let start = Instant::now();
        let c = Command::new(me)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the floor");
        let mut s = Sampled::new(c);
        let status = s.wait();
        assert!(status.success(), "the floor failed: {status}");
        (start.elapsed(), s.peak_kib)
    }

    /// Runs the bench binary with `args` and returns what it printed.
    pub(super) fn child_output(me: &Path, args: &[String]) -> String {
        let out = Command::new(me)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run the floor");
        assert!(out.status.success(), "the floor failed: {}", out.status);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `--floor-parse PATH`: the file parsed into a `toml::Table`.
    pub(super) fn parse(mut argv: impl Iterator<Item = String>) {
        let path = argv.next().expect("a path");
        let text = std::fs::read_to_string(path).expect("read the config");
        let table: toml::Table = toml::from_str(&text).expect("valid TOML");
        let links = table
            .get("link")
            .and_then(|l| l.as_array())
            .map_or(0, Vec::len);
        println!("{links}");
    }

    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// `--floor-run N SECS INTERVAL_MS [--unaligned]`: the same links in a
    /// bare planner (random_int -> null, same schedules), measured like the
    /// daemon: start to every link's first transfer, a window, shutdown.
    pub(super) fn run(mut argv: impl Iterator<Item = String>) {
        let n: usize = argv.next().and_then(|v| v.parse().ok()).expect("N");
        let secs: u64 = argv.next().and_then(|v| v.parse().ok()).expect("SECS");
        let interval = Duration::from_millis(argv.next().and_then(|v| v.parse().ok()).expect("MS"));
        let unaligned = argv.next().as_deref() == Some("--unaligned");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async move {
            let started = Instant::now();
            let links: Vec<databay_core::Link> = (0..n)
                .map(|i| {
                    let mut schedule = Schedule::every(interval).expect("non-zero interval");
                    if !unaligned {
                        schedule = schedule.align_to(interval.mul_f64(i as f64 / n as f64));
                    }
                    databay_core::Link::builder(format!("link-{i}"))
                        .inlet(databay_inlets::RandomIntInlet::default())
                        .outlet(databay_outlets::NullOutlet::new())
                        .schedule(schedule)
                        .build()
                        .expect("valid link")
                })
                .collect();
            let planner = links
                .into_iter()
                .fold(Planner::builder().ignore_exceptions(true), |b, l| b.link(l))
                .build()
                .expect("unique link names");
            let built = status_kib("VmRSS:");
            let running = tokio::spawn({
                let p = planner.clone();
                async move { p.start().await }
            });
            let all: Vec<databay_core::Link> = planner.links();
            // As for the daemon: the first link, then the last one started.
            let first = wait_first(&all[0]).await.saturating_duration_since(started);
            let every = wait_first(&all[n - 1])
                .await
                .saturating_duration_since(started);
            tokio::time::sleep(interval + Duration::from_millis(200)).await;
            let before = totals(&all);
            let cpu0 = super::support::cpu_time(std::process::id()).unwrap_or_default();
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let window = t0.elapsed();
            let cpu1 = super::support::cpu_time(std::process::id()).unwrap_or_default();
            let after = totals(&all);
            let rss = status_kib("VmHWM:");
            let stop = Instant::now();
            planner.shutdown(true);
            let stopped = running.await.map(|r| r.is_ok()).unwrap_or(false);
            let shutdown = stop.elapsed();
            let mut lateness = [0u64; BOUNDS.len() + 1];
            for (i, l) in lateness.iter_mut().enumerate() {
                *l = after.2[i] - before.2[i];
            }
            let expected = (n as f64 * window.as_secs_f64() / interval.as_secs_f64()).round() as u64;
            println!(
                "first transfer {:.2} s, last link's first {:.2} s; transfers {} / expected {} ({:.2}%), skipped {}; \
                 lateness p50 {} p99 {} max {}; CPU {:.1}%; peak RSS {:.0} MiB ({:.0} MiB once the links were built); shutdown {:.2} s ({})",
                first.as_secs_f64(),
                every.as_secs_f64(),
                after.0 - before.0,
                expected,
                100.0 * (after.0 - before.0) as f64 / expected.max(1) as f64,
                after.1 - before.1,
                quantile(&lateness, 0.5),
                quantile(&lateness, 0.99),
                max_bucket(&lateness),
                100.0 * cpu1.saturating_sub(cpu0).as_secs_f64() / window.as_secs_f64(),
                mib(rss),
                mib(built),
                shutdown.as_secs_f64(),
                if stopped { "ok" } else { "FAILED" },
            );
        });
    }

    /// When `link` had its first transfer.
    async fn wait_first(link: &databay_core::Link) -> Instant {
        while link.stats().transfers_ok == 0 || link.state() == LinkState::Idle {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    }

    /// Transfers, skipped ticks and cumulative lateness buckets of `links`.
    fn totals(links: &[databay_core::Link]) -> (u64, u64, [u64; BOUNDS.len() + 1]) {
        let mut t = (0, 0, [0u64; BOUNDS.len() + 1]);
        for l in links {
            let s = l.stats();
            t.0 += s.transfers_ok;
            t.1 += s.ticks_skipped;
            let mut cumulative = 0;
            for (i, b) in s.lateness.buckets.iter().enumerate() {
                cumulative += b;
                t.2[i] += cumulative;
            }
        }
        t
    }
}
