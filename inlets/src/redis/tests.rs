//! Tests of [`RedisInlet`] against the real Redis server (see
//! `databay_component::redis::testing`), each on keys of its own: round
//! trips through the `redis` outlet, acknowledgement after commit, bad
//! messages and an unreachable server.

use std::sync::{Arc, Mutex};

use databay_component::Secret;
use databay_component::broker::Template;
use databay_component::redis::ConnectionOptions;
use databay_component::redis::testing::{self, unique_key};
use databay_core::testing::CollectOutlet;
use databay_core::{BoxError, Inlet, Link, Outlet, Record, Update, async_trait};
use databay_outlets::redis::{RedisOutlet, RedisWrite};
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::{ID_META, KEY_META, RedisInlet, RedisRead};

fn stream(key: &str) -> RedisInlet {
    RedisInlet::new(
        testing::connector(),
        RedisRead::Stream {
            group: "g".into(),
            consumer: "c".into(),
            start_id: "0".into(),
        },
        key,
    )
}

async fn write(write: RedisWrite, key: &str, values: &[Value]) {
    let mut outlet = RedisOutlet::new(testing::connector(), write, Template::parse(key).unwrap());
    let records: Vec<Record> = values.iter().cloned().map(Record::new).collect();
    outlet
        .push(&records, &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("writing to {key}: {e}"));
}

async fn pending(key: &str) -> usize {
    let mut con = testing::connection().await;
    let reply: redis::streams::StreamPendingReply = con.xpending(key, "g").await.unwrap();
    reply.count()
}

/// An outlet failing its first `n` pushes, then collecting.
#[derive(Clone)]
struct Flaky {
    failures: Arc<Mutex<usize>>,
    out: CollectOutlet,
}

impl Flaky {
    fn failing(n: usize) -> Self {
        Flaky {
            failures: Arc::new(Mutex::new(n)),
            out: CollectOutlet::new(),
        }
    }
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        {
            let mut left = self.failures.lock().map_err(|_| "poisoned")?;
            if *left > 0 {
                *left -= 1;
                return Err("disk full".into());
            }
        }
        self.out.push(records, update).await
    }
}

#[tokio::test]
async fn a_stream_round_trip_is_acknowledged_after_the_commit() {
    let key = unique_key("in_stream");
    write(
        RedisWrite::Stream,
        &key,
        &[json!({"id": 1}), json!({"id": 2})],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("redis_stream")
        .inlet(stream(&key).batch_size(10))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!({"id": 1}), json!({"id": 2})]);
    let record = &out.records()[0];
    assert_eq!(record.meta(KEY_META), Some(&json!(key)));
    assert!(
        record
            .meta(ID_META)
            .and_then(Value::as_str)
            .is_some_and(|id| id.contains('-'))
    );
    assert_eq!(pending(&key).await, 0, "committed entries are acknowledged");
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2, "nothing is delivered twice");
    assert!(link.shutdown().await.is_empty());
    let _: () = testing::connection().await.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_failed_push_leaves_the_entries_pending_and_they_come_back() {
    let key = unique_key("in_redeliver");
    write(
        RedisWrite::Stream,
        &key,
        &[json!("a"), json!("b"), json!("c")],
    )
    .await;
    let flaky = Flaky::failing(1);
    let link = Link::builder("redis_redeliver")
        .inlet(stream(&key).batch_size(2))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    assert!(link.transfer().await.is_err());
    assert_eq!(
        pending(&key).await,
        2,
        "not acknowledged after a failed push"
    );
    link.transfer().await.unwrap();
    assert_eq!(flaky.out.payloads(), [json!("a"), json!("b")]);
    assert_eq!(pending(&key).await, 0);
    link.transfer().await.unwrap();
    assert_eq!(flaky.out.payloads(), [json!("a"), json!("b"), json!("c")]);
    assert!(link.shutdown().await.is_empty());
    let _: () = testing::connection().await.del(&key).await.unwrap();
}

#[tokio::test]
async fn entries_left_pending_by_a_stopped_reader_are_read_first_on_start() {
    let key = unique_key("in_restart");
    write(RedisWrite::Stream, &key, &[json!(1), json!(2)]).await;
    let update = Update::new(["first"], 0);
    let mut first = stream(&key).batch_size(1);
    first.on_start().await.unwrap();
    // Pulled, never committed: the daemon "died".
    assert_eq!(first.pull(&update).await.unwrap().records().len(), 1);
    drop(first);
    write(RedisWrite::Stream, &key, &[json!(3)]).await;
    let out = CollectOutlet::new();
    let link = Link::builder("redis_restart")
        .inlet(stream(&key).batch_size(10))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!(1), json!(2), json!(3)]);
    assert_eq!(pending(&key).await, 0);
    assert!(link.shutdown().await.is_empty());
    let _: () = testing::connection().await.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_list_rollback_puts_the_messages_back_in_order() {
    let key = unique_key("in_list");
    write(RedisWrite::List, &key, &[json!(1), json!(2), json!(3)]).await;
    let flaky = Flaky::failing(1);
    let link = Link::builder("redis_list")
        .inlet(RedisInlet::new(testing::connector(), RedisRead::List, &key).batch_size(2))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    assert!(link.transfer().await.is_err());
    let mut con = testing::connection().await;
    let left: Vec<String> = con.lrange(&key, 0, -1).await.unwrap();
    assert_eq!(left, ["1", "2", "3"]);
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(flaky.out.payloads(), [json!(1), json!(2), json!(3)]);
    assert_eq!(flaky.out.records()[0].meta(KEY_META), Some(&json!(key)));
    let len: usize = con.llen(&key).await.unwrap();
    assert_eq!(len, 0);
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_bad_message_is_named_and_removed_and_the_rest_comes_next() {
    let key = unique_key("in_bad");
    let mut con = testing::connection().await;
    let _: String = con.xadd(&key, "*", &[("payload", "1")]).await.unwrap();
    let bad: String = con.xadd(&key, "*", &[("payload", "{oops")]).await.unwrap();
    let _: String = con.xadd(&key, "*", &[("other", "2")]).await.unwrap();
    let _: String = con.xadd(&key, "*", &[("payload", "4")]).await.unwrap();
    let out = CollectOutlet::new();
    let link = Link::builder("redis_bad")
        .inlet(stream(&key))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("stream `{key}`, entry {bad}: not JSON")),
        "{e}"
    );
    assert!(e.contains("line 1 column 2"), "{e}");
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(e.contains("has no field `payload` (fields: other)"), "{e}");
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!(1), json!(4)]);
    assert_eq!(pending(&key).await, 0);
    assert!(link.shutdown().await.is_empty());
    let _: () = con.del(&key).await.unwrap();
}

#[tokio::test]
async fn text_messages_become_strings() {
    let key = unique_key("in_text");
    let mut con = testing::connection().await;
    let _: () = con.rpush(&key, "plain words").await.unwrap();
    let mut inlet = RedisInlet::new(testing::connector(), RedisRead::List, &key)
        .format(databay_component::broker::Format::Text);
    inlet.on_start().await.unwrap();
    let update = Update::new(["t"], 0);
    let pull = inlet.pull(&update).await.unwrap();
    assert_eq!(pull.records()[0].payload, json!("plain words"));
    inlet.commit(&update).await.unwrap();
    let len: usize = con.llen(&key).await.unwrap();
    assert_eq!(len, 0);
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let connector = ConnectionOptions {
        url: Some(Secret::new("redis://app:s3cret@127.0.0.1:1/0".into())),
        timeout: Some(std::time::Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = RedisInlet::new(connector, RedisRead::List, "k");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to Redis at 127.0.0.1:1/0"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = inlet
        .pull(&Update::new(["t"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:1/0") && !e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn passes_the_inlet_checks() {
    let key = unique_key("in_tester");
    // Two instances, three pulls each, one message a pull.
    write(
        RedisWrite::List,
        &key,
        &(0..6).map(|i| json!({"n": i})).collect::<Vec<_>>(),
    )
    .await;
    let connector = testing::connector();
    databay_core::testing::InletTester::new(|| {
        RedisInlet::new(connector.clone(), RedisRead::List, &key).batch_size(1)
    })
    .run()
    .await
    .unwrap();
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_messages_taken() {
    let list = unique_key("in_bytes_list");
    let mut con = testing::connection().await;
    let _: () = con.rpush(&list, &["1", r#"{"a":"bc"}"#]).await.unwrap();
    let key = unique_key("in_bytes_stream");
    let _: String = con
        .xadd(
            &key,
            "*",
            &[("payload", "\"xyz\""), ("other", "not counted")],
        )
        .await
        .unwrap();
    let out = CollectOutlet::new();
    let link = Link::builder("redis_bytes")
        .inlet(RedisInlet::new(
            testing::connector(),
            RedisRead::List,
            &list,
        ))
        .inlet(stream(&key))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 3);
    let stats = link.node_stats();
    assert_eq!(stats[0].bytes, Some(1 + 10), "the list's two messages");
    assert_eq!(
        stats[1].bytes,
        Some(5),
        "the stream entry's `payload` field only"
    );
    link.transfer().await.unwrap();
    assert_eq!(
        link.node_stats()[0].bytes,
        Some(11),
        "an empty pull reads nothing"
    );
    assert!(link.shutdown().await.is_empty());
    let _: () = con.del(&[&list, &key]).await.unwrap();
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let key = unique_key("in_outage");
    write(RedisWrite::Stream, &key, &[json!(1), json!(2), json!(3)]).await;
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("redis_outage")
        .inlet(RedisInlet::new(
            connector,
            RedisRead::Stream {
                group: "g".into(),
                consumer: "c".into(),
                start_id: "0".into(),
            },
            &key,
        ))
        .outlet(out.clone())
        .inlet_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        write(RedisWrite::Stream, &key, &[json!(4), json!(5)]).await;
        2
    })
    .await
    .unwrap_or_default();
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    assert_eq!(
        out.payloads(),
        (1..=5).map(|n| json!(n)).collect::<Vec<_>>()
    );
    assert_eq!(pending(&key).await, 0);
    let _: () = testing::connection().await.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "redis://app:s3cret@127.0.0.1:{}/0",
            silent.port()
        ))),
        timeout: Some(std::time::Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = RedisInlet::new(connector, RedisRead::List, "k");
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/0", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_refused_password_fails_the_start_without_showing_it() {
    let _ = testing::connection().await;
    // The test server has no password: AUTH with one is refused.
    let connector = ConnectionOptions {
        url: Some(Secret::new(testing::url())),
        password: Some(Secret::new("s3cret-pw".into())),
        timeout: Some(std::time::Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = RedisInlet::new(connector, RedisRead::List, unique_key("in_auth"));
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.contains("Redis at 127.0.0.1:6379/0") || e.contains("cannot connect to Redis"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

/// A server that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_server_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "redis://app:s3cret@127.0.0.1:{}/0",
            garbage.port()
        ))),
        timeout: Some(std::time::Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = RedisInlet::new(connector, RedisRead::List, "k");
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{}/0", garbage.port())),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}
