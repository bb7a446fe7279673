//! The jaq path: expressions compiled by jaq with jq's standard library
//! (jaq-std definitions and jaq-json functions), run on jaq's own values.
//!
//! Each record's payload is converted to jaq's value type and, for `map`,
//! back; those values never outlive one synchronous call, so nothing of
//! jaq is held across an `.await`.

use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Exn, Vars};
use jaq_json::{Num, Rc, Val};
use serde_json::{Number, Value};

type Data = JustLut<Val>;

/// Values nested deeper than this are refused rather than risking the
/// stack; serde_json's own parser stops at 128.
const MAX_DEPTH: usize = 512;

/// An expression compiled by jaq.
pub(crate) struct Jaq {
    filter: jaq_core::Filter<Data>,
}

impl Jaq {
    /// Compiles `expr`; the error is jaq's complaints, with positions.
    pub(crate) fn compile(expr: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: expr,
                    path: (),
                },
            )
            .map_err(|errors| load_errors(&errors))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| undefined_errors(&errors))?;
        Ok(Jaq { filter })
    }

    /// The outputs on a jaq value, lazily; an error is its message.
    pub(crate) fn outputs(&self, input: Val) -> impl Iterator<Item = Result<Val, String>> + '_ {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        self.filter
            .id
            .run((ctx, input))
            .map(|y| y.map_err(exception_message))
    }
}

/// jaq's exception as a message. `halt` must not end the daemon (jaq's own
/// `unwrap_valr` would exit the process), so it is an error like any other.
fn exception_message(e: Exn<'_, Val>) -> String {
    match e.get_err() {
        Ok(error) => error.to_string(),
        Err(e) => match e.get_halt() {
            Ok(code) => format!("halt with exit code {code}"),
            Err(_) => "unexpected control flow (a `break` without its `label`?)".to_owned(),
        },
    }
}

/// Where `part` (a slice of `whole`) starts, as "column 5" or "line 2,
/// column 3" (1-based, in characters).
fn position(whole: &str, part: &str) -> String {
    let offset = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .filter(|&o| o <= whole.len() && whole.is_char_boundary(o));
    let Some(offset) = offset else {
        return "in the standard library".to_owned();
    };
    let before = &whole[..offset];
    let column = before.rsplit('\n').next().unwrap_or(before).chars().count() + 1;
    match before.matches('\n').count() {
        0 => format!("at column {column}"),
        n => format!("at line {}, column {column}", n + 1),
    }
}

/// What was found instead: a token, or the end of the input.
fn found(part: &str) -> String {
    let token: String = part
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .take(16)
        .collect();
    if token.is_empty() {
        "the end of the expression".to_owned()
    } else {
        format!("`{token}`")
    }
}

fn load_errors(errors: &load::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (file, error) in errors {
        let code = file.code;
        match error {
            load::Error::Io(errs) => {
                for (path, e) in errs {
                    messages.push(format!("cannot load module {path:?}: {e}"));
                }
            }
            load::Error::Lex(errs) => {
                for (expect, rest) in errs {
                    let at = position(code, rest);
                    messages.push(match expect {
                        load::lex::Expect::Delim(open) => {
                            let close = match *open {
                                "(" => ")",
                                "[" => "]",
                                "{" => "}",
                                other => other,
                            };
                            format!(
                                "unclosed `{open}` {}: expected `{close}` {at}, found {}",
                                position(code, open),
                                found(rest)
                            )
                        }
                        load::lex::Expect::Token => format!("unexpected {} {at}", found(rest)),
                        other => format!("expected {} {at}, found {}", other.as_str(), found(rest)),
                    });
                }
            }
            load::Error::Parse(errs) => {
                for (expect, token) in errs {
                    messages.push(format!(
                        "expected {} {}, found {}",
                        expect.as_str(),
                        position(code, token),
                        found(token)
                    ));
                }
            }
        }
    }
    messages.join("; ")
}

fn undefined_errors(errors: &jaq_core::compile::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (file, errs) in errors {
        for (name, undefined) in errs {
            let at = position(file.code, name);
            let name = match undefined {
                jaq_core::compile::Undefined::Filter(arity) => format!("{name}/{arity}"),
                _ => (*name).to_owned(),
            };
            messages.push(format!("undefined {} `{name}` {at}", undefined.as_str()));
        }
    }
    messages.join("; ")
}

/// A JSON value as a jaq value, borrowing: strings are copied.
pub(crate) fn to_val(value: &Value, depth: usize) -> Result<Val, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the payload is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => number_to_val(n),
        Value::String(s) => Val::utf8_str(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(|v| to_val(v, depth + 1))
            .collect::<Result<Val, String>>()?,
        Value::Object(map) => Val::obj(
            map.iter()
                .map(|(k, v)| Ok((Val::utf8_str(k.clone()), to_val(v, depth + 1)?)))
                .collect::<Result<jaq_json::Map, String>>()?,
        ),
    })
}

/// A JSON value as a jaq value, consuming: strings move without copying.
pub(crate) fn into_val(value: Value, depth: usize) -> Result<Val, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the payload is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(b),
        Value::Number(n) => number_to_val(&n),
        Value::String(s) => Val::utf8_str(s),
        Value::Array(items) => items
            .into_iter()
            .map(|v| into_val(v, depth + 1))
            .collect::<Result<Val, String>>()?,
        Value::Object(map) => Val::obj(
            map.into_iter()
                .map(|(k, v)| Ok((Val::utf8_str(k), into_val(v, depth + 1)?)))
                .collect::<Result<jaq_json::Map, String>>()?,
        ),
    })
}

fn number_to_val(n: &Number) -> Val {
    if let Some(i) = n.as_i64() {
        Val::Num(Num::from_integral(i))
    } else if let Some(u) = n.as_u64() {
        Val::Num(Num::from_integral(u))
    } else {
        // Kept as its text (serde_json's `arbitrary_precision`): a number
        // jq does not compute with comes out exactly as it came in
        // (`2.50`, an integer beyond 64 bits); arithmetic reads it as f64.
        Val::Num(Num::Dec(Rc::new(n.to_string())))
    }
}

/// A jaq value as a JSON value, consuming: unshared strings, arrays and
/// objects are moved rather than copied.
pub(crate) fn into_json(value: Val, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the output is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(b),
        Val::Num(n) => num_to_json(&n)?,
        Val::TStr(b) | Val::BStr(b) => Value::String(bytes_to_string(*b)),
        Val::Arr(items) => Value::Array(
            Rc::unwrap_or_clone(items)
                .into_iter()
                .map(|v| into_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Val::Obj(map) => Value::Object(
            Rc::unwrap_or_clone(map)
                .into_iter()
                .map(|(k, v)| Ok((key_to_string(k)?, into_json(v, depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// jaq's string bytes as a `String`, reusing the buffer when unshared.
fn bytes_to_string(bytes: impl Into<Vec<u8>>) -> String {
    String::from_utf8(bytes.into())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn key_to_string(key: Val) -> Result<String, String> {
    match key {
        Val::TStr(b) | Val::BStr(b) => Ok(bytes_to_string(*b)),
        other => Err(format!(
            "object key {other} is not a string, which JSON requires"
        )),
    }
}

/// jq's numbers as JSON: NaN becomes `null` and infinities the largest
/// finite numbers, as jq prints them.
fn num_to_json(n: &Num) -> Result<Value, String> {
    let float = |f: f64| {
        if f.is_nan() {
            Value::Null
        } else {
            Number::from_f64(f.clamp(f64::MIN, f64::MAX)).map_or(Value::Null, Value::Number)
        }
    };
    // serde_json keeps a number's text (`arbitrary_precision`): big
    // integers and decimals come out digit for digit.
    let text = |s: &str| {
        s.parse::<Number>()
            .map(Value::Number)
            .map_err(|_| format!("{s} is not a number"))
    };
    match n {
        Num::Int(i) => Ok(Value::from(*i)),
        Num::Float(f) => Ok(float(*f)),
        Num::BigInt(b) => text(&b.to_string()),
        Num::Dec(s) => text(s),
    }
}
