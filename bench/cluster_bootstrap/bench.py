#!/usr/bin/env python3
"""Cluster bootstrap: redis_cluster against `redis-cli --cluster create`, in one run.

Each trial starts 6 fresh cluster-enabled redis-server processes on 127.0.0.1 (free ports, never
6379), with a password and the default cluster-node-timeout (15000) and repl-diskless-sync-delay
(5 s), lets them age 2.5 s (Redis' own 2 s writable delay after start-up would otherwise count
for both tools), forms a 3 masters + 3 replicas cluster with one tool, and measures from the start of the
command to:
  - returned: the command exited;
  - all ok: every node says cluster_state:ok (polled every 10 ms by this script);
  - ready: all ok, and every replica says master_link_status:up.
The trials of the two tools alternate. Prints medians and the ratio ours/redis-cli. Report only:
exits 0 whatever the timings.

    python3 bench/cluster_bootstrap/bench.py [--trials N] [--module PATH]
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
try:
    from clusterlib import PASSWORD, Node, free_port  # noqa: E402
except ImportError as e:
    sys.exit(f"bench: {e}: run it with .venv/bin/python (make deps)")

REPO = pathlib.Path(__file__).resolve().parents[2]
SETTLE_SECONDS = 2.5


def all_ok(nodes):
    return all(b"cluster_state:ok" in n.cmd("CLUSTER", "INFO") for n in nodes)


def replicas_up(nodes):
    for n in nodes:
        info = n.client.info("replication")
        if info.get("role") == "slave" and info.get("master_link_status") != "up":
            return False
    return True


def trial(tool, module, base, timeout=60):
    taken = set()
    nodes = [Node(free_port(taken), base) for _ in range(6)]
    addrs = [f"127.0.0.1:{n.port}" for n in nodes]
    # Redis keeps a master at cluster_state:fail for 2 s after it starts (CLUSTER_WRITABLE_DELAY),
    # whatever the tool: nodes a role deployed are older than that, so let them age first.
    time.sleep(SETTLE_SECONDS)
    try:
        if tool == "redis_cluster":
            args = pathlib.Path(base) / f"args-{nodes[0].port}.json"
            args.write_text(json.dumps({"nodes": addrs, "replicas": 1, "login_password": PASSWORD,
                                        "wait_timeout": timeout}))
            cmd = [module, str(args)]
            env = dict(os.environ)
        else:
            cmd = ["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "1", "--cluster-yes"]
            env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        returned = ok = ready = None
        while time.monotonic() - t0 < timeout:
            now = time.monotonic() - t0
            if returned is None and proc.poll() is not None:
                returned = now
            if ok is None and all_ok(nodes):
                ok = time.monotonic() - t0
            if ok is not None and ready is None and replicas_up(nodes):
                ready = time.monotonic() - t0
            if returned is not None and ready is not None:
                break
            time.sleep(0.01)
        out = proc.communicate()[0].decode(errors="replace")
        if tool == "redis_cluster" and '"failed": true' in out.replace('"failed":true', '"failed": true'):
            raise RuntimeError(out)
        return returned, ok, ready
    finally:
        for n in nodes:
            n.stop()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=int(os.environ.get("BENCH_N_CLUSTER", "3")))
    ap.add_argument("--module", default=str(REPO / "target/x86_64-unknown-linux-gnu/release/redis_cluster"))
    a = ap.parse_args()
    if not os.access(a.module, os.X_OK):
        sys.exit(f"bench: {a.module} is not built: run `make build`")
    if not shutil.which("redis-cli"):
        sys.exit("bench: redis-cli is missing: run `make deps`")
    results = {"redis_cluster": [], "redis-cli": []}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-", dir=REPO / "build") as base:
        for i in range(a.trials):
            for tool in ("redis_cluster", "redis-cli"):
                r = trial(tool, a.module, base)
                results[tool].append(r)
                print(f"bench: trial {i + 1} {tool:13} returned {r[0]:.2f}s  all ok {r[1] or float('nan'):.2f}s"
                      f"  ready {r[2] or float('nan'):.2f}s", file=sys.stderr)
    print(f"\ncluster bootstrap, 6 fresh nodes (3 masters + 3 replicas), medians of {a.trials}:")
    print(f"{'':16}{'returned':>10}{'all ok':>10}{'ready':>10}")
    med = {}
    for tool, rs in results.items():
        med[tool] = [median([r[k] for r in rs]) for k in range(3)]
        print(f"{tool:16}" + "".join(f"{m:>9.2f}s" for m in med[tool]))
    ratio = [o / c if c else float("nan") for o, c in zip(med["redis_cluster"], med["redis-cli"])]
    print(f"{'ratio ours/cli':16}" + "".join(f"{r:>9.2f}x" for r in ratio))
    print(f"target: ready in at most 0.25x redis-cli's time: {'PASS' if ratio[2] <= 0.25 else 'MISS'} "
          f"({ratio[2]:.2f}x)")


if __name__ == "__main__":
    main()
