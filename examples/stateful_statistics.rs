//! Statistics per key with `fold_final` (Bytewax's `create_stats` /
//! `update_stats` example): each key's accumulator starts from the builder
//! and the folder adds every value. Nothing is emitted until the end of the
//! stream, here the flush after the inlet said its input ended (`statistics.3`); then each
//! key emits its statistics, in key order:
//!
//! ```text
//! statistics.3 humidity {"count":3,"max":61.0,"min":40.0,"sum":152.0}
//! statistics.3 temperature {"count":4,"max":23.5,"min":18.0,"sum":83.0}
//! ```
//!
//! Run it with `cargo run --example stateful_statistics`.

use std::collections::VecDeque;
use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{KEY_META, fold_final, key_text};
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Produces the next batch on each pull; the last batch ends the input.
struct Script(VecDeque<Vec<Value>>);

#[async_trait]
impl Inlet for Script {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let batch = self.0.pop_front().unwrap_or_default();
        let records = batch.into_iter().map(Record::new).collect();
        Ok(if self.0.is_empty() {
            Pull::Exhausted(records)
        } else {
            Pull::Records(records)
        })
    }
}

struct Print;

#[async_trait]
impl Outlet for Print {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            let key = record.meta(KEY_META).and_then(Value::as_str).unwrap_or("-");
            println!("{update} {key} {}", record.payload);
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Stats {
    sum: f64,
    count: u64,
    min: f64,
    max: f64,
}

fn create_stats() -> Stats {
    Stats {
        sum: 0.0,
        count: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    }
}

fn update_stats(stats: Stats, reading: Value) -> Stats {
    let value = reading["value"].as_f64().unwrap_or(0.0);
    Stats {
        sum: stats.sum + value,
        count: stats.count + 1,
        min: stats.min.min(value),
        max: stats.max.max(value),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let reading = |sensor: &str, value: f64| json!({"sensor": sensor, "value": value});
    let script = Script(VecDeque::from([
        vec![reading("temperature", 18.0), reading("humidity", 40.0)],
        vec![reading("temperature", 23.5), reading("temperature", 21.5)],
        vec![
            reading("humidity", 61.0),
            reading("temperature", 20.0),
            reading("humidity", 51.0),
        ],
    ]));
    let stats = fold_final(
        |r: &Record| key_text(r.payload.get("sensor")),
        create_stats,
        update_stats,
    );
    let link = Link::builder("statistics")
        .inlet(script)
        .processor(stats)
        .outlet(Print)
        .every(Duration::from_secs(1))
        .build()?;
    for _ in 0..3 {
        link.transfer().await?;
    }
    // The inlet said its input ended: the end of the stream.
    link.flush().await?;
    Ok(())
}
