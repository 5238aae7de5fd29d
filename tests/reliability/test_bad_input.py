"""Bad-input matrix: every module found in the collection, every option and type (cases.py).

Each case runs the binary directly with an args file and checks: exactly one JSON object on
stdout, no death by signal, an exit code that agrees with `failed`, `failed: true` with a msg for
bad input, and nothing changed on a failure (the case's files byte for byte with mode and owner,
and the shared server's process, config values and ACL users).
"""
import pytest

import cases as casegen
import harness
import runcase

pytestmark = pytest.mark.family("bad-input")


def _all_cases():
    out = []
    for name, info in harness.modules().items():
        out += casegen.generate(name, info["spec"])
    return out


def pytest_generate_tests(metafunc):
    if "bad_case" in metafunc.fixturenames:
        found = _all_cases()
        if not found:
            metafunc.parametrize("bad_case", [None], ids=["no-modules-found"])
        else:
            metafunc.parametrize("bad_case", found, ids=[c.id for c in found])


def test_bad_input(bad_case, mods, workdir, request):
    if bad_case is None:
        pytest.fail(f"no binary modules in {harness.MODULES_DIR}: run `make collection` first", pytrace=False)
    if bad_case.setup == "chardev" and not _can_mknod(workdir):
        pytest.skip("cannot create a character device here (needs CAP_MKNOD; CI runs as root)")
    if bad_case.net_risky and not harness.ISOLATED["netns"]:
        pytest.skip(f"may reach another host or port 6379; runs only in a private network namespace "
                    f"({harness.ISOLATED['why']})")
    server = None
    if bad_case.base.server:
        server = request.getfixturevalue("shared_sentinel" if bad_case.base.sentinel else "shared_server")
    problems, run = runcase.execute(bad_case, workdir, server)
    if problems:
        pytest.fail(f"{bad_case.id} [{bad_case.expect}]:\n  " + "\n  ".join(problems), pytrace=False)


_MKNOD = {}


def _can_mknod(workdir):
    import os
    import stat
    if "ok" not in _MKNOD:
        probe = workdir / ".probe-dev"
        try:
            os.mknod(probe, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            probe.unlink()
            _MKNOD["ok"] = True
        except OSError:
            _MKNOD["ok"] = False
    return _MKNOD["ok"]
