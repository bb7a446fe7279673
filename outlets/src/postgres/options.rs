//! The `postgres` outlet's TOML face.

use std::collections::BTreeMap;
use std::time::Duration;

use databay_component::postgres::ConnectionOptions;
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{Mapping, OnConflict, PostgresOutlet, SAMPLE};

/// `on_conflict.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictAction {
    /// `DO UPDATE SET` every inserted column that is not a key.
    Update,
    /// `DO NOTHING`: the existing row stays.
    Nothing,
}

/// `method`: how a push writes its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WriteMethod {
    /// Multi-row `INSERT`s of `batch_size` rows (upserts too).
    #[default]
    Insert,
    /// One `COPY ... FROM STDIN (FORMAT binary)` per push: PostgreSQL's
    /// bulk path, without upserts.
    Copy,
}

/// `on_conflict = { keys = [...], action = "update" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnConflictOptions {
    /// The columns of a unique index or constraint.
    pub keys: Vec<String>,
    /// `"update"` or `"nothing"`.
    pub action: ConflictAction,
}

/// Options of `type = "postgres"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOutletOptions {
    /// `postgresql://user:password@host:port/dbname`; instead of the separate options.
    pub url: Option<Secret<String>>,
    /// Server host (default `localhost`).
    pub host: Option<String>,
    /// Server port (default 5432).
    pub port: Option<u16>,
    /// User (default `postgres`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// Database (default: the user name).
    pub dbname: Option<String>,
    /// Only `"disable"` (no TLS in this build).
    pub sslmode: Option<String>,
    /// How long connecting may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub connect_timeout: Option<Duration>,
    /// The table, `name` or `schema.name`.
    pub table: String,
    /// Column -> JSON pointer into the payload.
    pub columns: Option<BTreeMap<String, String>>,
    /// A json/jsonb column that takes the whole payload (instead of `columns`).
    pub json_column: Option<String>,
    /// `"insert"` (multi-row INSERTs, the default) or `"copy"` (one
    /// binary COPY per push; no `on_conflict`).
    #[serde(default)]
    pub method: WriteMethod,
    /// Rows per INSERT statement (default 1000; `method = "insert"` only).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Upsert: `{ keys = ["id"], action = "update" | "nothing" }`
    /// (`method = "insert"` only).
    pub on_conflict: Option<OnConflictOptions>,
}

fn default_batch_size() -> usize {
    PostgresOutlet::DEFAULT_BATCH_SIZE
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "postgres",
        "Inserts records into a PostgreSQL table (multi-row INSERT or binary COPY, one transaction per push, optional upsert).",
        SAMPLE,
        |o: PostgresOutletOptions, _: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                host: o.host,
                port: o.port,
                user: o.user,
                password: o.password,
                dbname: o.dbname,
                sslmode: o.sslmode,
                connect_timeout: o.connect_timeout,
            }
            .connector()?;
            let mapping = match (o.columns, o.json_column) {
                (Some(columns), None) => Mapping::Columns(columns.into_iter().collect()),
                (None, Some(column)) => Mapping::JsonColumn(column),
                (Some(_), Some(_)) => {
                    return Err(OptionError::new(
                        "json_column",
                        "give either `columns` or `json_column`, not both",
                    )
                    .into());
                }
                (None, None) => {
                    return Err(OptionError::new(
                        "columns",
                        "give `columns` (column = \"/pointer\") or `json_column`",
                    )
                    .into());
                }
            };
            let mut outlet = PostgresOutlet::new(connector, o.table, mapping)
                .method(o.method)
                .batch_size(o.batch_size);
            if let Some(c) = o.on_conflict {
                outlet = outlet.on_conflict(OnConflict {
                    keys: c.keys,
                    action: c.action,
                });
            }
            outlet.check()?;
            Ok(outlet)
        },
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Outlet, "postgres", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("postgres"), options).err()
        };
        let table = "table = \"t\"\n";
        for (options, want) in [
            (
                "json_column = \"d\"\ncolumns = { a = \"/a\" }",
                "option `json_column`: give either",
            ),
            ("", "option `columns`: give `columns`"),
            (
                "json_column = \"d\"\nsslmode = \"require\"",
                "option `sslmode`: `require` is not supported",
            ),
            (
                "json_column = \"d\"\nurl = \"postgresql://u:s3cret@h/db?sslmode=require\"",
                "option `url`: asks for TLS",
            ),
            (
                "json_column = \"d\"\nbatch_size = 0",
                "option `batch_size`: must be at least 1",
            ),
            (
                "columns = { a = \"/a\" }\non_conflict = { keys = [\"id\"], action = \"update\" }",
                "option `on_conflict`: key `id` is not one of the inserted columns",
            ),
            (
                "columns = { a = \"/a\" }\nmethod = \"copy\"\non_conflict = { keys = [\"a\"], action = \"nothing\" }",
                "option `method`: COPY cannot upsert",
            ),
            (
                "json_column = \"d\"\nmethod = \"bulk\"",
                "unknown variant `bulk`, expected `insert` or `copy`",
            ),
        ] {
            let e =
                build(&format!("{table}{options}")).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("table = \"t\"\njson_column = \"d\""), None);
    }
}
