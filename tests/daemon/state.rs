//! Checkpoints through the binary: with `[daemon] state_dir`, a daemon
//! killed with SIGKILL and started again resumes after what it delivered,
//! and the file outlet cuts what it wrote after the last checkpoint, so
//! every line arrives exactly once; one stopped with
//! SIGTERM repeats nothing; `databay state list|show|reset` read and clear
//! the store.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

const LINES: usize = 3_000;
const BATCH: usize = 50;

fn setup(dir: &Path) {
    let text: String = (0..LINES).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    fs::write(dir.join("in.ndjson"), text).unwrap();
    fs::write(
        dir.join("resume.toml"),
        format!(
            r#"
[daemon]
state_dir = "state"

[admin]
enabled = false

[[link]]
name = "copy"
every = "20ms"

  [[link.inlet]]
  type = "file"
  name = "numbers"
  path = "in.ndjson"
  json = true
  lines_per_transfer = {BATCH}

  [[link.outlet]]
  type = "file"
  path = "out.ndjson"
"#
        ),
    )
    .unwrap();
}

/// How often each number arrived.
fn counts(dir: &Path) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in lines(&dir.join("out.ndjson")) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        *seen.entry(v["n"].as_u64().unwrap()).or_insert(0) += 1;
    }
    seen
}

fn run_until(dir: &Path, at_least: usize) -> Daemon {
    let mut daemon = Daemon::start(dir, &["run", "resume.toml"]);
    eventually("lines written", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (lines(&dir.join("out.ndjson")).len() >= at_least).then_some(())
    });
    daemon
}

#[test]
fn a_killed_daemon_resumes_after_what_it_delivered() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut first = run_until(dir.path(), 500);
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    let before = lines(&dir.path().join("out.ndjson")).len();
    assert!(before < LINES, "the kill came too late to test anything");

    let mut second = run_until(dir.path(), LINES);
    let resumed = second.count_logs("resuming from the link's checkpoint");
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(20));
    assert_eq!(resumed, 1, "{}", second.stderr());
    let seen = counts(dir.path());
    assert_eq!(seen.len(), LINES, "every line arrived");
    let repeated: usize = seen.values().map(|n| n - 1).sum();
    // The file outlet's length is in the checkpoint: what a transfer wrote
    // after its last checkpoint is cut on restore and written once more,
    // so every line is there exactly once.
    assert_eq!(repeated, 0, "repeated lines");
}

#[test]
fn a_daemon_stopped_gracefully_repeats_nothing_and_state_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut first = run_until(dir.path(), 500);
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(20));

    let list = output({
        let mut cmd = databay();
        cmd.args(["state", "list", "resume.toml"])
            .current_dir(dir.path());
        cmd
    });
    let listed = text(&list.stdout);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(
        listed.contains("copy: next index") && listed.contains("inlets with state: [numbers]"),
        "{listed}"
    );
    let show = output({
        let mut cmd = databay();
        cmd.args(["state", "show", "resume.toml", "--link", "copy"])
            .current_dir(dir.path());
        cmd
    });
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let offset = shown["inlets"]["numbers"]["offset"].as_u64().unwrap();
    let written = fs::metadata(dir.path().join("in.ndjson")).unwrap().len();
    assert!(offset > 0 && offset <= written, "{shown}");

    let mut second = run_until(dir.path(), LINES);
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(20));
    let seen = counts(dir.path());
    assert_eq!(seen.len(), LINES);
    assert!(seen.values().all(|n| *n == 1), "a line came twice");

    // A reset replays from the start.
    let reset = output({
        let mut cmd = databay();
        cmd.args(["state", "reset", "resume.toml", "--link", "copy"])
            .current_dir(dir.path());
        cmd
    });
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let show = output({
        let mut cmd = databay();
        cmd.args(["state", "show", "resume.toml", "--link", "copy"])
            .current_dir(dir.path());
        cmd
    });
    assert!(!show.status.success());
    assert!(text(&show.stderr).contains("no checkpoint for link `copy`"));
}

#[test]
fn a_store_that_is_not_one_stops_the_daemon_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    fs::create_dir(dir.path().join("state")).unwrap();
    let store = dir.path().join("state/databay.redb");
    fs::write(&store, "somebody's notes").unwrap();
    let out = output({
        let mut cmd = databay();
        cmd.args(["run", "resume.toml"]).current_dir(dir.path());
        cmd
    });
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot open the state store") && stderr.contains("databay.redb"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&store).unwrap(), "somebody's notes");
}

/// State stays bounded: `run` deletes the checkpoints of links its config
/// no longer has (`once` leaves them, it may run one link of several).
#[test]
fn the_state_of_a_removed_link_is_deleted_by_run() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let one = fs::read_to_string(dir.path().join("resume.toml")).unwrap();
    let two = format!(
        "{one}\n[[link]]\nname = \"gone\"\nevery = \"20ms\"\n\n  [[link.inlet]]\n  type = \"file\"\n  \
         name = \"numbers\"\n  path = \"in.ndjson\"\n  json = true\n\n  [[link.outlet]]\n  type = \"null\"\n"
    );
    fs::write(dir.path().join("two.toml"), &two).unwrap();
    let list = |config: &str| {
        let out = output({
            let mut cmd = databay();
            cmd.args(["state", "list", config]).current_dir(dir.path());
            cmd
        });
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let once = output({
        let mut cmd = databay();
        cmd.args(["once", "two.toml"]).current_dir(dir.path());
        cmd
    });
    assert!(once.status.success(), "{}", text(&once.stderr));
    let listed = list("two.toml");
    assert!(
        listed.contains("copy:") && listed.contains("gone:"),
        "{listed}"
    );

    let mut daemon = Daemon::start(dir.path(), &["run", "resume.toml"]);
    eventually("the removed link's state deleted", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (daemon.count_logs("deleted the state of link `gone`") == 1).then_some(())
    });
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(20));
    let listed = list("resume.toml");
    assert!(
        listed.contains("copy:") && !listed.contains("gone"),
        "{listed}"
    );

    // A link removed by a reload loses its state with it.
    let written = lines(&dir.path().join("out.ndjson")).len();
    let mut daemon = Daemon::start(dir.path(), &["run", "two.toml"]);
    // The store is the running daemon's alone: wait for a few transfers of
    // both links (they read alike) instead of listing it.
    eventually("both links transferring", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (lines(&dir.path().join("out.ndjson")).len() >= written + 4 * BATCH).then_some(())
    });
    fs::write(dir.path().join("two.toml"), &one).unwrap();
    daemon.signal("HUP");
    eventually("the link removed with its state", || {
        assert!(daemon.running(), "databay exited:\n{}", daemon.stderr());
        (daemon.count_logs("link removed; its state is deleted") == 1).then_some(())
    });
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(20));
    assert!(!list("resume.toml").contains("gone"));
}

/// Unmounts the tmpfs when dropped, also when the test fails.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// A tmpfs of `size` (as mount takes it, "2m") at `at`. Needs root, as
    /// CI and the test command run; anything else fails, saying so.
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it, which needs root: {}",
            text(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Disk full: with `state_dir` on a small tmpfs that fills up, checkpoints
/// fail with a clear error while the link goes on delivering; once space is
/// freed they succeed again, and a daemon killed afterwards resumes from
/// the store, which nothing corrupted: every line arrives exactly once.
#[test]
fn a_full_disk_under_the_state_store_corrupts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let _mount = Tmpfs::mount(&dir.path().join("state"), "4m");
    let mut first = run_until(dir.path(), 300);
    // Fill the state directory's disk.
    let filler = dir.path().join("state/filler");
    {
        use std::io::Write as _;
        let mut file = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    eventually("a checkpoint refused for lack of space", || {
        assert!(first.running(), "databay exited:\n{}", first.stderr());
        first
            .logs()
            .iter()
            .any(|l| {
                l["level"] == "ERROR"
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("the next committed transfer tries again"))
            })
            .then_some(())
    });
    let refused = first.stderr();
    assert!(
        refused.contains("is the disk full?") || refused.contains("No space left"),
        "the error does not say the disk is full:\n{refused}"
    );
    let during = lines(&dir.path().join("out.ndjson")).len();
    fs::remove_file(&filler).unwrap();
    // The link went on delivering while the disk was full, and goes on.
    eventually("more lines after the space came back", || {
        assert!(first.running(), "databay exited:\n{}", first.stderr());
        (lines(&dir.path().join("out.ndjson")).len() >= during + 5 * BATCH).then_some(())
    });
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));

    let mut second = run_until(dir.path(), LINES);
    let resumed = second.count_logs("resuming from the link's checkpoint");
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(20));
    assert_eq!(resumed, 1, "{}", second.stderr());
    let seen = counts(dir.path());
    assert_eq!(seen.len(), LINES, "every line arrived");
    assert!(seen.values().all(|n| *n == 1), "a line came twice");
}

/// `[daemon] state_url`: checkpoints in PostgreSQL. A daemon killed with
/// SIGKILL resumes from the table, every line exactly once; `databay state`
/// reads and resets it there.
#[test]
fn a_killed_daemon_resumes_from_a_postgres_store() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    // Tests share the database's table: a link name of this test's own.
    let link = databay_component::postgres::testing::unique_table("state");
    let config = fs::read_to_string(dir.path().join("resume.toml"))
        .unwrap()
        .replace(
            "state_dir = \"state\"",
            &format!(
                "state_url = \"{}\"",
                databay_component::postgres::testing::url()
            ),
        )
        .replace("name = \"copy\"", &format!("name = \"{link}\""));
    fs::write(dir.path().join("resume.toml"), config).unwrap();
    // Another daemon's link in the same table: this daemon's config does
    // not have it, and must leave it alone.
    let foreign = databay_component::postgres::testing::unique_table("foreign");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = rt.block_on(databay_component::postgres::testing::client());
    rt.block_on(databay_component::postgres::checkpoints::create(&pg))
        .unwrap();
    let bytes = databay_core::checkpoint::Checkpoint::new(7).to_bytes();
    rt.block_on(pg.execute(
        "INSERT INTO databay_checkpoints (link, checkpoint) VALUES ($1, $2)",
        &[&foreign, &bytes],
    ))
    .unwrap();
    let mut first = run_until(dir.path(), 500);
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    assert!(lines(&dir.path().join("out.ndjson")).len() < LINES);

    let state = |args: &[&str]| {
        let out = output({
            let mut cmd = databay();
            cmd.arg("state").args(args).current_dir(dir.path());
            cmd
        });
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, listed, err) = state(&["list", "resume.toml"]);
    assert!(ok, "{err}");
    assert!(listed.contains(&format!("{link}: next index")), "{listed}");

    let mut second = run_until(dir.path(), LINES);
    let resumed = second.count_logs("resuming from the link's checkpoint");
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(20));
    assert_eq!(resumed, 1, "{}", second.stderr());
    let seen = counts(dir.path());
    assert_eq!(seen.len(), LINES, "every line arrived");
    assert!(seen.values().all(|n| *n == 1), "a line came twice");

    let (ok, _, err) = state(&["reset", "resume.toml", "--link", &link]);
    assert!(ok, "{err}");
    let (ok, _, err) = state(&["show", "resume.toml", "--link", &link]);
    assert!(!ok && err.contains("no checkpoint"), "{err}");
    let kept: i64 = rt
        .block_on(pg.query_one(
            "SELECT count(*) FROM databay_checkpoints WHERE link = $1",
            &[&foreign],
        ))
        .unwrap()
        .get(0);
    rt.block_on(pg.execute(
        "DELETE FROM databay_checkpoints WHERE link = $1",
        &[&foreign],
    ))
    .unwrap();
    assert_eq!(kept, 1, "another daemon's checkpoint was deleted");
}
