//! A databay binary with this crate's types built in: the whole CLI
//! (`run`, `validate`, `once`, `plugins`) in a few lines.

fn main() -> std::process::ExitCode {
    let mut registry = databay::builtins();
    databay_example_plugin::register(&mut registry);
    databay::cli::main(registry)
}
