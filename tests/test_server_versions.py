"""The Redis 8.0 and Valkey 8.1 builds the version tests run against (tests/hosts/servers.py).

Cargo's version tests (modules/redis_config/tests/versions.rs, modules/redis_health/tests/
versions.rs) skip a build that is missing, with a SKIP line: on a developer's machine without the
Debian 13 rootfs that is fair. Under CI it is not, since `make test` builds the servers first
(test-rootfs), so here a missing build under CI=true is a failure, and the cargo version tests
are run again with CF_REQUIRE_SERVERS=1 (cargo's own step runs beside the servers' build and may
have found none yet).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from redis_procs import RedisProc  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SERVERS_PY = REPO / "tests" / "hosts" / "servers.py"
SERVERS_DIR = Path(os.environ.get("CF_SERVERS_DIR", REPO / "build" / "servers"))
ROOTFS = REPO / "build" / "testhosts" / "rootfs" / "trixie"
BUILDS = ["redis-7.0", "redis-8.0", "valkey-8.1"]
DEBIAN13 = ["redis-8.0", "valkey-8.1"]
TABLES = REPO / "modules" / "redis_config" / "data"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def listing() -> dict:
    out = subprocess.run([sys.executable, str(SERVERS_PY), "list"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def require(name: str) -> dict:
    """The build's build.json; under CI a missing one fails, elsewhere it skips."""
    builds = listing()
    if name in builds:
        return builds[name]
    why = (f"no {name} server build in {SERVERS_DIR} (python3 tests/hosts/servers.py build, "
           "after tests/hosts/testhosts.py build-rootfs --release trixie)")
    if under_ci():
        pytest.fail(f"{why}; under CI make test builds it first, so this is a gap, not a skip")
    pytest.skip(why)


@pytest.mark.parametrize("name", DEBIAN13)
def test_debian13_builds_exist_under_ci(name):
    require(name)


@pytest.mark.parametrize("name", BUILDS)
def test_each_build_runs_and_says_its_version(name):
    b = require(name)
    flavour = b["flavour"]
    assert name.startswith(f"{flavour}-") and b["version"].startswith(name.split("-", 1)[1] + ".")
    for role in ("server", "sentinel", "cli"):
        res = subprocess.run([b[role], "--version"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, (role, res.stdout, res.stderr)
        assert b["version"] in res.stdout, (role, res.stdout)
    first = subprocess.run([b["server"], "--version"], capture_output=True, text=True).stdout
    assert first.lower().startswith(f"{flavour} server v="), first


def test_build_is_idempotent():
    if not (ROOTFS / "var" / "cache" / "apt" / "archives").is_dir() or not SERVERS_DIR.is_dir():
        if under_ci():
            pytest.fail(f"no Debian 13 rootfs at {ROOTFS} or no {SERVERS_DIR} under CI")
        pytest.skip(f"no Debian 13 rootfs at {ROOTFS}")
    res = subprocess.run([sys.executable, str(SERVERS_PY), "build"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in DEBIAN13:
        assert f"{name} is up to date" in res.stdout, res.stdout


def _config_names(cli: str, port: int) -> set[str]:
    out = subprocess.run([cli, "-p", str(port), "CONFIG", "GET", "*"], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return set(out[0::2])


@pytest.mark.parametrize("name", BUILDS)
def test_redis_config_table_is_the_servers_config_get_star(name):
    b = require(name)
    table = {ln.strip() for ln in (TABLES / f"config-{name}.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")}
    with RedisProc(lines=['save ""'], binary=b["server"]) as r:
        live = _config_names(b["cli"], r.port)
    assert len(live) > 150, live
    assert table == live, (f"data/config-{name}.txt: only in the table {sorted(table - live)}, "
                           f"only on the server {sorted(live - table)}")


@pytest.mark.parametrize("crate", ["redis_config", "redis_health", "redis_cluster"])
def test_cargo_version_tests_run_with_every_build_under_ci(crate):
    if not under_ci():
        pytest.skip("under CI only (cargo test -p <crate> --test versions runs them elsewhere)")
    for name in DEBIAN13:
        require(name)
    env = dict(os.environ, CF_REQUIRE_SERVERS="1")
    res = subprocess.run([os.environ.get("CARGO", "cargo"), "test", "-q", "-p", crate, "--test", "versions"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "SKIP" not in res.stdout, res.stdout
