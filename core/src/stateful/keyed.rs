//! The keyed engine every stateful operator runs on: it keys records,
//! keeps each key's state across calls, drops dead keys, fires the keys'
//! timers, reaches EOF, snapshots and restores. An operator only says what
//! happens to one key's state ([`KeyedLogic`]).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hashbrown::HashMap;
use serde_json::Value;

use super::timers::Timers;
use super::{Eof, KEY_META, KeyFn, WallClock};
use crate::error::BoxError;
use crate::processor::{Context, Gauge, Processor, Trigger};
use crate::record::Record;

/// What a logic call can do besides changing its key's state: read the
/// time and emit records.
pub struct Step<'a> {
    now: DateTime<Utc>,
    out: &'a mut Vec<Record>,
}

impl Step<'_> {
    /// The time of the call (the engine's clock, as UTC).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Emits `record` downstream (it gets the key in [`KEY_META`]).
    pub fn emit(&mut self, record: Record) {
        self.out.push(record);
    }

    /// Emits a record with `payload` and no other metadata than the key.
    pub fn emit_value(&mut self, payload: Value) {
        self.out.push(Record::new(payload));
    }
}

/// What an operator does with one key's state. The engine ([`Stateful`])
/// owns the states, one per key, and hands each call the key and a
/// `&mut Option<State>`: `None` on a key's first record; set it to `None`
/// to discard the key (its memory is released at once).
///
/// The logic object itself is shared by all keys (the mapper, the folder,
/// a clock that spans keys).
pub trait KeyedLogic: Send + 'static {
    /// One key's state.
    type State: Send + 'static;

    /// Whether the engine groups each call's records by key and calls
    /// [`on_batch`](KeyedLogic::on_batch) once per key instead of
    /// [`on_item`](KeyedLogic::on_item) per record.
    const BATCHED: bool = false;

    /// A record for `key`. An `Err` rejects the record (counted, logged
    /// with its position); the logic must then leave the state as it was.
    fn on_item(
        &mut self,
        key: &str,
        state: &mut Option<Self::State>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String>;

    /// This call's records for `key`, in order (when `BATCHED`).
    fn on_batch(
        &mut self,
        key: &str,
        state: &mut Option<Self::State>,
        records: Vec<Record>,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        for record in records {
            self.on_item(key, state, record, step)?;
        }
        Ok(())
    }

    /// The key's deadline ([`notify_at`](KeyedLogic::notify_at)) has come.
    fn on_notify(&mut self, key: &str, state: &mut Option<Self::State>, step: &mut Step<'_>) {
        let _ = (key, state, step);
    }

    /// The stream ended (see [`Eof`]).
    fn on_eof(&mut self, key: &str, state: &mut Option<Self::State>, step: &mut Step<'_>) {
        let _ = (key, state, step);
    }

    /// When the key wants [`on_notify`](KeyedLogic::on_notify), on the
    /// logic's own time line ([`progress`](KeyedLogic::progress)).
    fn notify_at(&self, state: &Self::State) -> Option<DateTime<Utc>> {
        let _ = state;
        None
    }

    /// The logic's time at wall time `now`, which deadlines are compared
    /// to: the wall time itself by default, an event-time watermark for
    /// event-time windows.
    fn progress(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now
    }

    /// The wall time at which [`progress`](KeyedLogic::progress) reaches
    /// `deadline`, for the link's timer; `None` if waiting cannot reach it.
    fn wake_at(&self, deadline: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(deadline)
    }

    /// One key's state as JSON.
    fn snapshot(&self, state: &Self::State) -> Result<Value, BoxError>;

    /// A key's state from what [`snapshot`](KeyedLogic::snapshot) gave.
    fn restore(&mut self, state: Value) -> Result<Self::State, BoxError>;

    /// State the logic keeps across keys (a clock), as JSON.
    fn snapshot_shared(&self) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    /// Restores what [`snapshot_shared`](KeyedLogic::snapshot_shared) gave.
    fn restore_shared(&mut self, shared: Value) -> Result<(), BoxError> {
        let _ = shared;
        Ok(())
    }

    /// Figures of the logic's own (open windows, late records).
    fn gauges(&self, gauges: &mut Vec<Gauge>) {
        let _ = gauges;
    }
}

struct Slot<S> {
    /// Always `Some` between calls; `None` during one means "discard".
    state: Option<S>,
    deadline: Option<DateTime<Utc>>,
}

/// A keyed stateful operator: a [`KeyFn`] and a [`KeyedLogic`], run as a
/// link processor. Every operator of [`stateful`](crate::stateful) is one.
pub struct Stateful<K, L: KeyedLogic> {
    key: K,
    logic: L,
    states: HashMap<Arc<str>, Slot<L::State>>,
    timers: Timers,
    eof: Eof,
    clock: WallClock,
    rejected: u64,
}

impl<K: KeyFn, L: KeyedLogic> Stateful<K, L> {
    /// Runs `logic` on records keyed by `key`.
    pub fn new(key: K, logic: L) -> Self {
        Stateful {
            key,
            logic,
            states: HashMap::new(),
            timers: Timers::default(),
            eof: Eof::default(),
            clock: WallClock::new(),
            rejected: 0,
        }
    }

    /// When the stream ends for this operator (default [`Eof::Link`]).
    pub fn eof(mut self, eof: Eof) -> Self {
        self.eof = eof;
        self
    }

    /// Reads time through `clock` (tests and replays fix it).
    pub fn wall_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Records left out so far (no key, or rejected by the logic).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The logic.
    pub fn logic(&self) -> &L {
        &self.logic
    }

    /// Runs the operator on `records` as [`Processor::process`] does.
    pub fn run(&mut self, records: Vec<Record>, cx: &Context<'_>) -> Vec<Record> {
        let now = self.clock.wall(cx.now);
        let mut out = Vec::new();
        self.fire_due(now, &mut out);
        if L::BATCHED {
            self.items_batched(records, now, cx, &mut out);
        } else {
            self.items(records, now, cx, &mut out);
        }
        self.fire_due(now, &mut out);
        let eof = match cx.trigger {
            Trigger::Flush => true,
            Trigger::Transfer => self.eof == Eof::Transfer,
            _ => false,
        };
        if eof {
            self.end_of_stream(now, &mut out);
        }
        out
    }

    fn items(
        &mut self,
        records: Vec<Record>,
        now: DateTime<Utc>,
        cx: &Context<'_>,
        out: &mut Vec<Record>,
    ) {
        let count = records.len();
        for (i, record) in records.into_iter().enumerate() {
            let key = match self.key.key(&record) {
                Ok(key) => key,
                Err(reason) => {
                    self.reject(cx, i, count, &reason);
                    continue;
                }
            };
            let before = out.len();
            let mut step = Step { now, out };
            if let Some((k, slot)) = self.states.get_key_value_mut(key.as_ref()) {
                drop(key);
                let result = self.logic.on_item(k, &mut slot.state, record, &mut step);
                stamp(&mut out[before..], k);
                let dead = match &slot.state {
                    Some(state) => {
                        let deadline = self.logic.notify_at(state);
                        if deadline != slot.deadline {
                            self.timers.set(k, slot.deadline, deadline);
                            slot.deadline = deadline;
                        }
                        None
                    }
                    None => {
                        self.timers.set(k, slot.deadline, None);
                        Some(k.clone())
                    }
                };
                if let Some(k) = dead {
                    self.states.remove(&k);
                }
                if let Err(reason) = result {
                    self.reject(cx, i, count, &reason);
                }
            } else {
                let k: Arc<str> = Arc::from(key.as_ref());
                drop(key);
                let mut state = None;
                let result = self.logic.on_item(&k, &mut state, record, &mut step);
                stamp(&mut out[before..], &k);
                if let Some(state) = state {
                    let deadline = self.logic.notify_at(&state);
                    self.timers.set(&k, None, deadline);
                    let slot = Slot {
                        state: Some(state),
                        deadline,
                    };
                    self.states.insert(k, slot);
                }
                if let Err(reason) = result {
                    self.reject(cx, i, count, &reason);
                }
            }
        }
    }

    fn items_batched(
        &mut self,
        records: Vec<Record>,
        now: DateTime<Utc>,
        cx: &Context<'_>,
        out: &mut Vec<Record>,
    ) {
        let count = records.len();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<(Arc<str>, Vec<Record>, usize)> = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let at = match self.key.key(&record) {
                Ok(key) => match index.get(key.as_ref()) {
                    Some(&at) => at,
                    None => {
                        index.insert(key.to_string(), groups.len());
                        groups.push((Arc::from(key.as_ref()), Vec::new(), i));
                        groups.len() - 1
                    }
                },
                Err(reason) => {
                    self.reject(cx, i, count, &reason);
                    continue;
                }
            };
            groups[at].1.push(record);
        }
        for (key, batch, first) in groups {
            let before = out.len();
            let mut step = Step { now, out };
            let (key, slot) = match self.states.get_key_value_mut(&key) {
                Some((k, slot)) => (k.clone(), slot),
                None => (
                    key.clone(),
                    self.states.entry(key).or_insert(Slot {
                        state: None,
                        deadline: None,
                    }),
                ),
            };
            let result = self.logic.on_batch(&key, &mut slot.state, batch, &mut step);
            stamp(&mut out[before..], &key);
            self.settle(&key);
            if let Err(reason) = result {
                self.reject(cx, first, count, &reason);
            }
        }
    }

    /// Notifies the keys whose deadline has come, each once.
    fn fire_due(&mut self, now: DateTime<Utc>, out: &mut Vec<Record>) {
        let progress = self.logic.progress(now);
        if self.timers.first().is_none_or(|first| first > progress) {
            return;
        }
        for key in self.timers.take_due(progress) {
            let Some(slot) = self.states.get_mut(&key) else {
                continue;
            };
            slot.deadline = None;
            let before = out.len();
            let mut step = Step { now, out };
            self.logic.on_notify(&key, &mut slot.state, &mut step);
            stamp(&mut out[before..], &key);
            self.settle(&key);
        }
    }

    fn end_of_stream(&mut self, now: DateTime<Utc>, out: &mut Vec<Record>) {
        let mut keys: Vec<Arc<str>> = self.states.keys().cloned().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(slot) = self.states.get_mut(&key) else {
                continue;
            };
            let before = out.len();
            let mut step = Step { now, out };
            self.logic.on_eof(&key, &mut slot.state, &mut step);
            stamp(&mut out[before..], &key);
            self.settle(&key);
        }
    }

    /// After a call on `key`: drop it if its state is gone, otherwise put
    /// its deadline where the state now wants it.
    fn settle(&mut self, key: &Arc<str>) {
        let Some(slot) = self.states.get_mut(key) else {
            return;
        };
        match &slot.state {
            Some(state) => {
                let deadline = self.logic.notify_at(state);
                self.timers.set(key, slot.deadline, deadline);
                slot.deadline = deadline;
            }
            None => {
                self.timers.set(key, slot.deadline, None);
                self.states.remove(key);
            }
        }
    }

    fn reject(&mut self, cx: &Context<'_>, index: usize, count: usize, reason: &str) {
        self.rejected += 1;
        tracing::warn!(
            update = %cx.update,
            record = index,
            records = count,
            "record {index} of {count} left out by a stateful operator: {reason}"
        );
    }
}

/// Puts the key on every record a call emitted.
fn stamp(records: &mut [Record], key: &str) {
    for record in records {
        record.set_meta(KEY_META, key);
    }
}

#[async_trait]
impl<K: KeyFn, L: KeyedLogic> Processor for Stateful<K, L> {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        Ok(self.run(records, cx))
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let first = self.timers.first()?;
        let wall = self.logic.wake_at(first)?;
        Some(self.clock.instant(wall))
    }

    /// `{"keys": [[key, state], ...], "shared": ...}`, keys in order.
    fn snapshot(&self) -> Result<Option<Value>, BoxError> {
        let mut keys: Vec<(&Arc<str>, &Slot<L::State>)> = self.states.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut entries = Vec::with_capacity(keys.len());
        for (key, slot) in keys {
            if let Some(state) = &slot.state {
                let state = self
                    .logic
                    .snapshot(state)
                    .map_err(|e| format!("cannot snapshot the state of key {key:?}: {e}"))?;
                entries.push(Value::Array(vec![Value::from(&**key), state]));
            }
        }
        let mut snapshot = serde_json::Map::new();
        snapshot.insert("keys".into(), Value::Array(entries));
        snapshot.insert("shared".into(), self.logic.snapshot_shared()?);
        Ok(Some(Value::Object(snapshot)))
    }

    fn restore(&mut self, snapshot: Value) -> Result<(), BoxError> {
        let Value::Object(mut snapshot) = snapshot else {
            return Err("a stateful operator's snapshot must be an object".into());
        };
        let Some(Value::Array(entries)) = snapshot.remove("keys") else {
            return Err("a stateful operator's snapshot needs a `keys` array".into());
        };
        self.logic
            .restore_shared(snapshot.remove("shared").unwrap_or(Value::Null))?;
        self.states.clear();
        self.timers.clear();
        for (i, entry) in entries.into_iter().enumerate() {
            let (key, state) = match entry {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(Value::String(key)), Some(state)) => (key, state),
                        _ => return Err(format!("snapshot key {i}: want [key, state]").into()),
                    }
                }
                _ => return Err(format!("snapshot key {i}: want [key, state]").into()),
            };
            let state = self
                .logic
                .restore(state)
                .map_err(|e| format!("cannot restore the state of key {key:?}: {e}"))?;
            let key: Arc<str> = key.into();
            let deadline = self.logic.notify_at(&state);
            self.timers.set(&key, None, deadline);
            self.states.insert(
                key,
                Slot {
                    state: Some(state),
                    deadline,
                },
            );
        }
        Ok(())
    }

    fn gauges(&self) -> Vec<Gauge> {
        let mut gauges = vec![
            Gauge::new("keys", self.states.len() as u64),
            Gauge::new("timers", self.timers.len() as u64),
            Gauge::new("rejected_records_total", self.rejected),
        ];
        self.logic.gauges(&mut gauges);
        gauges
    }
}
