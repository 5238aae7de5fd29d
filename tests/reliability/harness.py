"""Shared machinery of the reliability suite: module discovery, running a binary module the way
Ansible does (args file in argv[1], one JSON object on stdout), the ansible-core oracle, snapshots
of files and servers, and real Redis servers this suite owns.

Nothing here knows the modules by heart: every module is found in the built collection and its
options come from `<binary> --ansible-argspec`. What is module-specific (a safe base invocation,
the keys a settings dict takes) is a hint in cases.py, with a generic fallback for a module that
has no hint yet.
"""
import copy
import json
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))
from redis_procs import free_port  # noqa: E402  (the suite's ports come from the same picker)

COLLECTION_ROOT = REPO / "build" / "ansible_collections_install"
MODULES_DIR = COLLECTION_ROOT / "ansible_collections" / "creativeflow" / "redis" / "plugins" / "modules"
VENV_BIN = pathlib.Path(sys.executable).parent

# Lines the summary prints after the counts (tallies a family wants to show).
NOTES = []

# A payload that would open the server to anyone if it became a line of redis.conf or an ACL rule.
PAYLOAD = "user default on nopass ~* &* +@all"
SEPARATORS = {"LF": "\n", "CR": "\r", "CRLF": "\r\n", "NUL": "\x00"}


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------
def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def discover_modules():
    """{name: {"binary": resolved path, "spec": argspec dict}} for every binary module installed in
    the collection's plugins/modules (symlinks followed, wherever they point: libexec/, bin/)."""
    found = {}
    if not MODULES_DIR.is_dir():
        return found
    for entry in sorted(MODULES_DIR.iterdir()):
        if entry.name.startswith((".", "_")) or entry.suffix in (".py", ".yml", ".yaml", ".pyc"):
            continue
        real = pathlib.Path(os.path.realpath(entry))
        if not real.is_file() or not os.access(real, os.X_OK) or not _is_elf(real):
            continue
        p = subprocess.run([str(real), "--ansible-argspec"], capture_output=True, text=True, timeout=30)
        spec = json.loads(p.stdout)
        found[entry.name] = {"binary": str(real), "spec": spec}
    return found


def module_crates():
    """Module crates in the source tree (modules/<name>/Cargo.toml): every one must be covered."""
    return sorted(p.parent.name for p in (REPO / "modules").glob("*/Cargo.toml"))


_MODULES = None


def modules():
    global _MODULES
    if _MODULES is None:
        _MODULES = discover_modules()
    return _MODULES


def has_connection(spec):
    return "login_port" in spec["argument_spec"]


# ---------------------------------------------------------------------------------------------
# Running a binary module
# ---------------------------------------------------------------------------------------------
def internal_keys(name, check=False, diff=True, verbosity=4, tmpdir="/tmp"):
    """The `_ansible_*` keys Ansible adds to every args file (ansible-core 2.21.5)."""
    return {
        "_ansible_check_mode": check, "_ansible_no_log": False, "_ansible_debug": False,
        "_ansible_diff": diff, "_ansible_verbosity": verbosity, "_ansible_version": "2.21.5",
        "_ansible_module_name": f"creativeflow.redis.{name}", "_ansible_syslog_facility": "LOG_USER",
        "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
        "_ansible_socket": None, "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": False, "_ansible_tmpdir": str(tmpdir),
        "_ansible_remote_tmp": "~/.ansible/tmp", "_ansible_ignore_unknown_opts": False,
        "_ansible_target_log_info": None, "_ansible_tracebacks_for": [],
        "_ansible_inject_invocation": False,
    }


class Run:
    """One finished run: rc, stdout, stderr, the parsed object (or why it is not one), duration."""

    def __init__(self, rc, stdout, stderr, seconds, timed_out=False):
        self.rc, self.stdout, self.stderr, self.seconds, self.timed_out = rc, stdout, stderr, seconds, timed_out
        self.result, self.protocol_error = None, None
        if timed_out:
            self.protocol_error = f"no answer within {seconds:.0f}s (killed)"
            return
        text = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
        try:
            value = json.loads(text)
        except ValueError as e:
            self.protocol_error = f"stdout is not exactly one JSON object ({e}): {text[:400]!r}"
            return
        if not isinstance(value, dict):
            self.protocol_error = f"stdout is JSON but not an object: {text[:200]!r}"
            return
        self.result = value

    @property
    def failed(self):
        return bool(self.result and self.result.get("failed"))

    def contract_problems(self):
        """What breaks the protocol: no single JSON object, a signal death, an exit code that
        disagrees with `failed`, a failure with no msg."""
        out = []
        if self.timed_out:
            return [self.protocol_error]
        if self.rc is not None and (self.rc < 0 or self.rc >= 128):
            sig = -self.rc if self.rc < 0 else self.rc - 128
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            out.append(f"died by signal {name} (rc {self.rc})")
        if self.protocol_error:
            out.append(self.protocol_error)
            return out
        r = self.result
        if "changed" in r and not isinstance(r["changed"], bool):
            out.append(f"`changed` is {r['changed']!r}, not a boolean")
        if "failed" in r and not isinstance(r["failed"], bool):
            out.append(f"`failed` is {r['failed']!r}, not a boolean")
        if self.failed and not (isinstance(r.get("msg"), str) and r["msg"].strip()):
            out.append(f"failed without a msg: {short(r)}")
        if self.rc is not None and self.rc >= 0 and (self.rc != 0) != self.failed:
            out.append(f"exit code {self.rc} disagrees with failed={self.failed}")
        for key in _all_keys(r):
            if "********" in key or "VALUE_SPECIFIED_IN_NO_LOG" in key:
                out.append(f"a result key is masked: {key!r}")
        return out


def _all_keys(v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from _all_keys(x)
    elif isinstance(v, list):
        for x in v:
            yield from _all_keys(x)


def short(v, n=600):
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def run_env(home):
    """A small, fixed environment: HOME in the case's temp dir so `~` and `$HOME` stay there."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "REL_VAR": "rel-var-value"}


def run_raw(binary, argv_tail, cwd, env, timeout=20, wrapper=()):
    """Runs `binary *argv_tail` in its own session (a hang is killed with its whole group)."""
    start = time.monotonic()
    p = subprocess.Popen([*wrapper, binary, *argv_tail], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return Run(p.returncode, out, err, time.monotonic() - start)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return Run(p.returncode, out, err, time.monotonic() - start, timed_out=True)


def run_module(name, args, cwd, check=False, diff=True, verbosity=4, timeout=20, wrapper=(), raw_text=None):
    """Writes the args file (user options + Ansible's internal keys) and runs the module once."""
    binary = modules()[name]["binary"]
    cwd = pathlib.Path(cwd)
    argsfile = cwd / ".rel-args.json"
    if raw_text is not None:
        argsfile.write_bytes(raw_text if isinstance(raw_text, bytes) else raw_text.encode())
    else:
        full = dict(args)
        full.update(internal_keys(name, check=check, diff=diff, verbosity=verbosity, tmpdir=cwd))
        argsfile.write_text(json.dumps(full))
    try:
        return run_raw(binary, [str(argsfile)], cwd, run_env(cwd), timeout=timeout, wrapper=wrapper)
    finally:
        argsfile.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# The oracle: ansible-core's own argument-spec validation, in process
# ---------------------------------------------------------------------------------------------
CONSTRAINTS = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
# ansible-core's wording of those constraints' errors (arg_spec.py / validation.py).
CONSTRAINT_MESSAGES = (r"is .+ but (all|any) of the following are missing", r"parameters are mutually exclusive",
                       r"parameters are required together", r"one of the following is required",
                       r"missing parameter\(s\) required by")


def spec_constraints(spec):
    """The constraints the binary's --ansible-argspec exports (keyword arguments of
    ArgumentSpecValidator), or None when it exports none of them."""
    found = {k: spec[k] for k in CONSTRAINTS if spec.get(k)}
    return found or None


def is_constraint_error(msg):
    import re
    return any(re.search(p, msg or "") for p in CONSTRAINT_MESSAGES)


_VALIDATORS = {}


def oracle(argument_spec, params, env=None, constraints=None):
    """ansible-core's ArgumentSpecValidator on `params`: (errors, validated parameters, warnings).
    `env` replaces os.environ while it runs (the path type expands $VARS and ~); `constraints`
    are required_if and friends, when the module exports them."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    saved = None
    if env is not None:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
    try:
        key = (json.dumps(argument_spec, sort_keys=True), json.dumps(constraints or {}, sort_keys=True))
        v = _VALIDATORS.get(key)
        if v is None:
            v = _VALIDATORS[key] = ArgumentSpecValidator(copy.deepcopy(argument_spec),
                                                         **copy.deepcopy(constraints or {}))
        try:
            r = v.validate(params)  # validate() works on its own deep copy
        except (OverflowError, ValueError, TypeError) as e:
            # ansible-core 2.21.5's check_type_int lets OverflowError out for "inf"/"1e400"
            # strings (int(Decimal('Infinity'))); AnsibleModule would then fail the task too.
            return [f"ansible-core raised {type(e).__name__}: {e}"], copy.deepcopy(params), []
        return [str(m) for m in r.errors.messages], r.validated_parameters, list(r._warnings)
    finally:
        if saved is not None:
            os.environ.clear()
            os.environ.update(saved)


# ---------------------------------------------------------------------------------------------
# Snapshots: "nothing changed"
# ---------------------------------------------------------------------------------------------
def snapshot_dir(root):
    """Every entry under root: type, mode, owner, and the bytes of regular files (FIFOs and
    devices are never opened)."""
    root = pathlib.Path(root)
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            rel = str(p.relative_to(root))
            if rel == ".rel-args.json":
                continue
            st = os.lstat(p)
            entry = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                entry["bytes"] = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                entry["link"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry["rdev"] = st.st_rdev
            snap[rel] = entry
    return snap


def diff_snapshots(before, after):
    out = []
    for k in sorted(set(before) | set(after)):
        if k not in after:
            out.append(f"{k} removed")
        elif k not in before:
            out.append(f"{k} appeared")
        elif before[k] != after[k]:
            what = [f for f in before[k] if before[k].get(f) != after[k].get(f)]
            out.append(f"{k} changed ({', '.join(what)})")
    return out


# ---------------------------------------------------------------------------------------------
# Real Redis servers owned by the suite
# ---------------------------------------------------------------------------------------------
def redis_quote(s):
    """A redis.conf argument that sdssplitargs reads back as s."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2] not in "ZXx"


def pid_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def kill_redis_pid(pid, wait=5.0):
    """SIGTERM, then SIGKILL, a pid that is a Redis process (anything else is left alone)."""
    if not pid or pid <= 1 or not _alive(pid) or "redis" not in pid_cmdline(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + wait
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def redis_pids_for(needle):
    """Pids of live redis processes whose command line or config path mentions `needle`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        cmd = pid_cmdline(int(d))
        if "redis" in cmd and needle in cmd and _alive(int(d)):
            out.append(int(d))
    return out


def listening_pids(port):
    """Pids holding a listening TCP socket on `port` (from /proc/net/tcp{,6} and /proc/*/fd)."""
    inodes = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    pids = set()
    if not inodes:
        return pids
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                try:
                    link = os.readlink(f"/proc/{d}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.add(int(d))
        except OSError:
            continue
    return pids


def ping(port, password=None, timeout=10.0, host="127.0.0.1"):
    """True once the server answers PING (with AUTH when a password is given)."""
    import redis
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = redis.Redis(host=host, port=port, password=password, socket_timeout=1, socket_connect_timeout=1)
            if c.ping():
                c.close()
                return True
        except Exception:
            pass
        time.sleep(0.03)
    return False


def port_answers(port, timeout=10.0):
    """True once something answers PING on the port like Redis does (+PONG, or -NOAUTH)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64)[:6] in (b"+PONG\r", b"-NOAUT"):
                    return True
        except OSError:
            pass
        time.sleep(0.03)
    return False


class Server:
    """A redis-server (or redis-sentinel) on a free port, started from its own config file with a
    pidfile; a thread reaps it so that a module stopping it never sees a zombie."""

    def __init__(self, password=None, extra=(), binary="redis-server", port=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="rel-redis-"))
        self.binary = binary
        self.port = port or free_port()
        self.password = password
        self.conf = self.dir / "redis.conf"
        self.pidfile = self.dir / "redis.pid"
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}", f"logfile {self.dir}/redis.log",
                 f"pidfile {self.pidfile}", "daemonize no"]
        if binary == "redis-server":
            lines += ['save ""', "appendonly no"]
        if password is not None:
            lines.append(f"requirepass {redis_quote(str(password))}")
        lines += list(extra)
        self.conf.write_text("\n".join(lines) + "\n")
        self.original_conf = self.conf.read_text()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir,
                                     start_new_session=True)
        proc = self.proc
        threading.Thread(target=proc.wait, daemon=True).start()
        up = ping(self.port, self.password) if self.binary == "redis-server" else port_answers(self.port)
        if not up:
            log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
            self.stop()
            raise RuntimeError(f"{self.binary} did not start on {self.port}:\n{log[-2000:]}")
        self.pid = self.proc.pid

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=3,
                           socket_connect_timeout=3, decode_responses=True)

    def _conn(self):
        if getattr(self, "_c", None) is None or self._c_pid != self.pid:
            self._c, self._c_pid = self.client(), self.pid
        return self._c

    WATCHED = ["maxmemory", "maxmemory-policy", "requirepass", "save", "appendonly", "loglevel", "maxclients",
               "timeout", "notify-keyspace-events", "dir", "dbfilename", "masterauth", "port", "bind"]

    def state(self):
        """What must not change under a failed run: the process, its config values, its users."""
        if self.proc is None or not _alive(self.pid):
            return {"alive": False}
        try:
            c = self._conn()
            if self.binary != "redis-server":
                info = c.info("server")
                keep = ("ip", "port", "quorum", "down-after-milliseconds", "failover-timeout", "parallel-syncs")
                masters = {name: {k: m.get(k) for k in keep} for name, m in c.sentinel_masters().items()}
                return {"alive": True, "pid": info.get("process_id"), "run_id": info.get("run_id"),
                        "masters": masters}
            # One round trip: this runs two or three times per case.
            pipe = c.pipeline(transaction=False)
            pipe.info("server")
            pipe.execute_command("CONFIG", "GET", *self.WATCHED)
            pipe.execute_command("ACL", "LIST")
            pipe.dbsize()
            pipe.execute_command("ROLE")
            info, cfg, acl, dbsize, role = pipe.execute()
            if isinstance(cfg, list):
                cfg = dict(zip(cfg[::2], cfg[1::2]))
            return {"alive": True, "pid": info.get("process_id"), "run_id": info.get("run_id"),
                    "config": {k: cfg.get(k) for k in self.WATCHED}, "acl": acl, "dbsize": dbsize,
                    "role": role[0]}
        except Exception as e:  # noqa: BLE001 (any failure to query is a state change)
            self._c = None
            return {"alive": _alive(self.pid), "error": f"{type(e).__name__}: {e}"}

    def restart(self):
        """Back to the state it was started in (after a run that wrongly changed it)."""
        self.stop(keep_dir=True)
        for pid in listening_pids(self.port):
            kill_redis_pid(pid)
        # Sentinel rewrites its file: start again from the one it was first given.
        self.conf.write_text(self.original_conf)
        self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self, keep_dir=False):
        if self.proc is not None:
            kill_redis_pid(self.proc.pid)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A private network namespace for the whole suite
# ---------------------------------------------------------------------------------------------
ISOLATED = {"netns": False, "why": "not tried"}


def isolate_network():
    """Moves this process (and so every server, module and ansible run it starts) into a new
    network namespace with only its own loopback up. Bad input can make a module fall back to
    its default port 6379 or resolve a garbage host name: here that reaches nothing (no system
    Redis, no DNS server), and the host's network never sees the suite. Needs root."""
    import fcntl
    import struct
    if not hasattr(os, "unshare") or not hasattr(os, "setns"):
        ISOLATED["why"] = "Python has no os.unshare/os.setns (3.12+): host network"
        return False
    try:
        ISOLATED["host_fd"] = os.open("/proc/self/ns/net", os.O_RDONLY)
        os.unshare(os.CLONE_NEWNET)
    except OSError as e:
        ISOLATED["why"] = f"unshare(CLONE_NEWNET): {e}: host network, cases that need isolation skipped"
        return False
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, ifr))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
    ISOLATED.update(netns=True, why="private network namespace, loopback only")
    return True


def leave_network():
    """Back to the host's network namespace (tests after this package run there)."""
    fd = ISOLATED.pop("host_fd", None)
    if fd is not None:
        os.setns(fd, os.CLONE_NEWNET)
        os.close(fd)
    ISOLATED["netns"] = False


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
def tokens_replaced(value, tokens):
    """Deep copy of value with every "@@NAME@@" string replaced; a string that is exactly one
    token takes the token's value with its type (a port stays an int)."""
    if isinstance(value, dict):
        return {tokens_replaced(k, tokens): tokens_replaced(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [tokens_replaced(v, tokens) for v in value]
    if isinstance(value, str) and "@@" in value:
        if value in tokens:
            return tokens[value]
        for k, v in tokens.items():
            value = value.replace(k, str(v))
        return value
    return value


def has_control(value):
    """True when some string in value (keys included) carries CR, LF or NUL."""
    if isinstance(value, str):
        return any(c in value for c in "\r\n\x00")
    if isinstance(value, dict):
        return any(has_control(k) or has_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_control(v) for v in value)
    return False


# ---------------------------------------------------------------------------------------------
# A small real cluster, and Sentinels per password
# ---------------------------------------------------------------------------------------------
class Cluster:
    """Three cluster-mode redis-server masters formed once with `redis-cli --cluster create`,
    ready when every node says cluster_state:ok. The default user's password is `password`;
    `add_user(name, secret)` creates an ACL user with every permission on every node, so that one
    cluster serves secrets of every form (each its own user)."""

    def __init__(self, password, size=3):
        self.password, self.nodes = password, []
        try:
            extra = ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
                     f"masterauth {redis_quote(password)}"]
            for _ in range(size):
                self.nodes.append(Server(password=password, extra=extra))
            env = dict(os.environ, REDISCLI_AUTH=password)
            p = subprocess.run(["redis-cli", "--cluster", "create", *self.addresses(), "--cluster-replicas", "0",
                                "--cluster-yes"], capture_output=True, text=True, env=env, timeout=120,
                               stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {p.stdout[-1500:]}{p.stderr[-1500:]}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    def addresses(self):
        return [f"127.0.0.1:{n.port}" for n in self.nodes]

    def wait_ok(self, timeout=60):
        deadline = time.time() + timeout
        while True:
            states = []
            for n in self.nodes:
                try:
                    states.append("cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO"))
                except Exception:  # noqa: BLE001 (not up yet is not ready)
                    states.append(False)
            if all(states):
                return
            if time.time() > deadline:
                raise RuntimeError("the cluster did not become ready")
            time.sleep(0.1)

    def add_user(self, name, secret):
        for n in self.nodes:
            c = n.client()
            c.execute_command("ACL", "SETUSER", name, "reset", "on", f">{secret}", "~*", "&*", "+@all")
            c.close()

    def slots_and_epochs(self):
        """What a run that must change nothing must leave: each node's view of the slots."""
        out = {}
        for n in self.nodes:
            c = n.client()
            out[n.port] = sorted(str(s) for s in c.execute_command("CLUSTER", "SLOTS"))
            c.close()
        return out

    def stop(self):
        for n in self.nodes:
            n.stop()


def sentinel_for(master, password, names=("relm",), auth_pass=None):
    """A redis-sentinel whose own password is `password`, monitoring `master` under each of
    `names` with `auth_pass` (the master's password by default), quorum 1."""
    auth = master.password if auth_pass is None else auth_pass
    extra = []
    for name in names:
        extra.append(f"sentinel monitor {name} 127.0.0.1 {master.port} 1")
        if auth is not None:
            extra.append(f"sentinel auth-pass {name} {redis_quote(str(auth))}")
    s = Server(password=password, binary="redis-sentinel", extra=extra)
    s.monitored = master
    return s
