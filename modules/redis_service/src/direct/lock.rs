//! One run at a time per instance: an exclusive flock(2) on `<pidfile>.lock`, held from the first
//! look at the instance until the result is made.
//!
//! Why: three parallel `state: started` runs for one instance (a playbook with `async`, two
//! plays, a retry while the first still waits) each saw "not running" and each started a
//! server; two of them died on EADDRINUSE and their tasks failed with misleading messages (issue
//! 8 item 10). With the lock, the first run starts the server and the others wait, then find it
//! running. The lock file sits next to the pidfile because that is where the instance's runtime
//! state already lives, writable by whoever manages it. A pidfile under /etc (the default when
//! the config sets none: the config's directory) does not get a lock file beside it: config
//! directories are no place for runtime files, so that lock is the instance's name in a runtime
//! directory of the module's user instead ([`runtime_dir`]).
//!
//! The directory may belong to the user the server runs as while the module runs as root, so the
//! lock file is opened without following a symlink (`O_NOFOLLOW`), without blocking on a FIFO
//! (`O_NONBLOCK`), never truncated and never written: whatever that user put there, root only
//! takes an advisory lock on it. The fd is close-on-exec, so the server started under the lock
//! does not inherit it.

use crate::Ctx;
use ansible_module::ModuleError;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held lock; released when dropped (or when the process exits).
pub struct InstanceLock {
    _lock: Flock<File>,
}

/// The lock file of instance `name` whose pidfile is `pidfile`.
#[must_use]
pub fn path_for(pidfile: &Path, name: &str) -> PathBuf {
    if pidfile.starts_with("/etc") {
        return runtime_dir().join(format!("{name}.lock"));
    }
    let mut file = pidfile.file_name().unwrap_or_default().to_os_string();
    file.push(".lock");
    pidfile.with_file_name(file)
}

/// Where locks go that have no place beside their pidfile: `/run/creativeflow.redis` for root,
/// else `$XDG_RUNTIME_DIR/creativeflow.redis`, else `<tmp>/creativeflow.redis-<uid>`.
#[must_use]
pub fn runtime_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/creativeflow.redis");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("creativeflow.redis"),
        None => std::env::temp_dir().join(format!("creativeflow.redis-{uid}")),
    }
}

/// Creates the runtime directory (0700) if needed and checks that it is a directory of this
/// user that nobody else can write: in a shared /tmp someone else could have made it first.
fn ensure_private_dir(dir: &Path) -> Result<(), ModuleError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(ModuleError::new(format!(
                "cannot create the lock directory {}: {e}",
                dir.display()
            )))
        }
    }
    let md = std::fs::symlink_metadata(dir).map_err(|e| {
        ModuleError::new(format!(
            "cannot read the lock directory {}: {e}",
            dir.display()
        ))
    })?;
    if !md.is_dir() || md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o022 != 0 {
        return Err(ModuleError::new(format!(
            "the lock directory {} is not a directory of this user that only it can write; remove it",
            dir.display()
        )));
    }
    Ok(())
}

/// Takes the instance's lock, waiting for another run to finish (at most as long as that run
/// may take: a stop and a start).
///
/// `None` without a pidfile or when its directory does not exist (then nothing can be started,
/// and the plan says so).
///
/// # Errors
/// The lock file is a symlink or not a regular file, cannot be opened, or another run holds the
/// lock for too long.
pub fn acquire(ctx: &Ctx) -> Result<Option<InstanceLock>, ModuleError> {
    let Some(pidfile) = &ctx.want.pidfile else {
        return Ok(None);
    };
    if !pidfile.parent().is_some_and(Path::is_dir) {
        return Ok(None);
    }
    let path = path_for(pidfile, &ctx.want.name);
    if let Some(dir) = path.parent().filter(|d| !pidfile.starts_with(d)) {
        ensure_private_dir(dir)?;
    }
    let mut file = open(&path)?;
    let wait = ctx.want.wait_timeout * 2
        + ctx.want.force_kill_after.unwrap_or_default()
        + Duration::from_secs(10);
    let t0 = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(InstanceLock { _lock: lock })),
            Err((f, Errno::EWOULDBLOCK | Errno::EINTR)) => file = f,
            Err((_, e)) => {
                return Err(ModuleError::new(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )))
            }
        }
        if t0.elapsed() >= wait {
            return Err(ModuleError::new(format!(
                "another redis_service run for {} has held its lock {} for {:.0}s; nothing was done (is a task still stopping or starting it?)",
                ctx.label(),
                path.display(),
                t0.elapsed().as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open(path: &Path) -> Result<File, ModuleError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(Errno::ELOOP as i32) {
                ModuleError::new(format!(
                    "lock file {} is a symlink; refusing to follow it (whoever can write to its directory put it there)",
                    path.display()
                ))
            } else {
                ModuleError::new(format!("cannot open lock file {}: {e}", path.display()))
            }
        })?;
    match file.metadata() {
        Ok(md) if md.is_file() => Ok(file),
        Ok(_) => Err(ModuleError::new(format!(
            "lock file {} is not a regular file; remove it",
            path.display()
        ))),
        Err(e) => Err(ModuleError::new(format!(
            "cannot open lock file {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_is_beside_the_pidfile() {
        assert_eq!(
            path_for(Path::new("/run/redis/cache.pid"), "cache"),
            PathBuf::from("/run/redis/cache.pid.lock")
        );
        // Never in /etc: a pidfile there (the config's directory) locks in the runtime dir.
        let l = path_for(Path::new("/etc/redis/cache.pid"), "cache");
        assert!(!l.starts_with("/etc"), "{}", l.display());
        assert_eq!(l, runtime_dir().join("cache.lock"));
    }

    #[test]
    fn a_runtime_dir_someone_else_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let mine = d.path().join("mine");
        assert!(ensure_private_dir(&mine).is_ok());
        assert!(ensure_private_dir(&mine).is_ok(), "an existing one is fine");
        let open_to_all = d.path().join("open");
        std::fs::create_dir(&open_to_all).expect("mkdir");
        std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        assert!(ensure_private_dir(&open_to_all).is_err());
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&mine, &link).expect("symlink");
        assert!(
            ensure_private_dir(&link).is_err(),
            "a symlink is not the directory"
        );
    }

    #[test]
    fn a_symlink_or_fifo_is_refused_and_its_target_untouched() {
        // See: issue 8 item 5
        let d = tempfile::tempdir().expect("tempdir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "victim\n").expect("write");
        let link = d.path().join("x.pid.lock");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let e = open(&link).err().map(|e| e.msg).unwrap_or_default();
        assert!(e.contains("is a symlink"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("victim\n")
        );
        let fifo = d.path().join("f.lock");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        assert!(
            open(&fifo).is_err(),
            "a FIFO must neither block nor be used"
        );
        assert!(open(&d.path().join("ok.lock")).is_ok());
    }
}
