//! What the `mongodb` inlet and outlet share, kept once: the connection
//! options (`uri`, `database`, timeouts, `tls`), the client, errors that
//! name the deployment (never the password), and the conversions between
//! JSON payloads and BSON documents.
//!
//! The driver is the official `mongodb` crate on rustls with ring (the one
//! TLS stack of databay). `mongodb+srv://` URIs need DNS SRV lookups,
//! which the cargo feature `mongodb-srv` adds; without it such a URI is
//! refused as an [`OptionError`](crate::OptionError) that says what to
//! write instead.
//!
//! ```
//! use databay_component::mongodb::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     uri: Secret::new("mongodb://app:hunter2@db1:27017,db2:27017/shop?replicaSet=rs0".into()),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "db1:27017,db2:27017/shop");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

mod connect;
pub mod testing;
mod value;

pub use connect::{
    ConnectionOptions, Connector, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SERVER_SELECTION_TIMEOUT,
    MongoError, TlsSettings, check_collection_name, describe,
};
pub use mongodb;
pub use value::{
    JsonFormat, ValueError, document_to_json, option_document, option_value, to_document, to_json,
};
