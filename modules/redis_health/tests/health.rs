//! redis_health against real redis-server / redis-sentinel processes, driven through its args
//! file exactly as Ansible drives it, and through its command-line mode.

use redis_utils::testing::{free_port, make_test_pki, run_module, RedisProcess};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "health-pw-5f2a9c";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_health"))
}

fn run(args: &Value) -> (Value, i32) {
    run_module(&bin(), args)
}

fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn password_protected_standalone_is_ok_and_password_never_printed() {
    let s = RedisProcess::server(&[&format!("requirepass {PW}"), "maxmemory 64mb"]);
    let (v, code) = run(&json!({
        "login_port": s.port.to_string(),
        "login_password": PW,
        "login_host": "127.0.0.1",
        "_ansible_check_mode": false,
        "_ansible_verbosity": 4,
    }));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], json!(false));
    assert_eq!(v["status"], json!("ok"), "{v}");
    assert_eq!(v["role"], json!("master"));
    for c in [
        "ping",
        "info",
        "memory",
        "persistence",
        "replication",
        "clients",
        "keyspace",
    ] {
        assert_eq!(v["checks"][c]["status"], json!("ok"), "check {c}: {v}");
    }
    assert!(
        v["checks"].get("cluster").is_none(),
        "cluster check only on cluster nodes"
    );
    assert_eq!(v["info"]["tcp_port"], json!(s.port), "numbers are numbers");
    assert_eq!(v["info"]["maxmemory"], json!(64 * 1024 * 1024));
    assert_eq!(
        v["invocation"]["module_args"]["login_password"],
        json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    );
    assert!(!v.to_string().contains(PW), "password leaked: {v}");
}

#[test]
fn check_mode_gives_the_same_answer() {
    let s = RedisProcess::server(&[]);
    let args = |check: bool| json!({"login_port": s.port, "checks": ["ping", "memory"], "_ansible_check_mode": check});
    let (a, _) = run(&args(false));
    let (b, _) = run(&args(true));
    assert_eq!(a["status"], b["status"]);
    assert_eq!(b["changed"], json!(false));
    assert!(
        b.get("skipped").is_none(),
        "redis_health supports check mode: {b}"
    );
}

#[test]
fn wrong_password_and_missing_password_fail_clearly() {
    let s = RedisProcess::server(&[&format!("requirepass {PW}")]);
    let (v, code) = run(&json!({"login_port": s.port, "login_password": "not-the-password"}));
    assert_eq!(code, 1);
    assert_eq!(v["failed"], json!(true));
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(
        msg.contains("WRONGPASS") && msg.contains(&s.port.to_string()),
        "{msg}"
    );
    assert!(!v.to_string().contains("not-the-password"));

    let (v, _) = run(&json!({"login_port": s.port}));
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(
        msg.contains("NOAUTH") && msg.contains("login_password"),
        "{msg}"
    );
}

#[test]
fn acl_user_login() {
    let s = RedisProcess::server(&["user monitor on >mon-pw-1 +@all ~*", "user default off"]);
    let (v, code) =
        run(&json!({"login_port": s.port, "login_user": "monitor", "login_password": "mon-pw-1"}));
    assert_eq!((code, v["status"].clone()), (0, json!("ok")), "{v}");
}

#[test]
fn closed_port_is_critical_with_a_clear_message() {
    let port = free_port();
    let (v, code) = run(&json!({"login_port": port, "login_host": "127.0.0.1"}));
    assert_eq!(code, 1);
    assert_eq!(v["status"], json!("critical"));
    assert_eq!(v["checks"]["ping"]["status"], json!("critical"));
    assert_eq!(
        v["msg"],
        json!(format!("cannot connect to Redis at 127.0.0.1:{port}: connection refused (is the server running and listening on that address and port?)"))
    );
    // fail_on=never reports the verdict without failing the task.
    let (v, code) = run(&json!({"login_port": port, "fail_on": "never"}));
    assert_eq!(code, 0);
    assert!(v.get("failed").is_none());
    assert_eq!(v["status"], json!("critical"));
}

#[test]
fn bad_input_fails_before_connecting() {
    let cases = [
        (
            json!({"login_port": "notaport"}),
            "argument 'login_port' is of type str and we were unable to convert to int: \"'notaport'\" cannot be converted to an int",
        ),
        (json!({"login_port": 70000}), "login_port must be between 1 and 65535, got 70000"),
        (json!({"fail_on": "sometimes"}), "value of fail_on must be one of: critical, warning, never, got: sometimes"),
        (json!({"checks": "ping,disk"}), "value of checks must be one or more of: ping, info, memory, persistence, replication, clients, keyspace, sentinel, cluster, pubsub. Got no match for: disk"),
        (json!({"max_memory_percent": 150}), "max_memory_percent must be a percentage between 0 and 100, got 150"),
        (json!({"client_cert_file": "/tmp/c.pem"}), "parameters are required together: client_cert_file, client_key_file"),
    ];
    for (args, want) in cases {
        let (v, code) = run(&args);
        assert_eq!(code, 1, "{args}");
        assert_eq!(v["msg"], json!(want), "{args}");
    }
    let (v, _) = run(&json!({"foo": 1}));
    assert!(v["msg"]
        .as_str()
        .is_some_and(|m| m.starts_with("Unsupported parameters for (redis_health) module: foo. Supported parameters include: ca_certs, checks,")));
}

#[test]
fn master_with_replica_and_sentinel() {
    let master = RedisProcess::server(&[&format!("requirepass {PW}")]);
    let replica = RedisProcess::server(&[
        &format!("requirepass {PW}"),
        &format!("masterauth {PW}"),
        &format!("replicaof 127.0.0.1 {}", master.port),
    ]);
    let sentinel = RedisProcess::sentinel(&[
        &format!("sentinel monitor mymaster 127.0.0.1 {} 1", master.port),
        &format!("sentinel auth-pass mymaster {PW}"),
        "sentinel down-after-milliseconds mymaster 5000",
    ]);

    // The replica reports its link up once the first sync is done.
    let mut last = Value::Null;
    let synced = poll_until(Duration::from_secs(20), || {
        let (v, _) = run(&json!({"login_port": replica.port, "login_password": PW}));
        last = v;
        last["replication"]["master_link_status"] == json!("up")
    });
    assert!(synced, "replica never synced: {last}");
    assert_eq!(last["role"], json!("replica"));
    assert_eq!(last["status"], json!("ok"), "{last}");
    assert_eq!(last["replication"]["master_port"], json!(master.port));

    // The master's view lags the replica's: under load CI saw `wait_bgsave` here after the
    // replica already said its link was up. Poll it too.
    let (mut v, mut code) = (Value::Null, 0);
    let online = poll_until(Duration::from_secs(20), || {
        (v, code) =
            run(&json!({"login_port": master.port, "login_password": PW, "min_replicas": 1}));
        v["replication"]["replicas"][0]["state"] == json!("online")
    });
    assert!(online, "the master never saw its replica online: {v}");
    assert_eq!(code, 0, "{v}");
    let replicas = &v["replication"]["replicas"];
    assert_eq!(replicas[0]["port"], json!(replica.port), "{v}");
    assert_eq!(replicas[0]["state"], json!("online"));
    assert!(replicas[0]["lag"].is_number() && replicas[0]["offset"].is_number());
    assert_eq!(v["replication"]["connected_replicas"], json!(1));

    let (v, code) =
        run(&json!({"login_port": master.port, "login_password": PW, "expected_role": "replica"}));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("expected role replica, found master")),
        "{v}"
    );

    // Sentinel learns about the replica from the master's INFO within ~10 s.
    let known = poll_until(Duration::from_secs(25), || {
        let (v, _) = run(&json!({"login_port": sentinel.port, "sentinel_master_name": "mymaster"}));
        last = v;
        last["sentinel"]["masters"]["mymaster"]["replicas"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert!(known, "sentinel never listed the replica: {last}");
    let m = &last["sentinel"]["masters"]["mymaster"];
    assert_eq!(last["role"], json!("sentinel"));
    assert_eq!(last["status"], json!("ok"), "{last}");
    assert_eq!(m["port"], json!(master.port));
    assert_eq!(m["quorum"], json!(1));
    assert_eq!(m["ckquorum"]["ok"], json!(true));
    assert_eq!(m["replicas"][0]["port"], json!(replica.port));
    assert!(
        last["checks"].get("memory").is_none(),
        "a Sentinel gets the sentinel checks only"
    );

    let (v, code) = run(&json!({"login_port": sentinel.port, "sentinel_master_name": "nosuch"}));
    assert_eq!(code, 1);
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("nosuch")),
        "{v}"
    );

    // Asking a plain server for the sentinel check is a clear critical.
    let (v, _) =
        run(&json!({"login_port": master.port, "login_password": PW, "checks": ["sentinel"]}));
    assert!(
        v["checks"]["sentinel"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a Sentinel")),
        "{v}"
    );
}

#[test]
fn replica_whose_master_is_down_is_critical() {
    let dead = free_port();
    let replica = RedisProcess::server(&[&format!("replicaof 127.0.0.1 {dead}")]);
    let (v, code) = run(&json!({"login_port": replica.port}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], json!("critical"));
    assert_eq!(v["checks"]["replication"]["status"], json!("critical"));
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("master link to 127.0.0.1:{dead} is down")),
        "{msg}"
    );
    assert_eq!(v["replication"]["master_link_status"], json!("down"));
}

#[test]
fn memory_and_hit_rate_thresholds_warn_and_fail_on_warning() {
    let s = RedisProcess::server(&[]);
    let _ = s.raw(&["GET", "missing-key"]);
    let (v, code) = run(&json!({"login_port": s.port, "min_hit_rate": 90}));
    assert_eq!(
        code, 0,
        "a warning does not fail with fail_on=critical: {v}"
    );
    assert_eq!(v["status"], json!("warning"));
    assert_eq!(v["checks"]["keyspace"]["status"], json!("warning"));
    let (v, code) = run(&json!({"login_port": s.port, "min_hit_rate": 90, "fail_on": "warning"}));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("below min_hit_rate 90")),
        "{v}"
    );
}

#[test]
fn pubsub_channels_and_subscribers() {
    let s = RedisProcess::server(&[]);
    let mut sub = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    sub.write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
        .expect("subscribe");
    let mut buf = [0u8; 256];
    let _ = sub.read(&mut buf);
    let (v, _) = run(&json!({"login_port": s.port, "checks": ["pubsub"]}));
    assert_eq!(v["pubsub"]["channels"], json!({"news": 1}), "{v}");
    assert_eq!(v["pubsub"]["patterns"], json!(0));
}

#[test]
fn cluster_node_without_slots_is_critical_and_formed_cluster_is_ok() {
    let conf = |_: u16| {
        vec![
            "cluster-enabled yes",
            "cluster-node-timeout 2000",
            "cluster-config-file nodes.conf",
        ]
    };
    let nodes: Vec<RedisProcess> = (0..3).map(|i| RedisProcess::server(&conf(i))).collect();
    let (v, code) = run(&json!({"login_port": nodes[0].port}));
    assert_eq!(code, 1);
    assert!(
        v["checks"]["cluster"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("only 0 of 16384 slots assigned")),
        "{v}"
    );

    // Form a 3-master cluster by hand (the module under test only reads).
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (n, (a, b)) in nodes.iter().zip(ranges) {
        assert!(n
            .raw(&["CLUSTER", "ADDSLOTSRANGE", a, b])
            .starts_with("+OK"));
    }
    for n in &nodes[1..] {
        let _ = n.raw(&["CLUSTER", "MEET", "127.0.0.1", &nodes[0].port.to_string()]);
    }
    let mut last = Value::Null;
    let ok = poll_until(Duration::from_secs(20), || {
        let (v, _) = run(&json!({"login_port": nodes[1].port}));
        last = v;
        last["status"] == json!("ok")
    });
    assert!(ok, "cluster never became ok: {last}");
    assert_eq!(last["cluster"]["cluster_state"], json!("ok"));
    assert_eq!(last["cluster"]["known_nodes"], json!(3));
    assert_eq!(last["cluster"]["slots_assigned"], json!(16384));
    assert_eq!(last["cluster"]["nodes_disagreeing"], json!([]));
}

#[test]
fn tls_with_ca_client_certs_and_clear_handshake_errors() {
    let pki = tempfile::tempdir().expect("tmp");
    make_test_pki(pki.path());
    let p = |f: &str| pki.path().join(f).display().to_string();
    let tls_port = free_port();
    let s = RedisProcess::server(&[
        &format!("tls-port {tls_port}"),
        &format!("tls-cert-file {}", p("server.crt")),
        &format!("tls-key-file {}", p("server.key")),
        &format!("tls-ca-cert-file {}", p("ca.crt")),
        "tls-auth-clients optional",
    ]);
    let base = json!({"login_host": "127.0.0.1", "login_port": tls_port, "tls": "yes", "checks": ["ping", "info"]});
    let with = |extra: Value| {
        let mut a = base.clone();
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            a[k] = v;
        }
        a
    };
    let (v, code) = run(&with(json!({"ca_certs": p("ca.crt")})));
    assert_eq!((code, v["status"].clone()), (0, json!("ok")), "{v}");
    assert_eq!(v["info"]["tcp_port"], json!(s.port));

    let (v, code) = run(&with(
        json!({"ca_certs": p("ca.crt"), "client_cert_file": p("client.crt"), "client_key_file": p("client.key")}),
    ));
    assert_eq!(
        (code, v["status"].clone()),
        (0, json!("ok")),
        "mutual TLS: {v}"
    );

    let (v, code) = run(&with(json!({"validate_certs": false})));
    assert_eq!(
        (code, v["status"].clone()),
        (0, json!("ok")),
        "validate_certs=false: {v}"
    );

    let (v, code) = run(&with(json!({"ca_certs": p("other.crt")})));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("TLS handshake with Redis at 127.0.0.1:")),
        "{v}"
    );

    let (v, code) = run(&with(json!({"ca_certs": "/nonexistent/ca.pem"})));
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("cannot read ca_certs `/nonexistent/ca.pem`")),
        "{v}"
    );

    // Plain text to the TLS port: the server hangs up; the message suggests tls=true.
    let (v, code) =
        run(&json!({"login_host": "127.0.0.1", "login_port": tls_port, "connect_timeout": 2}));
    assert_eq!(code, 1);
    assert!(
        v["msg"].as_str().is_some_and(|m| m
            .contains(&format!("127.0.0.1:{tls_port} closed the connection"))
            && m.contains("set tls=true")),
        "{v}"
    );

    // TLS to a plain-text port: the server never answers the ClientHello.
    let (v, code) = run(
        &json!({"login_host": "127.0.0.1", "login_port": s.port, "tls": true, "validate_certs": false, "connect_timeout": 1}),
    );
    assert_eq!(code, 1);
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("timed out after 1s") && m.contains("does not speak TLS")),
        "{v}"
    );
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let mut c = Command::new(bin());
    c.args(args).env_remove("REDISCLI_AUTH");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run cli");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn command_line_mode_nagios_and_json() {
    let s = RedisProcess::server(&[&format!("requirepass {PW}")]);
    let port = s.port.to_string();
    let (out, code) = cli(
        &["--port", &port, "--format", "nagios"],
        &[("REDISCLI_AUTH", PW)],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!(
            "OK - Redis {} at localhost:",
            redis_utils::testing::ServerBuild::host().version
        )) && out.contains(" | used_memory="),
        "{out}"
    );
    assert!(!out.contains('\n'), "one line: {out}");

    let pwfile = s.dir.path().join("pw");
    std::fs::write(&pwfile, format!("{PW}\n")).expect("pw file");
    let (out, code) = cli(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--password-file",
            &pwfile.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(v["status"], json!("ok"));
    assert!(v.get("invocation").is_none());
    assert!(!out.contains(PW));

    let (out, code) = cli(&["--port", &port, "--format", "nagios"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("CRITICAL - ") && out.contains("NOAUTH"),
        "{out}"
    );

    let (out, code) = cli(
        &["--port", &free_port().to_string(), "--format=nagios"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.contains("connection refused"), "{out}");

    let (out, code) = cli(&["--port", &port, "--password", PW], &[]);
    assert_eq!(code, 3);
    assert!(out.contains("REDISCLI_AUTH") && !out.contains(PW), "{out}");

    let (out, code) = cli(&["--port", "abc", "--format", "nagios"], &[]);
    assert_eq!(code, 3);
    assert!(out.starts_with("UNKNOWN - argument 'login_port'"), "{out}");

    let (out, code) = cli(&["--bogus"], &[]);
    assert_eq!(code, 3);
    assert!(out.contains("unknown flag `--bogus`"), "{out}");

    let (out, code) = cli(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: redis_health"));
}

#[test]
fn argspec_dump_lists_every_option() {
    let out = Command::new(bin())
        .arg("--ansible-argspec")
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["name"], json!("redis_health"));
    assert_eq!(v["supports_check_mode"], json!(true));
    assert_eq!(v["argument_spec"]["login_port"]["default"], json!(6379));
    assert_eq!(
        v["argument_spec"]["fail_on"]["choices"],
        json!(["critical", "warning", "never"])
    );
}
