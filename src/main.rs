//! The databay daemon: `databay run CONFIG` and friends (`databay --help`).

// Records are allocated by the inlet's task and freed after the outlets
// pushed them, often on another worker thread, thousands at a time; glibc's
// malloc spends half the pipeline's time on that pattern, mimalloc a
// fraction of it (see README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    databay::cli::main(databay::builtins())
}
