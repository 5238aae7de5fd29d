//! The consistency report of `state: check` (and the facts `state: fixed` acts on): slot
//! coverage, agreement between nodes, open slots, failing nodes.

use crate::state::NodeView;
use redis_utils::cluster::{signature, uncovered, OpenSlot, SlotRange};
use serde_json::{json, Value};

/// A slot left migrating or importing by a reshard that did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub slot: u16,
    /// Node (index into the views) that has it migrating, and the target id.
    pub migrating: Vec<(usize, String)>,
    /// Node that has it importing, and the source id.
    pub importing: Vec<(usize, String)>,
}

/// What is wrong, from every node's own view.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub uncovered: Vec<SlotRange>,
    pub open: Vec<Open>,
    /// Nodes whose slot map differs from the first node's.
    pub disagreeing: Vec<String>,
    /// Nodes some node flags fail/pfail, or cannot link to.
    pub failing: Vec<String>,
    /// Nodes that say cluster_state:fail.
    pub state_fail: Vec<String>,
}

impl Report {
    #[must_use]
    pub fn consistent(&self) -> bool {
        self.uncovered.is_empty()
            && self.open.is_empty()
            && self.disagreeing.is_empty()
            && self.failing.is_empty()
            && self.state_fail.is_empty()
    }

    /// One line per problem.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.uncovered.is_empty() {
            let r: Vec<String> = self.uncovered.iter().map(ToString::to_string).collect();
            let n: u32 = self.uncovered.iter().map(|r| r.len()).sum();
            p.push(format!(
                "{n} slot(s) not covered by any node: {}",
                r.join(",")
            ));
        }
        for o in &self.open {
            p.push(format!(
                "slot {} is open (migrating on {} node(s), importing on {})",
                o.slot,
                o.migrating.len(),
                o.importing.len()
            ));
        }
        if !self.disagreeing.is_empty() {
            p.push(format!(
                "nodes disagree about the slot map: {}",
                self.disagreeing.join(", ")
            ));
        }
        if !self.failing.is_empty() {
            p.push(format!(
                "failing or unreachable nodes: {}",
                self.failing.join(", ")
            ));
        }
        if !self.state_fail.is_empty() {
            p.push(format!(
                "cluster_state:fail on {}",
                self.state_fail.join(", ")
            ));
        }
        p
    }
}

/// Builds the report from every node's view.
#[must_use]
pub fn report(views: &[NodeView]) -> Report {
    let mut r = Report::default();
    if let Some(first) = views.first() {
        r.uncovered = uncovered(&first.nodes);
        let sig = signature(&first.nodes);
        r.disagreeing = views
            .iter()
            .filter(|v| signature(&v.nodes) != sig)
            .map(|v| v.addr.label())
            .collect();
    }
    for (i, v) in views.iter().enumerate() {
        if !v.state_ok() {
            r.state_fail.push(v.addr.label());
        }
        for n in v.nodes.iter().filter(|n| !n.is_myself()) {
            if n.is_failing() || n.link == "disconnected" {
                let a = n.address();
                if !r.failing.contains(&a) {
                    r.failing.push(a);
                }
            }
        }
        // Masters only: Valkey 8 copies a master's MIGRATING/IMPORTING marks to its replicas,
        // and counting those would make one interrupted move look open on four nodes.
        let Some(me) = v.myself().filter(|m| m.is_master()) else {
            continue;
        };
        for o in &me.open_slots {
            let slot = match o {
                OpenSlot::Migrating { slot, .. } | OpenSlot::Importing { slot, .. } => *slot,
            };
            let pos = r
                .open
                .iter()
                .position(|x| x.slot == slot)
                .unwrap_or_else(|| {
                    r.open.push(Open {
                        slot,
                        migrating: vec![],
                        importing: vec![],
                    });
                    r.open.len() - 1
                });
            match o {
                OpenSlot::Migrating { to, .. } => r.open[pos].migrating.push((i, to.clone())),
                OpenSlot::Importing { from, .. } => r.open[pos].importing.push((i, from.clone())),
            }
        }
    }
    r.open.sort_by_key(|o| o.slot);
    r
}

/// Whether any node, replicas included, still shows a slot MIGRATING or IMPORTING in its own
/// view. [`report`] counts masters only; this is for waiting until Valkey 8's replicas, which
/// copy their master's marks, have caught up too (`valkey-cli --cluster check` reports a
/// replica's mark as an open slot).
#[must_use]
pub fn marks_left(views: &[NodeView]) -> bool {
    views
        .iter()
        .filter_map(NodeView::myself)
        .any(|m| !m.open_slots.is_empty())
}

/// The nodes as the result shows them.
#[must_use]
pub fn nodes_json(views: &[NodeView]) -> Vec<Value> {
    views
        .iter()
        .map(|v| {
            let me = v.myself();
            let slots: Vec<String> = me
                .map(|m| m.slots.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            let master = me
                .and_then(|m| m.master_id.clone())
                .and_then(|id| views.iter().find(|o| o.id == id).map(|o| o.addr.label()));
            json!({
                "node": v.addr.label(),
                "id": v.id,
                "role": if me.is_some_and(|m| m.master_id.is_some()) { "replica" } else { "master" },
                "master": master,
                "slots": slots,
                "slot_count": me.map_or(0, redis_utils::cluster::ClusterNode::slot_count),
                "keys": v.keys,
                "cluster_state": v.info.get("cluster_state").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}
