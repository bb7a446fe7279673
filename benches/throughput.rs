//! Throughput benchmark of the pipeline users run most: a 1,000,000-line
//! NDJSON file -> keep `amount > 10` -> add a field -> CSV, run through the
//! real daemon binary (`databay once --until-exhausted`), once with the
//! native `select`/`set` processors and once with the jq equivalent, next
//! to a hand-written Rust loop doing the same work (parse each line into a
//! `serde_json::Value`, filter, add the field, write CSV) as the floor. A
//! third run computes the field (`.amount_cents = (.amount * 100 | round)`,
//! config/file_to_csv_jq_computed.toml) next to a hand loop computing it.
//! Every run's CSV is compared row by row with its hand loop's. Each run
//! goes once on every core and once on the first core only (`taskset -c
//! 0`); last, two hand loops run at once, for what both cores give the
//! work by hand.
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

/// What is added to each kept record.
#[derive(Clone, Copy)]
enum Field {
    /// `"flag": true`
    Flag,
    /// `"amount_cents"`: the amount times 100, rounded, as jq computes it
    /// (`.amount * 100 | round`: an integer).
    Cents,
}

/// The reference: the same work by hand, no framework.
fn hand_loop(input: &Path, output: &Path, field: Field) -> std::io::Result<(usize, Duration)> {
    let start = Instant::now();
    let reader = BufReader::new(File::open(input)?);
    let mut writer = csv::Writer::from_writer(BufWriter::new(File::create(output)?));
    let mut header: Option<Vec<String>> = None;
    let mut rows = 0;
    for line in reader.lines() {
        let line = line?;
        let mut value: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        let Some(amount) = value
            .get("amount")
            .and_then(Value::as_f64)
            .filter(|a| *a > 10.0)
        else {
            continue;
        };
        let Some(object) = value.as_object_mut() else {
            continue;
        };
        match field {
            Field::Flag => object.insert("flag".into(), Value::Bool(true)),
            Field::Cents => object.insert(
                "amount_cents".into(),
                Value::from((amount * 100.0).round() as i64),
            ),
        };
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

/// What this machine gives two hand loops at once, each on a copy of the
/// work, against one alone: records/s of both together over one's. What
/// spreading the work over both cores could give at most (parsing and
/// allocating lean on memory and caches the cores share).
fn two_at_once(input: &Path, dir: &Path, field: Field) -> std::io::Result<f64> {
    let (_, one) = hand_loop(input, &dir.join("one.csv"), field)?;
    let start = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| hand_loop(input, &dir.join("a.csv"), field));
        let b = hand_loop(input, &dir.join("b.csv"), field);
        (a.join(), b)
    });
    let both = start.elapsed();
    a.map_err(|_| std::io::Error::other("a hand loop panicked"))??;
    b?;
    Ok(2.0 * one.as_secs_f64() / both.as_secs_f64())
}

/// Every row of a CSV file, the header first.
fn rows_of(path: &Path) -> std::io::Result<Vec<csv::StringRecord>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(std::io::Error::other)?;
    reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)
}

/// `Err` naming the first row where `got` differs from `want`.
fn same_rows(name: &str, got: &Path, want: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let (got, want) = (rows_of(got)?, rows_of(want)?);
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        return Err(format!(
            "{name}: row {i} is {:?}, the hand loop wrote {:?} ({} rows against {})",
            got.get(i),
            want.get(i),
            got.len(),
            want.len()
        )
        .into());
    }
    Ok(got.len().saturating_sub(1))
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
    hand_loop(&input, &dir.join("warm.csv"), Field::Flag)?;
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    let mut rows = 0;
    // (name, config, on the first core only)
    for (field, label, runs) in [
        (
            Field::Flag,
            "flag",
            &[
                ("native", "config/file_to_csv.toml", false),
                ("native 1 core", "config/file_to_csv.toml", true),
                ("jq", "config/file_to_csv_jq.toml", false),
                ("jq 1 core", "config/file_to_csv_jq.toml", true),
            ][..],
        ),
        (
            Field::Cents,
            "cents",
            &[
                ("jq computed", "config/file_to_csv_jq_computed.toml", false),
                (
                    "jq comp 1 core",
                    "config/file_to_csv_jq_computed.toml",
                    true,
                ),
            ][..],
        ),
    ] {
        let reference = dir.join(format!("hand-{label}.csv"));
        let cpu = || support::cpu_time(std::process::id()).unwrap_or_default();
        let cpu_before = cpu();
        let (kept, hand) = hand_loop(&input, &reference, field)?;
        let hand_cpu = cpu().saturating_sub(cpu_before);
        rows = kept;
        println!("input: {lines} lines, {kept} pass the filter");
        println!(
            "hand-written loop ({label:<5}) : {:>6.0} ms  {:>9.0} records/s                          CPU {:>5.0} ms",
            hand.as_secs_f64() * 1e3,
            rate(hand),
            hand_cpu.as_secs_f64() * 1e3
        );
        for &(name, config, one_core) in runs {
            let output = dir.join(format!("{}.csv", name.replace(' ', "_")));
            // The configs append; start from an empty output.
            let _ = std::fs::remove_file(&output);
            let (took, peak, used) = support::once_measured_on(
                &root.join(config),
                &[("ORDERS_FILE", &input), ("ORDERS_CSV", &output)],
                one_core,
            )?;
            let written = same_rows(name, &output, &reference)?;
            if written != kept {
                return Err(
                    format!("{name}: wrote {written} rows, the hand loop wrote {kept}").into(),
                );
            }
            // Records per CPU-second, against the hand loop's (one
            // thread): what the pipeline costs, whatever waits on the disk.
            println!(
                "databay once {name:<14}: {:>6.0} ms  {:>9.0} records/s  {:>5.1}% of the hand loop  CPU {:>5.0} ms ({:>5.1}% of the hand loop's records per CPU-second)  peak RSS {:.0} MiB",
                took.as_secs_f64() * 1e3,
                rate(took),
                100.0 * hand.as_secs_f64() / took.as_secs_f64(),
                used.as_secs_f64() * 1e3,
                100.0 * hand_cpu.as_secs_f64() / used.as_secs_f64().max(1e-3),
                peak as f64 / 1024.0
            );
        }
    }
    let ceiling = two_at_once(&input, &dir, Field::Flag)?;
    println!(
        "two hand loops at once: {ceiling:.2}x the records/s of one (what both cores give this work, by hand)"
    );
    checkpoints(&root, &dir, &input, rows, lines)?;
    Ok(())
}

/// The cost of safety: the native run again with `[daemon] state_dir`,
/// once with a checkpoint after each of its transfers of 512 records and
/// once with `checkpoint_every = "1s"`; fsyncs per transfer (with strace,
/// when the machine has it), and the state store's commit latency.
fn checkpoints(
    root: &Path,
    dir: &Path,
    input: &Path,
    rows: usize,
    lines: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let state = dir.join("state");
    let text = std::fs::read_to_string(root.join("config/file_to_csv.toml"))?;
    let output = dir.join("checkpointed.csv");
    let env = [("ORDERS_FILE", input), ("ORDERS_CSV", output.as_path())];
    let plain = {
        let plain_out = dir.join("plain.csv");
        let _ = std::fs::remove_file(&plain_out);
        support::once(
            &root.join("config/file_to_csv.toml"),
            &[("ORDERS_FILE", input), ("ORDERS_CSV", &plain_out)],
        )?
        .0
    };
    let transfers = lines.div_ceil(LINES_PER_TRANSFER);
    println!(
        "checkpoints off    : {:>6.0} ms, {transfers} transfers of {LINES_PER_TRANSFER} records",
        plain.as_secs_f64() * 1e3
    );
    let every = "every = \"1s\"\n";
    for (label, link_key) in [
        ("each transfer", ""),
        ("at most 1/s", "checkpoint_every = \"1s\"\n"),
    ] {
        let config = dir.join("file_to_csv_checkpointed.toml");
        let linked = text.replacen(every, &format!("{every}{link_key}"), 1);
        std::fs::write(
            &config,
            format!(
                "[daemon]\nstate_dir = {:?}\n\n{linked}",
                state.display().to_string()
            ),
        )?;
        let _ = std::fs::remove_file(&output);
        let _ = std::fs::remove_dir_all(&state);
        let (checkpointed, _) = support::once(&config, &env)?;
        let written = rows_in(&output)?;
        if written != rows {
            return Err(format!(
                "checkpointed ({label}): wrote {written} rows, the hand loop wrote {rows}"
            )
            .into());
        }
        println!(
            "checkpoints on, {label:<13}: {:>6.0} ms ({:+.1}%)",
            checkpointed.as_secs_f64() * 1e3,
            100.0 * (checkpointed.as_secs_f64() / plain.as_secs_f64() - 1.0)
        );
        if let Some(fsyncs) = fsyncs(&config, &env, &output, &state) {
            println!(
                "fsyncs, {label:<13}: {fsyncs} in the run, {:.2} per transfer (the CSV outlet's syncs included)",
                fsyncs as f64 / transfers as f64
            );
        }
    }
    let latencies = commit_latencies(&state)?;
    println!(
        "state store commit : p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} saves of the run's last checkpoint, one at a time)",
        latencies.0, latencies.1, latencies.2, COMMITS
    );
    Ok(())
}

/// fsync and fdatasync calls of one checkpointed run, counted by strace.
fn fsyncs(config: &Path, env: &[(&str, &Path)], output: &Path, state: &Path) -> Option<usize> {
    let _ = std::fs::remove_file(output);
    let _ = std::fs::remove_dir_all(state);
    let mut command = std::process::Command::new("strace");
    command
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync"])
        .arg(env!("CARGO_BIN_EXE_databay"))
        .args(["--log-level", "warn", "once"])
        .arg(config)
        .arg("--until-exhausted");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().ok()?;
    let report = String::from_utf8_lossy(&out.stderr);
    // strace -c: "% time seconds usecs/call calls [errors] syscall".
    let calls = report
        .lines()
        .filter(|l| l.ends_with("fsync") || l.ends_with("fdatasync"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        .sum();
    Some(calls)
}

const COMMITS: usize = 500;

/// `lines_per_transfer` of config/file_to_csv.toml.
const LINES_PER_TRANSFER: usize = 512;

/// p50, p99 and max of saving one checkpoint, in ms.
fn commit_latencies(state: &Path) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    use databay_core::checkpoint::StateStore;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = databay::state::RedbStore::open(state)?;
    let checkpoint = runtime
        .block_on(store.load("orders"))
        .map_err(|e| e.to_string())?
        .ok_or("the checkpointed run left no checkpoint")?;
    let mut took: Vec<f64> = Vec::with_capacity(COMMITS);
    for _ in 0..COMMITS {
        let start = Instant::now();
        runtime
            .block_on(store.save("orders", &checkpoint))
            .map_err(|e| e.to_string())?;
        took.push(start.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99), at(1.0)))
}
