"""Fixtures of the reliability suite and its case counter.

Every test belongs to a family (`pytestmark = pytest.mark.family(...)`). A test is one case,
unless it runs many (a property test, a batch checked from one ansible-playbook run): then it
records them with the `cases` fixture. At the end the suite prints one line per family and a
total line, counting cases rather than pytest items.
"""
import collections
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

# hypothesis keeps caches in ./.hypothesis by default: not in the work tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "rel-hypothesis"))

FAMILIES = ["bad-input", "injection", "secret-audit", "idempotence", "concurrency", "sigkill",
            "coercion-property", "config-writer-property", "coverage"]
_COUNTS = collections.defaultdict(lambda: [0, 0, 0])  # passed, failed, skipped


def pytest_configure(config):
    config.addinivalue_line("markers", "family(name): the reliability family a test counts in")


class Cases:
    """Sub-cases of one test: `ok(label)` / `bad(label, why)`, then `assert_all()`."""

    def __init__(self):
        self.passed, self.failures = 0, []

    def ok(self, label=None):
        self.passed += 1

    def bad(self, label, why):
        self.failures.append(f"{label}: {why}")

    def check(self, cond, label, why):
        if cond:
            self.ok(label)
        else:
            self.bad(label, why)
        return cond

    def assert_all(self):
        if self.failures:
            shown = "\n  ".join(self.failures[:60])
            more = f"\n  ... and {len(self.failures) - 60} more" if len(self.failures) > 60 else ""
            pytest.fail(f"{len(self.failures)} of {self.passed + len(self.failures)} cases failed:\n  {shown}{more}",
                        pytrace=False)


@pytest.fixture
def cases(request):
    c = Cases()
    yield c
    request.node.user_properties.append(("rel_cases", (c.passed, len(c.failures))))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    m = item.get_closest_marker("family")
    rep.rel_family = m.args[0] if m else None


def pytest_runtest_logreport(report):
    fam = getattr(report, "rel_family", None)
    if fam is None:
        return
    sub = dict(report.user_properties).get("rel_cases")
    if report.when == "setup" and (report.failed or report.skipped):
        _COUNTS[fam][1 if report.failed else 2] += 1
    elif report.when == "call":
        if sub and sum(sub):
            passed, failed = sub
            if report.failed and failed == 0:
                failed = 1  # the test failed outside its sub-cases
            _COUNTS[fam][0] += passed
            _COUNTS[fam][1] += failed
        else:
            _COUNTS[fam][0 if report.passed else (1 if report.failed else 2)] += 1


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    tr = terminalreporter
    tr.section("reliability")
    mods = sorted(harness.modules())
    tr.write_line(f"reliability: modules covered: {', '.join(mods) or 'NONE (collection not built?)'}")
    tr.write_line(f"reliability: network: {harness.ISOLATED['why']}")
    parts, tp, tf, ts = [], 0, 0, 0
    for fam in FAMILIES + sorted(set(_COUNTS) - set(FAMILIES)):
        if fam not in _COUNTS:
            continue
        p, f, s = _COUNTS[fam]
        tp, tf, ts = tp + p, tf + f, ts + s
        skipped = f", {s} skipped" if s else ""
        tr.write_line(f"reliability: {fam}: {p + f} cases ({p} passed, {f} failed{skipped})")
        parts.append(f"{fam} {p + f}" + (" cases" if not parts else ""))
    for note in harness.NOTES:
        tr.write_line(f"reliability: {note}")
    skipped = f", {ts} skipped" if ts else ""
    tr.write_line(f"reliability: {', '.join(parts)} — {tp} passed, {tf} failed{skipped} (total {tp + tf} cases)")


# ---------------------------------------------------------------------------------------------
# Servers and modules
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="package", autouse=True)
def private_network():
    """The package's tests, and every server and module they start, in a private network
    namespace (see harness.isolate_network); the rest of a wider pytest run stays outside."""
    entered = harness.isolate_network()
    yield
    if entered:
        harness.leave_network()


@pytest.fixture(scope="session")
def mods():
    found = harness.modules()
    if not found:
        pytest.fail(f"no binary modules in {harness.MODULES_DIR}: run `make collection` first", pytrace=False)
    return found


@pytest.fixture(scope="package")
def shared_server(private_network):
    """One password-protected redis-server that every bad-input and injection case may touch and
    none may change."""
    s = harness.Server(password="Rel-Shared-Pw-7e1")
    yield s
    s.stop()


@pytest.fixture(scope="package")
def shared_sentinel(private_network, shared_server):
    """A password-protected redis-sentinel, for modules whose default port is Sentinel's. It
    monitors the shared server as `relm`."""
    s = harness.Server(password="Rel-Sentinel-Pw-2c9", binary="redis-sentinel",
                       extra=[f"sentinel monitor relm 127.0.0.1 {shared_server.port} 1",
                              f"sentinel auth-pass relm {shared_server.password}"])
    s.monitored = shared_server
    yield s
    s.stop()


@pytest.fixture(scope="session")
def _work_root(tmp_path_factory):
    return tmp_path_factory.mktemp("rel")


@pytest.fixture
def workdir(_work_root):
    """A fresh directory per case (cheaper than tmp_path, which thousands of cases feel)."""
    d = pathlib.Path(tempfile.mkdtemp(dir=_work_root, prefix="c"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)
