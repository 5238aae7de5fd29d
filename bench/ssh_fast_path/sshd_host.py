"""A throwaway SSH host on this machine: its own sshd on a spare loopback port, throwaway users
with a plain shell, a throwaway key and a sudoers drop-in. Used by bench/ssh_fast_path/bench.py
and by tests/test_fast_path.py; the same approach as molecule/ssh/create.yml.

Needs root (it adds users and a file in /etc/sudoers.d) and openssh-server + sudo (`make deps`).
Everything it makes is removed by close(): sshd and every process of the throwaway users are
stopped by pid, the users (and their homes) deleted, the sudoers drop-ins removed, the key
material and sshd's files removed.

    with ThrowawaySshd(ctl_dir, home_base, users=["cfa1b2c3"], sudo=["cfa1b2c3"]) as host:
        host.port, host.key, host.inventory_vars("cfa1b2c3")
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

TOOLS = ("/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/sudo", "/usr/sbin/visudo",
         "/usr/sbin/useradd", "/usr/sbin/usermod", "/usr/sbin/userdel")


def missing_tools():
    return [t for t in TOOLS if not os.access(t, os.X_OK)]


def free_port(taken=()):
    """A port free now on 127.0.0.1: never 22, 6379 or 26379."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in (22, 6379, 26379, *taken):
            return port


def _run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _stop_pids(pids, timeout=5.0):
    pids = [p for p in pids if _alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _pids_of_uid(uid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def _sshd_running():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "sshd":
                        return True
            except OSError:
                pass
    return False


class ThrowawaySshd:
    """sshd on 127.0.0.1:<free port> for throwaway users; use as a context manager."""

    def __init__(self, ctl_dir, home_base, users, sudo=(), tag="cf"):
        if os.geteuid() != 0:
            raise PermissionError("a throwaway sshd needs root: it adds users and a sudoers drop-in")
        self.ctl = Path(ctl_dir)
        self.home_base = Path(home_base)
        self.users = list(users)
        self.sudo = list(sudo)
        self.tag = tag
        self.port = None
        self.key = self.ctl / "id_ed25519"
        self.control_dir = self.ctl / "cp"
        self.sudoers = []
        self._created = []
        self._made_run_sshd = False
        self._pid = None

    # -- set up --------------------------------------------------------------------------------

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def home(self, user):
        return self.home_base / user

    def uid(self, user):
        return pwd.getpwnam(user).pw_uid

    def _start(self):
        missing = missing_tools()
        if missing:
            raise FileNotFoundError("missing %s: install openssh-server and sudo (make deps)" % " ".join(missing))
        self.ctl.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home_base.mkdir(parents=True, exist_ok=True)
        self.home_base.chmod(0o755)
        for name in self.users:
            try:
                pwd.getpwnam(name)
                raise FileExistsError(f"user {name} already exists; pick another name")
            except KeyError:
                pass
            _run("/usr/sbin/useradd", "-m", "-d", str(self.home(name)), "-s", "/bin/sh", name)
            self._created.append(name)
            # "*": no password login, but not locked ("!"), which sshd refuses without PAM.
            _run("/usr/sbin/usermod", "-p", "*", name)
        for f in ("id_ed25519", "id_ed25519.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
            (self.ctl / f).unlink(missing_ok=True)
        _run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cf-throwaway", "-f", str(self.key))
        _run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cf-throwaway-host",
             "-f", str(self.ctl / "ssh_host_ed25519_key"))
        pub = (self.ctl / "id_ed25519.pub").read_text()
        for name in self.users:
            pw = pwd.getpwnam(name)
            ssh_dir = self.home(name) / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(pub)
            (ssh_dir / "authorized_keys").chmod(0o600)
            for p in (ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        for name in self.sudo:
            self.add_sudoers(f"{self.tag}-{name}", f"{name} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        self.control_dir.mkdir(mode=0o700, exist_ok=True)
        self.port = free_port()
        (self.ctl / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\n"
            f"HostKey {self.ctl / 'ssh_host_ed25519_key'}\nPidFile {self.ctl / 'sshd.pid'}\n"
            "AuthorizedKeysFile .ssh/authorized_keys\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"PermitRootLogin no\nAllowUsers {' '.join(self.users)}\nX11Forwarding no\n"
            "AllowTcpForwarding no\nPrintMotd no\nMaxSessions 50\nMaxStartups 50:30:100\n"
            "Subsystem sftp internal-sftp\n")
        (self.ctl / "sshd_config").chmod(0o600)
        if not os.path.isdir("/run/sshd"):
            # sshd's privilege separation directory (Debian's package makes it at boot).
            os.makedirs("/run/sshd", mode=0o755)
            self._made_run_sshd = True
        _run("/usr/sbin/sshd", "-f", str(self.ctl / "sshd_config"), "-E", str(self.ctl / "sshd.log"))
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self._pid = int((self.ctl / "sshd.pid").read_text().strip())
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError("sshd did not answer on 127.0.0.1:%d:\n%s" % (self.port, self.log()))

    def add_sudoers(self, name, content):
        """A drop-in /etc/sudoers.d/<name>, checked with visudo first; removed by close()."""
        path = Path("/etc/sudoers.d") / name
        tmp = self.ctl / f"sudoers-{name}"
        tmp.write_text(content)
        _run("/usr/sbin/visudo", "-cf", str(tmp))
        shutil.copyfile(tmp, path)
        os.chmod(path, 0o440)
        if path not in self.sudoers:
            self.sudoers.append(path)
        return path

    def remove_sudoers(self, path):
        Path(path).unlink(missing_ok=True)
        if path in self.sudoers:
            self.sudoers.remove(path)

    def log(self):
        try:
            return (self.ctl / "sshd.log").read_text()
        except OSError:
            return ""

    def inventory_vars(self, user):
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_control_path_dir": str(self.control_dir),
        }

    def close_masters(self):
        """Ends Ansible's ControlPersist masters (they would keep sessions open)."""
        if not self.control_dir.is_dir():
            return
        for sock in self.control_dir.iterdir():
            subprocess.run(["/usr/bin/ssh", "-o", f"ControlPath={sock}", "-O", "exit", "127.0.0.1"],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=10)

    # -- tear down -----------------------------------------------------------------------------

    def close(self):
        try:
            self.close_masters()
        except (OSError, subprocess.SubprocessError):
            pass
        if self._pid and _alive(self._pid):
            children = []
            try:
                children = [int(p) for p in subprocess.run(["pgrep", "-P", str(self._pid)], capture_output=True,
                                                           text=True).stdout.split()]
            except (OSError, ValueError):
                pass
            _stop_pids([self._pid, *children])
        for name in self._created:
            try:
                _stop_pids(_pids_of_uid(self.uid(name)))
            except KeyError:
                pass
            subprocess.run(["/usr/sbin/userdel", "-r", name], capture_output=True, stdin=subprocess.DEVNULL)
            shutil.rmtree(self.home(name), ignore_errors=True)
        self._created = []
        for path in list(self.sudoers):
            self.remove_sudoers(path)
        if self._made_run_sshd and not _sshd_running():
            # Made by us and used by no other sshd (a Molecule scenario may have started one).
            shutil.rmtree("/run/sshd", ignore_errors=True)
            self._made_run_sshd = False
        shutil.rmtree(self.ctl, ignore_errors=True)
