"""lua/rate_limiter.lua and lua/session_operations.lua against real redis-server processes.

Every behaviour is checked through both ways the files are used: as a Redis Function library
(FUNCTION LOAD + FCALL) and as a plain script (first line emptied, SCRIPT LOAD + EVALSHA with the
function's name first), because one source serves both. No mocks: redis-py talks to servers on
ports picked here.
"""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from redis_procs import RedisProc, _ping, free_port

REPO = pathlib.Path(__file__).resolve().parent.parent
RATE_LIMITER = (REPO / "lua" / "rate_limiter.lua").read_text()
SESSIONS = (REPO / "lua" / "session_operations.lua").read_text()
LIMITERS = ["ratelimit_fixed_window", "ratelimit_sliding_log", "ratelimit_sliding_window", "ratelimit_gcra"]
VIAS = ["function", "script"]


def as_script(code: str) -> str:
    """What redis_lua_script mode=script loads: the `#!lua` line emptied, line numbers kept."""
    first, rest = code.split("\n", 1)
    assert first.startswith("#!lua name=")
    return "\n" + rest


class Lib:
    """Calls a library's functions through FCALL or through EVALSHA."""

    def __init__(self, r: redis.Redis, code: str, via: str):
        self.r, self.via = r, via
        if via == "function":
            r.function_load(code, replace=True)
        else:
            self.sha = r.script_load(as_script(code))

    def __call__(self, fn, key, *args):
        if self.via == "function":
            return self.r.fcall(fn, 1, key, *args)
        return self.r.evalsha(self.sha, 1, key, fn, *args)


@pytest.fixture(scope="module")
def server():
    p = RedisProc()
    yield p
    p.stop()


@pytest.fixture
def r(server):
    c = redis.Redis(port=server.port, decode_responses=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture(params=VIAS)
def rl(r, request):
    return Lib(r, RATE_LIMITER, request.param)


@pytest.fixture(params=VIAS)
def sess(r, request):
    return Lib(r, SESSIONS, request.param)


def server_ms(r) -> float:
    s, us = r.time()
    return s * 1000 + us / 1000


def wait_for_window_start(r, window_ms, lo=50, hi=300):
    """Sleeps until the server clock is lo..hi ms into an aligned window (sliding_window
    aligns its windows to multiples of window_ms since the epoch)."""
    while True:
        into = server_ms(r) % window_ms
        if lo <= into <= hi:
            return
        time.sleep(((lo - into) % window_ms) / 1000 + 0.001)


def admitted(rl, fn, key, n, *args):
    return sum(rl(fn, key, *args)[0] for _ in range(n))


# ---------------------------------------------------------------------------------------------
# Burst on a fresh key, the return shape, denied requests not counted
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", LIMITERS)
def test_burst_on_a_fresh_key_admits_exactly_the_limit(rl, r, fn):
    key = f"rl:{{t}}:{fn}"
    replies = [rl(fn, key, 5, 60000) for _ in range(8)]
    assert [x[0] for x in replies] == [1] * 5 + [0] * 3, replies
    assert [x[1] for x in replies[:5]] == [4, 3, 2, 1, 0], replies
    for allowed, remaining, retry, reset in replies[:5]:
        assert retry == -1 and 0 < reset <= 120000
    # The sliding window counter may have to wait into the next window (up to two windows).
    longest = 120000 if fn == "ratelimit_sliding_window" else 60000
    for allowed, remaining, retry, reset in replies[5:]:
        assert remaining == 0 and 0 < retry <= longest and 0 < reset <= 120000
    # Only KEYS[1] exists: nothing derived from the key name (hash tags route it in a cluster).
    assert r.keys("*") == [key]
    assert 0 < r.pttl(key) <= 120000


@pytest.mark.parametrize("fn", LIMITERS)
def test_cost_counts_and_cost_zero_only_reads(rl, fn):
    key = f"rl:cost:{fn}"
    assert rl(fn, key, 10, 60000, 0)[:3] == [1, 10, -1]
    assert rl(fn, key, 10, 60000, 4)[:2] == [1, 6]
    assert rl(fn, key, 10, 60000, 7)[0] == 0, "7 more is over 10; a denied request is not counted"
    assert rl(fn, key, 10, 60000, 6)[:2] == [1, 0]
    assert rl(fn, key, 10, 60000, 0)[1] == 0, "a read of a full key says nothing remains"
    assert rl(fn, key, 10, 60000, 1)[0] == 0


@pytest.mark.parametrize("fn", LIMITERS)
@pytest.mark.parametrize("args, words", [
    ((0, 1000), "limit"), (("x", 1000), "limit"), ((5, 0), "window_ms"), ((5, 1.5), "window_ms"),
    ((5, 1000, -1), "cost"), ((5, 1000, 6), "above the limit"), ((10**7, 10**7), r"limit \* window_ms"),
])
def test_bad_arguments_are_refused_and_change_nothing(rl, r, fn, args, words):
    with pytest.raises(redis.ResponseError, match=words):
        rl(fn, "rl:bad", *args)
    assert not r.exists("rl:bad")


def test_script_mode_names_an_unknown_function(r):
    sha = r.script_load(as_script(RATE_LIMITER))
    with pytest.raises(redis.ResponseError, match="must name a function"):
        r.evalsha(sha, 1, "k", "ratelimit_nope", 1, 1000)


def test_one_key_exactly(r):
    Lib(r, RATE_LIMITER, "function")
    with pytest.raises(redis.ResponseError, match="exactly one key"):
        r.fcall("ratelimit_gcra", 2, "a", "b", 5, 1000)


# ---------------------------------------------------------------------------------------------
# Exact allowances at window edges, one limiter at a time
# ---------------------------------------------------------------------------------------------

def test_fixed_window_edge(rl):
    fn, key = "ratelimit_fixed_window", "rl:edge:fixed"
    assert admitted(rl, fn, key, 5, 3, 700) == 3
    allowed, remaining, retry, reset = rl(fn, key, 3, 700)
    assert allowed == 0 and 550 < retry <= 700 and reset == retry
    time.sleep((retry - 120) / 1000)
    assert rl(fn, key, 3, 700)[0] == 0, "still inside the window"
    time.sleep(0.160)
    # A new window: exactly the limit again.
    assert admitted(rl, fn, key, 5, 3, 700) == 3


def test_sliding_log_edge(rl):
    fn, key = "ratelimit_sliding_log", "rl:edge:log"
    assert admitted(rl, fn, key, 2, 3, 800) == 2          # t0: two requests
    time.sleep(0.400)
    assert rl(fn, key, 3, 800)[:2] == [1, 0]               # t0 + 400: the third
    allowed, remaining, retry, reset = rl(fn, key, 3, 800)
    # Allowed again when the t0 entries leave the window, about 400 ms on; reset when the last goes.
    assert allowed == 0 and 300 < retry <= 400 and 700 < reset <= 800, (retry, reset)
    time.sleep((retry - 80) / 1000)
    assert rl(fn, key, 3, 800)[0] == 0, "the t0 entries are still in the window"
    time.sleep(0.120)
    # Both t0 entries have left: exactly two more, the t0+400 one still counts.
    assert admitted(rl, fn, key, 4, 3, 800) == 2


def test_sliding_window_counter_edge(rl, r):
    fn, key = "ratelimit_sliding_window", "rl:edge:swc"
    wait_for_window_start(r, 1000)
    assert admitted(rl, fn, key, 6, 4, 1000) == 4
    allowed, remaining, retry, reset = rl(fn, key, 4, 1000)
    # In the next window the 4 count with weight (1000 - e)/1000: one more fits at e = 250 ms.
    start = server_ms(r)
    into = start % 1000
    expected = (1000 - into) + 250
    assert allowed == 0 and abs(retry - expected) <= 15, (retry, expected)
    time.sleep((retry - 60) / 1000)
    assert rl(fn, key, 4, 1000)[0] == 0
    time.sleep(0.080)
    assert admitted(rl, fn, key, 3, 4, 1000) == 1, "one fits at e=250, two only at e=500"


def test_gcra_edge(rl):
    fn, key = "ratelimit_gcra", "rl:edge:gcra"
    # limit 4 per 800 ms: one token every 200 ms, a full bucket holds 4.
    assert admitted(rl, fn, key, 6, 4, 800) == 4
    allowed, remaining, retry, reset = rl(fn, key, 4, 800)
    assert allowed == 0 and 150 < retry <= 200 and 700 < reset <= 800, (retry, reset)
    time.sleep((retry - 60) / 1000)
    assert rl(fn, key, 4, 800)[0] == 0
    time.sleep(0.080)
    assert admitted(rl, fn, key, 3, 4, 800) == 1, "one token has come back, not two"
    time.sleep(0.850)
    assert admitted(rl, fn, key, 6, 4, 800) == 4, "refilled to exactly the limit, not beyond"


# ---------------------------------------------------------------------------------------------
# 1,000 pipelined calls (the naive sliding log admits them all)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", LIMITERS)
def test_1000_pipelined_calls_with_limit_100_admit_exactly_100(rl, r, fn):
    key = f"rl:pipe:{fn}"
    if fn == "ratelimit_sliding_window":
        wait_for_window_start(r, 60000, 50, 50000)
    p = r.pipeline(transaction=False)
    for _ in range(1000):
        if rl.via == "function":
            p.fcall(fn, 1, key, 100, 60000)
        else:
            p.evalsha(rl.sha, 1, key, fn, 100, 60000)
    replies = p.execute()
    assert sum(x[0] for x in replies) == 100
    assert [x[0] for x in replies[:100]] == [1] * 100
    if fn == "ratelimit_sliding_log":
        assert r.zcard(key) == 100, "every admitted request has its own member"


def test_naive_sliding_log_reference_really_under_counts(r):
    """The benchmark's reference (timestamp as member) admits a pipelined burst: the bug the
    corrected log fixes, shown on the same server."""
    naive = (REPO / "bench" / "lua_rate_limiter" / "naive_sliding_log.lua").read_text()
    sha = r.script_load(naive)
    p = r.pipeline(transaction=False)
    for _ in range(1000):
        p.evalsha(sha, 1, "naive", 100, 60000)
    allowed = sum(int(x[0]) for x in p.execute())
    assert allowed > 100, allowed


# ---------------------------------------------------------------------------------------------
# Many concurrent clients
# ---------------------------------------------------------------------------------------------

def _hammer(port, fn, key, limit, window, via_sha, n, out, start):
    c = redis.Redis(port=port)
    start.wait()
    mine = []
    for _ in range(n):
        s = time.time()
        if via_sha:
            reply = c.evalsha(via_sha, 1, key, fn, limit, window)
        else:
            reply = c.fcall(fn, 1, key, limit, window)
        e = time.time()
        if reply[0] == 1:
            mine.append((s * 1000, e * 1000))
    out.extend(mine)
    c.close()


def _concurrent(server, r, rl, fn, key, limit, window, clients, per_client):
    out = []
    start = threading.Barrier(clients)
    sha = rl.sha if rl.via == "script" else None
    threads = [threading.Thread(target=_hammer, args=(server.port, fn, key, limit, window, sha, per_client, out, start))
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(out)


@pytest.mark.parametrize("fn", LIMITERS)
def test_concurrent_clients_get_exactly_the_limit(server, r, rl, fn):
    """12 clients, 150 requests each, at once, one long window: exactly `limit` pass."""
    if fn == "ratelimit_sliding_window":
        wait_for_window_start(r, 600000, 50, 590000)
    got = _concurrent(server, r, rl, fn, f"rl:conc:{fn}", 100, 600000, 12, 150)
    assert len(got) == 100


@pytest.mark.parametrize("fn, bound", [
    ("ratelimit_sliding_log", lambda limit: limit),          # exact: at most limit in any window
    ("ratelimit_fixed_window", lambda limit: 2 * limit),     # two windows can meet inside one
    ("ratelimit_gcra", lambda limit: 2 * limit),             # a full bucket, then its refill
])
def test_concurrent_clients_never_exceed_the_limit_in_any_window(server, r, rl, fn, bound):
    """10 clients for several windows. Each admission happened at a server time between its
    send and its reply (same machine, same clock); an admission j surely falls inside the window
    that starts at admission i when it was sent after i's reply and answered before i's send
    plus the window. Those must never be more than the limiter allows."""
    limit, window = 20, 400
    got = _concurrent(server, r, rl, fn, f"rl:any:{fn}", limit, window, 10, 250)
    assert len(got) >= limit
    worst = 0
    for i, (s_i, r_i) in enumerate(got):
        inside = 1 + sum(1 for s_j, r_j in got[i + 1:] if s_j >= r_i and r_j < s_i + window)
        worst = max(worst, inside)
    assert worst <= bound(limit), worst


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------

def test_session_create_only_when_absent(sess, r):
    assert sess("session_create", "s:1", 60, "user", "ann", "role", "admin") == 1
    assert sess("session_create", "s:1", 60, "user", "bob") == 0
    assert r.hgetall("s:1") == {"user": "ann", "role": "admin"}
    assert 59000 < r.pttl("s:1") <= 60000


def test_session_ttls(sess, r):
    assert sess("session_create", "s:ttl", 1, "user", "ann") == 1
    assert 800 < r.pttl("s:ttl") <= 1000, "the TTL is in milliseconds from ttl_s"
    time.sleep(0.5)
    # Reading extends it.
    flat = sess("session_get_and_extend", "s:ttl", 2)
    assert dict(zip(flat[::2], flat[1::2])) == {"user": "ann"}
    assert 1800 < r.pttl("s:ttl") <= 2000
    # Updating extends it and changes the fields.
    assert sess("session_update_and_extend", "s:ttl", 1, "user", "bob", "n", "1") == 1
    assert r.hgetall("s:ttl") == {"user": "bob", "n": "1"}
    assert 800 < r.pttl("s:ttl") <= 1000
    time.sleep(1.1)
    # Expired: reads are empty and an update does not bring it back.
    assert sess("session_get_and_extend", "s:ttl", 60) == []
    assert sess("session_update_and_extend", "s:ttl", 60, "user", "eve") == 0
    assert not r.exists("s:ttl")


def test_session_destroy(sess, r):
    sess("session_create", "s:d", 60, "a", "b")
    assert sess("session_destroy", "s:d") == 1
    assert sess("session_destroy", "s:d") == 0
    assert not r.exists("s:d")


@pytest.mark.parametrize("fn, args, words", [
    ("session_create", (0, "a", "b"), "ttl_s"),
    ("session_create", (1.5, "a", "b"), "ttl_s"),
    ("session_create", (10, "a"), "expected"),
    ("session_update_and_extend", (10,), "expected"),
    ("session_get_and_extend", (), "expected"),
    ("session_destroy", (5,), "no arguments"),
])
def test_session_bad_arguments(sess, r, fn, args, words):
    with pytest.raises(redis.ResponseError, match=words):
        sess(fn, "s:bad", *args)
    assert not r.exists("s:bad")


# ---------------------------------------------------------------------------------------------
# Functions are persisted and replicated
# ---------------------------------------------------------------------------------------------

def libraries(c) -> dict:
    """FUNCTION LIST WITHCODE as {library name: code} (redis-py returns RESP2's flat pairs)."""
    out = {}
    for lib in c.function_list(withcode=True):
        fields = dict(zip(lib[::2], lib[1::2])) if isinstance(lib, list) else lib
        out[fields["library_name"]] = fields["library_code"]
    return out


class OwnServer:
    """A redis-server whose dir outlives it, so that it can be restarted on the same data."""

    def __init__(self, dir_, port, *lines):
        self.dir, self.port, self.lines = dir_, port, lines
        self.proc = None

    def start(self):
        conf = os.path.join(self.dir, f"redis-{self.port}.conf")
        with open(conf, "w") as f:
            f.write("\n".join([f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}",
                               f"logfile {self.dir}/redis-{self.port}.log", "daemonize no",
                               f"dbfilename dump-{self.port}.rdb", *self.lines]) + "\n")
        self.proc = subprocess.Popen(["redis-server", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _ping(self.port), open(f"{self.dir}/redis-{self.port}.log").read()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.mark.parametrize("persistence", [("appendonly yes", 'save ""'), ("appendonly no", "save 3600 1")],
                         ids=["aof", "rdb"])
def test_functions_survive_a_restart_and_reach_a_replica(persistence):
    with tempfile.TemporaryDirectory(prefix="cflua-") as d:
        master = OwnServer(d, free_port(), *persistence).start()
        replica = None
        try:
            m = redis.Redis(port=master.port, decode_responses=True)
            m.function_load(RATE_LIMITER)
            m.function_load(SESSIONS)
            replica = OwnServer(d, free_port(), "appendonly no", 'save ""',
                                f"replicaof 127.0.0.1 {master.port}").start()
            rep = redis.Redis(port=replica.port, decode_responses=True)
            deadline = time.time() + 30
            while rep.info("replication").get("master_link_status") != "up":
                assert time.time() < deadline, rep.info("replication")
                time.sleep(0.1)
            # Loaded after the replica synced too: FUNCTION LOAD is replicated as a command.
            m.function_load("#!lua name=late\nredis.register_function('late_one', function() return 1 end)")
            deadline = time.time() + 10
            while set(libraries(rep)) != {"ratelimit", "session", "late"}:
                assert time.time() < deadline, libraries(rep)
                time.sleep(0.05)
            code = libraries(rep)
            assert code["ratelimit"] == RATE_LIMITER and code["session"] == SESSIONS
            # A replica refuses the write functions, as it refuses writes.
            with pytest.raises(redis.ResponseError, match="READONLY|read only"):
                rep.fcall("ratelimit_gcra", 1, "k", 5, 1000)
            assert m.fcall("ratelimit_gcra", 1, "k", 5, 1000)[0] == 1
            m.close()
            master.stop()
            master.start()
            m = redis.Redis(port=master.port, decode_responses=True)
            code = libraries(m)
            assert code == {"ratelimit": RATE_LIMITER, "session": SESSIONS,
                            "late": "#!lua name=late\nredis.register_function('late_one', function() return 1 end)"}
            assert m.fcall("ratelimit_gcra", 1, "k", 5, 1000)[0] == 1
            assert m.fcall("session_create", 1, "s", 10, "a", "b") == 1
            m.close()
        finally:
            if replica:
                replica.stop()
            master.stop()


def test_script_cache_does_not_survive_a_restart():
    """Why mode=function is the default: the script cache is empty after a restart."""
    with tempfile.TemporaryDirectory(prefix="cflua-") as d:
        s = OwnServer(d, free_port(), "appendonly yes").start()
        try:
            c = redis.Redis(port=s.port)
            sha = c.script_load(as_script(RATE_LIMITER))
            assert c.script_exists(sha) == [True]
            c.close()
            s.stop()
            s.start()
            c = redis.Redis(port=s.port)
            assert c.script_exists(sha) == [False]
            c.close()
        finally:
            s.stop()
