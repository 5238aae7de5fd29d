//! manager=direct: the instance is a detached process recorded in a pidfile.
//!
//! Start: `<binary> <config> [--sentinel] --daemonize no --pidfile <pidfile>` in its own process
//! group, stdin/stdout to /dev/null and stderr to an unlinked temp file (Redis prints config
//! errors there before its logfile is open), then wait for PING and `loading:0`.
//! Stop: `SHUTDOWN [SAVE|NOSAVE]` over an authenticated connection to the process named by the
//! pidfile (checked against `INFO process_id`), else SIGTERM; then wait for the process to go,
//! with SIGKILL after `force_kill_after` when set.

use crate::config::probe_bind_host;
use crate::procfs::{self, Pidfile};
use crate::report::{query_info, with_timeout, Report, ServerInfo};
use crate::systemd::State;
use crate::Ctx;
use ansible_module::ModuleError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis_utils::connection::ConnectionError;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);
const LOG_LINES: usize = 20;

/// What is running now.
#[derive(Debug, Default)]
struct Observed {
    pid: Option<i32>,
    info: Option<ServerInfo>,
    /// The pidfile is stale (why), to warn about / remove.
    stale: Option<String>,
    /// INFO failed although the process runs (wrong password...).
    info_error: Option<ConnectionError>,
    /// The address answers, but for another process.
    other: Option<String>,
}

pub fn run(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    if ctx.pidfile.is_none() && ctx.config.is_none() {
        return Err(ModuleError::new(format!(
            "{}: manager=direct needs config or pidfile to find the instance",
            ctx.label()
        )));
    }
    match ctx.state {
        State::Status => status(ctx),
        State::Started => started(ctx),
        State::Stopped => stopped(ctx),
        State::Restarted => restarted(ctx),
    }
}

fn binary_hint(ctx: &Ctx) -> Option<PathBuf> {
    ctx.binary().ok()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn observe(ctx: &Ctx) -> Observed {
    let mut o = Observed::default();
    let bin = binary_hint(ctx);
    if let Some(pf) = &ctx.pidfile {
        match procfs::read_pidfile(pf) {
            Pidfile::Missing => {}
            Pidfile::Invalid(t) => {
                o.stale = Some(format!(
                    "pidfile {} does not hold a pid ({t:?})",
                    pf.display()
                ));
            }
            Pidfile::Pid(p) => {
                if procfs::is_redis_process(p, bin.as_deref()) {
                    o.pid = Some(p);
                } else if procfs::is_alive(p) {
                    o.stale = Some(format!(
                        "pidfile {} names pid {p}, which is not Redis but `{}`",
                        pf.display(),
                        short(&procfs::cmdline(p).unwrap_or_default())
                    ));
                } else {
                    o.stale = Some(format!(
                        "pidfile {} names pid {p}, which is not running",
                        pf.display()
                    ));
                }
            }
        }
    }
    let Some(ep) = &ctx.endpoint else {
        return o;
    };
    let addr = ep.conn.address();
    match query_info(&ep.conn) {
        Ok(info) => match (o.pid, info.process_id) {
            (Some(p), Some(q)) if p == q => o.info = Some(info),
            (Some(p), q) => {
                o.other = Some(format!(
                    "{addr} is served by another process (pid {}), not by pid {p} from the pidfile",
                    q.map_or_else(|| "unknown".into(), |q| q.to_string())
                ));
            }
            (None, q) => {
                let ours = match (&ctx.config, &info.config_file) {
                    (Some(c), Some(f)) => same_file(&c.path, Path::new(f)),
                    _ => false,
                };
                match q {
                    Some(q) if ours && procfs::is_alive(q) => {
                        o.pid = Some(q);
                        o.info = Some(info);
                    }
                    _ => {
                        o.other = Some(format!(
                            "{addr} is served by another Redis (pid {}, config {})",
                            q.map_or_else(|| "unknown".into(), |q| q.to_string()),
                            info.config_file.as_deref().unwrap_or("none")
                        ));
                    }
                }
            }
        },
        Err(e) => o.info_error = Some(e),
    }
    o
}

fn fill(r: &mut Report, o: &Observed) {
    r.running = o.pid.is_some();
    r.pid = o.pid;
    r.info.clone_from(&o.info);
}

fn base_report(ctx: &Ctx) -> Report {
    let mut r = ctx.report("direct");
    r.extra.insert(
        "pidfile".into(),
        ctx.pidfile.as_ref().map(|p| p.display().to_string()).into(),
    );
    r
}

fn warn_observed(ctx: &Ctx, o: &Observed) {
    if let (Some(p), Some(e)) = (o.pid, &o.info_error) {
        ctx.warn(&format!(
            "{} runs as pid {p}, but INFO failed: {e}",
            ctx.label()
        ));
    }
    if let (Some(_), Some(other)) = (o.pid, &o.other) {
        ctx.warn(&other.clone());
    }
}

fn status(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let o = observe(ctx);
    if let Some(s) = &o.stale {
        ctx.warn(&format!("{s} (stale; left in place by state=status)"));
    }
    warn_observed(ctx, &o);
    if let (None, Some(other)) = (o.pid, &o.other) {
        ctx.warn(&format!("{}; this instance is not running", other));
    }
    let mut r = base_report(ctx);
    fill(&mut r, &o);
    r.msg = match o.pid {
        Some(p) => format!("{} is running (pid {p})", ctx.label()),
        None => format!("{} is not running", ctx.label()),
    };
    Ok(r)
}

fn started(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let o = observe(ctx);
    if let Some(p) = o.pid {
        warn_observed(ctx, &o);
        let mut r = base_report(ctx);
        fill(&mut r, &o);
        r.msg = format!("{} is already running (pid {p})", ctx.label());
        return Ok(r);
    }
    // Only needed to start, and checked before anything is changed.
    let binary = ctx.binary().map_err(ModuleError::new)?;
    start_new(ctx, &binary, &o, None)
}

fn stopped(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let o = observe(ctx);
    let Some(pid) = o.pid else {
        if let Some(s) = &o.stale {
            ctx.warn(&format!("{s} (stale)"));
        }
        let mut r = base_report(ctx);
        r.msg = format!("{} is not running", ctx.label());
        return Ok(r);
    };
    if ctx.m.check_mode {
        ctx.actions
            .push(format!("would stop pid {pid} ({})", stop_method(ctx)));
        let mut r = base_report(ctx);
        fill(&mut r, &o);
        r.changed = true;
        r.msg = format!("check mode: would stop {} (pid {pid})", ctx.label());
        return Ok(r);
    }
    stop_pid(ctx, pid)?;
    let mut r = base_report(ctx);
    r.changed = true;
    r.msg = format!("{} stopped (was pid {pid})", ctx.label());
    Ok(r)
}

fn restarted(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let binary = ctx.binary().map_err(ModuleError::new)?;
    let o = observe(ctx);
    if ctx.m.check_mode {
        if let Some(pid) = o.pid {
            ctx.actions
                .push(format!("would stop pid {pid} ({})", stop_method(ctx)));
        }
        ctx.actions.push(format!("would start {}", ctx.label()));
        let mut r = base_report(ctx);
        fill(&mut r, &o);
        r.changed = true;
        r.msg = format!("check mode: would restart {}", ctx.label());
        return Ok(r);
    }
    if let Some(pid) = o.pid {
        // Something other than this instance on its ports would make the start fail after the
        // stop: refuse before stopping anything.
        check_ports(ctx, Some(pid))
            .map_err(|msg| base_report(ctx).into_error(&msg, &ctx.secrets))?;
        stop_pid(ctx, pid)?;
    }
    let after_stop = Observed {
        stale: if o.pid.is_none() {
            o.stale.clone()
        } else {
            None
        },
        ..Observed::default()
    };
    let mut r = start_new(ctx, &binary, &after_stop, o.pid)?;
    r.changed = true;
    if let Some(old) = o.pid {
        r.msg = format!(
            "{} restarted (pid {old} → {})",
            ctx.label(),
            r.pid.unwrap_or(0)
        );
    }
    Ok(r)
}

fn stop_method(ctx: &Ctx) -> String {
    match ctx.shutdown {
        Some(a) => format!("SHUTDOWN {a}"),
        None => "SHUTDOWN".into(),
    }
}

/// Bind-probes every address/port the instance will listen on. With `allow_pid`, a port held
/// only by that process (the instance about to be restarted) is fine.
fn check_ports(ctx: &Ctx, allow_pid: Option<i32>) -> Result<(), String> {
    let Some(cfg) = &ctx.config else {
        return Ok(());
    };
    let port = cfg.port(ctx.kind)?;
    let mut ports: Vec<(u16, &str)> = Vec::new();
    if port > 0 {
        ports.push((port, "port"));
    }
    let tls = cfg.tls_port();
    if tls > 0 {
        ports.push((tls, "tls-port"));
    }
    if let Some(bus) = cfg.cluster_bus_port(port) {
        ports.push((bus, "cluster bus port"));
    }
    let binds: Vec<String> = cfg
        .bind()
        .iter()
        .filter_map(|b| probe_bind_host(b))
        .collect();
    for (p, what) in ports {
        for host in &binds {
            let Err(e) = TcpListener::bind((host.as_str(), p)) else {
                continue;
            };
            if e.kind() != std::io::ErrorKind::AddrInUse {
                // Not an address of this host, or no permission: Redis will say so itself.
                continue;
            }
            let holders = procfs::port_holders(p);
            if let Some(allowed) = allow_pid {
                if holders.is_empty() || holders.iter().all(|(h, _)| *h == allowed) {
                    continue;
                }
            }
            let who = if holders.is_empty() {
                "by a process the module cannot see (another user or network namespace; try `ss -ltnp`)".to_string()
            } else {
                format!(
                    "by {}",
                    holders
                        .iter()
                        .map(|(pid, cmd)| format!("pid {pid} (`{}`)", short(cmd)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(format!(
                "cannot start {}: {what} {host}:{p} (from {}) is already in use {who}; nothing was started",
                ctx.label(),
                cfg.path.display()
            ));
        }
    }
    Ok(())
}

/// The logfile named by the config, if any.
fn logfile(ctx: &Ctx) -> Option<PathBuf> {
    let cfg = ctx.config.as_ref()?;
    cfg.logfile().map(|l| cfg.resolve(l, &ctx.cwd))
}

/// Text for failure messages: the last log lines (written after byte `since` of the logfile, when
/// given) and anything Redis printed on stderr.
fn log_tail(ctx: &Ctx, stderr: Option<&mut File>, since: Option<u64>) -> String {
    let mut out = String::new();
    if let Some(cfg) = &ctx.config {
        match cfg.logfile() {
            Some(l) => {
                let path = cfg.resolve(l, &ctx.cwd);
                let lines = procfs::tail_since(&path, since.unwrap_or(0), LOG_LINES);
                if !lines.is_empty() {
                    let _ = write!(out, "\nLast lines of {}:\n{}", path.display(), lines.join("\n"));
                }
            }
            None => out.push_str("\n(no logfile in the config: Redis logged to stdout, which is discarded; set logfile to see why)"),
        }
    }
    if let Some(f) = stderr {
        let mut s = String::new();
        if f.seek(SeekFrom::Start(0)).is_ok() && f.read_to_string(&mut s).is_ok() {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            if !lines.is_empty() {
                let start = lines.len().saturating_sub(LOG_LINES);
                let _ = write!(out, "\nstderr:\n{}", lines[start..].join("\n"));
            }
        }
    }
    out
}

/// A command line shortened for a message.
fn short(cmd: &str) -> String {
    let one_line = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 100 {
        format!("{}...", one_line.chars().take(100).collect::<String>())
    } else {
        one_line
    }
}

fn start_new(
    ctx: &mut Ctx,
    binary: &Path,
    o: &Observed,
    previous_pid: Option<i32>,
) -> Result<Report, ModuleError> {
    let Some(cfg) = ctx.config.clone() else {
        return Err(ModuleError::new("config is required to start an instance"));
    };
    if let Some(pf) = &ctx.pidfile {
        if let Some(dir) = pf.parent() {
            if !dir.is_dir() {
                return Err(ModuleError::new(format!(
                    "cannot start {}: the pidfile's directory {} does not exist",
                    ctx.label(),
                    dir.display()
                )));
            }
        }
    }
    if let Some(s) = &o.stale {
        if ctx.m.check_mode {
            ctx.warn(&format!("{s}; it would be removed"));
        } else if let Some(pf) = &ctx.pidfile {
            ctx.warn(&format!("{s}; removed it"));
            let _ = std::fs::remove_file(pf);
            ctx.actions
                .push(format!("removed stale pidfile {}", pf.display()));
        }
    }
    check_ports(ctx, None).map_err(|msg| {
        let mut r = base_report(ctx);
        r.changed = !ctx.actions.is_empty();
        r.into_error(&msg, &ctx.secrets)
    })?;
    if ctx.m.check_mode {
        ctx.actions.push(format!("would start {}", ctx.label()));
        let mut r = base_report(ctx);
        r.changed = true;
        r.msg = format!("check mode: would start {}", ctx.label());
        return Ok(r);
    }
    if cfg.logfile().is_none() {
        ctx.warn("the config sets no logfile: Redis logs to stdout, which the module discards; set logfile to keep the log");
    }
    let mut stderr_file = tempfile::tempfile()
        .map_err(|e| ModuleError::new(format!("cannot create a temp file for stderr: {e}")))?;
    let stderr = stderr_file
        .try_clone()
        .map_err(|e| ModuleError::new(format!("cannot create a temp file for stderr: {e}")))?;
    // Only what this start writes to the log explains why it failed.
    let log_start = logfile(ctx)
        .and_then(|l| std::fs::metadata(l).ok())
        .map(|m| m.len());
    let mut cmd = Command::new(binary);
    cmd.arg(&cfg.path);
    let is_sentinel_binary = binary
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("redis-sentinel"));
    if ctx.kind == crate::config::Kind::Sentinel && !is_sentinel_binary {
        cmd.arg("--sentinel");
    }
    cmd.args(["--daemonize", "no"]);
    if let Some(pf) = &ctx.pidfile {
        cmd.arg("--pidfile").arg(pf);
    }
    cmd.current_dir(&ctx.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        // Its own process group: not killed with Ansible's, outlives the module.
        .process_group(0);
    // Started by root for an unprivileged user: never run a network server as root.
    if let Some((uid, gid)) = ctx.run_as {
        cmd.uid(uid).gid(gid);
    }
    // The server inherits this umask: files it writes (RDB, AOF, a Sentinel's rewrite of its own
    // config, which holds auth-pass) get 0640 at most, as under the systemd unit's UMask=0027.
    let previous_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    let spawned = cmd.spawn();
    nix::sys::stat::umask(previous_umask);
    let mut child =
        spawned.map_err(|e| ModuleError::new(format!("cannot run {}: {e}", binary.display())))?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let info = wait_ready(ctx, &mut child, pid, &mut stderr_file, log_start)?;
    ctx.actions.push(format!("started pid {pid}"));
    if let Some(pf) = &ctx.pidfile {
        if procfs::read_pidfile(pf) != Pidfile::Pid(pid) {
            if let Err(e) = std::fs::write(pf, format!("{pid}\n")) {
                ctx.warn(&format!("cannot write pidfile {}: {e}", pf.display()));
            }
        }
    }
    let mut r = base_report(ctx);
    r.changed = true;
    r.running = true;
    r.pid = Some(pid);
    r.info = info;
    r.msg = match previous_pid {
        Some(_) => format!("{} restarted (pid {pid})", ctx.label()),
        None => format!("{} started (pid {pid})", ctx.label()),
    };
    Ok(r)
}

/// Waits for PING and `loading:0` (Sentinel: PING) from the new process.
fn wait_ready(
    ctx: &Ctx,
    child: &mut Child,
    pid: i32,
    stderr: &mut File,
    log_start: Option<u64>,
) -> Result<Option<ServerInfo>, ModuleError> {
    let t0 = Instant::now();
    let deadline = t0 + ctx.wait_timeout;
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
        match child.try_wait() {
            Ok(Some(status)) => {
                if let Some(pf) = &ctx.pidfile {
                    if procfs::read_pidfile(pf) == Pidfile::Pid(pid) {
                        let _ = std::fs::remove_file(pf);
                    }
                }
                let msg = format!(
                    "{} (pid {pid}) exited while starting ({status}) after {:.1}s; nothing is running.{}",
                    ctx.label(),
                    t0.elapsed().as_secs_f64(),
                    log_tail(ctx, Some(stderr), log_start)
                );
                return Err(fail(ctx, msg, false));
            }
            Ok(None) => {}
            Err(e) => return Err(fail(ctx, format!("cannot watch pid {pid}: {e}"), true)),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match &ctx.endpoint {
            None => {
                // No TCP port (unix socket only): up once it has written its pidfile.
                let written = ctx
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
                ctx.wait_timeout.as_secs_f64(),
                log_tail(ctx, Some(stderr), log_start)
            );
            return Err(fail(ctx, msg, true));
        }
        std::thread::sleep(POLL);
    }
}

enum Probe {
    Ready(ServerInfo),
    Loading,
    Down(String),
    Fatal(String),
}

fn probe(conn: &redis_utils::connection::ConnectionParams) -> Probe {
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

fn stop_pid(ctx: &mut Ctx, pid: i32) -> Result<(), ModuleError> {
    let method = stop_method(ctx);
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
                log_tail(ctx, None, None)
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
        signal(pid, Signal::SIGTERM).map_err(ModuleError::new)?;
        ctx.actions.push(format!("SIGTERM pid {pid}"));
    }
    wait_gone(ctx, pid)?;
    if let Some(pf) = &ctx.pidfile {
        if procfs::read_pidfile(pf) == Pidfile::Pid(pid) {
            let _ = std::fs::remove_file(pf);
        }
    }
    Ok(())
}

/// SHUTDOWN, telling a refused SHUTDOWN (error reply) from one that was carried out (the server
/// closes the connection, or takes longer than the read timeout to save).
fn send_shutdown(ctx: &Ctx, pid: i32) -> Result<(), ShutdownError> {
    let Some(ep) = &ctx.endpoint else {
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
    args.extend(ctx.shutdown);
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

fn signal(pid: i32, sig: Signal) -> Result<(), String> {
    match kill(Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(format!("cannot send {sig} to pid {pid}: {e}")),
    }
}

/// Waits until `pid` has exited; SIGKILL after `force_kill_after` when set.
fn wait_gone(ctx: &mut Ctx, pid: i32) -> Result<(), ModuleError> {
    let t0 = Instant::now();
    let mut limit = ctx.wait_timeout;
    if let Some(fk) = ctx.force_kill_after {
        limit = limit.max(fk + Duration::from_secs(5));
    }
    let mut killed = false;
    loop {
        if !procfs::is_alive(pid) {
            return Ok(());
        }
        let elapsed = t0.elapsed();
        if let Some(fk) = ctx.force_kill_after {
            if !killed && elapsed >= fk {
                signal(pid, Signal::SIGKILL).map_err(ModuleError::new)?;
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
                log_tail(ctx, None, None)
            );
            return Err(r.into_error(&msg, &ctx.secrets));
        }
        std::thread::sleep(POLL);
    }
}
