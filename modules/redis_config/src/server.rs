//! Which server a redis.conf is for (`server_version`), so that it is checked against that
//! server's directives: Redis 7.0, Redis 8.0 and Valkey 8.1 each add, rename or drop some.
//!
//! `auto` never opens a connection the module would not open anyway: with `apply: live` the
//! running server decides (after connecting, see [`on_server`]); otherwise the server binary
//! installed on the managed host (`valkey-server --version`, `redis-server --version`, found on
//! PATH); otherwise Redis 7.0, the tables' oldest.

use crate::conf::{self, Against, Line};
use crate::directives::Version;
use redis_utils::connection::RedisConn;
use redis_utils::info::ServerIdentity;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The table to check against before any connection, and warnings for the result.
#[must_use]
pub fn choose(server_version: &str, live: bool, path: &str) -> (Against, Vec<String>) {
    if let Some(v) = Version::from_key(server_version) {
        return (
            Against {
                version: Some(v),
                label: format!("{} (server_version: {server_version})", v.label()),
            },
            Vec::new(),
        );
    }
    if live {
        return (
            Against {
                version: None,
                label: "the running server".into(),
            },
            Vec::new(),
        );
    }
    match installed(path) {
        Some((binary, id)) => {
            let (v, exact) = Version::for_server(&id.flavour, &id.version);
            let mut warnings = Vec::new();
            if !exact {
                warnings.push(format!(
                    "{} (the installed {}) has no directive table of its own; checked against {} (set server_version, or use apply: live to ask the server)",
                    id.label(),
                    binary.display(),
                    v.label()
                ));
            }
            (
                Against {
                    version: Some(v),
                    label: format!("{} (the installed {})", id.label(), binary.display()),
                },
                warnings,
            )
        }
        None => (
            Against {
                version: Some(Version::Redis70),
                label:
                    "Redis 7.0 (no redis-server or valkey-server installed; server_version: auto)"
                        .into(),
            },
            Vec::new(),
        ),
    }
}

/// `prog` on PATH, as `which` finds it.
fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `Redis server v=7.0.15 sha=...` / `Valkey server v=8.1.1 ...` → identity.
#[must_use]
pub fn parse_version_line(text: &str) -> Option<ServerIdentity> {
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))?
        .to_string();
    let flavour = if text.trim_start().to_lowercase().starts_with("valkey") {
        "valkey"
    } else {
        "redis"
    };
    Some(ServerIdentity {
        flavour: flavour.into(),
        redis_version: version.clone(),
        version,
    })
}

/// The server binary installed on this host and what it says it is. A config path naming
/// Valkey (`/etc/valkey/valkey.conf`) prefers valkey-server when both are installed.
fn installed(path: &str) -> Option<(PathBuf, ServerIdentity)> {
    let order: [&str; 2] = if path.to_lowercase().contains("valkey") {
        ["valkey-server", "redis-server"]
    } else {
        ["redis-server", "valkey-server"]
    };
    order.iter().find_map(|prog| {
        let binary = which(prog)?;
        let out = Command::new(&binary).arg("--version").output().ok()?;
        let id = parse_version_line(&String::from_utf8_lossy(&out.stdout))?;
        Some((binary, id))
    })
}

/// With `server_version: auto` and a connection: the running server's table, and every
/// directive it lacks asked for by name (CONFIG GET), before anything is written.
///
/// # Errors
/// A directive the running server does not read, naming it (`Redis 7.0.15 (running at ...)`).
pub fn on_server(con: &mut RedisConn, lines: &[Line]) -> Result<(Version, String), String> {
    let info = con.info(Some("server")).map_err(|e| e.to_string())?;
    let id = ServerIdentity::from_info(&info);
    let (v, _) = Version::for_server(&id.flavour, &id.version);
    let label = format!("{} (running at {})", id.label(), con.address());
    conf::check_names_on_server(lines, v, &label, |name| {
        con.cmd::<Vec<String>>(&["CONFIG", "GET", name])
            .map(|r| !r.is_empty())
            .map_err(|e| e.to_string())
    })?;
    // rename-command and ACL rules, now against this server's commands.
    conf::validate_file_on(lines, conf::Dialect::Redis, Some(v))
        .map_err(|e| format!("{e} ({label})"))?;
    Ok((v, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_of_both_flavours() {
        let r = parse_version_line(
            "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1",
        );
        assert_eq!(r.map(|i| i.label()), Some("Redis 7.0.15".to_string()));
        let v = parse_version_line("Valkey server v=8.1.1 sha=00000000:0 malloc=jemalloc-5.3.0");
        assert_eq!(v.map(|i| i.label()), Some("Valkey 8.1.1".to_string()));
        assert!(parse_version_line("nonsense").is_none());
    }

    #[test]
    fn explicit_choice_needs_no_server() {
        let (a, w) = choose("valkey", false, "/x/redis.conf");
        assert_eq!(a.version, Some(Version::Valkey81));
        assert!(a.label.contains("server_version: valkey"), "{}", a.label);
        assert!(w.is_empty());
        let (a, _) = choose("auto", true, "/x/redis.conf");
        assert_eq!(a.version, None);
    }
}
