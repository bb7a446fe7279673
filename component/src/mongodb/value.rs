//! JSON payloads to BSON documents (integers stay integers, big integers
//! become Decimal128, refused field names named by their path), BSON back
//! to JSON (plain, or MongoDB's relaxed extended JSON), and documents
//! written as JSON or TOML in an option (`filter`, `projection`).

use std::fmt;
use std::str::FromStr;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Bson, Decimal128, Document};
use serde_json::{Map, Number, Value};

use crate::OptionError;

/// How BSON values that JSON lacks are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JsonFormat {
    /// Plain JSON: ObjectId as its hex string, a date as an RFC 3339
    /// string (UTC, milliseconds), Decimal128 as its decimal string, a
    /// UUID as its hyphenated string, other binary as base64.
    #[default]
    Plain,
    /// MongoDB's relaxed extended JSON (`{"$oid": ...}`, `{"$date": ...}`,
    /// `{"$numberDecimal": ...}`): types survive a round trip through the
    /// `mongodb` outlet with `extended_json = true`.
    Relaxed,
}

/// A payload value that cannot become BSON, with where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// JSON pointer of the value (`/items/0/$price`); `""` is the payload.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ValueError {}

/// A payload as a document: it must be a JSON object. Integers that fit
/// 32 bits are Int32, other integers Int64, integers above `i64::MAX`
/// Decimal128 (exact), other numbers Double. A key starting with `$` or
/// holding a NUL is refused (MongoDB would refuse or misread it), unless
/// `extended_json` is on and the object is an extended-JSON value
/// (`{"$oid": "..."}`, `{"$date": "..."}`, `{"$numberDecimal": "..."}`).
pub fn to_document(payload: &Value, extended_json: bool) -> Result<Document, ValueError> {
    let Value::Object(map) = payload else {
        return Err(ValueError {
            path: String::new(),
            message: format!(
                "the payload is {}, not a JSON object, so it cannot be a document",
                kind(payload)
            ),
        });
    };
    let mut path = String::new();
    object_to_document(map, extended_json, &mut path)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object_to_document(
    map: &Map<String, Value>,
    extended_json: bool,
    path: &mut String,
) -> Result<Document, ValueError> {
    let mut doc = Document::new();
    for (key, value) in map {
        let len = path.len();
        path.push('/');
        push_escaped(path, key);
        if key.starts_with('$') {
            return Err(ValueError {
                path: path.clone(),
                message: "a field name may not start with `$` (MongoDB reads it as an operator)"
                    .into(),
            });
        }
        if key.contains('\0') {
            return Err(ValueError {
                path: path.clone(),
                message: "a field name may not hold a NUL character".into(),
            });
        }
        let bson = to_bson(value, extended_json, path)?;
        path.truncate(len);
        doc.insert(key.clone(), bson);
    }
    Ok(doc)
}

fn push_escaped(path: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

fn to_bson(value: &Value, extended_json: bool, path: &mut String) -> Result<Bson, ValueError> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number(n).map_err(|message| ValueError {
            path: path.clone(),
            message,
        })?,
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                out.push(to_bson(item, extended_json, path)?);
                path.truncate(len);
            }
            Bson::Array(out)
        }
        Value::Object(map) => {
            if extended_json && map.keys().any(|k| k.starts_with('$')) {
                return extended(map, path);
            }
            Bson::Document(object_to_document(map, extended_json, path)?)
        }
    })
}

fn number(n: &Number) -> Result<Bson, String> {
    if let Some(i) = n.as_i64() {
        return Ok(match i32::try_from(i) {
            Ok(small) => Bson::Int32(small),
            Err(_) => Bson::Int64(i),
        });
    }
    if let Some(u) = n.as_u64() {
        // Above i64::MAX: Decimal128 holds it exactly.
        return Decimal128::from_str(&u.to_string())
            .map(Bson::Decimal128)
            .map_err(|e| format!("the integer {u} does not fit Int64 nor Decimal128: {e}"));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => Ok(Bson::Double(f)),
        _ => Err(format!("the number {n} does not fit a double")),
    }
}

/// An extended-JSON object (`{"$oid": ...}`): the value it stands for.
fn extended(map: &Map<String, Value>, path: &str) -> Result<Bson, ValueError> {
    let error = |message: String| ValueError {
        path: path.to_owned(),
        message,
    };
    match Bson::try_from(Value::Object(map.clone())) {
        Ok(Bson::Document(_)) => {
            let key = map
                .keys()
                .find(|k| k.starts_with('$'))
                .map_or("", String::as_str);
            Err(error(format!(
                "`{key}` is neither a field name (a field may not start with `$`) \
                 nor an extended JSON type ($oid, $date, $numberDecimal, $numberLong, $binary, ...)"
            )))
        }
        Ok(bson) => Ok(bson),
        Err(e) => Err(error(format!("not valid extended JSON: {e}"))),
    }
}

/// A BSON value as JSON, in `format`.
pub fn to_json(bson: Bson, format: JsonFormat) -> Value {
    match format {
        JsonFormat::Relaxed => bson.into_relaxed_extjson(),
        JsonFormat::Plain => plain(bson),
    }
}

/// A document as a JSON object, in `format`.
pub fn document_to_json(doc: Document, format: JsonFormat) -> Value {
    to_json(Bson::Document(doc), format)
}

fn plain(bson: Bson) -> Value {
    match bson {
        Bson::Double(f) if f.is_nan() => Value::String("NaN".into()),
        Bson::Double(f) if f.is_infinite() => {
            Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
        }
        Bson::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => Value::String(s),
        Bson::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        Bson::Document(doc) => Value::Object(doc.into_iter().map(|(k, v)| (k, plain(v))).collect()),
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        Bson::DateTime(dt) => match dt.try_to_rfc3339_string() {
            Ok(text) => Value::String(text),
            // Outside years 0..=9999: milliseconds since the epoch.
            Err(_) => Value::from(dt.timestamp_millis()),
        },
        Bson::Decimal128(d) => Value::String(d.to_string()),
        Bson::Binary(b) => match (b.subtype, uuid(&b.bytes)) {
            (BinarySubtype::Uuid, Some(text)) => Value::String(text),
            // The extended JSON form carries the base64 text.
            _ => match Bson::Binary(b).into_relaxed_extjson() {
                Value::Object(mut o) => match o.remove("$binary") {
                    Some(Value::Object(mut b)) => b.remove("base64").unwrap_or(Value::Null),
                    _ => Value::Null,
                },
                _ => Value::Null,
            },
        },
        Bson::RegularExpression(r) => {
            Value::String(format!("/{}/{}", r.pattern.as_str(), r.options.as_str()))
        }
        Bson::Timestamp(ts) => serde_json::json!({ "t": ts.time, "i": ts.increment }),
        other => other.into_relaxed_extjson(),
    }
}

fn uuid(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// A document given in an option: a JSON (or extended JSON) string, or a
/// TOML table. Errors name `option` and, for JSON text, the line and
/// column.
pub fn option_document(option: &str, value: &Value) -> Result<Document, OptionError> {
    let parsed;
    let value = match value {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                OptionError::new(
                    option,
                    format!(
                        "not valid JSON (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            &parsed
        }
        other => other,
    };
    let Value::Object(_) = value else {
        return Err(OptionError::new(
            option,
            format!(
                "must be a JSON object (or a TOML table), found {}",
                kind(value)
            ),
        ));
    };
    match Bson::try_from(value.clone()) {
        Ok(Bson::Document(doc)) => Ok(doc),
        Ok(other) => Err(OptionError::new(
            option,
            format!(
                "is an extended JSON value ({:?}), not a document",
                other.element_type()
            ),
        )),
        Err(e) => Err(OptionError::new(
            option,
            format!("not valid extended JSON: {e}"),
        )),
    }
}

/// A value given in an option (a cursor's start) as BSON: extended JSON
/// objects are read as their type (`{"$oid": "..."}`, `{"$date": "..."}`).
pub fn option_value(option: &str, value: &Value) -> Result<Bson, OptionError> {
    Bson::try_from(value.clone())
        .map_err(|e| OptionError::new(option, format!("not valid extended JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::{DateTime, doc};
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_keep_their_kind_and_big_integers_stay_exact() {
        let doc = to_document(
            &json!({"small": 1, "big": 5_000_000_000_i64, "huge": u64::MAX, "neg": -3, "f": 1.5}),
            false,
        )
        .unwrap();
        assert_eq!(doc.get("small"), Some(&Bson::Int32(1)));
        assert_eq!(doc.get("big"), Some(&Bson::Int64(5_000_000_000)));
        assert_eq!(doc.get("neg"), Some(&Bson::Int32(-3)));
        assert_eq!(doc.get("f"), Some(&Bson::Double(1.5)));
        match doc.get("huge") {
            Some(Bson::Decimal128(d)) => assert_eq!(d.to_string(), u64::MAX.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refused_field_names_are_named_by_their_path() {
        let e = to_document(&json!({"a": {"b": [{"$set": 1}]}}), false).unwrap_err();
        assert_eq!(e.path, "/a/b/0/$set");
        assert!(e.message.contains("`$`"), "{e}");
        let e = to_document(&json!({"a/b": {"x\u{0}": 1}}), false).unwrap_err();
        assert_eq!(e.path, "/a~1b/x\u{0}");
        let e = to_document(&json!([1]), false).unwrap_err();
        assert!(e.to_string().contains("an array, not a JSON object"), "{e}");
        let e = to_document(&json!({"id": {"$oid": "nothex"}}), true).unwrap_err();
        assert_eq!(e.path, "/id");
        let e = to_document(&json!({"id": {"$bogus": 1}}), true).unwrap_err();
        assert!(e.message.contains("neither a field name"), "{e}");
    }

    #[test]
    fn extended_json_payloads_become_typed_values() {
        let doc = to_document(
            &json!({"_id": {"$oid": "65f000000000000000000001"}, "at": {"$date": "2024-05-01T12:00:00Z"},
                    "price": {"$numberDecimal": "12.50"}}),
            true,
        )
        .unwrap();
        assert!(matches!(doc.get("_id"), Some(Bson::ObjectId(_))));
        assert!(matches!(doc.get("at"), Some(Bson::DateTime(_))));
        assert!(matches!(doc.get("price"), Some(Bson::Decimal128(_))));
        // Without the option the same payload is refused, not misread.
        assert!(to_document(&json!({"_id": {"$oid": "65f000000000000000000001"}}), false).is_err());
    }

    #[test]
    fn bson_reads_back_as_plain_or_relaxed_json() {
        let oid = ObjectId::parse_str("65f000000000000000000001").unwrap();
        let at = DateTime::parse_rfc3339_str("2024-05-01T12:00:00.250Z").unwrap();
        let price = Decimal128::from_str("12.50").unwrap();
        let doc =
            doc! {"_id": oid, "at": at, "price": price, "n": 5_i64, "nested": {"a": [1, 2.5]}};
        assert_eq!(
            document_to_json(doc.clone(), JsonFormat::Plain),
            json!({"_id": "65f000000000000000000001", "at": "2024-05-01T12:00:00.25Z",
                   "price": "12.50", "n": 5, "nested": {"a": [1, 2.5]}})
        );
        let relaxed = document_to_json(doc, JsonFormat::Relaxed);
        assert_eq!(relaxed["_id"], json!({"$oid": "65f000000000000000000001"}));
        assert_eq!(relaxed["price"], json!({"$numberDecimal": "12.50"}));
        // Relaxed JSON goes back to the same types.
        let back = to_document(&relaxed, true).unwrap();
        assert_eq!(back.get("price"), Some(&Bson::Decimal128(price)));
        assert_eq!(back.get("at"), Some(&Bson::DateTime(at)));
    }

    #[test]
    fn option_documents_are_json_text_or_tables_with_located_errors() {
        let doc = option_document(
            "filter",
            &json!(r#"{"status": "open", "at": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}}"#),
        )
        .unwrap();
        assert_eq!(doc.get_str("status").ok(), Some("open"));
        assert!(matches!(
            doc.get_document("at").unwrap().get("$gte"),
            Some(Bson::DateTime(_))
        ));
        let doc = option_document("filter", &json!({"n": {"$gt": 3}})).unwrap();
        assert_eq!(doc, doc! {"n": {"$gt": 3}});
        let e = option_document("filter", &json!("{\"a\": 1,\n \"b\" 2}")).unwrap_err();
        assert_eq!(e.option, "filter");
        assert!(e.message.contains("line 2, column"), "{e}");
        let e = option_document("projection", &json!("[1]")).unwrap_err();
        assert!(e.message.contains("found an array"), "{e}");
    }
}
