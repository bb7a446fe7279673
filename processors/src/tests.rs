//! Helpers shared by the processors' tests, checks over every registered
//! type, and a throughput measurement (`cargo test --release -p
//! databay-processors tests::throughput -- --ignored --nocapture`; set
//! `DATABAY_BENCH_ONLY=<label>` to run one case).

use databay_core::{BoxError, Context, Grouper, Processor, Record, Trigger, Update};
use serde::de::DeserializeOwned;
use serde_json::Value;

use databay_component::{Kind, Registry};

/// Every type of this crate, registered.
pub(crate) fn registry() -> Registry {
    let mut registry = Registry::new();
    crate::register(&mut registry);
    registry
}

/// The shared sample-and-README check, for one of this crate's types.
pub(crate) fn assert_documented(kind: Kind, name: &str, readme: &str) {
    databay_component::testing::assert_documented(&registry(), kind, name, readme);
}

/// Runs `processor` on `records` as a transfer would.
pub(crate) async fn run<P: Processor + ?Sized>(
    processor: &mut P,
    records: Vec<Record>,
) -> Result<Vec<Record>, BoxError> {
    run_with(processor, records, Trigger::Transfer).await
}

/// Runs `processor` on `records` with the given trigger.
pub(crate) async fn run_with<P: Processor + ?Sized>(
    processor: &mut P,
    records: Vec<Record>,
    trigger: Trigger,
) -> Result<Vec<Record>, BoxError> {
    let update = Update::new(["test"], 0);
    processor
        .process(records, &Context::new(&update, trigger))
        .await
}

/// The payloads of `records`.
pub(crate) fn payloads(records: &[Record]) -> Vec<Value> {
    records.iter().map(|r| r.payload.clone()).collect()
}

/// A component's `SAMPLE` as its options: the sample must be valid TOML
/// with a `type` key, and the rest must deserialize.
pub(crate) fn sample_options<T: DeserializeOwned>(sample: &str) -> T {
    let mut table: toml::Table =
        toml::from_str(sample).unwrap_or_else(|e| panic!("sample is not TOML: {e}\n{sample}"));
    assert!(
        table.remove("type").is_some(),
        "sample has no `type`:\n{sample}"
    );
    toml::Value::Table(table)
        .try_into()
        .unwrap_or_else(|e| panic!("sample does not deserialize: {e}\n{sample}"))
}

/// Builds the processor type `name` through the registry.
pub(crate) fn build_processor(name: &str, options: &str) -> Result<Box<dyn Processor>, String> {
    databay_component::testing::build(registry().processor_type(name), options)
}

/// Builds the grouper type `name` through the registry.
pub(crate) fn build_grouper(name: &str, options: &str) -> Result<Box<dyn Grouper>, String> {
    databay_component::testing::build(registry().grouper_type(name), options)
}

/// The error building the processor type `name` gives.
pub(crate) fn processor_error(name: &str, options: &str) -> String {
    match build_processor(name, options) {
        Ok(_) => panic!("{name} built from {options:?}"),
        Err(e) => e,
    }
}

/// The error building the grouper type `name` gives.
pub(crate) fn grouper_error(name: &str, options: &str) -> String {
    match build_grouper(name, options) {
        Ok(_) => panic!("{name} built from {options:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_type_is_registered() {
    let registry = registry();
    let mut processors = vec![
        "aggregate",
        "buffer",
        "collect",
        "join",
        "remove",
        "rename",
        "select",
        "set",
        "window",
    ];
    if cfg!(feature = "jq") {
        processors.extend(["filter", "map"]);
    }
    processors.sort_unstable();
    assert_eq!(registry.names(Kind::Processor), processors);
    assert_eq!(registry.names(Kind::Grouper), ["chunk", "group_by"]);
}

#[test]
fn every_sample_names_its_type_and_builds() {
    let registry = registry();
    for info in registry.components() {
        if !matches!(info.kind, Kind::Processor | Kind::Grouper) {
            continue;
        }
        assert!(
            !info.summary.is_empty() && !info.summary.contains('\n'),
            "{}",
            info.name
        );
        assert!(
            info.sample.starts_with("# "),
            "{}: sample starts with a comment",
            info.name
        );
        let mut table: toml::Table =
            toml::from_str(&info.sample).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let ty = table.remove("type");
        assert_eq!(
            ty.as_ref().and_then(|t| t.as_str()),
            Some(info.name.as_str()),
            "{}",
            info.name
        );
        let rest = toml::to_string(&table).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let built = match info.kind {
            Kind::Processor => build_processor(&info.name, &rest).map(drop),
            _ => build_grouper(&info.name, &rest).map(drop),
        };
        built.unwrap_or_else(|e| panic!("{}: sample does not build: {e}", info.name));
    }
}

#[test]
fn unknown_options_are_rejected_by_every_type() {
    let registry = registry();
    for name in registry.names(Kind::Processor) {
        let e = processor_error(name, "no_such_option = 1");
        assert!(e.contains("no_such_option"), "{name}: {e}");
    }
    for name in registry.names(Kind::Grouper) {
        let e = grouper_error(name, "no_such_option = 1");
        assert!(e.contains("no_such_option"), "{name}: {e}");
    }
}

/// Prints records/s for the row-at-a-time processors over a million
/// records of a typical shape.
#[tokio::test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
async fn throughput() {
    use std::time::Instant;

    const N: usize = 1_000_000;
    let make = || -> Vec<Record> {
        (0..N)
            .map(|i| {
                Record::new(serde_json::json!({
                    "id": i,
                    "user": format!("u{}", i % 1000),
                    "amount": (i % 50) as f64 + 0.5,
                    "ts": "2026-01-01T00:00:00Z",
                }))
            })
            .collect()
    };
    let only = std::env::var("DATABAY_BENCH_ONLY").ok();
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "select",
            "select",
            "pointer = \"/amount\"\nop = \"gt\"\nvalue = 10",
        ),
        (
            "select all",
            "select",
            "pointer = \"/amount\"\nop = \"gt\"\nvalue = -1",
        ),
        ("set new", "set", "fields = { \"/flag\" = true }"),
        ("set existing", "set", "fields = { \"/amount\" = 1 }"),
        (
            "set new nested",
            "set",
            "fields = { \"/flag\" = true, \"/meta/source\" = \"api\" }",
        ),
        ("remove", "remove", "fields = [\"/ts\"]"),
        ("rename", "rename", "fields = { \"/user\" = \"/name\" }"),
        ("filter (jq)", "filter", "expr = \".amount > 10\""),
        (
            "map (jq)",
            "map",
            "expr = \"select(.amount > 10) | .flag = true\"",
        ),
        (
            "map cents (jq)",
            "map",
            "expr = \"select(.amount > 10) | .amount_cents = (.amount * 100 | round)\"",
        ),
        ("map other (jq)", "map", "expr = \"{id, user} | .n = 1\""),
    ];
    // Best of three rounds: the first also pays for the pages the
    // allocator gets from the kernel, which a running daemon reuses.
    const ROUNDS: usize = 3;
    let report = |label: &str, best: f64, out: usize| {
        println!(
            "{label:>16}: {:>6.2} M records/s ({:>4.0} ns/record, {out} out)",
            N as f64 / best / 1e6,
            best * 1e9 / N as f64,
        );
    };

    // The yardstick: parsing the same records from JSON text.
    let text: Vec<String> = make().iter().map(|r| r.payload.to_string()).collect();
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let parsed: Vec<Value> = text
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect();
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(parsed.len(), N);
    }
    report("JSON parse", best, N);
    drop(text);

    for (label, name, options) in cases {
        if only.as_deref().is_some_and(|o| o != label) {
            continue;
        }
        if !cfg!(feature = "jq") && label.contains("jq") {
            continue;
        }
        let mut best = f64::MAX;
        let mut kept = 0;
        for _ in 0..ROUNDS {
            let mut processor = build_processor(name, options).unwrap();
            let records = make();
            let start = Instant::now();
            let out = run(processor.as_mut(), records).await.unwrap();
            best = best.min(start.elapsed().as_secs_f64());
            kept = out.len();
        }
        report(label, best, kept);
    }
}
