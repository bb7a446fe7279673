//! Helpers for tests of Redis components against a real server: its URL,
//! a connection that fails the test naming Redis and how to start it, and
//! keys no other test uses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::TcpProxy;

/// The command that starts the local Redis server.
pub const START_COMMAND: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
     --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";

/// The environment variable naming another server for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_REDIS_URL";

/// The test server: `$DATABAY_TEST_REDIS_URL`, or `redis://127.0.0.1:6379/0`.
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A connector to the test server.
pub fn connector() -> Connector {
    match (ConnectionOptions {
        url: Some(Secret::new(url())),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => c,
        Err(e) => panic!("{URL_VAR}: {e}"),
    }
}

/// A connection to the test server. Panics, naming Redis and the command
/// that starts it, when the server cannot be reached.
pub async fn connection() -> MultiplexedConnection {
    match connector().connect(Duration::ZERO).await {
        Ok(connection) => connection,
        Err(e) => panic!(
            "Redis is needed for this test and is not reachable: {e}\n\
             start it with `{START_COMMAND}` (or `bash .ci/services`), \
             or point {URL_VAR} at a server"
        ),
    }
}

/// A key no other test uses: `databay_test:<tag>:<unique>`.
pub fn unique_key(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "databay_test:{tag}:{}:{nanos}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connector to the test server through a [`TcpProxy`] of its own, to
/// take the server away from one test and bring it back.
pub async fn proxied() -> (TcpProxy, Connector) {
    let (proxy, url) = TcpProxy::for_url(&url())
        .await
        .unwrap_or_else(|e| panic!("a proxy in front of {URL_VAR}: {e}"));
    match (ConnectionOptions {
        url: Some(Secret::new(url)),
        timeout: Some(std::time::Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{URL_VAR} through a proxy: {e}"),
    }
}
