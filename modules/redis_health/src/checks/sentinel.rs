//! The Sentinel check: for every master a Sentinel monitors (or `sentinel_master_name`), whether
//! it is down, a failover runs, and the quorum can be reached (`SENTINEL CKQUORUM`). The replies
//! are read with the shared models in `redis_utils::sentinel`.

use super::verdict::{Status, Thresholds};
use redis_utils::connection::{ConnectionError, RedisConn};
use redis_utils::sentinel::{self, Monitor, Peer};
use serde_json::{json, Map, Value};

/// Fields reported per replica of a monitored master.
const REPLICA_FIELDS: [&str; 6] = [
    "name",
    "ip",
    "port",
    "flags",
    "master-link-status",
    "slave-repl-offset",
];
/// Fields reported per other Sentinel of a monitored master.
const SENTINEL_FIELDS: [&str; 5] = ["name", "ip", "port", "flags", "runid"];

/// Checks every monitored master (or the one named by `sentinel_master_name`).
///
/// # Errors
/// The connection failed or a command other than `SENTINEL MASTER` was refused.
pub fn check_sentinel(
    con: &mut RedisConn,
    is_sentinel: bool,
    t: &Thresholds,
    data: &mut Map<String, Value>,
) -> Result<(Status, String), ConnectionError> {
    if !is_sentinel {
        return Ok((
            Status::Critical,
            format!(
                "{} is not a Sentinel: point login_port at a redis-sentinel (usually 26379) for the sentinel check",
                con.address()
            ),
        ));
    }
    let names: Vec<String> = match &t.sentinel_master_name {
        Some(n) => vec![n.clone()],
        None => sentinel::masters(con)?
            .into_iter()
            .map(|m| m.name)
            .filter(|n| !n.is_empty())
            .collect(),
    };
    if names.is_empty() {
        return Ok((Status::Warning, "this Sentinel monitors no master".into()));
    }
    let mut status = Status::Ok;
    let mut messages = Vec::new();
    let mut masters = Map::new();
    for name in &names {
        let master = match sentinel::master(con, name) {
            Ok(Some(m)) => m,
            Ok(None) => {
                status = Status::Critical;
                messages.push(format!(
                    "master {name}: this Sentinel does not monitor it (No such master with that name)"
                ));
                continue;
            }
            Err(ConnectionError::Command { detail, .. }) => {
                status = Status::Critical;
                messages.push(format!("master {name}: {detail}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let ckquorum = match sentinel::ckquorum(con, name)? {
            Ok(s) => json!({"ok": true, "message": s}),
            Err(detail) => json!({"ok": false, "message": detail}),
        };
        let replicas = picked(&sentinel::replicas(con, name)?, &REPLICA_FIELDS);
        let sentinels = picked(&sentinel::sentinels(con, name)?, &SENTINEL_FIELDS);
        let (st, note) = verdict(&master, &ckquorum);
        status = status.max(st);
        let m = &master.raw;
        let flags = m
            .get("flags")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let addr = format!(
            "{}:{}",
            m.get("ip").and_then(Value::as_str).unwrap_or("?"),
            m.get("port").and_then(Value::as_i64).unwrap_or(0)
        );
        let summary = format!(
            "master {name} at {addr}, quorum {}, {} replica(s), {} other sentinel(s)",
            m.get("quorum").map_or_else(|| "?".into(), Value::to_string),
            replicas.len(),
            sentinels.len()
        );
        messages.push(if note.is_empty() {
            summary
        } else {
            format!("{summary}: {note}")
        });
        masters.insert(
            name.clone(),
            json!({
                "address": addr,
                "ip": m.get("ip"),
                "port": m.get("port"),
                "flags": flags,
                "quorum": m.get("quorum"),
                "num_slaves": m.get("num-slaves"),
                "num_other_sentinels": m.get("num-other-sentinels"),
                "failover_timeout": m.get("failover-timeout"),
                "ckquorum": ckquorum,
                "replicas": replicas,
                "sentinels": sentinels,
            }),
        );
    }
    data.insert("sentinel".into(), json!({ "masters": masters }));
    Ok((status, messages.join("; ")))
}

/// One monitored master's status and what is wrong with it (empty when nothing).
fn verdict(master: &Monitor, ckquorum: &Value) -> (Status, String) {
    let mut st = Status::Ok;
    let mut notes = Vec::new();
    if master.flags.contains("o_down") {
        st = Status::Critical;
        notes.push("objectively down (o_down)".to_string());
    } else if master.flags.contains("s_down") {
        st = Status::Critical;
        notes.push("subjectively down (s_down)".to_string());
    }
    if master.flags.contains("failover_in_progress") {
        st = st.max(Status::Warning);
        notes.push("failover in progress".to_string());
    }
    if ckquorum["ok"] != json!(true) {
        st = Status::Critical;
        notes.push(format!(
            "CKQUORUM: {}",
            ckquorum["message"].as_str().unwrap_or("")
        ));
    }
    (st, notes.join(", "))
}

/// Peers reduced to `keys` (dashes become underscores).
fn picked(peers: &[Peer], keys: &[&str]) -> Vec<Value> {
    peers
        .iter()
        .map(|p| {
            Value::Object(
                keys.iter()
                    .filter_map(|k| p.raw.get(*k).map(|v| (k.replace('-', "_"), v.clone())))
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(flags: &str) -> Monitor {
        Monitor::from_reply(&json!([
            "name",
            "m",
            "ip",
            "127.0.0.1",
            "port",
            "7000",
            "flags",
            flags
        ]))
    }

    #[test]
    fn down_failover_and_quorum_verdicts() {
        let ok = json!({"ok": true, "message": "OK 3 usable Sentinels"});
        let bad = json!({"ok": false, "message": "NOQUORUM 1 usable Sentinels"});
        assert_eq!(
            verdict(&monitor("master"), &ok),
            (Status::Ok, String::new())
        );
        assert_eq!(
            verdict(&monitor("master,o_down,s_down"), &ok).0,
            Status::Critical
        );
        let (st, note) = verdict(&monitor("master,failover_in_progress"), &ok);
        assert_eq!(
            (st, note.as_str()),
            (Status::Warning, "failover in progress")
        );
        let (st, note) = verdict(&monitor("master"), &bad);
        assert_eq!(st, Status::Critical);
        assert!(note.contains("NOQUORUM"), "{note}");
    }
}
