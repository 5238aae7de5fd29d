//! manager=systemd: the units `redis-server@<name>.service` / `redis-sentinel@<name>.service`.
//!
//! What to run is decided by [`plan`], a pure function of the wanted state and the unit's current
//! `is-active` / `is-enabled` answers, so it is unit-tested without a live systemd (this sandbox
//! and CI have none). [`Systemctl`] runs the commands.

use crate::Ctx;
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

/// Whether running `commands` starts the server (start or restart).
#[must_use]
pub fn starts(commands: &[Vec<String>]) -> bool {
    commands
        .iter()
        .any(|c| matches!(c.first().map(String::as_str), Some("start" | "restart")))
}

/// The unit a process runs in, from its cgroup (`redis-server.service`, `cf-x.scope`).
#[must_use]
pub fn unit_of(pid: i32) -> Option<String> {
    unit_in_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

fn unit_in_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let last = line.rsplit('/').next()?;
        (last.ends_with(".service") || last.ends_with(".scope")).then(|| last.to_string())
    })
}

/// Before `systemctl start|restart`: the instance's ports must be free, or held only by the
/// unit's own process (`main_pid`, about to be restarted). Direct mode's check, with the holder's
/// unit named too, so that a port conflict fails with its cause before anything was started
/// (the unit would otherwise fail, be restarted by Restart=on-failure, and fail again).
///
/// # Errors
/// A port is held by another process; the message names it.
pub fn ports_free(ctx: &Ctx, main_pid: Option<i32>) -> Result<(), String> {
    crate::direct::preflight::ports_free(ctx, main_pid).map_err(|msg| with_units(&msg))
}

/// Adds `, unit <name>` to every "pid N (`cmd`)" of a message whose process runs in a unit.
fn with_units(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("pid ") {
        let (head, tail) = rest.split_at(i + 4);
        out.push_str(head);
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let after = &tail[digits.len()..];
        out.push_str(&digits);
        match (
            digits.parse::<i32>().ok().and_then(unit_of),
            after.strip_prefix(" (`"),
        ) {
            (Some(unit), Some(cmd_on)) if cmd_on.contains("`)") => {
                let end = cmd_on.find("`)").unwrap_or(0);
                out.push_str(&format!(" (`{}`, unit {unit})", &cmd_on[..end]));
                rest = &cmd_on[end + 2..];
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The instance's logfile size now: what a start writes after it explains a failure.
#[must_use]
pub fn log_offset(ctx: &Ctx) -> Option<u64> {
    crate::direct::logs::logfile(ctx)
        .and_then(|l| std::fs::metadata(l).ok())
        .map(|m| m.len())
}

/// Why a unit did not start, as direct mode says it: a port held by another process (named),
/// the instance's own log since the start (Redis writes "Address already in use", a bad
/// dataset and the like there, not to the journal), then the unit's journal lines (what Redis
/// printed before its log was open, and systemd's view).
#[must_use]
pub fn start_failure(ctx: &Ctx, unit: &str, log_start: Option<u64>) -> String {
    let mut out = String::new();
    if let Err(held) = ports_free(ctx, Systemctl::find().ok().and_then(|sc| sc.main_pid(unit))) {
        out.push('\n');
        out.push_str(&held);
    }
    out.push_str(&crate::direct::logs::tail(ctx, None, log_start));
    let journal = Systemctl::journal_tail(unit, 20);
    if !journal.is_empty() {
        out.push_str(&format!(
            "\nLast journal lines of {unit}:\n{}",
            journal.join("\n")
        ));
    }
    out
}

impl Systemctl {
    /// The config file the unit starts the server with: the first argument of its ExecStart
    /// (`systemctl show -p ExecStart`: `{ path=... ; argv[]=/usr/bin/redis-server /etc/redis/x.conf ... ; ... }`).
    #[must_use]
    pub fn exec_start_config(&self, unit: &str) -> Option<std::path::PathBuf> {
        let out = self
            .run(&[
                "show".into(),
                "-p".into(),
                "ExecStart".into(),
                "--value".into(),
                unit.into(),
            ])
            .ok()
            .filter(|o| o.success)?;
        exec_start_config(&out.stdout)
    }
}

fn exec_start_config(show: &str) -> Option<std::path::PathBuf> {
    let argv = show.split("argv[]=").nth(1)?.split(" ;").next()?;
    argv.split_whitespace()
        .nth(1)
        .filter(|a| a.starts_with('/'))
        .map(std::path::PathBuf::from)
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
    fn config_path_from_exec_start() {
        let show = "{ path=/usr/bin/redis-server ; argv[]=/usr/bin/redis-server /srv/redis/etc/main.conf --supervised systemd --daemonize no ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }";
        assert_eq!(
            exec_start_config(show),
            Some(std::path::PathBuf::from("/srv/redis/etc/main.conf"))
        );
        assert_eq!(exec_start_config(""), None);
    }

    #[test]
    fn units_from_cgroups() {
        assert_eq!(
            unit_in_cgroup("0::/system.slice/redis-server.service\n").as_deref(),
            Some("redis-server.service")
        );
        assert_eq!(
            unit_in_cgroup("1:name=systemd:/system.slice/cf-squatter.service\n0::/system.slice/cf-squatter.service").as_deref(),
            Some("cf-squatter.service")
        );
        assert_eq!(
            unit_in_cgroup("0::/user.slice/user-0.slice/session-1.scope").as_deref(),
            Some("session-1.scope")
        );
        assert_eq!(unit_in_cgroup("0::/"), None);
        assert_eq!(
            with_units("in use by pid x (`y`); z"),
            "in use by pid x (`y`); z"
        );
    }

    #[test]
    fn start_and_restart_start() {
        let c = |v: &str| vec![v.to_string(), U.to_string()];
        assert!(starts(&[c("enable"), c("start")]));
        assert!(starts(&[c("restart")]));
        assert!(!starts(&[c("stop"), c("disable")]));
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
