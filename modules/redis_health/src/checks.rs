//! The health checks: each reads the server's own view (INFO, SENTINEL, CLUSTER) and turns it into
//! a verdict with a message an operator can act on.

use ansible_module::Params;
use redis_utils::connection::{pairs_to_object, ConnectionError, ConnectionParams, RedisConn};
use redis_utils::info::{parse_kv_list, Info};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// Every check name, in the order results are reported.
pub const ALL_CHECKS: [&str; 10] = [
    "ping",
    "info",
    "memory",
    "persistence",
    "replication",
    "clients",
    "keyspace",
    "sentinel",
    "cluster",
    "pubsub",
];

/// What a plain server gets when `checks` is not set (plus `cluster` on a cluster node).
const DEFAULT_SERVER_CHECKS: [&str; 7] = [
    "ping",
    "info",
    "memory",
    "persistence",
    "replication",
    "clients",
    "keyspace",
];

/// A verdict, ordered so that `max` gives the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

/// Thresholds and expectations, from the module options.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub max_memory_percent: f64,
    pub max_replication_lag: i64,
    pub max_clients_percent: f64,
    pub min_hit_rate: Option<f64>,
    pub min_replicas: Option<i64>,
    pub expected_role: Option<String>,
    pub sentinel_master_name: Option<String>,
}

impl Thresholds {
    #[must_use]
    pub fn from_params(p: &Params) -> Self {
        Thresholds {
            max_memory_percent: p.float("max_memory_percent").unwrap_or(90.0),
            max_replication_lag: p.int("max_replication_lag").unwrap_or(10),
            max_clients_percent: p.float("max_clients_percent").unwrap_or(90.0),
            min_hit_rate: p.float("min_hit_rate"),
            min_replicas: p.int("min_replicas"),
            expected_role: p.str("expected_role").map(str::to_string),
            sentinel_master_name: p.str("sentinel_master_name").map(str::to_string),
        }
    }
}

/// The whole health report.
#[derive(Debug)]
pub struct Report {
    pub address: String,
    pub status: Status,
    /// check name → `{status, message}`, in [`ALL_CHECKS`] order.
    pub checks: Vec<(String, Status, String)>,
    /// Extra return values: `info`, `role`, `redis_version`, `replication`, `sentinel`, ...
    pub data: Map<String, Value>,
}

impl Report {
    fn new(address: String) -> Self {
        Report {
            address,
            status: Status::Ok,
            checks: Vec::new(),
            data: Map::new(),
        }
    }

    fn add(&mut self, name: &str, status: Status, message: impl Into<String>) {
        self.status = self.status.max(status);
        self.checks.push((name.to_string(), status, message.into()));
    }

    /// `checks` as the module returns it.
    #[must_use]
    pub fn checks_json(&self) -> Value {
        Value::Object(
            self.checks
                .iter()
                .map(|(n, s, m)| (n.clone(), json!({"status": s.as_str(), "message": m})))
                .collect(),
        )
    }

    /// The checks that are not ok, as `name: message; ...`.
    #[must_use]
    pub fn problems(&self) -> String {
        self.checks
            .iter()
            .filter(|(_, s, _)| *s != Status::Ok)
            .map(|(n, s, m)| format!("{n} ({}): {m}", s.as_str()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Runs the requested checks (`None`: the ones that fit the server) against one server.
/// A server that cannot be reached yields a critical `ping` check, not an error: for a health
/// check "down" is an answer.
#[must_use]
pub fn run_checks(conn: &ConnectionParams, requested: Option<&[String]>, t: &Thresholds) -> Report {
    let mut report = Report::new(conn.address());
    let started = Instant::now();
    let mut con = match conn.connect() {
        Ok(c) => c,
        Err(e) => {
            report.add("ping", Status::Critical, e.to_string());
            return report;
        }
    };
    match con.cmd::<String>(&["PING"]) {
        Ok(_) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            report
                .data
                .insert("latency_ms".into(), json!((ms * 100.0).round() / 100.0));
            report.add("ping", Status::Ok, format!("PONG in {ms:.1} ms"));
        }
        Err(e) => {
            report.add("ping", Status::Critical, e.to_string());
            return report;
        }
    }
    let info = match con.info(None) {
        Ok(i) => i,
        Err(e) => {
            report.add("info", Status::Critical, e.to_string());
            return report;
        }
    };
    let is_sentinel = info.get("redis_mode") == Some("sentinel");
    let cluster_enabled = info.int("cluster_enabled") == Some(1);
    let checks: Vec<String> = match requested {
        Some(r) => r.to_vec(),
        None if is_sentinel => vec!["ping".into(), "sentinel".into()],
        None => {
            let mut c: Vec<String> = DEFAULT_SERVER_CHECKS
                .iter()
                .map(|s| (*s).to_string())
                .collect();
            if cluster_enabled {
                c.push("cluster".into());
            }
            c
        }
    };
    let role = match info.get("role") {
        Some("slave") => "replica",
        Some(r) => r,
        None if is_sentinel => "sentinel",
        None => "unknown",
    }
    .to_string();
    report.data.insert("role".into(), json!(role));
    report
        .data
        .insert("redis_version".into(), json!(info.get("redis_version")));
    report
        .data
        .insert("info".into(), Value::Object(info.to_json()));

    for name in ALL_CHECKS
        .iter()
        .filter(|n| **n != "ping" && checks.iter().any(|c| c == *n))
    {
        let result = match *name {
            "info" => Ok(check_info(&info, &role, t)),
            "memory" => Ok(check_memory(&info, t)),
            "persistence" => Ok(check_persistence(&info)),
            "replication" => Ok(check_replication(&info, t, &mut report.data)),
            "clients" => Ok(check_clients(&info, t)),
            "keyspace" => Ok(check_keyspace(&info, t, &mut report.data)),
            "sentinel" => check_sentinel(&mut con, is_sentinel, t, &mut report.data),
            "cluster" => check_cluster(&mut con, cluster_enabled, &mut report.data),
            "pubsub" => check_pubsub(&mut con, &mut report.data),
            _ => continue,
        };
        match result {
            Ok((status, msg)) => report.add(name, status, msg),
            Err(e) => report.add(name, Status::Critical, e.to_string()),
        }
    }
    report
}

fn check_info(info: &Info, role: &str, t: &Thresholds) -> (Status, String) {
    let version = info.get("redis_version").unwrap_or("?");
    let uptime = info.int("uptime_in_seconds").unwrap_or(0);
    let msg = format!("redis {version}, role {role}, up {uptime}s");
    match &t.expected_role {
        Some(want) if want != role => (
            Status::Critical,
            format!("{msg}: expected role {want}, found {role}"),
        ),
        _ => (Status::Ok, msg),
    }
}

#[allow(clippy::cast_precision_loss)]
fn check_memory(info: &Info, t: &Thresholds) -> (Status, String) {
    let used = info.int("used_memory").unwrap_or(0);
    let max = info.int("maxmemory").unwrap_or(0);
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    if max <= 0 {
        return (
            Status::Ok,
            format!("{} used, no maxmemory limit set", human_bytes(used)),
        );
    }
    let pct = used as f64 * 100.0 / max as f64;
    let msg = format!(
        "{} of maxmemory {} used ({pct:.1}%), policy {policy}",
        human_bytes(used),
        human_bytes(max)
    );
    if pct >= 100.0 && policy == "noeviction" {
        (
            Status::Critical,
            format!("{msg}: memory full and nothing can be evicted, writes fail with OOM"),
        )
    } else if pct >= t.max_memory_percent {
        (
            Status::Warning,
            format!("{msg}: above max_memory_percent {}", t.max_memory_percent),
        )
    } else {
        (Status::Ok, msg)
    }
}

fn check_persistence(info: &Info) -> (Status, String) {
    let mut problems = Vec::new();
    let mut status = Status::Ok;
    if info.get("loading") == Some("1") {
        status = status.max(Status::Warning);
        problems.push("still loading its dataset".to_string());
    }
    if let Some(s) = info.get("rdb_last_bgsave_status").filter(|s| *s != "ok") {
        status = Status::Critical;
        problems.push(format!(
            "last RDB save failed ({s}); with stop-writes-on-bgsave-error the server refuses writes"
        ));
    }
    let aof = info.get("aof_enabled") == Some("1");
    if aof {
        if let Some(s) = info.get("aof_last_write_status").filter(|s| *s != "ok") {
            status = Status::Critical;
            problems.push(format!("last AOF write failed ({s})"));
        }
        if let Some(s) = info.get("aof_last_bgrewrite_status").filter(|s| *s != "ok") {
            status = status.max(Status::Warning);
            problems.push(format!("last AOF rewrite failed ({s})"));
        }
    }
    let changes = info.int("rdb_changes_since_last_save").unwrap_or(0);
    let mode = match (aof, info.get("rdb_last_save_time")) {
        (true, _) => "AOF on",
        (false, _) => "AOF off",
    };
    if problems.is_empty() {
        (
            Status::Ok,
            format!("{mode}, last RDB save ok, {changes} changes since"),
        )
    } else {
        (status, problems.join("; "))
    }
}

fn check_replication(
    info: &Info,
    t: &Thresholds,
    data: &mut Map<String, Value>,
) -> (Status, String) {
    let role = info.get("role").unwrap_or("master");
    if role == "slave" {
        let link = info.get("master_link_status").unwrap_or("unknown");
        let host = info.get("master_host").unwrap_or("?");
        let port = info.int("master_port").unwrap_or(0);
        let last_io = info.int("master_last_io_seconds_ago").unwrap_or(-1);
        let syncing = info.get("master_sync_in_progress") == Some("1");
        let down_since = info.int("master_link_down_since_seconds");
        data.insert(
            "replication".into(),
            json!({
                "role": "replica",
                "master_host": host,
                "master_port": port,
                "master_link_status": link,
                "master_last_io_seconds_ago": last_io,
                "master_sync_in_progress": syncing,
                "master_link_down_since_seconds": down_since,
                "slave_repl_offset": info.int("slave_repl_offset"),
                "slave_read_only": info.get("slave_read_only") == Some("1"),
            }),
        );
        let master = format!("{host}:{port}");
        if link != "up" {
            let since = down_since.map(|s| format!(" for {s}s")).unwrap_or_default();
            return (
                Status::Critical,
                format!("master link to {master} is {link}{since}"),
            );
        }
        if syncing {
            return (
                Status::Warning,
                format!("full sync from {master} in progress"),
            );
        }
        if last_io > t.max_replication_lag {
            return (
                Status::Warning,
                format!(
                    "last contact with master {master} {last_io}s ago (max_replication_lag {})",
                    t.max_replication_lag
                ),
            );
        }
        return (
            Status::Ok,
            format!("replica of {master}, link up, last io {last_io}s ago"),
        );
    }

    let master_offset = info.int("master_repl_offset").unwrap_or(0);
    let mut replicas = Vec::new();
    for (k, v) in info.section("replication") {
        let is_slave_line = k
            .strip_prefix("slave")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !is_slave_line {
            continue;
        }
        if let Some(mut m) = parse_kv_list(v) {
            let offset = m.get("offset").and_then(Value::as_i64).unwrap_or(0);
            m.insert("offset_lag_bytes".into(), json!(master_offset - offset));
            replicas.push(Value::Object(m));
        }
    }
    let connected = info.int("connected_slaves").unwrap_or(0);
    data.insert(
        "replication".into(),
        json!({
            "role": "master",
            "connected_replicas": connected,
            "master_repl_offset": master_offset,
            "replicas": replicas,
        }),
    );
    let mut status = Status::Ok;
    let mut problems = Vec::new();
    for r in &replicas {
        let addr = format!(
            "{}:{}",
            r["ip"].as_str().unwrap_or("?"),
            r["port"].as_i64().unwrap_or(0)
        );
        let state = r["state"].as_str().unwrap_or("?");
        if state != "online" {
            status = status.max(Status::Warning);
            problems.push(format!("replica {addr} is {state}"));
        }
        let lag = r["lag"].as_i64().unwrap_or(0);
        if lag > t.max_replication_lag {
            status = status.max(Status::Warning);
            problems.push(format!(
                "replica {addr} last acknowledged {lag}s ago (max_replication_lag {})",
                t.max_replication_lag
            ));
        }
    }
    if let Some(min) = t.min_replicas {
        if connected < min {
            status = Status::Critical;
            problems.push(format!(
                "{connected} replicas connected, min_replicas is {min}"
            ));
        }
    }
    if problems.is_empty() {
        (
            Status::Ok,
            format!("master with {connected} connected replica(s)"),
        )
    } else {
        (status, problems.join("; "))
    }
}

#[allow(clippy::cast_precision_loss)]
fn check_clients(info: &Info, t: &Thresholds) -> (Status, String) {
    let connected = info.int("connected_clients").unwrap_or(0);
    let blocked = info.int("blocked_clients").unwrap_or(0);
    let max = info.int("maxclients").unwrap_or(0);
    let rejected = info.int("rejected_connections").unwrap_or(0);
    if max <= 0 {
        return (
            Status::Ok,
            format!("{connected} clients connected, {blocked} blocked"),
        );
    }
    let pct = connected as f64 * 100.0 / max as f64;
    let msg = format!(
        "{connected} of maxclients {max} connected ({pct:.1}%), {blocked} blocked, {rejected} connections rejected since start"
    );
    if pct >= t.max_clients_percent {
        (
            Status::Warning,
            format!("{msg}: above max_clients_percent {}", t.max_clients_percent),
        )
    } else {
        (Status::Ok, msg)
    }
}

#[allow(clippy::cast_precision_loss)]
fn check_keyspace(info: &Info, t: &Thresholds, data: &mut Map<String, Value>) -> (Status, String) {
    let mut keys = 0;
    let mut expires = 0;
    for (k, v) in info.section("keyspace") {
        if let Some(m) = parse_kv_list(v).filter(|_| k.starts_with("db")) {
            keys += m.get("keys").and_then(Value::as_i64).unwrap_or(0);
            expires += m.get("expires").and_then(Value::as_i64).unwrap_or(0);
        }
    }
    let hits = info.int("keyspace_hits").unwrap_or(0);
    let misses = info.int("keyspace_misses").unwrap_or(0);
    let hit_rate = (hits + misses > 0).then(|| hits as f64 * 100.0 / (hits + misses) as f64);
    data.insert(
        "keyspace".into(),
        json!({
            "keys": keys,
            "expires": expires,
            "hits": hits,
            "misses": misses,
            "hit_rate": hit_rate.map(|r| (r * 100.0).round() / 100.0),
            "evicted_keys": info.int("evicted_keys"),
            "expired_keys": info.int("expired_keys"),
        }),
    );
    let rate = hit_rate.map_or_else(
        || "no lookups yet".to_string(),
        |r| format!("hit rate {r:.1}%"),
    );
    let msg = format!("{keys} keys ({expires} with TTL), {rate}");
    match (t.min_hit_rate, hit_rate) {
        (Some(min), Some(r)) if r < min => {
            (Status::Warning, format!("{msg}: below min_hit_rate {min}"))
        }
        _ => (Status::Ok, msg),
    }
}

fn check_sentinel(
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
        None => con
            .cmd_json(&["SENTINEL", "MASTERS"])?
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        pairs_to_object(m)
                            .get("name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    if names.is_empty() {
        return Ok((Status::Warning, "this Sentinel monitors no master".into()));
    }
    let mut status = Status::Ok;
    let mut messages = Vec::new();
    let mut masters = Map::new();
    for name in &names {
        let master = match con.cmd_json(&["SENTINEL", "MASTER", name]) {
            Ok(v) => pairs_to_object(&v),
            Err(ConnectionError::Command { detail, .. }) => {
                status = Status::Critical;
                messages.push(format!("master {name}: {detail}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let ckquorum = match con.cmd::<String>(&["SENTINEL", "CKQUORUM", name]) {
            Ok(s) => json!({"ok": true, "message": s}),
            Err(ConnectionError::Command { detail, .. }) => json!({"ok": false, "message": detail}),
            Err(e) => return Err(e),
        };
        let replicas = sentinel_list(
            con,
            "REPLICAS",
            name,
            &[
                "name",
                "ip",
                "port",
                "flags",
                "master-link-status",
                "slave-repl-offset",
            ],
        )?;
        let sentinels = sentinel_list(
            con,
            "SENTINELS",
            name,
            &["name", "ip", "port", "flags", "runid"],
        )?;
        let flags = master
            .get("flags")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let addr = format!(
            "{}:{}",
            master.get("ip").and_then(Value::as_str).unwrap_or("?"),
            master.get("port").and_then(Value::as_i64).unwrap_or(0)
        );
        let mut st = Status::Ok;
        let mut notes = Vec::new();
        if flags.contains("o_down") {
            st = Status::Critical;
            notes.push("objectively down (o_down)".to_string());
        } else if flags.contains("s_down") {
            st = Status::Critical;
            notes.push("subjectively down (s_down)".to_string());
        }
        if flags.contains("failover_in_progress") {
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
        status = status.max(st);
        let summary = format!(
            "master {name} at {addr}, quorum {}, {} replica(s), {} other sentinel(s)",
            master
                .get("quorum")
                .map_or_else(|| "?".into(), Value::to_string),
            replicas.len(),
            sentinels.len()
        );
        messages.push(if notes.is_empty() {
            summary
        } else {
            format!("{summary}: {}", notes.join(", "))
        });
        masters.insert(
            name.clone(),
            json!({
                "address": addr,
                "ip": master.get("ip"),
                "port": master.get("port"),
                "flags": flags,
                "quorum": master.get("quorum"),
                "num_slaves": master.get("num-slaves"),
                "num_other_sentinels": master.get("num-other-sentinels"),
                "failover_timeout": master.get("failover-timeout"),
                "ckquorum": ckquorum,
                "replicas": replicas,
                "sentinels": sentinels,
            }),
        );
    }
    data.insert("sentinel".into(), json!({ "masters": masters }));
    Ok((status, messages.join("; ")))
}

/// `SENTINEL REPLICAS|SENTINELS <name>`, each entry reduced to `keys` (dashes become underscores).
fn sentinel_list(
    con: &mut RedisConn,
    sub: &str,
    name: &str,
    keys: &[&str],
) -> Result<Vec<Value>, ConnectionError> {
    Ok(con
        .cmd_json(&["SENTINEL", sub, name])?
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| Value::Object(pick(&pairs_to_object(r), keys)))
                .collect()
        })
        .unwrap_or_default())
}

fn pick(m: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| m.get(*k).map(|v| (k.replace('-', "_"), v.clone())))
        .collect()
}

/// One line of CLUSTER NODES.
struct ClusterNode {
    id: String,
    host: String,
    port: u16,
    flags: String,
    link: String,
    slots: Vec<String>,
}

fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            // ip:port@cport[,hostname]
            let addr = f[1].split('@').next().unwrap_or("");
            let (host, port) = addr.rsplit_once(':')?;
            Some(ClusterNode {
                id: f[0].to_string(),
                host: host.to_string(),
                port: port.parse().unwrap_or(0),
                flags: f[2].to_string(),
                link: f[7].to_string(),
                slots: f[8..].iter().map(|s| (*s).to_string()).collect(),
            })
        })
        .collect()
}

/// What a node believes: which master owns which slots. Nodes that agree have equal signatures
/// (the same idea as redis-cli's config consistency check).
fn signature(nodes: &[ClusterNode]) -> String {
    let mut parts: Vec<String> = nodes
        .iter()
        .filter(|n| n.flags.contains("master") && !n.slots.is_empty())
        .map(|n| {
            let mut s: Vec<&str> = n
                .slots
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(String::as_str)
                .collect();
            s.sort_unstable();
            format!("{}:{}", n.id, s.join(","))
        })
        .collect();
    parts.sort();
    parts.join("|")
}

fn check_cluster(
    con: &mut RedisConn,
    cluster_enabled: bool,
    data: &mut Map<String, Value>,
) -> Result<(Status, String), ConnectionError> {
    if !cluster_enabled {
        return Ok((
            Status::Critical,
            format!(
                "{} is not in cluster mode (cluster-enabled no)",
                con.address()
            ),
        ));
    }
    let text: String = con.cmd(&["CLUSTER", "INFO"])?;
    let ci = Info::parse(&text);
    let nodes_text: String = con.cmd(&["CLUSTER", "NODES"])?;
    let nodes = parse_cluster_nodes(&nodes_text);
    let mine = signature(&nodes);
    let mut disagree = Vec::new();
    let mut unreachable = Vec::new();
    for n in nodes.iter().filter(|n| {
        !n.flags.contains("myself")
            && !n.flags.contains("fail")
            && !n.flags.contains("noaddr")
            && !n.flags.contains("handshake")
            && n.port != 0
    }) {
        let addr = format!("{}:{}", n.host, n.port);
        let peer = con.params().for_node(&n.host, n.port);
        match peer
            .connect()
            .and_then(|mut c| c.cmd::<String>(&["CLUSTER", "NODES"]))
        {
            Ok(t) if signature(&parse_cluster_nodes(&t)) == mine => {}
            Ok(_) => disagree.push(addr),
            Err(e) => unreachable.push(json!({"node": addr, "error": e.to_string()})),
        }
    }
    let failing: Vec<String> = nodes
        .iter()
        .filter(|n| n.flags.contains("fail") || n.link == "disconnected")
        .map(|n| format!("{}:{} ({})", n.host, n.port, n.flags))
        .collect();
    let state = ci.get("cluster_state").unwrap_or("unknown").to_string();
    let assigned = ci.int("cluster_slots_assigned").unwrap_or(0);
    let slots_ok = ci.int("cluster_slots_ok").unwrap_or(0);
    let pfail = ci.int("cluster_slots_pfail").unwrap_or(0);
    let fail = ci.int("cluster_slots_fail").unwrap_or(0);
    let known = ci.int("cluster_known_nodes").unwrap_or(0);
    let size = ci.int("cluster_size").unwrap_or(0);
    data.insert(
        "cluster".into(),
        json!({
            "cluster_state": state,
            "slots_assigned": assigned,
            "slots_ok": slots_ok,
            "slots_pfail": pfail,
            "slots_fail": fail,
            "known_nodes": known,
            "size": size,
            "current_epoch": ci.int("cluster_current_epoch"),
            "nodes_disagreeing": disagree,
            "nodes_unreachable": unreachable,
            "nodes_failing": failing,
            "nodes": nodes.iter().map(|n| json!({
                "id": n.id, "address": format!("{}:{}", n.host, n.port), "flags": n.flags,
                "link_state": n.link, "slots": n.slots,
            })).collect::<Vec<_>>(),
        }),
    );
    let mut status = Status::Ok;
    let mut problems = Vec::new();
    if state != "ok" {
        status = Status::Critical;
        problems.push(format!("cluster_state is {state}"));
    }
    if assigned < 16384 {
        status = Status::Critical;
        problems.push(format!("only {assigned} of 16384 slots assigned"));
    }
    if fail > 0 {
        status = Status::Critical;
        problems.push(format!("{fail} slots in fail state"));
    }
    if pfail > 0 {
        status = status.max(Status::Warning);
        problems.push(format!("{pfail} slots in pfail state"));
    }
    if !failing.is_empty() {
        status = status.max(Status::Warning);
        problems.push(format!(
            "failing or disconnected nodes: {}",
            failing.join(", ")
        ));
    }
    if !disagree.is_empty() {
        status = status.max(Status::Warning);
        problems.push(format!(
            "nodes disagreeing about slot owners: {}",
            disagree.join(", ")
        ));
    }
    if !unreachable.is_empty() {
        status = status.max(Status::Warning);
        problems.push(format!(
            "{} node(s) unreachable from here",
            unreachable.len()
        ));
    }
    if problems.is_empty() {
        Ok((
            Status::Ok,
            format!(
                "cluster ok: {size} masters serving 16384 slots, {known} known nodes, all agree"
            ),
        ))
    } else {
        Ok((status, problems.join("; ")))
    }
}

/// At most this many channels are counted, so a server with millions of channels stays cheap.
const MAX_CHANNELS: usize = 1000;

fn check_pubsub(
    con: &mut RedisConn,
    data: &mut Map<String, Value>,
) -> Result<(Status, String), ConnectionError> {
    let channels: Vec<String> = con.cmd(&["PUBSUB", "CHANNELS"])?;
    let total = channels.len();
    let counted: Vec<&str> = channels
        .iter()
        .take(MAX_CHANNELS)
        .map(String::as_str)
        .collect();
    let mut subs = Map::new();
    if !counted.is_empty() {
        let mut args = vec!["PUBSUB", "NUMSUB"];
        args.extend(counted.iter().copied());
        let reply = con.cmd_json(&args)?;
        for (k, v) in pairs_to_object(&reply) {
            subs.insert(k, v);
        }
    }
    let patterns: i64 = con.cmd(&["PUBSUB", "NUMPAT"])?;
    data.insert(
        "pubsub".into(),
        json!({
            "channels": subs,
            "channel_count": total,
            "truncated": total > MAX_CHANNELS,
            "patterns": patterns,
        }),
    );
    Ok((
        Status::Ok,
        format!("{total} active channel(s), {patterns} pattern subscription(s)"),
    ))
}

#[allow(clippy::cast_precision_loss)]
fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds {
            max_memory_percent: 90.0,
            max_replication_lag: 10,
            max_clients_percent: 90.0,
            min_hit_rate: Some(50.0),
            min_replicas: Some(1),
            expected_role: None,
            sentinel_master_name: None,
        }
    }

    #[test]
    fn memory_thresholds() {
        let t = thresholds();
        let ok =
            Info::parse("used_memory:100\r\nmaxmemory:1000\r\nmaxmemory_policy:allkeys-lru\r\n");
        assert_eq!(check_memory(&ok, &t).0, Status::Ok);
        let warn =
            Info::parse("used_memory:950\r\nmaxmemory:1000\r\nmaxmemory_policy:allkeys-lru\r\n");
        assert_eq!(check_memory(&warn, &t).0, Status::Warning);
        let full =
            Info::parse("used_memory:1000\r\nmaxmemory:1000\r\nmaxmemory_policy:noeviction\r\n");
        assert_eq!(check_memory(&full, &t).0, Status::Critical);
        let unlimited = Info::parse("used_memory:1000\r\nmaxmemory:0\r\n");
        assert_eq!(check_memory(&unlimited, &t).0, Status::Ok);
    }

    #[test]
    fn replica_link_down_is_critical() {
        let mut data = Map::new();
        let i = Info::parse("# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\nmaster_link_down_since_seconds:42\r\n");
        let (s, m) = check_replication(&i, &thresholds(), &mut data);
        assert_eq!(s, Status::Critical);
        assert!(
            m.contains("127.0.0.1:7000") && m.contains("down for 42s"),
            "{m}"
        );
    }

    #[test]
    fn master_replica_lag_and_min_replicas() {
        let mut data = Map::new();
        let i = Info::parse("# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=90,lag=30\r\nmaster_repl_offset:100\r\n");
        let (s, m) = check_replication(&i, &thresholds(), &mut data);
        assert_eq!(s, Status::Warning, "{m}");
        assert_eq!(
            data["replication"]["replicas"][0]["offset_lag_bytes"],
            json!(10)
        );
        let none = Info::parse(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n",
        );
        assert_eq!(
            check_replication(&none, &thresholds(), &mut data).0,
            Status::Critical
        );
    }

    #[test]
    fn hit_rate_threshold() {
        let mut data = Map::new();
        let i = Info::parse("# Stats\r\nkeyspace_hits:1\r\nkeyspace_misses:3\r\n# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=0\r\n");
        let (s, m) = check_keyspace(&i, &thresholds(), &mut data);
        assert_eq!(s, Status::Warning, "{m}");
        assert_eq!(data["keyspace"]["keys"], json!(5));
        assert_eq!(data["keyspace"]["hit_rate"], json!(25.0));
    }

    #[test]
    fn persistence_failures() {
        let bad = Info::parse("loading:0\r\nrdb_last_bgsave_status:err\r\naof_enabled:0\r\n");
        assert_eq!(check_persistence(&bad).0, Status::Critical);
        let good = Info::parse("loading:0\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_last_write_status:ok\r\naof_last_bgrewrite_status:ok\r\n");
        assert_eq!(check_persistence(&good).0, Status::Ok);
    }

    #[test]
    fn cluster_signature_ignores_order_and_migrating_markers() {
        let a = "id1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\nid2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5461->-id1]\nid3 127.0.0.1:7002@17002 slave id1 0 0 1 connected\n";
        let b = "id2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922\nid1 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5460\n";
        assert_eq!(
            signature(&parse_cluster_nodes(a)),
            signature(&parse_cluster_nodes(b))
        );
        let c = "id1 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5461\n";
        assert_ne!(
            signature(&parse_cluster_nodes(a)),
            signature(&parse_cluster_nodes(c))
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 * 1024 * 1024 * 1024), "4.0 GiB");
    }
}
