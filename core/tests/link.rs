//! One link's transfer: pull, process, group, push, and its errors.

mod common;

use std::time::Duration;

use common::{Behaviour, BrokenOutlet, Probe, ints, join_panicked, ms, values};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BoxError, Buffer, Failure, Inlet, InletHandle, Link, Metadata, NodeKind, OutletHandle, Pull,
    Record, Update, async_trait, processor,
};
use serde_json::json;

fn meta(k: &str, v: &str) -> Metadata {
    let mut m = Metadata::new();
    m.insert(k.into(), json!(v));
    m
}

#[tokio::test]
async fn records_carry_global_and_local_metadata_and_inlet_name() {
    let out = CollectOutlet::new();
    let inlet = InletHandle::builder(StaticInlet::records(vec![
        Record::new(1),
        Record::new(2).with_meta("animal", "parrot"),
    ]))
    .name("animals")
    .metadata(meta("animal", "cat"))
    .build();
    let link = Link::builder("meta")
        .tags(["http_to_mongo"])
        .inlet(inlet)
        .outlet(out.clone())
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.update.to_string(), "http_to_mongo.0");
    assert_eq!((report.records_in, report.records_out), (2, 2));
    let got = out.records();
    assert_eq!(got[0].meta("animal"), Some(&json!("cat")));
    assert_eq!(got[1].meta("animal"), Some(&json!("parrot")));
    assert_eq!(got[0].inlet(), Some("animals"));
    assert_eq!(
        link.transfer().await.unwrap().update.to_string(),
        "http_to_mongo.1"
    );
}

#[tokio::test(start_paused = true)]
async fn inlets_are_pulled_concurrently() {
    let out = CollectOutlet::new();
    let mut builder = Link::builder("async").outlet(out.clone());
    for _ in 0..3 {
        let (p, _) = Probe::with(Behaviour::Count, Duration::from_millis(500));
        builder = builder.inlet(p);
    }
    let link = builder.build().unwrap();
    let t0 = tokio::time::Instant::now();
    link.transfer().await.unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(600),
        "three 0.5 s inlets took {took:?}"
    );
    assert_eq!(out.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn inlet_concurrency_bounds_parallel_pulls() {
    let (a, log_a) = Probe::with(Behaviour::Count, Duration::from_millis(100));
    let (b, log_b) = Probe::with(Behaviour::Count, Duration::from_millis(100));
    let (c, _) = Probe::with(Behaviour::Count, Duration::from_millis(100));
    let link = Link::builder("bounded")
        .inlet(a)
        .inlet(b)
        .inlet(c)
        .inlet_concurrency(1)
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    let t0 = tokio::time::Instant::now();
    link.transfer().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(log_a.max_in_flight() + log_b.max_in_flight(), 2);
}

#[tokio::test]
async fn processors_run_in_order_and_groupers_batch_in_order() {
    let out = CollectOutlet::new();
    let link = Link::builder("pipeline")
        .inlet(StaticInlet::values([
            99.999, 1.234, 5.0, 2.5, 7.75, 3.0, 0.5,
        ]))
        .processor(|rs: Vec<Record>| {
            rs.into_iter()
                .filter(|r| r.payload.as_f64().is_some_and(|v| v < 50.0))
                .collect()
        })
        .processor(|rs: Vec<Record>| {
            rs.into_iter()
                .map(|mut r| {
                    r.payload = json!(r.payload.as_f64().unwrap_or_default().round());
                    r
                })
                .collect()
        })
        .grouper(|batches: Vec<Vec<Record>>| {
            batches
                .into_iter()
                .flat_map(|b| b.chunks(2).map(<[Record]>::to_vec).collect::<Vec<_>>())
                .collect()
        })
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let batches: Vec<_> = out.batches().into_iter().map(|(_, b)| values(&b)).collect();
    assert_eq!(
        batches,
        vec![
            vec![json!(1.0), json!(5.0)],
            vec![json!(3.0), json!(8.0)],
            vec![json!(3.0), json!(1.0)]
        ]
    );
}

#[tokio::test]
async fn outlet_processors_change_only_their_outlets_copy() {
    let plain = CollectOutlet::new();
    let doubled = CollectOutlet::new();
    let link = Link::builder("copies")
        .inlet(StaticInlet::values([1, 2]))
        .outlet(plain.clone())
        .outlet(
            OutletHandle::builder(doubled.clone())
                .processor(|rs: Vec<Record>| {
                    rs.into_iter()
                        .map(|mut r| {
                            r.payload = json!(r.payload.as_i64().unwrap_or_default() * 2);
                            r
                        })
                        .collect()
                })
                .build(),
        )
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(plain.payloads(), vec![json!(1), json!(2)]);
    assert_eq!(doubled.payloads(), vec![json!(2), json!(4)]);
}

#[tokio::test]
async fn a_panicking_inlet_is_reported_as_that_inlets_error() {
    let (bad, _) = Probe::with(Behaviour::Panic, Duration::ZERO);
    let out = CollectOutlet::new();
    let link = Link::builder("panics")
        .inlet(InletHandle::builder(bad).name("volatile").build())
        .inlet(StaticInlet::values([1]))
        .outlet(out.clone())
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err();
    assert_eq!(err.errors.len(), 1);
    let e = &err.errors[0];
    assert_eq!(
        (e.kind, e.node.as_str(), e.link.as_str()),
        (NodeKind::Inlet, "volatile", "panics")
    );
    assert!(matches!(&e.failure, Failure::Panic(m) if m.contains("probe panicked on pull 1")));
    assert_eq!(e.update, "panics.0");
    assert!(out.is_empty(), "a failed transfer pushes nothing");
    // The link survives and the inlet is used again.
    assert!(link.transfer().await.is_err());
    assert_eq!(link.stats().transfers_failed, 2);
}

#[tokio::test]
async fn panics_in_processors_and_outlets_are_caught() {
    let link = Link::builder("p")
        .inlet(StaticInlet::values([1]))
        .named_processor("boom", |_: Vec<Record>| -> Vec<Record> {
            panic!("processor blew up")
        })
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err();
    assert_eq!(err.errors[0].kind, NodeKind::Processor);
    assert_eq!(err.errors[0].node, "boom");
    assert!(err.to_string().contains("processor blew up"), "{err}");

    let link = Link::builder("o")
        .inlet(StaticInlet::values([1]))
        .outlet(BrokenOutlet { panic: true })
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err();
    assert_eq!(err.errors[0].kind, NodeKind::Outlet);
    assert!(matches!(&err.errors[0].failure, Failure::Panic(m) if m == "outlet exploded"));
}

#[tokio::test]
async fn ignore_exceptions_keeps_the_rest_of_the_transfer() {
    let (bad, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let good = CollectOutlet::new();
    let link = Link::builder("tolerant")
        .inlet(bad)
        .inlet(StaticInlet::values([7]))
        .outlet(BrokenOutlet { panic: false })
        .outlet(good.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(good.payloads(), vec![json!(7)]);
    let kinds: Vec<_> = report.ignored.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![NodeKind::Inlet, NodeKind::Outlet]);
    let stats = link.stats();
    assert_eq!((stats.transfers_ok, stats.errors), (1, 2));
    assert!(stats.last_error.unwrap().contains("disk full"));
}

#[tokio::test]
async fn a_failing_processor_never_lets_records_through_unprocessed() {
    let out = CollectOutlet::new();
    let after = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = after.clone();
    let link = Link::builder("filtering")
        .inlet(StaticInlet::values([1, 2, 3]))
        .processor(processor::fallible(|_| Err("filter backend down".into())))
        .processor(move |rs: Vec<Record>| {
            seen.fetch_add(rs.len() + 1000, std::sync::atomic::Ordering::SeqCst);
            rs
        })
        .outlet(out.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert!(out.is_empty(), "unfiltered records reached the outlet");
    assert_eq!(report.ignored.len(), 1);
    assert_eq!(link.stats().records_dropped, 3);
    // Later processors still run (with nothing), so their timers keep working.
    assert_eq!(after.load(std::sync::atomic::Ordering::SeqCst), 1000);

    // Without ignore_exceptions the transfer fails instead.
    let strict = Link::builder("strict")
        .inlet(StaticInlet::values([1]))
        .processor(processor::fallible(|_| Err("nope".into())))
        .outlet(out.clone())
        .build()
        .unwrap();
    assert!(strict.transfer().await.is_err());
    assert!(out.is_empty());
}

#[tokio::test(start_paused = true)]
async fn slow_inlets_and_outlets_time_out() {
    let (slow, _) = Probe::with(Behaviour::Count, Duration::from_secs(10));
    let link = Link::builder("slow")
        .inlet(
            InletHandle::builder(slow)
                .timeout(Duration::from_secs(1))
                .build(),
        )
        .outlet(CollectOutlet::new())
        .inlet_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err();
    assert!(matches!(err.errors[0].failure, Failure::Timeout(d) if d == Duration::from_secs(1)));
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
}

#[tokio::test]
async fn add_and_remove_nodes_on_a_running_link() {
    let out = CollectOutlet::new();
    let link = Link::builder("dynamic")
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let (probe, log) = Probe::new();
    let handle = InletHandle::new(probe);
    link.add_inlet(handle.clone()).await.unwrap();
    assert_eq!(
        log.starts(),
        1,
        "an inlet added to a running link is started"
    );
    assert!(handle.active());
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), vec![json!(1)]);

    let second = CollectOutlet::new();
    let second_handle = OutletHandle::new(second.clone());
    link.add_outlet(second_handle.clone()).await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(second.payloads(), vec![json!(2)]);
    assert_eq!(second.hook_counts(), (1, 0));

    assert!(link.remove_inlet(&handle).await.unwrap());
    assert_eq!(log.shutdowns(), 1);
    assert!(!handle.active());
    assert!(link.remove_outlet(&second_handle).await.unwrap());
    assert_eq!(second.hook_counts(), (1, 1));
    assert!(
        !link.remove_inlet(&handle).await.unwrap(),
        "already removed"
    );
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_in, 0);
    assert_eq!(link.shutdown().await.len(), 0);
    assert_eq!(out.hook_counts(), (1, 1));
}

#[tokio::test]
async fn exhausted_inlets_end_with_their_last_records() {
    let out = CollectOutlet::new();
    let link = Link::builder("finite")
        .inlet(StaticInlet::values([1]).times(2))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert!(!link.is_exhausted());
    link.transfer().await.unwrap();
    assert!(link.is_exhausted());
    assert_eq!(
        out.payloads(),
        ints(3)[1..].iter().map(|_| json!(1)).collect::<Vec<_>>()
    );
    // An exhausted inlet is not pulled again.
    assert_eq!(link.transfer().await.unwrap().records_in, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_transfer_does_not_leave_the_link_transferring() {
    let (slow, _) = Probe::with(Behaviour::Count, Duration::from_secs(60));
    let link = Link::builder("cancelled").inlet(slow).build().unwrap();
    let running = tokio::spawn({
        let link = link.clone();
        async move { link.transfer().await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(link.state(), databay_core::LinkState::Transferring);
    running.abort();
    let _ = running.await;
    assert_eq!(link.state(), databay_core::LinkState::Idle);
}

#[tokio::test]
async fn every_inlet_and_outlet_is_counted_for_its_link() {
    let (bad, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let link = Link::builder("counted")
        .inlet(InletHandle::builder(bad).name("flaky").build())
        .inlet(StaticInlet::values([1, 2, 3]))
        .outlet(CollectOutlet::new())
        .outlet(BrokenOutlet { panic: false })
        .ignore_exceptions(true)
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let stats = link.node_stats();
    let row = |kind, index: usize| {
        let s = stats
            .iter()
            .find(|s| s.kind == kind && s.index == index)
            .unwrap();
        (s.name.as_str(), s.calls, s.records, s.errors)
    };
    assert_eq!(row(NodeKind::Inlet, 0), ("flaky", 2, 0, 2));
    assert_eq!(row(NodeKind::Inlet, 1), ("StaticInlet", 2, 6, 0));
    assert_eq!(row(NodeKind::Outlet, 0), ("CollectOutlet", 2, 6, 0));
    assert_eq!(row(NodeKind::Outlet, 1), ("BrokenOutlet", 2, 0, 2));
}

/// An inlet that always answers the same thing.
struct Answer(fn() -> Pull);

#[async_trait]
impl Inlet for Answer {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok((self.0)())
    }
}

/// `RetryAfter(Duration::MAX)` ("never again") must not panic the transfer:
/// errors are values, never panics.
#[tokio::test]
async fn retry_after_duration_max_does_not_panic() {
    let link = Link::builder("never")
        .inlet(Answer(|| Pull::RetryAfter(Duration::MAX)))
        .build()
        .unwrap();
    let joined = tokio::spawn(async move { link.transfer().await.map(|r| r.records_in) }).await;
    assert_eq!(join_panicked(&joined), None);
    assert_eq!(joined.unwrap().unwrap(), 0);
}

/// A link without inlets or outlets transfers (nothing); one without
/// inlets is never "exhausted".
#[tokio::test]
async fn links_without_inlets_or_outlets() {
    let bare = Link::builder("bare").build().unwrap();
    let r = bare.transfer().await.unwrap();
    assert_eq!((r.records_in, r.records_out), (0, 0));
    assert!(!bare.is_exhausted());
    bare.flush().await.unwrap();

    let sink_less = Link::builder("nowhere")
        .inlet(StaticInlet::values([1, 2]))
        .processor(Buffer::new().count_threshold(1))
        .build()
        .unwrap();
    let r = sink_less.transfer().await.unwrap();
    assert_eq!((r.records_in, r.records_out), (2, 0));
}

/// `inlet_concurrency` larger than the number of inlets: all are pulled at
/// once.
#[tokio::test(start_paused = true)]
async fn inlet_concurrency_larger_than_the_inlets() {
    let mut builder = Link::builder("wide").inlet_concurrency(10);
    for _ in 0..3 {
        builder = builder.inlet(Probe::with(Behaviour::Count, ms(100)).0);
    }
    let link = builder.build().unwrap();
    let t0 = tokio::time::Instant::now();
    let r = link.transfer().await.unwrap();
    assert_eq!(r.records_in, 3);
    assert_eq!(t0.elapsed(), ms(100));
}

/// A grouper that returns more records than it got is not policed: every
/// record it returns is pushed and counted.
#[tokio::test]
async fn a_grouper_that_duplicates_is_pushed_as_is() {
    let out = CollectOutlet::new();
    let link = Link::builder("dup")
        .inlet(StaticInlet::values([1, 2]))
        .grouper(|batches: Vec<Vec<Record>>| {
            let mut doubled = batches.clone();
            doubled.extend(batches);
            doubled
        })
        .outlet(out.clone())
        .build()
        .unwrap();
    let r = link.transfer().await.unwrap();
    assert_eq!((r.records_in, r.records_out), (2, 4));
    assert_eq!(out.batches().len(), 2);
}

/// README: "a failing processor drops the batch it was given (counted in
/// `records_dropped`)". An outlet's own processor failing under
/// `ignore_exceptions` drops the batch for that outlet, uncounted.
#[tokio::test]
async fn a_failing_outlet_processor_counts_what_it_dropped() {
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .named_processor(
            "reject",
            databay_core::processor::fallible(|_| Err("cannot enrich".into())),
        )
        .build();
    let link = Link::builder("op")
        .inlet(StaticInlet::values([1, 2]))
        .outlet(outlet)
        .ignore_exceptions(true)
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.ignored.len(), 1);
    assert_eq!(report.ignored[0].kind, NodeKind::OutletProcessor);
    assert!(out.is_empty());
    assert_eq!(link.stats().records_dropped, 2);
}

/// The same inlet instance listed twice in one link: each listing is its
/// own slot, so exhaustion and counters must be tracked per slot.
#[tokio::test]
async fn the_same_inlet_twice_in_one_link_still_finishes() {
    let inlet = InletHandle::new(StaticInlet::values([1]).times(1));
    let link = Link::builder("twice")
        .inlet(inlet.clone())
        .inlet(inlet.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let stats = link.node_stats();
    assert_eq!(
        (stats[0].calls, stats[1].calls),
        (1, 1),
        "each slot pulled once"
    );
    assert!(link.is_exhausted(), "both slots reported exhaustion");
}

#[tokio::test]
async fn update_display_with_empty_or_many_tags() {
    assert_eq!(Update::new(Vec::<String>::new(), 3).to_string(), "3");
    let untagged = Link::builder("untagged")
        .tags(Vec::<String>::new())
        .build()
        .unwrap();
    // Databay-compatible: no tags, just the index.
    assert_eq!(untagged.transfer().await.unwrap().update.to_string(), "0");
    let tagged = Link::builder("t").tags(["a", "b.c"]).build().unwrap();
    assert_eq!(
        tagged.transfer().await.unwrap().update.to_string(),
        "a.b.c.0"
    );
}

/// A grouper making batches of two.
struct Pairs;

impl databay_core::Grouper for Pairs {
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        Ok(batches
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .chunks(2)
            .map(<[Record]>::to_vec)
            .collect())
    }
}

/// Every record an outlet did not get is counted, per link and per
/// outlet, whether the failure is ignored or fails the transfer.
#[tokio::test]
async fn records_an_outlet_did_not_accept_are_counted() {
    // Ignored: each of the three batches fails at the broken outlet only.
    let good = CollectOutlet::new();
    let link = Link::builder("ignored")
        .inlet(StaticInlet::values(ints(5)))
        .grouper(Pairs)
        .outlet(good.clone())
        .outlet(BrokenOutlet { panic: false })
        .ignore_exceptions(true)
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(good.records().len(), 5);
    assert_eq!(link.stats().records_failed, 5);
    let failed: Vec<u64> = link.node_stats().iter().map(|n| n.records_failed).collect();
    assert_eq!(failed, [0, 0, 5], "inlet, good outlet, broken outlet");

    // Not ignored: the first batch fails, the other two reach no outlet.
    let good = CollectOutlet::new();
    let link = Link::builder("failing")
        .inlet(StaticInlet::values(ints(5)))
        .grouper(Pairs)
        .outlet(good.clone())
        .outlet(BrokenOutlet { panic: false })
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(link.transfer().await.is_err());
    assert_eq!(
        good.records().len(),
        2,
        "the first batch reached the good outlet"
    );
    // Broken outlet: 2 + 3 later; good outlet: the 3 later ones.
    assert_eq!(link.stats().records_failed, 8);
    let failed: Vec<u64> = link.node_stats().iter().map(|n| n.records_failed).collect();
    assert_eq!(failed, [0, 3, 5]);
}

/// Keeps even numbers, rejects odd ones (and, when told, reports a
/// position outside the batch).
struct EvenOnly {
    kept: Vec<i64>,
    bad_index: bool,
}

#[async_trait]
impl databay_core::Outlet for EvenOnly {
    async fn push(&mut self, records: &[Record], _: &Update) -> Result<(), BoxError> {
        let mut rejected = databay_core::Rejected::new();
        for (i, r) in records.iter().enumerate() {
            match r.payload.as_i64() {
                Some(n) if n % 2 == 0 => self.kept.push(n),
                _ => rejected.reject(i, format!("{} is odd", r.payload)),
            }
        }
        if self.bad_index {
            rejected.reject(records.len(), "past the end");
        }
        rejected.into_result()
    }
}

/// An outlet that refuses single records writes the rest: the transfer
/// succeeds, the rejects are counted per link and per outlet and handed
/// back with their records, the other outlets get everything.
#[tokio::test]
async fn rejected_records_are_counted_and_returned_and_the_rest_delivered() {
    let all = CollectOutlet::new();
    let link = Link::builder("rejects")
        .inlet(StaticInlet::values(ints(5)))
        .outlet(all.clone())
        .outlet(EvenOnly {
            kept: Vec::new(),
            bad_index: false,
        })
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(all.records().len(), 5);
    assert_eq!(
        report.records_out,
        5 + 3,
        "0, 2 and 4 reached the second outlet"
    );
    let rejected: Vec<(usize, String, String)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.record.payload.to_string(), r.error.to_string()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "1".into(), "1 is odd".into()),
            (3, "3".into(), "3 is odd".into())
        ]
    );
    let stats = link.stats();
    assert_eq!((stats.records_rejected, stats.records_failed), (2, 0));
    assert_eq!((stats.transfers_ok, stats.transfers_failed), (1, 0));
    let per_node: Vec<u64> = link
        .node_stats()
        .iter()
        .map(|n| n.records_rejected)
        .collect();
    assert_eq!(
        per_node,
        [0, 0, 2],
        "inlet, collecting outlet, rejecting outlet"
    );
}

/// A reject outside the batch cannot say what was written: the whole
/// push counts as failed, naming the position.
#[tokio::test]
async fn a_reject_outside_the_batch_fails_the_push() {
    let link = Link::builder("bad_rejects")
        .inlet(StaticInlet::values(ints(2)))
        .outlet(EvenOnly {
            kept: Vec::new(),
            bad_index: true,
        })
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err().to_string();
    assert!(
        err.contains("rejected record 2 of a batch of 2 records"),
        "{err}"
    );
    assert_eq!(link.stats().records_failed, 2);
}
