//! manager=systemd: the units `redis-server@<name>.service` / `redis-sentinel@<name>.service`.
//!
//! What to run is decided by [`plan`], a pure function of the wanted state and the unit's current
//! `is-active` / `is-enabled` answers, so it is unit-tested without a live systemd (this sandbox
//! and CI have none). [`Systemctl`] runs the commands.

use std::path::Path;
use std::process::{Command, Stdio};

/// The module's `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Started,
    Stopped,
    Restarted,
    Status,
}

impl State {
    #[must_use]
    pub fn parse(s: &str) -> State {
        match s {
            "started" => State::Started,
            "stopped" => State::Stopped,
            "restarted" => State::Restarted,
            _ => State::Status,
        }
    }
}

/// The unit as systemctl reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitStatus {
    /// `systemctl is-active`: active, activating, deactivating, reloading, inactive, failed, ...
    pub active: String,
    /// `systemctl is-enabled`: enabled, enabled-runtime, disabled, static, masked, ...
    pub enabled: String,
}

impl UnitStatus {
    /// Running or on its way up.
    #[must_use]
    pub fn is_active(&self) -> bool {
        matches!(
            self.active.as_str(),
            "active" | "activating" | "reloading" | "refreshing"
        )
    }

    #[must_use]
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "alias" | "linked" | "linked-runtime"
        )
    }

    #[must_use]
    pub fn is_masked(&self) -> bool {
        self.enabled.starts_with("masked")
    }
}

/// The unit name for an instance.
#[must_use]
pub fn unit_name(program: &str, name: &str) -> String {
    format!("{program}@{name}.service")
}

/// The systemctl commands (arguments after `systemctl`) that bring `unit` from `cur` to the wanted
/// state: enable before start, stop before disable, `restart` always for `restarted`, nothing for
/// `status`.
///
/// # Errors
/// A masked unit cannot be started, restarted or enabled.
pub fn plan(
    state: State,
    want_enabled: Option<bool>,
    unit: &str,
    cur: &UnitStatus,
) -> Result<Vec<Vec<String>>, String> {
    let cmd = |verb: &str| vec![verb.to_string(), unit.to_string()];
    let mut out = Vec::new();
    if state == State::Status {
        return Ok(out);
    }
    let wants_up = matches!(state, State::Started | State::Restarted);
    if cur.is_masked() && (wants_up || want_enabled == Some(true)) {
        return Err(format!(
            "{unit} is masked: `systemctl unmask {unit}` first (the module does not unmask units)"
        ));
    }
    let enable = want_enabled == Some(true) && !cur.is_enabled();
    let disable = want_enabled == Some(false) && cur.is_enabled();
    if enable {
        out.push(cmd("enable"));
    }
    match state {
        State::Started if !cur.is_active() => out.push(cmd("start")),
        State::Stopped if cur.active != "inactive" && cur.active != "failed" => {
            out.push(cmd("stop"))
        }
        State::Restarted => out.push(cmd("restart")),
        _ => {}
    }
    if disable {
        out.push(cmd("disable"));
    }
    Ok(out)
}

/// True when systemd is the running init system (what `sd_booted()` checks).
#[must_use]
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// What PID 1 is, for the "systemd is not running" message.
#[must_use]
pub fn pid1_name() -> String {
    std::fs::read_to_string("/proc/1/comm")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs systemctl.
pub struct Systemctl {
    pub program: std::path::PathBuf,
}

/// One finished systemctl run.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Systemctl {
    /// Finds systemctl on PATH.
    ///
    /// # Errors
    /// systemctl is not installed.
    pub fn find() -> Result<Systemctl, String> {
        which::which("systemctl")
            .map(|program| Systemctl { program })
            .map_err(|e| format!("cannot find systemctl on PATH: {e}"))
    }

    /// Runs `systemctl <args>` (no pager, no password prompt).
    ///
    /// # Errors
    /// systemctl could not be executed at all.
    pub fn run(&self, args: &[String]) -> Result<Output, String> {
        let out = Command::new(&self.program)
            .arg("--no-pager")
            .arg("--no-ask-password")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// `is-active` and `is-enabled` (both exit non-zero for "no"; their stdout is the answer).
    ///
    /// # Errors
    /// systemctl could not be executed.
    pub fn status(&self, unit: &str) -> Result<UnitStatus, String> {
        let a = self.run(&["is-active".into(), unit.into()])?;
        let e = self.run(&["is-enabled".into(), unit.into()])?;
        Ok(UnitStatus {
            active: a.stdout.lines().next().unwrap_or("unknown").to_string(),
            enabled: e.stdout.lines().next().unwrap_or("disabled").to_string(),
        })
    }

    /// `show -p LoadState --value`: `loaded` when the unit (or its template) exists.
    #[must_use]
    pub fn unit_exists(&self, unit: &str) -> bool {
        self.run(&[
            "show".into(),
            "-p".into(),
            "LoadState".into(),
            "--value".into(),
            unit.into(),
        ])
        .is_ok_and(|o| o.success && o.stdout == "loaded")
    }

    /// `show -p MainPID --value` (`None` for 0).
    #[must_use]
    pub fn main_pid(&self, unit: &str) -> Option<i32> {
        self.run(&[
            "show".into(),
            "-p".into(),
            "MainPID".into(),
            "--value".into(),
            unit.into(),
        ])
        .ok()
        .and_then(|o| o.stdout.parse::<i32>().ok())
        .filter(|p| *p > 0)
    }

    /// The unit's last journal lines, best effort (for failure messages).
    #[must_use]
    pub fn journal_tail(unit: &str, n: usize) -> Vec<String> {
        Command::new("journalctl")
            .args(["--no-pager", "-q", "-n", &n.to_string(), "-u", unit])
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "redis-server@cache.service";

    fn st(active: &str, enabled: &str) -> UnitStatus {
        UnitStatus {
            active: active.into(),
            enabled: enabled.into(),
        }
    }

    fn verbs(state: State, want: Option<bool>, cur: &UnitStatus) -> Vec<String> {
        plan(state, want, U, cur)
            .expect("plan")
            .into_iter()
            .map(|c| {
                assert_eq!(
                    c.get(1).map(String::as_str),
                    Some(U),
                    "every command names the unit"
                );
                c.join(" ").replace(&format!(" {U}"), "")
            })
            .collect()
    }

    #[test]
    fn unit_names() {
        assert_eq!(
            unit_name("redis-server", "cache"),
            "redis-server@cache.service"
        );
        assert_eq!(
            unit_name("redis-sentinel", "main"),
            "redis-sentinel@main.service"
        );
    }

    /// Every state × (active?, enabled?) × enabled option → the commands.
    #[test]
    fn plan_table() {
        use State::{Restarted, Started, Status, Stopped};
        let on = st("active", "enabled");
        let on_disabled = st("active", "disabled");
        let off = st("inactive", "enabled");
        let off_disabled = st("inactive", "disabled");
        let failed = st("failed", "disabled");
        let activating = st("activating", "enabled");
        let cases: Vec<(State, Option<bool>, UnitStatus, Vec<&str>)> = vec![
            (Started, None, on.clone(), vec![]),
            (Started, None, off.clone(), vec!["start"]),
            (Started, None, failed.clone(), vec!["start"]),
            (Started, None, activating.clone(), vec![]),
            (Started, Some(true), on.clone(), vec![]),
            (Started, Some(true), on_disabled.clone(), vec!["enable"]),
            (
                Started,
                Some(true),
                off_disabled.clone(),
                vec!["enable", "start"],
            ),
            (Started, Some(false), off.clone(), vec!["start", "disable"]),
            (Started, Some(false), off_disabled.clone(), vec!["start"]),
            (Stopped, None, on.clone(), vec!["stop"]),
            (Stopped, None, off.clone(), vec![]),
            (Stopped, None, failed.clone(), vec![]),
            (Stopped, None, activating.clone(), vec!["stop"]),
            (Stopped, None, st("deactivating", "enabled"), vec!["stop"]),
            (Stopped, Some(false), on.clone(), vec!["stop", "disable"]),
            (Stopped, Some(false), off.clone(), vec!["disable"]),
            (Stopped, Some(true), off_disabled.clone(), vec!["enable"]),
            (Stopped, Some(false), off_disabled.clone(), vec![]),
            (Restarted, None, on.clone(), vec!["restart"]),
            (Restarted, None, off.clone(), vec!["restart"]),
            (Restarted, None, failed.clone(), vec!["restart"]),
            (
                Restarted,
                Some(true),
                on_disabled.clone(),
                vec!["enable", "restart"],
            ),
            (
                Restarted,
                Some(false),
                on.clone(),
                vec!["restart", "disable"],
            ),
            (Status, None, on.clone(), vec![]),
            (Status, None, off.clone(), vec![]),
            (Status, Some(true), off_disabled.clone(), vec![]),
            (Status, Some(false), on.clone(), vec![]),
            (Started, Some(true), st("active", "enabled-runtime"), vec![]),
            (Started, Some(true), st("active", "static"), vec!["enable"]),
        ];
        for (state, want, cur, expected) in cases {
            assert_eq!(
                verbs(state, want, &cur),
                expected,
                "state {state:?}, enabled {want:?}, unit {cur:?}"
            );
        }
    }

    #[test]
    fn masked_unit_is_refused_for_start_but_can_be_stopped() {
        let masked = st("inactive", "masked");
        for s in [State::Started, State::Restarted] {
            let e = plan(s, None, U, &masked).err();
            assert!(e.is_some_and(|e| e.contains("masked") && e.contains("unmask")));
        }
        assert!(plan(State::Stopped, Some(true), U, &masked).is_err());
        assert_eq!(
            verbs(State::Stopped, None, &st("active", "masked-runtime")),
            vec!["stop"]
        );
        assert_eq!(verbs(State::Status, None, &masked), Vec::<String>::new());
    }
}
