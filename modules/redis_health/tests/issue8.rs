//! Regression tests for the issue 8 items that touch redis_health, against real redis-server
//! processes, through the args file and the command-line mode.

use redis_utils::testing::{free_port, run_module, RedisProcess};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_health"))
}

/// Every string and number in a result, one per line (JSON text would escape quotes and
/// backslashes, and hide a leaked secret from a plain search).
fn scalars(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s}\n"),
        Value::Array(a) => a.iter().map(scalars).collect(),
        Value::Object(m) => m.values().map(scalars).collect(),
        other => format!("{other}\n"),
    }
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let mut c = Command::new(bin());
    c.args(args).env_remove("REDISCLI_AUTH");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run cli");
    (
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn item9_huge_negative_or_zero_connect_timeout_is_a_range_error() {
    // See: issue 8 item 9
    let port = free_port();
    for (value, shown) in [(json!(1e30), "1e+30"), (json!(-1.5), "-1.5")] {
        let (v, code) = run_module(
            &bin(),
            &json!({"login_port": port, "connect_timeout": value}),
        );
        assert_eq!(code, 1, "{v}");
        let msg = v["msg"].as_str().unwrap_or("");
        assert_eq!(
            msg,
            format!("`connect_timeout` must be between 0 and 86400 seconds, got {shown}"),
            "{v}"
        );
    }
    let (v, _) = run_module(&bin(), &json!({"login_port": port, "connect_timeout": 0}));
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("connect_timeout") && !m.contains("internal error")),
        "{v}"
    );
    // The command-line mode shares the validation: UNKNOWN (3), never a crash.
    let (out, code) = cli(
        &[
            "--port",
            &port.to_string(),
            "--timeout",
            "1e30",
            "--format",
            "nagios",
        ],
        &[],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("UNKNOWN - `connect_timeout` must be between 0 and 86400 seconds"),
        "{out}"
    );
}

/// No fix was needed in redis_health for item 3 (this passes on the code before issue 8 too):
/// it guards that login_password, however it looks, stays out of every output.
#[test]
fn item3_guard_passwords_never_appear_in_any_output() {
    // See: issue 8 item 3
    let s = RedisProcess::server(&[]);
    // All digits (Ansible passes an unquoted YAML number as a JSON number), and one with quotes,
    // a space, `$` and backslashes. The first is the server's own port: INFO's tcp_port then
    // holds the secret as a number, which ansible-core's remove_values masks too.
    let digits = s.port.to_string();
    for pw in [digits.as_str(), r#"pa$$ w\or"d\\x41"#] {
        let set = s.raw(&["CONFIG", "SET", "requirepass", pw]);
        assert!(set.starts_with("+OK"), "{set}");
        let given = if pw == digits {
            json!(s.port)
        } else {
            json!(pw)
        };
        let (ok, code) = run_module(
            &bin(),
            &json!({"login_port": s.port, "login_password": given, "checks": ["ping", "info", "clients"]}),
        );
        assert_eq!((code, ok["status"].clone()), (0, json!("ok")), "{ok}");
        let wrong = format!("{pw}-wrong");
        let (bad, code) = run_module(
            &bin(),
            &json!({"login_port": s.port, "login_password": wrong}),
        );
        assert_eq!(code, 1, "{bad}");
        for (v, secret) in [(&ok, pw), (&bad, wrong.as_str())] {
            let text = scalars(v);
            assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
        }
        for format in ["nagios", "json"] {
            let (out, code) = cli(
                &["--port", &s.port.to_string(), "--format", format],
                &[("REDISCLI_AUTH", pw)],
            );
            assert_eq!(code, 0, "{out}");
            assert!(
                !out.contains(pw),
                "{pw:?} leaked in --format {format}:\n{out}"
            );
        }
        // Back to no password for the next round (CONFIG SET needs AUTH now).
        let reset = raw_auth(&s, pw, &["CONFIG", "SET", "requirepass", ""]);
        assert!(reset.contains("+OK"), "{reset}");
    }
}

/// AUTH `pw`, then one command, over RESP.
fn raw_auth(s: &RedisProcess, pw: &str, args: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut req = Vec::new();
    for cmd in [&["AUTH", pw][..], args] {
        req.extend(format!("*{}\r\n", cmd.len()).into_bytes());
        for a in cmd {
            req.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
        }
    }
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    c.write_all(&req).expect("write");
    let mut buf = vec![0u8; 4096];
    let mut out = String::new();
    while out.matches("\r\n").count() < 2 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    out
}
