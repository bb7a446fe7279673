//! JSON <-> MySQL values, and identifier quoting.

use mysql_async::Value as My;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Row};
use serde_json::{Map, Number, Value};

/// The binary character set: the column holds bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// `name` as a quoted identifier: `` `name` ``, backticks doubled.
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A table name, `name` or `database.name`, quoted part by part.
pub fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_identifier)
        .collect::<Vec<_>>()
        .join(".")
}

/// The bytes a value takes in MySQL's binary protocol, without the length
/// prefix of a string: a string or blob its length, an integer or a
/// `DOUBLE` 8, a `FLOAT` 4, a date or time 0 to 12, `NULL` none. What the
/// connectors count as bytes read and written.
///
/// ```
/// use databay_component::mysql::{mysql_async::Value, value_size};
///
/// assert_eq!(value_size(&Value::Bytes(b"abc".to_vec())), 3);
/// assert_eq!(value_size(&Value::Int(7)), 8);
/// assert_eq!(value_size(&Value::NULL), 0);
/// ```
pub fn value_size(value: &My) -> u64 {
    match value {
        My::Bytes(bytes) => bytes.len() as u64,
        // The binary protocol's length byte of a date or time is not data.
        My::Date(..) | My::Time(..) => value.bin_len() - 1,
        other => other.bin_len(),
    }
}

/// A row as a JSON object of column name to value (see [`column_to_json`]).
pub fn row_to_json(row: &Row) -> Result<Map<String, Value>, String> {
    let mut object = Map::with_capacity(row.len());
    for (i, column) in row.columns_ref().iter().enumerate() {
        let value = row.as_ref(i).unwrap_or(&My::NULL);
        object.insert(
            column.name_str().into_owned(),
            column_to_json(column, value)?,
        );
    }
    Ok(object)
}

/// One value of a result column as JSON: integers and floats as numbers,
/// `DECIMAL` as an exact number, a MySQL `JSON` column parsed, text as a
/// string, `DATE` as `2024-05-01`, `DATETIME`/`TIMESTAMP` as
/// `2024-05-01T12:00:00[.ffffff]` (no zone), `TIME` as `[-]HH:MM:SS`,
/// `BIT` as a number, NULL as null. Binary data is refused, naming the
/// column, rather than guessed at.
pub fn column_to_json(column: &Column, value: &My) -> Result<Value, String> {
    let name = column.name_str();
    let ty = column.column_type();
    Ok(match value {
        My::NULL => Value::Null,
        My::Int(i) => Value::from(*i),
        My::UInt(u) => Value::from(*u),
        // Through its shortest text, so 0.1f32 stays 0.1.
        My::Float(f) => finite(&name, f64::from(*f), &f.to_string())?,
        My::Double(d) => finite(&name, *d, &d.to_string())?,
        My::Date(y, m, d, h, i, s, us) => {
            if ty == ColumnType::MYSQL_TYPE_DATE {
                Value::String(format!("{y:04}-{m:02}-{d:02}"))
            } else {
                let mut text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{i:02}:{s:02}");
                if *us > 0 {
                    text.push_str(&format!(".{us:06}"));
                }
                Value::String(text)
            }
        }
        My::Time(negative, days, h, i, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let mut text = format!(
                "{}{hours:02}:{i:02}:{s:02}",
                if *negative { "-" } else { "" }
            );
            if *us > 0 {
                text.push_str(&format!(".{us:06}"));
            }
            Value::String(text)
        }
        My::Bytes(bytes) => match ty {
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                text.parse::<Number>()
                    .map(Value::Number)
                    .map_err(|_| format!("column `{name}`: `{text}` is not a decimal number"))?
            }
            ColumnType::MYSQL_TYPE_JSON => serde_json::from_slice(bytes)
                .map_err(|e| format!("column `{name}`: not JSON: {e}"))?,
            ColumnType::MYSQL_TYPE_BIT => {
                Value::from(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
            _ if column.character_set() == BINARY_CHARSET
                && !column.flags().contains(ColumnFlags::ENUM_FLAG) =>
            {
                return Err(format!(
                    "column `{name}` holds binary data, which has no JSON form; select \
                     HEX({name}) or TO_BASE64({name}) instead"
                ));
            }
            _ => match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => {
                    return Err(format!(
                        "column `{name}` is not valid UTF-8 (select it CONVERT(... USING utf8mb4))"
                    ));
                }
            },
        },
    })
}

fn finite(name: &str, f: f64, text: &str) -> Result<Value, String> {
    if !f.is_finite() {
        return Err(format!("column `{name}`: {f} has no JSON form"));
    }
    Ok(text
        .parse::<Number>()
        .ok()
        .or_else(|| Number::from_f64(f))
        .map_or(Value::Null, Value::Number))
}

/// A statement parameter from a JSON value (`None`: the payload has no
/// such field): null as NULL, booleans as 1/0, integers as integers,
/// other numbers as their exact text (the server converts it to the
/// column's type, so `DECIMAL` keeps every digit), strings as text, and
/// arrays and objects as their JSON text (for `JSON` or text columns).
pub fn to_value(value: Option<&Value>) -> My {
    match value {
        None | Some(Value::Null) => My::NULL,
        Some(Value::Bool(b)) => My::Int(i64::from(*b)),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                My::Int(i)
            } else if let Some(u) = n.as_u64() {
                My::UInt(u)
            } else {
                My::Bytes(n.to_string().into_bytes())
            }
        }
        Some(Value::String(s)) => My::Bytes(s.clone().into_bytes()),
        Some(other) => My::Bytes(other.to_string().into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_are_quoted_with_backticks() {
        assert_eq!(quote_identifier("a`b"), "`a``b`");
        assert_eq!(quote_table("shop.orders"), "`shop`.`orders`");
    }

    #[test]
    fn parameters_keep_their_values() {
        assert_eq!(to_value(Some(&json!(true))), My::Int(1));
        assert_eq!(to_value(Some(&json!(u64::MAX))), My::UInt(u64::MAX));
        assert_eq!(to_value(Some(&json!(-3))), My::Int(-3));
        let decimal: Value = serde_json::from_str("12.50").unwrap();
        assert_eq!(to_value(Some(&decimal)), My::Bytes(b"12.50".to_vec()));
        assert_eq!(
            to_value(Some(&json!({"a": 1}))),
            My::Bytes(br#"{"a":1}"#.to_vec())
        );
        assert_eq!(to_value(None), My::NULL);
    }
}
