//! Tests of [`MongoOutlet`] against the real MongoDB-wire server (see
//! `databay_component::mongodb::testing`), each in a database of its own.

use std::time::Duration;

use databay_component::Secret;
use databay_component::mongodb::mongodb::bson::{Bson, Document, doc};
use databay_component::mongodb::mongodb::options::{Acknowledgment, WriteConcern};
use databay_component::mongodb::testing::TestDatabase;
use databay_component::mongodb::{ConnectionOptions, Connector};
use databay_core::testing::StaticInlet;
use databay_core::{Link, Outlet, Record, Rejected, Update};
use serde_json::{Value, json};

use super::{MongoOutlet, MongoReject, WriteMode};

fn update() -> Update {
    Update::new(["mongo"], 0)
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

async fn started(outlet: MongoOutlet) -> MongoOutlet {
    let mut outlet = outlet;
    if let Err(e) = outlet.on_start().await {
        panic!("on_start: {e}");
    }
    outlet
}

/// Every document of `collection`, sorted by `sort`, without `_id` unless
/// `keep_id`.
async fn documents(
    db: &TestDatabase,
    collection: &str,
    sort: Document,
    keep_id: bool,
) -> Vec<Document> {
    let mut cursor = db
        .database()
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(sort)
        .await
        .unwrap_or_else(|e| panic!("find in {collection}: {e}"));
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        let mut d = cursor.deserialize_current().unwrap();
        if !keep_id {
            d.remove("_id");
        }
        out.push(d);
    }
    out
}

/// The rejects of a push: each record's index, its server error code and
/// the reason, checking that every error is a [`MongoReject`] naming its
/// record.
fn rejected(e: &databay_core::BoxError) -> Vec<(usize, Option<i32>, String)> {
    let Some(rejected) = e.downcast_ref::<Rejected>() else {
        panic!("not a Rejected error: {e}");
    };
    rejected
        .iter()
        .map(|r| match r.error.downcast_ref::<MongoReject>() {
            Some(m) => {
                assert_eq!(m.index, r.index, "{m}");
                (m.index, m.code, m.reason.clone())
            }
            None => panic!("reject {} is not a MongoReject: {}", r.index, r.error),
        })
        .collect()
}

#[tokio::test]
async fn a_link_inserts_documents_whose_types_read_back() {
    let db = TestDatabase::new("out_insert").await;
    let outlet = MongoOutlet::new(db.connector(), "orders").batch_size(2);
    let link = Link::builder("mongo_link")
        .inlet(StaticInlet::values([
            json!({"n": 1, "amount": 12.5, "big": 5_000_000_000_i64, "huge": u64::MAX,
                   "customer": {"name": "Ann", "tags": ["a", "b"]}, "paid": true, "note": null}),
            json!({"n": 2, "items": [{"sku": "x", "qty": 3}]}),
            json!({"n": 3}),
        ]))
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_out, 3);
    assert!(link.shutdown().await.is_empty());

    let got = documents(&db, "orders", doc! {"n": 1}, false).await;
    assert_eq!(got.len(), 3, "{got:?}");
    let first = &got[0];
    assert_eq!(first.get("n"), Some(&Bson::Int32(1)));
    assert_eq!(first.get("amount"), Some(&Bson::Double(12.5)));
    assert_eq!(first.get("big"), Some(&Bson::Int64(5_000_000_000)));
    match first.get("huge") {
        Some(Bson::Decimal128(d)) => assert_eq!(d.to_string(), u64::MAX.to_string()),
        other => panic!("huge: {other:?}"),
    }
    assert_eq!(
        first.get_document("customer").unwrap(),
        &doc! {"name": "Ann", "tags": ["a", "b"]}
    );
    assert_eq!(first.get("paid"), Some(&Bson::Boolean(true)));
    assert_eq!(first.get("note"), Some(&Bson::Null));
    assert_eq!(got[1], doc! {"items": [{"qty": 3, "sku": "x"}], "n": 2});
}

#[tokio::test]
async fn replace_is_idempotent_and_upsert_merges_in_record_order() {
    let db = TestDatabase::new("out_upsert").await;
    let mut replace = started(
        MongoOutlet::new(db.connector(), "users").mode(WriteMode::Replace, vec!["id".into()]),
    )
    .await;
    let batch = records(&[
        json!({"id": 1, "name": "Ann", "age": 30}),
        json!({"id": 2, "name": "Bob"}),
    ]);
    for _ in 0..3 {
        replace.push(&batch, &update()).await.unwrap();
    }
    // Replacing drops the fields the new payload lacks.
    replace
        .push(&records(&[json!({"id": 1, "name": "Ann B."})]), &update())
        .await
        .unwrap();
    assert_eq!(
        documents(&db, "users", doc! {"id": 1}, false).await,
        vec![
            doc! {"id": 1, "name": "Ann B."},
            doc! {"id": 2, "name": "Bob"}
        ]
    );

    let mut upsert = started(
        MongoOutlet::new(db.connector(), "users").mode(WriteMode::Upsert, vec!["id".into()]),
    )
    .await;
    let batch = records(&[
        json!({"id": 1, "age": 31}),
        json!({"id": 3, "name": "Cy"}),
        json!({"id": 1, "age": 32, "city": "Oslo"}),
    ]);
    upsert.push(&batch, &update()).await.unwrap();
    upsert.push(&batch, &update()).await.unwrap();
    assert_eq!(
        documents(&db, "users", doc! {"id": 1}, false).await,
        vec![
            doc! {"id": 1, "name": "Ann B.", "age": 32, "city": "Oslo"},
            doc! {"id": 2, "name": "Bob"},
            doc! {"id": 3, "name": "Cy"},
        ]
    );
}

#[tokio::test]
async fn a_nested_key_finds_its_document() {
    let db = TestDatabase::new("out_nested_key").await;
    let mut outlet = started(
        MongoOutlet::new(db.connector(), "events")
            .mode(WriteMode::Replace, vec!["src.host".into(), "seq".into()]),
    )
    .await;
    outlet
        .push(
            &records(&[
                json!({"src": {"host": "a"}, "seq": 1, "v": 1}),
                json!({"src": {"host": "b"}, "seq": 1, "v": 2}),
                json!({"src": {"host": "a"}, "seq": 1, "v": 3}),
            ]),
            &update(),
        )
        .await
        .unwrap();
    let got = documents(&db, "events", doc! {"src.host": 1}, false).await;
    assert_eq!(
        got,
        vec![
            doc! {"seq": 1, "src": {"host": "a"}, "v": 3},
            doc! {"seq": 1, "src": {"host": "b"}, "v": 2}
        ]
    );
}

#[tokio::test]
async fn bad_records_are_listed_by_index_and_the_good_ones_written() {
    let db = TestDatabase::new("out_bad").await;
    let mut outlet = started(MongoOutlet::new(db.connector(), "mixed").batch_size(2)).await;
    let batch = records(&[
        json!({"n": 0}),
        json!({"n": 1, "price": {"$gt": 3}}),
        json!([1, 2]),
        json!({"n": 3}),
        json!({"n": 4, "items": [{"$where": "x"}]}),
        json!({"n": 5}),
    ]);
    let e = outlet.push(&batch, &update()).await.unwrap_err();
    let rejects = rejected(&e);
    let indexes: Vec<usize> = rejects.iter().map(|r| r.0).collect();
    assert_eq!(indexes, [1, 2, 4]);
    assert!(rejects.iter().all(|r| r.1.is_none()), "{rejects:?}");
    assert!(rejects[0].2.contains("/price/$gt"), "{}", rejects[0].2);
    assert!(
        rejects[1].2.contains("an array, not a JSON object"),
        "{}",
        rejects[1].2
    );
    assert!(rejects[2].2.contains("/items/0/$where"), "{}", rejects[2].2);
    let shown = e.to_string();
    assert!(
        shown.starts_with("3 records rejected: record 1 for collection `mixed`: `/price/$gt`"),
        "{shown}"
    );
    let got: Vec<Bson> = documents(&db, "mixed", doc! {"n": 1}, false)
        .await
        .into_iter()
        .filter_map(|d| d.get("n").cloned())
        .collect();
    assert_eq!(got, [Bson::Int32(0), Bson::Int32(3), Bson::Int32(5)]);
}

#[tokio::test]
async fn a_duplicate_key_rejects_only_its_record() {
    let db = TestDatabase::new("out_dup").await;
    let mut outlet = started(MongoOutlet::new(db.connector(), "dups").batch_size(2)).await;
    outlet
        .push(&records(&[json!({"_id": 2, "v": "old"})]), &update())
        .await
        .unwrap();
    let batch = records(&[
        json!({"_id": 1, "v": "a"}),
        json!({"_id": 2, "v": "b"}),
        json!({"_id": 3, "v": "c"}),
        json!({"_id": 3, "v": "d"}),
        json!({"_id": 4, "v": "e"}),
    ]);
    let e = outlet.push(&batch, &update()).await.unwrap_err();
    let rejects = rejected(&e);
    assert_eq!(
        rejects.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(1, Some(11000)), (3, Some(11000))],
        "{e}"
    );
    assert!(rejects[0].2.contains("duplicate key"), "{}", rejects[0].2);
    assert!(
        e.to_string()
            .starts_with("2 records rejected: record 1 for collection `dups`: "),
        "{e}"
    );
    let got: Vec<String> = documents(&db, "dups", doc! {"_id": 1}, true)
        .await
        .into_iter()
        .map(|d| d.get_str("v").unwrap().to_owned())
        .collect();
    assert_eq!(got, ["a", "old", "c", "e"]);
}

#[tokio::test]
async fn a_link_delivers_the_rest_of_a_batch_and_counts_the_duplicates() {
    let db = TestDatabase::new("out_dup_link").await;
    let outlet = MongoOutlet::new(db.connector(), "dups");
    let link = Link::builder("mongo_dups")
        .inlet(StaticInlet::values([
            json!({"_id": 1, "v": "a"}),
            json!({"_id": 1, "v": "b"}),
            json!({"_id": 2, "v": "c"}),
        ]))
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_out, 2);
    let rejects: Vec<(usize, String)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].0, 1);
    assert!(
        rejects[0].1.starts_with("record 1 for collection `dups`: ")
            && rejects[0].1.ends_with("(code 11000)"),
        "{}",
        rejects[0].1
    );
    assert_eq!(
        report.rejected[0].record.payload,
        json!({"_id": 1, "v": "b"})
    );
    assert_eq!(link.stats().records_rejected, 1);
    assert!(link.shutdown().await.is_empty());
    let got: Vec<String> = documents(&db, "dups", doc! {"_id": 1}, true)
        .await
        .into_iter()
        .map(|d| d.get_str("v").unwrap().to_owned())
        .collect();
    assert_eq!(got, ["a", "c"]);
}

#[tokio::test]
async fn an_upsert_that_breaks_a_unique_index_rejects_only_its_record() {
    let db = TestDatabase::new("out_dup_upsert").await;
    db.database()
        .run_command(doc! {
            "createIndexes": "people",
            "indexes": [{"key": {"email": 1}, "name": "email_unique", "unique": true}],
        })
        .await
        .unwrap_or_else(|e| panic!("createIndexes: {e}"));
    let mut outlet = started(
        MongoOutlet::new(db.connector(), "people").mode(WriteMode::Upsert, vec!["id".into()]),
    )
    .await;
    let batch = records(&[
        json!({"id": 1, "email": "a@x"}),
        json!({"id": 2, "email": "a@x"}),
        json!({"id": 3, "email": "c@x"}),
    ]);
    let e = outlet.push(&batch, &update()).await.unwrap_err();
    let rejects = rejected(&e);
    assert_eq!(
        rejects.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(1, Some(11000))],
        "{e}"
    );
    assert_eq!(
        documents(&db, "people", doc! {"id": 1}, false).await,
        vec![
            doc! {"id": 1, "email": "a@x"},
            doc! {"id": 3, "email": "c@x"}
        ]
    );
}

#[tokio::test]
async fn upserts_without_a_key_or_with_a_dotted_field_are_rejected() {
    let db = TestDatabase::new("out_nokey").await;
    let mut outlet =
        started(MongoOutlet::new(db.connector(), "u").mode(WriteMode::Upsert, vec!["id".into()]))
            .await;
    let batch = records(&[
        json!({"id": 1, "v": 1}),
        json!({"v": 2}),
        json!({"id": null, "v": 3}),
        json!({"id": 4, "a.b": 1}),
    ]);
    let e = outlet.push(&batch, &update()).await.unwrap_err();
    let rejects = rejected(&e);
    assert_eq!(rejects.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        rejects[0].2.contains("no key field `id`"),
        "{}",
        rejects[0].2
    );
    assert!(rejects[2].2.contains("`a.b`"), "{}", rejects[2].2);
    assert_eq!(
        documents(&db, "u", doc! {}, false).await,
        vec![doc! {"id": 1, "v": 1}]
    );
}

#[tokio::test]
async fn extended_json_payloads_keep_their_types() {
    let db = TestDatabase::new("out_extjson").await;
    let mut outlet = started(MongoOutlet::new(db.connector(), "typed").extended_json(true)).await;
    outlet
        .push(
            &records(&[json!({"_id": {"$oid": "65f000000000000000000001"},
                              "at": {"$date": "2024-05-01T12:00:00Z"},
                              "price": {"$numberDecimal": "12.50"}})]),
            &update(),
        )
        .await
        .unwrap();
    let got = documents(&db, "typed", doc! {}, true).await;
    assert!(
        matches!(got[0].get("_id"), Some(Bson::ObjectId(_))),
        "{got:?}"
    );
    assert!(
        matches!(got[0].get("at"), Some(Bson::DateTime(_))),
        "{got:?}"
    );
    assert!(
        matches!(got[0].get("price"), Some(Bson::Decimal128(_))),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_write_concern_is_sent_with_every_mode() {
    let db = TestDatabase::new("out_wc").await;
    let wc = WriteConcern::builder()
        .w(Acknowledgment::Nodes(1))
        .journal(true)
        .w_timeout(Duration::from_secs(5))
        .build();
    let mut insert =
        started(MongoOutlet::new(db.connector(), "wc").write_concern(wc.clone())).await;
    insert
        .push(&records(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    let mut replace = started(
        MongoOutlet::new(db.connector(), "wc")
            .mode(WriteMode::Replace, vec!["id".into()])
            .write_concern(wc),
    )
    .await;
    replace
        .push(&records(&[json!({"id": 1, "v": 2})]), &update())
        .await
        .unwrap();
    assert_eq!(
        documents(&db, "wc", doc! {}, false).await,
        vec![doc! {"id": 1, "v": 2}]
    );
}

fn down(uri: &str) -> Connector {
    ConnectionOptions {
        uri: Secret::new(uri.into()),
        database: Some("test".into()),
        server_selection_timeout: Some(Duration::from_millis(500)),
        connect_timeout: Some(Duration::from_millis(500)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap()
}

#[tokio::test]
async fn a_server_that_is_down_is_named_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let mut outlet = MongoOutlet::new(down("mongodb://app:s3cret-pw@127.0.0.1:1/test"), "c");
    assert!(!format!("{outlet:?}").contains("s3cret"));
    let e = outlet.on_start().await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown
            .starts_with("cannot reach MongoDB at 127.0.0.1:1/test: no usable server within 500ms"),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret") && !format!("{e:?}").contains("s3cret"),
        "{e:?}"
    );
    let e = outlet
        .push(&records(&[json!({"a": 1})]), &update())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot reach MongoDB at 127.0.0.1:1/test"),
        "{e}"
    );
}

#[tokio::test]
async fn a_refused_login_names_the_user_without_the_password() {
    let db = TestDatabase::new("out_auth").await;
    // The test server has no such user; a URI with credentials makes the
    // driver authenticate, which the server refuses.
    let base = databay_component::mongodb::testing::url();
    let Some(rest) = base.strip_prefix("mongodb://") else {
        panic!("test URI {base} is not mongodb://");
    };
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    let connector = ConnectionOptions {
        uri: Secret::new(format!("mongodb://nobody:wr0ng-pw@{host}/{}", db.name)),
        server_selection_timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MongoOutlet::new(connector, "c");
    let e = outlet.on_start().await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("refused the login of user `nobody`"),
        "{shown}"
    );
    assert!(
        !shown.contains("wr0ng-pw") && !format!("{e:?}").contains("wr0ng-pw"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_link_counts_the_bson_bytes_of_the_documents_written_not_the_rejected() {
    let db = TestDatabase::new("out_bytes").await;
    // Each document: its length (4), `_id` as int32 (type, `_id` and NUL,
    // 4 bytes), `v` as a one-letter string (type, `v` and NUL, length,
    // letter and NUL) and the closing NUL: 23 bytes.
    let link = Link::builder("mongo_bytes")
        .inlet(StaticInlet::values([
            json!({"_id": 1, "v": "a"}),
            json!({"_id": 1, "v": "b"}),
            json!({"_id": 2, "v": "c"}),
        ]))
        .outlet(MongoOutlet::new(db.connector(), "inserted"))
        .outlet(
            MongoOutlet::new(db.connector(), "replaced")
                .mode(WriteMode::Replace, vec!["_id".into()]),
        )
        .build()
        .unwrap();
    link.start().await.unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(
        report.rejected.len(),
        1,
        "the duplicate `_id` of the insert"
    );
    let stats = link.node_stats();
    assert_eq!(stats[1].bytes, Some(2 * 23), "the duplicate is not counted");
    assert_eq!(stats[2].bytes, Some(3 * 23), "a replace writes all three");
    assert_eq!(
        documents(&db, "inserted", doc! {"_id": 1}, true)
            .await
            .len(),
        2
    );
    assert_eq!(
        documents(&db, "replaced", doc! {"_id": 1}, true)
            .await
            .len(),
        2
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    let db = TestDatabase::new("out_outage").await;
    let (proxy, connector) = databay_component::mongodb::testing::proxied(&db.name).await;
    let link = Link::builder("mongo_outage")
        .inlet(Sequence::default())
        .outlet(MongoOutlet::new(connector, "c"))
        .outlet_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let got: Vec<Option<i64>> = documents(&db, "c", doc! {"n": 1}, false)
        .await
        .iter()
        .map(|d| {
            d.get_i64("n")
                .ok()
                .or_else(|| d.get_i32("n").ok().map(i64::from))
        })
        .collect();
    assert_eq!(got, (0..DELIVERED as i64).map(Some).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_it() {
    let silent = databay_component::testing::SilentServer::start()
        .await
        .unwrap();
    let connector = ConnectionOptions {
        uri: Secret::new(format!("mongodb://app:s3cret@127.0.0.1:{}/", silent.port())),
        database: Some("db".into()),
        connect_timeout: Some(Duration::from_millis(300)),
        server_selection_timeout: Some(Duration::from_millis(500)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MongoOutlet::new(connector, "c");
    let e = tokio::time::timeout(Duration::from_secs(20), outlet.on_start())
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
    let connector = ConnectionOptions {
        uri: Secret::new(format!(
            "mongodb://app:s3cret@127.0.0.1:{}/",
            garbage.port()
        )),
        database: Some("db".into()),
        connect_timeout: Some(Duration::from_millis(300)),
        server_selection_timeout: Some(Duration::from_millis(500)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut outlet = MongoOutlet::new(connector, "c");
    let e = tokio::time::timeout(Duration::from_secs(20), outlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
