"""Injection matrix for redis_config: CR, LF, CRLF and NUL, each carrying an ACL rule that would
open the server to anyone, through every string-ish input that reaches redis.conf or a Redis
command: settings values, list items and keys, ##KEY## placeholders, variables of a custom Jinja
template, sentinel monitors fields, and CONFIG SET with apply=live.

Every case must fail with a msg and leave the existing file byte for byte (and, for apply=live,
the running server's config and ACL users) as they were. For a few cases a real redis-server runs
from the old file and is restarted from it afterwards: it must still ask for its password.
"""
import os

import pytest

import harness
from harness import PAYLOAD, SEPARATORS, short

pytestmark = pytest.mark.family("injection")

OLD = ("# existing config\nport 7000\nbind 127.0.0.1\nrequirepass Inj-Old-Secret-2\n"
       "maxmemory 16mb\nuser default on >Inj-Old-Secret-2 ~* &* +@all\n")
BASE_SETTINGS = {"port": 7001, "requirepass": "Inj-New-Secret-1", "maxmemory": "64mb"}

SCALARS = ["maxmemory", "requirepass", "masterauth", "masteruser", "dir", "logfile", "dbfilename", "pidfile",
           "notify-keyspace-events", "bind", "replicaof", "unixsocket", "maxmemory-policy", "port",
           "some-future-directive"]
LISTS = {"save": "3600 1", "rename-command": "FLUSHALL \"\"", "user": "app on >App-Pw-4 ~app:* +@all",
         "bind": "127.0.0.1", "include": "/etc/redis/common.conf", "loadmodule": "/usr/lib/redis/m.so",
         "client-output-buffer-limit": "normal 0 0 0"}
MONITOR = {"name": "m1", "host": "127.0.0.1", "port": 7002, "quorum": 1, "auth_user": "sent",
           "auth_pass": "Inj-Mon-Secret-3"}
CUSTOM_REDIS = "port {{ redis_settings['port'] }}\nmaxmemory {{ redis_settings['maxmemory'] }}\n"
CUSTOM_SENTINEL = ("port 26390\n{% for m in sentinel_monitors %}sentinel monitor {{ m.name }} {{ m.host }} "
                   "{{ m.port }} {{ m.quorum }}\n{% endfor %}")
LIVE_TARGETS = ["maxmemory-policy", "notify-keyspace-events", "maxmemory", "user"]


def inject(value, sep, where):
    return f"{value}{sep}{PAYLOAD}" if where == "mid" else f"{sep}{PAYLOAD}"


def _cases():
    out = []
    for sep_name, sep in SEPARATORS.items():
        for where in ("mid", "lead"):
            for validate in (True, False):
                tag = f"{sep_name}-{where}-validate={'yes' if validate else 'no'}"

                def add(label, args, files=None, restart=False):
                    a = {"path": "@@TMP@@/redis.conf", "validate": validate, "allow_insecure": True}
                    a.update(args)
                    out.append({"id": f"{label}:{tag}", "args": a, "files": files or {},
                                "restart": restart and where == "mid" and validate is False})

                for key in SCALARS:
                    add(f"settings.{key}", {"settings": dict(BASE_SETTINGS, **{key: inject("x", sep, where)})},
                        restart=key == "maxmemory")
                for key, good in LISTS.items():
                    add(f"settings.{key}[1]",
                        {"settings": dict(BASE_SETTINGS, **{key: [good, inject(good, sep, where)]})},
                        restart=key == "user")
                add("settings.key", {"settings": dict(BASE_SETTINGS, **{inject("maxmemory", sep, where): "1gb"})})
                add("settings.key-sentinel", {"template": "sentinel", "monitors": [MONITOR],
                                              "settings": {inject("sentinel resolve-hostnames", sep, where): True}})
                add("settings.sentinel-announce-ip",
                    {"template": "sentinel", "monitors": [MONITOR],
                     "settings": {"sentinel announce-ip": inject("10.0.0.9", sep, where)}})
                add("placeholders.##MAXMEMORY##",
                    {"src": "@@TMP@@/legacy.conf.in", "placeholders": True,
                     "settings": {"port": 7001, "maxmemory": inject("1gb", sep, where)}},
                    files={"legacy.conf.in": "port ##PORT##\nmaxmemory ##MAXMEMORY##\n"})
                add("template-var.redis_settings",
                    {"src": "@@TMP@@/custom.j2", "settings": dict(BASE_SETTINGS, maxmemory=inject("1gb", sep, where))},
                    files={"custom.j2": CUSTOM_REDIS})
                add("template-var.redis_settings-port",
                    {"src": "@@TMP@@/custom.j2", "settings": dict(BASE_SETTINGS, port=inject("7001", sep, where))},
                    files={"custom.j2": CUSTOM_REDIS})
                for field in ("name", "host"):
                    add(f"template-var.sentinel_monitors.{field}",
                        {"src": "@@TMP@@/custom-sentinel.j2", "template": "sentinel",
                         "monitors": [dict(MONITOR, **{field: inject(MONITOR[field], sep, where)})]},
                        files={"custom-sentinel.j2": CUSTOM_SENTINEL})
                for field in ("name", "host", "auth_user", "auth_pass"):
                    add(f"monitors[0].{field}",
                        {"template": "sentinel", "path": "@@TMP@@/redis.conf",
                         "monitors": [dict(MONITOR, **{field: inject(MONITOR[field], sep, where)})]})
        for key in LIVE_TARGETS:
            good = LISTS.get(key) or {"maxmemory-policy": "allkeys-lru", "notify-keyspace-events": "Ex",
                                      "maxmemory": "32mb"}[key]
            value = [good, f"{good}{sep}{PAYLOAD}"] if key == "user" else f"{good}{sep}{PAYLOAD}"
            out.append({"id": f"live.{key}:{sep_name}", "live": True, "files": {}, "restart": False,
                        "args": {"path": "@@TMP@@/redis.conf", "apply": "live", "login_host": "127.0.0.1",
                                 "login_port": "@@PORT@@", "login_password": "@@PW@@",
                                 "settings": {"port": "@@PORT@@", "dir": "@@SERVERDIR@@", "requirepass": "@@PW@@",
                                              key: value}}})
    return out


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_injection(case, mods, workdir, request):
    conf = workdir / "redis.conf"
    server = None
    tok = {"@@TMP@@": str(workdir)}
    if case.get("live"):
        server = request.getfixturevalue("shared_server")
        tok.update({"@@PORT@@": server.port, "@@PW@@": server.password, "@@SERVERDIR@@": str(server.dir)})
        old = OLD.replace("port 7000", f"port {server.port}")
    elif case["restart"]:
        # A real server reads the old file; after the run it restarts from whatever is there.
        port = harness.free_port()
        old = OLD.replace("port 7000", f"port {port}") + f"dir {workdir}\nsave \"\"\n"
    else:
        old = OLD
    conf.write_text(old)
    os.chmod(conf, 0o640)
    for name, text in case["files"].items():
        (workdir / name).write_text(text)
    own = None
    if case["restart"]:
        own = _OwnServer(conf, port)
    try:
        before = harness.snapshot_dir(workdir)
        srv_before = server.state() if server else None
        run = harness.run_module("redis_config", harness.tokens_replaced(case["args"], tok), workdir)
        problems = run.contract_problems()
        if run.result is not None and not run.failed:
            problems.append(f"accepted an injection: {short(run.result, 500)}")
        changed = harness.diff_snapshots(before, harness.snapshot_dir(workdir))
        if changed:
            problems.append(f"files changed: {', '.join(changed)}; redis.conf now:\n{conf.read_text()[:800]}")
        if server is not None:
            srv_after = server.state()
            if srv_after != srv_before:
                problems.append(f"server changed: {srv_before} -> {srv_after}")
                server.restart()
        if own is not None:
            own.restart()
            if not own.requires_password():
                problems.append("after a restart from the file, the server no longer asks for a password")
        if problems:
            pytest.fail(f"{case['id']}:\n  " + "\n  ".join(problems), pytrace=False)
    finally:
        if own is not None:
            own.stop()


class _OwnServer:
    """redis-server started from the case's own config file (the one the module may rewrite)."""

    def __init__(self, conf, port):
        import subprocess
        import threading
        self.conf, self.port, self.sp, self.th = conf, port, subprocess, threading
        self.start()

    def start(self):
        self.proc = self.sp.Popen(["redis-server", str(self.conf)], stdout=self.sp.DEVNULL,
                                  stderr=self.sp.DEVNULL, start_new_session=True)
        self.th.Thread(target=self.proc.wait, daemon=True).start()
        if not harness.port_answers(self.port):
            raise RuntimeError(f"redis-server did not start from {self.conf}:\n{self.conf.read_text()[:800]}")

    def restart(self):
        self.stop()
        self.start()

    def requires_password(self):
        """PING without AUTH answers -NOAUTH; and the injected `default nopass` rule must not
        have made the default user usable either (AUTH default with any password)."""
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            first = s.recv(128)
            s.sendall(b"AUTH default anything-at-all\r\n")
            second = s.recv(128)
        return first.startswith(b"-NOAUTH") and second.startswith(b"-WRONGPASS")

    def stop(self):
        harness.kill_redis_pid(self.proc.pid)
        try:
            self.proc.wait(5)
        except self.sp.TimeoutExpired:
            pass
