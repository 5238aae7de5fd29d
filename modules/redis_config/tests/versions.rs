//! redis_config against Redis 7.0 (this machine's), Redis 8.0 and Valkey 8.1 (Debian 13's,
//! unpacked by `python3 tests/hosts/servers.py build`): validation follows the server the file
//! is for. A build that is missing is skipped with a SKIP line (a failure with
//! CF_REQUIRE_SERVERS=1, as tests/test_server_versions.py runs this file under CI).

use redis_utils::testing::{free_port, ServerBuild};
use redis_utils::testing::{Flavour, RedisProcess};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const PW: &str = "vers-Pass-5c1e";
const VALKEY_ONLY: &str = "dual-channel-replication-enabled";
const REDIS8_ONLY: &str = "replica-full-sync-buffer-limit";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_config"))
}

/// Runs the module with `path_prefix` put before PATH (so `auto` finds that build's server
/// binary, as it would on a host with it installed).
fn run_with_path(args: &Value, path_prefix: Option<&Path>) -> (Value, i32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("args");
    std::fs::write(&file, args.to_string()).expect("write args");
    let mut cmd = Command::new(bin());
    cmd.arg(&file);
    if let Some(p) = path_prefix {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", p.display()));
    }
    let out = cmd.output().expect("run module");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    (v, out.status.code().unwrap_or(-1))
}

fn run(args: &Value) -> (Value, i32) {
    run_with_path(args, None)
}

/// The directory holding the build's server binary, for PATH; None for the machine's own.
fn bin_dir(b: &ServerBuild) -> Option<PathBuf> {
    b.server
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// What the error names for the build (`Redis 7.0`, `Redis 8.0`, `Valkey 8.1`).
fn table_label(b: &ServerBuild) -> String {
    let mm: Vec<&str> = b.version.split('.').take(2).collect();
    format!("{} {}", b.product(), mm.join("."))
}

fn key(b: &ServerBuild) -> &str {
    b.name.as_str()
}

fn local(dir: &Path, port: u16) -> Value {
    json!({
        "port": port,
        "requirepass": PW,
        "save": [],
        "dir": dir.display().to_string(),
        "logfile": dir.join("redis.log").display().to_string(),
        "pidfile": dir.join("redis.pid").display().to_string(),
    })
}

fn with(base: &Value, extra: Value) -> Value {
    let mut a = base.clone();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        a[k] = v;
    }
    a
}

fn config_get(s: &RedisProcess, name: &str) -> String {
    let raw = s.raw(&["CONFIG", "GET", name]);
    // `*0`: no such parameter.
    let last = raw.lines().last().unwrap_or("");
    if last == "*0" {
        String::new()
    } else {
        last.to_string()
    }
}

/// Which build has the directive (by what the servers are, not by the module's tables).
fn has(b: &ServerBuild, directive: &str) -> bool {
    match directive {
        VALKEY_ONLY => b.flavour == Flavour::Valkey,
        REDIS8_ONLY => b.flavour == Flavour::Redis && b.version.starts_with("8."),
        _ => true,
    }
}

/// The other builds' label expected in the refusal ("Valkey 8.1 has it").
fn owner(directive: &str) -> &'static str {
    match directive {
        VALKEY_ONLY => "Valkey 8.1 has it",
        _ => "Redis 8.0 has it",
    }
}

/// File mode: the directive passes for the build that has it (by server_version and by the
/// installed binary), and is refused naming the build otherwise, leaving the file untouched.
fn file_mode_follows_the_server(directive: &str, value: &str) {
    for b in ServerBuild::supported() {
        let dir = tempfile::tempdir().expect("tmp");
        // Debian's names: /etc/valkey/valkey.conf makes `auto` prefer valkey-server when both
        // are installed (this machine has redis-server 7.0 in /usr/bin).
        let path = dir.path().join(match b.flavour {
            Flavour::Valkey => "valkey.conf",
            Flavour::Redis => "redis.conf",
        });
        let settings = local(dir.path(), free_port());
        let base = json!({"path": path, "settings": settings, "server_version": key(&b)});
        let (v, code) = run(&base);
        assert_eq!(code, 0, "{}: {v}", b.name);
        let before = std::fs::read(&path).expect("read");
        let mut s2 = settings.clone();
        s2[directive] = json!(value);
        for (how, args, prefix) in [
            ("server_version", with(&base, json!({"settings": s2})), None),
            (
                "auto (installed binary)",
                with(&base, json!({"settings": s2, "server_version": "auto"})),
                bin_dir(&b),
            ),
        ] {
            let (v, _) = run_with_path(&args, prefix.as_deref());
            if has(&b, directive) {
                assert_eq!(v["failed"], json!(null), "{} {how}: {v}", b.name);
                assert_eq!(v["server_version"]["table"], json!(b.name), "{v}");
                let text = std::fs::read_to_string(&path).expect("read");
                assert!(text.contains(&format!("{directive} {value}")), "{text}");
                std::fs::write(&path, &before).expect("restore");
            } else {
                assert_eq!(v["failed"], json!(true), "{} {how}: {v}", b.name);
                let msg = v["msg"].as_str().unwrap_or("");
                let expect = format!("`{directive}` is not a directive of {}", table_label(&b));
                assert!(msg.contains(&expect), "{} {how}: {msg}", b.name);
                assert!(msg.contains(owner(directive)), "{msg}");
                if how.starts_with("auto") {
                    // The installed binary is named, with its full version.
                    assert!(
                        msg.contains(&format!("{} {} (the installed", b.product(), b.version)),
                        "{msg}"
                    );
                }
                assert_eq!(std::fs::read(&path).expect("read"), before, "{}", b.name);
            }
        }
    }
}

/// Live mode (server_version: auto): the running server decides, by INFO and CONFIG GET.
fn live_mode_follows_the_server(directive: &str, value: &str, reads_back: &str) {
    for b in ServerBuild::supported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("redis.conf");
        let port = free_port();
        let settings = local(dir.path(), port);
        let base = json!({"path": path, "settings": settings, "server_version": key(&b)});
        let (v, code) = run(&base);
        assert_eq!(code, 0, "{}: {v}", b.name);
        let server = RedisProcess::from_config(
            b.server.to_str().expect("utf-8 path"),
            &path,
            port,
            Some(PW),
        );
        let before = std::fs::read(&path).expect("read");
        let mut s2 = settings.clone();
        s2[directive] = json!(value);
        let args = json!({"path": path, "settings": s2, "apply": "live",
                          "login_host": "127.0.0.1", "login_port": port, "login_password": PW});
        let (v, _) = run(&args);
        if has(&b, directive) {
            assert_eq!(v["failed"], json!(null), "{}: {v}", b.name);
            assert_eq!(v["applied"], json!([directive]), "{}: {v}", b.name);
            assert_eq!(config_get(&server, directive), reads_back, "{}", b.name);
            assert_eq!(v["server_version"]["table"], json!(b.name), "{v}");
            let label = v["server_version"]["checked_against"]
                .as_str()
                .unwrap_or("");
            assert!(
                label.starts_with(&format!(
                    "{} {} (running at 127.0.0.1:{port})",
                    b.product(),
                    b.version
                )),
                "{label}"
            );
            // Idempotent.
            let (v, _) = run(&args);
            assert_eq!(v["changed"], json!(false), "{}: {v}", b.name);
        } else {
            assert_eq!(v["failed"], json!(true), "{}: {v}", b.name);
            let msg = v["msg"].as_str().unwrap_or("");
            let expect = format!(
                "`{directive}` is not a directive of {} {} (running at 127.0.0.1:{port}); {}",
                b.product(),
                b.version,
                owner(directive)
            );
            assert!(
                msg.contains(&expect),
                "{}: {msg}\nexpected: {expect}",
                b.name
            );
            assert_eq!(std::fs::read(&path).expect("read"), before, "{}", b.name);
            assert_eq!(config_get(&server, directive), "", "{}", b.name);
        }
    }
}

// See: issue 16 item 2
#[test]
fn issue16_item2_valkey_only_directive_in_a_file_follows_the_server() {
    file_mode_follows_the_server(VALKEY_ONLY, "yes");
}

// See: issue 16 item 2
#[test]
fn issue16_item2_valkey_only_directive_live_follows_the_running_server() {
    live_mode_follows_the_server(VALKEY_ONLY, "yes", "yes");
}

// See: issue 16 item 2
#[test]
fn issue16_item2_redis8_only_directive_in_a_file_follows_the_server() {
    file_mode_follows_the_server(REDIS8_ONLY, "2mb");
}

// See: issue 16 item 2
#[test]
fn issue16_item2_redis8_only_directive_live_follows_the_running_server() {
    live_mode_follows_the_server(REDIS8_ONLY, "2mb", "2097152");
}

// See: issue 16 item 2
#[test]
fn issue16_item2_live_maxmemory_on_every_server() {
    for b in ServerBuild::supported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("redis.conf");
        let port = free_port();
        let settings = local(dir.path(), port);
        let (v, code) =
            run(&json!({"path": path, "settings": settings, "server_version": key(&b)}));
        assert_eq!(code, 0, "{v}");
        let server = RedisProcess::from_config(
            b.server.to_str().expect("utf-8 path"),
            &path,
            port,
            Some(PW),
        );
        let pid = server.pid();
        let args = json!({"path": path, "settings": with(&settings, json!({"maxmemory": "96mb"})),
                          "apply": "live", "login_port": port, "login_password": PW});
        let (v, _) = run(&args);
        assert_eq!(v["failed"], json!(null), "{}: {v}", b.name);
        assert_eq!(v["applied"], json!(["maxmemory"]), "{}: {v}", b.name);
        assert_eq!(config_get(&server, "maxmemory"), "100663296", "{}", b.name);
        assert_eq!(server.pid(), pid);
        let (v, _) = run(&args);
        assert_eq!(v["changed"], json!(false), "{}: {v}", b.name);
    }
}

// See: issue 16 item 2
#[test]
fn issue16_item2_primaryauth_is_masked_and_accepted_on_valkey() {
    let Some(b) = ServerBuild::require("valkey-8.1") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    let secret = "prim-Secret-77a";
    let settings = with(
        &local(dir.path(), free_port()),
        json!({"primaryauth": secret}),
    );
    let (v, code) = run(
        &json!({"path": path, "settings": settings, "server_version": key(&b),
                                "_ansible_diff": true}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(!v.to_string().contains(secret), "{v}");
    // Live: CONFIG SET primaryauth on the running Valkey, the old and new passwords masked.
    let port = settings["port"].as_u64().expect("port");
    let server = RedisProcess::from_config(
        b.server.to_str().expect("utf-8 path"),
        &path,
        u16::try_from(port).expect("port"),
        Some(PW),
    );
    let newer = "prim-Newer-88b";
    let (v, _) = run(
        &json!({"path": path, "apply": "live", "login_host": "127.0.0.1",
                             "login_port": port, "login_password": PW, "_ansible_diff": true,
                             "settings": with(&settings, json!({"primaryauth": newer}))}),
    );
    assert_eq!(v["failed"], json!(null), "{v}");
    assert_eq!(v["applied"], json!(["primaryauth"]), "{v}");
    assert!(
        !v.to_string().contains(secret) && !v.to_string().contains(newer),
        "{v}"
    );
    assert_eq!(config_get(&server, "primaryauth"), newer);
    drop(server);
    let settings = with(&settings, json!({"primaryauth": newer}));
    // Given twice under both names: the same parameter.
    let both = with(&settings, json!({"masterauth": "other-Secret-1"}));
    let (v, _) = run(&json!({"path": path, "settings": both, "server_version": key(&b)}));
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(!v.to_string().contains(newer), "{v}");
    assert!(!v.to_string().contains("other-Secret-1"), "{v}");
}

/// The names a started server's `CONFIG GET *` lists.
fn config_get_star(s: &RedisProcess) -> BTreeSet<String> {
    let raw = s.raw(&["CONFIG", "GET", "*"]);
    // *N, then $len / name / $len / value ...: every other bulk string is a name.
    let bulks: Vec<&str> = raw
        .split("\r\n")
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1])
        .collect();
    bulks.iter().step_by(2).map(|s| (*s).to_string()).collect()
}

// See: issue 16 item 2
#[test]
fn issue16_item2_each_table_is_its_servers_config_get_star() {
    use redis_config::directives::{Version, FILE_ONLY};
    for b in ServerBuild::supported() {
        let v = Version::from_key(&b.name).expect("a table per supported build");
        let s = RedisProcess::server_of(&b, &[&format!("requirepass {PW}")]);
        let live = config_get_star(&s);
        let table: BTreeSet<String> = v.config_names().map(str::to_string).collect();
        assert!(live.len() > 150, "{}: {live:?}", b.name);
        assert_eq!(
            table,
            live,
            "{}: data/config-{}.txt differs from CONFIG GET * (only in table: {:?}; only on the server: {:?})",
            b.name,
            b.name,
            table.difference(&live).collect::<Vec<_>>(),
            live.difference(&table).collect::<Vec<_>>()
        );
        // Hidden ones answer by name; ignored ones do not.
        for h in v.hidden() {
            assert_ne!(
                config_get(&s, h),
                "",
                "{}: {h} should answer CONFIG GET",
                b.name
            );
        }
        for i in v.ignored() {
            assert_eq!(config_get(&s, i), "", "{}: {i} should be gone", b.name);
        }
        // File-only names are no parameters.
        for f in FILE_ONLY {
            assert!(!live.contains(*f), "{f}");
        }
    }
}

// See: issue 16 item 2
#[test]
fn issue16_item2_commands_follow_the_server_in_rename_command_and_acl_rules() {
    // COMMANDLOG is Valkey 8.1's, HGETEX Redis 8.0's.
    for b in ServerBuild::supported() {
        for (cmd, owner) in [("commandlog", "valkey-8.1"), ("hgetex", "redis-8.0")] {
            check_commands_on(&b, cmd, owner);
        }
    }
}

fn check_commands_on(b: &ServerBuild, cmd: &str, owner: &str) {
    {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("redis.conf");
        let port = free_port();
        let base = local(dir.path(), port);
        let settings = with(
            &base,
            json!({"rename-command": [format!("{cmd} \"\"")],
                   "user": [format!("default on >{PW} ~* &* +@all"), format!("app on >{PW} ~* +{cmd}")]}),
        );
        let args = json!({"path": path, "settings": settings, "server_version": key(b)});
        let (v, _) = run(&args);
        if b.name == owner {
            assert_eq!(v["failed"], json!(null), "{}: {v}", b.name);
            // The server itself starts on that file.
            let s =
                RedisProcess::from_config(b.server.to_str().expect("utf-8"), &path, port, Some(PW));
            assert!(
                s.raw(&["ACL", "GETUSER", "app"]).contains(cmd),
                "{}",
                b.name
            );
            // Live: nothing to change, nothing refused.
            let live = json!({"path": path, "settings": settings, "apply": "live",
                              "login_host": "127.0.0.1", "login_port": port, "login_password": PW});
            let (v, _) = run(&live);
            assert_eq!(v["failed"], json!(null), "{}: {v}", b.name);
            assert_eq!(v["changed"], json!(false), "{}: {v}", b.name);
        } else {
            assert_eq!(v["failed"], json!(true), "{}: {v}", b.name);
            let msg = v["msg"].as_str().unwrap_or("");
            // Redis 7.0 refuses the ACL rule first; the newer ones the rename.
            let rename = format!(
                "rename-command {cmd}`: {} has no such command",
                table_label(b)
            );
            let acl = format!("`{cmd}` is not a command of {}", table_label(b));
            assert!(
                msg.contains(&rename) || msg.contains(&acl),
                "{} {cmd}: {msg}",
                b.name
            );
            assert!(!std::path::Path::new(&path).exists(), "{}", b.name);
        }
    }
}

// See: issue 16 item 2
#[test]
fn issue16_item2_command_tables_are_the_servers_command_list() {
    use redis_config::commands::names_on;
    use redis_config::conf::Dialect;
    use redis_config::directives::Version;
    for b in ServerBuild::supported() {
        let v = Version::from_key(&b.name).expect("table");
        let s = RedisProcess::server_of(&b, &[&format!("requirepass {PW}")]);
        let raw = s.raw(&["COMMAND", "LIST"]);
        let live: BTreeSet<String> = raw
            .split("\r\n")
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0].starts_with('$'))
            .map(|w| w[1].to_lowercase())
            .collect();
        let table: BTreeSet<String> = names_on(Dialect::Redis, v).map(str::to_string).collect();
        assert!(live.len() > 300, "{}: {live:?}", b.name);
        assert_eq!(
            table,
            live,
            "{}: only in the table {:?}, only on the server {:?}",
            b.name,
            table.difference(&live).collect::<Vec<_>>(),
            live.difference(&table).collect::<Vec<_>>()
        );
    }
}
