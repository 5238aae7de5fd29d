//! Text for failure messages: the instance's log since the start, and what Redis printed on
//! stderr before its log was open. Secrets in it are masked by the contract layer (every secret
//! of the config was registered before anything ran).

use crate::procfs;
use crate::Ctx;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Lines of a log or of stderr that a message quotes.
const LOG_LINES: usize = 20;

/// The logfile named by the config, if any.
#[must_use]
pub fn logfile(ctx: &Ctx) -> Option<PathBuf> {
    let cfg = ctx.want.config.as_ref()?;
    cfg.logfile().map(|l| cfg.resolve(l, &ctx.want.cwd))
}

/// The last log lines (written after byte `since` of the logfile, when given) and anything
/// Redis printed on stderr.
pub fn tail(ctx: &Ctx, stderr: Option<&mut File>, since: Option<u64>) -> String {
    let mut out = String::new();
    if ctx.want.config.is_some() {
        match logfile(ctx) {
            Some(path) => {
                let lines = procfs::tail_since(&path, since.unwrap_or(0), LOG_LINES);
                if !lines.is_empty() {
                    let _ = write!(
                        out,
                        "\nLast lines of {}:\n{}",
                        path.display(),
                        lines.join("\n")
                    );
                }
            }
            None => {
                let _ = write!(out, "\n(no logfile in the config: {} logged to stdout, which is discarded; set logfile to see why)", ctx.want.flavour.title());
            }
        }
    }
    if let Some(f) = stderr {
        let mut s = String::new();
        if f.seek(SeekFrom::Start(0)).is_ok() && f.read_to_string(&mut s).is_ok() {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            if !lines.is_empty() {
                let start = lines.len().saturating_sub(LOG_LINES);
                let _ = write!(out, "\nstderr:\n{}", lines[start..].join("\n"));
            }
        }
    }
    out
}

/// A command line shortened for a message.
#[must_use]
pub fn short(cmd: &str) -> String {
    let one_line = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 100 {
        format!("{}...", one_line.chars().take(100).collect::<String>())
    } else {
        one_line
    }
}
