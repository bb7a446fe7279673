//! `databay once`: every link runs one transfer (or, with
//! `--until-exhausted`, until its inlets run dry), buffers are flushed at
//! the end, a summary per link goes to stderr, and the exit status reports
//! a link that failed; `--link` picks one link and an unknown name is a
//! usage error.

use std::collections::BTreeSet;
use std::fs;

use serde_json::Value;

use crate::support::*;

/// 1 000 orders as NDJSON, each line `line(id, amount)`, and the ids of
/// those with an amount above 10: integers 0..=20 and, every 7th, a
/// fraction around the threshold.
fn orders(line: impl Fn(u32, Value) -> Value) -> (String, BTreeSet<u32>) {
    let mut ndjson = String::new();
    let mut want = BTreeSet::new();
    for id in 0..1000u32 {
        let amount = if id % 7 == 0 {
            Value::from(f64::from(id % 3) * 0.5 + 9.75)
        } else {
            Value::from(id % 21)
        };
        if amount.as_f64().unwrap() > 10.0 {
            want.insert(id);
        }
        ndjson.push_str(&line(id, amount).to_string());
        ndjson.push('\n');
    }
    (ndjson, want)
}

/// `once --until-exhausted` on the file-to-CSV example: exactly the orders
/// above 10, flagged.
#[test]
fn once_until_exhausted_converts_a_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("file_to_csv.toml");
    fs::copy(root().join("config/file_to_csv.toml"), &config).unwrap();
    let input = dir.path().join("orders.ndjson");
    let output_csv = dir.path().join("orders.csv");
    let (ndjson, want) = orders(
        |id, amount| serde_json::json!({"id": id, "amount": amount, "user": format!("u{}", id % 5)}),
    );
    fs::write(&input, ndjson).unwrap();

    let mut cmd = databay();
    cmd.args(["once"])
        .arg(&config)
        .arg("--until-exhausted")
        .env("ORDERS_FILE", &input)
        .env("ORDERS_CSV", &output_csv);
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("1000 records in"),
        "no summary with 1000 records in:\n{stderr}"
    );

    let csv = fs::read_to_string(&output_csv).expect("the CSV");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let mut sorted = header.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["amount", "flag", "id", "user"],
        "header {header:?}"
    );
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let mut got = BTreeSet::new();
    for row in lines {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{row}");
        let amount: f64 = fields[col("amount")].parse().expect("amount");
        assert!(amount > 10.0, "{row}");
        assert_eq!(fields[col("flag")], "true", "{row}");
        let id: u32 = fields[col("id")].parse().expect("id");
        assert!(got.insert(id), "id {id} twice");
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

/// The jq examples on the same kind of file: `file_to_csv_jq.toml` keeps and
/// flags what the native example does, `file_to_csv_jq_computed.toml` adds
/// each kept order's amount in cents, rounded.
#[test]
fn once_until_exhausted_runs_the_jq_examples() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.ndjson");
    let (ndjson, want) = orders(|id, amount| serde_json::json!({"id": id, "amount": amount}));
    fs::write(&input, ndjson).unwrap();

    for (name, column) in [
        ("file_to_csv_jq.toml", "flag"),
        ("file_to_csv_jq_computed.toml", "amount_cents"),
    ] {
        let output_csv = dir.path().join(format!("{name}.csv"));
        let mut cmd = databay();
        cmd.args(["once"])
            .arg(root().join("config").join(name))
            .arg("--until-exhausted")
            .env("ORDERS_FILE", &input)
            .env("ORDERS_CSV", &output_csv);
        let out = output(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: stderr:\n{stderr}");

        let csv = fs::read_to_string(&output_csv).expect("the CSV");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        assert_eq!(header, ["id", "amount", column], "{name}");
        let mut got = BTreeSet::new();
        for row in lines {
            let fields: Vec<&str> = row.split(',').collect();
            assert_eq!(fields.len(), 3, "{name}: {row}");
            let amount: f64 = fields[1].parse().expect("amount");
            assert!(amount > 10.0, "{name}: {row}");
            let added = if column == "flag" {
                "true".to_owned()
            } else {
                ((amount * 100.0).round() as i64).to_string()
            };
            assert_eq!(fields[2], added, "{name}: {row}");
            let id: u32 = fields[0].parse().expect("id");
            assert!(got.insert(id), "{name}: id {id} twice");
        }
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn once_with_an_unknown_link_is_a_usage_error() {
    let config = root().join("config/file_to_csv.toml");
    let mut cmd = databay();
    cmd.arg("once").arg(&config).args(["--link", "order"]);
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no link named `order`") && stderr.contains("(did you mean `orders`?)"),
        "{stderr}"
    );

    let mut cmd = databay();
    cmd.arg("once").arg(&config).args(["--link", "nope"]);
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no link named `nope`"), "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn once_on_a_missing_input_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("missing.toml"),
        r#"
[admin]
enabled = false

[[link]]
name = "orders"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "no-such-orders.ndjson"

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let mut cmd = databay();
    cmd.arg("once").arg(dir.path().join("missing.toml"));
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let path = dir.path().join("no-such-orders.ndjson");
    assert!(
        stderr.contains(&path.display().to_string()),
        "stderr does not name {}:\n{stderr}",
        path.display()
    );
    assert!(stderr.contains("link `orders`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `once`: every link runs once even when another fails to start; buffers
/// are flushed; the exit status reports the failure.
#[test]
fn once_runs_every_link_flushes_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("once.toml"),
        r#"
[[link]]
name = "good"
every = "1h"

  [[link.inlet]]
  type = "random_int"
  min = 5
  max = 5

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/good.txt"

[[link]]
name = "broken"
every = "1h"

  [[link.inlet]]
  type = "file"
  path = "missing.ndjson"

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let out = databay()
        .args(["once", "once.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(lines(&dir.path().join("out/good.txt")), ["5"], "{stderr}");
    assert!(stderr.contains("missing.ndjson"), "{stderr}");
    assert!(stderr.contains("1 of 2 link(s) failed"), "{stderr}");
    assert!(
        stderr.contains("link `good`: 1 transfer, 1 records in, 1 out"),
        "{stderr}"
    );

    let only = databay()
        .args(["once", "once.toml", "--link", "good"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        only.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&only.stderr)
    );
    assert_eq!(lines(&dir.path().join("out/good.txt")), ["5", "5"]);
}

/// `once --until-exhausted` on a finite file: every line, then flush, with
/// a buffer that never fills on its own.
#[test]
fn once_until_exhausted_flushes_a_buffer_that_never_fills() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..25).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    fs::write(dir.path().join("in.ndjson"), input).unwrap();
    fs::write(
        dir.path().join("finite.toml"),
        r#"
[[link]]
name = "finite"
every = "1h"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  lines_per_transfer = 10
  json = true

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/finite.txt"
"#,
    )
    .unwrap();
    let out = databay()
        .args(["once", "finite.toml", "--until-exhausted"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let got = lines(&dir.path().join("out/finite.txt"));
    assert_eq!(got.len(), 25, "{stderr}");
    assert_eq!(got[24], r#"{"i":24}"#);
    assert!(stderr.contains("25 records in, 25 out"), "{stderr}");
}
