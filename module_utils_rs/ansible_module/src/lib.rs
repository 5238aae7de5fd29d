//! Ansible's binary-module contract in Rust, shared by every `creativeflow.redis` module.
//!
//! Ansible gives a binary module nothing but a JSON args file: no argument validation, no type
//! coercion, no check-mode skipping and no `no_log` masking. This crate does all of that the way
//! Python's `AnsibleModule` does, and nothing else: it has no Redis in it (that is the
//! `redis_utils` crate beside it), so it could serve any binary module.
//!
//! ```no_run
//! use ansible_module::{run, ModuleDef, Opt, Outcome, Spec};
//!
//! let def = ModuleDef {
//!     name: "hello",
//!     spec: Spec::new(vec![Opt::str("greeting").default("hello")]),
//!     supports_check_mode: true,
//! };
//! run(&def, |m| {
//!     let greeting = m.params.str("greeting").unwrap_or_default().to_string();
//!     Ok(Outcome::new(false).with("greeting", greeting))
//! });
//! ```

pub mod accounts;
pub mod files;
pub mod module;
pub mod nolog;
pub mod result;
pub mod spec;

pub use module::{run, Module, ModuleDef, Params};
pub use result::{ModuleError, Outcome};
pub use spec::{ArgType, Opt, Spec};
