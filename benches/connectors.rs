//! Connector benchmarks through the daemon binary (`databay once
//! --until-exhausted`), each next to its floor in the same run, best of
//! three each:
//!
//! - **postgres**: 1,000,000 small rows `{"id","name","amount"}` from an
//!   NDJSON file into a PostgreSQL table, next to `psql \copy` of the same
//!   rows as CSV into the same kind of table: `method = "insert"`
//!   (`batch_size = 1000` rows per INSERT, 10,000 rows per transfer and
//!   transaction), and `method = "copy"` (one binary COPY per push) with
//!   10,000 and with 1,000 rows per transfer and transaction; then both
//!   methods again with the link's checkpoints in the same database
//!   (`[daemon] state_url`), so that each transfer's rows and checkpoint
//!   commit in one transaction (exactly once): the cost of that guarantee.
//! - **mongodb**: 100,000 such documents into a collection (`batch_size =
//!   1000`), next to a hand-written loop of the mongodb crate's unordered
//!   `insert_many` of 1,000 documents built from the same lines.
//! - **http**: 20,000 transfers of the http inlet, one GET each, against a
//!   local axum server (an empty page ends the run), next to a plain
//!   reqwest loop of as many GETs, each body parsed as JSON.
//!
//! The servers are the machine's test servers (`bash .ci/services`):
//! PostgreSQL at 127.0.0.1:5432 (db `test`, trust), MongoDB (or SecantusDB)
//! at 127.0.0.1:27017. Counts are checked after every run.
//!
//! ```text
//! cargo bench --bench connectors               # all three
//! cargo bench --bench connectors -- postgres   # one (postgres, mongodb, http)
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

type BoxError = Box<dyn std::error::Error>;

const RUNS: usize = 3;
const PG_ROWS: usize = 1_000_000;
const MONGO_DOCS: usize = 100_000;
const HTTP_REQUESTS: usize = 20_000;
const PG_URL: &str = "postgresql://postgres@127.0.0.1:5432/test";
const MONGO_URL: &str = "mongodb://127.0.0.1:27017";
const MONGO_DB: &str = "databay_bench";

/// The postgres link: `LINES` rows a transfer, written with `METHOD`.
const PG_CONFIG: &str = r#"
STATE
[admin]
enabled = false

[[link]]
name = "to_postgres"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "${ROWS_FILE}"
  json = true
  lines_per_transfer = LINES

  [[link.outlet]]
  type = "postgres"
  url = "postgresql://postgres@127.0.0.1:5432/test"
  table = "bench_pg_daemon"
  columns = { id = "/id", name = "/name", amount = "/amount" }
  method = "METHOD"
  batch_size = 1000
"#;

/// The postgres variants: a label, `method`, rows per transfer, and
/// whether the checkpoints live in the same database (exactly once).
const PG_VARIANTS: [(&str, &str, usize, bool); 5] = [
    ("insert, 10 000 rows a push", "insert", 10_000, false),
    ("copy, 10 000 rows a push", "copy", 10_000, false),
    ("copy, 1 000 rows a push", "copy", 1_000, false),
    (
        "insert, 10 000 rows a push, exactly once",
        "insert",
        10_000,
        true,
    ),
    (
        "copy, 10 000 rows a push, exactly once",
        "copy",
        10_000,
        true,
    ),
];

/// Deletes the postgres link's checkpoint, if the table is there.
const FORGET_CHECKPOINT: &str = "DO $$ BEGIN IF to_regclass('databay_checkpoints') IS NOT NULL \
     THEN DELETE FROM databay_checkpoints WHERE link = 'to_postgres'; END IF; END $$";

const MONGO_CONFIG: &str = r#"
[admin]
enabled = false

[[link]]
name = "to_mongodb"
every = "1s"

  [[link.inlet]]
  type = "file"
  path = "${ROWS_FILE}"
  json = true
  lines_per_transfer = 10000

  [[link.outlet]]
  type = "mongodb"
  uri = "mongodb://127.0.0.1:27017"
  database = "databay_bench"
  collection = "daemon"
  batch_size = 1000
"#;

const HTTP_CONFIG: &str = r#"
[admin]
enabled = false

[[link]]
name = "from_http"
every = "1s"

  [[link.inlet]]
  type = "http"
  url = "${FEED_URL}"
  items = "/items"

  [[link.outlet]]
  type = "null"
"#;

/// `rows` lines of NDJSON and the same rows as CSV.
fn generate(ndjson: &Path, csv: &Path, rows: usize) -> std::io::Result<()> {
    let mut json_out = BufWriter::new(File::create(ndjson)?);
    let mut csv_out = BufWriter::new(File::create(csv)?);
    for id in 0..rows {
        let (name, cents) = (format!("user-{}", id % 1000), (id * 7919) % 100_000);
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        writeln!(
            json_out,
            r#"{{"id":{id},"name":"{name}","amount":{amount}}}"#
        )?;
        writeln!(csv_out, "{id},{name},{amount}")?;
    }
    json_out.flush()?;
    csv_out.flush()
}

fn print_pair(what: &str, unit: &str, n: usize, floor: (&str, Duration), daemon: Duration) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("{what}: {n} {unit}, best of {RUNS}");
    println!(
        "  {:<26} {:>7.0} ms  {:>9.0} {unit}/s",
        floor.0,
        floor.1.as_secs_f64() * 1e3,
        rate(floor.1)
    );
    println!(
        "  {:<26} {:>7.0} ms  {:>9.0} {unit}/s  ratio {:.2} of the floor",
        "databay once",
        daemon.as_secs_f64() * 1e3,
        rate(daemon),
        floor.1.as_secs_f64() / daemon.as_secs_f64()
    );
}

// --- PostgreSQL --------------------------------------------------------------

fn psql(sql: &str) -> Result<String, BoxError> {
    let out = Command::new("psql")
        .args([PG_URL, "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql -c {sql:?}: {} (is PostgreSQL up at 127.0.0.1:5432? `bash .ci/services`)",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn fresh_pg_table(name: &str) -> Result<(), BoxError> {
    psql(&format!(
        "DROP TABLE IF EXISTS {name}; \
         CREATE TABLE {name} (id bigint PRIMARY KEY, name text NOT NULL, amount double precision)"
    ))?;
    Ok(())
}

fn pg_count(name: &str, want: usize) -> Result<(), BoxError> {
    let got = psql(&format!("SELECT count(*) FROM {name}"))?;
    if got != want.to_string() {
        return Err(format!("{name} holds {got} rows, not {want}").into());
    }
    Ok(())
}

fn postgres(dir: &Path) -> Result<(), BoxError> {
    let (ndjson, csv) = (dir.join("rows.ndjson"), dir.join("rows.csv"));
    generate(&ndjson, &csv, PG_ROWS)?;
    let mut configs = Vec::new();
    for (i, (_, method, lines, exactly_once)) in PG_VARIANTS.iter().enumerate() {
        let config = dir.join(format!("postgres-{i}.toml"));
        let state = if *exactly_once {
            format!("[daemon]\nstate_url = \"{PG_URL}\"\n")
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            PG_CONFIG
                .replace("STATE", &state)
                .replace("METHOD", method)
                .replace("LINES", &lines.to_string()),
        )?;
        configs.push(config);
    }
    let mut copy = Duration::MAX;
    let mut daemon = [Duration::MAX; PG_VARIANTS.len()];
    for _ in 0..RUNS {
        fresh_pg_table("bench_pg_copy")?;
        let start = Instant::now();
        psql(&format!(
            "\\copy bench_pg_copy (id, name, amount) FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ))?;
        copy = copy.min(start.elapsed());
        pg_count("bench_pg_copy", PG_ROWS)?;

        for (config, best) in configs.iter().zip(&mut daemon) {
            fresh_pg_table("bench_pg_daemon")?;
            // Each run from the file's first line, not from the last
            // run's checkpoint.
            psql(FORGET_CHECKPOINT)?;
            let (took, _) = support::once(config, &[("ROWS_FILE", &ndjson)])?;
            *best = (*best).min(took);
            pg_count("bench_pg_daemon", PG_ROWS)?;
        }
    }
    psql("DROP TABLE bench_pg_copy; DROP TABLE bench_pg_daemon")?;
    psql(FORGET_CHECKPOINT)?;
    for ((label, ..), took) in PG_VARIANTS.iter().zip(daemon) {
        print_pair(
            &format!("postgres outlet ({label})"),
            "rows",
            PG_ROWS,
            ("psql \\copy (CSV)", copy),
            took,
        );
    }
    Ok(())
}

// --- MongoDB -----------------------------------------------------------------

/// The floor: each line parsed and built into a document by hand, in
/// unordered `insert_many` batches of 1,000.
async fn mongo_loop(
    collection: &mongodb::Collection<mongodb::bson::Document>,
    input: &Path,
) -> Result<Duration, BoxError> {
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for line in BufReader::new(File::open(input)?).lines() {
        let v: Value = serde_json::from_str(&line?)?;
        batch.push(mongodb::bson::doc! {
            "id": v["id"].as_i64(),
            "name": v["name"].as_str(),
            "amount": v["amount"].as_f64(),
        });
        if batch.len() == 1000 {
            collection
                .insert_many(std::mem::take(&mut batch))
                .ordered(false)
                .await?;
        }
    }
    if !batch.is_empty() {
        collection.insert_many(batch).ordered(false).await?;
    }
    Ok(start.elapsed())
}

async fn mongo_count(db: &mongodb::Database, name: &str, want: usize) -> Result<(), BoxError> {
    let got = db
        .collection::<mongodb::bson::Document>(name)
        .count_documents(mongodb::bson::doc! {})
        .await?;
    if got != want as u64 {
        return Err(format!("collection {name} holds {got} documents, not {want}").into());
    }
    Ok(())
}

fn mongodb(dir: &Path, rt: &tokio::runtime::Runtime) -> Result<(), BoxError> {
    let (ndjson, csv) = (dir.join("docs.ndjson"), dir.join("docs.csv"));
    generate(&ndjson, &csv, MONGO_DOCS)?;
    let config = dir.join("mongodb.toml");
    std::fs::write(&config, MONGO_CONFIG)?;
    let client = rt
        .block_on(mongodb::Client::with_uri_str(MONGO_URL))
        .map_err(|e| format!("MongoDB at {MONGO_URL}: {e} (`bash .ci/services`)"))?;
    let db = client.database(MONGO_DB);
    let mut hand = Duration::MAX;
    let mut daemon = Duration::MAX;
    for _ in 0..RUNS {
        rt.block_on(async { db.drop().await })?;
        let collection = db.collection("hand");
        hand = hand.min(rt.block_on(mongo_loop(&collection, &ndjson))?);
        rt.block_on(mongo_count(&db, "hand", MONGO_DOCS))?;

        rt.block_on(async { db.drop().await })?;
        let (took, _) = support::once(&config, &[("ROWS_FILE", &ndjson)])?;
        daemon = daemon.min(took);
        rt.block_on(mongo_count(&db, "daemon", MONGO_DOCS))?;
    }
    rt.block_on(async { db.drop().await })?;
    print_pair(
        "mongodb outlet",
        "documents",
        MONGO_DOCS,
        ("mongodb insert_many loop", hand),
        daemon,
    );
    Ok(())
}

// --- HTTP --------------------------------------------------------------------

/// Serves `{"items":[...]}` with one item for the first `HTTP_REQUESTS`
/// requests since the counter was reset, then `{"items":[]}`.
async fn feed_server(served: Arc<AtomicUsize>) -> std::io::Result<String> {
    use axum::extract::State;
    let app = axum::Router::new()
        .route(
            "/feed",
            axum::routing::get(|State(served): State<Arc<AtomicUsize>>| async move {
                let n = served.fetch_add(1, Ordering::Relaxed);
                let body = if n < HTTP_REQUESTS {
                    format!(r#"{{"items":[{{"n":{n},"name":"user-{}"}}]}}"#, n % 1000)
                } else {
                    r#"{"items":[]}"#.to_owned()
                };
                ([("content-type", "application/json")], body)
            }),
        )
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/feed"))
}

/// The floor: as many GETs in a loop on one client, each body parsed.
async fn reqwest_loop(url: &str) -> Result<Duration, BoxError> {
    let client = reqwest::Client::builder().tls_backend_rustls().build()?;
    let start = Instant::now();
    for _ in 0..HTTP_REQUESTS {
        let body = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let page: Value = serde_json::from_slice(&body)?;
        if page["items"].as_array().is_none_or(Vec::is_empty) {
            return Err("the feed ended early".into());
        }
    }
    Ok(start.elapsed())
}

fn http(dir: &Path, rt: &tokio::runtime::Runtime) -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let served = Arc::new(AtomicUsize::new(0));
    let url = rt.block_on(feed_server(served.clone()))?;
    let config = dir.join("http.toml");
    std::fs::write(&config, HTTP_CONFIG)?;
    let url_arg = PathBuf::from(&url);
    let mut hand = Duration::MAX;
    let mut daemon = Duration::MAX;
    for _ in 0..RUNS {
        served.store(0, Ordering::Relaxed);
        hand = hand.min(rt.block_on(reqwest_loop(&url))?);

        served.store(0, Ordering::Relaxed);
        let (took, _) = support::once(&config, &[("FEED_URL", &url_arg)])?;
        daemon = daemon.min(took);
        // Every item page, and the empty one that ended the run.
        let got = served.load(Ordering::Relaxed);
        if got != HTTP_REQUESTS + 1 {
            return Err(
                format!("the daemon made {got} requests, not {}", HTTP_REQUESTS + 1).into(),
            );
        }
    }
    print_pair(
        "http inlet",
        "requests",
        HTTP_REQUESTS,
        ("reqwest loop", hand),
        daemon,
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let dir = std::env::temp_dir().join("databay-connectors");
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if run("postgres") {
        postgres(&dir)?;
    }
    if run("mongodb") {
        mongodb(&dir, &rt)?;
    }
    if run("http") {
        http(&dir, &rt)?;
    }
    Ok(())
}
