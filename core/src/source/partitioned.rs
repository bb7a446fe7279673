//! [`PartitionedInlet`]: a [`FixedPartitionedSource`] as an [`Inlet`].

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Map, Value};

use super::{EMPTY_BATCH_DELAY, FixedPartitionedSource, StatefulPartition};
use crate::error::BoxError;
use crate::inlet::{Inlet, Pull};
use crate::record::Record;
use crate::update::Update;

/// Runs a [`FixedPartitionedSource`] as an [`Inlet`].
///
/// - On its first pull it lists the partitions and builds each from its
///   resume state (given by [`resume`](PartitionedInlet::resume) or
///   [`Inlet::restore`]), from the start if it has none.
/// - Each pull pulls every partition that is due, each on a task of its
///   own so that they use every core (at most
///   [`concurrency`](PartitionedInlet::concurrency) at once), and returns
///   their records in partition order. A partition waiting for its
///   [`next_awake`](StatefulPartition::next_awake) is skipped; the link is
///   woken for it ([`Inlet::wake_at`]). A partition that has ended is not
///   pulled again; the inlet ends when all have (unless it
///   [`discover`](PartitionedInlet::discover)s new ones).
/// - A commit takes each pulled partition's snapshot: that is the inlet's
///   [`snapshot`](Inlet::snapshot), a JSON object of partition key to
///   state. A rollback (the transfer failed, or this pull did) builds the
///   pulled partitions again from their committed state, so their items
///   are read again: nothing is lost.
/// - A partition's error fails the pull, naming the partition; the other
///   partitions pulled with it are rolled back with it.
pub struct PartitionedInlet<S: FixedPartitionedSource> {
    source: S,
    /// Resume states of partitions not built yet.
    resume: BTreeMap<String, Value>,
    concurrency: usize,
    discover: bool,
    /// Stateless partitions keep no snapshot and are not rebuilt.
    stateless: bool,
    listed: bool,
    slots: Vec<Slot<S::Partition>>,
}

struct Slot<P> {
    key: String,
    /// `None` once the partition has ended and was closed.
    partition: Option<P>,
    /// The state as of the last commit (or the resume state it was built
    /// from); what a rollback rebuilds it from.
    committed: Option<Value>,
    /// The snapshot taken when it ended, before `close`.
    last: Option<Value>,
    /// Not pulled before this.
    awake: Option<Instant>,
    /// `awake` came from the partition (`next_awake`, `RetryAfter`), not
    /// from the automatic delay after an empty batch: the link is woken
    /// for it.
    explicit: bool,
    exhausted: bool,
    /// Pulled since the last commit or rollback.
    pulled: bool,
}

impl<S: FixedPartitionedSource> PartitionedInlet<S> {
    /// Runs `source`, every partition from its start.
    pub fn new(source: S) -> Self {
        PartitionedInlet {
            source,
            resume: BTreeMap::new(),
            concurrency: 0,
            discover: false,
            stateless: false,
            listed: false,
            slots: Vec::new(),
        }
    }

    /// Resumes the partitions at these states (partition key to a value
    /// its snapshot returned); partitions not named start from the start.
    pub fn resume(mut self, states: BTreeMap<String, Value>) -> Self {
        self.resume = states;
        self
    }

    /// Pulls at most `limit` partitions at once (0, the default: all that
    /// are due). The daemon sets the link's `inlet_concurrency`.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit;
        self
    }

    /// Lists the partitions again on every pull, and builds the new ones
    /// (a directory's new files). The inlet then never ends by itself.
    pub fn discover(mut self, on: bool) -> Self {
        self.discover = on;
        self
    }

    pub(super) fn stateless(mut self) -> Self {
        self.stateless = true;
        self
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    pub(super) fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The partition keys built so far, in order.
    pub fn partitions(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.key.as_str()).collect()
    }

    async fn list(&mut self) -> Result<(), BoxError> {
        if self.listed && !self.discover {
            return Ok(());
        }
        let keys = self
            .source
            .list_parts()
            .await
            .map_err(|e| format!("cannot list the partitions: {e}"))?;
        for key in keys {
            if self.slots.iter().any(|s| s.key == key) {
                continue;
            }
            let resume = self.resume.remove(&key);
            let partition = self
                .source
                .build_part(&key, resume.clone())
                .await
                .map_err(|e| format!("partition `{key}`: cannot build it: {e}"))?;
            self.slots.push(Slot {
                key,
                partition: Some(partition),
                committed: resume,
                last: None,
                awake: None,
                explicit: false,
                exhausted: false,
                pulled: false,
            });
        }
        self.listed = true;
        Ok(())
    }
}

#[async_trait]
impl<S: FixedPartitionedSource> Inlet for PartitionedInlet<S> {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        self.list().await?;
        let now = crate::clock::now();
        // The due partitions are taken out of their slots for the pull (a
        // slot is marked pulled first, so a panic leaves it to be rebuilt
        // by the rollback) and put back with their batches.
        let mut jobs: Vec<(usize, S::Partition)> = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if slot.exhausted || slot.awake.is_some_and(|at| at > now) {
                continue;
            }
            if let Some(partition) = slot.partition.take() {
                slot.pulled = true;
                jobs.push((index, partition));
            }
        }
        let limit = match self.concurrency {
            0 => jobs.len().max(1),
            n => n,
        };
        // Each partition is pulled on a task of its own, so partitions that
        // parse or decode what they read use every core. The bytes a
        // partition counts are carried back to this pull's meter.
        let batches: Vec<(usize, Joined<S::Partition>)> = futures::stream::iter(jobs)
            .map(|(index, mut partition)| {
                let task = AbortOnDrop(tokio::spawn(async move {
                    let (result, bytes) = crate::bytes::metered(partition.next_batch()).await;
                    (partition, result, bytes)
                }));
                async move { (index, task.join().await) }
            })
            .buffered(limit)
            .collect()
            .await;

        let mut records: Vec<Record> = Vec::new();
        let mut failure: Option<String> = None;
        for (index, joined) in batches {
            let slot = &mut self.slots[index];
            let result = match joined {
                Ok((partition, result, bytes)) => {
                    slot.partition = Some(partition);
                    if let Some(n) = bytes {
                        crate::bytes::add(n);
                    }
                    result
                }
                // The partition went down with its task: the rollback of
                // this failed pull builds it again from its committed state.
                Err(panic) => {
                    failure.get_or_insert(format!("partition `{}`: {panic}", slot.key));
                    continue;
                }
            };
            let after = crate::clock::now();
            let (produced, empty) = match result {
                Ok(Pull::Records(r)) => {
                    let empty = r.is_empty();
                    (r, empty)
                }
                Ok(Pull::Nothing) => (Vec::new(), true),
                Ok(Pull::RetryAfter(d)) => {
                    slot.awake = Some(crate::clock::after(after, d.max(EMPTY_BATCH_DELAY)));
                    slot.explicit = true;
                    continue;
                }
                Ok(Pull::Exhausted(r)) => {
                    slot.exhausted = true;
                    if let Some(mut p) = slot.partition.take() {
                        if !self.stateless {
                            slot.last = Some(p.snapshot());
                        }
                        if let Err(e) = p.close().await {
                            failure.get_or_insert(format!("partition `{}`: close: {e}", slot.key));
                        }
                    }
                    records.extend(r);
                    continue;
                }
                Err(e) => {
                    failure.get_or_insert(format!("partition `{}`: {e}", slot.key));
                    continue;
                }
            };
            let asked = slot.partition.as_ref().and_then(|p| p.next_awake());
            slot.explicit = asked.is_some();
            slot.awake = asked.or(empty.then(|| crate::clock::after(after, EMPTY_BATCH_DELAY)));
            if records.is_empty() {
                records = produced;
            } else {
                records.extend(produced);
            }
        }
        if let Some(message) = failure {
            return Err(message.into());
        }
        let ended = !self.discover && self.slots.iter().all(|s| s.exhausted);
        Ok(if ended {
            Pull::Exhausted(records)
        } else {
            Pull::Records(records)
        })
    }

    fn wake_at(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| !s.exhausted && s.explicit)
            .filter_map(|s| s.awake)
            .min()
    }

    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        for slot in self.slots.iter_mut().filter(|s| s.pulled) {
            slot.pulled = false;
            if self.stateless {
                continue;
            }
            slot.committed = match &slot.partition {
                Some(p) => Some(p.snapshot()),
                None => slot.last.clone(),
            };
        }
        Ok(())
    }

    async fn rollback(&mut self, _update: &Update) -> Result<(), BoxError> {
        let mut failure = None;
        for slot in self.slots.iter_mut().filter(|s| s.pulled) {
            slot.pulled = false;
            // A stateless partition keeps its place, unless it was lost
            // (its task panicked or the pull was cut off): then it starts
            // again.
            if self.stateless && (slot.partition.is_some() || slot.exhausted) {
                continue;
            }
            // Rebuilt from what was committed: what it handed out since is
            // read again by the next pull.
            match self
                .source
                .build_part(&slot.key, slot.committed.clone())
                .await
            {
                Ok(p) => {
                    slot.partition = Some(p);
                    slot.exhausted = false;
                    slot.last = None;
                    slot.awake = None;
                    slot.explicit = false;
                }
                Err(e) => {
                    // Left out until the next pull lists it again, with
                    // its committed state kept: nothing after it is lost.
                    slot.partition = None;
                    slot.exhausted = false;
                    failure.get_or_insert(format!(
                        "partition `{}`: cannot build it again after a failed transfer: {e}",
                        slot.key
                    ));
                }
            }
        }
        if failure.is_some() {
            let (kept, lost): (Vec<_>, Vec<_>) = std::mem::take(&mut self.slots)
                .into_iter()
                .partition(|s| s.partition.is_some() || s.exhausted);
            self.slots = kept;
            for slot in lost {
                if let Some(state) = slot.committed {
                    self.resume.insert(slot.key, state);
                }
            }
            self.listed = false;
        }
        match failure {
            Some(message) => Err(message.into()),
            None => Ok(()),
        }
    }

    fn snapshot(&self) -> Option<Value> {
        if self.stateless {
            return None;
        }
        let mut states: Map<String, Value> = self
            .resume
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for slot in &self.slots {
            if let Some(state) = &slot.committed {
                states.insert(slot.key.clone(), state.clone());
            }
        }
        Some(Value::Object(states))
    }

    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.stateless {
            return Err("this inlet keeps no resume state".into());
        }
        let Value::Object(states) = state else {
            return Err(format!(
                "resume state must be an object of partition key to state, not {}",
                kind(&state)
            )
            .into());
        };
        self.resume = states.into_iter().collect();
        self.slots.clear();
        self.listed = false;
        Ok(())
    }
}

/// What a partition's task gives back: the partition, its batch and the
/// bytes it counted; or, if the task panicked, the panic's message.
type Joined<P> = Result<(P, Result<Pull, BoxError>, Option<u64>), String>;

/// A spawned pull that is aborted when the pull waiting for it is dropped
/// (cut off by the inlet's timeout, or the link stopping).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, String> {
        (&mut self.0).await.map_err(|e| match e.try_into_panic() {
            Ok(panic) => format!("panicked: {}", crate::node::panic_message(panic.as_ref())),
            Err(e) => format!("its task ended: {e}"),
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
