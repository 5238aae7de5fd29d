#!/usr/bin/env python3
"""kill -9 of the Sentinel group's master, measured from the controller.

Runs inside the hosts' shared network namespace (verify.yml starts it with
`nsenter --net=/proc/<network_pid>/ns/net`), talks to the hosts' own 127.0.0.x addresses with
redis-py, and runs commands inside a host with `testhosts.py ssh`. Prints one JSON object; exits 1
when a check fails (the message says which).

  1. writes keys, each acknowledged by `WAIT 1` (at least one replica has it);
  2. stops systemd from restarting the master (a runtime drop-in Restart=no inside its host), then
     SIGKILLs it: `systemctl kill --signal=SIGKILL`;
  3. polls the surviving Sentinels until they name another master that says role:master, and
     checks that this took at most down-after-milliseconds plus --margin-ms;
  4. checks every acknowledged key on the new master;
  5. starts the old master again (drop-in removed) and waits until it replicates the new master.
"""
import argparse
import json
import shlex
import subprocess
import sys
import time

import redis

ap = argparse.ArgumentParser()
ap.add_argument("--helper", required=True)
ap.add_argument("--password", required=True)
ap.add_argument("--name", default="mymaster")
ap.add_argument("--host", action="append", required=True, help="NAME=ADDR:PORT:SENTINELPORT")
ap.add_argument("--down-after-ms", type=int, required=True)
ap.add_argument("--margin-ms", type=int, default=10000)
ap.add_argument("--writes", type=int, default=300)
ap.add_argument("--unit", default="redis-server@main.service", help="the master's systemd unit")
a = ap.parse_args()

hosts = {}
for spec in a.host:
    name, rest = spec.split("=", 1)
    addr, port, sport = rest.split(":")
    hosts[name] = {"addr": addr, "port": int(port), "sport": int(sport)}


def fail(msg, **extra):
    print(json.dumps({"ok": False, "msg": msg, **extra}))
    sys.exit(1)


def sentinel(h):
    return redis.Redis(h["addr"], h["sport"], password=a.password, socket_timeout=1, decode_responses=True)


def server(addr, port):
    return redis.Redis(addr, int(port), password=a.password, socket_timeout=1, decode_responses=True)


def in_host(name, *cmd):
    # ssh joins its arguments into one shell command line: quote each.
    line = " ".join(shlex.quote(c) for c in ("sudo", *cmd))
    r = subprocess.run([sys.executable, a.helper, "ssh", name, line], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"{name}: {' '.join(cmd)}: rc {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def master_by(h):
    try:
        got = sentinel(h).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", a.name)
        return (got[0], int(got[1])) if got else None
    except redis.RedisError:
        return None


old = master_by(next(iter(hosts.values())))
if old is None:
    fail("no Sentinel names a master")
old_name = next((n for n, h in hosts.items() if (h["addr"], h["port"]) == old), None)
if old_name is None:
    fail(f"the master {old} is none of the hosts")
m = server(*old)
acked = {}
for i in range(a.writes):
    key, value = f"failover:{i}", f"v{i}-{time.time_ns()}"
    m.set(key, value)
    if int(m.execute_command("WAIT", 1, 1000)) >= 1:
        acked[key] = value
if len(acked) < a.writes:
    fail(f"only {len(acked)} of {a.writes} writes acknowledged by a replica before the kill")

unit = a.unit
dropin = f"/run/systemd/system/{unit}.d"
in_host(old_name, "sh", "-c", f"mkdir -p {dropin} && printf '[Service]\\nRestart=no\\n' > {dropin}/cf-norestart.conf && systemctl daemon-reload")
t0 = time.monotonic()
in_host(old_name, "systemctl", "kill", "--signal=SIGKILL", "--kill-whom=main", unit)
others = [h for n, h in hosts.items() if n != old_name]
new = None
deadline = t0 + (a.down_after_ms + a.margin_ms) / 1000 + 30
while time.monotonic() < deadline:
    seen = {master_by(h) for h in others}
    cand = next(iter(seen)) if len(seen) == 1 else None
    if cand and cand != old:
        try:
            if server(*cand).info("replication")["role"] == "master":
                new = cand
                break
        except redis.RedisError:
            pass
    time.sleep(0.05)
promoted_ms = int((time.monotonic() - t0) * 1000)
if new is None:
    fail(f"no replica promoted {promoted_ms} ms after the kill")
# The new master accepts writes.
server(*new).set("failover:after", "1")
writable_ms = int((time.monotonic() - t0) * 1000)
if promoted_ms > a.down_after_ms + a.margin_ms:
    fail(f"promotion took {promoted_ms} ms, more than down-after {a.down_after_ms} + margin {a.margin_ms}")
nm = server(*new)
lost = [k for k, v in acked.items() if nm.get(k) != v]
if lost:
    fail(f"{len(lost)} of {len(acked)} writes acknowledged with WAIT 1 are not on the new master", lost=lost[:10])

in_host(old_name, "sh", "-c", f"rm -rf {dropin} && systemctl daemon-reload && systemctl start {unit}")
rejoined = None
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        info = server(*old).info("replication")
        if (info.get("role") == "slave" and (info.get("master_host"), int(info.get("master_port", 0))) == new
                and info.get("master_link_status") == "up"):
            rejoined = info
            break
    except redis.RedisError:
        pass
    time.sleep(0.2)
if rejoined is None:
    fail(f"the old master {old} did not rejoin {new} as a replica within 90 s")
print(json.dumps({
    "ok": True, "old_master": list(old), "old_master_host": old_name, "new_master": list(new),
    "promoted_ms": promoted_ms, "writable_ms": writable_ms, "acked_writes": len(acked),
    "down_after_ms": a.down_after_ms, "margin_ms": a.margin_ms,
}))
