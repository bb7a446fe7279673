//! Throughput benchmark of the pipeline users run most: a 1,000,000-line
//! NDJSON file -> keep `amount > 10` -> add a field -> CSV, run through the
//! real daemon binary (`databay once --until-exhausted`), once with the
//! native `select`/`set` processors and once with the jq equivalent, next
//! to a hand-written Rust loop doing the same work (parse each line into a
//! `serde_json::Value`, filter, add the field, write CSV) as the floor.
//!
//! ```text
//! cargo bench --bench throughput            # 1,000,000 lines
//! cargo bench --bench throughput -- 200000  # another size
//! ```
//!
//! Peak RSS of the daemon is sampled from /proc while it runs (VmHWM, a
//! high-water mark, so the last sample is the peak up to a few ms before exit).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

fn generate(path: &Path, lines: usize) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for id in 0..lines {
        // xorshift: reproducible amounts without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let amount = (seed % 3000) as f64 / 100.0;
        writeln!(
            out,
            r#"{{"id":{id},"user":"u{}","amount":{amount},"ts":"2026-01-01T00:00:{:02}Z"}}"#,
            id % 1000,
            id % 60
        )?;
    }
    out.flush()
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The reference: the same work by hand, no framework.
fn hand_loop(input: &Path, output: &Path) -> std::io::Result<(usize, Duration)> {
    let start = Instant::now();
    let reader = BufReader::new(File::open(input)?);
    let mut writer = csv::Writer::from_writer(BufWriter::new(File::create(output)?));
    let mut header: Option<Vec<String>> = None;
    let mut rows = 0;
    for line in reader.lines() {
        let line = line?;
        let mut value: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        if !value
            .get("amount")
            .and_then(Value::as_f64)
            .is_some_and(|a| a > 10.0)
        {
            continue;
        }
        let Some(object) = value.as_object_mut() else {
            continue;
        };
        object.insert("flag".into(), Value::Bool(true));
        let keys = header.get_or_insert_with(|| {
            let keys: Vec<String> = object.keys().cloned().collect();
            let _ = writer.write_record(&keys);
            keys
        });
        writer
            .write_record(
                keys.iter()
                    .map(|k| object.get(k).map(cell).unwrap_or_default()),
            )
            .map_err(std::io::Error::other)?;
        rows += 1;
    }
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .get_ref()
        .sync_data()?;
    Ok((rows, start.elapsed()))
}

fn rows_in(path: &Path) -> std::io::Result<usize> {
    let mut reader = csv::Reader::from_path(path).map_err(std::io::Error::other)?;
    Ok(reader.records().count())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join("databay-throughput");
    std::fs::create_dir_all(&dir)?;
    let input = dir.join(format!("orders-{lines}.ndjson"));
    if !input.exists() {
        generate(&input, lines)?;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));

    // Warm the page cache so every contender reads from memory.
    hand_loop(&input, &dir.join("warm.csv"))?;
    let (rows, hand) = hand_loop(&input, &dir.join("hand.csv"))?;
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!("input: {lines} lines, {rows} pass the filter");
    println!(
        "hand-written loop : {:>6.0} ms  {:>9.0} records/s",
        hand.as_secs_f64() * 1e3,
        rate(hand)
    );
    for (name, config) in [
        ("native", "config/file_to_csv.toml"),
        ("jq", "config/file_to_csv_jq.toml"),
    ] {
        let output = dir.join(format!("{name}.csv"));
        // The configs append; start from an empty output.
        let _ = std::fs::remove_file(&output);
        let (took, peak) = support::once(
            &root.join(config),
            &[("ORDERS_FILE", &input), ("ORDERS_CSV", &output)],
        )?;
        let written = rows_in(&output)?;
        if written != rows {
            return Err(format!("{name}: wrote {written} rows, the hand loop wrote {rows}").into());
        }
        println!(
            "databay once {name:<6}: {:>6.0} ms  {:>9.0} records/s  {:>5.1}% of the hand loop  peak RSS {:.0} MiB",
            took.as_secs_f64() * 1e3,
            rate(took),
            100.0 * hand.as_secs_f64() / took.as_secs_f64(),
            peak as f64 / 1024.0
        );
    }
    Ok(())
}
