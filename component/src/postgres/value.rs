//! JSON values to PostgreSQL parameters and row values back to JSON, for
//! the column types the PostgreSQL components support.
//!
//! | PostgreSQL type | From JSON (outlet, cursor) | To JSON (inlet) |
//! |---|---|---|
//! | `boolean` | a boolean | a boolean |
//! | `smallint`, `integer`, `bigint` | an integer in range | a number |
//! | `real`, `double precision` | a number | a number (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings) |
//! | `numeric` | a number, or a string holding one | a number (an integer when it has no fraction; else an f64, so beyond ~15 significant digits select `col::text`) |
//! | `text`, `varchar`, `char`, `name` | a string; a number or boolean as its JSON text | a string |
//! | `json`, `jsonb` | any value | the value |
//! | `timestamptz` | an RFC 3339 string | an RFC 3339 string in UTC (`2024-05-01T12:00:00Z`) |
//! | `timestamp` | `YYYY-MM-DDTHH:MM:SS[.f]` (or with a space, or RFC 3339: taken as UTC) | `YYYY-MM-DDTHH:MM:SS[.f]` |
//! | `date` | `YYYY-MM-DD` | `YYYY-MM-DD` |
//! | `uuid` | a string `xxxxxxxx-xxxx-...` | a string |
//!
//! JSON `null` (and, in the outlet, a missing field) is SQL `NULL`, for
//! every type. Other types (arrays, `bytea`, `inet`, ...) are refused when
//! the component starts, naming the column: cast them in SQL instead.

use std::borrow::Cow;
use std::error::Error;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Number, Value};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Json, ToSql, Type, to_sql_checked};

/// A PostgreSQL column type the components convert to and from JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `numeric` (sent as text and cast by the server).
    Numeric,
    /// `text`, `varchar`, `char(n)`, `name`.
    Text,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// `uuid` (sent as text and cast by the server).
    Uuid,
}

impl ColumnType {
    /// The supported type `ty` is, if it is one.
    pub fn of(ty: &Type) -> Option<ColumnType> {
        Some(match *ty {
            Type::BOOL => ColumnType::Bool,
            Type::INT2 => ColumnType::Int2,
            Type::INT4 => ColumnType::Int4,
            Type::INT8 => ColumnType::Int8,
            Type::FLOAT4 => ColumnType::Float4,
            Type::FLOAT8 => ColumnType::Float8,
            Type::NUMERIC => ColumnType::Numeric,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => ColumnType::Text,
            Type::JSON => ColumnType::Json,
            Type::JSONB => ColumnType::Jsonb,
            Type::TIMESTAMPTZ => ColumnType::Timestamptz,
            Type::TIMESTAMP => ColumnType::Timestamp,
            Type::DATE => ColumnType::Date,
            Type::UUID => ColumnType::Uuid,
            _ => return None,
        })
    }

    /// The types [`of`](Self::of) knows, for error messages.
    pub const SUPPORTED: &'static str = "boolean, smallint, integer, bigint, real, double precision, \
        numeric, text, varchar, char, name, json, jsonb, timestamptz, timestamp, date, uuid";

    /// The SQL type a parameter of this column is sent as and cast from
    /// (`$1::text::numeric`), when it is not sent in its own binary form.
    pub fn text_cast(self) -> Option<&'static str> {
        match self {
            ColumnType::Numeric => Some("numeric"),
            ColumnType::Uuid => Some("uuid"),
            _ => None,
        }
    }
}

/// One statement parameter converted from JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    I16(i16),
    /// `integer`.
    I32(i32),
    /// `bigint`.
    I64(i64),
    /// `real`.
    F32(f32),
    /// `double precision`.
    F64(f64),
    /// Text (also `numeric` and `uuid` in text form, cast by the server).
    Text(Cow<'a, str>),
    /// `json` or `jsonb`.
    Json(Cow<'a, Value>),
    /// `timestamptz`.
    Timestamptz(DateTime<FixedOffset>),
    /// `timestamp`.
    Timestamp(NaiveDateTime),
    /// `date`.
    Date(NaiveDate),
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Text(v) => v.as_ref().to_sql(ty, out),
            Param::Json(v) => Json(v.as_ref()).to_sql(ty, out),
            Param::Timestamptz(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::Date(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // The value was converted for its column's type; a mismatch is a
        // bug the server reports.
        true
    }

    to_sql_checked!();
}

/// A parameter that adds the size of its encoding to `sent` as the driver
/// encodes it: the bytes of row data a statement carries, for an outlet's
/// sent-bytes figure, without encoding anything twice.
#[derive(Debug)]
pub struct Counted<'a> {
    /// The parameter.
    pub param: &'a Param<'a>,
    /// Where its encoded size is added.
    pub sent: &'a AtomicU64,
}

impl ToSql for Counted<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let before = out.len();
        let encoded = self.param.to_sql(ty, out);
        let size = out.len().saturating_sub(before) as u64;
        self.sent.fetch_add(size, Ordering::Relaxed);
        encoded
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
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

/// Converts `value` (`None`: absent) for a column of type `ty`; the error
/// says what was expected and what was found.
pub fn to_param(value: Option<&Value>, ty: ColumnType) -> Result<Param<'_>, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(Param::Null),
        Some(v) => v,
    };
    let mismatch = |want: &str| format!("expected {want}, found {}", kind(value));
    let int = |want: &str| match value {
        Value::Number(n) if n.is_u64() => n
            .as_i64()
            .ok_or_else(|| format!("{n} is out of range for bigint")),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected {want}, found {n}")),
        _ => Err(mismatch(want)),
    };
    Ok(match ty {
        ColumnType::Bool => match value {
            Value::Bool(b) => Param::Bool(*b),
            _ => return Err(mismatch("a boolean")),
        },
        ColumnType::Int2 => {
            let n = int("an integer (smallint)")?;
            Param::I16(i16::try_from(n).map_err(|_| format!("{n} is out of range for smallint"))?)
        }
        ColumnType::Int4 => {
            let n = int("an integer (integer)")?;
            Param::I32(i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))?)
        }
        ColumnType::Int8 => Param::I64(int("an integer (bigint)")?),
        ColumnType::Float4 | ColumnType::Float8 => {
            let Some(f) = value.as_f64() else {
                return Err(mismatch("a number"));
            };
            if ty == ColumnType::Float4 {
                Param::F32(f as f32)
            } else {
                Param::F64(f)
            }
        }
        ColumnType::Numeric => match value {
            Value::Number(n) => Param::Text(Cow::Owned(n.to_string())),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => Param::Text(Cow::Borrowed(s)),
            Value::String(s) => return Err(format!("expected a number for numeric, found {s:?}")),
            _ => return Err(mismatch("a number (numeric)")),
        },
        ColumnType::Text => match value {
            Value::String(s) => Param::Text(Cow::Borrowed(s)),
            Value::Number(_) | Value::Bool(_) => Param::Text(Cow::Owned(value.to_string())),
            _ => {
                return Err(format!(
                    "expected a string, found {} (objects and arrays go into json or jsonb columns)",
                    kind(value)
                ));
            }
        },
        ColumnType::Json | ColumnType::Jsonb => Param::Json(Cow::Borrowed(value)),
        ColumnType::Timestamptz => {
            let Value::String(s) = value else {
                return Err(mismatch("an RFC 3339 timestamp string"));
            };
            Param::Timestamptz(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|e| format!("expected an RFC 3339 timestamp, found {s:?} ({e})"))?,
            )
        }
        ColumnType::Timestamp => {
            let Value::String(s) = value else {
                return Err(mismatch("a timestamp string"));
            };
            Param::Timestamp(parse_naive(s).ok_or_else(|| {
                format!("expected a timestamp like 2024-05-01T12:00:00, found {s:?}")
            })?)
        }
        ColumnType::Date => {
            let Value::String(s) = value else {
                return Err(mismatch("a date string"));
            };
            Param::Date(
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("expected a date like 2024-05-01, found {s:?}"))?,
            )
        }
        ColumnType::Uuid => match value {
            Value::String(s) if is_uuid(s) => Param::Text(Cow::Borrowed(s)),
            Value::String(s) => return Err(format!("expected a UUID, found {s:?}")),
            _ => return Err(mismatch("a UUID string")),
        },
    })
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.naive_utc()))
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// `numeric` in its exact decimal text, decoded from the binary format.
struct NumericText(String);

impl<'a> FromSql<'a> for NumericText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let word = |i: usize| -> Result<u16, Box<dyn Error + Sync + Send>> {
            raw.get(i * 2..i * 2 + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "truncated numeric value".into())
        };
        let ndigits = usize::from(word(0)?);
        let weight = i64::from(word(1)? as i16);
        let sign = word(2)?;
        let dscale = usize::from(word(3)?);
        match sign {
            0xC000 => return Ok(NumericText("NaN".into())),
            0xD000 => return Ok(NumericText("Infinity".into())),
            0xF000 => return Ok(NumericText("-Infinity".into())),
            _ => {}
        }
        let digits = (0..ndigits)
            .map(|i| word(4 + i))
            .collect::<Result<Vec<u16>, _>>()?;
        let digit = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| digits.get(i).copied())
                .unwrap_or(0)
        };
        let mut text = String::new();
        if sign == 0x4000 {
            text.push('-');
        }
        if weight < 0 {
            text.push('0');
        } else {
            for i in 0..=weight {
                if i == 0 {
                    let _ = write!(text, "{}", digit(i));
                } else {
                    let _ = write!(text, "{:04}", digit(i));
                }
            }
        }
        if dscale > 0 {
            let mut fraction = String::new();
            let mut i = weight + 1;
            while fraction.len() < dscale {
                let _ = write!(fraction, "{:04}", digit(i));
                i += 1;
            }
            fraction.truncate(dscale);
            text.push('.');
            text.push_str(&fraction);
        }
        Ok(NumericText(text))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// `uuid` as its usual hyphenated text.
struct UuidText(String);

impl<'a> FromSql<'a> for UuidText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        if raw.len() != 16 {
            return Err("a uuid must be 16 bytes".into());
        }
        let mut text = String::with_capacity(36);
        for (i, b) in raw.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            let _ = write!(text, "{b:02x}");
        }
        Ok(UuidText(text))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::from("NaN"),
        None if f > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

fn numeric(text: String) -> Value {
    if !text.contains('.') {
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Value::from(n);
        }
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => float(f),
        _ => Value::String(text),
    }
}

/// Column `index` of `row` as JSON, read as `ty` (the column's type).
pub fn column_to_json(
    row: &Row,
    index: usize,
    ty: ColumnType,
) -> Result<Value, tokio_postgres::Error> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        index: usize,
        f: impl FnOnce(T) -> Value,
    ) -> Result<Value, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<T>>(index)?.map_or(Value::Null, f))
    }
    match ty {
        ColumnType::Bool => get(row, index, |v: bool| Value::Bool(v)),
        ColumnType::Int2 => get(row, index, |v: i16| Value::from(v)),
        ColumnType::Int4 => get(row, index, |v: i32| Value::from(v)),
        ColumnType::Int8 => get(row, index, |v: i64| Value::from(v)),
        ColumnType::Float4 => get(row, index, |v: f32| float(f64::from(v))),
        ColumnType::Float8 => get(row, index, float),
        ColumnType::Numeric => get(row, index, |v: NumericText| numeric(v.0)),
        ColumnType::Text => get(row, index, |v: String| Value::String(v)),
        ColumnType::Json | ColumnType::Jsonb => get(row, index, |v: Value| v),
        ColumnType::Timestamptz => get(row, index, |v: DateTime<Utc>| {
            Value::String(v.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }),
        ColumnType::Timestamp => get(row, index, |v: NaiveDateTime| {
            Value::String(v.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
        }),
        ColumnType::Date => get(row, index, |v: NaiveDate| {
            Value::String(v.format("%Y-%m-%d").to_string())
        }),
        ColumnType::Uuid => get(row, index, |v: UuidText| Value::String(v.0)),
    }
}

/// `name` quoted as an SQL identifier: `"my ""odd"" name"`.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table name, optionally schema-qualified (`schema.table`), quoted part
/// by part; `None` when it is empty or has more than two parts.
pub fn quote_table(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|p| quote_identifier(p))
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conversions_check_type_and_range() {
        assert_eq!(
            to_param(Some(&json!(7)), ColumnType::Int4),
            Ok(Param::I32(7))
        );
        assert_eq!(to_param(None, ColumnType::Int4), Ok(Param::Null));
        assert_eq!(
            to_param(Some(&Value::Null), ColumnType::Bool),
            Ok(Param::Null)
        );
        assert_eq!(
            to_param(Some(&json!(70000)), ColumnType::Int2).unwrap_err(),
            "70000 is out of range for smallint"
        );
        assert_eq!(
            to_param(Some(&json!("7")), ColumnType::Int8).unwrap_err(),
            "expected an integer (bigint), found a string"
        );
        assert_eq!(
            to_param(Some(&json!(1.5)), ColumnType::Int8).unwrap_err(),
            "expected an integer (bigint), found 1.5"
        );
        assert_eq!(
            to_param(Some(&json!(12)), ColumnType::Text),
            Ok(Param::Text("12".into()))
        );
        assert_eq!(
            to_param(Some(&json!(u64::MAX)), ColumnType::Int8).unwrap_err(),
            "18446744073709551615 is out of range for bigint"
        );
        assert!(to_param(Some(&json!({"a": 1})), ColumnType::Text).is_err());
        assert!(to_param(Some(&json!("abc")), ColumnType::Numeric).is_err());
        assert!(to_param(Some(&json!("1.25")), ColumnType::Numeric).is_ok());
        assert!(
            to_param(
                Some(&json!("2024-05-01T12:00:00+02:00")),
                ColumnType::Timestamptz
            )
            .is_ok()
        );
        assert!(to_param(Some(&json!("2024-05-01 12:00:00")), ColumnType::Timestamp).is_ok());
        assert!(to_param(Some(&json!("yesterday")), ColumnType::Date).is_err());
        assert!(to_param(Some(&json!("not-a-uuid")), ColumnType::Uuid).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("s.t").as_deref(), Some("\"s\".\"t\""));
        assert_eq!(quote_table("t").as_deref(), Some("\"t\""));
        assert_eq!(quote_table("a.b.c"), None);
        assert_eq!(quote_table(""), None);
    }

    #[test]
    fn numerics_become_integers_when_they_have_no_fraction() {
        assert_eq!(numeric("42".into()), json!(42));
        assert_eq!(numeric("-1.50".into()), json!(-1.5));
        assert_eq!(numeric("NaN".into()), json!("NaN"));
    }
}
