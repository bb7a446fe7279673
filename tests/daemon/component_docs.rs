//! Each component's documentation against what the config loader accepts:
//! its `sample.toml` shows every option its type takes (so `databay plugins
//! TYPE` hides none), and every option its `README.md` lists under
//! "Options" is one the loader accepts. The accepted options are read from
//! serde's unknown-field error for a bogus key.

use databay::Kind;

use crate::support::*;

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
