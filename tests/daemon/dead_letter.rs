//! The dead-letter outlet and routed outlets from TOML: `[link.dead_letter]`
//! takes what an outlet rejected or failed to take, each written as one
//! object saying why, where and when; `routed = true` outlets get only the
//! records routed to them by name.

use std::fs;

use serde_json::{Value, json};

use crate::support::*;

fn run_once(dir: &std::path::Path, config: &str) -> (Option<i32>, String) {
    let path = dir.join("link.toml");
    fs::write(&path, config).unwrap();
    let mut cmd = databay();
    cmd.arg("once").arg(&path).arg("--until-exhausted");
    let out = output(cmd);
    (out.status.code(), text(&out.stderr))
}

fn json_lines(path: &std::path::Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A CSV outlet rejects a payload that is not an object: the rest of the
/// batch is written, the reject is a dead letter with its reason, the
/// outlet, the update and the attempts, and `once` succeeds.
#[test]
fn rejected_records_are_written_to_the_dead_letter_outlet() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.ndjson"), "{\"id\":1}\n5\n{\"id\":3}\n").unwrap();
    let (code, stderr) = run_once(
        dir.path(),
        r#"
[admin]
enabled = false

[[link]]
name = "orders"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  json = true

  [[link.outlet]]
  type = "csv"
  name = "table"
  path = "out.csv"

  [link.dead_letter]
  type = "file"
  path = "dead.ndjson"
"#,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines(&dir.path().join("out.csv")), ["id", "1", "3"]);
    let dead = json_lines(&dir.path().join("dead.ndjson"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(letter["record"], json!(5));
    assert_eq!(letter["outlet"], json!("table"));
    let update = letter["update"].as_str().unwrap_or_default();
    assert!(update.starts_with("orders."), "{update}");
    assert_eq!(letter["attempts"], json!(1));
    let why = letter["error"].as_str().unwrap_or_default();
    assert!(why.contains("must be a JSON object"), "{why}");
    assert!(
        stderr.contains("went to the dead-letter outlet"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 rejected by an outlet, 1 to the dead-letter outlet"),
        "{stderr}"
    );
}

/// An outlet whose push fails for good (its path is a directory, after its
/// retries) hands the whole batch over; the other outlet writes it, and the
/// link is not failed.
#[test]
fn a_push_that_fails_for_good_goes_to_the_dead_letter_outlet() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.ndjson"), "{\"id\":1}\n{\"id\":2}\n").unwrap();
    fs::create_dir(dir.path().join("blocked.ndjson")).unwrap();
    let (code, stderr) = run_once(
        dir.path(),
        r#"
[admin]
enabled = false

[[link]]
name = "copy"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  json = true

  [[link.outlet]]
  type = "file"
  name = "good"
  path = "good.ndjson"

  [[link.outlet]]
  type = "file"
  name = "blocked"
  path = "blocked.ndjson"
  retry = { attempts = 2, backoff = "10ms" }

  [link.dead_letter]
  type = "file"
  path = "dead.ndjson"
"#,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json_lines(&dir.path().join("good.ndjson")).len(), 2);
    let dead = json_lines(&dir.path().join("dead.ndjson"));
    let records: Vec<&Value> = dead.iter().map(|d| &d["record"]).collect();
    assert_eq!(records, [&json!({"id": 1}), &json!({"id": 2})]);
    assert!(
        dead.iter()
            .all(|d| d["outlet"] == "blocked" && d["attempts"] == 2)
    );
}

/// `envelope = false` writes the payloads as they were, and a record routed
/// to a `routed = true` outlet goes there alone.
#[test]
fn routed_outlets_and_raw_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.ndjson"), "{\"id\":1}\n7\n").unwrap();
    let (code, stderr) = run_once(
        dir.path(),
        r#"
[admin]
enabled = false

[[link]]
name = "split"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  json = true

  [[link.outlet]]
  type = "csv"
  path = "out.csv"

  [[link.outlet]]
  type = "file"
  name = "never"
  routed = true
  path = "never.ndjson"

  [link.dead_letter]
  type = "file"
  path = "raw.ndjson"
  envelope = false
"#,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines(&dir.path().join("out.csv")), ["id", "1"]);
    assert_eq!(json_lines(&dir.path().join("raw.ndjson")), [json!(7)]);
    assert!(
        !dir.path().join("never.ndjson").exists(),
        "a routed outlet gets no record that was not routed to it"
    );
}

/// A window's late records go to the outlet its `late` option names, a
/// routed one, and nowhere else; the windows' output does not go there.
#[test]
fn late_records_of_a_window_go_to_their_routed_outlet() {
    let dir = tempfile::tempdir().unwrap();
    let click =
        |user: &str, at: &str| format!("{{\"user\":\"{user}\",\"at\":\"2026-01-01T00:{at}Z\"}}\n");
    let input = [
        click("ada", "00:10"),
        click("ada", "01:05"),
        click("bob", "00:20"),
    ]
    .concat();
    fs::write(dir.path().join("clicks.ndjson"), input).unwrap();
    let (code, stderr) = run_once(
        dir.path(),
        r#"
[admin]
enabled = false

[[link]]
name = "clicks"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "clicks.ndjson"
  json = true

  [[link.processor]]
  type = "window"
  key = "/user"
  window = "tumbling"
  length = "1m"
  timestamp = "/at"
  aggregates.clicks = { reducer = "count" }
  late = "late_clicks"

  [[link.outlet]]
  type = "file"
  name = "windows"
  path = "windows.ndjson"

  [[link.outlet]]
  type = "file"
  name = "late_clicks"
  routed = true
  path = "late.ndjson"
"#,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let late = json_lines(&dir.path().join("late.ndjson"));
    assert_eq!(late, [json!({"user": "bob", "at": "2026-01-01T00:00:20Z"})]);
    let windows = json_lines(&dir.path().join("windows.ndjson"));
    let keys: Vec<&Value> = windows.iter().map(|w| &w["key"]).collect();
    assert_eq!(keys, [&json!("ada"), &json!("ada")], "{windows:?}");
}
