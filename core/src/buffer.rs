//! Buffers: processors that hold records until their controllers say
//! release.
//!
//! Unlike Databay's, a buffer here releases exactly when the stored count
//! reaches `count_threshold` (not one record later), its time threshold fires
//! on time even between transfers (the link wakes for it), and what it holds
//! is released when the link flushes, which graceful shutdown does.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::BoxError;
use crate::processor::{Context, Processor, Trigger};
use crate::record::Record;
use crate::sync::lock;

type Controller = Box<dyn FnMut(&[Record]) -> bool + Send>;
type OnReset = Box<dyn FnMut() + Send>;

#[derive(Default)]
struct State {
    records: Vec<Record>,
    count_threshold: Option<usize>,
    time_threshold: Option<Duration>,
    custom: Vec<Controller>,
    on_reset: Option<OnReset>,
    conjugate: bool,
    flush: bool,
    /// When the oldest stored record arrived.
    since: Option<Instant>,
    /// When the controllers were last evaluated. A time deadline at or
    /// before it has been seen already (and, in AND mode, was not enough):
    /// asking to be woken for it again would spin.
    last_eval: Option<Instant>,
}

/// Holds records until released by its controllers: custom ones (in the
/// order given), then count, then time; OR by default, AND with
/// [`Buffer::conjugate_controllers`]. Evaluation short-circuits.
///
/// A `Buffer` is a cheap handle: keep a clone to [`flush`](Buffer::flush) or
/// [`reset`](Buffer::reset) it from outside while a link owns it.
///
/// ```
/// use databay_core::{Buffer, Record};
/// use std::time::Duration;
///
/// let buffer = Buffer::new()
///     .count_threshold(10)
///     .time_threshold(Duration::from_secs(60));
/// assert!(buffer.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Buffer {
    state: Arc<Mutex<State>>,
}

impl Buffer {
    /// A buffer with no controllers: it releases on every call.
    pub fn new() -> Self {
        Buffer::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Release once this many records are stored.
    pub fn count_threshold(self, count: usize) -> Self {
        self.state().count_threshold = Some(count);
        self
    }

    /// Release once the oldest stored record has waited this long.
    pub fn time_threshold(self, time: Duration) -> Self {
        self.state().time_threshold = Some(time);
        self
    }

    /// Adds a custom controller: given the stored records, `true` releases.
    pub fn custom_controller(
        self,
        controller: impl FnMut(&[Record]) -> bool + Send + 'static,
    ) -> Self {
        self.state().custom.push(Box::new(controller));
        self
    }

    /// Called every time the buffer resets (after a release, or on `reset`).
    pub fn on_reset(self, callback: impl FnMut() + Send + 'static) -> Self {
        self.state().on_reset = Some(Box::new(callback));
        self
    }

    /// `true`: release only when every controller agrees (AND). Default
    /// `false`: release as soon as one does (OR).
    pub fn conjugate_controllers(self, all: bool) -> Self {
        self.state().conjugate = all;
        self
    }

    /// Forces a release on the next call, whatever the controllers say.
    pub fn flush(&self) {
        self.state().flush = true;
    }

    /// Drops the stored records and resets the controllers.
    pub fn reset(&self) {
        self.state().reset();
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.state().records.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the buffer on `records` at time `now`: stores them and returns
    /// what is released.
    pub fn push(&self, records: Vec<Record>, now: Instant, trigger: Trigger) -> Vec<Record> {
        let mut state = self.state();
        if !records.is_empty() {
            if state.records.is_empty() {
                state.since = Some(now);
            }
            state.records.extend(records);
        }
        if state.records.is_empty() {
            state.flush = false;
            return Vec::new();
        }
        state.last_eval = Some(now);
        let release = state.flush || trigger == Trigger::Flush || state.should_release(now);
        if release {
            let released = std::mem::take(&mut state.records);
            state.reset();
            released
        } else {
            Vec::new()
        }
    }
}

impl State {
    fn should_release(&mut self, now: Instant) -> bool {
        let conjugate = self.conjugate;
        let mut any = false;
        // Custom, then count, then time; stop as soon as the answer is known.
        for (i, controller) in self.custom.iter_mut().enumerate() {
            // A panicking controller must not take the held records with it:
            // it counts as "keep holding", and the panic is logged.
            let records = &self.records;
            let yes = std::panic::catch_unwind(AssertUnwindSafe(|| controller(records)))
                .unwrap_or_else(|_| {
                    tracing::error!(
                        controller = i,
                        "a buffer's custom controller panicked; holding the records"
                    );
                    false
                });
            if yes && !conjugate {
                return true;
            }
            if !yes && conjugate {
                return false;
            }
            any = true;
        }
        if let Some(n) = self.count_threshold {
            let yes = self.records.len() >= n;
            if yes != conjugate {
                return yes;
            }
            any = true;
        }
        if let Some(t) = self.time_threshold {
            return self.since.is_some_and(|s| now.duration_since(s) >= t);
        }
        // No controllers at all: pass records straight through. Otherwise,
        // in AND mode every controller agreed; in OR mode none did.
        !any || conjugate
    }

    fn reset(&mut self) {
        self.records.clear();
        self.since = None;
        self.flush = false;
        if let Some(cb) = self.on_reset.as_mut()
            && std::panic::catch_unwind(AssertUnwindSafe(cb)).is_err()
        {
            // The records being released must still reach the outlets.
            tracing::error!("a buffer's on_reset callback panicked");
        }
    }
}

#[async_trait]
impl Processor for Buffer {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        Ok(self.push(records, cx.now, cx.trigger))
    }

    /// The records held, each with its payload and merged metadata.
    fn snapshot(&self) -> Result<Option<serde_json::Value>, BoxError> {
        let state = self.state();
        Ok(Some(serde_json::json!({ "records": state.records })))
    }

    /// Holds the snapshot's records again (their wait for the time
    /// threshold starts anew).
    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), BoxError> {
        let records = snapshot
            .get("records")
            .and_then(serde_json::Value::as_array)
            .ok_or("a buffer's state must be {\"records\": [...]}")?;
        let mut restored = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let payload = r
                .get("payload")
                .cloned()
                .ok_or_else(|| format!("record {i}: no payload"))?;
            let metadata: crate::record::Metadata = match r.get("metadata") {
                None | Some(serde_json::Value::Null) => Default::default(),
                Some(serde_json::Value::Object(m)) => {
                    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                }
                Some(_) => return Err(format!("record {i}: metadata must be an object").into()),
            };
            restored.push(Record::with_metadata(payload, metadata));
        }
        let mut state = self.state();
        state.since = (!restored.is_empty()).then(crate::clock::now);
        state.records = restored;
        Ok(())
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let state = self.state();
        match (state.time_threshold, state.since) {
            (Some(t), Some(since)) if !state.records.is_empty() => {
                let due = since.checked_add(t)?;
                (state.last_eval < Some(due)).then_some(due)
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Buffer")
            .field("held", &state.records.len())
            .field("count_threshold", &state.count_threshold)
            .field("time_threshold", &state.time_threshold)
            .field("custom_controllers", &state.custom.len())
            .field("conjugate_controllers", &state.conjugate)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn recs(n: usize) -> Vec<Record> {
        (0..n).map(|i| Record::new(i as u64)).collect()
    }

    #[test]
    fn count_threshold_releases_exactly_at_threshold() {
        let b = Buffer::new().count_threshold(10);
        let t = Instant::now();
        assert!(b.push(recs(4), t, Trigger::Transfer).is_empty());
        assert!(b.push(recs(5), t, Trigger::Transfer).is_empty());
        assert_eq!(b.len(), 9);
        assert_eq!(b.push(recs(1), t, Trigger::Transfer).len(), 10);
        assert!(b.is_empty());
    }

    #[test]
    fn databay_example_releases_eleven_on_third_transfer() {
        let b = Buffer::new().count_threshold(10);
        let t = Instant::now();
        assert!(b.push(recs(4), t, Trigger::Transfer).is_empty());
        assert!(b.push(recs(4), t, Trigger::Transfer).is_empty());
        assert_eq!(b.push(recs(3), t, Trigger::Transfer).len(), 11);
    }

    #[test]
    fn time_threshold_counts_from_first_stored_record() {
        let b = Buffer::new().time_threshold(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(b.push(recs(1), t0, Trigger::Transfer).is_empty());
        assert_eq!(b.next_wakeup(), Some(t0 + Duration::from_secs(60)));
        assert!(
            b.push(recs(1), t0 + Duration::from_secs(59), Trigger::Transfer)
                .is_empty()
        );
        assert_eq!(
            b.push(vec![], t0 + Duration::from_secs(60), Trigger::Timer)
                .len(),
            2
        );
        assert_eq!(b.next_wakeup(), None);
    }

    #[test]
    fn or_and_and_combinations() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(61);
        let or = Buffer::new()
            .count_threshold(10)
            .time_threshold(Duration::from_secs(60));
        or.push(recs(2), t0, Trigger::Transfer);
        assert_eq!(or.push(vec![], later, Trigger::Timer).len(), 2);

        let and = Buffer::new()
            .count_threshold(10)
            .time_threshold(Duration::from_secs(60))
            .conjugate_controllers(true);
        and.push(recs(2), t0, Trigger::Transfer);
        assert!(
            and.push(vec![], later, Trigger::Timer).is_empty(),
            "count not met"
        );
        assert!(
            and.push(recs(8), t0 + Duration::from_secs(1), Trigger::Transfer)
                .is_empty(),
            "count met, time not"
        );
        assert_eq!(and.push(vec![], later, Trigger::Timer).len(), 10);
    }

    #[test]
    fn and_mode_time_met_stops_wakeups_until_reset() {
        let t0 = Instant::now();
        let b = Buffer::new()
            .count_threshold(10)
            .time_threshold(Duration::from_secs(1))
            .conjugate_controllers(true);
        b.push(recs(1), t0, Trigger::Transfer);
        assert!(b.next_wakeup().is_some());
        b.push(vec![], t0 + Duration::from_secs(2), Trigger::Timer);
        assert_eq!(
            b.next_wakeup(),
            None,
            "a met time controller must not busy-wake"
        );
        assert_eq!(
            b.push(recs(9), t0 + Duration::from_secs(3), Trigger::Transfer)
                .len(),
            10
        );
    }

    #[test]
    fn custom_controllers_run_first_and_short_circuit() {
        let count_calls = Arc::new(AtomicUsize::new(0));
        let c = count_calls.clone();
        let b = Buffer::new()
            .custom_controller(move |r| {
                c.fetch_add(1, Ordering::SeqCst);
                r.iter().any(|r| r.payload.as_u64() == Some(10_000))
            })
            .count_threshold(100);
        let t = Instant::now();
        assert!(b.push(recs(3), t, Trigger::Transfer).is_empty());
        assert_eq!(
            b.push(vec![Record::new(10_000)], t, Trigger::Transfer)
                .len(),
            4
        );
        assert_eq!(count_calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn flush_forces_release_and_reset_calls_on_reset() {
        let resets = Arc::new(AtomicUsize::new(0));
        let r = resets.clone();
        let b = Buffer::new().count_threshold(100).on_reset(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let t = Instant::now();
        b.push(recs(3), t, Trigger::Transfer);
        b.flush();
        assert_eq!(b.push(vec![], t, Trigger::Transfer).len(), 3);
        assert_eq!(resets.load(Ordering::SeqCst), 1);
        b.push(recs(3), t, Trigger::Transfer);
        b.reset();
        assert!(b.is_empty());
        assert_eq!(resets.load(Ordering::SeqCst), 2);
        b.push(recs(2), t, Trigger::Transfer);
        assert_eq!(b.push(vec![], t, Trigger::Flush).len(), 2);
    }

    #[test]
    fn no_controllers_pass_through() {
        let b = Buffer::new();
        assert_eq!(b.push(recs(3), Instant::now(), Trigger::Transfer).len(), 3);
    }
}
