//! Can the plan be carried out? Checked before the first step, in check mode too, so that a
//! start that cannot succeed fails before anything was stopped or removed.

use super::logs::short;
use super::{base_report, Step};
use crate::config::probe_bind_host;
use crate::procfs;
use crate::Ctx;
use ansible_module::ModuleError;
use std::net::TcpListener;
use std::path::PathBuf;

/// Checks what the steps need; returns the binary to start when they start one.
///
/// # Errors
/// No binary, no config, no pidfile directory, or a port of the instance held by another
/// process.
pub fn check(ctx: &Ctx, steps: &[Step]) -> Result<Option<PathBuf>, ModuleError> {
    if !steps.contains(&Step::Start) {
        return Ok(None);
    }
    let binary = ctx.want.binary().map_err(ModuleError::new)?;
    if ctx.want.config.is_none() {
        return Err(ModuleError::new("config is required to start an instance"));
    }
    if let Some(dir) = ctx.want.pidfile.as_ref().and_then(|pf| pf.parent()) {
        if !dir.is_dir() {
            return Err(ModuleError::new(format!(
                "cannot start {}: the pidfile's directory {} does not exist",
                ctx.label(),
                dir.display()
            )));
        }
    }
    // A restart may reuse the ports of the process it stops first.
    let stopping = steps.iter().find_map(|s| match s {
        Step::Stop { pid } => Some(*pid),
        _ => None,
    });
    ports_free(ctx, stopping).map_err(|msg| base_report(ctx).into_error(&msg, &ctx.secrets))?;
    Ok(Some(binary))
}

/// Bind-probes every address/port the instance will listen on. With `allow_pid`, a port held
/// only by that process (the instance about to be restarted) is fine.
pub fn ports_free(ctx: &Ctx, allow_pid: Option<i32>) -> Result<(), String> {
    let Some(cfg) = &ctx.want.config else {
        return Ok(());
    };
    let port = cfg.port(ctx.want.kind)?;
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
