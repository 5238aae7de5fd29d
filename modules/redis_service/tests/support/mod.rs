//! The harness shared by the integration tests: an instance's config in a temp dir, the
//! module run through its args file as Ansible runs it, and cleanup of every Redis process a
//! result or the pidfile named.
#![allow(dead_code, unused_imports)]

pub use redis_utils::testing::{free_port, make_test_pki, run_module};
pub use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PW: &str = "svc-secret-3e9b1f";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis_service"))
}

pub fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap_or("")
}

pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().chars().next()))
        .flatten()
        .is_some_and(|st| st != 'Z' && st != 'X')
}

pub fn is_redis(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("redis"))
        .unwrap_or(false)
}

pub fn sig(pid: i32, s: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
}

/// A config file in a temp dir, and every pid the module reported for it.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub port: u16,
    pub kind: &'static str,
    pub pids: Mutex<Vec<i32>>,
}

impl Instance {
    /// A password-protected server: port from free_port, dir/logfile/pidfile in the temp dir.
    pub fn server(extra: &[&str]) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/redis.log\npidfile {d}/redis.pid\nrequirepass {PW}\nsave \"\"\nappendonly no\n"
        );
        for l in extra {
            conf.push_str(l);
            conf.push('\n');
        }
        std::fs::write(dir.path().join("redis.conf"), conf).expect("write config");
        Instance {
            dir,
            name: format!("t{port}"),
            port,
            kind: "server",
            pids: Mutex::new(Vec::new()),
        }
    }

    pub fn sentinel() -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/redis.log\npidfile {d}/redis.pid\n"
        );
        std::fs::write(dir.path().join("redis.conf"), conf).expect("write config");
        Instance {
            dir,
            name: format!("s{port}"),
            port,
            kind: "sentinel",
            pids: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("redis.conf")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("redis.pid")
    }

    pub fn args(&self, state: &str, extra: Value) -> Value {
        let mut a = json!({
            "name": self.name,
            "kind": self.kind,
            "state": state,
            "config": self.config(),
            "manager": "direct",
            "wait_timeout": 20,
        });
        if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                a.insert(k.clone(), v.clone());
            }
        }
        a
    }

    /// Runs the module; remembers the pid it reports; checks the password never leaks.
    pub fn run(&self, state: &str, extra: Value) -> (Value, i32) {
        let (v, code) = run_module(&bin(), &self.args(state, extra));
        if let Some(pid) = v["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
            if let Ok(mut g) = self.pids.lock() {
                g.push(pid);
            }
        }
        assert!(
            !v.to_string().contains(PW),
            "the config's requirepass leaked: {v}"
        );
        (v, code)
    }

    pub fn ok(&self, state: &str, extra: Value) -> Value {
        let (v, code) = self.run(state, extra);
        assert_eq!(code, 0, "state={state}: {v}");
        assert!(v.get("failed").is_none(), "state={state}: {v}");
        v
    }

    pub fn fail(&self, state: &str, extra: Value) -> Value {
        let (v, code) = self.run(state, extra);
        assert_eq!(code, 1, "state={state} should fail: {v}");
        assert_eq!(v["failed"], json!(true), "{v}");
        v
    }

    /// One command over a raw connection (AUTH first for a server); the reply's first line.
    pub fn cmd(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = Vec::new();
        if self.kind == "server" {
            req.extend(resp(&["AUTH", PW]));
        }
        req.extend(resp(args));
        s.write_all(&req).expect("write");
        let mut r = BufReader::new(s);
        let mut line = String::new();
        if self.kind == "server" {
            r.read_line(&mut line).expect("auth reply");
            assert_eq!(line, "+OK\r\n");
            line.clear();
        }
        r.read_line(&mut line).expect("reply");
        line.trim_end().to_string()
    }

    /// One command (AUTH first for a server); the reply's first line, or "" when nothing
    /// answers. Unlike [`Instance::cmd`], for a server that may not be up.
    pub fn try_cmd(&self, args: &[&str]) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut req = Vec::new();
        if self.kind == "server" {
            req.extend(resp(&["AUTH", PW]));
        }
        req.extend(resp(args));
        if s.write_all(&req).is_err() {
            return String::new();
        }
        let mut r = BufReader::new(s);
        let mut line = String::new();
        if self.kind == "server" {
            let _ = r.read_line(&mut line);
            line.clear();
        }
        let _ = r.read_line(&mut line);
        line.trim_end().to_string()
    }

    /// Writes `n` keys in one pipeline.
    pub fn populate(&self, n: usize) {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut req = resp(&["AUTH", PW]);
        for i in 0..n {
            let k = format!("key:{i}");
            let v = format!("value-{i}");
            req.extend(resp(&["SET", &k, &v]));
        }
        let mut w = s.try_clone().expect("clone");
        let writer = std::thread::spawn(move || w.write_all(&req));
        let mut r = BufReader::new(s);
        let mut line = String::new();
        for _ in 0..=n {
            line.clear();
            r.read_line(&mut line).expect("reply");
            assert_eq!(line, "+OK\r\n");
        }
        writer
            .join()
            .expect("writer thread")
            .expect("write pipeline");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let mut pids = self.pids.lock().map(|g| g.clone()).unwrap_or_default();
        if let Ok(t) = std::fs::read_to_string(self.pidfile()) {
            pids.extend(t.trim().parse::<i32>().ok());
        }
        for pid in pids {
            if !(alive(pid) && is_redis(pid)) {
                continue;
            }
            sig(pid, nix::sys::signal::Signal::SIGCONT);
            sig(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(pid) {
                sig(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

pub fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

pub fn pid_of(v: &Value) -> i32 {
    v["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid in {v}"))
}

pub fn pgrp(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}
