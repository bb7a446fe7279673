//! `buffer`: holds records until a count or time threshold releases them
//! (a [`databay_core::Buffer`] configured from TOML).

use std::time::Duration;

use databay_core::Buffer;
use serde::Deserialize;

use databay_component::duration;
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Holds records until a count or time threshold releases them.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "buffer",
        SUMMARY,
        SAMPLE,
        |o: BufferOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// Options of the `buffer` processor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferOptions {
    /// Release once this many records are held.
    #[serde(default)]
    pub count: Option<usize>,
    /// Release once the oldest held record has waited this long.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub time: Option<Duration>,
    /// `true`: release only when every threshold is met (AND); default
    /// `false`: when one is (OR).
    #[serde(default)]
    pub conjugate: bool,
}

impl BufferOptions {
    /// Builds the buffer. With neither `count` nor `time` it passes records
    /// straight through.
    ///
    /// ```
    /// use databay_processors::BufferOptions;
    /// use std::time::Duration;
    ///
    /// let buffer = BufferOptions { count: Some(10), time: Some(Duration::from_secs(5)), conjugate: false }
    ///     .build()
    ///     .unwrap();
    /// assert!(buffer.is_empty());
    /// ```
    pub fn build(self) -> Result<Buffer, OptionError> {
        let mut buffer = Buffer::new().conjugate_controllers(self.conjugate);
        if let Some(count) = self.count {
            if count == 0 {
                return Err(OptionError::new(
                    "count",
                    "must be at least 1 (leave it out for no count threshold)",
                ));
            }
            buffer = buffer.count_threshold(count);
        }
        if let Some(time) = self.time {
            if time.is_zero() {
                return Err(OptionError::new(
                    "time",
                    "must be longer than 0s (leave it out for no time threshold)",
                ));
            }
            buffer = buffer.time_threshold(time);
        }
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "buffer",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_processor, processor_error, run, run_with, sample_options};
    use databay_core::{Processor, Record, Trigger};
    use serde_json::json;
    use std::time::Instant;

    fn opts(toml: &str) -> Result<Buffer, String> {
        let o: BufferOptions = toml::from_str(toml).map_err(|e| e.to_string())?;
        o.build().map_err(|e| e.to_string())
    }

    fn recs(n: usize) -> Vec<Record> {
        (0..n).map(|i| Record::new(json!(i))).collect()
    }

    #[test]
    fn sample_is_valid() {
        let o: BufferOptions = sample_options(SAMPLE);
        assert_eq!(o.count, Some(1000));
        assert_eq!(o.time, Some(Duration::from_secs(30)));
        assert!(!o.conjugate);
        o.build().unwrap();
    }

    #[tokio::test]
    async fn count_threshold() {
        let mut b = opts("count = 3").unwrap();
        assert!(run(&mut b, recs(2)).await.unwrap().is_empty());
        assert_eq!(run(&mut b, recs(1)).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn time_threshold_asks_for_a_wakeup() {
        let mut b = opts("time = \"1m 30s\"").unwrap();
        assert!(run(&mut b, recs(2)).await.unwrap().is_empty());
        let wake = b.next_wakeup().unwrap();
        assert!(wake > Instant::now() + Duration::from_secs(80));
        assert_eq!(
            run_with(&mut b, vec![], Trigger::Flush)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn conjugate_needs_both_thresholds() {
        let mut and = opts("count = 2\ntime = \"1h\"\nconjugate = true").unwrap();
        assert!(
            run(&mut and, recs(5)).await.unwrap().is_empty(),
            "count met, time not"
        );
        let mut or = opts("count = 2\ntime = \"1h\"").unwrap();
        assert_eq!(run(&mut or, recs(5)).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn no_thresholds_pass_through() {
        let mut b = opts("").unwrap();
        assert_eq!(run(&mut b, recs(4)).await.unwrap().len(), 4);
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(
            opts("count = 0").unwrap_err(),
            "option `count`: must be at least 1 (leave it out for no count threshold)"
        );
        assert!(
            opts("time = \"0s\"")
                .unwrap_err()
                .starts_with("option `time`: must be longer")
        );
        let e = opts("time = \"5 fortnights\"").unwrap_err();
        assert!(
            e.contains("invalid duration \"5 fortnights\"") && e.contains("\"5s\""),
            "{e}"
        );
        let e = opts("count = -1").unwrap_err();
        assert!(e.contains("count"), "{e}");
        let e = opts("counts = 1").unwrap_err();
        assert!(e.contains("unknown field `counts`"), "{e}");
    }

    #[tokio::test]
    async fn builds_through_the_registry() {
        let mut p = build_processor("buffer", "count = 2").unwrap();
        assert!(run(&mut p, recs(1)).await.unwrap().is_empty());
        assert_eq!(run(&mut p, recs(1)).await.unwrap().len(), 2);
        let e = processor_error("buffer", "time = \"soon\"");
        assert!(e.contains("invalid duration \"soon\""), "{e}");
    }
}
