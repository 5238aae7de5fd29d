//! Typed models of Redis Cluster replies: `CLUSTER NODES` lines, slot ranges and open
//! (migrating/importing) slots, `CLUSTER INFO`, and the slot-map signature nodes agree on.
//!
//! One parser for redis_health's checks and for redis_cluster's planning, so that "which master
//! owns which slots" means the same thing everywhere.

use crate::connection::{ConnectionError, RedisConn};
use crate::info::Info;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The number of hash slots.
pub const SLOTS: u16 = 16384;

/// An inclusive range of slots, `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    /// How many slots the range holds.
    #[must_use]
    pub fn len(self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Never true: a range holds at least its start slot.
    #[must_use]
    pub fn is_empty(self) -> bool {
        false
    }
}

impl std::fmt::Display for SlotRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A slot being moved, as the node that prints the line sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenSlot {
    /// `[slot->-node]`: this node is migrating `slot` to `node`.
    Migrating { slot: u16, to: String },
    /// `[slot-<-node]`: this node is importing `slot` from `node`.
    Importing { slot: u16, from: String },
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    /// The announced IP (empty for a node that has not learned its own address yet).
    pub host: String,
    pub port: u16,
    /// The cluster bus port (`@cport`).
    pub bus_port: u16,
    /// `cluster-announce-hostname`, when the node announces one.
    pub hostname: Option<String>,
    pub flags: BTreeSet<String>,
    /// The master's id for a replica; `None` for a master.
    pub master_id: Option<String>,
    pub config_epoch: u64,
    /// `connected` or `disconnected`.
    pub link: String,
    pub slots: Vec<SlotRange>,
    pub open_slots: Vec<OpenSlot>,
}

impl ClusterNode {
    #[must_use]
    pub fn is_master(&self) -> bool {
        self.flags.contains("master")
    }

    #[must_use]
    pub fn is_myself(&self) -> bool {
        self.flags.contains("myself")
    }

    /// `fail` or `fail?` (PFAIL), or `noaddr`/`handshake`: a node not usable right now.
    #[must_use]
    pub fn is_failing(&self) -> bool {
        ["fail", "fail?", "noaddr", "handshake"]
            .iter()
            .any(|f| self.flags.contains(*f))
    }

    /// `host:port`, IPv6 in brackets.
    #[must_use]
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// How many slots this node owns.
    #[must_use]
    pub fn slot_count(&self) -> u32 {
        self.slots.iter().map(|r| r.len()).sum()
    }

    /// Parses one line; `None` for a line that is not a node.
    #[must_use]
    pub fn parse(line: &str) -> Option<ClusterNode> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        // ip:port@cport[,hostname]
        let (addr, hostname) = match f[1].split_once(',') {
            Some((a, h)) => (a, (!h.is_empty()).then(|| h.to_string())),
            None => (f[1], None),
        };
        let (hostport, bus) = addr.split_once('@').unwrap_or((addr, ""));
        let (host, port) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut slots = Vec::new();
        let mut open_slots = Vec::new();
        for s in &f[8..] {
            if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                if let Some((slot, to)) = inner.split_once("->-") {
                    open_slots.push(OpenSlot::Migrating {
                        slot: slot.parse().ok()?,
                        to: to.to_string(),
                    });
                } else if let Some((slot, from)) = inner.split_once("-<-") {
                    open_slots.push(OpenSlot::Importing {
                        slot: slot.parse().ok()?,
                        from: from.to_string(),
                    });
                }
            } else if let Some((a, b)) = s.split_once('-') {
                slots.push(SlotRange {
                    start: a.parse().ok()?,
                    end: b.parse().ok()?,
                });
            } else {
                let n = s.parse().ok()?;
                slots.push(SlotRange { start: n, end: n });
            }
        }
        Some(ClusterNode {
            id: f[0].to_string(),
            host: host.to_string(),
            port: port.parse().ok()?,
            bus_port: bus.parse().unwrap_or(0),
            hostname,
            flags: f[2].split(',').map(str::to_string).collect(),
            master_id: (f[3] != "-").then(|| f[3].to_string()),
            config_epoch: f[6].parse().unwrap_or(0),
            link: f[7].to_string(),
            slots,
            open_slots,
        })
    }
}

/// Parses a whole `CLUSTER NODES` reply.
#[must_use]
pub fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines().filter_map(ClusterNode::parse).collect()
}

/// What a node believes: which master owns which slots. Nodes that agree have equal signatures
/// (the idea of redis-cli's config consistency check); open-slot markers are not part of it.
#[must_use]
pub fn signature(nodes: &[ClusterNode]) -> String {
    let mut parts: Vec<String> = nodes
        .iter()
        .filter(|n| n.is_master() && !n.slots.is_empty())
        .map(|n| {
            let mut s: Vec<SlotRange> = n.slots.clone();
            s.sort_unstable();
            let s: Vec<String> = s.iter().map(ToString::to_string).collect();
            format!("{}:{}", n.id, s.join(","))
        })
        .collect();
    parts.sort();
    parts.join("|")
}

/// The slots no node claims, as ranges.
#[must_use]
pub fn uncovered(nodes: &[ClusterNode]) -> Vec<SlotRange> {
    let mut owned = vec![false; usize::from(SLOTS)];
    for r in nodes
        .iter()
        .filter(|n| n.is_master())
        .flat_map(|n| &n.slots)
    {
        for s in r.start..=r.end.min(SLOTS - 1) {
            owned[usize::from(s)] = true;
        }
    }
    let mut out = Vec::new();
    let mut start = None;
    for (i, o) in owned.iter().enumerate() {
        let i = u16::try_from(i).unwrap_or(SLOTS - 1);
        match (o, start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push(SlotRange {
                    start: s,
                    end: i - 1,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(SlotRange {
            start: s,
            end: SLOTS - 1,
        });
    }
    out
}

/// `CLUSTER INFO` as an object, numbers as numbers.
#[must_use]
pub fn parse_info(text: &str) -> Map<String, Value> {
    Info::parse(text).to_json()
}

/// `CLUSTER NODES` of the node behind `con`.
///
/// # Errors
/// The command failed (not a cluster node, connection lost).
pub fn nodes(con: &mut RedisConn) -> Result<Vec<ClusterNode>, ConnectionError> {
    let text: String = con.cmd(&["CLUSTER", "NODES"])?;
    Ok(parse_nodes(&text))
}

/// `CLUSTER INFO` of the node behind `con`.
///
/// # Errors
/// The command failed.
pub fn info(con: &mut RedisConn) -> Result<Map<String, Value>, ConnectionError> {
    let text: String = con.cmd(&["CLUSTER", "INFO"])?;
    Ok(parse_info(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,node-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 slave,fail,noaddr 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 1426238316232 1426238316232 5 disconnected
";

    #[test]
    fn parses_every_field() {
        let n = parse_nodes(NODES);
        assert_eq!(n.len(), 5);
        assert_eq!(n[0].hostname.as_deref(), Some("node-4"));
        assert_eq!(
            n[0].master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!((n[0].port, n[0].bus_port), (30004, 31004));
        assert!(!n[0].is_master());
        let me = &n[3];
        assert!(me.is_myself() && me.is_master());
        assert_eq!(
            me.slots,
            vec![SlotRange {
                start: 0,
                end: 5460
            }]
        );
        assert_eq!(me.slot_count(), 5461);
        assert_eq!(
            me.open_slots,
            vec![
                OpenSlot::Importing {
                    slot: 5461,
                    from: "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1".into()
                },
                OpenSlot::Migrating {
                    slot: 93,
                    to: "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f".into()
                }
            ]
        );
        assert!(n[4].is_failing());
        assert_eq!(n[4].link, "disconnected");
        assert_eq!(n[2].config_epoch, 3);
    }

    #[test]
    fn coverage_and_signature() {
        let n = parse_nodes(NODES);
        assert!(uncovered(&n).is_empty());
        let partial: Vec<ClusterNode> = n.iter().filter(|x| x.port != 30002).cloned().collect();
        assert_eq!(
            uncovered(&partial),
            vec![SlotRange {
                start: 5461,
                end: 10922
            }]
        );
        let mut reversed = n.clone();
        reversed.reverse();
        reversed[1].open_slots.clear();
        assert_eq!(signature(&n), signature(&reversed));
        assert_ne!(signature(&n), signature(&partial));
        assert_eq!(SlotRange { start: 7, end: 7 }.to_string(), "7");
    }
}
