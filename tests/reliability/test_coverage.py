"""The suite covers every module that exists: each crate under modules/ is installed as a binary
module, answers --ansible-argspec, and appears in every family that is generated per module."""
import pytest

import cases as casegen
import harness
import test_idempotence
import test_properties
import test_secret_audit

pytestmark = pytest.mark.family("coverage")


def test_every_crate_is_an_installed_binary_module(mods):
    crates = set(harness.module_crates())
    found = set(mods)
    assert crates, "no module crates under modules/"
    assert crates <= found, f"crates without an installed binary module: {sorted(crates - found)}"
    assert found <= crates, f"installed binary modules without a crate (stale build?): {sorted(found - crates)}"


@pytest.mark.parametrize("module", harness.module_crates())
def test_module_is_in_every_family(module, mods):
    if module not in mods:
        pytest.fail(f"{module} is not installed in {harness.MODULES_DIR}", pytrace=False)
    spec = mods[module]["spec"]
    assert spec.get("argument_spec"), f"{module} --ansible-argspec has no argument_spec"
    missing = []
    if not casegen.generate(module, spec):
        missing.append("bad-input")
    if not any(c[0] == module for c in test_secret_audit.DIRECT):
        missing.append("secret-audit (direct)")
    # A success path of its own: a base derived from the spec alone is a guess (test_direct
    # asserts that it succeeds, but nothing says it reaches what the module is for).
    if module not in test_secret_audit.AUDIT_BASES and not any(not b.armed for b in casegen.BASES.get(module, [])):
        missing.append("secret-audit success base (test_secret_audit.AUDIT_BASES or cases.BASES)")
    if not any(c[0] == module and c[3] == "success" for c in test_secret_audit.DIRECT):
        missing.append("secret-audit success path (direct)")
    for run, tasks in test_secret_audit.PLAN.items():
        if not any(m == module and not fails for _, m, fails in tasks):
            missing.append(f"secret-audit success task in the {run} playbook (test_secret_audit._tasks)")
    if not any(m == module for m, *_ in test_properties.TARGETS):
        missing.append("coercion-property")
    if not any(m == module for m, _ in test_idempotence.CASES):
        missing.append("idempotence")
    assert not missing, f"{module} is missing from: {', '.join(missing)}"
