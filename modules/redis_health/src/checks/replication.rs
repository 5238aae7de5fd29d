//! Replication, from either side: a replica's link to its master, a master's replicas (state,
//! lag, offsets) and `min_replicas`.

use super::verdict::{Status, Thresholds};
use redis_utils::info::{parse_kv_list, Info};
use serde_json::{json, Map, Value};

pub fn check_replication(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tests::thresholds;

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
}
