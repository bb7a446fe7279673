//! Runs every example under `examples/` for real and checks what it prints.
//!
//! The examples are built once (`cargo build --examples`, the paths of the
//! executables read from cargo's JSON messages) and their binaries run
//! directly, in parallel, each with a time limit. Every example stops by
//! itself within a few seconds; stdout carries what the example prints and
//! stderr its logs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: an example runs for at most 4 s, but the machine may be busy.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Builds the examples once; returns each example's executable by name.
fn executables() -> &'static HashMap<String, PathBuf> {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "-p", "databay", "--examples"])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let output = cargo.output().expect("cannot run cargo");
        assert!(
            output.status.success(),
            "building the examples failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut found = HashMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let is_example = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "example"));
            if let (true, Some(name), Some(exe)) = (
                message["reason"] == "compiler-artifact" && is_example,
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                found.insert(name.to_owned(), PathBuf::from(exe));
            }
        }
        found
    })
}

fn example(name: &str) -> Command {
    let exe = executables()
        .get(name)
        .unwrap_or_else(|| panic!("cargo built no example called `{name}`"));
    let mut command = Command::new(exe);
    command
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Waits for `child` to exit, killing it after [`TIME_LIMIT`].
fn wait(child: &mut Child, name: &str) -> ExitStatus {
    let deadline = Instant::now() + TIME_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the example") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example `{name}` did not stop within {TIME_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

struct Run {
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs example `name` with `args` to its end and checks it succeeded and
/// drove a planner.
fn run(name: &str, args: &[&Path]) -> Run {
    let run = run_unplanned(name, args);
    // Logs go to stderr, so that stdout holds only what the example prints.
    assert!(
        run.stderr.contains("planner started") && run.stderr.contains("planner stopped"),
        "example `{name}` logged no planner start and stop:\n{}",
        run.stderr
    );
    run
}

/// Runs example `name`, which drives its link by hand (`transfer`,
/// `flush`) rather than through a planner, to its end.
fn run_unplanned(name: &str, args: &[&Path]) -> Run {
    // Build (once, for every test) before starting the clock.
    let mut command = example(name);
    let started = Instant::now();
    let mut child = command
        .args(args)
        .spawn()
        .expect("cannot start the example");
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait(&mut child, name);
    let run = Run {
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    };
    assert!(
        status.success(),
        "example `{name}` failed ({status}):\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_secs(6),
        "example `{name}` ran for {:?}; examples must stay short",
        run.elapsed
    );
    run
}

/// Splits `tag.N rest` into `N` and `rest`.
fn split_update<'a>(line: &'a str, tag: &str) -> Option<(u64, &'a str)> {
    let rest = line.strip_prefix(tag)?.strip_prefix('.')?;
    let (index, rest) = rest.split_once(' ')?;
    Some((index.parse().ok()?, rest))
}

/// Checks lines `tag.0 x`, `tag.1 y`, ... each with a random int in `[0, 100]`.
fn assert_random_int_lines(run: &Run, tag: &str, at_least: usize) {
    let lines = run.lines();
    assert!(
        lines.len() >= at_least,
        "expected at least {at_least} lines:\n{}",
        run.stdout
    );
    for (i, line) in lines.iter().enumerate() {
        let (index, value) =
            split_update(line, tag).unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(index, i as u64, "updates count up from 0: {line:?}");
        let value: i64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not an integer: {line:?}"));
        assert!((0..=100).contains(&value), "out of range: {line:?}");
    }
}

#[test]
fn basic_inlet_prints_one_random_int_per_transfer() {
    let run = run("basic_inlet", &[]);
    // Transfers at 0, 1 and 2 s.
    assert_random_int_lines(&run, "random_ints", 3);
}

#[test]
fn basic_outlet_prints_update_and_payload() {
    let run = run("basic_outlet", &[]);
    assert_random_int_lines(&run, "print_outlet", 3);
}

#[test]
fn intermediate_file_outlet_writes_the_ints_to_the_metadata_filepath() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let run = run("intermediate_file_outlet", &[dir.path()]);
    let lines = run.lines();
    let expected_path = dir.path().join("random_ints.txt");
    assert_eq!(
        lines.first().copied(),
        Some(format!("file: {}", expected_path.display()).as_str()),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(&expected_path).expect("the example wrote its file");
    let ints: Vec<i64> = written
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("not an int: {l:?}")))
        .collect();
    // Transfers every 0.5 s for 2.2 s.
    assert!(ints.len() >= 4, "too few lines written:\n{written}");
    assert!(ints.iter().all(|i| (0..=100).contains(i)), "{written}");
    assert_eq!(lines[1..].join("\n") + "\n", written);
    assert!(
        !dir.path().join("default_output.txt").exists(),
        "every record carried FileOutlet.FILEPATH; the default path must stay unused"
    );
}

#[test]
fn basic_metadata_prints_only_records_of_the_inlet_that_asks_for_it() {
    let run = run("basic_metadata", &[]);
    let lines = run.lines();
    assert!(lines.len() >= 4, "one line per 0.5 s:\n{}", run.stdout);
    for (i, line) in lines.iter().enumerate() {
        let (index, record) = split_update(line, "should_print_metadata")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(index, i as u64, "{line:?}");
        let payload = record
            .strip_prefix("Record(payload=")
            .and_then(|r| r.strip_suffix(", metadata={\"ConditionalPrintOutlet.SHOULD_PRINT\": true, \"__inlet__\": \"random_int_inlet_on\"})"))
            .unwrap_or_else(|| panic!("not a record of the `on` inlet: {line:?}"));
        assert!(payload.parse::<i64>().is_ok(), "{line:?}");
    }
}

/// `+0.501s async.0 produced:20` -> (0.501, "async.0", "produced:20").
fn timed(line: &str) -> Option<(f64, &str, &str)> {
    let (time, rest) = line.strip_prefix('+')?.split_once("s ")?;
    let (update, event) = rest.split_once(' ')?;
    Some((time.parse().ok()?, update, event))
}

#[test]
fn basic_asynchronous_overlaps_the_waits_of_inlets_and_outlet() {
    let run = run("basic_asynchronous", &[]);
    for update in ["async.0", "async.1"] {
        let events: Vec<(f64, &str)> = run
            .lines()
            .into_iter()
            .filter_map(timed)
            .filter(|(_, u, _)| *u == update)
            .map(|(t, _, e)| (t, e))
            .collect();
        let produced: Vec<f64> = events
            .iter()
            .filter(|(_, e)| e.starts_with("produced:"))
            .map(|(t, _)| *t)
            .collect();
        let consumed: Vec<f64> = events
            .iter()
            .filter(|(_, e)| e.starts_with("consumed:"))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(produced.len(), 3, "three inlets:\n{}", run.stdout);
        assert_eq!(consumed.len(), 3, "three records:\n{}", run.stdout);
        let spread = |ts: &[f64]| {
            ts.iter().copied().fold(f64::MIN, f64::max)
                - ts.iter().copied().fold(f64::MAX, f64::min)
        };
        assert!(
            spread(&produced) < 0.1,
            "{update}: the inlets must finish together:\n{}",
            run.stdout
        );
        assert!(
            produced.iter().all(|t| (0.45..0.8).contains(t)),
            "{update}: each inlet waits 0.5 s, concurrently:\n{}",
            run.stdout
        );
        assert!(spread(&consumed) < 0.1, "{update}:\n{}", run.stdout);

        let took: f64 = run
            .lines()
            .into_iter()
            .find_map(|l| l.strip_prefix(&format!("{update} done: transfer took ")))
            .and_then(|t| t.strip_suffix('s'))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no transfer time for {update}:\n{}", run.stdout));
        assert!(
            (0.95..1.3).contains(&took),
            "{update} took {took}s; expected about 1 s (3 s if run in sequence)"
        );
    }
}

#[test]
fn buffers_hold_release_and_flush_on_shutdown() {
    let run = run("buffers", &[]);
    let lines = run.lines();
    let expect_in_order = [
        "buffers.0 inlet produced 4 records: [1, 2, 3, 4]",
        "buffers.0 buffer holds 4 records",
        "buffers.1 inlet produced 4 records: [5, 6, 7, 8]",
        "buffers.1 buffer holds 8 records",
        "buffers.2 inlet produced 3 records: [9, 10, 11]",
        "buffers.2 buffer released 11 records (count threshold reached)",
        "buffers.2 outlet received 11 records: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]",
        "buffers.3 inlet produced 2 records: [12, 13]",
        "buffers.3 buffer holds 2 records",
    ];
    assert_eq!(
        lines.get(..expect_in_order.len()),
        Some(&expect_in_order[..]),
        "\n{}",
        run.stdout
    );

    // The time threshold fires on a wake-up of its own, between transfers:
    // an update that pulls nothing.
    let timer = lines
        .iter()
        .position(|l| l.ends_with(" buffer released 2 records (time threshold reached)"))
        .unwrap_or_else(|| panic!("no time-threshold release:\n{}", run.stdout));
    let timer_update = lines[timer]
        .split_once(' ')
        .map(|(u, _)| u)
        .unwrap_or_default();
    assert_eq!(
        lines[timer + 1],
        format!("{timer_update} outlet received 2 records: [12, 13]")
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with(&format!("{timer_update} inlet produced"))),
        "{timer_update} must be a timer wake-up, not a transfer:\n{}",
        run.stdout
    );

    // The last record is still held at shutdown; the flush delivers it.
    let produced_last = lines
        .iter()
        .position(|l| l.ends_with(" inlet produced 1 record: [14]"))
        .unwrap_or_else(|| panic!("record 14 never produced:\n{}", run.stdout));
    assert!(produced_last > timer, "\n{}", run.stdout);
    let tail: Vec<&str> = lines[lines.len() - 3..]
        .iter()
        .map(|l| l.split_once(' ').map_or(*l, |(_, rest)| rest))
        .collect();
    assert_eq!(
        tail,
        [
            "buffer released 1 record (flushed on shutdown)",
            "outlet received 1 record: [14]",
            "14 records, delivered 14, lost 0",
        ],
        "\n{}",
        run.stdout
    );
}

/// Ctrl-C stops an example early, and gracefully.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_an_example_gracefully() {
    let mut child = example("basic_inlet")
        .spawn()
        .expect("cannot start the example");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("read the first transfer");
    assert!(first.starts_with("random_ints.0 "), "{first:?}");
    // The example would run for 2.5 s; interrupt it well before.
    thread::sleep(Duration::from_millis(200));
    let interrupted = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(kill.success());
    let rest = drain(stdout);
    let status = wait(&mut child, "basic_inlet");
    let stopped_after = interrupted.elapsed();
    let stderr = stderr.join().expect("stderr reader");
    assert!(status.success(), "{status}:\n{stderr}");
    assert!(
        stopped_after < Duration::from_millis(1500),
        "took {stopped_after:?} to stop after Ctrl-C"
    );
    assert!(stderr.contains("Ctrl-C received"), "{stderr}");
    assert!(stderr.contains("planner stopped"), "{stderr}");
    let _ = rest.join();
}

#[test]
fn stateful_running_count_carries_counts_across_transfers() {
    let run = run_unplanned("stateful_running_count", &[]);
    assert_eq!(
        run.lines(),
        [
            "running_count.0 a 1",
            "running_count.0 b 1",
            "running_count.0 a 2",
            "running_count.1 b 2",
            "running_count.1 c 1",
            "running_count.2 a 3",
        ]
    );
}

#[test]
fn stateful_sessions_summarise_and_forget_finished_sessions() {
    let run = run_unplanned("stateful_sessions", &[]);
    assert_eq!(
        run.lines(),
        [
            "sessions.1 ada {\"duration\":40,\"event_count\":3}",
            "sessions.2 bob {\"duration\":25,\"event_count\":2}",
            "live sessions: 0",
        ]
    );
}

#[test]
fn stateful_statistics_come_out_at_the_end_of_the_stream() {
    let run = run_unplanned("stateful_statistics", &[]);
    assert_eq!(
        run.lines(),
        [
            "statistics.3 humidity {\"sum\":152.0,\"count\":3,\"min\":40.0,\"max\":61.0}",
            "statistics.3 temperature {\"sum\":83.0,\"count\":4,\"min\":18.0,\"max\":23.5}",
        ]
    );
}

#[test]
fn stateful_word_count_counts_each_word() {
    let run = run_unplanned("stateful_word_count", &[]);
    assert_eq!(
        run.lines(),
        [
            "word_count.1 a 3",
            "word_count.1 is 2",
            "word_count.1 rose 3"
        ]
    );
}

#[test]
fn stateful_joins_inner_left_and_running() {
    let run = run_unplanned("stateful_joins", &[]);
    // Sides in the order of the join's `sides`; each payload's keys as
    // the inlet wrote them.
    let ada = "\"users\":{\"user\":\"ada\",\"name\":\"Ada\"}";
    let order = "\"orders\":{\"user\":\"ada\",\"total\":5}";
    let bob = "{\"users\":{\"user\":\"bob\",\"name\":\"Bob\"},\"orders\":null}";
    assert_eq!(
        run.lines(),
        [
            format!("inner   inner.1 {{{ada},{order}}}"),
            format!("left    left.3 {{{ada},{order}}}"),
            format!("left    left.3 {bob}"),
            format!("running running.0 {{{ada},\"orders\":null}}"),
            format!("running running.1 {bob}"),
            format!("running running.1 {{{ada},{order}}}"),
            format!("running running.2 {{{ada},{order}}}"),
        ]
    );
}

#[test]
fn stateful_collect_emits_full_lists_and_on_timeout_between_transfers() {
    let run = run("stateful_collect", &[]);
    let lines = run.lines();
    let fast_full = lines
        .iter()
        .filter(|l| l.contains(" fast 10 readings"))
        .count();
    assert!(fast_full >= 3, "{}", run.stdout);
    let slow: Vec<&&str> = lines.iter().filter(|l| l.contains(" slow ")).collect();
    assert_eq!(slow.len(), 1, "{}", run.stdout);
    assert!(slow[0].contains("slow 1 readings"), "{}", run.stdout);
    // Emitted by its 5 s timeout, not by the shutdown flush that comes last.
    assert!(!lines[lines.len() - 2].contains("slow"), "{}", run.stdout);
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("lists emitted: ")),
        "{}",
        run.stdout
    );
}

#[test]
fn stateful_sliding_window_expires_on_time_and_forgets_the_sensor() {
    let run = run("stateful_sliding_window", &[]);
    assert_eq!(
        run.lines(),
        [
            "sum 1 (a reading)",
            "sum 3 (a reading)",
            "sum 6 (a reading)",
            "sum 5 (expired)",
            "sum 3 (expired)",
            "sum 0 (expired)",
            "live sensors: 0",
        ]
    );
}

/// The WebSocket source: a real server on loopback, the stream bridged
/// with `batch_async`; every message once, in order, and the example stops
/// when the server closes the stream.
#[test]
fn websocket_source_prints_every_message_and_stops_at_the_close() {
    let run = run("websocket_source", &[]);
    let got: Vec<&str> = run
        .lines()
        .iter()
        .map(|line| split_update(line, "websocket").map_or(*line, |(_, payload)| payload))
        .collect();
    let want: Vec<String> = (0..10).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(got, want, "stderr:\n{}", run.stderr);
}
