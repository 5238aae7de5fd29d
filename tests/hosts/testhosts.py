#!/usr/bin/env python3
"""Test hosts with systemd as PID 1: fresh Debian containers booted with systemd-nspawn.

Used by the Molecule scenario `systemd` (create.yml / destroy.yml), by pytest
(tests/test_testhosts.py) and by the later multi-host scenarios (Sentinel, Cluster). Needs root,
debootstrap and systemd-nspawn (package systemd-container); `make deps` installs them. It works
on a machine whose own PID 1 is not systemd.

    python3 tests/hosts/testhosts.py build-rootfs [--release bookworm] [--release trixie]
    python3 tests/hosts/testhosts.py up 2 --release bookworm [--prefix web] [--nss systemd] [--network shared]
    python3 tests/hosts/testhosts.py up --host NAME:RELEASE[:nss] ...   # several specs, booted together
    python3 tests/hosts/testhosts.py list | inventory [NAME...] | ssh NAME [COMMAND...]
    python3 tests/hosts/testhosts.py poweroff NAME... | boot NAME...    # a reboot with the disk kept
    python3 tests/hosts/testhosts.py down NAME... | down --all

Everything lives under build/testhosts/ (CF_TESTHOSTS_DIR overrides it):

    rootfs/<release>/           Debian rootfs made by debootstrap once; rebuilt when the recipe
                                (package list, mirror, steps) changes, see rootfs/<release>/.cf-stamp
    id_ed25519{,.pub}           the SSH key of the sudo user `cfadmin` on every host
    hosts/<name>/root/          the host's own copy of the rootfs (its disk)
    hosts/<name>/host.json      address, SSH port, user, key, release, pids
    hosts/<name>/console.log    the container's console (boot and shutdown messages)
    networks/<name>.json|.log   the process that holds the host's network namespace

The rootfs has openssh-server, sudo, python3, python3-apt, iproute2, the sudo user `cfadmin`, and
the .deb files of redis-server and redis-sentinel (on trixie also valkey-server, valkey-sentinel
and valkey-tools) in its apt cache (downloaded at build time,
not installed): the hosts have no network beyond their own loopback, and a role's `apt install
redis-server` is served from that cache, as fresh as a real host's first install. The apt timers
are disabled (there is no mirror to reach from inside, and they would take dpkg's lock under the
role). The NSS modules libnss-systemd and libnss-myhostname are installed everywhere, and a host
started with `--nss systemd` keeps Debian's nsswitch.conf that names them (`passwd: files
systemd`, `hosts: files myhostname dns`); the others get `files`/`dns` only. Our modules are
static glibc binaries, and glibc's NSS loads those modules at run time.

Network, the choice made here. A container booted without a network namespace of its own shares
the machine's: Debian's redis-server.service, started by `apt-get install redis-server` inside a
container, would then take the machine's own 127.0.0.1:6379, two containers would fight over it,
and the README's example (main on 127.0.0.1:6379, replica on 6380) could not run unchanged. So
each host gets a network namespace that this helper creates and holds: a small forwarder process
(`_network`, started detached, stopped by pid) opens the host's SSH listener on the machine's
loopback (127.0.0.11, .12, ... one address per host, port 22 or a free one), then moves itself into
a new network namespace, brings its `lo` up and relays each SSH connection to the host's sshd on
the same address inside; systemd-nspawn joins that namespace (--network-namespace-path). Nothing
is routed and no interface other than `lo` exists: every packet goes to a 127.0.0.0/8 address,
in the machine's namespace or in one made here. Inside, 127.0.0.1 and every port belong to the
host alone, as on a real machine. `--network shared` puts all hosts of one `up` call into one such
namespace instead, where they reach each other on their own addresses (127.0.0.11:6379 and
127.0.0.12:6379 at once), as the Sentinel and Cluster scenarios need; services there must bind
their host's own address, since 127.0.0.1 is common to the group.

The namespace outlives the container, so `poweroff` (systemctl poweroff inside, then wait for
systemd-nspawn to exit) followed by `boot` is a reboot with the same disk and address. Stopping
is by pid, never by name: systemd-nspawn gets SIGTERM (an orderly shutdown of the container) and,
after a timeout, the container's PID 1 and nspawn get SIGKILL. The machine's own /etc and services
are never touched (systemd-nspawn itself keeps its locks under /run/systemd/nspawn/).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CF_TESTHOSTS_DIR") or REPO / "build" / "testhosts")
MIRROR = os.environ.get("CF_DEBIAN_MIRROR", "http://deb.debian.org/debian")
RELEASES = {"bookworm": "12", "trixie": "13"}
# Installed by debootstrap. A fresh Debian host as Ansible meets it: sshd, sudo and Python.
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "python3-apt",
    "iproute2", "libnss-systemd", "libnss-myhostname",
]
# Downloaded into the apt cache only: what the roles install, served offline.
CACHED = ["redis-server", "redis-sentinel", "redis-tools"]
# Per release, beside CACHED: Debian 12 has no Valkey; Debian 13 ships valkey-server 8.1.
CACHED_EXTRA = {"trixie": ["valkey-server", "valkey-sentinel", "valkey-tools"]}
USER = "cfadmin"
# Bump when the build steps below change in a way the package lists do not show.
RECIPE = 2
FIRST_ADDRESS = 11  # 127.0.0.11 is the first host's address; 127.0.0.1..10 are left alone
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 90


class Error(Exception):
    pass


def log(msg: str) -> None:
    print(f"testhosts: {msg}", file=sys.stderr, flush=True)


def run(cmd, *, check=True, capture=False, timeout=None, env=None, input=None):
    p = subprocess.run(
        [str(c) for c in cmd], check=False, text=True, timeout=timeout, env=env, input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
    )
    if check and p.returncode != 0:
        detail = f":\n{(p.stdout or '')}{(p.stderr or '')}".rstrip() if capture else ""
        raise Error(f"`{' '.join(map(str, cmd))}` exited with {p.returncode}{detail}")
    return p


@contextlib.contextmanager
def locked(what: str = "hosts"):
    """One helper at a time changes `what` (a release's rootfs, or the hosts and addresses)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / f".lock-{what}", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise Error("needs root (systemd-nspawn, debootstrap, network namespaces)")
    missing = [t for t in ("debootstrap", "systemd-nspawn", "nsenter", "ip", "ssh", "ssh-keygen")
               if not shutil.which(t)]
    if missing:
        raise Error(f"missing {', '.join(missing)}: apt-get install debootstrap systemd-container "
                    "openssh-client iproute2 (`make deps` does it)")


# ---------------------------------------------------------------------------------------------
# Processes, by pid
# ---------------------------------------------------------------------------------------------
def alive(pid) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cmdline(pid) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid, marker: str) -> bool:
    """The pid still runs the process we started (pids get reused)."""
    return alive(pid) and marker in cmdline(pid)


def children(pid) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == int(pid):
            out.append(int(d.name))
    return out


def wait_gone(pid, timeout) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return not alive(pid)


def kill(pid, sig) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# ---------------------------------------------------------------------------------------------
# Root filesystems
# ---------------------------------------------------------------------------------------------
def rootfs_dir(release: str) -> Path:
    return STATE / "rootfs" / release


def cached_packages(release: str) -> list[str]:
    return CACHED + CACHED_EXTRA.get(release, [])


def rootfs_stamp(release: str) -> str:
    return json.dumps({"release": release, "mirror": MIRROR, "packages": PACKAGES,
                       "cached": cached_packages(release), "user": USER, "recipe": RECIPE},
                      sort_keys=True)


def rootfs_ready(release: str) -> bool:
    stamp = rootfs_dir(release) / ".cf-stamp"
    return stamp.is_file() and stamp.read_text() == rootfs_stamp(release)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (from /proc/self/mountinfo)."""
    base = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == base or mp.startswith(base + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def unmount_under(path: Path) -> None:
    """A rootfs must be plain files: debootstrap mounts /proc (and may leave it mounted, as seen
    on a CI-like run), and a copy of a mounted /proc fills the disk (kcore)."""
    for mp in mounts_under(path):
        subprocess.run(["umount", "--lazy", mp], check=False)


def chroot(root: Path, script: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C", "HOME": "/root"}
    run(["chroot", root, "/bin/sh", "-euc", script], env=env, timeout=1800)


def build_rootfs(release: str, force: bool = False) -> Path:
    """Builds build/testhosts/rootfs/<release> unless it is there with the same recipe."""
    if release not in RELEASES:
        raise Error(f"unknown release {release!r}; one of {', '.join(RELEASES)}")
    final = rootfs_dir(release)
    with locked("rootfs-" + release):
        if rootfs_ready(release) and not force:
            return final
        require_root_and_tools()
        new = final.with_name(release + ".new")
        shutil.rmtree(new, ignore_errors=True)
        new.parent.mkdir(parents=True, exist_ok=True)
        logfile = final.with_name(release + ".log")
        t0 = time.monotonic()
        log(f"building the {release} rootfs (debootstrap from {MIRROR}; log {logfile})")
        with open(logfile, "w") as lf:
            p = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), release,
                 str(new), MIRROR], stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                timeout=1800, check=False)
        if p.returncode != 0:
            tail = "".join(logfile.read_text(errors="replace").splitlines(True)[-20:])
            raise Error(f"debootstrap {release} failed ({p.returncode}); last lines of {logfile}:\n{tail}")
        # resolv.conf is the build machine's, for apt-get update in the chroot only.
        chroot(new, f"""
            apt-get -q update
            # debootstrap's own .deb files are not needed again.
            apt-get clean
            # The .deb files only: a role's first `apt install` is then served offline.
            apt-get -q -y --download-only install {' '.join(cached_packages(release))}
            ls {' '.join(f"/var/cache/apt/archives/{p}_*.deb" for p in cached_packages(release))} >/dev/null
            useradd --create-home --shell /bin/bash --groups sudo {USER}
            # "*": no password login, but not a locked account.
            usermod -p '*' {USER}
            printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' {USER} > /etc/sudoers.d/{USER}
            chmod 0440 /etc/sudoers.d/{USER}
            visudo -cf /etc/sudoers.d/{USER} >/dev/null
            install -d -m 0700 -o {USER} -g {USER} /home/{USER}/.ssh
            # No mirror is reachable from inside, and these would hold dpkg's lock under a role.
            systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
            systemctl mask apt-daily.service apt-daily-upgrade.service
            # What Debian's libnss-systemd / libnss-myhostname wrote, for `--nss systemd` hosts.
            cp /etc/nsswitch.conf /etc/nsswitch.conf.debian
            : > /etc/machine-id
        """)
        unmount_under(new)
        (new / "etc/resolv.conf").unlink(missing_ok=True)
        (new / ".cf-stamp").write_text(rootfs_stamp(release))
        shutil.rmtree(final, ignore_errors=True)
        new.rename(final)
        log(f"built the {release} rootfs in {time.monotonic() - t0:.0f}s")
        return final


# ---------------------------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------------------------
def key_path() -> Path:
    return STATE / "id_ed25519"


def ensure_key() -> Path:
    k = key_path()
    if not k.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cf-testhosts", "-f", k])
    return k


def host_dir(name: str) -> Path:
    return STATE / "hosts" / name


def load_host(name: str) -> dict:
    f = host_dir(name) / "host.json"
    if not f.is_file():
        raise Error(f"no test host {name!r} (no {f})")
    return json.loads(f.read_text())


def save_host(h: dict) -> None:
    f = host_dir(h["name"]) / "host.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(h, indent=2) + "\n")
    tmp.rename(f)


def all_hosts() -> list[dict]:
    out = []
    for f in sorted((STATE / "hosts").glob("*/host.json")):
        with contextlib.suppress(ValueError, OSError):
            out.append(json.loads(f.read_text()))
    return out


def valid_name(name: str) -> bool:
    return 0 < len(name) <= 40 and all(c.isalnum() or c == "-" for c in name) and name[0].isalnum()


def port_free(addr: str, port: int) -> bool:
    s = socket.socket()
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ssh_port(addr: str) -> int:
    if port_free(addr, 22):
        return 22
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def prepare_disk(h: dict, members: list[dict]) -> None:
    """The host's own copy of the rootfs, made its own: name, address, key, NSS."""
    root = Path(h["root"])
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    # One file system only (-x): nothing mounted inside the rootfs is copied.
    unmount_under(rootfs_dir(h["release"]))
    run(["cp", "-a", "-x", "--reflink=auto", rootfs_dir(h["release"]), root])
    (root / ".cf-stamp").unlink(missing_ok=True)
    (root / "etc/hostname").write_text(h["name"] + "\n")
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    hosts += [f"{m['address']}\t{m['name']}" for m in members]
    (root / "etc/hosts").write_text("\n".join(hosts) + "\n")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    # sshd listens on the host's own address only (in a shared namespace the port is shared).
    (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config.d/cf-testhost.conf").write_text(
        f"ListenAddress {h['address']}\nUseDNS no\n")
    ssh = root / "home" / USER / ".ssh"
    (ssh / "authorized_keys").write_text(Path(h["key"] + ".pub").read_text())
    uid_gid = run(["chroot", root, "id", "-u", USER], capture=True).stdout.strip()
    os.chown(ssh / "authorized_keys", int(uid_gid), int(uid_gid))
    os.chmod(ssh / "authorized_keys", 0o600)
    nss = root / "etc/nsswitch.conf"
    if h["nss"] == "systemd":
        shutil.copy2(root / "etc/nsswitch.conf.debian", nss)
    else:
        lines = []
        for line in nss.read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("passwd", "group", "shadow", "gshadow"):
                line = f"{key + ':':<16}files"
            elif key == "hosts":
                line = f"{'hosts:':<16}files dns"
            lines.append(line)
        nss.write_text("\n".join(lines) + "\n")


def start_network(net: str, hosts: list[dict]) -> int:
    """Starts the forwarder that holds the network namespace `net`; returns its pid."""
    spec = STATE / "networks" / f"{net}.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    ready = spec.with_suffix(".ready")
    ready.unlink(missing_ok=True)
    spec.write_text(json.dumps({
        "name": net, "ready": str(ready),
        "listen": [[h["address"], h["ssh_port"], h["address"], 22] for h in hosts],
    }, indent=2) + "\n")
    with open(spec.with_suffix(".log"), "w") as lf:
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_network", str(spec)],
                             stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                             start_new_session=True)
    deadline = time.monotonic() + 15
    while not ready.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            kill(p.pid, signal.SIGKILL)
            tail = spec.with_suffix(".log").read_text(errors="replace")[-2000:]
            raise Error(f"the network namespace holder for {net} did not start:\n{tail}")
        time.sleep(0.05)
    return p.pid


def network_users(net: str, exclude=()) -> list[str]:
    return [h["name"] for h in all_hosts() if h.get("network") == net and h["name"] not in exclude]


def stop_network(net: str, pid) -> None:
    if pid and is_ours(pid, "_network"):
        kill(pid, signal.SIGTERM)
        if not wait_gone(pid, 10):
            kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
    for suffix in (".json", ".ready"):
        (STATE / "networks" / f"{net}{suffix}").unlink(missing_ok=True)


def nspawn_cmd(h: dict) -> list[str]:
    return [
        "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot",
        f"--directory={h['root']}", f"--machine={h['name']}",
        f"--network-namespace-path=/proc/{h['network_pid']}/ns/net",
        "--link-journal=no", "--console=read-only", "--resolv-conf=off", "--timezone=off",
    ]


def cgroup_dirs(name: str) -> list[Path]:
    """A cgroup of the host's own under this process's, in the unified (v2) and the name=systemd
    (v1) hierarchies. With --keep-unit and no systemd outside, systemd-nspawn runs the container in
    the cgroup it was started in: containers started from one cgroup would share it, and each
    container's systemd would create and remove its units' cgroups in the others' tree (seen:
    "Failed at step CGROUP spawning systemd-sysusers: No such file or directory")."""
    dirs = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrl, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and ctrl == "":
                base = Path("/sys/fs/cgroup/unified")
                if not (base / "cgroup.procs").exists():
                    base = Path("/sys/fs/cgroup")
            elif ctrl == "name=systemd":
                base = Path("/sys/fs/cgroup/systemd")
            else:
                continue
            if (base / "cgroup.procs").exists():
                dirs.append(base / path.strip("/") / f"cf-testhost-{name}")
    return dirs


def remove_cgroups(name: str) -> None:
    for d in cgroup_dirs(name):
        if not d.is_dir():
            continue
        # Children first; a cgroup directory goes with rmdir once it has no process left.
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()


def boot_host(h: dict) -> None:
    """Starts systemd-nspawn for the host (detached); wait_running() waits for it."""
    if h.get("pid") and is_ours(h["pid"], "systemd-nspawn"):
        raise Error(f"{h['name']} is already running (systemd-nspawn pid {h['pid']})")
    if not is_ours(h.get("network_pid"), "_network"):
        raise Error(f"{h['name']}: its network namespace holder (pid {h.get('network_pid')}) is gone; "
                    "`down` the host and bring it `up` again")
    env = dict(os.environ)
    # The machine's cgroups are v1/hybrid. systemd 257 (trixie) in a container on those hangs at
    # shutdown (halt.target reached, PID 1 never exits); a cgroup v2 hierarchy of its own is what
    # both releases run well on.
    env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
    console = host_dir(h["name"]) / "console.log"
    cgroups = cgroup_dirs(h["name"])
    remove_cgroups(h["name"])  # what a previous boot left

    def own_cgroup():  # in the child, before exec
        for d in cgroups:
            d.mkdir(parents=True, exist_ok=True)
            (d / "cgroup.procs").write_text(f"{os.getpid()}\n")

    with open(console, "a") as cf:
        cf.write(f"\n===== boot {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n")
        cf.flush()
        p = subprocess.Popen(nspawn_cmd(h), stdin=subprocess.DEVNULL, stdout=cf, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env, preexec_fn=own_cgroup)
    h["pid"] = p.pid
    h["booted_at"] = time.time()
    save_host(h)


def leader(h: dict):
    """The container's PID 1 as seen from this machine (a child of systemd-nspawn)."""
    if not is_ours(h.get("pid"), "systemd-nspawn"):
        return None
    for c in children(h["pid"]):
        if alive(c):
            return c
    return None


def in_container(h: dict, *cmd, timeout=30, check=False):
    pid = leader(h)
    if pid is None:
        raise Error(f"{h['name']} is not running")
    return run(["nsenter", f"--target={pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--", *cmd],
               capture=True, check=check, timeout=timeout)


def console_tail(h: dict, n=25) -> str:
    f = host_dir(h["name"]) / "console.log"
    try:
        return "\n".join(f.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def ssh_base(h: dict) -> list[str]:
    return ["ssh", "-i", h["key"], "-p", str(h["ssh_port"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=5", f"{h['user']}@{h['address']}"]


def wait_running(h: dict, timeout=BOOT_TIMEOUT) -> None:
    """Until `systemctl is-system-running` says running and sshd lets the sudo user in."""
    deadline = time.monotonic() + timeout
    state = "not started"
    while time.monotonic() < deadline:
        if not is_ours(h.get("pid"), "systemd-nspawn"):
            raise Error(f"{h['name']}: systemd-nspawn exited while booting; console:\n{console_tail(h)}")
        if leader(h) is not None:
            with contextlib.suppress(Error, subprocess.TimeoutExpired):
                p = in_container(h, "systemctl", "is-system-running", "--wait",
                                 timeout=max(1, deadline - time.monotonic()))
                state = p.stdout.strip() or p.stderr.strip()
            if state == "running":
                break
            if state == "degraded":
                failed = in_container(h, "systemctl", "--failed", "--no-legend", "--plain").stdout
                units = [line.split()[0] for line in failed.splitlines() if line.strip()]
                journal = in_container(h, "journalctl", "--no-pager", "-b", "-n", "40",
                                       *[f"--unit={u}" for u in units]).stdout if units else ""
                raise Error(f"{h['name']} booted degraded; failed units:\n{failed}\n{journal}")
        time.sleep(0.3)
    else:
        raise Error(f"{h['name']} was not running within {timeout}s (last: {state}); console:\n{console_tail(h)}")
    while True:
        p = run([*ssh_base(h), "sudo", "-n", "true"], check=False, capture=True, timeout=30)
        if p.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise Error(f"{h['name']}: ssh {h['user']}@{h['address']}:{h['ssh_port']} with sudo failed: "
                        f"{p.stderr.strip()}")
        time.sleep(0.3)


def up(specs: list[tuple[str, str, str]], network: str = "private") -> list[dict]:
    """Boots one fresh host per (name, release, nss) spec and waits until all are running."""
    require_root_and_tools()
    for name, release, nss in specs:
        if not valid_name(name):
            raise Error(f"host name {name!r}: letters, digits and '-', at most 40")
        if release not in RELEASES:
            raise Error(f"{name}: unknown release {release!r}; one of {', '.join(RELEASES)}")
        if nss not in ("files", "systemd"):
            raise Error(f"{name}: nss must be files or systemd, not {nss!r}")
    if len({s[0] for s in specs}) != len(specs):
        raise Error("host names must be unique")
    releases = sorted({s[1] for s in specs} - {r for r in RELEASES if rootfs_ready(r)})
    # Two debootstraps at once take about as long as one.
    with concurrent.futures.ThreadPoolExecutor() as pool:
        for f in [pool.submit(build_rootfs, r) for r in releases]:
            f.result()
    key = ensure_key()
    with locked():
        existing = {h["name"]: h for h in all_hosts()}
        clash = [s[0] for s in specs if s[0] in existing]
        if clash:
            raise Error(f"test host(s) {', '.join(clash)} exist already: `down` them first")
        used = {h["address"] for h in existing.values()}
        hosts = []
        x = FIRST_ADDRESS
        for name, release, nss in specs:
            while f"127.0.0.{x}" in used:
                x += 1
            if x > 254:
                raise Error("no free loopback address left in 127.0.0.11-254")
            addr = f"127.0.0.{x}"
            used.add(addr)
            hosts.append({
                "name": name, "release": release, "debian": RELEASES[release], "nss": nss,
                "address": addr, "ssh_port": pick_ssh_port(addr), "user": USER, "key": str(key),
                "root": str(host_dir(name) / "root"), "network": name if network == "private" else None,
                "network_pid": None, "pid": None,
            })
        if network != "private":
            group = hosts[0]["name"] + "-net"
            for h in hosts:
                h["network"] = group
        for h in hosts:
            host_dir(h["name"]).mkdir(parents=True, exist_ok=True)
            save_host(h)
    try:
        for h in hosts:
            members = [m for m in hosts if m["network"] == h["network"]]
            prepare_disk(h, members)
        for net in dict.fromkeys(h["network"] for h in hosts):
            members = [h for h in hosts if h["network"] == net]
            pid = start_network(net, members)
            for h in members:
                h["network_pid"] = pid
                save_host(h)
        t0 = time.monotonic()
        for h in hosts:
            boot_host(h)
        for h in hosts:
            wait_running(h)
        log(f"up: {', '.join(h['name'] + ' ' + h['address'] for h in hosts)} running "
            f"after {time.monotonic() - t0:.1f}s")
    except BaseException:
        if not os.environ.get("CF_TESTHOSTS_KEEP_FAILED"):
            with contextlib.suppress(Exception):
                down([h["name"] for h in hosts])
        raise
    return hosts


def stop_container(h: dict, timeout=STOP_TIMEOUT) -> None:
    pid = h.get("pid")
    if pid and is_ours(pid, "systemd-nspawn"):
        init = leader(h)
        # SIGTERM: systemd-nspawn asks the container's systemd for an orderly shutdown.
        kill(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            log(f"{h['name']}: no orderly shutdown within {timeout}s; SIGKILL")
            if init:
                kill(init, signal.SIGKILL)
            kill(pid, signal.SIGKILL)
            wait_gone(pid, 15)
    remove_cgroups(h["name"])
    h["pid"] = None
    save_host(h)


def down(names: list[str]) -> None:
    for name in names:
        try:
            h = load_host(name)
        except Error:
            shutil.rmtree(host_dir(name), ignore_errors=True)
            continue
        stop_container(h)
        if not network_users(h["network"], exclude=(name,)):
            stop_network(h["network"], h.get("network_pid"))
        shutil.rmtree(host_dir(name), ignore_errors=True)
        log(f"down: {name}")


def poweroff(names: list[str], timeout=STOP_TIMEOUT) -> None:
    """`systemctl poweroff` inside, then wait until systemd-nspawn has exited. The disk stays."""
    for name in names:
        h = load_host(name)
        if not is_ours(h.get("pid"), "systemd-nspawn"):
            continue
        in_container(h, "systemctl", "poweroff", check=True)
        if not wait_gone(h["pid"], timeout):
            raise Error(f"{name} did not power off within {timeout}s; console:\n{console_tail(h)}")
        remove_cgroups(name)
        h["pid"] = None
        save_host(h)
        log(f"poweroff: {name}")


def boot(names: list[str]) -> None:
    hosts = [load_host(n) for n in names]
    for h in hosts:
        boot_host(h)
    for h in hosts:
        wait_running(h)
        log(f"boot: {h['name']} running")


def inventory(names: list[str]) -> str:
    hosts = [load_host(n) for n in names] if names else all_hosts()
    lines = ["all:", "  hosts:"]
    for h in hosts:
        lines += [f"    {h['name']}:", f"      ansible_host: {h['address']}",
                  f"      ansible_port: {h['ssh_port']}", f"      ansible_user: {h['user']}",
                  f"      ansible_ssh_private_key_file: {h['key']}"]
    lines += ["  vars:",
              "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
              "    ansible_python_interpreter: /usr/bin/python3"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The network namespace holder and SSH forwarder (a process of its own)
# ---------------------------------------------------------------------------------------------
def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    t = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    t.start()
    _pump(client, upstream)
    t.join()
    client.close()
    upstream.close()


def serve_network(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    sel = selectors.DefaultSelector()
    for laddr, lport, taddr, tport in spec["listen"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((laddr, lport))  # in the machine's namespace
        s.listen(64)
        sel.register(s, selectors.EVENT_READ, (taddr, tport))
    # From here on every new socket of this process is in the new namespace.
    os.unshare(os.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    Path(spec["ready"]).write_text(f"{os.getpid()}\n")
    print(f"network {spec['name']}: pid {os.getpid()}, forwarding {spec['listen']}", flush=True)
    while True:
        for key, _ in sel.select():
            try:
                client, _ = key.fileobj.accept()
            except OSError as e:
                if e.errno in (errno.EINTR, errno.EAGAIN):
                    continue
                raise
            threading.Thread(target=_relay, args=(client, key.data), daemon=True).start()


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="testhosts", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-rootfs", help="build (or reuse) the rootfs of each release")
    b.add_argument("--release", action="append", choices=sorted(RELEASES))
    b.add_argument("--force", action="store_true")
    u = sub.add_parser("up", help="boot fresh hosts; prints them as JSON")
    u.add_argument("count", nargs="?", type=int)
    u.add_argument("--release", default="bookworm", choices=sorted(RELEASES))
    u.add_argument("--prefix", help="names PREFIX1..PREFIXn (default: the release)")
    u.add_argument("--name", help="the name of the one host (count 1)")
    u.add_argument("--nss", default="files", choices=["files", "systemd"])
    u.add_argument("--host", action="append", default=[], metavar="NAME:RELEASE[:NSS]")
    u.add_argument("--network", default="private", choices=["private", "shared"])
    d = sub.add_parser("down", help="stop hosts (by pid) and remove their disks")
    d.add_argument("names", nargs="*")
    d.add_argument("--all", action="store_true")
    for verb in ("poweroff", "boot"):
        sub.add_parser(verb).add_argument("names", nargs="+")
    sub.add_parser("list")
    sub.add_parser("inventory").add_argument("names", nargs="*")
    s = sub.add_parser("ssh")
    s.add_argument("name")
    s.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("_network").add_argument("spec")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "_network":
            serve_network(a.spec)
        elif a.cmd == "build-rootfs":
            releases = a.release or sorted(RELEASES)
            with concurrent.futures.ThreadPoolExecutor() as pool:
                for r, f in [(r, pool.submit(build_rootfs, r, a.force)) for r in releases]:
                    log(f"{r}: {f.result()}")
        elif a.cmd == "up":
            specs = []
            for spec in a.host:
                parts = spec.split(":")
                if len(parts) not in (2, 3):
                    raise Error(f"--host {spec!r}: NAME:RELEASE[:NSS]")
                specs.append((parts[0], parts[1], parts[2] if len(parts) == 3 else "files"))
            if a.count:
                if a.name and a.count != 1:
                    raise Error("--name names one host: use --prefix for several")
                names = [a.name] if a.name else [f"{a.prefix or a.release}{i}" for i in range(1, a.count + 1)]
                specs += [(n, a.release, a.nss) for n in names]
            if not specs:
                raise Error("up: give a count or --host")
            print(json.dumps(up(specs, a.network), indent=2))
        elif a.cmd == "down":
            names = [h["name"] for h in all_hosts()] if a.all else a.names
            if a.all:
                names += [d.name for d in (STATE / "hosts").glob("*") if d.name not in names]
            down(names)
        elif a.cmd == "poweroff":
            poweroff(a.names)
        elif a.cmd == "boot":
            boot(a.names)
        elif a.cmd == "list":
            for h in all_hosts():
                state = "running" if is_ours(h.get("pid"), "systemd-nspawn") else "off"
                print(f"{h['name']}\t{h['release']}\t{h['address']}:{h['ssh_port']}\tnss={h['nss']}\t{state}")
        elif a.cmd == "inventory":
            print(inventory(a.names), end="")
        elif a.cmd == "ssh":
            h = load_host(a.name)
            os.execvp("ssh", [*ssh_base(h), *a.command])
    except Error as e:
        print(f"testhosts: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
