use databay_core::{INLET_KEY, Processor, Record, Trigger};
use serde_json::{Value, json};

use super::*;
use crate::tests::{build_processor, payloads, processor_error, run, run_with, sample_options};

#[test]
fn sample_and_readme_match_the_options() {
    crate::tests::assert_documented(
        databay_component::Kind::Processor,
        "join",
        include_str!("README.md"),
    );
}

#[test]
fn sample_is_valid() {
    let o: JoinOptions = sample_options(SAMPLE);
    assert_eq!(o.sides, ["users", "orders"]);
    o.build().unwrap();
}

fn from(inlet: &str, payload: Value) -> Record {
    Record::new(payload).with_meta(INLET_KEY, inlet)
}

#[tokio::test]
async fn an_inner_join_of_two_inlets() {
    let mut p = build_processor("join", "key = \"/id\"\nsides = [\"users\", \"orders\"]").unwrap();
    let out = run(
        &mut p,
        vec![
            from("users", json!({"id": 1, "name": "Ada"})),
            from("users", json!({"id": 2, "name": "Bob"})),
            from("refunds", json!({"id": 1})),
        ],
    )
    .await
    .unwrap();
    assert!(out.is_empty());
    let out = run(&mut p, vec![from("orders", json!({"id": 1, "total": 9}))])
        .await
        .unwrap();
    assert_eq!(
        payloads(&out),
        [json!({"key": "1", "users": {"id": 1, "name": "Ada"}, "orders": {"id": 1, "total": 9}})]
    );
    let gauges = p.gauges();
    let figure = |name: &str| gauges.iter().find(|g| g.name == name).map(|g| g.value);
    assert_eq!(figure("keys"), Some(1), "Bob still waits for an order");
    assert_eq!(
        figure("rejected_records_total"),
        Some(1),
        "refunds is no side"
    );
}

#[tokio::test]
async fn an_outer_join_by_a_side_field_at_the_end_of_the_stream() {
    let mut p = build_processor(
        "join",
        "key = \"/id\"\nsides = [\"l\", \"r\"]\nside = \"/from\"\nemit_mode = \"final\"\ninsert_mode = \"product\"\nkey_field = \"id\"",
    )
    .unwrap();
    let rec = |from: &str, id: i64, n: i64| Record::new(json!({"from": from, "id": id, "n": n}));
    run(
        &mut p,
        vec![
            rec("l", 1, 1),
            rec("r", 1, 2),
            rec("r", 1, 3),
            rec("l", 2, 4),
        ],
    )
    .await
    .unwrap();
    let out = run_with(&mut p, vec![], Trigger::Flush).await.unwrap();
    let rows: Vec<(Value, Value, Value)> = out
        .iter()
        .map(|r| {
            (
                r.payload["id"].clone(),
                r.payload["l"]["n"].clone(),
                r.payload["r"]["n"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!("1"), json!(1), json!(2)),
            (json!("1"), json!(1), json!(3)),
            (json!("2"), json!(4), Value::Null),
        ]
    );
}

#[test]
fn bad_options_are_named() {
    let e = processor_error("join", "key = \"/id\"\nsides = [\"users\"]");
    assert!(e.contains("option `sides`: name at least two sides"), "{e}");
    let e = processor_error("join", "key = \"/id\"\nsides = [\"a\", \"a\"]");
    assert!(e.contains("option `sides`: `a` is named twice"), "{e}");
    let e = processor_error("join", "key = \"/id\"\nsides = [\"key\", \"b\"]");
    assert!(
        e.contains("option `key_field`: `key` is also the name of a side"),
        "{e}"
    );
    let e = processor_error(
        "join",
        "key = \"/id\"\nsides = [\"a\", \"b\"]\nemit_mode = \"eventually\"",
    );
    assert!(e.contains("unknown variant `eventually`"), "{e}");
    let e = processor_error(
        "join",
        "key = \"/id\"\nsides = [\"a\", \"b\"]\nside = \"from\"",
    );
    assert!(e.contains("option `side`: invalid JSON pointer"), "{e}");
}
