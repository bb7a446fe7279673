//! Built-in databay outlets.
//!
//! | Outlet | Writes |
//! |---|---|
//! | [`PrintOutlet`] | each record as a line on stdout (or any writer) |
//! | [`NullOutlet`] | nothing: accepts and discards |
//! | [`FileOutlet`] | each payload as a line of a text file |
//! | [`CsvOutlet`] | each object payload as a row of a CSV file |
//! | [`ExecOutlet`] | JSON lines to a command's stdin, each batch acknowledged |
//! | `HttpOutlet` (feature `http`) | each batch as one POST/PUT: a JSON array or NDJSON |
//! | `PostgresOutlet` | rows of a PostgreSQL table (feature `postgres`) |
//! | `AmqpOutlet` | AMQP messages to an exchange, every one confirmed (feature `amqp`) |
//! | `MqttOutlet` | MQTT messages at QoS 0 or 1 (acknowledged) (feature `mqtt`) |
//! | `NatsOutlet` | NATS messages, core (flushed) or JetStream (acknowledged) (feature `nats`) |
//! | `RedisOutlet` | messages on a Redis list, stream or channel (feature `redis`) |
//! | `MysqlOutlet` | rows of a MySQL/MariaDB table: multi-row INSERTs in one transaction per push, upsert, per-row rejects (feature `mysql`) |
//! | `MongoOutlet` | documents of a MongoDB collection: inserts, replace or upsert by key (feature `mongodb`) |
//!
//! Each lives in its own folder with a `README.md` describing every option,
//! the metadata keys it reads and the errors it reports. They implement
//! [`databay_core::Outlet`] through the public API only, as a third-party
//! outlet would. The file outlets return from `push` only once the batch is
//! synced to disk, the core's delivery contract.
//!
//! ```
//! use databay_core::Link;
//! use databay_core::testing::StaticInlet;
//! use databay_outlets::{CsvOutlet, PrintOutlet};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let dir = tempfile::tempdir().unwrap();
//! let link = Link::builder("demo")
//!     .inlet(StaticInlet::values([serde_json::json!({"id": 1})]))
//!     .outlet(PrintOutlet::new().only_payload(true))
//!     .outlet(CsvOutlet::new(dir.path().join("demo.csv")))
//!     .every(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! link.transfer().await.unwrap();
//! assert_eq!(std::fs::read_to_string(dir.path().join("demo.csv")).unwrap(), "id\n1\n");
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
pub mod amqp;
mod common;
pub mod csv;
pub mod exec;
pub mod file;
mod file_mode;
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
pub mod null;
#[cfg(test)]
mod outage;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod print;
#[cfg(feature = "redis")]
pub mod redis;

#[cfg(feature = "amqp")]
pub use crate::amqp::{AmqpOutlet, AmqpOutletError};
pub use crate::common::FileIoError;
pub use crate::csv::{CsvOutlet, CsvOutletError, ExtraColumns, ParseExtraColumnsError};
pub use crate::exec::ExecOutlet;
pub use crate::file::{FileOutlet, FileOutletError};
pub use crate::file_mode::{FileMode, ParseFileModeError};
#[cfg(feature = "http")]
pub use crate::http::HttpOutlet;
#[cfg(feature = "mongodb")]
pub use crate::mongodb::{MongoOutlet, MongoOutletError, MongoReject};
#[cfg(feature = "mqtt")]
pub use crate::mqtt::{MqttOutlet, MqttOutletError};
#[cfg(feature = "mysql")]
pub use crate::mysql::{MysqlOutlet, MysqlOutletError};
#[cfg(feature = "nats")]
pub use crate::nats::{NatsOutlet, NatsOutletError, NatsPublish};
pub use crate::null::NullOutlet;
#[cfg(feature = "postgres")]
pub use crate::postgres::{PostgresOutlet, PostgresOutletError};
pub use crate::print::{PrintOutlet, PrintOutletError};
#[cfg(feature = "redis")]
pub use crate::redis::{RedisOutlet, RedisOutletError, RedisWrite};

/// Registers every outlet type of this crate (`type = "csv"`, ...), each
/// with the options, sample and summary in its own folder.
pub fn register(registry: &mut databay_component::Registry) {
    #[cfg(feature = "amqp")]
    amqp::register(registry);
    csv::register(registry);
    exec::register(registry);
    file::register(registry);
    #[cfg(feature = "http")]
    http::register(registry);
    #[cfg(feature = "mqtt")]
    mqtt::register(registry);
    #[cfg(feature = "nats")]
    nats::register(registry);
    #[cfg(feature = "mongodb")]
    mongodb::register(registry);
    #[cfg(feature = "mysql")]
    mysql::register(registry);
    null::register(registry);
    #[cfg(feature = "postgres")]
    postgres::register(registry);
    print::register(registry);
    #[cfg(feature = "redis")]
    redis::register(registry);
}
