"""Hostile surroundings a module must survive without harming anything (counted as bad input).

- redis_service with a pidfile that names a process it does not own: a `sleep` of ours, or the
  redis-server of another instance. Nothing may be signalled, whatever the state asked.
- pidfile contents that are dangerous pids (-1, 0, 1, a huge number), run inside a private PID
  namespace so that a wrong kill() can only reach the module itself.
- unknown users and groups, and `~user` paths, with an nsswitch.conf that names a second NSS
  module (as on systemd hosts), bind-mounted over /etc/nsswitch.conf in a private mount namespace
  (the host's file is never touched): a static binary must answer with JSON, not SIGSEGV.
"""
import os
import shutil
import subprocess
import time

import pytest

import harness
from harness import short

pytestmark = pytest.mark.family("bad-input")

PW = "Hostile-Secret-8"


def _conf(workdir, name="inst"):
    port = harness.free_port()
    conf = workdir / f"{name}.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir}/{name}.log\n"
                    f"save \"\"\nappendonly no\nrequirepass {PW}\n")
    return conf, port


def _cleanup(workdir, port):
    for pid in harness.listening_pids(port) | set(harness.redis_pids_for(f"127.0.0.1:{port}")):
        harness.kill_redis_pid(pid)


@pytest.mark.parametrize("state", ["stopped", "restarted", "started", "status"])
def test_pidfile_names_a_process_not_ours(state, mods, workdir):
    conf, port = _conf(workdir)
    victim = subprocess.Popen(["sleep", "120"], start_new_session=True)
    pidfile = workdir / "inst.pid"
    pidfile.write_text(f"{victim.pid}\n")
    try:
        r = harness.run_module("redis_service", {"name": "hostile", "state": state, "config": str(conf),
                                                 "pidfile": str(pidfile), "manager": "direct", "wait_timeout": 10,
                                                 "login_password": PW}, workdir)
        time.sleep(0.1)
        problems = r.contract_problems()
        if victim.poll() is not None:
            problems.append(f"the module signalled pid {victim.pid} (a `sleep`, not Redis): it exited with "
                            f"{victim.returncode}; result {short(r.result, 400)}")
        if problems:
            pytest.fail("\n  ".join(problems), pytrace=False)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()
        _cleanup(workdir, port)


@pytest.mark.parametrize("state", ["stopped", "restarted", "status"])
def test_pidfile_names_another_instance(state, mods, workdir, shared_server):
    """The pid in the pidfile is a real redis-server, but of another instance (another port and
    config): stopping "this" instance must not touch it."""
    conf, port = _conf(workdir)
    pidfile = workdir / "inst.pid"
    pidfile.write_text(f"{shared_server.pid}\n")
    before = shared_server.state()
    try:
        r = harness.run_module("redis_service", {"name": "hostile", "state": state, "config": str(conf),
                                                 "pidfile": str(pidfile), "manager": "direct", "wait_timeout": 10,
                                                 "login_password": PW}, workdir)
        after = shared_server.state()
        problems = r.contract_problems()
        if after != before:
            problems.append(f"the other instance (pid {shared_server.pid}) changed: alive {after.get('alive')}, "
                            f"pid {after.get('pid')}; result {short(r.result, 400)}")
            shared_server.restart()
        if problems:
            pytest.fail("\n  ".join(problems), pytrace=False)
    finally:
        _cleanup(workdir, port)


def _pidns():
    """`unshare` prefix for a private PID namespace (and its own /proc), or None."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return ["unshare", "--pid", "--fork", "--mount-proc"] if p.returncode == 0 else None


@pytest.mark.parametrize("content", ["-1", "0", "1", "4294967296", "99999999999999999999", "-2147483648",
                                     " 1 \n", "abc", ""])
@pytest.mark.parametrize("state", ["stopped", "restarted"])
def test_dangerous_pid_in_pidfile(content, state, mods, workdir):
    wrapper = _pidns()
    if wrapper is None:
        pytest.skip("needs a private PID namespace (root and unshare) so that a wrong kill() harms nothing")
    conf, port = _conf(workdir)
    pidfile = workdir / "inst.pid"
    pidfile.write_text(content)
    # A sleep inside the same namespace: kill(-1) or kill(0) from the module would reach it.
    # (kill -0 would not do: a killed sleep stays a zombie, which kill -0 still finds.)
    script = ('sleep 60 & s=$!; "$@"; rc=$?; st=$(sed "s/.*) //" /proc/$s/stat 2>/dev/null | cut -c1); '
              'if [ "$st" = S ] || [ "$st" = R ]; then kill $s; else echo SLEEP-KILLED >&2; fi; exit $rc')
    try:
        r = harness.run_module("redis_service", {"name": "hostile", "state": state, "config": str(conf),
                                                 "pidfile": str(pidfile), "manager": "direct", "wait_timeout": 10,
                                                 "login_password": PW}, workdir,
                               wrapper=[*wrapper, "sh", "-c", script, "sh"])
        problems = r.contract_problems()
        if b"SLEEP-KILLED" in r.stderr:
            problems.append(f"pidfile {content!r}: the module signalled a process that is not its instance")
        if problems:
            pytest.fail("\n  ".join(problems), pytrace=False)
    finally:
        _cleanup(workdir, port)


NSSWITCH = "passwd: files systemd\ngroup: files systemd\nshadow: files\nhosts: files\n"


def _nss_wrapper(workdir):
    """Runs the command with a private mount namespace whose /etc/nsswitch.conf names systemd."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/etc/nsswitch.conf"):
        return None
    fake = workdir.parent / f"{workdir.name}-nsswitch.conf"
    fake.write_text(NSSWITCH)
    script = f'mount --bind "{fake}" /etc/nsswitch.conf && exec "$@"'
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


NSS_CASES = [
    ("redis_config", "owner", {"path": "@@TMP@@/r.conf", "owner": "nosuchuser_rel_q"}, True),
    ("redis_config", "group", {"path": "@@TMP@@/r.conf", "group": "nosuchgroup_rel_q"}, True),
    ("redis_config", "owner-root", {"path": "@@TMP@@/r.conf", "owner": "root", "group": "root"}, False),
    ("redis_config", "path-tilde-unknown", {"path": "~nosuchuser_rel_q/r.conf"}, True),
    ("redis_config", "src-tilde-unknown", {"path": "@@TMP@@/r.conf", "src": "~nosuchuser_rel_q/t.j2"}, True),
    ("redis_service", "user", {"name": "nss", "state": "started", "config": "@@TMP@@/inst.conf",
                               "manager": "direct", "user": "nosuchuser_rel_q", "wait_timeout": 5}, True),
    ("redis_service", "group", {"name": "nss", "state": "started", "config": "@@TMP@@/inst.conf",
                                "manager": "direct", "group": "nosuchgroup_rel_q", "wait_timeout": 5}, True),
    ("redis_service", "binary-tilde", {"name": "nss", "state": "status", "config": "@@TMP@@/inst.conf",
                                       "manager": "direct", "binary": "~nosuchuser_rel_q/redis-server"}, None),
    ("redis_health", "ca_certs-tilde", {"login_host": "127.0.0.1", "login_port": 1,
                                        "ca_certs": "~nosuchuser_rel_q/ca.pem"}, True),
]


@pytest.mark.parametrize("module,label,args,must_fail", NSS_CASES, ids=[f"{m}:{l}" for m, l, _, _ in NSS_CASES])
def test_accounts_with_nss_modules(module, label, args, must_fail, mods, workdir):
    wrapper = _nss_wrapper(workdir)
    if wrapper is None:
        pytest.skip("needs root and unshare to bind-mount an nsswitch.conf in a private mount namespace")
    conf, port = _conf(workdir)
    try:
        r = harness.run_module(module, harness.tokens_replaced(args, {"@@TMP@@": str(workdir)}), workdir,
                               wrapper=wrapper)
        problems = r.contract_problems()
        if must_fail and r.result is not None and not r.failed:
            problems.append(f"accepted: {short(r.result, 400)}")
        if must_fail is False and r.failed:
            problems.append(f"a valid account was refused: {short(r.result, 400)}")
        if problems:
            pytest.fail("\n  ".join(problems), pytrace=False)
    finally:
        _cleanup(workdir, port)
        (workdir / "r.conf").unlink(missing_ok=True)
