//! redis_command against real redis-server / redis-sentinel processes on loopback (and a real
//! cluster formed with `redis-cli --cluster create`), with a password.
use redis_utils::testing::{redis_cli_create_cluster, run_module, RedisProcess};
use serde_json::{json, Value};
use std::path::Path;

const PW: &str = "cmd-pw 1'$x";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_redis_command"))
}

fn conf_pw() -> String {
    format!("\"{}\"", PW.replace('\\', "\\\\").replace('"', "\\\""))
}

fn server() -> RedisProcess {
    RedisProcess::server(&[&format!("requirepass {}", conf_pw())])
}

/// Runs the module; the password never appears in what it prints.
fn run(args: &Value) -> Value {
    let (v, _) = run_module(bin(), args);
    assert!(!v.to_string().contains(PW), "password in the result: {v}");
    v
}

fn on(s: &RedisProcess, command: &[&str], extra: Value) -> Value {
    let mut a = json!({"command": command, "login_host": "127.0.0.1", "login_port": s.port, "login_password": PW});
    if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    a
}

fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap_or_default()
}

#[test]
fn replies_of_every_resp_type_as_json() {
    let s = server();
    for (cmd, extra) in [
        (vec!["RPUSH", "list", "a", "b"], json!({})),
        (vec!["HSET", "h", "f", "v"], json!({})),
        (vec!["SADD", "set", "m"], json!({})),
        (vec!["ZADD", "z", "1.5", "m", "inf", "top"], json!({})),
        (vec!["SET", "text", "café"], json!({})),
        (
            vec![
                "EVAL",
                "redis.call('SET', KEYS[1], string.char(255, 0, 97))",
                "1",
                "bin",
            ],
            json!({}),
        ),
    ] {
        let v = run(&on(&s, &cmd, extra));
        assert_eq!(v["changed"], json!(true), "{cmd:?}: {v}");
    }
    let cases: Vec<(Vec<&str>, i64, Value)> = vec![
        (vec!["GET", "missing"], 3, json!(null)),
        (vec!["EXISTS", "list"], 3, json!(1)),
        (vec!["GET", "text"], 3, json!("café")),
        (vec!["GET", "bin"], 3, json!({"base64": "/wBh"})),
        (vec!["PING"], 3, json!("PONG")),
        (vec!["LRANGE", "list", "0", "-1"], 3, json!(["a", "b"])),
        (vec!["HGETALL", "h"], 3, json!({"f": "v"})),
        (vec!["HGETALL", "h"], 2, json!(["f", "v"])),
        (vec!["SMEMBERS", "set"], 3, json!(["m"])),
        (vec!["ZSCORE", "z", "m"], 3, json!(1.5)),
        (vec!["ZSCORE", "z", "m"], 2, json!("1.5")),
        (vec!["ZSCORE", "z", "top"], 3, json!("inf")),
        (
            vec!["EVAL_RO", "redis.setresp(3); return true", "0"],
            3,
            json!(true),
        ),
        (
            vec![
                "EVAL_RO",
                "redis.setresp(3); return {big_number='123456789012345678901234567890'}",
                "0",
            ],
            3,
            json!("123456789012345678901234567890"),
        ),
    ];
    for (cmd, resp, want) in cases {
        let v = run(&on(&s, &cmd, json!({"resp": resp})));
        assert_eq!(v["reply"], want, "{cmd:?} resp {resp}: {v}");
        assert_eq!(v["changed"], json!(false), "{cmd:?}: {v}");
        assert_eq!(v["replies"][0]["reply"], want, "{cmd:?}: {v}");
    }
    // A verbatim string (INFO under RESP3) is its text.
    let v = run(&on(&s, &["INFO", "server"], json!({})));
    assert!(
        v["reply"]
            .as_str()
            .is_some_and(|t| t.starts_with("# Server")),
        "{v}"
    );
    // An error reply is the task's failure, in Redis' words.
    let v = run(&on(
        &s,
        &[
            "EVAL_RO",
            "return redis.error_reply('MYERR custom words')",
            "0",
        ],
        json!({}),
    ));
    assert_eq!(v["failed"], json!(true), "{v}");
    assert!(msg(&v).contains("MYERR custom words"), "{v}");
    // An error inside an array (a script's table) is the failure too: the client library
    // reports the whole reply as that error.
    let v = run(&on(
        &s,
        &[
            "EVAL_RO",
            "return {1, redis.error_reply('MYERR inner')}",
            "0",
        ],
        json!({}),
    ));
    assert!(
        v["failed"] == json!(true) && msg(&v).contains("MYERR inner"),
        "{v}"
    );
    let v = run(&on(&s, &["LPUSH", "text", "x"], json!({})));
    assert!(
        v["failed"] == json!(true) && msg(&v).contains("WRONGTYPE"),
        "{v}"
    );
}

#[test]
fn writes_change_reads_do_not_and_check_mode_skips_writes() {
    let s = server();
    let v = run(&on(&s, &["SET", "k", "1"], json!({})));
    assert_eq!(
        (v["changed"].clone(), v["command_info"]["writes"].clone()),
        (json!(true), json!(true)),
        "{v}"
    );
    let v = run(&on(&s, &["GET", "k"], json!({})));
    assert_eq!(v["changed"], json!(false), "{v}");
    // The override.
    let v = run(&on(&s, &["GET", "k"], json!({"changed": "always"})));
    assert_eq!(v["changed"], json!(true), "{v}");
    let v = run(&on(&s, &["SET", "k", "1"], json!({"changed": "never"})));
    assert_eq!(v["changed"], json!(false), "{v}");
    // Check mode: the write is reported and not sent; reads run.
    for cmd in [
        vec!["SET", "k", "2"],
        vec!["DEL", "k"],
        vec!["CONFIG", "SET", "maxmemory", "1mb"],
        vec!["PUBLISH", "chan", "hello"],
        vec!["FLUSHALL"],
        vec!["EVAL", "redis.call('SET', 'k', '3')", "0"],
    ] {
        let v = run(&on(&s, &cmd, json!({"_ansible_check_mode": true})));
        assert_eq!(
            (v["changed"].clone(), v["sent"].clone()),
            (json!(true), json!(false)),
            "{cmd:?}: {v}"
        );
        assert!(v.get("reply").is_none(), "{v}");
    }
    assert!(
        s.reply(&["GET", "k"]).contains("\r\n1\r\n"),
        "check mode wrote"
    );
    assert!(
        s.reply(&["CONFIG", "GET", "maxmemory"])
            .contains("\r\n0\r\n"),
        "check mode changed the config"
    );
    for (cmd, want) in [
        (vec!["GET", "k"], json!("1")),
        (
            vec!["CONFIG", "GET", "maxmemory"],
            json!({"maxmemory": "0"}),
        ),
        (vec!["PUBSUB", "NUMSUB", "chan"], json!(["chan", 0])),
    ] {
        let v = run(&on(&s, &cmd, json!({"_ansible_check_mode": true})));
        assert_eq!(
            (v["changed"].clone(), v["sent"].clone(), v["reply"].clone()),
            (json!(false), json!(true), want),
            "{cmd:?}: {v}"
        );
    }
}

#[test]
fn bad_input_fails_before_anything_is_sent() {
    let s = server();
    assert!(s.reply(&["SET", "keep", "v"]).contains("OK"));
    let before = s.reply(&["INFO", "commandstats"]);
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "command is empty"),
        (json!([""]), "command is empty"),
        (
            json!(["NOSUCHCMD", "x"]),
            "does not know the command `NOSUCHCMD`",
        ),
        (
            json!(["CONFIG", "NOSUCH"]),
            "does not know the command `CONFIG NOSUCH`",
        ),
        (json!(["CONFIG"]), "needs a subcommand"),
        (json!(["GET"]), "wrong number of arguments for `GET`"),
        (json!(["SUBSCRIBE", "c"]), "`SUBSCRIBE` is not run"),
        (json!(["AUTH", "x"]), "`AUTH` is not run"),
        (
            json!(["CLIENT", "REPLY", "OFF"]),
            "`CLIENT REPLY` is not run",
        ),
        // CR, LF and NUL never reach Redis: the argument spec refuses them.
        (json!(["SET", "keep", "a\r\nFLUSHALL"]), "line break"),
        (json!(["SET", "keep\n", "b"]), "line break"),
        (json!(["SET", "keep", "a\u{0}b"]), "NUL"),
    ];
    for (command, want) in cases {
        let mut a = on(&s, &[], json!({}));
        a["command"] = command.clone();
        let v = run(&a);
        assert_eq!(v["failed"], json!(true), "{command}: {v}");
        assert_eq!(v["changed"], json!(false), "{command}: {v}");
        assert!(msg(&v).contains(want), "{command}: {v}");
    }
    // Nothing but COMMAND INFO (and the connection's own AUTH/HELLO/INFO) reached the server.
    let after = s.reply(&["INFO", "commandstats"]);
    let calls = |text: &str, cmd: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .map(str::to_string)
    };
    for cmd in ["set", "get", "config|get", "subscribe", "flushall"] {
        assert_eq!(calls(&before, cmd), calls(&after, cmd), "{cmd} was sent");
    }
    assert!(s.reply(&["GET", "keep"]).contains("\r\nv\r\n"));
    // A secret_args index out of range.
    let v = run(&on(&s, &["PING"], json!({"secret_args": [3]})));
    assert!(msg(&v).contains("secret_args: 3 is not an index"), "{v}");
}

#[test]
fn secrets_are_masked_everywhere() {
    let s = server();
    // The password itself, read back by a command.
    let v = run(&on(&s, &["CONFIG", "GET", "requirepass"], json!({})));
    assert_eq!(
        v["reply"]["requirepass"],
        json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"),
        "the login password read back is not masked: {v}"
    );
    // A secret argument: masked in the msg, the invocation and the reply.
    let secret = "app-Secret-42";
    let v = run(&on(
        &s,
        &["SET", "token", secret],
        json!({"secret_args": [2]}),
    ));
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(!v.to_string().contains(secret), "{v}");
    // Without secret_args the value is data like any other.
    let v = run(&on(&s, &["GET", "token"], json!({})));
    assert_eq!(v["reply"], json!(secret), "{v}");
    // A wrong password: the error does not echo it.
    let mut a = on(&s, &["PING"], json!({}));
    a["login_password"] = json!("wrong-Pw-7");
    let (v, _) = run_module(bin(), &a);
    assert!(!v.to_string().contains("wrong-Pw-7"), "{v}");
    assert!(msg(&v).contains("WRONGPASS"), "{v}");
}

#[test]
fn master_of_a_sentinel_group() {
    let master = server();
    let sentinel = RedisProcess::sentinel(&[
        &format!("sentinel monitor grp 127.0.0.1 {} 1", master.port),
        &format!("sentinel auth-pass grp {}", conf_pw()),
    ]);
    let a = json!({"command": ["SET", "via", "sentinel"], "targets": "master", "master_name": "grp",
                   "login_host": "127.0.0.1", "login_port": sentinel.port, "login_password": PW});
    let v = run(&a);
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(
        v["nodes"],
        json!([format!("127.0.0.1:{}", master.port)]),
        "{v}"
    );
    assert!(master.reply(&["GET", "via"]).contains("sentinel"));
    let mut b = a.clone();
    b["master_name"] = json!("nope");
    let v = run(&b);
    assert!(
        msg(&v).contains("does not monitor a master named `nope`"),
        "{v}"
    );
    let mut c = a.clone();
    c.as_object_mut().map(|o| o.remove("master_name"));
    let v = run(&c);
    assert!(msg(&v).contains("needs master_name"), "{v}");
}

/// Six cluster nodes (three masters, three replicas), formed by `redis-cli --cluster create`
/// and waited for until every node says `cluster_state:ok` and every replica is in sync.
fn cluster() -> Vec<RedisProcess> {
    let nodes: Vec<RedisProcess> = (0..6)
        .map(|_| {
            RedisProcess::server(&[
                "cluster-enabled yes",
                "cluster-node-timeout 2000",
                "repl-diskless-sync-delay 0",
                &format!("requirepass {}", conf_pw()),
                &format!("masterauth {}", conf_pw()),
            ])
        })
        .collect();
    redis_cli_create_cluster(&nodes, 1, PW);
    nodes
}

#[test]
fn every_node_or_every_master_of_a_cluster() {
    let nodes = cluster();
    let seed = &nodes[0];
    let v = run(&on(seed, &["PING"], json!({"targets": "all_nodes"})));
    assert_eq!(v["replies"].as_array().map(Vec::len), Some(6), "{v}");
    assert!(v.get("reply").is_none(), "{v}");
    let roles: Vec<&str> = v["replies"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["role"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(roles.iter().filter(|r| **r == "master").count(), 3, "{v}");
    // A write on every master: CONFIG SET, then read back on each.
    let v = run(&on(
        seed,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        json!({"targets": "masters"}),
    ));
    assert_eq!(v["changed"], json!(true), "{v}");
    assert_eq!(v["replies"].as_array().map(Vec::len), Some(3), "{v}");
    let mut masters = 0;
    for n in &nodes {
        let is_master = n.reply(&["ROLE"]).contains("master");
        let policy = n.reply(&["CONFIG", "GET", "maxmemory-policy"]);
        assert_eq!(policy.contains("allkeys-lru"), is_master, "{}", n.port);
        masters += usize::from(is_master);
    }
    assert_eq!(masters, 3);
    // Check mode on every node: nothing sent.
    let v = run(&on(
        seed,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
        json!({"targets": "all_nodes", "_ansible_check_mode": true}),
    ));
    assert_eq!(v["sent"], json!(false), "{v}");
    assert!(nodes.iter().all(|n| !n
        .reply(&["CONFIG", "GET", "maxmemory-policy"])
        .contains("volatile-lfu")));
    // A plain server is not a cluster.
    let plain = server();
    let v = run(&on(&plain, &["PING"], json!({"targets": "masters"})));
    assert!(msg(&v).contains("is not in cluster mode"), "{v}");
}
