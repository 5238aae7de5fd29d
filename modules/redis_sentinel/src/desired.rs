//! The desired state: the monitors a task asks for, checked before anything is sent.

use ansible_module::{ModuleError, Params};
use serde_json::Value;

/// Sentinel's own defaults (sentinel.c), used when the task leaves an option out, so that a value
/// changed by hand on the running Sentinel is put back ("defaults included").
pub const DEFAULT_DOWN_AFTER_MS: u64 = 30_000;
pub const DEFAULT_FAILOVER_TIMEOUT_MS: u64 = 180_000;
pub const DEFAULT_PARALLEL_SYNCS: u32 = 1;

/// One monitor as the task wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredMonitor {
    pub name: String,
    /// The initial master: only used to create the monitor, never to move it back.
    pub host: String,
    pub port: u16,
    pub quorum: u32,
    pub down_after_milliseconds: u64,
    pub failover_timeout: u64,
    pub parallel_syncs: u32,
    pub auth_user: Option<String>,
    pub auth_pass: Option<String>,
}

/// What the task asks for.
#[derive(Clone, Debug)]
pub enum Desired {
    Present {
        monitors: Vec<DesiredMonitor>,
        exclusive: bool,
    },
    Absent {
        names: Vec<String>,
    },
    Failover {
        name: String,
    },
    Reset {
        name: String,
    },
}

/// Names, hosts and user names go into Sentinel commands and Sentinel's own config file, which
/// Sentinel rewrites line by line: CR, LF, NUL or a space would split a directive there.
fn check_word(what: &str, v: &str) -> Result<(), ModuleError> {
    if v.is_empty() {
        return Err(ModuleError::new(format!("{what} must not be empty")));
    }
    if let Some(c) = v.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(ModuleError::new(format!(
            "{what} `{}` contains {}: not allowed in a Sentinel command or sentinel.conf",
            v.escape_debug(),
            match c {
                '\n' => "a line feed".to_string(),
                '\r' => "a carriage return".to_string(),
                '\0' => "a NUL byte".to_string(),
                c if c.is_whitespace() => "white space".to_string(),
                c => format!("the control character {c:?}"),
            }
        )));
    }
    Ok(())
}

/// A password may hold spaces and quotes (Sentinel quotes it when it rewrites its file), but
/// never a line break or NUL.
fn check_secret(what: &str, v: &str) -> Result<(), ModuleError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(ModuleError::new(format!(
            "{what} contains a line break or NUL byte: not allowed in a Sentinel command or sentinel.conf"
        )));
    }
    Ok(())
}

fn int_in<T: TryFrom<i64>>(v: &Value, what: &str, min: i64, max: i64) -> Result<T, ModuleError> {
    let n = v.as_i64().unwrap_or(i64::MIN);
    if n < min || n > max {
        return Err(ModuleError::new(format!(
            "{what} must be between {min} and {max}, got {}",
            ansible_module::spec::py_str(v)
        )));
    }
    T::try_from(n).map_err(|_| ModuleError::new(format!("{what} is out of range")))
}

fn monitor(v: &Value) -> Result<DesiredMonitor, ModuleError> {
    let o = v.as_object().cloned().unwrap_or_default();
    let p = Params(o);
    let name = p.str("name").unwrap_or_default().to_string();
    check_word("monitors[].name", &name)?;
    let ctx = |k: &str| format!("monitors[{name}].{k}");
    let host = p.str("host").unwrap_or_default().to_string();
    check_word(&ctx("host"), &host)?;
    // An IP address or a host name, as SENTINEL MONITOR takes it; anything else would only be
    // refused by Sentinel after the plan has started.
    if host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
    {
        return Err(ModuleError::new(format!(
            "{} `{}` is not an IP address or a host name",
            ctx("host"),
            host.chars().take(64).collect::<String>().escape_debug()
        )));
    }
    let get = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    let auth_user = p.str("auth_user").map(str::to_string);
    if let Some(u) = &auth_user {
        check_word(&ctx("auth_user"), u)?;
    }
    let auth_pass = p.str("auth_pass").map(str::to_string);
    if let Some(pw) = &auth_pass {
        check_secret(&ctx("auth_pass"), pw)?;
    }
    Ok(DesiredMonitor {
        port: int_in(&get("port"), &ctx("port"), 1, 65_535)?,
        quorum: int_in(&get("quorum"), &ctx("quorum"), 1, 1_000)?,
        down_after_milliseconds: int_in(
            &get("down_after_milliseconds"),
            &ctx("down_after_milliseconds"),
            1,
            i64::from(i32::MAX),
        )?,
        failover_timeout: int_in(
            &get("failover_timeout"),
            &ctx("failover_timeout"),
            1,
            i64::from(i32::MAX),
        )?,
        parallel_syncs: int_in(&get("parallel_syncs"), &ctx("parallel_syncs"), 1, 10_000)?,
        name,
        host,
        auth_user,
        auth_pass,
    })
}

/// Reads and checks the desired state from validated options.
///
/// # Errors
/// Anything that cannot be a valid Sentinel request: nothing has been sent yet.
pub fn from_params(p: &Params) -> Result<Desired, ModuleError> {
    let state = p.str("state").unwrap_or("present");
    let name = p.str("name").map(str::to_string);
    if let Some(n) = &name {
        check_word("name", n)?;
    }
    let monitors = p
        .get("monitors")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(monitor).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for m in &monitors {
        if !seen.insert(m.name.as_str()) {
            return Err(ModuleError::new(format!(
                "monitors: the name `{}` is listed twice",
                m.name
            )));
        }
    }
    let one = |what: &str| {
        name.clone().ok_or_else(|| {
            ModuleError::new(format!(
                "state is {what} but the `name` of the monitor is missing"
            ))
        })
    };
    Ok(match state {
        "absent" => {
            let mut names: Vec<String> = monitors.iter().map(|m| m.name.clone()).collect();
            names.extend(name.clone());
            if names.is_empty() {
                return Err(ModuleError::new(
                    "state is absent but neither `name` nor `monitors` names a monitor",
                ));
            }
            names.sort();
            names.dedup();
            Desired::Absent { names }
        }
        "failover" => Desired::Failover {
            name: one("failover")?,
        },
        "reset" => Desired::Reset {
            name: one("reset")?,
        },
        _ => Desired::Present {
            monitors,
            exclusive: p.flag("exclusive"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        Params(v.as_object().cloned().unwrap_or_default())
    }

    fn mon(extra: Value) -> Value {
        let mut m = json!({"name": "mymaster", "host": "127.0.0.1", "port": 6379, "quorum": 2,
            "down_after_milliseconds": 5000, "failover_timeout": 60000, "parallel_syncs": 1});
        if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        m
    }

    #[test]
    fn injection_and_bad_values_are_refused() {
        for bad in [
            json!({"name": "a\nsentinel deny-scripts-reconfig no"}),
            json!({"host": "127.0.0.1\r\n"}),
            json!({"name": "a b"}),
            json!({"auth_user": "u\0"}),
            json!({"auth_pass": "pw\nsentinel monitor evil 127.0.0.1 1 1"}),
            json!({"port": 70000}),
            json!({"quorum": 0}),
        ] {
            let p = params(json!({"state": "present", "monitors": [mon(bad.clone())]}));
            assert!(from_params(&p).is_err(), "{bad} accepted");
        }
        // Spaces and quotes in a password are fine.
        let p = params(json!({"monitors": [mon(json!({"auth_pass": "a b'\"$\\"}))]}));
        assert!(from_params(&p).is_ok());
    }

    #[test]
    fn duplicate_names_and_missing_names_are_refused() {
        let p = params(json!({"monitors": [mon(json!({})), mon(json!({}))]}));
        assert!(from_params(&p).is_err_and(|e| e.msg.contains("listed twice")));
        let p = params(json!({"state": "failover"}));
        assert!(from_params(&p).is_err_and(|e| e.msg.contains("`name`")));
        let p = params(json!({"state": "absent", "monitors": [mon(json!({}))], "name": "other"}));
        assert!(matches!(
            from_params(&p),
            Ok(Desired::Absent { names }) if names == ["mymaster", "other"]
        ));
    }
}
