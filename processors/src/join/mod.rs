//! `join`: correlates the records of several inlets (or sides) that share
//! a key into one row, as Bytewax's `join` does.

mod options;
#[cfg(test)]
mod tests;

pub use options::JoinOptions;

use databay_component::{BuildContext, Registry};

const SUMMARY: &str =
    "Joins records of several inlets that share a key into rows (inner, outer or running).";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "join",
        SUMMARY,
        SAMPLE,
        |o: JoinOptions, _: &BuildContext| Ok(o.build()?),
    );
}
