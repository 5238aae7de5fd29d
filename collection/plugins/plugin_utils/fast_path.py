# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
"""The fast path shared by the action plugins of every creativeflow.redis module.

Ansible runs a binary module with four remote commands and two file transfers per task: mkdir
of a temp dir, a PUT of the whole binary (2-3 MB), a PUT of an args file (the module's
parameters, passwords included, in clear on the host's disk), chmod, the run, rm. Binary modules
are never pipelined. The fast path makes that ONE remote command in the steady state:

* the binary lives in a per-user cache on the managed host, ``$HOME/.cache/creativeflow.redis/``
  of the effective user (the become user when become applies, else the login user), named
  ``<module>-<sha256 of the binary>``;
* the args JSON is written to the binary's standard input (``<binary> --ansible-args-stdin``), so
  no parameter ever reaches the host's disk.

The one command checks the cache entry (directory 0700 and owned by the effective user, the file
a regular file owned by that user and writable by nobody else, neither a symlink) and runs it.
When the entry is missing (first use on a host, or a new build) that command says so without
running anything; the binary is then sent once over the same connection and become context (on
standard input, into a temp name, its sha256 checked on the host, renamed into place, other
versions of the same module removed), and the module runs.

Results are those of the normal path by construction: the plugin IS ansible-core's ``normal``
action plugin, and ``_execute_module`` does all the work (``_update_module_args``, the
environment, ``_parse_returned_data``, internal keys, warnings and deprecations, check and diff
mode, no_log, ...). The fast path only replaces, for the duration of that one call, the five
steps that touch the host: making the temp dir, the two transfers, the chmod and the command
itself. ``test_fast_path.py`` checks that ansible-core still calls them (2.16 and the newest).

Fallback to the normal path, with the reason shown at -vvv, wherever the fast path cannot be
used or is not safe: async tasks; a connection that cannot pass standard input or a non-POSIX
shell; a become method that cannot pass it (``su``, or a local become password prompt without
pipelining; ``sudo`` with requiretty is seen when the command does not start); a cache that
cannot be created, written or executed (read-only or noexec home); ANSIBLE_KEEP_REMOTE_FILES;
the opt-out; and anything unexpected. A fallback happens only when the module has certainly not
run, so a task never runs twice.

Opt-out, highest precedence first:

* the variable ``creativeflow_redis_fast_path: false`` (host, group, play or task vars);
* the controller's environment ``CREATIVEFLOW_REDIS_FAST_PATH=false``;
* ansible.cfg: ``[creativeflow_redis]`` ``fast_path = false``.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shlex

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as NormalActionModule

OPT_OUT_VAR = "creativeflow_redis_fast_path"
OPT_OUT_ENV = "CREATIVEFLOW_REDIS_FAST_PATH"
OPT_OUT_INI_SECTION = "creativeflow_redis"
OPT_OUT_INI_KEY = "fast_path"

# Relative to the effective user's $HOME on the managed host.
CACHE_SUBDIR = ".cache/creativeflow.redis"
STDIN_FLAG = "--ansible-args-stdin"

# Stands in for the remote temp dir while _execute_module runs on the fast path: it only ever
# appears in paths that the overrides below intercept, never on the host.
FAKE_TMPDIR = "/nonexistent/creativeflow.redis-fast-path"

# The first line the remote command prints tells the controller what happened.
_TAG = "creativeflow.redis fast path:"
RUN = _TAG + " run"
MISS = _TAG + " miss"
UNUSABLE = _TAG + " unusable:"
INSTALLED = _TAG + " installed"
INSTALL_FAILED = _TAG + " install failed:"

# What ActionBase._execute_module must call for the fast path to replace the host-side steps.
# If a future ansible-core stops calling one of them, the fast path would silently do the wrong
# thing; check_internals() turns that into a fallback and the test suite into a failure.
REQUIRED_ACTIONBASE_METHODS = (
    "_execute_module",
    "_make_tmp_path",
    "_update_module_args",
    "_transfer_file",
    "_transfer_data",
    "_fixup_perms2",
    "_low_level_execute_command",
    "_compute_environment_string",
    "_remove_tmp_path",
    "get_become_option",
    "_get_remote_user",
)

_MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Become methods that need a terminal, for ansible-core versions whose become plugins do not say
# (BecomeBase.pipelining is 2.17+; su sets it to False there).
NO_STDIN_BECOME_METHODS = frozenset(["su", "ksu", "machinectl", "sesu"])


class Fallback(Exception):
    """The fast path cannot be used for this task; the message says why. Raised only before the
    module has run."""


def check_internals():
    """The reason the installed ansible-core cannot carry the fast path, or None."""
    missing = [m for m in REQUIRED_ACTIONBASE_METHODS if not callable(getattr(ActionBase, m, None))]
    if missing:
        return "ansible-core %s has no ActionBase.%s" % (_core_version(), ", ".join(missing))
    if not hasattr(NormalActionModule, "run"):
        return "ansible-core %s has no normal action plugin" % _core_version()
    return None


def _core_version():
    try:
        from ansible.release import __version__
        return __version__
    except ImportError:  # pragma: no cover - every ansible-core has it
        return "?"


def _ini_setting():
    """`[creativeflow_redis] fast_path` of the ansible.cfg in use, or None."""
    path = getattr(C.config, "_config_file", None)
    if not path:
        return None
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    if parser.has_option(OPT_OUT_INI_SECTION, OPT_OUT_INI_KEY):
        return parser.get(OPT_OUT_INI_SECTION, OPT_OUT_INI_KEY)
    return None


def module_digest(path):
    """sha256 of the module binary, hashed once per ansible run and file version.

    Hashing 3 MB costs a few ms, a real share of a local task; the controller's per-run temp dir
    (C.DEFAULT_LOCAL_TMP, 0700, made before the workers fork) keeps the digest for the other
    tasks of the run, keyed by the file's device, inode, size and mtime. A stale entry cannot
    do harm: the host checks the sha256 of what it receives, and a name that matches nothing
    cached only means one more install."""
    st = os.stat(path)
    key = "%s\0%d:%d:%d:%d" % (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    local_tmp = getattr(C, "DEFAULT_LOCAL_TMP", None)
    memo = None
    if local_tmp and os.path.isdir(local_tmp):
        memo = os.path.join(local_tmp, "creativeflow.redis-sha256-" + hashlib.sha256(key.encode()).hexdigest()[:32])
        try:
            with open(memo) as f:
                digest = f.read().strip()
            if re.match(r"^[0-9a-f]{64}$", digest):
                return digest
        except OSError:
            pass
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if memo:
        tmp = "%s.%d" % (memo, os.getpid())
        try:
            with open(tmp, "w") as f:
                f.write(digest)
            os.replace(tmp, memo)
        except OSError:
            pass
    return digest


def _sh(value):
    return shlex.quote(value)


def probe_command(name, digest, env_string):
    """The one command of the steady state: run the cached binary if it is there and safe.

    It prints RUN and then runs the binary, which reads its args from standard input; or, when
    there is no usable cache entry, it reads standard input away (so the connection never sees a
    broken pipe), checks that the cache directory can hold and run a binary and prints MISS or
    UNUSABLE. The run branch keeps the shell's umask and working directory, so the module runs
    exactly as the normal path would run it.
    """
    run = "%s \"$f\" %s" % (env_string.strip(), STDIN_FLAG) if env_string.strip() else "\"$f\" %s" % STDIN_FLAG
    return " ".join([
        'd="$HOME"/%s; f="$d"/%s;' % (_sh(CACHE_SUBDIR), _sh("%s-%s" % (name, digest))),
        'case $HOME in /*) ;; *) d=/nonexistent/home-is-not-absolute;; esac;',
        # Directory 0700 and file 0500/0700, both owned by the effective user, neither a symlink.
        # `ls -ld` lists the two operands in name order (the directory first); a '+' (ACL) is
        # refused, a '.' (SELinux label only) is fine.
        'if [ -d "$d" ] && [ ! -h "$d" ] && [ -O "$d" ] && [ -f "$f" ] && [ ! -h "$f" ] && [ -O "$f" ] &&',
        'LC_ALL=C ls -ld "$d" "$f" 2>/dev/null | { n=0; while read -r m r; do case $n$m in',
        '0drwx------|0drwx------.|1-r-x------|1-r-x------.|1-rwx------|1-rwx------.) n=$((n+1));;',
        '*) exit 1;; esac; done; [ "$n" = 2 ]; }; then',
        'echo %s; %s;' % (_sh(RUN), run),
        'else',
        'cat >/dev/null; umask 077;',
        'u() { echo %s "$1"; exit 0; };' % _sh(UNUSABLE),
        'case $HOME in /*) ;; *) u "HOME is not an absolute path";; esac;',
        '[ -d "$d" ] || mkdir -p "$d" 2>/dev/null || u "cannot create $d (read-only file system?)";',
        '{ [ -d "$d" ] && [ ! -h "$d" ] && [ -O "$d" ]; } || u "$d is not a directory owned by the effective user";',
        'chmod 700 "$d" 2>/dev/null || u "cannot chmod 700 $d";',
        'x="$d"/.exec-test.$$;',
        "{ printf '%s\\n' '#!/bin/sh' 'exit 0' >\"$x\" && chmod 700 \"$x\"; } 2>/dev/null ||",
        '{ rm -f "$x"; u "cannot write in $d (read-only file system?)"; };',
        '"$x" 2>/dev/null || { rm -f "$x"; u "cannot execute files in $d (mounted noexec?)"; };',
        'rm -f "$x"; echo %s;' % _sh(MISS),
        'fi',
    ])


def install_command(name, digest):
    """Reads the binary from standard input into the cache: temp name, sha256 checked on the
    host, mode 0500, renamed into place, other versions of the module removed."""
    return " ".join([
        'umask 077; d="$HOME"/%s; f="$d"/%s; t="$d"/.tmp.%s.$$;' % (_sh(CACHE_SUBDIR), _sh("%s-%s" % (name, digest)), _sh(name)),
        'e() { rm -f "$t"; cat >/dev/null; echo %s "$1"; exit 0; };' % _sh(INSTALL_FAILED),
        'case $HOME in /*) ;; *) e "HOME is not an absolute path";; esac;',
        '{ [ -d "$d" ] && [ ! -h "$d" ] && [ -O "$d" ]; } || e "$d is not a directory owned by the effective user";',
        'rm -f "$t"; cat >"$t" || e "cannot write $t";',
        'h=$(sha256sum <"$t" 2>/dev/null) || h=$(shasum -a 256 <"$t" 2>/dev/null) ||',
        'h=$(openssl dgst -sha256 -r <"$t" 2>/dev/null) || e "no sha256sum, shasum or openssl on the host";',
        'h=${h%%%%[!0-9a-f]*}; [ "$h" = %s ] || e "sha256 of the copy is $h";' % _sh(digest),
        'chmod 500 "$t" && mv -f "$t" "$f" || e "cannot move the binary into $f";',
        'for o in "$d"/%s-*; do [ "$o" = "$f" ] || rm -f "$o"; done;' % _sh(name),
        'echo %s' % _sh(INSTALLED),
    ])


def split_tag(stdout):
    """(tag line, rest of stdout) when a line of stdout starts with the tag, else (None, stdout).

    Lines before it (a login banner, shell rc noise) are dropped like the normal path drops
    junk before the module's JSON."""
    pos = 0
    while True:
        if stdout.startswith(_TAG, pos):
            end = stdout.find("\n", pos)
            if end < 0:
                return stdout[pos:].rstrip("\r"), ""
            return stdout[pos:end].rstrip("\r"), stdout[end + 1:]
        nl = stdout.find("\n", pos)
        if nl < 0:
            return None, stdout
        pos = nl + 1


def _first_line(text, limit=300):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


class FastPathAction(NormalActionModule):
    """ansible-core's normal action plugin, running the module over the fast path when it can."""

    # Set by run() for the duration of one fast attempt; None means everything behaves exactly
    # like the normal action plugin.
    _cf_fast = None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars if task_vars is not None else {}
        reason = self._cf_unavailable(task_vars)
        if reason is None:
            self._cf_fast = {"module_path": None, "args": None}
            try:
                return super(FastPathAction, self).run(tmp, task_vars)
            except Fallback as e:
                reason = str(e)
            finally:
                self._cf_fast = None
                if self._connection._shell.tmpdir == FAKE_TMPDIR:
                    self._connection._shell.tmpdir = None
        self._display.vvv("creativeflow.redis fast path not used (%s): normal module execution" % reason,
                          host=self._play_context.remote_addr)
        return super(FastPathAction, self).run(tmp, task_vars)

    # -- when the fast path applies ------------------------------------------------------------

    def _cf_opt_out(self, task_vars):
        """The reason the user turned the fast path off, or None."""
        scope = task_vars
        if self._task.delegate_to:
            scope = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or task_vars
        value = scope.get(OPT_OUT_VAR, task_vars.get(OPT_OUT_VAR))
        if value is not None:
            value = self._templar.template(value)
            try:
                if not boolean(value, strict=True):
                    return "%s is %s" % (OPT_OUT_VAR, value)
            except TypeError:
                raise AnsibleError("%s must be a boolean, got %r" % (OPT_OUT_VAR, value))
            return None
        env = os.environ.get(OPT_OUT_ENV)
        if env not in (None, ""):
            try:
                if not boolean(env, strict=True):
                    return "%s=%s in the environment" % (OPT_OUT_ENV, env)
            except TypeError:
                raise AnsibleError("%s must be a boolean, got %r" % (OPT_OUT_ENV, env))
            return None
        ini = _ini_setting()
        if ini not in (None, ""):
            try:
                if not boolean(ini, strict=True):
                    return "[%s] %s = %s in %s" % (OPT_OUT_INI_SECTION, OPT_OUT_INI_KEY, ini, C.config._config_file)
            except TypeError:
                raise AnsibleError("[%s] %s must be a boolean, got %r" % (OPT_OUT_INI_SECTION, OPT_OUT_INI_KEY, ini))
        return None

    def _cf_unavailable(self, task_vars):
        """Why this task cannot take the fast path (decided before anything runs), or None."""
        reason = check_internals()
        if reason:
            return reason
        reason = self._cf_opt_out(task_vars)
        if reason:
            return reason
        if self._task.async_val:
            return "async task"
        if C.DEFAULT_KEEP_REMOTE_FILES:
            return "ANSIBLE_KEEP_REMOTE_FILES is on, which asks for the module and args files on the host"
        conn = self._connection
        if not getattr(conn, "has_pipelining", False):
            return "connection %s cannot pass data on standard input" % conn.transport
        if getattr(conn, "_remote_is_local", False):
            return "connection %s runs modules on the controller" % conn.transport
        if getattr(conn._shell, "SHELL_FAMILY", None) != "sh":
            return "shell %s is not a POSIX shell" % getattr(conn._shell, "SHELL_FAMILY", "?")
        if conn._shell.tmpdir is not None:
            return "a remote temp dir already exists for this task"
        become = conn.become
        if become is not None:
            # BecomeBase.pipelining says whether the method can pass standard input (su reads the
            # password from the terminal). ansible-core before 2.17 has no such attribute.
            pipelining = getattr(become, "pipelining", None)
            if pipelining is None:
                pipelining = (become.name or "").rsplit(".", 1)[-1] not in NO_STDIN_BECOME_METHODS
            if not pipelining:
                return "become method %s cannot pass data on standard input" % become.name
            if (self._cf_is_local(conn) and self._cf_become_applies() and self.get_become_option("become_pass")
                    and not self._cf_conn_pipelining(conn)):
                # The local connection then gives the command a pty, not a pipe, as stdin.
                return "local become with a password prompt needs pipelining to pass standard input"
        return None

    def _cf_become_applies(self):
        """Whether _low_level_execute_command will wrap a sudoable command in become."""
        remote_user = self._get_remote_user()
        become_user = self.get_become_option("become_user")
        return bool(C.BECOME_ALLOW_SAME_USER or become_user != remote_user or not any((remote_user, become_user)))

    @staticmethod
    def _cf_is_local(conn):
        return (conn.transport or "").rsplit(".", 1)[-1] == "local"

    @staticmethod
    def _cf_conn_pipelining(conn):
        try:
            return bool(conn.get_option("pipelining"))
        except (KeyError, AttributeError):
            return False

    # -- the host-side steps of _execute_module, replaced while self._cf_fast is set -----------

    def _make_tmp_path(self, remote_user=None):
        if self._cf_fast is None:
            return super(FastPathAction, self)._make_tmp_path(remote_user)
        # No remote temp dir: nothing is written on the host. The fake one only names the paths
        # that _transfer_* and _low_level_execute_command recognise below.
        self._connection._shell.tmpdir = FAKE_TMPDIR
        return FAKE_TMPDIR

    def _update_module_args(self, module_name, module_args, task_vars, *args, **kwargs):
        super(FastPathAction, self)._update_module_args(module_name, module_args, task_vars, *args, **kwargs)
        if self._cf_fast is not None:
            # What Ansible sends when it has no temp dir for the module (become to an
            # unprivileged user); never the fake path.
            module_args["_ansible_tmpdir"] = None

    def _transfer_file(self, local_path, remote_path):
        if self._cf_fast is None:
            return super(FastPathAction, self)._transfer_file(local_path, remote_path)
        if not str(remote_path).startswith(FAKE_TMPDIR) or self._cf_fast["module_path"] is not None:
            raise Fallback("unexpected file transfer to %s" % remote_path)
        self._cf_fast["module_path"] = local_path
        return remote_path

    def _transfer_data(self, remote_path, data):
        if self._cf_fast is None:
            return super(FastPathAction, self)._transfer_data(remote_path, data)
        if remote_path != self._connection._shell.join_path(FAKE_TMPDIR, "args"):
            # Ansible sends a module as data only when it rewrote it: not one of our binaries.
            raise Fallback("the module is not a binary module (Ansible sent it as %s)" % remote_path)
        self._cf_fast["args"] = to_bytes(data, errors="surrogate_or_strict")
        return remote_path

    def _fixup_perms2(self, remote_paths, remote_user=None, execute=True):
        if self._cf_fast is None:
            return super(FastPathAction, self)._fixup_perms2(remote_paths, remote_user=remote_user, execute=execute)
        return None

    def _low_level_execute_command(self, cmd, sudoable=True, in_data=None, *args, **kwargs):
        fast = self._cf_fast
        if fast is None:
            return super(FastPathAction, self)._low_level_execute_command(cmd, sudoable, in_data, *args, **kwargs)
        # On the fast path, _execute_module's only remote command is the module run.
        module_path, args_data = fast["module_path"], fast["args"]
        if module_path is None or args_data is None or FAKE_TMPDIR not in cmd or in_data or args:
            raise Fallback("unexpected remote command in _execute_module: %s" % cmd)
        if any(v is not None for k, v in kwargs.items() if k != "encoding_errors"):
            raise Fallback("unexpected options for the module command: %s" % ", ".join(sorted(kwargs)))
        return self._cf_run(module_path, args_data, sudoable, kwargs.get("encoding_errors"))

    # -- the fast path itself ------------------------------------------------------------------

    def _cf_exec(self, cmd, sudoable, in_data, encoding_errors=None):
        kwargs = {"encoding_errors": encoding_errors} if encoding_errors else {}
        return super(FastPathAction, self)._low_level_execute_command(cmd, sudoable=sudoable, in_data=in_data, **kwargs)

    def _cf_run(self, module_path, args_data, sudoable, encoding_errors):
        name = os.path.basename(os.path.realpath(module_path))
        if not _MODULE_NAME_RE.match(name):
            raise Fallback("unexpected module file name %r" % name)
        digest = module_digest(module_path)
        probe = probe_command(name, digest, self._compute_environment_string())
        host = self._play_context.remote_addr
        where = "%s/%s-%s" % (CACHE_SUBDIR, name, digest[:12])

        for attempt in ("first", "after install"):
            res = self._cf_exec(probe, sudoable, args_data, encoding_errors)
            tag, rest = split_tag(res["stdout"])
            if tag == RUN:
                if res["rc"] in (126, 127) and not rest.strip():
                    # The shell could not exec the binary (noexec mount, wrong architecture, a
                    # concurrent install removed it): the module has not run.
                    raise Fallback("cannot execute ~/%s: %s" % (where, _first_line(res["stderr"]) or "rc %d" % res["rc"]))
                self._display.vvv("creativeflow.redis fast path: ran ~/%s with its args on standard input (one command)" % where,
                                  host=host)
                res["stdout"] = rest
                res["stdout_lines"] = rest.splitlines()
                return res
            if tag is not None and tag.startswith(UNUSABLE):
                raise Fallback("the binary cache cannot be used: %s" % tag[len(UNUSABLE):].strip())
            if tag != MISS:
                # The command did not start: become refused it (sudo with requiretty, ...).
                raise Fallback("the fast path command did not start (rc %d): %s"
                               % (res["rc"], _first_line(res["stderr"]) or _first_line(res["stdout"]) or "no output"))
            if attempt != "first":
                raise Fallback("~/%s is still not usable after installing it" % where)
            with open(module_path, "rb") as f:
                binary = f.read()
            if hashlib.sha256(binary).hexdigest() != digest:
                raise Fallback("%s changed during the run" % module_path)
            self._display.vvv("creativeflow.redis fast path: caching %s (%d bytes, sha256 %s) in ~/%s of the effective user"
                              % (name, len(binary), digest, CACHE_SUBDIR), host=host)
            inst = self._cf_exec(install_command(name, digest), sudoable, binary, encoding_errors)
            tag, _rest = split_tag(inst["stdout"])
            if tag != INSTALLED:
                detail = tag[len(INSTALL_FAILED):].strip() if tag and tag.startswith(INSTALL_FAILED) else (
                    _first_line(inst["stderr"]) or "rc %d" % inst["rc"])
                raise Fallback("cannot cache the binary: %s" % detail)
        raise Fallback("unreachable")  # pragma: no cover


__all__ = ["FastPathAction", "Fallback", "check_internals", "probe_command", "install_command", "split_tag",
           "OPT_OUT_VAR", "OPT_OUT_ENV", "OPT_OUT_INI_SECTION", "OPT_OUT_INI_KEY", "CACHE_SUBDIR"]
