//! `replication`: who decides a server's `replicaof`.
//!
//! - `managed` (the default): the task. The file says what the task says, and `apply: live`
//!   sends `REPLICAOF` when the running server differs.
//! - `initial`: the task only for the first deployment (no file yet). Once the file exists, the
//!   server keeps the replication it has now: the running server's (`INFO replication`) with
//!   `apply: live`, else the existing file's own `replicaof` line, which Redis keeps current
//!   (Sentinel follows every `REPLICAOF` it sends with `CONFIG REWRITE`). `REPLICAOF` is never
//!   sent. So the run after a failover neither demotes the new master nor writes a file that
//!   points a server at the old one. The file is then compared by what it says
//!   ([`crate::compare`]), not by its bytes, since Redis rewrote it.

use crate::conf::{self, Line};
use crate::desired::Desired;
use crate::directives::{self, Kind};
use crate::input::Request;
use crate::plan::Entry;
use crate::target::Target;
use ansible_module::ModuleError;
use redis_utils::connection::{ConnectionError, RedisConn};
use serde_json::{json, Map, Value};

/// The `replication` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Replication {
    #[default]
    Managed,
    Initial,
}

/// Where the `replicaof` the file gets came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// No file yet: the task's.
    Task,
    /// `INFO replication` of the running server.
    Server,
    /// The existing file's own `replicaof` line.
    File,
}

impl Source {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Source::Task => "task",
            Source::Server => "server",
            Source::File => "file",
        }
    }
}

/// The replication a run of `replication: initial` keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub source: Source,
    /// `host port`, or empty for a master.
    pub replicaof: String,
    /// What the task asks for (`host port`, or empty).
    pub task: String,
    /// Why the running server's state could not be read, when the file's was used instead.
    pub fallback: Option<String>,
}

fn same(a: &str, b: &str) -> bool {
    directives::normalize(Kind::HostPort, a) == directives::normalize(Kind::HostPort, b)
}

/// `host port`, or empty for `no one` (a master).
fn master_form(v: &str) -> String {
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    if v.eq_ignore_ascii_case("no one") {
        String::new()
    } else {
        v
    }
}

fn describe(v: &str) -> String {
    if v.is_empty() {
        "a master (no replicaof)".into()
    } else {
        format!("a replica of {v}")
    }
}

/// The task's `replicaof` (or `slaveof`), as the template prints it; empty for none.
#[must_use]
pub fn task_replicaof(settings: &Map<String, Value>) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let v = settings
        .get("replicaof")
        .or_else(|| settings.get("slaveof"))
        .map(text)
        .unwrap_or_default();
    master_form(&v)
}

/// The `replicaof` of parsed config lines (the last `replicaof` or `slaveof`); empty for none.
#[must_use]
pub fn file_replicaof(lines: &[Line]) -> String {
    lines
        .iter()
        .rev()
        .find(|l| conf::canonical(&l.name) == "replicaof")
        .map(|l| master_form(&l.args.join(" ")))
        .unwrap_or_default()
}

/// `INFO replication` as `host port` for a replica, empty for a master.
///
/// # Errors
/// INFO failed, or answered without a role Redis would give.
fn server_replicaof(con: &mut RedisConn) -> Result<String, ConnectionError> {
    let info = con.info(Some("replication"))?;
    let addr = con.address();
    let bad = |detail: String| ConnectionError::Command {
        addr: addr.clone(),
        command: "INFO replication".into(),
        detail,
    };
    match info.get("role") {
        Some("master") => Ok(String::new()),
        Some("slave") => match (info.get("master_host"), info.get("master_port")) {
            (Some(h), Some(p)) if !h.is_empty() && !p.is_empty() => Ok(format!("{h} {p}")),
            _ => Err(bad("role:slave without master_host and master_port".into())),
        },
        other => Err(bad(format!("unexpected role {other:?}"))),
    }
}

impl Kept {
    /// Works out the replication to keep.
    ///
    /// # Errors
    /// The server could not be read for another reason than a refused INFO (a dropped
    /// connection), or the file exists but Redis could not read it, so its replication is not
    /// known (nothing is written then: writing the task's would undo a failover).
    pub fn resolve(
        req: &Request,
        target: &Target,
        desired: &Desired,
        con: Option<&mut RedisConn>,
    ) -> Result<Kept, ModuleError> {
        let task = task_replicaof(&req.settings);
        if target.old_text.is_none() {
            return Ok(Kept {
                source: Source::Task,
                replicaof: task.clone(),
                task,
                fallback: None,
            });
        }
        let mut fallback = None;
        if let Some(con) = con {
            match server_replicaof(con) {
                Ok(r) => {
                    return Ok(Kept {
                        source: Source::Server,
                        replicaof: r,
                        task,
                        fallback: None,
                    })
                }
                // A refused INFO (renamed away, forbidden by an ACL) still leaves the file.
                Err(e @ ConnectionError::Command { .. }) => fallback = Some(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        }
        let Some(old) = &desired.old_lines else {
            return Err(ModuleError::new(format!(
                "replication: initial keeps the replication {} has now, but Redis could not read that file (unbalanced quotes); fix or remove it{}",
                req.path,
                fallback
                    .as_ref()
                    .map(|f| format!(" (the running server could not tell either: {f})"))
                    .unwrap_or_default()
            )));
        };
        Ok(Kept {
            source: Source::File,
            replicaof: file_replicaof(old),
            task,
            fallback,
        })
    }

    /// The task gives what is kept, so the task's own rendering stands.
    #[must_use]
    pub fn matches_task(&self) -> bool {
        same(&self.replicaof, &self.task)
    }

    /// `req` with its `replicaof` replaced by the kept one.
    #[must_use]
    pub fn request(&self, req: &Request) -> Request {
        let mut r = req.clone();
        r.settings.remove("slaveof");
        r.settings.remove("replicaof");
        if !self.replicaof.is_empty() {
            r.settings.insert("replicaof".into(), json!(self.replicaof));
        }
        r
    }

    /// Refuses a rendered file that does not say the kept replication (a `src` template that
    /// does not write `replicaof` from `settings`): it would point the server elsewhere.
    ///
    /// # Errors
    /// The rendered `replicaof` differs from the kept one.
    pub fn check_rendered(&self, desired: &Desired) -> Result<(), ModuleError> {
        if self.source == Source::Task {
            return Ok(());
        }
        let rendered = file_replicaof(&desired.lines);
        if same(&rendered, &self.replicaof) {
            return Ok(());
        }
        Err(ModuleError::new(format!(
            "replication: initial keeps the server {} (from the {}), but the template renders {}; use a template that writes replicaof from settings.replicaof",
            describe(&self.replicaof),
            self.source_text(),
            describe(&rendered)
        )))
    }

    fn source_text(&self) -> &'static str {
        match self.source {
            Source::Task => "task",
            Source::Server => "running server's INFO replication",
            Source::File => "existing file",
        }
    }

    /// What `replication_note` says: what was kept, from where, and what of the task was not
    /// applied (`not_sent`: the REPLICAOF a managed run would have sent).
    #[must_use]
    pub fn note(&self, path: &str, not_sent: Option<&Entry>) -> String {
        let mut out = match self.source {
            Source::Task => format!(
                "{path} does not exist yet: replicaof comes from the task, the server is {}",
                describe(&self.replicaof)
            ),
            _ => {
                let mut s = format!(
                    "kept the replication from the {}: the server is {}",
                    self.source_text(),
                    describe(&self.replicaof)
                );
                if let Some(f) = &self.fallback {
                    s.push_str(&format!(" (the running server could not be read: {f})"));
                }
                if self.matches_task() {
                    s.push_str(", as the task says");
                } else {
                    s.push_str(&format!(
                        "; the task's replicaof ({}) is not applied (a failover is never undone)",
                        if self.task.is_empty() {
                            "none"
                        } else {
                            &self.task
                        }
                    ));
                }
                s
            }
        };
        if let Some(e) = not_sent {
            out.push_str(&format!(
                "; REPLICAOF {} not sent: the running server stays {}",
                if e.desired.is_empty() {
                    "NO ONE"
                } else {
                    &e.desired
                },
                describe(&master_form(&e.current))
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 11 (replication: initial)
    #[test]
    fn issue_11_replicaof_of_settings_and_files() {
        let s = |v: Value| task_replicaof(v.as_object().unwrap_or(&Map::new()));
        assert_eq!(s(json!({"replicaof": "10.0.0.1  6379"})), "10.0.0.1 6379");
        assert_eq!(s(json!({"slaveof": ["10.0.0.1", 6379]})), "10.0.0.1 6379");
        assert_eq!(s(json!({"replicaof": "no one"})), "");
        assert_eq!(s(json!({"port": 1})), "");
        let f = |t: &str| file_replicaof(&conf::parse(t).unwrap_or_default());
        assert_eq!(f("port 1\n"), "");
        assert_eq!(
            f("slaveof a 1\n\n# Generated by CONFIG REWRITE\nreplicaof b 2\n"),
            "b 2"
        );
        assert_eq!(f("replicaof NO ONE\n"), "");
    }

    #[test]
    fn notes_say_what_was_kept() {
        let k = Kept {
            source: Source::Server,
            replicaof: String::new(),
            task: "10.0.0.1 6379".into(),
            fallback: None,
        };
        assert!(!k.matches_task());
        let n = k.note("/x", None);
        assert!(
            n.contains("the server is a master (no replicaof); the task's replicaof (10.0.0.1 6379) is not applied"),
            "{n}"
        );
        let e = Entry {
            name: "replicaof".into(),
            desired: "10.0.0.1 6379".into(),
            current: String::new(),
        };
        let n = Kept {
            source: Source::Task,
            ..k
        }
        .note("/x", Some(&e));
        assert!(
            n.contains("REPLICAOF 10.0.0.1 6379 not sent: the running server stays a master"),
            "{n}"
        );
    }
}
