//! Just enough of redis.conf / sentinel.conf to manage an instance: where it listens, its password,
//! where its pidfile and logfile are, and which values are secrets.
//!
//! Lines are split the way Redis splits them (`sdssplitargs`: double quotes with escapes, single
//! quotes), directive names are case-insensitive, the last occurrence of a directive wins, and
//! `include` files are read in place (a relative include is taken relative to the including
//! file's directory).

use redis_utils::connection::ConnectionParams;
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

    /// The executable, and the systemd template's prefix.
    #[must_use]
    pub fn program(self) -> &'static str {
        match self {
            Kind::Server => "redis-server",
            Kind::Sentinel => "redis-sentinel",
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

/// A parsed config file (includes expanded).
#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    /// The file as given (absolute when the module loaded it).
    pub path: PathBuf,
    /// (lower-case directive, arguments) in file order.
    pub directives: Vec<(String, Vec<String>)>,
}

impl RedisConfig {
    /// Reads `path` and the files it includes.
    ///
    /// # Errors
    /// A clear message when the file is missing or unreadable.
    pub fn load(path: &Path) -> Result<RedisConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("config file {} does not exist", path.display())
            } else {
                format!("cannot read config file {}: {e}", path.display())
            }
        })?;
        let mut cfg = RedisConfig {
            path: path.to_path_buf(),
            directives: Vec::new(),
        };
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        cfg.add_text(&text, &base, 0);
        Ok(cfg)
    }

    /// Parses config text; `include` lines are resolved against `base`.
    #[must_use]
    pub fn parse(text: &str, base: &Path) -> RedisConfig {
        let mut cfg = RedisConfig::default();
        cfg.add_text(text, base, 0);
        cfg
    }

    fn add_text(&mut self, text: &str, base: &Path, depth: usize) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(args) = redis_utils::redisconf::split_args(line) else {
                continue;
            };
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            let name = name.to_lowercase();
            if name == "include" && depth < 10 {
                for inc in rest {
                    let p = if Path::new(inc).is_absolute() {
                        PathBuf::from(inc)
                    } else {
                        base.join(inc)
                    };
                    if let Ok(t) = std::fs::read_to_string(&p) {
                        let b = p.parent().unwrap_or(Path::new("/")).to_path_buf();
                        self.add_text(&t, &b, depth + 1);
                    }
                }
                continue;
            }
            self.directives.push((name, rest.to_vec()));
        }
    }

    /// Arguments of the last occurrence of `name`.
    #[must_use]
    pub fn last(&self, name: &str) -> Option<&[String]> {
        self.directives
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_slice())
    }

    /// First argument of the last occurrence of `name`.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<&str> {
        self.last(name).and_then(|a| a.first()).map(String::as_str)
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

    /// Every secret in the file: passwords of the server, of its master, of Sentinel's masters
    /// and peers, of ACL users, and TLS key passphrases. Never put into a result.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        redis_utils::redisconf::secrets(
            self.directives
                .iter()
                .map(|(n, a)| (n.as_str(), a.as_slice())),
        )
    }
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
        RedisConfig::parse(text, Path::new("/etc/redis"))
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
        assert!(e.is_some_and(|e| e.contains("does not exist")));
    }

    #[test]
    fn secrets_cover_every_password_directive() {
        let c = cfg("requirepass p1\nmasterauth p2\nsentinel auth-pass mymaster p3\nsentinel sentinel-pass p4\nuser alice on >p5 ~* +@all\ntls-key-file-pass p6\nsentinel monitor mymaster 127.0.0.1 6379 2\n");
        assert_eq!(c.secrets(), vec!["p1", "p2", "p3", "p4", "p5", "p6"]);
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
