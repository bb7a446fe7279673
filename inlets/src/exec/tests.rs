//! Tests of [`ExecInlet`] with real child processes (`sh` and `python3`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use databay_component::exec::CommandSpec;
use databay_component::testing::build;
use databay_component::{BuildContext, Registry};
use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{BoxError, Inlet, Link, Pull, Update};
use serde_json::{Value, json};

use super::{ExecInlet, ExecMode, LineFormat};

fn update() -> Update {
    Update::new(["exec"], 0)
}

fn python(script: &str) -> CommandSpec {
    CommandSpec::new("python3", ["-u", "-c", script])
}

fn payloads(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

async fn pull_err(inlet: &mut ExecInlet) -> String {
    match inlet.pull(&update()).await {
        Ok(pull) => panic!("expected an error, got {:?}", payloads(&pull)),
        Err(e) => e.to_string(),
    }
}

/// Whether process `pid` still exists (a reaped child does not).
fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

fn read_pid(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            && pid.ends_with('\n')
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the child never wrote {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Streaming: pulls until `want` records arrived (or an error, returned),
/// checking no pull returns more than `max`.
async fn pull_until(
    inlet: &mut ExecInlet,
    want: usize,
    max: usize,
) -> Result<Vec<Value>, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < want {
        let pull = inlet.pull(&update()).await?;
        assert!(
            pull.records().len() <= max,
            "a pull returned {} records",
            pull.records().len()
        );
        if pull.records().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        got.extend(payloads(&pull));
        assert!(
            Instant::now() < deadline,
            "only {} of {want} records arrived from the streaming command",
            got.len()
        );
    }
    Ok(got)
}

// --- scheduled mode ---

#[tokio::test]
async fn json_lines_become_one_record_each_in_order() {
    let mut inlet = ExecInlet::new(python(
        "import json\nfor i in range(3): print(json.dumps({'id': i}))\nprint()\nprint('[1, 2]')",
    ));
    let pull = inlet.pull(&update()).await.unwrap();
    assert!(matches!(pull, Pull::Records(_)));
    assert_eq!(
        payloads(&pull),
        [
            json!({"id": 0}),
            json!({"id": 1}),
            json!({"id": 2}),
            json!([1, 2])
        ]
    );
    // Every pull runs the command again.
    assert_eq!(inlet.pull(&update()).await.unwrap().records().len(), 4);
}

#[tokio::test]
async fn passes_the_inlet_tester() {
    InletTester::new(|| ExecInlet::new(CommandSpec::shell("echo '{\"a\": 1}'")))
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn text_mode_makes_every_line_a_string() {
    let mut inlet = ExecInlet::new(CommandSpec::shell("printf 'one\\n\\n{not json}\\r\\nlast'"))
        .format(LineFormat::Text);
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        payloads(&pull),
        [json!("one"), json!(""), json!("{not json}"), json!("last")]
    );
}

#[tokio::test]
async fn a_silent_command_gives_nothing() {
    let mut inlet = ExecInlet::new(CommandSpec::new("true", Vec::<String>::new()));
    assert!(matches!(
        inlet.pull(&update()).await.unwrap(),
        Pull::Nothing
    ));
}

#[tokio::test]
async fn a_bad_json_line_names_the_command_and_line_and_nothing_is_delivered() {
    let inlet = ExecInlet::new(CommandSpec::shell(
        "echo '{\"id\": 1}'; echo '{oops'; echo '{\"id\": 3}'",
    ));
    let outlet = CollectOutlet::new();
    let link = Link::builder("exec_bad_line")
        .inlet(inlet)
        .outlet(outlet.clone())
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap();
    let err = link.transfer().await.unwrap_err().to_string();
    assert!(
        err.contains(
            "`sh -c \"echo '{\\\"id\\\": 1}'; echo '{oops'; echo '{\\\"id\\\": 3}'\"` printed invalid JSON on stdout line 2: key must be a string at column 2"
        ),
        "{err}"
    );
    assert!(outlet.is_empty());
    link.shutdown().await;
}

#[tokio::test]
async fn a_failing_command_names_its_status_and_stderr_and_delivers_nothing() {
    let mut inlet = ExecInlet::new(python(
        "import sys\nprint('{\"id\": 1}')\nprint('first', file=sys.stderr)\nprint('no such table', file=sys.stderr)\nsys.exit(3)",
    ));
    let err = pull_err(&mut inlet).await;
    assert!(err.starts_with("`python3 -u -c "), "{err}");
    assert!(
        err.ends_with("exited with exit status: 3; its last stderr lines: first | no such table"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_program_is_an_error_naming_it() {
    let mut inlet = ExecInlet::new(CommandSpec::new("/nonexistent/databay-exec-test", ["x"]));
    let err = pull_err(&mut inlet).await;
    assert!(
        err.starts_with("cannot start `/nonexistent/databay-exec-test x`: "),
        "{err}"
    );
}

#[tokio::test]
async fn a_run_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "echo '{{\"early\": true}}'; echo $$ > '{}'; exec sleep 600",
        pid_file.display()
    );
    let mut inlet = ExecInlet::new(CommandSpec::shell(script)).timeout(Duration::from_millis(300));
    let err = pull_err(&mut inlet).await;
    assert!(
        err.ends_with("did not finish within 300ms; it was killed"),
        "{err}"
    );
    // Killed before it could write its pid is fine too; written, it must be gone.
    if let Ok(pid) = std::fs::read_to_string(&pid_file)
        && !pid.trim().is_empty()
    {
        assert!(!alive(&pid), "the timed-out child {pid} still runs");
    }
}

#[tokio::test]
async fn env_and_working_dir_reach_the_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    let cx = BuildContext::new("l", dir.path());
    let mut registry = Registry::new();
    super::register(&mut registry);
    let builder = registry
        .inlet_type("exec")
        .unwrap()
        .build(
            databay_component::testing::raw_options(
                "command = [\"python3\", \"-c\", \"import json, os; print(json.dumps([os.environ['GREETING'], os.getcwd()]))\"]\nenv = { GREETING = \"hello\" }\nworking_dir = \"work\"",
            ),
            &cx,
        )
        .unwrap();
    let outlet = CollectOutlet::new();
    let link = Link::builder("exec_env")
        .inlet(builder.build())
        .outlet(outlet.clone())
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    let work = dir.path().join("work").canonicalize().unwrap();
    assert_eq!(
        outlet.payloads(),
        [json!(["hello", work.to_str().unwrap()])]
    );
    link.shutdown().await;
}

#[test]
fn option_mistakes_point_at_their_option() {
    let mut registry = Registry::new();
    super::register(&mut registry);
    let err = |options: &str| build(registry.inlet_type("exec"), options).err().unwrap();
    assert!(
        err("command = \"ls | wc -l\"").contains("`command`"),
        "{}",
        err("command = \"ls\"")
    );
    assert!(err("command = []").contains("must name a program"));
    assert!(
        err("command = [\"ls\"]\nmode = \"streaming\"\nrun_timeout = \"1s\"")
            .contains("`run_timeout`")
    );
    assert!(err("command = [\"ls\"]\nmax_lines = 0").contains("`max_lines`"));
    assert!(err("command = [\"ls\"]\nmode = \"sometimes\"").contains("sometimes"));
    assert!(
        build(
            registry.inlet_type("exec"),
            "command = \"ls | wc -l\"\nshell = true"
        )
        .is_ok()
    );
}

// --- streaming mode ---

#[tokio::test]
async fn streaming_delivers_lines_across_pulls_bounded_by_max_lines() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "for i in 1 2 3 4 5; do echo \"{{\\\"i\\\": $i}}\"; done; echo $$ > '{}'; exec sleep 600",
        pid_file.display()
    );
    let mut inlet = ExecInlet::new(CommandSpec::shell(script))
        .mode(ExecMode::Streaming)
        .max_lines(2);
    inlet.on_start().await.unwrap();
    let got = pull_until(&mut inlet, 5, 2).await.unwrap();
    assert_eq!(got, (1..=5).map(|i| json!({"i": i})).collect::<Vec<_>>());
    // Still running, nothing new.
    assert!(matches!(
        inlet.pull(&update()).await.unwrap(),
        Pull::Nothing
    ));
    let pid = read_pid(&pid_file);
    assert!(alive(&pid));
    inlet.on_shutdown().await.unwrap();
    assert!(
        !alive(&pid),
        "the streaming child {pid} survived on_shutdown"
    );
}

#[tokio::test]
async fn a_small_buffer_holds_the_command_back_without_losing_lines() {
    // 500 lines of 200 bytes overflow the pipe (64 KiB): the child blocks
    // while the inlet holds its 10 lines, and loses none.
    let script = "import json, time\nfor i in range(500): print(json.dumps({'i': i, 'pad': 'x' * 200}))\ntime.sleep(600)";
    let mut inlet = ExecInlet::new(python(script))
        .mode(ExecMode::Streaming)
        .buffer_lines(10)
        .max_lines(1000);
    inlet.on_start().await.unwrap();
    let got = pull_until(&mut inlet, 500, 1000).await.unwrap();
    let want: Vec<Value> = (0..500)
        .map(|i| json!({"i": i, "pad": "x".repeat(200)}))
        .collect();
    assert_eq!(got, want);
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_streaming_command_that_dies_is_reported_then_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    // Each run prints its number, then dies.
    let script = format!(
        "echo x >> '{runs}'; n=$(wc -l < '{runs}'); echo \"{{\\\"run\\\": $n}}\"; echo \"crash $n\" >&2; exit 3",
        runs = runs.display()
    );
    let mut inlet = ExecInlet::new(CommandSpec::shell(script)).mode(ExecMode::Streaming);
    inlet.on_start().await.unwrap();
    for run in 1..=2 {
        assert_eq!(
            pull_until(&mut inlet, 1, 10_000).await.unwrap(),
            [json!({"run": run})]
        );
        let err = pull_until(&mut inlet, 1, 10_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!(
                "exited with exit status: 3; its last stderr lines: crash {run}"
            )),
            "{err}"
        );
        // The next pull starts it again.
    }
    inlet.on_shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_streaming_line_is_reported_after_the_good_ones_and_skipped() {
    let script = "echo '{\"a\": 1}'; echo 'nope'; echo '{\"a\": 3}'; exec sleep 600";
    let mut inlet = ExecInlet::new(CommandSpec::shell(script)).mode(ExecMode::Streaming);
    inlet.on_start().await.unwrap();
    let mut good = Vec::new();
    let err = loop {
        match pull_until(&mut inlet, good.len() + 1, 10_000).await {
            Ok(got) => good.extend(got),
            Err(e) => break e.to_string(),
        }
    };
    assert_eq!(good, [json!({"a": 1})]);
    assert!(
        err.contains("printed invalid JSON on stdout line 2: expected ident at column 2"),
        "{err}"
    );
    assert_eq!(
        pull_until(&mut inlet, 1, 10_000).await.unwrap(),
        [json!({"a": 3})]
    );
    inlet.on_shutdown().await.unwrap();
}

// --- the README's example ---

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exec/example.py")
}

#[tokio::test]
async fn the_readme_quotes_the_python_example_and_it_works() {
    let example = std::fs::read_to_string(example_path()).unwrap();
    assert!(include_str!("README.md").contains(&format!("```python\n{example}```")));
    let mut inlet = ExecInlet::new(CommandSpec::new(
        "python3",
        ["-u", example_path().to_str().unwrap()],
    ));
    let pull = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        payloads(&pull),
        [
            json!({"n": 0, "square": 0}),
            json!({"n": 1, "square": 1}),
            json!({"n": 2, "square": 4})
        ]
    );
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_lines_read_in_both_modes() {
    let scheduled = ExecInlet::new(CommandSpec::shell("printf '{\"a\": 1}\\n\"xy\"\\r\\n'"));
    let streaming = ExecInlet::new(CommandSpec::shell(
        "printf '{\"a\": 1}\\n\"xy\"\\n'; exec sleep 600",
    ))
    .mode(ExecMode::Streaming);
    let out = CollectOutlet::new();
    let link = Link::builder("exec_bytes")
        .inlet(scheduled)
        .inlet(streaming)
        .outlet(out.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while link.node_stats()[1].bytes < Some(12) {
        assert!(Instant::now() < deadline, "{:?}", link.node_stats()[1]);
        link.transfer().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = link.node_stats();
    let runs = stats[0].calls;
    // `{"a": 1}` and `"xy"`, without their line ends, per run.
    assert_eq!(stats[0].bytes, Some(runs * 12));
    assert_eq!(stats[1].bytes, Some(12), "each line read once");
    assert!(link.shutdown().await.is_empty());
}
