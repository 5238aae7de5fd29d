"""Runs one generated case and says what went wrong (an empty list: the case passed)."""
import os
import pathlib
import stat

import harness
from harness import free_port, kill_redis_pid, listening_pids, short


def make_special(path, kind):
    """A FIFO, a character device (the null device's numbers, made here, never /dev itself) or a
    directory at path."""
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "chardev":
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "dir":
        os.mkdir(path, 0o755)
    else:
        raise ValueError(kind)


def tokens(workdir, server, fresh_port):
    t = {"@@TMP@@": str(workdir), "@@FRESHPORT@@": fresh_port}
    if server is not None and server.binary == "redis-sentinel":
        t.update({"@@SPORT@@": server.port, "@@SPW@@": server.password})
        mon = getattr(server, "monitored", None)
        if mon is not None:
            t.update({"@@PORT@@": mon.port, "@@PW@@": mon.password})
    elif server is not None:
        t.update({"@@PORT@@": server.port, "@@PW@@": server.password, "@@SVCCONF@@": str(server.conf),
                  "@@SERVERDIR@@": str(server.dir)})
    return t


def prepare(case, workdir, server):
    """Writes the base's files and the case's special file; returns the token map."""
    fresh_port = free_port() if case.base.fresh else 0
    tok = tokens(workdir, server, fresh_port)
    for name, text in case.base.files.items():
        p = workdir / name
        p.write_text(harness.tokens_replaced(text, tok))
        os.chmod(p, 0o640)
    if case.setup:
        make_special(workdir / f"special-{case.setup}", case.setup)
    return tok


def cleanup_fresh(workdir, tok):
    """Stops what a wrongly accepted state=started case started (by pidfile and by port)."""
    port = tok.get("@@FRESHPORT@@")
    pids = set()
    pf = pathlib.Path(workdir) / "fresh.pid"
    if pf.is_file():
        try:
            pids.add(int(pf.read_text().strip()))
        except ValueError:
            pass
    if port:
        pids |= listening_pids(port)
    pids |= set(harness.redis_pids_for(str(workdir)))
    for pid in pids:
        kill_redis_pid(pid)
    return sorted(pids)


def execute(case, workdir, server):
    """Runs the case; returns (problems, run)."""
    workdir = pathlib.Path(workdir)
    tok = prepare(case, workdir, server)
    if server is not None and not harness._alive(server.pid):
        server.restart()
    before_dir = harness.snapshot_dir(workdir)
    before_srv = server.state() if server is not None else None
    if case.raw_text is not None or case.argv is not None:
        if case.argv is not None:
            argv = [harness.tokens_replaced(a, tok) for a in case.argv]
            run = harness.run_raw(harness.modules()[case.module]["binary"], argv, workdir,
                                  harness.run_env(workdir), timeout=case.timeout)
        else:
            run = harness.run_module(case.module, None, workdir, raw_text=case.raw_text, timeout=case.timeout)
    else:
        args = harness.tokens_replaced(case.args, tok)
        run = harness.run_module(case.module, args, workdir, timeout=case.timeout)
    problems = run.contract_problems()
    res = run.result or {}
    if case.expect == "fail" and run.result is not None and not run.failed:
        problems.append(f"accepted bad input ({'; '.join(case.reasons)}): {short(res, 400)}")
    if case.expect == "alias" and run.result is not None and not run.failed:
        name, alias = case.alias
        spec = harness.modules()[case.module]["spec"]["argument_spec"]
        want = harness.oracle(spec, args, env=harness.run_env(workdir))[1].get(name)
        got = (res.get("invocation") or {}).get("module_args", {}).get(name)
        if got != want:
            problems.append(f"{name} and its alias {alias} both given: took {name}={got!r}, ansible-core takes "
                            f"{want!r}; either fail or behave as ansible-core")
        if not res.get("warnings"):
            problems.append(f"{name} and its alias {alias} both given without a warning")
    after_srv = server.state() if server is not None else None
    why = f" (its msg: {short(res.get('msg'), 300)})" if run.failed else ""
    # Nothing may change on a failure (nor on any armed base, which only gets failing input).
    if run.failed or case.expect == "fail" or run.result is None:
        changed = harness.diff_snapshots(before_dir, harness.snapshot_dir(workdir))
        if changed:
            problems.append(f"files changed although the run failed{why}: {', '.join(changed)}")
        if server is not None and after_srv != before_srv:
            problems.append(f"server changed although the run failed{why}: {_state_diff(before_srv, after_srv)}")
        if case.base.fresh:
            started = cleanup_fresh(workdir, tok)
            if started:
                problems.append(f"a server was started although the run failed{why} (pids {started}, killed)")
    elif case.base.fresh:
        cleanup_fresh(workdir, tok)
    if server is not None and after_srv != before_srv:
        # Back to a clean server for the next case (a robust case that succeeded may
        # legitimately have changed it).
        server.restart()
    return problems, run


def _state_diff(a, b):
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                sub = [f"{k}.{x}: {a[k].get(x)!r} -> {b[k].get(x)!r}" for x in sorted(set(a[k]) | set(b[k]))
                       if a[k].get(x) != b[k].get(x)]
                out += sub
            else:
                out.append(f"{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return "; ".join(out)[:600]
