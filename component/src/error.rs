//! The errors of building a component from its options.

use databay_core::BoxError;

/// An error a factory returns about one of its options: the config error
/// then points at that option's line and key, not just at the component.
///
/// ```
/// use databay_component::OptionError;
/// let e: databay_core::BoxError = OptionError::new("port", "must not be 0").into();
/// assert_eq!(e.to_string(), "option `port`: must not be 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option `{option}`: {message}")]
pub struct OptionError {
    /// The option's key, as written in TOML.
    pub option: String,
    /// What is wrong with its value.
    pub message: String,
}

impl OptionError {
    /// An error about `option`.
    pub fn new(option: impl Into<String>, message: impl ToString) -> Self {
        OptionError {
            option: option.into(),
            message: message.to_string(),
        }
    }

    /// A closure turning any error into one about `option`, for
    /// `map_err`: `FileMode::from_str(m).map_err(OptionError::of("mode"))`.
    pub fn of<E: ToString>(option: &str) -> impl FnOnce(E) -> OptionError + '_ {
        move |e| OptionError::new(option, e)
    }
}

/// Why a factory could not build its component.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The options did not deserialize (unknown key, wrong type, ...).
    Options(toml::de::Error),
    /// The factory refused the options; an [`OptionError`] inside names
    /// the option.
    Invalid(BoxError),
}

impl BuildError {
    /// The option the error is about, when it names one.
    pub fn option(&self) -> Option<&str> {
        match self {
            BuildError::Options(_) => None,
            BuildError::Invalid(e) => e.downcast_ref::<OptionError>().map(|o| o.option.as_str()),
        }
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Options(e) => write!(f, "{}", e.message()),
            BuildError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BuildError {}
