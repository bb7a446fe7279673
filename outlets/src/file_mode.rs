//! How a file outlet opens its target file: append to it or replace it.
//! Shared by [`FileOutlet`](crate::FileOutlet) and
//! [`CsvOutlet`](crate::CsvOutlet), which both take Databay's `"a"`/`"w"`.

use std::fmt;
use std::str::FromStr;

/// Whether a push appends to the target file or replaces its content.
///
/// Parses from Databay's Python mode strings, `"a"` and `"w"`, or from the
/// words `"append"` and `"truncate"`:
///
/// ```
/// use databay_outlets::FileMode;
///
/// assert_eq!("a".parse::<FileMode>().unwrap(), FileMode::Append);
/// assert_eq!("w".parse::<FileMode>().unwrap(), FileMode::Truncate);
/// assert!("r+".parse::<FileMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileMode {
    /// Keep what the file holds and write after it (`"a"`). The default.
    #[default]
    Append,
    /// Remove what the file holds, once per push, then write (`"w"`).
    Truncate,
}

impl FileMode {
    /// The Databay mode string: `"a"` or `"w"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileMode::Append => "a",
            FileMode::Truncate => "w",
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file mode string that is neither append nor truncate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file mode `{0}`: expected \"a\" (append) or \"w\" (truncate)")]
pub struct ParseFileModeError(pub String);

impl FromStr for FileMode {
    type Err = ParseFileModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "a" | "append" => Ok(FileMode::Append),
            "w" | "truncate" => Ok(FileMode::Truncate),
            other => Err(ParseFileModeError(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_databay_and_long_names() {
        for (s, mode) in [
            ("a", FileMode::Append),
            ("append", FileMode::Append),
            ("w", FileMode::Truncate),
            ("truncate", FileMode::Truncate),
        ] {
            assert_eq!(s.parse::<FileMode>(), Ok(mode), "{s}");
        }
        assert_eq!(FileMode::default(), FileMode::Append);
        assert_eq!(FileMode::Truncate.to_string(), "w");
    }

    #[test]
    fn rejects_other_python_modes_with_a_clear_message() {
        let err = "a+".parse::<FileMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown file mode `a+`: expected \"a\" (append) or \"w\" (truncate)"
        );
        assert!("W".parse::<FileMode>().is_err());
        assert!("".parse::<FileMode>().is_err());
    }
}
