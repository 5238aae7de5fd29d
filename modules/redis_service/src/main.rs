//! `creativeflow.redis.redis_service`: start, stop, restart and report one redis-server or
//! redis-sentinel instance, either directly (a detached process and its pidfile) or through the
//! systemd units `redis-server@<name>` / `redis-sentinel@<name>`.

mod config;
mod direct;
mod procfs;
mod report;
mod systemd;

use ansible_module::{Module, ModuleDef, ModuleError, Opt, Outcome};
use config::{resolve_endpoint, Endpoint, Kind, RedisConfig};
use redis_utils::connection::{with_connection_options, ConnectionParams};
use report::{query_info, Report};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use systemd::{plan, unit_name, State, Systemctl};

/// The module's identity and argument spec (documented in plugins/modules/redis_service.py).
pub fn definition() -> ModuleDef {
    ModuleDef {
        name: "redis_service",
        spec: with_connection_options(vec![
            Opt::str("name").required(),
            Opt::str("kind")
                .default("server")
                .choices(&["server", "sentinel"]),
            Opt::str("state")
                .required()
                .choices(&["started", "stopped", "restarted", "status"]),
            Opt::path("config"),
            Opt::str("manager")
                .default("auto")
                .choices(&["auto", "systemd", "direct"]),
            Opt::bool("enabled"),
            Opt::path("pidfile"),
            Opt::str("shutdown")
                .default("save")
                .choices(&["save", "nosave", "default"]),
            Opt::float("wait_timeout").default(60.0),
            Opt::float("force_kill_after"),
            Opt::path("binary"),
            Opt::str("user"),
            Opt::str("group"),
        ])
        .required_if("state", "started", &["config"], false)
        .required_if("state", "restarted", &["config"], false),
        supports_check_mode: true,
    }
}

/// Which service manager handles the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Direct,
    Systemd,
}

/// One invocation, resolved: options, config file, pidfile, where to PING.
pub struct Ctx<'a> {
    pub m: &'a Module,
    pub name: String,
    pub kind: Kind,
    pub state: State,
    pub config: Option<RedisConfig>,
    /// The directory Redis is started in (the config file's directory).
    pub cwd: PathBuf,
    pub pidfile: Option<PathBuf>,
    pub endpoint: Option<Endpoint>,
    /// SHUTDOWN's argument: SAVE, NOSAVE or none.
    pub shutdown: Option<&'static str>,
    pub wait_timeout: Duration,
    pub force_kill_after: Option<Duration>,
    pub binary_param: Option<PathBuf>,
    /// Direct mode: the uid and gid the server runs as (root starting it for the `redis` user).
    pub run_as: Option<(u32, u32)>,
    pub actions: Vec<String>,
    /// login_password and every secret of the config file: masked in all output.
    pub secrets: BTreeSet<String>,
}

impl Ctx<'_> {
    /// `redis-server@name`, as messages name the instance.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}@{}", self.kind.program(), self.name)
    }

    /// Adds a warning with secrets masked.
    pub fn warn(&self, msg: &str) {
        self.m
            .warn(ansible_module::nolog::mask_str(msg, &self.secrets));
    }

    /// The executable to start: `binary`, or redis-server / redis-sentinel from PATH.
    ///
    /// # Errors
    /// Not found, or not an executable file.
    pub fn binary(&self) -> Result<PathBuf, String> {
        let program = self.kind.program();
        if let Some(b) = &self.binary_param {
            return match std::fs::metadata(b) {
                Ok(md) if md.is_file() => {
                    use std::os::unix::fs::PermissionsExt;
                    if md.permissions().mode() & 0o111 == 0 {
                        Err(format!("binary {} is not executable", b.display()))
                    } else {
                        Ok(b.clone())
                    }
                }
                Ok(_) => Err(format!("binary {} is not a file", b.display())),
                Err(e) => Err(format!("binary {}: {e}", b.display())),
            };
        }
        which::which(program).map_err(|_| {
            format!(
                "cannot find {program} on PATH ({}): install Redis ({} package) or set binary to its path",
                std::env::var("PATH").unwrap_or_default(),
                if self.kind == Kind::Sentinel { "redis-sentinel" } else { "redis-server" }
            )
        })
    }

    /// The config file's path, when given.
    #[must_use]
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_ref().map(|c| c.path.as_path())
    }

    /// A report with the module's common fields filled in.
    #[must_use]
    pub fn report(&self, manager: &'static str) -> Report {
        let mut r = Report {
            manager,
            actions: self.actions.clone(),
            ..Report::default()
        };
        r.extra.insert("name".into(), self.name.clone().into());
        r.extra.insert(
            "kind".into(),
            (if self.kind == Kind::Sentinel {
                "sentinel"
            } else {
                "server"
            })
            .into(),
        );
        r.extra.insert(
            "config".into(),
            self.config_path().map(|p| p.display().to_string()).into(),
        );
        r.extra.insert(
            "address".into(),
            self.endpoint.as_ref().map(|e| e.conn.address()).into(),
        );
        r
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be a non-empty instance name of letters, digits, '-', '_', '.' and ':' (it becomes the systemd unit redis-server@<name>)"
        ))
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
    }
}

/// Resolves `user`/`group` for direct mode. Without `group`, the user's primary group. Only root
/// can start a server as another user; asking for the current user is always fine.
fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<(u32, u32)>, ModuleError> {
    use nix::unistd::{Group, User};
    let Some(user) = user else {
        return match group {
            Some(_) => Err(ModuleError::new(
                "group needs user (the user the server runs as)",
            )),
            None => Ok(None),
        };
    };
    let u = User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| ModuleError::new(format!("user `{user}` does not exist on this host")))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    ModuleError::new(format!("group `{g}` does not exist on this host"))
                })?
                .gid
        }
        None => u.gid,
    };
    let me = nix::unistd::geteuid();
    if !me.is_root() && me != u.uid {
        return Err(ModuleError::new(format!(
            "only root can start a server as `{user}`; this module runs as uid {me}"
        )));
    }
    Ok(Some((u.uid.as_raw(), gid.as_raw())))
}

fn build_ctx(m: &Module) -> Result<Ctx<'_>, ModuleError> {
    let p = &m.params;
    let name = p.str("name").unwrap_or_default().to_string();
    validate_name(&name).map_err(ModuleError::new)?;
    let kind = Kind::parse(p.str("kind").unwrap_or("server"));
    let state = State::parse(p.str("state").unwrap_or("status"));
    let wait = p.float("wait_timeout").unwrap_or(60.0);
    if !(wait > 0.0 && wait.is_finite()) {
        return Err(ModuleError::new(format!(
            "wait_timeout must be a positive number of seconds, got {wait}"
        )));
    }
    let force_kill_after = match p.float("force_kill_after") {
        Some(f) if !(f >= 0.0 && f.is_finite()) => {
            return Err(ModuleError::new(format!(
                "force_kill_after must be zero or a positive number of seconds, got {f}"
            )))
        }
        Some(f) => Some(Duration::from_secs_f64(f)),
        None => None,
    };
    let config = match p.str("config") {
        Some(c) => Some(RedisConfig::load(&absolute(Path::new(c))).map_err(ModuleError::new)?),
        None => None,
    };
    let cwd = config
        .as_ref()
        .and_then(|c| c.path.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut secrets: BTreeSet<String> = m.no_log_values().clone();
    if let Some(c) = &config {
        secrets.extend(c.secrets());
        c.port(kind).map_err(ModuleError::new)?;
    }
    let pidfile = match (p.str("pidfile"), &config) {
        (Some(pf), _) => Some(absolute(Path::new(pf))),
        (None, Some(c)) => Some(match c.pidfile() {
            Some(pf) => c.resolve(pf, &cwd),
            None => cwd.join(format!("{name}.pid")),
        }),
        (None, None) => None,
    };
    let base = ConnectionParams::from_params(p)?;
    let endpoint = resolve_endpoint(&base, config.as_ref(), kind, &cwd);
    let shutdown = match (kind, p.str("shutdown").unwrap_or("save")) {
        // Sentinel has no dataset to save.
        (Kind::Sentinel, _) => Some("NOSAVE"),
        (_, "nosave") => Some("NOSAVE"),
        (_, "default") => None,
        _ => Some("SAVE"),
    };
    Ok(Ctx {
        m,
        name,
        kind,
        state,
        config,
        cwd,
        pidfile,
        endpoint,
        shutdown,
        wait_timeout: Duration::from_secs_f64(wait),
        force_kill_after,
        binary_param: p.str("binary").map(|b| absolute(Path::new(b))),
        run_as: run_as(p.str("user"), p.str("group"))?,
        actions: Vec::new(),
        secrets,
    })
}

fn choose_manager(ctx: &Ctx) -> Result<Manager, ModuleError> {
    match ctx.m.params.str("manager").unwrap_or("auto") {
        "direct" => Ok(Manager::Direct),
        "systemd" => {
            if systemd::systemd_running() {
                Ok(Manager::Systemd)
            } else {
                Err(ModuleError::new(format!(
                    "manager=systemd, but systemd is not running on this host (/run/systemd/system does not exist; PID 1 is {}): use manager=direct or manager=auto",
                    systemd::pid1_name()
                )))
            }
        }
        _ => {
            let unit = unit_name(ctx.kind.program(), &ctx.name);
            let use_systemd =
                systemd::systemd_running() && Systemctl::find().is_ok_and(|s| s.unit_exists(&unit));
            Ok(if use_systemd {
                Manager::Systemd
            } else {
                Manager::Direct
            })
        }
    }
}

/// The whole module: resolve, pick the manager, act.
///
/// # Errors
/// Bad options, a missing config file or binary, or the service could not be brought to the
/// wanted state (the message says why).
pub fn service(m: &Module) -> Result<Outcome, ModuleError> {
    let mut ctx = build_ctx(m)?;
    let manager = choose_manager(&ctx)?;
    let secrets = ctx.secrets.clone();
    let report = match manager {
        Manager::Direct => {
            if m.params.bool("enabled").is_some() {
                ctx.warn("enabled only applies to manager=systemd; ignored because the instance is managed directly (no systemd unit)");
            }
            direct::run(&mut ctx)?
        }
        Manager::Systemd => run_systemd(&mut ctx)?,
    };
    Ok(report.into_outcome(&secrets))
}

/// The path the unit template starts the instance with.
#[must_use]
pub fn unit_config_path(kind: Kind, name: &str) -> PathBuf {
    match kind {
        Kind::Server => PathBuf::from(format!("/etc/redis/{name}.conf")),
        Kind::Sentinel => PathBuf::from(format!("/etc/redis/sentinel-{name}.conf")),
    }
}

fn run_systemd(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let sc = Systemctl::find().map_err(ModuleError::new)?;
    let unit = unit_name(ctx.kind.program(), &ctx.name);
    let expected = unit_config_path(ctx.kind, &ctx.name);
    if let Some(c) = ctx.config_path() {
        if c != expected {
            ctx.warn(&format!(
                "{unit} starts with {}; config {} is only read to find the port and password",
                expected.display(),
                c.display()
            ));
        }
    }
    if ctx.force_kill_after.is_some() || ctx.m.params.str("shutdown") != Some("save") {
        ctx.warn("shutdown and force_kill_after apply to manager=direct only; systemd stops the unit with SIGTERM (and SIGKILL after TimeoutStopSec)");
    }
    let cur = sc.status(&unit).map_err(ModuleError::new)?;
    let commands =
        plan(ctx.state, ctx.m.params.bool("enabled"), &unit, &cur).map_err(ModuleError::new)?;
    let changed = !commands.is_empty();
    let fill = |ctx: &Ctx, r: &mut Report, status: &systemd::UnitStatus| {
        r.running = status.active == "active";
        r.pid = if r.running { sc.main_pid(&unit) } else { None };
        r.extra.insert("unit".into(), unit.clone().into());
        r.extra.insert("enabled".into(), status.is_enabled().into());
        r.extra
            .insert("active_state".into(), status.active.clone().into());
        if r.running {
            if let Some(ep) = &ctx.endpoint {
                match query_info(&ep.conn) {
                    Ok(info) => r.info = Some(info),
                    Err(e) => ctx.warn(&format!("{unit} is active but INFO failed: {e}")),
                }
            }
        }
    };
    if ctx.m.check_mode {
        ctx.actions = commands
            .iter()
            .map(|c| format!("would run systemctl {}", c.join(" ")))
            .collect();
        let mut r = ctx.report("systemd");
        fill(ctx, &mut r, &cur);
        r.changed = changed;
        r.msg = if changed {
            format!(
                "check mode: would run {} systemctl command(s) for {unit}",
                commands.len()
            )
        } else {
            format!("{unit} is already {}", cur.active)
        };
        return Ok(r);
    }
    for c in &commands {
        let out = sc.run(c).map_err(ModuleError::new)?;
        if !out.success {
            let journal = Systemctl::journal_tail(&unit, 20);
            let mut r = ctx.report("systemd");
            let now = sc.status(&unit).unwrap_or_else(|_| cur.clone());
            fill(ctx, &mut r, &now);
            r.changed = !ctx.actions.is_empty();
            let msg = format!(
                "systemctl {} failed: {}{}",
                c.join(" "),
                if out.stderr.is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                },
                if journal.is_empty() {
                    String::new()
                } else {
                    format!("\nLast journal lines of {unit}:\n{}", journal.join("\n"))
                }
            );
            return Err(r.into_error(&msg, &ctx.secrets));
        }
        ctx.actions.push(format!("systemctl {}", c.join(" ")));
    }
    let now = sc.status(&unit).map_err(ModuleError::new)?;
    let mut r = ctx.report("systemd");
    fill(ctx, &mut r, &now);
    r.changed = changed;
    r.msg = if changed {
        format!("{unit}: {}", ctx.actions.join(", "))
    } else {
        format!("{unit} is {}; nothing to do", now.active)
    };
    Ok(r)
}

fn main() {
    ansible_module::run(&definition(), service);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_unit_safe() {
        for ok in ["cache", "cache-1", "a_b.c", "db:7000"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "../x", "a/b", "x@y", "ünï"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_config_paths() {
        assert_eq!(
            unit_config_path(Kind::Server, "cache"),
            PathBuf::from("/etc/redis/cache.conf")
        );
        assert_eq!(
            unit_config_path(Kind::Sentinel, "main"),
            PathBuf::from("/etc/redis/sentinel-main.conf")
        );
    }

    #[test]
    fn spec_requires_config_to_start() {
        let def = definition();
        let input = serde_json::json!({"name": "x", "state": "started"});
        let e = ansible_module::spec::validate(&def.spec, input.as_object().expect("object")).err();
        assert_eq!(
            e.map(|e| e.msg),
            Some("state is started but all of the following are missing: config".to_string())
        );
        let input = serde_json::json!({"name": "x", "state": "status"});
        assert!(
            ansible_module::spec::validate(&def.spec, input.as_object().expect("object")).is_ok()
        );
    }
}
