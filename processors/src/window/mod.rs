//! `window`: per-key aggregation over tumbling, sliding or session windows
//! of processing time or event time, with the `aggregate` processor's
//! reducers.

mod options;
#[cfg(test)]
mod tests;

pub use options::{WindowKind, WindowOptions};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use databay_component::{BuildContext, Registry};
use databay_core::stateful::window::{
    Assignment, Bounds, Clock, EventClock, Session, Sliding, SystemClock, Tumbling, WindowId,
    Windower,
};
use databay_core::{BoxError, Record};
use serde_json::Value;

const SUMMARY: &str = "Aggregates each key's records per tumbling, sliding or session window of processing or event time.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "window",
        SUMMARY,
        SAMPLE,
        |o: WindowOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// The clock the options chose.
pub(crate) enum AnyClock {
    System(SystemClock),
    Event(EventClock),
}

impl Clock for AnyClock {
    fn on_item(&mut self, record: &Record, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self {
            AnyClock::System(c) => c.on_item(record, now),
            AnyClock::Event(c) => c.on_item(record, now),
        }
    }

    fn watermark(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            AnyClock::System(c) => c.watermark(now),
            AnyClock::Event(c) => c.watermark(now),
        }
    }

    fn to_system(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            AnyClock::System(c) => c.to_system(at),
            AnyClock::Event(c) => c.to_system(at),
        }
    }

    fn snapshot(&self) -> Value {
        match self {
            AnyClock::System(c) => c.snapshot(),
            AnyClock::Event(c) => c.snapshot(),
        }
    }

    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        match self {
            AnyClock::System(c) => c.restore(state),
            AnyClock::Event(c) => c.restore(state),
        }
    }
}

/// The windower the options chose.
pub(crate) enum AnyWindower {
    Tumbling(Tumbling),
    Sliding(Sliding),
    Session(Session),
}

impl Windower for AnyWindower {
    fn assign(
        &self,
        ts: DateTime<Utc>,
        watermark: DateTime<Utc>,
        open: &BTreeMap<WindowId, Bounds>,
        next_id: &mut WindowId,
    ) -> Assignment {
        match self {
            AnyWindower::Tumbling(w) => w.assign(ts, watermark, open, next_id),
            AnyWindower::Sliding(w) => w.assign(ts, watermark, open, next_id),
            AnyWindower::Session(w) => w.assign(ts, watermark, open, next_id),
        }
    }

    fn closes_in_id_order(&self) -> bool {
        match self {
            AnyWindower::Tumbling(w) => w.closes_in_id_order(),
            AnyWindower::Sliding(w) => w.closes_in_id_order(),
            AnyWindower::Session(w) => w.closes_in_id_order(),
        }
    }
}
