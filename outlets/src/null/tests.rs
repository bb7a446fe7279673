//! Tests of [`NullOutlet`].

use databay_core::testing::OutletTester;
use databay_core::{Outlet, Record, Update};
use serde_json::{Value, json};

use super::NullOutlet;

#[tokio::test]
async fn passes_the_outlet_checks() {
    OutletTester::new(NullOutlet::new).run().await.unwrap();
}

fn update() -> Update {
    Update::new(["null"], 0)
}

fn objects(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

#[tokio::test]
async fn the_null_outlet_accepts_anything() {
    let mut outlet = NullOutlet::new();
    let records = objects(&[Value::Null, json!([[[]]]), json!("x".repeat(1 << 20))]);
    outlet.push(&records, &update()).await.unwrap();
    outlet.push(&[], &update()).await.unwrap();
}
