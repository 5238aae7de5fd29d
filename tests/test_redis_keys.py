"""creativeflow.redis.redis_keys through Ansible (the installed collection), against real
redis-server processes and a real Cluster: the doc stub's EXAMPLES run for real, the documented
playbooks ops_sessions.yml, ops_cache_flush.yml and ops_rate_limit_reset.yml (check mode first,
then for real, then again: nothing left to change), bad input that deletes nothing.
"""
import os
import subprocess

from test_redis_command import COLLECTION_DIR, PW, cli, examples, run_playbook, server, tasks_play, write_play
from test_redis_command import redis_cluster  # noqa: F401 (the fixture)

PLAYBOOKS = COLLECTION_DIR / "playbooks"


def fill(s, db, keys):
    """Writes keys with redis-cli --pipe (one connection, a RESP stream)."""
    stream = "".join(f"*3\r\n$3\r\nSET\r\n${len(k.encode())}\r\n{k}\r\n$1\r\nv\r\n" for k in keys)
    sel = f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n"
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(s.port), "--pipe"], input=sel + stream,
                       capture_output=True, text=True, env=dict(os.environ, REDISCLI_AUTH=PW), timeout=60)
    assert p.returncode == 0 and "errors: 0" in p.stdout, p.stdout + p.stderr


def dbsize(s, db):
    return int(cli(s, "-n", str(db), "DBSIZE"))


def test_examples_run_for_real(tmp_path, collection_built):
    with server() as s:
        fill(s, 0, [f"session:user42:{i}" for i in range(5)] + ["session:user7:1"])
        fill(s, 1, [f"cache:{i}" for i in range(3)])
        fill(s, 9, [f"x{i}" for i in range(4)])
        tasks = examples("redis_keys")
        for t in tasks:
            t["creativeflow.redis.redis_keys"].update({"login_host": "127.0.0.1", "login_port": s.port})
        play = write_play(tmp_path, tasks_play(tasks, vars={"redis_password": PW}))
        run = run_playbook(tmp_path, play, None, "--check")
        assert run.rc == 0, run.out
        assert (dbsize(s, 0), dbsize(s, 1), dbsize(s, 9)) == (6, 3, 4), "check mode deleted keys"
        run = run_playbook(tmp_path, play)
        assert run.rc == 0, run.out
        assert PW not in run.out
        assert run.result("Count a user's sessions in database 0")["count"] == 5
        assert run.result("Clear the user's sessions")["deleted"] == 5
        # Just written: none idle for an hour.
        assert run.result("List cache entries idle for an hour, with their size")["count"] == 0
        assert run.result("Flush everything in database 9 (a pattern without a literal character needs force)")["deleted"] == 4
        assert (cli(s, "KEYS", "*").split(), dbsize(s, 1), dbsize(s, 9)) == (["session:user7:1"], 3, 0)
        # Again: nothing left to delete.
        run = run_playbook(tmp_path, play)
        assert run.rc == 0, run.out
        assert "changed=0" in run.out, run.out


def test_ops_sessions_playbook(tmp_path, collection_built):
    with server() as s:
        fill(s, 0, [f"session:42:{i}" for i in range(30)] + ["session:421:1", "session:7:1"])
        pb = PLAYBOOKS / "ops_sessions.yml"
        base = {"ops_hosts": "all", "ops_port": s.port, "ops_password": PW, "ops_user": "42"}
        run = run_playbook(tmp_path, pb, base)
        assert run.rc == 0, run.out
        counted = run.result("Count the sessions of user 42")
        assert counted["count"] == 30 and len(counted["found"]) == 20 and counted["truncated"]
        assert run.by["Clear the sessions of user 42"]["status"] == "skipped"
        assert dbsize(s, 0) == 32
        run = run_playbook(tmp_path, pb, {**base, "ops_clear": True}, "--check")
        assert run.rc == 0 and dbsize(s, 0) == 32, run.out
        assert run.result("Clear the sessions of user 42")["changed"] is True
        run = run_playbook(tmp_path, pb, {**base, "ops_clear": True})
        assert run.rc == 0, run.out
        assert run.result("Clear the sessions of user 42")["deleted"] == 30
        assert sorted(cli(s, "KEYS", "*").split()) == ["session:421:1", "session:7:1"]
        run = run_playbook(tmp_path, pb, {**base, "ops_clear": True})
        assert run.rc == 0 and "changed=0" in run.out, run.out
        # A user id with a glob character is refused before anything runs.
        run = run_playbook(tmp_path, pb, {**base, "ops_user": "*", "ops_clear": True})
        assert run.rc != 0 and "set ops_user" in run.out, run.out
        assert dbsize(s, 0) == 2
        assert PW not in run.out


def test_ops_cache_flush_playbook(tmp_path, collection_built):
    with server() as s:
        fill(s, 1, [f"cache:products:{i}" for i in range(2500)] + ["cache:users:1"])
        fill(s, 0, ["cache:products:db0"])
        pb = PLAYBOOKS / "ops_cache_flush.yml"
        base = {"ops_hosts": "all", "ops_port": s.port, "ops_password": PW, "ops_prefix": "cache:products:"}
        run = run_playbook(tmp_path, pb, base, "--check")
        assert run.rc == 0, run.out
        assert run.result("Flush cache:products:*")["count"] == 2500 and dbsize(s, 1) == 2501
        run = run_playbook(tmp_path, pb, {**base, "ops_batch_size": 500})
        assert run.rc == 0, run.out
        r = run.result("Flush cache:products:*")
        assert r["deleted"] == 2500 and r["nodes"][0]["scans"] >= 5, r
        assert cli(s, "-n", "1", "KEYS", "*").split() == ["cache:users:1"]
        assert dbsize(s, 0) == 1, "another database was touched"
        run = run_playbook(tmp_path, pb, base)
        assert run.rc == 0 and "changed=0" in run.out, run.out
        for bad in ("", "cache:*", "ca?he", "[a]"):
            run = run_playbook(tmp_path, pb, {**base, "ops_prefix": bad})
            assert run.rc != 0 and "set ops_prefix" in run.out, (bad, run.out)
        assert dbsize(s, 1) == 1


def test_ops_rate_limit_reset_playbook(tmp_path, collection_built):
    with server() as s:
        cli(s, "-n", "3", "SET", "ratelimit:203.0.113.7", "17", "EX", "60")
        cli(s, "-n", "3", "SET", "ratelimit:203.0.113.8", "3", "EX", "60")
        pb = PLAYBOOKS / "ops_rate_limit_reset.yml"
        base = {"ops_hosts": "all", "ops_port": s.port, "ops_password": PW, "ops_client": "203.0.113.7"}
        run = run_playbook(tmp_path, pb, base, "--check")
        assert run.rc == 0, run.out
        assert run.result("Show it")["msg"].startswith("ratelimit:203.0.113.7 = 17 (TTL ")
        assert run.result("Reset the counter of 203.0.113.7")["changed"] is True
        assert dbsize(s, 3) == 2
        run = run_playbook(tmp_path, pb, base)
        assert run.rc == 0, run.out
        assert run.result("Reset the counter of 203.0.113.7")["reply"] == 1
        assert cli(s, "-n", "3", "KEYS", "*").split() == ["ratelimit:203.0.113.8"]
        run = run_playbook(tmp_path, pb, base)
        assert run.rc == 0 and "changed=0" in run.out, run.out
        assert PW not in run.out


def test_bad_input_deletes_nothing(tmp_path, collection_built):
    with server() as s:
        fill(s, 0, [f"k{i}" for i in range(10)])
        cases = [
            ({"pattern": "*", "state": "absent"}, "needs force: true"),
            ({"pattern": "?*", "state": "absent"}, "needs force: true"),
            ({"pattern": "", "state": "absent"}, "pattern is empty"),
            ({"pattern": "k*", "state": "absent", "batch_size": 0}, "batch_size must be between"),
            ({"pattern": "k*", "state": "absent", "persistent": True, "max_ttl": 5}, "mutually exclusive"),
            ({"pattern": "k*", "state": "gone"}, "value of state must be one of"),
            ({"pattern": "k*", "state": "absent", "targets": "masters"}, "not in cluster mode"),
        ]
        tasks = [{"name": f"case {i}", "creativeflow.redis.redis_keys": {**args, "login_host": "127.0.0.1",
                                                                          "login_port": s.port, "login_password": "{{ pw }}"},
                  "ignore_errors": True} for i, (args, _) in enumerate(cases)]
        run = run_playbook(tmp_path, write_play(tmp_path, tasks_play(tasks)), {"pw": PW})
        for i, (args, want) in enumerate(cases):
            r = run.by[f"case {i}"]
            assert r["status"] == "failed" and want in r["result"]["msg"], (args, r)
        assert dbsize(s, 0) == 10
        assert PW not in run.out


def test_cluster_every_master(tmp_path, collection_built, redis_cluster):  # noqa: F811
    """Keys written through the cluster (redis-cli -c) land on every master; one task finds and
    deletes them all, from any node."""
    seed = redis_cluster.nodes[0]
    env = dict(os.environ, REDISCLI_AUTH=PW)
    keys = [f"session:{i}" for i in range(300)]
    stream = "".join(f"SET {k} v\n" for k in keys)
    p = subprocess.run(["redis-cli", "-c", "-h", "127.0.0.1", "-p", str(seed.port)], input=stream,
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    masters = redis_cluster.masters()
    counts = [int(cli(m, "DBSIZE")) for m in masters]
    assert sum(counts) == 300 and all(c > 0 for c in counts), counts
    tasks = [{"name": "count", "creativeflow.redis.redis_keys": {"pattern": "session:*"}},
             {"name": "delete", "creativeflow.redis.redis_keys": {"pattern": "session:*", "state": "absent"}},
             {"name": "again", "creativeflow.redis.redis_keys": {"pattern": "session:*", "state": "absent"}}]
    defaults = {"creativeflow.redis.redis_keys": {"login_host": "127.0.0.1", "login_port": seed.port,
                                                  "login_password": "{{ pw }}"}}
    play = write_play(tmp_path, tasks_play(tasks, module_defaults=defaults))
    run = run_playbook(tmp_path, play, {"pw": PW}, "--check")
    assert run.rc == 0, run.out
    assert run.result("count")["count"] == 300
    assert sorted(n["count"] for n in run.result("count")["nodes"]) == sorted(counts)
    assert sum(int(cli(m, "DBSIZE")) for m in masters) == 300
    run = run_playbook(tmp_path, play, {"pw": PW})
    assert run.rc == 0, run.out
    assert PW not in run.out
    assert run.result("delete")["deleted"] == 300 and run.result("again")["changed"] is False
    assert all(int(cli(n, "DBSIZE")) == 0 for n in redis_cluster.nodes)
