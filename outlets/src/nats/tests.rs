//! Tests of [`NatsOutlet`] against the real NATS server with JetStream
//! (see `databay_component::nats::testing`), each on subjects and streams
//! of its own.

use std::time::Duration;

use async_nats::jetstream;
use databay_component::Secret;
use databay_component::broker::Template;
use databay_component::nats::ConnectionOptions;
use databay_component::nats::testing::{self, unique_name};
use databay_core::{Outlet, Record, Update};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{NatsOutlet, NatsPublish};

fn update() -> Update {
    Update::new(["nats"], 0)
}

fn outlet(mode: NatsPublish, subject: &str) -> NatsOutlet {
    NatsOutlet::new(
        testing::connector(),
        mode,
        Template::parse(subject).unwrap(),
    )
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

#[tokio::test]
async fn core_messages_reach_a_subscriber_with_their_subjects() {
    let client = testing::client().await;
    let base = unique_name("out_core");
    let mut sub = client.subscribe(format!("{base}.>")).await.unwrap();
    client.flush().await.unwrap();
    let mut out = outlet(NatsPublish::Core, &format!("{base}.{{/region}}"));
    out.push(
        &records(&[
            json!({"region": "eu", "n": 1}),
            json!({"region": "us", "n": 2}),
        ]),
        &update(),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("a message within 5s")
            .expect("a message");
        let payload: Value = serde_json::from_slice(&m.payload).unwrap();
        got.push((m.subject.to_string(), payload["n"].as_i64().unwrap()));
    }
    assert_eq!(got, [(format!("{base}.eu"), 1), (format!("{base}.us"), 2)]);
}

#[tokio::test]
async fn jetstream_stores_every_message_before_the_push_returns() {
    let client = testing::client().await;
    let js = jetstream::new(client);
    let name = unique_name("out_js");
    let mut stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = outlet(NatsPublish::JetStream, &format!("{name}.orders"));
    out.push(&records(&[json!(1), json!(2), json!(3)]), &update())
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    let m = stream.get_raw_message(2).await.unwrap();
    assert_eq!(&m.payload[..], b"2");
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn a_subject_no_stream_captures_fails_the_push_naming_it() {
    let _ = testing::client().await;
    let subject = unique_name("out_nostream");
    let mut out = outlet(NatsPublish::JetStream, &subject);
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("NATS at 127.0.0.1:4222:"), "{e}");
    assert!(e.contains(&format!("`{subject}`")), "{e}");
    assert!(e.contains("no stream"), "{e}");
}

#[tokio::test]
async fn a_record_without_a_subject_publishes_nothing() {
    let client = testing::client().await;
    let base = unique_name("out_bad");
    let mut sub = client.subscribe(format!("{base}.>")).await.unwrap();
    client.flush().await.unwrap();
    let mut out = outlet(NatsPublish::Core, &format!("{base}.{{/region}}"));
    let e = out
        .push(
            &records(&[json!({"region": "eu"}), json!({"region": "a b"})]),
            &update(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("record 1: subject `"), "{e}");
    assert!(e.contains("contains whitespace"), "{e}");
    let nothing = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(nothing.is_err(), "a message was published: {nothing:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let connector = ConnectionOptions {
        url: Some(Secret::new("nats://app:s3cret@127.0.0.1:1".into())),
        timeout: Some(Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = NatsOutlet::new(connector, NatsPublish::Core, Template::parse("a").unwrap());
    let e = out.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to NATS at 127.0.0.1:1"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_token_the_server_does_not_ask_for_is_not_shown() {
    let _ = testing::client().await;
    // The test server takes anyone; a token it does not expect is still
    // sent and must stay out of whatever is reported.
    let connector = ConnectionOptions {
        url: Some(Secret::new(testing::url())),
        token: Some(Secret::new("t0k3n-not-shown".into())),
        timeout: Some(Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    assert!(!format!("{connector:?}").contains("t0k3n"));
    let mut out = NatsOutlet::new(
        connector,
        NatsPublish::JetStream,
        Template::parse("nowhere.x").unwrap(),
    );
    if let Err(e) = out.on_start().await {
        assert!(!e.to_string().contains("t0k3n"), "{e}");
    }
    // No stream captures the subject: the push fails, and says so without the token.
    let e = out
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("`nowhere.x`") && !e.contains("t0k3n"), "{e}");
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let client = testing::client().await;
    let js = jetstream::new(client);
    let name = unique_name("out_tester");
    let mut stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let subject = format!("{name}.all");
    databay_core::testing::OutletTester::new(|| outlet(NatsPublish::JetStream, &subject))
        .run()
        .await
        .unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        12,
        "two pushes of six records"
    );
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_payloads_published() {
    use databay_core::Link;
    use databay_core::testing::StaticInlet;
    let client = testing::client().await;
    let js = jetstream::new(client);
    let name = unique_name("out_js_bytes");
    let mut stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let link = Link::builder("nats_out_bytes")
        .inlet(StaticInlet::values([json!({"id": 1}), json!("ab")]))
        .outlet(outlet(NatsPublish::JetStream, &format!("{name}.x")))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    use databay_core::Link;
    let js = jetstream::new(testing::client().await);
    let name = unique_name("out_outage");
    let mut stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let (proxy, connector) = testing::proxied().await;
    let link = Link::builder("nats_outage")
        .inlet(Sequence::default())
        .outlet(NatsOutlet::new(
            connector,
            NatsPublish::JetStream,
            Template::parse(&format!("{name}.n")).unwrap(),
        ))
        .outlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(!down.is_empty());
    // A message published during the outage may have been stored as well
    // as its retry (at least once): every number is there, in order.
    let stored = stream.info().await.unwrap().state.messages;
    let mut got = Vec::new();
    for seq in 1..=stored {
        let m = stream.get_raw_message(seq).await.unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        let n = v["n"].as_u64().unwrap();
        if got.last() != Some(&n) {
            got.push(n);
        }
    }
    assert_eq!(got, (0..DELIVERED).collect::<Vec<_>>(), "{down}");
    js.delete_stream(&name).await.unwrap();
}

/// A core publish during the outage fails rather than vanishing: every
/// number reaches a subscriber on the server itself, in order (a message
/// of a failed push may come twice: at least once).
#[tokio::test]
async fn a_core_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back()
{
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    use databay_core::Link;
    let client = testing::client().await;
    let subject = unique_name("out_core_outage");
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let (proxy, connector) = testing::proxied().await;
    let link = Link::builder("nats_core_outage")
        .inlet(Sequence::default())
        .outlet(NatsOutlet::new(
            connector,
            NatsPublish::Core,
            Template::parse(&subject).unwrap(),
        ))
        .outlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let mut got = Vec::new();
    while got.last() != Some(&(DELIVERED - 1)) {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {got:?} reached the subscriber ({down})"))
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        let n = v["n"].as_u64().unwrap();
        if got.last() != Some(&n) {
            got.push(n);
        }
    }
    assert_eq!(got, (0..DELIVERED).collect::<Vec<_>>(), "{down}");
}

/// A server of the test's own that takes one login: a wrong password
/// fails the start and the push, naming the server and the refusal but
/// not the password; the right one publishes.
#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let server = testing::server_with_login("app", "r1ght-pw").await;
    let subject = unique_name("out_auth");
    let mut refused = NatsOutlet::new(
        testing::login_connector(&server, "app", "wr0ng-pw"),
        NatsPublish::Core,
        Template::parse(&subject).unwrap(),
    );
    let want = format!("cannot connect to NATS at 127.0.0.1:{}: ", server.port());
    for e in [
        refused.on_start().await.unwrap_err().to_string(),
        refused
            .push(&records(&[json!(1)]), &update())
            .await
            .unwrap_err()
            .to_string(),
    ] {
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains("authorization violation"), "{e}");
        assert!(!e.contains("wr0ng-pw") && !e.contains("r1ght-pw"), "{e}");
    }

    let client = testing::login_connector(&server, "app", "r1ght-pw")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("subscribing with the right password: {e}"));
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let mut out = NatsOutlet::new(
        testing::login_connector(&server, "app", "r1ght-pw"),
        NatsPublish::Core,
        Template::parse(&subject).unwrap(),
    );
    out.on_start().await.unwrap();
    out.push(&records(&[json!({"n": 1})]), &update())
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("the message within 5s")
        .unwrap();
    assert_eq!(&m.payload[..], b"{\"n\":1}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "nats://app:s3cret@127.0.0.1:{}",
            silent.port()
        ))),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = NatsOutlet::new(connector, NatsPublish::Core, Template::parse("x").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to NATS at 127.0.0.1:{}",
            silent.port()
        )),
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
            "nats://app:s3cret@127.0.0.1:{}",
            garbage.port()
        ))),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut out = NatsOutlet::new(connector, NatsPublish::Core, Template::parse("x").unwrap());
    let e = tokio::time::timeout(Duration::from_secs(20), out.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to NATS at 127.0.0.1:{}",
            garbage.port()
        )),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}
