//! redis_sentinel against real redis-server and redis-sentinel processes on loopback.
use redis_utils::testing::{run_module, wait_until, RedisProcess};
use serde_json::{json, Value};
use std::path::Path;

const PW: &str = "m4ster pw'\"$\\";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_redis_sentinel"))
}

fn run(args: &Value) -> Value {
    let (v, _) = run_module(bin(), args);
    let text = v.to_string();
    assert!(!text.contains(PW), "password in the result: {text}");
    assert!(!text.contains("m4ster"), "password in the result: {text}");
    v
}

/// A master and its replica, both with a password.
fn pair() -> (RedisProcess, RedisProcess) {
    let pw = format!(
        "requirepass \"{}\"",
        PW.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let auth = format!(
        "masterauth \"{}\"",
        PW.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let master = RedisProcess::server(&[&pw, &auth]);
    let replica =
        RedisProcess::server(&[&pw, &auth, &format!("replicaof 127.0.0.1 {}", master.port)]);
    (master, replica)
}

fn monitor(port: u16, quorum: u32) -> Value {
    json!({"name": "grp", "host": "127.0.0.1", "port": port, "quorum": quorum,
           "down_after_milliseconds": 1000, "failover_timeout": 5000, "auth_pass": PW})
}

fn masters(sentinel: &RedisProcess) -> String {
    sentinel.raw(&["SENTINEL", "MASTERS"])
}

#[test]
fn present_is_predicted_applied_and_idempotent() {
    let (master, _replica) = pair();
    let s = RedisProcess::sentinel(&[]);
    let args = json!({"login_port": s.port, "login_host": "127.0.0.1",
                      "monitors": [monitor(master.port, 1)]});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    check["_ansible_diff"] = json!(true);
    let v = run(&check);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(v["diff"]["after"]["grp"].is_object(), "{v}");
    assert!(
        !masters(&s).contains("grp"),
        "check mode changed the Sentinel"
    );
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["monitors"][0]["master"]["port"], json!(master.port));
    assert_eq!(v["monitors"][0]["down_after_milliseconds"], json!(1000));
    // Sentinel needs a moment to read the master's INFO with the new credentials.
    wait_until("Sentinel to authenticate", 15, || {
        run(&args)["changed"] == json!(false)
    });
    let v = run(&args);
    assert_eq!(v["changed"], json!(false), "{v}");
    assert_eq!(v["monitors"][0]["ckquorum"]["ok"], json!(true), "{v}");
    // Drift made by hand is put back, with the defaults counting.
    let _ = s.raw(&["SENTINEL", "SET", "grp", "parallel-syncs", "5"]);
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(
        v["commands"][0]
            .as_str()
            .is_some_and(|c| c.contains("parallel-syncs 1")),
        "{v}"
    );
    assert_eq!(run(&args)["changed"], json!(false));
    // Wrong credentials put on the Sentinel by hand: it soon sees the master as down, and the
    // next run gives it the task's credentials again.
    let _ = s.raw(&["SENTINEL", "SET", "grp", "auth-pass", "wrong"]);
    wait_until("Sentinel to flag the master s_down", 15, || {
        s.raw(&["SENTINEL", "MASTER", "grp"]).contains("s_down")
    });
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(
        v["commands"][0]
            .as_str()
            .is_some_and(|c| c.contains("auth-pass ********")),
        "{v}"
    );
    wait_until("Sentinel to see the master up again", 15, || {
        !s.raw(&["SENTINEL", "MASTER", "grp"]).contains("s_down")
    });
    assert_eq!(run(&args)["changed"], json!(false));
}

#[test]
fn bad_input_changes_nothing() {
    let (master, _replica) = pair();
    let s = RedisProcess::sentinel(&[]);
    let base = json!({"login_port": s.port, "login_host": "127.0.0.1"});
    let with = |monitors: Value, extra: Value| {
        let mut a = base.clone();
        a["monitors"] = monitors;
        if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        a
    };
    // A wrong auth_pass is found before SENTINEL MONITOR.
    let mut wrong = monitor(master.port, 1);
    wrong["auth_pass"] = json!("not-the-password");
    let v = run(&with(json!([wrong]), json!({})));
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not accept auth_user/auth_pass")),
        "{v}"
    );
    assert!(!masters(&s).contains("grp"));
    // Injection through a name or host.
    let mut evil = monitor(master.port, 1);
    evil["name"] = json!("grp\nsentinel deny-scripts-reconfig no");
    let v = run(&with(json!([evil]), json!({})));
    assert_eq!(v["failed"], json!(true), "{v}");
    // Create it for real, then ask for a quorum no group of one Sentinel can reach.
    assert_eq!(
        run(&with(json!([monitor(master.port, 1)]), json!({})))["changed"],
        json!(true)
    );
    let mut big = monitor(master.port, 1);
    big["quorum"] = json!(3);
    let v = run(&with(json!([big]), json!({})));
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("only 1 Sentinel(s)")),
        "{v}"
    );
    // Unknown monitors for failover and reset.
    for state in ["failover", "reset"] {
        let v = run(&with(json!(null), json!({"state": state, "name": "nope"})));
        assert_eq!(v["failed"], json!(true), "{v}");
        assert!(
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("does not monitor `nope`")),
            "{v}"
        );
    }
    let mut look = with(json!([monitor(master.port, 1)]), json!({}));
    look["_ansible_check_mode"] = json!(true);
    assert_eq!(
        run(&look)["monitors"][0]["quorum"],
        json!(1),
        "the failed runs changed the quorum"
    );
    // Huge timeouts are range errors.
    let v = run(&with(
        json!(null),
        json!({"state": "failover", "name": "grp", "wait_timeout": 1e30}),
    ));
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("`wait_timeout` must be between")),
        "{v}"
    );
}

#[test]
fn failover_is_waited_for_and_never_undone() {
    let (master, replica) = pair();
    let line = format!("sentinel monitor grp 127.0.0.1 {} 2", master.port);
    let auth = format!(
        "sentinel auth-pass grp \"{}\"",
        PW.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let opts = [
        "sentinel down-after-milliseconds grp 1000",
        "sentinel failover-timeout grp 5000",
    ];
    let sentinels: Vec<RedisProcess> = (0..3)
        .map(|_| RedisProcess::sentinel(&[&line, &auth, opts[0], opts[1]]))
        .collect();
    let s = &sentinels[0];
    let base = json!({"login_port": s.port, "login_host": "127.0.0.1"});
    // Wait until the Sentinels see each other and the replica.
    wait_until(
        "the Sentinels to find each other and the replica",
        30,
        || {
            let v = run(&json!({"login_port": s.port, "login_host": "127.0.0.1",
                            "monitors": [monitor(master.port, 2)], "_ansible_check_mode": true}));
            let m = &v["monitors"][0];
            m["sentinels"].as_array().is_some_and(|a| a.len() == 2)
                && m["replicas"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r["master_link_status"] == json!("ok")))
        },
    );
    let mut args = base.clone();
    args["state"] = json!("failover");
    args["name"] = json!("grp");
    args["monitors"] = json!([monitor(master.port, 2)]);
    args["wait_timeout"] = json!(30);
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["master"]["port"], json!(replica.port), "{v}");
    assert_eq!(v["old_master"]["port"], json!(master.port));
    // Every Sentinel agrees, and the new master is a master.
    for other in &sentinels {
        let r = other.raw(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "grp"]);
        assert!(r.contains(&replica.port.to_string()), "{r}");
    }
    // Re-running the playbook's `present` with the initial master leaves the new one alone.
    let mut present = base.clone();
    present["monitors"] = json!([monitor(master.port, 2)]);
    let v = run(&present);
    assert_eq!(v["changed"], json!(false), "{v}");
    assert!(
        v["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("follows a failover")),
        "{v}"
    );
    assert_eq!(v["monitors"][0]["master"]["port"], json!(replica.port));
}

#[test]
fn absent_and_reset() {
    let (master, _replica) = pair();
    let line = format!("sentinel monitor grp 127.0.0.1 {} 1", master.port);
    let auth = format!(
        "sentinel auth-pass grp \"{}\"",
        PW.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let s = RedisProcess::sentinel(&[&line, &auth]);
    let base = json!({"login_port": s.port, "login_host": "127.0.0.1", "name": "grp"});
    let mut reset = base.clone();
    reset["state"] = json!("reset");
    assert_eq!(run(&reset)["changed"], json!(true));
    let mut absent = base.clone();
    absent["state"] = json!("absent");
    absent["_ansible_check_mode"] = json!(true);
    assert_eq!(run(&absent)["changed"], json!(true));
    assert!(masters(&s).contains("grp"));
    absent["_ansible_check_mode"] = json!(false);
    assert_eq!(run(&absent)["changed"], json!(true));
    assert!(!masters(&s).contains("grp"));
    assert_eq!(run(&absent)["changed"], json!(false));
}
