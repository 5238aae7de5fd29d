//! The Redis layer of `creativeflow.redis` modules, on top of the Ansible contract in
//! `ansible_module`: the shared connection options and the one way modules connect, errors by
//! kind, INFO parsing, typed CLUSTER and SENTINEL replies, redis.conf parsing and the rules for
//! which directives are secret.
//!
//! ```no_run
//! use ansible_module::{run, ModuleDef, Opt, Outcome};
//! use redis_utils::connection;
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

pub mod cluster;
pub mod connection;
pub mod info;
pub mod redisconf;
pub mod reply_json;
pub mod sentinel;
pub mod targets;
#[cfg(feature = "testing")]
pub mod testing;
