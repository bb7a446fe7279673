//! Config errors: each names the file, line and column, and the key path,
//! with the closest valid name for a typo. Loading reports every error of a
//! file at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 when the problem is not tied to a place.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Where in the document: `link.quickstart.inlet[0].min`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// A suggestion, if there is one (`did you mean ...?`).
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while a file is checked, turning byte spans into lines
/// and columns and keeping environment-derived values out of messages.
pub(crate) struct Diagnostics<'a> {
    file: &'a Path,
    text: &'a str,
    /// Added to every span given: a link parsed on its own (see
    /// `loader::link_sections`) has spans counted from its own start.
    offset: usize,
    /// Where each line of `text` starts, once an error or warning needs a
    /// position.
    line_starts: std::sync::OnceLock<Vec<usize>>,
    /// Spans whose text came from the environment: never quoted. By start;
    /// string values, so they never overlap.
    secret_spans: std::collections::BTreeMap<usize, usize>,
    /// The values those spans expanded to, to scrub from any message: a
    /// component may quote an option value in an error placed elsewhere
    /// (at its `type`), or quote it in backticks.
    secret_values: Vec<String>,
    /// The same values, to keep each once.
    secrets_seen: std::collections::HashSet<String>,
    /// Spans already reported (a `${VAR}` that could not be expanded):
    /// checking their unexpanded text would only add misleading errors.
    reported: Vec<Range<usize>>,
    pub(crate) errors: Vec<(usize, ConfigError)>,
    /// What is valid but probably not meant (a file that does not exist yet).
    warnings: Vec<(usize, ConfigError)>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Diagnostics {
            file,
            text,
            offset: 0,
            line_starts: std::sync::OnceLock::new(),
            secret_spans: std::collections::BTreeMap::new(),
            secret_values: Vec::new(),
            secrets_seen: std::collections::HashSet::new(),
            reported: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Spans given from now on count from `offset` in the text.
    pub(crate) fn set_offset(&mut self, offset: usize) {
        self.offset = offset;
    }

    fn absolute(&self, span: &Range<usize>) -> Range<usize> {
        span.start + self.offset..span.end + self.offset
    }

    /// Records an error at `span` and silences any later one there.
    pub(crate) fn error_once(&mut self, span: Range<usize>, key: &str, message: String) {
        self.error(Some(span.clone()), key, message, None);
        self.reported.push(self.absolute(&span));
    }

    /// Marks `span` as holding `values` taken from the environment.
    pub(crate) fn mark_secret(&mut self, span: Range<usize>, values: &[String]) {
        let span = self.absolute(&span);
        self.secret_spans.insert(span.start, span.end);
        for v in values.iter().filter(|v| !v.is_empty()) {
            // A variable used by every link is one secret, not thousands.
            if self.secrets_seen.insert(v.clone()) {
                self.secret_values.push(v.clone());
            }
        }
    }

    /// `message` with every environment value removed.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub(message, &self.secret_values)
    }

    /// The values taken from the environment, for the run-time scrubber.
    pub(crate) fn secret_values(&self) -> &[String] {
        &self.secret_values
    }

    pub(crate) fn is_secret(&self, span: &Range<usize>) -> bool {
        self.secret_at(&self.absolute(span))
    }

    fn secret_at(&self, span: &Range<usize>) -> bool {
        // Secret spans do not overlap: the last one starting before the
        // end of `span` is the only one that can reach into it.
        self.secret_spans
            .range(..span.end.max(span.start + 1))
            .next_back()
            .is_some_and(|(_, end)| span.start < *end)
    }

    /// Line and column of an absolute offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.partition_point(|s| *s <= offset);
        let line_start = starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// Records an error at `span` (or nowhere in particular).
    pub(crate) fn error(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let span = span.map(|s| self.absolute(&s));
        if let Some(s) = &span
            && self
                .reported
                .iter()
                .any(|r| r.start <= s.start && s.end <= r.end)
        {
            return;
        }
        let offset = span.as_ref().map_or(0, |s| s.start);
        let (line, column) = span.as_ref().map_or((0, 0), |s| self.position(s.start));
        let mut message = scrub(&message.into(), &self.secret_values);
        if let Some(s) = &span
            && self.secret_at(s)
        {
            // The value itself is scrubbed above; say where it came from.
            message = format!("invalid value from the environment: {message}");
        }
        self.errors.push((
            offset,
            ConfigError {
                file: self.file.to_path_buf(),
                line,
                column,
                key: key.into(),
                message,
                hint,
            },
        ));
    }

    /// Records a warning at `span`: reported, but the config loads.
    pub(crate) fn warning(&mut self, span: Range<usize>, key: impl Into<String>, message: &str) {
        let span = self.absolute(&span);
        let (line, column) = self.position(span.start);
        let warning = ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: scrub(message, &self.secret_values),
            hint: None,
        };
        self.warnings.push((span.start, warning));
    }

    /// The warnings in file order, emptied.
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|(offset, _)| *offset);
        warnings.into_iter().map(|(_, w)| w).collect()
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors in file order.
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|(offset, _)| *offset);
        self.errors.into_iter().map(|(_, e)| e).collect()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Replaces every quoted part of `message` (in `"` or backticks) that is
/// part of a secret value, or holds one, by `***`; and any other occurrence
/// of a secret of four or more characters (shorter ones would eat ordinary
/// words).
/// Values from the environment shorter than this are not scrubbed from
/// messages: a one- or two-letter value (`a`, `on`) occurs in every
/// sentence, and withholding it would garble the message while hiding
/// nothing worth hiding.
pub(crate) const MIN_SECRET_CHARS: usize = 4;

fn scrub(message: &str, secrets: &[String]) -> String {
    if secrets.is_empty() {
        return message.to_owned();
    }
    // Whole occurrences first (as given, escaped as `{:?}` prints them, in
    // any ASCII case), before quote pairing can be thrown off by a quote
    // inside a secret.
    let out = secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_SECRET_CHARS)
        .flat_map(|s| [s.escape_debug().to_string(), s.clone()])
        .fold(message.to_owned(), |m, s| {
            replace_ascii_case_insensitive(&m, &s, "***")
        });
    map_quoted(&out, |part| {
        !part.is_empty()
            && part != "***"
            // A short quoted word (`"a"`, `"w"`) is not taken for a piece
            // of a secret: that would withhold a message's own words.
            && secrets.iter().any(|s| {
                (part.chars().count() >= MIN_SECRET_CHARS && s.contains(part))
                    || (s.chars().count() >= MIN_SECRET_CHARS && part.contains(s.as_str()))
            })
    })
}

/// `text` with every occurrence of `needle`, in any ASCII case (parsers
/// upper-case what they quote), replaced by `with`.
pub(crate) fn replace_ascii_case_insensitive(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    // ASCII lower-casing keeps byte offsets, so matches map back exactly.
    let hay = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in hay.match_indices(&needle) {
        if at < last {
            continue;
        }
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

/// For a component's own error when some of its options came from the
/// environment: the error may quote a value derived from them (a jq
/// compiler names the identifiers it found), so every quoted part becomes
/// `***` except the names in `keep` (the component's option keys, which are
/// written in the file) and words shorter than [`MIN_SECRET_CHARS`] (a
/// message's own `"a"` or `"w"`: too short to give a secret away).
pub(crate) fn withhold_quoted(message: &str, keep: &[String]) -> String {
    map_quoted(message, |part| {
        part.chars().count() >= MIN_SECRET_CHARS && !keep.iter().any(|k| k == part)
    })
}

/// `message` with each quoted part (in `"` or backticks) for which
/// `withhold` is true replaced by `***`.
fn map_quoted(message: &str, withhold: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            out.push_str(&rest[open..]);
            return out;
        };
        let part = &after[..close];
        out.push_str(quote);
        out.push_str(if withhold(part) { "***" } else { part });
        out.push_str(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The valid name closest to `given`, if one is close enough to be a typo.
pub(crate) fn closest<'n>(
    given: &str,
    valid: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    valid
        .into_iter()
        .map(|v| (strsim::jaro_winkler(given, v), v))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// For serde's `unknown field `x`, expected one of `a`, `b`` (and
/// `unknown variant`), a `did you mean` hint.
pub(crate) fn serde_hint(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, expected) = rest.split_once('`')?;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    closest(given, names.iter().copied()).map(|n| format!("did you mean `{n}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_char_columns() {
        let text = "a = 1\nbé = 2\n";
        let d = Diagnostics::new(Path::new("x.toml"), text);
        assert_eq!(d.position(0), (1, 1));
        assert_eq!(d.position(6), (2, 1));
        assert_eq!(d.position(text.find('=').map(|_| 10).unwrap()), (2, 4));
    }

    #[test]
    fn serde_unknown_field_gets_a_suggestion() {
        let m = "unknown field `lines_per_transfr`, expected one of `path`, `lines_per_transfer`, `json`";
        assert_eq!(
            serde_hint(m).as_deref(),
            Some("did you mean `lines_per_transfer`?")
        );
        assert_eq!(serde_hint("unknown field `zzz`, expected `path`"), None);
    }

    #[test]
    fn secret_values_are_scrubbed_from_any_message() {
        let secrets = ["hunter2 secret".to_owned()];
        assert_eq!(
            scrub(
                "unknown file mode `hunter2 secret`: expected \"a\"",
                &secrets
            ),
            "unknown file mode `***`: expected \"a\""
        );
        assert_eq!(
            scrub("expected nothing at column 9, found `secret`", &secrets),
            "expected nothing at column 9, found `***`"
        );
        assert_eq!(
            scrub("bad value hunter2 secret!", &secrets),
            "bad value ***!"
        );
        assert_eq!(scrub("no `quote", &secrets), "no `quote");
        assert_eq!(
            withhold_quoted(
                "option `expr`: undefined filter `hunter2/0`",
                &["expr".to_owned()]
            ),
            "option `expr`: undefined filter `***`"
        );
    }
}
