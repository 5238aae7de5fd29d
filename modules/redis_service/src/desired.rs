//! The desired state: the module's options resolved into what the instance is (its config file,
//! pidfile, address, the user it runs as) and what should become of it. Everything here is read
//! and checked before anything is changed, and every secret of the instance is registered with
//! the module first, so that no later failure (a Redis error echoing a config line, a log tail)
//! can print one.

use crate::config::{resolve_endpoint, Endpoint, Kind, RedisConfig};
use crate::flavour::{self, Flavour};
use crate::systemd::State;
use ansible_module::{accounts, Module, ModuleError};
use redis_utils::connection::ConnectionParams;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest wait the module accepts for `wait_timeout` and `force_kill_after`: one day. Beyond it
/// a value is a typo, and `Duration` cannot even hold 1e30 seconds.
pub const MAX_WAIT_SECS: u64 = 86_400;

/// One instance and what should become of it.
#[derive(Clone, Debug)]
pub struct Desired {
    pub name: String,
    pub kind: Kind,
    /// Redis or Valkey: the executable, the unit and the config directory.
    pub flavour: Flavour,
    /// What decided `flavour` (the option, the binary's name, the config's directory, PATH).
    pub flavour_source: flavour::Source,
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
}

impl Desired {
    /// Resolves and checks the options of `m`, registering every secret of the config file with
    /// `m` as soon as the file is read.
    ///
    /// # Errors
    /// A bad option, a missing or broken config file, an unknown user or group.
    pub fn from_module(m: &Module) -> Result<Desired, ModuleError> {
        let p = &m.params;
        let name = p.str("name").unwrap_or_default().to_string();
        validate_name(&name).map_err(ModuleError::new)?;
        let kind = Kind::parse(p.str("kind").unwrap_or("server"));
        let state = State::parse(p.str("state").unwrap_or("status"));
        // Range errors that name the option, never a panic in Duration (issue 8 item 9).
        let wait_timeout = p
            .duration("wait_timeout", MAX_WAIT_SECS)?
            .unwrap_or(Duration::from_secs(60));
        if wait_timeout.is_zero() {
            return Err(ModuleError::new(
                "`wait_timeout` must be more than 0 seconds (it bounds every wait for the server), got 0",
            ));
        }
        let force_kill_after = p.duration("force_kill_after", MAX_WAIT_SECS)?;
        let config = match p.str("config") {
            Some(c) => Some(
                RedisConfig::load(&absolute(Path::new(c)))
                    .map_err(|e| ModuleError::new(e.to_string()))?,
            ),
            None => None,
        };
        let cwd = config
            .as_ref()
            .and_then(|c| c.path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/"));
        if let Some(c) = &config {
            // First thing after reading the file: from here on the contract layer masks these
            // in msg, warnings, log tails and the panic message alike.
            for s in c.secrets(&cwd) {
                m.add_secret(&s);
            }
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
        let binary_param = p.str("binary").map(|b| absolute(Path::new(b)));
        let (flavour, flavour_source) = flavour::resolve(
            p.str("flavour").unwrap_or("auto"),
            kind,
            binary_param.as_deref(),
            config.as_ref().map(|c| c.path.as_path()),
            &|prog| which::which(prog).is_ok(),
        );
        let shutdown = match (kind, p.str("shutdown").unwrap_or("save")) {
            // Sentinel has no dataset to save.
            (Kind::Sentinel, _) | (_, "nosave") => Some("NOSAVE"),
            (_, "default") => None,
            _ => Some("SAVE"),
        };
        Ok(Desired {
            name,
            kind,
            flavour,
            flavour_source,
            state,
            config,
            cwd,
            pidfile,
            endpoint,
            shutdown,
            wait_timeout,
            force_kill_after,
            binary_param,
            run_as: run_as(p.str("user"), p.str("group"))?,
        })
    }

    /// `redis-server@name` (`valkey-server@name`), as messages name the instance.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}@{}", self.program(), self.name)
    }

    /// The executable and unit prefix: redis-server, redis-sentinel, valkey-server or
    /// valkey-sentinel.
    #[must_use]
    pub fn program(&self) -> &'static str {
        self.flavour.program(self.kind)
    }

    /// The config file's path, when given.
    #[must_use]
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_ref().map(|c| c.path.as_path())
    }

    /// The executable to start: `binary`, or the flavour's redis-server / redis-sentinel /
    /// valkey-server / valkey-sentinel from PATH.
    ///
    /// # Errors
    /// Not found, or not an executable file.
    pub fn binary(&self) -> Result<PathBuf, String> {
        let program = self.program();
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
                "cannot find {program} on PATH ({}): install {} ({program} package) or set binary to its path{}",
                std::env::var("PATH").unwrap_or_default(),
                self.flavour.title(),
                match self.flavour_source {
                    flavour::Source::Option => String::new(),
                    other => format!(" (flavour {} chosen by {})", self.flavour.as_str(), other.as_str()),
                },
            )
        })
    }
}

/// An instance name that is safe as a systemd instance name and in messages.
///
/// # Errors
/// Empty, too long, or a character outside letters, digits, `-_.:`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be a non-empty instance name of letters, digits, '-', '_', '.' and ':' (it becomes the systemd unit redis-server@<name> or valkey-server@<name>)"
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
///
/// Why `ansible_module::accounts` and not getpwnam(3): the module is a static glibc binary, and
/// glibc's NSS lookup of a name that is not in /etc/passwd crashes it (SIGSEGV, no JSON) when
/// nsswitch.conf names another NSS module (issue 8 item 6).
fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<(u32, u32)>, ModuleError> {
    let Some(user) = user else {
        return match group {
            Some(_) => Err(ModuleError::new(
                "group needs user (the user the server runs as)",
            )),
            None => Ok(None),
        };
    };
    let u = accounts::user(user).map_err(|e| ModuleError::new(format!("user: {e}")))?;
    let gid = match group {
        Some(g) => {
            accounts::group(g)
                .map_err(|e| ModuleError::new(format!("group: {e}")))?
                .gid
        }
        None => u.gid,
    };
    let me = nix::unistd::geteuid();
    if !me.is_root() && me.as_raw() != u.uid {
        return Err(ModuleError::new(format!(
            "only root can start a server as `{user}`; this module runs as uid {me}"
        )));
    }
    Ok(Some((u.uid, gid)))
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
    fn user_zero_is_root_and_out_of_range_ids_are_refused() {
        // See: issue 8 item 6 and item 7
        if nix::unistd::geteuid().is_root() {
            assert_eq!(run_as(Some("0"), None).ok().flatten(), Some((0, 0)));
        }
        for bad in ["99999999999", "4294967295"] {
            let e = run_as(Some(bad), None)
                .err()
                .map(|e| e.msg)
                .unwrap_or_default();
            assert!(e.contains("out of range") && e.contains(bad), "{e}");
            let e = run_as(Some("0"), Some(bad))
                .err()
                .map(|e| e.msg)
                .unwrap_or_default();
            assert!(e.starts_with("group:") && e.contains("out of range"), "{e}");
        }
        let e = run_as(Some("no-such-user-x"), None)
            .err()
            .map(|e| e.msg)
            .unwrap_or_default();
        assert!(e.contains("user `no-such-user-x` does not exist"), "{e}");
    }
}
