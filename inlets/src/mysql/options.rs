//! The `mysql` inlet's TOML face.

use std::time::Duration;

use databay_component::mysql::ConnectionOptions;
use databay_component::{BuildContext, Registry, Secret, duration};
use serde::Deserialize;
use serde_json::Value;

use super::{Cursor, MysqlInlet, SAMPLE};

/// `cursor = { column = "id", start = 0 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorOptions {
    /// The result column whose value in the last row becomes the next `?`.
    pub column: String,
    /// `?` of the first pull (a number, string or boolean).
    pub start: Value,
}

/// Options of `type = "mysql"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlInletOptions {
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
    /// The query run on every transfer; `?` is the cursor's value.
    pub query: String,
    /// An incremental cursor bound as `?`.
    pub cursor: Option<CursorOptions>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "mysql",
        "Runs a MySQL/MariaDB query on every transfer, rows as JSON objects, with an optional incremental cursor.",
        SAMPLE,
        |o: MysqlInletOptions, _: &BuildContext| {
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
            let mut inlet = MysqlInlet::new(connector, o.query);
            if let Some(c) = o.cursor {
                inlet = inlet.cursor(Cursor {
                    column: c.column,
                    start: c.start,
                });
            }
            inlet.check()?;
            Ok(inlet)
        },
    );
    registry.resume_state(
        "mysql",
        "with a cursor, `{\"cursor\": value}`: the cursor column's value in the last committed row",
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "mysql", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("mysql"), options).err()
        };
        for (options, want) in [
            ("query = \"\"", "option `query`"),
            (
                "query = \"SELECT 1\"\ncursor = { column = \"id\", start = [1] }",
                "option `cursor.start`",
            ),
            (
                "query = \"SELECT 1\"\nurl = \"postgresql://h/db\"",
                "option `url`",
            ),
            (
                "query = \"SELECT 1\"\nurl = \"mysql://u:pw@h/db\"\nhost = \"h\"",
                "option `host`",
            ),
            (
                "query = \"SELECT 1\"\nconnect_timeout = \"0s\"",
                "option `connect_timeout`",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
        }
        assert_eq!(build("query = \"SELECT 1\""), None);
    }
}
