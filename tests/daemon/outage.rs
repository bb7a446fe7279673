//! A database outage mid-stream: the link writes into PostgreSQL through a
//! TCP proxy the test runs on loopback (the shared server is never
//! stopped); the proxy cuts every connection and refuses new ones for a
//! while, then lets them through again. The link retries, backs off,
//! recovers by itself, and at the end every record is in the table; the
//! outlet's retries show in `/metrics`.

use std::time::{Duration, Instant};

use databay_component::postgres::testing::{TestTable, client, url};
use databay_component::testing::TcpProxy;

use crate::support::*;

const RECORDS: usize = 20_000;

#[test]
fn a_database_outage_loses_nothing_and_the_link_recovers_by_itself() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = rt.block_on(client());
    let table = rt.block_on(TestTable::create(&pg, "outage", "id bigint PRIMARY KEY"));
    // The proxy's tasks run on `rt`'s workers while the test waits.
    let (proxy, proxied) = rt.block_on(TcpProxy::for_url(&url())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..RECORDS).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    std::fs::write(dir.path().join("in.ndjson"), text).unwrap();
    std::fs::write(
        dir.path().join("outage.toml"),
        format!(
            r#"
[daemon]
state_dir = "state"

[admin]
listen = "127.0.0.1:0"

[[link]]
name = "rows"
every = "20ms"
backoff = "100ms"
max_backoff = "500ms"

  [[link.inlet]]
  type = "file"
  path = "in.ndjson"
  json = true
  lines_per_transfer = 200

  [[link.outlet]]
  type = "postgres"
  name = "table"
  url = "{proxied}"
  connect_timeout = "1s"
  table = "{table}"
  columns = {{ id = "/id" }}
  on_conflict = {{ keys = ["id"], action = "nothing" }}
  retry = {{ attempts = 3, backoff = "100ms" }}
"#,
            table = table.name
        ),
    )
    .unwrap();
    let count = || -> i64 {
        rt.block_on(pg.query_one(&format!("SELECT count(*) FROM \"{}\"", table.name), &[]))
            .unwrap()
            .get(0)
    };

    let mut daemon = Daemon::start(dir.path(), &["run", "outage.toml"]);
    let admin = daemon.admin_addr();
    eventually("some rows written", || (count() > 1000).then_some(()));
    rt.block_on(proxy.cut());
    let during = count();
    std::thread::sleep(Duration::from_secs(10));
    assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
    let after_outage = count();
    assert!(
        after_outage < RECORDS as i64,
        "the outage came too late to test anything ({during} rows when it began)"
    );
    let links = http(admin, "GET", "/links/rows").json();
    assert!(
        links["counters"]["transfers_failed"].as_u64().unwrap_or(0) > 0,
        "no transfer failed during the outage: {links}"
    );
    rt.block_on(proxy.restore()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < RECORDS as i64 {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        assert!(
            Instant::now() < deadline,
            "not recovered a minute after the outage: {} rows\n{}",
            count(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = http(admin, "GET", "/metrics").body;
    let retries: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("databay_component_retries_total{") && l.contains("link=\"rows\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(retries > 0.0, "no retries in /metrics:\n{metrics}");
    let links = http(admin, "GET", "/links/rows").json();
    assert_eq!(links["consecutive_failures"], 0, "{links}");
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(count(), RECORDS as i64, "every record, once");
}
