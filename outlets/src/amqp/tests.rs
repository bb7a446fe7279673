//! Tests of [`AmqpOutlet`] against the real broker (RabbitMQ, see
//! `databay_component::amqp::testing`), each on a queue of its own.

use std::time::Duration;

use databay_component::Secret;
use databay_component::amqp::ConnectionOptions;
use databay_component::amqp::testing::{self, TestQueue, unique_name};
use databay_component::broker::Template;
use databay_core::{Outlet, Record, Update};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use serde_json::{Value, json};

use super::AmqpOutlet;

fn update() -> Update {
    Update::new(["amqp"], 0)
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

/// Takes the queue's messages, in order.
async fn drain(queue: &TestQueue) -> Vec<(String, Vec<u8>)> {
    let mut got = Vec::new();
    while let Some(m) = queue
        .channel
        .basic_get(queue.name.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        let content_type = m
            .delivery
            .properties
            .content_type()
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        got.push((content_type, m.delivery.data.clone()));
        m.delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    got
}

#[tokio::test]
async fn confirmed_messages_are_in_the_queue_when_the_push_returns() {
    let queue = TestQueue::declare("out_confirm").await;
    let mut out = AmqpOutlet::new(
        testing::connector(),
        "",
        Template::parse(&queue.name).unwrap(),
    );
    out.on_start().await.unwrap();
    out.push(&records(&[json!({"id": 1}), json!({"id": 2})]), &update())
        .await
        .unwrap();
    assert_eq!(queue.ready().await, 2);
    assert_eq!(
        drain(&queue).await,
        [
            ("application/json".to_owned(), br#"{"id":1}"#.to_vec()),
            ("application/json".to_owned(), br#"{"id":2}"#.to_vec()),
        ]
    );
    out.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn routing_keys_come_from_the_records() {
    let a = TestQueue::declare("out_key_a").await;
    let b = TestQueue::declare("out_key_b").await;
    let mut out = AmqpOutlet::new(testing::connector(), "", Template::parse("{/to}").unwrap())
        .format(databay_component::broker::Format::Text);
    out.push(
        &records(&[
            json!({"to": a.name}),
            json!({"to": b.name}),
            json!({"to": a.name}),
        ]),
        &update(),
    )
    .await
    .unwrap();
    assert_eq!(a.ready().await, 2);
    assert_eq!(b.ready().await, 1);
}

#[tokio::test]
async fn a_message_no_queue_takes_fails_the_push() {
    let _queue = TestQueue::declare("out_noroute").await;
    let nowhere = unique_name("nowhere");
    let mut out = AmqpOutlet::new(testing::connector(), "", Template::parse(&nowhere).unwrap());
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("routing key `{nowhere}`")), "{e}");
    assert!(e.contains("NO_ROUTE"), "{e}");
}

#[tokio::test]
async fn a_missing_exchange_fails_and_the_next_push_reconnects() {
    let queue = TestQueue::declare("out_noexchange").await;
    let exchange = unique_name("noexchange");
    let mut out = AmqpOutlet::new(
        testing::connector(),
        exchange.as_str(),
        Template::parse(&queue.name).unwrap(),
    );
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("exchange `{exchange}`")), "{e}");
    assert!(e.contains("NOT_FOUND"), "{e}");
    // The broker closed the channel; the next push opens a new one and
    // gets the broker's answer again, not a closed-channel error.
    let e = out
        .push(&records(&[json!(2)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NOT_FOUND"), "{e}");
    assert_eq!(queue.ready().await, 0);
}

#[tokio::test]
async fn a_record_without_a_routing_key_publishes_nothing() {
    let queue = TestQueue::declare("out_bad").await;
    let mut out = AmqpOutlet::new(testing::connector(), "", Template::parse("{/to}").unwrap());
    let e = out
        .push(&records(&[json!({"to": queue.name}), json!({})]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("record 1: routing key `{/to}`: {/to} is missing"),
        "{e}"
    );
    assert_eq!(queue.ready().await, 0);
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_the_password() {
    let connector = ConnectionOptions {
        url: Some(Secret::new("amqp://app:s3cret@127.0.0.1:1/%2f".into())),
        timeout: Some(Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = AmqpOutlet::new(connector, "", Template::parse("q").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to AMQP broker at 127.0.0.1:1/ as `app`"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_refused_login_does_not_show_the_password() {
    let _ = testing::connection().await;
    let connector = ConnectionOptions {
        url: Some(Secret::new(testing::url())),
        password: Some(Secret::new("not-the-password-42".into())),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = AmqpOutlet::new(connector, "", Template::parse("q").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(e.starts_with("cannot connect to AMQP broker at"), "{e}");
    assert!(!e.contains("not-the-password-42"), "{e}");
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let queue = TestQueue::declare("out_tester").await;
    databay_core::testing::OutletTester::new(|| {
        AmqpOutlet::new(
            testing::connector(),
            "",
            Template::parse(&queue.name).unwrap(),
        )
    })
    .run()
    .await
    .unwrap();
    assert_eq!(queue.ready().await, 12, "two pushes of six records");
}

#[tokio::test]
async fn amqps_speaks_tls() {
    use tokio::io::AsyncReadExt;
    // A listener that records the first byte a client sends: 0x16 opens a
    // TLS handshake record, `A` the plain `AMQP` protocol header.
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
            "amqps://app:s3cret@localhost:{port}/%2f"
        ))),
        timeout: Some(Duration::from_secs(1)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = AmqpOutlet::new(connector, "", Template::parse("q").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to AMQP broker at localhost:{port}/"
        )),
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
async fn a_link_counts_the_bytes_of_the_confirmed_message_bodies() {
    use databay_core::Link;
    use databay_core::testing::StaticInlet;
    let queue = TestQueue::declare("out_bytes").await;
    let link = Link::builder("amqp_out_bytes")
        .inlet(StaticInlet::values([json!({"id": 1}), json!("ab")]))
        .outlet(AmqpOutlet::new(
            testing::connector(),
            "",
            Template::parse(&queue.name).unwrap(),
        ))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(queue.ready().await, 2);
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_broker_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    use databay_core::Link;
    let queue = TestQueue::declare("out_outage").await;
    let (proxy, connector) = testing::proxied().await;
    let link = Link::builder("amqp_outage")
        .inlet(Sequence::default())
        .outlet(AmqpOutlet::new(
            connector,
            "",
            Template::parse(&queue.name).unwrap(),
        ))
        .outlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let got: Vec<Vec<u8>> = drain(&queue).await.into_iter().map(|(_, b)| b).collect();
    let want: Vec<Vec<u8>> = (0..DELIVERED)
        .map(|n| format!(r#"{{"n":{n}}}"#).into_bytes())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_broker_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "amqp://app:s3cret@127.0.0.1:{}/%2f",
            silent.port()
        ))),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = AmqpOutlet::new(connector, "", Template::parse("q").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// A broker that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_broker_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "amqp://app:s3cret@127.0.0.1:{}/%2f",
            garbage.port()
        ))),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = AmqpOutlet::new(connector, "", Template::parse("q").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
