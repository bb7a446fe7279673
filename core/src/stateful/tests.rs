//! The keyed operators' semantics: state across transfers, EOF per link
//! and per transfer, rejected records, DISCARD, timers, joins, and
//! snapshot/restore against an uninterrupted run.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::*;
use crate::processor::{Context, Gauge, Processor, Trigger};
use crate::record::{INLET_KEY, Record};
use crate::update::Update;

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: i64 = 1_767_225_600;

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).unwrap()
}

/// A clock on which `base()` is 2026-01-01T00:00:00Z.
pub(crate) struct Time {
    base: Instant,
}

impl Time {
    pub(crate) fn new() -> Self {
        Time {
            base: Instant::now(),
        }
    }

    pub(crate) fn clock(&self) -> WallClock {
        WallClock::fixed(self.base, t0())
    }

    pub(crate) fn at(&self, secs: f64) -> Instant {
        self.base + Duration::from_secs_f64(secs)
    }
}

pub(crate) fn run<K: KeyFn, L: KeyedLogic>(
    op: &mut Stateful<K, L>,
    time: &Time,
    secs: f64,
    trigger: Trigger,
    records: Vec<Record>,
) -> Vec<Record> {
    let update = Update::new(["test"], 0);
    let cx = Context::new(&update, trigger).at(time.at(secs));
    op.run(records, &cx)
}

pub(crate) fn user() -> impl KeyFn {
    |r: &Record| key_text(r.payload.get("user"))
}

pub(crate) fn ev(user: &str, n: i64) -> Record {
    Record::new(json!({"user": user, "n": n}))
}

/// `(key, payload)` of each record.
pub(crate) fn keyed(records: &[Record]) -> Vec<(String, Value)> {
    records
        .iter()
        .map(|r| {
            let key = r.meta(KEY_META).and_then(Value::as_str).unwrap_or("<none>");
            (key.to_owned(), r.payload.clone())
        })
        .collect()
}

pub(crate) fn pairs(items: &[(&str, Value)]) -> Vec<(String, Value)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub(crate) fn gauge(gauges: &[Gauge], name: &str) -> u64 {
    gauges
        .iter()
        .find(|g| g.name == name)
        .map(|g| g.value)
        .unwrap_or_else(|| panic!("no gauge {name} in {gauges:?}"))
}

fn running_count() -> Stateful<impl KeyFn, impl KeyedLogic> {
    stateful_map(user(), |count: Option<u64>, _v: Value| {
        let count = count.unwrap_or(0) + 1;
        (Some(count), json!(count))
    })
}

#[test]
fn state_lives_across_transfers_and_outputs_keep_metadata() {
    let time = Time::new();
    let mut op = running_count().wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![ev("a", 1).with_meta("m", 7), ev("b", 1), ev("a", 1)],
    );
    assert_eq!(
        keyed(&out),
        pairs(&[("a", json!(1)), ("b", json!(1)), ("a", json!(2))])
    );
    assert_eq!(out[0].meta("m"), Some(&json!(7)), "metadata is kept");
    let out = run(&mut op, &time, 10.0, Trigger::Transfer, vec![ev("a", 1)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(3))]));
    // A flush is the end of the stream, not of a running count.
    run(&mut op, &time, 11.0, Trigger::Flush, vec![]);
    let out = run(&mut op, &time, 12.0, Trigger::Transfer, vec![ev("b", 1)]);
    assert_eq!(keyed(&out), pairs(&[("b", json!(2))]));
    assert_eq!(gauge(&op.gauges(), "keys"), 2);
}

#[test]
fn a_record_without_a_key_is_left_out_counted_and_never_keyed_as_null() {
    let time = Time::new();
    let mut op = running_count().wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![
            ev("a", 1),
            Record::new(json!({"n": 1})),
            Record::new(json!({"user": null})),
            ev("a", 1),
        ],
    );
    assert_eq!(keyed(&out), pairs(&[("a", json!(1)), ("a", json!(2))]));
    assert_eq!(op.rejected(), 2);
    assert_eq!(op.len(), 1, "no `null` key");
    assert_eq!(gauge(&op.gauges(), "rejected_records_total"), 2);
}

#[test]
fn numbers_and_structures_are_keys_by_their_json_text() {
    assert_eq!(key_text(Some(&json!(12))), Ok("12".to_owned()));
    assert_eq!(key_text(Some(&json!(true))), Ok("true".to_owned()));
    assert_eq!(key_text(Some(&json!([1, "a"]))), Ok("[1,\"a\"]".to_owned()));
    let meta = MetaKey(INLET_KEY.to_owned());
    let e = meta.key(&Record::new(1)).unwrap_err();
    assert_eq!(e, "metadata `__inlet__`: the key is missing");
}

#[test]
fn final_aggregations_emit_at_the_end_of_the_link_stream() {
    let time = Time::new();
    let mut sum = fold_final(
        user(),
        || 0i64,
        |acc, v: Value| acc + v["n"].as_i64().unwrap_or(0),
    )
    .wall_clock(time.clock());
    let batch = || vec![ev("b", 2), ev("a", 1), ev("b", 3)];
    assert!(run(&mut sum, &time, 0.0, Trigger::Transfer, batch()).is_empty());
    assert!(run(&mut sum, &time, 1.0, Trigger::Transfer, batch()).is_empty());
    assert!(run(&mut sum, &time, 1.5, Trigger::Timer, vec![]).is_empty());
    let out = run(&mut sum, &time, 2.0, Trigger::Flush, vec![ev("a", 10)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(12)), ("b", json!(10))]));
    assert!(sum.is_empty(), "state is released at EOF");
    let out = run(&mut sum, &time, 3.0, Trigger::Flush, vec![]);
    assert!(out.is_empty());
}

#[test]
fn per_transfer_eof_makes_each_transfer_a_stream() {
    let time = Time::new();
    let mut count = count_final(user())
        .eof(Eof::Transfer)
        .wall_clock(time.clock());
    let out = run(
        &mut count,
        &time,
        0.0,
        Trigger::Transfer,
        vec![ev("b", 0), ev("a", 0), ev("b", 0)],
    );
    assert_eq!(keyed(&out), pairs(&[("a", json!(1)), ("b", json!(2))]));
    assert!(count.is_empty());
    let out = run(&mut count, &time, 1.0, Trigger::Transfer, vec![ev("a", 0)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(1))]));
    assert!(run(&mut count, &time, 2.0, Trigger::Flush, vec![]).is_empty());
}

#[test]
fn reduce_max_and_min_final() {
    let time = Time::new();
    let n = |v: &Value| v["n"].as_i64();
    let batch = || vec![ev("a", 3), ev("a", 9), ev("b", 4), ev("a", 9), ev("a", -1)];
    let mut reduce = reduce_final(user(), |acc: Value, v: Value| {
        json!({"user": acc["user"], "n": acc["n"].as_i64().unwrap_or(0) + v["n"].as_i64().unwrap_or(0)})
    })
    .wall_clock(time.clock());
    let mut max = max_final(user(), n).wall_clock(time.clock());
    let mut min = min_final(user(), n).wall_clock(time.clock());
    run(&mut reduce, &time, 0.0, Trigger::Transfer, batch());
    run(&mut max, &time, 0.0, Trigger::Transfer, batch());
    run(&mut min, &time, 0.0, Trigger::Transfer, batch());
    let ns = |out: Vec<Record>| -> Vec<(String, Value)> {
        keyed(&out)
            .into_iter()
            .map(|(k, v)| (k, v["n"].clone()))
            .collect()
    };
    assert_eq!(
        ns(run(&mut reduce, &time, 1.0, Trigger::Flush, vec![])),
        pairs(&[("a", json!(20)), ("b", json!(4))])
    );
    assert_eq!(
        ns(run(&mut max, &time, 1.0, Trigger::Flush, vec![])),
        pairs(&[("a", json!(9)), ("b", json!(4))])
    );
    assert_eq!(
        ns(run(&mut min, &time, 1.0, Trigger::Flush, vec![])),
        pairs(&[("a", json!(-1)), ("b", json!(4))])
    );
}

#[test]
fn flat_map_discards_a_key_when_the_mapper_returns_none() {
    let time = Time::new();
    // Bytewax's session tracker: collect events until `end`, then emit a
    // summary and forget the key.
    let mut sessions = stateful_flat_map(user(), |state: Option<Vec<i64>>, v: Value| {
        let mut events = state.unwrap_or_default();
        events.push(v["n"].as_i64().unwrap_or(0));
        if v["end"] == json!(true) {
            (
                None,
                vec![json!({"events": events.len(), "sum": events.iter().sum::<i64>()})],
            )
        } else {
            (Some(events), vec![])
        }
    })
    .wall_clock(time.clock());
    let end = |u: &str, n: i64| Record::new(json!({"user": u, "n": n, "end": true}));
    let out = run(
        &mut sessions,
        &time,
        0.0,
        Trigger::Transfer,
        vec![ev("a", 1), ev("b", 5), ev("a", 2)],
    );
    assert!(out.is_empty());
    assert_eq!(sessions.len(), 2);
    let out = run(
        &mut sessions,
        &time,
        1.0,
        Trigger::Transfer,
        vec![end("a", 3)],
    );
    assert_eq!(keyed(&out), pairs(&[("a", json!({"events": 3, "sum": 6}))]));
    assert_eq!(sessions.len(), 1, "the ended session's key is gone");
    let out = run(
        &mut sessions,
        &time,
        2.0,
        Trigger::Transfer,
        vec![end("a", 1)],
    );
    assert_eq!(keyed(&out), pairs(&[("a", json!({"events": 1, "sum": 1}))]));
}

#[test]
fn collect_emits_at_max_size_on_timeout_and_at_eof() {
    let time = Time::new();
    let mut op = collect(user(), Duration::from_secs(5), 3).wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![ev("a", 1), ev("a", 2), ev("b", 1), ev("a", 3), ev("a", 4)],
    );
    let n = |r: &Record| {
        r.payload
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["n"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(out.len(), 1);
    assert_eq!(n(&out[0]), [json!(1), json!(2), json!(3)]);
    // `a` restarted at 0 s (item 4), `b` at 0 s: both due at 5 s.
    assert_eq!(op.next_wakeup(), Some(time.at(5.0)));
    run(&mut op, &time, 2.0, Trigger::Transfer, vec![ev("c", 1)]);
    assert_eq!(op.next_wakeup(), Some(time.at(5.0)));
    assert!(run(&mut op, &time, 4.9, Trigger::Timer, vec![]).is_empty());
    let out = run(&mut op, &time, 5.0, Trigger::Timer, vec![]);
    assert_eq!(
        keyed(&out)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(op.next_wakeup(), Some(time.at(7.0)), "c's list is due next");
    let out = run(&mut op, &time, 6.0, Trigger::Flush, vec![]);
    assert_eq!(keyed(&out), pairs(&[("c", json!([{"user": "c", "n": 1}]))]));
    assert_eq!(op.next_wakeup(), None);
    assert!(op.is_empty());
}

#[test]
fn a_timeout_that_passed_is_emitted_before_a_new_item_joins() {
    let time = Time::new();
    let mut op = collect(user(), Duration::from_secs(5), 10).wall_clock(time.clock());
    run(&mut op, &time, 0.0, Trigger::Transfer, vec![ev("a", 1)]);
    let out = run(&mut op, &time, 9.0, Trigger::Transfer, vec![ev("a", 2)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!([{"user": "a", "n": 1}]))]));
    assert_eq!(op.next_wakeup(), Some(time.at(14.0)));
}

#[test]
fn timers_of_a_hundred_thousand_keys_fire_in_order_without_a_scan() {
    let time = Time::new();
    let mut op = collect(user(), Duration::from_secs(10), 10).wall_clock(time.clock());
    const KEYS: usize = 100_000;
    // A batch of 1000 new keys every 50 ms; each list is due 10 s later.
    for chunk in 0..100 {
        let records: Vec<Record> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| ev(&format!("k{i:06}"), i as i64))
            .collect();
        let at = chunk as f64 * 0.05;
        assert!(run(&mut op, &time, at, Trigger::Transfer, records).is_empty());
    }
    assert_eq!(op.len(), KEYS);
    assert_eq!(gauge(&op.gauges(), "timers"), KEYS as u64);
    assert_eq!(op.next_wakeup(), Some(time.at(10.0)));
    let out = run(&mut op, &time, 12.475, Trigger::Timer, vec![]);
    assert_eq!(out.len(), 50_000, "keys of the first 50 batches are due");
    let first_keys: Vec<&str> = out
        .iter()
        .take(3)
        .map(|r| r.meta(KEY_META).and_then(Value::as_str).unwrap())
        .collect();
    assert_eq!(first_keys, ["k000000", "k000001", "k000002"]);
    assert_eq!(op.len(), KEYS - 50_000);
    assert_eq!(op.next_wakeup(), Some(time.at(12.5)));
}

/// Bytewax's docs example: a 5-minute sliding sum that cleans up on
/// notification, and forgets the key once empty.
struct SlidingSum {
    window: TimeDelta,
    items: Vec<(DateTime<Utc>, i64)>,
}

impl StatefulLogic for SlidingSum {
    type Snapshot = Vec<(DateTime<Utc>, i64)>;

    fn on_item(&mut self, record: Record, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        self.items
            .push((now, record.payload["n"].as_i64().unwrap_or(0)));
        let cutoff = now - self.window;
        self.items.retain(|(at, _)| *at > cutoff);
        let total: i64 = self.items.iter().map(|(_, n)| n).sum();
        (vec![Record::new(total)], RETAIN)
    }

    fn on_notify(&mut self, now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        let cutoff = now - self.window;
        let before = self.items.len();
        self.items.retain(|(at, _)| *at > cutoff);
        if self.items.is_empty() {
            return (vec![Record::new(0)], DISCARD);
        }
        if self.items.len() == before {
            return (vec![], RETAIN);
        }
        let total: i64 = self.items.iter().map(|(_, n)| n).sum();
        (vec![Record::new(total)], RETAIN)
    }

    fn notify_at(&self) -> Option<DateTime<Utc>> {
        self.items.first().map(|(at, _)| *at + self.window)
    }

    fn snapshot(&self) -> Self::Snapshot {
        self.items.clone()
    }
}

fn sliding_sum() -> Stateful<impl KeyFn, impl KeyedLogic> {
    stateful(user(), |resume: Option<Vec<(DateTime<Utc>, i64)>>| {
        SlidingSum {
            window: TimeDelta::seconds(300),
            items: resume.unwrap_or_default(),
        }
    })
}

#[test]
fn stateful_logic_is_notified_on_time_and_discarded() {
    let time = Time::new();
    let mut op = sliding_sum().wall_clock(time.clock());
    let out = run(&mut op, &time, 0.0, Trigger::Transfer, vec![ev("a", 5)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(5))]));
    let out = run(&mut op, &time, 100.0, Trigger::Transfer, vec![ev("a", 2)]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(7))]));
    assert_eq!(op.next_wakeup(), Some(time.at(300.0)));
    let out = run(&mut op, &time, 300.0, Trigger::Timer, vec![]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(2))]));
    assert_eq!(op.next_wakeup(), Some(time.at(400.0)));
    let out = run(&mut op, &time, 400.0, Trigger::Timer, vec![]);
    assert_eq!(keyed(&out), pairs(&[("a", json!(0))]));
    assert!(op.is_empty(), "DISCARD removed the key");
    assert_eq!(op.next_wakeup(), None);
}

/// Sums each key's batch; discards the key at EOF after emitting it.
struct BatchSum(i64, usize);

impl StatefulBatchLogic for BatchSum {
    type Snapshot = (i64, usize);

    fn on_batch(&mut self, records: Vec<Record>, _now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        self.0 += records
            .iter()
            .map(|r| r.payload["n"].as_i64().unwrap_or(0))
            .sum::<i64>();
        self.1 += 1;
        (vec![Record::new(json!({"batch": records.len()}))], RETAIN)
    }

    fn on_eof(&mut self, _now: DateTime<Utc>) -> (Vec<Record>, Retention) {
        (
            vec![Record::new(json!({"sum": self.0, "calls": self.1}))],
            DISCARD,
        )
    }

    fn snapshot(&self) -> (i64, usize) {
        (self.0, self.1)
    }
}

fn batch_sum() -> Stateful<impl KeyFn, impl KeyedLogic> {
    stateful_batch(user(), |resume: Option<(i64, usize)>| {
        let (sum, calls) = resume.unwrap_or_default();
        BatchSum(sum, calls)
    })
}

#[test]
fn stateful_batch_gets_each_keys_records_at_once() {
    let time = Time::new();
    let mut op = batch_sum().wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![
            ev("b", 1),
            ev("a", 2),
            ev("b", 3),
            Record::new(json!({})),
            ev("b", 4),
        ],
    );
    assert_eq!(
        keyed(&out),
        pairs(&[("b", json!({"batch": 3})), ("a", json!({"batch": 1}))])
    );
    assert_eq!(op.rejected(), 1);
    let out = run(&mut op, &time, 1.0, Trigger::Flush, vec![ev("a", 1)]);
    assert_eq!(
        keyed(&out),
        pairs(&[
            ("a", json!({"batch": 1})),
            ("a", json!({"sum": 3, "calls": 2})),
            ("b", json!({"sum": 8, "calls": 1})),
        ])
    );
    assert!(op.is_empty());
}

fn side(name: &str, user: &str, v: &str) -> Record {
    Record::new(json!({"user": user, "v": v})).with_meta(INLET_KEY, name)
}

fn join_of(insert: InsertMode, emit: EmitMode) -> Stateful<impl KeyFn, Join> {
    join(
        user(),
        Join::new(["users", "orders"])
            .insert_mode(insert)
            .emit_mode(emit),
    )
}

#[test]
fn join_in_all_nine_modes() {
    use EmitMode::*;
    use InsertMode::*;
    let row = |u: Option<&str>, o: Option<&str>| {
        let v = |x: Option<&str>| x.map_or(Value::Null, |x| json!({"user": "a", "v": x}));
        json!({"users": v(u), "orders": v(o)})
    };
    let (u1, o1, o2) = (Some("u1"), Some("o1"), Some("o2"));
    // Per mode: rows after u1, o1, o2, then at EOF; keys left after EOF.
    let cases: Vec<(InsertMode, EmitMode, [Vec<Value>; 4], usize)> = vec![
        (
            First,
            Complete,
            [vec![], vec![row(u1, o1)], vec![], vec![]],
            1,
        ),
        (First, Final, [vec![], vec![], vec![], vec![row(u1, o1)]], 0),
        (
            First,
            Running,
            [
                vec![row(u1, None)],
                vec![row(u1, o1)],
                vec![row(u1, o1)],
                vec![],
            ],
            1,
        ),
        (
            Last,
            Complete,
            [vec![], vec![row(u1, o1)], vec![], vec![]],
            1,
        ),
        (Last, Final, [vec![], vec![], vec![], vec![row(u1, o2)]], 0),
        (
            Last,
            Running,
            [
                vec![row(u1, None)],
                vec![row(u1, o1)],
                vec![row(u1, o2)],
                vec![],
            ],
            1,
        ),
        (
            Product,
            Complete,
            [vec![], vec![row(u1, o1)], vec![], vec![]],
            1,
        ),
        (
            Product,
            Final,
            [vec![], vec![], vec![], vec![row(u1, o1), row(u1, o2)]],
            0,
        ),
        (
            Product,
            Running,
            [
                vec![row(u1, None)],
                vec![row(u1, o1)],
                vec![row(u1, o1), row(u1, o2)],
                vec![],
            ],
            1,
        ),
    ];
    for (insert, emit, want, keys_left) in cases {
        let time = Time::new();
        let mut op = join_of(insert, emit).wall_clock(time.clock());
        let steps = [
            (Trigger::Transfer, vec![side("users", "a", "u1")]),
            (Trigger::Transfer, vec![side("orders", "a", "o1")]),
            (Trigger::Transfer, vec![side("orders", "a", "o2")]),
            (Trigger::Flush, vec![]),
        ];
        for (i, ((trigger, records), want)) in steps.into_iter().zip(&want).enumerate() {
            let out = run(&mut op, &time, i as f64, trigger, records);
            let got: Vec<Value> = out.iter().map(|r| r.payload.clone()).collect();
            assert_eq!(&got, want, "{insert:?}/{emit:?}, step {i}");
            assert!(out.iter().all(|r| r.meta(KEY_META) == Some(&json!("a"))));
        }
        assert_eq!(op.len(), keys_left, "{insert:?}/{emit:?}: keys after EOF");
    }
}

#[test]
fn join_rejects_records_of_unknown_sides() {
    let time = Time::new();
    let mut op = join_of(InsertMode::Last, EmitMode::Complete).wall_clock(time.clock());
    let out = run(
        &mut op,
        &time,
        0.0,
        Trigger::Transfer,
        vec![
            side("refunds", "a", "r"),
            ev("a", 1),
            side("users", "a", "u"),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(op.rejected(), 2);
    assert_eq!(op.len(), 1);
    let by_field = join(
        user(),
        Join::new(["l", "r"]).side_by(|r: &Record| r.payload["side"].as_str().map(str::to_owned)),
    );
    let mut by_field = by_field.wall_clock(time.clock());
    let out = run(
        &mut by_field,
        &time,
        0.0,
        Trigger::Transfer,
        vec![
            Record::new(json!({"user": "a", "side": "l"})),
            Record::new(json!({"user": "a", "side": "r"})),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload["r"]["side"], "r");
}

/// One step of a script: when, why, what.
pub(crate) type Script = Vec<(f64, Trigger, Vec<Record>)>;

pub(crate) fn script(rng: &mut fastrand::Rng, sides: bool) -> Script {
    let mut at = 0.0;
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..14) {
        at += rng.f64() * 4.0;
        let trigger = match rng.u8(0..10) {
            0 => Trigger::Flush,
            1 | 2 => Trigger::Timer,
            _ => Trigger::Transfer,
        };
        let records = if trigger == Trigger::Timer {
            Vec::new()
        } else {
            (0..rng.usize(0..8))
                .map(|_| {
                    let user = ["a", "b", "c", "d"][rng.usize(0..4)];
                    // Event times wander around the wall clock. As text:
                    // JSON floats need not survive a trip through text.
                    let ms = ((at + rng.f64() * 6.0 - 4.0) * 1000.0) as i64;
                    let ts = window::rfc3339(t0() + TimeDelta::milliseconds(ms));
                    let mut r = Record::new(json!({
                        "user": user,
                        "n": rng.i64(-5..20),
                        "ts": ts,
                        "end": rng.u8(0..6) == 0,
                    }));
                    if sides {
                        r.set_meta(INLET_KEY, ["users", "orders"][rng.usize(0..2)]);
                    }
                    if rng.u8(0..20) == 0 {
                        r.payload["user"] = Value::Null;
                    }
                    r
                })
                .collect()
        };
        out.push((at, trigger, records));
    }
    out
}

pub(crate) fn play<K: KeyFn, L: KeyedLogic>(
    op: &mut Stateful<K, L>,
    time: &Time,
    steps: &[(f64, Trigger, Vec<Record>)],
    out: &mut Vec<Record>,
) {
    for (at, trigger, records) in steps {
        out.extend(run(op, time, *at, *trigger, records.clone()));
    }
}

/// Runs random scripts through `make()` uninterrupted, and through one
/// instance up to a random step, its snapshot (through JSON text) restored
/// into a fresh one, and the rest: the outputs must be the same.
pub(crate) fn assert_restores<K, L>(name: &str, sides: bool, make: impl Fn() -> Stateful<K, L>)
where
    K: KeyFn,
    L: KeyedLogic,
{
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..150 {
        let steps = script(&mut rng, sides);
        let time = Time::new();
        let mut whole = make().wall_clock(time.clock());
        let mut want = Vec::new();
        play(&mut whole, &time, &steps, &mut want);

        let split = rng.usize(0..=steps.len());
        let mut first = make().wall_clock(time.clock());
        let mut got = Vec::new();
        play(&mut first, &time, &steps[..split], &mut got);
        let snapshot = Processor::snapshot(&first).unwrap().unwrap();
        let text = snapshot.to_string();
        drop(first);
        let mut second = make().wall_clock(time.clock());
        Processor::restore(&mut second, serde_json::from_str(&text).unwrap())
            .unwrap_or_else(|e| panic!("{name}: restore failed: {e}\n{text}"));
        play(&mut second, &time, &steps[split..], &mut got);
        assert_eq!(
            got,
            want,
            "{name}, round {round}: split at step {split} of {}",
            steps.len()
        );
        assert_eq!(second.next_wakeup(), whole.next_wakeup(), "{name}");
        assert_eq!(second.len(), whole.len(), "{name}");
    }
}

#[test]
fn snapshot_then_restore_continues_exactly() {
    assert_restores("stateful_map", false, running_count);
    assert_restores("collect", false, || {
        collect(user(), Duration::from_secs(3), 4)
    });
    assert_restores("fold_final", false, || {
        fold_final(user(), Vec::new, |mut acc: Vec<i64>, v: Value| {
            acc.push(v["n"].as_i64().unwrap_or(0));
            acc
        })
    });
    assert_restores("count_final per transfer", false, || {
        count_final(user()).eof(Eof::Transfer)
    });
    assert_restores("stateful", false, sliding_sum);
    assert_restores("stateful_batch", false, batch_sum);
    assert_restores("join product running", true, || {
        join_of(InsertMode::Product, EmitMode::Running)
    });
    assert_restores("join last final", true, || {
        join_of(InsertMode::Last, EmitMode::Final)
    });
    assert_restores("stateful_flat_map", false, || {
        stateful_flat_map(user(), |n: Option<i64>, v: Value| {
            let n = n.unwrap_or(0) + v["n"].as_i64().unwrap_or(0);
            if v["end"] == json!(true) {
                (None, vec![json!(n), json!("end")])
            } else {
                (Some(n), vec![])
            }
        })
    });
}

#[test]
fn restore_refuses_what_is_not_a_snapshot() {
    let mut op = running_count();
    let e = Processor::restore(&mut op, json!([1])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a stateful operator's snapshot must be an object"
    );
    let e = Processor::restore(&mut op, json!({"keys": [["a"]]})).unwrap_err();
    assert_eq!(e.to_string(), "snapshot key 0: want [key, state]");
    let e = Processor::restore(&mut op, json!({"keys": [["a", "x"]]})).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot restore the state of key \"a\""),
        "{e}"
    );
}

#[test]
fn the_wall_clock_maps_both_ways() {
    let time = Time::new();
    let clock = time.clock();
    assert_eq!(
        clock.wall(time.at(1.5)),
        t0() + TimeDelta::milliseconds(1500)
    );
    assert_eq!(clock.instant(t0() + TimeDelta::seconds(3)), time.at(3.0));
    let before = t0() - TimeDelta::seconds(1);
    assert_eq!(clock.wall(clock.instant(before)), before);
    // Far future saturates instead of overflowing.
    let far = clock.instant(DateTime::<Utc>::MAX_UTC);
    assert!(far > time.at(1e6));
}
