use super::*;
use std::time::Duration;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    let env = |name: &str| match name {
        "DB_PASSWORD" => Some("hunter2".to_owned()),
        "OUT_DIR" => Some("/tmp/out".to_owned()),
        _ => None,
    };
    Config::parse(Path::new("test.toml"), text, &crate::builtins(), &env)
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const GOOD: &str = r#"
[daemon]
shutdown_grace = "10s"

[admin]
listen = "127.0.0.1:9999"

[[link]]
name = "ints"
tags = ["random_ints"]
every = "250ms"
jitter = "10ms"
ignore_exceptions = true
inlet_timeout = "1s"
checkpoint_every = "5s"

  [[link.inlet]]
  type = "random_int"
  name = "dice"
  min = 1
  max = 6
  metadata = { animal = "cat" }

  [[link.outlet]]
  type = "null"

[[link]]
name = "nightly"
cron = "0 3 * * *"
timezone = "Europe/Berlin"

  [[link.inlet]]
  type = "null"

  [[link.outlet]]
  type = "file"
  path = "${OUT_DIR}/x.txt"
"#;

#[test]
fn a_good_config_builds_its_links() {
    let config = load(GOOD).unwrap();
    assert_eq!(config.daemon.shutdown_grace.0, Duration::from_secs(10));
    assert_eq!(config.admin.listen.port(), 9999);
    assert_eq!(config.links.len(), 2);
    let ints = &config.links[0];
    assert_eq!(ints.link.name(), "ints");
    assert_eq!(ints.link.tags(), ["random_ints"]);
    assert_eq!(ints.summary.inlets, ["random_int"]);
    assert_eq!(ints.summary.schedule, "every 250ms jitter 10ms");
    assert_eq!(ints.link.inlets()[0].name(), "dice");
    assert_eq!(
        ints.link.inlets()[0].metadata().get("animal"),
        Some(&serde_json::json!("cat"))
    );
    assert!(ints.link.ignores_exceptions());
    assert_eq!(ints.link.checkpoint_every(), Duration::from_secs(5));
    assert_eq!(config.links[1].link.checkpoint_every(), Duration::ZERO);
    assert_eq!(
        config.links[1].summary.schedule,
        "cron `0 3 * * *` Europe/Berlin"
    );
}

#[test]
fn fingerprints_change_only_with_the_link() {
    let a = load(GOOD).unwrap();
    let b = load(&GOOD.replace("max = 6", "max = 7")).unwrap();
    assert_ne!(a.links[0].fingerprint, b.links[0].fingerprint);
    assert_eq!(a.links[1].fingerprint, b.links[1].fingerprint);
}

#[test]
fn errors_are_located_and_all_reported() {
    let text = "[[link]]\nname = \"a\"\nevery = \"5 sekonds\"\n[[link.inlet]]\ntype = \"random_itn\"\n[[link.outlet]]\ntype = \"null\"\nbogus = 1\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with("test.toml:3:9: `link.a.every`: invalid duration \"5 sekonds\""),
        "{}",
        errs[0]
    );
    assert!(
        errs[1]
            .starts_with("test.toml:5:8: `link.a.inlet[0].type`: unknown inlet type `random_itn`"),
        "{}",
        errs[1]
    );
    assert!(
        errs[1].ends_with("(did you mean `random_int`?)"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].contains("8:1: `link.a.outlet[0].bogus`: unknown field `bogus`"),
        "{}",
        errs[2]
    );
}

#[test]
fn typos_in_link_keys_get_suggestions() {
    let errs = errors("[[link]]\nname = \"a\"\nevry = \"5s\"\n[[link.inlet]]\ntype = \"null\"\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown field `evry`") && e.contains("did you mean `every`?")),
        "{errs:#?}"
    );
}

#[test]
fn environment_values_never_appear_in_errors() {
    let errs = errors(
        "[[link]]\nname = \"a\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"random_int\"\nseed = \"${DB_PASSWORD}\"\n[[link.outlet]]\ntype = \"null\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(!errs[0].contains("hunter2"), "{}", errs[0]);
    assert!(
        errs[0].contains("seed") && errs[0].contains("from the environment"),
        "{}",
        errs[0]
    );
}

#[test]
fn a_missing_environment_variable_is_named() {
    let errs = errors(
        "[[link]]\nname = \"a\"\nevery = \"1s\"\n[[link.outlet]]\ntype = \"file\"\npath = \"${NOPE}/x\"\n[[link.inlet]]\ntype = \"null\"\n",
    );
    assert!(
        errs[0].contains("`NOPE` is not set") && errs[0].contains("6:8"),
        "{}",
        errs[0]
    );
}

#[test]
fn every_example_config_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            seen += 1;
            if let Err(e) = Config::load(&path, &crate::builtins()) {
                panic!("{} does not validate:\n{e}", path.display());
            }
        }
    }
    assert!(seen >= 4, "only {seen} example configs found");
}

#[test]
fn intervals_below_a_millisecond_are_refused_at_their_key() {
    let text = "[[link]]\nname = \"a\"\nevery = \"1ns\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with(
            "test.toml:3:9: `link.a.every`: 1ns is shorter than the shortest interval, 1ms"
        ),
        "{}",
        errs[0]
    );
    let ok = text.replace("1ns", "1ms");
    assert!(load(&ok).is_ok());
}

#[test]
fn a_cron_that_never_fires_is_refused_at_its_key() {
    let text = "[[link]]\nname = \"a\"\ncron = \"0 0 31 2 *\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("test.toml:3:8: `link.a.cron`:") && errs[0].contains("never fire"),
        "{}",
        errs[0]
    );
}

#[test]
fn a_bad_admin_address_says_what_is_wrong() {
    let link = "[[link]]\nname = \"a\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    let errs = errors(&format!("[admin]\nlisten = \"127.0.0.1:70000\"\n{link}"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .starts_with("test.toml:2:10: `admin.listen`: port 70000 is out of range (0 to 65535)"),
        "{}",
        errs[0]
    );
    let errs = errors(&format!("[admin]\nlisten = \"localhost\"\n{link}"));
    assert!(errs[0].contains("expected IP:port"), "{}", errs[0]);
}

#[test]
fn the_admin_token_comes_from_the_environment_and_never_shows() {
    let link = "[[link]]\nname = \"a\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    let config = load(&format!("[admin]\ntoken = \"${{DB_PASSWORD}}\"\n{link}")).unwrap();
    let token = config.admin.token.as_ref().expect("a token");
    assert_eq!(token.expose(), "hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(config.secrets.iter().any(|s| s == "hunter2"));
    assert_eq!(load(link).unwrap().admin.token, None);
    // Empty (an empty variable, say) is an error, not "no token".
    for empty in ["\"\"", "\"  \""] {
        let errs = errors(&format!("[admin]\ntoken = {empty}\n{link}"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with("test.toml:2:9: `admin.token`: the admin token is empty"),
            "{}",
            errs[0]
        );
    }
}

fn test_env(name: &str) -> Result<Option<String>, String> {
    Ok(match name {
        "DB_PASSWORD" => Some("hunter2".to_owned()),
        "OUT_DIR" => Some("/tmp/out".to_owned()),
        _ => None,
    })
}

/// What a load says, in a form two loads can be compared by.
fn outcome(loaded: Result<Config, ConfigErrors>) -> Result<String, Vec<String>> {
    match loaded {
        Ok(c) => {
            let links: Vec<String> = c
                .links
                .iter()
                .map(|l| format!("{:?} {} {:?}", l.summary, l.fingerprint, l.processors))
                .collect();
            Ok(format!(
                "{:?} {:?} {:?} {:?} {links:#?}",
                c.daemon,
                c.admin,
                c.secrets,
                c.warnings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ))
        }
        Err(e) => Err(e.0.iter().map(ToString::to_string).collect()),
    }
}

/// Loads `text` a link at a time, which it must allow, and whole, and
/// checks that both say the same.
fn same_both_ways(text: &str) -> Result<String, Vec<String>> {
    let path = Path::new("test.toml");
    let registry = crate::builtins();
    let starts = sections::link_sections(text).expect("a file of [[link]] sections");
    let by_link = Config::check_by_link(path, text, &starts, &registry, &test_env)
        .expect("the file can be read a link at a time");
    let whole = Config::check_whole(path, text, &registry, &test_env);
    let (by_link, whole) = (outcome(by_link), outcome(whole));
    assert_eq!(by_link, whole);
    by_link
}

#[test]
fn a_link_at_a_time_loads_what_the_whole_file_does() {
    assert!(same_both_ways(GOOD).is_ok());
    let link = |name: &str, extra: &str| {
        format!(
            "\n[[link]]\nname = \"{name}\"\nevery = \"1s\"\n{extra}\n[[link.inlet]]\ntype = \"random_int\"\n[[link.outlet]]\ntype = \"null\"\n"
        )
    };
    let mut broken = String::from("[deamon]\nx = 1\n");
    broken.push_str(&link("a", "evry = \"5s\""));
    broken.push_str(&link("b", ""));
    broken.push_str(&link("b", "tags = [\n  \"two\",\n  \"lines\",\n]"));
    broken.push_str(&link("c", "align_to = \"${NOPE}\""));
    broken.push_str(&link("d", "every_ms = \"${DB_PASSWORD}\""));
    broken.push_str(
        "\n[[link]]\nname = \"e\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"random_itn\"\n[[link.inlet]]\ntype = \"random_int\"\nmin = 7\nmax = 1\n",
    );
    broken.push_str("\n[[link]]\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n");
    let errors = same_both_ways(&broken).expect_err("errors");
    assert!(errors.len() >= 8, "{errors:#?}");
    assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains(":18:1: `link.b.name`") || e.contains("duplicate link name `b`")),
        "{errors:#?}"
    );
}

#[test]
fn files_not_laid_out_a_link_at_a_time_are_read_whole() {
    let path = Path::new("test.toml");
    let registry = crate::builtins();
    let link = "[[link]]\nname = \"a\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\ntype = \"null\"\n";
    for text in [
        // Settings after the links.
        format!("{link}[admin]\nenabled = false\n"),
        // A syntax error in a link.
        format!("{link}{}", link.replace("every = \"1s\"", "every = ")),
        // Links both inline and as tables.
        format!("link = []\n{link}"),
    ] {
        let starts = sections::link_sections(&text).expect("sections");
        assert!(
            Config::check_by_link(path, &text, &starts, &registry, &test_env).is_none(),
            "{text}"
        );
    }
    // And the whole-file read says what it always said.
    let late_admin = load(&format!("{link}[admin]\nenabled = false\n")).unwrap();
    assert!(!late_admin.admin.enabled);
    let errs = errors(&format!("{link}{link}"));
    assert!(
        errs.iter().any(|e| e.contains("duplicate link name `a`")),
        "{errs:#?}"
    );
    let errs = errors(&format!(
        "{link}{}",
        link.replace("every = \"1s\"", "every = ")
    ));
    assert!(
        errs.iter().any(|e| e.starts_with("test.toml:10:9:")),
        "{errs:#?}"
    );
}

#[test]
fn fingerprints_are_of_values_not_spellings() {
    let link = |extra: &str| {
        let text = format!(
            "[[link]]\nname = \"a\"\nevery = \"1s\"\n{extra}\n[[link.inlet]]\ntype = \"random_int\"\n[[link.outlet]]\ntype = \"null\"\n"
        );
        load(&text).unwrap().links.remove(0).fingerprint
    };
    assert_eq!(
        link("inlet_concurrency = 16"),
        link("inlet_concurrency = 0x10")
    );
    assert_eq!(link("tags = ['x']"), link("tags = [\"x\"]"));
    assert_ne!(link("tags = [\"x\"]"), link("tags = [\"x\\\"\"]"));
    assert_ne!(link("tags = [\"1\"]"), link("tags = [\"2\"]"));
    assert_ne!(link(""), link("inlet_concurrency = 1"));
}
