//! `creativeflow.redis.redis_lua_script`: a Lua library loaded as Redis Functions (the Redis 7
//! way: persisted in RDB/AOF, replicated, kept across restarts) or as a cached script for
//! EVALSHA, on one server, on the current master of a Sentinel group, or on every master of a
//! Cluster.
//!
//! Shape: desired state ([`desired`]: the code, from the host's file or one of the collection's
//! embedded libraries), then for each node what it has (FUNCTION LIST WITHCODE or SCRIPT EXISTS)
//! and a pure plan ([`plan`]), all before anything is sent; then apply.

pub mod desired;
pub mod plan;

use ansible_module::{Module, ModuleDef, ModuleError, Opt, Outcome};
use desired::{Desired, Mode, State, Targets};
use plan::{Action, Current};
use redis_utils::connection::{
    with_connection_options, ConnectionError, ConnectionParams, RedisConn,
};
use redis_utils::targets::target_options;
use serde_json::{json, Value};

/// The module's identity and argument spec (documented in plugins/modules/redis_lua_script.py).
#[must_use]
pub fn definition() -> ModuleDef {
    let builtins: Vec<&str> = desired::BUILTINS.iter().map(|(n, _)| *n).collect();
    let spec = with_connection_options(
        vec![
            Opt::str("name"),
            Opt::path("src"),
            Opt::str("builtin").choices(&builtins),
            Opt::str("mode")
                .default("function")
                .choices(&["function", "script"]),
            Opt::str("state")
                .default("present")
                .choices(&["present", "absent"]),
            Opt::bool("replace").default(false),
        ]
        .into_iter()
        .chain(target_options(&["host", "master", "cluster"], "host"))
        .collect(),
    )
    .mutually_exclusive(&["src", "builtin"])
    // The code (from a file or built in), or for `state: absent` of a library its name alone.
    .required_one_of(&["src", "builtin", "name"])
    .required_if("targets", "master", &["master_name"], false);
    ModuleDef {
        name: "redis_lua_script",
        spec,
        supports_check_mode: true,
    }
}

/// One node to act on, with what it has and what it gets.
struct Node {
    params: ConnectionParams,
    con: RedisConn,
    current: Current,
    /// The function names the library has now (mode=function).
    functions: Vec<String>,
    action: Option<Action>,
}

/// The module body.
///
/// # Errors
/// Bad input, an unreachable node, a node that cannot take the code (a Lua syntax error, with
/// Redis's message and line), a library loaded with other code while `replace` is false.
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let d = desired::from_params(&m.params)?;
    let conn = ConnectionParams::from_params(&m.params)?;
    let sha1 = (d.mode == Mode::Script)
        .then(|| {
            d.code
                .as_deref()
                .map(|c| redis::Script::new(c).get_hash().to_string())
        })
        .flatten();
    // Every node is read and planned before any of them is changed: a node that cannot take
    // the code fails the task with nothing changed anywhere.
    let mut nodes = Vec::new();
    for params in targets(m, &conn)? {
        let mut con = params.connect()?;
        if matches!(d.targets, Targets::Master { .. }) {
            let role = con
                .info(Some("replication"))?
                .get("role")
                .map(str::to_string);
            if role.as_deref() != Some("master") {
                return Err(ModuleError::new(format!(
                    "the Sentinel names {} as the master, but it reports role `{}` (a failover in progress?); nothing was changed",
                    params.address(),
                    role.unwrap_or_default()
                )));
            }
        }
        let (current, functions) = read(&mut con, &d, sha1.as_deref())?;
        let action = plan::plan(&d, &current, &params.address()).map_err(ModuleError::new)?;
        nodes.push(Node {
            params,
            con,
            current,
            functions,
            action,
        });
    }
    let mut commands = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for n in &mut nodes {
        let Some(a) = &n.action else { continue };
        let line = format!("{}: {}", n.params.address(), a.describe(&d));
        if !m.check_mode {
            apply(&mut n.con, &d, a, sha1.as_deref()).map_err(|e| {
                if done.is_empty() {
                    ModuleError::new(format!("{}; nothing was changed", e.msg))
                } else {
                    ModuleError::new(format!("{}; done before it: {}", e.msg, done.join("; ")))
                }
            })?;
            done.push(line.clone());
        }
        commands.push(line);
    }
    finish(m, &d, &mut nodes, commands, sha1)
}

/// The nodes `targets` names, with the task's credentials and TLS settings, resolved by the
/// collection's one implementation (redis_utils::targets). This module's `cluster` is its
/// `masters`: functions and cached scripts go to masters, and a replica gets a master's
/// functions through replication.
fn targets(m: &Module, conn: &ConnectionParams) -> Result<Vec<ConnectionParams>, ModuleError> {
    let mut p = m.params.clone();
    if p.str("targets") == Some("cluster") {
        p.0.insert("targets".into(), json!("masters"));
    }
    Ok(redis_utils::targets::resolve(&p, conn)?
        .into_iter()
        .map(|t| t.params)
        .collect())
}

/// A reply's bulk string as text.
fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// A flat `[k, v, ...]` array (RESP2) or a map (RESP3) as pairs.
fn pairs(v: &redis::Value) -> Vec<(String, &redis::Value)> {
    match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => text(k).map(|k| (k, v)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| text(k).map(|k| (k, v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The library `name` as FUNCTION LIST WITHCODE has it: its code and function names.
fn library(con: &mut RedisConn, name: &str) -> Result<Option<(String, Vec<String>)>, ModuleError> {
    let reply: redis::Value = con
        .cmd(&["FUNCTION", "LIST", "LIBRARYNAME", name, "WITHCODE"])
        .map_err(|e| unsupported(&e, "Functions (FUNCTION LIST)", "use mode: script"))?;
    let libs = match &reply {
        redis::Value::Array(a) | redis::Value::Set(a) => a.as_slice(),
        _ => &[],
    };
    // LIBRARYNAME is a pattern; library names have no pattern characters, but only an exact
    // match is this library.
    for lib in libs {
        let fields = pairs(lib);
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| *v);
        if get("library_name").and_then(text).as_deref() != Some(name) {
            continue;
        }
        let code = get("library_code").and_then(text).unwrap_or_default();
        let functions = match get("functions") {
            Some(redis::Value::Array(fs) | redis::Value::Set(fs)) => fs
                .iter()
                .filter_map(|f| {
                    pairs(f)
                        .into_iter()
                        .find(|(k, _)| k == "name")
                        .and_then(|(_, v)| text(v))
                })
                .collect(),
            _ => Vec::new(),
        };
        return Ok(Some((code, functions)));
    }
    Ok(None)
}

/// An unknown command is a server too old for `what`: say so instead of "ERR unknown command".
fn unsupported(e: &ConnectionError, what: &str, hint: &str) -> ModuleError {
    match e {
        ConnectionError::Command { addr, detail, .. }
            if detail.contains("unknown command") || detail.contains("unknown subcommand") =>
        {
            ModuleError::new(format!(
                "Redis at {addr} does not support {what} (Redis 7.0 or later has them): {detail}; {hint}"
            ))
        }
        e => ModuleError::new(e.to_string()),
    }
}

fn read(
    con: &mut RedisConn,
    d: &Desired,
    sha1: Option<&str>,
) -> Result<(Current, Vec<String>), ModuleError> {
    match d.mode {
        Mode::Function => Ok(match library(con, &d.name)? {
            Some((code, mut functions)) => {
                functions.sort();
                (Current::Library(Some(code)), functions)
            }
            None => (Current::Library(None), Vec::new()),
        }),
        Mode::Script => {
            let sha = sha1.unwrap_or_default();
            let exists: Vec<i64> = con.cmd(&["SCRIPT", "EXISTS", sha])?;
            Ok((Current::Script(exists.first() == Some(&1)), Vec::new()))
        }
    }
}

/// Redis's compile error names the line as `user_function:N:` / `user_script:N:`; the code sent
/// has the file's line numbers, so point at the file's line.
fn with_line(detail: &str, origin: &str) -> String {
    for marker in ["user_function:", "user_script:"] {
        if let Some(i) = detail.find(marker) {
            let digits: String = detail[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !digits.is_empty() {
                return format!("{detail} (line {digits} of {origin})");
            }
        }
    }
    detail.to_string()
}

fn apply(
    con: &mut RedisConn,
    d: &Desired,
    a: &Action,
    sha1: Option<&str>,
) -> Result<(), ModuleError> {
    let code = d.code.as_deref().unwrap_or_default();
    let addr = con.address();
    let refused = |e: ConnectionError| match e {
        ConnectionError::Command {
            detail, command, ..
        } => ModuleError::new(format!(
            "Redis at {addr} refused `{command}` of {} ({}): {}",
            d.name,
            d.origin,
            with_line(&detail, &d.origin)
        )),
        e => ModuleError::new(e.to_string()),
    };
    match a {
        Action::FunctionLoad { replace } => {
            let mut args = vec!["FUNCTION", "LOAD"];
            if *replace {
                args.push("REPLACE");
            }
            args.push(code);
            con.cmd::<String>(&args).map_err(refused)?;
        }
        Action::FunctionDelete => {
            con.cmd::<String>(&["FUNCTION", "DELETE", &d.name])
                .map_err(refused)?;
        }
        Action::ScriptLoad => {
            let got: String = con.cmd(&["SCRIPT", "LOAD", code]).map_err(refused)?;
            if Some(got.as_str()) != sha1 {
                return Err(ModuleError::new(format!(
                    "Redis at {addr} loaded the script as {got}, not as {}: the module's SHA1 of the code disagrees with the server's",
                    sha1.unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

fn finish(
    m: &Module,
    d: &Desired,
    nodes: &mut [Node],
    commands: Vec<String>,
    sha1: Option<String>,
) -> Result<Outcome, ModuleError> {
    let changed = nodes.iter().any(|n| n.action.is_some());
    let mut report = Vec::new();
    let mut diffs = Vec::new();
    for n in nodes.iter_mut() {
        let addr = n.params.address();
        let node_changed = n.action.is_some();
        let mut r = json!({"node": addr, "name": d.name, "changed": node_changed});
        match d.mode {
            Mode::Function => {
                let functions = if !node_changed {
                    n.functions.clone()
                } else if d.state == State::Absent {
                    Vec::new()
                } else if m.check_mode {
                    let mut f = desired::declared_functions(d.code.as_deref().unwrap_or_default());
                    f.sort();
                    f
                } else {
                    // What Redis registered, not what the code seems to say.
                    let mut f = library(&mut n.con, &d.name)?
                        .map(|(_, f)| f)
                        .unwrap_or_default();
                    f.sort();
                    f
                };
                r["functions"] = json!(functions);
                if node_changed {
                    let before = match &n.current {
                        Current::Library(Some(c)) => c.clone(),
                        _ => String::new(),
                    };
                    let after = if d.state == State::Present {
                        d.code.clone().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    diffs.push(json!({"before": before, "after": after,
                        "before_header": format!("library {} on {addr}", d.name),
                        "after_header": format!("library {} on {addr}", d.name)}));
                }
            }
            Mode::Script => {
                r["sha1"] = json!(sha1);
                if node_changed {
                    diffs.push(json!({"before": "", "after": d.code.clone().unwrap_or_default(),
                        "before_header": format!("script {} ({}) on {addr}", d.name, sha1.clone().unwrap_or_default()),
                        "after_header": format!("script {} ({}) on {addr}", d.name, sha1.clone().unwrap_or_default())}));
                }
            }
        }
        report.push(r);
    }
    let mut o = Outcome::new(changed)
        .with("name", &d.name)
        .with(
            "mode",
            match d.mode {
                Mode::Function => "function",
                Mode::Script => "script",
            },
        )
        .with("commands", &commands);
    match d.mode {
        Mode::Function => {
            o = o.with(
                "functions",
                report.first().map_or(json!([]), |r| r["functions"].clone()),
            );
        }
        Mode::Script => o = o.with("sha1", &sha1),
    }
    o = o.with("nodes", &report);
    if m.diff_mode && changed {
        o = o.with(
            "diff",
            if diffs.len() == 1 {
                diffs.remove(0)
            } else {
                Value::Array(diffs)
            },
        );
    }
    let what = match d.mode {
        Mode::Function => format!("library {}", d.name),
        Mode::Script => format!("script {} ({})", d.name, sha1.unwrap_or_default()),
    };
    let msg = if changed {
        format!(
            "{} {}",
            if m.check_mode { "would run" } else { "ran" },
            commands.join("; ")
        )
    } else {
        format!(
            "{what} is {} on {}",
            if d.state == State::Present {
                "loaded as asked"
            } else {
                "absent"
            },
            nodes
                .iter()
                .map(|n| n.params.address())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(o.msg(msg))
}
