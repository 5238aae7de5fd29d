//! Moving slots between masters of a live cluster, with their keys, the way Redis documents it:
//! the target marks the slot IMPORTING, the source MIGRATING, the keys move in batches with
//! MIGRATE (clients meanwhile get ASK for keys already moved and MOVED afterwards, never an
//! error), then every master learns the new owner (SETSLOT NODE, target first).
//!
//! Why it is fast: many keys per MIGRATE call (redis-cli moves 10), and one worker thread per
//! source master, so that moves out of different masters run at the same time (each source
//! serialises its own MIGRATEs anyway).

use ansible_module::ModuleError;
use redis_utils::connection::{ConnectionParams, RedisConn};
use std::time::Instant;

/// Keys per MIGRATE call while resharding.
pub const BATCH: usize = 1000;
const MIGRATE_TIMEOUT_MS: &str = "20000";

/// A node as the workers need it: address and id, no connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub host: String,
    pub port: u16,
    pub id: String,
}

impl Peer {
    #[must_use]
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Slots to move from one master to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub from: Peer,
    pub to: Peer,
    pub slots: Vec<u16>,
}

/// What the moves did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub slots: usize,
    pub keys: u64,
}

fn connect(conn: &ConnectionParams, p: &Peer) -> Result<RedisConn, ModuleError> {
    conn.for_node(&p.host, p.port)
        .connect()
        .map_err(|e| ModuleError::new(format!("node {}: {e}", p.label())))
}

fn run(con: &mut RedisConn, p: &Peer, args: &[&str]) -> Result<serde_json::Value, ModuleError> {
    con.cmd_json(args)
        .map_err(|e| ModuleError::new(format!("node {}: {e}", p.label())))
}

/// One slot, start to finish.
fn move_slot(
    conn: &ConnectionParams,
    src: &mut RedisConn,
    dst: &mut RedisConn,
    others: &mut [(Peer, RedisConn)],
    mv: &Move,
    slot: u16,
) -> Result<u64, ModuleError> {
    let s = slot.to_string();
    run(
        dst,
        &mv.to,
        &["CLUSTER", "SETSLOT", &s, "IMPORTING", &mv.from.id],
    )?;
    run(
        src,
        &mv.from,
        &["CLUSTER", "SETSLOT", &s, "MIGRATING", &mv.to.id],
    )?;
    let port = mv.to.port.to_string();
    let batch = BATCH.to_string();
    let mut keys_moved = 0u64;
    loop {
        let keys: Vec<String> = src
            .cmd(&["CLUSTER", "GETKEYSINSLOT", &s, &batch])
            .map_err(|e| ModuleError::new(format!("node {}: {e}", mv.from.label())))?;
        if keys.is_empty() {
            break;
        }
        let mut args: Vec<&str> = vec!["MIGRATE", &mv.to.host, &port, "", "0", MIGRATE_TIMEOUT_MS];
        match (&conn.user, &conn.password) {
            (Some(u), Some(p)) => args.extend(["AUTH2", u.as_str(), p.as_str()]),
            (None, Some(p)) => args.extend(["AUTH", p.as_str()]),
            _ => {}
        }
        args.push("KEYS");
        args.extend(keys.iter().map(String::as_str));
        src.cmd_json(&args).map_err(|e| {
            ModuleError::new(format!(
                "moving slot {slot} from {} to {}: stopped after {keys_moved} key(s) (the slot stays open; the next run or state=fixed finishes it): {e}",
                mv.from.label(),
                mv.to.label()
            ))
        })?;
        keys_moved += keys.len() as u64;
    }
    // The new owner first, so that it serves the slot before the source stops redirecting.
    run(dst, &mv.to, &["CLUSTER", "SETSLOT", &s, "NODE", &mv.to.id])?;
    run(
        src,
        &mv.from,
        &["CLUSTER", "SETSLOT", &s, "NODE", &mv.to.id],
    )?;
    for (p, c) in others.iter_mut() {
        // Gossip would tell them too; telling them now spares clients a round of MOVED.
        let _ = run(c, p, &["CLUSTER", "SETSLOT", &s, "NODE", &mv.to.id]);
    }
    Ok(keys_moved)
}

/// Runs the moves of one source, in order.
fn worker(
    conn: &ConnectionParams,
    moves: &[&Move],
    masters: &[Peer],
    deadline: Instant,
) -> Result<Moved, (Moved, ModuleError)> {
    let mut done = Moved::default();
    for mv in moves {
        let fail = |done: &Moved, e: ModuleError| (done.clone(), e);
        let mut src = connect(conn, &mv.from).map_err(|e| fail(&done, e))?;
        let mut dst = connect(conn, &mv.to).map_err(|e| fail(&done, e))?;
        let mut others = Vec::new();
        for p in masters
            .iter()
            .filter(|p| p.id != mv.from.id && p.id != mv.to.id)
        {
            if let Ok(c) = connect(conn, p) {
                others.push((p.clone(), c));
            }
        }
        for &slot in &mv.slots {
            if Instant::now() >= deadline {
                return Err(fail(
                    &done,
                    ModuleError::new(format!(
                        "wait_timeout ran out while resharding: {} slot(s) and {} key(s) moved; every moved slot is closed, run again to go on",
                        done.slots, done.keys
                    )),
                ));
            }
            let k = move_slot(conn, &mut src, &mut dst, &mut others, mv, slot)
                .map_err(|e| fail(&done, e))?;
            done.slots += 1;
            done.keys += k;
        }
    }
    Ok(done)
}

/// Runs every move, one thread per source master.
///
/// # Errors
/// The first failure of any worker; the others finish their current slot and stop too (a slot
/// is never left half moved by a deadline; a refused MIGRATE leaves that one slot open, which
/// `state: fixed` or the next run closes).
pub fn execute(
    conn: &ConnectionParams,
    moves: &[Move],
    masters: &[Peer],
    deadline: Instant,
) -> Result<Moved, ModuleError> {
    let mut sources: Vec<&Peer> = Vec::new();
    for m in moves {
        if !sources.contains(&&m.from) {
            sources.push(&m.from);
        }
    }
    let results: Vec<Result<Moved, (Moved, ModuleError)>> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| {
                let mine: Vec<&Move> = moves.iter().filter(|m| m.from == **src).collect();
                s.spawn(move || worker(conn, &mine, masters, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err((
                        Moved::default(),
                        ModuleError::new("a reshard worker panicked"),
                    ))
                })
            })
            .collect()
    });
    let mut total = Moved::default();
    let mut first_err = None;
    for r in results {
        let (m, e) = match r {
            Ok(m) => (m, None),
            Err((m, e)) => (m, Some(e)),
        };
        total.slots += m.slots;
        total.keys += m.keys;
        if first_err.is_none() {
            first_err = e;
        }
    }
    match first_err {
        Some(mut e) => {
            e.msg = format!(
                "{} (in all: {} slot(s), {} key(s) moved)",
                e.msg, total.slots, total.keys
            );
            Err(e)
        }
        None => Ok(total),
    }
}
