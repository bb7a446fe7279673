//! Helpers for tests of MongoDB components against a real server: the
//! server's URI, a connector whose failure names MongoDB and how to start
//! it, and databases of their own that are dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::{Client, Database};

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::TcpProxy;

/// How the local test server is started: SecantusDB, a MongoDB
/// wire-protocol server that `scripts/setup` installs in a venv.
pub const START_COMMAND: &str = "bash .ci/services (it starts `secantusd-py --host 127.0.0.1 \
     --port 27017 --storage-path :memory: --standalone` from the venv scripts/setup makes)";

/// The environment variable naming another server for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_MONGODB_URL";

/// The test server: `$DATABAY_TEST_MONGODB_URL`, or the local one
/// (`mongodb://127.0.0.1:27017`, no authentication).
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
}

/// A connector to `database` of the test server.
pub fn connector(database: &str) -> Connector {
    match (ConnectionOptions {
        uri: Secret::new(url()),
        database: Some(database.to_owned()),
        server_selection_timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => c,
        Err(e) => panic!("{URL_VAR}: {e}"),
    }
}

/// A name no other test uses: `databay_test_<tag>_<unique>` (at most 63
/// bytes, MongoDB's limit for a database name).
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = format!(
        "dbt_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    name.truncate(63);
    name
}

/// A database created for one test (on first write) and dropped when
/// this guard is dropped, also when the test fails.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// A client of the test server.
    pub client: Client,
}

impl TestDatabase {
    /// A database of its own on the test server. Panics, naming MongoDB
    /// and how to start it, when the server cannot be reached.
    pub async fn new(tag: &str) -> TestDatabase {
        let name = unique_name(tag);
        match connector(&name).connect().await {
            Ok((client, _)) => TestDatabase { name, client },
            Err(e) => panic!(
                "MongoDB is needed for this test and is not reachable: {e}\n\
                 start it with {START_COMMAND}, or point {URL_VAR} at a server"
            ),
        }
    }

    /// A connector to this database.
    pub fn connector(&self) -> Connector {
        connector(&self.name)
    }

    /// The database.
    pub fn database(&self) -> Database {
        self.client.database(&self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = connector(&name).client().await {
                    let _ = client.database(&name).drop().await;
                }
            });
        })
        .join();
    }
}

/// A connector to the test server's `database` through a [`TcpProxy`] of
/// its own, to take the server away from one test and bring it back.
pub async fn proxied(database: &str) -> (TcpProxy, Connector) {
    let (proxy, url) = TcpProxy::for_url(&url())
        .await
        .unwrap_or_else(|e| panic!("a proxy in front of {URL_VAR}: {e}"));
    match (ConnectionOptions {
        uri: Secret::new(url),
        database: Some(database.to_owned()),
        server_selection_timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{URL_VAR} through a proxy: {e}"),
    }
}
