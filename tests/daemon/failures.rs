//! A failing link is reported and retried without stopping the others: a
//! link whose input is missing at startup is `failed` (and started once
//! the input appears), `fail_fast` exits instead, and a link that fails on
//! every tick backs off and does not repeat its error in the log.

use std::fs;
use std::time::Duration;

use crate::support::*;

fn two_links(dir: &std::path::Path, daemon: &str) -> std::path::PathBuf {
    fs::write(dir.join("good.ndjson"), "{\"n\":1}\n").unwrap();
    let config = dir.join("two.toml");
    fs::write(
        &config,
        format!(
            r#"{daemon}
[admin]
listen = "127.0.0.1:0"

[[link]]
name = "missing"
every = "100ms"

  [[link.inlet]]
  type = "file"
  path = "later.ndjson"
  json = true

  [[link.outlet]]
  type = "file"
  path = "missing_out.ndjson"

[[link]]
name = "good"
every = "100ms"

  [[link.inlet]]
  type = "file"
  path = "good.ndjson"
  json = true
  follow = true

  [[link.outlet]]
  type = "file"
  path = "good_out.ndjson"
"#
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_link_whose_input_is_missing_is_failed_and_retried_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_links(dir.path(), "");
    let mut daemon = Daemon::start(dir.path(), &["run", config.to_str().unwrap()]);
    let addr = daemon.admin_addr();
    let failed = eventually("the link reported failed", || {
        let link = links(addr).remove("missing")?;
        (link["state"] == "failed").then_some(link)
    });
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("later.ndjson") && error.contains("on_start"),
        "{failed}"
    );
    assert!(
        failed["consecutive_failures"].as_u64() >= Some(1),
        "{failed}"
    );
    assert!(failed["backoff_until"].is_string(), "{failed}");
    // The healthy link runs meanwhile.
    wait_transfers(addr, "good", 3);
    assert_eq!(lines(&dir.path().join("good_out.ndjson")), ["{\"n\":1}"]);
    assert!(daemon.running());
    // Once the input exists the retried start succeeds and the link runs.
    fs::write(dir.path().join("later.ndjson"), "{\"late\":true}\n").unwrap();
    eventually("the link started after its input appeared", || {
        let link = links(addr).remove("missing")?;
        (link["state"] != "failed" && transfers_ok(&link) > 0).then_some(())
    });
    assert_eq!(
        lines(&dir.path().join("missing_out.ndjson")),
        ["{\"late\":true}"]
    );
    let metrics = http(addr, "GET", "/metrics").body;
    assert!(
        metrics.contains("databay_link_consecutive_failures{link=\"missing\"} 0"),
        "{metrics}"
    );
    assert_eq!(daemon.count_logs("link `missing` started after"), 1);
    daemon.stop();
}

#[test]
fn fail_fast_exits_at_startup_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_links(dir.path(), "[daemon]\nfail_fast = true\n");
    let mut daemon = Daemon::start(dir.path(), &["run", config.to_str().unwrap()]);
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", daemon.stderr());
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("link `missing`") && stderr.contains("later.ndjson"),
        "{stderr}"
    );
}

/// At `every = "10ms"` a bad line used to log the same ERROR on every tick
/// (161 lines in 1.5 s).
#[test]
fn a_link_failing_every_tick_backs_off_and_logs_its_error_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.ndjson"), "{\"ok\":1}\nnot json\n").unwrap();
    let config = dir.path().join("flood.toml");
    fs::write(
        &config,
        r#"[admin]
listen = "127.0.0.1:0"

[[link]]
name = "flood"
every = "10ms"

  [[link.inlet]]
  type = "file"
  path = "bad.ndjson"
  json = true

  [[link.outlet]]
  type = "null"
"#,
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", config.to_str().unwrap()]);
    let addr = daemon.admin_addr();
    let link = eventually("two failed transfers", || {
        let link = links(addr).remove("flood")?;
        (link["counters"]["transfers_failed"].as_u64() >= Some(2)).then_some(link)
    });
    assert!(link["backoff_until"].is_string(), "{link}");
    std::thread::sleep(Duration::from_millis(1500));
    let link = links(addr).remove("flood").unwrap();
    let failed = link["counters"]["transfers_failed"].as_u64().unwrap();
    assert!(
        (2..=4).contains(&failed),
        "1 s, 2 s ... between tries, not one per tick: {failed}"
    );
    let errors = daemon
        .logs()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .count();
    assert_eq!(errors, 1, "the repeats are not logged: {}", daemon.stderr());
    assert_eq!(link["consecutive_failures"].as_u64(), Some(failed));
    daemon.stop();
}

/// `validate` says, located at the option, that an input file does not
/// exist yet; the config is still valid.
#[test]
fn validate_warns_that_an_input_file_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_links(dir.path(), "");
    let out = output({
        let mut cmd = databay();
        cmd.args(["validate", config.to_str().unwrap()]);
        cmd
    });
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let want = format!(
        "warning: {}:11:10: `link.missing.inlet[0].path`: `{}` does not exist (yet)",
        config.display(),
        dir.path().join("later.ndjson").display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "only the missing file: {stderr}");
}
