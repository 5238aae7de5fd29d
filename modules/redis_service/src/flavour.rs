//! Redis or Valkey: which server the instance is, and so which executables, systemd units and
//! config directory it has.
//!
//! Valkey (the Linux Foundation fork of Redis 7.2) speaks the same protocol and reads the same
//! config file, but Debian 13 packages it under its own names: `valkey-server` /
//! `valkey-sentinel` (valkey-server and valkey-sentinel packages, valkey-cli in valkey-tools),
//! the units `valkey-server@<name>.service` / `valkey-sentinel@<name>.service`, /etc/valkey,
//! /var/lib/valkey, /var/log/valkey and the user `valkey`. Debian 13's Redis 8.0 keeps Debian 12's
//! names (redis-server@.service, /etc/redis, user redis); only its unit files moved from
//! /lib/systemd/system to /usr/lib/systemd/system, which the module does not depend on.

use crate::config::Kind;
use std::path::Path;

/// The server software of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Redis,
    Valkey,
}

/// Every executable name the module takes for a server or Sentinel process of either flavour
/// (a Valkey instance migrated from Redis, or Valkey's redis-compat names, keep the other one).
pub const PROGRAMS: [&str; 4] = [
    "redis-server",
    "redis-sentinel",
    "valkey-server",
    "valkey-sentinel",
];

impl Flavour {
    /// `redis` / `valkey`, as the option and the result spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Redis => "redis",
            Flavour::Valkey => "valkey",
        }
    }

    /// `Redis` / `Valkey`, for messages.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Flavour::Redis => "Redis",
            Flavour::Valkey => "Valkey",
        }
    }

    /// The executable (and Debian package, and systemd template prefix) of `kind`.
    #[must_use]
    pub fn program(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Flavour::Redis, Kind::Server) => "redis-server",
            (Flavour::Redis, Kind::Sentinel) => "redis-sentinel",
            (Flavour::Valkey, Kind::Server) => "valkey-server",
            (Flavour::Valkey, Kind::Sentinel) => "valkey-sentinel",
        }
    }

    /// The distribution's config directory (what the unit templates start from).
    #[must_use]
    pub fn config_dir(self) -> &'static str {
        match self {
            Flavour::Redis => "/etc/redis",
            Flavour::Valkey => "/etc/valkey",
        }
    }

    /// The flavour an executable's file name says (`valkey-server`, `redis-sentinel`, ...).
    #[must_use]
    pub fn of_program_name(name: &str) -> Option<Flavour> {
        if name.starts_with("valkey") {
            Some(Flavour::Valkey)
        } else if name.starts_with("redis") {
            Some(Flavour::Redis)
        } else {
            None
        }
    }
}

/// True when a process name (comm, argv[0]'s file name or the executable's) is a server or
/// Sentinel of either flavour. Redis and Valkey both rewrite their title to
/// `<argv0> <addr>`, so the first word's file name is the program.
#[must_use]
pub fn is_server_name(name: &str) -> bool {
    PROGRAMS.iter().any(|p| name.starts_with(p))
}

/// True when an executable's name makes it start as Sentinel (redis-sentinel, valkey-sentinel):
/// both servers check their argv[0] for it, so only a server binary needs `--sentinel`.
#[must_use]
pub fn is_sentinel_name(name: &str) -> bool {
    name.starts_with("redis-sentinel") || name.starts_with("valkey-sentinel")
}

/// Why the flavour is what it is: the result's `flavour_source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `flavour: redis|valkey`.
    Option,
    /// The file name of `binary`.
    Binary,
    /// The config file's directory is named `valkey` or `redis` (/etc/valkey/x.conf).
    ConfigDir,
    /// Only one flavour's executable is on PATH (Redis when both are).
    Path,
    /// Nothing told: Redis, the default.
    Default,
}

impl Source {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Option => "option",
            Source::Binary => "binary",
            Source::ConfigDir => "config",
            Source::Path => "path",
            Source::Default => "default",
        }
    }
}

/// Resolves `flavour` (`redis`, `valkey` or `auto`). For `auto`, in this order: the file name of
/// `binary` (valkey-* or redis-*); the name of the config file's directory (`valkey` as in
/// /etc/valkey/x.conf, or `redis`); which of the kind's executables `on_path` finds, Redis
/// first; else Redis. Pure, so that the order is unit-tested without either server installed.
#[must_use]
pub fn resolve(
    option: &str,
    kind: Kind,
    binary: Option<&Path>,
    config: Option<&Path>,
    on_path: &dyn Fn(&str) -> bool,
) -> (Flavour, Source) {
    match option {
        "redis" => return (Flavour::Redis, Source::Option),
        "valkey" => return (Flavour::Valkey, Source::Option),
        _ => {}
    }
    if let Some(f) = binary
        .and_then(Path::file_name)
        .and_then(|n| Flavour::of_program_name(&n.to_string_lossy()))
    {
        return (f, Source::Binary);
    }
    let dir = config
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().to_string());
    match dir.as_deref() {
        Some("valkey") => return (Flavour::Valkey, Source::ConfigDir),
        Some("redis") => return (Flavour::Redis, Source::ConfigDir),
        _ => {}
    }
    for f in [Flavour::Redis, Flavour::Valkey] {
        if on_path(f.program(kind)) {
            return (f, Source::Path);
        }
    }
    (Flavour::Redis, Source::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn programs_and_dirs_are_debian_13s() {
        // What Debian 13's packages ship (dpkg-deb -c of valkey-server 8.1.1 and redis-server
        // 8.0.2): /usr/bin/valkey-server, valkey-server@.service, /etc/valkey.
        assert_eq!(Flavour::Valkey.program(Kind::Server), "valkey-server");
        assert_eq!(Flavour::Valkey.program(Kind::Sentinel), "valkey-sentinel");
        assert_eq!(Flavour::Redis.program(Kind::Server), "redis-server");
        assert_eq!(Flavour::Redis.program(Kind::Sentinel), "redis-sentinel");
        assert_eq!(Flavour::Valkey.config_dir(), "/etc/valkey");
        assert_eq!(Flavour::Redis.config_dir(), "/etc/redis");
    }

    #[test]
    fn server_names_of_both_flavours() {
        // See: issue 16 item 1
        for n in [
            "valkey-server",
            "valkey-sentinel",
            "redis-server",
            "redis-sentinel",
        ] {
            assert!(is_server_name(n), "{n}");
        }
        for n in [
            "valkey-cli",
            "redis-cli",
            "valkey",
            "sh",
            "redis-check-rdb",
            "",
        ] {
            assert!(!is_server_name(n), "{n}");
        }
        assert!(is_sentinel_name("valkey-sentinel") && is_sentinel_name("redis-sentinel"));
        assert!(!is_sentinel_name("valkey-server") && !is_sentinel_name("redis-server"));
    }

    #[test]
    fn auto_resolution_order() {
        // See: issue 16 item 1
        let s = Kind::Server;
        let valkey_only = |p: &str| p == "valkey-server";
        let both = |p: &str| p == "valkey-server" || p == "redis-server";
        // The option wins over everything.
        assert_eq!(
            resolve(
                "redis",
                s,
                Some(Path::new("/usr/bin/valkey-server")),
                Some(Path::new("/etc/valkey/a.conf")),
                &valkey_only
            ),
            (Flavour::Redis, Source::Option)
        );
        assert_eq!(
            resolve("valkey", s, None, None, &none),
            (Flavour::Valkey, Source::Option)
        );
        // Then the binary's name, then the config's directory.
        assert_eq!(
            resolve(
                "auto",
                s,
                Some(Path::new("/opt/vk/bin/valkey-server")),
                Some(Path::new("/etc/redis/a.conf")),
                &none
            ),
            (Flavour::Valkey, Source::Binary)
        );
        assert_eq!(
            resolve(
                "auto",
                s,
                Some(Path::new("/opt/x/server-wrapper")),
                Some(Path::new("/etc/valkey/a.conf")),
                &both
            ),
            (Flavour::Valkey, Source::ConfigDir)
        );
        assert_eq!(
            resolve(
                "auto",
                s,
                None,
                Some(Path::new("/srv/p/etc/redis/a.conf")),
                &valkey_only
            ),
            (Flavour::Redis, Source::ConfigDir)
        );
        // Then PATH: Redis first when both are installed.
        assert_eq!(
            resolve("auto", s, None, Some(Path::new("/srv/a.conf")), &both),
            (Flavour::Redis, Source::Path)
        );
        assert_eq!(
            resolve("auto", s, None, None, &valkey_only),
            (Flavour::Valkey, Source::Path)
        );
        assert_eq!(
            resolve("auto", Kind::Sentinel, None, None, &|p| p
                == "valkey-sentinel"),
            (Flavour::Valkey, Source::Path)
        );
        assert_eq!(
            resolve("auto", s, None, None, &none),
            (Flavour::Redis, Source::Default)
        );
    }
}
