//! End-to-end tests of the daemon: the real `databay` binary run on real
//! configs, and the config loader as the binary uses it. One test binary
//! (one link step) with a module per subject: `cargo test --test daemon
//! reload::` runs one subject.

mod support;

mod admin_http;
mod broker_redelivery;
mod component_docs;
mod config_env;
mod config_errors;
mod config_fuzz;
mod crash;
mod dead_letter;
mod down_at_start;
mod durations;
mod example_configs;
mod failures;
mod logs;
mod once;
mod outage;
mod plugins_cmd;
mod processors;
mod quickstart;
mod reload;
mod secrets;
mod signals;
mod state;
mod status_page;
mod webhook_delivery;
