//! The example configs under `config/`: each one passes `databay validate`,
//! which prints `PATH: ok, N links` and one line per link.

use std::fs;
use std::path::PathBuf;

use crate::support::*;

#[test]
fn every_example_config_validates() {
    let mut seen = 0;
    let mut configs: Vec<PathBuf> = fs::read_dir(root().join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    for path in configs {
        let source = fs::read_to_string(&path).unwrap();
        let links = source.lines().filter(|l| l.trim() == "[[link]]").count();
        let mut cmd = databay();
        cmd.arg("validate").arg(&path);
        let out = output(cmd);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{stderr}",
            path.display()
        );
        let want = format!(
            "{}: ok, {links} link{}",
            path.display(),
            if links == 1 { "" } else { "s" }
        );
        assert!(
            stdout.lines().next() == Some(want.as_str()),
            "{}: want `{want}`, got:\n{stdout}",
            path.display()
        );
        // One line per link after the first.
        assert_eq!(stdout.lines().count(), links + 1, "{stdout}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} example configs");
}
