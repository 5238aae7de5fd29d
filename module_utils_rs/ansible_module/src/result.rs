//! What a module returns: [`Outcome`] on success, [`ModuleError`] on failure.

use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// A successful result under construction. `changed` is always present.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub(crate) map: Map<String, Value>,
}

impl Outcome {
    #[must_use]
    pub fn new(changed: bool) -> Self {
        let mut map = Map::new();
        map.insert("changed".into(), changed.into());
        Outcome { map }
    }

    /// Sets a return value. Values that cannot be serialised become `null`.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.set(key, value);
        self
    }

    pub fn set(&mut self, key: &str, value: impl Serialize) {
        self.map.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }

    #[must_use]
    pub fn msg(self, msg: impl Into<String>) -> Self {
        self.with("msg", msg.into())
    }

    /// Adds Ansible's diff (`--diff`), shown as a unified diff of `before` and `after`.
    #[must_use]
    pub fn diff(self, before: impl Serialize, after: impl Serialize, header: &str) -> Self {
        let diff = serde_json::json!({
            "before": before,
            "after": after,
            "before_header": header,
            "after_header": header,
        });
        self.with("diff", diff)
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }
}

/// A failure: `msg` says what went wrong and where; `details` are extra return values
/// (for example the per-check results of a failed health check).
#[derive(Clone, Debug)]
pub struct ModuleError {
    pub msg: String,
    pub details: Map<String, Value>,
}

impl ModuleError {
    #[must_use]
    pub fn new(msg: impl Into<String>) -> Self {
        ModuleError {
            msg: msg.into(),
            details: Map::new(),
        }
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// Turns a result that was computed fully (all return values) into a failure with `msg`.
    #[must_use]
    pub fn from_outcome(msg: impl Into<String>, outcome: Outcome) -> Self {
        ModuleError {
            msg: msg.into(),
            details: outcome.map,
        }
    }
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ModuleError {}
