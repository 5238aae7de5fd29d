//! redis_service against real redis-server / redis-sentinel processes that the module itself
//! starts, driven through its args file exactly as Ansible drives it. Every test stops what it
//! started: `Instance`'s Drop kills (by pid) every Redis process a result or the pidfile named.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn server_lifecycle_keeps_data_and_is_idempotent() {
    let i = Instance::server(&[]);
    let v = i.ok("started", json!({}));
    assert_eq!(v["changed"], json!(true));
    assert_eq!(v["running"], json!(true));
    assert_eq!(v["manager"], json!("direct"));
    assert_eq!(v["role"], json!("master"));
    assert!(
        v["redis_version"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(v["uptime_in_seconds"].is_i64(), "{v}");
    let pid = pid_of(&v);
    assert_eq!(v["actions"], json!([format!("started pid {pid}")]));
    assert!(alive(pid));
    assert_eq!(
        pgrp(pid),
        Some(pid),
        "the server runs in its own process group"
    );
    assert_eq!(
        std::fs::read_to_string(i.pidfile())
            .map(|s| s.trim().to_string())
            .ok(),
        Some(pid.to_string()),
        "the pidfile from the config names the process"
    );
    assert_eq!(
        v["address"],
        json!(format!("127.0.0.1:{}", i.port)),
        "address from the config"
    );

    let v = i.ok("started", json!({}));
    assert_eq!(
        (v["changed"].clone(), pid_of(&v)),
        (json!(false), pid),
        "{v}"
    );
    assert_eq!(v["actions"], json!([]));

    let v = i.ok("status", json!({}));
    assert_eq!(
        (v["changed"].clone(), v["running"].clone(), pid_of(&v)),
        (json!(false), json!(true), pid)
    );

    // Check mode reports the stop and does nothing.
    let v = i.ok("stopped", json!({"_ansible_check_mode": true}));
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(alive(pid), "check mode must not stop the server");
    assert_eq!(i.cmd(&["PING"]), "+PONG");

    i.populate(100_000);
    assert_eq!(i.cmd(&["DBSIZE"]), ":100000");

    let v = i.ok("stopped", json!({"shutdown": "save"}));
    assert_eq!(v["changed"], json!(true));
    assert_eq!(v["running"], json!(false));
    assert_eq!(v["pid"], Value::Null);
    assert_eq!(v["actions"], json!(["SHUTDOWN SAVE"]));
    assert!(!alive(pid));
    assert!(!i.pidfile().exists(), "pidfile removed on shutdown");
    assert!(
        i.dir.path().join("dump.rdb").exists(),
        "SHUTDOWN SAVE wrote the RDB"
    );

    let v = i.ok("stopped", json!({}));
    assert_eq!(
        (v["changed"].clone(), v["running"].clone()),
        (json!(false), json!(false))
    );
    let v = i.ok("status", json!({}));
    assert_eq!(v["running"], json!(false));

    let v = i.ok("started", json!({}));
    let pid2 = pid_of(&v);
    assert_ne!(pid2, pid);
    assert_eq!(i.cmd(&["DBSIZE"]), ":100000", "data kept across stop/start");

    let v = i.ok("restarted", json!({}));
    let pid3 = pid_of(&v);
    assert_eq!(v["changed"], json!(true));
    assert_ne!(pid3, pid2, "restarted returns the new pid");
    assert!(!alive(pid2) && alive(pid3));
    assert_eq!(
        v["actions"],
        json!(["SHUTDOWN SAVE", format!("started pid {pid3}")])
    );
    assert_eq!(i.cmd(&["DBSIZE"]), ":100000");

    // Restarted in check mode: changed, nothing done.
    let v = i.ok("restarted", json!({"_ansible_check_mode": true}));
    assert_eq!((v["changed"].clone(), pid_of(&v)), (json!(true), pid3));
    assert!(alive(pid3));

    let v = i.ok("stopped", json!({"shutdown": "nosave"}));
    assert_eq!(v["actions"], json!(["SHUTDOWN NOSAVE"]));
    assert!(!alive(pid3));
}

#[test]
fn check_mode_start_does_nothing() {
    let i = Instance::server(&[]);
    let v = i.ok("started", json!({"_ansible_check_mode": true}));
    assert_eq!(v["changed"], json!(true));
    assert_eq!(v["running"], json!(false));
    assert_eq!(
        v["actions"],
        json!([format!("would start redis-server@{}", i.name)])
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", i.port)).is_err(),
        "nothing may listen"
    );
    assert!(!i.pidfile().exists());
}

#[test]
fn stale_pidfile_is_replaced_with_a_warning() {
    let i = Instance::server(&[]);
    // A pid that surely belonged to a process that is gone now.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = i32::try_from(child.id()).expect("pid");
    child.wait().expect("wait");
    std::fs::write(i.pidfile(), format!("{dead}\n")).expect("write pidfile");

    let v = i.ok("status", json!({}));
    assert_eq!(v["running"], json!(false));
    assert!(v["warnings"].to_string().contains("not running"), "{v}");

    let v = i.ok("started", json!({}));
    let pid = pid_of(&v);
    assert_eq!(v["changed"], json!(true));
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains(&format!("names pid {dead}, which is not running")),
        "{v}"
    );
    assert_eq!(
        v["actions"][0],
        json!(format!("removed stale pidfile {}", i.pidfile().display()))
    );
    assert_eq!(
        std::fs::read_to_string(i.pidfile())
            .map(|s| s.trim().to_string())
            .ok(),
        Some(pid.to_string())
    );

    // A pidfile naming a live process that is not Redis (this test) is stale too.
    i.ok("stopped", json!({}));
    std::fs::write(i.pidfile(), format!("{}\n", std::process::id())).expect("write pidfile");
    let v = i.ok("started", json!({}));
    assert!(
        v["warnings"].to_string().contains("which is not Redis"),
        "{v}"
    );
    assert!(
        alive(i32::try_from(std::process::id()).expect("pid")),
        "never signal a foreign pid"
    );
    i.ok("stopped", json!({}));
}

#[test]
fn port_in_use_fails_clearly_and_starts_nothing() {
    let i = Instance::server(&[]);
    let holder = TcpListener::bind(("127.0.0.1", i.port)).expect("bind the port first");
    let v = i.fail("started", json!({}));
    let m = msg(&v);
    assert!(
        m.contains(&format!("127.0.0.1:{} ", i.port)) && m.contains("already in use"),
        "{m}"
    );
    assert!(
        m.contains(&format!("pid {}", std::process::id())),
        "names the holder: {m}"
    );
    assert!(m.contains("nothing was started"), "{m}");
    assert_eq!(v["running"], json!(false));
    assert!(!i.pidfile().exists(), "nothing started");
    assert!(
        !i.dir.path().join("redis.log").exists(),
        "redis-server never ran"
    );
    drop(holder);
}

#[test]
fn bad_input_fails_before_doing_anything() {
    let i = Instance::server(&[]);
    let missing = i.dir.path().join("nope.conf");
    let v = i.fail("started", json!({"config": missing}));
    assert_eq!(
        msg(&v),
        format!("config file {} does not exist", missing.display())
    );

    let (v, code) = run_module(&bin(), &json!({"name": "x", "state": "started"}));
    assert_eq!(code, 1);
    assert_eq!(
        msg(&v),
        "state is started but all of the following are missing: config"
    );

    let (v, _) = run_module(
        &bin(),
        &json!({"name": "x", "state": "started", "kind": "cluster", "config": i.config()}),
    );
    assert_eq!(
        msg(&v),
        "value of kind must be one of: server, sentinel, got: cluster"
    );

    let v = i.fail("started", json!({"binary": "/nonexistent/redis-server"}));
    assert!(msg(&v).contains("/nonexistent/redis-server"), "{v}");

    let v = i.fail("started", json!({"name": "a/b"}));
    assert!(msg(&v).contains("instance name"), "{v}");

    let v = i.fail("started", json!({"wait_timeout": 0}));
    assert!(
        msg(&v).starts_with("`wait_timeout` must be more than 0 seconds"),
        "{v}"
    );

    let v = i.fail("status", json!({"config": null}));
    assert!(msg(&v).contains("needs config or pidfile"), "{v}");

    // No systemd in this sandbox: manager=systemd says so instead of guessing.
    if !Path::new("/run/systemd/system").exists() {
        let v = i.fail("status", json!({"manager": "systemd"}));
        assert!(
            msg(&v).contains("systemd is not running on this host"),
            "{v}"
        );
        assert!(msg(&v).contains("manager=direct"), "{v}");
        // auto falls back to direct.
        let v = i.ok("status", json!({"manager": "auto"}));
        assert_eq!(v["manager"], json!("direct"));
    }
}

#[test]
fn missing_binary_on_path_is_named() {
    let i = Instance::server(&[]);
    let args = i.args("started", json!({}));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("args");
    std::fs::write(&path, args.to_string()).expect("write args");
    let out = Command::new(bin())
        .arg(&path)
        .env("PATH", "/nonexistent")
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["failed"], json!(true));
    assert!(
        msg(&v).starts_with("cannot find redis-server on PATH (/nonexistent)"),
        "{v}"
    );
}

#[test]
fn config_error_fails_with_redis_own_message() {
    let i = Instance::server(&["bogus-directive yes", &format!("masterauth {PW}")]);
    let v = i.fail("started", json!({}));
    let m = msg(&v);
    assert!(
        m.contains("exited while starting") && m.contains("nothing is running"),
        "{m}"
    );
    assert!(
        m.contains("FATAL CONFIG FILE ERROR") && m.contains("bogus-directive"),
        "stderr in msg: {m}"
    );
    assert_eq!(v["running"], json!(false));
}

#[test]
fn dies_while_loading_fails_with_the_log_tail() {
    let i = Instance::server(&[]);
    std::fs::write(
        i.dir.path().join("redis.log"),
        "old line from an earlier run\n",
    )
    .expect("log");
    std::fs::write(
        i.dir.path().join("dump.rdb"),
        b"REDIS0009 this is not an rdb file",
    )
    .expect("rdb");
    let v = i.fail("started", json!({}));
    let m = msg(&v);
    assert!(m.contains("exited while starting"), "{m}");
    assert!(
        m.contains("Last lines of") && m.contains("redis.log"),
        "{m}"
    );
    assert!(
        m.contains("loading") || m.contains("RDB"),
        "the reason from the log: {m}"
    );
    assert!(
        !m.contains("old line from an earlier run"),
        "only this start's log lines: {m}"
    );
    assert!(!i.pidfile().exists());
}

#[test]
fn wrong_password_for_shutdown_fails_clearly_and_leaves_it_running() {
    let i = Instance::server(&[]);
    let pid = pid_of(&i.ok("started", json!({})));
    let v = i.fail("stopped", json!({"login_password": "not-the-password"}));
    let m = msg(&v);
    assert!(
        m.contains("WRONGPASS") && m.contains("login_password") && m.contains("left running"),
        "{m}"
    );
    assert!(!v.to_string().contains("not-the-password"), "{v}");
    assert_eq!((v["running"].clone(), pid_of(&v)), (json!(true), pid));
    assert!(alive(pid));
    // The config's requirepass is used when login_password is not set.
    let v = i.ok("stopped", json!({}));
    assert_eq!(v["actions"], json!(["SHUTDOWN SAVE"]));
    assert!(!alive(pid));
}

#[test]
fn unreachable_server_is_stopped_with_sigterm_from_the_pidfile() {
    let i = Instance::server(&[]);
    let pid = pid_of(&i.ok("started", json!({})));
    // An explicit login_port where nothing listens: SHUTDOWN cannot be sent.
    let closed = free_port();
    let v = i.ok(
        "stopped",
        json!({"login_port": closed, "login_host": "127.0.0.1"}),
    );
    assert_eq!(v["actions"], json!([format!("SIGTERM pid {pid}")]), "{v}");
    assert!(
        v["warnings"].to_string().contains("connection refused"),
        "{v}"
    );
    assert!(!alive(pid));
}

#[test]
fn force_kill_after_kills_a_hung_server() {
    let i = Instance::server(&[]);
    let pid = pid_of(&i.ok("started", json!({})));
    sig(pid, nix::sys::signal::Signal::SIGSTOP);
    let t0 = Instant::now();
    let v = i.ok(
        "stopped",
        json!({"force_kill_after": 0.5, "connect_timeout": 0.5, "wait_timeout": 10}),
    );
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
    let actions = v["actions"].to_string();
    assert!(
        actions.contains(&format!("SIGTERM pid {pid}"))
            && actions.contains(&format!("SIGKILL pid {pid}")),
        "{v}"
    );
    assert!(v["warnings"].to_string().contains("SIGKILL"), "{v}");
    assert!(!alive(pid));
    assert!(
        !i.pidfile().exists(),
        "the module removes the pidfile a killed server left"
    );
}

#[test]
fn stop_without_force_kill_times_out_clearly() {
    let i = Instance::server(&[]);
    let pid = pid_of(&i.ok("started", json!({})));
    sig(pid, nix::sys::signal::Signal::SIGSTOP);
    let v = i.fail(
        "stopped",
        json!({"connect_timeout": 0.3, "wait_timeout": 0.5}),
    );
    assert!(
        msg(&v).contains("still running") && msg(&v).contains("force_kill_after"),
        "{v}"
    );
    assert_eq!(v["running"], json!(true));
    sig(pid, nix::sys::signal::Signal::SIGCONT);
}

#[test]
fn sentinel_start_and_stop() {
    let i = Instance::sentinel();
    let v = i.ok("started", json!({}));
    let pid = pid_of(&v);
    assert_eq!(v["role"], json!("sentinel"), "{v}");
    assert_eq!(v["kind"], json!("sentinel"));
    assert_eq!(i.cmd(&["PING"]), "+PONG");
    assert_eq!(i.ok("started", json!({}))["changed"], json!(false));
    // Sentinel rewrites its config at start; under the umask the module gives it (027) the file,
    // which can hold auth-pass, is not readable by others (redis-sentinel 7.0 keeps no mode).
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::set_permissions(
            i.config(),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .expect("chmod");
        i.cmd(&["SENTINEL", "FLUSHCONFIG"]);
        let text = std::fs::read_to_string(i.config()).expect("read");
        assert!(text.contains("# Generated by CONFIG REWRITE"), "{text}");
        let mode = std::fs::metadata(i.config()).expect("meta").mode() & 0o777;
        assert_eq!(
            mode & 0o007,
            0,
            "sentinel.conf is {mode:o} after Sentinel's rewrite"
        );
    }
    // redis-server with --sentinel works too.
    let v = i.ok("stopped", json!({}));
    assert_eq!(v["actions"], json!(["SHUTDOWN NOSAVE"]));
    assert!(!alive(pid));
    let redis_server = which::which("redis-server").expect("redis-server");
    let v = i.ok("started", json!({"binary": redis_server}));
    assert_eq!(v["role"], json!("sentinel"), "{v}");
    i.ok("stopped", json!({}));
    assert!(!alive(pid_of(&v)));
}

#[test]
fn tls_only_server_is_reached_on_its_tls_port_with_its_own_certificates() {
    let i = Instance::server(&[]);
    let d = i.dir.path();
    make_test_pki(d);
    let tls_port = i.port;
    let conf = std::fs::read_to_string(i.config())
        .expect("read config")
        .replace(&format!("port {tls_port}\n"), "port 0\n");
    std::fs::write(
        i.config(),
        format!(
            "{conf}tls-port {tls_port}\ntls-cert-file {0}/server.crt\ntls-key-file {0}/server.key\ntls-ca-cert-file {0}/ca.crt\n",
            d.display()
        ),
    )
    .expect("write config");
    let v = i.ok("started", json!({}));
    let pid = pid_of(&v);
    assert_eq!(
        v["redis_version"].as_str().map(str::is_empty),
        Some(false),
        "INFO over TLS: {v}"
    );
    assert_eq!(v["address"], json!(format!("127.0.0.1:{tls_port}")));
    let v = i.ok("stopped", json!({}));
    assert_eq!(
        v["actions"],
        json!(["SHUTDOWN SAVE"]),
        "SHUTDOWN over TLS: {v}"
    );
    assert!(!alive(pid));
}

#[test]
fn root_starts_the_server_as_an_unprivileged_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can start a server as another user");
        return;
    }
    let i = Instance::server(&[]);
    // nobody must be able to write the pidfile, log and data in the instance's directory.
    std::fs::set_permissions(
        i.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let v = i.ok("started", json!({"user": "nobody"}));
    let pid = pid_of(&v);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw().to_string())
        .unwrap_or_default();
    assert_eq!(uid, nobody, "redis-server runs as uid {uid}");
    i.ok("stopped", json!({}));
    let v = i.fail("started", json!({"user": "no-such-user-x"}));
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("user `no-such-user-x` does not exist")),
        "{v}"
    );
}
