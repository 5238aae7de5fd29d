"""Smoke test of the installed collection with whichever ansible-core runs it.

`pytest tests/` runs it with the newest ansible-core (.venv). `make lint` runs it again, with
tests/test_docs.py, under the oldest supported one: ANSIBLE_VENV=.venv-2.16 (conftest.py) selects
that venv's `ansible` and `ansible-doc`, and ANSIBLE_EXPECT_CORE=2.16 makes sure they are 2.16.
"""
import os
import re
import subprocess

import pytest

from conftest import MODULES_DIR, ansible_env, result_of, tool

COLLECTION = "creativeflow.redis"
PW = "smoke-Secret-51c9"
MODULES = sorted(p.name for p in MODULES_DIR.iterdir() if p.is_file() and not p.suffix) if MODULES_DIR.is_dir() else []


def _run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), stdin=subprocess.DEVNULL, timeout=120)
    return p.returncode, p.stdout + p.stderr


def _our_warnings(out):
    """[WARNING]/[ERROR] lines, except the one ansible-core 2.21's `ansible-doc -t role` prints
    about its own internal collection ansible._protomatter ("cannot detect version")."""
    return [line for line in out.splitlines()
            if ("[WARNING]" in line or "[ERROR]" in line) and "_protomatter" not in line]


def test_ansible_core_version(collection_built):
    rc, out = _run(tool("ansible"), "--version")
    assert rc == 0, out
    version = re.search(r"core ([0-9]+\.[0-9]+)\.", out)
    assert version, out
    print(f"ansible-core {version.group(1)} ({tool('ansible')})")
    expect = os.environ.get("ANSIBLE_EXPECT_CORE")
    if expect:
        assert version.group(1) == expect, f"ANSIBLE_EXPECT_CORE={expect}, but {tool('ansible')} is:\n{out}"


@pytest.mark.parametrize("name", MODULES or ["<no modules found>"])
def test_ansible_doc_module(collection_built, name):
    assert MODULES, f"no module binaries in {MODULES_DIR}"
    rc, out = _run(tool("ansible-doc"), f"{COLLECTION}.{name}")
    assert rc == 0, out
    assert not _our_warnings(out), out
    assert f"{COLLECTION}.{name}" in out, out


def test_ansible_doc_role(collection_built):
    rc, out = _run(tool("ansible-doc"), "-t", "role", f"{COLLECTION}.redis_server")
    assert rc == 0, out
    assert not _our_warnings(out), out
    assert "redis_server_instances" in out, out


def test_adhoc_redis_health(adhoc, redis_server):
    s = redis_server(f"requirepass {PW}")
    rc, out = adhoc(f"{COLLECTION}.redis_health", f"login_port={s.port} login_password={PW}")
    assert rc == 0, out
    assert "localhost | SUCCESS" in out, out
    assert PW not in out
    res = result_of(out)
    assert res["status"] == "ok", res
    assert res["changed"] is False
