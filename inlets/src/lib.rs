//! Built-in databay inlets, one module (folder) each.
//!
//! Every inlet here implements [`databay_core::Inlet`] through the public API
//! of `databay-core` alone, exactly as a third-party plugin would, and passes
//! [`databay_core::testing::InletTester`]. Each folder holds the code, its
//! tests and a `README.md` listing every option and what the inlet emits.
//!
//! | Inlet | Produces |
//! |-------|----------|
//! | [`NullInlet`] | nothing, ever (a placeholder) |
//! | [`RandomIntInlet`] | one random integer in `[min, max]` per transfer |
//! | [`ExecInlet`] | JSON lines (or text) from a command's stdout, per transfer or streaming |
//! | [`DirInlet`] | the lines of every file matching a glob, each file a partition with its own resume state |
//! | [`FileInlet`] | lines of a file (optionally NDJSON, optionally followed), or the whole file |
//! | `HttpInlet` (feature `http`) | a URL's response: JSON or text, items, pages, an incremental cursor |
//! | `HttpServerInlet` (feature `http_server`) | JSON or NDJSON POSTed to it (webhooks), held until the next transfer |
//! | `PostgresInlet` | the rows of a query, with an optional incremental cursor (feature `postgres`) |
//! | `AmqpInlet` | an AMQP queue, acknowledged after commit, requeued on rollback (feature `amqp`) |
//! | `MqttInlet` | the messages of an MQTT subscription; QoS 1 acknowledged after commit (feature `mqtt`) |
//! | `NatsInlet` | NATS messages: a core subscription buffered between transfers, or a JetStream consumer acknowledged after commit (feature `nats`) |
//! | `RedisInlet` | messages popped off a list, or read from a stream and acknowledged after commit (feature `redis`) |
//! | `MysqlInlet` | the rows of a MySQL/MariaDB query, with an incremental cursor moved on commit (feature `mysql`) |
//! | `MongoInlet` | the documents of a find, with an optional incremental cursor (feature `mongodb`) |
//!
//! ```
//! use databay_core::{Link, INLET_KEY};
//! use databay_core::testing::CollectOutlet;
//! use databay_inlets::RandomIntInlet;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
//! let outlet = CollectOutlet::new();
//! let link = Link::builder("dice")
//!     .inlet(RandomIntInlet::new(1, 6)?)
//!     .outlet(outlet.clone())
//!     .every(Duration::from_secs(1))
//!     .build()?;
//! link.transfer().await?;
//! let roll = outlet.payloads()[0].as_i64().unwrap();
//! assert!((1..=6).contains(&roll));
//! assert_eq!(outlet.records()[0].meta(INLET_KEY), Some(&"RandomIntInlet".into()));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod dir;
pub mod exec;
pub mod file;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http_server")]
pub mod http_server;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nats")]
pub mod nats;
pub mod null;
#[cfg(test)]
mod outage;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod random_int;
#[cfg(feature = "redis")]
pub mod redis;

#[cfg(feature = "amqp")]
pub use amqp::{AmqpInlet, AmqpInletError};
pub use dir::{DirInlet, DirSource};
pub use exec::{ExecInlet, ExecMode, LineFormat};
pub use file::{FileInlet, FileInletError, FileInletMode, FilePosition};
#[cfg(feature = "http")]
pub use http::{HttpInlet, HttpInletError};
#[cfg(feature = "http_server")]
pub use http_server::{HttpServerInlet, HttpServerInletError};
#[cfg(feature = "mongodb")]
pub use mongodb::{MongoInlet, MongoInletError};
#[cfg(feature = "mqtt")]
pub use mqtt::{MqttInlet, MqttInletError};
#[cfg(feature = "mysql")]
pub use mysql::{MysqlInlet, MysqlInletError};
#[cfg(feature = "nats")]
pub use nats::{NatsInlet, NatsInletError, NatsRead};
pub use null::NullInlet;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresInlet, PostgresInletError};
pub use random_int::{RandomIntError, RandomIntInlet};
#[cfg(feature = "redis")]
pub use redis::{RedisInlet, RedisInletError, RedisRead};

/// Registers every inlet type of this crate (`type = "file"`, ...), each
/// with the options, sample and summary in its own folder.
pub fn register(registry: &mut databay_component::Registry) {
    #[cfg(feature = "amqp")]
    amqp::register(registry);
    dir::register(registry);
    exec::register(registry);
    file::register(registry);
    #[cfg(feature = "http")]
    http::register(registry);
    #[cfg(feature = "http_server")]
    http_server::register(registry);
    #[cfg(feature = "mqtt")]
    mqtt::register(registry);
    #[cfg(feature = "mysql")]
    mysql::register(registry);
    #[cfg(feature = "nats")]
    nats::register(registry);
    #[cfg(feature = "mongodb")]
    mongodb::register(registry);
    null::register(registry);
    #[cfg(feature = "postgres")]
    postgres::register(registry);
    random_int::register(registry);
    #[cfg(feature = "redis")]
    redis::register(registry);
}
