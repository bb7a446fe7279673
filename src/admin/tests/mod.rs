//! Tests of the endpoint over real HTTP on a loopback port, and of the
//! exposition and views without it.

mod guard;
mod limits;
mod page;
mod processors;

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{BoxError, HISTOGRAM_BOUNDS, Inlet, LinkState, Pull, Update, async_trait};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use super::metrics::{
    DaemonHistograms, LinkMetrics, LinkSeries, Totals, encode, encode_links, escape_label,
};
use super::views::rfc3339;
use super::*;

const QUOTED: &str = "say \"hi\"";

struct FailingInlet;

#[async_trait]
impl Inlet for FailingInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Err("the source is down".into())
    }
}

fn link(name: &str, inlet: impl Inlet) -> Link {
    Link::builder(name)
        .inlet(inlet)
        .outlet(CollectOutlet::new())
        .every(Duration::from_secs(3600))
        .immediate_transfer(false)
        .build()
        .expect("valid schedule")
}

/// `alpha` (3 records a pull), `say "hi"` (1 record) and `broken`
/// (its inlet always fails), none transferring on its own.
fn planner() -> Planner {
    Planner::builder()
        .link(link("alpha", StaticInlet::values([1, 2, 3])))
        .link(link(QUOTED, StaticInlet::values([10])))
        .link(link("broken", FailingInlet))
        .ignore_exceptions(true)
        .immediate_transfer(false)
        .build()
        .expect("distinct names")
}

fn summaries() -> Arc<RwLock<BTreeMap<String, LinkSummary>>> {
    let alpha = LinkSummary {
        name: "alpha".into(),
        schedule: "every 1h".into(),
        inlets: vec!["static".into()],
        processors: vec!["filter".into()],
        groupers: vec![],
        outlets: vec!["collect".into()],
        dead_letter: None,
    };
    Arc::new(RwLock::new(BTreeMap::from([("alpha".to_owned(), alpha)])))
}

/// A running planner and an admin server on a loopback port.
struct Fixture {
    addr: SocketAddr,
    planner: Planner,
    planner_task: JoinHandle<Result<(), databay_core::PlannerError>>,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Fixture {
    async fn start() -> Self {
        Fixture::start_with(Limits::default()).await
    }

    async fn start_with(limits: Limits) -> Self {
        Fixture::start_configured(limits, |s| s).await
    }

    /// A fixture whose state `configure` sets up (token, hosts).
    async fn start_configured(limits: Limits, configure: fn(AdminState) -> AdminState) -> Self {
        let planner = planner();
        let planner_task = tokio::spawn({
            let planner = planner.clone();
            async move { planner.start().await }
        });
        wait_for(|| {
            planner.running()
                && planner
                    .links()
                    .iter()
                    .all(|l| l.state() == LinkState::Scheduled && l.next_transfer().is_some())
        })
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop_server, stopped) = oneshot::channel::<()>();
        let state = configure(AdminState::new(planner.clone(), summaries()));
        let server = tokio::spawn(serve(listener, state, limits, async move {
            let _ = stopped.await;
        }));
        Fixture {
            addr,
            planner,
            planner_task,
            stop_server,
            server,
        }
    }

    fn link(&self, name: &str) -> Link {
        self.planner.link(name).expect("fixture link")
    }

    async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path).await
    }

    async fn post(&self, path: &str) -> Reply {
        request(self.addr, "POST", path).await
    }

    /// A request with these headers (and `Host: x` unless they name one).
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        request_with(self.addr, method, path, headers).await
    }

    async fn stop(self) {
        let _ = self.stop_server.send(());
        let served = tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("server stops after shutdown");
        served.expect("server task").expect("server result");
        self.planner.shutdown(true);
        let planned = tokio::time::timeout(Duration::from_secs(10), self.planner_task)
            .await
            .expect("planner stops");
        planned.expect("planner task").expect("planner result");
    }
}

async fn wait_for(mut ready: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5s");
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A minimal HTTP/1.1 client: one request per connection, read to EOF.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    request_with(addr, method, path, &[]).await
}

/// [`request`] with extra headers; `Host: x` unless they name a host.
async fn request_with(addr: SocketAddr, method: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str("Host: x\r\n");
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\nContent-Length: 0\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("answer within 10s");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("end of headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    assert_eq!(reply.header("transfer-encoding"), None, "{reply:?}");
    if reply.status == 304 {
        assert!(reply.body.is_empty(), "{reply:?}");
        return reply;
    }
    let length: usize = reply
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert_eq!(reply.body.len(), length, "{reply:?}");
    reply
}

/// The value of the one sample line that starts with `series ` (name and
/// labels exactly as written).
fn sample(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("numeric sample"))
        .collect();
    assert_eq!(found.len(), 1, "series {series} in\n{text}");
    found[0]
}

/// Checks the histogram series of `metric` whose labels besides `le` are
/// `labels` as written (`link="a"`, or empty): cumulative buckets at the
/// core's bounds, `+Inf` equal to `_count`. Returns the count.
fn check_histogram(text: &str, metric: &str, labels: &str) -> f64 {
    let prefix = format!("{metric}_bucket{{le=\"");
    let rest_of_labels = if labels.is_empty() {
        "}".to_owned()
    } else {
        format!(",{labels}}}")
    };
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, rest) = rest.split_once('"').expect("bucket line");
            let value = rest.strip_prefix(&rest_of_labels)?.strip_prefix(' ')?;
            Some((le.to_owned(), value.parse().expect("numeric bucket")))
        })
        .collect();
    assert_eq!(buckets.len(), HISTOGRAM_BOUNDS.len() + 1, "{text}");
    for pair in buckets.windows(2) {
        assert!(pair[0].1 <= pair[1].1, "not cumulative: {pair:?}");
    }
    for ((le, _), bound) in buckets.iter().zip(HISTOGRAM_BOUNDS) {
        assert_eq!(le.parse::<f64>().expect("numeric le"), bound);
    }
    let (le, inf) = buckets.last().expect("+Inf bucket");
    assert_eq!(le, "+Inf");
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let count = sample(text, &format!("{metric}_count{braced}"));
    assert_eq!(*inf, count);
    sample(text, &format!("{metric}_sum{braced}"));
    count
}

/// Every line is a comment or `name{labels} number`, every sample's family
/// was announced with HELP and TYPE before it (a counter's samples add
/// `_total` to its family's name), and `# EOF` ends the text.
fn check_exposition(text: &str) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap_or_default().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap_or_default().to_owned();
            let kind = words.next().unwrap_or_default().to_owned();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                "{line}"
            );
            typed.push((name, kind));
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            value.parse::<f64>().expect("numeric value");
            let name = series.split('{').next().unwrap_or_default();
            let (family, kind) = typed.last().expect("TYPE before samples");
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            assert!(
                suffixes
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family.as_str())),
                "{line}"
            );
            assert_eq!(helped.last(), Some(family), "{line}");
            if series.contains('{') {
                assert!(series.ends_with('}'), "{line}");
            }
        }
    }
}

#[tokio::test]
async fn healthz_reports_the_planner() {
    let f = Fixture::start().await;
    let reply = f.get("/healthz").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["running"], true);
    assert_eq!(body["links"], 3);
    assert!(body["started"].as_str().is_some_and(|s| s.ends_with('Z')));
    f.stop().await;
}

#[tokio::test]
async fn metrics_count_transfers_over_http() {
    let f = Fixture::start().await;
    let alpha = f.link("alpha");
    alpha.transfer().await.expect("transfer");
    alpha.transfer().await.expect("transfer");
    f.link(QUOTED).transfer().await.expect("transfer");
    assert!(f.link("broken").transfer().await.is_err());

    let reply = f.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text; version=1.0.0")),
        "{reply:?}"
    );
    let text = &reply.body;
    check_exposition(text);
    assert_eq!(sample(text, "databay_up"), 1.0);
    assert_eq!(sample(text, "databay_links"), 3.0);
    let ok = "databay_transfers_total{link=\"alpha\",result=\"ok\"}";
    assert_eq!(sample(text, ok), 2.0);
    let failed = "databay_transfers_total{link=\"alpha\",result=\"failed\"}";
    assert_eq!(sample(text, failed), 0.0);
    assert_eq!(
        sample(text, "databay_records_in_total{link=\"alpha\"}"),
        6.0
    );
    assert_eq!(
        sample(text, "databay_records_out_total{link=\"alpha\"}"),
        6.0
    );
    assert_eq!(sample(text, "databay_errors_total{link=\"alpha\"}"), 0.0);
    assert_eq!(sample(text, "databay_link_paused{link=\"alpha\"}"), 0.0);
    let last = sample(
        text,
        "databay_last_success_timestamp_seconds{link=\"alpha\"}",
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");
    // Every transfer, failed ones too, over all links; by default not per link.
    let count = check_histogram(text, "databay_daemon_transfer_duration_seconds", "");
    assert_eq!(count, 4.0);
    // Forced transfers are not scheduled ticks: no lateness.
    let count = check_histogram(text, "databay_daemon_schedule_lateness_seconds", "");
    assert_eq!(count, 0.0);
    assert_eq!(per_link_buckets(text), 0, "{text}");

    // The quote in the name is escaped in the label.
    let quoted = "databay_transfers_total{link=\"say \\\"hi\\\"\",result=\"ok\"}";
    assert_eq!(sample(text, quoted), 1.0);

    let failed = "databay_transfers_total{link=\"broken\",result=\"failed\"}";
    assert_eq!(sample(text, failed), 1.0);
    assert_eq!(sample(text, "databay_errors_total{link=\"broken\"}"), 1.0);
    let never = "databay_last_success_timestamp_seconds{link=\"broken\"}";
    assert_eq!(sample(text, never), 0.0);
    f.stop().await;
}

#[tokio::test]
async fn links_list_every_link_in_planner_order() {
    let f = Fixture::start().await;
    f.link("alpha").transfer().await.expect("transfer");
    assert!(f.link("broken").transfer().await.is_err());

    let reply = f.get("/links").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    let links = body.as_array().expect("array");
    let names: Vec<&str> = links.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["alpha", QUOTED, "broken"]);

    let alpha = &links[0];
    assert_eq!(alpha["tags"], json!(["alpha"]));
    assert_eq!(alpha["schedule"], "every 1h");
    assert_eq!(alpha["state"], "scheduled");
    assert_eq!(alpha["paused"], false);
    let next = alpha["next_transfer"].as_str().expect("next transfer");
    let next = humantime::parse_rfc3339(next).expect("RFC 3339");
    assert!(next > SystemTime::now());
    let last = alpha["last_success"].as_str().expect("last success");
    humantime::parse_rfc3339(last).expect("RFC 3339");
    assert_eq!(alpha["last_error"], Value::Null);
    // No outlet of its commits its checkpoint: at least once.
    assert_eq!(alpha.get("exactly_once"), Some(&Value::Null));
    assert_eq!(
        alpha["counters"],
        json!({
            "transfers_ok": 1, "transfers_failed": 0, "ticks_skipped": 0,
            "records_in": 3, "records_out": 3, "records_dropped": 0, "records_failed": 0, "records_rejected": 0, "records_dead_lettered": 0, "errors": 0,
        })
    );
    assert_eq!(
        alpha["summary"],
        json!({
            "inlets": ["static"], "processors": ["filter"],
            "groupers": [], "outlets": ["collect"],
        })
    );

    let quoted = &links[1];
    assert_eq!(quoted["summary"], Value::Null);
    assert_eq!(quoted["last_success"], Value::Null);
    assert_eq!(quoted["counters"]["transfers_ok"], 0);

    let broken = &links[2];
    assert_eq!(broken["counters"]["transfers_failed"], 1);
    assert_eq!(broken["counters"]["errors"], 1);
    let error = broken["last_error"].as_str().expect("last error");
    assert!(error.contains("the source is down"), "{error}");
    f.stop().await;
}

#[tokio::test]
async fn one_link_by_name() {
    let f = Fixture::start().await;
    let reply = f.get("/links/alpha").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["counters"]["records_in"], 0);

    // Names travel percent-encoded.
    let reply = f.get("/links/say%20%22hi%22").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["name"], QUOTED);

    let reply = f.get("/links/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({ "error": "no link named `nope`" }));

    // Invalid UTF-8 in the name is a client error, not a panic.
    let reply = f.get("/links/%FF").await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].is_string());
    f.stop().await;
}

#[tokio::test]
async fn post_transfer_runs_one_transfer() {
    let f = Fixture::start().await;
    let reply = f.post("/links/alpha/transfer").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["update"], "alpha.0");
    assert_eq!(body["records_in"], 3);
    assert_eq!(body["records_out"], 3);
    assert_eq!(body["ignored_errors"], json!([]));
    assert!(body["duration_ms"].is_u64());

    let reply = f.post("/links/alpha/transfer").await;
    assert_eq!(reply.json()["update"], "alpha.1");
    assert_eq!(f.link("alpha").stats().transfers_ok, 2);
    let reply = f.get("/links/alpha").await;
    assert_eq!(reply.json()["counters"]["transfers_ok"], 2);
    let metrics = f.get("/metrics").await.body;
    let ok = "databay_transfers_total{link=\"alpha\",result=\"ok\"}";
    assert_eq!(sample(&metrics, ok), 2.0);

    let reply = f.post("/links/broken/transfer").await;
    assert_eq!(reply.status, 500);
    let error = reply.json()["error"].as_str().expect("error").to_owned();
    assert!(
        error.starts_with("transfer broken.0 of link `broken` failed"),
        "{error}"
    );
    assert!(error.contains("the source is down"), "{error}");

    let reply = f.post("/links/nope/transfer").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({ "error": "no link named `nope`" }));
    f.stop().await;
}

#[tokio::test]
async fn pause_and_resume_flip_the_link() {
    let f = Fixture::start().await;
    let reply = f.post("/links/alpha/pause").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["paused"], true);
    assert_eq!(body["state"], "paused");
    assert!(f.link("alpha").is_paused());
    assert!(!f.link(QUOTED).is_paused());
    let metrics = f.get("/metrics").await.body;
    assert_eq!(sample(&metrics, "databay_link_paused{link=\"alpha\"}"), 1.0);

    let reply = f.post("/links/alpha/resume").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["paused"], false);
    assert_eq!(body["state"], "scheduled");
    assert!(!f.link("alpha").is_paused());

    assert_eq!(f.post("/links/nope/pause").await.status, 404);
    assert_eq!(f.post("/links/nope/resume").await.status, 404);
    f.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let f = Fixture::start().await;
    let reply = f.get("/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({ "error": "no route for GET /nope" }));

    let reply = f.get("/links/alpha/transfer").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    assert!(reply.json()["error"].is_string());

    let reply = f.post("/metrics").await;
    assert_eq!(reply.status, 405);
    assert!(reply.json()["error"].is_string());
    // Nothing ran.
    assert_eq!(f.link("alpha").stats().transfers_ok, 0);
    f.stop().await;
}

#[tokio::test]
async fn metrics_text_without_http() {
    let weird = "a\"b\\c\nd";
    let planner = Planner::new([link(weird, StaticInlet::values([1, 2]))]).expect("planner");
    let l = planner.link(weird).expect("link");
    for _ in 0..3 {
        l.transfer().await.expect("transfer");
    }
    l.pause();

    let text = metrics_text(&planner, true);
    check_exposition(&text);
    assert!(
        text.contains("# TYPE databay_records_in counter\n"),
        "{text}"
    );
    let label = "a\\\"b\\\\c\\nd";
    let ok = format!("databay_transfers_total{{link=\"{label}\",result=\"ok\"}}");
    assert_eq!(sample(&text, &ok), 3.0);
    let records = format!("databay_records_out_total{{link=\"{label}\"}}");
    assert_eq!(sample(&text, &records), 6.0);
    let paused = format!("databay_link_paused{{link=\"{label}\"}}");
    assert_eq!(sample(&text, &paused), 1.0);
    assert_eq!(
        check_histogram(
            &text,
            "databay_transfer_duration_seconds",
            &format!("link=\"{label}\"")
        ),
        3.0
    );
    assert_eq!(sample(&text, "databay_links"), 1.0);
    let pulled = format!(
        "databay_component_records_total{{link=\"{label}\",kind=\"inlet\",index=\"0\",component=\"StaticInlet\"}}"
    );
    assert_eq!(sample(&text, &pulled), 6.0);
    let pushes = format!(
        "databay_component_calls_total{{link=\"{label}\",kind=\"outlet\",index=\"0\",component=\"CollectOutlet\"}}"
    );
    assert_eq!(sample(&text, &pushes), 3.0);
    assert!(text.contains("# TYPE databay_transfer_duration_seconds histogram\n"));
    assert!(text.contains("# TYPE databay_link_paused gauge\n"));

    let empty = metrics_text(&Planner::new([]).expect("empty planner"), true);
    check_exposition(&empty);
    assert_eq!(sample(&empty, "databay_links"), 0.0);
    let count = check_histogram(&empty, "databay_daemon_transfer_duration_seconds", "");
    assert_eq!(count, 0.0);
}

#[tokio::test]
async fn link_histograms_are_an_option_daemon_wide_ones_are_not() {
    let planner = Planner::new([
        link("a", StaticInlet::values([1])),
        link("b", StaticInlet::values([1, 2])),
    ])
    .expect("planner");
    for (name, times) in [("a", 2), ("b", 3)] {
        let l = planner.link(name).expect("link");
        for _ in 0..times {
            l.transfer().await.expect("transfer");
        }
    }

    let off = metrics_text(&planner, false);
    check_exposition(&off);
    assert_eq!(per_link_buckets(&off), 0, "{off}");
    assert!(!off.contains("databay_transfer_duration_seconds"), "{off}");
    assert!(!off.contains("databay_schedule_lateness_seconds"), "{off}");
    let all = check_histogram(&off, "databay_daemon_transfer_duration_seconds", "");
    assert_eq!(all, 5.0);
    check_histogram(&off, "databay_daemon_schedule_lateness_seconds", "");
    let ok = r#"databay_transfers_total{link="b",result="ok"}"#;
    assert_eq!(sample(&off, ok), 3.0);
    assert_eq!(sample(&off, r#"databay_records_in_total{link="b"}"#), 6.0);

    let on = metrics_text(&planner, true);
    check_exposition(&on);
    assert_eq!(per_link_buckets(&on), 2 * 2 * (HISTOGRAM_BOUNDS.len() + 1));
    let a = check_histogram(&on, "databay_transfer_duration_seconds", r#"link="a""#);
    let b = check_histogram(&on, "databay_transfer_duration_seconds", r#"link="b""#);
    assert_eq!((a, b), (2.0, 3.0));
    check_histogram(&on, "databay_schedule_lateness_seconds", r#"link="b""#);
    let all = check_histogram(&on, "databay_daemon_transfer_duration_seconds", "");
    assert_eq!(all, a + b);
    check_histogram(&on, "databay_daemon_schedule_lateness_seconds", "");
    assert_eq!(sample(&on, ok), 3.0);
}

#[tokio::test]
async fn without_link_metrics_only_the_daemon_wide_families_are_there() {
    let planner = Planner::new([
        link("a", StaticInlet::values([1])),
        link("b", StaticInlet::values([1, 2])),
    ])
    .expect("planner");
    for (name, times) in [("a", 2), ("b", 3)] {
        let l = planner.link(name).expect("link");
        for _ in 0..times {
            l.transfer().await.expect("transfer");
        }
    }
    for histograms in [false, true] {
        let text = AdminState::new(planner.clone(), Arc::default())
            .with_link_series(false, histograms)
            .metrics_text()
            .expect("metrics text");
        check_exposition(&text);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            samples.iter().all(|l| !l.contains("link=\"")),
            "no series of one link: {text}"
        );
        assert_eq!(sample(&text, "databay_up"), 1.0);
        assert_eq!(sample(&text, "databay_links"), 2.0);
        let all = check_histogram(&text, "databay_daemon_transfer_duration_seconds", "");
        assert_eq!(all, 5.0);
        check_histogram(&text, "databay_daemon_schedule_lateness_seconds", "");
    }
    // On by default.
    let text = metrics_text(&planner, false);
    assert_eq!(
        sample(&text, r#"databay_transfers_total{link="b",result="ok"}"#),
        3.0
    );
}

#[tokio::test]
async fn daemon_wide_histograms_keep_what_gone_links_counted() {
    let planner = Planner::new([
        link("a", StaticInlet::values([1])),
        link("b", StaticInlet::values([1])),
    ])
    .expect("planner");
    let state = AdminState::new(planner.clone(), Arc::default());
    let scrape = || {
        let text = state.metrics_text().expect("metrics text");
        check_histogram(&text, "databay_daemon_transfer_duration_seconds", "")
    };
    let transfer = |name: &str| {
        let l = planner.link(name).expect("link");
        async move { l.transfer().await.expect("transfer") }
    };
    transfer("a").await;
    transfer("b").await;
    transfer("b").await;
    assert_eq!(scrape(), 3.0);

    // Removed: its two transfers stay counted.
    planner.remove_link("b").await.expect("remove b");
    assert_eq!(scrape(), 3.0);

    // Replaced under the same name: the new link starts from zero, the
    // old one's transfer stays counted.
    planner.remove_link("a").await.expect("remove a");
    planner
        .add_link(link("a", StaticInlet::values([1])))
        .await
        .expect("add a");
    transfer("a").await;
    assert_eq!(scrape(), 4.0);
    assert_eq!(
        sample(
            &state.metrics_text().expect("metrics text"),
            r#"databay_transfers_total{link="a",result="ok"}"#
        ),
        1.0
    );
}

/// `_bucket` lines of series that carry a `link` label.
fn per_link_buckets(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("_bucket{") && l.contains("link=\""))
        .count()
}

/// The text of a planner's links, as the endpoint would serve it.
fn metrics_text(planner: &Planner, link_histograms: bool) -> String {
    AdminState::new(planner.clone(), Arc::default())
        .with_link_histograms(link_histograms)
        .metrics_text()
        .expect("metrics text")
}

/// Links read beforehand, to encode values no transfer would produce, with
/// their histograms.
#[derive(Debug)]
struct Fixed(Vec<LinkMetrics>);

impl Collector for Fixed {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let all = DaemonHistograms::default().update(
            self.0
                .iter()
                .map(|l| (l.link.clone(), Totals::of_stats(&l.stats))),
        );
        let series = LinkSeries {
            counters: true,
            histograms: true,
        };
        encode_links(&mut encoder, &self.0, self.0.len(), &all, series)
    }
}

#[test]
fn histogram_buckets_become_cumulative() {
    let mut buckets = vec![0u64; HISTOGRAM_BOUNDS.len() + 1];
    buckets[0] = 2;
    buckets[3] = 1;
    buckets[HISTOGRAM_BOUNDS.len()] = 4;
    let h = link("h", StaticInlet::values([1]));
    let mut stats = h.stats();
    stats.duration.count = 7;
    stats.duration.sum_seconds = 42.5;
    stats.duration.buckets = buckets;
    let links = vec![LinkMetrics {
        link: h,
        label: "h".into(),
        paused: false,
        stats,
        nodes: Vec::new(),
        processors: Vec::new(),
    }];
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed(links)));
    let text = encode(&registry, 0).expect("encode");
    check_exposition(&text);
    let series =
        |le: &str| format!("databay_transfer_duration_seconds_bucket{{le=\"{le}\",link=\"h\"}}");
    assert_eq!(sample(&text, &series("0.0005")), 2.0);
    assert_eq!(sample(&text, &series("0.0025")), 2.0);
    assert_eq!(sample(&text, &series("0.005")), 3.0);
    assert_eq!(sample(&text, &series("10.0")), 3.0);
    assert_eq!(sample(&text, &series("+Inf")), 7.0);
    let sum = "databay_transfer_duration_seconds_sum{link=\"h\"}";
    assert_eq!(sample(&text, sum), 42.5);
    assert_eq!(
        check_histogram(&text, "databay_transfer_duration_seconds", r#"link="h""#),
        7.0
    );
    let all = "databay_daemon_transfer_duration_seconds";
    assert_eq!(sample(&text, &format!("{all}_bucket{{le=\"0.005\"}}")), 3.0);
    assert_eq!(check_histogram(&text, all, ""), 7.0);
    assert_eq!(sample(&text, &format!("{all}_sum")), 42.5);
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape_label("plain"), "plain");
    assert_eq!(escape_label("a\"b"), "a\\\"b");
    assert_eq!(escape_label("a\\b"), "a\\\\b");
    assert_eq!(escape_label("a\nb"), "a\\nb");
    assert_eq!(escape_label("ünï"), "ünï");
}

#[test]
fn timestamps_outside_rfc3339_are_null() {
    let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(rfc3339(t).as_deref(), Some("2023-11-14T22:13:20.123Z"));
    assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), None);
    let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
    assert_eq!(rfc3339(far), None);
}

/// A scraper that accepts gzip gets the same text compressed; one that
/// does not (or refuses it with `q=0`) gets plain text.
#[tokio::test]
async fn metrics_are_gzipped_for_clients_that_accept_it() {
    use std::io::Read as _;
    let f = Fixture::start().await;
    let raw = |accept: &'static str| async move {
        let mut stream = TcpStream::connect(f.addr).await.expect("connect");
        let head = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: {accept}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8(raw[..split].to_vec())
            .expect("UTF-8 head")
            .to_ascii_lowercase();
        (head, raw[split + 4..].to_vec())
    };
    let (head, body) = raw("gzip, deflate").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .expect("a gzip body");
    assert!(text.contains("databay_transfers_total"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (head, body) = raw("gzip;q=0, identity").await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(
        String::from_utf8(body)
            .expect("plain text")
            .contains("databay_transfers_total")
    );
    f.stop().await;
}

#[tokio::test]
async fn a_link_view_shows_its_stateful_processors() {
    let by_user =
        |r: &databay_core::Record| databay_core::stateful::key_text(r.payload.get("user"));
    let link = Link::builder("counting")
        .inlet(StaticInlet::values([
            json!({"user": "a"}),
            json!({"user": "b"}),
        ]))
        .processor(databay_core::stateful::count_final(by_user))
        .outlet(CollectOutlet::new())
        .every(Duration::from_secs(3600))
        .build()
        .expect("valid schedule");
    link.transfer().await.expect("transfer");
    let view = serde_json::to_value(super::views::LinkView::new(&link, None)).expect("json");
    let processors = &view["processors"];
    assert_eq!(processors[0]["index"], 0, "{view}");
    assert_eq!(
        processors[0]["gauges"][0],
        json!({"name": "keys", "value": 2})
    );
}

/// Reads one "line" of 6 bytes a pull, counting them.
struct CountingInlet;

#[async_trait]
impl Inlet for CountingInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        databay_core::bytes::add(6);
        Ok(Pull::value("line"))
    }
}

/// Writes each record as JSON plus a newline, counting what it wrote.
struct CountingOutlet;

#[async_trait]
impl databay_core::Outlet for CountingOutlet {
    async fn push(
        &mut self,
        records: &[databay_core::Record],
        _update: &Update,
    ) -> Result<(), BoxError> {
        for r in records {
            databay_core::bytes::add(serde_json::to_vec(&r.payload)?.len() as u64 + 1);
        }
        Ok(())
    }
}

#[tokio::test]
async fn bytes_are_metrics_and_link_view_figures_of_the_components_that_count_them() {
    let link = Link::builder("bytes")
        .inlet(CountingInlet)
        .inlet(StaticInlet::values([1]))
        .outlet(CountingOutlet)
        .outlet(CollectOutlet::new())
        .every(Duration::from_secs(3600))
        .build()
        .expect("valid schedule");
    let planner = Planner::new([link.clone()]).expect("planner");
    for _ in 0..2 {
        link.transfer().await.expect("transfer");
    }

    let text = metrics_text(&planner, false);
    check_exposition(&text);
    assert!(
        text.contains("# TYPE databay_component_received_bytes counter\n"),
        "{text}"
    );
    let received = r#"databay_component_received_bytes_total{link="bytes",kind="inlet",index="0",component="CountingInlet"}"#;
    assert_eq!(sample(&text, received), 12.0);
    // Each transfer writes `"line"\n` and `1\n`: 7 + 2 bytes.
    let sent = r#"databay_component_sent_bytes_total{link="bytes",kind="outlet",index="0",component="CountingOutlet"}"#;
    assert_eq!(sample(&text, sent), 18.0);
    // Components that do not count bytes have no series (not a 0).
    for absent in ["StaticInlet", "CollectOutlet"] {
        assert!(
            !text
                .lines()
                .any(|l| l.contains("_bytes_total{") && l.contains(absent)),
            "{absent} counts no bytes:\n{text}"
        );
    }

    let view = serde_json::to_value(super::views::LinkView::new(&link, None)).expect("json");
    let bytes: Vec<&Value> = view["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| &c["bytes"])
        .collect();
    assert_eq!(
        bytes,
        [&json!(12), &Value::Null, &json!(18), &Value::Null],
        "{view}"
    );
}
