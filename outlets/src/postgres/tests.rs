//! Tests of [`PostgresOutlet`] against the real PostgreSQL server (see
//! `databay_component::postgres::testing`), each in a table of its own.

use databay_component::Secret;
use databay_component::postgres::testing::{self, TestTable};
use databay_component::postgres::{ConnectionOptions, describe};
use databay_core::testing::StaticInlet;
use databay_core::{Link, Outlet, Record, Update};
use serde_json::{Value, json};
use tokio_postgres::Client;

use super::{ConflictAction, Mapping, OnConflict, PostgresOutlet, WriteMethod};

fn update() -> Update {
    Update::new(["pg"], 0)
}

fn columns(pairs: &[(&str, &str)]) -> Mapping {
    Mapping::Columns(
        pairs
            .iter()
            .map(|(c, p)| ((*c).to_owned(), (*p).to_owned()))
            .collect(),
    )
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

async fn started(outlet: PostgresOutlet) -> PostgresOutlet {
    let mut outlet = outlet;
    if let Err(e) = outlet.on_start().await {
        panic!("on_start: {e}");
    }
    outlet
}

/// Every row of `sql`, each as a JSON array of its columns read as text.
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

async fn count(client: &Client, table: &TestTable) -> i64 {
    let sql = format!("SELECT count(*) FROM \"{}\"", table.name);
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[tokio::test]
async fn a_link_writes_typed_rows_that_read_back() {
    for method in [WriteMethod::Insert, WriteMethod::Copy] {
        typed_rows_read_back(method).await;
    }
}

async fn typed_rows_read_back(method: WriteMethod) {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_link",
        "id bigint PRIMARY KEY, amount numeric NOT NULL, name text, paid boolean, \
         at timestamptz, day date, ref uuid, ratio double precision, small smallint, extra jsonb",
    )
    .await;
    let outlet = PostgresOutlet::new(
        testing::connector(),
        format!("public.{}", table.name),
        columns(&[
            ("id", "/id"),
            ("amount", "/amount"),
            ("name", "/customer/name"),
            ("paid", "/paid"),
            ("at", "/at"),
            ("day", "/day"),
            ("ref", "/ref"),
            ("ratio", "/ratio"),
            ("small", "/small"),
            ("extra", "/extra"),
        ]),
    )
    .method(method)
    .batch_size(2);
    let link = Link::builder("pg_link")
        .inlet(StaticInlet::values([
            json!({"id": 1, "amount": 12.5, "customer": {"name": "Ann"}, "paid": true,
                   "at": "2024-05-01T12:00:00+02:00", "day": "2024-05-01",
                   "ref": "67e55044-10b1-426f-9247-bb680e5fe0c8", "ratio": 0.25, "small": 7,
                   "extra": {"tags": ["a", "b"]}}),
            json!({"id": 2, "amount": "1234567890.123456789", "paid": false, "extra": [1, 2]}),
            json!({"id": 3, "amount": 0, "customer": {"name": 42}, "extra": null}),
        ]))
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_out, 3);
    assert!(link.shutdown().await.is_empty());

    let got = rows(
        &client,
        &format!(
            "SELECT id::text, amount::text, name, paid::text, \
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), day::text, ref::text, \
             ratio::text, small::text, extra::text FROM \"{}\" ORDER BY id",
            table.name
        ),
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![
                s("1"),
                s("12.5"),
                s("Ann"),
                s("true"),
                s("2024-05-01 10:00:00"),
                s("2024-05-01"),
                s("67e55044-10b1-426f-9247-bb680e5fe0c8"),
                s("0.25"),
                s("7"),
                s(r#"{"tags": ["a", "b"]}"#),
            ],
            vec![
                s("2"),
                s("1234567890.123456789"),
                None,
                s("false"),
                None,
                None,
                None,
                None,
                None,
                s("[1, 2]"),
            ],
            vec![
                s("3"),
                s("0"),
                s("42"),
                None,
                None,
                None,
                None,
                None,
                None,
                None
            ],
        ],
        "{method:?}"
    );
}

#[tokio::test]
async fn on_conflict_update_and_nothing() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "out_upsert", "id int PRIMARY KEY, amount int").await;
    let read = format!(
        "SELECT id::text, amount::text FROM \"{}\" ORDER BY id",
        table.name
    );
    let outlet = |action| {
        PostgresOutlet::new(
            testing::connector(),
            table.name.clone(),
            columns(&[("id", "/id"), ("amount", "/amount")]),
        )
        .on_conflict(OnConflict {
            keys: vec!["id".into()],
            action,
        })
    };
    let mut update_outlet = started(outlet(ConflictAction::Update)).await;
    update_outlet
        .push(
            &records(&[
                json!({"id": 1, "amount": 10}),
                json!({"id": 2, "amount": 20}),
            ]),
            &update(),
        )
        .await
        .unwrap();
    // The same key twice in one push: the last record wins.
    update_outlet
        .push(
            &records(&[
                json!({"id": 1, "amount": 11}),
                json!({"id": 3, "amount": 30}),
                json!({"id": 1, "amount": 12}),
            ]),
            &update(),
        )
        .await
        .unwrap();
    assert_eq!(
        rows(&client, &read).await,
        vec![
            vec![s("1"), s("12")],
            vec![s("2"), s("20")],
            vec![s("3"), s("30")]
        ]
    );

    let mut nothing = started(outlet(ConflictAction::Nothing)).await;
    nothing
        .push(
            &records(&[
                json!({"id": 2, "amount": 99}),
                json!({"id": 4, "amount": 40}),
            ]),
            &update(),
        )
        .await
        .unwrap();
    assert_eq!(
        rows(&client, &read).await,
        vec![
            vec![s("1"), s("12")],
            vec![s("2"), s("20")],
            vec![s("3"), s("30")],
            vec![s("4"), s("40")]
        ]
    );
}

#[tokio::test]
async fn json_column_takes_the_whole_payload() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "out_json", "n serial, doc jsonb NOT NULL").await;
    let mut outlet = started(PostgresOutlet::new(
        testing::connector(),
        table.name.clone(),
        Mapping::JsonColumn("doc".into()),
    ))
    .await;
    let docs = [
        json!({"id": 1, "nested": {"x": [1, "two", null]}}),
        json!("just text"),
        json!(3.5),
    ];
    outlet.push(&records(&docs), &update()).await.unwrap();
    let got = client
        .query(
            &format!("SELECT doc FROM \"{}\" ORDER BY n", table.name),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<Value> = got.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, docs);

    // A text column cannot take the payload: refused at start, naming it.
    let text = TestTable::create(&client, "out_json_text", "doc text").await;
    let mut outlet = PostgresOutlet::new(
        testing::connector(),
        text.name.clone(),
        Mapping::JsonColumn("doc".into()),
    );
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("column `doc`") && e.contains("json"), "{e}");
}

#[tokio::test]
async fn a_bad_record_is_rejected_naming_its_index_and_column_and_the_rest_is_written() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_bad",
        "id bigint NOT NULL, amount integer, note text",
    )
    .await;
    let mut outlet = started(PostgresOutlet::new(
        testing::connector(),
        table.name.clone(),
        columns(&[("id", "/id"), ("amount", "/amount"), ("note", "/note")]),
    ))
    .await;
    let cases = [
        (
            json!({"amount": 1}),
            "record 1, column `id`: the payload has no `/id` and the column is NOT NULL",
        ),
        (
            json!({"id": null}),
            "record 1, column `id`: `/id` is null and the column is NOT NULL",
        ),
        (
            json!({"id": "seven"}),
            "record 1, column `id`: expected an integer (bigint), found a string",
        ),
        (
            json!({"id": 2, "amount": 3_000_000_000_i64}),
            "record 1, column `amount`: 3000000000 is out of range for integer",
        ),
        (
            json!({"id": 2, "note": {"a": 1}}),
            "record 1, column `note`: expected a string, found an object (objects and \
             arrays go into json or jsonb columns)",
        ),
    ];
    let n = cases.len() as i64;
    for (bad, want) in cases {
        let batch = records(&[json!({"id": 1, "amount": 1}), bad]);
        let err = outlet.push(&batch, &update()).await.unwrap_err();
        let rejected = err
            .downcast_ref::<databay_core::Rejected>()
            .unwrap_or_else(|| panic!("not a reject: {err}"));
        let rejects: Vec<(usize, String)> = rejected
            .iter()
            .map(|r| (r.index, r.error.to_string()))
            .collect();
        assert_eq!(rejects, [(1, want.to_owned())]);
    }
    assert_eq!(
        count(&client, &table).await,
        n,
        "each push wrote its good record"
    );
    // A push whose every record is bad writes nothing and says so.
    let err = outlet
        .push(&records(&[json!({"id": "x"})]), &update())
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<databay_core::Rejected>()
            .map(|r| r.len()),
        Some(1)
    );
    assert_eq!(count(&client, &table).await, n);
}

#[tokio::test]
async fn nothing_is_committed_when_a_later_batch_fails() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_atomic",
        "id int PRIMARY KEY, amount int CHECK (amount > 0)",
    )
    .await;
    let mut outlet = started(
        PostgresOutlet::new(
            testing::connector(),
            table.name.clone(),
            columns(&[("id", "/id"), ("amount", "/amount")]),
        )
        .batch_size(2),
    )
    .await;
    // Two full batches would pass; the third statement breaks the CHECK.
    let batch: Vec<Value> = (1..=5)
        .map(|i| json!({"id": i, "amount": if i == 5 { -1 } else { i }}))
        .collect();
    let e = outlet
        .push(&records(&batch), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inserting records 4..5") && e.contains("check constraint"),
        "{e}"
    );
    assert!(e.contains("127.0.0.1:5432"), "{e}");
    assert_eq!(count(&client, &table).await, 0);
    // The outlet carries on with the next push.
    outlet.push(&records(&batch[..4]), &update()).await.unwrap();
    assert_eq!(count(&client, &table).await, 4);
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let connector = ConnectionOptions {
        url: Some(Secret::new(
            "postgresql://postgres:s3cret@127.0.0.1:1/test".into(),
        )),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = PostgresOutlet::new(connector, "t", Mapping::JsonColumn("doc".into()));
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("PostgreSQL at 127.0.0.1:1/test"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    // A push without a server fails the same way.
    let e = outlet
        .push(&records(&[json!(1)]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("127.0.0.1:1"), "{e}");
}

#[tokio::test]
async fn a_missing_table_or_column_or_unsupported_type_fails_at_start() {
    let client = testing::client().await;
    let mut outlet = PostgresOutlet::new(
        testing::connector(),
        testing::unique_table("missing"),
        Mapping::JsonColumn("doc".into()),
    );
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(
        e.contains("does not exist") && e.contains("databay_test_missing"),
        "{e}"
    );

    let table = TestTable::create(&client, "out_cols", "id int, ip inet").await;
    for (column, want) in [
        ("nope", "no such column"),
        ("ip", "type `inet` is not supported"),
    ] {
        let mut outlet = PostgresOutlet::new(
            testing::connector(),
            table.name.clone(),
            columns(&[("id", "/id"), (column, "/x")]),
        );
        let e = outlet.on_start().await.unwrap_err().to_string();
        assert!(
            e.contains(&format!("column `{column}`")) && e.contains(want),
            "{e}"
        );
    }
}

#[tokio::test]
async fn the_next_push_reconnects_after_the_connection_dropped() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "out_reconnect", "id int").await;
    let app = testing::unique_table("app");
    let connector = ConnectionOptions {
        url: Some(Secret::new(format!(
            "{}?application_name={app}",
            testing::url()
        ))),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = started(PostgresOutlet::new(
        connector,
        table.name.clone(),
        columns(&[("id", "/id")]),
    ))
    .await;
    outlet
        .push(&records(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // The push that finds the connection gone may fail naming it; the
    // one after reconnects. Either way nothing is lost or doubled.
    let batch = records(&[json!({"id": 2})]);
    if let Err(e) = outlet.push(&batch, &update()).await {
        assert!(e.to_string().contains("127.0.0.1:5432"), "{e}");
        outlet.push(&batch, &update()).await.unwrap();
    }
    assert_eq!(count(&client, &table).await, 2);
}

#[test]
fn inconsistent_settings_name_their_option() {
    let outlet = |mapping| PostgresOutlet::new(testing::connector(), "t", mapping);
    let option = |o: PostgresOutlet| o.check().unwrap_err().option;
    assert_eq!(option(outlet(columns(&[]))), "columns");
    assert_eq!(option(outlet(columns(&[("id", "id")]))), "columns");
    assert_eq!(
        option(outlet(Mapping::JsonColumn("d".into())).batch_size(0)),
        "batch_size"
    );
    assert_eq!(
        option(outlet(columns(&[("a", "/a"), ("b", "/b")])).batch_size(40_000)),
        "batch_size"
    );
    assert_eq!(
        option(outlet(columns(&[("a", "/a")])).on_conflict(OnConflict {
            keys: vec!["id".into()],
            action: ConflictAction::Update
        })),
        "on_conflict"
    );
    assert_eq!(
        option(PostgresOutlet::new(
            testing::connector(),
            "a.b.c",
            columns(&[("a", "/a")])
        )),
        "table"
    );
    assert_eq!(
        option(
            outlet(columns(&[("a", "/a")]))
                .method(WriteMethod::Copy)
                .on_conflict(OnConflict {
                    keys: vec!["a".into()],
                    action: ConflictAction::Nothing
                })
        ),
        "method"
    );
    // COPY has no statement parameters to run out of.
    assert!(
        outlet(columns(&[("a", "/a"), ("b", "/b")]))
            .method(WriteMethod::Copy)
            .batch_size(40_000)
            .check()
            .is_ok()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    // Accepts the TCP connection, then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(port),
        password: Some(Secret::new("s3cret".into())),
        connect_timeout: Some(std::time::Duration::from_millis(200)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = PostgresOutlet::new(connector, "t", Mapping::JsonColumn("doc".into()));
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}/postgres: no answer within 200ms"
        )
    );
    hold.abort();
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_committed_rows() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "out_bytes", "id bigint PRIMARY KEY, name text").await;
    let outlet = PostgresOutlet::new(
        testing::connector(),
        table.name.clone(),
        columns(&[("id", "/id"), ("name", "/name")]),
    );
    let link = Link::builder("pg_bytes")
        .inlet(StaticInlet::values([
            json!({"id": 1, "name": "ab"}),
            json!({"id": 2}),
        ]))
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    // Two bigints (8 bytes each), `ab` and a NULL (no bytes).
    assert_eq!(link.node_stats()[1].bytes, Some(8 + 2 + 8));
    // The same ids again: the transaction fails, nothing more is counted.
    link.transfer().await.unwrap_err();
    assert_eq!(count(&client, &table).await, 2);
    assert_eq!(link.node_stats()[1].bytes, Some(18));
    assert!(link.shutdown().await.is_empty());
}

// --- method = "copy" ---

fn copier(table: &TestTable, pairs: &[(&str, &str)]) -> PostgresOutlet {
    PostgresOutlet::new(testing::connector(), table.name.clone(), columns(pairs))
        .method(WriteMethod::Copy)
}

#[tokio::test]
async fn copy_writes_numerics_and_uuids_as_inserts_do() {
    let client = testing::client().await;
    let values = [
        json!("12.50"),
        json!("-0.0001"),
        serde_json::from_str::<Value>("1E+5").unwrap(),
        json!("1.5e-7"),
        json!(0),
        json!("-0.00"),
        json!("123456789.123456789"),
        json!(".5"),
        json!("NaN"),
        json!("-Infinity"),
        serde_json::from_str::<Value>("18446744073709551617").unwrap(),
    ];
    let batch: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"id": i, "n": v, "ref": format!("{{67E55044-10B1-426F-9247-BB680E5FE0C{i:X}}}")})
        })
        .collect();
    let mut got = Vec::new();
    for method in [WriteMethod::Insert, WriteMethod::Copy] {
        let table =
            TestTable::create(&client, "out_copy_numeric", "id int, n numeric, ref uuid").await;
        let mut outlet = started(
            PostgresOutlet::new(
                testing::connector(),
                table.name.clone(),
                columns(&[("id", "/id"), ("n", "/n"), ("ref", "/ref")]),
            )
            .method(method),
        )
        .await;
        outlet.push(&records(&batch), &update()).await.unwrap();
        got.push(
            rows(
                &client,
                &format!(
                    "SELECT n::text, ref::text FROM \"{}\" ORDER BY id",
                    table.name
                ),
            )
            .await,
        );
    }
    assert_eq!(
        got[0][0],
        [s("12.50"), s("67e55044-10b1-426f-9247-bb680e5fe0c0")]
    );
    assert_eq!(got[0][2][0], s("100000"));
    assert_eq!(got[0][10][0], s("18446744073709551617"));
    assert_eq!(got[1], got[0], "COPY stores what INSERT stores");
}

#[tokio::test]
async fn copy_rejects_what_cannot_be_converted_and_writes_the_rest() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_copy_bad",
        "id bigint NOT NULL, n numeric, note text",
    )
    .await;
    let mut outlet = started(copier(
        &table,
        &[("id", "/id"), ("n", "/n"), ("note", "/note")],
    ))
    .await;
    let batch = records(&[
        json!({"id": 1, "note": "kept"}),
        json!({"id": "seven"}),
        json!({"id": 3, "n": "1e200000"}),
        json!({"note": "no id"}),
        json!({"id": 5, "n": 2.5}),
    ]);
    let err = outlet.push(&batch, &update()).await.unwrap_err();
    let rejected = err
        .downcast_ref::<databay_core::Rejected>()
        .unwrap_or_else(|| panic!("not a reject: {err}"));
    let rejects: Vec<(usize, String)> = rejected
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect();
    assert_eq!(
        rejects,
        [
            (
                1,
                "record 1, column `id`: expected an integer (bigint), found a string".to_owned()
            ),
            (
                2,
                "record 2, column `n`: 1e200000 is out of range for numeric".to_owned()
            ),
            (
                3,
                "record 3, column `id`: the payload has no `/id` and the column is NOT NULL"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(
        rows(
            &client,
            &format!(
                "SELECT id::text, n::text, note FROM \"{}\" ORDER BY id",
                table.name
            )
        )
        .await,
        [vec![s("1"), None, s("kept")], vec![s("5"), s("2.5"), None]]
    );
}

#[tokio::test]
async fn a_row_the_server_refuses_fails_the_whole_copy_and_the_next_push_works() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_copy_refused",
        "id int PRIMARY KEY, name varchar(3)",
    )
    .await;
    let mut outlet = started(copier(&table, &[("id", "/id"), ("name", "/name")])).await;
    // Enough rows that the stream is sent in several pieces.
    let mut batch: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": i, "name": "ab"}))
        .collect();
    batch.push(json!({"id": 7, "name": "dup"}));
    let e = outlet
        .push(&records(&batch), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("copying 20001 rows into") && e.contains("duplicate key"),
        "{e}"
    );
    assert!(e.contains("127.0.0.1:5432"), "{e}");
    assert_eq!(
        count(&client, &table).await,
        0,
        "nothing of the push is written"
    );
    let e = outlet
        .push(&records(&[json!({"id": 1, "name": "toolong"})]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("too long"), "{e}");
    batch.pop();
    outlet.push(&records(&batch), &update()).await.unwrap();
    assert_eq!(count(&client, &table).await, 20_000);
}

#[tokio::test]
async fn copy_json_columns_and_the_bytes_of_committed_rows() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "out_copy_json",
        "n serial, doc jsonb NOT NULL, raw json",
    )
    .await;
    let docs = [
        json!({"id": 1, "x": [1, "two", null]}),
        json!("text"),
        json!(3.5),
    ];
    let link = Link::builder("pg_copy_json")
        .inlet(StaticInlet::values(docs.clone()))
        .outlet(copier(&table, &[("doc", ""), ("raw", "")]))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    let got = client
        .query(
            &format!("SELECT doc, raw FROM \"{}\" ORDER BY n", table.name),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(Value, Value)> = got.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        docs.iter()
            .map(|d| (d.clone(), d.clone()))
            .collect::<Vec<_>>()
    );
    // Each payload's JSON text twice, and jsonb's version byte.
    let text: u64 = docs.iter().map(|d| d.to_string().len() as u64).sum();
    assert_eq!(link.node_stats()[1].bytes, Some(2 * text + 3));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    let client = testing::client().await;
    for method in [WriteMethod::Insert, WriteMethod::Copy] {
        let table = TestTable::create(&client, "out_outage", "n bigint PRIMARY KEY").await;
        let (proxy, connector) = testing::proxied().await;
        let link = Link::builder("pg_outage")
            .inlet(Sequence::default())
            .outlet(
                PostgresOutlet::new(connector, table.name.clone(), columns(&[("n", "/n")]))
                    .method(method),
            )
            .outlet_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let down = through_an_outage(&link, &proxy).await;
        assert!(
            down.contains(&format!("PostgreSQL at 127.0.0.1:{}", proxy.port())),
            "{method:?}: {down}"
        );
        let want: Vec<Vec<Option<String>>> =
            (0..DELIVERED).map(|n| vec![s(&n.to_string())]).collect();
        assert_eq!(
            rows(
                &client,
                &format!("SELECT n::text FROM \"{}\" ORDER BY n", table.name)
            )
            .await,
            want,
            "{method:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_login_fails_the_start_naming_the_user_without_the_password() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "out_auth", "id int").await;
    // The test server trusts its users; one it does not know is refused.
    let connector = ConnectionOptions {
        url: Some(Secret::new(
            "postgresql://databay_no_such_user:s3cret-pw@127.0.0.1:5432/test".into(),
        )),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = PostgresOutlet::new(connector, table.name.clone(), columns(&[("id", "/id")]));
    let e = outlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("as `databay_no_such_user`"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

// --- exactly once: records and the link's checkpoint in one transaction ---

mod transactional {
    use databay_component::postgres::checkpoints;
    use databay_core::checkpoint::Checkpoint;
    use databay_core::transaction::TransactionalOutlet;

    use super::*;

    /// A link name no other test uses, its checkpoint row deleted on drop.
    struct TestLink(String);

    impl TestLink {
        async fn new(client: &Client, tag: &str) -> TestLink {
            checkpoints::create(client).await.unwrap();
            TestLink(testing::unique_table(tag))
        }
    }

    impl Drop for TestLink {
        fn drop(&mut self) {
            let link = self.0.clone();
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(client) = testing::connector().connect().await {
                        let _ = client
                            .execute("DELETE FROM databay_checkpoints WHERE link = $1", &[&link])
                            .await;
                    }
                });
            })
            .join();
        }
    }

    /// The checkpoint saved for `link`, if any.
    async fn saved(client: &Client, link: &str) -> Option<Checkpoint> {
        let row = client
            .query_opt(
                "SELECT checkpoint FROM databay_checkpoints WHERE link = $1",
                &[&link],
            )
            .await
            .unwrap()?;
        let bytes: Vec<u8> = row.get(0);
        Some(Checkpoint::from_bytes(&bytes).unwrap())
    }

    fn checkpoint(next_index: u64, at: u64) -> Checkpoint {
        let mut c = Checkpoint::new(next_index);
        c.inlets.insert("source".into(), json!({"at": at}));
        c
    }

    async fn outlet(table: &TestTable) -> PostgresOutlet {
        started(PostgresOutlet::new(
            testing::connector(),
            table.name.clone(),
            columns(&[("id", "/id")]),
        ))
        .await
    }

    #[tokio::test]
    async fn the_location_is_the_one_a_state_store_in_the_same_database_has() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_loc", "id int").await;
        let mut outlet = outlet(&table).await;
        let location = outlet.transactional().and_then(|t| t.location());
        assert_eq!(location, Some(testing::connector().location()));
        let location = location.unwrap_or_default();
        assert!(location.starts_with("postgresql://"), "{location}");
        assert!(location.contains("127.0.0.1:5432/test"), "{location}");
    }

    #[tokio::test]
    async fn held_pushes_commit_with_the_checkpoint_and_not_before() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_commit", "id int").await;
        let link = TestLink::new(&client, "tx_commit_link").await;
        let mut outlet = outlet(&table).await;
        let update = Update::new(["pg"], 7);
        outlet.hold(&update);
        outlet
            .push(&records(&[json!({"id": 1}), json!({"id": 2})]), &update)
            .await
            .unwrap();
        outlet
            .push(&records(&[json!({"id": 3})]), &update)
            .await
            .unwrap();
        // Nothing is visible before the commit: neither rows nor checkpoint.
        assert_eq!(count(&client, &table).await, 0);
        assert_eq!(saved(&client, &link.0).await, None);
        let committed = outlet.commit(&update, &link.0, &checkpoint(8, 3)).await;
        assert!(committed.unwrap());
        assert_eq!(count(&client, &table).await, 3);
        assert_eq!(saved(&client, &link.0).await, Some(checkpoint(8, 3)));
        // The connection goes on serving ordinary pushes.
        let next = Update::new(["pg"], 8);
        outlet
            .push(&records(&[json!({"id": 4})]), &next)
            .await
            .unwrap();
        assert_eq!(count(&client, &table).await, 4);
        assert_eq!(saved(&client, &link.0).await, Some(checkpoint(8, 3)));
    }

    #[tokio::test]
    async fn an_aborted_transfer_leaves_neither_rows_nor_checkpoint() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_abort", "id int").await;
        let link = TestLink::new(&client, "tx_abort_link").await;
        let mut outlet = outlet(&table).await;
        let update = Update::new(["pg"], 1);
        outlet.hold(&update);
        outlet
            .push(&records(&[json!({"id": 1})]), &update)
            .await
            .unwrap();
        outlet.abort(&update).await;
        assert_eq!(count(&client, &table).await, 0);
        // Once aborted, there is nothing left to commit.
        let committed = outlet.commit(&update, &link.0, &checkpoint(2, 1)).await;
        assert!(!committed.unwrap());
        assert_eq!(saved(&client, &link.0).await, None);
        assert_eq!(count(&client, &table).await, 0);
        // The outlet writes on afterwards.
        let next = Update::new(["pg"], 2);
        outlet.hold(&next);
        outlet
            .push(&records(&[json!({"id": 2})]), &next)
            .await
            .unwrap();
        assert!(
            outlet
                .commit(&next, &link.0, &checkpoint(3, 2))
                .await
                .unwrap()
        );
        assert_eq!(
            rows(&client, &format!("SELECT id::text FROM \"{}\"", table.name)).await,
            [[s("2")]]
        );
    }

    #[tokio::test]
    async fn a_commit_with_nothing_pushed_writes_nothing_and_says_so() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_empty", "id int").await;
        let link = TestLink::new(&client, "tx_empty_link").await;
        let mut outlet = outlet(&table).await;
        let update = Update::new(["pg"], 2);
        outlet.hold(&update);
        let committed = outlet.commit(&update, &link.0, &checkpoint(3, 0)).await;
        assert!(!committed.unwrap());
        assert_eq!(saved(&client, &link.0).await, None);
    }

    #[tokio::test]
    async fn another_transfers_push_while_one_is_held_commits_on_its_own() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_other", "id int").await;
        let link = TestLink::new(&client, "tx_other_link").await;
        let mut outlet = outlet(&table).await;
        let held = Update::new(["pg"], 1);
        let other = Update::new(["other"], 1);
        outlet.hold(&held);
        outlet
            .push(&records(&[json!({"id": 1})]), &held)
            .await
            .unwrap();
        outlet
            .push(&records(&[json!({"id": 2})]), &other)
            .await
            .unwrap();
        // The other link's row is committed; the held one is not yet.
        assert_eq!(
            rows(&client, &format!("SELECT id::text FROM \"{}\"", table.name)).await,
            [[s("2")]]
        );
        outlet.abort(&held).await;
        assert_eq!(count(&client, &table).await, 1);
        assert_eq!(saved(&client, &link.0).await, None);
    }

    #[tokio::test]
    async fn a_held_transaction_whose_backend_dies_fails_for_good_and_cannot_commit() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_killed", "id int").await;
        let link = TestLink::new(&client, "tx_killed_link").await;
        let app = testing::unique_table("app");
        let connector = ConnectionOptions {
            url: Some(Secret::new(format!(
                "{}?application_name={app}",
                testing::url()
            ))),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap();
        let mut outlet = started(PostgresOutlet::new(
            connector,
            table.name.clone(),
            columns(&[("id", "/id")]),
        ))
        .await;
        let update = Update::new(["pg"], 1);
        outlet.hold(&update);
        outlet
            .push(&records(&[json!({"id": 1})]), &update)
            .await
            .unwrap();
        let killed: i64 = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed >= 1);
        // The next push of the same transfer cannot be written alone: the
        // first one's rows went with the transaction.
        let e = outlet
            .push(&records(&[json!({"id": 2})]), &update)
            .await
            .unwrap_err();
        assert!(e.is::<databay_core::Permanent>(), "{e}");
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:5432"), "{text}");
        assert!(text.contains("transaction"), "{text}");
        let e = outlet
            .commit(&update, &link.0, &checkpoint(2, 2))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("transaction"), "{e}");
        assert_eq!(count(&client, &table).await, 0);
        assert_eq!(saved(&client, &link.0).await, None);
        // The next transfer reconnects and commits.
        let next = Update::new(["pg"], 2);
        outlet.hold(&next);
        let batch = records(&[json!({"id": 1}), json!({"id": 2})]);
        if outlet.push(&batch, &next).await.is_err() {
            outlet.abort(&next).await;
            outlet.hold(&next);
            outlet.push(&batch, &next).await.unwrap();
        }
        assert!(
            outlet
                .commit(&next, &link.0, &checkpoint(3, 2))
                .await
                .unwrap()
        );
        assert_eq!(count(&client, &table).await, 2);
        assert_eq!(saved(&client, &link.0).await, Some(checkpoint(3, 2)));
    }

    #[tokio::test]
    async fn the_copy_method_holds_its_transaction_too() {
        let client = testing::client().await;
        let table = TestTable::create(&client, "tx_copy", "id int").await;
        let link = TestLink::new(&client, "tx_copy_link").await;
        let mut outlet = started(copier(&table, &[("id", "/id")])).await;
        let update = Update::new(["pg"], 1);
        outlet.hold(&update);
        for id in 1..=3 {
            outlet
                .push(&records(&[json!({ "id": id })]), &update)
                .await
                .unwrap();
        }
        assert_eq!(count(&client, &table).await, 0);
        assert!(
            outlet
                .commit(&update, &link.0, &checkpoint(2, 3))
                .await
                .unwrap()
        );
        assert_eq!(count(&client, &table).await, 3);
        assert_eq!(saved(&client, &link.0).await, Some(checkpoint(2, 3)));
    }
}

/// A server that answers in another protocol (an HTTP error page) fails
/// the start, naming it, rather than hanging or panicking.
#[tokio::test]
async fn a_server_that_speaks_another_protocol_fails_naming_it() {
    let garbage = databay_component::testing::GarbageServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(garbage.port()),
        password: Some(Secret::new("s3cret".into())),
        connect_timeout: Some(std::time::Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = PostgresOutlet::new(connector, "t", Mapping::JsonColumn("doc".into()));
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), outlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{}/postgres: ",
            garbage.port()
        )),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}
