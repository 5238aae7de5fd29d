//! `creativeflow.redis.redis_health`: one verdict (ok / warning / critical) on a Redis server,
//! Sentinel or Cluster node, with the numbers behind it.
//!
//! Run by Ansible with an args file, or by hand / cron / Nagios / a container healthcheck with
//! command-line flags (`redis_health --help`).

pub mod checks;
pub mod cli;

use ansible_module::{ArgType, Module, ModuleDef, ModuleError, Opt, Outcome};
use checks::{run_checks, Report, Status, Thresholds, ALL_CHECKS};
use redis_utils::connection::{with_connection_options, ConnectionParams};
use serde_json::Value;

/// The module's identity and argument spec (documented in plugins/modules/redis_health.py).
#[must_use]
pub fn definition() -> ModuleDef {
    ModuleDef {
        name: "redis_health",
        spec: with_connection_options(vec![
            Opt::list("checks", ArgType::Str).choices(&ALL_CHECKS),
            Opt::str("sentinel_master_name"),
            Opt::float("max_memory_percent").default(90.0),
            Opt::int("max_replication_lag").default(10),
            Opt::float("max_clients_percent").default(90.0),
            Opt::float("min_hit_rate"),
            Opt::int("min_replicas"),
            Opt::str("expected_role").choices(&["master", "replica"]),
            Opt::str("fail_on")
                .default("critical")
                .choices(&["critical", "warning", "never"]),
        ]),
        supports_check_mode: true,
    }
}

fn percent(m: &Module, name: &str) -> Result<(), ModuleError> {
    match m.params.float(name) {
        Some(v) if !(0.0..=100.0).contains(&v) => Err(ModuleError::new(format!(
            "{name} must be a percentage between 0 and 100, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// Runs the checks for a validated invocation and builds the result; `Err` when `fail_on` says
/// the verdict is a failure (the result values ride along with the error).
///
/// # Errors
/// A bad option, or a verdict that `fail_on` makes a failure.
pub fn health(m: &Module) -> Result<Outcome, ModuleError> {
    for p in ["max_memory_percent", "max_clients_percent", "min_hit_rate"] {
        percent(m, p)?;
    }
    for p in ["max_replication_lag", "min_replicas"] {
        if let Some(v) = m.params.int(p).filter(|v| *v < 0) {
            return Err(ModuleError::new(format!(
                "{p} must not be negative, got {v}"
            )));
        }
        // Beyond i32 no threshold means anything (and 2**63 would wrap in comparisons).
        if let Some(v) = m.params.int(p).filter(|v| *v > i64::from(i32::MAX)) {
            return Err(ModuleError::new(format!(
                "{p} must be at most {}, got {v}",
                i32::MAX
            )));
        }
    }
    let conn = ConnectionParams::from_params(&m.params)?;
    let requested = m.params.str_list("checks");
    let report = run_checks(
        &conn,
        requested.as_deref(),
        &Thresholds::from_params(&m.params),
    );
    let fail_on = m.params.str("fail_on").unwrap_or("critical");
    let failed = match fail_on {
        "warning" => report.status >= Status::Warning,
        "never" => false,
        _ => report.status == Status::Critical,
    };
    let summary = summary(&report);
    let outcome = outcome(report);
    if failed {
        Err(ModuleError::from_outcome(summary, outcome))
    } else {
        Ok(outcome.msg(summary))
    }
}

fn summary(r: &Report) -> String {
    // When the server cannot be reached, that one message is the whole story.
    if let [(name, Status::Critical, msg)] = r.checks.as_slice() {
        if name == "ping" {
            return msg.clone();
        }
    }
    // "Valkey 8.1.1 at ...": the verdict names what answered, flavour and version.
    let who = r.server.as_deref().unwrap_or("Redis");
    if r.status == Status::Ok {
        format!("{who} at {} is ok ({} checks)", r.address, r.checks.len())
    } else {
        format!(
            "{who} at {} is {}: {}",
            r.address,
            r.status.as_str(),
            r.problems()
        )
    }
}

fn outcome(r: Report) -> Outcome {
    let mut o = Outcome::new(false)
        .with("status", r.status.as_str())
        .with("address", &r.address)
        .with("checks", r.checks_json());
    for (k, v) in r.data {
        o.set(&k, v);
    }
    o
}

/// The whole process: Ansible runs `AnsiballZ_redis_health <args file>` (or the action plugin
/// `redis_health --ansible-args-stdin`); anything else is the command-line mode.
pub fn main_with_args(args: &[String]) -> ! {
    let ansible = args.len() == 2
        && (!args[1].starts_with('-')
            || args[1] == "--ansible-argspec"
            || args[1] == ansible_module::module::ARGS_FROM_STDIN);
    if ansible {
        ansible_module::run(&definition(), health);
    }
    cli::main(&args[1..]);
}

/// Used by the CLI to read a value from the result.
pub(crate) fn field<'a>(o: &'a Value, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}
