//! A deterministic config fuzzer: every example config, every bad-config
//! fixture and every component sample (wrapped in a link) is truncated and
//! mutated many ways with a fixed seed and fed to `Config::parse`, which
//! must never panic, and every error it reports must name the file, point
//! inside it and keep values from the environment out.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use databay::{Kind, Registry};

use crate::support::*;

/// Each sample wrapped as a component of a minimal link, as the docs say
/// it is used.
fn sample_configs(registry: &Registry) -> Vec<(String, String)> {
    registry
        .components()
        .into_iter()
        .map(|c| {
            let (table, rest) = match c.kind {
                Kind::Inlet => ("inlet", "[[link.outlet]]\ntype = \"null\"\n"),
                Kind::Outlet => ("outlet", "[[link.inlet]]\ntype = \"null\"\n"),
                Kind::Processor => (
                    "processor",
                    "[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n",
                ),
                Kind::Grouper => (
                    "grouper",
                    "[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n",
                ),
            };
            let text = format!(
                "[admin]\nenabled = false\n[[link]]\nname = \"s\"\nevery = \"1s\"\n{rest}[[link.{table}]]\n{}",
                c.sample
            );
            (format!("sample {} {}", c.kind, c.name), text)
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect();
    out.sort();
    out
}

/// Values a mutation puts in place of an option's value.
fn replacement_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "1",
        "-1",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "1e308",
        "-1e308",
        "nan",
        "inf",
        "-inf",
        "0x7f",
        "1_000",
        "true",
        "false",
        "\"\"",
        "\"x\"",
        "\"0s\"",
        "\"-1s\"",
        "\"1ns\"",
        "\"5 fortnights\"",
        "\"18446744073709551615s\"",
        "\"/a~2\"",
        "\"~\"",
        "\"/\"",
        "\".[\"",
        "\"é😀\\u0000\\u202e\"",
        "'literal'",
        "'''multi\nline'''",
        "[]",
        "[1, \"a\", [true]]",
        "[[]]",
        "{}",
        "{ a = 1, b = { c = [1] } }",
        "1979-05-27T07:32:00Z",
        "1979-05-27",
        "07:32:00",
        "\"${MISSING}\"",
        "\"${\"",
        "\"${BAD-NAME}\"",
        "\"$${SECRET_A}\"",
        "\"${MISSING:-}\"",
        "\"${SECRET_A}\"",
        "\"${SECRET_A}/x\"",
        "\"${SECRET_B:-x}\"",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    values.push(format!("\"{}\"", "x".repeat(100_000)));
    values.push(format!("{}1{}", "[".repeat(300), "]".repeat(300)));
    values.push(format!("{}1{}", "{ a = ".repeat(60), " }".repeat(60)));
    values
}

/// Lines a mutation inserts.
const INSERTED_LINES: [&str; 18] = [
    "bogus = 1",
    "[[link]]",
    "[[link.inlet]]",
    "[[link.outlet]]",
    "[[link.processor]]",
    "[[link.grouper]]",
    "[[link.outlet.processor]]",
    "[daemon]",
    "[admin]",
    "[link]",
    "link = []",
    "type = \"fiel\"",
    "name = \"dup\"",
    "every = \"1s\"",
    "cron = \"* * * * *\"",
    "metadata = { a = 1 }",
    "a.b.c = 1",
    "\"quoted key\" = 1",
];

/// Characters a mutation inserts anywhere.
const INSERTED_CHARS: [&str; 22] = [
    "\0",
    "\u{7}",
    "\r",
    "\t",
    "\n",
    "\u{feff}",
    "\u{202e}",
    "\u{200b}",
    "é",
    "😀",
    "\u{10ffff}",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    "#",
    "\\",
    "$",
    "${",
];

/// The byte range of the value in a `key = value` line, if it is one.
fn value_range(line: &str) -> Option<(usize, usize)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with('[') {
        return None;
    }
    let eq = line.find('=')?;
    let start = eq + 1 + (line[eq + 1..].len() - line[eq + 1..].trim_start().len());
    Some((start, line.len()))
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> &str {
    line.split('=').next().unwrap_or("").trim()
}

fn char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One random mutation of `text`.
fn mutate(text: &str, rng: &mut fastrand::Rng, values: &[String]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match rng.usize(0..8) {
        0 => {
            lines.remove(rng.usize(0..n));
        }
        1 => {
            let i = rng.usize(0..n);
            lines.insert(i, lines[i].clone());
        }
        2 => {
            let (i, j) = (rng.usize(0..n), rng.usize(0..n));
            lines.swap(i, j);
        }
        3 => {
            let cut = char_boundary(text, rng.usize(0..=text.len()));
            return text[..cut].to_owned();
        }
        4 | 5 => {
            // Replace the value of a random `key = value` line. `name` and
            // `cron` never get a secret here: their leaks are separate
            // tests in `config_env.rs`.
            let candidates: Vec<usize> = (0..n)
                .filter(|&i| value_range(&lines[i]).is_some())
                .collect();
            if let Some(&i) = candidates.get(rng.usize(0..candidates.len().max(1))) {
                let (start, end) = value_range(&lines[i]).unwrap_or((0, 0));
                let mut value = values[rng.usize(0..values.len())].as_str();
                if matches!(key_of(&lines[i]), "name" | "cron") && value.contains("SECRET") {
                    value = "\"x\"";
                }
                lines[i].replace_range(start..end, value);
            }
        }
        6 => {
            let at = rng.usize(0..=n);
            lines.insert(
                at,
                INSERTED_LINES[rng.usize(0..INSERTED_LINES.len())].to_owned(),
            );
        }
        _ => {
            let mut joined = lines.join("\n");
            let at = char_boundary(&joined, rng.usize(0..=joined.len()));
            joined.insert_str(at, INSERTED_CHARS[rng.usize(0..INSERTED_CHARS.len())]);
            return joined;
        }
    }
    lines.join("\n")
}

/// Everything wrong with the outcome of parsing `text`, as messages; empty
/// when the outcome keeps every promise.
fn check(text: &str, registry: &Registry) -> Vec<String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| parse_with(text, registry, &env)));
    let errors = match outcome {
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return vec![format!("panicked: {what}")];
        }
        // A config that loads with no links at all is the separate
        // `an_empty_link_array_is_a_config_error` in `config_errors.rs`.
        Ok(Ok(_)) => return Vec::new(),
        Ok(Err(errors)) => errors.0,
    };
    let mut problems = Vec::new();
    if errors.is_empty() {
        problems.push("an Err with no errors in it".to_owned());
    }
    let lines = text.split('\n').count();
    for e in &errors {
        let shown = e.to_string();
        let no_links = e.key == "link" && e.message.starts_with("no links");
        if e.line == 0 && !no_links {
            problems.push(format!("no line: {shown}"));
        }
        if e.line > lines || (e.line > 0 && e.column == 0) {
            problems.push(format!(
                "position {}:{} outside the file: {shown}",
                e.line, e.column
            ));
        }
        if e.message.trim().is_empty() {
            problems.push(format!("empty message: {shown}"));
        }
        if leaks(&shown) || leaks(&e.key) || e.hint.as_deref().is_some_and(leaks) {
            problems.push(format!("secret in: {shown}"));
        }
        if !shown.starts_with("/etc/databay/fuzz.toml") {
            problems.push(format!("does not name the file: {shown}"));
        }
    }
    problems
}

/// Mutates every example config, bad-config fixture and sample thousands of
/// times (fixed seed): `Config::parse` never panics, every error it reports
/// has a line and column inside the file (except "no links", which is about
/// the whole file), names the file, and never shows an environment value.
#[test]
fn fuzzed_configs_never_panic_and_every_error_is_located() {
    let registry = databay::builtins();
    let mut corpus = files_in(&root().join("config"));
    corpus.extend(files_in(&root().join("tests/fixtures/bad-config")));
    corpus.extend(sample_configs(&registry));
    assert!(corpus.len() > 60, "corpus too small: {}", corpus.len());

    let values = replacement_values();
    let mut rng = fastrand::Rng::with_seed(0x0da7_aba1);
    let mut failures: Vec<String> = Vec::new();
    let mut cases = 0;
    let record = |name: &str, text: &str, failures: &mut Vec<String>| {
        for problem in check(text, &registry) {
            if failures.len() < 20 {
                failures.push(format!(
                    "{name}: {problem}\n--- input ---\n{text}\n-------------"
                ));
            }
        }
    };

    // Truncation at every character boundary of two small configs.
    for (name, text) in corpus
        .iter()
        .filter(|(n, _)| n.ends_with("file_to_csv_jq.toml") || n == "sample processor select")
    {
        for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            cases += 1;
            record(&format!("{name} cut at {cut}"), &text[..cut], &mut failures);
        }
    }
    // The unmutated corpus, then single and stacked random mutations.
    for (name, text) in &corpus {
        cases += 1;
        record(name, text, &mut failures);
    }
    for round in 0..64 {
        for (name, text) in &corpus {
            let mut mutated = mutate(text, &mut rng, &values);
            for _ in 0..(round % 4) {
                mutated = mutate(&mutated, &mut rng, &values);
            }
            cases += 1;
            record(&format!("{name} (round {round})"), &mutated, &mut failures);
        }
    }
    assert!(cases > 6000, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} broken promises, first ones:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
