"""The fast path of the collection's action plugins (issue 10).

Each module's action plugin (collection/plugins/action/<module>.py, all of them the shared
plugins/plugin_utils/fast_path.py) runs the module with ONE remote command in the steady state:
the binary cached in ~/.cache/creativeflow.redis/ of the effective user on the managed host, the
args JSON on its standard input. These tests run real ansible / ansible-playbook against the
built collection (`make collection` -> build/ansible_collections_install), over the local
connection and over real SSH to 127.0.0.1 (a throwaway sshd, users, key and sudoers drop-in,
as root only: bench/ssh_fast_path/sshd_host.py), against real redis-server processes, with the
newest ansible-core (.venv) and, when .venv-2.16 exists, the oldest supported one.

What they pin down: the fast path is taken and is one command per task after the first (and
the normal path is not: the counting can fail); every fallback case falls back, says why at
-vvv and still gives the right result; a cache entry that is not safe is never run; both paths
give identical results for every module's EXAMPLES and for check mode, diff mode, no_log,
module_defaults with the action group, ad hoc `ansible -m`, delegate_to and become (root, an
unprivileged user, a sudo password); no password reaches the managed host's disk; and the
ansible-core internals the plugin relies on are still there.

Controller-side files (playbooks, inventories: they hold the test passwords) live under
build/fast-path-tests/, not under /tmp, so that the grep of the managed host's /tmp means
something. CF_FAST_PATH_COLLECTIONS=<dir> points the suite at another installed collection.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import COLLECTIONS as BUILT_COLLECTIONS
from conftest import REPO, result_of
from redis_procs import RedisProc, _ping, free_port

sys.path.insert(0, str(REPO / "bench" / "ssh_fast_path"))
from sshd_host import ThrowawaySshd, missing_tools  # noqa: E402

COLLECTIONS = Path(os.environ.get("CF_FAST_PATH_COLLECTIONS") or BUILT_COLLECTIONS)
COLL = COLLECTIONS / "ansible_collections" / "creativeflow" / "redis"
WORK_BASE = REPO / "build" / "fast-path-tests"
CACHE = ".cache/creativeflow.redis"

CORES = {"newest": REPO / ".venv" / "bin"}
if (REPO / ".venv-2.16" / "bin" / "ansible-playbook").exists():
    CORES["2.16"] = REPO / ".venv-2.16" / "bin"
CORE_IDS = list(CORES)

FAST_RAN = "creativeflow.redis fast path: ran"
FAST_CACHING = "creativeflow.redis fast path: caching"
FALLBACK = "creativeflow.redis fast path not used ("
LOCAL_EXEC = re.compile(r"^<[^>\n]*> EXEC ", re.M)
SSH_EXEC = re.compile(r"^<[^>\n]*> SSH: EXEC ssh ", re.M)
SSH_XFER = re.compile(r"^<[^>\n]*> SSH: EXEC (?:sftp|scp) ", re.M)
PUT = re.compile(r"^<[^>\n]*> PUT ", re.M)

RECORDER = '''
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Appends every task result, as the executor hands it to callbacks, to $CF_RECORD."""
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cf_record"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        res = result._result
        extra = {}
        for key in ("warnings", "deprecations"):
            items = getattr(result, key, None)
            if items is not None and not isinstance(items, (str, bytes)):
                extra[key] = [getattr(i, "msg", None) or repr(i) for i in items]
        with open(os.environ["CF_RECORD"], "a") as f:
            f.write(json.dumps({"task": result._task.get_name(), "host": result._host.get_name(),
                                "status": status, "result": res, "extra": extra},
                               default=repr, sort_keys=True) + "\\n")

    def v2_runner_on_ok(self, result, **kwargs):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record("failed", result)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record("unreachable", result)
'''

# A connection that cannot pass standard input: the local connection without pipelining
# support (what e.g. a network or container connection plugin may be).
NOSTDIN_CONNECTION = '''
DOCUMENTATION = """
    name: cf_nostdin
    short_description: the local connection, without data on standard input
    description: [The local connection with has_pipelining off, for the fast path tests.]
    author: creativeflow
    options:
        become_success_timeout:
            type: int
            default: 10
            description: [As for local.]
            vars: [{name: ansible_local_become_success_timeout}]
        become_strip_preamble:
            type: bool
            default: true
            description: [As for local.]
            vars: [{name: ansible_local_become_strip_preamble}]
    extends_documentation_fragment:
        - connection_pipelining
"""

from ansible.plugins.connection.local import Connection as LocalConnection


class Connection(LocalConnection):
    transport = "cf_nostdin"
    has_pipelining = False
'''


def load_fast_path():
    """plugins/plugin_utils/fast_path.py of the installed collection, as a plain module."""
    path = COLL / "plugins" / "plugin_utils" / "fast_path.py"
    spec = importlib.util.spec_from_file_location("cf_fast_path_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module_names():
    mods = COLL / "plugins" / "modules"
    return sorted(p.name for p in mods.iterdir() if not p.suffix and not p.name.startswith(("_", "."))) if mods.is_dir() else []


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_name(module):
    return f"{module}-{sha256_of(COLL / 'plugins' / 'modules' / module)}"


# ---------------------------------------------------------------------------------------------
# Running Ansible
# ---------------------------------------------------------------------------------------------

class Run:
    def __init__(self, rc, out, records):
        self.rc, self.out, self.records = rc, out, records

    def sections(self):
        """{task name: its part of the output}, in order (the last run of a name wins)."""
        out = {}
        parts = re.split(r"^TASK \[(.*?)\][^\n]*$", self.out, flags=re.M)
        for i in range(1, len(parts), 2):
            out[parts[i]] = parts[i + 1]
        return out

    def section(self, name):
        secs = self.sections()
        assert name in secs, f"no task {name!r} in the output:\n{self.out}"
        return secs[name]

    def result(self, task, host=None):
        found = [r for r in self.records if r["task"] == task and (host is None or r["host"] == host)]
        assert found, f"no result for task {task!r}: {[r['task'] for r in self.records]}\n{self.out}"
        return found[-1]


class Workspace:
    """Controller side of one test: HOME (also the managed host's for the local connection),
    temp dirs, ansible.cfg, the result recorder; under build/, removed afterwards."""

    def __init__(self, root):
        self.root = Path(root)
        self.home = self.root / "home"
        self.home.mkdir(mode=0o700)
        for d in ("local_tmp", "remote_tmp", "callback_plugins", "connection_plugins"):
            (self.root / d).mkdir()
        (self.root / "callback_plugins" / "cf_record.py").write_text(RECORDER)
        (self.root / "connection_plugins" / "cf_nostdin.py").write_text(NOSTDIN_CONNECTION)
        self.cfg = self.root / "ansible.cfg"
        self.cfg.write_text("[defaults]\n")
        self._n = 0

    def env(self, core, remote_tmp=True, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "CREATIVEFLOW_")) and k not in ("REDISCLI_AUTH", "HOME")}
        env.update({
            "HOME": str(self.home),
            "ANSIBLE_CONFIG": str(self.cfg),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "local_tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_CALLBACK_PLUGINS": str(self.root / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "cf_record",
            "ANSIBLE_CONNECTION_PLUGINS": str(self.root / "connection_plugins"),
            # async_wrapper (the async fallback) needs a Python on the (local) target.
            "ANSIBLE_PYTHON_INTERPRETER": str(CORES[core] / "python"),
        })
        if remote_tmp:
            env["ANSIBLE_REMOTE_TEMP"] = str(self.root / "remote_tmp")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def _run(self, core, argv, env, timeout):
        self._n += 1
        record = self.root / f"record-{self._n}.jsonl"
        env = dict(env, CF_RECORD=str(record))
        p = subprocess.run([str(CORES[core] / argv[0]), *argv[1:]], capture_output=True, text=True, env=env,
                           cwd=self.root, stdin=subprocess.DEVNULL, timeout=timeout)
        records = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        return Run(p.returncode, p.stdout + p.stderr, records)

    def inventory(self, hosts):
        self._n += 1
        path = self.root / f"inventory-{self._n}.yml"
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        return path

    def playbook(self, core, plays, hosts, *extra, env=None, timeout=600):
        self._n += 1
        pb = self.root / f"play-{self._n}.yml"
        pb.write_text(plays if isinstance(plays, str) else yaml.safe_dump(plays, sort_keys=False))
        inv = self.inventory(hosts)
        return self._run(core, ["ansible-playbook", "-i", str(inv), str(pb), *extra],
                         env if env is not None else self.env(core), timeout)

    def adhoc(self, core, pattern, hosts, module, args, *extra, env=None):
        inv = self.inventory(hosts)
        return self._run(core, ["ansible", pattern, "-i", str(inv), "-m", module, "-a", args, *extra],
                         env if env is not None else self.env(core), 300)


LOCAL = {"localhost": {"ansible_connection": "local"}}


@pytest.fixture
def ws(collection_built_here):
    WORK_BASE.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="ws-", dir=WORK_BASE)
    try:
        yield Workspace(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def collection_built_here():
    if not (COLL / "plugins" / "modules" / "redis_health").exists():
        pytest.fail(f"the collection is not built: run `make collection` (missing {COLL}/plugins/modules/redis_health)")
    if not (COLL / "plugins" / "action" / "redis_health.py").exists():
        pytest.fail(f"{COLL} has no action plugins: rebuild it with `make collection`")
    return COLL


@pytest.fixture
def redis_pw():
    """A redis-server whose password is set with CONFIG SET, so that it is in no file on disk."""
    proc = RedisProc()
    pw = "fp-" + secrets.token_hex(12)
    proc.cli("CONFIG", "SET", "requirepass", pw)
    proc.password = pw
    try:
        yield proc
    finally:
        proc.stop()


def health_task(name, port, password_expr="{{ pw }}", **extra):
    args = {"login_port": port, "login_password": password_expr, "checks": ["ping", "info", "memory"]}
    t = {"name": name, "creativeflow.redis.redis_health": args, "register": "r"}
    t.update(extra)
    return t


def play(tasks, hosts="all", **extra):
    p = {"hosts": hosts, "gather_facts": False}
    p.update(extra)
    p["tasks"] = tasks
    return [p]


# ---------------------------------------------------------------------------------------------
# Results: what "identical" means
# ---------------------------------------------------------------------------------------------

# INFO fields that appear as commands and errors happen (cmdstat_ping after the first PING,
# errorstat_NOAUTH after a refused login, ...): one more run has one more of them.
ACCUMULATING_INFO_KEYS = ("cmdstat_", "errorstat_", "latency_percentiles_usec_")


def loose(value):
    """For results that carry live numbers (INFO, pids, latencies): numbers become their type and
    digits in strings become '#', everything else (keys, texts, booleans, structure) is kept."""
    if isinstance(value, dict):
        return {loose(k) if re.fullmatch(r"[0-9a-f]{40}", k) else k: loose(v) for k, v in value.items()
                if not k.startswith(ACCUMULATING_INFO_KEYS)}
    if isinstance(value, list):
        return [loose(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return "<number>"
    if isinstance(value, str):
        # Node ids and run ids (40 hex characters) are random per process.
        return re.sub(r"\d+", "#", re.sub(r"\b[0-9a-f]{40}\b", "<id>", value))
    return value


# The normal path's own warning when it shares its temp files with an unprivileged become user;
# the fast path makes no temp files, so it has nothing to warn about.
WORLD_READABLE_WARNING = "world-readable permissions for temporary files"


def comparable(records, exact=False):
    out = []
    for r in records:
        res = r["result"]
        for holder in (res, r["extra"]):
            if isinstance(holder.get("warnings"), list):
                kept = [w for w in holder["warnings"] if WORLD_READABLE_WARNING not in str(w)]
                if kept or not holder["warnings"] or holder is r["extra"]:
                    holder["warnings"] = kept
                else:
                    del holder["warnings"]
        out.append((r["task"], r["host"], r["status"], res if exact else loose(res), r["extra"] if exact else loose(r["extra"])))
    return out


def differences(a, b, path="result"):
    """Where two JSON-like values differ, as 'path: a != b' lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'missing' if k not in a else json.dumps(a[k])[:200]} != "
                           f"{'missing' if k not in b else json.dumps(b[k])[:200]}")
            else:
                out.extend(differences(a[k], b[k], f"{path}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}"]


def assert_identical(fast, slow, exact=False):
    a, b = comparable(fast.records, exact), comparable(slow.records, exact)
    if [x[:3] for x in a] != [x[:3] for x in b]:
        msgs = [(x[:3], (x[3] or {}).get("msg"), y[:3], (y[3] or {}).get("msg")) for x, y in zip(a, b) if x[:3] != y[:3]]
        raise AssertionError(f"tasks or statuses differ (fast, msg, normal, msg): {msgs}\n"
                             f"{[x[:3] for x in a]}\n{[x[:3] for x in b]}")
    for x, y in zip(a, b):
        diff = differences(x[3], y[3]) + differences(x[4], y[4], "extra")
        assert not diff, f"task {x[0]!r} on {x[1]}: the fast path (left) and the normal path (right) differ:\n  " + \
            "\n  ".join(diff)


def module_task_names(plays, prefix="creativeflow.redis."):
    names = []

    def walk(tasks):
        for t in tasks:
            if "block" in t:
                walk(t["block"])
            elif any(k.startswith(prefix) for k in t):
                names.append(t["name"])
    for p in plays:
        walk(p["tasks"])
    return names


def assert_paths(run, names, fast):
    skipped = {r["task"] for r in run.records if r["status"] == "skipped"}
    for name in names:
        if name in skipped:
            # A `when:` that is false: the module does not run on either path.
            continue
        sec = run.section(name)
        if fast:
            assert FAST_RAN in sec and FALLBACK not in sec, f"task {name!r} did not take the fast path:\n{sec}"
        else:
            assert FALLBACK in sec and FAST_RAN not in sec, f"task {name!r} did not take the normal path:\n{sec}"


def both_paths(ws, core, plays, hosts, *extra, reset=None, exact=False, env=None, normalize=None):
    """Runs the plays on the fast path, then (after reset()) on the normal path; returns both."""
    names = module_task_names(plays)
    assert names, "no module task in the plays"
    runs = []
    for fast in (True, False):
        if reset:
            reset()
        e = dict(env or ws.env(core))
        if not fast:
            e["CREATIVEFLOW_REDIS_FAST_PATH"] = "false"
        run = ws.playbook(core, plays, hosts, "-vvv", *extra, env=e)
        assert_paths(run, names, fast)
        if normalize:
            for r in run.records:
                r["result"] = normalize(r["result"])
        runs.append(run)
    assert_identical(runs[0], runs[1], exact=exact)
    return runs


# ---------------------------------------------------------------------------------------------
# ansible-core internals
# ---------------------------------------------------------------------------------------------

INTERNALS_PROBE = r'''
import importlib.util, inspect, json, sys
from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as Normal
from ansible.plugins.become import BecomeBase
from ansible.plugins.connection import ConnectionBase
from ansible.plugins.connection.local import Connection as Local
from ansible.plugins.connection.ssh import Connection as Ssh
from ansible.plugins.loader import become_loader
from ansible.release import __version__

spec = importlib.util.spec_from_file_location("fp", sys.argv[1])
fp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fp)

problems = []
def need(cond, what):
    if not cond:
        problems.append(what)

src = inspect.getsource(ActionBase._execute_module)
# _execute_module must still route every host-side step through these methods, which the fast
# path replaces for the duration of one call; and still parse and clean the result itself.
for call in ("self._make_tmp_path(", "self._update_module_args(", "self._transfer_file(", "self._transfer_data(",
             "self._fixup_perms2(", "self._low_level_execute_command(", "self._parse_returned_data(",
             "self._configure_module("):
    need(call in src, "ActionBase._execute_module no longer calls " + call)
need("'args'" in src, "ActionBase._execute_module no longer names the args file 'args'")
need("'AnsiballZ_%s'" in src, "ActionBase._execute_module no longer names the module AnsiballZ_<name>")
need(".tmpdir" in inspect.getsource(ActionBase._update_module_args), "_update_module_args no longer sends the tmpdir")

def params(f):
    return list(inspect.signature(f).parameters)
need(params(ActionBase._low_level_execute_command)[:4] == ["self", "cmd", "sudoable", "in_data"],
     "ActionBase._low_level_execute_command(cmd, sudoable, in_data, ...) changed: %s" % params(ActionBase._low_level_execute_command))
need(params(ActionBase._transfer_file)[:3] == ["self", "local_path", "remote_path"], "ActionBase._transfer_file changed")
need(params(ActionBase._transfer_data)[:3] == ["self", "remote_path", "data"], "ActionBase._transfer_data changed")
need(params(ActionBase._make_tmp_path)[:2] == ["self", "remote_user"], "ActionBase._make_tmp_path changed")
need(params(ActionBase._fixup_perms2)[:4] == ["self", "remote_paths", "remote_user", "execute"], "ActionBase._fixup_perms2 changed")
need(params(ActionBase._update_module_args)[:4] == ["self", "module_name", "module_args", "task_vars"],
     "ActionBase._update_module_args changed")
need("self._execute_module(" in inspect.getsource(Normal.run), "the normal action plugin no longer calls _execute_module")
need("_remove_tmp_path" in inspect.getsource(Normal.run), "the normal action plugin no longer removes the tmp path")
need(hasattr(ConnectionBase, "has_pipelining") and Ssh.has_pipelining and Local.has_pipelining,
     "connections no longer say has_pipelining")
if tuple(int(x) for x in __version__.split(".")[:2]) >= (2, 17):
    need(getattr(BecomeBase, "pipelining", None) is True, "BecomeBase.pipelining is gone")
    need(getattr(become_loader.get("su"), "pipelining", None) is False, "the su become plugin no longer says pipelining = False")
else:
    need(not hasattr(BecomeBase, "pipelining") and "su" in fp.NO_STDIN_BECOME_METHODS,
         "before 2.17 the plugin's own list of become methods without stdin applies")
need(callable(getattr(BecomeBase, "expect_prompt", None)), "BecomeBase.expect_prompt is gone")
need(hasattr(C, "DEFAULT_KEEP_REMOTE_FILES"), "constants.DEFAULT_KEEP_REMOTE_FILES is gone")
need(hasattr(C.config, "_config_file"), "the config manager no longer has _config_file")
need("in_data" in inspect.getsource(Ssh.exec_command) and "-tt" in inspect.getsource(Ssh.exec_command),
     "the ssh connection no longer passes in_data without -tt")
need("expect_prompt() and not self.get_option('pipelining')" in inspect.getsource(Local.exec_command),
     "the local connection's pty-for-become-prompt condition changed (fast_path._cf_unavailable mirrors it)")
need(fp.check_internals() is None, "fast_path.check_internals(): %s" % fp.check_internals())
print(json.dumps({"version": __version__, "problems": problems}))
'''


@pytest.mark.parametrize("core", CORE_IDS)
def test_ansible_core_still_has_the_internals_the_fast_path_uses(core, collection_built_here):
    """Fails loudly when an ansible-core release changes what fast_path.py relies on."""
    p = subprocess.run([str(CORES[core] / "python"), "-c", INTERNALS_PROBE, str(COLL / "plugins" / "plugin_utils" / "fast_path.py")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert not out["problems"], f"ansible-core {out['version']}: " + "\n".join(out["problems"])
    if core == "2.16":
        assert out["version"].startswith("2.16."), out


def test_both_ends_of_the_supported_range_are_tested():
    assert "2.16" in CORES, ".venv-2.16 (ansible-core 2.16, the oldest supported) is missing: run `make deps`"


def test_check_internals_reports_a_missing_method(monkeypatch, collection_built_here):
    fp = load_fast_path()
    from ansible.plugins.action import ActionBase
    assert fp.check_internals() is None
    monkeypatch.delattr(ActionBase, "_fixup_perms2")
    assert "has no ActionBase._fixup_perms2" in fp.check_internals()


def test_every_module_has_the_fast_path_action_plugin(collection_built_here):
    names = module_names()
    assert names, f"no modules in {COLL}"
    for name in names:
        plugin = COLL / "plugins" / "action" / f"{name}.py"
        assert plugin.is_file(), f"module {name} has no action plugin {plugin}: copy plugins/action/redis_health.py"
        tree = ast.parse(plugin.read_text())
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ActionModule"]
        assert classes and any(getattr(b, "id", None) == "FastPathAction" for b in classes[0].bases), \
            f"{plugin}: ActionModule must subclass fast_path.FastPathAction"


# ---------------------------------------------------------------------------------------------
# The fast path is taken, one command per task
# ---------------------------------------------------------------------------------------------

def _n_health_tasks(redis, n):
    return play([health_task(f"health {i}", redis.port) for i in range(1, n + 1)], vars={"pw": redis.password})


def _assert_cache_entry(home, module, uid):
    d = Path(home) / CACHE
    st = d.lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == uid, (oct(st.st_mode), st.st_uid)
    f = d / cache_name(module)
    st = f.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o500 and st.st_uid == uid, (oct(st.st_mode), st.st_uid)
    assert sha256_of(f) == sha256_of(COLL / "plugins" / "modules" / module)
    others = sorted(p.name for p in d.iterdir() if p.name.startswith(module + "-") and p.name != f.name)
    assert not others, f"other versions of {module} left in the cache: {others}"
    assert not [p.name for p in d.iterdir() if p.name.startswith(".")], f"temp files left: {list(d.iterdir())}"


@pytest.mark.parametrize("core", CORE_IDS)
def test_local_connection_one_command_per_task(core, ws, redis_pw):
    # An older build of the module in the cache: the first install removes it.
    d = ws.home / CACHE
    d.mkdir(parents=True, mode=0o700)
    old = d / ("redis_health-" + "0" * 64)
    old.write_bytes(b"old build")
    old.chmod(0o500)

    run = ws.playbook(core, _n_health_tasks(redis_pw, 3), LOCAL, "-vvv")
    assert run.rc == 0, run.out
    first = run.section("health 1")
    assert FAST_CACHING in first and FAST_RAN in first, first
    # probe (miss), install (the binary on stdin), probe (run); nothing PUT.
    assert len(LOCAL_EXEC.findall(first)) == 3 and not PUT.findall(first), first
    for name in ("health 2", "health 3"):
        sec = run.section(name)
        assert len(LOCAL_EXEC.findall(sec)) == 1 and not PUT.findall(sec) and FAST_RAN in sec, sec
        assert FAST_CACHING not in sec
        assert "--ansible-args-stdin" in sec and redis_pw.password not in sec
    for r in run.records:
        assert r["status"] == "ok" and r["result"]["status"] == "ok", r
    _assert_cache_entry(ws.home, "redis_health", os.geteuid())

    # The normal path, for comparison (and so that the counting above can fail): 4 commands
    # (mkdir, chmod, run, rm) and 2 transfers per task.
    slow = ws.playbook(core, _n_health_tasks(redis_pw, 2), LOCAL, "-vvv",
                       env=ws.env(core, CREATIVEFLOW_REDIS_FAST_PATH="no"))
    assert slow.rc == 0, slow.out
    sec = slow.section("health 2")
    assert len(LOCAL_EXEC.findall(sec)) >= 3 and len(PUT.findall(sec)) == 2, sec


def test_a_new_build_is_cached_once_and_replaces_the_old_one(ws, redis_pw, tmp_path):
    """Same cache, two collection builds: each new binary is sent once, the old one removed."""
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), LOCAL, "-vvv")
    assert run.rc == 0 and FAST_CACHING in run.section("health 1"), run.out
    again = ws.playbook("newest", _n_health_tasks(redis_pw, 1), LOCAL, "-vvv")
    assert again.rc == 0 and FAST_CACHING not in again.out and FAST_RAN in again.out, again.out

    # A second build: the same collection with a binary that differs by one trailing byte
    # (ELF ignores it), installed in another collections path.
    other = tmp_path / "collections"
    shutil.copytree(COLLECTIONS, other, symlinks=True)
    binary = other / "ansible_collections" / "creativeflow" / "redis" / "plugins" / "modules" / "redis_health"
    real = binary.resolve()
    real.chmod(0o755)
    with open(real, "ab") as f:
        f.write(b"\0")
    new_name = "redis_health-" + sha256_of(real)
    env = ws.env("newest", ANSIBLE_COLLECTIONS_PATH=other)
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 2), LOCAL, "-vvv", env=env)
    assert run.rc == 0, run.out
    assert FAST_CACHING in run.section("health 1") and FAST_CACHING not in run.section("health 2"), run.out
    entries = sorted(p.name for p in (ws.home / CACHE).iterdir())
    assert entries == [new_name], entries


@pytest.mark.parametrize("core", CORE_IDS)
def test_ssh_one_command_per_task(core, ws, redis_pw, ssh_host):
    host = {"sshhost": ssh_host.inventory_vars(ssh_host.login)}
    env = ws.env(core, remote_tmp=False)
    run = ws.playbook(core, _n_health_tasks(redis_pw, 3), host, "-vvv", env=env)
    assert run.rc == 0, run.out
    first = run.section("health 1")
    assert FAST_RAN in first and not PUT.findall(first) and not SSH_XFER.findall(first), first
    assert len(SSH_EXEC.findall(first)) in (1, 3), first  # 3 when this is the host's first task
    for name in ("health 2", "health 3"):
        sec = run.section(name)
        assert len(SSH_EXEC.findall(sec)) == 1, sec
        assert not PUT.findall(sec) and not SSH_XFER.findall(sec) and FAST_RAN in sec, sec
        # Data on stdin means no -tt: a pty would echo it.
        assert " -tt " not in sec
    for r in run.records:
        assert r["status"] == "ok" and r["result"]["status"] == "ok", r
    _assert_cache_entry(ssh_host.home(ssh_host.login), "redis_health", ssh_host.uid(ssh_host.login))

    slow = ws.playbook(core, _n_health_tasks(redis_pw, 2), host, "-vvv",
                       env=dict(env, CREATIVEFLOW_REDIS_FAST_PATH="0"))
    assert slow.rc == 0, slow.out
    sec = slow.section("health 2")
    assert len(PUT.findall(sec)) == 2 and len(SSH_EXEC.findall(sec)) >= 3, sec


# ---------------------------------------------------------------------------------------------
# Fallbacks: each one falls back, says why at -vvv, and the module still runs (normal path)
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(path, options):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64m,mode=0700,{options}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _fallback_case(ws, redis_pw, core, reason, tasks_extra=None, hosts=None, env_extra=None, name="health 1"):
    task = health_task(name, redis_pw.port, **(tasks_extra or {}))
    env = ws.env(core, **(env_extra or {}))
    run = ws.playbook(core, play([task], vars={"pw": redis_pw.password}), hosts or LOCAL, "-vvv", env=env)
    assert run.rc == 0, run.out
    sec = run.section(name)
    assert FALLBACK + reason in sec or (FALLBACK in sec and reason in sec), f"expected fallback because {reason!r}:\n{sec}"
    assert FAST_RAN not in sec, sec
    # The normal path ran the module: it was sent to the host.
    assert PUT.findall(sec) or SSH_XFER.findall(sec), sec
    res = run.result(name)
    assert res["status"] == "ok" and res["result"]["status"] == "ok", res
    return run


@pytest.mark.parametrize("core", CORE_IDS)
def test_fallback_async(core, ws, redis_pw):
    # Absolute: async_status expands ~ from the passwd entry, the wrapper from $HOME (ours).
    _fallback_case(ws, redis_pw, core, "async task", {"async": 60, "poll": 1},
                   env_extra={"ANSIBLE_ASYNC_DIR": ws.root / "async"})


@pytest.mark.parametrize("how,reason", [
    ("host_var", "creativeflow_redis_fast_path is False"),
    ("task_var", "creativeflow_redis_fast_path is no"),
    ("environment", "CREATIVEFLOW_REDIS_FAST_PATH=off in the environment"),
    ("ansible_cfg", "[creativeflow_redis] fast_path = false in "),
])
def test_fallback_opt_out(how, reason, ws, redis_pw):
    hosts, extra, env = None, None, None
    if how == "host_var":
        hosts = {"localhost": {"ansible_connection": "local", "creativeflow_redis_fast_path": False}}
    elif how == "task_var":
        extra = {"vars": {"creativeflow_redis_fast_path": "no"}}
    elif how == "environment":
        env = {"CREATIVEFLOW_REDIS_FAST_PATH": "off"}
    else:
        ws.cfg.write_text("[defaults]\n\n[creativeflow_redis]\nfast_path = false\n")
    _fallback_case(ws, redis_pw, "newest", reason, extra, hosts, env)


def test_opt_out_variable_wins_over_environment_and_cfg(ws, redis_pw):
    ws.cfg.write_text("[defaults]\n\n[creativeflow_redis]\nfast_path = false\n")
    env = ws.env("newest", CREATIVEFLOW_REDIS_FAST_PATH="false")
    hosts = {"localhost": {"ansible_connection": "local", "creativeflow_redis_fast_path": True}}
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), hosts, "-vvv", env=env)
    assert run.rc == 0 and FAST_RAN in run.section("health 1"), run.out


def test_opt_out_must_be_a_boolean(ws, redis_pw):
    hosts = {"localhost": {"ansible_connection": "local", "creativeflow_redis_fast_path": "sometimes"}}
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), hosts)
    assert run.rc != 0 and "creativeflow_redis_fast_path must be a boolean, got 'sometimes'" in run.out, run.out


def test_fallback_keep_remote_files(ws, redis_pw):
    _fallback_case(ws, redis_pw, "newest", "ANSIBLE_KEEP_REMOTE_FILES is on", env_extra={"ANSIBLE_KEEP_REMOTE_FILES": "1"})


@pytest.mark.parametrize("core", CORE_IDS)
def test_fallback_connection_without_stdin(core, ws, redis_pw):
    hosts = {"localhost": {"ansible_connection": "cf_nostdin"}}
    _fallback_case(ws, redis_pw, core, "connection cf_nostdin cannot pass data on standard input", hosts=hosts)


@pytest.mark.parametrize("core", CORE_IDS)
def test_fallback_become_method_without_stdin(core, ws, redis_pw):
    if os.geteuid() != 0:
        pytest.skip("su to root without a password needs root")
    _fallback_case(ws, redis_pw, core, "become method su cannot pass data on standard input",
                   {"become": True, "become_method": "su", "become_user": "root"})


def test_fallback_local_become_password_prompt_without_pipelining(ws, redis_pw):
    if os.geteuid() != 0:
        pytest.skip("sudo to root without asking needs root")
    # root -> nobody: sudo does not ask root, but the local connection cannot know that and
    # gives the command a pty as stdin.
    _fallback_case(ws, redis_pw, "newest", "local become with a password prompt needs pipelining",
                   {"become": True, "become_method": "sudo", "become_user": "nobody",
                    "vars": {"ansible_become_password": "not-asked-for-root",
                             "ansible_shell_allow_world_readable_temp": True}})


def test_become_to_the_same_user_with_a_password_keeps_the_fast_path(ws, redis_pw):
    """become_user == the connection user: Ansible does not wrap the command, nothing asks."""
    if os.geteuid() != 0:
        pytest.skip("the local connection's user must be root here")
    task = health_task("health 1", redis_pw.port, become=True, become_user="root",
                       vars={"ansible_become_password": "unused"})
    run = ws.playbook("newest", play([task], vars={"pw": redis_pw.password}), LOCAL, "-vvv")
    assert run.rc == 0 and FAST_RAN in run.section("health 1"), run.out


@pytest.mark.parametrize("core", CORE_IDS)
def test_fallback_read_only_home(core, ws, redis_pw):
    with tmpfs(ws.root / "rohome", "ro") as home:
        _fallback_case(ws, redis_pw, core, "the binary cache cannot be used: cannot create", env_extra={"HOME": home})


@pytest.mark.parametrize("core", CORE_IDS)
def test_fallback_noexec_home(core, ws, redis_pw):
    with tmpfs(ws.root / "nxhome", "noexec") as home:
        run = _fallback_case(ws, redis_pw, core, "cannot execute files in", env_extra={"HOME": home})
        # Found before sending the binary: nothing cached, nothing left behind.
        assert FAST_CACHING not in run.out
        assert sorted(p.name for p in (home / CACHE).iterdir()) == []


def test_fallback_home_remounted_noexec_after_caching(ws, redis_pw):
    with tmpfs(ws.root / "home2", "exec") as home:
        env = {"HOME": home}
        run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), LOCAL, "-vvv", env=ws.env("newest", **env))
        assert run.rc == 0 and FAST_RAN in run.out, run.out
        subprocess.run(["mount", "-o", "remount,noexec", str(home)], check=True)
        _fallback_case(ws, redis_pw, "newest", "cannot execute ~/.cache/creativeflow.redis/redis_health-", env_extra=env)


def test_fallback_cache_dir_owned_by_someone_else(ws, redis_pw):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    d = ws.home / CACHE
    d.mkdir(parents=True, mode=0o700)
    os.chown(d, 65534, 65534)
    _fallback_case(ws, redis_pw, "newest", "is not a directory owned by the effective user")


def test_fallback_sudo_requiretty(ws, redis_pw, ssh_host):
    path = ssh_host.add_sudoers(f"{ssh_host.tag}-tty", f"Defaults:{ssh_host.login} requiretty\n")
    try:
        hosts = {"sshhost": ssh_host.inventory_vars(ssh_host.login)}
        run = _fallback_case(ws, redis_pw, "newest", "the fast path command did not start",
                             {"become": True}, hosts=hosts, env_extra={"ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp"})
        assert "tty" in run.section("health 1")
    finally:
        ssh_host.remove_sudoers(path)


# ---------------------------------------------------------------------------------------------
# A cache entry that is not safe is never run
# ---------------------------------------------------------------------------------------------

def _add_acl_entry(path, uid):
    """A POSIX ACL entry for `uid` (rwx, masked to nothing): what `ls -l` shows as a '+'. Written
    as the system.posix_acl_access xattr, so no setfacl is needed."""
    import struct
    entries = [(0x01, 7, 0xFFFFFFFF), (0x02, 7, uid), (0x04, 0, 0xFFFFFFFF), (0x10, 0, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)]
    os.setxattr(path, "system.posix_acl_access", struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))


@pytest.mark.parametrize("tamper", ["group_writable", "other_writable", "foreign_owner", "symlink", "dir_group_writable",
                                    "acl_entry"])
def test_unsafe_cache_entry_is_never_run(tamper, ws, redis_pw):
    if os.geteuid() != 0 and tamper == "foreign_owner":
        pytest.skip("chown needs root")
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), LOCAL)
    assert run.rc == 0, run.out
    d = ws.home / CACHE
    f = d / cache_name("redis_health")
    pwned = ws.root / "pwned"
    evil = ws.root / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {pwned}\necho '{{\"changed\": false, \"evil\": true}}'\n")
    evil.chmod(0o755)
    f.chmod(0o700)
    f.unlink()
    if tamper == "symlink":
        f.symlink_to(evil)
    else:
        shutil.copyfile(evil, f)
        f.chmod({"group_writable": 0o720, "other_writable": 0o702}.get(tamper, 0o700))
        if tamper == "foreign_owner":
            os.chown(f, 65534, 65534)
        if tamper == "dir_group_writable":
            d.chmod(0o770)
        if tamper == "acl_entry":
            _add_acl_entry(f, 65534)
            assert subprocess.run(["ls", "-l", str(f)], capture_output=True, text=True).stdout.startswith("-rwx------+")
    run = ws.playbook("newest", _n_health_tasks(redis_pw, 1), LOCAL, "-vvv")
    assert run.rc == 0, run.out
    assert not pwned.exists(), f"the tampered cache entry ({tamper}) was run"
    res = run.result("health 1")["result"]
    assert "evil" not in res and res["status"] == "ok", res
    # Replaced by the genuine binary, which then ran.
    assert FAST_CACHING in run.out and FAST_RAN in run.out, run.out
    _assert_cache_entry(ws.home, "redis_health", os.geteuid())


def test_module_digest_is_hashed_once_per_run_and_file_version(tmp_path, monkeypatch, collection_built_here):
    fp = load_fast_path()
    from ansible import constants as C
    local_tmp = tmp_path / "ansible-local-1"
    local_tmp.mkdir()
    monkeypatch.setattr(C, "DEFAULT_LOCAL_TMP", str(local_tmp), raising=False)
    f = tmp_path / "redis_health"
    f.write_bytes(b"one build")
    assert fp.module_digest(str(f)) == hashlib.sha256(b"one build").hexdigest()
    memo = list(local_tmp.iterdir())
    assert len(memo) == 1 and memo[0].read_text() == hashlib.sha256(b"one build").hexdigest()
    # The memo is what the next task of the run reads (proof: a planted value comes back)...
    memo[0].write_text("a" * 64)
    assert fp.module_digest(str(f)) == "a" * 64
    # ...until the file changes: another size and mtime, another key.
    f.write_bytes(b"another build")
    os.utime(f, ns=(1, 2))
    assert fp.module_digest(str(f)) == hashlib.sha256(b"another build").hexdigest()


def test_install_refuses_a_copy_with_the_wrong_hash(ws, collection_built_here):
    """The install command checks the sha256 on the host: a corrupted transfer is not cached."""
    fp = load_fast_path()
    d = ws.home / CACHE
    d.mkdir(parents=True, mode=0o700)
    good = (COLL / "plugins" / "modules" / "redis_health").read_bytes()
    digest = hashlib.sha256(good).hexdigest()
    env = {"HOME": str(ws.home), "PATH": os.environ["PATH"]}
    bad = subprocess.run(["/bin/sh", "-c", fp.install_command("redis_health", digest)], input=good[:-1] + b"x",
                         capture_output=True, env=env)
    assert fp.INSTALL_FAILED.encode() in bad.stdout and b"sha256 of the copy is" in bad.stdout, bad
    assert list(d.iterdir()) == [], list(d.iterdir())
    ok = subprocess.run(["/bin/sh", "-c", fp.install_command("redis_health", digest)], input=good, capture_output=True, env=env)
    assert ok.stdout.strip().endswith(fp.INSTALLED.encode()), ok
    assert [p.name for p in d.iterdir()] == [f"redis_health-{digest}"]


def test_probe_reads_stdin_away_and_never_runs_a_missing_binary(ws, collection_built_here):
    fp = load_fast_path()
    env = {"HOME": str(ws.home), "PATH": os.environ["PATH"]}
    p = subprocess.run(["/bin/sh", "-c", fp.probe_command("redis_health", "1" * 64, "")], input=b"{}" * 100000,
                       capture_output=True, env=env)
    assert p.returncode == 0 and p.stdout.strip() == fp.MISS.encode(), p
    p = subprocess.run(["/bin/sh", "-c", fp.probe_command("redis_health", "1" * 64, "")], input=b"{}",
                       capture_output=True, env={"PATH": os.environ["PATH"], "HOME": "relative/home"})
    assert fp.UNUSABLE.encode() + b" HOME is not an absolute path" in p.stdout, p


# ---------------------------------------------------------------------------------------------
# Identical results on both paths: every module's EXAMPLES
# ---------------------------------------------------------------------------------------------

def _examples(module):
    src = (REPO / "collection" / "plugins" / "modules" / f"{module}.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{module} has no EXAMPLES")


def _name_all(tasks, prefix):
    for i, t in enumerate(tasks):
        t.setdefault("name", f"{prefix} {i}")
        if "block" in t:
            _name_all(t["block"], f"{t['name']} /")
        else:
            t["ignore_errors"] = True
    return tasks


def test_examples_cover_every_module(collection_built_here):
    tested = {"redis_health", "redis_config", "redis_service", "redis_sentinel", "redis_cluster",
              "redis_lua_script", "redis_command", "redis_keys"}
    missing = set(module_names()) - tested
    assert not missing, f"add the EXAMPLES of {sorted(missing)} to the both-paths tests in tests/test_fast_path.py"


def test_action_group_lists_every_module(collection_built_here):
    """meta/runtime.yml's `redis` group names every module, so that
    module_defaults: {group/creativeflow.redis.redis: ...} reaches each one."""
    group = yaml.safe_load((COLL / "meta" / "runtime.yml").read_text())["action_groups"]["redis"]
    assert sorted(set(module_names()) - set(group)) == [], f"add them to action_groups.redis in collection/meta/runtime.yml: {group}"


def test_action_group_defaults_reach_the_new_modules(ws, redis_pw):
    """The password comes only from the group's module_defaults: a module outside the group
    gets no password and fails with NOAUTH; on both paths."""
    tasks = [
        {"name": "command", "creativeflow.redis.redis_command": {"command": ["PING"], "login_port": redis_pw.port}},
        {"name": "keys", "creativeflow.redis.redis_keys": {"pattern": "nothing:*", "login_port": redis_pw.port}},
        {"name": "lua", "creativeflow.redis.redis_lua_script": {"builtin": "rate_limiter", "mode": "script",
                                                                 "login_port": redis_pw.port}},
    ]
    plays = play(tasks, vars={"pw": redis_pw.password},
                 module_defaults={"group/creativeflow.redis.redis": {"login_host": "127.0.0.1",
                                                                     "login_password": "{{ pw }}"}})
    # The same server for both paths: its script cache emptied before each.
    fast, slow = both_paths(ws, "newest", plays, LOCAL, reset=lambda: redis_pw.cli("SCRIPT", "FLUSH"))
    for run in (fast, slow):
        assert run.rc == 0, run.out
        assert [r["status"] for r in run.records] == ["ok"] * 3, run.out
        assert redis_pw.password not in run.out
    assert fast.result("command")["result"]["reply"] == "PONG"


@pytest.mark.parametrize("core", CORE_IDS)
def test_redis_health_examples_identical_on_both_paths(core, ws, redis_server, tmp_path):
    from test_redis_health import PW, _retarget

    ca_dir = tmp_path / "pki"
    ca_dir.mkdir()

    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=ca_dir, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=ca")
    (ca_dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "s.key", "-out", "s.csr", "-subj", "/CN=s")
    ossl("x509", "-req", "-in", "s.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "s.crt",
         "-days", "2", "-extfile", "san.ext")
    master = redis_server(f"requirepass {PW}")
    replica = redis_server(f"requirepass {PW}", f"masterauth {PW}", f"replicaof 127.0.0.1 {master.port}")
    sentinel = redis_server(f"sentinel monitor mymaster 127.0.0.1 {master.port} 1",
                            f"sentinel auth-pass mymaster {PW}", binary="redis-sentinel")
    tls_port = free_port()
    redis_server(f"tls-port {tls_port}", f"tls-cert-file {ca_dir}/s.crt", f"tls-key-file {ca_dir}/s.key",
                 f"tls-ca-cert-file {ca_dir}/ca.crt", "tls-auth-clients no")
    ports = {6379: master.port, 6380: replica.port, 26379: sentinel.port, 6390: tls_port, 7000: master.port}
    # The same state for both runs: the replica in sync before the first one.
    deadline = time.time() + 60
    while "master_link_status:up" not in replica.cli("INFO", "replication"):
        assert time.time() < deadline, replica.cli("INFO", "replication")
        time.sleep(0.2)
    tasks = _name_all(_retarget(_examples("redis_health"), ports, str(ca_dir / "ca.crt")), "example")
    plays = play(tasks, vars={"redis_password": PW},
                 module_defaults={"group/creativeflow.redis.redis": {"login_port": master.port}})
    fast, slow = both_paths(ws, core, plays, LOCAL)
    assert fast.rc == 0, fast.out
    assert PW not in fast.out and PW not in slow.out


def test_redis_config_examples_identical_on_both_paths(ws):
    import getpass
    import grp

    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    work = ws.root / "cfg"
    port = free_port()
    pw = "cfg-" + secrets.token_hex(8)
    server = {}

    def reset():
        if server.get("proc"):
            server["proc"].terminate()
            server["proc"].wait(10)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / "legacy.conf.in").write_text("bind 127.0.0.1\nport ##PORT##\nmaxmemory ##MAXMEMORY##\n")
        res = subprocess.run([str(COLL / "plugins" / "modules" / "redis_config"), "--ansible-args-stdin"],
                             input=json.dumps({"path": str(work / "redis.conf"),
                                               "settings": {"port": port, "dir": str(work), "requirepass": pw}}),
                             capture_output=True, text=True, timeout=60)
        assert json.loads(res.stdout)["changed"], res.stdout
        server["proc"] = subprocess.Popen(["redis-server", str(work / "redis.conf")], stdout=subprocess.DEVNULL)
        assert _ping(port)

    tasks = _examples("redis_config")
    for t in tasks:
        args = t.get("creativeflow.redis.redis_config")
        if not args:
            continue
        args["path"] = str(work / os.path.basename(args["path"]))
        if "owner" in args:
            args["owner"], args["group"] = user, group
        if "src" in args:
            args["src"] = str(work / "legacy.conf.in")
        if args.get("apply") == "live":
            args["settings"]["port"] = port
            args["settings"]["dir"] = str(work)
            args["login_port"] = port
    tasks = _name_all(tasks, "example")
    plays = play(tasks, vars={"redis_password": pw, "replication_password": "repl-Pass-1", "app_password": "app-Pass-2"})
    states = []

    def snapshot():
        out = {}
        for p in sorted(work.iterdir()):
            if p.suffix in (".rdb", ".aof") or p.name == "appendonlydir":
                continue
            st = p.stat()
            out[re.sub(r"\d", "#", p.name)] = (oct(st.st_mode), st.st_uid, st.st_gid, re.sub(r"\d{6,}", "#", p.read_text()))
        return out

    try:
        runs = []
        for fast in (True, False):
            reset()
            e = ws.env("newest")
            if not fast:
                e["CREATIVEFLOW_REDIS_FAST_PATH"] = "false"
            run = ws.playbook("newest", plays, LOCAL, "-vvv", "--diff", env=e)
            assert run.rc == 0, run.out
            assert_paths(run, module_task_names(plays), fast)
            runs.append(run)
            states.append(snapshot())
        # Backup files carry a timestamp in their name: digits aside, the results are exact.
        for r in runs:
            for rec in r.records:
                if "backup_file" in rec["result"]:
                    rec["result"]["backup_file"] = re.sub(r"\d", "#", rec["result"]["backup_file"])
        assert_identical(runs[0], runs[1], exact=True)
        assert states[0] == states[1]
        assert any(r["result"].get("changed") for r in runs[0].records), runs[0].out
    finally:
        if server.get("proc"):
            server["proc"].terminate()
            server["proc"].wait(10)


def test_redis_service_examples_identical_on_both_paths(ws):
    work = ws.root / "svc"
    admin_pw = "adm-" + secrets.token_hex(8)
    ports = {"cache": free_port(), "sessions": free_port(), "scratch": free_port(), "sentinel": free_port()}

    def conf(name, extra=""):
        return (f"port {ports[name]}\nbind 127.0.0.1\ndir {work}\nlogfile {work}/{name}.log\n"
                f"pidfile {work}/{name}.pid\nsave \"\"\nappendonly no\n{extra}")

    def pids():
        out = []
        for p in work.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                out.append(int(p.read_text().strip()))
        return out

    def stop_all():
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"redis" not in f.read():
                        continue
                os.kill(pid, 15)
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids()):
            time.sleep(0.05)

    def reset():
        if work.exists():
            stop_all()
            shutil.rmtree(work)
        work.mkdir()
        (work / "cache.conf").write_text(conf("cache", f"user admin on >{admin_pw} ~* &* +@all\n"))
        (work / "sessions.conf").write_text(conf("sessions"))
        (work / "scratch.conf").write_text(conf("scratch"))
        (work / "sentinel-main.conf").write_text(
            conf("sentinel", f"sentinel monitor mymaster 127.0.0.1 {ports['sessions']} 1\n").replace('save ""\nappendonly no\n', ""))

    tasks = []
    for t in _examples("redis_service"):
        args = t.get("creativeflow.redis.redis_service")
        if args is not None:
            if args.get("manager") == "systemd":
                # Would install a unit into this machine's systemd: the systemd Molecule scenario
                # runs that one in a container.
                continue
            if "config" in args:
                base = os.path.basename(args["config"])
                args["config"] = str(work / ("scratch.conf" if base == "redis.conf" else base))
            if "pidfile" in args:
                args["pidfile"] = str(work / "cache.pid")
            args.setdefault("wait_timeout", 30)
            args["wait_timeout"] = min(args["wait_timeout"], 30)
        tasks.append(t)
    tasks = _name_all(tasks, "example")
    plays = play(tasks, vars={"redis_admin_password": admin_pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset)
        assert any(r["result"].get("changed") for r in runs[0].records), runs[0].out
        assert admin_pw not in runs[0].out
    finally:
        if work.exists():
            stop_all()


class Servers:
    """Redis processes started afresh for each path on the same ports, so both runs see the
    same state; stopped by pid."""

    def __init__(self):
        self.procs = []

    def start(self, lines, port, binary="redis-server"):
        p = RedisProc(lines, binary=binary, port=port)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []


def _wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, what
        time.sleep(0.2)


def _sentinel_link_state(value):
    """Sentinel flags an instance `disconnected` until its asynchronous link is up, and learns
    a master's replicas from the master's INFO, which it first reads some time after MONITOR:
    a module reading right after MONITOR may or may not see either, which is timing, not the
    path. So `disconnected` flags and the replica lists of monitors are left out (CI saw one
    path list the just-found replica with link status `err` and the other list none)."""
    if isinstance(value, dict):
        return {k: [f for f in v if f != "disconnected"] if k == "flags" and isinstance(v, list)
                else "<timing>" if k == "replicas" and isinstance(v, list) else _sentinel_link_state(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_sentinel_link_state(v) for v in value]
    return value


def test_redis_sentinel_examples_identical_on_both_paths(ws):
    pw = "snt-" + secrets.token_hex(8)
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    servers = Servers()

    def reset():
        servers.stop()
        servers.start([f"requirepass {pw}", f"masterauth {pw}"], master_port)
        replica = servers.start([f"requirepass {pw}", f"masterauth {pw}", f"replicaof 127.0.0.1 {master_port}"], replica_port)
        servers.start([], sentinel_port, binary="redis-sentinel")
        _wait(lambda: "master_link_status:up" in replica.cli("INFO", "replication"), "replica sync")

    ports = {26379: sentinel_port, 6379: master_port}
    tasks = []
    for t in _examples("redis_sentinel"):
        args = t["creativeflow.redis.redis_sentinel"]
        args["login_port"] = ports[args["login_port"]]
        for m in args.get("monitors") or []:
            m["port"] = ports[m["port"]]
            # One Sentinel here: a quorum it can reach, so that it sees the master as up.
            m["quorum"] = 1
        if args.get("state") == "failover":
            # The Sentinel needs a moment to discover the replica after MONITOR.
            t.update({"until": "moved is succeeded", "retries": 30, "delay": 1})
        tasks.append(t)
    plays = play(_name_all(tasks, "example"), vars={"redis_password": pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset, normalize=_sentinel_link_state)
        by = {r["task"]: r for r in runs[0].records}
        assert by["Fail the group over and wait until every Sentinel agrees"]["status"] == "ok", runs[0].out
        assert pw not in runs[0].out and pw not in runs[1].out
    finally:
        servers.stop()


def _cluster_layout_as_a_set(value):
    """Which of the six (identical) nodes becomes a master depends on the random node ids, so
    the per-node list is compared as a set of (normalised) nodes."""
    if isinstance(value, dict):
        return {k: sorted((_cluster_layout_as_a_set(n) for n in v), key=lambda n: json.dumps(loose(n), sort_keys=True))
                if k == "nodes" and isinstance(v, list) else _cluster_layout_as_a_set(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cluster_layout_as_a_set(v) for v in value]
    return value


def test_redis_cluster_examples_identical_on_both_paths(ws):
    """The EXAMPLES' 10.0.0.x:port nodes become local nodes (one port each); the example that
    builds its node list from groups['redis_cluster'] gets the list that template gives for
    hosts 10.0.0.11 to .14."""
    pw = "cls-" + secrets.token_hex(8)
    ports = {}

    def local(addr):
        if addr not in ports:
            ports[addr] = free_port()
        return f"127.0.0.1:{ports[addr]}"

    tasks = _examples("redis_cluster")
    for t in tasks:
        args = t["creativeflow.redis.redis_cluster"]
        for key in ("nodes", "remove_nodes"):
            if isinstance(args.get(key), str) and "groups['redis_cluster']" in args[key]:
                args[key] = [f"10.0.0.{h}:{p}" for h in (11, 12, 13, 14) for p in (7000, 7001)]
            if isinstance(args.get(key), list):
                args[key] = [local(a) for a in args[key]]
        if "login_host" in args:
            args["login_port"] = int(local(f"{args['login_host']}:{args['login_port']}").rsplit(":", 1)[1])
            args["login_host"] = "127.0.0.1"
    assert len(ports) >= 6, ports
    servers = Servers()

    def reset():
        servers.stop()
        for port in ports.values():
            servers.start(["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
                           "repl-diskless-sync-delay 0", f"requirepass {pw}", f"masterauth {pw}"], port)

    plays = play(_name_all(tasks, "example"), vars={"redis_password": pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset, normalize=_cluster_layout_as_a_set)
        by = {r["task"]: r for r in runs[0].records}
        assert by["Form a cluster of six nodes, one replica per master"]["result"].get("changed") is True, runs[0].out
        assert pw not in runs[0].out and pw not in runs[1].out
    finally:
        servers.stop()


def _lists_as_sets(*keys):
    """Lists whose order is not the path's doing (SCAN order follows each server's random hash
    seed; per-node lists follow cluster gossip), compared as sets of (normalised) items."""
    def norm(value):
        if isinstance(value, dict):
            return {k: sorted((norm(n) for n in v), key=lambda n: json.dumps(loose(n), sort_keys=True))
                    if k in keys and isinstance(v, list) else norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value
    return norm


def _standalone_sentinel_cluster(servers, pw, ports):
    """A standalone server, a Sentinel watching it as `mymaster`, and a three-master cluster,
    on the same ports for each path; the cluster is formed before returning."""
    plain = servers.start([f"requirepass {pw}"], ports["plain"])
    servers.start([f"sentinel monitor mymaster 127.0.0.1 {ports['plain']} 1",
                   f"sentinel auth-pass mymaster {pw}"], ports["sentinel"], binary="redis-sentinel")
    nodes = [servers.start(["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
                            f"requirepass {pw}", f"masterauth {pw}"], port) for port in ports["cluster"]]
    p = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       capture_output=True, text=True, env=dict(os.environ, REDISCLI_AUTH=pw), timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    _wait(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes), "cluster ready")
    return plain


def _retarget_examples(module, ports, fixup=None):
    """login_port 7000 becomes a cluster node, 26379 the Sentinel, any other the standalone server."""
    tasks = _examples(module)
    for t in tasks:
        args = t.get(f"creativeflow.redis.{module}")
        if args is None:
            continue
        args["login_port"] = {7000: ports["cluster"][0], 26379: ports["sentinel"]}.get(args.get("login_port"),
                                                                                         ports["plain"])
        args["login_host"] = "127.0.0.1"
        if fixup:
            fixup(args)
    return _name_all(tasks, "example")


def _example_ports():
    return {"plain": free_port(), "sentinel": free_port(), "cluster": [free_port() for _ in range(3)]}


def test_redis_lua_script_examples_identical_on_both_paths(ws):
    """Every example runs, the Sentinel and Cluster ones included (a Sentinel watching the
    standalone server, a three-master cluster); the src file is written under the workspace."""
    pw = "lua-" + secrets.token_hex(8)
    ports = _example_ports()
    lib = ws.root / "mylib.lua"
    lib.write_text("#!lua name=mylib\nredis.register_function('mylib_hello', function() return 'hello' end)\n")

    def fixup(args):
        if args.get("src") == "/etc/myapp/mylib.lua":
            args["src"] = str(lib)
    tasks = _retarget_examples("redis_lua_script", ports, fixup)
    servers = Servers()
    plain = {}

    def reset():
        servers.stop()
        plain["proc"] = _standalone_sentinel_cluster(servers, pw, ports)

    plays = play(tasks, vars={"redis_password": pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset, normalize=_lists_as_sets("nodes"))
        for run in runs:
            assert run.rc == 0, run.out
            assert not [r for r in run.records if r["status"] == "failed"], run.out
            assert pw not in run.out
        assert runs[0].result("Load the collection's rate limiters as Redis Functions")["result"]["changed"] is True
        assert runs[0].result("Load the rate limiters on every master of a Cluster")["result"]["changed"] is True
        # The last run's servers: the normal path loaded what the fast path did.
        libs = plain["proc"].cli("FUNCTION", "LIST")
        assert "ratelimit" in libs and "session" in libs and "mylib" not in libs, libs
    finally:
        servers.stop()


def test_redis_command_examples_identical_on_both_paths(ws):
    pw = "cmd-" + secrets.token_hex(8)
    ports = _example_ports()
    tasks = _retarget_examples("redis_command", ports)
    servers = Servers()
    plain = {}

    def reset():
        servers.stop()
        plain["proc"] = _standalone_sentinel_cluster(servers, pw, ports)

    plays = play(tasks, vars={"redis_password": pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset, normalize=_lists_as_sets("nodes", "replies"))
        for run in runs:
            assert run.rc == 0, run.out
            assert not [r for r in run.records if r["status"] == "failed"], run.out
            assert pw not in run.out
        assert runs[0].result("Ping the server")["result"]["reply"] == "PONG"
        assert len(runs[0].result("Run CONFIG GET on every node of the cluster (read-only, runs in check mode too)")
                   ["result"]["replies"]) == 3
        assert plain["proc"].cli("GET", "maintenance:notice") == "back at 14:00"
    finally:
        servers.stop()


def test_redis_keys_examples_identical_on_both_paths(ws):
    """The examples against one standalone server (they name no Sentinel or Cluster), with the
    same keys before each path."""
    pw = "key-" + secrets.token_hex(8)
    port = free_port()
    servers = Servers()
    plain = {}

    def reset():
        servers.stop()
        s = plain["proc"] = servers.start([f"requirepass {pw}"], port)
        for db, keys in ((0, [f"session:user42:{i}" for i in range(5)] + ["session:user7:1"]),
                         (1, [f"cache:{i}" for i in range(3)]), (9, [f"x{i}" for i in range(4)])):
            for k in keys:
                s.cli("-n", str(db), "SET", k, "v")

    tasks = _retarget_examples("redis_keys", {"plain": port, "sentinel": None, "cluster": [None]})
    plays = play(tasks, vars={"redis_password": pw})
    try:
        runs = both_paths(ws, "newest", plays, LOCAL, reset=reset, normalize=_lists_as_sets("found", "nodes"))
        for run in runs:
            assert run.rc == 0, run.out
            assert not [r for r in run.records if r["status"] == "failed"], run.out
            assert pw not in run.out
        assert runs[0].result("Count a user's sessions in database 0")["result"]["count"] == 5
        assert runs[0].result("Clear the user's sessions")["result"]["deleted"] == 5
        assert plain["proc"].cli("KEYS", "*").split() == ["session:user7:1"]
        assert plain["proc"].cli("-n", "9", "DBSIZE") == "0"
    finally:
        servers.stop()


# ---------------------------------------------------------------------------------------------
# Identical results on both paths: check, diff, no_log, module_defaults, ad hoc, delegate_to,
# become (root, an unprivileged user, a sudo password), over SSH
# ---------------------------------------------------------------------------------------------

def _features_plays(ssh_host, redis, conf_dir):
    pw = "{{ pw }}"
    cfg = {"path": f"{conf_dir}/app.conf", "settings": {"port": redis.port, "maxmemory": "64mb", "requirepass": pw}}
    return [
        {"hosts": "sshhost", "gather_facts": False, "vars": {"pw": redis.password},
         "module_defaults": {"group/creativeflow.redis.redis": {"login_port": redis.port, "login_password": pw}},
         "tasks": [
             {"name": "config check diff", "creativeflow.redis.redis_config": cfg, "check_mode": True, "diff": True},
             {"name": "config apply diff", "creativeflow.redis.redis_config": cfg, "diff": True},
             {"name": "config again", "creativeflow.redis.redis_config": cfg, "diff": True},
             {"name": "config bad input", "creativeflow.redis.redis_config": dict(cfg, settings={"port": "x\ny"}),
              "ignore_errors": True},
             {"name": "health group defaults", "creativeflow.redis.redis_health": {"checks": ["ping", "memory"]}},
             {"name": "health check mode", "creativeflow.redis.redis_health": {}, "check_mode": True},
             {"name": "health no_log", "creativeflow.redis.redis_health": {}, "no_log": True},
             {"name": "health wrong password", "creativeflow.redis.redis_health": {"login_password": "wrong-pw"},
              "ignore_errors": True},
             {"name": "health become root", "creativeflow.redis.redis_health": {}, "become": True},
             {"name": "health become unprivileged", "creativeflow.redis.redis_health": {}, "become": True,
              "become_user": ssh_host.other},
             {"name": "health environment", "creativeflow.redis.redis_health": {}, "environment": {"CF_X": "1"}},
         ]},
        {"hosts": "sshpw", "gather_facts": False, "vars": {"pw": redis.password},
         "tasks": [
             {"name": "health become with sudo password", "become": True,
              "creativeflow.redis.redis_health": {"login_port": redis.port, "login_password": pw}},
         ]},
        {"hosts": "localhost", "gather_facts": False, "vars": {"pw": redis.password},
         "tasks": [
             {"name": "health delegated to sshhost", "delegate_to": "sshhost",
              "creativeflow.redis.redis_health": {"login_port": redis.port, "login_password": pw}},
             {"name": "health local", "creativeflow.redis.redis_health": {"login_port": redis.port, "login_password": pw}},
         ]},
    ]


def _features_hosts(ssh_host):
    return {
        "sshhost": dict(ssh_host.inventory_vars(ssh_host.login), ansible_shell_allow_world_readable_temp=True),
        "sshpw": dict(ssh_host.inventory_vars(ssh_host.pwuser), ansible_become_password=ssh_host.sudo_password),
        "localhost": {"ansible_connection": "local"},
    }


@pytest.mark.parametrize("core", CORE_IDS)
def test_features_identical_on_both_paths_over_ssh(core, ws, redis_pw, ssh_host):
    conf_dir = ssh_host.home(ssh_host.login) / "conf"

    def reset():
        subprocess.run(["rm", "-rf", str(conf_dir)], check=True)
        subprocess.run(["install", "-d", "-o", ssh_host.login, "-m", "0755", str(conf_dir)], check=True)

    plays = _features_plays(ssh_host, redis_pw, conf_dir)
    fast, slow = both_paths(ws, core, plays, _features_hosts(ssh_host), reset=reset,
                            env=ws.env(core, remote_tmp=False))
    assert fast.rc == 0, fast.out
    by = {r["task"]: r for r in fast.records}
    assert by["config check diff"]["result"]["changed"] is True and "diff" in by["config check diff"]["result"]
    assert by["config apply diff"]["result"]["changed"] is True and "diff" in by["config apply diff"]["result"]
    assert by["config again"]["result"]["changed"] is False
    assert by["config bad input"]["status"] == "failed"
    assert by["health wrong password"]["status"] == "failed" and "WRONGPASS" in by["health wrong password"]["result"]["msg"]
    assert by["health no_log"]["result"].get("_ansible_no_log") is True or "censored" in by["health no_log"]["result"]
    assert "the output has been hidden" in fast.section("health no_log")
    for name in ("health become root", "health become unprivileged", "health become with sudo password",
                 "health delegated to sshhost"):
        assert by[name]["status"] == "ok" and by[name]["result"]["status"] == "ok", by[name]
    # Each became who it should, and the cache is that user's.
    assert (Path("/root") / CACHE / cache_name("redis_health")).exists()
    assert (ssh_host.home(ssh_host.other) / CACHE / cache_name("redis_health")).exists()
    assert (ssh_host.home(ssh_host.login) / CACHE / cache_name("redis_config")).exists()
    for run in (fast, slow):
        assert redis_pw.password not in run.out


@pytest.mark.parametrize("conn", ["local", "ssh"])
def test_adhoc_identical_on_both_paths(conn, ws, redis_pw, request):
    if conn == "ssh":
        ssh_host = request.getfixturevalue("ssh_host")
        hosts = {"target": ssh_host.inventory_vars(ssh_host.login)}
        env = ws.env("newest", remote_tmp=False)
    else:
        hosts = {"target": {"ansible_connection": "local"}}
        env = ws.env("newest")
    args = f"login_port={redis_pw.port} login_password={redis_pw.password} checks=ping,memory"
    out = []
    for fast in (True, False):
        e = dict(env) if fast else dict(env, CREATIVEFLOW_REDIS_FAST_PATH="false")
        run = ws.adhoc("newest", "target", hosts, "creativeflow.redis.redis_health", args, "-vvv", env=e)
        assert run.rc == 0, run.out
        assert (FAST_RAN in run.out) == fast and (FALLBACK in run.out) != fast, run.out
        assert redis_pw.password not in run.out.replace(args, "")
        out.append(loose(result_of(run.out)))
    assert out[0] == out[1]
    assert out[0]["invocation"]["module_args"]["login_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


# ---------------------------------------------------------------------------------------------
# No password on the managed host's disk
# ---------------------------------------------------------------------------------------------

def _files_containing(needle, roots, skip=()):
    needle = needle.encode()
    hits = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
            if any(dirpath.startswith(str(s)) for s in skip):
                dirnames[:] = []
                continue
            for fn in filenames:
                path = os.path.join(dirpath, fn)
                try:
                    st = os.lstat(path)
                    # Size 0 holds no password, and skips pseudo files such as /proc/kmsg, whose
                    # read blocks (a test rootfs under /tmp may have a proc mounted in it).
                    if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size <= 64 * 1024 * 1024:
                        continue
                    with open(path, "rb") as f:
                        if needle in f.read():
                            hits.append(path)
                except OSError:
                    pass
    return hits


def test_no_password_on_the_managed_hosts_disk(ws, redis_pw, ssh_host):
    hosts = _features_hosts(ssh_host)
    pw = redis_pw.password
    tasks = [
        {"name": "health", "creativeflow.redis.redis_health": {"login_port": redis_pw.port, "login_password": pw}},
        {"name": "health become root", "become": True,
         "creativeflow.redis.redis_health": {"login_port": redis_pw.port, "login_password": pw}},
        {"name": "health become unprivileged", "become": True, "become_user": ssh_host.other,
         "creativeflow.redis.redis_health": {"login_port": redis_pw.port, "login_password": pw}},
        {"name": "config check mode", "check_mode": True, "diff": True,
         "creativeflow.redis.redis_config": {"path": f"{ssh_host.home(ssh_host.login)}/never.conf",
                                             "settings": {"port": redis_pw.port, "requirepass": pw}}},
    ]
    areas = [ssh_host.home(ssh_host.login), ssh_host.home(ssh_host.other), ssh_host.home(ssh_host.pwuser),
             "/tmp", "/var/tmp", "/root/.cache/creativeflow.redis", "/root/.ansible"]
    skip = [ws.root]
    assert not _files_containing(pw, areas, skip), "the password is on disk before the run"
    run = ws.playbook("newest", play(tasks, hosts="sshhost"), hosts, "-vvv", env=ws.env("newest", remote_tmp=False))
    assert run.rc == 0, run.out
    assert_paths(run, [t["name"] for t in tasks], fast=True)
    found = _files_containing(pw, areas, skip)
    assert not found, f"the password was written on the managed host: {found}"

    # The same grep finds the args file the normal path writes (kept here on purpose), so the
    # check above can fail.
    keep = ws.env("newest", remote_tmp=False, ANSIBLE_KEEP_REMOTE_FILES="1")
    run = ws.playbook("newest", play(tasks[:1], hosts="sshhost"), hosts, "-vvv", env=keep)
    assert run.rc == 0, run.out
    found = _files_containing(pw, areas, skip)
    try:
        assert found and all("/.ansible/tmp/ansible-tmp-" in f and f.endswith("/args") for f in found), found
    finally:
        for f in found:
            shutil.rmtree(os.path.dirname(f), ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The throwaway SSH host (root only)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def ssh_host():
    if os.geteuid() != 0:
        pytest.skip("the SSH tests need root: they create users, a sudoers drop-in and an sshd (CI runs as root)")
    missing = missing_tools()
    if missing:
        pytest.fail(f"missing {missing}: install openssh-server and sudo (make deps)")
    tag = secrets.token_hex(3)
    login, other, pwuser = f"cfl{tag}", f"cfo{tag}", f"cfp{tag}"
    WORK_BASE.mkdir(parents=True, exist_ok=True)
    ctl = tempfile.mkdtemp(prefix="ssh-", dir=WORK_BASE)
    homes = tempfile.mkdtemp(prefix="cf-fastpath-homes-", dir="/tmp")
    root_cache = Path("/root") / CACHE
    before = set(os.listdir(root_cache)) if root_cache.is_dir() else None
    root_cache_parent_existed = root_cache.parent.is_dir()
    host = ThrowawaySshd(ctl, homes, users=[login, other, pwuser], sudo=[login], tag=f"cf-fastpath-{tag}")
    try:
        host.__enter__()
        host.login, host.other, host.pwuser = login, other, pwuser
        host.sudo_password = "sudo-" + secrets.token_hex(8)
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=host.sudo_password, capture_output=True,
                                text=True, check=True).stdout.strip()
        subprocess.run(["usermod", "-p", hashed, pwuser], check=True, capture_output=True)
        host.add_sudoers(f"cf-fastpath-{tag}-pw", f"{pwuser} ALL=(ALL:ALL) ALL\n")
        yield host
    finally:
        host.close()
        shutil.rmtree(homes, ignore_errors=True)
        # become to root on this machine caches into /root/.cache/creativeflow.redis: leave it
        # as it was.
        if root_cache.is_dir():
            if before is None:
                shutil.rmtree(root_cache, ignore_errors=True)
                if not root_cache_parent_existed:
                    with contextlib.suppress(OSError):
                        root_cache.parent.rmdir()
            else:
                for name in set(os.listdir(root_cache)) - before:
                    with contextlib.suppress(OSError):
                        os.unlink(root_cache / name)
