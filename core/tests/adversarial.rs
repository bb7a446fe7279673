//! Adversarial tests of the engine: races between the planner's controls,
//! edge values (zero, huge durations), misbehaving user code (panicking
//! callbacks, odd groupers, stale wake-ups) and the promises of the docs.
//!
//! A test marked `#[ignore]` documents behaviour that a later issue brings;
//! run them with `cargo test -p databay-core --test adversarial -- --ignored`.
//! Tests that could spin forever on a bug are self-limiting: the user code
//! they drive stops misbehaving after a number of calls, so a failing test
//! fails instead of hanging.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Behaviour, Probe, ProbeLog, eventually};
use databay_core::processor::{Context, Processor};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BoxError, Buffer, Failure, Inlet, InletHandle, Link, LinkState, Metadata, NodeError, NodeKind,
    Origin, Outlet, OutletHandle, Planner, PlannerError, Pull, Record, Schedule, TransferError,
    Update, async_trait,
};
use serde_json::json;
use tokio::task::JoinHandle;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run(planner: &Planner) -> JoinHandle<Result<(), PlannerError>> {
    let p = planner.clone();
    tokio::spawn(async move { p.start().await })
}

/// How many times a self-limiting misbehaving node misbehaves before it
/// gives up (so a spinning engine ends the test instead of hanging it).
const SPIN_LIMIT: usize = 10_000;

/// An inlet whose `on_start` takes a while: it widens the window in which
/// a link is being started.
struct SlowStart {
    log: Arc<ProbeLog>,
    start_delay: Duration,
}

#[async_trait]
impl Inlet for SlowStart {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let n = self.log.pulls.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.events.lock().unwrap().push("pull".into());
        Ok(Pull::value(n))
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        tokio::time::sleep(self.start_delay).await;
        self.log.starts.fetch_add(1, Ordering::SeqCst);
        self.log.events.lock().unwrap().push("start".into());
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.log.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.log.events.lock().unwrap().push("shutdown".into());
        Ok(())
    }
}

/// An inlet that always answers the same thing.
struct Answer(fn() -> Pull);

#[async_trait]
impl Inlet for Answer {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok((self.0)())
    }
}

/// An inlet that answers `RetryAfter(ZERO)` up to `SPIN_LIMIT` times.
struct RetryNow(Arc<AtomicUsize>);

#[async_trait]
impl Inlet for RetryNow {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        if n < SPIN_LIMIT {
            Ok(Pull::RetryAfter(Duration::ZERO))
        } else {
            Ok(Pull::Nothing)
        }
    }
}

/// An outlet that fails its first `fail_first` pushes, then collects.
#[derive(Clone)]
struct Flaky {
    fail_first: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Flaky {
    fn new(fail_first: usize) -> Self {
        Flaky {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            got: Arc::default(),
        }
    }

    fn payloads(&self) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        let left = self.fail_first.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_first.store(left - 1, Ordering::SeqCst);
            return Err("connection reset".into());
        }
        self.got
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| r.payload.clone()));
        Ok(())
    }
}

/// An inlet that produces 1, 2, 3, ... (one record a pull).
struct Counter(u64);

#[async_trait]
impl Inlet for Counter {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        self.0 += 1;
        Ok(Pull::value(self.0))
    }
}

/// A processor that passes records through and asks, up to `SPIN_LIMIT`
/// calls, to be woken at the instant of its first call: a deadline that
/// is already in the past by the time the link looks at it.
struct StaleWakeup {
    calls: Arc<AtomicUsize>,
    at: Option<Instant>,
}

#[async_trait]
impl Processor for StaleWakeup {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.at.get_or_insert(cx.now);
        Ok(records)
    }

    fn next_wakeup(&self) -> Option<Instant> {
        if self.calls.load(Ordering::SeqCst) < SPIN_LIMIT {
            self.at
        } else {
            None
        }
    }
}

fn join_panicked<T>(r: &Result<T, tokio::task::JoinError>) -> Option<String> {
    match r {
        Err(e) if e.is_panic() => Some(format!("{e}")),
        _ => None,
    }
}

// --- races between planner controls ------------------------------------------

/// `add_link` while the planner shuts down: the link's `on_start` is still
/// running when the planner stops. Whatever the outcome of `add_link`, a
/// stopped planner must leave no timer task behind, and the link's nodes
/// must not be pulled after their `on_shutdown`.
#[tokio::test(start_paused = true)]
async fn add_link_racing_shutdown_leaves_no_driver_behind() {
    let planner = Planner::new([Link::builder("base").every(ms(100)).build().unwrap()]).unwrap();
    let task = run(&planner);
    assert!(eventually(ms(100), || planner.running()).await);

    let log = Arc::new(ProbeLog::default());
    let late = Link::builder("late")
        .inlet(SlowStart {
            log: log.clone(),
            start_delay: ms(200),
        })
        .every(ms(100))
        .build()
        .unwrap();
    let adder = tokio::spawn({
        let planner = planner.clone();
        async move { planner.add_link(late).await }
    });
    tokio::time::sleep(ms(10)).await; // `late` is inside on_start
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    let _ = adder.await.unwrap();
    assert!(!planner.running());

    let pulls_at_stop = log.pulls();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        log.pulls(),
        pulls_at_stop,
        "the link kept transferring after the planner stopped; events: {:?}",
        log.events()
    );
    assert_eq!(log.starts(), log.shutdowns(), "events: {:?}", log.events());
    if let Some(i) = log.events().iter().position(|e| e == "shutdown") {
        assert!(
            !log.events()[i..].iter().any(|e| e == "pull"),
            "pulled after on_shutdown: {:?}",
            log.events()
        );
    }
}

/// `remove_link` while a transfer is in flight: it waits for the transfer,
/// then flushes (so the record pulled in flight is delivered, exactly
/// once), then runs `on_shutdown`.
#[tokio::test(start_paused = true)]
async fn remove_link_mid_transfer_flushes_after_it_exactly_once() {
    let (probe, log) = Probe::with(Behaviour::Count, ms(200));
    let out = CollectOutlet::new();
    let buffer = Buffer::new().count_threshold(1_000);
    let link = Link::builder("x")
        .inlet(probe)
        .processor(buffer.clone())
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    assert_eq!(link.state(), LinkState::Transferring);

    let t0 = tokio::time::Instant::now();
    let removed = planner.remove_link("x").await.unwrap();
    assert!(removed.same_as(&link));
    assert!(t0.elapsed() >= ms(150), "did not wait for the transfer");
    assert_eq!(out.payloads(), vec![json!(1)]);
    assert!(buffer.is_empty(), "the flush ran before the transfer ended");
    assert_eq!(log.events(), ["start", "pull", "shutdown"]);
    assert_eq!(out.hook_counts(), (1, 1));
    assert_eq!(link.state(), LinkState::Idle);

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log.pulls(), 1);
    assert_eq!(out.len(), 1);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(out.hook_counts(), (1, 1), "not shut down twice");
}

/// Pausing while a transfer is in flight lets it finish and then stops the
/// schedule; resuming restarts the schedule from the resume.
#[tokio::test(start_paused = true)]
async fn pause_during_a_transfer_lets_it_finish_then_stops() {
    let (probe, log) = Probe::with(Behaviour::Count, ms(200));
    let out = CollectOutlet::new();
    let link = Link::builder("p")
        .inlet(probe)
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    link.pause();
    tokio::time::sleep(ms(200)).await;
    assert_eq!(out.len(), 1, "the in-flight transfer completed");
    assert_eq!(link.state(), LinkState::Paused);
    tokio::time::sleep(ms(800)).await;
    assert_eq!(log.pulls(), 1);
    link.resume(); // at 1050: the next tick is at 1150
    tokio::time::sleep(ms(90)).await;
    assert_eq!(log.pulls(), 1);
    tokio::time::sleep(ms(20)).await;
    assert_eq!(log.pulls(), 2);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// A tick that falls while a forced transfer holds the link is skipped and
/// counted, not queued behind it.
#[tokio::test(start_paused = true)]
async fn a_tick_during_a_forced_transfer_is_skipped_and_counted() {
    let (probe, log) = Probe::with(Behaviour::Count, ms(170));
    let link = Link::builder("f")
        .inlet(probe)
        .every(ms(100))
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    let forced = tokio::spawn({
        let link = link.clone();
        async move { link.transfer().await } // 50 .. 220 ms
    });
    tokio::time::sleep(ms(200)).await; // 250
    assert_eq!(forced.await.unwrap().unwrap().update.to_string(), "f.0");
    assert_eq!(log.pulls(), 1, "the missed ticks were not queued");
    assert_eq!(link.stats().ticks_skipped, 2, "ticks at 100 and 200");
    tokio::time::sleep(ms(100)).await; // 350: the 300 tick ran
    assert_eq!(log.pulls(), 2);
    assert_eq!(log.max_in_flight(), 1, "never overlapped");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// A forced transfer (admin `POST /links/{name}/transfer`) that gives a
/// buffer its first record arms the buffer's time threshold: the link
/// wakes for it between scheduled transfers, as the README promises.
#[tokio::test(start_paused = true)]
async fn a_forced_transfer_arms_the_buffer_time_threshold() {
    let out = CollectOutlet::new();
    let link = Link::builder("held")
        .inlet(StaticInlet::values([1]))
        .processor(Buffer::new().time_threshold(ms(300)))
        .outlet(out.clone())
        .every(Duration::from_secs(10))
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in planner.force_transfer().await {
        r.unwrap();
    }
    assert!(out.is_empty());
    tokio::time::sleep(ms(400)).await;
    assert_eq!(
        out.len(),
        1,
        "released at 1.3 s, not at the next tick (10 s)"
    );
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// Same root cause, inlet side: `RetryAfter` answered to a forced transfer
/// is not honoured before the next tick.
#[tokio::test(start_paused = true)]
async fn a_forced_transfer_arms_an_inlet_retry() {
    let (probe, log) = Probe::with(Behaviour::RetryFirst(ms(300)), Duration::ZERO);
    let link = Link::builder("r")
        .inlet(probe)
        .every(Duration::from_secs(10))
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(Duration::from_secs(1)).await;
    link.transfer().await.unwrap();
    assert_eq!(log.pulls(), 1);
    tokio::time::sleep(ms(400)).await;
    assert_eq!(log.pulls(), 2, "retried at 1.3 s, not at the next tick");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// Graceful shutdown is bounded by the grace period, and `shutdown(false)`
/// cancels in-flight transfers: that must hold for a forced transfer
/// (`Planner::force_transfer`, admin `POST /links/{name}/transfer`) too, not
/// only for the timer's own transfers. Here the forced pull hangs; the
/// planner then waits for it forever (on the pipeline lock for the flush,
/// and on the inlet's lock for `on_shutdown`).
#[tokio::test(start_paused = true)]
async fn shutdown_is_bounded_even_with_a_forced_transfer_in_flight() {
    for wait in [true, false] {
        let (slow, _) = Probe::with(Behaviour::Count, Duration::from_secs(3600));
        let link = Link::builder("stuck")
            .inlet(slow)
            .processor(Buffer::new().count_threshold(10))
            .every(Duration::from_secs(3600))
            .immediate_transfer(false)
            .build()
            .unwrap();
        let planner = Planner::builder()
            .shutdown_grace(Duration::from_secs(2))
            .link(link.clone())
            .build()
            .unwrap();
        let task = run(&planner);
        tokio::time::sleep(ms(10)).await;
        let _forced = tokio::spawn({
            let link = link.clone();
            async move { link.transfer().await }
        });
        tokio::time::sleep(ms(10)).await;
        assert_eq!(link.state(), LinkState::Transferring);
        planner.shutdown(wait);
        let stopped = tokio::time::timeout(Duration::from_secs(60), task).await;
        assert!(
            stopped.is_ok(),
            "shutdown({wait}) with a 2 s grace still running after 60 s"
        );
    }
}

/// Two links sharing an inlet: removing one leaves the instance active
/// (no `on_shutdown`); removing the other shuts it down, once.
#[tokio::test(start_paused = true)]
async fn removing_one_of_two_links_sharing_an_inlet_keeps_it_active() {
    let (probe, log) = Probe::new();
    let shared = InletHandle::new(probe);
    let planner = Planner::new([
        Link::builder("a")
            .inlet(shared.clone())
            .every(ms(100))
            .build()
            .unwrap(),
        Link::builder("b")
            .inlet(shared.clone())
            .every(ms(100))
            .build()
            .unwrap(),
    ])
    .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(150)).await;
    planner.remove_link("a").await.unwrap();
    assert!(shared.active());
    assert_eq!(log.shutdowns(), 0);
    let pulls = log.pulls();
    tokio::time::sleep(ms(200)).await;
    assert_eq!(log.pulls(), pulls + 2, "b keeps pulling it");
    planner.remove_link("b").await.unwrap();
    assert!(!shared.active());
    assert_eq!((log.starts(), log.shutdowns()), (1, 1));
    // Paused links are removed at once, too.
    let (probe, plog) = Probe::new();
    let paused = Link::builder("paused")
        .inlet(probe)
        .every(ms(100))
        .build()
        .unwrap();
    planner.add_link(paused.clone()).await.unwrap();
    tokio::time::sleep(ms(10)).await; // its immediate transfer
    paused.pause();
    tokio::time::sleep(ms(500)).await;
    let t0 = tokio::time::Instant::now();
    planner.remove_link("paused").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!((plog.pulls(), plog.shutdowns()), (1, 1));
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(log.shutdowns(), 1, "not shut down twice");
}

/// Starting a planner again after it stopped: every node is started and
/// shut down once per run, transfers resume, and update indices continue.
#[tokio::test(start_paused = true)]
async fn a_planner_restarts_after_shutdown() {
    let (probe, log) = Probe::new();
    let out = CollectOutlet::new();
    let link = Link::builder("again")
        .inlet(probe)
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    for round in 1..=2usize {
        let task = run(&planner);
        tokio::time::sleep(ms(250)).await;
        assert_eq!(log.pulls(), 3 * round);
        assert_eq!(log.starts(), round);
        assert_eq!(log.shutdowns(), round - 1);
        planner.shutdown(true);
        task.await.unwrap().unwrap();
        assert_eq!(log.shutdowns(), round);
        assert_eq!(out.hook_counts(), (round, round));
        assert!(!planner.running());
        assert_eq!(link.state(), LinkState::Idle);
    }
    let batches = out.batches();
    assert_eq!(batches.last().unwrap().0, "again.5");
}

/// `stop_when_finished`: removing the last link that had not finished
/// leaves only finished links, so the planner should stop.
#[tokio::test(start_paused = true)]
async fn stop_when_finished_after_removing_the_last_unfinished_link() {
    let (endless, _) = Probe::new();
    let planner = Planner::builder()
        .stop_when_finished(true)
        .link(
            Link::builder("finite")
                .inlet(StaticInlet::values([1]).times(1))
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .link(
            Link::builder("endless")
                .inlet(endless)
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let mut task = run(&planner);
    tokio::time::sleep(ms(300)).await;
    assert_eq!(planner.link("finite").unwrap().state(), LinkState::Finished);
    planner.remove_link("endless").await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), &mut task).await;
    if stopped.is_err() {
        planner.shutdown(true);
        task.await.unwrap().unwrap();
    }
    assert!(
        stopped.is_ok(),
        "every remaining link finished, yet the planner kept running"
    );
}

/// An inlet exhausted on its very first pull stops a `stop_when_finished`
/// planner at once, after flushing and shutting down.
#[tokio::test(start_paused = true)]
async fn an_input_exhausted_on_its_first_pull_stops_the_planner() {
    let out = CollectOutlet::new();
    let link = Link::builder("empty")
        .inlet(StaticInlet::values([1]).times(0))
        .processor(Buffer::new().count_threshold(10))
        .outlet(out.clone())
        .every(Duration::from_secs(3600))
        .build()
        .unwrap();
    let planner = Planner::builder()
        .stop_when_finished(true)
        .link(link.clone())
        .build()
        .unwrap();
    tokio::time::timeout(ms(100), planner.start())
        .await
        .expect("stopped without waiting for a tick")
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(out.hook_counts(), (1, 1));
    assert_eq!(link.state(), LinkState::Finished);
    assert!(link.is_exhausted());
}

// --- edge values -------------------------------------------------------------

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

/// `RetryAfter(ZERO)` asks to be pulled again at once. Answered again and
/// again, it must not turn the link into a hot loop that never lets the
/// clock move (here: 10 000 pulls without a millisecond passing).
#[tokio::test(start_paused = true)]
async fn retry_after_zero_does_not_busy_loop() {
    let pulls = Arc::new(AtomicUsize::new(0));
    let link = Link::builder("eager")
        .inlet(RetryNow(pulls.clone()))
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(100)).await;
    let n = pulls.load(Ordering::SeqCst);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert!(
        n <= 101,
        "{n} pulls in 100 ms (the limit of this self-limiting inlet is {SPIN_LIMIT})"
    );
}

/// `Schedule::every` accepts any non-zero interval; a huge one ("in effect
/// never") must not panic the link's timer: the immediate transfer still
/// happens and nothing else.
#[tokio::test(start_paused = true)]
async fn a_huge_interval_does_not_panic_the_timer() {
    // Refusing such an interval up front would be a fix too.
    let Ok(schedule) = Schedule::every(Duration::MAX) else {
        return;
    };
    let (probe, log) = Probe::new();
    let link = Link::builder("rare")
        .inlet(probe)
        .schedule(schedule)
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(100)).await;
    let pulls = log.pulls();
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(pulls, 1, "the immediate transfer did not happen");
}

/// A huge jitter must not panic the timer either. The jitter draw is made
/// deterministic by seeding fastrand (the test runtime is single-threaded,
/// so the link's timer draws on this thread). The inlet asks for a retry in
/// 100 ms: a live timer honours it, a dead one does not.
#[tokio::test(start_paused = true)]
async fn a_huge_jitter_does_not_panic_the_timer() {
    let seed = (0u64..)
        .find(|s| {
            fastrand::seed(*s);
            let r = fastrand::f64();
            (0.6..0.9).contains(&r)
        })
        .unwrap();
    let (probe, log) = Probe::with(Behaviour::RetryFirst(ms(100)), Duration::ZERO);
    let link = Link::builder("jittery")
        .inlet(probe)
        .schedule(
            Schedule::every(Duration::from_secs(1))
                .unwrap()
                .jitter(Duration::MAX),
        )
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    fastrand::seed(seed);
    let task = run(&planner);
    tokio::time::sleep(ms(200)).await;
    let pulls = log.pulls();
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(
        pulls, 2,
        "the retry after 100 ms never came: the timer died"
    );
}

/// A buffer whose time threshold is huge ("release on count only, in
/// practice") must not panic the transfer.
#[tokio::test]
async fn a_huge_buffer_time_threshold_does_not_panic() {
    let out = CollectOutlet::new();
    let link = Link::builder("patient")
        .inlet(StaticInlet::values([1]))
        .processor(
            Buffer::new()
                .time_threshold(Duration::MAX)
                .count_threshold(2),
        )
        .outlet(out.clone())
        .build()
        .unwrap();
    let joined = tokio::spawn(async move {
        link.transfer().await.unwrap();
        link.transfer().await.unwrap();
    })
    .await;
    assert_eq!(join_panicked(&joined), None);
    assert_eq!(out.len(), 2);
}

/// Jitter larger than the interval: transfers take no time, so no tick is
/// missed "because the previous transfer overran" and none may be counted
/// as skipped (nor warned about).
#[tokio::test(start_paused = true)]
async fn jitter_larger_than_the_interval_counts_no_overrun() {
    let (probe, log) = Probe::new();
    let link = Link::builder("j")
        .inlet(probe)
        .schedule(
            Schedule::every(ms(100))
                .unwrap()
                .jitter(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(Duration::from_secs(10)).await;
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert!(log.pulls() > 1);
    assert_eq!(
        link.stats().ticks_skipped,
        0,
        "{} transfers, none overran",
        log.pulls()
    );
}

/// `align_to` larger than the interval is taken modulo the interval.
#[test]
fn align_to_larger_than_the_interval_wraps() {
    use chrono::{DateTime, Utc};
    let hour = Duration::from_secs(3600);
    let long = Schedule::every(hour)
        .unwrap()
        .align_to(Duration::from_secs(75 * 60));
    let short = Schedule::every(hour)
        .unwrap()
        .align_to(Duration::from_secs(15 * 60));
    for t in [
        "2026-01-01T10:20:00Z",
        "2026-01-01T10:14:59Z",
        "2026-01-01T10:15:00Z",
    ] {
        let t: DateTime<Utc> = t.parse().unwrap();
        assert_eq!(long.next_after(t), short.next_after(t), "after {t}");
    }
}

/// A cron expression that can never fire ("Feb 30") neither fires nor
/// spins; the link just has no next transfer.
#[tokio::test(start_paused = true)]
async fn a_cron_that_never_fires_is_quiet() {
    let schedule = match Schedule::cron("0 0 30 2 *", "UTC") {
        Ok(s) => s,
        // Refusing it up front would be fine too.
        Err(e) => {
            assert!(e.to_string().contains("0 0 30 2 *"), "{e}");
            return;
        }
    };
    let t0 = Instant::now();
    assert_eq!(schedule.next_after(chrono::Utc::now()), None);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    let (probe, log) = Probe::new();
    let link = Link::builder("feb30")
        .inlet(probe)
        .schedule(schedule)
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(log.pulls(), 0);
    assert_eq!(link.next_transfer(), None);
    assert_eq!(link.state(), LinkState::Scheduled);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
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

// --- groupers ----------------------------------------------------------------

fn drop_empty_batches(batches: Vec<Vec<Record>>) -> Vec<Vec<Record>> {
    batches.into_iter().filter(|b| !b.is_empty()).collect()
}

/// A grouper that drops empty batches is a valid grouper by its contract
/// ("flattening the result should give back the same records"), yet then
/// a flush never reaches the outlets' processors: what an outlet-level
/// buffer holds is lost on graceful shutdown.
#[tokio::test(start_paused = true)]
async fn outlet_buffers_are_flushed_whatever_the_groupers_return() {
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .processor(Buffer::new().count_threshold(100))
        .build();
    let link = Link::builder("g")
        .inlet(StaticInlet::values([1]))
        .grouper(drop_empty_batches)
        .outlet(outlet)
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(250)).await;
    assert!(out.is_empty());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(out.hook_counts(), (1, 1));
    assert_eq!(out.len(), 3, "the outlet buffer's records were lost");
}

/// Same cause, timer side: the outlet buffer's time threshold is never
/// served, and the link spins on the deadline it cannot reach.
#[tokio::test(start_paused = true)]
async fn outlet_buffer_timer_with_a_grouper_that_drops_empty_batches() {
    let calls = Arc::new(AtomicUsize::new(0));
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .processor(Buffer::new().time_threshold(ms(300)))
        .build();
    let grouper = {
        let calls = calls.clone();
        move |batches: Vec<Vec<Record>>| {
            // Self-limiting: after SPIN_LIMIT calls it passes empty batches on.
            if calls.fetch_add(1, Ordering::SeqCst) + 1 < SPIN_LIMIT {
                drop_empty_batches(batches)
            } else {
                batches
            }
        }
    };
    let link = Link::builder("t")
        .inlet(StaticInlet::values([1]))
        .grouper(grouper)
        .outlet(outlet)
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(500)).await;
    let n = calls.load(Ordering::SeqCst);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert!(n < 10, "the grouper ran {n} times in 500 ms");
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

/// Two links sharing an outlet that carries a buffer: records of both
/// accumulate in it, graceful shutdown flushes them all, and the outlet
/// starts and shuts down once.
#[tokio::test(start_paused = true)]
async fn a_shared_outlet_with_a_buffer_is_flushed_once_for_both_links() {
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .processor(Buffer::new().count_threshold(1_000))
        .build();
    let a = Link::builder("a")
        .inlet(StaticInlet::values(["a"]))
        .outlet(outlet.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let b = Link::builder("b")
        .inlet(StaticInlet::values(["b"]))
        .outlet(outlet.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([a, b]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(250)).await;
    assert!(out.is_empty());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    let mut got: Vec<String> = out
        .payloads()
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["a", "a", "a", "b", "b", "b"]);
    assert_eq!(out.hook_counts(), (1, 1));
}

// --- processors and buffers --------------------------------------------------

/// A processor whose wake-up stays in the past after it ran: the link must
/// not run timer transfers back to back (each one bumps the update index
/// and `transfers_ok`). The Buffer guards itself against this (`last_eval`);
/// the engine does not.
#[tokio::test(start_paused = true)]
async fn a_stale_processor_wakeup_does_not_spin() {
    let calls = Arc::new(AtomicUsize::new(0));
    let link = Link::builder("stale")
        .inlet(StaticInlet::values([1]))
        .processor(StaleWakeup {
            calls: calls.clone(),
            at: None,
        })
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(500)).await;
    let n = calls.load(Ordering::SeqCst);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert!(
        n < 10,
        "{n} processor calls in 500 ms; transfers_ok = {}",
        link.stats().transfers_ok
    );
}

/// A panicking `on_reset` runs after the buffer took its records out for
/// release: they are dropped during unwinding. Every record must end up
/// either delivered or counted in `records_dropped`.
#[tokio::test]
async fn a_panicking_on_reset_does_not_lose_records_silently() {
    let out = CollectOutlet::new();
    let link = Link::builder("reset")
        .inlet(StaticInlet::values([1]))
        .processor(
            Buffer::new()
                .count_threshold(3)
                .on_reset(|| panic!("reset hook failed")),
        )
        .outlet(out.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    for _ in 0..3 {
        link.transfer().await.unwrap();
    }
    // The panic is contained by the buffer (logged); the release goes on.
    let stats = link.stats();
    assert_eq!(stats.errors, 0);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out.len() as u64 + stats.records_dropped,
        3,
        "delivered {}, counted dropped {}",
        out.len(),
        stats.records_dropped
    );
}

/// A panicking custom controller: the records stay in the buffer (which
/// stays usable) and are released later, yet the failed call counted them
/// as dropped.
#[tokio::test]
async fn a_panicking_controller_does_not_count_kept_records_as_dropped() {
    let first = Arc::new(AtomicBool::new(true));
    let buffer = {
        let first = first.clone();
        Buffer::new()
            .custom_controller(move |_| {
                if first.swap(false, Ordering::SeqCst) {
                    panic!("controller failed");
                }
                false
            })
            .count_threshold(2)
    };
    let out = CollectOutlet::new();
    let link = Link::builder("ctl")
        .inlet(StaticInlet::values([1]))
        .processor(buffer.clone())
        .outlet(out.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    // Either the record is kept (and not counted as dropped) or dropped
    // (and counted); today it is kept, delivered, and counted as dropped.
    let dropped = link.stats().records_dropped;
    assert_eq!(
        out.len() as u64 + dropped,
        2,
        "delivered {}, counted as dropped {dropped}",
        out.len()
    );
}

/// After a controller panic the buffer (its lock poisoned) stays usable.
#[tokio::test]
async fn a_buffer_stays_usable_after_a_controller_panic() {
    let first = Arc::new(AtomicBool::new(true));
    let buffer = {
        let first = first.clone();
        Buffer::new()
            .custom_controller(move |_| {
                if first.swap(false, Ordering::SeqCst) {
                    panic!("controller failed");
                }
                false
            })
            .count_threshold(3)
    };
    let out = CollectOutlet::new();
    let link = Link::builder("ctl")
        .inlet(StaticInlet::values([1]))
        .processor(buffer.clone())
        .outlet(out.clone())
        .build()
        .unwrap();
    // The buffer contains its controller's panic (logged): the transfer
    // goes on and the record stays held.
    link.transfer().await.unwrap();
    assert_eq!(buffer.len(), 1);
    link.transfer().await.unwrap();
    assert_eq!(buffer.len(), 2);
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(buffer.is_empty());
    assert!(format!("{buffer:?}").contains("held: 0"), "{buffer:?}");
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

/// Records a buffer released into a transfer whose push fails are neither
/// retried, nor put back, nor sent anywhere: they are gone. DESIGN.md:
/// "Failed pushes are retried with backoff; what still fails goes to an
/// optional dead-letter outlet or fails the transfer (nothing committed,
/// re-pulled later)" and "records held in Buffers" are checkpointed.
#[tokio::test]
#[ignore = "not yet: failed pushes are retried or sent to a dead-letter outlet by the delivery issue, not this one"]
async fn a_failed_push_does_not_lose_buffered_records() {
    let outlet = Flaky::new(1);
    let link = Link::builder("flaky")
        .inlet(Counter(0))
        .processor(Buffer::new().count_threshold(2))
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap(); // holds 1
    // Releases 1 and 2; the push fails (a retry inside the transfer, as
    // DESIGN.md asks, would make it succeed: either is fine here).
    let _ = link.transfer().await;
    link.transfer().await.unwrap(); // holds 3 (and 1, 2?)
    link.flush().await.unwrap();
    let mut got = outlet.payloads();
    got.sort_by_key(|v| v.as_u64());
    assert_eq!(got, [json!(1), json!(2), json!(3)]);
}

// --- inlets ------------------------------------------------------------------

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

// --- records, updates, errors ------------------------------------------------

fn origin() -> Arc<Origin> {
    let mut global = Metadata::new();
    global.insert("animal".into(), json!("cat"));
    global.insert("color".into(), json!("black"));
    Arc::new(Origin::new("zoo", global))
}

#[test]
fn record_metadata_edge_cases() {
    let o = origin();

    // A local entry shadowing a global one: removing the key removes it
    // from every layer (the global value does not resurface).
    let mut r = Record::new(1).with_meta("animal", "parrot");
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta("animal"), Some(json!("parrot")));
    assert_eq!(r.meta("animal"), None);
    assert_eq!(r.meta("color"), Some(&json!("black")));
    assert_eq!(r.inlet(), Some("zoo"));
    assert_eq!(o.global().get("animal"), Some(&json!("cat")));

    // Removing a key no layer has changes nothing and keeps sharing.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta("missing"), None);
    assert!(Arc::ptr_eq(r.origin().unwrap(), &o));

    // `__inlet__` can be removed, and overridden locally.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta(databay_core::INLET_KEY), Some(json!("zoo")));
    assert_eq!(r.inlet(), None);
    assert_eq!(r.meta("animal"), Some(&json!("cat")));
    let mut r = Record::new(1).with_meta(databay_core::INLET_KEY, "elsewhere");
    r.set_origin(o.clone());
    assert_eq!(r.inlet(), Some("elsewhere"));

    // After detaching, set/remove keep working and clones are independent.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    r.remove_meta("color");
    let copy = r.clone();
    r.set_meta("color", "white");
    assert_eq!(r.meta("color"), Some(&json!("white")));
    assert_eq!(copy.meta("color"), None);
    assert_eq!(r.remove_meta("color"), Some(json!("white")));
    assert_eq!(r.remove_meta("animal"), Some(json!("cat")));
    assert_eq!(r.remove_meta("animal"), None);
    assert_eq!(r.metadata().len(), 1, "{:?}", r.metadata());

    // Equality compares the merged view, whatever the layering.
    let mut shared = Record::new(1);
    shared.set_origin(o.clone());
    let mut detached = shared.clone();
    detached.remove_meta("missing");
    detached.set_meta("x", 1);
    detached.remove_meta("x");
    assert_eq!(shared, detached);

    // No metadata at all.
    let bare = Record::new(json!([1, 2]));
    assert!(bare.metadata().is_empty());
    assert_eq!(bare.to_string(), "Record(payload=[1,2], metadata={})");
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        json!({"payload": [1, 2], "metadata": {}})
    );
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

/// A link whose tag starts with `on_` (`on_call`, `on_prem_sync`): its
/// transfer errors must read as transfer errors, not as lifecycle hooks.
#[tokio::test]
async fn node_error_display_for_a_link_named_on_something() {
    let (probe, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let link = Link::builder("on_call").inlet(probe).build().unwrap();
    let err = link.transfer().await.unwrap_err();
    let text = err.errors[0].to_string();
    assert_eq!(
        text,
        "link `on_call`, update on_call.0, inlet `Probe`: probe failed on pull 1"
    );
}

#[test]
fn node_error_display_for_hooks_and_failures() {
    let hook = NodeError::new(
        "l",
        "on_shutdown",
        NodeKind::OutletProcessor,
        "csv/buffer",
        Failure::Panic("boom".into()),
    );
    assert_eq!(
        hook.to_string(),
        "link `l`, outlet processor `csv/buffer`, on_shutdown: panicked: boom"
    );
    let timeout = NodeError::new(
        "l",
        "l.7",
        NodeKind::Grouper,
        "groupers[0]",
        Failure::Timeout(Duration::from_millis(1500)),
    );
    assert_eq!(
        timeout.to_string(),
        "link `l`, update l.7, grouper `groupers[0]`: timed out after 1.5s"
    );
    assert!(std::error::Error::source(&timeout).is_some());
}

/// Every inlet of a failing transfer is reported, the first in the
/// message, the count of the others after it.
#[tokio::test]
async fn transfer_error_with_many_errors() {
    let mut builder = Link::builder("many");
    for i in 0..3 {
        let (p, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
        builder = builder.inlet(InletHandle::builder(p).name(format!("in{i}")).build());
    }
    let link = builder.build().unwrap();
    let err: TransferError = link.transfer().await.unwrap_err();
    assert_eq!(err.errors.len(), 3);
    assert_eq!(
        err.to_string(),
        "transfer many.0 of link `many` failed: inlet `in0`: probe failed on pull 1 (and 2 more)"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("inlet `in0`"), "{source}");
    let stats = link.stats();
    assert_eq!((stats.transfers_failed, stats.errors), (1, 3));
    assert!(stats.last_error.unwrap().contains("(and 2 more)"));

    let single = Link::builder("one")
        .inlet(Probe::with(Behaviour::Panic, Duration::ZERO).0)
        .build()
        .unwrap()
        .transfer()
        .await
        .unwrap_err();
    assert!(!single.to_string().contains("more"), "{single}");
    assert!(
        single
            .to_string()
            .ends_with("panicked: probe panicked on pull 1")
    );
}
