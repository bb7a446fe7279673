//! Tests of [`MqttOutlet`] against the real broker (Mosquitto, see
//! `databay_component::mqtt::testing`), each on topics of its own.

use std::time::Duration;

use databay_component::Secret;
use databay_component::broker::Template;
use databay_component::mqtt::testing::{self, unique_name};
use databay_component::mqtt::{ConnectionOptions, Session};
use databay_core::{Outlet, Record, Update};
use rumqttc::QoS;
use serde_json::{Value, json};

use super::MqttOutlet;

fn update() -> Update {
    Update::new(["mqtt"], 0)
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

async fn subscriber(filter: &str) -> Session {
    testing::require_broker().await;
    let session = testing::connector(&unique_name("sub"))
        .connect(false, 1000)
        .await
        .unwrap();
    // Returns once the broker confirmed it: what is published next is for it.
    session.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    session
}

/// `(topic, payload)` of the first `n` messages within 5 s.
async fn received(session: &Session, n: usize) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {got:?} within 5s"
        );
        for a in session.take(n - got.len()) {
            got.push((
                a.publish.topic.clone(),
                String::from_utf8_lossy(&a.publish.payload).into_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got
}

#[tokio::test]
async fn qos1_messages_are_acknowledged_and_reach_a_subscriber() {
    let base = unique_name("out_qos1");
    let sub = subscriber(&format!("{base}/#")).await;
    let mut out = MqttOutlet::new(
        testing::connector(&unique_name("out")),
        Template::parse(&format!("{base}/{{/room}}")).unwrap(),
    );
    out.on_start().await.unwrap();
    out.push(
        &records(&[
            json!({"room": "hall", "t": 20}),
            json!({"room": "attic", "t": 31}),
        ]),
        &update(),
    )
    .await
    .unwrap();
    assert_eq!(
        received(&sub, 2).await,
        [
            (
                format!("{base}/hall"),
                r#"{"room":"hall","t":20}"#.to_owned()
            ),
            (
                format!("{base}/attic"),
                r#"{"room":"attic","t":31}"#.to_owned()
            ),
        ]
    );
    out.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn qos0_text_messages_arrive_as_text() {
    let topic = unique_name("out_qos0");
    let sub = subscriber(&topic).await;
    let mut out = MqttOutlet::new(
        testing::connector(&unique_name("out")),
        Template::parse(&topic).unwrap(),
    )
    .qos(QoS::AtMostOnce)
    .format(databay_component::broker::Format::Text);
    out.push(&records(&[json!("on"), json!(1)]), &update())
        .await
        .unwrap();
    let payloads: Vec<String> = received(&sub, 2)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(payloads, ["on", "1"]);
}

#[tokio::test]
async fn a_record_without_a_topic_publishes_nothing() {
    let base = unique_name("out_bad");
    let sub = subscriber(&format!("{base}/#")).await;
    let mut out = MqttOutlet::new(
        testing::connector(&unique_name("out")),
        Template::parse(&format!("{base}/{{/room}}")).unwrap(),
    );
    let e = out
        .push(
            &records(&[json!({"room": "hall"}), json!({"room": "+"})]),
            &update(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("record 1: topic `"), "{e}");
    assert!(e.contains("has a wildcard"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sub.take(10).is_empty());
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
    let mut out = MqttOutlet::new(connector, Template::parse("a").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to MQTT broker at 127.0.0.1:1 as client `databay-test-down`"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:1") && !e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let topic = unique_name("out_tester");
    let sub = subscriber(&topic).await;
    databay_core::testing::OutletTester::new(|| {
        MqttOutlet::new(
            testing::connector(&unique_name("out")),
            Template::parse(&topic).unwrap(),
        )
    })
    .run()
    .await
    .unwrap();
    assert_eq!(
        received(&sub, 12).await.len(),
        12,
        "two pushes of six records"
    );
}

#[tokio::test]
async fn tls_is_spoken_when_asked_for() {
    use tokio::io::AsyncReadExt;
    // A listener that records the first byte a client sends: 0x16 opens a
    // TLS handshake record, 0x10 a plain MQTT CONNECT.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        byte[0]
    });
    let connector = ConnectionOptions {
        host: Some("localhost".into()),
        port: Some(port),
        username: Some("app".into()),
        password: Some(Secret::new("s3cret".into())),
        tls: Some(databay_component::mqtt::TlsOptions::default()),
        timeout: Some(Duration::from_secs(1)),
        ..ConnectionOptions::default()
    }
    .connector("databay-test-tls")
    .unwrap();
    let mut out = MqttOutlet::new(connector, Template::parse("a").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to MQTT broker at localhost:{port}"
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
async fn a_link_counts_the_bytes_of_the_payloads_published() {
    use databay_core::Link;
    use databay_core::testing::StaticInlet;
    let topic = unique_name("out_bytes");
    let sub = subscriber(&topic).await;
    let link = Link::builder("mqtt_out_bytes")
        .inlet(StaticInlet::values([json!({"id": 1}), json!("ab")]))
        .outlet(MqttOutlet::new(
            testing::connector(&unique_name("out")),
            Template::parse(&topic).unwrap(),
        ))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(received(&sub, 2).await.len(), 2);
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_broker_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    use databay_core::Link;
    let topic = unique_name("out_outage");
    let sub = subscriber(&topic).await;
    let (proxy, connector) = databay_component::mqtt::testing::proxied(&unique_name("out")).await;
    let link = Link::builder("mqtt_outage")
        .inlet(Sequence::default())
        .outlet(MqttOutlet::new(connector, Template::parse(&topic).unwrap()))
        .outlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(!down.is_empty());
    // QoS 1: a message of the failed push may arrive as well as its
    // retry (at least once); every number arrives, in order.
    let mut got: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < DELIVERED as usize {
        assert!(tokio::time::Instant::now() < deadline, "only {got:?}");
        for a in sub.take(100) {
            let v: Value = serde_json::from_slice(&a.publish.payload).unwrap();
            let n = v["n"].as_u64().unwrap();
            if got.last() != Some(&n) {
                got.push(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, (0..DELIVERED).collect::<Vec<_>>(), "{down}");
}

/// A broker of the test's own that takes one login: a wrong password
/// fails the start and the push, naming the broker and the refusal but
/// not the password; the right one publishes.
#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let broker = testing::broker_with_login("app", "r1ght-pw").await;
    let topic = unique_name("out_auth");
    let mut refused = MqttOutlet::new(
        testing::login_connector(&broker, &unique_name("out_auth"), "app", "wr0ng-pw"),
        Template::parse(&topic).unwrap(),
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
    let e = refused
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refused the login") && !e.contains("wr0ng-pw"),
        "{e}"
    );

    let sub = testing::login_connector(&broker, &unique_name("sub"), "app", "r1ght-pw")
        .connect(false, 10)
        .await
        .unwrap_or_else(|e| panic!("subscribing with the right password: {e}"));
    sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let mut out = MqttOutlet::new(
        testing::login_connector(&broker, &unique_name("out_auth"), "app", "r1ght-pw"),
        Template::parse(&topic).unwrap(),
    );
    out.on_start().await.unwrap();
    out.push(&records(&[json!({"n": 1})]), &update())
        .await
        .unwrap();
    assert_eq!(received(&sub, 1).await, [(topic, "{\"n\":1}".to_owned())]);
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
    let mut out = MqttOutlet::new(connector, Template::parse("a").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "cannot connect to MQTT broker at 127.0.0.1:{} as client `databay-test-silent`: no answer within 1s",
            silent.port()
        )
    );
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
    let mut out = MqttOutlet::new(connector, Template::parse("a").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to MQTT broker at 127.0.0.1:{} as client `databay-test-garbage`: ",
            garbage.port()
        )),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}
