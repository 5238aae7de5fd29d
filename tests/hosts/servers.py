#!/usr/bin/env python3
"""Redis 8.0 and Valkey 8.1 server builds that run on this Debian 12 machine, for the tests.

Debian 12 ships only redis-server 7.0. The Debian 13 test-host rootfs (tests/hosts/testhosts.py
build-rootfs --release trixie) keeps the .debs of redis-server 8.0 and valkey-server 8.1 in its apt
cache. This helper unpacks them (dpkg-deb -x, nothing installed, nothing under /etc or /usr touched)
and writes wrapper scripts that run each binary through Debian 13's own dynamic loader, so the
binaries find the glibc 2.41 and libssl they were built against instead of the machine's.

    python3 tests/hosts/servers.py build     # idempotent; rebuilt when the .debs or the recipe change
    python3 tests/hosts/servers.py list      # JSON: {"redis-7.0": {...}, "redis-8.0": {...}, ...}

Layout (CF_SERVERS_DIR overrides build/servers; CF_TRIXIE_ROOTFS overrides the rootfs):

    build/servers/<name>/root/       the unpacked .debs (usr/bin/..., usr/lib/...)
    build/servers/<name>/lib/        the loader and every shared library the binaries need, copied
                                     from the rootfs and the unpacked .debs
    build/servers/<name>/bin/<prog>  wrapper: exec lib/ld-linux-x86-64.so.2 --library-path lib
                                     --argv0 <prog> root/usr/bin/<prog's target> "$@"
    build/servers/<name>/build.json  {"flavour", "version", "server", "sentinel", "cli", ...};
                                     written last, so a build.json means a complete build
    build/servers/<name>/.cf-stamp   what it was built from (the .debs' sha256 and the recipe)

Why copies and not the rootfs in place: testhosts.py rebuilds the rootfs when its recipe changes
(rm -rf, then debootstrap), and a test suite running at that moment would lose its loader. Why
--argv0: redis-server, redis-sentinel and redis-check-rdb are one binary that picks its mode from
argv[0] (as is valkey-*), and the loader would otherwise pass the real file's name.

The machine's own redis-server (Debian 12's 7.0) is listed as redis-7.0 by `list` and in
build/servers/redis-7.0/build.json, with its /usr/bin paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = 1
# The flavours unpacked from the rootfs's apt cache, and the packages of each.
FLAVOURS = {
    "redis": ["redis-server", "redis-sentinel", "redis-tools"],
    "valkey": ["valkey-server", "valkey-sentinel", "valkey-tools"],
}
LOADER = "ld-linux-x86-64.so.2"


def servers_dir() -> Path:
    return Path(os.environ.get("CF_SERVERS_DIR", REPO / "build" / "servers"))


def rootfs_dir() -> Path:
    return Path(os.environ.get("CF_TRIXIE_ROOTFS", REPO / "build" / "testhosts" / "rootfs" / "trixie"))


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True,
                          capture_output=True, text=True).stdout.strip()


def newest(debs: list[Path]) -> Path:
    """The .deb of the highest version (dpkg's ordering) among several of one package."""
    best = debs[0]
    for d in debs[1:]:
        if subprocess.run(["dpkg", "--compare-versions", deb_field(d, "Version"), "gt",
                           deb_field(best, "Version")]).returncode == 0:
            best = d
    return best


def debs_for(flavour: str, archives: Path) -> list[Path] | None:
    """The flavour's packages plus every library .deb in the cache (the dependencies that the
    rootfs itself does not have installed: libjemalloc2, liblzf1, libatomic1, ...). None when the
    flavour's packages are not all there."""
    out = []
    for pkg in FLAVOURS[flavour]:
        found = sorted(archives.glob(f"{pkg}_*.deb"))
        if not found:
            return None
        out.append(newest(found))
    libs: dict[str, list[Path]] = {}
    for d in sorted(archives.glob("lib*.deb")):
        libs.setdefault(d.name.split("_", 1)[0], []).append(d)
    out.extend(newest(v) for _, v in sorted(libs.items()))
    return out


def upstream_version(deb: Path) -> str:
    """'5:8.0.2-3+deb13u3' -> '8.0.2', '8.1.1+dfsg1-3+deb13u3' -> '8.1.1'."""
    v = deb_field(deb, "Version").split(":", 1)[-1]
    m = re.match(r"\d+(\.\d+)*", v)
    if not m:
        raise SystemExit(f"servers.py: {deb}: no upstream version in {v!r}")
    return m.group(0)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def loader_list(lib: Path, search: list[Path], binary: Path) -> list[Path]:
    """The shared libraries `binary` needs, as the Debian 13 loader resolves them."""
    res = subprocess.run([str(lib / LOADER), "--library-path", ":".join(map(str, search)),
                          "--list", str(binary)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"servers.py: the loader cannot resolve {binary}:\n{res.stdout}{res.stderr}")
    paths = []
    for line in res.stdout.splitlines():
        m = re.match(r"\s*\S+ => (\S+) \(", line)
        if m:
            paths.append(Path(m.group(1)))
        elif "not found" in line:
            raise SystemExit(f"servers.py: {binary}: {line.strip()}")
    return paths


def wrapper(lib: Path, argv0: Path, target: Path) -> str:
    # Paths are absolute and quoted for sh; build paths never hold a single quote (checked).
    for p in (lib, argv0, target):
        if "'" in str(p):
            raise SystemExit(f"servers.py: a path with a quote is not supported: {p}")
    return ("#!/bin/sh\n"
            "# Written by tests/hosts/servers.py: runs a Debian 13 binary through its own loader.\n"
            f"exec '{lib / LOADER}' --library-path '{lib}' --argv0 '{argv0}' '{target}' \"$@\"\n")


def check_version(prog: Path, version: str) -> None:
    res = subprocess.run([str(prog), "--version"], capture_output=True, text=True, timeout=30)
    text = res.stdout + res.stderr
    if res.returncode != 0 or version not in text:
        raise SystemExit(f"servers.py: {prog} --version gave exit {res.returncode}, "
                         f"not version {version}:\n{text}")


def roles(flavour: str, bindir: Path) -> dict[str, str]:
    """server/sentinel/cli paths: the flavour's own names."""
    return {role: str(bindir / f"{flavour}-{suffix}")
            for role, suffix in (("server", "server"), ("sentinel", "sentinel"), ("cli", "cli"))}


def build_one(flavour: str, debs: list[Path], rootfs: Path, out_root: Path) -> str:
    version = upstream_version(debs[0])
    name = f"{flavour}-{'.'.join(version.split('.')[:2])}"
    out = out_root / name
    stamp = {"recipe": RECIPE, "debs": {d.name: sha256(d) for d in debs}, "rootfs": str(rootfs)}
    stamp_text = json.dumps(stamp, sort_keys=True)
    if (out / ".cf-stamp").is_file() and (out / ".cf-stamp").read_text() == stamp_text \
            and (out / "build.json").is_file():
        print(f"servers.py: {name} is up to date ({out})")
        return name
    print(f"servers.py: building {name} from {', '.join(d.name for d in debs)}")
    tmp = out_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "root").mkdir(parents=True)
    for d in debs:
        subprocess.run(["dpkg-deb", "-x", str(d), str(tmp / "root")], check=True)
    lib = tmp / "lib"
    lib.mkdir()
    shutil.copy2(rootfs / "usr/lib/x86_64-linux-gnu" / LOADER, lib / LOADER)
    search = [tmp / "root/usr/lib/x86_64-linux-gnu", rootfs / "usr/lib/x86_64-linux-gnu",
              rootfs / "usr/lib"]
    usrbin = tmp / "root/usr/bin"
    elves = [p for p in sorted(usrbin.iterdir()) if p.is_file() and not p.is_symlink()
             and p.read_bytes()[:4] == b"\x7fELF"]
    for exe in elves:
        for so in loader_list(lib, search, exe):
            if not (lib / so.name).exists():
                shutil.copy2(so.resolve(), lib / so.name)
    # The wrappers refer to their final place; the tree is moved there below.
    final_lib = out / "lib"
    bindir = tmp / "bin"
    bindir.mkdir()
    for prog in sorted(usrbin.iterdir()):
        target = prog.resolve() if prog.is_symlink() else prog
        if not target.is_file() or target.read_bytes()[:4] != b"\x7fELF":
            continue
        final_target = out / "root/usr/bin" / target.name
        (bindir / prog.name).write_text(
            wrapper(final_lib, out / "root/usr/bin" / prog.name, final_target))
        (bindir / prog.name).chmod(0o755)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    info = {"name": name, "flavour": flavour, "version": version,
            **roles(flavour, out / "bin"),
            "programs": sorted(p.name for p in (out / "bin").iterdir())}
    for role in ("server", "sentinel", "cli"):
        if not Path(info[role]).exists():
            raise SystemExit(f"servers.py: {name} has no {info[role]}")
        check_version(Path(info[role]), version)
    (out / ".cf-stamp").write_text(stamp_text)
    (out / "build.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    print(f"servers.py: {name} ready: {info['server']} --version gives {version}")
    return name


def host_build(out_root: Path | None) -> dict | None:
    """The machine's own redis-server (Debian 12: 7.0), when installed."""
    server = shutil.which("redis-server")
    if not server:
        return None
    text = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\d+\.\d+\.\d+)", text)
    if not m:
        return None
    version = m.group(1)
    name = f"redis-{'.'.join(version.split('.')[:2])}"
    info = {"name": name, "flavour": "redis", "version": version, "server": server,
            "sentinel": shutil.which("redis-sentinel") or "", "cli": shutil.which("redis-cli") or "",
            "programs": [], "host": True}
    if out_root is None:
        return info
    d = out_root / name
    d.mkdir(parents=True, exist_ok=True)
    text = json.dumps(info, indent=1, sort_keys=True) + "\n"
    if not (d / "build.json").is_file() or (d / "build.json").read_text() != text:
        (d / "build.json").write_text(text)
    return info


def build() -> int:
    rootfs = rootfs_dir()
    archives = rootfs / "var/cache/apt/archives"
    if not (rootfs / "usr/lib/x86_64-linux-gnu" / LOADER).exists():
        print(f"servers.py: no Debian 13 rootfs at {rootfs} "
              "(python3 tests/hosts/testhosts.py build-rootfs --release trixie)", file=sys.stderr)
        return 1
    out_root = servers_dir()
    out_root.mkdir(parents=True, exist_ok=True)
    host_build(out_root)
    missing = []
    for flavour in FLAVOURS:
        debs = debs_for(flavour, archives)
        if debs is None:
            missing.append(flavour)
            continue
        build_one(flavour, debs, rootfs, out_root)
    if missing:
        print(f"servers.py: no .debs of {', '.join(missing)} in {archives}", file=sys.stderr)
        return 1
    return 0


def listing() -> dict:
    out = {}
    root = servers_dir()
    host = host_build(root if root.is_dir() else None)
    if host:
        out[host["name"]] = host
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "build.json").is_file() and d.name not in out:
                out[d.name] = json.loads((d / "build.json").read_text())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "list"])
    a = ap.parse_args()
    if a.command == "build":
        return build()
    print(json.dumps(listing(), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
