//! Durations in options, written as humantime strings (`"5s"`, `"250ms"`,
//! `"1m 30s"`), the unit every databay option uses.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

const EXAMPLES: &str = "a duration such as \"5s\", \"250ms\" or \"1m 30s\"";

/// Parses a humantime duration, with a message that names the bad value
/// and shows what a good one looks like.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?} ({e}): expected {EXAMPLES}"))
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

/// `deserialize_with` for an optional duration (use with `default`).
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
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

    #[test]
    fn parses_humantime() {
        let t: T = toml::from_str("time = \"1m 30s\"").unwrap();
        assert_eq!(t.time, Some(Duration::from_secs(90)));
        let t: T = toml::from_str("time = \"250ms\"").unwrap();
        assert_eq!(t.time, Some(Duration::from_millis(250)));
        let t: T = toml::from_str("").unwrap();
        assert_eq!(t.time, None);
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
}
