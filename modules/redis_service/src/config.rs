//! Just enough of redis.conf / sentinel.conf to manage an instance: where it listens, its password,
//! where its pidfile and logfile are, and which values are secrets.
//!
//! The reading itself is the shared one (`redis_utils::redisconf`: `sdssplitargs` splitting,
//! case-insensitive names, the last occurrence wins); this file only adds what Redis does on top
//! of one file: `include` files are read in place, relative to the including file's directory,
//! with Redis 7's wildcards in the file name.

use redis_utils::connection::ConnectionParams;
use redis_utils::redisconf::{self, Line};
use std::path::{Path, PathBuf};

/// Server or Sentinel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    Sentinel,
}

impl Kind {
    #[must_use]
    pub fn parse(s: &str) -> Kind {
        if s == "sentinel" {
            Kind::Sentinel
        } else {
            Kind::Server
        }
    }

    /// Redis' default port when the config has no `port` line.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Kind::Server => 6379,
            Kind::Sentinel => 26379,
        }
    }
}

/// Why a config file could not be read. The messages never quote a line's value: a broken line
/// may be a password line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    Missing(PathBuf),
    Unreadable(PathBuf, String),
    /// A line `sdssplitargs` rejects (unbalanced quotes); Redis refuses such a file too.
    BadLine {
        path: PathBuf,
        number: usize,
        directive: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(p) => write!(f, "config file {} does not exist", p.display()),
            Self::Unreadable(p, e) => write!(f, "cannot read config file {}: {e}", p.display()),
            Self::BadLine {
                path,
                number,
                directive,
            } => write!(
                f,
                "config file {}, line {number}: unbalanced quotes (or a closing quote not followed by a space) in a `{directive}` line; Redis refuses this file too (the line is not shown: it may hold a password)",
                path.display()
            ),
        }
    }
}

/// Include files nest at most this deep (a file including itself must not loop).
const MAX_INCLUDE_DEPTH: usize = 10;

/// A parsed config file (includes expanded).
#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    /// The file as given (absolute when the module loaded it).
    pub path: PathBuf,
    /// Directive lines in the order Redis applies them, included files in place.
    pub lines: Vec<Line>,
}

impl RedisConfig {
    /// Reads `path` and the files it includes.
    ///
    /// # Errors
    /// The file is missing or unreadable, or a line of it (or of an included file) is broken.
    pub fn load(path: &Path) -> Result<RedisConfig, ConfigError> {
        let mut cfg = RedisConfig {
            path: path.to_path_buf(),
            lines: Vec::new(),
        };
        let text = read(path)?;
        cfg.add_text(path, &text, 0)?;
        Ok(cfg)
    }

    /// Parses config text; `include` lines are resolved against `base` (a directory).
    ///
    /// # Errors
    /// A broken line.
    pub fn parse(text: &str, base: &Path) -> Result<RedisConfig, ConfigError> {
        let mut cfg = RedisConfig::default();
        cfg.add_text(&base.join("(text)"), text, 0)?;
        Ok(cfg)
    }

    fn add_text(&mut self, file: &Path, text: &str, depth: usize) -> Result<(), ConfigError> {
        let lines = redisconf::parse(text).map_err(|_| bad_line(file, text))?;
        let base = file.parent().unwrap_or(Path::new("/"));
        for line in lines {
            if line.name != "include" {
                self.lines.push(line);
                continue;
            }
            if depth >= MAX_INCLUDE_DEPTH {
                continue;
            }
            for inc in &line.args {
                for p in expand_include(base, inc) {
                    // Redis itself fails on an include it cannot open, with its own message;
                    // here only what can be read matters (ports, secrets).
                    if let Ok(t) = std::fs::read_to_string(&p) {
                        self.add_text(&p, &t, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Arguments of the last occurrence of `name`.
    #[must_use]
    pub fn last(&self, name: &str) -> Option<&[String]> {
        redisconf::last(&self.lines, name).map(|l| l.args.as_slice())
    }

    /// First argument of the last occurrence of `name`.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<&str> {
        self.last(name).and_then(|a| a.first()).map(String::as_str)
    }

    /// Every secret of the instance, to register as no_log values before anything can fail:
    /// passwords of the server, of its master, of Sentinel's masters and peers, of ACL users (in
    /// the file and in its `aclfile`), TLS key passphrases.
    ///
    /// Why more than the parsed values: when Redis rejects a line it echoes the line as written
    /// (`>>> 'masterauth "s3\x41cret" extra'`), quotes and escapes included, so the value as
    /// written after the directive name is a secret too, and so is every argument of a
    /// single-value secret directive (`requirepass 1234 5678` is echoed whole).
    #[must_use]
    pub fn secrets(&self, cwd: &Path) -> Vec<String> {
        let mut out = line_secrets(&self.lines);
        if let Some(acl) = self.value("aclfile").filter(|v| !v.is_empty()) {
            let path = self.resolve(acl, cwd);
            if let Ok(text) = std::fs::read_to_string(&path) {
                match redisconf::parse(&text) {
                    Ok(lines) => out.extend(line_secrets(&lines)),
                    // A broken ACL file: every `>` word of it, as Redis would read them.
                    Err(_) => out.extend(text.lines().flat_map(|l| {
                        l.split_whitespace()
                            .filter_map(|w| w.trim_matches(['"', '\'']).strip_prefix('>'))
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })),
                }
            }
        }
        out.retain(|s| !s.is_empty());
        out.sort();
        out.dedup();
        out
    }

    /// `port` (the kind's default when absent). `Err` when it is not a port number.
    ///
    /// # Errors
    /// The directive's value is not a number between 0 and 65535.
    pub fn port(&self, kind: Kind) -> Result<u16, String> {
        match self.value("port") {
            None => Ok(kind.default_port()),
            Some(v) => v
                .parse()
                .map_err(|_| format!("`port {v}` in {} is not a port number", self.path.display())),
        }
    }

    /// `tls-port`, 0 when absent or unparsable.
    #[must_use]
    pub fn tls_port(&self) -> u16 {
        self.value("tls-port")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// `cluster-port` (0 = port + 10000) when `cluster-enabled yes`.
    #[must_use]
    pub fn cluster_bus_port(&self, port: u16) -> Option<u16> {
        if !self
            .value("cluster-enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
        {
            return None;
        }
        match self
            .value("cluster-port")
            .and_then(|v| v.parse::<u16>().ok())
        {
            Some(p) if p > 0 => Some(p),
            _ => port.checked_add(10000),
        }
    }

    /// Bind addresses as written (Redis' default `* -::*` when absent).
    #[must_use]
    pub fn bind(&self) -> Vec<String> {
        match self.last("bind") {
            Some(a) if !a.is_empty() => a.to_vec(),
            _ => vec!["*".into(), "-::*".into()],
        }
    }

    /// `requirepass`, when set and not empty.
    #[must_use]
    pub fn requirepass(&self) -> Option<String> {
        self.value("requirepass")
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// `logfile`: `None` when absent or empty (Redis then logs to stdout).
    #[must_use]
    pub fn logfile(&self) -> Option<&str> {
        self.value("logfile").filter(|v| !v.is_empty())
    }

    /// `pidfile`, when set and not empty.
    #[must_use]
    pub fn pidfile(&self) -> Option<&str> {
        self.value("pidfile").filter(|v| !v.is_empty())
    }

    /// The directory Redis ends up in (`dir`), resolved against `cwd` (the directory Redis is
    /// started in). Relative `logfile`/`pidfile` paths are relative to it.
    #[must_use]
    pub fn data_dir(&self, cwd: &Path) -> PathBuf {
        match self.value("dir") {
            Some(d) if Path::new(d).is_absolute() => PathBuf::from(d),
            Some(d) => cwd.join(d),
            None => cwd.to_path_buf(),
        }
    }

    /// A path from the config resolved as Redis resolves it (relative to `dir`).
    #[must_use]
    pub fn resolve(&self, p: &str, cwd: &Path) -> PathBuf {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.data_dir(cwd).join(p)
        }
    }
}

/// The secrets of parsed lines: the values (`redisconf::secrets`) and, for each line holding one,
/// the line's value as written and every argument of it.
fn line_secrets(lines: &[Line]) -> Vec<String> {
    let mut out = redisconf::secrets_in(lines);
    for l in lines {
        let one = std::slice::from_ref(l);
        let single_value = redisconf::SECRET_DIRECTIVES.contains(&l.name.as_str());
        if single_value || !redisconf::secrets_in(one).is_empty() {
            out.push(l.raw_value.clone());
        }
        if single_value {
            out.extend(l.args.iter().cloned());
        }
    }
    out
}

/// The error for a text `redisconf::parse` rejected: the first line `split_args` rejects, named
/// by number and directive only.
fn bad_line(file: &Path, text: &str) -> ConfigError {
    let (number, directive) = text
        .lines()
        .enumerate()
        .find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && redisconf::split_args(t).is_none()
        })
        .map_or((0, String::new()), |(i, l)| {
            (
                i + 1,
                l.split_whitespace().next().unwrap_or("").to_lowercase(),
            )
        });
    ConfigError::BadLine {
        path: file.to_path_buf(),
        number,
        directive,
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    if !path.exists() {
        return Err(ConfigError::Missing(path.to_path_buf()));
    }
    // A FIFO would block the module forever and a device is never a config file.
    ansible_module::files::read_regular_file(path, "config")
        .map_err(|e| ConfigError::Unreadable(path.to_path_buf(), e.0))
}

/// The files an `include` argument names: one path, or (Redis 7) a pattern with `*` / `?` in its
/// last component, matched in sorted order as glob(3) returns them.
fn expand_include(base: &Path, inc: &str) -> Vec<PathBuf> {
    let p = if Path::new(inc).is_absolute() {
        PathBuf::from(inc)
    } else {
        base.join(inc)
    };
    let Some(pattern) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return vec![p];
    };
    if !pattern.contains(['*', '?']) {
        return vec![p];
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    !n.starts_with('.') && wildcard(&pattern, &n)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `*` and `?` matching of a whole name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The address to talk to an instance at, and why.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub conn: ConnectionParams,
    /// Where host/port/password came from, for messages.
    pub source: &'static str,
}

/// Where to PING the instance.
///
/// The rule (documented in the module): `login_host`/`login_port` count as given when they differ
/// from their defaults (`localhost`, 6379); otherwise the config file decides: the first `bind`
/// address (a wildcard becomes the loopback address), then `port`, or `tls-port` when `tls=true`
/// or when `port` is 0. `login_password` unset → the config's `requirepass`. With TLS, unset
/// `ca_certs`/`client_cert_file`/`client_key_file` come from the config's `tls-ca-cert-file` and,
/// when `tls-auth-clients` is not `no`/`optional`, `tls-client-cert-file`/`tls-client-key-file`
/// (else `tls-cert-file`/`tls-key-file`).
///
/// `None` when the instance has no TCP port (unix socket only).
#[must_use]
pub fn resolve_endpoint(
    base: &ConnectionParams,
    cfg: Option<&RedisConfig>,
    kind: Kind,
    cwd: &Path,
) -> Option<Endpoint> {
    let Some(cfg) = cfg else {
        return Some(Endpoint {
            conn: base.clone(),
            source: "connection options",
        });
    };
    let mut conn = base.clone();
    if base.host == "localhost" {
        conn.host = connect_host(cfg.bind().first().map_or("*", String::as_str));
    }
    if base.port == 6379 {
        let port = cfg.port(kind).unwrap_or(0);
        let tls_port = cfg.tls_port();
        if base.tls && tls_port > 0 {
            conn.port = tls_port;
        } else if port > 0 {
            conn.port = port;
        } else if tls_port > 0 {
            conn.port = tls_port;
            conn.tls = true;
        } else {
            return None;
        }
    }
    if conn.password.is_none() {
        conn.password = cfg.requirepass();
    }
    if conn.tls {
        let path = |k: &str| {
            cfg.value(k)
                .filter(|v| !v.is_empty())
                .map(|v| cfg.resolve(v, cwd).display().to_string())
        };
        if conn.ca_certs.is_none() {
            conn.ca_certs = path("tls-ca-cert-file");
        }
        let auth_clients = cfg
            .value("tls-auth-clients")
            .unwrap_or("yes")
            .to_lowercase();
        if conn.client_cert_file.is_none()
            && conn.client_key_file.is_none()
            && auth_clients == "yes"
        {
            let (c, k) = match (path("tls-client-cert-file"), path("tls-client-key-file")) {
                (Some(c), Some(k)) => (Some(c), Some(k)),
                _ => (path("tls-cert-file"), path("tls-key-file")),
            };
            if c.is_some() && k.is_some() {
                conn.client_cert_file = c;
                conn.client_key_file = k;
            }
        }
    }
    Some(Endpoint {
        conn,
        source: "config file",
    })
}

/// A `bind` address as something to connect to: wildcards become loopback, `-` (optional) goes.
#[must_use]
pub fn connect_host(bind: &str) -> String {
    let b = bind.strip_prefix('-').unwrap_or(bind);
    match b {
        "*" | "0.0.0.0" | "" => "127.0.0.1".into(),
        "::*" | "::" => "::1".into(),
        other => other.to_string(),
    }
}

/// A `bind` address as something to bind a probe socket to (`None`: skip it).
#[must_use]
pub fn probe_bind_host(bind: &str) -> Option<String> {
    let b = bind.strip_prefix('-').unwrap_or(bind);
    match b {
        "*" => Some("0.0.0.0".into()),
        // A dual-stack [::] probe would collide with IPv4 listeners Redis itself (IPV6_V6ONLY)
        // does not collide with.
        "::*" | "::" => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn base() -> ConnectionParams {
        ConnectionParams {
            host: "localhost".into(),
            port: 6379,
            user: None,
            password: None,
            db: 0,
            tls: false,
            validate_certs: true,
            ca_certs: None,
            client_cert_file: None,
            client_key_file: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn cfg(text: &str) -> RedisConfig {
        RedisConfig::parse(text, Path::new("/etc/redis")).expect("parse")
    }

    #[test]
    fn port_pidfile_logfile_requirepass_last_wins() {
        let c = cfg("# comment\nPORT 7000\nport 7001\npidfile /run/redis/a.pid\nlogfile \"\"\nlogfile /var/log/redis/a.log\nrequirepass s3cret\ndir /var/lib/redis\n");
        assert_eq!(c.port(Kind::Server), Ok(7001));
        assert_eq!(c.pidfile(), Some("/run/redis/a.pid"));
        assert_eq!(c.logfile(), Some("/var/log/redis/a.log"));
        assert_eq!(c.requirepass(), Some("s3cret".into()));
        assert_eq!(c.data_dir(Path::new("/x")), PathBuf::from("/var/lib/redis"));
    }

    #[test]
    fn defaults_when_absent() {
        let c = cfg("logfile \"\"\nrequirepass \"\"\n");
        assert_eq!(c.port(Kind::Server), Ok(6379));
        assert_eq!(c.port(Kind::Sentinel), Ok(26379));
        assert_eq!(c.pidfile(), None);
        assert_eq!(c.logfile(), None);
        assert_eq!(c.requirepass(), None);
        assert_eq!(c.bind(), vec!["*".to_string(), "-::*".to_string()]);
        assert!(c.port(Kind::Server).is_ok());
        assert!(cfg("port abc").port(Kind::Server).is_err());
    }

    #[test]
    fn relative_paths_are_relative_to_dir() {
        let c = cfg("dir data\nlogfile redis.log\n");
        assert_eq!(
            c.resolve("redis.log", Path::new("/srv")),
            PathBuf::from("/srv/data/redis.log")
        );
        assert_eq!(
            c.resolve("/abs.log", Path::new("/srv")),
            PathBuf::from("/abs.log")
        );
    }

    #[test]
    fn includes_are_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("common.conf"),
            "port 7100\nrequirepass from-include\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("main.conf"),
            "include common.conf\nport 7200\n",
        )
        .expect("write");
        let c = RedisConfig::load(&dir.path().join("main.conf")).expect("load");
        assert_eq!(c.port(Kind::Server), Ok(7200));
        assert_eq!(c.requirepass(), Some("from-include".into()));
        let e = RedisConfig::load(&dir.path().join("nope.conf")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("does not exist")));
    }

    #[test]
    fn include_wildcards_in_sorted_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("conf.d");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("20-b.conf"), "port 7302\nmasterauth inc-secret\n").expect("write");
        std::fs::write(d.join("10-a.conf"), "port 7301\n").expect("write");
        std::fs::write(d.join("notes.txt"), "port 1\n").expect("write");
        std::fs::write(dir.path().join("main.conf"), "include conf.d/*.conf\n").expect("write");
        let c = RedisConfig::load(&dir.path().join("main.conf")).expect("load");
        assert_eq!(c.port(Kind::Server), Ok(7302));
        assert!(c.secrets(dir.path()).contains(&"inc-secret".to_string()));
        assert!(
            wildcard("*.conf", "a.conf") && wildcard("a?c", "abc") && !wildcard("*.conf", "a.txt")
        );
    }

    #[test]
    fn a_broken_line_is_an_error_that_does_not_quote_it() {
        let e = RedisConfig::parse(
            "port 1\nrequirepass \"s3cret-broken\n",
            Path::new("/etc/redis"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("line 2") && e.contains("`requirepass`"), "{e}");
        assert!(!e.contains("s3cret-broken"), "{e}");
    }

    #[test]
    fn secrets_cover_every_password_directive() {
        let c = cfg("requirepass p1\nmasterauth p2\nsentinel auth-pass mymaster p3\nsentinel sentinel-pass p4\nuser alice on >p5 ~* +@all\ntls-key-file-pass p6\nsentinel monitor mymaster 127.0.0.1 6379 2\n");
        let s = c.secrets(Path::new("/"));
        for p in ["p1", "p2", "p3", "p4", "p5", "p6"] {
            assert!(s.contains(&p.to_string()), "{p} in {s:?}");
        }
        assert!(!s.iter().any(|x| x.contains("monitor")), "{s:?}");
    }

    /// Redis echoes a rejected line as written: the written forms are secrets too.
    #[test]
    fn secrets_include_the_values_as_written() {
        let c = cfg("masterauth \"s3\\x41cret\" extra\nrequirepass 1234 5678\nuser alice on \">p w\" ~* +@all\n");
        let s = c.secrets(Path::new("/"));
        for want in [
            "s3Acret",
            "\"s3\\x41cret\" extra",
            "1234",
            "5678",
            "1234 5678",
            "p w",
            "alice on \">p w\" ~* +@all",
        ] {
            assert!(s.contains(&want.to_string()), "{want} in {s:?}");
        }
    }

    #[test]
    fn aclfile_passwords_are_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("users.acl"),
            "user bob on >acl-pw-1 ~* +@all\n",
        )
        .expect("write");
        let c = cfg("aclfile users.acl\n");
        assert!(c.secrets(dir.path()).contains(&"acl-pw-1".to_string()));
    }

    #[test]
    fn cluster_bus_port() {
        assert_eq!(cfg("port 7000").cluster_bus_port(7000), None);
        assert_eq!(
            cfg("cluster-enabled yes").cluster_bus_port(7000),
            Some(17000)
        );
        assert_eq!(
            cfg("cluster-enabled yes\ncluster-port 8000").cluster_bus_port(7000),
            Some(8000)
        );
    }

    #[test]
    fn endpoint_from_config_unless_options_differ_from_defaults() {
        let c = cfg("bind 10.1.2.3 127.0.0.1\nport 7001\nrequirepass cfgpw\n");
        let e =
            resolve_endpoint(&base(), Some(&c), Kind::Server, Path::new("/")).expect("endpoint");
        assert_eq!((e.conn.host.as_str(), e.conn.port), ("10.1.2.3", 7001));
        assert_eq!(e.conn.password.as_deref(), Some("cfgpw"));

        let mut b = base();
        b.host = "192.0.2.9".into();
        b.port = 7005;
        b.password = Some("given".into());
        let e = resolve_endpoint(&b, Some(&c), Kind::Server, Path::new("/")).expect("endpoint");
        assert_eq!((e.conn.host.as_str(), e.conn.port), ("192.0.2.9", 7005));
        assert_eq!(e.conn.password.as_deref(), Some("given"));

        let e = resolve_endpoint(&base(), None, Kind::Server, Path::new("/")).expect("endpoint");
        assert_eq!((e.conn.host.as_str(), e.conn.port), ("localhost", 6379));
    }

    #[test]
    fn wildcard_binds_become_loopback() {
        for (bind, host) in [
            ("*", "127.0.0.1"),
            ("0.0.0.0", "127.0.0.1"),
            ("-::*", "::1"),
            ("-::1", "::1"),
            ("::", "::1"),
        ] {
            assert_eq!(connect_host(bind), host, "{bind}");
        }
        let e = resolve_endpoint(
            &base(),
            Some(&cfg("port 7002")),
            Kind::Server,
            Path::new("/"),
        )
        .expect("endpoint");
        assert_eq!(e.conn.host, "127.0.0.1");
        let e = resolve_endpoint(&base(), Some(&cfg("")), Kind::Sentinel, Path::new("/"))
            .expect("endpoint");
        assert_eq!(e.conn.port, 26379);
    }

    #[test]
    fn tls_only_server_uses_tls_port_and_its_certificates() {
        let c = cfg("port 0\ntls-port 7443\ntls-cert-file /t/server.crt\ntls-key-file /t/server.key\ntls-ca-cert-file /t/ca.crt\n");
        let e =
            resolve_endpoint(&base(), Some(&c), Kind::Server, Path::new("/")).expect("endpoint");
        assert_eq!(e.conn.port, 7443);
        assert!(e.conn.tls);
        assert_eq!(e.conn.ca_certs.as_deref(), Some("/t/ca.crt"));
        assert_eq!(e.conn.client_cert_file.as_deref(), Some("/t/server.crt"));
        assert_eq!(e.conn.client_key_file.as_deref(), Some("/t/server.key"));

        // tls=true picks tls-port even when the plain port is open; optional client auth sends no cert.
        let c = cfg(
            "port 7000\ntls-port 7443\ntls-auth-clients optional\ntls-ca-cert-file /t/ca.crt\n",
        );
        let mut b = base();
        b.tls = true;
        let e = resolve_endpoint(&b, Some(&c), Kind::Server, Path::new("/")).expect("endpoint");
        assert_eq!(e.conn.port, 7443);
        assert_eq!(e.conn.client_cert_file, None);

        assert!(resolve_endpoint(
            &base(),
            Some(&cfg("port 0\nunixsocket /run/r.sock")),
            Kind::Server,
            Path::new("/")
        )
        .is_none());
    }

    #[test]
    fn probe_hosts() {
        assert_eq!(probe_bind_host("*"), Some("0.0.0.0".into()));
        assert_eq!(probe_bind_host("-::*"), None);
        assert_eq!(probe_bind_host("127.0.0.1"), Some("127.0.0.1".into()));
        assert_eq!(probe_bind_host("-::1"), Some("::1".into()));
    }
}
