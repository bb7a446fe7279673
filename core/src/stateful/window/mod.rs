//! Windows: keyed aggregation over slices of time, composed as Bytewax
//! composes them from three small logics, each in its own file:
//!
//! - a [`Clock`] gives each item its time and the stream's watermark:
//!   [`SystemClock`] (processing time) or [`EventClock`] (a timestamp from
//!   the record, waiting `wait_for_system_duration` for late items);
//! - a [`Windower`] says which windows a time falls into: [`Tumbling`],
//!   [`Sliding`] or [`Session`];
//! - a [`WindowLogic`] says what one window does with its items
//!   (fold, count, collect, join, ...).
//!
//! [`window`] runs the three as one keyed operator; [`fold_window`],
//! [`count_window`], [`collect_window`], [`reduce_window`],
//! [`max_window`], [`min_window`] and [`join_window`] are a few lines each
//! on top of it.
//!
//! # What comes out
//!
//! A window emits when the watermark reaches its close time: on the record
//! that moves the watermark there, or on time by itself (the link wakes for
//! the earliest close time of all open windows), or at EOF, which closes
//! every open window. Each emitted record carries, besides the key
//! (`__key__`), the window's bounds as RFC 3339 strings in
//! [`WINDOW_OPEN_META`] and [`WINDOW_CLOSE_META`] (`[open, close)`).
//!
//! # Late items
//!
//! An item whose windows have all closed (its time is behind the watermark
//! by more than the window lets it) is **late**. It is never dropped in
//! silence: it is emitted as it came, with [`LATE_META`] (`__late__`) set
//! to `true`, and counted in the `late_records_total` gauge. A processor
//! after the window can route or drop late records by that entry.
//!
//! # Memory
//!
//! A closed window's state is freed when it closes; a key whose windows
//! have all closed is dropped. One clock serves all keys, so dropping a key
//! loses nothing of the stream's time: an old item for a dropped key is
//! still recognised as late.

mod clock;
mod logic;
mod operators;
mod windower;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use clock::{Clock, EventClock, SystemClock, timestamp_of};
pub use logic::{CollectWindow, CountWindow, FoldWindow, JoinWindow, ReduceWindow, WindowLogic};
pub use operators::{
    collect_window, count_window, fold_window, join_window, max_window, min_window, reduce_window,
    window,
};
pub use windower::{
    Assignment, Bounds, Session, Sliding, Tumbling, WindowId, Windower, WindowerError,
};

use super::keyed::{KeyedLogic, Step};
use crate::error::BoxError;
use crate::processor::Gauge;
use crate::record::Record;

/// The metadata entry with a window's open time (RFC 3339).
pub const WINDOW_OPEN_META: &str = "__window_open__";
/// The metadata entry with a window's close time (RFC 3339).
pub const WINDOW_CLOSE_META: &str = "__window_close__";
/// The metadata entry marking a late record (`true`).
pub const LATE_META: &str = "__late__";

/// A time as the window metadata writes it: RFC 3339, UTC, `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The window operator: a clock, a windower and a window logic, as a
/// [`KeyedLogic`]; build it with [`window`].
pub struct Window<C, W, L> {
    clock: C,
    windower: W,
    logic: L,
    open: u64,
    late: u64,
    /// The last bounds stamped and their RFC 3339 texts: keys close the
    /// same windows one after the other, formatting them once will do.
    stamps: Option<(Bounds, Value, Value)>,
    /// Cleared when restored windows do not close in the order of their
    /// ids (taken with another windower's settings): a key's next close
    /// is then looked for among all its windows.
    in_id_order: bool,
}

impl<C, W, L> Window<C, W, L> {
    pub(crate) fn new(clock: C, windower: W, logic: L) -> Self {
        Window {
            clock,
            windower,
            logic,
            open: 0,
            late: 0,
            stamps: None,
            in_id_order: true,
        }
    }

    /// Open windows, over all keys.
    pub fn open_windows(&self) -> u64 {
        self.open
    }

    /// Late records so far.
    pub fn late_records(&self) -> u64 {
        self.late
    }
}

/// One key's open windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Windows<S> {
    bounds: BTreeMap<WindowId, Bounds>,
    states: BTreeMap<WindowId, S>,
    next_id: WindowId,
}

impl<S> Default for Windows<S> {
    fn default() -> Self {
        Windows {
            bounds: BTreeMap::new(),
            states: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl<C, W, L> Window<C, W, L> {
    /// Emits `values` as records stamped with `bounds`.
    fn emit_for(&mut self, bounds: &Bounds, values: Vec<Value>, step: &mut Step<'_>) {
        if values.is_empty() {
            return;
        }
        let (_, open, close) = match &self.stamps {
            Some((b, _, _)) if b == bounds => self.stamps.as_ref().expect("just matched"),
            _ => self.stamps.insert((
                *bounds,
                Value::String(rfc3339(bounds.open)),
                Value::String(rfc3339(bounds.close)),
            )),
        };
        for value in values {
            let record = Record::new(value)
                .with_meta(WINDOW_OPEN_META, open.clone())
                .with_meta(WINDOW_CLOSE_META, close.clone());
            step.emit(record);
        }
    }
}

impl<C: Clock, W: Windower, L: WindowLogic> Window<C, W, L> {
    /// Closes the key's windows whose close time is at or before `until`,
    /// earliest first.
    fn close(
        &mut self,
        windows: &mut Windows<L::State>,
        until: DateTime<Utc>,
        step: &mut Step<'_>,
    ) {
        let mut due: Vec<(DateTime<Utc>, WindowId)> = windows
            .bounds
            .iter()
            .filter(|(_, b)| b.close <= until)
            .map(|(id, b)| (b.close, *id))
            .collect();
        due.sort_unstable();
        for (_, id) in due {
            let Some(bounds) = windows.bounds.remove(&id) else {
                continue;
            };
            if let Some(state) = windows.states.remove(&id) {
                self.open -= 1;
                let mut out = Vec::new();
                self.logic.on_close(state, &mut out);
                self.emit_for(&bounds, out, step);
            }
        }
    }
}

impl<C: Clock, W: Windower, L: WindowLogic> KeyedLogic for Window<C, W, L> {
    type State = Windows<L::State>;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<Self::State>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        self.logic.accepts(&record)?;
        let now = step.now();
        let ts = self.clock.on_item(&record, now)?;
        let watermark = self.clock.watermark(now);
        let windows = state.get_or_insert_with(Windows::default);
        let assignment = self
            .windower
            .assign(ts, watermark, &windows.bounds, &mut windows.next_id);
        if assignment.is_late() {
            self.late += 1;
            let mut record = record;
            record.set_meta(LATE_META, true);
            step.emit(record);
            if windows.bounds.is_empty() {
                *state = None;
            }
            return Ok(());
        }
        for (from, into) in assignment.merges {
            windows.bounds.remove(&from);
            if let Some(other) = windows.states.remove(&from) {
                self.open -= 1;
                if let Some(target) = windows.states.get_mut(&into) {
                    self.logic.on_merge(target, other);
                }
            }
        }
        let last = assignment.windows.len() - 1;
        let mut record = Some(record);
        for (i, (id, bounds)) in assignment.windows.into_iter().enumerate() {
            // Most records land in a window whose bounds they do not move.
            match windows.bounds.get_mut(&id) {
                Some(known) if *known == bounds => {}
                Some(known) => *known = bounds,
                None => {
                    windows.bounds.insert(id, bounds);
                }
            }
            let target = windows.states.entry(id).or_insert_with(|| {
                self.open += 1;
                self.logic.open()
            });
            let item = if i == last {
                record.take()
            } else {
                record.clone()
            };
            let Some(item) = item else {
                break;
            };
            let mut out = Vec::new();
            self.logic.on_value(target, item, &mut out);
            self.emit_for(&bounds, out, step);
        }
        Ok(())
    }

    fn on_notify(&mut self, _key: &str, state: &mut Option<Self::State>, step: &mut Step<'_>) {
        let until = self.clock.watermark(step.now());
        if let Some(windows) = state {
            self.close(windows, until, step);
            if windows.bounds.is_empty() {
                *state = None;
            }
        }
    }

    fn on_eof(&mut self, _key: &str, state: &mut Option<Self::State>, step: &mut Step<'_>) {
        if let Some(mut windows) = state.take() {
            self.close(&mut windows, DateTime::<Utc>::MAX_UTC, step);
        }
    }

    fn notify_at(&self, state: &Self::State) -> Option<DateTime<Utc>> {
        if self.in_id_order && self.windower.closes_in_id_order() {
            return state.bounds.first_key_value().map(|(_, b)| b.close);
        }
        state.bounds.values().map(|b| b.close).min()
    }

    fn progress(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.watermark(now)
    }

    fn wake_at(&self, deadline: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.clock.to_system(deadline)
    }

    fn snapshot(&self, state: &Self::State) -> Result<Value, BoxError> {
        Ok(serde_json::to_value(state)?)
    }

    fn restore(&mut self, state: Value) -> Result<Self::State, BoxError> {
        let windows: Self::State = serde_json::from_value(state)?;
        self.open += windows.states.len() as u64;
        // Windows taken with other settings (a length or alignment changed
        // across a restart) are not where this windower would put them:
        // their ids say nothing of when they close.
        if self.in_id_order && self.windower.closes_in_id_order() {
            let none = BTreeMap::new();
            let fits = windows.bounds.iter().all(|(id, b)| {
                self.windower
                    .assign(b.open, DateTime::<Utc>::MIN_UTC, &none, &mut 0)
                    .windows
                    .contains(&(*id, *b))
            });
            self.in_id_order = fits;
        }
        Ok(windows)
    }

    fn snapshot_shared(&self) -> Result<Value, BoxError> {
        Ok(serde_json::json!({ "clock": self.clock.snapshot() }))
    }

    fn restore_shared(&mut self, shared: Value) -> Result<(), BoxError> {
        self.open = 0;
        let clock = match shared {
            Value::Object(mut map) => map.remove("clock").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        self.clock.restore(clock)
    }

    fn gauges(&self, gauges: &mut Vec<Gauge>) {
        gauges.push(Gauge::new("windows", self.open));
        gauges.push(Gauge::new("late_records_total", self.late));
    }
}
