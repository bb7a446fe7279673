//! The everyday keyed operators, each a few lines of [`KeyedLogic`]:
//! `stateful_map`, `stateful_flat_map`, the `*_final` aggregations and
//! `collect`. They see payloads; a mapped record keeps its metadata.

use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KeyFn;
use super::keyed::{KeyedLogic, Stateful, Step};
use crate::error::BoxError;
use crate::record::Record;

fn to_json<S: Serialize>(state: &S) -> Result<Value, BoxError> {
    Ok(serde_json::to_value(state)?)
}

fn from_json<S: DeserializeOwned>(state: Value) -> Result<S, BoxError> {
    Ok(serde_json::from_value(state)?)
}

/// Emits `state` as a payload; a state that has no JSON form is logged,
/// never passed off as something else.
fn emit_state<S: Serialize>(key: &str, state: &S, step: &mut Step<'_>) {
    match serde_json::to_value(state) {
        Ok(value) => step.emit_value(value),
        Err(e) => tracing::error!(key, "the state of key {key:?} has no JSON form: {e}"),
    }
}

/// Bytewax's `stateful_map`: `mapper(state, payload)` returns the key's
/// new state (`None` discards it) and the payload to emit in place of the
/// record's (its metadata is kept).
///
/// ```
/// use databay_core::Record;
/// use databay_core::stateful::{key_text, stateful_map};
/// use serde_json::{json, Value};
///
/// // A running count per user.
/// let counts = stateful_map(
///     |r: &Record| key_text(r.payload.get("user")),
///     |count: Option<u64>, _event: Value| {
///         let count = count.unwrap_or(0) + 1;
///         (Some(count), json!(count))
///     },
/// );
/// assert!(counts.is_empty());
/// ```
pub fn stateful_map<K, S, F>(key: K, mapper: F) -> Stateful<K, Map<S, F>>
where
    K: KeyFn,
    S: Serialize + DeserializeOwned + Send + 'static,
    F: FnMut(Option<S>, Value) -> (Option<S>, Value) + Send + 'static,
{
    Stateful::new(
        key,
        Map {
            mapper,
            state: PhantomData,
        },
    )
}

/// The logic of [`stateful_map`].
pub struct Map<S, F> {
    mapper: F,
    state: PhantomData<fn() -> S>,
}

impl<S, F> KeyedLogic for Map<S, F>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    F: FnMut(Option<S>, Value) -> (Option<S>, Value) + Send + 'static,
{
    type State = S;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<S>,
        mut record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let value = std::mem::take(&mut record.payload);
        let (next, out) = (self.mapper)(state.take(), value);
        *state = next;
        record.payload = out;
        step.emit(record);
        Ok(())
    }

    fn snapshot(&self, state: &S) -> Result<Value, BoxError> {
        to_json(state)
    }

    fn restore(&mut self, state: Value) -> Result<S, BoxError> {
        from_json(state)
    }
}

/// Bytewax's `stateful_flat_map`: as [`stateful_map`], but the mapper
/// returns any number of payloads, each emitted with the record's metadata.
pub fn stateful_flat_map<K, S, F, I>(key: K, mapper: F) -> Stateful<K, FlatMap<S, F>>
where
    K: KeyFn,
    S: Serialize + DeserializeOwned + Send + 'static,
    F: FnMut(Option<S>, Value) -> (Option<S>, I) + Send + 'static,
    I: IntoIterator<Item = Value>,
{
    Stateful::new(
        key,
        FlatMap {
            mapper,
            state: PhantomData,
        },
    )
}

/// The logic of [`stateful_flat_map`].
pub struct FlatMap<S, F> {
    mapper: F,
    state: PhantomData<fn() -> S>,
}

impl<S, F, I> KeyedLogic for FlatMap<S, F>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    F: FnMut(Option<S>, Value) -> (Option<S>, I) + Send + 'static,
    I: IntoIterator<Item = Value>,
{
    type State = S;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<S>,
        mut record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let value = std::mem::take(&mut record.payload);
        let (next, outs) = (self.mapper)(state.take(), value);
        *state = next;
        for out in outs {
            let mut emitted = record.clone();
            emitted.payload = out;
            step.emit(emitted);
        }
        Ok(())
    }

    fn snapshot(&self, state: &S) -> Result<Value, BoxError> {
        to_json(state)
    }

    fn restore(&mut self, state: Value) -> Result<S, BoxError> {
        from_json(state)
    }
}

/// Bytewax's `fold_final`: each key's accumulator starts as `builder()`
/// and `folder(acc, payload)` gives the next; at EOF every key emits its
/// accumulator (as JSON) and is dropped.
pub fn fold_final<K, S, B, F>(key: K, builder: B, folder: F) -> Stateful<K, Fold<S, B, F>>
where
    K: KeyFn,
    S: Serialize + DeserializeOwned + Send + 'static,
    B: FnMut() -> S + Send + 'static,
    F: FnMut(S, Value) -> S + Send + 'static,
{
    Stateful::new(
        key,
        Fold {
            builder,
            folder,
            state: PhantomData,
        },
    )
}

/// The logic of [`fold_final`].
pub struct Fold<S, B, F> {
    builder: B,
    folder: F,
    state: PhantomData<fn() -> S>,
}

impl<S, B, F> KeyedLogic for Fold<S, B, F>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    B: FnMut() -> S + Send + 'static,
    F: FnMut(S, Value) -> S + Send + 'static,
{
    type State = S;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<S>,
        record: Record,
        _step: &mut Step<'_>,
    ) -> Result<(), String> {
        let acc = state.take().unwrap_or_else(&mut self.builder);
        *state = Some((self.folder)(acc, record.payload));
        Ok(())
    }

    fn on_eof(&mut self, key: &str, state: &mut Option<S>, step: &mut Step<'_>) {
        if let Some(acc) = state.take() {
            emit_state(key, &acc, step);
        }
    }

    fn snapshot(&self, state: &S) -> Result<Value, BoxError> {
        to_json(state)
    }

    fn restore(&mut self, state: Value) -> Result<S, BoxError> {
        from_json(state)
    }
}

/// Bytewax's `reduce_final`: the key's first payload, then
/// `reducer(acc, payload)` for each next one; emitted at EOF.
pub fn reduce_final<K, F>(key: K, mut reducer: F) -> Stateful<K, impl KeyedLogic<State = Value>>
where
    K: KeyFn,
    F: FnMut(Value, Value) -> Value + Send + 'static,
{
    fold_final(
        key,
        || Value::Null,
        move |acc: Value, value| {
            if acc.is_null() {
                value
            } else {
                reducer(acc, value)
            }
        },
    )
}

/// Bytewax's `count_final`: the number of records of each key, at EOF.
pub fn count_final<K: KeyFn>(key: K) -> Stateful<K, impl KeyedLogic<State = u64>> {
    fold_final(key, || 0u64, |n, _| n + 1)
}

/// Bytewax's `max_final`: each key's payload with the greatest `by`, at
/// EOF (the first of equals).
pub fn max_final<K, T, F>(key: K, by: F) -> Stateful<K, impl KeyedLogic<State = Option<Value>>>
where
    K: KeyFn,
    T: PartialOrd,
    F: FnMut(&Value) -> T + Send + 'static,
{
    extreme(key, by, std::cmp::Ordering::Greater)
}

/// Bytewax's `min_final`: each key's payload with the least `by`, at EOF
/// (the first of equals).
pub fn min_final<K, T, F>(key: K, by: F) -> Stateful<K, impl KeyedLogic<State = Option<Value>>>
where
    K: KeyFn,
    T: PartialOrd,
    F: FnMut(&Value) -> T + Send + 'static,
{
    extreme(key, by, std::cmp::Ordering::Less)
}

fn extreme<K, T, F>(
    key: K,
    mut by: F,
    wins: std::cmp::Ordering,
) -> Stateful<K, impl KeyedLogic<State = Option<Value>>>
where
    K: KeyFn,
    T: PartialOrd,
    F: FnMut(&Value) -> T + Send + 'static,
{
    fold_final(
        key,
        || None,
        move |best: Option<Value>, value| match best {
            Some(best) if by(&value).partial_cmp(&by(&best)) != Some(wins) => Some(best),
            _ => Some(value),
        },
    )
}

/// Bytewax's `collect`: gathers each key's payloads into a list, emitted
/// (as a JSON array) when it holds `max_size` items, when `timeout` has
/// passed since its first item (on time: the link wakes for it), or at
/// EOF. The key is dropped once its list is emitted.
pub fn collect<K: KeyFn>(key: K, timeout: Duration, max_size: usize) -> Stateful<K, Collect> {
    Stateful::new(
        key,
        Collect {
            timeout: TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX),
            max_size: max_size.max(1),
        },
    )
}

/// The logic of [`collect`].
#[derive(Debug, Clone)]
pub struct Collect {
    timeout: TimeDelta,
    max_size: usize,
}

/// One key's list in [`collect`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gathered {
    items: Vec<Value>,
    since: DateTime<Utc>,
}

impl KeyedLogic for Collect {
    type State = Gathered;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<Gathered>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let now = step.now();
        let list = state.get_or_insert_with(|| Gathered {
            items: Vec::new(),
            since: now,
        });
        list.items.push(record.payload);
        if list.items.len() >= self.max_size
            && let Some(list) = state.take()
        {
            step.emit_value(Value::Array(list.items));
        }
        Ok(())
    }

    fn on_notify(&mut self, _key: &str, state: &mut Option<Gathered>, step: &mut Step<'_>) {
        if let Some(list) = state.take() {
            step.emit_value(Value::Array(list.items));
        }
    }

    fn on_eof(&mut self, key: &str, state: &mut Option<Gathered>, step: &mut Step<'_>) {
        self.on_notify(key, state, step);
    }

    fn notify_at(&self, state: &Gathered) -> Option<DateTime<Utc>> {
        Some(
            state
                .since
                .checked_add_signed(self.timeout)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    fn snapshot(&self, state: &Gathered) -> Result<Value, BoxError> {
        to_json(state)
    }

    fn restore(&mut self, state: Value) -> Result<Gathered, BoxError> {
        from_json(state)
    }
}
