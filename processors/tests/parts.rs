//! The built-in stateless processors on a large batch: a link runs them in
//! parts, on several cores, and what comes out (records, order, errors) is
//! what each processor gives on the whole batch, one after the other.

use databay_core::processor::Processor;
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{Context, Link, Record, Trigger, Update};
use databay_processors::{JqFilter, JqMap, Op, Remove, Rename, Select, Set};
use serde_json::{Value, json};

/// The chain, fresh: select, set, rename, jq map (one record in 7 gives
/// two), jq filter, remove.
fn chain() -> Vec<Box<dyn Processor>> {
    vec![
        Box::new(Select::new("/amount", Op::Gt, Some(json!(10))).unwrap()),
        Box::new(Set::new([("/flag", json!(true)), ("/meta/seen", json!(true))]).unwrap()),
        Box::new(Rename::new([("/user", "/customer")]).unwrap()),
        Box::new(
            JqMap::new(
                "if .id % 7 == 0 then (., .copy = true) else . end \
                 | .cents = (.amount * 100 | round)",
            )
            .unwrap(),
        ),
        Box::new(JqFilter::new(".id % 11 != 0").unwrap()),
        Box::new(Remove::new(["/ts"]).unwrap()),
    ]
}

/// Orders with ids `0..count`; `odd` (an id) gets a `meta` that is a
/// string, where `set` refuses to set `/meta/seen`.
fn orders(count: u64, odd: Option<u64>) -> Vec<Value> {
    (0..count)
        .map(|id| match odd {
            Some(bad) if bad == id => json!({"id": id, "amount": 50.0, "meta": "text"}),
            _ => json!({
                "id": id,
                "user": format!("u{}", id % 100),
                "amount": (id * 37 % 3000) as f64 / 100.0,
                "ts": "2026-01-01T00:00:00Z",
            }),
        })
        .collect()
}

/// The chain, each processor on the whole batch in turn.
async fn whole(values: Vec<Value>) -> Result<Vec<Value>, String> {
    let update = Update::new(["whole"], 0);
    let cx = Context::new(&update, Trigger::Transfer);
    let mut records: Vec<Record> = values.into_iter().map(Record::new).collect();
    for (i, mut p) in chain().into_iter().enumerate() {
        records = p
            .process(records, &cx)
            .await
            .map_err(|e| format!("stage {i}: {e}"))?;
    }
    Ok(records.into_iter().map(|r| r.payload).collect())
}

/// The chain on a link, in one transfer.
async fn linked(values: Vec<Value>) -> Result<Vec<Value>, String> {
    let out = CollectOutlet::new();
    let mut builder = Link::builder("parts")
        .inlet(StaticInlet::values(values))
        .outlet(out.clone());
    for p in chain() {
        builder = builder.processor(p);
    }
    let link = builder.build().unwrap();
    match link.transfer().await {
        Ok(_) => Ok(out.payloads()),
        Err(e) => Err(e.errors[0].failure.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_chain_in_parts_gives_what_it_gives_on_the_whole_batch() {
    for p in chain() {
        assert!(p.stateless().is_some(), "a built-in is not run in parts");
    }
    let values = orders(30_000, None);
    let want = whole(values.clone()).await.unwrap();
    let got = linked(values).await.unwrap();
    assert!(want.len() > 15_000, "the chain kept {}", want.len());
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the records differ in parts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_set_refuses_far_into_the_batch_is_named_as_in_the_whole_batch() {
    let values = orders(30_000, Some(23_456));
    let want = whole(values.clone()).await.unwrap_err();
    let got = linked(values).await.unwrap_err();
    // `set` is stage 1: the record's place is counted among those
    // `select` kept.
    assert!(want.starts_with("stage 1: record "), "{want}");
    assert_eq!(got, want.trim_start_matches("stage 1: "));
}
