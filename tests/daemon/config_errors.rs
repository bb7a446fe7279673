//! How a broken config is reported, by `validate`, `run` and `once` alike:
//! the corpus under `tests/fixtures/bad-config/` (each `.toml` beside the
//! `.expected` lines its errors must print, with file, line, column and
//! key, and exit status 78, the secret its `env_*` fixtures read never
//! shown), and the mistakes the loader must refuse rather than load: links
//! without inlets or outlets, an empty `link` array, empty names and paths,
//! keys nested too deep, a file that is not UTF-8.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn bad_config_dir() -> PathBuf {
    root().join("tests/fixtures/bad-config")
}

/// The corpus: every `.toml` with its `.expected` lines.
fn corpus() -> Vec<(String, Vec<String>)> {
    let mut cases: Vec<(String, Vec<String>)> = fs::read_dir(bad_config_dir())
        .expect("tests/fixtures/bad-config")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let expected = fs::read_to_string(p.with_extension("expected"))
                .unwrap_or_else(|e| panic!("{name}: no .expected file: {e}"));
            let lines = expected
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            (name, lines)
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn bad_config_corpus_is_complete() {
    let cases = corpus();
    assert!(
        cases.len() >= 35,
        "only {} bad configs; want at least 35",
        cases.len()
    );
    for entry in fs::read_dir(bad_config_dir()).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {}
            Some("expected") => assert!(
                path.with_extension("toml").exists(),
                "{} has no .toml",
                path.display()
            ),
            _ => panic!("unexpected file {}", path.display()),
        }
    }
    for (name, lines) in &cases {
        assert!(!lines.is_empty(), "{name}: empty .expected");
        let prefix = format!("error: bad-config/{name}:");
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
        assert!(!errors.is_empty(), "{name}: expects no error line");
        for line in errors {
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{name}: `{line}` does not start with `{prefix}`"));
            // file:line:column: `key`: message -- except a file without
            // links (no place to point at) and TOML syntax errors (no key).
            let mut message = rest;
            if *name != "no_links.toml" {
                let mut parts = rest.splitn(3, ':');
                let (l, c) = (parts.next().unwrap(), parts.next().unwrap_or(""));
                assert!(
                    l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
                    "{name}: `{line}` has no line:column"
                );
                message = parts.next().unwrap_or("");
            }
            if !name.starts_with("syntax_") {
                let key = message
                    .strip_prefix(" `")
                    .and_then(|m| m.split_once("`: "))
                    .map(|(key, _)| key);
                assert!(
                    key.is_some_and(|k| !k.is_empty()),
                    "{name}: `{line}` names no key"
                );
            }
        }
        let count = lines
            .iter()
            .filter(|l| l.ends_with(" in the config"))
            .count();
        assert!(
            count <= 1,
            "{name}: more than one `N errors in the config` line"
        );
    }
}

/// Every broken config fails `validate`, `run` and `once` with EX_CONFIG and
/// exactly the expected, located errors; nothing secret is printed.
#[test]
fn bad_configs_are_reported_with_file_line_column_and_key() {
    let fixtures = root().join("tests/fixtures");
    let mut failures = Vec::new();
    let cases = corpus();
    for (name, expected) in &cases {
        let relative = format!("bad-config/{name}");
        for command in ["validate", "run", "once"] {
            let mut cmd = databay();
            cmd.arg(command)
                .arg(&relative)
                .current_dir(&fixtures)
                .env("DATABAY_TEST_SECRET", SECRET);
            let out = output(cmd);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            let mut problems = Vec::new();
            if out.status.code() != Some(78) {
                problems.push(format!("exit status {:?}, want 78", out.status.code()));
            }
            if !stdout.is_empty() {
                problems.push(format!("stdout not empty: {stdout:?}"));
            }
            if stderr.contains("panicked") {
                problems.push("panicked".to_owned());
            }
            for piece in [SECRET, "hunter2", "swordfish"] {
                if stderr.contains(piece) {
                    problems.push(format!("the secret (`{piece}`) is printed"));
                }
            }
            for line in expected {
                if !stderr.contains(line.as_str()) {
                    problems.push(format!("missing: {line}"));
                }
            }
            // Each expected error line is one error: no others sneak in.
            let want = expected.iter().filter(|l| l.starts_with("error:")).count();
            let got = stderr.lines().filter(|l| l.starts_with("error:")).count();
            if got != want {
                problems.push(format!("{got} error lines, want {want}"));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{command} {relative}:\n  {}\n  stderr:\n{stderr}",
                    problems.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        cases.len() * 3,
        failures.join("\n")
    );
}

/// Keys nested beyond the TOML parser's limit get an error, but it has no
/// line, no key, and says only "recursion limit".
#[test]
fn keys_nested_too_deep_get_a_located_explained_error() {
    let deep_key = vec!["a"; 100].join(".");
    for text in [
        link(&format!(
            "[[link.processor]]\ntype = \"set\"\nfields.{deep_key} = 1\n"
        )),
        format!("[{deep_key}]\nx = 1\n{}", link("")),
    ] {
        let errors = errors_of(&text, &env);
        for e in &errors {
            assert!(e.line > 0, "no line: {e}");
            assert!(
                e.message.contains("deep") || e.message.contains("nest"),
                "unclear: {e}"
            );
        }
    }
}

/// A link with inlets but no outlet validates, and `once` pulls its records
/// and throws every one of them away (`2 records in, 0 out`), exit code 0.
#[test]
fn a_link_without_outlets_is_a_config_error() {
    let no_outlet =
        "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"random_int\"\n";
    let errors = errors_of(no_outlet, &env);
    assert!(
        errors
            .iter()
            .any(|e| e.line > 0 && e.message.contains("outlet")),
        "{errors:?}"
    );
    let no_inlet = "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.outlet]]\ntype = \"null\"\n";
    let errors = errors_of(no_inlet, &env);
    assert!(
        errors.iter().any(|e| e.message.contains("inlet")),
        "{errors:?}"
    );

    // The end-to-end symptom.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.ndjson"), "{\"a\":1}\n{\"a\":2}\n").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[admin]\nenabled = false\n[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"file\"\npath = \"in.ndjson\"\njson = true\nlines_per_transfer = 10\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_databay"))
        .args(["once", config.to_str().unwrap(), "--until-exhausted"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "records were dropped silently: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// No `link` key is the error "no links: declare at least one `[[link]]`";
/// `link = []` (found by the fuzzer) loads instead: `validate` says "ok, 0
/// links", `run` starts a daemon with nothing to do, `once` exits 0.
#[test]
fn an_empty_link_array_is_a_config_error() {
    let errors = errors_of("link = []\n", &env);
    assert!(
        errors.iter().any(|e| e.message.contains("no links")),
        "{errors:?}"
    );
}

/// `path = ""` resolves to the config's own directory: `validate` says ok,
/// and at run time every pull fails with "cannot read `./` at line 1: Is a
/// directory", an error that names neither the option nor its line.
#[test]
fn empty_paths_are_config_errors() {
    for body in [
        "[[link.inlet]]\ntype = \"file\"\npath = \"\"\n",
        "[[link.outlet]]\ntype = \"file\"\npath = \"\"\n",
        "[[link.outlet]]\ntype = \"csv\"\npath = \"\"\n",
    ] {
        let errors = errors_of(&link(body), &env);
        assert!(
            errors
                .iter()
                .any(|e| e.line > 0 && e.key.ends_with(".path")),
            "{body:?}: {errors:?}"
        );
    }
}

/// An empty link name loads: the link's key path is `link.`, its updates
/// display as `.0`, and the admin endpoint's `/links/{name}` cannot name it.
#[test]
fn an_empty_link_name_is_a_config_error() {
    let errors = errors_of(&link("").replace("name = \"l\"", "name = \"\""), &env);
    assert!(errors.iter().all(|e| e.line > 0), "{errors:?}");
}

/// A config file that is not UTF-8 is a config error (exit 78) naming it.
#[test]
fn a_config_file_that_is_not_utf8_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"[[link]]\nname = \"\xff\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_databay"))
        .args(["validate", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    // It points at the first bad byte: line 2, the 9th character.
    assert!(
        stderr.contains("bad.toml:2:9: the file is not valid UTF-8"),
        "{stderr}"
    );
}
