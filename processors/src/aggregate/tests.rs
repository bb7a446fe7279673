use databay_core::{Processor, Record, Trigger};
use serde_json::{Value, json};

use super::*;
use crate::tests::{build_processor, payloads, processor_error, run, run_with, sample_options};

#[test]
fn sample_and_readme_match_the_options() {
    crate::tests::assert_documented(
        databay_component::Kind::Processor,
        "aggregate",
        include_str!("README.md"),
    );
}

#[test]
fn sample_is_valid() {
    let o: AggregateOptions = sample_options(SAMPLE);
    assert_eq!(o.key.as_deref(), Some("/user"));
    assert_eq!(o.aggregates.len(), 4);
    o.build().unwrap();
}

fn orders() -> Vec<Record> {
    [
        json!({"user": "ada", "amount": 20, "item": "pen"}),
        json!({"user": "bob", "amount": 1.5, "item": "ink"}),
        json!({"user": "ada", "amount": 1.5, "item": "pen"}),
        json!({"amount": 99}),
        json!({"user": "ada", "amount": 20, "item": "pad"}),
    ]
    .into_iter()
    .map(Record::new)
    .collect()
}

fn sample() -> Box<dyn Processor> {
    let o: AggregateOptions = sample_options(SAMPLE);
    o.build().unwrap()
}

#[tokio::test]
async fn aggregates_each_key_until_the_link_stream_ends() {
    let mut p = sample();
    assert!(run(&mut p, orders()).await.unwrap().is_empty());
    assert!(run(&mut p, orders()).await.unwrap().is_empty());
    let gauges = p.gauges();
    assert!(
        gauges.iter().any(|g| g.name == "keys" && g.value == 2),
        "{gauges:?}"
    );
    assert!(
        gauges
            .iter()
            .any(|g| g.name == "rejected_records_total" && g.value == 2),
        "the records without a user are counted: {gauges:?}"
    );
    let out = run_with(&mut p, vec![], Trigger::Flush).await.unwrap();
    assert_eq!(
        payloads(&out),
        [
            json!({"key": "ada", "orders": 6, "total": 83.0, "biggest": 20, "items": 2}),
            json!({"key": "bob", "orders": 2, "total": 3.0, "biggest": 1.5, "items": 1}),
        ]
    );
    // The key comes first, then the aggregates in the order written (a CSV
    // outlet takes its header from this order).
    assert_eq!(
        out[0].payload.to_string(),
        r#"{"key":"ada","orders":6,"total":83.0,"biggest":20,"items":2}"#
    );
    assert!(
        run_with(&mut p, vec![], Trigger::Flush)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn per_transfer_aggregation_with_a_renamed_key_field() {
    let mut p = build_processor(
        "aggregate",
        "key = \"/user\"\neof = \"transfer\"\nkey_field = \"user\"\naggregates.n = { reducer = \"count\" }",
    )
    .unwrap();
    let out = run(&mut p, orders()).await.unwrap();
    assert_eq!(
        payloads(&out),
        [
            json!({"user": "ada", "n": 3}),
            json!({"user": "bob", "n": 1})
        ]
    );
    assert_eq!(out[0].meta("__key__"), Some(&json!("ada")));
    let out = run(&mut p, orders()[..2].to_vec()).await.unwrap();
    assert_eq!(payloads(&out).len(), 2, "a fresh stream each transfer");
}

#[tokio::test]
async fn snapshot_and_restore_carry_the_totals() {
    let mut first = sample();
    run(&mut first, orders()).await.unwrap();
    let snapshot = first.snapshot().unwrap().unwrap();
    let mut second = sample();
    second.restore(snapshot).unwrap();
    run(&mut first, orders()).await.unwrap();
    run(&mut second, orders()).await.unwrap();
    let a = run_with(&mut first, vec![], Trigger::Flush).await.unwrap();
    let b = run_with(&mut second, vec![], Trigger::Flush).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
}

#[cfg(feature = "jq")]
#[tokio::test]
async fn jq_keys_and_inputs() {
    let mut p = build_processor(
        "aggregate",
        "key_expr = \".user | ascii_downcase\"\naggregates.spend = { reducer = \"sum\", expr = \".amount * 2\" }",
    )
    .unwrap();
    let records = vec![
        Record::new(json!({"user": "Ada", "amount": 1})),
        Record::new(json!({"user": "ada", "amount": 2})),
        Record::new(json!({"user": 7, "amount": 2})),
    ];
    run(&mut p, records).await.unwrap();
    let out = run_with(&mut p, vec![], Trigger::Flush).await.unwrap();
    assert_eq!(payloads(&out), [json!({"key": "ada", "spend": 6})]);
    let rejected: Vec<u64> = p
        .gauges()
        .iter()
        .filter(|g| g.name == "rejected_records_total")
        .map(|g| g.value)
        .collect();
    assert_eq!(rejected, [1], "ascii_downcase of a number fails: rejected");
}

#[test]
fn bad_options_are_named() {
    let e = processor_error("aggregate", "aggregates.n = { reducer = \"count\" }");
    assert!(e.contains("option `key`: set `key`"), "{e}");
    let e = processor_error(
        "aggregate",
        "key = \"/a\"\nkey_expr = \".a\"\naggregates.n = { reducer = \"count\" }",
    );
    assert!(
        e.contains("set either `key` or `key_expr`, not both"),
        "{e}"
    );
    let e = processor_error("aggregate", "key = \"/a\"");
    assert!(e.contains("option `aggregates`: name at least one"), "{e}");
    let e = processor_error(
        "aggregate",
        "key = \"/a\"\naggregates.key = { reducer = \"count\" }",
    );
    assert!(
        e.contains("option `key_field`: `key` is also the name of an aggregate"),
        "{e}"
    );
    let e = processor_error(
        "aggregate",
        "key = \"/a\"\neof = \"soon\"\naggregates.n = { reducer = \"count\" }",
    );
    assert!(e.contains("unknown variant `soon`"), "{e}");
    let e = processor_error(
        "aggregate",
        "key = \"a\"\naggregates.n = { reducer = \"count\" }",
    );
    assert!(e.contains("option `key`: invalid JSON pointer"), "{e}");
}

#[tokio::test]
async fn a_null_payload_value_is_not_a_key() {
    let mut p = build_processor(
        "aggregate",
        "key = \"\"\naggregates.n = { reducer = \"count\" }",
    )
    .unwrap();
    run(
        &mut p,
        vec![Record::new(Value::Null), Record::new(json!("x"))],
    )
    .await
    .unwrap();
    let out = run_with(&mut p, vec![], Trigger::Flush).await.unwrap();
    assert_eq!(payloads(&out), [json!({"key": "x", "n": 1})]);
}
