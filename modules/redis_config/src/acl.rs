//! `user` lines read the way Redis 7.0 reads them (acl.c: `ACLSetUser`, `ACLSetSelector`,
//! `ACLMergeSelectorArguments`), for three things:
//!
//! - refusing a line redis-server would refuse at start (`notarule`, `+nosuchcmd`, `<pw` for a
//!   password the user does not have, `~foo` after `allkeys`, a user defined twice...): Redis
//!   checks `user` lines only when it starts, so a bad one means a server that does not come up;
//! - knowing whether the `default` user ends up `on nopass` (an open server), for the exposure
//!   check;
//! - comparing a user with the running server's `ACL LIST`, by what the user may do (passwords
//!   by hash, key and channel patterns, and the set of commands each selector allows), not by how
//!   the rules are spelled.
//!
//! Every behaviour here was checked against redis-server 7.0.15 (tests/config.rs runs the same
//! rules through the real server).

use crate::commands;
use crate::conf::Dialect;
use crate::sha256;
use std::collections::{BTreeMap, BTreeSet};

const READ: u8 = 1;
const WRITE: u8 = 2;

/// Why Redis would refuse a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclError {
    /// The rule as written (passwords masked).
    pub rule: String,
    pub why: String,
}

impl std::fmt::Display for AclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ACL rule `{}`: {}", self.rule, self.why)
    }
}

fn refused(rule: &str, why: impl Into<String>) -> AclError {
    // A `>password` or `<password` rule is shown without the password.
    let shown = match rule.chars().next() {
        Some(c @ ('>' | '<')) => format!("{c}********"),
        _ => rule.to_string(),
    };
    AclError {
        rule: shown,
        why: why.into(),
    }
}

/// One command rule of a selector, as it changes what the selector may run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CommandRule {
    /// `+@all` / `allcommands` (true), `-@all` / `nocommands` (false).
    All(bool),
    /// `+name` / `-name`; `name` may be `parent|sub`.
    Command(String, bool),
    /// `+@cat` / `-@cat`.
    Category(String, bool),
    /// `+cmd|arg` for a command without subcommands: allows that first argument only.
    FirstArg(String, String),
}

/// The root permissions of a user, or one `(...)` selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Selector {
    allkeys: bool,
    /// Pattern -> READ|WRITE.
    keys: BTreeMap<String, u8>,
    allchannels: bool,
    channels: BTreeSet<String>,
    commands: Vec<CommandRule>,
}

impl Selector {
    fn new(all_channels: bool) -> Selector {
        Selector {
            allchannels: all_channels,
            commands: vec![CommandRule::All(false)],
            ..Selector::default()
        }
    }

    fn apply(&mut self, op: &str, vocab: &Vocabulary) -> Result<(), AclError> {
        match op.to_lowercase().as_str() {
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.keys.clear();
                return Ok(());
            }
            "resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
                return Ok(());
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
                return Ok(());
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.commands = vec![CommandRule::All(true)];
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.commands = vec![CommandRule::All(false)];
                return Ok(());
            }
            _ => {}
        }
        let mut chars = op.chars();
        match (chars.next(), chars.next()) {
            (Some('~' | '%'), _) => {
                if self.allkeys {
                    return Err(refused(op, "a key pattern after `~*` or `allkeys` has no effect, and Redis refuses it (use `resetkeys` first)"));
                }
                let (flags, pattern) = key_pattern(op).ok_or_else(|| {
                    refused(
                        op,
                        "not a key pattern (`~pattern`, or `%R~`, `%W~`, `%RW~` with a pattern)",
                    )
                })?;
                *self.keys.entry(pattern.to_string()).or_insert(0) |= flags;
            }
            (Some('&'), _) => {
                if self.allchannels {
                    return Err(refused(op, "a channel pattern after `&*` or `allchannels` has no effect, and Redis refuses it (use `resetchannels` first)"));
                }
                self.channels.insert(op[1..].to_string());
            }
            (Some(sign @ ('+' | '-')), Some('@')) => {
                let cat = op[2..].to_lowercase();
                if !commands::ACL_CATEGORIES.contains(&cat.as_str()) {
                    return Err(refused(
                        op,
                        format!(
                            "unknown command category `@{cat}` (ACL CAT: {})",
                            commands::ACL_CATEGORIES.join(", ")
                        ),
                    ));
                }
                self.commands.push(CommandRule::Category(cat, sign == '+'));
            }
            (Some('+'), _) => self.commands.push(allow_rule(op, vocab)?),
            (Some('-'), _) => {
                let name = op[1..].to_lowercase();
                if !vocab.command_known(&name) {
                    return Err(refused(
                        op,
                        format!("`{name}` is not a command or subcommand {}", vocab.whose()),
                    ));
                }
                self.commands.push(CommandRule::Command(name, false));
            }
            _ => return Err(refused(op, "not an ACL rule")),
        }
        Ok(())
    }
}

/// `~pat` (read and write), `%R~pat`, `%W~pat`, `%RW~pat`: the flags and the pattern.
fn key_pattern(op: &str) -> Option<(u8, &str)> {
    let Some(rest) = op.strip_prefix('%') else {
        return Some((READ | WRITE, &op[1..]));
    };
    let mut flags = 0;
    for (i, c) in rest.char_indices() {
        match c.to_ascii_uppercase() {
            'R' if flags & READ == 0 => flags |= READ,
            'W' if flags & WRITE == 0 => flags |= WRITE,
            '~' if flags != 0 => return Some((flags, &rest[i + 1..])),
            _ => return None,
        }
    }
    // `%R` with no `~`: Redis takes an empty pattern.
    (flags != 0).then_some((flags, ""))
}

/// `+cmd`, `+parent|sub`, or `+cmd|firstarg` for a command that has no subcommands.
fn allow_rule(op: &str, vocab: &Vocabulary) -> Result<CommandRule, AclError> {
    let body = op[1..].to_lowercase();
    let Some(bar) = body.rfind('|') else {
        if !vocab.command_known(&body) {
            return Err(refused(
                op,
                format!("`{body}` is not a command {}", vocab.whose()),
            ));
        }
        return Ok(CommandRule::Command(body, true));
    };
    let (parent, arg) = (&body[..bar], &body[bar + 1..]);
    if !vocab.command_known(parent) {
        return Err(refused(
            op,
            format!("`{parent}` is not a command {}", vocab.whose()),
        ));
    }
    if parent.contains('|') {
        return Err(refused(
            op,
            "allowing a first argument of a subcommand is not supported",
        ));
    }
    if arg.is_empty() {
        return Err(refused(op, "nothing after `|`"));
    }
    if vocab.has_subcommands(parent) {
        if !vocab.command_known(&body) {
            return Err(refused(
                op,
                format!("`{body}` is not a subcommand {}", vocab.whose()),
            ));
        }
        Ok(CommandRule::Command(body, true))
    } else {
        Ok(CommandRule::FirstArg(parent.to_string(), arg.to_string()))
    }
}

/// Which command names rules may use.
#[derive(Clone, Copy, Debug)]
pub struct Vocabulary {
    pub dialect: Dialect,
    /// Modules add commands we cannot know: with `loadmodule` lines, or for a running server's
    /// own description, an unknown command is taken as it is.
    pub unknown_commands_ok: bool,
}

impl Vocabulary {
    fn command_known(&self, name: &str) -> bool {
        !name.is_empty() && (self.unknown_commands_ok || commands::exists(self.dialect, name))
    }
    fn has_subcommands(&self, name: &str) -> bool {
        commands::has_subcommands(self.dialect, name)
    }
    fn whose(&self) -> &'static str {
        match self.dialect {
            Dialect::Redis => "of Redis 7.0",
            Dialect::Sentinel => "of Redis Sentinel 7.0",
        }
    }
}

/// What one user is: flags, password hashes and permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)` for sanitize-payload, `Some(false)` for skip-sanitize-payload.
    sanitize: Option<bool>,
    /// SHA-256 hex of each password (Redis keeps only these).
    passwords: BTreeSet<String>,
    root: Selector,
    selectors: Vec<Selector>,
}

impl User {
    /// A new user as Redis makes it before applying its rules (`ACLCreateUser`): off, no
    /// passwords, no keys, channels as `acl-pubsub-default` says, no commands.
    #[must_use]
    pub fn created(all_channels: bool) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: BTreeSet::new(),
            root: Selector::new(all_channels),
            selectors: Vec::new(),
        }
    }

    /// `reset`: a new user plus `sanitize-payload`. The `default` user always exists, so a
    /// `user default` line starts from this (checked: its ACL LIST shows sanitize-payload).
    #[must_use]
    pub fn reset(all_channels: bool) -> User {
        User {
            sanitize: Some(true),
            ..User::created(all_channels)
        }
    }

    /// Redis' own `default` user when no `user default` line defines it:
    /// `on nopass ~* &* +@all` (then `requirepass` gives it a password).
    #[must_use]
    pub fn redis_default() -> User {
        User {
            enabled: true,
            nopass: true,
            sanitize: None,
            passwords: BTreeSet::new(),
            root: Selector {
                allkeys: true,
                allchannels: true,
                commands: vec![CommandRule::All(true)],
                ..Selector::default()
            },
            selectors: Vec::new(),
        }
    }

    /// True when anyone can use this user without a password.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Applies rules in order, the way `ACL SETUSER` and a `user` line do.
    ///
    /// # Errors
    /// The first rule Redis would refuse.
    pub fn apply(
        &mut self,
        rules: &[String],
        vocab: &Vocabulary,
        all_channels: bool,
    ) -> Result<(), AclError> {
        for op in merge_selectors(rules)? {
            self.apply_one(&op, vocab, all_channels)?;
        }
        Ok(())
    }

    fn apply_one(
        &mut self,
        op: &str,
        vocab: &Vocabulary,
        all_channels: bool,
    ) -> Result<(), AclError> {
        match op.to_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "sanitize-payload" => self.sanitize = Some(true),
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "clearselectors" => self.selectors.clear(),
            "reset" => *self = User::reset(all_channels),
            _ => match op.chars().next() {
                Some('>') => {
                    self.passwords.insert(sha256::hex(&op.as_bytes()[1..]));
                    self.nopass = false;
                }
                Some('#') => {
                    let h = password_hash(op)?;
                    self.passwords.insert(h);
                    self.nopass = false;
                }
                Some('<') => {
                    if !self.passwords.remove(&sha256::hex(&op.as_bytes()[1..])) {
                        return Err(refused(op, "this user has no such password to remove"));
                    }
                }
                Some('!') => {
                    let h = password_hash(op)?;
                    if !self.passwords.remove(&h) {
                        return Err(refused(op, "this user has no such password hash to remove"));
                    }
                }
                Some('(') if op.len() >= 2 && op.ends_with(')') => {
                    let mut s = Selector::new(all_channels);
                    for inner in op[1..op.len() - 1].split_whitespace() {
                        s.apply(inner, vocab)?;
                    }
                    self.selectors.push(s);
                }
                _ => self.root.apply(op, vocab)?,
            },
        }
        Ok(())
    }

    /// Same flags, passwords, patterns, and the same commands allowed in every selector
    /// (computed with `table`, the running server's own command categories).
    #[must_use]
    pub fn same_as(&self, other: &User, table: &CommandTable) -> bool {
        let same_sel = |a: &Selector, b: &Selector| {
            a.allkeys == b.allkeys
                && (a.allkeys || a.keys == b.keys)
                && a.allchannels == b.allchannels
                && (a.allchannels || a.channels == b.channels)
                && table.permissions(&a.commands) == table.permissions(&b.commands)
        };
        self.enabled == other.enabled
            && self.nopass == other.nopass
            && self.sanitize == other.sanitize
            && self.passwords == other.passwords
            && same_sel(&self.root, &other.root)
            && self.selectors.len() == other.selectors.len()
            && self
                .selectors
                .iter()
                .zip(&other.selectors)
                .all(|(a, b)| same_sel(a, b))
    }
}

impl User {
    /// [`User::same_as`] without the sanitize-payload flag: CONFIG REWRITE writes Redis' own
    /// `default` user (which has no such flag) as a `user default` line, and every such line
    /// starts from `reset`, which sets it.
    #[must_use]
    pub fn same_as_apart_from_sanitize(&self, other: &User, table: &CommandTable) -> bool {
        let mut o = other.clone();
        o.sanitize = self.sanitize;
        self.same_as(&o, table)
    }

    /// Same flags, passwords and patterns, and the same command rules once spelled alike: the
    /// rules after the last `+@all`/`-@all` (which resets them), and runs of `+cmd`/`-cmd` for
    /// unrelated commands in one order (ACL LIST sorts them). For comparing without the running
    /// server's command table, so `+@read` and `+get` count as different rules.
    #[must_use]
    pub fn same_rules(&self, other: &User) -> bool {
        let norm = |u: &User| {
            let mut u = u.clone();
            for s in std::iter::once(&mut u.root).chain(u.selectors.iter_mut()) {
                s.commands = normalized_rules(&s.commands);
            }
            u
        };
        norm(self) == norm(other)
    }

    /// [`User::same_rules`] without the sanitize-payload flag (see
    /// [`User::same_as_apart_from_sanitize`]).
    #[must_use]
    pub fn same_rules_apart_from_sanitize(&self, other: &User) -> bool {
        let mut o = other.clone();
        o.sanitize = self.sanitize;
        self.same_rules(&o)
    }
}

/// Command rules in one spelling: from the last `All` on, and runs of whole-command rules
/// sorted when no two of them touch the same command (`+config` and `-config|get` do).
fn normalized_rules(rules: &[CommandRule]) -> Vec<CommandRule> {
    let start = rules
        .iter()
        .rposition(|r| matches!(r, CommandRule::All(_)))
        .unwrap_or(0);
    let mut out: Vec<CommandRule> = Vec::new();
    let mut run: Vec<CommandRule> = Vec::new();
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}|")) || b.starts_with(&format!("{a}|"))
    };
    let flush = |run: &mut Vec<CommandRule>, out: &mut Vec<CommandRule>| {
        let names: Vec<&str> = run
            .iter()
            .filter_map(|r| match r {
                CommandRule::Command(n, _) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let independent = names
            .iter()
            .enumerate()
            .all(|(i, a)| names[i + 1..].iter().all(|b| !related(a, b)));
        if independent {
            run.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        }
        out.append(run);
    };
    for r in &rules[start..] {
        if matches!(r, CommandRule::Command(..)) {
            run.push(r.clone());
        } else {
            flush(&mut run, &mut out);
            out.push(r.clone());
        }
    }
    flush(&mut run, &mut out);
    out
}

fn password_hash(op: &str) -> Result<String, AclError> {
    let h = &op[1..];
    if h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(h.to_string())
    } else {
        Err(refused(
            op,
            "a password hash must be exactly 64 lowercase hexadecimal characters",
        ))
    }
}

/// Joins `(`...`)` selectors that the line's word splitting cut apart, as Redis does.
fn merge_selectors(args: &[String]) -> Result<Vec<String>, AclError> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for a in args {
        if let Some(sel) = open.as_mut() {
            sel.push(' ');
            sel.push_str(a);
            if a.ends_with(')') {
                out.extend(open.take());
            }
        } else if a.starts_with('(') && !(a.len() >= 2 && a.ends_with(')')) {
            open = Some(a.clone());
        } else {
            out.push(a.clone());
        }
    }
    match open {
        Some(sel) => Err(refused(&sel, "a selector `(` without its closing `)`")),
        None => Ok(out),
    }
}

/// Parses one `user` directive's arguments (name, then rules) into its user.
///
/// # Errors
/// A bad name or the first rule Redis would refuse.
pub fn user_from_line(
    args: &[String],
    vocab: &Vocabulary,
    all_channels: bool,
) -> Result<(String, User), AclError> {
    let Some((name, rules)) = args.split_first() else {
        return Err(refused("user", "needs a user name"));
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(AclError {
            rule: name.clone(),
            why: "a user name cannot be empty or hold spaces".into(),
        });
    }
    let mut user = if name == "default" {
        User::reset(all_channels)
    } else {
        User::created(all_channels)
    };
    user.apply(rules, vocab, all_channels)?;
    Ok((name.clone(), user))
}

/// Every command of a running server with its ACL categories (from `COMMAND`), to tell what a
/// set of rules allows.
#[derive(Clone, Debug, Default)]
pub struct CommandTable {
    /// Full name (`get`, `config|get`) -> categories (without `@`).
    commands: BTreeMap<String, BTreeSet<String>>,
    /// Module commands: categories never apply to them (acl.c skips CMD_MODULE).
    modules: BTreeSet<String>,
}

/// What a selector may run: the command names, whether commands added later are included
/// (`+@all`), and first arguments allowed for commands not allowed whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    future: bool,
    allowed: BTreeSet<String>,
    first_args: BTreeMap<String, BTreeSet<String>>,
}

impl CommandTable {
    /// Builds the table from a `COMMAND` reply as JSON (arrays of name, arity, flags, first key,
    /// last key, step, categories, tips, key specs, subcommands).
    #[must_use]
    pub fn from_command_reply(reply: &serde_json::Value) -> CommandTable {
        let mut t = CommandTable::default();
        fn add(t: &mut CommandTable, entry: &serde_json::Value) {
            let Some(name) = entry.get(0).and_then(serde_json::Value::as_str) else {
                return;
            };
            let name = name.to_lowercase();
            let strings = |i: usize| -> BTreeSet<String> {
                entry
                    .get(i)
                    .and_then(serde_json::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(serde_json::Value::as_str)
                            .map(|s| s.trim_start_matches('@').to_lowercase())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if strings(2).contains("module") {
                t.modules.insert(name.clone());
            }
            t.commands.insert(name, strings(6));
            if let Some(subs) = entry.get(9).and_then(serde_json::Value::as_array) {
                for s in subs {
                    add(t, s);
                }
            }
        }
        for entry in reply.as_array().into_iter().flatten() {
            add(&mut t, entry);
        }
        t
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    fn subcommands<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.commands.keys().filter(move |n| {
            n.len() > parent.len() + 1
                && n.starts_with(parent)
                && n.as_bytes()[parent.len()] == b'|'
        })
    }

    /// `ACLChangeSelectorPerm`: a command with all its subcommands, its first arguments reset.
    fn change(&self, p: &mut Permissions, name: &str, allow: bool) {
        let mut names = vec![name.to_string()];
        if !name.contains('|') {
            names.extend(self.subcommands(name).cloned());
        }
        for n in names {
            if allow {
                p.allowed.insert(n);
            } else {
                p.allowed.remove(&n);
            }
        }
        p.first_args.remove(name);
    }

    /// What `rules` allow, applied in order the way acl.c sets its command bitmap.
    #[must_use]
    fn permissions(&self, rules: &[CommandRule]) -> Permissions {
        let mut p = Permissions::default();
        for r in rules {
            match r {
                CommandRule::All(allow) => {
                    p.future = *allow;
                    p.allowed = if *allow {
                        self.commands.keys().cloned().collect()
                    } else {
                        BTreeSet::new()
                    };
                    p.first_args.clear();
                }
                CommandRule::Command(name, allow) => self.change(&mut p, name, *allow),
                CommandRule::Category(cat, allow) => {
                    let matching: Vec<String> = self
                        .commands
                        .iter()
                        .filter(|(n, cats)| cats.contains(cat) && !self.modules.contains(*n))
                        .map(|(n, _)| n.clone())
                        .collect();
                    for n in matching {
                        self.change(&mut p, &n, *allow);
                    }
                }
                CommandRule::FirstArg(cmd, arg) => {
                    p.first_args
                        .entry(cmd.clone())
                        .or_default()
                        .insert(arg.clone());
                }
            }
        }
        // A first argument means nothing for a command allowed whole.
        p.first_args.retain(|c, _| !p.allowed.contains(c));
        p
    }
}

/// One `ACL LIST` line of a running server: its user name and what it is.
///
/// # Errors
/// A line this parser does not understand (then the caller cannot compare).
pub fn user_from_acl_list(line: &str, dialect: Dialect) -> Result<(String, User), String> {
    let words = redis_utils::redisconf::split_args(line)
        .ok_or_else(|| format!("cannot read ACL LIST line `{line}`"))?;
    let Some((first, rest)) = words.split_first() else {
        return Err("empty ACL LIST line".into());
    };
    if first != "user" {
        return Err(format!("cannot read ACL LIST line `{line}`"));
    }
    let vocab = Vocabulary {
        dialect,
        unknown_commands_ok: true,
    };
    // The description is complete (flags, passwords, keys, channels, commands), so the starting
    // point does not matter beyond having no flags at all.
    let mut user = User::created(false);
    let Some((name, rules)) = rest.split_first() else {
        return Err(format!("cannot read ACL LIST line `{line}`"));
    };
    user.apply(rules, &vocab, false)
        .map_err(|e| format!("cannot read ACL LIST line for `{name}`: {e}"))?;
    Ok((name.clone(), user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn line(s: &str) -> Result<(String, User), AclError> {
        let vocab = Vocabulary {
            dialect: Dialect::Redis,
            unknown_commands_ok: false,
        };
        user_from_line(&words(s), &vocab, false)
    }

    // See: issue 8 item 12
    #[test]
    fn issue_8_item_12_unknown_acl_rules_are_refused() {
        for bad in [
            "a on notarule",
            "a on <pw",
            "a allkeys ~foo",
            "a ~* %R~foo",
            "a &* &foo",
            "a %~foo",
            "a %RR~x",
            "a +config|nosuch",
            "a -get|x",
            "a +config|",
            "a +get|",
            "a +config|get|x",
            "a +@nosuch",
            "a (~foo +get",
            "a (on)",
            "a #abc",
            "a #0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "a !0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a +nosuchcmd",
            "a +",
            "a -",
            "a +@",
            "a (~a) )",
        ] {
            assert!(line(bad).is_err(), "accepted: user {bad}");
        }
        for good in [
            "a",
            "a on >pw <pw",
            "a %R~foo %W~foo %RW~z %r~x %R %R~",
            "a ~foo ~* allkeys",
            "a %R~* ~bar",
            "a +get|x +select|0 -config|get +CONFIG|GET",
            "a +@all -@dangerous +acl|whoami",
            "a (~foo +get) (%R~bar) () ( ~a )",
            "a ON NOPASS ALLKEYS +@ALL +@READ",
            "a resetpass resetkeys resetchannels reset nocommands allcommands clearselectors",
            "a ~ & >",
            "a ~x &y resetchannels allchannels &* ~a)",
            "a >pw #a94a8fe5ccb19ba61c4c0873d391e987982fbbd3a94a8fe5ccb19ba61c4c0873",
        ] {
            assert!(line(good).is_ok(), "refused: user {good}: {:?}", line(good));
        }
    }

    #[test]
    fn refused_password_rules_do_not_show_the_password() {
        let e = line("a on <hunter2").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ACL rule `<********`: this user has no such password to remove")
        );
    }

    #[test]
    fn open_users() {
        let open = |s: &str| line(s).map(|(_, u)| u.is_open()).unwrap_or(false);
        assert!(open("default on nopass ~* &* +@all"));
        assert!(!open("default on nopass >x"), ">x clears nopass");
        assert!(
            !open("default on ~* +@all"),
            "no password: nobody can log in"
        );
        assert!(!open("default off nopass"));
        assert!(!open("default on nopass reset"));
        assert!(User::redis_default().is_open());
    }

    #[test]
    fn permissions_follow_categories_and_subcommands() {
        let reply = serde_json::json!([
            [
                "get",
                2,
                ["readonly"],
                1,
                1,
                1,
                ["@read", "@string", "@fast"],
                [],
                [],
                []
            ],
            [
                "set",
                -3,
                ["write"],
                1,
                1,
                1,
                ["@write", "@string", "@slow"],
                [],
                [],
                []
            ],
            [
                "config",
                -2,
                [],
                0,
                0,
                0,
                ["@slow"],
                [],
                [],
                [
                    [
                        "config|get",
                        -3,
                        [],
                        0,
                        0,
                        0,
                        ["@admin", "@slow", "@dangerous"],
                        [],
                        [],
                        []
                    ],
                    ["config|help", 2, [], 0, 0, 0, ["@slow"], [], [], []]
                ]
            ]
        ]);
        let t = CommandTable::from_command_reply(&reply);
        let perms = |s: &str| {
            let (_, u) = line(s).unwrap_or_else(|e| panic!("{e}"));
            t.permissions(&u.root.commands)
        };
        assert_eq!(perms("a +@read +get"), perms("a +get"));
        assert_eq!(perms("a +@all -@dangerous"), perms("a +@all -config|get"));
        assert_ne!(
            perms("a +@all -@dangerous"),
            perms("a -@all +get +set +config|help")
        );
        // +@slow reaches `config` itself, and with it every config subcommand.
        assert_eq!(perms("a +@slow"), perms("a +set +config"));
        assert_eq!(perms("a +select|0 +get"), perms("a +get +select|0"));
    }
}
