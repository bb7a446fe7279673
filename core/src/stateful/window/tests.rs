//! The window operator: closing on the watermark and on time, late items,
//! bounds on the output, EOF, freed state, and snapshot/restore.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::*;
use crate::processor::{Processor, Trigger};
use crate::record::{INLET_KEY, Record};
use crate::stateful::tests::{T0, Time, assert_restores, gauge, keyed, pairs, run, t0, user};
use crate::stateful::{EmitMode, InsertMode, Join, KEY_META};

fn at(user: &str, secs: i64) -> Record {
    Record::new(json!({"user": user, "ts": T0 + secs}))
}

fn event_clock(wait: u64) -> EventClock {
    EventClock::new(
        |r: &Record| timestamp_of(r.payload.get("ts")),
        Duration::from_secs(wait),
    )
}

fn s(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn bounds(record: &Record) -> (String, String) {
    let text = |k| {
        record
            .meta(k)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    (text(WINDOW_OPEN_META), text(WINDOW_CLOSE_META))
}

fn tumbling(secs: u64) -> Tumbling {
    Tumbling::new(Duration::from_secs(secs), t0()).unwrap()
}

#[test]
fn event_time_windows_close_on_the_watermark_and_on_time() {
    let time = Time::new();
    let mut op = count_window(user(), event_clock(2), tumbling(10)).wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![at("a", 1), at("a", 5), at("b", 3), at("a", 12)],
    );
    // The watermark is 12 - 2 = 10: [0, 10) closed for both keys.
    assert_eq!(keyed(&out), pairs(&[("a", json!(2)), ("b", json!(1))]));
    assert_eq!(
        bounds(&out[0]),
        ("2026-01-01T00:00:00Z".into(), "2026-01-01T00:00:10Z".into())
    );
    assert_eq!(op.len(), 1, "b has no open window left: dropped");
    assert_eq!(gauge(&op.gauges(), "windows"), 1);
    // No newer item: the watermark reaches 20 after 10 s of wall time.
    assert_eq!(op.next_wakeup(), Some(time.at(10.0)));
    let out = run(&mut op, &time, 10.0, Trigger::Timer, vec![]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(1))]));
    assert_eq!(
        bounds(&out[0]),
        ("2026-01-01T00:00:10Z".into(), "2026-01-01T00:00:20Z".into())
    );
    assert!(op.is_empty());
    assert_eq!(op.next_wakeup(), None);
}

#[test]
fn late_items_are_emitted_marked_and_counted() {
    let time = Time::new();
    let mut op = count_window(user(), event_clock(2), tumbling(10)).wall_clock(time.clock());
    run(&mut op, &time, 0.0, Trigger::Transfer, vec![at("a", 12)]);
    // The watermark is 10 (+1 s of wall time): [0, 10) is closed.
    let late = at("b", 7).with_meta("origin", "x");
    let out = run(
        &mut op,
        &time,
        1.0,
        Trigger::Transfer,
        vec![late, at("a", 9)],
    );
    assert_eq!(out.len(), 2);
    for (record, user) in out.iter().zip(["b", "a"]) {
        assert_eq!(record.meta(LATE_META), Some(&json!(true)));
        assert_eq!(record.meta(KEY_META), Some(&json!(user)));
        assert_eq!(record.payload["user"], user, "emitted as it came");
    }
    assert_eq!(out[0].meta("origin"), Some(&json!("x")));
    assert_eq!(gauge(&op.gauges(), "late_records_total"), 2);
    assert_eq!(op.len(), 1, "a late item does not keep a key alive");
    // Not late: its window is still open.
    let out = run(&mut op, &time, 1.0, Trigger::Transfer, vec![at("a", 11)]);
    assert!(out.is_empty());
}

#[test]
fn a_missing_timestamp_is_a_rejected_record() {
    let time = Time::new();
    let mut op = count_window(user(), event_clock(0), tumbling(10)).wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![Record::new(json!({"user": "a"})), at("a", 1)],
    );
    assert!(out.is_empty());
    assert_eq!(op.rejected(), 1);
    let out = run(&mut op, &time, 0.0, Trigger::Flush, vec![]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(1))]));
}

#[test]
fn eof_closes_every_open_window_in_close_order() {
    let time = Time::new();
    let mut op = collect_window(
        user(),
        event_clock(60),
        Sliding::new(Duration::from_secs(10), Duration::from_secs(5), t0()).unwrap(),
    )
    .wall_clock(time.clock());
    run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![at("a", 7), at("a", 8), at("a", 12)],
    );
    assert_eq!(gauge(&op.gauges(), "windows"), 3);
    let out = run(&mut op, &time, 0.0, Trigger::Flush, vec![]);
    let ts = |r: &Record| -> Vec<i64> {
        r.payload
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["ts"].as_i64().unwrap() - T0)
            .collect()
    };
    let got: Vec<((String, String), Vec<i64>)> = out.iter().map(|r| (bounds(r), ts(r))).collect();
    let b = |open: i64, close: i64| (rfc3339(s(open)), rfc3339(s(close)));
    assert_eq!(
        got,
        [
            (b(0, 10), vec![7, 8]),
            (b(5, 15), vec![7, 8, 12]),
            (b(10, 20), vec![12])
        ]
    );
    assert!(op.is_empty());
    assert_eq!(gauge(&op.gauges(), "windows"), 0);
}

#[test]
fn system_time_windows_close_on_time() {
    let time = Time::new();
    let mut op = fold_window(
        user(),
        SystemClock,
        tumbling(60),
        || 0i64,
        |acc, v: Value| acc + v["n"].as_i64().unwrap_or(0),
        |a, b| a + b,
    )
    .wall_clock(time.clock());
    let n = |u: &str, n: i64| Record::new(json!({"user": u, "n": n}));
    run(
        &mut op,
        &time,
        1.0,
        Trigger::Transfer,
        vec![n("a", 2), n("a", 3)],
    );
    run(&mut op, &time, 59.0, Trigger::Transfer, vec![n("a", 4)]);
    assert_eq!(op.next_wakeup(), Some(time.at(60.0)));
    let out = run(&mut op, &time, 60.0, Trigger::Timer, vec![]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(9))]));
    let out = run(&mut op, &time, 61.0, Trigger::Transfer, vec![n("a", 1)]);
    assert!(out.is_empty(), "the next minute's window");
    assert_eq!(op.next_wakeup(), Some(time.at(120.0)));
}

#[test]
fn closed_sessions_free_their_keys() {
    let time = Time::new();
    let mut op = count_window(
        user(),
        event_clock(1),
        Session::new(Duration::from_secs(5)).unwrap(),
    )
    .wall_clock(time.clock());
    let users: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    for (step, offset) in [0, 3, 6].into_iter().enumerate() {
        let records: Vec<Record> = users.iter().map(|u| at(u, offset)).collect();
        let out = run(&mut op, &time, step as f64, Trigger::Transfer, records);
        assert!(out.is_empty());
    }
    assert_eq!(op.len(), 1000);
    assert_eq!(gauge(&op.gauges(), "windows"), 1000);
    // Sessions close at 6 + 5 = 11; the watermark is 6 - 1 = 5 at wall 2 s.
    assert_eq!(op.next_wakeup(), Some(time.at(8.0)));
    let out = run(&mut op, &time, 8.0, Trigger::Timer, vec![]);
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|r| r.payload == json!(3)));
    assert_eq!(
        bounds(&out[0]),
        (rfc3339(s(0)), rfc3339(s(11))),
        "a session is [first item, last item + gap)"
    );
    assert_eq!(op.len(), 0);
    let gauges = op.gauges();
    assert_eq!(gauge(&gauges, "windows"), 0);
    assert_eq!(gauge(&gauges, "timers"), 0);
    assert_eq!(
        Processor::snapshot(&op).unwrap().unwrap()["keys"],
        json!([]),
        "nothing left behind"
    );
}

#[test]
fn sessions_merge_when_an_item_bridges_them() {
    let time = Time::new();
    let mut op = collect_window(
        user(),
        event_clock(100),
        Session::new(Duration::from_secs(5)).unwrap(),
    )
    .wall_clock(time.clock());
    run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![at("a", 0), at("a", 8)],
    );
    assert_eq!(gauge(&op.gauges(), "windows"), 2);
    run(&mut op, &time, 0.0, Trigger::Transfer, vec![at("a", 4)]);
    assert_eq!(gauge(&op.gauges(), "windows"), 1);
    let out = run(&mut op, &time, 0.0, Trigger::Flush, vec![]);
    let ts: Vec<i64> = out[0]
        .payload
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ts"].as_i64().unwrap() - T0)
        .collect();
    assert_eq!(ts, [0, 8, 4]);
    assert_eq!(bounds(&out[0]), (rfc3339(s(0)), rfc3339(s(13))));
}

#[test]
fn reduce_max_and_min_windows() {
    let time = Time::new();
    let n = |u: &str, secs: i64, n: i64| Record::new(json!({"user": u, "ts": T0 + secs, "n": n}));
    let batch = || vec![n("a", 1, 3), n("a", 2, 9), n("a", 3, -2), n("a", 11, 5)];
    let by = |v: &Value| v["n"].as_i64();
    let mut max = max_window(user(), event_clock(0), tumbling(10), by).wall_clock(time.clock());
    let mut min = min_window(user(), event_clock(0), tumbling(10), by).wall_clock(time.clock());
    let mut sum = reduce_window(user(), event_clock(0), tumbling(10), |a: Value, b: Value| {
        json!({"n": a["n"].as_i64().unwrap_or(0) + b["n"].as_i64().unwrap_or(0)})
    })
    .wall_clock(time.clock());
    let ns = |out: Vec<Record>| {
        out.iter()
            .map(|r| r.payload["n"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ns(run(&mut max, &time, 0.0, Trigger::Flush, batch())),
        [json!(9), json!(5)]
    );
    assert_eq!(
        ns(run(&mut min, &time, 0.0, Trigger::Flush, batch())),
        [json!(-2), json!(5)]
    );
    assert_eq!(
        ns(run(&mut sum, &time, 0.0, Trigger::Flush, batch())),
        [json!(10), json!(5)]
    );
}

#[test]
fn join_window_joins_within_each_window() {
    let time = Time::new();
    let side = |name: &str, secs: i64, v: &str| {
        Record::new(json!({"user": "a", "ts": T0 + secs, "v": v})).with_meta(INLET_KEY, name)
    };
    let make = |emit| {
        join_window(
            user(),
            event_clock(0),
            tumbling(10),
            Join::new(["users", "orders"])
                .insert_mode(InsertMode::Product)
                .emit_mode(emit),
        )
        .wall_clock(time.clock())
    };
    let batch = || {
        vec![
            side("users", 1, "u1"),
            side("orders", 2, "o1"),
            side("orders", 12, "o2"),
        ]
    };
    let vs = |out: &[Record]| -> Vec<(Value, Value)> {
        out.iter()
            .map(|r| {
                (
                    r.payload["users"]["v"].clone(),
                    r.payload["orders"]["v"].clone(),
                )
            })
            .collect()
    };
    let mut fin = make(EmitMode::Final);
    let out = run(&mut fin, &time, 0.0, Trigger::Flush, batch());
    assert_eq!(
        vs(&out),
        [(json!("u1"), json!("o1")), (Value::Null, json!("o2"))]
    );
    let mut complete = make(EmitMode::Complete);
    let out = run(&mut complete, &time, 0.0, Trigger::Flush, batch());
    assert_eq!(vs(&out), [(json!("u1"), json!("o1"))]);
    let mut running = make(EmitMode::Running);
    let out = run(&mut running, &time, 0.0, Trigger::Flush, batch());
    assert_eq!(
        vs(&out),
        [
            (json!("u1"), Value::Null),
            (json!("u1"), json!("o1")),
            (Value::Null, json!("o2"))
        ]
    );
    let out = run(
        &mut fin,
        &time,
        0.0,
        Trigger::Flush,
        vec![side("refunds", 1, "r")],
    );
    assert!(out.is_empty());
    assert_eq!(fin.rejected(), 1);
}

#[test]
fn window_snapshots_restore_exactly() {
    let time_ts = |r: &Record| timestamp_of(r.payload.get("ts"));
    assert_restores("session count, event time", false, || {
        count_window(
            user(),
            EventClock::new(time_ts, Duration::from_secs(2)),
            Session::new(Duration::from_secs(3)).unwrap(),
        )
    });
    assert_restores("sliding collect, event time", false, || {
        collect_window(
            user(),
            EventClock::new(time_ts, Duration::from_secs(1)),
            Sliding::new(Duration::from_secs(4), Duration::from_secs(2), t0()).unwrap(),
        )
    });
    assert_restores("tumbling fold, system time", false, || {
        fold_window(
            user(),
            SystemClock,
            tumbling(3),
            Vec::new,
            |mut acc: Vec<Value>, v: Value| {
                acc.push(v["n"].clone());
                acc
            },
            |mut a, b| {
                a.extend(b);
                a
            },
        )
    });
    assert_restores("join window", true, || {
        join_window(
            user(),
            EventClock::new(time_ts, Duration::from_secs(1)),
            tumbling(5),
            Join::new(["users", "orders"]).emit_mode(EmitMode::Final),
        )
    });
}

/// Windows restored into a windower with other settings (here 1 s windows
/// into 60 s ones) are not at the ids it would give them: the next close
/// is found among all of them, and items land in the windows that hold
/// them.
#[test]
fn windows_restored_with_other_settings_still_close_in_time() {
    let time = Time::new();
    let mut before = count_window(user(), event_clock(1000), tumbling(1)).wall_clock(time.clock());
    run(
        &mut before,
        &time,
        0.0,
        Trigger::Transfer,
        vec![at("a", 10), at("a", 70)],
    );
    let snapshot = Processor::snapshot(&before).unwrap().unwrap();

    let mut after = count_window(user(), event_clock(1000), tumbling(60)).wall_clock(time.clock());
    Processor::restore(&mut after, snapshot).unwrap();
    // Into a new 60 s window [60, 120), beside the restored [10, 11) and
    // [70, 71); the one that closes first is [10, 11).
    run(
        &mut after,
        &time,
        0.0,
        Trigger::Transfer,
        vec![at("a", 75), at("a", 10)],
    );
    // The watermark is 75 - 1000 s: it reaches 11 s in 936 s.
    assert_eq!(after.next_wakeup(), Some(time.at(936.0)));
    let out = run(&mut after, &time, 0.0, Trigger::Flush, vec![]);
    let mut counts: Vec<(String, Value)> = out
        .iter()
        .map(|r| (bounds(r).0, r.payload.clone()))
        .collect();
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        counts,
        [
            ("2026-01-01T00:00:10Z".to_owned(), json!(2)),
            ("2026-01-01T00:01:00Z".to_owned(), json!(1)),
            ("2026-01-01T00:01:10Z".to_owned(), json!(1)),
        ]
    );
}
