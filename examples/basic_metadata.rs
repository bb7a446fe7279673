//! Basic metadata: an outlet that prints only the records whose inlet asked
//! for it through global metadata (Databay's "Basic metadata" example).
//!
//! Two `RandomIntInlet`s feed one link. Each carries the global metadata key
//! `ConditionalPrintOutlet.SHOULD_PRINT`, `true` on one and `false` on the
//! other; the framework attaches it (and `__inlet__`, the inlet's name) to
//! every record, and `ConditionalPrintOutlet` prints only the records that
//! say `true`. Every half second one line appears, never one from the "off"
//! inlet:
//!
//! ```text
//! should_print_metadata.0 Record(payload=44, metadata={"ConditionalPrintOutlet.SHOULD_PRINT": true, "__inlet__": "random_int_inlet_on"})
//! should_print_metadata.1 Record(payload=14, metadata={"ConditionalPrintOutlet.SHOULD_PRINT": true, "__inlet__": "random_int_inlet_on"})
//! ```
//!
//! Run it with `cargo run --example basic_metadata`. It stops by itself
//! after a few seconds, or on Ctrl-C.

use std::error::Error;
use std::time::Duration;

use databay_core::{BoxError, InletHandle, Link, Outlet, Planner, Record, Update, async_trait};
use databay_inlets::RandomIntInlet;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

/// Prints the records whose metadata says they should be printed.
struct ConditionalPrintOutlet;

impl ConditionalPrintOutlet {
    /// Metadata key: whether the record is printed (`true`) or skipped.
    const SHOULD_PRINT: &str = "ConditionalPrintOutlet.SHOULD_PRINT";
}

#[async_trait]
impl Outlet for ConditionalPrintOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            if record.meta(Self::SHOULD_PRINT).and_then(Value::as_bool) == Some(true) {
                println!("{update} {record}");
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();

    let random_int_inlet_on = InletHandle::builder(RandomIntInlet::default())
        .name("random_int_inlet_on")
        .meta(ConditionalPrintOutlet::SHOULD_PRINT, true)
        .build();
    let random_int_inlet_off = InletHandle::builder(RandomIntInlet::default())
        .name("random_int_inlet_off")
        .meta(ConditionalPrintOutlet::SHOULD_PRINT, false)
        .build();

    let link = Link::builder("should_print_metadata")
        .inlet(random_int_inlet_on)
        .inlet(random_int_inlet_off)
        .outlet(ConditionalPrintOutlet)
        .every(Duration::from_millis(500))
        .build()?;

    let planner = Planner::new([link])?;
    run_for(&planner, Duration::from_millis(2200)).await
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
