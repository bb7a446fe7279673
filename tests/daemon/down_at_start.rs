//! Servers that are down when the daemon starts: one daemon, one link per
//! network connector (each inlet into `null`, each outlet fed by
//! `random_int`), each pointing at a port of its own where nothing
//! listens yet (a `TcpProxy` in front of the machine's test server, cut
//! before the daemon starts; the shared servers are never touched), and
//! one healthy link. Every failing link reports its own server in
//! `/links` `last_error` and keeps trying while the healthy link runs;
//! once the proxies let connections through (the `http_server` inlet's
//! address is freed, the `exec` programs appear), every link runs by
//! itself and the outlets' records are on the servers.
#![cfg(all(
    feature = "http",
    feature = "http_server",
    feature = "postgres",
    feature = "redis",
    feature = "nats",
    feature = "mqtt",
    feature = "amqp",
    feature = "mongodb",
    feature = "mysql"
))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use databay_component::mongodb::mongodb::bson::Document;
use databay_component::mysql::mysql_async::prelude::Queryable;
use databay_component::testing::TcpProxy;
use databay_core::Inlet;
use serde_json::{Value, json};

use crate::support::*;

/// A tiny HTTP/1.1 server on 127.0.0.1:0 answering every request `200`
/// with the JSON body `[]`; counts the POSTs. Its thread lives as long as
/// the test process.
fn http_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut head = Vec::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => head.push(line.to_ascii_lowercase()),
                        }
                    }
                    let length: usize = head
                        .iter()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if head.first().is_some_and(|l| l.starts_with("post ")) {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                 Content-Length: 2\r\n\r\n[]";
                    if reader.get_mut().write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, posts)
}

/// A link `name` with `inlet` and `outlet` (component tables' bodies).
fn link(name: &str, inlet: &str, outlet: &str) -> String {
    format!(
        "\n[[link]]\nname = \"{name}\"\nevery = \"200ms\"\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\n\n  \
         [[link.inlet]]\n{inlet}\n\n  [[link.outlet]]\n{outlet}\n"
    )
}

const NULL: &str = "  type = \"null\"";
const NUMBERS: &str = "  type = \"random_int\"\n  max = 9";

/// A file inlet of three JSON objects of its own (a failed transfer's
/// records come again, and a document store takes objects only).
fn objects(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(format!("{name}.ndjson"));
    std::fs::write(&path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n").unwrap();
    format!("  type = \"file\"\n  path = \"{name}.ndjson\"\n  json = true")
}

fn unique(tag: &str) -> String {
    format!(
        "databay_test_down_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    )
}

#[test]
fn every_connector_whose_server_is_down_at_start_says_so_retries_and_runs_once_it_is_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The servers, and what each link writes to or reads from.
    let pg = rt.block_on(databay_component::postgres::testing::client());
    let pg_in = rt.block_on(databay_component::postgres::testing::TestTable::create(
        &pg, "down_in", "id int",
    ));
    let pg_out = rt.block_on(databay_component::postgres::testing::TestTable::create(
        &pg,
        "down_out",
        "doc jsonb",
    ));
    let mut my = rt.block_on(databay_component::mysql::testing::conn());
    let my_in = rt.block_on(databay_component::mysql::testing::TestTable::create(
        &mut my, "down_in", "id INT",
    ));
    let my_out = rt.block_on(databay_component::mysql::testing::TestTable::create(
        &mut my, "down_out", "doc TEXT",
    ));
    let mongo = rt.block_on(databay_component::mongodb::testing::TestDatabase::new(
        "down",
    ));
    let q_in = rt.block_on(databay_component::amqp::testing::TestQueue::declare(
        "down_in",
    ));
    let q_out = rt.block_on(databay_component::amqp::testing::TestQueue::declare(
        "down_out",
    ));
    let stream = unique("js").to_uppercase();
    rt.block_on(async {
        let client = databay_component::nats::testing::client().await;
        let config = json!({"name": stream, "subjects": [format!("{stream}.>")]});
        let reply = client
            .request(
                format!("$JS.API.STREAM.CREATE.{stream}"),
                config.to_string().into_bytes().into(),
            )
            .await
            .unwrap_or_else(|e| panic!("creating stream {stream}: {e}"));
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(reply.get("error").is_none(), "{reply}");
    });
    let redis_in = unique("redis_in");
    let redis_out = unique("redis_out");
    let (http_addr, posts) = http_server();

    // One proxy per link, cut: its port refuses connections for now.
    let (mqtt_host, mqtt_port) = databay_component::mqtt::testing::addr();
    let upstreams: [(&str, String); 18] = [
        ("http_in", format!("http://{http_addr}/")),
        ("http_out", format!("http://{http_addr}/")),
        ("mongodb_in", databay_component::mongodb::testing::url()),
        ("mongodb_out", databay_component::mongodb::testing::url()),
        ("postgres_in", databay_component::postgres::testing::url()),
        ("postgres_out", databay_component::postgres::testing::url()),
        ("mysql_in", databay_component::mysql::testing::url()),
        ("mysql_out", databay_component::mysql::testing::url()),
        ("redis_in", databay_component::redis::testing::url()),
        ("redis_out", databay_component::redis::testing::url()),
        ("mqtt_in", format!("mqtt://{mqtt_host}:{mqtt_port}/")),
        ("mqtt_out", format!("mqtt://{mqtt_host}:{mqtt_port}/")),
        ("nats_core_in", databay_component::nats::testing::url()),
        ("nats_js_in", databay_component::nats::testing::url()),
        ("nats_core_out", databay_component::nats::testing::url()),
        ("nats_js_out", databay_component::nats::testing::url()),
        ("amqp_in", databay_component::amqp::testing::url()),
        ("amqp_out", databay_component::amqp::testing::url()),
    ];
    let mut proxies: BTreeMap<&str, TcpProxy> = BTreeMap::new();
    for (name, url) in &upstreams {
        let (proxy, _) = rt
            .block_on(TcpProxy::for_url(url))
            .unwrap_or_else(|e| panic!("a proxy for {name} in front of {url}: {e}"));
        rt.block_on(proxy.cut());
        proxies.insert(name, proxy);
    }
    let port = |name: &str| proxies[name].port();
    // The webhook receiver's address is taken by someone else for now.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let webhook = taken.local_addr().unwrap();

    let topic = unique("mqtt");
    let subject = unique("nats");
    let mut config = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    let mut expect: BTreeMap<&str, String> = BTreeMap::new();
    let mut add = |name: &'static str, inlet: String, outlet: String, marker: String| {
        config.push_str(&link(name, &inlet, &outlet));
        expect.insert(name, marker);
    };
    let p = port("http_in");
    add(
        "http_in",
        format!(
            "  type = \"http\"\n  url = \"http://127.0.0.1:{p}/feed\"\n  request_timeout = \"2s\"\n  retry = {{ attempts = 1 }}"
        ),
        NULL.into(),
        format!("http://127.0.0.1:{p}/feed"),
    );
    let p = port("http_out");
    add(
        "http_out",
        objects(dir.path(), "http_out"),
        format!(
            "  type = \"http\"\n  url = \"http://127.0.0.1:{p}/ingest\"\n  request_timeout = \"2s\"\n  retry = {{ attempts = 1 }}"
        ),
        format!("http://127.0.0.1:{p}/ingest"),
    );
    for (name, collection, inlet) in [("mongodb_in", "c", true), ("mongodb_out", "out", false)] {
        let p = port(name);
        let table = format!(
            "  type = \"mongodb\"\n  uri = \"mongodb://127.0.0.1:{p}\"\n  database = \"{}\"\n  collection = \"{collection}\"\n  connect_timeout = \"1s\"\n  server_selection_timeout = \"1s\"",
            mongo.name
        );
        let (i, o) = if inlet {
            (table, NULL.into())
        } else {
            (objects(dir.path(), name), table)
        };
        add(name, i, o, format!("MongoDB at 127.0.0.1:{p}"));
    }
    let pg_table = |p: u16| {
        format!(
            "  type = \"postgres\"\n  host = \"127.0.0.1\"\n  port = {p}\n  user = \"postgres\"\n  dbname = \"test\"\n  connect_timeout = \"1s\""
        )
    };
    let p = port("postgres_in");
    add(
        "postgres_in",
        format!(
            "{}\n  query = 'SELECT id FROM \"{}\"'",
            pg_table(p),
            pg_in.name
        ),
        NULL.into(),
        format!("PostgreSQL at 127.0.0.1:{p}"),
    );
    let p = port("postgres_out");
    add(
        "postgres_out",
        objects(dir.path(), "postgres_out"),
        format!(
            "{}\n  table = \"{}\"\n  json_column = \"doc\"",
            pg_table(p),
            pg_out.name
        ),
        format!("PostgreSQL at 127.0.0.1:{p}"),
    );
    let my_table = |p: u16| {
        format!(
            "  type = \"mysql\"\n  host = \"127.0.0.1\"\n  port = {p}\n  user = \"root\"\n  database = \"test\"\n  connect_timeout = \"1s\""
        )
    };
    let p = port("mysql_in");
    add(
        "mysql_in",
        format!(
            "{}\n  query = 'SELECT id FROM `{}`'",
            my_table(p),
            my_in.name
        ),
        NULL.into(),
        format!("MySQL at 127.0.0.1:{p}"),
    );
    let p = port("mysql_out");
    add(
        "mysql_out",
        objects(dir.path(), "mysql_out"),
        format!(
            "{}\n  table = \"{}\"\n  json_column = \"doc\"",
            my_table(p),
            my_out.name
        ),
        format!("MySQL at 127.0.0.1:{p}"),
    );
    let redis_table = |p: u16, key: &str| {
        format!(
            "  type = \"redis\"\n  host = \"127.0.0.1\"\n  port = {p}\n  timeout = \"1s\"\n  mode = \"list\"\n  key = \"{key}\""
        )
    };
    let p = port("redis_in");
    add(
        "redis_in",
        redis_table(p, &redis_in),
        NULL.into(),
        format!("Redis at 127.0.0.1:{p}"),
    );
    let p = port("redis_out");
    add(
        "redis_out",
        objects(dir.path(), "redis_out"),
        redis_table(p, &redis_out),
        format!("Redis at 127.0.0.1:{p}"),
    );
    let mqtt_table = |p: u16, id: &str| {
        format!(
            "  type = \"mqtt\"\n  host = \"127.0.0.1\"\n  port = {p}\n  client_id = \"{topic}_{id}\"\n  timeout = \"1s\"\n  topic = \"{topic}\""
        )
    };
    let p = port("mqtt_in");
    add(
        "mqtt_in",
        mqtt_table(p, "in"),
        NULL.into(),
        format!("MQTT broker at 127.0.0.1:{p}"),
    );
    let p = port("mqtt_out");
    add(
        "mqtt_out",
        objects(dir.path(), "mqtt_out"),
        mqtt_table(p, "out"),
        format!("MQTT broker at 127.0.0.1:{p}"),
    );
    let nats_table = |p: u16, rest: &str| {
        format!("  type = \"nats\"\n  url = \"nats://127.0.0.1:{p}\"\n  timeout = \"1s\"\n{rest}")
    };
    let p = port("nats_core_in");
    add(
        "nats_core_in",
        nats_table(p, &format!("  mode = \"core\"\n  subject = \"{subject}\"")),
        NULL.into(),
        format!("NATS at 127.0.0.1:{p}"),
    );
    let p = port("nats_js_in");
    add(
        "nats_js_in",
        nats_table(
            p,
            &format!(
                "  mode = \"jetstream\"\n  stream = \"{stream}\"\n  durable = \"d\"\n  subject = \"{stream}.in\""
            ),
        ),
        NULL.into(),
        format!("NATS at 127.0.0.1:{p}"),
    );
    let p = port("nats_core_out");
    add(
        "nats_core_out",
        objects(dir.path(), "nats_core_out"),
        nats_table(p, &format!("  mode = \"core\"\n  subject = \"{subject}\"")),
        format!("NATS at 127.0.0.1:{p}"),
    );
    let p = port("nats_js_out");
    add(
        "nats_js_out",
        objects(dir.path(), "nats_js_out"),
        nats_table(
            p,
            &format!("  mode = \"jetstream\"\n  subject = \"{stream}.out\""),
        ),
        format!("NATS at 127.0.0.1:{p}"),
    );
    let p = port("amqp_in");
    add(
        "amqp_in",
        format!(
            "  type = \"amqp\"\n  url = \"amqp://guest:guest@127.0.0.1:{p}/%2f\"\n  timeout = \"1s\"\n  queue = \"{}\"",
            q_in.name
        ),
        NULL.into(),
        format!("AMQP broker at 127.0.0.1:{p}"),
    );
    let p = port("amqp_out");
    add(
        "amqp_out",
        objects(dir.path(), "amqp_out"),
        format!(
            "  type = \"amqp\"\n  url = \"amqp://guest:guest@127.0.0.1:{p}/%2f\"\n  timeout = \"1s\"\n  exchange = \"\"\n  routing_key = \"{}\"",
            q_out.name
        ),
        format!("AMQP broker at 127.0.0.1:{p}"),
    );
    add(
        "http_server_in",
        format!("  type = \"http_server\"\n  address = \"{webhook}\""),
        NULL.into(),
        webhook.to_string(),
    );
    add(
        "exec_in",
        "  type = \"exec\"\n  command = [\"./later_source\"]".into(),
        NULL.into(),
        "later_source".into(),
    );
    add(
        "exec_out",
        objects(dir.path(), "exec_out"),
        "  type = \"exec\"\n  command = [\"./later_sink\"]\n  ack = false".into(),
        "later_sink".into(),
    );
    config.push_str(&link(
        "healthy",
        NUMBERS,
        "  type = \"file\"\n  path = \"healthy.ndjson\"",
    ));
    std::fs::write(dir.path().join("down.toml"), &config).unwrap();

    let mut daemon = Daemon::start(dir.path(), &["run", "down.toml"]);
    let admin = daemon.admin_addr();

    // Every link says which server it cannot reach, and tries again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        let now = links(admin);
        let waiting: Vec<String> = expect
            .iter()
            .filter_map(|(name, marker)| {
                let link = &now[*name];
                let error = link["last_error"].as_str().unwrap_or_default();
                let retried = link["consecutive_failures"].as_u64() >= Some(2);
                (!(error.contains(marker.as_str()) && retried)).then(|| {
                    format!(
                        "{name}: wants `{marker}` twice, has {} failures, last error {error:?}",
                        link["consecutive_failures"]
                    )
                })
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within 60s:\n{}",
            waiting.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Meanwhile the healthy link runs.
    let ok = transfers_ok(&links(admin)["healthy"]);
    wait_transfers(admin, "healthy", ok + 3);
    assert_eq!(links(admin)["healthy"]["consecutive_failures"], 0);

    // The servers come up.
    for proxy in proxies.values() {
        rt.block_on(proxy.restore()).unwrap();
    }
    drop(taken);
    let script = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
    };
    script("later_source", "#!/bin/sh\necho '{\"n\": 1}'\n");
    script("later_sink", "#!/bin/sh\ncat >> sink.ndjson\n");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        let now = links(admin);
        let waiting: Vec<String> = expect
            .keys()
            .filter_map(|name| {
                let link = &now[*name];
                let ok = link["consecutive_failures"] == 0
                    && link["state"] != "failed"
                    && transfers_ok(link) > 0
                    && (name.ends_with("_in")
                        || link["counters"]["records_out"].as_u64() > Some(0));
                (!ok).then(|| format!("{name}: {link}"))
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not running 60s after the servers came up:\n{}",
            waiting.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The outlets' records are on the servers.
    let on_servers = || -> Vec<(&str, u64)> {
        rt.block_on(async {
            let pg_rows: i64 = pg
                .query_one(&format!("SELECT count(*) FROM \"{}\"", pg_out.name), &[])
                .await
                .unwrap()
                .get(0);
            let mut my = databay_component::mysql::testing::conn().await;
            let my_rows: Option<u64> = my
                .query_first(format!("SELECT count(*) FROM `{}`", my_out.name))
                .await
                .unwrap();
            let mongo_docs = mongo
                .database()
                .collection::<Document>("out")
                .count_documents(databay_component::mongodb::mongodb::bson::doc! {})
                .await
                .unwrap();
            let mut redis = databay_inlets::redis::RedisInlet::new(
                databay_component::redis::testing::connector(),
                databay_inlets::redis::RedisRead::List,
                redis_out.clone(),
            );
            if let Err(e) = redis.on_start().await {
                panic!("reading {redis_out} back: {e}");
            }
            let redis_len = match redis.pull(&databay_core::Update::new(["check"], 0)).await {
                Ok(pull) => pull.records().len() as u64,
                Err(e) => panic!("reading {redis_out} back: {e}"),
            };
            vec![
                ("postgres_out", pg_rows as u64),
                ("mysql_out", my_rows.unwrap_or(0)),
                ("mongodb_out", mongo_docs),
                ("redis_out", redis_len),
                ("amqp_out", u64::from(q_out.ready().await)),
                ("http_out", posts.load(Ordering::SeqCst) as u64),
                (
                    "exec_out",
                    lines(&dir.path().join("sink.ndjson")).len() as u64,
                ),
            ]
        })
    };
    let got = eventually("every outlet's records on its server", || {
        let got = on_servers();
        got.iter().all(|(_, n)| *n > 0).then_some(got)
    });
    assert!(got.iter().all(|(_, n)| *n > 0), "{got:?}");
    daemon.stop();

    rt.block_on(async {
        let client = databay_component::nats::testing::client().await;
        let _ = client
            .request(format!("$JS.API.STREAM.DELETE.{stream}"), Vec::new().into())
            .await;
    });
    drop((pg_in, pg_out, my_in, my_out));
}
