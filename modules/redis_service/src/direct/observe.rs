//! What runs now: the pidfile's pid if it is this instance, what the instance's address
//! answers, and why a pidfile is stale.

use super::identity;
use super::logs::short;
use crate::desired::Desired;
use crate::procfs::{self, Pidfile};
use crate::report::{query_info, ServerInfo};
use redis_utils::connection::ConnectionError;

/// What runs now.
#[derive(Debug, Default)]
pub struct Observed {
    /// The instance's process, verified to be this instance ([`identity`]).
    pub pid: Option<i32>,
    /// INFO from the instance's address, when `pid` answers there.
    pub info: Option<ServerInfo>,
    /// The pidfile is stale (why), to warn about / remove.
    pub stale: Option<String>,
    /// INFO failed although the process runs (wrong password...).
    pub info_error: Option<ConnectionError>,
    /// The address answers, but for another process.
    pub other: Option<String>,
}

impl Observed {
    /// The instance runs but still loads its dataset (`loading:1`).
    #[must_use]
    pub fn loading(&self) -> bool {
        self.pid.is_some() && self.info.as_ref().is_some_and(|i| i.loading)
    }
}

/// Reads the pidfile and asks the instance's address, and decides which process (if any) is
/// this instance.
#[must_use]
pub fn observe(want: &Desired) -> Observed {
    let mut o = Observed::default();
    let candidate = pidfile_candidate(want, &mut o);
    let Some(ep) = &want.endpoint else {
        // No TCP port (unix socket only): /proc is all there is.
        if let Some(p) = candidate {
            verify_by_proc(want, p, &mut o);
        }
        return o;
    };
    let addr = ep.conn.address();
    match query_info(&ep.conn) {
        Ok(info) => {
            let q = info.process_id;
            if candidate.is_some() && candidate == q {
                o.pid = candidate;
                o.info = Some(info);
            } else if q.is_some_and(procfs::is_alive)
                && identity::config_matches(want, info.config_file.as_deref())
            {
                // This instance runs, but the pidfile does not name it.
                if let (Some(p), Some(pf)) = (candidate, &want.pidfile) {
                    o.stale = Some(format!(
                        "pidfile {} names pid {p}, but this instance ({addr}) is pid {}",
                        pf.display(),
                        q.unwrap_or(0)
                    ));
                }
                o.pid = q;
                o.info = Some(info);
            } else {
                let q = q.map_or_else(|| "unknown".into(), |q| q.to_string());
                o.other = Some(format!(
                    "{addr} is served by another {} server (pid {q}, config {})",
                    info.flavour_title(),
                    info.config_file.as_deref().unwrap_or("none")
                ));
                if let (Some(p), Some(pf)) = (candidate, &want.pidfile) {
                    o.stale = Some(format!(
                        "pidfile {} names pid {p}, a server process that is not this instance ({addr} is served by pid {q})",
                        pf.display()
                    ));
                }
            }
        }
        Err(e) => {
            if let Some(p) = candidate {
                if verify_by_proc(want, p, &mut o) {
                    o.info_error = Some(e);
                }
            }
        }
    }
    o
}

/// The pid the pidfile names when it is a live Redis process; otherwise records why the pidfile
/// is stale.
fn pidfile_candidate(want: &Desired, o: &mut Observed) -> Option<i32> {
    let pf = want.pidfile.as_ref()?;
    match procfs::read_pidfile(pf) {
        Pidfile::Missing => None,
        Pidfile::Invalid(t) => {
            o.stale = Some(format!(
                "pidfile {} does not hold a pid ({t:?})",
                pf.display()
            ));
            None
        }
        Pidfile::NotRegular(why) => {
            o.stale = Some(format!("pidfile {} is {why}", pf.display()));
            None
        }
        Pidfile::Pid(p) => {
            let bin = want.binary().ok();
            if procfs::is_redis_process(p, bin.as_deref()) {
                Some(p)
            } else if procfs::is_alive(p) {
                o.stale = Some(format!(
                    "pidfile {} names pid {p}, which is not Redis or Valkey but `{}`",
                    pf.display(),
                    short(&procfs::cmdline(p).unwrap_or_default())
                ));
                None
            } else {
                o.stale = Some(format!(
                    "pidfile {} names pid {p}, which is not running",
                    pf.display()
                ));
                None
            }
        }
    }
}

/// Takes `p` as the instance when /proc says it is; otherwise marks the pidfile stale.
fn verify_by_proc(want: &Desired, p: i32, o: &mut Observed) -> bool {
    if identity::proc_matches(want, p).is_some() {
        o.pid = Some(p);
        return true;
    }
    if let Some(pf) = &want.pidfile {
        o.stale = Some(format!(
            "pidfile {} names pid {p} (`{}`), a server process that is not this instance ({}): it is not signalled",
            pf.display(),
            short(&procfs::cmdline(p).unwrap_or_default()),
            identity::describe(want)
        ));
    }
    false
}
