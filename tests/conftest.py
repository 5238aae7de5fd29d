"""Shared fixtures: where the built collection is, how to run ansible, real Redis processes."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from redis_procs import RedisProc  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / "build" / "ansible_collections_install"
MODULES_DIR = COLLECTIONS / "ansible_collections" / "creativeflow" / "redis" / "plugins" / "modules"
VENV_BIN = pathlib.Path(sys.executable).parent
# ANSIBLE_VENV=<venv> runs the Ansible CLIs (ansible, ansible-playbook, ansible-doc) of that venv
# instead of the one running pytest: `make lint` uses it for the smoke test under the oldest
# supported ansible-core (ANSIBLE_VENV=.venv-2.16).
ANSIBLE_VENV = os.environ.get("ANSIBLE_VENV")
ANSIBLE_BIN = pathlib.Path(ANSIBLE_VENV).resolve() / "bin" if ANSIBLE_VENV else VENV_BIN
ANSIBLE_PYTHON = str(ANSIBLE_BIN / "python") if ANSIBLE_VENV else sys.executable


def ansible_env(tmp_path=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_PYTHON_INTERPRETER": ANSIBLE_PYTHON,
    })
    env.pop("REDISCLI_AUTH", None)
    if tmp_path is not None:
        env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-local")
        env["ANSIBLE_REMOTE_TEMP"] = str(tmp_path / "ansible-remote")
    return env


def tool(name):
    if ANSIBLE_VENV and name.startswith("ansible"):
        path = ANSIBLE_BIN / name
        if not path.exists():
            raise FileNotFoundError(f"ANSIBLE_VENV={ANSIBLE_VENV}: no {path}")
        return str(path)
    path = VENV_BIN / name
    return str(path) if path.exists() else shutil.which(name)


@pytest.fixture(scope="session")
def collection_built():
    if not (MODULES_DIR / "redis_health").exists():
        pytest.fail(f"the collection is not built: run `make collection` (missing {MODULES_DIR}/redis_health)")
    return MODULES_DIR


@pytest.fixture
def adhoc(tmp_path, collection_built):
    """ansible localhost -m MODULE -a ARGS; returns (rc, stdout+stderr)."""
    def run(module, args, *extra):
        cmd = [tool("ansible"), "localhost", "-c", "local", "-m", module, "-a", args, *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(tmp_path), timeout=120)
        return p.returncode, p.stdout + p.stderr
    return run


@pytest.fixture
def playbook(tmp_path, collection_built):
    """Runs a playbook given as YAML text; returns (rc, output)."""
    def run(text, *extra):
        pb = tmp_path / "play.yml"
        pb.write_text(text)
        cmd = [tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb), *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(tmp_path), timeout=300)
        return p.returncode, p.stdout + p.stderr
    return run


@pytest.fixture
def redis_server():
    procs = []

    def start(*lines, binary="redis-server"):
        p = RedisProc(lines, binary=binary)
        procs.append(p)
        return p
    yield start
    for p in reversed(procs):
        p.stop()


def result_of(output):
    """The JSON result from `ansible ... -m` output (`host | STATUS => {...}`)."""
    start = output.index("=> {") + 3
    depth = 0
    for i, ch in enumerate(output[start:], start):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return json.loads(output[start:i + 1])
    raise ValueError(output)
