//! Errors by kind against a real redis-server: what a reply says never makes it a transport
//! error, and the connection options reject what cannot work before connecting.
use ansible_module::{spec::validate, Params};
use redis_utils::connection::{with_connection_options, ConnectionError, ConnectionParams};
use redis_utils::testing::{free_port, RedisProcess};
use serde_json::json;

fn params(v: serde_json::Value) -> Result<ConnectionParams, ConnectionError> {
    let spec = with_connection_options(vec![]);
    let m = v.as_object().cloned().unwrap_or_default();
    let p = Params(validate(&spec, &m).map(|v| v.params).unwrap_or_default());
    ConnectionParams::from_params(&p)
}

#[test]
fn an_error_reply_mentioning_tls_is_a_command_error() {
    // See: issue 8 item 17 (a refused TLS `CONFIG SET` was reported as a "TLS handshake"
    // failure). Redis 7.0 answers "ERR CONFIG SET failed (possibly related to argument
    // 'tls-port') - Unable to update TLS configuration" when no certificate is configured.
    let server = RedisProcess::server(&["requirepass pw1"]);
    let mut con = params(json!({"login_port": server.port, "login_password": "pw1"}))
        .and_then(|p| p.connect())
        .expect("connect");
    let e = con
        .cmd::<String>(&["CONFIG", "SET", "tls-port", &free_port().to_string()])
        .expect_err("must be refused");
    assert!(matches!(e, ConnectionError::Command { .. }), "{e:?}");
    assert!(!e.to_string().contains("TLS handshake"), "{e}");
    assert!(!e.is_unreachable());
    // An error reply whose text says "connection refused" or "timed out" is still a reply.
    let e = con
        .cmd::<String>(&[
            "EVAL",
            "return redis.error_reply('ERR connection refused, timed out, eof')",
            "0",
        ])
        .expect_err("error reply");
    assert!(matches!(e, ConnectionError::Command { .. }), "{e:?}");
    assert_eq!(e.code(), Some("ERR"), "{e:?}");
    // The connection is still usable afterwards.
    let pong: String = con.cmd(&["PING"]).expect("ping");
    assert_eq!(pong, "PONG");
}

#[test]
fn wrongpass_noauth_and_refused_are_told_apart() {
    let server = RedisProcess::server(&["requirepass pw2"]);
    let e = params(json!({"login_port": server.port, "login_password": "nope"}))
        .and_then(|p| p.connect())
        .err();
    assert!(matches!(e, Some(ConnectionError::Auth { .. })), "{e:?}");
    let mut con = params(json!({"login_port": server.port}))
        .and_then(|p| p.connect())
        .expect("connect without AUTH succeeds; commands then fail");
    let e = con.cmd::<String>(&["GET", "k"]).expect_err("noauth");
    assert!(matches!(e, ConnectionError::NoAuth { .. }), "{e:?}");
    let e = params(json!({"login_port": free_port()}))
        .and_then(|p| p.connect())
        .err();
    assert!(matches!(e, Some(ConnectionError::Refused { .. })), "{e:?}");
}

#[test]
fn an_empty_login_password_means_no_password() {
    // See: issue 8 item 13 (setting a first password on a server without one failed with
    // WRONGPASS because `login_password: ""` sent AUTH "").
    let server = RedisProcess::server(&[]);
    let mut con =
        params(json!({"login_port": server.port, "login_password": "", "login_user": ""}))
            .and_then(|p| p.connect())
            .expect("connect");
    let pong: String = con.cmd(&["PING"]).expect("ping");
    assert_eq!(pong, "PONG");
}

#[test]
fn huge_and_negative_timeouts_are_range_errors() {
    // See: issue 8 item 9.
    for (v, shown) in [
        (json!(1e30), "1e+30"),
        (json!(-1), "-1.0"),
        (json!(0), "not 0"),
    ] {
        let e = params(json!({"connect_timeout": v}))
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(
            e.starts_with("`connect_timeout` must be between 0 and 86400 seconds"),
            "{e}"
        );
        assert!(e.contains(shown), "{e}");
    }
    assert!(params(json!({"connect_timeout": 0.25})).is_ok());
}

#[test]
fn a_pipeline_returns_each_reply_or_its_error() {
    let server = RedisProcess::server(&[]);
    let mut con = params(json!({"login_port": server.port, "login_host": "127.0.0.1"}))
        .and_then(|p| p.connect())
        .expect("connect");
    let cmds: Vec<Vec<String>> = [
        vec!["SET", "k", "v"],
        vec!["HSET", "k", "f", "x"],
        vec!["GET", "k"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| (*s).to_string()).collect())
    .collect();
    let r = con.pipeline(&cmds).expect("pipeline");
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].as_ref().ok(), Some(&json!("OK")));
    assert!(
        r[1].as_ref().is_err_and(|e| e.code() == Some("WRONGTYPE")),
        "{:?}",
        r[1]
    );
    assert_eq!(r[2].as_ref().ok(), Some(&json!("v")));
}
