//! The `redis_config` module binary: Ansible's args file in, one JSON result out. All the
//! work is in the library (`redis_config::run`).

fn main() {
    ansible_module::run(&redis_config::definition(), redis_config::run);
}
