//! The databay daemon as a library: the TOML config that turns into links,
//! the CLI and the admin endpoint, with the built-in component crates
//! registered ([`builtins`]). A plugin crate registers its own types (the
//! plugin API is `databay-component`, re-exported here) and calls
//! [`cli::main`] to get the same daemon with them built in.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
mod builtins;
pub mod cli;
pub mod config;
mod daemon;
mod logging;
mod scrub;
pub mod state;

pub use builtins::builtins;
pub use databay_component::{
    BuildContext, BuildError, ComponentInfo, HumanDuration, Kind, OptionError, Registry, Secret,
};
