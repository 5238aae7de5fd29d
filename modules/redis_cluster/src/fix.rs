//! `state: fixed`: closes open slots and covers uncovered ones, only where that loses no key.
//! The key moves are the building block the grow/shrink reshards use too ([`move_slot_keys`]).

use crate::check::{Open, Report};
use crate::state::NodeView;
use ansible_module::ModuleError;
use redis_utils::connection::{ConnectionError, ConnectionParams};

/// Keys per `MIGRATE` call.
pub const MIGRATE_BATCH: usize = 100;
/// `MIGRATE`'s own timeout, ms.
const MIGRATE_TIMEOUT_MS: &str = "10000";

fn err(v: &NodeView, e: &ConnectionError) -> ModuleError {
    ModuleError::new(format!("node {}: {e}", v.addr.label()))
}

/// Moves every key of `slot` from `src` to the node at `dst` (host, port), in batches, with the
/// task's credentials. Returns how many keys moved. A key that already exists on the target
/// stops the move (`BUSYKEY`) rather than overwriting either copy.
///
/// # Errors
/// A refused MIGRATE (the message says which slot and how many keys had moved).
pub fn move_slot_keys(
    src: &mut NodeView,
    dst: (&str, u16),
    slot: u16,
    conn: &ConnectionParams,
) -> Result<u64, ModuleError> {
    let slot_s = slot.to_string();
    let batch = MIGRATE_BATCH.to_string();
    let port = dst.1.to_string();
    let mut moved = 0u64;
    loop {
        let keys: Vec<String> = src
            .con
            .cmd(&["CLUSTER", "GETKEYSINSLOT", &slot_s, &batch])
            .map_err(|e| err(src, &e))?;
        if keys.is_empty() {
            return Ok(moved);
        }
        let mut args: Vec<&str> = vec!["MIGRATE", dst.0, &port, "", "0", MIGRATE_TIMEOUT_MS];
        match (&conn.user, &conn.password) {
            (Some(u), Some(p)) => args.extend(["AUTH2", u.as_str(), p.as_str()]),
            (None, Some(p)) => args.extend(["AUTH", p.as_str()]),
            _ => {}
        }
        args.push("KEYS");
        args.extend(keys.iter().map(String::as_str));
        src.con.cmd_json(&args).map_err(|e| {
            ModuleError::new(format!(
                "node {}: moving slot {slot} to {}:{} stopped after {moved} key(s): {e}",
                src.addr.label(),
                dst.0,
                dst.1
            ))
        })?;
        moved += keys.len() as u64;
    }
}

fn setslot(v: &mut NodeView, slot: u16, args: &[&str]) -> Result<(), ModuleError> {
    let s = slot.to_string();
    let mut a = vec!["CLUSTER", "SETSLOT", s.as_str()];
    a.extend_from_slice(args);
    v.con.cmd_json(&a).map(|_| ()).map_err(|e| err(v, &e))
}

fn index_of(views: &[NodeView], id: &str) -> Option<usize> {
    views.iter().position(|v| v.id == id)
}

/// The master that owns `slot` in the first node's view.
fn owner(views: &[NodeView], slot: u16) -> Option<usize> {
    let first = views.first()?;
    let id = first
        .nodes
        .iter()
        .find(|n| n.is_master() && n.slots.iter().any(|r| r.start <= slot && slot <= r.end))?
        .id
        .clone();
    index_of(views, &id)
}

fn two_mut(views: &mut [NodeView], a: usize, b: usize) -> (&mut NodeView, &mut NodeView) {
    if a < b {
        let (l, r) = views.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = views.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

/// Closes one open slot. Returns what was done.
fn close(views: &mut [NodeView], o: &Open, conn: &ConnectionParams) -> Result<String, ModuleError> {
    match (o.migrating.as_slice(), o.importing.as_slice()) {
        // A reshard interrupted half way: finish it (the keys still at the source go to the
        // target, which already serves the slot's new keys through ASK).
        ([(src, to)], [(dst, from)]) if views[*dst].id == *to && views[*src].id == *from => {
            let (s, d) = (*src, *dst);
            let target = (views[d].addr.host.clone(), views[d].addr.port);
            let moved = move_slot_keys(&mut views[s], (&target.0, target.1), o.slot, conn)?;
            let dst_id = views[d].id.clone();
            // The target first, then the source, then everyone (Redis' documented order).
            setslot(&mut views[d], o.slot, &["NODE", &dst_id])?;
            setslot(&mut views[s], o.slot, &["NODE", &dst_id])?;
            for i in (0..views.len()).filter(|i| *i != s && *i != d) {
                if views[i].myself().is_some_and(redis_utils::cluster::ClusterNode::is_master) {
                    setslot(&mut views[i], o.slot, &["NODE", &dst_id])?;
                }
            }
            Ok(format!(
                "slot {}: finished the move from {} to {} ({moved} key(s))",
                o.slot,
                views[s].addr.label(),
                views[d].addr.label()
            ))
        }
        // Migrating with no importer: the keys are all still at the source; stop migrating.
        ([(src, _)], []) => {
            let s = *src;
            setslot(&mut views[s], o.slot, &["STABLE"])?;
            Ok(format!("slot {}: stopped migrating on {}", o.slot, views[s].addr.label()))
        }
        // Importing with no migrating source: give the keys it took back to the owner.
        ([], [(dst, _)]) => {
            let d = *dst;
            match owner(views, o.slot) {
                Some(own) if own != d => {
                    let (from, to) = two_mut(views, d, own);
                    let target = (to.addr.host.clone(), to.addr.port);
                    let moved = move_slot_keys(from, (&target.0, target.1), o.slot, conn)?;
                    setslot(from, o.slot, &["STABLE"])?;
                    Ok(format!(
                        "slot {}: stopped importing on {} and moved its {moved} key(s) back to {}",
                        o.slot,
                        from.addr.label(),
                        to.addr.label()
                    ))
                }
                _ => {
                    setslot(&mut views[d], o.slot, &["STABLE"])?;
                    Ok(format!("slot {}: stopped importing on {}", o.slot, views[d].addr.label()))
                }
            }
        }
        _ => Err(ModuleError::new(format!(
            "slot {} is open on several nodes at once ({} migrating, {} importing); fix it by hand with CLUSTER SETSLOT, nothing else was changed for it",
            o.slot,
            o.migrating.len(),
            o.importing.len()
        ))),
    }
}

/// Gives each uncovered slot to the master holding its keys, or, when none does, to the
/// master with the fewest slots. A slot whose keys are on several masters is an error.
fn cover(views: &mut [NodeView], report: &Report) -> Result<Vec<String>, ModuleError> {
    let mut done = Vec::new();
    let masters: Vec<usize> = (0..views.len())
        .filter(|i| views[*i].myself().is_some_and(|m| m.master_id.is_none()))
        .collect();
    if masters.is_empty() {
        return Err(ModuleError::new("no master to give the uncovered slots to"));
    }
    let mut gained: Vec<u32> = masters
        .iter()
        .map(|i| {
            views[*i]
                .myself()
                .map_or(0, redis_utils::cluster::ClusterNode::slot_count)
        })
        .collect();
    for range in &report.uncovered {
        for slot in range.start..=range.end {
            let s = slot.to_string();
            let mut holders = Vec::new();
            for (k, i) in masters.iter().enumerate() {
                let n: i64 = views[*i]
                    .con
                    .cmd(&["CLUSTER", "COUNTKEYSINSLOT", &s])
                    .map_err(|e| err(&views[*i], &e))?;
                if n > 0 {
                    holders.push(k);
                }
            }
            let k = match holders.as_slice() {
                [one] => *one,
                [] => (0..masters.len()).min_by_key(|k| gained[*k]).unwrap_or(0),
                _ => {
                    return Err(ModuleError::new(format!(
                        "slot {slot} is not covered and its keys are on {} masters; merging them could lose keys, so it is left for you to decide",
                        holders.len()
                    )))
                }
            };
            let i = masters[k];
            views[i]
                .con
                .cmd_json(&["CLUSTER", "ADDSLOTS", &s])
                .map_err(|e| err(&views[i], &e))?;
            gained[k] += 1;
        }
        done.push(format!("slots {range}: assigned"));
    }
    if !report.uncovered.is_empty() {
        // A config epoch of its own makes the new owners' claims win everywhere.
        for i in &masters {
            let _ = views[*i].con.cmd::<String>(&["CLUSTER", "BUMPEPOCH"]);
        }
    }
    Ok(done)
}

/// Everything `state: fixed` does for `report`. Returns the actions taken.
///
/// # Errors
/// A fix that would risk keys, or a refused command.
pub fn fix(
    views: &mut [NodeView],
    report: &Report,
    conn: &ConnectionParams,
    deadline: std::time::Instant,
) -> Result<Vec<String>, ModuleError> {
    // Coverage first: while a slot is uncovered the cluster is down, and a node refuses the
    // keys that closing an open slot moves (CLUSTERDOWN).
    let mut done = cover(views, report)?;
    if !report.uncovered.is_empty() && !report.open.is_empty() {
        crate::form::wait(views, deadline, "every node to say cluster_state:ok", |v| {
            Ok(v.iter().all(NodeView::state_ok))
        })?;
    }
    for o in &report.open {
        done.push(close(views, o, conn)?);
    }
    Ok(done)
}

/// The keys in `slot` on `v`.
///
/// # Errors
/// The node stopped answering.
pub fn keys_in_slot(v: &mut NodeView, slot: u16) -> Result<i64, ModuleError> {
    let s = slot.to_string();
    v.con
        .cmd(&["CLUSTER", "COUNTKEYSINSLOT", &s])
        .map_err(|e| err(v, &e))
}
