//! The `postgres` inlet's TOML face.

use std::time::Duration;

use databay_component::postgres::ConnectionOptions;
use databay_component::{BuildContext, Registry, Secret, duration};
use serde::Deserialize;
use serde_json::Value;

use super::{Cursor, PostgresInlet, SAMPLE};

/// `cursor = { column = "id", start = 0 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorOptions {
    /// The result column whose value in the last row becomes the next `$1`.
    pub column: String,
    /// `$1` of the first pull (a number, string or boolean fitting `$1`'s type).
    pub start: Value,
}

/// Options of `type = "postgres"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresInletOptions {
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
    /// The query run on every transfer; `$1` is the cursor's value.
    pub query: String,
    /// An incremental cursor bound as `$1`.
    pub cursor: Option<CursorOptions>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "postgres",
        "Runs a PostgreSQL query on every transfer, rows as JSON objects, with an optional incremental cursor.",
        SAMPLE,
        |o: PostgresInletOptions, _: &BuildContext| {
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
            let mut inlet = PostgresInlet::new(connector, o.query);
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
        "postgres",
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
        assert_registered_documented(super::register, Kind::Inlet, "postgres", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("postgres"), options).err()
        };
        for (options, want) in [
            ("query = \"SELECT 1 WHERE 1 > $1\"", "option `cursor`"),
            (
                "query = \"SELECT 1\"\ncursor = { column = \"id\", start = 0 }",
                "option `query`: must use `$1`",
            ),
            (
                "query = \"SELECT 1\"\nsslmode = \"verify-full\"",
                "option `sslmode`",
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
