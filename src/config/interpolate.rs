//! `${VAR}` and `${VAR:-default}` in string values, taken from the
//! environment after parsing (so every error still points at the right
//! line). `$${` writes a literal `${`. Values that came from the
//! environment are marked so that no error message quotes them.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};

use super::error::Diagnostics;

/// Looks a variable up: its value, `None` if unset, or why it cannot be
/// used (set, but not UTF-8).
pub(super) type Lookup<'a> = dyn Fn(&str) -> Result<Option<String>, String> + 'a;

pub(super) fn table(
    table: &mut DeTable<'_>,
    env: &Lookup<'_>,
    diag: &mut Diagnostics<'_>,
    key: &str,
) {
    for (k, v) in table.iter_mut() {
        let path = if key.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{key}.{}", k.get_ref())
        };
        let span = v.span();
        value(v.get_mut(), span, env, diag, &path);
    }
}

fn value(
    v: &mut DeValue<'_>,
    span: std::ops::Range<usize>,
    env: &Lookup<'_>,
    diag: &mut Diagnostics<'_>,
    key: &str,
) {
    match v {
        DeValue::String(s) if s.contains('$') => match expand(s, env) {
            Ok((expanded, from_env)) => {
                if !from_env.is_empty() {
                    diag.mark_secret(span, &from_env);
                }
                *s = Cow::Owned(expanded);
            }
            Err(message) => diag.error_once(span, key, message),
        },
        DeValue::Table(t) => table(t, env, diag, key),
        DeValue::Array(items) => {
            let items: &mut [toml::Spanned<DeValue<'_>>] =
                std::borrow::BorrowMut::borrow_mut(items);
            for (i, item) in items.iter_mut().enumerate() {
                item_value(item, key, i, env, diag);
            }
        }
        _ => {}
    }
}

/// The `index`th `[[link]]` table, parsed on its own.
pub(super) fn link(
    item: &mut toml::Spanned<DeValue<'_>>,
    index: usize,
    env: &Lookup<'_>,
    diag: &mut Diagnostics<'_>,
) {
    item_value(item, "link", index, env, diag);
}

/// The `i`th item of the array under `key`.
fn item_value(
    item: &mut toml::Spanned<DeValue<'_>>,
    key: &str,
    i: usize,
    env: &Lookup<'_>,
    diag: &mut Diagnostics<'_>,
) {
    let span = item.span();
    // Links are named in key paths (`link.orders.every`), as in every
    // other config error.
    let path = match item.get_ref() {
        DeValue::Table(t) if key == "link" => match t.get("name").map(|n| n.get_ref()) {
            Some(DeValue::String(n)) if !n.is_empty() && !n.contains('$') => {
                format!("link.{n}")
            }
            _ => format!("{key}[{i}]"),
        },
        _ => format!("{key}[{i}]"),
    };
    value(item.get_mut(), span, env, diag, &path);
}

/// Expands one string. Returns the result and the values that came from
/// the environment (a default written in the file does not count).
pub(super) fn expand(text: &str, env: &Lookup<'_>) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut from_env: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{text}`: close it with `}}`"))?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid environment variable name `{name}` (letters, digits and `_` only)"
                ));
            }
            match (env(name)?, default) {
                (Some(value), _) => {
                    out.push_str(&value);
                    from_env.push(value);
                }
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (give a default with `${{{name}:-value}}`)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok((out, from_env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<Option<String>, String> {
        Ok(match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(
            expand("http://${HOST}:5432", &env),
            Ok(("http://db.local:5432".into(), vec!["db.local".to_owned()]))
        );
        assert_eq!(expand("${PORT:-8080}", &env), Ok(("8080".into(), vec![])));
        assert_eq!(
            expand("${EMPTY:-x}", &env),
            Ok((String::new(), vec![String::new()]))
        );
        assert_eq!(
            expand("cost: $5, literal $${HOST}", &env),
            Ok(("cost: $5, literal ${HOST}".into(), vec![]))
        );
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
        assert!(expand("${HOST", &env).unwrap_err().contains("unterminated"));
        assert!(
            expand("${BAD-NAME}", &env)
                .unwrap_err()
                .contains("BAD-NAME")
        );
    }
}
