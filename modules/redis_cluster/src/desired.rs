//! The desired state: which nodes, how many replicas per master, checked before any node is
//! contacted.

use ansible_module::{ModuleError, Params};
use std::net::{IpAddr, ToSocketAddrs};

/// One node as the task names it, with the IP address `CLUSTER MEET` needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeAddr {
    /// As given (a name or an address): what connections use.
    pub host: String,
    pub port: u16,
    /// The address `host` resolves to (MEET takes only IP addresses).
    pub ip: IpAddr,
}

impl NodeAddr {
    #[must_use]
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What the task asks for.
#[derive(Clone, Debug)]
pub struct Desired {
    pub nodes: Vec<NodeAddr>,
    pub replicas: usize,
}

/// Parses `host:port` or `[v6]:port`.
///
/// # Errors
/// Not of that form, a port out of range, a line break or NUL, a name that does not resolve.
pub fn parse_node(s: &str) -> Result<NodeAddr, ModuleError> {
    if s.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return Err(ModuleError::new(format!(
            "nodes: `{}` contains white space or a control character",
            s.escape_debug()
        )));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| bad(s))?;
        (h, p)
    } else {
        s.rsplit_once(':').ok_or_else(|| bad(s))?
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0 && *p <= 55_535)
        .ok_or_else(|| {
            ModuleError::new(format!(
                "nodes: `{s}`: the port must be between 1 and 55535 (the cluster bus is port + 10000)"
            ))
        })?;
    if host.is_empty() {
        return Err(bad(s));
    }
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
            .ok_or_else(|| ModuleError::new(format!("nodes: cannot resolve the host of `{s}`")))?,
    };
    Ok(NodeAddr {
        host: host.to_string(),
        port,
        ip,
    })
}

fn bad(s: &str) -> ModuleError {
    ModuleError::new(format!(
        "nodes: `{s}` is not of the form host:port (or [ipv6]:port)"
    ))
}

/// Reads the desired state.
///
/// # Errors
/// Bad or duplicate nodes, or more replicas than the nodes allow (at least 3 masters).
pub fn from_params(p: &Params) -> Result<Desired, ModuleError> {
    let mut nodes = Vec::new();
    for s in p.str_list("nodes").unwrap_or_default() {
        let n = parse_node(&s)?;
        if nodes
            .iter()
            .any(|o: &NodeAddr| o.ip == n.ip && o.port == n.port)
        {
            return Err(ModuleError::new(format!("nodes: `{s}` is listed twice")));
        }
        nodes.push(n);
    }
    let replicas = usize::try_from(p.int("replicas").unwrap_or(0))
        .map_err(|_| ModuleError::new("replicas must not be negative"))?;
    Ok(Desired { nodes, replicas })
}

/// How many masters `n` nodes make with `replicas` per master.
///
/// # Errors
/// Fewer than 3 masters, or nodes left over that fit no master.
pub fn masters_for(n: usize, replicas: usize) -> Result<usize, ModuleError> {
    let masters = n / (replicas + 1);
    if masters < 3 {
        return Err(ModuleError::new(format!(
            "{n} nodes with {replicas} replica(s) per master make {masters} master(s); a cluster needs at least 3 masters, so at least {} nodes",
            3 * (replicas + 1)
        )));
    }
    Ok(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_forms() {
        let n = parse_node("127.0.0.1:7000").expect("ok");
        assert_eq!((n.host.as_str(), n.port), ("127.0.0.1", 7000));
        let n = parse_node("[::1]:7001").expect("ok");
        assert_eq!(n.label(), "[::1]:7001");
        assert_eq!(parse_node("localhost:7002").expect("ok").port, 7002);
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:60000",
            ":7000",
            "a\n:1",
            "x y:1",
        ] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn master_counts() {
        assert_eq!(masters_for(6, 1).ok(), Some(3));
        assert_eq!(masters_for(3, 0).ok(), Some(3));
        assert_eq!(masters_for(7, 1).ok(), Some(3));
        assert!(masters_for(5, 1).is_err_and(|e| e.msg.contains("at least 6 nodes")));
    }
}
