//! What the benchmarks that run the daemon binary share: running
//! `databay once CONFIG --until-exhausted` while sampling its peak RSS.
// Each benchmark uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The high-water mark of `pid`'s resident set, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The CPU time `pid` has used so far (user + system), from /proc.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `databay once CONFIG --until-exhausted` with `env` set; returns its
/// wall time and peak RSS (KiB). Peak RSS is sampled from /proc while it
/// runs (VmHWM, so the last sample is the peak up to a few ms before exit).
pub fn once(config: &Path, env: &[(&str, &Path)]) -> std::io::Result<(Duration, u64)> {
    once_measured(config, env).map(|(took, peak, _)| (took, peak))
}

/// [`once`], also returning the CPU time used (sampled like the RSS, so up
/// to a few ms short).
pub fn once_measured(
    config: &Path,
    env: &[(&str, &Path)],
) -> std::io::Result<(Duration, u64, Duration)> {
    once_measured_on(config, env, false)
}

/// [`once_measured`]; with `one_core`, the daemon may use the first core
/// only (`taskset -c 0`, from util-linux).
pub fn once_measured_on(
    config: &Path,
    env: &[(&str, &Path)],
    one_core: bool,
) -> std::io::Result<(Duration, u64, Duration)> {
    let start = Instant::now();
    let mut command = if one_core {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "0"]).arg(env!("CARGO_BIN_EXE_databay"));
        taskset
    } else {
        Command::new(env!("CARGO_BIN_EXE_databay"))
    };
    command
        .args(["--log-level", "warn", "once"])
        .arg(config)
        .arg("--until-exhausted");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn()?;
    let mut peak = 0;
    let mut cpu = Duration::ZERO;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(used) = cpu_time(child.id()) {
            cpu = cpu.max(used);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "databay exited with {status}"
        )));
    }
    Ok((took, peak, cpu))
}
