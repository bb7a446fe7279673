//! [`PostgresOutlet`]: inserts records into a PostgreSQL table, one
//! transaction per push, with multi-row `INSERT`s of typed parameters and an
//! optional `ON CONFLICT` upsert, or with one binary `COPY` per push.
//!
#![doc = include_str!("README.md")]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use databay_component::OptionError;
use databay_component::postgres::{
    BinaryCopy, ColumnType, Connector, Counted, Param, PgError, checkpoints, quote_identifier,
    quote_table, to_param,
};
use databay_core::checkpoint::Checkpoint;
use databay_core::transaction::TransactionalOutlet;
use databay_core::{BoxError, Outlet, Permanent, Record, Rejected, Update, async_trait};
use futures::SinkExt;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{ConflictAction, OnConflictOptions, PostgresOutletOptions, WriteMethod};
#[cfg(test)]
mod tests;

/// The most parameters one PostgreSQL statement may carry.
const MAX_PARAMS: usize = 65_535;

/// How much of a COPY stream is encoded before it is sent on.
const COPY_CHUNK: usize = 256 * 1024;

/// Where each inserted column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Column name -> JSON pointer into the payload (`"/amount"`; `""` is
    /// the whole payload).
    Columns(Vec<(String, String)>),
    /// The whole payload into this one JSON or JSONB column.
    JsonColumn(String),
}

impl Mapping {
    fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Mapping::Columns(pairs) => pairs.clone(),
            Mapping::JsonColumn(column) => vec![(column.clone(), String::new())],
        }
    }
}

/// What `ON CONFLICT` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnConflict {
    /// The columns of the unique index or constraint (`ON CONFLICT (keys)`).
    pub keys: Vec<String>,
    /// Update the other inserted columns, or keep the existing row.
    pub action: ConflictAction,
}

/// Why a [`PostgresOutlet`] could not start or push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresOutletError {
    /// Connecting or a statement failed.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The table does not exist (or is not visible to the user).
    #[error("PostgreSQL at {target}: table `{table}` does not exist")]
    NoTable {
        /// `host:port/dbname`.
        target: String,
        /// The table as configured.
        table: String,
    },
    /// A mapped column is missing from the table or has a type the outlet
    /// does not convert to.
    #[error("PostgreSQL at {target}: column `{column}` of table `{table}`: {message}")]
    Column {
        /// `host:port/dbname`.
        target: String,
        /// The table as configured.
        table: String,
        /// The column.
        column: String,
        /// What is wrong with it.
        message: String,
    },
    /// A record's value cannot go into its column; nothing of the push
    /// was written.
    #[error("record {index}, column `{column}`: {message}")]
    BadRecord {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// The column.
        column: String,
        /// What is wrong with the value.
        message: String,
    },
}

/// One inserted column, as the table declares it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    pointer: String,
    ty: ColumnType,
    not_null: bool,
}

/// An open connection and the statements prepared on it.
struct Connected {
    client: Client,
    /// `(rows, statement)`: the full-batch insert and the latest shorter one.
    full: Option<(usize, Statement)>,
    partial: Option<(usize, Statement)>,
    /// The checkpoint upsert of exactly-once commits, once prepared.
    upsert: Option<Statement>,
}

/// Writes records into a PostgreSQL table.
///
/// Each push runs in one transaction: every record is converted first (a
/// record whose value does not fit its column is rejected, naming its index
/// and column, and the others are written), then multi-row `INSERT`s of
/// `batch_size` rows each ([`WriteMethod::Insert`]) or one binary `COPY`
/// of every row ([`WriteMethod::Copy`]), then `COMMIT`, so the rows of a
/// push that returns (or rejects some records) are durable and a push that
/// fails left nothing. A row the server refuses (a duplicate key, a
/// constraint) fails the push either way.
/// Connects in `on_start` (reading the table's column types once), and
/// reconnects on the next push after the connection dropped.
pub struct PostgresOutlet {
    connector: Connector,
    table: String,
    mapping: Mapping,
    method: WriteMethod,
    batch_size: usize,
    on_conflict: Option<OnConflict>,
    columns: Option<Vec<Column>>,
    connected: Option<Connected>,
    /// The transfer whose records wait in an open transaction.
    holding: Option<Holding>,
}

impl std::fmt::Debug for PostgresOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOutlet")
            .field("connector", &self.connector)
            .field("table", &self.table)
            .field("mapping", &self.mapping)
            .field("method", &self.method)
            .field("batch_size", &self.batch_size)
            .field("on_conflict", &self.on_conflict)
            .finish_non_exhaustive()
    }
}

impl PostgresOutlet {
    /// The default number of rows per `INSERT`.
    pub const DEFAULT_BATCH_SIZE: usize = 1000;

    /// Inserts into `table` (`name` or `schema.name`) of the server
    /// `connector` reaches, taking values as `mapping` says.
    pub fn new(connector: Connector, table: impl Into<String>, mapping: Mapping) -> Self {
        PostgresOutlet {
            connector,
            table: table.into(),
            mapping,
            method: WriteMethod::Insert,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            on_conflict: None,
            columns: None,
            connected: None,
            holding: None,
        }
    }

    /// How a push writes its rows (default [`WriteMethod::Insert`]).
    pub fn method(mut self, method: WriteMethod) -> Self {
        self.method = method;
        self
    }

    /// Rows per `INSERT` statement (default 1000); a push of more records
    /// runs several, in one transaction. `COPY` sends a push in one
    /// statement and ignores it.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows;
        self
    }

    /// Upserts: `INSERT ... ON CONFLICT (keys) DO UPDATE | DO NOTHING`.
    pub fn on_conflict(mut self, on_conflict: OnConflict) -> Self {
        self.on_conflict = Some(on_conflict);
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if quote_table(&self.table).is_none() {
            return Err(OptionError::new(
                "table",
                format!("`{}` is not `table` or `schema.table`", self.table),
            ));
        }
        let pairs = self.mapping.pairs();
        match &self.mapping {
            Mapping::Columns(p) if p.is_empty() => {
                return Err(OptionError::new("columns", "must map at least one column"));
            }
            Mapping::Columns(p) => {
                for (column, pointer) in p {
                    if !pointer.is_empty() && !pointer.starts_with('/') {
                        return Err(OptionError::new(
                            "columns",
                            format!(
                                "`{column}`: `{pointer}` is not a JSON pointer (`/field`, or \"\" for the whole payload)"
                            ),
                        ));
                    }
                }
            }
            Mapping::JsonColumn(c) if c.is_empty() => {
                return Err(OptionError::new("json_column", "must not be empty"));
            }
            Mapping::JsonColumn(_) => {}
        }
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if self.method == WriteMethod::Copy && self.on_conflict.is_some() {
            return Err(OptionError::new(
                "method",
                "COPY cannot upsert: `on_conflict` needs `method = \"insert\"`",
            ));
        }
        if self.method == WriteMethod::Insert && self.batch_size * pairs.len() > MAX_PARAMS {
            return Err(OptionError::new(
                "batch_size",
                format!(
                    "{} rows of {} columns need {} parameters, more than PostgreSQL's {MAX_PARAMS} per statement; \
                     use at most {}",
                    self.batch_size,
                    pairs.len(),
                    self.batch_size * pairs.len(),
                    MAX_PARAMS / pairs.len()
                ),
            ));
        }
        if let Some(on_conflict) = &self.on_conflict {
            if on_conflict.keys.is_empty() {
                return Err(OptionError::new(
                    "on_conflict",
                    "`keys` must name at least one column",
                ));
            }
            for key in &on_conflict.keys {
                if !pairs.iter().any(|(c, _)| c == key) {
                    return Err(OptionError::new(
                        "on_conflict",
                        format!("key `{key}` is not one of the inserted columns"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn quoted_table(&self) -> String {
        quote_table(&self.table).unwrap_or_else(|| quote_identifier(&self.table))
    }

    /// Reads the mapped columns' types from the catalog.
    async fn load_columns(&self, client: &Client) -> Result<Vec<Column>, PostgresOutletError> {
        let target = self.connector.target().to_owned();
        let what = format!("reading the columns of `{}`", self.table);
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid, a.attnotnull, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&self.quoted_table()],
            )
            .await
            .map_err(|e| self.connector.error(what.clone(), e))?;
        if rows.is_empty() {
            return Err(PostgresOutletError::NoTable {
                target,
                table: self.table.clone(),
            });
        }
        let mut columns = Vec::new();
        for (name, pointer) in self.mapping.pairs() {
            let column_error = |message: String| PostgresOutletError::Column {
                target: target.clone(),
                table: self.table.clone(),
                column: name.clone(),
                message,
            };
            let Some(row) = rows.iter().find(|r| r.get::<_, String>(0) == name) else {
                return Err(column_error("no such column".into()));
            };
            let oid: u32 = row.get(1);
            let shown: String = row.get(3);
            let ty = tokio_postgres::types::Type::from_oid(oid)
                .as_ref()
                .and_then(ColumnType::of)
                .ok_or_else(|| {
                    column_error(format!(
                        "type `{shown}` is not supported (supported: {})",
                        ColumnType::SUPPORTED
                    ))
                })?;
            if matches!(self.mapping, Mapping::JsonColumn(_))
                && !matches!(ty, ColumnType::Json | ColumnType::Jsonb)
            {
                return Err(column_error(format!(
                    "`json_column` needs a json or jsonb column, this one is `{shown}`"
                )));
            }
            columns.push(Column {
                name,
                pointer,
                ty,
                not_null: row.get(2),
            });
        }
        Ok(columns)
    }

    /// A new connection, reading the table's column types at the first.
    async fn connect(&mut self) -> Result<Connected, PostgresOutletError> {
        let client = self.connector.connect().await?;
        if self.columns.is_none() {
            self.columns = Some(self.load_columns(&client).await?);
        }
        Ok(Connected {
            client,
            full: None,
            upsert: None,
            partial: None,
        })
    }

    /// Every good record's row of parameters, with its index; a record
    /// whose value does not fit its column is rejected.
    fn rows<'a>(
        columns: &[Column],
        records: &'a [Record],
        rejected: &mut Rejected,
    ) -> Vec<(usize, Vec<Param<'a>>)> {
        let mut rows = Vec::with_capacity(records.len());
        'records: for (index, record) in records.iter().enumerate() {
            let mut row = Vec::with_capacity(columns.len());
            for c in columns {
                let value = record.payload.pointer(&c.pointer);
                let bad = |message: String| PostgresOutletError::BadRecord {
                    index,
                    column: c.name.clone(),
                    message,
                };
                if c.not_null && value.is_none_or(Value::is_null) {
                    rejected.reject(
                        index,
                        bad(if value.is_none() {
                            format!(
                                "the payload has no `{}` and the column is NOT NULL",
                                c.pointer
                            )
                        } else {
                            format!("`{}` is null and the column is NOT NULL", c.pointer)
                        }),
                    );
                    continue 'records;
                }
                match to_param(value, c.ty) {
                    Ok(param) => row.push(param),
                    Err(message) => {
                        rejected.reject(index, bad(message));
                        continue 'records;
                    }
                }
            }
            rows.push((index, row));
        }
        rows
    }

    /// For `DO UPDATE`: one row per key (the last record wins), since
    /// PostgreSQL refuses a statement that updates one row twice.
    fn last_per_key<'a>(
        &self,
        columns: &[Column],
        records: &'a [Record],
        rows: Vec<(usize, Vec<Param<'a>>)>,
    ) -> Vec<Vec<Param<'a>>> {
        let Some(on_conflict) = self
            .on_conflict
            .as_ref()
            .filter(|o| o.action == ConflictAction::Update)
        else {
            return rows.into_iter().map(|(_, row)| row).collect();
        };
        let keys: Vec<&Column> = columns
            .iter()
            .filter(|c| on_conflict.keys.contains(&c.name))
            .collect();
        let mut slot_of: HashMap<Vec<Option<&Value>>, usize> = HashMap::new();
        let mut out: Vec<Vec<Param<'a>>> = Vec::with_capacity(rows.len());
        for (index, row) in rows {
            let record = &records[index];
            let key: Vec<Option<&Value>> = keys
                .iter()
                .map(|c| record.payload.pointer(&c.pointer))
                .collect();
            // NULL keys never conflict: keep every such row.
            if key.iter().any(|v| v.is_none_or(Value::is_null)) {
                out.push(row);
                continue;
            }
            match slot_of.get(&key) {
                Some(&slot) => out[slot] = row,
                None => {
                    slot_of.insert(key, out.len());
                    out.push(row);
                }
            }
        }
        out
    }

    /// Writes the good records, returning the rejected ones. An ordinary
    /// push runs in a transaction of its own; a push for the held transfer
    /// ([`TransactionalOutlet::hold`]) writes into the transaction that
    /// transfer holds open, on a connection of its own.
    async fn write(&mut self, records: &[Record], update: &Update) -> Result<Rejected, BoxError> {
        let held = self.holding.as_ref().is_some_and(|h| h.is(update));
        let open = held && self.holding.as_ref().is_some_and(|h| h.wrote);
        if held && self.holding.as_ref().is_some_and(|h| h.lost.is_some()) {
            return Err(self.lost().into());
        }
        let mut conn = if open {
            self.holding.as_mut().and_then(|h| h.conn.take())
        } else {
            self.connected.take()
        };
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            if open {
                // The transaction, and what it held, went with the
                // connection (or with a push cut off midway).
                return Err(self.lose("its connection was closed".into()).into());
            }
            conn = Some(self.connect().await?);
        }
        let Some(mut c) = conn else {
            return Ok(Rejected::new());
        };
        match self.write_on(&mut c, records, !open, !held).await {
            Ok((rejected, sent)) => {
                match self.holding.as_mut() {
                    Some(h) if held && (open || sent.is_some()) => {
                        h.wrote = true;
                        h.sent += sent.unwrap_or(0);
                        h.conn = Some(c);
                    }
                    // Nothing written, so no transaction was opened.
                    _ => self.connected = Some(c),
                }
                Ok(rejected)
            }
            Err(e) => {
                // The connection is dropped with the error: the server rolls
                // its transaction back, and the next push starts on a fresh
                // one (the driver may not have noticed that a terminated
                // backend is gone: it first shows as a database error).
                drop(c);
                if open {
                    return Err(self.lose(e.to_string()).into());
                }
                Err(e.into())
            }
        }
    }

    /// Writes `records` on `conn`: opens a transaction first if `begin`,
    /// commits it at the end if `commit`. Returns the rejected records and,
    /// if anything was written, the bytes sent (counted here once
    /// committed).
    async fn write_on(
        &self,
        conn: &mut Connected,
        records: &[Record],
        begin: bool,
        commit: bool,
    ) -> Result<(Rejected, Option<u64>), PostgresOutletError> {
        let columns = self.columns.clone().unwrap_or_default();
        let mut rejected = Rejected::new();
        let rows = Self::rows(&columns, records, &mut rejected);
        if rows.is_empty() {
            return Ok((rejected, None));
        }
        let connector = &self.connector;
        let table = &self.table;
        let Connected {
            client,
            full,
            partial,
            ..
        } = conn;
        if begin {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| connector.error("starting a transaction", e))?;
        }
        let count = rows.len();
        let sent = if self.method == WriteMethod::Copy {
            self.copy(client, &columns, rows, &mut rejected).await?
        } else {
            let rows = self.last_per_key(&columns, records, rows);
            let batch_size = self.batch_size;
            let quoted = self.quoted_table();
            let on_conflict = self.on_conflict.as_ref();
            // What the INSERTs carry, counted as the driver encodes it.
            let sent = AtomicU64::new(0);
            let mut start = 0;
            for chunk in rows.chunks(batch_size) {
                let n = chunk.len();
                let what = || format!("inserting records {start}..{} into `{table}`", start + n);
                // Full batches and the rest: at most two statement shapes.
                let slot = if n == batch_size {
                    &mut *full
                } else {
                    &mut *partial
                };
                let statement = match slot {
                    Some((rows, statement)) if *rows == n => statement.clone(),
                    _ => {
                        let sql = insert_sql(&quoted, on_conflict, &columns, n);
                        let statement = client
                            .prepare(&sql)
                            .await
                            .map_err(|e| connector.error(what(), e))?;
                        *slot = Some((n, statement.clone()));
                        statement
                    }
                };
                let counted: Vec<Counted<'_>> = chunk
                    .iter()
                    .flatten()
                    .map(|param| Counted { param, sent: &sent })
                    .collect();
                let params: Vec<&(dyn ToSql + Sync)> =
                    counted.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                client
                    .execute(&statement, &params)
                    .await
                    .map_err(|e| connector.error(what(), e))?;
                start += n;
            }
            sent.into_inner()
        };
        if commit {
            client.batch_execute("COMMIT").await.map_err(|e| {
                connector.error(format!("committing {count} rows into `{table}`"), e)
            })?;
            // Counted once committed: a rolled-back batch delivered nothing.
            databay_core::bytes::add(sent);
        }
        Ok((rejected, Some(sent)))
    }

    /// Marks the held transaction lost (`why`): its records are gone, so
    /// the rest of its transfer's pushes and its commit fail for good.
    fn lose(&mut self, why: String) -> Permanent {
        if let Some(h) = self.holding.as_mut() {
            h.conn = None;
            h.lost = Some(why);
        }
        self.lost()
    }

    /// The error of a push or commit of a held transaction that was lost.
    fn lost(&self) -> Permanent {
        let why = self
            .holding
            .as_ref()
            .and_then(|h| h.lost.clone())
            .unwrap_or_default();
        Permanent::new(format!(
            "PostgreSQL at {}: the transaction holding this transfer's records into `{}` \
                 was lost ({why}); the transfer is written again from the link's checkpoint",
            self.connector.target(),
            self.table
        ))
    }
}

impl PostgresOutlet {
    /// `COPY table (columns) FROM STDIN (FORMAT binary)` of `rows`, inside
    /// the transaction open on `client`; returns the bytes sent. A value
    /// the binary form cannot hold rejects its record (the others are
    /// written); whatever the server refuses fails the whole push, as a
    /// failed `INSERT` does.
    async fn copy(
        &self,
        client: &Client,
        columns: &[Column],
        rows: Vec<(usize, Vec<Param<'_>>)>,
        rejected: &mut Rejected,
    ) -> Result<u64, PostgresOutletError> {
        let quoted = self.quoted_table();
        let names: Vec<String> = columns.iter().map(|c| quote_identifier(&c.name)).collect();
        let sql = format!(
            "COPY {quoted} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        );
        let types: Vec<ColumnType> = columns.iter().map(|c| c.ty).collect();
        let connector = &self.connector;
        let table = &self.table;
        let what = || format!("copying {} rows into `{table}`", rows.len());
        let sink = client
            .copy_in(&sql)
            .await
            .map_err(|e| connector.error(what(), e))?;
        let mut sink = std::pin::pin!(sink);
        let mut stream = BinaryCopy::new();
        let mut refused = Vec::new();
        for (index, row) in &rows {
            if let Err((at, message)) = stream.row(row, &types) {
                let column = columns.get(at).map(|c| c.name.clone()).unwrap_or_default();
                refused.push((
                    *index,
                    PostgresOutletError::BadRecord {
                        index: *index,
                        column,
                        message,
                    },
                ));
                continue;
            }
            // Sent while the rest is encoded: the server reads meanwhile.
            if stream.buffered() >= COPY_CHUNK {
                sink.send(stream.take())
                    .await
                    .map_err(|e| connector.error(what(), e))?;
            }
        }
        let sent = stream.value_bytes();
        sink.send(stream.finish())
            .await
            .map_err(|e| connector.error(what(), e))?;
        // The server answers with the rows it took: all of them, or an error.
        sink.finish()
            .await
            .map_err(|e| connector.error(what(), e))?;
        if !refused.is_empty() {
            // In batch order, whichever step refused them.
            let mut all: Vec<(usize, BoxError)> = std::mem::take(rejected)
                .into_rejects()
                .into_iter()
                .map(|r| (r.index, r.error))
                .collect();
            all.extend(refused.into_iter().map(|(i, e)| (i, e.into())));
            all.sort_by_key(|(i, _)| *i);
            for (index, error) in all {
                rejected.reject(index, error);
            }
        }
        Ok(sent)
    }
}

#[async_trait]
impl Outlet for PostgresOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        self.write(records, update).await?.into_result()
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.connected = Some(self.connect().await?);
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        // A transaction still held was not committed: closing its
        // connection rolls it back.
        self.holding = None;
        self.connected = None;
        Ok(())
    }

    fn transactional(&mut self) -> Option<&mut dyn TransactionalOutlet> {
        Some(self)
    }
}

/// The transfer whose pushes write into one open transaction, committed
/// with the link's checkpoint.
struct Holding {
    tags: Vec<String>,
    index: u64,
    /// A push wrote into the transaction: it is open.
    wrote: bool,
    /// The connection it is open on (taken while a push or the commit
    /// uses it: a push cut off midway takes it along, losing it).
    conn: Option<Connected>,
    /// Bytes its pushes sent, counted once it commits.
    sent: u64,
    /// Why the transaction was lost, if it was.
    lost: Option<String>,
}

impl Holding {
    fn is(&self, update: &Update) -> bool {
        self.index == update.index() && self.tags == update.tags()
    }
}

#[async_trait]
impl TransactionalOutlet for PostgresOutlet {
    fn location(&self) -> Option<String> {
        Some(self.connector.location())
    }

    fn hold(&mut self, update: &Update) {
        // A transaction still open from an earlier transfer was neither
        // committed nor aborted (its transfer was cut short): dropping its
        // connection rolls it back.
        self.holding = Some(Holding {
            tags: update.tags().to_vec(),
            index: update.index(),
            wrote: false,
            conn: None,
            sent: 0,
            lost: None,
        });
    }

    async fn commit(
        &mut self,
        update: &Update,
        link: &str,
        checkpoint: &Checkpoint,
    ) -> Result<bool, BoxError> {
        let Some(mut holding) = self.holding.take_if(|h| h.is(update)) else {
            return Ok(false);
        };
        if holding.lost.is_some() {
            self.holding = Some(holding);
            let e = self.lost();
            self.holding = None;
            return Err(e.into());
        }
        if !holding.wrote {
            return Ok(false);
        }
        let Some(mut conn) = holding.conn.take() else {
            self.holding = Some(holding);
            let e = self.lose("its connection was closed".into());
            self.holding = None;
            return Err(e.into());
        };
        let bytes = checkpoint.to_bytes();
        let what = format!(
            "committing a transfer's rows into `{}` with link `{link}`'s checkpoint",
            self.table
        );
        let upsert = match conn.upsert.take() {
            Some(upsert) => upsert,
            None => match conn.client.prepare(checkpoints::UPSERT).await {
                Ok(upsert) => upsert,
                Err(e) => return Err(self.connector.error(what, e).into()),
            },
        };
        let written = conn.client.execute(&upsert, &[&link, &bytes]).await;
        conn.upsert = Some(upsert);
        if let Err(e) = written {
            return Err(self.connector.error(what, e).into());
        }
        if let Err(e) = conn.client.batch_execute("COMMIT").await {
            return Err(self.connector.error(what, e).into());
        }
        databay_core::bytes::add(holding.sent);
        // The connection goes on serving ordinary pushes if none has one.
        if self.connected.is_none() {
            self.connected = Some(conn);
        }
        Ok(true)
    }

    async fn abort(&mut self, update: &Update) {
        let Some(mut holding) = self.holding.take_if(|h| h.is(update)) else {
            return;
        };
        if let Some(conn) = holding.conn.take() {
            // Kept only if the server confirms the rollback.
            if conn.client.batch_execute("ROLLBACK").await.is_ok() && self.connected.is_none() {
                self.connected = Some(conn);
            }
        }
    }
}

/// `INSERT INTO t (...) VALUES (...), ... [ON CONFLICT ...]` for `rows` rows.
fn insert_sql(
    quoted_table: &str,
    on_conflict: Option<&OnConflict>,
    columns: &[Column],
    rows: usize,
) -> String {
    let mut sql = format!("INSERT INTO {quoted_table} (");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_identifier(&c.name));
    }
    sql.push_str(") VALUES ");
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for (i, c) in columns.iter().enumerate() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${n}");
            if let Some(cast) = c.ty.text_cast() {
                let _ = write!(sql, "::text::{cast}");
            }
        }
        sql.push(')');
    }
    if let Some(on_conflict) = on_conflict {
        let keys: Vec<String> = on_conflict
            .keys
            .iter()
            .map(|k| quote_identifier(k))
            .collect();
        let _ = write!(sql, " ON CONFLICT ({}) ", keys.join(", "));
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !on_conflict.keys.contains(&c.name))
            .map(|c| {
                let q = quote_identifier(&c.name);
                format!("{q} = EXCLUDED.{q}")
            })
            .collect();
        if on_conflict.action == ConflictAction::Nothing || updates.is_empty() {
            sql.push_str("DO NOTHING");
        } else {
            let _ = write!(sql, "DO UPDATE SET {}", updates.join(", "));
        }
    }
    sql
}
