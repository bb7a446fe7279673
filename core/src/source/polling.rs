//! [`PollingInlet`]: calls a [`Poller`] on an interval (Bytewax's
//! `SimplePollingSource`).

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::BoxError;
use crate::inlet::{Inlet, Pull};
use crate::record::Record;
use crate::update::Update;

/// What one poll found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Polled {
    /// One item.
    Item(Value),
    /// Ready-made records, possibly several.
    Records(Vec<Record>),
    /// Nothing this time; poll again at the next interval.
    Nothing,
    /// Nothing yet; poll again after this delay rather than at the next
    /// interval (Bytewax's `SimplePollingSource.Retry`).
    Retry(Duration),
}

/// The logic a [`PollingInlet`] calls on its interval.
#[async_trait]
pub trait Poller: Send + 'static {
    /// Polls the source once.
    async fn next_item(&mut self) -> Result<Polled, BoxError>;
}

/// Polls a [`Poller`] every `interval`, whatever the link's schedule: the
/// link is woken for each poll ([`Inlet::wake_at`]), and transfers in
/// between do not poll. Polls fall on `align_to + k * interval` (by
/// default the time of the first poll); one that was missed is not made
/// up. One partition, no resume state: best for low-rate polling, seconds
/// to hours apart.
///
/// ```
/// use databay_core::source::{Polled, Poller, PollingInlet};
/// use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
/// use std::time::Duration;
///
/// struct Clock(u64);
///
/// #[async_trait]
/// impl Poller for Clock {
///     async fn next_item(&mut self) -> Result<Polled, BoxError> {
///         self.0 += 1;
///         Ok(Polled::Item(self.0.into()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
/// let mut inlet = PollingInlet::new(Clock(0), Duration::from_secs(10));
/// let update = Update::new(["clock"], 0);
/// assert_eq!(inlet.pull(&update).await?.records().len(), 1);
/// // Ten seconds have not passed: the next pull does not poll.
/// assert!(matches!(inlet.pull(&update).await?, Pull::Nothing));
/// assert!(inlet.wake_at().is_some());
/// # Ok(()) }
/// ```
pub struct PollingInlet<P> {
    poller: P,
    interval: Duration,
    align_to: Option<SystemTime>,
    /// The first poll, which later polls are aligned to without `align_to`.
    anchor: Option<Instant>,
    next: Option<Instant>,
}

impl<P: Poller> PollingInlet<P> {
    /// Polls `poller` every `interval` (at least 1 ms), the first time on
    /// the first pull.
    pub fn new(poller: P, interval: Duration) -> Self {
        PollingInlet {
            poller,
            interval: interval.max(Duration::from_millis(1)),
            align_to: None,
            anchor: None,
            next: None,
        }
    }

    /// Polls at `at + k * interval` (wall clock): with `at` at midnight and
    /// an interval of an hour, on the hour. If `at` is in the future the
    /// first poll waits for it.
    pub fn align_to(mut self, at: SystemTime) -> Self {
        self.align_to = Some(at);
        self
    }

    /// The poller.
    pub fn poller(&self) -> &P {
        &self.poller
    }

    /// The next interval's poll after `now`.
    fn next_poll(&self, now: Instant) -> Instant {
        let wait = match (self.align_to, self.anchor) {
            (Some(align), _) => until_next(SystemTime::now(), align, self.interval),
            (None, Some(anchor)) => {
                let since = now.saturating_duration_since(anchor);
                until_next_elapsed(since, self.interval)
            }
            (None, None) => self.interval,
        };
        crate::clock::after(now, wait)
    }
}

/// From `now`, how long until the next `align + k * interval` strictly
/// after it (the first `align` itself if that is still ahead).
fn until_next(now: SystemTime, align: SystemTime, interval: Duration) -> Duration {
    match now.duration_since(align) {
        Ok(since) => until_next_elapsed(since, interval),
        Err(ahead) => ahead.duration(),
    }
}

/// `since` after a boundary of a grid of `interval`: how long to the next.
fn until_next_elapsed(since: Duration, interval: Duration) -> Duration {
    let step = interval.as_nanos().max(1);
    let into = since.as_nanos() % step;
    Duration::from_nanos(u64::try_from(step - into).unwrap_or(u64::MAX))
}

#[async_trait]
impl<P: Poller> Inlet for PollingInlet<P> {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let now = crate::clock::now();
        if self.next.is_none()
            && let Some(align) = self.align_to
            && let Err(ahead) = SystemTime::now().duration_since(align)
        {
            // Not yet at the first aligned time.
            self.next = Some(crate::clock::after(now, ahead.duration()));
        }
        if self.next.is_some_and(|at| now < at) {
            return Ok(Pull::Nothing);
        }
        self.anchor.get_or_insert(now);
        let polled = self.poller.next_item().await;
        let after = crate::clock::now();
        self.next = Some(match &polled {
            Ok(Polled::Retry(delay)) => crate::clock::after(after, *delay),
            _ => self.next_poll(after),
        });
        Ok(match polled? {
            Polled::Item(value) => Pull::value(value),
            Polled::Records(records) => Pull::Records(records),
            Polled::Nothing | Polled::Retry(_) => Pull::Nothing,
        })
    }

    fn wake_at(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_polls_fall_on_the_grid() {
        let align = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let minute = Duration::from_secs(60);
        // 25 s past a boundary: 35 s to the next.
        let now = align + Duration::from_secs(60 * 7 + 25);
        assert_eq!(until_next(now, align, minute), Duration::from_secs(35));
        // On a boundary: a whole interval to the next, not zero.
        let now = align + Duration::from_secs(120);
        assert_eq!(until_next(now, align, minute), minute);
        // Before `align`: wait for it.
        let now = align - Duration::from_secs(5);
        assert_eq!(until_next(now, align, minute), Duration::from_secs(5));
    }
}
