//! The options of the `window` processor.

use indexmap::IndexMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use databay_component::{OptionError, duration};
use databay_core::Processor;
use databay_core::stateful::window::{
    EventClock, Session, Sliding, SystemClock, Tumbling, timestamp_of, window,
};
use serde::Deserialize;

use super::{AnyClock, AnyWindower};
use crate::keyed::{KeySource, Shape, Shaped, default_key_field};
use crate::pointer::Pointer;
use crate::reducers::{AggregateSpec, Aggregates, WindowAggregation};

/// The kind of window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Back-to-back windows of `length`.
    Tumbling,
    /// Windows of `length` opening every `offset`.
    Sliding,
    /// A window per burst of a key's records, closed after `gap` without one.
    Session,
}

/// Options of the `window` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowOptions {
    /// JSON pointer to the key.
    #[serde(default)]
    pub key: Option<String>,
    /// jq expression giving the key (needs the `jq` feature).
    #[serde(default)]
    pub key_expr: Option<String>,
    /// The aggregates: output field name to reducer and input.
    #[serde(default)]
    pub aggregates: IndexMap<String, AggregateSpec>,
    /// `tumbling`, `sliding` or `session`.
    pub window: WindowKind,
    /// Length of a tumbling or sliding window.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub length: Option<Duration>,
    /// How often a sliding window opens.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub offset: Option<Duration>,
    /// The quiet time that closes a session.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub gap: Option<Duration>,
    /// A time windows are aligned to (RFC 3339).
    #[serde(default)]
    pub align_to: Option<String>,
    /// JSON pointer to the record's event time; unset: processing time.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// How long to wait for late records (event time only).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub wait: Option<Duration>,
    /// The outlet late records go to: the `name` of one of the link's
    /// outlets (a `routed = true` one gets nothing else). Unset: they go
    /// on to every outlet, marked `__late__`.
    #[serde(default)]
    pub late: Option<String>,
    /// The output field that holds the key.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// The output field that holds the window's open time.
    #[serde(default = "default_open_field")]
    pub window_open_field: String,
    /// The output field that holds the window's close time.
    #[serde(default = "default_close_field")]
    pub window_close_field: String,
}

fn default_open_field() -> String {
    "window_open".to_owned()
}

fn default_close_field() -> String {
    "window_close".to_owned()
}

fn refuse(option: &str, kind: WindowKind) -> OptionError {
    OptionError::new(
        option,
        format!("is not an option of {kind:?} windows; leave it out").to_lowercase(),
    )
}

impl WindowOptions {
    fn windower(&self) -> Result<AnyWindower, OptionError> {
        let align_to = match &self.align_to {
            None => DateTime::<Utc>::UNIX_EPOCH,
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    OptionError::new(
                        "align_to",
                        format!("{text:?} is not an RFC 3339 time such as \"2026-01-01T00:00:00Z\" ({e})"),
                    )
                })?,
        };
        let need = |option: &str, value: Option<Duration>| {
            value.ok_or_else(|| {
                OptionError::new(
                    option,
                    format!("{:?} windows need `{option}`", self.window).to_lowercase(),
                )
            })
        };
        let kind = self.window;
        Ok(match kind {
            WindowKind::Tumbling => {
                if self.offset.is_some() {
                    return Err(refuse("offset", kind));
                }
                if self.gap.is_some() {
                    return Err(refuse("gap", kind));
                }
                AnyWindower::Tumbling(
                    Tumbling::new(need("length", self.length)?, align_to)
                        .map_err(OptionError::of("length"))?,
                )
            }
            WindowKind::Sliding => {
                if self.gap.is_some() {
                    return Err(refuse("gap", kind));
                }
                let (length, offset) = (need("length", self.length)?, need("offset", self.offset)?);
                AnyWindower::Sliding(
                    Sliding::new(length, offset, align_to).map_err(OptionError::of("offset"))?,
                )
            }
            WindowKind::Session => {
                for (option, set) in [
                    ("length", self.length.is_some()),
                    ("offset", self.offset.is_some()),
                    ("align_to", self.align_to.is_some()),
                ] {
                    if set {
                        return Err(refuse(option, kind));
                    }
                }
                AnyWindower::Session(
                    Session::new(need("gap", self.gap)?).map_err(OptionError::of("gap"))?,
                )
            }
        })
    }

    fn clock(&self) -> Result<AnyClock, OptionError> {
        match &self.timestamp {
            None => {
                if self.wait.is_some() {
                    return Err(OptionError::new(
                        "wait",
                        "only event time waits for late records: set `timestamp` too, or leave `wait` out",
                    ));
                }
                Ok(AnyClock::System(SystemClock))
            }
            Some(pointer) => {
                let pointer = Pointer::parse(pointer).map_err(OptionError::of("timestamp"))?;
                let wait = self.wait.unwrap_or_default();
                Ok(AnyClock::Event(EventClock::new(
                    move |r| {
                        timestamp_of(pointer.get(&r.payload))
                            .map_err(|e| format!("timestamp `{pointer}`: {e}"))
                    },
                    wait,
                )))
            }
        }
    }

    /// Builds the processor.
    ///
    /// ```
    /// use databay_processors::WindowOptions;
    ///
    /// let options: WindowOptions = toml::from_str(
    ///     "key = \"/user\"\nwindow = \"tumbling\"\nlength = \"1m\"\ntimestamp = \"/at\"\n\
    ///      aggregates.clicks = { reducer = \"count\" }",
    /// )
    /// .unwrap();
    /// assert!(options.build().is_ok());
    /// ```
    pub fn build(self) -> Result<Box<dyn Processor>, OptionError> {
        let key = KeySource::from_options(self.key.as_deref(), self.key_expr.as_deref())?;
        let aggregates = Aggregates::new(&self.aggregates)?;
        let windower = self.windower()?;
        let clock = self.clock()?;
        let shape = Shape {
            key_field: self.key_field,
            value_field: None,
            window_fields: Some((self.window_open_field, self.window_close_field)),
            late_route: self.late,
        };
        shape.check(&aggregates.names(), "an aggregate")?;
        let inner = window(key, clock, windower, WindowAggregation(aggregates));
        Ok(Box::new(Shaped { inner, shape }))
    }
}
