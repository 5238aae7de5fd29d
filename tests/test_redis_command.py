"""creativeflow.redis.redis_command through Ansible (the installed collection), against real
redis-server / redis-sentinel processes and a real Cluster: the doc stub's EXAMPLES run for
real, check mode, no_log, and the documented Pub/Sub playbook (ops_pubsub.yml).

Helpers here (recorded task results, a cluster, playbook runs) are shared with
test_redis_keys.py.
"""
import ast
import json
import os
import subprocess
import time

import pytest
import yaml

from conftest import REPO, ansible_env, tool
from redis_procs import RedisProc

PW = "ops-Pw 15'$z"
COLLECTION_DIR = REPO / "build" / "ansible_collections_install" / "ansible_collections" / "creativeflow" / "redis"

RECORDER = '''
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Appends every task result to $CF_OPS_RECORD, one JSON object a line."""
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cf_ops_record"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        with open(os.environ["CF_OPS_RECORD"], "a") as f:
            f.write(json.dumps({"task": result._task.get_name(), "status": status,
                                "result": result._result}, default=repr) + "\\n")

    def v2_runner_on_ok(self, result, **kwargs):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record("failed", result)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record("skipped", result)
'''


def conf_pw():
    return '"' + PW.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Run:
    """One ansible-playbook run: rc, screen output, and every task's result by task name."""

    def __init__(self, rc, out, records):
        self.rc, self.out, self.records = rc, out, records
        self.by = {r["task"]: r for r in records}

    def result(self, task):
        assert task in self.by, f"no task {task!r} in {list(self.by)}\n{self.out}"
        return self.by[task]["result"]


def run_playbook(tmp_path, playbook, extra_vars=None, *args):
    """ansible-playbook on localhost (local connection) with the installed collection; variables
    through a file so that the password is not on the command line."""
    plugins = tmp_path / "cf_callbacks"
    plugins.mkdir(exist_ok=True)
    (plugins / "cf_ops_record.py").write_text(RECORDER)
    record = tmp_path / f"record-{time.monotonic_ns()}.jsonl"
    env = ansible_env(tmp_path)
    env.update({"ANSIBLE_CALLBACK_PLUGINS": str(plugins), "ANSIBLE_CALLBACKS_ENABLED": "cf_ops_record",
                "CF_OPS_RECORD": str(record)})
    cmd = [tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), *args]
    if extra_vars is not None:
        vf = tmp_path / f"vars-{time.monotonic_ns()}.json"
        vf.write_text(json.dumps(extra_vars))
        cmd += ["-e", f"@{vf}"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    records = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return Run(p.returncode, p.stdout + p.stderr, records)


def examples(module):
    src = (REPO / "collection" / "plugins" / "modules" / f"{module}.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{module} has no EXAMPLES")


def server(*lines):
    return RedisProc([f"requirepass {conf_pw()}", *lines])


def cli(proc, *args):
    env = dict(os.environ, REDISCLI_AUTH=PW)
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(proc.port), *args],
                         capture_output=True, text=True, env=env, timeout=20)
    return out.stdout.strip()


class Cluster:
    """Six nodes (three masters, three replicas) formed with `redis-cli --cluster create`, ready
    when every node says cluster_state:ok, sees three masters and every replica is in sync."""

    def __init__(self):
        self.nodes = []
        try:
            for _ in range(6):
                self.nodes.append(server("cluster-enabled yes", "cluster-node-timeout 2000",
                                         "repl-diskless-sync-delay 0", f"masterauth {conf_pw()}"))
            env = dict(os.environ, REDISCLI_AUTH=PW)
            p = subprocess.run(["redis-cli", "--cluster", "create",
                                *[f"127.0.0.1:{n.port}" for n in self.nodes],
                                "--cluster-replicas", "1", "--cluster-yes"],
                               capture_output=True, text=True, env=env, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            deadline = time.time() + 60
            while not all(self._ready(n) for n in self.nodes):
                assert time.time() < deadline, "the cluster did not become ready"
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ready(n):
        nodes = cli(n, "CLUSTER", "NODES").splitlines()
        repl = cli(n, "INFO", "replication")
        return ("cluster_state:ok" in cli(n, "CLUSTER", "INFO")
                and sum(" master " in f" {line.split()[2].replace(',', ' ')} " for line in nodes) == 3
                and len(nodes) == 6
                and ("role:master" in repl or "master_link_status:up" in repl))

    def masters(self):
        return [n for n in self.nodes if cli(n, "ROLE").splitlines()[0] == "master"]

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture
def redis_cluster():
    c = Cluster()
    yield c
    c.stop()


def tasks_play(tasks, **extra):
    return [{"name": "test", "hosts": "all", "gather_facts": False, **extra, "tasks": tasks}]


def write_play(tmp_path, plays):
    path = tmp_path / f"play-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def test_examples_run_for_real(tmp_path, collection_built, redis_cluster):
    """Every EXAMPLES task runs against real servers: port 7000 becomes a cluster node, 26379 a
    Sentinel watching the standalone server, any other task the standalone server."""
    plain = server()
    sentinel = RedisProc([f"sentinel monitor mymaster 127.0.0.1 {plain.port} 1",
                          f"sentinel auth-pass mymaster {conf_pw()}"], binary="redis-sentinel")
    try:
        ports = {7000: redis_cluster.nodes[0].port, 26379: sentinel.port}
        tasks = examples("redis_command")
        for t in tasks:
            args = t["creativeflow.redis.redis_command"]
            args["login_port"] = ports.get(args.get("login_port"), plain.port)
            args["login_host"] = "127.0.0.1"
        play = tasks_play(tasks, vars={"redis_password": PW})
        run = run_playbook(tmp_path, write_play(tmp_path, play))
        assert run.rc == 0, run.out
        assert PW not in run.out and PW not in json.dumps(run.records)
        assert run.result("Ping the server")["reply"] == "PONG"
        policies = run.result("Run CONFIG GET on every node of the cluster (read-only, runs in check mode too)")
        assert len(policies["replies"]) == 6 and not policies["changed"]
        assert cli(plain, "GET", "maintenance:notice") == "back at 14:00"
        assert run.result("Count the subscribers of a channel")["reply"] == ["alerts", 0]
        assert run.result("Extend a lock's TTL without reporting a change")["changed"] is False
        assert cli(plain, "CONFIG", "GET", "masterauth").splitlines()[1] == PW
        # Check mode: the reads run, the writes are reported and not sent.
        cli(plain, "DEL", "maintenance:notice")
        run = run_playbook(tmp_path, write_play(tmp_path, play), None, "--check")
        assert run.rc == 0, run.out
        assert cli(plain, "EXISTS", "maintenance:notice") == "0"
        assert run.result("Ping the server")["reply"] == "PONG"
        assert run.result("Set a key on the current master of a Sentinel group")["sent"] is False
    finally:
        sentinel.stop()
        plain.stop()


def test_check_mode_and_no_log_through_ansible(tmp_path, collection_built):
    with server() as s:
        tasks = [
            {"name": "write", "creativeflow.redis.redis_command": {"command": ["SET", "k", "v"]}},
            {"name": "read", "creativeflow.redis.redis_command": {"command": ["GET", "k"]}},
            {"name": "password read back", "creativeflow.redis.redis_command": {"command": ["CONFIG", "GET", "requirepass"]}},
            {"name": "secret arg", "creativeflow.redis.redis_command": {
                "command": ["SET", "token", "{{ app_secret }}"], "secret_args": [2]}},
            {"name": "unknown", "creativeflow.redis.redis_command": {"command": ["NOSUCH"]}, "ignore_errors": True},
            {"name": "empty", "creativeflow.redis.redis_command": {"command": []}, "ignore_errors": True},
        ]
        defaults = {"creativeflow.redis.redis_command": {"login_host": "127.0.0.1", "login_port": s.port,
                                                          "login_password": "{{ pw }}"}}
        play = write_play(tmp_path, tasks_play(tasks, module_defaults=defaults))
        secrets = {"pw": PW, "app_secret": "App-Secret-15"}
        run = run_playbook(tmp_path, play, secrets, "--check", "-v")
        assert run.rc == 0, run.out
        assert cli(s, "EXISTS", "k") == "0" and cli(s, "EXISTS", "token") == "0"
        assert run.result("write")["changed"] is True and run.result("write")["sent"] is False
        assert run.result("read")["reply"] is None and run.result("read")["changed"] is False
        for r in (run.out, json.dumps(run.records)):
            assert PW not in r and "App-Secret-15" not in r
        assert "does not know the command `NOSUCH`" in run.result("unknown")["msg"]
        assert "command is empty" in run.result("empty")["msg"]
        run = run_playbook(tmp_path, play, secrets, "-v")
        assert run.rc == 0, run.out
        assert cli(s, "GET", "k") == "v" and cli(s, "GET", "token") == "App-Secret-15"
        assert run.result("read")["reply"] == "v"
        assert run.result("password read back")["reply"] == {"requirepass": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
        for r in (run.out, json.dumps(run.records)):
            assert PW not in r and "App-Secret-15" not in r


def test_ops_pubsub_playbook(tmp_path, collection_built):
    """ops_pubsub.yml: channels with subscriber counts, a test message published (received by a
    real subscriber), nothing published in check mode."""
    with server() as s:
        env = dict(os.environ, REDISCLI_AUTH=PW)
        out = tmp_path / "subscriber.out"
        with open(out, "w") as f:
            sub = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(s.port), "SUBSCRIBE", "alerts", "audit"],
                                   stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.time() + 10
            while cli(s, "PUBSUB", "NUMSUB", "alerts").splitlines()[-1:] != ["1"]:
                assert time.time() < deadline, "the subscriber did not subscribe"
                time.sleep(0.05)
            pb = COLLECTION_DIR / "playbooks" / "ops_pubsub.yml"
            base = {"ops_hosts": "all", "ops_port": s.port, "ops_password": PW, "ops_channel": "alerts",
                    "ops_message": "hello from the test"}
            run = run_playbook(tmp_path, pb, base, "--check")
            assert run.rc == 0, run.out
            assert sorted(run.result("List the active channels")["reply"]) == ["alerts", "audit"]
            assert run.result("Show channels and subscriber counts")["msg"] == {"alerts": 1, "audit": 1}
            assert run.result("Publish a test message to alerts")["sent"] is False
            time.sleep(0.3)
            assert "hello from the test" not in out.read_text()
            run = run_playbook(tmp_path, pb, base)
            assert run.rc == 0, run.out
            assert run.result("Publish a test message to alerts")["reply"] == 1
            assert run.result("Show how many subscribers received it")["msg"] == "1 subscribers received the message"
            deadline = time.time() + 5
            while "hello from the test" not in out.read_text():
                assert time.time() < deadline, out.read_text()
                time.sleep(0.05)
            assert PW not in run.out
            # Without a channel: listed, nothing published.
            run = run_playbook(tmp_path, pb, {k: v for k, v in base.items() if k != "ops_channel"})
            assert run.rc == 0, run.out
            assert run.by["Publish a test message to (no channel given)"]["status"] == "skipped"
        finally:
            sub.terminate()
            sub.wait(10)
