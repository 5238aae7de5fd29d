//! `creativeflow.redis.redis_cluster`: forms a Redis Cluster from empty nodes natively (no
//! redis-cli), checks it, and fixes open or uncovered slots without losing keys. It returns
//! when the cluster is ready: every node `cluster_state:ok`, all agree on the slot map, every
//! replica's link up.
//!
//! Shape: desired state ([`desired`]), the nodes' own views ([`state`]), a pure layout plan
//! ([`plan`]), then apply ([`form`], [`fix`]); [`check`] is the report all states share.

pub mod check;
pub mod desired;
pub mod fix;
pub mod form;
pub mod grow;
pub mod plan;
pub mod reshard;
pub mod state;

use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome};
use desired::NodeAddr;
use redis_utils::connection::{with_connection_options, ConnectionParams};
use serde_json::{json, Value};
use state::NodeView;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The longest `wait_timeout` accepted, in seconds.
pub const MAX_WAIT_SECS: u64 = 3600;

/// The module's identity and argument spec (documented in plugins/modules/redis_cluster.py).
#[must_use]
pub fn definition() -> ModuleDef {
    let spec = with_connection_options(vec![
        Opt::list("nodes", ArgType::Str),
        Opt::int("replicas").default(0),
        Opt::str("state")
            .default("present")
            .choices(&["present", "check", "fixed"]),
        Opt::float("wait_timeout").default(60.0),
        Opt::list("remove_nodes", ArgType::Str),
        Opt::bool("rebalance").default(false),
        Opt::dict("weights"),
        Opt::float("threshold").default(2.0),
    ])
    .required_if("state", "present", &["nodes"], false);
    ModuleDef {
        name: "redis_cluster",
        spec,
        supports_check_mode: true,
    }
}

/// The module body.
///
/// # Errors
/// Bad input or a node that cannot take part (named in the message); a wait that ran out.
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let wait = m
        .params
        .duration("wait_timeout", MAX_WAIT_SECS)?
        .unwrap_or(Duration::from_secs(60));
    let started = Instant::now();
    let deadline = started + wait;
    let conn = ConnectionParams::from_params(&m.params)?;
    let desired = desired::from_params(&m.params)?;
    let out = match m.params.str("state").unwrap_or("present") {
        "check" => check_state(&conn, &desired.nodes),
        "fixed" => fixed(m, &conn, &desired.nodes, deadline),
        _ => present(m, &conn, &desired, deadline),
    }?;
    Ok(out.with("elapsed_seconds", started.elapsed().as_secs_f64()))
}

fn is_fresh(v: &NodeView) -> bool {
    v.known_nodes() == 1 && v.myself().is_some_and(|me| me.slots.is_empty())
}

fn day_two(m: &Module, d: &desired::Desired) -> Result<grow::DayTwo, ModuleError> {
    let mut remove = Vec::new();
    for s in m.params.str_list("remove_nodes").unwrap_or_default() {
        let n = desired::parse_node(&s)?;
        if d.nodes.iter().any(|x| x.ip == n.ip && x.port == n.port) {
            return Err(ModuleError::new(format!(
                "`{s}` is in both nodes and remove_nodes"
            )));
        }
        remove.push(n);
    }
    let mut weights = std::collections::BTreeMap::new();
    if let Some(w) = m.params.get("weights").and_then(Value::as_object) {
        for (k, v) in w {
            let n = desired::parse_node(k)?;
            let x = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| ModuleError::new(format!("weights: `{k}` must be a number")))?;
            weights.insert(n.label(), x);
        }
    }
    let threshold = m.params.float("threshold").unwrap_or(2.0);
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(ModuleError::new(
            "threshold must be a number of percent >= 0",
        ));
    }
    Ok(grow::DayTwo {
        replicas: d.replicas,
        remove,
        rebalance: m.params.flag("rebalance"),
        weights,
        threshold,
    })
}

fn present(
    m: &Module,
    conn: &ConnectionParams,
    d: &desired::Desired,
    deadline: Instant,
) -> Result<Outcome, ModuleError> {
    let day2 = day_two(m, d)?;
    let mut views = state::read_all(conn, &d.nodes)?;
    let mut removing = vec![false; views.len()];
    let mut unreachable_removed: Vec<(String, bool)> = Vec::new();
    // Nodes to remove: reachable ones join the views; a fresh one was removed already.
    for n in &day2.remove {
        match state::read(conn, n) {
            Ok(v) if is_fresh(&v) => {}
            Ok(v) => {
                views.push(v);
                removing.push(true);
            }
            Err(_) => {
                let label = n.label();
                let known = views.iter().find_map(|v| {
                    v.nodes.iter().find(|k| {
                        k.address() == label || format!("{}:{}", n.ip, n.port) == k.address()
                    })
                });
                if let Some(k) = known {
                    unreachable_removed.push((k.id.clone(), !k.slots.is_empty()));
                }
            }
        }
    }
    let members: Vec<usize> = (0..views.len()).filter(|i| !is_fresh(&views[*i])).collect();
    if members.is_empty() {
        return form_new(m, conn, d, views, deadline);
    }
    // Every member must be in the one cluster, and every node of that cluster listed: a node
    // known to a member but listed nowhere means these nodes are (partly) another cluster.
    let member_ids: BTreeSet<String> = members.iter().map(|i| views[*i].id.clone()).collect();
    for &i in &members {
        let v = &views[i];
        if let Some(stranger) = v.nodes.iter().find(|k| {
            !views.iter().any(|x| x.id == k.id)
                && !unreachable_removed.iter().any(|(id, _)| *id == k.id)
        }) {
            return Err(ModuleError::new(format!(
                "node {} is in a cluster with {}, which is neither in nodes nor in remove_nodes: that is another cluster, or list every node of this one; nothing was changed",
                v.addr.label(),
                stranger.address()
            )));
        }
        if let Some(other) = member_ids
            .iter()
            .find(|id| !v.nodes.iter().any(|k| &k.id == *id))
        {
            let o = views
                .iter()
                .find(|x| &x.id == other)
                .map(|x| x.addr.label())
                .unwrap_or_default();
            return Err(ModuleError::new(format!(
                "nodes {} and {o} are in different clusters; nothing was changed",
                v.addr.label()
            )));
        }
    }
    let fresh: Vec<bool> = views.iter().map(is_fresh).collect();
    for (i, v) in views.iter().enumerate() {
        if fresh[i] && v.keys > 0 {
            return Err(ModuleError::new(format!(
                "new node {} holds {} key(s); only empty nodes join a cluster; nothing was changed",
                v.addr.label(),
                v.keys
            )));
        }
    }
    // A slot left open by an interrupted run is closed first.
    let report = check::report(&views);
    let mut fixes = Vec::new();
    if !report.open.is_empty() {
        if !m.check_mode {
            let only_open = check::Report {
                open: report.open.clone(),
                ..check::Report::default()
            };
            fixes = fix::fix(&mut views, &only_open, conn, deadline)?;
            form::wait(&mut views, deadline, "the closed slots to settle", |v| {
                let r = check::report(v);
                Ok(r.open.is_empty() && r.disagreeing.is_empty())
            })?;
        } else {
            fixes.push(format!("would close {} open slot(s)", report.open.len()));
        }
    }
    let p = grow::plan(&views, &fresh, &removing, &unreachable_removed, &day2)?;
    let plan_json = grow::plan_json(&mut views, &p);
    if p.is_empty() {
        let r = check::report(&views);
        if !r.consistent() {
            m.warn(format!(
                "the cluster is formed but not healthy: {}",
                r.problems().join("; ")
            ));
        }
        return Ok(Outcome::new(!fixes.is_empty())
            .with("plan", plan_json)
            .with("fixes", &fixes)
            .with("consistent", r.consistent())
            .with("problems", r.problems())
            .with("nodes", check::nodes_json(&views))
            .msg(format!("the cluster of {} nodes is as asked", views.len())));
    }
    if m.check_mode {
        return Ok(Outcome::new(true)
            .with("plan", plan_json)
            .with("fixes", &fixes)
            .msg("would change the cluster: see plan"));
    }
    let applied = grow::apply(&mut views, &p, conn, deadline)?;
    let keys = applied.keys;
    let r = check::report(&views);
    Ok(Outcome::new(true)
        .with("plan", plan_json)
        .with("fixes", &fixes)
        .with("keys_moved", keys)
        .with(
            "timings",
            json!({"join_seconds": applied.join_seconds, "reshard_seconds": applied.reshard_seconds,
                   "settle_seconds": applied.settle_seconds}),
        )
        .with("consistent", r.consistent())
        .with("problems", r.problems())
        .with("nodes", check::nodes_json(&views))
        .msg(format!(
            "{} node(s) joined, {} slot move(s) ({keys} key(s)), {} node(s) removed",
            p.join.len(),
            p.moves.len(),
            p.forget.len() + p.forget_unreachable.len()
        )))
}

fn form_new(
    m: &Module,
    conn: &ConnectionParams,
    d: &desired::Desired,
    mut views: Vec<NodeView>,
    deadline: Instant,
) -> Result<Outcome, ModuleError> {
    let _ = conn;
    for v in &views {
        if v.keys > 0 {
            return Err(ModuleError::new(format!(
                "node {} holds {} key(s); a new cluster is formed only from empty nodes; nothing was changed",
                v.addr.label(),
                v.keys
            )));
        }
    }
    let masters = desired::masters_for(views.len(), d.replicas)?;
    let layout = plan::layout(&d.nodes, masters);
    let plan_json = layout.to_json(&d.nodes);
    if layout.same_host_replicas > 0 {
        m.warn(format!(
            "{} replica(s) are on the same host as their master: the inventory has too few hosts to avoid it",
            layout.same_host_replicas
        ));
    }
    if m.check_mode {
        return Ok(Outcome::new(true).with("plan", plan_json).msg(format!(
            "would form a cluster of {masters} masters and {} replicas",
            layout.replicas.len()
        )));
    }
    let masters_idx: Vec<usize> = layout.masters.iter().map(|(i, _)| *i).collect();
    copy_functions_to(&mut views, &masters_idx)?;
    for w in form::form(&mut views, &layout, deadline)? {
        m.warn(w);
    }
    let r = check::report(&views);
    Ok(Outcome::new(true)
        .with("plan", plan_json)
        .with("consistent", r.consistent())
        .with("problems", r.problems())
        .with("nodes", check::nodes_json(&views))
        .msg(format!(
            "formed a cluster of {masters} masters and {} replicas; every node says cluster_state:ok and every replica is in sync",
            layout.replicas.len()
        )))
}

/// Functions loaded on some masters are loaded on the masters that lack them, so that every
/// shard can run them (as `redis-cli --cluster add-node` copies them to a new master).
pub(crate) fn copy_functions_to(
    views: &mut [NodeView],
    masters: &[usize],
) -> Result<(), ModuleError> {
    let mut libraries: Vec<(String, String)> = Vec::new();
    let mut have: Vec<BTreeSet<String>> = Vec::new();
    for v in views.iter_mut() {
        let list = v
            .con
            .cmd_json(&["FUNCTION", "LIST", "WITHCODE"])
            .map_err(|e| ModuleError::new(format!("node {}: {e}", v.addr.label())))?;
        let mut names = BTreeSet::new();
        for lib in list.as_array().into_iter().flatten() {
            let o = redis_utils::connection::pairs_to_object(lib);
            let name = o
                .get("library_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let code = o
                .get("library_code")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !libraries.iter().any(|(n, _)| *n == name) {
                libraries.push((name.clone(), code));
            }
            names.insert(name);
        }
        have.push(names);
    }
    for i in masters {
        for (name, code) in &libraries {
            if !have[*i].contains(name) {
                let v = &mut views[*i];
                v.con.cmd_json(&["FUNCTION", "LOAD", code]).map_err(|e| {
                    ModuleError::new(format!(
                        "node {}: loading function library {name}: {e}",
                        v.addr.label()
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// The nodes to look at: the ones given, or every node the seed (login_host:login_port) knows.
fn discover(
    conn: &ConnectionParams,
    given: &[NodeAddr],
) -> Result<(Vec<NodeView>, Vec<String>), ModuleError> {
    if !given.is_empty() {
        return Ok((state::read_all(conn, given)?, Vec::new()));
    }
    let seed = desired::parse_node(&conn.address())?;
    let first = state::read(conn, &seed)?;
    let mut unreachable = Vec::new();
    let mut views = Vec::new();
    let others: Vec<redis_utils::cluster::ClusterNode> = first
        .nodes
        .iter()
        .filter(|n| !n.is_myself())
        .cloned()
        .collect();
    views.push(first);
    for n in others {
        let Ok(addr) = desired::parse_node(&n.address()) else {
            unreachable.push(n.address());
            continue;
        };
        match state::read(conn, &addr) {
            Ok(v) => views.push(v),
            Err(e) => unreachable.push(e.msg),
        }
    }
    Ok((views, unreachable))
}

fn report_outcome(views: &[NodeView], unreachable: &[String], changed: bool) -> Outcome {
    let r = check::report(views);
    let mut problems = r.problems();
    problems.extend(unreachable.iter().map(|u| format!("unreachable: {u}")));
    let open: Vec<Value> = r
        .open
        .iter()
        .map(|o| {
            json!({"slot": o.slot,
                   "migrating": o.migrating.iter().map(|(i, to)| json!({"node": views[*i].addr.label(), "to": to})).collect::<Vec<_>>(),
                   "importing": o.importing.iter().map(|(i, from)| json!({"node": views[*i].addr.label(), "from": from})).collect::<Vec<_>>()})
        })
        .collect();
    let uncovered: Vec<String> = r.uncovered.iter().map(ToString::to_string).collect();
    Outcome::new(changed)
        .with("consistent", r.consistent() && unreachable.is_empty())
        .with("problems", &problems)
        .with("open_slots", open)
        .with("uncovered_slots", uncovered)
        .with("nodes", check::nodes_json(views))
}

fn check_state(conn: &ConnectionParams, given: &[NodeAddr]) -> Result<Outcome, ModuleError> {
    let (views, unreachable) = discover(conn, given)?;
    let o = report_outcome(&views, &unreachable, false);
    let ok = o.get("consistent") == Some(&json!(true));
    Ok(o.msg(if ok {
        format!("the cluster of {} nodes is consistent", views.len())
    } else {
        "the cluster is not consistent: see problems".to_string()
    }))
}

fn fixed(
    m: &Module,
    conn: &ConnectionParams,
    given: &[NodeAddr],
    deadline: Instant,
) -> Result<Outcome, ModuleError> {
    let (mut views, unreachable) = discover(conn, given)?;
    let r = check::report(&views);
    if r.open.is_empty() && r.uncovered.is_empty() {
        return Ok(report_outcome(&views, &unreachable, false)
            .msg("no open or uncovered slots: nothing to fix"));
    }
    if m.check_mode {
        return Ok(report_outcome(&views, &unreachable, true)
            .msg(format!("would fix: {}", r.problems().join("; "))));
    }
    let done = fix::fix(&mut views, &r, conn, deadline)?;
    // Let the new ownership spread before reporting.
    let _ = form::wait(
        &mut views,
        deadline,
        "the nodes to agree after the fix",
        |v| {
            Ok(check::report(v).open.is_empty()
                && check::report(v).uncovered.is_empty()
                && check::report(v).disagreeing.is_empty())
        },
    );
    Ok(report_outcome(&views, &unreachable, true)
        .with("fixes", &done)
        .msg(done.join("; ")))
}
