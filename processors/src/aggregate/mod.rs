//! `aggregate`: per-key aggregation until the end of the stream (Bytewax's
//! `fold_final`), with named reducers over fields or jq expressions.

mod options;
#[cfg(test)]
mod tests;

pub use options::AggregateOptions;

use databay_component::{BuildContext, Registry};

const SUMMARY: &str = "Aggregates each key's records (count, sum, min, max, mean, ...) and emits one record per key at the end of the stream.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "aggregate",
        SUMMARY,
        SAMPLE,
        |o: AggregateOptions, _: &BuildContext| Ok(o.build()?),
    );
}
