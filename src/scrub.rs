//! Keeps the values `${VAR}` took from the environment out of everything
//! the daemon says at run time: log lines (text and JSON), admin answers
//! (`last_error`, error bodies) and what `once` prints. Config errors are
//! scrubbed by the loader itself, with the same rule: a value of fewer than
//! [`MIN_SECRET_CHARS`] characters is not scrubbed (it occurs in ordinary
//! words), longer ones are replaced by `***` wherever they occur whole, as
//! written, `{:?}`-escaped or JSON-escaped, in any ASCII case.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::RwLock;

use crate::config::error::{MIN_SECRET_CHARS, replace_ascii_case_insensitive};

/// Every form of every secret to replace, ASCII-lower-cased once here (the
/// match ignores ASCII case), longest first, so a secret that contains
/// another is replaced whole.
static FORMS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds secrets to scrub (at start and on every reload; a value a reload
/// dropped may still sit in a log line or error of the old links, so none
/// is ever removed).
pub(crate) fn add_secrets(values: &[String]) {
    let mut forms: Vec<String> = values
        .iter()
        .filter(|v| v.chars().count() >= MIN_SECRET_CHARS)
        .flat_map(|v| {
            let json = serde_json::to_string(v).unwrap_or_default();
            let json = json
                .strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .unwrap_or_default()
                .to_owned();
            [v.clone(), v.escape_debug().to_string(), json]
        })
        .map(|f| f.to_ascii_lowercase())
        .filter(|f| !f.is_empty())
        .collect();
    let mut all = FORMS.write().unwrap_or_else(|p| p.into_inner());
    all.append(&mut forms);
    // Equal forms side by side, for `dedup`: every reload adds the same
    // values again, and every log line is checked against each form.
    all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    all.dedup();
}

/// `text` without any secret.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let forms = FORMS.read().unwrap_or_else(|p| p.into_inner());
    // Every log line comes through here: without secrets, or without a
    // match, the text is passed on as it is.
    if forms.is_empty() {
        return Cow::Borrowed(text);
    }
    let lower = text.to_ascii_lowercase();
    if !forms.iter().any(|f| lower.contains(f.as_str())) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(forms.iter().fold(text.to_owned(), |t, f| {
        replace_ascii_case_insensitive(&t, f, "***")
    }))
}

/// `eprintln!` through [`scrub`].
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::scrub::scrub(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// A writer that scrubs each write before passing it on: the log layer
/// writes one whole event per call, so a secret is never split across two.
pub(crate) struct Scrubbed<W>(pub(crate) W);

impl<W: Write> Write for Scrubbed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(scrub(text).as_bytes())?,
            Err(_) => self
                .0
                .write_all(scrub(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_scrubbed_and_short_values_are_left() {
        add_secrets(&["s3cr\"et-Token".to_owned(), "a".to_owned()]);
        assert_eq!(scrub("path out/s3cr\"et-Token.csv"), "path out/***.csv");
        assert_eq!(scrub("{\"e\":\"s3cr\\\"et-Token\"}"), "{\"e\":\"***\"}");
        assert_eq!(scrub("S3CR\"ET-TOKEN"), "***");
        assert_eq!(scrub("expected \"a\" (append)"), "expected \"a\" (append)");
        let mut out = Vec::new();
        Scrubbed(&mut out).write_all(b"x s3cr\"et-Token y").unwrap();
        assert_eq!(out, b"x *** y");
    }
}
