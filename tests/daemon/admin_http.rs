//! The admin endpoint over real HTTP: `/healthz`, OpenMetrics `/metrics`
//! (with and without `link_histograms`), `/links` and `/links/{name}`,
//! forcing a transfer, pausing and resuming a link, and JSON 404s and 405s
//! for what does not exist; and that idle admin clients, however many,
//! never make transfers fail.

use std::fs;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

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
            m.headers
                .contains("content-type: application/openmetrics-text"),
            "{}",
            m.headers
        );
        sample(&m.body, r#"databay_transfers_total{link="A",result="ok"}"#).filter(|v| *v > 0.0)
    });
    assert!(ok_a >= 1.0);
    // By default histograms are daemon-wide only.
    let metrics = http(addr, "GET", "/metrics").body;
    let transfers = sample(&metrics, "databay_daemon_transfer_duration_seconds_count");
    assert!(transfers.is_some_and(|n| n >= ok_a), "{metrics}");
    assert!(
        !metrics.contains("databay_transfer_duration_seconds_bucket"),
        "{metrics}"
    );

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

/// `[admin] link_histograms = true` adds each link's histograms.
#[test]
fn admin_link_histograms_are_exported_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        daemon_config(&[("A", 10)]).replace("[admin]\n", "[admin]\nlink_histograms = true\n");
    fs::write(dir.path().join("histograms.toml"), config).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "histograms.toml"]);
    let addr = daemon.admin_addr();
    let metrics = eventually("a transfer of A in its duration histogram", || {
        let m = http(addr, "GET", "/metrics").body;
        let count = sample(&m, r#"databay_transfer_duration_seconds_count{link="A"}"#)?;
        (count > 0.0).then_some(m)
    });
    let inf = r#"databay_transfer_duration_seconds_bucket{le="+Inf",link="A"}"#;
    assert!(sample(&metrics, inf).is_some(), "{metrics}");
    let lateness = r#"databay_schedule_lateness_seconds_count{link="A"}"#;
    assert!(sample(&metrics, lateness).is_some(), "{metrics}");
    assert!(
        sample(&metrics, "databay_daemon_transfer_duration_seconds_count").is_some(),
        "{metrics}"
    );

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", daemon.stderr());
}

/// 300 idle admin connections against a daemon limited to 256 open files:
/// the endpoint holds at most `max_connections` of them (the rest get a 503
/// and are closed), so the link writing a file every 50 ms never runs out
/// of descriptors and every record reaches the file.
#[test]
fn idle_admin_connections_never_make_transfers_fail() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("limits.toml"),
        r#"
[admin]
listen = "127.0.0.1:0"

[[link]]
name = "steady"
every = "50ms"

  [[link.inlet]]
  type = "random_int"

  [[link.outlet]]
  type = "file"
  path = "out/records.txt"
"#,
    )
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"ulimit -n 256 && exec "$0" "$@""#, bin()])
        .args(["--log-format", "json", "run", "limits.toml"])
        .current_dir(dir.path())
        .stdin(Stdio::null());
    for var in ["RUST_LOG", "DATABAY_LOG_FORMAT", "DATABAY_LOG_LEVEL"] {
        cmd.env_remove(var);
    }
    let mut daemon = Daemon::spawn(cmd);
    let addr = daemon.admin_addr();
    let before = wait_transfers(addr, "steady", 3);

    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect_timeout(&addr, PATIENCE).expect("connect to admin"))
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    drop(idle);

    // The held slots free up once the daemon sees the clients go.
    let answer = |path: &str, method: &str| {
        eventually(&format!("{method} {path} answered"), || {
            let reply = try_http(addr, method, path).ok()?;
            (reply.status == 200).then(|| reply.json())
        })
    };
    answer("/links/steady/pause", "POST");
    let link = eventually("`steady` paused, no transfer running", || {
        let link = answer("/links/steady", "GET");
        (link["state"] == "paused").then_some(link)
    });
    let counters = &link["counters"];
    assert_eq!(counters["transfers_failed"], 0, "{link}");
    // 3 s at one transfer every 50 ms: far more than 10 unless transfers stalled.
    assert!(transfers_ok(&link) >= before + 10, "{link}");
    assert_eq!(counters["records_dropped"], 0, "{link}");
    let written = lines(&dir.path().join("out/records.txt")).len() as u64;
    assert_eq!(Some(written), counters["records_out"].as_u64(), "{link}");
    assert_eq!(counters["records_out"], counters["records_in"], "{link}");
    assert!(
        !daemon.stderr().contains("Too many open files"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr());
}
