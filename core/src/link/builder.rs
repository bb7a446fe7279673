//! [`LinkBuilder`]: a link's name, nodes, pipeline, schedule and limits,
//! gathered before the link exists.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::health::{BackoffPolicy, Health, Repeats};
use super::{Control, InletSlot, Inner, Link, NamedGrouper, OutletSlot, Pipeline, Role};
use crate::checkpoint::StateStore;
use crate::inlet::InletHandle;
use crate::outlet::OutletHandle;
use crate::processor::{Grouper, Processor, Stage};
use crate::schedule::{Schedule, ScheduleError};
use crate::stats::Counters;

/// Configures a [`Link`].
pub struct LinkBuilder {
    name: String,
    tags: Option<Vec<String>>,
    schedule: Result<Schedule, ScheduleError>,
    inlets: Vec<InletHandle>,
    outlets: Vec<(OutletHandle, Role)>,
    processors: Vec<Stage>,
    groupers: Vec<NamedGrouper>,
    immediate_transfer: bool,
    ignore_exceptions: bool,
    backoff: BackoffPolicy,
    inlet_concurrency: usize,
    inlet_timeout: Option<Duration>,
    outlet_timeout: Option<Duration>,
    store: Option<Arc<dyn StateStore>>,
    checkpoint_every: Duration,
}

impl LinkBuilder {
    /// Tags of the link; [`Update`](crate::Update) displays them. Defaults to the name.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps the link's checkpoints in `store`: the link restores the last
    /// one when it starts and writes one after each committed transfer
    /// (see [`checkpoint`](crate::checkpoint)).
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Saves at most one checkpoint in `every` (default zero: one after
    /// each committed transfer), as Bytewax's snapshot interval does. The
    /// transfers in between commit as always (their inlets move on, their
    /// processors' state is what a failure rolls back to); the checkpoint
    /// of the last of them is saved by the next transfer after `every`,
    /// or when the link shuts down, and an outlet that defers its sync
    /// ([`Outlet::defers_sync`](crate::Outlet::defers_sync)) is synced
    /// only for the transfers that save one. A crash resumes from the
    /// last checkpoint saved: at most `every` of transfers are read again
    /// (the file outlets cut back what they wrote since, so they still
    /// hold each record once).
    pub fn checkpoint_every(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// Adds an inlet (an instance, or a shared [`InletHandle`]).
    pub fn inlet(mut self, inlet: impl Into<InletHandle>) -> Self {
        self.inlets.push(inlet.into());
        self
    }

    /// Adds an outlet (an instance, or a shared [`OutletHandle`]): it gets
    /// every record not routed to another outlet.
    pub fn outlet(mut self, outlet: impl Into<OutletHandle>) -> Self {
        self.outlets.push((outlet.into(), Role::Fanout));
        self
    }

    /// Adds an outlet that gets only the records routed to it by name
    /// (their [`ROUTE_KEY`](crate::routing::ROUTE_KEY) metadata; see
    /// [`crate::routing`]): a window's late records, say.
    pub fn routed_outlet(mut self, outlet: impl Into<OutletHandle>) -> Self {
        self.outlets.push((outlet.into(), Role::Routed));
        self
    }

    /// Sends what the outlets reject, and the batches whose push failed
    /// for good, to `outlet` instead of failing the transfer (see
    /// [`crate::routing`]). A second call replaces the first.
    pub fn dead_letter(mut self, outlet: impl Into<OutletHandle>) -> Self {
        self.outlets.retain(|(_, role)| *role != Role::DeadLetter);
        self.outlets.push((outlet.into(), Role::DeadLetter));
        self
    }

    /// Appends a processor to the pipeline.
    pub fn processor<P: Processor>(mut self, processor: P) -> Self {
        let position = self.processors.len();
        self.processors.push(Stage::new(processor, position));
        self
    }

    /// Appends a processor with an explicit name (for logs and errors).
    pub fn named_processor<P: Processor>(mut self, name: impl Into<String>, processor: P) -> Self {
        let mut stage = Stage::new(processor, self.processors.len());
        stage.name = name.into();
        self.processors.push(stage);
        self
    }

    /// Appends a grouper.
    pub fn grouper<G: Grouper>(mut self, grouper: G) -> Self {
        let name = format!("groupers[{}]", self.groupers.len());
        self.groupers.push(NamedGrouper {
            name,
            grouper: Box::new(grouper),
        });
        self
    }

    /// Transfers on `schedule`. Without a schedule a link is manual.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = Ok(schedule);
        self
    }

    /// Shorthand for `schedule(Schedule::every(interval)?)`.
    pub fn every(mut self, interval: Duration) -> Self {
        self.schedule = Schedule::every(interval);
        self
    }

    /// Whether the planner transfers once as soon as it starts the link
    /// (default `true`; the planner's own setting must agree).
    pub fn immediate_transfer(mut self, yes: bool) -> Self {
        self.immediate_transfer = yes;
        self
    }

    /// Log and count node errors and carry on with the rest of the transfer
    /// instead of failing it. A processor that fails drops the batch it was
    /// given (never passes it on unprocessed).
    pub fn ignore_exceptions(mut self, yes: bool) -> Self {
        self.ignore_exceptions = yes;
        self
    }

    /// At most this many inlets are pulled at once (0: no limit, the default).
    pub fn inlet_concurrency(mut self, limit: usize) -> Self {
        self.inlet_concurrency = limit;
        self
    }

    /// Default pull timeout for the link's inlets (a handle's own wins).
    pub fn inlet_timeout(mut self, timeout: Duration) -> Self {
        self.inlet_timeout = Some(timeout);
        self
    }

    /// Default push timeout for the link's outlets (a handle's own wins).
    pub fn outlet_timeout(mut self, timeout: Duration) -> Self {
        self.outlet_timeout = Some(timeout);
        self
    }

    /// How the link waits after failed transfers or a failed start
    /// (default: 1 s, doubling, at most 5 min; a zero `initial` turns it
    /// off).
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = policy;
        self
    }

    /// The link, or why its schedule is invalid.
    pub fn build(self) -> Result<Link, ScheduleError> {
        let schedule = self.schedule?;
        let tags = self.tags.unwrap_or_else(|| vec![self.name.clone()]);
        let has_processors = !self.processors.is_empty();
        Ok(Link {
            inner: Arc::new(Inner {
                name: self.name,
                tags: tags.into(),
                schedule,
                immediate_transfer: self.immediate_transfer,
                ignore_exceptions: self.ignore_exceptions,
                backoff: self.backoff,
                health: Mutex::new(Health::default()),
                ignored_log: Mutex::new(Repeats::default()),
                inlet_concurrency: self.inlet_concurrency,
                inlet_timeout: self.inlet_timeout,
                outlet_timeout: self.outlet_timeout,
                inlets: Mutex::new(self.inlets.into_iter().map(InletSlot::new).collect()),
                outlets: Mutex::new(
                    self.outlets
                        .into_iter()
                        .map(|(handle, role)| OutletSlot::new(handle, role))
                        .collect(),
                ),
                pipeline: tokio::sync::Mutex::new(Pipeline {
                    processors: self.processors,
                    groupers: self.groupers,
                }),
                started: tokio::sync::Mutex::new(false),
                next_index: AtomicU64::new(0),
                store: self
                    .store
                    .map(std::sync::OnceLock::from)
                    .unwrap_or_default(),
                checkpoint: Mutex::new(None),
                checkpoint_every: self.checkpoint_every,
                checkpoint_saved_at: Mutex::new(None),
                checkpoint_owed: Mutex::new(None),
                committed_processors: Mutex::new(None),
                restored: AtomicBool::new(false),
                exactly_once: Mutex::new(None),
                resync: AtomicBool::new(false),
                counters: Counters::default(),
                control: Control::default(),
                has_processors: AtomicBool::new(has_processors),
                processor_wakeup: Mutex::new(None),
                spared: Mutex::new(Vec::new()),
                processor_gauges: Mutex::new(Vec::new()),
                next_tick: Mutex::new(None),
            }),
        })
    }
}

impl Link {
    /// Starts configuring a link called `name`.
    pub fn builder(name: impl Into<String>) -> LinkBuilder {
        LinkBuilder {
            name: name.into(),
            tags: None,
            schedule: Ok(Schedule::Manual),
            inlets: Vec::new(),
            outlets: Vec::new(),
            processors: Vec::new(),
            groupers: Vec::new(),
            immediate_transfer: true,
            ignore_exceptions: false,
            backoff: BackoffPolicy::default(),
            inlet_concurrency: 0,
            inlet_timeout: None,
            outlet_timeout: None,
            store: None,
            checkpoint_every: Duration::ZERO,
        }
    }
}
