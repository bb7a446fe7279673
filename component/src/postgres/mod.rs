//! What the `postgres` inlet and outlet share, kept once: the connection
//! options (`url`, or `host`/`port`/`user`/`password`/`dbname`), connecting
//! with a timeout, errors that name the server (never the password), and
//! the conversions between JSON values and PostgreSQL column types.
//!
//! Only plain TCP (or Unix-socket) connections: `sslmode` must be
//! `disable`, and a URL asking for TLS (`sslmode=require`) is refused with
//! an [`OptionError`](crate::OptionError) rather than failing later.
//!
//! ```
//! use databay_component::postgres::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     url: Some(Secret::new("postgresql://app:hunter2@db.internal:5433/shop".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "db.internal:5433/shop");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

pub mod checkpoints;
mod connect;
mod copy;
pub mod testing;
mod value;

pub use connect::{ConnectionOptions, Connector, DEFAULT_CONNECT_TIMEOUT, PgError, describe};
pub use copy::BinaryCopy;
pub use value::{
    ColumnType, Counted, Param, column_to_json, quote_identifier, quote_table, to_param,
};
