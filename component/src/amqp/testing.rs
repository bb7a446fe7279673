//! Helpers for tests of AMQP components against a real broker
//! (RabbitMQ): its URL, a connection that fails the test naming RabbitMQ
//! and how to start it, and queues no other test uses, deleted afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

use super::{ConnectionOptions, Connector};
use crate::Secret;
use crate::testing::TcpProxy;

/// The command that starts the local RabbitMQ broker.
pub const START_COMMAND: &str = "rabbitmq-server -detached";

/// The environment variable naming another broker for the tests.
pub const URL_VAR: &str = "DATABAY_TEST_AMQP_URL";

/// The test broker: `$DATABAY_TEST_AMQP_URL`, or
/// `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connector to the test broker.
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

/// A connection to the test broker. Panics, naming RabbitMQ and the
/// command that starts it, when the broker cannot be reached.
pub async fn connection() -> Connection {
    match connector().connect().await {
        Ok(c) => c,
        Err(e) => panic!(
            "RabbitMQ is needed for this test and is not reachable: {e}\n\
             start it with `{START_COMMAND}` (or `bash .ci/services`), \
             or point {URL_VAR} at a broker"
        ),
    }
}

/// A name no other test uses: `databay_test_<tag>_<unique>`.
pub fn unique_name(tag: &str) -> String {
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

/// A queue declared for one test and deleted when this guard is dropped,
/// also when the test fails.
pub struct TestQueue {
    /// The queue's name.
    pub name: String,
    /// A channel of the test's own connection.
    pub channel: Channel,
    _connection: Connection,
}

impl TestQueue {
    /// Declares `databay_test_<tag>_...`.
    pub async fn declare(tag: &str) -> TestQueue {
        let connection = connection().await;
        let channel = match connection.create_channel().await {
            Ok(c) => c,
            Err(e) => panic!("opening a channel: {e}"),
        };
        let name = unique_name(tag);
        if let Err(e) = channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
        {
            panic!("declaring queue {name}: {e}");
        }
        TestQueue {
            name,
            channel,
            _connection: connection,
        }
    }

    /// How many messages the queue holds now (ready, not unacknowledged).
    pub async fn ready(&self) -> u32 {
        match self
            .channel
            .queue_declare(
                self.name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
        {
            Ok(q) => q.message_count(),
            Err(e) => panic!("inspecting queue {}: {e}", self.name),
        }
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: a thread and a connection
        // of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(c) = connector().connect().await
                    && let Ok(ch) = c.create_channel().await
                {
                    let _ = ch
                        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                        .await;
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
        timeout: Some(std::time::Duration::from_secs(5)),
        ..ConnectionOptions::default()
    })
    .connector()
    {
        Ok(c) => (proxy, c),
        Err(e) => panic!("{URL_VAR} through a proxy: {e}"),
    }
}
