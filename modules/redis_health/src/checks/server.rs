//! Checks of one server from its INFO (role, memory, persistence, clients, keyspace) and of its
//! Pub/Sub channels.

use super::verdict::{Status, Thresholds};
use redis_utils::connection::{pairs_to_object, ConnectionError, RedisConn};
use redis_utils::info::{parse_kv_list, Info, ServerIdentity};
use serde_json::{json, Map, Value};

pub fn check_info(
    info: &Info,
    id: &ServerIdentity,
    role: &str,
    t: &Thresholds,
) -> (Status, String) {
    let uptime = info.int("uptime_in_seconds").unwrap_or(0);
    let name = if id.version.is_empty() {
        format!("{} ?", id.product())
    } else {
        id.label()
    };
    let msg = format!("{name}, role {role}, up {uptime}s");
    match &t.expected_role {
        Some(want) if want != role => (
            Status::Critical,
            format!("{msg}: expected role {want}, found {role}"),
        ),
        _ => (Status::Ok, msg),
    }
}

#[allow(clippy::cast_precision_loss)]
pub fn check_memory(info: &Info, t: &Thresholds) -> (Status, String) {
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

pub fn check_persistence(info: &Info) -> (Status, String) {
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

#[allow(clippy::cast_precision_loss)]
pub fn check_clients(info: &Info, t: &Thresholds) -> (Status, String) {
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
pub fn check_keyspace(
    info: &Info,
    t: &Thresholds,
    data: &mut Map<String, Value>,
) -> (Status, String) {
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

/// At most this many channels are counted, so a server with millions of channels stays cheap.
const MAX_CHANNELS: usize = 1000;

pub fn check_pubsub(
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
pub fn human_bytes(n: i64) -> String {
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
    use crate::checks::tests::thresholds;

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
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 * 1024 * 1024 * 1024), "4.0 GiB");
    }
}
