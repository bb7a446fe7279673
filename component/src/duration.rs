//! Durations in options, written as humantime strings (`"5s"`, `"250ms"`,
//! `"1m 30s"`), the unit every databay duration option uses, with one
//! error message wherever a duration is wrong.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Options {
//!     #[serde(default, deserialize_with = "databay_component::duration::deserialize_opt")]
//!     timeout: Option<Duration>,
//!     every: databay_component::HumanDuration,
//! }
//!
//! let o: Options = toml::from_str("timeout = \"1m 30s\"\nevery = \"250ms\"").unwrap();
//! assert_eq!(o.timeout, Some(Duration::from_secs(90)));
//! assert_eq!(o.every.0, Duration::from_millis(250));
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

const EXAMPLES: &str = "a duration such as \"5s\", \"250ms\" or \"1m 30s\"";

/// A duration as the options spell it: `10s`, `1m 30s`, `250ms`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(databay_component::duration::format(Duration::from_millis(1500)), "1s 500ms");
/// ```
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Parses a humantime duration (surrounding blanks ignored), with a
/// message that names the bad value and shows what a good one looks like.
///
/// ```
/// use databay_component::duration::parse;
/// assert_eq!(parse(" 2s ").unwrap().as_secs(), 2);
/// assert_eq!(
///     parse("soon").unwrap_err(),
///     "invalid duration \"soon\" (expected number at 0): expected a duration such as \"5s\", \"250ms\" or \"1m 30s\""
/// );
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}): expected {EXAMPLES}"))
}

/// A duration option: `every = "5s"`. Deserializes from a humantime string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

impl<'de> de::Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(HumanDuration)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXAMPLES)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXAMPLES)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(DurationVisitor).map(Some)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse(v).map(Some).map_err(E::custom)
    }
}

/// `deserialize_with` for a required duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// `deserialize_with` for an optional duration (use with `default`).
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "deserialize_opt")]
        time: Option<Duration>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct R {
        every: HumanDuration,
    }

    #[test]
    fn parses_humantime() {
        let t: T = toml::from_str("time = \"1m 30s\"").unwrap();
        assert_eq!(t.time, Some(Duration::from_secs(90)));
        let t: T = toml::from_str("time = \"250ms\"").unwrap();
        assert_eq!(t.time, Some(Duration::from_millis(250)));
        let t: T = toml::from_str("").unwrap();
        assert_eq!(t.time, None);
        let r: R = toml::from_str("every = \" 5s\"").unwrap();
        assert_eq!(r.every, HumanDuration(Duration::from_secs(5)));
    }

    #[test]
    fn bad_durations_name_the_value_and_show_examples() {
        let e = toml::from_str::<T>("time = \"5 parsecs\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"5 parsecs\"") && e.contains("\"250ms\""),
            "{e}"
        );
        let e = toml::from_str::<T>("time = 5").unwrap_err().to_string();
        assert!(e.contains("\"1m 30s\""), "{e}");
    }

    #[test]
    fn required_and_optional_durations_say_the_same() {
        let opt = toml::from_str::<T>("time = \"soon\"").unwrap_err();
        let req = toml::from_str::<R>("every = \"soon\"").unwrap_err();
        assert_eq!(opt.message(), req.message());
    }
}
