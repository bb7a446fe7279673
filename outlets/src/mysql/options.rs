//! The `mysql` outlet's TOML face.

use std::collections::BTreeMap;
use std::time::Duration;

use databay_component::mysql::ConnectionOptions;
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{Mapping, MysqlOutlet, OnConflict, SAMPLE};

/// `on_conflict.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictAction {
    /// Set every inserted column that is not a key (`ON DUPLICATE KEY UPDATE`).
    Update,
    /// Keep the existing row.
    Nothing,
}

/// `on_conflict = { keys = [...], action = "update" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnConflictOptions {
    /// The columns of the unique key (left as they are on update).
    pub keys: Vec<String>,
    /// `"update"` or `"nothing"`.
    pub action: ConflictAction,
}

/// Options of `type = "mysql"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlOutletOptions {
    /// `mysql://user:password@host:port/database`; instead of the separate options.
    pub url: Option<Secret<String>>,
    /// Server host (default `localhost`).
    pub host: Option<String>,
    /// Server port (default 3306).
    pub port: Option<u16>,
    /// User (default `root`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// The database.
    pub database: Option<String>,
    /// How long connecting may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub connect_timeout: Option<Duration>,
    /// The table, `name` or `database.name`.
    pub table: String,
    /// Column -> JSON pointer into the payload.
    pub columns: Option<BTreeMap<String, String>>,
    /// A JSON (or text) column that takes the whole payload (instead of `columns`).
    pub json_column: Option<String>,
    /// Rows per INSERT statement (default 1000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Upsert: `{ keys = ["id"], action = "update" | "nothing" }`.
    pub on_conflict: Option<OnConflictOptions>,
}

fn default_batch_size() -> usize {
    MysqlOutlet::DEFAULT_BATCH_SIZE
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "mysql",
        "Inserts records into a MySQL/MariaDB table (multi-row INSERT, one transaction per push, optional upsert).",
        SAMPLE,
        |o: MysqlOutletOptions, _: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                host: o.host,
                port: o.port,
                user: o.user,
                password: o.password,
                database: o.database,
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
            let mut outlet = MysqlOutlet::new(connector, o.table, mapping).batch_size(o.batch_size);
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
        assert_registered_documented(super::register, Kind::Outlet, "mysql", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("mysql"), options).err()
        };
        let table = "table = \"t\"\n";
        for (options, want) in [
            (
                "json_column = \"d\"\ncolumns = { a = \"/a\" }",
                "option `json_column`: give either",
            ),
            ("", "option `columns`: give `columns`"),
            ("columns = { a = \"a\" }", "option `columns`: `a = \"a\"`"),
            (
                "json_column = \"d\"\nurl = \"mysql://u:s3cret@h:port/db\"",
                "option `url`",
            ),
            (
                "json_column = \"d\"\nbatch_size = 0",
                "option `batch_size`: must be at least 1",
            ),
            (
                "columns = { a = \"/a\" }\non_conflict = { keys = [\"id\"], action = \"update\" }",
                "option `on_conflict`: key `id` is not one of the inserted columns",
            ),
        ] {
            let e =
                build(&format!("{table}{options}")).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("table = \"t\"\njson_column = \"d\""), None);
        assert!(
            build("table = \"a..b\"\njson_column = \"d\"")
                .is_some_and(|e| e.starts_with("option `table`"))
        );
    }
}
