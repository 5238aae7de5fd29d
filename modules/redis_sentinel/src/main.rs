//! `creativeflow.redis.redis_sentinel`; the logic is in the library (src/lib.rs).
fn main() {
    ansible_module::run(&redis_sentinel::definition(), redis_sentinel::run);
}
