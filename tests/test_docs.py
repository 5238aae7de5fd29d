"""The documentation of every module agrees with the module binary.

Each module is a Rust binary whose argument spec lives in Rust; its documentation is a Python doc
stub (``collection/plugins/modules/<name>.py``) plus the shared ``creativeflow.redis.connection``
doc fragment. Nothing in Ansible checks one against the other for binary modules, so this suite
does: ``<binary> --ansible-argspec`` against ``ansible-doc -j``, option by option, recursing into
sub-options. It runs against the collection as installed from the tarball
(``make collection`` puts it in ``build/ansible_collections_install``), so it tests what ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_PATH = ROOT / "build" / "ansible_collections_install"
COLLECTION = "creativeflow.redis"
MODULE_DIR = COLLECTIONS_PATH / "ansible_collections" / "creativeflow" / "redis" / "plugins" / "modules"
# The Ansible CLI next to the interpreter running pytest (the repo's .venv), else on PATH; with
# ANSIBLE_VENV=<venv> (see conftest.py), that venv's.
_VENV_BIN = (Path(os.environ["ANSIBLE_VENV"]).resolve() / "bin" if os.environ.get("ANSIBLE_VENV")
             else Path(sys.executable).parent)
ANSIBLE_DOC = str(_VENV_BIN / "ansible-doc") if (_VENV_BIN / "ansible-doc").exists() else "ansible-doc"

_NO_MODULES = "<no modules found>"


def _find_modules() -> list[str]:
    """Module binaries in the installed collection: regular files without an extension."""
    if not MODULE_DIR.is_dir():
        return []
    return sorted(
        p.name for p in MODULE_DIR.iterdir() if p.is_file() and not p.suffix and not p.name.startswith(("_", "."))
    )


MODULES = _find_modules()
# An empty parametrization would be reported as "skipped"; a sentinel makes it fail instead.
MODULE_PARAMS = MODULES or [_NO_MODULES]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_PATH)
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL, timeout=120)


def _require_module(name: str) -> None:
    if name == _NO_MODULES:
        pytest.fail(f"no module binaries found in {MODULE_DIR}; run `make collection` first")


@cache
def argspec(name: str) -> dict:
    """`<binary> --ansible-argspec`, parsed."""
    proc = _run([str(MODULE_DIR / name), "--ansible-argspec"])
    assert proc.returncode == 0, f"{name} --ansible-argspec exited {proc.returncode}: {proc.stdout}{proc.stderr}"
    try:
        spec = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"{name} --ansible-argspec did not print JSON ({e}): {proc.stdout!r}")
    for key in ("name", "supports_check_mode", "argument_spec"):
        assert key in spec, f"{name} --ansible-argspec output lacks `{key}`: {spec}"
    return spec


@cache
def ansible_doc(name: str) -> dict:
    """`ansible-doc -j creativeflow.redis.<name>`, the entry for that module."""
    fqcn = f"{COLLECTION}.{name}"
    proc = _run([ANSIBLE_DOC, "-j", fqcn])
    assert proc.returncode == 0, f"ansible-doc -j {fqcn} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    data = json.loads(proc.stdout)
    assert fqcn in data, f"ansible-doc -j {fqcn} returned no entry for it: {sorted(data)}"
    entry = data[fqcn]
    assert entry.get("doc"), f"{fqcn} has no DOCUMENTATION:\n{proc.stderr}"
    return entry


def _same_value(a, b) -> bool:
    """Equality with numbers compared numerically (5 == 5.0) but bools kept apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return a == b


def _as_multiset(values) -> list[str] | None:
    """A list compared without regard to order (numbers normalised so 1 and 1.0 match)."""
    if values is None:
        return None

    def norm(v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return json.dumps(float(v))
        return json.dumps(v, sort_keys=True)

    return sorted(norm(v) for v in values)


def compare_options(spec: dict, doc: dict | None, path: str = "") -> list[str]:
    """Every disagreement between an argument spec and documented options, as messages.

    Compared: option names, type, required, default, choices, aliases, elements and sub-options.
    `no_log` is not: validate-modules rejects it inside DOCUMENTATION.
    """
    doc = doc or {}
    errors = []
    for missing in sorted(set(spec) - set(doc)):
        errors.append(f"option `{path}{missing}` is in the argument spec but not documented")
    for extra in sorted(set(doc) - set(spec)):
        errors.append(f"option `{path}{extra}` is documented but not in the argument spec")
    for name in sorted(set(spec) & set(doc)):
        s, d = spec[name], doc[name]
        where = f"option `{path}{name}`"
        # Ansible's default type, when none is given, is str.
        s_type, d_type = s.get("type", "str"), d.get("type", "str")
        if s_type != d_type:
            errors.append(f"{where}: type is {s_type!r} in the spec, {d_type!r} in the docs")
        if bool(s.get("required", False)) != bool(d.get("required", False)):
            errors.append(f"{where}: required is {s.get('required', False)} in the spec, {d.get('required', False)} in the docs")
        if not _same_value(s.get("default"), d.get("default")):
            errors.append(f"{where}: default is {s.get('default')!r} in the spec, {d.get('default')!r} in the docs")
        if _as_multiset(s.get("choices")) != _as_multiset(d.get("choices")):
            errors.append(f"{where}: choices are {s.get('choices')!r} in the spec, {d.get('choices')!r} in the docs")
        if sorted(s.get("aliases") or []) != sorted(d.get("aliases") or []):
            errors.append(f"{where}: aliases are {s.get('aliases')!r} in the spec, {d.get('aliases')!r} in the docs")
        if s.get("elements") != d.get("elements"):
            errors.append(f"{where}: elements is {s.get('elements')!r} in the spec, {d.get('elements')!r} in the docs")
        s_sub, d_sub = s.get("options"), d.get("suboptions")
        if s_sub is None and d_sub is not None:
            errors.append(f"{where}: documents suboptions but the spec has none")
        elif s_sub is not None and d_sub is None:
            errors.append(f"{where}: the spec has sub-options but the docs have no suboptions")
        elif s_sub is not None:
            errors.extend(compare_options(s_sub, d_sub, f"{path}{name}."))
    return errors


def test_modules_found():
    assert MODULES, f"no module binaries found in {MODULE_DIR}; run `make collection` first"


@pytest.mark.parametrize("name", MODULE_PARAMS)
def test_binary_is_executable(name):
    _require_module(name)
    assert os.access(MODULE_DIR / name, os.X_OK), f"{MODULE_DIR / name} is not executable"


@pytest.mark.parametrize("name", MODULE_PARAMS)
def test_argspec_matches_documentation(name):
    _require_module(name)
    spec = argspec(name)
    assert spec["name"] == name, f"binary {name} reports its name as {spec['name']!r}"
    doc = ansible_doc(name)["doc"]
    errors = compare_options(spec["argument_spec"], doc.get("options"))
    assert not errors, f"{COLLECTION}.{name}: documentation and argument spec disagree:\n  " + "\n  ".join(errors)


@pytest.mark.parametrize("name", MODULE_PARAMS)
def test_check_mode_attribute_matches(name):
    _require_module(name)
    supports = argspec(name)["supports_check_mode"]
    doc = ansible_doc(name)["doc"]
    support = ((doc.get("attributes") or {}).get("check_mode") or {}).get("support")
    expected = "full" if supports else "none"
    assert support == expected, (
        f"{COLLECTION}.{name}: supports_check_mode is {supports}, so attributes.check_mode.support "
        f"must be {expected!r}; the docs say {support!r}"
    )


def test_ansible_doc_lists_every_module():
    assert MODULES, f"no module binaries found in {MODULE_DIR}; run `make collection` first"
    proc = _run([ANSIBLE_DOC, "-l", COLLECTION])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"ansible-doc -l {COLLECTION} exited {proc.returncode}:\n{output}"
    assert "documentation formatting error" not in output, output
    listed = {}
    for line in proc.stdout.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0].startswith(f"{COLLECTION}."):
            listed[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    for name in MODULES:
        fqcn = f"{COLLECTION}.{name}"
        assert fqcn in listed, f"ansible-doc -l {COLLECTION} does not list {fqcn}:\n{output}"
        assert listed[fqcn] != "UNDOCUMENTED", f"ansible-doc -l lists {fqcn} as UNDOCUMENTED:\n{output}"


def _task_keywords() -> set[str]:
    from ansible.playbook.task import Task

    # `action`/`local_action` are left out on purpose: examples must name the module by FQCN.
    return set(Task.fattributes) - {"action", "local_action"}


def _flatten_tasks(tasks: list, where: str) -> list[tuple[str, dict]]:
    """(label, task) for every task, with block/rescue/always sections opened up."""
    out = []
    for i, task in enumerate(tasks):
        label = f"{where} task {i + 1}"
        if isinstance(task, dict):
            label += f" ({task.get('name', 'unnamed')})"
            if "block" in task:
                for section in ("block", "rescue", "always"):
                    inner = task.get(section) or []
                    assert isinstance(inner, list), f"{label}: `{section}` must be a list of tasks"
                    out.extend(_flatten_tasks(inner, f"{label} {section}"))
                continue
        out.append((label, task))
    return out


@pytest.mark.parametrize("name", MODULE_PARAMS)
def test_examples_use_fqcn_and_known_options(name):
    """EXAMPLES is a YAML list of tasks calling the module by FQCN with options it has."""
    _require_module(name)
    fqcn = f"{COLLECTION}.{name}"
    examples = ansible_doc(name).get("examples")
    assert examples and examples.strip(), f"{fqcn} has no EXAMPLES"
    try:
        tasks = yaml.safe_load(examples)
    except yaml.YAMLError as e:
        pytest.fail(f"{fqcn}: EXAMPLES is not valid YAML: {e}")
    assert isinstance(tasks, list) and tasks, f"{fqcn}: EXAMPLES must be a non-empty list of tasks"

    spec = argspec(name)["argument_spec"]
    known = set(spec)
    for opt in spec.values():
        known.update(opt.get("aliases") or [])
    keywords = _task_keywords()

    uses_module = False
    for label, task in _flatten_tasks(tasks, f"{fqcn}: EXAMPLES"):
        assert isinstance(task, dict), f"{label} is not a mapping: {task!r}"
        actions = [k for k in task if k not in keywords and not k.startswith("with_")]
        assert len(actions) == 1, f"{label}: expected exactly one module key, found {actions}"
        action = actions[0]
        # Helper tasks that show a result (ansible.builtin.debug, .assert, ...) are fine; any
        # other module, and this one by its short name, is not.
        if action.startswith("ansible.builtin."):
            continue
        assert action == fqcn, f"{label} uses `{action}`; example tasks must call `{fqcn}` (or ansible.builtin.*)"
        uses_module = True
        args = task[action]
        assert args is None or isinstance(args, dict), f"{label}: module arguments must be a mapping, not {args!r}"
        args = {**(task.get("args") or {}), **(args or {})}
        unknown = sorted(set(args) - known)
        assert not unknown, f"{label} uses options the module does not have: {unknown}"
    assert uses_module, f"{fqcn}: no EXAMPLES task calls `{fqcn}`"


def test_readme_role_example_is_the_systemd_scenarios_playbook():
    """molecule/systemd/readme_example.yml is the README's redis_server example, copied unchanged:
    the scenario runs exactly what a reader copies."""
    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text()
    section = readme.split("\n## Role: redis_server\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("\n```\n", 1)[0] + "\n"
    assert (repo / "molecule" / "systemd" / "readme_example.yml").read_text() == block
