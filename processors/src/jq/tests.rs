//! The jq module's own checks: compile errors, numbers as written, the
//! standard library, conversions, options.

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
        e.ends_with(
            "unclosed `(` at column 1: expected `)` at column 4, found the end of the expression"
        ),
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

#[test]
fn deep_payloads_are_refused_on_the_fast_path_too() {
    let nested = |depth: usize| (0..depth).fold(json!(1), |v, _| json!([v]));
    let program = JqProgram::compile(".").unwrap();
    assert!(program.fast.is_some());
    let e = program.run(&nested(600)).unwrap_err().to_string();
    assert!(e.contains("nested deeper than 512"), "{e}");
    let mut out = Vec::new();
    let e = program
        .map_into(nested(600), &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than 512"), "{e}");
    // Deep, but within the limit: both paths give the payload back.
    let deep = nested(500);
    assert_eq!(program.run(&deep).unwrap(), vec![deep.clone()]);
    assert_eq!(program.run_jaq(&deep).unwrap(), vec![deep]);
}
