//! Scheduling isolation: do heavy links make light ones late?
//!
//! 200 light links (`random_int` -> `null`, every 100 ms) run for 10 s,
//! alone, then beside two heavy links that read 500 000 NDJSON lines per
//! transfer through a jq `map` (each reads a 3 000 000-line file): once with
//! heavy work off the async workers (the default), once with it in place
//! (`--compute-threads 0`, how every transfer ran before). For the light
//! links it prints the transfers done against those due, and the share of
//! transfers started later than 5 ms, 25 ms and 500 ms after their tick
//! (from the per-link lateness histograms of `/metrics`).
//!
//! `cargo bench --bench isolation` (builds the release binary).

use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const LIGHT: usize = 200;
const RUN: Duration = Duration::from_secs(10);
const HEAVY_LINES: usize = 3_000_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config(port: u16, heavy: Option<&Path>) -> String {
    let mut text = format!(
        "[daemon]\nimmediate_transfer = true\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\nlink_histograms = true\n"
    );
    for i in 0..LIGHT {
        write!(
            text,
            "\n[[link]]\nname = \"light{i}\"\nevery = \"100ms\"\n\n  [[link.inlet]]\n  type = \"random_int\"\n\n  [[link.outlet]]\n  type = \"null\"\n"
        )
        .unwrap();
    }
    if let Some(path) = heavy {
        for i in 0..2 {
            write!(
                text,
                "\n[[link]]\nname = \"heavy{i}\"\nevery = \"100ms\"\n\n  [[link.inlet]]\n  type = \"file\"\n  path = \"{}\"\n  json = true\n  lines_per_transfer = 500000\n\n  [[link.processor]]\n  type = \"map\"\n  expr = \".amount_cents = ((.amount * 100) | round)\"\n\n  [[link.outlet]]\n  type = \"null\"\n",
                path.display()
            )
            .unwrap();
        }
    }
    text
}

fn metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
}

/// The value of a sample line `name{labels} value`.
fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

struct Figures {
    transfers: f64,
    late_5ms: f64,
    late_25ms: f64,
    late_500ms: f64,
    cpu: f64,
}

fn read_figures(text: &str) -> Figures {
    let light = |line: &str| line.contains("link=\"light");
    let transfers: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("databay_transfers_total{") && light(l) && l.contains("result=\"ok\"")
        })
        .map(value)
        .sum();
    let bucket = |le: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("databay_schedule_lateness_seconds_bucket{")
                    && light(l)
                    && l.contains(&format!("le=\"{le}\""))
            })
            .map(value)
            .sum()
    };
    let all = bucket("+Inf");
    let share_over = |le: &str| {
        if all > 0.0 {
            100.0 * (1.0 - bucket(le) / all)
        } else {
            0.0
        }
    };
    Figures {
        transfers,
        late_5ms: share_over("0.005"),
        late_25ms: share_over("0.025"),
        late_500ms: share_over("0.5"),
        cpu: 0.0,
    }
}

fn run(dir: &Path, name: &str, heavy: Option<&Path>, compute_threads: Option<&str>) -> Figures {
    let port = free_port();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config(port, heavy)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_databay"));
    command.args(["--log-level", "error"]);
    if let Some(n) = compute_threads {
        command.args(["--compute-threads", n]);
    }
    let mut child: Child = command
        .arg("run")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("databay");
    // Wait for the admin endpoint, then measure RUN from there.
    let ready = Instant::now();
    while metrics(port).is_none() {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "databay did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = metrics(port).map(|t| read_figures(&t)).unwrap();
    let cpu_before = support::cpu_time(child.id()).unwrap_or_default();
    let start = Instant::now();
    std::thread::sleep(RUN);
    let text = metrics(port).unwrap_or_default();
    let took = start.elapsed().as_secs_f64();
    let cpu = support::cpu_time(child.id())
        .unwrap_or_default()
        .saturating_sub(cpu_before)
        .as_secs_f64()
        / took
        * 100.0;
    let _ = child.kill();
    let _ = child.wait();
    let mut figures = read_figures(&text);
    figures.transfers -= before.transfers;
    figures.cpu = cpu;
    figures
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let heavy_input = dir.path().join("orders.ndjson");
    {
        let mut out = BufWriter::new(std::fs::File::create(&heavy_input).unwrap());
        for i in 0..HEAVY_LINES {
            writeln!(
                out,
                "{{\"id\":{i},\"user\":\"u{}\",\"amount\":{}.{:02}}}",
                i % 1000,
                i % 50,
                i % 100
            )
            .unwrap();
        }
    }
    let due = LIGHT as f64 * RUN.as_secs_f64() / 0.1;
    println!(
        "{LIGHT} light links every 100 ms for {} s ({due} transfers due); 2 heavy links: 500 000 NDJSON lines per transfer through jq map",
        RUN.as_secs()
    );
    println!(
        "{:<44} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "", "transfers", "of due", ">5ms", ">25ms", ">500ms", "CPU"
    );
    for (name, heavy, threads) in [
        ("light links alone", None, None),
        (
            "+ heavy links, heavy work off the workers",
            Some(heavy_input.as_path()),
            None,
        ),
        (
            "+ heavy links, heavy work in place (before)",
            Some(heavy_input.as_path()),
            Some("0"),
        ),
    ] {
        let f = run(dir.path(), "isolation", heavy, threads);
        println!(
            "{name:<44} {:>10.0} {:>7.1}% {:>7.2}% {:>7.2}% {:>8.2}% {:>7.0}%",
            f.transfers,
            100.0 * f.transfers / due,
            f.late_5ms,
            f.late_25ms,
            f.late_500ms,
            f.cpu
        );
    }
}
