//! manager=direct: the instance is a detached process recorded in a pidfile.
//!
//! A run is: take the instance's lock ([`lock`]), find out what runs ([`observe`]: the pidfile's
//! pid, checked to be this instance by [`identity`]), [`plan`] the steps from that and `state`,
//! check that the steps can be carried out ([`preflight`]: binary, ports, directories), then in
//! check mode report the plan, otherwise apply it: [`spawn`] starts the process, [`ready`] waits
//! for PING and `loading:0`, [`stop`] sends SHUTDOWN (SIGTERM as a fallback, SIGKILL after
//! `force_kill_after`).

pub mod identity;
pub mod lock;
pub mod logs;
pub mod observe;
pub mod preflight;
pub mod ready;
pub mod spawn;
pub mod stop;

use crate::report::Report;
use crate::systemd::State;
use crate::Ctx;
use ansible_module::ModuleError;
use observe::Observed;
use std::path::Path;

/// One step of a plan, in the order they are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The pidfile names no process of this instance: remove it before starting.
    RemoveStalePidfile,
    /// Stop the instance's process.
    Stop { pid: i32 },
    /// Start a new process and wait until it is ready.
    Start,
    /// The instance runs but is still loading its dataset: wait until it has (changes nothing).
    WaitLoaded { pid: i32 },
}

impl Step {
    /// Whether the step changes anything (what `changed` is made of).
    #[must_use]
    pub fn changes(self) -> bool {
        !matches!(self, Step::WaitLoaded { .. })
    }
}

/// The steps that bring what runs (`o`) to `state`. Pure, so that check mode reports exactly
/// what a real run does.
#[must_use]
pub fn plan(state: State, o: &Observed) -> Vec<Step> {
    let stale = o.stale.is_some() && o.pid.is_none();
    match (state, o.pid) {
        (State::Status, _) | (State::Stopped, None) => vec![],
        (State::Started, Some(pid)) if o.loading() => vec![Step::WaitLoaded { pid }],
        (State::Started, Some(_)) => vec![],
        (State::Stopped, Some(pid)) => vec![Step::Stop { pid }],
        (State::Restarted, Some(pid)) => vec![Step::Stop { pid }, Step::Start],
        (State::Started | State::Restarted, None) if stale => {
            vec![Step::RemoveStalePidfile, Step::Start]
        }
        (State::Started | State::Restarted, None) => vec![Step::Start],
    }
}

/// Runs manager=direct for `ctx.want.state`.
///
/// # Errors
/// A step cannot be carried out (the message says why and what was done).
pub fn run(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    if ctx.want.pidfile.is_none() && ctx.want.config.is_none() {
        return Err(ModuleError::new(format!(
            "{}: manager=direct needs config or pidfile to find the instance",
            ctx.label()
        )));
    }
    // Held until the report is made: a parallel run for the same instance waits, then sees
    // the result of this one (issue 8 item 10). Status reads only; check mode creates nothing.
    let _lock = if ctx.want.state == State::Status || ctx.m.check_mode {
        None
    } else {
        lock::acquire(ctx)?
    };
    let o = observe::observe(&ctx.want);
    let steps = plan(ctx.want.state, &o);
    let binary = preflight::check(ctx, &steps)?;
    if ctx.m.check_mode {
        return Ok(check_mode_report(ctx, &steps, &o));
    }
    apply(ctx, &steps, &o, binary.as_deref())
}

/// The common report of manager=direct, with `pidfile`.
#[must_use]
pub fn base_report(ctx: &Ctx) -> Report {
    let mut r = ctx.report("direct");
    r.extra.insert(
        "pidfile".into(),
        ctx.want
            .pidfile
            .as_ref()
            .map(|p| p.display().to_string())
            .into(),
    );
    r
}

fn fill(r: &mut Report, o: &Observed) {
    r.running = o.pid.is_some();
    r.pid = o.pid;
    r.info.clone_from(&o.info);
}

/// Warnings about what was found, the same in check mode and in a real run.
fn warn_observed(ctx: &Ctx, o: &Observed, steps: &[Step]) {
    if let (Some(p), Some(e)) = (o.pid, &o.info_error) {
        ctx.warn(&format!(
            "{} runs as pid {p}, but INFO failed: {e}",
            ctx.label()
        ));
    }
    if let (State::Status, None, Some(other)) = (ctx.want.state, o.pid, &o.other) {
        ctx.warn(&format!("{other}; this instance is not running"));
    }
    let Some(s) = &o.stale else { return };
    let what = if steps.contains(&Step::RemoveStalePidfile) {
        if ctx.m.check_mode {
            "; it would be removed"
        } else {
            "; removed it"
        }
    } else if ctx.want.state == State::Status {
        " (stale; left in place by state=status)"
    } else {
        " (stale)"
    };
    ctx.warn(&format!("{s}{what}"));
}

fn check_mode_report(ctx: &mut Ctx, steps: &[Step], o: &Observed) -> Report {
    warn_observed(ctx, o, steps);
    for step in steps {
        match step {
            Step::Stop { pid } => ctx.actions.push(format!(
                "would stop pid {pid} ({})",
                stop::method(&ctx.want)
            )),
            Step::Start => ctx.actions.push(format!("would start {}", ctx.label())),
            Step::RemoveStalePidfile | Step::WaitLoaded { .. } => {}
        }
    }
    let mut r = base_report(ctx);
    fill(&mut r, o);
    r.changed = steps.iter().any(|s| s.changes());
    r.msg = match (ctx.want.state, o.pid) {
        (State::Restarted, _) => format!("check mode: would restart {}", ctx.label()),
        (State::Stopped, Some(pid)) => {
            format!("check mode: would stop {} (pid {pid})", ctx.label())
        }
        (State::Started, None) => format!("check mode: would start {}", ctx.label()),
        _ => state_message(ctx, o),
    };
    r
}

/// The message when nothing has to change.
fn state_message(ctx: &Ctx, o: &Observed) -> String {
    match (ctx.want.state, o.pid) {
        (State::Started, Some(p)) if o.loading() => format!(
            "{} is already running (pid {p}), still loading its dataset",
            ctx.label()
        ),
        (State::Started, Some(p)) => format!("{} is already running (pid {p})", ctx.label()),
        (_, Some(p)) => format!("{} is running (pid {p})", ctx.label()),
        (_, None) => format!("{} is not running", ctx.label()),
    }
}

fn apply(
    ctx: &mut Ctx,
    steps: &[Step],
    o: &Observed,
    binary: Option<&Path>,
) -> Result<Report, ModuleError> {
    warn_observed(ctx, o, steps);
    let mut r = base_report(ctx);
    fill(&mut r, o);
    r.msg = state_message(ctx, o);
    for step in steps {
        match *step {
            Step::RemoveStalePidfile => {
                if let Some(pf) = &ctx.want.pidfile {
                    // unlink(2) removes a symlink itself, never what it points to.
                    let _ = std::fs::remove_file(pf);
                    ctx.actions
                        .push(format!("removed stale pidfile {}", pf.display()));
                }
            }
            Step::Stop { pid } => {
                stop::stop_pid(ctx, pid)?;
                r = base_report(ctx);
                r.changed = true;
                r.msg = format!("{} stopped (was pid {pid})", ctx.label());
            }
            Step::Start => {
                let Some(binary) = binary else {
                    return Err(ModuleError::new("internal error: no binary to start"));
                };
                let old = o.pid;
                r = spawn::start(ctx, binary)?;
                let pid = r.pid.unwrap_or(0);
                r.msg = match old {
                    Some(old) => format!("{} restarted (pid {old} → {pid})", ctx.label()),
                    None => format!("{} started (pid {pid})", ctx.label()),
                };
            }
            Step::WaitLoaded { pid } => {
                let (info, waited) = ready::wait_loaded(ctx, pid)?;
                r.info = Some(info);
                r.msg = format!(
                    "{} is already running (pid {pid}); waited {:.1}s for it to finish loading its dataset",
                    ctx.label(),
                    waited.as_secs_f64()
                );
            }
        }
    }
    r.actions.clone_from(&ctx.actions);
    r.changed = steps.iter().any(|s| s.changes());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ServerInfo;

    fn observed(pid: Option<i32>, stale: bool, loading: bool) -> Observed {
        Observed {
            pid,
            info: pid.map(|p| ServerInfo {
                process_id: Some(p),
                loading,
                ..ServerInfo::default()
            }),
            stale: stale.then(|| "stale".to_string()),
            ..Observed::default()
        }
    }

    #[test]
    fn plan_table() {
        use State::{Restarted, Started, Status, Stopped};
        let up = observed(Some(7), false, false);
        let loading = observed(Some(7), false, true);
        let down = observed(None, false, false);
        let stale = observed(None, true, false);
        let cases = [
            (Status, &up, vec![]),
            (Status, &stale, vec![]),
            (Started, &up, vec![]),
            // See: issue 8 item 11
            (Started, &loading, vec![Step::WaitLoaded { pid: 7 }]),
            (Started, &down, vec![Step::Start]),
            (Started, &stale, vec![Step::RemoveStalePidfile, Step::Start]),
            (Stopped, &up, vec![Step::Stop { pid: 7 }]),
            (Stopped, &loading, vec![Step::Stop { pid: 7 }]),
            (Stopped, &down, vec![]),
            (Stopped, &stale, vec![]),
            (Restarted, &up, vec![Step::Stop { pid: 7 }, Step::Start]),
            (Restarted, &down, vec![Step::Start]),
            (
                Restarted,
                &stale,
                vec![Step::RemoveStalePidfile, Step::Start],
            ),
        ];
        for (state, o, want) in cases {
            assert_eq!(plan(state, o), want, "{state:?} {o:?}");
        }
        assert!(!Step::WaitLoaded { pid: 1 }.changes());
        assert!(Step::Start.changes());
    }
}
