"""Throughput and memory of lua/rate_limiter.lua's limiters against plain INCR (see run.sh).

One redis-server of its own on a free port (never 6379), in a temp dir, stopped by pid at the end.
Every limiter runs through redis-benchmark with the same key shapes (`key:__rand_int__`, -r keys)
as the INCR baseline: FCALL for each limiter, EVALSHA for one (the same code as a cached script),
and the naive sliding-window log (naive_sliding_log.lua, here only as the reference). Each figure
is the median of BENCH_REPS runs, interleaved so that a slow moment hits every row alike.

Memory: MEMORY USAGE (SAMPLES 0: every element) of one key holding exactly `limit` (100) requests.

Report only: prints the table and the issue's targets met or missed; exits 0 whatever the
figures, non-zero only when something could not run.
"""
from __future__ import annotations

import csv
import io
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Requests per run at -P 16; unpipelined runs are ~10x slower and get a quarter of it.
N = int(os.environ.get("BENCH_N", "100000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
KEYS = int(os.environ.get("BENCH_KEYS", "1000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
PIPELINES = [int(p) for p in os.environ.get("BENCH_PIPELINES", "16,1").split(",")]
LIMIT, WINDOW = 100, 1000
FLOOR = "FCALL of 'return 1' (Lua floor)"
ONE_CALL = "FCALL of INCR alone (1-call floor)"
TWO_CALLS = "FCALL of INCRBY + PTTL (2-call floor)"


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in (6379, 26379):
            return port


def start_server(d: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", f"{d}/redis.log"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"bench: redis-server did not start on {port}")


def rps(port: int, pipeline: int, args: list[str]) -> float:
    n = N if pipeline > 1 else max(1000, N // 4)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(n), "-c", str(CLIENTS), "-P", str(pipeline),
         "-r", str(KEYS), "--csv", *args],
        capture_output=True, text=True, timeout=120, check=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return float(rows[1][1])


def main() -> int:
    if not shutil.which("redis-benchmark"):
        print("bench: redis-benchmark not found (apt install redis-tools)", file=sys.stderr)
        return 1
    d = tempfile.mkdtemp(prefix="cf-lua-bench-")
    proc, port = start_server(d)
    try:
        r = redis.Redis(port=port, decode_responses=True)
        code = (REPO / "lua" / "rate_limiter.lua").read_text()
        r.function_load(code, replace=True)
        script = "\n" + code.split("\n", 1)[1]   # as redis_lua_script mode=script loads it
        sha = r.script_load(script)
        naive_sha = r.script_load((HERE / "naive_sliding_log.lua").read_text())
        trivial = r.script_load("return 1")
        # What calling any Lua costs, before it does anything: a function that returns 1.
        r.function_load("#!lua name=bench_floor\nredis.register_function('bench_floor', function() return 1 end)",
                        replace=True)
        # What the least a counter limiter must do costs: one command on its key (INCR), and the
        # two the fixed window does per request (INCRBY, then PTTL for reset_ms), nothing else.
        r.function_load("#!lua name=bench_calls\n"
                        "redis.register_function('bench_one_call', function(k) return redis.call('INCR', k[1]) end)\n"
                        "redis.register_function('bench_two_calls', function(k)\n"
                        "  local n = redis.call('INCRBY', k[1], 1)\n"
                        "  return {n, redis.call('PTTL', k[1])}\n"
                        "end)", replace=True)
        lim = [str(LIMIT), str(WINDOW)]
        rows = [
            ("INCR (baseline)", ["INCR", "key:__rand_int__"], None),
            (FLOOR, ["FCALL", "bench_floor", "1", "key:__rand_int__"], None),
            ("EVALSHA 'return 1' (script floor)", ["EVALSHA", trivial, "1", "key:__rand_int__"], None),
            (ONE_CALL, ["FCALL", "bench_one_call", "1", "key:__rand_int__"], None),
            (TWO_CALLS, ["FCALL", "bench_two_calls", "1", "key:__rand_int__"], None),
            ("FCALL ratelimit_fixed_window", ["FCALL", "ratelimit_fixed_window", "1", "key:__rand_int__", *lim], "o1"),
            ("FCALL ratelimit_sliding_window", ["FCALL", "ratelimit_sliding_window", "1", "key:__rand_int__", *lim], "o1"),
            ("FCALL ratelimit_gcra", ["FCALL", "ratelimit_gcra", "1", "key:__rand_int__", *lim], "o1"),
            ("EVALSHA ratelimit_gcra", ["EVALSHA", sha, "1", "key:__rand_int__", "ratelimit_gcra", *lim], "o1"),
            ("FCALL ratelimit_sliding_log", ["FCALL", "ratelimit_sliding_log", "1", "key:__rand_int__", *lim], "log"),
            ("EVALSHA naive sliding log (reference)", ["EVALSHA", naive_sha, "1", "key:__rand_int__", *lim], "naive"),
        ]
        results: dict[tuple[str, int], list[float]] = {}
        for _ in range(REPS):
            for p in PIPELINES:
                for name, args, _kind in rows:
                    r.flushall()
                    results.setdefault((name, p), []).append(rps(port, p, args))
        med = {k: statistics.median(v) for k, v in results.items()}

        # Memory of one key holding exactly LIMIT admitted requests (a long window keeps them).
        r.flushall()
        mem = {}
        for _ in range(LIMIT):
            r.incr("mem:incr")
        mem["INCR (baseline)"] = r.memory_usage("mem:incr", samples=0)
        for fn in ("ratelimit_fixed_window", "ratelimit_sliding_window", "ratelimit_gcra", "ratelimit_sliding_log"):
            key = f"mem:{fn}"
            got = sum(r.fcall(fn, 1, key, LIMIT, 3600000)[0] for _ in range(LIMIT + 5))
            assert got == LIMIT, (fn, got)
            mem[f"FCALL {fn}"] = r.memory_usage(key, samples=0)
        mem["EVALSHA ratelimit_gcra"] = mem["FCALL ratelimit_gcra"]
        # The naive log stores one member per distinct millisecond: space the calls so it holds
        # LIMIT of them, as it would under light traffic.
        for _ in range(LIMIT):
            r.evalsha(naive_sha, 1, "mem:naive", LIMIT, 3600000)
            time.sleep(0.0012)
        mem["EVALSHA naive sliding log (reference)"] = r.memory_usage("mem:naive", samples=0)
        # The naive log's under-count: 1,000 pipelined calls with limit 100.
        pipe = r.pipeline(transaction=False)
        for _ in range(1000):
            pipe.evalsha(naive_sha, 1, "burst:naive", LIMIT, 60000)
        naive_burst = sum(int(x[0]) for x in pipe.execute())
        pipe = r.pipeline(transaction=False)
        for _ in range(1000):
            pipe.fcall("ratelimit_sliding_log", 1, "burst:log", LIMIT, 60000)
        log_burst = sum(int(x[0]) for x in pipe.execute())
        version = r.info("server")["redis_version"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)

    print(f"\nlua_rate_limiter: Redis {version}, redis-benchmark -n {N} (-P 1: {max(1000, N // 4)}) -c {CLIENTS} -r {KEYS}, "
          f"limit {LIMIT} per {WINDOW} ms, median of {REPS}")
    head = f"{'':40}" + "".join(f"{'-P ' + str(p) + ' rps':>13}{'vs INCR':>9}{'vs naive':>9}" for p in PIPELINES)
    print(head + f"{'bytes/key':>11}")
    for name, _args, _kind in rows:
        line = f"{name:40}"
        for p in PIPELINES:
            v = med[(name, p)]
            line += f"{v:13,.0f}{v / med[('INCR (baseline)', p)]:9.0%}"
            line += f"{v / med[('EVALSHA naive sliding log (reference)', p)]:9.0%}"
        m = mem.get(name)
        print(line + (f"{m:11,}" if m is not None else f"{'':11}"))
    print(f"\n1,000 pipelined calls, limit {LIMIT}: naive log admitted {naive_burst}, "
          f"ratelimit_sliding_log admitted {log_burst}")
    print("\nTargets (issue 14), reported, never gating. A Lua call that does nothing reaches "
          + ", ".join(f"-P {p}: {med[(FLOOR, p)] / med[('INCR (baseline)', p)]:.0%}" for p in PIPELINES) + " of INCR here: no limiter can beat that floor.")
    print("One INCR from Lua reaches "
          + ", ".join(f"-P {p}: {med[(ONE_CALL, p)] / med[('INCR (baseline)', p)]:.0%}" for p in PIPELINES)
          + "; INCRBY + PTTL (the fixed window's commands, without its logic) "
          + ", ".join(f"-P {p}: {med[(TWO_CALLS, p)] / med[('INCR (baseline)', p)]:.0%}" for p in PIPELINES) + ".")
    for p in PIPELINES:
        base = med[("INCR (baseline)", p)]
        for name, _args, kind in rows:
            if kind == "o1":
                ratio = med[(name, p)] / base
                print(f"  -P {p:<2} {name:32} >= 85% of INCR: {'met' if ratio >= 0.85 else 'MISSED'} ({ratio:.0%})")
        log, naive = med[("FCALL ratelimit_sliding_log", p)], med[("EVALSHA naive sliding log (reference)", p)]
        print(f"  -P {p:<2} {'sliding log no slower than naive':32}: {'met' if log >= naive else 'MISSED'} "
              f"({log / naive:.0%} of naive)")
    for name, _args, kind in rows:
        if kind == "o1" and name.startswith("FCALL"):
            print(f"  {name:38} <= 150 bytes/key: {'met' if mem[name] <= 150 else 'MISSED'} ({mem[name]} B)")
    print(f"  {'sliding log counts every request':38}: {'met' if log_burst == LIMIT else 'MISSED'} "
          f"({log_burst} of 1,000 admitted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
