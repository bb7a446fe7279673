//! The databay daemon: `databay run CONFIG` and friends (`databay --help`).

fn main() -> std::process::ExitCode {
    databay::cli::main(databay::Registry::with_builtins())
}
