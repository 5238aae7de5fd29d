//! Real Redis processes for tests (feature `testing`): started from the Debian packages on
//! 127.0.0.1, on ports the test picks, in a temp dir, stopped by pid when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A port that is free now, as is port + 10000 (the cluster bus). Never 6379 or 26379.
#[must_use]
pub fn free_port() -> u16 {
    // Each test process walks its own slice of 20000-29999 so parallel test binaries rarely meet.
    let base = 20000 + u16::try_from(std::process::id() % 400).unwrap_or(0) * 25;
    let _ = NEXT_PORT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let p = if p >= 30000 { 20000 + p % 10000 } else { p };
        if p == 26379 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok()
        {
            return p;
        }
    }
}

/// A running redis-server or redis-sentinel.
pub struct RedisProcess {
    pub port: u16,
    pub password: Option<String>,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts `redis-server` with the given extra config lines (password: `requirepass`).
    ///
    /// # Panics
    /// When the server does not start: the test cannot go on.
    #[must_use]
    pub fn server(extra: &[&str]) -> RedisProcess {
        Self::start(Path::new("redis-server"), false, extra)
    }

    /// Starts the server of `build` (Redis 8.0, Valkey 8.1, or the machine's own) with the given
    /// extra config lines.
    ///
    /// # Panics
    /// When the server does not start.
    #[must_use]
    pub fn server_of(build: &ServerBuild, extra: &[&str]) -> RedisProcess {
        Self::start(&build.server, false, extra)
    }

    /// Starts the Sentinel of `build` with the given config lines.
    ///
    /// # Panics
    /// When sentinel does not start.
    #[must_use]
    pub fn sentinel_of(build: &ServerBuild, extra: &[&str]) -> RedisProcess {
        Self::start(&build.sentinel, true, extra)
    }

    /// Starts `redis-sentinel` with the given config lines.
    ///
    /// # Panics
    /// When sentinel does not start.
    #[must_use]
    pub fn sentinel(extra: &[&str]) -> RedisProcess {
        Self::start(Path::new("redis-sentinel"), true, extra)
    }

    /// Starts `binary` (redis-server or redis-sentinel) on a config file written elsewhere (by a
    /// module under test), listening on `port`. The process runs in `dir`'s lifetime.
    ///
    /// # Panics
    /// When it does not come up; the panic message has the log or the config.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn from_config(
        binary: &str,
        config: &Path,
        port: u16,
        password: Option<&str>,
    ) -> RedisProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        // Output goes to a file, never to a pipe nobody reads: a server that logs to stdout
        // would block once the pipe buffer is full.
        let out_path = dir.path().join("output.log");
        let out = std::fs::File::create(&out_path).expect("output file");
        let err = out.try_clone().expect("output file");
        let child = Command::new(binary)
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut p = RedisProcess {
            port,
            password: password.map(str::to_string),
            dir,
            child: Some(child),
        };
        if !wait_for_port(port, Duration::from_secs(10)) {
            p.stop();
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            panic!(
                "{binary} did not come up on port {port} with {}:\n{text}\nconfig:\n{}",
                config.display(),
                std::fs::read_to_string(config).unwrap_or_default()
            );
        }
        p
    }

    #[allow(clippy::expect_used)]
    fn start(binary: &Path, sentinel: bool, extra: &[&str]) -> RedisProcess {
        let binary_name = binary.display().to_string();
        let binary_name = binary_name.as_str();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let password = extra
            .iter()
            .find_map(|l| l.strip_prefix("requirepass "))
            .map(|s| s.trim_matches('"').to_string());
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\ndaemonize no\nsave \"\"\nappendonly no\n",
            dir.path().display(),
            dir.path().join("redis.log").display()
        );
        if sentinel {
            conf = format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\ndaemonize no\n",
                dir.path().display(),
                dir.path().join("redis.log").display()
            );
        }
        for l in extra {
            conf.push_str(l);
            conf.push('\n');
        }
        let conf_path = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf).expect("write config");
        let child = Command::new(binary)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary_name} (apt install redis-server redis-sentinel): {e}")
            });
        let p = RedisProcess {
            port,
            password,
            dir,
            child: Some(child),
        };
        if !wait_for_port(port, Duration::from_secs(10)) {
            let log = std::fs::read_to_string(p.dir.path().join("redis.log")).unwrap_or_default();
            panic!("{binary_name} on port {port} did not come up; log:\n{log}");
        }
        p
    }

    /// The config file the process was started with.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("redis.conf")
    }

    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process by pid (SIGTERM, then SIGKILL after 5 s) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one command with a raw RESP request (authenticating first when a password is set)
    /// and returns the raw reply text. For test set-up, not for the modules.
    #[must_use]
    pub fn raw(&self, args: &[&str]) -> String {
        let mut req = Vec::new();
        if let Some(pw) = &self.password {
            req.extend(resp(&["AUTH", pw]));
        }
        req.extend(resp(args));
        raw_roundtrip(self.port, &req)
    }

    /// [`raw`](Self::raw) without a leading `+OK` (the AUTH's, which it sends first when there is a
    /// password): the command's own reply, for test set-up.
    #[must_use]
    pub fn reply(&self, args: &[&str]) -> String {
        let r = self.raw(args);
        r.strip_prefix("+OK\r\n").unwrap_or(&r).to_string()
    }

    /// MIGRATEs `keys` (one slot's) to the node on 127.0.0.1:`to_port`, authenticating there
    /// with `password`: an interrupted reshard's moved keys, for the cluster tests. The raw reply.
    #[must_use]
    pub fn migrate_keys(&self, to_port: u16, password: &str, keys: &[String]) -> String {
        let port = to_port.to_string();
        let mut args = vec![
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "0",
            "5000",
            "AUTH",
            password,
            "KEYS",
        ];
        args.extend(keys.iter().map(String::as_str));
        self.raw(&args)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

fn raw_roundtrip(port: u16, req: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.write_all(req);
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"\r\n") && n < buf.len() {
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Forms a cluster of `nodes` with `redis-cli --cluster create --cluster-replicas <replicas>`
/// (the password from the environment, never argv) and waits until every node says
/// `cluster_state:ok`, knows every node, sees its share of masters, and every replica's link is
/// up. Panics when that does not happen within 60 s. Shared by the modules' cluster tests.
pub fn redis_cli_create_cluster(nodes: &[RedisProcess], replicas: usize, password: &str) {
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
    args.extend([
        "--cluster-replicas".into(),
        replicas.to_string(),
        "--cluster-yes".into(),
    ]);
    let out = Command::new("redis-cli")
        .args(&args)
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let masters = nodes.len() / (replicas + 1);
    let known = format!("cluster_known_nodes:{}\r", nodes.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = nodes.iter().all(|n| {
            let info = n.raw(&["CLUSTER", "INFO"]);
            let repl = n.raw(&["INFO", "replication"]);
            let seen = n.raw(&["CLUSTER", "NODES"]);
            let seen_masters = seen
                .lines()
                .filter(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("master")))
                .count();
            info.contains("cluster_state:ok")
                && info.contains(&known)
                && seen_masters == masters
                && (repl.contains("role:master") || repl.contains("master_link_status:up"))
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not become ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until something on 127.0.0.1:`port` answers PING (PONG, or NOAUTH on a protected server).
#[must_use]
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let reply = raw_roundtrip(port, &resp(&["PING"]));
        if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Which server a build is: Redis or its fork Valkey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Redis,
    Valkey,
}

/// One server build the tests can start: the machine's own redis-server (Debian 12: 7.0) or one
/// unpacked from the Debian 13 rootfs by `python3 tests/hosts/servers.py build` (Redis 8.0,
/// Valkey 8.1), described by build/servers/<name>/build.json.
#[derive(Clone, Debug)]
pub struct ServerBuild {
    /// `redis-7.0`, `redis-8.0`, `valkey-8.1`.
    pub name: String,
    pub flavour: Flavour,
    /// The full version, `8.1.1`.
    pub version: String,
    pub server: PathBuf,
    pub sentinel: PathBuf,
    pub cli: PathBuf,
}

/// Where servers.py puts its builds: `CF_SERVERS_DIR`, else the workspace's build/servers.
#[must_use]
pub fn servers_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CF_SERVERS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/servers")
}

impl ServerBuild {
    /// The machine's own redis-server, redis-sentinel and redis-cli from PATH, named after the
    /// version `redis-server --version` reports.
    ///
    /// # Panics
    /// When redis-server is not installed or says no version.
    #[must_use]
    pub fn host() -> ServerBuild {
        let out = Command::new("redis-server")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-server (apt install redis-server): {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or_else(|| panic!("redis-server --version said no version: {text}"))
            .to_string();
        ServerBuild {
            name: format!("redis-{}", major_minor(&version)),
            flavour: Flavour::Redis,
            version,
            server: PathBuf::from("redis-server"),
            sentinel: PathBuf::from("redis-sentinel"),
            cli: PathBuf::from("redis-cli"),
        }
    }

    /// The build `name` (`redis-7.0`, `redis-8.0`, `valkey-8.1`) when it exists: the host's own
    /// when its version matches, else build/servers/<name>/build.json.
    #[must_use]
    pub fn find(name: &str) -> Option<ServerBuild> {
        let host = ServerBuild::host();
        if host.name == name {
            return Some(host);
        }
        let text = std::fs::read_to_string(servers_dir().join(name).join("build.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let flavour = match s("flavour")?.as_str() {
            "valkey" => Flavour::Valkey,
            _ => Flavour::Redis,
        };
        Some(ServerBuild {
            name: name.to_string(),
            flavour,
            version: s("version")?,
            server: PathBuf::from(s("server")?),
            sentinel: PathBuf::from(s("sentinel")?),
            cli: PathBuf::from(s("cli")?),
        })
    }

    /// The build `name`, or None after printing a SKIP line when it is missing. With
    /// `CF_REQUIRE_SERVERS=1` a missing build is a failure instead: tests/test_server_versions.py
    /// runs the version tests that way under CI, after `make test` built the servers (cargo's
    /// own `make test-rust` step runs beside that build, so it may find none yet and skips).
    ///
    /// # Panics
    /// With `CF_REQUIRE_SERVERS=1`, when the build is missing.
    #[must_use]
    #[allow(clippy::print_stdout)]
    pub fn require(name: &str) -> Option<ServerBuild> {
        if let Some(b) = ServerBuild::find(name) {
            return Some(b);
        }
        let required = std::env::var("CF_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the server build {name} is missing from {} and CF_REQUIRE_SERVERS=1 (python3 tests/hosts/servers.py build)",
            servers_dir().display()
        );
        println!(
            "SKIP: no {name} server build in {} (python3 tests/hosts/servers.py build, after testhosts.py build-rootfs --release trixie)",
            servers_dir().display()
        );
        None
    }

    /// The three supported builds that exist (redis-7.0 always; redis-8.0 and valkey-8.1 when
    /// built), printing a SKIP line for each missing one (see `require`).
    #[must_use]
    pub fn supported() -> Vec<ServerBuild> {
        ["redis-7.0", "redis-8.0", "valkey-8.1"]
            .iter()
            .filter_map(|n| ServerBuild::require(n))
            .collect()
    }

    /// The product name as the modules print it: `Redis` or `Valkey`.
    #[must_use]
    pub fn product(&self) -> &'static str {
        match self.flavour {
            Flavour::Redis => "Redis",
            Flavour::Valkey => "Valkey",
        }
    }
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Runs a module binary with `args` written to an args file, as Ansible does; returns the parsed
/// result and the exit code.
///
/// # Panics
/// When the binary prints anything but one JSON object: that is the bug the tests look for.
#[must_use]
#[allow(clippy::expect_used)]
pub fn run_module(binary: &Path, args: &serde_json::Value) -> (serde_json::Value, i32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("args");
    std::fs::write(&path, args.to_string()).expect("write args");
    let out = Command::new(binary)
        .arg(&path)
        .output()
        .expect("run module");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "module printed something that is not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt install openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a throwaway PKI in `dir` with openssl: `ca.crt`/`ca.key`, `server.crt`/`server.key` and
/// `client.crt`/`client.key` signed by it (valid for 127.0.0.1 and localhost), and `other.crt`, a
/// second CA that signed nothing (trusting it must fail a handshake).
///
/// # Panics
/// When openssl is missing or fails.
pub fn make_test_pki(dir: &Path) {
    let days = "2";
    let self_signed_ca = |name: &str, cn: &str| {
        let (key, crt, subj) = (
            format!("{name}.key"),
            format!("{name}.crt"),
            format!("/CN={cn}"),
        );
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
                "-days", days, "-subj", &subj,
            ],
        );
    };
    self_signed_ca("ca", "creativeflow-test-ca");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap_or_else(|e| panic!("write san.ext: {e}"));
    for name in ["server", "client"] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                days,
                "-extfile",
                "san.ext",
            ],
        );
    }
    self_signed_ca("other", "other-ca");
}
