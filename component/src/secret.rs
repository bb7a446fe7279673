//! A wrapper for option values that must never be shown.

use std::fmt;

use serde::Deserialize;

/// An option value that is never shown: `Debug` and `Display` print `***`.
/// Use it in a plugin's options struct for passwords and tokens; values
/// interpolated from the environment are kept out of config errors anyway.
///
/// ```
/// use databay_component::Secret;
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Options { user: String, password: Secret<String> }
///
/// let o: Options = toml::from_str("user = \"app\"\npassword = \"hunter2\"").unwrap();
/// assert_eq!(o.password.expose(), "hunter2");
/// assert!(!format!("{o:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
