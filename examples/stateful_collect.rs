//! `collect` of 10 items or 5 seconds (Bytewax's `collect` example): each
//! sensor's readings are gathered into a list, emitted as soon as it holds
//! 10, or 5 s after its first reading, whichever comes first. The 5 s is a
//! real timer: the `slow` sensor's single reading is emitted by a wake-up
//! of the link between two transfers.
//!
//! The link transfers every 0.4 s (`collect.0` at 0 s to `collect.12` at
//! 4.8 s, `collect.14` at 5.2 s); `fast` brings 3 readings per transfer and
//! `slow` one reading, once. `collect.13` is the wake-up at 5.0 s, which
//! pulls nothing; `collect.15` is the flush of graceful shutdown, which
//! emits what is left:
//!
//! ```text
//! collect.3 fast 10 readings (at 1.2 s)
//! collect.6 fast 10 readings (at 2.4 s)
//! collect.9 fast 10 readings (at 3.6 s)
//! collect.13 slow 1 readings (at 5.0 s)
//! collect.14 fast 10 readings (at 5.2 s)
//! collect.15 fast 2 readings (at 5.3 s)
//! lists emitted: 6
//! ```
//!
//! Run it with `cargo run --example stateful_collect`. It stops by itself
//! after about 5.3 seconds.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use databay_core::stateful::{KEY_META, collect, key_text};
use databay_core::{BoxError, Inlet, Link, Outlet, Planner, Pull, Record, Update, async_trait};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

/// 3 `fast` readings a pull, and one `slow` reading on the first.
struct Sensors(u64);

#[async_trait]
impl Inlet for Sensors {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let mut readings: Vec<Value> = (0..3)
            .map(|i| json!({"sensor": "fast", "n": self.0 * 3 + i}))
            .collect();
        if self.0 == 0 {
            readings.push(json!({"sensor": "slow", "n": 0}));
        }
        self.0 += 1;
        Ok(Pull::values(readings))
    }
}

struct Print {
    started: Instant,
    lists: Arc<AtomicU64>,
}

#[async_trait]
impl Outlet for Print {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            let key = record.meta(KEY_META).and_then(Value::as_str).unwrap_or("-");
            let n = record.payload.as_array().map_or(0, Vec::len);
            let after = self.started.elapsed().as_secs_f64();
            println!("{update} {key} {n} readings (at {after:.1} s)");
            self.lists.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();
    let lists = Arc::new(AtomicU64::new(0));
    let link = Link::builder("collect")
        .inlet(Sensors(0))
        .processor(collect(
            |r: &Record| key_text(r.payload.get("sensor")),
            Duration::from_secs(5),
            10,
        ))
        .outlet(Print {
            started: Instant::now(),
            lists: lists.clone(),
        })
        .every(Duration::from_millis(400))
        .build()?;
    let planner = Planner::new([link])?;
    let running = tokio::spawn({
        let planner = planner.clone();
        async move { planner.start().await }
    });
    tokio::time::sleep(Duration::from_millis(5300)).await;
    planner.shutdown(true);
    running.await??;
    println!("lists emitted: {}", lists.load(Ordering::SeqCst));
    Ok(())
}

/// Logs to stderr, so stdout holds only what the outlet prints. `RUST_LOG`
/// overrides the default level.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}
