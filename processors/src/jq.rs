//! jq expressions (through jaq): the `filter` and `map` processors, and the
//! compiled [`JqProgram`] that `group_by` also uses for its keys.
//!
//! A program is compiled once, when the config loads, with jq's standard
//! library (jaq-std definitions and jaq-json functions). jaq works on its
//! own value type, so each record's payload is converted to it and, for
//! `map`, back; those values never outlive one synchronous call, so nothing
//! of jaq is held across an `.await`.

use std::fmt;

use jaq_core::ValT as _;
use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Exn, Vars};
use jaq_json::{Num, Rc, Val};
use serde::Deserialize;
use serde_json::{Number, Value};

type Data = JustLut<Val>;

/// Values nested deeper than this are refused rather than risking the
/// stack; serde_json's own parser stops at 128.
const MAX_DEPTH: usize = 512;

/// Options of the `filter` and `map` processors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JqOptions {
    /// The jq expression.
    pub expr: String,
}

/// A jq expression that failed to compile or to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JqError {
    /// The expression does not compile.
    #[error("cannot compile jq expression `{expr}`: {message}")]
    Compile {
        /// The expression.
        expr: String,
        /// jaq's complaints, with their positions.
        message: String,
    },
    /// The expression failed on an input.
    #[error("jq expression `{expr}` failed: {message}")]
    Run {
        /// The expression.
        expr: String,
        /// jaq's error.
        message: String,
    },
}

/// A compiled jq expression.
///
/// ```
/// use databay_processors::JqProgram;
/// use serde_json::json;
///
/// let jq = JqProgram::compile(".items[] | .id").unwrap();
/// let ids = jq.run(&json!({"items": [{"id": 1}, {"id": 2}]})).unwrap();
/// assert_eq!(ids, vec![json!(1), json!(2)]);
/// ```
pub struct JqProgram {
    expr: String,
    filter: jaq_core::Filter<Data>,
}

impl JqProgram {
    /// Compiles `expr` with jq's standard library.
    pub fn compile(expr: &str) -> Result<Self, JqError> {
        let compile_error = |message| JqError::Compile {
            expr: expr.to_owned(),
            message,
        };
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
            .map_err(|errors| compile_error(load_errors(&errors)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| compile_error(undefined_errors(&errors)))?;
        Ok(JqProgram {
            expr: expr.to_owned(),
            filter,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// Every output of the expression on `input`.
    pub fn run(&self, input: &Value) -> Result<Vec<Value>, JqError> {
        let input = to_val(input, 0).map_err(|m| self.run_error(m))?;
        self.outputs(input)
            .map(|y| y.and_then(|v| into_json(v, 0).map_err(|m| self.run_error(m))))
            .collect()
    }

    /// The first output of the expression on `input`, if any.
    pub fn first(&self, input: &Value) -> Result<Option<Value>, JqError> {
        let input = to_val(input, 0).map_err(|m| self.run_error(m))?;
        match self.outputs(input).next() {
            None => Ok(None),
            Some(y) => y
                .and_then(|v| into_json(v, 0).map_err(|m| self.run_error(m)))
                .map(Some),
        }
    }

    /// Whether the first output on `input` is truthy (neither `false` nor
    /// `null`); `false` when there is no output.
    pub fn test(&self, input: &Value) -> Result<bool, JqError> {
        let input = to_val(input, 0).map_err(|m| self.run_error(m))?;
        match self.outputs(input).next() {
            None => Ok(false),
            Some(y) => y.map(|v| v.as_bool()),
        }
    }

    /// The outputs on a jaq value, lazily.
    pub(crate) fn outputs(&self, input: Val) -> impl Iterator<Item = Result<Val, JqError>> + '_ {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        self.filter
            .id
            .run((ctx, input))
            .map(move |y| y.map_err(|e| self.run_error(exception_message(e))))
    }

    pub(crate) fn run_error(&self, message: String) -> JqError {
        JqError::Run {
            expr: self.expr.clone(),
            message,
        }
    }
}

impl fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JqProgram({:?})", self.expr)
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
fn to_val(value: &Value, depth: usize) -> Result<Val, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{build_processor, payloads, processor_error, run};
    use crate::{JqFilter, JqMap};
    use databay_core::Record;
    use serde_json::json;

    fn jq(expr: &str, input: Value) -> Vec<Value> {
        JqProgram::compile(expr).unwrap().run(&input).unwrap()
    }

    #[test]
    fn numbers_jq_does_not_compute_with_come_out_as_written() {
        let input: Value =
            serde_json::from_str(r#"{"id":18446744073709551617,"amount":2.50,"n":3}"#).unwrap();
        let out = jq("{id, amount, n: (.n + 1)}", input);
        assert_eq!(
            out[0].to_string(),
            r#"{"id":18446744073709551617,"amount":2.50,"n":4}"#
        );
        let sum = jq(
            ".amount + 1",
            serde_json::from_str(r#"{"amount":2.50}"#).unwrap(),
        );
        assert_eq!(sum[0].as_f64(), Some(3.5));
    }

    #[test]
    fn standard_library_is_available() {
        let input = json!({"user": "U1", "amount": 12.5, "tags": [1, 2], "x": null});
        assert_eq!(
            jq(".user | ascii_downcase", input.clone()),
            vec![json!("u1")]
        );
        assert_eq!(jq(".tags | length", input.clone()), vec![json!(2)]);
        assert_eq!(jq(".amount | tostring", input.clone()), vec![json!("12.5")]);
        assert_eq!(
            jq(".tags | map(. * 10)", input.clone()),
            vec![json!([10, 20])]
        );
        assert_eq!(
            jq("[has(\"x\"), has(\"y\")]", input.clone()),
            vec![json!([true, false])]
        );
        assert_eq!(
            jq("keys", input.clone()),
            vec![json!(["amount", "tags", "user", "x"])]
        );
        assert_eq!(jq(".user | test(\"^U\")", input.clone()), vec![json!(true)]);
        assert_eq!(jq("to_entries | length", input.clone()), vec![json!(4)]);
        assert_eq!(jq(".tags | add", input), vec![json!(3)]);
    }

    #[test]
    fn values_round_trip() {
        let input = json!({
            "null": null, "t": true, "i": -7, "u": u64::MAX, "f": 0.25, "big": 1e300,
            "s": "héllo", "a": [1, [2, {"b": "c"}]], "o": {"k": {}}
        });
        assert_eq!(jq(".", input.clone()), vec![input]);
        assert_eq!(jq("1.5 + 1", json!(null)), vec![json!(2.5)]);
        // A big integer literal stays exact, not 1e23.
        assert_eq!(
            jq("100000000000000000000000", json!(null))[0].to_string(),
            "100000000000000000000000"
        );
        assert_eq!(jq("nan", json!(null)), vec![json!(null)]);
        assert_eq!(jq("infinite", json!(null)), vec![json!(f64::MAX)]);
        assert_eq!(jq("-infinite", json!(null)), vec![json!(f64::MIN)]);
        assert_eq!(
            jq("9007199254740993", json!(null)),
            vec![json!(9007199254740993u64)]
        );
    }

    #[test]
    fn non_string_keys_and_deep_values_are_errors_not_panics() {
        let program = JqProgram::compile("{(1): 2}").unwrap();
        assert!(program.run(&json!(null)).is_err());
        let deep = JqProgram::compile("reduce range(600) as $i (0; [.])").unwrap();
        let e = deep.run(&json!(null)).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 512"), "{e}");
        let halt = JqProgram::compile("halt").unwrap();
        let e = halt.run(&json!(null)).unwrap_err().to_string();
        assert!(e.contains("halt with exit code 0"), "{e}");
    }

    #[test]
    fn compile_errors_name_the_expression_and_position() {
        let e = JqFilter::new(".amount >").unwrap_err().to_string();
        assert_eq!(
            e,
            "option `expr`: cannot compile jq expression `.amount >`: expected term at column 10, found the end of the expression"
        );
        let e = JqMap::new(".a | nosuchfn(1)").unwrap_err().to_string();
        assert_eq!(
            e,
            "option `expr`: cannot compile jq expression `.a | nosuchfn(1)`: undefined filter `nosuchfn/1` at column 6"
        );
        let e = JqMap::new("[.a,\n .b)").unwrap_err().to_string();
        assert!(e.contains("at line 2, column"), "{e}");
        let e = JqMap::new("(.a").unwrap_err().to_string();
        assert!(
            e.ends_with("unclosed `(` at column 1: expected `)` at column 4, found the end of the expression"),
            "{e}"
        );
        let e = JqMap::new("$x").unwrap_err().to_string();
        assert!(e.contains("undefined variable `$x` at column 1"), "{e}");
        let e = JqMap::new(".a § .b").unwrap_err().to_string();
        assert!(e.ends_with("unexpected `§` at column 4"), "{e}");
    }

    #[test]
    fn options_reject_unknown_fields() {
        let e = toml::from_str::<JqOptions>("expr = \".\"\nexpression = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `expression`"), "{e}");
        let e = toml::from_str::<JqOptions>("").unwrap_err().to_string();
        assert!(e.contains("missing field `expr`"), "{e}");
    }

    #[tokio::test]
    async fn build_through_the_registry() {
        let mut f = build_processor("filter", "expr = \".a == 1\"").unwrap();
        let out = run(
            &mut f,
            vec![Record::new(json!({"a": 1})), Record::new(json!({"a": 2}))],
        )
        .await;
        assert_eq!(payloads(&out.unwrap()), vec![json!({"a": 1})]);
        let mut m = build_processor("map", "expr = \".a\"").unwrap();
        let out = run(&mut m, vec![Record::new(json!({"a": 1}))]).await;
        assert_eq!(payloads(&out.unwrap()), vec![json!(1)]);
        let e = processor_error("map", "expr = \".a |\"");
        assert!(
            e.contains("option `expr`: cannot compile jq expression `.a |`"),
            "{e}"
        );
    }
}
