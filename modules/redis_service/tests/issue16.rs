//! Regression tests for issue 16 (Valkey), driven through the module binary's args file.
//!
//! Valkey itself cannot run here under its own name: this host has Redis 7.0 only, and the
//! Debian 13 valkey-server of build/servers runs through ld.so (its comm and /proc/<pid>/exe are
//! the loader's). So these tests run this host's redis-server binary copied under the name
//! `valkey-server` (Debian's redis-server is redis-check-rdb by another name; the copy starts as a
//! server whatever it is called): what they check is the module's side, which executable it
//! looks for, which name it accepts as the instance's process, what it reports. Valkey's own
//! behaviour is checked on a Debian 13 host with valkey-server 8.1 in the Molecule scenario
//! `systemd` (manager=systemd, unit valkey-server@<name>).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// A directory with `valkey-server`: a copy of this host's redis-server binary.
fn fake_valkey_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let real = std::fs::canonicalize(which_redis_server()).expect("redis-server");
    std::fs::copy(&real, d.path().join("valkey-server")).expect("copy redis-server");
    d
}

fn which_redis_server() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .expect("redis-server on PATH (apt install redis-server)")
}

/// A server's config in `<tmp>/etc/valkey/main.conf`, as the role lays out a Valkey instance.
struct ValkeyInstance {
    dir: tempfile::TempDir,
}

impl ValkeyInstance {
    fn new() -> ValkeyInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("etc/valkey")).expect("mkdir");
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("etc/valkey/main.conf"),
            format!("port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/valkey.log\npidfile {d}/valkey.pid\nrequirepass {PW}\nsave \"\"\nappendonly no\n"),
        )
        .expect("write config");
        ValkeyInstance { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("etc/valkey/main.conf")
    }

    /// Runs the module with `path` as its PATH.
    fn run(&self, state: &str, extra: Value, path: &str) -> (Value, i32) {
        let mut a = json!({
            "name": "main",
            "state": state,
            "config": self.config(),
            "manager": "direct",
            "wait_timeout": 20,
            "login_password": PW,
        });
        if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                a.insert(k.clone(), v.clone());
            }
        }
        let args = self.dir.path().join("args.json");
        std::fs::write(&args, a.to_string()).expect("args");
        let out = Command::new(bin())
            .arg(&args)
            .env("PATH", path)
            .output()
            .expect("run module");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(!v.to_string().contains(PW), "password leaked: {v}");
        (v, out.status.code().unwrap_or(-1))
    }
}

impl Drop for ValkeyInstance {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.dir.path().join("valkey.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            if alive(pid) {
                sig(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn exe(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

#[test]
fn item1_valkey_flavour_starts_valkey_server_and_knows_it_by_name() {
    // See: issue 16 item 1
    let vk = fake_valkey_dir();
    let inst = ValkeyInstance::new();
    let sys_path = std::env::var("PATH").unwrap_or_default();
    let with_valkey = format!("{}:{sys_path}", vk.path().display());

    // flavour=valkey: valkey-server from PATH, not redis-server (which is on PATH too).
    let (v, code) = inst.run("started", json!({"flavour": "valkey"}), &with_valkey);
    assert_eq!(code, 0, "{v}");
    let pid = pid_of(&v);
    assert_eq!(v["flavour"], json!("valkey"), "{v}");
    assert_eq!(comm(pid), "valkey-server", "{v}");
    assert_eq!(
        exe(pid).and_then(|e| std::fs::canonicalize(e).ok()),
        std::fs::canonicalize(vk.path().join("valkey-server")).ok()
    );

    // The instance's process is known by its name alone: with no valkey-server on PATH (so no
    // executable to compare /proc/<pid>/exe with), the pidfile's pid is still this instance.
    let (v, code) = inst.run("status", json!({"flavour": "valkey"}), &sys_path);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["running"].clone(), pid_of(&v)),
        (json!(true), pid),
        "{v}"
    );
    assert!(
        !v["warnings"].to_string().contains("pidfile"),
        "the pidfile was taken for stale: {v}"
    );

    // auto: the config's directory is named valkey.
    let (v, code) = inst.run("status", json!({}), &sys_path);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["flavour"], json!("valkey"), "{v}");

    let (v, code) = inst.run("stopped", json!({}), &with_valkey);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(!alive(pid), "{v}");

    // auto again, now to start: valkey-server, from the config's directory.
    let (v, code) = inst.run("started", json!({}), &with_valkey);
    assert_eq!(code, 0, "{v}");
    let pid = pid_of(&v);
    assert_eq!(comm(pid), "valkey-server", "{v}");
    let (v, code) = inst.run("stopped", json!({"shutdown": "nosave"}), &with_valkey);
    assert_eq!((code, v["changed"].clone()), (0, json!(true)), "{v}");
    assert!(!alive(pid), "{v}");
}

#[test]
fn item1_missing_valkey_server_names_the_package_and_why_valkey() {
    // See: issue 16 item 1
    let inst = ValkeyInstance::new();
    let sys_path = std::env::var("PATH").unwrap_or_default();
    // redis-server is on PATH, valkey-server is not: the config's directory chose Valkey, and
    // the message says so instead of starting Redis in its place.
    let (v, code) = inst.run("started", json!({}), &sys_path);
    assert_eq!(code, 1, "{v}");
    let m = msg(&v);
    assert!(
        m.contains("cannot find valkey-server on PATH")
            && m.contains("install Valkey (valkey-server package)")
            && m.contains("flavour valkey chosen by config"),
        "{m}"
    );
    assert_eq!(
        std::fs::read_dir(inst.dir.path())
            .map(|d| d.flatten().any(|e| e.file_name() == "valkey.pid"))
            .ok(),
        Some(false),
        "nothing was started"
    );
    // flavour=redis overrides the directory: this host's redis-server starts.
    let (v, code) = inst.run("started", json!({"flavour": "redis"}), &sys_path);
    assert_eq!(code, 0, "{v}");
    let pid = pid_of(&v);
    assert_eq!(v["flavour"], json!("redis"));
    assert!(
        Path::new(&format!("/proc/{pid}")).exists() && comm(pid).starts_with("redis-server"),
        "{v}"
    );
    let (v, code) = inst.run(
        "stopped",
        json!({"flavour": "redis", "shutdown": "nosave"}),
        &sys_path,
    );
    assert_eq!((code, v["changed"].clone()), (0, json!(true)), "{v}");
}
