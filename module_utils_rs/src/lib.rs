//! Ansible's module contract in Rust, shared by every `creativeflow.redis` module.
//!
//! Ansible gives a binary module nothing but a JSON args file: no argument validation, no type
//! coercion, no check-mode skipping and no `no_log` masking. This crate does all of that the way
//! Python's `AnsibleModule` does, plus the one shared way to connect to Redis, so a module's own
//! crate holds only its Redis logic:
//!
//! ```no_run
//! use module_utils_rs::{connection, run, ModuleDef, Opt, Outcome};
//!
//! let def = ModuleDef {
//!     name: "redis_ping",
//!     spec: connection::with_connection_options(vec![Opt::str("message").default("PONG")]),
//!     supports_check_mode: true,
//! };
//! run(&def, |m| {
//!     let mut con = connection::ConnectionParams::from_params(&m.params)?.connect()?;
//!     let pong: String = con.cmd(&["PING"])?;
//!     Ok(Outcome::new(false).with("ping", pong))
//! });
//! ```

pub mod connection;
pub mod files;
pub mod info;
pub mod module;
pub mod nolog;
pub mod redisconf;
pub mod result;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use module::{run, Module, ModuleDef, Params};
pub use result::{ModuleError, Outcome};
pub use spec::{ArgType, Opt, Spec};
