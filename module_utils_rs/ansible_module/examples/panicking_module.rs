//! A module whose body panics with its secret in the message; used by tests/panic_hook.rs to prove
//! that a panic still prints one JSON failure with the secret masked.
use ansible_module::{run, ModuleDef, Opt, Spec};

fn main() {
    let def = ModuleDef {
        name: "redis_panics",
        spec: Spec::new(vec![Opt::str("login_password").no_log()]),
        supports_check_mode: true,
    };
    run(&def, |m| {
        let pw = m
            .params
            .str("login_password")
            .unwrap_or_default()
            .to_string();
        let v: Vec<u8> = Vec::new();
        // An out-of-bounds index, the kind of bug a module could really have.
        let _ = v[pw.len()];
        panic!("unreachable with {pw}")
    });
}
