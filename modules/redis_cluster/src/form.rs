//! Forming a cluster from empty nodes, and the waits that make "returned" mean "ready".
//!
//! Why it is fast: redis-cli sleeps a fixed second, polls once a second, and returns while
//! masters still report `cluster_state:fail` and replicas have not synced. Here every wait polls
//! every 20 ms, and while the nodes are still empty two settings that only add waiting are lowered
//! and then put back (on failure paths too):
//! - `cluster-node-timeout`: a master that was in a minority (every new master is, until it knows
//!   the others) waits clamp(cluster-node-timeout, 500, 5000) ms before it says `ok`;
//! - `repl-diskless-sync-delay` on masters: a master waits that long (5 s by default) before it
//!   feeds a new replica.

use crate::plan::Layout;
use crate::state::NodeView;
use ansible_module::ModuleError;
use redis_utils::cluster::{signature, ClusterNode};
use redis_utils::connection::ConnectionError;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The node timeout used while forming (ms): the rejoin delay becomes 1 s instead of 5 s.
const FORMING_NODE_TIMEOUT_MS: &str = "1000";
const POLL: Duration = Duration::from_millis(20);

/// A setting changed for the forming and the value to put back.
pub struct Lowered {
    node: usize,
    name: &'static str,
    value: String,
}

fn cmd(v: &mut NodeView, args: &[&str]) -> Result<(), ModuleError> {
    v.con
        .cmd_json(args)
        .map(|_| ())
        .map_err(|e| ModuleError::new(format!("node {}: {e}", v.addr.label())))
}

fn lower(views: &mut [NodeView], layout: &Layout) -> Result<Vec<Lowered>, ModuleError> {
    let masters: Vec<usize> = layout.masters.iter().map(|(i, _)| *i).collect();
    let all: Vec<usize> = (0..views.len()).collect();
    lower_on(views, &all, &masters)
}

/// Lowers the waiting settings on `nodes` (empty ones only: the caller says which), and
/// `repl-diskless-sync-delay` on those of them in `masters`.
///
/// # Errors
/// A refused CONFIG GET/SET.
pub fn lower_on(
    views: &mut [NodeView],
    nodes: &[usize],
    masters: &[usize],
) -> Result<Vec<Lowered>, ModuleError> {
    let mut saved = Vec::new();
    for (i, v) in views.iter_mut().enumerate() {
        if !nodes.contains(&i) {
            continue;
        }
        let mut settings = vec![("cluster-node-timeout", FORMING_NODE_TIMEOUT_MS)];
        if masters.contains(&i) {
            settings.push(("repl-diskless-sync-delay", "0"));
        }
        for (name, value) in settings {
            let cur = v
                .con
                .cmd_json(&["CONFIG", "GET", name])
                .map_err(|e| ModuleError::new(format!("node {}: {e}", v.addr.label())))?;
            let cur = redis_utils::connection::pairs_to_object(&cur);
            let Some(old) = cur.get(name).map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }) else {
                continue;
            };
            if old == value {
                continue;
            }
            // Only lower: a node timeout already below 1 s stays as it is.
            if name == "cluster-node-timeout" && old.parse::<u64>().is_ok_and(|o| o <= 1000) {
                continue;
            }
            cmd(v, &["CONFIG", "SET", name, value])?;
            saved.push(Lowered {
                node: i,
                name,
                value: old,
            });
        }
    }
    Ok(saved)
}

/// Puts back what [`lower_on`] changed; returns what could not be put back.
pub fn restore(views: &mut [NodeView], saved: &[Lowered]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in saved {
        let v = &mut views[s.node];
        if let Err(e) = cmd(v, &["CONFIG", "SET", s.name, &s.value]) {
            problems.push(format!(
                "could not put {} back to {} on {}: {}",
                s.name,
                s.value,
                v.addr.label(),
                e.msg
            ));
        }
    }
    problems
}

/// Forms the cluster of `layout` on the (empty, unjoined) `views`, and waits until it is ready.
/// Returns warnings (a setting that could not be restored).
///
/// # Errors
/// A refused command, or a wait that ran out (the message names the nodes that do not see each
/// other and whether their cluster bus ports are reachable).
pub fn form(
    views: &mut [NodeView],
    layout: &Layout,
    deadline: Instant,
) -> Result<Vec<String>, ModuleError> {
    let saved = lower(views, layout)?;
    let result = form_steps(views, layout, deadline);
    let mut warnings = restore(views, &saved);
    match result {
        Ok(()) => Ok(warnings),
        Err(mut e) => {
            if !warnings.is_empty() {
                e.msg = format!("{}; also {}", e.msg, warnings.join("; "));
                warnings.clear();
            }
            Err(e)
        }
    }
}

fn form_steps(
    views: &mut [NodeView],
    layout: &Layout,
    deadline: Instant,
) -> Result<(), ModuleError> {
    // Distinct config epochs, set while each node still knows only itself (as redis-cli does),
    // so that no two masters start with the same epoch.
    for (epoch, v) in views.iter_mut().enumerate() {
        let e = (epoch + 1).to_string();
        cmd(v, &["CLUSTER", "SET-CONFIG-EPOCH", &e])?;
    }
    for (i, range) in &layout.masters {
        let (a, b) = (range.start.to_string(), range.end.to_string());
        cmd(&mut views[*i], &["CLUSTER", "ADDSLOTSRANGE", &a, &b])?;
    }
    // Everyone meets the first node; gossip does the rest.
    let (first, others) = views
        .split_first_mut()
        .ok_or_else(|| ModuleError::new("no nodes"))?;
    for v in others.iter() {
        let ip = v.addr.ip.to_string();
        let port = v.addr.port.to_string();
        cmd(first, &["CLUSTER", "MEET", &ip, &port])?;
    }
    wait(
        views,
        deadline,
        "every node to know every other node",
        joined,
    )?;
    for (r, m) in &layout.replicas {
        let master_id = views[*m].id.clone();
        replicate(&mut views[*r], &master_id, deadline)?;
    }
    wait(views, deadline, "the cluster to be ready", ready)
}

/// `CLUSTER REPLICATE`, retried while the replica has not learned its master's id yet.
pub fn replicate(v: &mut NodeView, master_id: &str, deadline: Instant) -> Result<(), ModuleError> {
    loop {
        match v.con.cmd::<String>(&["CLUSTER", "REPLICATE", master_id]) {
            Ok(_) => return Ok(()),
            Err(ConnectionError::Command { detail, .. })
                if detail.contains("Unknown node") && Instant::now() < deadline =>
            {
                std::thread::sleep(POLL);
            }
            Err(e) => {
                return Err(ModuleError::new(format!(
                    "node {}: CLUSTER REPLICATE {master_id}: {e}",
                    v.addr.label()
                )))
            }
        }
    }
}

/// True when every node knows all the others (no handshake left) and all agree on the slots.
fn joined(views: &mut [NodeView]) -> Result<bool, String> {
    let n = views.len();
    let all_known = views.iter().all(|v| {
        v.known_nodes() == n
            && v.nodes
                .iter()
                .all(|x| !x.flags.contains("handshake") && !x.flags.contains("noaddr"))
    });
    Ok(all_known && agree(views))
}

fn agree(views: &[NodeView]) -> bool {
    let first = views.first().map(|v| signature(&v.nodes));
    views.iter().all(|v| Some(signature(&v.nodes)) == first)
}

/// True when every node says `cluster_state:ok`, all agree, every cluster-bus link is up and
/// every replica's link to its master is up.
pub fn ready(views: &mut [NodeView]) -> Result<bool, String> {
    if !(views.iter().all(NodeView::state_ok) && agree(views)) {
        return Ok(false);
    }
    // Every node links to every other: a node whose bus port the others cannot reach still
    // gossips outwards, so the rest can look ready while its links stay down.
    let links_up = views.iter().all(|v| {
        v.nodes
            .iter()
            .all(|n| n.is_myself() || (!n.is_failing() && n.link == "connected"))
    });
    if !links_up {
        return Ok(false);
    }
    for v in views.iter_mut() {
        if v.myself().is_some_and(|me| me.master_id.is_some()) {
            let info = v
                .con
                .info(Some("replication"))
                .map_err(|e| format!("node {}: {e}", v.addr.label()))?;
            if info.get("master_link_status") != Some("up") {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Polls `done` (after refreshing every view) until it is true or the deadline passes.
///
/// # Errors
/// The deadline passed: the message says what was awaited and diagnoses the cluster bus.
pub fn wait(
    views: &mut [NodeView],
    deadline: Instant,
    what: &str,
    done: fn(&mut [NodeView]) -> Result<bool, String>,
) -> Result<(), ModuleError> {
    loop {
        for v in views.iter_mut() {
            v.refresh()
                .map_err(|e| ModuleError::new(format!("node {}: {e}", v.addr.label())))?;
        }
        if done(views).map_err(ModuleError::new)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ModuleError::new(format!(
                "timed out (wait_timeout) waiting for {what}: {}",
                diagnose(views)
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Which nodes do not see which, and whether their bus ports can be reached from here.
#[must_use]
pub fn diagnose(views: &[NodeView]) -> String {
    let mut parts = Vec::new();
    let ids: Vec<(&str, String)> = views
        .iter()
        .map(|v| (v.id.as_str(), v.addr.label()))
        .collect();
    for v in views {
        let missing: Vec<&String> = ids
            .iter()
            .filter(|(id, _)| {
                !v.nodes
                    .iter()
                    .any(|n| n.id == *id && !n.flags.contains("handshake"))
            })
            .map(|(_, l)| l)
            .collect();
        let failing: Vec<String> = v
            .nodes
            .iter()
            .filter(|n| !n.is_myself() && (n.is_failing() || n.link == "disconnected"))
            .map(ClusterNode::address)
            .collect();
        if !missing.is_empty() || !failing.is_empty() {
            parts.push(format!(
                "{} does not see {}{}",
                v.addr.label(),
                if missing.is_empty() {
                    String::new()
                } else {
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                if failing.is_empty() {
                    String::new()
                } else {
                    format!(" (links down or failing: {})", failing.join(", "))
                }
            ));
        }
        if !v.state_ok() {
            parts.push(format!("{} says cluster_state:fail", v.addr.label()));
        }
    }
    for v in views {
        let bus = v
            .myself()
            .map(|m| m.bus_port)
            .filter(|p| *p > 0)
            .unwrap_or(v.addr.port.saturating_add(10_000));
        let sa = SocketAddr::new(v.addr.ip, bus);
        if TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_err() {
            parts.push(format!(
                "the cluster bus port {bus} of {} is not reachable from here (nodes talk to each other on it: open it in the firewall, or check cluster-announce-bus-port)",
                v.addr.label()
            ));
        }
    }
    if parts.is_empty() {
        "every node sees every other and every bus port answers; the cluster is still converging (raise wait_timeout)".to_string()
    } else {
        parts.join("; ")
    }
}
