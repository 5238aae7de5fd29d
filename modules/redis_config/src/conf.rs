//! Reading a rendered redis.conf / sentinel.conf back the way Redis reads it, and refusing one
//! that Redis would refuse, or that would be unsafe, before anything is written.

use crate::directives::{self, Kind};

/// Which program reads the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Redis,
    Sentinel,
}

pub use redis_utils::redisconf::{last, parse, secrets_in, Line};

fn suggest(name: &str, dialect: Dialect) -> String {
    let hint = match dialect {
        Dialect::Redis => directives::did_you_mean(name, directives::REDIS.iter().map(|(n, _)| *n)),
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

/// Checks every line: known directive, value of the right kind, right number of arguments.
///
/// # Errors
/// The first bad line, naming the directive, the value and the line.
pub fn validate_lines(lines: &[Line], dialect: Dialect) -> Result<(), String> {
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
                    l.raw_value
                ));
            }
            if sub == "monitor" {
                let port_ok = l.args[3].parse::<u16>().is_ok_and(|p| p > 0);
                let quorum_ok = l.args[4].parse::<u32>().is_ok_and(|q| q > 0);
                if !port_ok || !quorum_ok {
                    return Err(format!("`sentinel monitor` needs <name> <host> <port> <quorum> with a port 1-65535 and a quorum >= 1, got `{}`{at}", l.raw_value));
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
        let Some(kind) = directives::kind(&l.name) else {
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
                    l.name, l.raw_value
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
                    l.name, l.raw_value
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

fn value_of(lines: &[Line], name: &str) -> Option<String> {
    last(lines, name).map(|l| l.args.join(" "))
}

fn is_yes(lines: &[Line], name: &str) -> bool {
    value_of(lines, name).is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

/// Directives that contradict each other. Redis would start with some of these and misbehave.
///
/// # Errors
/// The contradiction, naming both directives.
pub fn check_contradictions(lines: &[Line], dialect: Dialect) -> Result<(), String> {
    if dialect == Dialect::Sentinel {
        return Ok(());
    }
    if is_yes(lines, "cluster-enabled") {
        for r in ["replicaof", "slaveof"] {
            if let Some(v) = value_of(lines, r) {
                return Err(format!("`cluster-enabled yes` contradicts `{r} {v}`: cluster replicas are assigned with CLUSTER REPLICATE (redis_cluster), not {r}"));
            }
        }
    }
    if !is_yes(lines, "appendonly") {
        for d in ["appendfilename", "appenddirname", "appendfsync"] {
            if let Some(v) = value_of(lines, d) {
                return Err(format!(
                    "`{d} {v}` is set but appendonly is not yes: set appendonly yes or drop {d}"
                ));
            }
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
    Ok(())
}

fn is_loopback(addr: &str) -> bool {
    let a = addr.trim_start_matches('-');
    a == "localhost" || a == "::1" || a.starts_with("127.")
}

/// Refuses to expose a server beyond loopback without authentication.
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
    if exposed.is_empty() {
        return Ok(());
    }
    let has_password = value_of(lines, "requirepass").is_some_and(|v| !v.is_empty());
    let has_acl_users = lines.iter().any(|l| {
        l.name == "user"
            && l.args
                .iter()
                .any(|a| a.starts_with('>') || a.starts_with('#'))
            && !l.args.iter().any(|a| a == "nopass")
    });
    let has_aclfile = value_of(lines, "aclfile").is_some_and(|v| !v.is_empty());
    if has_password || has_acl_users || has_aclfile {
        return Ok(());
    }
    let what = if dialect == Dialect::Sentinel {
        "redis-sentinel"
    } else {
        "redis"
    };
    Err(format!(
        "refusing to bind {what} to {} (beyond loopback) without requirepass, ACL users with passwords or an aclfile: anyone who can reach the port could read and change everything. Set requirepass (or ACL users), or allow_insecure: true if the network is protected otherwise",
        exposed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    ))
}

/// Masks the values of secret directives (and passwords inside `user` ACL rules) in a config
/// text, for diffs and messages: an old password, which no option names, must not leak either.
#[must_use]
pub fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for l in text.split_inclusive('\n') {
        let t = l.trim_start();
        let word = t.split_whitespace().next().unwrap_or("").to_lowercase();
        let nl = if l.ends_with('\n') { "\n" } else { "" };
        if redis_utils::redisconf::SECRET_DIRECTIVES.contains(&word.as_str()) {
            out.push_str(&format!("{word} ********{nl}"));
        } else if word == "user" {
            let masked: Vec<String> = t
                .split_whitespace()
                .map(|w| {
                    if w.starts_with('>') || w.starts_with('#') {
                        format!("{}********", &w[..1])
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            out.push_str(&format!("{}{nl}", masked.join(" ")));
        } else if word == "sentinel" {
            let parts: Vec<&str> = t.split_whitespace().collect();
            if parts.get(1).is_some_and(|s| {
                s.eq_ignore_ascii_case("auth-pass") || s.eq_ignore_ascii_case("sentinel-pass")
            }) {
                let keep = if parts[1].eq_ignore_ascii_case("auth-pass") {
                    3
                } else {
                    2
                };
                out.push_str(&format!(
                    "{} ********{nl}",
                    parts[..keep.min(parts.len())].join(" ")
                ));
            } else {
                out.push_str(l);
            }
        } else {
            out.push_str(l);
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

    #[test]
    fn unknown_directive_with_suggestion_and_line() {
        let e = validate_lines(
            &lines("port 6379\nmaxmemory-polcy allkeys-lru\n"),
            Dialect::Redis,
        );
        assert_eq!(e, Err("unknown directive `maxmemory-polcy` (did you mean `maxmemory-policy`?) (line 2 of the rendered config)".into()));
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
        assert!(
            check_contradictions(&lines("appendfilename x.aof\n"), Dialect::Redis)
                .is_err_and(|e| e.contains("appendonly"))
        );
        assert!(check_contradictions(
            &lines("appendonly yes\nappendfilename x.aof\n"),
            Dialect::Redis
        )
        .is_ok());
        assert!(
            check_contradictions(&lines("tls-port 6380\n"), Dialect::Redis)
                .is_err_and(|e| e.contains("tls-cert-file"))
        );
        assert!(check_contradictions(&lines("port 0\n"), Dialect::Redis).is_err());
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
            &lines("bind 10.0.0.5\nuser app on >pw ~* +@all\n"),
            Dialect::Redis
        )
        .is_ok());
        assert!(check_security(
            &lines("bind 10.0.0.5\nuser app on nopass ~* +@all\n"),
            Dialect::Redis
        )
        .is_err());
    }

    #[test]
    fn masking() {
        let t = "requirepass hunter2\nuser bob on >pw1 #abcd ~* +@all\nsentinel auth-pass m s3cr3t\nport 1\n";
        assert_eq!(mask_secrets(t), "requirepass ********\nuser bob on >******** #******** ~* +@all\nsentinel auth-pass m ********\nport 1\n");
        assert_eq!(
            secrets_in(&lines(t)),
            vec!["hunter2".to_string(), "pw1".into(), "s3cr3t".into()]
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
