//! `creativeflow.redis.redis_lua_script`; the logic is in the library (src/lib.rs).
fn main() {
    ansible_module::run(&redis_lua_script::definition(), redis_lua_script::run);
}
