//! Scheduling benchmark: N links, each with a trivial inlet and a no-op
//! outlet, on a 1 s interval for a fixed time. Reports transfers achieved
//! against expected, schedule lateness (p50/p99/max, measured inside the
//! pull against the tick the transfer was scheduled for), CPU time and peak
//! RSS.
//!
//! ```text
//! cargo bench --bench scheduling -- --links 100000 --secs 30
//! cargo bench --bench scheduling -- --links 1000,10000,100000 --secs 30
//! ```
//!
//! Links' phases are spread evenly over the interval (`align_to = i/N s`),
//! as a daemon's links added at different times would be; `--together`
//! makes every link fire at the same instant instead (worst case).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use databay_core::{
    BoxError, Inlet, Link, Outlet, Planner, Pull, Record, Schedule, Update, async_trait,
};
use hdrhistogram::Histogram;

thread_local! {
    static LATENESS: RefCell<Option<Arc<Mutex<Histogram<u64>>>>> = const { RefCell::new(None) };
}

/// Every worker thread's lateness histogram (microseconds).
static ALL: Mutex<Vec<Arc<Mutex<Histogram<u64>>>>> = Mutex::new(Vec::new());

/// Transfers that reached the inlet, across all links.
static PULLS: AtomicU64 = AtomicU64::new(0);

fn record_lateness(micros: u64) {
    LATENESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let h = slot.get_or_insert_with(|| {
            let h = Arc::new(Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ));
            ALL.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(h.clone());
            h
        });
        let _ = h
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(micros.max(1));
    });
}

struct Tick;

#[async_trait]
impl Inlet for Tick {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        PULLS.fetch_add(1, Ordering::Relaxed);
        if let Some(due) = update.scheduled_for() {
            record_lateness(Instant::now().saturating_duration_since(due).as_micros() as u64);
        }
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

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Peak resident set size in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Args {
    links: Vec<usize>,
    secs: u64,
    interval: Duration,
    together: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        links: vec![1_000, 10_000, 100_000],
        secs: 30,
        interval: Duration::from_secs(1),
        together: false,
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
            "--together" => args.together = true,
            // cargo bench passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    args
}

async fn run(n: usize, args: &Args) {
    let interval = args.interval;
    let builder = (0..n).fold(Planner::builder(), |b, i| {
        let offset = if args.together {
            Duration::ZERO
        } else {
            interval.mul_f64(i as f64 / n as f64)
        };
        let schedule = Schedule::every(interval)
            .expect("non-zero interval")
            .align_to(offset);
        let link = Link::builder(format!("link-{i}"))
            .inlet(Tick)
            .outlet(Discard)
            .schedule(schedule)
            .immediate_transfer(false)
            .build()
            .expect("valid link");
        b.link(link)
    });
    let planner = builder.build().expect("unique link names");
    let rss_before = peak_rss_mib();
    let runner = {
        let p = planner.clone();
        tokio::spawn(async move { p.start().await })
    };
    // Wait until every link is scheduled (starting 100 000 links takes a
    // while), let each arm its first timer, then measure a whole window.
    let setup = Instant::now();
    while !planner.running()
        || planner
            .links()
            .iter()
            .any(|l| l.state() == databay_core::LinkState::Idle)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = setup.elapsed();
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let base = PULLS.load(Ordering::Relaxed);
    for h in ALL.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        h.lock().unwrap_or_else(|p| p.into_inner()).reset();
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let done = PULLS.load(Ordering::Relaxed) - base;
    let links = planner.links();
    let skipped: u64 = links.iter().map(|l| l.stats().ticks_skipped).sum();
    let idle = links.iter().filter(|l| l.stats().transfers_ok == 0).count();
    planner.shutdown(false);
    let _ = runner.await;

    let mut merged =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    for h in ALL.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = merged.add(&*h.lock().unwrap_or_else(|p| p.into_inner()));
    }
    let expected = (n as f64 * wall / interval.as_secs_f64()).round() as u64;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "links={n:>7} interval={:?} window={wall:.1}s transfers={done} expected≈{expected} ({:.2}%) skipped={skipped} never_fired={idle} \
         lateness p50={:.2}ms p99={:.2}ms max={:.2}ms cpu={:.1}% of one core peak_rss={:.0}MiB (before start {:.0}MiB) start={:.2}s",
        interval,
        100.0 * done as f64 / expected.max(1) as f64,
        ms(merged.value_at_quantile(0.50)),
        ms(merged.value_at_quantile(0.99)),
        ms(merged.max()),
        100.0 * cpu / wall,
        peak_rss_mib(),
        rss_before,
        setup.as_secs_f64(),
    );
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for &n in &args.links {
        runtime.block_on(run(n, &args));
    }
}
