//! redis_cluster's `check` and `fixed` against Redis 7.0 (this machine's), Redis 8.0 and Valkey
//! 8.1 (Debian 13's, unpacked by `python3 tests/hosts/servers.py build`), each a cluster of three
//! masters with a replica each. Valkey 8 copies a master's MIGRATING/IMPORTING marks to its
//! replicas: an interrupted move must still be one open slot (one migrating master, one
//! importing master) that `fixed` closes, not a refusal for "open on several nodes". A build that
//! is missing is skipped with a SKIP line (a failure with CF_REQUIRE_SERVERS=1, as
//! tests/test_server_versions.py runs this file under CI).

use redis_utils::testing::{run_module, wait_until, RedisProcess, ServerBuild};
use serde_json::{json, Value};
use std::path::Path;

const PW: &str = "vers-cl-9d2a";
const SLOT: u16 = 12182; // the slot of "foo"

fn run(args: &Value) -> Value {
    let (v, _) = run_module(Path::new(env!("CARGO_BIN_EXE_redis_cluster")), args);
    assert!(!v.to_string().contains(PW), "password in the result: {v}");
    v
}

fn myid(n: &RedisProcess) -> String {
    n.reply(&["CLUSTER", "MYID"])
        .lines()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// The node's own CLUSTER NODES line.
fn myself_line(n: &RedisProcess) -> String {
    n.reply(&["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap_or("")
        .to_string()
}

/// `n` cluster-enabled nodes of `build` with the password and `extra` config lines, formed
/// into a cluster with one replica per master by the module; the nodes, their addresses and the
/// module's result.
fn formed(
    build: &ServerBuild,
    n: usize,
    extra: &[&str],
) -> (Vec<RedisProcess>, Vec<String>, Value) {
    let (pass, auth) = (format!("requirepass {PW}"), format!("masterauth {PW}"));
    let mut lines = vec![
        "cluster-enabled yes",
        "cluster-node-timeout 5000",
        &pass,
        &auth,
    ];
    lines.extend_from_slice(extra);
    let nodes: Vec<RedisProcess> = (0..n)
        .map(|_| RedisProcess::server_of(build, &lines))
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let v = run(&json!({"nodes": addrs, "replicas": 1, "login_password": PW, "wait_timeout": 60}));
    (nodes, addrs, v)
}

fn interrupted_move_is_one_open_slot_that_fixed_closes(build: &ServerBuild) {
    let what = format!("{} {}", build.product(), build.version);
    let (nodes, _, v) = formed(build, 6, &[]);
    assert_eq!(v["consistent"], json!(true), "{what}: {v}");

    // The slot's owner answers the SET; any other node redirects to it.
    let owner = nodes
        .iter()
        .position(|n| n.reply(&["SET", "{foo}k0", "v0"]).starts_with("+OK"))
        .unwrap_or_else(|| panic!("{what}: no node took {{foo}}k0"));
    let is_master = |n: &RedisProcess| myself_line(n).contains("master");
    let target = (0..6)
        .find(|i| *i != owner && is_master(&nodes[*i]))
        .unwrap_or_else(|| panic!("{what}: no second master"));
    for i in 1..30 {
        let r = nodes[owner].reply(&["SET", &format!("{{foo}}k{i}"), &format!("v{i}")]);
        assert!(r.starts_with("+OK"), "{what}: {r}");
    }
    let (src_id, dst_id) = (myid(&nodes[owner]), myid(&nodes[target]));
    let s = SLOT.to_string();
    let r = nodes[target].reply(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
    assert!(r.starts_with("+OK"), "{what}: {r}");
    let r = nodes[owner].reply(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
    assert!(r.starts_with("+OK"), "{what}: {r}");
    let moved: Vec<String> = (0..10).map(|i| format!("{{foo}}k{i}")).collect();
    let r = nodes[owner].migrate_keys(nodes[target].port, PW, &moved);
    assert!(r.ends_with("+OK\r\n"), "{what}: MIGRATE: {r}");

    // What makes Valkey different: the replicas carry the marks too (so the test is real).
    let marked = || {
        nodes
            .iter()
            .filter(|n| myself_line(n).contains(&format!("[{SLOT}-")))
            .count()
    };
    if build.name.starts_with("valkey") {
        wait_until("the replicas to copy the slot marks", 10, || marked() == 4);
    } else {
        assert_eq!(marked(), 2, "{what}: only the two masters mark the slot");
    }

    let seed =
        json!({"login_host": "127.0.0.1", "login_port": nodes[0].port, "login_password": PW});
    let mut check = seed.clone();
    check["state"] = json!("check");
    let v = run(&check);
    assert_eq!(v["consistent"], json!(false), "{what}: {v}");
    let open = v["open_slots"].as_array().cloned().unwrap_or_default();
    assert_eq!(open.len(), 1, "{what}: {v}");
    assert_eq!(open[0]["slot"], json!(SLOT), "{what}: {v}");

    let mut fixed = seed.clone();
    fixed["state"] = json!("fixed");
    let v = run(&fixed);
    assert_eq!(v["failed"], Value::Null, "{what}: {v}");
    assert_eq!(v["changed"], json!(true), "{what}: {v}");
    assert_eq!(v["consistent"], json!(true), "{what}: {v}");
    for i in 0..30 {
        let r = nodes[target].reply(&["GET", &format!("{{foo}}k{i}")]);
        assert!(
            r.contains(&format!("v{i}")),
            "{what}: key {i} on the new owner: {r}"
        );
    }
    wait_until("every node to drop the slot marks", 10, || marked() == 0);
    let v = run(&fixed);
    assert_eq!(v["changed"], json!(false), "{what}: {v}");
}

/// Shrinking by a master and its replica: the drained master turns itself into a replica once
/// its last slot is gone, and Valkey 8 then drops the connections whose SETSLOT still waited for
/// its replicas. The shrink must succeed anyway (it failed so on Valkey, in CI and here).
fn a_shrink_drains_a_master_with_a_replica(build: &ServerBuild) {
    let what = format!("{} {}", build.product(), build.version);
    // As the scenarios run them: each write on disk before its reply, which makes the
    // replicas' acknowledgements slow enough to race the hand-over.
    let (nodes, addrs, v) = formed(build, 8, &["appendonly yes", "appendfsync always"]);
    assert_eq!(v["consistent"], json!(true), "{what}: {v}");
    let all = v["nodes"].as_array().cloned().unwrap_or_default();
    let master = all
        .iter()
        .find(|n| n["role"] == json!("master"))
        .and_then(|n| n["node"].as_str())
        .unwrap_or_else(|| panic!("{what}: no master in {v}"))
        .to_string();
    let mut remove = vec![master.clone()];
    remove.extend(
        all.iter()
            .filter(|n| n["master"] == json!(master))
            .filter_map(|n| n["node"].as_str().map(str::to_string)),
    );
    assert_eq!(remove.len(), 2, "{what}: {v}");
    let keep: Vec<&String> = addrs.iter().filter(|a| !remove.contains(a)).collect();
    let v = run(
        &json!({"nodes": keep, "replicas": 1, "login_password": PW, "wait_timeout": 120,
                        "remove_nodes": remove}),
    );
    assert_eq!(v["failed"], Value::Null, "{what}: {v}");
    assert_eq!(v["consistent"], json!(true), "{what}: {v}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(6), "{what}: {v}");
    // Once it returns no node shows a slot open, replicas included: Valkey's replicas copy their
    // master's marks, and `valkey-cli --cluster check` reports a replica's as an open slot.
    for n in nodes
        .iter()
        .filter(|n| keep.contains(&&format!("127.0.0.1:{}", n.port)))
    {
        let me = myself_line(n);
        assert!(
            !me.contains("->-") && !me.contains("-<-"),
            "{what}: a slot left open: {me}"
        );
    }
}

#[test]
fn redis_7_0() {
    if let Some(b) = ServerBuild::require("redis-7.0") {
        interrupted_move_is_one_open_slot_that_fixed_closes(&b);
        a_shrink_drains_a_master_with_a_replica(&b);
    }
}

#[test]
fn redis_8_0() {
    if let Some(b) = ServerBuild::require("redis-8.0") {
        interrupted_move_is_one_open_slot_that_fixed_closes(&b);
        a_shrink_drains_a_master_with_a_replica(&b);
    }
}

#[test]
fn valkey_8_1() {
    if let Some(b) = ServerBuild::require("valkey-8.1") {
        interrupted_move_is_one_open_slot_that_fixed_closes(&b);
        a_shrink_drains_a_master_with_a_replica(&b);
    }
}
