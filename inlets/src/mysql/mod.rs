//! [`MysqlInlet`]: runs a query on a MySQL or MariaDB server on every
//! transfer and emits its rows as JSON objects, optionally advancing a
//! cursor (`WHERE id > ?`) once the rows were delivered.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::mysql::mysql_async::prelude::Queryable;
use databay_component::mysql::mysql_async::{Conn, Params, Row, Statement};
use databay_component::mysql::{Connector, MysqlError, row_to_json, to_value, value_size};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::Value;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{CursorOptions, MysqlInletOptions};
#[cfg(test)]
mod tests;

/// An incremental cursor: the query's `?`, starting at `start` and, once
/// a transfer is committed, the value of `column` in its last row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The result column whose last value becomes the next `?`.
    pub column: String,
    /// `?` of the first pull.
    pub start: Value,
}

/// Why a [`MysqlInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlInletError {
    /// Connecting or the query failed.
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The query does not fit the inlet: a parameter count other than the
    /// cursor's, a missing cursor column, a value with no JSON form.
    #[error("MySQL at {target}: query: {message}")]
    Query {
        /// `host:port/database`.
        target: String,
        /// What is wrong.
        message: String,
    },
}

/// Runs a query on every transfer; each row is one record, a JSON object
/// of column name to value (see the module documentation for the types).
///
/// With a [`Cursor`], the query takes one `?`: the cursor's start on the
/// first pull, then the cursor column's value in the last row of the last
/// committed transfer. A transfer that fails leaves the cursor where it
/// was, so its rows are read again. The cursor lives in memory: a
/// restarted daemon begins at `start` again.
pub struct MysqlInlet {
    connector: Connector,
    query: String,
    cursor: Option<Cursor>,
    position: Option<Value>,
    /// The position a pull reached, until its transfer is settled.
    pending: Vec<(Vec<String>, u64, Value)>,
    prepared: Option<(Conn, Statement)>,
}

impl std::fmt::Debug for MysqlInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlInlet")
            .field("connector", &self.connector)
            .field("query", &self.query)
            .field("cursor", &self.cursor)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl MysqlInlet {
    /// Runs `query` on every transfer.
    pub fn new(connector: Connector, query: impl Into<String>) -> Self {
        MysqlInlet {
            connector,
            query: query.into(),
            cursor: None,
            position: None,
            pending: Vec::new(),
            prepared: None,
        }
    }

    /// Binds the query's `?` to an incremental cursor.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.position = Some(cursor.start.clone());
        self.cursor = Some(cursor);
        self
    }

    /// The cursor's current value (what the next pull binds).
    pub fn position(&self) -> Option<&Value> {
        self.position.as_ref()
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.query.trim().is_empty() {
            return Err(OptionError::new("query", "must not be empty"));
        }
        if let Some(c) = &self.cursor {
            if c.column.is_empty() {
                return Err(OptionError::new("cursor.column", "must not be empty"));
            }
            if matches!(c.start, Value::Null | Value::Array(_) | Value::Object(_)) {
                return Err(OptionError::new(
                    "cursor.start",
                    "must be a number, string or boolean (the first value of `?`)",
                ));
            }
        }
        Ok(())
    }

    fn query_error(&self, message: impl Into<String>) -> MysqlInletError {
        MysqlInletError::Query {
            target: self.connector.target().to_owned(),
            message: message.into(),
        }
    }

    /// Connects and prepares the query, checking its parameters.
    async fn prepare(&mut self) -> Result<(), MysqlInletError> {
        if self.prepared.is_some() {
            return Ok(());
        }
        let mut conn = self.connector.connect().await?;
        let statement = conn
            .prep(self.query.as_str())
            .await
            .map_err(|e| self.connector.error("preparing the query", e))?;
        let want = u16::from(self.cursor.is_some());
        if statement.num_params() != want {
            let _ = conn.disconnect().await;
            return Err(self.query_error(if want == 1 {
                format!(
                    "with a cursor the query takes exactly one `?` (its value), not {}",
                    statement.num_params()
                )
            } else {
                format!(
                    "the query has {} `?` parameters but no `cursor` to bind",
                    statement.num_params()
                )
            }));
        }
        if let Some(c) = &self.cursor
            && !statement
                .columns()
                .iter()
                .any(|col| col.name_str() == c.column.as_str())
        {
            let names: Vec<String> = statement
                .columns()
                .iter()
                .map(|c| format!("`{}`", c.name_str()))
                .collect();
            let _ = conn.disconnect().await;
            return Err(self.query_error(format!(
                "cursor column `{}` is not in the result (its columns: {})",
                c.column,
                names.join(", ")
            )));
        }
        self.prepared = Some((conn, statement));
        Ok(())
    }

    async fn take(&mut self, update: &Update) -> Result<Pull, MysqlInletError> {
        self.prepare().await?;
        let params = match &self.position {
            Some(p) if self.cursor.is_some() => Params::Positional(vec![to_value(Some(p))]),
            _ => Params::Empty,
        };
        let Some((conn, statement)) = self.prepared.as_mut() else {
            return Ok(Pull::Nothing);
        };
        let rows: Vec<Row> = match conn.exec(&*statement, params).await {
            Ok(rows) => rows,
            Err(e) => {
                // The next pull starts on a fresh connection.
                self.prepared = None;
                return Err(self.connector.error("running the query", e).into());
            }
        };
        databay_core::bytes::add(
            rows.iter()
                .flat_map(|row| (0..row.len()).filter_map(|i| row.as_ref(i)))
                .map(value_size)
                .sum(),
        );
        if rows.is_empty() {
            return Ok(Pull::Nothing);
        }
        let mut records = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let object = row_to_json(row).map_err(|e| self.query_error(format!("row {i}: {e}")))?;
            records.push(Record::new(Value::Object(object)));
        }
        if let Some(c) = &self.cursor {
            let last = records
                .last()
                .and_then(|r| r.payload.get(&c.column))
                .cloned()
                .unwrap_or(Value::Null);
            if last.is_null() {
                return Err(self.query_error(format!(
                    "cursor column `{0}` is null in the last row, so the cursor cannot advance; \
                     keep such rows out of the query (`WHERE {0} IS NOT NULL`)",
                    c.column
                )));
            }
            self.pending
                .retain(|(tags, _, _)| tags.as_slice() != update.tags());
            self.pending
                .push((update.tags().to_vec(), update.index(), last));
        }
        Ok(Pull::Records(records))
    }

    fn settle(&mut self, update: &Update) -> Option<Value> {
        let i = self.pending.iter().position(|(tags, index, _)| {
            tags.as_slice() == update.tags() && *index == update.index()
        })?;
        Some(self.pending.remove(i).2)
    }
}

#[async_trait]
impl Inlet for MysqlInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(self.take(update).await?)
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        if let Some(position) = self.settle(update) {
            self.position = Some(position);
        }
        Ok(())
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        self.settle(update);
        Ok(())
    }

    /// With a cursor: `{"cursor": value}`, its committed value.
    fn snapshot(&self) -> Option<Value> {
        self.cursor.as_ref()?;
        Some(serde_json::json!({ "cursor": self.position }))
    }

    /// Resumes the cursor at a snapshot's value.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.cursor.is_none() {
            return Err("a mysql inlet without a cursor keeps no resume state".into());
        }
        let Some(value) = state.get("cursor").filter(|v| !v.is_null()) else {
            return Err(format!("resume state must be {{\"cursor\": value}}, not {state}").into());
        };
        self.position = Some(value.clone());
        self.pending.clear();
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.prepare().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some((conn, _)) = self.prepared.take() {
            let _ = conn.disconnect().await;
        }
        Ok(())
    }
}
