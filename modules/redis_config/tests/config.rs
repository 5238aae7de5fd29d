//! redis_config against real redis-server / redis-sentinel, driven through its args file.

use redis_utils::testing::{free_port, run_module, RedisProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const PW: &str = "cfg-Pass-91b3";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_config"))
}

fn run(args: &Value) -> (Value, i32) {
    run_module(&bin(), args)
}

fn with(base: &Value, extra: Value) -> Value {
    let mut a = base.clone();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        a[k] = v;
    }
    a
}

/// Settings every test server needs: its port, and files inside the test's temp dir.
fn local(dir: &Path, port: u16) -> Value {
    json!({
        "port": port,
        "dir": dir.display().to_string(),
        "logfile": dir.join("redis.log").display().to_string(),
        "pidfile": dir.join("redis.pid").display().to_string(),
    })
}

fn merge(a: Value, b: Value) -> Value {
    with(&a, b)
}

fn config_get(s: &RedisProcess, name: &str) -> String {
    let raw = s.raw(&["CONFIG", "GET", name]);
    // *2 $n name $m value (after +OK for AUTH when a password is set)
    raw.lines().last().unwrap_or("").to_string()
}

#[test]
fn every_profile_renders_validates_starts_and_matches_config_get() {
    let expect: &[(&str, &[(&str, &str)])] = &[
        (
            "cache",
            &[
                ("maxmemory-policy", "allkeys-lru"),
                ("save", ""),
                ("appendonly", "no"),
            ],
        ),
        (
            "session",
            &[
                ("maxmemory-policy", "volatile-lru"),
                ("appendonly", "yes"),
                ("appendfsync", "everysec"),
                ("notify-keyspace-events", "xE"),
            ],
        ),
        (
            "queue",
            &[("maxmemory-policy", "noeviction"), ("appendonly", "yes")],
        ),
        (
            "persistent",
            &[
                ("save", "3600 1 300 100 60 10000"),
                ("appendonly", "yes"),
                ("maxmemory-policy", "noeviction"),
            ],
        ),
    ];
    for (profile, checks) in expect {
        let dir = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let path = dir.path().join("redis.conf");
        let settings = merge(
            local(dir.path(), port),
            json!({"maxmemory": "64mb", "requirepass": PW}),
        );
        let (v, code) = run(&json!({"path": path, "profile": profile, "settings": settings}));
        assert_eq!(code, 0, "{profile}: {v}");
        assert_eq!(v["changed"], json!(true));
        let server = RedisProcess::from_config("redis-server", &path, port, Some(PW));
        for (name, want) in *checks {
            assert_eq!(
                config_get(&server, name),
                *want,
                "{profile}: CONFIG GET {name}"
            );
        }
        assert_eq!(config_get(&server, "maxmemory"), "67108864", "{profile}");
        assert_eq!(
            config_get(&server, "bind"),
            "127.0.0.1 -::1",
            "secure default bind"
        );
        assert_eq!(config_get(&server, "protected-mode"), "yes");
        assert!(!v.to_string().contains(PW), "password leaked: {v}");
    }
}

#[test]
fn live_apply_changes_memory_without_restart_and_reports_restart_for_port() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let path = dir.path().join("redis.conf");
    let base = json!({"path": path, "profile": "cache", "login_port": port, "login_password": PW, "apply": "live"});
    let settings = merge(
        local(dir.path(), port),
        json!({"requirepass": PW, "maxmemory": "64mb"}),
    );
    let (v, code) = run(&with(&base, json!({"settings": settings, "apply": "file"})));
    assert_eq!(code, 0, "{v}");
    let server = RedisProcess::from_config("redis-server", &path, port, Some(PW));
    let pid_before = server.pid();

    // maxmemory and the policy change live.
    let settings2 = merge(
        settings.clone(),
        json!({"maxmemory": "128mb", "maxmemory-policy": "allkeys-lfu"}),
    );
    let args2 = with(&base, json!({"settings": settings2}));
    let (v, code) = run(&args2);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], json!(true));
    assert_eq!(v["applied"], json!(["maxmemory", "maxmemory-policy"]));
    assert_eq!(v["restart_required"], json!(false), "{v}");
    assert_eq!(config_get(&server, "maxmemory"), "134217728");
    assert_eq!(config_get(&server, "maxmemory-policy"), "allkeys-lfu");
    assert_eq!(server.pid(), pid_before);
    assert!(std::fs::read_to_string(&path)
        .expect("read")
        .contains("maxmemory 128mb"));

    // The same input again: nothing to do for the file or the server.
    let (v, _) = run(&args2);
    assert_eq!(v["changed"], json!(false), "{v}");
    assert_eq!(v["applied"], json!([]));

    // Someone changed the server by hand: live apply puts it back, file untouched.
    let _ = server.raw(&["CONFIG", "SET", "maxmemory", "1mb"]);
    let (v, _) = run(&args2);
    assert_eq!(
        (v["changed"].clone(), v["file_changed"].clone()),
        (json!(true), json!(false)),
        "{v}"
    );
    assert_eq!(config_get(&server, "maxmemory"), "134217728");

    // A port change and an immutable directive: file written, restart reported, server untouched.
    let new_port = free_port();
    let settings3 = merge(settings2, json!({"port": new_port, "databases": 32}));
    let (v, code) = run(&with(&base, json!({"settings": settings3})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restart_required"], json!(true));
    let reasons = v["restart_reasons"].to_string();
    assert!(
        reasons.contains(&format!("port: {port} -> {new_port}")),
        "{reasons}"
    );
    assert!(
        reasons.contains("databases: 16 -> 32 (Redis: can't set immutable config)"),
        "{reasons}"
    );
    assert_eq!(config_get(&server, "port"), port.to_string());
    assert_eq!(config_get(&server, "databases"), "16");
}

#[test]
fn check_mode_writes_nothing_and_agrees_with_the_real_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let path = dir.path().join("redis.conf");
    let settings = merge(local(dir.path(), port), json!({"requirepass": PW}));
    let base =
        json!({"path": path, "settings": settings, "login_port": port, "login_password": PW});
    run(&base);
    let server = RedisProcess::from_config("redis-server", &path, port, Some(PW));
    let before = std::fs::read(&path).expect("read");

    let changed_settings = merge(settings, json!({"maxmemory": "32mb", "databases": 8}));
    let args = with(
        &base,
        json!({"settings": changed_settings, "apply": "live", "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    let (check, code) = run(&args);
    assert_eq!(code, 0, "{check}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "check mode wrote the file"
    );
    assert_eq!(
        config_get(&server, "maxmemory"),
        "0",
        "check mode changed the server"
    );
    assert_eq!(check["applied"], json!(["maxmemory"]));
    assert!(check["restart_reasons"].to_string().contains("databases"));
    let diff = check["diff"].to_string();
    assert!(
        diff.contains("maxmemory 32mb") && diff.contains("requirepass ********"),
        "{diff}"
    );
    assert!(!check.to_string().contains(PW));

    let (real, _) = run(&with(&args, json!({"_ansible_check_mode": false})));
    assert_eq!(real["changed"], check["changed"]);
    assert_eq!(real["applied"], check["applied"]);
    assert_eq!(real["restart_required"], check["restart_required"]);
    assert_eq!(config_get(&server, "maxmemory"), "33554432");
}

#[test]
fn bad_input_fails_clearly_and_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    let good = json!({"path": path, "settings": {"port": 7001}});
    run(&good);
    let before = std::fs::read(&path).expect("read");
    let cases = [
        (
            json!({"maxmemory-polcy": "allkeys-lru"}),
            "unknown directive `maxmemory-polcy` (did you mean `maxmemory-policy`?)",
        ),
        (
            json!({"maxmemory": "lots"}),
            "invalid value for `maxmemory`: `lots` is not a size",
        ),
        (
            json!({"port": 70000}),
            "invalid value for `port`: 70000 is out of range 0-65535",
        ),
        (
            json!({"maxmemory-policy": "sometimes"}),
            "invalid value for `maxmemory-policy`: `sometimes` is not one of",
        ),
        (
            json!({"bind": "0.0.0.0"}),
            "refusing to bind redis to 0.0.0.0 (beyond loopback) while the `default` user needs no password",
        ),
        (
            json!({"cluster-enabled": true, "replicaof": "10.0.0.1 6379"}),
            "`cluster-enabled yes` contradicts `replicaof 10.0.0.1 6379`",
        ),
        (
            json!({"bind": {"nested": 1}}),
            "settings.bind: a value must be",
        ),
    ];
    for (settings, want) in cases {
        let (v, code) = run(&json!({"path": path, "settings": settings}));
        assert_eq!(code, 1, "{settings}: {v}");
        assert!(
            v["msg"].as_str().is_some_and(|m| m.contains(want)),
            "{settings}: want {want:?}, got {v}"
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "{settings} changed the file"
        );
    }
    // Non-loopback with a password is fine; allow_insecure lets an operator take the risk.
    let (v, code) = run(
        &json!({"path": path, "settings": {"bind": "0.0.0.0", "requirepass": PW}, "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
    let (v, code) = run(
        &json!({"path": path, "settings": {"bind": "0.0.0.0"}, "allow_insecure": true, "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
    // Connection problems during live apply: clear, and nothing written.
    let (v, code) = run(
        &json!({"path": path, "settings": {"port": 7002}, "apply": "live", "login_port": free_port()}),
    );
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("connection refused")),
        "{v}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn wrong_password_for_live_apply_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let path = dir.path().join("redis.conf");
    let settings = merge(local(dir.path(), port), json!({"requirepass": PW}));
    run(&json!({"path": path, "settings": settings}));
    let _server = RedisProcess::from_config("redis-server", &path, port, Some(PW));
    let before = std::fs::read(&path).expect("read");
    let (v, code) = run(
        &json!({"path": path, "settings": merge(settings, json!({"maxmemory": "1mb"})), "apply": "live", "login_port": port, "login_password": "wrong-one"}),
    );
    assert_eq!(code, 1);
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("WRONGPASS")),
        "{v}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn idempotent_with_mode_backup_and_no_secret_anywhere() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let args = json!({"path": path, "settings": {"requirepass": PW, "masterauth": PW, "user": ["app on >app-secret-7 ~app:* +@read"]}, "mode": "0600", "owner": user, "_ansible_diff": true});
    let (v, code) = run(&args);
    assert_eq!((code, v["changed"].clone()), (0, json!(true)), "{v}");
    assert_eq!(
        std::fs::metadata(&path).expect("meta").mode() & 0o7777,
        0o600
    );
    let text = v.to_string();
    assert!(
        !text.contains(PW) && !text.contains("app-secret-7"),
        "secret in output: {text}"
    );
    let (v, _) = run(&args);
    assert_eq!(v["changed"], json!(false), "second run: {v}");

    // Only the mode differs: fixed without rewriting.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let (v, _) = run(&args);
    assert_eq!(
        (v["changed"].clone(), v["file_changed"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        std::fs::metadata(&path).expect("meta").mode() & 0o7777,
        0o600
    );

    // A changed password with backup: the backup keeps the old file, the diff shows neither password.
    let (v, _) = run(&with(
        &args,
        json!({"settings": {"requirepass": "new-Pass-22"}, "backup": true}),
    ));
    let backup = v["backup_file"].as_str().unwrap_or("").to_string();
    assert!(backup.ends_with('~') && !backup.contains(PW), "{v}");
    assert!(std::fs::read_to_string(&backup)
        .expect("backup")
        .contains(PW));
    let out = v.to_string();
    assert!(!out.contains(PW) && !out.contains("new-Pass-22"), "{out}");
}

#[test]
fn sentinel_conf_keeps_sentinel_state_and_failovers() {
    let master = RedisProcess::server(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let path = dir.path().join("sentinel.conf");
    let args = json!({
        "path": path,
        "template": "sentinel",
        "settings": {"port": port, "dir": dir.path().display().to_string(), "sentinel resolve-hostnames": true},
        "monitors": [{"name": "mymaster", "host": "127.0.0.1", "port": master.port, "quorum": 1, "auth_pass": "mon-Pass-3", "down_after_milliseconds": 5000}],
    });
    let (v, code) = run(&args);
    assert_eq!(code, 0, "{v}");
    assert!(!v.to_string().contains("mon-Pass-3"));
    // redis-sentinel rewrites its file with the process umask: started with 027 (as our systemd
    // unit and redis_service do), the rewrite keeps 0640.
    let wrapper = dir.path().join("sentinel-umask027.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\numask 027\nexec redis-sentinel \"$@\"\n",
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let sentinel = RedisProcess::from_config(&wrapper.display().to_string(), &path, port, None);
    let reply = sentinel.raw(&["SENTINEL", "MASTER", "mymaster"]);
    assert!(reply.contains(&master.port.to_string()), "{reply}");

    // Sentinel appended its state; running again changes nothing and keeps that state.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.contains("# Generated by CONFIG REWRITE") && text.contains("sentinel myid"),
        "{text}"
    );
    let (v, _) = run(&args);
    assert_eq!(v["changed"], json!(false), "{v}");
    assert!(
        text.contains("dir \"/"),
        "Sentinel re-quotes dir; the compare must not care"
    );

    // Sentinel under umask 022 leaves its file world-readable (auth-pass!): put 0640 back.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let (v, _) = run(&args);
    assert_eq!(
        (v["changed"].clone(), v["file_changed"].clone()),
        (json!(true), json!(false)),
        "{v}"
    );

    // A changed setting rewrites our part and keeps Sentinel's block.
    let (v, _) = run(&with(
        &args,
        json!({"monitors": [{"name": "mymaster", "host": "127.0.0.1", "port": master.port, "quorum": 1, "auth_pass": "mon-Pass-3", "down_after_milliseconds": 6000}]}),
    ));
    assert_eq!(v["changed"], json!(true));
    let text2 = std::fs::read_to_string(&path).expect("read");
    assert!(
        text2.contains("sentinel down-after-milliseconds mymaster 6000")
            && text2.contains("sentinel myid"),
        "{text2}"
    );

    // After a failover (config-epoch > 0, monitor rewritten), the new master's address is kept.
    let failed_over = text2
        .replace(
            &format!("sentinel monitor mymaster 127.0.0.1 {} 1", master.port),
            "sentinel monitor mymaster 127.0.0.1 7999 1",
        )
        .replace(
            "sentinel config-epoch mymaster 0",
            "sentinel config-epoch mymaster 1",
        );
    drop(sentinel);
    std::fs::write(&path, &failed_over).expect("write");
    let (v, code) = run(&with(
        &args,
        json!({"monitors": [{"name": "mymaster", "host": "127.0.0.1", "port": master.port, "quorum": 1, "auth_pass": "mon-Pass-3", "down_after_milliseconds": 6000}]}),
    ));
    assert_eq!(code, 0, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("failed over mymaster to 127.0.0.1:7999"),
        "{v}"
    );
    assert!(std::fs::read_to_string(&path)
        .expect("read")
        .contains("sentinel monitor mymaster 127.0.0.1 7999 1"));
}

#[test]
fn placeholder_and_custom_templates() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("legacy.conf.in");
    std::fs::write(
        &src,
        "bind 127.0.0.1\nport ##PORT##\nappendonly ##APPENDONLY##\n",
    )
    .expect("write");
    let path = dir.path().join("redis.conf");
    let (v, code) = run(
        &json!({"path": path, "src": src, "placeholders": true, "settings": {"port": 7005, "appendonly": true}}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "bind 127.0.0.1\nport 7005\nappendonly yes\n"
    );
    let (v, code) =
        run(&json!({"path": path, "src": src, "placeholders": true, "settings": {"port": 7005}}));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("##APPENDONLY##")),
        "{v}"
    );

    let j2 = dir.path().join("custom.j2");
    std::fs::write(&j2, "bind 127.0.0.1\nport {{ redis_settings.port }}\nmaxmemory {{ redis_settings['maxmemory'] }}\n").expect("write");
    let (v, code) = run(&json!({"path": path, "src": j2, "settings": {"maxmemory": "lots"}}));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("`lots` is not a size") && m.contains("line 3")),
        "{v}"
    );
}
