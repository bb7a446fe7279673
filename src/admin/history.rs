//! What the status page charts, kept in bounded rings: per link, transfers,
//! records and errors per minute over the last hour and its last few
//! errors; daemon-wide, transfers and errors per 10 s over the last hour.
//! A sampler reads every link's counters every [`STEP`]; a link costs about
//! 1 KB however long the daemon runs, and a link that leaves the planner
//! leaves the rings at the next sample.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use databay_core::{Link, LinkStats, Planner};
use serde::Serialize;

use super::views::rfc3339;

/// How often the sampler reads the counters.
pub(super) const STEP: Duration = Duration::from_secs(10);
/// Minutes kept per link.
const MINUTES: usize = 60;
/// Daemon-wide steps kept (an hour of [`STEP`]s).
const STEPS: usize = 360;
/// Errors kept per link.
pub(super) const ERRORS: usize = 10;

/// Cumulative counters of one link at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    transfers: u64,
    records_in: u64,
    records_out: u64,
    errors: u64,
}

impl Totals {
    fn of(stats: &LinkStats) -> Self {
        Totals {
            transfers: stats.transfers_ok + stats.transfers_failed,
            records_in: stats.records_in,
            records_out: stats.records_out,
            errors: stats.errors,
        }
    }

    /// What happened since `earlier`; a link whose counters went back (a
    /// reload replaced it under the same name) counts from zero again.
    fn since(self, earlier: Totals) -> Totals {
        if self.transfers < earlier.transfers
            || self.records_in < earlier.records_in
            || self.records_out < earlier.records_out
            || self.errors < earlier.errors
        {
            return self;
        }
        Totals {
            transfers: self.transfers - earlier.transfers,
            records_in: self.records_in - earlier.records_in,
            records_out: self.records_out - earlier.records_out,
            errors: self.errors - earlier.errors,
        }
    }
}

/// One minute of one link.
#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    transfers: u32,
    records_in: u32,
    records_out: u32,
    errors: u32,
}

impl Bucket {
    fn add(&mut self, d: Totals) {
        let add =
            |to: &mut u32, n: u64| *to = to.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        add(&mut self.transfers, d.transfers);
        add(&mut self.records_in, d.records_in);
        add(&mut self.records_out, d.records_out);
        add(&mut self.errors, d.errors);
    }
}

/// An error the sampler saw a link report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SeenError {
    /// When the sampler saw it (within [`STEP`] of when it happened).
    pub(super) seen: Option<String>,
    /// Its message, scrubbed of secrets.
    pub(super) message: String,
    /// Errors counted in the samples that saw this message last.
    pub(super) count: u64,
}

#[derive(Debug)]
struct LinkRing {
    last: Totals,
    /// Minute (since the epoch) of the newest bucket.
    newest: u64,
    minutes: VecDeque<Bucket>,
    errors: VecDeque<SeenError>,
    /// The sample that last saw the link.
    generation: u64,
}

impl LinkRing {
    fn new(minute: u64) -> Self {
        LinkRing {
            last: Totals::default(),
            newest: minute,
            minutes: VecDeque::from([Bucket::default()]),
            errors: VecDeque::new(),
            generation: 0,
        }
    }

    /// Notes `count` errors, the last of which said `message`; a message
    /// that repeats the newest one adds to it rather than pushing the
    /// others out.
    fn seen_error(&mut self, message: &str, count: u64, now: SystemTime) {
        let message = crate::scrub::scrub(message).into_owned();
        match self.errors.back_mut() {
            Some(last) if last.message == message => {
                last.count += count;
                last.seen = rfc3339(now);
            }
            _ => {
                self.errors.push_back(SeenError {
                    seen: rfc3339(now),
                    message,
                    count,
                });
                if self.errors.len() > ERRORS {
                    self.errors.pop_front();
                }
            }
        }
    }
}

/// Moves a ring of per-period buckets on to `period`, padding the periods
/// in between with empty buckets and keeping at most `cap`.
fn advance<T: Default>(ring: &mut VecDeque<T>, newest: &mut u64, period: u64, cap: usize) {
    if period <= *newest {
        return;
    }
    let gap = usize::try_from(period - *newest)
        .unwrap_or(usize::MAX)
        .min(cap);
    for _ in 0..gap {
        ring.push_back(T::default());
    }
    while ring.len() > cap {
        ring.pop_front();
    }
    *newest = period;
}

#[derive(Debug)]
struct Rings {
    links: HashMap<String, LinkRing>,
    /// Daemon-wide (transfers, errors) per step.
    steps: VecDeque<(u64, u64)>,
    newest_step: u64,
    generation: u64,
}

/// The rings of every link and of the daemon.
#[derive(Debug)]
pub(super) struct History {
    rings: Mutex<Rings>,
}

/// A link's last hour, oldest minute first, the current minute (with what
/// happened since the last sample) last.
#[derive(Debug, Default, Serialize)]
pub(super) struct LinkSeries {
    /// Start of the last (current) minute, RFC 3339.
    pub(super) until: Option<String>,
    pub(super) transfers: Vec<u32>,
    pub(super) records_in: Vec<u32>,
    pub(super) records_out: Vec<u32>,
    pub(super) errors: Vec<u32>,
}

/// The daemon's last hour, in [`STEP`]s, oldest first.
#[derive(Debug, Serialize)]
pub(super) struct DaemonSeries {
    pub(super) step_seconds: u64,
    /// End of the last step, RFC 3339.
    pub(super) until: Option<String>,
    pub(super) transfers: Vec<u64>,
    pub(super) errors: Vec<u64>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl History {
    pub(super) fn new() -> Self {
        History {
            rings: Mutex::new(Rings {
                links: HashMap::new(),
                steps: VecDeque::new(),
                newest_step: 0,
                generation: 0,
            }),
        }
    }

    fn rings(&self) -> std::sync::MutexGuard<'_, Rings> {
        // Every update leaves the rings consistent; a panic elsewhere
        // cannot leave them half-written.
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every link's counters as of `now` into the rings, and drops
    /// the rings of links no longer there.
    pub(super) fn sample(&self, links: &[Link], now: SystemTime) {
        let minute = secs(now) / 60;
        let step = secs(now) / STEP.as_secs();
        let mut rings = self.rings();
        let rings = &mut *rings;
        rings.generation += 1;
        let generation = rings.generation;
        let mut daemon = (0, 0);
        for link in links {
            let stats = link.stats();
            let totals = Totals::of(&stats);
            let ring = rings
                .links
                .entry(link.name().to_owned())
                .or_insert_with(|| LinkRing::new(minute));
            let delta = totals.since(ring.last);
            ring.last = totals;
            ring.generation = generation;
            advance(&mut ring.minutes, &mut ring.newest, minute, MINUTES);
            if let Some(b) = ring.minutes.back_mut() {
                b.add(delta);
            }
            daemon.0 += delta.transfers;
            daemon.1 += delta.errors;
            if delta.errors > 0
                && let Some(message) = &stats.last_error
            {
                ring.seen_error(message, delta.errors, now);
            }
        }
        rings.links.retain(|_, r| r.generation == generation);
        if rings.steps.is_empty() {
            rings.newest_step = step;
            rings.steps.push_back((0, 0));
        }
        advance(&mut rings.steps, &mut rings.newest_step, step, STEPS);
        if let Some(s) = rings.steps.back_mut() {
            s.0 += daemon.0;
            s.1 += daemon.1;
        }
    }

    /// `link`'s last hour as of `now`, its current minute including what
    /// `stats` (read now) counted since the last sample.
    pub(super) fn link_series(
        &self,
        link: &Link,
        stats: &LinkStats,
        now: SystemTime,
    ) -> LinkSeries {
        let minute = secs(now) / 60;
        let totals = Totals::of(stats);
        let rings = self.rings();
        let (mut buckets, newest, last) = match rings.links.get(link.name()) {
            Some(r) => (r.minutes.clone(), r.newest, r.last),
            None => (
                VecDeque::from([Bucket::default()]),
                minute,
                Totals::default(),
            ),
        };
        drop(rings);
        let mut newest = newest;
        advance(&mut buckets, &mut newest, minute, MINUTES);
        if let Some(b) = buckets.back_mut() {
            b.add(totals.since(last));
        }
        let mut series = LinkSeries {
            until: rfc3339(UNIX_EPOCH + Duration::from_secs(newest * 60)),
            ..LinkSeries::default()
        };
        for b in &buckets {
            series.transfers.push(b.transfers);
            series.records_in.push(b.records_in);
            series.records_out.push(b.records_out);
            series.errors.push(b.errors);
        }
        series
    }

    /// The errors the sampler saw `name` report, oldest first.
    pub(super) fn errors(&self, name: &str) -> Vec<SeenError> {
        self.rings()
            .links
            .get(name)
            .map(|r| r.errors.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The daemon's last hour.
    pub(super) fn daemon_series(&self) -> DaemonSeries {
        let rings = self.rings();
        DaemonSeries {
            step_seconds: STEP.as_secs(),
            until: rfc3339(
                UNIX_EPOCH + Duration::from_secs((rings.newest_step + 1) * STEP.as_secs()),
            ),
            transfers: rings.steps.iter().map(|s| s.0).collect(),
            errors: rings.steps.iter().map(|s| s.1).collect(),
        }
    }

    /// Samples `planner`'s links every [`STEP`] until dropped (the
    /// endpoint aborts it when it stops). Off the runtime's worker threads:
    /// reading 10 000 links' counters takes milliseconds.
    pub(super) async fn run_sampler(self: std::sync::Arc<Self>, planner: Planner) {
        let mut ticks = tokio::time::interval(STEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let history = self.clone();
            let planner = planner.clone();
            let sampled = tokio::task::spawn_blocking(move || {
                history.sample(&planner.links(), SystemTime::now());
            })
            .await;
            if let Err(e) = sampled {
                tracing::warn!(error = %e, "the status page's history sampler failed; retrying at the next step");
            }
        }
    }
}
