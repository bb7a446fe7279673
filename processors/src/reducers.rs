//! Named reducers (`count`, `sum`, `min`, `max`, `mean`, `first`, `last`,
//! `collect`, `count_distinct`) over a field or a jq expression: the
//! aggregations of the `aggregate` and `window` processors, as a keyed
//! logic (until EOF) and as a window logic (per window).
//!
//! Each record gives each aggregate one input value: the field at its
//! `pointer`, the first output of its `expr`, or the whole payload. A
//! missing or `null` input is no value, as SQL's NULL: `count` with an
//! input counts the records that have one, and the others skip it. A `sum`
//! or `mean` input that is not a number rejects the whole record (every
//! aggregate or none sees it).

use indexmap::IndexMap;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use databay_component::OptionError;
use databay_core::stateful::window::WindowLogic;
use databay_core::stateful::{KeyedLogic, Step};
use databay_core::{BoxError, Record};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(feature = "jq")]
use crate::jq::JqProgram;
use crate::pointer::{Pointer, kind};
use crate::value::Num;

/// What an aggregate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reducer {
    /// Records (or, with an input, records that have a value).
    Count,
    /// Sum of the numbers: an integer while every value is one.
    Sum,
    /// Least value (numbers by value, strings by text).
    Min,
    /// Greatest value.
    Max,
    /// Mean of the numbers; `null` without any.
    Mean,
    /// First value.
    First,
    /// Last value.
    Last,
    /// Every value, in order.
    Collect,
    /// Number of different values (compared as JSON text).
    CountDistinct,
}

/// One named aggregate of the `aggregates` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// What to compute.
    pub reducer: Reducer,
    /// JSON pointer to the input value.
    #[serde(default)]
    pub pointer: Option<String>,
    /// jq expression giving the input value (its first output).
    #[serde(default)]
    pub expr: Option<String>,
}

enum Input {
    Whole,
    Pointer(Pointer),
    #[cfg(feature = "jq")]
    Jq(JqProgram),
}

struct Spec {
    name: String,
    reducer: Reducer,
    input: Input,
}

/// The aggregates of one operator, checked and compiled.
pub struct Aggregates {
    specs: Vec<Spec>,
}

impl std::fmt::Debug for Aggregates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.specs.iter().map(|s| (&s.name, s.reducer)))
            .finish()
    }
}

impl Aggregates {
    /// Builds the `aggregates` option (`name -> {reducer, pointer|expr}`).
    pub fn new(options: &IndexMap<String, AggregateSpec>) -> Result<Self, OptionError> {
        if options.is_empty() {
            return Err(OptionError::new(
                "aggregates",
                "name at least one aggregate, as in `aggregates = { orders = { reducer = \"count\" } }`",
            ));
        }
        let mut specs = Vec::with_capacity(options.len());
        for (name, o) in options {
            let option = format!("aggregates.{name}");
            let input = match (&o.pointer, &o.expr) {
                (None, None) => Input::Whole,
                (Some(p), None) => Input::Pointer(
                    Pointer::parse(p)
                        .map_err(|e| OptionError::new(format!("{option}.pointer"), e))?,
                ),
                #[cfg(feature = "jq")]
                (None, Some(expr)) => Input::Jq(
                    JqProgram::compile(expr)
                        .map_err(|e| OptionError::new(format!("{option}.expr"), e))?,
                ),
                #[cfg(not(feature = "jq"))]
                (None, Some(_)) => {
                    return Err(OptionError::new(
                        format!("{option}.expr"),
                        "jq expressions need databay built with the `jq` feature; use `pointer`",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(OptionError::new(
                        option,
                        "set either `pointer` or `expr`, not both",
                    ));
                }
            };
            specs.push(Spec {
                name: name.clone(),
                reducer: o.reducer,
                input,
            });
        }
        Ok(Aggregates { specs })
    }

    /// The aggregates' names, which are the output's fields.
    pub fn names(&self) -> Vec<&str> {
        self.specs.iter().map(|s| s.name.as_str()).collect()
    }

    /// Fresh accumulators.
    fn start(&self) -> Accumulators {
        Accumulators(
            self.specs
                .iter()
                .map(|s| match s.reducer {
                    Reducer::Count => Acc::Count(0),
                    Reducer::Sum => Acc::Sum {
                        int: 0,
                        float: 0.0,
                        floats: false,
                    },
                    Reducer::Min => Acc::Min(None),
                    Reducer::Max => Acc::Max(None),
                    Reducer::Mean => Acc::Mean { sum: 0.0, n: 0 },
                    Reducer::First => Acc::First(None),
                    Reducer::Last => Acc::Last(None),
                    Reducer::Collect => Acc::Collect(Vec::new()),
                    Reducer::CountDistinct => Acc::Distinct(BTreeSet::new()),
                })
                .collect(),
        )
    }

    /// Each aggregate's input from `payload`, checked.
    fn inputs<'p>(&self, payload: &'p Value) -> Result<Vec<Option<Cow<'p, Value>>>, String> {
        self.specs
            .iter()
            .map(|spec| {
                let value = match &spec.input {
                    Input::Whole => Some(Cow::Borrowed(payload)),
                    Input::Pointer(p) => p.get(payload).map(Cow::Borrowed),
                    #[cfg(feature = "jq")]
                    Input::Jq(program) => program
                        .first(payload)
                        .map_err(|e| format!("aggregate `{}`: {e}", spec.name))?
                        .map(Cow::Owned),
                };
                let value = value.filter(|v| !v.is_null());
                if let (Reducer::Sum | Reducer::Mean, Some(v)) = (spec.reducer, &value)
                    && !v.is_number()
                {
                    return Err(format!(
                        "aggregate `{}` ({:?}) needs a number, got {}",
                        spec.name,
                        spec.reducer,
                        kind(v)
                    ));
                }
                Ok(value)
            })
            .collect()
    }

    fn fold(&self, accs: &mut Accumulators, payload: &Value) -> Result<(), String> {
        let inputs = self.inputs(payload)?;
        for (acc, input) in accs.0.iter_mut().zip(inputs) {
            acc.add(input);
        }
        Ok(())
    }

    fn finish(&self, accs: Accumulators) -> Value {
        let mut out = Map::new();
        for (spec, acc) in self.specs.iter().zip(accs.0) {
            out.insert(spec.name.clone(), acc.finish());
        }
        Value::Object(out)
    }
}

/// One key's (or window's) accumulators, one per aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accumulators(Vec<Acc>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Acc {
    Count(u64),
    Sum { int: i64, float: f64, floats: bool },
    Min(Option<Value>),
    Max(Option<Value>),
    Mean { sum: f64, n: u64 },
    First(Option<Value>),
    Last(Option<Value>),
    Collect(Vec<Value>),
    Distinct(BTreeSet<String>),
}

/// Orders values for `min`/`max`: numbers by value, strings by text, and
/// otherwise by kind (null, boolean, number, string, array, object).
fn order(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Num::new(x).compare(Num::new(y)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Acc {
    fn add(&mut self, input: Option<Cow<'_, Value>>) {
        match self {
            _ if input.is_none() => {}
            Acc::Count(n) => *n += 1,
            Acc::Sum { int, float, floats } => {
                let Some(value) = input else { return };
                *float += value.as_f64().unwrap_or(0.0);
                match value.as_i64().and_then(|v| int.checked_add(v)) {
                    Some(next) if !*floats => *int = next,
                    _ => *floats = true,
                }
            }
            Acc::Mean { sum, n } => {
                *sum += input.and_then(|v| v.as_f64()).unwrap_or(0.0);
                *n += 1;
            }
            Acc::Min(best) => pick(best, input, Ordering::Less),
            Acc::Max(best) => pick(best, input, Ordering::Greater),
            Acc::First(first) => {
                if first.is_none() {
                    *first = input.map(Cow::into_owned);
                }
            }
            Acc::Last(last) => *last = input.map(Cow::into_owned),
            Acc::Collect(items) => items.extend(input.map(Cow::into_owned)),
            Acc::Distinct(seen) => {
                if let Some(v) = input {
                    seen.insert(v.to_string());
                }
            }
        }
    }

    /// `other`, a later window merged into this one.
    fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (
                Acc::Sum { int, float, floats },
                Acc::Sum {
                    int: i2,
                    float: f2,
                    floats: fl2,
                },
            ) => {
                *float += f2;
                match int.checked_add(i2) {
                    Some(next) if !*floats && !fl2 => *int = next,
                    _ => *floats = true,
                }
            }
            (Acc::Mean { sum, n }, Acc::Mean { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (Acc::Min(a), Acc::Min(b)) => pick(a, b.map(Cow::Owned), Ordering::Less),
            (Acc::Max(a), Acc::Max(b)) => pick(a, b.map(Cow::Owned), Ordering::Greater),
            (Acc::First(a), Acc::First(b)) if a.is_none() => *a = b,
            (Acc::Last(a), Acc::Last(b)) if b.is_some() => *a = b,
            (Acc::Collect(a), Acc::Collect(b)) => a.extend(b),
            (Acc::Distinct(a), Acc::Distinct(b)) => a.extend(b),
            // Kept as they are (a first already there, no later last), or
            // not of one kind, which accumulators of one operator always are.
            _ => {}
        }
    }

    fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::from(n),
            Acc::Sum { int, float, floats } => {
                if floats {
                    serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)
                } else {
                    Value::from(int)
                }
            }
            Acc::Mean { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    serde_json::Number::from_f64(sum / n as f64).map_or(Value::Null, Value::Number)
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::First(v) | Acc::Last(v) => v.unwrap_or(Value::Null),
            Acc::Collect(items) => Value::Array(items),
            Acc::Distinct(seen) => Value::from(seen.len()),
        }
    }
}

fn pick(best: &mut Option<Value>, input: Option<Cow<'_, Value>>, wins: Ordering) {
    let Some(value) = input else { return };
    match best {
        Some(current) if order(&value, current) != wins => {}
        _ => *best = Some(value.into_owned()),
    }
}

/// The keyed logic of the `aggregate` processor: accumulates until EOF,
/// then emits one object per key (aggregate name to result) and drops the
/// key.
pub struct Aggregation(pub(crate) Aggregates);

impl KeyedLogic for Aggregation {
    type State = Accumulators;

    fn on_item(
        &mut self,
        _key: &str,
        state: &mut Option<Accumulators>,
        record: Record,
        _step: &mut Step<'_>,
    ) -> Result<(), String> {
        let existed = state.is_some();
        let mut accs = state.take().unwrap_or_else(|| self.0.start());
        // A rejected record changes nothing (`fold` checks first), and a
        // key it would have started is not born.
        let result = self.0.fold(&mut accs, &record.payload);
        if result.is_ok() || existed {
            *state = Some(accs);
        }
        result
    }

    fn on_eof(&mut self, _key: &str, state: &mut Option<Accumulators>, step: &mut Step<'_>) {
        if let Some(accs) = state.take() {
            step.emit_value(self.0.finish(accs));
        }
    }

    fn snapshot(&self, state: &Accumulators) -> Result<Value, BoxError> {
        Ok(serde_json::to_value(state)?)
    }

    fn restore(&mut self, state: Value) -> Result<Accumulators, BoxError> {
        let accs: Accumulators = serde_json::from_value(state)?;
        if accs.0.len() != self.0.specs.len() {
            return Err(format!(
                "the snapshot has {} aggregates, this processor {}",
                accs.0.len(),
                self.0.specs.len()
            )
            .into());
        }
        Ok(accs)
    }
}

/// The window logic of the `window` processor: the same aggregates, per
/// window.
pub struct WindowAggregation(pub(crate) Aggregates);

impl WindowLogic for WindowAggregation {
    type State = Accumulators;

    fn accepts(&self, record: &Record) -> Result<(), String> {
        self.0.inputs(&record.payload).map(drop)
    }

    fn open(&mut self) -> Accumulators {
        self.0.start()
    }

    fn on_value(&mut self, state: &mut Accumulators, record: Record, _emit: &mut Vec<Value>) {
        // `accepts` has checked the inputs.
        let _ = self.0.fold(state, &record.payload);
    }

    fn on_merge(&mut self, into: &mut Accumulators, other: Accumulators) {
        for (a, b) in into.0.iter_mut().zip(other.0) {
            a.merge(b);
        }
    }

    fn on_close(&mut self, state: Accumulators, emit: &mut Vec<Value>) {
        emit.push(self.0.finish(state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn aggregates(toml: &str) -> Result<Aggregates, String> {
        let options: IndexMap<String, AggregateSpec> =
            toml::from_str(toml).map_err(|e| e.to_string())?;
        Aggregates::new(&options).map_err(|e| e.to_string())
    }

    fn over(a: &Aggregates, payloads: &[Value]) -> Value {
        let mut accs = a.start();
        for p in payloads {
            a.fold(&mut accs, p).unwrap();
        }
        a.finish(accs)
    }

    #[test]
    fn every_reducer() {
        let a = aggregates(
            r#"
            records = { reducer = "count" }
            priced = { reducer = "count", pointer = "/price" }
            total = { reducer = "sum", pointer = "/price" }
            cheapest = { reducer = "min", pointer = "/price" }
            dearest = { reducer = "max", pointer = "/price" }
            mean = { reducer = "mean", pointer = "/price" }
            first = { reducer = "first", pointer = "/item" }
            last = { reducer = "last", pointer = "/item" }
            items = { reducer = "collect", pointer = "/item" }
            kinds = { reducer = "count_distinct", pointer = "/item" }
            "#,
        )
        .unwrap();
        let out = over(
            &a,
            &[
                json!({"item": "pen", "price": 2}),
                json!({"item": "ink", "price": 5}),
                json!({"item": "pen"}),
                json!({"item": "pad", "price": null}),
                json!({"item": "pen", "price": 1}),
            ],
        );
        assert_eq!(
            out,
            json!({
                "records": 5, "priced": 3, "total": 8, "cheapest": 1, "dearest": 5,
                "mean": 8.0 / 3.0, "first": "pen", "last": "pen",
                "items": ["pen", "ink", "pen", "pad", "pen"], "kinds": 3
            })
        );
    }

    #[test]
    fn sums_turn_float_on_the_first_fraction_or_overflow() {
        let a = aggregates("s = { reducer = \"sum\" }").unwrap();
        assert_eq!(over(&a, &[json!(1), json!(2.5)]), json!({"s": 3.5}));
        assert_eq!(
            over(&a, &[json!(i64::MAX), json!(1)]),
            json!({"s": i64::MAX as f64 + 1.0})
        );
        let empty = over(&a, &[]);
        assert_eq!(empty, json!({"s": 0}));
    }

    #[test]
    fn a_non_number_rejects_the_whole_record() {
        let a =
            aggregates("n = { reducer = \"count\" }\ns = { reducer = \"sum\", pointer = \"/x\" }")
                .unwrap();
        let mut accs = a.start();
        let e = a.fold(&mut accs, &json!({"x": "3"})).unwrap_err();
        assert_eq!(e, "aggregate `s` (Sum) needs a number, got a string");
        assert_eq!(accs, a.start(), "count did not see it either");
    }

    #[test]
    fn merging_windows_merges_accumulators() {
        let a = aggregates(
            "n = { reducer = \"count\" }\nm = { reducer = \"max\" }\nf = { reducer = \"first\" }\nl = { reducer = \"last\" }\nd = { reducer = \"count_distinct\" }",
        )
        .unwrap();
        let mut w = WindowAggregation(a);
        let mut one = w.open();
        let mut two = w.open();
        for v in [json!(3), json!(1)] {
            w.on_value(&mut one, Record::new(v), &mut Vec::new());
        }
        for v in [json!(7), json!(3)] {
            w.on_value(&mut two, Record::new(v), &mut Vec::new());
        }
        w.on_merge(&mut one, two);
        let mut out = Vec::new();
        w.on_close(one, &mut out);
        assert_eq!(out, [json!({"n": 4, "m": 7, "f": 3, "l": 3, "d": 3})]);
    }

    #[test]
    fn bad_aggregates_are_named() {
        let e = aggregates("").unwrap_err();
        assert!(
            e.starts_with("option `aggregates`: name at least one"),
            "{e}"
        );
        let e = aggregates("t = { reducer = \"sum\", pointer = \"x\" }").unwrap_err();
        assert!(
            e.starts_with("option `aggregates.t.pointer`: invalid JSON pointer"),
            "{e}"
        );
        let e = aggregates("t = { reducer = \"median\" }").unwrap_err();
        assert!(e.contains("unknown variant `median`"), "{e}");
        let e = aggregates("t = { reducer = \"sum\", field = \"/x\" }").unwrap_err();
        assert!(e.contains("unknown field `field`"), "{e}");
        let e =
            aggregates("t = { reducer = \"sum\", pointer = \"/x\", expr = \".x\" }").unwrap_err();
        assert_eq!(
            e,
            "option `aggregates.t`: set either `pointer` or `expr`, not both"
        );
    }
}
