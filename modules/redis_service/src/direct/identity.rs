//! Is process `pid` this instance? Asked before any signal is sent to it.
//!
//! A pidfile alone proves nothing: the instance may have died and its pid been reused, or the
//! pidfile may name another instance's server (a copied config, a mistake, or the pidfile's owner
//! writing a pid into it). Signalling that process would stop a server the task does not manage
//! (issue 8 item 2). So a pid counts as this instance only when the server itself says so (the
//! server answering at this instance's address reports it as `INFO process_id`, see
//! [`crate::direct::observe`]) or, when nothing answers there (down, hung, wrong password), when
//! /proc says so: the process listens on one of the instance's ports, its command line names
//! one of them (Redis' process title is `redis-server 127.0.0.1:6379`), or it was started with
//! the instance's config file or unix socket.

use crate::desired::Desired;
use crate::procfs;
use std::path::{Path, PathBuf};

/// The TCP ports the instance listens on (from its config, and the address the module talks to).
#[must_use]
pub fn ports(want: &Desired) -> Vec<u16> {
    let mut out = Vec::new();
    if let Some(c) = &want.config {
        out.extend(c.port(want.kind).ok());
        out.push(c.tls_port());
    }
    if let Some(ep) = &want.endpoint {
        out.push(ep.conn.port);
    }
    out.retain(|p| *p > 0);
    out.sort_unstable();
    out.dedup();
    out
}

/// True when both paths name the same file (or, when one cannot be resolved, are equal).
#[must_use]
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// True when the server's own `config_file` (INFO) is the instance's config file.
#[must_use]
pub fn config_matches(want: &Desired, config_file: Option<&str>) -> bool {
    match (want.config_path(), config_file) {
        (Some(c), Some(f)) => same_file(c, Path::new(f)),
        _ => false,
    }
}

/// Why /proc says `pid` is this instance, or `None` when it does not.
#[must_use]
pub fn proc_matches(want: &Desired, pid: i32) -> Option<String> {
    if !procfs::is_alive(pid) {
        return None;
    }
    let ports = ports(want);
    if let Some(p) = ports.iter().find(|p| procfs::listens_on(pid, **p)) {
        return Some(format!("it listens on port {p}"));
    }
    let words = procfs::cmdline_words(pid);
    if let Some(p) = ports.iter().find(|p| {
        let suffix = format!(":{p}");
        words.iter().any(|w| w.ends_with(&suffix))
    }) {
        return Some(format!("its command line names port {p}"));
    }
    let cwd = procfs::cwd(pid).unwrap_or_else(|| PathBuf::from("/"));
    if let Some(c) = want.config_path() {
        let named = words.iter().any(|w| {
            let p = Path::new(w);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            };
            p.is_file() && same_file(&p, c)
        });
        if named {
            return Some(format!("it was started with {}", c.display()));
        }
    }
    let socket = want.config.as_ref().and_then(|c| {
        c.value("unixsocket")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    if let Some(s) = socket {
        if words.iter().any(|w| w.ends_with(&s)) {
            return Some(format!("its command line names the unix socket {s}"));
        }
    }
    None
}

/// What the instance is known by, for messages: `port 7000, config /etc/redis/a.conf`.
#[must_use]
pub fn describe(want: &Desired) -> String {
    let mut parts: Vec<String> = ports(want).iter().map(|p| format!("port {p}")).collect();
    if let Some(c) = want.config_path() {
        parts.push(format!("config {}", c.display()));
    }
    parts.join(", ")
}
