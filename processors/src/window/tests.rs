use std::time::Duration;

use databay_core::{Processor, Record, Trigger};
use serde_json::json;

use super::*;
use crate::tests::{build_processor, payloads, processor_error, run, run_with, sample_options};

#[test]
fn sample_and_readme_match_the_options() {
    crate::tests::assert_documented(
        databay_component::Kind::Processor,
        "window",
        include_str!("README.md"),
    );
}

#[test]
fn sample_is_valid() {
    let o: WindowOptions = sample_options(SAMPLE);
    assert_eq!(o.window, WindowKind::Tumbling);
    assert_eq!(o.length, Some(Duration::from_secs(60)));
    o.build().unwrap();
}

fn click(user: &str, at: &str, page: &str) -> Record {
    Record::new(json!({"user": user, "at": format!("2026-01-01T00:{at}Z"), "page": page}))
}

const EVENT_MINUTES: &str = "key = \"/user\"\nwindow = \"tumbling\"\nlength = \"1m\"\ntimestamp = \"/at\"\n\
    aggregates.clicks = { reducer = \"count\" }\naggregates.pages = { reducer = \"count_distinct\", pointer = \"/page\" }";

#[tokio::test]
async fn event_time_windows_emit_their_bounds_and_mark_late_records() {
    let mut p = build_processor("window", EVENT_MINUTES).unwrap();
    let out = run(
        &mut p,
        vec![
            click("ada", "00:10", "/"),
            click("ada", "00:50", "/cart"),
            click("bob", "00:20", "/"),
            click("ada", "00:50", "/cart"),
        ],
    )
    .await
    .unwrap();
    assert!(out.is_empty());
    let out = run(&mut p, vec![click("ada", "01:05", "/")]).await.unwrap();
    assert_eq!(
        payloads(&out),
        [
            json!({"key": "ada", "window_open": "2026-01-01T00:00:00Z",
                   "window_close": "2026-01-01T00:01:00Z", "clicks": 3, "pages": 2}),
            json!({"key": "bob", "window_open": "2026-01-01T00:00:00Z",
                   "window_close": "2026-01-01T00:01:00Z", "clicks": 1, "pages": 1}),
        ]
    );
    let late = run(&mut p, vec![click("bob", "00:30", "/")]).await.unwrap();
    assert_eq!(payloads(&late), [click("bob", "00:30", "/").payload]);
    assert_eq!(late[0].meta("__late__"), Some(&json!(true)));
    let late_total = p
        .gauges()
        .into_iter()
        .find(|g| g.name == "late_records_total");
    assert_eq!(late_total.map(|g| g.value), Some(1));
    let out = run_with(&mut p, vec![], Trigger::Flush).await.unwrap();
    assert_eq!(out.len(), 1, "EOF closes ada's second window");
    assert_eq!(out[0].payload["window_open"], "2026-01-01T00:01:00Z");
}

#[tokio::test(start_paused = true)]
async fn processing_time_windows_close_on_time() {
    let mut p = build_processor(
        "window",
        "key = \"/user\"\nwindow = \"sliding\"\nlength = \"10s\"\noffset = \"5s\"\n\
         window_open_field = \"from\"\nwindow_close_field = \"to\"\naggregates.n = { reducer = \"count\" }",
    )
    .unwrap();
    run(&mut p, vec![click("ada", "00:00", "/")]).await.unwrap();
    let wake = p.next_wakeup().expect("a window to close");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(wake <= tokio::time::Instant::now().into_std());
    let out = run_with(&mut p, vec![], Trigger::Timer).await.unwrap();
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|r| r.payload["n"] == 1 && r.payload["from"].is_string())
    );
}

#[tokio::test]
async fn sessions_aggregate_bursts() {
    let mut p = build_processor(
        "window",
        "key = \"/user\"\nwindow = \"session\"\ngap = \"30s\"\ntimestamp = \"/at\"\n\
         aggregates.pages = { reducer = \"collect\", pointer = \"/page\" }",
    )
    .unwrap();
    let mut out = run(
        &mut p,
        vec![
            click("ada", "00:00", "/a"),
            click("ada", "00:20", "/b"),
            click("ada", "02:00", "/c"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 1, "02:00 closed the first session");
    out.extend(run_with(&mut p, vec![], Trigger::Flush).await.unwrap());
    let pages: Vec<_> = out.iter().map(|r| r.payload["pages"].clone()).collect();
    assert_eq!(pages, [json!(["/a", "/b"]), json!(["/c"])]);
    assert_eq!(out[0].payload["window_close"], "2026-01-01T00:00:50Z");
    let keys = p.gauges().into_iter().find(|g| g.name == "keys");
    assert_eq!(keys.map(|g| g.value), Some(0));
}

#[test]
fn bad_options_are_named() {
    let agg = "aggregates.n = { reducer = \"count\" }";
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"tumbling\"\n{agg}"),
    );
    assert!(
        e.contains("option `length`: tumbling windows need `length`"),
        "{e}"
    );
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"sliding\"\nlength = \"5s\"\noffset = \"10s\"\n{agg}"),
    );
    assert!(
        e.contains("option `offset`: the window offset must be at most"),
        "{e}"
    );
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"session\"\ngap = \"5s\"\nlength = \"1s\"\n{agg}"),
    );
    assert!(
        e.contains("option `length`: is not an option of session windows"),
        "{e}"
    );
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"tumbling\"\nlength = \"5s\"\nwait = \"1s\"\n{agg}"),
    );
    assert!(e.contains("option `wait`: only event time"), "{e}");
    let e = processor_error(
        "window",
        &format!(
            "key = \"/u\"\nwindow = \"tumbling\"\nlength = \"5s\"\nalign_to = \"noon\"\n{agg}"
        ),
    );
    assert!(
        e.contains("option `align_to`: \"noon\" is not an RFC 3339 time"),
        "{e}"
    );
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"hopping\"\nlength = \"5s\"\n{agg}"),
    );
    assert!(e.contains("unknown variant `hopping`"), "{e}");
    let e = processor_error(
        "window",
        &format!("key = \"/u\"\nwindow = \"tumbling\"\nlength = \"0s\"\n{agg}"),
    );
    assert!(
        e.contains("option `length`: the window length must be longer than 0s"),
        "{e}"
    );
    let e = processor_error(
        "window",
        &format!(
            "key = \"/u\"\nwindow = \"tumbling\"\nlength = \"5s\"\nwindow_open_field = \"n\"\n{agg}"
        ),
    );
    assert!(
        e.contains("option `window_open_field`: `n` is also the name of an aggregate"),
        "{e}"
    );
}

#[tokio::test]
async fn snapshot_and_restore_keep_open_windows_and_the_clock() {
    let mut first = build_processor("window", EVENT_MINUTES).unwrap();
    run(&mut first, vec![click("ada", "00:10", "/")])
        .await
        .unwrap();
    let mut second = build_processor("window", EVENT_MINUTES).unwrap();
    second.restore(first.snapshot().unwrap().unwrap()).unwrap();
    let late = run(
        &mut second,
        vec![click("ada", "01:30", "/"), click("bob", "00:05", "/")],
    )
    .await
    .unwrap();
    // The clock came along: bob's 00:05 is late once 01:30 was seen.
    assert_eq!(late.len(), 2, "{late:?}");
    assert_eq!(late[0].meta("__late__"), Some(&json!(true)));
    assert_eq!(late[0].payload["user"], "bob");
    assert_eq!(late[1].payload["clicks"], 1, "ada's first window closed");
}

/// `late` names the outlet late records go to: they carry `__route__`
/// with it (besides `__late__`); the windows' output does not.
#[tokio::test]
async fn late_records_are_routed_to_the_named_outlet() {
    let options = format!("{EVENT_MINUTES}\nlate = \"late_clicks\"");
    let mut p = build_processor("window", &options).unwrap();
    run(&mut p, vec![click("ada", "00:10", "/")]).await.unwrap();
    let out = run(
        &mut p,
        vec![click("ada", "01:05", "/"), click("bob", "00:20", "/")],
    )
    .await
    .unwrap();
    let route = |r: &Record| r.meta(databay_core::routing::ROUTE_KEY).cloned();
    let (late, closed): (Vec<_>, Vec<_>) = out.iter().partition(|r| r.meta("__late__").is_some());
    assert_eq!(late.len(), 1, "{out:?}");
    assert_eq!(route(late[0]), Some(json!("late_clicks")));
    assert_eq!(closed.len(), 1, "{out:?}");
    assert_eq!(
        route(closed[0]),
        None,
        "the windows' output goes everywhere"
    );
}
