//! Basic inlet: a hand-written inlet producing one random integer per
//! transfer, printed by the built-in `PrintOutlet` (Databay's "Basic Inlet"
//! example).
//!
//! Implementing [`Inlet`] takes one async method, `pull`, returning what the
//! transfer produced; here a single value, which the framework wraps into a
//! record and tags with the inlet's name. The link transfers every second
//! (Databay's example uses five) and prints lines such as:
//!
//! ```text
//! random_ints.0 50
//! random_ints.1 61
//! random_ints.2 5
//! ```
//!
//! Run it with `cargo run --example basic_inlet`. It stops by itself after
//! a few seconds, or on Ctrl-C; set `RUST_LOG=debug` to see every transfer
//! logged on stderr.

use std::error::Error;
use std::time::Duration;

use databay_core::{BoxError, Inlet, Link, Planner, Pull, Update, async_trait};
use databay_outlets::PrintOutlet;
use tracing_subscriber::EnvFilter;

/// Produces one random integer in `[0, 100]` per transfer.
struct RandomIntInlet;

#[async_trait]
impl Inlet for RandomIntInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::value(fastrand::i64(0..=100)))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();

    let link = Link::builder("random_ints")
        .inlet(RandomIntInlet)
        .outlet(PrintOutlet::new().only_payload(true))
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
