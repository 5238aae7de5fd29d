"""The day-to-day modules through Ansible against each server build: Redis 7.0 (this machine's),
Redis 8.0 and Valkey 8.1 (Debian 13's, tests/hosts/servers.py). One playbook per build runs
redis_health, redis_command, redis_keys, redis_lua_script (Functions and the script cache) and
redis_sentinel against that build's own server and Sentinel, with a password; then the
idempotent part again, which must change nothing. (redis_config, redis_cluster and
redis_service have version tests of their own: the cargo `versions` tests, the scenarios.)
A missing build skips, and fails under CI (see test_server_versions.require).
"""
from __future__ import annotations

import pytest

from redis_procs import RedisProc
from test_redis_command import PW, conf_pw, run_playbook, tasks_play, write_play
from test_server_versions import BUILDS, require


def _tasks(server_port, sentinel_port, idempotent_only=False):
    login = {"login_host": "127.0.0.1", "login_port": server_port, "login_password": "{{ pw }}"}
    tasks = [
        {"name": "health", "creativeflow.redis.redis_health": {**login, "checks": ["ping", "info"]}},
        {"name": "load the rate limiters as Functions",
         "creativeflow.redis.redis_lua_script": {**login, "builtin": "rate_limiter"}},
        {"name": "the rate limiters in the script cache",
         "creativeflow.redis.redis_lua_script": {**login, "builtin": "rate_limiter", "mode": "script"}},
        {"name": "monitor the server",
         "creativeflow.redis.redis_sentinel": {
             "login_host": "127.0.0.1", "login_port": sentinel_port,
             "monitors": [{"name": "g1", "host": "127.0.0.1", "port": server_port, "quorum": 1,
                           "auth_pass": "{{ pw }}"}]}},
    ]
    if idempotent_only:
        return tasks
    return tasks + [
        {"name": "write", "creativeflow.redis.redis_command": {**login, "command": ["SET", "s:1", "v"]}},
        {"name": "write two", "creativeflow.redis.redis_command": {**login, "command": ["SET", "s:2", "v"]}},
        {"name": "call a limiter", "creativeflow.redis.redis_command": {
            **login, "command": ["FCALL", "ratelimit_fixed_window", "1", "rl:{u1}", "10", "60000"]}},
        {"name": "count", "creativeflow.redis.redis_keys": {**login, "pattern": "s:*"}},
        {"name": "delete", "creativeflow.redis.redis_keys": {**login, "pattern": "s:*", "state": "absent"}},
        {"name": "count again", "creativeflow.redis.redis_keys": {**login, "pattern": "s:*"}},
    ]


@pytest.mark.parametrize("name", BUILDS)
def test_modules_work_on_the_build(tmp_path, collection_built, name):
    b = require(name)
    lines = [f"requirepass {conf_pw()}", 'save ""', "appendonly no"]
    with RedisProc(lines, binary=b["server"]) as server, RedisProc([], binary=b["sentinel"]) as sentinel:
        play = write_play(tmp_path, tasks_play(_tasks(server.port, sentinel.port), vars={"pw": PW}))
        run = run_playbook(tmp_path, play)
        assert run.rc == 0, run.out
        assert PW not in run.out
        product = "Valkey" if b["flavour"] == "valkey" else "Redis"
        health = run.result("health")
        assert health["status"] == "ok", health
        assert health["server"]["flavour"] == b["flavour"] and health["server"]["version"] == b["version"], health
        assert f"{product} {b['version']} at" in health["msg"], health["msg"]
        assert run.result("load the rate limiters as Functions")["changed"] is True
        assert run.result("the rate limiters in the script cache")["changed"] is True
        assert run.result("monitor the server")["changed"] is True
        assert run.result("count")["count"] == 2
        assert run.result("delete")["deleted"] == 2
        assert run.result("count again")["count"] == 0
        # The limiter admitted its first call: a reply, from the Function this build runs.
        assert run.result("call a limiter")["reply"] not in (None, ""), run.result("call a limiter")
        assert "g1" in sentinel.cli("SENTINEL", "MASTERS"), "the Sentinel has no g1"

        again = write_play(tmp_path, tasks_play(_tasks(server.port, sentinel.port, True), vars={"pw": PW}))
        run = run_playbook(tmp_path, again)
        assert run.rc == 0, run.out
        changed = [r["task"] for r in run.records if r["result"].get("changed")]
        assert changed == [], f"{name}: the second run changed {changed}\n{run.out}"
