//! The databay daemon.

fn main() {
    println!("databay {}", env!("CARGO_PKG_VERSION"));
}
