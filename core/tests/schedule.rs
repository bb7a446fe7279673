//! Schedules and the link's timer: when transfers, retries and processor
//! wake-ups happen, and edge values (huge intervals and jitter, crons that
//! never fire, wake-ups already in the past) that must neither panic nor
//! spin. Tests run on tokio's paused clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Behaviour, Probe, SPIN_LIMIT, ms, run};
use databay_core::processor::{Context, Processor};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BoxError, Buffer, Inlet, Link, LinkState, Planner, Pull, Record, Schedule, Update, async_trait,
};

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

#[test]
fn a_cron_pattern_that_never_fires_is_refused() {
    for expr in ["0 0 31 2 *", "0 0 30 2 *", "0 0 0 31 4 *"] {
        let e = match Schedule::cron(expr, "UTC") {
            Ok(_) => panic!("`{expr}` accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("never fire"), "{expr}: {e}");
    }
    // Rare but real dates still pass: 29 February.
    assert!(Schedule::cron("0 0 29 2 *", "UTC").is_ok());
}

#[test]
fn cron_takes_five_or_six_fields_as_documented() {
    assert!(Schedule::cron("*/5 * * * *", "UTC").is_ok());
    assert!(Schedule::cron("30 */5 * * * *", "UTC").is_ok());
    assert!(Schedule::cron("@hourly", "UTC").is_ok());
    for (expr, found) in [("* * * *", 4), ("0 0 0 1 1 * 2030", 7)] {
        let e = match Schedule::cron(expr, "UTC") {
            Ok(_) => panic!("`{expr}` accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("expected 5 fields") && e.contains(&format!("found {found}")),
            "{expr}: {e}"
        );
    }
}
