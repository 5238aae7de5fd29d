"""creativeflow.redis.redis_lua_script through Ansible, against real redis-server, redis-sentinel
and a real three-master cluster: the doc stub's EXAMPLES run for real, idempotence, check mode,
diff, no_log masking of login_password, bad input."""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import time

import pytest
import redis
import yaml

from conftest import result_of
from redis_procs import RedisProc

REPO = pathlib.Path(__file__).resolve().parent.parent
PW = "lua-Secret-3b7f"
RATE_LIMITER = (REPO / "lua" / "rate_limiter.lua").read_text()


def server(*lines):
    return RedisProc([f"requirepass {PW}", *lines])


def client(proc) -> redis.Redis:
    return redis.Redis(port=proc.port, password=PW, decode_responses=True)


def libraries(proc) -> dict:
    out = {}
    for lib in client(proc).function_list(withcode=True):
        fields = dict(zip(lib[::2], lib[1::2])) if isinstance(lib, list) else lib
        out[fields["library_name"]] = fields["library_code"]
    return out


def examples():
    src = (REPO / "collection" / "plugins" / "modules" / "redis_lua_script.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise AssertionError("no EXAMPLES")


class Cluster:
    """Three masters formed by redis-cli --cluster create, ready when every node says ok."""

    def __init__(self):
        self.nodes = []
        try:
            for _ in range(3):
                self.nodes.append(server("cluster-enabled yes", "cluster-node-timeout 2000", f"masterauth {PW}"))
            env = dict(os.environ, REDISCLI_AUTH=PW)
            p = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                                "--cluster-replicas", "0", "--cluster-yes"],
                               capture_output=True, text=True, env=env, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            deadline = time.time() + 60
            while not all("cluster_state:ok" in client(n).execute_command("CLUSTER", "INFO") for n in self.nodes):
                assert time.time() < deadline, "the cluster did not become ready"
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for n in self.nodes:
            n.stop()


def play(tasks, **extra):
    return yaml.safe_dump([{"name": "test", "hosts": "all", "gather_facts": False, **extra, "tasks": tasks}],
                          sort_keys=False)


def test_examples_run_for_real(playbook, tmp_path):
    """Every EXAMPLES task runs: port 7000 becomes a cluster node, 26379 a Sentinel watching the
    standalone server, the rest the standalone server; the src file is written in a temp dir."""
    plain = server()
    sentinel = RedisProc([f"sentinel monitor mymaster 127.0.0.1 {plain.port} 1", f"sentinel auth-pass mymaster {PW}"],
                         binary="redis-sentinel")
    cluster = Cluster()
    try:
        lib = tmp_path / "mylib.lua"
        lib.write_text("#!lua name=mylib\nredis.register_function('mylib_hello', function() return 'hello' end)\n")
        ports = {7000: cluster.nodes[0].port, 26379: sentinel.port}
        tasks = examples()
        for t in tasks:
            args = t.get("creativeflow.redis.redis_lua_script")
            if args is None:
                continue
            args["login_port"] = ports.get(args.get("login_port"), plain.port)
            args["login_host"] = "127.0.0.1"
            if args.get("src") == "/etc/myapp/mylib.lua":
                args["src"] = str(lib)
        tasks.append({"ansible.builtin.assert": {"that": [
            "ratelimit.functions == ['ratelimit_fixed_window', 'ratelimit_gcra', 'ratelimit_sliding_log', "
            "'ratelimit_sliding_window']",
            "script.sha1 | length == 40",
        ]}})
        rc, out = playbook(play(tasks, vars={"redis_password": PW}))
        assert rc == 0, out
        assert "failed=0" in out, out
        assert PW not in out
        libs = libraries(plain)
        assert set(libs) == {"ratelimit", "session"}, libs
        assert libs["ratelimit"] == RATE_LIMITER
        for n in cluster.nodes:
            assert set(libraries(n)) == {"ratelimit"}, n.port
        # The EVALSHA form the docs show works with the sha1 the module returned.
        c = client(plain)
        sha = c.script_load("\n" + RATE_LIMITER.split("\n", 1)[1])
        assert c.evalsha(sha, 1, "rl:{user42}", "ratelimit_gcra", 100, 60000)[0] == 1
        assert c.fcall("ratelimit_gcra", 1, "rl:{user42}", 100, 60000)[0] == 1
    finally:
        cluster.stop()
        sentinel.stop()
        plain.stop()


def test_idempotent_check_mode_diff_and_no_log(playbook):
    s = server()
    try:
        task = {"creativeflow.redis.redis_lua_script": {
            "builtin": "rate_limiter", "login_host": "127.0.0.1", "login_port": s.port, "login_password": PW}}
        tasks = [
            {"name": "predict", **task, "check_mode": True, "diff": True, "register": "predicted"},
            {"name": "nothing loaded in check mode", "ansible.builtin.assert": {"that": ["predicted is changed"]}},
        ]
        rc, out = playbook(play(tasks), "-vvv")
        assert rc == 0, out
        assert "+#!lua name=ratelimit" in out, "the diff shows the new code"
        assert PW not in out
        assert libraries(s) == {}, "check mode changed the server"
        rc, out = playbook(play([{**task, "register": "r"},
                                 {"ansible.builtin.assert": {"that": ["r is changed", "r.nodes[0].changed"]}}]),
                           "--diff", "-vvv")
        assert rc == 0 and "changed=1" in out, out
        assert PW not in out
        assert libraries(s) == {"ratelimit": RATE_LIMITER}
        rc, out = playbook(play([{**task, "register": "r"},
                                 {"ansible.builtin.assert": {"that": ["r is not changed"]}}]), "--diff")
        assert rc == 0 and "changed=0" in out, out
        # A wrong password: failed, and neither password shows anywhere, even at -vvv.
        bad = {"creativeflow.redis.redis_lua_script": {**task["creativeflow.redis.redis_lua_script"],
                                                       "login_password": PW + "-wrong"}}
        rc, out = playbook(play([bad]), "-vvv")
        assert rc != 0 and "WRONGPASS" in out, out
        assert PW not in out
    finally:
        s.stop()


@pytest.mark.parametrize("args, words", [
    ("builtin=rate_limiter src=/tmp/x.lua", "mutually exclusive: src|builtin"),
    ("builtin=rate_limiter bogus=1", "Unsupported parameters"),
    ("builtin=rate_limiter mode=eval", "value of mode must be one of"),
    ("builtin=rate_limiter targets=master", "master_name"),
])
def test_bad_input_is_refused(adhoc, args, words):
    s = server()
    try:
        # Refused before any connection: no password needed to show it.
        rc, out = adhoc("creativeflow.redis.redis_lua_script", f"{args} login_host=127.0.0.1 login_port={s.port}")
        assert rc != 0, out
        assert words in out, out
        assert libraries(s) == {}
    finally:
        s.stop()


def test_a_syntax_error_fails_with_redis_message_and_the_line(adhoc, tmp_path):
    s = server()
    try:
        src = tmp_path / "broken.lua"
        src.write_text("#!lua name=broken\n\nlocal x = (1\nredis.register_function('b', function() return x end)\n")
        rc, out = adhoc("creativeflow.redis.redis_lua_script",
                        f"src={src} login_host=127.0.0.1 login_port={s.port} login_password={PW}")
        assert rc != 0, out
        r = result_of(out)
        assert "Error compiling function: user_function:4:" in r["msg"], r
        assert f"(line 4 of src {src})" in r["msg"], r
        assert libraries(s) == {}
    finally:
        s.stop()
