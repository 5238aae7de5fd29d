//! `creativeflow.redis.redis_keys`: the keys that match a pattern, counted and listed
//! (`state: present`) or deleted (`state: absent`), on one server, a Sentinel group's master, or
//! every master of a Cluster.
//!
//! Shape: desired state ([`Desired`], checked before connecting: a delete with a pattern that
//! matches everything needs `force`), a plan per batch (SCAN with MATCH/COUNT/TYPE, then the
//! TTL / idle-time filters, pipelined), then apply (UNLINK of the batch). Only SCAN, never KEYS:
//! each command the server runs handles at most about `batch_size` keys, so no single command
//! blocks the server for long.

use ansible_module::{Module, ModuleDef, ModuleError, Opt, Outcome};
use redis_utils::connection::{with_connection_options, ConnectionParams, RedisConn};
use redis_utils::reply_json;
use redis_utils::targets::{self, Target};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Instant;

/// The largest `batch_size`: SCAN COUNT and the keys per UNLINK.
pub const MAX_BATCH: i64 = 100_000;
/// The largest `limit` (keys listed in the result).
pub const MAX_LIMIT: i64 = 1_000_000;
/// The value types SCAN TYPE filters on.
pub const TYPES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// The module's identity and argument spec (documented in plugins/modules/redis_keys.py).
#[must_use]
pub fn definition() -> ModuleDef {
    let mut own = vec![
        Opt::str("pattern").required(),
        Opt::str("state")
            .default("present")
            .choices(&["present", "absent"]),
        Opt::str("type").choices(&TYPES),
        Opt::int("limit").default(100),
        Opt::int("batch_size").default(1000),
        Opt::int("min_idle"),
        Opt::bool("persistent"),
        Opt::int("min_ttl"),
        Opt::int("max_ttl"),
        Opt::bool("force").default(false),
    ];
    own.extend(targets::target_options(
        &["auto", "host", "master", "masters"],
        "auto",
    ));
    let spec = with_connection_options(own)
        .mutually_exclusive(&["persistent", "min_ttl"])
        .mutually_exclusive(&["persistent", "max_ttl"]);
    ModuleDef {
        name: "redis_keys",
        spec,
        supports_check_mode: true,
    }
}

/// The task, from its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub pattern: String,
    pub delete: bool,
    pub key_type: Option<String>,
    pub limit: usize,
    pub batch: usize,
    pub min_idle: Option<i64>,
    pub persistent: Option<bool>,
    pub min_ttl: Option<i64>,
    pub max_ttl: Option<i64>,
}

impl Desired {
    /// True when a key's TTL must be read to decide whether it matches.
    #[must_use]
    pub fn filters_ttl(&self) -> bool {
        self.persistent.is_some() || self.min_ttl.is_some() || self.max_ttl.is_some()
    }

    /// Whether a key with this `TTL` reply (seconds, -1 for none) passes the TTL filters.
    #[must_use]
    pub fn ttl_passes(&self, ttl: i64) -> bool {
        match self.persistent {
            Some(true) => return ttl == -1,
            Some(false) => return ttl >= 0,
            None => {}
        }
        if self.min_ttl.is_none() && self.max_ttl.is_none() {
            return true;
        }
        ttl >= 0 && self.min_ttl.is_none_or(|m| ttl >= m) && self.max_ttl.is_none_or(|m| ttl <= m)
    }
}

/// True when `pattern` has no literal character: every character is a wildcard (`*`, `?`) or
/// inside a `[...]` class, so it matches every key, or every key of some length or first
/// letter (`*`, `**`, `?*`, `[a-z]*`). A `\`-escaped character is literal.
#[must_use]
pub fn matches_everything(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => {}
            '[' => {
                // Up to the closing bracket; Redis' glob treats an unclosed class as reaching the
                // end of the pattern.
                let mut prev_escape = false;
                for d in chars.by_ref() {
                    if prev_escape {
                        prev_escape = false;
                    } else if d == '\\' {
                        prev_escape = true;
                    } else if d == ']' {
                        break;
                    }
                }
            }
            _ => return false,
        }
    }
    true
}

fn opt_int(m: &Module, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, ModuleError> {
    match m.params.int(k) {
        Some(v) if !(lo..=hi).contains(&v) => Err(ModuleError::new(format!(
            "{k} must be between {lo} and {hi}, got {v}; nothing was done"
        ))),
        v => Ok(v),
    }
}

/// Reads and checks the options, before connecting.
///
/// # Errors
/// An empty pattern, a value out of range, a delete of everything without `force`.
pub fn desired(m: &Module) -> Result<Desired, ModuleError> {
    let pattern = m.params.str("pattern").unwrap_or_default().to_string();
    if pattern.is_empty() {
        return Err(ModuleError::new(
            "pattern is empty: give a glob such as `session:*`; nothing was done",
        ));
    }
    let delete = m.params.str("state") == Some("absent");
    if delete && matches_everything(&pattern) && !m.params.flag("force") {
        return Err(ModuleError::new(format!(
            "pattern `{pattern}` has no literal character, so it matches every key (of the database, or of every master): deleting with it needs force: true; nothing was deleted"
        )));
    }
    let limit = opt_int(m, "limit", 0, MAX_LIMIT)?.unwrap_or(100);
    let batch = opt_int(m, "batch_size", 1, MAX_BATCH)?.unwrap_or(1000);
    let min_idle = opt_int(m, "min_idle", 0, i64::from(u32::MAX))?;
    let min_ttl = opt_int(m, "min_ttl", 0, i64::MAX)?;
    let max_ttl = opt_int(m, "max_ttl", 0, i64::MAX)?;
    if let (Some(a), Some(b)) = (min_ttl, max_ttl) {
        if a > b {
            return Err(ModuleError::new(format!(
                "min_ttl ({a}) is larger than max_ttl ({b}): no key could match; nothing was done"
            )));
        }
    }
    Ok(Desired {
        pattern,
        delete,
        key_type: m.params.str("type").map(str::to_string),
        limit: usize::try_from(limit).unwrap_or(0),
        batch: usize::try_from(batch).unwrap_or(1000),
        min_idle,
        persistent: m.params.bool("persistent"),
        min_ttl,
        max_ttl,
    })
}

/// What one target gave.
#[derive(Debug, Default)]
struct NodeReport {
    matched: u64,
    deleted: u64,
    /// Matching keys whose names are not UTF-8: counted and listed, never deleted.
    binary: u64,
    scans: u64,
    longest_unlink_ms: f64,
}

fn as_i64(r: &Result<Value, redis_utils::connection::ConnectionError>) -> Option<i64> {
    r.as_ref().ok().and_then(Value::as_i64)
}

/// TYPE, TTL and MEMORY USAGE of `keys`, in one pipeline.
fn describe(con: &mut RedisConn, keys: &[String], node: &str) -> Result<Vec<Value>, ModuleError> {
    let mut cmds = Vec::with_capacity(keys.len() * 3);
    for k in keys {
        cmds.push(vec!["TYPE".to_string(), k.clone()]);
        cmds.push(vec!["TTL".to_string(), k.clone()]);
        cmds.push(vec!["MEMORY".to_string(), "USAGE".to_string(), k.clone()]);
    }
    let replies = con.pipeline(&cmds)?;
    Ok(keys
        .iter()
        .zip(replies.chunks(3))
        .map(|(k, r)| {
            json!({
                "key": k,
                "type": r[0].as_ref().ok().cloned().unwrap_or(Value::Null),
                "ttl": as_i64(&r[1]),
                "size": as_i64(&r[2]),
                "node": node,
            })
        })
        .collect())
}

/// The keys of one SCAN batch that pass the TTL and idle-time filters (one pipeline).
fn filter(con: &mut RedisConn, d: &Desired, keys: Vec<String>) -> Result<Vec<String>, ModuleError> {
    if !d.filters_ttl() && d.min_idle.is_none() {
        return Ok(keys);
    }
    let mut cmds = Vec::with_capacity(keys.len() * 2);
    for k in &keys {
        // OBJECT IDLETIME first: nothing here touches the key's access time anyway (TTL and
        // OBJECT look keys up without touching them).
        cmds.push(vec!["OBJECT".into(), "IDLETIME".into(), k.clone()]);
        cmds.push(vec!["TTL".into(), k.clone()]);
    }
    let replies = con.pipeline(&cmds)?;
    let mut out = Vec::new();
    for (k, r) in keys.into_iter().zip(replies.chunks(2)) {
        if let (Some(min), Err(e)) = (d.min_idle, &r[0]) {
            return Err(ModuleError::new(format!(
                "min_idle needs OBJECT IDLETIME, which failed: {e} (under an LFU maxmemory-policy Redis keeps no idle time); nothing was deleted by this batch (min_idle {min})"
            )));
        }
        let Some(ttl) = as_i64(&r[1]) else { continue };
        if ttl == -2 {
            continue; // gone since SCAN returned it
        }
        let idle_ok = d
            .min_idle
            .is_none_or(|min| as_i64(&r[0]).is_some_and(|i| i >= min));
        if idle_ok && d.ttl_passes(ttl) {
            out.push(k);
        }
    }
    Ok(out)
}

/// UNLINKs `keys` in commands of at most `batch` keys, in one pipeline (one round trip). On a
/// cluster node the keys of one command must share a hash slot (else CROSSSLOT), so there is
/// one command per slot.
fn unlink(
    con: &mut RedisConn,
    keys: &[String],
    batch: usize,
    cluster: bool,
) -> Result<u64, ModuleError> {
    let mut groups: Vec<Vec<&String>> = Vec::new();
    if cluster {
        let mut by_slot: std::collections::BTreeMap<u16, Vec<&String>> = Default::default();
        for k in keys {
            by_slot
                .entry(targets::key_slot(k.as_bytes()))
                .or_default()
                .push(k);
        }
        groups.extend(by_slot.into_values());
    } else {
        groups.push(keys.iter().collect());
    }
    let mut cmds = Vec::new();
    for g in &groups {
        for chunk in g.chunks(batch) {
            let mut c = Vec::with_capacity(chunk.len() + 1);
            c.push("UNLINK".to_string());
            c.extend(chunk.iter().map(|k| (*k).clone()));
            cmds.push(c);
        }
    }
    let mut deleted = 0;
    for r in con.pipeline(&cmds)? {
        deleted += r?.as_u64().unwrap_or(0);
    }
    Ok(deleted)
}

/// SCAN, filter, list and (unless `dry`) UNLINK on one target.
fn sweep(
    t: &Target,
    d: &Desired,
    dry: bool,
    listed: &mut Vec<Value>,
) -> Result<NodeReport, ModuleError> {
    let mut con = t.params.connect()?;
    let node = t.address();
    let count = d.batch.to_string();
    let mut rep = NodeReport::default();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let mut args = vec![
            "SCAN",
            cursor.as_str(),
            "MATCH",
            d.pattern.as_str(),
            "COUNT",
            &count,
        ];
        if let Some(ty) = &d.key_type {
            args.extend(["TYPE", ty.as_str()]);
        }
        let reply: redis::Value = con.cmd(&args)?;
        rep.scans += 1;
        let (next, names) = match reply {
            redis::Value::Array(mut a) if a.len() == 2 => {
                let names = a.pop();
                let next = a.pop();
                (next, names)
            }
            other => {
                return Err(ModuleError::new(format!(
                    "unexpected SCAN reply from {node}: {other:?}"
                )))
            }
        };
        cursor = match next {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            other => {
                return Err(ModuleError::new(format!(
                    "unexpected SCAN cursor from {node}: {other:?}"
                )))
            }
        };
        let mut batch = Vec::new();
        if let Some(redis::Value::Array(items)) = names {
            for i in items {
                let redis::Value::BulkString(b) = i else {
                    continue;
                };
                // SCAN may return a key more than once over a full iteration.
                if !seen.insert(b.clone()) {
                    continue;
                }
                match String::from_utf8(b) {
                    Ok(s) => batch.push(s),
                    Err(e) => {
                        rep.binary += 1;
                        rep.matched += 1;
                        if listed.len() < d.limit {
                            listed.push(json!({
                                "key": reply_json::bytes_to_json(e.into_bytes()),
                                "type": null, "ttl": null, "size": null, "node": node,
                            }));
                        }
                    }
                }
            }
        }
        let keys = filter(&mut con, d, batch)?;
        rep.matched += keys.len() as u64;
        let room = d.limit.saturating_sub(listed.len()).min(keys.len());
        if room > 0 {
            listed.extend(describe(&mut con, &keys[..room], &node)?);
        }
        if d.delete && !dry && !keys.is_empty() {
            let started = Instant::now();
            let n = unlink(&mut con, &keys, d.batch, t.node_id.is_some()).map_err(|e| {
                ModuleError::new(format!(
                    "{e}; deleted before it on {node}: {} keys",
                    rep.deleted
                ))
            })?;
            rep.longest_unlink_ms = rep
                .longest_unlink_ms
                .max(started.elapsed().as_secs_f64() * 1000.0);
            rep.deleted += n;
        }
        if cursor == "0" {
            break;
        }
    }
    Ok(rep)
}

/// The module body.
///
/// # Errors
/// Bad input (nothing is deleted), an unreachable target, a failing cluster node (nothing is
/// deleted), an error reply.
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let d = desired(m)?;
    let conn = ConnectionParams::from_params(&m.params)?;
    let resolved = targets::resolve_all(&m.params, &conn)?;
    for s in &resolved.skipped {
        m.warn(format!("cluster node left out: {s}"));
    }
    let targets = resolved.targets;
    // Every target must be reachable before the first key is deleted.
    for t in &targets {
        t.params.connect()?;
    }
    let dry = m.check_mode;
    let mut listed = Vec::new();
    let mut nodes = Vec::new();
    let (mut matched, mut deleted, mut binary, mut longest) = (0u64, 0u64, 0u64, 0f64);
    for t in &targets {
        let r = sweep(t, &d, dry, &mut listed).map_err(|e| {
            let mut msg = e.msg;
            if deleted > 0 {
                msg.push_str(&format!("; {deleted} keys had been deleted on other nodes"));
            }
            ModuleError::new(msg)
                .with("changed", deleted > 0)
                .with("deleted", deleted)
        })?;
        matched += r.matched;
        deleted += r.deleted;
        binary += r.binary;
        longest = longest.max(r.longest_unlink_ms);
        let mut n = Map::new();
        n.insert("node".into(), json!(t.address()));
        n.insert("role".into(), json!(t.role));
        n.insert("count".into(), json!(r.matched));
        n.insert("scans".into(), json!(r.scans));
        if d.delete {
            n.insert("deleted".into(), json!(r.deleted));
        }
        nodes.push(Value::Object(n));
    }
    if binary > 0 {
        m.warn(format!(
            "{binary} matching keys have names that are not UTF-8: they are counted and listed (as base64) but {}",
            if d.delete { "were not deleted (this module sends key names as text)" } else { "their type, TTL and size are not read" }
        ));
    }
    let deletable = matched - binary;
    let changed = d.delete && if dry { deletable > 0 } else { deleted > 0 };
    let truncated = matched > listed.len() as u64;
    let mut o = Outcome::new(changed)
        .with("count", matched)
        .with("found", &listed)
        .with("truncated", truncated)
        .with("nodes", &nodes);
    if d.delete {
        o = o
            .with("deleted", deleted)
            .with("longest_unlink_ms", (longest * 1000.0).round() / 1000.0);
    }
    let where_ = targets
        .iter()
        .map(Target::address)
        .collect::<Vec<_>>()
        .join(", ");
    let msg = match (d.delete, dry) {
        (false, _) => format!("{matched} keys match `{}` on {where_}", d.pattern),
        (true, true) => format!(
            "check mode: would delete {deletable} keys matching `{}` on {where_}",
            d.pattern
        ),
        (true, false) => format!(
            "deleted {deleted} keys matching `{}` on {where_}",
            d.pattern
        ),
    };
    Ok(o.msg(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_everything_means_no_literal_character() {
        for p in ["*", "**", "?*", "*?*", "???", "[a-z]*", "[^x]*", "[*"] {
            assert!(matches_everything(p), "{p}");
        }
        for p in ["session:*", "a*", "*:1", "\\*", "[a]x", "user?"] {
            assert!(!matches_everything(p), "{p}");
        }
    }

    #[test]
    fn ttl_filters() {
        let d = |persistent, min_ttl, max_ttl| Desired {
            pattern: "x".into(),
            delete: false,
            key_type: None,
            limit: 1,
            batch: 1,
            min_idle: None,
            persistent,
            min_ttl,
            max_ttl,
        };
        assert!(d(None, None, None).ttl_passes(-1));
        assert!(d(Some(true), None, None).ttl_passes(-1));
        assert!(!d(Some(true), None, None).ttl_passes(5));
        assert!(d(Some(false), None, None).ttl_passes(5));
        assert!(!d(Some(false), None, None).ttl_passes(-1));
        assert!(d(None, Some(10), None).ttl_passes(10));
        assert!(!d(None, Some(10), None).ttl_passes(9));
        assert!(!d(None, Some(10), None).ttl_passes(-1));
        assert!(d(None, None, Some(60)).ttl_passes(0));
        assert!(!d(None, None, Some(60)).ttl_passes(61));
    }
}
