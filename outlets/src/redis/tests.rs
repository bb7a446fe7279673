//! Tests of [`RedisOutlet`] against the real Redis server (see
//! `databay_component::redis::testing`), each on keys of its own.

use databay_component::Secret;
use databay_component::broker::{Format, Template};
use databay_component::redis::ConnectionOptions;
use databay_component::redis::testing::{self, unique_key};
use databay_core::{Outlet, Record, Update};
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::{RedisOutlet, RedisWrite};

fn update() -> Update {
    Update::new(["redis"], 0)
}

fn outlet(write: RedisWrite, key: &str) -> RedisOutlet {
    RedisOutlet::new(
        testing::connector(),
        write,
        Template::parse(key).expect("template"),
    )
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

#[tokio::test]
async fn a_list_gets_one_json_message_per_record_in_order() {
    let mut con = testing::connection().await;
    let key = unique_key("out_list");
    let mut out = outlet(RedisWrite::List, &key);
    out.push(&records(&[json!({"id": 1}), json!("two")]), &update())
        .await
        .unwrap();
    out.push(&records(&[json!(3)]), &update()).await.unwrap();
    let got: Vec<String> = con.lrange(&key, 0, -1).await.unwrap();
    assert_eq!(got, [r#"{"id":1}"#, r#""two""#, "3"]);
    let _: () = con.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_stream_key_template_spreads_records_over_streams() {
    let mut con = testing::connection().await;
    let prefix = unique_key("out_stream");
    let mut out = outlet(RedisWrite::Stream, &format!("{prefix}:{{/kind}}"))
        .field("body")
        .maxlen(1000)
        .format(Format::Text);
    out.push(
        &records(&[
            json!({"kind": "a", "n": 1}),
            json!({"kind": "b", "n": 2}),
            json!({"kind": "a", "n": 3}),
        ]),
        &update(),
    )
    .await
    .unwrap();
    for (kind, want) in [("a", vec![1, 3]), ("b", vec![2])] {
        let key = format!("{prefix}:{kind}");
        let entries: redis::streams::StreamRangeReply = con.xrange_all(&key).await.unwrap();
        let got: Vec<i64> = entries
            .ids
            .iter()
            .map(|e| {
                let body: String = e.get("body").expect("field body");
                serde_json::from_str::<Value>(&body).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, want, "{key}");
        let _: () = con.del(&key).await.unwrap();
    }
}

#[tokio::test]
async fn published_messages_reach_a_subscriber() {
    use futures::StreamExt;
    let channel = unique_key("out_pub");
    let client = redis::Client::open(testing::url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(&channel).await.unwrap();
    let mut out = outlet(RedisWrite::Publish, &channel);
    out.push(&records(&[json!({"hello": "world"})]), &update())
        .await
        .unwrap();
    let message = tokio::time::timeout(std::time::Duration::from_secs(5), sub.on_message().next())
        .await
        .expect("a message within 5s")
        .expect("a message");
    let payload: String = message.get_payload().unwrap();
    assert_eq!(payload, r#"{"hello":"world"}"#);
}

#[tokio::test]
async fn a_record_the_key_cannot_be_filled_from_writes_nothing() {
    let mut con = testing::connection().await;
    let prefix = unique_key("out_bad");
    let mut out = outlet(RedisWrite::List, &format!("{prefix}:{{/kind}}"));
    let e = out
        .push(
            &records(&[json!({"kind": "a"}), json!({"other": 1})]),
            &update(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("record 1: key `"), "{e}");
    assert!(e.contains("{/kind} is missing"), "{e}");
    let len: usize = con.llen(format!("{prefix}:a")).await.unwrap();
    assert_eq!(len, 0);
}

#[tokio::test]
async fn a_server_error_names_the_command_and_key() {
    let mut con = testing::connection().await;
    let key = unique_key("out_wrongtype");
    let _: () = con.set(&key, "a string").await.unwrap();
    let mut out = outlet(RedisWrite::List, &key);
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("RPUSH {key}")), "{e}");
    assert!(e.contains("WRONGTYPE"), "{e}");
    let _: () = con.del(&key).await.unwrap();
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
    let mut out = RedisOutlet::new(connector, RedisWrite::List, Template::parse("k").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to Redis at 127.0.0.1:1/0"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:1/0") && !e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    let _ = testing::connection().await;
    let connector = ConnectionOptions {
        url: Some(Secret::new(testing::url())),
        password: Some(Secret::new("not-the-password-42".into())),
        timeout: Some(std::time::Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = RedisOutlet::new(connector, RedisWrite::List, Template::parse("k").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(e.starts_with("cannot connect to Redis at"), "{e}");
    assert!(!e.contains("not-the-password-42"), "{e}");
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let mut con = testing::connection().await;
    let key = unique_key("out_tester");
    let handle = databay_core::testing::OutletTester::new(|| outlet(RedisWrite::Stream, &key))
        .run()
        .await
        .unwrap();
    drop(handle);
    let len: usize = con.xlen(&key).await.unwrap();
    assert_eq!(len, 12, "two pushes of six records");
    let _: () = con.del(&key).await.unwrap();
}

#[tokio::test]
async fn tls_is_spoken_when_asked_for() {
    use tokio::io::AsyncReadExt;
    // A listener that records the first byte a client sends: 0x16 opens a
    // TLS handshake record, `*` a plain Redis command.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        byte[0]
    });
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "rediss://app:s3cret@127.0.0.1:{port}/0"
        ))),
        timeout: Some(std::time::Duration::from_secs(1)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = RedisOutlet::new(connector, RedisWrite::List, Template::parse("k").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot connect to Redis at 127.0.0.1:{port}/0")),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    assert_eq!(
        first.await.unwrap(),
        0x16,
        "the client opened with a TLS handshake"
    );
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_messages_written() {
    use databay_core::Link;
    use databay_core::testing::StaticInlet;
    let mut con = testing::connection().await;
    let key = unique_key("out_bytes");
    let link = Link::builder("redis_out_bytes")
        .inlet(StaticInlet::values([json!({"id": 1}), json!("two")]))
        .outlet(outlet(RedisWrite::List, &key))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    let got: Vec<String> = con.lrange(&key, 0, -1).await.unwrap();
    assert_eq!(got, [r#"{"id":1}"#, r#""two""#]);
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 5));
    assert!(link.shutdown().await.is_empty());
    let _: () = con.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    use databay_core::Link;
    let mut con = testing::connection().await;
    let key = unique_key("out_outage");
    let (proxy, connector) = testing::proxied().await;
    let link = Link::builder("redis_outage")
        .inlet(Sequence::default())
        .outlet(RedisOutlet::new(
            connector,
            RedisWrite::List,
            Template::parse(&key).unwrap(),
        ))
        .outlet_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let got: Vec<String> = con.lrange(&key, 0, -1).await.unwrap();
    let want: Vec<String> = (0..DELIVERED).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
    assert_eq!(got, want);
    let _: () = con.del(&key).await.unwrap();
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
    let mut out = RedisOutlet::new(connector, RedisWrite::List, Template::parse("k").unwrap());
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/0", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        out.push(&[Record::new(json!(1))], &Update::new(["redis"], 0)),
    )
    .await
    .expect("the connector's own timeout ends the wait")
    .unwrap_err()
    .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/0", silent.port())), "{e}");
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
    let mut out = RedisOutlet::new(connector, RedisWrite::List, Template::parse("k").unwrap());
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{}/0", garbage.port())),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        out.push(&[Record::new(json!(1))], &Update::new(["redis"], 0)),
    )
    .await
    .expect("the connector gives up by itself")
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{}/0", garbage.port())),
        "{e}"
    );
}
