//! Tests of [`PostgresInlet`] against the real PostgreSQL server (see
//! `databay_component::postgres::testing`), each in a table of its own.

use databay_component::Secret;
use databay_component::postgres::ConnectionOptions;
use databay_component::postgres::testing::{self, TestTable};
use databay_core::testing::CollectOutlet;
use databay_core::{Inlet, Link, Pull, Update};
use serde_json::{Value, json};

use super::{Cursor, PostgresInlet};

fn update() -> Update {
    Update::new(["pg"], 0)
}

async fn pull(inlet: &mut PostgresInlet) -> Vec<Value> {
    match inlet.pull(&update()).await {
        Ok(Pull::Records(records)) => records.into_iter().map(|r| r.payload).collect(),
        Ok(Pull::Nothing) => Vec::new(),
        Ok(other) => panic!("unexpected pull: {other:?}"),
        Err(e) => panic!("pull: {e}"),
    }
}

async fn started(inlet: PostgresInlet) -> PostgresInlet {
    let mut inlet = inlet;
    if let Err(e) = inlet.on_start().await {
        panic!("on_start: {e}");
    }
    inlet
}

fn ids(values: &[Value]) -> Vec<i64> {
    values.iter().filter_map(|v| v["id"].as_i64()).collect()
}

#[tokio::test]
async fn the_cursor_advances_across_pulls_and_picks_up_new_rows() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_cursor", "id bigint, amount numeric").await;
    let insert = format!(
        "INSERT INTO \"{}\" SELECT i, i * 1.5 FROM generate_series($1::int, $2::int) i",
        table.name
    );
    client.execute(&insert, &[&1, &5]).await.unwrap();
    let query = format!(
        "SELECT id, amount FROM \"{}\" WHERE id > $1 ORDER BY id LIMIT 2",
        table.name
    );
    let mut inlet = started(
        PostgresInlet::new(testing::connector(), query).cursor(Cursor {
            column: "id".into(),
            start: json!(0),
        }),
    )
    .await;
    assert_eq!(
        pull(&mut inlet).await,
        vec![
            json!({"id": 1, "amount": 1.5}),
            json!({"id": 2, "amount": 3.0})
        ]
    );
    assert_eq!(ids(&pull(&mut inlet).await), [3, 4]);
    assert_eq!(ids(&pull(&mut inlet).await), [5]);
    assert_eq!(inlet.position(), Some(&json!(5)));
    assert_eq!(pull(&mut inlet).await, Vec::<Value>::new());
    client.execute(&insert, &[&6, &6]).await.unwrap();
    assert_eq!(ids(&pull(&mut inlet).await), [6]);
}

#[tokio::test]
async fn rows_become_json_objects_of_typed_values() {
    let client = testing::client().await;
    let table = TestTable::create(
        &client,
        "in_types",
        "b boolean, s smallint, i integer, n numeric, big numeric, f double precision, r real, \
         t text, v varchar(10), c char(3), j json, jb jsonb, tz timestamptz, ts timestamp, d date, u uuid",
    )
    .await;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{0}\" VALUES (true, -3, 42, 12.50, 12345678901234567890, 'NaN', 0.5, \
             'hé', 'var', 'ab', '{{\"a\": [1, null]}}', '{{\"k\": \"v\"}}', '2024-05-01 12:00:00+02', \
             '2024-05-01 12:00:00.25', '2024-05-01', '67e55044-10b1-426f-9247-bb680e5fe0c8'); \
             INSERT INTO \"{0}\" DEFAULT VALUES",
            table.name
        ))
        .await
        .unwrap();
    let mut inlet = started(PostgresInlet::new(
        testing::connector(),
        format!("SELECT * FROM \"{}\" ORDER BY b NULLS LAST", table.name),
    ))
    .await;
    let got = pull(&mut inlet).await;
    assert_eq!(
        got[0],
        json!({
            "b": true, "s": -3, "i": 42, "n": 12.5, "big": 12345678901234567890_u64, "f": "NaN", "r": 0.5,
            "t": "hé", "v": "var", "c": "ab ", "j": {"a": [1, null]}, "jb": {"k": "v"},
            "tz": "2024-05-01T10:00:00Z", "ts": "2024-05-01T12:00:00.250", "d": "2024-05-01",
            "u": "67e55044-10b1-426f-9247-bb680e5fe0c8"
        })
    );
    assert!(
        got[1].as_object().unwrap().values().all(Value::is_null),
        "{}",
        got[1]
    );
}

#[tokio::test]
async fn a_link_delivers_the_rows_once() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_link", "id int, name text").await;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{}\" VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            table.name
        ))
        .await
        .unwrap();
    let outlet = CollectOutlet::new();
    let link = Link::builder("pg_to_memory")
        .inlet(
            PostgresInlet::new(
                testing::connector(),
                format!(
                    "SELECT id, name FROM \"{}\" WHERE id > $1 ORDER BY id LIMIT 2",
                    table.name
                ),
            )
            .cursor(Cursor {
                column: "id".into(),
                start: json!(0),
            }),
        )
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    for _ in 0..3 {
        link.transfer().await.unwrap();
    }
    assert!(link.shutdown().await.is_empty());
    assert_eq!(
        outlet.payloads(),
        vec![
            json!({"id": 1, "name": "a"}),
            json!({"id": 2, "name": "b"}),
            json!({"id": 3, "name": "c"})
        ]
    );
    // The rows as sent: per row a 4-byte length before each value, then
    // an int4 (4 bytes) and a one-letter text.
    assert_eq!(link.node_stats()[0].bytes, Some(3 * (4 + 4 + 4 + 1)));
}

#[tokio::test]
async fn numeric_and_timestamp_cursors_round_trip() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_cursor_types", "n numeric, at timestamptz").await;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{}\" VALUES (1.5, '2024-01-01T00:00:00Z'), (2.5, '2024-01-02T00:00:00Z'), \
             (3.5, '2024-01-03T00:00:00Z')",
            table.name
        ))
        .await
        .unwrap();
    let mut by_n = started(
        PostgresInlet::new(
            testing::connector(),
            format!(
                "SELECT n FROM \"{}\" WHERE n > $1 ORDER BY n LIMIT 2",
                table.name
            ),
        )
        .cursor(Cursor {
            column: "n".into(),
            start: json!(0),
        }),
    )
    .await;
    assert_eq!(
        pull(&mut by_n).await,
        vec![json!({"n": 1.5}), json!({"n": 2.5})]
    );
    assert_eq!(pull(&mut by_n).await, vec![json!({"n": 3.5})]);
    let mut by_time = started(
        PostgresInlet::new(
            testing::connector(),
            format!(
                "SELECT at FROM \"{}\" WHERE at > $1 ORDER BY at LIMIT 2",
                table.name
            ),
        )
        .cursor(Cursor {
            column: "at".into(),
            start: json!("2024-01-01T12:00:00Z"),
        }),
    )
    .await;
    assert_eq!(
        pull(&mut by_time).await,
        vec![
            json!({"at": "2024-01-02T00:00:00Z"}),
            json!({"at": "2024-01-03T00:00:00Z"})
        ]
    );
    assert_eq!(pull(&mut by_time).await, Vec::<Value>::new());
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
    let mut inlet = PostgresInlet::new(connector, "SELECT 1");
    let e = inlet.on_start().await.unwrap_err().to_string();
    assert!(e.contains("PostgreSQL at 127.0.0.1:1/test"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = inlet.pull(&update()).await.unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:1"), "{e}");
}

#[tokio::test]
async fn a_query_that_does_not_fit_fails_at_start_naming_why() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_bad", "id int, ip inet").await;
    let t = &table.name;
    let cursor = || Cursor {
        column: "id".into(),
        start: json!(0),
    };
    for (inlet, want) in [
        (
            PostgresInlet::new(testing::connector(), format!("SELEC id FROM \"{t}\"")),
            "syntax error",
        ),
        (
            PostgresInlet::new(testing::connector(), format!("SELECT ip FROM \"{t}\"")),
            "column `ip` is of type `inet`",
        ),
        (
            PostgresInlet::new(
                testing::connector(),
                format!("SELECT ip::text AS x FROM \"{t}\" WHERE id > $1"),
            )
            .cursor(cursor()),
            "cursor column `id` is not among the result columns (x)",
        ),
        (
            PostgresInlet::new(
                testing::connector(),
                format!("SELECT id FROM \"{t}\" WHERE id > $1 AND id < $2"),
            )
            .cursor(cursor()),
            "takes 2 parameters",
        ),
        (
            PostgresInlet::new(
                testing::connector(),
                format!("SELECT id FROM \"{t}\" WHERE id > $1"),
            )
            .cursor(Cursor {
                column: "id".into(),
                start: json!("zero"),
            }),
            "option `cursor`: `start` does not fit `$1`",
        ),
    ] {
        let mut inlet = inlet;
        let e = inlet.on_start().await.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[tokio::test]
async fn a_null_cursor_value_fails_the_pull_and_keeps_the_cursor() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_null", "id int").await;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{}\" VALUES (1), (NULL)",
            table.name
        ))
        .await
        .unwrap();
    let mut inlet = started(
        PostgresInlet::new(
            testing::connector(),
            format!(
                "SELECT id FROM \"{}\" WHERE id > $1 OR id IS NULL ORDER BY id NULLS LAST",
                table.name
            ),
        )
        .cursor(Cursor {
            column: "id".into(),
            start: json!(0),
        }),
    )
    .await;
    let e = inlet.pull(&update()).await.unwrap_err().to_string();
    assert!(e.contains("cursor column `id` is null"), "{e}");
    assert_eq!(inlet.position(), Some(&json!(0)));
}

#[tokio::test]
async fn the_next_pull_reconnects_after_the_connection_dropped() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_reconnect", "id int").await;
    client
        .batch_execute(&format!("INSERT INTO \"{}\" VALUES (1), (2)", table.name))
        .await
        .unwrap();
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
    let mut inlet = started(
        PostgresInlet::new(
            connector,
            format!(
                "SELECT id FROM \"{}\" WHERE id > $1 ORDER BY id LIMIT 1",
                table.name
            ),
        )
        .cursor(Cursor {
            column: "id".into(),
            start: json!(0),
        }),
    )
    .await;
    assert_eq!(ids(&pull(&mut inlet).await), [1]);
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // The pull that finds the connection gone may fail naming the server;
    // the one after reconnects and carries on from the cursor.
    let got = match inlet.pull(&update()).await {
        Ok(Pull::Records(records)) => records.into_iter().map(|r| r.payload).collect(),
        Ok(other) => panic!("unexpected pull: {other:?}"),
        Err(e) => {
            assert!(e.to_string().contains("127.0.0.1:5432"), "{e}");
            pull(&mut inlet).await
        }
    };
    assert_eq!(ids(&got), [2]);
}

#[test]
fn dollar_one_goes_with_a_cursor() {
    let inlet = |q: &str| PostgresInlet::new(testing::connector(), q);
    let cursor = Cursor {
        column: "id".into(),
        start: json!(0),
    };
    assert_eq!(
        inlet("SELECT 1 WHERE 1 > $1").check().unwrap_err().option,
        "cursor"
    );
    assert_eq!(
        inlet("SELECT 1")
            .cursor(cursor.clone())
            .check()
            .unwrap_err()
            .option,
        "query"
    );
    assert_eq!(
        inlet("SELECT $10")
            .cursor(cursor.clone())
            .check()
            .unwrap_err()
            .option,
        "query"
    );
    assert_eq!(inlet(" ").check().unwrap_err().option, "query");
    assert!(inlet("SELECT 1").check().is_ok());
    assert_eq!(
        super::cast_param_1("WHERE a > $1 AND b = $10 OR c < $1", "numeric"),
        "WHERE a > ($1::text::numeric) AND b = $10 OR c < ($1::text::numeric)"
    );
}

/// The committed cursor is the resume state: a rollback goes back to it,
/// and a new inlet restored from a snapshot carries on after the last
/// committed row.
#[tokio::test]
async fn the_committed_cursor_is_the_resume_state() {
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_resume", "id bigint").await;
    let insert = format!(
        "INSERT INTO \"{}\" SELECT generate_series(1, 6)",
        table.name
    );
    client.execute(&insert, &[]).await.unwrap();
    let query = format!(
        "SELECT id FROM \"{}\" WHERE id > $1 ORDER BY id LIMIT 2",
        table.name
    );
    let make = || {
        PostgresInlet::new(testing::connector(), query.clone()).cursor(Cursor {
            column: "id".into(),
            start: json!(0),
        })
    };
    let mut inlet = started(make()).await;
    assert_eq!(ids(&pull(&mut inlet).await), [1, 2]);
    inlet.commit(&update()).await.unwrap();
    assert_eq!(ids(&pull(&mut inlet).await), [3, 4]);
    inlet.rollback(&update()).await.unwrap();
    assert_eq!(ids(&pull(&mut inlet).await), [3, 4], "read again");
    inlet.commit(&update()).await.unwrap();
    assert_eq!(ids(&pull(&mut inlet).await), [5, 6]);
    let state = inlet.snapshot().unwrap();
    assert_eq!(state, json!({"cursor": 4}), "the last committed row");

    let mut resumed = make();
    resumed.restore(state).await.unwrap();
    let mut resumed = started(resumed).await;
    assert_eq!(ids(&pull(&mut resumed).await), [5, 6]);
    let e = make().restore(json!({"cursor": null})).await.unwrap_err();
    assert!(e.to_string().contains("resume state must be"), "{e}");
    let e = PostgresInlet::new(testing::connector(), "SELECT 1")
        .restore(json!({"cursor": 1}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("without a cursor"), "{e}");
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let client = testing::client().await;
    let table = TestTable::create(&client, "in_outage", "id int").await;
    let insert = |from: i32, to: i32| {
        let sql = format!(
            "INSERT INTO \"{}\" SELECT generate_series({from}, {to})",
            table.name
        );
        let client = &client;
        async move { client.batch_execute(&sql).await.unwrap() }
    };
    insert(1, 3).await;
    let (proxy, connector) = testing::proxied().await;
    let out = CollectOutlet::new();
    let link = Link::builder("pg_outage")
        .inlet(
            PostgresInlet::new(
                connector,
                format!(
                    "SELECT id FROM \"{}\" WHERE id > $1 ORDER BY id",
                    table.name
                ),
            )
            .cursor(Cursor {
                column: "id".into(),
                start: json!(0),
            }),
        )
        .outlet(out.clone())
        .inlet_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        insert(4, 5).await;
        2
    })
    .await
    .unwrap_or_default();
    assert!(
        down.contains(&format!("PostgreSQL at 127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let ids: Vec<Value> = out.payloads().iter().map(|p| p["id"].clone()).collect();
    assert_eq!(ids, (1..=5).map(|i| json!(i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refused_login_fails_the_start_naming_the_user_without_the_password() {
    let _ = testing::client().await;
    // The test server trusts its users; one it does not know is refused.
    let connector = ConnectionOptions {
        url: Some(Secret::new(
            "postgresql://databay_no_such_user:s3cret-pw@127.0.0.1:5432/test".into(),
        )),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = PostgresInlet::new(connector, "SELECT 1 AS one");
    for e in [
        inlet.on_start().await.unwrap_err().to_string(),
        inlet.pull(&update()).await.unwrap_err().to_string(),
    ] {
        assert!(e.contains("PostgreSQL at 127.0.0.1:5432/test"), "{e}");
        assert!(e.contains("as `databay_no_such_user`"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        host: Some("127.0.0.1".into()),
        port: Some(silent.port()),
        password: Some(Secret::new("s3cret".into())),
        connect_timeout: Some(std::time::Duration::from_millis(200)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = PostgresInlet::new(connector, "SELECT 1 AS one");
    let want = format!(
        "cannot connect to PostgreSQL at 127.0.0.1:{}/postgres: no answer within 200ms",
        silent.port()
    );
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert_eq!(e, want);
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.pull(&update()))
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert_eq!(e, want);
}

/// A server that answers in another protocol (an HTTP error page) fails
/// the start and the pull, naming it, rather than hanging or panicking.
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
    let mut inlet = PostgresInlet::new(connector, "SELECT 1 AS one");
    let want = format!(
        "cannot connect to PostgreSQL at 127.0.0.1:{}/postgres: ",
        garbage.port()
    );
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&want), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = tokio::time::timeout(std::time::Duration::from_secs(20), inlet.pull(&update()))
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&want), "{e}");
}
