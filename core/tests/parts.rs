//! A large batch through a chain of stateless processors runs in parts, on
//! several cores: the records that come out, their order, and how a
//! failure or a panic in one part reads are what running each processor
//! on the whole batch gives. Every test runs the same chain twice: once
//! as [`Stateless`] processors (in parts) and once as plain processors
//! (each on the whole batch, one after the other), and compares.

use std::sync::{Arc, Mutex};

use databay_core::processor::{RecordError, Stateless};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{BoxError, Context, Link, Processor, Record, async_trait, compute};
use serde_json::{Value, json};

/// How the compute pool's threads are named.
const POOL: &str = "databay-compute-";

/// What a step does to one record: pushes what comes out, or fails.
type Step = Arc<dyn Fn(Record, &mut Vec<Record>) -> Result<(), String> + Send + Sync>;

/// A processor doing `step` to each record, as a [`Stateless`] one (run in
/// parts) when `parted`, else as a plain one (on the whole batch).
struct PerRecord {
    step: Step,
    parted: bool,
    /// The name of the thread of each call, one per part.
    threads: Arc<Mutex<Vec<String>>>,
}

impl Stateless for PerRecord {
    fn process_part(&self, records: Vec<Record>, _: &Context<'_>) -> Result<Vec<Record>, BoxError> {
        self.threads.lock().unwrap().push(
            std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned(),
        );
        let count = records.len();
        let mut out = Vec::with_capacity(count);
        for (index, record) in records.into_iter().enumerate() {
            (self.step)(record, &mut out).map_err(|e| RecordError::new(index, count, e))?;
        }
        Ok(out)
    }
}

#[async_trait]
impl Processor for PerRecord {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        self.process_part(records, cx)
    }

    fn stateless(&self) -> Option<&dyn Stateless> {
        self.parted.then_some(self as &dyn Stateless)
    }
}

fn id(record: &Record) -> u64 {
    record.payload["id"].as_u64().unwrap_or(u64::MAX)
}

/// Keeps records whose id is not a multiple of 3.
fn thin() -> Step {
    Arc::new(|r, out| {
        if !id(&r).is_multiple_of(3) {
            out.push(r);
        }
        Ok(())
    })
}

/// Passes every record on, and a copy of those whose id is a multiple of 5.
fn twice() -> Step {
    Arc::new(|r, out| {
        if id(&r).is_multiple_of(5) {
            let mut copy = r.clone();
            copy.payload["copy"] = json!(true);
            out.push(r);
            out.push(copy);
        } else {
            out.push(r);
        }
        Ok(())
    })
}

/// Adds a field computed from the id.
fn double() -> Step {
    Arc::new(|mut r, out| {
        let n = id(&r);
        r.payload["double"] = json!(n * 2);
        out.push(r);
        Ok(())
    })
}

/// Fails on the record with id `bad`.
fn fail_at(bad: u64) -> Step {
    Arc::new(move |r, out| {
        if id(&r) == bad {
            return Err(format!("id {bad} is refused"));
        }
        out.push(r);
        Ok(())
    })
}

/// Panics on the record with id `bad`.
fn panic_at(bad: u64) -> Step {
    Arc::new(move |r, out| {
        assert_ne!(id(&r), bad, "id {bad} made the step panic");
        out.push(r);
        Ok(())
    })
}

/// A plain processor, never run in parts, between stateless ones.
fn numbered(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.payload["at"] = json!(i);
            r
        })
        .collect()
}

/// What one link gave.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// The transfer's error, as it reads.
    error: Option<String>,
    payloads: Vec<Value>,
    dropped: u64,
}

/// Runs `steps` (a `None` is [`numbered`]) over records with ids
/// `0..count` in one transfer, in parts or not; returns what came out and
/// the threads that ran parts.
async fn transfer(
    steps: &[Option<Step>],
    count: u64,
    parted: bool,
    ignore_exceptions: bool,
) -> (Outcome, Vec<String>) {
    let threads = Arc::new(Mutex::new(Vec::new()));
    let out = CollectOutlet::new();
    let mut builder = Link::builder(if parted { "parted" } else { "whole" })
        .inlet(StaticInlet::values(
            (0..count).map(|id| json!({ "id": id })),
        ))
        .outlet(out.clone())
        .ignore_exceptions(ignore_exceptions);
    for step in steps {
        builder = match step {
            Some(step) => builder.processor(PerRecord {
                step: step.clone(),
                parted,
                threads: threads.clone(),
            }),
            None => builder.processor(numbered),
        };
    }
    let link = builder.build().unwrap();
    let error = link.transfer().await.err().map(|e| {
        // The link's name aside, the error must read the same.
        e.to_string()
            .replace(if parted { "parted" } else { "whole" }, "L")
    });
    let seen = threads.lock().unwrap().clone();
    let outcome = Outcome {
        error,
        payloads: out.payloads(),
        dropped: link.stats().records_dropped,
    };
    (outcome, seen)
}

/// Runs `steps` both ways and checks they agree; returns the parted run.
async fn both_ways(steps: &[Option<Step>], count: u64, ignore_exceptions: bool) -> Outcome {
    let (whole, _) = transfer(steps, count, false, ignore_exceptions).await;
    let (parted, _) = transfer(steps, count, true, ignore_exceptions).await;
    assert_eq!(
        parted.error, whole.error,
        "the error reads differently in parts"
    );
    assert_eq!(
        parted.dropped, whole.dropped,
        "records_dropped differs in parts"
    );
    assert!(
        parted.payloads == whole.payloads,
        "the records differ in parts: {} against {}, first difference at {:?}",
        parted.payloads.len(),
        whole.payloads.len(),
        (0..parted.payloads.len().max(whole.payloads.len()))
            .find(|&i| parted.payloads.get(i) != whole.payloads.get(i))
    );
    parted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_in_parts_keeps_every_record_in_order_on_several_cores() {
    // Two threads at least in the pool, whatever the machine, unless
    // another test of this file started it first.
    if !compute::set_split_threads(2) {
        assert!(
            compute::split_threads() >= 2,
            "the compute pool started with one thread: the machine has one core"
        );
    }
    // Slow enough per part that every pool thread gets some.
    let slow: Step = Arc::new(|r, out| {
        if id(&r).is_multiple_of(256) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        out.push(r);
        Ok(())
    });
    let steps = [Some(slow), Some(thin()), Some(twice()), Some(double())];
    let parted = both_ways(&steps, 20_000, false).await;
    assert_eq!(parted.error, None);
    // 20 000 less the multiples of 3, plus a copy of the multiples of 5
    // among them.
    let kept = (0..20_000u64).filter(|n| !n.is_multiple_of(3)).count();
    let copies = (0..20_000u64)
        .filter(|n| !n.is_multiple_of(3) && n.is_multiple_of(5))
        .count();
    assert_eq!(parted.payloads.len(), kept + copies);
    let (_, mut threads) = transfer(&steps, 20_000, true, false).await;
    threads.sort();
    threads.dedup();
    let pool = threads.iter().filter(|t| t.starts_with(POOL)).count();
    assert!(
        pool >= 2,
        "the parts ran on {threads:?}, not spread over the pool's threads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_processor_between_stateless_ones_sees_the_whole_batch_in_order() {
    let steps = [Some(thin()), None, Some(twice()), Some(double()), None];
    let parted = both_ways(&steps, 10_000, false).await;
    assert_eq!(parted.error, None);
    // `numbered` saw the batch whole: its positions run 0, 1, 2, ...
    let at: Vec<u64> = parted
        .payloads
        .iter()
        .map(|p| p["at"].as_u64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_record_in_one_part_reads_as_in_the_whole_batch() {
    // Far into the batch, after a stage that thinned it: its position in
    // the batch the failing stage was given is not its id.
    let steps = [
        Some(thin()),
        Some(twice()),
        Some(fail_at(13_001)),
        Some(double()),
    ];
    let parted = both_ways(&steps, 20_000, false).await;
    let error = parted.error.expect("the transfer failed");
    // 13 001 less the 4 334 multiples of 3 below it, plus a copy of each
    // of the 1 734 others that are multiples of 5, in a batch of the
    // 13 333 kept and their 2 666 copies.
    assert!(
        error.ends_with("record 10401 of 15999: id 13001 is refused"),
        "{error}"
    );
    assert!(parted.payloads.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earliest_failing_stage_wins_over_an_earlier_record_failing_later() {
    // Stage 3 fails on id 10, in the first part; stage 2 fails on id
    // 15 001, in a later one. The whole batch meets stage 2's first.
    let steps = [Some(thin()), Some(fail_at(15_001)), Some(fail_at(10))];
    let parted = both_ways(&steps, 20_000, false).await;
    let error = parted.error.expect("the transfer failed");
    assert!(error.contains("id 15001 is refused"), "{error}");
    // Two failing parts at the same stage: the first part's record.
    let same: Step = Arc::new(|r, out| {
        if matches!(id(&r), 4_000 | 17_000) {
            return Err(format!("id {} is refused", id(&r)));
        }
        out.push(r);
        Ok(())
    });
    let parted = both_ways(&[Some(thin()), Some(same)], 20_000, false).await;
    let error = parted.error.expect("the transfer failed");
    assert!(error.ends_with("id 4000 is refused"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_part_reads_as_that_processors_panic() {
    let steps = [Some(thin()), Some(panic_at(9_998)), Some(double())];
    let parted = both_ways(&steps, 20_000, false).await;
    let error = parted.error.expect("the transfer failed");
    assert!(error.contains("processor `PerRecord`"), "{error}");
    assert!(
        error.contains("panicked: assertion `left != right` failed: id 9998 made the step panic"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_failures_drop_the_batch_where_it_failed_and_go_on() {
    // The batch is dropped at stage 2 (13 333 records counted), and the
    // stages after it, plain or stateless, get nothing.
    let steps = [Some(thin()), Some(fail_at(7)), None, Some(double())];
    let parted = both_ways(&steps, 20_000, true).await;
    assert_eq!(parted.error, None);
    assert_eq!(parted.dropped, 13_333);
    assert!(parted.payloads.is_empty());
    // A panic is dropped the same way.
    let steps = [Some(twice()), Some(panic_at(19_999))];
    let parted = both_ways(&steps, 20_000, true).await;
    assert_eq!(parted.dropped, 24_000);
}

#[tokio::test(flavor = "current_thread")]
async fn on_one_thread_the_parts_run_in_turn_and_agree() {
    let steps = [Some(thin()), Some(twice()), Some(fail_at(19_000))];
    let parted = both_ways(&steps, 20_000, false).await;
    assert!(parted.error.is_some());
    let parted = both_ways(&[Some(thin()), Some(twice()), Some(double())], 5_000, false).await;
    assert_eq!(parted.error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_is_not_cut_into_parts() {
    let (outcome, threads) = transfer(&[Some(double())], 1_000, true, false).await;
    assert_eq!(outcome.payloads.len(), 1_000);
    assert_eq!(threads.len(), 1, "a batch of 1 000 was cut: {threads:?}");
    assert!(
        !threads.iter().any(|t| t.starts_with(POOL)),
        "a batch of 1 000 went to the compute pool: {threads:?}"
    );
    // A large one is.
    let (_, threads) = transfer(&[Some(double())], 1_024, true, false).await;
    assert_eq!(
        threads.len(),
        4,
        "a batch of 1 024 in parts of 256: {threads:?}"
    );
}
