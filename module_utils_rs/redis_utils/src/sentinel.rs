//! Typed models of Sentinel replies: `SENTINEL MASTERS` / `MASTER <name>` (a monitor and its
//! settings), `SENTINEL REPLICAS` / `SENTINELS` (its peers), `CKQUORUM`, and
//! `GET-MASTER-ADDR-BY-NAME`.
//!
//! Sentinel answers with flat `[field, value, ...]` arrays of strings; these turn them into
//! structs once, so redis_health and redis_sentinel compare the same numbers.

use crate::connection::{pairs_to_object, ConnectionError, RedisConn};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One monitored master as a Sentinel sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub flags: BTreeSet<String>,
    pub quorum: u32,
    pub down_after_milliseconds: u64,
    pub failover_timeout: u64,
    pub parallel_syncs: u32,
    pub num_replicas: u32,
    pub num_other_sentinels: u32,
    pub config_epoch: u64,
    /// Every field as Sentinel sent it, numbers typed, for what has no field above.
    pub raw: Map<String, Value>,
}

/// A replica or another Sentinel of a monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub flags: BTreeSet<String>,
    /// The replica's link to its master (`master-link-status`); empty for a Sentinel.
    pub master_link_status: String,
    pub raw: Map<String, Value>,
}

fn num<T: TryFrom<u64> + Default>(m: &Map<String, Value>, k: &str) -> T {
    m.get(k)
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|n| T::try_from(n).ok())
        .unwrap_or_default()
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `s_down`/`o_down` or `disconnected`: not usable right now.
fn down(flags: &BTreeSet<String>) -> bool {
    ["s_down", "o_down", "disconnected"]
        .iter()
        .any(|f| flags.contains(*f))
}

fn flags(m: &Map<String, Value>) -> BTreeSet<String> {
    text(m, "flags")
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

impl Monitor {
    /// From one entry of `SENTINEL MASTERS` (or the reply of `SENTINEL MASTER <name>`).
    #[must_use]
    pub fn from_reply(v: &Value) -> Monitor {
        let m = pairs_to_object(v);
        Monitor {
            name: text(&m, "name"),
            host: text(&m, "ip"),
            port: num(&m, "port"),
            flags: flags(&m),
            quorum: num(&m, "quorum"),
            down_after_milliseconds: num(&m, "down-after-milliseconds"),
            failover_timeout: num(&m, "failover-timeout"),
            parallel_syncs: num(&m, "parallel-syncs"),
            num_replicas: num(&m, "num-slaves"),
            num_other_sentinels: num(&m, "num-other-sentinels"),
            config_epoch: num(&m, "config-epoch"),
            raw: m,
        }
    }

    /// `s_down`/`o_down` or `disconnected`: the master is not usable right now.
    #[must_use]
    pub fn is_down(&self) -> bool {
        down(&self.flags)
    }
}

impl Peer {
    #[must_use]
    pub fn from_reply(v: &Value) -> Peer {
        let m = pairs_to_object(v);
        Peer {
            name: text(&m, "name"),
            host: text(&m, "ip"),
            port: num(&m, "port"),
            flags: flags(&m),
            master_link_status: text(&m, "master-link-status"),
            raw: m,
        }
    }

    #[must_use]
    pub fn is_down(&self) -> bool {
        down(&self.flags)
    }
}

fn list(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// `SENTINEL MASTERS`.
///
/// # Errors
/// The command failed (not a Sentinel, connection lost).
pub fn masters(con: &mut RedisConn) -> Result<Vec<Monitor>, ConnectionError> {
    let v = con.cmd_json(&["SENTINEL", "MASTERS"])?;
    Ok(list(&v).into_iter().map(Monitor::from_reply).collect())
}

/// `SENTINEL MASTER <name>`; `Ok(None)` when this Sentinel does not monitor `name`.
///
/// # Errors
/// Any other failure.
pub fn master(con: &mut RedisConn, name: &str) -> Result<Option<Monitor>, ConnectionError> {
    match con.cmd_json(&["SENTINEL", "MASTER", name]) {
        Ok(v) => Ok(Some(Monitor::from_reply(&v))),
        Err(e) if is_no_such_master(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `SENTINEL REPLICAS <name>`.
///
/// # Errors
/// The command failed, `name` included.
pub fn replicas(con: &mut RedisConn, name: &str) -> Result<Vec<Peer>, ConnectionError> {
    let v = con.cmd_json(&["SENTINEL", "REPLICAS", name])?;
    Ok(list(&v).into_iter().map(Peer::from_reply).collect())
}

/// `SENTINEL SENTINELS <name>`: the other Sentinels (not this one).
///
/// # Errors
/// The command failed, `name` included.
pub fn sentinels(con: &mut RedisConn, name: &str) -> Result<Vec<Peer>, ConnectionError> {
    let v = con.cmd_json(&["SENTINEL", "SENTINELS", name])?;
    Ok(list(&v).into_iter().map(Peer::from_reply).collect())
}

/// The verdict of `SENTINEL CKQUORUM <name>`: `Ok(Ok(text))` when the quorum and the majority
/// for a failover are reachable, `Ok(Err(text))` with Sentinel's reason when not.
///
/// # Errors
/// The connection failed, or `name` is not monitored.
pub fn ckquorum(
    con: &mut RedisConn,
    name: &str,
) -> Result<Result<String, String>, ConnectionError> {
    match con.cmd::<String>(&["SENTINEL", "CKQUORUM", name]) {
        Ok(s) => Ok(Ok(s)),
        Err(e @ ConnectionError::Command { .. }) if !is_no_such_master(&e) => {
            let ConnectionError::Command { detail, .. } = e else {
                unreachable!("matched above")
            };
            Ok(Err(detail))
        }
        Err(e) => Err(e),
    }
}

/// The current master address `(host, port)` of `name`, as Sentinel would tell a client.
///
/// # Errors
/// The connection failed.
pub fn master_addr(
    con: &mut RedisConn,
    name: &str,
) -> Result<Option<(String, u16)>, ConnectionError> {
    let v = con.cmd_json(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name])?;
    Ok(match v.as_array().map(Vec::as_slice) {
        Some([Value::String(h), Value::String(p)]) => p.parse().ok().map(|p| (h.clone(), p)),
        _ => None,
    })
}

/// Sentinel's "No such master with that name".
#[must_use]
pub fn is_no_such_master(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::Command { detail, .. } if detail.contains("No such master"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn monitor_from_flat_reply() {
        let reply = json!([
            "name",
            "mymaster",
            "ip",
            "127.0.0.1",
            "port",
            "6380",
            "flags",
            "master",
            "quorum",
            "2",
            "down-after-milliseconds",
            "5000",
            "failover-timeout",
            "60000",
            "parallel-syncs",
            "1",
            "num-slaves",
            "2",
            "num-other-sentinels",
            "2",
            "config-epoch",
            "3"
        ]);
        let m = Monitor::from_reply(&reply);
        assert_eq!(m.name, "mymaster");
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 6380));
        assert_eq!(
            (m.quorum, m.down_after_milliseconds, m.failover_timeout),
            (2, 5000, 60000)
        );
        assert_eq!(
            (m.parallel_syncs, m.num_replicas, m.num_other_sentinels),
            (1, 2, 2)
        );
        assert_eq!(m.config_epoch, 3);
        assert!(!m.is_down());
        let down = Monitor::from_reply(&json!(["name", "x", "flags", "master,s_down,o_down"]));
        assert!(down.is_down());
    }

    #[test]
    fn peer_from_flat_reply() {
        let p = Peer::from_reply(&json!([
            "name",
            "127.0.0.1:6381",
            "ip",
            "127.0.0.1",
            "port",
            "6381",
            "flags",
            "slave",
            "master-link-status",
            "ok"
        ]));
        assert_eq!(p.port, 6381);
        assert_eq!(p.master_link_status, "ok");
        assert!(p.flags.contains("slave"));
    }
}
