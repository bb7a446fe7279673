//! Tests of [`DirInlet`], on real files in temporary directories: reading
//! files as partitions, new and finished files, resume state (restore
//! equivalence at random cut points, a file rotated between snapshot and
//! restore), and recovery from a failed transfer.

use std::collections::BTreeMap;
use std::path::Path;

use databay_core::testing::{CollectOutlet, InletTester};
use databay_core::{Inlet, InletHandle, Link, Pull, Update};
use serde_json::{Value, json};

use super::DirInlet;

fn update() -> Update {
    Update::new(["dir"], 0)
}

fn write(dir: &Path, name: &str, lines: std::ops::Range<u32>) {
    let text: String = lines
        .map(|n| format!("{{\"f\":\"{name}\",\"n\":{n}}}\n"))
        .collect();
    std::fs::write(dir.join(name), text).unwrap();
}

fn three_files(dir: &Path) {
    write(dir, "a.ndjson", 0..7);
    write(dir, "b.ndjson", 0..3);
    write(dir, "c.ndjson", 0..11);
    std::fs::write(dir.join("ignored.txt"), "not matched\n").unwrap();
}

fn inlet(dir: &Path) -> DirInlet {
    DirInlet::new(dir.join("*.ndjson"))
        .json(true)
        .lines_per_transfer(2)
        .discover(false)
}

fn link_of(inlet: DirInlet, out: &CollectOutlet) -> Link {
    Link::builder("dir")
        .inlet(InletHandle::builder(inlet).name("logs").build())
        .outlet(out.clone())
        .build()
        .unwrap()
}

fn payloads(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

#[tokio::test]
async fn passes_the_inlet_tester() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let path = dir.path().to_path_buf();
    InletTester::new(move || inlet(&path)).run().await.unwrap();
}

#[tokio::test]
async fn each_matching_file_is_a_partition_read_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let mut inlet = inlet(dir.path());
    let first = inlet.pull(&update()).await.unwrap();
    assert_eq!(
        payloads(&first),
        [
            json!({"f": "a.ndjson", "n": 0}),
            json!({"f": "a.ndjson", "n": 1}),
            json!({"f": "b.ndjson", "n": 0}),
            json!({"f": "b.ndjson", "n": 1}),
            json!({"f": "c.ndjson", "n": 0}),
            json!({"f": "c.ndjson", "n": 1}),
        ]
    );
    assert_eq!(inlet.files().len(), 3, "ignored.txt does not match");
    // b ends at its second pull; the others go on.
    let second = inlet.pull(&update()).await.unwrap();
    assert!(matches!(second, Pull::Records(_)));
    assert_eq!(payloads(&second).len(), 5);
    let mut total = 11;
    loop {
        let pull = inlet.pull(&update()).await.unwrap();
        total += pull.records().len();
        if matches!(pull, Pull::Exhausted(_)) {
            break;
        }
    }
    assert_eq!(total, 21, "every line once");
}

/// Restore equivalence: cut anywhere, snapshot, restore into a new inlet,
/// and the records after the cut are those of an uninterrupted run.
#[tokio::test]
async fn restoring_at_random_cuts_gives_the_uninterrupted_records() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let whole = {
        let out = CollectOutlet::new();
        let link = link_of(inlet(dir.path()), &out);
        for _ in 0..8 {
            link.transfer().await.unwrap();
        }
        out.payloads()
    };
    assert_eq!(whole.len(), 21);
    let mut seed = 0x2545_f491_u32;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let cut = 1 + (seed % 6) as usize;
        let out = CollectOutlet::new();
        let first = link_of(inlet(dir.path()), &out);
        for _ in 0..cut {
            first.transfer().await.unwrap();
        }
        let text = serde_json::to_string(&first.inlet_snapshots().await).unwrap();
        drop(first);
        let states: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
        let second = link_of(inlet(dir.path()), &out);
        second.restore_inlets(states).await.unwrap();
        for _ in 0..8 {
            second.transfer().await.unwrap();
        }
        assert_eq!(out.payloads(), whole, "cut after {cut} transfers");
    }
}

/// A file rotated (renamed away, a new one written under its name) between
/// snapshot and restore: the new file is read from its start, the others
/// resume.
#[tokio::test]
async fn a_file_rotated_between_snapshot_and_restore_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let mut first = inlet(dir.path());
    first.pull(&update()).await.unwrap();
    first.commit(&update()).await.unwrap();
    let state = first.snapshot().unwrap();
    drop(first);
    std::fs::rename(dir.path().join("a.ndjson"), dir.path().join("a.ndjson.1")).unwrap();
    std::fs::write(dir.path().join("a.ndjson"), "{\"f\":\"new\",\"n\":0}\n").unwrap();

    let mut second = inlet(dir.path());
    second.restore(state).await.unwrap();
    let pull = second.pull(&update()).await.unwrap();
    assert_eq!(
        payloads(&pull),
        [
            json!({"f": "new", "n": 0}),
            json!({"f": "b.ndjson", "n": 2}),
            json!({"f": "c.ndjson", "n": 2}),
            json!({"f": "c.ndjson", "n": 3}),
        ]
    );
}

/// New files are picked up; finished ones are remembered, also across a
/// restore, and not read again.
#[tokio::test]
async fn new_files_are_picked_up_and_finished_ones_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.ndjson", 0..2);
    let mut first = DirInlet::new(dir.path().join("*.ndjson"))
        .json(true)
        .lines_per_transfer(10);
    let pull = first.pull(&update()).await.unwrap();
    assert!(matches!(pull, Pull::Records(_)), "discovering: never ends");
    assert_eq!(payloads(&pull).len(), 2);
    first.commit(&update()).await.unwrap();
    assert!(payloads(&first.pull(&update()).await.unwrap()).is_empty());
    write(dir.path(), "2.ndjson", 0..3);
    let pull = first.pull(&update()).await.unwrap();
    assert_eq!(payloads(&pull).len(), 3, "the new file");
    first.commit(&update()).await.unwrap();
    let state = first.snapshot().unwrap();
    assert_eq!(state.as_object().unwrap().len(), 2);

    let mut second = DirInlet::new(dir.path().join("*.ndjson"))
        .json(true)
        .lines_per_transfer(10);
    second.restore(state).await.unwrap();
    assert!(
        payloads(&second.pull(&update()).await.unwrap()).is_empty(),
        "finished files are remembered"
    );
}

/// A bad line fails the transfer, naming the file and the line; every file
/// read in it goes back, so after the fix nothing is lost or repeated.
#[tokio::test]
async fn a_bad_line_fails_the_transfer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.ndjson", 0..3);
    std::fs::write(
        dir.path().join("b.ndjson"),
        "{\"f\":\"b\",\"n\":0}\n{oops\n",
    )
    .unwrap();
    let out = CollectOutlet::new();
    let link = link_of(inlet(dir.path()), &out);
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(e.contains("b.ndjson") && e.contains("line 2"), "{e}");
    assert_eq!(out.len(), 0);
    std::fs::write(
        dir.path().join("b.ndjson"),
        "{\"f\":\"b\",\"n\":0}\n{\"f\":\"b\",\"n\":1}\n",
    )
    .unwrap();
    for _ in 0..3 {
        link.transfer().await.unwrap();
    }
    let mut got: Vec<String> = out
        .payloads()
        .iter()
        .map(|v| format!("{}{}", v["f"].as_str().unwrap(), v["n"]))
        .collect();
    got.sort();
    assert_eq!(got, ["a.ndjson0", "a.ndjson1", "a.ndjson2", "b0", "b1"]);
}

#[tokio::test]
async fn a_resume_state_that_is_not_positions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.ndjson", 0..2);
    let mut inlet = inlet(dir.path());
    let e = inlet.restore(json!("x")).await.unwrap_err().to_string();
    assert!(e.contains("object"), "{e}");
    let key = dir.path().join("a.ndjson").to_string_lossy().into_owned();
    inlet
        .restore(json!({ key.clone(): {"offset": "ten"} }))
        .await
        .unwrap();
    // Refused when the file's partition is built, naming it.
    let e = inlet.pull(&update()).await.unwrap_err().to_string();
    assert!(e.contains(&key) && e.contains("not a file position"), "{e}");
}

/// Partitions are read on tasks of their own; the bytes each one reads
/// still count toward the inlet: every matched file's size, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_of_every_partition_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
    let expected = size("a.ndjson") + size("b.ndjson") + size("c.ndjson");
    let out = CollectOutlet::new();
    let link = link_of(inlet(dir.path()), &out);
    for _ in 0..6 {
        link.transfer().await.unwrap();
    }
    assert_eq!(out.len(), 7 + 3 + 11);
    assert_eq!(link.node_stats()[0].bytes, Some(expected));
}

// --- reading ahead ---------------------------------------------------------

const BIG: usize = databay_core::compute::HEAVY_BATCH * 2;

fn big_inlet(dir: &Path) -> DirInlet {
    DirInlet::new(dir.join("*.ndjson"))
        .json(true)
        .lines_per_transfer(BIG)
        .discover(false)
}

/// Every line of two files, each name and number once, sorted.
fn every_line(out: &CollectOutlet) -> Vec<(String, u64)> {
    let mut got: Vec<(String, u64)> = out
        .payloads()
        .iter()
        .map(|v| {
            (
                v["f"].as_str().unwrap().to_owned(),
                v["n"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    got
}

/// Large batches are read ahead; a link cut at any transfer and restored
/// from its snapshot gives the records of the uninterrupted run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_read_ahead_restore_at_any_cut_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let lines = (3 * BIG + 5) as u32;
    write(dir.path(), "a.ndjson", 0..lines);
    write(dir.path(), "b.ndjson", 0..lines / 2);
    let mut want: Vec<(String, u64)> = (0..lines)
        .map(|n| ("a.ndjson".to_owned(), u64::from(n)))
        .chain((0..lines / 2).map(|n| ("b.ndjson".to_owned(), u64::from(n))))
        .collect();
    want.sort();
    for cut in 1..=4 {
        let out = CollectOutlet::new();
        let first = link_of(big_inlet(dir.path()), &out);
        for _ in 0..cut {
            first.transfer().await.unwrap();
        }
        let states = first.inlet_snapshots().await;
        drop(first);
        let second = link_of(big_inlet(dir.path()), &out);
        second.restore_inlets(states).await.unwrap();
        for _ in 0..8 {
            second.transfer().await.unwrap();
        }
        assert_eq!(every_line(&out), want, "cut after {cut} transfers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_read_ahead_fails_its_transfer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = BIG + 10;
    let good: String = (0..2 * BIG)
        .map(|n| format!("{{\"f\":\"a.ndjson\",\"n\":{n}}}\n"))
        .collect();
    let broken: String = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == bad {
                "{oops\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir.path().join("a.ndjson"), &broken).unwrap();
    let out = CollectOutlet::new();
    let link = link_of(big_inlet(dir.path()), &out);
    link.transfer().await.unwrap();
    assert_eq!(out.len(), BIG, "the first batch, whole");
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(e.contains(&format!("line {bad}")), "{e}");
    std::fs::write(dir.path().join("a.ndjson"), &good).unwrap();
    for _ in 0..3 {
        link.transfer().await.unwrap();
    }
    let want: Vec<(String, u64)> = (0..2 * BIG as u64)
        .map(|n| ("a.ndjson".to_owned(), n))
        .collect();
    assert_eq!(every_line(&out), want);
}
