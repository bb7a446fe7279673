//! Sources with resume state: Bytewax's input API on top of [`Inlet`].
//!
//! An [`Inlet`] stays the simple way to write an inlet. A source that splits
//! into independent partitions, each knowing where it is, implements one of
//! the traits here instead and becomes an inlet through an adapter:
//!
//! - [`FixedPartitionedSource`]: a fixed (or growing) set of named
//!   partitions ([`list_parts`](FixedPartitionedSource::list_parts)), each
//!   built from its resume state
//!   ([`build_part`](FixedPartitionedSource::build_part)) as a
//!   [`StatefulPartition`]. [`PartitionedInlet`] pulls the partitions that
//!   are due concurrently, each with its own `next_awake` and its own end,
//!   and keeps each one's snapshot as of the last commit.
//! - [`DynamicSource`]: a source that splits work by worker
//!   ([`build`](DynamicSource::build) with a worker index and count) into
//!   [`StatelessPartition`]s; [`DynamicInlet`] runs `workers` of them.
//! - [`PollingInlet`]: calls a [`Poller`] on an interval (Bytewax's
//!   `SimplePollingSource`), with `align_to` and a [`Polled::Retry`] to
//!   poll sooner.
//! - [`batch`], [`batch_getter`], [`batch_getter_ex`] and [`batch_async`]:
//!   helpers that turn an iterator, a getter or an async `Stream` into
//!   the batches a partition returns.
//!
//! **Resume state and recovery.** A partition's
//! [`snapshot`](StatefulPartition::snapshot) is the position *after* the
//! last item it handed out. The adapter takes it when the link commits a
//! transfer (every outlet accepted the records), so
//! [`Inlet::snapshot`](crate::Inlet::snapshot) of a [`PartitionedInlet`] is
//! where each partition carries on without repeating a delivered item.
//! When a transfer fails the adapter builds the partitions it pulled again
//! from their committed snapshots: the next transfer reads the same items
//! again (at least once), and nothing is skipped.
//!
//! ```
//! use databay_core::source::{FixedPartitionedSource, PartitionedInlet, StatefulPartition};
//! use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
//! use serde_json::{json, Value};
//!
//! /// Counts up from its resume state, one partition per name.
//! struct Counters(Vec<&'static str>);
//!
//! struct Counter { next: u64, end: u64 }
//!
//! #[async_trait]
//! impl StatefulPartition for Counter {
//!     async fn next_batch(&mut self) -> Result<Pull, BoxError> {
//!         if self.next >= self.end {
//!             return Ok(Pull::exhausted()); // resumed at its end
//!         }
//!         let item = self.next;
//!         self.next += 1;
//!         let batch = Pull::value(item);
//!         Ok(if self.next >= self.end { Pull::Exhausted(batch.into_records()) } else { batch })
//!     }
//!     fn snapshot(&self) -> Value {
//!         json!(self.next) // the position after the last item handed out
//!     }
//! }
//!
//! #[async_trait]
//! impl FixedPartitionedSource for Counters {
//!     type Partition = Counter;
//!     async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
//!         Ok(self.0.iter().map(|s| s.to_string()).collect())
//!     }
//!     async fn build_part(&self, _part: &str, resume: Option<Value>) -> Result<Counter, BoxError> {
//!         let next = resume.and_then(|v| v.as_u64()).unwrap_or(0);
//!         Ok(Counter { next, end: 3 })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
//! let mut inlet = PartitionedInlet::new(Counters(vec!["a", "b"]));
//! let update = Update::new(["counters"], 0);
//! let first = inlet.pull(&update).await?;
//! assert_eq!(first.records().len(), 2); // one item from each partition
//! inlet.commit(&update).await?;
//! assert_eq!(inlet.snapshot(), Some(json!({"a": 1, "b": 1})));
//! # Ok(()) }
//! ```
//!
//! [`Inlet`]: crate::Inlet

mod batch;
mod dynamic;
mod partitioned;
mod polling;

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::BoxError;
use crate::inlet::Pull;

pub use batch::{Batched, Next, batch, batch_async, batch_getter, batch_getter_ex};
pub use dynamic::DynamicInlet;
pub use partitioned::PartitionedInlet;
pub use polling::{Polled, Poller, PollingInlet};

/// The delay before a partition that returned nothing is pulled again when
/// its [`next_awake`](StatefulPartition::next_awake) says nothing (Bytewax's
/// automatic behaviour).
pub const EMPTY_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// One partition of a [`FixedPartitionedSource`], which knows its position.
///
/// Build all of its state from the resume state
/// [`build_part`](FixedPartitionedSource::build_part) is given, never in the
/// source's constructor: that is what makes recovery work.
#[async_trait]
pub trait StatefulPartition: Send + 'static {
    /// The next items that are ready, without waiting for more: records
    /// (possibly none), [`Pull::Nothing`], [`Pull::RetryAfter`] (do not
    /// pull this partition before then), or [`Pull::Exhausted`] with the
    /// last ones (the partition has ended; the others go on).
    async fn next_batch(&mut self) -> Result<Pull, BoxError>;

    /// When to pull this partition next; asked after every batch. Earlier
    /// transfers skip it, and the link wakes for it then, even between
    /// scheduled transfers. `None` (the default): pulled by every transfer,
    /// except that after a batch with nothing in it the partition waits
    /// [`EMPTY_BATCH_DELAY`].
    fn next_awake(&self) -> Option<Instant> {
        None
    }

    /// The position of the next read: the state that, given back to
    /// [`build_part`](FixedPartitionedSource::build_part), resumes *after*
    /// the last item handed out, not at it. Never called after
    /// [`close`](StatefulPartition::close).
    fn snapshot(&self) -> Value;

    /// Clean-up once the partition has ended (finite input). Not called
    /// when the link stops before the end, or aborts.
    async fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A partition of a [`DynamicSource`]: it keeps no resume state.
#[async_trait]
pub trait StatelessPartition: Send + 'static {
    /// The next items that are ready; as
    /// [`StatefulPartition::next_batch`].
    async fn next_batch(&mut self) -> Result<Pull, BoxError>;

    /// When to pull this partition next; as
    /// [`StatefulPartition::next_awake`].
    fn next_awake(&self) -> Option<Instant> {
        None
    }

    /// Clean-up once the partition has ended; as
    /// [`StatefulPartition::close`].
    async fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A source of independent, named partitions, each rebuilt from its resume
/// state (Bytewax's `FixedPartitionedSource`). Run it with
/// [`PartitionedInlet`]. Each partition must hold distinct data: items read
/// by two partitions are delivered twice.
#[async_trait]
pub trait FixedPartitionedSource: Send + Sync + 'static {
    /// The partition type.
    type Partition: StatefulPartition;

    /// The partitions this daemon can read, by key. Listed when the inlet
    /// first pulls, and again on every pull if the adapter is told to
    /// ([`PartitionedInlet::discover`]) so that new partitions are picked
    /// up; a key listed once stays a partition until the inlet is dropped.
    async fn list_parts(&self) -> Result<Vec<String>, BoxError>;

    /// Builds partition `part` (one of the keys `list_parts` gave) to
    /// resume at `resume`, a value its
    /// [`snapshot`](StatefulPartition::snapshot) returned, or from its
    /// start when `None`.
    async fn build_part(
        &self,
        part: &str,
        resume: Option<Value>,
    ) -> Result<Self::Partition, BoxError>;
}

/// A source whose workers each read distinct items and keep no resume
/// state (Bytewax's `DynamicSource`): at most once after a crash. Run it
/// with [`DynamicInlet`].
#[async_trait]
pub trait DynamicSource: Send + Sync + 'static {
    /// The partition type.
    type Partition: StatelessPartition;

    /// Builds the partition of worker `worker_index` of `worker_count`.
    /// In one daemon the workers are the link's `parallelism`; the index
    /// and count are all a partition may rely on, so that workers can
    /// later be spread over several daemons.
    async fn build(
        &self,
        worker_index: usize,
        worker_count: usize,
    ) -> Result<Self::Partition, BoxError>;
}
