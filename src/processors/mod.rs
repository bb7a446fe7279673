//! Built-in processors and groupers usable from TOML, and as Rust types.
//!
//! | type       | kind      | what it does                                              |
//! |------------|-----------|-----------------------------------------------------------|
//! | `buffer`   | processor | holds records until a count or time threshold             |
//! | `select`   | processor | keeps records whose field compares to a value             |
//! | `set`      | processor | sets fields to fixed values                               |
//! | `remove`   | processor | removes fields                                            |
//! | `rename`   | processor | moves fields                                              |
//! | `filter`   | processor | keeps records for which a jq expression is true (`jq`)    |
//! | `map`      | processor | replaces payloads by a jq expression's outputs (`jq`)     |
//! | `chunk`    | grouper   | splits batches into chunks of at most `size` records      |
//! | `group_by` | grouper   | one batch per value of a field or jq expression           |
//!
//! Fields are named by JSON pointers ([`Pointer`]), parsed once at build
//! time. Options are checked when the config loads; an error names the
//! option. At run time, a record that cannot be processed fails the whole
//! batch with an error naming the record, and the link handles it (with
//! `ignore_exceptions`, the batch is dropped and counted).

use crate::{BuildContext, Registry};

mod buffer;
mod chunk;
mod group_by;
#[cfg(feature = "jq")]
mod jq;
mod pointer;
mod remove;
mod rename;
mod select;
mod set;
mod value;

#[cfg(test)]
mod tests;

pub use buffer::BufferOptions;
pub use chunk::{Chunk, ChunkOptions};
pub use group_by::{GroupBy, GroupByOptions, GroupKey};
#[cfg(feature = "jq")]
pub use jq::{JqError, JqFilter, JqMap, JqOptions, JqProgram};
pub use pointer::{Pointer, PointerError, SetError};
pub use remove::{Remove, RemoveOptions};
pub use rename::{Rename, RenameOptions};
pub use select::{Op, Select, SelectOptions};
pub use set::{Set, SetOptions};

/// Why a built-in processor or grouper could not be built, or failed on a
/// batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option has a value the component cannot use.
    #[error("option `{option}`: {message}")]
    Option {
        /// The option's name, as written in TOML.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A record could not be processed; the whole batch fails.
    #[error("record {index} of {count}: {message}")]
    Record {
        /// The record's 0-based position in the batch.
        index: usize,
        /// The number of records in the batch.
        count: usize,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn option(option: &'static str, message: impl Into<String>) -> Self {
        Error::Option {
            option,
            message: message.into(),
        }
    }

    pub(crate) fn record(index: usize, count: usize, message: impl ToString) -> Self {
        Error::Record {
            index,
            count,
            message: message.to_string(),
        }
    }
}

/// Registers the built-in processor and grouper types.
pub fn register(registry: &mut Registry) {
    registry.processor(
        "buffer",
        buffer::SUMMARY,
        buffer::SAMPLE,
        |o: BufferOptions, _: &BuildContext| Ok(o.build()?),
    );
    registry.processor(
        "select",
        select::SUMMARY,
        select::SAMPLE,
        |o: SelectOptions, _: &BuildContext| Ok(o.build()?),
    );
    registry.processor(
        "set",
        set::SUMMARY,
        set::SAMPLE,
        |o: SetOptions, _: &BuildContext| Ok(o.build()?),
    );
    registry.processor(
        "remove",
        remove::SUMMARY,
        remove::SAMPLE,
        |o: RemoveOptions, _: &BuildContext| Ok(o.build()?),
    );
    registry.processor(
        "rename",
        rename::SUMMARY,
        rename::SAMPLE,
        |o: RenameOptions, _: &BuildContext| Ok(o.build()?),
    );
    #[cfg(feature = "jq")]
    {
        registry.processor(
            "filter",
            jq::FILTER_SUMMARY,
            jq::FILTER_SAMPLE,
            |o: JqOptions, _: &BuildContext| Ok(JqFilter::new(&o.expr)?),
        );
        registry.processor(
            "map",
            jq::MAP_SUMMARY,
            jq::MAP_SAMPLE,
            |o: JqOptions, _: &BuildContext| Ok(JqMap::new(&o.expr)?),
        );
    }
    registry.grouper(
        "chunk",
        chunk::SUMMARY,
        chunk::SAMPLE,
        |o: ChunkOptions, _: &BuildContext| Ok(o.build()?),
    );
    registry.grouper(
        "group_by",
        group_by::SUMMARY,
        group_by::SAMPLE,
        |o: GroupByOptions, _: &BuildContext| Ok(o.build()?),
    );
}
