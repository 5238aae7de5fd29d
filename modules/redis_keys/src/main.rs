//! `creativeflow.redis.redis_keys`; the logic is in the library (src/lib.rs).
fn main() {
    ansible_module::run(&redis_keys::definition(), redis_keys::run);
}
