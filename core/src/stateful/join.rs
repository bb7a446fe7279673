//! `join`: correlates the records of several sides (by default the inlets
//! of a link, named by each record's `__inlet__`) that share a key, as
//! Bytewax's `op.join` does.
//!
//! See [`Join`] for the modes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::KeyFn;
use super::keyed::{KeyedLogic, Stateful, Step};
use crate::error::BoxError;
use crate::record::Record;

/// How a side's values are kept (see [`Join`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsertMode {
    /// Keep a side's first value.
    First,
    /// Keep a side's last value.
    #[default]
    Last,
    /// Keep all of a side's values; rows are their cross product.
    Product,
}

/// When joined rows are emitted (see [`Join`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitMode {
    /// Once every side has a value, then drop the key.
    #[default]
    Complete,
    /// At EOF, then drop the key.
    Final,
    /// On every record, keeping the key.
    Running,
}

type SideFn = Box<dyn Fn(&Record) -> Option<String> + Send>;

/// The logic of [`join`], built with [`Join::new`].
///
/// A joined row is a JSON object with one entry per side, in the order
/// the sides were given; a side that has no value (yet) is `null`.
///
/// | `insert_mode` | a side's new value |
/// |---|---|
/// | `first` | is kept only if the side has none yet |
/// | `last` | replaces the side's value |
/// | `product` | is added to the side's values; rows are every combination |
///
/// | `emit_mode` | rows are emitted |
/// |---|---|
/// | `complete` | as soon as every side has a value; then the key is dropped (inner join) |
/// | `final` | at EOF, missing sides `null` (outer join); then the key is dropped |
/// | `running` | on every record, missing sides `null`; the key is kept |
///
/// At EOF, `complete` and `running` emit nothing and keep what they hold:
/// a key that is still waiting for a side can complete after a restart.
pub struct Join {
    sides: Vec<String>,
    insert: InsertMode,
    pub(crate) emit: EmitMode,
    side: Option<SideFn>,
}

impl Join {
    /// Joins `sides`, named as the records' `__inlet__` says (or as
    /// [`side_by`](Join::side_by) does), with the default modes
    /// (`last`, `complete`).
    pub fn new<S: Into<String>>(sides: impl IntoIterator<Item = S>) -> Self {
        Join {
            sides: sides.into_iter().map(Into::into).collect(),
            insert: InsertMode::default(),
            emit: EmitMode::default(),
            side: None,
        }
    }

    /// How a side's values are kept.
    pub fn insert_mode(mut self, mode: InsertMode) -> Self {
        self.insert = mode;
        self
    }

    /// When rows are emitted.
    pub fn emit_mode(mut self, mode: EmitMode) -> Self {
        self.emit = mode;
        self
    }

    /// Names each record's side with `side` instead of its `__inlet__`.
    pub fn side_by(mut self, side: impl Fn(&Record) -> Option<String> + Send + 'static) -> Self {
        self.side = Some(Box::new(side));
        self
    }

    /// The side a record belongs to, by position.
    pub(crate) fn side_of(&self, record: &Record) -> Result<usize, String> {
        let name = match &self.side {
            Some(side) => side(record),
            None => record.inlet().map(str::to_owned),
        };
        let Some(name) = name else {
            return Err(match self.side {
                Some(_) => "the record has no join side".to_owned(),
                None => "the record has no `__inlet__` to name its join side".to_owned(),
            });
        };
        self.sides.iter().position(|s| *s == name).ok_or_else(|| {
            format!(
                "join side `{name}` is not one of {}",
                self.sides
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Adds `value` to `side` of `values` as the insert mode says.
    pub(crate) fn insert(&self, values: &mut [Vec<Value>], side: usize, value: Value) {
        let slot = &mut values[side];
        match self.insert {
            InsertMode::First if !slot.is_empty() => {}
            InsertMode::First | InsertMode::Product => slot.push(value),
            InsertMode::Last => {
                slot.clear();
                slot.push(value);
            }
        }
    }

    /// Every row of `values`: one object per combination of the sides'
    /// values, `null` for a side without any.
    pub(crate) fn rows(&self, values: &[Vec<Value>]) -> Vec<Value> {
        let null = [Value::Null];
        let mut rows = vec![Map::new()];
        for (name, side) in self.sides.iter().zip(values) {
            let side: &[Value] = if side.is_empty() { &null } else { side };
            let mut next = Vec::with_capacity(rows.len() * side.len());
            for row in &rows {
                for value in side {
                    let mut row = row.clone();
                    row.insert(name.clone(), value.clone());
                    next.push(row);
                }
            }
            rows = next;
        }
        rows.into_iter().map(Value::Object).collect()
    }

    /// The sides' names.
    pub fn sides(&self) -> &[String] {
        &self.sides
    }
}

/// One key's values per side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sides(Vec<Vec<Value>>);

/// Bytewax's `join`: rows of what each side brought for a key (see [`Join`]).
///
/// ```
/// use databay_core::Record;
/// use databay_core::stateful::{join, key_text, EmitMode, InsertMode, Join};
///
/// let users_with_orders = join(
///     |r: &Record| key_text(r.payload.get("user")),
///     Join::new(["users", "orders"])
///         .insert_mode(InsertMode::Last)
///         .emit_mode(EmitMode::Complete),
/// );
/// assert!(users_with_orders.is_empty());
/// ```
pub fn join<K: KeyFn>(key: K, join: Join) -> Stateful<K, Join> {
    Stateful::new(key, join)
}

impl KeyedLogic for Join {
    type State = Sides;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<Sides>,
        record: Record,
        step: &mut Step<'_>,
    ) -> Result<(), String> {
        let side = self.side_of(&record)?;
        let values = state.get_or_insert_with(|| Sides(vec![Vec::new(); self.sides.len()]));
        self.insert(&mut values.0, side, record.payload);
        match self.emit {
            EmitMode::Complete => {
                if values.0.iter().all(|v| !v.is_empty()) {
                    for row in self.rows(&values.0) {
                        step.emit_value(row);
                    }
                    *state = None;
                }
            }
            EmitMode::Running => {
                for row in self.rows(&values.0) {
                    step.emit_value(row);
                }
            }
            EmitMode::Final => {}
        }
        Ok(())
    }

    fn on_eof(&mut self, _key: &str, state: &mut Option<Sides>, step: &mut Step<'_>) {
        if self.emit == EmitMode::Final
            && let Some(values) = state.take()
        {
            for row in self.rows(&values.0) {
                step.emit_value(row);
            }
        }
    }

    fn snapshot(&self, state: &Sides) -> Result<Value, BoxError> {
        Ok(serde_json::to_value(state)?)
    }

    fn restore(&mut self, state: Value) -> Result<Sides, BoxError> {
        let sides: Sides = serde_json::from_value(state)?;
        if sides.0.len() != self.sides.len() {
            return Err(format!(
                "the snapshot joins {} sides, this join {}",
                sides.0.len(),
                self.sides.len()
            )
            .into());
        }
        Ok(sides)
    }
}
