//! Reading redis.conf and sentinel.conf the way Redis reads them: one parser for every module
//! (redis_config validates and compares with it, redis_service finds ports, pidfiles and
//! passwords with it), and one list of the values in such a file that are secrets.

/// C's `isspace()` in the "C" locale, which Redis' `sdssplitargs` uses: ASCII white space only.
/// A no-break space (U+00A0) is part of a value to Redis, not a separator.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Splits one config line like Redis' `sdssplitargs`. `None` on unbalanced quotes.
#[must_use]
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_c_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return Some(out);
        }
        let mut cur = String::new();
        let mut inq = false; // double quotes
        let mut insq = false; // single quotes
        loop {
            let c = chars.get(i).copied();
            if inq {
                match c {
                    None => return None,
                    Some('\\')
                        if chars.get(i + 1) == Some(&'x')
                            && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit)
                            && chars.get(i + 3).is_some_and(char::is_ascii_hexdigit) =>
                    {
                        let hex: String = chars[i + 2..=i + 3].iter().collect();
                        cur.push(char::from(u8::from_str_radix(&hex, 16).unwrap_or(b'?')));
                        i += 3;
                    }
                    Some('\\') if i + 1 < chars.len() => {
                        i += 1;
                        cur.push(match chars[i] {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'a' => '\u{7}',
                            other => other,
                        });
                    }
                    Some('"') => {
                        // The closing quote must be followed by a space or the end.
                        if chars.get(i + 1).is_some_and(|n| !is_c_space(*n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else if insq {
                match c {
                    None => return None,
                    Some('\\') if chars.get(i + 1) == Some(&'\'') => {
                        i += 1;
                        cur.push('\'');
                    }
                    Some('\'') => {
                        if chars.get(i + 1).is_some_and(|n| !is_c_space(*n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else {
                match c {
                    None => break,
                    Some(ch) if is_c_space(ch) => break,
                    Some('"') => inq = true,
                    Some('\'') => insq = true,
                    Some(ch) => cur.push(ch),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// One directive line of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the text.
    pub number: usize,
    /// The directive, lower case.
    pub name: String,
    pub args: Vec<String>,
    /// The text after the name as written (quotes kept), for messages.
    pub raw_value: String,
}

/// Parses every directive line (comments and blank lines skipped). `include` lines are returned
/// like any other directive; following them is the caller's choice.
///
/// # Errors
/// The line number and text of a line with unbalanced quotes.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let args = split_args(t).ok_or_else(|| {
            format!(
                "line {}: unbalanced quotes (or a quote not followed by a space): {t}",
                i + 1
            )
        })?;
        let Some((name, rest)) = args.split_first() else {
            continue;
        };
        let raw_value = t[t.find(is_c_space).unwrap_or(t.len())..]
            .trim()
            .to_string();
        lines.push(Line {
            number: i + 1,
            name: name.to_lowercase(),
            args: rest.to_vec(),
            raw_value,
        });
    }
    Ok(lines)
}

/// The last line of directive `name` (Redis applies the last one).
#[must_use]
pub fn last<'a>(lines: &'a [Line], name: &str) -> Option<&'a Line> {
    lines.iter().rev().find(|l| l.name == name)
}

/// Directives whose single value is a secret.
pub const SECRET_DIRECTIVES: &[&str] = &[
    "requirepass",
    "masterauth",
    // Valkey 8's name for masterauth (it accepts both).
    "primaryauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// Every secret among `(directive, arguments)` pairs: server and master passwords, Sentinel's
/// `auth-pass` and `sentinel-pass`, ACL user passwords (`>pw`, and `<pw` removing one) and TLS
/// key passphrases. These are registered as no_log values by every module that reads a config
/// file.
pub fn secrets<'a>(directives: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, args) in directives {
        match name {
            n if SECRET_DIRECTIVES.contains(&n) => out.extend(args.first().cloned()),
            "sentinel" => match args.first().map(|a| a.to_lowercase()).as_deref() {
                Some("auth-pass") => out.extend(args.get(2).cloned()),
                Some("sentinel-pass") => out.extend(args.get(1).cloned()),
                _ => {}
            },
            // `>pw` adds a password, `<pw` removes one: both name a password in clear.
            "user" => out.extend(
                args.iter()
                    .filter_map(|a| a.strip_prefix('>').or_else(|| a.strip_prefix('<')))
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// [`secrets`] of parsed lines.
#[must_use]
pub fn secrets_in(lines: &[Line]) -> Vec<String> {
    secrets(lines.iter().map(|l| (l.name.as_str(), l.args.as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(
            split_args("port 6380"),
            Some(vec!["port".into(), "6380".into()])
        );
        assert_eq!(
            split_args("save \"\""),
            Some(vec!["save".into(), String::new()])
        );
        assert_eq!(
            split_args("requirepass \"a b\\\"c\""),
            Some(vec!["requirepass".into(), "a b\"c".into()])
        );
        assert_eq!(
            split_args("x 'it\\'s'"),
            Some(vec!["x".into(), "it's".into()])
        );
        assert_eq!(
            split_args("x \"\\x41\\n\""),
            Some(vec!["x".into(), "A\n".into()])
        );
        assert_eq!(
            split_args("rename-command FLUSHALL ''"),
            Some(vec![
                "rename-command".into(),
                "FLUSHALL".into(),
                String::new()
            ])
        );
        assert_eq!(split_args("x \"unbalanced"), None);
        assert_eq!(split_args("x \"a\"b"), None);
        assert_eq!(split_args("   "), Some(vec![]));
    }

    #[test]
    fn parse_numbers_lines_and_keeps_raw_values() {
        let l = parse("# c\n\nPORT 7000\nrequirepass \"a b\"\n").unwrap_or_default();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].number, l[0].name.as_str()), (3, "port"));
        assert_eq!(l[1].raw_value, "\"a b\"");
        assert!(parse("dir \"/x\n").is_err_and(|e| e.starts_with("line 1: unbalanced quotes")));
        assert_eq!(
            last(&parse("port 1\nport 2\n").unwrap_or_default(), "port")
                .map(|l| l.args[0].as_str()),
            Some("2")
        );
    }

    #[test]
    fn secrets_of_every_kind() {
        let l = parse("requirepass hunter2\nmasterauth m1\nuser bob on >pw1 #abcd ~* +@all\nsentinel auth-pass m s3cr3t\nsentinel sentinel-pass sp\ntls-key-file-pass kp\nport 1\n").unwrap_or_default();
        assert_eq!(
            secrets_in(&l),
            vec!["hunter2", "m1", "pw1", "s3cr3t", "sp", "kp"]
        );
        let l = parse("user bob on >new-pw <old-pw\n").unwrap_or_default();
        assert_eq!(secrets_in(&l), vec!["new-pw", "old-pw"]);
        // Valkey 8's masterauth, by its new name: what redis_service and redis_health read from
        // a Valkey config is masked as well.
        let l = parse("primaryauth pa1\nPrimaryAuth pa2\n").unwrap_or_default();
        assert_eq!(secrets_in(&l), vec!["pa1", "pa2"]);
    }
}
