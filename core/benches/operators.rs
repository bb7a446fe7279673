//! Stateful operator benchmark: the keyed engine on in-memory records, on
//! one core, each case next to a hand-written `HashMap` loop doing the same
//! work in the same run, with the ratio.
//!
//! - `fold_final`: the sum of `amount` per `user`, 1,000,000 records over
//!   10,000 keys, emitted at EOF (target: at least 5,000,000 records/s);
//! - `count_window`: records per `user` per 60 s tumbling window of event
//!   time (`ts`, seconds since the epoch), windows closing as the event
//!   clock moves on (target: at least 2,000,000 records/s).
//!
//! The floor loops key a `std::collections::HashMap` by the user string,
//! as one would write it by hand; the window floor keeps a count per
//! `(user, window)` and emits every count at the end, without closing
//! windows as it goes. Both sides consume (and so drop) the same records.
//!
//! Then the memory the operator's state takes: RSS growth while
//! `fold_final` holds 10,000 and then 1,000,000 live keys (records fed in
//! chunks of 10,000, so they do not count), and per key.
//!
//! ```text
//! cargo bench -p databay-core --bench operators
//! cargo bench -p databay-core --bench operators -- 2000000      # another record count
//! cargo bench -p databay-core --bench operators -- count_window # one case
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use databay_core::stateful::window::{EventClock, Tumbling, count_window, timestamp_of};
use databay_core::stateful::{DateTime, KeyFn, fold_final, key_value};
use databay_core::{Context, Processor, Record, Trigger, Update};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYS: usize = 10_000;
const ROUNDS: usize = 3;

/// The `user` field, borrowed from the record.
struct ByUser;

impl KeyFn for ByUser {
    fn key<'r>(&self, record: &'r Record) -> Result<Cow<'r, str>, String> {
        key_value(record.payload.get("user"))
    }
}

/// `n` orders over `keys` users, 1000 per second of event time.
fn records(n: usize, keys: usize) -> Vec<Record> {
    const T0: u64 = 1_767_225_600;
    (0..n)
        .map(|i| {
            Record::new(json!({
                "user": format!("u{}", (i * 7919) % keys),
                "amount": (i % 50) as f64 + 0.5,
                "ts": T0 + (i / 1000) as u64,
            }))
        })
        .collect()
}

fn run<P: Processor>(p: &mut P, records: Vec<Record>, trigger: Trigger) -> Vec<Record> {
    let update = Update::new(["bench"], 0);
    let cx = Context::new(&update, trigger);
    futures::executor::block_on(p.process(records, &cx)).expect("the operator runs")
}

/// Best of `ROUNDS`: the time of `f` on fresh records, and what it output.
fn best(n: usize, mut f: impl FnMut(Vec<Record>) -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..ROUNDS {
        let input = records(n, KEYS);
        let start = Instant::now();
        out = f(input);
        best = best.min(start.elapsed());
    }
    (best, out)
}

fn report(case: &str, n: usize, op: (Duration, usize), floor: (Duration, usize), target: f64) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (op_rate, floor_rate) = (rate(op.0), rate(floor.0));
    println!(
        "{case:>13}: {:>6.2} M records/s ({:>4.0} ns/record, {} out) | hand-written loop {:>6.2} M/s ({} out) | ratio {:.2} | target {:.0} M/s: {}",
        op_rate / 1e6,
        op.0.as_secs_f64() * 1e9 / n as f64,
        op.1,
        floor_rate / 1e6,
        floor.1,
        op_rate / floor_rate,
        target / 1e6,
        if op_rate >= target { "met" } else { "NOT met" },
    );
}

fn fold_final_case(n: usize) {
    let op = best(n, |input| {
        let mut sum = fold_final(
            ByUser,
            || 0.0f64,
            |acc, v: Value| acc + v["amount"].as_f64().unwrap_or(0.0),
        );
        let none = run(&mut sum, input, Trigger::Transfer);
        none.len() + run(&mut sum, Vec::new(), Trigger::Flush).len()
    });
    let floor = best(n, |input| {
        let mut sums: HashMap<String, f64> = HashMap::new();
        for record in input {
            let Some(user) = record.payload.get("user").and_then(Value::as_str) else {
                continue;
            };
            let amount = record.payload["amount"].as_f64().unwrap_or(0.0);
            match sums.get_mut(user) {
                Some(sum) => *sum += amount,
                None => {
                    sums.insert(user.to_owned(), amount);
                }
            }
        }
        let mut out: Vec<(String, f64)> = sums.into_iter().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let out: Vec<Record> = out
            .into_iter()
            .map(|(user, sum)| Record::new(json!(sum)).with_meta("__key__", user))
            .collect();
        out.len()
    });
    report("fold_final", n, op, floor, 5e6);
}

fn count_window_case(n: usize) {
    let op = best(n, |input| {
        let mut counts = count_window(
            ByUser,
            EventClock::new(
                |r: &Record| timestamp_of(r.payload.get("ts")),
                Duration::from_secs(0),
            ),
            Tumbling::new(Duration::from_secs(60), DateTime::UNIX_EPOCH).expect("a valid window"),
        );
        let closed = run(&mut counts, input, Trigger::Transfer);
        closed.len() + run(&mut counts, Vec::new(), Trigger::Flush).len()
    });
    let floor = best(n, |input| {
        let mut counts: HashMap<(String, i64), u64> = HashMap::new();
        for record in input {
            let Some(user) = record.payload.get("user").and_then(Value::as_str) else {
                continue;
            };
            let Some(ts) = record.payload.get("ts").and_then(Value::as_i64) else {
                continue;
            };
            *counts
                .entry((user.to_owned(), ts.div_euclid(60)))
                .or_insert(0) += 1;
        }
        let out: Vec<Record> = counts
            .into_iter()
            .map(|((user, window), count)| {
                Record::new(json!(count))
                    .with_meta("__key__", user)
                    .with_meta("__window__", window)
            })
            .collect();
        out.len()
    });
    report("count_window", n, op, floor, 2e6);
}

/// This process's resident set size, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn state_memory(keys: usize) {
    let mut sum = fold_final(
        ByUser,
        || 0.0f64,
        |acc, v: Value| acc + v["amount"].as_f64().unwrap_or(0.0),
    );
    // Warm the allocator with one chunk's worth of records first, so the
    // growth measured is the operator's.
    drop(records(10_000, 10_000));
    let before = rss();
    let mut fed = 0;
    while fed < keys {
        let chunk: Vec<Record> = (fed..(fed + 10_000).min(keys))
            .map(|i| Record::new(json!({"user": format!("u{i}"), "amount": 1.0})))
            .collect();
        fed += chunk.len();
        run(&mut sum, chunk, Trigger::Transfer);
    }
    let held = rss().saturating_sub(before);
    let live = sum
        .gauges()
        .iter()
        .find(|g| g.name == "keys")
        .map_or(0, |g| g.value);
    println!(
        "state memory: {live:>9} live keys: {:>7.1} MB RSS growth ({:.0} bytes/key)",
        held as f64 / 1e6,
        held as f64 / keys as f64
    );
    run(&mut sum, Vec::new(), Trigger::Flush);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args
        .iter()
        .find_map(|a| a.replace('_', "").parse::<usize>().ok())
        .unwrap_or(1_000_000);
    // Names of cases to run (`fold_final`, `count_window`, `memory`); all
    // when none is given. cargo passes `--bench`, which names none.
    let cases: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["fold_final", "count_window", "memory"].contains(a))
        .collect();
    let wants = |case: &str| cases.is_empty() || cases.contains(&case);
    // Memory first: the throughput cases leave freed pages with the
    // allocator, which the state would reuse unseen.
    if wants("memory") {
        state_memory(10_000);
        state_memory(1_000_000);
    }
    println!("{n} in-memory records over {KEYS} keys, one core, best of {ROUNDS}");
    if wants("fold_final") {
        fold_final_case(n);
    }
    if wants("count_window") {
        count_window_case(n);
    }
}
