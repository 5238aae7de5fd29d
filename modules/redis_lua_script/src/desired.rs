//! The desired state: which Lua source, loaded how, where, checked before anything is sent.

use ansible_module::{files, ModuleError, Params};

/// The collection's own libraries, embedded so that `builtin:` needs no file on the host.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "rate_limiter",
        include_str!("../../../lua/rate_limiter.lua"),
    ),
    (
        "session_operations",
        include_str!("../../../lua/session_operations.lua"),
    ),
];

/// Redis Functions (FUNCTION LOAD: persisted, replicated) or the script cache (SCRIPT LOAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Function,
    Script,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
}

/// Where the code goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// The server at login_host/login_port.
    Host,
    /// The current master of a Sentinel group, asked of the Sentinel at login_host/login_port.
    Master { master_name: String },
    /// Every master of the Cluster that login_host/login_port belongs to.
    Cluster,
}

/// What the task asks for.
#[derive(Clone, Debug)]
pub struct Desired {
    pub mode: Mode,
    pub state: State,
    /// The library name (mode=function) or the script's label (mode=script).
    pub name: String,
    /// The code to send: the library as FUNCTION LOAD takes it, or the script as SCRIPT LOAD
    /// takes it. `None` only for `state: absent` of a library named by `name` alone.
    pub code: Option<String>,
    /// `builtin rate_limiter` or the src path, for messages.
    pub origin: String,
    pub replace: bool,
    pub targets: Targets,
}

/// The library name of a `#!lua name=<lib>` first line, `None` without one.
#[must_use]
pub fn shebang_name(code: &str) -> Option<&str> {
    let first = code.lines().next()?;
    let rest = first.strip_prefix("#!lua")?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    rest.split_whitespace()
        .find_map(|w| w.strip_prefix("name="))
}

/// The script EVAL/EVALSHA/SCRIPT LOAD take from a library file: EVAL refuses the
/// `#!lua name=...` line, so its text is removed and its line break kept, which keeps the line
/// numbers in Redis's error messages those of the file. A file without a `#!` line is used as
/// it is.
#[must_use]
pub fn script_code(code: &str) -> String {
    if code.starts_with("#!") {
        match code.find('\n') {
            Some(i) => code[i..].to_string(),
            None => String::new(),
        }
    } else {
        code.to_string()
    }
}

/// Redis's rule for library names (function_lua.c): letters, digits and underscores.
fn check_library_name(name: &str) -> Result<(), ModuleError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ModuleError::new(format!(
            "library name `{}` is not valid: Redis allows only letters, digits and underscores",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Reads and checks the options. Nothing has been sent to Redis yet.
///
/// # Errors
/// Bad input, with a message naming the option.
pub fn from_params(p: &Params) -> Result<Desired, ModuleError> {
    let mode = match p.str("mode").unwrap_or("function") {
        "script" => Mode::Script,
        _ => Mode::Function,
    };
    let state = match p.str("state").unwrap_or("present") {
        "absent" => State::Absent,
        _ => State::Present,
    };
    let targets = match p.str("targets").unwrap_or("host") {
        "master" => Targets::Master {
            master_name: p
                .str("master_name")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ModuleError::new("targets=master needs `master_name`"))?
                .to_string(),
        },
        "cluster" => Targets::Cluster,
        _ => Targets::Host,
    };
    if p.str("master_name").is_some() && !matches!(targets, Targets::Master { .. }) {
        return Err(ModuleError::new(
            "`master_name` is only used with targets=master",
        ));
    }
    let (source, origin) = if let Some(b) = p.str("builtin") {
        let code = BUILTINS
            .iter()
            .find(|(n, _)| *n == b)
            .map(|(_, c)| (*c).to_string())
            .ok_or_else(|| ModuleError::new(format!("unknown builtin `{b}`")))?;
        (Some(code), format!("builtin {b}"))
    } else if let Some(path) = p.str("src") {
        let code = files::read_regular_file(std::path::Path::new(path), "src")
            .map_err(|e| ModuleError::new(e.0))?;
        if code.contains('\0') {
            return Err(ModuleError::new(format!(
                "src `{path}` contains a NUL byte: not Lua source"
            )));
        }
        if code.trim().is_empty() {
            return Err(ModuleError::new(format!("src `{path}` is empty")));
        }
        (Some(code), format!("src {path}"))
    } else {
        (None, String::new())
    };
    let given = p.str("name").filter(|s| !s.is_empty());
    let name = match (mode, &source) {
        (Mode::Function, Some(code)) => {
            let Some(lib) = shebang_name(code) else {
                return Err(ModuleError::new(format!(
                    "{origin}: a library for mode=function must start with `#!lua name=<library>`"
                )));
            };
            if let Some(n) = given.filter(|n| *n != lib) {
                return Err(ModuleError::new(format!(
                    "name `{n}` differs from the library name `{lib}` in the first line of {origin}"
                )));
            }
            lib.to_string()
        }
        (Mode::Function, None) => given
            .ok_or_else(|| {
                ModuleError::new("one of `src`, `builtin` or `name` (of the library) is required")
            })?
            .to_string(),
        (Mode::Script, Some(code)) => given
            .map(str::to_string)
            .or_else(|| shebang_name(code).map(str::to_string))
            .unwrap_or_else(|| {
                p.str("builtin").map_or_else(
                    || {
                        std::path::Path::new(p.str("src").unwrap_or(""))
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    },
                    str::to_string,
                )
            }),
        (Mode::Script, None) => {
            return Err(ModuleError::new(
                "mode=script needs `src` or `builtin`: a cached script is known by the SHA1 of its code",
            ))
        }
    };
    if mode == Mode::Function {
        check_library_name(&name)?;
    }
    let code = source.map(|c| match mode {
        Mode::Function => c,
        Mode::Script => script_code(&c),
    });
    Ok(Desired {
        mode,
        state,
        name,
        code,
        origin,
        replace: p.flag("replace"),
        targets,
    })
}

/// The function names a library registers, read from its code: for check mode before the
/// first load, when Redis has not told us yet. Finds `register_function('x'` and
/// `function_name = 'x'`.
#[must_use]
pub fn declared_functions(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["register_function(", "function_name"] {
        let mut rest = code;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let t = rest.trim_start_matches([' ', '\t', '=']);
            let Some(q) = t.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(end) = t[1..].find(q) {
                let n = t[1..=end].to_string();
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_name_is_read() {
        assert_eq!(shebang_name("#!lua name=ratelimit\nx"), Some("ratelimit"));
        assert_eq!(shebang_name("#!lua  name=a_1 \n"), Some("a_1"));
        assert_eq!(shebang_name("#!luax name=a\n"), None);
        assert_eq!(shebang_name("-- no\n#!lua name=a\n"), None);
        assert_eq!(shebang_name("#!lua\n"), None);
    }

    #[test]
    fn script_code_keeps_line_numbers() {
        let s = script_code("#!lua name=x\nline2\nline3");
        assert_eq!(s, "\nline2\nline3");
        assert_eq!(s.lines().count(), 3);
        assert_eq!(script_code("return 1"), "return 1");
    }

    #[test]
    fn builtins_declare_their_functions() {
        for (name, code) in BUILTINS {
            let fns = declared_functions(code);
            assert_eq!(fns.len(), 4, "{name}: {fns:?}");
        }
        let rl = BUILTINS[0].1;
        assert_eq!(shebang_name(rl), Some("ratelimit"));
        assert_eq!(
            declared_functions(rl),
            [
                "ratelimit_fixed_window",
                "ratelimit_sliding_log",
                "ratelimit_sliding_window",
                "ratelimit_gcra"
            ]
        );
        assert_eq!(shebang_name(BUILTINS[1].1), Some("session"));
    }

    #[test]
    fn library_names_follow_redis() {
        assert!(check_library_name("rate_limit9").is_ok());
        assert!(check_library_name("rate-limit").is_err());
        assert!(check_library_name("").is_err());
    }
}
