//! [`PostgresInlet`]: runs a query on every transfer and emits its rows as
//! JSON objects, optionally advancing a cursor (`WHERE id > $1`) so each
//! row is read once.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::postgres::{ColumnType, Connector, PgError, column_to_json, to_param};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::{Map, Value};
use tokio_postgres::{Client, Statement};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{CursorOptions, PostgresInletOptions};
#[cfg(test)]
mod tests;

/// An incremental cursor: the query's `$1`, starting at `start` and
/// advanced after each pull to the value of `column` in the last row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The result column whose last value becomes the next `$1`.
    pub column: String,
    /// `$1` of the first pull.
    pub start: Value,
}

/// Why a [`PostgresInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresInletError {
    /// Connecting or the query failed.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// The options are inconsistent (also checked by the factory).
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The query does not fit the inlet: a result column of an unsupported
    /// type, a missing cursor column, a parameter other than `$1`.
    #[error("PostgreSQL at {target}: query: {message}")]
    Query {
        /// `host:port/dbname`.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// The cursor column is null in the last row, so the cursor cannot
    /// advance; nothing of this pull was delivered.
    #[error(
        "PostgreSQL at {target}: cursor column `{column}` is null in the last row, so the cursor \
         cannot advance; keep such rows out of the query (`WHERE {column} IS NOT NULL`)"
    )]
    NullCursor {
        /// `host:port/dbname`.
        target: String,
        /// The cursor column.
        column: String,
    },
}

/// The prepared query on an open connection.
struct Prepared {
    client: Client,
    statement: Statement,
    columns: Vec<(String, ColumnType)>,
    /// The cursor column's index in a row, and `$1`'s type.
    cursor: Option<(usize, ColumnType)>,
}

/// Runs a query on every transfer; each row is one record, a JSON object
/// of column name to value (see the module documentation for the types).
///
/// With a [`Cursor`], the query takes `$1`: the cursor's start on the
/// first pull, then the cursor column's value in the last row delivered.
/// The cursor's value as of the last commit is the inlet's resume state
/// ([`Inlet::snapshot`]); a rolled-back transfer goes back to it, so its
/// rows are read again.
pub struct PostgresInlet {
    connector: Connector,
    query: String,
    cursor: Option<Cursor>,
    position: Option<Value>,
    /// `position` as of the last commit.
    committed: Option<Value>,
    prepared: Option<Prepared>,
}

impl std::fmt::Debug for PostgresInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresInlet")
            .field("connector", &self.connector)
            .field("query", &self.query)
            .field("cursor", &self.cursor)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// Whether `query` mentions `$1` (not `$10`).
fn uses_param_1(query: &str) -> bool {
    query
        .match_indices("$1")
        .any(|(i, _)| !query[i + 2..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `query` with every `$1` sent as text and cast to `cast` by the server,
/// for the types whose parameters go as text (`numeric`, `uuid`).
fn cast_param_1(query: &str, cast: &str) -> String {
    let mut out = String::with_capacity(query.len() + 16);
    let mut rest = query;
    while let Some(i) = rest.find("$1") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str("$1");
        } else {
            out.push_str(&format!("($1::text::{cast})"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

impl PostgresInlet {
    /// Runs `query` on the server `connector` reaches.
    pub fn new(connector: Connector, query: impl Into<String>) -> Self {
        PostgresInlet {
            connector,
            query: query.into(),
            cursor: None,
            position: None,
            committed: None,
            prepared: None,
        }
    }

    /// Binds `$1` to an incremental cursor.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.position = Some(cursor.start.clone());
        self.committed = self.position.clone();
        self.cursor = Some(cursor);
        self
    }

    /// The cursor's current value (`$1` of the next pull).
    pub fn position(&self) -> Option<&Value> {
        self.position.as_ref()
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.query.trim().is_empty() {
            return Err(OptionError::new("query", "must not be empty"));
        }
        match (&self.cursor, uses_param_1(&self.query)) {
            (Some(_), false) => Err(OptionError::new(
                "query",
                "must use `$1` (the cursor's value), e.g. `WHERE id > $1`",
            )),
            (None, true) => Err(OptionError::new(
                "cursor",
                "the query uses `$1`, so a cursor must give its value: cursor = { column = \"id\", start = 0 }",
            )),
            (Some(c), true) if c.column.is_empty() => {
                Err(OptionError::new("cursor", "`column` must not be empty"))
            }
            _ => Ok(()),
        }
    }

    fn query_error(&self, message: String) -> PostgresInletError {
        PostgresInletError::Query {
            target: self.connector.target().to_owned(),
            message,
        }
    }

    async fn prepare(&self) -> Result<Prepared, PostgresInletError> {
        let client = self.connector.connect().await?;
        let prepare = |sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|e| self.connector.error("preparing the query", e))
            }
        };
        let mut statement = prepare(self.query.clone()).await?;
        let mut param = None;
        if let Some(cursor) = &self.cursor {
            let [ty] = statement.params() else {
                return Err(self.query_error(format!(
                    "takes {} parameters; only `$1` (the cursor) is bound",
                    statement.params().len()
                )));
            };
            let Some(ty) = ColumnType::of(ty) else {
                return Err(self.query_error(format!(
                    "`$1` is of type `{ty}`, which a cursor cannot hold (supported: {})",
                    ColumnType::SUPPORTED
                )));
            };
            if let Some(cast) = ty.text_cast() {
                statement = prepare(cast_param_1(&self.query, cast)).await?;
            }
            to_param(Some(&cursor.start), ty).map_err(|e| {
                OptionError::new("cursor", format!("`start` does not fit `$1`: {e}"))
            })?;
            param = Some(ty);
        } else if !statement.params().is_empty() {
            return Err(self.query_error("takes parameters, but no cursor is set".into()));
        }
        let mut columns = Vec::with_capacity(statement.columns().len());
        for column in statement.columns() {
            let Some(ty) = ColumnType::of(column.type_()) else {
                return Err(self.query_error(format!(
                    "column `{}` is of type `{}`, which is not supported; cast it in the query \
                     (`{}::text`, `to_jsonb({})`); supported: {}",
                    column.name(),
                    column.type_(),
                    column.name(),
                    column.name(),
                    ColumnType::SUPPORTED
                )));
            };
            columns.push((column.name().to_owned(), ty));
        }
        let cursor = match (&self.cursor, param) {
            (Some(cursor), Some(param)) => {
                let Some(index) = columns.iter().position(|(name, _)| *name == cursor.column)
                else {
                    return Err(self.query_error(format!(
                        "the cursor column `{}` is not among the result columns ({})",
                        cursor.column,
                        columns
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                Some((index, param))
            }
            _ => None,
        };
        Ok(Prepared {
            client,
            statement,
            columns,
            cursor,
        })
    }

    async fn read(&mut self) -> Result<Pull, PostgresInletError> {
        if self.prepared.as_ref().is_none_or(|p| p.client.is_closed()) {
            self.prepared = None;
            self.prepared = Some(self.prepare().await?);
        }
        let Some(prepared) = self.prepared.as_ref() else {
            return Ok(Pull::Nothing);
        };
        let param = match (&prepared.cursor, &self.position) {
            (Some((_, ty)), Some(position)) => {
                Some(to_param(Some(position), *ty).map_err(|e| {
                    OptionError::new(
                        "cursor",
                        format!("the value {position} does not fit `$1`: {e}"),
                    )
                })?)
            }
            _ => None,
        };
        let rows = match &param {
            Some(p) => prepared.client.query(&prepared.statement, &[p]).await,
            None => prepared.client.query(&prepared.statement, &[]).await,
        }
        .map_err(|e| self.connector.error("running the query", e))?;
        // The rows as the server sent them (DataRow bodies).
        databay_core::bytes::add(rows.iter().map(|r| r.raw_size_bytes() as u64).sum());
        let mut records = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let mut object = Map::with_capacity(prepared.columns.len());
            for (i, (name, ty)) in prepared.columns.iter().enumerate() {
                let value = column_to_json(row, i, *ty).map_err(|e| {
                    self.connector
                        .error(format!("reading column `{name}` of row {n}"), e)
                })?;
                object.insert(name.clone(), value);
            }
            records.push(Record::new(Value::Object(object)));
        }
        if let (Some((index, _)), Some(cursor), Some(last)) =
            (prepared.cursor, &self.cursor, records.last())
        {
            let name = &prepared.columns[index].0;
            match last.payload.get(name) {
                Some(value) if !value.is_null() => self.position = Some(value.clone()),
                _ => {
                    return Err(PostgresInletError::NullCursor {
                        target: self.connector.target().to_owned(),
                        column: cursor.column.clone(),
                    });
                }
            }
        }
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }
}

#[async_trait]
impl Inlet for PostgresInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        match self.read().await {
            Ok(pull) => Ok(pull),
            Err(e) => {
                // The next pull starts on a fresh connection: a terminated
                // backend first shows as a database error.
                if matches!(e, PostgresInletError::Pg(_)) {
                    self.prepared = None;
                }
                Err(e.into())
            }
        }
    }

    /// The rows of the pull were delivered: the cursor's value is now
    /// committed.
    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.committed = self.position.clone();
        Ok(())
    }

    /// The rows were not delivered: the cursor goes back to its committed
    /// value, and the next pull reads them again.
    async fn rollback(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.position = self.committed.clone();
        Ok(())
    }

    /// With a cursor: `{"cursor": value}`, its committed value.
    fn snapshot(&self) -> Option<Value> {
        self.cursor.as_ref()?;
        Some(serde_json::json!({ "cursor": self.committed }))
    }

    /// Resumes the cursor at a snapshot's value.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.cursor.is_none() {
            return Err("a postgres inlet without a cursor keeps no resume state".into());
        }
        let Some(value) = state.get("cursor").filter(|v| !v.is_null()) else {
            return Err(format!("resume state must be {{\"cursor\": value}}, not {state}").into());
        };
        self.position = Some(value.clone());
        self.committed = self.position.clone();
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.prepared = Some(self.prepare().await?);
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.prepared = None;
        Ok(())
    }
}
