//! The state stores' commit latency: saving one checkpoint, one save at a
//! time, as a link does after each committed transfer. Each store runs next
//! to its floor, the same bytes written by hand in the same run:
//!
//! - **redb** (`[daemon] state_dir`): `RedbStore::save`, next to a bare
//!   redb write transaction of the same key and bytes, committed with the
//!   same (default, fsync'd) durability.
//! - **postgres** (`[daemon] state_url`): `PgStore::save`, next to the
//!   same upsert through tokio-postgres on one connection.
//!
//! Two checkpoints: a file inlet's position alone (~150 bytes), and one
//! that also holds an `aggregate` processor's 1 000 keys (~60 KB).
//!
//! ```text
//! cargo bench --bench state_store
//! ```
//!
//! PostgreSQL: the machine's test server, 127.0.0.1:5432 db `test`
//! (`bash .ci/services`), or `$DATABAY_TEST_POSTGRES_URL`.

use std::time::Instant;

use databay::Secret;
use databay::state::{PgStore, RedbStore};
use databay_core::checkpoint::{Checkpoint, StateStore};
use serde_json::json;

const SAVES: usize = 500;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn checkpoint(keys: usize) -> Checkpoint {
    let mut c = Checkpoint::new(1_000_123);
    c.inlets.insert(
        "orders".into(),
        json!({"offset": 123_456_789, "line": 1_000_000, "dev": 2049, "ino": 1_234_567,
               "head_len": 256, "head": "0123456789abcdef"}),
    );
    if keys > 0 {
        let state: serde_json::Map<String, serde_json::Value> = (0..keys)
            .map(|k| {
                (
                    format!("user-{k:06}"),
                    json!({"n": k * 7, "amount": k as f64 * 3.25, "first": "2026-12-03T20:00:00Z"}),
                )
            })
            .collect();
        c.processors
            .insert("per_user".into(), json!({ "keys": state }));
    }
    c
}

/// p50, p99 and max of `SAVES` runs of `save`, in ms.
fn latencies(mut save: impl FnMut() -> Result<(), Error>) -> Result<[f64; 3], Error> {
    let mut took = Vec::with_capacity(SAVES);
    for _ in 0..SAVES {
        let start = Instant::now();
        save()?;
        took.push(start.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok([at(0.5), at(0.99), at(1.0)])
}

fn report(what: &str, store: [f64; 3], floor: [f64; 3]) {
    println!(
        "{what:<28} store p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>6.3} ms | floor p50 {:>6.3} ms  p99 {:>6.3} ms | p50 ratio {:.2}",
        store[0],
        store[1],
        store[2],
        floor[0],
        floor[1],
        store[0] / floor[0]
    );
}

fn redb(rt: &tokio::runtime::Runtime, c: &Checkpoint, what: &str) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let store = RedbStore::open(dir.path())?;
    let ours = latencies(|| rt.block_on(store.save("orders", c)))?;
    drop(store);
    const TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("checkpoints");
    let db = redb::Database::create(dir.path().join("floor.redb"))?;
    let bytes = c.to_bytes();
    let floor = latencies(|| {
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            table.insert("orders", bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    })?;
    report(&format!("redb, {what}"), ours, floor);
    Ok(())
}

fn postgres(rt: &tokio::runtime::Runtime, c: &Checkpoint, what: &str) -> Result<(), Error> {
    let url = std::env::var("DATABAY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into());
    let store = rt
        .block_on(PgStore::open(&Secret::new(url.clone())))
        .map_err(|e| format!("PostgreSQL (start it with `bash .ci/services`): {e}"))?;
    let link = format!("bench_state_store_{}", std::process::id());
    let ours = latencies(|| rt.block_on(store.save(&link, c)))?;
    let (client, connection) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))?;
    rt.spawn(connection);
    let bytes = c.to_bytes();
    let upsert = rt.block_on(client.prepare(
        "INSERT INTO databay_checkpoints (link, checkpoint) VALUES ($1, $2) \
         ON CONFLICT (link) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, saved_at = now()",
    ))?;
    let floor = latencies(|| {
        rt.block_on(client.execute(&upsert, &[&link, &bytes]))?;
        Ok(())
    })?;
    rt.block_on(client.execute("DELETE FROM databay_checkpoints WHERE link = $1", &[&link]))?;
    report(&format!("postgres, {what}"), ours, floor);
    Ok(())
}

fn main() -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!("{SAVES} saves of one checkpoint each, one at a time");
    for keys in [0, 1000] {
        let c = checkpoint(keys);
        let what = format!("{} B", c.to_bytes().len());
        redb(&rt, &c, &what)?;
        postgres(&rt, &c, &what)?;
    }
    Ok(())
}
