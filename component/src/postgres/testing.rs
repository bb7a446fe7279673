//! Helpers for tests of PostgreSQL components against a real server: the
//! server's URL, a client that fails the test naming PostgreSQL and how to
//! start it, and tables of their own that are dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::TcpProxy;

/// The command that starts the local PostgreSQL server (Debian's cluster).
pub const START_COMMAND: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/// The environment variable naming another server for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_POSTGRES_URL";

/// The test server: `$DATABAY_TEST_POSTGRES_URL`, or the local one
/// (`postgresql://postgres@127.0.0.1:5432/test`, trust authentication).
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
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

/// A client of the test server. Panics, naming PostgreSQL and the command
/// that starts it, when the server cannot be reached.
pub async fn client() -> Client {
    match connector().connect().await {
        Ok(client) => client,
        Err(e) => panic!(
            "PostgreSQL is needed for this test and is not reachable: {e}\n\
             start it with `{START_COMMAND}` (or `bash .ci/services`), \
             or point {URL_VAR} at a server"
        ),
    }
}

/// A table name no other test uses: `databay_test_<tag>_<unique>`.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "databay_test_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A table created for one test and dropped when this guard is dropped,
/// also when the test fails.
pub struct TestTable {
    /// The table's (unquoted) name.
    pub name: String,
}

impl TestTable {
    /// Creates `databay_test_<tag>_...` with `columns` (the SQL between
    /// the parentheses of `CREATE TABLE`).
    pub async fn create(client: &Client, tag: &str, columns: &str) -> TestTable {
        let name = unique_table(tag);
        let sql = format!("CREATE TABLE \"{name}\" ({columns})");
        if let Err(e) = client.batch_execute(&sql).await {
            panic!("{sql}: {}", super::describe(&e));
        }
        TestTable { name }
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let sql = format!("DROP TABLE IF EXISTS \"{}\"", self.name);
        // Drop runs inside the test's runtime: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = connector().connect().await {
                    let _ = client.batch_execute(&sql).await;
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
