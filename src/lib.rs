//! The databay daemon as a library: the component [`Registry`], the TOML
//! config that turns into links, the CLI and the admin endpoint. A plugin
//! crate registers its own types and calls [`cli::main`] to get the same
//! daemon with them built in.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
mod builtins;
pub mod cli;
pub mod config;
mod daemon;
mod duration;
mod logging;
pub mod processors;
mod registry;
mod secret;

pub use registry::{BuildContext, BuildError, ComponentInfo, Kind, OptionError, Registry};
pub use secret::Secret;
