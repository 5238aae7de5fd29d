//! Writing files the way a config-management tool must: atomically (temp file in the same
//! directory, fsync, rename, fsync the directory), with mode and owner applied *before* the
//! rename so the file never exists with the wrong permissions, and optional backups named like
//! Ansible's (`<path>.<pid>.<timestamp>~`).

use nix::unistd::{chown, Gid, Group, Uid, User};
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a file could not be written. Nothing was changed at `path` when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError(pub String);

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FileError {}

/// Parses an Ansible-style mode: `"0640"`, `"640"`, `0o640` given as the decimal 416, or
/// `"u=rw,g=r,o="`.
///
/// # Errors
/// A mode that is neither octal nor symbolic.
pub fn parse_mode(mode: &str) -> Result<u32, FileError> {
    let m = mode.trim();
    if !m.is_empty() && m.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(m, 8)
            .ok()
            .filter(|v| *v <= 0o7777)
            .ok_or_else(|| FileError(format!("mode `{mode}` is out of range")));
    }
    let mut out = 0u32;
    for clause in m.split(',') {
        let (who, perms) = clause.split_once('=').ok_or_else(|| {
            FileError(format!(
                "mode `{mode}` is neither octal (0640) nor symbolic (u=rw,g=r,o=)"
            ))
        })?;
        let bits: u32 = perms.chars().try_fold(0, |acc, c| match c {
            'r' => Ok(acc | 4),
            'w' => Ok(acc | 2),
            'x' => Ok(acc | 1),
            _ => Err(FileError(format!(
                "mode `{mode}`: unknown permission `{c}`"
            ))),
        })?;
        for w in who.chars() {
            match w {
                'u' => out |= bits << 6,
                'g' => out |= bits << 3,
                'o' => out |= bits,
                'a' => out |= bits << 6 | bits << 3 | bits,
                _ => return Err(FileError(format!("mode `{mode}`: unknown class `{w}`"))),
            }
        }
    }
    Ok(out)
}

fn resolve_owner(
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(Option<Uid>, Option<Gid>), FileError> {
    let uid = match owner {
        None => None,
        Some(o) if o.chars().all(|c| c.is_ascii_digit()) => o.parse().ok().map(Uid::from_raw),
        Some(o) => Some(
            User::from_name(o)
                .ok()
                .flatten()
                .ok_or_else(|| FileError(format!("owner `{o}` does not exist on this host")))?
                .uid,
        ),
    };
    let gid = match group {
        None => None,
        Some(g) if g.chars().all(|c| c.is_ascii_digit()) => g.parse().ok().map(Gid::from_raw),
        Some(g) => Some(
            Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| FileError(format!("group `{g}` does not exist on this host")))?
                .gid,
        ),
    };
    Ok((uid, gid))
}

/// Checks that `owner` and `group` exist on this host, so that check mode reports what a real
/// run would fail on.
///
/// # Errors
/// An unknown user or group.
pub fn check_owner(owner: Option<&str>, group: Option<&str>) -> Result<(), FileError> {
    resolve_owner(owner, group).map(|_| ())
}

/// Settings for [`write_atomic`].
#[derive(Clone, Debug, Default)]
pub struct FileAttrs<'a> {
    pub mode: Option<u32>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
}

/// Replaces `path` with `content` atomically. Readers see the old file or the new one, never a
/// partial one; on any error the old file is untouched and the temp file removed.
///
/// # Errors
/// Missing directory, permissions, unknown owner/group, disk full.
pub fn write_atomic(path: &Path, content: &[u8], attrs: &FileAttrs<'_>) -> Result<(), FileError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.is_dir() {
        return Err(FileError(format!(
            "cannot write `{}`: directory `{}` does not exist",
            path.display(),
            dir.display()
        )));
    }
    let (uid, gid) = resolve_owner(attrs.owner, attrs.group)?;
    let ctx = |what: &str, e: &dyn fmt::Display| {
        FileError(format!("cannot write `{}`: {what}: {e}", path.display()))
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ctx("creating a temp file", &e))?;
    tmp.write_all(content).map_err(|e| ctx("writing", &e))?;
    tmp.as_file().sync_all().map_err(|e| ctx("fsync", &e))?;
    // Keep the existing file's mode when none is asked for, as Ansible's template module does.
    let mode = attrs.mode.or_else(|| {
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    });
    if let Some(mode) = mode {
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(mode))
            .map_err(|e| ctx("setting the mode", &e))?;
    }
    if uid.is_some() || gid.is_some() {
        chown(tmp.path(), uid, gid).map_err(|e| ctx("setting the owner", &e))?;
    }
    tmp.persist(path)
        .map_err(|e| ctx("renaming into place", &e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Applies mode/owner to an existing file whose content is already right. Returns whether
/// anything changed.
///
/// # Errors
/// Unknown owner/group or a failing chmod/chown.
pub fn ensure_attrs(
    path: &Path,
    attrs: &FileAttrs<'_>,
    check_only: bool,
) -> Result<bool, FileError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| FileError(format!("cannot stat `{}`: {e}", path.display())))?;
    let (uid, gid) = resolve_owner(attrs.owner, attrs.group)?;
    let mut changed = false;
    if let Some(mode) = attrs.mode.filter(|m| *m != meta.mode() & 0o7777) {
        changed = true;
        if !check_only {
            std::fs::set_permissions(path, Permissions::from_mode(mode))
                .map_err(|e| FileError(format!("cannot chmod `{}`: {e}", path.display())))?;
        }
    }
    let uid_change = uid.filter(|u| u.as_raw() != meta.uid());
    let gid_change = gid.filter(|g| g.as_raw() != meta.gid());
    if uid_change.is_some() || gid_change.is_some() {
        changed = true;
        if !check_only {
            chown(path, uid_change, gid_change)
                .map_err(|e| FileError(format!("cannot chown `{}`: {e}", path.display())))?;
        }
    }
    Ok(changed)
}

/// Copies `path` to `<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~` (Ansible's backup naming), keeping its
/// mode. Returns the backup's path.
///
/// # Errors
/// The copy failed.
pub fn backup(path: &Path) -> Result<PathBuf, FileError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "{}.{}.{}~",
        path.display(),
        std::process::id(),
        utc_stamp(secs)
    );
    let dest = PathBuf::from(name);
    std::fs::copy(path, &dest).map_err(|e| {
        FileError(format!(
            "cannot back up `{}` to `{}`: {e}",
            path.display(),
            dest.display()
        ))
    })?;
    Ok(dest)
}

/// `YYYY-MM-DD@HH:MM:SS` in UTC (civil-from-days; no date crate needed for one timestamp).
#[must_use]
pub fn utc_stamp(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Creates `path`'s file if missing, for tests of the "file exists" paths.
///
/// # Errors
/// I/O errors.
pub fn touch(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert_eq!(parse_mode("u=rw,g=r,o="), Ok(0o640));
        assert_eq!(parse_mode("a=r"), Ok(0o444));
        assert!(parse_mode("rw-r-----").is_err());
        assert!(parse_mode("99").is_err());
    }

    #[test]
    fn stamp() {
        assert_eq!(utc_stamp(0), "1970-01-01@00:00:00");
        assert_eq!(utc_stamp(1_795_307_749), "2026-11-22@00:35:49");
        assert_eq!(utc_stamp(951_782_400), "2000-02-29@00:00:00");
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("redis.conf");
        write_atomic(
            &p,
            b"one\n",
            &FileAttrs {
                mode: Some(0o640),
                ..FileAttrs::default()
            },
        )
        .expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "one\n");
        assert_eq!(std::fs::metadata(&p).expect("meta").mode() & 0o7777, 0o640);
        // No mode asked: the existing one is kept.
        std::fs::set_permissions(&p, Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(&p, b"two\n", &FileAttrs::default()).expect("write");
        assert_eq!(std::fs::metadata(&p).expect("meta").mode() & 0o7777, 0o600);
        // Only the file itself is left in the directory (no temp files).
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn errors_leave_old_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c");
        std::fs::write(&p, "old").expect("write");
        let e = write_atomic(
            &p,
            b"new",
            &FileAttrs {
                owner: Some("no-such-user-xyz"),
                ..FileAttrs::default()
            },
        );
        assert!(e.is_err_and(|e| e.0.contains("owner `no-such-user-xyz` does not exist")));
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "old");
        let e = write_atomic(&dir.path().join("nodir/x"), b"new", &FileAttrs::default());
        assert!(e.is_err_and(|e| e.0.contains("does not exist")));
    }

    #[test]
    fn backup_copies() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("redis.conf");
        std::fs::write(&p, "x").expect("write");
        let b = backup(&p).expect("backup");
        assert!(b.to_string_lossy().ends_with('~'));
        assert_eq!(std::fs::read_to_string(b).expect("read"), "x");
    }
}
