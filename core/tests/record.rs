//! Records and their layered metadata: local entries, the shared origin
//! (`__inlet__` and global metadata), removal, equality and display.

use std::sync::Arc;

use databay_core::{Metadata, Origin, Record};
use serde_json::json;

fn origin() -> Arc<Origin> {
    let mut global = Metadata::new();
    global.insert("animal".into(), json!("cat"));
    global.insert("color".into(), json!("black"));
    Arc::new(Origin::new("zoo", global))
}

#[test]
fn record_metadata_edge_cases() {
    let o = origin();

    // A local entry shadowing a global one: removing the key removes it
    // from every layer (the global value does not resurface).
    let mut r = Record::new(1).with_meta("animal", "parrot");
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta("animal"), Some(json!("parrot")));
    assert_eq!(r.meta("animal"), None);
    assert_eq!(r.meta("color"), Some(&json!("black")));
    assert_eq!(r.inlet(), Some("zoo"));
    assert_eq!(o.global().get("animal"), Some(&json!("cat")));

    // Removing a key no layer has changes nothing and keeps sharing.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta("missing"), None);
    assert!(Arc::ptr_eq(r.origin().unwrap(), &o));

    // `__inlet__` can be removed.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta(databay_core::INLET_KEY), Some(json!("zoo")));
    assert_eq!(r.inlet(), None);
    assert_eq!(r.meta("animal"), Some(&json!("cat")));
    // The origin names the inlet whatever the inlet set; a processor
    // after it may still override the name locally.
    let mut r = Record::new(1).with_meta(databay_core::INLET_KEY, "elsewhere");
    r.set_origin(o.clone());
    assert_eq!(r.inlet(), Some("zoo"));
    r.set_meta(databay_core::INLET_KEY, "elsewhere");
    assert_eq!(r.inlet(), Some("elsewhere"));

    // After detaching, set/remove keep working and clones are independent.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    r.remove_meta("color");
    let copy = r.clone();
    r.set_meta("color", "white");
    assert_eq!(r.meta("color"), Some(&json!("white")));
    assert_eq!(copy.meta("color"), None);
    assert_eq!(r.remove_meta("color"), Some(json!("white")));
    assert_eq!(r.remove_meta("animal"), Some(json!("cat")));
    assert_eq!(r.remove_meta("animal"), None);
    assert_eq!(r.metadata().len(), 1, "{:?}", r.metadata());

    // Equality compares the merged view, whatever the layering.
    let mut shared = Record::new(1);
    shared.set_origin(o.clone());
    let mut detached = shared.clone();
    detached.remove_meta("missing");
    detached.set_meta("x", 1);
    detached.remove_meta("x");
    assert_eq!(shared, detached);

    // No metadata at all.
    let bare = Record::new(json!([1, 2]));
    assert!(bare.metadata().is_empty());
    assert_eq!(bare.to_string(), "Record(payload=[1,2], metadata={})");
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        json!({"payload": [1, 2], "metadata": {}})
    );
}

/// The framework names the producing inlet; a local `__inlet__` set by the
/// inlet itself does not survive (Databay's `new_record` does the same).
#[tokio::test]
async fn an_inlet_cannot_forge_its_name() {
    use databay_core::testing::{CollectOutlet, InletTester, StaticInlet};
    use databay_core::{INLET_KEY, InletHandle, Link};

    let forged = || {
        StaticInlet::records(vec![
            Record::new(json!(1)).with_meta(INLET_KEY, "upstream"),
            Record::new(json!(2))
                .with_meta(INLET_KEY, "upstream")
                .with_meta("k", "v"),
        ])
    };
    let out = CollectOutlet::new();
    let link = Link::builder("l")
        .inlet(InletHandle::builder(forged()).name("forwarder").build())
        .outlet(out.clone())
        .every(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let records = out.records();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.meta(INLET_KEY), Some(&json!("forwarder")), "{r}");
    }
    assert_eq!(records[1].meta("k"), Some(&json!("v")));
    // A detached record (a complete map of its own) is named too.
    let mut map = Metadata::new();
    map.insert(INLET_KEY.into(), json!("upstream"));
    let mut detached = Record::with_metadata(json!(3), map);
    detached.set_origin(origin());
    assert_eq!(detached.inlet(), Some("zoo"));
    InletTester::new(forged).run().await.unwrap();
}
