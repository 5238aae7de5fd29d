//! Processes, pidfiles and listening sockets, read from /proc (Linux).

use std::path::Path;

/// What a pidfile holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pidfile {
    Missing,
    /// The file exists but does not hold a pid (the text, trimmed and shortened).
    Invalid(String),
    /// A symlink, a FIFO, a directory...: not read (why).
    NotRegular(String),
    Pid(i32),
}

/// Parses pidfile text: one positive decimal number, surrounding white space allowed.
#[must_use]
pub fn parse_pidfile(text: &str) -> Option<i32> {
    text.trim().parse::<i32>().ok().filter(|p| *p > 0)
}

/// Reads a pidfile without following a symlink.
///
/// Why: the pidfile's directory usually belongs to the user the server runs as, and the module
/// often runs as root. Whoever owns the directory can put a symlink to any file there; following
/// it would let the module read (and print a piece of) a file only root may read. A FIFO would
/// block the read, hence `O_NONBLOCK` and the regular-file check.
#[must_use]
pub fn read_pidfile(path: &Path) -> Pidfile {
    use nix::fcntl::OFlag;
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path);
    let file = match opened {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Pidfile::Missing,
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            return Pidfile::NotRegular("a symlink (not followed)".into())
        }
        Err(e) => return Pidfile::Invalid(format!("unreadable: {e}")),
        Ok(f) => f,
    };
    match file.metadata() {
        Ok(md) if md.is_file() => {}
        Ok(_) => return Pidfile::NotRegular("not a regular file".into()),
        Err(e) => return Pidfile::Invalid(format!("unreadable: {e}")),
    }
    // A pid is a few bytes; never read a huge file into memory.
    let mut text = String::new();
    if let Err(e) = file.take(4096).read_to_string(&mut text) {
        return Pidfile::Invalid(format!("unreadable: {e}"));
    }
    parse_pidfile(&text).map_or_else(
        || Pidfile::Invalid(text.trim().chars().take(40).collect()),
        Pidfile::Pid,
    )
}

/// The state letter from /proc/<pid>/stat (R, S, D, Z, ...); `None` when there is no such process.
#[must_use]
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_state(&stat)
}

/// The state field of a /proc/<pid>/stat line (the comm field may hold spaces and parentheses).
#[must_use]
pub fn parse_stat_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// True when the process exists and has not exited (a zombie waiting to be reaped has exited).
#[must_use]
pub fn is_alive(pid: i32) -> bool {
    pid > 0 && matches!(process_state(pid), Some(s) if s != 'Z' && s != 'X' && s != 'x')
}

/// The command line with NULs as spaces, trimmed (Redis rewrites its own to
/// `redis-server 127.0.0.1:6379`).
#[must_use]
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(s.trim().to_string())
}

/// The command line's words: NUL-separated arguments, each split at white space too (Redis
/// rewrites its title into argv[0] as `redis-server 127.0.0.1:6379`).
#[must_use]
pub fn cmdline_words(pid: i32) -> Vec<String> {
    cmdline(pid)
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The process's working directory (relative paths on its command line are relative to it).
#[must_use]
pub fn cwd(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// True when `pid` holds a socket listening on TCP `port` (needs permission to read its
/// /proc/<pid>/fd: root, or the same user).
#[must_use]
pub fn listens_on(pid: i32, port: u16) -> bool {
    let wanted = listening_inodes(port);
    if wanted.is_empty() {
        return false;
    }
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
        })
    })
}

fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            inodes.extend(parse_proc_net_tcp(&t, port));
        }
    }
    inodes.iter().map(|i| format!("socket:[{i}]")).collect()
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Names a process goes by: its command line's first word, its comm and its executable.
fn process_names(pid: i32) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(c) = cmdline(pid) {
        if let Some(first) = c.split_whitespace().next() {
            names.push(basename(first).to_string());
        }
    }
    if let Ok(c) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        names.push(c.trim().to_string());
    }
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        names.push(
            basename(&exe.to_string_lossy())
                .trim_end_matches(" (deleted)")
                .to_string(),
        );
    }
    names
}

/// True when the live process `pid` is a Redis or Valkey server or Sentinel: its name is
/// redis-server / redis-sentinel / valkey-server / valkey-sentinel, or its executable is `binary`
/// (whatever that is called).
#[must_use]
pub fn is_redis_process(pid: i32, binary: Option<&Path>) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let names = process_names(pid);
    if names.iter().any(|n| crate::flavour::is_server_name(n)) {
        return true;
    }
    let (Some(bin), Ok(exe)) = (binary, std::fs::read_link(format!("/proc/{pid}/exe"))) else {
        return false;
    };
    std::fs::canonicalize(bin).is_ok_and(|b| b == exe)
}

/// Inodes of sockets listening on `port`, from the text of /proc/net/tcp or /proc/net/tcp6.
#[must_use]
pub fn parse_proc_net_tcp(text: &str, port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        let (Some(local), Some(st), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
            continue;
        };
        let Some((_, port_hex)) = local.rsplit_once(':') else {
            continue;
        };
        if *st == "0A" && u16::from_str_radix(port_hex, 16).ok() == Some(port) {
            if let Ok(i) = inode.parse::<u64>() {
                if i != 0 {
                    out.push(i);
                }
            }
        }
    }
    out
}

/// Best effort: which processes hold a socket listening on `port` (pid, command line).
/// Needs permission to read other processes' /proc/<pid>/fd (root, or the same user).
#[must_use]
pub fn port_holders(port: u16) -> Vec<(i32, String)> {
    let wanted = listening_inodes(port);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
        });
        if holds {
            out.push((pid, cmdline(pid).unwrap_or_default()));
        }
    }
    out
}

/// Last `n` lines of what was written to a text file after byte `since` (the whole file when it
/// is now shorter than that: it was rotated or truncated).
#[must_use]
pub fn tail_since(path: &Path, since: u64, n: usize) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let since = usize::try_from(since).unwrap_or(0);
    let since = if since > bytes.len() { 0 } else { since };
    // Only the end matters; a log can be large.
    let start = bytes.len().saturating_sub(64 * 1024).max(since);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_parsing() {
        assert_eq!(parse_pidfile("1234\n"), Some(1234));
        assert_eq!(parse_pidfile("  42  "), Some(42));
        assert_eq!(parse_pidfile(""), None);
        assert_eq!(parse_pidfile("0"), None);
        assert_eq!(parse_pidfile("-5"), None);
        assert_eq!(parse_pidfile("12ab"), None);
        assert_eq!(parse_pidfile("99999999999"), None);
    }

    #[test]
    fn read_pidfile_states() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("x.pid");
        assert_eq!(read_pidfile(&p), Pidfile::Missing);
        std::fs::write(&p, "garbage\n").expect("write");
        assert_eq!(read_pidfile(&p), Pidfile::Invalid("garbage".into()));
        std::fs::write(&p, "777\n").expect("write");
        assert_eq!(read_pidfile(&p), Pidfile::Pid(777));
        // See: issue 8 item 5. A symlink is not followed, even to a file holding a pid.
        let link = d.path().join("link.pid");
        std::os::unix::fs::symlink(&p, &link).expect("symlink");
        assert!(matches!(read_pidfile(&link), Pidfile::NotRegular(w) if w.contains("symlink")));
        assert!(matches!(read_pidfile(d.path()), Pidfile::NotRegular(_)));
        let fifo = d.path().join("fifo.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        assert!(
            matches!(read_pidfile(&fifo), Pidfile::NotRegular(_)),
            "a FIFO neither blocks nor counts"
        );
    }

    #[test]
    fn stat_state_survives_odd_comm() {
        assert_eq!(parse_stat_state("123 (redis-server) S 1 123"), Some('S'));
        assert_eq!(parse_stat_state("123 (a) b) Z 1 123"), Some('Z'));
        assert_eq!(parse_stat_state("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_not_redis() {
        let me = i32::try_from(std::process::id()).expect("pid");
        assert!(is_alive(me));
        assert!(!is_redis_process(me, None));
        assert!(!is_alive(i32::MAX));
    }

    #[test]
    fn proc_net_tcp_listeners() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:4E21 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 6666 1 0000000000000000 20 4 30 10 -1\n   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_proc_net_tcp(text, 20001), vec![5555]);
        assert_eq!(parse_proc_net_tcp(text, 8080), vec![7777]);
        assert!(parse_proc_net_tcp(text, 1).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:4E21 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 8888 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_proc_net_tcp(v6, 20001), vec![8888]);
    }

    #[test]
    fn port_holder_found_for_own_listener() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = l.local_addr().expect("addr").port();
        let me = i32::try_from(std::process::id()).expect("pid");
        assert!(port_holders(port).iter().any(|(pid, _)| *pid == me));
        assert!(listens_on(me, port));
        drop(l);
        assert!(!listens_on(me, port));
    }

    #[test]
    fn tail_returns_last_lines() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("log");
        std::fs::write(
            &p,
            (1..=30).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .expect("write");
        let t = tail_since(&p, 0, 3);
        assert_eq!(t, vec!["line 28", "line 29", "line 30"]);
        assert!(tail_since(&d.path().join("missing"), 0, 3).is_empty());
        let before = std::fs::metadata(&p).expect("meta").len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"new 1\nnew 2\n"))
            .expect("append");
        assert_eq!(tail_since(&p, before, 20), vec!["new 1", "new 2"]);
        assert_eq!(
            tail_since(&p, 1 << 40, 1),
            vec!["new 2"],
            "rotated: whole file"
        );
    }
}
