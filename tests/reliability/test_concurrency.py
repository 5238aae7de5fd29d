"""Concurrent runs.

redis_config: N runs at once on the same path, each with other settings. Every run succeeds, the
final file is exactly one of the N outputs (never a mix, never partial), with the mode asked
for, and no temporary file is left next to it.

redis_service: N runs of state=started at once on one instance. Every run succeeds, exactly one
server process listens on the port afterwards, and every run reports that process's pid.
"""
import json
import os
import stat
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.family("concurrency")

N_CONFIG, ROUNDS_CONFIG = 8, 10
N_SERVICE, ROUNDS_SERVICE = 4, 5


def spawn(name, args, workdir, tag):
    """Starts the module without waiting (args file per run, so the runs share nothing else)."""
    full = dict(args)
    full.update(harness.internal_keys(name, tmpdir=workdir))
    argsfile = workdir.parent / f"{workdir.name}-{tag}.args.json"
    argsfile.write_text(json.dumps(full))
    p = subprocess.Popen([harness.modules()[name]["binary"], str(argsfile)], cwd=workdir,
                         env=harness.run_env(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    return p, argsfile


def finish(p, argsfile, timeout=60):
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=timeout)
        r = harness.Run(p.returncode, out, err, time.monotonic() - t0)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        r = harness.Run(p.returncode, out, err, time.monotonic() - t0, timed_out=True)
    argsfile.unlink(missing_ok=True)
    return r


def settings(i, rnd):
    # Different sizes, so that a torn write would show as a mix of two outputs.
    return {"port": 7100 + i, "maxmemory": f"{i + 1}mb",
            "user": [f"u{j} on >Conc-Pw-{j} ~k{j}:* +@read" for j in range(i * 20 + 1)],
            "notify-keyspace-events": "Ex" if rnd % 2 else ""}


@pytest.mark.parametrize("rnd", range(ROUNDS_CONFIG))
def test_redis_config_same_path(rnd, mods, workdir):
    expected = {}
    ref = workdir / "ref"
    ref.mkdir()
    for i in range(N_CONFIG):
        r = harness.run_module("redis_config", {"path": str(ref / f"{i}.conf"), "settings": settings(i, rnd),
                                                "mode": "0640"}, ref)
        assert not r.failed and not r.contract_problems(), r.result
        expected[(ref / f"{i}.conf").read_bytes()] = i
    target_dir = workdir / "t"
    target_dir.mkdir()
    target = target_dir / "redis.conf"
    if rnd % 2:
        target.write_text("port 7099\n# an older file, replaced by all of them at once\n")
        os.chmod(target, 0o640)
    procs = [spawn("redis_config", {"path": str(target), "settings": settings(i, rnd), "mode": "0640"},
                   target_dir, i) for i in range(N_CONFIG)]
    runs = [finish(p, a) for p, a in procs]
    problems = []
    for i, r in enumerate(runs):
        p = r.contract_problems()
        if p or r.failed:
            problems.append(f"run {i}: {'; '.join(p) or harness.short(r.result, 500)}")
    data = target.read_bytes()
    if data not in expected:
        problems.append(f"the final file is none of the {N_CONFIG} outputs ({len(data)} bytes):\n{data[:300]!r}")
    mode = stat.S_IMODE(os.stat(target).st_mode)
    if mode != 0o640:
        problems.append(f"final mode {oct(mode)}, asked 0640")
    stray = sorted(p.name for p in target_dir.iterdir() if p.name != "redis.conf")
    if stray:
        problems.append(f"left next to the file: {stray}")
    if problems:
        pytest.fail(f"round {rnd}:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.mark.parametrize("rnd", range(ROUNDS_SERVICE))
def test_redis_service_concurrent_starts(rnd, mods, workdir):
    port = harness.free_port()
    conf = workdir / "svc.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir}/svc.log\n"
                    f"pidfile {workdir}/svc.pid\nsave \"\"\nappendonly no\nrequirepass Conc-Svc-Pw-3\n")
    args = {"name": f"conc{rnd}", "config": str(conf), "manager": "direct", "state": "started", "wait_timeout": 20,
            "login_password": "Conc-Svc-Pw-3"}
    if rnd % 2:
        args["pidfile"] = str(workdir / "svc.pid")
    procs = [spawn("redis_service", args, workdir, i) for i in range(N_SERVICE)]
    try:
        runs = [finish(p, a) for p, a in procs]
        time.sleep(0.3)  # a second server losing a bind race would exit now
        problems = []
        for i, r in enumerate(runs):
            p = r.contract_problems()
            if p or r.failed:
                problems.append(f"run {i}: {'; '.join(p) or harness.short(r.result, 600)}")
        listening = harness.listening_pids(port)
        # Redis renames its process to `redis-server 127.0.0.1:<port>`.
        servers = set(harness.redis_pids_for(f"127.0.0.1:{port}")) | listening
        if len(listening) != 1 or len(servers) != 1:
            problems.append(f"{len(listening)} process(es) listen on {port} ({sorted(listening)}), redis processes "
                            f"for the config: {sorted(servers)}")
        pids = {r.result.get("pid") for r in runs if r.result and not r.failed}
        if listening and pids != listening:
            problems.append(f"the runs report pids {sorted(map(str, pids))}, the server is {sorted(listening)}")
        changed = [bool(r.result and r.result.get("changed")) for r in runs]
        if changed.count(True) != 1:
            problems.append(f"{changed.count(True)} runs report changed (one started it): {changed}")
        if problems:
            pytest.fail(f"round {rnd}:\n  " + "\n  ".join(problems), pytrace=False)
    finally:
        for pid in harness.listening_pids(port) | set(harness.redis_pids_for(f"127.0.0.1:{port}")):
            harness.kill_redis_pid(pid)
        pf = workdir / "svc.pid"
        if pf.exists():
            try:
                harness.kill_redis_pid(int(pf.read_text().strip()))
            except ValueError:
                pass
