//! Parsing `INFO` replies into values a playbook can compare: numbers as numbers, and
//! `k=v,k=v` fields (`db0`, `slave0`, `cmdstat_*`) as objects.

use serde_json::{Map, Number, Value};

/// A parsed `INFO` reply.
#[derive(Clone, Debug, Default)]
pub struct Info {
    /// (section, key, raw value) in the server's order.
    pub fields: Vec<(String, String, String)>,
}

impl Info {
    #[must_use]
    pub fn parse(text: &str) -> Info {
        let mut section = String::new();
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(name) = line.strip_prefix("# ") {
                section = name.trim().to_lowercase();
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((section.clone(), k.to_string(), v.to_string()));
            }
        }
        Info { fields }
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }

    #[must_use]
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    #[must_use]
    pub fn float(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// `standalone`, `sentinel` or `cluster`: Redis says `redis_mode`, Valkey 8 `server_mode`.
    #[must_use]
    pub fn mode(&self) -> Option<&str> {
        self.get("redis_mode").or_else(|| self.get("server_mode"))
    }

    /// Fields of one section, in order.
    pub fn section<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.fields
            .iter()
            .filter(move |(s, _, _)| s == name)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    /// All fields as one flat object with typed values.
    #[must_use]
    pub fn to_json(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .map(|(_, k, v)| (k.clone(), parse_value(v)))
            .collect()
    }
}

/// Which server answered INFO: Redis, or Valkey (which reports `redis_version:7.2.4` for the
/// clients that check it, beside its own `valkey_version` and `server_name:valkey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `redis` or `valkey`.
    pub flavour: String,
    /// The server's own version: `valkey_version` on Valkey, `redis_version` on Redis.
    pub version: String,
    /// `redis_version` as reported (Valkey's compatibility version).
    pub redis_version: String,
}

impl ServerIdentity {
    /// From INFO's server section: `server_name:valkey` or a `valkey_version` field means Valkey.
    #[must_use]
    pub fn from_info(info: &Info) -> ServerIdentity {
        let redis_version = info.get("redis_version").unwrap_or("").to_string();
        let valkey = info.get("valkey_version");
        let is_valkey = valkey.is_some()
            || info
                .get("server_name")
                .is_some_and(|n| n.eq_ignore_ascii_case("valkey"));
        if is_valkey {
            ServerIdentity {
                flavour: "valkey".into(),
                version: valkey.unwrap_or(&redis_version).to_string(),
                redis_version,
            }
        } else {
            ServerIdentity {
                flavour: "redis".into(),
                version: redis_version.clone(),
                redis_version,
            }
        }
    }

    /// `Valkey` or `Redis`.
    #[must_use]
    pub fn product(&self) -> &'static str {
        if self.flavour == "valkey" {
            "Valkey"
        } else {
            "Redis"
        }
    }

    /// `Valkey 8.1.1`, `Redis 7.0.15`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}", self.product(), self.version)
    }
}

/// A number when the text is one, an object for `k=v,k=v`, otherwise the string.
#[must_use]
pub fn parse_value(s: &str) -> Value {
    if let Some(n) = parse_number(s) {
        return n;
    }
    if let Some(m) = parse_kv_list(s) {
        return Value::Object(m);
    }
    Value::String(s.to_string())
}

fn parse_number(s: &str) -> Option<Value> {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.')
        && s.chars().any(|c| c.is_ascii_digit())
        && s.matches('.').count() <= 1
        // "00000000" (a git sha) is an identifier, not the number 0.
        && !(s.len() > 1 && s.starts_with('0') && !s.starts_with("0."));
    if !plain {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Number(Number::from(i)));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// `ip=127.0.0.1,port=6380,state=online` → object; `None` when the text is not of that form.
#[must_use]
pub fn parse_kv_list(s: &str) -> Option<Map<String, Value>> {
    if !s.contains('=') {
        return None;
    }
    let mut m = Map::new();
    for part in s.split(',') {
        let (k, v) = part.split_once('=')?;
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        m.insert(
            k.to_string(),
            parse_number(v).unwrap_or_else(|| Value::String(v.to_string())),
        );
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_sections_numbers_and_kv_fields() {
        let text = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\n\r\n# Memory\r\nused_memory:1024\r\nmem_fragmentation_ratio:1.50\r\nused_memory_human:1.00K\r\n# Replication\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n";
        let i = Info::parse(text);
        assert_eq!(i.get("redis_version"), Some("7.0.15"));
        assert_eq!(i.int("used_memory"), Some(1024));
        assert_eq!(i.section("memory").count(), 3);
        let j = i.to_json();
        assert_eq!(j["redis_version"], json!("7.0.15"));
        assert_eq!(j["uptime_in_seconds"], json!(12));
        assert_eq!(j["mem_fragmentation_ratio"], json!(1.5));
        assert_eq!(j["used_memory_human"], json!("1.00K"));
        assert_eq!(
            j["slave0"],
            json!({"ip": "127.0.0.1", "port": 6380, "state": "online", "offset": 42, "lag": 0})
        );
        assert_eq!(j["db0"], json!({"keys": 3, "expires": 1, "avg_ttl": 100}));
    }

    #[test]
    fn identity_names_valkey_by_its_own_version() {
        let v = Info::parse(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n",
        );
        let id = ServerIdentity::from_info(&v);
        assert_eq!(
            (
                id.flavour.as_str(),
                id.version.as_str(),
                id.redis_version.as_str()
            ),
            ("valkey", "8.1.1", "7.2.4")
        );
        assert_eq!(id.label(), "Valkey 8.1.1");
        assert_eq!(
            Info::parse("# Server\r\nserver_mode:sentinel\r\n").mode(),
            Some("sentinel")
        );
        assert_eq!(
            Info::parse("# Server\r\nredis_mode:cluster\r\n").mode(),
            Some("cluster")
        );
        let r = ServerIdentity::from_info(&Info::parse("# Server\r\nredis_version:8.0.2\r\n"));
        assert_eq!(r.label(), "Redis 8.0.2");
        assert_eq!(r.flavour, "redis");
    }

    #[test]
    fn odd_values_stay_strings() {
        assert_eq!(
            parse_value("/usr/bin/redis-server"),
            json!("/usr/bin/redis-server")
        );
        assert_eq!(parse_value("1.2.3"), json!("1.2.3"));
        assert_eq!(parse_value("-"), json!("-"));
        assert_eq!(parse_value("00000000"), json!("00000000"));
        assert_eq!(parse_value("0"), json!(0));
        assert_eq!(parse_value("0.5"), json!(0.5));
        assert_eq!(parse_value(""), json!(""));
        assert_eq!(parse_value("a=b=c"), json!({"a": "b=c"}));
    }
}
