//! The command tables of Redis 7.0, for what redis-server checks only when it starts:
//! `rename-command NOSUCHCMD x` and an ACL rule `+nosuchcmd` both stop it with a fatal config
//! error. The lists are `COMMAND LIST` of redis-server and of redis-sentinel 7.0.15 (Sentinel
//! has its own, much smaller table, and checks its sentinel.conf against that), subcommands
//! written `parent|sub`; tests/config.rs compares them with a real server's `COMMAND LIST`.

use crate::conf::Dialect;
use crate::directives::{Version, VERSIONS};
use std::collections::BTreeSet;

const REDIS: &str = include_str!("../data/redis-7.0-commands.txt");
const SENTINEL: &str = include_str!("../data/sentinel-7.0-commands.txt");

/// `COMMAND LIST` of Redis 8.0.2 and Valkey 8.1.1 (lower case: Redis 8's vector-set commands
/// are listed as `VADD`...), for `rename-command` on those servers; tests/versions.rs compares
/// them with the real servers. ACL rules on those servers take a command these lists lack as
/// a module's (see `conf::vocabulary_on`).
const REDIS80: &str = include_str!("../data/redis-8.0-commands.txt");
const VALKEY81: &str = include_str!("../data/valkey-8.1-commands.txt");

fn lines_of(table: &'static str) -> impl Iterator<Item = &'static str> {
    table.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Every command name of `version`'s redis-server (Sentinel: Redis 7.0's Sentinel table).
pub fn names_on(dialect: Dialect, version: Version) -> impl Iterator<Item = &'static str> {
    let table = match (dialect, version) {
        (Dialect::Sentinel, _) => SENTINEL,
        (Dialect::Redis, Version::Redis70) => REDIS,
        (Dialect::Redis, Version::Redis80) => REDIS80,
        (Dialect::Redis, Version::Valkey81) => VALKEY81,
    };
    lines_of(table)
}

/// The top-level commands of `version` (`None`: of any supported server, until the running
/// server is known).
#[must_use]
pub fn top_level_on(dialect: Dialect, version: Option<Version>) -> BTreeSet<&'static str> {
    let versions: Vec<Version> = match version {
        Some(v) => vec![v],
        None => VERSIONS.to_vec(),
    };
    versions
        .into_iter()
        .flat_map(|v| names_on(dialect, v))
        .filter(|n| !n.contains('|'))
        .collect()
}

/// `ACL CAT` of Redis 7.0 (the same in Sentinel, Redis 8.0 and Valkey 8.1).
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Every command name (lower case) the program reading `dialect` knows, subcommands included.
pub fn names(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    match dialect {
        Dialect::Redis => REDIS,
        Dialect::Sentinel => SENTINEL,
    }
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty())
}

/// Whether `name` (any case; `parent|sub` for a subcommand) is a command of `dialect`.
#[must_use]
pub fn exists(dialect: Dialect, name: &str) -> bool {
    let lower = name.to_lowercase();
    names(dialect).any(|n| n == lower)
}

/// Whether the top-level command `name` has subcommands (`config`, `client`, `acl`...).
#[must_use]
pub fn has_subcommands(dialect: Dialect, name: &str) -> bool {
    let prefix = format!("{}|", name.to_lowercase());
    names(dialect).any(|n| n.starts_with(&prefix))
}

/// The top-level commands (those `rename-command` can rename).
pub fn top_level(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    names(dialect).filter(|n| !n.contains('|'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_lower_case_and_unique() {
        for d in [Dialect::Redis, Dialect::Sentinel] {
            let all: Vec<&str> = names(d).collect();
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{d:?}");
            assert!(all.iter().all(|n| *n == n.to_lowercase()));
        }
        assert_eq!(
            top_level(Dialect::Redis).count(),
            240,
            "COMMAND COUNT of 7.0.15"
        );
        assert!(exists(Dialect::Redis, "CONFIG|GET"));
        assert!(has_subcommands(Dialect::Redis, "config"));
        assert!(!has_subcommands(Dialect::Redis, "get"));
        assert!(!exists(Dialect::Sentinel, "get"));
        assert!(exists(Dialect::Sentinel, "sentinel|monitor"));
    }
}
