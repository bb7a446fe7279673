//! A link ties inlets to outlets and runs one transfer per tick: pull every
//! inlet concurrently, run the processors in order, group, then push each
//! batch to every outlet concurrently.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::future::join_all;
use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

use crate::error::{Failure, NodeError, NodeKind, TransferError};
use crate::inlet::{InletHandle, Pull};
use crate::node::guarded;
use crate::outlet::OutletHandle;
use crate::processor::{Context, Grouper, Processor, Stage, Trigger};
use crate::record::Record;
use crate::schedule::{Schedule, ScheduleError, Ticker};
use crate::stats::{Counters, LinkStats};
use crate::update::Update;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data
    // is still consistent, so keep going rather than poison every caller.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a completed transfer did.
#[derive(Debug)]
pub struct TransferReport {
    /// The transfer.
    pub update: Update,
    /// Records pulled from inlets.
    pub records_in: usize,
    /// Records accepted by outlets (summed over outlets).
    pub records_out: usize,
    /// Errors ignored because the link ignores exceptions.
    pub ignored: Vec<NodeError>,
    /// Wall time of the transfer.
    pub duration: Duration,
}

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
}

/// Per-node counters of one link: every inlet and outlet reports the same
/// figures, counted here rather than by each component.
#[derive(Default)]
struct NodeCounters {
    calls: AtomicU64,
    records: AtomicU64,
    errors: AtomicU64,
}

impl NodeCounters {
    fn record(&self, records: usize, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self, kind: NodeKind, name: &str, index: usize) -> NodeStats {
        NodeStats {
            kind,
            name: name.to_owned(),
            index,
            calls: self.calls.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// What one inlet or outlet of a link did, as this link saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
}

struct InletSlot {
    handle: InletHandle,
    retry_at: Option<Instant>,
    exhausted: bool,
    counters: Arc<NodeCounters>,
}

#[derive(Clone)]
struct OutletSlot {
    handle: OutletHandle,
    counters: Arc<NodeCounters>,
}

impl OutletSlot {
    fn new(handle: OutletHandle) -> Self {
        OutletSlot {
            handle,
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
    wake: Notify,
}

struct Inner {
    name: String,
    tags: Arc<[String]>,
    schedule: Schedule,
    immediate_transfer: bool,
    ignore_exceptions: bool,
    inlet_concurrency: usize,
    inlet_timeout: Option<Duration>,
    outlet_timeout: Option<Duration>,
    inlets: Mutex<Vec<InletSlot>>,
    outlets: Mutex<Vec<OutletSlot>>,
    pipeline: tokio::sync::Mutex<Pipeline>,
    /// Whether this link has started its nodes (and so owes them a shutdown).
    started: tokio::sync::Mutex<bool>,
    next_index: AtomicU64,
    counters: Counters,
    control: Control,
    has_processors: AtomicBool,
    /// Earliest wake-up requested by a processor.
    processor_wakeup: Mutex<Option<Instant>>,
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

/// Configures a [`Link`].
pub struct LinkBuilder {
    name: String,
    tags: Option<Vec<String>>,
    schedule: Result<Schedule, ScheduleError>,
    inlets: Vec<InletHandle>,
    outlets: Vec<OutletHandle>,
    processors: Vec<Stage>,
    groupers: Vec<NamedGrouper>,
    immediate_transfer: bool,
    ignore_exceptions: bool,
    inlet_concurrency: usize,
    inlet_timeout: Option<Duration>,
    outlet_timeout: Option<Duration>,
}

impl LinkBuilder {
    /// Tags of the link; [`Update`] displays them. Defaults to the name.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Adds an inlet (an instance, or a shared [`InletHandle`]).
    pub fn inlet(mut self, inlet: impl Into<InletHandle>) -> Self {
        self.inlets.push(inlet.into());
        self
    }

    /// Adds an outlet (an instance, or a shared [`OutletHandle`]).
    pub fn outlet(mut self, outlet: impl Into<OutletHandle>) -> Self {
        self.outlets.push(outlet.into());
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
                inlet_concurrency: self.inlet_concurrency,
                inlet_timeout: self.inlet_timeout,
                outlet_timeout: self.outlet_timeout,
                inlets: Mutex::new(self.inlets.into_iter().map(InletSlot::new).collect()),
                outlets: Mutex::new(self.outlets.into_iter().map(OutletSlot::new).collect()),
                pipeline: tokio::sync::Mutex::new(Pipeline {
                    processors: self.processors,
                    groupers: self.groupers,
                }),
                started: tokio::sync::Mutex::new(false),
                next_index: AtomicU64::new(0),
                counters: Counters::default(),
                control: Control::default(),
                has_processors: AtomicBool::new(has_processors),
                processor_wakeup: Mutex::new(None),
                next_tick: Mutex::new(None),
            }),
        })
    }
}

impl InletSlot {
    fn new(handle: InletHandle) -> Self {
        InletSlot {
            handle,
            retry_at: None,
            exhausted: false,
            counters: Arc::default(),
        }
    }
}

/// The shortest retry delay honoured: an inlet answering `RetryAfter(0)`
/// over and over is pulled at most this often.
const MIN_RETRY: Duration = Duration::from_millis(1);

/// Holds a flag up for as long as it lives.
struct Flag<'a>(&'a AtomicBool);

impl<'a> Flag<'a> {
    fn raise(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        Flag(flag)
    }
}

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// One push to one outlet, in a span naming it.
async fn deliver(
    slot: &OutletSlot,
    batch: &[Record],
    cx: &Context<'_>,
    timeout: Option<Duration>,
) -> Result<usize, crate::outlet::DeliveryError> {
    let span = tracing::info_span!("outlet", component = %slot.handle.name());
    slot.handle
        .deliver(batch, cx, timeout)
        .instrument(span)
        .await
}

/// Which inlets a transfer pulls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pulls {
    /// Every inlet that is not exhausted or waiting out a retry delay.
    Due,
    /// Only inlets whose retry delay has just ended.
    Retries,
    /// None (timer wake-ups and flushes).
    None,
}

/// Something a link's driver tells the planner.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Failed(TransferError),
    Finished(String),
    /// A link left the planner (its end may be what finishes the rest).
    Removed,
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
            inlet_concurrency: 0,
            inlet_timeout: None,
            outlet_timeout: None,
        }
    }

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

    /// What each inlet and outlet did for this link, inlets first.
    pub fn node_stats(&self) -> Vec<NodeStats> {
        let mut stats: Vec<NodeStats> = lock(&self.inner.inlets)
            .iter()
            .enumerate()
            .map(|(i, s)| s.counters.snapshot(NodeKind::Inlet, s.handle.name(), i))
            .collect();
        stats.extend(
            lock(&self.inner.outlets)
                .iter()
                .enumerate()
                .map(|(i, s)| s.counters.snapshot(NodeKind::Outlet, s.handle.name(), i)),
        );
        stats
    }

    /// Adds an inlet; if the link is running, the inlet is started first.
    pub async fn add_inlet(&self, inlet: impl Into<InletHandle>) -> Result<(), NodeError> {
        let inlet = inlet.into();
        let started = self.inner.started.lock().await;
        if *started {
            inlet
                .start()
                .await
                .map_err(|f| self.hook_error(NodeKind::Inlet, inlet.name(), "on_start", f))?;
        }
        lock(&self.inner.inlets).push(InletSlot::new(inlet));
        self.inner.control.wake.notify_one();
        Ok(())
    }

    /// Removes an inlet (matched by instance); if the link is running, the
    /// inlet is shut down (when no other link uses it). Returns whether it
    /// was there.
    pub async fn remove_inlet(&self, inlet: &InletHandle) -> Result<bool, NodeError> {
        let started = self.inner.started.lock().await;
        let removed = {
            let mut slots = lock(&self.inner.inlets);
            let before = slots.len();
            slots.retain(|s| !s.handle.same_as(inlet));
            before != slots.len()
        };
        if removed && *started {
            inlet
                .shutdown()
                .await
                .map_err(|f| self.hook_error(NodeKind::Inlet, inlet.name(), "on_shutdown", f))?;
        }
        Ok(removed)
    }

    /// Adds an outlet; if the link is running, the outlet is started first.
    pub async fn add_outlet(&self, outlet: impl Into<OutletHandle>) -> Result<(), NodeError> {
        let outlet = outlet.into();
        let started = self.inner.started.lock().await;
        if *started {
            outlet
                .start()
                .await
                .map_err(|f| self.hook_error(NodeKind::Outlet, outlet.name(), "on_start", f))?;
        }
        lock(&self.inner.outlets).push(OutletSlot::new(outlet));
        self.inner.control.wake.notify_one();
        Ok(())
    }

    /// Removes an outlet (matched by instance), shutting it down if the link
    /// is running. Returns whether it was there.
    pub async fn remove_outlet(&self, outlet: &OutletHandle) -> Result<bool, NodeError> {
        let started = self.inner.started.lock().await;
        let removed = {
            let mut outlets = lock(&self.inner.outlets);
            let before = outlets.len();
            outlets.retain(|o| !o.handle.same_as(outlet));
            before != outlets.len()
        };
        if removed && *started {
            outlet
                .shutdown()
                .await
                .map_err(|f| self.hook_error(NodeKind::Outlet, outlet.name(), "on_shutdown", f))?;
        }
        Ok(removed)
    }

    /// Pauses scheduled transfers (forced transfers still run).
    pub fn pause(&self) {
        self.inner.control.paused.store(true, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    /// Resumes scheduled transfers; the schedule restarts from now.
    pub fn resume(&self) {
        self.inner.control.paused.store(false, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    pub(crate) fn set_planner_paused(&self, paused: bool) {
        self.inner
            .control
            .planner_paused
            .store(paused, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    /// Whether scheduled transfers are paused (by the link or its planner).
    pub fn is_paused(&self) -> bool {
        let c = &self.inner.control;
        c.paused.load(Ordering::SeqCst) || c.planner_paused.load(Ordering::SeqCst)
    }

    /// Where the link is in its life.
    pub fn state(&self) -> LinkState {
        let c = &self.inner.control;
        if c.finished.load(Ordering::SeqCst) {
            LinkState::Finished
        } else if c.transferring.load(Ordering::SeqCst) {
            LinkState::Transferring
        } else if !c.driving.load(Ordering::SeqCst) {
            LinkState::Idle
        } else if self.is_paused() {
            LinkState::Paused
        } else {
            LinkState::Scheduled
        }
    }

    /// When the next scheduled transfer is due, if the link is scheduled.
    pub fn next_transfer(&self) -> Option<SystemTime> {
        *lock(&self.inner.next_tick)
    }

    /// The link's counters.
    pub fn stats(&self) -> LinkStats {
        self.inner.counters.snapshot()
    }

    /// Whether every inlet has reported the end of its input.
    pub fn is_exhausted(&self) -> bool {
        let slots = lock(&self.inner.inlets);
        !slots.is_empty() && slots.iter().all(|s| s.exhausted)
    }

    /// Starts every inlet and outlet (each instance once, however many links
    /// share it). On failure the nodes already started are shut down again.
    pub async fn start(&self) -> Result<(), NodeError> {
        let mut started = self.inner.started.lock().await;
        if *started {
            return Ok(());
        }
        let inlets = self.inlets();
        let outlets = self.outlets();
        for (i, inlet) in inlets.iter().enumerate() {
            if let Err(f) = inlet.start().await {
                for prior in &inlets[..i] {
                    let _ = prior.shutdown().await;
                }
                return Err(self.hook_error(NodeKind::Inlet, inlet.name(), "on_start", f));
            }
        }
        for (i, outlet) in outlets.iter().enumerate() {
            if let Err(f) = outlet.start().await {
                for prior in &outlets[..i] {
                    let _ = prior.shutdown().await;
                }
                for inlet in &inlets {
                    let _ = inlet.shutdown().await;
                }
                return Err(self.hook_error(NodeKind::Outlet, outlet.name(), "on_start", f));
            }
        }
        *started = true;
        self.inner.control.finished.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Shuts down every inlet and outlet this link started (each instance
    /// once, after its last user stops). Every node is shut down even if an
    /// earlier one fails; the errors are returned.
    pub async fn shutdown(&self) -> Vec<NodeError> {
        let mut started = self.inner.started.lock().await;
        if !*started {
            return Vec::new();
        }
        *started = false;
        let mut errors = Vec::new();
        for inlet in self.inlets() {
            if let Err(f) = inlet.shutdown().await {
                errors.push(self.hook_error(NodeKind::Inlet, inlet.name(), "on_shutdown", f));
            }
        }
        for outlet in self.outlets() {
            if let Err(f) = outlet.shutdown().await {
                errors.push(self.hook_error(NodeKind::Outlet, outlet.name(), "on_shutdown", f));
            }
        }
        errors
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

    /// Runs one transfer now: pull, process, group, push. Waits for a
    /// running transfer of this link to end first (transfers never overlap).
    pub async fn transfer(&self) -> Result<TransferReport, TransferError> {
        let pipeline = self.inner.pipeline.lock().await;
        self.run(pipeline, Trigger::Transfer, None, Pulls::Due)
            .await
    }

    /// Releases everything the processors hold (buffers, windows) and pushes
    /// it, without pulling. Graceful shutdown does this.
    pub async fn flush(&self) -> Result<TransferReport, TransferError> {
        let pipeline = self.inner.pipeline.lock().await;
        self.run(pipeline, Trigger::Flush, None, Pulls::None).await
    }

    async fn run(
        &self,
        mut pipeline: tokio::sync::MutexGuard<'_, Pipeline>,
        trigger: Trigger,
        scheduled: Option<Instant>,
        pulls: Pulls,
    ) -> Result<TransferReport, TransferError> {
        let inner = &*self.inner;
        let started = crate::clock::now();
        let index = inner.next_index.fetch_add(1, Ordering::Relaxed);
        let update = Update::for_link(inner.tags.clone(), index, scheduled);
        let span = tracing::info_span!("transfer", update = %update);
        // Reset even if this future is dropped midway (a cancelled transfer).
        let _transferring = Flag::raise(&inner.control.transferring);
        let outcome = self
            .run_stages(&mut pipeline, &update, trigger, pulls)
            .instrument(span)
            .await;
        // The pipeline may have changed what its processors wait for.
        let from_processors = pipeline
            .processors
            .iter()
            .filter_map(|s| s.processor.next_wakeup())
            .min();
        // A wake-up at or before this run's start was due while it ran and
        // had its chance: asking again for the past would spin the timer.
        let wakeup = self
            .with_outlet_wakeups(from_processors)
            .await
            .filter(|w| *w > started);
        let earlier = {
            let mut stored = lock(&inner.processor_wakeup);
            let earlier = wakeup.is_some_and(|w| stored.is_none_or(|s| w < s));
            *stored = wakeup;
            earlier
        };
        if earlier {
            // The timer task may be asleep until a later tick (this was a
            // forced transfer): wake it to re-plan.
            inner.control.wake.notify_one();
        }
        drop(pipeline);
        drop(_transferring);

        let duration = started.elapsed();
        let c = &inner.counters;
        c.duration.observe(duration);
        match outcome {
            Ok((records_in, records_out, ignored)) => {
                c.transfers_ok.fetch_add(1, Ordering::Relaxed);
                c.records_in.fetch_add(records_in as u64, Ordering::Relaxed);
                c.records_out
                    .fetch_add(records_out as u64, Ordering::Relaxed);
                if let Some(last) = ignored.last() {
                    c.errors.fetch_add(ignored.len() as u64, Ordering::Relaxed);
                    c.set_last_error(last.to_string());
                }
                c.mark_success();
                Ok(TransferReport {
                    update,
                    records_in,
                    records_out,
                    ignored,
                    duration,
                })
            }
            Err(errors) => {
                c.transfers_failed.fetch_add(1, Ordering::Relaxed);
                c.errors.fetch_add(errors.len() as u64, Ordering::Relaxed);
                let error = TransferError {
                    link: inner.name.clone(),
                    update: update.to_string(),
                    errors,
                };
                c.set_last_error(error.to_string());
                tracing::error!(link = %inner.name, update = %update, "{error}");
                Err(error)
            }
        }
    }

    async fn with_outlet_wakeups(&self, mut wakeup: Option<Instant>) -> Option<Instant> {
        // Runs after every transfer: most links have no outlet processors,
        // and then this collects (and allocates) nothing.
        let with_processors: Vec<OutletHandle> = lock(&self.inner.outlets)
            .iter()
            .filter(|o| o.handle.has_processors())
            .map(|o| o.handle.clone())
            .collect();
        for outlet in &with_processors {
            if let Some(w) = outlet.next_wakeup().await {
                wakeup = Some(wakeup.map_or(w, |c| c.min(w)));
            }
        }
        wakeup
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

    /// Handles one node error: under `ignore_exceptions` it is logged and
    /// kept for the report; otherwise it ends the transfer.
    fn on_error(&self, error: NodeError, errors: &mut Vec<NodeError>) -> Result<(), ()> {
        if self.inner.ignore_exceptions {
            tracing::warn!("{error} (ignored)");
            errors.push(error);
            Ok(())
        } else {
            errors.push(error);
            Err(())
        }
    }

    /// The stages of one transfer. Returns records in/out and the ignored
    /// errors, or every error when the transfer fails.
    async fn run_stages(
        &self,
        pipeline: &mut Pipeline,
        update: &Update,
        trigger: Trigger,
        pulls: Pulls,
    ) -> Result<(usize, usize, Vec<NodeError>), Vec<NodeError>> {
        let inner = &*self.inner;
        let mut errors = Vec::new();
        tracing::debug!("transfer");

        let mut records = match pulls {
            Pulls::None => Vec::new(),
            _ => self.pull(update, pulls, &mut errors).await,
        };
        if !errors.is_empty() && !inner.ignore_exceptions {
            // What the other inlets produced goes down with the transfer.
            inner
                .counters
                .records_dropped
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            return Err(errors);
        }
        let records_in = records.len();

        let cx = Context::new(update, trigger);
        for stage in pipeline.processors.iter_mut() {
            let held = records.len();
            match guarded(stage.processor.process(records, &cx), None).await {
                Ok(out) => records = out,
                Err(failure) => {
                    let e = self.node_error(update, NodeKind::Processor, &stage.name, failure);
                    if self.on_error(e, &mut errors).is_err() {
                        return Err(errors);
                    }
                    // The failed batch is dropped, never passed on unprocessed.
                    inner
                        .counters
                        .records_dropped
                        .fetch_add(held as u64, Ordering::Relaxed);
                    records = Vec::new();
                }
            }
        }

        let mut batches = vec![records];
        for g in pipeline.groupers.iter_mut() {
            let input = std::mem::take(&mut batches);
            let held: usize = input.iter().map(Vec::len).sum();
            match crate::node::guarded_sync(|| g.grouper.group(input)) {
                Ok(out) => batches = out,
                Err(failure) => {
                    let e = self.node_error(update, NodeKind::Grouper, &g.name, failure);
                    if self.on_error(e, &mut errors).is_err() {
                        return Err(errors);
                    }
                    inner
                        .counters
                        .records_dropped
                        .fetch_add(held as u64, Ordering::Relaxed);
                }
            }
        }

        let outlets: Vec<OutletSlot> = lock(&inner.outlets).clone();
        let any_outlet_processors = outlets.iter().any(|o| o.handle.has_processors());
        if batches.is_empty() && any_outlet_processors {
            // Outlets' own processors (buffers) must still run on timers and
            // flushes even when a grouper left no batch at all.
            batches.push(Vec::new());
        }
        let timeout = inner.outlet_timeout;
        let mut records_out = 0;
        for batch in &batches {
            if batch.is_empty() && !any_outlet_processors {
                continue;
            }
            let results = if outlets.len() == 1 {
                vec![deliver(&outlets[0], batch, &cx, timeout).await]
            } else {
                join_all(outlets.iter().map(|o| deliver(o, batch, &cx, timeout))).await
            };
            let mut failed = false;
            for (slot, result) in outlets.iter().zip(results) {
                slot.counters
                    .record(*result.as_ref().unwrap_or(&0), result.is_err());
                match result {
                    Ok(n) => records_out += n,
                    Err(d) => {
                        if d.kind == NodeKind::OutletProcessor && inner.ignore_exceptions {
                            // That outlet's copy of the batch is gone.
                            inner
                                .counters
                                .records_dropped
                                .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        }
                        let e = self.node_error(update, d.kind, &d.node, d.failure);
                        failed |= self.on_error(e, &mut errors).is_err();
                    }
                }
            }
            if failed {
                return Err(errors);
            }
        }
        tracing::debug!(records_in, records_out, "done");
        Ok((records_in, records_out, errors))
    }

    async fn pull(
        &self,
        update: &Update,
        pulls: Pulls,
        errors: &mut Vec<NodeError>,
    ) -> Vec<Record> {
        let inner = &*self.inner;
        let now = crate::clock::now();
        // Slots are remembered by position, so one instance listed twice
        // is two slots with their own state.
        let mut due: Vec<(usize, InletHandle)> = lock(&inner.inlets)
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                !s.exhausted
                    && match (pulls, s.retry_at) {
                        (_, Some(at)) => at <= now,
                        (Pulls::Retries, None) => false,
                        _ => true,
                    }
            })
            .map(|(i, s)| (i, s.handle.clone()))
            .collect();
        let timeout = inner.inlet_timeout;
        let pull = |(index, handle): (usize, InletHandle)| async move {
            let span = tracing::info_span!("inlet", component = %handle.name());
            let result = handle.pull(update, timeout).instrument(span).await;
            (index, handle, result)
        };
        let results: Vec<(usize, InletHandle, Result<Pull, Failure>)> = if due.len() == 1
            && let Some(one) = due.pop()
        {
            vec![pull(one).await]
        } else {
            let limit = match inner.inlet_concurrency {
                0 => due.len().max(1),
                n => n,
            };
            futures::stream::iter(due)
                .map(pull)
                .buffered(limit)
                .collect()
                .await
        };

        let mut records: Vec<Record> = Vec::new();
        let mut slots = lock(&inner.inlets);
        let mut retrying = false;
        for (index, handle, result) in results {
            // The list may have changed during the pulls: fall back to the
            // instance if the position no longer holds it.
            let slot = match slots.get(index) {
                Some(s) if s.handle.same_as(&handle) => slots.get_mut(index),
                _ => slots.iter_mut().find(|s| s.handle.same_as(&handle)),
            };
            let (mut retry_at, mut exhausted, mut failed) = (None, false, false);
            let produced = match result {
                Ok(Pull::Records(r)) => r,
                Ok(Pull::Nothing) => Vec::new(),
                Ok(Pull::RetryAfter(d)) => {
                    // A floor keeps `RetryAfter(0)` from spinning the timer.
                    retry_at = Some(crate::clock::after(crate::clock::now(), d.max(MIN_RETRY)));
                    retrying = true;
                    Vec::new()
                }
                Ok(Pull::Exhausted(r)) => {
                    exhausted = true;
                    r
                }
                Err(failure) => {
                    failed = true;
                    let e = self.node_error(update, NodeKind::Inlet, handle.name(), failure);
                    if inner.ignore_exceptions {
                        tracing::warn!("{e} (ignored)");
                    }
                    errors.push(e);
                    Vec::new()
                }
            };
            if let Some(slot) = slot {
                slot.retry_at = retry_at;
                slot.exhausted |= exhausted;
                slot.counters.record(produced.len(), failed);
            }
            if records.is_empty() {
                records = produced;
            } else {
                records.extend(produced);
            }
        }
        if retrying {
            // The timer may sleep until a later tick (a forced transfer):
            // wake it to plan the retry.
            inner.control.wake.notify_one();
        }
        records
    }

    /// The earliest processor wake-up or inlet retry.
    fn pending_wakeup(&self) -> Option<Instant> {
        let retry = lock(&self.inner.inlets)
            .iter()
            .filter(|s| !s.exhausted)
            .filter_map(|s| s.retry_at)
            .min();
        let processors = *lock(&self.inner.processor_wakeup);
        match (retry, processors) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn retry_due(&self, now: Instant) -> bool {
        lock(&self.inner.inlets)
            .iter()
            .any(|s| !s.exhausted && s.retry_at.is_some_and(|at| at <= now))
    }

    pub(crate) fn request_stop(&self) {
        self.inner.control.stop.store(true, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    fn set_next_tick(&self, deadline: Option<Instant>) {
        let wall =
            deadline.map(|d| SystemTime::now() + d.saturating_duration_since(crate::clock::now()));
        *lock(&self.inner.next_tick) = wall;
    }

    /// The link's timer: transfers on schedule until stopped or finished.
    pub(crate) async fn drive(self, immediate: bool, events: mpsc::UnboundedSender<LinkEvent>) {
        let inner = &*self.inner;
        let c = &inner.control;
        let mut ticker = Ticker::new(inner.schedule.clone());
        let mut was_paused = self.is_paused();
        ticker.restart(crate::clock::now());
        if immediate && !was_paused {
            self.scheduled(
                Trigger::Transfer,
                Some(crate::clock::now()),
                Pulls::Due,
                &events,
            )
            .await;
            self.count_skipped(ticker.catch_up(crate::clock::now()));
        }
        let mut jitter = ticker.draw_jitter();
        loop {
            if c.stop.load(Ordering::SeqCst) {
                break;
            }
            if self.is_exhausted() {
                // Finite input ended: emit what the processors hold, then stop.
                self.scheduled(Trigger::Flush, None, Pulls::None, &events)
                    .await;
                c.finished.store(true, Ordering::SeqCst);
                let _ = events.send(LinkEvent::Finished(inner.name.clone()));
                break;
            }
            let paused = self.is_paused();
            if paused {
                was_paused = true;
                self.set_next_tick(None);
                c.wake.notified().await;
                continue;
            }
            if was_paused {
                was_paused = false;
                ticker.restart(crate::clock::now());
                jitter = ticker.draw_jitter();
            }
            let tick = ticker.deadline(jitter);
            self.set_next_tick(tick);
            let deadline = match (tick, self.pending_wakeup()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match deadline {
                None => {
                    c.wake.notified().await;
                    continue;
                }
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d.into()) => {}
                        _ = c.wake.notified() => continue,
                    }
                }
            }
            let now = crate::clock::now();
            match tick {
                Some(t) if now >= t => {
                    inner
                        .counters
                        .lateness
                        .observe(now.saturating_duration_since(t));
                    self.scheduled(Trigger::Transfer, Some(t), Pulls::Due, &events)
                        .await;
                    self.count_skipped(ticker.advance(crate::clock::now()));
                    jitter = ticker.draw_jitter();
                }
                _ if self.retry_due(now) => {
                    self.scheduled(Trigger::Transfer, None, Pulls::Retries, &events)
                        .await;
                }
                _ => {
                    self.scheduled(Trigger::Timer, None, Pulls::None, &events)
                        .await;
                }
            }
        }
        self.set_next_tick(None);
        c.driving.store(false, Ordering::SeqCst);
    }

    fn count_skipped(&self, skipped: u64) {
        if skipped > 0 {
            self.inner
                .counters
                .ticks_skipped
                .fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(link = %self.inner.name, skipped, "transfer overran its interval; skipped ticks");
        }
    }

    /// Marks the link as driven by a timer task about to be spawned (before
    /// the spawn, so a stop requested right after is not lost).
    pub(crate) fn prepare_drive(&self) {
        let c = &self.inner.control;
        c.stop.store(false, Ordering::SeqCst);
        c.driving.store(true, Ordering::SeqCst);
    }

    pub(crate) fn end_drive(&self) {
        self.inner.control.driving.store(false, Ordering::SeqCst);
        self.set_next_tick(None);
    }

    /// Whether a flush could release anything: some processor (of the link
    /// or of an outlet) may hold records.
    pub(crate) fn may_hold_records(&self) -> bool {
        self.inner.has_processors.load(Ordering::Relaxed)
            || lock(&self.inner.outlets)
                .iter()
                .any(|o| o.handle.has_processors())
    }

    /// A transfer started by the timer. If a forced transfer holds the link,
    /// the tick is skipped and counted rather than queued.
    async fn scheduled(
        &self,
        trigger: Trigger,
        scheduled: Option<Instant>,
        pulls: Pulls,
        events: &mpsc::UnboundedSender<LinkEvent>,
    ) {
        let pipeline = match self.inner.pipeline.try_lock() {
            Ok(pipeline) => pipeline,
            Err(_) if trigger == Trigger::Transfer && scheduled.is_some() => {
                self.inner
                    .counters
                    .ticks_skipped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Timer and flush work must not be lost: wait for the lock.
            Err(_) => self.inner.pipeline.lock().await,
        };
        if let Err(e) = self.run(pipeline, trigger, scheduled, pulls).await {
            let _ = events.send(LinkEvent::Failed(e));
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
