//! Carrying out a plan, in the one order that can always be taken back: everything was
//! validated before (desired state, plan); the backup is taken first (if it fails, nothing has
//! changed); then the live changes; then the file. If anything fails after a live change,
//! every live change is undone, `REPLICAOF` included, so the server is as it was.

use crate::desired::Desired;
use crate::input::Request;
use crate::live::{self, Undo};
use crate::plan::{Entry, Plan, Restart};
use crate::target::Target;
use ansible_module::files;
use ansible_module::{Module, ModuleError};
use redis_utils::connection::RedisConn;
use std::path::PathBuf;

/// What a run did (in check mode: what it would do).
#[derive(Clone, Debug, Default)]
pub struct Done {
    /// Parameters changed with CONFIG SET.
    pub config_set: Vec<Entry>,
    pub replicaof: Option<Entry>,
    /// Everything that waits for a restart: the plan's, and what Redis refused as restart-only.
    pub restart: Vec<Restart>,
    pub backup: Option<PathBuf>,
}

impl Done {
    /// The names of the live changes, in the order they were made.
    #[must_use]
    pub fn applied(&self) -> Vec<String> {
        self.config_set
            .iter()
            .chain(self.replicaof.iter())
            .map(|e| e.name.clone())
            .collect()
    }
}

/// Carries out `plan` (or, in check mode, predicts what carrying it out does).
///
/// # Errors
/// The failing step, and whether the live changes before it were undone.
pub fn apply(
    m: &Module,
    req: &Request,
    target: &Target,
    desired: &Desired,
    plan: &Plan,
    mut con: Option<&mut RedisConn>,
) -> Result<Done, ModuleError> {
    if m.check_mode {
        let p = plan.predicted();
        return Ok(Done {
            config_set: p.config_set,
            replicaof: p.replicaof,
            restart: p.restart,
            backup: None,
        });
    }
    let mut done = Done {
        restart: plan.restart.clone(),
        ..Done::default()
    };
    if plan.file.backup {
        done.backup = Some(target.backup().map_err(|e| ModuleError::new(e.0))?);
    }
    let mut undo_log = Vec::new();
    if let Err(e) = steps(
        req,
        target,
        desired,
        plan,
        con.as_deref_mut(),
        &mut done,
        &mut undo_log,
    ) {
        return Err(undo_after(e, con, &undo_log, &done));
    }
    Ok(done)
}

fn steps(
    req: &Request,
    target: &Target,
    desired: &Desired,
    plan: &Plan,
    con: Option<&mut RedisConn>,
    done: &mut Done,
    undo_log: &mut Vec<Undo>,
) -> Result<(), ModuleError> {
    if let Some(con) = con {
        if !plan.config_set.is_empty() {
            let (applied, refused) = live::config_set(con, plan.config_set.clone())?;
            undo_log.push(Undo::Config(
                applied
                    .iter()
                    .map(|e| (e.name.clone(), e.current.clone()))
                    .collect(),
            ));
            done.config_set = applied;
            done.restart.extend(refused);
        }
        if let Some(r) = &plan.replicaof {
            live::replicaof(con, &r.desired)?;
            undo_log.push(Undo::Replicaof(r.current.clone()));
            done.replicaof = Some(r.clone());
        }
    }
    let attrs = req.attrs();
    if plan.file.content_changed {
        target
            .write(&desired.text, &attrs)
            .map_err(|e| ModuleError::new(e.0))?;
    } else if plan.file.attrs_changed {
        files::ensure_attrs(&target.file, &attrs, false).map_err(|e| ModuleError::new(e.0))?;
    }
    Ok(())
}

fn undo_after(
    e: ModuleError,
    con: Option<&mut RedisConn>,
    undo_log: &[Undo],
    done: &Done,
) -> ModuleError {
    let changed = done.applied();
    let (Some(con), false) = (con, changed.is_empty()) else {
        return e;
    };
    let note = match live::undo(con, undo_log) {
        Ok(()) => format!("; the live changes were undone ({})", changed.join(", ")),
        Err(u) => format!(
            "; undoing the live changes ({}) failed too: {u}; the running server may still have them",
            changed.join(", ")
        ),
    };
    ModuleError::new(format!("{}{note}", e.msg))
}
