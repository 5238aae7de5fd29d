//! The verdict: a status per check, the worst one overall, and the thresholds the options set.

use ansible_module::Params;
use serde_json::{json, Map, Value};

/// A verdict, ordered so that `max` gives the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

/// Thresholds and expectations, from the module options.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub max_memory_percent: f64,
    pub max_replication_lag: i64,
    pub max_clients_percent: f64,
    pub min_hit_rate: Option<f64>,
    pub min_replicas: Option<i64>,
    pub expected_role: Option<String>,
    pub sentinel_master_name: Option<String>,
}

impl Thresholds {
    #[must_use]
    pub fn from_params(p: &Params) -> Self {
        Thresholds {
            max_memory_percent: p.float("max_memory_percent").unwrap_or(90.0),
            max_replication_lag: p.int("max_replication_lag").unwrap_or(10),
            max_clients_percent: p.float("max_clients_percent").unwrap_or(90.0),
            min_hit_rate: p.float("min_hit_rate"),
            min_replicas: p.int("min_replicas"),
            expected_role: p.str("expected_role").map(str::to_string),
            sentinel_master_name: p.str("sentinel_master_name").map(str::to_string),
        }
    }
}

/// The whole health report.
#[derive(Debug)]
pub struct Report {
    pub address: String,
    pub status: Status,
    /// check name → `{status, message}`, in [`ALL_CHECKS`] order.
    pub checks: Vec<(String, Status, String)>,
    /// Extra return values: `info`, `role`, `redis_version`, `server`, `replication`, ...
    pub data: Map<String, Value>,
    /// What answered INFO, as the verdict names it: `Valkey 8.1.1`, `Redis 7.0.15`; `None`
    /// before INFO (unreachable: the server is only known as "Redis at <address>").
    pub server: Option<String>,
}

impl Report {
    #[must_use]
    pub fn new(address: String) -> Self {
        Report {
            address,
            status: Status::Ok,
            checks: Vec::new(),
            data: Map::new(),
            server: None,
        }
    }

    /// Records one check; the overall status becomes the worst so far.
    pub fn add(&mut self, name: &str, status: Status, message: impl Into<String>) {
        self.status = self.status.max(status);
        self.checks.push((name.to_string(), status, message.into()));
    }

    /// `checks` as the module returns it.
    #[must_use]
    pub fn checks_json(&self) -> Value {
        Value::Object(
            self.checks
                .iter()
                .map(|(n, s, m)| (n.clone(), json!({"status": s.as_str(), "message": m})))
                .collect(),
        )
    }

    /// The checks that are not ok, as `name: message; ...`.
    #[must_use]
    pub fn problems(&self) -> String {
        self.checks
            .iter()
            .filter(|(_, s, _)| *s != Status::Ok)
            .map(|(n, s, m)| format!("{n} ({}): {m}", s.as_str()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
