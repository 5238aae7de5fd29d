//! Command-line mode: the same checks for cron, Nagios or a container healthcheck.
//!
//! Flags map onto the module options (`--login-port 7000` or `--port 7000`, `--max-memory-percent
//! 80`), so both modes share one validation. The password is never taken from the command line,
//! where `ps` shows it to every user: it comes from `REDISCLI_AUTH` (as redis-cli does) or
//! `--password-file`.

use crate::{definition, field, health};
use ansible_module::module::{print_and_exit, Module};
use serde_json::{Map, Value};

const USAGE: &str =
    "usage: redis_health [--host H] [--port P] [--user U] [--password-file F] [--db N]
                    [--tls] [--ca-certs F] [--client-cert F --client-key F] [--insecure]
                    [--timeout SECONDS] [--checks ping,memory,...] [--sentinel-master NAME]
                    [--max-memory-percent N] [--max-replication-lag S] [--max-clients-percent N]
                    [--min-hit-rate N] [--min-replicas N] [--expected-role master|replica]
                    [--format json|nagios]

Checks a Redis server, Sentinel or Cluster node and prints one verdict.
The password comes from the REDISCLI_AUTH environment variable or --password-file,
never from the command line (where ps would show it).
Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown (bad usage).
As an Ansible module: creativeflow.redis.redis_health.";

/// Short flags for the options operators type most.
fn option_for(flag: &str) -> String {
    match flag {
        "host" | "h" => "login_host".into(),
        "port" | "p" => "login_port".into(),
        "user" => "login_user".into(),
        "db" | "n" => "login_db".into(),
        "client-cert" => "client_cert_file".into(),
        "client-key" => "client_key_file".into(),
        "timeout" => "connect_timeout".into(),
        "sentinel-master" => "sentinel_master_name".into(),
        other => other.replace('-', "_"),
    }
}

fn unknown(msg: &str, nagios: bool) -> ! {
    if nagios {
        print_and_exit(&format!("UNKNOWN - {msg}"), 3)
    }
    print_and_exit(
        &serde_json::json!({"status": "unknown", "msg": msg}).to_string(),
        3,
    )
}

pub fn main(args: &[String]) -> ! {
    let def = definition();
    let mut user = Map::new();
    let mut format = "json".to_string();
    let mut password_file: Option<String> = None;
    let nagios_hint = args.iter().any(|a| a == "nagios" || a == "--format=nagios");
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            unknown(
                &format!("unexpected argument `{arg}`\n{USAGE}"),
                nagios_hint,
            );
        };
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        let next_value = |i: &mut usize| -> Option<String> {
            if inline.is_some() {
                return inline.clone();
            }
            let v = args.get(*i + 1).filter(|v| !v.starts_with("--"))?.clone();
            *i += 1;
            Some(v)
        };
        match flag.as_str() {
            "help" => print_and_exit(USAGE, 0),
            "password" | "a" | "login-password" | "login_password" => unknown(
                "refusing a password on the command line, where ps shows it to every user: set REDISCLI_AUTH or use --password-file",
                nagios_hint,
            ),
            "password-file" => password_file = next_value(&mut i),
            "format" => format = next_value(&mut i).unwrap_or_default(),
            "insecure" => {
                user.insert("validate_certs".into(), Value::Bool(false));
            }
            _ => {
                let name = option_for(&flag);
                let Some(opt) = def.spec.get(&name) else {
                    unknown(&format!("unknown flag `--{flag}`\n{USAGE}"), nagios_hint);
                };
                let value = if opt.ty == ansible_module::ArgType::Bool {
                    inline.clone().unwrap_or_else(|| "true".into())
                } else {
                    next_value(&mut i).unwrap_or_else(|| {
                        unknown(&format!("`--{flag}` needs a value"), nagios_hint)
                    })
                };
                user.insert(name, Value::String(value));
            }
        }
        i += 1;
    }
    let nagios = match format.as_str() {
        "nagios" => true,
        "json" => false,
        other => unknown(
            &format!("--format must be json or nagios, got `{other}`"),
            nagios_hint,
        ),
    };
    let password = match password_file {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(s) => Some(s.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => unknown(
                &format!("cannot read --password-file `{path}`: {e}"),
                nagios,
            ),
        },
        None => std::env::var("REDISCLI_AUTH")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    if let Some(p) = password {
        user.insert("login_password".into(), Value::String(p));
    }
    let (value, _failed) = ansible_module::module::execute(&def, user, |m: &Module| {
        // In this mode the verdict is the output; fail_on does not apply.
        let mut forced = m.params.clone();
        forced
            .0
            .insert("fail_on".into(), Value::String("never".into()));
        let m2 = Module::from_params(&def, &forced.0, &Map::new())?;
        health(&m2)
    });
    let status = field(&value, "status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let code = match status {
        "ok" => 0,
        "warning" => 1,
        "critical" => 2,
        _ => 3,
    };
    let msg = field(&value, "msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if code == 3 {
        unknown(&msg, nagios);
    }
    if nagios {
        print_and_exit(&nagios_line(status, &msg, &value), code);
    }
    let mut out = value;
    if let Some(o) = out.as_object_mut() {
        o.remove("invocation");
        o.remove("changed");
    }
    print_and_exit(&out.to_string(), code)
}

/// `OK - Redis at 127.0.0.1:6379 is ok (7 checks) | used_memory=1024B;; connected_clients=1;;`
fn nagios_line(status: &str, msg: &str, v: &Value) -> String {
    let mut perf = Vec::new();
    let info = field(v, "info");
    for (k, unit) in [
        ("used_memory", "B"),
        ("connected_clients", ""),
        ("blocked_clients", ""),
        ("connected_slaves", ""),
        ("instantaneous_ops_per_sec", ""),
        ("evicted_keys", "c"),
    ] {
        if let Some(n) = info.and_then(|i| i.get(k)).and_then(Value::as_i64) {
            perf.push(format!("{k}={n}{unit}"));
        }
    }
    if let Some(ms) = field(v, "latency_ms").and_then(Value::as_f64) {
        perf.push(format!("latency={ms}ms"));
    }
    let line = format!("{} - {msg}", status.to_uppercase());
    if perf.is_empty() {
        line
    } else {
        format!("{line} | {}", perf.join(" "))
    }
}
