//! `creativeflow.redis.redis_cluster`; the logic is in the library (src/lib.rs).
fn main() {
    ansible_module::run(&redis_cluster::definition(), redis_cluster::run);
}
