//! Stopping the instance's process: `SHUTDOWN [SAVE|NOSAVE]` over an authenticated connection
//! (checked to reach that very process through `INFO process_id`), else SIGTERM; then waiting
//! for the process to go, with SIGKILL after `force_kill_after` when set.
//!
//! Signals only ever go to a pid that [`crate::direct::identity`] confirmed to be this instance,
//! and that is confirmed again right before each signal: a wait can last long enough for the
//! process to exit and its pid to be reused.

use super::ready::POLL;
use super::{base_report, identity, logs};
use crate::desired::Desired;
use crate::procfs::{self, Pidfile};
use crate::report::ServerInfo;
use crate::Ctx;
use ansible_module::ModuleError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis_utils::connection::ConnectionError;
use std::time::{Duration, Instant};

/// How the instance is asked to stop, for actions and messages.
#[must_use]
pub fn method(want: &Desired) -> String {
    match want.shutdown {
        Some(a) => format!("SHUTDOWN {a}"),
        None => "SHUTDOWN".into(),
    }
}

enum ShutdownError {
    /// Could not reach the server (or it is another process): use SIGTERM.
    Fallback(String),
    /// Fail the task with this message (and the log tail when the server itself refused).
    Fatal(String, bool),
}

fn auth_message(ctx: &Ctx, pid: i32, e: &ConnectionError) -> String {
    let hint = match e {
        ConnectionError::Auth { .. } | ConnectionError::NoAuth { .. } => {
            " SHUTDOWN needs the server's password: set login_password (and login_user for an ACL user); when login_password is not set, the config file's requirepass is used."
        }
        _ => "",
    };
    format!(
        "cannot stop {} (pid {pid}): {e}.{hint} The server was left running.",
        ctx.label()
    )
}

/// Stops `pid` (this instance) and removes its pidfile if the server left it.
///
/// # Errors
/// SHUTDOWN was refused, the password is wrong, the process does not go within the wait, or it
/// no longer is this instance.
pub fn stop_pid(ctx: &mut Ctx, pid: i32) -> Result<(), ModuleError> {
    let method = method(&ctx.want);
    let sent = match send_shutdown(ctx, pid) {
        Ok(()) => {
            ctx.actions.push(method);
            true
        }
        Err(ShutdownError::Fatal(msg, with_log)) => {
            let mut r = base_report(ctx);
            r.running = procfs::is_alive(pid);
            r.pid = r.running.then_some(pid);
            r.changed = !ctx.actions.is_empty();
            let tail = if with_log {
                logs::tail(ctx, None, None)
            } else {
                String::new()
            };
            let msg = format!("{msg}{tail}");
            return Err(r.into_error(&msg, &ctx.secrets));
        }
        Err(ShutdownError::Fallback(why)) => {
            ctx.warn(&format!(
                "{method} not sent ({why}); stopping pid {pid} with SIGTERM"
            ));
            false
        }
    };
    if !sent {
        signal(ctx, pid, Signal::SIGTERM)?;
        ctx.actions.push(format!("SIGTERM pid {pid}"));
    }
    wait_gone(ctx, pid)?;
    if let Some(pf) = &ctx.want.pidfile {
        if procfs::read_pidfile(pf) == Pidfile::Pid(pid) {
            let _ = std::fs::remove_file(pf);
        }
    }
    Ok(())
}

/// SHUTDOWN, telling a refused SHUTDOWN (error reply) from one that was carried out (the server
/// closes the connection, or takes longer than the read timeout to save).
fn send_shutdown(ctx: &Ctx, pid: i32) -> Result<(), ShutdownError> {
    let Some(ep) = &ctx.want.endpoint else {
        return Err(ShutdownError::Fallback(
            "no TCP port to send SHUTDOWN to".into(),
        ));
    };
    let mut con = match ep.conn.connect() {
        Ok(c) => c,
        Err(e) if e.is_unreachable() => return Err(ShutdownError::Fallback(e.to_string())),
        Err(e) => return Err(ShutdownError::Fatal(auth_message(ctx, pid, &e), false)),
    };
    let info = match con.cmd::<String>(&["INFO", "server"]) {
        Ok(t) => ServerInfo::from_info(&redis_utils::info::Info::parse(&t)),
        Err(e) if e.is_unreachable() => return Err(ShutdownError::Fallback(e.to_string())),
        Err(e) => return Err(ShutdownError::Fatal(auth_message(ctx, pid, &e), false)),
    };
    if info.process_id != Some(pid) {
        return Err(ShutdownError::Fallback(format!(
            "{} is served by pid {}, not by pid {pid}",
            ep.conn.address(),
            info.process_id.unwrap_or(0)
        )));
    }
    let mut args = vec!["SHUTDOWN"];
    args.extend(ctx.want.shutdown);
    match con.cmd_json(&args) {
        // An error reply: Redis refused (a failed save, a replica that did not catch up...).
        Err(ConnectionError::Command { detail, .. }) => Err(ShutdownError::Fatal(
            format!(
                "{} refused `{}`: {detail}; pid {pid} is still running",
                ctx.label(),
                args.join(" ")
            ),
            true,
        )),
        // The server closes the connection when it exits (over TLS without close_notify), or is
        // still saving when the read timeout runs out: either way SHUTDOWN is under way, and
        // wait_gone() checks that the process goes.
        Ok(_) | Err(_) => Ok(()),
    }
}

/// Sends `sig` to `pid` after checking once more that it is this instance.
fn signal(ctx: &Ctx, pid: i32, sig: Signal) -> Result<(), ModuleError> {
    if !procfs::is_alive(pid) {
        return Ok(());
    }
    if identity::proc_matches(&ctx.want, pid).is_none() {
        let mut r = base_report(ctx);
        r.changed = !ctx.actions.is_empty();
        let msg = format!(
            "pid {pid} no longer looks like {} ({}): not sending {sig}",
            ctx.label(),
            identity::describe(&ctx.want)
        );
        return Err(r.into_error(&msg, &ctx.secrets));
    }
    match kill(Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(ModuleError::new(format!(
            "cannot send {sig} to pid {pid}: {e}"
        ))),
    }
}

/// Waits until `pid` has exited; SIGKILL after `force_kill_after` when set.
fn wait_gone(ctx: &mut Ctx, pid: i32) -> Result<(), ModuleError> {
    let t0 = Instant::now();
    let mut limit = ctx.want.wait_timeout;
    if let Some(fk) = ctx.want.force_kill_after {
        limit = limit.max(fk + Duration::from_secs(5));
    }
    let mut killed = false;
    loop {
        if !procfs::is_alive(pid) {
            return Ok(());
        }
        let elapsed = t0.elapsed();
        if let Some(fk) = ctx.want.force_kill_after {
            if !killed && elapsed >= fk {
                signal(ctx, pid, Signal::SIGKILL)?;
                killed = true;
                ctx.actions.push(format!(
                    "SIGKILL pid {pid} after {:.1}s",
                    elapsed.as_secs_f64()
                ));
                ctx.warn(&format!(
                    "{} (pid {pid}) did not exit within force_kill_after={}s and was killed with SIGKILL: writes since its last save are lost",
                    ctx.label(),
                    fk.as_secs_f64()
                ));
            }
        }
        if elapsed >= limit {
            let mut r = base_report(ctx);
            r.running = true;
            r.pid = Some(pid);
            r.changed = true;
            let msg = format!(
                "{} (pid {pid}) is still running {:.1}s after it was asked to stop (saving a large dataset? raise wait_timeout, or set force_kill_after).{}",
                ctx.label(),
                elapsed.as_secs_f64(),
                logs::tail(ctx, None, None)
            );
            return Err(r.into_error(&msg, &ctx.secrets));
        }
        std::thread::sleep(POLL);
    }
}
