//! Outlets consume records. Implement [`Outlet`]; wrap the instance in an
//! [`OutletHandle`] to name it, give it its own processors and a timeout,
//! and share it between links.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::{BoxError, Failure, NodeKind};
use crate::node::{Lifecycle, guarded, short_type_name};
use crate::processor::{Context, Processor, Stage};
use crate::record::Record;
use crate::reject::{Rejected, RejectedRecord};
use crate::retry::{Permanent, RetryPolicy};
use crate::transaction::TransactionalOutlet;
use crate::update::Update;

/// A consumer of records.
///
/// `push` must have written every record it was given before it returns
/// `Ok`, and durably unless the outlet [defers its
/// sync](Outlet::defers_sync): the link counts a transfer as delivered
/// only then. An
/// outlet that writes all but some records of a batch returns a
/// [`Rejected`] naming them: the link counts and logs those records and
/// treats the rest as delivered.
///
/// ```
/// use databay_core::{async_trait, BoxError, Outlet, Record, Update};
///
/// struct Stdout;
///
/// #[async_trait]
/// impl Outlet for Stdout {
///     async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
///         for record in records {
///             println!("{update} {}", record.payload);
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Outlet: Send + 'static {
    /// Consumes one batch of one transfer.
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError>;

    /// The outlet's resume state: what it has durably written, as JSON,
    /// for the link to checkpoint with its inlets' (for a file, its length
    /// after the last push, so that a restore can cut a torn tail). The
    /// default, `None`, says the outlet keeps none.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }

    /// Puts the outlet back at `state`, a value an earlier
    /// [`snapshot`](Outlet::snapshot) returned, before it is started. The
    /// default refuses: an outlet that keeps no resume state cannot resume.
    async fn restore(&mut self, state: serde_json::Value) -> Result<(), BoxError> {
        let _ = state;
        Err("this outlet keeps no resume state".into())
    }

    /// Runs once before the first link using this instance starts.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// The outlet as one that can commit a transfer's records together
    /// with the link's checkpoint (see [`crate::transaction`]). The
    /// default, `None`: it cannot.
    fn transactional(&mut self) -> Option<&mut dyn TransactionalOutlet> {
        None
    }

    /// Runs once after the last link using this instance stops.
    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Whether `push` may return before what it wrote is durable, leaving
    /// that to [`sync`](Outlet::sync): a file outlet, for which the sync
    /// to disk is most of what a small push costs. The link then syncs the
    /// outlet before anything relies on its records being kept (a
    /// checkpoint, or an inlet letting go of the records at their source:
    /// a broker's acknowledgement), at least once a second while it
    /// pushes, and before the outlet's `on_shutdown`. Asked once, when
    /// the outlet is wrapped in its handle. The default, `false`: every
    /// push is durable when it returns.
    fn defers_sync(&self) -> bool {
        false
    }

    /// Makes durable what the pushes before it wrote (see
    /// [`defers_sync`](Outlet::defers_sync)). The default does nothing.
    async fn sync(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// How long a deferred sync may wait while an outlet is pushed to
/// (see [`Outlet::defers_sync`]).
pub const SYNC_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

struct Shared {
    name: String,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    /// Pushes tried again, in all.
    retries: std::sync::atomic::AtomicU64,
    lifecycle: Lifecycle,
    /// The link whose checkpoints the outlet commits with its records, if
    /// one claimed it ([`OutletHandle::claim_transactions`]).
    claimed_by: std::sync::Mutex<Option<String>>,
    has_processors: bool,
    /// [`Outlet::defers_sync`], asked once.
    defers_sync: bool,
    /// When the first push since the outlet's last sync returned, whether
    /// it succeeded or not (a deferring outlet; changed with `outlet`
    /// held).
    unsynced_since: std::sync::Mutex<Option<Instant>>,
    processors: tokio::sync::Mutex<Vec<Stage>>,
    outlet: tokio::sync::Mutex<Box<dyn Outlet>>,
}

/// Configures an [`OutletHandle`] before it is shared.
pub struct OutletBuilder {
    name: String,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    processors: Vec<Stage>,
    outlet: Box<dyn Outlet>,
}

impl OutletBuilder {
    /// Names the instance (logs, errors). Defaults to the type name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Limits each push to `timeout`. Overrides the link's `outlet_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Tries a failed push again as `policy` says (default: once).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Adds a processor run on this outlet's copy of each batch, after the
    /// link's processors and groupers.
    pub fn processor<P: Processor>(mut self, processor: P) -> Self {
        let position = self.processors.len();
        self.processors.push(Stage::new(processor, position));
        self
    }

    /// Adds a processor with an explicit name.
    pub fn named_processor<P: Processor>(mut self, name: impl Into<String>, processor: P) -> Self {
        let mut stage = Stage::new(processor, self.processors.len());
        stage.name = name.into();
        self.processors.push(stage);
        self
    }

    /// The finished handle.
    pub fn build(self) -> OutletHandle {
        OutletHandle {
            shared: Arc::new(Shared {
                name: self.name,
                timeout: self.timeout,
                retry: self.retry,
                retries: Default::default(),
                lifecycle: Lifecycle::default(),
                claimed_by: std::sync::Mutex::new(None),
                has_processors: !self.processors.is_empty(),
                defers_sync: self.outlet.defers_sync(),
                unsynced_since: std::sync::Mutex::new(None),
                processors: tokio::sync::Mutex::new(self.processors),
                outlet: tokio::sync::Mutex::new(self.outlet),
            }),
        }
    }
}

/// Where a delivery to an outlet failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeliveryError {
    /// The outlet itself or one of its processors.
    pub kind: NodeKind,
    /// Name of the failing node.
    pub node: String,
    /// What went wrong.
    pub failure: Failure,
    /// Pushes tried (1 without retries; 0 when an outlet processor failed
    /// before any push).
    pub attempts: u32,
}

/// What one delivery to an outlet did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Delivered {
    /// Records the outlet wrote.
    pub written: usize,
    /// Records it refused (see [`Rejected`]), in batch order.
    pub rejected: Vec<RejectedRecord>,
    /// Pushes tried, the last one accepted (0 when nothing was pushed).
    pub attempts: u32,
}

impl Delivered {
    fn written(written: usize, attempts: u32) -> Self {
        Delivered {
            written,
            rejected: Vec::new(),
            attempts,
        }
    }
}

/// A shareable handle to one outlet instance. Clones refer to the same
/// instance; `on_start`/`on_shutdown` run once for it.
#[derive(Clone)]
pub struct OutletHandle {
    shared: Arc<Shared>,
}

impl OutletHandle {
    /// Wraps `outlet`, named after its type.
    pub fn new<O: Outlet>(outlet: O) -> Self {
        Self::builder(outlet).build()
    }

    /// Starts configuring a handle for `outlet`.
    pub fn builder<O: Outlet>(outlet: O) -> OutletBuilder {
        OutletBuilder {
            name: short_type_name::<O>(),
            timeout: None,
            retry: RetryPolicy::default(),
            processors: Vec::new(),
            outlet: Box::new(outlet),
        }
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The push timeout, if one was set on the handle.
    pub fn timeout(&self) -> Option<Duration> {
        self.shared.timeout
    }

    /// Whether a link using this instance is running.
    pub fn active(&self) -> bool {
        self.shared.lifecycle.active()
    }

    /// Whether both handles refer to the same instance.
    pub fn same_as(&self, other: &OutletHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether the outlet carries processors of its own.
    pub fn has_processors(&self) -> bool {
        self.shared.has_processors
    }

    /// The earliest wake-up its processors asked for.
    pub async fn next_wakeup(&self) -> Option<Instant> {
        if !self.shared.has_processors {
            return None;
        }
        let stages = self.shared.processors.lock().await;
        stages
            .iter()
            .filter_map(|s| s.processor.next_wakeup())
            .min()
    }

    /// Whether the outlet leaves syncing what it writes to
    /// [`sync`](OutletHandle::sync) ([`Outlet::defers_sync`]).
    pub fn defers_sync(&self) -> bool {
        self.shared.defers_sync
    }

    /// Delivers one batch: through the outlet's processors (on a copy, so
    /// other outlets see the batch unchanged), then pushed if anything is
    /// left, and durable when this returns (an outlet that
    /// [defers its sync](Outlet::defers_sync) is synced). Says how many
    /// records were written and which were rejected.
    pub async fn deliver(
        &self,
        batch: &[Record],
        cx: &Context<'_>,
        timeout: Option<Duration>,
    ) -> Result<Delivered, DeliveryError> {
        self.deliver_as(batch, cx, timeout, true).await
    }

    /// [`deliver`](OutletHandle::deliver); unless `durable`, an outlet
    /// that defers its sync is synced only if its writes waited
    /// [`SYNC_AT_LEAST_EVERY`] already.
    pub(crate) async fn deliver_as(
        &self,
        batch: &[Record],
        cx: &Context<'_>,
        timeout: Option<Duration>,
        durable: bool,
    ) -> Result<Delivered, DeliveryError> {
        let shared = &self.shared;
        let timeout = shared.timeout.or(timeout);
        if !shared.has_processors {
            if batch.is_empty() {
                return Ok(Delivered::default());
            }
            return self.push(batch, cx.update, timeout, durable).await;
        }
        let mut records = batch.to_vec();
        {
            let mut stages = shared.processors.lock().await;
            for stage in stages.iter_mut() {
                records = guarded(stage.processor.process(records, cx), None)
                    .await
                    .map_err(|failure| DeliveryError {
                        kind: NodeKind::OutletProcessor,
                        node: format!("{}/{}", shared.name, stage.name),
                        failure,
                        attempts: 0,
                    })?;
            }
        }
        if records.is_empty() {
            return Ok(Delivered::default());
        }
        self.push(&records, cx.update, timeout, durable).await
    }

    async fn push(
        &self,
        records: &[Record],
        update: &Update,
        timeout: Option<Duration>,
        durable: bool,
    ) -> Result<Delivered, DeliveryError> {
        let policy = self.shared.retry;
        let started = crate::clock::now();
        let mut attempt = 1;
        let mut outlet = self.shared.outlet.lock().await;
        let failure = loop {
            let pushed = guarded(outlet.push(records, update), timeout).await;
            if self.shared.defers_sync {
                // Even a failed push may have written some of its records.
                let now = crate::clock::now();
                crate::sync::lock(&self.shared.unsynced_since).get_or_insert(now);
            }
            let written = match pushed {
                Ok(()) => Ok(Delivered::written(records.len(), attempt)),
                Err(Failure::Error(e)) => match e.downcast::<Rejected>() {
                    Ok(rejected) => split_rejects(records, *rejected, attempt)
                        .map_err(|message| (Failure::Error(message.into()), false)),
                    Err(e) => {
                        let permanent = e.is::<Permanent>();
                        Err((Failure::Error(e), !permanent))
                    }
                },
                Err(timeout @ Failure::Timeout(_)) => Err((timeout, true)),
                Err(other) => Err((other, false)),
            };
            let (failure, retryable) = match written {
                Ok(delivered) => match self.after_push(&mut **outlet, durable, timeout).await {
                    Ok(()) => return Ok(delivered),
                    // Written but not synced: a second push would write
                    // the records twice, and a failed sync is not one to
                    // try again (the kernel may have dropped the pages).
                    Err(failure) => (failure, false),
                },
                Err(failed) => failed,
            };
            if !retryable || attempt >= policy.attempts() {
                break failure;
            }
            let delay = policy.delay(attempt + 1);
            let late = policy.deadline_after().is_some_and(|d| {
                crate::clock::now().saturating_duration_since(started) + delay > d
            });
            if late {
                break failure;
            }
            self.shared
                .retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                outlet = %self.shared.name,
                update = %update,
                attempt,
                attempts = policy.attempts(),
                "push failed: {failure}; trying again in {}",
                crate::error::humanize(delay)
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        };
        let failure = if attempt > 1 {
            Failure::Error(format!("{failure} (after {attempt} attempts)").into())
        } else {
            failure
        };
        Err(DeliveryError {
            kind: NodeKind::Outlet,
            node: self.shared.name.clone(),
            failure,
            attempts: attempt,
        })
    }

    /// After a push that wrote: syncs an outlet that defers its sync when
    /// the push must be `durable`, or when what it wrote since its last
    /// sync has waited [`SYNC_AT_LEAST_EVERY`].
    async fn after_push(
        &self,
        outlet: &mut dyn Outlet,
        durable: bool,
        timeout: Option<Duration>,
    ) -> Result<(), Failure> {
        if !self.shared.defers_sync {
            return Ok(());
        }
        let since = *crate::sync::lock(&self.shared.unsynced_since);
        let waited = since.is_some_and(|since| {
            crate::clock::now().saturating_duration_since(since) >= SYNC_AT_LEAST_EVERY
        });
        if !durable && !waited {
            return Ok(());
        }
        self.sync_held(outlet, timeout).await
    }

    /// Syncs the held `outlet` if a push wrote since its last sync.
    async fn sync_held(
        &self,
        outlet: &mut dyn Outlet,
        timeout: Option<Duration>,
    ) -> Result<(), Failure> {
        if crate::sync::lock(&self.shared.unsynced_since).is_none() {
            return Ok(());
        }
        guarded(outlet.sync(), timeout).await?;
        *crate::sync::lock(&self.shared.unsynced_since) = None;
        Ok(())
    }

    /// Makes durable what the outlet's pushes wrote, if it
    /// [defers its sync](Outlet::defers_sync) and a push wrote since its
    /// last sync, with panics caught and the push timeout applied.
    pub async fn sync(&self, timeout: Option<Duration>) -> Result<(), Failure> {
        if !self.shared.defers_sync {
            return Ok(());
        }
        let timeout = self.shared.timeout.or(timeout);
        let mut outlet = self.shared.outlet.lock().await;
        self.sync_held(&mut **outlet, timeout).await
    }

    /// How many pushes were tried again, in all ([`OutletBuilder::retry`]).
    pub fn retries(&self) -> u64 {
        self.shared
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The outlet's resume state ([`Outlet::snapshot`]); `None` if it
    /// keeps none.
    pub async fn snapshot(&self) -> Option<serde_json::Value> {
        self.shared.outlet.lock().await.snapshot()
    }

    /// Puts the outlet back at `state` ([`Outlet::restore`]), with panics
    /// caught.
    pub async fn restore(&self, state: serde_json::Value) -> Result<(), Failure> {
        let mut outlet = self.shared.outlet.lock().await;
        guarded(outlet.restore(state), None).await
    }

    /// Where the outlet can commit checkpoints with its records
    /// ([`TransactionalOutlet::location`]); `None` if it cannot.
    pub async fn transaction_location(&self) -> Option<String> {
        let mut outlet = self.shared.outlet.lock().await;
        outlet.transactional().and_then(|t| t.location())
    }

    /// Makes `link` the one whose checkpoints this outlet commits with its
    /// records. Only one link can: returns whether `link` is it.
    pub fn claim_transactions(&self, link: &str) -> bool {
        let mut claimed = crate::sync::lock(&self.shared.claimed_by);
        match &*claimed {
            Some(owner) => owner == link,
            None => {
                *claimed = Some(link.to_owned());
                true
            }
        }
    }

    /// [`TransactionalOutlet::hold`] for `update`.
    pub(crate) async fn hold(&self, update: &Update) {
        let mut outlet = self.shared.outlet.lock().await;
        if let Some(t) = outlet.transactional() {
            t.hold(update);
        }
    }

    /// [`TransactionalOutlet::commit`], with panics caught and the push
    /// timeout applied.
    pub(crate) async fn commit_held(
        &self,
        update: &Update,
        link: &str,
        checkpoint: &crate::checkpoint::Checkpoint,
        timeout: Option<Duration>,
    ) -> Result<bool, Failure> {
        let timeout = self.shared.timeout.or(timeout);
        let mut outlet = self.shared.outlet.lock().await;
        match outlet.transactional() {
            Some(t) => guarded(t.commit(update, link, checkpoint), timeout).await,
            None => Ok(false),
        }
    }

    /// [`TransactionalOutlet::abort`].
    pub(crate) async fn abort_held(&self, update: &Update) {
        let mut outlet = self.shared.outlet.lock().await;
        if let Some(t) = outlet.transactional() {
            t.abort(update).await;
        }
    }

    /// Registers a user of the instance; the first runs `on_start`.
    pub async fn start(&self) -> Result<(), Failure> {
        let shared = &self.shared;
        shared
            .lifecycle
            .acquire(|| async {
                let mut outlet = shared.outlet.lock().await;
                guarded(outlet.on_start(), None).await
            })
            .await
    }

    /// Unregisters a user; the last runs `on_shutdown`.
    pub async fn shutdown(&self) -> Result<(), Failure> {
        let shared = &self.shared;
        shared
            .lifecycle
            .release(|| async {
                let mut outlet = shared.outlet.lock().await;
                // What the last pushes wrote is kept whatever the hook does.
                let synced = if shared.defers_sync {
                    self.sync_held(&mut **outlet, shared.timeout).await
                } else {
                    Ok(())
                };
                let shut = guarded(outlet.on_shutdown(), None).await;
                synced.and(shut)
            })
            .await
    }
}

impl<O: Outlet> From<O> for OutletHandle {
    fn from(outlet: O) -> Self {
        OutletHandle::new(outlet)
    }
}

/// The records a push refused, with their errors; an index outside the
/// batch is an outlet bug, and then the whole push counts as failed (it
/// cannot be told what was written).
fn split_rejects(
    records: &[Record],
    rejected: Rejected,
    attempts: u32,
) -> Result<Delivered, String> {
    let mut rejects = rejected.into_rejects();
    rejects.sort_by_key(|r| r.index);
    rejects.dedup_by_key(|r| r.index);
    if let Some(bad) = rejects.iter().find(|r| r.index >= records.len()) {
        return Err(format!(
            "the outlet rejected record {} of a batch of {} records ({})",
            bad.index,
            records.len(),
            bad.error
        ));
    }
    Ok(Delivered {
        written: records.len() - rejects.len(),
        rejected: rejects
            .into_iter()
            .map(|r| RejectedRecord {
                record: records[r.index].clone(),
                index: r.index,
                error: r.error,
            })
            .collect(),
        attempts,
    })
}

impl fmt::Debug for OutletHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutletHandle")
            .field("name", &self.shared.name)
            .field("active", &self.active())
            .finish()
    }
}
