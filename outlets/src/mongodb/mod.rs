//! [`MongoOutlet`]: writes records as documents of a MongoDB collection:
//! unordered `insert_many`, or replace/upsert by key fields in unordered
//! bulk `update` commands, so one bad record never keeps the others out.
//!
#![doc = include_str!("README.md")]

use std::collections::HashMap;
use std::fmt;

use databay_component::OptionError;
use databay_component::mongodb::mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use databay_component::mongodb::mongodb::error::ErrorKind;
use databay_component::mongodb::mongodb::options::{Acknowledgment, WriteConcern};
use databay_component::mongodb::mongodb::{Client, Collection, Database};
use databay_component::mongodb::{Connector, MongoError, check_collection_name, to_document};
use databay_core::{BoxError, Outlet, Record, Rejected, Update, async_trait};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{MongoOutletOptions, WriteConcernOptions};
#[cfg(test)]
mod tests;

/// MongoDB's largest document (`maxBsonObjectSize`).
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;
/// The documents of one `update` command stay under this many bytes, so
/// the command itself stays under the server's limit.
const MAX_COMMAND_DOCUMENTS: usize = MAX_DOCUMENT - 64 * 1024;
/// MongoDB's most writes in one command (`maxWriteBatchSize`).
pub const MAX_BATCH_SIZE: usize = 100_000;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WriteMode {
    /// `insert_many`, unordered: each payload a new document.
    Insert,
    /// The document whose key fields equal the payload's is replaced by
    /// the payload, or the payload inserted when there is none.
    Replace,
    /// The payload's fields are set (`$set`) on the document whose key
    /// fields equal the payload's; other fields stay. Inserted when there
    /// is none.
    Upsert,
}

impl fmt::Display for WriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteMode::Insert => "insert",
            WriteMode::Replace => "replace",
            WriteMode::Upsert => "upsert",
        })
    }
}

/// Why one record of a push was not written: the payload's fault
/// (`/items/0/$x: ...`) or the server's (`E11000 duplicate key ...`).
/// A push returns these inside a [`Rejected`], by the record's index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} for collection `{collection}`: {reason}{}", code_note(*.code))]
#[non_exhaustive]
pub struct MongoReject {
    /// Index of the record in the pushed batch, from 0.
    pub index: usize,
    /// The collection.
    pub collection: String,
    /// The server's error code (11000 for a duplicate key), when the
    /// server refused the document.
    pub code: Option<i32>,
    /// What was wrong.
    pub reason: String,
}

fn code_note(code: Option<i32>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}

/// Why a [`MongoOutlet`] could not start or push. Records refused one by
/// one are not an error of the push: they come back in a [`Rejected`] of
/// [`MongoReject`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoOutletError {
    /// Connecting or an operation failed; what was written of the push is
    /// unknown (a retry with `replace`/`upsert` is harmless).
    #[error(transparent)]
    Mongo(#[from] MongoError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
}

/// Writes records into a MongoDB collection.
///
/// Each payload (a JSON object) becomes one document (see the module
/// documentation for the conversion). A push returns `Ok` only when the
/// server acknowledged every document under the write concern. Records
/// it cannot write do not keep the others out: the rest are written and
/// the push returns a [`Rejected`] of [`MongoReject`]s naming them, which
/// the link counts as delivered except for those records (counted and
/// logged by index).
pub struct MongoOutlet {
    connector: Connector,
    collection: String,
    mode: WriteMode,
    key: Vec<String>,
    batch_size: usize,
    write_concern: Option<WriteConcern>,
    extended_json: bool,
    client: Option<Client>,
}

impl fmt::Debug for MongoOutlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoOutlet")
            .field("connector", &self.connector)
            .field("collection", &self.collection)
            .field("mode", &self.mode)
            .field("key", &self.key)
            .field("batch_size", &self.batch_size)
            .field("write_concern", &self.write_concern)
            .field("extended_json", &self.extended_json)
            .finish_non_exhaustive()
    }
}

impl MongoOutlet {
    /// The default number of documents per command.
    pub const DEFAULT_BATCH_SIZE: usize = 1000;

    /// Inserts into `collection` of the database `connector` names.
    pub fn new(connector: Connector, collection: impl Into<String>) -> Self {
        MongoOutlet {
            connector,
            collection: collection.into(),
            mode: WriteMode::Insert,
            key: Vec::new(),
            batch_size: Self::DEFAULT_BATCH_SIZE,
            write_concern: None,
            extended_json: false,
            client: None,
        }
    }

    /// Replaces or upserts by `key` (field names, dotted for nested
    /// fields) instead of inserting; [`WriteMode::Insert`] takes no key.
    pub fn mode(mut self, mode: WriteMode, key: Vec<String>) -> Self {
        self.mode = mode;
        self.key = key;
        self
    }

    /// Documents per command (default 1000, at most 100 000).
    pub fn batch_size(mut self, documents: usize) -> Self {
        self.batch_size = documents;
        self
    }

    /// The write concern (default: the URI's, else the server's).
    pub fn write_concern(mut self, write_concern: WriteConcern) -> Self {
        self.write_concern = Some(write_concern);
        self
    }

    /// Reads extended JSON in payloads (`{"$oid": "..."}` is an ObjectId,
    /// `{"$date": "..."}` a date) instead of refusing `$` fields.
    pub fn extended_json(mut self, on: bool) -> Self {
        self.extended_json = on;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        check_collection_name("collection", &self.collection)?;
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(OptionError::new(
                "batch_size",
                format!("must be 1 to {MAX_BATCH_SIZE} (MongoDB's most writes per command)"),
            ));
        }
        match (self.mode, self.key.is_empty()) {
            (WriteMode::Insert, false) => {
                return Err(OptionError::new(
                    "key",
                    "only `mode = \"replace\"` or `\"upsert\"` writes by key; inserting takes none",
                ));
            }
            (WriteMode::Replace | WriteMode::Upsert, true) => {
                return Err(OptionError::new(
                    "key",
                    format!(
                        "`mode = \"{}\"` needs the key fields that find a record's document: key = [\"id\"]",
                        self.mode
                    ),
                ));
            }
            _ => {}
        }
        for field in &self.key {
            if field.is_empty() || field.starts_with('$') || field.split('.').any(str::is_empty) {
                return Err(OptionError::new(
                    "key",
                    format!(
                        "`{field}` is not a field name (`id`, or `customer.id` for a nested one)"
                    ),
                ));
            }
        }
        if let Some(Acknowledgment::Nodes(0)) =
            self.write_concern.as_ref().and_then(|w| w.w.as_ref())
        {
            return Err(OptionError::new(
                "write_concern",
                "`w = 0` does not wait for the server, so a push could not know its records are stored",
            ));
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<Client, MongoError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let (client, _) = self.connector.connect().await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Refuses the record at `index`.
    fn reject(
        &self,
        rejected: &mut Vec<MongoReject>,
        index: usize,
        code: Option<i32>,
        reason: String,
    ) {
        rejected.push(MongoReject {
            index,
            collection: self.collection.clone(),
            code,
            reason,
        });
    }

    /// The records as documents, each with its index; the rest rejected.
    fn documents(
        &self,
        records: &[Record],
        rejected: &mut Vec<MongoReject>,
    ) -> Vec<(usize, Document)> {
        let mut docs = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            match to_document(&record.payload, self.extended_json) {
                Ok(doc) => {
                    if self.mode == WriteMode::Upsert
                        && let Some(key) = doc.keys().find(|k| k.contains('.'))
                    {
                        self.reject(
                            rejected,
                            index,
                            None,
                            format!(
                                "`{key}`: under `mode = \"upsert\"` a field name with `.` would set a nested \
                                 field (`$set`); use `mode = \"replace\"` to keep it as written"
                            ),
                        );
                        continue;
                    }
                    docs.push((index, doc));
                }
                Err(e) => self.reject(rejected, index, None, e.to_string()),
            }
        }
        docs
    }

    async fn insert(
        &self,
        collection: &Collection<Document>,
        docs: &[(usize, Document)],
        rejected: &mut Vec<MongoReject>,
    ) -> Result<(), MongoOutletError> {
        for chunk in docs.chunks(self.batch_size) {
            let sizes: Vec<u64> = chunk.iter().map(|(_, d)| bson_size(d)).collect();
            let mut action = collection
                .insert_many(chunk.iter().map(|(_, d)| d))
                .ordered(false);
            if let Some(w) = &self.write_concern {
                action = action.write_concern(w.clone());
            }
            match action.await {
                Ok(_) => databay_core::bytes::add(sizes.iter().sum()),
                Err(e) => match e.kind.as_ref() {
                    ErrorKind::InsertMany(failure) if failure.write_concern_error.is_none() => {
                        let mut written = sizes.iter().sum::<u64>();
                        for error in failure.write_errors.as_deref().unwrap_or_default() {
                            // An index the driver got wrong would reject
                            // another record: fail the push instead.
                            let Some((index, _)) = chunk.get(error.index) else {
                                return Err(self.unknown_index(error.index, chunk.len()).into());
                            };
                            written = written.saturating_sub(sizes[error.index]);
                            self.reject(
                                rejected,
                                *index,
                                Some(error.code),
                                self.connector.scrub(&error.message),
                            );
                        }
                        databay_core::bytes::add(written);
                    }
                    _ => {
                        return Err(self
                            .connector
                            .error(format!("inserting into `{}`", self.collection), e)
                            .into());
                    }
                },
            }
        }
        Ok(())
    }

    /// The push's error when the server names a write outside the command.
    fn unknown_index(&self, at: usize, writes: usize) -> MongoError {
        MongoError::Operation {
            target: self.connector.target().to_owned(),
            what: format!("{} into `{}`", self.mode, self.collection),
            detail: format!(
                "the server reported an error for write {at} of a command of {writes}, \
                 so which records were written is unknown"
            ),
        }
    }

    /// The key filter of `doc`, or why it has none.
    fn key_filter(&self, doc: &Document) -> Result<Document, String> {
        let mut filter = Document::new();
        for field in &self.key {
            let mut value: Option<&Bson> = None;
            let mut current = Some(doc);
            for part in field.split('.') {
                value = current.and_then(|d| d.get(part));
                current = match value {
                    Some(Bson::Document(d)) => Some(d),
                    _ => None,
                };
            }
            match value {
                Some(Bson::Null) | None => {
                    return Err(format!(
                        "the payload has no key field `{field}` (or it is null), so it matches no document"
                    ));
                }
                Some(v) => {
                    filter.insert(field.clone(), v.clone());
                }
            }
        }
        Ok(filter)
    }

    async fn update(
        &self,
        database: &Database,
        docs: Vec<(usize, Document)>,
        rejected: &mut Vec<MongoReject>,
    ) -> Result<(), MongoOutletError> {
        // Records with the same key go in rounds (first occurrences, then
        // second ones, ...) so that they apply in order although each
        // command is unordered.
        let mut rounds: Vec<Vec<(usize, Document, usize)>> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, doc) in docs {
            let filter = match self.key_filter(&doc) {
                Ok(f) => f,
                Err(reason) => {
                    self.reject(rejected, index, None, reason);
                    continue;
                }
            };
            let size = match RawDocumentBuf::try_from(&doc) {
                Ok(raw) => raw.as_bytes().len(),
                Err(e) => {
                    self.reject(
                        rejected,
                        index,
                        None,
                        format!("cannot be encoded as BSON: {e}"),
                    );
                    continue;
                }
            };
            if size > MAX_DOCUMENT {
                self.reject(
                    rejected,
                    index,
                    None,
                    format!("the document is {size} bytes, over MongoDB's 16 MiB"),
                );
                continue;
            }
            let round = seen
                .entry(
                    Bson::Document(filter.clone())
                        .into_relaxed_extjson()
                        .to_string(),
                )
                .or_insert(0);
            if rounds.len() <= *round {
                rounds.push(Vec::new());
            }
            let u = match self.mode {
                WriteMode::Upsert => doc! { "$set": doc },
                _ => doc,
            };
            rounds[*round].push((index, doc! { "q": filter, "u": u, "upsert": true }, size));
            *round += 1;
        }
        for round in rounds {
            let mut start = 0;
            while start < round.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < round.len()
                    && end - start < self.batch_size
                    && (end == start || bytes + round[end].2 * 2 <= MAX_COMMAND_DOCUMENTS)
                {
                    // The key is in the filter and the document: count twice.
                    bytes += round[end].2 * 2;
                    end += 1;
                }
                let chunk = &round[start..end];
                self.update_command(database, chunk, rejected).await?;
                start = end;
            }
        }
        Ok(())
    }

    /// One unordered `update` command; the documents it refused are rejected.
    async fn update_command(
        &self,
        database: &Database,
        chunk: &[(usize, Document, usize)],
        rejected: &mut Vec<MongoReject>,
    ) -> Result<(), MongoOutletError> {
        let what = || format!("{} into `{}`", self.mode, self.collection);
        let mut command = doc! {
            "update": &self.collection,
            "updates": chunk.iter().map(|(_, u, _)| Bson::Document(u.clone())).collect::<Vec<_>>(),
            "ordered": false,
        };
        if let Some(w) = &self.write_concern {
            command.insert("writeConcern", write_concern_document(w));
        }
        let reply = database
            .run_command(command)
            .await
            .map_err(|e| self.connector.error(what(), e))?;
        if let Ok(wce) = reply.get_document("writeConcernError") {
            return Err(MongoError::Operation {
                target: self.connector.target().to_owned(),
                what: what(),
                detail: format!(
                    "write concern not met: {} (code {})",
                    self.connector
                        .scrub(wce.get_str("errmsg").unwrap_or_default()),
                    number(wce.get("code")).unwrap_or(0)
                ),
            }
            .into());
        }
        let mut written: u64 = chunk.iter().map(|(_, _, size)| *size as u64).sum();
        if let Ok(errors) = reply.get_array("writeErrors") {
            for error in errors {
                let Bson::Document(error) = error else {
                    continue;
                };
                let at = number(error.get("index"))
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(usize::MAX);
                let Some((index, _, size)) = chunk.get(at) else {
                    return Err(self.unknown_index(at, chunk.len()).into());
                };
                written = written.saturating_sub(*size as u64);
                self.reject(
                    rejected,
                    *index,
                    number(error.get("code")).and_then(|c| i32::try_from(c).ok()),
                    self.connector
                        .scrub(error.get_str("errmsg").unwrap_or("refused")),
                );
            }
        }
        databay_core::bytes::add(written);
        Ok(())
    }

    /// Writes what it can of `records`; returns the records it refused.
    async fn write(&mut self, records: &[Record]) -> Result<Rejected, MongoOutletError> {
        let client = self.connect().await?;
        let mut refused = Vec::new();
        let docs = self.documents(records, &mut refused);
        if !docs.is_empty() {
            if self.mode == WriteMode::Insert {
                let collection = self.connector.collection(&client, &self.collection);
                self.insert(&collection, &docs, &mut refused).await?;
            } else {
                let database = client.database(self.connector.database());
                self.update(&database, docs, &mut refused).await?;
            }
        }
        // In batch order, whichever step refused them.
        refused.sort_by_key(|r| r.index);
        let mut rejected = Rejected::new();
        for reject in refused {
            rejected.reject(reject.index, reject);
        }
        Ok(rejected)
    }
}

/// The size of `doc` encoded as BSON (what the server stores; an `_id`
/// the driver adds to an insert is not counted).
fn bson_size(doc: &Document) -> u64 {
    RawDocumentBuf::try_from(doc).map_or(0, |raw| raw.as_bytes().len() as u64)
}

/// An integer field of a server reply, whichever width it came in.
fn number(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

fn write_concern_document(w: &WriteConcern) -> Document {
    let mut doc = Document::new();
    match &w.w {
        Some(Acknowledgment::Nodes(n)) => {
            doc.insert("w", i64::from(*n));
        }
        Some(Acknowledgment::Majority) => {
            doc.insert("w", "majority");
        }
        Some(Acknowledgment::Custom(tag)) => {
            doc.insert("w", tag.as_str());
        }
        _ => {}
    }
    if let Some(j) = w.journal {
        doc.insert("j", j);
    }
    if let Some(t) = w.w_timeout {
        doc.insert("wtimeout", i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
    }
    doc
}

#[async_trait]
impl Outlet for MongoOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        self.write(records).await?.into_result()
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.connect().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        // Dropping the last handle closes the pool.
        self.client = None;
        Ok(())
    }
}
