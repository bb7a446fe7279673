//! Tests of [`HttpOutlet`] against a real HTTP server (axum) on
//! 127.0.0.1:0, one per test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use databay_component::BuildContext;
use databay_component::http::HttpError;
use databay_core::testing::{OutletTester, StaticInlet};
use databay_core::{Link, Outlet, Record, Update};
use serde_json::{Value, json};

use super::{HttpOutlet, HttpOutletOptions};

/// One request the server received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    content_type: Option<String>,
    key: Option<String>,
    auth: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

impl Seen {
    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Records the request; returns how many came before it.
fn record(seen: &Seen, method: &axum::http::Method, h: &HeaderMap, body: &Bytes) -> usize {
    let mut all = seen.0.lock().unwrap();
    all.push(Received {
        method: method.to_string(),
        content_type: header(h, "content-type"),
        key: header(h, "idempotency-key"),
        auth: header(h, "authorization"),
        body: String::from_utf8_lossy(body).into_owned(),
    });
    all.len() - 1
}

type Args = (State<Seen>, axum::http::Method, HeaderMap, Bytes);

async fn server(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test HTTP server on 127.0.0.1:0");
    serve(listener, seen)
}

/// Serves every test route on `listener`; returns the base URL.
fn serve(listener: tokio::net::TcpListener, seen: Seen) -> String {
    let app = Router::new()
        .route(
            "/ingest",
            post(|State(s), m, h, b: Bytes| async move {
                record(&s, &m, &h, &b);
                StatusCode::NO_CONTENT
            })
            .put(|State(s): State<Seen>, m, h, b: Bytes| async move {
                record(&s, &m, &h, &b);
                StatusCode::OK
            }),
        )
        .route(
            "/flaky",
            post(|(State(s), m, h, b): Args| async move {
                if record(&s, &m, &h, &b) < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }),
        )
        .route(
            "/throttled",
            post(|(State(s), m, h, b): Args| async move {
                if record(&s, &m, &h, &b) < 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "1")],
                        "wait",
                    )
                        .into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }),
        )
        .route(
            "/go-away",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "3600")],
                    "come back in an hour",
                )
            }),
        )
        .route(
            "/rejects",
            post(|| async { (StatusCode::BAD_REQUEST, "field `id` is required") }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/private",
            post(|(State(s), m, h, b): Args| async move {
                record(&s, &m, &h, &b);
                if header(&h, "authorization").as_deref() == Some("Bearer r1ght-t0ken") {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "bad token").into_response()
                }
            }),
        )
        .with_state(seen);
    let addr = listener.local_addr().expect("the test server's address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn outlet(options: Value) -> HttpOutlet {
    let mut options = options;
    if let Some(o) = options.as_object_mut() {
        o.entry("retry").or_insert(json!({"initial_delay": "10ms"}));
    }
    let options: HttpOutletOptions = serde_json::from_value(options).expect("test options");
    options
        .build(&BuildContext::new("test", "."))
        .expect("test options build")
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

#[tokio::test]
async fn a_batch_is_one_json_array_with_a_key() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/ingest")}));
    let update = Update::new(["orders"], 3);
    outlet
        .push(&records(&[json!({"id": 1}), json!({"id": 2})]), &update)
        .await
        .unwrap();
    let got = seen.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(got[0].key.as_deref(), Some("orders.3-0"));
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].body).unwrap(),
        json!([{"id": 1}, {"id": 2}])
    );
}

#[tokio::test]
async fn ndjson_with_put() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet =
        outlet(json!({"url": format!("{base}/ingest"), "format": "ndjson", "method": "put"}));
    outlet
        .push(
            &records(&[json!({"id": 1}), json!("two")]),
            &Update::new(["l"], 0),
        )
        .await
        .unwrap();
    let got = seen.all();
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].content_type.as_deref(), Some("application/x-ndjson"));
    assert_eq!(got[0].body, "{\"id\":1}\n\"two\"\n");
}

#[tokio::test]
async fn batches_of_one_transfer_are_numbered() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/ingest")}));
    let one = records(&[json!(1)]);
    outlet.push(&one, &Update::new(["l"], 7)).await.unwrap();
    outlet.push(&one, &Update::new(["l"], 7)).await.unwrap();
    outlet.push(&one, &Update::new(["l"], 8)).await.unwrap();
    let keys: Vec<_> = seen
        .all()
        .into_iter()
        .map(|r| r.key.unwrap_or_default())
        .collect();
    assert_eq!(keys, ["l.7-0", "l.7-1", "l.8-0"]);
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/ingest")}));
    outlet.push(&[], &Update::new(["l"], 0)).await.unwrap();
    assert!(seen.all().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_key() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/flaky")}));
    outlet
        .push(&records(&[json!({"id": 1})]), &Update::new(["l"], 5))
        .await
        .unwrap();
    let got = seen.all();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.key.as_deref() == Some("l.5-0")),
        "{got:?}"
    );
    assert!(got.iter().all(|r| r.body == "[{\"id\":1}]"), "{got:?}");
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/throttled")}));
    outlet
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap();
    assert_eq!(seen.all().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_max_delay_fails_at_once() {
    let base = server(Seen::default()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/go-away")}));
    let e = outlet
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("POST {base}/go-away: status 429: come back in an hour")
    );
}

#[tokio::test]
async fn a_rejected_batch_names_the_url_and_the_reason() {
    let base = server(Seen::default()).await;
    let mut outlet = outlet(json!({"url": format!("{base}/rejects")}));
    let e = outlet
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap_err();
    let e = e.downcast::<HttpError>().expect("an HttpError");
    assert!(matches!(*e, HttpError::Status { status: 400, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("POST {base}/rejects: status 400: field `id` is required")
    );
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let base = server(Seen::default()).await;
    let mut outlet = outlet(json!({
        "url": format!("{base}/slow"),
        "request_timeout": "200ms",
        "retry": {"attempts": 2, "initial_delay": "10ms"},
    }));
    let e = outlet
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "POST {base}/slow: no response within 200ms (`request_timeout`) (after 2 attempts)"
        )
    );
}

#[tokio::test]
async fn auth_is_sent_and_never_shown() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut outlet = outlet(json!({
        "url": format!("{base}/ingest"),
        "auth": {"basic": {"user": "app", "password": "hunter2"}},
        "headers": {"X-Api-Key": "k3y-value"},
    }));
    outlet
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap();
    // "app:hunter2" in base64.
    assert_eq!(
        seen.all()[0].auth.as_deref(),
        Some("Basic YXBwOmh1bnRlcjI=")
    );
    let shown = format!("{outlet:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("k3y-value"),
        "{shown}"
    );
}

#[tokio::test]
async fn passes_the_outlet_tester() {
    let base = server(Seen::default()).await;
    let url = format!("{base}/ingest");
    OutletTester::new(|| outlet(json!({"url": url})))
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn round_trip_through_a_link() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let link = Link::builder("to_http")
        .inlet(StaticInlet::values([json!({"id": 1}), json!({"id": 2})]))
        .outlet(outlet(json!({"url": format!("{base}/ingest")})))
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let got = seen.all();
    assert_eq!(got.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].body).unwrap(),
        json!([{"id": 1}, {"id": 2}])
    );
    assert_ne!(got[0].key, got[1].key);
    assert!(
        got[0].key.as_deref().unwrap_or("").starts_with("to_http."),
        "{got:?}"
    );
    let sent: usize = got.iter().map(|r| r.body.len()).sum();
    assert_eq!(link.node_stats()[1].bytes, Some(sent as u64));
}

#[tokio::test]
async fn a_refused_batch_counts_no_bytes_sent() {
    let base = server(Seen::default()).await;
    let link = Link::builder("to_http_refused")
        .inlet(StaticInlet::values([json!({"id": 1})]))
        .outlet(outlet(json!({"url": format!("{base}/rejects")})))
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.transfer().await.unwrap_err();
    let stats = &link.node_stats()[1];
    assert_eq!((stats.errors, stats.bytes), (1, None));
}

#[tokio::test]
async fn a_refused_login_names_the_url_and_status_without_the_token() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut refused = outlet(json!({
        "url": format!("{base}/private"),
        "auth": {"bearer": "wr0ng-t0ken"},
    }));
    let e = refused
        .push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("POST {base}/private: status 401: bad token"));
    assert!(!format!("{e} {refused:?}").contains("t0ken"), "{e}");
    // Refused for good: not retried.
    assert_eq!(seen.all().len(), 1);
    let mut good = outlet(json!({
        "url": format!("{base}/private"),
        "auth": {"bearer": "r1ght-t0ken"},
    }));
    good.push(&records(&[json!(1)]), &Update::new(["l"], 0))
        .await
        .unwrap();
    assert_eq!(seen.all().len(), 2);
}

/// Nothing listens at the URL when the link starts: every push fails
/// naming the URL (after its retries); the link does not give up, and
/// once a server is there the next transfer delivers.
#[tokio::test]
async fn a_server_that_is_not_there_at_start_is_named_and_the_link_delivers_once_it_is() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let link = Link::builder("to_http_later")
        .inlet(StaticInlet::values([json!({"id": 1})]))
        .outlet(outlet(
            json!({"url": url, "retry": {"attempts": 2, "initial_delay": "10ms"}}),
        ))
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    for _ in 0..2 {
        let e = link.transfer().await.unwrap_err().to_string();
        assert!(e.contains(&format!("POST {url}: ")), "{e}");
        assert!(e.contains("(after 2 attempts)"), "{e}");
    }
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port} again: {e}"));
    serve(listener, seen.clone());
    link.transfer().await.unwrap();
    let got = seen.all();
    assert_eq!(got.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].body).unwrap(),
        json!([{"id": 1}])
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_push_and_the_link_recovers_when_it_is_back() {
    use crate::outage::{DELIVERED, Sequence, through_an_outage};
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let (proxy, proxied) = databay_component::testing::TcpProxy::for_url(&base)
        .await
        .unwrap();
    let link = Link::builder("http_outage")
        .inlet(Sequence::default())
        .outlet(outlet(json!({
            "url": format!("{proxied}/ingest"),
            "retry": {"attempts": 2, "initial_delay": "10ms"},
        })))
        .build()
        .unwrap();
    let down = through_an_outage(&link, &proxy).await;
    assert!(
        down.contains(&format!("127.0.0.1:{}", proxy.port())),
        "{down}"
    );
    let got: Vec<u64> = seen
        .all()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()[0]["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, (0..DELIVERED).collect::<Vec<_>>(), "{down}");
}
