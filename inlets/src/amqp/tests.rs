//! Tests of [`AmqpInlet`] against the real broker (RabbitMQ, see
//! `databay_component::amqp::testing`), each on a queue of its own:
//! round trips through the `amqp` outlet, acknowledgement after commit,
//! requeue on rollback, bad messages and an unreachable broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use databay_component::Secret;
use databay_component::amqp::ConnectionOptions;
use databay_component::amqp::testing::{self, TestQueue};
use databay_component::broker::{Format, Template};
use databay_core::testing::CollectOutlet;
use databay_core::{BoxError, Inlet, Link, Outlet, Record, Update, async_trait};
use databay_outlets::amqp::AmqpOutlet;
use serde_json::{Value, json};

use super::{AmqpInlet, REDELIVERED_META, ROUTING_KEY_META};

async fn publish(queue: &str, format: Format, values: &[Value]) {
    let mut outlet =
        AmqpOutlet::new(testing::connector(), "", Template::parse(queue).unwrap()).format(format);
    let records: Vec<Record> = values.iter().cloned().map(Record::new).collect();
    outlet
        .push(&records, &Update::new(["w"], 0))
        .await
        .unwrap_or_else(|e| panic!("publishing to {queue}: {e}"));
    outlet.on_shutdown().await.unwrap();
}

fn inlet(queue: &TestQueue) -> AmqpInlet {
    AmqpInlet::new(testing::connector(), queue.name.as_str(), "databay-test")
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

/// Transfers until one fails; its error.
async fn transfer_until_error(link: &Link) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match link.transfer().await {
            Err(e) => return e.to_string(),
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no failure within 5s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_round_trip_is_acknowledged_after_the_commit() {
    let queue = TestQueue::declare("in_trip").await;
    publish(
        &queue.name,
        Format::Json,
        &[json!({"id": 1}), json!({"id": 2})],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("amqp_trip")
        .inlet(inlet(&queue))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    transfer_until(&link, &out, 2).await;
    assert_eq!(out.payloads(), [json!({"id": 1}), json!({"id": 2})]);
    let record = &out.records()[0];
    assert_eq!(record.meta(ROUTING_KEY_META), Some(&json!(queue.name)));
    assert_eq!(record.meta(REDELIVERED_META), Some(&json!(false)));
    // Acknowledged: after the inlet stops nothing goes back to the queue.
    assert!(link.shutdown().await.is_empty());
    assert_eq!(queue.ready().await, 0);
}

#[tokio::test]
async fn a_failed_push_requeues_and_the_messages_come_back_redelivered() {
    let queue = TestQueue::declare("in_requeue").await;
    publish(&queue.name, Format::Json, &[json!("a"), json!("b")]).await;
    let flaky = Flaky::failing(1);
    let link = Link::builder("amqp_requeue")
        .inlet(inlet(&queue))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let e = transfer_until_error(&link).await;
    assert!(e.contains("disk full"), "{e}");
    transfer_until(&link, &flaky.out, 2).await;
    let mut got: Vec<String> = flaky
        .out
        .payloads()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b"]);
    // "a" was in the failed push (it is delivered first); "b" may not
    // have reached the consumer by then, so only "a" is surely redelivered.
    assert!(
        flaky
            .out
            .records()
            .iter()
            .filter(|r| r.payload == json!("a"))
            .all(|r| r.meta(REDELIVERED_META) == Some(&json!(true))),
        "the broker marks it redelivered"
    );
    assert!(link.shutdown().await.is_empty());
    assert_eq!(queue.ready().await, 0);
}

#[tokio::test]
async fn what_was_not_committed_goes_back_to_the_queue_on_shutdown() {
    let queue = TestQueue::declare("in_shutdown").await;
    publish(&queue.name, Format::Json, &[json!(1)]).await;
    let mut inlet = inlet(&queue);
    inlet.on_start().await.unwrap();
    let update = Update::new(["s"], 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while inlet.pull(&update).await.unwrap().records().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message within 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    inlet.on_shutdown().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while queue.ready().await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not requeued within 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bad_message_is_named_and_rejected_and_the_rest_comes_next() {
    let queue = TestQueue::declare("in_bad").await;
    publish(
        &queue.name,
        Format::Text,
        &[json!("1"), json!("{oops"), json!("3")],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("amqp_bad")
        .inlet(inlet(&queue))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let e = transfer_until_error(&link).await;
    assert!(
        e.contains(&format!("queue `{}`, delivery ", queue.name)) && e.contains("not JSON"),
        "{e}"
    );
    transfer_until(&link, &out, 2).await;
    let mut got: Vec<i64> = out.payloads().iter().filter_map(Value::as_i64).collect();
    got.sort();
    assert_eq!(got, [1, 3]);
    assert!(link.shutdown().await.is_empty());
    assert_eq!(queue.ready().await, 0, "the bad message is not requeued");
}

#[tokio::test]
async fn a_missing_queue_fails_the_start_naming_it() {
    let _ = testing::connection().await;
    let name = testing::unique_name("in_noqueue");
    let mut inlet = AmqpInlet::new(testing::connector(), name.as_str(), "t");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains(&format!("consuming queue `{name}`")), "{e}");
    assert!(e.contains("NOT_FOUND"), "{e}");
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
    let mut inlet = AmqpInlet::new(connector, "q", "t");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to AMQP broker at 127.0.0.1:1/ as `app`"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = inlet
        .pull(&Update::new(["t"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:1/") && !e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_message_bodies_taken() {
    let queue = TestQueue::declare("in_bytes").await;
    publish(&queue.name, Format::Json, &[json!({"id": 1}), json!("ab")]).await;
    let out = CollectOutlet::new();
    let link = Link::builder("amqp_bytes")
        .inlet(inlet(&queue))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    transfer_until(&link, &out, 2).await;
    assert_eq!(link.node_stats()[0].bytes, Some(8 + 4));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_broker_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let queue = TestQueue::declare("in_outage").await;
    publish(&queue.name, Format::Json, &[json!(1), json!(2), json!(3)]).await;
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("amqp_outage")
        .inlet(AmqpInlet::new(
            connector,
            queue.name.as_str(),
            "databay-test",
        ))
        .outlet(out.clone())
        .inlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        publish(&queue.name, Format::Json, &[json!(4), json!(5)]).await;
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
    assert_eq!(queue.ready().await, 0);
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
    let mut inlet = AmqpInlet::new(connector, "q", "t");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let queue = TestQueue::declare("in_auth").await;
    let connector = ConnectionOptions {
        url: Some(Secret::new(
            "amqp://guest:wr0ng-pw@127.0.0.1:5672/%2f".into(),
        )),
        timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = AmqpInlet::new(connector, queue.name.as_str(), "t");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("as `guest`"), "{e}");
    assert!(!e.contains("wr0ng"), "{e}");
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
    let mut inlet = AmqpInlet::new(connector, "q", "t");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}/", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
