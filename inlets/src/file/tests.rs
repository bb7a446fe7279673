//! Tests of [`FileInlet`], on real files in temporary directories.

use std::io::Write;
use std::path::{Path, PathBuf};

use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{INLET_KEY, Inlet, InletHandle, Link, Pull, Update};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{FileInlet, FileInletError, FileInletMode};

fn update() -> Update {
    Update::new(["file"], 0)
}

/// A temporary directory holding `name` with `contents`.
fn file_with(name: &str, contents: impl AsRef<[u8]>) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn append(path: &Path, contents: impl AsRef<[u8]>) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(contents.as_ref()).unwrap();
}

fn payloads(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

fn strings(values: &[&str]) -> Vec<Value> {
    values.iter().map(|s| json!(s)).collect()
}

/// Pulls once and returns the variant's name and the payloads.
async fn pull(inlet: &mut FileInlet) -> (&'static str, Vec<Value>) {
    let pull = inlet.pull(&update()).await.unwrap();
    let kind = match &pull {
        Pull::Records(_) => "records",
        Pull::Nothing => "nothing",
        Pull::RetryAfter(_) => "retry",
        Pull::Exhausted(_) => "exhausted",
        _ => "other",
    };
    (kind, payloads(&pull))
}

async fn pull_err(inlet: &mut FileInlet) -> FileInletError {
    let err = inlet.pull(&update()).await.unwrap_err();
    *err.downcast::<FileInletError>().unwrap()
}

async fn started(inlet: FileInlet) -> FileInlet {
    let mut inlet = inlet;
    inlet.on_start().await.unwrap();
    inlet
}

// --- the common inlet checks ---------------------------------------------

#[tokio::test]
async fn line_mode_passes_the_inlet_tester() {
    let (_dir, path) = file_with("lines.txt", "a\nb\nc\nd\n");
    InletTester::new(|| FileInlet::new(&path))
        .run()
        .await
        .unwrap();
    InletTester::new(|| FileInlet::new(&path).lines_per_transfer(3))
        .pulls(4)
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn json_follow_and_file_modes_pass_the_inlet_tester() {
    let (_dir, path) = file_with("data.ndjson", "{\"a\":1}\n\n{\"a\":2}\n");
    InletTester::new(|| FileInlet::new(&path).json(true).follow(true))
        .pulls(4)
        .run()
        .await
        .unwrap();
    InletTester::new(|| FileInlet::whole_file(&path))
        .run()
        .await
        .unwrap();
    let (_dir2, doc) = file_with("doc.json", "{\"k\": [1, 2]}");
    InletTester::new(|| FileInlet::whole_file(&doc).json(true))
        .run()
        .await
        .unwrap();
}

// --- line mode -------------------------------------------------------------

#[tokio::test]
async fn options_default_to_line_mode_one_text_line_without_follow() {
    let inlet = FileInlet::new("x.txt");
    assert_eq!(inlet.read_mode(), FileInletMode::Line);
    assert_eq!(inlet.path(), Path::new("x.txt"));
    assert_eq!(inlet.lines_per_transfer, 1);
    assert!(!inlet.json && !inlet.follow);
    assert_eq!(FileInlet::whole_file("x").read_mode(), FileInletMode::File);
    assert_eq!(
        FileInlet::new("x").lines_per_transfer(0).lines_per_transfer,
        1
    );
}

#[tokio::test]
async fn line_mode_reads_one_line_per_pull_and_strips_newlines() {
    let (_dir, path) = file_with("lines.txt", "first\r\nsecond\nthird\n");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["first"])));
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["second"])));
    assert_eq!(inlet.lines_read(), 2);
    // The last line comes with the news that the input has ended.
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["third"])));
    assert_eq!(pull(&mut inlet).await, ("exhausted", vec![]));
}

#[tokio::test]
async fn a_final_line_without_newline_is_emitted_at_the_end() {
    let (_dir, path) = file_with("lines.txt", "a\nb");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a"])));
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["b"])));

    let mut batched = started(FileInlet::new(&path).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut batched).await,
        ("exhausted", strings(&["a", "b"]))
    );
}

#[tokio::test]
async fn an_empty_file_is_exhausted_at_once() {
    let (_dir, path) = file_with("empty.txt", "");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await, ("exhausted", vec![]));
}

#[tokio::test]
async fn n_lines_per_transfer() {
    let contents: String = (1..=7).map(|i| format!("line {i}\n")).collect();
    let (_dir, path) = file_with("lines.txt", contents);
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(3)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["line 1", "line 2", "line 3"]))
    );
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["line 4", "line 5", "line 6"]))
    );
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["line 7"])));
}

#[tokio::test]
async fn a_batch_ending_exactly_at_the_end_reports_exhaustion_with_it() {
    let (_dir, path) = file_with("lines.txt", "a\nb\nc\nd\n");
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(2)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a", "b"])));
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["c", "d"])));
}

#[tokio::test]
async fn text_mode_keeps_empty_lines_as_empty_strings() {
    let (_dir, path) = file_with("lines.txt", "a\n\n\r\nb\n");
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", strings(&["a", "", "", "b"]))
    );
}

#[tokio::test]
async fn a_leading_byte_order_mark_is_not_content() {
    let (_dir, path) = file_with("bom.ndjson", "\u{FEFF}{\"a\":1}\n{\"a\":2}\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(5)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", vec![json!({"a": 1}), json!({"a": 2})])
    );
}

#[tokio::test]
async fn a_line_longer_than_the_read_buffer_is_one_record() {
    let long = "x".repeat(super::READ_BUFFER * 3 + 17);
    let (_dir, path) = file_with("long.txt", format!("short\n{long}\nend\n"));
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(10)).await;
    let (kind, values) = pull(&mut inlet).await;
    assert_eq!(kind, "exhausted");
    assert_eq!(values, vec![json!("short"), json!(long), json!("end")]);
}

#[tokio::test]
async fn many_lines_arrive_in_order_across_batches() {
    let contents: String = (0..10_000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let (_dir, path) = file_with("many.ndjson", contents);
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(999)).await;
    let mut seen = Vec::new();
    loop {
        let (kind, values) = pull(&mut inlet).await;
        assert!(values.len() <= 999);
        seen.extend(values.into_iter().map(|v| v["n"].as_i64().unwrap()));
        if kind == "exhausted" {
            break;
        }
    }
    assert_eq!(seen, (0..10_000).collect::<Vec<i64>>());
}

#[cfg(unix)]
#[tokio::test]
async fn line_mode_holds_the_file_open_from_on_start() {
    let (dir, path) = file_with("held.txt", "one\ntwo\nthree\n");
    let mut removed = started(FileInlet::new(&path)).await;
    let mut renamed = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut removed).await, ("records", strings(&["one"])));

    std::fs::rename(&path, dir.path().join("moved.txt")).unwrap();
    assert_eq!(pull(&mut renamed).await, ("records", strings(&["one"])));
    std::fs::remove_file(dir.path().join("moved.txt")).unwrap();
    assert!(!path.exists());

    // Both keep reading the file they opened, though its name is gone.
    assert_eq!(pull(&mut removed).await, ("records", strings(&["two"])));
    assert_eq!(pull(&mut renamed).await, ("records", strings(&["two"])));
    assert_eq!(pull(&mut removed).await, ("exhausted", strings(&["three"])));

    // Closing it for good: starting again needs the file to exist.
    removed.on_shutdown().await.unwrap();
    let err = removed.on_start().await.unwrap_err();
    assert!(err.to_string().contains("held.txt"), "{err}");
}

#[tokio::test]
async fn starting_again_reads_from_the_first_line() {
    let (_dir, path) = file_with("lines.txt", "a\nb\n");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a"])));
    inlet.on_shutdown().await.unwrap();
    assert_eq!(inlet.lines_read(), 0);
    inlet.on_start().await.unwrap();
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a"])));
}

#[tokio::test]
async fn a_pull_before_on_start_opens_the_file() {
    let (_dir, path) = file_with("lines.txt", "a\nb\n");
    let mut inlet = FileInlet::new(&path);
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a"])));
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["b"])));
}

#[tokio::test]
async fn line_mode_reports_a_missing_file_at_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.txt");
    let mut inlet = FileInlet::new(&path);
    let err = inlet.on_start().await.unwrap_err();
    let err = err.downcast::<FileInletError>().unwrap();
    assert!(matches!(*err, FileInletError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.starts_with("cannot open"), "{message}");
}

// --- NDJSON ----------------------------------------------------------------

#[tokio::test]
async fn json_mode_parses_each_line_and_skips_blank_lines() {
    let (_dir, path) = file_with(
        "data.ndjson",
        "{\"id\":1,\"tags\":[\"a\"]}\n\n   \n42\r\n\"text\"\nnull\n",
    );
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(3)).await;
    assert_eq!(
        pull(&mut inlet).await,
        (
            "records",
            vec![json!({"id": 1, "tags": ["a"]}), json!(42), json!("text")]
        )
    );
    assert_eq!(pull(&mut inlet).await, ("exhausted", vec![Value::Null]));
}

#[tokio::test]
async fn a_bad_json_line_fails_the_pull_naming_path_line_and_cause() {
    let (_dir, path) = file_with("data.ndjson", "{\"a\":1}\n\n{\"a\":2,}\n{\"a\":3}\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    let err = pull_err(&mut inlet).await;
    let FileInletError::Json { line, column, .. } = &err else {
        panic!("expected a JSON error, got {err:?}");
    };
    assert_eq!((*line, *column), (3, 8));
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 3, column 8"), "{message}");
    assert!(message.contains("trailing comma"), "{message}");
    // serde_json's own position counts from the line, not the file: dropped.
    assert!(!message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn a_bad_json_line_loses_nothing_and_is_read_once_fixed() {
    let (_dir, path) = file_with("data.ndjson", "{\"a\":1}\nnot json\n{\"a\":3}\n");
    let mut inlet = started(FileInlet::new(&path).json(true)).await;
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!({"a": 1})]));

    // The bad line fails every pull until it is fixed; nothing moves past it.
    for _ in 0..3 {
        let err = pull_err(&mut inlet).await;
        assert!(
            matches!(err, FileInletError::Json { line: 2, .. }),
            "{err:?}"
        );
        assert_eq!(inlet.lines_read(), 1);
    }

    // Fixed in place (same file, rewritten): the inlet goes on from line 2.
    std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").unwrap();
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!({"a": 2})]));
    assert_eq!(pull(&mut inlet).await, ("exhausted", vec![json!({"a": 3})]));
}

#[tokio::test]
async fn a_failed_batch_is_read_again_whole() {
    // The good line before the bad one in the same batch is not lost either.
    let (_dir, path) = file_with("data.ndjson", "1\n2\noops\n4\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(2)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!(1), json!(2)])
    );
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Json { line: 3, .. }),
        "{err:?}"
    );

    std::fs::write(&path, "1\n2\n3\n4\n5\n").unwrap();
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!(3), json!(4)])
    );
    assert_eq!(pull(&mut inlet).await, ("exhausted", vec![json!(5)]));
}

#[tokio::test]
async fn a_batch_failing_after_good_lines_delivers_them_once_fixed() {
    let (_dir, path) = file_with("data.ndjson", "1\n2\n{\n4\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Json { line: 3, .. }),
        "{err:?}"
    );
    assert_eq!(inlet.lines_read(), 0, "the whole batch is rewound");

    std::fs::write(&path, "1\n2\n3\n4\n").unwrap();
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", vec![json!(1), json!(2), json!(3), json!(4)])
    );
}

#[tokio::test]
async fn invalid_utf8_is_an_error_naming_the_line_and_nothing_is_skipped() {
    let (_dir, path) = file_with("bytes.txt", b"ok\n\xFF\xFEbad\nafter\n");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["ok"])));
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Utf8 { line: 2, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("bytes.txt") && message.contains("line 2"),
        "{message}"
    );
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Utf8 { line: 2, .. }),
        "{err:?}"
    );
}

// --- follow ---------------------------------------------------------------

#[tokio::test]
async fn follow_mode_picks_up_appended_lines() {
    let (_dir, path) = file_with("log.txt", "a\nb\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a", "b"])));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));

    append(&path, "c\n");
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["c"])));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));

    append(&path, "d\ne\n");
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["d", "e"])));
}

#[tokio::test]
async fn follow_mode_does_not_emit_a_partial_line() {
    let (_dir, path) = file_with("log.txt", "a\npart");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a"])));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));

    append(&path, "ial");
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));

    append(&path, " line\nnext\n");
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["partial line", "next"]))
    );
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));
}

#[tokio::test]
async fn follow_mode_with_one_line_per_transfer_never_reports_the_end() {
    let (_dir, path) = file_with("log.ndjson", "1\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).json(true)).await;
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!(1)]));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));
    append(&path, "2\n3\n");
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!(2)]));
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!(3)]));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));
}

#[tokio::test]
async fn follow_mode_starts_over_when_the_file_is_truncated() {
    let (_dir, path) = file_with("log.txt", "old 1\nold 2\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["old 1", "old 2"]))
    );

    // Rotated in place (copytruncate), then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    append(&path, "new\n");
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["new"])));
}

#[tokio::test]
async fn follow_mode_waits_on_a_bad_json_line_until_it_is_fixed() {
    let (_dir, path) = file_with("log.ndjson", "1\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).json(true)).await;
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!(1)]));
    append(&path, "{oops}\n");
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Json { line: 2, .. }),
        "{err:?}"
    );
    std::fs::write(&path, "1\n{\"fixed\":true}\n").unwrap();
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!({"fixed": true})])
    );
}

// --- file mode -------------------------------------------------------------

#[tokio::test]
async fn file_mode_reads_the_whole_file_each_pull() {
    let (_dir, path) = file_with("whole.txt", "hello\nworld\n");
    let mut inlet = started(FileInlet::whole_file(&path)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["hello\nworld\n"]))
    );
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["hello\nworld\n"]))
    );

    std::fs::write(&path, "changed").unwrap();
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["changed"])));
}

#[tokio::test]
async fn file_mode_ignores_line_options() {
    let (_dir, path) = file_with("whole.txt", "a\nb\nc");
    let mut inlet = FileInlet::whole_file(&path)
        .lines_per_transfer(2)
        .follow(true);
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["a\nb\nc"])));
}

#[tokio::test]
async fn file_mode_parses_the_whole_file_as_one_json_value() {
    let (_dir, path) = file_with("doc.json", "{\n  \"items\": [1, 2],\n  \"ok\": true\n}\n");
    let mut inlet = FileInlet::whole_file(&path).json(true);
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!({"items": [1, 2], "ok": true})])
    );
    let (_dir2, bom) = file_with("bom.json", "\u{FEFF}[1, 2]");
    let mut inlet = FileInlet::whole_file(&bom).json(true);
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!([1, 2])]));
}

#[tokio::test]
async fn file_mode_bad_json_names_the_path_and_its_line() {
    let (_dir, path) = file_with("doc.json", "{\n  \"a\": 1,\n  \"b\": nope\n}\n");
    let mut inlet = FileInlet::whole_file(&path).json(true);
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Json { line: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("doc.json") && message.contains("line 3"),
        "{message}"
    );
}

#[tokio::test]
async fn file_mode_invalid_utf8_names_the_line() {
    let (_dir, path) = file_with("bytes.txt", b"one\ntwo\nth\xC3ree\n");
    let mut inlet = FileInlet::whole_file(&path);
    let err = pull_err(&mut inlet).await;
    assert!(
        matches!(err, FileInletError::Utf8 { line: 3, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn file_mode_reports_a_missing_file_at_pull_and_recovers_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.txt");
    let mut inlet = FileInlet::whole_file(&path);
    // Nothing is opened at start in file mode.
    inlet.on_start().await.unwrap();
    let err = pull_err(&mut inlet).await;
    assert!(matches!(err, FileInletError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    std::fs::write(&path, "now here").unwrap();
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["now here"])));
}

// --- in a link ---------------------------------------------------------------

#[tokio::test]
async fn a_link_delivers_the_lines_with_inlet_metadata_and_finishes() {
    let (_dir, path) = file_with("events.ndjson", "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n");
    let inlet = InletHandle::builder(FileInlet::new(&path).json(true).lines_per_transfer(2))
        .name("events")
        .meta("source", "file")
        .build();
    let outlet = CollectOutlet::new();
    let link = Link::builder("file_to_memory")
        .inlet(inlet)
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();

    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_in, 2);
    assert!(!link.is_exhausted());
    let report = link.transfer().await.unwrap();
    assert_eq!(report.records_in, 1);
    assert!(
        link.is_exhausted(),
        "the end of the file ends the link's input"
    );

    assert_eq!(
        outlet.payloads(),
        vec![json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]
    );
    for record in outlet.records() {
        assert_eq!(record.meta(INLET_KEY), Some(&json!("events")));
        assert_eq!(record.meta("source"), Some(&json!("file")));
    }
    let batches = outlet.batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].0, "file_to_memory.0");
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test]
async fn a_link_counts_the_bytes_of_the_lines_read() {
    // A partial last line is counted once it is complete and delivered.
    let (_dir, path) = file_with("events.txt", "\u{feff}one\r\ntwo\nthr");
    let link = Link::builder("file_bytes")
        .inlet(FileInlet::new(&path).lines_per_transfer(1).follow(true))
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let bytes = || link.node_stats()[0].bytes;
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(3 + 5), "the BOM and the CRLF are read too");
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(8 + 4), "`thr` is not a line yet");
    append(&path, "ee\n");
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(12 + 6));
    assert!(link.shutdown().await.is_empty());

    let (_whole, path) = file_with("doc.txt", "\u{feff}a whole file");
    let link = Link::builder("file_bytes_whole")
        .inlet(FileInlet::new(&path).mode(FileInletMode::File))
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(link.node_stats()[0].bytes, Some(3 + 12));
}

#[tokio::test]
async fn a_link_reports_the_bad_line_and_delivers_it_once_fixed() {
    let (_dir, path) = file_with("events.ndjson", "1\nbad\n3\n");
    let outlet = CollectOutlet::new();
    let link = Link::builder("strict")
        .inlet(FileInlet::new(&path).json(true).lines_per_transfer(5))
        .outlet(outlet.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let err = link.transfer().await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("events.ndjson") && message.contains("line 2"),
        "{message}"
    );
    assert!(outlet.is_empty());

    std::fs::write(&path, "1\n2\n3\n").unwrap();
    link.transfer().await.unwrap();
    assert_eq!(outlet.payloads(), vec![json!(1), json!(2), json!(3)]);
    assert!(link.is_exhausted());
    assert!(link.shutdown().await.is_empty());
}

// --- unusual and changing input: an error names the file and line, nothing is lost, nothing panics

#[tokio::test]
async fn crlf_line_endings_are_not_content_in_text_or_json_mode() {
    let (_dir, path) = file_with("input.txt", "one\r\n\r\ntwo\r\nthree");
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        (
            "exhausted",
            vec![json!("one"), json!(""), json!("two"), json!("three")]
        )
    );
    let (_dir, path) = file_with("input.txt", "{\"a\":1}\r\n\r\n  \r\n{\"a\":2}\r\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", vec![json!({"a": 1}), json!({"a": 2})])
    );
}

#[tokio::test]
async fn follow_mode_waits_for_the_lf_of_a_crlf_split_across_writes() {
    let (_dir, path) = file_with("input.txt", "a\r\nb\r");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!("a")]));
    assert_eq!(pull(&mut inlet).await, ("nothing", vec![]));
    append(&path, b"\n");
    assert_eq!(pull(&mut inlet).await, ("records", vec![json!("b")]));
}

#[tokio::test]
async fn a_line_longer_than_one_mebibyte_is_one_record() {
    let long = "x".repeat(1536 * 1024);
    let (_dir, path) = file_with("input.txt", format!("short\n{long}\n{{\"after\":true}}\n"));
    let mut inlet = started(FileInlet::new(&path).lines_per_transfer(2)).await;
    let (_, got) = pull(&mut inlet).await;
    assert_eq!(got, vec![json!("short"), json!(long)]);
    let (_dir, path) = file_with("input.txt", format!("{{\"s\":\"{long}\"}}\n{{\"n\":2}}\n"));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(5)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", vec![json!({"s": long}), json!({"n": 2})])
    );
}

#[tokio::test]
async fn invalid_utf8_mid_batch_names_the_line_and_nothing_is_lost_once_fixed() {
    let (_dir, path) = file_with(
        "input.txt",
        b"{\"n\":1}\n{\"n\":2}\n{\"s\":\"\xff\"}\n{\"n\":4}\n".as_slice(),
    );
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    for _ in 0..2 {
        let e = pull_err(&mut inlet).await;
        let shown = e.to_string();
        assert!(matches!(e, FileInletError::Utf8 { line: 3, .. }), "{shown}");
        assert!(shown.contains(&path.display().to_string()), "{shown}");
    }
    // Fixed in place (same length): every line arrives, none twice.
    std::fs::write(&path, b"{\"n\":1}\n{\"n\":2}\n{\"s\":\"?\"}\n{\"n\":4}\n").unwrap();
    assert_eq!(
        pull(&mut inlet).await,
        (
            "exhausted",
            vec![
                json!({"n": 1}),
                json!({"n": 2}),
                json!({"s": "?"}),
                json!({"n": 4})
            ]
        )
    );
}

#[tokio::test]
async fn a_json_line_with_trailing_garbage_names_line_and_column() {
    let (_dir, path) = file_with("input.txt", "{\"a\":1}\n{\"a\":2} {\"a\":3}\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    let e = pull_err(&mut inlet).await;
    let shown = e.to_string();
    assert!(
        matches!(
            e,
            FileInletError::Json {
                line: 2,
                column: 9,
                ..
            }
        ),
        "{shown}"
    );
    assert!(shown.contains("trailing characters"), "{shown}");
    // Nothing of the batch was delivered, and the same error repeats.
    let e = pull_err(&mut inlet).await;
    assert!(matches!(e, FileInletError::Json { line: 2, .. }), "{e}");
}

/// serde_json counts columns in bytes; config errors (and editors) count
/// characters, so a line with non-ASCII text points past the fault.
#[tokio::test]
async fn json_error_columns_count_characters_of_the_line() {
    let (_dir, path) = file_with("input.txt", "{\"é\":\"é\" x}\n");
    let mut inlet = started(FileInlet::new(&path).json(true)).await;
    let e = pull_err(&mut inlet).await;
    // `x` is the 10th character of the line (the 12th byte).
    assert!(matches!(e, FileInletError::Json { column: 10, .. }), "{e}");
}

#[tokio::test]
async fn an_empty_file_in_every_mode() {
    let (_dir, path) = file_with("input.txt", "");
    let mut line = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut line).await, ("exhausted", vec![]));
    let mut follow = started(FileInlet::new(&path).follow(true)).await;
    assert_eq!(pull(&mut follow).await, ("nothing", vec![]));
    let mut whole = FileInlet::whole_file(&path);
    assert_eq!(pull(&mut whole).await, ("records", vec![json!("")]));
    let mut whole_json = FileInlet::whole_file(&path).json(true);
    let e = pull_err(&mut whole_json).await;
    assert!(matches!(e, FileInletError::Json { line: 1, .. }), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_directory_as_path_fails_every_pull_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().display().to_string();
    for mut inlet in [
        FileInlet::new(dir.path()),
        FileInlet::new(dir.path()).follow(true).json(true),
        FileInlet::whole_file(dir.path()),
    ] {
        // Opening a directory succeeds on Unix; reading it fails.
        let _ = inlet.on_start().await;
        for _ in 0..2 {
            let e = inlet.pull(&update()).await.unwrap_err().to_string();
            assert!(e.contains(&shown), "{e}");
        }
    }
}

/// Log rotation by `copytruncate` when the writer refills the file past the
/// old read position before the next pull: the size check sees no
/// truncation, the inlet carries on from its old byte offset in the new
/// contents, delivers the tail of a line as a record (`"cc"`), and the new
/// lines before it are never delivered.
#[tokio::test]
async fn follow_mode_truncated_then_regrown_longer_starts_over() {
    let (_dir, path) = file_with("input.txt", "aaaa\nbbbb\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!("aaaa"), json!("bbbb")])
    );
    // Truncated and rewritten, longer than before, between two pulls.
    std::fs::write(&path, "cccccccccccc\ndd\n").unwrap();
    let (_, got) = pull(&mut inlet).await;
    assert_eq!(got, vec![json!("cccccccccccc"), json!("dd")]);
}

/// Numbers are kept as written (serde_json's `arbitrary_precision`): an
/// integer beyond 64 bits is not rounded to an f64, a decimal keeps its
/// digits (an exponent is written in its `e+` form).
#[tokio::test]
async fn big_integers_in_ndjson_keep_their_value() {
    let lines = [
        "{\"id\":123456789012345678901234567890}",
        "{\"id\":18446744073709551616}",
        "{\"id\":18446744073709551617}",
        "{\"id\":-9223372036854775809}",
        "{\"amount\":2.50,\"e\":1e+400}",
    ];
    let (_dir, path) = file_with("input.txt", lines.join("\n"));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(10)).await;
    let pull = inlet.pull(&update()).await.unwrap();
    let got: Vec<String> = payloads(&pull).iter().map(Value::to_string).collect();
    assert_eq!(got, lines, "numbers are kept exactly as written");
    assert_ne!(
        payloads(&pull)[1],
        payloads(&pull)[2],
        "two ids stay two ids"
    );
}

#[tokio::test]
async fn json_lines_with_unicode_nul_and_escapes_round_trip() {
    let line = r#"{"s":"é😀\u0000\ud83d\ude00\u202e","k\n":[1.5e300,-0.0,5e-324]}"#;
    let (_dir, path) = file_with("input.txt", format!("{line}\n"));
    let mut inlet = started(FileInlet::new(&path).json(true)).await;
    let (_, got) = pull(&mut inlet).await;
    let expected: Value = serde_json::from_str(line).unwrap();
    assert_eq!(got, vec![expected]);
    // Text mode keeps the line byte for byte.
    let mut text = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut text).await.1, vec![json!(line)]);
}

/// Replaces `path` by a new file (a new inode), as `sed -i` and editors do.
fn replace(path: &Path, contents: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

#[tokio::test]
async fn a_file_replaced_under_its_name_is_reopened_after_the_delivered_lines() {
    let (_dir, path) = file_with("input.ndjson", "{\"n\":1}\n{\"n\":2}\n{\"n\":\n{\"n\":4}\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(2)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", vec![json!({"n": 1}), json!({"n": 2})])
    );
    let e = pull_err(&mut inlet).await.to_string();
    assert!(e.contains("line 3"), "{e}");
    // Fixed by rewriting the file under the same name.
    replace(&path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
    assert_eq!(
        pull(&mut inlet).await,
        ("exhausted", vec![json!({"n": 3}), json!({"n": 4})])
    );
}

#[tokio::test]
async fn a_followed_file_replaced_by_rotation_is_read_from_its_start() {
    let (_dir, path) = file_with("app.log", "old 1\nold 2\n");
    let mut inlet = started(FileInlet::new(&path).follow(true).lines_per_transfer(10)).await;
    assert_eq!(
        pull(&mut inlet).await,
        ("records", strings(&["old 1", "old 2"]))
    );
    // Rotated: the name now holds a new, shorter file.
    replace(&path, "new 1\n");
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["new 1"])));
    append(&path, "new 2\n");
    assert_eq!(pull(&mut inlet).await, ("records", strings(&["new 2"])));
    // While the name is missing the open file is read on: nothing is lost.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(pull(&mut inlet).await.0, "nothing");
}

/// The resume state: after a commit, the snapshot resumes after the last
/// delivered line; restored into a new inlet, it carries on there.
#[tokio::test]
async fn a_snapshot_restores_after_the_last_committed_line() {
    let (_dir, path) = file_with("r.txt", "one\ntwo\nthree\nfour\n");
    let mut first = started(FileInlet::new(&path).lines_per_transfer(2)).await;
    assert_eq!(pull(&mut first).await.1, strings(&["one", "two"]));
    first.commit(&update()).await.unwrap();
    assert_eq!(pull(&mut first).await.1, strings(&["three", "four"]));
    // Not committed: the snapshot is still after "two".
    let state = first.snapshot().unwrap();
    assert_eq!(state["offset"], json!(8));
    assert_eq!(state["line"], json!(2));

    let mut second = FileInlet::new(&path).lines_per_transfer(2);
    second.restore(state).await.unwrap();
    second.on_start().await.unwrap();
    assert_eq!(
        pull(&mut second).await,
        ("exhausted", strings(&["three", "four"]))
    );
}

/// Before its first commit a line-mode inlet already has a resume state:
/// the start. A link's first checkpoint then holds where the inlet is, so
/// a crash right after the first transfer does not read it again.
#[tokio::test]
async fn the_first_checkpoint_holds_the_files_position() {
    let (_dir, path) = file_with("first.txt", "one\ntwo\nthree\n");
    let fresh = started(FileInlet::new(&path)).await;
    let start = fresh.snapshot().expect("a resume state before any commit");
    assert_eq!(start["offset"], json!(0));
    let mut restored = FileInlet::new(&path);
    restored.restore(start).await.unwrap();
    restored.on_start().await.unwrap();
    assert_eq!(pull(&mut restored).await.1, strings(&["one"]));

    let store = std::sync::Arc::new(databay_core::checkpoint::MemoryStore::new());
    let out = CollectOutlet::new();
    let link = Link::builder("first_checkpoint")
        .inlet(
            InletHandle::builder(FileInlet::new(&path).lines_per_transfer(2))
                .name("lines")
                .build(),
        )
        .outlet(out.clone())
        .state_store(store.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    use databay_core::checkpoint::StateStore;
    let saved = store.load("first_checkpoint").await.unwrap().unwrap();
    assert_eq!(saved.inlets["lines"]["offset"], json!(8), "{saved:?}");
    assert_eq!(saved.inlets["lines"]["line"], json!(2));
    assert_eq!(out.len(), 2);
}

#[tokio::test]
async fn a_rollback_reads_the_lines_again() {
    let (_dir, path) = file_with("rb.txt", "a\nb\nc\n");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await.1, strings(&["a"]));
    inlet.commit(&update()).await.unwrap();
    assert_eq!(pull(&mut inlet).await.1, strings(&["b"]));
    inlet.rollback(&update()).await.unwrap();
    assert_eq!(pull(&mut inlet).await.1, strings(&["b"]), "at least once");
    inlet.commit(&update()).await.unwrap();
    assert_eq!(pull(&mut inlet).await, ("exhausted", strings(&["c"])));
}

/// A file replaced by one with other first bytes is another file: read
/// from its start. One with the same first bytes (copied, or fixed further
/// down) resumes.
#[tokio::test]
async fn a_restored_position_is_checked_against_the_files_first_bytes() {
    let (_dir, path) = file_with("fp.txt", "alpha\nbeta\ngamma\n");
    let mut first = started(FileInlet::new(&path)).await;
    pull(&mut first).await;
    first.commit(&update()).await.unwrap();
    let state = first.snapshot().unwrap();

    // Copied over with the same contents (a new inode): resumes.
    std::fs::write(path.with_extension("tmp"), "alpha\nbeta\ngamma\n").unwrap();
    std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    let mut same = FileInlet::new(&path);
    same.restore(state.clone()).await.unwrap();
    same.on_start().await.unwrap();
    assert_eq!(pull(&mut same).await.1, strings(&["beta"]));

    // Rotated: a new file under the name.
    std::fs::write(&path, "omega\n").unwrap();
    let mut other = FileInlet::new(&path);
    other.restore(state).await.unwrap();
    other.on_start().await.unwrap();
    assert_eq!(pull(&mut other).await, ("exhausted", strings(&["omega"])));

    let e = FileInlet::new(&path)
        .restore(json!({"offset": -1}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a file position"), "{e}");
    let e = FileInlet::whole_file(&path)
        .restore(json!({}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("file mode"), "{e}");
}

// --- reading ahead ---------------------------------------------------------
//
// A large batch (at least `compute::HEAVY_BATCH` lines) of a file that is
// not followed is followed by the next one, read and parsed in a task of
// its own while the link works on the last one. What the inlet hands out,
// commits, rolls back and snapshots must be exactly what it was without.

/// `lines` NDJSON lines `{"n":1}`, `{"n":2}`, ... with `n` offset by `base`.
fn numbered(lines: usize, base: usize) -> String {
    (1..=lines)
        .map(|n| format!("{{\"n\":{}}}\n", n + base))
        .collect()
}

fn numbers(pull: &Pull) -> Vec<u64> {
    pull.records()
        .iter()
        .map(|r| r.payload["n"].as_u64().unwrap())
        .collect()
}

const BIG: usize = databay_core::compute::HEAVY_BATCH * 2;

async fn ahead_delivers_every_line_once_in_order() {
    let (_dir, path) = file_with("big.ndjson", numbered(3 * BIG + 7, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    let mut seen = Vec::new();
    let mut kinds = Vec::new();
    loop {
        let pull = inlet.pull(&update()).await.unwrap();
        inlet.commit(&update()).await.unwrap();
        seen.extend(numbers(&pull));
        kinds.push(matches!(pull, Pull::Exhausted(_)));
        assert_eq!(inlet.lines_read(), seen.len() as u64);
        if matches!(pull, Pull::Exhausted(_)) {
            break;
        }
    }
    assert_eq!(kinds, [false, false, false, true]);
    assert_eq!(seen, (1..=(3 * BIG + 7) as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_delivers_every_line_once_in_order() {
    ahead_delivers_every_line_once_in_order().await;
}

#[tokio::test(flavor = "current_thread")]
async fn read_ahead_on_one_thread_delivers_every_line_once_in_order() {
    ahead_delivers_every_line_once_in_order().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_keeps_commits_rollbacks_and_snapshots_exact() {
    let (_dir, path) = file_with("big.ndjson", numbered(4 * BIG, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&first).last(), Some(&(BIG as u64)));
    assert!(inlet.ahead.is_some(), "the next batch is read ahead");
    inlet.commit(&update()).await.unwrap();
    let state = inlet.snapshot().unwrap();
    assert_eq!(state["line"], json!(BIG), "{state}");

    // Handed out, not committed, rolled back: read again, from the file.
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&second)[0], BIG as u64 + 1);
    assert_eq!(inlet.snapshot().unwrap(), state, "not committed yet");
    inlet.rollback(&update()).await.unwrap();
    let again = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&again), numbers(&second), "at least once");
    inlet.commit(&update()).await.unwrap();
    let state = inlet.snapshot().unwrap();
    assert_eq!(state["line"], json!(2 * BIG));
    let offset = state["offset"].as_u64().unwrap() as usize;
    assert_eq!(offset, numbered(2 * BIG, 0).len());

    // The third batch is being read ahead; a new inlet restored from the
    // snapshot goes on after the second.
    let mut resumed = FileInlet::new(&path).json(true).lines_per_transfer(BIG);
    resumed.restore(state).await.unwrap();
    resumed.on_start().await.unwrap();
    let third = resumed.pull(&update()).await.unwrap();
    assert_eq!(numbers(&third)[0], 2 * BIG as u64 + 1);
    let third_here = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&third_here), numbers(&third));
    assert!(inlet.on_shutdown().await.is_ok());
    assert_eq!(inlet.lines_read(), 0, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_read_ahead_fails_its_own_pull_and_loses_nothing() {
    let bad = BIG + BIG / 2;
    let mut lines: Vec<String> = numbered(3 * BIG, 0).lines().map(str::to_owned).collect();
    lines[bad - 1] = "{\"n\": oops}".to_owned();
    let (_dir, path) = file_with("bad.ndjson", lines.join("\n") + "\n");
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(first.records().len(), BIG, "the first batch is whole");
    inlet.commit(&update()).await.unwrap();
    for _ in 0..2 {
        let err = pull_err(&mut inlet).await;
        assert!(
            matches!(err, FileInletError::Json { line, .. } if line == bad as u64),
            "{err:?}"
        );
        assert_eq!(inlet.lines_read(), BIG as u64);
    }
    // Fixed in place: the batch comes whole, from the line after the first.
    std::fs::write(&path, numbered(3 * BIG, 0)).unwrap();
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        numbers(&second),
        ((BIG + 1) as u64..=(2 * BIG) as u64).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_read_ahead_from_a_replaced_file_are_read_again_from_the_new_one() {
    let (_dir, path) = file_with("swap.ndjson", numbered(3 * BIG, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&first)[0], 1);
    // Replaced while the next batch is (or has been) read ahead from the
    // old file: the new file's lines after the delivered ones come next.
    replace(&path, &numbered(3 * BIG, 100_000));
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        numbers(&second),
        ((100_000 + BIG + 1) as u64..=(100_000 + 2 * BIG) as u64).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_and_followed_files_are_not_read_ahead() {
    let (_dir, path) = file_with("big.ndjson", numbered(3 * BIG, 0));
    let mut small = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG / 4)).await;
    let mut followed = started(
        FileInlet::new(&path)
            .json(true)
            .lines_per_transfer(BIG)
            .follow(true),
    )
    .await;
    for inlet in [&mut small, &mut followed] {
        assert_eq!(numbers(&inlet.pull(&update()).await.unwrap())[0], 1);
        assert!(inlet.ahead.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_counts_the_bytes_of_lines_read_ahead_when_they_are_delivered() {
    let text = numbered(2 * BIG + 1, 0);
    let (_dir, path) = file_with("bytes.ndjson", &text);
    let link = Link::builder("file_bytes_ahead")
        .inlet(FileInlet::new(&path).json(true).lines_per_transfer(BIG))
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    link.start().await.unwrap();
    let bytes = || link.node_stats()[0].bytes;
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(numbered(BIG, 0).len() as u64));
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(numbered(2 * BIG, 0).len() as u64));
    link.transfer().await.unwrap();
    assert_eq!(bytes(), Some(text.len() as u64));
    assert!(link.shutdown().await.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_ahead_that_never_ends_reads_again_from_the_last_commit() {
    let (_dir, path) = file_with("lost.ndjson", numbered(3 * BIG, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    let first = inlet.pull(&update()).await.unwrap();
    inlet.commit(&update()).await.unwrap();
    // On one thread the task has not run yet: cancelled, it ends with the
    // reader inside it.
    inlet.ahead.as_ref().unwrap().abort();
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&second)[0], numbers(&first)[BIG - 1] + 1);
    // Not committed, lost again: the same lines once more (at least once).
    inlet.ahead.as_ref().unwrap().abort();
    let again = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&again), numbers(&second));
    inlet.commit(&update()).await.unwrap();
    assert_eq!(inlet.snapshot().unwrap()["line"], json!(2 * BIG));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_into_a_replaced_file_drops_what_was_read_ahead_of_it() {
    let (_dir, path) = file_with("swap.ndjson", numbered(4 * BIG, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    inlet.pull(&update()).await.unwrap();
    inlet.commit(&update()).await.unwrap();
    replace(&path, &numbered(4 * BIG, 100_000));
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&second)[0], (100_000 + BIG + 1) as u64);
    // The commit was of the old file: the new one carries on where it is,
    // after the lines handed out, not after those read ahead of them.
    inlet.rollback(&update()).await.unwrap();
    let third = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&third)[0], (100_000 + 2 * BIG + 1) as u64);
}

/// Polls `call` once and drops it: a call cut off at its first wait.
/// Returns whether it had ended by then.
fn cut_off<F: std::future::Future>(call: F) -> bool {
    let mut call = std::pin::pin!(call);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    call.as_mut().poll(&mut cx).is_ready()
}

/// A pull or a rollback cut off (a timeout) while waiting for the batch
/// read ahead loses nothing: the batch stays read ahead, and a rollback
/// cut off midway is finished by the next pull.
#[tokio::test(flavor = "current_thread")]
async fn pulls_and_rollbacks_cut_off_while_reading_ahead_lose_nothing() {
    let (_dir, path) = file_with("cut.ndjson", numbered(4 * BIG, 0));
    let mut inlet = started(FileInlet::new(&path).json(true).lines_per_transfer(BIG)).await;
    inlet.pull(&update()).await.unwrap();
    inlet.commit(&update()).await.unwrap();
    // On one thread the task reading ahead has not run yet: the pull waits
    // for it, and is cut off there.
    assert!(!cut_off(inlet.pull(&update())), "cut off");
    assert!(inlet.ahead.is_some(), "the batch is still read ahead");
    let second = inlet.pull(&update()).await.unwrap();
    assert_eq!(numbers(&second)[0], BIG as u64 + 1);

    assert!(!cut_off(inlet.rollback(&update())), "cut off");
    assert!(inlet.rolling_back, "an unfinished rollback is remembered");
    let again = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        numbers(&again),
        numbers(&second),
        "the rollback was finished"
    );
    inlet.commit(&update()).await.unwrap();
    assert_eq!(inlet.snapshot().unwrap()["line"], json!(2 * BIG));
}

/// A file replaced by something that cannot be read as one (here a
/// directory) fails the pull; the old file stays open where it was, so
/// once the name holds a file again the inlet carries on after the lines
/// delivered, not from the first line.
#[tokio::test]
async fn a_replacement_that_cannot_be_read_keeps_the_place() {
    let (_dir, path) = file_with("swap.txt", "a\nb\nc\n");
    let mut inlet = started(FileInlet::new(&path)).await;
    assert_eq!(pull(&mut inlet).await.1, strings(&["a"]));
    inlet.commit(&update()).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let e = pull_err(&mut inlet).await.to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, "a\nb\nc\n").unwrap();
    assert_eq!(pull(&mut inlet).await.1, strings(&["b"]));
}
