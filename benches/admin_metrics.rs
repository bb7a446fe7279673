//! `/metrics` benchmark: N links, each after a few transfers, rendered the
//! way the admin endpoint renders them (`AdminState::metrics_text`), with
//! `[admin] link_histograms` off and on. Reports body size and render time
//! (median of several runs), next to a hand-written floor: the same per-link
//! counters read from the same links and written with a plain `write!` loop
//! into a String.
//!
//! ```text
//! cargo bench --bench admin_metrics                      # 1 000 and 10 000 links
//! cargo bench --bench admin_metrics -- --links 100000 --runs 5
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use databay::admin::AdminState;
use databay_core::{
    BoxError, Inlet, Link, NodeKind, Outlet, Planner, Pull, Record, Update, async_trait,
};

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
            // cargo bench passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    args
}

/// A planner of `n` links (not started), each with a few transfers done so
/// counters and histograms hold realistic, non-zero values.
async fn planner(n: usize) -> Planner {
    let links: Vec<Link> = (0..n)
        .map(|i| {
            Link::builder(format!("link-{i}"))
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

/// The floor: the same per-link counter families as the endpoint with
/// histograms off, read from the links and written by hand.
fn hand_written(planner: &Planner) -> String {
    let links = planner.links();
    let mut out = String::with_capacity(links.len() * 1024);
    // Writing into a String cannot fail.
    let _ = write_counters(&mut out, &links);
    out
}

fn write_counters(out: &mut String, links: &[Link]) -> std::fmt::Result {
    let read: Vec<_> = links
        .iter()
        .map(|l| (l.name(), l.is_paused(), l.stats(), l.node_stats()))
        .collect();
    writeln!(out, "# TYPE databay_up gauge\ndatabay_up 1")?;
    writeln!(
        out,
        "# TYPE databay_links gauge\ndatabay_links {}",
        read.len()
    )?;
    writeln!(out, "# TYPE databay_transfers counter")?;
    for (name, _, s, _) in &read {
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"ok\"}} {}",
            s.transfers_ok
        )?;
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"failed\"}} {}",
            s.transfers_failed
        )?;
    }
    type Read = fn(&databay_core::LinkStats) -> u64;
    let counters: [(&str, Read); 5] = [
        ("databay_ticks_skipped", |s| s.ticks_skipped),
        ("databay_records_in", |s| s.records_in),
        ("databay_records_out", |s| s.records_out),
        ("databay_records_dropped", |s| s.records_dropped),
        ("databay_errors", |s| s.errors),
    ];
    for (metric, value) in counters {
        writeln!(out, "# TYPE {metric} counter")?;
        for (name, _, s, _) in &read {
            writeln!(out, "{metric}_total{{link=\"{name}\"}} {}", value(s))?;
        }
    }
    writeln!(out, "# TYPE databay_last_success_timestamp_seconds gauge")?;
    for (name, _, s, _) in &read {
        let secs = s
            .last_success
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        writeln!(
            out,
            "databay_last_success_timestamp_seconds{{link=\"{name}\"}} {secs}"
        )?;
    }
    writeln!(out, "# TYPE databay_link_paused gauge")?;
    for (name, paused, _, _) in &read {
        writeln!(
            out,
            "databay_link_paused{{link=\"{name}\"}} {}",
            u8::from(*paused)
        )?;
    }
    type ReadNode = fn(&databay_core::NodeStats) -> u64;
    let node_counters: [(&str, ReadNode); 3] = [
        ("databay_component_calls", |n| n.calls),
        ("databay_component_records", |n| n.records),
        ("databay_component_errors", |n| n.errors),
    ];
    for (metric, value) in node_counters {
        writeln!(out, "# TYPE {metric} counter")?;
        for (name, _, _, nodes) in &read {
            for n in nodes {
                let kind = if n.kind == NodeKind::Inlet {
                    "inlet"
                } else {
                    "outlet"
                };
                writeln!(
                    out,
                    "{metric}_total{{link=\"{name}\",kind=\"{kind}\",index=\"{}\",component=\"{}\"}} {}",
                    n.index,
                    n.name,
                    value(n)
                )?;
            }
        }
    }
    Ok(())
}

/// Median time of `runs` calls of `render`, and the last body's size.
fn measure<B: AsRef<[u8]>>(runs: usize, mut render: impl FnMut() -> B) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let body = render();
        times.push(t.elapsed());
        size = std::hint::black_box(body).as_ref().len();
    }
    times.sort();
    (times[times.len() / 2], size)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for &n in &args.links {
        let planner = runtime.block_on(planner(n));
        let (floor_time, floor_size) = measure(args.runs, || hand_written(&planner));
        println!(
            "links={n:>6} hand-written counters: {:>7.2} MB {:>8.2} ms",
            mb(floor_size),
            ms(floor_time)
        );
        for on in [false, true] {
            let state = AdminState::new(planner.clone(), Arc::default()).with_link_histograms(on);
            let (time, size) = measure(args.runs, || state.metrics_text().expect("metrics text"));
            println!(
                "links={n:>6} link_histograms={:<5}: {:>7.2} MB {:>8.2} ms  ({:.2}x the floor's time, {:.2}x its size)",
                on,
                mb(size),
                ms(time),
                time.as_secs_f64() / floor_time.as_secs_f64(),
                size as f64 / floor_size as f64,
            );
            // What goes over the wire to a scraper that accepts gzip.
            let (gz_time, gz_size) = measure(args.runs, || {
                let text = state.metrics_text().expect("metrics text");
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut encoder, text.as_bytes()).expect("gzip");
                encoder.finish().expect("gzip")
            });
            println!(
                "links={n:>6} link_histograms={:<5} gzip: {:>7.2} MB {:>8.2} ms (render + compress)",
                on,
                mb(gz_size),
                ms(gz_time),
            );
        }
    }
}
