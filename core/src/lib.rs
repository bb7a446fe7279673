//! The databay engine.
//!
//! **Inlets** produce [`Record`]s, **outlets** consume them, a [`Link`]
//! ties inlets to outlets and runs one transfer per tick of its
//! [`Schedule`], and a [`Planner`] drives many links. Between pull and push
//! a link runs [`processor`]s (filters, transforms, [`Buffer`]s) and
//! groupers (batching).
//!
//! This crate knows nothing of TOML, HTTP or databases: built-in and
//! third-party connectors implement [`Inlet`] and [`Outlet`] against this
//! public API alone, and test themselves with [`testing`].
//!
//! ```
//! use databay_core::{async_trait, BoxError, Inlet, Link, Planner, Pull, Update};
//! use databay_core::testing::CollectOutlet;
//! use std::time::Duration;
//!
//! struct Ticks(u64);
//!
//! #[async_trait]
//! impl Inlet for Ticks {
//!     async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
//!         self.0 += 1;
//!         Ok(Pull::value(self.0))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let outlet = CollectOutlet::new();
//! let link = Link::builder("ticks")
//!     .inlet(Ticks(0))
//!     .outlet(outlet.clone())
//!     .every(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! link.transfer().await.unwrap();
//! assert_eq!(outlet.payloads(), vec![serde_json::json!(1)]);
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod buffer;
pub mod bytes;
pub mod checkpoint;
mod clock;
pub mod compute;
mod error;
mod inlet;
mod link;
mod node;
mod outlet;
mod planner;
pub mod processor;
mod record;
mod reject;
mod retry;
pub mod routing;
mod schedule;
pub mod sink;
pub mod source;
pub mod stateful;
mod stats;
mod sync;
pub mod testing;
pub mod transaction;
mod update;

pub use async_trait::async_trait;
pub use buffer::Buffer;
pub use error::{BoxError, Failure, NodeError, NodeKind, PlannerError, TransferError};
pub use inlet::{Inlet, InletBuilder, InletHandle, Pull};
pub use link::{
    BackoffPolicy, Link, LinkBuilder, LinkState, NodeStats, ProcessorGauges, REPEAT_WINDOW,
    TransferReport,
};
pub use outlet::{
    Delivered, DeliveryError, Outlet, OutletBuilder, OutletHandle, SYNC_AT_LEAST_EVERY,
};
pub use planner::{Planner, PlannerBuilder};
pub use processor::{Context, Gauge, Grouper, Processor, Stateless, Trigger};
pub use record::{INLET_KEY, Metadata, MetadataRef, Origin, Record};
pub use reject::{Reject, Rejected, RejectedRecord};
pub use retry::{Permanent, RetryPolicy};
pub use schedule::{Schedule, ScheduleError};
pub use stats::{HISTOGRAM_BOUNDS, HistogramSnapshot, LinkStats};
pub use update::Update;
