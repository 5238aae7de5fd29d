//! The layout of a new cluster: which nodes are masters, which slots each gets, which master
//! each replica follows. Pure, so check mode shows exactly what a real run does.
//!
//! Anti-affinity: masters are picked round-robin over hosts (so they spread over hosts), and
//! each replica goes to a master on another host whenever the inventory allows it: a host that
//! dies then never takes a master and its only replica with it.

use crate::desired::NodeAddr;
use redis_utils::cluster::{SlotRange, SLOTS};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The planned cluster: indexes into the node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// (node index, its slots), in slot order.
    pub masters: Vec<(usize, SlotRange)>,
    /// (replica node index, master node index).
    pub replicas: Vec<(usize, usize)>,
    /// Replicas that could only be placed on their master's host.
    pub same_host_replicas: usize,
}

impl Layout {
    /// The plan as the result shows it.
    #[must_use]
    pub fn to_json(&self, nodes: &[NodeAddr]) -> Value {
        let masters: Vec<Value> = self
            .masters
            .iter()
            .map(|(i, r)| {
                let reps: Vec<String> = self
                    .replicas
                    .iter()
                    .filter(|(_, m)| m == i)
                    .map(|(rep, _)| nodes[*rep].label())
                    .collect();
                json!({"node": nodes[*i].label(), "slots": r.to_string(), "slot_count": r.len(), "replicas": reps})
            })
            .collect();
        json!({"masters": masters, "same_host_replicas": self.same_host_replicas})
    }
}

/// Splits the 16384 slots into `n` contiguous, nearly equal ranges.
#[must_use]
pub fn split_slots(n: usize) -> Vec<SlotRange> {
    let total = usize::from(SLOTS);
    (0..n)
        .map(|i| SlotRange {
            start: u16::try_from(i * total / n).unwrap_or(0),
            end: u16::try_from((i + 1) * total / n - 1).unwrap_or(SLOTS - 1),
        })
        .collect()
}

/// Node indexes interleaved by host: one from each host in turn.
fn interleaved(nodes: &[NodeAddr]) -> Vec<usize> {
    let mut by_host: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        by_host.entry(n.ip).or_default().push(i);
    }
    // Hosts with more nodes first, so that the spread stays even to the end.
    let mut queues: Vec<Vec<usize>> = by_host.into_values().collect();
    queues.sort_by_key(|q| std::cmp::Reverse(q.len()));
    let mut out = Vec::with_capacity(nodes.len());
    let mut round = 0;
    while out.len() < nodes.len() {
        for q in &queues {
            if let Some(i) = q.get(round) {
                out.push(*i);
            }
        }
        round += 1;
    }
    out
}

/// Plans masters, slots and replicas for `nodes` with `masters` masters.
#[must_use]
pub fn layout(nodes: &[NodeAddr], masters: usize) -> Layout {
    let order = interleaved(nodes);
    let (master_idx, rest) = order.split_at(masters.min(order.len()));
    let slots = split_slots(master_idx.len());
    // Replica j follows master (j + shift) mod M: every master gets its share, and of the M
    // possible shifts the one that puts the fewest replicas on their master's host wins. With
    // nodes interleaved by host this finds a placement without any whenever one exists for
    // the usual inventories (N hosts with the same number of nodes each).
    let m = master_idx.len().max(1);
    let assign = |shift: usize| -> Vec<(usize, usize)> {
        rest.iter()
            .enumerate()
            .map(|(j, &r)| (r, master_idx[(j + shift) % m]))
            .collect()
    };
    let violations = |a: &[(usize, usize)]| {
        a.iter()
            .filter(|(r, mm)| nodes[*r].ip == nodes[*mm].ip)
            .count()
    };
    let replicas = (0..m)
        .map(assign)
        .min_by_key(|a| violations(a))
        .unwrap_or_default();
    let same_host = violations(&replicas);
    Layout {
        masters: master_idx.iter().copied().zip(slots).collect(),
        replicas,
        same_host_replicas: same_host,
    }
}

/// A master's share in a rebalance: its slots now and its weight (0 drains it).
#[derive(Clone, Debug)]
pub struct Share {
    pub peer: crate::reshard::Peer,
    pub slots: Vec<u16>,
    pub weight: f64,
}

/// The slot targets for `weights`: proportional, summing to 16384 (largest remainders first).
#[must_use]
pub fn targets(weights: &[f64]) -> Vec<usize> {
    let total = usize::from(SLOTS);
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 {
        return vec![0; weights.len()];
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut out: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        (exact[*b] - exact[*b].floor())
            .partial_cmp(&(exact[*a] - exact[*a].floor()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut left = total - out.iter().sum::<usize>();
    for i in order.into_iter().filter(|i| weights[*i] > 0.0) {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// The moves that bring every master to its target. With `threshold` (percent), nothing moves
/// unless some master is further than that from its target, or a master must be drained or
/// filled from empty (as redis-cli's `--cluster-threshold`, default 2).
#[must_use]
pub fn rebalance(shares: &[Share], threshold: f64) -> Vec<crate::reshard::Move> {
    let weights: Vec<f64> = shares.iter().map(|s| s.weight).collect();
    let target = targets(&weights);
    let must = shares
        .iter()
        .zip(&target)
        .any(|(s, t)| (*t == 0 && !s.slots.is_empty()) || (*t > 0 && s.slots.is_empty()));
    #[allow(clippy::cast_precision_loss)]
    let over = shares.iter().zip(&target).any(|(s, t)| {
        let t = *t as f64;
        t > 0.0 && ((s.slots.len() as f64 - t).abs() / t * 100.0) > threshold
    });
    if !must && !over {
        return Vec::new();
    }
    // Surplus slots, taken from the end of each source's list (its ranges stay contiguous).
    let mut surplus: Vec<(usize, Vec<u16>)> = Vec::new();
    let mut deficit: Vec<(usize, usize)> = Vec::new();
    for (i, (s, t)) in shares.iter().zip(&target).enumerate() {
        let mut slots = s.slots.clone();
        slots.sort_unstable();
        if slots.len() > *t {
            surplus.push((i, slots.split_off(*t)));
        } else if slots.len() < *t {
            deficit.push((i, t - slots.len()));
        }
    }
    let mut moves: Vec<crate::reshard::Move> = Vec::new();
    let mut src_iter = surplus.into_iter();
    let mut current = src_iter.next();
    for (dst, mut need) in deficit {
        while need > 0 {
            let Some((src, slots)) = current.as_mut() else {
                break;
            };
            let take = need.min(slots.len());
            let moved: Vec<u16> = slots.drain(..take).collect();
            need -= take;
            if !moved.is_empty() {
                moves.push(crate::reshard::Move {
                    from: shares[*src].peer.clone(),
                    to: shares[dst].peer.clone(),
                    slots: moved,
                });
            }
            if slots.is_empty() {
                current = src_iter.next();
            }
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ip: &str, port: u16) -> NodeAddr {
        NodeAddr {
            host: ip.into(),
            port,
            ip: ip.parse().expect("ip"),
        }
    }

    #[test]
    fn slots_cover_everything_once() {
        for n in 1..20 {
            let s = split_slots(n);
            assert_eq!(s[0].start, 0);
            assert_eq!(s[n - 1].end, SLOTS - 1);
            assert_eq!(s.iter().map(|r| r.len()).sum::<u32>(), u32::from(SLOTS));
            for w in s.windows(2) {
                assert_eq!(w[0].end + 1, w[1].start);
            }
        }
        assert_eq!(
            split_slots(3)[0],
            SlotRange {
                start: 0,
                end: 5460
            }
        );
    }

    #[test]
    fn three_hosts_two_nodes_each_have_no_replica_on_its_masters_host() {
        let nodes: Vec<NodeAddr> = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
            .iter()
            .flat_map(|h| [node(h, 7000), node(h, 7001)])
            .collect();
        let l = layout(&nodes, 3);
        assert_eq!(l.masters.len(), 3);
        assert_eq!(l.replicas.len(), 3);
        assert_eq!(l.same_host_replicas, 0);
        let master_hosts: Vec<IpAddr> = l.masters.iter().map(|(i, _)| nodes[*i].ip).collect();
        let mut unique = master_hosts.clone();
        unique.dedup();
        assert_eq!(unique.len(), 3, "masters spread over the hosts");
        for (r, m) in &l.replicas {
            assert_ne!(nodes[*r].ip, nodes[*m].ip);
        }
        // Each master has exactly one replica.
        for (m, _) in &l.masters {
            assert_eq!(l.replicas.iter().filter(|(_, mm)| mm == m).count(), 1);
        }
    }

    #[test]
    fn one_host_places_replicas_and_says_so() {
        let nodes: Vec<NodeAddr> = (0..6).map(|i| node("127.0.0.1", 7000 + i)).collect();
        let l = layout(&nodes, 3);
        assert_eq!(l.replicas.len(), 3);
        assert_eq!(l.same_host_replicas, 3);
    }

    fn share(id: &str, slots: std::ops::Range<u16>, weight: f64) -> Share {
        Share {
            peer: crate::reshard::Peer {
                host: "127.0.0.1".into(),
                port: 7000,
                id: id.into(),
            },
            slots: slots.collect(),
            weight,
        }
    }

    #[test]
    fn rebalance_fills_new_masters_and_drains_weight_zero() {
        let three = [
            share("a", 0..5461, 1.0),
            share("b", 5461..10922, 1.0),
            share("c", 10922..16384, 1.0),
        ];
        // Balanced: nothing to do.
        assert!(rebalance(&three, 2.0).is_empty());
        // Two new empty masters: each ends up with a fifth.
        let mut five = three.to_vec();
        five.push(share("d", 0..0, 1.0));
        five.push(share("e", 0..0, 1.0));
        let moves = rebalance(&five, 2.0);
        let to = |id: &str| {
            moves
                .iter()
                .filter(|m| m.to.id == id)
                .map(|m| m.slots.len())
                .sum::<usize>()
        };
        assert!(
            (6553..=6554).contains(&(to("d") + to("e"))),
            "{}",
            to("d") + to("e")
        );
        assert!(to("d").abs_diff(to("e")) <= 1);
        // Every slot moves at most once, and only from its owner.
        let mut all: Vec<u16> = moves.iter().flat_map(|m| m.slots.clone()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        // Draining: weight 0 gives everything away.
        let mut drain = three.to_vec();
        drain[1].weight = 0.0;
        let moves = rebalance(&drain, 2.0);
        assert_eq!(
            moves
                .iter()
                .filter(|m| m.from.id == "b")
                .map(|m| m.slots.len())
                .sum::<usize>(),
            5461
        );
        assert!(moves.iter().all(|m| m.to.id != "b"));
        assert_eq!(targets(&[1.0, 1.0, 0.0]).iter().sum::<usize>(), 16384);
    }
}
