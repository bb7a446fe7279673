//! `${VAR}` and `${VAR:-default}` in string values, taken from the
//! environment after parsing (so every error still points at the right
//! line). `$${` writes a literal `${`. Values that came from the
//! environment are marked so that no error message quotes them.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};

use super::error::Diagnostics;

pub(super) fn table(
    table: &mut DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
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
    env: &dyn Fn(&str) -> Option<String>,
    diag: &mut Diagnostics<'_>,
    key: &str,
) {
    match v {
        DeValue::String(s) if s.contains('$') => match expand(s, env) {
            Ok((expanded, from_env)) => {
                if from_env {
                    diag.mark_secret(span, &expanded);
                }
                *s = Cow::Owned(expanded);
            }
            Err(message) => diag.error(Some(span), key, message, None),
        },
        DeValue::Table(t) => table(t, env, diag, key),
        DeValue::Array(items) => {
            let items: &mut [toml::Spanned<DeValue<'_>>] =
                std::borrow::BorrowMut::borrow_mut(items);
            for (i, item) in items.iter_mut().enumerate() {
                let span = item.span();
                value(item.get_mut(), span, env, diag, &format!("{key}[{i}]"));
            }
        }
        _ => {}
    }
}

/// Expands one string. Returns the result and whether any part of it came
/// from the environment (a default written in the file does not count).
pub(super) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut from_env = false;
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
            match (env(name), default) {
                (Some(value), _) => {
                    from_env = true;
                    out.push_str(&value);
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

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(
            expand("http://${HOST}:5432", &env),
            Ok(("http://db.local:5432".into(), true))
        );
        assert_eq!(expand("${PORT:-8080}", &env), Ok(("8080".into(), false)));
        assert_eq!(expand("${EMPTY:-x}", &env), Ok((String::new(), true)));
        assert_eq!(
            expand("cost: $5, literal $${HOST}", &env),
            Ok(("cost: $5, literal ${HOST}".into(), false))
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
