//! `databay plugins`: the list of every component type with its summary,
//! and `databay plugins TYPE` (or `KIND/TYPE`), which prints the very
//! `sample.toml` beside the component's code; an unknown type is a usage
//! error with a suggestion.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use crate::support::*;

#[test]
fn plugins_lists_every_type_with_its_summary() {
    let mut cmd = databay();
    cmd.arg("plugins");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let mut section = "";
    let mut found: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(kind) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            section = kind;
        } else if let Some(entry) = line.strip_prefix("  ") {
            let (name, summary) = entry.split_once(' ').expect("name and summary");
            found
                .entry(section)
                .or_default()
                .push((name.to_owned(), summary.trim().to_owned()));
        }
    }
    let names = |kind: &str| -> Vec<&str> {
        found
            .get(kind)
            .map(|v| v.iter().map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        names("inlets"),
        [
            "amqp",
            "dir",
            "exec",
            "file",
            "http",
            "http_server",
            "mongodb",
            "mqtt",
            "mysql",
            "nats",
            "null",
            "postgres",
            "random_int",
            "redis"
        ],
        "{stdout}"
    );
    assert_eq!(
        names("outlets"),
        [
            "amqp", "csv", "exec", "file", "http", "mongodb", "mqtt", "mysql", "nats", "null",
            "postgres", "print", "redis"
        ],
        "{stdout}"
    );
    for p in [
        "buffer", "filter", "map", "remove", "rename", "select", "set",
    ] {
        assert!(
            names("processors").contains(&p),
            "no processor {p}:\n{stdout}"
        );
    }
    for g in ["chunk", "group_by"] {
        assert!(names("groupers").contains(&g), "no grouper {g}:\n{stdout}");
    }
    for entries in found.values() {
        for (name, summary) in entries {
            assert!(summary.len() > 10, "`{name}` has no summary: {summary:?}");
        }
    }
    assert!(stdout.contains("random_int   One random integer in [min, max] per transfer."));
}

#[test]
fn plugins_type_prints_its_documented_sample() {
    let mut cmd = databay();
    cmd.args(["plugins", "csv"]);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("[[link.outlet]]"), "{stdout}");
    assert!(stdout.contains("type = \"csv\""), "{stdout}");
    // The very sample beside the code.
    let sample = fs::read_to_string(root().join("outlets/src/csv/sample.toml")).unwrap();
    assert!(stdout.contains(sample.trim_end()), "{stdout}");

    // `file` is both an inlet and an outlet; `outlet/file` only the outlet.
    let mut cmd = databay();
    cmd.args(["plugins", "file"]);
    let both = text(&output(cmd).stdout);
    assert!(
        both.contains("[[link.inlet]]") && both.contains("[[link.outlet]]"),
        "{both}"
    );
    // Inlets that keep resume state say so, and what it holds.
    assert!(
        both.contains("# resume state: line mode: the byte offset"),
        "{both}"
    );
    assert!(!outlet_only_resume(&both), "{both}");
    let listing = text(
        &output({
            let mut cmd = databay();
            cmd.arg("plugins");
            cmd
        })
        .stdout,
    );
    let marked: Vec<&str> = listing
        .lines()
        .filter(|l| l.ends_with("[resume state]"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        marked.contains(&"dir") && marked.contains(&"file"),
        "{listing}"
    );
    assert!(!marked.contains(&"null"), "{listing}");
    let mut cmd = databay();
    cmd.args(["plugins", "outlet/file"]);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let outlet = text(&out.stdout);
    assert!(outlet.contains("[[link.outlet]]"), "{outlet}");
    assert!(outlet.contains("type = \"file\""), "{outlet}");
    assert!(!outlet.contains("[[link.inlet]]"), "{outlet}");
    let sample = fs::read_to_string(root().join("outlets/src/file/sample.toml")).unwrap();
    assert!(outlet.contains(sample.trim_end()), "{outlet}");
    assert!(!outlet.contains("lines_per_transfer"), "{outlet}");

    for (wanted, hint) in [("nope", None), ("fiel", Some("(did you mean `file`?)"))] {
        let mut cmd = databay();
        cmd.args(["plugins", wanted]);
        let out = output(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            stderr.contains(&format!("no component type `{wanted}`")),
            "{stderr}"
        );
        if let Some(hint) = hint {
            assert!(stderr.contains(hint), "{stderr}");
        }
    }
}

/// `databay plugins NAME` prints exactly the registered sample.
#[test]
fn plugins_prints_each_sample() {
    let registry = databay::builtins();
    for c in registry.components() {
        let out = Command::new(env!("CARGO_BIN_EXE_databay"))
            .args(["plugins", &c.name])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "plugins {}: {:?}", c.name, out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(c.sample.trim()),
            "plugins {} does not print its sample:\n{stdout}",
            c.name
        );
    }
}

/// The resume-state line belongs to the inlet's section only.
fn outlet_only_resume(both: &str) -> bool {
    both.split("[[link.outlet]]")
        .nth(1)
        .is_some_and(|outlet| outlet.contains("# resume state"))
}
