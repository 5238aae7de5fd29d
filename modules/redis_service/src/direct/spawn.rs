//! Starting the process: `<binary> <config> [--sentinel] --daemonize no --pidfile <pidfile>` in
//! its own process group, stdin/stdout to /dev/null and stderr to an unlinked temp file (Redis
//! prints config errors there before its logfile is open), under umask 027 and, when `user` is
//! set, as that user; then [`ready::wait_started`].
//!
//! The pidfile is written by the server, never by the module. Why: the pidfile's directory
//! belongs to the user the server runs as, and the module often runs as root. Whoever owns that
//! directory can replace the pidfile with a symlink at any moment (the server itself, between the
//! module's checks and its write); root writing "the pidfile" would then overwrite whatever the
//! symlink points to (issue 8 item 5). The server opens it with its own, unprivileged, rights, so
//! a symlink there can only reach files that user may write anyway. O_NOFOLLOW with a temp name
//! and rename(2) would also be safe, but still has root creating files in a directory another
//! user controls, for no gain: Redis writes its pidfile whenever `--pidfile` is given. The module
//! only reads it, without following symlinks ([`crate::procfs::read_pidfile`]).

use super::ready::{self, Fresh};
use super::{base_report, logs};
use crate::config::Kind;
use crate::procfs::{self, Pidfile};
use crate::report::Report;
use crate::Ctx;
use ansible_module::ModuleError;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts the instance and waits until it is ready.
///
/// # Errors
/// It cannot be run, exits while starting, or is not ready within `wait_timeout`.
pub fn start(ctx: &mut Ctx, binary: &Path) -> Result<Report, ModuleError> {
    let Some(cfg) = ctx.want.config.clone() else {
        return Err(ModuleError::new("config is required to start an instance"));
    };
    if cfg.logfile().is_none() {
        ctx.warn(&format!("the config sets no logfile: {} logs to stdout, which the module discards; set logfile to keep the log", ctx.want.flavour.title()));
    }
    let mut stderr_file = tempfile::tempfile()
        .map_err(|e| ModuleError::new(format!("cannot create a temp file for stderr: {e}")))?;
    let stderr = stderr_file
        .try_clone()
        .map_err(|e| ModuleError::new(format!("cannot create a temp file for stderr: {e}")))?;
    // Only what this start writes to the log explains why it failed.
    let log_start = logs::logfile(ctx)
        .and_then(|l| std::fs::metadata(l).ok())
        .map(|m| m.len());
    let mut cmd = Command::new(binary);
    cmd.arg(&cfg.path);
    // redis-sentinel and valkey-sentinel are Sentinel by their name; a server binary needs the
    // flag.
    let is_sentinel_binary = binary
        .file_name()
        .is_some_and(|n| crate::flavour::is_sentinel_name(&n.to_string_lossy()));
    if ctx.want.kind == Kind::Sentinel && !is_sentinel_binary {
        cmd.arg("--sentinel");
    }
    cmd.args(["--daemonize", "no"]);
    if let Some(pf) = &ctx.want.pidfile {
        cmd.arg("--pidfile").arg(pf);
    }
    cmd.current_dir(&ctx.want.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        // Its own process group: not killed with Ansible's, outlives the module.
        .process_group(0);
    // Started by root for an unprivileged user: never run a network server as root.
    if let Some((uid, gid)) = ctx.want.run_as {
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
    let info = ready::wait_started(
        ctx,
        pid,
        &mut Fresh {
            child: &mut child,
            stderr: &mut stderr_file,
            log_start,
        },
    )?;
    ctx.actions.push(format!("started pid {pid}"));
    if let Some(pf) = &ctx.want.pidfile {
        if procfs::read_pidfile(pf) != Pidfile::Pid(pid) {
            ctx.warn(&format!(
                "{} (pid {pid}) did not write its pidfile {} (see its log: can the user it runs as write there?); the module still finds it by its address and config file",
                ctx.label(),
                pf.display()
            ));
        }
    }
    let mut r = base_report(ctx);
    r.changed = true;
    r.running = true;
    r.pid = Some(pid);
    r.info = info;
    Ok(r)
}
