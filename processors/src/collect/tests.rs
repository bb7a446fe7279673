use std::time::Duration;

use databay_core::{Processor, Record, Trigger};
use serde_json::json;

use super::*;
use crate::tests::{build_processor, payloads, processor_error, run, run_with, sample_options};

#[test]
fn sample_and_readme_match_the_options() {
    crate::tests::assert_documented(
        databay_component::Kind::Processor,
        "collect",
        include_str!("README.md"),
    );
}

#[test]
fn sample_is_valid() {
    let o: CollectOptions = sample_options(SAMPLE);
    assert_eq!((o.timeout, o.max_size), (Duration::from_secs(5), 10));
    o.build().unwrap();
}

fn reading(device: &str, t: i64) -> Record {
    Record::new(json!({"device": device, "t": t}))
}

#[tokio::test(start_paused = true)]
async fn lists_are_emitted_when_full_or_on_time() {
    let mut p = build_processor(
        "collect",
        "key = \"/device\"\ntimeout = \"5s\"\nmax_size = 2\nitems_field = \"readings\"",
    )
    .unwrap();
    let out = run(
        &mut p,
        vec![reading("a", 1), reading("b", 1), reading("a", 2)],
    )
    .await
    .unwrap();
    assert_eq!(
        payloads(&out),
        [json!({"key": "a", "readings": [{"device": "a", "t": 1}, {"device": "a", "t": 2}]})]
    );
    let due = p.next_wakeup().expect("b's timeout");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(due <= tokio::time::Instant::now().into_std());
    let out = run_with(&mut p, vec![], Trigger::Timer).await.unwrap();
    assert_eq!(
        payloads(&out),
        [json!({"key": "b", "readings": [{"device": "b", "t": 1}]})]
    );
    assert_eq!(p.next_wakeup(), None);
}

#[tokio::test]
async fn eof_emits_what_is_left() {
    let mut p = build_processor(
        "collect",
        "key = \"/device\"\ntimeout = \"1h\"\nmax_size = 100\neof = \"transfer\"",
    )
    .unwrap();
    let out = run(&mut p, vec![reading("a", 1), Record::new(json!({"t": 2}))])
        .await
        .unwrap();
    assert_eq!(
        payloads(&out),
        [json!({"key": "a", "items": [{"device": "a", "t": 1}]})]
    );
    let rejected = p
        .gauges()
        .into_iter()
        .find(|g| g.name == "rejected_records_total");
    assert_eq!(rejected.map(|g| g.value), Some(1));
}

#[test]
fn bad_options_are_named() {
    let e = processor_error("collect", "key = \"/d\"\ntimeout = \"5s\"\nmax_size = 0");
    assert!(e.contains("option `max_size`: must be at least 1"), "{e}");
    let e = processor_error("collect", "key = \"/d\"\ntimeout = \"0s\"\nmax_size = 3");
    assert!(
        e.contains("option `timeout`: must be longer than 0s"),
        "{e}"
    );
    let e = processor_error("collect", "key = \"/d\"\nmax_size = 3");
    assert!(e.contains("missing field `timeout`"), "{e}");
    let e = processor_error(
        "collect",
        "key = \"/d\"\ntimeout = \"5s\"\nmax_size = 3\nitems_field = \"key\"",
    );
    assert!(
        e.contains("option `items_field`: `key` is already the name of `key_field`"),
        "{e}"
    );
}
