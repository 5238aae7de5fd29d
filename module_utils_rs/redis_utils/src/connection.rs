//! The connection options every module shares, and the one way modules talk to Redis.
//!
//! Option names follow community.general's redis modules (`login_host`, `login_port`, ...), so
//! playbooks move over unchanged. Unlike community.general, `tls` defaults to false, as Redis does,
//! for every module alike. Errors name the address and the cause (refused, timeout, wrong password,
//! TLS handshake), because "connection error" alone sends an operator hunting.

use crate::info::Info;
use ansible_module::{ArgType, ModuleError, Opt, Params, Spec};
use redis::{
    ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo,
};
use std::fmt;
use std::time::Duration;

/// The shared connection options, to be added to every module's spec.
#[must_use]
pub fn connection_options() -> Vec<Opt> {
    vec![
        Opt::str("login_host").default("localhost"),
        Opt::int("login_port").default(6379),
        Opt::str("login_user"),
        Opt::str("login_password").no_log(),
        Opt::int("login_db").default(0),
        Opt::bool("tls").default(false),
        Opt::bool("validate_certs").default(true),
        Opt::path("ca_certs"),
        Opt::path("client_cert_file"),
        Opt::path("client_key_file"),
        Opt::float("connect_timeout").default(5.0),
    ]
}

/// Adds the connection options (and their constraints) to a module's own options.
#[must_use]
pub fn with_connection_options(own: Vec<Opt>) -> Spec {
    let mut options = own;
    options.extend(connection_options());
    let mut spec = Spec::new(options);
    spec = spec.required_together(&["client_cert_file", "client_key_file"]);
    spec
}

/// The longest `connect_timeout` accepted: a day. Longer is a typo, and `Duration` overflows
/// at about 1.8e19 s.
pub const MAX_CONNECT_TIMEOUT_SECS: u64 = 86_400;

/// Resolved connection settings of one invocation.
#[derive(Clone, Debug)]
pub struct ConnectionParams {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub tls: bool,
    pub validate_certs: bool,
    pub ca_certs: Option<String>,
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    pub timeout: Duration,
}

/// Why talking to Redis failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionError {
    /// An option value that cannot work (bad port, unreadable certificate file).
    Config {
        detail: String,
    },
    Refused {
        addr: String,
    },
    Timeout {
        addr: String,
        secs: f64,
        tls: bool,
    },
    Resolve {
        addr: String,
        detail: String,
    },
    /// The server rejected the credentials (WRONGPASS).
    Auth {
        addr: String,
        detail: String,
    },
    /// The server wants a password and none was given (NOAUTH).
    NoAuth {
        addr: String,
    },
    Tls {
        addr: String,
        detail: String,
    },
    /// The server closed the connection (a TLS-only port spoken to in plain text does that).
    Closed {
        addr: String,
        detail: String,
        tls: bool,
    },
    /// The server answered a command with an error.
    Command {
        addr: String,
        command: String,
        detail: String,
    },
    Io {
        addr: String,
        detail: String,
    },
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Config { detail } => write!(f, "{detail}"),
            ConnectionError::Refused { addr } => write!(
                f,
                "cannot connect to Redis at {addr}: connection refused (is the server running and listening on that address and port?)"
            ),
            ConnectionError::Timeout { addr, secs, tls } => {
                write!(
                    f,
                    "cannot connect to Redis at {addr}: timed out after {secs}s (host unreachable, firewalled, or the server is busy; see connect_timeout)"
                )?;
                if *tls {
                    // A plain-text port never answers a TLS ClientHello: it waits for a newline.
                    write!(f, "; with tls=true this is also what a port that does not speak TLS looks like")?;
                }
                Ok(())
            }
            ConnectionError::Resolve { addr, detail } => {
                write!(f, "cannot resolve the Redis host {addr}: {detail}")
            }
            ConnectionError::Auth { addr, detail } => write!(
                f,
                "authentication to Redis at {addr} failed: {detail} (check login_user and login_password)"
            ),
            ConnectionError::NoAuth { addr } => write!(
                f,
                "Redis at {addr} requires authentication (NOAUTH): set login_password (and login_user for an ACL user)"
            ),
            ConnectionError::Tls { addr, detail } => write!(
                f,
                "TLS handshake with Redis at {addr} failed: {detail} (check tls, ca_certs, validate_certs and the server's tls-port)"
            ),
            ConnectionError::Closed { addr, detail, tls } => {
                write!(f, "Redis at {addr} closed the connection: {detail}")?;
                if !tls {
                    write!(f, " (if this port only speaks TLS, set tls=true)")?;
                }
                Ok(())
            }
            ConnectionError::Command {
                addr,
                command,
                detail,
            } => write!(f, "Redis at {addr} rejected `{command}`: {detail}"),
            ConnectionError::Io { addr, detail } => write!(f, "error talking to Redis at {addr}: {detail}"),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl ConnectionError {
    /// The error code of a Redis error reply (`ERR`, `LOADING`, `MOVED`, `BUSY`, ...): the
    /// first word of the reply, as Redis sends it. `None` for anything but an error reply.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        let ConnectionError::Command { detail, .. } = self else {
            return None;
        };
        let word = detail.split([' ', ':']).next().filter(|w| !w.is_empty())?;
        word.bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_')
            .then_some(word)
    }

    /// True when the server could not be reached at all (as opposed to reached and unhappy).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ConnectionError::Refused { .. }
                | ConnectionError::Timeout { .. }
                | ConnectionError::Resolve { .. }
                | ConnectionError::Io { .. }
                | ConnectionError::Closed { .. }
        )
    }
}

impl ConnectionParams {
    /// Reads the shared options from validated parameters.
    ///
    /// # Errors
    /// A port outside 1-65535 or a negative timeout.
    pub fn from_params(p: &Params) -> Result<Self, ConnectionError> {
        let port = p.int("login_port").unwrap_or(6379);
        let port =
            u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ConnectionError::Config {
                    detail: format!("login_port must be between 1 and 65535, got {port}"),
                })?;
        let timeout = p
            .duration("connect_timeout", MAX_CONNECT_TIMEOUT_SECS)
            .map_err(|e| ConnectionError::Config { detail: e.msg })?
            .unwrap_or(Duration::from_secs(5));
        if timeout.is_zero() {
            return Err(ConnectionError::Config {
                detail: format!(
                    "`connect_timeout` must be between 0 and {MAX_CONNECT_TIMEOUT_SECS} seconds and not 0"
                ),
            });
        }
        // `login_password: ""` means no password (as for redis-cli and community.general): a
        // server without one must not get AUTH "" (issue 8 item 13).
        let nonempty = |k: &str| p.str(k).filter(|s| !s.is_empty()).map(str::to_string);
        let db = p.int("login_db").unwrap_or(0);
        if !(0..=1_000_000).contains(&db) {
            return Err(ConnectionError::Config {
                detail: format!("login_db must be a database number of 0 or more, got {db}"),
            });
        }
        Ok(ConnectionParams {
            host: p.str("login_host").unwrap_or("localhost").to_string(),
            port,
            user: nonempty("login_user"),
            password: nonempty("login_password"),
            db,
            tls: p.flag("tls"),
            validate_certs: p.bool("validate_certs").unwrap_or(true),
            ca_certs: p.str("ca_certs").map(str::to_string),
            client_cert_file: p.str("client_cert_file").map(str::to_string),
            client_key_file: p.str("client_key_file").map(str::to_string),
            timeout,
        })
    }

    /// The same credentials and TLS settings for another node (a replica, a cluster peer).
    #[must_use]
    pub fn for_node(&self, host: &str, port: u16) -> Self {
        let mut c = self.clone();
        c.host = host.to_string();
        c.port = port;
        c
    }

    /// `host:port`, with IPv6 hosts in brackets.
    #[must_use]
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn read_file(path: &str, what: &str) -> Result<Vec<u8>, ConnectionError> {
        std::fs::read(path).map_err(|e| ConnectionError::Config {
            detail: format!("cannot read {what} `{path}`: {e}"),
        })
    }

    fn client(&self) -> Result<redis::Client, ConnectionError> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: !self.validate_certs,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let mut redis_info = RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(u) = &self.user {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &self.password {
            redis_info = redis_info.set_password(p);
        }
        let info: ConnectionInfo = addr
            .into_connection_info()
            .map_err(|e| ConnectionError::Config {
                detail: format!("invalid Redis address {}: {e}", self.address()),
            })?
            .set_redis_settings(redis_info);
        let needs_certs = self.tls && (self.ca_certs.is_some() || self.client_cert_file.is_some());
        let client = if needs_certs {
            let root_cert = match &self.ca_certs {
                Some(p) => Some(Self::read_file(p, "ca_certs")?),
                None => None,
            };
            let client_tls = match (&self.client_cert_file, &self.client_key_file) {
                (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                    client_cert: Self::read_file(c, "client_cert_file")?,
                    client_key: Self::read_file(k, "client_key_file")?,
                }),
                _ => None,
            };
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls,
                    root_cert,
                },
            )
        } else {
            redis::Client::open(info)
        };
        client.map_err(|e| ConnectionError::Config {
            detail: format!("invalid TLS settings for {}: {e}", self.address()),
        })
    }

    /// Opens a connection, authenticated and on `login_db`, with read/write timeouts set.
    ///
    /// # Errors
    /// See [`ConnectionError`]; the message names this address.
    pub fn connect(&self) -> Result<RedisConn, ConnectionError> {
        let client = self.client()?;
        let con = client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| self.classify_connect(&e))?;
        con.set_read_timeout(Some(self.timeout))
            .and_then(|()| con.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.classify_connect(&e))?;
        Ok(RedisConn {
            con,
            params: self.clone(),
        })
    }

    /// What went wrong while connecting (TCP, TLS, AUTH, SELECT).
    fn classify_connect(&self, e: &redis::RedisError) -> ConnectionError {
        if let Some(err) = self.classify_auth(e) {
            return err;
        }
        if e.code().is_some() {
            return self.classify_reply(e, "connect");
        }
        self.classify_transport(e)
    }

    /// A failure of the transport itself (no error reply from Redis): a refused port, a name that
    /// does not resolve, a timeout, a TLS handshake (rustls handshakes on the first read or
    /// write, so it can fail on the first command too), a closed connection. The crate reports
    /// these as I/O errors whose text is all there is to go on; an error *reply* never comes
    /// here, whatever its words.
    fn classify_transport(&self, e: &redis::RedisError) -> ConnectionError {
        let addr = self.address();
        if e.is_connection_refusal() {
            return ConnectionError::Refused { addr };
        }
        if e.is_timeout() {
            return self.timeout_error();
        }
        let text = e.to_string();
        let lower = text.to_lowercase();
        if ["timed out", "would block", "temporarily unavailable"]
            .iter()
            .any(|w| lower.contains(w))
        {
            return self.timeout_error();
        }
        if [
            "certificate",
            "tls",
            "handshake",
            "corrupt message",
            "unknownissuer",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            return ConnectionError::Tls { addr, detail: text };
        }
        if [
            "lookup",
            "name or service not known",
            "no address",
            "name resolution",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            return ConnectionError::Resolve { addr, detail: text };
        }
        if e.is_connection_dropped()
            || ["broken pipe", "connection reset", "end of file", "eof"]
                .iter()
                .any(|w| lower.contains(w))
        {
            return ConnectionError::Closed {
                addr,
                detail: text,
                tls: self.tls,
            };
        }
        ConnectionError::Io { addr, detail: text }
    }

    /// WRONGPASS / NOAUTH, by the error's kind and code.
    fn classify_auth(&self, e: &redis::RedisError) -> Option<ConnectionError> {
        let addr = self.address();
        let code = e.code().unwrap_or("");
        if e.kind() == redis::ErrorKind::AuthenticationFailed || code == "WRONGPASS" {
            // The crate reports WRONGPASS as "Password authentication failed"; say what Redis says.
            let detail = if self.password.is_none() {
                e.to_string()
            } else {
                "WRONGPASS invalid username-password pair or user is disabled".to_string()
            };
            return Some(ConnectionError::Auth { addr, detail });
        }
        (code == "NOAUTH").then_some(ConnectionError::NoAuth { addr })
    }

    /// What went wrong on an established connection: an error reply is a `Command` error
    /// (whatever words it contains: a refused `CONFIG SET tls-cert-file` is not a TLS handshake
    /// failure, issue 8 item 17), a transport failure is a timeout, a closed connection or I/O.
    fn classify_reply(&self, e: &redis::RedisError, command: &str) -> ConnectionError {
        let addr = self.address();
        if let Some(err) = self.classify_auth(e) {
            return err;
        }
        if let Some(code) = e.code() {
            // Redis' own words, code first ("LOADING Redis is loading the dataset in memory"),
            // not the crate's renaming of the code ("BusyLoadingError: ...").
            let detail = match e.detail() {
                Some(d) => format!("{code} {d}"),
                None => code.to_string(),
            };
            return ConnectionError::Command {
                addr,
                command: command.to_string(),
                detail,
            };
        }
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
            return self.classify_transport(e);
        }
        ConnectionError::Command {
            addr,
            command: command.to_string(),
            detail: e.to_string(),
        }
    }

    fn timeout_error(&self) -> ConnectionError {
        ConnectionError::Timeout {
            addr: self.address(),
            secs: self.timeout.as_secs_f64(),
            tls: self.tls,
        }
    }
}

/// An open connection that reports errors with its address.
pub struct RedisConn {
    con: redis::Connection,
    params: ConnectionParams,
}

impl RedisConn {
    /// `host:port` of this connection.
    #[must_use]
    pub fn address(&self) -> String {
        self.params.address()
    }

    #[must_use]
    pub fn params(&self) -> &ConnectionParams {
        &self.params
    }

    /// Runs one command. Arguments are strings; the reply is converted to `T`.
    ///
    /// # Errors
    /// The connection failed or the server answered with an error.
    pub fn cmd<T: FromRedisValue>(&mut self, args: &[&str]) -> Result<T, ConnectionError> {
        let mut c = redis::cmd(args.first().copied().unwrap_or("PING"));
        for a in args.iter().skip(1) {
            c.arg(*a);
        }
        c.query::<T>(&mut self.con).map_err(|e| {
            self.params.classify_reply(
                &e,
                &args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
            )
        })
    }

    /// Runs one command and returns the reply as JSON: bulk strings as strings, arrays as
    /// arrays, RESP3 maps as objects, integers as numbers.
    ///
    /// # Errors
    /// As for [`RedisConn::cmd`].
    pub fn cmd_json(&mut self, args: &[&str]) -> Result<serde_json::Value, ConnectionError> {
        let v: redis::Value = self.cmd(args)?;
        Ok(reply_to_json(v))
    }

    /// Sends `commands` in one pipeline (one round trip; Redis runs them in order, and what
    /// it does once per event-loop turn, such as saving the cluster config, happens once) and
    /// returns each reply as JSON, or its error.
    ///
    /// # Errors
    /// The connection failed; a command's own error reply is in its slot of the result.
    pub fn pipeline(
        &mut self,
        commands: &[Vec<String>],
    ) -> Result<Vec<Result<serde_json::Value, ConnectionError>>, ConnectionError> {
        let mut p = redis::pipe();
        // Each command's error reply comes back in its own slot instead of failing the lot.
        p.ignore_errors();
        for c in commands {
            let mut cmd = redis::cmd(c.first().map_or("PING", String::as_str));
            for a in c.iter().skip(1) {
                cmd.arg(a.as_str());
            }
            p.add_command(cmd);
        }
        let replies: Vec<redis::RedisResult<redis::Value>> = p
            .query(&mut self.con)
            .map_err(|e| self.params.classify_reply(&e, "pipeline"))?;
        Ok(replies
            .into_iter()
            .zip(commands)
            .map(|(r, c)| {
                r.map(reply_to_json).map_err(|e| {
                    let what = c.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
                    self.params.classify_reply(&e, &what)
                })
            })
            .collect())
    }

    /// `INFO [section]`, parsed.
    ///
    /// # Errors
    /// As for [`RedisConn::cmd`].
    pub fn info(&mut self, section: Option<&str>) -> Result<Info, ConnectionError> {
        let text: String = match section {
            Some(s) => self.cmd(&["INFO", s])?,
            None => self.cmd(&["INFO", "everything"])?,
        };
        Ok(Info::parse(&text))
    }
}

/// A reply as JSON. Error replies inside arrays become `{"error": "..."}`.
#[must_use]
pub fn reply_to_json(v: redis::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        redis::Value::Nil => J::Null,
        redis::Value::Int(i) => J::from(i),
        redis::Value::BulkString(b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => J::String(s),
        redis::Value::Okay => J::String("OK".into()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            J::Array(items.into_iter().map(reply_to_json).collect())
        }
        redis::Value::Map(pairs) => J::Object(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = match reply_to_json(k) {
                        J::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, reply_to_json(v))
                })
                .collect(),
        ),
        redis::Value::Double(d) => serde_json::Number::from_f64(d).map_or(J::Null, J::Number),
        redis::Value::Boolean(b) => J::Bool(b),
        redis::Value::VerbatimString { text, .. } => J::String(text),
        redis::Value::Attribute { data, .. } => reply_to_json(*data),
        redis::Value::ServerError(e) => serde_json::json!({ "error": format!("{e:?}") }),
        other => J::String(format!("{other:?}")),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply (SENTINEL MASTER, CLUSTER SHARDS...) as an object, with
/// numeric strings turned into numbers. A RESP3 map passes through.
#[must_use]
pub fn pairs_to_object(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m.clone(),
        serde_json::Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [serde_json::Value::String(k), val] => Some((
                    k.clone(),
                    match val {
                        serde_json::Value::String(s) => crate::info::parse_value(s),
                        other => other.clone(),
                    },
                )),
                _ => None,
            })
            .collect(),
        _ => serde_json::Map::new(),
    }
}

/// Spec helper: a list-of-strings option (used by modules for host lists).
#[must_use]
pub fn node_list_option(name: &'static str) -> Opt {
    Opt::list(name, ArgType::Str)
}

impl From<ConnectionError> for ModuleError {
    fn from(e: ConnectionError) -> Self {
        ModuleError::new(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ansible_module::spec::validate;
    use serde_json::json;

    fn params(v: serde_json::Value) -> Params {
        let spec = with_connection_options(vec![]);
        let m = v.as_object().cloned().unwrap_or_default();
        Params(validate(&spec, &m).map(|v| v.params).unwrap_or_default())
    }

    #[test]
    fn defaults_follow_community_general() {
        let c = ConnectionParams::from_params(&params(json!({})));
        let c = c.ok();
        assert!(c.as_ref().is_some_and(|c| c.host == "localhost"
            && c.port == 6379
            && !c.tls
            && c.validate_certs
            && c.db == 0));
    }

    #[test]
    fn bad_port_is_a_clear_error() {
        let e = ConnectionParams::from_params(&params(json!({"login_port": 70000}))).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("login_port must be between 1 and 65535, got 70000".to_string())
        );
    }

    #[test]
    fn client_cert_and_key_go_together() {
        let spec = with_connection_options(vec![]);
        let m = json!({"client_cert_file": "/a"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(validate(&spec, &m).is_err_and(
            |e| e.msg == "parameters are required together: client_cert_file, client_key_file"
        ));
    }

    #[test]
    fn ipv6_address_is_bracketed() {
        let mut c = ConnectionParams::from_params(&params(json!({}))).ok();
        if let Some(c) = c.as_mut() {
            c.host = "::1".into();
        }
        assert_eq!(c.map(|c| c.address()), Some("[::1]:6379".to_string()));
    }
}
