#!/usr/bin/env python3
"""Cluster-aware clients for the Molecule `cluster` scenario (redis-py's RedisCluster).

Run with the venv's Python on the controller inside the test hosts' shared network namespace
(`nsenter --net=/proc/<pid>/ns/net`), so that every address it reaches is a 127.0.0.x of the
hosts. The password comes from REDISCLI_AUTH in the environment, never from the command line.
Each command prints one JSON object and exits non-zero when what it checks does not hold.

    clients.py fill NODE COUNT PREFIX         write COUNT keys, then read every one back
    clients.py check NODE COUNT PREFIX        every key of `fill` readable with its value
    clients.py topology NODE                  the nodes (id, addr, role, master, slots, pid)
    clients.py wait-failover NODE DEAD SINCE BOUND
                                              DEAD's replica is master, every live node says
                                              cluster_state:ok; seconds since SINCE (epoch) <= BOUND
    clients.py wait-replica NODE ADDR TIMEOUT ADDR is a replica with its link to its master up
    clients.py wait-up ADDR TIMEOUT           ADDR answers CLUSTER INFO
    clients.py kill-when-open ADDR TIMEOUT READY STOP
                                              kill -9 ADDR's process once it has a slot open;
                                              gives up when STOP exists (the run is over)
    clients.py writer NODE DIR                write and read keys until DIR/stop exists, then
                                              check every acknowledged value (DIR/result.json)
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

PASSWORD = os.environ.get("REDISCLI_AUTH") or None
# What a cluster-aware client may meet while the cluster changes under it and simply retries:
# a node going away or refusing (failover, a removed node), a slot between owners.
RETRYABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
)


def split(node: str) -> tuple[str, int]:
    host, port = node.rsplit(":", 1)
    assert host.startswith("127."), f"only loopback addresses, not {host}"
    return host, int(port)


def cluster(node: str) -> RedisCluster:
    host, port = split(node)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port)], password=PASSWORD, decode_responses=True,
        socket_timeout=5, socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 10),
    )


def single(node: str) -> redis.Redis:
    host, port = split(node)
    return redis.Redis(host=host, port=port, password=PASSWORD, decode_responses=True,
                       socket_timeout=3, socket_connect_timeout=2)


def out(obj: dict, ok: bool) -> int:
    obj["ok"] = ok
    print(json.dumps(obj, sort_keys=True))
    return 0 if ok else 1


def value(prefix: str, i: int) -> str:
    return f"{prefix}value-{i}"


def fill(node: str, count: int, prefix: str) -> int:
    rc = cluster(node)
    t0 = time.monotonic()
    for i in range(count):
        assert rc.set(f"{prefix}{i}", value(prefix, i)) is True
    written = time.monotonic() - t0
    rc.close()
    res = read_all(node, count, prefix)
    res["write_seconds"] = round(written, 2)
    return out(res, res["missing"] == 0 and res["wrong"] == 0)


def read_all(node: str, count: int, prefix: str) -> dict:
    # A fresh client: it learns the slot map anew, as a client connecting after the change would.
    rc = cluster(node)
    missing = wrong = 0
    keys = [f"{prefix}{i}" for i in range(count)]
    for start in range(0, count, 500):
        got = rc.mget_nonatomic(keys[start:start + 500])
        for off, v in enumerate(got):
            if v is None:
                missing += 1
            elif v != value(prefix, start + off):
                wrong += 1
    rc.close()
    return {"count": count, "missing": missing, "wrong": wrong, "dbsize": dbsize(node)}


def check(node: str, count: int, prefix: str) -> int:
    res = read_all(node, count, prefix)
    return out(res, res["missing"] == 0 and res["wrong"] == 0)


def dbsize(node: str) -> int:
    total = 0
    for n in nodes(node):
        if n["role"] == "master" and "fail" not in n["flags"]:
            total += single(n["addr"]).dbsize()
    return total


def nodes(node: str) -> list[dict]:
    """CLUSTER NODES as one node sees it."""
    res = []
    c = single(node)
    # redis-py parses CLUSTER NODES into a dict; the raw lines keep flags and slots as Redis says.
    c.set_response_callback("CLUSTER NODES", lambda r, **kw: r)
    for line in c.execute_command("CLUSTER NODES").splitlines():
        f = line.split()
        flags = f[2].split(",")
        res.append({
            "id": f[0], "addr": f[1].split("@")[0], "flags": flags,
            "role": "master" if "master" in flags else "replica",
            "master": None if f[3] == "-" else f[3], "link": f[7], "slots": f[8:],
        })
    return res


def topology(node: str) -> int:
    ns = nodes(node)
    by_id = {n["id"]: n for n in ns}
    for n in ns:
        n["master_addr"] = by_id[n["master"]]["addr"] if n["master"] in by_id else None
        try:
            n["pid"] = int(single(n["addr"]).info("server")["process_id"])
        except redis.exceptions.RedisError:
            n["pid"] = None
    return out({"nodes": ns}, True)


def state(addr: str) -> str | None:
    try:
        # redis-py parses CLUSTER INFO into a dict (its response callback); plain text otherwise.
        info = single(addr).execute_command("CLUSTER INFO")
        if isinstance(info, dict):
            return info.get("cluster_state")
        return info.split("cluster_state:")[1].split()[0]
    except (redis.exceptions.RedisError, IndexError):
        return None


def wait_failover(node: str, dead: str, since: float, bound: float) -> int:
    ids = {n["addr"]: n for n in nodes(node)}
    dead_id = ids[dead]["id"]
    replicas = [n["addr"] for n in ids.values() if n["master"] == dead_id]
    deadline = since + bound + 30  # poll past the bound, to report how late it was
    while time.time() < deadline:
        live = [a for a in ids if a != dead]
        promoted = [a for a in replicas if state(a) and any(
            n["addr"] == a and n["role"] == "master" for n in nodes(a))]
        if promoted and all(state(a) == "ok" for a in live):
            took = time.time() - since
            return out({"dead": dead, "replicas": replicas, "promoted": promoted[0],
                        "seconds": round(took, 2), "bound": bound}, took <= bound)
        time.sleep(0.1)
    return out({"dead": dead, "replicas": replicas, "error": "no failover", "bound": bound}, False)


def wait_replica(node: str, addr: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    info = {}
    while time.monotonic() < deadline:
        try:
            info = single(addr).info("replication")
            if info.get("role") == "slave" and info.get("master_link_status") == "up" \
                    and state(addr) == "ok":
                return out({"addr": addr, "master": f"{info['master_host']}:{info['master_port']}",
                            "seconds": round(time.monotonic() - t0, 2)}, True)
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.2)
    return out({"addr": addr, "error": "not a replica with its link up", "info": info}, False)


def wait_up(addr: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        if state(addr) is not None:
            return out({"addr": addr, "seconds": round(time.monotonic() - t0, 2)}, True)
        time.sleep(0.2)
    return out({"addr": addr, "error": "does not answer CLUSTER INFO"}, False)


def listener_pid(addr: str) -> int | None:
    """The pid (in this machine's pid namespace) of what listens on addr, from ss in the hosts'
    network namespace, where this client runs."""
    host, port = split(addr)
    p = subprocess.run(["ss", "-Hltnp", f"src {host}:{port}"], capture_output=True, text=True)
    m = re.search(r"pid=(\d+)", p.stdout)
    return int(m.group(1)) if m else None


def kill_when_open(addr: str, timeout: float, ready: str, stop: str) -> int:
    """kill -9 the node at addr the moment its CLUSTER NODES shows a slot of its own open
    (MIGRATING, `[slot->-id]`): a node dying mid-reshard. One connection, polled without pause:
    a slot is open for milliseconds. It watches until the run it interrupts is over (STOP
    exists), not for a fixed time: the shrink drains the growth host's nodes first, which under
    load took longer than the 240 s the killer used to give up after (three runs missed so)."""
    pid = listener_pid(addr)
    if pid is None:
        return out({"addr": addr, "error": "no listener found"}, False)
    c = single(addr)
    c.set_response_callback("CLUSTER NODES", lambda r, **kw: r)
    Path(ready).write_text("1")
    deadline = time.monotonic() + timeout
    polls = 0
    errors = 0
    last_error = None
    mine = None
    stop_file = Path(stop)
    while time.monotonic() < deadline and not (polls % 100 == 0 and stop_file.exists()):
        polls += 1
        try:
            text = c.execute_command("CLUSTER NODES")
        except redis.exceptions.RedisError as e:
            errors += 1
            last_error = str(e)
            continue
        mine = next((line for line in text.splitlines() if "myself" in line), "")
        if "->-" in mine:
            os.kill(pid, signal.SIGKILL)
            at = time.time()
            open_slots = re.findall(r"\[(\d+)->-", mine)
            return out({"addr": addr, "killed": pid, "at": at, "polls": polls,
                        "open_slots": open_slots[:5]}, True)
    # What it saw, so that a miss can be told from a node it could not ask.
    return out({"addr": addr, "error": "never saw an open slot", "polls": polls, "errors": errors,
                "last_error": last_error, "last_myself": mine}, False)


def writer(node: str, dirname: str) -> int:
    """Write and read keys through one RedisCluster until DIR/stop exists.

    Each write sets w:<k> to the next sequence number; an OK makes it the value that must be read
    back. An error of RETRYABLE is retried with the same value (a write whose reply was lost may
    have landed: the same value keeps the expectation exact); any other error is fatal and listed.
    """
    d = Path(dirname)
    keys = 2000
    last: dict[int, int] = {}
    retried: dict[str, int] = {}
    fatal: list[str] = []
    mismatches: list[str] = []
    writes = reads = 0
    rng = random.Random(13)
    rc = cluster(node)
    seq = 0
    t0 = time.monotonic()
    (d / "started").write_text("1")

    def attempt(fn):
        for _ in range(600):
            try:
                return fn()
            except RETRYABLE as e:
                retried[type(e).__name__] = retried.get(type(e).__name__, 0) + 1
                time.sleep(0.05)
            except redis.exceptions.RedisError as e:
                fatal.append(f"{type(e).__name__}: {e}")
                return None
            except Exception as e:  # noqa: BLE001 - a client-side fault while slots move
                # Not a reply from Redis: redis-py's own state while it follows a topology
                # change (seen: a crash of the writer mid-shrink). Retried like a lost
                # connection; whether a write landed is judged at the end, by reading.
                name = "client:" + type(e).__name__
                retried[name] = retried.get(name, 0) + 1
                time.sleep(0.05)
        fatal.append("gave up after 600 retries")
        return None

    while not (d / "stop").exists() and len(fatal) < 20:
        seq += 1
        k = rng.randrange(keys)
        if attempt(lambda: rc.set(f"w:{k}", str(seq))) is True:
            last[k] = seq
            writes += 1
        r = rng.randrange(keys)
        if r in last:
            got = attempt(lambda: rc.get(f"w:{r}"))
            reads += 1
            if got is not None and got != str(last[r]) and len(mismatches) < 20:
                mismatches.append(f"w:{r}: read {got}, last OK {last[r]}")
    rc.close()
    # The end: every acknowledged value, read by a fresh client, through the node named in the
    # stop file (the one it started from may have been removed from the cluster meanwhile).
    rc = cluster((d / "stop").read_text().strip() or node)
    lost = []
    for k, v in last.items():
        got = attempt(lambda: rc.get(f"w:{k}"))
        if got != str(v):
            lost.append(f"w:{k}: {got!r} != {v}")
    rc.close()
    res = {"writes_ok": writes, "reads": reads, "keys": len(last), "retried": retried,
           "fatal": fatal, "mismatches": mismatches, "lost": lost[:20], "lost_count": len(lost),
           "seconds": round(time.monotonic() - t0, 1)}
    (d / "result.json").write_text(json.dumps(res, sort_keys=True))
    return out(res, not fatal and not mismatches and not lost and writes > 0)


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "fill":
        return fill(args[0], int(args[1]), args[2])
    if cmd == "check":
        return check(args[0], int(args[1]), args[2])
    if cmd == "topology":
        return topology(args[0])
    if cmd == "wait-failover":
        return wait_failover(args[0], args[1], float(args[2]), float(args[3]))
    if cmd == "wait-replica":
        return wait_replica(args[0], args[1], float(args[2]))
    if cmd == "wait-up":
        return wait_up(args[0], float(args[1]))
    if cmd == "kill-when-open":
        return kill_when_open(args[0], float(args[1]), args[2], args[3])
    if cmd == "writer":
        return writer(args[0], args[1])
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
