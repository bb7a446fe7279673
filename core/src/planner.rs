//! The planner drives many links, each on its own timer task.
//!
//! One `tokio::time` timer per link (no polling loop, no thread per link):
//! tens of thousands of links cost a few kilobytes each and wake only when
//! due. See the README's design notes for why not a cron-scheduler crate.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::task::coop::unconstrained;

use crate::error::{PlannerError, TransferError};
use crate::link::{Link, LinkEvent, LinkState, TransferReport};
use crate::sync::lock;

struct Entry {
    link: Link,
    task: Option<JoinHandle<()>>,
}

/// The planner's links in the order they were added, found by name in
/// constant time: with 100 000 links, a scan per lookup (each added link's
/// duplicate check, each spawned driver, each `/links/{name}`) made start-up
/// quadratic.
#[derive(Default)]
struct Links {
    /// By the sequence number each link got when it was added.
    entries: BTreeMap<u64, Entry>,
    /// A link's name to its sequence number.
    by_name: HashMap<String, u64>,
    next: u64,
}

impl Links {
    /// Adds `link` last, unless a link of its name is there.
    fn insert(&mut self, link: Link) -> Result<(), PlannerError> {
        if self.by_name.contains_key(link.name()) {
            return Err(PlannerError::DuplicateLink(link.name().to_owned()));
        }
        let seq = self.next;
        self.next += 1;
        self.by_name.insert(link.name().to_owned(), seq);
        self.entries.insert(seq, Entry { link, task: None });
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).and_then(|seq| self.entries.get(seq))
    }

    /// The entry of this very link (not just one of the same name).
    fn entry_of(&mut self, link: &Link) -> Option<&mut Entry> {
        let seq = self.by_name.get(link.name())?;
        self.entries.get_mut(seq).filter(|e| e.link.same_as(link))
    }

    fn remove(&mut self, name: &str) -> Option<Entry> {
        let seq = self.by_name.remove(name)?;
        self.entries.remove(&seq)
    }

    /// Removes this very link, if it is there.
    fn remove_link(&mut self, link: &Link) -> Option<Entry> {
        self.entry_of(link)?;
        self.remove(link.name())
    }

    /// Every entry, in order, leaving none.
    fn take_all(&mut self) -> Vec<Entry> {
        self.by_name.clear();
        std::mem::take(&mut self.entries).into_values().collect()
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.values_mut()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

struct Inner {
    ignore_exceptions: bool,
    fail_fast: bool,
    immediate_transfer: bool,
    stop_when_finished: bool,
    shutdown_grace: Duration,
    links: Mutex<Links>,
    running: AtomicBool,
    /// Set (under the links lock) once `start` retires its links.
    stopping: AtomicBool,
    paused: AtomicBool,
    /// `Some(wait)` once shutdown was asked for; cleared when the planner stopped.
    shutdown: watch::Sender<Option<bool>>,
    events_tx: mpsc::UnboundedSender<LinkEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<LinkEvent>>,
}

/// Configures a [`Planner`].
pub struct PlannerBuilder {
    ignore_exceptions: bool,
    fail_fast: bool,
    immediate_transfer: bool,
    stop_when_finished: bool,
    shutdown_grace: Duration,
    links: Vec<Link>,
}

impl PlannerBuilder {
    /// Adds a link.
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Keep running when a link's transfer fails (the error is logged and
    /// counted). Otherwise a failed transfer shuts the planner down
    /// gracefully and `start` returns the error.
    pub fn ignore_exceptions(mut self, yes: bool) -> Self {
        self.ignore_exceptions = yes;
        self
    }

    /// Stop when a link's inlets or outlets cannot be started: `start`
    /// returns that error and no link runs (and `add_link` refuses the
    /// link). Default `false`: the link is reported (state
    /// [`Failed`](crate::LinkState::Failed), its error counted and logged),
    /// its start is tried again with backoff, and the other links run.
    pub fn fail_fast(mut self, yes: bool) -> Self {
        self.fail_fast = yes;
        self
    }

    /// Transfer once on start for every link that also wants it (default `true`).
    pub fn immediate_transfer(mut self, yes: bool) -> Self {
        self.immediate_transfer = yes;
        self
    }

    /// Shut down by itself once every link has finished (all inputs
    /// exhausted). Default `false`: a service keeps running.
    pub fn stop_when_finished(mut self, yes: bool) -> Self {
        self.stop_when_finished = yes;
        self
    }

    /// How long graceful shutdown waits for in-flight transfers before
    /// cancelling them (default 30 s). Buffers are flushed either way.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The planner. Duplicate link names are refused.
    pub fn build(self) -> Result<Planner, PlannerError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let planner = Planner {
            inner: Arc::new(Inner {
                ignore_exceptions: self.ignore_exceptions,
                fail_fast: self.fail_fast,
                immediate_transfer: self.immediate_transfer,
                stop_when_finished: self.stop_when_finished,
                shutdown_grace: self.shutdown_grace,
                links: Mutex::new(Links::default()),
                running: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                paused: AtomicBool::new(false),
                shutdown: watch::channel(None).0,
                events_tx,
                events_rx: tokio::sync::Mutex::new(events_rx),
            }),
        };
        {
            let mut entries = lock(&planner.inner.links);
            for link in self.links {
                entries.insert(link)?;
            }
        }
        Ok(planner)
    }
}

/// Schedules links and runs them until shut down. Cheap to clone: clones
/// control the same planner, so one task can `start` while another calls
/// `shutdown`.
///
/// ```
/// use databay_core::{Link, Planner};
/// use databay_core::testing::{CollectOutlet, StaticInlet};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let outlet = CollectOutlet::new();
/// let link = Link::builder("ints")
///     .inlet(StaticInlet::values([1]))
///     .outlet(outlet.clone())
///     .every(Duration::from_millis(10))
///     .build()
///     .unwrap();
/// let planner = Planner::builder().link(link).build().unwrap();
/// let running = tokio::spawn({
///     let planner = planner.clone();
///     async move { planner.start().await }
/// });
/// tokio::time::sleep(Duration::from_millis(55)).await;
/// planner.shutdown(true);
/// running.await.unwrap().unwrap();
/// assert!(outlet.len() >= 3);
/// # }
/// ```
#[derive(Clone)]
pub struct Planner {
    inner: Arc<Inner>,
}

impl Planner {
    /// Starts configuring a planner.
    pub fn builder() -> PlannerBuilder {
        PlannerBuilder {
            ignore_exceptions: false,
            fail_fast: false,
            immediate_transfer: true,
            stop_when_finished: false,
            shutdown_grace: Duration::from_secs(30),
            links: Vec::new(),
        }
    }

    /// A planner with default settings and these links.
    pub fn new(links: impl IntoIterator<Item = Link>) -> Result<Self, PlannerError> {
        links
            .into_iter()
            .fold(Self::builder(), PlannerBuilder::link)
            .build()
    }

    /// The links, in the order they were added.
    pub fn links(&self) -> Vec<Link> {
        lock(&self.inner.links)
            .iter()
            .map(|e| e.link.clone())
            .collect()
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<Link> {
        lock(&self.inner.links).get(name).map(|e| e.link.clone())
    }

    /// How many links the planner has.
    pub fn len(&self) -> usize {
        lock(&self.inner.links).len()
    }

    /// Whether the planner has no links.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `start` is running.
    pub fn running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Adds a link; if the planner is running the link's nodes are started
    /// and it is scheduled at once. A link whose start fails is refused
    /// with [`fail_fast`](PlannerBuilder::fail_fast); otherwise it is added
    /// as [`Failed`](crate::LinkState::Failed) and its start retried.
    pub async fn add_link(&self, link: Link) -> Result<(), PlannerError> {
        self.add(link, self.inner.fail_fast).await
    }

    /// Adds a link, refusing it if the planner is running and the link's
    /// start fails, whatever `fail_fast` says: for replacing a working
    /// link, which should then stay.
    pub async fn add_started_link(&self, link: Link) -> Result<(), PlannerError> {
        self.add(link, true).await
    }

    async fn add(&self, link: Link, refuse_failed_start: bool) -> Result<(), PlannerError> {
        lock(&self.inner.links).insert(link.clone())?;
        if self.running() {
            if let Err(e) = link.start().await {
                if refuse_failed_start {
                    lock(&self.inner.links).remove_link(&link);
                    return Err(e.into());
                }
                link.start_failed(&e);
            }
            if !self.spawn_driver(&link) {
                // The planner stopped while the link was starting: it stays
                // in the planner for a later start, its nodes shut down.
                for e in link.shutdown().await {
                    tracing::error!("{e}");
                }
            }
        }
        Ok(())
    }

    /// Spawns the link's timer task, unless it has one or the planner is
    /// stopping. Decided under the links lock, which `start` also holds
    /// when it takes the links to retire: a link is either retired or
    /// never driven, never driven after the planner stopped.
    fn spawn_driver(&self, link: &Link) -> bool {
        let mut entries = lock(&self.inner.links);
        if self.inner.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let Some(entry) = entries.entry_of(link) else {
            return false;
        };
        if entry.task.is_none() {
            link.set_planner_paused(self.inner.paused.load(Ordering::SeqCst));
            let immediate = self.inner.immediate_transfer && link.immediate_transfer();
            link.prepare_drive();
            entry.task = Some(tokio::spawn(
                link.clone().drive(immediate, self.inner.events_tx.clone()),
            ));
        }
        true
    }

    /// Removes the link called `name`: unschedules it, lets an in-flight
    /// transfer finish, flushes it and shuts its nodes down.
    pub async fn remove_link(&self, name: &str) -> Result<Link, PlannerError> {
        let entry = lock(&self.inner.links)
            .remove(name)
            .ok_or_else(|| PlannerError::MissingLink(name.to_owned()))?;
        let link = entry.link.clone();
        let _ = self.inner.events_tx.send(LinkEvent::Removed);
        if let Some(e) = self
            .retire(vec![(entry.link, entry.task)], true)
            .await
            .into_iter()
            .next()
        {
            return Err(e);
        }
        Ok(link)
    }

    /// Removes every link (see [`Planner::remove_link`]).
    pub async fn purge(&self) -> Vec<PlannerError> {
        let entries = lock(&self.inner.links).take_all();
        let _ = self.inner.events_tx.send(LinkEvent::Removed);
        self.retire(
            entries.into_iter().map(|e| (e.link, e.task)).collect(),
            true,
        )
        .await
    }

    /// Stops the drivers of `entries`, waits for them (up to the grace
    /// period, or not at all without `wait`), flushes every link and shuts
    /// its nodes down.
    async fn retire(
        &self,
        entries: Vec<(Link, Option<JoinHandle<()>>)>,
        wait: bool,
    ) -> Vec<PlannerError> {
        let (links, tasks): (Vec<Link>, Vec<Option<JoinHandle<()>>>) = entries.into_iter().unzip();
        for link in &links {
            link.request_stop();
        }
        let tasks: Vec<JoinHandle<()>> = tasks.into_iter().flatten().collect();
        // Every join below waits on one future per link from one task.
        // Under tokio's cooperative budget, once a poll has spent it each
        // of those futures answers "not yet" and is woken again at once,
        // so every later poll of the join goes through all of them for a
        // hundred or so that progress: with 100 000 links shutdown took
        // minutes. Unconstrained, each is polled when it can progress.
        if wait {
            let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
            let joined =
                tokio::time::timeout(self.inner.shutdown_grace, unconstrained(join_all(tasks)));
            if joined.await.is_err() {
                tracing::warn!(
                    "in-flight transfers did not finish within the {:?} grace period; cancelling them",
                    self.inner.shutdown_grace
                );
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
            }
        } else {
            for task in &tasks {
                task.abort();
            }
            unconstrained(join_all(tasks)).await;
        }
        for link in &links {
            link.end_drive();
        }
        let mut errors = Vec::new();
        let grace = self.inner.shutdown_grace;
        let flushed = unconstrained(join_all(links.iter().map(|l| async move {
            // Bounded: a forced transfer still holding the link (or a hook
            // that hangs) must not hold shutdown up forever.
            let done = tokio::time::timeout(grace, async {
                // A finished link flushed at the end of its input already.
                let flushed = if l.may_hold_records() && l.state() != LinkState::Finished {
                    l.flush().await.map(drop)
                } else {
                    Ok(())
                };
                (flushed, l.shutdown().await)
            })
            .await;
            done.unwrap_or_else(|_| {
                tracing::error!(
                    link = %l.name(),
                    "flush and on_shutdown did not finish within the {grace:?} grace period; abandoned"
                );
                (Ok(()), Vec::new())
            })
        })))
        .await;
        for (flushed, hooks) in flushed {
            if let Err(e) = flushed {
                errors.push(PlannerError::Transfer(e));
            }
            errors.extend(hooks.into_iter().map(PlannerError::Hook));
        }
        errors
    }

    /// Runs the planner until [`shutdown`](Planner::shutdown) (or, with
    /// `stop_when_finished`, until every link finished): starts every node
    /// once, transfers immediately where asked, schedules each link, and on
    /// the way out stops scheduling, lets in-flight transfers finish (within
    /// the grace period), flushes buffers to the outlets and runs
    /// `on_shutdown`. Returns the error that stopped it, if one did.
    pub async fn start(&self) -> Result<(), PlannerError> {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            return Err(PlannerError::AlreadyRunning);
        }
        let mut events = self.inner.events_rx.lock().await;
        while events.try_recv().is_ok() {}
        let mut shutdown = self.inner.shutdown.subscribe();

        self.inner.stopping.store(false, Ordering::SeqCst);
        let links = self.links();
        let mut started: Vec<&Link> = Vec::new();
        for link in &links {
            if let Err(e) = link.start().await {
                if !self.inner.fail_fast {
                    // Its driver tries again; the other links run.
                    link.start_failed(&e);
                    continue;
                }
                tracing::error!("{e}");
                for l in started {
                    l.shutdown().await;
                }
                self.inner.running.store(false, Ordering::SeqCst);
                self.inner.shutdown.send_replace(None);
                return Err(e.into());
            }
            started.push(link);
        }
        tracing::info!(links = links.len(), "planner started");
        for link in &links {
            self.spawn_driver(link);
        }

        let outcome = loop {
            if self.inner.stop_when_finished && self.all_finished() {
                break (Ok(()), true);
            }
            if let Some(wait) = *shutdown.borrow_and_update() {
                break (Ok(()), wait);
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break (Ok(()), true);
                    }
                }
                Some(event) = events.recv() => match event {
                    LinkEvent::Failed(e) if !self.inner.ignore_exceptions => {
                        tracing::error!("shutting the planner down after: {e}");
                        break (Err(PlannerError::Transfer(e)), true);
                    }
                    LinkEvent::Failed(_) => {}
                    LinkEvent::Finished(name) => {
                        tracing::info!(link = %name, "link finished: every inlet is exhausted");
                        if self.inner.stop_when_finished && self.all_finished() {
                            break (Ok(()), true);
                        }
                    }
                    LinkEvent::Removed => {
                        if self.inner.stop_when_finished && self.all_finished() {
                            break (Ok(()), true);
                        }
                    }
                },
            }
        };
        let (result, wait) = outcome;
        // Links stay in the planner after it stops, so it can start again.
        let running: Vec<(Link, Option<JoinHandle<()>>)> = {
            let mut entries = lock(&self.inner.links);
            self.inner.stopping.store(true, Ordering::SeqCst);
            entries
                .iter_mut()
                .map(|e| (e.link.clone(), e.task.take()))
                .collect()
        };
        let errors = self.retire(running, wait).await;
        for e in &errors {
            tracing::error!("during shutdown: {e}");
        }
        self.inner.running.store(false, Ordering::SeqCst);
        self.inner.shutdown.send_replace(None);
        tracing::info!("planner stopped");
        match (result, errors.into_iter().next()) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        }
    }

    fn all_finished(&self) -> bool {
        lock(&self.inner.links)
            .iter()
            .all(|e| e.link.state() == LinkState::Finished)
    }

    /// Asks the planner to stop. With `wait`, in-flight transfers may finish
    /// (within the grace period); without, they are cancelled. Either way
    /// buffers are flushed and `on_shutdown` runs before `start` returns.
    /// Asking before `start` makes `start` return as soon as it has started.
    pub fn shutdown(&self, wait: bool) {
        self.inner.shutdown.send_replace(Some(wait));
    }

    /// Runs one transfer of every link now, concurrently, and returns each
    /// link's outcome in link order.
    pub async fn force_transfer(&self) -> Vec<Result<TransferReport, TransferError>> {
        let links = self.links();
        // Unconstrained for the reason `retire` gives.
        unconstrained(join_all(links.iter().map(Link::transfer))).await
    }

    /// Flushes every link (see [`Link::flush`]).
    pub async fn flush(&self) -> Vec<Result<TransferReport, TransferError>> {
        let links = self.links();
        unconstrained(join_all(links.iter().map(Link::flush))).await
    }

    /// Pauses scheduled transfers of every link, present and future.
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::SeqCst);
        for link in self.links() {
            link.set_planner_paused(true);
        }
    }

    /// Resumes what [`Planner::pause`] paused (links paused on their own stay paused).
    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::SeqCst);
        for link in self.links() {
            link.set_planner_paused(false);
        }
    }

    /// Whether the planner is paused.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field(
                "links",
                &self.links().iter().map(Link::name).collect::<Vec<_>>(),
            )
            .field("running", &self.running())
            .field("ignore_exceptions", &self.inner.ignore_exceptions)
            .field("immediate_transfer", &self.inner.immediate_transfer)
            .finish()
    }
}
