//! The `redis_health` binary: everything is in the library (`src/lib.rs`).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    redis_health::main_with_args(&args);
}
