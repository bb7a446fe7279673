//! What the `mysql` inlet and outlet share, kept once: the connection
//! options (`url`, or `host`/`port`/`user`/`password`/`database`),
//! connecting with a timeout, errors that name the server (never the
//! password), the conversions between JSON values and MySQL column values,
//! and identifier quoting. MariaDB and MySQL alike, through `mysql_async`
//! (pure Rust, on tokio; TLS with `require_ssl=true` in the URL, on rustls
//! with ring).
//!
//! ```
//! use databay_component::mysql::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     url: Some(Secret::new("mysql://app:hunter2@db.internal:3307/shop".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "db.internal:3307/shop");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

mod connect;
pub mod testing;
mod value;

pub use connect::{ConnectionOptions, Connector, DEFAULT_CONNECT_TIMEOUT, MysqlError};
pub use mysql_async;
pub use value::{column_to_json, quote_identifier, quote_table, row_to_json, to_value, value_size};
