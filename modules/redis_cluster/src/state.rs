//! What each node says about itself and the cluster: the current state, read the same way for
//! planning, waiting and checking.

use crate::desired::NodeAddr;
use ansible_module::ModuleError;
use redis_utils::cluster::{self, ClusterNode};
use redis_utils::connection::{ConnectionError, ConnectionParams, RedisConn};
use serde_json::{Map, Value};

/// One node's own view.
pub struct NodeView {
    pub addr: NodeAddr,
    pub con: RedisConn,
    /// Its own node id.
    pub id: String,
    /// Its `CLUSTER NODES`, itself included.
    pub nodes: Vec<ClusterNode>,
    /// Its `CLUSTER INFO`.
    pub info: Map<String, Value>,
    /// Keys in all databases.
    pub keys: u64,
}

impl NodeView {
    /// `myself` in its own `CLUSTER NODES`.
    #[must_use]
    pub fn myself(&self) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.is_myself())
    }

    #[must_use]
    pub fn state_ok(&self) -> bool {
        self.info.get("cluster_state").and_then(Value::as_str) == Some("ok")
    }

    #[must_use]
    pub fn known_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Reads `CLUSTER NODES` and `CLUSTER INFO` again.
    ///
    /// # Errors
    /// The node stopped answering.
    pub fn refresh(&mut self) -> Result<(), ConnectionError> {
        self.nodes = cluster::nodes(&mut self.con)?;
        self.info = cluster::info(&mut self.con)?;
        if let Some(id) = self.myself().map(|me| me.id.clone()) {
            self.id = id;
        }
        Ok(())
    }
}

fn keys_of(info: &redis_utils::info::Info) -> u64 {
    info.section("keyspace")
        .filter_map(|(_, v)| redis_utils::info::parse_kv_list(v))
        .filter_map(|m| m.get("keys").and_then(Value::as_u64))
        .sum()
}

/// Connects to `addr` and reads its view. Fails with a message naming the node when it is
/// unreachable, rejects the credentials, or is not in cluster mode.
///
/// # Errors
/// As said.
pub fn read(conn: &ConnectionParams, addr: &NodeAddr) -> Result<NodeView, ModuleError> {
    let p = conn.for_node(&addr.host, addr.port);
    let label = addr.label();
    let mut con = p
        .connect()
        .map_err(|e| ModuleError::new(format!("node {label}: {e}")))?;
    let info = con
        .info(None)
        .map_err(|e| ModuleError::new(format!("node {label}: {e}")))?;
    if info.int("cluster_enabled") != Some(1) {
        return Err(ModuleError::new(format!(
            "node {label} is not in cluster mode (`cluster-enabled yes` is missing from its config); nothing was changed"
        )));
    }
    let keys = keys_of(&info);
    let mut v = NodeView {
        addr: addr.clone(),
        con,
        id: String::new(),
        nodes: Vec::new(),
        info: Map::new(),
        keys,
    };
    v.refresh()
        .map_err(|e| ModuleError::new(format!("node {label}: {e}")))?;
    Ok(v)
}

/// Reads every node; the first failure is the error.
///
/// # Errors
/// See [`read`].
pub fn read_all(conn: &ConnectionParams, addrs: &[NodeAddr]) -> Result<Vec<NodeView>, ModuleError> {
    addrs.iter().map(|a| read(conn, a)).collect()
}
