//! Stateful stream operators, as link processors, with Bytewax's semantics.
//!
//! Every operator here is a [`Processor`](crate::Processor) that keys each
//! record with a [`KeyFn`] and keeps state **per key, across transfers**:
//! what a transfer leaves in a key's state is there when the next transfer
//! brings more records for that key.
//!
//! | operator | emits |
//! |---|---|
//! | [`stateful_map`] / [`stateful_flat_map`] | what the mapper returns, for every record |
//! | [`reduce_final`], [`fold_final`], [`count_final`], [`max_final`], [`min_final`] | one record per key, at EOF |
//! | [`collect`] | a key's list at `max_size` items, or `timeout` after its first |
//! | [`join`] | rows of the values each side (inlet) brought for a key |
//! | [`stateful`] / [`stateful_batch`] | whatever a [`StatefulLogic`] / [`StatefulBatchLogic`] says |
//! | [`window`](window::window) and the `*_window` operators | one record per closed window |
//!
//! # Keys
//!
//! Keys are strings. A record whose key cannot be extracted (the field is
//! missing, `null`, or the extractor says no) is an error *of that record*:
//! it is left out of the stream, logged at `warn` with its position in the
//! batch (`record 3 of 10`) and the update, and counted in the operator's
//! `rejected_records_total` [gauge](crate::Processor::gauges). It is never
//! keyed as `null`, and it does not fail the rest of the batch. An operator
//! that needs more of a record than its key (an event timestamp, a join
//! side) rejects the same way when that is missing.
//!
//! Every record an operator emits carries its key in the [`KEY_META`]
//! metadata entry (`__key__`), as Bytewax's keyed streams carry
//! `(key, value)` pairs.
//!
//! # State, DISCARD and timers
//!
//! A key's state is dropped as soon as its logic says [`Retention::Discard`]
//! (or a mapper returns `None`): the key is gone from memory and a later
//! record for it starts from scratch. Nothing keeps a dead key.
//!
//! A logic may ask to be notified at a time (`notify_at`). Deadlines of all
//! keys live in one ordered structure per operator, so a wake-up costs
//! O(log n) per due key and never scans the keys;
//! [`next_wakeup`](crate::Processor::next_wakeup) is the earliest one, so
//! the link wakes for it even when no transfer is due, and what the logic
//! emits then is pushed to the outlets. Due notifications run before the
//! records of a call (a collect's timeout passes before a new item starts a
//! new list) and again after them (a watermark the records moved closes
//! windows).
//!
//! Time is the engine's clock ([`Context::now`](crate::Context)) read as
//! UTC through a [`WallClock`]; state holds UTC times, so a snapshot stays
//! meaningful in another process.
//!
//! # End of stream
//!
//! `*_final` operators, [`StatefulLogic::on_eof`] and closing windows at
//! the end of input happen at **EOF**. By default ([`Eof::Link`]) that is
//! the end of the link's stream: a call with [`Trigger::Flush`](crate::Trigger::Flush), which the
//! link makes when every inlet is exhausted, when it is stopped or flushed,
//! and at the end of `databay once`. With [`Eof::Transfer`] an operator
//! treats each transfer as a finite stream of its own: it reaches EOF at the
//! end of every transfer (per-transfer aggregation), and at a flush.
//!
//! At EOF keys are visited in key order, so output is deterministic.
//!
//! # Reloads
//!
//! A link replaced by a new version (the daemon's SIGHUP) hands the
//! operators that did not change (same name, same type and options) to the
//! new version with their state and timers
//! ([`Link::spare_on_flush`](crate::Link::spare_on_flush),
//! [`Link::swap_processors`](crate::Link::swap_processors)): they reach no
//! EOF, even when other parts of the link changed. A changed or removed
//! operator reaches EOF (it is flushed) before the new version starts.
//!
//! # Snapshots
//!
//! [`Processor::snapshot`](crate::Processor::snapshot) gives the operator's
//! whole state as JSON; [`restore`](crate::Processor::restore) on a fresh
//! instance built the same way continues exactly where the snapshot was
//! taken: the same records in give the same records out as an uninterrupted
//! run.
//!
//! ```
//! use databay_core::stateful::{self, KeyFn};
//! use databay_core::{Context, Processor, Record, Trigger, Update};
//! use serde_json::{json, Value};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let by_user = |r: &Record| stateful::key_text(r.payload.get("user"));
//! let mut totals = stateful::fold_final(by_user, || 0.0, |sum: f64, v: Value| {
//!     sum + v["amount"].as_f64().unwrap_or(0.0)
//! });
//! let update = Update::new(["orders"], 0);
//! let records = vec![
//!     Record::new(json!({"user": "a", "amount": 2.5})),
//!     Record::new(json!({"user": "b", "amount": 1.0})),
//!     Record::new(json!({"user": "a", "amount": 4.0})),
//! ];
//! let out = totals.process(records, &Context::new(&update, Trigger::Transfer)).await.unwrap();
//! assert!(out.is_empty(), "nothing before the end of the stream");
//! let out = totals.process(vec![], &Context::new(&update, Trigger::Flush)).await.unwrap();
//! let totals: Vec<(Value, Value)> = out
//!     .iter()
//!     .map(|r| (r.meta("__key__").cloned().unwrap(), r.payload.clone()))
//!     .collect();
//! assert_eq!(totals, [(json!("a"), json!(6.5)), (json!("b"), json!(1.0))]);
//! # }
//! ```

use std::borrow::Cow;
use std::time::Instant;

use serde_json::Value;

use crate::record::Record;

mod join;
mod keyed;
mod logic;
mod operators;
mod timers;
pub mod window;

#[cfg(test)]
mod tests;

/// The time types of the operators' API (`notify_at`, `now`), re-exported
/// so that a user needs no chrono dependency of their own.
pub use chrono::{DateTime, TimeDelta, Utc};
pub use join::{EmitMode, InsertMode, Join, Sides, join};
pub use keyed::{KeyedLogic, Stateful, Step};
pub use logic::{
    DISCARD, PerKey, PerKeyBatch, RETAIN, Retention, StatefulBatchLogic, StatefulLogic, stateful,
    stateful_batch,
};
pub use operators::{
    Collect, FlatMap, Fold, Gathered, Map, collect, count_final, fold_final, max_final, min_final,
    reduce_final, stateful_flat_map, stateful_map,
};

/// The metadata entry that carries the key of every record an operator
/// emits.
pub const KEY_META: &str = "__key__";

/// When a `*_final` operator (and `on_eof`) reaches the end of its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eof {
    /// When the link's stream ends: a [`Trigger::Flush`](crate::Trigger)
    /// (every inlet exhausted, the link stopped or flushed, `once`).
    #[default]
    Link,
    /// At the end of every transfer: each transfer is a finite stream.
    Transfer,
}

/// Says which key a record belongs to.
///
/// Any `Fn(&Record) -> Result<String, String>` is a key extractor (the
/// error says why the record has no key). Implement the trait directly to
/// borrow the key from the record instead of allocating it.
///
/// ```
/// use databay_core::Record;
/// use databay_core::stateful::{key_text, KeyFn};
/// use serde_json::json;
///
/// let by_user = |r: &Record| key_text(r.payload.get("user"));
/// let record = Record::new(json!({"user": "ada"}));
/// assert_eq!(by_user.key(&record).unwrap(), "ada");
/// let e = by_user.key(&Record::new(json!({}))).unwrap_err();
/// assert_eq!(e, "the key is missing");
/// ```
pub trait KeyFn: Send + 'static {
    /// The key of `record`, or why it has none.
    fn key<'r>(&self, record: &'r Record) -> Result<Cow<'r, str>, String>;
}

impl<F> KeyFn for F
where
    F: Fn(&Record) -> Result<String, String> + Send + 'static,
{
    fn key<'r>(&self, record: &'r Record) -> Result<Cow<'r, str>, String> {
        self(record).map(Cow::Owned)
    }
}

/// Keys by a metadata entry, such as [`INLET_KEY`](crate::INLET_KEY).
#[derive(Debug, Clone)]
pub struct MetaKey(pub String);

impl KeyFn for MetaKey {
    fn key<'r>(&self, record: &'r Record) -> Result<Cow<'r, str>, String> {
        key_value(record.meta(&self.0)).map_err(|e| format!("metadata `{}`: {e}", self.0))
    }
}

/// A key value as key text: a string as it is, a number or boolean as its
/// JSON text, an array or object as its JSON text. Missing and `null` are
/// errors: a record is never keyed as `null`.
pub fn key_text(value: Option<&Value>) -> Result<String, String> {
    key_value(value).map(Cow::into_owned)
}

/// [`key_text`], borrowing a string key instead of copying it.
pub fn key_value(value: Option<&Value>) -> Result<Cow<'_, str>, String> {
    match value {
        None => Err("the key is missing".to_owned()),
        Some(Value::Null) => Err("the key is null".to_owned()),
        Some(Value::String(s)) => Ok(Cow::Borrowed(s)),
        Some(other) => Ok(Cow::Owned(other.to_string())),
    }
}

/// Reads the engine's monotonic clock as UTC: one reading of both clocks
/// taken once, and instants measured from it. Under a paused tokio clock
/// (tests) UTC time follows the paused clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl WallClock {
    /// Anchored now.
    pub fn new() -> Self {
        WallClock {
            instant: crate::clock::now(),
            wall: Utc::now(),
        }
    }

    /// `instant` is `wall`: for tests and replays that need fixed times.
    pub fn fixed(instant: Instant, wall: DateTime<Utc>) -> Self {
        WallClock { instant, wall }
    }

    /// The UTC time of `at`.
    pub fn wall(&self, at: Instant) -> DateTime<Utc> {
        let delta = match at.checked_duration_since(self.instant) {
            Some(ahead) => TimeDelta::from_std(ahead).unwrap_or(TimeDelta::MAX),
            None => -TimeDelta::from_std(self.instant - at).unwrap_or(TimeDelta::MAX),
        };
        self.wall
            .checked_add_signed(delta)
            .unwrap_or(if delta < TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }

    /// The instant at which it will be (or was) `at`, UTC. Far-off times
    /// saturate to what an `Instant` can hold.
    pub fn instant(&self, at: DateTime<Utc>) -> Instant {
        let delta = at - self.wall;
        match delta.to_std() {
            Ok(ahead) => crate::clock::after(self.instant, ahead),
            Err(_) => {
                let behind = (-delta).to_std().unwrap_or_default();
                self.instant.checked_sub(behind).unwrap_or(self.instant)
            }
        }
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}
