//! JSON values from TOML options, and comparisons between JSON values that
//! treat numbers as numbers (`1 == 1.0`, `-1 < 18446744073709551615`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

/// The key under which the `toml` crate hands a datetime to serde.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// Turns TOML datetimes (`value = 2026-01-01T00:00:00Z`, which serde sees
/// as a one-key table) into the RFC 3339 strings a JSON payload holds.
pub(crate) fn from_toml(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if map.len() == 1
                && let Some(Value::String(s)) = map.remove(TOML_DATETIME)
            {
                return Value::String(s);
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, from_toml(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(from_toml).collect()),
        other => other,
    }
}

/// A TOML value as JSON. TOML's `nan` and `inf` have no JSON form (serde
/// would turn them into `null` without a word): they are refused.
fn to_json<E: serde::de::Error>(value: toml::Value) -> Result<Value, E> {
    fn check<E: serde::de::Error>(v: &toml::Value) -> Result<(), E> {
        match v {
            toml::Value::Float(f) if !f.is_finite() => Err(E::custom(format!(
                "`{f}` has no JSON form: write a finite number"
            ))),
            toml::Value::Array(items) => items.iter().try_for_each(check),
            toml::Value::Table(t) => t.values().try_for_each(check),
            _ => Ok(()),
        }
    }
    check(&value)?;
    serde_json::to_value(value)
        .map(from_toml)
        .map_err(|e| E::custom(e.to_string()))
}

/// `deserialize_with` for an optional JSON value given in TOML.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Option::<toml::Value>::deserialize(d)?
        .map(to_json)
        .transpose()
}

/// `deserialize_with` for a table of JSON values given in TOML.
pub(crate) fn deserialize_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Value>, D::Error> {
    let map = BTreeMap::<String, toml::Value>::deserialize(d)?;
    map.into_iter()
        .map(|(k, v)| to_json(v).map(|v| (k, v)))
        .collect()
}

/// A JSON number in a form that compares exactly with any other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    /// Non-negative integer.
    U(u64),
    /// Negative integer.
    I(i64),
    /// Floating point (never NaN in a `serde_json::Value`).
    F(f64),
}

impl Num {
    pub(crate) fn new(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::U(u)
        } else if let Some(i) = n.as_i64() {
            Num::I(i)
        } else {
            Num::F(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Orders two numbers exactly, even an `f64` against an integer beyond
    /// 2^53. `None` only for NaN.
    pub(crate) fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::U(a), Num::U(b)) => Some(a.cmp(&b)),
            (Num::I(a), Num::I(b)) => Some(a.cmp(&b)),
            (Num::I(_), Num::U(_)) => Some(Ordering::Less),
            (Num::U(_), Num::I(_)) => Some(Ordering::Greater),
            (Num::F(a), Num::F(b)) => a.partial_cmp(&b),
            (Num::F(f), Num::U(u)) => float_int(f, i128::from(u)),
            (Num::F(f), Num::I(i)) => float_int(f, i128::from(i)),
            (Num::U(u), Num::F(f)) => float_int(f, i128::from(u)).map(Ordering::reverse),
            (Num::I(i), Num::F(f)) => float_int(f, i128::from(i)).map(Ordering::reverse),
        }
    }
}

/// Orders `f` against the integer `i` without rounding `i` to `f64`.
fn float_int(f: f64, i: i128) -> Option<Ordering> {
    // The common case: `i` converts to `f64` exactly, so comparing floats
    // is exact (and much cheaper than truncating to i128).
    const EXACT: i128 = 1 << 53;
    if (-EXACT..=EXACT).contains(&i) {
        return f.partial_cmp(&(i as f64));
    }
    if f.is_nan() {
        return None;
    }
    // Every i64/u64 lies well inside ±2^100, where f64 truncation to i128
    // is exact.
    const LIMIT: f64 = 1e30;
    if f >= LIMIT {
        return Some(Ordering::Greater);
    }
    if f <= -LIMIT {
        return Some(Ordering::Less);
    }
    let whole = f.trunc();
    match (whole as i128).cmp(&i) {
        Ordering::Equal => whole.partial_cmp(&f).map(Ordering::reverse),
        other => Some(other),
    }
}

/// Equality that compares numbers numerically at the top level and falls
/// back to structural equality otherwise.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Num::new(x).compare(Num::new(y)) == Some(Ordering::Equal)
        }
        _ => a == b,
    }
}

/// Writes `value` as JSON text in a canonical form, so values that are
/// equal as JSON write the same bytes: object keys sorted, numbers written
/// from their value (`1.50` as `1.5`; integers, even beyond 64 bits, digit
/// for digit). An integer and a float stay apart (`1` and `1.0`).
pub(crate) fn write_canonical(out: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_canonical(out, v)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, v)?;
            }
            out.push(b']');
        }
        Value::Number(n) if !(n.is_i64() || n.is_u64()) && is_float_text(n) => {
            // Written as JSON writes an f64: `1.50` and `1.5` agree.
            serde_json::to_writer(&mut *out, &n.as_f64())?;
        }
        other => serde_json::to_writer(&mut *out, other)?,
    }
    Ok(())
}

/// Whether a number is written with a fraction or an exponent (an integer
/// beyond 64 bits is kept as its digits).
fn is_float_text(n: &Number) -> bool {
    n.as_str().bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(a: Value, b: Value) -> Option<Ordering> {
        match (a, b) {
            (Value::Number(a), Value::Number(b)) => Num::new(&a).compare(Num::new(&b)),
            _ => None,
        }
    }

    #[test]
    fn mixed_numbers_compare_exactly() {
        use Ordering::*;
        assert_eq!(cmp(json!(1), json!(1.0)), Some(Equal));
        assert_eq!(cmp(json!(-1), json!(u64::MAX)), Some(Less));
        assert_eq!(cmp(json!(u64::MAX), json!(-1)), Some(Greater));
        assert_eq!(cmp(json!(2.5), json!(2)), Some(Greater));
        assert_eq!(cmp(json!(2), json!(2.5)), Some(Less));
        assert_eq!(cmp(json!(-2.5), json!(-2)), Some(Less));
        assert_eq!(cmp(json!(-2), json!(-2.5)), Some(Greater));
        assert_eq!(cmp(json!(1e300), json!(u64::MAX)), Some(Greater));
        assert_eq!(cmp(json!(-1e300), json!(i64::MIN)), Some(Less));
        // 2^53 + 1 is not representable as f64: 2^53 as a float is smaller.
        assert_eq!(
            cmp(json!(9007199254740992.0), json!(9007199254740993u64)),
            Some(Less)
        );
        assert_eq!(cmp(json!(i64::MIN), json!(i64::MIN)), Some(Equal));
        assert_eq!(cmp(json!(0.5), json!(0.25)), Some(Greater));
    }

    #[test]
    fn loose_equality() {
        assert!(loose_eq(&json!(10), &json!(10.0)));
        assert!(!loose_eq(&json!(10), &json!("10")));
        assert!(loose_eq(&json!({"a": [1]}), &json!({"a": [1]})));
    }

    #[test]
    fn toml_datetimes_become_strings() {
        let table: toml::Table =
            toml::from_str("a = 2026-01-01T00:00:00Z\nb = [1979-05-27]\nc = { d = 1 }").unwrap();
        let v = from_toml(serde_json::to_value(table).unwrap());
        assert_eq!(
            v,
            json!({"a": "2026-01-01T00:00:00Z", "b": ["1979-05-27"], "c": {"d": 1}})
        );
    }
}
