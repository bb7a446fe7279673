//! [`MysqlOutlet`]: writes records as rows of a MySQL or MariaDB table with
//! multi-row `INSERT`s, one transaction per push, optionally upserting
//! (`ON DUPLICATE KEY UPDATE`); a row the server refuses is rejected alone.
//!
#![doc = include_str!("README.md")]

use std::fmt;

use databay_component::OptionError;
use databay_component::mysql::mysql_async::prelude::Queryable;
use databay_component::mysql::mysql_async::{Conn, Params, Transaction, TxOpts, Value as My};
use databay_component::mysql::{
    Connector, MysqlError, quote_identifier, quote_table, to_value, value_size,
};
use databay_core::{BoxError, Outlet, Record, Rejected, Update, async_trait};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{ConflictAction, MysqlOutletOptions, OnConflictOptions};
#[cfg(test)]
mod tests;

/// The most placeholders one statement may carry (the protocol's limit).
const MAX_PARAMS: usize = 65_535;

/// Server errors that are one row's fault: the statement is retried row by
/// row to find it, and that row alone is rejected. Bad NULL (1048), a
/// duplicate key (1062), a wrong value (1366, 1292, 1265), out of range
/// (1264), too long (1406), a failed CHECK (4025 MariaDB, 3819 MySQL), a
/// foreign key (1452), a generated column (3105, 1906).
const ROW_ERRORS: [u16; 13] = [
    1048, 1062, 1366, 1292, 1265, 1264, 1406, 4025, 3819, 1452, 1451, 3105, 1906,
];

/// Where each record's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mapping {
    /// `(column, JSON pointer)` pairs; a missing field is NULL.
    Columns(Vec<(String, String)>),
    /// The whole payload, as JSON text, into one column (`JSON` or text).
    JsonColumn(String),
}

/// An upsert: what happens when a row hits an existing unique key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnConflict {
    /// The key columns: left as they are on update.
    pub keys: Vec<String>,
    /// Update the other inserted columns, or keep the existing row.
    pub action: ConflictAction,
}

/// Why a [`MysqlOutlet`] could not start or push. Records refused one by
/// one are not an error of the push: they come back in a [`Rejected`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlOutletError {
    /// Connecting or a statement failed; nothing of the push was written.
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
}

/// Writes records into a MySQL/MariaDB table.
///
/// Each push runs in one transaction of multi-row `INSERT`s (`batch_size`
/// rows each, fewer when the columns would pass 65 535 placeholders), then
/// `COMMIT`: the rows of a push that returns are durable, a push that fails
/// left nothing. When the server refuses a statement for one row's sake (a
/// duplicate key, a NULL in a NOT NULL column, a value that does not fit),
/// the statement's rows are written one by one in the same transaction,
/// and the refused ones are returned in a [`Rejected`], each naming its
/// index and the server's error; the rest are written.
pub struct MysqlOutlet {
    connector: Connector,
    table: String,
    mapping: Mapping,
    batch_size: usize,
    on_conflict: Option<OnConflict>,
    conn: Option<Conn>,
}

impl fmt::Debug for MysqlOutlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlOutlet")
            .field("connector", &self.connector)
            .field("table", &self.table)
            .field("mapping", &self.mapping)
            .field("batch_size", &self.batch_size)
            .field("on_conflict", &self.on_conflict)
            .finish_non_exhaustive()
    }
}

/// One record the server refused.
#[derive(Debug, thiserror::Error)]
#[error("record {index} for `{table}`: {detail}")]
struct RowError {
    index: usize,
    table: String,
    detail: String,
}

impl MysqlOutlet {
    /// The default number of rows per `INSERT`.
    pub const DEFAULT_BATCH_SIZE: usize = 1000;

    /// Inserts into `table` (`name` or `database.name`).
    pub fn new(connector: Connector, table: impl Into<String>, mapping: Mapping) -> Self {
        MysqlOutlet {
            connector,
            table: table.into(),
            mapping,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            on_conflict: None,
            conn: None,
        }
    }

    /// Rows per `INSERT` (default 1000).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows;
        self
    }

    /// Upserts instead of failing on an existing key.
    pub fn on_conflict(mut self, on_conflict: OnConflict) -> Self {
        self.on_conflict = Some(on_conflict);
        self
    }

    fn columns(&self) -> Vec<&str> {
        match &self.mapping {
            Mapping::Columns(c) => c.iter().map(|(name, _)| name.as_str()).collect(),
            Mapping::JsonColumn(name) => vec![name.as_str()],
        }
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.table.is_empty() || self.table.split('.').any(str::is_empty) {
            return Err(OptionError::new(
                "table",
                format!(
                    "`{}` is not a table name (`orders` or `shop.orders`)",
                    self.table
                ),
            ));
        }
        match &self.mapping {
            Mapping::Columns(columns) => {
                if columns.is_empty() {
                    return Err(OptionError::new("columns", "must name at least one column"));
                }
                for (name, pointer) in columns {
                    if !(pointer.is_empty() || pointer.starts_with('/')) {
                        return Err(OptionError::new(
                            "columns",
                            format!(
                                "`{name} = \"{pointer}\"`: not a JSON pointer (it must start with `/`, or be \"\" for the whole payload)"
                            ),
                        ));
                    }
                }
            }
            Mapping::JsonColumn(name) if name.is_empty() => {
                return Err(OptionError::new("json_column", "must not be empty"));
            }
            Mapping::JsonColumn(_) => {}
        }
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if let Some(c) = &self.on_conflict {
            let columns = self.columns();
            if c.keys.is_empty() {
                return Err(OptionError::new(
                    "on_conflict",
                    "`keys` must name the columns of a unique key",
                ));
            }
            if let Some(key) = c.keys.iter().find(|k| !columns.contains(&k.as_str())) {
                return Err(OptionError::new(
                    "on_conflict",
                    format!("key `{key}` is not one of the inserted columns"),
                ));
            }
        }
        Ok(())
    }

    /// `INSERT INTO t (a, b) VALUES (?, ?), ... [ON DUPLICATE KEY UPDATE ...]`.
    fn statement(&self, rows: usize) -> String {
        let columns = self.columns();
        let names: Vec<String> = columns.iter().map(|c| quote_identifier(c)).collect();
        let row = format!("({})", vec!["?"; columns.len()].join(", "));
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quote_table(&self.table),
            names.join(", "),
            vec![row.as_str(); rows].join(", ")
        );
        if let Some(c) = &self.on_conflict {
            let mut sets: Vec<String> = Vec::new();
            if c.action == ConflictAction::Update {
                sets = columns
                    .iter()
                    .filter(|name| !c.keys.iter().any(|k| k == *name))
                    .map(|name| {
                        let q = quote_identifier(name);
                        format!("{q} = VALUES({q})")
                    })
                    .collect();
            }
            if sets.is_empty() {
                // Keep the existing row: a no-op assignment, not INSERT
                // IGNORE, which would also hide every other error.
                let q = quote_identifier(&c.keys[0]);
                sets.push(format!("{q} = {q}"));
            }
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&sets.join(", "));
        }
        sql
    }

    /// One record's parameters.
    fn params(&self, record: &Record) -> Vec<My> {
        match &self.mapping {
            Mapping::Columns(columns) => columns
                .iter()
                .map(|(_, pointer)| to_value(record.payload.pointer(pointer)))
                .collect(),
            Mapping::JsonColumn(_) => vec![My::Bytes(record.payload.to_string().into_bytes())],
        }
    }

    async fn connect(&mut self) -> Result<&mut Conn, MysqlError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connector.connect().await?,
        };
        Ok(self.conn.insert(conn))
    }

    async fn write(&mut self, records: &[Record]) -> Result<Rejected, MysqlError> {
        let per_statement = self
            .batch_size
            .min(MAX_PARAMS / self.columns().len().max(1))
            .max(1);
        // Full statements share one text; the last may be shorter.
        let full = self.statement(per_statement.min(records.len()));
        let statements: Vec<(usize, String)> = records
            .chunks(per_statement)
            .map(|chunk| {
                let n = chunk.len();
                let sql = if n == per_statement.min(records.len()) {
                    full.clone()
                } else {
                    self.statement(n)
                };
                (n, sql)
            })
            .collect();
        let one_row = self.statement(1);
        let params: Vec<Vec<My>> = records.iter().map(|r| self.params(r)).collect();
        let what = format!("inserting into `{}`", self.table);
        let table = self.table.clone();
        let connector = self.connector.clone();
        let conn = self.connect().await?;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| connector.error("starting a transaction", e))?;
        let mut rejected = Rejected::new();
        // What the rows carry, counted once committed, without the refused.
        let mut sent: u64 = params.iter().flatten().map(value_size).sum();
        let mut start = 0;
        for (n, sql) in statements {
            let batch: Vec<My> = params[start..start + n].iter().flatten().cloned().collect();
            match tx.exec_drop(sql.as_str(), Params::Positional(batch)).await {
                Ok(()) => {}
                Err(databay_component::mysql::mysql_async::Error::Server(e))
                    if ROW_ERRORS.contains(&e.code) =>
                {
                    // A failed statement is undone alone; the transaction
                    // goes on. Find the rows at fault one by one.
                    for (index, values) in params.iter().enumerate().skip(start).take(n) {
                        if let Err(e) =
                            row(&mut tx, &one_row, values.clone(), &connector, &what).await?
                        {
                            sent -= values.iter().map(value_size).sum::<u64>();
                            rejected.reject(
                                index,
                                RowError {
                                    index,
                                    table: table.clone(),
                                    detail: e,
                                },
                            );
                        }
                    }
                }
                Err(e) => return Err(connector.error(what, e)),
            }
            start += n;
        }
        tx.commit()
            .await
            .map_err(|e| connector.error(format!("committing the rows into `{table}`"), e))?;
        databay_core::bytes::add(sent);
        Ok(rejected)
    }
}

/// Inserts one row: `Ok(Err(detail))` when the server refused it for the
/// row's sake, `Err` when the statement failed otherwise.
async fn row(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: Vec<My>,
    connector: &Connector,
    what: &str,
) -> Result<Result<(), String>, MysqlError> {
    match tx.exec_drop(sql, Params::Positional(params)).await {
        Ok(()) => Ok(Ok(())),
        Err(databay_component::mysql::mysql_async::Error::Server(e))
            if ROW_ERRORS.contains(&e.code) =>
        {
            Ok(Err(
                connector.scrub(&format!("{} (code {})", e.message, e.code))
            ))
        }
        Err(e) => Err(connector.error(what, e)),
    }
}

#[async_trait]
impl Outlet for MysqlOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        match self.write(records).await {
            Ok(rejected) => rejected.into_result(),
            Err(e) => {
                // The next push starts on a fresh connection: this one may
                // be gone or mid-transaction.
                self.conn = None;
                Err(MysqlOutletError::from(e).into())
            }
        }
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        let table = quote_table(&self.table);
        let columns = self
            .columns()
            .iter()
            .map(|c| quote_identifier(c))
            .collect::<Vec<_>>()
            .join(", ");
        let connector = self.connector.clone();
        let conn = self.connect().await?;
        // Names the table or a column that is not there before any push.
        let probe = format!("SELECT {columns} FROM {table} LIMIT 0");
        if let Err(e) = conn.query_drop(&probe).await {
            self.conn = None;
            return Err(MysqlOutletError::from(
                connector.error(format!("checking table `{}`", self.table), e),
            )
            .into());
        }
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
        Ok(())
    }
}
