//! databay's built-in processors and groupers, usable from TOML (through
//! [`register`]) and as Rust types, one folder each (code, options, tests,
//! `README.md`, `sample.toml`).
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
//! | `aggregate`| processor | per-key reducers (count, sum, mean, ...) until EOF        |
//! | `window`   | processor | per-key reducers per tumbling, sliding or session window  |
//! | `collect`  | processor | per-key lists, at a size or after a timeout               |
//! | `join`     | processor | rows of what several inlets brought for a key             |
//!
//! Fields are named by JSON pointers ([`Pointer`]), parsed once at build
//! time. Options are checked when the config loads; an error is a
//! [`databay_component::OptionError`] naming the option. At run time, a
//! record that cannot be processed fails the whole batch with a
//! [`RecordError`] naming the record, and the link handles it (with
//! `ignore_exceptions`, the batch is dropped and counted). The stateful
//! processors (`aggregate`, `window`, `collect`, `join`) instead leave a
//! record they cannot key out, log it with its position and count it in
//! their `rejected_records_total` gauge, and go on with the batch.
//!
//! ```
//! use databay_core::{Link, testing::{CollectOutlet, StaticInlet}};
//! use databay_processors::{Op, Select};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
//! let out = CollectOutlet::new();
//! let link = Link::builder("big_orders")
//!     .inlet(StaticInlet::values([json!({"amount": 5}), json!({"amount": 50})]))
//!     .processor(Select::new("/amount", Op::Gt, Some(json!(10)))?)
//!     .outlet(out.clone())
//!     .every(Duration::from_secs(1))
//!     .build()?;
//! link.transfer().await?;
//! assert_eq!(out.payloads(), [json!({"amount": 50})]);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use databay_component::Registry;

mod aggregate;
mod buffer;
mod chunk;
mod collect;
#[cfg(feature = "jq")]
mod filter;
mod group_by;
mod join;
#[cfg(feature = "jq")]
mod jq;
mod keyed;
#[cfg(feature = "jq")]
mod map;
mod pointer;
mod reducers;
mod remove;
mod rename;
mod select;
mod set;
mod value;
mod window;

#[cfg(test)]
mod tests;

pub use aggregate::AggregateOptions;
pub use buffer::BufferOptions;
pub use chunk::{Chunk, ChunkOptions};
pub use collect::CollectOptions;
#[cfg(feature = "jq")]
pub use filter::JqFilter;
pub use group_by::{GroupBy, GroupByOptions, GroupKey};
pub use join::JoinOptions;
#[cfg(feature = "jq")]
pub use jq::{JqError, JqOptions, JqProgram};
pub use keyed::{EofOption, KeySource};
#[cfg(feature = "jq")]
pub use map::JqMap;
pub use pointer::{Pointer, PointerError, SetError};
pub use reducers::{AggregateSpec, Aggregates, Aggregation, Reducer, WindowAggregation};
pub use remove::{Remove, RemoveOptions};
pub use rename::{Rename, RenameOptions};
pub use select::{Op, Select, SelectOptions};
pub use set::{Set, SetOptions};
pub use window::{WindowKind, WindowOptions};

pub use databay_core::processor::RecordError;

/// Registers every processor and grouper type of this crate.
pub fn register(registry: &mut Registry) {
    aggregate::register(registry);
    window::register(registry);
    collect::register(registry);
    join::register(registry);
    buffer::register(registry);
    select::register(registry);
    set::register(registry);
    remove::register(registry);
    rename::register(registry);
    #[cfg(feature = "jq")]
    filter::register(registry);
    #[cfg(feature = "jq")]
    map::register(registry);
    chunk::register(registry);
    group_by::register(registry);
}
