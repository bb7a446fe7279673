//! Stateful operators inside links: a timer wakes the link between
//! transfers, `*_final` operators emit when every inlet is exhausted, and
//! join sides are the link's inlets.

mod common;

use std::time::Duration;

use common::{ms, run};
use databay_core::stateful::{self, EmitMode, InsertMode, Join, key_text};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{InletHandle, Link, Planner, Record};
use serde_json::json;

fn by_user(r: &Record) -> Result<String, String> {
    key_text(r.payload.get("user"))
}

#[tokio::test(start_paused = true)]
async fn a_collect_timeout_is_served_between_transfers() {
    let out = CollectOutlet::new();
    // The second inlet never ends, so the link is not flushed.
    let link = Link::builder("batches")
        .inlet(StaticInlet::values([json!({"user": "a"})]).times(1))
        .inlet(StaticInlet::values(Vec::<i32>::new()))
        .processor(stateful::collect(by_user, Duration::from_secs(1), 100))
        .outlet(out.clone())
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(500)).await;
    assert!(out.is_empty(), "the timeout has not passed");
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(
        out.payloads(),
        [json!([{"user": "a"}])],
        "emitted on time, long before the next transfer"
    );
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn final_operators_emit_when_every_inlet_is_exhausted() {
    let out = CollectOutlet::new();
    let link = Link::builder("counts")
        .inlet(StaticInlet::values([json!({"user": "a"}), json!({"user": "b"})]).times(3))
        .processor(stateful::count_final(by_user))
        .outlet(out.clone())
        .every(Duration::from_secs(1))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(out.payloads(), [json!(3), json!(3)]);
    let keys: Vec<_> = out
        .records()
        .iter()
        .map(|r| r.meta(stateful::KEY_META).cloned())
        .collect();
    assert_eq!(keys, [Some(json!("a")), Some(json!("b"))]);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn join_sides_are_the_links_inlets() {
    let out = CollectOutlet::new();
    let users = InletHandle::builder(StaticInlet::values([json!({"user": "a", "name": "Ada"})]))
        .name("users")
        .build();
    let orders = InletHandle::builder(StaticInlet::values([json!({"user": "a", "total": 9})]))
        .name("orders")
        .build();
    let link = Link::builder("user_orders")
        .inlet(users)
        .inlet(orders)
        .processor(stateful::join(
            by_user,
            Join::new(["users", "orders"])
                .insert_mode(InsertMode::Last)
                .emit_mode(EmitMode::Complete),
        ))
        .outlet(out.clone())
        .every(Duration::from_secs(1))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(
        out.payloads(),
        [json!({"users": {"user": "a", "name": "Ada"}, "orders": {"user": "a", "total": 9}})]
    );
}

#[tokio::test]
async fn a_link_shows_what_its_stateful_processors_hold() {
    let link = Link::builder("held")
        .inlet(StaticInlet::values([
            json!({"user": "a"}),
            json!({"user": "b"}),
            json!({}),
        ]))
        .processor(|records: Vec<Record>| records)
        .processor(stateful::collect(by_user, Duration::from_secs(3600), 100))
        .outlet(CollectOutlet::new())
        .every(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(link.processor_gauges().is_empty());
    link.transfer().await.unwrap();
    let shown = link.processor_gauges();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].index, 1);
    let figures: Vec<(&str, u64)> = shown[0].gauges.iter().map(|g| (g.name, g.value)).collect();
    assert_eq!(
        figures,
        [("keys", 2), ("timers", 2), ("rejected_records_total", 1)]
    );
}
