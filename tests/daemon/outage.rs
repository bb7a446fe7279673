//! A database outage mid-stream: the link writes into PostgreSQL through a
//! TCP proxy the test runs on loopback (the shared server is never
//! stopped); the proxy cuts every connection and refuses new ones for a
//! while, then lets them through again. The link retries, backs off,
//! recovers by itself, and at the end every record is in the table; the
//! outlet's retries show in `/metrics`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use databay_component::postgres::testing::{TestTable, client};

use crate::support::*;

const RECORDS: usize = 20_000;

/// Forwards 127.0.0.1:<port> to PostgreSQL while `up`; cutting it closes
/// every connection it carries and refuses new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (accept_up, accept_open) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !accept_up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                let mut open = accept_open.lock().unwrap();
                for s in [&client, &server] {
                    if let Ok(s) = s.try_clone() {
                        open.push(s);
                    }
                }
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_database_outage_loses_nothing_and_the_link_recovers_by_itself() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = rt.block_on(client());
    let table = rt.block_on(TestTable::create(&pg, "outage", "id bigint PRIMARY KEY"));
    let proxy = Proxy::start();
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
  url = "postgresql://postgres@127.0.0.1:{port}/test"
  connect_timeout = "1s"
  table = "{table}"
  columns = {{ id = "/id" }}
  on_conflict = {{ keys = ["id"], action = "nothing" }}
  retry = {{ attempts = 3, backoff = "100ms" }}
"#,
            port = proxy.port,
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
    proxy.cut();
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
    proxy.restore();

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
