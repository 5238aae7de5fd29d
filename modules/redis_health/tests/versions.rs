//! redis_health against Redis 7.0 (this machine's), Redis 8.0 and Valkey 8.1 (unpacked by
//! `python3 tests/hosts/servers.py build`), servers and Sentinels: the verdict names the flavour
//! and the version. A missing build is skipped with a SKIP line (a failure with
//! CF_REQUIRE_SERVERS=1, as tests/test_server_versions.py runs this file under CI).

use redis_utils::testing::{run_module, Flavour, RedisProcess, ServerBuild};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

const PW: &str = "vh-Pass-2d7f";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_health"))
}

fn run(args: &Value) -> (Value, i32) {
    run_module(&bin(), args)
}

/// The `server` value and the msg prefix for a build.
fn expected(b: &ServerBuild) -> (Value, String) {
    // Valkey 8 reports redis_version 7.2.4 to clients that check it.
    let redis_version = match b.flavour {
        Flavour::Valkey => "7.2.4".to_string(),
        Flavour::Redis => b.version.clone(),
    };
    let flavour = match b.flavour {
        Flavour::Valkey => "valkey",
        Flavour::Redis => "redis",
    };
    (
        json!({"flavour": flavour, "version": b.version, "redis_version": redis_version}),
        format!("{} {}", b.product(), b.version),
    )
}

// See: issue 16 item 3
#[test]
fn issue16_item3_verdict_names_flavour_and_version_of_a_server() {
    for b in ServerBuild::supported() {
        let s = RedisProcess::server_of(&b, &[&format!("requirepass {PW}")]);
        let (server, label) = expected(&b);
        let (v, code) =
            run(&json!({"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW}));
        assert_eq!(code, 0, "{}: {v}", b.name);
        assert_eq!(v["status"], json!("ok"), "{}: {v}", b.name);
        assert_eq!(v["server"], server, "{}: {v}", b.name);
        let msg = v["msg"].as_str().unwrap_or("");
        assert_eq!(
            msg,
            format!("{label} at 127.0.0.1:{} is ok (7 checks)", s.port),
            "{}",
            b.name
        );
        let info = v["checks"]["info"]["message"].as_str().unwrap_or("");
        assert!(info.starts_with(&format!("{label}, role master")), "{info}");

        // The command-line (Nagios) line says it too.
        let out = Command::new(bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &s.port.to_string(),
                "--format",
                "nagios",
            ])
            .env("REDISCLI_AUTH", PW)
            .output()
            .expect("run");
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(
            line.starts_with(&format!("OK - {label} at 127.0.0.1:{} is ok", s.port)),
            "{}: {line}",
            b.name
        );
        // A problem verdict names it as well.
        let (v, _) = run(&json!({"login_host": "127.0.0.1", "login_port": s.port,
                                 "login_password": PW, "expected_role": "replica"}));
        let msg = v["msg"].as_str().unwrap_or("");
        assert!(
            msg.starts_with(&format!(
                "{label} at 127.0.0.1:{} is critical: info (critical)",
                s.port
            )),
            "{}: {msg}",
            b.name
        );
    }
}

// See: issue 16 item 3
#[test]
fn issue16_item3_verdict_names_flavour_and_version_of_a_sentinel() {
    for b in ServerBuild::supported() {
        let master = RedisProcess::server_of(&b, &[]);
        let sentinel = RedisProcess::sentinel_of(
            &b,
            &[&format!(
                "sentinel monitor mymaster 127.0.0.1 {} 1",
                master.port
            )],
        );
        let (server, label) = expected(&b);
        let (v, code) = run(
            &json!({"login_host": "127.0.0.1", "login_port": sentinel.port,
                                    "fail_on": "never"}),
        );
        assert_eq!(code, 0, "{}: {v}", b.name);
        assert_eq!(v["role"], json!("sentinel"), "{}: {v}", b.name);
        // Checked as a Sentinel (its masters), not as a plain server.
        assert!(v["checks"]["sentinel"].is_object(), "{}: {v}", b.name);
        assert!(v["checks"]["memory"].is_null(), "{}: {v}", b.name);
        assert_eq!(v["server"], server, "{}: {v}", b.name);
        let msg = v["msg"].as_str().unwrap_or("");
        assert!(
            msg.starts_with(&format!("{label} at 127.0.0.1:{} is ", sentinel.port)),
            "{}: {msg}",
            b.name
        );
    }
}
