"""The redis_sentinel role: preflight refusals change nothing; redis_sentinel_force_config re-renders
sentinel.conf only while the Sentinel is stopped.

Local connection, direct manager, every path under tmp_path, ports from free_port; the monitored
master is a real redis-server, the Sentinel a real redis-sentinel the role starts and the test
stops by pid.
"""
import os
import re
import signal
import socket
import time

import yaml

from redis_procs import free_port

CONF_TASK = "Render sentinel.conf when missing or forced"


def _vars(tmp_path, sentinel_port, master_port, **extra):
    role_vars = {
        "redis_sentinel_hosts": ["localhost"],
        "redis_sentinel_install": False,
        "redis_sentinel_packaged_service": "keep",
        "redis_sentinel_manager": "direct",
        "redis_sentinel_user": "",
        "redis_sentinel_group": "",
        "redis_sentinel_port": sentinel_port,
        "redis_sentinel_bind": "127.0.0.1",
        "redis_sentinel_config_dir": str(tmp_path / "etc"),
        "redis_sentinel_data_dir": str(tmp_path / "lib"),
        "redis_sentinel_log_dir": str(tmp_path / "log"),
        "redis_sentinel_run_dir": str(tmp_path / "run"),
        "redis_sentinel_wait_timeout": 10,
        "redis_sentinel_quorum": 1,
        "redis_sentinel_masters": [{"name": "mymaster", "host": "127.0.0.1", "port": master_port}],
    }
    role_vars.update(extra)
    return role_vars


def _play(role_vars):
    return yaml.safe_dump([{"hosts": "all", "gather_facts": False,
                            "roles": [{"role": "creativeflow.redis.redis_sentinel", "vars": role_vars}]}])


def _task_status(out, name):
    """ok/changed/failed/skipping of the role's task `name` in ansible-playbook's output."""
    m = re.search(r"TASK \[creativeflow\.redis\.redis_sentinel : " + re.escape(name)
                  + r"\] \**\n(ok|changed|fatal|skipping)", out)
    assert m, f"task {name!r} not in the output:\n{out}"
    return m.group(1)


def _pid(tmp_path):
    p = tmp_path / "run/sentinel-main.pid"
    return int(p.read_text().strip()) if p.exists() else None


def _stop(tmp_path):
    """Stops the Sentinel the role started, by the pid in its pidfile."""
    pid = _pid(tmp_path)
    if pid is None or not os.path.exists(f"/proc/{pid}"):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_quorum_larger_than_the_sentinel_hosts_fails_before_anything_is_written(playbook, redis_server, tmp_path):
    # See: issue 11 item 2
    master = redis_server()
    sp = free_port()
    rc, out = playbook(_play(_vars(tmp_path, sp, master.port, redis_sentinel_quorum=2)))
    assert rc != 0, out
    assert "redis_sentinel: quorum larger than the 1 Sentinel hosts (localhost): mymaster;" in out, out
    assert "Nothing was changed." in out, out
    # The preflight comes before the directories, sentinel.conf and the start.
    assert not (tmp_path / "etc").exists() and not (tmp_path / "run").exists(), out
    assert not _listening(sp), "a Sentinel was started"
    # One group's own quorum is checked too, not only the default.
    masters = [{"name": "mymaster", "host": "127.0.0.1", "port": master.port, "quorum": 3}]
    rc, out = playbook(_play(_vars(tmp_path, sp, master.port, redis_sentinel_masters=masters)))
    assert rc != 0 and "quorum larger than the 1 Sentinel hosts (localhost): mymaster;" in out, out
    assert not (tmp_path / "etc").exists() and not _listening(sp), out


def test_force_config_with_the_sentinel_running_fails_and_leaves_file_and_process_alone(
        playbook, redis_server, tmp_path):
    # See: issue 11 item 1
    master = redis_server()
    sp = free_port()
    conf = tmp_path / "etc/sentinel-main.conf"
    try:
        rc, out = playbook(_play(_vars(tmp_path, sp, master.port)))
        assert rc == 0, out
        pid = _pid(tmp_path)
        assert pid and os.path.exists(f"/proc/{pid}"), out
        before, stat = conf.read_bytes(), conf.stat()
        changed = _vars(tmp_path, sp, master.port, redis_sentinel_force_config=True,
                        redis_sentinel_down_after_milliseconds=7000)
        for extra in (["--check"], []):
            rc, out = playbook(_play(changed), *extra)
            assert rc != 0, out
            assert (f"redis_sentinel_force_config is true but Sentinel main runs (pid {pid}) from {conf}: "
                    "stop the Sentinel first, or leave redis_sentinel_force_config false: "
                    "a running Sentinel owns its file. Nothing was changed.") in out, out
            assert conf.read_bytes() == before, "sentinel.conf was written under a running Sentinel"
            assert conf.stat().st_mtime_ns == stat.st_mtime_ns and conf.stat().st_ino == stat.st_ino
            assert _pid(tmp_path) == pid and os.path.exists(f"/proc/{pid}"), "the Sentinel was touched"
        # The refusal comes before the first task that could change something.
        assert "TASK [creativeflow.redis.redis_sentinel : Directories]" not in out, out
        # Without force the same run is the usual one: the file is the Sentinel's, nothing changes.
        rc, out = playbook(_play(_vars(tmp_path, sp, master.port)))
        assert rc == 0 and "changed=0" in out, out
    finally:
        _stop(tmp_path)


def test_force_config_with_the_sentinel_stopped_renders_again_and_unchanged_settings_write_nothing(
        playbook, redis_server, tmp_path):
    # See: issue 11 item 1
    master = redis_server()
    sp = free_port()
    conf = tmp_path / "etc/sentinel-main.conf"
    try:
        rc, out = playbook(_play(_vars(tmp_path, sp, master.port)))
        assert rc == 0, out
        first = conf.read_text()
        myid = re.search(r"^sentinel myid (\w+)$", first, re.M)
        assert myid, first
        assert "sentinel down-after-milliseconds mymaster 5000" in first
        _stop(tmp_path)
        assert not _listening(sp)

        forced = _vars(tmp_path, sp, master.port, redis_sentinel_force_config=True,
                       redis_sentinel_down_after_milliseconds=7000)
        # Check mode predicts the change and writes nothing, starts nothing.
        stopped = conf.read_bytes()
        rc, out = playbook(_play(forced), "--check")
        assert rc == 0, out
        assert _task_status(out, CONF_TASK) == "changed", out
        assert conf.read_bytes() == stopped and not _listening(sp), out

        rc, out = playbook(_play(forced))
        assert rc == 0, out
        assert _task_status(out, CONF_TASK) == "changed", out
        text = conf.read_text()
        assert "sentinel down-after-milliseconds mymaster 7000" in text, text
        assert "sentinel down-after-milliseconds mymaster 5000" not in text, text
        # Sentinel's state block is kept: the same Sentinel, not a new one its peers must forget.
        assert f"sentinel myid {myid.group(1)}" in text, text
        assert _listening(sp), "the role did not start the Sentinel again"

        # Forced again with the same settings, on the file the Sentinel has rewritten since: nothing
        # to write (changed=0 for the file; the start of the stopped Sentinel is the only change).
        _stop(tmp_path)
        rewritten = conf.read_bytes()
        rc, out = playbook(_play(forced), "--check")
        assert rc == 0 and _task_status(out, CONF_TASK) == "ok", out
        assert conf.read_bytes() == rewritten
        rc, out = playbook(_play(forced))
        assert rc == 0, out
        assert _task_status(out, CONF_TASK) == "ok", out
        assert _task_status(out, "Sentinel running: main") == "changed", out
        assert "changed=1" in out, out
        # The Sentinel started again may rewrite its own file; it is still the same Sentinel.
        assert f"sentinel myid {myid.group(1)}" in conf.read_text()

        # And the usual run (Sentinel running, no force) changes nothing.
        rc, out = playbook(_play(_vars(tmp_path, sp, master.port, redis_sentinel_down_after_milliseconds=7000)))
        assert rc == 0 and "changed=0" in out, out
    finally:
        _stop(tmp_path)
