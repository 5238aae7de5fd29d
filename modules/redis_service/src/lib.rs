//! `creativeflow.redis.redis_service`: start, stop, restart and report one redis-server or
//! redis-sentinel instance (or Valkey's valkey-server / valkey-sentinel, see [`flavour`]), either
//! directly (a detached process and its pidfile) or through the systemd units
//! `redis-server@<name>` / `redis-sentinel@<name>` (`valkey-server@<name>` / ...).
//!
//! Every run has the same shape: the options become the desired state ([`desired::Desired`]),
//! the manager's current state is read, a plan (a list of steps, or of systemctl commands) is
//! made from the two, and the plan is carried out, or in check mode only reported. `changed` is
//! whether the plan had a step that changes something, so a check run and a real run agree.
//!
//! ```no_run
//! ansible_module::run(&redis_service::definition(), redis_service::service);
//! ```

pub mod config;
pub mod desired;
pub mod direct;
pub mod flavour;
pub mod procfs;
pub mod report;
pub mod systemd;
pub mod unit;

use ansible_module::{Module, ModuleDef, ModuleError, Opt, Outcome};
use config::Kind;
use desired::Desired;
use flavour::Flavour;
use redis_utils::connection::with_connection_options;
use report::Report;
use std::collections::BTreeSet;
use std::path::PathBuf;
use systemd::{unit_name, Systemctl};

/// The module's identity and argument spec (documented in plugins/modules/redis_service.py).
#[must_use]
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
            Opt::str("flavour")
                .default("auto")
                .choices(&["auto", "redis", "valkey"]),
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

/// One run: the desired state, the module it runs in, and what has been done so far.
pub struct Ctx<'a> {
    pub m: &'a Module,
    pub want: Desired,
    /// What was done (or, in check mode, would be done), in order: the `actions` return value.
    pub actions: Vec<String>,
    /// login_password and every secret of the config file: masked in all output. (They are
    /// registered with the module too; this copy masks the report before it is returned.)
    pub secrets: BTreeSet<String>,
}

impl Ctx<'_> {
    /// `redis-server@name`, as messages name the instance.
    #[must_use]
    pub fn label(&self) -> String {
        self.want.label()
    }

    /// Adds a warning with secrets masked.
    pub fn warn(&self, msg: &str) {
        self.m
            .warn(ansible_module::nolog::mask_str(msg, &self.secrets));
    }

    /// A report with the module's common fields filled in.
    #[must_use]
    pub fn report(&self, manager: &'static str) -> Report {
        let mut r = Report {
            manager,
            actions: self.actions.clone(),
            ..Report::default()
        };
        r.extra.insert("name".into(), self.want.name.clone().into());
        r.extra.insert(
            "kind".into(),
            (if self.want.kind == Kind::Sentinel {
                "sentinel"
            } else {
                "server"
            })
            .into(),
        );
        r.extra
            .insert("flavour".into(), self.want.flavour.as_str().into());
        r.extra.insert(
            "config".into(),
            self.want
                .config_path()
                .map(|p| p.display().to_string())
                .into(),
        );
        r.extra.insert(
            "address".into(),
            self.want.endpoint.as_ref().map(|e| e.conn.address()).into(),
        );
        r
    }
}

fn choose_manager(m: &Module, want: &Desired) -> Result<Manager, ModuleError> {
    match m.params.str("manager").unwrap_or("auto") {
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
            let unit = unit_name(want.program(), &want.name);
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

/// The whole module: desired state, manager, then that manager's plan and apply.
///
/// # Errors
/// Bad options, a missing config file or binary, or the service could not be brought to the
/// wanted state (the message says why).
pub fn service(m: &Module) -> Result<Outcome, ModuleError> {
    // Every option is checked before anything happens: a bad login_host must not be found out
    // only after the server was started.
    redis_utils::connection::ConnectionParams::from_params(&m.params)?;
    let want = Desired::from_module(m)?;
    let manager = choose_manager(m, &want)?;
    let mut secrets: BTreeSet<String> = m.no_log_values().clone();
    if let Some(c) = &want.config {
        secrets.extend(c.secrets(&want.cwd));
    }
    let mut ctx = Ctx {
        m,
        want,
        actions: Vec::new(),
        secrets,
    };
    let report = match manager {
        Manager::Direct => {
            if m.params.bool("enabled").is_some() {
                ctx.warn("enabled only applies to manager=systemd; ignored because the instance is managed directly (no systemd unit)");
            }
            direct::run(&mut ctx)?
        }
        Manager::Systemd => unit::run(&mut ctx)?,
    };
    Ok(report.into_outcome(&ctx.secrets))
}

/// The path the unit template starts the instance with (the collection's templates; the
/// module asks systemd first, see [`unit::run`]).
#[must_use]
pub fn unit_config_path(flavour: Flavour, kind: Kind, name: &str) -> PathBuf {
    let dir = flavour.config_dir();
    match kind {
        Kind::Server => PathBuf::from(format!("{dir}/{name}.conf")),
        Kind::Sentinel => PathBuf::from(format!("{dir}/sentinel-{name}.conf")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_config_paths() {
        assert_eq!(
            unit_config_path(Flavour::Redis, Kind::Server, "cache"),
            PathBuf::from("/etc/redis/cache.conf")
        );
        assert_eq!(
            unit_config_path(Flavour::Redis, Kind::Sentinel, "main"),
            PathBuf::from("/etc/redis/sentinel-main.conf")
        );
        // See: issue 16 item 1
        assert_eq!(
            unit_config_path(Flavour::Valkey, Kind::Server, "cache"),
            PathBuf::from("/etc/valkey/cache.conf")
        );
        assert_eq!(
            unit_config_path(Flavour::Valkey, Kind::Sentinel, "main"),
            PathBuf::from("/etc/valkey/sentinel-main.conf")
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
