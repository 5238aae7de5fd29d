//! The `redis_service` module binary: everything is in the library (`src/lib.rs`).

fn main() {
    ansible_module::run(&redis_service::definition(), redis_service::service);
}
