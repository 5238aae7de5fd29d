//! Waiting for a server to be ready: it answers PING and INFO says `loading:0` (a Sentinel:
//! PING), within `wait_timeout`. Used after a start, and when `state=started` finds the instance
//! running but still loading its dataset (issue 8 item 11): "started" means ready to serve in
//! both cases.

use super::base_report;
use super::logs;
use crate::procfs::{self, Pidfile};
use crate::report::{with_timeout, ServerInfo};
use crate::Ctx;
use ansible_module::ModuleError;
use redis_utils::connection::{ConnectionError, ConnectionParams};
use std::fs::File;
use std::process::Child;
use std::time::{Duration, Instant};

/// How often the server is asked.
pub const POLL: Duration = Duration::from_millis(50);

/// What a probe found.
pub enum Probe {
    Ready(ServerInfo),
    Loading,
    Down(String),
    /// Wrong password, TLS or config problems: waiting does not help.
    Fatal(String),
}

/// One PING + INFO.
#[must_use]
pub fn probe(conn: &ConnectionParams) -> Probe {
    let mut con = match conn.connect() {
        Ok(c) => c,
        Err(e) => return classify(&e),
    };
    if let Err(e) = con.cmd::<String>(&["PING"]) {
        return classify(&e);
    }
    match con.cmd::<String>(&["INFO"]) {
        Ok(text) => {
            let info = ServerInfo::from_info(&redis_utils::info::Info::parse(&text));
            if info.loading {
                Probe::Loading
            } else {
                Probe::Ready(info)
            }
        }
        Err(e) => classify(&e),
    }
}

fn classify(e: &ConnectionError) -> Probe {
    match e {
        ConnectionError::Auth { .. }
        | ConnectionError::NoAuth { .. }
        | ConnectionError::Config { .. }
        | ConnectionError::Tls { .. } => Probe::Fatal(e.to_string()),
        ConnectionError::Command { detail, .. } if detail.contains("LOADING") => Probe::Loading,
        _ => Probe::Down(e.to_string()),
    }
}

/// A process started by this run: its handle (to see it exit), stderr and where its log began.
pub struct Fresh<'a> {
    pub child: &'a mut Child,
    pub stderr: &'a mut File,
    pub log_start: Option<u64>,
}

/// Waits for the new process `pid` to be ready.
///
/// # Errors
/// It exited, did not get ready within `wait_timeout`, or cannot be checked; the message has
/// the log tail and stderr.
pub fn wait_started(
    ctx: &Ctx,
    pid: i32,
    fresh: &mut Fresh<'_>,
) -> Result<Option<ServerInfo>, ModuleError> {
    let t0 = Instant::now();
    let deadline = t0 + ctx.want.wait_timeout;
    let fail = |ctx: &Ctx, msg: String, running: bool| {
        let mut r = base_report(ctx);
        r.actions.push(if running {
            format!("started pid {pid}")
        } else {
            format!("started pid {pid} (it exited)")
        });
        r.changed = running || !ctx.actions.is_empty();
        r.running = running;
        r.pid = running.then_some(pid);
        r.into_error(&msg, &ctx.secrets)
    };
    let mut last_state = "not answering yet".to_string();
    loop {
        match fresh.child.try_wait() {
            Ok(Some(status)) => {
                if let Some(pf) = &ctx.want.pidfile {
                    if procfs::read_pidfile(pf) == Pidfile::Pid(pid) {
                        let _ = std::fs::remove_file(pf);
                    }
                }
                let msg = format!(
                    "{} (pid {pid}) exited while starting ({status}) after {:.1}s; nothing is running.{}",
                    ctx.label(),
                    t0.elapsed().as_secs_f64(),
                    logs::tail(ctx, Some(fresh.stderr), fresh.log_start)
                );
                return Err(fail(ctx, msg, false));
            }
            Ok(None) => {}
            Err(e) => return Err(fail(ctx, format!("cannot watch pid {pid}: {e}"), true)),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match &ctx.want.endpoint {
            None => {
                // No TCP port (unix socket only): up once it has written its pidfile.
                let written = ctx
                    .want
                    .pidfile
                    .as_ref()
                    .is_some_and(|pf| procfs::read_pidfile(pf) == Pidfile::Pid(pid));
                if written && t0.elapsed() > Duration::from_millis(500) {
                    return Ok(None);
                }
            }
            Some(ep) => {
                let conn = with_timeout(&ep.conn, remaining);
                match probe(&conn) {
                    Probe::Ready(info) if info.process_id.is_none_or(|p| p == pid) => {
                        return Ok(Some(info));
                    }
                    Probe::Ready(info) => {
                        last_state = format!(
                            "{} is answered by another process (pid {})",
                            conn.address(),
                            info.process_id.unwrap_or(0)
                        );
                    }
                    Probe::Loading => last_state = "still loading the dataset".into(),
                    Probe::Down(e) => last_state = e,
                    Probe::Fatal(e) => {
                        let msg = format!(
                            "{} started (pid {pid}) and is running, but the module cannot check it: {e}",
                            ctx.label()
                        );
                        return Err(fail(ctx, msg, true));
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            let msg = format!(
                "{} (pid {pid}) did not become ready within {}s ({last_state}); it was left running (raise wait_timeout for large datasets).{}",
                ctx.label(),
                ctx.want.wait_timeout.as_secs_f64(),
                logs::tail(ctx, Some(fresh.stderr), fresh.log_start)
            );
            return Err(fail(ctx, msg, true));
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until the running instance `pid` has loaded its dataset; returns its INFO and how long
/// that took.
///
/// # Errors
/// It exited, is still loading after `wait_timeout`, or cannot be checked.
pub fn wait_loaded(ctx: &Ctx, pid: i32) -> Result<(ServerInfo, Duration), ModuleError> {
    let t0 = Instant::now();
    let deadline = t0 + ctx.want.wait_timeout;
    let fail = |ctx: &Ctx, msg: String| {
        let mut r = base_report(ctx);
        r.running = procfs::is_alive(pid);
        r.pid = r.running.then_some(pid);
        r.into_error(&msg, &ctx.secrets)
    };
    let Some(ep) = &ctx.want.endpoint else {
        return Err(fail(ctx, format!("{}: no TCP port to ask", ctx.label())));
    };
    loop {
        if !procfs::is_alive(pid) {
            let msg = format!(
                "{} (pid {pid}) exited while loading its dataset.{}",
                ctx.label(),
                logs::tail(ctx, None, None)
            );
            return Err(fail(ctx, msg));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let last_state = match probe(&with_timeout(&ep.conn, remaining)) {
            Probe::Ready(info) if info.process_id == Some(pid) => return Ok((info, t0.elapsed())),
            Probe::Ready(info) => format!(
                "{} is answered by another process (pid {})",
                ep.conn.address(),
                info.process_id.unwrap_or(0)
            ),
            Probe::Loading => "still loading the dataset".to_string(),
            Probe::Down(e) => e,
            Probe::Fatal(e) => {
                return Err(fail(
                    ctx,
                    format!("{} (pid {pid}) cannot be checked: {e}", ctx.label()),
                ))
            }
        };
        if Instant::now() >= deadline {
            let msg = format!(
                "{} is running (pid {pid}) but not ready within wait_timeout={}s ({last_state}); raise wait_timeout for large datasets.",
                ctx.label(),
                ctx.want.wait_timeout.as_secs_f64(),
            );
            return Err(fail(ctx, msg));
        }
        std::thread::sleep(POLL);
    }
}
