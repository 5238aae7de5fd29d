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

/// Slots moved together: their SETSLOTs, key listings and MIGRATEs each go in one pipeline.
/// Redis saves nodes.conf (with an fsync) once per event-loop turn, so a pipeline of SETSLOTs
/// costs one save where one SETSLOT at a time costs one each: that, not the keys, is what makes
/// a slot-by-slot reshard slow.
pub const SLOTS_PER_ROUND: usize = 1024;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

/// Sends a pipeline and fails on the first error reply.
fn pipeline(
    con: &mut RedisConn,
    p: &Peer,
    cmds: &[Vec<String>],
) -> Result<Vec<serde_json::Value>, ModuleError> {
    let replies = con
        .pipeline(cmds)
        .map_err(|e| ModuleError::new(format!("node {}: {e}", p.label())))?;
    replies
        .into_iter()
        .map(|r| r.map_err(|e| ModuleError::new(format!("node {}: {e}", p.label()))))
        .collect()
}

/// Connections one node's SETSLOTs of a round are spread over, and the fewest SETSLOTs worth
/// another connection. Valkey 8 answers a SETSLOT on a master with replicas only once they have
/// acknowledged it (a replication round trip: 1 to 5 ms each, measured here, where Redis takes
/// 0.03 ms), and on one connection each waits for the one before: 4096 slots took a minute.
/// Blocked on several connections they wait together. Redis answers at once either way.
const SETSLOT_CONNECTIONS: usize = 16;
const SETSLOTS_PER_CONNECTION: usize = 32;

fn setslots(
    conn: &ConnectionParams,
    con: &mut RedisConn,
    p: &Peer,
    slots: &[u16],
    state: &str,
    id: &str,
) -> Result<(), ModuleError> {
    let cmds: Vec<Vec<String>> = slots
        .iter()
        .map(|s| strings(&["CLUSTER", "SETSLOT", &s.to_string(), state, id]))
        .collect();
    let n = (cmds.len() / SETSLOTS_PER_CONNECTION).clamp(1, SETSLOT_CONNECTIONS);
    let mut chunks = cmds.chunks(cmds.len().div_ceil(n).max(1));
    let Some(first) = chunks.next() else {
        return Ok(());
    };
    std::thread::scope(|s| {
        let others: Vec<_> = chunks
            .map(|chunk| {
                s.spawn(move || {
                    let mut c = connect(conn, p)?;
                    pipeline(&mut c, p, chunk).map(|_| ())
                })
            })
            .collect();
        let mut result = pipeline(con, p, first).map(|_| ());
        for h in others {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(ModuleError::new("a SETSLOT thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// Moves one round of slots, start to finish. Returns the keys moved.
fn move_round(
    conn: &ConnectionParams,
    src: &mut RedisConn,
    dst: &mut RedisConn,
    others: &mut [(Peer, RedisConn)],
    mv: &Move,
    slots: &[u16],
) -> Result<u64, ModuleError> {
    setslots(conn, dst, &mv.to, slots, "IMPORTING", &mv.from.id)?;
    setslots(conn, src, &mv.from, slots, "MIGRATING", &mv.to.id)?;
    let port = mv.to.port.to_string();
    let batch = BATCH.to_string();
    let mut auth: Vec<String> = Vec::new();
    match (&conn.user, &conn.password) {
        (Some(u), Some(p)) => auth.extend(strings(&["AUTH2", u, p])),
        (None, Some(p)) => auth.extend(strings(&["AUTH", p])),
        _ => {}
    }
    let mut keys_moved = 0u64;
    let mut pending: Vec<u16> = slots.to_vec();
    while !pending.is_empty() {
        let listing: Vec<Vec<String>> = pending
            .iter()
            .map(|s| strings(&["CLUSTER", "GETKEYSINSLOT", &s.to_string(), &batch]))
            .collect();
        let keys = pipeline(src, &mv.from, &listing)?;
        let mut migrate = Vec::new();
        let mut again = Vec::new();
        for (slot, k) in pending.iter().zip(keys) {
            let k: Vec<String> = k
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if k.is_empty() {
                continue;
            }
            if k.len() >= BATCH {
                again.push(*slot);
            }
            keys_moved += k.len() as u64;
            let mut c = strings(&["MIGRATE", &mv.to.host, &port, "", "0", MIGRATE_TIMEOUT_MS]);
            c.extend(auth.iter().cloned());
            c.push("KEYS".into());
            c.extend(k);
            migrate.push(c);
        }
        if !migrate.is_empty() {
            pipeline(src, &mv.from, &migrate).map_err(|e| {
                ModuleError::new(format!(
                    "moving slots {}-{} from {} to {}: {} (the slots stay open; the next run or state=fixed finishes them)",
                    slots.first().copied().unwrap_or(0),
                    slots.last().copied().unwrap_or(0),
                    mv.from.label(),
                    mv.to.label(),
                    e.msg
                ))
            })?;
        }
        pending = again;
    }
    // The new owner first, so that it serves the slots before the source stops redirecting.
    setslots(conn, dst, &mv.to, slots, "NODE", &mv.to.id)?;
    if let Err(e) = setslots(conn, src, &mv.from, slots, "NODE", &mv.to.id) {
        // A master that has just handed over its last slot turns itself into a replica of the
        // new owner (cluster-allow-replica-migration) as soon as the target's claim reaches it:
        // it then refuses SETSLOT, and has nothing left to give up. Valkey 8 also drops the
        // connections whose SETSLOT still waited for its replicas (-UNBLOCKED, then closed), so
        // an error there is judged by what the node is now.
        let replica_now = || {
            redis_utils::targets::own_role(&conn.for_node(&mv.from.host, mv.from.port))
                .is_ok_and(|r| r == "replica")
        };
        if !(e.msg.contains("only with masters") || replica_now()) {
            return Err(e);
        }
    }
    for (p, c) in others.iter_mut() {
        // Gossip would tell them too; telling them now spares clients a round of MOVED.
        let _ = setslots(conn, c, p, slots, "NODE", &mv.to.id);
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
        for round in mv.slots.chunks(SLOTS_PER_ROUND) {
            if Instant::now() >= deadline {
                return Err(fail(
                    &done,
                    ModuleError::new(format!(
                        "wait_timeout ran out while resharding: {} slot(s) and {} key(s) moved; every moved slot is closed, run again to go on",
                        done.slots, done.keys
                    )),
                ));
            }
            let k = move_round(conn, &mut src, &mut dst, &mut others, mv, round)
                .map_err(|e| fail(&done, e))?;
            done.slots += round.len();
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
