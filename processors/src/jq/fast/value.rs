//! The values the fast path computes with, and jq's (jaq's) rules for
//! them: numbers, truthiness, equality, the total order, arithmetic and
//! the JSON text `tostring` writes.
//!
//! Numbers follow jaq exactly. An integer that fits 64 bits is an integer;
//! `+ - * %` of two integers stay integers, everything else is a 64-bit
//! float. A number of the payload that is not an integer (`2.50`, `1e3`)
//! is kept as its text until it is computed with, read as a float then. An
//! integer beyond 64 bits (jaq's big integers) is left to jaq.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Why an evaluation stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Enough outputs were seen (the first one, for `first` and `test`).
    Done,
    /// jq fails here: the record goes to jaq, whose error message it keeps.
    Error,
    /// A case the fast path leaves to jaq (a big integer, NaN inside an
    /// array, ...): the record goes to jaq.
    Unsupported,
}

/// A result of the fast path.
pub(crate) type Res<T> = Result<T, Stop>;

/// An output of an expression: borrowed from the input or the program, or
/// computed.
#[derive(Debug)]
pub(crate) enum V<'a> {
    Ref(&'a Value),
    Own(Value),
    Int(i64),
    Float(f64),
}

/// An input of an expression: what a [`V`] is, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum In<'a> {
    Val(&'a Value),
    Int(i64),
    Float(f64),
}

/// A number as jaq computes with it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum N {
    Int(i64),
    Float(f64),
}

/// A value seen by its type, for comparisons.
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    Null,
    Bool(bool),
    Num(N),
    Str(&'a str),
    Arr(&'a [Value]),
    Obj(&'a Map<String, Value>),
}

impl<'a> V<'a> {
    pub(crate) fn as_in(&self) -> In<'_> {
        match self {
            V::Ref(v) => In::Val(v),
            V::Own(v) => In::Val(v),
            V::Int(i) => In::Int(*i),
            V::Float(f) => In::Float(*f),
        }
    }

    /// The value to store inside an array or object. A NaN or an infinity
    /// cannot be a JSON number, and jaq keeps them as they are until the
    /// output, so they are left to jaq.
    pub(crate) fn into_value(self) -> Res<Value> {
        Ok(match self {
            V::Ref(v) => v.clone(),
            V::Own(v) => v,
            V::Int(i) => Value::from(i),
            V::Float(f) => Value::Number(Number::from_f64(f).ok_or(Stop::Unsupported)?),
        })
    }

    /// The value as an output: NaN becomes `null` and infinities the
    /// largest finite numbers, as the jaq path converts them.
    pub(crate) fn into_output(self) -> Value {
        match self {
            V::Float(f) => float_output(f),
            other => match other.into_value() {
                Ok(v) => v,
                // Only a non-finite float fails, and it is handled above.
                Err(_) => Value::Null,
            },
        }
    }

    /// The same output with nothing borrowed.
    pub(crate) fn into_static(self) -> V<'static> {
        match self {
            V::Ref(v) => V::Own(v.clone()),
            V::Own(v) => V::Own(v),
            V::Int(i) => V::Int(i),
            V::Float(f) => V::Float(f),
        }
    }

    pub(crate) fn from_in(x: In<'a>) -> Self {
        match x {
            In::Val(v) => V::Ref(v),
            In::Int(i) => V::Int(i),
            In::Float(f) => V::Float(f),
        }
    }

    fn from_n(n: N) -> Self {
        match n {
            N::Int(i) => V::Int(i),
            N::Float(f) => V::Float(f),
        }
    }
}

/// jaq's float as JSON.
pub(crate) fn float_output(f: f64) -> Value {
    if f.is_nan() {
        Value::Null
    } else {
        Number::from_f64(f.clamp(f64::MIN, f64::MAX)).map_or(Value::Null, Value::Number)
    }
}

/// A JSON number as jaq reads it from a payload: a 64-bit integer, a big
/// integer (left to jaq), or a decimal read as a float.
pub(crate) fn number(n: &Number) -> Res<N> {
    let text = n.as_str();
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(N::Int(i));
        }
        if text.parse::<u64>().is_ok() {
            return Err(Stop::Unsupported);
        }
    }
    text.parse::<f64>()
        .map(N::Float)
        .map_err(|_| Stop::Unsupported)
}

impl<'a> In<'a> {
    /// jq's truthiness: only `null` and `false` are false.
    pub(crate) fn truthy(self) -> bool {
        !matches!(self, In::Val(Value::Null | Value::Bool(false)))
    }

    pub(crate) fn view(self) -> Res<View<'a>> {
        match self {
            In::Val(v) => view(v),
            In::Int(i) => Ok(View::Num(N::Int(i))),
            In::Float(f) => Ok(View::Num(N::Float(f))),
        }
    }
}

pub(crate) fn view(v: &Value) -> Res<View<'_>> {
    Ok(match v {
        Value::Null => View::Null,
        Value::Bool(b) => View::Bool(*b),
        Value::Number(n) => View::Num(number(n)?),
        Value::String(s) => View::Str(s),
        Value::Array(a) => View::Arr(a),
        Value::Object(o) => View::Obj(o),
    })
}

fn as_f64(n: N) -> f64 {
    match n {
        N::Int(i) => i as f64,
        N::Float(f) => f,
    }
}

/// jaq's float order: zeros are equal, NaN is below everything.
fn float_cmp(l: f64, r: f64) -> Ordering {
    if l == 0.0 && r == 0.0 {
        Ordering::Equal
    } else if l.is_nan() {
        Ordering::Less
    } else if r.is_nan() {
        Ordering::Greater
    } else {
        f64::total_cmp(&l, &r)
    }
}

fn num_cmp(l: N, r: N) -> Ordering {
    match (l, r) {
        (N::Int(x), N::Int(y)) => x.cmp(&y),
        (l, r) => float_cmp(as_f64(l), as_f64(r)),
    }
}

fn num_eq(l: N, r: N) -> bool {
    match (l, r) {
        (N::Int(x), N::Int(y)) => x == y,
        (N::Int(i), N::Float(f)) | (N::Float(f), N::Int(i)) => {
            f.is_finite() && float_cmp(i as f64, f) == Ordering::Equal
        }
        (N::Float(x), N::Float(y)) => float_cmp(x, y) == Ordering::Equal,
    }
}

fn rank(v: &View<'_>) -> u8 {
    match v {
        View::Null => 0,
        View::Bool(_) => 1,
        View::Num(_) => 2,
        View::Str(_) => 3,
        View::Arr(_) => 4,
        View::Obj(_) => 5,
    }
}

/// jq's equality (`==`): numbers by value, objects whatever their key order.
pub(crate) fn equal(l: View<'_>, r: View<'_>) -> Res<bool> {
    Ok(match (l, r) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Num(x), View::Num(y)) => num_eq(x, y),
        (View::Str(x), View::Str(y)) => x == y,
        (View::Arr(x), View::Arr(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (a, b) in x.iter().zip(y) {
                if !equal(view(a)?, view(b)?)? {
                    return Ok(false);
                }
            }
            true
        }
        (View::Obj(x), View::Obj(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, a) in x {
                match y.get(k) {
                    Some(b) if equal(view(a)?, view(b)?)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        _ => false,
    })
}

/// jq's total order: null < false < true < numbers < strings < arrays <
/// objects; arrays element by element, objects by their sorted keys, then
/// their values in that order.
pub(crate) fn compare(l: View<'_>, r: View<'_>) -> Res<Ordering> {
    Ok(match (l, r) {
        (View::Null, View::Null) => Ordering::Equal,
        (View::Bool(x), View::Bool(y)) => x.cmp(&y),
        (View::Num(x), View::Num(y)) => num_cmp(x, y),
        (View::Str(x), View::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (View::Arr(x), View::Arr(y)) => {
            for (a, b) in x.iter().zip(y) {
                match compare(view(a)?, view(b)?)? {
                    Ordering::Equal => {}
                    other => return Ok(other),
                }
            }
            x.len().cmp(&y.len())
        }
        (View::Obj(x), View::Obj(y)) => match (x.len(), y.len()) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Less,
            (_, 0) => Ordering::Greater,
            _ => {
                let mut l: Vec<_> = x.iter().collect();
                let mut r: Vec<_> = y.iter().collect();
                l.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                r.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let keys = l
                    .iter()
                    .map(|(k, _)| k.as_bytes())
                    .cmp(r.iter().map(|(k, _)| k.as_bytes()));
                if keys != Ordering::Equal {
                    return Ok(keys);
                }
                for ((_, a), (_, b)) in l.iter().zip(&r) {
                    match compare(view(a)?, view(b)?)? {
                        Ordering::Equal => {}
                        other => return Ok(other),
                    }
                }
                Ordering::Equal
            }
        },
        (l, r) => rank(&l).cmp(&rank(&r)),
    })
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Math {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A number of an operand, if it is one.
fn operand(x: In<'_>) -> Res<Option<N>> {
    Ok(match x {
        In::Int(i) => Some(N::Int(i)),
        In::Float(f) => Some(N::Float(f)),
        In::Val(Value::Number(n)) => Some(number(n)?),
        In::Val(_) => None,
    })
}

fn num_math(op: Math, l: N, r: N) -> Res<N> {
    use N::{Float, Int};
    let int = |i: Option<i64>| i.map(Int).ok_or(Stop::Unsupported);
    Ok(match (op, l, r) {
        (Math::Add, Int(x), Int(y)) => int(x.checked_add(y))?,
        (Math::Sub, Int(x), Int(y)) => int(x.checked_sub(y))?,
        (Math::Mul, Int(x), Int(y)) => int(x.checked_mul(y))?,
        (Math::Rem, Int(_), Int(0)) => return Err(Stop::Error),
        (Math::Rem, Int(x), Int(y)) => Int(x.checked_rem(y).unwrap_or(0)),
        (Math::Add, l, r) => Float(as_f64(l) + as_f64(r)),
        (Math::Sub, l, r) => Float(as_f64(l) - as_f64(r)),
        (Math::Mul, l, r) => Float(as_f64(l) * as_f64(r)),
        (Math::Div, l, r) => Float(as_f64(l) / as_f64(r)),
        (Math::Rem, l, r) => Float(as_f64(l) % as_f64(r)),
    })
}

/// `l op r` as jaq computes it; a type mismatch is an error.
pub(crate) fn math<'a>(op: Math, l: V<'a>, r: V<'a>) -> Res<V<'a>> {
    if let (Some(x), Some(y)) = (operand(l.as_in())?, operand(r.as_in())?) {
        return num_math(op, x, y).map(V::from_n);
    }
    let (x, y) = (l.as_in(), r.as_in());
    match op {
        Math::Add => add(l, r),
        Math::Mul => match (x, y) {
            // A deep merge: left to jaq.
            (In::Val(Value::Object(_)), In::Val(Value::Object(_))) => Err(Stop::Unsupported),
            _ => repeat(l, r),
        },
        // Splitting a string, removing elements: left to jaq.
        Math::Div => match (x, y) {
            (In::Val(Value::String(_)), In::Val(Value::String(_))) => Err(Stop::Unsupported),
            _ => Err(Stop::Error),
        },
        Math::Sub => match (x, y) {
            (In::Val(Value::Array(_)), In::Val(Value::Array(_))) => Err(Stop::Unsupported),
            _ => Err(Stop::Error),
        },
        Math::Rem => Err(Stop::Error),
    }
}

fn add<'a>(l: V<'a>, r: V<'a>) -> Res<V<'a>> {
    if matches!(l.as_in(), In::Val(Value::Null)) {
        return Ok(r);
    }
    if matches!(r.as_in(), In::Val(Value::Null)) {
        return Ok(l);
    }
    match (l.as_in(), r.as_in()) {
        (In::Val(Value::String(_)), In::Val(Value::String(y))) => {
            let mut s = match l.into_value()? {
                Value::String(s) => s,
                _ => return Err(Stop::Unsupported),
            };
            s.push_str(y);
            Ok(V::Own(Value::String(s)))
        }
        (In::Val(Value::Array(_)), In::Val(Value::Array(y))) => {
            let y = y.clone();
            let mut a = match l.into_value()? {
                Value::Array(a) => a,
                _ => return Err(Stop::Unsupported),
            };
            a.extend(y);
            Ok(V::Own(Value::Array(a)))
        }
        (In::Val(Value::Object(_)), In::Val(Value::Object(y))) => {
            let y = y.clone();
            let mut o = match l.into_value()? {
                Value::Object(o) => o,
                _ => return Err(Stop::Unsupported),
            };
            for (k, v) in y {
                o.insert(k, v);
            }
            Ok(V::Own(Value::Object(o)))
        }
        _ => Err(Stop::Error),
    }
}

/// `"ab" * 3`: a string repeated a positive integer number of times, else
/// `null`; an integer beyond 64 bits is left to jaq.
fn repeat<'a>(l: V<'a>, r: V<'a>) -> Res<V<'a>> {
    let (s, n) = match (l.as_in(), r.as_in()) {
        (In::Val(Value::String(s)), n) | (n, In::Val(Value::String(s))) => (s.as_str(), n),
        _ => return Err(Stop::Error),
    };
    let n = match n {
        In::Int(i) => i,
        In::Val(Value::Number(n)) => match number(n)? {
            N::Int(i) => i,
            N::Float(_) => return Err(Stop::Error),
        },
        _ => return Err(Stop::Error),
    };
    if n <= 0 {
        return Ok(V::Own(Value::Null));
    }
    let n = usize::try_from(n).map_err(|_| Stop::Unsupported)?;
    if s.len().saturating_mul(n) > 1 << 30 {
        return Err(Stop::Unsupported);
    }
    Ok(V::Own(Value::String(s.repeat(n))))
}

/// `-x`: a decimal keeps its digits (jaq negates its text).
pub(crate) fn negate<'a>(x: V<'a>) -> Res<V<'a>> {
    match x.as_in() {
        In::Int(i) => i.checked_neg().map(V::Int).ok_or(Stop::Unsupported),
        In::Float(f) => Ok(V::Float(-f)),
        In::Val(Value::Number(n)) => match number(n)? {
            N::Int(i) => i.checked_neg().map(V::Int).ok_or(Stop::Unsupported),
            N::Float(_) => {
                let text = n.as_str();
                let negated = match text.strip_prefix('-') {
                    Some(positive) => positive.to_owned(),
                    None => format!("-{text}"),
                };
                negated
                    .parse::<Number>()
                    .map(|n| V::Own(Value::Number(n)))
                    .map_err(|_| Stop::Unsupported)
            }
        },
        In::Val(_) => Err(Stop::Error),
    }
}

/// `length`.
pub(crate) fn length<'a>(x: In<'_>) -> Res<V<'a>> {
    let count = |n: usize| i64::try_from(n).map(V::Int).map_err(|_| Stop::Unsupported);
    match x {
        In::Val(Value::Null) => Ok(V::Int(0)),
        In::Val(Value::Bool(_)) => Err(Stop::Error),
        In::Val(Value::String(s)) => count(s.chars().count()),
        In::Val(Value::Array(a)) => count(a.len()),
        In::Val(Value::Object(o)) => count(o.len()),
        In::Val(Value::Number(n)) => abs(number(n)?),
        In::Int(i) => abs(N::Int(i)),
        In::Float(f) => abs(N::Float(f)),
    }
}

fn abs<'a>(n: N) -> Res<V<'a>> {
    match n {
        N::Int(i) => i.checked_abs().map(V::Int).ok_or(Stop::Unsupported),
        N::Float(f) => Ok(V::Float(f.abs())),
    }
}

/// `round`, `floor`, `ceil`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    Round,
    Floor,
    Ceil,
}

/// An integer stays as it is; a float is rounded to an integer when it
/// fits 64 bits (beyond, jaq makes a big integer: left to jaq); NaN and
/// the infinities stay floats.
pub(crate) fn round<'a>(how: Rounding, x: V<'a>) -> Res<V<'a>> {
    let f = match x.as_in() {
        In::Int(_) => return Ok(x),
        In::Float(f) => f,
        In::Val(Value::Number(n)) => match number(n)? {
            N::Int(_) => return Ok(x),
            N::Float(f) => f,
        },
        In::Val(_) => return Err(Stop::Error),
    };
    let f = match how {
        Rounding::Round => f.round(),
        Rounding::Floor => f.floor(),
        Rounding::Ceil => f.ceil(),
    };
    if !f.is_finite() {
        Ok(V::Float(f))
    } else if i64::MIN as f64 <= f && f <= i64::MAX as f64 {
        Ok(V::Int(f as i64))
    } else {
        Err(Stop::Unsupported)
    }
}

/// `tostring`: a string as it is, anything else as jaq writes it.
pub(crate) fn tostring(x: V<'_>) -> Res<V<'_>> {
    if let In::Val(Value::String(_)) = x.as_in() {
        return Ok(x);
    }
    let mut out = String::new();
    write_json(&mut out, x.as_in())?;
    Ok(V::Own(Value::String(out)))
}

/// Appends what `tostring` makes of `x` (for string interpolation).
pub(crate) fn push_string(out: &mut String, x: In<'_>) -> Res<()> {
    match x {
        In::Val(Value::String(s)) => {
            out.push_str(s);
            Ok(())
        }
        other => write_json(out, other),
    }
}

/// `tonumber`: a number as it is; a string holding exactly one JSON number
/// (in JSON's own syntax, nothing around it) as that number. Anything else
/// is left to jaq, which fails on most of it.
pub(crate) fn tonumber(x: V<'_>) -> Res<V<'_>> {
    let s = match x.as_in() {
        In::Int(_) | In::Float(_) | In::Val(Value::Number(_)) => return Ok(x),
        In::Val(Value::String(s)) => s.as_str(),
        In::Val(_) => return Err(Stop::Error),
    };
    let Some(integer) = json_number(s) else {
        return Err(Stop::Unsupported);
    };
    if integer {
        s.parse::<i64>().map(V::Int).map_err(|_| Stop::Unsupported)
    } else {
        s.parse::<Number>()
            .map(|n| V::Own(Value::Number(n)))
            .map_err(|_| Stop::Unsupported)
    }
}

/// Whether `s` is a JSON number, and if so whether it is an integer (no
/// fraction, no exponent); `None` if it is not one.
fn json_number(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return None,
    }
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        integer = false;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        integer = false;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    (i == b.len()).then_some(integer)
}

/// Writes `x` as jaq's `tojson` does: compact, keys in their order, the
/// characters below U+0020 and U+007F escaped.
fn write_json(out: &mut String, x: In<'_>) -> Res<()> {
    match x {
        In::Int(i) => {
            let _ = write!(out, "{i}");
        }
        In::Float(f) => write_float(out, f),
        In::Val(v) => write_value(out, v, 0)?,
    }
    Ok(())
}

fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f == f64::INFINITY {
        out.push_str("Infinity");
    } else if f == f64::NEG_INFINITY {
        out.push_str("-Infinity");
    } else {
        out.push_str(ryu::Buffer::new().format_finite(f));
    }
}

/// Nesting beyond this is left to jaq rather than risking the stack.
const MAX_WRITE_DEPTH: usize = 512;

fn write_value(out: &mut String, v: &Value, depth: usize) -> Res<()> {
    if depth > MAX_WRITE_DEPTH {
        return Err(Stop::Unsupported);
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            // A float computed here and stored in an array or object holds
            // serde_json's text of it, which writes exponents as `1e+16`
            // where jaq writes `1e16`; a payload's own `1e+16` stays as it
            // is in jaq. The two cannot be told apart, so exponents are
            // left to jaq (without one, both write the same digits).
            let text = n.as_str();
            if text.contains(['e', 'E']) {
                return Err(Stop::Unsupported);
            }
            out.push_str(text);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, item, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored floats are written with serde_json's formatter, jaq's
    /// `tostring` uses ryu: without an exponent they must agree, or
    /// `write_value` would have to leave more to jaq.
    #[test]
    fn serde_json_and_ryu_write_plain_floats_alike() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut checked = 0;
        for i in 0..200_000u64 {
            let f = match i % 3 {
                0 => f64::from_bits(next()),
                1 => (next() % 2_000_000_000) as f64 / 100.0 - 1e7,
                _ => (next() % 1_000_000) as f64 * 10f64.powi((next() % 30) as i32 - 10),
            };
            let Some(n) = Number::from_f64(f) else {
                continue;
            };
            let ours = n.as_str();
            let theirs = ryu::Buffer::new().format_finite(f).to_owned();
            if ours.contains(['e', 'E']) || theirs.contains(['e', 'E']) {
                assert_eq!(ours.contains('e'), theirs.contains('e'), "{f:e}");
                continue;
            }
            assert_eq!(ours, theirs, "{f:e}");
            checked += 1;
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn json_numbers_are_recognised_strictly() {
        for (s, want) in [
            ("0", Some(true)),
            ("-12", Some(true)),
            ("1.5", Some(false)),
            ("1e5", Some(false)),
            ("-0.5E-3", Some(false)),
            ("01", None),
            ("1.", None),
            (".5", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("1e", None),
            ("nan", None),
        ] {
            assert_eq!(json_number(s), want, "{s:?}");
        }
    }
}
