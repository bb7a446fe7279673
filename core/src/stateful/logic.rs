//! The low-level operators: `stateful` runs a [`StatefulLogic`] per key,
//! `stateful_batch` a [`StatefulBatchLogic`], as Bytewax's `op.stateful`
//! and `op.stateful_batch` do. The logic object *is* the key's state; a
//! builder makes one for a new key (`None`) or from a snapshot (`Some`).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::KeyFn;
use super::keyed::{KeyedLogic, Stateful, Step};
use crate::error::BoxError;
use crate::record::Record;

/// What becomes of a key's state after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep it.
    Retain,
    /// Drop it: the key is forgotten at once, and a later record for it
    /// gets a new logic.
    Discard,
}

/// Keep the state (Bytewax's `StatefulLogic.RETAIN`).
pub const RETAIN: Retention = Retention::Retain;
/// Drop the state (Bytewax's `StatefulLogic.DISCARD`).
pub const DISCARD: Retention = Retention::Discard;

/// One key's logic for [`stateful`]. Every call returns the records to
/// emit and whether to keep the logic. `now` is the engine's time as UTC.
///
/// ```
/// use chrono::{DateTime, Utc};
/// use databay_core::Record;
/// use databay_core::stateful::{Retention, StatefulLogic, RETAIN, DISCARD};
///
/// /// Emits the running sum; forgets the key once it passes 100.
/// struct Sum(i64);
///
/// impl StatefulLogic for Sum {
///     type Snapshot = i64;
///     fn on_item(&mut self, record: Record, _now: DateTime<Utc>) -> (Vec<Record>, Retention) {
///         self.0 += record.payload.as_i64().unwrap_or(0);
///         (vec![Record::new(self.0)], if self.0 > 100 { DISCARD } else { RETAIN })
///     }
///     fn snapshot(&self) -> i64 {
///         self.0
///     }
/// }
/// ```
pub trait StatefulLogic: Send + 'static {
    /// What [`snapshot`](StatefulLogic::snapshot) gives and the builder
    /// resumes from.
    type Snapshot: Serialize + DeserializeOwned;

    /// A record for this key.
    fn on_item(&mut self, record: Record, now: DateTime<Utc>) -> (Vec<Record>, Retention);

    /// The time [`notify_at`](StatefulLogic::notify_at) asked for has come.
    fn on_notify(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let _ = now;
        (Vec::new(), RETAIN)
    }

    /// The stream ended (see [`Eof`](super::Eof)).
    fn on_eof(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let _ = now;
        (Vec::new(), RETAIN)
    }

    /// When to call [`on_notify`](StatefulLogic::on_notify); asked after
    /// every call.
    fn notify_at(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The state to resume from.
    fn snapshot(&self) -> Self::Snapshot;
}

/// One key's logic for [`stateful_batch`]: as [`StatefulLogic`], but given
/// all of a call's records for the key at once.
pub trait StatefulBatchLogic: Send + 'static {
    /// What [`snapshot`](StatefulBatchLogic::snapshot) gives.
    type Snapshot: Serialize + DeserializeOwned;

    /// This call's records for the key, in order.
    fn on_batch(&mut self, records: Vec<Record>, now: DateTime<Utc>) -> (Vec<Record>, Retention);

    /// See [`StatefulLogic::on_notify`].
    fn on_notify(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let _ = now;
        (Vec::new(), RETAIN)
    }

    /// See [`StatefulLogic::on_eof`].
    fn on_eof(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let _ = now;
        (Vec::new(), RETAIN)
    }

    /// See [`StatefulLogic::notify_at`].
    fn notify_at(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The state to resume from.
    fn snapshot(&self) -> Self::Snapshot;
}

/// Runs a [`StatefulLogic`] per key; `builder(None)` makes the logic of a
/// new key, `builder(Some(snapshot))` the logic of a restored one.
pub fn stateful<K, L, B>(key: K, builder: B) -> Stateful<K, PerKey<L, B>>
where
    K: KeyFn,
    L: StatefulLogic,
    B: FnMut(Option<L::Snapshot>) -> L + Send + 'static,
{
    Stateful::new(
        key,
        PerKey {
            builder,
            logic: PhantomData,
        },
    )
}

/// Runs a [`StatefulBatchLogic`] per key, as [`stateful`] does.
pub fn stateful_batch<K, L, B>(key: K, builder: B) -> Stateful<K, PerKeyBatch<L, B>>
where
    K: KeyFn,
    L: StatefulBatchLogic,
    B: FnMut(Option<L::Snapshot>) -> L + Send + 'static,
{
    Stateful::new(
        key,
        PerKeyBatch {
            builder,
            logic: PhantomData,
        },
    )
}

/// The [`KeyedLogic`] of [`stateful`].
pub struct PerKey<L, B> {
    builder: B,
    logic: PhantomData<fn() -> L>,
}

/// The [`KeyedLogic`] of [`stateful_batch`].
pub struct PerKeyBatch<L, B> {
    builder: B,
    logic: PhantomData<fn() -> L>,
}

fn apply<L>(
    state: &mut Option<L>,
    (records, retention): (Vec<Record>, Retention),
    step: &mut Step<'_>,
) {
    for record in records {
        step.emit(record);
    }
    if retention == DISCARD {
        *state = None;
    }
}

fn snapshot_of<S: Serialize>(snapshot: S) -> Result<Value, BoxError> {
    Ok(serde_json::to_value(snapshot)?)
}

impl<L, B> KeyedLogic for PerKey<L, B>
where
    L: StatefulLogic,
    B: FnMut(Option<L::Snapshot>) -> L + Send + 'static,
{
    type State = L;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<L>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let logic = state.get_or_insert_with(|| (self.builder)(None));
        let result = logic.on_item(record, step.now());
        apply(state, result, step);
        Ok(())
    }

    fn on_notify(&mut self, _key: &str, state: &mut Option<L>, step: &mut Step<'_>) {
        if let Some(logic) = state {
            let result = logic.on_notify(step.now());
            apply(state, result, step);
        }
    }

    fn on_eof(&mut self, _key: &str, state: &mut Option<L>, step: &mut Step<'_>) {
        if let Some(logic) = state {
            let result = logic.on_eof(step.now());
            apply(state, result, step);
        }
    }

    fn notify_at(&self, state: &L) -> Option<DateTime<Utc>> {
        state.notify_at()
    }

    fn snapshot(&self, state: &L) -> Result<Value, BoxError> {
        snapshot_of(state.snapshot())
    }

    fn restore(&mut self, state: Value) -> Result<L, BoxError> {
        Ok((self.builder)(Some(serde_json::from_value(state)?)))
    }
}

impl<L, B> KeyedLogic for PerKeyBatch<L, B>
where
    L: StatefulBatchLogic,
    B: FnMut(Option<L::Snapshot>) -> L + Send + 'static,
{
    type State = L;
    const BATCHED: bool = true;

    fn on_item(
        &mut self,
        key: &str,
        state: &mut Option<L>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        self.on_batch(key, state, vec![record], step)
    }

    fn on_batch(
        &mut self,
        _key: &str,
        state: &mut Option<L>,
        records: Vec<Record>,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let logic = state.get_or_insert_with(|| (self.builder)(None));
        let result = logic.on_batch(records, step.now());
        apply(state, result, step);
        Ok(())
    }

    fn on_notify(&mut self, _key: &str, state: &mut Option<L>, step: &mut Step<'_>) {
        if let Some(logic) = state {
            let result = logic.on_notify(step.now());
            apply(state, result, step);
        }
    }

    fn on_eof(&mut self, _key: &str, state: &mut Option<L>, step: &mut Step<'_>) {
        if let Some(logic) = state {
            let result = logic.on_eof(step.now());
            apply(state, result, step);
        }
    }

    fn notify_at(&self, state: &L) -> Option<DateTime<Utc>> {
        state.notify_at()
    }

    fn snapshot(&self, state: &L) -> Result<Value, BoxError> {
        snapshot_of(state.snapshot())
    }

    fn restore(&mut self, state: Value) -> Result<L, BoxError> {
        Ok((self.builder)(Some(serde_json::from_value(state)?)))
    }
}
