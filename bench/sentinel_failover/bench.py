#!/usr/bin/env python3
"""Sentinel failover: kill -9 of the master to the new master accepting writes.

Starts on 127.0.0.1 (free ports, never 6379/26379) a master and two replicas with a password,
and three Sentinels configured with the redis_sentinel role's defaults (down-after-milliseconds
5000, failover-timeout 20000, quorum 2), via the `redis_sentinel` module itself. A client writes
every 10 ms through redis-py's Sentinel master discovery; the master is killed with SIGKILL; the
bench prints the time from the kill to the first acknowledged write on the new master and how
many writes failed meanwhile. Report only.

    .venv/bin/python bench/sentinel_failover/bench.py [--module PATH]
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
try:
    import redis
    from redis.sentinel import Sentinel
    from clusterlib import free_port  # noqa: E402
except ImportError as e:
    sys.exit(f"bench: {e}: run it with .venv/bin/python (make deps)")

REPO = pathlib.Path(__file__).resolve().parents[2]
PW = "bench-sentinel-pw"
DOWN_AFTER_MS = 5000  # roles/redis_sentinel/defaults/main.yml
FAILOVER_TIMEOUT_MS = 20000


def start(binary, conf_text, base, name):
    d = pathlib.Path(base) / name
    d.mkdir()
    conf = d / "conf"
    conf.write_text(conf_text.format(dir=d))
    return subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ping(port, password=None):
    c = redis.Redis(port=port, password=password, socket_timeout=1)
    for _ in range(200):
        try:
            if c.ping():
                return
        except redis.exceptions.RedisError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not answer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", default=str(REPO / "target/x86_64-unknown-linux-gnu/release/redis_sentinel"))
    a = ap.parse_args()
    taken = set()
    procs = []
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-", dir=REPO / "build") as base:
        try:
            ports = [free_port(taken) for _ in range(3)]
            common = "bind 127.0.0.1\ndir {dir}\nsave \"\"\nrequirepass " + PW + "\nmasterauth " + PW + "\n"
            for i, p in enumerate(ports):
                extra = "" if i == 0 else f"replicaof 127.0.0.1 {ports[0]}\n"
                procs.append(start("redis-server", f"port {p}\n" + common + extra, base, f"r{p}"))
                wait_ping(p, PW)
            sports = [free_port(taken) for _ in range(3)]
            for sp in sports:
                procs.append(start("redis-sentinel", f"port {sp}\nbind 127.0.0.1\ndir {{dir}}\n", base, f"s{sp}"))
                wait_ping(sp)
                args = pathlib.Path(base) / f"args{sp}.json"
                args.write_text(json.dumps({"login_host": "127.0.0.1", "login_port": sp, "monitors": [{
                    "name": "bench", "host": "127.0.0.1", "port": ports[0], "quorum": 2,
                    "down_after_milliseconds": DOWN_AFTER_MS, "failover_timeout": FAILOVER_TIMEOUT_MS,
                    "auth_pass": PW}]}))
                out = json.loads(subprocess.run([a.module, str(args)], capture_output=True, text=True).stdout)
                if out.get("failed"):
                    sys.exit(f"bench: redis_sentinel failed: {out.get('msg')}")
            # The Sentinels find each other through the master's hello channel.
            s = Sentinel([("127.0.0.1", p) for p in sports], socket_timeout=0.5, password=None,
                         sentinel_kwargs={})
            deadline = time.time() + 30
            while time.time() < deadline:
                if all(len(redis.Redis(port=p).sentinel_sentinels("bench")) == 2 for p in sports):
                    break
                time.sleep(0.2)
            master = s.master_for("bench", password=PW, socket_timeout=0.5)
            for i in range(50):
                master.set(f"k{i}", i)
            killed = time.monotonic()
            os.kill(procs[0].pid, signal.SIGKILL)
            failed = 0
            while True:
                try:
                    master.set("after", time.time())
                    break
                except redis.exceptions.RedisError:
                    failed += 1
                    time.sleep(0.01)
                if time.monotonic() - killed > 120:
                    sys.exit("bench: no new master within 120 s")
            took = time.monotonic() - killed
            new = s.discover_master("bench")
            print(f"\nsentinel failover (down-after {DOWN_AFTER_MS} ms, 3 Sentinels, quorum 2): "
                  f"kill -9 of the master to the new master {new[0]}:{new[1]} accepting writes: "
                  f"{took:.2f} s; {failed} writes failed meanwhile (one every 10 ms)")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()


if __name__ == "__main__":
    main()
