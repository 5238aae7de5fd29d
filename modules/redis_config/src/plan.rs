//! The plan: what a run changes, worked out before anything is changed, as
//! `(name, desired, current)` entries. Check mode reports the plan; a real run carries it out
//! (see `apply`), so both report the same `changed`.
//!
//! Live entries compare the desired file with the running server, never file with file,
//! wherever Redis shows its state: `CONFIG GET` for parameters (in CONFIG GET's own form, so
//! `4gb` is `4294967296`), `ACL LIST` for `user` lines, `COMMAND INFO` for `rename-command`
//! (a renamed-away command is absent, its new name present), `MODULE LIST` for `loadmodule`. A
//! change still waiting for a restart is therefore reported on every run until the restart.
//! Redis shows nothing for `include`, nor for directives dropped from the file: those two are
//! compared with the file being replaced.

use crate::acl;
use crate::compare;
use crate::conf::{self, Dialect, Line};
use crate::desired::Desired;
use crate::directives::{self, Kind};
use crate::live::ServerState;
use std::collections::{BTreeMap, BTreeSet};

/// Not changed live even though Redis could: changing them moves the server away from the
/// clients (and from this very connection). They take effect at the restart the result asks for.
const MOVES_CLIENTS: &[&str] = &["port", "bind", "tls-port", "unixsocket"];

/// Redis 7.0's answer to `CONFIG SET <p> <current value>`, measured for every parameter; used only
/// to predict `restart_required` in check mode, where nothing may be set.
const IMMUTABLE: &[&str] = &[
    "aclfile",
    "always-show-logo",
    "aof_rewrite_cpulist",
    "appenddirname",
    "appendfilename",
    "bgsave_cpulist",
    "bio_cpulist",
    "cluster-config-file",
    "cluster-enabled",
    "cluster-port",
    "daemonize",
    "databases",
    "disable-thp",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "io-threads",
    "io-threads-do-reads",
    "logfile",
    "pidfile",
    "rdbchecksum",
    "server_cpulist",
    "set-proc-title",
    "socket-mark-id",
    "supervised",
    "syslog-enabled",
    "syslog-facility",
    "syslog-ident",
    "tcp-backlog",
    "unixsocket",
    "unixsocketperm",
    "dbfilename",
    "dir",
];

/// One thing that differs: a directive, what the file wants, what is there now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub desired: String,
    pub current: String,
}

impl Entry {
    fn new(name: &str, desired: &str, current: &str) -> Entry {
        Entry {
            name: name.to_string(),
            desired: desired.to_string(),
            current: current.to_string(),
        }
    }

    /// A value as results show it: secrets masked, empty as `""`.
    #[must_use]
    pub fn shown(&self, v: &str) -> String {
        if !v.is_empty() && conf::is_secret(&self.name, v) {
            "********".into()
        } else if v.is_empty() {
            "\"\"".into()
        } else {
            v.to_string()
        }
    }
}

/// A change that takes effect only at the next restart, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    /// `None` for a change with no single value to show (a `user` line, the command table).
    pub entry: Option<Entry>,
    pub name: String,
    pub why: String,
}

impl Restart {
    pub fn of(entry: Entry, why: impl Into<String>) -> Restart {
        Restart {
            name: entry.name.clone(),
            entry: Some(entry),
            why: why.into(),
        }
    }

    pub fn about(name: impl Into<String>, why: impl Into<String>) -> Restart {
        Restart {
            entry: None,
            name: name.into(),
            why: why.into(),
        }
    }

    /// `name: current -> desired (why)`, or `name: why`: the form `restart_reasons` has (the
    /// redis_server role reads the `dir: <old> -> <new>` one).
    #[must_use]
    pub fn reason(&self) -> String {
        match &self.entry {
            Some(e) => format!(
                "{}: {} -> {} ({})",
                e.name,
                e.shown(&e.current),
                e.shown(&e.desired),
                self.why
            ),
            None => format!("{}: {}", self.name, self.why),
        }
    }
}

/// What happens to the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilePlan {
    pub content_changed: bool,
    /// `path` is a symlink that becomes a regular file.
    pub replaces_link: bool,
    /// Content is right, mode or owner is not.
    pub attrs_changed: bool,
    /// A copy of the current file is made before it is replaced.
    pub backup: bool,
}

/// Everything one run changes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub file: FilePlan,
    /// Parameters to change with one `CONFIG SET`.
    pub config_set: Vec<Entry>,
    /// `REPLICAOF` to run (desired and current are `host port`, or empty for a master).
    pub replicaof: Option<Entry>,
    /// Changes that wait for a restart.
    pub restart: Vec<Restart>,
}

impl Plan {
    /// In check mode: the `CONFIG SET` entries Redis would refuse as restart-only, moved to
    /// `restart` (a real run learns this from Redis itself).
    #[must_use]
    pub fn predicted(&self) -> Plan {
        let mut p = self.clone();
        let (immutable, settable): (Vec<Entry>, Vec<Entry>) = p
            .config_set
            .drain(..)
            .partition(|e| IMMUTABLE.contains(&e.name.as_str()));
        p.config_set = settable;
        p.restart.extend(
            immutable
                .into_iter()
                .map(|e| Restart::of(e, "Redis cannot change it at runtime")),
        );
        p
    }
}

/// The desired value of each directive, joined as CONFIG SET takes it.
#[must_use]
pub fn desired_values(lines: &[Line]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for l in lines {
        let v = l.args.join(" ");
        match l.name.as_str() {
            // Repeated lines add up; `save ""` clears.
            "save" | "client-output-buffer-limit" => {
                let e = out.entry(l.name.clone()).or_default();
                if v.is_empty() {
                    e.clear();
                } else {
                    if !e.is_empty() {
                        e.push(' ');
                    }
                    e.push_str(&v);
                }
            }
            "slaveof" => {
                out.insert("replicaof".into(), v);
            }
            _ => {
                out.insert(l.name.clone(), v);
            }
        }
    }
    out
}

/// The parameters to read with CONFIG GET: those the new file sets, and those the old one set.
#[must_use]
pub fn config_names(desired: &Desired) -> Vec<String> {
    let mut names: BTreeSet<String> = desired_values(&desired.lines).into_keys().collect();
    if let Some(o) = &desired.old_lines {
        names.extend(desired_values(o).into_keys());
    }
    names
        .into_iter()
        .filter(|n| directives::kind(n) != Some(Kind::FileOnly))
        .collect()
}

/// Per-class comparison: only the classes the config names are compared and set.
fn cobl_differs(desired: &str, current: &str) -> bool {
    let cur: BTreeMap<String, String> = current
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .filter(|c| c.len() == 4)
        .map(|c| (c[0].to_string(), c[1..].join(" ")))
        .collect();
    let want = directives::normalize(Kind::ClientOutputBufferLimit, desired);
    want.split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .any(|c| cur.get(c[0]).map(String::as_str) != Some(&c[1..].join(" ")))
}

/// Whether `desired` and `current` (CONFIG GET's answer, or another file's value) are different
/// values of `name`, units and spelling aside.
#[must_use]
pub fn differs(name: &str, desired: &str, current: &str) -> bool {
    let kind = directives::kind(name).unwrap_or(Kind::Text);
    match kind {
        Kind::ClientOutputBufferLimit => cobl_differs(desired, current),
        Kind::Text if name == "dir" => {
            desired.trim_end_matches('/') != current.trim_end_matches('/')
        }
        _ => directives::normalize(kind, desired) != directives::normalize(kind, current),
    }
}

/// The live part of the plan: what differs between the desired file and the running server.
#[must_use]
pub fn live(desired: &Desired, server: &ServerState) -> Plan {
    let mut plan = Plan::default();
    let wanted = desired_values(&desired.lines);
    for (name, want) in wanted
        .iter()
        .filter(|(n, _)| directives::kind(n) != Some(Kind::FileOnly))
    {
        let Some(cur) = server.config.get(name) else {
            plan.restart.push(Restart::about(
                name.clone(),
                "not known to the running server (a newer Redis version's directive?)",
            ));
            continue;
        };
        if !differs(name, want, cur) {
            continue;
        }
        let entry = Entry::new(name, want, cur);
        if name == "replicaof" {
            plan.replicaof = Some(entry);
        } else if MOVES_CLIENTS.contains(&name.as_str()) {
            plan.restart.push(Restart::of(
                entry,
                "not changed live: it would move the server away from its clients",
            ));
        } else {
            plan.config_set.push(entry);
        }
    }
    plan.restart.extend(file_only(desired, server));

    // Directives dropped from the file keep their running value until the restart. Redis does
    // not say which values came from the file, so this one compares with the old file.
    // With `replication: initial` the file is compared by what it says: a file left as it is
    // drops nothing, and a line Redis' CONFIG REWRITE added at its default value (such as
    // `latency-tracking-info-percentiles 50 99 99.9`) changes nothing when it goes.
    if let Some(o) = desired
        .old_lines
        .as_ref()
        .filter(|_| !desired.by_directives || desired.content_changed)
    {
        for (d, _) in desired_values(o).into_iter().filter(|(k, v)| {
            // The line said what Redis has without it anyway, or the server is already at that
            // value (a `replicaof` dropped from the file of a server that is a master by now,
            // after a failover): the restart would change nothing.
            let as_without = (desired.by_directives && compare::same_as_absent(k, v))
                || server
                    .config
                    .get(k.as_str())
                    .is_some_and(|cur| compare::same_as_absent(k, cur));
            !wanted.contains_key(k) && directives::kind(k) != Some(Kind::FileOnly) && !as_without
        }) {
            plan.restart.push(Restart::about(
                d,
                "removed from the file; the running value stays until a restart",
            ));
        }
    }
    plan
}

fn lines_named<'a>(lines: &'a [Line], name: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
    lines.iter().filter(move |l| l.name == name)
}

/// `user`, `rename-command`, `loadmodule` and `include` lines, which Redis reads only at start.
fn file_only(desired: &Desired, server: &ServerState) -> Vec<Restart> {
    let new = &desired.lines;
    let old = desired.old_lines.as_deref();
    let mut out = Vec::new();
    let file_vs_file = |name: &str, why_unknown: &str| -> Option<Restart> {
        let values = |ls: &[Line]| -> Vec<Vec<String>> {
            lines_named(ls, name).map(|l| l.args.clone()).collect()
        };
        let now = values(new);
        let changed = match old {
            Some(o) => values(o) != now,
            None => !now.is_empty(),
        };
        changed.then(|| {
            Restart::about(
                name,
                format!(
                    "changed in the file ({why_unknown}); Redis reads {name} lines only at start"
                ),
            )
        })
    };
    let has = |name: &str| {
        lines_named(new, name).next().is_some()
            || old.is_some_and(|o| lines_named(o, name).next().is_some())
    };

    if has("user") {
        match &server.users {
            Ok(users) => out.extend(users_differ(new, users, server)),
            Err(why) => out.extend(file_vs_file("user", why)),
        }
    }
    if has("rename-command") {
        match &server.commands {
            Ok(present) => out.extend(renames_differ(new, present)),
            Err(why) => out.extend(file_vs_file("rename-command", why)),
        }
    }
    if has("loadmodule") {
        match &server.modules {
            Ok(loaded) => {
                let mut want: Vec<(String, Vec<String>)> = lines_named(new, "loadmodule")
                    .filter_map(|l| l.args.split_first())
                    .map(|(p, a)| (p.clone(), a.to_vec()))
                    .collect();
                let mut have = loaded.clone();
                want.sort();
                have.sort();
                if want != have {
                    out.push(Restart::about(
                        "loadmodule",
                        "the modules in the file are not the ones loaded on the running server (MODULE LIST); Redis loads modules only at start",
                    ));
                }
            }
            Err(why) => out.extend(file_vs_file("loadmodule", why)),
        }
    }
    out.extend(file_vs_file(
        "include",
        "Redis does not show included files, so this compares with the file being replaced",
    ));
    out
}

fn users_differ(
    new: &[Line],
    server_users: &[(String, acl::User)],
    server: &ServerState,
) -> Vec<Restart> {
    let mut out = Vec::new();
    // The lines were validated against their server already; reading them back takes a
    // command Redis 7.0's table lacks (Redis 8.0, Valkey 8.1) as it is.
    let vocab = conf::vocabulary_on(new, Dialect::Redis, None);
    let all_channels = conf::all_channels_default(new);
    let mut named = BTreeSet::new();
    for l in lines_named(new, "user") {
        let Ok((name, want)) = acl::user_from_line(&l.args, &vocab, all_channels) else {
            continue;
        };
        named.insert(name.clone());
        let why = match server_users.iter().find(|(n, _)| *n == name) {
            None => "not on the running server (ACL LIST)",
            Some((_, have)) if !want.same_as(have, &server.command_table) => {
                "differs from the running server's ACL LIST"
            }
            Some(_) => continue,
        };
        out.push(Restart::about(
            format!("user {name}"),
            format!("{why}; Redis reads user lines only at start"),
        ));
    }
    if !named.is_empty() {
        for (name, _) in server_users
            .iter()
            .filter(|(n, _)| n != "default" && !named.contains(n))
        {
            out.push(Restart::about(
                format!("user {name}"),
                "on the running server (ACL LIST) but not in the file; a restart removes it",
            ));
        }
    }
    out
}

fn renames_differ(new: &[Line], present: &BTreeMap<String, Option<String>>) -> Vec<Restart> {
    let expected = conf::commands_after_renames(new, Dialect::Redis);
    let mut problems = Vec::new();
    for (name, actual) in present {
        match (expected.get(name), actual) {
            (Some(want), Some(have)) if want == have => {}
            (None, None) => {}
            (Some(want), None) if want == name => {
                problems.push(format!("`{name}` is renamed away on the running server"));
            }
            (Some(want), None) => {
                problems.push(format!("`{name}` ({want}) is not on the running server"));
            }
            (None, Some(have)) => problems.push(if have == name {
                format!("`{name}` is on the running server; the file renames it away")
            } else {
                format!("`{name}` ({have}) is on the running server; the file has no such name")
            }),
            (Some(want), Some(have)) => problems.push(format!(
                "`{name}` is {have} on the running server, {want} in the file"
            )),
        }
    }
    if problems.is_empty() {
        return Vec::new();
    }
    vec![Restart::about(
        "rename-command",
        format!(
            "the running server's commands differ from the file (COMMAND INFO: {}); Redis applies rename-command only at start",
            problems.join(", ")
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::parse;

    #[test]
    fn repeated_lines_add_up() {
        let l = parse("save 3600 1\nsave 300 100\nclient-output-buffer-limit replica 1mb 1mb 1\nslaveof h 1\n").unwrap_or_default();
        let d = desired_values(&l);
        assert_eq!(d["save"], "3600 1 300 100");
        assert_eq!(d["replicaof"], "h 1");
        let l = parse("save 3600 1\nsave \"\"\n").unwrap_or_default();
        assert_eq!(desired_values(&l)["save"], "");
    }

    #[test]
    fn output_buffer_limits_compare_per_class() {
        let cur = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert!(!cobl_differs("replica 256mb 64mb 60", cur));
        assert!(cobl_differs("replica 512mb 64mb 60", cur));
        assert!(!cobl_differs("pubsub 32mb 8mb 60", cur));
    }

    #[test]
    fn reasons_mask_secrets_and_keep_the_role_s_dir_form() {
        let r = Restart::of(
            Entry::new("dir", "/new", "/old"),
            "Redis: can't set protected config",
        );
        assert_eq!(
            r.reason(),
            "dir: /old -> /new (Redis: can't set protected config)"
        );
        let r = Restart::of(Entry::new("requirepass", "b", "a"), "x");
        assert_eq!(r.reason(), "requirepass: ******** -> ******** (x)");
    }

    #[test]
    fn a_dropped_line_needs_no_restart_when_the_server_has_its_default_already() {
        let desired = |old: &str, new: &str| Desired {
            rendered: new.into(),
            text: new.into(),
            lines: parse(new).unwrap_or_default(),
            old_lines: Some(parse(old).unwrap_or_default()),
            content_changed: true,
            by_directives: false,
            warnings: Vec::new(),
        };
        let server = |replicaof: &str| {
            let mut s = ServerState::empty();
            s.config.insert("port".into(), "6379".into());
            s.config.insert("replicaof".into(), replicaof.into());
            s
        };
        let d = desired("port 6379\nreplicaof h 1\n", "port 6379\n");
        // A master by now (after a FAILOVER hand-over): the restart would change nothing.
        let names = |p: &Plan| p.restart.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert!(names(&live(&d, &server(""))).is_empty());
        // Still replicating: it goes on doing so until a restart.
        assert_eq!(names(&live(&d, &server("h 1"))), ["replicaof"]);
    }

    #[test]
    fn renamed_commands_compare_with_command_info() {
        let new =
            parse("rename-command FLUSHALL \"\"\nrename-command CONFIG cfgx\n").unwrap_or_default();
        let present = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_string(), v.map(str::to_string)))
                .collect()
        };
        let applied = present(&[
            ("flushall", None),
            ("config", None),
            ("cfgx", Some("config")),
            ("get", Some("get")),
        ]);
        assert!(renames_differ(&new, &applied).is_empty());
        let pending = present(&[
            ("flushall", Some("flushall")),
            ("config", Some("config")),
            ("cfgx", None),
        ]);
        let r = renames_differ(&new, &pending);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].reason()
                .contains("`flushall` is on the running server; the file renames it away"),
            "{}",
            r[0].reason()
        );
    }
}
