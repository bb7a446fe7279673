//! [`DynamicInlet`]: a [`DynamicSource`] as an [`Inlet`], one stateless
//! partition per worker.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    DynamicSource, FixedPartitionedSource, PartitionedInlet, StatefulPartition, StatelessPartition,
};
use crate::error::BoxError;
use crate::inlet::{Inlet, Pull};
use crate::update::Update;

/// Runs a [`DynamicSource`] as an [`Inlet`]: `workers` partitions (the
/// link's `parallelism`, default 1), built with
/// [`build(index, workers)`](DynamicSource::build) on the first pull,
/// pulled concurrently like a [`PartitionedInlet`]'s. It keeps no resume
/// state: a failed transfer is not read again, and a restart starts anew.
///
/// ```
/// use databay_core::source::{DynamicInlet, DynamicSource, StatelessPartition};
/// use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
///
/// /// Worker `i` of `n` emits the numbers below 10 that are `i` modulo `n`.
/// struct Strided;
/// struct Stride { next: u64, step: u64 }
///
/// #[async_trait]
/// impl StatelessPartition for Stride {
///     async fn next_batch(&mut self) -> Result<Pull, BoxError> {
///         let item = self.next;
///         self.next += self.step;
///         Ok(if item >= 10 { Pull::exhausted() } else { Pull::value(item) })
///     }
/// }
///
/// #[async_trait]
/// impl DynamicSource for Strided {
///     type Partition = Stride;
///     async fn build(&self, index: usize, count: usize) -> Result<Stride, BoxError> {
///         Ok(Stride { next: index as u64, step: count as u64 })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let mut inlet = DynamicInlet::new(Strided).workers(3);
/// let first = inlet.pull(&Update::new(["strided"], 0)).await?;
/// let items: Vec<_> = first.records().iter().map(|r| r.payload.clone()).collect();
/// assert_eq!(items, [0, 1, 2]);
/// # Ok(()) }
/// ```
pub struct DynamicInlet<S: DynamicSource> {
    inner: PartitionedInlet<Workers<S>>,
}

impl<S: DynamicSource> DynamicInlet<S> {
    /// Runs `source` with one worker.
    pub fn new(source: S) -> Self {
        DynamicInlet {
            inner: PartitionedInlet::new(Workers { source, count: 1 }).stateless(),
        }
    }

    /// Runs `count` workers (0 is taken as 1). Set before the first pull.
    pub fn workers(mut self, count: usize) -> Self {
        self.inner.source_mut().count = count.max(1);
        self
    }

    /// Pulls at most `limit` workers at once (0, the default: all).
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.inner = self.inner.concurrency(limit);
        self
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.inner.source().source
    }
}

#[async_trait]
impl<S: DynamicSource> Inlet for DynamicInlet<S> {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.inner.pull(update).await
    }

    fn wake_at(&self) -> Option<Instant> {
        self.inner.wake_at()
    }

    // A rollback builds again a worker that went down with its task.
    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        self.inner.commit(update).await
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        self.inner.rollback(update).await
    }
}

/// The workers of a dynamic source as fixed partitions `"0"`, `"1"`, ...
struct Workers<S> {
    source: S,
    count: usize,
}

#[async_trait]
impl<S: DynamicSource> FixedPartitionedSource for Workers<S> {
    type Partition = Worker<S::Partition>;

    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok((0..self.count).map(|i| i.to_string()).collect())
    }

    async fn build_part(
        &self,
        part: &str,
        _resume: Option<Value>,
    ) -> Result<Self::Partition, BoxError> {
        let index: usize = part.parse().map_err(|_| format!("no worker `{part}`"))?;
        Ok(Worker(self.source.build(index, self.count).await?))
    }
}

struct Worker<P>(P);

#[async_trait]
impl<P: StatelessPartition> StatefulPartition for Worker<P> {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        self.0.next_batch().await
    }

    fn next_awake(&self) -> Option<Instant> {
        self.0.next_awake()
    }

    fn snapshot(&self) -> Value {
        Value::Null
    }

    async fn close(&mut self) -> Result<(), BoxError> {
        self.0.close().await
    }
}
