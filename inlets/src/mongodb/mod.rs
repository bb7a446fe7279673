//! [`MongoInlet`]: runs a `find` on every transfer and emits the documents
//! as JSON objects, optionally advancing a cursor (`{field: {$gt: last}}`)
//! so each document is read once.
//!
#![doc = include_str!("README.md")]

use std::fmt;

use databay_component::OptionError;
use databay_component::mongodb::mongodb::Client;
use databay_component::mongodb::mongodb::bson::{Bson, Document, doc};
use databay_component::mongodb::{
    Connector, JsonFormat, MongoError, check_collection_name, document_to_json, to_json,
};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::Value;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{CursorOptions, MongoInletOptions};
#[cfg(test)]
mod tests;

/// An incremental cursor: each pull finds the documents whose `field` is
/// greater than the last one seen, in ascending order of `field`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The field (dotted for a nested one): `_id`, `updated_at`, `seq`.
    pub field: String,
    /// Documents after this value on the first pull; `None`: from the first.
    pub start: Option<Bson>,
}

/// Why a [`MongoInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoInletError {
    /// Connecting or the query failed.
    #[error(transparent)]
    Mongo(#[from] MongoError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The last document of a pull lacks the cursor field (a projection
    /// left it out), so the cursor cannot advance; nothing of this pull was
    /// delivered.
    #[error(
        "MongoDB at {target}, collection `{collection}`: the cursor field `{field}` is missing \
         from the documents read; keep it in the `projection`"
    )]
    NoCursorField {
        /// `host:port/database`.
        target: String,
        /// The collection.
        collection: String,
        /// The cursor field.
        field: String,
    },
}

/// Runs a `find` on every transfer; each document is one record, a JSON
/// object (see the module documentation for the conversion).
///
/// With a [`Cursor`], each pull reads the documents after the last one it
/// read, sorted by the cursor field. The position as of the last commit
/// is the inlet's resume state ([`Inlet::snapshot`], relaxed extended JSON
/// so that its type survives); a rolled-back transfer goes back to it, so
/// its documents are read again.
pub struct MongoInlet {
    connector: Connector,
    collection: String,
    filter: Document,
    projection: Option<Document>,
    sort: Vec<(String, i32)>,
    limit: Option<u64>,
    batch_size: Option<u32>,
    cursor: Option<Cursor>,
    position: Option<Bson>,
    /// `position` as of the last commit.
    committed: Option<Bson>,
    format: JsonFormat,
    client: Option<Client>,
}

impl fmt::Debug for MongoInlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoInlet")
            .field("connector", &self.connector)
            .field("collection", &self.collection)
            .field("filter", &self.filter)
            .field("projection", &self.projection)
            .field("sort", &self.sort)
            .field("limit", &self.limit)
            .field("cursor", &self.cursor)
            .field("position", &self.position)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// `["-updated_at", "_id"]` as `[("updated_at", -1), ("_id", 1)]`.
pub fn parse_sort(fields: &[String]) -> Result<Vec<(String, i32)>, OptionError> {
    fields
        .iter()
        .map(|f| {
            let (name, order) = match f.strip_prefix('-') {
                Some(name) => (name, -1),
                None => (f.strip_prefix('+').unwrap_or(f), 1),
            };
            if name.is_empty() || name.starts_with('$') || name.split('.').any(str::is_empty) {
                return Err(OptionError::new(
                    "sort",
                    format!("`{f}` is not a field (`name` ascending, `-name` descending)"),
                ));
            }
            Ok((name.to_owned(), order))
        })
        .collect()
}

impl MongoInlet {
    /// Finds every document of `collection` in the database `connector`
    /// names, on every pull.
    pub fn new(connector: Connector, collection: impl Into<String>) -> Self {
        MongoInlet {
            connector,
            collection: collection.into(),
            filter: Document::new(),
            projection: None,
            sort: Vec::new(),
            limit: None,
            batch_size: None,
            cursor: None,
            position: None,
            committed: None,
            format: JsonFormat::Plain,
            client: None,
        }
    }

    /// Only the documents matching `filter` (a query document).
    pub fn filter(mut self, filter: Document) -> Self {
        self.filter = filter;
        self
    }

    /// Only these fields (`{"name": 1}`) or all but these (`{"secret": 0}`).
    pub fn projection(mut self, projection: Document) -> Self {
        self.projection = Some(projection);
        self
    }

    /// Sort keys in order, `1` ascending, `-1` descending.
    pub fn sort(mut self, sort: Vec<(String, i32)>) -> Self {
        self.sort = sort;
        self
    }

    /// At most this many documents per pull.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Documents per round trip to the server (the driver's default otherwise).
    pub fn batch_size(mut self, documents: u32) -> Self {
        self.batch_size = Some(documents);
        self
    }

    /// Reads incrementally by `cursor`.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.position = cursor.start.clone();
        self.committed = self.position.clone();
        self.cursor = Some(cursor);
        self
    }

    /// How BSON types JSON lacks are written.
    pub fn format(mut self, format: JsonFormat) -> Self {
        self.format = format;
        self
    }

    /// The cursor's position (the last value read), as relaxed extended
    /// JSON so that its type shows (`{"$oid": "..."}`).
    pub fn position(&self) -> Option<Value> {
        self.position
            .clone()
            .map(|p| to_json(p, JsonFormat::Relaxed))
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        check_collection_name("collection", &self.collection)?;
        if self.limit == Some(0) {
            return Err(OptionError::new(
                "limit",
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if self.batch_size == Some(0) {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if let Some(cursor) = &self.cursor {
            if cursor.field.is_empty()
                || cursor.field.starts_with('$')
                || cursor.field.split('.').any(str::is_empty)
            {
                return Err(OptionError::new(
                    "cursor",
                    format!("`field`: `{}` is not a field name", cursor.field),
                ));
            }
            if !self.sort.is_empty() {
                return Err(OptionError::new(
                    "sort",
                    "a cursor reads in ascending order of its field; leave `sort` out",
                ));
            }
            if let Some(Bson::Null) = cursor.start {
                return Err(OptionError::new(
                    "cursor",
                    "`start` must not be null; leave it out to start from the first document",
                ));
            }
        }
        Ok(())
    }

    /// The filter of the next pull: the configured one and the cursor's.
    fn query(&self) -> Document {
        let Some(cursor) = &self.cursor else {
            return self.filter.clone();
        };
        let after = match &self.position {
            Some(position) => doc! { &cursor.field: { "$gt": position.clone() } },
            // From the first: documents without the field never advance it.
            None => doc! { &cursor.field: { "$exists": true, "$ne": Bson::Null } },
        };
        if self.filter.is_empty() {
            after
        } else {
            doc! { "$and": [self.filter.clone(), after] }
        }
    }

    async fn client(&mut self) -> Result<Client, MongoError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let (client, _) = self.connector.connect().await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn read(&mut self) -> Result<Pull, MongoInletError> {
        let client = self.client().await?;
        let collection = self.connector.collection(&client, &self.collection);
        let what = || format!("find in `{}`", self.collection);
        let sort = match &self.cursor {
            Some(cursor) => doc! { &cursor.field: 1 },
            None => self
                .sort
                .iter()
                .map(|(f, o)| (f.clone(), Bson::Int32(*o)))
                .collect(),
        };
        let mut find = collection.find(self.query());
        if !sort.is_empty() {
            find = find.sort(sort);
        }
        if let Some(projection) = &self.projection {
            find = find.projection(projection.clone());
        }
        if let Some(limit) = self.limit {
            find = find.limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(batch) = self.batch_size {
            find = find.batch_size(batch);
        }
        let mut found = find.await.map_err(|e| self.connector.error(what(), e))?;
        let mut docs = Vec::new();
        while found
            .advance()
            .await
            .map_err(|e| self.connector.error(what(), e))?
        {
            databay_core::bytes::add(found.current().as_bytes().len() as u64);
            let doc: Document = found
                .deserialize_current()
                .map_err(|e| self.connector.error(what(), e))?;
            docs.push(doc);
        }
        if let (Some(cursor), Some(last)) = (&self.cursor, docs.last()) {
            match lookup(last, &cursor.field) {
                Some(value) if *value != Bson::Null => self.position = Some(value.clone()),
                _ => {
                    return Err(MongoInletError::NoCursorField {
                        target: self.connector.target().to_owned(),
                        collection: self.collection.clone(),
                        field: cursor.field.clone(),
                    });
                }
            }
        }
        if docs.is_empty() {
            return Ok(Pull::Nothing);
        }
        let format = self.format;
        Ok(Pull::Records(
            docs.into_iter()
                .map(|d| Record::new(document_to_json(d, format)))
                .collect(),
        ))
    }
}

/// The value at a dotted path of `doc`.
fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut current = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let value = current.get(part)?;
        if parts.peek().is_none() {
            return Some(value);
        }
        match value {
            Bson::Document(d) => current = d,
            _ => return None,
        }
    }
    None
}

#[async_trait]
impl Inlet for MongoInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(self.read().await?)
    }

    /// The documents of the pull were delivered: the position is now
    /// committed.
    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.committed = self.position.clone();
        Ok(())
    }

    /// Not delivered: the position goes back to the committed one, and the
    /// next pull reads the documents again.
    async fn rollback(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.position = self.committed.clone();
        Ok(())
    }

    /// With a cursor: `{"cursor": value}`, the committed position as
    /// relaxed extended JSON (`null` before the first document).
    fn snapshot(&self) -> Option<Value> {
        self.cursor.as_ref()?;
        let value = self
            .committed
            .clone()
            .map_or(Value::Null, |p| to_json(p, JsonFormat::Relaxed));
        Some(serde_json::json!({ "cursor": value }))
    }

    /// Resumes the cursor at a snapshot's position.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.cursor.is_none() {
            return Err("a mongodb inlet without a cursor keeps no resume state".into());
        }
        let Some(value) = state.get("cursor") else {
            return Err(format!("resume state must be {{\"cursor\": value}}, not {state}").into());
        };
        self.position = match value {
            Value::Null => None,
            v => Some(
                Bson::try_from(v.clone())
                    .map_err(|e| format!("resume state: not valid extended JSON: {e}"))?,
            ),
        };
        self.committed = self.position.clone();
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.client().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.client = None;
        Ok(())
    }
}
