//! Helpers for tests of MySQL/MariaDB components against a real server:
//! the server's URL, a connection that fails the test naming MariaDB and
//! how to start it, and tables of their own that are dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::TcpProxy;

/// How the local test server is started.
pub const START_COMMAND: &str =
    "bash .ci/services (it starts /usr/sbin/mariadbd; scripts/setup installs it)";

/// The environment variable naming another server for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_MYSQL_URL";

/// The test server: `$DATABAY_TEST_MYSQL_URL`, or the local MariaDB
/// (`mysql://root@127.0.0.1:3306/test`, no password).
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A connector to the test server.
pub fn connector() -> Connector {
    match (ConnectionOptions {
        url: Some(Secret::new(url())),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => c,
        Err(e) => panic!("{URL_VAR}: {e}"),
    }
}

/// A connection to the test server. Panics, naming MariaDB and how to
/// start it, when the server cannot be reached.
pub async fn conn() -> Conn {
    match connector().connect().await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "MariaDB (or MySQL) is needed for this test and is not reachable: {e}\n\
             start it with {START_COMMAND}, or point {URL_VAR} at a server"
        ),
    }
}

/// A table name no other test uses: `databay_test_<tag>_<unique>` (at
/// most 64 characters, MySQL's limit).
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = format!(
        "dbt_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    name.truncate(64);
    name
}

/// A table created for one test and dropped when this guard is dropped,
/// also when the test fails.
pub struct TestTable {
    /// The table's (unquoted) name.
    pub name: String,
}

impl TestTable {
    /// Creates `dbt_<tag>_...` with `columns` (the SQL between the
    /// parentheses of `CREATE TABLE`).
    pub async fn create(conn: &mut Conn, tag: &str, columns: &str) -> TestTable {
        let name = unique_table(tag);
        let sql = format!("CREATE TABLE `{name}` ({columns})");
        if let Err(e) = conn.query_drop(&sql).await {
            panic!("{sql}: {e}");
        }
        TestTable { name }
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let sql = format!("DROP TABLE IF EXISTS `{}`", self.name);
        // Drop runs inside the test's runtime: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = connector().connect().await {
                    let _ = conn.query_drop(&sql).await;
                    let _ = conn.disconnect().await;
                }
            });
        })
        .join();
    }
}

/// A connector to the test server through a [`TcpProxy`] of its own, to
/// take the server away from one test and bring it back.
pub async fn proxied() -> (TcpProxy, Connector) {
    let (proxy, url) = TcpProxy::for_url(&url())
        .await
        .unwrap_or_else(|e| panic!("a proxy in front of {URL_VAR}: {e}"));
    match (ConnectionOptions {
        url: Some(Secret::new(url)),
        connect_timeout: Some(std::time::Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{URL_VAR} through a proxy: {e}"),
    }
}
