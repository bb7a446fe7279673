//! Adversarial tests of the built-in outlets: awkward keys and values,
//! odd existing files, unwritable targets, bad metadata, huge payloads.
//! Every bad input must give an error naming what and where, lose nothing
//! and never panic.
//!
//! Tests marked `#[ignore = "BUG: ..."]` demonstrate a known, open bug: they fail today
//! and pass once it is fixed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use databay_core::{Outlet, Record, Update};
use databay_outlets::{CsvOutlet, FileMode, FileOutlet, NullOutlet, PrintOutlet};
use serde_json::{Value, json};

fn update() -> Update {
    Update::new(["adversarial"], 0)
}

fn objects(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

/// Every row of a CSV file, header included, as a CSV reader sees it.
fn rows(path: impl AsRef<Path>) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The same file as `path`, spelled differently (`dir/sub/../name`).
fn other_spelling(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap();
    fs::create_dir_all(dir.join("sub")).unwrap();
    dir.join("sub").join("..").join(path.file_name().unwrap())
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------
// CsvOutlet
// ---------------------------------------------------------------------

#[tokio::test]
async fn awkward_keys_survive_the_header_round_trip_across_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.csv");
    let mut outlet = CsvOutlet::new(&path);
    let record = json!({
        "a,b": 1, "q\"uote": 2, "new\nline": 3, "cr\r": 4, "é😀": 5,
        "A": 6, "a": 7, "": 8, " padded ": 9, "#": 10
    });
    // The second push reads the header back from the file and must find
    // every key in it: no unknown-column error, rows in the same order.
    for _ in 0..3 {
        outlet
            .push(&objects(std::slice::from_ref(&record)), &update())
            .await
            .unwrap();
    }
    let rows = rows(&path);
    assert_eq!(rows.len(), 4, "{}", read(&path));
    let header = &rows[0];
    let mut keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut got: Vec<&str> = header.iter().map(String::as_str).collect();
    got.sort_unstable();
    assert_eq!(got, keys);
    for row in &rows[1..] {
        for (name, cell) in header.iter().zip(row) {
            assert_eq!(*cell, record[name.as_str()].to_string(), "column {name:?}");
        }
    }
}

#[tokio::test]
async fn nested_values_are_json_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.csv");
    let record = json!({
        "arr": [1, "two", [3.5], null], "obj": {"k": {"x": "a,\"b\"\n"}},
        "big": u64::MAX, "neg": i64::MIN, "f": 1e300, "t": true, "n": null
    });
    CsvOutlet::new(&path)
        .push(&objects(std::slice::from_ref(&record)), &update())
        .await
        .unwrap();
    let rows = rows(&path);
    for (name, cell) in rows[0].iter().zip(&rows[1]) {
        let value = &record[name.as_str()];
        match value {
            Value::Null => assert_eq!(cell, ""),
            Value::String(s) => assert_eq!(cell, s),
            other => assert_eq!(&serde_json::from_str::<Value>(cell).unwrap(), other),
        }
    }
}

#[tokio::test]
async fn an_existing_header_with_bom_and_crlf_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("excel.csv");
    fs::write(&path, "\u{feff}name,id\r\nold,0\r\n").unwrap();
    CsvOutlet::new(&path)
        .push(&objects(&[json!({"id": 1, "name": "new"})]), &update())
        .await
        .unwrap();
    assert_eq!(rows(&path)[1..], [vec!["old", "0"], vec!["new", "1"]]);
    // A last line without any line break gets one first.
    fs::write(&path, "name,id\r\nold,0").unwrap();
    CsvOutlet::new(&path)
        .push(&objects(&[json!({"id": 1, "name": "new"})]), &update())
        .await
        .unwrap();
    assert_eq!(rows(&path)[1..], [vec!["old", "0"], vec!["new", "1"]]);
}

/// Records bound for one file under two spellings (metadata naming it via
/// `sub/..`) are two groups: both inspect the file before either writes.
/// Appending, both write a header, so the second header lands mid-file as
/// a data row; truncating, the second group's truncation erases the
/// first group's rows, though the push returned Ok.
#[tokio::test]
async fn one_file_under_two_spellings_gets_one_header_and_every_row() {
    for mode in [FileMode::Append, FileMode::Truncate] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let alias = other_spelling(&path);
        let records = vec![
            Record::new(json!({"id": 1})),
            Record::new(json!({"id": 2})).with_meta(CsvOutlet::CSV_FILE, path_str(&alias)),
        ];
        CsvOutlet::new(&path)
            .file_mode(mode)
            .push(&records, &update())
            .await
            .unwrap();
        assert_eq!(read(&path), "id\n1\n2\n", "{mode:?}");
    }
}

/// A batch holding only `{}` gives a new file the header `""` (one column
/// with an empty name) and a row `""`; from then on every record with a
/// key fails with "column `id` is not in the header of ... ()".
#[tokio::test]
async fn an_empty_object_does_not_poison_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    // Either it is refused with an error naming the record, or accepted
    // without inventing a column.
    let first = outlet.push(&objects(&[json!({})]), &update()).await;
    if let Err(e) = &first {
        assert!(e.to_string().contains("record 0"), "{e}");
    }
    outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    let rows = rows(&path);
    assert_eq!(rows[0], vec!["id"], "{}", read(&path));
    assert_eq!(rows.last().unwrap(), &vec!["1"]);
}

#[tokio::test]
async fn a_directory_or_an_impossible_path_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    // A file where a directory should be: ENOTDIR on create.
    fs::write(dir.path().join("plain"), "").unwrap();
    let impossible = dir.path().join("plain").join("x.csv");
    for bad in [dir.path().to_path_buf(), impossible] {
        for mode in [FileMode::Append, FileMode::Truncate] {
            let records = vec![
                Record::new(json!({"a": 1})).with_meta(CsvOutlet::CSV_FILE, path_str(&bad)),
                Record::new(json!({"a": 2})),
            ];
            let e = CsvOutlet::new(&good)
                .file_mode(mode)
                .push(&records, &update())
                .await
                .unwrap_err()
                .to_string();
            // Names the file, or the obstruction on its way (`plain`).
            let parent = path_str(bad.parent().unwrap());
            assert!(e.contains(path_str(&bad)) || e.contains(parent), "{e}");
        }
    }
    // The bad file came first, so the good one was never written.
    assert!(!good.exists());
}

#[cfg(unix)]
#[tokio::test]
async fn a_read_only_file_fails_naming_it_and_is_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.csv");
    fs::write(&path, "a\n1\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    if fs::OpenOptions::new().append(true).open(&path).is_ok() {
        // Running as root: permissions do not apply, nothing to test.
        return;
    }
    let e = CsvOutlet::new(&path)
        .push(&objects(&[json!({"a": 2})]), &update())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(path_str(&path)) && e.contains("ermission"),
        "{e}"
    );
    assert_eq!(read(&path), "a\n1\n");
}

#[tokio::test]
async fn bad_metadata_and_payloads_name_the_record_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    for (record, expect) in [
        (
            Record::new(json!({"a": 1})).with_meta(CsvOutlet::CSV_FILE, 5),
            "record 1: metadata",
        ),
        (
            Record::new(json!({"a": 1})).with_meta(CsvOutlet::CSV_FILE, Value::Null),
            "record 1: metadata",
        ),
        (Record::new(json!([1, 2])), "record 1 for"),
        (Record::new(json!("text")), "record 1 for"),
        (Record::new(Value::Null), "record 1 for"),
    ] {
        let records = vec![Record::new(json!({"a": 0})), record];
        let e = CsvOutlet::new(&path)
            .push(&records, &update())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(expect), "{e}");
        assert!(!path.exists(), "{e}: something was written");
    }
}

// ---------------------------------------------------------------------
// FileOutlet
// ---------------------------------------------------------------------

#[tokio::test]
async fn non_string_file_metadata_names_the_record_and_writes_nothing() {
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
        let records = vec![Record::new(1), Record::new(2).with_meta(key, value.clone())];
        let e = FileOutlet::new(&path)
            .push(&records, &update())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("record 1: metadata") && e.contains(key),
            "{value}: {e}"
        );
        assert!(!path.exists(), "{e}: something was written");
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

// ---------------------------------------------------------------------
// PrintOutlet, NullOutlet
// ---------------------------------------------------------------------

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn huge_and_deep_payloads_print_whole_on_one_line() {
    let sink = Shared::default();
    let mut outlet = PrintOutlet::to_writer(sink.clone())
        .only_payload(true)
        .skip_update(true);
    let huge = "x".repeat(8 * 1024 * 1024);
    let mut deep = json!(1);
    for _ in 0..500 {
        deep = json!([deep]);
    }
    let records = objects(&[json!(huge), deep.clone(), json!({"nl": "a\nb"})]);
    outlet.push(&records, &update()).await.unwrap();
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].len(), huge.len() + 2);
    assert_eq!(lines[1], serde_json::to_string(&deep).unwrap());
    assert_eq!(lines[2], "{\"nl\":\"a\\nb\"}");
}

#[tokio::test]
async fn the_null_outlet_accepts_anything() {
    let mut outlet = NullOutlet::new();
    let records = objects(&[Value::Null, json!([[[]]]), json!("x".repeat(1 << 20))]);
    outlet.push(&records, &update()).await.unwrap();
    outlet.push(&[], &update()).await.unwrap();
}
