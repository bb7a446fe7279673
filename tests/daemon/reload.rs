//! SIGHUP: the daemon reloads its config and replaces only the links that
//! changed, adds and removes links, rejects a broken config and keeps
//! running the old one, flushes the buffers of replaced and removed links
//! (an unchanged link keeps its buffer), and keeps a link whose new version
//! cannot start.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

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

fn buffered_link(name: &str, max: u32) -> String {
    buffered(name, max, 100_000)
}

fn buffered(name: &str, max: u32, count: u32) -> String {
    format!(
        r#"
[[link]]
name = "{name}"
every = "50ms"

  [[link.inlet]]
  type = "random_int"
  min = 1000
  max = {max}

  [[link.processor]]
  type = "buffer"
  count = {count}

  [[link.outlet]]
  type = "file"
  path = "out/{name}.txt"
"#
    )
}

fn config(links: &[String]) -> String {
    let mut text = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    for l in links {
        text.push_str(l);
    }
    text
}

/// A reload flushes what the buffer of a removed link, and a changed buffer
/// of a replaced link, holds (nothing lost); an unchanged link keeps its
/// buffer, and so does a replaced link whose buffer did not change.
#[test]
fn reload_flushes_the_buffers_of_replaced_and_removed_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reload.toml");
    fs::write(
        &path,
        config(&[
            buffered_link("changed", 1999),
            buffered_link("removed", 1999),
            buffered_link("kept", 1999),
            buffered_link("carried", 1999),
        ]),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    let before = ["changed", "removed", "kept", "carried"].map(|l| wait_transfers(addr, l, 5));
    for name in ["changed", "removed", "kept", "carried"] {
        assert!(lines(&dir.path().join(format!("out/{name}.txt"))).is_empty());
    }

    fs::write(
        &path,
        config(&[
            buffered("changed", 1998, 90_000),
            buffered_link("kept", 1999),
            buffered_link("carried", 1998),
        ]),
    )
    .unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    let changed = lines(&dir.path().join("out/changed.txt"));
    let removed = lines(&dir.path().join("out/removed.txt"));
    assert!(
        changed.len() as u64 >= before[0],
        "{} lines after {} transfers",
        changed.len(),
        before[0]
    );
    assert!(removed.len() as u64 >= before[1]);
    assert!(
        lines(&dir.path().join("out/kept.txt")).is_empty(),
        "the unchanged link was flushed"
    );
    assert!(
        lines(&dir.path().join("out/carried.txt")).is_empty(),
        "the unchanged buffer of a replaced link was flushed"
    );
    let now = links(addr);
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        ["carried", "changed", "kept"]
    );
    assert!(transfers_ok(&now["kept"]) >= before[2]);

    let ok = wait_transfers(addr, "changed", 3);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
    let changed_after = lines(&dir.path().join("out/changed.txt"));
    assert!(changed_after.len() as u64 >= changed.len() as u64 + ok);
    assert!(!lines(&dir.path().join("out/kept.txt")).is_empty());
    // The carried buffer held the first version's records: none was lost.
    let carried = lines(&dir.path().join("out/carried.txt"));
    assert!(
        carried.len() as u64 > before[3],
        "{} lines after {} transfers of the first version",
        carried.len(),
        before[3]
    );
}

/// A reload whose new version of a link cannot start (its input file is
/// missing, an `on_start` error that `validate` cannot see): the running
/// version was already stopped, so the link disappears until a later
/// reload succeeds. The README promises that a broken new config leaves the
/// old one running; here the old link should be kept (or restarted).
#[test]
fn reload_keeps_a_link_whose_replacement_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reload.toml");
    let link = |inlet: &str| {
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[link]]\nname = \"A\"\nevery = \"50ms\"\n\n{inlet}\n\n  [[link.outlet]]\n  type = \"null\"\n"
        )
    };
    fs::write(
        &path,
        link("  [[link.inlet]]\n  type = \"random_int\"\n  max = 10"),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    wait_transfers(addr, "A", 3);

    fs::write(
        &path,
        link("  [[link.inlet]]\n  type = \"file\"\n  path = \"missing.ndjson\""),
    )
    .unwrap();
    let validated = databay()
        .args(["validate", "reload.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "validate already refuses it: {}",
        String::from_utf8_lossy(&validated.stderr)
    );
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    assert_eq!(
        daemon.count_logs("cannot start the link"),
        1,
        "{}",
        daemon.stderr()
    );
    let now = links(addr);
    let served = now.contains_key("A");
    let stderr = daemon.stderr();
    assert_eq!(daemon.stop(), Some(0));
    assert!(
        served,
        "link A is gone: neither the old nor the new version runs; stderr:\n{stderr}"
    );
}

/// `totals`: one record a transfer, counted per transfer by `per_transfer`
/// and summed over the whole stream by `total`.
fn totals_link(every: &str, inlet: &str, per_transfer_field: &str, total_extra: &str) -> String {
    format!(
        r#"
[[link]]
name = "totals"
every = "{every}"

{inlet}

  [[link.processor]]
  name = "per_transfer"
  type = "aggregate"
  key_expr = '"all"'
  eof = "transfer"
  key_field = "{per_transfer_field}"
  aggregates.n = {{ reducer = "count" }}

  [[link.processor]]
  name = "total"
  type = "aggregate"
  key_expr = '"all"'
  aggregates.total = {{ reducer = "sum", pointer = "/n" }}
  {total_extra}

  [[link.outlet]]
  type = "file"
  path = "out/totals.txt"
"#
    )
}

const ONES: &str = "  [[link.inlet]]\n  type = \"random_int\"\n  min = 1\n  max = 1";

fn logged_for(daemon: &Daemon, message_start: &str) -> Vec<String> {
    daemon
        .logs()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message_start))
        })
        .map(|l| l["processor"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A reload that changes a link but leaves an operator as it was (same
/// name, same options) carries the operator's state over to the new
/// version: it is not flushed and goes on counting; a changed operator is
/// flushed before its replacement starts; the log says which. A
/// replacement that cannot start gives the state back to the old version.
#[test]
fn reload_keeps_the_state_of_unchanged_operators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reload.toml");
    let out = dir.path().join("out/totals.txt");
    fs::write(&path, config(&[totals_link("50ms", ONES, "key", "")])).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "reload.toml"]);
    let addr = daemon.admin_addr();
    let first = wait_transfers(addr, "totals", 20);

    // A new version that cannot start: the old one goes on, state and all.
    let missing = "  [[link.inlet]]\n  type = \"file\"\n  path = \"missing.ndjson\"";
    fs::write(&path, config(&[totals_link("50ms", missing, "key", "")])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 1);
    assert_eq!(
        daemon.count_logs("cannot start the link"),
        1,
        "{}",
        daemon.stderr()
    );
    assert!(
        lines(&out).is_empty(),
        "the operators were flushed: {:?}",
        lines(&out)
    );

    // Another schedule and another `per_transfer`: `total` carries over.
    fs::write(&path, config(&[totals_link("60ms", ONES, "k", "")])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 2);
    assert_eq!(
        logged_for(&daemon, "processor `per_transfer` changed"),
        ["per_transfer"]
    );
    assert_eq!(
        logged_for(&daemon, "processor `total` unchanged"),
        ["total", "total"],
        "once for the replacement that could not start, once now"
    );
    assert!(
        lines(&out).is_empty(),
        "`total` was flushed by the reload: {:?}",
        lines(&out)
    );
    let keys = links(addr)["totals"]["processors"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "total"))
        .and_then(|p| p["gauges"].as_array().cloned())
        .and_then(|gs| gs.into_iter().find(|g| g["name"] == "keys"))
        .map(|g| g["value"].clone());
    assert_eq!(
        keys,
        Some(serde_json::json!(1)),
        "{:?}",
        links(addr)["totals"]
    );
    let second = wait_transfers(addr, "totals", 3);

    // A changed `total` is flushed: its sum spans both versions.
    let extra = "aggregates.records = { reducer = \"count\" }";
    fs::write(&path, config(&[totals_link("60ms", ONES, "k", extra)])).unwrap();
    daemon.signal("HUP");
    daemon.wait_count("reload done", 3);
    assert_eq!(logged_for(&daemon, "processor `total` changed"), ["total"]);
    let flushed = lines(&out);
    assert_eq!(flushed.len(), 1, "{flushed:?}");
    let line: serde_json::Value = serde_json::from_str(&flushed[0]).unwrap();
    let total = line["total"].as_u64().unwrap_or_else(|| panic!("{line}"));
    assert!(
        total >= first + second,
        "the sum {total} lost the first version's {first} records (the second had {second})"
    );

    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
    let at_end = lines(&out);
    assert_eq!(at_end.len(), 2, "{at_end:?}");
    let last: serde_json::Value = serde_json::from_str(&at_end[1]).unwrap();
    assert!(last["records"].as_u64().is_some_and(|n| n >= 1), "{last}");
}

/// The delivery issue's reload test: one processor of a link changes under
/// SIGHUP while the link transfers, with checkpoints on. The old version
/// stops at a checkpoint and the new one resumes from it: every record
/// arrives exactly once, the ones before the reload with the old field and
/// the ones after it with the new.
#[test]
fn changing_a_processor_under_load_loses_and_repeats_nothing() {
    const LINES: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..LINES).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    fs::write(dir.path().join("in.ndjson"), text).unwrap();
    let config = |version: u32| {
        format!(
            r#"
[daemon]
state_dir = "state"

[admin]
enabled = false

[[link]]
name = "tagged"
every = "10ms"

  [[link.inlet]]
  type = "file"
  name = "numbers"
  path = "in.ndjson"
  json = true
  lines_per_transfer = 100

  [[link.processor]]
  type = "set"
  fields = {{ "/version" = {version} }}

  [[link.outlet]]
  type = "file"
  path = "out.ndjson"
"#
        )
    };
    let path = dir.path().join("tagged.toml");
    fs::write(&path, config(1)).unwrap();
    let out = dir.path().join("out.ndjson");
    let mut daemon = Daemon::start(dir.path(), &["run", "tagged.toml"]);
    eventually("a fifth of the lines written", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (lines(&out).len() >= LINES / 5).then_some(())
    });
    fs::write(&path, config(2)).unwrap();
    daemon.signal("HUP");
    eventually("every line written", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (lines(&out).len() >= LINES).then_some(())
    });
    // A moment for anything written twice to show.
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(20));
    let mut seen = vec![0u32; LINES];
    let mut versions = Vec::new();
    for line in lines(&out) {
        let v: Value = serde_json::from_str(&line).unwrap();
        seen[v["n"].as_u64().unwrap() as usize] += 1;
        versions.push(v["version"].as_u64().unwrap());
    }
    assert!(seen.iter().all(|n| *n == 1), "a line missing or repeated");
    let switched = versions.iter().position(|v| *v == 2);
    let switched = switched.expect("no line went through the new processor");
    assert!(switched > 0, "no line went through the old processor");
    assert!(
        versions[switched..].iter().all(|v| *v == 2),
        "the old processor ran after the reload"
    );
}
