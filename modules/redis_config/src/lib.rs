//! `creativeflow.redis.redis_config`: renders redis.conf or sentinel.conf from the shared
//! templates, refuses what Redis would refuse (or what would leave the server open), writes it
//! atomically, and with `apply: live` changes the running server without a restart, saying
//! exactly which changes need one.
//!
//! One run is a pipeline of three stages, each a value the next one reads:
//!
//! 1. **desired state** ([`desired::Desired`]): the request ([`input::Request`]) rendered
//!    through the template and checked the way Redis reads it; with `replication: initial`,
//!    rendered again with the replication the server has now ([`replication::Kept`]) and
//!    compared with the existing file by what it says ([`compare`]);
//! 2. **plan** ([`plan::Plan`]): what differs, as `(name, desired, current)` entries for the
//!    file, for `CONFIG SET`, for `REPLICAOF`, and for what waits for a restart; check mode
//!    stops here and reports it;
//! 3. **apply** ([`apply::apply`]): backup, live changes, file, and if anything fails after a
//!    live change, every live change undone.
//!
//! ```no_run
//! ansible_module::run(&redis_config::definition(), redis_config::run);
//! ```

pub mod acl;
pub mod apply;
pub mod commands;
pub mod compare;
pub mod conf;
pub mod desired;
pub mod directives;
pub mod input;
pub mod live;
pub mod plan;
pub mod render;
pub mod replication;
pub mod server;
mod sha256;
pub mod target;

use ansible_module::files;
use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome, Spec};
use apply::Done;
use desired::Desired;
use input::{Request, PROFILES};
use live::ServerState;
use plan::{FilePlan, Plan};
use redis_utils::connection::with_connection_options;
use replication::{Kept, Replication};
use serde_json::json;
use target::Target;

/// The module's identity and argument spec (documented in plugins/modules/redis_config.py).
#[must_use]
pub fn definition() -> ModuleDef {
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
        Opt::bool("follow").default(false),
        Opt::bool("backup").default(false),
        Opt::bool("validate").default(true),
        Opt::str("apply").default("file").choices(&["file", "live"]),
        Opt::str("replication")
            .default("managed")
            .choices(&["managed", "initial"]),
        Opt::bool("allow_insecure").default(false),
        Opt::str("server_version")
            .default("auto")
            .choices(&directives::SERVER_VERSION_CHOICES),
    ]);
    spec = spec.required_if("placeholders", true, &["src"], false);
    ModuleDef {
        name: "redis_config",
        spec,
        supports_check_mode: true,
    }
}

/// One invocation: desired state, plan, apply, report.
///
/// # Errors
/// Bad input, a config Redis would refuse, a server that cannot be reached, or a failed step
/// (with its live changes undone).
pub fn run(m: &Module) -> Result<Outcome, ModuleError> {
    // The connection options are checked even when this run does not connect (`apply: file`):
    // a port of 70000 is bad input whether or not it is used.
    redis_utils::connection::ConnectionParams::from_params(&m.params)?;
    let req = Request::from_module(m)?;
    files::check_owner(req.owner.as_deref(), req.group.as_deref())
        .map_err(|e| ModuleError::new(e.0))?;
    let target = Target::inspect(&req.path, req.follow)?;
    let mut desired = Desired::build(m, &req, &target)?;
    let mut con = if req.live {
        Some(live::connect(m, &desired)?)
    } else {
        None
    };
    // `replication: initial`: the replicaof to keep decides what the file says, so the file is
    // rendered again when it is not the task's.
    let kept = match req.replication {
        Replication::Managed => None,
        Replication::Initial => {
            let k = Kept::resolve(&req, &target, &desired, con.as_mut())?;
            if !k.matches_task() {
                desired = Desired::build(m, &k.request(&req), &target)?;
            }
            k.check_rendered(&desired)?;
            Some(k)
        }
    };
    // `server_version: auto` with a connection: the running server's directives decide,
    // before anything is read for the plan or written.
    let mut checked_against = req.against.clone();
    if req.validate && checked_against.version.is_none() {
        if let Some(c) = con.as_mut() {
            let (v, label) = server::on_server(c, &desired.lines).map_err(ModuleError::new)?;
            checked_against = conf::Against {
                version: Some(v),
                label,
            };
        }
    }
    for w in req.against_warnings.iter().chain(&desired.warnings) {
        m.warn(w.clone());
    }
    let state = match con.as_mut() {
        Some(c) => Some(live::read_state(m, c, &desired)?),
        None => None,
    };
    if kept.is_some() && !target.replaces_link {
        if let (Some(old), Some(_)) = (&desired.old_lines, &target.old_text) {
            let table = state
                .as_ref()
                .map(|s| &s.command_table)
                .filter(|t| !t.is_empty());
            desired.content_changed = !compare::differences(old, &desired.lines, table).is_empty();
        }
    }
    let mut plan = make_plan(&req, &target, &desired, state.as_ref())?;
    // Never REPLICAOF with `replication: initial`: the difference is reported instead.
    let not_sent = if kept.is_some() {
        plan.replicaof.take()
    } else {
        None
    };
    let done = apply::apply(m, &req, &target, &desired, &plan, con.as_mut())?;
    let mut out = report(m, &req, &target, &desired, &plan, &done);
    if req.dialect == conf::Dialect::Redis && req.validate {
        if let Some(v) = checked_against.version {
            out.set(
                "server_version",
                json!({"table": v.key(), "checked_against": checked_against.label}),
            );
        }
    }
    if let Some(k) = &kept {
        out.set("replication_source", k.source.name());
        out.set("replication_note", k.note(&req.path, not_sent.as_ref()));
    }
    Ok(out)
}

fn make_plan(
    req: &Request,
    target: &Target,
    desired: &Desired,
    state: Option<&ServerState>,
) -> Result<Plan, ModuleError> {
    let exists = target.old_text.is_some();
    let content_changed = desired.content_changed;
    let attrs_changed = !content_changed
        && exists
        && files::ensure_attrs(&target.file, &req.attrs(), true)
            .map_err(|e| ModuleError::new(e.0))?;
    let file = FilePlan {
        content_changed,
        replaces_link: target.replaces_link,
        attrs_changed,
        backup: req.backup && content_changed && exists,
    };
    let mut plan = match state {
        Some(s) => plan::live(desired, s),
        None => Plan::default(),
    };
    plan.file = file;
    Ok(plan)
}

fn report(
    m: &Module,
    req: &Request,
    target: &Target,
    desired: &Desired,
    plan: &Plan,
    done: &Done,
) -> Outcome {
    let path = &req.path;
    let applied = done.applied();
    let changed = plan.file.content_changed || plan.file.attrs_changed || !applied.is_empty();
    let reasons: Vec<String> = done.restart.iter().map(plan::Restart::reason).collect();
    let (written, fixed, would) = if m.check_mode {
        ("would be written", "would be fixed", "would apply")
    } else {
        ("written", "fixed", "applied")
    };
    let mut msg = if plan.file.content_changed && plan.file.replaces_link {
        format!("{path} {written} (the symlink replaced by a file; follow: true writes through it)")
    } else if plan.file.content_changed {
        format!("{path} {written}")
    } else if plan.file.attrs_changed {
        format!("{path}: mode/owner {fixed}")
    } else {
        format!("{path} is up to date")
    };
    let live_changes: Vec<serde_json::Value> = done
        .config_set
        .iter()
        .chain(done.replicaof.iter())
        .map(|e| json!({"directive": e.name, "before": e.shown(&e.current), "after": e.shown(&e.desired)}))
        .collect();
    if req.live {
        if applied.is_empty() {
            msg.push_str("; running server already matches");
        } else {
            msg.push_str(&format!("; {would} live: {}", applied.join(", ")));
        }
        if !done.restart.is_empty() {
            let names: Vec<&str> = done.restart.iter().map(|r| r.name.as_str()).collect();
            msg.push_str(&format!("; restart required for: {}", names.join(", ")));
        }
    }

    let mut out = Outcome::new(changed)
        .msg(msg)
        .with("path", path)
        .with("file_changed", plan.file.content_changed)
        .with("applied", &applied)
        .with("restart_required", !done.restart.is_empty())
        .with("restart_reasons", &reasons)
        .with("settings", &req.settings);
    if req.live {
        out.set("live_changes", &live_changes);
    }
    if let Some(b) = &done.backup {
        out.set("backup_file", b.display().to_string());
    }
    if m.diff_mode {
        let mut diffs = vec![json!({
            "before": conf::mask_secrets(target.old_text.as_deref().unwrap_or("")),
            "after": conf::mask_secrets(&desired.text),
            "before_header": path,
            "after_header": path,
        })];
        if !live_changes.is_empty() {
            let fmt = |key: &str| {
                live_changes
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use conf::Dialect;

    #[test]
    fn every_profile_renders_and_validates() {
        for p in PROFILES {
            let mut s = input::base_settings(Dialect::Redis);
            s.extend(input::profile_settings(p));
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
            assert!(conf::validate_file(&lines, Dialect::Redis).is_ok(), "{p}");
            assert!(
                conf::check_contradictions(&lines, Dialect::Redis).is_ok(),
                "{p}"
            );
            assert!(conf::check_security(&lines, Dialect::Redis).is_ok(), "{p}");
        }
    }
}
