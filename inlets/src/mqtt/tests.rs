//! Tests of [`MqttInlet`] against the real broker (Mosquitto, see
//! `databay_component::mqtt::testing`), each on topics and client IDs of
//! its own: round trips through the `mqtt` outlet, acknowledgement after
//! commit (also across a reconnect), bad messages and an unreachable
//! broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use databay_component::Secret;
use databay_component::broker::Template;
use databay_component::mqtt::ConnectionOptions;
use databay_component::mqtt::testing::{self, unique_name};
use databay_core::testing::CollectOutlet;
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use databay_outlets::mqtt::MqttOutlet;
use rumqttc::QoS;
use serde_json::{Value, json};

use super::{MqttInlet, TOPIC_META};

async fn publish(topic: &str, values: &[Value]) {
    let mut outlet = MqttOutlet::new(
        testing::connector(&unique_name("pub")),
        Template::parse(topic).unwrap(),
    );
    let records: Vec<Record> = values.iter().cloned().map(Record::new).collect();
    outlet
        .push(&records, &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("publishing to {topic}: {e}"));
    outlet.on_shutdown().await.unwrap();
}

/// A persistent-session inlet with its own client ID.
fn inlet(client_id: &str, topic: &str) -> MqttInlet {
    let (host, port) = testing::addr();
    let connector = ConnectionOptions {
        host: Some(host),
        port: Some(port),
        clean_session: Some(false),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
    .connector(client_id)
    .unwrap();
    MqttInlet::new(connector, topic)
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

/// Transfers until `out` holds `n` records, or 5 s passed.
async fn transfer_until(link: &Link, out: &CollectOutlet, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?} within 5s",
            out.payloads()
        );
        let _ = link.transfer().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_round_trip_keeps_topics_and_order() {
    testing::require_broker().await;
    let base = unique_name("in_trip");
    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_trip")
        .inlet(inlet(&unique_name("c"), &format!("{base}/+")))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    publish(
        &format!("{base}/{{/room}}"),
        &[
            json!({"room": "hall", "n": 1}),
            json!({"room": "attic", "n": 2}),
        ],
    )
    .await;
    transfer_until(&link, &out, 2).await;
    assert_eq!(out.payloads()[1], json!({"room": "attic", "n": 2}));
    let topics: Vec<Value> = out
        .records()
        .iter()
        .filter_map(|r| r.meta(TOPIC_META).cloned())
        .collect();
    assert_eq!(
        topics,
        [
            json!(format!("{base}/hall")),
            json!(format!("{base}/attic"))
        ]
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_failed_push_delivers_the_messages_again_on_the_next_transfer() {
    testing::require_broker().await;
    let topic = unique_name("in_rollback");
    let flaky = Flaky::failing(1);
    let link = Link::builder("mqtt_rollback")
        .inlet(inlet(&unique_name("c"), &topic))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    publish(&topic, &[json!(1), json!(2)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Until the messages arrive and the push fails once.
    while link.transfer().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message within 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    transfer_until(&link, &flaky.out, 2).await;
    assert_eq!(flaky.out.payloads(), [json!(1), json!(2)]);
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn what_was_never_committed_comes_back_after_a_restart() {
    testing::require_broker().await;
    let topic = unique_name("in_restart");
    let client_id = unique_name("c");
    let update = Update::new(["restart"], 0);
    let mut first = inlet(&client_id, &topic);
    first.on_start().await.unwrap();
    publish(&topic, &[json!("kept")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match first.pull(&update).await.unwrap() {
            Pull::Records(r) => {
                assert_eq!(r[0].payload, json!("kept"));
                break;
            }
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no message within 5s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Stopped without a commit: the broker keeps the message for the session.
    first.on_shutdown().await.unwrap();
    drop(first);
    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_restart")
        .inlet(inlet(&client_id, &topic))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    transfer_until(&link, &out, 1).await;
    assert_eq!(out.payloads(), [json!("kept")]);
    assert!(link.shutdown().await.is_empty());
    // Committed this time: a third session gets nothing.
    let mut third = inlet(&client_id, &topic);
    third.on_start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        third
            .pull(&Update::new(["third"], 0))
            .await
            .unwrap()
            .records()
            .is_empty()
    );
    third.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_message_is_named_and_removed() {
    testing::require_broker().await;
    let topic = unique_name("in_bad");
    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_bad")
        .inlet(inlet(&unique_name("c"), &topic))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let mut raw = MqttOutlet::new(
        testing::connector(&unique_name("pub")),
        Template::parse(&topic).unwrap(),
    )
    .format(databay_component::broker::Format::Text);
    raw.push(
        &[Record::new(json!("{oops")), Record::new(json!("5"))],
        &Update::new(["w"], 0),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let e = loop {
        match link.transfer().await {
            Err(e) => break e.to_string(),
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no message within 5s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        e.contains(&format!("topic `{topic}`, message 1 received: not JSON")),
        "{e}"
    );
    transfer_until(&link, &out, 1).await;
    assert_eq!(out.payloads(), [json!(5)]);
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn qos0_messages_beyond_the_buffer_are_dropped_and_counted() {
    testing::require_broker().await;
    let topic = unique_name("in_drop");
    let mut inlet = inlet(&unique_name("c"), &topic)
        .qos(QoS::AtMostOnce)
        .buffer(2);
    inlet.on_start().await.unwrap();
    let mut out = MqttOutlet::new(
        testing::connector(&unique_name("pub")),
        Template::parse(&topic).unwrap(),
    )
    .qos(QoS::AtMostOnce);
    let records: Vec<Record> = (0..5).map(|i| Record::new(json!(i))).collect();
    out.push(&records, &Update::new(["w"], 0)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while inlet.dropped() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dropped: {}",
            inlet.dropped()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let update = Update::new(["drop"], 0);
    let pulled = inlet.pull(&update).await.unwrap();
    let values: Vec<Value> = pulled.records().iter().map(|r| r.payload.clone()).collect();
    assert_eq!(values, [json!(0), json!(1)]);
    inlet.commit(&update).await.unwrap();
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_the_password() {
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(1),
        username: Some("app".into()),
        password: Some(Secret::new("s3cret".into())),
        timeout: Some(Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector("databay-test-down")
    .unwrap();
    let mut inlet = MqttInlet::new(connector, "a/#");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to MQTT broker at 127.0.0.1:1"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_payloads_taken() {
    testing::require_broker().await;
    let topic = unique_name("in_bytes");
    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_bytes")
        .inlet(inlet(&unique_name("c"), &topic))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    publish(&topic, &[json!({"id": 1}), json!("ab")]).await;
    transfer_until(&link, &out, 2).await;
    assert_eq!(link.node_stats()[0].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_broker_that_goes_away_mid_run_keeps_the_session_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    testing::require_broker().await;
    let topic = unique_name("in_outage");
    let (proxy, connector) = testing::proxied(&unique_name("c")).await;
    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_outage")
        .inlet(MqttInlet::new(connector, &topic))
        .outlet(out.clone())
        .build()
        .unwrap();
    // The subscription exists once the link started: publish then.
    let sent = tokio::spawn({
        let topic = topic.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            publish(&topic, &[json!(1), json!(2), json!(3)]).await;
        }
    });
    // Messages published while the link is cut off wait in its
    // persistent session at the broker.
    let _ = through_an_outage(&link, &out, &proxy, 3, false, async {
        sent.await.unwrap();
        publish(&topic, &[json!(4), json!(5)]).await;
        2
    })
    .await;
    assert_eq!(
        out.payloads(),
        (1..=5).map(|n| json!(n)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_broker_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(silent.port()),
        username: Some("app".into()),
        password: Some(Secret::new("s3cret".into())),
        timeout: Some(Duration::from_secs(1)),
        ..ConnectionOptions::default()
    }
    .connector("databay-test-silent")
    .unwrap();
    let mut inlet = MqttInlet::new(connector, "a/#");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// A broker of the test's own that takes one login: a wrong password
/// fails the start, naming the broker and the refusal but not the
/// password; the right one goes through to a round trip.
#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let broker = testing::broker_with_login("app", "r1ght-pw").await;
    let topic = unique_name("in_auth");
    let mut refused = MqttInlet::new(
        testing::login_connector(&broker, &unique_name("in_auth"), "app", "wr0ng-pw"),
        format!("{topic}/#"),
    );
    let e = refused.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to MQTT broker at 127.0.0.1:{}",
            broker.port()
        )),
        "{e}"
    );
    assert!(e.contains("refused the login"), "{e}");
    assert!(!e.contains("wr0ng-pw") && !e.contains("r1ght-pw"), "{e}");

    let out = CollectOutlet::new();
    let link = Link::builder("mqtt_auth")
        .inlet(MqttInlet::new(
            testing::login_connector(&broker, &unique_name("in_auth"), "app", "r1ght-pw"),
            format!("{topic}/#"),
        ))
        .outlet(out.clone())
        .build()
        .unwrap();
    // The start returns once the broker confirmed the subscription.
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    let mut publisher = MqttOutlet::new(
        testing::login_connector(&broker, &unique_name("pub"), "app", "r1ght-pw"),
        Template::parse(&format!("{topic}/a")).unwrap(),
    );
    publisher
        .push(&[Record::new(json!({"n": 1}))], &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("publishing with the right password: {e}"));
    crate::outage::transfer_until(&link, &out, 1, "with the right password").await;
    assert_eq!(out.payloads(), [json!({"n": 1})]);
    assert!(link.shutdown().await.is_empty());
}

/// A broker that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_broker_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(garbage.port()),
        username: Some("app".into()),
        password: Some(Secret::new("s3cret".into())),
        timeout: Some(Duration::from_secs(1)),
        ..ConnectionOptions::default()
    }
    .connector("databay-test-garbage")
    .unwrap();
    let mut inlet = MqttInlet::new(connector, "a/#");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
