//! The partitioned `dir` inlet against one `file` inlet, through the daemon
//! binary: 8 NDJSON files of 125,000 lines read by `dir` with
//! `inlet_concurrency = 2`, next to one `file` inlet over the same
//! 1,000,000 lines in one file, each to a `null` outlet with
//! `databay once --until-exhausted`; and, as the floor, a hand-written loop
//! parsing every line of the 8 files into a `serde_json::Value`. Reports
//! records/s, CPU time and peak RSS of each; best of 3.
//!
//! ```text
//! cargo bench --bench sources            # 8 x 125,000 lines
//! cargo bench --bench sources -- 50000   # 8 x 50,000
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

const FILES: usize = 8;
const RUNS: usize = 3;

const DIR_CONFIG: &str = r#"
[admin]
enabled = false

[[link]]
name = "parts"
every = "1s"
inlet_concurrency = 2

  [[link.inlet]]
  type = "dir"
  path = "${PARTS}/*.ndjson"
  json = true
  lines_per_transfer = 5000
  discover = false

  [[link.outlet]]
  type = "null"
"#;

const FILE_CONFIG: &str = r#"
[admin]
enabled = false

[[link]]
name = "whole"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "${WHOLE}"
  json = true
  lines_per_transfer = 10000

  [[link.outlet]]
  type = "null"
"#;

fn generate(dir: &Path, whole: &Path, per_file: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut all = BufWriter::new(File::create(whole)?);
    for f in 0..FILES {
        let mut out = BufWriter::new(File::create(dir.join(format!("part-{f}.ndjson")))?);
        for i in 0..per_file {
            let line = format!(
                r#"{{"id":{},"user":"u{}","amount":{}.{:02},"tags":["a","b"]}}"#,
                f * per_file + i,
                (i * 7919) % 10_000,
                i % 300,
                i % 100
            );
            writeln!(out, "{line}")?;
            writeln!(all, "{line}")?;
        }
        out.flush()?;
    }
    all.flush()
}

/// The floor: every line of the 8 files parsed by hand, one after another.
fn hand_loop(dir: &Path) -> std::io::Result<(Duration, usize)> {
    let start = Instant::now();
    let mut n = 0;
    for f in 0..FILES {
        let reader = BufReader::new(File::open(dir.join(format!("part-{f}.ndjson")))?);
        for line in reader.lines() {
            let value: Value = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
            n += usize::from(value.is_object());
        }
    }
    Ok((start.elapsed(), n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let per_file: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(125_000);
    let lines = per_file * FILES;
    let root = std::env::temp_dir().join(format!("databay-sources-{per_file}"));
    let parts = root.join("parts");
    let whole = root.join("whole.ndjson");
    if !whole.exists() {
        generate(&parts, &whole, per_file)?;
    }
    let dir_config = root.join("dir.toml");
    let file_config = root.join("file.toml");
    std::fs::write(&dir_config, DIR_CONFIG)?;
    std::fs::write(&file_config, FILE_CONFIG)?;

    hand_loop(&parts)?; // warm the page cache
    let mut hand = Duration::MAX;
    let (mut dir, mut dir_cpu, mut dir_rss) = (Duration::MAX, Duration::MAX, 0);
    let (mut file, mut file_cpu, mut file_rss) = (Duration::MAX, Duration::MAX, 0);
    for _ in 0..RUNS {
        let (took, n) = hand_loop(&parts)?;
        assert_eq!(n, lines);
        hand = hand.min(took);
        let (took, rss, cpu) = support::once_measured(&dir_config, &[("PARTS", &parts)])?;
        if took < dir {
            (dir, dir_cpu) = (took, cpu);
        }
        dir_rss = dir_rss.max(rss);
        let (took, rss, cpu) = support::once_measured(&file_config, &[("WHOLE", &whole)])?;
        if took < file {
            (file, file_cpu) = (took, cpu);
        }
        file_rss = file_rss.max(rss);
    }
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!("input: {FILES} files x {per_file} NDJSON lines = {lines}; best of {RUNS}");
    println!(
        "hand loop (8 files, serial) : {:>6.0} ms  {:>9.0} records/s",
        hand.as_secs_f64() * 1e3,
        rate(hand)
    );
    for (what, took, cpu, rss) in [
        ("dir, inlet_concurrency = 2 ", dir, dir_cpu, dir_rss),
        ("file, one 1,000,000-line   ", file, file_cpu, file_rss),
    ] {
        println!(
            "databay {what}: {:>6.0} ms  {:>9.0} records/s  {:>5.1}% of the hand loop  CPU {:>5.0} ms ({:.0}% of a core)  peak RSS {:.0} MiB",
            took.as_secs_f64() * 1e3,
            rate(took),
            100.0 * hand.as_secs_f64() / took.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            100.0 * cpu.as_secs_f64() / took.as_secs_f64(),
            rss as f64 / 1024.0
        );
    }
    println!(
        "dir / file records/s: {:.2}x",
        file.as_secs_f64() / dir.as_secs_f64()
    );
    Ok(())
}
