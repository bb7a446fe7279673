//! Dead letters and routes: rejects and pushes that failed for good go to
//! the dead-letter outlet with why, where, when and how often; the transfer
//! commits only once it took them; a record routed to one outlet reaches
//! that outlet alone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::BrokenOutlet;
use databay_core::routing::{ATTEMPTS_KEY, ERROR_KEY, OUTLET_KEY, ROUTE_KEY, UPDATE_KEY};
use databay_core::source::PartitionedInlet;
use databay_core::testing::{CollectOutlet, StaticInlet, TestingSource};
use databay_core::{
    BoxError, Link, NodeKind, Outlet, OutletHandle, Record, Rejected, RetryPolicy, Update,
    async_trait,
};
use serde_json::{Value, json};

/// Writes numbers and rejects anything else, one record at a time.
#[derive(Clone)]
struct NumbersOnly(CollectOutlet);

#[async_trait]
impl Outlet for NumbersOnly {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        let mut rejected = Rejected::new();
        let mut good = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if r.payload.is_number() {
                good.push(r.clone());
            } else {
                rejected.reject(i, format!("record {i}: not a number"));
            }
        }
        self.0.push(&good, update).await?;
        rejected.into_result()
    }
}

/// Fails every push while `down` is set, then collects.
#[derive(Clone)]
struct Switch {
    down: Arc<AtomicBool>,
    out: CollectOutlet,
}

impl Switch {
    fn new(down: bool) -> Self {
        Switch {
            down: Arc::new(AtomicBool::new(down)),
            out: CollectOutlet::new(),
        }
    }
}

#[async_trait]
impl Outlet for Switch {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        self.out.push(records, update).await
    }
}

fn named(outlet: impl Outlet, name: &str) -> OutletHandle {
    OutletHandle::builder(outlet).name(name).build()
}

fn ints(values: &[Value]) -> Vec<i64> {
    values.iter().filter_map(Value::as_i64).collect()
}

#[tokio::test]
async fn rejects_go_to_the_dead_letter_outlet_with_why_and_where() {
    let (good, dead) = (CollectOutlet::new(), CollectOutlet::new());
    let link = Link::builder("letters")
        .inlet(StaticInlet::values([
            json!(1),
            json!("two"),
            json!(3),
            json!(null),
        ]))
        .outlet(named(NumbersOnly(good.clone()), "numbers"))
        .dead_letter(named(dead.clone(), "dead"))
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(good.payloads(), [json!(1), json!(3)]);
    assert_eq!(dead.payloads(), [json!("two"), json!(null)]);
    let letter = &dead.records()[0];
    assert_eq!(letter.meta(OUTLET_KEY), Some(&json!("numbers")));
    assert_eq!(
        letter.meta(ERROR_KEY),
        Some(&json!("record 1: not a number"))
    );
    assert_eq!(letter.meta(UPDATE_KEY), Some(&json!("letters.0")));
    assert_eq!(letter.meta(ATTEMPTS_KEY), Some(&json!(1)));
    assert_eq!(report.dead_lettered, 2);
    assert_eq!(report.rejected.len(), 2);

    let stats = link.stats();
    assert_eq!(
        (
            stats.records_rejected,
            stats.records_dead_lettered,
            stats.records_failed
        ),
        (2, 2, 0)
    );
    let nodes = link.node_stats();
    let numbers = nodes.iter().find(|n| n.name == "numbers").unwrap();
    assert_eq!(
        (numbers.records_rejected, numbers.records_dead_lettered),
        (2, 2)
    );
    let dead_node = nodes.iter().find(|n| n.name == "dead").unwrap();
    assert_eq!(dead_node.kind, NodeKind::DeadLetter);
    assert_eq!((dead_node.calls, dead_node.records), (1, 2));
}

/// A push that failed for good (after its retries) hands its batch to the
/// dead-letter outlet: the other outlet has it, the transfer commits, and
/// the inlet moves on (nothing is read twice).
#[tokio::test(start_paused = true)]
async fn a_push_that_fails_for_good_is_dead_lettered_and_the_transfer_commits() {
    let (ok, dead) = (CollectOutlet::new(), CollectOutlet::new());
    let down = Switch::new(true);
    let flaky = OutletHandle::builder(down.clone())
        .name("flaky")
        .retry(RetryPolicy::new(3).initial(Duration::from_millis(10)))
        .build();
    let link = Link::builder("commits")
        .inlet(PartitionedInlet::new(
            TestingSource::new(0..4).batch_size(2),
        ))
        .outlet(named(ok.clone(), "ok"))
        .outlet(flaky)
        .dead_letter(dead.clone())
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.dead_lettered, 2);
    assert_eq!(ints(&dead.payloads()), [0, 1]);
    let letter = &dead.records()[1];
    assert_eq!(letter.meta(OUTLET_KEY), Some(&json!("flaky")));
    assert_eq!(letter.meta(ATTEMPTS_KEY), Some(&json!(3)));
    let why = letter.meta(ERROR_KEY).and_then(Value::as_str).unwrap();
    assert!(why.contains("connection refused"), "{why}");

    down.down.store(false, Ordering::SeqCst);
    link.transfer().await.unwrap();
    assert_eq!(ints(&ok.payloads()), [0, 1, 2, 3]);
    assert_eq!(
        ints(&down.out.payloads()),
        [2, 3],
        "0 and 1 are not sent again"
    );
    let stats = link.stats();
    assert_eq!((stats.transfers_ok, stats.transfers_failed), (2, 0));
    assert_eq!((stats.records_dead_lettered, stats.records_failed), (2, 0));
    let flaky = link.node_stats().into_iter().find(|n| n.name == "flaky");
    let flaky = flaky.unwrap();
    assert_eq!((flaky.retries, flaky.records_dead_lettered), (2, 2));
}

/// When the dead-letter outlet fails too, the transfer fails and commits
/// nothing: the next one reads the same records again.
#[tokio::test]
async fn a_failing_dead_letter_outlet_fails_the_transfer_and_nothing_is_lost() {
    let ok = CollectOutlet::new();
    let dead = Switch::new(true);
    let link = Link::builder("both-down")
        .inlet(PartitionedInlet::new(
            TestingSource::new(0..2).batch_size(2),
        ))
        .outlet(named(ok.clone(), "ok"))
        .outlet(named(BrokenOutlet { panic: false }, "broken"))
        .dead_letter(named(dead.clone(), "dead"))
        .build()
        .unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(
        e.contains("dead-letter outlet `dead`") && e.contains("connection refused"),
        "{e}"
    );
    assert_eq!(link.stats().records_failed, 2);
    dead.down.store(false, Ordering::SeqCst);
    link.transfer().await.unwrap();
    assert_eq!(
        ints(&dead.out.payloads()),
        [0, 1],
        "read again, then dead-lettered"
    );
    assert_eq!(ints(&ok.payloads()), [0, 1, 0, 1], "at least once");
}

/// Without a dead-letter outlet a failed push fails the transfer, as ever.
#[tokio::test]
async fn without_a_dead_letter_outlet_a_failed_push_fails_the_transfer() {
    let link = Link::builder("no-letters")
        .inlet(StaticInlet::values([1, 2]))
        .outlet(named(BrokenOutlet { panic: false }, "broken"))
        .build()
        .unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(
        e.contains("outlet `broken`") && e.contains("disk full"),
        "{e}"
    );
    assert_eq!(link.stats().records_failed, 2);
    assert_eq!(link.stats().records_dead_lettered, 0);
}

#[tokio::test]
async fn a_routed_record_reaches_its_outlet_alone() {
    let (main, other, late) = (
        CollectOutlet::new(),
        CollectOutlet::new(),
        CollectOutlet::new(),
    );
    let link = Link::builder("routes")
        .inlet(StaticInlet::records(vec![
            Record::new(1),
            Record::new(2).with_meta(ROUTE_KEY, "late"),
            Record::new(3).with_meta(ROUTE_KEY, "other"),
            Record::new(4),
        ]))
        .outlet(named(main.clone(), "main"))
        .outlet(named(other.clone(), "other"))
        .routed_outlet(named(late.clone(), "late"))
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(ints(&main.payloads()), [1, 4]);
    assert_eq!(ints(&other.payloads()), [1, 3, 4], "in batch order");
    assert_eq!(
        ints(&late.payloads()),
        [2],
        "a routed outlet gets nothing else"
    );
    assert_eq!(report.records_out, 6);
}

/// A route to an outlet the link does not have is refused like a reject:
/// counted, and dead-lettered naming the route.
#[tokio::test]
async fn a_record_routed_nowhere_is_refused_and_dead_lettered() {
    let (main, dead) = (CollectOutlet::new(), CollectOutlet::new());
    let link = Link::builder("nowhere")
        .inlet(StaticInlet::records(vec![
            Record::new(1),
            Record::new(2).with_meta(ROUTE_KEY, "missing"),
            Record::new(3).with_meta(ROUTE_KEY, 7),
        ]))
        .outlet(named(main.clone(), "main"))
        .dead_letter(dead.clone())
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(ints(&main.payloads()), [1]);
    assert_eq!(ints(&dead.payloads()), [2, 3]);
    let why: Vec<String> = dead
        .records()
        .iter()
        .map(|r| {
            r.meta(ERROR_KEY)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(why[0].contains("outlet `missing`"), "{why:?}");
    assert!(why[1].contains("not 7"), "{why:?}");
    assert_eq!(report.dead_lettered, 2);
    assert_eq!(link.stats().records_rejected, 2);
}
