//! Buffers: a link processor that holds records until a count or time
//! threshold releases them (Databay's "Buffers" section), and that gives
//! them up on graceful shutdown, which Databay does not.
//!
//! The buffer has `count_threshold(10)` and `time_threshold(1.2 s)`, and
//! releases when either is met. The link transfers every 0.5 s from an
//! inlet that produces 4, 4, 3, 2, 0, 0 and 1 records (numbered from 1):
//!
//! 1. `buffers.0` and `buffers.1` bring 4 + 4 records: the buffer holds them.
//! 2. `buffers.2` brings 3 more: 11 reach the threshold of 10, and the
//!    outlet receives all 11 at once, as in Databay's example.
//! 3. `buffers.3` brings 2 records, then nothing comes for a while. 1.2 s
//!    after the first of them arrived, the link wakes up between two
//!    transfers (`buffers.6`, an update that pulls nothing) and the time
//!    threshold releases them.
//! 4. `buffers.7` brings 1 record; the example shuts down before any
//!    threshold is met. Graceful shutdown flushes the buffer (`buffers.8`),
//!    so the outlet still receives it: nothing is lost.
//!
//! ```text
//! buffers.0 inlet produced 4 records: [1, 2, 3, 4]
//! buffers.0 buffer holds 4 records
//! buffers.1 inlet produced 4 records: [5, 6, 7, 8]
//! buffers.1 buffer holds 8 records
//! buffers.2 inlet produced 3 records: [9, 10, 11]
//! buffers.2 buffer released 11 records (count threshold reached)
//! buffers.2 outlet received 11 records: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
//! buffers.3 inlet produced 2 records: [12, 13]
//! buffers.3 buffer holds 2 records
//! buffers.4 buffer holds 2 records
//! buffers.5 buffer holds 2 records
//! buffers.6 buffer released 2 records (time threshold reached)
//! buffers.6 outlet received 2 records: [12, 13]
//! buffers.7 inlet produced 1 record: [14]
//! buffers.7 buffer holds 1 record
//! buffers.8 buffer released 1 record (flushed on shutdown)
//! buffers.8 outlet received 1 record: [14]
//! produced 14 records, delivered 14, lost 0
//! ```
//!
//! Run it with `cargo run --example buffers`. It stops by itself after
//! about 3 seconds, or on Ctrl-C (which flushes the buffer just the same).

use std::collections::VecDeque;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use databay_core::{
    BoxError, Buffer, Context, Inlet, Link, Outlet, Planner, Processor, Pull, Record, Trigger,
    Update, async_trait,
};
use tracing_subscriber::EnvFilter;

const COUNT_THRESHOLD: usize = 10;
const TIME_THRESHOLD: Duration = Duration::from_millis(1200);

/// Produces a scripted number of records per transfer, numbered from 1,
/// then nothing.
struct ScriptedInlet {
    script: VecDeque<usize>,
    produced: Arc<AtomicUsize>,
}

#[async_trait]
impl Inlet for ScriptedInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        let count = self.script.pop_front().unwrap_or(0);
        if count == 0 {
            return Ok(Pull::Nothing);
        }
        let first = self.produced.fetch_add(count, Ordering::SeqCst) + 1;
        let ids: Vec<usize> = (first..first + count).collect();
        println!(
            "{update} inlet produced {}: {}",
            n_records(count),
            list(ids.iter())
        );
        Ok(Pull::values(ids))
    }
}

/// Placed after the buffer, reports what it held back or let through.
struct BufferReport {
    buffer: Buffer,
}

#[async_trait]
impl Processor for BufferReport {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        let update = cx.update;
        if records.is_empty() {
            if cx.trigger == Trigger::Transfer {
                println!("{update} buffer holds {}", n_records(self.buffer.len()));
            }
        } else {
            let why = match cx.trigger {
                Trigger::Transfer if records.len() >= COUNT_THRESHOLD => "count threshold reached",
                Trigger::Transfer | Trigger::Timer => "time threshold reached",
                Trigger::Flush => "flushed on shutdown",
                _ => "released",
            };
            println!(
                "{update} buffer released {} ({why})",
                n_records(records.len())
            );
        }
        Ok(records)
    }
}

/// Prints each batch it receives on one line and counts the records.
struct BatchPrintOutlet {
    delivered: Arc<AtomicUsize>,
}

#[async_trait]
impl Outlet for BatchPrintOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        println!(
            "{update} outlet received {}: {}",
            n_records(records.len()),
            list(records.iter().map(|r| &r.payload))
        );
        self.delivered.fetch_add(records.len(), Ordering::SeqCst);
        Ok(())
    }
}

/// `1 record`, `2 records`.
fn n_records(n: usize) -> String {
    if n == 1 {
        "1 record".to_owned()
    } else {
        format!("{n} records")
    }
}

/// `[1, 2, 3]`.
fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();

    let produced = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let buffer = Buffer::new()
        .count_threshold(COUNT_THRESHOLD)
        .time_threshold(TIME_THRESHOLD);

    let link = Link::builder("buffers")
        .inlet(ScriptedInlet {
            script: VecDeque::from([4, 4, 3, 2, 0, 0, 1]),
            produced: produced.clone(),
        })
        // The link owns the buffer; the clone kept by `BufferReport` is a
        // handle to the same records.
        .processor(buffer.clone())
        .processor(BufferReport { buffer })
        .outlet(BatchPrintOutlet {
            delivered: delivered.clone(),
        })
        .every(Duration::from_millis(500))
        .build()?;

    let planner = Planner::new([link])?;
    // Stop 0.3 s after `buffers.7`, while its record is still held.
    run_for(&planner, Duration::from_millis(3300)).await?;

    let produced = produced.load(Ordering::SeqCst);
    let delivered = delivered.load(Ordering::SeqCst);
    println!(
        "produced {produced} records, delivered {delivered}, lost {}",
        produced.saturating_sub(delivered)
    );
    Ok(())
}

/// Logs to stderr, so stdout holds only what the nodes print. `RUST_LOG`
/// overrides the default level.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the planner until `limit` has passed or Ctrl-C is pressed, then shuts
/// it down gracefully: the transfer in flight finishes, the buffer is
/// flushed to the outlet and `on_shutdown` runs before this returns.
async fn run_for(planner: &Planner, limit: Duration) -> Result<(), Box<dyn Error>> {
    let mut running = tokio::spawn({
        let planner = planner.clone();
        async move { planner.start().await }
    });
    tokio::select! {
        // The planner stops by itself only when a transfer failed.
        stopped = &mut running => {
            stopped??;
            return Ok(());
        }
        () = tokio::time::sleep(limit) => tracing::info!("demo over after {limit:?}; shutting down"),
        signal = tokio::signal::ctrl_c() => {
            signal?;
            tracing::info!("Ctrl-C received; shutting down");
        }
    }
    planner.shutdown(true);
    running.await??;
    Ok(())
}
