//! The daemon's logs: with `--log-format json` every line on stderr is a
//! JSON object with timestamp, level and message, and the lines of a
//! transfer carry its update (`dice.0`).

use std::fs;

use serde_json::Value;

use crate::support::*;

#[test]
fn json_logs_carry_the_update_of_each_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dice.toml");
    fs::write(
        &config,
        r#"
[admin]
enabled = false

[[link]]
name = "dice"
every = "1s"

  [[link.inlet]]
  type = "random_int"
  min = 1
  max = 6

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let mut cmd = databay();
    cmd.args(["--log-format", "json", "--log-level", "debug", "once"])
        .arg(&config);
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut updates = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        // `once` ends with a plain summary; everything else is a JSON log line.
        if line.starts_with("link `dice`: ") {
            continue;
        }
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["timestamp", "level", "message"] {
            assert!(v.get(field).is_some(), "no {field}: {line}");
        }
        if let Some(u) = v
            .get("update")
            .or_else(|| v.get("span").and_then(|s| s.get("update")))
        {
            updates.push(u.as_str().expect("update as text").to_owned());
        }
    }
    assert!(
        updates.iter().any(|u| u == "dice.0"),
        "no log line with update dice.0:\n{stderr}"
    );
    assert!(
        stderr.contains("link `dice`: 1 transfer, 1 records in, 1 out"),
        "{stderr}"
    );
}
