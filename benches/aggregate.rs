//! End-to-end benchmark of a stateful operator through the daemon binary:
//! 1,000,000 NDJSON orders `{"id","user","amount","ts"}` over 10,000 users
//! -> `aggregate` (`fold_final`: the count and the sum of `amount` per
//! user, emitted at the end of the file) -> CSV, with
//! `databay once --until-exhausted`, next to a hand-written Rust loop doing
//! the same work in the same run (parse each line into a
//! `serde_json::Value`, a `HashMap` per user, write the CSV sorted by user).
//! Both outputs must be identical, byte for byte. Target: the daemon at
//! least 80% of the loop's records/s.
//!
//! ```text
//! cargo bench --bench aggregate            # 1,000,000 lines
//! cargo bench --bench aggregate -- 200000  # another size
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

const USERS: usize = 10_000;
const RUNS: usize = 3;

const CONFIG: &str = r#"
[admin]
enabled = false

[[link]]
name = "user_totals"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "${ORDERS_FILE}"
  json = true
  lines_per_transfer = 10000

  [[link.processor]]
  type = "aggregate"
  key = "/user"
  key_field = "user"
  aggregates.orders = { reducer = "count" }
  aggregates.total = { reducer = "sum", pointer = "/amount" }

  [[link.outlet]]
  type = "csv"
  path = "${TOTALS_CSV}"
"#;

fn generate(path: &Path, lines: usize) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for id in 0..lines {
        // xorshift: reproducible amounts without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        writeln!(
            out,
            r#"{{"id":{id},"user":"u{}","amount":{}.{:02},"ts":{}}}"#,
            (id * 7919) % USERS,
            seed % 300,
            (seed >> 20) % 100,
            1_767_225_600 + id / 1000
        )?;
    }
    out.flush()
}

/// The reference: the same work by hand, no framework.
fn hand_loop(input: &Path, output: &Path) -> std::io::Result<Duration> {
    let start = Instant::now();
    let reader = BufReader::new(File::open(input)?);
    let mut totals: HashMap<String, (u64, f64)> = HashMap::new();
    for line in reader.lines() {
        let line = line?;
        let value: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        let Some(user) = value.get("user").and_then(Value::as_str) else {
            continue;
        };
        let amount = value.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
        let entry = totals.entry(user.to_owned()).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += amount;
    }
    let mut rows: Vec<(String, (u64, f64))> = totals.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut writer = csv::Writer::from_writer(BufWriter::new(File::create(output)?));
    writer.write_record(["user", "orders", "total"])?;
    for (user, (orders, total)) in rows {
        writer.write_record([user, orders.to_string(), Value::from(total).to_string()])?;
    }
    writer.flush()?;
    Ok(start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join("databay-aggregate");
    std::fs::create_dir_all(&dir)?;
    let input = dir.join(format!("orders-{lines}.ndjson"));
    if !input.exists() {
        generate(&input, lines)?;
    }
    let config = dir.join("aggregate.toml");
    std::fs::write(&config, CONFIG)?;
    let hand_csv = dir.join("hand.csv");
    let daemon_csv: PathBuf = dir.join("daemon.csv");

    // Warm the page cache so both read from memory; best of RUNS each.
    hand_loop(&input, &hand_csv)?;
    let mut hand = Duration::MAX;
    let mut daemon = Duration::MAX;
    let mut peak = 0;
    for _ in 0..RUNS {
        hand = hand.min(hand_loop(&input, &hand_csv)?);
        let _ = std::fs::remove_file(&daemon_csv);
        let (took, rss) = support::once(
            &config,
            &[("ORDERS_FILE", &input), ("TOTALS_CSV", &daemon_csv)],
        )?;
        daemon = daemon.min(took);
        peak = peak.max(rss);
    }
    let (want, got) = (std::fs::read(&hand_csv)?, std::fs::read(&daemon_csv)?);
    if want != got {
        return Err(format!(
            "the outputs differ: {} (hand loop) vs {} (databay)",
            hand_csv.display(),
            daemon_csv.display()
        )
        .into());
    }
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    let ratio = hand.as_secs_f64() / daemon.as_secs_f64();
    println!("input: {lines} orders over {USERS} users; outputs identical; best of {RUNS}");
    println!(
        "hand-written loop: {:>6.0} ms  {:>9.0} records/s",
        hand.as_secs_f64() * 1e3,
        rate(hand)
    );
    println!(
        "databay once     : {:>6.0} ms  {:>9.0} records/s  {:>5.1}% of the hand loop (target 80%: {})  peak RSS {:.0} MiB",
        daemon.as_secs_f64() * 1e3,
        rate(daemon),
        100.0 * ratio,
        if ratio >= 0.8 { "met" } else { "NOT met" },
        peak as f64 / 1024.0
    );
    Ok(())
}
