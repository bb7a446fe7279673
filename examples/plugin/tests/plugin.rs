//! The plugin's types pass the core's checks, load from its sample config,
//! and run in a link.

use std::path::Path;

use databay::config::Config;
use databay_core::testing::{InletTester, OutletTester};
use databay_core::{Link, Record};
use databay_example_plugin::{Countdown, SAMPLE, Tally, register};
use serde_json::json;

#[tokio::test]
async fn countdown_and_tally_pass_the_test_kit() {
    InletTester::new(|| Countdown::new(10, "t"))
        .run()
        .await
        .unwrap();
    OutletTester::new(|| Tally::new(false))
        .records(vec![
            Record::new(json!({"n": 2})),
            Record::new(json!({"n": 3})),
        ])
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sample_config_loads_and_runs_to_the_end() {
    let mut registry = databay::builtins();
    register(&mut registry);
    let config = Config::parse(Path::new("sample.toml"), SAMPLE, &registry, &|_| None).unwrap();
    assert_eq!(config.links.len(), 1);
    assert_eq!(config.links[0].summary.inlets, ["countdown"]);

    // The same types, wired in Rust, count down 5..0 and sum to 15.
    let tally = Tally::new(false);
    let link = Link::builder("countdown")
        .inlet(Countdown::new(5, "launch"))
        .outlet(tally.clone())
        .build()
        .unwrap();
    while !link.is_exhausted() {
        link.transfer().await.unwrap();
    }
    assert_eq!(tally.total(), 15);
}

#[tokio::test]
async fn tally_rejects_records_without_n() {
    let link = Link::builder("bad")
        .inlet(databay_core::testing::StaticInlet::values([
            json!({"x": 1}),
        ]))
        .outlet(Tally::new(false))
        .build()
        .unwrap();
    let err = link.transfer().await.unwrap_err().to_string();
    assert!(
        err.contains("record 0 has no unsigned integer field `n`"),
        "{err}"
    );
}

#[test]
fn a_typo_in_a_plugin_option_is_located() {
    let mut registry = databay::builtins();
    register(&mut registry);
    let text = SAMPLE.replace("from = 5", "form = 5");
    let err = match Config::parse(Path::new("sample.toml"), &text, &registry, &|_| None) {
        Ok(_) => panic!("the typo was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("unknown field `form`") && err.contains("did you mean `from`?"),
        "{err}"
    );
}
