//! Tests of [`MongoInlet`] against the real MongoDB-wire server (see
//! `databay_component::mongodb::testing`), each in a database of its own.

use std::str::FromStr;
use std::time::Duration;

use databay_component::Secret;
use databay_component::mongodb::mongodb::bson::oid::ObjectId;
use databay_component::mongodb::mongodb::bson::{Bson, DateTime, Decimal128, Document, doc};
use databay_component::mongodb::testing::TestDatabase;
use databay_component::mongodb::{ConnectionOptions, JsonFormat, to_document};
use databay_core::testing::CollectOutlet;
use databay_core::{Inlet, Link, Pull, Update};
use serde_json::{Value, json};

use super::{Cursor, MongoInlet, MongoInletError};

fn update() -> Update {
    Update::new(["mongo"], 0)
}

async fn insert(db: &TestDatabase, collection: &str, docs: Vec<Document>) {
    db.database()
        .collection::<Document>(collection)
        .insert_many(docs)
        .await
        .unwrap_or_else(|e| panic!("insert into {collection}: {e}"));
}

async fn pull(inlet: &mut MongoInlet) -> Vec<Value> {
    match inlet.pull(&update()).await {
        Ok(Pull::Records(records)) => records.into_iter().map(|r| r.payload).collect(),
        Ok(Pull::Nothing) => Vec::new(),
        Ok(other) => panic!("unexpected pull: {other:?}"),
        Err(e) => panic!("pull: {e}"),
    }
}

fn field(values: &[Value], name: &str) -> Vec<Value> {
    values.iter().map(|v| v[name].clone()).collect()
}

#[tokio::test]
async fn a_link_reads_documents_as_plain_json() {
    let db = TestDatabase::new("in_plain").await;
    let oid = ObjectId::parse_str("65f000000000000000000001").unwrap();
    insert(
        &db,
        "orders",
        vec![
            doc! {"_id": oid, "n": 1, "status": "open", "at": DateTime::parse_rfc3339_str("2024-05-01T12:00:00.250Z").unwrap(),
                  "price": Decimal128::from_str("12.50").unwrap(), "big": 5_000_000_000_i64, "ratio": 0.5,
                  "customer": {"name": "Ann", "tags": ["a", "b"]}, "secret": "x"},
            doc! {"n": 2, "status": "closed"},
            doc! {"n": 3, "status": "open", "secret": "y"},
        ],
    )
    .await;
    let inlet = MongoInlet::new(db.connector(), "orders")
        .filter(doc! {"status": "open"})
        .projection(doc! {"secret": 0})
        .sort(vec![("n".into(), -1)]);
    let outlet = CollectOutlet::new();
    let link = Link::builder("mongo_in")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert!(link.shutdown().await.is_empty());
    let got = outlet.payloads();
    assert_eq!(field(&got, "n"), [json!(3), json!(1)]);
    assert_eq!(
        got[1],
        json!({"_id": "65f000000000000000000001", "n": 1, "status": "open", "at": "2024-05-01T12:00:00.25Z",
               "price": "12.50", "big": 5_000_000_000_i64, "ratio": 0.5,
               "customer": {"name": "Ann", "tags": ["a", "b"]}})
    );
    assert!(got[0].get("secret").is_none(), "{}", got[0]);
}

#[tokio::test]
async fn a_cursor_reads_each_document_once_across_pulls() {
    let db = TestDatabase::new("in_cursor").await;
    insert(
        &db,
        "events",
        (1..=5)
            .map(|seq| doc! {"seq": seq, "kind": if seq == 4 { "noise" } else { "event" }})
            .collect(),
    )
    .await;
    let mut inlet = MongoInlet::new(db.connector(), "events")
        .filter(doc! {"kind": "event"})
        .cursor(Cursor {
            field: "seq".into(),
            start: None,
        })
        .limit(2);
    inlet.on_start().await.unwrap();
    assert_eq!(field(&pull(&mut inlet).await, "seq"), [json!(1), json!(2)]);
    assert_eq!(inlet.position(), Some(json!(2)));
    assert_eq!(field(&pull(&mut inlet).await, "seq"), [json!(3), json!(5)]);
    assert!(pull(&mut inlet).await.is_empty());
    assert_eq!(inlet.position(), Some(json!(5)));
    insert(
        &db,
        "events",
        vec![
            doc! {"seq": 6, "kind": "event"},
            doc! {"seq": 0, "kind": "event"},
        ],
    )
    .await;
    // Only what comes after the position: 0 is behind it.
    assert_eq!(field(&pull(&mut inlet).await, "seq"), [json!(6)]);

    // A start skips up to it.
    let mut from = MongoInlet::new(db.connector(), "events").cursor(Cursor {
        field: "seq".into(),
        start: Some(Bson::Int32(4)),
    });
    assert_eq!(field(&pull(&mut from).await, "seq"), [json!(5), json!(6)]);
}

#[tokio::test]
async fn an_object_id_cursor_keeps_its_type() {
    let db = TestDatabase::new("in_oid").await;
    let ids: Vec<ObjectId> = (1..=3)
        .map(|i| ObjectId::parse_str(format!("65f00000000000000000000{i}")).unwrap())
        .collect();
    insert(&db, "c", ids.iter().map(|id| doc! {"_id": *id}).collect()).await;
    let mut inlet = MongoInlet::new(db.connector(), "c")
        .cursor(Cursor {
            field: "_id".into(),
            start: Some(Bson::ObjectId(ids[0])),
        })
        .format(JsonFormat::Relaxed);
    let got = pull(&mut inlet).await;
    assert_eq!(
        got,
        [
            json!({"_id": {"$oid": "65f000000000000000000002"}}),
            json!({"_id": {"$oid": "65f000000000000000000003"}})
        ]
    );
    assert_eq!(
        inlet.position(),
        Some(json!({"$oid": "65f000000000000000000003"}))
    );
    assert!(pull(&mut inlet).await.is_empty());
}

#[tokio::test]
async fn relaxed_json_round_trips_through_the_outlet() {
    let db = TestDatabase::new("in_round").await;
    let at = DateTime::parse_rfc3339_str("2024-05-01T12:00:00Z").unwrap();
    let original = doc! {"_id": ObjectId::new(), "at": at, "price": Decimal128::from_str("0.10").unwrap(),
    "n": 7_i64, "small": 7, "nested": {"list": [1, "two", null]}};
    insert(&db, "source", vec![original.clone()]).await;
    let mut inlet = MongoInlet::new(db.connector(), "source").format(JsonFormat::Relaxed);
    let payloads = pull(&mut inlet).await;
    write_back(&db, "copy", &payloads).await;
    let copy: Vec<Document> = {
        let mut found = db
            .database()
            .collection::<Document>("copy")
            .find(doc! {})
            .await
            .unwrap();
        let mut out = Vec::new();
        while found.advance().await.unwrap() {
            out.push(found.deserialize_current().unwrap());
        }
        out
    };
    // Every type survives, except that a 64-bit integer that fits 32 bits
    // comes back as a 32-bit one (JSON has one integer type).
    let mut want = original;
    want.insert("n", 7);
    assert_eq!(copy.len(), 1);
    for (key, value) in &want {
        assert_eq!(copy[0].get(key), Some(value), "{key}: {copy:?}");
    }
}

/// The outlet half of the round trip: the payloads converted as the
/// `mongodb` outlet converts them with `extended_json = true`.
async fn write_back(db: &TestDatabase, collection: &str, payloads: &[Value]) {
    let docs: Vec<Document> = payloads
        .iter()
        .map(|p| to_document(p, true).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    insert(db, collection, docs).await;
}

#[tokio::test]
async fn a_projection_without_the_cursor_field_fails_the_pull() {
    let db = TestDatabase::new("in_nofield").await;
    insert(&db, "c", vec![doc! {"seq": 1, "v": 1}]).await;
    let mut inlet = MongoInlet::new(db.connector(), "c")
        .projection(doc! {"seq": 0})
        .cursor(Cursor {
            field: "seq".into(),
            start: None,
        });
    let e = inlet.pull(&update()).await.unwrap_err();
    assert!(
        matches!(e.downcast_ref(), Some(MongoInletError::NoCursorField { field, .. }) if field == "seq"),
        "{e}"
    );
    assert_eq!(inlet.position(), None);
}

#[tokio::test]
async fn a_filter_the_server_refuses_is_named() {
    let db = TestDatabase::new("in_badop").await;
    insert(&db, "c", vec![doc! {"n": 1}]).await;
    let mut inlet = MongoInlet::new(db.connector(), "c").filter(doc! {"n": {"$bogus": 1}});
    let e = inlet.pull(&update()).await.unwrap_err().to_string();
    assert!(
        e.starts_with("MongoDB at ") && e.contains(&format!("/{}: find in `c`: ", db.name)),
        "{e}"
    );
    assert!(e.contains("$bogus"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_down_is_named_without_the_password() {
    let connector = ConnectionOptions {
        uri: Secret::new("mongodb://reader:s3cret-pw@127.0.0.1:1/test".into()),
        server_selection_timeout: Some(Duration::from_millis(300)),
        ..ConnectionOptions::default()
    }
    .connector()
    .unwrap();
    let mut inlet = MongoInlet::new(connector, "c");
    assert!(!format!("{inlet:?}").contains("s3cret"));
    let e = inlet.pull(&update()).await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown
            .starts_with("cannot reach MongoDB at 127.0.0.1:1/test: no usable server within 300ms"),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret") && !format!("{e:?}").contains("s3cret"),
        "{e:?}"
    );
}

/// The committed position is the resume state, typed (an ObjectId stays
/// one): a rollback goes back to it, and a restored inlet carries on after
/// the last committed document.
#[tokio::test]
async fn the_committed_position_is_the_resume_state() {
    let db = TestDatabase::new("in_resume").await;
    let ids: Vec<ObjectId> = (1..=4)
        .map(|i| ObjectId::parse_str(format!("65f00000000000000000000{i}")).unwrap())
        .collect();
    insert(&db, "c", ids.iter().map(|id| doc! {"_id": *id}).collect()).await;
    let make = || {
        MongoInlet::new(db.connector(), "c")
            .cursor(Cursor {
                field: "_id".into(),
                start: None,
            })
            .limit(2)
            .format(JsonFormat::Relaxed)
    };
    let oid = |i: usize| json!({"_id": {"$oid": ids[i].to_hex()}});
    let mut inlet = make();
    assert_eq!(inlet.snapshot(), Some(json!({"cursor": null})));
    assert_eq!(pull(&mut inlet).await, [oid(0), oid(1)]);
    inlet.commit(&update()).await.unwrap();
    assert_eq!(pull(&mut inlet).await, [oid(2), oid(3)]);
    inlet.rollback(&update()).await.unwrap();
    assert_eq!(pull(&mut inlet).await, [oid(2), oid(3)], "read again");
    let state = inlet.snapshot().unwrap();
    assert_eq!(state, json!({"cursor": {"$oid": ids[1].to_hex()}}));

    let mut resumed = make();
    resumed.restore(state).await.unwrap();
    assert_eq!(pull(&mut resumed).await, [oid(2), oid(3)]);
    let e = make()
        .restore(json!({"cursor": {"$oid": "nothex"}}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not valid extended JSON"), "{e}");
}

#[tokio::test]
async fn a_link_counts_the_bson_bytes_of_the_documents_read() {
    let db = TestDatabase::new("in_bytes").await;
    insert(
        &db,
        "docs",
        vec![doc! {"_id": 1, "n": 1}, doc! {"_id": 2, "n": 2}],
    )
    .await;
    let out = CollectOutlet::new();
    let link = Link::builder("mongo_in_bytes")
        .inlet(MongoInlet::new(db.connector(), "docs").cursor(Cursor {
            field: "_id".into(),
            start: None,
        }))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 2);
    // Each document: its length (4), `_id` and `n` as int32 (type, name
    // and NUL, 4 bytes) and the closing NUL.
    assert_eq!(link.node_stats()[0].bytes, Some(2 * (4 + 9 + 7 + 1)));
    link.transfer().await.unwrap();
    assert_eq!(link.node_stats()[0].bytes, Some(42), "nothing new was read");
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let db = TestDatabase::new("in_outage").await;
    insert(&db, "c", (1..=3).map(|n| doc! {"n": n}).collect()).await;
    let (proxy, connector) = databay_component::mongodb::testing::proxied(&db.name).await;
    let out = CollectOutlet::new();
    let link = Link::builder("mongo_outage")
        .inlet(MongoInlet::new(connector, "c").cursor(Cursor {
            field: "n".into(),
            start: None,
        }))
        .outlet(out.clone())
        .inlet_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        insert(&db, "c", vec![doc! {"n": 4}, doc! {"n": 5}]).await;
        2
    })
    .await
    .unwrap_or_default();
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    assert_eq!(
        field(&out.payloads(), "n"),
        (1..=5).map(|n| json!(n)).collect::<Vec<_>>()
    );
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
    let mut inlet = MongoInlet::new(connector, "c");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector's own timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", silent.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_refused_login_names_the_user_without_the_password() {
    let db = TestDatabase::new("in_auth").await;
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
    let mut inlet = MongoInlet::new(connector, "c");
    let start = inlet.on_start().await.map(drop);
    let pull = inlet.pull(&update()).await.map(drop);
    for result in [start, pull] {
        let e = result.unwrap_err();
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
    let mut inlet = MongoInlet::new(connector, "c");
    let e = tokio::time::timeout(Duration::from_secs(20), inlet.on_start())
        .await
        .expect("the connector gives up by itself")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", garbage.port())), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
