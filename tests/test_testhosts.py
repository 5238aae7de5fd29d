"""tests/hosts/testhosts.py: Debian containers with systemd as PID 1, as the Molecule scenario
`systemd` and the multi-host scenarios use them. Needs root (CI is root) and the packages of
`make deps`; the Debian rootfs is built once into build/testhosts/rootfs/ and reused."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import REPO, ansible_env, tool

sys.path.insert(0, str(REPO / "tests" / "hosts"))
import testhosts  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"),
    reason="needs root, systemd-nspawn and debootstrap (make deps)")

HOSTS = ["pytest-th-a", "pytest-th-b"]


def ssh(name, command, check=True):
    h = testhosts.load_host(name)
    p = subprocess.run([*testhosts.ssh_base(h), command], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"{name}: {command}: {p.stdout}{p.stderr}"
    return p


@pytest.fixture(scope="module")
def hosts():
    """Two bookworm hosts in one network namespace (the Sentinel/Cluster layout), one of them
    with Debian's nsswitch.conf naming libnss-systemd."""
    testhosts.down(HOSTS)
    up = testhosts.up([(HOSTS[0], "bookworm", "systemd"), (HOSTS[1], "bookworm", "files")],
                      network="shared")
    yield {h["name"]: h for h in up}
    testhosts.down(HOSTS)


def test_systemd_is_pid_1_and_the_sudo_user_gets_in(hosts):
    for name in HOSTS:
        out = ssh(name, "cat /proc/1/comm; systemctl is-system-running; sudo -n id -u").stdout.split()
        assert out == ["systemd", "running", "0"], out


def test_each_host_has_its_own_address_and_reaches_the_other(hosts):
    a, b = (hosts[n] for n in HOSTS)
    assert a["address"] != b["address"]
    assert a["network"] == b["network"]
    # sshd listens on the host's own address only; the other host reaches it there.
    probe = "exec 3<>/dev/tcp/{}/22 && head -c 7 <&3"
    assert ssh(HOSTS[0], probe.format(b["address"])).stdout == "SSH-2.0"
    assert ssh(HOSTS[1], probe.format(a["address"])).stdout == "SSH-2.0"
    assert ssh(HOSTS[0], "hostname").stdout.strip() == HOSTS[0]
    assert b["address"] in ssh(HOSTS[0], "getent hosts " + HOSTS[1]).stdout


def test_the_machines_own_loopback_is_out_of_reach(hosts):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        p = ssh(HOSTS[0], f"timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo reached",
                check=False)
        assert "reached" not in p.stdout, "a container reached the machine's 127.0.0.1"
    finally:
        server.close()


def test_nsswitch_of_each_host(hosts):
    assert ssh(HOSTS[0], "grep -E '^passwd:' /etc/nsswitch.conf").stdout.split() == ["passwd:", "files", "systemd"]
    assert ssh(HOSTS[1], "grep -E '^passwd:' /etc/nsswitch.conf").stdout.split() == ["passwd:", "files"]


def test_static_modules_on_a_host_whose_nss_names_systemd(hosts, tmp_path, collection_built):
    """glibc's NSS would load libnss_systemd into our static binaries for a name that is not in
    /etc/passwd; the module must fail with its own message, not crash."""
    inv = tmp_path / "inventory.yml"
    inv.write_text(testhosts.inventory([HOSTS[0]]))
    p = subprocess.run(
        [tool("ansible"), "-i", str(inv), HOSTS[0], "-b", "-m", "creativeflow.redis.redis_config",
         "-a", "path=/tmp/cf-nss.conf owner=cf-no-such-user settings={'port': 7000}"],
        capture_output=True, text=True, env=ansible_env(tmp_path), timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "cf-no-such-user" in out, out
    assert "MODULE FAILURE" not in out and "Segmentation" not in out and "rc: -11" not in out, out


def test_poweroff_and_boot_keep_the_disk_and_the_address(hosts):
    before = testhosts.load_host(HOSTS[1])
    ssh(HOSTS[1], "echo kept | sudo tee /var/tmp/cf-marker >/dev/null")
    testhosts.poweroff([HOSTS[1]])
    assert not testhosts.alive(before["pid"])
    assert testhosts.load_host(HOSTS[1])["pid"] is None
    testhosts.boot([HOSTS[1]])
    after = testhosts.load_host(HOSTS[1])
    assert after["pid"] != before["pid"] and after["address"] == before["address"]
    assert ssh(HOSTS[1], "cat /var/tmp/cf-marker; systemctl is-system-running").stdout.split() == ["kept", "running"]


def test_down_stops_by_pid_and_removes_everything(hosts):
    h = testhosts.load_host(HOSTS[0])
    net_pid = h["network_pid"]
    testhosts.down([HOSTS[0]])
    assert not testhosts.alive(h["pid"])
    assert testhosts.alive(net_pid), "the other host still uses the network namespace"
    assert not pathlib.Path(h["root"]).exists()
    assert all(not d.exists() for d in testhosts.cgroup_dirs(HOSTS[0]))
    testhosts.down([HOSTS[1]])
    assert not testhosts.alive(net_pid)
    assert not any(n in json.dumps(testhosts.all_hosts()) for n in HOSTS)


def test_nothing_mounted_in_a_rootfs_is_copied(tmp_path):
    # A CI-like run found debootstrap's /proc still mounted in the built rootfs, and the copy of
    # it for a host filled the disk (kcore). unmount_under clears what is mounted below a tree.
    root = tmp_path / "rootfs"
    (root / "proc").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(root / "proc")], check=True)
    try:
        assert testhosts.mounts_under(root) == [str(root / "proc")]
        testhosts.unmount_under(root)
        assert testhosts.mounts_under(root) == []
    finally:
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=False, capture_output=True)


@pytest.mark.parametrize("release", sorted(testhosts.RELEASES))
def test_a_rootfs_is_rebuilt_when_its_package_lists_change(release, monkeypatch):
    # build-rootfs reuses build/testhosts/rootfs/<release> only while its stamp matches the
    # recipe: the packages installed, the packages cached for the roles, the recipe number.
    testhosts.build_rootfs(release)
    assert testhosts.rootfs_ready(release)
    for name, changed in (("PACKAGES", testhosts.PACKAGES + ["less"]),
                          ("CACHED", testhosts.CACHED + ["redis-doc"]),
                          ("CACHED_EXTRA", {release: ["valkey-doc"]}),
                          ("RECIPE", testhosts.RECIPE + 1)):
        with monkeypatch.context() as m:
            m.setattr(testhosts, name, changed)
            assert not testhosts.rootfs_ready(release), f"a change of {name} keeps the old {release} rootfs"
    assert testhosts.rootfs_ready(release)
