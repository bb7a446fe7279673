//! A link ties inlets to outlets and runs one transfer per tick: pull every
//! inlet concurrently, run the processors in order, group, then push each
//! batch to every outlet concurrently. This file holds the [`Link`] type,
//! its public reports and the state its parts share.

mod builder;
mod checkpoint;
mod delivery;
mod driver;
mod exactly_once;
mod handover;
mod health;
mod lifecycle;
mod nodes;
mod parts;
mod pull;
mod resume;
mod transfer;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::error::{Failure, NodeError, NodeKind};
use crate::inlet::InletHandle;
use crate::outlet::OutletHandle;
use crate::processor::{Grouper, Stage};
use crate::schedule::Schedule;
use crate::stats::{Counters, LinkStats};
use crate::sync::lock;
use crate::update::Update;

pub use builder::LinkBuilder;
pub(crate) use driver::LinkEvent;
use health::Health;
pub use health::{BackoffPolicy, REPEAT_WINDOW};

/// What a completed transfer did.
#[derive(Debug)]
#[non_exhaustive]
pub struct TransferReport {
    /// The transfer.
    pub update: Update,
    /// Records pulled from inlets.
    pub records_in: usize,
    /// Records accepted by outlets (summed over outlets).
    pub records_out: usize,
    /// Records outlets refused one by one (each outlet its own copy); the
    /// rest of their batches were delivered.
    pub rejected: Vec<crate::RejectedRecord>,
    /// Records the dead-letter outlet took (see [`crate::routing`]).
    pub dead_lettered: usize,
    /// Errors ignored because the link ignores exceptions.
    pub ignored: Vec<NodeError>,
    /// Wall time of the transfer.
    pub duration: Duration,
}

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkState {
    /// Not scheduled (not in a running planner).
    Idle,
    /// Scheduled, waiting for its next tick.
    Scheduled,
    /// A transfer is running.
    Transferring,
    /// Paused: no scheduled transfers until resumed.
    Paused,
    /// Every inlet is exhausted; the link flushed and stopped.
    Finished,
    /// Starting its inlets and outlets failed (`last_error` says why); the
    /// start is tried again after the backoff.
    Failed,
}

/// Per-node counters of one link: every inlet and outlet reports the same
/// figures, counted here rather than by each component.
#[derive(Default)]
struct NodeCounters {
    calls: AtomicU64,
    records: AtomicU64,
    errors: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    /// Records handed to the dead-letter outlet instead.
    dead_lettered: AtomicU64,
    /// Bytes the connector counted ([`crate::bytes::add`]).
    bytes: AtomicU64,
    /// Whether it ever counted any (a connector that does not count bytes
    /// reports none rather than 0).
    counts_bytes: AtomicBool,
}

impl NodeCounters {
    fn record(&self, records: usize, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds what one metered call counted.
    fn add_bytes(&self, bytes: Option<u64>) {
        if let Some(n) = bytes {
            self.bytes.fetch_add(n, Ordering::Relaxed);
            self.counts_bytes.store(true, Ordering::Relaxed);
        }
    }

    fn snapshot(&self, kind: NodeKind, name: &str, index: usize, retries: u64) -> NodeStats {
        NodeStats {
            kind,
            name: name.to_owned(),
            index,
            calls: self.calls.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            records_failed: self.failed.load(Ordering::Relaxed),
            records_rejected: self.rejected.load(Ordering::Relaxed),
            records_dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            retries,
            bytes: self
                .counts_bytes
                .load(Ordering::Relaxed)
                .then(|| self.bytes.load(Ordering::Relaxed)),
        }
    }
}

/// The figures one of a link's processors reports about what it holds
/// ([`Processor::gauges`](crate::Processor::gauges)): live keys, open
/// windows. Taken after every run of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ProcessorGauges {
    /// The processor's name.
    pub name: String,
    /// Its position in the link's pipeline.
    pub index: usize,
    /// What it reported.
    pub gauges: Vec<crate::processor::Gauge>,
}

/// What one inlet or outlet of a link did, as this link saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// Inlet or outlet.
    pub kind: NodeKind,
    /// The node's name.
    pub name: String,
    /// Its position among the link's inlets (or outlets).
    pub index: usize,
    /// Pulls (or pushes) made.
    pub calls: u64,
    /// Records pulled (or accepted).
    pub records: u64,
    /// Calls that failed (errors, panics, timeouts).
    pub errors: u64,
    /// Outlets: records it was meant to get but did not accept (its push
    /// failed, or the transfer failed before it). Always 0 for inlets.
    pub records_failed: u64,
    /// Outlets: records it refused one by one, writing the rest of their
    /// batch. Always 0 for inlets.
    pub records_rejected: u64,
    /// Outlets: records it rejected or failed to take that went to the
    /// link's dead-letter outlet. Always 0 for inlets.
    pub records_dead_lettered: u64,
    /// Outlets: pushes tried again ([`crate::OutletBuilder::retry`]), by
    /// every link sharing the instance. Always 0 for inlets.
    pub retries: u64,
    /// Bytes read from the source (inlets) or written to the destination
    /// (outlets), as the connector counts them ([`crate::bytes::add`]);
    /// `None` for a connector that does not count bytes.
    pub bytes: Option<u64>,
}

struct InletSlot {
    handle: InletHandle,
    retry_at: Option<Instant>,
    /// When the inlet asked to be pulled next ([`Inlet::wake_at`]): the
    /// link wakes for it then, between scheduled transfers.
    ///
    /// [`Inlet::wake_at`]: crate::Inlet::wake_at
    wake_at: Option<Instant>,
    exhausted: bool,
    /// Its pull in the running transfer said the input ended; it is
    /// `exhausted` once that transfer commits.
    ending: bool,
    /// Pulled by the running transfer and not yet committed or rolled
    /// back: `Some(true)` when the pull succeeded.
    unsettled: Option<bool>,
    counters: Arc<NodeCounters>,
    /// The inlet was seen to keep resume state (its snapshot was `Some`):
    /// its commit lets go of nothing at the source. Asked once.
    keeps_state: bool,
}

impl InletSlot {
    fn new(handle: InletHandle) -> Self {
        InletSlot {
            handle,
            retry_at: None,
            wake_at: None,
            exhausted: false,
            ending: false,
            unsettled: None,
            counters: Arc::default(),
            keeps_state: false,
        }
    }
}

/// What an outlet is to its link (see [`crate::routing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Gets every record not routed elsewhere.
    Fanout,
    /// Gets only the records routed to it.
    Routed,
    /// Gets what the others rejected or failed to take.
    DeadLetter,
}

#[derive(Clone)]
struct OutletSlot {
    handle: OutletHandle,
    role: Role,
    counters: Arc<NodeCounters>,
}

impl OutletSlot {
    fn new(handle: OutletHandle, role: Role) -> Self {
        OutletSlot {
            handle,
            role,
            counters: Arc::default(),
        }
    }
}

struct NamedGrouper {
    name: String,
    grouper: Box<dyn Grouper>,
}

struct Pipeline {
    processors: Vec<Stage>,
    groupers: Vec<NamedGrouper>,
}

#[derive(Default)]
struct Control {
    paused: AtomicBool,
    planner_paused: AtomicBool,
    stop: AtomicBool,
    driving: AtomicBool,
    transferring: AtomicBool,
    finished: AtomicBool,
    /// Its last start failed and it waits to try again.
    start_failed: AtomicBool,
    wake: Notify,
}

struct Inner {
    name: String,
    tags: Arc<[String]>,
    schedule: Schedule,
    immediate_transfer: bool,
    ignore_exceptions: bool,
    backoff: BackoffPolicy,
    /// Failures in a row, the backoff and the log's repeat memory.
    health: Mutex<Health>,
    /// The log's memory of ignored errors, to leave out repeats.
    ignored_log: Mutex<health::Repeats>,
    inlet_concurrency: usize,
    inlet_timeout: Option<Duration>,
    outlet_timeout: Option<Duration>,
    inlets: Mutex<Vec<InletSlot>>,
    outlets: Mutex<Vec<OutletSlot>>,
    pipeline: tokio::sync::Mutex<Pipeline>,
    /// Whether this link has started its nodes (and so owes them a shutdown).
    started: tokio::sync::Mutex<bool>,
    next_index: AtomicU64,
    /// Where the link keeps its checkpoints, if anywhere.
    store: std::sync::OnceLock<Arc<dyn crate::checkpoint::StateStore>>,
    /// The checkpoint last saved or restored: a new one is written only
    /// when something in it changed.
    checkpoint: Mutex<Option<crate::checkpoint::Checkpoint>>,
    /// At most one checkpoint saved in this while (zero: after every
    /// committed transfer); see [`LinkBuilder::checkpoint_every`].
    checkpoint_every: std::time::Duration,
    /// When the last checkpoint was saved.
    checkpoint_saved_at: Mutex<Option<Instant>>,
    /// The checkpoint of the last committed transfer, not saved yet (its
    /// while had not passed): saved by the next one due, or at shutdown.
    checkpoint_owed: Mutex<Option<crate::checkpoint::Checkpoint>>,
    /// The stateful processors' states after the last committed transfer
    /// (or the restored ones): what a failed transfer rolls them back to.
    /// Kept only with a state store.
    committed_processors: Mutex<Option<std::collections::BTreeMap<String, serde_json::Value>>>,
    /// The checkpoint was restored (once per link, at its first start).
    restored: AtomicBool,
    /// The outlet whose database holds the store, which commits each
    /// transfer's records with its checkpoint (see [`crate::transaction`]).
    exactly_once: Mutex<Option<OutletHandle>>,
    /// A commit into that outlet ended in an error, so whether it happened
    /// is unknown: the link reads its checkpoint back before it goes on.
    resync: AtomicBool,
    counters: Counters,
    control: Control,
    has_processors: AtomicBool,
    /// Earliest wake-up requested by a processor.
    processor_wakeup: Mutex<Option<Instant>>,
    /// What the link's processors reported after the last run.
    processor_gauges: Mutex<Vec<ProcessorGauges>>,
    /// Processors a flush does not end (they carry over to a replacement).
    spared: Mutex<Vec<String>>,
    next_tick: Mutex<Option<SystemTime>>,
}

/// Inlets, outlets, a schedule and the pipeline between them. Cheap to
/// clone: clones are the same link.
///
/// ```
/// use databay_core::{Link, Record, Schedule};
/// use databay_core::testing::{CollectOutlet, StaticInlet};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let outlet = CollectOutlet::new();
/// let link = Link::builder("numbers")
///     .inlet(StaticInlet::values([1, 2, 3]))
///     .outlet(outlet.clone())
///     .every(Duration::from_secs(5))
///     .processor(|records: Vec<Record>| records.into_iter().filter(|r| r.payload != 2).collect())
///     .build()
///     .unwrap();
/// let report = link.transfer().await.unwrap();
/// assert_eq!(report.update.to_string(), "numbers.0");
/// assert_eq!(outlet.payloads(), vec![serde_json::json!(1), serde_json::json!(3)]);
/// # }
/// ```
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

impl Link {
    /// The link's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The link's tags.
    pub fn tags(&self) -> &[String] {
        &self.inner.tags
    }

    /// The link's schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.inner.schedule
    }

    /// Whether the link wants a transfer as soon as it is started.
    pub fn immediate_transfer(&self) -> bool {
        self.inner.immediate_transfer
    }

    /// Whether node errors are ignored.
    pub fn ignores_exceptions(&self) -> bool {
        self.inner.ignore_exceptions
    }

    /// Whether both values are the same link.
    pub fn same_as(&self, other: &Link) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The inlets, in order.
    pub fn inlets(&self) -> Vec<InletHandle> {
        lock(&self.inner.inlets)
            .iter()
            .map(|s| s.handle.clone())
            .collect()
    }

    /// The outlets, in order.
    pub fn outlets(&self) -> Vec<OutletHandle> {
        lock(&self.inner.outlets)
            .iter()
            .map(|o| o.handle.clone())
            .collect()
    }

    /// What each inlet and outlet did for this link, inlets first (the
    /// dead-letter outlet among the outlets, as [`NodeKind::DeadLetter`]).
    pub fn node_stats(&self) -> Vec<NodeStats> {
        let mut stats: Vec<NodeStats> = lock(&self.inner.inlets)
            .iter()
            .enumerate()
            .map(|(i, s)| s.counters.snapshot(NodeKind::Inlet, s.handle.name(), i, 0))
            .collect();
        stats.extend(lock(&self.inner.outlets).iter().enumerate().map(|(i, s)| {
            let kind = match s.role {
                Role::DeadLetter => NodeKind::DeadLetter,
                Role::Fanout | Role::Routed => NodeKind::Outlet,
            };
            s.counters
                .snapshot(kind, s.handle.name(), i, s.handle.retries())
        }));
        stats
    }

    /// What the link's processors that report gauges (stateful operators)
    /// said after the link's last transfer, timer wake-up or flush.
    pub fn processor_gauges(&self) -> Vec<ProcessorGauges> {
        lock(&self.inner.processor_gauges).clone()
    }

    /// When the next scheduled transfer is due, if the link is scheduled.
    pub fn next_transfer(&self) -> Option<SystemTime> {
        *lock(&self.inner.next_tick)
    }

    /// The link's counters.
    pub fn stats(&self) -> LinkStats {
        let mut stats = self.inner.counters.snapshot();
        let health = lock(&self.inner.health);
        stats.consecutive_failures = u64::from(health.failures());
        stats.backoff_until = health.until_wall();
        stats
    }

    /// Whether every inlet has reported the end of its input.
    pub fn is_exhausted(&self) -> bool {
        let slots = lock(&self.inner.inlets);
        !slots.is_empty() && slots.iter().all(|s| s.exhausted)
    }

    fn hook_error(&self, kind: NodeKind, node: &str, phase: &str, failure: Failure) -> NodeError {
        NodeError {
            link: self.inner.name.clone(),
            update: phase.to_owned(),
            kind,
            node: node.to_owned(),
            failure,
        }
    }

    fn node_error(
        &self,
        update: &Update,
        kind: NodeKind,
        node: &str,
        failure: Failure,
    ) -> NodeError {
        NodeError {
            link: self.inner.name.clone(),
            update: update.to_string(),
            kind,
            node: node.to_owned(),
            failure,
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("name", &self.inner.name)
            .field("tags", &self.inner.tags)
            .field("schedule", &self.inner.schedule)
            .field("inlets", &self.inlets())
            .field("outlets", &self.outlets())
            .finish()
    }
}
