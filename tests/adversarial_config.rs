//! Adversarial tests of the config loader, the registry and the TOML
//! processors, held to the promise: every bad input gets a clear error that
//! names what is wrong and where, and loses nothing; never a panic, never a
//! silent drop; values from the environment never appear in errors.
//!
//! The centrepiece is a deterministic config fuzzer: every example config,
//! every bad-config fixture and every component sample (wrapped in a link)
//! is mutated many ways and fed to `Config::parse`, which must not panic
//! and must locate every error it reports.
//!
//! Tests marked `#[ignore = "BUG: ..."]` demonstrate a known, open bug: they fail today
//! and pass once it is fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use databay::config::{Config, ConfigError, ConfigErrors};
use databay::{BuildContext, Kind, Registry};
use databay_core::testing::{CollectOutlet, StaticInlet};
use serde_json::{Value, json};

/// What every `${SECRET_*}` variable holds in these tests.
const SECRET: &str = "hunter2-swordfish";
/// Pieces of [`SECRET`] that must not show up either (any case).
const SECRET_PIECES: [&str; 2] = ["hunter2", "swordfish"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `SECRET_*` variables hold [`SECRET`]; the example configs' variables are
/// unset (their defaults apply); anything else is unset.
fn env(name: &str) -> Option<String> {
    name.starts_with("SECRET").then(|| SECRET.to_owned())
}

fn parse_with(
    text: &str,
    registry: &Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    Config::parse(Path::new("/etc/databay/fuzz.toml"), text, registry, env)
}

fn errors_of(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    match parse_with(text, &databay::builtins(), env) {
        Ok(_) => panic!("expected config errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// A link around `body` (component tables), with a null inlet and outlet.
fn link(body: &str) -> String {
    format!(
        "[admin]\nenabled = false\n\n[[link]]\nname = \"l\"\nevery = \"1s\"\n\n[[link.inlet]]\ntype = \"null\"\n\n[[link.outlet]]\ntype = \"null\"\n\n{body}"
    )
}

/// Whether `text` holds the secret or one of its pieces, in any case.
fn leaks(text: &str) -> bool {
    let lower = text.to_lowercase();
    SECRET_PIECES.iter().any(|p| lower.contains(p))
}

// ---------------------------------------------------------------------
// The fuzzer
// ---------------------------------------------------------------------

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
            // (ignored) tests below.
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
        // (ignored) `an_empty_link_array_is_a_config_error`.
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

// ---------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------

/// A link name from the environment is written into the key path of every
/// error of that link (`link.<value>`), which the scrubbing never sees.
#[test]
fn a_link_name_from_the_environment_is_not_in_error_keys() {
    let text = "[[link]]\nname = \"${SECRET_NAME}\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    for e in errors_of(text, &env) {
        assert!(!leaks(&e.key), "key leaks the secret: {e}");
        assert!(!leaks(&e.to_string()), "error leaks the secret: {e}");
    }
}

/// croner upper-cases the expression and quotes its parts in single quotes,
/// so neither the verbatim scrub nor the quote-withholding catch it.
#[test]
fn a_cron_expression_from_the_environment_is_not_echoed() {
    let text = "[[link]]\nname = \"l\"\ncron = \"0 0 * * ${SECRET_DOW}\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    for e in errors_of(text, &env) {
        assert!(!leaks(&e.to_string()), "error leaks the secret: {e}");
    }
}

/// A secret holding a character that Rust's `{:?}` escapes (`"`, `\`, a
/// tab, U+202E) is printed escaped by serde and by the duration parser, so
/// it no longer matches the secret, and a `"` inside it desynchronises the
/// quote pairing of the scrubber.
#[test]
fn secrets_with_escaped_characters_are_not_echoed() {
    for secret in [
        "pass\"word-hunter2-swordfish",
        "pass\\word-hunter2-swordfish",
        "pass\tword-hunter2-swordfish",
        "hunter2\u{202e}swordfish",
    ] {
        let env = |name: &str| (name == "SECRET_X").then(|| secret.to_owned());
        for body in [
            "[[link.processor]]\ntype = \"buffer\"\ntime = \"${SECRET_X}\"\n",
            "[[link.processor]]\ntype = \"select\"\npointer = \"${SECRET_X}\"\nop = \"exists\"\n",
            "[[link.inlet]]\ntype = \"file\"\npath = \"in.txt\"\nlines_per_transfer = \"${SECRET_X}\"\n",
        ] {
            for e in errors_of(&link(body), &env) {
                assert!(!leaks(&e.to_string()), "secret {secret:?} leaks: {e}");
            }
        }
    }
}

/// The promise as the fixtures test it, widened to every option kind that
/// takes a string: plain secrets are never echoed.
#[test]
fn plain_secrets_are_never_echoed_by_any_option() {
    let bodies = [
        "[[link.inlet]]\ntype = \"file\"\npath = \"x\"\nmode = \"${SECRET_X}\"\n",
        "[[link.inlet]]\ntype = \"${SECRET_X}\"\n",
        "[[link.inlet]]\ntype = \"random_int\"\nseed = \"${SECRET_X}\"\n",
        "[[link.outlet]]\ntype = \"csv\"\npath = \"x\"\nextra_columns = \"${SECRET_X}\"\n",
        "[[link.outlet]]\ntype = \"file\"\npath = \"x\"\nencoding = \"${SECRET_X}\"\n",
        "[[link.outlet]]\ntype = \"file\"\npath = \"x\"\nmode = \"${SECRET_X}\"\n",
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"${SECRET_X}\"\nvalue = 1\n",
        "[[link.processor]]\ntype = \"select\"\npointer = \"${SECRET_X}\"\nop = \"exists\"\n",
        "[[link.processor]]\ntype = \"set\"\nfields = { \"${SECRET_X}\" = 1 }\n",
        "[[link.processor]]\ntype = \"set\"\nfields = { \"/a\" = \"${SECRET_X}\", \"/a/b\" = 1 }\n",
        "[[link.processor]]\ntype = \"remove\"\nfields = [\"${SECRET_X}\"]\n",
        "[[link.processor]]\ntype = \"rename\"\nfields = { \"/a\" = \"${SECRET_X}\" }\n",
        "[[link.processor]]\ntype = \"map\"\nexpr = \"${SECRET_X}\"\n",
        "[[link.processor]]\ntype = \"filter\"\nexpr = \". | ${SECRET_X}\"\n",
        "[[link.processor]]\ntype = \"buffer\"\ntime = \"${SECRET_X}\"\n",
        "[[link.processor]]\ntype = \"buffer\"\ncount = \"${SECRET_X}\"\n",
        "[[link.grouper]]\ntype = \"group_by\"\nexpr = \"${SECRET_X}\"\n",
        "[[link.grouper]]\ntype = \"group_by\"\npointer = \"${SECRET_X}\"\n",
        "[[link.grouper]]\ntype = \"chunk\"\nsize = \"${SECRET_X}\"\n",
    ];
    for body in bodies {
        let errors = errors_of(&link(body), &env);
        for e in &errors {
            assert!(!leaks(&e.to_string()), "leaks with {body:?}: {e}");
            assert!(e.line > 0, "no line with {body:?}: {e}");
        }
    }
    let top = [
        "[daemon]\nshutdown_grace = \"${SECRET_X}\"\n",
        "[admin]\nlisten = \"${SECRET_X}\"\n",
    ];
    for head in top {
        let text = format!(
            "{head}{}",
            link("").replace("[admin]\nenabled = false\n", "")
        );
        for e in errors_of(&text, &env) {
            assert!(!leaks(&e.to_string()), "leaks with {head:?}: {e}");
        }
    }
    for setting in [
        "every = \"${SECRET_X}\"",
        "tags = \"${SECRET_X}\"",
        "inlet_timeout = \"${SECRET_X}\"",
    ] {
        let text = link("").replace("every = \"1s\"", setting);
        for e in errors_of(&text, &env) {
            assert!(!leaks(&e.to_string()), "leaks with {setting:?}: {e}");
        }
    }
    let text = link("").replace(
        "every = \"1s\"",
        "cron = \"0 0 * * *\"\ntimezone = \"${SECRET_X}\"",
    );
    for e in errors_of(&text, &env) {
        assert!(!leaks(&e.to_string()), "leaks with timezone: {e}");
    }
}

/// A variable that is not set is one mistake, but the unexpanded text
/// `${NOPE}` is then checked as the option's value too, giving a second,
/// misleading error ("invalid duration `${NOPE}`", "cannot compile jq
/// expression `${NOPE}`") under a different key path (`link[0].every`
/// against `link.l.every`).
#[test]
fn a_missing_variable_is_one_error_keyed_like_the_others() {
    for (text, key) in [
        (
            link("").replace("every = \"1s\"", "every = \"${NOPE}\""),
            "link.l.every",
        ),
        (
            link("[[link.processor]]\ntype = \"map\"\nexpr = \"${NOPE}\"\n"),
            "link.l.processor[0].expr",
        ),
        (
            link("[[link.processor]]\ntype = \"select\"\npointer = \"${NOPE}\"\nop = \"exists\"\n"),
            "link.l.processor[0].pointer",
        ),
    ] {
        let errors = errors_of(&text, &env);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].key, key);
        assert!(
            errors[0].message.contains("`NOPE` is not set"),
            "{}",
            errors[0]
        );
    }
}

/// `Config::load` reads variables with `std::env::var(..).ok()`, which
/// folds "set but not UTF-8" into "not set": the error then says the
/// variable is not set, and `${VAR:-default}` silently takes the default.
#[cfg(unix)]
#[test]
fn a_non_utf8_environment_variable_is_not_taken_for_unset() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let validate = |text: &str| {
        std::fs::write(&config, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_databay"))
            .args(["validate", config.to_str().unwrap()])
            .env(
                "DATABAY_ADV_BYTES",
                std::ffi::OsString::from_vec(b"ab\xffcd".to_vec()),
            )
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let with_default = link("").replace(
        "[[link.outlet]]\ntype = \"null\"",
        "[[link.outlet]]\ntype = \"file\"\npath = \"${DATABAY_ADV_BYTES:-fallback.txt}\"",
    );
    let out = validate(&with_default);
    assert_eq!(
        out.status.code(),
        Some(78),
        "the default was used silently: {out:?}"
    );
    let without = with_default.replace(":-fallback.txt", "");
    let out = validate(&without);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("is not set"), "{stderr}");
}

// ---------------------------------------------------------------------
// Links that silently drop records
// ---------------------------------------------------------------------

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

// ---------------------------------------------------------------------
// Documentation against what the loader accepts
// ---------------------------------------------------------------------

/// The field names a component's options accept, read from serde's
/// unknown-field error for a bogus key (`expected one of `a`, `b``).
fn accepted_options(kind: Kind, name: &str) -> Vec<String> {
    let table = match kind {
        Kind::Inlet => "inlet",
        Kind::Outlet => "outlet",
        Kind::Processor => "processor",
        Kind::Grouper => "grouper",
    };
    let body = format!("[[link.{table}]]\ntype = \"{name}\"\nzz_bogus_option = 1\n");
    let errors = errors_of(&link(&body), &env);
    let e = errors
        .iter()
        .find(|e| e.message.contains("unknown field `zz_bogus_option`"))
        .unwrap_or_else(|| panic!("{kind} {name}: no unknown-field error: {errors:?}"));
    if e.message.contains("there are no fields") {
        return Vec::new();
    }
    let expected = e.message.split("expected").nth(1).unwrap_or_default();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The keys a sample mentions, set or commented out (`# seed = 42`).
fn sample_keys(sample: &str) -> Vec<String> {
    sample
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            let (key, _) = line.split_once('=')?;
            let key = key.trim();
            (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| key.to_owned())
        })
        .collect()
}

/// Telegraf's rule: each sample shows every option its type accepts, so
/// `databay plugins TYPE` never hides one.
#[test]
fn every_sample_documents_every_accepted_option() {
    let registry = databay::builtins();
    // The probe itself works: it reads real option lists.
    let file = accepted_options(Kind::Inlet, "file");
    assert!(file.contains(&"lines_per_transfer".to_owned()), "{file:?}");
    assert!(accepted_options(Kind::Inlet, "null").is_empty());
    let mut missing = Vec::new();
    for c in registry.components() {
        let documented = sample_keys(&c.sample);
        for option in accepted_options(c.kind, &c.name) {
            if !documented.contains(&option) {
                missing.push(format!("{} {}: `{option}`", c.kind, c.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options missing from samples: {missing:?}"
    );
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

/// The option names in each built-in's README "Options" table.
fn readme_options(readme: &str) -> Vec<String> {
    let mut in_options = false;
    let mut names = Vec::new();
    for line in readme.lines() {
        if line.starts_with("## ") {
            in_options = line.trim() == "## Options";
            continue;
        }
        if in_options
            && line.starts_with("| `")
            && let Some(name) = line.split('`').nth(1)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// The READMEs beside the code are the reference for each component's
/// options; the csv and file outlets' tables name `default_filepath`,
/// `default_file_mode` and `default_encoding`, which the config rejects
/// (it takes `path`, `mode`, `encoding`).
#[test]
fn every_option_a_readme_lists_is_accepted() {
    let mut wrong = Vec::new();
    for (kind, crate_dir) in [(Kind::Inlet, "inlets"), (Kind::Outlet, "outlets")] {
        let dir = root().join(crate_dir).join("src");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let folder = entry.unwrap().path();
            let readme = folder.join("README.md");
            let Ok(text) = std::fs::read_to_string(&readme) else {
                continue;
            };
            let name = folder.file_name().unwrap().to_string_lossy().into_owned();
            let accepted = accepted_options(kind, &name);
            for option in readme_options(&text) {
                if !accepted.contains(&option) {
                    wrong.push(format!("{}: `{option}`", readme.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "README options the config rejects: {wrong:#?}"
    );
}

// ---------------------------------------------------------------------
// Processors and groupers through the config, on edge inputs
// ---------------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// One transfer of a link built from TOML: a `static` inlet giving `inputs`,
/// the processor/grouper tables in `body`, a `collect` outlet. Returns the
/// batches pushed, or the config or transfer error as text.
async fn through(body: &str, inputs: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
    let mut registry = databay::builtins();
    let outlet = CollectOutlet::new();
    let handle = outlet.clone();
    registry.inlet(
        "static",
        "Test inlet.",
        "type = \"static\"\n",
        move |_: NoOptions, _: &BuildContext| Ok(StaticInlet::values(inputs.clone())),
    );
    registry.outlet(
        "collect",
        "Test outlet.",
        "type = \"collect\"\n",
        move |_: NoOptions, _: &BuildContext| Ok(handle.clone()),
    );
    let text = format!(
        "[[link]]\nname = \"p\"\nevery = \"1h\"\n[[link.inlet]]\ntype = \"static\"\n[[link.outlet]]\ntype = \"collect\"\n{body}"
    );
    let config = parse_with(&text, &registry, &env).map_err(|e| format!("config: {e}"))?;
    config.links[0]
        .link
        .transfer()
        .await
        .map_err(|e| format!("transfer: {e}"))?;
    Ok(outlet
        .batches()
        .into_iter()
        .map(|(_, batch)| batch.into_iter().map(|r| r.payload).collect())
        .collect())
}

async fn kept(body: &str, inputs: Vec<Value>) -> Vec<Value> {
    through(body, inputs)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// TOML's `nan` and `inf` have no JSON form: serde_json turns them into
/// `null`, so `value = nan` selects records whose field is missing or null,
/// `set` writes nulls, and `value = inf` is refused as "not null".
#[tokio::test]
async fn non_finite_toml_floats_are_config_errors() {
    for body in [
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nvalue = nan\n",
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"ne\"\nvalue = inf\n",
        "[[link.processor]]\ntype = \"set\"\nfields = { \"/x\" = -inf }\n",
    ] {
        let outcome = through(body, vec![json!({"a": 1}), json!({})]).await;
        let Err(e) = outcome else {
            panic!("{body:?} loaded and ran: {outcome:?}");
        };
        assert!(e.starts_with("config:") && !e.contains("not null"), "{e}");
    }
}

/// `rename` applies its pairs one after another in pointer order, so a swap
/// (`/a` <-> `/b`) or a shift (`/a` -> `/b` -> `/c`) overwrites a field that
/// is itself being moved: its value vanishes without an error.
#[tokio::test]
async fn rename_never_loses_a_value_it_was_told_to_move() {
    let swap = kept(
        "[[link.processor]]\ntype = \"rename\"\nfields = { \"/a\" = \"/b\", \"/b\" = \"/a\" }\n",
        vec![json!({"a": 1, "b": 2})],
    )
    .await;
    assert_eq!(swap, vec![json!({"a": 2, "b": 1})]);
    let chain = through(
        "[[link.processor]]\ntype = \"rename\"\nfields = { \"/a\" = \"/b\", \"/b\" = \"/c\" }\n",
        vec![json!({"a": 1, "b": 2})],
    )
    .await;
    // Either both move (b -> c first), or the config is refused.
    match chain {
        Ok(batches) => assert_eq!(batches, vec![vec![json!({"b": 1, "c": 2})]]),
        Err(e) => assert!(e.starts_with("config:"), "{e}"),
    }
}

/// `remove` deletes its pointers one after another, so after `/l/0` goes
/// the elements shift and `/l/1` deletes what was `/l/2`: the element the
/// config named survives and another one is dropped. jq's
/// `del(.l[0], .l[1])` deletes both named elements; `rename` from indices
/// of one array shifts the same way.
#[tokio::test]
async fn several_indices_of_one_array_mean_the_original_positions() {
    let remove = "[[link.processor]]\ntype = \"remove\"\nfields = [\"/l/0\", \"/l/1\"]\n";
    assert_eq!(
        kept(remove, vec![json!({"l": ["a", "b", "c"]})]).await,
        vec![json!({"l": ["c"]})]
    );
    let rename = "[[link.processor]]\ntype = \"rename\"\nfields = { \"/l/0\" = \"/first\", \"/l/1\" = \"/second\" }\n";
    assert_eq!(
        kept(rename, vec![json!({"l": ["a", "b", "c"]})]).await,
        vec![json!({"first": "a", "second": "b", "l": ["c"]})]
    );
}

#[tokio::test]
async fn select_compares_numbers_exactly_across_representations() {
    let inputs = vec![
        json!({"a": u64::MAX}),
        json!({"a": i64::MIN}),
        json!({"a": -1}),
        json!({"a": -1.0}),
        json!({"a": -0.5}),
        json!({"a": 9007199254740993u64}),
        json!({"a": "-1"}),
        json!({"a": [-1]}),
        json!({"a": {"-1": 1}}),
        json!({"a": null}),
        json!({}),
        json!([1]),
        json!("not an object"),
    ];
    let gt = |v: &str| {
        format!(
            "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"gt\"\nvalue = {v}\n"
        )
    };
    assert_eq!(
        kept(&gt("-1"), inputs.clone()).await,
        vec![
            json!({"a": u64::MAX}),
            json!({"a": -0.5}),
            json!({"a": 9007199254740993u64})
        ]
    );
    // 2^53 as a float is below 2^53 + 1 as an integer.
    assert_eq!(
        kept(&gt("9007199254740992.0"), inputs.clone()).await,
        vec![json!({"a": u64::MAX}), json!({"a": 9007199254740993u64})]
    );
    let eq = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nvalue = -1\n";
    assert_eq!(
        kept(eq, inputs.clone()).await,
        vec![json!({"a": -1}), json!({"a": -1.0})]
    );
    let contains =
        "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"contains\"\nvalue = -1\n";
    assert_eq!(
        kept(contains, inputs.clone()).await,
        vec![json!({"a": [-1]})]
    );
    let contains_key = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"contains\"\nvalue = \"-1\"\n";
    assert_eq!(
        kept(contains_key, inputs.clone()).await,
        vec![json!({"a": "-1"}), json!({"a": {"-1": 1}})]
    );
    // Non-object payloads simply have no `/a`.
    let missing = "[[link.processor]]\ntype = \"select\"\npointer = \"/a\"\nop = \"missing\"\n";
    assert_eq!(
        kept(missing, inputs).await,
        vec![json!({}), json!([1]), json!("not an object")]
    );
}

#[tokio::test]
async fn escaped_and_array_pointers_in_set_remove_and_rename() {
    let set = "[[link.processor]]\ntype = \"set\"\nfields = { \"/a~1b\" = 1, \"/c~0d\" = 2, \"/items/-\" = 3, \"/~01\" = 4 }\n";
    assert_eq!(
        kept(set, vec![json!({"items": [0]})]).await,
        vec![json!({"a/b": 1, "c~d": 2, "items": [0, 3], "~1": 4})]
    );
    let remove = "[[link.processor]]\ntype = \"remove\"\nfields = [\"/a~1b\", \"/items/0\", \"/items/-\", \"/nope/x\"]\n";
    assert_eq!(
        kept(
            remove,
            vec![json!({"a/b": 1, "a": {"b": 2}, "items": [1, 2]})]
        )
        .await,
        vec![json!({"a": {"b": 2}, "items": [2]})]
    );
    let rename = "[[link.processor]]\ntype = \"rename\"\nfields = { \"/items/0\" = \"/first\", \"/x~1y\" = \"/x/y\" }\n";
    assert_eq!(
        kept(rename, vec![json!({"items": ["a", "b"], "x/y": 1})]).await,
        vec![json!({"first": "a", "items": ["b"], "x": {"y": 1}})]
    );
    // A payload that is not an object: set fails the batch naming the
    // record and the pointer; nothing is pushed.
    let e = through(
        "[[link.processor]]\ntype = \"set\"\nfields = { \"/a\" = 1 }\n",
        vec![json!({}), json!("text")],
    )
    .await
    .unwrap_err();
    assert!(e.contains("record 1 of 2") && e.contains("`/a`"), "{e}");
}

#[tokio::test]
async fn jq_map_outputs_errors_and_round_trips() {
    let map = |expr: &str| format!("[[link.processor]]\ntype = \"map\"\nexpr = '{expr}'\n");
    // Several outputs per record, in order; `empty` drops.
    assert_eq!(
        kept(&map(".[]"), vec![json!([1, 2]), json!([]), json!(["x"])]).await,
        vec![json!(1), json!(2), json!("x")]
    );
    assert_eq!(
        kept(&map("empty"), vec![json!(1)]).await,
        Vec::<Value>::new()
    );
    // Extreme numbers and unicode survive the trip through jaq unchanged.
    let payload = json!({
        "u": u64::MAX, "i": i64::MIN, "f": 1e300, "tiny": 5e-324, "neg0": -0.0,
        "s": "é😀\u{10FFFF}\u{0}\u{202e}", "k\u{1F600}": [{"\"": "\\"}]
    });
    assert_eq!(kept(&map("."), vec![payload.clone()]).await, vec![payload]);
    // A runtime error names the record and the expression.
    let e = through(&map(".a + 1"), vec![json!({"a": 1}), json!({"a": "x"})])
        .await
        .unwrap_err();
    assert!(e.contains("record 1 of 2") && e.contains("`.a + 1`"), "{e}");
    let e = through(&map("halt_error"), vec![json!("bye")])
        .await
        .unwrap_err();
    assert!(e.contains("record 0 of 1"), "{e}");
}

#[tokio::test]
async fn group_by_keeps_float_and_integer_keys_apart_and_chunk_of_one() {
    let group = "[[link.grouper]]\ntype = \"group_by\"\npointer = \"/k\"\n";
    let batches = through(
        group,
        vec![
            json!({"k": 1}),
            json!({"k": 1.0}),
            json!({"k": 1}),
            json!({"k": 1.5}),
            json!({"k": {"b": 1, "a": 2}}),
            json!({"k": {"a": 2, "b": 1}}),
        ],
    )
    .await
    .unwrap();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 1, 1, 2]);
    let chunk = "[[link.grouper]]\ntype = \"chunk\"\nsize = 1\n";
    let batches = through(chunk, vec![json!(1), json!(2), json!(3)])
        .await
        .unwrap();
    assert_eq!(
        batches,
        vec![vec![json!(1)], vec![json!(2)], vec![json!(3)]]
    );
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
}
