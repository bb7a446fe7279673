//! Rows in the format `COPY ... FROM STDIN (FORMAT binary)` reads: the
//! bulk path into a table, each value in its column's own binary form.
//!
//! ```
//! use databay_component::postgres::{BinaryCopy, ColumnType, Param};
//!
//! let mut copy = BinaryCopy::new();
//! copy.row(&[Param::I64(7), Param::Null], &[ColumnType::Int8, ColumnType::Text])
//!     .unwrap();
//! // `numeric` goes in its binary form too: an out-of-range one leaves
//! // its row out, naming the column.
//! let refused = copy.row(
//!     &[Param::I64(8), Param::Text("1e200000".into())],
//!     &[ColumnType::Int8, ColumnType::Numeric],
//! );
//! assert_eq!(refused.unwrap_err().0, 1);
//! assert_eq!((copy.rows(), copy.value_bytes()), (1, 8));
//! let stream = copy.finish();
//! assert!(stream.starts_with(b"PGCOPY\n\xff\r\n\0"));
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::value::{ColumnType, Param};

/// The signature, flags and header extension length of a binary COPY.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// PostgreSQL's `numeric` limits: digits before and after the point.
const NUMERIC_MAX_WEIGHT_DIGITS: i64 = 131_072;
const NUMERIC_MAX_SCALE: i64 = 0x3FFF;

/// Rows encoded for `COPY table (columns) FROM STDIN (FORMAT binary)`,
/// taken in pieces ([`take`](Self::take)) while more rows are added, so
/// the server reads while the rest is encoded.
#[derive(Debug)]
pub struct BinaryCopy {
    buf: BytesMut,
    rows: u64,
    value_bytes: u64,
}

impl Default for BinaryCopy {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryCopy {
    /// An empty stream (its header written).
    pub fn new() -> Self {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(HEADER);
        BinaryCopy {
            buf,
            rows: 0,
            value_bytes: 0,
        }
    }

    /// Adds one row, `params[i]` for a column of type `types[i]`. A value
    /// that cannot be sent (a `numeric` beyond PostgreSQL's range) leaves
    /// the row out: the column's index and why.
    pub fn row(
        &mut self,
        params: &[Param<'_>],
        types: &[ColumnType],
    ) -> Result<(), (usize, String)> {
        let start = self.buf.len();
        let mut size = 0;
        // A column count beyond i16 is refused by the server's own limit
        // (1600 columns) long before.
        self.buf
            .put_i16(i16::try_from(params.len()).unwrap_or(i16::MAX));
        for (i, (param, ty)) in params.iter().zip(types).enumerate() {
            let at = self.buf.len();
            self.buf.put_i32(0);
            match encode(param, *ty, &mut self.buf) {
                Ok(IsNull::Yes) => {
                    self.buf.truncate(at);
                    self.buf.put_i32(-1);
                }
                Ok(IsNull::No) => {
                    let n = self.buf.len() - at - 4;
                    let Ok(length) = i32::try_from(n) else {
                        self.buf.truncate(start);
                        return Err((
                            i,
                            format!("the value is {n} bytes, more than a field holds"),
                        ));
                    };
                    self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
                    size += n as u64;
                }
                Err(message) => {
                    self.buf.truncate(start);
                    return Err((i, message));
                }
            }
        }
        self.rows += 1;
        self.value_bytes += size;
        Ok(())
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The bytes of the values added (not of lengths and headers): what a
    /// connector counts as sent.
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    /// Bytes encoded and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// What was encoded since the last take, to send.
    pub fn take(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// The rest of the stream, with its trailer.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

/// `param` in the binary form of a column of type `ty`.
fn encode(param: &Param<'_>, ty: ColumnType, out: &mut BytesMut) -> Result<IsNull, String> {
    match (param, ty) {
        // INSERTs send these as text for the server to cast; COPY cannot cast.
        (Param::Text(text), ColumnType::Numeric) => {
            numeric(text, out)?;
            Ok(IsNull::No)
        }
        (Param::Text(text), ColumnType::Uuid) => {
            uuid(text, out)?;
            Ok(IsNull::No)
        }
        _ => param
            .to_sql(&pg_type(ty), out)
            .map_err(|e| format!("cannot be encoded for the column: {e}")),
    }
}

/// The type a column of `ty` is written as (its binary form: `varchar`,
/// `char` and `name` share `text`'s).
fn pg_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Bool => Type::BOOL,
        ColumnType::Int2 => Type::INT2,
        ColumnType::Int4 => Type::INT4,
        ColumnType::Int8 => Type::INT8,
        ColumnType::Float4 => Type::FLOAT4,
        ColumnType::Float8 => Type::FLOAT8,
        ColumnType::Numeric => Type::NUMERIC,
        ColumnType::Json => Type::JSON,
        ColumnType::Jsonb => Type::JSONB,
        ColumnType::Timestamptz => Type::TIMESTAMPTZ,
        ColumnType::Timestamp => Type::TIMESTAMP,
        ColumnType::Date => Type::DATE,
        ColumnType::Uuid => Type::UUID,
        ColumnType::Text => Type::TEXT,
    }
}

/// A UUID's 16 bytes from its text (hyphens and braces allowed, as the
/// outlet's conversion checked).
fn uuid(text: &str, out: &mut BytesMut) -> Result<(), String> {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'-' | b'{' | b'}'))
        .collect();
    let nibble = |b: u8| (b as char).to_digit(16);
    if hex.len() != 32 {
        return Err(format!("expected a UUID, found {text:?}"));
    }
    for pair in hex.chunks(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out.put_u8((hi * 16 + lo) as u8),
            _ => return Err(format!("expected a UUID, found {text:?}")),
        }
    }
    Ok(())
}

/// A decimal number's text (`12.50`, `-1.5e-7`, `NaN`, `Infinity`) in
/// `numeric`'s binary form: base-10000 digits, the weight of the first,
/// the sign, and the scale the text shows (so `12.50` stays `12.50`).
fn numeric(text: &str, out: &mut BytesMut) -> Result<(), String> {
    let bad = || format!("expected a number for numeric, found {text:?}");
    let s = text.trim();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let header = |out: &mut BytesMut, ndigits: i16, weight: i16, sign: u16, dscale: u16| {
        out.put_i16(ndigits);
        out.put_i16(weight);
        out.put_u16(sign);
        out.put_u16(dscale);
    };
    if rest.eq_ignore_ascii_case("nan") {
        header(out, 0, 0, 0xC000, 0);
        return Ok(());
    }
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        header(out, 0, 0, if negative { 0xF000 } else { 0xD000 }, 0);
        return Ok(());
    }
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let out_of_range = || format!("{text} is out of range for numeric");
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| out_of_range())?;
    let int_len = i64::try_from(int_part.len()).map_err(|_| out_of_range())?;
    let dscale = frac_len.saturating_sub(exponent).max(0);
    // Digits before the decimal point, leading zeros of the text included.
    let point = int_len.saturating_add(exponent);
    let significant = int_part
        .bytes()
        .chain(frac_part.bytes())
        .position(|b| b != b'0');
    let Some(first) = significant else {
        // Zero: no digits, only its scale.
        let dscale = u16::try_from(dscale.min(NUMERIC_MAX_SCALE)).unwrap_or(0);
        header(out, 0, 0, 0, dscale);
        return Ok(());
    };
    if dscale > NUMERIC_MAX_SCALE || point - first as i64 > NUMERIC_MAX_WEIGHT_DIGITS {
        return Err(out_of_range());
    }
    // Decimal digits, padded on the left so the point falls on a group
    // boundary and on the right to whole groups (and to the point).
    let pad_left = (4 - point.rem_euclid(4)) % 4;
    let point = point + pad_left;
    let mut digits: Vec<u8> = std::iter::repeat_n(0, pad_left as usize)
        .chain(int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0'))
        .collect();
    let len = digits.len().max(usize::try_from(point).unwrap_or(0));
    digits.resize(len.div_ceil(4) * 4, 0);
    let mut groups: Vec<i16> = digits
        .chunks(4)
        .map(|g| g.iter().fold(0i16, |n, d| n * 10 + i16::from(*d)))
        .collect();
    let mut weight = point / 4 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let weight = i16::try_from(weight).map_err(|_| out_of_range())?;
    let ndigits = i16::try_from(groups.len()).map_err(|_| out_of_range())?;
    header(
        out,
        ndigits,
        weight,
        if negative { 0x4000 } else { 0 },
        u16::try_from(dscale).map_err(|_| out_of_range())?,
    );
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<i32> {
        let mut out = BytesMut::new();
        numeric(text, &mut out).unwrap_or_else(|e| panic!("{text}: {e}"));
        out.chunks(2)
            .enumerate()
            .map(|(i, w)| {
                let v = u16::from_be_bytes([w[0], w[1]]);
                // The sign word is unsigned; the others signed.
                if i == 2 {
                    i32::from(v)
                } else {
                    i32::from(v as i16)
                }
            })
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_groups_with_weight_sign_and_scale() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(words("12.50"), [2, 0, 0, 2, 12, 5000]);
        assert_eq!(words("-0.0001"), [1, -1, 0x4000, 4, 1]);
        assert_eq!(words("1e5"), [1, 1, 0, 0, 10]);
        assert_eq!(words("1E+5"), [1, 1, 0, 0, 10]);
        assert_eq!(words("1.5e-7"), [1, -2, 0, 8, 15]);
        assert_eq!(words("1e-10"), [1, -3, 0, 10, 100]);
        assert_eq!(
            words("123456789.123456789"),
            [6, 2, 0, 9, 1, 2345, 6789, 1234, 5678, 9000]
        );
        assert_eq!(words("0"), [0, 0, 0, 0]);
        assert_eq!(words("-0.00"), [0, 0, 0, 2]);
        assert_eq!(words(" 007 "), [1, 0, 0, 0, 7]);
        assert_eq!(words(".5"), [1, -1, 0, 1, 5000]);
        assert_eq!(words("5."), [1, 0, 0, 0, 5]);
        assert_eq!(words("10000"), [1, 1, 0, 0, 1]);
        assert_eq!(words("NaN"), [0, 0, 0xC000, 0]);
        assert_eq!(words("-Infinity"), [0, 0, 0xF000, 0]);
    }

    #[test]
    fn what_is_not_a_numeric_or_beyond_its_range_is_refused() {
        for text in ["", "-", ".", "1.2.3", "1e", "abc", "1e5.5", "0x10"] {
            let mut out = BytesMut::new();
            assert!(numeric(text, &mut out).is_err(), "{text:?}");
        }
        for text in ["1e200000", "1e-20000", "1e99999999999999999999"] {
            let mut out = BytesMut::new();
            let e = numeric(text, &mut out).unwrap_err();
            assert!(
                e.contains("out of range") || e.contains("expected a number"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn uuids_are_16_bytes() {
        let mut out = BytesMut::new();
        uuid("{0123abcd-4567-89ef-0123-456789ABCDEF}", &mut out).unwrap();
        assert_eq!(
            &out[..],
            [
                0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                0xcd, 0xef
            ]
        );
    }
}
