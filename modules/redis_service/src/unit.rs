//! manager=systemd: the plan is [`crate::systemd::plan`]'s systemctl commands for the unit's
//! current `is-active` / `is-enabled` state; apply runs them in order, check mode reports them.

use crate::report::{query_info, Report};
use crate::systemd::{plan, unit_name, Systemctl, UnitStatus};
use crate::{unit_config_path, Ctx};
use ansible_module::ModuleError;

/// Plans and applies `state` for the instance's unit.
///
/// # Errors
/// systemctl is missing or fails (the message has the unit's last journal lines), or the unit
/// is masked.
pub fn run(ctx: &mut Ctx) -> Result<Report, ModuleError> {
    let sc = Systemctl::find().map_err(ModuleError::new)?;
    let unit = unit_name(ctx.want.program(), &ctx.want.name);
    let expected = sc
        .exec_start_config(&unit)
        .unwrap_or_else(|| unit_config_path(ctx.want.flavour, ctx.want.kind, &ctx.want.name));
    if let Some(c) = ctx.want.config_path() {
        if c != expected {
            ctx.warn(&format!(
                "{unit} starts with {}; config {} is only read to find the port and password",
                expected.display(),
                c.display()
            ));
        }
    }
    if ctx.want.force_kill_after.is_some() || ctx.m.params.str("shutdown") != Some("save") {
        ctx.warn("shutdown and force_kill_after apply to manager=direct only; systemd stops the unit with SIGTERM (and SIGKILL after TimeoutStopSec)");
    }
    let cur = sc.status(&unit).map_err(ModuleError::new)?;
    let commands = plan(ctx.want.state, ctx.m.params.bool("enabled"), &unit, &cur)
        .map_err(ModuleError::new)?;
    let changed = !commands.is_empty();
    let fill = |ctx: &Ctx, r: &mut Report, status: &UnitStatus| {
        r.running = status.active == "active";
        r.pid = if r.running { sc.main_pid(&unit) } else { None };
        r.extra.insert("unit".into(), unit.clone().into());
        r.extra.insert("enabled".into(), status.is_enabled().into());
        r.extra
            .insert("active_state".into(), status.active.clone().into());
        if r.running {
            if let Some(ep) = &ctx.want.endpoint {
                match query_info(&ep.conn) {
                    Ok(info) => r.info = Some(info),
                    Err(e) => ctx.warn(&format!("{unit} is active but INFO failed: {e}")),
                }
            }
        }
    };
    if ctx.m.check_mode {
        ctx.actions = commands
            .iter()
            .map(|c| format!("would run systemctl {}", c.join(" ")))
            .collect();
        let mut r = ctx.report("systemd");
        fill(ctx, &mut r, &cur);
        r.changed = changed;
        r.msg = if changed {
            format!(
                "check mode: would run {} systemctl command(s) for {unit}",
                commands.len()
            )
        } else {
            format!("{unit} is already {}", cur.active)
        };
        return Ok(r);
    }
    let log_start = crate::systemd::log_offset(ctx);
    if crate::systemd::starts(&commands) {
        crate::systemd::ports_free(ctx, sc.main_pid(&unit)).map_err(|msg| {
            let mut r = ctx.report("systemd");
            fill(ctx, &mut r, &cur);
            r.into_error(&msg, &ctx.secrets)
        })?;
    }
    for c in &commands {
        let out = sc.run(c).map_err(ModuleError::new)?;
        if !out.success {
            let mut r = ctx.report("systemd");
            let now = sc.status(&unit).unwrap_or_else(|_| cur.clone());
            fill(ctx, &mut r, &now);
            r.changed = !ctx.actions.is_empty();
            let msg = format!(
                "systemctl {} failed: {}{}",
                c.join(" "),
                if out.stderr.is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                },
                crate::systemd::start_failure(ctx, &unit, log_start)
            );
            return Err(r.into_error(&msg, &ctx.secrets));
        }
        ctx.actions.push(format!("systemctl {}", c.join(" ")));
    }
    let now = sc.status(&unit).map_err(ModuleError::new)?;
    let mut r = ctx.report("systemd");
    fill(ctx, &mut r, &now);
    r.changed = changed;
    r.msg = if changed {
        format!("{unit}: {}", ctx.actions.join(", "))
    } else {
        format!("{unit} is {}; nothing to do", now.active)
    };
    Ok(r)
}
