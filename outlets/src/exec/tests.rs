//! Tests of [`ExecOutlet`] with real child processes (`python3` and `sh`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use databay_component::Registry;
use databay_component::exec::CommandSpec;
use databay_component::testing::build;
use databay_core::testing::{OutletTester, StaticInlet};
use databay_core::{Link, Outlet, Record, Update};
use serde_json::{Value, json};

use super::ExecOutlet;

fn update() -> Update {
    Update::new(["exec"], 0)
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exec/example.py")
}

/// The README's sink, writing to `out`.
fn example(out: &Path) -> CommandSpec {
    CommandSpec::new(
        "python3",
        [
            "-u".to_owned(),
            example_path().display().to_string(),
            out.display().to_string(),
        ],
    )
}

fn python(script: &str) -> CommandSpec {
    CommandSpec::new("python3", ["-u", "-c", script])
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until a child has written a first line to `path`.
fn wait_for_line(path: &Path) {
    read_pid(path);
}

/// The pid a child wrote to `path`, once it has.
fn read_pid(path: &Path) -> String {
    for _ in 0..2000 {
        if let Ok(pid) = std::fs::read_to_string(path)
            && pid.ends_with('\n')
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the child never wrote {}", path.display());
}

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

async fn push_err(outlet: &mut ExecOutlet, values: &[Value]) -> String {
    match outlet.push(&records(values), &update()).await {
        Ok(()) => panic!("the push of {values:?} succeeded"),
        Err(e) => e.to_string(),
    }
}

/// A sink acknowledging each batch after appending it to `out`; on the
/// first run (counted in `runs`) it behaves as `first_run` says instead:
/// `crash` exits 3 before answering, `garble` answers nonsense, `hang`
/// never answers.
fn sink_failing_first(out: &Path, runs: &Path, first_run: &str) -> CommandSpec {
    let script = format!(
        r#"
import json, sys
with open({runs:?}, "a") as f: f.write("x\n")
first = open({runs:?}).read().count("x") == 1
batch = []
for line in sys.stdin:
    if line.strip():
        batch.append(json.loads(line)); continue
    if first and {first_run:?} == "crash":
        print("crashed on purpose", file=sys.stderr); sys.exit(3)
    if first and {first_run:?} == "hang":
        batch = []; continue
    if first and {first_run:?} == "garble":
        print("hello", flush=True); batch = []; continue
    with open({out:?}, "a") as f: f.writelines(json.dumps(r) + "\n" for r in batch)
    print('{{"ok": true}}', flush=True); batch = []
"#,
        runs = runs.display().to_string(),
        out = out.display().to_string(),
    );
    python(&script)
}

#[tokio::test]
async fn a_link_round_trips_through_the_readme_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let link = Link::builder("exec_round_trip")
        .inlet(StaticInlet::values([
            json!({"id": 1}),
            json!({"id": 2, "text": "a\nb"}),
        ]))
        .outlet(ExecOutlet::new(example(&out)))
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap();
    for _ in 0..2 {
        assert_eq!(link.transfer().await.unwrap().records_out, 2);
    }
    // Acknowledged means written: no need to wait for shutdown.
    let written = [json!({"id": 1}), json!({"id": 2, "text": "a\nb"})];
    assert_eq!(lines(&out), [&written[..], &written[..]].concat());
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn the_readme_quotes_the_python_example() {
    let example = std::fs::read_to_string(example_path()).unwrap();
    assert!(include_str!("README.md").contains(&format!("```python\n{example}```")));
    let lines = example
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    assert!(
        lines.count() <= 12,
        "the example is meant to be about ten lines"
    );
}

#[tokio::test]
async fn passes_the_outlet_tester() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    OutletTester::new(|| ExecOutlet::new(example(&out)))
        .run()
        .await
        .unwrap();
    assert_eq!(lines(&out).len(), 12);
}

#[tokio::test]
async fn a_refusal_fails_the_push_with_the_commands_message_and_the_command_keeps_running() {
    let script = r#"
import json, sys
batch = []
for line in sys.stdin:
    if line.strip():
        batch.append(json.loads(line)); continue
    print("checking %d records" % len(batch), file=sys.stderr)
    if any(r.get("bad") for r in batch):
        print(json.dumps({"ok": False, "error": "record %d is bad" % batch.index({"bad": True})}), flush=True)
    else:
        print(json.dumps({"ok": True}), flush=True)
    batch = []
"#;
    let mut outlet = ExecOutlet::new(python(script));
    outlet.on_start().await.unwrap();
    let err = push_err(&mut outlet, &[json!({"n": 1}), json!({"bad": true})]).await;
    assert!(
        err.ends_with("refused the batch of 2 records: record 1 is bad"),
        "{err}"
    );
    outlet
        .push(&records(&[json!({"n": 2})]), &update())
        .await
        .unwrap();
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refusal_through_a_link_fails_the_transfer() {
    let outlet = ExecOutlet::new(python(
        "import sys\nfor line in sys.stdin:\n    if not line.strip(): print('{\"ok\": false, \"error\": \"disk full\"}', flush=True)",
    ));
    let link = Link::builder("exec_nack")
        .inlet(StaticInlet::values([json!(1), json!(2), json!(3)]))
        .outlet(outlet)
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap();
    let err = link.transfer().await.unwrap_err().to_string();
    assert!(
        err.contains("refused the batch of 3 records: disk full"),
        "{err}"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn a_command_that_dies_fails_the_push_and_is_restarted_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = (dir.path().join("out"), dir.path().join("runs"));
    let mut outlet = ExecOutlet::new(sink_failing_first(&out, &runs, "crash"));
    outlet.on_start().await.unwrap();
    let err = push_err(&mut outlet, &[json!({"lost": false})]).await;
    assert!(
        err.ends_with("exited with exit status: 3; its last stderr lines: crashed on purpose"),
        "{err}"
    );
    // The link would push the failed batch again: it arrives.
    outlet
        .push(&records(&[json!({"lost": false})]), &update())
        .await
        .unwrap();
    assert_eq!(lines(&out), [json!({"lost": false})]);
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "x\nx\n");
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_garbled_answer_fails_the_push_and_restarts_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = (dir.path().join("out"), dir.path().join("runs"));
    let mut outlet = ExecOutlet::new(sink_failing_first(&out, &runs, "garble"));
    let err = push_err(&mut outlet, &[json!(1)]).await;
    assert!(
        err.contains("answered the batch with \"hello\", not {\"ok\": true} or {\"ok\": false, \"error\": \"...\"}"),
        "{err}"
    );
    outlet.push(&records(&[json!(2)]), &update()).await.unwrap();
    assert_eq!(lines(&out), [json!(2)]);
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "x\nx\n");
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_push_cut_short_restarts_the_command_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = (dir.path().join("out"), dir.path().join("runs"));
    let mut outlet = ExecOutlet::new(sink_failing_first(&out, &runs, "hang"));
    outlet.on_start().await.unwrap();
    // The first run must be the one that hangs, not be killed before it counts itself.
    wait_for_line(&runs);
    // As the link's own outlet timeout does: the push is dropped.
    let batch = records(&[json!(1)]);
    let cut =
        tokio::time::timeout(Duration::from_millis(300), outlet.push(&batch, &update())).await;
    assert!(cut.is_err(), "the first run answered: {cut:?}");
    outlet.push(&batch, &update()).await.unwrap();
    assert_eq!(lines(&out), [json!(1)]);
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "x\nx\n");
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn no_answer_within_the_ack_timeout_kills_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // Never answers (nor reads: a small batch fits in the pipe).
    let script = format!("echo $$ > '{}'; exec sleep 600", pid_file.display());
    let mut outlet =
        ExecOutlet::new(CommandSpec::shell(script)).ack_timeout(Duration::from_millis(300));
    outlet.on_start().await.unwrap();
    let pid = read_pid(&pid_file);
    let err = push_err(&mut outlet, &[json!(1)]).await;
    assert!(
        err.ends_with("did not acknowledge the batch within 300ms; it was killed"),
        "{err}"
    );
    assert!(
        !Path::new("/proc").join(pid.trim()).exists(),
        "{pid} still runs"
    );
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_command_that_stops_reading_is_killed_after_the_ack_timeout() {
    // A batch far larger than the pipe, to a command that never reads.
    let mut outlet = ExecOutlet::new(CommandSpec::new("sleep", ["600"]))
        .ack(false)
        .ack_timeout(Duration::from_millis(300));
    outlet.on_start().await.unwrap();
    let big = vec![json!("x".repeat(1000)); 1000];
    let err = push_err(&mut outlet, &big).await;
    assert_eq!(
        err,
        "`sleep 600` did not read the batch within 300ms; it was killed"
    );
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn without_ack_batches_are_written_and_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut outlet = ExecOutlet::new(CommandSpec::new(
        "sh",
        ["-c".to_owned(), format!("cat > '{}'", out.display())],
    ))
    .ack(false);
    outlet.on_start().await.unwrap();
    outlet
        .push(&records(&[json!({"a": 1}), json!("two")]), &update())
        .await
        .unwrap();
    outlet.push(&records(&[json!(3)]), &update()).await.unwrap();
    // Shutdown closes stdin; `cat` finishes.
    outlet.on_shutdown().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "{\"a\":1}\n\"two\"\n\n3\n\n"
    );
}

#[tokio::test]
async fn metadata_mode_writes_payload_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let mut outlet = ExecOutlet::new(example(&out)).metadata(true);
    let record = Record::new(json!({"id": 1})).with_meta("collection", "users");
    outlet.push(&[record], &update()).await.unwrap();
    assert_eq!(
        lines(&out),
        [json!({"payload": {"id": 1}, "metadata": {"collection": "users"}})]
    );
    outlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_program_fails_on_start_naming_it() {
    let mut outlet = ExecOutlet::new(CommandSpec::new("/nonexistent/databay-sink", ["a b"]));
    let err = outlet.on_start().await.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot start `/nonexistent/databay-sink \"a b\"`: "),
        "{err}"
    );
}

#[test]
fn option_mistakes_point_at_their_option() {
    let mut registry = Registry::new();
    super::register(&mut registry);
    let err = |options: &str| build(registry.outlet_type("exec"), options).err().unwrap();
    assert!(err("command = [\"cat\"]\nack_timeout = \"0s\"").contains("`ack_timeout`"));
    assert!(err("command = [\"cat\"]\nshell = true").contains("`command`"));
    assert!(err("command = [\"cat\"]\nack = \"yes\"").contains("boolean"));
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_acknowledged_batches() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let link = Link::builder("exec_bytes")
        .inlet(StaticInlet::values([json!({"id": 1}), json!("ab")]))
        .outlet(ExecOutlet::new(example(&out)))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(lines(&out), [json!({"id": 1}), json!("ab")]);
    // Each line with its newline, and the blank line ending the batch.
    assert_eq!(link.node_stats()[1].bytes, Some(9 + 5 + 1));
    assert!(link.shutdown().await.is_empty());
}
