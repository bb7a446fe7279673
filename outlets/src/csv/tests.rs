//! Tests of [`CsvOutlet`] against real files in temporary directories.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use databay_core::testing::{OutletTester, StaticInlet};
use databay_core::{InletHandle, Link, Outlet, Record, Rejected, Update};
use serde_json::{Value, json};

use super::{CsvOutlet, CsvOutletError, ExtraColumns};
use crate::FileMode;
use crate::common::other_spelling;

fn update() -> Update {
    Update::new(["csv"], 0)
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

/// Every row of the file, header included, as the csv crate reads it back.
fn rows(path: impl AsRef<Path>) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn objects(values: &[Value]) -> Vec<Record> {
    values.iter().cloned().map(Record::new).collect()
}

/// The rejects of a push's error as (index, message); panics if the push
/// failed for another reason.
fn rejects(err: &databay_core::BoxError) -> Vec<(usize, String)> {
    let rejected = err
        .downcast_ref::<Rejected>()
        .unwrap_or_else(|| panic!("not a per-record reject: {err}"));
    rejected
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn writes_a_header_then_one_row_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1, "name": "a"}), json!({"id": 2, "name": "b"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id,name\n1,a\n2,b\n");
}

#[tokio::test]
async fn the_header_is_written_once_across_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    for i in 0..3 {
        let records = objects(&[json!({"id": i, "name": "x"})]);
        outlet.push(&records, &update()).await.unwrap();
    }
    assert_eq!(read(&path), "id,name\n0,x\n1,x\n2,x\n");
}

#[tokio::test]
async fn appending_uses_the_existing_files_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "name,id,extra\nold,0,e\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1, "name": "new", "extra": "x"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "name,id,extra\nold,0,e\nnew,1,x\n");
}

#[tokio::test]
async fn missing_keys_give_empty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "a,b,c\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"b": 2}), json!({}), json!({"a": 1, "c": 3})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "a,b,c\n,2,\n,,\n1,,3\n");
}

#[tokio::test]
async fn a_new_file_gets_every_key_of_the_batch_in_order_of_appearance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[
        json!({"b": 1, "c": 2}),
        json!({"b": 3, "c": 4}),
        json!({"a": 5}),
        json!({"b": 6, "d": 7}),
    ]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "b,c,a,d\n1,2,,\n3,4,,\n,,5,\n6,,,7\n");
}

#[tokio::test]
async fn special_characters_are_quoted_and_read_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let tricky = [
        "comma, inside",
        "a \"quoted\" word",
        "line\nbreak",
        "crlf\r\nbreak",
        " padded ",
        "",
        "ünïcödé",
    ];
    let records: Vec<Record> = tricky
        .iter()
        .map(|t| Record::new(json!({"text": t, "n": 1})))
        .collect();
    outlet.push(&records, &update()).await.unwrap();
    let rows = rows(&path);
    assert_eq!(rows[0], ["text", "n"]);
    let texts: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(texts, tricky);
    assert!(read(&path).contains("\"a \"\"quoted\"\" word\""));
}

#[tokio::test]
async fn values_are_rendered_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({
        "a_str": "raw text",
        "b_int": -3,
        "c_float": 2.5,
        "d_bool": true,
        "e_null": null,
        "f_array": [1, "two", null],
        "g_object": {"x": {"y": [1]}},
    })]);
    outlet.push(&records, &update()).await.unwrap();
    let rows = rows(&path);
    assert_eq!(
        rows[1],
        [
            "raw text",
            "-3",
            "2.5",
            "true",
            "",
            "[1,\"two\",null]",
            "{\"x\":{\"y\":[1]}}"
        ]
    );
}

#[tokio::test]
async fn a_non_object_payload_is_rejected_naming_the_record_and_file_and_the_rest_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"a": 1}), json!([1, 2]), json!({"a": 3})]);
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        rejects(&err),
        [(
            1,
            format!(
                "record 1 for `{}`: payload must be a JSON object to become a CSV row, found an array",
                path.display()
            )
        )]
    );
    assert_eq!(read(&path), "a\n1\n3\n", "the good records are written");
}

/// The batch of the issue's report: ids 4 and 6 shared a batch with a
/// number and were lost with it.
#[tokio::test]
async fn only_the_offending_records_of_a_batch_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[
        json!({"id": 4}),
        json!(5),
        json!({"id": 6}),
        json!({"id": 7, "extra": true}),
        json!({"id": 8}),
    ]);
    let err = outlet.push(&records, &update()).await.unwrap_err();
    let indexes: Vec<usize> = rejects(&err).into_iter().map(|(i, _)| i).collect();
    assert_eq!(indexes, [1, 3]);
    assert_eq!(read(&path), "id\n4\n6\n8\n");
}

#[tokio::test]
async fn csv_file_metadata_routes_records_to_files_with_their_own_headers() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("default.csv");
    let cats = dir.path().join("cats.csv");
    let dogs = dir.path().join("dogs.csv");
    let mut outlet = CsvOutlet::new(&default);
    let records = vec![
        Record::new(json!({"cat": "tom"})).with_meta(CsvOutlet::CSV_FILE, path_str(&cats)),
        Record::new(json!({"dog": "rex", "age": 3}))
            .with_meta(CsvOutlet::CSV_FILE, path_str(&dogs)),
        Record::new(json!({"other": 1})),
        Record::new(json!({"cat": "kit"})).with_meta(CsvOutlet::CSV_FILE, path_str(&cats)),
    ];
    outlet.push(&records, &update()).await.unwrap();
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&cats), "cat\ntom\nkit\ntom\nkit\n");
    assert_eq!(read(&dogs), "dog,age\nrex,3\nrex,3\n");
    assert_eq!(read(&default), "other\n1\n1\n");
}

#[tokio::test]
async fn an_unknown_column_rejects_its_record_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id,name\n0,old\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[
        json!({"id": 1, "name": "ok"}),
        json!({"id": 2, "name": "bad", "color": "red"}),
    ]);
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        rejects(&err),
        [(
            1,
            format!(
                "record 1: column `color` is not in the header of `{}` (id,name); the record \
                 was not written (set extra_columns = \"ignore\" to drop such values)",
                path.display()
            )
        )]
    );
    let typed = err
        .downcast_ref::<Rejected>()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert!(matches!(
        typed.error.downcast_ref::<CsvOutletError>(),
        Some(CsvOutletError::UnknownColumn { index: 1, .. })
    ));
    assert_eq!(read(&path), "id,name\n0,old\n1,ok\n");
}

#[tokio::test]
async fn an_unknown_column_in_another_file_rejects_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.csv");
    let second = dir.path().join("second.csv");
    fs::write(&second, "id\n").unwrap();
    let mut outlet = CsvOutlet::new(&first);
    let records = vec![
        Record::new(json!({"id": 1})),
        Record::new(json!({"id": 2, "x": 0})).with_meta(CsvOutlet::CSV_FILE, path_str(&second)),
    ];
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(rejects(&err).len(), 1);
    assert_eq!(read(&first), "id\n1\n");
    assert_eq!(read(&second), "id\n");
}

#[tokio::test]
async fn ignore_leaves_unknown_columns_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id,name\n").unwrap();
    let mut outlet = CsvOutlet::new(&path).extra_columns(ExtraColumns::Ignore);
    let records = objects(&[json!({"id": 1, "name": "a", "color": "red"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id,name\n1,a\n");
}

#[tokio::test]
async fn duplicate_header_names_do_not_hide_unknown_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id,id\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1, "zzz": 2})]);
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert!(err.to_string().contains("column `zzz`"), "{err}");
    outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "id,id\n1,1\n");
}

#[tokio::test]
async fn truncate_mode_rewrites_header_and_rows_on_every_push() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "old,header\n1,2\n").unwrap();
    let mut outlet = CsvOutlet::new(&path).file_mode(FileMode::Truncate);
    let records = objects(&[json!({"id": 1}), json!({"id": 2})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id\n1\n2\n");
    let records = objects(&[json!({"name": "n"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "name\nn\n");
}

#[tokio::test]
async fn a_header_other_than_columns_fails_the_push_before_any_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id\n1\n").unwrap();
    let other = dir.path().join("other.csv");
    fs::write(&other, "name\nx\n").unwrap();
    let mut outlet = CsvOutlet::new(&path).columns(["id"]);
    let records = vec![
        Record::new(json!({"id": 2})),
        Record::new(json!({"id": 3})).with_meta(CsvOutlet::CSV_FILE, path_str(&other)),
    ];
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` has the header name but the outlet's columns are id: nothing was written to \
             it (write to a new file, or make `columns` match the header)",
            other.display()
        )
    );
    assert_eq!(read(&path), "id\n1\n");
    assert_eq!(read(&other), "name\nx\n");
}

#[tokio::test]
async fn a_rejected_record_in_truncate_mode_does_not_stop_the_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id\n1\n").unwrap();
    let mut outlet = CsvOutlet::new(&path).file_mode(FileMode::Truncate);
    let records = objects(&[json!({"id": 2}), json!("not an object")]);
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(rejects(&err)[0].0, 1);
    assert_eq!(read(&path), "id\n2\n");
}

#[tokio::test]
async fn a_failed_push_in_truncate_mode_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id\n1\n").unwrap();
    // A directory where the second file should be: the push fails.
    let blocked = dir.path().join("blocked.csv");
    fs::create_dir(&blocked).unwrap();
    let mut outlet = CsvOutlet::new(&path).file_mode(FileMode::Truncate);
    let records = vec![
        Record::new(json!({"id": 2})).with_meta(CsvOutlet::CSV_FILE, path_str(&blocked)),
        Record::new(json!({"id": 3})),
    ];
    outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(read(&path), "id\n1\n");
}

#[tokio::test]
async fn columns_select_and_order_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path).columns(["user", "id"]);
    let records = objects(&[
        json!({"id": 1, "user": "ann", "amount": 3}),
        json!({"amount": 4, "id": 2}),
    ]);
    outlet.push(&records, &update()).await.unwrap();
    outlet.push(&records[..1], &update()).await.unwrap();
    assert_eq!(read(&path), "user,id\nann,1\n,2\nann,1\n");
}

#[tokio::test]
async fn the_header_keeps_the_payloads_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let record: Value = serde_json::from_str(r#"{"id":1,"user":"u1","amount":2.5}"#).unwrap();
    CsvOutlet::new(&path)
        .push(&[Record::new(record)], &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "id,user,amount\n1,u1,2.5\n");
}

#[tokio::test]
async fn an_empty_existing_file_gets_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "id\n1\n");
}

#[tokio::test]
async fn a_file_removed_between_pushes_gets_a_new_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1})]);
    outlet.push(&records, &update()).await.unwrap();
    fs::remove_file(&path).unwrap();
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id\n1\n");
    fs::write(&path, "").unwrap();
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id\n1\n");
}

#[tokio::test]
async fn a_file_changed_by_someone_else_between_pushes_is_read_again() {
    // The outlet remembers how its last push left the file; any other
    // writer in between makes it read the header and last byte again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path).extra_columns(ExtraColumns::Ignore);
    let records = objects(&[json!({"id": 1, "name": "a"})]);
    outlet.push(&records, &update()).await.unwrap();
    // Appended to, without a final line break.
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"2,b")
        .unwrap();
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id,name\n1,a\n2,b\n1,a\n");
    // Replaced by another file of the same length with another header
    // (a new inode).
    let other = dir.path().join("other.csv");
    let replacement = "name,id\na,1\nb,2\nc,3\n";
    assert_eq!(replacement.len(), read(&path).len());
    fs::write(&other, replacement).unwrap();
    fs::rename(&other, &path).unwrap();
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), format!("{replacement}a,1\n"));
}

#[tokio::test]
async fn rows_start_on_a_new_line_when_the_file_lacks_a_final_line_break() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "id,name\n0,old").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1, "name": "new"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "id,name\n0,old\n1,new\n");
}

#[tokio::test]
async fn a_byte_order_mark_is_not_part_of_the_first_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, "\u{feff}id,name\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let records = objects(&[json!({"id": 1, "name": "a"})]);
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(&path), "\u{feff}id,name\n1,a\n");
}

#[tokio::test]
async fn an_unreadable_header_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    fs::write(&path, b"\xff\xfe,id\n").unwrap();
    let mut outlet = CsvOutlet::new(&path);
    let err = outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read the CSV header of `{}`: ",
            path.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x/y/out.csv");
    let mut outlet = CsvOutlet::new(&path);
    outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    assert_eq!(read(&path), "id\n1\n");
}

#[tokio::test]
async fn an_io_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taken.csv");
    fs::create_dir(&path).unwrap();
    for mode in [FileMode::Append, FileMode::Truncate] {
        let mut outlet = CsvOutlet::new(&path).file_mode(mode);
        let err = outlet
            .push(&objects(&[json!({"id": 1})]), &update())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{}`", path.display())),
            "{mode}: {err}"
        );
    }
}

#[tokio::test]
async fn a_non_string_csv_file_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut outlet = CsvOutlet::new(dir.path().join("out.csv"));
    let records = vec![Record::new(json!({"id": 1})).with_meta(CsvOutlet::CSV_FILE, true)];
    let err = outlet.push(&records, &update()).await.unwrap_err();
    assert_eq!(
        rejects(&err),
        [(
            0,
            "record 0: metadata `CsvOutlet.CSV_FILE` must be a string, found a boolean".into()
        )]
    );
}

#[test]
fn extra_columns_parses_its_two_policies() {
    assert_eq!("error".parse(), Ok(ExtraColumns::Error));
    assert_eq!("ignore".parse(), Ok(ExtraColumns::Ignore));
    assert_eq!(ExtraColumns::default(), ExtraColumns::Error);
    let err = "drop".parse::<ExtraColumns>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown extra_columns policy `drop`: expected \"error\" or \"ignore\""
    );
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checks.csv");
    let make = {
        let path = path.clone();
        move || CsvOutlet::new(&path)
    };
    let records = objects(&[
        json!({"id": 1, "name": "a", "nested": {"x": [1, 2]}}),
        json!({"id": 2, "name": "b, with \"quotes\"\nand a newline"}),
    ]);
    OutletTester::new(make)
        .records(records)
        .run()
        .await
        .unwrap();
    let rows = rows(&path);
    assert_eq!(rows.len(), 5, "one header, two rows per push: {rows:?}");
    assert_eq!(rows[0], ["id", "name", "nested"]);
    assert_eq!(rows[2], ["2", "b, with \"quotes\"\nand a newline", ""]);
}

#[tokio::test]
async fn writes_what_a_link_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let cats = dir.path().join("cat.csv");
    let dogs = dir.path().join("dog.csv");
    // Databay's example: one outlet, a file per inlet through global metadata.
    let inlet_a = InletHandle::builder(StaticInlet::values([json!({"n": 1}), json!({"n": 2})]))
        .name("cats")
        .meta(CsvOutlet::CSV_FILE, path_str(&cats))
        .build();
    let inlet_b = InletHandle::builder(StaticInlet::values([json!({"n": 3})]))
        .name("dogs")
        .meta(CsvOutlet::CSV_FILE, path_str(&dogs))
        .build();
    let link = Link::builder("csv_link")
        .inlet(inlet_a)
        .inlet(inlet_b)
        .outlet(CsvOutlet::new(dir.path().join("unused.csv")))
        .every(Duration::from_secs(60))
        .build()
        .unwrap();
    link.start().await.unwrap();
    for _ in 0..2 {
        let report = link.transfer().await.unwrap();
        assert_eq!(report.records_out, 3);
    }
    assert!(link.shutdown().await.is_empty());
    assert_eq!(read(&cats), "n\n1\n2\n1\n2\n");
    assert_eq!(read(&dogs), "n\n3\n3\n");
    assert!(!dir.path().join("unused.csv").exists());
}

// --- awkward keys and values, odd existing files, unwritable targets ---

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
async fn bad_metadata_and_payloads_are_rejected_naming_the_record() {
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
        let _ = fs::remove_file(&path);
        let records = vec![Record::new(json!({"a": 0})), record];
        let err = CsvOutlet::new(&path)
            .push(&records, &update())
            .await
            .unwrap_err();
        let rejects = rejects(&err);
        assert_eq!(rejects.len(), 1, "{err}");
        assert!(rejects[0].1.starts_with(expect), "{err}");
        assert_eq!(read(&path), "a\n0\n", "{err}: the good record is written");
    }
}

/// Relative paths in `CSV_FILE` metadata resolve against the base
/// directory, like the `path` option.
#[tokio::test]
async fn relative_metadata_paths_resolve_against_the_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut outlet = CsvOutlet::new(dir.path().join("default.csv")).base_dir(dir.path());
    let records =
        vec![Record::new(json!({"a": 1})).with_meta(CsvOutlet::CSV_FILE, "sub/other.csv")];
    outlet.push(&records, &update()).await.unwrap();
    assert_eq!(read(dir.path().join("sub/other.csv")), "a\n1\n");
}

/// A started outlet already holds its default file's length, so the first
/// checkpoint cuts back a crashed first push (header and rows) and keeps
/// the rows that were there before; a restored length is not replaced by
/// the file's.
#[tokio::test]
async fn the_checkpoint_before_the_first_push_holds_the_files_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut outlet = CsvOutlet::new(&path);
    outlet.on_start().await.unwrap();
    let empty = outlet.snapshot().unwrap();
    assert_eq!(empty, json!({"files": {path_str(&path): 0}}));
    outlet
        .push(&objects(&[json!({"id": 1})]), &update())
        .await
        .unwrap();
    let one = outlet.snapshot().unwrap();
    outlet
        .push(&objects(&[json!({"id": 2})]), &update())
        .await
        .unwrap();

    let mut resumed = CsvOutlet::new(&path);
    resumed.restore(one.clone()).await.unwrap();
    resumed.on_start().await.unwrap();
    assert_eq!(read(&path), "id\n1\n");
    assert_eq!(resumed.snapshot(), Some(one));

    let mut from_start = CsvOutlet::new(&path);
    from_start.restore(empty).await.unwrap();
    assert_eq!(
        read(&path),
        "",
        "cut back to the length before the first push"
    );
}

/// Rows of every kind: plain, quoted, multi-line, numbers, nested values,
/// missing cells, and (every 97th) an unknown column, which
/// `ExtraColumns::Error` (the default) refuses.
fn mixed_rows(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| match i % 97 {
            0 => json!({"id": i, "name": "x", "stray": 1}),
            1 => json!({"id": i, "name": "with, comma", "note": "line\nbreak"}),
            2 => json!({"id": i, "note": "\"quoted\"", "tags": [i, "a"]}),
            _ => json!({"id": i, "name": format!("n{i}"), "note": null, "tags": {"k": i}}),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_push_encoded_in_parts_writes_what_small_pushes_write() {
    let dir = tempfile::tempdir().unwrap();
    let header = "id,name,note,tags\n";
    // An existing file whose last row has no line end yet.
    let (whole, small) = (dir.path().join("whole.csv"), dir.path().join("small.csv"));
    for path in [&whole, &small] {
        fs::write(path, format!("{header}0,start,,")).unwrap();
    }
    let values = mixed_rows(5_000);
    let records = objects(&values);

    // One push of 5 000 rows: heavy work, encoded in parts of 512 rows
    // across the compute pool.
    let err = CsvOutlet::new(&whole)
        .push(&records, &update())
        .await
        .unwrap_err();
    let refused: Vec<usize> = rejects(&err).into_iter().map(|(i, _)| i).collect();

    // The same rows in pushes of 100: each encoded whole, in place.
    let mut outlet = CsvOutlet::new(&small);
    let mut refused_small = Vec::new();
    for (n, chunk) in records.chunks(100).enumerate() {
        if let Err(e) = outlet.push(chunk, &update()).await {
            refused_small.extend(rejects(&e).into_iter().map(|(i, _)| n * 100 + i));
        }
    }
    let want: Vec<usize> = (0..5_000).filter(|i| i % 97 == 0).collect();
    assert_eq!(refused, want, "the rows refused, in order");
    assert_eq!(refused_small, want);
    assert_eq!(read(&whole), read(&small), "the bytes differ in parts");
    assert_eq!(rows(&whole).len(), 2 + 5_000 - want.len());
}
