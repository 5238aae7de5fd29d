"""Module overhead benchmark: creativeflow.redis.redis_health (Rust binary module) against
community.general.redis_info (Python module), on one real redis-server.

Started by run.sh, which prepares the bench venv, the installed collection, a work directory and
the redis-server, and passes them in through the environment (see `Config.from_env`). This script
checks that every command works, times them, and prints the tables. Report-only: it exits 0
whatever the timings are, and non-zero only when something could not run at all.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OURS = "creativeflow.redis.redis_health"
THEIRS = "community.general.redis_info"

# The targets.
TARGET_ALONE_MS = 5.0
TARGET_PER_TASK_MS = 60.0
TARGET_ADHOC_RATIO = 0.6
TARGET_BINARY_BYTES = 3 * 1024 * 1024  # same limit as MAX_MODULE_BYTES in the Makefile


class BenchError(Exception):
    """Something could not run at all (as opposed to a slow result)."""


@dataclass
class Config:
    repo: Path
    work: Path
    venv: Path
    modules_dir: Path
    port: int
    password: str
    n_adhoc: int
    n_alone: int
    n_playbook: int
    n_cli: int
    playbook_tasks: int

    @classmethod
    def from_env(cls) -> "Config":
        env = os.environ

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise BenchError(f"{name} is not set (start the benchmark with run.sh)")
            return value

        return cls(
            repo=Path(need("BENCH_REPO")),
            work=Path(need("BENCH_WORK")),
            venv=Path(need("BENCH_VENV")),
            modules_dir=Path(need("BENCH_MODULES_DIR")),
            port=int(need("BENCH_REDIS_PORT")),
            password=need("BENCH_REDIS_PASSWORD"),
            n_adhoc=int(env.get("BENCH_N_ADHOC", "7")),
            n_alone=int(env.get("BENCH_N_ALONE", "20")),
            n_playbook=int(env.get("BENCH_N_PLAYBOOK", "5")),
            n_cli=int(env.get("BENCH_N_CLI", "20")),
            playbook_tasks=int(env.get("BENCH_PLAYBOOK_TASKS", "20")),
        )

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def inventory(self) -> Path:
        return self.work / "inventory.ini"

    @property
    def ours_binary(self) -> Path:
        return self.modules_dir / "redis_health"


# ---------------------------------------------------------------------------------------------
# Running and timing commands
# ---------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, ok_rcs=(0,), env: dict | None = None, what: str = "") -> tuple[float, str]:
    """Runs cmd once; returns (seconds, stdout). Raises BenchError when the exit code is not in ok_rcs."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_rcs:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BenchError(f"{what or shlex.join(cmd)}: exit code {proc.returncode}\n{tail}")
    return elapsed, proc.stdout


def time_pair(n: int, ours, theirs) -> tuple[list[float], list[float]]:
    """Times two callables n times each, alternating, so that drift hits both the same way."""
    t_ours, t_theirs = [], []
    for _ in range(n):
        t_ours.append(ours())
        t_theirs.append(theirs())
    return t_ours, t_theirs


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def parse_json_object(text: str, what: str) -> dict:
    """The JSON object a module or CLI printed (Ansible also drops junk before the first '{')."""
    start = text.find("{")
    if start < 0:
        raise BenchError(f"{what}: no JSON object in the output:\n{text[:500]}")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError as exc:
        raise BenchError(f"{what}: output is not JSON ({exc}):\n{text[:500]}") from exc
    if not isinstance(obj, dict):
        raise BenchError(f"{what}: output is not a JSON object:\n{text[:500]}")
    return obj


# ---------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.bin = cfg.venv / "bin"
        self.args_file: Path | None = None
        self.ansiballz: Path | None = None
        self.redispy_script = cfg.work / "redispy_health.py"

    # -- 1. ad hoc ------------------------------------------------------------------------------
    def adhoc_cmd(self, module: str) -> list[str]:
        return [
            str(self.bin / "ansible"),
            "localhost",
            "-i",
            str(self.cfg.inventory),
            "-m",
            module,
            "-a",
            f"login_port={self.cfg.port} login_password={self.cfg.password}",
        ]

    def adhoc(self, module: str, env: dict | None = None) -> tuple[float, str]:
        elapsed, out = run(self.adhoc_cmd(module), env=env, what=f"ansible localhost -m {module}")
        if "SUCCESS" not in out.split("\n", 1)[0]:
            raise BenchError(f"ansible localhost -m {module} did not succeed:\n{out[:800]}")
        return elapsed, out

    # -- 2. module alone ------------------------------------------------------------------------
    def capture_module_files(self) -> None:
        """One ad hoc run per module with ANSIBLE_KEEP_REMOTE_FILES=1: keeps the args file Ansible
        wrote for the binary and the AnsiballZ payload of redis_info (its args are inside it)."""
        for module, short in ((OURS, "redis_health"), (THEIRS, "redis_info")):
            keep = self.cfg.work / f"remote_tmp_keep_{short}"
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
            self.adhoc(
                module,
                env={
                    "ANSIBLE_KEEP_REMOTE_FILES": "1",
                    "ANSIBLE_REMOTE_TMP": str(keep),
                    "ANSIBLE_PIPELINING": "0",
                },
            )
            if short == "redis_health":
                found = sorted(glob.glob(str(keep / "ansible-tmp-*" / "args")))
                if not found:
                    raise BenchError(f"no kept args file under {keep}")
                self.args_file = self.cfg.work / "redis_health_args.json"
                shutil.copyfile(found[-1], self.args_file)
            else:
                found = sorted(glob.glob(str(keep / "ansible-tmp-*" / "AnsiballZ_redis_info.py")))
                if not found:
                    raise BenchError(f"no kept AnsiballZ_redis_info.py under {keep}")
                self.ansiballz = self.cfg.work / "AnsiballZ_redis_info.py"
                shutil.copyfile(found[-1], self.ansiballz)

    def alone_ours_cmd(self) -> list[str]:
        return [str(self.cfg.ours_binary), str(self.args_file)]

    def alone_theirs_cmd(self) -> list[str]:
        return [str(self.cfg.python), str(self.ansiballz)]

    # -- 3. playbook ----------------------------------------------------------------------------
    def write_playbook(self, module: str, tasks: int) -> Path:
        short = module.rsplit(".", 1)[-1]
        path = self.cfg.work / f"playbook_{short}_{tasks}.yml"
        lines = [
            "---",
            f"- name: {tasks} x {module}",
            "  hosts: localhost",
            "  connection: local",
            "  gather_facts: false",
            "  tasks:",
        ]
        for i in range(1, tasks + 1):
            lines += [
                f"    - name: {short} {i}",
                f"      {module}:",
                f"        login_port: {self.cfg.port}",
                f"        login_password: {json.dumps(self.cfg.password)}",
            ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def playbook(self, path: Path, tasks: int) -> float:
        elapsed, out = run(
            [str(self.bin / "ansible-playbook"), "-i", str(self.cfg.inventory), str(path)],
            what=f"ansible-playbook {path.name}",
        )
        if f"ok={tasks} " not in out or "failed=0" not in out:
            raise BenchError(f"ansible-playbook {path.name}: unexpected recap:\n{out[-600:]}")
        return elapsed

    # -- 4. standalone CLI ----------------------------------------------------------------------
    def cli_ours_cmd(self) -> list[str]:
        return [str(self.cfg.ours_binary), "--port", str(self.cfg.port), "--format", "json"]

    def write_redispy_script(self) -> None:
        self.redispy_script.write_text(
            "import json, os, sys\n"
            "import redis\n"
            "r = redis.Redis(host='localhost', port=int(sys.argv[1]), password=os.environ['REDISCLI_AUTH'],\n"
            "                socket_connect_timeout=5, socket_timeout=5)\n"
            "pong = r.ping()\n"
            "info = r.info()\n"
            "print(json.dumps({'ping': pong, 'info': info}, default=str))\n",
            encoding="utf-8",
        )

    def cli_theirs_cmd(self) -> list[str]:
        return [str(self.cfg.python), str(self.redispy_script), str(self.cfg.port)]


# ---------------------------------------------------------------------------------------------
# Checks before timing (each one is also the warm-up run)
# ---------------------------------------------------------------------------------------------
def preflight(b: Bench) -> None:
    cfg = b.cfg
    for module in (OURS, THEIRS):
        _, out = run([str(b.bin / "ansible-doc"), module], what=f"ansible-doc {module}")
        if not out.startswith(f"> MODULE {module}"):
            raise BenchError(f"ansible-doc {module}: unexpected output:\n{out[:300]}")
    log("ansible-doc finds both modules")

    # 1. ad hoc
    _, out = b.adhoc(OURS)
    ours = parse_json_object(out, f"ad hoc {OURS}")
    if ours.get("status") == "critical" or "checks" not in ours:
        raise BenchError(f"ad hoc {OURS} did not reach the server:\n{out[:800]}")
    _, out = b.adhoc(THEIRS)
    theirs = parse_json_object(out, f"ad hoc {THEIRS}")
    if "redis_version" not in theirs.get("info", {}):
        raise BenchError(f"ad hoc {THEIRS} returned no server info:\n{out[:800]}")
    log(f"ad hoc: both modules succeed (redis_health status {ours.get('status')})")

    # 2. module alone
    b.capture_module_files()
    _, out = run(b.alone_ours_cmd(), what="redis_health ARGS")
    res = parse_json_object(out, "redis_health ARGS")
    if res.get("failed") or "checks" not in res:
        raise BenchError(f"redis_health ARGS did not reach the server:\n{out[:800]}")
    _, out = run(b.alone_theirs_cmd(), what="python AnsiballZ_redis_info.py")
    res = parse_json_object(out, "python AnsiballZ_redis_info.py")
    info = res.get("info", {})
    if res.get("failed") or info.get("tcp_port") != cfg.port or "redis_version" not in info:
        raise BenchError(f"AnsiballZ_redis_info.py did not print this server's info:\n{out[:800]}")
    log(
        f"module alone: binary + kept args file, and AnsiballZ payload (info of redis {info['redis_version']}"
        f" on port {info['tcp_port']}) both work"
    )

    # 4. standalone CLI (exit code 1/2 = warning/critical still printed a verdict)
    auth = {"REDISCLI_AUTH": cfg.password}
    _, out = run(b.cli_ours_cmd(), ok_rcs=(0, 1, 2), env=auth, what="redis_health --format json")
    res = parse_json_object(out, "redis_health --format json")
    if res.get("status") not in ("ok", "warning"):
        raise BenchError(f"redis_health --format json: {out[:800]}")
    b.write_redispy_script()
    _, out = run(b.cli_theirs_cmd(), env=auth, what="redis-py script")
    res = parse_json_object(out, "redis-py script")
    if res.get("info", {}).get("tcp_port") != cfg.port:
        raise BenchError(f"redis-py script: unexpected output {out[:500]}")
    log("standalone CLI: redis_health --format json and the redis-py script both work")


# ---------------------------------------------------------------------------------------------
# Binary sizes
# ---------------------------------------------------------------------------------------------
def elf_is_static(path: Path) -> bool:
    """True when the ELF file has no PT_INTERP program header (static or static-pie)."""
    with path.open("rb") as fh:
        hdr = fh.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:  # ELFCLASS64 only (x86_64 here)
            return False
        endian = "<" if hdr[5] == 1 else ">"
        (e_phoff,) = struct.unpack_from(endian + "Q", hdr, 32)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", hdr, 54)
        fh.seek(e_phoff)
        table = fh.read(e_phentsize * e_phnum)
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from(endian + "I", table, i * e_phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def module_binaries(modules_dir: Path) -> list[tuple[str, str, int, bool]]:
    """(module, file Ansible ships, bytes, static) for every ELF module. A module may be a symlink
    (plugins/modules/NAME -> ../../libexec/NAME): Ansible follows it and ships the target file."""
    root = modules_dir.parent.parent
    found = []
    for path in sorted(modules_dir.iterdir()):
        real = path.resolve()
        if not real.is_file():
            continue
        with real.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        try:
            shown = str(real.relative_to(root))
        except ValueError:
            shown = str(real)
        found.append((path.name, shown, real.stat().st_size, elf_is_static(real)))
    return found


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def fmt_ms(ms: float) -> str:
    return f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(row):
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  " + "  ".join(cells).rstrip()

    sep = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def versions(cfg: Config) -> str:
    def pkg(name: str) -> str:
        _, out = run([str(cfg.python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"])
        return out.strip()

    manifest = glob.glob(
        str(
            cfg.venv
            / "lib"
            / "python*"
            / "site-packages"
            / "ansible_collections"
            / "community"
            / "general"
            / "MANIFEST.json"
        )
    )
    cg = json.loads(Path(manifest[0]).read_text())["collection_info"]["version"] if manifest else "?"
    _, rs = run(["redis-server", "--version"])
    rs_ver = next((w[2:] for w in rs.split() if w.startswith("v=")), rs.strip())
    _, pyv = run([str(cfg.python), "-c", "import platform; print(platform.python_version())"])
    return (
        f"ansible-core {pkg('ansible-core')} (ansible {pkg('ansible')}), community.general {cg}, "
        f"redis-py {pkg('redis')}, Python {pyv.strip()}, redis-server {rs_ver}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    )


def main() -> int:
    cfg = Config.from_env()
    b = Bench(cfg)
    wall_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    log("preflight: checking every command once (also the warm-up)")
    preflight(b)
    binaries = module_binaries(cfg.modules_dir)
    if not binaries:
        raise BenchError(f"no module binaries in {cfg.modules_dir}")
    auth = {"REDISCLI_AUTH": cfg.password}

    log(f"1/4 ad hoc, {cfg.n_adhoc} runs each")
    adhoc_o, adhoc_t = time_pair(cfg.n_adhoc, lambda: b.adhoc(OURS)[0], lambda: b.adhoc(THEIRS)[0])

    log(f"2/4 module alone, {cfg.n_alone} runs each")
    alone_o, alone_t = time_pair(
        cfg.n_alone, lambda: run(b.alone_ours_cmd())[0], lambda: run(b.alone_theirs_cmd())[0]
    )

    k = cfg.playbook_tasks
    log(f"3/4 playbooks of 1 and {k} tasks, {cfg.n_playbook} runs each")
    pb = {(m, n): b.write_playbook(m, n) for m in (OURS, THEIRS) for n in (1, k)}
    b.playbook(pb[(OURS, 1)], 1)  # warm-up
    b.playbook(pb[(THEIRS, 1)], 1)
    pb_times: dict[tuple[str, int], list[float]] = {key: [] for key in pb}
    for _ in range(cfg.n_playbook):
        for (m, n), path in pb.items():
            pb_times[(m, n)].append(b.playbook(path, n))

    log(f"4/4 standalone CLI, {cfg.n_cli} runs each")
    cli_o, cli_t = time_pair(
        cfg.n_cli,
        lambda: run(b.cli_ours_cmd(), ok_rcs=(0, 1, 2), env=auth)[0],
        lambda: run(b.cli_theirs_cmd(), env=auth)[0],
    )

    # -- numbers --
    m_adhoc = (median_ms(adhoc_o), median_ms(adhoc_t))
    m_alone = (median_ms(alone_o), median_ms(alone_t))
    m_pb1 = (median_ms(pb_times[(OURS, 1)]), median_ms(pb_times[(THEIRS, 1)]))
    m_pbk = (median_ms(pb_times[(OURS, k)]), median_ms(pb_times[(THEIRS, k)]))
    m_task = ((m_pbk[0] - m_pb1[0]) / (k - 1), (m_pbk[1] - m_pb1[1]) / (k - 1))
    m_cli = (median_ms(cli_o), median_ms(cli_t))

    def ratio(pair):
        if pair[1] <= 0:
            return "n/a"
        r = pair[0] / pair[1]
        return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"

    print()
    print("creativeflow.redis module overhead benchmark")
    print(f"  {versions(cfg)}")
    print(
        f"  one dedicated redis-server on 127.0.0.1:{cfg.port} (requirepass), local connection;"
        f" medians of N runs"
    )
    print(
        f"  1-min load average: {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end"
        f" (other work on the {os.cpu_count()} CPUs inflates the timings, most of all the per-task cost)"
    )
    print(f"  ours = {OURS} (Rust binary), theirs = {THEIRS} (Python)" f" / a redis-py script (row 4)")
    print()
    rows = [
        [
            "1. ad hoc: ansible localhost -m MODULE -a ...",
            cfg.n_adhoc,
            fmt_ms(m_adhoc[0]),
            fmt_ms(m_adhoc[1]),
            ratio(m_adhoc),
        ],
        [
            "2. module alone: redis_health ARGS / python AnsiballZ_redis_info.py",
            cfg.n_alone,
            fmt_ms(m_alone[0]),
            fmt_ms(m_alone[1]),
            ratio(m_alone),
        ],
        ["3. ansible-playbook, 1 task", cfg.n_playbook, fmt_ms(m_pb1[0]), fmt_ms(m_pb1[1]), ratio(m_pb1)],
        [f"   ansible-playbook, {k} tasks", cfg.n_playbook, fmt_ms(m_pbk[0]), fmt_ms(m_pbk[1]), ratio(m_pbk)],
        [f"   per task = (t{k} - t1) / {k - 1}", "", fmt_ms(m_task[0]), fmt_ms(m_task[1]), ratio(m_task)],
        [
            "4. standalone CLI: redis_health --format json / redis-py script",
            cfg.n_cli,
            fmt_ms(m_cli[0]),
            fmt_ms(m_cli[1]),
            ratio(m_cli),
        ],
    ]
    print(table(["measurement", "N", "ours", "theirs", "ours/theirs"], rows, right={1, 2, 3, 4}))
    print()
    print(f"  module binaries of the installed collection ({cfg.modules_dir.parent.parent}):")
    size_rows = [
        [name, shown, f"{size:,}", f"{size / 1024 / 1024:.2f} MiB", "static" if static else "DYNAMIC"]
        for name, shown, size, static in binaries
    ]
    print(table(["module", "file shipped per task", "bytes", "size", "linking"], size_rows, right={2, 3}))

    print()
    print("summary: the issue's targets")
    summary = [
        [
            "redis_health alone (binary + args file)",
            f"<= {TARGET_ALONE_MS:g} ms",
            fmt_ms(m_alone[0]),
            verdict(m_alone[0] <= TARGET_ALONE_MS),
        ],
        [
            "cost per playbook task (redis_health)",
            f"<= {TARGET_PER_TASK_MS:g} ms",
            fmt_ms(m_task[0]),
            verdict(m_task[0] <= TARGET_PER_TASK_MS),
        ],
        [
            "ad hoc, redis_health / redis_info",
            f"<= {TARGET_ADHOC_RATIO:.2f}x",
            ratio(m_adhoc),
            verdict(m_adhoc[1] > 0 and m_adhoc[0] / m_adhoc[1] <= TARGET_ADHOC_RATIO),
        ],
    ]
    for name, _, size, static in binaries:
        summary.append(
            [
                f"static binary size: {name}",
                f"<= {TARGET_BINARY_BYTES:,} B (3 MiB)",
                f"{size:,} B{'' if static else ' (not static)'}",
                verdict(static and size <= TARGET_BINARY_BYTES),
            ]
        )
    print(table(["target", "goal", "measured", "result"], summary, right=set()))
    print()
    print(
        f"  (report only: a MISS does not fail the run; benchmark took {time.perf_counter() - wall_start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(1)
