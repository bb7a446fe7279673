//! Tests of [`HttpInlet`] against a real HTTP server (axum) on
//! 127.0.0.1:0, one per test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use databay_component::BuildContext;
use databay_component::http::HttpError;
use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{Inlet, InletHandle, Link, Pull, Update};
use serde_json::{Value, json};

use super::{HttpInlet, HttpInletError, HttpInletOptions};

/// The `Authorization` header and query of one request.
type Request = (Option<String>, HashMap<String, String>);

#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
    /// `/feed` has items 1 to this.
    available: Arc<AtomicUsize>,
}

impl Seen {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn queries(&self) -> Vec<HashMap<String, String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.1.clone())
            .collect()
    }
}

fn record(seen: &Seen, headers: &HeaderMap, query: HashMap<String, String>) -> usize {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.requests.lock().unwrap().push((auth, query));
    seen.calls.fetch_add(1, Ordering::SeqCst)
}

type Q = Query<HashMap<String, String>>;

/// Serves every test route on 127.0.0.1:0; returns the base URL.
async fn server(seen: Seen) -> String {
    let app = Router::new()
        .route(
            "/json",
            get(|| async { axum::Json(json!({"hello": "world"})) }),
        )
        .route(
            "/items",
            get(
                |State(s): State<Seen>, h: HeaderMap, Query(q): Q| async move {
                    record(&s, &h, q.clone());
                    let since: u64 = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let items: Vec<Value> = (since + 1..=since + 2)
                        .map(|id| json!({"id": id}))
                        .collect();
                    axum::Json(json!({"data": {"items": items}}))
                },
            ),
        )
        .route(
            "/feed",
            get(|State(s): State<Seen>, Query(q): Q| async move {
                let since: usize = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
                let items: Vec<Value> = (since + 1..=s.available.load(Ordering::SeqCst))
                    .map(|id| json!({"id": id}))
                    .collect();
                axum::Json(json!({"items": items}))
            }),
        )
        .route(
            "/pages",
            get(
                |State(s): State<Seen>, h: HeaderMap, Query(q): Q| async move {
                    record(&s, &h, q.clone());
                    let page: u64 = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
                    let next = (page < 3).then(|| format!("/pages?page={}", page + 1));
                    axum::Json(json!({"items": [{"page": page}], "next": next}))
                },
            ),
        )
        .route(
            "/linked",
            get(
                |State(s): State<Seen>, h: HeaderMap, Query(q): Q| async move {
                    record(&s, &h, q.clone());
                    let page: u64 = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
                    let mut response = axum::Json(json!([{"page": page}])).into_response();
                    let mut link = "</linked?page=1>; rel=\"first\"".to_owned();
                    if page < 2 {
                        link.push_str(&format!(", </linked?page={}>; rel=\"next\"", page + 1));
                    }
                    response
                        .headers_mut()
                        .insert(header::LINK, link.parse().unwrap());
                    response
                },
            ),
        )
        .route(
            "/flaky",
            get(
                |State(s): State<Seen>, h: HeaderMap, Query(q): Q| async move {
                    if record(&s, &h, q) < 2 {
                        (StatusCode::BAD_GATEWAY, "upstream down").into_response()
                    } else {
                        axum::Json(json!({"ok": true})).into_response()
                    }
                },
            ),
        )
        .route(
            "/throttled",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "7")],
                    "slow down",
                )
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such feed") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/garbage", get(|| async { "<html>not json" }))
        .route("/big", get(|| async { "x".repeat(4096) }))
        .route(
            "/secret",
            get(
                |State(s): State<Seen>, h: HeaderMap, Query(q): Q| async move {
                    record(&s, &h, q);
                    if h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                        == Some("Bearer s3cr3t-t0ken")
                    {
                        (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
                    } else {
                        (StatusCode::UNAUTHORIZED, "bad token").into_response()
                    }
                },
            ),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test HTTP server on 127.0.0.1:0");
    let addr = listener.local_addr().expect("the test server's address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn inlet(options: Value) -> HttpInlet {
    let mut options = options;
    if let Some(o) = options.as_object_mut() {
        o.entry("retry").or_insert(json!({"initial_delay": "10ms"}));
    }
    let options: HttpInletOptions = serde_json::from_value(options).expect("test options");
    options
        .build(&BuildContext::new("test", "."))
        .expect("test options build")
}

fn update() -> Update {
    Update::new(["http"], 0)
}

fn payloads(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

async fn pull_err(inlet: &mut HttpInlet) -> HttpInletError {
    let e = inlet
        .pull(&update())
        .await
        .expect_err("the pull should fail");
    *e.downcast::<HttpInletError>().expect("an HttpInletError")
}

#[tokio::test]
async fn a_json_body_is_one_record() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/json")}));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull), [json!({"hello": "world"})]);
}

#[tokio::test]
async fn text_format_gives_the_body_as_a_string() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/garbage"), "format": "text"}));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull), [json!("<html>not json")]);
}

#[tokio::test]
async fn items_are_separate_records_and_the_cursor_moves_on() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut inlet = inlet(json!({
        "url": format!("{base}/items"),
        "query": {"limit": "2"},
        "items": "/data/items",
        "cursor": {"param": "since", "pointer": "/id"},
    }));
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&first), [json!({"id": 1}), json!({"id": 2})]);
    assert_eq!(inlet.cursor(), Some("2"));
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&second), [json!({"id": 3}), json!({"id": 4})]);
    let queries = seen.queries();
    assert_eq!(queries[0].get("since"), None);
    assert_eq!(queries[0].get("limit").map(String::as_str), Some("2"));
    assert_eq!(queries[1].get("since").map(String::as_str), Some("2"));
}

/// The committed cursor is the resume state: a rollback asks for the same
/// items again; a restored inlet sends the committed cursor.
#[tokio::test]
async fn the_committed_cursor_is_the_resume_state() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let options = json!({
        "url": format!("{base}/items"),
        "query": {"limit": "2"},
        "items": "/data/items",
        "cursor": {"param": "since", "pointer": "/id"},
    });
    let mut first = inlet(options.clone());
    assert_eq!(
        first.snapshot(),
        Some(json!({"cursor": null, "next_page": null}))
    );
    first.pull(&update()).await.unwrap();
    first.commit(&update()).await.unwrap();
    let second = first.pull(&update()).await.unwrap();
    assert_eq!(payloads(&second), [json!({"id": 3}), json!({"id": 4})]);
    first.rollback(&update()).await.unwrap();
    let again = first.pull(&update()).await.unwrap();
    assert_eq!(
        payloads(&again),
        [json!({"id": 3}), json!({"id": 4})],
        "read again"
    );
    let state = first.snapshot().unwrap();
    assert_eq!(state, json!({"cursor": "2", "next_page": null}));

    let mut resumed = inlet(options);
    resumed.restore(state).await.unwrap();
    resumed.pull(&update()).await.unwrap();
    assert_eq!(
        seen.queries()
            .last()
            .unwrap()
            .get("since")
            .map(String::as_str),
        Some("2")
    );
    let e = resumed.restore(json!({"cursor": 5})).await.unwrap_err();
    assert!(e.to_string().contains("`cursor` must be a string"), "{e}");
}

#[tokio::test]
async fn next_pointer_pages_are_followed_up_to_the_cap() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut inlet = inlet(json!({
        "url": format!("{base}/pages"),
        "items": "/items",
        "next": "/next",
        "max_pages": 2,
    }));
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&first), [json!({"page": 1}), json!({"page": 2})]);
    // The cap stopped at page 2: the next pull goes on from page 3, then
    // starts over.
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&second), [json!({"page": 3})]);
    let third = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&third), [json!({"page": 1}), json!({"page": 2})]);
    assert_eq!(seen.calls(), 5);
}

#[tokio::test]
async fn link_header_pages_are_followed() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({
        "url": format!("{base}/linked"),
        "items": "",
        "next": "Link",
    }));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull), [json!({"page": 1}), json!({"page": 2})]);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/flaky")}));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull), [json!({"ok": true})]);
    assert_eq!(seen.calls(), 3);
}

#[tokio::test]
async fn server_errors_past_the_attempts_fail_with_the_status() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut inlet = inlet(json!({
        "url": format!("{base}/flaky"),
        "retry": {"attempts": 2, "initial_delay": "10ms"},
    }));
    match pull_err(&mut inlet).await {
        HttpInletError::Http(HttpError::Status {
            status,
            request,
            body,
        }) => {
            assert_eq!(status, 502);
            assert_eq!(request, format!("GET {base}/flaky"));
            assert_eq!(body, "upstream down");
        }
        other => panic!("{other}"),
    }
    assert_eq!(seen.calls(), 2);
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_a_retry_after_pull() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/throttled")}));
    let pull = inlet.pull(&update()).await.unwrap();
    assert!(
        matches!(pull, Pull::RetryAfter(d) if d == Duration::from_secs(7)),
        "{pull:?}"
    );
}

#[tokio::test]
async fn an_unaccepted_status_names_the_url_and_the_reason() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/missing")}));
    let e = pull_err(&mut inlet).await.to_string();
    assert_eq!(e, format!("GET {base}/missing: status 404: no such feed"));
    // ... unless it is accepted.
    let mut inlet = self::inlet(json!({
        "url": format!("{base}/missing"), "format": "text", "status": [200, 404],
    }));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull), [json!("no such feed")]);
}

#[tokio::test]
async fn a_slow_response_times_out_naming_the_url() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({
        "url": format!("{base}/slow"),
        "request_timeout": "200ms",
        "retry": {"attempts": 1},
    }));
    match pull_err(&mut inlet).await {
        HttpInletError::Http(e @ HttpError::Send { timeout: true, .. }) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("GET {base}/slow: ")), "{text}");
            assert!(text.contains("no response within 200ms"), "{text}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_garbage_body_names_the_url_and_the_parse_error() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/garbage")}));
    let e = pull_err(&mut inlet).await.to_string();
    assert!(
        e.starts_with(&format!(
            "GET {base}/garbage: the response body is not valid JSON: "
        )),
        "{e}"
    );
    assert!(e.contains("line 1 column 1"), "{e}");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let base = server(Seen::default()).await;
    let mut inlet =
        inlet(json!({"url": format!("{base}/big"), "max_body": "1KiB", "format": "text"}));
    match pull_err(&mut inlet).await {
        HttpInletError::Http(HttpError::TooLarge { limit, .. }) => assert_eq!(limit, 1024),
        other => panic!("{other}"),
    }
    let mut inlet =
        self::inlet(json!({"url": format!("{base}/big"), "max_body": 4096, "format": "text"}));
    assert_eq!(inlet.pull(&update()).await.unwrap().records().len(), 1);
}

#[tokio::test]
async fn items_that_are_not_an_array_are_an_error() {
    let base = server(Seen::default()).await;
    let mut inlet = inlet(json!({"url": format!("{base}/json"), "items": "/hello"}));
    let e = pull_err(&mut inlet).await.to_string();
    assert_eq!(
        e,
        format!("GET {base}/json: `items` pointer `/hello` finds a string, not an array")
    );
}

#[tokio::test]
async fn the_token_is_sent_and_never_shown() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let mut good =
        inlet(json!({"url": format!("{base}/secret"), "auth": {"bearer": "s3cr3t-t0ken"}}));
    assert_eq!(
        payloads(&good.pull(&update()).await.unwrap()),
        [json!({"ok": true})]
    );
    assert_eq!(
        seen.requests.lock().unwrap()[0].0.as_deref(),
        Some("Bearer s3cr3t-t0ken")
    );
    assert!(!format!("{good:?}").contains("s3cr3t"), "{good:?}");

    let mut bad = inlet(json!({
        "url": format!("{base}/secret"),
        "auth": {"basic": {"user": "app", "password": "hunter2"}},
        "headers": {"X-Api-Key": "k3y-value"},
    }));
    let e = pull_err(&mut bad).await.to_string();
    assert!(e.contains("status 401"), "{e}");
    let shown = format!("{e} {bad:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("k3y-value"),
        "{shown}"
    );

    // A password in the URL is scrubbed from errors.
    let mut in_url =
        inlet(json!({"url": base.replace("http://", "http://app:pa55word@") + "/missing"}));
    let e = pull_err(&mut in_url).await.to_string();
    assert!(e.contains("app:***@") && !e.contains("pa55word"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_named_after_every_attempt() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut inlet = inlet(json!({"url": format!("http://{addr}/x")}));
    let e = pull_err(&mut inlet).await.to_string();
    assert!(e.starts_with(&format!("GET http://{addr}/x: ")), "{e}");
    assert!(e.ends_with("(after 3 attempts)"), "{e}");
}

#[tokio::test]
async fn passes_the_inlet_tester() {
    let base = server(Seen::default()).await;
    let url = format!("{base}/items");
    InletTester::new(|| inlet(json!({"url": url, "items": "/data/items"})))
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn round_trip_through_a_link() {
    let base = server(Seen::default()).await;
    let outlet = CollectOutlet::new();
    let source = inlet(json!({
        "url": format!("{base}/pages"),
        "items": "/items",
        "next": "/next",
    }));
    let link = Link::builder("http_pages")
        .inlet(InletHandle::builder(source).name("pages").build())
        .outlet(outlet.clone())
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(
        outlet.payloads(),
        [json!({"page": 1}), json!({"page": 2}), json!({"page": 3})]
    );
    assert_eq!(
        outlet.records()[0].meta(databay_core::INLET_KEY),
        Some(&json!("pages"))
    );
}

#[tokio::test]
async fn a_link_counts_the_response_bodies_read() {
    let base = server(Seen::default()).await;
    let link = Link::builder("http_bytes")
        .inlet(inlet(json!({"url": format!("{base}/json")})))
        .outlet(CollectOutlet::new())
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let body = serde_json::to_vec(&json!({"hello": "world"})).unwrap();
    assert_eq!(link.node_stats()[0].bytes, Some(2 * body.len() as u64));
}

// --- TLS: `tls.ca_file` -------------------------------------------------------

/// An HTTPS server on 127.0.0.1:0 (rustls on ring) whose certificate, for
/// `127.0.0.1`, is signed by a CA made here; serves `GET /json` and
/// `POST /ingest`. Returns its base URL and the CA certificate's PEM.
async fn https_server() -> (String, String) {
    use std::sync::Arc;

    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "databay test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("the CA certificate");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &*ca)
        .expect("the server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("the server's TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let app = Router::new()
        .route(
            "/json",
            get(|| async { axum::Json(json!({"hello": "world"})) }),
        )
        .route(
            "/ingest",
            axum::routing::post(|| async { StatusCode::NO_CONTENT }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test HTTPS server on 127.0.0.1:0");
    let addr = listener.local_addr().expect("the test server's address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .await;
            });
        }
    });
    (format!("https://{addr}"), ca.pem())
}

#[tokio::test]
async fn tls_ca_file_trusts_a_private_ca_for_pulls_and_pushes() {
    let (base, ca) = https_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let tls = json!({"ca_file": ca_file.to_str().unwrap()});

    let mut source = inlet(json!({"url": format!("{base}/json"), "tls": tls}));
    match source.pull(&update()).await {
        Ok(pull) => assert_eq!(
            pull.records()
                .iter()
                .map(|r| r.payload.clone())
                .collect::<Vec<_>>(),
            [json!({"hello": "world"})]
        ),
        Err(e) => panic!("a pull over TLS with the CA trusted: {e}"),
    }

    let options: databay_outlets::http::HttpOutletOptions =
        serde_json::from_value(json!({"url": format!("{base}/ingest"), "tls": tls})).unwrap();
    let mut sink = options.build(&BuildContext::new("test", ".")).unwrap();
    let records = [databay_core::Record::new(json!({"id": 1}))];
    if let Err(e) = databay_core::Outlet::push(&mut sink, &records, &update()).await {
        panic!("a push over TLS with the CA trusted: {e}");
    }
}

#[tokio::test]
async fn without_tls_ca_file_a_private_ca_is_refused_naming_the_url() {
    let (base, _ca) = https_server().await;
    let url = format!("{base}/json");
    let mut source = inlet(json!({"url": url, "retry": {"attempts": 1}}));
    let message = match source.pull(&update()).await {
        Ok(pull) => panic!("an untrusted certificate was accepted: {pull:?}"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains(&url), "names the URL: {message}");
    assert!(
        message.contains("certificate") && message.contains("UnknownIssuer"),
        "says the certificate is not trusted: {message}"
    );
    assert!(
        message.contains("`tls.ca_file`"),
        "says what to set: {message}"
    );
}

#[tokio::test]
async fn a_server_that_goes_away_mid_run_fails_the_pull_and_the_link_recovers_when_it_is_back() {
    use crate::outage::through_an_outage;
    let seen = Seen::default();
    seen.available.store(3, Ordering::SeqCst);
    let base = server(seen.clone()).await;
    let (proxy, proxied) = databay_component::testing::TcpProxy::for_url(&base)
        .await
        .unwrap();
    let out = CollectOutlet::new();
    let link = Link::builder("http_outage")
        .inlet(inlet(json!({
            "url": format!("{proxied}/feed"),
            "items": "/items",
            "cursor": {"param": "since", "pointer": "/id"},
        })))
        .outlet(out.clone())
        .build()
        .unwrap();
    let down = through_an_outage(&link, &out, &proxy, 3, true, async {
        seen.available.store(5, Ordering::SeqCst);
        2
    })
    .await
    .unwrap_or_default();
    assert!(down.contains(&format!("GET {proxied}/feed")), "{down}");
    assert_eq!(
        out.payloads(),
        (1..=5).map(|id| json!({"id": id})).collect::<Vec<_>>()
    );
}
