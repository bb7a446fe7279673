//! Tests of [`NullInlet`].

use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{Inlet, Link, Pull, Update};

use super::NullInlet;

#[tokio::test]
async fn passes_the_inlet_tester() {
    InletTester::new(NullInlet::new).run().await.unwrap();
}

#[tokio::test]
async fn every_pull_is_nothing() {
    let mut inlet = NullInlet::new();
    inlet.on_start().await.unwrap();
    for i in 0..5 {
        let pull = inlet.pull(&Update::new(["null"], i)).await.unwrap();
        assert!(matches!(pull, Pull::Nothing), "pull {i} gave {pull:?}");
    }
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_link_with_a_null_inlet_delivers_nothing_and_keeps_going() {
    let outlet = CollectOutlet::new();
    let link = Link::builder("null")
        .inlet(NullInlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    for _ in 0..3 {
        let report = link.transfer().await.unwrap();
        assert_eq!(report.records_in, 0);
    }
    assert!(outlet.is_empty());
    assert!(!link.is_exhausted());
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn the_null_inlet_produces_nothing_forever() {
    let mut inlet = NullInlet::new();
    inlet.on_start().await.unwrap();
    for _ in 0..100 {
        assert!(matches!(
            inlet.pull(&Update::new(["null"], 0)).await.unwrap(),
            Pull::Nothing
        ));
    }
    inlet.on_shutdown().await.unwrap();
}
