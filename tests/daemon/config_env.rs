//! Values taken from the environment (`${VAR}`, `${VAR:-default}`): a
//! missing variable is one error under the option's key, a variable that
//! is set but not UTF-8 is not taken for unset, and a value from the
//! environment never shows up in an error, whatever option it lands in,
//! however the error quotes, escapes or upper-cases it.

use std::process::Command;

use crate::support::*;

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
