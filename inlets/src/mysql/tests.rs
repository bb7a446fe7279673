//! Tests of [`MysqlInlet`] against the real MariaDB (or MySQL) server (see
//! `databay_component::mysql::testing`), each on a table of its own.

use std::time::Duration;

use databay_component::Secret;
use databay_component::mysql::mysql_async::prelude::Queryable;
use databay_component::mysql::testing::{self, TestTable};
use databay_component::mysql::{ConnectionOptions, Connector};
use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use serde_json::{Value, json};

use super::{Cursor, MysqlInlet, MysqlInletError};

fn update(index: u64) -> Update {
    Update::new(["mysql"], index)
}

fn values(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

#[tokio::test]
async fn rows_become_objects_with_json_types() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(
        &mut conn,
        "in_types",
        "id BIGINT PRIMARY KEY, small TINYINT, flag BOOLEAN, big BIGINT UNSIGNED, \
         f FLOAT, d DOUBLE, price DECIMAL(12,4), note VARCHAR(50), kind ENUM('a','b'), \
         day DATE, at DATETIME(3), t TIME, bits BIT(8), doc JSON, missing INT",
    )
    .await;
    conn.query_drop(format!(
        "INSERT INTO `{}` VALUES (1, -5, TRUE, 18446744073709551615, 0.1, 2.5, 12.3400, \
         'héllo', 'b', '2024-05-01', '2024-05-01 12:30:00.250', '-26:03:04', b'00000101', \
         '{{\"a\": [1, 2]}}', NULL)",
        table.name
    ))
    .await
    .unwrap();
    let mut inlet = MysqlInlet::new(
        testing::connector(),
        format!("SELECT * FROM `{}`", table.name),
    );
    inlet.on_start().await.unwrap();
    let pull = inlet.pull(&update(0)).await.unwrap();
    let got = values(&pull);
    assert_eq!(got.len(), 1);
    let row = &got[0];
    let want = json!({
        "id": 1, "small": -5, "flag": 1, "big": u64::MAX, "f": 0.1, "d": 2.5,
        "note": "héllo", "kind": "b", "day": "2024-05-01", "at": "2024-05-01T12:30:00.250000",
        "t": "-26:03:04", "bits": 5, "missing": null
    });
    for (key, value) in want.as_object().unwrap() {
        assert_eq!(row.get(key), Some(value), "column {key}: {row}");
    }
    // Exact decimal, and MariaDB's JSON is text (MySQL's is parsed).
    assert_eq!(row["price"].to_string(), "12.3400");
    assert!(
        row["doc"] == json!({"a": [1, 2]}) || row["doc"] == json!("{\"a\": [1, 2]}"),
        "{row}"
    );
    inlet.on_shutdown().await.unwrap();
}

/// An outlet that fails while `failing` is set.
#[derive(Clone, Default)]
struct Flaky {
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    inner: CollectOutlet,
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the outlet is down".into());
        }
        self.inner.push(records, update).await
    }
}

#[tokio::test]
async fn the_cursor_moves_only_when_a_transfer_is_committed() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_cursor", "id INT PRIMARY KEY, v TEXT").await;
    conn.query_drop(format!(
        "INSERT INTO `{}` VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        table.name
    ))
    .await
    .unwrap();
    let inlet = MysqlInlet::new(
        testing::connector(),
        format!(
            "SELECT id, v FROM `{}` WHERE id > ? ORDER BY id LIMIT 2",
            table.name
        ),
    )
    .cursor(Cursor {
        column: "id".into(),
        start: json!(0),
    });
    let outlet = Flaky::default();
    let link = Link::builder("mysql_cursor")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    outlet
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(link.transfer().await.is_err());
    outlet
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // The failed transfer's rows come again.
    assert_eq!(link.transfer().await.unwrap().records_in, 2);
    assert_eq!(link.transfer().await.unwrap().records_in, 1);
    assert_eq!(link.transfer().await.unwrap().records_in, 0);
    conn.query_drop(format!("INSERT INTO `{}` VALUES (4, 'd')", table.name))
        .await
        .unwrap();
    assert_eq!(link.transfer().await.unwrap().records_in, 1);
    let ids: Vec<Value> = outlet
        .inner
        .payloads()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3), json!(4)]);
    assert!(link.shutdown().await.is_empty());
}

/// The committed cursor is the resume state: a link restored from a
/// snapshot carries on after the last committed row.
#[tokio::test]
async fn the_committed_cursor_is_the_resume_state() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_resume", "id INT PRIMARY KEY").await;
    conn.query_drop(format!("INSERT INTO `{}` VALUES (1), (2), (3)", table.name))
        .await
        .unwrap();
    let make = || {
        MysqlInlet::new(
            testing::connector(),
            format!(
                "SELECT id FROM `{}` WHERE id > ? ORDER BY id LIMIT 2",
                table.name
            ),
        )
        .cursor(Cursor {
            column: "id".into(),
            start: json!(0),
        })
    };
    let mut first = make();
    first.on_start().await.unwrap();
    assert_eq!(first.snapshot(), Some(json!({"cursor": 0})));
    first.pull(&update(0)).await.unwrap();
    first.commit(&update(0)).await.unwrap();
    let state = first.snapshot().unwrap();
    assert_eq!(state, json!({"cursor": 2}));
    first.on_shutdown().await.unwrap();

    let mut second = make();
    second.restore(state).await.unwrap();
    second.on_start().await.unwrap();
    let pull = second.pull(&update(0)).await.unwrap();
    assert_eq!(values(&pull), [json!({"id": 3})]);
    second.on_shutdown().await.unwrap();
    let e = make().restore(json!({})).await.unwrap_err();
    assert!(e.to_string().contains("resume state must be"), "{e}");
}

#[tokio::test]
async fn a_query_that_does_not_fit_fails_the_start_naming_why() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_bad", "n INT").await;
    let start = |query: String, cursor: bool| async move {
        let mut inlet = MysqlInlet::new(testing::connector(), query);
        if cursor {
            inlet = inlet.cursor(Cursor {
                column: "id".into(),
                start: json!(0),
            });
        }
        inlet.on_start().await.unwrap_err().to_string()
    };
    let e = start(format!("SELECT n FROM `{}` WHERE n > ?", table.name), true).await;
    assert!(
        e.ends_with("query: cursor column `id` is not in the result (its columns: `n`)"),
        "{e}"
    );
    let e = start(format!("SELECT n FROM `{}`", table.name), true).await;
    assert!(e.contains("exactly one `?`"), "{e}");
    let e = start(format!("SELECT n FROM `{}` WHERE n > ?", table.name), false).await;
    assert!(e.contains("no `cursor`"), "{e}");
    let e = start("SELECT * FROM no_such_table_here".into(), false).await;
    assert!(
        e.starts_with("MySQL at ")
            && e.contains("preparing the query")
            && e.contains("(code 1146)"),
        "{e}"
    );
    let blob = TestTable::create(&mut conn, "in_blob", "b BLOB").await;
    conn.query_drop(format!("INSERT INTO `{}` VALUES (x'00ff')", blob.name))
        .await
        .unwrap();
    let mut inlet = MysqlInlet::new(
        testing::connector(),
        format!("SELECT b FROM `{}`", blob.name),
    );
    inlet.on_start().await.unwrap();
    let e = inlet.pull(&update(0)).await.unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<MysqlInletError>(),
            Some(MysqlInletError::Query { .. })
        ) && e.to_string().contains("column `b` holds binary data"),
        "{e}"
    );
}

fn down(url: &str) -> Connector {
    ConnectionOptions {
        url: Some(Secret::new(url.into())),
        connect_timeout: Some(Duration::from_secs(2)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap()
}

#[tokio::test]
async fn a_server_that_is_down_or_a_refused_login_is_named_without_the_password() {
    let mut inlet = MysqlInlet::new(down("mysql://app:s3cret-pw@127.0.0.1:1/test"), "SELECT 1");
    assert!(!format!("{inlet:?}").contains("s3cret"));
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot reach MySQL at 127.0.0.1:1/test"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");

    let host = testing::url();
    let host = host
        .strip_prefix("mysql://")
        .and_then(|r| r.rsplit_once('@').map(|(_, h)| h).or(Some(r)))
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:3306")
        .to_owned();
    let mut inlet = MysqlInlet::new(
        down(&format!("mysql://nobody:wr0ng-pw@{host}/test")),
        "SELECT 1",
    );
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("refused the login of user `nobody`"), "{e}");
    assert!(!e.contains("wr0ng-pw"), "{e}");
}

#[tokio::test]
async fn passes_the_inlet_checks() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_tester", "n INT").await;
    conn.query_drop(format!("INSERT INTO `{}` VALUES (1), (2)", table.name))
        .await
        .unwrap();
    let query = format!("SELECT n FROM `{}`", table.name);
    InletTester::new(|| MysqlInlet::new(testing::connector(), query.clone()))
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_values_read() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_bytes", "id INT PRIMARY KEY, v TEXT").await;
    conn.query_drop(format!(
        "INSERT INTO `{}` VALUES (1, 'ab'), (2, NULL)",
        table.name
    ))
    .await
    .unwrap();
    let out = CollectOutlet::new();
    let link = Link::builder("mysql_bytes")
        .inlet(MysqlInlet::new(
            testing::connector(),
            format!("SELECT id, v FROM `{}` ORDER BY id", table.name),
        ))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2);
    // Two integers (8 bytes each), `ab` and a NULL (no bytes).
    assert_eq!(link.node_stats()[0].bytes, Some(8 + 2 + 8));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_outage", "id INT PRIMARY KEY").await;
    conn.query_drop(format!("INSERT INTO `{}` VALUES (1), (2), (3)", table.name))
        .await
        .unwrap();
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("mysql_outage")
        .inlet(
            MysqlInlet::new(
                connector,
                format!("SELECT id FROM `{}` WHERE id > ? ORDER BY id", table.name),
            )
            .cursor(Cursor {
                column: "id".into(),
                start: json!(0),
            }),
        )
        .outlet(out.clone())
        .inlet_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let name = table.name.clone();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async move {
        let mut conn = testing::conn().await;
        conn.query_drop(format!("INSERT INTO `{name}` VALUES (4), (5)"))
            .await
            .unwrap();
        2
    })
    .await
    .unwrap_or_default();
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let ids: Vec<Value> = out.payloads().iter().map(|p| p["id"].clone()).collect();
    assert_eq!(ids, (1..=5).map(|i| json!(i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "mysql://app:s3cret@127.0.0.1:{}/db",
            silent.port()
        ))),
        connect_timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = MysqlInlet::new(connector, "SELECT 1");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// A row whose cursor value is NULL cannot move the cursor: the pull
/// fails naming the column and how to keep such rows out; the cursor
/// stays, and once the row is gone the link goes on from there.
#[tokio::test]
async fn a_null_cursor_value_fails_the_pull_and_keeps_the_cursor() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "in_null", "id INT").await;
    conn.query_drop(format!("INSERT INTO `{}` VALUES (1), (NULL)", table.name))
        .await
        .unwrap();
    let mut inlet = MysqlInlet::new(
        testing::connector(),
        format!(
            "SELECT id FROM `{}` WHERE id > ? OR id IS NULL ORDER BY id IS NULL, id",
            table.name
        ),
    )
    .cursor(Cursor {
        column: "id".into(),
        start: json!(0),
    });
    inlet.on_start().await.unwrap();
    let e = inlet.pull(&update(0)).await.unwrap_err().to_string();
    assert!(e.contains("cursor column `id` is null"), "{e}");
    assert_eq!(inlet.position(), Some(&json!(0)));
    conn.query_drop(format!("DELETE FROM `{}` WHERE id IS NULL", table.name))
        .await
        .unwrap();
    let pull = inlet.pull(&update(1)).await.unwrap();
    assert_eq!(values(&pull), [json!({"id": 1})]);
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
            "mysql://app:s3cret@127.0.0.1:{}/db",
            garbage.port()
        ))),
        connect_timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = MysqlInlet::new(connector, "SELECT 1");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
