//! Values from the environment stay secret at run time too: a push that
//! fails on a path built from `${SECRET_TOKEN}` is reported in text and
//! JSON logs, in `/links`, in the answer to a forced transfer and on
//! `once`'s stderr, each time with `***` in place of the value.

use std::time::Duration;

use crate::support::*;

const TOKEN: &str = "tok-7f3a9c2e";

/// A link whose CSV outlet writes under a directory named by the secret,
/// where a plain file stands: every push fails, naming the path.
fn failing_setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(
        dir.path().join("out").join(TOKEN),
        "a file, not a directory",
    )
    .unwrap();
    let config = dir.path().join("secret.toml");
    std::fs::write(
        &config,
        r#"[admin]
listen = "127.0.0.1:0"

[[link]]
name = "leaky"
every = "100ms"

  [[link.inlet]]
  type = "random_int"

  # CSV rows need object payloads.
  [[link.processor]]
  type = "map"
  expr = "{n: .}"

  [[link.outlet]]
  type = "csv"
  path = "out/${SECRET_TOKEN}/rows.csv"
"#,
    )
    .unwrap();
    (dir, config)
}

#[test]
fn a_failing_push_never_shows_the_secret() {
    let (dir, config) = failing_setup();
    // `once`: the failure on stderr.
    let mut cmd = databay();
    cmd.args(["once", config.to_str().unwrap()])
        .env("SECRET_TOKEN", TOKEN)
        .current_dir(dir.path());
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("out/***/rows.csv"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");

    for format in ["json", "text"] {
        let mut cmd = databay();
        cmd.args(["--log-format", format, "run", config.to_str().unwrap()])
            .env("SECRET_TOKEN", TOKEN)
            .current_dir(dir.path());
        let mut daemon = Daemon::spawn(cmd);
        if format == "json" {
            let addr = daemon.admin_addr();
            let status = eventually("a failed transfer in /links", || {
                let link = links(addr).remove("leaky")?;
                (link["counters"]["transfers_failed"].as_u64() > Some(0)).then_some(link)
            });
            let last = status["last_error"].as_str().unwrap_or_default().to_owned();
            assert!(last.contains("***"), "{status}");
            assert!(!status.to_string().contains(TOKEN), "{status}");
            let forced = http(addr, "POST", "/links/leaky/transfer");
            assert!(forced.body.contains("***"), "{}", forced.body);
            assert!(!forced.body.contains(TOKEN), "{}", forced.body);
        } else {
            std::thread::sleep(Duration::from_millis(600));
        }
        daemon.stop();
        let logs = daemon.stderr();
        assert!(logs.contains("***"), "{format}: {logs}");
        assert!(
            !logs.contains(TOKEN),
            "{format} logs show the secret:\n{logs}"
        );
    }
}
