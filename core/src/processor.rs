//! Processors and groupers: the middleware between pull and push.
//!
//! A processor turns a list of records into a list of records (filter,
//! transform, buffer, aggregate). It may hold records and state between
//! transfers, ask for a timer with [`Processor::next_wakeup`], and must give
//! up what it holds when the link flushes ([`Trigger::Flush`]).
//! A grouper splits the records into batches, each pushed separately.

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;

use crate::error::BoxError;
use crate::record::Record;
use crate::update::Update;

/// Why a processor is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// A transfer: the records are fresh from the inlets.
    Transfer,
    /// A wake-up a processor asked for with [`Processor::next_wakeup`]; no
    /// new records arrive (the list holds what earlier processors released).
    Timer,
    /// End of stream: every inlet is exhausted, or the link is stopping or
    /// being flushed. Release everything held.
    Flush,
}

/// What a processor knows about the call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The transfer this call is part of.
    pub update: &'a Update,
    /// Why the processor is called.
    pub trigger: Trigger,
    /// The time the call was made (one clock reading for the whole chain).
    pub now: Instant,
}

impl<'a> Context<'a> {
    /// A context for `update`, triggered by `trigger`, at the current time.
    pub fn new(update: &'a Update, trigger: Trigger) -> Self {
        Context {
            update,
            trigger,
            now: crate::clock::now(),
        }
    }
}

/// A step of a link's pipeline.
///
/// Any `FnMut(Vec<Record>) -> Vec<Record>` is a processor; use
/// [`fallible`] and [`from_async`] for closures that can fail or await.
///
/// ```
/// use databay_core::Record;
/// use databay_core::processor::Processor;
///
/// fn keep_small(records: Vec<Record>) -> Vec<Record> {
///     records.into_iter().filter(|r| r.payload.as_i64() < Some(100)).collect()
/// }
/// fn assert_processor<P: Processor>(_: P) {}
/// assert_processor(keep_small);
/// ```
#[async_trait]
pub trait Processor: Send + 'static {
    /// Turns `records` into the records passed on.
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError>;

    /// When this processor next needs to run even if no transfer is due
    /// (a buffer's time threshold, a window closing). The link wakes at the
    /// earliest such instant and calls the pipeline with [`Trigger::Timer`].
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }
}

#[async_trait]
impl<F> Processor for F
where
    F: FnMut(Vec<Record>) -> Vec<Record> + Send + 'static,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        Ok(self(records))
    }
}

#[async_trait]
impl Processor for Box<dyn Processor> {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (**self).process(records, cx).await
    }

    fn next_wakeup(&self) -> Option<Instant> {
        (**self).next_wakeup()
    }
}

/// A processor from a closure that can fail.
pub fn fallible<F>(f: F) -> Fallible<F>
where
    F: FnMut(Vec<Record>) -> Result<Vec<Record>, BoxError> + Send + 'static,
{
    Fallible(f)
}

/// See [`fallible`].
pub struct Fallible<F>(F);

#[async_trait]
impl<F> Processor for Fallible<F>
where
    F: FnMut(Vec<Record>) -> Result<Vec<Record>, BoxError> + Send + 'static,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (self.0)(records)
    }
}

/// A processor from an async closure.
pub fn from_async<F, Fut>(f: F) -> FromAsync<F>
where
    F: FnMut(Vec<Record>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Record>, BoxError>> + Send,
{
    FromAsync(f)
}

/// See [`from_async`].
pub struct FromAsync<F>(F);

#[async_trait]
impl<F, Fut> Processor for FromAsync<F>
where
    F: FnMut(Vec<Record>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Record>, BoxError>> + Send,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (self.0)(records).await
    }
}

/// Splits records into batches; each batch is pushed to the outlets
/// separately, in order. Groupers only batch: flattening the result should
/// give back the same records.
///
/// Any `FnMut(Vec<Vec<Record>>) -> Vec<Vec<Record>>` is a grouper.
pub trait Grouper: Send + 'static {
    /// Reshapes the batches.
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError>;
}

impl<F> Grouper for F
where
    F: FnMut(Vec<Vec<Record>>) -> Vec<Vec<Record>> + Send + 'static,
{
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        Ok(self(batches))
    }
}

impl Grouper for Box<dyn Grouper> {
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        (**self).group(batches)
    }
}

/// A named processor, as a link or an outlet holds it.
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) processor: Box<dyn Processor>,
}

impl Stage {
    pub(crate) fn new<P: Processor>(processor: P, position: usize) -> Self {
        let name = crate::node::short_type_name::<P>();
        let name = if name.contains("closure") || name.contains('{') {
            format!("processors[{position}]")
        } else {
            name
        };
        Stage {
            name,
            processor: Box::new(processor),
        }
    }
}
