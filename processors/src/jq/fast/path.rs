//! Paths as jaq reads and updates them: `.a`, `.[0]`, `.a.b = f`,
//! `.a |= f`, `del(.a)`.
//!
//! Reading: `null` gives `null` for any key; an object gives the key's
//! value or `null` (an integer index finds nothing in it); an array gives
//! the element (negative indices count from the end) or `null`; anything
//! else is an error. Updating: an existing key keeps its place, a new key
//! is appended, a deleted key is replaced by the last one (jaq removes in
//! constant time); an array index out of bounds, or anything but an
//! object or array on the way, is an error.

use serde_json::{Map, Value};

use super::parse::Key;
use super::value::{In, Res, Stop, V};
use crate::pointer::{field, field_mut};

pub(crate) static NULL: Value = Value::Null;

/// `x | .[key]` on a borrowed value.
pub(crate) fn index<'a>(x: In<'a>, key: &Key) -> Res<&'a Value> {
    let In::Val(v) = x else {
        return Err(Stop::Error);
    };
    Ok(match (v, key) {
        (Value::Null, _) => &NULL,
        (Value::Object(o), Key::Name(k)) => field(o, k).unwrap_or(&NULL),
        (Value::Object(_), Key::Index(_)) => &NULL,
        (Value::Array(a), Key::Index(i)) => element(a.len(), *i).map_or(&NULL, |i| &a[i]),
        _ => return Err(Stop::Error),
    })
}

/// `x | .[key]` on an owned value: the element moves out.
pub(crate) fn index_owned<'a>(v: V<'a>, key: &Key) -> Res<V<'a>> {
    match v {
        V::Ref(r) => index(In::Val(r), key).map(V::Ref),
        V::Own(Value::Object(mut o)) => match key {
            Key::Name(k) => Ok(V::Own(o.swap_remove(k).unwrap_or(Value::Null))),
            Key::Index(_) => Ok(V::Own(Value::Null)),
        },
        V::Own(Value::Array(mut a)) => match key {
            Key::Index(i) => Ok(V::Own(match element(a.len(), *i) {
                Some(i) => a.swap_remove(i),
                None => Value::Null,
            })),
            Key::Name(_) => Err(Stop::Error),
        },
        V::Own(Value::Null) => Ok(V::Own(Value::Null)),
        _ => Err(Stop::Error),
    }
}

/// The position of index `i` in an array of `len` elements.
fn element(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 {
        len.checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(i).ok()?
    };
    (i < len).then_some(i)
}

/// The value an update of `keys` starts from: `None` when the last key is
/// absent from its object (the update then starts from `null`).
pub(crate) fn get_path<'a>(v: &'a Value, keys: &[Key]) -> Res<Option<&'a Value>> {
    let Some((last, init)) = keys.split_last() else {
        return Ok(Some(v));
    };
    let mut cur = v;
    for key in init {
        // An absent key on the way updates `null`, which is an error.
        cur = slot(cur, key)?.ok_or(Stop::Error)?;
    }
    slot(cur, last)
}

fn slot<'a>(v: &'a Value, key: &Key) -> Res<Option<&'a Value>> {
    match (v, key) {
        (Value::Object(o), Key::Name(k)) => Ok(field(o, k)),
        // jaq would add a number as a key, which JSON cannot hold.
        (Value::Object(_), Key::Index(_)) => Err(Stop::Unsupported),
        (Value::Array(a), Key::Index(i)) => match element(a.len(), *i) {
            Some(i) => Ok(Some(&a[i])),
            None => Err(Stop::Error),
        },
        _ => Err(Stop::Error),
    }
}

/// Sets (`Some`) or deletes (`None`) the value at `keys`. Either it fails
/// before changing anything, or it succeeds.
pub(crate) fn set_path(v: &mut Value, keys: &[Key], new: Option<Value>) -> Res<()> {
    let Some((last, init)) = keys.split_last() else {
        return match new {
            Some(n) => {
                *v = n;
                Ok(())
            }
            None => Err(Stop::Unsupported),
        };
    };
    let mut cur = v;
    for key in init {
        cur = match (cur, key) {
            (Value::Object(o), Key::Name(k)) => field_mut(o, k).ok_or(Stop::Error)?,
            (Value::Object(_), Key::Index(_)) => return Err(Stop::Unsupported),
            (Value::Array(a), Key::Index(i)) => {
                let i = element(a.len(), *i).ok_or(Stop::Error)?;
                &mut a[i]
            }
            _ => return Err(Stop::Error),
        };
    }
    match (cur, last) {
        (Value::Object(o), Key::Name(k)) => {
            set_key(o, k, new);
            Ok(())
        }
        (Value::Object(_), Key::Index(_)) => Err(Stop::Unsupported),
        (Value::Array(a), Key::Index(i)) => {
            let i = element(a.len(), *i).ok_or(Stop::Error)?;
            match new {
                Some(n) => a[i] = n,
                None => {
                    a.remove(i);
                }
            }
            Ok(())
        }
        _ => Err(Stop::Error),
    }
}

fn set_key(o: &mut Map<String, Value>, k: &str, new: Option<Value>) {
    match new {
        Some(n) => match field_mut(o, k) {
            Some(slot) => *slot = n,
            None => {
                o.insert(k.to_owned(), n);
            }
        },
        None => {
            o.swap_remove(k);
        }
    }
}
