//! What the module found out about an instance, and how that becomes the result.

use ansible_module::nolog::{mask_str, remove_values};
use ansible_module::{ModuleError, Outcome};
use redis_utils::connection::{ConnectionError, ConnectionParams};
use redis_utils::info::Info;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The fields of `INFO` the module reports or decides on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerInfo {
    pub redis_version: Option<String>,
    /// Valkey's own version (Valkey 8 reports `redis_version:7.2.4`, the Redis API it keeps, and
    /// `valkey_version:8.1.1` beside it); `None` for Redis.
    pub valkey_version: Option<String>,
    pub uptime_in_seconds: Option<i64>,
    /// master, replica or sentinel.
    pub role: Option<String>,
    pub process_id: Option<i32>,
    /// The port it listens on now (INFO tcp_port), which may differ from the config file's.
    pub port: Option<i64>,
    pub config_file: Option<String>,
    /// `loading:1` (a server still reading its RDB/AOF).
    pub loading: bool,
}

impl ServerInfo {
    #[must_use]
    pub fn from_info(info: &Info) -> ServerInfo {
        // Valkey 8 names the field server_mode (redis_mode is gone from its INFO).
        let mode = info.get("redis_mode").or_else(|| info.get("server_mode"));
        let role = if mode == Some("sentinel") {
            Some("sentinel".to_string())
        } else {
            info.get("role").map(|r| match r {
                "slave" => "replica".to_string(),
                other => other.to_string(),
            })
        };
        ServerInfo {
            redis_version: info.get("redis_version").map(str::to_string),
            valkey_version: info
                .get("valkey_version")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .or_else(|| {
                    // `server_name:valkey` without valkey_version: the Redis API version is all
                    // there is.
                    (info.get("server_name") == Some("valkey"))
                        .then(|| info.get("redis_version").unwrap_or_default().to_string())
                }),
            uptime_in_seconds: info.int("uptime_in_seconds"),
            role,
            process_id: info.int("process_id").and_then(|p| i32::try_from(p).ok()),
            port: info.int("tcp_port"),
            config_file: info
                .get("config_file")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            loading: info.int("loading") == Some(1),
        }
    }
}

impl ServerInfo {
    /// `Valkey` or `Redis`, as INFO says, for messages about a server found running.
    #[must_use]
    pub fn flavour_title(&self) -> &'static str {
        if self.valkey_version.is_some() {
            "Valkey"
        } else {
            "Redis"
        }
    }
}

/// Connects and reads `INFO` (default sections: server, replication, persistence...).
///
/// # Errors
/// The connection or the command failed.
pub fn query_info(conn: &ConnectionParams) -> Result<ServerInfo, ConnectionError> {
    let mut con = conn.connect()?;
    let text: String = con.cmd(&["INFO"])?;
    Ok(ServerInfo::from_info(&Info::parse(&text)))
}

/// The same connection settings with a shorter timeout (never below 100 ms).
#[must_use]
pub fn with_timeout(conn: &ConnectionParams, limit: Duration) -> ConnectionParams {
    let mut c = conn.clone();
    c.timeout = c.timeout.min(limit.max(Duration::from_millis(100)));
    c
}

/// The module's result, before it is masked and returned.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub changed: bool,
    pub msg: String,
    pub running: bool,
    pub pid: Option<i32>,
    pub info: Option<ServerInfo>,
    pub manager: &'static str,
    pub actions: Vec<String>,
    /// Extra return values (pidfile, unit, enabled, address...).
    pub extra: Map<String, Value>,
}

impl Report {
    fn map(&self) -> Map<String, Value> {
        let info = self.info.clone().unwrap_or_default();
        let mut m = Map::new();
        m.insert("changed".into(), self.changed.into());
        m.insert("msg".into(), self.msg.clone().into());
        m.insert("running".into(), self.running.into());
        m.insert("pid".into(), self.pid.into());
        m.insert("uptime_in_seconds".into(), info.uptime_in_seconds.into());
        m.insert("redis_version".into(), info.redis_version.into());
        m.insert("valkey_version".into(), info.valkey_version.into());
        m.insert("role".into(), info.role.into());
        m.insert("port".into(), info.port.into());
        m.insert("manager".into(), self.manager.into());
        m.insert("actions".into(), self.actions.clone().into());
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// The successful result, with `secrets` masked everywhere.
    #[must_use]
    pub fn into_outcome(self, secrets: &BTreeSet<String>) -> Outcome {
        let mut v = Value::Object(self.map());
        remove_values(&mut v, secrets);
        let mut o = Outcome::new(self.changed);
        if let Value::Object(m) = v {
            for (k, val) in m {
                o.set(&k, val);
            }
        }
        o
    }

    /// A failure carrying everything known so far (what was done, what runs now).
    #[must_use]
    pub fn into_error(self, msg: &str, secrets: &BTreeSet<String>) -> ModuleError {
        let mut v = Value::Object(self.map());
        remove_values(&mut v, secrets);
        let mut e = ModuleError::new(mask_str(msg, secrets));
        if let Value::Object(m) = v {
            for (k, val) in m {
                if k != "msg" {
                    e = e.with(&k, val);
                }
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_and_role_names() {
        let i = Info::parse("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nprocess_id:4242\r\nuptime_in_seconds:12\r\nconfig_file:/etc/redis/a.conf\r\n# Persistence\r\nloading:1\r\n# Replication\r\nrole:slave\r\n");
        let s = ServerInfo::from_info(&i);
        assert_eq!(s.redis_version.as_deref(), Some("7.0.15"));
        assert_eq!(s.process_id, Some(4242));
        assert_eq!(s.uptime_in_seconds, Some(12));
        assert_eq!(s.role.as_deref(), Some("replica"));
        assert_eq!(s.config_file.as_deref(), Some("/etc/redis/a.conf"));
        assert!(s.loading);
        let i = Info::parse("# Server\r\nredis_mode:sentinel\r\nconfig_file:\r\n");
        let s = ServerInfo::from_info(&i);
        assert_eq!(s.role.as_deref(), Some("sentinel"));
        assert_eq!(s.config_file, None);
        assert!(!s.loading);
    }

    #[test]
    fn valkey_info_fields() {
        // See: issue 16 item 1
        // INFO server of valkey-server 8.1.1 (Debian 13) as a server and as a Sentinel: the Redis
        // API version in redis_version, Valkey's in valkey_version, and server_mode instead of
        // redis_mode.
        let i = Info::parse("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nvalkey_release_stage:ga\r\nserver_mode:standalone\r\nprocess_id:25478\r\ntcp_port:45065\r\nconfig_file:/etc/valkey/main.conf\r\n# Replication\r\nrole:master\r\n");
        let s = ServerInfo::from_info(&i);
        assert_eq!(s.redis_version.as_deref(), Some("7.2.4"));
        assert_eq!(s.valkey_version.as_deref(), Some("8.1.1"));
        assert_eq!(s.role.as_deref(), Some("master"));
        assert_eq!(s.flavour_title(), "Valkey");
        let i = Info::parse("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nserver_mode:sentinel\r\n");
        let s = ServerInfo::from_info(&i);
        assert_eq!(s.role.as_deref(), Some("sentinel"));
        let i = Info::parse(
            "# Server\r\nredis_version:8.0.2\r\nredis_mode:standalone\r\nrole:master\r\n",
        );
        let s = ServerInfo::from_info(&i);
        assert_eq!(
            (s.valkey_version.as_deref(), s.flavour_title()),
            (None, "Redis")
        );
    }

    #[test]
    fn secrets_are_masked_in_results_and_errors() {
        let secrets: BTreeSet<String> = ["cfg-secret-1".to_string()].into_iter().collect();
        let r = Report {
            msg: "log says requirepass cfg-secret-1".into(),
            actions: vec!["cfg-secret-1".into()],
            manager: "direct",
            ..Report::default()
        };
        let o = r.clone().into_outcome(&secrets);
        let text = serde_json::to_string(&o.into_map()).unwrap_or_default();
        assert!(!text.contains("cfg-secret-1"), "{text}");
        let e = r.into_error("bad cfg-secret-1", &secrets);
        assert_eq!(e.msg, "bad ********");
        assert!(!serde_json::to_string(&e.details)
            .unwrap_or_default()
            .contains("cfg-secret-1"));
    }
}
