//! redis_sentinel logging in to Sentinels whose `default` user is off, with an ACL user
//! (login_user + login_password), against real redis-sentinel processes on loopback. The
//! Sentinels reach each other as that user too (`sentinel sentinel-user` / `sentinel-pass`).
use redis_utils::testing::{run_module, wait_until, RedisProcess};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const USER: &str = "sentinel-admin";
const PW: &str = "adm1n-Secret_7f";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_redis_sentinel"))
}

fn run(args: &Value) -> Value {
    let (v, _) = run_module(bin(), args);
    let text = v.to_string();
    assert!(!text.contains(PW), "password in the result: {text}");
    v
}

/// A Sentinel whose only user able to log in is USER; it logs in to its peers as USER as well.
fn acl_sentinel() -> RedisProcess {
    let user = format!("user {USER} on >{PW} ~* &* +@all");
    let peer_user = format!("sentinel sentinel-user {USER}");
    let peer_pass = format!("sentinel sentinel-pass {PW}");
    RedisProcess::sentinel(&["user default off", &user, &peer_user, &peer_pass])
}

/// SENTINEL MASTERS as USER, with redis-cli (the password in the environment, not in argv).
fn masters(s: &RedisProcess) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &s.port.to_string(), "--user", USER])
        .args(["SENTINEL", "MASTERS"])
        .env("REDISCLI_AUTH", PW)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli (apt install redis-tools): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap_or_default()
}

#[test]
fn acl_user_login_with_the_default_user_off() {
    // See: issue 11 item 3
    let master = RedisProcess::server(&[]);
    let sentinels = [acl_sentinel(), acl_sentinel()];
    let monitor = json!({"name": "grp", "host": "127.0.0.1", "port": master.port, "quorum": 2,
                         "down_after_milliseconds": 1000, "failover_timeout": 5000});
    let args = |s: &RedisProcess, creds: Value| {
        let mut a = json!({"login_host": "127.0.0.1", "login_port": s.port, "monitors": [monitor]});
        if let (Some(a), Some(c)) = (a.as_object_mut(), creds.as_object()) {
            a.extend(c.clone());
        }
        a
    };
    let login = json!({"login_user": USER, "login_password": PW});

    // Without login_user the module fails clearly, before it has changed anything: without
    // credentials Sentinel answers NOAUTH; the password alone is tried as `default`'s, which is off.
    for creds in [json!({}), json!({"login_password": PW})] {
        let v = run(&args(&sentinels[0], creds.clone()));
        assert_eq!(v["failed"], json!(true), "{creds}: {v}");
        assert!(msg(&v).contains("login_user"), "{creds}: {v}");
        if creds.get("login_password").is_none() {
            assert!(msg(&v).contains("requires authentication (NOAUTH)"), "{v}");
        } else {
            assert!(
                msg(&v).contains(
                    "failed: WRONGPASS invalid username-password pair or user is disabled"
                ),
                "{v}"
            );
        }
        assert!(
            !masters(&sentinels[0]).contains("grp"),
            "{creds}: a failed run changed the Sentinel"
        );
    }

    // With login_user: predicted in check mode, applied on both Sentinels, then idempotent.
    let mut check = args(&sentinels[0], login.clone());
    check["_ansible_check_mode"] = json!(true);
    let v = run(&check);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(
        !masters(&sentinels[0]).contains("grp"),
        "check mode changed the Sentinel"
    );
    // The first Sentinel sees no peer yet: a quorum of 2 is refused until the second one is
    // there, so the monitor starts at 1 on both and is raised to 2 once they have met.
    let mut one = monitor.clone();
    one["quorum"] = json!(1);
    for s in &sentinels {
        let mut a = args(s, login.clone());
        a["monitors"] = json!([one]);
        let v = run(&a);
        assert_eq!(v["changed"], json!(true), "{v}");
        assert!(masters(s).contains("grp"), "{v}");
    }
    // Each Sentinel finds the other through the master's hello channel, and connects to it as
    // USER (sentinel-user): without that, the peer's `default` user is off and it is not counted.
    wait_until("the two ACL Sentinels to see each other", 30, || {
        let mut a = args(&sentinels[0], login.clone());
        a["_ansible_check_mode"] = json!(true);
        let v = run(&a);
        v["monitors"][0]["sentinels"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    for s in &sentinels {
        let v = run(&args(s, login.clone()));
        assert_eq!(v["failed"], json!(null), "{v}");
        assert_eq!(v["monitors"][0]["quorum"], json!(2), "{v}");
        assert_eq!(
            v["monitors"][0]["master"]["port"],
            json!(master.port),
            "{v}"
        );
    }
    // A peer that cannot log in answers PING with NOAUTH, which Sentinel does not count: it is
    // s_down once down-after-milliseconds (1 s) has passed, and CKQUORUM then fails. So look
    // only after three times that.
    std::thread::sleep(std::time::Duration::from_secs(3));
    for s in &sentinels {
        let v = run(&args(s, login.clone()));
        assert_eq!(v["changed"], json!(false), "{v}");
        let m = &v["monitors"][0];
        assert_eq!(m["ckquorum"]["ok"], json!(true), "{v}");
        let peer_flags = m["sentinels"][0]["flags"].as_array();
        assert!(
            peer_flags
                .is_some_and(|f| f.contains(&json!("sentinel")) && !f.contains(&json!("s_down"))),
            "the peer Sentinel is not reachable as {USER}: {v}"
        );
    }
}
