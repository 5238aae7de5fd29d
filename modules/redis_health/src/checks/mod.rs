//! The health checks: each reads the server's own view (INFO, SENTINEL, CLUSTER) and turns it into
//! a verdict with a message an operator can act on.
//!
//! A run is: connect, PING and INFO (what the server is), [`plan`] which checks apply (the
//! requested ones, or those that fit a server, Sentinel or cluster node), then run them in
//! [`ALL_CHECKS`] order. Read-only throughout, so check mode is the same run.
//!
//! - [`server`]: role, memory, persistence, clients, keyspace, Pub/Sub
//! - [`replication`]: either side of replication
//! - [`sentinel`]: every master a Sentinel monitors
//! - [`cluster`]: cluster state, slot coverage, and whether peers agree
//! - [`verdict`]: statuses, thresholds and the report

pub mod cluster;
pub mod replication;
pub mod sentinel;
pub mod server;
pub mod verdict;

use redis_utils::connection::ConnectionParams;
use redis_utils::info::{Info, ServerIdentity};
use serde_json::{json, Value};
use std::time::Instant;
pub use verdict::{Report, Status, Thresholds};

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

/// The checks to run after `ping`, in report order: the requested ones, or (`None`) the ones that
/// fit what INFO says the server is.
#[must_use]
pub fn plan(requested: Option<&[String]>, info: &Info) -> Vec<&'static str> {
    // Valkey 8 says `server_mode:sentinel`, Redis `redis_mode:sentinel`.
    let is_sentinel = info.mode() == Some("sentinel");
    let cluster_enabled = info.int("cluster_enabled") == Some(1);
    let wanted: Vec<&str> = match requested {
        Some(r) => r.iter().map(String::as_str).collect(),
        None if is_sentinel => vec!["ping", "sentinel"],
        None => {
            let mut c = DEFAULT_SERVER_CHECKS.to_vec();
            if cluster_enabled {
                c.push("cluster");
            }
            c
        }
    };
    ALL_CHECKS
        .iter()
        .copied()
        .filter(|n| *n != "ping" && wanted.contains(n))
        .collect()
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
    // Valkey 8 says `server_mode:sentinel`, Redis `redis_mode:sentinel`.
    let is_sentinel = info.mode() == Some("sentinel");
    let cluster_enabled = info.int("cluster_enabled") == Some(1);
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
    // Valkey reports redis_version 7.2.4 for compatibility; its own version is valkey_version.
    let id = ServerIdentity::from_info(&info);
    report.data.insert(
        "server".into(),
        json!({"flavour": id.flavour, "version": id.version, "redis_version": id.redis_version}),
    );
    report.server = Some(id.label());
    report
        .data
        .insert("info".into(), Value::Object(info.to_json()));

    for name in plan(requested, &info) {
        let result = match name {
            "info" => Ok(server::check_info(&info, &id, &role, t)),
            "memory" => Ok(server::check_memory(&info, t)),
            "persistence" => Ok(server::check_persistence(&info)),
            "replication" => Ok(replication::check_replication(&info, t, &mut report.data)),
            "clients" => Ok(server::check_clients(&info, t)),
            "keyspace" => Ok(server::check_keyspace(&info, t, &mut report.data)),
            "sentinel" => sentinel::check_sentinel(&mut con, is_sentinel, t, &mut report.data),
            "cluster" => cluster::check_cluster(&mut con, cluster_enabled, &mut report.data),
            "pubsub" => server::check_pubsub(&mut con, &mut report.data),
            _ => continue,
        };
        match result {
            Ok((status, msg)) => report.add(name, status, msg),
            Err(e) => report.add(name, Status::Critical, e.to_string()),
        }
    }
    report
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn thresholds() -> Thresholds {
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
    fn plan_fits_the_server_unless_checks_are_given() {
        let server = Info::parse("# Server\r\nredis_mode:standalone\r\n");
        assert_eq!(
            plan(None, &server),
            vec![
                "info",
                "memory",
                "persistence",
                "replication",
                "clients",
                "keyspace"
            ]
        );
        let node =
            Info::parse("# Server\r\nredis_mode:cluster\r\n# Cluster\r\ncluster_enabled:1\r\n");
        assert_eq!(plan(None, &node).last(), Some(&"cluster"));
        let sentinel = Info::parse("# Server\r\nredis_mode:sentinel\r\n");
        assert_eq!(plan(None, &sentinel), vec!["sentinel"]);
        // See: issue 16 item 3 (a valkey-sentinel was checked as a plain server)
        let valkey_sentinel =
            Info::parse("# Server\r\nserver_name:valkey\r\nserver_mode:sentinel\r\n");
        assert_eq!(plan(None, &valkey_sentinel), vec!["sentinel"]);
        // Requested checks run in report order, whatever order they were given in.
        let asked = vec!["pubsub".to_string(), "ping".into(), "memory".into()];
        assert_eq!(plan(Some(&asked), &server), vec!["memory", "pubsub"]);
    }
}
