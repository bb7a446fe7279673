//! Pulling a link's inlets: which are due, concurrency and timeouts, and
//! what each answer (records, nothing, retry later, exhausted) does to the
//! inlet's slot.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::Instrument;

use super::Link;
use crate::error::{Failure, NodeError, NodeKind};
use crate::inlet::{InletHandle, Pull};
use crate::record::Record;
use crate::sync::lock;
use crate::update::Update;

/// The shortest retry delay honoured: an inlet answering `RetryAfter(0)`
/// over and over is pulled at most this often.
const MIN_RETRY: Duration = Duration::from_millis(1);

/// Which inlets a transfer pulls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pulls {
    /// Every inlet that is not exhausted or waiting out a retry delay.
    Due,
    /// Only inlets whose retry delay has just ended.
    Retries,
    /// None (timer wake-ups and flushes).
    None,
}

/// Inlets a transfer pulled, each with whether its pull succeeded.
pub(super) type Unsettled = Vec<(InletHandle, bool)>;

impl Link {
    /// Pulls the inlets `pulls` selects; failures go to `errors`.
    pub(super) async fn pull(
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
                        (Pulls::Retries, None) => s.wake_at.is_some_and(|at| at <= now),
                        _ => true,
                    }
            })
            .map(|(i, s)| (i, s.handle.clone()))
            .collect();
        let timeout = inner.inlet_timeout;
        let pull = |(index, handle): (usize, InletHandle)| async move {
            let span = tracing::info_span!("inlet", component = %handle.name());
            let ((result, wake), bytes) =
                crate::bytes::metered(handle.pull_and_wake(update, timeout).instrument(span)).await;
            (index, handle, result, wake, bytes)
        };
        type Pulled = (
            usize,
            InletHandle,
            Result<Pull, Failure>,
            Option<Instant>,
            Option<u64>,
        );
        let results: Vec<Pulled> = if due.len() == 1
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
        let mut waking = false;
        for (index, handle, result, wake, bytes) in results {
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
                slot.unsettled = Some(!failed);
                slot.retry_at = retry_at;
                // A floor keeps a wake-up in the past from spinning.
                slot.wake_at =
                    wake.map(|at| at.max(crate::clock::after(crate::clock::now(), MIN_RETRY)));
                waking |= slot.wake_at.is_some();
                // The end counts once the transfer commits: if it fails,
                // the inlet is rolled back and pulled again, so that its
                // last records are not lost with it.
                slot.ending = exhausted;
                slot.counters.record(produced.len(), failed);
                slot.counters.add_bytes(bytes);
            }
            if records.is_empty() {
                records = produced;
            } else {
                records.extend(produced);
            }
        }
        if retrying || waking {
            // The timer may sleep until a later tick (a forced transfer):
            // wake it to plan the retry.
            inner.control.wake.notify_one();
        }
        records
    }

    /// Ends the transfer for the inlets it pulled: [`Inlet::commit`] when
    /// `committed` (every record reached every outlet) and the inlet's own
    /// pull succeeded, [`Inlet::rollback`] otherwise. A failure is logged
    /// and counted; it does not change the transfer's outcome.
    ///
    /// [`Inlet::commit`]: crate::Inlet::commit
    /// [`Inlet::rollback`]: crate::Inlet::rollback
    pub(super) async fn settle(&self, update: &Update, committed: bool) {
        let pulled = self.take_unsettled(committed);
        self.settle_these(update, committed, pulled).await;
    }

    /// [`settle`](Link::settle) of a committed transfer around its
    /// checkpoint: the inlets that keep resume state commit first (in
    /// memory: their new position is what the checkpoint saves), the others
    /// (a broker's acknowledgement, a webhook's answer: what lets go of the
    /// data at its source) only once `checkpoint` saved it. A crash in
    /// between then sends those again (at least once) rather than losing
    /// what a restored outlet cuts back to the checkpoint.
    pub(super) async fn settle_around<F: std::future::Future<Output = ()>>(
        &self,
        update: &Update,
        checkpoint: F,
    ) {
        let (stateful, letting_go) = self.take_unsettled_split().await;
        self.settle_these(update, true, stateful).await;
        checkpoint.await;
        self.settle_these(update, true, letting_go).await;
    }

    /// The inlets the running transfer pulled, as a commit takes them:
    /// those that keep resume state, then the others.
    pub(super) async fn take_unsettled_split(&self) -> (Unsettled, Unsettled) {
        let pulled = self.take_unsettled(true);
        let mut stateful = Vec::new();
        let mut letting_go = Vec::new();
        for (handle, ok) in pulled {
            if handle.snapshot().await.is_some() {
                stateful.push((handle, ok));
            } else {
                letting_go.push((handle, ok));
            }
        }
        (stateful, letting_go)
    }

    /// The inlets the running transfer pulled, each with whether its pull
    /// succeeded; an inlet whose input ended is `exhausted` once committed.
    fn take_unsettled(&self, committed: bool) -> Unsettled {
        lock(&self.inner.inlets)
            .iter_mut()
            .filter_map(|s| {
                let pulled_ok = s.unsettled.take()?;
                s.exhausted |= std::mem::take(&mut s.ending) && committed && pulled_ok;
                Some((s.handle.clone(), pulled_ok))
            })
            .collect()
    }

    pub(super) async fn settle_these(&self, update: &Update, committed: bool, pulled: Unsettled) {
        let inner = &*self.inner;
        let timeout = inner.inlet_timeout;
        for (handle, pulled_ok) in pulled {
            let commit = committed && pulled_ok;
            let span = tracing::info_span!("inlet", component = %handle.name());
            let result = if commit {
                handle.commit(update, timeout).instrument(span).await
            } else {
                handle.rollback(update, timeout).instrument(span).await
            };
            if let Err(failure) = result {
                let what = if commit { "commit" } else { "rollback" };
                let e = self.node_error(update, NodeKind::Inlet, handle.name(), failure);
                tracing::error!(link = %inner.name, update = %update, "{what}: {e}");
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                inner.counters.set_last_error(format!("{what}: {e}"));
            }
        }
    }

    /// Whether some inlet's retry delay has ended, or the time it asked to
    /// be woken at has come.
    pub(super) fn retry_due(&self, now: Instant) -> bool {
        lock(&self.inner.inlets).iter().any(|s| {
            !s.exhausted
                && (s.retry_at.is_some_and(|at| at <= now)
                    || (s.retry_at.is_none() && s.wake_at.is_some_and(|at| at <= now)))
        })
    }
}
