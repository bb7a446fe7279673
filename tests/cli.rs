//! End-to-end tests of the `databay` binary: config errors (a corpus of
//! broken files under `tests/fixtures/bad-config/`, each with the lines its
//! errors must print), `validate` on the example configs, `run` with
//! signals (graceful stop, buffer flush, forced stop, reload), the admin
//! endpoint over real HTTP, `once`, `plugins` and JSON logs.
//!
//! Every daemon runs in its own temp dir with its admin endpoint on an
//! ephemeral port, and is killed if the test fails. Waits poll against
//! generous deadlines, so a loaded machine slows the tests down rather
//! than failing them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread::{self};
use std::time::Duration;

use serde_json::Value;

/// Set for every run of the bad-config corpus; `env_*` fixtures read it,
/// and it must never be printed.
const SECRET: &str = "hunter2-swordfish";

mod support;
use support::*;

// --- 1. the bad-config corpus ----------------------------------------------

fn bad_config_dir() -> PathBuf {
    root().join("tests/fixtures/bad-config")
}

/// The corpus: every `.toml` with its `.expected` lines.
fn corpus() -> Vec<(String, Vec<String>)> {
    let mut cases: Vec<(String, Vec<String>)> = fs::read_dir(bad_config_dir())
        .expect("tests/fixtures/bad-config")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let expected = fs::read_to_string(p.with_extension("expected"))
                .unwrap_or_else(|e| panic!("{name}: no .expected file: {e}"));
            let lines = expected
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            (name, lines)
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn bad_config_corpus_is_complete() {
    let cases = corpus();
    assert!(
        cases.len() >= 35,
        "only {} bad configs; want at least 35",
        cases.len()
    );
    for entry in fs::read_dir(bad_config_dir()).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {}
            Some("expected") => assert!(
                path.with_extension("toml").exists(),
                "{} has no .toml",
                path.display()
            ),
            _ => panic!("unexpected file {}", path.display()),
        }
    }
    for (name, lines) in &cases {
        assert!(!lines.is_empty(), "{name}: empty .expected");
        let prefix = format!("error: bad-config/{name}:");
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
        assert!(!errors.is_empty(), "{name}: expects no error line");
        for line in errors {
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{name}: `{line}` does not start with `{prefix}`"));
            // file:line:column: `key`: message -- except a file without
            // links (no place to point at) and TOML syntax errors (no key).
            let mut message = rest;
            if *name != "no_links.toml" {
                let mut parts = rest.splitn(3, ':');
                let (l, c) = (parts.next().unwrap(), parts.next().unwrap_or(""));
                assert!(
                    l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
                    "{name}: `{line}` has no line:column"
                );
                message = parts.next().unwrap_or("");
            }
            if !name.starts_with("syntax_") {
                let key = message
                    .strip_prefix(" `")
                    .and_then(|m| m.split_once("`: "))
                    .map(|(key, _)| key);
                assert!(
                    key.is_some_and(|k| !k.is_empty()),
                    "{name}: `{line}` names no key"
                );
            }
        }
        let count = lines
            .iter()
            .filter(|l| l.ends_with(" in the config"))
            .count();
        assert!(
            count <= 1,
            "{name}: more than one `N errors in the config` line"
        );
    }
}

/// Every broken config fails `validate`, `run` and `once` with EX_CONFIG and
/// exactly the expected, located errors; nothing secret is printed.
#[test]
fn bad_configs_are_reported_with_file_line_column_and_key() {
    let fixtures = root().join("tests/fixtures");
    let mut failures = Vec::new();
    let cases = corpus();
    for (name, expected) in &cases {
        let relative = format!("bad-config/{name}");
        for command in ["validate", "run", "once"] {
            let mut cmd = databay();
            cmd.arg(command)
                .arg(&relative)
                .current_dir(&fixtures)
                .env("DATABAY_TEST_SECRET", SECRET);
            let out = output(cmd);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            let mut problems = Vec::new();
            if out.status.code() != Some(78) {
                problems.push(format!("exit status {:?}, want 78", out.status.code()));
            }
            if !stdout.is_empty() {
                problems.push(format!("stdout not empty: {stdout:?}"));
            }
            if stderr.contains("panicked") {
                problems.push("panicked".to_owned());
            }
            for piece in [SECRET, "hunter2", "swordfish"] {
                if stderr.contains(piece) {
                    problems.push(format!("the secret (`{piece}`) is printed"));
                }
            }
            for line in expected {
                if !stderr.contains(line.as_str()) {
                    problems.push(format!("missing: {line}"));
                }
            }
            // Each expected error line is one error: no others sneak in.
            let want = expected.iter().filter(|l| l.starts_with("error:")).count();
            let got = stderr.lines().filter(|l| l.starts_with("error:")).count();
            if got != want {
                problems.push(format!("{got} error lines, want {want}"));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{command} {relative}:\n  {}\n  stderr:\n{stderr}",
                    problems.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        cases.len() * 3,
        failures.join("\n")
    );
}

// --- 2. the example configs --------------------------------------------------

#[test]
fn every_example_config_validates() {
    let mut seen = 0;
    let mut configs: Vec<PathBuf> = fs::read_dir(root().join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    for path in configs {
        let source = fs::read_to_string(&path).unwrap();
        let links = source.lines().filter(|l| l.trim() == "[[link]]").count();
        let mut cmd = databay();
        cmd.arg("validate").arg(&path);
        let out = output(cmd);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{stderr}",
            path.display()
        );
        let want = format!(
            "{}: ok, {links} link{}",
            path.display(),
            if links == 1 { "" } else { "s" }
        );
        assert!(
            stdout.lines().next() == Some(want.as_str()),
            "{}: want `{want}`, got:\n{stdout}",
            path.display()
        );
        // One line per link after the first.
        assert_eq!(stdout.lines().count(), links + 1, "{stdout}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} example configs");
}

// --- 3./4. run, SIGTERM, buffers ---------------------------------------------

/// The quickstart as documented: runs, writes its CSV and prints JSON
/// objects of rolls above 20, and exits 0 on SIGTERM after flushing.
#[test]
fn quickstart_runs_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let original = fs::read_to_string(root().join("config/quickstart.toml")).unwrap();
    let listen = "listen = \"127.0.0.1:9477\"";
    assert!(
        original.contains(listen),
        "quickstart.toml no longer has {listen}"
    );
    let config = dir.path().join("quickstart.toml");
    fs::write(
        &config,
        original.replace(listen, "listen = \"127.0.0.1:0\""),
    )
    .unwrap();

    let mut daemon = Daemon::start(dir.path(), &["run", config.to_str().unwrap()]);
    let addr = daemon.admin_addr();
    // About 3 s of rolls: six transfers.
    wait_transfers(addr, "quickstart", 6);
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    let stderr = daemon.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let csv = fs::read_to_string(dir.path().join("out/quickstart.csv"))
        .expect("out/quickstart.csv beside the config");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let (roll_at, parity_at) = (
        header
            .iter()
            .position(|c| *c == "roll")
            .expect("roll column"),
        header
            .iter()
            .position(|c| *c == "parity")
            .expect("parity column"),
    );
    assert_eq!(header.len(), 2, "header: {header:?}");
    let mut csv_rolls = Vec::new();
    for row in lines {
        let fields: Vec<&str> = row.split(',').collect();
        let roll: i64 = fields[roll_at].parse().expect("a roll");
        assert!((21..=100).contains(&roll), "roll {roll} in {csv}");
        let parity = if roll % 2 == 0 { "even" } else { "odd" };
        assert_eq!(fields[parity_at], parity, "{row}");
        csv_rolls.push(roll);
    }
    assert!(!csv_rolls.is_empty(), "no data rows in\n{csv}");

    // The console gets the same records, one JSON object per line (after
    // the update, when the print outlet shows it).
    let stdout = daemon.stdout();
    let mut printed = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let json = match line.split_once(' ') {
            Some((update, rest)) if update.starts_with("quickstart.") => rest,
            _ => line,
        };
        let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        let roll = v["roll"]
            .as_i64()
            .unwrap_or_else(|| panic!("no roll: {line}"));
        assert!(roll > 20, "{line}");
        printed.push(roll);
    }
    assert_eq!(
        printed, csv_rolls,
        "stdout and CSV differ:\n{stdout}\n{csv}"
    );
}

/// Records held by a buffer that never fills reach the outlet on SIGTERM.
#[test]
fn sigterm_flushes_what_a_buffer_holds() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("held.toml"),
        r#"
[daemon]
shutdown_grace = "10s"

[admin]
listen = "127.0.0.1:0"

[[link]]
name = "held"
every = "100ms"

  [[link.inlet]]
  type = "random_int"
  min = 1000
  max = 1999

  [[link.processor]]
  type = "buffer"
  count = 1000

  [[link.outlet]]
  type = "file"
  path = "out/held.txt"
"#,
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "held.toml"]);
    let addr = daemon.admin_addr();
    let ok = wait_transfers(addr, "held", 10);
    let out = dir.path().join("out/held.txt");
    let before = fs::read_to_string(&out).unwrap_or_default();
    assert!(before.is_empty(), "the buffer released early: {before}");

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
    let written = fs::read_to_string(&out).expect("the buffer was flushed to the file");
    let values: Vec<i64> = written
        .lines()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        values.len() as u64 >= ok.max(10),
        "{} lines after {ok} transfers:\n{written}",
        values.len()
    );
    assert!(
        values.iter().all(|v| (1000..=1999).contains(v)),
        "{written}"
    );
}

/// A transfer that never ends (its inlet opens a FIFO no one writes) holds
/// up the graceful stop; a second SIGTERM exits at once with 130.
#[test]
fn second_sigterm_forces_exit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("never.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    fs::write(
        dir.path().join("stuck.toml"),
        r#"
[daemon]
shutdown_grace = "1h"

[admin]
enabled = false

[[link]]
name = "stuck"
every = "1s"
inlet_timeout = "1h"

  [[link.inlet]]
  type = "file"
  mode = "file"
  path = "never.fifo"

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--log-level", "debug", "run", "stuck.toml"]);
    daemon.wait_log("the first transfer", |l| {
        l["message"] == "transfer" && l["span"]["update"] == "stuck.0"
    });
    daemon.signal("TERM");
    daemon.wait_count("shutting down", 1);
    // The graceful stop waits for the stuck transfer.
    thread::sleep(Duration::from_secs(1));
    assert!(daemon.running(), "exited although a transfer was in flight");
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "stderr:\n{}", daemon.stderr());
    assert_eq!(daemon.count_logs("second signal"), 1, "{}", daemon.stderr());
}

// --- 5. SIGHUP ----------------------------------------------------------------

fn link_config(name: &str, max: u32) -> String {
    format!(
        r#"
[[link]]
name = "{name}"
every = "100ms"

  [[link.inlet]]
  type = "random_int"
  max = {max}

  [[link.outlet]]
  type = "null"
"#
    )
}

fn daemon_config(links: &[(&str, u32)]) -> String {
    let mut text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    for (name, max) in links {
        text.push_str(&link_config(name, *max));
    }
    text
}

/// SIGHUP replaces only changed links, rejects a broken config, removes
/// and adds links.
#[test]
fn sighup_reloads_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reload.toml");
    fs::write(&config, daemon_config(&[("A", 10), ("B", 10)])).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    wait_transfers(addr, "B", 20);
    let a_before = wait_transfers(addr, "A", 20);

    // Change B only.
    fs::write(&config, daemon_config(&[("A", 10), ("B", 20)])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    let now = links(addr);
    let (a, b) = (transfers_ok(&now["A"]), transfers_ok(&now["B"]));
    assert!(a >= a_before, "A was reset: {a_before} -> {a}");
    assert!(
        b < a_before,
        "B was not restarted: {b} transfers after the reload, A had {a_before} before"
    );
    let replaced: Vec<String> = daemon
        .logs()
        .iter()
        .filter(|l| l["message"] == "link changed; replacing it")
        .map(|l| l["link"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(replaced, ["B"]);
    // Both keep running; A from where it was.
    wait_transfers(addr, "A", a + 3);
    wait_transfers(addr, "B", b + 3);

    // A broken config is rejected and changes nothing.
    fs::write(
        &config,
        daemon_config(&[("A", 10), ("B", 20)]).replace("random_int", "randm_int"),
    )
    .unwrap();
    daemon.signal("HUP");
    let rejected = daemon.wait_log("`reload rejected`", |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reload rejected"))
    });
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("unknown inlet type `randm_int` (did you mean `random_int`?)"),
        "{rejected}"
    );
    let now = links(addr);
    assert_eq!(now.keys().collect::<Vec<_>>(), ["A", "B"]);
    let (a, b) = (transfers_ok(&now["A"]), transfers_ok(&now["B"]));
    wait_transfers(addr, "A", a + 3);
    wait_transfers(addr, "B", b + 3);
    assert_eq!(daemon.count_logs("reload done"), 1);

    // Removing B.
    fs::write(&config, daemon_config(&[("A", 10)])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 2);
    assert_eq!(links(addr).keys().collect::<Vec<_>>(), ["A"]);
    assert_eq!(
        http(addr, "GET", "/links/B").status,
        404,
        "B is still served"
    );

    // Adding C.
    fs::write(&config, daemon_config(&[("A", 10), ("C", 5)])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 3);
    assert_eq!(links(addr).keys().collect::<Vec<_>>(), ["A", "C"]);
    wait_transfers(addr, "C", 3);
    let a_end = transfers_ok(&links(addr)["A"]);
    assert!(a_end > a, "A stopped or was reset: {a} -> {a_end}");

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
}

// --- 6. the admin endpoint ---------------------------------------------------

/// `value` of the Prometheus sample named exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn admin_endpoint_serves_health_metrics_and_link_control() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("admin.toml"),
        daemon_config(&[("A", 10), ("B", 10)]),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "admin.toml"]);
    let addr = daemon.admin_addr();
    assert!(addr.ip().is_loopback());

    let health = http(addr, "GET", "/healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "ok");

    let ok_a = eventually("a positive transfer count for A in /metrics", || {
        let m = http(addr, "GET", "/metrics");
        assert_eq!(m.status, 200);
        assert!(
            m.headers.contains("content-type: text/plain"),
            "{}",
            m.headers
        );
        sample(&m.body, r#"databay_transfers_total{link="A",result="ok"}"#).filter(|v| *v > 0.0)
    });
    assert!(ok_a >= 1.0);

    let all = links(addr);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["A", "B"]);
    assert_eq!(all["A"]["paused"], false);
    let one = http(addr, "GET", "/links/A");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["name"], "A");

    let forced = http(addr, "POST", "/links/A/transfer");
    assert_eq!(forced.status, 200, "{}", forced.body);
    let report = forced.json();
    let update = report["update"].as_str().expect("an update");
    assert!(
        update
            .strip_prefix("A.")
            .is_some_and(|i| i.parse::<u64>().is_ok()),
        "update {update}"
    );
    assert_eq!(report["records_in"], 1, "{report}");

    let paused = http(addr, "POST", "/links/A/pause");
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.json()["paused"], true);
    let now = links(addr);
    assert_eq!(now["A"]["paused"], true);
    assert_eq!(now["B"]["paused"], false);
    // A paused link is not scheduled (one in-flight transfer may end); B is.
    let (a, b) = (transfers_ok(&now["A"]), transfers_ok(&now["B"]));
    wait_transfers(addr, "B", b + 8);
    let a_later = transfers_ok(&links(addr)["A"]);
    assert!(
        a_later <= a + 1,
        "paused A kept transferring: {a} -> {a_later}"
    );
    let metrics = http(addr, "GET", "/metrics").body;
    assert_eq!(
        sample(&metrics, r#"databay_link_paused{link="A"}"#),
        Some(1.0)
    );

    let resumed = http(addr, "POST", "/links/A/resume");
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.json()["paused"], false);
    wait_transfers(addr, "A", a_later + 3);

    for (method, path) in [
        ("GET", "/links/nope"),
        ("POST", "/links/nope/transfer"),
        ("POST", "/links/nope/pause"),
        ("GET", "/nowhere"),
    ] {
        let reply = http(addr, method, path);
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
        assert!(reply.json()["error"].is_string(), "{}", reply.body);
    }
    assert!(
        http(addr, "GET", "/links/nope").json()["error"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    assert_eq!(http(addr, "GET", "/links/A/transfer").status, 405);

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
}

// --- 7. once -----------------------------------------------------------------

/// `once --until-exhausted` on the file-to-CSV example: exactly the orders
/// above 10, flagged.
#[test]
fn once_until_exhausted_converts_a_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("file_to_csv.toml");
    fs::copy(root().join("config/file_to_csv.toml"), &config).unwrap();
    let input = dir.path().join("orders.ndjson");
    let output_csv = dir.path().join("orders.csv");
    let mut ndjson = String::new();
    let mut want = BTreeSet::new();
    for id in 0..1000u32 {
        // Integers 0..=20 and, every 7th, a fraction around the threshold.
        let amount = if id % 7 == 0 {
            Value::from(f64::from(id % 3) * 0.5 + 9.75)
        } else {
            Value::from(id % 21)
        };
        if amount.as_f64().unwrap() > 10.0 {
            want.insert(id);
        }
        ndjson.push_str(
            &serde_json::json!({"id": id, "amount": amount, "user": format!("u{}", id % 5)})
                .to_string(),
        );
        ndjson.push('\n');
    }
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

// --- 8. plugins ----------------------------------------------------------------

#[test]
fn plugins_lists_every_type_with_its_summary() {
    let mut cmd = databay();
    cmd.arg("plugins");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let mut section = "";
    let mut found: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(kind) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            section = kind;
        } else if let Some(entry) = line.strip_prefix("  ") {
            let (name, summary) = entry.split_once(' ').expect("name and summary");
            found
                .entry(section)
                .or_default()
                .push((name.to_owned(), summary.trim().to_owned()));
        }
    }
    let names = |kind: &str| -> Vec<&str> {
        found
            .get(kind)
            .map(|v| v.iter().map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("inlets"), ["file", "null", "random_int"], "{stdout}");
    assert_eq!(
        names("outlets"),
        ["csv", "file", "null", "print"],
        "{stdout}"
    );
    for p in [
        "buffer", "filter", "map", "remove", "rename", "select", "set",
    ] {
        assert!(
            names("processors").contains(&p),
            "no processor {p}:\n{stdout}"
        );
    }
    for g in ["chunk", "group_by"] {
        assert!(names("groupers").contains(&g), "no grouper {g}:\n{stdout}");
    }
    for entries in found.values() {
        for (name, summary) in entries {
            assert!(summary.len() > 10, "`{name}` has no summary: {summary:?}");
        }
    }
    assert!(stdout.contains("random_int   One random integer in [min, max] per transfer."));
}

#[test]
fn plugins_type_prints_its_documented_sample() {
    let mut cmd = databay();
    cmd.args(["plugins", "csv"]);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("[[link.outlet]]"), "{stdout}");
    assert!(stdout.contains("type = \"csv\""), "{stdout}");
    // The very sample beside the code.
    let sample = fs::read_to_string(root().join("outlets/src/csv/sample.toml")).unwrap();
    assert!(stdout.contains(sample.trim_end()), "{stdout}");

    // `file` is both an inlet and an outlet; `outlet/file` only the outlet.
    let mut cmd = databay();
    cmd.args(["plugins", "file"]);
    let both = text(&output(cmd).stdout);
    assert!(
        both.contains("[[link.inlet]]") && both.contains("[[link.outlet]]"),
        "{both}"
    );
    let mut cmd = databay();
    cmd.args(["plugins", "outlet/file"]);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let outlet = text(&out.stdout);
    assert!(outlet.contains("[[link.outlet]]"), "{outlet}");
    assert!(outlet.contains("type = \"file\""), "{outlet}");
    assert!(!outlet.contains("[[link.inlet]]"), "{outlet}");
    let sample = fs::read_to_string(root().join("outlets/src/file/sample.toml")).unwrap();
    assert!(outlet.contains(sample.trim_end()), "{outlet}");
    assert!(!outlet.contains("lines_per_transfer"), "{outlet}");

    for (wanted, hint) in [("nope", None), ("fiel", Some("(did you mean `file`?)"))] {
        let mut cmd = databay();
        cmd.args(["plugins", wanted]);
        let out = output(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            stderr.contains(&format!("no component type `{wanted}`")),
            "{stderr}"
        );
        if let Some(hint) = hint {
            assert!(stderr.contains(hint), "{stderr}");
        }
    }
}

// --- 9. JSON logs --------------------------------------------------------------

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
