"""Idempotence and check prediction: for a handful of valid configurations per module, run
--check, then for real, then for real again. Check's `changed` must equal the real run's, check
mode must change nothing (files and servers), and the second real run must report no change.

A module with no configuration here gets one derived from its spec (cases.generic_base); if that
does not run, the case fails and names the module, so that a new module gets its configurations.
"""
import getpass
import grp
import os

import pytest

import cases as casegen
import harness
from harness import Server, short

pytestmark = pytest.mark.family("idempotence")

PW = "Idem-Secret-5d1"


def _config(name, **kw):
    return dict({"path": "@@TMP@@/redis.conf"}, **kw)


REDIS_CONFIG = {
    "defaults": _config("d", settings={"port": 7001}),
    "profile-persistent": _config("p", profile="persistent",
                                  settings={"port": 7002, "bind": ["127.0.0.1", "::1"], "maxmemory": "4gb",
                                            "save": ["900 1", "300 10"]}),
    "acl-users": _config("a", settings={"port": 7003, "requirepass": PW, "rename-command": ['FLUSHALL ""'],
                                        "user": ["default on >" + PW + " ~* &* +@all", "app on >App-Pw-1 ~app:* +@read"]}),
    "owner-group-symbolic-mode": _config("o", settings={"port": 7004}, owner=getpass.getuser(),
                                         group=grp.getgrgid(os.getgid()).gr_name, mode="u=rw,g=r,o="),
    "mode-0600-backup": _config("b", settings={"port": 7005, "maxmemory-policy": "allkeys-lru"}, mode="0600",
                                backup=True),
    "sentinel": {"path": "@@TMP@@/sentinel.conf", "template": "sentinel", "settings": {"port": 26390},
                 "monitors": [{"name": "m1", "host": "127.0.0.1", "port": 7010, "quorum": 2, "auth_pass": PW,
                               "down_after_milliseconds": 5000},
                              {"name": "m2", "host": "127.0.0.1", "port": 7011, "quorum": 1}]},
    "placeholders": {"path": "@@TMP@@/legacy.conf", "src": "@@TMP@@/legacy.in", "placeholders": True,
                     "settings": {"port": 7006, "maxmemory": "1gb"}},
    "custom-template": {"path": "@@TMP@@/custom.conf", "src": "@@TMP@@/custom.j2",
                        "settings": {"port": 7007, "maxmemory": "2gb"}},
}
FILES = {"legacy.in": "bind 127.0.0.1\nport ##PORT##\nmaxmemory ##MAXMEMORY##\n",
         "custom.j2": "bind 127.0.0.1\nport {{ redis_settings['port'] }}\nmaxmemory {{ redis_settings['maxmemory'] }}\n"}


def _cases():
    out = [("redis_config", k) for k in REDIS_CONFIG]
    out += [("redis_config", "live"), ("redis_service", "started-stopped"), ("redis_service", "status"),
            ("redis_service", "restarted"), ("redis_health", "default-checks"), ("redis_health", "all-checks"),
            ("redis_sentinel", "present-absent"), ("redis_cluster", "present-check"),
            ("redis_lua_script", "functions-present-absent"), ("redis_lua_script", "script-cache"),
            ("redis_command", "reads-and-changed-never"), ("redis_keys", "list-and-delete")]
    known = {m for m, _ in out}
    out += [(m, "generic") for m in sorted(harness.modules()) if m not in known]
    return [c for c in out if c[0] in harness.modules()] or [("none", "no-modules")]


CASES = _cases()


def run_cycle(name, args, workdir, servers=(), expect_first=None, twice=True):
    """--check, real, real; returns a list of problems."""
    problems = []

    def state():
        return harness.snapshot_dir(workdir), [s.state() for s in servers]

    before = state()
    check = harness.run_module(name, args, workdir, check=True)
    after_check = state()
    real = harness.run_module(name, args, workdir)
    again = harness.run_module(name, args, workdir) if twice else None
    for label, r in (("check", check), ("real", real), ("second real", again)):
        if r is None:
            continue
        p = r.contract_problems()
        if p or r.failed:
            problems.append(f"{label} run: {'; '.join(p) or short(r.result, 700)}")
    if problems:
        return problems
    if after_check != before:
        problems.append("check mode changed something: "
                        + ", ".join(harness.diff_snapshots(before[0], after_check[0]) or ["a server's state"]))
    if check.result.get("changed") != real.result.get("changed"):
        problems.append(f"check predicted changed={check.result.get('changed')}, the real run reported "
                        f"{real.result.get('changed')}")
    if expect_first is not None and real.result.get("changed") is not expect_first:
        problems.append(f"first real run changed={real.result.get('changed')}, expected {expect_first}")
    if again is not None and again.result.get("changed") is not False:
        problems.append(f"second real run changed={again.result.get('changed')}: {short(again.result, 500)}")
    return problems


@pytest.mark.parametrize("module,label", CASES, ids=[f"{m}:{l}" for m, l in CASES])
def test_idempotent(module, label, mods, workdir, request):
    problems = []
    tok = {"@@TMP@@": str(workdir)}
    if module == "redis_config" and label in REDIS_CONFIG:
        for f, text in FILES.items():
            (workdir / f).write_text(text)
        args = harness.tokens_replaced(REDIS_CONFIG[label], tok)
        problems = run_cycle(module, args, workdir, expect_first=True)
    elif module == "redis_config" and label == "live":
        with Server(password=PW) as s:
            args = {"path": str(workdir / "live.conf"), "apply": "live", "login_host": "127.0.0.1",
                    "login_port": s.port, "login_password": PW,
                    "settings": {"port": s.port, "dir": str(s.dir), "requirepass": PW, "maxmemory": "32mb",
                                 "maxmemory-policy": "allkeys-lru", "notify-keyspace-events": "Ex"}}
            problems = run_cycle(module, args, workdir, servers=[s], expect_first=True)
            if not problems and s.client().config_get("maxmemory").get("maxmemory") != str(32 * 1024 * 1024):
                problems.append("the live run did not apply maxmemory")
    elif module == "redis_service":
        problems = _service(label, workdir)
    elif module == "redis_health":
        s = request.getfixturevalue("shared_server")
        args = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": s.password}
        if label == "all-checks":
            args["checks"] = ["ping", "info", "memory", "persistence", "replication", "clients", "keyspace",
                              "pubsub"]
        problems = run_cycle(module, args, workdir, servers=[s], expect_first=False)
    elif module == "redis_sentinel":
        problems = _sentinel(workdir)
    elif module == "redis_cluster":
        problems = _cluster(workdir)
    elif module == "redis_lua_script":
        problems = _lua_script(label, workdir)
    elif module == "redis_command":
        problems = _command(workdir)
    elif module == "redis_keys":
        problems = _keys(workdir)
    elif module == "none":
        pytest.fail(f"no binary modules in {harness.MODULES_DIR}: run `make collection` first", pytrace=False)
    else:
        problems = _generic(module, workdir, request)
    if problems:
        pytest.fail(f"{module}:{label}:\n  " + "\n  ".join(problems), pytrace=False)


def _instance(workdir, name):
    port = harness.free_port()
    conf = workdir / f"{name}.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir}/{name}.log\n"
                    f"pidfile {workdir}/{name}.pid\nsave \"\"\nappendonly no\nrequirepass {PW}\n")
    return conf, port


def _service(label, workdir):
    conf, port = _instance(workdir, "svc")
    base = {"name": "idem", "config": str(conf), "manager": "direct", "wait_timeout": 15, "login_password": PW}
    problems = []
    try:
        if label == "started-stopped":
            problems += [f"started: {p}" for p in run_cycle("redis_service", dict(base, state="started"), workdir,
                                                             expect_first=True)]
            pids = harness.listening_pids(port)
            if len(pids) != 1:
                problems.append(f"after state=started, {len(pids)} processes listen on {port}: {sorted(pids)}")
            problems += [f"stopped: {p}" for p in run_cycle("redis_service", dict(base, state="stopped"), workdir,
                                                             expect_first=True)]
            if harness.listening_pids(port):
                problems.append(f"after state=stopped, something still listens on {port}")
        elif label == "status":
            r = harness.run_module("redis_service", dict(base, state="started"), workdir)
            if r.failed or r.contract_problems():
                return [f"could not start the instance: {short(r.result, 600)}"]
            problems += run_cycle("redis_service", dict(base, state="status"), workdir, expect_first=False)
        elif label == "restarted":
            # restarted always restarts: check must predict it, and no second-run rule applies.
            r = harness.run_module("redis_service", dict(base, state="started"), workdir)
            if r.failed or r.contract_problems():
                return [f"could not start the instance: {short(r.result, 600)}"]
            old_pid = r.result.get("pid")
            problems += run_cycle("redis_service", dict(base, state="restarted"), workdir, expect_first=True,
                                  twice=False)
            new = harness.listening_pids(port)
            if old_pid in new or len(new) != 1:
                problems.append(f"after restarted: listening pids {sorted(new)}, old pid {old_pid}")
    finally:
        for pid in harness.listening_pids(port) | set(harness.redis_pids_for(str(workdir))):
            harness.kill_redis_pid(pid)
    return problems


def _sentinel(workdir):
    with Server(password=PW) as master, Server(password="Idem-Sentinel-4", binary="redis-sentinel") as sen:
        conn = {"login_host": "127.0.0.1", "login_port": sen.port, "login_password": sen.password}
        mon = {"name": "idem-m", "host": "127.0.0.1", "port": master.port, "quorum": 1, "auth_pass": PW,
               "down_after_milliseconds": 5000}
        problems = [f"present: {p}" for p in run_cycle("redis_sentinel", dict(conn, monitors=[mon]), workdir,
                                                       servers=[master], expect_first=True)]
        problems += [f"absent: {p}" for p in run_cycle("redis_sentinel", dict(conn, name="idem-m", state="absent"),
                                                       workdir, servers=[master], expect_first=True)]
        return problems


def _cluster(workdir):
    extra = ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
             "repl-diskless-sync-delay 0"]
    nodes = [Server(password=PW, extra=extra) for _ in range(3)]
    try:
        args = {"nodes": [f"127.0.0.1:{n.port}" for n in nodes], "replicas": 0, "login_password": PW,
                "wait_timeout": 30}
        problems = [f"present: {p}" for p in run_cycle("redis_cluster", args, workdir, expect_first=True)]
        check = {"state": "check", "login_host": "127.0.0.1", "login_port": nodes[0].port, "login_password": PW}
        problems += [f"check: {p}" for p in run_cycle("redis_cluster", check, workdir, expect_first=False)]
        return problems
    finally:
        for n in nodes:
            n.stop()


def _lua_loaded(server):
    """The libraries and the cached scripts: what Server.state() does not look at."""
    c = server.client()
    libs = []
    for lib in c.function_list(withcode=True):
        fields = dict(zip(lib[::2], lib[1::2])) if isinstance(lib, list) else lib
        libs.append((fields["library_name"], fields["library_code"]))
    return sorted(libs), c.info("memory").get("number_of_cached_scripts")


def _lua_script(label, workdir):
    # A server of its own: the shared one would keep the libraries from one case to the next.
    with Server(password=PW) as s:
        conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW}
        problems = []

        def cycle(tag, args, expect_first):
            before = _lua_loaded(s)
            check = harness.run_module("redis_lua_script", args, workdir, check=True)
            if _lua_loaded(s) != before:
                problems.append(f"{tag}: check mode loaded or removed Lua code")
            if check.failed:
                problems.append(f"{tag}: check run: {short(check.result, 700)}")
            problems.extend(f"{tag}: {p}" for p in run_cycle("redis_lua_script", args, workdir, servers=[s],
                                                             expect_first=expect_first))
        if label == "functions-present-absent":
            cycle("present", dict(conn, builtin="rate_limiter"), True)
            if not problems and [n for n, _ in _lua_loaded(s)[0]] != ["ratelimit"]:
                problems.append(f"after present: libraries {_lua_loaded(s)[0]}")
            cycle("replace, same code", dict(conn, builtin="rate_limiter", replace=True), False)
            cycle("absent", dict(conn, name="ratelimit", state="absent"), True)
            if not problems and _lua_loaded(s)[0]:
                problems.append(f"after absent: libraries {_lua_loaded(s)[0]}")
        else:
            cycle("script", dict(conn, builtin="session_operations", mode="script"), True)
            if not problems and _lua_loaded(s)[1] != 1:
                problems.append(f"after mode=script: {_lua_loaded(s)[1]} cached scripts, expected 1")
        return problems


def _command(workdir):
    """Reads never change anything; a write is changed on every run by nature (auto), so the
    write here is one declared `changed: never`. Check mode sends no write: the key's TTL stays."""
    with Server(password=PW) as s:
        c = s.client()
        c.set("lock:idem", "x")
        conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW}
        problems = []
        for tag, command, extra in (("ping", ["PING"], {}), ("get", ["GET", "lock:idem"], {}),
                                    ("config get", ["CONFIG", "GET", "maxmemory"], {}),
                                    ("pexpire changed=never", ["PEXPIRE", "lock:idem", "30000"], {"changed": "never"})):
            problems += [f"{tag}: {p}" for p in run_cycle("redis_command", dict(conn, command=command, **extra), workdir,
                                                          servers=[s], expect_first=False)]
        if not problems and c.pttl("lock:idem") <= 0:
            problems.append("the real PEXPIRE runs did not set the TTL")
        return problems


def _keys(workdir):
    with Server(password=PW) as s:
        c = s.client()
        for i in range(50):
            c.set(f"session:idem:{i}", "v")
        c.set("session:other:1", "v")
        conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": PW}
        problems = [f"list: {p}" for p in run_cycle("redis_keys", dict(conn, pattern="session:idem:*"), workdir,
                                                    servers=[s], expect_first=False)]
        if c.dbsize() != 51:
            problems.append(f"listing changed the keys: dbsize {c.dbsize()}")
        # run_cycle's check run must delete nothing: its snapshot's dbsize would differ.
        problems += [f"delete: {p}" for p in run_cycle("redis_keys", dict(conn, pattern="session:idem:*",
                                                                          state="absent", batch_size=7),
                                                      workdir, servers=[s], expect_first=True)]
        if not problems and sorted(c.keys("*")) != ["session:other:1"]:
            problems.append(f"after the delete: keys {sorted(c.keys('*'))}")
        return problems


def _generic(module, workdir, request):
    spec = harness.modules()[module]["spec"]
    base = casegen.generic_base(module, spec)[0]
    servers = []
    tok = {"@@TMP@@": str(workdir)}
    if base.server:
        s = request.getfixturevalue("shared_sentinel" if base.sentinel else "shared_server")
        tok.update({"@@PORT@@": s.port, "@@PW@@": s.password, "@@SPORT@@": s.port, "@@SPW@@": s.password})
        servers.append(s)
    for f, text in base.files.items():
        (workdir / f).write_text(text)
    problems = run_cycle(module, harness.tokens_replaced(base.args, tok), workdir, servers=servers)
    if problems:
        problems.insert(0, f"no configuration for {module} in tests/reliability/test_idempotence.py, and the one "
                           f"derived from its spec does not run: add a few valid ones")
    return problems
