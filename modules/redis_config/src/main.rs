//! `creativeflow.redis.redis_config`: renders redis.conf or sentinel.conf from the shared
//! templates, refuses what Redis would refuse (or what would expose an unprotected server),
//! writes it atomically, and with `apply: live` changes the running server without a restart,
//! saying exactly which changes need one.

mod conf;
mod directives;
mod live;
mod render;

use ansible_module::files::{self, FileAttrs};
use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome, Spec};
use conf::{Dialect, Line};
use redis_utils::connection::{with_connection_options, ConnectionParams};
use serde_json::{json, Map, Value};
use std::path::Path;

const PROFILES: [&str; 4] = ["cache", "session", "queue", "persistent"];

/// The module's identity and argument spec (documented in plugins/modules/redis_config.py).
fn definition() -> ModuleDef {
    let monitor = Spec::new(vec![
        Opt::str("name").required(),
        Opt::str("host").required(),
        Opt::int("port").default(6379),
        Opt::int("quorum").default(2),
        Opt::str("auth_user"),
        Opt::str("auth_pass").no_log(),
        Opt::int("down_after_milliseconds"),
        Opt::int("failover_timeout"),
        Opt::int("parallel_syncs"),
    ]);
    let mut spec = with_connection_options(vec![
        Opt::path("path").required().aliases(&["dest"]),
        Opt::str("template")
            .default("redis")
            .choices(&["redis", "sentinel"]),
        Opt::path("src"),
        Opt::bool("placeholders").default(false),
        Opt::str("profile").choices(&PROFILES),
        Opt::dict("settings").default(json!({})),
        Opt::list("monitors", ArgType::Dict).options(monitor),
        Opt::str("owner"),
        Opt::str("group"),
        Opt::raw("mode").default("0640"),
        Opt::bool("backup").default(false),
        Opt::bool("validate").default(true),
        Opt::str("apply").default("file").choices(&["file", "live"]),
        Opt::bool("allow_insecure").default(false),
    ]);
    spec = spec.required_if("placeholders", true, &["src"], false);
    ModuleDef {
        name: "redis_config",
        spec,
        supports_check_mode: true,
    }
}

/// Secure defaults every redis.conf starts from: loopback only, protected mode, foreground
/// (for systemd and for redis_service's direct mode).
fn base_settings(dialect: Dialect) -> Map<String, Value> {
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
fn profile_settings(profile: &str) -> Map<String, Value> {
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
                "settings.{k}: a value must be a string, number, boolean or a list of those, got {v}"
            )));
        }
        if k.contains(char::is_whitespace) && !k.starts_with("sentinel ") {
            return Err(ModuleError::new(format!(
                "settings: `{k}` is not a directive name"
            )));
        }
    }
    Ok(())
}

/// `##KEY##` templates as older shell tooling wrote them: KEY is a directive (case and `_`/`-`
/// do not matter).
fn fill_placeholders(src: &str, settings: &Map<String, Value>) -> Result<String, ModuleError> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut missing = Vec::new();
    while let Some(start) = rest.find("##") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("##") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let key = &after[..end];
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            out.push_str("##");
            rest = after;
            continue;
        }
        let wanted = key.to_lowercase().replace('_', "-");
        match settings
            .iter()
            .find(|(k, _)| k.to_lowercase().replace('_', "-") == wanted)
        {
            Some((_, v)) => out.push_str(&placeholder_text(v)),
            None => missing.push(key.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(ModuleError::new(format!(
            "placeholders with no value in settings: {}",
            missing
                .iter()
                .map(|m| format!("##{m}##"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

fn placeholder_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(placeholder_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Keeps Sentinel's view of a master after a failover: Sentinel rewrites `sentinel monitor` to
/// the new master and bumps its config-epoch; writing the old address back would undo the
/// failover on the next Sentinel restart.
fn keep_failed_over_masters(m: &Module, monitors: &mut [Value], old: Option<&[Line]>) {
    let Some(old) = old else { return };
    for mon in monitors.iter_mut() {
        let Some(name) = mon["name"].as_str().map(str::to_string) else {
            continue;
        };
        let epoch = old
            .iter()
            .find(|l| {
                l.name == "sentinel"
                    && l.args.len() == 3
                    && l.args[0] == "config-epoch"
                    && l.args[1] == name
            })
            .and_then(|l| l.args[2].parse::<u64>().ok())
            .unwrap_or(0);
        let current = old.iter().find(|l| {
            l.name == "sentinel" && l.args.len() == 5 && l.args[0] == "monitor" && l.args[1] == name
        });
        if let (Some(cur), true) = (current, epoch > 0) {
            let (host, port) = (cur.args[2].clone(), cur.args[3].parse::<i64>().unwrap_or(0));
            if mon["host"].as_str() != Some(host.as_str()) || mon["port"].as_i64() != Some(port) {
                m.warn(format!(
                    "Sentinel has failed over {name} to {host}:{port} (config-epoch {epoch}); keeping that address instead of {}:{} so the failover is not undone",
                    mon["host"].as_str().unwrap_or("?"),
                    mon["port"]
                ));
                mon["host"] = json!(host);
                mon["port"] = json!(port);
            }
        }
    }
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

fn run(m: &Module) -> Result<Outcome, ModuleError> {
    let p = &m.params;
    let path_s = p.str("path").unwrap_or_default().to_string();
    let path = Path::new(&path_s);
    let dialect = if p.str("template") == Some("sentinel") {
        Dialect::Sentinel
    } else {
        Dialect::Redis
    };
    let live = p.str("apply") == Some("live");
    if live && dialect == Dialect::Sentinel {
        return Err(ModuleError::new("apply: live is for redis.conf; change a running Sentinel with creativeflow.redis.redis_sentinel"));
    }
    if path.is_dir() {
        return Err(ModuleError::new(format!(
            "path `{path_s}` is a directory; give the config file's path"
        )));
    }
    let attrs_mode = mode_of(m)?;
    files::check_owner(p.str("owner"), p.str("group")).map_err(|e| ModuleError::new(e.0))?;

    let user_settings = p
        .get("settings")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    check_setting_values(&user_settings)?;
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

    let old_text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ModuleError::new(format!("cannot read `{path_s}`: {e}"))),
    };
    let old_lines: Option<Vec<Line>> = old_text.as_deref().and_then(|t| conf::parse(t).ok());
    if let Some(o) = &old_lines {
        for s in conf::secrets_in(o) {
            m.add_secret(&s);
        }
    }

    let mut monitors: Vec<Value> = p
        .get("monitors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if dialect == Dialect::Redis && !monitors.is_empty() {
        return Err(ModuleError::new(
            "monitors apply to sentinel.conf (template: sentinel)",
        ));
    }
    keep_failed_over_masters(m, &mut monitors, old_lines.as_deref());
    let vars = match dialect {
        Dialect::Redis => json!({ "redis_settings": settings }),
        Dialect::Sentinel => {
            json!({ "sentinel_settings": settings, "sentinel_monitors": monitors })
        }
    };

    let (template_name, source) = match p.str("src") {
        Some(src) => (
            src.to_string(),
            std::fs::read_to_string(src)
                .map_err(|e| ModuleError::new(format!("cannot read src `{src}`: {e}")))?,
        ),
        None => match dialect {
            Dialect::Redis => (
                "redis.conf.j2".to_string(),
                render::REDIS_TEMPLATE.to_string(),
            ),
            Dialect::Sentinel => (
                "sentinel.conf.j2".to_string(),
                render::SENTINEL_TEMPLATE.to_string(),
            ),
        },
    };
    let rendered = if p.flag("placeholders") {
        fill_placeholders(&source, &settings)?
    } else {
        render::render(&template_name, &source, &vars).map_err(ModuleError::new)?
    };

    let lines =
        conf::parse(&rendered).map_err(|e| ModuleError::new(format!("rendered config: {e}")))?;
    for s in conf::secrets_in(&lines) {
        m.add_secret(&s);
    }
    if p.flag("validate") {
        conf::validate_lines(&lines, dialect).map_err(ModuleError::new)?;
        conf::check_contradictions(&lines, dialect).map_err(ModuleError::new)?;
    }
    if !p.flag("allow_insecure") {
        conf::check_security(&lines, dialect).map_err(ModuleError::new)?;
    }

    // Sentinel's generated block (its state) is kept; only our part is compared.
    let new_text = match (dialect, old_text.as_deref()) {
        (Dialect::Sentinel, Some(old)) => {
            let (_, generated) = conf::split_generated(old);
            if generated.is_empty() {
                rendered.clone()
            } else {
                format!("{}\n\n{generated}", rendered.trim_end_matches('\n'))
            }
        }
        _ => rendered.clone(),
    };
    let content_changed = match (dialect, old_text.as_deref()) {
        (_, None) => true,
        // Sentinel rewrites its file in its own style (it quotes `dir`, for one), so compare
        // what Sentinel reads: directives and their arguments.
        (Dialect::Sentinel, Some(old)) => {
            !conf::same_directives(conf::split_generated(old).0, &rendered)
        }
        (Dialect::Redis, Some(old)) => old != rendered,
    };

    let attrs = FileAttrs {
        mode: attrs_mode,
        owner: p.str("owner"),
        group: p.str("group"),
        follow: false,
    };
    let attrs_changed = if !content_changed && old_text.is_some() {
        files::ensure_attrs(path, &attrs, m.check_mode).map_err(|e| ModuleError::new(e.0))?
    } else {
        false
    };

    let mut live_result = None;
    let mut con = None;
    if live {
        let mut cp = ConnectionParams::from_params(p)?;
        if cp.password.is_none() {
            // The running server still has the old file's password until this run changes it.
            let from = old_lines.as_deref().unwrap_or(&lines);
            cp.password = conf::last(from, "requirepass")
                .and_then(|l| l.args.first().cloned())
                .filter(|s| !s.is_empty());
        }
        let mut c = cp.connect()?;
        live_result = Some(live::apply(
            &mut c,
            &lines,
            old_lines.as_deref(),
            m.check_mode,
        )?);
        con = Some(c);
    }

    let mut backup_file = None;
    if content_changed && !m.check_mode {
        if p.flag("backup") && old_text.is_some() {
            backup_file = Some(files::backup(path).map_err(|e| ModuleError::new(e.0))?);
        }
        if let Err(e) = files::write_atomic(path, new_text.as_bytes(), &attrs) {
            if let (Some(c), Some(r)) = (con.as_mut(), live_result.as_ref()) {
                let undone = live::undo(c, &r.undo).map_or_else(
                    |e| format!("; undoing the live changes failed too: {e}"),
                    |()| "; the live changes were undone".into(),
                );
                return Err(ModuleError::new(format!("{}{undone}", e.0)));
            }
            return Err(ModuleError::new(e.0));
        }
    }

    let live_result = live_result.unwrap_or_default();
    let changed = content_changed || attrs_changed || !live_result.applied.is_empty();
    let restart_required = !live_result.restart_reasons.is_empty();
    let (written, fixed) = if m.check_mode {
        ("would be written", "would be fixed")
    } else {
        ("written", "fixed")
    };
    let mut msg = if content_changed {
        format!("{path_s} {written}")
    } else if attrs_changed {
        format!("{path_s}: mode/owner {fixed}")
    } else {
        format!("{path_s} is up to date")
    };
    if live {
        if live_result.applied.is_empty() {
            msg.push_str("; running server already matches");
        } else {
            msg.push_str(&format!(
                "; {} live: {}",
                if m.check_mode {
                    "would apply"
                } else {
                    "applied"
                },
                live_result.applied.join(", ")
            ));
        }
        if restart_required {
            msg.push_str(&format!(
                "; restart required for: {}",
                live_result
                    .restart_reasons
                    .iter()
                    .map(|r| r.split(':').next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    let mut out = Outcome::new(changed)
        .msg(msg)
        .with("path", &path_s)
        .with("file_changed", content_changed)
        .with("applied", &live_result.applied)
        .with("restart_required", restart_required)
        .with("restart_reasons", &live_result.restart_reasons)
        .with("settings", &settings);
    if live {
        out.set("live_changes", &live_result.changes);
    }
    if let Some(b) = backup_file {
        out.set("backup_file", b.display().to_string());
    }
    if m.diff_mode {
        let mut diffs = vec![json!({
            "before": conf::mask_secrets(old_text.as_deref().unwrap_or("")),
            "after": conf::mask_secrets(&new_text),
            "before_header": path_s,
            "after_header": path_s,
        })];
        if !live_result.changes.is_empty() {
            let fmt = |key: &str| {
                live_result
                    .changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {}\n",
                            c["directive"].as_str().unwrap_or(""),
                            c[key].as_str().unwrap_or("")
                        )
                    })
                    .collect::<String>()
            };
            diffs.push(json!({
                "before": fmt("before"),
                "after": fmt("after"),
                "before_header": "running server (CONFIG GET)",
                "after_header": "running server (CONFIG SET)",
            }));
        }
        out.set("diff", diffs);
    }
    Ok(out)
}

fn main() {
    ansible_module::run(&definition(), run);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_and_report_missing() {
        let s = json!({"port": 6380, "appendonly": true, "save": ["900 1"]});
        let s = s.as_object().cloned().unwrap_or_default();
        assert_eq!(
            fill_placeholders(
                "port ##PORT##\nappendonly ##appendonly##\nsave ##save##\n# ## not a placeholder\n",
                &s
            )
            .map_err(|e| e.msg),
            Ok("port 6380\nappendonly yes\nsave 900 1\n# ## not a placeholder\n".to_string())
        );
        assert!(fill_placeholders("x ##MAXMEMORY##", &s)
            .is_err_and(|e| e.msg == "placeholders with no value in settings: ##MAXMEMORY##"));
    }

    #[test]
    fn nested_setting_values_are_refused() {
        let s = json!({"bind": {"a": 1}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(check_setting_values(&s).is_err_and(|e| e.msg.starts_with("settings.bind:")));
    }

    #[test]
    fn every_profile_renders_and_validates() {
        for p in PROFILES {
            let mut s = base_settings(Dialect::Redis);
            s.extend(profile_settings(p));
            let out = render::render(
                "redis.conf.j2",
                render::REDIS_TEMPLATE,
                &json!({"redis_settings": s}),
            );
            let text = out.unwrap_or_default();
            let lines = conf::parse(&text).unwrap_or_default();
            assert!(
                conf::validate_lines(&lines, Dialect::Redis).is_ok(),
                "{p}: {text}"
            );
            assert!(
                conf::check_contradictions(&lines, Dialect::Redis).is_ok(),
                "{p}"
            );
            assert!(conf::check_security(&lines, Dialect::Redis).is_ok(), "{p}");
        }
    }
}
