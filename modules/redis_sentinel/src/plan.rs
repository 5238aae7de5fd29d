//! The plan: from what the Sentinel runs now and what the task wants, the Sentinel commands to
//! send. Pure (no I/O), so check mode and the real run plan the same thing.
//!
//! The rule that matters most: a monitor's host/port in the task are its *initial* master. Once
//! a failover has happened (Sentinel's config epoch is above 0, or the configured address is now
//! one of the monitor's replicas), the running address is Sentinel's to own and is never moved
//! back: re-running a playbook must not undo a failover (DavidWittman/ansible-redis#22).

use crate::desired::{DesiredMonitor, DEFAULT_DOWN_AFTER_MS};
use redis_utils::sentinel::Monitor;
use serde_json::{json, Map, Value};

/// One thing to do on the Sentinel, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `SENTINEL MONITOR name host port quorum`, then the options that differ from Sentinel's
    /// defaults and the credentials.
    Monitor(DesiredMonitor),
    /// `SENTINEL SET name option value [option value ...]`.
    Set {
        name: String,
        pairs: Vec<(String, String)>,
    },
    /// `SENTINEL REMOVE name`.
    Remove { name: String },
}

impl Action {
    /// How the action reads in the result (secrets are masked by the contract layer anyway).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Action::Monitor(m) => format!(
                "SENTINEL MONITOR {} {} {} {}",
                m.name, m.host, m.port, m.quorum
            ),
            Action::Set { name, pairs } => {
                let parts: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| {
                        if k == "auth-pass" {
                            format!("{k} ********")
                        } else {
                            format!("{k} {v}")
                        }
                    })
                    .collect();
                format!("SENTINEL SET {name} {}", parts.join(" "))
            }
            Action::Remove { name } => format!("SENTINEL REMOVE {name}"),
        }
    }
}

/// What the Sentinel tells about one existing monitor, beyond SENTINEL MASTER.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// `host:port` of the replicas Sentinel knows for the monitor.
    pub replicas: Vec<(String, u16)>,
    /// Sentinel reached the master with the credentials it has (it read INFO recently).
    pub sentinel_authenticated: bool,
}

/// The plan and what the result says about it.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Per monitor, why it was left as it is (a failover it follows).
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    /// For diff mode: the settings before and after, per monitor name.
    pub before: Map<String, Value>,
    pub after: Map<String, Value>,
}

fn settings_of_monitor(m: &Monitor) -> Value {
    json!({
        "host": m.host, "port": m.port, "quorum": m.quorum,
        "down_after_milliseconds": m.down_after_milliseconds,
        "failover_timeout": m.failover_timeout, "parallel_syncs": m.parallel_syncs,
    })
}

fn settings_of_desired(d: &DesiredMonitor, host: &str, port: u16) -> Value {
    json!({
        "host": host, "port": port, "quorum": d.quorum,
        "down_after_milliseconds": d.down_after_milliseconds,
        "failover_timeout": d.failover_timeout, "parallel_syncs": d.parallel_syncs,
    })
}

/// The `SENTINEL SET` pairs that make an existing monitor's options what `d` asks.
fn option_pairs(d: &DesiredMonitor, cur: Option<&Monitor>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let (quorum, down, failover, syncs) = cur.map_or(
        // Right after MONITOR, Sentinel has its defaults and the quorum given to MONITOR.
        (
            d.quorum,
            DEFAULT_DOWN_AFTER_MS,
            crate::desired::DEFAULT_FAILOVER_TIMEOUT_MS,
            crate::desired::DEFAULT_PARALLEL_SYNCS,
        ),
        |c| {
            (
                c.quorum,
                c.down_after_milliseconds,
                c.failover_timeout,
                c.parallel_syncs,
            )
        },
    );
    if quorum != d.quorum {
        pairs.push(("quorum".into(), d.quorum.to_string()));
    }
    if down != d.down_after_milliseconds {
        pairs.push((
            "down-after-milliseconds".into(),
            d.down_after_milliseconds.to_string(),
        ));
    }
    if failover != d.failover_timeout {
        pairs.push(("failover-timeout".into(), d.failover_timeout.to_string()));
    }
    if syncs != d.parallel_syncs {
        pairs.push(("parallel-syncs".into(), d.parallel_syncs.to_string()));
    }
    pairs
}

fn auth_pairs(d: &DesiredMonitor) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Some(u) = &d.auth_user {
        pairs.push(("auth-user".into(), u.clone()));
    }
    if let Some(p) = &d.auth_pass {
        pairs.push(("auth-pass".into(), p.clone()));
    }
    pairs
}

/// Plans `state: present`.
///
/// # Errors
/// A request that cannot be honoured without breaking the group (a quorum larger than the
/// Sentinels that monitor the master): nothing has been sent.
pub fn present(
    desired: &[DesiredMonitor],
    exclusive: bool,
    current: &[Monitor],
    facts: &dyn Fn(&str) -> Facts,
) -> Result<Plan, String> {
    let mut plan = Plan::default();
    for d in desired {
        let Some(cur) = current.iter().find(|c| c.name == d.name) else {
            plan.actions.push(Action::Monitor(d.clone()));
            let pairs = [option_pairs(d, None), auth_pairs(d)].concat();
            if !pairs.is_empty() {
                plan.actions.push(Action::Set {
                    name: d.name.clone(),
                    pairs,
                });
            }
            plan.after
                .insert(d.name.clone(), settings_of_desired(d, &d.host, d.port));
            continue;
        };
        let f = facts(&d.name);
        let sentinels = 1 + cur.num_other_sentinels;
        if d.quorum > sentinels {
            return Err(format!(
                "monitors[{}].quorum is {} but only {sentinels} Sentinel(s) monitor `{}` (this one and the {} it sees): no failover could ever be authorised; nothing was changed",
                d.name, d.quorum, d.name, cur.num_other_sentinels
            ));
        }
        let moved = cur.host != d.host || cur.port != d.port;
        let configured_is_replica = f.replicas.iter().any(|(h, p)| *h == d.host && *p == d.port);
        let mut host = cur.host.clone();
        let mut port = cur.port;
        if moved && (cur.config_epoch > 0 || configured_is_replica) {
            plan.notes.push(format!(
                "{}: follows a failover: the master is {}:{} (the task's initial master {}:{} is {}); left as Sentinel has it",
                d.name,
                cur.host,
                cur.port,
                d.host,
                d.port,
                if configured_is_replica { "now a replica" } else { "no longer the master" }
            ));
        } else if moved {
            // No failover ever happened: the task changed the initial master on purpose.
            plan.warnings.push(format!(
                "{}: the monitor is re-created on {}:{} (it watched {}:{} and never failed over); Sentinel forgets the old master's replicas and peers and learns them again",
                d.name, d.host, d.port, cur.host, cur.port
            ));
            plan.actions.push(Action::Remove {
                name: d.name.clone(),
            });
            plan.actions.push(Action::Monitor(d.clone()));
            let pairs = [option_pairs(d, None), auth_pairs(d)].concat();
            if !pairs.is_empty() {
                plan.actions.push(Action::Set {
                    name: d.name.clone(),
                    pairs,
                });
            }
            plan.before.insert(d.name.clone(), settings_of_monitor(cur));
            plan.after
                .insert(d.name.clone(), settings_of_desired(d, &d.host, d.port));
            continue;
        } else {
            host.clone_from(&d.host);
            port = d.port;
        }
        let mut pairs = option_pairs(d, Some(cur));
        // Sentinel never shows its credentials; when it is reaching the master fine, the ones
        // it has work, and sending them again would report a change on every run.
        if !f.sentinel_authenticated {
            pairs.extend(auth_pairs(d));
        }
        if !pairs.is_empty() {
            plan.before.insert(d.name.clone(), settings_of_monitor(cur));
            plan.after
                .insert(d.name.clone(), settings_of_desired(d, &host, port));
            plan.actions.push(Action::Set {
                name: d.name.clone(),
                pairs,
            });
        }
    }
    if exclusive {
        for c in current
            .iter()
            .filter(|c| !desired.iter().any(|d| d.name == c.name))
        {
            plan.before.insert(c.name.clone(), settings_of_monitor(c));
            plan.actions.push(Action::Remove {
                name: c.name.clone(),
            });
        }
    }
    Ok(plan)
}

/// Plans `state: absent`.
#[must_use]
pub fn absent(names: &[String], current: &[Monitor]) -> Plan {
    let mut plan = Plan::default();
    for c in current.iter().filter(|c| names.contains(&c.name)) {
        plan.before.insert(c.name.clone(), settings_of_monitor(c));
        plan.actions.push(Action::Remove {
            name: c.name.clone(),
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(port: u16) -> DesiredMonitor {
        DesiredMonitor {
            name: "grp".into(),
            host: "127.0.0.1".into(),
            port,
            quorum: 2,
            down_after_milliseconds: 5000,
            failover_timeout: 60000,
            parallel_syncs: 1,
            auth_user: None,
            auth_pass: Some("pw".into()),
        }
    }

    fn running(port: u16, epoch: u64, others: u32) -> Monitor {
        Monitor::from_reply(&json!([
            "name",
            "grp",
            "ip",
            "127.0.0.1",
            "port",
            port.to_string(),
            "flags",
            "master",
            "quorum",
            "2",
            "down-after-milliseconds",
            "5000",
            "failover-timeout",
            "60000",
            "parallel-syncs",
            "1",
            "num-other-sentinels",
            others.to_string(),
            "config-epoch",
            epoch.to_string()
        ]))
    }

    fn ok_facts(_: &str) -> Facts {
        Facts {
            replicas: vec![],
            sentinel_authenticated: true,
        }
    }

    #[test]
    fn a_new_monitor_is_monitored_then_set() {
        let p = present(&[desired(6380)], false, &[], &ok_facts).expect("plan");
        assert_eq!(p.actions.len(), 2);
        assert!(matches!(&p.actions[0], Action::Monitor(m) if m.port == 6380));
        let Action::Set { pairs, .. } = &p.actions[1] else {
            panic!("no SET: {:?}", p.actions)
        };
        assert!(pairs.contains(&("down-after-milliseconds".into(), "5000".into())));
        assert!(pairs.contains(&("auth-pass".into(), "pw".into())));
        assert!(!p.actions[1].describe().contains("pw "));
    }

    #[test]
    fn an_equal_monitor_needs_nothing() {
        let p = present(&[desired(6380)], false, &[running(6380, 0, 2)], &ok_facts).expect("plan");
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }

    #[test]
    fn a_failover_is_never_undone() {
        // Sentinel moved the master to 6381 (epoch 1): the task's 6380 is only the initial one.
        let p = present(&[desired(6380)], false, &[running(6381, 1, 2)], &ok_facts).expect("plan");
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p.notes[0].contains("follows a failover"));
        // Same when the configured master is now known as a replica, whatever the epoch.
        let facts = |_: &str| Facts {
            replicas: vec![("127.0.0.1".into(), 6380)],
            sentinel_authenticated: true,
        };
        let p = present(&[desired(6380)], false, &[running(6381, 0, 2)], &facts).expect("plan");
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }

    #[test]
    fn a_changed_initial_master_without_failover_is_re_monitored() {
        let p = present(&[desired(6390)], false, &[running(6380, 0, 2)], &ok_facts).expect("plan");
        assert!(matches!(p.actions[0], Action::Remove { .. }));
        assert!(matches!(&p.actions[1], Action::Monitor(m) if m.port == 6390));
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn options_drift_is_set_back_and_quorum_is_checked() {
        let mut cur = running(6380, 0, 2);
        cur.parallel_syncs = 5;
        let p = present(&[desired(6380)], false, &[cur], &ok_facts).expect("plan");
        assert_eq!(
            p.actions,
            vec![Action::Set {
                name: "grp".into(),
                pairs: vec![("parallel-syncs".into(), "1".into())]
            }]
        );
        let mut d = desired(6380);
        d.quorum = 4;
        let e = present(&[d], false, &[running(6380, 0, 2)], &ok_facts).expect_err("quorum");
        assert!(e.contains("only 3 Sentinel(s)"), "{e}");
    }

    #[test]
    fn credentials_are_sent_only_when_sentinel_cannot_authenticate() {
        let bad = |_: &str| Facts {
            replicas: vec![],
            sentinel_authenticated: false,
        };
        let p = present(&[desired(6380)], false, &[running(6380, 0, 2)], &bad).expect("plan");
        assert!(matches!(&p.actions[0], Action::Set { pairs, .. } if pairs[0].0 == "auth-pass"));
    }

    #[test]
    fn exclusive_and_absent_remove() {
        let mut other = running(7000, 0, 0);
        other.name = "other".into();
        let cur = [running(6380, 0, 2), other];
        let p = present(&[desired(6380)], true, &cur, &ok_facts).expect("plan");
        assert_eq!(
            p.actions,
            vec![Action::Remove {
                name: "other".into()
            }]
        );
        let p = absent(&["grp".into(), "missing".into()], &cur);
        assert_eq!(p.actions, vec![Action::Remove { name: "grp".into() }]);
    }
}
