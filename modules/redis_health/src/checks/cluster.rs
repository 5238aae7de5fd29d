//! The cluster check: `cluster_state`, slot coverage and failures from `CLUSTER INFO`, failing
//! nodes, and whether every reachable peer agrees with this node about which master owns which
//! slots (the idea of redis-cli's consistency check). `CLUSTER NODES` is read with the shared
//! model in `redis_utils::cluster`.

use super::verdict::Status;
use redis_utils::cluster::{self, ClusterNode, OpenSlot};
use redis_utils::connection::{ConnectionError, RedisConn};
use redis_utils::info::Info;
use serde_json::{json, Map, Value};

/// A node's flags as one string (`master,myself`).
fn flags(n: &ClusterNode) -> String {
    n.flags.iter().cloned().collect::<Vec<_>>().join(",")
}

/// A node's slots as `CLUSTER NODES` prints them: ranges, then open slots in brackets.
fn slots(n: &ClusterNode) -> Vec<String> {
    n.slots
        .iter()
        .map(ToString::to_string)
        .chain(n.open_slots.iter().map(|o| match o {
            OpenSlot::Migrating { slot, to } => format!("[{slot}->-{to}]"),
            OpenSlot::Importing { slot, from } => format!("[{slot}-<-{from}]"),
        }))
        .collect()
}

/// `fail` / `fail?` flags or a disconnected link: a node to report.
fn is_failing(n: &ClusterNode) -> bool {
    n.flags.contains("fail") || n.flags.contains("fail?") || n.link == "disconnected"
}

/// Checks the cluster as this node and its peers see it.
///
/// # Errors
/// `CLUSTER INFO` / `CLUSTER NODES` failed on this node.
pub fn check_cluster(
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
    let nodes = cluster::nodes(con)?;
    let mine = cluster::signature(&nodes);
    let mut disagree = Vec::new();
    let mut unreachable = Vec::new();
    for n in nodes.iter().filter(|n| {
        !n.is_myself()
            && !n.flags.contains("fail")
            && !n.flags.contains("fail?")
            && !n.flags.contains("noaddr")
            && !n.flags.contains("handshake")
            && n.port != 0
    }) {
        let addr = format!("{}:{}", n.host, n.port);
        let peer = con.params().for_node(&n.host, n.port);
        match peer.connect().and_then(|mut c| cluster::nodes(&mut c)) {
            Ok(theirs) if cluster::signature(&theirs) == mine => {}
            Ok(_) => disagree.push(addr),
            Err(e) => unreachable.push(json!({"node": addr, "error": e.to_string()})),
        }
    }
    let failing: Vec<String> = nodes
        .iter()
        .filter(|n| is_failing(n))
        .map(|n| format!("{}:{} ({})", n.host, n.port, flags(n)))
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
                "id": n.id, "address": format!("{}:{}", n.host, n.port), "flags": flags(n),
                "link_state": n.link, "slots": slots(n),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_reported_as_cluster_nodes_prints_them() {
        let n = ClusterNode::parse(
            "id2 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 5461-10922 [5461->-id1] 7\n",
        )
        .expect("node");
        assert_eq!(slots(&n), vec!["5461-10922", "7", "[5461->-id1]"]);
        assert_eq!(flags(&n), "master,myself");
        assert!(!is_failing(&n));
        let f = ClusterNode::parse("id3 127.0.0.1:7002@17002 master,fail? - 0 0 3 connected\n")
            .expect("node");
        assert!(is_failing(&f));
    }
}
