"""The redis_server role: bad input fails clearly and leaves running servers untouched."""
import os
import socket

import yaml

from redis_procs import free_port

PW = "role-Secret-6a1f"


def _play(prefix, instances, **extra):
    role_vars = {
        "redis_server_prefix": str(prefix),
        "redis_server_manage_user": False,
        "redis_server_user": "",
        "redis_server_group": "",
        "redis_server_password": PW,
        "redis_server_maxmemory_mb": 32,
        "redis_server_wait_timeout": 10,
        "redis_server_instances": instances,
    }
    role_vars.update(extra)
    return yaml.safe_dump([{"hosts": "all", "gather_facts": False,
                            "roles": [{"role": "creativeflow.redis.redis_server", "vars": role_vars}]}])


def _stop(playbook, prefix, names):
    tasks = [{"creativeflow.redis.redis_service": {
        "name": n, "state": "stopped", "manager": "direct", "shutdown": "nosave",
        "config": f"{prefix}/etc/redis/{n}.conf", "pidfile": f"{prefix}/run/redis/{n}.pid"},
        "failed_when": False} for n in names]
    playbook(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))


def test_preflight_refuses_duplicate_ports_and_exposed_instances_without_password(playbook, tmp_path):
    port = free_port()
    rc, out = playbook(_play(tmp_path, [{"name": "a", "port": port}, {"name": "b", "port": port}]))
    assert rc != 0
    assert f"duplicate ports {port}, {port}" in out, out
    rc, out = playbook(_play(tmp_path, [{"name": "a", "port": port, "bind": "0.0.0.0"}], redis_server_password=""))
    assert rc != 0
    assert "listening beyond loopback without a password: a" in out, out
    rc, out = playbook(_play(tmp_path, [{"name": "a", "port": port, "replicaof": "10.0.0.1"}]))
    assert rc != 0
    assert 'replicaof must be "host port": a' in out, out
    assert not (tmp_path / "etc").exists(), "preflight failures must come before any change"


def test_port_in_use_fails_clearly_and_leaves_running_instances_untouched(playbook, tmp_path):
    a, b = free_port(), free_port()
    rc, out = playbook(_play(tmp_path, [{"name": "a", "port": a}]))
    assert rc == 0, out
    pid_a = (tmp_path / "run/redis/a.pid").read_text().strip()
    holder = socket.socket()
    holder.bind(("127.0.0.1", b))
    holder.listen(1)
    try:
        rc, out = playbook(_play(tmp_path, [{"name": "a", "port": a}, {"name": "b", "port": b}]))
        assert rc != 0
        assert f"port 127.0.0.1:{b}" in out and "is already in use by pid" in out and "nothing was started" in out, out
        assert PW not in out
        assert (tmp_path / "run/redis/a.pid").read_text().strip() == pid_a, "instance a was touched"
        rc, out = playbook(_play(tmp_path, [{"name": "a", "port": a}]))
        assert rc == 0 and "changed=0" in out, out
    finally:
        holder.close()
        _stop(playbook, tmp_path, ["b", "a"])


def test_a_listener_on_another_address_of_the_same_port_is_no_clash(playbook, tmp_path):
    # Hosts in one network namespace (the cluster scenario) each listen on their own address with
    # the same port: the re-run of a converge failed on its neighbours' listeners.
    b = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.2", b))
    holder.listen(1)
    try:
        rc, out = playbook(_play(tmp_path, [{"name": "b", "port": b, "bind": "127.0.0.1"}]))
        assert rc == 0, out
        rc, out = playbook(_play(tmp_path, [{"name": "b", "port": b, "bind": "127.0.0.2"}]))
        assert rc != 0 and f"port 127.0.0.2:{b} is already in use by pid" in out, out
    finally:
        holder.close()
        _stop(playbook, tmp_path, ["b"])


def test_maxmemory_change_is_live_and_port_change_restarts_only_that_instance(playbook, tmp_path):
    a, b, b2 = free_port(), free_port(), free_port()
    inst = [{"name": "a", "port": a}, {"name": "b", "port": b, "replicaof": f"127.0.0.1 {a}"}]
    try:
        rc, out = playbook(_play(tmp_path, inst))
        assert rc == 0, out
        pids = {n: (tmp_path / f"run/redis/{n}.pid").read_text().strip() for n in "ab"}
        rc, out = playbook(_play(tmp_path, inst, redis_server_maxmemory_mb=48))
        assert rc == 0, out
        assert "RUNNING HANDLER" not in out, "a maxmemory change must not restart anything"
        assert {n: (tmp_path / f"run/redis/{n}.pid").read_text().strip() for n in "ab"} == pids
        inst[1]["port"] = b2
        # -vvv prints every loop item and registered result: the password must be in none.
        rc, out = playbook(_play(tmp_path, inst, redis_server_maxmemory_mb=48), "-vvv")
        assert rc == 0, out
        assert PW not in out, "the password is printed at -vvv"
        assert (tmp_path / "run/redis/a.pid").read_text().strip() == pids["a"]
        assert (tmp_path / "run/redis/b.pid").read_text().strip() != pids["b"]
        # The old server is stopped, not left running beside the new one (it was, before: the
        # instance was started on the new port before the restart handler ran).
        assert not os.path.exists(f"/proc/{pids['b']}"), out[out.find("RUNNING HANDLER"):][:6000]
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", b)) != 0, "something still listens on the old port"
        rc, out = playbook(_play(tmp_path, inst, redis_server_maxmemory_mb=48))
        assert rc == 0 and "changed=0" in out, out
    finally:
        _stop(playbook, tmp_path, ["b", "a"])
