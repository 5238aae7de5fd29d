//! The binary-module protocol: args file in, one JSON object out.
//!
//! Ansible runs a binary module as `AnsiballZ_<name> <args file>`, reads one JSON object from
//! stdout and ignores the exit code once that JSON parses. Everything AnsibleModule does for a
//! Python module (validation, check-mode skipping, no_log masking, `invocation`) happens here, and
//! [`run`] is the only place in the project that prints to stdout or exits, so no module can break
//! the protocol. A panic anywhere still prints `{"failed": true, ...}` with secrets masked.

use crate::nolog::remove_values;
use crate::result::{ModuleError, Outcome};
use crate::spec::{validate, Spec};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A module's identity and argument spec.
pub struct ModuleDef {
    /// Short name, as in `creativeflow.redis.<name>`.
    pub name: &'static str,
    pub spec: Spec,
    /// When false, `--check` answers `skipped` without running the module, as AnsibleModule does.
    pub supports_check_mode: bool,
}

/// Validated options of one invocation.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// The value of an option, `None` when unset (null).
    #[must_use]
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }
    #[must_use]
    pub fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }
    /// An int option. A whole number beyond i64 (Python takes any size) reads as `i64::MAX`,
    /// so that every range check refuses it instead of seeing "unset" and the default.
    #[must_use]
    pub fn int(&self, k: &str) -> Option<i64> {
        self.get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX)))
    }
    #[must_use]
    pub fn float(&self, k: &str) -> Option<f64> {
        self.get(k).and_then(Value::as_f64)
    }
    /// A bool option; unset counts as false.
    #[must_use]
    pub fn flag(&self, k: &str) -> bool {
        self.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    #[must_use]
    pub fn bool(&self, k: &str) -> Option<bool> {
        self.get(k).and_then(Value::as_bool)
    }
    /// A number of seconds as a `Duration`, `None` when unset. A value outside 0..=`max_secs`
    /// (1e30, a negative number, NaN, inf) is an error that names the option; converting it
    /// unchecked panics inside `Duration` (issue 8 item 9).
    ///
    /// # Errors
    /// The value is not a finite number of seconds between 0 and `max_secs`.
    pub fn duration(&self, k: &str, max_secs: u64) -> Result<Option<Duration>, ModuleError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        let secs = v.as_f64().unwrap_or(f64::NAN);
        #[allow(clippy::cast_precision_loss)] // max_secs is a small bound, exact in f64
        let max = max_secs as f64;
        if !(secs.is_finite() && (0.0..=max).contains(&secs)) {
            return Err(ModuleError::new(format!(
                "`{k}` must be between 0 and {max_secs} seconds, got {}",
                crate::spec::py_str(v)
            )));
        }
        Ok(Some(Duration::from_secs_f64(secs)))
    }
    /// A list option as strings (elements that are not strings are printed as JSON).
    #[must_use]
    pub fn str_list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).and_then(Value::as_array).map(|items| {
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect()
        })
    }
}

/// One invocation of a module: its options and Ansible's controls.
pub struct Module {
    pub name: &'static str,
    pub params: Params,
    pub check_mode: bool,
    pub diff_mode: bool,
    pub verbosity: u64,
    /// Task-level `no_log: true`.
    pub task_no_log: bool,
    warnings: RefCell<Vec<String>>,
    no_log_values: BTreeSet<String>,
    /// Secrets found while running (a password read from a config file), masked like no_log values.
    found_secrets: RefCell<BTreeSet<String>>,
}

impl Module {
    /// Registers a secret discovered at run time so that it is masked in every output.
    pub fn add_secret(&self, secret: &str) {
        if !secret.is_empty() {
            self.found_secrets.borrow_mut().insert(secret.to_string());
            remember_secrets(&std::iter::once(secret.to_string()).collect());
        }
    }

    /// Adds a warning that Ansible prints as `[WARNING]: ...`.
    pub fn warn(&self, msg: impl Into<String>) {
        self.warnings.borrow_mut().push(msg.into());
    }

    /// Values that must never appear in output (for modules that write text elsewhere).
    #[must_use]
    pub fn no_log_values(&self) -> &BTreeSet<String> {
        &self.no_log_values
    }

    /// Validates raw options (without `_ansible_*` keys) against `def`.
    ///
    /// # Errors
    /// The validation failure, worded as AnsibleModule words it.
    pub fn from_params(
        def: &ModuleDef,
        user: &Map<String, Value>,
        internal: &Map<String, Value>,
    ) -> Result<Module, ModuleError> {
        let flag = |k: &str| internal.get(k).and_then(Value::as_bool).unwrap_or(false);
        let validated = validate(&def.spec, user).map_err(|e| {
            if e.unsupported {
                ModuleError::new(format!(
                    "Unsupported parameters for ({}) module: {}",
                    def.name, e.msg
                ))
            } else {
                ModuleError::new(e.msg)
            }
        })?;
        Ok(Module {
            name: def.name,
            params: Params(validated.params),
            check_mode: flag("_ansible_check_mode"),
            diff_mode: flag("_ansible_diff"),
            verbosity: internal
                .get("_ansible_verbosity")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            task_no_log: flag("_ansible_no_log"),
            warnings: RefCell::new(validated.warnings),
            no_log_values: validated.no_log_values,
            found_secrets: RefCell::new(BTreeSet::new()),
        })
    }
}

/// Splits the args file's object into the module's own options and Ansible's `_ansible_*` keys.
#[must_use]
pub fn split_internal(args: Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    args.into_iter()
        .partition(|(k, _)| !k.starts_with("_ansible_"))
}

/// Collects secrets from the raw input before validation, so that even a validation error
/// (which may quote a value) cannot print one.
fn raw_secrets(def: &ModuleDef, user: &Map<String, Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_raw_secrets(&def.spec, user, &mut out);
    out
}

fn collect_raw_secrets(spec: &Spec, user: &Map<String, Value>, out: &mut BTreeSet<String>) {
    for o in &spec.options {
        for key in std::iter::once(&o.name).chain(o.aliases.iter()) {
            let Some(v) = user.get(*key) else { continue };
            if o.no_log {
                if let Some(s) = v
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| (v.is_number() || v.is_boolean()).then(|| crate::spec::py_str(v)))
                {
                    if !s.is_empty() {
                        out.insert(s);
                    }
                }
            }
            if let Some(sub) = &o.options {
                match v {
                    Value::Object(m) => collect_raw_secrets(sub, m, out),
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_object)
                        .for_each(|m| collect_raw_secrets(sub, m, out)),
                    _ => {}
                }
            }
        }
    }
}

/// Runs one invocation from parsed args to the final result object. Pure apart from what `body`
/// does, so tests can call it in-process. Returns the result and whether it is a failure.
pub fn execute(
    def: &ModuleDef,
    args: Map<String, Value>,
    body: impl FnOnce(&Module) -> Result<Outcome, ModuleError>,
) -> (Value, bool) {
    let (user, internal) = split_internal(args);
    let mut secrets = raw_secrets(def, &user);
    remember_secrets(&secrets);
    let module = match Module::from_params(def, &user, &internal) {
        Ok(m) => m,
        Err(e) => return (failure(e, None, &[], &secrets), true),
    };
    secrets.extend(module.no_log_values.iter().cloned());
    remember_secrets(&secrets);
    let invocation = (!module.task_no_log).then(|| module.params.0.clone());

    if module.check_mode && !def.supports_check_mode {
        let mut v = serde_json::json!({
            "changed": false,
            "skipped": true,
            "msg": format!("remote module ({}) does not support check mode", def.name),
        });
        remove_values(&mut v, &secrets);
        return (v, false);
    }

    let outcome = body(&module);
    let warnings = module.warnings.borrow().clone();
    secrets.extend(module.found_secrets.borrow().iter().cloned());
    match outcome {
        Ok(o) => {
            let mut map = o.map;
            if !warnings.is_empty() {
                map.insert("warnings".into(), warnings.into());
            }
            if let Some(inv) = invocation {
                map.insert(
                    "invocation".into(),
                    serde_json::json!({ "module_args": inv }),
                );
            }
            let mut v = Value::Object(map);
            remove_values(&mut v, &secrets);
            (v, false)
        }
        Err(e) => (failure(e, invocation, &warnings, &secrets), true),
    }
}

fn failure(
    e: ModuleError,
    invocation: Option<Map<String, Value>>,
    warnings: &[String],
    secrets: &BTreeSet<String>,
) -> Value {
    let mut map = Map::new();
    map.insert("changed".into(), false.into());
    for (k, v) in e.details {
        map.insert(k, v);
    }
    map.insert("failed".into(), true.into());
    map.insert("msg".into(), e.msg.into());
    if !warnings.is_empty() {
        map.insert("warnings".into(), warnings.to_vec().into());
    }
    if let Some(inv) = invocation {
        map.insert(
            "invocation".into(),
            serde_json::json!({ "module_args": inv }),
        );
    }
    let mut v = Value::Object(map);
    remove_values(&mut v, secrets);
    v
}

static SECRETS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static EMITTED: AtomicBool = AtomicBool::new(false);

fn remember_secrets(s: &BTreeSet<String>) {
    if let Ok(mut g) = SECRETS.lock() {
        g.extend(s.iter().cloned());
    }
}

/// Prints the one result object and exits: 0 on success, 1 on failure.
#[allow(clippy::print_stdout, clippy::exit)]
pub fn emit(result: &Value, failed: bool) -> ! {
    if !EMITTED.swap(true, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{result}");
        let _ = out.flush();
    }
    std::process::exit(i32::from(failed));
}

/// For a module binary's command-line mode (not Ansible): prints `text` and exits with `code`.
#[allow(clippy::print_stdout, clippy::exit)]
pub fn print_and_exit(text: &str, code: i32) -> ! {
    if !EMITTED.swap(true, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
    std::process::exit(code);
}

/// Makes a panic print a failed result (secrets masked) instead of a Rust backtrace that Ansible
/// would report as "Module result deserialization failed".
pub fn install_panic_hook(module_name: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut v = serde_json::json!({
            "changed": false,
            "failed": true,
            "msg": format!("internal error in module {module_name}: {payload}{at}; please report this as a bug"),
        });
        let secrets = SECRETS.lock().map(|g| g.clone()).unwrap_or_default();
        remove_values(&mut v, &secrets);
        emit(&v, true);
    }));
}

/// `<module> --ansible-args-stdin` reads the args JSON from standard input instead of a file:
/// the collection's action plugin runs a cached binary that way, so the arguments (passwords
/// included) are never written to the managed host's disk.
pub const ARGS_FROM_STDIN: &str = "--ansible-args-stdin";

/// Reads and parses the args file (or standard input, see [`ARGS_FROM_STDIN`]). The error is a
/// complete message for the user.
///
/// # Errors
/// Missing argument, unreadable file, or a file that is not one JSON object.
pub fn read_args_file(path: Option<&str>) -> Result<Map<String, Value>, String> {
    let Some(path) = path else {
        return Err("this is an Ansible module: run it through Ansible, or by hand as `<module> <args.json>` where args.json holds the options as one JSON object".into());
    };
    let text = if path == ARGS_FROM_STDIN {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)
            .map_err(|e| format!("cannot read the module arguments from standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the module arguments file `{path}`: {e}"))?
    };
    let path = if path == ARGS_FROM_STDIN {
        "<standard input>"
    } else {
        path
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!(
            "the module arguments file `{path}` must hold one JSON object"
        )),
        Err(e) => Err(format!(
            "the module arguments file `{path}` is not valid JSON: {e}"
        )),
    }
}

/// The whole life of a module process: argv[1] → validation → `body` → one JSON object on stdout.
///
/// `<module> --ansible-argspec` prints the argument spec as JSON instead (used by the test that
/// keeps the documentation in step with the spec).
pub fn run(def: &ModuleDef, body: impl FnOnce(&Module) -> Result<Outcome, ModuleError>) -> ! {
    install_panic_hook(def.name);
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--ansible-argspec") {
        let v = serde_json::json!({
            "name": def.name,
            "supports_check_mode": def.supports_check_mode,
            "argument_spec": def.spec.to_json(),
        });
        emit(&v, false);
    }
    match read_args_file(arg.as_deref()) {
        Ok(args) => {
            let (v, failed) = execute(def, args, body);
            emit(&v, failed);
        }
        Err(msg) => emit(
            &serde_json::json!({"changed": false, "failed": true, "msg": msg}),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Opt;
    use serde_json::json;

    fn def(check: bool) -> ModuleDef {
        ModuleDef {
            name: "redis_test",
            spec: Spec::new(vec![
                Opt::str("login_password").no_log(),
                Opt::int("login_port").default(6379),
            ]),
            supports_check_mode: check,
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn success_has_changed_invocation_and_masks_secrets() {
        let (v, failed) = execute(
            &def(true),
            args(
                json!({"login_password": "pw123456", "login_port": "7001", "_ansible_check_mode": false, "_ansible_future_key": 1}),
            ),
            |m| {
                Ok(Outcome::new(false).with(
                    "echo",
                    format!(
                        "port {} pw {}",
                        m.params.int("login_port").unwrap_or(0),
                        m.params.str("login_password").unwrap_or("")
                    ),
                ))
            },
        );
        assert!(!failed);
        assert_eq!(v["changed"], json!(false));
        assert_eq!(v["echo"], json!("port 7001 pw ********"));
        assert_eq!(
            v["invocation"]["module_args"],
            json!({"login_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "login_port": 7001})
        );
        assert!(!v.to_string().contains("pw123456"));
    }

    #[test]
    fn errors_are_failed_with_msg_and_masked() {
        let (v, failed) = execute(
            &def(true),
            args(json!({"login_password": "pw123456"})),
            |_| Err(ModuleError::new("WRONGPASS for pw123456").with("status", "critical")),
        );
        assert!(failed);
        assert_eq!(v["failed"], json!(true));
        assert_eq!(v["changed"], json!(false));
        assert_eq!(v["msg"], json!("WRONGPASS for ********"));
        assert_eq!(v["status"], json!("critical"));
    }

    #[test]
    fn unsupported_parameters_are_worded_like_ansible() {
        let (v, failed) = execute(
            &def(true),
            args(json!({"foo": 1, "login_password": "pw123456"})),
            |_| Ok(Outcome::new(false)),
        );
        assert!(failed);
        assert_eq!(
            v["msg"],
            json!("Unsupported parameters for (redis_test) module: foo. Supported parameters include: login_password, login_port.")
        );
        assert!(!v.to_string().contains("pw123456"));
    }

    #[test]
    fn validation_error_never_prints_a_secret() {
        let d = ModuleDef {
            name: "redis_test",
            spec: Spec::new(vec![Opt::int("login_password").no_log()]),
            supports_check_mode: true,
        };
        let (v, failed) = execute(&d, args(json!({"login_password": "notanint99"})), |_| {
            Ok(Outcome::new(false))
        });
        assert!(failed);
        assert!(!v.to_string().contains("notanint99"), "{v}");
    }

    #[test]
    fn check_mode_without_support_is_skipped_and_body_not_run() {
        let (v, failed) = execute(
            &def(false),
            args(json!({"_ansible_check_mode": true})),
            |_| panic!("body must not run in check mode"),
        );
        assert!(!failed);
        assert_eq!(v["skipped"], json!(true));
        assert_eq!(v["changed"], json!(false));
    }

    #[test]
    fn task_no_log_drops_invocation() {
        let (v, _) = execute(&def(true), args(json!({"_ansible_no_log": true})), |_| {
            Ok(Outcome::new(true))
        });
        assert!(v.get("invocation").is_none());
        assert_eq!(v["changed"], json!(true));
    }

    #[test]
    fn args_file_errors_are_clear() {
        assert!(read_args_file(None).is_err_and(|e| e.contains("Ansible module")));
        assert!(read_args_file(Some("/nonexistent/args"))
            .is_err_and(|e| e.contains("/nonexistent/args")));
    }

    #[test]
    fn durations_are_range_checked() {
        // See: issue 8 item 9 ("cannot convert float seconds to Duration ... report a bug").
        let p = Params(
            serde_json::json!({"a": 1e30, "b": -1.0, "c": 2.5, "d": 0, "e": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let msg = |k: &str| {
            p.duration(k, 86_400)
                .err()
                .map(|e| e.msg)
                .unwrap_or_default()
        };
        assert_eq!(
            msg("a"),
            "`a` must be between 0 and 86400 seconds, got 1e+30"
        );
        assert_eq!(
            msg("b"),
            "`b` must be between 0 and 86400 seconds, got -1.0"
        );
        assert!(msg("e").starts_with("`e` must be"));
        assert_eq!(
            p.duration("c", 86_400).ok().flatten(),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(p.duration("d", 10).ok().flatten(), Some(Duration::ZERO));
        assert_eq!(p.duration("unset", 10).ok().flatten(), None);
    }
}
