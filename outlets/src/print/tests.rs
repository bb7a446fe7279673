//! Tests of [`PrintOutlet`]: exact output for each option combination,
//! error reporting, and the outlet checks.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use databay_core::testing::OutletTester;
use databay_core::{Outlet, Record, Update};
use serde_json::json;

use super::PrintOutlet;

/// A writer whose bytes the test can read after the outlet wrote them.
#[derive(Clone, Default)]
struct SharedBuf {
    bytes: Arc<Mutex<Vec<u8>>>,
    flushes: Arc<Mutex<usize>>,
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        *self.flushes.lock().unwrap() += 1;
        Ok(())
    }
}

struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "reader went away",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "reader went away",
        ))
    }
}

fn batch() -> Vec<Record> {
    vec![
        Record::new(json!({"id": 1})).with_meta("animal", "cat"),
        Record::new(json!("text")),
    ]
}

async fn printed(only_payload: bool, skip_update: bool) -> String {
    let buf = SharedBuf::default();
    let mut outlet = PrintOutlet::to_writer(buf.clone())
        .only_payload(only_payload)
        .skip_update(skip_update);
    outlet
        .push(&batch(), &Update::new(["demo"], 3))
        .await
        .unwrap();
    buf.text()
}

#[tokio::test]
async fn prints_update_and_whole_record_by_default() {
    assert_eq!(
        printed(false, false).await,
        "demo.3 Record(payload={\"id\":1}, metadata={\"animal\": \"cat\"})\n\
         demo.3 Record(payload=\"text\", metadata={})\n"
    );
}

#[tokio::test]
async fn only_payload_prints_the_payload_as_json() {
    assert_eq!(
        printed(true, false).await,
        "demo.3 {\"id\":1}\ndemo.3 \"text\"\n"
    );
}

#[tokio::test]
async fn skip_update_drops_the_prefix() {
    assert_eq!(
        printed(false, true).await,
        "Record(payload={\"id\":1}, metadata={\"animal\": \"cat\"})\n\
         Record(payload=\"text\", metadata={})\n"
    );
}

#[tokio::test]
async fn only_payload_and_skip_update_print_bare_payloads() {
    assert_eq!(printed(true, true).await, "{\"id\":1}\n\"text\"\n");
}

#[tokio::test]
async fn flushes_once_per_batch_and_appends_across_batches() {
    let buf = SharedBuf::default();
    let mut outlet = PrintOutlet::to_writer(buf.clone()).only_payload(true);
    outlet.push(&batch(), &Update::new(["a"], 0)).await.unwrap();
    outlet.push(&batch(), &Update::new(["a"], 1)).await.unwrap();
    assert_eq!(
        buf.text(),
        "a.0 {\"id\":1}\na.0 \"text\"\na.1 {\"id\":1}\na.1 \"text\"\n"
    );
    assert_eq!(*buf.flushes.lock().unwrap(), 2);
}

#[tokio::test]
async fn an_empty_batch_prints_nothing() {
    let buf = SharedBuf::default();
    let mut outlet = PrintOutlet::to_writer(buf.clone());
    outlet.push(&[], &Update::new(["a"], 0)).await.unwrap();
    assert_eq!(buf.text(), "");
    assert_eq!(*buf.flushes.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_write_error_is_returned_not_panicked() {
    let mut outlet = PrintOutlet::to_writer(BrokenPipe);
    let err = outlet
        .push(&batch(), &Update::new(["a"], 0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PrintOutlet cannot print records to its writer: reader went away"
    );
}

#[tokio::test]
async fn passes_the_outlet_checks() {
    let buf = SharedBuf::default();
    let handle = buf.clone();
    OutletTester::new(move || PrintOutlet::to_writer(handle.clone()))
        .run()
        .await
        .unwrap();
    // Two pushes of the tester's six default records.
    assert_eq!(buf.text().lines().count(), 12, "{}", buf.text());
}

#[tokio::test]
async fn passes_the_outlet_checks_on_stdout() {
    // Real stdout bypasses the test harness's capture: keep the noise short.
    OutletTester::new(|| PrintOutlet::new().skip_update(true).only_payload(true))
        .records(vec![Record::new("PrintOutlet stdout check")])
        .run()
        .await
        .unwrap();
}

#[test]
fn debug_names_the_options_not_the_writer() {
    let outlet = PrintOutlet::new().skip_update(true);
    assert_eq!(
        format!("{outlet:?}"),
        "PrintOutlet { only_payload: false, skip_update: true, target: \"stdout\" }"
    );
}

// --- huge and deep payloads ---

#[tokio::test]
async fn huge_and_deep_payloads_print_whole_on_one_line() {
    let sink = SharedBuf::default();
    let mut outlet = PrintOutlet::to_writer(sink.clone())
        .only_payload(true)
        .skip_update(true);
    let huge = "x".repeat(8 * 1024 * 1024);
    let mut deep = json!(1);
    for _ in 0..500 {
        deep = json!([deep]);
    }
    let records: Vec<Record> = [json!(huge), deep.clone(), json!({"nl": "a\nb"})]
        .into_iter()
        .map(Record::new)
        .collect();
    outlet
        .push(&records, &Update::new(["print"], 0))
        .await
        .unwrap();
    let text = sink.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].len(), huge.len() + 2);
    assert_eq!(lines[1], serde_json::to_string(&deep).unwrap());
    assert_eq!(lines[2], "{\"nl\":\"a\\nb\"}");
}
