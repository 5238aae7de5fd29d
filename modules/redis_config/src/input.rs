//! The module's options, read once into a [`Request`]: every value that will reach the file
//! checked first (no CR, LF or NUL anywhere, one spelling per directive), every secret among
//! them registered before anything could print it.

use crate::conf::secrets;
use crate::conf::{self, Dialect};
use crate::directives;
use crate::replication::Replication;
use ansible_module::files;
use ansible_module::{Module, ModuleError};
use redis_utils::redisconf::split_args;
use serde_json::{json, Map, Value};

/// The profiles offered by `profile`.
pub const PROFILES: [&str; 4] = ["cache", "session", "queue", "persistent"];

/// One invocation's options, validated and merged.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub dialect: Dialect,
    /// `apply: live`.
    pub live: bool,
    /// `replication`: who decides `replicaof` (see [`crate::replication`]).
    pub replication: Replication,
    pub follow: bool,
    pub src: Option<String>,
    pub placeholders: bool,
    /// Base defaults, then the profile, then the user's settings: lower-case names, no nulls.
    pub settings: Map<String, Value>,
    pub monitors: Vec<Value>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub backup: bool,
    pub validate: bool,
    pub allow_insecure: bool,
    /// `server_version`: `auto`, `redis`, `valkey`, `redis-7.0`, `redis-8.0`, `valkey-8.1`.
    pub server_version: String,
    /// The directives redis.conf is checked against (see [`crate::server`]).
    pub against: conf::Against,
    /// Why the table is not the server's own (a version without a table of its own).
    pub against_warnings: Vec<String>,
}

impl Request {
    /// Reads and checks the options of `m`. Secrets inside `settings` are registered with
    /// `m.add_secret` first, so that no error below (or later) can show one.
    ///
    /// # Errors
    /// The first option that cannot be used, named.
    pub fn from_module(m: &Module) -> Result<Request, ModuleError> {
        let p = &m.params;
        let user_settings = p
            .get("settings")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for s in settings_secrets(&user_settings) {
            m.add_secret(&s);
            m.add_secret(&conf::quoted_form(&s));
        }
        let monitors: Vec<Value> = p
            .get("monitors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        refuse_control_chars_in_settings(&user_settings)?;
        refuse_control_chars_in_monitors(&monitors)?;
        for opt in ["login_user", "login_password"] {
            if let Some(v) = p.str(opt) {
                refuse_control_chars(opt, v)?;
            }
        }
        check_setting_values(&user_settings)?;
        let user_settings = lower_case_names(user_settings)?;

        let dialect = if p.str("template") == Some("sentinel") {
            Dialect::Sentinel
        } else {
            Dialect::Redis
        };
        let live = p.str("apply") == Some("live");
        if live && dialect == Dialect::Sentinel {
            return Err(ModuleError::new("apply: live is for redis.conf; change a running Sentinel with creativeflow.redis.redis_sentinel"));
        }
        let replication = if p.str("replication") == Some("initial") {
            Replication::Initial
        } else {
            Replication::Managed
        };
        if replication == Replication::Initial && dialect == Dialect::Sentinel {
            return Err(ModuleError::new(
                "replication: initial is for redis.conf (replicaof); Sentinel keeps its own view of a failover in sentinel.conf",
            ));
        }
        if dialect == Dialect::Redis && !monitors.is_empty() {
            return Err(ModuleError::new(
                "monitors apply to sentinel.conf (template: sentinel)",
            ));
        }
        if dialect == Dialect::Sentinel {
            check_monitors(&monitors)?;
            // Like the checks of the rendered file, this one is about what Sentinel will make
            // of a value, so `validate: false` turns it off.
            if p.flag("validate") {
                check_sentinel_rewritten_values(&user_settings, &monitors)?;
            }
        }

        let mut settings = base_settings(dialect);
        if let Some(profile) = p.str("profile") {
            if dialect == Dialect::Sentinel {
                return Err(ModuleError::new(
                    "profile applies to redis.conf, not to sentinel.conf",
                ));
            }
            settings.extend(profile_settings(profile));
        }
        settings.extend(user_settings);
        settings.retain(|_, v| !v.is_null());

        let server_version = p.str("server_version").unwrap_or("auto").to_string();
        let path = p.str("path").unwrap_or_default().to_string();
        let (against, against_warnings) = if dialect == Dialect::Redis && p.flag("validate") {
            crate::server::choose(&server_version, live, &path)
        } else {
            (conf::Against::redis70(), Vec::new())
        };
        Ok(Request {
            path,
            server_version,
            against,
            against_warnings,
            dialect,
            live,
            replication,
            follow: p.flag("follow"),
            src: p.str("src").map(str::to_string),
            placeholders: p.flag("placeholders"),
            settings,
            monitors,
            mode: mode_of(m)?,
            owner: p.str("owner").map(str::to_string),
            group: p.str("group").map(str::to_string),
            backup: p.flag("backup"),
            validate: p.flag("validate"),
            allow_insecure: p.flag("allow_insecure"),
        })
    }

    /// The attributes the file is written with.
    #[must_use]
    pub fn attrs(&self) -> files::FileAttrs<'_> {
        files::FileAttrs {
            mode: self.mode,
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            follow: self.follow,
        }
    }
}

/// A setting's value as the template prints it (booleans as yes/no).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every secret inside `settings`, found with the collection's one rule
/// (`redis_utils::redisconf::secrets`) on the lines the settings become: `requirepass: 12345678`
/// is the secret "12345678" even though YAML made it a number.
#[must_use]
pub fn settings_secrets(settings: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, v) in settings {
        let mut key_words = key.split_whitespace().map(str::to_lowercase);
        let Some(name) = key_words.next() else {
            continue;
        };
        let key_rest: Vec<String> = key_words.collect();
        let items: Vec<String> = match v {
            Value::Array(a) => a.iter().filter_map(text_of).collect(),
            other => text_of(other).into_iter().collect(),
        };
        for item in items {
            let mut args = key_rest.clone();
            if name == "user" {
                // Rules are words; a password cannot hold a space.
                args.extend(
                    split_args(&item)
                        .unwrap_or_else(|| item.split_whitespace().map(str::to_string).collect()),
                );
            } else if let Some(sub) = key_rest.first().filter(|_| name == "sentinel") {
                // `sentinel auth-pass: "<master> <password>"`: as many words as the sub-command
                // takes, the last one keeping the rest of the value whole.
                let n = directives::SENTINEL_SUB
                    .iter()
                    .find(|(s, _, _)| s == sub)
                    .map_or(1, |(_, _, max)| *max);
                args.extend(
                    item.splitn(n.max(1), char::is_whitespace)
                        .map(str::to_string),
                );
            } else {
                args.push(item);
            }
            out.extend(secrets([(name.as_str(), args.as_slice())]));
        }
    }
    out
}

/// Refuses CR, LF and NUL: each would end the line early and let the rest of the value write
/// directives of its own (`user default on nopass ~* &* +@all`, an open server).
fn refuse_control_chars(option: &str, s: &str) -> Result<(), ModuleError> {
    match s.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        Some(c) => Err(ModuleError::new(format!(
            "{option}: holds {}; no key, value or list item that goes into the config file (or to Redis) may hold CR, LF or NUL",
            conf::control_name(c)
        ))),
        None => Ok(()),
    }
}

fn refuse_control_chars_in_settings(settings: &Map<String, Value>) -> Result<(), ModuleError> {
    for (k, v) in settings {
        // The key is shown escaped ({:?}), so the message itself stays on one line.
        refuse_control_chars(&format!("settings key {k:?}"), k)?;
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = item.as_str() {
                        refuse_control_chars(&format!("settings.{k}[{i}]"), s)?;
                    }
                }
            }
            Value::String(s) => refuse_control_chars(&format!("settings.{k}"), s)?,
            _ => {}
        }
    }
    Ok(())
}

fn refuse_control_chars_in_monitors(monitors: &[Value]) -> Result<(), ModuleError> {
    for (i, m) in monitors.iter().enumerate() {
        for (k, v) in m.as_object().into_iter().flatten() {
            if let Some(s) = v.as_str() {
                refuse_control_chars(&format!("monitors[{i}].{k}"), s)?;
            }
        }
    }
    Ok(())
}

fn check_setting_values(settings: &Map<String, Value>) -> Result<(), ModuleError> {
    for (k, v) in settings {
        let scalar = |v: &Value| {
            matches!(
                v,
                Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
            )
        };
        let ok = scalar(v)
            || v.as_array()
                .is_some_and(|a| a.iter().all(|i| scalar(i) && !i.is_null()));
        if !ok {
            return Err(ModuleError::new(format!(
                "settings.{k}: a value must be a string, number, boolean or a list of those"
            )));
        }
        if k.contains(char::is_whitespace) && !k.to_lowercase().starts_with("sentinel ") {
            return Err(ModuleError::new(format!(
                "settings: `{k}` is not a directive name"
            )));
        }
    }
    Ok(())
}

/// Redis reads directive names in any case, so `MaxMemory` and `maxmemory` are one directive:
/// given both, the file would hold two conflicting lines. Names are lower-cased (the templates
/// know them in lower case) and a second spelling is refused.
fn lower_case_names(settings: Map<String, Value>) -> Result<Map<String, Value>, ModuleError> {
    let mut out = Map::new();
    let mut spelled: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (k, v) in settings {
        let lower = k
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if let Some(first) = spelled.get(&lower) {
            return Err(ModuleError::new(format!(
                "settings: `{first}` and `{k}` are the same directive (Redis directive names are case-insensitive); give it once"
            )));
        }
        spelled.insert(lower.clone(), k);
        out.insert(lower, v);
    }
    Ok(out)
}

fn check_monitors(monitors: &[Value]) -> Result<(), ModuleError> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, m) in monitors.iter().enumerate() {
        let name = m["name"].as_str().unwrap_or_default();
        if let Some(first) = seen.iter().position(|n| *n == name) {
            return Err(ModuleError::new(format!(
                "monitors[{i}]: master `{name}` is already monitors[{first}]; redis-sentinel refuses a master monitored twice"
            )));
        }
        seen.push(name);
        // The ranges redis-sentinel itself accepts (sentinel.c reads them as positive ints).
        for (k, min) in [
            ("port", 1),
            ("quorum", 1),
            ("down_after_milliseconds", 1),
            ("failover_timeout", 1),
            ("parallel_syncs", 1),
        ] {
            let v = &m[k];
            if v.is_null() {
                continue;
            }
            let n = v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX));
            let max = if k == "port" {
                65_535
            } else {
                i64::from(i32::MAX)
            };
            if !n.is_some_and(|n| (min..=max).contains(&n)) {
                return Err(ModuleError::new(format!(
                    "monitors[{i}].{k} must be between {min} and {max}, got {v}"
                )));
            }
        }
    }
    Ok(())
}

/// Sentinel 7.0 writes `auth-pass`, `auth-user`, `sentinel-user` and `sentinel-pass` back
/// unquoted whenever it rewrites its file (it does so at its first start): a value with a
/// space or a quote then becomes a line redis-sentinel itself refuses at its next start
/// ("Unbalanced quotes", "Unrecognized sentinel configuration statement"). Measured on 7.0.15.
fn check_sentinel_rewritten_values(
    settings: &Map<String, Value>,
    monitors: &[Value],
) -> Result<(), ModuleError> {
    let bad = |s: &str| s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    let why = "redis-sentinel 7.0 writes this value back unquoted when it rewrites sentinel.conf, so a space or a quote in it makes the file unreadable to redis-sentinel at its next start; use a value without spaces or quotes";
    for (i, m) in monitors.iter().enumerate() {
        for k in ["auth_pass", "auth_user"] {
            if m[k].as_str().is_some_and(bad) {
                return Err(ModuleError::new(format!("monitors[{i}].{k}: {why}")));
            }
        }
    }
    for k in ["sentinel sentinel-pass", "sentinel sentinel-user"] {
        if settings.get(k).and_then(text_of).is_some_and(|s| bad(&s)) {
            return Err(ModuleError::new(format!("settings.{k}: {why}")));
        }
    }
    for k in ["sentinel auth-pass", "sentinel auth-user"] {
        let values: Vec<String> = match settings.get(k) {
            Some(Value::Array(a)) => a.iter().filter_map(text_of).collect(),
            Some(v) => text_of(v).into_iter().collect(),
            None => vec![],
        };
        // "<master> <value>": the value is everything after the master's name.
        if values.iter().any(|v| {
            v.trim()
                .split_once(char::is_whitespace)
                .is_some_and(|(_, rest)| bad(rest.trim()))
        }) {
            return Err(ModuleError::new(format!("settings.{k}: {why}")));
        }
    }
    Ok(())
}

/// Secure defaults every redis.conf starts from: loopback only, protected mode, foreground
/// (for systemd and for redis_service's direct mode).
#[must_use]
pub fn base_settings(dialect: Dialect) -> Map<String, Value> {
    let v = match dialect {
        Dialect::Redis => json!({
            "bind": "127.0.0.1 -::1", "port": 6379, "protected-mode": true, "daemonize": false,
            "loglevel": "notice", "tcp-keepalive": 300, "timeout": 0,
        }),
        Dialect::Sentinel => json!({
            "bind": "127.0.0.1 -::1", "port": 26379, "protected-mode": true, "daemonize": false,
        }),
    };
    v.as_object().cloned().unwrap_or_default()
}

/// The use cases we deploy for; any directive can still be overridden in `settings`.
#[must_use]
pub fn profile_settings(profile: &str) -> Map<String, Value> {
    let v = match profile {
        // Pure cache: evict least recently used keys, nothing on disk.
        "cache" => json!({"maxmemory-policy": "allkeys-lru", "save": [], "appendonly": false}),
        // Sessions expire: evict among keys with a TTL, keep them across restarts, and publish
        // expiry events so applications can react to logouts by timeout.
        "session" => {
            json!({"maxmemory-policy": "volatile-lru", "appendonly": true, "appendfsync": "everysec", "notify-keyspace-events": "Ex"})
        }
        // A queue must never silently lose a job: refuse writes when full, log every write.
        "queue" => {
            json!({"maxmemory-policy": "noeviction", "appendonly": true, "appendfsync": "everysec"})
        }
        // Durable store: snapshots plus AOF.
        "persistent" => {
            json!({"maxmemory-policy": "noeviction", "save": ["3600 1", "300 100", "60 10000"], "appendonly": true, "appendfsync": "everysec"})
        }
        _ => json!({}),
    };
    v.as_object().cloned().unwrap_or_default()
}

fn mode_of(m: &Module) -> Result<Option<u32>, ModuleError> {
    match m.params.get("mode") {
        None => Ok(None),
        // YAML's 0640 arrives as the integer 416: the bits themselves, as in Ansible.
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v <= 0o7777)
            .map(Some)
            .ok_or_else(|| ModuleError::new(format!("mode {n} is out of range"))),
        Some(Value::String(s)) => files::parse_mode(s)
            .map(Some)
            .map_err(|e| ModuleError::new(e.0)),
        Some(other) => Err(ModuleError::new(format!(
            "mode must be a string such as \"0640\", got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn nested_setting_values_are_refused() {
        assert!(check_setting_values(&map(json!({"bind": {"a": 1}})))
            .is_err_and(|e| e.msg.starts_with("settings.bind:")));
    }

    // See: issue 8 item 3
    #[test]
    fn issue_8_item_3_every_secret_in_settings_is_found() {
        let s = map(json!({
            "requirepass": 12345678,
            "masterauth": "pass word\"q",
            "tls-key-file-pass": "kp",
            "user": ["app on >app-pw ~* +@all", "ro on >ro\"pw ~* +@read"],
            "sentinel auth-pass": "mymaster p w",
            "sentinel sentinel-pass": "sp",
            "port": 6379,
        }));
        let mut found = settings_secrets(&s);
        found.sort();
        assert_eq!(
            found,
            vec![
                "12345678",
                "app-pw",
                "kp",
                "p w",
                "pass word\"q",
                "ro\"pw",
                "sp"
            ]
        );
    }

    // See: issue 8 item 12
    #[test]
    fn issue_8_item_12_one_spelling_per_directive() {
        assert!(
            lower_case_names(map(json!({"MaxMemory": "1gb", "maxmemory": "2gb"}))).is_err_and(
                |e| e
                    .msg
                    .contains("`MaxMemory` and `maxmemory` are the same directive")
            )
        );
        assert_eq!(
            lower_case_names(map(
                json!({"MaxMemory": "1gb", "Sentinel  Announce-IP": "x"})
            ))
            .ok(),
            Some(map(
                json!({"maxmemory": "1gb", "sentinel announce-ip": "x"})
            ))
        );
    }

    // See: issue 8 item 1
    #[test]
    fn issue_8_item_1_control_characters_are_refused_with_the_option_named() {
        let e = |v: Value| {
            refuse_control_chars_in_settings(&map(v))
                .err()
                .map(|e| e.msg)
                .unwrap_or_default()
        };
        assert!(
            e(json!({"maxmemory-policy": "allkeys-lru\nuser default on nopass"}))
                .starts_with("settings.maxmemory-policy: holds a line feed (LF)")
        );
        assert!(e(json!({"save": ["3600 1", "1 1\r\nuser x"]}))
            .starts_with("settings.save[1]: holds a carriage return"));
        assert!(e(json!({"a\nb": 1})).starts_with("settings key \"a\\nb\": holds a line feed"));
        assert!(e(json!({"dir": "/x\u{0}y"})).contains("NUL"));
        let m = refuse_control_chars_in_monitors(&[json!({"name": "m", "host": "h\nsentinel x"})]);
        assert!(m.is_err_and(|e| e.msg.starts_with("monitors[0].host: holds a line feed")));
    }

    // See: issue 8 item 12
    #[test]
    fn issue_8_item_12_duplicate_monitors_are_refused() {
        let e = check_monitors(&[
            json!({"name": "m"}),
            json!({"name": "x"}),
            json!({"name": "m"}),
        ]);
        assert!(e.is_err_and(|e| e
            .msg
            .contains("monitors[2]: master `m` is already monitors[0]")));
    }

    // See: issue 8 item 14
    #[test]
    fn issue_8_item_14_values_sentinel_rewrites_unquoted_are_refused() {
        let mon = |pw: &str| vec![json!({"name": "m", "auth_pass": pw})];
        assert!(
            check_sentinel_rewritten_values(&Map::new(), &mon("p w")).is_err_and(|e| e
                .msg
                .starts_with("monitors[0].auth_pass: redis-sentinel 7.0 writes"))
        );
        assert!(check_sentinel_rewritten_values(&Map::new(), &mon("p\"w")).is_err());
        assert!(check_sentinel_rewritten_values(&Map::new(), &mon("p@ss:w0rd!$%&*")).is_ok());
        assert!(
            check_sentinel_rewritten_values(&map(json!({"sentinel auth-pass": "m p w"})), &[])
                .is_err()
        );
        assert!(
            check_sentinel_rewritten_values(&map(json!({"sentinel auth-pass": "m pw"})), &[])
                .is_ok()
        );
    }
}
