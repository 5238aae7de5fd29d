//! `creativeflow.redis.redis_sentinel`: a Sentinel's monitors made true at runtime, failovers
//! started and waited for, monitors reset or removed.
//!
//! Shape: desired state ([`desired`]), a pure plan ([`plan`]) from it and Sentinel's
//! `SENTINEL MASTERS`, then apply. Sentinel owns its config file and rewrites it itself after
//! every `SENTINEL MONITOR/SET/REMOVE`; this module never writes sentinel.conf.

pub mod desired;
pub mod plan;

use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome, Spec};
use desired::{Desired, DesiredMonitor};
use plan::{Action, Facts, Plan};
use redis_utils::connection::{
    with_connection_options, ConnectionError, ConnectionParams, RedisConn,
};
use redis_utils::sentinel::{self, Monitor};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The longest `wait_timeout` accepted, in seconds.
pub const MAX_WAIT_SECS: u64 = 3600;

/// The module's identity and argument spec (documented in plugins/modules/redis_sentinel.py).
#[must_use]
pub fn definition() -> ModuleDef {
    let monitor = Spec::new(vec![
        Opt::str("name").required(),
        Opt::str("host").required(),
        Opt::int("port").default(6379),
        Opt::int("quorum").default(2),
        Opt::int("down_after_milliseconds").default(desired::DEFAULT_DOWN_AFTER_MS),
        Opt::int("failover_timeout").default(desired::DEFAULT_FAILOVER_TIMEOUT_MS),
        Opt::int("parallel_syncs").default(desired::DEFAULT_PARALLEL_SYNCS),
        Opt::str("auth_user"),
        Opt::str("auth_pass").no_log(),
    ]);
    let mut spec = with_connection_options(vec![
        Opt::list("monitors", ArgType::Dict).options(monitor),
        Opt::str("name"),
        Opt::str("state")
            .default("present")
            .choices(&["present", "absent", "failover", "reset"]),
        Opt::bool("exclusive").default(false),
        Opt::float("wait_timeout").default(60.0),
    ]);
    // The Sentinel's port, not the master's.
    if let Some(o) = spec.options.iter_mut().find(|o| o.name == "login_port") {
        o.default = Some(json!(26379));
    }
    spec = spec
        .required_if("state", "present", &["monitors"], false)
        .required_if("state", "failover", &["name"], false)
        .required_if("state", "reset", &["name"], false);
    ModuleDef {
        name: "redis_sentinel",
        spec,
        supports_check_mode: true,
    }
}

/// The module body.
///
/// # Errors
/// Bad input, an unreachable Sentinel or master, a refused command, a failover that did not
/// complete within `wait_timeout`.
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let wait = m
        .params
        .duration("wait_timeout", MAX_WAIT_SECS)?
        .unwrap_or(Duration::from_secs(60));
    let desired = desired::from_params(&m.params)?;
    let conn = ConnectionParams::from_params(&m.params)?;
    let mut con = conn.connect()?;
    let current = sentinel::masters(&mut con)?;
    match desired {
        Desired::Present {
            monitors,
            exclusive,
        } => present(m, &conn, &mut con, &monitors, exclusive, &current),
        Desired::Absent { names } => {
            let plan = plan::absent(&names, &current);
            finish(m, &conn, &mut con, &plan, &names)
        }
        Desired::Reset { name } => reset(m, &conn, &mut con, &name, &current),
        Desired::Failover { name } => failover(m, &conn, &mut con, &name, &current, wait),
    }
}

/// Connection settings for a monitored master: the task's TLS settings, the monitor's
/// credentials.
fn master_params(
    conn: &ConnectionParams,
    host: &str,
    port: u16,
    user: Option<&str>,
    pass: Option<&str>,
) -> ConnectionParams {
    let mut p = conn.for_node(host, port);
    p.user = user.map(str::to_string);
    p.password = pass.map(str::to_string);
    p.db = 0;
    p
}

/// Checks that the monitor's credentials open the master it will watch, before Sentinel is
/// told anything: a wrong auth_pass is an error now, not a silent "master down" later.
fn verify_master(
    conn: &ConnectionParams,
    d: &DesiredMonitor,
    host: &str,
    port: u16,
) -> Result<(), ModuleError> {
    let p = master_params(
        conn,
        host,
        port,
        d.auth_user.as_deref(),
        d.auth_pass.as_deref(),
    );
    let result = p.connect().and_then(|mut c| c.cmd::<String>(&["PING"]));
    match result {
        Ok(_) => Ok(()),
        Err(e @ (ConnectionError::Auth { .. } | ConnectionError::NoAuth { .. })) => {
            Err(ModuleError::new(format!(
                "monitors[{}]: the master at {host}:{port} does not accept auth_user/auth_pass: {e}; nothing was changed",
                d.name
            )))
        }
        Err(e) => Err(ModuleError::new(format!(
            "monitors[{}]: cannot reach the master at {host}:{port}: {e}; nothing was changed",
            d.name
        ))),
    }
}

fn facts(con: &mut RedisConn, cur: &Monitor) -> Result<Facts, ConnectionError> {
    let replicas = sentinel::replicas(con, &cur.name)?
        .into_iter()
        .map(|r| (r.host, r.port))
        .collect();
    // Sentinel never shows the credentials it has. With wrong ones the master answers its PINGs
    // with NOAUTH, which Sentinel does not count as a valid reply, so after
    // down-after-milliseconds it flags the master s_down, while this module (which has just
    // PINGed the master with the task's credentials) reaches it. That is the signal to send the
    // credentials again (Sentinel also drops its link then, so `disconnected` comes with it);
    // anything else (a link that is reconnecting right after a failover, a run id not read yet)
    // says nothing and must not be reported as a change on every run.
    Ok(Facts {
        replicas,
        sentinel_authenticated: !(cur.flags.contains("s_down") || cur.flags.contains("o_down")),
    })
}

fn present(
    m: &Module,
    conn: &ConnectionParams,
    con: &mut RedisConn,
    monitors: &[DesiredMonitor],
    exclusive: bool,
    current: &[Monitor],
) -> Result<Outcome, ModuleError> {
    let mut all_facts = Map::new();
    let mut facts_of = std::collections::BTreeMap::new();
    for d in monitors {
        let cur = current.iter().find(|c| c.name == d.name);
        // The master to verify is the one the monitor watches now (after a failover, the
        // promoted replica), or the initial one for a new monitor.
        let (host, port) = cur.map_or((d.host.as_str(), d.port), |c| (c.host.as_str(), c.port));
        if d.auth_pass.is_some() || cur.is_none() {
            verify_master(conn, d, host, port)?;
        }
        // A monitor that never failed over and is asked to watch another address is
        // re-created there: that address must work before the old monitor is removed.
        if cur.is_some_and(|c| c.config_epoch == 0 && (c.host != d.host || c.port != d.port)) {
            verify_master(conn, d, &d.host, d.port)?;
        }
        if let Some(c) = cur {
            let f = facts(con, c)?;
            all_facts.insert(d.name.clone(), json!(f.sentinel_authenticated));
            facts_of.insert(d.name.clone(), f);
        }
    }
    let plan = plan::present(monitors, exclusive, current, &|name: &str| {
        facts_of.get(name).cloned().unwrap_or_default()
    })
    .map_err(ModuleError::new)?;
    let names: Vec<String> = monitors.iter().map(|d| d.name.clone()).collect();
    finish(m, conn, con, &plan, &names)
}

fn execute(con: &mut RedisConn, a: &Action) -> Result<(), ConnectionError> {
    match a {
        Action::Monitor(d) => {
            let (port, quorum) = (d.port.to_string(), d.quorum.to_string());
            con.cmd::<String>(&["SENTINEL", "MONITOR", &d.name, &d.host, &port, &quorum])?;
        }
        Action::Set { name, pairs } => {
            let mut args = vec!["SENTINEL", "SET", name.as_str()];
            for (k, v) in pairs {
                args.push(k);
                args.push(v);
            }
            con.cmd::<String>(&args)?;
        }
        Action::Remove { name } => {
            con.cmd::<String>(&["SENTINEL", "REMOVE", name])?;
        }
    }
    Ok(())
}

fn finish(
    m: &Module,
    conn: &ConnectionParams,
    con: &mut RedisConn,
    plan: &Plan,
    names: &[String],
) -> Result<Outcome, ModuleError> {
    for w in &plan.warnings {
        m.warn(w.clone());
    }
    let commands: Vec<String> = plan.actions.iter().map(Action::describe).collect();
    if !m.check_mode {
        for (i, a) in plan.actions.iter().enumerate() {
            execute(con, a).map_err(|e| {
                ModuleError::new(format!(
                    "{e}; done before it: {}",
                    if i == 0 {
                        "nothing".to_string()
                    } else {
                        commands[..i].join("; ")
                    }
                ))
            })?;
        }
    }
    let changed = !plan.actions.is_empty();
    let mut o = Outcome::new(changed)
        .with("commands", &commands)
        .with("notes", &plan.notes)
        .with("monitors", report(conn, con, names)?);
    if m.diff_mode && changed {
        o = o.diff(
            Value::Object(plan.before.clone()),
            Value::Object(plan.after.clone()),
            &format!("sentinel {}", conn.address()),
        );
    }
    let msg = if changed {
        format!(
            "{} {}",
            if m.check_mode { "would run" } else { "ran" },
            commands.join("; ")
        )
    } else if plan.notes.is_empty() {
        "the Sentinel's monitors are as asked".to_string()
    } else {
        plan.notes.join("; ")
    };
    Ok(o.msg(msg))
}

/// Per monitor: the current master, flags, settings, replicas, other Sentinels, CKQUORUM.
fn report(
    conn: &ConnectionParams,
    con: &mut RedisConn,
    names: &[String],
) -> Result<Vec<Value>, ModuleError> {
    let _ = conn;
    let mut out = Vec::new();
    for m in sentinel::masters(con)? {
        if !names.is_empty() && !names.contains(&m.name) {
            continue;
        }
        let replicas: Vec<Value> = sentinel::replicas(con, &m.name)?
            .into_iter()
            .map(|r| json!({"host": r.host, "port": r.port, "flags": r.flags, "master_link_status": r.master_link_status}))
            .collect();
        let sentinels: Vec<Value> = sentinel::sentinels(con, &m.name)?
            .into_iter()
            .map(|s| json!({"host": s.host, "port": s.port, "flags": s.flags}))
            .collect();
        let ck = sentinel::ckquorum(con, &m.name)?;
        out.push(json!({
            "name": m.name,
            "master": {"host": m.host, "port": m.port},
            "flags": m.flags,
            "quorum": m.quorum,
            "down_after_milliseconds": m.down_after_milliseconds,
            "failover_timeout": m.failover_timeout,
            "parallel_syncs": m.parallel_syncs,
            "config_epoch": m.config_epoch,
            "replicas": replicas,
            "sentinels": sentinels,
            "ckquorum": match ck {
                Ok(t) => json!({"ok": true, "message": t}),
                Err(t) => json!({"ok": false, "message": t}),
            },
        }));
    }
    Ok(out)
}

fn unknown(name: &str, current: &[Monitor]) -> ModuleError {
    let known: Vec<&str> = current.iter().map(|c| c.name.as_str()).collect();
    ModuleError::new(format!(
        "this Sentinel does not monitor `{name}` (it monitors: {}); nothing was changed",
        if known.is_empty() {
            "nothing".to_string()
        } else {
            known.join(", ")
        }
    ))
}

fn reset(
    m: &Module,
    conn: &ConnectionParams,
    con: &mut RedisConn,
    name: &str,
    current: &[Monitor],
) -> Result<Outcome, ModuleError> {
    if !current.iter().any(|c| c.name == name) {
        return Err(unknown(name, current));
    }
    if !m.check_mode {
        // RESET takes a glob pattern; escape it so `name` matches only itself.
        let pattern: String = name
            .chars()
            .flat_map(|c| {
                if "*?[]\\".contains(c) {
                    vec!['\\', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        con.cmd::<i64>(&["SENTINEL", "RESET", &pattern])?;
    }
    Ok(Outcome::new(true)
        .with("commands", [format!("SENTINEL RESET {name}")])
        .with("monitors", report(conn, con, &[name.to_string()])?)
        .msg(format!(
            "{} {name}: Sentinel forgets its replicas and peers and discovers them again",
            if m.check_mode { "would reset" } else { "reset" }
        )))
}

/// `host:port` of the master `name` as the Sentinel at `p` tells it.
fn master_seen_by(p: &ConnectionParams, name: &str) -> Option<(String, u16)> {
    p.connect()
        .ok()
        .and_then(|mut c| sentinel::master_addr(&mut c, name).ok().flatten())
}

fn failover(
    m: &Module,
    conn: &ConnectionParams,
    con: &mut RedisConn,
    name: &str,
    current: &[Monitor],
    wait: Duration,
) -> Result<Outcome, ModuleError> {
    let Some(cur) = current.iter().find(|c| c.name == name) else {
        return Err(unknown(name, current));
    };
    let old = (cur.host.clone(), cur.port);
    if m.check_mode {
        return Ok(Outcome::new(true)
            .with("old_master", json!({"host": old.0, "port": old.1}))
            .with("monitors", report(conn, con, &[name.to_string()])?)
            .msg(format!(
                "would fail over {name} away from {}:{}",
                old.0, old.1
            )));
    }
    let peers: Vec<ConnectionParams> = sentinel::sentinels(con, name)?
        .into_iter()
        .map(|s| conn.for_node(&s.host, s.port))
        .collect();
    con.cmd::<String>(&["SENTINEL", "FAILOVER", name])?;
    let started = Instant::now();
    let deadline = started + wait;
    // The master's credentials, when the task gives them, let us see it accept writes itself;
    // otherwise Sentinel's own view of the role is what we have.
    let creds = m
        .params
        .get("monitors")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|v| v["name"] == json!(name)))
        .map(|v| {
            (
                v["auth_user"].as_str().map(str::to_string),
                v["auth_pass"].as_str().map(str::to_string),
            )
        });
    let mut last = String::from("the failover had not started");
    loop {
        if let Some(new) = sentinel::master_addr(con, name)?.filter(|a| *a != old) {
            let agreeing = peers
                .iter()
                .filter(|p| master_seen_by(p, name).as_ref() == Some(&new))
                .count();
            let writable = master_accepts_writes(conn, &new, creds.as_ref(), con, name);
            match writable {
                Ok(()) if agreeing == peers.len() => {
                    return Ok(Outcome::new(true)
                        .with("old_master", json!({"host": old.0, "port": old.1}))
                        .with("master", json!({"host": new.0, "port": new.1}))
                        .with("elapsed_seconds", started.elapsed().as_secs_f64())
                        .with("monitors", report(conn, con, &[name.to_string()])?)
                        .msg(format!(
                            "failed over {name} from {}:{} to {}:{}",
                            old.0, old.1, new.0, new.1
                        )));
                }
                Ok(()) => {
                    last = format!(
                        "{} of {} other Sentinels report {}:{} as the master",
                        agreeing,
                        peers.len(),
                        new.0,
                        new.1
                    );
                }
                Err(why) => last = why,
            }
        }
        if Instant::now() >= deadline {
            return Err(ModuleError::new(format!(
                "the failover of {name} did not complete within wait_timeout ({}s): {last}",
                wait.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The new master is a master, not loading, not in a failover of its own, and has the replicas
/// `min-replicas-to-write` asks for.
fn master_accepts_writes(
    conn: &ConnectionParams,
    addr: &(String, u16),
    creds: Option<&(Option<String>, Option<String>)>,
    con: &mut RedisConn,
    name: &str,
) -> Result<(), String> {
    let Some((user, pass)) = creds else {
        let m = sentinel::master(con, name)
            .map_err(|e| e.to_string())?
            .ok_or("the monitor disappeared")?;
        let role = m
            .raw
            .get("role-reported")
            .and_then(Value::as_str)
            .unwrap_or("");
        return (role == "master" && !m.flags.contains("failover_in_progress"))
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "Sentinel does not see {}:{} as a master yet",
                    addr.0, addr.1
                )
            });
    };
    let p = master_params(conn, &addr.0, addr.1, user.as_deref(), pass.as_deref());
    let info = p
        .connect()
        .and_then(|mut c| c.info(None))
        .map_err(|e| e.to_string())?;
    if info.get("role") != Some("master") {
        return Err(format!("{}:{} is not a master yet", addr.0, addr.1));
    }
    if info.int("loading") == Some(1) {
        return Err(format!("{}:{} is still loading its data", addr.0, addr.1));
    }
    if info
        .get("master_failover_state")
        .is_some_and(|s| s != "no-failover")
    {
        return Err(format!("{}:{} is still in a failover", addr.0, addr.1));
    }
    Ok(())
}
