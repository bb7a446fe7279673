//! When a link transfers: every fixed interval (sub-second works, optionally
//! aligned to the wall clock, with jitter), on a cron expression in a time
//! zone, or only when asked.
//!
//! Cron times are computed in the schedule's zone for every fire, so
//! daylight-saving changes are followed: `0 12 * * *` in `Europe/London`
//! fires at noon local time on both sides of a change.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::clock::after;

/// A schedule that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The interval was zero.
    #[error("the interval must be longer than zero")]
    ZeroInterval,
    /// The cron expression does not parse.
    #[error("invalid cron expression `{expr}`: {reason}")]
    Cron {
        /// The expression given.
        expr: String,
        /// Why it was refused.
        reason: String,
    },
    /// The time zone is not a known IANA name.
    #[error("unknown time zone `{0}` (expected an IANA name such as `Europe/Berlin` or `UTC`)")]
    TimeZone(String),
}

/// When a link transfers.
#[derive(Clone)]
#[non_exhaustive]
pub enum Schedule {
    /// Every fixed interval.
    Every(Every),
    /// On a cron expression.
    Cron(Box<CronSchedule>),
    /// Never on its own: only forced transfers and flushes.
    Manual,
}

/// A fixed-interval schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Every {
    interval: Duration,
    align_to: Option<Duration>,
    jitter: Option<Duration>,
}

/// A cron schedule in a time zone.
#[derive(Clone)]
pub struct CronSchedule {
    expr: String,
    cron: croner::Cron,
    tz: Tz,
}

impl Schedule {
    /// Every `interval`, counted from the link's start.
    ///
    /// ```
    /// use databay_core::Schedule;
    /// use std::time::Duration;
    /// let s = Schedule::every(Duration::from_millis(100)).unwrap();
    /// ```
    pub fn every(interval: Duration) -> Result<Self, ScheduleError> {
        if interval.is_zero() {
            return Err(ScheduleError::ZeroInterval);
        }
        Ok(Schedule::Every(Every {
            interval,
            align_to: None,
            jitter: None,
        }))
    }

    /// A cron expression (5 fields, or 6 with seconds first; `@hourly` and
    /// friends) evaluated in the IANA time zone `timezone`.
    ///
    /// ```
    /// use databay_core::Schedule;
    /// let s = Schedule::cron("30 2 * * *", "Europe/Berlin").unwrap();
    /// assert!(Schedule::cron("61 * * * *", "UTC").is_err());
    /// // Every field count but 5 or 6, and a date that never comes, are refused.
    /// assert!(Schedule::cron("0 0 * * * * 2030", "UTC").is_err());
    /// assert!(Schedule::cron("0 0 31 2 *", "UTC").is_err());
    /// ```
    pub fn cron(expr: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz =
            Tz::from_str(timezone).map_err(|_| ScheduleError::TimeZone(timezone.to_owned()))?;
        let refuse = |reason: String| ScheduleError::Cron {
            expr: expr.to_owned(),
            reason,
        };
        let fields = expr.split_whitespace().count();
        if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(refuse(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; found {fields}"
            )));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| refuse(e.to_string()))?;
        // A pattern such as `0 0 31 2 *` parses but matches no date: refuse
        // it rather than run a link that silently never transfers.
        let now = Utc::now().with_timezone(&tz);
        if cron.find_next_occurrence(&now, false).is_err() {
            return Err(refuse(
                "it matches no date, so it would never fire".to_owned(),
            ));
        }
        Ok(Schedule::Cron(Box::new(CronSchedule {
            expr: expr.to_owned(),
            cron,
            tz,
        })))
    }

    /// Aligns an interval schedule to the wall clock: ticks fall on
    /// multiples of the interval since the Unix epoch (UTC), shifted by
    /// `offset`. `every 1h, align_to 15m` fires at :15 of every hour.
    /// No effect on other schedules.
    pub fn align_to(mut self, offset: Duration) -> Self {
        if let Schedule::Every(e) = &mut self {
            e.align_to = Some(offset);
        }
        self
    }

    /// Delays each fire by a random amount in `[0, jitter)`, so many links
    /// on one interval do not all fire together. Ticks do not drift: the
    /// jitter is drawn afresh for each one. Applies to interval schedules;
    /// a jitter longer than half the interval is cut to half of it, so a
    /// fire never runs into the next tick.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        match &mut self {
            Schedule::Every(e) => {
                e.jitter = Some(jitter.min(e.interval / 2)).filter(|j| !j.is_zero())
            }
            Schedule::Cron(_) | Schedule::Manual => {}
        }
        self
    }

    /// The interval, for an interval schedule.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Schedule::Every(e) => Some(e.interval),
            _ => None,
        }
    }

    /// The first fire time strictly after `after` on the wall clock,
    /// ignoring jitter. `None` for a manual schedule or a cron expression
    /// that never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Manual => None,
            Schedule::Every(e) => {
                let interval = chrono::Duration::from_std(e.interval).ok()?;
                match e.align_to {
                    None => after.checked_add_signed(interval),
                    Some(offset) => {
                        let period = e.interval.as_nanos() as i128;
                        let shift = (offset.as_nanos() % e.interval.as_nanos()) as i128;
                        let t = after.timestamp_nanos_opt()? as i128;
                        let k = (t - shift).div_euclid(period) + 1;
                        let next = k * period + shift;
                        Some(DateTime::from_timestamp_nanos(i64::try_from(next).ok()?))
                    }
                }
            }
            Schedule::Cron(c) => {
                let local = after.with_timezone(&c.tz);
                c.cron
                    .find_next_occurrence(&local, false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Manual => f.write_str("manual"),
            Schedule::Every(e) => {
                write!(f, "every {}", crate::error::humanize(e.interval))?;
                if let Some(a) = e.align_to {
                    write!(f, " aligned to {}", crate::error::humanize(a))?;
                }
                if let Some(j) = e.jitter {
                    write!(f, " jitter {}", crate::error::humanize(j))?;
                }
                Ok(())
            }
            Schedule::Cron(c) => write!(f, "cron `{}` {}", c.expr, c.tz),
        }
    }
}

/// Turns a schedule into monotonic deadlines for the link's timer.
pub(crate) struct Ticker {
    schedule: Schedule,
    /// The current base tick (without jitter).
    base: Option<Instant>,
    /// For wall-clock schedules, the wall time of the coming tick: the next
    /// one is searched after it, so a timer that fires a hair early by the
    /// wall clock never fires the same occurrence twice.
    wall_base: Option<DateTime<Utc>>,
}

impl Ticker {
    pub(crate) fn new(schedule: Schedule) -> Self {
        Ticker {
            schedule,
            base: None,
            wall_base: None,
        }
    }

    /// Restarts the ticker from `now` (first start, or resume after pause).
    pub(crate) fn restart(&mut self, now: Instant) {
        self.wall_base = None;
        self.base = match &self.schedule {
            Schedule::Manual => None,
            Schedule::Every(e) if e.align_to.is_none() => Some(after(now, e.interval)),
            _ => self.wall_next(now, SystemTime::now().into()),
        };
    }

    /// The first wall-clock fire after `after`, mapped onto the monotonic clock.
    fn wall_next(&mut self, now: Instant, from: DateTime<Utc>) -> Option<Instant> {
        let wall_now: DateTime<Utc> = SystemTime::now().into();
        let next = self.schedule.next_after(from.max(wall_now))?;
        self.wall_base = Some(next);
        let ahead = (next - wall_now).to_std().unwrap_or_default();
        Some(after(now, ahead))
    }

    /// The base deadline of the coming tick.
    #[cfg(test)]
    pub(crate) fn base(&self) -> Option<Instant> {
        self.base
    }

    /// The instant to fire the coming tick (base plus jitter).
    pub(crate) fn deadline(&self, jitter_draw: Duration) -> Option<Instant> {
        self.base.map(|b| after(b, jitter_draw))
    }

    /// A fresh jitter draw for the coming tick.
    pub(crate) fn draw_jitter(&self) -> Duration {
        match &self.schedule {
            Schedule::Every(Every {
                jitter: Some(j), ..
            }) => Duration::from_nanos(fastrand::u64(
                0..u64::try_from(j.as_nanos()).unwrap_or(u64::MAX),
            )),
            _ => Duration::ZERO,
        }
    }

    /// Moves past the tick just handled, to the first tick after `now`.
    /// Returns how many ticks were skipped because `now` is already past them.
    pub(crate) fn advance(&mut self, now: Instant) -> u64 {
        let Some(base) = self.base else { return 0 };
        match &self.schedule {
            Schedule::Manual => 0,
            Schedule::Every(e) => {
                self.base = Some(after(base, e.interval));
                self.catch_up(now)
            }
            Schedule::Cron(_) => {
                let handled = self.wall_base.unwrap_or_else(|| SystemTime::now().into());
                self.base = self.wall_next(now, handled);
                self.catch_up(now)
            }
        }
    }

    /// Skips every tick at or before `now` (they passed while a transfer
    /// ran) and returns how many there were.
    pub(crate) fn catch_up(&mut self, now: Instant) -> u64 {
        let Some(base) = self.base else { return 0 };
        if base > now {
            return 0;
        }
        match &self.schedule {
            Schedule::Manual => 0,
            Schedule::Every(e) => {
                let period = e.interval.as_nanos();
                let behind = now.duration_since(base).as_nanos() / period;
                let skipped = u64::try_from(behind).unwrap_or(u64::MAX).saturating_add(1);
                // `base` is at or before `now`, so this many periods land
                // past `now` and fit in a Duration (they span at most the
                // elapsed time plus one period).
                let ahead = Duration::from_nanos(
                    u64::try_from(period.saturating_mul(u128::from(skipped))).unwrap_or(u64::MAX),
                );
                self.base = Some(after(base, ahead));
                skipped
            }
            Schedule::Cron(_) => {
                let wall_now: DateTime<Utc> = SystemTime::now().into();
                let mut t = self.wall_base.unwrap_or(wall_now);
                let mut skipped = 1;
                while let Some(n) = self.schedule.next_after(t) {
                    if n > wall_now || skipped >= 10_000 {
                        break;
                    }
                    skipped += 1;
                    t = n;
                }
                self.base = self.wall_next(now, t);
                skipped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn zero_interval_is_refused() {
        assert!(matches!(
            Schedule::every(Duration::ZERO),
            Err(ScheduleError::ZeroInterval)
        ));
    }

    #[test]
    fn aligned_interval_falls_on_wall_clock_multiples() {
        let s = Schedule::every(Duration::from_secs(3600))
            .unwrap()
            .align_to(Duration::from_secs(15 * 60));
        assert_eq!(
            s.next_after(utc("2026-01-01T10:20:00Z")),
            Some(utc("2026-01-01T11:15:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-01-01T10:15:00Z")),
            Some(utc("2026-01-01T11:15:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-01-01T10:14:59Z")),
            Some(utc("2026-01-01T10:15:00Z"))
        );
        let sub = Schedule::every(Duration::from_millis(250))
            .unwrap()
            .align_to(Duration::ZERO);
        assert_eq!(
            sub.next_after(utc("2026-01-01T10:00:00.300Z")),
            Some(utc("2026-01-01T10:00:00.500Z"))
        );
    }

    #[test]
    fn cron_follows_daylight_saving_in_its_zone() {
        let s = Schedule::cron("0 12 * * *", "Europe/London").unwrap();
        // Winter: noon London is 12:00 UTC; after the March change it is 11:00 UTC.
        assert_eq!(
            s.next_after(utc("2026-03-28T12:30:00Z")),
            Some(utc("2026-03-29T11:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-03-27T12:30:00Z")),
            Some(utc("2026-03-28T12:00:00Z"))
        );
        // And back in October.
        assert_eq!(
            s.next_after(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T12:00:00Z"))
        );
    }

    #[test]
    fn cron_in_a_skipped_hour_still_fires_that_day() {
        // 02:30 does not exist in Berlin on 2026-03-29.
        let s = Schedule::cron("30 2 * * *", "Europe/Berlin").unwrap();
        let next = s.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        let berlin = next.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(
            berlin.date_naive(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        let after = s.next_after(next).unwrap();
        assert_eq!(
            after,
            chrono_tz::Europe::Berlin
                .with_ymd_and_hms(2026, 3, 30, 2, 30, 0)
                .unwrap()
        );
    }

    #[test]
    fn cron_with_seconds_and_nicknames() {
        let s = Schedule::cron("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(utc("2026-01-01T00:00:01Z")),
            Some(utc("2026-01-01T00:00:10Z"))
        );
        let h = Schedule::cron("@hourly", "UTC").unwrap();
        assert_eq!(
            h.next_after(utc("2026-01-01T00:00:01Z")),
            Some(utc("2026-01-01T01:00:00Z"))
        );
    }

    #[test]
    fn bad_cron_and_zone_are_named() {
        let e = Schedule::cron("0 25 * * *", "UTC").unwrap_err().to_string();
        assert!(e.contains("`0 25 * * *`"), "{e}");
        let e = Schedule::cron("0 1 * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }

    #[test]
    fn ticker_skips_and_counts_missed_ticks() {
        let mut t = Ticker::new(Schedule::every(Duration::from_millis(100)).unwrap());
        let start = Instant::now();
        t.restart(start);
        assert_eq!(t.base(), Some(start + Duration::from_millis(100)));
        // Handled on time: nothing skipped.
        assert_eq!(t.advance(start + Duration::from_millis(101)), 0);
        assert_eq!(t.base(), Some(start + Duration::from_millis(200)));
        // The transfer at 200 ran until 450: ticks at 300 and 400 are skipped.
        assert_eq!(t.advance(start + Duration::from_millis(450)), 2);
        assert_eq!(t.base(), Some(start + Duration::from_millis(500)));
        // Exactly on a tick boundary counts that tick as missed too.
        assert_eq!(t.advance(start + Duration::from_millis(600)), 1);
        assert_eq!(t.base(), Some(start + Duration::from_millis(700)));
        // Catching up after an immediate transfer that overran: 700 and 800 missed.
        assert_eq!(t.catch_up(start + Duration::from_millis(650)), 0);
        assert_eq!(t.catch_up(start + Duration::from_millis(850)), 2);
        assert_eq!(t.base(), Some(start + Duration::from_millis(900)));
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        let t = Ticker::new(
            Schedule::every(Duration::from_secs(1))
                .unwrap()
                .jitter(Duration::from_millis(50)),
        );
        for _ in 0..1000 {
            assert!(t.draw_jitter() < Duration::from_millis(50));
        }
    }
}
