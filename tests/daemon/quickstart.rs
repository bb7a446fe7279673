//! The quickstart as the README tells it: `databay run
//! config/quickstart.toml` (its admin endpoint moved to an ephemeral port)
//! writes its CSV beside the config, prints the same records as JSON, and
//! exits 0 on SIGTERM.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The quickstart as documented: runs, writes its CSV and prints JSON
/// objects of rolls above 20, and exits 0 on SIGTERM after flushing.
#[test]
fn quickstart_runs_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let original = fs::read_to_string(root().join("config/quickstart.toml")).unwrap();
    let listen = "listen = \"127.0.0.1:9477\"";
    assert!(
        original.contains(listen),
        "quickstart.toml no longer has {listen}"
    );
    let config = dir.path().join("quickstart.toml");
    fs::write(
        &config,
        original.replace(listen, "listen = \"127.0.0.1:0\""),
    )
    .unwrap();

    let mut daemon = Daemon::start(dir.path(), &["run", config.to_str().unwrap()]);
    let addr = daemon.admin_addr();
    // About 3 s of rolls: six transfers.
    wait_transfers(addr, "quickstart", 6);
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    let stderr = daemon.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let csv = fs::read_to_string(dir.path().join("out/quickstart.csv"))
        .expect("out/quickstart.csv beside the config");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let (roll_at, parity_at) = (
        header
            .iter()
            .position(|c| *c == "roll")
            .expect("roll column"),
        header
            .iter()
            .position(|c| *c == "parity")
            .expect("parity column"),
    );
    assert_eq!(header.len(), 2, "header: {header:?}");
    let mut csv_rolls = Vec::new();
    for row in lines {
        let fields: Vec<&str> = row.split(',').collect();
        let roll: i64 = fields[roll_at].parse().expect("a roll");
        assert!((21..=100).contains(&roll), "roll {roll} in {csv}");
        let parity = if roll % 2 == 0 { "even" } else { "odd" };
        assert_eq!(fields[parity_at], parity, "{row}");
        csv_rolls.push(roll);
    }
    assert!(!csv_rolls.is_empty(), "no data rows in\n{csv}");

    // The console gets the same records, one JSON object per line (after
    // the update, when the print outlet shows it).
    let stdout = daemon.stdout();
    let mut printed = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let json = match line.split_once(' ') {
            Some((update, rest)) if update.starts_with("quickstart.") => rest,
            _ => line,
        };
        let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        let roll = v["roll"]
            .as_i64()
            .unwrap_or_else(|| panic!("no roll: {line}"));
        assert!(roll > 20, "{line}");
        printed.push(roll);
    }
    assert_eq!(
        printed, csv_rolls,
        "stdout and CSV differ:\n{stdout}\n{csv}"
    );
}
