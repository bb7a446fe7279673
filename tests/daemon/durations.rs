//! Schedules and buffers with durations at the edge of what humantime
//! parses (`every = "500000000000y"`, a buffer `time` as long): the links
//! still make their transfers and the daemon stops cleanly.

use std::fs;
use std::time::Duration;

use crate::support::*;

/// `every = "500000000000y"` and a buffer `time` of the same size are
/// accepted by `validate` (humantime parses them) but overflow `Instant`
/// arithmetic in the engine: the link's timer task panics, so the link
/// never makes even its immediate transfer, while `/links` still reports it
/// scheduled and the daemon carries on as if all were well.
#[test]
fn huge_durations_do_not_kill_links() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("huge.toml"),
        r#"
[admin]
listen = "127.0.0.1:0"

[[link]]
name = "rare"
every = "500000000000y"

  [[link.inlet]]
  type = "random_int"

  [[link.outlet]]
  type = "null"

[[link]]
name = "patient"
every = "100ms"

  [[link.inlet]]
  type = "random_int"

  [[link.processor]]
  type = "buffer"
  count = 3
  time = "500000000000y"

  [[link.outlet]]
  type = "file"
  path = "out/patient.txt"
"#,
    )
    .unwrap();
    let validated = databay()
        .args(["validate", "huge.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["run", "huge.toml"]);
    let addr = daemon.admin_addr();
    let progress = within(Duration::from_secs(10), || {
        let now = links(addr);
        let (rare, patient) = (transfers_ok(&now["rare"]), transfers_ok(&now["patient"]));
        (rare >= 1 && patient >= 5).then_some((rare, patient))
    });
    let stderr = daemon.stderr();
    let now = links(addr);
    assert_eq!(daemon.stop(), Some(0));
    if !validated.status.success() {
        // Refusing the durations up front is a fix too.
        return;
    }
    assert!(
        progress.is_some(),
        "rare: {} transfers, patient: {} transfers; stderr:\n{stderr}",
        transfers_ok(&now["rare"]),
        transfers_ok(&now["patient"]),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(lines(&dir.path().join("out/patient.txt")).len() >= 3);
}
