//! The example configs under `config/`: each one passes `databay validate`,
//! which prints `PATH: ok, N links` and one line per link.

use std::fs;
use std::path::PathBuf;

use crate::support::*;

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

/// Serves `pages` (path and query -> JSON body) over HTTP/1.1 on
/// 127.0.0.1:0, one connection at a time, until the test ends; returns the
/// base URL and the request targets it answered.
fn json_server(
    pages: Vec<(&'static str, serde_json::Value)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let target = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            log.lock().unwrap().push(target.clone());
            let (status, body) = match pages.iter().find(|(t, _)| *t == target) {
                Some((_, body)) => ("200 OK", body.to_string()),
                None => (
                    "404 Not Found",
                    format!("{{\"error\": \"no page {target}\"}}"),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, seen)
}

/// `config/http_to_mongodb.toml` run once against a local JSON API of two
/// pages and the test MongoDB server: every item becomes one document,
/// upserted by `id` (the item served on both pages stays one, with the
/// later page's fields).
#[cfg(all(feature = "http", feature = "mongodb"))]
#[test]
fn http_to_mongodb_writes_every_item_of_every_page() {
    use databay_component::mongodb::mongodb::bson::{Document, doc};
    use databay_component::mongodb::testing::{TestDatabase, url};
    use serde_json::json;

    let (base, seen) = json_server(vec![
        (
            "/v1/events",
            json!({"data": [{"id": 1, "kind": "signup"}, {"id": 2, "kind": "order", "amount": 12.5}],
                   "next": "/v1/events?page=2"}),
        ),
        (
            "/v1/events?page=2",
            json!({"data": [{"id": 3, "kind": "refund"}, {"id": 2, "kind": "order", "amount": 13}],
                   "next": null}),
        ),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDatabase::new("http_to_mongodb"));
    let Some(host) = url().strip_prefix("mongodb://").map(str::to_owned) else {
        panic!("the test MongoDB URI {} is not mongodb://", url());
    };
    let host = host.split(['/', '?']).next().unwrap_or_default().to_owned();

    let mut cmd = databay();
    cmd.arg("once")
        .arg(root().join("config/http_to_mongodb.toml"))
        .env("HTTP_URL", format!("{base}/v1/events"))
        .env("MONGODB_URI", format!("mongodb://{host}/{}", db.name))
        .env("MONGODB_COLLECTION", "events");
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("4 records in"), "{stderr}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["/v1/events", "/v1/events?page=2"],
        "the pages requested"
    );

    let documents: Vec<Document> = runtime.block_on(async {
        let mut cursor = db
            .database()
            .collection::<Document>("events")
            .find(doc! {})
            .sort(doc! {"id": 1})
            .projection(doc! {"_id": 0})
            .await
            .unwrap_or_else(|e| panic!("find: {e}"));
        let mut out = Vec::new();
        while cursor.advance().await.unwrap() {
            out.push(cursor.deserialize_current().unwrap());
        }
        out
    });
    assert_eq!(
        documents,
        [
            doc! {"id": 1, "kind": "signup"},
            doc! {"id": 2, "kind": "order", "amount": 13},
            doc! {"id": 3, "kind": "refund"},
        ]
    );
    drop(db);
}
