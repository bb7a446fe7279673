//! Broker inlets through the daemon, killed between pull and commit: a
//! link's outlet (an `exec` sink) has taken a batch and not acknowledged
//! it when the daemon gets SIGKILL; the restarted daemon gets the same
//! messages again from the broker, because none was acknowledged. One
//! test per broker, each on a key, queue, stream or topic of its own, on
//! the machine's test servers (`bash .ci/services`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// The sink: says it is `up` (the link's inlets started before it, so
/// their subscriptions exist); on its first run it takes one batch and
/// never answers (leaving `held` to say so); afterwards it appends each
/// batch to `out.ndjson` and acknowledges it.
const SINK: &str = r#"
import os, sys
with open("up", "a") as f:
    f.write("%d\n" % os.getpid())
batch = []
for line in sys.stdin:
    if line.strip():
        batch.append(line)
        continue
    if not os.path.exists("held"):
        with open("held", "w") as f:
            f.write("%d\n" % len(batch))
        batch = []
        continue
    with open("out.ndjson", "a") as f:
        f.writelines(batch)
    print('{"ok": true}', flush=True)
    batch = []
"#;

const MESSAGES: usize = 5;

fn daemon_config(inlet: &str) -> String {
    format!(
        r#"
[daemon]
shutdown_grace = "5s"

[admin]
enabled = false

[[link]]
name = "redeliver"
every = "200ms"

  [[link.inlet]]
{inlet}

  [[link.outlet]]
  type = "exec"
  command = ["python3", "-u", "sink.py"]
  ack_timeout = "60s"
"#
    )
}

/// Publishes `MESSAGES` records `{"n": 0..}` through `databay once`:
/// the NDJSON file inlet into `outlet`.
fn publish(dir: &Path, outlet: &str) {
    let lines: String = (0..MESSAGES).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    fs::write(dir.join("messages.ndjson"), lines).unwrap();
    fs::write(
        dir.join("publish.toml"),
        format!(
            r#"
[admin]
enabled = false

[[link]]
name = "publish"
every = "1h"

  [[link.inlet]]
  type = "file"
  path = "messages.ndjson"
  json = true

  [[link.outlet]]
{outlet}
"#
        ),
    )
    .unwrap();
    let mut cmd = databay();
    cmd.args(["once", "publish.toml", "--until-exhausted"])
        .current_dir(dir);
    let out = output(cmd);
    assert!(
        out.status.success(),
        "publishing failed:\n{}",
        text(&out.stderr)
    );
}

/// Runs the link on `inlet`, publishes through `outlet` once it is up
/// (a subscription must exist before messages are published to it) and
/// until the sink holds a batch, kills the daemon, runs it again, and
/// checks that every message comes again.
fn killed_between_pull_and_commit(inlet: &str, outlet: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("sink.py"), SINK).unwrap();
    fs::write(dir.path().join("redeliver.toml"), daemon_config(inlet)).unwrap();
    let held = dir.path().join("held");
    let out = dir.path().join("out.ndjson");

    let mut first = Daemon::start(dir.path(), &["run", "redeliver.toml"]);
    let up = dir.path().join("up");
    eventually("the link started", || up.exists().then_some(()));
    // The broker's answer to a subscription may trail the start a little.
    std::thread::sleep(Duration::from_millis(300));
    assert!(first.running(), "stderr:\n{}", first.stderr());
    publish(dir.path(), outlet);
    // The sink creates the file, then writes the count: wait for both.
    let taken: usize = eventually("the sink holding a batch", || {
        fs::read_to_string(&held).ok()?.trim().parse().ok()
    });
    assert!(taken > 0, "the held batch is empty");
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    assert!(!out.exists(), "nothing was acknowledged before the kill");

    let mut second = Daemon::start(dir.path(), &["run", "redeliver.toml"]);
    let got = eventually("every message delivered after the restart", || {
        let got: Vec<Value> = lines(&out)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (got.len() >= MESSAGES).then_some(got)
    });
    assert_eq!(second.stop(), Some(0), "stderr:\n{}", second.stderr());
    let mut numbers: Vec<u64> = got.iter().filter_map(|v| v["n"].as_u64()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers,
        (0..MESSAGES as u64).collect::<Vec<_>>(),
        "the messages the killed daemon held came again: {got:?}"
    );
}

/// A name no other test uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("databay_e2e_{tag}_{}_{nanos}", std::process::id())
}

#[test]
fn a_redis_stream_redelivers_what_a_killed_daemon_held() {
    let key = unique("redis");
    killed_between_pull_and_commit(
        &format!(
            "  type = \"redis\"\n  url = \"{}\"\n  mode = \"stream\"\n  key = \"{key}\"\n  start_id = \"0\"",
            databay_component::redis::testing::url()
        ),
        &format!(
            "  type = \"redis\"\n  url = \"{}\"\n  mode = \"stream\"\n  key = \"{key}\"",
            databay_component::redis::testing::url()
        ),
    );
    let _ = Command::new("redis-cli").args(["DEL", &key]).output();
}

#[test]
fn an_amqp_queue_redelivers_what_a_killed_daemon_held() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let queue = rt.block_on(databay_component::amqp::testing::TestQueue::declare("e2e"));
    let url = databay_component::amqp::testing::url();
    killed_between_pull_and_commit(
        &format!(
            "  type = \"amqp\"\n  url = \"{url}\"\n  queue = \"{}\"",
            queue.name
        ),
        &format!(
            "  type = \"amqp\"\n  url = \"{url}\"\n  exchange = \"\"\n  routing_key = \"{}\"",
            queue.name
        ),
    );
    assert_eq!(
        rt.block_on(queue.ready()),
        0,
        "every message was acknowledged"
    );
    let _inside = rt.enter();
    drop(queue);
}

#[test]
fn a_jetstream_consumer_redelivers_what_a_killed_daemon_held() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stream = unique("nats").to_uppercase();
    let url = databay_component::nats::testing::url();
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
    killed_between_pull_and_commit(
        &format!(
            // A message the killed daemon took comes again once
            // `ack_wait` passed without its acknowledgement.
            "  type = \"nats\"\n  url = \"{url}\"\n  mode = \"jetstream\"\n  stream = \"{stream}\"\n  durable = \"d\"\n  ack_wait = \"2s\""
        ),
        &format!(
            "  type = \"nats\"\n  url = \"{url}\"\n  mode = \"jetstream\"\n  subject = \"{stream}.n\""
        ),
    );
    rt.block_on(async {
        let client = databay_component::nats::testing::client().await;
        let _ = client
            .request(format!("$JS.API.STREAM.DELETE.{stream}"), Vec::new().into())
            .await;
    });
}

#[test]
fn an_mqtt_persistent_session_redelivers_what_a_killed_daemon_held() {
    let (host, port) = databay_component::mqtt::testing::addr();
    let topic = unique("mqtt");
    killed_between_pull_and_commit(
        &format!(
            "  type = \"mqtt\"\n  host = \"{host}\"\n  port = {port}\n  client_id = \"{topic}\"\n  clean_session = false\n  qos = 1\n  topic = \"{topic}\""
        ),
        &format!(
            "  type = \"mqtt\"\n  host = \"{host}\"\n  port = {port}\n  client_id = \"{topic}-pub\"\n  qos = 1\n  topic = \"{topic}\""
        ),
    );
}
