//! `collect`: gathers each key's payloads into lists of at most `max_size`,
//! emitted when full or `timeout` after their first record (Bytewax's
//! `collect`).

mod options;
#[cfg(test)]
mod tests;

pub use options::CollectOptions;

use databay_component::{BuildContext, Registry};

const SUMMARY: &str = "Gathers each key's records into lists, emitted at max_size records or timeout after the first.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "collect",
        SUMMARY,
        SAMPLE,
        |o: CollectOptions, _: &BuildContext| Ok(o.build()?),
    );
}
