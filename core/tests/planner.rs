//! The planner: scheduling, lifecycle, shutdown and error policy. Tests run
//! on tokio's paused clock, so schedules are exact and the suite is fast.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Behaviour, Probe, ProbeLog, eventually, ms, run};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BackoffPolicy, BoxError, Buffer, Inlet, InletHandle, Link, LinkState, OutletHandle, Planner,
    PlannerError, Pull, Schedule, Update, async_trait,
};
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn links_transfer_on_their_interval_with_an_immediate_first_transfer() {
    let (probe, log) = Probe::new();
    let link = Link::builder("ticks")
        .inlet(probe)
        .outlet(CollectOutlet::new())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(1050)).await;
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    // Immediately, then at 100, 200, ..., 1000 ms.
    assert_eq!(log.pulls(), 11);
    assert_eq!(link.stats().ticks_skipped, 0);
    assert_eq!(link.state(), LinkState::Idle);
}

#[tokio::test(start_paused = true)]
async fn immediate_transfer_can_be_disabled_on_link_or_planner() {
    let (probe, log) = Probe::new();
    let link = Link::builder("late")
        .inlet(probe)
        .every(ms(100))
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    assert_eq!(log.pulls(), 0);
    tokio::time::sleep(ms(100)).await;
    assert_eq!(log.pulls(), 1);
    planner.shutdown(true);
    task.await.unwrap().unwrap();

    let (probe, log) = Probe::new();
    let link = Link::builder("late")
        .inlet(probe)
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::builder()
        .immediate_transfer(false)
        .link(link)
        .build()
        .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    assert_eq!(log.pulls(), 0);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn transfers_of_one_link_never_overlap_and_missed_ticks_are_counted() {
    let (probe, log) = Probe::with(Behaviour::Count, ms(250));
    let link = Link::builder("slow")
        .inlet(probe)
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(1000)).await;
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(log.max_in_flight(), 1);
    // Transfers at 0, 300, 600, 900 (each 250 ms, the last one finishing
    // during shutdown); ticks 100, 200, 400, 500, 700, 800, 1000, 1100 skipped.
    assert_eq!(log.pulls(), 4);
    assert_eq!(link.stats().ticks_skipped, 8);
}

#[tokio::test(start_paused = true)]
async fn a_shared_inlet_starts_and_shuts_down_once() {
    let (probe, log) = Probe::new();
    let shared = InletHandle::new(probe);
    let a = Link::builder("a")
        .inlet(shared.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let b = Link::builder("b")
        .inlet(shared.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([a, b]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(250)).await;
    assert!(shared.active());
    assert_eq!(log.starts(), 1);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!((log.starts(), log.shutdowns()), (1, 1));
    assert!(!shared.active());
    assert_eq!(log.pulls(), 6, "both links pulled it: 3 transfers each");
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume() {
    let (probe, log) = Probe::new();
    let link = Link::builder("p")
        .inlet(probe)
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(250)).await;
    assert_eq!(log.pulls(), 3);
    planner.pause();
    tokio::time::sleep(ms(10)).await;
    assert_eq!(link.state(), LinkState::Paused);
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(log.pulls(), 3, "no transfers while paused");
    // A forced transfer still runs while paused.
    planner.force_transfer().await.into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(log.pulls(), 4);
    planner.resume();
    tokio::time::sleep(ms(350)).await;
    assert_eq!(log.pulls(), 7);
    // Pausing one link alone; the planner's resume does not undo it.
    link.pause();
    planner.pause();
    planner.resume();
    tokio::time::sleep(ms(500)).await;
    assert_eq!(log.pulls(), 7);
    link.resume();
    tokio::time::sleep(ms(150)).await;
    assert_eq!(log.pulls(), 8);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn links_are_added_and_removed_while_running() {
    let (first, first_log) = Probe::new();
    let planner = Planner::new([Link::builder("first")
        .inlet(first)
        .every(ms(100))
        .build()
        .unwrap()])
    .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(150)).await;

    let (second, second_log) = Probe::new();
    let out = CollectOutlet::new();
    let added = Link::builder("second")
        .inlet(second)
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    planner.add_link(added).await.unwrap();
    assert_eq!(second_log.starts(), 1);
    tokio::time::sleep(ms(230)).await;
    assert_eq!(second_log.pulls(), 3, "immediately, then twice");
    assert!(matches!(
        planner.add_link(Link::builder("second").build().unwrap()).await,
        Err(PlannerError::DuplicateLink(n)) if n == "second"
    ));

    let removed = planner.remove_link("second").await.unwrap();
    assert_eq!(removed.name(), "second");
    assert_eq!(second_log.shutdowns(), 1);
    assert_eq!(out.hook_counts(), (1, 1));
    let pulls = second_log.pulls();
    tokio::time::sleep(ms(500)).await;
    assert_eq!(second_log.pulls(), pulls, "a removed link is not scheduled");
    assert!(first_log.pulls() >= 8, "the other link kept running");
    assert!(matches!(
        planner.remove_link("nope").await,
        Err(PlannerError::MissingLink(_))
    ));

    planner.purge().await;
    assert!(planner.links().is_empty());
    assert_eq!(first_log.shutdowns(), 1);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn force_transfer_runs_every_link_now() {
    let (probe, log) = Probe::new();
    let manual = Link::builder("manual").inlet(probe).build().unwrap();
    let planner = Planner::new([manual]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(10)).await;
    assert_eq!(log.pulls(), 1, "the immediate transfer");
    tokio::time::sleep(ms(10_000)).await;
    assert_eq!(log.pulls(), 1, "a manual link has no schedule");
    let results = planner.force_transfer().await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().unwrap().update.to_string(), "manual.1");
    assert_eq!(log.pulls(), 2);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn buffer_time_threshold_fires_between_transfers() {
    let (probe, log) = Probe::new();
    let out = CollectOutlet::new();
    let link = Link::builder("buffered")
        .inlet(probe)
        .processor(Buffer::new().time_threshold(ms(300)))
        .outlet(out.clone())
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(299)).await;
    assert!(out.is_empty());
    tokio::time::sleep(ms(5)).await;
    assert_eq!(
        out.len(),
        1,
        "released at 300 ms, not at the next transfer (10 s)"
    );
    assert_eq!(log.pulls(), 1, "the release did not pull");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn buffer_count_threshold_is_exact_inside_a_link() {
    let out = CollectOutlet::new();
    let link = Link::builder("counted")
        .inlet(StaticInlet::values([1, 2]))
        .processor(Buffer::new().count_threshold(4))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert!(out.is_empty());
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 4, "released at exactly 4, not 5");
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_flushes_buffers_before_on_shutdown() {
    let (probe, log) = Probe::new();
    let out = CollectOutlet::new();
    let buffer = Buffer::new().count_threshold(1_000);
    let link = Link::builder("held")
        .inlet(probe)
        .processor(buffer.clone())
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(450)).await;
    assert_eq!(buffer.len(), 5);
    assert!(out.is_empty());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(
        out.len(),
        5,
        "records held in the buffer reached the outlet"
    );
    assert!(buffer.is_empty());
    assert_eq!(out.hook_counts(), (1, 1));
    assert_eq!(log.events().last().map(String::as_str), Some("shutdown"));
}

#[tokio::test(start_paused = true)]
async fn outlet_level_buffers_are_flushed_on_shutdown_too() {
    let out = CollectOutlet::new();
    let outlet = databay_core::OutletHandle::builder(out.clone())
        .processor(Buffer::new().count_threshold(100))
        .build();
    let link = Link::builder("o")
        .inlet(StaticInlet::values([1]))
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
    assert_eq!(out.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_link_shuts_the_planner_down_gracefully() {
    let (bad, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let (good, good_log) = Probe::new();
    let out = CollectOutlet::new();
    let planner = Planner::new([
        Link::builder("bad")
            .inlet(bad)
            .every(ms(100))
            .immediate_transfer(false)
            .build()
            .unwrap(),
        Link::builder("good")
            .inlet(good)
            .processor(Buffer::new().count_threshold(100))
            .outlet(out.clone())
            .every(ms(30))
            .build()
            .unwrap(),
    ])
    .unwrap();
    let result = planner.start().await;
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("transfer bad.0 of link `bad` failed"),
        "{err}"
    );
    assert_eq!(good_log.shutdowns(), 1);
    assert_eq!(
        out.len(),
        good_log.pulls(),
        "the good link's buffer was flushed"
    );
    assert!(!planner.running());
}

#[tokio::test(start_paused = true)]
async fn ignore_exceptions_on_the_planner_keeps_links_running() {
    let (bad, bad_log) = Probe::with(Behaviour::Panic, Duration::ZERO);
    let (good, good_log) = Probe::new();
    let bad_link = Link::builder("bad")
        .inlet(bad)
        .every(ms(100))
        .backoff(BackoffPolicy::none())
        .build()
        .unwrap();
    let planner = Planner::builder()
        .ignore_exceptions(true)
        .link(bad_link.clone())
        .link(
            Link::builder("good")
                .inlet(good)
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(550)).await;
    assert!(planner.running());
    assert_eq!(bad_log.pulls(), 6);
    assert_eq!(good_log.pulls(), 6);
    assert_eq!(bad_link.stats().transfers_failed, 6);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_without_wait_cancels_in_flight_transfers_but_still_flushes() {
    let (slow, _) = Probe::with(Behaviour::Count, Duration::from_secs(3600));
    let out = CollectOutlet::new();
    let buffer = Buffer::new().count_threshold(100);
    let link = Link::builder("stuck")
        .inlet(slow)
        .inlet(StaticInlet::values([1]))
        .processor(buffer.clone())
        .outlet(out.clone())
        .every(ms(100))
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(150)).await;
    let t0 = tokio::time::Instant::now();
    planner.shutdown(false);
    task.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(out.hook_counts(), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_bounds_waiting_for_in_flight_transfers() {
    let (slow, _) = Probe::with(Behaviour::Count, Duration::from_secs(3600));
    let planner = Planner::builder()
        .shutdown_grace(Duration::from_secs(2))
        .link(
            Link::builder("stuck")
                .inlet(slow)
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    let t0 = tokio::time::Instant::now();
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_wakes_the_link_for_that_inlet_alone() {
    let (retrying, retry_log) = Probe::with(Behaviour::RetryFirst(ms(300)), Duration::ZERO);
    let (steady, steady_log) = Probe::new();
    let out = CollectOutlet::new();
    let link = Link::builder("r")
        .inlet(retrying)
        .inlet(steady)
        .outlet(out.clone())
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(200)).await;
    assert_eq!((retry_log.pulls(), steady_log.pulls()), (1, 1));
    tokio::time::sleep(ms(150)).await;
    assert_eq!(
        retry_log.pulls(),
        2,
        "pulled again after the delay, before the next tick"
    );
    assert_eq!(steady_log.pulls(), 1, "the other inlet keeps its schedule");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn finite_links_flush_and_finish_and_can_stop_the_planner() {
    let out = CollectOutlet::new();
    let link = Link::builder("finite")
        .inlet(StaticInlet::values([1, 2]).times(3))
        .processor(Buffer::new().count_threshold(1_000))
        .outlet(out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::builder()
        .stop_when_finished(true)
        .link(link.clone())
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), planner.start())
        .await
        .expect("the planner stops once every link finished")
        .unwrap();
    assert_eq!(out.len(), 6, "the buffer was flushed at end of input");
    assert_eq!(
        link.stats().transfers_ok,
        4,
        "3 transfers and the final flush"
    );
}

#[tokio::test(start_paused = true)]
async fn start_twice_is_refused_and_shutdown_before_start_is_honoured() {
    let planner = Planner::new([Link::builder("x").every(ms(100)).build().unwrap()]).unwrap();
    planner.shutdown(true);
    tokio::time::timeout(ms(100), planner.start())
        .await
        .unwrap()
        .unwrap();

    let task = run(&planner);
    assert!(eventually(ms(100), || planner.running()).await);
    assert!(matches!(
        planner.start().await,
        Err(PlannerError::AlreadyRunning)
    ));
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn cron_schedules_fire_on_the_wall_clock() {
    let (probe, log) = Probe::new();
    let link = Link::builder("cron")
        .inlet(probe)
        .schedule(Schedule::cron("* * * * * *", "UTC").unwrap())
        .immediate_transfer(false)
        .build()
        .unwrap();
    let planner = Planner::new([link.clone()]).unwrap();
    let task = run(&planner);
    assert!(eventually(Duration::from_secs(5), || log.pulls() >= 2).await);
    assert!(link.next_transfer().is_some());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    let stats = link.stats();
    assert_eq!(stats.transfers_ok as usize, log.pulls());
}

#[tokio::test(start_paused = true)]
async fn with_fail_fast_hooks_failing_on_start_stop_the_planner_with_the_error() {
    struct NoStart;
    #[databay_core::async_trait]
    impl databay_core::Inlet for NoStart {
        async fn pull(
            &mut self,
            _: &databay_core::Update,
        ) -> Result<databay_core::Pull, databay_core::BoxError> {
            Ok(databay_core::Pull::Nothing)
        }
        async fn on_start(&mut self) -> Result<(), databay_core::BoxError> {
            Err("cannot open /dev/nothing".into())
        }
    }
    let out = CollectOutlet::new();
    let planner = Planner::builder()
        .fail_fast(true)
        .link(Link::builder("ok").outlet(out.clone()).build().unwrap())
        .link(Link::builder("broken").inlet(NoStart).build().unwrap())
        .build()
        .unwrap();
    let err = planner.start().await.unwrap_err().to_string();
    assert!(
        err.contains("link `broken`") && err.contains("on_start") && err.contains("/dev/nothing"),
        "{err}"
    );
    assert_eq!(
        out.hook_counts(),
        (1, 1),
        "what was started is shut down again"
    );
    let _ = Arc::new(());
}

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

/// An inlet whose `on_start` fails until `fail_starts` reaches zero.
struct FlakyStart {
    fail_starts: Arc<std::sync::atomic::AtomicUsize>,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Inlet for FlakyStart {
    async fn pull(&mut self, _: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::values([1]))
    }
    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let left = self.fail_starts.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_starts.store(left - 1, Ordering::SeqCst);
            return Err("input file /data/in.ndjson does not exist".into());
        }
        Ok(())
    }
}

/// A link whose start fails does not stop the others: it is `failed`
/// with its error, tried again after 1 s, 2 s, 4 s, and runs once its
/// start succeeds.
#[tokio::test(start_paused = true)]
async fn a_link_whose_start_fails_is_retried_with_backoff_while_the_others_run() {
    let fail_starts = Arc::new(std::sync::atomic::AtomicUsize::new(3));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flaky_out = CollectOutlet::new();
    let flaky = Link::builder("flaky")
        .inlet(FlakyStart {
            fail_starts: fail_starts.clone(),
            attempts: attempts.clone(),
        })
        .outlet(flaky_out.clone())
        .every(ms(100))
        .build()
        .unwrap();
    let (good, good_log) = Probe::new();
    let planner = Planner::builder()
        .link(flaky.clone())
        .link(
            Link::builder("good")
                .inlet(good)
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(50)).await;
    assert!(planner.running());
    assert_eq!(flaky.state(), LinkState::Failed);
    let stats = flaky.stats();
    assert_eq!(stats.consecutive_failures, 1);
    assert!(stats.backoff_until.is_some());
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("on_start") && e.contains("/data/in.ndjson")),
        "{stats:?}"
    );
    // Tries at 0 s, 1 s, 3 s (1 + 2), then 7 s (3 + 4) succeeds.
    tokio::time::sleep(ms(1_000)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    tokio::time::sleep(ms(2_000)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert!(flaky_out.records().is_empty());
    tokio::time::sleep(ms(4_000)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    tokio::time::sleep(ms(250)).await;
    assert_eq!(flaky.state(), LinkState::Scheduled);
    assert_eq!(flaky.stats().consecutive_failures, 0);
    assert!(
        !flaky_out.records().is_empty(),
        "the link runs once started"
    );
    assert!(good_log.pulls() >= 70, "the good link ran all along");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// A link whose transfers keep failing waits 1 s, 2 s, 4 s ... between
/// tries instead of failing on every 10 ms tick, and is back on its
/// schedule after the first success.
#[tokio::test(start_paused = true)]
async fn a_failing_link_backs_off_and_resets_on_success() {
    let (bad, bad_log) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let link = Link::builder("bad")
        .inlet(bad)
        .every(ms(10))
        .build()
        .unwrap();
    let planner = Planner::builder()
        .ignore_exceptions(true)
        .link(link.clone())
        .build()
        .unwrap();
    let task = run(&planner);
    // Tries at 0, then the first tick after 1 s, 3 s, 7 s.
    tokio::time::sleep(ms(7_500)).await;
    assert_eq!(bad_log.pulls(), 4, "not one try per 10 ms tick");
    let stats = link.stats();
    assert_eq!((stats.transfers_failed, stats.consecutive_failures), (4, 4));
    assert_eq!(stats.ticks_skipped, 0, "held-back ticks are not overruns");
    let until = stats.backoff_until.expect("backing off");
    let wait = until
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        wait > Duration::from_secs(7) && wait <= Duration::from_secs(8),
        "{wait:?}"
    );
    // A forced transfer is never held back; its success ends the backoff.
    bad_log.heal();
    planner.force_transfer().await;
    assert_eq!(link.stats().consecutive_failures, 0);
    assert_eq!(link.stats().backoff_until, None);
    let before = bad_log.pulls();
    tokio::time::sleep(ms(105)).await;
    assert!(bad_log.pulls() >= before + 9, "back on the 10 ms schedule");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// Thousands of links start, run and stop as a few do: each starts once,
/// transfers, and is shut down once, after its last pull; the planner
/// keeps them in the order they were added through removals and re-adds.
#[tokio::test(start_paused = true)]
async fn thousands_of_links_start_run_and_shut_down_each_once() {
    const N: usize = 4_000;
    let mut logs = Vec::new();
    let links: Vec<Link> = (0..N)
        .map(|i| {
            let (probe, log) = Probe::new();
            logs.push(log);
            Link::builder(format!("link-{i}"))
                .inlet(probe)
                .outlet(CollectOutlet::new())
                .schedule(
                    Schedule::every(ms(100))
                        .unwrap()
                        .align_to(Duration::from_micros(25 * i as u64)),
                )
                .build()
                .unwrap()
        })
        .collect();
    let planner = Planner::new(links).unwrap();
    assert_eq!(planner.len(), N);
    assert!(matches!(
        Planner::new([
            Link::builder("twice").build().unwrap(),
            Link::builder("twice").build().unwrap()
        ]),
        Err(PlannerError::DuplicateLink(n)) if n == "twice"
    ));
    let task = run(&planner);
    tokio::time::sleep(ms(350)).await;
    assert!(logs.iter().all(|l| l.pulls() >= 3), "every link ran");

    // Every other link leaves; one comes back, last.
    for i in (0..N).step_by(2) {
        planner.remove_link(&format!("link-{i}")).await.unwrap();
    }
    let (probe, back) = Probe::new();
    planner
        .add_link(
            Link::builder("link-0")
                .inlet(probe)
                .every(ms(100))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let names: Vec<String> = planner
        .links()
        .iter()
        .map(|l| l.name().to_owned())
        .collect();
    let expected: Vec<String> = (1..N)
        .step_by(2)
        .map(|i| format!("link-{i}"))
        .chain(["link-0".to_owned()])
        .collect();
    assert_eq!(names, expected);
    assert_eq!(planner.len(), N / 2 + 1);
    assert!(planner.link("link-2").is_none());
    assert_eq!(
        planner
            .link("link-3")
            .map(|l| l.name().to_owned())
            .as_deref(),
        Some("link-3")
    );

    tokio::time::sleep(ms(200)).await;
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    for (i, log) in logs.iter().enumerate() {
        assert_eq!((log.starts(), log.shutdowns()), (1, 1), "link-{i}");
        assert_eq!(
            log.events().last().map(String::as_str),
            Some("shutdown"),
            "link-{i} was shut down after its last pull"
        );
    }
    assert_eq!((back.starts(), back.shutdowns()), (1, 1));
    assert!(planner.links().iter().all(|l| l.state() == LinkState::Idle));
}
