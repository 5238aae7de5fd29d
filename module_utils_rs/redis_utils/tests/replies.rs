//! The SENTINEL and CLUSTER reply models against real redis-sentinel and cluster-enabled
//! redis-server processes, so that a change in what Redis prints shows up here first.
use ansible_module::{spec::validate, Params};
use redis_utils::connection::{with_connection_options, ConnectionParams, RedisConn};
use redis_utils::testing::RedisProcess;
use redis_utils::{cluster, sentinel};
use serde_json::json;
use std::time::{Duration, Instant};

fn connect(port: u16, password: Option<&str>) -> RedisConn {
    let spec = with_connection_options(vec![]);
    let args = json!({"login_port": port, "login_password": password, "login_host": "127.0.0.1"});
    let m = args.as_object().cloned().unwrap_or_default();
    let p = Params(validate(&spec, &m).map(|v| v.params).unwrap_or_default());
    ConnectionParams::from_params(&p)
        .and_then(|c| c.connect())
        .expect("connect")
}

#[test]
fn sentinel_monitor_and_peers() {
    let master = RedisProcess::server(&["requirepass mpw"]);
    let replica = RedisProcess::server(&[
        "requirepass mpw",
        "masterauth mpw",
        &format!("replicaof 127.0.0.1 {}", master.port),
    ]);
    let monitor = format!("sentinel monitor grp 127.0.0.1 {} 1", master.port);
    let s = RedisProcess::sentinel(&[
        &monitor,
        "sentinel auth-pass grp mpw",
        "sentinel down-after-milliseconds grp 4321",
        "sentinel parallel-syncs grp 2",
    ]);
    let mut con = connect(s.port, None);
    let m = sentinel::master(&mut con, "grp")
        .expect("master")
        .expect("monitored");
    assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", master.port));
    assert_eq!(
        (m.quorum, m.down_after_milliseconds, m.parallel_syncs),
        (1, 4321, 2)
    );
    assert_eq!(m.failover_timeout, 180_000);
    assert!(m.flags.contains("master"));
    assert_eq!(sentinel::masters(&mut con).expect("masters").len(), 1);
    assert!(sentinel::master(&mut con, "nope").expect("reply").is_none());
    assert_eq!(
        sentinel::master_addr(&mut con, "grp").expect("addr"),
        Some(("127.0.0.1".to_string(), master.port))
    );
    assert!(sentinel::ckquorum(&mut con, "grp")
        .expect("ckquorum")
        .is_ok());
    assert!(sentinel::ckquorum(&mut con, "nope").is_err());
    // Sentinel learns the replica from the master's INFO within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let peers = loop {
        let r = sentinel::replicas(&mut con, "grp").expect("replicas");
        if !r.is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].port, replica.port);
    assert!(sentinel::sentinels(&mut con, "grp")
        .expect("sentinels")
        .is_empty());
}

#[test]
fn cluster_nodes_of_a_one_node_cluster() {
    let node = RedisProcess::server(&["cluster-enabled yes", "cluster-node-timeout 1000"]);
    let mut con = connect(node.port, None);
    let before = cluster::nodes(&mut con).expect("nodes");
    assert_eq!(before.len(), 1);
    assert!(before[0].is_myself() && before[0].slots.is_empty());
    assert_eq!(cluster::uncovered(&before).len(), 1);
    let _: String = con
        .cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "99", "101", "16383"])
        .expect("addslots");
    let after = cluster::nodes(&mut con).expect("nodes");
    let me = &after[0];
    assert_eq!(me.port, node.port);
    assert_eq!(me.bus_port, node.port + 10000);
    assert_eq!(me.slot_count(), 16383);
    assert_eq!(
        cluster::uncovered(&after),
        vec![cluster::SlotRange {
            start: 100,
            end: 100
        }]
    );
    let info = cluster::info(&mut con).expect("info");
    assert_eq!(info["cluster_slots_assigned"], json!(16383));
    assert_eq!(info["cluster_known_nodes"], json!(1));
}
