//! [`RedisInlet`]: takes messages from Redis on every transfer: pops a
//! batch off a list, or reads a stream through a consumer group and
//! acknowledges (`XACK`) the entries only once the transfer that carried
//! them was committed.
//!
#![doc = include_str!("README.md")]

use std::time::Duration;

use databay_component::OptionError;
use databay_component::broker::{Format, Unsettled};
use databay_component::redis::{Connector, RedisError};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use redis::Value as RValue;
use redis::aio::MultiplexedConnection;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::RedisInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The metadata key naming the list or stream a record came from.
pub const KEY_META: &str = "redis_key";
/// The metadata key holding a stream entry's ID (`1700000000000-0`).
pub const ID_META: &str = "redis_id";

/// Where the inlet reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisRead {
    /// `LPOP key count`: pops up to `batch_size` messages per pull.
    List,
    /// `XREADGROUP`: reads new entries as the consumer `consumer` of the
    /// group `group`, creating the group at `start_id` when it is missing.
    Stream {
        /// The consumer group.
        group: String,
        /// This reader's name within the group.
        consumer: String,
        /// Where a newly created group starts: `$` (new entries only) or
        /// `0` (the whole stream).
        start_id: String,
    },
}

/// Why a [`RedisInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisInletError {
    /// Connecting or a command failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A message is not what `format` says; it was removed (popped, or
    /// acknowledged in the group) so that it cannot block the inlet, and
    /// the rest of the pull goes back for the next transfer.
    #[error("Redis at {target}: {place}: {message}; the message was removed")]
    BadMessage {
        /// `host:port/db`.
        target: String,
        /// `list `jobs`, message 3 of the pull` or `stream `events`, entry 1700000000000-0`.
        place: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A stream entry: its ID and fields, `None` when it was deleted since it
/// was delivered.
type Entry = (String, Option<Vec<(String, Vec<u8>)>>);

/// What one pull took, until it is settled.
#[derive(Debug)]
enum Taken {
    /// Popped messages, in list order: pushed back on rollback.
    List(Vec<Vec<u8>>),
    /// Stream entry IDs: acknowledged on commit.
    Stream(Vec<String>),
}

/// Takes messages from a Redis list or stream, one record per message.
///
/// A list has no acknowledgements: a pull pops its messages, a rollback
/// pushes them back to the head of the list in their order (so they are
/// next), a commit forgets them. Messages popped by a daemon that then
/// dies are lost: at-most-once across crashes, at-least-once otherwise.
///
/// A stream is read through a consumer group: a pull reads entries (first
/// this consumer's own unacknowledged ones after a start or a rollback,
/// then new ones), a commit acknowledges them (`XACK`), a rollback leaves
/// them pending so the next pull reads them again. Unacknowledged entries
/// survive a crash in the group's pending list: at-least-once.
pub struct RedisInlet {
    connector: Connector,
    read: RedisRead,
    key: String,
    format: Format,
    field: String,
    batch_size: usize,
    block: Duration,
    connection: Option<MultiplexedConnection>,
    unsettled: Unsettled<Taken>,
    /// The next pull first reads this consumer's pending entries after
    /// this ID (stream only); `None` once they are read.
    backlog: Option<String>,
}

impl std::fmt::Debug for RedisInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInlet")
            .field("connector", &self.connector)
            .field("read", &self.read)
            .field("key", &self.key)
            .field("format", &self.format)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl RedisInlet {
    /// The most messages one pull takes when `batch_size` is not set.
    pub const DEFAULT_BATCH_SIZE: usize = 100;

    /// Reads `key` of the server `connector` reaches.
    pub fn new(connector: Connector, read: RedisRead, key: impl Into<String>) -> Self {
        RedisInlet {
            connector,
            read,
            key: key.into(),
            format: Format::Json,
            field: "payload".to_owned(),
            batch_size: Self::DEFAULT_BATCH_SIZE,
            block: Duration::ZERO,
            connection: None,
            unsettled: Unsettled::default(),
            backlog: Some("0".to_owned()),
        }
    }

    /// How messages become payloads (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The stream entry field holding the message (default `payload`).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The most messages one pull takes (default 100).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Stream only: how long a pull waits for a new entry when there is
    /// none (`XREADGROUP BLOCK`; default: not at all).
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.key.is_empty() {
            return Err(OptionError::new("key", "must not be empty"));
        }
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if let RedisRead::Stream {
            group,
            consumer,
            start_id,
        } = &self.read
        {
            for (name, value) in [
                ("group", group),
                ("consumer", consumer),
                ("start_id", start_id),
                ("field", &self.field),
            ] {
                if value.is_empty() {
                    return Err(OptionError::new(name, "must not be empty"));
                }
            }
        } else if !self.block.is_zero() {
            return Err(OptionError::new(
                "block",
                "waits for stream entries: only with mode = \"stream\"",
            ));
        }
        Ok(())
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let c = self.connector.connect(self.block).await?;
        self.connection = Some(c.clone());
        Ok(c)
    }

    /// Runs `cmd`; a dropped connection is opened again on the next call.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        what: impl FnOnce() -> String,
    ) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        match cmd.query_async(&mut connection).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let error = self.connector.error(what(), &e);
                if error.is_closed() {
                    self.connection = None;
                }
                Err(error)
            }
        }
    }

    async fn create_group(&mut self) -> Result<(), RedisError> {
        let RedisRead::Stream {
            group, start_id, ..
        } = &self.read
        else {
            return Ok(());
        };
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.key)
            .arg(group)
            .arg(start_id)
            .arg("MKSTREAM");
        let what = format!("XGROUP CREATE {} {group}", self.key);
        match self.query::<()>(&cmd, || what).await {
            Err(RedisError::Command { message, .. }) if message.contains("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    fn bad(&self, place: String, message: String) -> RedisInletError {
        RedisInletError::BadMessage {
            target: self.connector.target().to_owned(),
            place,
            message,
        }
    }

    async fn pull_list(&mut self, update: &Update) -> Result<Pull, RedisInletError> {
        let mut cmd = redis::cmd("LPOP");
        cmd.arg(&self.key).arg(self.batch_size);
        let key = self.key.clone();
        let popped: Option<Vec<Vec<u8>>> = self.query(&cmd, || format!("LPOP {key}")).await?;
        let popped = popped.unwrap_or_default();
        databay_core::bytes::add(popped.iter().map(|m| m.len() as u64).sum());
        let mut records = Vec::with_capacity(popped.len());
        let mut bad = None;
        let mut kept = Vec::with_capacity(popped.len());
        for (n, message) in popped.into_iter().enumerate() {
            match self.format.decode(&message) {
                Ok(payload) if bad.is_none() => {
                    records.push(Record::new(payload).with_meta(KEY_META, key.as_str()));
                    kept.push(message);
                }
                Ok(_) => kept.push(message),
                Err(e) if bad.is_none() => {
                    bad = Some(self.bad(format!("list `{key}`, message {n} of the pull"), e));
                }
                // Only the first bad message is reported: the others go
                // back and fail the next pull, one error each.
                Err(_) => kept.push(message),
            }
        }
        self.remember(update, Taken::List(kept)).await;
        match bad {
            Some(e) => Err(e),
            None if records.is_empty() => Ok(Pull::Nothing),
            None => Ok(Pull::Records(records)),
        }
    }

    /// Entries of one `XREADGROUP` reply: `(id, fields)`, `None` fields
    /// for an entry deleted since it was delivered.
    fn entries(reply: RValue) -> Vec<Entry> {
        fn items(v: RValue) -> Vec<RValue> {
            match v {
                RValue::Array(items) | RValue::Set(items) => items,
                RValue::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => Vec::new(),
            }
        }
        fn text(v: &RValue) -> Option<String> {
            match v {
                RValue::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                RValue::SimpleString(s) => Some(s.clone()),
                _ => None,
            }
        }
        let mut out = Vec::new();
        // [[key, entries], ...] (RESP2), or a map key -> entries (RESP3).
        let streams: Vec<RValue> = match reply {
            RValue::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
            RValue::Array(streams) => streams
                .into_iter()
                .filter_map(|pair| items(pair).into_iter().nth(1))
                .collect(),
            _ => Vec::new(),
        };
        for entries in streams {
            let entries = match entries {
                RValue::Array(e) => e,
                other => vec![other],
            };
            for entry in entries {
                let mut parts = items(entry).into_iter();
                let Some(id) = parts.next().as_ref().and_then(text) else {
                    continue;
                };
                let fields = match parts.next() {
                    Some(RValue::Nil) | None => None,
                    Some(fields) => {
                        let flat = items(fields);
                        let mut pairs = Vec::with_capacity(flat.len() / 2);
                        let mut flat = flat.into_iter();
                        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                            let value = match v {
                                RValue::BulkString(b) => b,
                                RValue::SimpleString(s) => s.into_bytes(),
                                _ => Vec::new(),
                            };
                            pairs.push((text(&k).unwrap_or_default(), value));
                        }
                        Some(pairs)
                    }
                };
                out.push((id, fields));
            }
        }
        out
    }

    async fn read_group(&mut self, from: &str) -> Result<RValue, RedisInletError> {
        let RedisRead::Stream {
            group, consumer, ..
        } = &self.read
        else {
            return Ok(RValue::Nil);
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(self.batch_size);
        if from == ">" && !self.block.is_zero() {
            cmd.arg("BLOCK").arg(self.block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(from);
        let what = format!("XREADGROUP {} {group} {from}", self.key);
        let reply = match self.query::<RValue>(&cmd, || what).await {
            // The group (or the stream) was deleted: make it again.
            Err(RedisError::Command { message, .. }) if message.contains("NOGROUP") => {
                self.create_group().await?;
                RValue::Nil
            }
            other => other?,
        };
        Ok(reply)
    }

    async fn pull_stream(&mut self, update: &Update) -> Result<Pull, RedisInletError> {
        let in_flight: Vec<String> = self
            .unsettled
            .iter()
            .flat_map(|t| match t {
                Taken::Stream(ids) => ids.clone(),
                Taken::List(_) => Vec::new(),
            })
            .collect();
        let mut entries = Vec::new();
        while let Some(after) = self.backlog.clone() {
            let read = Self::entries(self.read_group(&after).await?);
            match read.last() {
                Some((last, _)) => self.backlog = Some(last.clone()),
                None => self.backlog = None,
            }
            entries.extend(read.into_iter().filter(|(id, _)| !in_flight.contains(id)));
            if !entries.is_empty() {
                break;
            }
        }
        if entries.is_empty() {
            entries = Self::entries(self.read_group(">").await?);
        }
        let mut records = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        let mut bad = None;
        for (id, fields) in entries {
            let Some(fields) = fields else {
                // Deleted since delivered: nothing to emit; acknowledged
                // with the rest so it leaves the pending list.
                ids.push(id);
                continue;
            };
            let decoded = match fields.iter().find(|(k, _)| *k == self.field) {
                Some((_, message)) => {
                    databay_core::bytes::add(message.len() as u64);
                    self.format.decode(message)
                }
                None => Err(format!(
                    "has no field `{}` (fields: {})",
                    self.field,
                    fields
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            match decoded {
                Ok(payload) => {
                    if bad.is_none() {
                        records.push(
                            Record::new(payload)
                                .with_meta(KEY_META, self.key.as_str())
                                .with_meta(ID_META, id.as_str()),
                        );
                    }
                    ids.push(id);
                }
                Err(e) if bad.is_none() => {
                    bad = Some((id.clone(), e));
                }
                Err(_) => ids.push(id),
            }
        }
        if let Some((id, message)) = bad {
            // Acknowledged now, so that it does not come back forever.
            self.ack(std::slice::from_ref(&id)).await?;
            self.remember(update, Taken::Stream(ids)).await;
            return Err(self.bad(format!("stream `{}`, entry {id}", self.key), message));
        }
        self.remember(update, Taken::Stream(ids)).await;
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    /// Keeps what a pull took; releases what a cut-short transfer of the
    /// same link left.
    async fn remember(&mut self, update: &Update, taken: Taken) {
        for leftover in self.unsettled.insert(update, taken) {
            if let Err(e) = self.release(leftover).await {
                tracing::warn!("{e}");
            }
        }
    }

    async fn ack(&mut self, ids: &[String]) -> Result<(), RedisError> {
        let RedisRead::Stream { group, .. } = &self.read else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(group).arg(ids);
        let what = format!("XACK {} {group} ({} entries)", self.key, ids.len());
        self.query::<()>(&cmd, || what).await
    }

    /// Gives taken messages back: to the head of the list, or to the
    /// backlog the next pull reads first.
    async fn release(&mut self, taken: Taken) -> Result<(), RedisError> {
        match taken {
            Taken::List(messages) if messages.is_empty() => Ok(()),
            Taken::List(messages) => {
                let mut cmd = redis::cmd("LPUSH");
                cmd.arg(&self.key);
                for m in messages.iter().rev() {
                    cmd.arg(m.as_slice());
                }
                let what = format!(
                    "LPUSH {} (putting back {} messages)",
                    self.key,
                    messages.len()
                );
                self.query::<()>(&cmd, || what).await
            }
            Taken::Stream(_) => {
                self.backlog = Some("0".to_owned());
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Inlet for RedisInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(match self.read {
            RedisRead::List => self.pull_list(update).await?,
            RedisRead::Stream { .. } => self.pull_stream(update).await?,
        })
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        match self.unsettled.take(update) {
            Some(Taken::Stream(ids)) => Ok(self.ack(&ids).await?),
            Some(Taken::List(_)) | None => Ok(()),
        }
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        match self.unsettled.take(update) {
            Some(taken) => Ok(self.release(taken).await?),
            None => Ok(()),
        }
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.connection().await?;
        self.create_group().await?;
        self.backlog = Some("0".to_owned());
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        // Unsettled stream entries stay pending in the group and are read
        // first on the next start; popped list messages go back.
        let mut first_error = None;
        for taken in self.unsettled.drain() {
            if let Err(e) = self.release(taken).await {
                first_error.get_or_insert(e);
            }
        }
        self.connection = None;
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
