//! Applying a rendered config to the running server without a restart.
//!
//! One `CONFIG GET` for every directive, compared in CONFIG GET's own form (`4gb` is
//! `4294967296`), then one `CONFIG SET` of everything that differs: Redis 7 applies a multi-
//! parameter CONFIG SET atomically, so a refused value leaves the server unchanged. Redis itself
//! says what needs a restart ("can't set immutable config", "can't set protected config"); those
//! directives are taken out and reported in `restart_reasons`. Never CONFIG REWRITE: the file
//! stays exactly the template's output.

use crate::conf::Line;
use crate::directives::{self, Kind};
use redis_utils::connection::{ConnectionError, RedisConn};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Not changed live even though Redis could: changing them moves the server away from the clients
/// (and from this very connection). They take effect at the restart the result asks for.
const MOVES_CLIENTS: &[&str] = &["port", "bind", "tls-port", "unixsocket"];

/// Redis 7.0's answer to `CONFIG SET <p> <current value>`, measured for every parameter; used only
/// to predict `restart_required` in check mode, where nothing may be set.
const IMMUTABLE: &[&str] = &[
    "aclfile",
    "always-show-logo",
    "aof_rewrite_cpulist",
    "appenddirname",
    "appendfilename",
    "bgsave_cpulist",
    "bio_cpulist",
    "cluster-config-file",
    "cluster-enabled",
    "cluster-port",
    "daemonize",
    "databases",
    "disable-thp",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "io-threads",
    "io-threads-do-reads",
    "logfile",
    "pidfile",
    "rdbchecksum",
    "server_cpulist",
    "set-proc-title",
    "socket-mark-id",
    "supervised",
    "syslog-enabled",
    "syslog-facility",
    "syslog-ident",
    "tcp-backlog",
    "unixsocket",
    "unixsocketperm",
    "dbfilename",
    "dir",
];

/// What the live apply did (or, in check mode, would do).
#[derive(Debug, Default)]
pub struct LiveResult {
    /// Directives changed on the running server.
    pub applied: Vec<String>,
    /// `{directive, before, after}` for each applied change, secrets masked.
    pub changes: Vec<Value>,
    /// Why a restart is needed, one line per directive.
    pub restart_reasons: Vec<String>,
    /// (name, old value) pairs to restore if writing the file fails afterwards.
    pub undo: Vec<(String, String)>,
}

/// The desired value of each directive, joined as CONFIG SET takes it.
fn desired_values(lines: &[Line]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for l in lines {
        let v = l.args.join(" ");
        match l.name.as_str() {
            // Repeated lines add up; `save ""` clears.
            "save" | "client-output-buffer-limit" => {
                let e = out.entry(l.name.clone()).or_default();
                if v.is_empty() {
                    e.clear();
                } else {
                    if !e.is_empty() {
                        e.push(' ');
                    }
                    e.push_str(&v);
                }
            }
            "slaveof" => {
                out.insert("replicaof".into(), v);
            }
            _ => {
                out.insert(l.name.clone(), v);
            }
        }
    }
    out
}

fn file_only_lines(lines: &[Line], name: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.name == name)
        .map(|l| l.raw_value.clone())
        .collect()
}

fn shown(name: &str, v: &str) -> String {
    if redis_utils::redisconf::SECRET_DIRECTIVES.contains(&name) && !v.is_empty() {
        "********".into()
    } else if v.is_empty() {
        "\"\"".into()
    } else {
        v.to_string()
    }
}

/// Per-class comparison: only the classes the config names are compared and set.
fn cobl_differs(desired: &str, current: &str) -> bool {
    let cur: BTreeMap<String, String> = current
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .filter(|c| c.len() == 4)
        .map(|c| (c[0].to_string(), c[1..].join(" ")))
        .collect();
    let want = directives::normalize(Kind::ClientOutputBufferLimit, desired);
    want.split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .any(|c| cur.get(c[0]).map(String::as_str) != Some(&c[1..].join(" ")))
}

/// Compares `desired` with the running server and applies what differs (unless `check_mode`).
/// `old` is the file being replaced, to tell whether start-only lines changed.
///
/// # Errors
/// Connection failures, CONFIG being renamed away, or a value Redis refuses (nothing applied).
pub fn apply(
    con: &mut RedisConn,
    desired: &[Line],
    old: Option<&[Line]>,
    check_mode: bool,
) -> Result<LiveResult, ConnectionError> {
    let mut result = LiveResult::default();
    let wanted = desired_values(desired);

    // Start-only lines: compare with the file being replaced.
    for name in ["rename-command", "user", "include", "loadmodule"] {
        let new = file_only_lines(desired, name);
        let before = old.map(|o| file_only_lines(o, name));
        let changed = match &before {
            Some(b) => *b != new,
            None => !new.is_empty(),
        };
        if changed {
            result.restart_reasons.push(match before {
                Some(_) => format!("{name}: changed in the file; Redis reads {name} lines only at start"),
                None => format!("{name}: cannot be compared with the running server; Redis reads {name} lines only at start"),
            });
        }
    }

    let names: Vec<&str> = wanted
        .keys()
        .map(String::as_str)
        .filter(|n| directives::kind(n) != Some(Kind::FileOnly))
        .collect();
    if names.is_empty() {
        return Ok(result);
    }
    let mut args = vec!["CONFIG", "GET"];
    args.extend(names.iter().copied());
    let reply = con.cmd_json(&args).map_err(|e| match e {
        ConnectionError::Command { addr, detail, .. } if detail.to_lowercase().contains("unknown command") => {
            ConnectionError::Command {
                addr,
                command: "CONFIG GET".into(),
                detail: format!("{detail}: live apply needs the CONFIG command (is it renamed with rename-command?)"),
            }
        }
        other => other,
    })?;
    let current = redis_utils::connection::pairs_to_object(&reply);
    let current_str = |n: &str| -> Option<String> {
        current.get(n).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };

    let mut to_set: Vec<(String, String, String)> = Vec::new(); // name, desired, current
    let mut replicaof: Option<(String, String)> = None;
    for name in names {
        let desired_v = &wanted[name];
        let kind = directives::kind(name).unwrap_or(Kind::Text);
        let Some(cur) = current_str(name) else {
            result.restart_reasons.push(format!(
                "{name}: not known to the running server (a newer Redis version's directive?)"
            ));
            continue;
        };
        let differs = match kind {
            Kind::ClientOutputBufferLimit => cobl_differs(desired_v, &cur),
            Kind::Text if name == "dir" => {
                desired_v.trim_end_matches('/') != cur.trim_end_matches('/')
            }
            _ => directives::normalize(kind, desired_v) != directives::normalize(kind, &cur),
        };
        if !differs {
            continue;
        }
        if name == "replicaof" {
            replicaof = Some((desired_v.clone(), cur));
        } else if MOVES_CLIENTS.contains(&name) {
            result.restart_reasons.push(format!(
                "{name}: {} -> {} (not changed live: it would move the server away from its clients)",
                shown(name, &cur),
                shown(name, desired_v)
            ));
        } else {
            to_set.push((name.to_string(), desired_v.clone(), cur));
        }
    }

    if check_mode {
        for (name, want, cur) in to_set {
            if IMMUTABLE.contains(&name.as_str()) {
                result.restart_reasons.push(format!(
                    "{name}: {} -> {} (Redis cannot change it at runtime)",
                    shown(&name, &cur),
                    shown(&name, &want)
                ));
            } else {
                result.changes.push(json!({"directive": name, "before": shown(&name, &cur), "after": shown(&name, &want)}));
                result.applied.push(name);
            }
        }
    } else {
        // Redis names the first parameter it refuses; take it out and try again.
        loop {
            if to_set.is_empty() {
                break;
            }
            let mut args: Vec<&str> = vec!["CONFIG", "SET"];
            for (n, v, _) in &to_set {
                args.push(n);
                args.push(v);
            }
            match con.cmd::<String>(&args) {
                Ok(_) => {
                    for (n, v, cur) in to_set.drain(..) {
                        result.changes.push(json!({"directive": n, "before": shown(&n, &cur), "after": shown(&n, &v)}));
                        result.undo.push((n.clone(), cur));
                        result.applied.push(n);
                    }
                }
                Err(ConnectionError::Command { addr, detail, .. }) => {
                    let refused = detail
                        .split("argument '")
                        .nth(1)
                        .and_then(|s| s.split('\'').next())
                        .map(str::to_string);
                    let restart_only =
                        detail.contains("immutable config") || detail.contains("protected config");
                    match (refused, restart_only) {
                        (Some(p), true) if to_set.iter().any(|(n, _, _)| *n == p) => {
                            let pos = to_set.iter().position(|(n, _, _)| *n == p).unwrap_or(0);
                            let (n, v, cur) = to_set.remove(pos);
                            let why = if detail.contains("protected") {
                                "can't set protected config"
                            } else {
                                "can't set immutable config"
                            };
                            result.restart_reasons.push(format!(
                                "{n}: {} -> {} (Redis: {why})",
                                shown(&n, &cur),
                                shown(&n, &v)
                            ));
                        }
                        (p, _) => {
                            let which = p.unwrap_or_else(|| "?".into());
                            let value = to_set
                                .iter()
                                .find(|(n, _, _)| *n == which)
                                .map(|(n, v, _)| shown(n, v))
                                .unwrap_or_default();
                            return Err(ConnectionError::Command {
                                addr,
                                command: "CONFIG SET".into(),
                                detail: format!("{detail} (directive `{which}`, value `{value}`); nothing was changed on the server"),
                            });
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    if let Some((want, cur)) = replicaof {
        let words: Vec<&str> = want.split_whitespace().collect();
        let target = if want.is_empty() {
            vec!["NO", "ONE"]
        } else {
            words
        };
        if !check_mode {
            let mut args = vec!["REPLICAOF"];
            args.extend(target.iter().copied());
            con.cmd::<String>(&args)?;
        }
        result.changes.push(json!({"directive": "replicaof", "before": shown("replicaof", &cur), "after": target.join(" ")}));
        result.applied.push("replicaof".into());
    }

    // Directives dropped from the file keep their running value until the restart.
    if let Some(o) = old {
        let dropped: Vec<String> = desired_values(o)
            .into_keys()
            .filter(|k| !wanted.contains_key(k) && directives::kind(k) != Some(Kind::FileOnly))
            .collect();
        for d in dropped {
            result.restart_reasons.push(format!(
                "{d}: removed from the file; the running value stays until a restart"
            ));
        }
    }
    Ok(result)
}

/// Puts back the values `apply` changed (used when writing the file fails afterwards).
pub fn undo(con: &mut RedisConn, undo: &[(String, String)]) -> Result<(), ConnectionError> {
    if undo.is_empty() {
        return Ok(());
    }
    let mut args: Vec<&str> = vec!["CONFIG", "SET"];
    for (n, v) in undo {
        args.push(n);
        args.push(v);
    }
    con.cmd::<String>(&args).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::parse;

    #[test]
    fn repeated_lines_add_up() {
        let l = parse("save 3600 1\nsave 300 100\nclient-output-buffer-limit replica 1mb 1mb 1\nslaveof h 1\n").unwrap_or_default();
        let d = desired_values(&l);
        assert_eq!(d["save"], "3600 1 300 100");
        assert_eq!(d["replicaof"], "h 1");
        let l = parse("save 3600 1\nsave \"\"\n").unwrap_or_default();
        assert_eq!(desired_values(&l)["save"], "");
    }

    #[test]
    fn output_buffer_limits_compare_per_class() {
        let cur = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert!(!cobl_differs("replica 256mb 64mb 60", cur));
        assert!(cobl_differs("replica 512mb 64mb 60", cur));
        assert!(!cobl_differs("pubsub 32mb 8mb 60", cur));
    }
}
