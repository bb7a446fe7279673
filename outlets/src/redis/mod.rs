//! [`RedisOutlet`]: writes each record as one message to Redis: appended
//! to a list (`RPUSH`), added to a stream (`XADD`) or published on a
//! channel (`PUBLISH`), the key or channel fixed or filled from the
//! record, one pipeline per push.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::broker::{Format, Template};
use databay_component::redis::{Connector, RedisError};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};
use redis::aio::MultiplexedConnection;

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::RedisOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Where the outlet writes each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RedisWrite {
    /// `RPUSH key message`: a queue the `redis` inlet pops from.
    List,
    /// `XADD key * field message`: a stream the `redis` inlet reads with a
    /// consumer group.
    Stream,
    /// `PUBLISH channel message`: to whoever is subscribed now (Redis
    /// keeps nothing for absent subscribers).
    Publish,
}

/// Why a [`RedisOutlet`] could not push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisOutletError {
    /// Connecting or a command failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A record's key cannot be filled from it; nothing of this push was
    /// written.
    #[error("record {index}: key {message}; nothing of this push was written")]
    BadRecord {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// What is missing.
        message: String,
    },
}

/// Writes records to Redis, one message per record.
///
/// A push renders every record's key first (a record the key template
/// cannot be filled from fails the push before anything is sent), then
/// sends all commands in one pipeline and waits for every reply, so `Ok`
/// means the server took them all. A failed push may have written part of
/// the batch (a pipeline is not a transaction); the link's retry then
/// writes those again, which is at-least-once. Connects lazily and again
/// after the connection dropped.
pub struct RedisOutlet {
    connector: Connector,
    write: RedisWrite,
    key: Template,
    format: Format,
    field: String,
    maxlen: Option<u64>,
    connection: Option<MultiplexedConnection>,
}

impl std::fmt::Debug for RedisOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOutlet")
            .field("connector", &self.connector)
            .field("write", &self.write)
            .field("key", &self.key.source())
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl RedisOutlet {
    /// The stream field holding the message when none is set.
    pub const DEFAULT_FIELD: &str = "payload";

    /// Writes to `key` (a [`Template`]) of the server `connector` reaches.
    pub fn new(connector: Connector, write: RedisWrite, key: Template) -> Self {
        RedisOutlet {
            connector,
            write,
            key,
            format: Format::Json,
            field: Self::DEFAULT_FIELD.to_owned(),
            maxlen: None,
            connection: None,
        }
    }

    /// How payloads become messages (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The stream entry's field holding the message (default `payload`).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// Trims a stream to about this many entries on each add
    /// (`XADD key MAXLEN ~ n`).
    pub fn maxlen(mut self, maxlen: u64) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.write == RedisWrite::Stream && self.field.is_empty() {
            return Err(OptionError::new("field", "must not be empty"));
        }
        if self.write != RedisWrite::Stream && self.maxlen.is_some() {
            return Err(OptionError::new(
                "maxlen",
                "trims a stream: only with mode = \"stream\"",
            ));
        }
        if self.maxlen == Some(0) {
            return Err(OptionError::new("maxlen", "must be at least 1"));
        }
        Ok(())
    }

    async fn write(&mut self, records: &[Record]) -> Result<(), RedisOutletError> {
        let mut keys = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let key = self
                .key
                .render(record)
                .map_err(|message| RedisOutletError::BadRecord { index, message })?;
            keys.push(key);
        }
        let mut pipe = redis::pipe();
        let mut sent = 0;
        for (record, key) in records.iter().zip(&keys) {
            let message = self.format.encode(&record.payload);
            sent += message.len() as u64;
            match self.write {
                RedisWrite::List => pipe.cmd("RPUSH").arg(key.as_ref()).arg(message),
                RedisWrite::Publish => pipe.cmd("PUBLISH").arg(key.as_ref()).arg(message),
                RedisWrite::Stream => {
                    let cmd = pipe.cmd("XADD").arg(key.as_ref());
                    if let Some(maxlen) = self.maxlen {
                        cmd.arg("MAXLEN").arg("~").arg(maxlen);
                    }
                    cmd.arg("*").arg(&self.field).arg(message)
                }
            }
            .ignore();
        }
        if self.connection.is_none() {
            self.connection = Some(self.connector.connect(std::time::Duration::ZERO).await?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        if let Err(e) = pipe.exec_async(connection).await {
            let command = match self.write {
                RedisWrite::List => "RPUSH",
                RedisWrite::Stream => "XADD",
                RedisWrite::Publish => "PUBLISH",
            };
            let key = match self.key.fixed() {
                Some(k) => k.to_owned(),
                None => format!("`{}`", self.key.source()),
            };
            let error = self
                .connector
                .error(format!("{command} {key} ({} records)", records.len()), &e);
            if error.is_closed() {
                self.connection = None;
            }
            return Err(error.into());
        }
        databay_core::bytes::add(sent);
        Ok(())
    }
}

#[async_trait]
impl Outlet for RedisOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        Ok(self.write(records).await?)
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.connection = Some(self.connector.connect(std::time::Duration::ZERO).await?);
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.connection = None;
        Ok(())
    }
}
