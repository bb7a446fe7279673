//! A sliding window written as a low-level `StatefulLogic` (Bytewax's
//! `SlidingWindowLogic` example): each sensor keeps its readings of the last
//! second, emits the window's sum on every reading, and asks to be notified
//! when its oldest reading leaves the window (`notify_at`). The link wakes
//! up for that even between transfers; `on_notify` drops what expired and
//! emits the new sum, and once a sensor's window is empty its logic is
//! discarded (DISCARD), so it holds no memory.
//!
//! The link transfers every 0.4 s; the sensor sends 1, 2, 3 on the first
//! three transfers and then nothing:
//!
//! ```text
//! sum 1 (a reading)
//! sum 3 (a reading)
//! sum 6 (a reading)
//! sum 5 (expired)
//! sum 3 (expired)
//! sum 0 (expired)
//! live sensors: 0
//! ```
//!
//! Run it with `cargo run --example stateful_sliding_window`. It stops by
//! itself after about 2.5 seconds.

use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{
    DISCARD, DateTime, RETAIN, Retention, StatefulLogic, TimeDelta, Utc, key_text, stateful,
};
use databay_core::{BoxError, Inlet, Link, Outlet, Planner, Pull, Record, Update, async_trait};
use serde_json::json;
use tracing_subscriber::EnvFilter;

/// Sends 1, 2, 3 on the first three pulls, then nothing.
struct Sensor(i64);

#[async_trait]
impl Inlet for Sensor {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        self.0 += 1;
        if self.0 > 3 {
            return Ok(Pull::values(Vec::<i64>::new()));
        }
        Ok(Pull::value(json!({"sensor": "s1", "value": self.0})))
    }
}

struct Print;

#[async_trait]
impl Outlet for Print {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        for record in records {
            println!(
                "sum {} ({})",
                record.payload["sum"],
                record.payload["why"].as_str().unwrap_or("")
            );
        }
        Ok(())
    }
}

/// One sensor's readings of the last `window`.
struct SlidingWindowLogic {
    window: TimeDelta,
    items: Vec<(DateTime<Utc>, i64)>,
}

impl SlidingWindowLogic {
    fn sum(&self, why: &str) -> Record {
        let total: i64 = self.items.iter().map(|(_, v)| v).sum();
        Record::new(json!({"sum": total, "why": why}))
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let cutoff = now - self.window;
        self.items.retain(|(at, _)| *at > cutoff);
    }
}

impl StatefulLogic for SlidingWindowLogic {
    type Snapshot = Vec<(DateTime<Utc>, i64)>;

    fn on_item(&mut self, record: Record, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        self.items
            .push((now, record.payload["value"].as_i64().unwrap_or(0)));
        self.expire(now);
        (vec![self.sum("a reading")], RETAIN)
    }

    fn on_notify(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let before = self.items.len();
        self.expire(now);
        let out = if self.items.len() == before {
            vec![]
        } else {
            vec![self.sum("expired")]
        };
        let keep = if self.items.is_empty() {
            DISCARD
        } else {
            RETAIN
        };
        (out, keep)
    }

    fn notify_at(&self) -> Option<DateTime<Utc>> {
        self.items.first().map(|(at, _)| *at + self.window)
    }

    fn snapshot(&self) -> Self::Snapshot {
        self.items.clone()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();
    let windows = stateful(
        |r: &Record| key_text(r.payload.get("sensor")),
        |resume: Option<Vec<(DateTime<Utc>, i64)>>| SlidingWindowLogic {
            window: TimeDelta::seconds(1),
            items: resume.unwrap_or_default(),
        },
    );
    let link = Link::builder("sliding")
        .inlet(Sensor(0))
        .processor(windows)
        .outlet(Print)
        .every(Duration::from_millis(400))
        .build()?;
    let planner = Planner::new([link.clone()])?;
    let running = tokio::spawn({
        let planner = planner.clone();
        async move { planner.start().await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    planner.shutdown(true);
    running.await??;
    let live = link
        .processor_gauges()
        .first()
        .and_then(|p| p.gauges.iter().find(|g| g.name == "keys").map(|g| g.value))
        .unwrap_or(0);
    println!("live sensors: {live}");
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
