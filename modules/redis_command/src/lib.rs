//! `creativeflow.redis.redis_command`: one Redis command, given as an argv list (never a
//! string a shell or a parser splits, so nothing can be injected), on one host, the current
//! master of a Sentinel group, or every node / master of a Cluster.
//!
//! Shape: desired state ([`Request`] from the options), a plan ([`classify`]: what Redis'
//! `COMMAND INFO` says the command does, on every target, before anything is sent), then apply
//! (send it, or in check mode skip a command that changes something). The reply is JSON by
//! [`redis_utils::reply_json`].

use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome};
use redis_utils::connection::{with_connection_options, ConnectionParams, RedisConn};
use redis_utils::reply_json;
use redis_utils::targets::{self, Target};
use serde_json::{json, Value};

/// The module's identity and argument spec (documented in plugins/modules/redis_command.py).
#[must_use]
pub fn definition() -> ModuleDef {
    let mut own = vec![
        Opt::list("command", ArgType::Str).required(),
        Opt::str("changed")
            .default("auto")
            .choices(&["auto", "always", "never"]),
        Opt::list("secret_args", ArgType::Int),
        Opt::int("resp").default(3).choices(&[2, 3]),
    ];
    own.extend(targets::target_options(
        &["host", "master", "all_nodes", "masters"],
        "host",
    ));
    ModuleDef {
        name: "redis_command",
        spec: with_connection_options(own),
        supports_check_mode: true,
    }
}

/// Commands that would break the one-request-one-reply exchange of a module's connection
/// (subscriber and monitor modes, replication streams, a protocol switch, closing it) or put a
/// password in the command (use `login_password`): refused before anything is sent.
pub const REFUSED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "monitor",
    "sync",
    "psync",
    "hello",
    "auth",
    "quit",
    "reset",
    "client|reply",
];

/// Admin commands that only read. Redis flags every admin command `admin` alike (CONFIG GET as
/// CONFIG SET), so these are named here to run in check mode and report `changed=false`.
pub const ADMIN_READS: &[&str] = &[
    "config|get",
    "client|list",
    "client|info",
    "slowlog|get",
    "slowlog|len",
    "slowlog|help",
    "latency|latest",
    "latency|history",
    "latency|doctor",
    "latency|graph",
    "latency|histogram",
    "latency|help",
    "acl|list",
    "acl|users",
    "acl|getuser",
    "acl|dryrun",
    "acl|whoami",
    "acl|cat",
    "module|list",
    "role",
    "lastsave",
];

/// Commands Redis does not flag `write` although they act: PUBLISH delivers a message to
/// subscribers (Redis 7.0 flags it `pubsub fast` only).
pub const UNFLAGGED_WRITES: &[&str] = &["publish", "spublish"];

/// Scripting commands that only read (the others of @scripting run or change scripts).
pub const SCRIPTING_READS: &[&str] = &[
    "script|exists",
    "script|help",
    "function|list",
    "function|dump",
    "function|stats",
    "function|help",
];

/// The task, from its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub argv: Vec<String>,
    pub changed: ChangedRule,
    pub resp: i64,
}

/// The `changed` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangedRule {
    Auto,
    Always,
    Never,
}

/// What a command does, by COMMAND INFO.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    /// `get` or `config|get`: the name COMMAND INFO knows it by.
    pub name: String,
    pub flags: Vec<String>,
    pub categories: Vec<String>,
    /// True when the command writes or acts (not run in check mode, `changed` under auto).
    pub writes: bool,
    /// Why, in words, for the result.
    pub reason: String,
}

/// Reads and checks the options (no connection).
///
/// # Errors
/// An empty command, a refused command, a bad `secret_args` index.
pub fn request(m: &Module) -> Result<Request, ModuleError> {
    let argv = m.params.str_list("command").unwrap_or_default();
    if argv.is_empty() || argv[0].trim().is_empty() {
        return Err(ModuleError::new(
            "command is empty: give the command and its arguments as a list, e.g. [PING] or [GET, mykey]; nothing was sent",
        ));
    }
    let lower = argv[0].to_ascii_lowercase();
    let sub = argv
        .get(1)
        .map(|s| format!("{lower}|{}", s.to_ascii_lowercase()));
    if let Some(r) = REFUSED
        .iter()
        .find(|r| **r == lower || Some((**r).to_string()) == sub)
    {
        return Err(ModuleError::new(format!(
            "`{}` is not run by this module: it {} (use login_password for AUTH, a client for Pub/Sub subscriptions); nothing was sent",
            r.replace('|', " ").to_uppercase(),
            if ["auth", "hello"].contains(r) {
                "would put credentials or a protocol switch into the command"
            } else {
                "turns the connection into a stream that has no single reply"
            }
        )));
    }
    if let Some(idx) = m.params.get("secret_args").and_then(Value::as_array) {
        for i in idx {
            let n = i.as_i64().unwrap_or(-1);
            let Some(s) = usize::try_from(n).ok().and_then(|n| argv.get(n)) else {
                return Err(ModuleError::new(format!(
                    "secret_args: {n} is not an index of command (0 to {}); nothing was sent",
                    argv.len() - 1
                )));
            };
            m.add_secret(s);
        }
    }
    let changed = match m.params.str("changed").unwrap_or("auto") {
        "always" => ChangedRule::Always,
        "never" => ChangedRule::Never,
        _ => ChangedRule::Auto,
    };
    Ok(Request {
        argv,
        changed,
        resp: m.params.int("resp").unwrap_or(3),
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(|s| s.to_ascii_lowercase()))
                .collect()
        })
        .unwrap_or_default()
}

/// One `COMMAND INFO` entry: `[name, arity, flags, first, last, step, categories, tips,
/// key specs, subcommands]`, or null for a command Redis does not know.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    pub name: String,
    pub arity: i64,
    pub flags: Vec<String>,
    pub categories: Vec<String>,
    pub subcommands: Vec<String>,
}

impl Info {
    /// From one element of the `COMMAND INFO` reply (as JSON); `None` for null.
    #[must_use]
    pub fn from_reply(v: &Value) -> Option<Info> {
        let a = v.as_array()?;
        Some(Info {
            name: a.first()?.as_str()?.to_ascii_lowercase(),
            arity: a.get(1).and_then(Value::as_i64).unwrap_or(0),
            flags: strings(a.get(2)),
            categories: strings(a.get(6)),
            subcommands: a
                .get(9)
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(|e| e.get(0).and_then(Value::as_str))
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Whether `argv` is a command that writes, from its COMMAND INFO entry (`info`, of the
/// subcommand for a container command). Pure: the plan.
///
/// # Errors
/// Wrong number of arguments by the entry's arity.
pub fn classify(argv: &[String], info: &Info) -> Result<Classified, String> {
    let n = i64::try_from(argv.len()).unwrap_or(i64::MAX);
    let arity_ok = if info.arity >= 0 {
        n == info.arity
    } else {
        n >= -info.arity
    };
    if !arity_ok {
        return Err(format!(
            "wrong number of arguments for `{}`: {} given, Redis wants {}{} (the command name counts); nothing was sent",
            info.name.replace('|', " ").to_uppercase(),
            n,
            if info.arity < 0 { "at least " } else { "" },
            info.arity.abs()
        ));
    }
    let has = |f: &str| info.flags.iter().any(|x| x == f);
    let name = info.name.as_str();
    let (writes, reason) = if UNFLAGGED_WRITES.contains(&name) {
        (true, "delivers messages to subscribers".to_string())
    } else if has("readonly") {
        (false, "flagged readonly".to_string())
    } else if ADMIN_READS.contains(&name) {
        // ACL LOG RESET clears the log; ACL LOG [count] reads it.
        (false, "an admin command that only reads".to_string())
    } else if name == "acl|log" {
        let reset = argv.get(2).is_some_and(|a| a.eq_ignore_ascii_case("reset"));
        (
            reset,
            if reset {
                "clears the ACL log"
            } else {
                "reads the ACL log"
            }
            .to_string(),
        )
    } else if let Some(f) = ["write", "may-replicate", "admin"].iter().find(|f| has(f)) {
        (true, format!("flagged {f}"))
    } else if info.categories.iter().any(|c| c == "@scripting") && !SCRIPTING_READS.contains(&name)
    {
        (true, "runs or changes scripts".to_string())
    } else {
        (
            false,
            "not flagged write, admin or may-replicate".to_string(),
        )
    };
    Ok(Classified {
        name: info.name.clone(),
        flags: info.flags.clone(),
        categories: info.categories.clone(),
        writes,
        reason,
    })
}

fn shown(argv: &[String]) -> String {
    argv.join(" ")
}

/// Opens a connection to a target, in the RESP version asked for.
fn open(t: &Target, resp: i64) -> Result<RedisConn, ModuleError> {
    let mut con = t.params.connect()?;
    if resp == 3 {
        // HELLO 3 on the open, authenticated connection: maps, sets, doubles and booleans then
        // come as themselves. The crate parses every RESP3 type whatever it negotiated.
        con.cmd::<redis::Value>(&["HELLO", "3"]).map_err(|e| {
            ModuleError::new(format!(
                "{e} (RESP3 needs Redis 6 or later; set resp: 2 for older servers); nothing was sent"
            ))
        })?;
    }
    Ok(con)
}

/// COMMAND INFO of `argv` on one target: the command's (or subcommand's) entry.
fn command_info(con: &mut RedisConn, argv: &[String]) -> Result<Info, ModuleError> {
    let addr = con.address();
    let name = argv[0].to_ascii_lowercase();
    let unknown = |what: &str| {
        ModuleError::new(format!(
            "Redis at {addr} does not know the command `{what}` (COMMAND INFO has no entry: misspelt, renamed by rename-command, or from a module that is not loaded); nothing was sent"
        ))
    };
    let get = |con: &mut RedisConn, n: &str| -> Result<Option<Info>, ModuleError> {
        let v = reply_json::to_json(con.cmd::<redis::Value>(&["COMMAND", "INFO", n])?);
        Ok(v.get(0).and_then(Info::from_reply))
    };
    let top = get(con, &name)?.ok_or_else(|| unknown(&argv[0]))?;
    if top.subcommands.is_empty() {
        return Ok(top);
    }
    let Some(sub) = argv.get(1) else {
        return Err(ModuleError::new(format!(
            "`{}` needs a subcommand, one of: {}; nothing was sent",
            argv[0],
            top.subcommands
                .iter()
                .map(|s| s.split('|').nth(1).unwrap_or(s).to_uppercase())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let full = format!("{name}|{}", sub.to_ascii_lowercase());
    get(con, &full)?.ok_or_else(|| unknown(&format!("{} {sub}", argv[0])))
}

/// The module body.
///
/// # Errors
/// Bad input, an unknown command, an unreachable target, an error reply.
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let req = request(m)?;
    let conn = ConnectionParams::from_params(&m.params)?;
    let resolved = targets::resolve_all(&m.params, &conn)?;
    for s in &resolved.skipped {
        m.warn(format!("cluster node left out: {s}"));
    }
    let targets = resolved.targets;
    // The plan: every target knows the command and agrees it is a read, before any is sent.
    let mut cons = Vec::new();
    let mut plan: Option<Classified> = None;
    for t in &targets {
        let mut con = open(t, req.resp)?;
        let info = command_info(&mut con, &req.argv)?;
        let c = classify(&req.argv, &info).map_err(ModuleError::new)?;
        plan = Some(match plan {
            Some(p) if p.writes || !c.writes => p,
            _ => c,
        });
        cons.push(con);
    }
    let Some(plan) = plan else {
        return Err(ModuleError::new("no target to send the command to"));
    };
    let changed = match req.changed {
        ChangedRule::Auto => plan.writes,
        ChangedRule::Always => true,
        ChangedRule::Never => false,
    };
    let info = json!({
        "name": plan.name,
        "flags": plan.flags,
        "acl_categories": plan.categories,
        "writes": plan.writes,
        "reason": plan.reason,
    });
    let nodes: Vec<String> = targets.iter().map(Target::address).collect();
    if m.check_mode && plan.writes {
        return Ok(Outcome::new(changed)
            .with("sent", false)
            .with("command_info", info)
            .with("nodes", &nodes)
            .msg(format!(
                "check mode: would run `{}` on {} ({}: {}), not sent",
                shown(&req.argv),
                nodes.join(", "),
                plan.name.replace('|', " ").to_uppercase(),
                plan.reason
            )));
    }
    let args: Vec<&str> = req.argv.iter().map(String::as_str).collect();
    let mut replies = Vec::new();
    for (t, con) in targets.iter().zip(cons.iter_mut()) {
        match con.cmd::<redis::Value>(&args) {
            Ok(v) => replies.push(json!({
                "node": t.address(),
                "role": t.role,
                "reply": reply_json::to_json(v),
            })),
            Err(e) => {
                let done: Vec<String> = replies
                    .iter()
                    .filter_map(|r| r["node"].as_str().map(str::to_string))
                    .collect();
                return Err(ModuleError::new(format!(
                    "{e}{}",
                    if done.is_empty() {
                        String::new()
                    } else {
                        format!("; it had already run on {}", done.join(", "))
                    }
                ))
                .with("changed", !done.is_empty() && changed)
                .with("replies", &replies)
                .with("command_info", info));
            }
        }
    }
    let mut o = Outcome::new(changed)
        .with("sent", true)
        .with("command_info", info)
        .with("nodes", &nodes);
    if let [one] = replies.as_slice() {
        o.set("reply", one["reply"].clone());
    }
    Ok(o.with("replies", &replies).msg(format!(
        "ran `{}` on {}",
        shown(&req.argv),
        nodes.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, arity: i64, flags: &[&str], cats: &[&str]) -> Info {
        Info {
            name: name.into(),
            arity,
            flags: flags.iter().map(|s| (*s).to_string()).collect(),
            categories: cats.iter().map(|s| (*s).to_string()).collect(),
            subcommands: vec![],
        }
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn flags_decide_writes() {
        let w = |a: &str, i: Info| classify(&argv(a), &i).map(|c| c.writes);
        assert_eq!(
            w("SET k v", info("set", -3, &["write", "denyoom"], &[])),
            Ok(true)
        );
        assert_eq!(
            w("GET k", info("get", 2, &["readonly", "fast"], &[])),
            Ok(false)
        );
        assert_eq!(w("PING", info("ping", -1, &["fast"], &[])), Ok(false));
        assert_eq!(
            w("CONFIG SET a b", info("config|set", -4, &["admin"], &[])),
            Ok(true)
        );
        assert_eq!(
            w("CONFIG GET a", info("config|get", -3, &["admin"], &[])),
            Ok(false)
        );
        assert_eq!(
            w("PUBLISH c m", info("publish", 3, &["pubsub", "fast"], &[])),
            Ok(true)
        );
        assert_eq!(
            w("EVAL s 0", info("eval", -3, &["noscript"], &["@scripting"])),
            Ok(true)
        );
        assert_eq!(
            w(
                "EVAL_RO s 0",
                info("eval_ro", -3, &["readonly"], &["@scripting"])
            ),
            Ok(false)
        );
        assert_eq!(
            w("ACL LOG", info("acl|log", -2, &["admin"], &[])),
            Ok(false)
        );
        assert_eq!(
            w("ACL LOG RESET", info("acl|log", -2, &["admin"], &[])),
            Ok(true)
        );
    }

    #[test]
    fn arity_is_checked_before_sending() {
        let e = classify(&argv("GET"), &info("get", 2, &["readonly"], &[])).err();
        assert!(e.is_some_and(|e| e.contains("1 given, Redis wants 2")));
        let e = classify(&argv("SET k"), &info("set", -3, &["write"], &[])).err();
        assert!(e.is_some_and(|e| e.contains("at least 3")));
    }

    #[test]
    fn command_info_entry_is_read() {
        let v = json!([
            "config|get",
            -3,
            ["admin", "noscript"],
            0,
            0,
            0,
            ["@admin", "@slow"],
            [],
            [],
            []
        ]);
        let i = Info::from_reply(&v);
        assert_eq!(
            i.map(|i| (i.name, i.arity, i.flags)),
            Some((
                "config|get".into(),
                -3,
                vec!["admin".into(), "noscript".into()]
            ))
        );
        assert_eq!(Info::from_reply(&Value::Null), None);
    }
}
