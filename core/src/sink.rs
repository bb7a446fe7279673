//! Partitioned outlets (Bytewax's `FixedPartitionedSink` and
//! `DynamicSink`): records routed to a partition, each partition writing
//! its share, a fixed-partitioned sink's partitions each with its own
//! resume state.
//!
//! ```
//! use databay_core::sink::{FixedPartitionedSink, PartitionedOutlet, StatefulSinkPartition, hash_key};
//! use databay_core::{async_trait, BoxError, Outlet, Record, Update};
//! use serde_json::{json, Value};
//!
//! /// Two partitions counting what they were given.
//! struct Counts;
//! struct Count(u64);
//!
//! #[async_trait]
//! impl StatefulSinkPartition for Count {
//!     async fn write_batch(&mut self, records: &[&Record]) -> Result<(), BoxError> {
//!         self.0 += records.len() as u64;
//!         Ok(())
//!     }
//!     fn snapshot(&self) -> Value {
//!         json!(self.0)
//!     }
//! }
//!
//! #[async_trait]
//! impl FixedPartitionedSink for Counts {
//!     type Partition = Count;
//!     async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
//!         Ok(vec!["even".into(), "odd".into()])
//!     }
//!     fn part_fn(&self, record: &Record) -> usize {
//!         record.payload.as_u64().unwrap_or(0) as usize
//!     }
//!     async fn build_part(&self, _part: &str, resume: Option<Value>) -> Result<Count, BoxError> {
//!         Ok(Count(resume.and_then(|v| v.as_u64()).unwrap_or(0)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
//! let mut outlet = PartitionedOutlet::new(Counts);
//! let records: Vec<Record> = (0..5).map(|n: u64| Record::new(n)).collect();
//! outlet.push(&records, &Update::new(["counts"], 0)).await?;
//! assert_eq!(outlet.snapshot(), Some(json!({"even": 3, "odd": 2})));
//! assert!(hash_key("user-7") < usize::MAX); // a stable hash for part_fn
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::pin::Pin;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::BoxError;
use crate::outlet::Outlet;
use crate::record::Record;
use crate::update::Update;

/// A stable hash of a key (FNV-1a), for a [`FixedPartitionedSink::part_fn`]
/// that spreads keys over partitions: the same key goes to the same
/// partition in every run.
pub fn hash_key(key: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as usize
}

/// One partition of a [`FixedPartitionedSink`], which knows what it has
/// written.
#[async_trait]
pub trait StatefulSinkPartition: Send + 'static {
    /// Writes the records routed to this partition, in order, durably
    /// before returning `Ok`.
    async fn write_batch(&mut self, records: &[&Record]) -> Result<(), BoxError>;

    /// What has been written, for a restore to resume from (a file's
    /// length, a sequence number).
    fn snapshot(&self) -> Value;

    /// Clean-up when the outlet shuts down.
    async fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A partition of a [`DynamicSink`]: it keeps no resume state.
#[async_trait]
pub trait StatelessSinkPartition: Send + 'static {
    /// Writes this worker's share of a batch, in order.
    async fn write_batch(&mut self, records: &[&Record]) -> Result<(), BoxError>;

    /// Clean-up when the outlet shuts down.
    async fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A sink of named partitions, each built from its resume state (Bytewax's
/// `FixedPartitionedSink`). Run it with [`PartitionedOutlet`].
#[async_trait]
pub trait FixedPartitionedSink: Send + Sync + 'static {
    /// The partition type.
    type Partition: StatefulSinkPartition;

    /// The partitions, by key, listed once when the outlet first writes.
    async fn list_parts(&self) -> Result<Vec<String>, BoxError>;

    /// Which partition `record` goes to: an index into
    /// [`list_parts`](FixedPartitionedSink::list_parts), taken modulo their
    /// number ([`hash_key`] of a field spreads keys).
    fn part_fn(&self, record: &Record) -> usize;

    /// Builds partition `part` to resume at `resume` (a value its
    /// snapshot returned), or afresh when `None`.
    async fn build_part(
        &self,
        part: &str,
        resume: Option<Value>,
    ) -> Result<Self::Partition, BoxError>;
}

/// A sink whose workers each write a share of every batch (Bytewax's
/// `DynamicSink`). Run it with [`DynamicOutlet`].
#[async_trait]
pub trait DynamicSink: Send + Sync + 'static {
    /// The partition type.
    type Partition: StatelessSinkPartition;

    /// Builds the partition of worker `worker_index` of `worker_count`.
    async fn build(
        &self,
        worker_index: usize,
        worker_count: usize,
    ) -> Result<Self::Partition, BoxError>;
}

type Write<'a, P> = Pin<Box<dyn Future<Output = (usize, P, Result<(), BoxError>)> + Send + 'a>>;

/// Writes `groups[i]` to `parts[i]`, all at once; the partitions are
/// taken out for the writes and put back.
async fn write_all<P, F>(
    parts: &mut [Option<P>],
    groups: Vec<Vec<&Record>>,
    write: F,
) -> Vec<(usize, BoxError)>
where
    P: Send + 'static,
    F: for<'r> Fn(
        P,
        Vec<&'r Record>,
    ) -> Pin<Box<dyn Future<Output = (P, Result<(), BoxError>)> + Send + 'r>>,
{
    let mut writes: Vec<Write<'_, P>> = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        if let Some(part) = parts[index].take() {
            let fut = write(part, group);
            writes.push(Box::pin(async move {
                let (part, result) = fut.await;
                (index, part, result)
            }));
        }
    }
    let mut failures = Vec::new();
    for (index, part, result) in futures::future::join_all(writes).await {
        parts[index] = Some(part);
        if let Err(e) = result {
            failures.push((index, e));
        }
    }
    failures
}

/// Runs a [`FixedPartitionedSink`] as an [`Outlet`].
///
/// The partitions are listed and built (from their resume states, given by
/// [`resume`](PartitionedOutlet::resume) or [`Outlet::restore`]) at the
/// first push. Each push routes every record with
/// [`part_fn`](FixedPartitionedSink::part_fn), writes each partition's
/// share concurrently, in order within it, and fails naming the
/// partitions that failed. Its [`snapshot`](Outlet::snapshot) is an object
/// of partition key to each partition's snapshot.
pub struct PartitionedOutlet<S: FixedPartitionedSink> {
    sink: S,
    resume: BTreeMap<String, Value>,
    keys: Vec<String>,
    parts: Vec<Option<S::Partition>>,
}

impl<S: FixedPartitionedSink> PartitionedOutlet<S> {
    /// Runs `sink`, every partition afresh.
    pub fn new(sink: S) -> Self {
        PartitionedOutlet {
            sink,
            resume: BTreeMap::new(),
            keys: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Resumes the partitions at these states (partition key to state).
    pub fn resume(mut self, states: BTreeMap<String, Value>) -> Self {
        self.resume = states;
        self
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    async fn build(&mut self) -> Result<(), BoxError> {
        if !self.keys.is_empty() {
            return Ok(());
        }
        let keys = self
            .sink
            .list_parts()
            .await
            .map_err(|e| format!("cannot list the partitions: {e}"))?;
        if keys.is_empty() {
            return Err("the sink lists no partitions".into());
        }
        let mut parts = Vec::with_capacity(keys.len());
        for key in &keys {
            let resume = self.resume.remove(key);
            let part = self
                .sink
                .build_part(key, resume)
                .await
                .map_err(|e| format!("partition `{key}`: cannot build it: {e}"))?;
            parts.push(Some(part));
        }
        self.keys = keys;
        self.parts = parts;
        Ok(())
    }
}

#[async_trait]
impl<S: FixedPartitionedSink> Outlet for PartitionedOutlet<S> {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        self.build().await?;
        let n = self.parts.len();
        let mut groups: Vec<Vec<&Record>> = vec![Vec::new(); n];
        for record in records {
            groups[self.sink.part_fn(record) % n].push(record);
        }
        let failures = write_all(&mut self.parts, groups, |mut part: S::Partition, group| {
            Box::pin(async move {
                let result = part.write_batch(&group).await;
                (part, result)
            })
        })
        .await;
        failed(&self.keys, failures)
    }

    fn snapshot(&self) -> Option<Value> {
        let mut states: Map<String, Value> = self
            .resume
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, part) in self.keys.iter().zip(&self.parts) {
            if let Some(part) = part {
                states.insert(key.clone(), part.snapshot());
            }
        }
        Some(Value::Object(states))
    }

    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        let Value::Object(states) = state else {
            return Err("resume state must be an object of partition key to state".into());
        };
        self.resume = states.into_iter().collect();
        self.keys.clear();
        self.parts.clear();
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        let mut failures = Vec::new();
        for (index, part) in self.parts.iter_mut().enumerate() {
            if let Some(part) = part
                && let Err(e) = part.close().await
            {
                failures.push((index, e));
            }
        }
        failed(&self.keys, failures)
    }
}

/// Runs a [`DynamicSink`] as an [`Outlet`]: `workers` partitions (default
/// 1), each writing a contiguous share of every batch, concurrently. It
/// keeps no resume state.
pub struct DynamicOutlet<S: DynamicSink> {
    sink: S,
    workers: usize,
    keys: Vec<String>,
    parts: Vec<Option<S::Partition>>,
}

impl<S: DynamicSink> DynamicOutlet<S> {
    /// Runs `sink` with one worker.
    pub fn new(sink: S) -> Self {
        DynamicOutlet {
            sink,
            workers: 1,
            keys: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Runs `count` workers (0 is taken as 1). Set before the first push.
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = count.max(1);
        self
    }
}

#[async_trait]
impl<S: DynamicSink> Outlet for DynamicOutlet<S> {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if self.parts.is_empty() {
            for index in 0..self.workers {
                let part = self
                    .sink
                    .build(index, self.workers)
                    .await
                    .map_err(|e| format!("worker {index}: cannot build it: {e}"))?;
                self.parts.push(Some(part));
                self.keys.push(format!("worker {index}"));
            }
        }
        let share = records.len().div_ceil(self.workers).max(1);
        let mut groups: Vec<Vec<&Record>> = records
            .chunks(share)
            .map(|chunk| chunk.iter().collect())
            .collect();
        groups.resize_with(self.workers, Vec::new);
        let failures = write_all(&mut self.parts, groups, |mut part: S::Partition, group| {
            Box::pin(async move {
                let result = part.write_batch(&group).await;
                (part, result)
            })
        })
        .await;
        failed(&self.keys, failures)
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        let mut failures = Vec::new();
        for (index, part) in self.parts.iter_mut().enumerate() {
            if let Some(part) = part
                && let Err(e) = part.close().await
            {
                failures.push((index, e));
            }
        }
        failed(&self.keys, failures)
    }
}

/// One error naming every partition that failed.
fn failed(keys: &[String], failures: Vec<(usize, BoxError)>) -> Result<(), BoxError> {
    if failures.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = failures
        .iter()
        .map(|(i, e)| {
            format!(
                "partition `{}`: {e}",
                keys.get(*i).map_or("?", String::as_str)
            )
        })
        .collect();
    Err(parts.join("; ").into())
}
