"""Secret audit: no secret leaves a module, in any form, on any path.

Secrets come in six forms: a plain string, a YAML integer, and strings with quotes, spaces, `$`
and backslashes. Each form has a core token that survives any escaping (JSON, Python repr,
redis.conf quoting), and the audit looks for the raw value, its str() and the core.

1. Direct: every module (as found in the collection), every no_log option set to the secret
   (and, for redis_config, the secret directives of settings and the old file's password), on a
   success path that must succeed and two failure paths that must fail (validation, runtime), in
   check and in real mode, diff on, verbosity 4: stdout and stderr must not hold it.
2. Through Ansible: one playbook per mode (`-vvvv --check --diff`, and a real run `-vvvv
   --diff`) with a task per module and state (success and failure paths), secrets given as
   variables from `-e @vars.yml`, and `ansible` ad hoc for each module: no output holds a secret,
   nor do the registered results.

Every secret form has its own servers, the secret being their password: a redis-server, a
redis-sentinel monitoring it as `relm` (auth-pass the secret too), and an ACL user on every node
of one three-master cluster (formed once with `redis-cli --cluster create`). So redis_sentinel
and redis_cluster reach their success paths (a Sentinel and a cluster that answer), and the
modules that go through a Sentinel (`master_name`) meet the secret as `sentinel_password` too.
A module needs a success base here (or in cases.BASES) and success tasks in `_tasks`:
test_coverage.py fails for one that has neither.
3. Keys stay keys: with the passwords `redis`, `a` and `changed`, registered results keep
   `redis_version`, `failed`, `changed` and no key is masked.
"""
import json
import os
import subprocess

import pytest
import yaml

import harness
from harness import Server, short

pytestmark = pytest.mark.family("secret-audit")

FORMS = {
    "str": ("RelStrK7f3a-secret", "RelStrK7f3a"),
    "int": (88127364519, "88127364519"),
    "quotes": ("q\"uo'te-RelQtK91", "RelQtK91"),
    "spaces": ("sp ace RelSpK42 x", "RelSpK42"),
    "dollar": ("dol$lar$HOME-RelDlK55${X}", "RelDlK55"),
    "backslash": ("back\\slash\\n-RelBsK66\\", "RelBsK66"),
}
# The password of the file being replaced: it must not leak either (in the diff's "before").
OLD = {
    "str": ("RelStrOld1-secret", "RelStrOld1"),
    "int": (99127364518, "99127364518"),
    "quotes": ("o\"ld'-RelQtOld2", "RelQtOld2"),
    "spaces": ("o ld RelSpOld3 y", "RelSpOld3"),
    "dollar": ("$old-RelDlOld4$", "RelDlOld4"),
    "backslash": ("o\\ld-RelBsOld5\\", "RelBsOld5"),
}
KEY_PASSWORDS = ["redis", "a", "changed"]
KNOWN = ("redis_config", "redis_health", "redis_service")
# Modules whose playbook tasks are written out in _tasks (not derived from the spec).
EXPLICIT = ("redis_cluster", "redis_command", "redis_keys", "redis_lua_script", "redis_sentinel")
# The cluster's default user (the nodes' own traffic); each form logs in as its own ACL user.
CLUSTER_PW = "Rel-Cluster-Pw-4b8"


def cluster_user(form):
    return "rel_" + form.replace("-", "_")


def needles(form):
    value, core = FORMS[form]
    old, old_core = OLD[form]
    return {str(value), core, str(old), old_core}


def all_needles():
    out = {}
    for f in FORMS:
        for n in needles(f):
            out[n] = f
    return out


def find_leaks(text):
    return sorted({f"{form} ({n!r})" for n, form in all_needles().items() if n in text})


@pytest.fixture(scope="module")
def form_servers():
    """Per secret form: a redis-server whose password is the secret (`form`), and a
    redis-sentinel whose own password is the secret too, monitoring that server as `relm` with
    the secret as auth-pass (`sentinel-<form>`; also as `rellife`, which the playbook's
    redis_sentinel lifecycle removes and adds while other runs read `relm`); one three-master
    cluster (`cluster`) where each form logs in as its own ACL user (cluster_user) with the
    secret as password; three servers with the passwords that must not corrupt result keys
    (`key-<password>`). All stopped by pid at the end, also when one of them fails to start."""
    servers = {}
    try:
        for f, (v, _) in FORMS.items():
            servers[f] = Server(password=str(v))
            servers[f"sentinel-{f}"] = harness.sentinel_for(servers[f], str(v), names=("relm", "rellife"))
        for p in KEY_PASSWORDS:
            servers[f"key-{p}"] = Server(password=p)
        servers["cluster"] = harness.Cluster(CLUSTER_PW)
        for f, (v, _) in FORMS.items():
            servers["cluster"].add_user(cluster_user(f), str(v))
        yield servers
    finally:
        for s in servers.values():
            s.stop()


# ---------------------------------------------------------------------------------------------
# 1. Direct runs
# ---------------------------------------------------------------------------------------------
def _no_log_paths(argspec, prefix=()):
    for name, o in argspec.items():
        if o.get("no_log"):
            yield prefix + (name,)
        if o.get("options"):
            inner = prefix + (name, 0) if o.get("type") == "list" else prefix + (name,)
            yield from _no_log_paths(o["options"], inner)


# Connections of the audit's own bases (tokens filled in per form by test_direct).
_SENTINEL_CONN = {"login_host": "127.0.0.1", "login_port": "@@SPORT@@", "login_password": "@@SPW@@",
                  "connect_timeout": 2}
_SERVER_CONN = {"login_host": "127.0.0.1", "login_port": "@@PORT@@", "login_password": "@@PW@@", "connect_timeout": 2}
_CLUSTER_CONN = {"login_host": "127.0.0.1", "login_port": "@@CPORT@@", "login_user": "@@CUSER@@",
                 "login_password": "@@PW@@", "connect_timeout": 2}
# The form's master found through its Sentinel: the secret is both passwords.
_VIA_SENTINEL = {"login_host": "127.0.0.1", "login_port": "@@SPORT@@", "sentinel_password": "@@SPW@@",
                 "login_password": "@@PW@@", "master_name": "relm", "targets": "master", "connect_timeout": 2}
_RELM = {"name": "relm", "host": "127.0.0.1", "port": "@@PORT@@", "quorum": 1, "auth_pass": "@@PW@@"}


def _audit_bases():
    from cases import Base
    return {
        # The form's Sentinel already monitors `relm` so: present is a no-op; reset a change.
        "redis_sentinel": [Base("present", dict(_SENTINEL_CONN, monitors=[dict(_RELM)], wait_timeout=10)),
                           Base("reset", dict(_SENTINEL_CONN, state="reset", name="relm", wait_timeout=10))],
        # The cluster is formed: present with its nodes, check and fixed change nothing.
        "redis_cluster": [Base("check", dict(_CLUSTER_CONN, state="check")),
                          Base("present", dict(_CLUSTER_CONN, nodes="@@CNODES@@", replicas=0, wait_timeout=20)),
                          Base("fixed", dict(_CLUSTER_CONN, state="fixed", wait_timeout=20))],
        "redis_command": [Base("ping", dict(_SERVER_CONN, command=["PING"])),
                          Base("secret-arg", dict(_SERVER_CONN, command=["ECHO", "@@PW@@"], secret_args=[1])),
                          Base("via-sentinel", dict(_VIA_SENTINEL, command=["PING"]))],
        "redis_keys": [Base("list", dict(_SERVER_CONN, pattern="rel:*")),
                       Base("via-sentinel", dict(_VIA_SENTINEL, pattern="rel:*"))],
        "redis_lua_script": [Base("script", dict(_SERVER_CONN, builtin="rate_limiter", mode="script")),
                             Base("function", dict(_SERVER_CONN, builtin="rate_limiter")),
                             Base("via-sentinel", dict(_VIA_SENTINEL, builtin="rate_limiter", mode="script"))],
    }


AUDIT_BASES = _audit_bases()


def audit_bases(name, spec):
    """The success bases of the direct audit: the audit's own, else the bad-input matrix's
    unarmed bases (cases.BASES), else one derived from the spec (which must succeed as well)."""
    import cases as casegen
    return AUDIT_BASES.get(name) or [b for b in casegen.bases_for(name, spec) if not b.armed]


def _failure_args(name, args):
    """The base made to fail at run time (past validation), or None when there is no such way."""
    args = json.loads(json.dumps(args))
    if name == "redis_config":
        args["settings"] = dict(args.get("settings") or {}, maxmemory="lots")
    elif name == "redis_service":
        args["config"] = "@@TMP@@/missing.conf"
    elif "login_port" in args:
        args["login_port"] = "@@CLOSED@@"
        if "nodes" in args:
            # redis_cluster reaches the cluster through any node it is given.
            args["nodes"] = ["127.0.0.1:@@CLOSED@@"]
    else:
        return None
    return args


def _direct_cases():
    out = []
    for name, info in sorted(harness.modules().items()):
        for base in audit_bases(name, info["spec"]):
            paths = ["success", "validation"] + (["failure"] if _failure_args(name, base.args) else [])
            for form in FORMS:
                for path in paths:
                    for check in (False, True):
                        out.append((name, base.name, form, path, check))
    return out


DIRECT = _direct_cases()


@pytest.mark.parametrize("name,base_name,form,path,check", DIRECT,
                         ids=[f"{n}:{b}:{f}:{p}:{'check' if c else 'real'}" for n, b, f, p, c in DIRECT])
def test_direct(name, base_name, form, path, check, mods, form_servers, workdir):
    import cases as casegen
    spec = mods[name]["spec"]
    server = form_servers[form]
    sentinel, cluster = form_servers[f"sentinel-{form}"], form_servers["cluster"]
    secret, _ = FORMS[form]
    base = next(b for b in audit_bases(name, spec) if b.name == base_name)
    args = json.loads(json.dumps(base.args if path != "failure" else _failure_args(name, base.args)))
    plain = not any(c in str(secret) for c in " \"'")
    for p in _no_log_paths(spec["argument_spec"]):
        # Sub-options only where the base has their parent (monitors belong to sentinel.conf);
        # redis_config refuses a Sentinel auth-pass with spaces or quotes (Sentinel 7.0 would
        # write it back unquoted), so those forms go through requirepass there.
        if (len(p) == 1 or p[0] in args) and (plain or p[-1] != "auth_pass" or name != "redis_config"):
            args = casegen.set_at(args, p, secret, spec["argument_spec"])
    if name == "redis_config":
        settings = dict(args.get("settings") or {}, requirepass=secret)
        if args.get("template") != "sentinel":
            settings["masterauth"] = secret
        if plain:
            # An ACL rule is one word per rule: no spaces, and quotes would need quoting.
            settings["user"] = [f"default on >{secret} ~* &* +@all"]
        args["settings"] = settings
    if path == "validation":
        args["bogus_rel_option"] = secret
    old, _ = OLD[form]
    for fname, text in base.files.items():
        text = text.replace("Old-Base-Secret-9", harness.redis_quote(str(old)))
        (workdir / fname).write_text(text)
    tok = {"@@TMP@@": str(workdir), "@@PORT@@": server.port, "@@PW@@": secret, "@@SVCCONF@@": str(server.conf),
           "@@SERVERDIR@@": str(server.dir), "@@FRESHPORT@@": harness.free_port(), "@@SPORT@@": sentinel.port,
           "@@SPW@@": secret, "@@CPORT@@": cluster.nodes[0].port, "@@CNODES@@": cluster.addresses(),
           "@@CUSER@@": cluster_user(form), "@@CLOSED@@": harness.free_port()}
    run = harness.run_module(name, harness.tokens_replaced(args, tok), workdir, check=check, diff=True, verbosity=4)
    text = run.stdout.decode("utf-8", "replace") + "\n" + run.stderr.decode("utf-8", "replace")
    problems = run.contract_problems()
    leaks = find_leaks(text)
    if leaks:
        problems.append(f"secret {', '.join(leaks)} in the output: {_context(text, leaks)}")
    if path == "validation" and run.result is not None and not run.failed:
        problems.append("an unknown option was accepted")
    if path == "success" and (run.result is None or run.failed):
        # The success path must succeed, or it audits nothing but a failure (a module with no
        # base of its own gets one from its spec: give it one in AUDIT_BASES if that fails).
        problems.append(f"the success path failed: {short(run.result, 600)}")
    if path == "failure" and run.result is not None and not run.failed:
        problems.append(f"the failure path succeeded: {short(run.result, 400)}")
    if problems:
        pytest.fail("\n  ".join(problems), pytrace=False)


def _context(text, leaks, width=120):
    for n in all_needles():
        i = text.find(n)
        if i >= 0:
            return repr(text[max(0, i - width):i + len(n) + width])
    return ""


# ---------------------------------------------------------------------------------------------
# 2. Through Ansible
# ---------------------------------------------------------------------------------------------
RUNS = {"check": ["-vvvv", "--check", "--diff"], "real": ["-vvvv", "--diff"]}


def _instance_conf(path, port, password, workdir):
    path.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir}/{path.stem}.log\n"
                    f"pidfile {workdir}/{path.stem}.pid\nsave \"\"\nappendonly no\n"
                    f"requirepass {harness.redis_quote(str(password))}\n")


def _tasks(run, form, servers, d):
    """The tasks of one secret form: (name, task) pairs; `d` is this run's directory."""
    pw = "{{ pw_%s }}" % form.replace("-", "_")
    s = servers[form]
    value, _ = FORMS[form]
    old, _ = OLD[form]
    closed = harness.free_port()
    conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": pw, "connect_timeout": 2}
    t = []

    def add(module, label, args, fails=False):
        name = f"{form} | {module} | {label}"
        # Every task goes on after a failure: the test reads `failed` from the registered result.
        task = {"name": name, f"creativeflow.redis.{module}": args, "register": _reg(name), "ignore_errors": True}
        t.append((name, task, module, fails))

    add("redis_health", "success", dict(conn))
    add("redis_health", "failure: expected_role", dict(conn, expected_role="replica"), fails=True)
    add("redis_health", "failure: connection refused", dict(conn, login_port=closed), fails=True)
    add("redis_health", "failure: wrong password", dict(conn, login_port=servers["key-redis"].port), fails=True)
    add("redis_health", "failure: validation", dict(conn, connect_timeout="abc"), fails=True)

    settings = {"port": 7001, "requirepass": pw, "masterauth": pw}
    plain = not any(c in str(value) for c in " \"'")
    if plain:
        settings["user"] = ["default on >" + pw + " ~* &* +@all"]
    (d / f"{form}-old.conf").write_text(f"port 7000\nrequirepass {harness.redis_quote(str(old))}\n"
                                        f"masterauth {harness.redis_quote(str(old))}\n")
    (d / f"{form}-legacy.in").write_text("port ##PORT##\nrequirepass ##REQUIREPASS##\n")
    (d / f"{form}-missing.in").write_text("port ##PORT##\nrequirepass ##REQUIREPASS##\nfoo ##NOPE##\n")
    add("redis_config", "file: new", {"path": str(d / f"{form}-new.conf"), "settings": settings})
    add("redis_config", "file: replace old password", {"path": str(d / f"{form}-old.conf"), "settings": settings})
    # A Sentinel auth-pass with spaces or quotes is refused (Sentinel 7.0 rewrites it unquoted):
    # for those forms this is a failure path.
    add("redis_config", "sentinel: monitors auth_pass",
        {"path": str(d / f"{form}-sentinel.conf"), "template": "sentinel",
         "monitors": [{"name": "m1", "host": "127.0.0.1", "port": s.port, "quorum": 1, "auth_pass": pw}]},
        fails=not plain)
    add("redis_config", "live: CONFIG SET",
        {"path": str(d / f"{form}-live.conf"), "apply": "live", **conn,
         "settings": {"port": s.port, "dir": str(s.dir), "requirepass": pw, "maxmemory": "24mb"}})
    # ##KEY## is replaced by the raw value: quotes there make an unreadable line (a failure path).
    add("redis_config", "placeholders", {"path": str(d / f"{form}-legacy.conf"), "src": str(d / f"{form}-legacy.in"),
                                         "placeholders": True, "settings": {"port": 7002, "requirepass": pw}},
        fails=any(c in str(value) for c in " \"'"))
    add("redis_config", "failure: invalid value", {"path": str(d / f"{form}-bad.conf"),
                                                   "settings": dict(settings, maxmemory="lots")}, fails=True)
    add("redis_config", "failure: placeholder missing",
        {"path": str(d / f"{form}-legacy2.conf"), "src": str(d / f"{form}-missing.in"), "placeholders": True,
         "settings": {"port": 7002, "requirepass": pw}}, fails=True)
    add("redis_config", "failure: live wrong login", {"path": str(d / f"{form}-live2.conf"), "apply": "live",
                                                      **dict(conn, login_port=closed),
                                                      "settings": {"port": closed, "requirepass": pw}}, fails=True)

    inst, busy = d / f"{form}-inst.conf", d / f"{form}-busy.conf"
    _instance_conf(inst, harness.free_port(), value, d)
    _instance_conf(busy, s.port, value, d)
    svc = {"name": f"rel-{form}", "config": str(inst), "manager": "direct", "wait_timeout": 10,
           "login_password": pw}
    add("redis_service", "started", dict(svc, state="started"))
    add("redis_service", "status", dict(svc, state="status"))
    add("redis_service", "restarted", dict(svc, state="restarted"))
    add("redis_service", "stopped", dict(svc, state="stopped"))
    add("redis_service", "failure: port in use", dict(svc, config=str(busy), state="started"), fails=True)
    add("redis_service", "failure: validation", dict(svc, state="started", wait_timeout="abc"), fails=True)

    # The modules of issues 14 and 15: a success path and real failure paths (the generic
    # arguments of redis_keys succeed, so its "runtime" failure path did not fail).
    add("redis_command", "success: PING", dict(conn, command=["PING"]))
    add("redis_command", "success: the password read back", dict(conn, command=["CONFIG", "GET", "requirepass"]))
    add("redis_command", "success: a secret argument", dict(conn, command=["ECHO", pw], secret_args=[1]))
    add("redis_command", "failure: connection refused", dict(conn, login_port=closed, command=["PING"]), fails=True)
    add("redis_command", "failure: validation", dict(conn, command=["PING"], bogus_rel_option=pw), fails=True)
    add("redis_keys", "success", dict(conn, pattern="rel:*"))
    add("redis_keys", "failure: connection refused", dict(conn, login_port=closed, pattern="rel:*"), fails=True)
    add("redis_keys", "failure: validation", dict(conn, pattern="rel:*", bogus_rel_option=pw), fails=True)
    add("redis_lua_script", "success", dict(conn, builtin="rate_limiter", mode="script"))
    add("redis_lua_script", "failure: connection refused", dict(conn, login_port=closed, builtin="rate_limiter"),
        fails=True)
    add("redis_lua_script", "failure: validation", dict(conn, builtin="rate_limiter", bogus_rel_option=pw),
        fails=True)

    # Through the form's Sentinel: the secret is the Sentinel's password and the master's.
    sen = servers[f"sentinel-{form}"]
    via = dict(conn, login_port=sen.port, sentinel_password=pw, master_name="relm", targets="master")
    add("redis_command", "success: through Sentinel", dict(via, command=["PING"]))
    add("redis_keys", "success: through Sentinel", dict(via, pattern="rel:*"))
    add("redis_lua_script", "success: through Sentinel", dict(via, builtin="rate_limiter", mode="script"))
    add("redis_command", "failure: wrong Sentinel password",
        dict(via, sentinel_password="Rel-Wrong-Pw-0", command=["PING"]), fails=True)

    # redis_sentinel, every state, on the form's Sentinel (one form for the whole lifecycle, see
    # _selected): present changes nothing, reset and absent change it, present again monitors
    # it anew; a failover has no replica to promote (only check mode predicts it). On `rellife`:
    # the check run and the ad hoc runs, at the same time, go through `relm`.
    sconn = dict(conn, login_port=sen.port, wait_timeout=10)
    relm = {"name": "rellife", "host": "127.0.0.1", "port": s.port, "quorum": 1, "auth_pass": pw}
    add("redis_sentinel", "present", dict(sconn, monitors=[relm]))
    add("redis_sentinel", "reset", dict(sconn, state="reset", name="rellife"))
    add("redis_sentinel", "failover", dict(sconn, state="failover", name="rellife"), fails=run == "real")
    add("redis_sentinel", "absent", dict(sconn, state="absent", name="rellife"))
    add("redis_sentinel", "present again", dict(sconn, monitors=[relm]))
    add("redis_sentinel", "failure: wrong auth_pass",
        dict(sconn, monitors=[dict(relm, auth_pass="Rel-Wrong-Pw-1")]), fails=True)
    add("redis_sentinel", "failure: connection refused", dict(sconn, login_port=closed, monitors=[relm]), fails=True)
    add("redis_sentinel", "failure: not a Sentinel", dict(sconn, login_port=s.port, monitors=[relm]), fails=True)
    add("redis_sentinel", "failure: validation", dict(sconn, monitors=[relm], bogus_rel_option=pw), fails=True)

    # redis_cluster on the formed cluster, as the form's ACL user.
    c = servers["cluster"]
    cconn = dict(conn, login_port=c.nodes[0].port, login_user=cluster_user(form))
    add("redis_cluster", "check", dict(cconn, state="check"))
    add("redis_cluster", "present", dict(cconn, nodes=c.addresses(), replicas=0, wait_timeout=20))
    add("redis_cluster", "fixed", dict(cconn, state="fixed", wait_timeout=20))
    add("redis_cluster", "failure: connection refused", dict(cconn, login_port=closed, state="check"), fails=True)
    add("redis_cluster", "failure: not in cluster mode", dict(conn, state="check"), fails=True)
    add("redis_cluster", "failure: wrong password", dict(cconn, login_password="Rel-Wrong-Pw-2", state="check"),
        fails=True)
    add("redis_cluster", "failure: validation", dict(cconn, state="check", bogus_rel_option=pw), fails=True)

    for module in sorted(set(harness.modules()) - set(KNOWN) - set(EXPLICIT)):
        argspec = harness.modules()[module]["spec"]["argument_spec"]
        import cases as casegen
        args = {k: v for k, v in casegen.generic_base(module, harness.modules()[module]["spec"])[0].args.items()
                if not k.startswith("login_") and k != "connect_timeout"}
        args = {k: harness.tokens_replaced(v, {"@@TMP@@": str(d)}) for k, v in args.items()}
        if "login_port" in argspec:
            args.update(conn)
        add(module, "runtime", args, fails=True)
        add(module, "failure: validation", dict(args, bogus_rel_option=pw), fails=True)
    return t


SERVICE_LIFECYCLE = ("started", "status", "restarted", "stopped")
SENTINEL_LIFECYCLE = ("present", "reset", "failover", "absent", "present again")
OFFSETS = {"check": 0, "real": 3}


def _selected(run, servers, d):
    """One form per task, rotated (the direct runs cover every form on every path; here each
    module and state meets two forms, one per run); the redis_service lifecycle shares one."""
    per_form = {f: _tasks(run, f, servers, d) for f in FORMS}
    forms = list(FORMS)
    out, groups = [], {}
    for i, (_, _, module, _) in enumerate(per_form[forms[0]]):
        label = per_form[forms[0]][i][0].split(" | ", 2)[2]
        group = ("service" if module == "redis_service" and label in SERVICE_LIFECYCLE
                 else "sentinel" if module == "redis_sentinel" and label in SENTINEL_LIFECYCLE else i)
        gidx = groups.setdefault(group, len(groups))
        out.append(per_form[forms[(gidx + OFFSETS[run]) % len(forms)]][i])
    keys = _key_tasks(servers, d)
    if run == "check":
        keys = [k for k in keys if k[2] == "redis_health"]
    return out + keys


def _key_tasks(servers, d):
    t = []
    for p in KEY_PASSWORDS:
        s = servers[f"key-{p}"]
        conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": p, "connect_timeout": 2}
        inst = d / f"key-{p}-inst.conf"
        _instance_conf(inst, harness.free_port(), p, d)
        items = [
            ("redis_health", "success", dict(conn), False),
            ("redis_health", "failure", dict(conn, expected_role="replica"), True),
            ("redis_config", "file", {"path": str(d / f"key-{p}.conf"), "settings": {"port": 7003, "requirepass": p}},
             False),
            ("redis_config", "failure", {"path": str(d / f"key-{p}-bad.conf"),
                                         "settings": {"requirepass": p, "maxmemory": "lots"}}, True),
            ("redis_service", "started", {"name": f"key-{p}", "config": str(inst), "manager": "direct",
                                          "state": "started", "login_password": p}, False),
            ("redis_service", "stopped", {"name": f"key-{p}", "config": str(inst), "manager": "direct",
                                          "state": "stopped", "login_password": p}, False),
        ]
        for module, label, args, fails in items:
            name = f"key password {p!r} | {module} | {label}"
            task = {"name": name, f"creativeflow.redis.{module}": args, "register": _reg(name), "ignore_errors": True}
            t.append((name, task, module, fails))
    return t


def _reg(name):
    return "r_" + "".join(c if c.isalnum() else "_" for c in name)


def _plan():
    """Task names per run, known at collection time (the tasks themselves need servers)."""
    class _S:
        port, dir, conf = 1, "/nonexistent", None

    class _C:
        nodes = [_S()]

        def addresses(self):
            return ["127.0.0.1:1"]
    fake = {f: _S() for f in FORMS}
    fake.update({f"sentinel-{f}": _S() for f in FORMS})
    fake.update({f"key-{p}": _S() for p in KEY_PASSWORDS})
    fake["cluster"] = _C()
    import pathlib
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        return {run: [(n, m, fails) for n, _, m, fails in _selected(run, fake, pathlib.Path(d))] for run in RUNS}


@pytest.fixture(scope="module")
def ansible_runs(mods, form_servers, tmp_path_factory):
    """Runs the playbook in both modes and ad hoc per module, four at a time; returns
    {run: {"output", "tasks": {name: section}, "results": {name: registered}}, "adhoc": ...}."""
    root = tmp_path_factory.mktemp("audit")
    vars_file = root / "vars.yml"
    vars_file.write_text(yaml.safe_dump({f"pw_{f}": v for f, (v, _) in FORMS.items()}))
    jobs, meta = [], {}
    for run, flags in RUNS.items():
        d = root / run
        d.mkdir()
        tasks = _selected(run, form_servers, d)
        dump = d / "registered.json"
        regs = {name: _reg(name) for name, *_ in tasks}
        dump_task = {"name": "dump registered results", "check_mode": False,
                     "ansible.builtin.copy": {"dest": str(dump), "content": "{{ {" + ", ".join(
                         f"{json.dumps(n)}: {r}" for n, r in regs.items()) + "} | to_json }}"}}
        play = [{"hosts": "all", "gather_facts": False, "tasks": [t for _, t, *_ in tasks] + [dump_task]}]
        pb = d / "play.yml"
        pb.write_text(yaml.safe_dump(play, sort_keys=False, width=1000))
        cmd = [_tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb), "-e", f"@{vars_file}", *flags]
        jobs.append((run, cmd, d))
        meta[run] = {"tasks": tasks, "dump": dump, "dir": d}
    adhoc = _adhoc_cmds(form_servers, root, vars_file)
    out = {"adhoc": {}}
    try:
        done = _run_all(jobs + adhoc)
    finally:
        _stop_instances(root)
    for run in RUNS:
        rc, text = done[run]
        dump = meta[run]["dump"]
        out[run] = {"output": text, "rc": rc, "tasks": _sections(text),
                    "results": json.loads(dump.read_text()) if dump.exists() else None,
                    "plan": {n: (m, f) for n, _, m, f in meta[run]["tasks"]}}
    for key, _, _ in adhoc:
        rc, text = done[key]
        out["adhoc"][key] = {"output": text, "rc": rc}
    return out


def _stop_instances(d):
    for pid in harness.redis_pids_for(str(d)):
        harness.kill_redis_pid(pid)
    for pf in d.rglob("*.pid"):
        try:
            harness.kill_redis_pid(int(pf.read_text().strip()))
        except (ValueError, OSError):
            pass


def _sections(text):
    """Output split at `TASK [name]` headers: {name: text up to the next header}."""
    out, name, buf = {}, "(before the first task)", []
    for line in text.splitlines(keepends=True):
        if line.startswith("TASK [") and "]" in line:
            out[name] = out.get(name, "") + "".join(buf)
            name, buf = line[6:line.rindex("]")], [line]
        elif line.startswith("PLAY RECAP"):
            out[name] = out.get(name, "") + "".join(buf)
            name, buf = "(play recap)", [line]
        else:
            buf.append(line)
    out[name] = out.get(name, "") + "".join(buf)
    return out


def _ansible_env(d):
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(harness.COLLECTION_ROOT), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0",
                "ANSIBLE_PYTHON_INTERPRETER": str(harness.VENV_BIN / "python"),
                "ANSIBLE_LOCAL_TEMP": str(d / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(d / "ansible-remote"),
                "ANSIBLE_HOME": str(d / "ansible-home"), "HOME": str(d)})
    env.pop("REDISCLI_AUTH", None)
    return env


def _tool(name):
    p = harness.VENV_BIN / name
    return str(p) if p.exists() else name


ADHOC = [(m, path, form) for m in KNOWN for path, form in (("success", "int"), ("failure", "quotes"))]
# Success paths ad hoc for the modules of EXPLICIT too (their args as JSON: lists and dicts).
ADHOC_EXPLICIT = [("redis_sentinel", "success", "backslash"), ("redis_cluster", "success", "dollar"),
                  ("redis_command", "success", "quotes"), ("redis_keys", "success", "str"),
                  ("redis_lua_script", "success", "int")]


def _adhoc_args(module, path, form, servers, d):
    s = servers[form]
    pw = "{{ pw_%s }}" % form
    if module in EXPLICIT:
        conn = {"login_host": "127.0.0.1", "login_port": s.port, "login_password": pw, "connect_timeout": 2}
        sen = servers[f"sentinel-{form}"]
        args = {
            "redis_sentinel": dict(conn, login_port=sen.port, wait_timeout=10, monitors=[
                {"name": "relm", "host": "127.0.0.1", "port": s.port, "quorum": 1, "auth_pass": pw}]),
            "redis_cluster": dict(conn, login_port=servers["cluster"].nodes[0].port, login_user=cluster_user(form),
                                  state="check"),
            "redis_command": dict(conn, command=["ECHO", pw], secret_args=[1]),
            "redis_keys": dict(conn, login_port=sen.port, sentinel_password=pw, master_name="relm", targets="master",
                               pattern="rel:*"),
            "redis_lua_script": dict(conn, builtin="rate_limiter", mode="script"),
        }[module]
        return json.dumps(args)
    conn = f"login_host=127.0.0.1 login_port={s.port} login_password={pw} connect_timeout=2"
    if module == "redis_health":
        return conn + (" expected_role=replica" if path == "failure" else "")
    if module == "redis_config":
        maxmem = "lots" if path == "failure" else "32mb"
        return (f"path={d}/adhoc-{module}-{path}.conf apply=live {conn} "
                f"settings='{{\"port\": {s.port}, \"dir\": \"{s.dir}\", \"maxmemory\": \"{maxmem}\"}}'")
    conf = d / f"adhoc-{module}-{path}.conf"
    _instance_conf(conf, s.port if path == "failure" else harness.free_port(), FORMS[form][0], d)
    return f"name=adhoc-{path} config={conf} manager=direct state=started wait_timeout=10 login_password={pw}"


def _adhoc_cmds(servers, root, vars_file):
    d = root / "adhoc"
    d.mkdir()
    out = []
    for module, path, form in ADHOC + ADHOC_EXPLICIT + [(m, "failure", "spaces")
                                                        for m in sorted(set(harness.modules()) - set(KNOWN))]:
        if module in KNOWN or path == "success":
            args = _adhoc_args(module, path, form, servers, d)
        else:
            args = (f"login_host=127.0.0.1 login_port={servers[form].port} "
                    f"login_password={{{{ pw_{form} }}}} bogus_rel=1")
        cmd = [_tool("ansible"), "localhost", "-c", "local", "-m", f"creativeflow.redis.{module}", "-a", args,
               "-e", f"@{vars_file}", "-vvvv", "--diff"]
        w = d / f"{module}-{path}"
        w.mkdir()
        out.append((f"{module}:{path}:{form}", cmd, w))
    return out


def _run_all(jobs, parallel=4):
    """Runs (key, cmd, cwd) jobs, `parallel` at a time (they wait on servers and fork more than
    they compute); returns {key: (rc, output)}."""
    import time
    pending, running, done = list(jobs), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            key, cmd, cwd = pending.pop(0)
            log = open(cwd / f"output-{key.replace(':', '_').replace(' ', '_')}.txt", "w+b")
            running[key] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_ansible_env(cwd),
                                             cwd=cwd), log, time.monotonic())
        for key, (p, log, t0) in list(running.items()):
            if p.poll() is None and time.monotonic() - t0 < 600:
                continue
            if p.poll() is None:
                p.kill()
                p.wait()
            log.seek(0)
            done[key] = (p.returncode, log.read().decode("utf-8", "replace"))
            log.close()
            del running[key]
        time.sleep(0.05)
    return done


# {run: [(task name, module, whether it must fail)]}
PLAN = _plan()
AUDIT = [(run, n) for run in RUNS for n, _, _ in PLAN[run]]


@pytest.mark.parametrize("run,task", AUDIT, ids=[f"{r}:{n}" for r, n in AUDIT])
def test_playbook_task(run, task, ansible_runs):
    """The task's section of the output, and its registered result, hold no secret."""
    r = ansible_runs[run]
    if task not in r["tasks"]:
        pytest.fail(f"task {task!r} did not run (rc {r['rc']}); output tail:\n{r['output'][-3000:]}", pytrace=False)
    section = r["tasks"][task]
    problems = []
    leaks = find_leaks(section)
    if leaks:
        problems.append(f"secret {', '.join(leaks)} in the output: {_context(section, leaks)}")
    module, fails = r["plan"][task]
    if not fails and ("FAILED!" in section or "fatal:" in section):
        problems.append(f"the success path failed:\n{section[-2500:]}")
    reg = (r["results"] or {}).get(task)
    if r["results"] is None:
        problems.append("registered results were not dumped")
    elif reg is None:
        problems.append("no registered result")
    else:
        leaks = find_leaks(json.dumps(reg))
        if leaks:
            problems.append(f"secret {', '.join(leaks)} in the registered result: {short(reg, 800)}")
        masked = [k for k in harness._all_keys(reg) if "********" in k or "VALUE_SPECIFIED" in k]
        if masked:
            problems.append(f"masked keys in the registered result: {masked[:8]}")
        problems += _key_expectations(task, module, fails, reg, run)
    if problems:
        pytest.fail(f"{run}: {task}:\n  " + "\n  ".join(problems), pytrace=False)


def _key_expectations(task, module, fails, reg, run):
    out = []
    if not isinstance(reg.get("changed"), bool):
        out.append(f"`changed` missing or not a boolean: {reg.get('changed')!r}")
    if fails and reg.get("failed") is not True:
        out.append(f"a failure path did not fail: {short(reg, 400)}")
    if not fails and reg.get("failed") not in (False, None):
        out.append(f"`failed` is {reg.get('failed')!r} on a success path")
    if fails and not (isinstance(reg.get("msg"), str) and reg["msg"]):
        out.append("no msg on a failure")
    if module == "redis_health" and not fails:
        if "redis_version" not in reg or "redis_version" not in (reg.get("info") or {}):
            out.append(f"redis_version missing from the result or its info: keys {sorted(reg)[:30]}")
    if module == "redis_service" and not fails and run == "real" and "running" not in reg:
        out.append(f"`running` missing: keys {sorted(reg)[:30]}")
    return out


def test_playbook_outside_tasks(ansible_runs):
    """The output around the tasks (play header, recap, warnings) and the dump holds no secret."""
    problems = []
    for run in RUNS:
        r = ansible_runs[run]
        for name in ("(before the first task)", "(play recap)", "dump registered results"):
            leaks = find_leaks(r["tasks"].get(name, ""))
            if leaks:
                problems.append(f"{run}: {name}: secret {', '.join(leaks)}")
    if problems:
        pytest.fail("\n  ".join(problems), pytrace=False)


ADHOC_IDS = ([f"{m}:{p}:{f}" for m, p, f in ADHOC + ADHOC_EXPLICIT]
             + [f"{m}:failure:spaces" for m in sorted(set(harness.modules()) - set(KNOWN))])


@pytest.mark.parametrize("key", ADHOC_IDS)
def test_adhoc(key, ansible_runs):
    r = ansible_runs["adhoc"][key]
    out = r["output"]
    problems = []
    leaks = find_leaks(out)
    if leaks:
        problems.append(f"secret {', '.join(leaks)} in the output: {_context(out, leaks)}")
    path = key.split(":")[1]
    if path == "success" and r["rc"] != 0:
        problems.append(f"the success path failed (rc {r['rc']}):\n{out[-2500:]}")
    if path == "failure" and r["rc"] == 0:
        problems.append(f"the failure path succeeded:\n{out[-1500:]}")
    if "=> {" in out:
        try:
            res = _result_of(out)
            masked = [k for k in harness._all_keys(res) if "********" in k]
            if masked:
                problems.append(f"masked keys: {masked[:8]}")
        except ValueError:
            problems.append("the result printed after `=>` is not JSON")
    if problems:
        pytest.fail(f"ad hoc {key}:\n  " + "\n  ".join(problems), pytrace=False)


def _result_of(output):
    start = output.index("=> {") + 3
    depth = 0
    for i, ch in enumerate(output[start:], start):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return json.loads(output[start:i + 1])
    raise ValueError(output)


@pytest.mark.parametrize("form", list(FORMS))
def test_detector_finds_every_rendering(form):
    """The audit itself can fail: each form is found raw, JSON-escaped, as a Python repr and
    quoted for redis.conf, and a masked value is not reported."""
    value, _ = FORMS[form]
    renderings = [str(value), json.dumps(str(value)), repr(str(value)), harness.redis_quote(str(value)),
                  json.dumps({"msg": f"AUTH {value} failed"})]
    missed = [r for r in renderings if not find_leaks(f"prefix {r} suffix")]
    assert not missed, f"not detected: {missed}"
    assert not find_leaks('{"msg": "AUTH ******** failed", "pw": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}')
