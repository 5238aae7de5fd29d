"""redis_service through real `ansible` / `ansible-playbook`, starting and stopping real Redis.

The module starts redis-server itself (manager=direct); every test kills what it started, by the
pid from the pidfile or the module's result, in a finalizer.
"""
import os
import signal
import socket
import time

import pytest

from conftest import result_of
from redis_procs import free_port

PW = "svc-ansible-Secret-41c7"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"AUTH {PW}\r\nPING\r\n".encode())
            time.sleep(0.05)
            return b"+PONG" in s.recv(256)
    except OSError:
        return False


@pytest.fixture
def instance(tmp_path):
    """A config file for a password-protected server; kills the server afterwards."""
    port = free_port()
    conf = tmp_path / "redis.conf"
    pidfile = tmp_path / "redis.pid"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nlogfile {tmp_path}/redis.log\n"
        f"pidfile {pidfile}\nrequirepass {PW}\nsave \"\"\n"
    )
    inst = {"port": port, "conf": str(conf), "pidfile": pidfile, "name": f"t{port}", "pids": []}
    yield inst
    pids = list(inst["pids"])
    if pidfile.exists():
        try:
            pids.append(int(pidfile.read_text().strip()))
        except ValueError:
            pass
    for pid in pids:
        if _alive(pid):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"redis" not in f.read():
                    continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 5
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_playbook_start_is_idempotent_and_the_server_outlives_ansible(playbook, instance):
    rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  module_defaults:
    creativeflow.redis.redis_service:
      name: {instance['name']}
      config: {instance['conf']}
      manager: direct
  tasks:
    - name: start
      creativeflow.redis.redis_service:
        state: started
      register: first
    - name: start again
      creativeflow.redis.redis_service:
        state: started
      register: second
    - name: stop, in check mode
      creativeflow.redis.redis_service:
        state: stopped
      check_mode: true
      register: would_stop
    - name: status
      creativeflow.redis.redis_service:
        state: status
      register: st
    - ansible.builtin.assert:
        that:
          - first is changed
          - first.running and first.pid > 0
          - first.manager == 'direct'
          - first.role == 'master'
          - second is not changed
          - second.pid == first.pid
          - would_stop is changed
          - would_stop.actions == ['would stop pid ' ~ first.pid ~ ' (SHUTDOWN SAVE)']
          - st is not changed
          - st.running and st.pid == first.pid
""", "-v")
    assert rc == 0, out
    assert PW not in out
    pid = int(instance["pidfile"].read_text())
    instance["pids"].append(pid)
    # The play is over: the server started by the module still runs.
    time.sleep(0.3)
    assert _alive(pid) and _ping(instance["port"]), out

    rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  tasks:
    - creativeflow.redis.redis_service:
        name: {instance['name']}
        config: {instance['conf']}
        state: stopped
      register: stop
    - ansible.builtin.assert:
        that:
          - stop is changed
          - not stop.running
          - stop.actions == ['SHUTDOWN SAVE']
""")
    assert rc == 0, out
    assert not _alive(pid)


def test_adhoc_port_in_use_fails_clearly_and_hides_the_password(adhoc, instance):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", instance["port"]))
    holder.listen()
    try:
        rc, out = adhoc("creativeflow.redis.redis_service",
                        f"name={instance['name']} state=started config={instance['conf']} manager=direct",
                        "-vvvv")
    finally:
        holder.close()
    assert rc != 0, out
    assert "localhost | FAILED!" in out
    res = result_of(out)
    assert f"127.0.0.1:{instance['port']} " in res["msg"] and "already in use" in res["msg"], res["msg"]
    assert f"pid {os.getpid()}" in res["msg"], res["msg"]
    assert not instance["pidfile"].exists()
    assert PW not in out


@pytest.mark.parametrize("opts,expect", [
    # See: issue 8 item 6. The static binary crashed (SIGSEGV, no JSON) looking up an unknown
    # name through glibc NSS when nsswitch.conf names a module besides `files`.
    ("user=no-such-user-x", "user: user `no-such-user-x` does not exist on this host"),
    ("user=root group=no-such-group-x", "group: group `no-such-group-x` does not exist on this host"),
    # See: issue 8 item 7
    ("user=99999999999", "user: user id `99999999999` is out of range"),
    ("user=0 group=4294967295", "group: group id `4294967295` is out of range"),
])
def test_adhoc_unknown_or_out_of_range_account_fails_clearly(adhoc, instance, opts, expect):
    rc, out = adhoc("creativeflow.redis.redis_service",
                    f"name={instance['name']} state=started config={instance['conf']} manager=direct {opts}")
    assert rc != 0, out
    assert "MODULE FAILURE" not in out and "deserialization" not in out, out
    res = result_of(out)
    assert res["msg"].startswith(expect), res["msg"]
    assert not instance["pidfile"].exists()
    assert PW not in out


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a server as another user")
def test_playbook_user_0_is_root(playbook, instance):
    # See: issue 8 item 6
    rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  tasks:
    - creativeflow.redis.redis_service:
        name: {instance['name']}
        config: {instance['conf']}
        manager: direct
        state: started
        user: 0
      register: started
    - ansible.builtin.assert:
        that:
          - started is changed
          - started.pid > 0
""")
    assert rc == 0, out
    pid = int(instance["pidfile"].read_text())
    instance["pids"].append(pid)
    with open(f"/proc/{pid}/status") as f:
        uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
    assert uid == "0"


@pytest.mark.parametrize("opts,expect", [
    # See: issue 8 item 9
    ("wait_timeout=1e30", "`wait_timeout` must be between 0 and 86400 seconds, got 1e+30"),
    ("force_kill_after=-1", "`force_kill_after` must be between 0 and 86400 seconds, got -1.0"),
])
def test_adhoc_out_of_range_timeout_fails_clearly(adhoc, instance, opts, expect):
    rc, out = adhoc("creativeflow.redis.redis_service",
                    f"name={instance['name']} state=stopped config={instance['conf']} manager=direct {opts}")
    assert rc != 0, out
    assert result_of(out)["msg"] == expect, out
