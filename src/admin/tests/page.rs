//! The status page's files and JSON over HTTP (filters, pagination, ETags,
//! the actions on every link), and the history rings without HTTP.

use std::time::SystemTime;

use super::super::history::{ERRORS, History, STEP};
use super::*;

#[tokio::test]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let f = Fixture::start().await;
    let page = f.get("/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body.contains(r#"<script src="/ui/status.js""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("{{TOKEN}}"));
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Nothing from elsewhere: no CDN, works offline.
    for path in ["/", "/ui/status.js", "/ui/status.css"] {
        let body = f.get(path).await.body;
        assert!(
            !body.contains("//cdn") && !body.contains("https://"),
            "{path}"
        );
    }
    let js = f.get("/ui/status.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.body.contains("X-Databay-Token"));
    let css = f.get("/ui/status.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    f.stop().await;
}

fn names(page: &Value) -> Vec<&str> {
    page["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn ui_links_filter_and_paginate_on_the_server() {
    let f = Fixture::start().await;
    let all = f.get("/ui/links").await.json();
    assert_eq!(all["total"], 3);
    assert_eq!(all["matched"], 3);
    assert_eq!(all["limit"], 50);
    assert_eq!(names(&all), ["alpha", QUOTED, "broken"]);
    assert_eq!(all["statuses"]["scheduled"], 3, "{all}");
    assert_eq!(all["daemon"]["step_seconds"], STEP.as_secs());

    let q = f.get("/ui/links?q=ALP").await.json();
    assert_eq!(names(&q), ["alpha"]);
    assert_eq!(q["matched"], 1);
    assert_eq!(q["total"], 3);
    // Tags match too (a link's name is its default tag).
    assert_eq!(
        names(&f.get("/ui/links?tag=broken").await.json()),
        ["broken"]
    );
    let page = f.get("/ui/links?offset=1&limit=1").await.json();
    assert_eq!(names(&page), [QUOTED]);
    assert_eq!(page["matched"], 3);

    f.link("broken").pause();
    let paused = f.get("/ui/links?state=paused").await.json();
    assert_eq!(names(&paused), ["broken"]);
    assert_eq!(paused["statuses"]["paused"], 1, "{paused}");

    for bad in [
        "/ui/links?state=sleeping",
        "/ui/links?limit=x",
        "/ui/links?color=red",
    ] {
        let reply = f.get(bad).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert!(reply.json()["error"].is_string());
    }
    assert!(
        f.get("/ui/links?state=sleeping")
            .await
            .body
            .contains("paused")
    );
    f.stop().await;
}

#[tokio::test]
async fn a_row_counts_its_transfer_in_the_current_minute_and_etags_spare_unchanged_polls() {
    let f = Fixture::start().await;
    // The sampler's first reading, at start, may land between two polls;
    // after it nothing changes until the transfer.
    let mut etag = String::new();
    let mut unchanged = false;
    for _ in 0..20 {
        let reply = f
            .send("GET", "/ui/links?q=alpha", &[("If-None-Match", &etag)])
            .await;
        if reply.status == 304 {
            unchanged = true;
            break;
        }
        assert_eq!(reply.status, 200, "{reply:?}");
        etag = reply.header("etag").expect("an ETag").to_owned();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unchanged, "an unchanged page never answered 304");

    assert_eq!(f.post("/links/alpha/transfer").await.status, 200);
    let after = f
        .send("GET", "/ui/links?q=alpha", &[("If-None-Match", &etag)])
        .await;
    assert_eq!(after.status, 200, "{after:?}");
    let row = &after.json()["links"][0];
    assert_eq!(row["records_in"], 3, "{row}");
    assert_eq!(row["transfers_ok"], 1, "{row}");
    assert_eq!(row["status"], "scheduled");
    assert!(row["lateness_p99"].is_null(), "{row}");
    let history = &row["history"];
    let records = history["records_in"].as_array().expect("records_in");
    assert!(!records.is_empty() && records.len() <= 60, "{history}");
    assert_eq!(records.last(), Some(&json!(3)), "{history}");
    assert_eq!(
        history["transfers"].as_array().unwrap().last(),
        Some(&json!(1))
    );
    f.stop().await;
}

#[tokio::test]
async fn a_failing_link_shows_failing_and_its_detail() {
    let f = Fixture::start().await;
    assert_eq!(f.post("/links/broken/transfer").await.status, 500);
    let detail = f.get("/ui/links/broken").await.json();
    assert_eq!(detail["link"]["name"], "broken");
    assert!(detail["link"]["components"].is_array(), "{detail}");
    assert_eq!(
        detail["history"]["errors"].as_array().unwrap().last(),
        Some(&json!(1))
    );
    assert_eq!(f.get("/ui/links/nope").await.status, 404);
    let row = &f.get("/ui/links?q=broken").await.json()["links"][0];
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("the source is down"),
        "{row}"
    );
    assert_eq!(row["errors"], 1);
    assert_eq!(row["status"], "failing", "{row}");
    assert_eq!(row["consecutive_failures"], 1, "{row}");
    f.stop().await;
}

#[tokio::test]
async fn actions_on_every_link() {
    let f = Fixture::start().await;
    let paused = f.post("/all/pause").await;
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(paused.json()["paused"], 3);
    assert!(f.planner.links().iter().all(Link::is_paused));
    assert_eq!(f.get("/ui/links").await.json()["statuses"]["paused"], 3);
    assert_eq!(f.post("/all/resume").await.json()["resumed"], 3);
    assert!(f.planner.links().iter().all(|l| !l.is_paused()));

    let started = f.post("/all/transfer").await;
    assert_eq!(started.status, 202, "{started:?}");
    assert_eq!(started.json()["transferring"], 3);
    let (alpha, quoted) = (f.link("alpha"), f.link(QUOTED));
    wait_for(|| alpha.stats().transfers_ok == 1 && quoted.stats().transfers_ok == 1).await;
    assert_eq!(f.get("/all/pause").await.status, 405);
    f.stop().await;
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::test]
async fn the_rings_keep_an_hour_and_the_last_errors() {
    let planner = planner();
    let links = planner.links();
    let (alpha, broken) = (&links[0], &links[2]);
    let history = History::new();
    let t0 = 1_700_000_000 - 1_700_000_000 % 60;
    history.sample(&links, at(t0));
    alpha.transfer().await.expect("alpha transfers");
    history.sample(&links, at(t0 + 10));
    let series = history.link_series(alpha, &alpha.stats(), at(t0 + 15));
    assert_eq!(series.records_in, [3]);
    assert_eq!(series.transfers, [1]);
    // A minute on: the first minute is history, the second is empty.
    alpha.transfer().await.expect("alpha transfers");
    let series = history.link_series(alpha, &alpha.stats(), at(t0 + 61));
    assert_eq!(series.records_in, [3, 3]);
    history.sample(&links, at(t0 + 70));
    assert_eq!(
        history
            .link_series(alpha, &alpha.stats(), at(t0 + 75))
            .records_in,
        [3, 3]
    );
    // Two hours on, only an hour (60 minutes) is kept, all empty.
    history.sample(&links, at(t0 + 7200));
    let series = history.link_series(alpha, &alpha.stats(), at(t0 + 7200));
    assert_eq!(series.records_in.len(), 60);
    assert!(series.records_in.iter().all(|n| *n == 0), "{series:?}");
    let daemon = history.daemon_series();
    assert_eq!(daemon.transfers.len(), 360);
    assert_eq!(daemon.transfers.iter().sum::<u64>(), 0);

    // Errors: each seen once, the last ERRORS kept, oldest first.
    let mut t = t0 + 7200;
    for _ in 0..ERRORS + 2 {
        let _ = broken.transfer().await;
        t += 10;
        history.sample(&links, at(t));
    }
    let errors = history.errors("broken");
    assert_eq!(errors.len(), ERRORS, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.count == 1 && e.message.contains("the source is down"))
    );
    assert!(errors[0].message.contains("broken.2 "), "{errors:?}");
    assert!(
        errors[ERRORS - 1]
            .message
            .contains(&format!("broken.{} ", ERRORS + 1)),
        "{errors:?}"
    );
    // Two errors between samples: the newest message, counted twice.
    let _ = broken.transfer().await;
    let _ = broken.transfer().await;
    history.sample(&links, at(t + 10));
    let last = history.errors("broken").pop().expect("an error");
    assert_eq!(last.count, 2, "{last:?}");
    let daemon = history.daemon_series();
    assert_eq!(
        daemon.errors.iter().sum::<u64>(),
        ERRORS as u64 + 4,
        "{daemon:?}"
    );

    // A link that left the planner leaves the rings.
    history.sample(&links[..1], at(t + 20));
    assert!(history.errors("broken").is_empty());
}
