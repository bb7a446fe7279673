//! The databay plugin API: what a crate of inlets, outlets or processors
//! needs to make its components usable from a TOML config, without
//! depending on the daemon.
//!
//! - [`Registry`]: type names (`type = "file"`) mapped to factories that
//!   build components from their serde options; each component crate
//!   exposes one `register(&mut Registry)`.
//! - [`BuildContext`]: where a component is being built (its link, the
//!   config file's directory for relative paths).
//! - [`OptionError`]: the one error a factory returns about a bad option;
//!   the config error then points at that option's own line.
//! - [`Secret`]: an option value that never shows in `Debug` or `Display`.
//! - [`duration`]: humantime durations (`"5s"`, `"250ms"`), the unit of
//!   every databay duration option, with one error message.
//! - [`exec`]: child processes (the `command` option, stderr to the log)
//!   for the `exec` inlet and outlet and any plugin that runs a program.
//! - `http` (cargo feature `http`): the HTTP client, TLS, auth and retry
//!   options the HTTP inlet and outlet share, for plugins to reuse.
//! - `postgres` (cargo feature `postgres`): the connection options,
//!   connecting and value conversions the PostgreSQL inlet and outlet share.
//! - `amqp` (cargo feature `amqp`): the connection options and connecting
//!   the AMQP (RabbitMQ) inlet and outlet share.
//! - `broker` (on with any broker feature): payload formats and the
//!   key/subject/topic templates the message-broker connectors share.
//! - `mqtt` (cargo feature `mqtt`): the connection options and the
//!   broker session the MQTT inlet and outlet share.
//! - `nats` (cargo feature `nats`): the connection options (auth, TLS)
//!   the NATS inlet and outlet share.
//! - `redis` (cargo feature `redis`): the connection options and connecting
//!   the Redis inlet and outlet share.
//! - `mongodb` (cargo feature `mongodb`): the connection options, client
//!   and BSON <-> JSON conversions the MongoDB inlet and outlet share.
//! - `mysql` (cargo feature `mysql`): the connection options, connecting
//!   and value conversions the MySQL/MariaDB inlet and outlet share.
//! - [`testing`]: the check every component's `sample.toml` and `README.md`
//!   must pass.
//!
//! ```
//! use databay_component::{BuildContext, Kind, OptionError, Registry};
//! use databay_core::testing::StaticInlet;
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Options {
//!     /// How many values to produce.
//!     count: u32,
//! }
//!
//! let mut registry = Registry::new();
//! registry.inlet("numbers", "Produces 0..count.", "type = \"numbers\"\ncount = 3\n", |o: Options, _: &BuildContext| {
//!     if o.count == 0 {
//!         return Err(OptionError::new("count", "must be at least 1").into());
//!     }
//!     Ok(StaticInlet::values((0..o.count).map(serde_json::Value::from)))
//! });
//! assert_eq!(registry.names(Kind::Inlet), ["numbers"]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "broker")]
pub mod broker;
pub mod duration;
mod error;
pub mod exec;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nats")]
pub mod nats;
mod options;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod registry;
mod secret;
pub mod testing;

pub use duration::HumanDuration;
pub use error::{BuildError, OptionError};
pub use registry::{BuildContext, Component, ComponentInfo, Kind, RawOptions, Registry};
pub use secret::Secret;
