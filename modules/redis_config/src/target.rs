//! The file at `path`: what is there now, what it holds, and putting the new content in place.
//!
//! Only a regular file (or nothing) is read or replaced. A FIFO would block the read forever
//! and a device node is not a config file, so both are refused before anything is opened. A
//! symlink is replaced by a regular file (`follow: false`, as `ansible.builtin.template` does by
//! default) or written through (`follow: true`, the file it points to is written, the link
//! kept).

use ansible_module::files::{self, FileAttrs, FileError};
use ansible_module::ModuleError;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A temp file of ours this old belongs to a run that died (SIGKILL, power loss) before its
/// rename: `write_atomic` holds its temp file for milliseconds, so 10 s leaves any run still in
/// progress alone.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// The file a run reads and writes.
#[derive(Clone, Debug)]
pub struct Target {
    /// `path` as given.
    pub path: PathBuf,
    /// Where the content goes: `path`, or with `follow` the file its symlink points to.
    pub file: PathBuf,
    /// `path` is a symlink that writing replaces by a regular file (`follow: false`).
    pub replaces_link: bool,
    /// What the file holds now (read through a symlink); `None` when there is no file.
    pub old_text: Option<String>,
}

/// Follows a chain of symlinks, also when the last one points at nothing yet.
fn resolve_link(path: &Path) -> Result<PathBuf, ModuleError> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p).map_err(|e| {
                    ModuleError::new(format!("cannot read the symlink `{}`: {e}", p.display()))
                })?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(ModuleError::new(format!(
        "`{}`: too many levels of symlinks",
        path.display()
    )))
}

/// The content of `p` when it is a regular file; `None` when nothing is there.
fn read_regular(p: &Path, shown: &Path) -> Result<Option<String>, ModuleError> {
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ModuleError::new(format!(
                "cannot inspect `{}`: {e}",
                p.display()
            )))
        }
    };
    if meta.is_dir() {
        return Err(ModuleError::new(format!(
            "path `{}` is a directory; give the config file's path",
            shown.display()
        )));
    }
    if !meta.is_file() {
        return Err(ModuleError::new(format!(
            "`{}` is not a regular file ({}); refusing to read or replace it",
            shown.display(),
            ansible_module::files::file_kind(meta.file_type())
        )));
    }
    fs::read_to_string(p)
        .map(Some)
        .map_err(|e| ModuleError::new(format!("cannot read `{}`: {e}", p.display())))
}

impl Target {
    /// Looks at `path` without opening anything but a regular file.
    ///
    /// # Errors
    /// `path` is a directory, a device node, a FIFO or a socket, or cannot be read.
    pub fn inspect(path: &str, follow: bool) -> Result<Target, ModuleError> {
        let path = PathBuf::from(path);
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !follow {
            // The link goes; what it points to is only read for the diff, and only if it is a
            // regular file (never a FIFO).
            let to = resolve_link(&path)?;
            let old_text = match fs::metadata(&to) {
                Ok(m) if m.is_file() => read_regular(&to, &path)?,
                _ => None,
            };
            return Ok(Target {
                file: path.clone(),
                path,
                replaces_link: true,
                old_text,
            });
        }
        let file = if is_link {
            resolve_link(&path)?
        } else {
            path.clone()
        };
        let old_text = read_regular(&file, &path)?;
        Ok(Target {
            path,
            file,
            replaces_link: false,
            old_text,
        })
    }

    /// Replaces the file with `text`, atomically, after removing temp files that earlier runs
    /// killed mid-write left behind. `attrs.follow` decides, as in [`Target::inspect`], whether
    /// a symlink is written through or replaced.
    ///
    /// # Errors
    /// As [`files::write_atomic`]; the old file is then untouched.
    pub fn write(&self, text: &str, attrs: &FileAttrs<'_>) -> Result<(), FileError> {
        self.remove_stale_temp_files();
        files::write_atomic(&self.path, text.as_bytes(), attrs)
    }

    /// Copies the current file to `<file>.<pid>.<timestamp>~`.
    ///
    /// # Errors
    /// The copy failed.
    pub fn backup(&self) -> Result<PathBuf, FileError> {
        files::backup(&self.file)
    }

    /// `.<name>.XXXXXX.tmp` files (the temp files `write_atomic` renames into place) of this
    /// target that are older than [`STALE_AFTER`]. Returns what was removed.
    pub fn remove_stale_temp_files(&self) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (self.file.parent(), self.file.file_name()) else {
            return Vec::new();
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(middle) = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else {
                continue;
            };
            if middle.is_empty() || !middle.chars().all(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let stale = fs::symlink_metadata(e.path()).is_ok_and(|m| {
                m.file_type().is_file()
                    && m.modified().is_ok_and(|t| {
                        SystemTime::now()
                            .duration_since(t)
                            .is_ok_and(|age| age > STALE_AFTER)
                    })
            });
            if stale && fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 8 item 14
    #[test]
    fn issue_8_item_14_only_old_temp_files_of_this_target_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("redis.conf");
        fs::write(&conf, "port 1\n").expect("write");
        let old = [".redis.conf.Ab12Cd.tmp", ".redis.conf.x9.tmp"];
        let keep = [
            ".redis.conf.fresh1.tmp",
            ".other.conf.Ab12Cd.tmp",
            ".redis.conf.a.b.tmp",
            "redis.conf.Ab12Cd.tmp",
        ];
        for n in old.iter().chain(keep.iter()) {
            fs::write(dir.path().join(n), "partial").expect("write");
        }
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for n in old.iter().chain(&keep[1..]) {
            let f = fs::File::options()
                .write(true)
                .open(dir.path().join(n))
                .expect("open");
            f.set_modified(an_hour_ago).expect("mtime");
        }
        let t = Target::inspect(&conf.display().to_string(), false).expect("inspect");
        let mut removed: Vec<String> = t
            .remove_stale_temp_files()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            vec![".redis.conf.Ab12Cd.tmp", ".redis.conf.x9.tmp"]
        );
        for n in keep {
            assert!(dir.path().join(n).exists(), "{n} was removed");
        }
    }

    #[test]
    fn links_are_followed_or_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        let real = dir.path().join("real.conf");
        fs::write(&real, "port 1\n").expect("write");
        let link = dir.path().join("redis.conf");
        std::os::unix::fs::symlink("real.conf", &link).expect("symlink");
        let s = link.display().to_string();
        let t = Target::inspect(&s, true).expect("inspect");
        assert_eq!((t.file.clone(), t.replaces_link), (real.clone(), false));
        assert_eq!(t.old_text.as_deref(), Some("port 1\n"));
        let t = Target::inspect(&s, false).expect("inspect");
        assert_eq!((t.file.clone(), t.replaces_link), (link.clone(), true));
        assert_eq!(t.old_text.as_deref(), Some("port 1\n"));
        // A dangling link with follow: the file it names is created.
        fs::remove_file(&real).expect("rm");
        let t = Target::inspect(&s, true).expect("inspect");
        assert_eq!((t.file, t.old_text), (real, None));
    }
}
