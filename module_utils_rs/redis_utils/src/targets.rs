//! Which servers a task acts on: the one at `login_host`, the current master of a Sentinel
//! group, or every node / every master of a Redis Cluster. Shared by the operations modules
//! (redis_command, redis_keys), built on [`crate::connection`], [`crate::sentinel`] and
//! [`crate::cluster`]: no second way to connect.
//!
//! All targets are resolved (and every one of them found usable) before a module sends anything
//! that changes data, so a cluster with a failing node is refused as a whole instead of being
//! changed on some masters only.

use crate::cluster;
use crate::connection::{ConnectionError, ConnectionParams};
use crate::sentinel;
use ansible_module::{ModuleError, Opt, Params};
use std::fmt;

/// What `targets` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A cluster node means every master; anything else means `login_host` itself.
    Auto,
    /// The server at `login_host:login_port`.
    Host,
    /// The current master of the Sentinel group `master_name`; `login_host`/`login_port` are a
    /// Sentinel's.
    Master,
    /// Every node of the cluster `login_host` belongs to (masters and replicas).
    AllNodes,
    /// Every master of the cluster `login_host` belongs to.
    Masters,
}

impl Kind {
    /// From the option's value.
    #[must_use]
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "auto" => Kind::Auto,
            "host" => Kind::Host,
            "master" => Kind::Master,
            "all_nodes" => Kind::AllNodes,
            "masters" => Kind::Masters,
            _ => return None,
        })
    }
}

/// The options that pick the targets: `targets` (with the choices and default the module
/// allows), `master_name`, and the Sentinel's own credentials.
#[must_use]
pub fn target_options(choices: &[&str], default: &str) -> Vec<Opt> {
    vec![
        Opt::str("targets").default(default).choices(choices),
        Opt::str("master_name"),
        Opt::str("sentinel_user"),
        Opt::str("sentinel_password").no_log(),
    ]
}

/// One server to act on.
#[derive(Clone, Debug)]
pub struct Target {
    pub params: ConnectionParams,
    /// `host` (targets=host), `master` or `replica`.
    pub role: String,
    /// The cluster node id, for cluster targets.
    pub node_id: Option<String>,
}

impl Target {
    /// `host:port`.
    #[must_use]
    pub fn address(&self) -> String {
        self.params.address()
    }
}

/// Why the targets could not be resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetError {
    /// The options do not make sense together.
    Options(String),
    /// A server could not be reached or refused a command.
    Connection(ConnectionError),
    /// The servers are not in the state the option needs (not a cluster, a failing node, an
    /// unknown Sentinel group).
    Topology(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Options(s) | TargetError::Topology(s) => f.write_str(s),
            TargetError::Connection(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TargetError {}

impl From<ConnectionError> for TargetError {
    fn from(e: ConnectionError) -> Self {
        TargetError::Connection(e)
    }
}

impl From<TargetError> for ModuleError {
    fn from(e: TargetError) -> Self {
        ModuleError::new(e.to_string())
    }
}

/// Reads `targets` and checks the options that go with it, without connecting.
///
/// # Errors
/// `targets=master` without `master_name`, or `master_name` with another `targets`.
pub fn kind_from_params(p: &Params) -> Result<Kind, TargetError> {
    let raw = p.str("targets").unwrap_or("host");
    let kind =
        Kind::parse(raw).ok_or_else(|| TargetError::Options(format!("unknown targets `{raw}`")))?;
    match (kind, p.str("master_name")) {
        (Kind::Master, None | Some("")) => Err(TargetError::Options(
            "targets=master needs master_name, the Sentinel group whose master to use (login_host and login_port are then a Sentinel's)".into(),
        )),
        (Kind::Master, Some(_)) | (_, None) => Ok(kind),
        (_, Some(_)) => Err(TargetError::Options(format!(
            "master_name is only used with targets=master (targets is {raw})"
        ))),
    }
}

/// The targets, and the cluster nodes left out because they are failing but hold nothing of
/// their own (see [`resolve_all`]).
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub targets: Vec<Target>,
    /// `host:port (id): why`, for a warning.
    pub skipped: Vec<String>,
}

/// The servers to act on, every one of them checked usable (see [`resolve_all`]).
///
/// # Errors
/// See [`TargetError`]; nothing has been sent that changes anything.
pub fn resolve(p: &Params, conn: &ConnectionParams) -> Result<Vec<Target>, TargetError> {
    resolve_all(p, conn).map(|r| r.targets)
}

/// The servers to act on, every one of them checked usable, and the cluster nodes left out.
///
/// For every master of a cluster (`masters`, `auto`): a failing master that owns slots fails
/// the call (its keys are out of reach); a failing master that owns none is left out and
/// listed in `skipped` (after a failover the old master stays `master,fail` without slots
/// until it comes back or is forgotten, and must not block every later run); failing replicas
/// are no targets anyway. For every node (`all_nodes`) any failing node fails the call.
///
/// # Errors
/// See [`TargetError`]; nothing has been sent that changes anything.
pub fn resolve_all(p: &Params, conn: &ConnectionParams) -> Result<Resolved, TargetError> {
    let kind = kind_from_params(p)?;
    let only = |targets| {
        Ok(Resolved {
            targets,
            skipped: Vec::new(),
        })
    };
    match kind {
        Kind::Host => only(vec![host(conn)]),
        Kind::Auto => {
            let mut con = conn.connect()?;
            let info = con.info(Some("cluster"))?;
            if info.int("cluster_enabled") == Some(1) {
                cluster_targets(conn, true)
            } else {
                only(vec![host(conn)])
            }
        }
        Kind::Master => {
            let name = p.str("master_name").unwrap_or_default();
            let mut s = conn.clone();
            s.user = p
                .str("sentinel_user")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            s.password = p
                .str("sentinel_password")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            s.db = 0;
            let mut con = s.connect()?;
            let addr = match sentinel::master_addr(&mut con, name) {
                Ok(a) => a,
                Err(e) if sentinel::is_no_such_master(&e) => None,
                Err(e) => return Err(e.into()),
            };
            let (host, port) = addr.ok_or_else(|| {
                TargetError::Topology(format!(
                    "the Sentinel at {} does not monitor a master named `{name}`",
                    s.address()
                ))
            })?;
            only(vec![Target {
                params: conn.for_node(&host, port),
                role: "master".into(),
                node_id: None,
            }])
        }
        Kind::AllNodes => cluster_targets(conn, false),
        Kind::Masters => cluster_targets(conn, true),
    }
}

fn host(conn: &ConnectionParams) -> Target {
    Target {
        params: conn.clone(),
        role: "host".into(),
        node_id: None,
    }
}

/// Every node (or master) of the cluster that `conn` belongs to, by its `CLUSTER NODES`.
fn cluster_targets(conn: &ConnectionParams, masters_only: bool) -> Result<Resolved, TargetError> {
    if conn.db != 0 {
        return Err(TargetError::Options(format!(
            "a Redis Cluster has only database 0, login_db is {}",
            conn.db
        )));
    }
    let mut con = conn.connect()?;
    let nodes = match cluster::nodes(&mut con) {
        Ok(n) => n,
        Err(e) if e.to_string().contains("cluster support disabled") => {
            return Err(TargetError::Topology(format!(
                "{} is not in cluster mode (cluster-enabled no); use targets=host",
                conn.address()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let label = |n: &cluster::ClusterNode| format!("{} ({})", n.address(), n.id);
    let failing: Vec<String> = nodes
        .iter()
        .filter(|n| n.is_failing() && (!masters_only || (n.is_master() && n.slot_count() > 0)))
        .map(label)
        .collect();
    if !failing.is_empty() {
        return Err(TargetError::Topology(format!(
            "cluster nodes are failing or unreachable: {}; nothing was sent",
            failing.join(", ")
        )));
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for n in &nodes {
        if n.is_failing() {
            // Only with masters_only (else it failed above): a replica, or a master without
            // slots. Not contacted: it does not answer.
            if n.is_master() {
                skipped.push(format!(
                    "{}: failing, and it owns no slots (an old master after a failover?)",
                    label(n)
                ));
            }
            continue;
        }
        // A node that has not learnt its own address yet shows an empty host; it is the one we
        // asked.
        let host = if n.host.is_empty() {
            conn.host.as_str()
        } else {
            n.host.as_str()
        };
        let params = conn.for_node(host, n.port);
        // Each node's own word on its role: right after a cluster is formed or a failover,
        // the seed's gossip can still show a replica as a (slotless) master, or the reverse.
        let role = own_role(&params)?;
        if masters_only && role != "master" {
            continue;
        }
        out.push(Target {
            params,
            role,
            node_id: Some(n.id.clone()),
        });
    }
    out.sort_by_key(|t| (t.role != "master", t.params.host.clone(), t.params.port));
    Ok(Resolved {
        targets: out,
        skipped,
    })
}

/// The cluster hash slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}` when the
/// braces hold at least one character, modulo 16384), as Redis computes it (cluster.c
/// `keyHashSlot`). Keys of one multi-key command must share a slot.
#[must_use]
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % cluster::SLOTS
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `master` or `replica`, by the node's `ROLE` (on a new connection).
///
/// # Errors
/// When the node cannot be reached or answers ROLE with something else (a Sentinel).
pub fn own_role(p: &ConnectionParams) -> Result<String, TargetError> {
    let mut con = p.connect()?;
    let v = con.cmd_json(&["ROLE"])?;
    Ok(match v.get(0).and_then(serde_json::Value::as_str) {
        Some("master") => "master".into(),
        Some("slave" | "replica") => "replica".into(),
        other => {
            return Err(TargetError::Topology(format!(
                "{} answers ROLE with {other:?}",
                p.address()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::with_connection_options;
    use ansible_module::spec::validate;
    use serde_json::json;

    fn params(v: serde_json::Value) -> Params {
        let spec = with_connection_options(target_options(
            &["host", "master", "all_nodes", "masters"],
            "host",
        ));
        let m = v.as_object().cloned().unwrap_or_default();
        Params(validate(&spec, &m).map(|v| v.params).unwrap_or_default())
    }

    #[test]
    fn key_slots_as_redis_computes_them() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        // The examples of the CLUSTER KEYSLOT documentation and redis-cli's redirections; the
        // integration tests of redis_keys compare with a real server's CLUSTER KEYSLOT too.
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // Empty braces: the whole key is hashed.
        assert_eq!(key_slot(b"{}x"), crc16(b"{}x") % 16384);
        assert_eq!(key_slot(b"a{b}{c}"), key_slot(b"b"));
    }

    #[test]
    fn master_needs_a_name_and_the_name_needs_master() {
        assert!(matches!(
            kind_from_params(&params(json!({"targets": "master"}))),
            Err(TargetError::Options(m)) if m.contains("needs master_name")
        ));
        assert!(matches!(
            kind_from_params(&params(json!({"master_name": "x"}))),
            Err(TargetError::Options(m)) if m.contains("only used with targets=master")
        ));
        assert_eq!(
            kind_from_params(&params(json!({"targets": "master", "master_name": "x"}))),
            Ok(Kind::Master)
        );
        assert_eq!(kind_from_params(&params(json!({}))), Ok(Kind::Host));
    }
}
