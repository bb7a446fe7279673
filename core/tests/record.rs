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

    // `__inlet__` can be removed, and overridden locally.
    let mut r = Record::new(1);
    r.set_origin(o.clone());
    assert_eq!(r.remove_meta(databay_core::INLET_KEY), Some(json!("zoo")));
    assert_eq!(r.inlet(), None);
    assert_eq!(r.meta("animal"), Some(&json!("cat")));
    let mut r = Record::new(1).with_meta(databay_core::INLET_KEY, "elsewhere");
    r.set_origin(o.clone());
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
