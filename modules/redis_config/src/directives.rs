//! What Redis 7.0, Redis 8.0 and Valkey 8.1 accept in redis.conf and sentinel.conf, and how
//! CONFIG GET reports it.
//!
//! The names of each server ([`Version`]) are every parameter its `CONFIG GET *` lists
//! (data/config-*.txt), plus the file-only ones (`rename-command`, `include`, `loadmodule`,
//! `user`); the kinds ([`REDIS`], [`NEWER`]) are keyed by name, shared by every version. Kinds are what config.c parses them as, so
//! that `maxmemory lots` or `port 70000` fail here, with the directive and the value named, and not
//! at the next restart. `normalize` turns a desired value into the form CONFIG GET answers with
//! (`4gb` → `4294967296`, `yes`), so comparing with a running server never reports false changes.

/// How a directive's value is parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// Bytes, with Redis' units (k=1000, kb=1024, m, mb, g, gb).
    Size,
    /// A size, or a percentage of maxmemory (`maxmemory-clients 10%`).
    SizeOrPercent,
    Enum(&'static [&'static str]),
    /// Several space-separated words from the list (`shutdown-on-sigterm save now`).
    EnumSet(&'static [&'static str]),
    /// Free text (a path, a name, a password).
    Text,
    /// Space-separated words of free text (`bind 127.0.0.1 ::1`, `tls-protocols`).
    Words,
    /// `save <seconds> <changes> [...]`, or `save ""` to disable.
    Save,
    ClientOutputBufferLimit,
    KeyspaceEvents,
    /// `replicaof <host> <port>`.
    HostPort,
    /// Octal permission bits (`unixsocketperm 700`).
    Octal,
    /// May appear many times; read only at start (`rename-command`, `user`, `include`, `loadmodule`).
    FileOnly,
}

const I64MAX: i64 = i64::MAX;
const PORT: Kind = Kind::Int { min: 0, max: 65535 };
const NONNEG: Kind = Kind::Int {
    min: 0,
    max: I64MAX,
};
const ANYINT: Kind = Kind::Int {
    min: i64::MIN,
    max: I64MAX,
};

const POLICIES: &[&str] = &[
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
];
const YES_NO_LOCAL: &[&str] = &["yes", "no", "local"];
const SHUTDOWN: &[&str] = &["default", "save", "nosave", "now", "force"];
const SYSLOG: &[&str] = &[
    "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Every redis.conf directive Redis 7.0 knows, with its kind.
pub const REDIS: &[(&str, Kind)] = &[
    (
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
    ),
    ("aclfile", Kind::Text),
    ("acllog-max-len", NONNEG),
    ("active-defrag-cycle-max", Kind::Int { min: 1, max: 99 }),
    ("active-defrag-cycle-min", Kind::Int { min: 1, max: 99 }),
    ("active-defrag-ignore-bytes", Kind::Size),
    ("active-defrag-max-scan-fields", NONNEG),
    (
        "active-defrag-threshold-lower",
        Kind::Int { min: 0, max: 1000 },
    ),
    (
        "active-defrag-threshold-upper",
        Kind::Int { min: 0, max: 1000 },
    ),
    ("active-expire-effort", Kind::Int { min: 1, max: 10 }),
    ("activedefrag", Kind::Bool),
    ("activerehashing", Kind::Bool),
    ("always-show-logo", Kind::Bool),
    ("aof-disable-auto-gc", Kind::Bool),
    ("aof-load-truncated", Kind::Bool),
    ("aof-rewrite-incremental-fsync", Kind::Bool),
    ("aof-timestamp-enabled", Kind::Bool),
    ("aof-use-rdb-preamble", Kind::Bool),
    ("aof_rewrite_cpulist", Kind::Text),
    ("appenddirname", Kind::Text),
    ("appendfilename", Kind::Text),
    ("appendfsync", Kind::Enum(&["always", "everysec", "no"])),
    ("appendonly", Kind::Bool),
    ("auto-aof-rewrite-min-size", Kind::Size),
    ("auto-aof-rewrite-percentage", NONNEG),
    ("bgsave_cpulist", Kind::Text),
    ("bind", Kind::Words),
    ("bind-source-addr", Kind::Text),
    ("bio_cpulist", Kind::Text),
    ("busy-reply-threshold", NONNEG),
    ("client-output-buffer-limit", Kind::ClientOutputBufferLimit),
    ("client-query-buffer-limit", Kind::Size),
    ("cluster-allow-pubsubshard-when-down", Kind::Bool),
    ("cluster-allow-reads-when-down", Kind::Bool),
    ("cluster-allow-replica-migration", Kind::Bool),
    ("cluster-announce-bus-port", PORT),
    ("cluster-announce-hostname", Kind::Text),
    ("cluster-announce-ip", Kind::Text),
    ("cluster-announce-port", PORT),
    ("cluster-announce-tls-port", PORT),
    ("cluster-config-file", Kind::Text),
    ("cluster-enabled", Kind::Bool),
    ("cluster-link-sendbuf-limit", Kind::Size),
    ("cluster-migration-barrier", NONNEG),
    ("cluster-node-timeout", NONNEG),
    ("cluster-port", PORT),
    (
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
    ),
    ("cluster-replica-no-failover", Kind::Bool),
    ("cluster-replica-validity-factor", NONNEG),
    ("cluster-require-full-coverage", Kind::Bool),
    ("cluster-slave-no-failover", Kind::Bool),
    ("cluster-slave-validity-factor", NONNEG),
    ("crash-log-enabled", Kind::Bool),
    ("crash-memcheck-enabled", Kind::Bool),
    ("daemonize", Kind::Bool),
    (
        "databases",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("dbfilename", Kind::Text),
    ("dir", Kind::Text),
    ("disable-thp", Kind::Bool),
    ("dynamic-hz", Kind::Bool),
    ("enable-debug-command", Kind::Enum(YES_NO_LOCAL)),
    ("enable-module-command", Kind::Enum(YES_NO_LOCAL)),
    ("enable-protected-configs", Kind::Enum(YES_NO_LOCAL)),
    ("hash-max-listpack-entries", NONNEG),
    ("hash-max-listpack-value", NONNEG),
    ("hash-max-ziplist-entries", NONNEG),
    ("hash-max-ziplist-value", NONNEG),
    ("hll-sparse-max-bytes", Kind::Size),
    ("hz", Kind::Int { min: 1, max: 500 }),
    ("ignore-warnings", Kind::Text),
    ("include", Kind::FileOnly),
    ("io-threads", Kind::Int { min: 1, max: 128 }),
    ("io-threads-do-reads", Kind::Bool),
    ("jemalloc-bg-thread", Kind::Bool),
    ("latency-monitor-threshold", NONNEG),
    ("latency-tracking", Kind::Bool),
    ("latency-tracking-info-percentiles", Kind::Words),
    ("lazyfree-lazy-eviction", Kind::Bool),
    ("lazyfree-lazy-expire", Kind::Bool),
    ("lazyfree-lazy-server-del", Kind::Bool),
    ("lazyfree-lazy-user-del", Kind::Bool),
    ("lazyfree-lazy-user-flush", Kind::Bool),
    ("lfu-decay-time", NONNEG),
    ("lfu-log-factor", NONNEG),
    ("list-compress-depth", NONNEG),
    ("list-max-listpack-size", ANYINT),
    ("list-max-ziplist-size", ANYINT),
    ("loadmodule", Kind::FileOnly),
    ("logfile", Kind::Text),
    (
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
    ),
    ("lua-time-limit", NONNEG),
    ("masterauth", Kind::Text),
    ("masteruser", Kind::Text),
    (
        "maxclients",
        Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
    ),
    ("maxmemory", Kind::Size),
    ("maxmemory-clients", Kind::SizeOrPercent),
    (
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
    ),
    ("maxmemory-policy", Kind::Enum(POLICIES)),
    ("maxmemory-samples", Kind::Int { min: 1, max: 64 }),
    ("min-replicas-max-lag", NONNEG),
    ("min-replicas-to-write", NONNEG),
    ("min-slaves-max-lag", NONNEG),
    ("min-slaves-to-write", NONNEG),
    ("no-appendfsync-on-rewrite", Kind::Bool),
    ("notify-keyspace-events", Kind::KeyspaceEvents),
    (
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
    ),
    ("oom-score-adj-values", Kind::Words),
    ("pidfile", Kind::Text),
    ("port", PORT),
    ("proc-title-template", Kind::Text),
    (
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
    ),
    ("protected-mode", Kind::Bool),
    ("proto-max-bulk-len", Kind::Size),
    ("rdb-del-sync-files", Kind::Bool),
    ("rdb-save-incremental-fsync", Kind::Bool),
    ("rdbchecksum", Kind::Bool),
    ("rdbcompression", Kind::Bool),
    ("rename-command", Kind::FileOnly),
    ("repl-backlog-size", Kind::Size),
    ("repl-backlog-ttl", NONNEG),
    ("repl-disable-tcp-nodelay", Kind::Bool),
    (
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
    ),
    ("repl-diskless-sync", Kind::Bool),
    ("repl-diskless-sync-delay", NONNEG),
    ("repl-diskless-sync-max-replicas", NONNEG),
    (
        "repl-ping-replica-period",
        Kind::Int {
            min: 1,
            max: I64MAX,
        },
    ),
    (
        "repl-ping-slave-period",
        Kind::Int {
            min: 1,
            max: I64MAX,
        },
    ),
    (
        "repl-timeout",
        Kind::Int {
            min: 1,
            max: I64MAX,
        },
    ),
    ("replica-announce-ip", Kind::Text),
    ("replica-announce-port", PORT),
    ("replica-announced", Kind::Bool),
    ("replica-ignore-disk-write-errors", Kind::Bool),
    ("replica-ignore-maxmemory", Kind::Bool),
    ("replica-lazy-flush", Kind::Bool),
    ("replica-priority", NONNEG),
    ("replica-read-only", Kind::Bool),
    ("replica-serve-stale-data", Kind::Bool),
    ("replicaof", Kind::HostPort),
    ("requirepass", Kind::Text),
    (
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
    ),
    ("save", Kind::Save),
    ("server_cpulist", Kind::Text),
    ("set-max-intset-entries", NONNEG),
    ("set-proc-title", Kind::Bool),
    ("shutdown-on-sigint", Kind::EnumSet(SHUTDOWN)),
    ("shutdown-on-sigterm", Kind::EnumSet(SHUTDOWN)),
    ("shutdown-timeout", NONNEG),
    ("slave-announce-ip", Kind::Text),
    ("slave-announce-port", PORT),
    ("slave-ignore-maxmemory", Kind::Bool),
    ("slave-lazy-flush", Kind::Bool),
    ("slave-priority", NONNEG),
    ("slave-read-only", Kind::Bool),
    ("slave-serve-stale-data", Kind::Bool),
    ("slaveof", Kind::HostPort),
    ("slowlog-log-slower-than", ANYINT),
    ("slowlog-max-len", NONNEG),
    ("socket-mark-id", NONNEG),
    ("stop-writes-on-bgsave-error", Kind::Bool),
    ("stream-node-max-bytes", Kind::Size),
    ("stream-node-max-entries", NONNEG),
    (
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
    ),
    ("syslog-enabled", Kind::Bool),
    ("syslog-facility", Kind::Enum(SYSLOG)),
    ("syslog-ident", Kind::Text),
    ("tcp-backlog", NONNEG),
    ("tcp-keepalive", NONNEG),
    ("timeout", NONNEG),
    ("tls-auth-clients", Kind::Enum(&["yes", "no", "optional"])),
    ("tls-ca-cert-dir", Kind::Text),
    ("tls-ca-cert-file", Kind::Text),
    ("tls-cert-file", Kind::Text),
    ("tls-ciphers", Kind::Text),
    ("tls-ciphersuites", Kind::Text),
    ("tls-client-cert-file", Kind::Text),
    ("tls-client-key-file", Kind::Text),
    ("tls-client-key-file-pass", Kind::Text),
    ("tls-cluster", Kind::Bool),
    ("tls-dh-params-file", Kind::Text),
    ("tls-key-file", Kind::Text),
    ("tls-key-file-pass", Kind::Text),
    ("tls-port", PORT),
    ("tls-prefer-server-ciphers", Kind::Bool),
    ("tls-protocols", Kind::Words),
    ("tls-replication", Kind::Bool),
    ("tls-session-cache-size", NONNEG),
    ("tls-session-cache-timeout", NONNEG),
    ("tls-session-caching", Kind::Bool),
    ("tracking-table-max-keys", NONNEG),
    ("unixsocket", Kind::Text),
    ("unixsocketperm", Kind::Octal),
    ("user", Kind::FileOnly),
    ("zset-max-listpack-entries", NONNEG),
    ("zset-max-listpack-value", NONNEG),
    ("zset-max-ziplist-entries", NONNEG),
    ("zset-max-ziplist-value", NONNEG),
];

/// Kinds of the parameters Redis 7.0 lacks and a later supported server has (Redis 8.0, Valkey
/// 8.1), as their config.c parses them; ranges checked against the servers' CONFIG SET errors.
/// A parameter of a server's table that is in neither list is free text ([`Kind::Words`]).
pub const NEWER: &[(&str, Kind)] = &[
    ("active-defrag-cycle-us", NONNEG),
    ("aof-rewrite-cpulist", Kind::Text),
    ("availability-zone", Kind::Text),
    ("bgsave-cpulist", Kind::Text),
    ("bio-cpulist", Kind::Text),
    ("cluster-announce-client-ipv4", Kind::Text),
    ("cluster-announce-client-ipv6", Kind::Text),
    ("cluster-announce-human-nodename", Kind::Text),
    ("cluster-blacklist-ttl", NONNEG),
    (
        "cluster-compatibility-sample-ratio",
        Kind::Int { min: 0, max: 100 },
    ),
    (
        "cluster-manual-failover-timeout",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("cluster-slot-stats-enabled", Kind::Bool),
    ("commandlog-execution-slower-than", ANYINT),
    ("commandlog-large-reply-max-len", NONNEG),
    ("commandlog-large-request-max-len", NONNEG),
    ("commandlog-reply-larger-than", ANYINT),
    ("commandlog-request-larger-than", ANYINT),
    ("commandlog-slow-execution-max-len", NONNEG),
    ("dual-channel-replication-enabled", Kind::Bool),
    ("extended-redis-compatibility", Kind::Bool),
    ("hide-user-data-from-log", Kind::Bool),
    ("import-mode", Kind::Bool),
    ("locale-collate", Kind::Text),
    ("log-format", Kind::Enum(&["legacy", "logfmt"])),
    (
        "log-timestamp-format",
        Kind::Enum(&["legacy", "iso8601", "milliseconds"]),
    ),
    (
        "max-new-connections-per-cycle",
        Kind::Int { min: 1, max: 1000 },
    ),
    (
        "max-new-tls-connections-per-cycle",
        Kind::Int { min: 1, max: 1000 },
    ),
    ("prefetch-batch-max-size", Kind::Int { min: 0, max: 128 }),
    ("primaryauth", Kind::Text),
    ("primaryuser", Kind::Text),
    ("rdb-version-check", Kind::Enum(&["strict", "relaxed"])),
    ("rdma-bind", Kind::Words),
    ("rdma-port", PORT),
    ("rdma-rx-size", Kind::Size),
    ("replica-full-sync-buffer-limit", Kind::Size),
    ("server-cpulist", Kind::Text),
    ("set-max-listpack-entries", NONNEG),
    ("set-max-listpack-value", NONNEG),
    ("unixsocketgroup", Kind::Text),
];

/// Directives redis.conf takes that CONFIG GET never lists: read at start, many times over.
pub const FILE_ONLY: &[&str] = &["include", "loadmodule", "rename-command", "user"];

/// The servers whose directives are known: each one's `CONFIG GET *` names (data/config-*.txt,
/// generated from the real server and compared with one by the tests), plus [`FILE_ONLY`], plus
/// the parameters it hides from `CONFIG GET *` but still reads and answers by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Redis70,
    Redis80,
    Valkey81,
}

/// Every supported server, oldest first.
pub const VERSIONS: [Version; 3] = [Version::Redis70, Version::Redis80, Version::Valkey81];

/// The values `server_version` takes (`auto`: from the server, see the module's doc).
pub const SERVER_VERSION_CHOICES: [&str; 6] = [
    "auto",
    "redis",
    "valkey",
    "redis-7.0",
    "redis-8.0",
    "valkey-8.1",
];

impl Version {
    /// `redis-7.0`, `redis-8.0`, `valkey-8.1`: the names `server_version` takes.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Version::Redis70 => "redis-7.0",
            Version::Redis80 => "redis-8.0",
            Version::Valkey81 => "valkey-8.1",
        }
    }

    /// `Redis 7.0`, as messages name it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Version::Redis70 => "Redis 7.0",
            Version::Redis80 => "Redis 8.0",
            Version::Valkey81 => "Valkey 8.1",
        }
    }

    /// A `server_version` value; `redis` and `valkey` are the newest of each. `None` for `auto`
    /// or an unknown value (the argument spec's choices refuse those first).
    #[must_use]
    pub fn from_key(key: &str) -> Option<Version> {
        match key {
            "redis-7.0" => Some(Version::Redis70),
            "redis" | "redis-8.0" => Some(Version::Redis80),
            "valkey" | "valkey-8.1" => Some(Version::Valkey81),
            _ => None,
        }
    }

    /// The table for a server that says it is `flavour` (`redis`, `valkey`) `version`: its own
    /// when supported, else the closest older one of its flavour (`exact` false: the caller says
    /// so), Redis 7.0 for anything older.
    #[must_use]
    pub fn for_server(flavour: &str, version: &str) -> (Version, bool) {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if flavour.eq_ignore_ascii_case("valkey") {
            return (Version::Valkey81, (major, minor) == (8, 1));
        }
        match (major, minor) {
            (7, 0) => (Version::Redis70, true),
            (8, 0) => (Version::Redis80, true),
            (m, _) if m >= 8 => (Version::Redis80, false),
            _ => (Version::Redis70, false),
        }
    }

    fn table(self) -> &'static str {
        match self {
            Version::Redis70 => include_str!("../data/config-redis-7.0.txt"),
            Version::Redis80 => include_str!("../data/config-redis-8.0.txt"),
            Version::Valkey81 => include_str!("../data/config-valkey-8.1.txt"),
        }
    }

    /// The names `CONFIG GET *` lists on this server.
    pub fn config_names(self) -> impl Iterator<Item = &'static str> {
        self.table()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// Parameters the server reads from its file and answers `CONFIG GET <name>` for, though
    /// `CONFIG GET *` leaves them out (checked on the real servers by tests/versions.rs).
    #[must_use]
    pub fn hidden(self) -> &'static [&'static str] {
        match self {
            Version::Redis70 => &[],
            Version::Redis80 | Version::Valkey81 => &["aof-disable-auto-gc"],
        }
    }

    /// Deprecated parameters the server still reads from a file but ignores (CONFIG GET and
    /// CONFIG SET no longer know them): refused, since the line would do nothing.
    #[must_use]
    pub fn ignored(self) -> &'static [&'static str] {
        match self {
            Version::Redis70 => &[],
            Version::Redis80 => &["io-threads-do-reads"],
            Version::Valkey81 => &["dynamic-hz", "io-threads-do-reads"],
        }
    }

    /// Every directive name this server reads in redis.conf (and does something with).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.config_names()
            .chain(FILE_ONLY.iter().copied())
            .chain(self.hidden().iter().copied())
    }

    /// Whether this server reads `name` (lower case) in redis.conf.
    #[must_use]
    pub fn knows(self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// The other supported servers that read `name`, for "Valkey 8.1 has it".
    #[must_use]
    pub fn others_with(self, name: &str) -> Vec<Version> {
        VERSIONS
            .iter()
            .copied()
            .filter(|v| *v != self && v.knows(name))
            .collect()
    }
}

/// The general directives redis-sentinel reads from sentinel.conf (besides `sentinel ...` lines).
pub const SENTINEL_GENERAL: &[&str] = &[
    "port",
    "bind",
    "protected-mode",
    "daemonize",
    "supervised",
    "pidfile",
    "logfile",
    "loglevel",
    "dir",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "requirepass",
    "user",
    "aclfile",
    "acllog-max-len",
    "rename-command",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-replication",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-dh-params-file",
    "unixsocket",
    "unixsocketperm",
    "tcp-keepalive",
    "tcp-backlog",
    "timeout",
    "maxclients",
    "hz",
    "latency-tracking-info-percentiles",
];

/// `sentinel <sub> ...` lines: the sub-command and how many arguments follow it (min, max).
pub const SENTINEL_SUB: &[(&str, usize, usize)] = &[
    ("monitor", 4, 4),
    ("down-after-milliseconds", 2, 2),
    ("failover-timeout", 2, 2),
    ("parallel-syncs", 2, 2),
    ("auth-pass", 2, 2),
    ("auth-user", 2, 2),
    ("notification-script", 2, 2),
    ("client-reconfig-script", 2, 2),
    ("rename-command", 3, 3),
    ("master-reboot-down-after-period", 2, 2),
    ("announce-ip", 1, 1),
    ("announce-port", 1, 1),
    ("announce-hostnames", 1, 1),
    ("resolve-hostnames", 1, 1),
    ("deny-scripts-reconfig", 1, 1),
    ("sentinel-user", 1, 1),
    ("sentinel-pass", 1, 1),
    ("myid", 1, 1),
    ("current-epoch", 1, 1),
    ("config-epoch", 2, 2),
    ("leader-epoch", 2, 2),
    ("known-replica", 3, 3),
    ("known-slave", 3, 3),
    ("known-sentinel", 4, 4),
];

#[must_use]
pub fn kind(name: &str) -> Option<Kind> {
    REDIS
        .iter()
        .chain(NEWER)
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// The kind of a directive that `version` reads: its known kind, or free text for a parameter
/// the tables know no kind of (the running server still checks the value).
#[must_use]
pub fn kind_on(version: Version, name: &str) -> Option<Kind> {
    if version.knows(name) {
        Some(kind(name).unwrap_or(Kind::Words))
    } else {
        None
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest known name, when it is close enough to be a typo (or differs only in `_`/`-`).
#[must_use]
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let dashed = name.replace('_', "-").to_lowercase();
    candidates
        .map(|c| (distance(&dashed, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Redis' memtoull: a number with an optional unit.
///
/// # Errors
/// Not a size.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let s = v.trim().to_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "`{v}` is not a size (use bytes or a unit: 512mb, 4gb, 100kb)"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{v}` is not a size (use bytes or a unit: 512mb, 4gb, 100kb)"))?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{v}` is too large"))
}

fn parse_int(v: &str) -> Result<i64, String> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| format!("`{v}` is not an integer"))
}

const EVENT_CHARS: &str = "KEg$lshzxetmdnA";

/// Checks one value (the text after the directive name on a line).
///
/// # Errors
/// Why the value is wrong, naming the value.
pub fn check_value(kind: Kind, v: &str) -> Result<(), String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match kind {
        Kind::Bool => match unquote(v).to_lowercase().as_str() {
            "yes" | "no" => Ok(()),
            _ => Err(format!("`{v}` is not yes or no")),
        },
        Kind::Int { min, max } => {
            let n = parse_int(unquote(v))?;
            if n < min || n > max {
                Err(format!("{n} is out of range {min}-{max}"))
            } else {
                Ok(())
            }
        }
        Kind::Size => parse_size(unquote(v)).map(|_| ()),
        Kind::SizeOrPercent => {
            let u = unquote(v);
            match u.strip_suffix('%') {
                Some(p) => parse_int(p).and_then(|n| {
                    if (0..=100).contains(&n) {
                        Ok(())
                    } else {
                        Err(format!("{u} is not a percentage 0-100%"))
                    }
                }),
                None => parse_size(u).map(|_| ()),
            }
        }
        Kind::Enum(choices) => {
            let u = unquote(v).to_lowercase();
            if choices.contains(&u.as_str()) {
                Ok(())
            } else {
                Err(format!("`{v}` is not one of: {}", choices.join(", ")))
            }
        }
        Kind::EnumSet(choices) => {
            for w in &words {
                if !choices.contains(&w.to_lowercase().as_str()) {
                    return Err(format!("`{w}` is not one of: {}", choices.join(", ")));
                }
            }
            Ok(())
        }
        Kind::Text | Kind::Words | Kind::FileOnly => {
            if v.contains('\n') {
                Err("a value cannot span lines".into())
            } else {
                Ok(())
            }
        }
        Kind::Save => {
            if unquote(v).is_empty() {
                return Ok(());
            }
            if !words.len().is_multiple_of(2) {
                return Err(format!(
                    "`{v}` must be pairs of <seconds> <changes> (or \"\" to disable)"
                ));
            }
            for w in words {
                parse_int(w)?;
            }
            Ok(())
        }
        Kind::ClientOutputBufferLimit => {
            if !words.len().is_multiple_of(4) || words.is_empty() {
                return Err(format!("`{v}` must be <class> <hard> <soft> <seconds> (class normal, replica or pubsub)"));
            }
            for chunk in words.chunks(4) {
                if !["normal", "replica", "slave", "pubsub"]
                    .contains(&chunk[0].to_lowercase().as_str())
                {
                    return Err(format!(
                        "`{}` is not a client class (normal, replica, pubsub)",
                        chunk[0]
                    ));
                }
                parse_size(chunk[1])?;
                parse_size(chunk[2])?;
                parse_int(chunk[3])?;
            }
            Ok(())
        }
        Kind::KeyspaceEvents => {
            let u = unquote(v);
            match u.chars().find(|c| !EVENT_CHARS.contains(*c)) {
                Some(c) => Err(format!(
                    "`{u}` has `{c}`, not a keyspace event class (one of {EVENT_CHARS})"
                )),
                None => Ok(()),
            }
        }
        Kind::HostPort => {
            let host_port = words.len() == 2 && words[1].parse::<u16>().is_ok_and(|p| p > 0);
            let no_one = words.len() == 2
                && words[0].eq_ignore_ascii_case("no")
                && words[1].eq_ignore_ascii_case("one");
            if host_port || no_one {
                Ok(())
            } else {
                Err(format!("`{v}` must be <host> <port>"))
            }
        }
        Kind::Octal => {
            let u = unquote(v);
            if !u.is_empty() && u.chars().all(|c| c.is_digit(8)) && u.len() <= 4 {
                Ok(())
            } else {
                Err(format!("`{u}` is not an octal mode such as 700"))
            }
        }
    }
}

/// Strips one level of double quotes (`""` → empty).
#[must_use]
pub fn unquote(v: &str) -> &str {
    let t = v.trim();
    t.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
}

/// The value as CONFIG GET reports it, for comparing with a running server.
#[must_use]
pub fn normalize(kind: Kind, v: &str) -> String {
    let u = unquote(v);
    match kind {
        Kind::Bool | Kind::Enum(_) => u.to_lowercase(),
        Kind::Int { .. } => parse_int(u).map_or_else(|_| u.to_string(), |n| n.to_string()),
        Kind::Size => parse_size(u).map_or_else(|_| u.to_string(), |n| n.to_string()),
        Kind::SizeOrPercent => {
            if u.ends_with('%') {
                u.to_string()
            } else {
                parse_size(u).map_or_else(|_| u.to_string(), |n| n.to_string())
            }
        }
        Kind::ClientOutputBufferLimit => v
            .split_whitespace()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| {
                let class = if c[0].eq_ignore_ascii_case("replica") {
                    "slave".to_string()
                } else {
                    c[0].to_lowercase()
                };
                let size =
                    |s: &str| parse_size(s).map_or_else(|_| s.to_string(), |n| n.to_string());
                format!(
                    "{class} {} {} {}",
                    size(c[1]),
                    size(c.get(2).copied().unwrap_or("0")),
                    c.get(3).copied().unwrap_or("0")
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        Kind::KeyspaceEvents => {
            // CONFIG GET answers in its own letter order; compare as a set with A expanded.
            let mut set: Vec<char> = u
                .chars()
                .flat_map(|c| {
                    if c == 'A' {
                        "g$lshzxetd".chars().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            set.into_iter().collect()
        }
        Kind::Octal => u.trim_start_matches('0').to_string(),
        Kind::EnumSet(_) | Kind::Words | Kind::Save | Kind::HostPort => u
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
        Kind::Text | Kind::FileOnly => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in REDIS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn sizes_follow_memtoull() {
        assert_eq!(parse_size("4gb"), Ok(4 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("4G"), Ok(4_000_000_000));
        assert_eq!(parse_size("512mb"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err_and(|e| e.contains("`lots` is not a size")));
        assert!(parse_size("1.5gb").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn values_are_checked() {
        assert!(check_value(PORT, "70000").is_err_and(|e| e == "70000 is out of range 0-65535"));
        assert!(check_value(Kind::Bool, "True").is_err());
        assert!(check_value(Kind::Bool, "yes").is_ok());
        assert!(check_value(Kind::Enum(POLICIES), "allkeys-lru").is_ok());
        assert!(check_value(Kind::Enum(POLICIES), "lru").is_err_and(|e| e.contains("noeviction")));
        assert!(check_value(Kind::Save, "\"\"").is_ok());
        assert!(check_value(Kind::Save, "3600 1 300").is_err());
        assert!(check_value(Kind::ClientOutputBufferLimit, "replica 256mb 64mb 60").is_ok());
        assert!(check_value(Kind::ClientOutputBufferLimit, "vip 1 1 1").is_err());
        assert!(check_value(Kind::KeyspaceEvents, "Ex").is_ok());
        assert!(check_value(Kind::KeyspaceEvents, "Eq").is_err());
        assert!(check_value(Kind::HostPort, "10.0.0.1 6379").is_ok());
        assert!(check_value(Kind::HostPort, "10.0.0.1").is_err());
        assert!(check_value(Kind::SizeOrPercent, "10%").is_ok());
        assert!(check_value(Kind::Octal, "700").is_ok());
        assert!(check_value(Kind::Octal, "800").is_err());
    }

    #[test]
    fn normalized_like_config_get() {
        assert_eq!(normalize(Kind::Size, "4gb"), "4294967296");
        assert_eq!(normalize(Kind::Bool, "YES"), "yes");
        assert_eq!(normalize(Kind::Save, "3600  1 300 100"), "3600 1 300 100");
        assert_eq!(normalize(Kind::Save, "\"\""), "");
        assert_eq!(
            normalize(Kind::ClientOutputBufferLimit, "replica 256mb 64mb 60"),
            "slave 268435456 67108864 60"
        );
        assert_eq!(
            normalize(Kind::KeyspaceEvents, "Ex"),
            normalize(Kind::KeyspaceEvents, "xE")
        );
        assert_eq!(
            normalize(Kind::KeyspaceEvents, "KA"),
            normalize(Kind::KeyspaceEvents, "Kg$lshzxetd")
        );
        assert_eq!(normalize(Kind::Octal, "0700"), "700");
    }

    #[test]
    fn suggestions() {
        let names = || REDIS.iter().map(|(n, _)| *n);
        assert_eq!(
            did_you_mean("maxmemory-polcy", names()),
            Some("maxmemory-policy")
        );
        assert_eq!(
            did_you_mean("maxmemory_policy", names()),
            Some("maxmemory-policy")
        );
        assert_eq!(did_you_mean("appendonyl", names()), Some("appendonly"));
        assert_eq!(did_you_mean("completely-different", names()), None);
    }
}
