//! The processors as a Rust library user sees them: a link built from
//! `databay-core` and `databay-processors` alone (no daemon, no TOML),
//! with a native `select` and a jq `map`, run for real.

use std::time::Duration;

use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{INLET_KEY, Link};
use databay_processors::{JqMap, Op, Select};
use serde_json::json;

#[tokio::test]
async fn a_link_with_select_and_a_jq_map_transforms_what_it_moves() {
    let orders = [
        json!({"id": 1, "amount": 4.5}),
        json!({"id": 2, "amount": 12.25}),
        json!({"id": 3, "amount": 99}),
    ];
    let out = CollectOutlet::new();
    let link = Link::builder("big_orders")
        .inlet(StaticInlet::values(orders))
        .processor(Select::new("/amount", Op::Gt, Some(json!(10))).unwrap())
        .processor(JqMap::new("{id, cents: (.amount * 100 | round)}").unwrap())
        .outlet(out.clone())
        .every(Duration::from_secs(1))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(
        out.payloads(),
        [
            json!({"id": 2, "cents": 1225}),
            json!({"id": 3, "cents": 9900})
        ]
    );
    // The map keeps each record's metadata.
    assert!(out.records().iter().all(|r| r.meta(INLET_KEY).is_some()));
}

#[test]
fn bad_arguments_are_errors_naming_the_option() {
    let e = Select::new("amount", Op::Gt, Some(json!(10))).unwrap_err();
    assert_eq!(e.option, "pointer");
    let e = JqMap::new(".a |").unwrap_err();
    assert_eq!(e.option, "expr");
}
