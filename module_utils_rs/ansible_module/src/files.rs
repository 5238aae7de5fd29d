//! Writing files the way a config-management tool must: atomically (temp file in the same
//! directory, fsync, rename, fsync the directory), with mode and owner applied *before* the
//! rename so the file never exists with the wrong permissions, and optional backups named like
//! Ansible's (`<path>.<pid>.<timestamp>~`).

use crate::accounts;
use nix::unistd::{chown, Gid, Uid};
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
    // No trimming: "0640\n" is not a mode.
    let m = mode;
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
    let err = |e: accounts::AccountError| FileError(e.to_string().replacen("user", "owner", 1));
    let uid = owner
        .map(|o| accounts::user(o).map(|a| Uid::from_raw(a.uid)))
        .transpose()
        .map_err(err)?;
    let gid = group
        .map(|g| accounts::group(g).map(|g| Gid::from_raw(g.gid)))
        .transpose()
        .map_err(|e| FileError(e.to_string()))?;
    Ok((uid, gid))
}

/// Where a write to `path` lands: `path` itself, or with `follow` the final target of a symlink
/// (relative links resolve against the link's directory, as the kernel does).
fn write_target(path: &Path, follow: bool) -> Result<PathBuf, FileError> {
    let mut target = path.to_path_buf();
    if !follow {
        return Ok(target);
    }
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&target).map_err(|e| {
                    FileError(format!("cannot read the link `{}`: {e}", target.display()))
                })?;
                target = match target.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(target),
        }
    }
    Err(FileError(format!(
        "cannot write `{}`: too many levels of symbolic links",
        path.display()
    )))
}

/// What a file that is not a regular file is, for messages: "a FIFO", "a character device", ...
#[must_use]
pub fn file_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Refuses to replace anything but a regular file (or, without `follow`, a symlink, which is
/// replaced by the file as ansible.builtin.template does). A FIFO, device node, socket or
/// directory at `path` is an error: replacing /dev/null by a config file, or blocking on a FIFO,
/// is never what the task meant (issue 8 item 8).
fn check_replaceable(path: &Path) -> Result<(), FileError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let ft = meta.file_type();
    if ft.is_file() || ft.is_symlink() {
        return Ok(());
    }
    let what = file_kind(ft);
    Err(FileError(format!(
        "`{}` is not a regular file ({what}); nothing was written",
        path.display()
    )))
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
    /// The mode; `None` keeps the existing file's mode.
    pub mode: Option<u32>,
    /// The owner; `None` keeps the existing file's owner (when the process may set it).
    pub owner: Option<&'a str>,
    /// The group; `None` keeps the existing file's group (when the process may set it).
    pub group: Option<&'a str>,
    /// Ansible's `follow`: with `true` a symlink at the path is followed and its target
    /// written; with `false` (the default, as in ansible.builtin.template) the link itself is
    /// replaced by the new file.
    pub follow: bool,
}

/// Replaces `path` with `content` atomically. Readers see the old file or the new one, never a
/// partial one; on any error the old file is untouched and the temp file removed.
///
/// # Errors
/// Missing directory, permissions, unknown owner/group, disk full.
pub fn write_atomic(path: &Path, content: &[u8], attrs: &FileAttrs<'_>) -> Result<(), FileError> {
    let target = write_target(path, attrs.follow)?;
    let path = target.as_path();
    check_replaceable(path)?;
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
    // What is not asked for is kept from the existing file, as Ansible's atomic_move does: its
    // mode, and its owner and group (issue 8 item 15: a nobody:nogroup file must not become
    // root:root because root rewrote it). Following a link for these is right even without
    // `follow`: the attributes the user saw are the target's.
    let existing = std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file);
    let mode = attrs
        .mode
        .or_else(|| existing.as_ref().map(|m| m.permissions().mode() & 0o7777));
    if let Some(mode) = mode {
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(mode))
            .map_err(|e| ctx("setting the mode", &e))?;
    }
    if uid.is_some() || gid.is_some() {
        chown(tmp.path(), uid, gid).map_err(|e| ctx("setting the owner", &e))?;
    }
    if let Some(m) = &existing {
        use std::os::unix::fs::MetadataExt;
        let keep_uid = uid.is_none().then(|| Uid::from_raw(m.uid()));
        let keep_gid = gid.is_none().then(|| Gid::from_raw(m.gid()));
        if keep_uid.is_some() || keep_gid.is_some() {
            // EPERM means an unprivileged writer, who cannot give files away: like atomic_move,
            // the new file then keeps the writer's ids.
            match chown(tmp.path(), keep_uid, keep_gid) {
                Ok(()) | Err(nix::errno::Errno::EPERM) => {}
                Err(e) => return Err(ctx("keeping the owner", &e)),
            }
            // chown clears setuid/setgid bits; put the mode back.
            if let Some(mode) = mode {
                std::fs::set_permissions(tmp.path(), Permissions::from_mode(mode))
                    .map_err(|e| ctx("setting the mode", &e))?;
            }
        }
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

/// Reads a regular file as text. A FIFO, device, socket or directory is refused before it is
/// opened (reading a FIFO blocks forever; a device is never a config file), and the open itself
/// does not block, in case the path changes in between.
///
/// # Errors
/// Not a regular file, unreadable, or not UTF-8; the message names `what` and the path.
pub fn read_regular_file(path: &Path, what: &str) -> Result<String, FileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| FileError(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(FileError(format!(
            "{what} `{}` is not a regular file ({})",
            path.display(),
            file_kind(meta.file_type())
        )));
    }
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| FileError(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(FileError(format!(
            "{what} `{}` is not a regular file",
            path.display()
        )));
    }
    let mut s = String::new();
    f.read_to_string(&mut s)
        .map_err(|e| FileError(format!("cannot read {what} `{}`: {e}", path.display())))?;
    Ok(s)
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

    #[test]
    fn device_nodes_fifos_and_directories_are_refused() {
        // See: issue 8 item 8 (/dev/null became a 0640 regular file; a FIFO hung).
        use nix::sys::stat::{mknod, Mode, SFlag};
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let e = write_atomic(&fifo, b"x", &FileAttrs::default()).expect_err("must fail");
        assert!(e.0.contains("is not a regular file (a FIFO)"), "{e}");
        // A character device like /dev/null (1:3), made here, never the system's own.
        let null = dir.path().join("null");
        if mknod(
            &null,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .is_ok()
        {
            let e = write_atomic(&null, b"x", &FileAttrs::default()).expect_err("must fail");
            assert!(e.0.contains("(a character device)"), "{e}");
            let meta = std::fs::symlink_metadata(&null).expect("stat");
            assert!(std::os::unix::fs::FileTypeExt::is_char_device(
                &meta.file_type()
            ));
        }
        let e = write_atomic(dir.path(), b"x", &FileAttrs::default()).expect_err("must fail");
        assert!(e.0.contains("(a directory)"), "{e}");
        // follow through a link onto a FIFO is refused too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
        let attrs = FileAttrs {
            follow: true,
            ..FileAttrs::default()
        };
        assert!(write_atomic(&link, b"x", &attrs).is_err());
    }

    #[test]
    fn symlinks_are_replaced_or_followed() {
        // See: issue 8 item 8 (Ansible's `follow`).
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("real")).expect("mkdir");
        let target = dir.path().join("real/redis.conf");
        std::fs::write(&target, "old").expect("write");
        let link = dir.path().join("redis.conf");
        std::os::unix::fs::symlink("real/redis.conf", &link).expect("symlink");
        let follow = FileAttrs {
            follow: true,
            ..FileAttrs::default()
        };
        write_atomic(&link, b"followed", &follow).expect("write");
        assert!(std::fs::symlink_metadata(&link)
            .expect("stat")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "followed");
        write_atomic(&link, b"replaced", &FileAttrs::default()).expect("write");
        assert!(std::fs::symlink_metadata(&link).expect("stat").is_file());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "followed");
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "replaced");
    }

    #[test]
    fn owner_and_group_are_kept_when_not_asked() {
        // See: issue 8 item 15 (nobody:nogroup became root:root).
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("sentinel.conf");
        std::fs::write(&p, "old").expect("write");
        chown(&p, Some(Uid::from_raw(65534)), Some(Gid::from_raw(65534))).expect("chown");
        std::fs::set_permissions(&p, Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&p, b"new", &FileAttrs::default()).expect("write");
        let m = std::fs::metadata(&p).expect("stat");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o640));
        // An explicit group changes only the group.
        write_atomic(
            &p,
            b"newer",
            &FileAttrs {
                group: Some("0"),
                ..FileAttrs::default()
            },
        )
        .expect("write");
        let m = std::fs::metadata(&p).expect("stat");
        assert_eq!((m.uid(), m.gid()), (65534, 0));
    }

    #[test]
    fn out_of_range_owner_is_an_error() {
        // See: issue 8 item 7 ("4294967295" became uid -1, "99999999999" was ignored).
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c");
        std::fs::write(&p, "old").expect("write");
        for big in ["99999999999", "4294967295"] {
            let e = write_atomic(
                &p,
                b"new",
                &FileAttrs {
                    owner: Some(big),
                    ..FileAttrs::default()
                },
            )
            .expect_err("must fail");
            assert!(e.0.contains("out of range"), "{e}");
            assert!(check_owner(None, Some(big)).is_err());
        }
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "old");
    }

    #[test]
    fn reading_refuses_fifos_and_devices_without_hanging() {
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let e = read_regular_file(&fifo, "src").expect_err("fifo");
        assert!(e.0.contains("is not a regular file (a FIFO)"), "{e}");
        let f = dir.path().join("ok");
        std::fs::write(&f, "port 1\n").expect("write");
        assert_eq!(
            read_regular_file(&f, "src").ok().as_deref(),
            Some("port 1\n")
        );
    }
}
