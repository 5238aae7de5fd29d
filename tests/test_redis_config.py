"""redis_config through Ansible, and the shared templates through both engines."""
import ast
import getpass
import grp
import json
import os
import subprocess

import yaml

from conftest import MODULES_DIR, REPO
from redis_procs import free_port

PW = "conf-Secret-4c7e"

# Variable sets for the byte-identity matrix: every value shape the templates handle.
REDIS_MATRIX = [
    {},
    {"port": 6380, "bind": "127.0.0.1 -::1", "protected-mode": True, "daemonize": False},
    {"bind": ["127.0.0.1", "::1"], "save": ["3600 1", "300 100", "60 10000"], "appendonly": True,
     "appendfsync": "everysec", "maxmemory": "4gb", "maxmemory-policy": "allkeys-lru"},
    {"save": [], "appendonly": "no", "protected-mode": "yes", "databases": 32, "io-threads": 4},
    {"save": "", "notify-keyspace-events": "", "logfile": ""},
    {"dir": "/var/lib/redis/with space", "dbfilename": 'dump "quoted".rdb', "pidfile": "/run/redis\\x.pid",
     "unixsocket": "/run/redis/redis.sock", "unixsocketperm": 700},
    {"rename-command": ['FLUSHALL ""', "CONFIG CONFIG_b7f2"], "user": ["default off", "app on >matrix-pw-1 ~app:* +@all"],
     "include": ["/etc/redis/common.conf"], "client-output-buffer-limit": ["normal 0 0 0", "replica 256mb 64mb 60"]},
    {"cluster-enabled": True, "cluster-config-file": "nodes-7000.conf", "cluster-node-timeout": 5000,
     "cluster-announce-ip": "10.0.0.5", "cluster-announce-bus-port": 17000},
    {"tls-port": 6390, "port": 0, "tls-cert-file": "/etc/redis/tls/r.crt", "tls-key-file": "/etc/redis/tls/r.key",
     "tls-ca-cert-file": "/etc/redis/tls/ca.crt", "tls-auth-clients": "optional", "tls-protocols": "TLSv1.2 TLSv1.3",
     "tls-replication": True},
    {"replicaof": "10.0.0.1 6379", "masteruser": "replicator", "replica-read-only": True,
     "min-replicas-to-write": 1, "min-replicas-max-lag": 10, "latency-tracking-info-percentiles": [50, 99, 99.9]},
    {"maxmemory": None, "some-future-directive": "value", "another-one": 3, "aaa-first": True},
]

SENTINEL_MATRIX = [
    ({"port": 26379, "bind": "127.0.0.1 -::1", "protected-mode": True, "daemonize": False}, []),
    ({"port": 26380, "dir": "/var/lib/redis sentinel", "sentinel resolve-hostnames": True,
      "sentinel announce-ip": "10.0.0.9", "user": ["default on nopass ~* +@all"]},
     [{"name": "mymaster", "host": "10.0.0.1", "port": 6379, "quorum": 2, "auth_user": None, "auth_pass": None,
       "down_after_milliseconds": 5000, "failover_timeout": None, "parallel_syncs": 1},
      {"name": "cache", "host": "cache.example", "port": 6380, "quorum": 1, "auth_user": "sentinel",
       "auth_pass": "p w", "down_after_milliseconds": None, "failover_timeout": 60000, "parallel_syncs": None}]),
]


MATRIX_SECRET = "matrix-pw-1"


def unmask(value):
    """The module masks secrets in what it returns; the matrix has one, put it back."""
    if isinstance(value, dict):
        return {k: unmask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unmask(v) for v in value]
    if isinstance(value, str):
        if value == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER":
            return MATRIX_SECRET
        return value.replace("********", MATRIX_SECRET)
    return value


def run_module(args):
    path = MODULES_DIR / "redis_config"
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(args, f)
    try:
        out = subprocess.run([str(path), f.name], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout)


def test_templates_render_byte_identical_in_minijinja_and_ansible(playbook, tmp_path, collection_built):
    """The module's minijinja output and ansible.builtin.template's output are the same bytes."""
    cases = []
    for i, settings in enumerate(REDIS_MATRIX):
        dest = tmp_path / f"module-redis-{i}.conf"
        # validate/allow_insecure off: the matrix exercises rendering, not policy.
        res = run_module({"path": str(dest), "settings": settings, "validate": False, "allow_insecure": True})
        assert not res.get("failed"), res
        cases.append({"src": "redis_server/redis.conf.j2", "i": i, "kind": "redis",
                      "vars": {"redis_settings": unmask(res["settings"])}, "module_out": str(dest)})
    for i, (settings, monitors) in enumerate(SENTINEL_MATRIX):
        dest = tmp_path / f"module-sentinel-{i}.conf"
        res = run_module({"path": str(dest), "template": "sentinel", "settings": settings, "monitors": monitors,
                          "validate": False, "allow_insecure": True})
        assert not res.get("failed"), res
        cases.append({"src": "redis_sentinel/sentinel.conf.j2", "i": i, "kind": "sentinel",
                      "vars": {"sentinel_settings": unmask(res["settings"]), "sentinel_monitors": monitors},
                      "module_out": str(dest)})
    tasks = []
    for c in cases:
        tasks.append({
            "name": f"render {c['kind']} {c['i']}",
            "ansible.builtin.template": {"src": str(REPO / "templates" / c["src"]),
                                         "dest": str(tmp_path / f"ansible-{c['kind']}-{c['i']}.conf")},
            "vars": c["vars"],
        })
    rc, out = playbook(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    assert rc == 0, out
    for c in cases:
        mine = open(c["module_out"], "rb").read()
        theirs = (tmp_path / f"ansible-{c['kind']}-{c['i']}.conf").read_bytes()
        assert mine == theirs, f"{c['kind']} case {c['i']} differs:\n--- minijinja\n{mine.decode()}\n--- ansible\n{theirs.decode()}"


def test_check_diff_then_apply_then_idempotent(playbook, tmp_path):
    port = free_port()
    path = tmp_path / "redis.conf"
    play = f"""
- hosts: all
  gather_facts: false
  vars:
    pw: "{PW}"
  tasks:
    - creativeflow.redis.redis_config:
        path: {path}
        profile: session
        settings:
          port: {port}
          dir: {tmp_path}
          maxmemory: 64mb
          requirepass: "{{{{ pw }}}}"
      register: cfg
    - ansible.builtin.assert:
        that:
          - cfg is changed
          - cfg.settings['maxmemory-policy'] == 'volatile-lru'
"""
    rc, out = playbook(play, "--check", "--diff")
    assert rc == 0, out
    assert not path.exists(), "check mode wrote the file"
    assert "+maxmemory 64mb" in out and "+requirepass ********" in out, out
    assert PW not in out
    rc, out = playbook(play)
    assert rc == 0 and path.exists(), out
    rc, out = playbook(play.replace("cfg is changed", "cfg is not changed"))
    assert rc == 0, out
    assert "changed=0" in out


def test_live_apply_through_ansible(playbook, tmp_path):
    port = free_port()
    path = tmp_path / "redis.conf"
    base = {"port": port, "dir": str(tmp_path), "requirepass": PW, "logfile": str(tmp_path / "r.log")}
    res = run_module({"path": str(path), "settings": base})
    assert res["changed"], res
    server = subprocess.Popen(["redis-server", str(path)], stdout=subprocess.DEVNULL)
    try:
        from redis_procs import _ping
        assert _ping(port)
        settings = dict(base, maxmemory="32mb", **{"maxmemory-policy": "allkeys-lru"})
        rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  tasks:
    - creativeflow.redis.redis_config:
        path: {path}
        settings: {json.dumps(settings)}
        apply: live
        login_port: {port}
        login_password: "{PW}"
      register: live
    - ansible.builtin.assert:
        that:
          - live.applied == ['maxmemory', 'maxmemory-policy']
          - not live.restart_required
""", "--diff")
        assert rc == 0, out
        assert "running server (CONFIG GET)" in out and "+maxmemory 33554432" not in out, out
        env = dict(os.environ, REDISCLI_AUTH=PW)
        got = subprocess.run(["redis-cli", "-p", str(port), "config", "get", "maxmemory"], capture_output=True,
                             text=True, env=env).stdout.split()
        assert got == ["maxmemory", "33554432"]
    finally:
        server.terminate()
        server.wait(10)


def _examples():
    src = (REPO / "collection" / "plugins" / "modules" / "redis_config.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise AssertionError("no EXAMPLES")


def test_examples_run_for_real(playbook, tmp_path):
    """Every EXAMPLES task runs: paths moved into a temp dir, owner to this user, the live
    example pointed at a real server."""
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    legacy = tmp_path / "legacy.conf.in"
    legacy.write_text("bind 127.0.0.1\nport ##PORT##\nmaxmemory ##MAXMEMORY##\n")
    live_conf = tmp_path / "redis.conf"
    port = free_port()
    res = run_module({"path": str(live_conf), "settings": {"port": port, "dir": str(tmp_path), "requirepass": PW}})
    assert res["changed"], res
    proc = subprocess.Popen(["redis-server", str(live_conf)], stdout=subprocess.DEVNULL)
    try:
        from redis_procs import _ping
        assert _ping(port)
        tasks = _examples()
        for t in tasks:
            args = t.get("creativeflow.redis.redis_config")
            if not args:
                continue
            args["path"] = str(tmp_path / os.path.basename(args["path"]))
            if "owner" in args:
                args["owner"], args["group"] = user, group
            if "src" in args:
                args["src"] = str(legacy)
            if args.get("apply") == "live":
                args["settings"]["port"] = port
                args["settings"]["dir"] = str(tmp_path)
                args["login_port"] = port
        play = [{"hosts": "all", "gather_facts": False,
                 "vars": {"redis_password": PW, "replication_password": "repl-Pass-1", "app_password": "app-Pass-2"},
                 "tasks": tasks}]
        rc, out = playbook(yaml.safe_dump(play, sort_keys=False), "--diff")
        assert rc == 0, out
        assert "failed=0" in out
        for secret in (PW, "repl-Pass-1", "app-Pass-2"):
            assert secret not in out
        assert (tmp_path / "legacy.conf").read_text() == "bind 127.0.0.1\nport 6379\nmaxmemory 1gb\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_replication_initial_keeps_a_failover_through_ansible(playbook, tmp_path):
    """issue 11: after a failover done as Sentinel does it (REPLICAOF + CONFIG REWRITE on each
    instance), the next run with the original settings reports changed=0 (check mode too), sends
    no REPLICAOF and leaves both files byte for byte as Redis wrote them."""
    ports = [free_port(), free_port()]
    nodes = []
    for i, port in enumerate(ports):
        d = tmp_path / f"n{i}"
        d.mkdir()
        settings = {"port": port, "dir": str(d), "logfile": str(d / "redis.log"), "requirepass": PW,
                    "masterauth": PW, "repl-diskless-sync-delay": 0}
        if i == 1:
            settings["replicaof"] = f"127.0.0.1 {ports[0]}"
        nodes.append({"path": str(d / "redis.conf"), "settings": settings, "replication": "initial"})
        res = run_module(nodes[-1])
        assert res["changed"] and res["replication_source"] == "task", res
    env = dict(os.environ, REDISCLI_AUTH=PW)

    def cli(port, *args):
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, env=env,
                              timeout=10).stdout.strip()

    # Under umask 027, as the collection's systemd unit runs redis-server: CONFIG REWRITE keeps 0640.
    procs = [subprocess.Popen(["redis-server", n["path"]], stdout=subprocess.DEVNULL,
                              preexec_fn=lambda: os.umask(0o027)) for n in nodes]
    try:
        from redis_procs import _ping
        assert all(_ping(p) for p in ports)
        assert cli(ports[1], "replicaof", "no", "one") == "OK"
        assert cli(ports[1], "config", "rewrite") == "OK"
        assert cli(ports[0], "replicaof", "127.0.0.1", str(ports[1])) == "OK"
        assert cli(ports[0], "config", "rewrite") == "OK"
        files = [open(n["path"], "rb").read() for n in nodes]
        assert b"# Generated by CONFIG REWRITE" in files[0] and f"replicaof 127.0.0.1 {ports[1]}".encode() in files[0]
        tasks = [{"creativeflow.redis.redis_config": dict(n, apply="live", login_port=p, login_password=PW),
                  "register": f"r{i}"} for i, (n, p) in enumerate(zip(nodes, ports))]
        tasks.append({"ansible.builtin.assert": {"that": [
            "r0.replication_source == 'server' and r1.replication_source == 'server'",
            "'is not applied' in r0.replication_note and 'is not applied' in r1.replication_note",
        ]}})
        play = yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], sort_keys=False)
        for extra in (("--check", "--diff"), ()):
            rc, out = playbook(play, *extra)
            assert rc == 0, out
            assert "changed=0" in out, out
            assert PW not in out
        assert [open(n["path"], "rb").read() for n in nodes] == files
        assert "role:slave" in cli(ports[0], "info", "replication")
        assert "role:master" in cli(ports[1], "info", "replication")
        for p, calls in ((ports[0], 1), (ports[1], 1)):
            stats = cli(p, "info", "commandstats")
            assert f"cmdstat_replicaof:calls={calls}," in stats, stats
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
