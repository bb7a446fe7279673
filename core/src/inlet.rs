//! Inlets produce records. Implement [`Inlet`]; wrap the instance in an
//! [`InletHandle`] to give it a name, global metadata and a timeout, and to
//! share it between links.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::{BoxError, Failure};
use crate::node::{Lifecycle, guarded, short_type_name};
use crate::record::{Metadata, Origin, Record};
use crate::update::Update;

/// What one pull produced.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Pull {
    /// Records, possibly none.
    Records(Vec<Record>),
    /// Nothing now; pull again on the next transfer.
    #[default]
    Nothing,
    /// Nothing now, and do not pull again before this much time has passed.
    /// The link wakes up for this inlet alone when the delay ends, even
    /// between scheduled transfers.
    RetryAfter(Duration),
    /// These are the last records: the input has ended (finite input). Once
    /// the transfer commits the inlet is not pulled again; when every inlet
    /// of a link has ended the link flushes and finishes. If the transfer
    /// fails, the inlet is rolled back ([`Inlet::rollback`]) and pulled
    /// again, so that its last records are read again rather than lost; an
    /// inlet that cannot read them again answers `Exhausted` once more.
    Exhausted(Vec<Record>),
}

impl Pull {
    /// One record holding `value`.
    pub fn value(value: impl Into<Value>) -> Self {
        Pull::Records(vec![Record::new(value)])
    }

    /// One record per value.
    pub fn values<I, V>(values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Pull::Records(values.into_iter().map(Record::new).collect())
    }

    /// The input has ended and produced nothing more.
    pub fn exhausted() -> Self {
        Pull::Exhausted(Vec::new())
    }

    /// The records carried, if any.
    pub fn records(&self) -> &[Record] {
        match self {
            Pull::Records(r) | Pull::Exhausted(r) => r,
            Pull::Nothing | Pull::RetryAfter(_) => &[],
        }
    }

    /// Takes the records out, leaving the variant's meaning.
    pub fn into_records(self) -> Vec<Record> {
        match self {
            Pull::Records(r) | Pull::Exhausted(r) => r,
            Pull::Nothing | Pull::RetryAfter(_) => Vec::new(),
        }
    }
}

impl From<Vec<Record>> for Pull {
    fn from(records: Vec<Record>) -> Self {
        Pull::Records(records)
    }
}

impl From<Record> for Pull {
    fn from(record: Record) -> Self {
        Pull::Records(vec![record])
    }
}

impl From<Value> for Pull {
    /// One record, whatever the value is (an array stays one record; use
    /// [`Pull::values`] for one record per element).
    fn from(value: Value) -> Self {
        Pull::value(value)
    }
}

/// A producer of records.
///
/// `pull` may be slow: inlets of one link are pulled concurrently. An inlet
/// does not see its global metadata; the framework attaches it, with
/// `__inlet__`, to every record the inlet returns.
///
/// ```
/// use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
///
/// struct Counter(u64);
///
/// #[async_trait]
/// impl Inlet for Counter {
///     async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
///         self.0 += 1;
///         Ok(Pull::value(self.0))
///     }
/// }
/// ```
#[async_trait]
pub trait Inlet: Send + 'static {
    /// Produces data for one transfer.
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError>;

    /// The records of the pull made for `update` were committed: every
    /// outlet of the link accepted them. A broker inlet acknowledges the
    /// messages behind them here, and only here.
    ///
    /// The contract, for inlets that hold messages until they are settled:
    ///
    /// - **At least once.** The link calls `commit` or [`rollback`](Inlet::rollback)
    ///   exactly once after each transfer that pulled this inlet, before the
    ///   link pulls it again. Only `commit` may acknowledge; a message whose
    ///   commit never comes is delivered again (by the broker, or by the
    ///   inlet itself on a later pull), so outlets may see it twice.
    /// - **Committed** means the transfer succeeded and no record failed to
    ///   reach an outlet. Under `ignore_exceptions` a transfer whose push
    ///   failed still succeeds, but its records are not committed: the inlet
    ///   is rolled back. Records a processor dropped under
    ///   `ignore_exceptions` count as taken (the error was ignored on
    ///   purpose), and so do records held back by a processor (a Buffer, a
    ///   window): their durability is the link's, not the broker's.
    /// - **One instance, several links.** Pulls of different links take
    ///   turns, and each is settled with its own `update` (same tags and
    ///   index as the pull's): key what is pending by
    ///   [`Update::tags`] and [`Update::index`].
    /// - **Shutdown.** A transfer cut short (a cancelled or timed-out
    ///   transfer future) may leave a pull unsettled. Whatever is still
    ///   pending when [`on_shutdown`](Inlet::on_shutdown) runs was not
    ///   committed: release it for redelivery (nack, requeue, or just close
    ///   the connection), never acknowledge it.
    ///
    /// An error here is logged and counted on the link; the transfer's
    /// outcome stays as it was (its records were delivered), and the
    /// messages behind it will typically be delivered again. The default
    /// does nothing.
    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        let _ = update;
        Ok(())
    }

    /// The records of the pull made for `update` were not committed: the
    /// transfer failed (a push, a processor, another inlet) or a record did
    /// not reach every outlet. Also called when this inlet's own pull for
    /// `update` failed, so that anything it took before failing can be
    /// released. A broker inlet releases the messages for redelivery (nack
    /// with requeue); it must not acknowledge them. See
    /// [`commit`](Inlet::commit) for the whole contract. An error is logged
    /// and counted. The default does nothing.
    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        let _ = update;
        Ok(())
    }

    /// When the link should pull this inlet next, even if no transfer is
    /// due then: asked after every pull. A link that transfers every hour
    /// still pulls an inlet that wants to be polled every ten seconds
    /// ([`PollingInlet`](crate::source::PollingInlet)), or one of whose
    /// partitions asked to be woken
    /// ([`StatefulPartition::next_awake`](crate::source::StatefulPartition::next_awake)).
    /// Scheduled transfers before that time pull it as usual (an inlet
    /// that must not be pulled early answers [`Pull::Nothing`] itself, or
    /// [`Pull::RetryAfter`]). The default, `None`, asks for nothing beyond
    /// the link's schedule.
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// The inlet's resume state: where it would carry on after the records
    /// it has had committed ([`commit`](Inlet::commit)), as JSON, for the
    /// link to checkpoint. Bytewax's rule applies: the state is the position
    /// *after* the last delivered item, so restoring it repeats nothing.
    /// The default, `None`, says the inlet keeps no resume state.
    fn snapshot(&self) -> Option<Value> {
        None
    }

    /// Puts the inlet back at `state`, a value an earlier
    /// [`snapshot`](Inlet::snapshot) returned, before it is started. The
    /// default refuses: an inlet that keeps no resume state cannot resume.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        let _ = state;
        Err("this inlet keeps no resume state".into())
    }

    /// Runs once before the first link using this instance starts.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Runs once after the last link using this instance stops.
    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

struct Shared {
    name: String,
    origin: Arc<Origin>,
    timeout: Option<Duration>,
    lifecycle: Lifecycle,
    inlet: tokio::sync::Mutex<Box<dyn Inlet>>,
}

/// A shareable handle to one inlet instance. Clones refer to the same
/// instance: `on_start`/`on_shutdown` run once for it however many links
/// use it, and pulls from several links take turns.
#[derive(Clone)]
pub struct InletHandle {
    shared: Arc<Shared>,
}

/// Configures an [`InletHandle`] before it is shared.
pub struct InletBuilder {
    name: String,
    metadata: Metadata,
    timeout: Option<Duration>,
    inlet: Box<dyn Inlet>,
}

impl InletBuilder {
    /// Names the instance (logs, errors, `__inlet__`). Defaults to the type name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the global metadata attached to every record of this inlet.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Adds one global metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Limits each pull to `timeout`; a slower pull fails with a timeout.
    /// Overrides the link's `inlet_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The finished handle.
    pub fn build(self) -> InletHandle {
        InletHandle {
            shared: Arc::new(Shared {
                origin: Arc::new(Origin::new(self.name.clone(), self.metadata)),
                name: self.name,
                timeout: self.timeout,
                lifecycle: Lifecycle::default(),
                inlet: tokio::sync::Mutex::new(self.inlet),
            }),
        }
    }
}

impl InletHandle {
    /// Wraps `inlet`, named after its type, with no global metadata.
    pub fn new<I: Inlet>(inlet: I) -> Self {
        Self::builder(inlet).build()
    }

    /// Starts configuring a handle for `inlet`.
    ///
    /// ```
    /// # use databay_core::{async_trait, BoxError, Inlet, InletHandle, Pull, Update};
    /// # struct Cats;
    /// # #[async_trait] impl Inlet for Cats {
    /// #     async fn pull(&mut self, _: &Update) -> Result<Pull, BoxError> { Ok(Pull::Nothing) }
    /// # }
    /// let inlet = InletHandle::builder(Cats).name("cats").meta("animal", "cat").build();
    /// assert_eq!(inlet.name(), "cats");
    /// ```
    pub fn builder<I: Inlet>(inlet: I) -> InletBuilder {
        InletBuilder {
            name: short_type_name::<I>(),
            metadata: Metadata::new(),
            timeout: None,
            inlet: Box::new(inlet),
        }
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The global metadata.
    pub fn metadata(&self) -> &Metadata {
        self.shared.origin.global()
    }

    /// The origin attached to this inlet's records.
    pub fn origin(&self) -> &Arc<Origin> {
        &self.shared.origin
    }

    /// The pull timeout, if one was set on the handle.
    pub fn timeout(&self) -> Option<Duration> {
        self.shared.timeout
    }

    /// Whether a link using this instance is running.
    pub fn active(&self) -> bool {
        self.shared.lifecycle.active()
    }

    /// Whether both handles refer to the same instance.
    pub fn same_as(&self, other: &InletHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Pulls once, with panics caught and the timeout applied (`timeout`
    /// overrides the handle's own), and attaches the origin to the records.
    pub async fn pull(&self, update: &Update, timeout: Option<Duration>) -> Result<Pull, Failure> {
        self.pull_and_wake(update, timeout).await.0
    }

    /// [`pull`](InletHandle::pull), and what [`Inlet::wake_at`] says after
    /// it (asked under the same lock).
    pub(crate) async fn pull_and_wake(
        &self,
        update: &Update,
        timeout: Option<Duration>,
    ) -> (Result<Pull, Failure>, Option<Instant>) {
        let timeout = self.shared.timeout.or(timeout);
        let mut inlet = self.shared.inlet.lock().await;
        let pulled = guarded(inlet.pull(update), timeout).await;
        let wake = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inlet.wake_at()))
            .ok()
            .flatten();
        drop(inlet);
        let pulled = pulled.map(|mut pull| {
            if let Pull::Records(records) | Pull::Exhausted(records) = &mut pull {
                for record in records.iter_mut() {
                    record.set_origin(self.shared.origin.clone());
                }
            }
            pull
        });
        (pulled, wake)
    }

    /// Commits the pull made for `update` ([`Inlet::commit`]), with panics
    /// caught and the pull's timeout applied.
    pub async fn commit(&self, update: &Update, timeout: Option<Duration>) -> Result<(), Failure> {
        let timeout = self.shared.timeout.or(timeout);
        let mut inlet = self.shared.inlet.lock().await;
        guarded(inlet.commit(update), timeout).await
    }

    /// Rolls back the pull made for `update` ([`Inlet::rollback`]), with
    /// panics caught and the pull's timeout applied.
    pub async fn rollback(
        &self,
        update: &Update,
        timeout: Option<Duration>,
    ) -> Result<(), Failure> {
        let timeout = self.shared.timeout.or(timeout);
        let mut inlet = self.shared.inlet.lock().await;
        guarded(inlet.rollback(update), timeout).await
    }

    /// When the inlet wants its next pull ([`Inlet::wake_at`]).
    pub async fn wake_at(&self) -> Option<Instant> {
        self.shared.inlet.lock().await.wake_at()
    }

    /// The inlet's resume state ([`Inlet::snapshot`]); `None` if it keeps
    /// none.
    pub async fn snapshot(&self) -> Option<Value> {
        self.shared.inlet.lock().await.snapshot()
    }

    /// Puts the inlet back at `state` ([`Inlet::restore`]), with panics
    /// caught.
    pub async fn restore(&self, state: Value) -> Result<(), Failure> {
        let mut inlet = self.shared.inlet.lock().await;
        guarded(inlet.restore(state), None).await
    }

    /// Registers a user of the instance; the first runs `on_start`.
    pub async fn start(&self) -> Result<(), Failure> {
        let shared = &self.shared;
        shared
            .lifecycle
            .acquire(|| async {
                let mut inlet = shared.inlet.lock().await;
                guarded(inlet.on_start(), None).await
            })
            .await
    }

    /// Unregisters a user; the last runs `on_shutdown`.
    pub async fn shutdown(&self) -> Result<(), Failure> {
        let shared = &self.shared;
        shared
            .lifecycle
            .release(|| async {
                let mut inlet = shared.inlet.lock().await;
                guarded(inlet.on_shutdown(), None).await
            })
            .await
    }
}

impl<I: Inlet> From<I> for InletHandle {
    fn from(inlet: I) -> Self {
        InletHandle::new(inlet)
    }
}

impl fmt::Debug for InletHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InletHandle")
            .field("name", &self.shared.name)
            .field("metadata", self.metadata())
            .field("active", &self.active())
            .finish()
    }
}
