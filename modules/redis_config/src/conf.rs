//! Reading a rendered redis.conf / sentinel.conf back the way Redis reads it, and refusing one
//! that Redis would refuse, or that would be unsafe, before anything is written.

use crate::acl;
use crate::commands;
use crate::directives::{self, Kind, Version};
use ansible_module::nolog::MASK;
use std::collections::{BTreeMap, BTreeSet};

/// Which program reads the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Redis,
    Sentinel,
}

pub use redis_utils::redisconf::{last, parse, split_args, Line};

/// The name `redis_utils::redisconf` knows a secret directive by: Valkey 8 spells the master's
/// password `primaryauth` (the same parameter as `masterauth`), and it is as secret.
fn secret_alias(name: &str) -> &str {
    if name.eq_ignore_ascii_case("primaryauth") {
        "masterauth"
    } else {
        name
    }
}

/// Every secret among `(directive, arguments)` pairs, by `redis_utils::redisconf::secrets` (the
/// collection's one rule), Valkey's `primaryauth` included.
pub fn secrets<'a>(directives: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Vec<String> {
    redis_utils::redisconf::secrets(directives.into_iter().map(|(n, a)| (secret_alias(n), a)))
}

/// Every secret of parsed lines (see [`secrets`]).
#[must_use]
pub fn secrets_in(lines: &[Line]) -> Vec<String> {
    secrets(lines.iter().map(|l| (l.name.as_str(), l.args.as_slice())))
}

/// Which server's directives a redis.conf is checked against (`server_version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Against {
    /// The table; `None` (`server_version: auto` with `apply: live`): any supported server's
    /// for now, the running server's once connected ([`check_names_on_server`]).
    pub version: Option<Version>,
    /// How messages name the server: `Redis 7.0.15 (the installed /usr/bin/redis-server)`.
    pub label: String,
}

impl Against {
    /// Redis 7.0's table, the default when nothing says which server reads the file.
    #[must_use]
    pub fn redis70() -> Against {
        Against {
            version: Some(Version::Redis70),
            label: Version::Redis70.label().to_string(),
        }
    }
}

fn suggest(name: &str, dialect: Dialect) -> String {
    suggest_on(name, dialect, Version::Redis70)
}

fn suggest_on(name: &str, dialect: Dialect, version: Version) -> String {
    let hint = match dialect {
        Dialect::Redis => directives::did_you_mean(name, version.names()),
        Dialect::Sentinel => directives::did_you_mean(
            name,
            directives::SENTINEL_GENERAL
                .iter()
                .copied()
                .chain(std::iter::once("sentinel")),
        ),
    };
    hint.map(|h| format!(" (did you mean `{h}`?)"))
        .unwrap_or_default()
}

/// Checks every line against Redis 7.0's directives (see [`validate_lines_against`]).
///
/// # Errors
/// The first bad line, naming the directive, the value and the line.
pub fn validate_lines(lines: &[Line], dialect: Dialect) -> Result<(), String> {
    validate_lines_against(lines, dialect, &Against::redis70())
}

/// Why `name` is not a directive of the server `label` (of table `version`), naming the
/// supported servers that have it, or the closest name it has.
fn not_on(name: &str, version: Version, label: &str, at: &str) -> String {
    if version.ignored().contains(&name) {
        return format!(
            "`{name}` has no effect on {label}: it is deprecated there and ignored; remove it{at}"
        );
    }
    let others: Vec<&str> = version
        .others_with(name)
        .iter()
        .map(|v| v.label())
        .collect();
    if others.is_empty() {
        format!(
            "unknown directive `{name}`{}: not a directive of {label}{at}",
            suggest_on(name, Dialect::Redis, version)
        )
    } else {
        format!(
            "`{name}` is not a directive of {label}; {} {} it{at}",
            others.join(" and "),
            if others.len() == 1 { "has" } else { "have" }
        )
    }
}

/// After connecting (`server_version: auto`, `apply: live`): every directive of `lines` that
/// the running server's table (`version`) lacks is asked for by name (`ask`: CONFIG GET of it
/// answers something), so a server newer than the tables still gets what it reads.
///
/// # Errors
/// A directive the running server does not have, naming the server (`label`); or `ask` failing.
pub fn check_names_on_server(
    lines: &[Line],
    version: Version,
    label: &str,
    mut ask: impl FnMut(&str) -> Result<bool, String>,
) -> Result<(), String> {
    for l in lines {
        let at = format!(" (line {} of the rendered config)", l.number);
        if version.ignored().contains(&l.name.as_str()) {
            return Err(not_on(&l.name, version, label, &at));
        }
        if version.knows(&l.name) {
            continue;
        }
        let has = ask(&l.name).map_err(|e| {
            format!(
                "`{}` is not in the {} table, and asking the server failed: {e}{at}",
                l.name,
                version.label()
            )
        })?;
        if !has {
            return Err(not_on(&l.name, version, label, &at));
        }
    }
    Ok(())
}

/// Checks every line: known directive (to the server of `against`), value of the right kind,
/// right number of arguments.
///
/// # Errors
/// The first bad line, naming the directive, the value and the line.
pub fn validate_lines_against(
    lines: &[Line],
    dialect: Dialect,
    against: &Against,
) -> Result<(), String> {
    for l in lines {
        let at = format!(" (line {} of the rendered config)", l.number);
        if dialect == Dialect::Sentinel && l.name == "sentinel" {
            let sub = l.args.first().map(|s| s.to_lowercase()).unwrap_or_default();
            let Some((_, min, max)) = directives::SENTINEL_SUB.iter().find(|(n, _, _)| *n == sub)
            else {
                let hint = directives::did_you_mean(
                    &sub,
                    directives::SENTINEL_SUB.iter().map(|(n, _, _)| *n),
                )
                .map(|h| format!(" (did you mean `sentinel {h}`?)"))
                .unwrap_or_default();
                return Err(format!("unknown directive `sentinel {sub}`{hint}{at}"));
            };
            let n = l.args.len() - 1;
            if n < *min || n > *max {
                return Err(format!(
                    "`sentinel {sub}` takes {min} argument(s), got {n}: `{}`{at}",
                    shown_value(l)
                ));
            }
            if sub == "monitor" {
                let port_ok = l.args[3].parse::<u16>().is_ok_and(|p| p > 0);
                let quorum_ok = l.args[4].parse::<u32>().is_ok_and(|q| q > 0);
                if !port_ok || !quorum_ok {
                    return Err(format!("`sentinel monitor` needs <name> <host> <port> <quorum> with a port 1-65535 and a quorum >= 1, got `{}`{at}", shown_value(l)));
                }
            }
            continue;
        }
        if dialect == Dialect::Sentinel && !directives::SENTINEL_GENERAL.contains(&l.name.as_str())
        {
            return Err(format!(
                "unknown sentinel.conf directive `{}`{}{at}",
                l.name,
                suggest(&l.name, dialect)
            ));
        }
        let kind = match (dialect, against.version) {
            // sentinel.conf: its general directives are checked above; their kinds are Redis'.
            (Dialect::Sentinel, _) => directives::kind(&l.name),
            (Dialect::Redis, Some(v)) => {
                if v.ignored().contains(&l.name.as_str()) || !v.knows(&l.name) {
                    return Err(not_on(&l.name, v, &against.label, &at));
                }
                directives::kind_on(v, &l.name)
            }
            // Checked by name on the running server later; a value is checked when some
            // server's table knows the name's kind.
            (Dialect::Redis, None) => Some(directives::kind(&l.name).unwrap_or(Kind::Words)),
        };
        let Some(kind) = kind else {
            return Err(format!(
                "unknown directive `{}`{}{at}",
                l.name,
                suggest(&l.name, dialect)
            ));
        };
        if l.args.is_empty() && kind != Kind::Save {
            return Err(format!("`{}` needs a value{at}", l.name));
        }
        if kind == Kind::FileOnly {
            let ok = match l.name.as_str() {
                "rename-command" => l.args.len() == 2,
                _ => !l.args.is_empty(),
            };
            if !ok {
                return Err(format!(
                    "`{}` has the wrong number of arguments: `{}`{at}",
                    l.name,
                    shown_value(l)
                ));
            }
            continue;
        }
        let value = if matches!(
            kind,
            Kind::Text
                | Kind::Bool
                | Kind::Int { .. }
                | Kind::Size
                | Kind::SizeOrPercent
                | Kind::Enum(_)
                | Kind::Octal
                | Kind::KeyspaceEvents
        ) {
            if l.args.len() > 1 {
                return Err(format!(
                    "`{}` takes one value, got `{}` (quote it if it holds spaces){at}",
                    l.name,
                    shown_value(l)
                ));
            }
            l.args.first().cloned().unwrap_or_default()
        } else {
            l.args.join(" ")
        };
        directives::check_value(kind, &value)
            .map_err(|e| format!("invalid value for `{}`: {e}{at}", l.name))?;
    }
    Ok(())
}

/// Directives Redis reads many times, each line adding to the others.
const REPEATABLE: &[&str] = &[
    "save",
    "user",
    "rename-command",
    "include",
    "loadmodule",
    "client-output-buffer-limit",
    "sentinel",
];

/// The name Redis 7 files a directive under: old aliases (`slaveof`, `slave-read-only`,
/// `hash-max-ziplist-entries`) are the same parameter as the new names.
#[must_use]
pub fn canonical(name: &str) -> String {
    // Valkey 8: `primaryauth`/`primaryuser` are `masterauth`/`masteruser` by another name.
    let name = match name {
        "primaryauth" => "masterauth",
        "primaryuser" => "masteruser",
        n => n,
    };
    name.replace("slaveof", "replicaof")
        .replace("slave", "replica")
        .replace("ziplist", "listpack")
}

fn at(l: &Line) -> String {
    format!(" (line {} of the rendered config)", l.number)
}

/// Checks of the file as a whole, for what redis-server (or redis-sentinel) refuses at start:
/// one directive set twice to different values, `user` lines with bad ACL rules or defined
/// twice, `user` lines beside an `aclfile`, `rename-command` of a command that does not exist
/// or onto one that does, a Sentinel master monitored twice.
///
/// # Errors
/// The first problem, naming the directive and the line.
pub fn validate_file(lines: &[Line], dialect: Dialect) -> Result<(), String> {
    validate_file_on(lines, dialect, Some(Version::Redis70))
}

/// [`validate_file`] for the server of `version` (`None`: any supported server's commands, until
/// the running server is known).
///
/// # Errors
/// The first problem, naming the directive and the line.
pub fn validate_file_on(
    lines: &[Line],
    dialect: Dialect,
    version: Option<Version>,
) -> Result<(), String> {
    let mut seen: BTreeMap<String, &Line> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| !REPEATABLE.contains(&l.name.as_str()))
    {
        if let Some(first) = seen.insert(canonical(&l.name), l) {
            if first.args != l.args {
                return Err(format!(
                    "`{}` is set twice to different values (lines {} and {} of the rendered config; directive names are case-insensitive): Redis would silently use the last one, so set it once",
                    l.name, first.number, l.number
                ));
            }
        }
    }
    check_users(lines, dialect, version)?;
    check_renames(lines, dialect, version)?;
    if dialect == Dialect::Sentinel {
        let mut masters: BTreeMap<&str, usize> = BTreeMap::new();
        for l in lines.iter().filter(|l| {
            l.name == "sentinel"
                && l.args
                    .first()
                    .is_some_and(|a| a.eq_ignore_ascii_case("monitor"))
        }) {
            if let Some(name) = l.args.get(1) {
                if let Some(first) = masters.insert(name, l.number) {
                    return Err(format!("master `{name}` is monitored twice (lines {first} and {} of the rendered config): redis-sentinel refuses a duplicate master name", l.number));
                }
            }
        }
    }
    Ok(())
}

/// `acl-pubsub-default allchannels` makes new users start with every channel.
#[must_use]
pub fn all_channels_default(lines: &[Line]) -> bool {
    value_of(lines, "acl-pubsub-default").is_some_and(|v| v.eq_ignore_ascii_case("allchannels"))
}

#[must_use]
pub fn vocabulary(lines: &[Line], dialect: Dialect) -> acl::Vocabulary {
    vocabulary_on(lines, dialect, Some(Version::Redis70))
}

/// The ACL vocabulary for the server of `version`. The rules' command checks know Redis 7.0's
/// table only: on Redis 8.0 or Valkey 8.1 (or before the running server is known) a command
/// that table lacks (`+hgetex`, `+commandlog`) is taken as it is, like a module's, rather than
/// refusing a rule the server accepts.
#[must_use]
pub fn vocabulary_on(
    lines: &[Line],
    dialect: Dialect,
    version: Option<Version>,
) -> acl::Vocabulary {
    let newer = dialect == Dialect::Redis && version != Some(Version::Redis70);
    acl::Vocabulary {
        dialect,
        unknown_commands_ok: newer || lines.iter().any(|l| l.name == "loadmodule"),
    }
}

fn check_users(lines: &[Line], dialect: Dialect, version: Option<Version>) -> Result<(), String> {
    let vocab = vocabulary_on(lines, dialect, version);
    let all_channels = all_channels_default(lines);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.name == "user") {
        let (name, _) = acl::user_from_line(&l.args, &vocab, all_channels).map_err(|e| {
            let who = l.args.first().map(String::as_str).unwrap_or("");
            format!(
                "`user {who}`: {e}{}; redis-server would refuse to start",
                at(l)
            )
        })?;
        if let Some(first) = seen.insert(name.clone(), l.number) {
            return Err(format!(
                "user `{name}` is defined twice (lines {first} and {} of the rendered config): Redis refuses a user defined more than once",
                l.number
            ));
        }
    }
    if let (Some(first), Some(file)) = (seen.values().min(), value_of(lines, "aclfile")) {
        if !file.is_empty() {
            return Err(format!("`user` lines (line {first}) and `aclfile {file}` together: Redis refuses to start with users in both places; keep one"));
        }
    }
    Ok(())
}

/// `rename-command` as config.c applies it, in order: the source must be a command at that
/// point (not one renamed away by an earlier line), the target must not exist yet.
fn check_renames(lines: &[Line], dialect: Dialect, version: Option<Version>) -> Result<(), String> {
    let modules = lines.iter().any(|l| l.name == "loadmodule");
    let known = commands::top_level_on(dialect, version);
    let mut table: BTreeSet<String> = known.iter().map(|s| (*s).to_string()).collect();
    for l in lines.iter().filter(|l| l.name == "rename-command") {
        let (Some(from), Some(to)) = (l.args.first(), l.args.get(1)) else {
            continue;
        };
        let (from, to) = (from.to_lowercase(), to.to_lowercase());
        if from.contains('|') {
            return Err(format!("`rename-command {from}`: only whole commands can be renamed, not subcommands (redis-server crashes on this){}", at(l)));
        }
        // A command no table knows comes from a module: taken as it is.
        let module_command = modules && !known.contains(from.as_str());
        if !table.remove(&from) && !module_command {
            let why = if known.contains(from.as_str()) {
                "it was already renamed by an earlier rename-command line".to_string()
            } else {
                match (dialect, version) {
                    (Dialect::Sentinel, _) => "Redis Sentinel 7.0 has no such command".into(),
                    (Dialect::Redis, Some(v)) => format!("{} has no such command", v.label()),
                    (Dialect::Redis, None) => "no supported server has such a command".into(),
                }
            };
            return Err(format!(
                "`rename-command {from}`: {why}{}; redis-server would refuse to start",
                at(l)
            ));
        }
        if !to.is_empty() && !table.insert(to.clone()) {
            return Err(format!(
                "`rename-command {from} {to}`: a command named `{to}` already exists{}; redis-server would refuse to start",
                at(l)
            ));
        }
    }
    Ok(())
}

/// The command table after the file's `rename-command` lines: current name -> the command's
/// own name, for every command of `dialect` (module commands, which no table knows, left out).
#[must_use]
pub fn commands_after_renames(lines: &[Line], dialect: Dialect) -> BTreeMap<String, String> {
    let mut table: BTreeMap<String, String> = commands::top_level(dialect)
        .map(|n| (n.to_string(), n.to_string()))
        .collect();
    for l in lines.iter().filter(|l| l.name == "rename-command") {
        let (Some(from), Some(to)) = (l.args.first(), l.args.get(1)) else {
            continue;
        };
        if let Some(orig) = table.remove(&from.to_lowercase()) {
            if !to.is_empty() {
                table.insert(to.to_lowercase(), orig);
            }
        }
    }
    table
}

/// Refuses CR, LF and NUL inside any value, however they got there (a quoted `"\n"` or
/// `"\x00"` escape in a custom template, for one): each would cut a value in two at the
/// next read, or go on to Redis in a CONFIG SET. Runs whether or not `validate` is on.
///
/// # Errors
/// The directive and line holding one.
pub fn refuse_control_chars(lines: &[Line]) -> Result<(), String> {
    for l in lines {
        if let Some(c) = l
            .args
            .iter()
            .chain(std::iter::once(&l.name))
            .find_map(|a| a.chars().find(|c| matches!(c, '\r' | '\n' | '\0')))
        {
            return Err(format!(
                "`{}` has a value holding {}{}: nothing written to the config file may hold CR, LF or NUL",
                l.name,
                control_name(c),
                at(l)
            ));
        }
    }
    Ok(())
}

/// How a refused control character is named in messages.
#[must_use]
pub fn control_name(c: char) -> &'static str {
    match c {
        '\n' => "a line feed (LF)",
        '\r' => "a carriage return (CR)",
        _ => "a NUL character",
    }
}

fn value_of(lines: &[Line], name: &str) -> Option<String> {
    last(lines, name).map(|l| l.args.join(" "))
}

fn is_yes(lines: &[Line], name: &str) -> bool {
    value_of(lines, name).is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

/// Directives that contradict each other. Those Redis refuses or misbehaves with are errors;
/// those it accepts and merely ignores are returned as warnings (Debian's own redis.conf sets
/// `appendfsync` and `appendfilename` with `appendonly no`, ready for the day AOF is turned on).
///
/// # Errors
/// The contradiction, naming both directives.
pub fn check_contradictions(lines: &[Line], dialect: Dialect) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    if dialect == Dialect::Sentinel {
        return Ok(warnings);
    }
    if is_yes(lines, "cluster-enabled") {
        for r in ["replicaof", "slaveof"] {
            if let Some(v) = value_of(lines, r) {
                return Err(format!("`cluster-enabled yes` contradicts `{r} {v}`: cluster replicas are assigned with CLUSTER REPLICATE (redis_cluster), not {r}"));
            }
        }
    }
    if !is_yes(lines, "appendonly") {
        let idle: Vec<&str> = ["appendfilename", "appenddirname", "appendfsync"]
            .into_iter()
            .filter(|d| value_of(lines, d).is_some())
            .collect();
        if !idle.is_empty() {
            warnings.push(format!(
                "{} set while appendonly is not yes: Redis accepts it, and it takes effect only once appendonly is yes",
                idle.join(", ")
            ));
        }
    }
    let tls_port = value_of(lines, "tls-port")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if tls_port > 0 {
        for d in ["tls-cert-file", "tls-key-file"] {
            if value_of(lines, d).is_none_or(|v| v.is_empty()) {
                return Err(format!("`tls-port {tls_port}` needs `{d}`"));
            }
        }
    }
    let port = value_of(lines, "port")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(6379);
    if port == 0 && tls_port == 0 && value_of(lines, "unixsocket").is_none() {
        return Err(
            "`port 0` with no tls-port and no unixsocket: the server would accept no connections"
                .into(),
        );
    }
    Ok(warnings)
}

fn is_loopback(addr: &str) -> bool {
    let a = addr.trim_start_matches('-');
    a == "localhost" || a == "::1" || a.starts_with("127.")
}

/// Whether the `default` user, which every new connection is, can be used without a
/// password once this file is loaded. A `user default` line decides alone (it overrides
/// `requirepass`, whichever comes first); with an `aclfile`, the file's own `user default`
/// does, and without one Redis recreates `default` as `on nopass`; otherwise `requirepass`.
/// ACL users other than `default` protect nothing while `default` stays open.
///
/// # Errors
/// An aclfile that cannot be read, so that nobody can tell.
pub fn default_user_is_open(lines: &[Line], dialect: Dialect) -> Result<bool, String> {
    let vocab = acl::Vocabulary {
        dialect,
        unknown_commands_ok: true,
    };
    let all_channels = all_channels_default(lines);
    let open_by = |user_lines: &[Line]| -> Option<bool> {
        let l = user_lines
            .iter()
            .rev()
            .find(|l| l.name == "user" && l.args.first().is_some_and(|n| n == "default"))?;
        // A line Redis would refuse cannot protect anything.
        Some(acl::user_from_line(&l.args, &vocab, all_channels).map_or(true, |(_, u)| u.is_open()))
    };
    if let Some(open) = open_by(lines) {
        return Ok(open);
    }
    if let Some(file) = value_of(lines, "aclfile").filter(|f| !f.is_empty()) {
        let text = ansible_module::files::read_regular_file(std::path::Path::new(&file), "aclfile")
            .map_err(|e| {
                format!("{e}: it is read to check that its `default` user needs a password")
            })?;
        let acl_lines: Vec<Line> = text
            .lines()
            .filter_map(|t| parse(t).ok())
            .flatten()
            .collect();
        return Ok(open_by(&acl_lines).unwrap_or(true));
    }
    Ok(value_of(lines, "requirepass").is_none_or(|v| v.is_empty()))
}

/// Refuses to expose a server beyond loopback while its `default` user needs no password.
///
/// # Errors
/// Which address would be exposed, and how to fix it.
pub fn check_security(lines: &[Line], dialect: Dialect) -> Result<(), String> {
    let binds: Vec<String> = match last(lines, "bind") {
        Some(l) => l.args.clone(),
        // Redis without `bind` listens on every interface.
        None => vec!["*".into()],
    };
    let exposed: Vec<&String> = binds.iter().filter(|a| !is_loopback(a)).collect();
    if exposed.is_empty() || !default_user_is_open(lines, dialect)? {
        return Ok(());
    }
    let what = if dialect == Dialect::Sentinel {
        "redis-sentinel"
    } else {
        "redis"
    };
    Err(format!(
        "refusing to bind {what} to {} (beyond loopback) while the `default` user needs no password: anyone who can reach the port could read and change everything. Set requirepass, or a `user default` line with a password (or `off`), or allow_insecure: true if the network is protected otherwise",
        exposed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    ))
}

/// Whether `value` of directive `name` is a secret, by the collection's one rule
/// (`redis_utils::redisconf::secrets`).
#[must_use]
pub fn is_secret(name: &str, value: &str) -> bool {
    !secrets([(name, std::slice::from_ref(&value.to_string()))]).is_empty()
}

/// A line's words: as Redis splits them, or, for a line Redis could not read (unbalanced
/// quotes, as Sentinel 7.0 writes an `auth-pass` holding a quote), split at whitespace.
fn words_of(body: &str) -> (Vec<String>, bool) {
    match split_args(body.trim()) {
        Some(w) => (w, true),
        None => (body.split_whitespace().map(str::to_string).collect(), false),
    }
}

/// The secrets of one line of a config file.
fn line_secrets(body: &str) -> Vec<String> {
    let (words, readable) = words_of(body);
    let Some((name, args)) = words.split_first() else {
        return Vec::new();
    };
    let name = name.to_lowercase();
    let found = secrets([(name.as_str(), args)]);
    if readable || name == "user" {
        return found;
    }
    // Unreadable: the secret is everything from its first word to the end of the line.
    let from = found
        .first()
        .and_then(|f| body.find(&format!(" {f}")))
        .map(|i| i + 1);
    match from {
        Some(i) => vec![body[i..].trim_end().to_string()],
        None => found,
    }
}

/// The secrets of every line of `text`, even of lines Redis could not read (an old file with
/// one broken line still has its passwords masked).
#[must_use]
pub fn secrets_of_text(text: &str) -> Vec<String> {
    text.lines().flat_map(line_secrets).collect()
}

/// How a value looks inside double quotes in a config file (the templates' own escaping), so
/// that a secret quoted that way is masked too.
#[must_use]
pub fn quoted_form(secret: &str) -> String {
    secret.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `words` (a directive and its arguments) with its secrets masked. Whole arguments are
/// replaced, never substrings (a short password must not eat into other words): for `user`
/// lines each `>password` / `<password` rule, for other directives everything from the first
/// secret on (a password with a space, written unquoted, spans several arguments).
fn masked_words(words: &[String]) -> Option<String> {
    let (name, args) = words.split_first()?;
    let name_l = name.to_lowercase();
    let found = secrets([(name_l.as_str(), args)]);
    if found.is_empty() {
        return None;
    }
    let quote = |a: &str| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            a.to_string()
        }
    };
    let mut out = vec![name.clone()];
    if name_l == "user" {
        out.extend(args.iter().map(|a| match a.chars().next() {
            Some(c @ ('>' | '<')) => format!("{c}{MASK}"),
            _ => quote(a),
        }));
    } else {
        let first = args.iter().position(|a| found.contains(a)).unwrap_or(0);
        out.extend(args[..first].iter().map(|a| quote(a)));
        out.push(MASK.to_string());
    }
    Some(out.join(" "))
}

/// The text after a line's directive name, secrets masked, for messages.
#[must_use]
pub fn shown_value(l: &Line) -> String {
    let mut words = vec![l.name.clone()];
    words.extend(l.args.iter().cloned());
    match masked_words(&words) {
        Some(m) => m[l.name.len()..].trim_start().to_string(),
        None => l.raw_value.clone(),
    }
}

/// Masks the secrets of each line (by `redis_utils::redisconf::secrets`, the one rule) in a
/// config text, for diffs and messages: an old password, which no option names, must not leak.
/// A line holding a secret is shown re-spaced; every other line as it is.
#[must_use]
pub fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for l in text.split_inclusive('\n') {
        let body = l.trim_end_matches(['\n', '\r']);
        let masked = masked_words(&words_of(body).0);
        match masked {
            Some(m) => {
                let indent = &body[..body.len() - body.trim_start().len()];
                out.push_str(indent);
                out.push_str(&m);
                out.push_str(&l[body.len()..]);
            }
            None => out.push_str(l),
        }
    }
    out
}

/// True when both texts hold the same directives with the same arguments, in the same order
/// (quoting, spacing and comments aside).
#[must_use]
pub fn same_directives(a: &str, b: &str) -> bool {
    let key =
        |t: &str| parse(t).map(|ls| ls.into_iter().map(|l| (l.name, l.args)).collect::<Vec<_>>());
    matches!((key(a), key(b)), (Ok(x), Ok(y)) if x == y)
}

/// Marker Redis and Sentinel write before the lines they add on CONFIG REWRITE.
pub const REWRITE_MARKER: &str = "# Generated by CONFIG REWRITE";

/// Splits a sentinel.conf into the part we manage and the block Sentinel generated.
#[must_use]
pub fn split_generated(text: &str) -> (&str, &str) {
    // The marker counts only as a line of its own, never inside a comment that mentions it.
    let at = if text.starts_with(REWRITE_MARKER) {
        Some(0)
    } else {
        text.find(&format!("\n{REWRITE_MARKER}")).map(|i| i + 1)
    };
    match at {
        Some(i) => (text[..i].trim_end_matches('\n'), &text[i..]),
        None => (text.trim_end_matches('\n'), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(t: &str) -> Vec<Line> {
        parse(t).unwrap_or_default()
    }

    // See: issue 16 item 2
    #[test]
    fn issue16_item2_each_version_knows_its_own_directives() {
        let on = |v: Version, t: &str| {
            validate_lines_against(
                &lines(t),
                Dialect::Redis,
                &Against {
                    version: Some(v),
                    label: v.label().to_string(),
                },
            )
        };
        let valkey_only = "dual-channel-replication-enabled yes\n";
        assert!(on(Version::Valkey81, valkey_only).is_ok());
        assert_eq!(
            on(Version::Redis70, valkey_only),
            Err("`dual-channel-replication-enabled` is not a directive of Redis 7.0; Valkey 8.1 has it (line 1 of the rendered config)".into())
        );
        assert!(on(Version::Redis80, valkey_only)
            .is_err_and(|e| e.contains("not a directive of Redis 8.0; Valkey 8.1 has it")));
        // Redis 8.0 only.
        let redis8 = "replica-full-sync-buffer-limit 1mb\n";
        assert!(on(Version::Redis80, redis8).is_ok());
        assert!(on(Version::Valkey81, redis8)
            .is_err_and(|e| e.contains("not a directive of Valkey 8.1; Redis 8.0 has it")));
        // Both newer ones, not 7.0.
        assert!(on(Version::Redis70, "set-max-listpack-entries 128\n")
            .is_err_and(|e| e.contains("Redis 8.0 and Valkey 8.1 have it")));
        // Kinds of new names are checked.
        assert!(on(
            Version::Valkey81,
            "dual-channel-replication-enabled maybe\n"
        )
        .is_err_and(|e| e.contains("is not yes or no")));
        // Valkey's name for masterauth, and the ignored leftovers.
        assert!(on(Version::Valkey81, "primaryauth s3cret\n").is_ok());
        assert!(on(Version::Valkey81, "dynamic-hz yes\n")
            .is_err_and(|e| e.contains("has no effect on Valkey 8.1")));
        assert!(on(Version::Redis80, "io-threads-do-reads yes\n")
            .is_err_and(|e| e.contains("has no effect on Redis 8.0")));
        assert!(on(Version::Redis70, "io-threads-do-reads yes\n").is_ok());
        // primaryauth is a secret like masterauth, and the same directive.
        assert_eq!(
            secrets_of_text("primaryauth s3cret\n"),
            vec!["s3cret".to_string()]
        );
        assert_eq!(
            mask_secrets("primaryauth s3cret\n"),
            "primaryauth ********\n"
        );
        assert_eq!(canonical("primaryauth"), canonical("masterauth"));
    }

    // See: issue 16 item 2
    #[test]
    fn issue16_item2_live_check_asks_the_server_for_what_its_table_lacks() {
        let ls = lines("port 1\nsome-future-param 3\n");
        let mut asked = Vec::new();
        let r = check_names_on_server(&ls, Version::Redis80, "Redis 8.2.0 (running at x)", |n| {
            asked.push(n.to_string());
            Ok(true)
        });
        assert!(r.is_ok());
        assert_eq!(asked, vec!["some-future-param".to_string()]);
        let r = check_names_on_server(
            &lines("dual-channel-replication-enabled yes\n"),
            Version::Redis70,
            "Redis 7.0.15 (running at 127.0.0.1:1)",
            |_| Ok(false),
        );
        assert_eq!(r, Err("`dual-channel-replication-enabled` is not a directive of Redis 7.0.15 (running at 127.0.0.1:1); Valkey 8.1 has it (line 1 of the rendered config)".into()));
    }

    #[test]
    fn unknown_directive_with_suggestion_and_line() {
        let e = validate_lines(
            &lines("port 6379\nmaxmemory-polcy allkeys-lru\n"),
            Dialect::Redis,
        );
        assert_eq!(e, Err("unknown directive `maxmemory-polcy` (did you mean `maxmemory-policy`?): not a directive of Redis 7.0 (line 2 of the rendered config)".into()));
    }

    #[test]
    fn bad_values_name_directive_and_value() {
        let e = validate_lines(&lines("maxmemory lots\n"), Dialect::Redis);
        assert!(
            e.is_err_and(|e| e.starts_with("invalid value for `maxmemory`: `lots` is not a size"))
        );
        let e = validate_lines(&lines("port 70000\n"), Dialect::Redis);
        assert!(e.is_err_and(
            |e| e.starts_with("invalid value for `port`: 70000 is out of range 0-65535")
        ));
        let e = validate_lines(&lines("maxmemory-policy lru\n"), Dialect::Redis);
        assert!(e.is_err_and(|e| e.contains("not one of")));
        assert!(validate_lines(&lines("save 3600 1\nsave 300 100\nsave \"\"\nrename-command CONFIG \"\"\nuser bob on >x ~* +@all\n"), Dialect::Redis).is_ok());
        let e = validate_lines(&lines("dir /a b\n"), Dialect::Redis);
        assert!(e.is_err_and(|e| e.contains("quote it")));
    }

    #[test]
    fn sentinel_dialect() {
        let ok = "port 26379\nsentinel monitor m 127.0.0.1 6379 2\nsentinel down-after-milliseconds m 5000\nsentinel myid abc\n";
        assert!(validate_lines(&lines(ok), Dialect::Sentinel).is_ok());
        assert!(validate_lines(&lines("maxmemory 1gb\n"), Dialect::Sentinel)
            .is_err_and(|e| e.contains("unknown sentinel.conf directive `maxmemory`")));
        assert!(
            validate_lines(&lines("sentinel monitr m h 1 2\n"), Dialect::Sentinel)
                .is_err_and(|e| e.contains("did you mean `sentinel monitor`"))
        );
        assert!(validate_lines(&lines("sentinel monitor m h 0 2\n"), Dialect::Sentinel).is_err());
    }

    #[test]
    fn contradictions() {
        assert!(check_contradictions(
            &lines("cluster-enabled yes\nreplicaof 10.0.0.1 6379\n"),
            Dialect::Redis
        )
        .is_err_and(|e| e.contains("cluster-enabled yes")));
        assert!(check_contradictions(
            &lines("appendonly yes\nappendfilename x.aof\n"),
            Dialect::Redis
        )
        .is_ok_and(|w| w.is_empty()));
        assert!(
            check_contradictions(&lines("tls-port 6380\n"), Dialect::Redis)
                .is_err_and(|e| e.contains("tls-cert-file"))
        );
        assert!(check_contradictions(&lines("port 0\n"), Dialect::Redis).is_err());
    }

    // See: issue 8 item 12
    #[test]
    fn issue_8_item_12_aof_settings_without_appendonly_only_warn() {
        let w = check_contradictions(
            &lines("appendonly no\nappendfilename \"a.aof\"\nappendfsync everysec\n"),
            Dialect::Redis,
        );
        assert!(
            w.as_ref()
                .is_ok_and(|w| w.len() == 1 && w[0].contains("appendfilename, appendfsync")),
            "{w:?}"
        );
    }

    // See: issue 8 item 12
    #[test]
    fn issue_8_item_12_whole_file_checks() {
        let check = |t: &str| validate_file(&lines(t), Dialect::Redis);
        assert!(check("MaxMemory 1gb\nmaxmemory 2gb\n").is_err_and(|e| e.contains("set twice")));
        assert!(check("slaveof h 1\nreplicaof h 2\n").is_err_and(|e| e.contains("set twice")));
        assert!(check("maxmemory 1gb\nmaxmemory 1gb\nsave 1 1\nsave 2 2\n").is_ok());
        assert!(check("rename-command NOSUCHCMD x\n")
            .is_err_and(|e| e.contains("Redis 7.0 has no such command")));
        assert!(check("rename-command GET SET\n").is_err_and(|e| e.contains("already exists")));
        assert!(check("rename-command get \"\"\nrename-command GET x\n")
            .is_err_and(|e| e.contains("already renamed")));
        assert!(check("rename-command config|get x\n").is_err_and(|e| e.contains("subcommands")));
        assert!(check(
            "rename-command GET mine\nrename-command mine other\nrename-command FLUSHALL \"\"\n"
        )
        .is_ok());
        assert!(
            check("loadmodule /m.so\nrename-command JSON.GET x\n").is_ok(),
            "module commands"
        );
        assert!(check("user a on notarule\n")
            .is_err_and(|e| e.contains("`user a`: ACL rule `notarule`")));
        assert!(check("user a on\nuser a off\n").is_err_and(|e| e.contains("defined twice")));
        assert!(check("user a on\naclfile /x.acl\n").is_err_and(|e| e.contains("aclfile")));
        let s = |t: &str| validate_file(&lines(t), Dialect::Sentinel);
        assert!(s("sentinel monitor m h 1 1\nsentinel monitor m h 2 1\n")
            .is_err_and(|e| e.contains("monitored twice")));
        assert!(s("sentinel monitor m h 1 1\nsentinel monitor M h 2 1\n").is_ok());
        assert!(s("user a +get\n").is_err_and(|e| e.contains("Sentinel")));
        assert!(s("rename-command GET x\n").is_err());
    }

    // See: issue 8 item 1
    #[test]
    fn issue_8_item_1_control_characters_in_parsed_values() {
        assert!(refuse_control_chars(&lines("maxmemory-policy \"a\\nb\"\n"))
            .is_err_and(|e| e.contains("`maxmemory-policy`") && e.contains("line feed")));
        assert!(
            refuse_control_chars(&lines("dir \"/x\\x00y\"\n")).is_err_and(|e| e.contains("NUL"))
        );
        assert!(refuse_control_chars(&lines("dir \"/x\\ry\"\n")).is_err_and(|e| e.contains("CR")));
        assert!(refuse_control_chars(&lines("dir \"/x y\"\n")).is_ok());
    }

    #[test]
    fn security() {
        assert!(check_security(&lines("bind 127.0.0.1 -::1\n"), Dialect::Redis).is_ok());
        assert!(check_security(&lines("bind 0.0.0.0\n"), Dialect::Redis)
            .is_err_and(|e| e.contains("0.0.0.0") && e.contains("allow_insecure")));
        assert!(
            check_security(&lines("port 6379\n"), Dialect::Redis).is_err(),
            "no bind = every interface"
        );
        assert!(check_security(
            &lines("bind 10.0.0.5\nrequirepass secret\n"),
            Dialect::Redis
        )
        .is_ok());
        assert!(check_security(
            &lines("bind 10.0.0.5\nuser default on >pw ~* +@all\n"),
            Dialect::Redis
        )
        .is_ok());
        assert!(
            check_security(&lines("bind 10.0.0.5\nuser default off\n"), Dialect::Redis).is_ok()
        );
    }

    // See: issue 8 item 16
    #[test]
    fn issue_8_item_16_only_the_default_user_protects() {
        let open = |t: &str| {
            check_security(&lines(&format!("bind 10.0.0.5\n{t}")), Dialect::Redis).is_err()
        };
        assert!(
            open("user app on >pw ~* +@all\n"),
            "another user protects nothing"
        );
        assert!(open(
            "user app on >pw ~*\nuser default on nopass ~* &* +@all\n"
        ));
        assert!(
            open("requirepass secret\nuser default on nopass ~* &* +@all\n"),
            "a `user default` line overrides requirepass"
        );
        assert!(open(
            "user default on nopass ~* &* +@all\nrequirepass secret\n"
        ));
        assert!(!open("requirepass secret\nuser app on >pw ~* +@all\n"));
        assert!(
            !open("user default on nopass >pw\n"),
            "a password clears nopass"
        );
        // An aclfile without `user default`: Redis recreates default as `on nopass`.
        let dir = tempfile::tempdir().expect("tmp");
        let acl = dir.path().join("users.acl");
        std::fs::write(&acl, "user app on >pw ~* +@all\n").expect("write");
        let with_acl = format!("requirepass x\naclfile {}\n", acl.display());
        assert!(open(&with_acl));
        std::fs::write(&acl, "user default on >pw ~* +@all\n").expect("write");
        assert!(!open(&with_acl));
        assert!(check_security(
            &lines(&format!(
                "bind 10.0.0.5\naclfile {}\n",
                dir.path().join("none.acl").display()
            )),
            Dialect::Redis
        )
        .is_err_and(|e| e.contains("cannot read aclfile")));
    }

    #[test]
    fn masking() {
        let t = "requirepass hunter2\nuser bob on >pw1 #abcd ~* +@all\nsentinel auth-pass m s3cr3t\nport 1\n  masterauth \"a b\"\n";
        assert_eq!(mask_secrets(t), "requirepass ********\nuser bob on >******** #abcd ~* +@all\nsentinel auth-pass m ********\nport 1\n  masterauth ********\n");
        assert_eq!(
            secrets_in(&lines(t)),
            vec![
                "hunter2".to_string(),
                "pw1".into(),
                "s3cr3t".into(),
                "a b".into()
            ]
        );
        // A short password never eats into other words.
        assert_eq!(
            mask_secrets("sentinel auth-pass mymaster p\n"),
            "sentinel auth-pass mymaster ********\n"
        );
        // Sentinel 7.0 writes auth-pass unquoted: the line cannot be read, its secret still is.
        let broken = "sentinel auth-pass mymaster p w\"x'y\n";
        assert_eq!(secrets_of_text(broken), vec!["p w\"x'y".to_string()]);
        assert_eq!(
            mask_secrets(broken),
            "sentinel auth-pass mymaster ********\n"
        );
    }

    #[test]
    fn same_directives_ignores_quoting_and_comments() {
        assert!(same_directives(
            "# a\ndir \"/x\"\nport 1\n",
            "dir /x\n\nport 1"
        ));
        assert!(!same_directives("dir /x\nport 1\n", "port 1\ndir /x\n"));
    }

    #[test]
    fn generated_block_split() {
        let (ours, gen) =
            split_generated("port 1\n\n# Generated by CONFIG REWRITE\nsentinel myid x\n");
        assert_eq!(ours, "port 1");
        assert_eq!(gen, "# Generated by CONFIG REWRITE\nsentinel myid x\n");
        let (ours, gen) =
            split_generated("# kept after \"# Generated by CONFIG REWRITE\"\nport 1\n");
        assert_eq!(
            (ours, gen),
            ("# kept after \"# Generated by CONFIG REWRITE\"\nport 1", "")
        );
    }
}
