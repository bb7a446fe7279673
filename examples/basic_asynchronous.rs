//! Basic asynchronous: slow inlets and a slow outlet overlap their waits
//! (Databay's "Basic asynchronous" example).
//!
//! Three inlets each wait 0.5 s before producing a random integer; a link
//! pulls its inlets concurrently, so all three finish together after 0.5 s,
//! not one after another. The outlet then waits 0.5 s per record, for all
//! records at once (`join_all`). One transfer therefore takes about 1 s
//! although it holds six 0.5 s waits (3 s if they ran in sequence).
//!
//! Every line carries the time since the transfer was scheduled:
//!
//! ```text
//! +0.501s async.0 produced:20
//! +0.501s async.0 produced:55
//! +0.501s async.0 produced:22
//! +0.502s async.0 push starts
//! +1.003s async.0 consumed:20
//! +1.003s async.0 consumed:55
//! +1.003s async.0 consumed:22
//! async.0 done: transfer took 1.003s
//! ```
//!
//! As Databay's example turns on its debug log, this one logs the engine's
//! debug lines (`transfer`, `done`) to stderr unless `RUST_LOG` says
//! otherwise.
//!
//! Run it with `cargo run --example basic_asynchronous`. It stops by itself
//! after two transfers, or on Ctrl-C.

use std::error::Error;
use std::time::Duration;

use databay_core::{BoxError, Inlet, Link, Outlet, Planner, Pull, Record, Update, async_trait};
use futures::future::join_all;
use tracing_subscriber::EnvFilter;

/// How long each simulated operation takes.
const WAIT: Duration = Duration::from_millis(500);

/// Time since the transfer was scheduled, as `+0.501s`.
fn since_start(update: &Update) -> String {
    match update.scheduled_for() {
        Some(at) => format!("+{:.3}s", at.elapsed().as_secs_f64()),
        // Only forced transfers and flushes are unscheduled; none run here.
        None => "+?".to_owned(),
    }
}

/// Waits, then produces one random integer.
struct RandomIntInlet;

#[async_trait]
impl Inlet for RandomIntInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        // Simulates a slow operation: a request, a query.
        tokio::time::sleep(WAIT).await;
        let r = fastrand::i64(0..=100);
        println!("{} {update} produced:{r}", since_start(update));
        Ok(Pull::value(r))
    }
}

/// Waits once per record, for every record at the same time, then prints it.
struct PrintOutlet;

impl PrintOutlet {
    async fn print_task(record: &Record, update: &Update) {
        tokio::time::sleep(WAIT).await;
        println!(
            "{} {update} consumed:{}",
            since_start(update),
            record.payload
        );
    }
}

#[async_trait]
impl Outlet for PrintOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        println!("{} {update} push starts", since_start(update));
        join_all(records.iter().map(|r| Self::print_task(r, update))).await;
        if let Some(at) = update.scheduled_for() {
            println!(
                "{update} done: transfer took {:.3}s",
                at.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing("info,databay_core=debug");

    let link = Link::builder("async")
        .inlet(RandomIntInlet)
        .inlet(RandomIntInlet)
        .inlet(RandomIntInlet)
        .outlet(PrintOutlet)
        .every(Duration::from_secs(2))
        .build()?;

    let planner = Planner::new([link])?;
    // Transfers at 0 s and 2 s, each done about 1 s later.
    run_for(&planner, Duration::from_millis(3500)).await
}

/// Logs to stderr, so stdout holds only what the nodes print. `RUST_LOG`
/// overrides `default`.
fn init_tracing(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the planner until `limit` has passed or Ctrl-C is pressed, then shuts
/// it down gracefully: the transfer in flight finishes and `on_shutdown`
/// runs before this returns.
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
