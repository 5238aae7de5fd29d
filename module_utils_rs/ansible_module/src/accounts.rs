//! Users and groups by name or number, without glibc's NSS.
//!
//! Why not `getpwnam(3)`: the modules are static glibc binaries, and a static glibc still loads
//! the NSS modules that nsswitch.conf names (`passwd: files systemd`, sssd, LDAP). Loading a
//! shared NSS module into a static binary crashes it (SIGSEGV, no JSON at all: issue 8 item 6).
//! So this reads `/etc/passwd` and `/etc/group` itself, which covers every local account, and
//! only for a name that is not there asks the dynamic `getent` program, which uses the host's
//! NSS (sssd, LDAP, systemd's dynamic users) in its own process. Numeric ids are taken as they
//! are, after a range check: a uid that does not fit `uid_t`, or the reserved `-1`
//! (4294967295), is an error rather than a silent wrap to some other id.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// A group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
}

/// Why a user or group could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountError {
    /// No such user or group, neither in the files nor through `getent`.
    NotFound { kind: &'static str, name: String },
    /// A numeric id out of `uid_t`/`gid_t`'s range, or the reserved -1.
    OutOfRange { kind: &'static str, value: String },
    /// An empty name, or one with characters no account name has (`:`, newline, NUL).
    Invalid { kind: &'static str, value: String },
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { kind, name } => {
                write!(f, "{kind} `{name}` does not exist on this host")
            }
            Self::OutOfRange { kind, value } => {
                write!(f, "{kind} id `{value}` is out of range (0 to 4294967294)")
            }
            Self::Invalid { kind, value } => {
                write!(
                    f,
                    "{kind} `{}` is not a valid {kind} name",
                    value.escape_debug()
                )
            }
        }
    }
}

impl std::error::Error for AccountError {}

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// Resolves a user given by name or by number (`"0"` is root).
///
/// # Errors
/// An unknown name, an out-of-range number or an impossible name.
pub fn user(spec: &str) -> Result<Account, AccountError> {
    user_in(spec, Path::new(PASSWD), true)
}

/// Resolves a group given by name or by number.
///
/// # Errors
/// An unknown name, an out-of-range number or an impossible name.
pub fn group(spec: &str) -> Result<GroupEntry, AccountError> {
    group_in(spec, Path::new(GROUP), true)
}

/// `Some(id)` when `spec` is all digits; an error when it is all digits but out of range.
fn numeric(spec: &str, kind: &'static str) -> Result<Option<u32>, AccountError> {
    if spec.is_empty() || !spec.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match spec.parse::<u32>() {
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(AccountError::OutOfRange {
            kind,
            value: spec.to_string(),
        }),
    }
}

fn check_name(spec: &str, kind: &'static str) -> Result<(), AccountError> {
    if spec.is_empty() || spec.contains([':', '\n', '\r', '\0']) {
        return Err(AccountError::Invalid {
            kind,
            value: spec.to_string(),
        });
    }
    Ok(())
}

fn parse_passwd_line(line: &str) -> Option<Account> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(Account {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
    })
}

fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 3 {
        return None;
    }
    Some(GroupEntry {
        name: f[0].to_string(),
        gid: f[2].parse().ok()?,
    })
}

/// The first entry of `file` that `pick` accepts.
fn scan<T>(file: &Path, parse: fn(&str) -> Option<T>, pick: impl Fn(&T) -> bool) -> Option<T> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().filter_map(parse).find(|e| pick(e))
}

/// `getent DATABASE KEY` through the host's NSS, in a process of its own. `None` when getent is
/// missing, fails or finds nothing.
fn getent(database: &str, key: &str) -> Option<String> {
    let out = Command::new("getent")
        .args([database, "--", key])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .next()
        .map(str::to_string)
}

fn user_in(spec: &str, file: &Path, use_getent: bool) -> Result<Account, AccountError> {
    if let Some(uid) = numeric(spec, "user")? {
        let found = scan(file, parse_passwd_line, |a| a.uid == uid).or_else(|| {
            use_getent
                .then(|| getent("passwd", spec).and_then(|l| parse_passwd_line(&l)))
                .flatten()
        });
        // A uid with no account is still a valid owner for chown, as for Ansible's `owner`.
        return Ok(found.unwrap_or(Account {
            name: spec.to_string(),
            uid,
            gid: uid,
            home: PathBuf::from("/"),
        }));
    }
    check_name(spec, "user")?;
    scan(file, parse_passwd_line, |a| a.name == spec)
        .or_else(|| {
            use_getent
                .then(|| getent("passwd", spec).and_then(|l| parse_passwd_line(&l)))
                .flatten()
                .filter(|a| a.name == spec)
        })
        .ok_or_else(|| AccountError::NotFound {
            kind: "user",
            name: spec.to_string(),
        })
}

fn group_in(spec: &str, file: &Path, use_getent: bool) -> Result<GroupEntry, AccountError> {
    if let Some(gid) = numeric(spec, "group")? {
        let found = scan(file, parse_group_line, |g| g.gid == gid).or_else(|| {
            use_getent
                .then(|| getent("group", spec).and_then(|l| parse_group_line(&l)))
                .flatten()
        });
        return Ok(found.unwrap_or(GroupEntry {
            name: spec.to_string(),
            gid,
        }));
    }
    check_name(spec, "group")?;
    scan(file, parse_group_line, |g| g.name == spec)
        .or_else(|| {
            use_getent
                .then(|| getent("group", spec).and_then(|l| parse_group_line(&l)))
                .flatten()
                .filter(|g| g.name == spec)
        })
        .ok_or_else(|| AccountError::NotFound {
            kind: "group",
            name: spec.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("passwd");
        let g = d.path().join("group");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nredis:x:105:109::/var/lib/redis:/usr/sbin/nologin\n",
        )
        .expect("write");
        std::fs::write(&g, "root:x:0:\nredis:x:109:\n").expect("write");
        (d, p, g)
    }

    #[test]
    fn names_and_numbers_from_the_files() {
        let (_d, p, g) = files();
        let r = user_in("redis", &p, false).expect("redis");
        assert_eq!((r.uid, r.gid), (105, 109));
        assert_eq!(r.home, PathBuf::from("/var/lib/redis"));
        // See: issue 8 item 7 (`user: 0` said root does not exist).
        assert_eq!(user_in("0", &p, false).expect("root").name, "root");
        assert_eq!(group_in("redis", &g, false).expect("g").gid, 109);
        assert_eq!(group_in("0", &g, false).expect("g").name, "root");
        // A number without an account is still an id.
        assert_eq!(user_in("4242", &p, false).expect("n").uid, 4242);
    }

    #[test]
    fn unknown_and_out_of_range_are_errors() {
        // See: issue 8 items 6 and 7.
        let (_d, p, g) = files();
        assert_eq!(
            user_in("nosuchuser", &p, false)
                .expect_err("must fail")
                .to_string(),
            "user `nosuchuser` does not exist on this host"
        );
        assert!(group_in("nosuchgroup", &g, false).is_err());
        for big in ["99999999999", "4294967295", "4294967296"] {
            let e = user_in(big, &p, false).expect_err("must fail");
            assert!(matches!(e, AccountError::OutOfRange { .. }), "{big}: {e}");
            assert!(group_in(big, &g, false).is_err());
        }
        assert_eq!(
            user_in("4294967294", &p, false).expect("max").uid,
            4_294_967_294
        );
        for bad in ["", "a:b", "a\nb", "a\0b"] {
            assert!(matches!(
                user_in(bad, &p, false),
                Err(AccountError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn the_hosts_own_accounts_resolve_without_nss() {
        // Runs in the test binary (dynamic) but through the same code path as the static module.
        assert_eq!(user("root").expect("root").uid, 0);
        assert_eq!(group("0").expect("root").gid, 0);
        assert!(matches!(
            user("no-such-user-creativeflow"),
            Err(AccountError::NotFound { .. })
        ));
    }
}
