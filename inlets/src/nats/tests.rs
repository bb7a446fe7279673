//! Tests of [`NatsInlet`] against the real NATS server with JetStream
//! (see `databay_component::nats::testing`), each on subjects, streams
//! and consumers of its own: round trips through the `nats` outlet,
//! acknowledgement after commit, the bounded core queue, bad messages and
//! an unreachable server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use databay_component::Secret;
use databay_component::broker::Template;
use databay_component::nats::ConnectionOptions;
use databay_component::nats::testing::{self, unique_name};
use databay_core::testing::CollectOutlet;
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use databay_outlets::nats::{NatsOutlet, NatsPublish};
use serde_json::{Value, json};

use super::{NatsInlet, NatsRead, SEQUENCE_META, SUBJECT_META};

async fn publish(mode: NatsPublish, subject: &str, values: &[Value]) {
    let mut outlet = NatsOutlet::new(
        testing::connector(),
        mode,
        Template::parse(subject).unwrap(),
    );
    let records: Vec<Record> = values.iter().cloned().map(Record::new).collect();
    outlet
        .push(&records, &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("publishing to {subject}: {e}"));
}

/// A stream capturing `<name>.>`, deleted when dropped.
struct TestStream {
    js: jetstream::Context,
    name: String,
}

impl TestStream {
    async fn create(tag: &str) -> TestStream {
        let js = jetstream::new(testing::client().await);
        let name = unique_name(tag);
        js.create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("creating stream {name}: {e}"));
        TestStream { js, name }
    }

    fn inlet(&self) -> NatsInlet {
        NatsInlet::new(
            testing::connector(),
            NatsRead::JetStream {
                stream: self.name.clone(),
                durable: "d".into(),
                ack_wait: Duration::from_secs(30),
            },
            "",
        )
    }

    /// Messages the consumer `d` delivered and no one acknowledged.
    async fn ack_pending(&self) -> usize {
        let mut stream = self.js.get_stream(&self.name).await.unwrap();
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer("d").await.unwrap();
        let _ = &mut stream;
        consumer.info().await.unwrap().num_ack_pending
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot drive its own
        // client while it waits here: a thread and a client of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(client) = testing::connector().connect().await {
                        let _ = jetstream::new(client).delete_stream(&name).await;
                    }
                });
            }
        })
        .join();
    }
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

fn core(subject: &str, buffer: usize) -> NatsInlet {
    NatsInlet::new(
        testing::connector(),
        NatsRead::Subscribe {
            queue_group: None,
            buffer,
        },
        subject,
    )
}

/// Pulls until `n` records came (core messages arrive asynchronously).
async fn pull_n(inlet: &mut NatsInlet, update: &Update, n: usize) -> Vec<Record> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages within 5s",
            got.len()
        );
        match inlet.pull(update).await {
            Ok(Pull::Records(r)) => got.extend(r),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("pull: {e}"),
        }
    }
    got
}

#[tokio::test]
async fn a_jetstream_round_trip_is_acknowledged_after_the_commit() {
    let stream = TestStream::create("in_js").await;
    publish(
        NatsPublish::JetStream,
        &format!("{}.eu", stream.name),
        &[json!({"id": 1}), json!({"id": 2})],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("nats_js")
        .inlet(stream.inlet())
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!({"id": 1}), json!({"id": 2})]);
    let record = &out.records()[1];
    assert_eq!(
        record.meta(SUBJECT_META),
        Some(&json!(format!("{}.eu", stream.name)))
    );
    assert_eq!(record.meta(SEQUENCE_META), Some(&json!(2)));
    assert_eq!(
        stream.ack_pending().await,
        0,
        "committed messages are acknowledged"
    );
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2, "nothing is delivered twice");
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_failed_push_returns_the_messages_and_they_come_back() {
    let stream = TestStream::create("in_js_nak").await;
    publish(
        NatsPublish::JetStream,
        &format!("{}.x", stream.name),
        &[json!("a"), json!("b"), json!("c")],
    )
    .await;
    let flaky = Flaky::failing(1);
    let link = Link::builder("nats_nak")
        .inlet(stream.inlet().batch_size(2))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    assert!(link.transfer().await.is_err());
    assert!(flaky.out.is_empty());
    // Redelivered messages may come before or after "c": at-least-once
    // does not keep the order.
    for _ in 0..50 {
        if flaky.out.len() >= 3 {
            break;
        }
        link.transfer().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got: Vec<String> = flaky
        .out
        .payloads()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
    assert_eq!(stream.ack_pending().await, 0);
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_bad_jetstream_message_is_named_terminated_and_the_rest_comes_next() {
    let stream = TestStream::create("in_js_bad").await;
    let subject = format!("{}.bad", stream.name);
    let js = &stream.js;
    for payload in ["1", "{oops", "3"] {
        js.publish(subject.clone(), payload.as_bytes().to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let out = CollectOutlet::new();
    let link = Link::builder("nats_bad")
        .inlet(stream.inlet())
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("subject `{subject}`, stream sequence 2: not JSON")),
        "{e}"
    );
    // The returned messages come back, in any order.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?} within 5s",
            out.payloads()
        );
        link.transfer().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got: Vec<i64> = out.payloads().iter().filter_map(Value::as_i64).collect();
    got.sort();
    assert_eq!(got, [1, 3]);
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2, "the bad message is not delivered again");
    assert_eq!(stream.ack_pending().await, 0);
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_missing_stream_fails_the_start_naming_it() {
    let _ = testing::client().await;
    let name = unique_name("in_nostream");
    let mut inlet = NatsInlet::new(
        testing::connector(),
        NatsRead::JetStream {
            stream: name.clone(),
            durable: "d".into(),
            ack_wait: Duration::from_secs(30),
        },
        "",
    );
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains(&format!("opening stream `{name}`")), "{e}");
    assert!(e.contains("nats stream add"), "{e}");
}

#[tokio::test]
async fn a_core_round_trip_and_a_rollback_put_back_in_front() {
    let subject = unique_name("in_core");
    let flaky = Flaky::failing(1);
    let link = Link::builder("nats_core")
        .inlet(core(&format!("{subject}.>"), 100).batch_size(2))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    publish(
        NatsPublish::Core,
        &format!("{subject}.{{/k}}"),
        &[json!({"k": "a"}), json!({"k": "b"}), json!({"k": "c"})],
    )
    .await;
    // Wait for the messages to arrive in the queue.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match link.transfer().await {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no message within 5s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(flaky.out.is_empty());
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let subjects: Vec<Value> = flaky
        .out
        .records()
        .iter()
        .filter_map(|r| r.meta(SUBJECT_META).cloned())
        .collect();
    assert_eq!(
        subjects,
        ["a", "b", "c"].map(|k| json!(format!("{subject}.{k}")))
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_full_core_queue_drops_and_counts() {
    let subject = unique_name("in_drop");
    let mut inlet = core(&subject, 2);
    inlet.on_start().await.unwrap();
    publish(
        NatsPublish::Core,
        &subject,
        &[json!(1), json!(2), json!(3), json!(4), json!(5)],
    )
    .await;
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
    let got = pull_n(&mut inlet, &update, 2).await;
    assert_eq!(
        got.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert_eq!(inlet.dropped(), 3);
    inlet.commit(&update).await.unwrap();
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_core_message_is_named_and_dropped() {
    let subject = unique_name("in_core_bad");
    let mut inlet = core(&subject, 100);
    inlet.on_start().await.unwrap();
    let client = testing::client().await;
    client
        .publish(subject.clone(), "not json".into())
        .await
        .unwrap();
    client.publish(subject.clone(), "7".into()).await.unwrap();
    client.flush().await.unwrap();
    let update = Update::new(["bad"], 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let e = loop {
        match inlet.pull(&update).await {
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
        e.contains(&format!(
            "subject `{subject}`, message 1 received: not JSON"
        )),
        "{e}"
    );
    inlet.rollback(&update).await.unwrap();
    let update = Update::new(["bad"], 1);
    let got = pull_n(&mut inlet, &update, 1).await;
    assert_eq!(got[0].payload, json!(7));
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
    let mut inlet = NatsInlet::new(
        connector,
        NatsRead::Subscribe {
            queue_group: None,
            buffer: 10,
        },
        "a",
    );
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to NATS at 127.0.0.1:1"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn passes_the_inlet_checks() {
    let stream = TestStream::create("in_tester").await;
    // Two instances on one durable consumer, three pulls each, one message a pull.
    let values: Vec<Value> = (0..6).map(|i| json!({"n": i})).collect();
    publish(
        NatsPublish::JetStream,
        &format!("{}.t", stream.name),
        &values,
    )
    .await;
    databay_core::testing::InletTester::new(|| stream.inlet().batch_size(1))
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_payloads_taken() {
    let stream = TestStream::create("in_js_bytes").await;
    publish(
        NatsPublish::JetStream,
        &format!("{}.eu", stream.name),
        &[json!({"id": 1}), json!("ab")],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("nats_bytes")
        .inlet(stream.inlet())
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(link.node_stats()[0].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let stream = TestStream::create("in_outage").await;
    let subject = format!("{}.n", stream.name);
    publish(
        NatsPublish::JetStream,
        &subject,
        &[json!(1), json!(2), json!(3)],
    )
    .await;
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("nats_outage")
        .inlet(NatsInlet::new(
            connector,
            NatsRead::JetStream {
                stream: stream.name.clone(),
                durable: "d".into(),
                ack_wait: Duration::from_secs(30),
            },
            "",
        ))
        .outlet(out.clone())
        .inlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        publish(NatsPublish::JetStream, &subject, &[json!(4), json!(5)]).await;
        2
    })
    .await
    .unwrap_or_default();
    assert!(!down.is_empty());
    assert_eq!(
        out.payloads(),
        (1..=5).map(|n| json!(n)).collect::<Vec<_>>()
    );
    assert_eq!(stream.ack_pending().await, 0);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!("nats://127.0.0.1:{}", silent.port()))),
        token: Some(Secret::new("t0k3n".into())),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = NatsInlet::new(
        connector,
        NatsRead::Subscribe {
            queue_group: None,
            buffer: 10,
        },
        "x",
    );
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", silent.port())), "{e}");
    assert!(!e.contains("t0k3n"), "{e}");
}

/// Core NATS keeps nothing for a subscriber that is away: what is
/// published during the outage is not for the link (at most once). But
/// the client reconnects and subscribes again by itself, and what is
/// published after that reaches the link, with no restart of anything.
#[tokio::test]
async fn a_core_server_that_goes_away_mid_run_is_subscribed_to_again_when_it_is_back() {
    use crate::outage::transfer_until;
    use std::time::Instant;
    let subject = unique_name("in_core_outage");
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("nats_core_outage")
        .inlet(NatsInlet::new(
            connector,
            NatsRead::Subscribe {
                queue_group: None,
                buffer: 100,
            },
            subject.clone(),
        ))
        .outlet(out.clone())
        .inlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    publish(NatsPublish::Core, &subject, &[json!(1), json!(2), json!(3)]).await;
    transfer_until(&link, &out, 3, "before the outage").await;

    proxy.cut().await;
    // A pull while cut off has nothing new to give.
    let _ = link.transfer().await;
    proxy
        .restore()
        .await
        .unwrap_or_else(|e| panic!("restoring the proxy: {e}"));
    // Until the client has reconnected (with a backoff of its own) and
    // subscribed again, what is published is not for it: probes, until
    // one comes through.
    let client = testing::client().await;
    let probe = || out.payloads().iter().any(|p| p.get("probe").is_some());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "nothing reached the link 30s after the server came back"
        );
        client
            .publish(subject.clone(), "{\"probe\":true}".into())
            .await
            .unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = link.transfer().await {
            panic!("a transfer after the server came back failed: {e}");
        }
    }
    let n = out.len();
    publish(NatsPublish::Core, &subject, &[json!(4), json!(5)]).await;
    transfer_until(&link, &out, n + 2, "after the resubscription").await;
    let numbers: Vec<Value> = out
        .payloads()
        .into_iter()
        .filter(|p| p.get("probe").is_none())
        .collect();
    assert_eq!(numbers, (1..=5).map(|n| json!(n)).collect::<Vec<_>>());
    assert!(link.shutdown().await.is_empty());
}

/// A server of the test's own that takes one login: a wrong password
/// fails the start, naming the server and the refusal but not the
/// password, in either mode; the right one goes through to a round trip.
#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let server = testing::server_with_login("app", "r1ght-pw").await;
    let subject = unique_name("in_auth");
    for read in [
        NatsRead::Subscribe {
            queue_group: None,
            buffer: 10,
        },
        NatsRead::JetStream {
            stream: "S".into(),
            durable: "d".into(),
            ack_wait: Duration::from_secs(30),
        },
    ] {
        let mut refused = NatsInlet::new(
            testing::login_connector(&server, "app", "wr0ng-pw"),
            read,
            subject.clone(),
        );
        let e = refused.on_start().await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "cannot connect to NATS at 127.0.0.1:{}: ",
                server.port()
            )),
            "{e}"
        );
        assert!(e.contains("authorization violation"), "{e}");
        assert!(!e.contains("wr0ng-pw") && !e.contains("r1ght-pw"), "{e}");
    }

    let out = CollectOutlet::new();
    let link = Link::builder("nats_auth")
        .inlet(NatsInlet::new(
            testing::login_connector(&server, "app", "r1ght-pw"),
            NatsRead::Subscribe {
                queue_group: None,
                buffer: 10,
            },
            subject.clone(),
        ))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    let mut publisher = NatsOutlet::new(
        testing::login_connector(&server, "app", "r1ght-pw"),
        NatsPublish::Core,
        Template::parse(&subject).unwrap(),
    );
    publisher
        .push(&[Record::new(json!({"n": 1}))], &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("publishing with the right password: {e}"));
    crate::outage::transfer_until(&link, &out, 1, "with the right password").await;
    assert_eq!(out.payloads(), [json!({"n": 1})]);
    assert!(link.shutdown().await.is_empty());
}

/// A server that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_server_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!("nats://127.0.0.1:{}", garbage.port()))),
        token: Some(Secret::new("t0k3n".into())),
        timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = NatsInlet::new(
        connector,
        NatsRead::Subscribe {
            queue_group: None,
            buffer: 10,
        },
        "x",
    );
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("t0k3n"), "{e}");
}
