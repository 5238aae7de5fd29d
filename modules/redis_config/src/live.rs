//! Talking to the running server for `apply: live`: connecting, reading its state, and the
//! steps that change it (one atomic `CONFIG SET`, `REPLICAOF`) with what undoes each.
//!
//! Redis 7 applies a multi-parameter CONFIG SET atomically, so a refused value leaves the
//! server unchanged. Redis itself says what needs a restart ("can't set immutable config",
//! "can't set protected config"); those parameters are taken out and reported. Never CONFIG
//! REWRITE: the file stays exactly the template's output.

use crate::acl;
use crate::conf::{self, Dialect, Line};
use crate::desired::Desired;
use crate::plan::{self, Entry, Restart};
use ansible_module::{Module, ModuleError};
use redis_utils::connection::{pairs_to_object, ConnectionError, ConnectionParams, RedisConn};
use serde_json::Value;
use std::collections::BTreeMap;

/// What the running server has, as far as the plan needs it. A part Redis would not show
/// (a command renamed away, an ACL forbidding it) is `Err(why)`; the plan then compares that
/// part with the file being replaced.
#[derive(Debug)]
pub struct ServerState {
    /// `CONFIG GET` of every parameter the new or the old file sets.
    pub config: BTreeMap<String, String>,
    /// `ACL LIST`, read.
    pub users: Result<Vec<(String, acl::User)>, String>,
    /// `COMMAND`: every command's ACL categories (to compare users by what they may run).
    pub command_table: acl::CommandTable,
    /// `COMMAND INFO` of every command name and rename target: name -> the command it runs
    /// (`None`: no such command now).
    pub commands: Result<BTreeMap<String, Option<String>>, String>,
    /// `MODULE LIST`: (path, arguments) of each loaded module.
    pub modules: Result<Vec<(String, Vec<String>)>, String>,
}

impl ServerState {
    /// Nothing read yet.
    #[must_use]
    pub fn empty() -> ServerState {
        ServerState {
            config: BTreeMap::new(),
            users: Err("not read".into()),
            command_table: acl::CommandTable::default(),
            commands: Err("not read".into()),
            modules: Err("not read".into()),
        }
    }
}

fn requirepass(lines: Option<&[Line]>) -> Option<String> {
    lines
        .and_then(|l| conf::last(l, "requirepass"))
        .and_then(|l| l.args.first().cloned())
        .filter(|s| !s.is_empty())
}

/// Connects for a live apply. `login_password: ""` means no password. Without `login_user`,
/// a connection without a password is tried first (a server that has none yet, about to get
/// its first one from this very file, answers AUTH with an error); then `login_password`, or
/// when that is not given the old file's `requirepass` (the running server's) and the new one's.
///
/// # Errors
/// The server cannot be reached, or no password works.
pub fn connect(m: &Module, desired: &Desired) -> Result<RedisConn, ModuleError> {
    // from_params already reads `login_password: ""` as no password.
    let base = ConnectionParams::from_params(&m.params)?;
    if base.user.is_some() {
        return Ok(base.connect()?);
    }
    let mut passwords: Vec<String> = match &base.password {
        Some(given) => vec![given.clone()],
        None => [
            requirepass(desired.old_lines.as_deref()),
            requirepass(Some(&desired.lines)),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    passwords.dedup();
    let mut last = None;
    for pw in std::iter::once(None).chain(passwords.into_iter().map(Some)) {
        let mut cp = base.clone();
        cp.password = pw;
        let attempt = cp
            .connect()
            .and_then(|mut c| c.cmd::<String>(&["PING"]).map(|_| c));
        match attempt {
            Ok(c) => return Ok(c),
            Err(e @ (ConnectionError::Auth { .. } | ConnectionError::NoAuth { .. })) => {
                last = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .map(ModuleError::from)
        .unwrap_or_else(|| ModuleError::new("cannot connect")))
}

fn config_error(e: ConnectionError) -> ConnectionError {
    match e {
        ConnectionError::Command { addr, detail, .. }
            if detail.to_lowercase().contains("unknown command") =>
        {
            ConnectionError::Command {
                addr,
                command: "CONFIG GET".into(),
                detail: format!("{detail}: live apply needs the CONFIG command (is it renamed with rename-command?)"),
            }
        }
        other => other,
    }
}

fn has(desired: &Desired, name: &str) -> bool {
    let any = |ls: &[Line]| ls.iter().any(|l| l.name == name);
    any(&desired.lines) || desired.old_lines.as_deref().is_some_and(any)
}

/// Reads what the plan compares with. Secret values CONFIG GET returns (the server's current
/// `requirepass`, `masterauth`) are registered with `m.add_secret`.
///
/// # Errors
/// CONFIG GET fails (without it nothing can be compared).
pub fn read_state(
    m: &Module,
    con: &mut RedisConn,
    desired: &Desired,
) -> Result<ServerState, ModuleError> {
    let mut state = ServerState::empty();
    let names = plan::config_names(desired);
    if !names.is_empty() {
        let mut args = vec!["CONFIG", "GET"];
        args.extend(names.iter().map(String::as_str));
        let reply = con.cmd_json(&args).map_err(config_error)?;
        for (k, v) in pairs_to_object(&reply) {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if conf::is_secret(&k, &v) {
                m.add_secret(&v);
            }
            state.config.insert(k, v);
        }
    }
    let unavailable = |what: &str, e: &ConnectionError| format!("{what} is not available: {e}");
    if has(desired, "user") {
        state.users = match (con.cmd_json(&["ACL", "LIST"]), con.cmd_json(&["COMMAND"])) {
            (Ok(list), Ok(table)) => {
                state.command_table = acl::CommandTable::from_command_reply(&table);
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|l| acl::user_from_acl_list(l, Dialect::Redis))
                    .collect()
            }
            (Err(e), _) => Err(unavailable("ACL LIST", &e)),
            (_, Err(e)) => Err(unavailable("COMMAND", &e)),
        };
    }
    if has(desired, "rename-command") {
        let mut names: Vec<String> = crate::commands::top_level(Dialect::Redis)
            .map(str::to_string)
            .collect();
        names.extend(conf::commands_after_renames(&desired.lines, Dialect::Redis).into_keys());
        if let Some(o) = &desired.old_lines {
            names.extend(conf::commands_after_renames(o, Dialect::Redis).into_keys());
        }
        names.sort();
        names.dedup();
        let mut args = vec!["COMMAND", "INFO"];
        args.extend(names.iter().map(String::as_str));
        state.commands = match con.cmd_json(&args) {
            Ok(Value::Array(infos)) => Ok(names
                .iter()
                .cloned()
                .zip(
                    infos
                        .iter()
                        .map(|i| i.get(0).and_then(Value::as_str).map(str::to_lowercase)),
                )
                .collect()),
            Ok(other) => Err(format!("COMMAND INFO answered {other}")),
            Err(e) => Err(unavailable("COMMAND INFO", &e)),
        };
    }
    if has(desired, "loadmodule") {
        state.modules = match con.cmd_json(&["MODULE", "LIST"]) {
            Ok(Value::Array(mods)) => Ok(mods
                .iter()
                .map(|entry| {
                    let o = pairs_to_object(entry);
                    let path = o
                        .get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let args = o
                        .get("args")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    (path, args)
                })
                .collect()),
            Ok(other) => Err(format!("MODULE LIST answered {other}")),
            Err(e) => Err(unavailable("MODULE LIST", &e)),
        };
    }
    Ok(state)
}

/// How to take back one live step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undo {
    /// `CONFIG SET` these (name, old value) pairs.
    Config(Vec<(String, String)>),
    /// `REPLICAOF` this (`host port`, or empty for `NO ONE`).
    Replicaof(String),
}

/// Runs one `CONFIG SET` of `entries`. A parameter Redis refuses as restart-only is taken out
/// (and returned as a restart) and the rest tried again; any other refusal fails the whole step,
/// and Redis has then changed nothing.
///
/// # Errors
/// The refusal, naming the directive (its value masked when secret).
pub fn config_set(
    con: &mut RedisConn,
    mut entries: Vec<Entry>,
) -> Result<(Vec<Entry>, Vec<Restart>), ConnectionError> {
    let mut restarts = Vec::new();
    while !entries.is_empty() {
        let mut args: Vec<&str> = vec!["CONFIG", "SET"];
        for e in &entries {
            args.push(&e.name);
            args.push(&e.desired);
        }
        match con.cmd::<String>(&args) {
            Ok(_) => return Ok((entries, restarts)),
            Err(ConnectionError::Command { addr, detail, .. }) => {
                let refused = detail
                    .split("argument '")
                    .nth(1)
                    .and_then(|s| s.split('\'').next())
                    .map(str::to_string);
                let restart_only =
                    detail.contains("immutable config") || detail.contains("protected config");
                let pos = refused
                    .as_ref()
                    .and_then(|p| entries.iter().position(|e| e.name == *p));
                match (pos, restart_only) {
                    (Some(pos), true) => {
                        let why = if detail.contains("protected") {
                            "Redis: can't set protected config"
                        } else {
                            "Redis: can't set immutable config"
                        };
                        restarts.push(Restart::of(entries.remove(pos), why));
                    }
                    (pos, _) => {
                        let (which, value) = pos.map_or_else(
                            || ("?".to_string(), String::new()),
                            |i| {
                                (
                                    entries[i].name.clone(),
                                    entries[i].shown(&entries[i].desired),
                                )
                            },
                        );
                        return Err(ConnectionError::Command {
                            addr,
                            command: "CONFIG SET".into(),
                            detail: format!("{detail} (directive `{which}`, value `{value}`); CONFIG SET changed nothing"),
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok((entries, restarts))
}

/// `REPLICAOF host port`, or `REPLICAOF NO ONE` for an empty target.
///
/// # Errors
/// Redis refused it.
pub fn replicaof(con: &mut RedisConn, target: &str) -> Result<(), ConnectionError> {
    let words: Vec<&str> = target.split_whitespace().collect();
    let mut args = vec!["REPLICAOF"];
    if words.is_empty() || target.eq_ignore_ascii_case("no one") {
        args.extend(["NO", "ONE"]);
    } else {
        args.extend(words);
    }
    con.cmd::<String>(&args).map(|_| ())
}

/// Takes back `steps`, last first.
///
/// # Errors
/// The first step Redis refused (the ones after it in this order are not tried).
pub fn undo(con: &mut RedisConn, steps: &[Undo]) -> Result<(), ConnectionError> {
    for step in steps.iter().rev() {
        match step {
            Undo::Config(pairs) if !pairs.is_empty() => {
                let mut args: Vec<&str> = vec!["CONFIG", "SET"];
                for (n, v) in pairs {
                    args.push(n);
                    args.push(v);
                }
                con.cmd::<String>(&args)?;
            }
            Undo::Config(_) => {}
            Undo::Replicaof(old) => replicaof(con, old)?,
        }
    }
    Ok(())
}
