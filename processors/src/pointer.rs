//! JSON pointers (RFC 6901), parsed once when a processor is built so that
//! following one through a record allocates nothing.
//!
//! `serde_json::Value::pointer` re-parses the pointer and allocates a
//! `String` per token on every call; at a million records per second that
//! is most of the budget of a `select`.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// A parsed JSON pointer such as `/amount` or `/meta/source`; `""` is the
/// whole payload. `~1` stands for `/` and `~0` for `~` inside a token.
///
/// ```
/// use databay_processors::Pointer;
/// use serde_json::json;
///
/// let pointer = Pointer::parse("/meta/source").unwrap();
/// let mut payload = json!({"id": 1});
/// pointer.set(&mut payload, json!("api")).unwrap();
/// assert_eq!(payload, json!({"id": 1, "meta": {"source": "api"}}));
/// assert_eq!(pointer.get(&payload), Some(&json!("api")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pointer {
    source: String,
    tokens: Box<[Token]>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Token {
    /// The unescaped token, used as an object key.
    key: String,
    /// The token as an array index, if it is one (digits, no leading zero).
    index: Option<usize>,
}

/// A string that is not a valid JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON pointer {pointer:?}: {reason}")]
pub struct PointerError {
    pointer: String,
    reason: &'static str,
}

/// Why [`Pointer::set`] could not place a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot set `{pointer}`: {reason}")]
pub struct SetError {
    pointer: String,
    reason: String,
}

impl SetError {
    /// The pointer that could not be set.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// Why, without the pointer (`` `/meta` is a string, not an object ``).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Pointer {
    /// The pointer to the whole payload (`""`).
    pub fn root() -> Self {
        Pointer {
            source: String::new(),
            tokens: Box::new([]),
        }
    }

    /// Parses `pointer`: empty, or `/`-separated tokens.
    pub fn parse(pointer: &str) -> Result<Self, PointerError> {
        let error = |reason| PointerError {
            pointer: pointer.to_owned(),
            reason,
        };
        if pointer.is_empty() {
            return Ok(Pointer::root());
        }
        let Some(rest) = pointer.strip_prefix('/') else {
            return Err(error(
                "must be empty (the whole payload) or start with \"/\", as in \"/amount\" or \"/meta/source\"",
            ));
        };
        let tokens = rest
            .split('/')
            .map(|raw| {
                let key = unescape(raw).ok_or_else(|| {
                    error("\"~\" must be followed by 0 or 1: write ~0 for \"~\" and ~1 for \"/\"")
                })?;
                Ok(Token {
                    index: parse_index(&key),
                    key,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Pointer {
            source: pointer.to_owned(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this is `""`, the whole payload.
    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `self` points inside (or at) what `other` points at.
    pub fn starts_with(&self, other: &Pointer) -> bool {
        self.tokens.starts_with(&other.tokens)
    }

    /// The value at this pointer, if there is one.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.tokens.iter().try_fold(value, |v, token| match v {
            Value::Object(map) => field(map, &token.key),
            Value::Array(items) => token.index.and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// The value at this pointer, mutably, if there is one.
    pub fn get_mut<'v>(&self, value: &'v mut Value) -> Option<&'v mut Value> {
        self.tokens.iter().try_fold(value, |v, token| match v {
            Value::Object(map) => field_mut(map, &token.key),
            Value::Array(items) => token.index.and_then(|i| items.get_mut(i)),
            _ => None,
        })
    }

    /// Orders pointers so that, taken in this order, removing one never
    /// moves what a later one points at: deeper paths first, and within
    /// one array higher indices first.
    pub(crate) fn removal_order(a: &Pointer, b: &Pointer) -> std::cmp::Ordering {
        let key = |t: &Token| (t.index, t.key.clone());
        b.tokens.iter().map(key).cmp(a.tokens.iter().map(key))
    }

    /// Removes the value at this pointer and returns it; `None` when there
    /// is nothing there. At the root, the payload is left `null`.
    pub fn take(&self, value: &mut Value) -> Option<Value> {
        let Some((last, parents)) = self.tokens.split_last() else {
            return Some(value.take());
        };
        let parent = parents.iter().try_fold(value, |v, token| match v {
            Value::Object(map) => map.get_mut(&token.key),
            Value::Array(items) => token.index.and_then(|i| items.get_mut(i)),
            _ => None,
        })?;
        match parent {
            Value::Object(map) => map.remove(&last.key),
            Value::Array(items) => last
                .index
                .filter(|&i| i < items.len())
                .map(|i| items.remove(i)),
            _ => None,
        }
    }

    /// Puts `new` at this pointer, creating missing objects on the way (as
    /// jq's `.a.b = v` does, a `null` on the way becomes an object too). An
    /// array token must be an existing index; the last one may also be the
    /// array's length or `-` to append. Fails when something on the way is
    /// neither an object, an array nor `null`.
    pub fn set(&self, value: &mut Value, new: Value) -> Result<(), SetError> {
        let Some((last, parents)) = self.tokens.split_last() else {
            *value = new;
            return Ok(());
        };
        let mut current = value;
        for (depth, token) in parents.iter().enumerate() {
            if current.is_null() {
                *current = Value::Object(Map::new());
            }
            current = match current {
                Value::Object(map) => {
                    // Look up before inserting: the key is cloned only when
                    // the object is actually created.
                    if !map.contains_key(&token.key) {
                        map.insert(token.key.clone(), Value::Object(Map::new()));
                    }
                    match map.get_mut(&token.key) {
                        Some(next) => next,
                        None => return Err(self.kind_error(depth, &Value::Null)),
                    }
                }
                Value::Array(items) => {
                    let len = items.len();
                    match token.index.and_then(|i| items.get_mut(i)) {
                        Some(next) => next,
                        None => return Err(self.index_error(depth, token, len)),
                    }
                }
                other => return Err(self.kind_error(depth, other)),
            };
        }
        let depth = parents.len();
        if current.is_null() {
            *current = Value::Object(Map::new());
        }
        match current {
            Value::Object(map) => {
                if let Some(slot) = field_mut(map, &last.key) {
                    *slot = new;
                } else {
                    map.insert(last.key.clone(), new);
                }
                Ok(())
            }
            Value::Array(items) => {
                let len = items.len();
                match last.index {
                    Some(i) if i < len => items[i] = new,
                    Some(i) if i == len => items.push(new),
                    _ if last.key == "-" => items.push(new),
                    _ => return Err(self.index_error(depth, last, len)),
                }
                Ok(())
            }
            other => Err(self.kind_error(depth, other)),
        }
    }

    /// The first `depth` tokens, written as a pointer.
    fn prefix(&self, depth: usize) -> String {
        let mut out = String::new();
        for token in &self.tokens[..depth.min(self.tokens.len())] {
            out.push('/');
            out.push_str(&token.key.replace('~', "~0").replace('/', "~1"));
        }
        out
    }

    /// The first `depth` tokens, for messages: `` `/meta` `` or "the payload".
    fn place(&self, depth: usize) -> String {
        match self.prefix(depth) {
            at if at.is_empty() => "the payload".to_owned(),
            at => format!("`{at}`"),
        }
    }

    fn kind_error(&self, depth: usize, found: &Value) -> SetError {
        SetError {
            pointer: self.source.clone(),
            reason: format!("{} is {}, not an object", self.place(depth), kind(found)),
        }
    }

    fn index_error(&self, depth: usize, token: &Token, len: usize) -> SetError {
        let at = self.place(depth);
        let reason = match token.index {
            Some(i) => format!("{at} is an array of {len}, index {i} is out of bounds"),
            None => format!("{at} is an array and {:?} is not an array index", token.key),
        };
        SetError {
            pointer: self.source.clone(),
            reason,
        }
    }
}

/// Objects of up to this many keys are searched by comparing keys one
/// after the other: serde_json's map hashes a key with SipHash, which costs
/// more than comparing a few short keys.
const SCAN: usize = 8;

/// `map[key]`, if there.
pub(crate) fn field<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= SCAN {
        map.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// `map[key]`, mutably, if there.
pub(crate) fn field_mut<'v>(map: &'v mut Map<String, Value>, key: &str) -> Option<&'v mut Value> {
    if map.len() <= SCAN {
        map.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v)
    } else {
        map.get_mut(key)
    }
}

/// `"a number"`, `"an object"`, ...: what a value is, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Undoes `~1` and `~0`; `None` for any other `~` sequence.
fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index as RFC 6901 writes one: `0`, or digits without a leading
/// zero.
fn parse_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

impl FromStr for Pointer {
    type Err = PointerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pointer::parse(s)
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pointer({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Pointer {
        Pointer::parse(s).unwrap()
    }

    /// Small objects are searched key by key, larger ones by hash: both
    /// find, update and add the same way.
    #[test]
    fn small_and_large_objects_answer_alike() {
        for keys in [2, SCAN, SCAN + 1, 3 * SCAN] {
            let mut value = Value::Object((0..keys).map(|i| (format!("k{i}"), json!(i))).collect());
            let last = format!("/k{}", keys - 1);
            assert_eq!(p(&last).get(&value), Some(&json!(keys - 1)), "{keys} keys");
            assert_eq!(p("/absent").get(&value), None);
            *p("/k0").get_mut(&mut value).unwrap() = json!("first");
            p(&last).set(&mut value, json!("last")).unwrap();
            p("/new").set(&mut value, json!(true)).unwrap();
            let map = value.as_object().unwrap();
            assert_eq!(map.len(), keys + 1);
            assert_eq!(map["k0"], json!("first"));
            assert_eq!(map[&last[1..]], json!("last"));
            assert_eq!(map.keys().next_back().map(String::as_str), Some("new"));
        }
    }

    #[test]
    fn parses_and_unescapes() {
        assert!(p("").is_root());
        assert_eq!(
            p("/a~1b/c~0d").get(&json!({"a/b": {"c~d": 1}})),
            Some(&json!(1))
        );
        assert_eq!(p("/").get(&json!({"": 2})), Some(&json!(2)));
        assert_eq!(p("/a").to_string(), "/a");
        assert_eq!(format!("{:?}", p("/a")), "Pointer(\"/a\")");
        assert_eq!("/x".parse::<Pointer>().unwrap(), p("/x"));
    }

    #[test]
    fn rejects_malformed_pointers() {
        let e = Pointer::parse("amount").unwrap_err().to_string();
        assert!(
            e.contains("\"amount\"") && e.contains("start with \"/\""),
            "{e}"
        );
        let e = Pointer::parse("/a~2").unwrap_err().to_string();
        assert!(e.contains("~0") && e.contains("~1"), "{e}");
        assert!(Pointer::parse("/a~").is_err());
    }

    #[test]
    fn array_indices_follow_rfc_6901() {
        let v = json!({"a": [10, 20, 30]});
        assert_eq!(p("/a/1").get(&v), Some(&json!(20)));
        assert_eq!(p("/a/01").get(&v), None);
        assert_eq!(p("/a/+1").get(&v), None);
        assert_eq!(p("/a/3").get(&v), None);
        assert_eq!(p("/a/x").get(&v), None);
        assert_eq!(p("/a/0/b").get(&v), None);
    }

    #[test]
    fn get_mut_and_take() {
        let mut v = json!({"a": {"b": 1}, "l": [1, 2, 3]});
        *p("/a/b").get_mut(&mut v).unwrap() = json!(2);
        assert_eq!(p("/a/b").take(&mut v), Some(json!(2)));
        assert_eq!(p("/a/b").take(&mut v), None);
        assert_eq!(p("/l/1").take(&mut v), Some(json!(2)));
        assert_eq!(p("/l/9").take(&mut v), None);
        assert_eq!(p("/x/y").take(&mut v), None);
        assert_eq!(v, json!({"a": {}, "l": [1, 3]}));
        assert_eq!(p("").take(&mut v), Some(json!({"a": {}, "l": [1, 3]})));
        assert_eq!(v, Value::Null);
    }

    #[test]
    fn set_creates_objects_and_replaces_null() {
        let mut v = json!({"a": null});
        p("/a/b/c").set(&mut v, json!(1)).unwrap();
        p("/a/b/d").set(&mut v, json!(2)).unwrap();
        assert_eq!(v, json!({"a": {"b": {"c": 1, "d": 2}}}));
        let mut v = Value::Null;
        p("/x").set(&mut v, json!(true)).unwrap();
        assert_eq!(v, json!({"x": true}));
        p("").set(&mut v, json!(5)).unwrap();
        assert_eq!(v, json!(5));
    }

    #[test]
    fn set_in_arrays() {
        let mut v = json!({"l": [{"a": 1}]});
        p("/l/0/a").set(&mut v, json!(2)).unwrap();
        p("/l/1").set(&mut v, json!("end")).unwrap();
        p("/l/-").set(&mut v, json!("more")).unwrap();
        assert_eq!(v, json!({"l": [{"a": 2}, "end", "more"]}));
        let e = p("/l/7").set(&mut v, json!(0)).unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot set `/l/7`: `/l` is an array of 3, index 7 is out of bounds"
        );
        let e = p("/l/x/y").set(&mut v, json!(0)).unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot set `/l/x/y`: `/l` is an array and \"x\" is not an array index"
        );
        let e = p("/a")
            .set(&mut json!([]), json!(0))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cannot set `/a`: the payload is an array and \"a\" is not an array index"
        );
    }

    #[test]
    fn set_fails_on_scalars() {
        let mut v = json!({"meta": "x"});
        let e = p("/meta/source").set(&mut v, json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set `/meta/source`: `/meta` is a string, not an object"
        );
        let mut v = json!(3);
        let e = p("/a").set(&mut v, json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set `/a`: the payload is a number, not an object"
        );
        let mut v = json!({"a/b": 1});
        let e = p("/a~1b/c").set(&mut v, json!(1)).unwrap_err();
        assert!(e.to_string().contains("`/a~1b` is a number"), "{e}");
    }

    #[test]
    fn starts_with_compares_tokens() {
        assert!(p("/a/b").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&p("")));
        assert!(!p("/ab").starts_with(&p("/a")));
    }
}
