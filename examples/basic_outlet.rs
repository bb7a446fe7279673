//! Basic outlet: a hand-written outlet printing each incoming record, fed by
//! the built-in `RandomIntInlet` (Databay's "Basic Outlet" example).
//!
//! Implementing [`Outlet`] takes one async method, `push`, which receives a
//! borrowed batch of records and the [`Update`] naming the transfer. Its
//! `Display` is `tag.index`, so every line says which transfer delivered it:
//!
//! ```text
//! print_outlet.0 10
//! print_outlet.1 34
//! print_outlet.2 18
//! ```
//!
//! Run it with `cargo run --example basic_outlet`. It stops by itself after
//! a few seconds, or on Ctrl-C.

use std::error::Error;
use std::time::Duration;

use databay_core::{BoxError, Link, Outlet, Planner, Record, Update, async_trait};
use databay_inlets::RandomIntInlet;
use tracing_subscriber::EnvFilter;

/// Prints every record's payload, prefixed by the update.
struct PrintOutlet;

#[async_trait]
impl Outlet for PrintOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            println!("{update} {}", record.payload);
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();

    let link = Link::builder("print_outlet")
        .inlet(RandomIntInlet::default())
        .outlet(PrintOutlet)
        .every(Duration::from_secs(1))
        .build()?;

    let planner = Planner::new([link])?;
    run_for(&planner, Duration::from_millis(2500)).await
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
