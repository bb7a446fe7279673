//! Tests of [`FileOutlet`] against real files in temporary directories.

use std::fs;
use std::path::Path;

use databay_core::testing::OutletTester;
use databay_core::{Outlet, Record, Rejected, Update};
use serde_json::{Value, json};

use super::{FileOutlet, FileOutletError};
use crate::FileMode;
use crate::common::other_spelling;

fn update() -> Update {
    Update::new(["file"], 0)
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

fn objects(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn writes_payloads_one_per_line_to_the_default_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut outlet = FileOutlet::new(&path);
    let records = [
        Record::new(1),
        Record::new(json!({"a": [1, 2], "b": null})),
        Record::new(json!([true, 2.5])),
        Record::new(json!(null)),
    ];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(
        read(&path),
        "1\n{\"a\":[1,2],\"b\":null}\n[true,2.5]\nnull\n"
    );
}

#[tokio::test]
async fn a_string_payload_is_written_raw() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut outlet = FileOutlet::new(&path);
    let records = [Record::new("plain \"text\""), Record::new("two\nlines")];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "plain \"text\"\ntwo\nlines\n");
}

#[tokio::test]
async fn appends_by_default_across_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    fs::write(&path, "before\n").unwrap();
    let mut outlet = FileOutlet::new(&path);
    outlet.push(&[Record::new(1)], &update()).await.unwrap();
    outlet.push(&[Record::new(2)], &update()).await.unwrap();
    assert_eq!(read(&path), "before\n1\n2\n");
}

#[tokio::test]
async fn truncate_mode_replaces_the_file_on_every_push() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    fs::write(&path, "before\n").unwrap();
    let mut outlet = FileOutlet::new(&path).file_mode(FileMode::Truncate);
    outlet
        .push(&[Record::new(1), Record::new(2)], &update())
        .await
        .unwrap();
    assert_eq!(
        read(&path),
        "1\n2\n",
        "truncated once, then the whole batch"
    );
    outlet.push(&[Record::new(3)], &update()).await.unwrap();
    assert_eq!(read(&path), "3\n");
}

#[tokio::test]
async fn metadata_overrides_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("default.txt");
    let cats = dir.path().join("cats.txt");
    let mut outlet = FileOutlet::new(&default);
    let records = [
        Record::new("d1"),
        Record::new("c1").with_meta(FileOutlet::FILEPATH, path_str(&cats)),
        Record::new("d2"),
        Record::new("c2").with_meta(FileOutlet::FILEPATH, path_str(&cats)),
    ];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&default), "d1\nd2\n");
    assert_eq!(read(&cats), "c1\nc2\n");
}

#[tokio::test]
async fn metadata_overrides_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.txt");
    let replaced = dir.path().join("replaced.txt");
    fs::write(&kept, "old\n").unwrap();
    fs::write(&replaced, "old\n").unwrap();
    // Truncate by default, but one file's records ask to append.
    let mut outlet = FileOutlet::new(&replaced).file_mode(FileMode::Truncate);
    let records = [
        Record::new("new")
            .with_meta(FileOutlet::FILEPATH, path_str(&kept))
            .with_meta(FileOutlet::FILE_MODE, "a"),
        Record::new("new"),
    ];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&kept), "old\nnew\n");
    assert_eq!(read(&replaced), "new\n");

    // Append by default, one record asks to truncate.
    let mut outlet = FileOutlet::new(&kept);
    let records = [Record::new("w").with_meta(FileOutlet::FILE_MODE, "w")];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&kept), "w\n");
}

#[tokio::test]
async fn a_file_is_truncated_once_per_push_and_keeps_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    fs::write(&path, "old\n").unwrap();
    let mut outlet = FileOutlet::new(&path);
    // Record by record (Databay), the `w` in the middle would erase `1`.
    // A later record asking to append does not cancel the truncation.
    let records = [
        Record::new(1),
        Record::new(2).with_meta(FileOutlet::FILE_MODE, "w"),
        Record::new(3).with_meta(FileOutlet::FILE_MODE, "a"),
    ];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "1\n2\n3\n");
    // The next push appends again: truncation was only for that push.
    outlet.push(&[Record::new(4)], &update()).await.unwrap();
    assert_eq!(read(&path), "1\n2\n3\n4\n");
}

#[tokio::test]
async fn creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/out.txt");
    let mut outlet = FileOutlet::new(&path);
    outlet.push(&[Record::new(7)], &update()).await.unwrap();
    assert_eq!(read(&path), "7\n");
}

#[tokio::test]
async fn a_bad_mode_rejects_the_record_naming_it_and_the_rest_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut outlet = FileOutlet::new(&path);
    let records = [
        Record::new(1),
        Record::new(2).with_meta(FileOutlet::FILE_MODE, "r+"),
    ];
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 record rejected: record 1: metadata `FileOutlet.FILE_MODE`: unknown file mode \
         `r+`: expected \"a\" (append) or \"w\" (truncate)"
    );
    assert!(
        err.downcast_ref::<Rejected>()
            .is_some_and(|r| r.contains(1))
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
}

#[tokio::test]
async fn a_non_string_path_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut outlet = FileOutlet::new(dir.path().join("out.txt"));
    let records = [Record::new(1).with_meta(FileOutlet::FILEPATH, 5)];
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 record rejected: record 0: metadata `FileOutlet.FILEPATH` must be a string, found a number"
    );
}

#[tokio::test]
async fn an_io_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let path = dir.path().join("taken");
    fs::create_dir(&path).unwrap();
    let mut outlet = FileOutlet::new(&path);
    let err = outlet.push(&[Record::new(1)], &update()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot open `{}`: ", path.display())),
        "{text}"
    );
}

#[test]
fn accepts_only_utf8_encodings() {
    for name in ["utf-8", "UTF-8", "utf8", "utf_8"] {
        assert!(FileOutlet::new("x").encoding(name).is_ok(), "{name}");
    }
    let err = FileOutlet::new("x").encoding("latin-1").unwrap_err();
    assert!(matches!(err, FileOutletError::Encoding(_)));
    assert_eq!(
        err.to_string(),
        "unsupported encoding `latin-1`: FileOutlet writes utf-8 only"
    );
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checks.txt");
    let make = {
        let path = path.clone();
        move || FileOutlet::new(&path)
    };
    OutletTester::new(make).run().await.unwrap();
    let text = read(&path);
    // Six records per push, two pushes; the newline inside an object
    // payload is escaped by JSON, so each record is one line.
    assert_eq!(text.lines().count(), 12, "{text}");
    assert!(text.starts_with("{\"id\":1,\"name\":\"a\",\"nested\":{\"x\":[1,2]}}\n"));
    assert!(
        text.contains("\n42\nplain text\n[1,\"two\",null]\nnull\n"),
        "{text}"
    );
}

// --- bad metadata, odd paths, unusual characters ---

#[tokio::test]
async fn non_string_file_metadata_rejects_the_record_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    for (key, value) in [
        (FileOutlet::FILEPATH, Value::Null),
        (FileOutlet::FILEPATH, json!(["a"])),
        (FileOutlet::FILEPATH, json!({"path": "x"})),
        (FileOutlet::FILEPATH, json!(true)),
        (FileOutlet::FILE_MODE, json!(1)),
        (FileOutlet::FILE_MODE, json!("r+")),
    ] {
        let _ = fs::remove_file(&path);
        let records = vec![Record::new(1), Record::new(2).with_meta(key, value.clone())];
        let e = FileOutlet::new(&path)
            .push(&records, &update())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("1 record rejected: record 1: metadata") && e.contains(key),
            "{value}: {e}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n", "{e}");
    }
}

#[tokio::test]
async fn an_empty_or_directory_filepath_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("out.txt");
    for target in ["", path_str(dir.path())] {
        let records = vec![Record::new(1).with_meta(FileOutlet::FILEPATH, target)];
        let e = FileOutlet::new(&default)
            .push(&records, &update())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{target}`")), "{e}");
    }
}

/// The file outlet promises to truncate a file at most once per push, "so a
/// batch never erases its own records"; a file named two ways is two
/// targets, each truncated in turn.
#[tokio::test]
async fn one_file_under_two_spellings_keeps_the_whole_batch_in_truncate_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    fs::write(&path, "old\n").unwrap();
    let alias = other_spelling(&path);
    let records = vec![
        Record::new("first"),
        Record::new("second").with_meta(FileOutlet::FILEPATH, path_str(&alias)),
    ];
    FileOutlet::new(&path)
        .file_mode(FileMode::Truncate)
        .push(&records, &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "first\nsecond\n");
}

#[tokio::test]
async fn unicode_and_control_characters_are_written_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let records = objects(&[
        json!("é😀\u{0}\u{202e}"),
        json!({"s": "a\nb", "u": u64::MAX}),
    ]);
    FileOutlet::new(&path)
        .push(&records, &update())
        .await
        .unwrap();
    assert_eq!(
        read(&path),
        "é😀\u{0}\u{202e}\n{\"s\":\"a\\nb\",\"u\":18446744073709551615}\n"
    );
}

/// Relative paths in `FILEPATH` metadata resolve against the base
/// directory the daemon gives (the config's), like the `path` option.
#[tokio::test]
async fn relative_metadata_paths_resolve_against_the_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut outlet = FileOutlet::new(dir.path().join("default.txt")).base_dir(dir.path());
    let records = vec![Record::new("x").with_meta(FileOutlet::FILEPATH, "sub/other.txt")];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(dir.path().join("sub/other.txt")), "x\n");
    // Absolute paths are used as given.
    let absolute = dir.path().join("abs.txt");
    let mut outlet = FileOutlet::new("unused.txt").base_dir("/nonexistent");
    let records = vec![Record::new("y").with_meta(FileOutlet::FILEPATH, path_str(&absolute))];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&absolute), "y\n");
}

/// The resume state is each appended file's length after the last push;
/// restoring it cuts what was written after (a torn line, or lines the
/// resumed inlet delivers again).
#[tokio::test]
async fn a_restore_cuts_each_file_back_to_its_committed_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    let mut outlet = FileOutlet::new(&path);
    assert_eq!(outlet.snapshot(), None, "nothing written yet");
    outlet
        .push(&objects(&[json!(1), json!(2)]), &update())
        .await
        .unwrap();
    let state = outlet.snapshot().unwrap();
    assert_eq!(state, json!({"files": {path_str(&path): 4}}));
    // Written after the checkpoint, then a crash mid-line.
    outlet.push(&objects(&[json!(3)]), &update()).await.unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"torn"))
        .unwrap();

    let mut resumed = FileOutlet::new(&path);
    resumed.restore(state).await.unwrap();
    assert_eq!(read(&path), "1\n2\n");
    resumed
        .push(&objects(&[json!(3)]), &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "1\n2\n3\n", "once");
    let e = resumed
        .restore(json!({"files": {"x": "long"}}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
}

/// A started outlet already holds its default file's length: the first
/// checkpoint, taken before any push, cuts back what a crashed first push
/// wrote, keeping what was there before.
#[tokio::test]
async fn the_checkpoint_before_the_first_push_holds_the_files_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    let mut fresh = FileOutlet::new(dir.path().join("missing.ndjson"));
    fresh.on_start().await.unwrap();
    assert_eq!(
        fresh.snapshot(),
        Some(json!({"files": {path_str(&dir.path().join("missing.ndjson")): 0}}))
    );
    fs::write(&path, "0\n").unwrap();
    let mut outlet = FileOutlet::new(&path);
    outlet.on_start().await.unwrap();
    let state = outlet.snapshot().unwrap();
    assert_eq!(state, json!({"files": {path_str(&path): 2}}));
    outlet.push(&objects(&[json!(1)]), &update()).await.unwrap();

    let mut resumed = FileOutlet::new(&path);
    resumed.restore(state).await.unwrap();
    resumed.on_start().await.unwrap();
    assert_eq!(
        read(&path),
        "0\n",
        "the crashed push is cut, the old line kept"
    );
    // The restored length stands: starting does not take the file's.
    assert_eq!(
        resumed.snapshot(),
        Some(json!({"files": {path_str(&path): 2}}))
    );
}

#[tokio::test]
async fn a_link_counts_the_bytes_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let other = dir.path().join("other.txt");
    let records = vec![
        Record::new(1),
        Record::new("cat").with_meta(FileOutlet::FILEPATH, path_str(&other)),
        // Refused, so not written.
        Record::new("dog").with_meta(FileOutlet::FILE_MODE, "sideways"),
    ];
    let link = databay_core::Link::builder("file_bytes")
        .inlet(databay_core::testing::StaticInlet::records(records))
        .outlet(FileOutlet::new(&path).file_mode(FileMode::Append))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let written = (read(&path).len() + read(&other).len()) as u64;
    assert_eq!(written, 2 * ("1\n".len() + "cat\n".len()) as u64);
    assert_eq!(link.node_stats()[1].bytes, Some(written));
    assert_eq!(
        link.node_stats()[0].bytes,
        None,
        "a static inlet reads nothing"
    );
}
