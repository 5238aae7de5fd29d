//! `creativeflow.redis.redis_command`; the logic is in the library (src/lib.rs).
fn main() {
    ansible_module::run(&redis_command::definition(), redis_command::run);
}
