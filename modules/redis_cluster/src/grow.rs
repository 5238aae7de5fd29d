//! Day 2 on a formed cluster: new nodes join (as replicas where a master lacks its share, else
//! as masters that then get slots), nodes in `remove_nodes` are drained and forgotten, and
//! `rebalance` evens out the slots. Desired state → a plan (checked whole before anything moves)
//! → apply.

use crate::desired::NodeAddr;
use crate::plan::{rebalance, Share};
use crate::reshard::{Move, Peer};
use crate::state::NodeView;
use ansible_module::ModuleError;
use redis_utils::connection::ConnectionParams;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// What the task asks beyond the node list.
#[derive(Clone, Debug, Default)]
pub struct DayTwo {
    pub replicas: usize,
    pub remove: Vec<NodeAddr>,
    pub rebalance: bool,
    /// Weight per node label (`host:port`); 1 when not given.
    pub weights: BTreeMap<String, f64>,
    pub threshold: f64,
}

/// The whole plan.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Fresh nodes joining: (view index, `None` for a master or `Some(master view index)`).
    pub join: Vec<(usize, Option<usize>)>,
    pub moves: Vec<Move>,
    /// Replicas to attach to another master: (replica view index, master view index).
    pub repoint: Vec<(usize, usize)>,
    /// Nodes to forget: view indexes (reachable) and ids of unreachable ones.
    pub forget: Vec<usize>,
    pub forget_unreachable: Vec<String>,
}

impl Plan {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.join.is_empty()
            && self.moves.is_empty()
            && self.repoint.is_empty()
            && self.forget.is_empty()
            && self.forget_unreachable.is_empty()
    }
}

fn master_of(v: &NodeView) -> Option<String> {
    v.myself().and_then(|m| m.master_id.clone())
}

fn is_master(v: &NodeView) -> bool {
    v.myself().is_some_and(|m| m.master_id.is_none())
}

fn peer(v: &NodeView) -> Peer {
    Peer {
        host: v.addr.host.clone(),
        port: v.addr.port,
        id: v.id.clone(),
    }
}

fn slots_of(v: &NodeView) -> Vec<u16> {
    v.myself()
        .map(|m| m.slots.iter().flat_map(|r| r.start..=r.end).collect())
        .unwrap_or_default()
}

/// Plans the changes. `fresh[i]` says whether view i is a new, empty node; `removing[i]`
/// whether it is listed in `remove_nodes`.
///
/// # Errors
/// A request that cannot be met without losing redundancy or data: nothing has moved yet.
pub fn plan(
    views: &[NodeView],
    fresh: &[bool],
    removing: &[bool],
    unreachable_removed: &[(String, bool)],
    d: &DayTwo,
) -> Result<Plan, ModuleError> {
    let mut p = Plan::default();
    let label = |i: usize| views[i].addr.label();
    let kept_masters: Vec<usize> = (0..views.len())
        .filter(|i| !fresh[*i] && !removing[*i] && is_master(&views[*i]))
        .collect();
    let id_index = |id: &str| views.iter().position(|v| v.id == id);
    // Replicas per kept master, after the removals.
    let mut replicas_of: BTreeMap<usize, usize> = kept_masters.iter().map(|m| (*m, 0)).collect();
    let mut orphans = Vec::new();
    for i in (0..views.len()).filter(|i| !fresh[*i] && !removing[*i] && !is_master(&views[*i])) {
        match master_of(&views[i]).and_then(|id| id_index(&id)) {
            Some(m) if !removing[m] => *replicas_of.entry(m).or_default() += 1,
            _ => orphans.push(i),
        }
    }
    // New nodes: replicas where a kept master lacks its share, masters otherwise.
    let mut new_masters = Vec::new();
    for i in (0..views.len()).filter(|i| fresh[*i]) {
        let lacking = replicas_of
            .iter()
            .filter(|(_, n)| **n < d.replicas)
            .map(|(m, n)| (*m, *n))
            .min_by_key(|(m, n)| (*n, views[*m].addr.ip == views[i].addr.ip, *m));
        if let Some((m, _)) = lacking {
            p.join.push((i, Some(m)));
            *replicas_of.entry(m).or_default() += 1;
        } else {
            p.join.push((i, None));
            new_masters.push(i);
            replicas_of.insert(i, 0);
        }
    }
    if kept_masters.is_empty() && new_masters.is_empty() {
        return Err(ModuleError::new(
            "remove_nodes would remove every master of the cluster; nothing was changed",
        ));
    }
    // Orphaned replicas go to the master with the fewest replicas, on another host if possible.
    for o in orphans {
        let m = replicas_of
            .iter()
            .map(|(m, n)| (*m, *n))
            .min_by_key(|(m, n)| (*n, views[*m].addr.ip == views[o].addr.ip, *m))
            .map(|(m, _)| m)
            .ok_or_else(|| ModuleError::new("no master left for the remaining replicas"))?;
        p.repoint.push((o, m));
        *replicas_of.entry(m).or_default() += 1;
    }
    // Redundancy: a removal must not leave a kept master with fewer replicas than asked.
    for (m, n) in &replicas_of {
        if *n < d.replicas && kept_masters.contains(m) {
            let was = views
                .iter()
                .enumerate()
                .filter(|(i, v)| {
                    removing[*i] && master_of(v).as_deref() == Some(views[*m].id.as_str())
                })
                .map(|(i, _)| label(i))
                .collect::<Vec<_>>();
            if !was.is_empty() {
                return Err(ModuleError::new(format!(
                    "removing {} leaves master {} with {n} replica(s) while replicas is {}; add a node or lower replicas; nothing was changed",
                    was.join(", "),
                    label(*m),
                    d.replicas
                )));
            }
        }
    }
    // Weights: every kept or new master keeps slots, removed masters give all theirs away.
    let weight = |i: usize| d.weights.get(&label(i)).copied().unwrap_or(1.0);
    for (k, w) in &d.weights {
        if !w.is_finite() || *w < 0.0 {
            return Err(ModuleError::new(format!(
                "weights: `{k}` must be a number >= 0, got {w}"
            )));
        }
        if let Some(i) = views.iter().position(|v| v.addr.label() == *k) {
            if *w == 0.0 && !removing[i] && (kept_masters.contains(&i) || new_masters.contains(&i))
            {
                return Err(ModuleError::new(format!(
                    "weights: `{k}` is 0, which would leave master {k} with no slots while it stays in the cluster (list it in remove_nodes to drain it); nothing was changed"
                )));
            }
        }
    }
    let mut shares: Vec<Share> = Vec::new();
    for &m in kept_masters.iter().chain(&new_masters) {
        shares.push(Share {
            peer: peer(&views[m]),
            slots: if fresh[m] {
                Vec::new()
            } else {
                slots_of(&views[m])
            },
            weight: weight(m),
        });
    }
    for i in (0..views.len()).filter(|i| removing[*i] && is_master(&views[*i])) {
        shares.push(Share {
            peer: peer(&views[i]),
            slots: slots_of(&views[i]),
            weight: 0.0,
        });
    }
    let needs_moves = d.rebalance
        || !new_masters.is_empty()
        || shares
            .iter()
            .any(|s| s.weight == 0.0 && !s.slots.is_empty());
    if needs_moves {
        // A new empty master or a drain always moves; a plain rebalance honours the threshold.
        p.moves = rebalance(
            &shares,
            if d.rebalance {
                d.threshold
            } else {
                f64::INFINITY
            },
        );
    }
    p.forget = (0..views.len()).filter(|i| removing[*i]).collect();
    for (id, owns_slots) in unreachable_removed {
        if *owns_slots {
            return Err(ModuleError::new(format!(
                "node {id} in remove_nodes is unreachable and still owns slots: its keys cannot be moved; bring it back or fail it over first; nothing was changed"
            )));
        }
        p.forget_unreachable.push(id.clone());
    }
    Ok(p)
}

/// The plan as the result shows it, with the keys in each moving slot range counted.
#[must_use]
pub fn plan_json(views: &mut [NodeView], p: &Plan) -> Value {
    let label = |v: &[NodeView], i: usize| v[i].addr.label();
    let join: Vec<Value> = p
        .join
        .iter()
        .map(|(i, m)| {
            json!({"node": label(views, *i), "role": if m.is_some() { "replica" } else { "master" },
                   "master": m.map(|m| label(views, m))})
        })
        .collect();
    let mut moves = Vec::new();
    for mv in &p.moves {
        let keys: i64 = views
            .iter_mut()
            .find(|v| v.id == mv.from.id)
            .map_or(0, |v| {
                mv.slots
                    .iter()
                    .map(|s| crate::fix::keys_in_slot(v, *s).unwrap_or(0))
                    .sum()
            });
        moves.push(json!({"from": mv.from.label(), "to": mv.to.label(), "slots": mv.slots.len(), "keys": keys}));
    }
    let repoint: Vec<Value> = p
        .repoint
        .iter()
        .map(|(r, m)| json!({"replica": label(views, *r), "master": label(views, *m)}))
        .collect();
    let mut forget: Vec<String> = p.forget.iter().map(|i| label(views, *i)).collect();
    forget.extend(p.forget_unreachable.iter().cloned());
    json!({"join": join, "moves": moves, "replicas_moving": repoint, "forget": forget})
}

fn cmd(v: &mut NodeView, args: &[&str]) -> Result<(), ModuleError> {
    v.con
        .cmd_json(args)
        .map(|_| ())
        .map_err(|e| ModuleError::new(format!("node {}: {e}", v.addr.label())))
}

/// Carries the plan out.
///
/// # Errors
/// A refused command or a wait that ran out (with what was done so far).
pub fn apply(
    views: &mut Vec<NodeView>,
    p: &Plan,
    conn: &ConnectionParams,
    deadline: Instant,
) -> Result<Applied, ModuleError> {
    let t0 = Instant::now();
    // The new nodes are empty: while they join, lower what only adds waiting (as when
    // forming), and put it back whatever happens, and before any slot moves: a node timeout
    // of 1 s on a master busy with MIGRATE would let its replica take over.
    let joining: Vec<usize> = p.join.iter().map(|(i, _)| *i).collect();
    let joining_masters: Vec<usize> = p
        .join
        .iter()
        .filter(|(_, m)| m.is_none())
        .map(|(i, _)| *i)
        .collect();
    let saved = crate::form::lower_on(views, &joining, &joining_masters)?;
    let joined = join_steps(views, p, deadline);
    let problems = crate::form::restore(views, &saved);
    match joined {
        Ok(()) if problems.is_empty() => {}
        Ok(()) => return Err(ModuleError::new(problems.join("; "))),
        Err(mut e) => {
            if !problems.is_empty() {
                e.msg = format!("{}; also {}", e.msg, problems.join("; "));
            }
            return Err(e);
        }
    }
    let t_join = t0.elapsed();
    let mut applied = apply_steps(views, p, conn, deadline, &joining_masters)?;
    applied.join_seconds = t_join.as_secs_f64();
    Ok(applied)
}

/// Steps 1 and 2: the new nodes meet the cluster, new masters get the function libraries, new
/// replicas follow their masters.
fn join_steps(views: &mut [NodeView], p: &Plan, deadline: Instant) -> Result<(), ModuleError> {
    // 1. Introduce the new nodes to a member.
    if let Some(member) = (0..views.len()).find(|i| !p.join.iter().any(|(j, _)| j == i)) {
        let ip = views[member].addr.ip.to_string();
        let port = views[member].addr.port.to_string();
        for (i, _) in &p.join {
            cmd(&mut views[*i], &["CLUSTER", "MEET", &ip, &port])?;
        }
    }
    if !p.join.is_empty() {
        // Joined, and every node (the new ones too) says ok: a node that is still at
        // cluster_state:fail refuses the keys a reshard sends it (CLUSTERDOWN).
        crate::form::wait(views, deadline, "the new nodes to join", |v| {
            let n = v.len();
            Ok(v.iter().all(|x| {
                x.known_nodes() >= n
                    && x.state_ok()
                    && x.nodes.iter().all(|k| !k.flags.contains("handshake"))
            }))
        })?;
    }
    // 2. New masters get the function libraries; new replicas follow their masters.
    let new_masters: Vec<usize> = p
        .join
        .iter()
        .filter(|(_, m)| m.is_none())
        .map(|(i, _)| *i)
        .collect();
    crate::copy_functions_to(views, &new_masters)?;
    for (i, m) in &p.join {
        if let Some(m) = m {
            let id = views[*m].id.clone();
            crate::form::replicate(&mut views[*i], &id, deadline)?;
        }
    }
    Ok(())
}

fn apply_steps(
    views: &mut Vec<NodeView>,
    p: &Plan,
    conn: &ConnectionParams,
    deadline: Instant,
    new_masters: &[usize],
) -> Result<Applied, ModuleError> {
    let t0 = Instant::now();
    // 3. Slots move.
    let masters: Vec<Peer> = views
        .iter()
        .filter(|v| is_master(v) || new_masters.iter().any(|i| views[*i].id == v.id))
        .map(peer)
        .collect();
    let moved = crate::reshard::execute(conn, &p.moves, &masters, deadline)?;
    let t_moves = t0.elapsed();
    // 4. Orphaned replicas follow a kept master.
    for (r, m) in &p.repoint {
        let id = views[*m].id.clone();
        crate::form::replicate(&mut views[*r], &id, deadline)?;
    }
    // 5. Removed nodes are forgotten by everyone else, then reset so they do not gossip back.
    let removed_ids: Vec<String> = p
        .forget
        .iter()
        .map(|i| views[*i].id.clone())
        .chain(p.forget_unreachable.iter().cloned())
        .collect();
    if !removed_ids.is_empty() {
        // (Replicas of a removed master were re-pointed in step 4: a replica cannot forget its
        // own master.)
        for (i, v) in views.iter_mut().enumerate() {
            if p.forget.contains(&i) {
                continue;
            }
            for id in &removed_ids {
                if v.nodes.iter().any(|n| n.id == *id) {
                    cmd(v, &["CLUSTER", "FORGET", id])?;
                }
            }
        }
        for &i in &p.forget {
            cmd(&mut views[i], &["CLUSTER", "RESET", "SOFT"])?;
        }
        let mut forgotten: Vec<usize> = p.forget.clone();
        forgotten.sort_unstable();
        for i in forgotten.into_iter().rev() {
            views.remove(i);
        }
    }
    // 6. Ready: every remaining node ok, agreeing, every link and replica up, and no slot left
    //    open anywhere. Valkey 8 replicates SETSLOT to the replicas, and a replica may still show
    //    a slot importing for a moment after its master has closed it.
    crate::form::wait(
        views,
        deadline,
        "the cluster to be ready, every slot closed",
        ready_and_closed,
    )?;
    Ok(Applied {
        keys: moved.keys,
        join_seconds: 0.0,
        reshard_seconds: t_moves.as_secs_f64(),
        settle_seconds: (t0.elapsed() - t_moves).as_secs_f64(),
    })
}

fn ready_and_closed(views: &mut [NodeView]) -> Result<bool, String> {
    // marks_left counts every node's marks, the masters' (report's open slots) among them.
    Ok(crate::form::ready(views)? && !crate::check::marks_left(views))
}

/// What [`apply`] did, and where the time went.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub keys: u64,
    pub join_seconds: f64,
    pub reshard_seconds: f64,
    pub settle_seconds: f64,
}
