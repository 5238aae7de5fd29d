#!/usr/bin/env python3
"""Rebalance onto new empty masters: redis_cluster against `redis-cli --cluster rebalance
--cluster-use-empty-masters`, on the same data, in one run.

Each trial: 3 cluster-enabled masters formed by redis_cluster, BENCH_KEYS (100000) keys of
BENCH_VALUE_BYTES (1024) bytes written through redis-py's RedisCluster (pipelined), then two new
empty masters.
  - ours: `redis_cluster` with the 5 nodes (the 2 new ones join as masters and get their share of
    the slots with their keys) — the time includes joining them;
  - redis-cli: `redis-cli --cluster add-node` for each (not timed), then
    `redis-cli --cluster rebalance ... --cluster-use-empty-masters` (timed).
Keys moved = the keys on the new masters afterwards (DBSIZE). Prints time and keys/s per tool
(medians) and the ratio of keys/s; the target is at least 3x redis-cli's keys/s. Report only.

    .venv/bin/python bench/cluster_rebalance/bench.py [--trials N] [--keys N]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
try:
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from clusterlib import PASSWORD, Node, free_port  # noqa: E402
except ImportError as e:
    sys.exit(f"bench: {e}: run it with .venv/bin/python (make deps)")

REPO = pathlib.Path(__file__).resolve().parents[2]


def module(binary, base, args):
    path = pathlib.Path(base) / f"args-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(args))
    out = subprocess.run([binary, str(path)], capture_output=True, text=True, check=False).stdout
    res = json.loads(out)
    if res.get("failed"):
        raise RuntimeError(res.get("msg"))
    return res


def load(nodes, n, size):
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", nodes[0].port)], password=PASSWORD)
    value = b"x" * size
    batch = 1000
    for start in range(0, n, batch):
        p = rc.pipeline()
        for i in range(start, min(n, start + batch)):
            p.set(f"key:{i}", value)
        p.execute()
    rc.close()


def trial(tool, binary, base, keys, size):
    taken = set()
    nodes = [Node(free_port(taken), base) for _ in range(5)]
    try:
        time.sleep(2.5)  # Redis' own writable delay after start-up; see cluster_bootstrap
        three = [f"127.0.0.1:{n.port}" for n in nodes[:3]]
        five = [f"127.0.0.1:{n.port}" for n in nodes]
        module(binary, base, {"nodes": three, "replicas": 0, "login_password": PASSWORD, "wait_timeout": 120})
        load(nodes, keys, size)
        env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
        if tool == "redis_cluster":
            t0 = time.monotonic()
            res = module(binary, base, {"nodes": five, "replicas": 0, "login_password": PASSWORD, "wait_timeout": 600})
            took = time.monotonic() - t0
            print(f"bench: redis_cluster timings {res.get('timings')}", file=sys.stderr)
        else:
            for n in five[3:]:
                # add-node checks the cluster first and refuses while a node just added is
                # still in handshake: retried, untimed.
                for _ in range(40):
                    r = subprocess.run(["redis-cli", "--cluster", "add-node", n, three[0]], env=env,
                                       capture_output=True, text=True, check=False)
                    if r.returncode == 0:
                        break
                    time.sleep(0.5)
                else:
                    raise RuntimeError(f"redis-cli --cluster add-node failed:\n{r.stdout[-2000:]}")
            # Not timed: wait until redis-cli itself sees a consistent cluster (it refuses to
            # rebalance before).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                c = subprocess.run(["redis-cli", "--cluster", "check", three[0]], env=env,
                                   capture_output=True, text=True, check=False)
                if c.returncode == 0 and "[OK] All nodes agree" in c.stdout and all(
                        b"cluster_state:ok" in n.cmd("CLUSTER", "INFO") for n in nodes):
                    break
                time.sleep(0.2)
            for _ in range(20):
                t0 = time.monotonic()
                r = subprocess.run(["redis-cli", "--cluster", "rebalance", three[0], "--cluster-use-empty-masters"],
                                   env=env, capture_output=True, text=True, check=False)
                took = time.monotonic() - t0
                # It checks the cluster first and refuses while the new nodes' config settles;
                # such a refusal moves nothing and is retried (untimed).
                if r.returncode == 0 or "don't agree" not in r.stdout:
                    break
                time.sleep(0.5)
            if r.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster rebalance failed:\n{r.stdout[-2000:]}")
        moved = sum(n.client.dbsize() for n in nodes[3:])
        return took, moved
    finally:
        for n in nodes:
            n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=int(os.environ.get("BENCH_N_REBALANCE", "3")))
    ap.add_argument("--keys", type=int, default=int(os.environ.get("BENCH_KEYS", "100000")))
    ap.add_argument("--value-bytes", type=int, default=int(os.environ.get("BENCH_VALUE_BYTES", "1024")))
    ap.add_argument("--module", default=str(REPO / "target/x86_64-unknown-linux-gnu/release/redis_cluster"))
    a = ap.parse_args()
    res = {"redis_cluster": [], "redis-cli": []}
    with tempfile.TemporaryDirectory(prefix="rebalance-bench-", dir=REPO / "build") as base:
        for i in range(a.trials):
            for tool in ("redis_cluster", "redis-cli"):
                took, moved = trial(tool, a.module, base, a.keys, a.value_bytes)
                res[tool].append((took, moved))
                print(f"bench: trial {i + 1} {tool:13} {took:6.2f}s  {moved} keys moved  "
                      f"{moved / took:9.0f} keys/s", file=sys.stderr)
    print(f"\nrebalance {a.keys} keys of {a.value_bytes} B from 3 masters onto 2 new empty masters, medians of {a.trials}:")
    med = {}
    for tool, rs in res.items():
        t = statistics.median(r[0] for r in rs)
        k = statistics.median(r[1] for r in rs)
        kps = statistics.median(r[1] / r[0] for r in rs)
        med[tool] = kps
        print(f"{tool:16}{t:8.2f}s{k:10.0f} keys{kps:12.0f} keys/s")
    ratio = med["redis_cluster"] / med["redis-cli"] if med["redis-cli"] else float("nan")
    print(f"ratio of keys/s ours/redis-cli: {ratio:.2f}x; target at least 3x: {'PASS' if ratio >= 3 else 'MISS'}")


if __name__ == "__main__":
    main()
