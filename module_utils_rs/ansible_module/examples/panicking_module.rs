//! A module that panics with its secrets in the panic message; used by tests/panic_hook.rs to
//! prove that a panic still prints one JSON failure with every secret masked: the no_log option's
//! value and a secret the module found at run time (`Module::add_secret`).
use ansible_module::{run, ModuleDef, Opt, Spec};

fn main() {
    let def = ModuleDef {
        name: "redis_panics",
        spec: Spec::new(vec![Opt::str("login_password").no_log(), Opt::str("found")]),
        supports_check_mode: true,
    };
    run(&def, |m| {
        let pw = m.params.str("login_password").unwrap_or_default();
        let found = m.params.str("found").unwrap_or_default();
        m.add_secret(found);
        // The panic payload itself carries both secrets: this is the path the hook must mask.
        panic!("boom with password {pw} and found secret {found}")
    });
}
