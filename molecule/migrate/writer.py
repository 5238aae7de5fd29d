#!/usr/bin/env python3
"""A client that writes through the whole migration and records what a primary acknowledged.

Runs on the controller inside the hosts' shared network namespace (prepare.yml starts it with
`nsenter --net=/proc/<network_pid>/ns/net`, detached). It first loads --preload keys into the
Redis primary, then sets one new key every --interval seconds on whichever of the two servers is
the primary: on a refused write (READONLY once the old primary has handed over, or a connection
error) it asks both servers' INFO replication and moves to the one that says role:master.
A write counts as acknowledged only when a primary answered OK; a write paused by FAILOVER and
then refused is not counted.

It stops when the --stop file appears, and writes its record (every acknowledged key and value,
and counts per server) to --out as JSON.
"""
import argparse
import json
import os
import time

import redis

ap = argparse.ArgumentParser()
ap.add_argument("--old", required=True, help="ADDR:PORT of the Redis primary")
ap.add_argument("--new", required=True, help="ADDR:PORT of the Valkey server to be")
ap.add_argument("--password", required=True)
ap.add_argument("--preload", type=int, default=10000)
ap.add_argument("--interval", type=float, default=0.01)
ap.add_argument("--stop", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()


def client(spec):
    addr, port = spec.rsplit(":", 1)
    # Longer than FAILOVER's write pause (the playbook's 10 s timeout), so a paused write waits.
    return redis.Redis(addr, int(port), password=a.password, socket_timeout=20,
                       socket_connect_timeout=2, decode_responses=True)


servers = {"old": client(a.old), "new": client(a.new)}
acked = {}
per_server = {"old": 0, "new": 0}
refused = 0
switches = []

pipe = servers["old"].pipeline(transaction=False)
for i in range(a.preload):
    pipe.set(f"preload:{i}", f"p{i}")
for i, ok in enumerate(pipe.execute()):
    if ok is True:
        acked[f"preload:{i}"] = f"p{i}"
per_server["old"] += len(acked)

current = "old"
i = 0
t0 = time.monotonic()
while not os.path.exists(a.stop):
    key, value = f"w:{i}", f"v{i}-{time.time_ns()}"
    i += 1
    try:
        if servers[current].set(key, value) is True:
            acked[key] = value
            per_server[current] += 1
    except redis.RedisError:
        refused += 1
        for name, c in servers.items():
            try:
                if c.info("replication").get("role") == "master" and name != current:
                    switches.append({"to": name, "after_s": round(time.monotonic() - t0, 3), "at_write": i})
                    current = name
                    break
            except redis.RedisError:
                pass
    time.sleep(a.interval)

with open(a.out + ".tmp", "w") as f:
    json.dump({"acked": acked, "per_server": per_server, "refused": refused, "switches": switches,
               "attempts": i, "seconds": round(time.monotonic() - t0, 1)}, f)
os.rename(a.out + ".tmp", a.out)
