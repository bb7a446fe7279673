//! Tests of [`HttpServerInlet`] with a real HTTP client (reqwest) posting
//! to it on 127.0.0.1, a port of its own per test. Most take requests with
//! `ack = "receipt"` (answered at once, so one task can post and then
//! transfer); the `ack = "commit"` ones post from tasks of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use databay_component::Secret;
use databay_component::http::reqwest::{self, StatusCode, header};
use databay_component::http::{ByteSize, HttpClient};
use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{BoxError, Inlet, InletHandle, Link, Outlet, Pull, Record, Update, async_trait};
use serde_json::{Value, json};

use super::{Ack, HttpServerInlet, HttpServerInletOptions, LocalAddr};

/// Answering at receipt.
fn options() -> HttpServerInletOptions {
    HttpServerInletOptions {
        address: "127.0.0.1:0".into(),
        path: "/hooks".into(),
        ack: Ack::Receipt,
        ..HttpServerInletOptions::default()
    }
}

/// Answering once committed (the default).
fn committing() -> HttpServerInletOptions {
    HttpServerInletOptions {
        ack: Ack::Commit,
        ..options()
    }
}

fn inlet(options: HttpServerInletOptions) -> HttpServerInlet {
    options.build().unwrap_or_else(|e| panic!("options: {e}"))
}

/// A client without retries (the component's builder also installs the
/// TLS provider reqwest needs).
fn client() -> reqwest::Client {
    if let Err(e) = HttpClient::builder().build() {
        panic!("client: {e}");
    }
    reqwest::Client::new()
}

/// The answer to one POST: status, `Retry-After`, body.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn post(
    listening: &LocalAddr,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> Answer {
    let Some(address) = listening.get() else {
        panic!("the inlet is not listening");
    };
    let mut request = client()
        .post(format!("http://{address}{path}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text));
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn post_json(listening: &LocalAddr, body: Value) -> Answer {
    post(
        listening,
        "/hooks",
        "application/json",
        body.to_string(),
        None,
    )
    .await
}

fn error(answer: &Answer) -> String {
    answer.body["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn posted_records_go_through_a_link_in_order() {
    let inlet = inlet(options());
    let listening = inlet.local_addr();
    let outlet = CollectOutlet::new();
    let link = Link::builder("webhooks")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();

    let one = post_json(&listening, json!({"event": "signup", "id": 1})).await;
    assert_eq!(one.status, StatusCode::ACCEPTED, "{}", one.body);
    assert_eq!(one.body, json!({"accepted": 1}));
    let many = post_json(&listening, json!([{"id": 2}, {"id": 3}, "four"])).await;
    assert_eq!(many.body, json!({"accepted": 3}));
    let lines = post(
        &listening,
        "/hooks",
        "application/x-ndjson; charset=utf-8",
        "{\"id\": 5}\n\n[6, 7]\r\n{\"id\": 8}\n",
        None,
    )
    .await;
    assert_eq!(lines.body, json!({"accepted": 3}), "{}", lines.body);
    let none = post_json(&listening, json!([])).await;
    assert_eq!(
        (none.status, none.body),
        (StatusCode::ACCEPTED, json!({"accepted": 0}))
    );

    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_in, 7);
    assert_eq!(
        outlet.payloads(),
        [
            json!({"event": "signup", "id": 1}),
            json!({"id": 2}),
            json!({"id": 3}),
            json!("four"),
            json!({"id": 5}),
            json!([6, 7]),
            json!({"id": 8}),
        ]
    );
    // Drained: the next transfer has nothing.
    assert_eq!(link.transfer().await.unwrap().records_in, 0);
    assert!(link.shutdown().await.is_empty());
    assert_eq!(listening.get(), None, "still listening after shutdown");
}

#[tokio::test]
async fn a_full_inlet_answers_503_and_takes_the_request_after_a_transfer() {
    let inlet = inlet(HttpServerInletOptions {
        max_records: 3,
        retry_after: Duration::from_millis(1500),
        ..options()
    });
    let listening = inlet.local_addr();
    let outlet = CollectOutlet::new();
    let link = Link::builder("full")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();

    assert_eq!(
        post_json(&listening, json!([1, 2])).await.status,
        StatusCode::ACCEPTED
    );
    let full = post_json(&listening, json!([3, 4])).await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    assert_eq!(full.retry_after.as_deref(), Some("2"));
    let message = error(&full);
    assert!(
        message.starts_with("full: 2 records") && message.contains("max_records = 3"),
        "{message}"
    );
    // One more still fits.
    assert_eq!(
        post_json(&listening, json!(3)).await.status,
        StatusCode::ACCEPTED
    );
    // A request that could never fit is too large, not "later".
    let huge = post_json(&listening, json!([1, 2, 3, 4])).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        error(&huge).contains("holds 4 records, more than max_records = 3"),
        "{}",
        huge.body
    );

    link.transfer().await.unwrap();
    assert_eq!(outlet.payloads(), [json!(1), json!(2), json!(3)]);
    let again = post_json(&listening, json!([3, 4])).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    link.transfer().await.unwrap();
    assert_eq!(
        outlet.payloads(),
        [json!(1), json!(2), json!(3), json!(3), json!(4)]
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn max_bytes_bounds_what_is_held() {
    let inlet = inlet(HttpServerInletOptions {
        max_bytes: ByteSize(100),
        max_body: ByteSize(60),
        ..options()
    });
    let listening = inlet.local_addr();
    let handle = InletHandle::new(inlet);
    handle.start().await.unwrap();
    let forty = json!({"pad": "x".repeat(30)}).to_string();
    assert_eq!(forty.len(), 40);
    for _ in 0..2 {
        let a = post(
            &listening,
            "/hooks",
            "application/json",
            forty.clone(),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    }
    let a = post(
        &listening,
        "/hooks",
        "application/json",
        forty.clone(),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(error(&a).contains("(80 bytes)"), "{}", a.body);
    handle.shutdown().await.unwrap();
}

/// An outlet that fails while `failing` is set.
#[derive(Clone, Default)]
struct Flaky {
    failing: Arc<AtomicBool>,
    inner: CollectOutlet,
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("the outlet is down".into());
        }
        self.inner.push(records, update).await
    }
}

#[tokio::test]
async fn records_of_a_failed_transfer_are_held_again_and_delivered_first() {
    let inlet = inlet(HttpServerInletOptions {
        max_records: 3,
        ..options()
    });
    let listening = inlet.local_addr();
    let outlet = Flaky::default();
    outlet.failing.store(true, Ordering::SeqCst);
    let link = Link::builder("flaky")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();

    post_json(&listening, json!([1, 2])).await;
    assert!(link.transfer().await.is_err(), "the push should fail");
    // Still held, so still counted against max_records.
    assert_eq!(
        post_json(&listening, json!([3, 4])).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        post_json(&listening, json!(3)).await.status,
        StatusCode::ACCEPTED
    );
    outlet.failing.store(false, Ordering::SeqCst);
    assert_eq!(link.transfer().await.unwrap().records_in, 3);
    assert_eq!(outlet.inner.payloads(), [json!(1), json!(2), json!(3)]);
    // Committed: room again.
    assert_eq!(
        post_json(&listening, json!([4, 5, 6])).await.status,
        StatusCode::ACCEPTED
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_pull_left_unsettled_is_emitted_again_by_the_next_pull() {
    let mut inlet = inlet(options());
    let listening = inlet.local_addr();
    inlet.on_start().await.unwrap();
    post_json(&listening, json!([1, 2])).await;
    let first = inlet.pull(&Update::new(["a"], 0)).await.unwrap();
    assert_eq!(first.records().len(), 2);
    post_json(&listening, json!(3)).await;
    // Transfer 0 was cut short: never committed nor rolled back.
    let second = inlet.pull(&Update::new(["a"], 1)).await.unwrap();
    let values: Vec<Value> = second.records().iter().map(|r| r.payload.clone()).collect();
    assert_eq!(values, [json!(1), json!(2), json!(3)]);
    inlet.commit(&Update::new(["a"], 1)).await.unwrap();
    assert_eq!(inlet.held(), 0);
    assert!(matches!(
        inlet.pull(&Update::new(["a"], 2)).await.unwrap(),
        Pull::Nothing
    ));
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let inlet = inlet(HttpServerInletOptions {
        token: Some(Secret::new("t0ken-for-tests".into())),
        ..options()
    });
    let listening = inlet.local_addr();
    let handle = InletHandle::new(inlet);
    handle.start().await.unwrap();
    let body = json!({"a": 1}).to_string();

    let none = post(&listening, "/hooks", "application/json", body.clone(), None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(
        error(&none).contains("Authorization: Bearer"),
        "{}",
        none.body
    );
    let wrong = post(
        &listening,
        "/hooks",
        "application/json",
        body.clone(),
        Some("t0ken-for-testz"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        !wrong.body.to_string().contains("t0ken"),
        "the answer shows the token: {}",
        wrong.body
    );
    let right = post(
        &listening,
        "/hooks",
        "application/json",
        body,
        Some("t0ken-for-tests"),
    )
    .await;
    assert_eq!(right.status, StatusCode::ACCEPTED, "{}", right.body);
    let pull = handle.pull(&Update::new(["t"], 0), None).await.unwrap();
    assert_eq!(
        pull.records().len(),
        1,
        "only the authorized request is held"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_line() {
    let inlet = inlet(options());
    let listening = inlet.local_addr();
    let handle = InletHandle::new(inlet);
    handle.start().await.unwrap();

    let bad = post(
        &listening,
        "/hooks",
        "application/json",
        "{\"a\": 1,\n \"b\": }",
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let message = error(&bad);
    assert!(
        message.starts_with("the body is not JSON: expected value at line 2 column"),
        "{message}"
    );
    let lines = post(
        &listening,
        "/hooks",
        "application/x-ndjson",
        "{\"a\": 1}\n{\"a\": 2}\n{\"a\" 3}\n",
        None,
    )
    .await;
    assert_eq!(lines.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&lines),
        "line 3 is not JSON: expected `:` at column 6"
    );
    let empty = post(&listening, "/hooks", "application/json", "  \n", None).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(
        error(&empty).starts_with("the body is empty"),
        "{}",
        empty.body
    );
    // A bad request holds none of its records, even the good lines.
    assert!(matches!(
        handle.pull(&Update::new(["t"], 0), None).await.unwrap(),
        Pull::Nothing
    ));

    let elsewhere = post(&listening, "/other", "application/json", "1", None).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(error(&elsewhere).contains("`/hooks`"), "{}", elsewhere.body);
    let Some(address) = listening.get() else {
        panic!("not listening");
    };
    let get = client()
        .get(format!("http://{address}/hooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        get.headers().get(header::ALLOW).map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_over_max_body_is_a_413() {
    let inlet = inlet(HttpServerInletOptions {
        max_body: ByteSize(1000),
        ..options()
    });
    let listening = inlet.local_addr();
    let handle = InletHandle::new(inlet);
    handle.start().await.unwrap();
    let big = json!({"pad": "x".repeat(2000)}).to_string();
    let declared = post(&listening, "/hooks", "application/json", big.clone(), None).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error(&declared),
        format!(
            "the body is {} bytes, more than max_body = 1000 bytes",
            big.len()
        )
    );
    // Without a Content-Length (chunked), the limit holds as it streams in.
    let Some(address) = listening.get() else {
        panic!("not listening");
    };
    let mut request = b"POST /hooks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in big.as_bytes().chunks(100) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(address, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "a chunked body over max_body: {answer}"
    );
    assert!(
        answer.contains("the body is more than max_body = 1000 bytes"),
        "{answer}"
    );
    let fits = post(&listening, "/hooks", "application/json", "[1, 2]", None).await;
    assert_eq!(fits.status, StatusCode::ACCEPTED);
    handle.shutdown().await.unwrap();
}

/// Sends `request` as it is and reads the whole answer.
async fn raw(address: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect {address}: {e}"));
    // The server may answer and close before the whole body is sent.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_address_in_use_fails_the_start_naming_it() {
    let mut first = inlet(options());
    first.on_start().await.unwrap();
    let Some(taken) = first.local_addr().get() else {
        panic!("not listening");
    };
    let mut second = inlet(HttpServerInletOptions {
        address: taken.to_string(),
        ..options()
    });
    let e = second.on_start().await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("http_server cannot listen on {taken}: "))
            && e.contains("`address`"),
        "{e}"
    );
    first.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn passes_the_inlet_checks() {
    for make in [options, committing] {
        InletTester::new(move || inlet(make()))
            .run()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_bodies_once() {
    let inlet = inlet(options());
    let listening = inlet.local_addr();
    let outlet = Flaky::default();
    let link = Link::builder("webhook_bytes")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    post(&listening, "/hooks", "application/json", "[1, 2]", None).await;
    post(
        &listening,
        "/hooks",
        "application/x-ndjson",
        "{\"a\":1}\n",
        None,
    )
    .await;
    outlet.failing.store(true, Ordering::SeqCst);
    assert!(link.transfer().await.is_err());
    assert_eq!(link.node_stats()[0].bytes, Some(6 + 8));
    outlet.failing.store(false, Ordering::SeqCst);
    assert_eq!(link.transfer().await.unwrap().records_in, 3);
    assert_eq!(
        link.node_stats()[0].bytes,
        Some(14),
        "records held again are not received again"
    );
    assert!(link.shutdown().await.is_empty());
}

// --- ack = "commit" ---

/// POSTs a JSON body from a task of its own: its answer waits.
fn send(listening: &LocalAddr, body: Value) -> tokio::task::JoinHandle<Answer> {
    let listening = listening.clone();
    tokio::spawn(async move { post_json(&listening, body).await })
}

/// Waits until `inlet` holds `n` records.
async fn until_held(inlet: &HttpServerInlet, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inlet.held() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} held, not {n}",
            inlet.held()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn commit_is_the_default() {
    assert_eq!(HttpServerInletOptions::default().ack, Ack::Commit);
}

#[tokio::test]
async fn a_request_is_answered_200_only_once_its_transfer_commits() {
    let inlet = inlet(committing());
    let listening = inlet.local_addr();
    let outlet = Flaky::default();
    outlet.failing.store(true, Ordering::SeqCst);
    let link = Link::builder("acked")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let sent = send(&listening, json!([1, 2]));
    // Transfers find nothing until the request is held, then fail.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while link.transfer().await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "never pulled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sent.is_finished(), "answered before any commit");
    outlet.failing.store(false, Ordering::SeqCst);
    assert_eq!(link.transfer().await.unwrap().records_in, 2);
    let answer = sent.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({"delivered": 2}));
    assert_eq!(outlet.inner.payloads(), [json!(1), json!(2)]);
    // An empty array waits for nothing.
    let none = post_json(&listening, json!([])).await;
    assert_eq!(
        (none.status, none.body),
        (StatusCode::OK, json!({"delivered": 0}))
    );
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn shutdown_answers_waiting_requests_503_and_holds_nothing() {
    let mut inlet = inlet(HttpServerInletOptions {
        retry_after: Duration::from_millis(2500),
        ..committing()
    });
    let listening = inlet.local_addr();
    inlet.on_start().await.unwrap();
    let address = listening.get().unwrap();
    let sent = send(&listening, json!({"id": 1}));
    until_held(&inlet, 1).await;
    inlet.on_shutdown().await.unwrap();
    let answer = sent.await.unwrap();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.retry_after.as_deref(), Some("3"));
    assert!(
        error(&answer).starts_with("the receiver is stopping and the records were not delivered"),
        "{}",
        answer.body
    );
    assert_eq!(inlet.held(), 0);
    assert!(
        client()
            .post(format!("http://{address}/hooks"))
            .body("1")
            .send()
            .await
            .is_err(),
        "still listening after on_shutdown"
    );
}

#[tokio::test]
async fn past_ack_timeout_a_request_is_answered_503_and_its_records_dropped() {
    let mut inlet = inlet(HttpServerInletOptions {
        ack_timeout: Duration::from_millis(200),
        ..committing()
    });
    let listening = inlet.local_addr();
    inlet.on_start().await.unwrap();
    let answer = post_json(&listening, json!([1, 2])).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    assert!(
        error(&answer).contains("not delivered within ack_timeout = 200ms"),
        "{}",
        answer.body
    );
    assert_eq!(inlet.held(), 0);
    assert!(matches!(
        inlet.pull(&Update::new(["a"], 0)).await.unwrap(),
        Pull::Nothing
    ));
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn records_pulled_for_a_request_that_stopped_waiting_are_dropped_on_rollback() {
    let mut inlet = inlet(HttpServerInletOptions {
        ack_timeout: Duration::from_millis(300),
        ..committing()
    });
    let listening = inlet.local_addr();
    inlet.on_start().await.unwrap();
    let sent = send(&listening, json!([1, 2]));
    until_held(&inlet, 2).await;
    let update = Update::new(["a"], 0);
    assert_eq!(inlet.pull(&update).await.unwrap().records().len(), 2);
    // Its sender is told to send again while the transfer still runs ...
    assert_eq!(sent.await.unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(inlet.held(), 2, "pulled records stay until settled");
    // ... which then fails: the records are not held again.
    inlet.rollback(&update).await.unwrap();
    assert_eq!(inlet.held(), 0);
    assert!(matches!(
        inlet.pull(&Update::new(["a"], 1)).await.unwrap(),
        Pull::Nothing
    ));
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sender_that_gives_up_takes_back_what_no_pull_took() {
    let mut inlet = inlet(committing());
    let listening = inlet.local_addr();
    inlet.on_start().await.unwrap();
    let address = listening.get().unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let _ = client();
    let given_up = impatient
        .post(format!("http://{address}/hooks"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("[1, 2, 3]")
        .send()
        .await;
    assert!(given_up.is_err(), "answered without a commit");
    until_held(&inlet, 0).await;
    assert!(matches!(
        inlet.pull(&Update::new(["a"], 0)).await.unwrap(),
        Pull::Nothing
    ));
    inlet.on_shutdown().await.unwrap();
}

/// A sender whose body stops coming is answered 408 once
/// `request_timeout` passed, naming the option; nothing of it is held and
/// the next sender is served.
#[tokio::test]
async fn a_body_that_stops_coming_is_a_408_after_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let inlet = inlet(HttpServerInletOptions {
        request_timeout: Duration::from_millis(300),
        ..options()
    });
    let listening = inlet.local_addr();
    let out = CollectOutlet::new();
    let link = Link::builder("webhook_slow")
        .inlet(inlet)
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let Some(address) = listening.get() else {
        panic!("the inlet is not listening");
    };
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(
        b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 20\r\n\r\n{\"a\":",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut answer))
        .await
        .expect("an answer, not a wait without end")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let good = post(&listening, "/hooks", "application/json", "{\"a\": 2}", None).await;
    assert_eq!(good.status, StatusCode::ACCEPTED, "{}", good.body);
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!({"a": 2})]);
    assert!(link.shutdown().await.is_empty());
}
