//! Clock logics: what time an item has and how far the stream's time has
//! come (the watermark). A window closes once the watermark passes its
//! close time; an item for a window that is already closed is late.
//!
//! One clock serves all keys of a window operator, so a key whose windows
//! all closed can be dropped without losing the stream's time.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BoxError;
use crate::record::Record;

/// A window operator's clock.
pub trait Clock: Send + 'static {
    /// The time of `record`, seen at wall time `now`; moves the watermark.
    /// An `Err` rejects the record (it has no usable timestamp) and must
    /// leave the clock as it was.
    fn on_item(&mut self, record: &Record, now: DateTime<Utc>) -> Result<DateTime<Utc>, String>;

    /// The watermark at wall time `now`: no item older than it is expected.
    fn watermark(&self, now: DateTime<Utc>) -> DateTime<Utc>;

    /// The wall time at which the watermark reaches `at`; `None` if it
    /// never does by waiting alone.
    fn to_system(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>>;

    /// The clock's state, as JSON.
    fn snapshot(&self) -> Value {
        Value::Null
    }

    /// Restores what [`snapshot`](Clock::snapshot) gave.
    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        let _ = state;
        Ok(())
    }
}

/// Processing time (Bytewax's `SystemClock`): an item's time is when it is
/// processed, the watermark is now; nothing is ever late.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn on_item(&mut self, _record: &Record, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        Ok(now)
    }

    fn watermark(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now
    }

    fn to_system(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(at)
    }
}

type TimestampFn = Box<dyn Fn(&Record) -> Result<DateTime<Utc>, String> + Send>;

/// Event time (Bytewax's `EventClock`): an item's time comes from the
/// item. The watermark is the latest item time seen less
/// `wait_for_system_duration` (how late an item may be and still count),
/// and it also advances with the wall clock while no newer item comes, so
/// windows close on time on a quiet stream. It never goes back.
pub struct EventClock {
    timestamp: TimestampFn,
    wait: TimeDelta,
    mark: Option<Mark>,
}

/// The watermark as of a wall time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Mark {
    watermark: DateTime<Utc>,
    at: DateTime<Utc>,
}

impl EventClock {
    /// Reads an item's time with `timestamp`; waits `wait_for_system_duration`
    /// for late items.
    pub fn new(
        timestamp: impl Fn(&Record) -> Result<DateTime<Utc>, String> + Send + 'static,
        wait_for_system_duration: std::time::Duration,
    ) -> Self {
        EventClock {
            timestamp: Box::new(timestamp),
            wait: TimeDelta::from_std(wait_for_system_duration).unwrap_or(TimeDelta::MAX),
            mark: None,
        }
    }
}

fn add(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

impl Clock for EventClock {
    fn on_item(&mut self, record: &Record, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        let ts = (self.timestamp)(record)?;
        let candidate = add(ts, -self.wait);
        if candidate > self.watermark(now) {
            self.mark = Some(Mark {
                watermark: candidate,
                at: now,
            });
        }
        Ok(ts)
    }

    fn watermark(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.mark {
            None => DateTime::<Utc>::MIN_UTC,
            // Within one call `now` stays put: no arithmetic then.
            Some(mark) if now <= mark.at => mark.watermark,
            Some(mark) => add(mark.watermark, now - mark.at),
        }
    }

    fn to_system(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mark = self.mark?;
        Some(add(mark.at, at - mark.watermark))
    }

    fn snapshot(&self) -> Value {
        serde_json::to_value(self.mark).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        self.mark = serde_json::from_value(state)?;
        Ok(())
    }
}

/// An event time from a JSON value: an RFC 3339 string
/// (`2026-01-01T12:00:00Z`, `2026-01-01T13:00:00+01:00`) or a number of
/// seconds since the Unix epoch (fractions allowed).
pub fn timestamp_of(value: Option<&Value>) -> Result<DateTime<Utc>, String> {
    match value {
        None => Err("the timestamp is missing".to_owned()),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("timestamp {s:?} is not RFC 3339 ({e})")),
        Some(Value::Number(n)) => {
            // Whole seconds, the common case, without a float parse.
            if let Some(secs) = n.as_i64() {
                return DateTime::<Utc>::from_timestamp(secs, 0)
                    .ok_or_else(|| format!("timestamp {n} is out of range"));
            }
            let secs = n.as_f64().unwrap_or(f64::NAN);
            let nanos = secs * 1e9;
            if nanos.is_finite() && nanos.abs() < 9.2e18 {
                Ok(DateTime::<Utc>::from_timestamp_nanos(nanos.round() as i64))
            } else {
                Err(format!("timestamp {n} is out of range"))
            }
        }
        Some(other) => Err(format!(
            "the timestamp must be an RFC 3339 string or seconds since the epoch, not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(s)
    }

    fn at(s: i64) -> Record {
        Record::new(json!({ "ts": s }))
    }

    fn clock(wait: u64) -> EventClock {
        EventClock::new(
            |r: &Record| timestamp_of(r.payload.get("ts")),
            std::time::Duration::from_secs(wait),
        )
    }

    #[test]
    fn system_clock_is_now() {
        let mut c = SystemClock;
        assert_eq!(c.on_item(&at(5), t(100)), Ok(t(100)));
        assert_eq!(c.watermark(t(101)), t(101));
        assert_eq!(c.to_system(t(200)), Some(t(200)));
    }

    #[test]
    fn event_clock_waits_then_follows_the_wall_clock() {
        let mut c = clock(10);
        assert_eq!(c.watermark(t(0)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(c.to_system(t(0)), None);
        assert_eq!(c.on_item(&at(100), t(1000)), Ok(t(100)));
        assert_eq!(c.watermark(t(1000)), t(90));
        assert_eq!(c.watermark(t(1005)), t(95), "advances with system time");
        assert_eq!(c.to_system(t(120)), Some(t(1030)));
        // An older item does not move the watermark back.
        assert_eq!(c.on_item(&at(50), t(1005)), Ok(t(50)));
        assert_eq!(c.watermark(t(1005)), t(95));
        // A newer one that is behind the wall-clock advance does not either.
        c.on_item(&at(101), t(1005)).unwrap();
        assert_eq!(c.watermark(t(1005)), t(95));
        c.on_item(&at(200), t(1006)).unwrap();
        assert_eq!(c.watermark(t(1006)), t(190));
    }

    #[test]
    fn a_bad_timestamp_leaves_the_clock_alone() {
        let mut c = clock(0);
        c.on_item(&at(10), t(0)).unwrap();
        let e = c
            .on_item(&Record::new(json!({"ts": "yesterday"})), t(0))
            .unwrap_err();
        assert!(
            e.starts_with("timestamp \"yesterday\" is not RFC 3339"),
            "{e}"
        );
        assert_eq!(c.watermark(t(0)), t(10));
        let snapshot = c.snapshot();
        let mut d = clock(0);
        d.restore(snapshot).unwrap();
        assert_eq!(d.watermark(t(3)), t(13));
    }

    #[test]
    fn timestamps_from_strings_and_numbers() {
        assert_eq!(
            timestamp_of(Some(&json!("1970-01-01T01:00:00+01:00"))),
            Ok(t(0))
        );
        assert_eq!(timestamp_of(Some(&json!(90))), Ok(t(90)));
        assert_eq!(
            timestamp_of(Some(&json!(1.5))),
            Ok(DateTime::<Utc>::UNIX_EPOCH + TimeDelta::milliseconds(1500))
        );
        assert_eq!(
            timestamp_of(None),
            Err("the timestamp is missing".to_owned())
        );
        assert!(timestamp_of(Some(&json!(true))).is_err());
        assert!(timestamp_of(Some(&json!(1e300))).is_err());
        assert_eq!(
            timestamp_of(Some(&json!(i64::MAX))),
            Err(format!("timestamp {} is out of range", i64::MAX))
        );
        assert_eq!(timestamp_of(Some(&json!(-60))), Ok(t(-60)));
    }
}
