//! The fast path against jaq: a corpus of (expression, input) cases over
//! every construct of the subset, each run both ways and compared output
//! by output (as JSON text, so number digits and key order count), errors
//! at the same position; the same expressions on random inputs; and
//! expressions outside the subset, which must stay on jaq.

use serde_json::Value;

use super::fast::Stop;
use super::{JqProgram, jaq};

/// (expression, input as JSON text).
const CASES: &[(&str, &str)] = &[
    // Paths.
    (".", r#"{"a":1,"b":[1,2.50,"x"],"c":{"d":null}}"#),
    (".a", r#"{"a":1}"#),
    (".a", r#"{"b":1}"#),
    (".a", "null"),
    (".a", "5"),
    (".a", "[1]"),
    (".a", r#""s""#),
    (".a", "true"),
    (".a.b", r#"{"a":{"b":"x"}}"#),
    (".a.b", r#"{"a":null}"#),
    (".a.b", r#"{"a":1}"#),
    (".a.b.c", r#"{"a":{"b":{"c":[1]}}}"#),
    (r#".["a"]"#, r#"{"a":2}"#),
    (r#".["a b"]"#, r#"{"a b":3}"#),
    (r#"."a""#, r#"{"a":4}"#),
    (".[0]", "[10,20]"),
    (".[-1]", "[10,20]"),
    (".[5]", "[1]"),
    (".[-5]", "[1]"),
    (".[0]", r#"{"a":1}"#),
    (".[0]", "null"),
    (".[0]", r#""abc""#),
    (".[0]", "1.5"),
    (".a?", "5"),
    (".a?", r#"{"a":1}"#),
    (".a?.b", "[1]"),
    (".a.b?", r#"{"a":5}"#),
    (".a?.b", r#"{"a":5}"#),
    (".a[0]", r#"{"a":[7]}"#),
    (".a[1].b", r#"{"a":[{"b":1},{"b":2}]}"#),
    (".a[0]?", r#"{"a":"x"}"#),
    // Pipes, commas, empty.
    (".a | .b", r#"{"a":{"b":true}}"#),
    (".a, .b", r#"{"a":1,"b":2}"#),
    (".a, .b, .c", r#"{"a":1,"c":3}"#),
    ("(.a, .b) | . + 1", r#"{"a":1,"b":2}"#),
    (".a, .x.y", r#"{"a":1,"x":3}"#),
    (".a, (.b | .c), .a", r#"{"a":1,"b":"s"}"#),
    ("empty", "1"),
    ("1, empty, 2", "null"),
    (". | . | .", "[1]"),
    // Literals.
    ("1", "null"),
    ("-1", "null"),
    ("007", "null"),
    ("1.0", "null"),
    ("1.50", "null"),
    ("1e3", "null"),
    ("1E+3", "null"),
    ("0.1", "null"),
    ("-0", "null"),
    ("-1.50", "null"),
    ("- -1.50", "null"),
    ("9223372036854775807", "null"),
    ("-9223372036854775807", "null"),
    (r#""str""#, "null"),
    (r#""a\nb\u00e9\"\\""#, "null"),
    ("true, false, null", "1"),
    // Numbers: integers stay integers, the rest is floats.
    (".a + 1", r#"{"a":1}"#),
    (".a + 1", r#"{"a":2.50}"#),
    (".a + .b", r#"{"a":1.5,"b":2.5}"#),
    (".a * 100", r#"{"a":12.34}"#),
    (".a * 100 | round", r#"{"a":12.34}"#),
    (".a * 100 | round", r#"{"a":12}"#),
    ("10 / 4", "null"),
    ("10 / 2", "null"),
    ("1 / 3", "null"),
    ("10 % 3", "null"),
    ("-10 % 3", "null"),
    ("10 % -3", "null"),
    ("5.5 % 2", "null"),
    ("5 % 0", "null"),
    ("5.0 % 0", "null"),
    ("1 / 0", "null"),
    ("-1 / 0", "null"),
    ("0 / 0", "null"),
    ("0.1 + 0.2", "null"),
    ("3 - 5", "null"),
    ("3 - 5.5", "null"),
    ("2 * 3", "null"),
    ("2 * 1.5", "null"),
    ("1.0 + 1", "null"),
    (".a * 1", r#"{"a":1.0}"#),
    (".a + 0", r#"{"a":1e2}"#),
    (".a + 0", r#"{"a":18446744073709551617}"#),
    (".a", r#"{"a":18446744073709551617}"#),
    (".", r#"{"a":-0,"b":-0.0}"#),
    (".a", r#"{"a":1e1000}"#),
    (".a + 1", r#"{"a":1e1000}"#),
    ("9223372036854775807 + 1", "null"),
    ("-9223372036854775807 - 1", "null"),
    ("1e17 * 10", "null"),
    ("1e-7 * 1", "null"),
    ("1.5 | round", "null"),
    ("2.5 | round", "null"),
    ("-2.5 | round", "null"),
    ("1.5 | floor", "null"),
    ("-1.5 | ceil", "null"),
    ("5 | round", "null"),
    (".a | floor", r#"{"a":2.50}"#),
    ("(1 / 0) | round", "null"),
    ("round", r#""x""#),
    ("null | ceil", "null"),
    (".a - 1", r#"{"a":"x"}"#),
    (r#""a" + 1"#, "null"),
    (r#"1 + "a""#, "null"),
    ("null + 1", "null"),
    ("1 + null", "null"),
    ("null + null", "null"),
    (r#""a" + "b""#, "null"),
    ("[1] + [2, 3]", "null"),
    ("{a: 1} + {b: 2}", "null"),
    ("{a: 1, c: 0} + {a: 2}", "null"),
    (r#""ab" * 3"#, "null"),
    (r#"3 * "ab""#, "null"),
    (r#""ab" * 0"#, "null"),
    (r#""ab" * 1.5"#, "null"),
    ("[] - 1", "null"),
    ("{} * 2", "null"),
    ("true + true", "null"),
    ("-.a", r#"{"a":2.50}"#),
    ("-.a", r#"{"a":-2.5}"#),
    ("-.a", r#"{"a":3}"#),
    ("-.a", r#"{"a":"x"}"#),
    ("-(1.5 * 2)", "null"),
    ("(1, 2) + (10, 20)", "null"),
    ("(1, 2) * (.a, .b)", r#"{"a":3,"b":"x"}"#),
    // Comparisons and jq's order of types.
    (".a > 10", r#"{"a":12.5}"#),
    (".a > 10", r#"{"a":10}"#),
    (".a > 10", r#"{"a":"11"}"#),
    (".a > 10", r#"{"a":null}"#),
    (".a > 10", r#"{}"#),
    ("1 == 1.0", "null"),
    ("1 != 1.0", "null"),
    (r#""a" < "b""#, "null"),
    (r#""B" < "a""#, "null"),
    ("[1, 2] < [1, 3]", "null"),
    ("[1, 2] < [1, 2, 0]", "null"),
    ("{} < {a: 1}", "null"),
    ("{a: 1} < {a: 2}", "null"),
    ("{a: 2} < {b: 1}", "null"),
    ("{a: 1, b: 2} < {a: 1, c: 0}", "null"),
    ("{b: 1, a: 2} == {a: 2, b: 1}", "null"),
    ("{a: 1} == {a: 1, b: 2}", "null"),
    ("null < false", "null"),
    ("false < true", "null"),
    ("true < 0", "null"),
    (r#"0 < """#, "null"),
    (r#""" < []"#, "null"),
    ("[] < {}", "null"),
    ("null == false", "null"),
    (".a == .b", r#"{"a":2.50,"b":2.5}"#),
    (".a >= .b", r#"{"a":1,"b":1.0}"#),
    (".a <= .b", r#"{"a":[1,{"x":2}],"b":[1,{"x":2.0}]}"#),
    ("(1, 2) < (2, 1)", "null"),
    ("[1, {a: 2}] == [1, {a: 2.0}]", "null"),
    ("(0 / 0) == (0 / 0)", "null"),
    ("(0 / 0) < 1", "null"),
    ("1 < (0 / 0)", "null"),
    ("(1 / 0) > 1e308", "null"),
    ("(1 / 0) == (1 / 0)", "null"),
    ("0 == -0", "null"),
    ("0.0 == -0.0", "null"),
    (".a == 1", r#"{"a":18446744073709551615}"#),
    (
        ".a < .b",
        r#"{"a":9007199254740993,"b":9007199254740992.0}"#,
    ),
    // and, or, not: only null and false are false.
    ("true and false", "null"),
    ("null or 1", "null"),
    (r#"0 and """#, "null"),
    ("[] and {}", "null"),
    ("(true, false) and true", "null"),
    ("(false, true) or (false, true)", "null"),
    (".a and .b", r#"{"a":1,"b":null}"#),
    ("false and .a.b", r#"{"a":1}"#),
    ("true and .a.b", r#"{"a":1}"#),
    ("not", "null"),
    ("not", "0"),
    ("not", r#""""#),
    (".a | not", r#"{"a":false}"#),
    ("(true, null) | not", "1"),
    // select
    ("select(.a > 1)", r#"{"a":2}"#),
    ("select(.a > 1)", r#"{"a":1}"#),
    ("select(.a)", r#"{"a":0}"#),
    ("select(.a)", "{}"),
    ("select(true, true)", "1"),
    ("select(true, false, true) | . + 1", "1"),
    ("select(.a.b)", r#"{"a":5}"#),
    (
        "select(.amount > 10) | .flag = true",
        r#"{"id":1,"amount":12.5}"#,
    ),
    (
        "select(.amount > 10) | .flag = true",
        r#"{"id":2,"amount":5}"#,
    ),
    (
        "select(.amount > 10) | .flag = true",
        r#"{"id":3,"amount":"x"}"#,
    ),
    (
        "select(.amount > 10) | .amount_cents = (.amount * 100 | round)",
        r#"{"id":1,"user":"u1","amount":12.34,"ts":"2026-01-01T00:00:00Z"}"#,
    ),
    (
        "select(.amount > 10) | .amount_cents = (.amount * 100 | round)",
        r#"{"amount":29}"#,
    ),
    (
        "select(.a > 1) | select(.b) | .c",
        r#"{"a":2,"b":true,"c":[1]}"#,
    ),
    // length, tostring, tonumber
    ("length", r#""héllo""#),
    ("length", "[1,2]"),
    ("length", r#"{"a":1}"#),
    ("length", "null"),
    ("length", "-5"),
    ("length", "-2.50"),
    ("length", "true"),
    ("tostring", "1"),
    ("tostring", r#""s""#),
    ("tostring", r#"[1,"a",null,true]"#),
    ("tostring", r#"{"a":[1.50],"b":{"c":"d"}}"#),
    ("tostring", r#""a\"b""#),
    ("tostring", r#"{"a":"\u0001\u007f\n\t\r\b\f\\/é"}"#),
    ("tostring", "1.0"),
    ("tostring", "[1e5]"),
    ("(1 / 3) | tostring", "null"),
    ("(1e17 * 10) | tostring", "null"),
    ("(0 / 0) | tostring", "null"),
    ("(1 / 0) | tostring", "null"),
    ("[1e17 * 10] | tostring", "null"),
    ("[1 / 3, 2.5 * 2] | tostring", "null"),
    ("tonumber", r#""12""#),
    ("tonumber", r#""1.50""#),
    ("tonumber", r#""-3""#),
    ("tonumber", r#""-0""#),
    ("tonumber", r#""1e3""#),
    ("tonumber", r#"" 12""#),
    ("tonumber", "null"),
    ("tonumber", "[1]"),
    ("tonumber", "5"),
    ("tonumber", "2.50"),
    ("tonumber + 1", r#""41""#),
    // Assignment and update: a key keeps its place, a new one is appended.
    (".a = 1", r#"{"a":0,"b":2}"#),
    (".c = 1", r#"{"a":0,"b":2}"#),
    (".a.b = 1", r#"{"a":{"x":1}}"#),
    (".a.b = 1", "{}"),
    (".a = .b", r#"{"a":1,"b":2}"#),
    (".a = (1, 2)", "{}"),
    (".a = 1", "null"),
    (".a = 1", "[1]"),
    (".[0] = 9", "[1,2]"),
    (".[-1] = 9", "[1,2]"),
    (".[5] = 9", "[1]"),
    (".a[0] = 1", r#"{"a":[0]}"#),
    (".x = (.a * 2)", r#"{"a":1.5}"#),
    (".x = (1 / 0)", "{}"),
    (".a = (.b, .c.d)", r#"{"b":1,"c":2}"#),
    (".a |= . + 1", r#"{"a":1}"#),
    (".a |= . + 1", "{}"),
    (".a |= empty", r#"{"a":1,"b":2,"c":3}"#),
    (".a |= (1, 2)", "{}"),
    (".[1] |= empty", "[1,2,3]"),
    (".a.b |= tostring", r#"{"a":{"b":1}}"#),
    (".a |= .b", r#"{"a":{"b":[1]}}"#),
    (".a |= .b", r#"{"a":5}"#),
    (".a = 1 | .b = 2", r#"{"b":0}"#),
    (".a = 1 | .b.c = 2", r#"{"b":0}"#),
    // del: the last key takes the deleted one's place, as in jaq.
    ("del(.a)", r#"{"a":1,"b":2,"c":3}"#),
    ("del(.c)", r#"{"a":1,"b":2,"c":3}"#),
    ("del(.z)", r#"{"a":1}"#),
    ("del(.[0])", "[1,2,3]"),
    ("del(.a.b)", r#"{"a":{"b":1,"c":2}}"#),
    ("del(.a)", "null"),
    ("del(.[9])", "[1]"),
    ("del(.a) | .d = 4", r#"{"a":1,"b":2,"c":3}"#),
    // Objects.
    (r#"{a: .b, "c": 1, d}"#, r#"{"b":2,"d":3}"#),
    ("{a}", "{}"),
    ("{a: (1, 2), b: (3, 4)}", "null"),
    ("{a: 1, b: 2, a: 3}", "null"),
    (r#"{"a b": .x}"#, r#"{"x":[]}"#),
    ("{a: .x.y}", r#"{"x":1}"#),
    ("{a: 1, b: .x.y}", r#"{"x":1}"#),
    ("{a: [.b, .c]}", r#"{"b":1}"#),
    ("{}", "null"),
    ("{a: {b: 1.50}}", "null"),
    ("{a: (1 / 0)}", "null"),
    ("{a: .b} | .a", r#"{"b":{"c":1}}"#),
    (
        "{id, amount, n: (.n + 1)}",
        r#"{"id":18446744073709551617,"amount":2.50,"n":3}"#,
    ),
    // Arrays.
    ("[.a, .b]", r#"{"a":1}"#),
    ("[]", "null"),
    ("[.a, (.b | .c)]", r#"{"a":1,"b":2}"#),
    ("[empty]", "null"),
    ("[1, [2, 3]]", "null"),
    ("[.a, .a]", r#"{"a":{"x":1}}"#),
    ("[.a, .a] | .[1]", r#"{"a":{"x":1}}"#),
    // String interpolation.
    (r#""\(.a)-x""#, r#"{"a":1}"#),
    (r#""\(.a)-x""#, r#"{"a":"s"}"#),
    (r#""\(.a)-x""#, r#"{"a":[1,"b"]}"#),
    (r#""\(.a)-x""#, r#"{"a":null}"#),
    (r#""\(.a, .b)!""#, r#"{"a":1,"b":2}"#),
    (r#""\(1, 2)-\(3, 4)""#, "null"),
    (r#""x\(.a.b)""#, r#"{"a":1}"#),
    (r#""\(.a)""#, r#"{"a":2.50}"#),
    (r#""\(.a * 1)""#, r#"{"a":2.50}"#),
    (r#""\(1 / 3)""#, "null"),
    (r#""tab\t\(.a)\n""#, r#"{"a":"é"}"#),
    (r#""\(.)""#, r#"{"a":{"b":"\""}}"#),
    // if
    ("if .a then 1 else 2 end", r#"{"a":true}"#),
    ("if .a then 1 else 2 end", r#"{"a":null}"#),
    (
        r#"if .a > 1 then "big" elif .a > 0 then "small" else "neg" end"#,
        r#"{"a":2}"#,
    ),
    (
        r#"if .a > 1 then "big" elif .a > 0 then "small" else "neg" end"#,
        r#"{"a":0.5}"#,
    ),
    (
        r#"if .a > 1 then "big" elif .a > 0 then "small" else "neg" end"#,
        r#"{"a":-1}"#,
    ),
    ("if .a then 1 end", r#"{"a":false}"#),
    ("if (true, false) then 1 else 2 end", "null"),
    ("if .a.b then 1 else 2 end", r#"{"a":3}"#),
    ("if . then .a else .b end", r#"{"a":1,"b":2}"#),
    // Alternative.
    (".a // 1", r#"{"a":null}"#),
    (".a // 1", r#"{"a":false}"#),
    (".a // 1", r#"{"a":0}"#),
    ("(.a, .b) // 9", r#"{"a":null,"b":2}"#),
    ("(null, false) // (1, 2)", "null"),
    ("empty // 3", "null"),
    (".a.b // 1", r#"{"a":5}"#),
    ("(1, .a.b) // 2", r#"{"a":5}"#),
    (".a // .b // .c", r#"{"c":3}"#),
];

/// Outside the subset: jaq runs them, the fast path is not built.
const FALLBACK: &[(&str, &str)] = &[
    ("reduce .[] as $x (0; . + $x)", "[1,2,3]"),
    ("to_entries", r#"{"a":1}"#),
    (r#"getpath(["a"])"#, r#"{"a":1}"#),
    ("def f: . + 1; f", "1"),
    ("def length: 7; length", "[1]"),
    (".[]", "[1,2]"),
    (".a += 1", r#"{"a":1}"#),
    ("map(. * 2)", "[1,2]"),
    (r#"try .a catch "x""#, "5"),
    (".a as $x | $x", r#"{"a":1}"#),
    (r#"@base64 "x\(.)""#, r#""a""#),
    ("(.a)?", "5"),
    ("{(.k): 1}", r#"{"k":"a"}"#),
    (".[1:]", "[1,2,3]"),
    ("ascii_downcase", r#""A""#),
    ("12345678901234567890123", "null"),
    (".[.a]", r#"{"a":0}"#),
    ("del(.a, .b)", r#"{"a":1,"b":2}"#),
    ("error(\"x\")", "null"),
];

/// The stream of `program` through jaq: outputs as JSON text, then the
/// error that ended it, if any.
fn jaq_stream(program: &JqProgram, input: &Value) -> (Vec<String>, Option<String>) {
    let input = match jaq::to_val(input, 0) {
        Ok(v) => v,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    for y in program.jaq.outputs(input) {
        match y.and_then(|v| jaq::into_json(v, 0)) {
            Ok(v) => out.push(v.to_string()),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn texts(values: &[Value]) -> Vec<String> {
    values.iter().map(Value::to_string).collect()
}

/// How the fast path did on one case.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Same,
    /// Left to jaq at run time (a big integer, NaN in an array, ...).
    Unsupported,
}

/// Runs `expr` on `input` both ways; `Err` says how they differ.
fn compare(expr: &str, input: &Value) -> Result<Outcome, String> {
    let program = JqProgram::compile(expr).map_err(|e| e.to_string())?;
    let fast = program
        .fast
        .as_ref()
        .ok_or_else(|| format!("`{expr}` is not on the fast path"))?;
    let (want, error) = jaq_stream(&program, input);
    let (got, stop) = fast.trace(input);
    let got = texts(&got);
    let case = format!("`{expr}` on {input}");
    if !want.starts_with(&got) {
        return Err(format!("{case}: fast {got:?}, jaq {want:?} then {error:?}"));
    }
    let outcome = match stop {
        None if error.is_none() && got.len() == want.len() => Outcome::Same,
        Some(Stop::Error) if error.is_some() && got.len() == want.len() => Outcome::Same,
        Some(Stop::Unsupported) => Outcome::Unsupported,
        _ => {
            return Err(format!(
                "{case}: fast {got:?} then {stop:?}, jaq {want:?} then {error:?}"
            ));
        }
    };

    // The public entry points give jaq's answers whatever the path.
    let jaq_run = program.run_jaq(input);
    let run = program.run(input);
    if run != jaq_run {
        return Err(format!("{case}: run {run:?}, jaq {jaq_run:?}"));
    }
    let mut mapped = Vec::new();
    let map = program
        .map_into(input.clone(), &mut mapped)
        .map(|()| mapped);
    if map != jaq_run {
        return Err(format!("{case}: map {map:?}, jaq {jaq_run:?}"));
    }
    // `first` and `test` look at the first output only: an error after it
    // does not count.
    let jaq_first: Result<Option<Value>, ()> = match (want.first(), &error) {
        (Some(text), _) => Ok(Some(parse(text))),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(()),
    };
    let first = program.first(input).map_err(|_| ());
    if first.as_ref().map(|v| v.as_ref().map(Value::to_string))
        != jaq_first.as_ref().map(|v| v.as_ref().map(Value::to_string))
    {
        return Err(format!("{case}: first {first:?}, jaq {jaq_first:?}"));
    }
    let jaq_test = match jaq::to_val(input, 0) {
        Ok(v) => match program.jaq.outputs(v).next() {
            None => Ok(false),
            Some(y) => y.map(|v| jaq_core::ValT::as_bool(&v)).map_err(|_| ()),
        },
        Err(_) => Err(()),
    };
    let test = program.test(input).map_err(|_| ());
    if test != jaq_test {
        return Err(format!("{case}: test {test:?}, jaq {jaq_test:?}"));
    }
    Ok(outcome)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn corpus_is_large_and_on_the_fast_path() {
    assert!(CASES.len() >= 150, "{} cases", CASES.len());
    let off: Vec<&str> = CASES
        .iter()
        .map(|(expr, _)| *expr)
        .filter(|expr| JqProgram::compile(expr).map_or(true, |p| p.fast.is_none()))
        .collect();
    assert!(off.is_empty(), "not on the fast path: {off:#?}");
}

#[test]
fn corpus_gives_jaqs_outputs_and_errors() {
    let mut failures = Vec::new();
    let mut unsupported = Vec::new();
    for (expr, input) in CASES {
        match compare(expr, &parse(input)) {
            Ok(Outcome::Same) => {}
            Ok(Outcome::Unsupported) => unsupported.push(format!("`{expr}` on {input}")),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The cases the fast path leaves to jaq at run time, by design.
    assert_eq!(unsupported, EXPECTED_UNSUPPORTED, "{unsupported:#?}");
}

/// Cases of the corpus that go to jaq at run time: integers beyond 64 bits,
/// NaN and infinities inside arrays and objects, exponents inside
/// `tostring`'s output, strings `tonumber` cannot take as JSON numbers.
const EXPECTED_UNSUPPORTED: &[&str] = &[
    r#"`.` on {"a":-0,"b":-0.0}"#,
    "`9223372036854775807 + 1` on null",
    r#"`.a == 1` on {"a":18446744073709551615}"#,
    "`tostring` on [1e5]",
    "`[1e17 * 10] | tostring` on null",
    r#"`tonumber` on " 12""#,
    "`.x = (1 / 0)` on {}",
    "`{a: (1 / 0)}` on null",
];

#[test]
fn expressions_outside_the_subset_stay_on_jaq() {
    for (expr, input) in FALLBACK {
        let program = JqProgram::compile(expr).unwrap();
        assert!(program.fast.is_none(), "`{expr}` is on the fast path");
        let input = parse(input);
        let (want, error) = jaq_stream(&program, &input);
        match program.run(&input) {
            Ok(out) => {
                assert!(error.is_none(), "`{expr}`: {error:?}");
                assert_eq!(texts(&out), want, "`{expr}`");
            }
            Err(e) => assert!(error.is_some(), "`{expr}`: {e}"),
        }
    }
}

/// Small random JSON values, as text (numbers as written: `2.50`, `1e3`).
struct Inputs(u64);

impl Inputs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn value(&mut self, depth: usize) -> String {
        const SCALARS: &[&str] = &[
            "null",
            "true",
            "false",
            "0",
            "1",
            "-0",
            "18446744073709551615",
            "-1",
            "10",
            "12.5",
            "2.50",
            "1e3",
            "1.0",
            "-0.5",
            "9223372036854775807",
            "100",
            r#""""#,
            r#""x""#,
            r#""10""#,
            r#""1.5""#,
            r#""a\"b""#,
            r#""é""#,
        ];
        match self.next() % if depth > 2 { 1 } else { 4 } {
            0 => self.pick(SCALARS).to_owned(),
            1 => {
                let n = self.next() % 4;
                let items: Vec<String> = (0..n).map(|_| self.value(depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                const KEYS: &[&str] = &["a", "b", "c", "amount", "x"];
                let n = self.next() % 5;
                let fields: Vec<String> = (0..n)
                    .map(|_| format!("\"{}\":{}", self.pick(KEYS), self.value(depth + 1)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
}

#[test]
fn random_inputs_give_jaqs_outputs_and_errors() {
    let mut inputs = Inputs(0x2545_f491_4f6c_dd1d);
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut expressions: Vec<&str> = CASES.iter().map(|(e, _)| *e).collect();
    expressions.dedup();
    for expr in expressions {
        for _ in 0..24 {
            let text = inputs.value(0);
            let input = parse(&text);
            runs += 1;
            if let Err(e) = compare(expr, &input) {
                failures.push(e);
            }
        }
    }
    assert!(runs > 4000, "{runs}");
    failures.truncate(20);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
