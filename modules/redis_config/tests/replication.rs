//! `replication: initial` against real redis-server processes: a failover done the way Sentinel
//! does it (`REPLICAOF` + `CONFIG REWRITE` on every instance) is never undone by the next run.
//!
//! See: issue 11 (Sentinel high availability), the redis_config part.

use redis_utils::testing::{free_port, run_module, RedisProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const PW: &str = "repl-Pass-5d1e";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_config"))
}

fn run(args: &Value) -> (Value, i32) {
    run_module(&bin(), args)
}

fn with(base: &Value, extra: Value) -> Value {
    let mut a = base.clone();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        a[k] = v;
    }
    a
}

/// redis-server under umask 027, as the collection's systemd unit runs it (`UMask=0027`): its
/// CONFIG REWRITE then keeps the file at 0640, the mode the module writes.
fn server_wrapper(dir: &Path) -> String {
    let w = dir.join("redis-server-umask027.sh");
    std::fs::write(&w, "#!/bin/sh\numask 027\nexec redis-server \"$@\"\n").expect("wrapper");
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    w.display().to_string()
}

/// One instance of the group: its own dir, port and config file.
struct Node {
    dir: tempfile::TempDir,
    port: u16,
}

impl Node {
    fn new() -> Node {
        Node {
            dir: tempfile::tempdir().expect("tmp"),
            port: free_port(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("redis.conf")
    }

    /// The task's settings for this node, as a role would give them.
    fn settings(&self, replicaof: Option<u16>) -> Value {
        let d = self.dir.path();
        let mut s = json!({
            "port": self.port,
            "dir": d.display().to_string(),
            "logfile": d.join("redis.log").display().to_string(),
            "pidfile": d.join("redis.pid").display().to_string(),
            "requirepass": PW,
            "masterauth": PW,
            "maxmemory": "64mb",
            "save": ["3600 1", "300 100"],
            "repl-diskless-sync-delay": 0,
        });
        if let Some(p) = replicaof {
            s["replicaof"] = json!(format!("127.0.0.1 {p}"));
        }
        s
    }

    fn args(&self, replicaof: Option<u16>) -> Value {
        json!({
            "path": self.path(),
            "settings": self.settings(replicaof),
            "replication": "initial",
            "apply": "live",
            "login_port": self.port,
            "login_password": PW,
        })
    }

    fn start(&self, wrapper: &str) -> RedisProcess {
        RedisProcess::from_config(wrapper, &self.path(), self.port, Some(PW))
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.path()).expect("read config")
    }
}

fn info_field(s: &RedisProcess, section: &str, field: &str) -> String {
    let text = s.raw(&["INFO", section]);
    text.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .to_string()
}

/// How often the server ran REPLICAOF (INFO commandstats), to prove the module sent none.
fn replicaof_calls(s: &RedisProcess) -> u64 {
    let v = info_field(s, "commandstats", "cmdstat_replicaof");
    v.split(',')
        .find_map(|kv| kv.strip_prefix("calls="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn role(s: &RedisProcess) -> (String, String) {
    (
        info_field(s, "replication", "role"),
        info_field(s, "replication", "master_port"),
    )
}

fn ok(s: &RedisProcess, args: &[&str]) {
    let reply = s.raw(args);
    assert!(reply.trim_end().ends_with("+OK"), "{args:?}: {reply:?}");
}

fn wait_link_up(s: &RedisProcess) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while info_field(s, "replication", "master_link_status") != "up" {
        assert!(
            std::time::Instant::now() < deadline,
            "replica never got its link up: {}",
            s.raw(&["INFO", "replication"])
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// See: issue 11 (replication: initial)
#[test]
fn issue_11_a_sentinel_failover_is_never_undone() {
    let tools = tempfile::tempdir().expect("tmp");
    let wrapper = server_wrapper(tools.path());
    let (a, b) = (Node::new(), Node::new());

    // First deployment (no files yet): the task's replication is written. The servers are not
    // running yet, so this is a file-only run, as a role's first run is.
    let file_only = json!({"apply": "file"});
    for (node, replicaof) in [(&a, None), (&b, Some(a.port))] {
        let (v, code) = run(&with(&node.args(replicaof), file_only.clone()));
        assert_eq!((code, v["changed"].clone()), (0, json!(true)), "{v}");
        assert_eq!(v["replication_source"], json!("task"), "{v}");
    }
    assert!(!String::from_utf8_lossy(&a.bytes()).contains("replicaof"));
    assert!(
        String::from_utf8_lossy(&b.bytes()).contains(&format!("replicaof 127.0.0.1 {}", a.port))
    );
    let sa = a.start(&wrapper);
    let sb = b.start(&wrapper);
    wait_link_up(&sb);

    // Running now, and as the task says: nothing to do, live or not.
    for (node, replicaof) in [(&a, None), (&b, Some(a.port))] {
        let (v, code) = run(&node.args(replicaof));
        assert_eq!((code, v["changed"].clone()), (0, json!(false)), "{v}");
        assert_eq!(v["replication_source"], json!("server"));
        assert!(
            v["replication_note"]
                .as_str()
                .is_some_and(|n| n.ends_with("as the task says")),
            "{v}"
        );
    }

    // The failover, as Sentinel does it: the replica promoted, the old master pointed at it,
    // each followed by CONFIG REWRITE (Redis rewrites its own file).
    ok(&sb, &["REPLICAOF", "NO", "ONE"]);
    ok(&sb, &["CONFIG", "REWRITE"]);
    ok(&sa, &["REPLICAOF", "127.0.0.1", &b.port.to_string()]);
    ok(&sa, &["CONFIG", "REWRITE"]);
    wait_link_up(&sa);
    let (fa, fb) = (a.bytes(), b.bytes());
    let (ta, tb) = (String::from_utf8_lossy(&fa), String::from_utf8_lossy(&fb));
    assert!(
        ta.contains("# Generated by CONFIG REWRITE")
            && ta.contains(&format!("replicaof 127.0.0.1 {}", b.port)),
        "{ta}"
    );
    assert!(!tb.contains("replicaof"), "{tb}");
    let calls = (replicaof_calls(&sa), replicaof_calls(&sb));
    assert_eq!(calls, (1, 1));

    // The next run with the ORIGINAL settings (a master, and a replica of a): check mode first,
    // then for real, live and file-only. Nothing changes: no REPLICAOF, files byte-identical.
    let runs = [
        json!({"_ansible_check_mode": true, "_ansible_diff": true}),
        json!({}),
        json!({"apply": "file"}),
    ];
    for extra in &runs {
        for (node, replicaof) in [(&a, None), (&b, Some(a.port))] {
            let args = with(&node.args(replicaof), extra.clone());
            let (v, code) = run(&args);
            assert_eq!(code, 0, "{extra}: {v}");
            assert_eq!(v["changed"], json!(false), "{extra}: {v}");
            assert_eq!(v["file_changed"], json!(false), "{extra}: {v}");
            assert_eq!(v["applied"], json!([]), "{extra}: {v}");
            assert_eq!(v["restart_required"], json!(false), "{extra}: {v}");
            let live = extra.get("apply").is_none();
            assert_eq!(
                v["replication_source"],
                json!(if live { "server" } else { "file" }),
                "{v}"
            );
            assert!(
                v["replication_note"]
                    .as_str()
                    .is_some_and(|n| n.contains("is not applied (a failover is never undone)")),
                "{v}"
            );
            assert!(!v.to_string().contains(PW), "password leaked: {v}");
        }
        assert_eq!(a.bytes(), fa, "{extra}: a's file was rewritten");
        assert_eq!(b.bytes(), fb, "{extra}: b's file was rewritten");
        assert_eq!(
            (replicaof_calls(&sa), replicaof_calls(&sb)),
            calls,
            "{extra}"
        );
        assert_eq!(role(&sa), ("slave".into(), b.port.to_string()), "{extra}");
        assert_eq!(role(&sb).0, "master", "{extra}");
    }
    let (v, _) = run(&a.args(None));
    let note = v["replication_note"].as_str().unwrap_or("");
    assert!(
        note.contains(&format!("the server is a replica of 127.0.0.1 {}", b.port))
            && note.contains("the task's replicaof (none) is not applied"),
        "{note}"
    );

    // managed (the default) would undo the failover: it plans REPLICAOF <a> on b, the new
    // master.
    let (v, code) = run(&with(
        &b.args(Some(a.port)),
        json!({"replication": "managed", "_ansible_check_mode": true}),
    ));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["applied"], json!(["replicaof"]), "{v}");
    assert!(v.get("replication_note").is_none(), "{v}");

    // A real difference (maxmemory) is still applied live and written, each file keeping the
    // replication Sentinel chose; check mode says the same as the real run.
    for (node, server, replicaof, keeps) in
        [(&a, &sa, None, Some(b.port)), (&b, &sb, Some(a.port), None)]
    {
        let mut args = node.args(replicaof);
        args["settings"]["maxmemory"] = json!("128mb");
        let before = node.bytes();
        let (check, code) = run(&with(&args, json!({"_ansible_check_mode": true})));
        assert_eq!(code, 0, "{check}");
        assert_eq!(node.bytes(), before, "check mode wrote the file");
        assert_eq!(info_field(server, "memory", "maxmemory"), "67108864");
        let (real, code) = run(&args);
        assert_eq!(code, 0, "{real}");
        for k in ["changed", "file_changed", "applied", "restart_required"] {
            assert_eq!(check[k], real[k], "{k}: check {check} real {real}");
        }
        assert_eq!(
            (real["changed"].clone(), real["file_changed"].clone()),
            (json!(true), json!(true)),
            "{real}"
        );
        assert_eq!(real["applied"], json!(["maxmemory"]), "{real}");
        assert_eq!(real["restart_required"], json!(false), "{real}");
        assert_eq!(info_field(server, "memory", "maxmemory"), "134217728");
        let text = std::fs::read_to_string(node.path()).expect("read");
        assert!(text.contains("maxmemory 128mb"), "{text}");
        match keeps {
            Some(p) => assert!(
                text.contains(&format!("replicaof 127.0.0.1 {p}\n")),
                "{text}"
            ),
            None => assert!(!text.contains("replicaof"), "{text}"),
        }
        assert!(!text.contains("# Generated by CONFIG REWRITE"), "{text}");
        // Idempotent from there.
        let (v, _) = run(&args);
        assert_eq!(v["changed"], json!(false), "{v}");
    }
    assert_eq!((replicaof_calls(&sa), replicaof_calls(&sb)), calls);
    assert_eq!(role(&sa), ("slave".into(), b.port.to_string()));
    assert_eq!(role(&sb).0, "master");
}

// See: issue 11 (replication: initial)
#[test]
fn issue_11_first_deployment_writes_the_task_s_replicaof_and_never_sends_it() {
    let master = RedisProcess::server(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    // A server already running as a master, its file not there yet: the file gets the task's
    // replicaof (the server reads it at its next start); the running server is not changed.
    let running = RedisProcess::server(&[]);
    let settings = json!({
        "port": running.port,
        "dir": dir.path().display().to_string(),
        "replicaof": format!("127.0.0.1 {}", master.port),
    });
    let args = json!({
        "path": path, "settings": settings, "replication": "initial",
        "apply": "live", "login_port": running.port,
    });
    let (check, code) = run(&with(&args, json!({"_ansible_check_mode": true})));
    assert_eq!(code, 0, "{check}");
    assert!(!path.exists(), "check mode wrote the file");
    let (v, code) = run(&args);
    assert_eq!(code, 0, "{v}");
    for k in ["changed", "file_changed", "applied"] {
        assert_eq!(check[k], v[k], "{k}: check {check} real {v}");
    }
    assert_eq!(
        (v["changed"].clone(), v["applied"].clone()),
        (json!(true), json!([])),
        "{v}"
    );
    assert_eq!(v["replication_source"], json!("task"));
    let note = v["replication_note"].as_str().unwrap_or("");
    assert!(
        note.contains("does not exist yet: replicaof comes from the task")
            && note.contains(&format!(
                "REPLICAOF 127.0.0.1 {} not sent: the running server stays a master",
                master.port
            )),
        "{note}"
    );
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.contains(&format!("replicaof 127.0.0.1 {}\n", master.port)),
        "{text}"
    );
    assert_eq!(role(&running).0, "master");
    assert_eq!(replicaof_calls(&running), 0);

    // And the file-only first run of a replica that is not running: the task's replicaof.
    let path2 = dir.path().join("replica.conf");
    let (v, code) = run(&json!({
        "path": path2, "replication": "initial",
        "settings": {"port": free_port(), "replicaof": "10.0.0.11 6379"},
    }));
    assert_eq!(
        (code, v["replication_source"].clone()),
        (0, json!("task")),
        "{v}"
    );
    assert!(std::fs::read_to_string(&path2)
        .expect("read")
        .contains("replicaof 10.0.0.11 6379\n"));
}

// See: issue 11 (replication: initial)
#[test]
fn issue_11_server_down_keeps_the_file_s_replication() {
    // The file says what Sentinel made of this server; the server is down (apply: file).
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    let base = json!({"path": path, "replication": "initial",
                      "settings": {"port": 7101, "replicaof": "10.0.0.1 6379", "maxmemory": "1mb"}});
    run(&base);
    let rewritten = std::fs::read_to_string(&path)
        .expect("read")
        .replace("replicaof 10.0.0.1 6379\n", "")
        + "\n# Generated by CONFIG REWRITE\nreplicaof 10.0.0.2 6380\nlatency-tracking-info-percentiles 50 99 99.9\n";
    std::fs::write(&path, &rewritten).expect("write");
    let (v, code) = run(&base);
    assert_eq!((code, v["changed"].clone()), (0, json!(false)), "{v}");
    assert_eq!(v["replication_source"], json!("file"));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), rewritten);
    // A real change is written with the file's replication, not the task's.
    let (v, _) = run(&with(
        &base,
        json!({"settings": {"port": 7101, "replicaof": "10.0.0.1 6379", "maxmemory": "2mb"}}),
    ));
    assert_eq!(v["changed"], json!(true), "{v}");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.contains("replicaof 10.0.0.2 6380\n") && !text.contains("10.0.0.1"),
        "{text}"
    );

    // The same with the promoted master's file (Redis removed its replicaof).
    std::fs::write(&path, text.replace("replicaof 10.0.0.2 6380\n", "")).expect("write");
    let (v, _) = run(&with(
        &base,
        json!({"settings": {"port": 7101, "replicaof": "10.0.0.1 6379", "maxmemory": "3mb"}}),
    ));
    assert_eq!(v["changed"], json!(true), "{v}");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("replicaof"), "{text}");
}

// See: issue 11 (replication: initial)
#[test]
fn issue_11_bad_input_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("redis.conf");
    // A file Redis cannot read: its replication is unknown, so nothing is written.
    std::fs::write(&path, "port 7102\nreplicaof \"10.0.0.2 6380\n").expect("write");
    let before = std::fs::read(&path).expect("read");
    let (v, code) = run(&json!({"path": path, "replication": "initial",
                                "settings": {"port": 7102, "replicaof": "10.0.0.1 6379"}}));
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("Redis could not read that file")),
        "{v}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);

    // A src template that does not write replicaof from settings would point the server
    // elsewhere than it is.
    std::fs::write(&path, "port 7102\nreplicaof 10.0.0.2 6380\n").expect("write");
    let before = std::fs::read(&path).expect("read");
    let src = dir.path().join("fixed.j2");
    std::fs::write(&src, "bind 127.0.0.1\nport 7102\nreplicaof 10.0.0.1 6379\n").expect("write");
    let (v, code) = run(&json!({"path": path, "src": src, "replication": "initial",
                                "settings": {"replicaof": "10.0.0.1 6379"}}));
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("the template renders a replica of 10.0.0.1 6379")),
        "{v}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);

    let (v, code) = run(
        &json!({"path": dir.path().join("sentinel.conf"), "template": "sentinel",
                                "replication": "initial"}),
    );
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("replication: initial is for redis.conf")),
        "{v}"
    );
    let (v, code) = run(&json!({"path": path, "replication": "sometimes"}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

// The table `replication: initial` reads a missing directive from is Redis 7.0's own.
#[test]
fn defaults_table_matches_a_real_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let conf = dir.path().join("min.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n",
            dir.path().display()
        ),
    )
    .expect("write");
    let s = RedisProcess::from_config("redis-server", &conf, port, None);
    let reply = s.raw(&["CONFIG", "GET", "*"]);
    // RESP: *N, then $len / value pairs.
    let items: Vec<&str> = reply
        .split("\r\n")
        .skip(1)
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|c| c.get(1).copied())
        .collect();
    let mut server = std::collections::BTreeMap::new();
    for pair in items.chunks(2) {
        if let [name, value] = pair {
            let name = redis_config::conf::canonical(name);
            server.insert(name, (*value).to_string());
        }
    }
    assert!(server.len() > 150, "{reply}");
    let table: std::collections::BTreeMap<String, String> = redis_config::compare::defaults()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    // Set by the fixture or by the environment (maxclients follows the fd limit).
    let skip = ["port", "bind", "dir", "maxclients"];
    for (name, value) in &server {
        if skip.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(table.get(name), Some(value), "default of {name}");
    }
    for name in table.keys() {
        assert!(
            server.contains_key(name),
            "{name} is not a Redis 7.0 parameter"
        );
    }
}
