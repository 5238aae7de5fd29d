//! redis_lua_script against real redis-server and redis-sentinel processes on loopback.
use redis_utils::testing::{run_module, wait_until, RedisProcess};
use serde_json::{json, Value};
use std::path::Path;

// A space, a quote and a dollar sign; no backslash or double quote, so that the fixture's raw
// client (which reads the password back from the config line) can use it as is.
const PW: &str = "lu4 pw'$x";
const RATE_LIMITER: &str = include_str!("../../../lua/rate_limiter.lua");

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_redis_lua_script"))
}

fn run(args: &Value) -> Value {
    let (v, _) = run_module(bin(), args);
    let text = v.to_string();
    assert!(!text.contains(PW), "password in the result: {text}");
    assert!(!text.contains("lu4 pw"), "password in the result: {text}");
    v
}

fn requirepass() -> String {
    format!("requirepass \"{PW}\"")
}

fn server() -> RedisProcess {
    RedisProcess::server(&[&requirepass()])
}

fn base(s: &RedisProcess) -> Value {
    json!({"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW})
}

fn with(mut a: Value, extra: Value) -> Value {
    if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

fn libraries(s: &RedisProcess) -> String {
    s.raw(&["FUNCTION", "LIST"])
}

#[test]
fn builtin_function_is_predicted_applied_and_idempotent() {
    let s = server();
    let args = with(base(&s), json!({"builtin": "rate_limiter"}));
    let check = with(
        args.clone(),
        json!({"_ansible_check_mode": true, "_ansible_diff": true}),
    );
    let v = run(&check);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["diff"]["before"], json!(""), "{v}");
    assert_eq!(v["diff"]["after"], json!(RATE_LIMITER), "{v}");
    assert_eq!(
        v["functions"],
        json!([
            "ratelimit_fixed_window",
            "ratelimit_gcra",
            "ratelimit_sliding_log",
            "ratelimit_sliding_window"
        ]),
        "{v}"
    );
    assert!(
        !libraries(&s).contains("ratelimit"),
        "check mode loaded the library"
    );
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["nodes"][0]["changed"], json!(true), "{v}");
    assert_eq!(v["functions"], check_functions(&check), "{v}");
    assert!(libraries(&s).contains("ratelimit"));
    let v = run(&with(args.clone(), json!({"_ansible_diff": true})));
    assert_eq!(v["changed"], json!(false), "{v}");
    assert!(v.get("diff").is_none(), "{v}");
    assert_eq!(v["commands"], json!([]), "{v}");
    // Callable as the docs say.
    let reply = s.raw(&["FCALL", "ratelimit_gcra", "1", "k", "3", "1000"]);
    assert!(
        reply.starts_with("+OK\r\n*4\r\n:1\r\n:2\r\n:-1\r\n"),
        "{reply:?}"
    );
}

fn check_functions(check: &Value) -> Value {
    run(check)["functions"].clone()
}

#[test]
fn other_code_needs_replace_and_the_diff_shows_both() {
    let s = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("mylib.lua");
    let v1 = "#!lua name=mylib\nredis.register_function('my_one', function() return 1 end)\n";
    let v2 = "#!lua name=mylib\nredis.register_function('my_two', function() return 2 end)\n";
    std::fs::write(&src, v1).expect("write");
    let args = with(base(&s), json!({"src": src.to_str()}));
    assert_eq!(run(&args)["changed"], json!(true));
    assert_eq!(run(&args)["changed"], json!(false));
    std::fs::write(&src, v2).expect("write");
    let v = run(&args);
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("replace: true")),
        "{v}"
    );
    assert!(
        libraries(&s).contains("my_one"),
        "a refused run changed the library"
    );
    let v = run(&with(
        args.clone(),
        json!({"replace": true, "_ansible_diff": true}),
    ));
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["diff"]["before"], json!(v1), "{v}");
    assert_eq!(v["diff"]["after"], json!(v2), "{v}");
    assert_eq!(v["functions"], json!(["my_two"]), "{v}");
    assert_eq!(
        run(&with(args.clone(), json!({"replace": true})))["changed"],
        json!(false)
    );
    // Absent: deleted once, then nothing to do; by name alone too.
    let gone = with(base(&s), json!({"name": "mylib", "state": "absent"}));
    let v = run(&with(gone.clone(), json!({"_ansible_check_mode": true})));
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(libraries(&s).contains("mylib"), "check mode deleted it");
    assert_eq!(run(&gone)["changed"], json!(true));
    assert!(!libraries(&s).contains("mylib"));
    assert_eq!(run(&gone)["changed"], json!(false));
}

#[test]
fn a_lua_syntax_error_fails_with_redis_message_and_the_line() {
    let s = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("bad.lua");
    std::fs::write(
        &src,
        "#!lua name=bad\nlocal ok = 1\nlocal broken = = 2\nredis.register_function('b', function() return ok end)\n",
    )
    .expect("write");
    for mode in ["function", "script"] {
        let v = run(&with(base(&s), json!({"src": src.to_str(), "mode": mode})));
        assert_eq!(v["failed"], json!(true), "{v}");
        let msg = v["msg"].as_str().unwrap_or_default();
        let marker = if mode == "function" {
            "user_function:3:"
        } else {
            "user_script:3:"
        };
        assert!(msg.contains(marker), "{mode}: {msg}");
        assert!(msg.contains("unexpected symbol"), "{mode}: {msg}");
        assert!(msg.contains("line 3 of src"), "{mode}: {msg}");
        assert!(msg.contains("nothing was changed"), "{mode}: {msg}");
    }
    assert!(!libraries(&s).contains("bad"));
}

#[test]
fn script_mode_caches_the_code_evalsha_runs() {
    let s = server();
    let args = with(
        base(&s),
        json!({"builtin": "session_operations", "mode": "script"}),
    );
    let v = run(&with(args.clone(), json!({"_ansible_check_mode": true})));
    assert_eq!(v["changed"], json!(true), "{v}");
    let sha = v["sha1"].as_str().unwrap_or_default().to_string();
    assert_eq!(sha.len(), 40, "{v}");
    assert!(s.raw(&["SCRIPT", "EXISTS", &sha]).contains(":0"));
    // State absent of a script that is not cached: nothing to do.
    let absent = with(args.clone(), json!({"state": "absent"}));
    assert_eq!(run(&absent)["changed"], json!(false));
    let v = run(&args);
    assert_eq!(
        (v["changed"].clone(), v["sha1"].clone()),
        (json!(true), json!(sha)),
        "{v}"
    );
    assert_eq!(v["nodes"][0]["sha1"], json!(sha), "{v}");
    assert!(s.raw(&["SCRIPT", "EXISTS", &sha]).contains(":1"));
    assert_eq!(run(&args)["changed"], json!(false));
    // The cached code is the library with its first line emptied: EVALSHA runs the functions.
    let reply = s.raw(&[
        "EVALSHA",
        &sha,
        "1",
        "s:1",
        "session_create",
        "60",
        "user",
        "ann",
    ]);
    assert!(reply.ends_with(":1\r\n"), "{reply:?}");
    // Redis cannot drop one script: absent fails, honestly, and flushes nothing.
    let v = run(&absent);
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("cannot remove one script")),
        "{v}"
    );
    assert!(s.raw(&["SCRIPT", "EXISTS", &sha]).contains(":1"));
}

#[test]
fn bad_input_changes_nothing() {
    let s = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.lua");
    std::fs::write(&other, "#!lua name=other\nreturn 1\n").expect("write");
    let cases = [
        (
            json!({"builtin": "rate_limiter", "src": other.to_str()}),
            "mutually exclusive",
        ),
        (
            json!({"builtin": "rate_limiter", "bogus": 1}),
            "Unsupported parameters",
        ),
        (
            json!({"builtin": "nope"}),
            "value of builtin must be one of",
        ),
        (json!({"src": "/nonexistent/x.lua"}), "cannot read src"),
        (json!({"src": dir.path().to_str()}), "not a regular file"),
        (
            json!({"src": other.to_str(), "name": "mine"}),
            "differs from the library name `other`",
        ),
        (
            json!({"name": "bad-name", "state": "absent"}),
            "only letters, digits and underscores",
        ),
        (
            json!({"mode": "script", "name": "x"}),
            "needs `src` or `builtin`",
        ),
        (json!({"state": "absent"}), "is required"),
        (
            json!({"builtin": "rate_limiter", "targets": "master"}),
            "master_name",
        ),
        (
            json!({"builtin": "rate_limiter", "master_name": "grp"}),
            "only used with targets=master",
        ),
        (
            json!({"builtin": "rate_limiter", "targets": "cluster"}),
            "not in cluster mode",
        ),
        (json!({"builtin": "rate_limiter", "name": "x\ny"}), "line"),
    ];
    for (extra, words) in cases {
        let v = run(&with(base(&s), extra.clone()));
        assert_eq!(v["failed"], json!(true), "{extra}: {v}");
        let msg = v["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{extra}: `{words}` not in {msg}");
    }
    assert!(
        !libraries(&s).contains("library_name"),
        "bad input loaded something"
    );
    // Wrong password: the error says so and never shows it.
    let v = run(&with(
        base(&s),
        json!({"builtin": "rate_limiter", "login_password": format!("{PW}x")}),
    ));
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(v.to_string().contains("WRONGPASS"), "{v}");
}

#[test]
fn targets_master_asks_the_sentinel() {
    let master = server();
    let s = RedisProcess::sentinel(&[
        &format!("sentinel monitor grp 127.0.0.1 {} 1", master.port),
        &format!("sentinel auth-pass grp \"{PW}\""),
    ]);
    let args = json!({"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW,
                      "targets": "master", "master_name": "grp", "builtin": "session_operations"});
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(
        v["nodes"][0]["node"],
        json!(format!("127.0.0.1:{}", master.port)),
        "{v}"
    );
    assert!(libraries(&master).contains("session"));
    assert_eq!(run(&args)["changed"], json!(false));
    let v = run(&with(args, json!({"master_name": "nope"})));
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not monitor a master named `nope`")),
        "{v}"
    );
}

#[test]
fn targets_cluster_loads_on_every_master() {
    let nodes: Vec<RedisProcess> = (0..3)
        .map(|_| {
            RedisProcess::server(&[
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                &requirepass(),
                &format!("masterauth \"{PW}\""),
            ])
        })
        .collect();
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (n, (lo, hi)) in nodes.iter().zip(ranges) {
        assert!(n
            .raw(&["CLUSTER", "ADDSLOTSRANGE", lo, hi])
            .ends_with("+OK\r\n"));
    }
    for n in &nodes[1..] {
        let _ = n.raw(&["CLUSTER", "MEET", "127.0.0.1", &nodes[0].port.to_string()]);
    }
    wait_until("every node to know 3 masters", 30, || {
        nodes.iter().all(|n| {
            n.raw(&["CLUSTER", "NODES"]).matches("master").count() == 3
                && n.raw(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
        })
    });
    let args = json!({"login_host": "127.0.0.1", "login_port": nodes[1].port, "login_password": PW,
                      "targets": "cluster", "builtin": "rate_limiter"});
    let v = run(&with(args.clone(), json!({"_ansible_check_mode": true})));
    assert_eq!(v["commands"].as_array().map(Vec::len), Some(3), "{v}");
    assert!(nodes.iter().all(|n| !libraries(n).contains("ratelimit")));
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(3), "{v}");
    for n in &nodes {
        assert!(libraries(n).contains("ratelimit"), "{}", n.port);
    }
    // One master loses it: only that one is loaded again.
    let _ = nodes[2].raw(&["FUNCTION", "DELETE", "ratelimit"]);
    let v = run(&args);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["commands"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(v["commands"][0]
        .as_str()
        .is_some_and(|c| c.starts_with(&format!("127.0.0.1:{}:", nodes[2].port))));
    assert_eq!(run(&args)["changed"], json!(false));
}
