//! Tests of [`MysqlOutlet`] against the real MariaDB (or MySQL) server
//! (see `databay_component::mysql::testing`), each on a table of its own.

use databay_component::mysql::mysql_async::prelude::Queryable;
use databay_component::mysql::mysql_async::{Conn, Row};
use databay_component::mysql::row_to_json;
use databay_component::mysql::testing::{self, TestTable};
use databay_core::testing::{OutletTester, StaticInlet};
use databay_core::{Link, Outlet, Record, Rejected, Update};
use serde_json::{Value, json};

use super::{ConflictAction, Mapping, MysqlOutlet, OnConflict};

fn update() -> Update {
    Update::new(["mysql"], 0)
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

fn columns(pairs: &[(&str, &str)]) -> Mapping {
    Mapping::Columns(
        pairs
            .iter()
            .map(|(c, p)| ((*c).to_owned(), (*p).to_owned()))
            .collect(),
    )
}

async fn started(outlet: MysqlOutlet) -> MysqlOutlet {
    let mut outlet = outlet;
    if let Err(e) = outlet.on_start().await {
        panic!("on_start: {e}");
    }
    outlet
}

/// Every row of `table` as JSON, ordered by `order`.
async fn rows(conn: &mut Conn, table: &TestTable, order: &str) -> Vec<Value> {
    let rows: Vec<Row> = conn
        .exec(
            format!("SELECT * FROM `{}` ORDER BY {order}", table.name),
            (),
        )
        .await
        .unwrap_or_else(|e| panic!("select: {e}"));
    rows.iter()
        .map(|r| Value::Object(row_to_json(r).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_link_inserts_rows_in_batches_with_their_values() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(
        &mut conn,
        "out_insert",
        "id BIGINT PRIMARY KEY, amount DECIMAL(10,2), note TEXT, paid BOOLEAN, tags TEXT",
    )
    .await;
    let outlet = MysqlOutlet::new(
        testing::connector(),
        table.name.clone(),
        columns(&[
            ("id", "/id"),
            ("amount", "/amount"),
            ("note", "/note"),
            ("paid", "/paid"),
            ("tags", "/tags"),
        ]),
    )
    .batch_size(2);
    let amount: Value = serde_json::from_str("12.50").unwrap();
    let link = Link::builder("mysql_link")
        .inlet(StaticInlet::values([
            json!({"id": 1, "amount": amount, "note": "héllo", "paid": true, "tags": ["a", "b"]}),
            json!({"id": 2}),
            json!({"id": 3, "amount": 7, "paid": false}),
        ]))
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_out, 3);
    assert!(link.shutdown().await.is_empty());
    let got = rows(&mut conn, &table, "id").await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["amount"].to_string(), "12.50");
    assert_eq!(got[0]["note"], json!("héllo"));
    assert_eq!(got[0]["paid"], json!(1));
    assert_eq!(got[0]["tags"], json!("[\"a\",\"b\"]"));
    assert_eq!(got[1]["amount"], Value::Null);
    assert_eq!(got[2]["paid"], json!(0));
}

#[tokio::test]
async fn a_duplicate_or_bad_row_is_rejected_alone_and_the_rest_written() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(
        &mut conn,
        "out_reject",
        "id INT PRIMARY KEY, qty SMALLINT NOT NULL",
    )
    .await;
    let mut outlet = started(MysqlOutlet::new(
        testing::connector(),
        table.name.clone(),
        columns(&[("id", "/id"), ("qty", "/qty")]),
    ))
    .await;
    outlet
        .push(&records(&[json!({"id": 2, "qty": 1})]), &update())
        .await
        .unwrap();
    let batch = records(&[
        json!({"id": 1, "qty": 1}),
        json!({"id": 2, "qty": 2}),
        json!({"id": 3}),
        json!({"id": 4, "qty": 100000}),
        json!({"id": 5, "qty": 5}),
    ]);
    let e = outlet.push(&batch, &update()).await.unwrap_err();
    let Some(rejected) = e.downcast_ref::<Rejected>() else {
        panic!("not a reject: {e}");
    };
    let got: Vec<(usize, String)> = rejected
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect();
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "{e}"
    );
    let prefix = format!("record 1 for `{}`: Duplicate entry '2'", table.name);
    assert!(
        got[0].1.starts_with(&prefix) && got[0].1.ends_with("(code 1062)"),
        "{}",
        got[0].1
    );
    assert!(got[1].1.ends_with("(code 1048)"), "{}", got[1].1);
    assert!(got[2].1.ends_with("(code 1264)"), "{}", got[2].1);
    let ids: Vec<Value> = rows(&mut conn, &table, "id")
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(5)]);
}

#[tokio::test]
async fn on_conflict_updates_or_keeps_the_existing_row() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(
        &mut conn,
        "out_upsert",
        "id INT PRIMARY KEY, name TEXT, age INT",
    )
    .await;
    let mapping = columns(&[("id", "/id"), ("name", "/name"), ("age", "/age")]);
    let mut update_outlet = started(
        MysqlOutlet::new(testing::connector(), table.name.clone(), mapping.clone()).on_conflict(
            OnConflict {
                keys: vec!["id".into()],
                action: ConflictAction::Update,
            },
        ),
    )
    .await;
    let batch = records(&[
        json!({"id": 1, "name": "Ann", "age": 30}),
        json!({"id": 2, "name": "Bob", "age": 40}),
    ]);
    for _ in 0..2 {
        update_outlet.push(&batch, &update()).await.unwrap();
    }
    update_outlet
        .push(
            &records(&[json!({"id": 1, "name": "Ann B.", "age": 31})]),
            &update(),
        )
        .await
        .unwrap();
    let mut keep = started(
        MysqlOutlet::new(testing::connector(), table.name.clone(), mapping).on_conflict(
            OnConflict {
                keys: vec!["id".into()],
                action: ConflictAction::Nothing,
            },
        ),
    )
    .await;
    keep.push(
        &records(&[
            json!({"id": 2, "name": "Bobby", "age": 1}),
            json!({"id": 3, "name": "Cy"}),
        ]),
        &update(),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&mut conn, &table, "id").await,
        [
            json!({"id": 1, "name": "Ann B.", "age": 31}),
            json!({"id": 2, "name": "Bob", "age": 40}),
            json!({"id": 3, "name": "Cy", "age": null}),
        ]
    );
}

#[tokio::test]
async fn json_column_takes_the_whole_payload() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_json", "doc JSON").await;
    let mut outlet = started(MysqlOutlet::new(
        testing::connector(),
        table.name.clone(),
        Mapping::JsonColumn("doc".into()),
    ))
    .await;
    outlet
        .push(&records(&[json!({"a": [1, {"b": null}]})]), &update())
        .await
        .unwrap();
    let got = rows(&mut conn, &table, "doc").await;
    let doc = match &got[0]["doc"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(doc, json!({"a": [1, {"b": null}]}));
}

#[tokio::test]
async fn a_missing_table_or_column_fails_the_start_naming_it() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_missing", "id INT").await;
    let mut outlet = MysqlOutlet::new(
        testing::connector(),
        table.name.clone(),
        columns(&[("id", "/id"), ("nope", "/nope")]),
    );
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("checking table `{}`", table.name)) && e.contains("(code 1054)"),
        "{e}"
    );
    let mut outlet = MysqlOutlet::new(
        testing::connector(),
        "no_such_table_x",
        columns(&[("id", "/id")]),
    );
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("(code 1146)"), "{e}");
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_tester", "doc LONGTEXT").await;
    let name = table.name.clone();
    OutletTester::new(move || {
        MysqlOutlet::new(
            testing::connector(),
            name.clone(),
            Mapping::JsonColumn("doc".into()),
        )
    })
    .run()
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_rows_written_not_the_rejected() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_bytes", "id INT PRIMARY KEY, v TEXT").await;
    let link = Link::builder("mysql_bytes")
        .inlet(StaticInlet::values([
            json!({"id": 1, "v": "ab"}),
            json!({"id": 1, "v": "duplicate"}),
            json!({"id": 2}),
        ]))
        .outlet(MysqlOutlet::new(
            testing::connector(),
            table.name.clone(),
            columns(&[("id", "/id"), ("v", "/v")]),
        ))
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(rows(&mut conn, &table, "id").await.len(), 2);
    // Two integers (8 bytes each), `ab` and a NULL (no bytes).
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 2 + 8));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_outage", "n BIGINT PRIMARY KEY").await;
    let (proxy, connector) = testing::proxied().await;
    let link = Link::builder("mysql_outage")
        .inlet(Sequence::default())
        .outlet(MysqlOutlet::new(
            connector,
            table.name.clone(),
            columns(&[("n", "/n")]),
        ))
        .outlet_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let got: Vec<Value> = rows(&mut conn, &table, "n")
        .await
        .iter()
        .map(|r| r["n"].clone())
        .collect();
    assert_eq!(got, (0..DELIVERED).map(|n| json!(n)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refused_login_fails_the_start_without_showing_the_password() {
    let mut conn = testing::conn().await;
    let table = TestTable::create(&mut conn, "out_auth", "id INT").await;
    // The test server's root has no password: one given is refused.
    let connector = databay_component::mysql::ConnectionOptions {
        url: Some(databay_component::Secret::new(
            "mysql://root:wr0ng-pw@127.0.0.1:3306/test".into(),
        )),
        ..databay_component::mysql::ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MysqlOutlet::new(connector, table.name.clone(), columns(&[("id", "/id")]));
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:3306") && e.contains("root"), "{e}");
    assert!(!e.contains("wr0ng"), "{e}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let connector = databay_component::mysql::ConnectionOptions {
        url: Some(databay_component::Secret::new(
            "mysql://app:s3cret-pw@127.0.0.1:1/test".into(),
        )),
        connect_timeout: Some(std::time::Duration::from_secs(2)),
        ..databay_component::mysql::ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MysqlOutlet::new(connector, "t", columns(&[("id", "/id")]));
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot reach MySQL at 127.0.0.1:1/test"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = outlet
        .push(&records(&[json!({"id": 1})]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("127.0.0.1:1/test") && !e.contains("s3cret"),
        "{e}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = databay_component::mysql::ConnectionOptions {
        url: Some(databay_component::Secret::new(format!(
            "mysql://app:s3cret@127.0.0.1:{}/db",
            silent.port()
        ))),
        connect_timeout: Some(std::time::Duration::from_millis(300)),
        ..databay_component::mysql::ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MysqlOutlet::new(connector, "t", columns(&[("id", "/id")]));
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), outlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// A server that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_server_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = databay_component::mysql::ConnectionOptions {
        url: Some(databay_component::Secret::new(format!(
            "mysql://app:s3cret@127.0.0.1:{}/db",
            garbage.port()
        ))),
        connect_timeout: Some(std::time::Duration::from_millis(300)),
        ..databay_component::mysql::ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MysqlOutlet::new(connector, "t", columns(&[("id", "/id")]));
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), outlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
