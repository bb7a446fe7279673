//! Window logics: what one window does with its items (Bytewax's
//! `WindowLogic`): take a value, absorb a window merged into it (sessions),
//! and say what to emit when it closes. The state of each open window is
//! the logic's `State`; the logic object is shared by every window.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::record::Record;
use crate::stateful::join::{EmitMode, Join};

/// What one window does with its items.
pub trait WindowLogic: Send + 'static {
    /// One open window's state.
    type State: Serialize + DeserializeOwned + Send + 'static;

    /// Checks a record before it is assigned: an `Err` rejects it (counted,
    /// logged with its position), as a missing key does.
    fn accepts(&self, record: &Record) -> Result<(), String> {
        let _ = record;
        Ok(())
    }

    /// A new window's state.
    fn open(&mut self) -> Self::State;

    /// A record for the window; `emit` takes payloads to emit now.
    fn on_value(&mut self, state: &mut Self::State, record: Record, emit: &mut Vec<Value>);

    /// `other`, a window merged into this one (two sessions bridged).
    fn on_merge(&mut self, into: &mut Self::State, other: Self::State);

    /// The window closed; `emit` takes what to emit for it.
    fn on_close(&mut self, state: Self::State, emit: &mut Vec<Value>);
}

/// Folds a window's payloads: `builder()`, then `folder(acc, payload)`;
/// `merger(a, b)` joins two windows' accumulators.
pub struct FoldWindow<S, B, F, M> {
    pub(crate) builder: B,
    pub(crate) folder: F,
    pub(crate) merger: M,
    pub(crate) state: PhantomData<fn() -> S>,
}

impl<S, B, F, M> WindowLogic for FoldWindow<S, B, F, M>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    B: FnMut() -> S + Send + 'static,
    F: FnMut(S, Value) -> S + Send + 'static,
    M: FnMut(S, S) -> S + Send + 'static,
{
    type State = Option<S>;

    fn open(&mut self) -> Option<S> {
        Some((self.builder)())
    }

    fn on_value(&mut self, state: &mut Option<S>, record: Record, _emit: &mut Vec<Value>) {
        let acc = state.take().unwrap_or_else(&mut self.builder);
        *state = Some((self.folder)(acc, record.payload));
    }

    fn on_merge(&mut self, into: &mut Option<S>, other: Option<S>) {
        *into = match (into.take(), other) {
            (Some(a), Some(b)) => Some((self.merger)(a, b)),
            (a, b) => a.or(b),
        };
    }

    fn on_close(&mut self, state: Option<S>, emit: &mut Vec<Value>) {
        let Some(acc) = state else {
            return;
        };
        match serde_json::to_value(acc) {
            Ok(value) => emit.push(value),
            Err(e) => tracing::error!("a window's accumulator has no JSON form: {e}"),
        }
    }
}

/// Counts a window's records.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountWindow;

impl WindowLogic for CountWindow {
    type State = u64;

    fn open(&mut self) -> u64 {
        0
    }

    fn on_value(&mut self, state: &mut u64, _record: Record, _emit: &mut Vec<Value>) {
        *state += 1;
    }

    fn on_merge(&mut self, into: &mut u64, other: u64) {
        *into += other;
    }

    fn on_close(&mut self, state: u64, emit: &mut Vec<Value>) {
        emit.push(Value::from(state));
    }
}

/// Collects a window's payloads into a list, in arrival order (a merged
/// session's list follows the one it merged into).
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectWindow;

impl WindowLogic for CollectWindow {
    type State = Vec<Value>;

    fn open(&mut self) -> Vec<Value> {
        Vec::new()
    }

    fn on_value(&mut self, state: &mut Vec<Value>, record: Record, _emit: &mut Vec<Value>) {
        state.push(record.payload);
    }

    fn on_merge(&mut self, into: &mut Vec<Value>, other: Vec<Value>) {
        into.extend(other);
    }

    fn on_close(&mut self, state: Vec<Value>, emit: &mut Vec<Value>) {
        emit.push(Value::Array(state));
    }
}

/// Reduces a window's payloads with `reducer(acc, payload)`.
pub struct ReduceWindow<F> {
    pub(crate) reducer: F,
}

impl<F> WindowLogic for ReduceWindow<F>
where
    F: FnMut(Value, Value) -> Value + Send + 'static,
{
    type State = Option<Value>;

    fn open(&mut self) -> Option<Value> {
        None
    }

    fn on_value(&mut self, state: &mut Option<Value>, record: Record, _emit: &mut Vec<Value>) {
        *state = Some(match state.take() {
            None => record.payload,
            Some(acc) => (self.reducer)(acc, record.payload),
        });
    }

    fn on_merge(&mut self, into: &mut Option<Value>, other: Option<Value>) {
        *into = match (into.take(), other) {
            (Some(a), Some(b)) => Some((self.reducer)(a, b)),
            (a, b) => a.or(b),
        };
    }

    fn on_close(&mut self, state: Option<Value>, emit: &mut Vec<Value>) {
        emit.extend(state);
    }
}

/// Joins a window's records by side (see [`Join`]): at close, `final`
/// emits every row (missing sides `null`), `complete` only when every
/// side has a value; `running` emits the rows so far on every record.
pub struct JoinWindow {
    pub(crate) join: Join,
}

impl WindowLogic for JoinWindow {
    type State = Vec<Vec<Value>>;

    fn accepts(&self, record: &Record) -> Result<(), String> {
        self.join.side_of(record).map(drop)
    }

    fn open(&mut self) -> Vec<Vec<Value>> {
        vec![Vec::new(); self.join.sides().len()]
    }

    fn on_value(&mut self, state: &mut Vec<Vec<Value>>, record: Record, emit: &mut Vec<Value>) {
        // `accepts` has checked the side.
        if let Ok(side) = self.join.side_of(&record) {
            self.join.insert(state, side, record.payload);
        }
        if self.join.emit == EmitMode::Running {
            emit.extend(self.join.rows(state));
        }
    }

    fn on_merge(&mut self, into: &mut Vec<Vec<Value>>, other: Vec<Vec<Value>>) {
        for (side, values) in other.into_iter().enumerate() {
            for value in values {
                self.join.insert(into, side, value);
            }
        }
    }

    fn on_close(&mut self, state: Vec<Vec<Value>>, emit: &mut Vec<Value>) {
        let complete = state.iter().all(|v| !v.is_empty());
        match self.join.emit {
            EmitMode::Final => emit.extend(self.join.rows(&state)),
            EmitMode::Complete if complete => emit.extend(self.join.rows(&state)),
            _ => {}
        }
    }
}
