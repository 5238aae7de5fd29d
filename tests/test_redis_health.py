"""redis_health through real `ansible` / `ansible-playbook` against real Redis processes."""
import ast
import os
import subprocess

import pytest
import yaml

from conftest import MODULES_DIR, REPO, result_of
from redis_procs import free_port

PW = "adhoc-Secret-8d1e"


def test_adhoc_ok_and_password_nowhere_at_vvvv(adhoc, redis_server):
    s = redis_server(f"requirepass {PW}")
    rc, out = adhoc("creativeflow.redis.redis_health", f"login_port={s.port} login_password={PW}", "-vvvv")
    assert rc == 0, out
    assert "localhost | SUCCESS" in out
    assert PW not in out
    res = result_of(out)
    assert res["status"] == "ok"
    assert res["changed"] is False
    assert res["invocation"]["module_args"]["login_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert res["invocation"]["module_args"]["login_port"] == s.port  # "P" arrived as a string


@pytest.mark.parametrize("args,expect", [
    ("login_port=notaport", "argument 'login_port' is of type str and we were unable to convert to int"),
    ("login_port={port} foo=bar", "Unsupported parameters for (redis_health) module: foo. Supported parameters include:"),
    ("login_port={port} login_password={{{{ pw }}}}", "WRONGPASS invalid username-password pair"),
    ("login_port={closed} login_password={{{{ pw }}}}", "connection refused"),
    ("login_port={port} tls=maybe", "is not a valid boolean"),
])
def test_adhoc_bad_input_fails_clearly(adhoc, redis_server, args, expect):
    s = redis_server(f"requirepass {PW}")
    rc, out = adhoc("creativeflow.redis.redis_health",
                    args.format(port=s.port, closed=free_port()), "-e", "pw=not-the-password-77", "-vvvv")
    assert rc != 0, out
    assert "localhost | FAILED!" in out
    assert expect in out, out
    # A secret passed as a variable reference is never printed, even by ansible's error header.
    assert "not-the-password-77" not in out


def test_module_defaults_group_sets_connection_once(playbook, redis_server):
    s = redis_server(f"requirepass {PW}")
    rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  module_defaults:
    group/creativeflow.redis.redis:
      login_host: 127.0.0.1
      login_port: {s.port}
      login_password: "{PW}"
  tasks:
    - creativeflow.redis.redis_health:
        checks: [ping, memory]
      register: h
    - ansible.builtin.assert:
        that:
          - h.status == 'ok'
          - h.address == '127.0.0.1:{s.port}'
          - h is not changed
""")
    assert rc == 0, out
    assert PW not in out


def test_playbook_check_mode_and_registered_values(playbook, redis_server):
    master = redis_server(f"requirepass {PW}")
    replica = redis_server(f"requirepass {PW}", f"masterauth {PW}", f"replicaof 127.0.0.1 {master.port}")
    rc, out = playbook(f"""
- hosts: all
  gather_facts: false
  vars:
    pw: "{PW}"
  tasks:
    - name: replica catches up
      creativeflow.redis.redis_health:
        login_port: {replica.port}
        login_password: "{{{{ pw }}}}"
        expected_role: replica
      register: r
      until: r.replication.master_link_status == 'up'
      retries: 40
      delay: 0.5
    - name: master sees it, in check mode too
      creativeflow.redis.redis_health:
        login_port: {master.port}
        login_password: "{{{{ pw }}}}"
        min_replicas: 1
      register: m
      check_mode: true
    - ansible.builtin.assert:
        that:
          - m is not changed
          - m is not skipped
          - m.role == 'master'
          - m.replication.replicas[0].port == {replica.port}
          - m.info.connected_slaves == 1
          - r.replication.master_port == {master.port}
""", "--diff")
    assert rc == 0, out
    assert "changed=0" in out


def _examples():
    src = (REPO / "collection" / "plugins" / "modules" / "redis_health.py").read_text()
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise AssertionError("no EXAMPLES")


def _retarget(task, ports, ca):
    """Points an example at the test servers: same options, local ports and the test CA."""
    if isinstance(task, dict):
        out = {}
        for k, v in task.items():
            if k == "login_port":
                v = ports[int(v)]
            elif k == "ca_certs":
                v = ca
            elif k in ("retries",):
                v = 40
            elif k == "delay":
                v = 0.5
            out[k] = _retarget(v, ports, ca)
        return out
    if isinstance(task, list):
        return [_retarget(t, ports, ca) for t in task]
    return task


def test_examples_run_for_real(playbook, redis_server, tmp_path):
    """Every EXAMPLES task runs against real servers (ports and CA mapped to the test's)."""
    ca_dir = tmp_path / "pki"
    ca_dir.mkdir()

    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=ca_dir, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=ca")
    (ca_dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "s.key", "-out", "s.csr", "-subj", "/CN=s")
    ossl("x509", "-req", "-in", "s.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "s.crt", "-days", "2", "-extfile", "san.ext")

    master = redis_server(f"requirepass {PW}")
    replica = redis_server(f"requirepass {PW}", f"masterauth {PW}", f"replicaof 127.0.0.1 {master.port}")
    sentinel = redis_server(f"sentinel monitor mymaster 127.0.0.1 {master.port} 1",
                            f"sentinel auth-pass mymaster {PW}", binary="redis-sentinel")
    tls_port = free_port()
    redis_server(f"tls-port {tls_port}", f"tls-cert-file {ca_dir}/s.crt", f"tls-key-file {ca_dir}/s.key",
                 f"tls-ca-cert-file {ca_dir}/ca.crt", "tls-auth-clients no")
    ports = {6379: master.port, 6380: replica.port, 26379: sentinel.port, 6390: tls_port, 7000: master.port}

    tasks = _retarget(_examples(), ports, str(ca_dir / "ca.crt"))
    modules = [t for t in tasks if any(k.startswith("creativeflow.redis.") for k in t)
               or "block" in t]
    assert len(modules) >= 6
    play = [{"hosts": "all", "gather_facts": False, "vars": {"redis_password": PW},
             "module_defaults": {"group/creativeflow.redis.redis": {"login_port": master.port}},
             "tasks": tasks}]
    rc, out = playbook(yaml.safe_dump(play, sort_keys=False))
    assert rc == 0, out
    assert "failed=0" in out
    assert PW not in out


def test_binary_is_static_and_small(collection_built):
    path = MODULES_DIR / "redis_health"
    assert os.access(path, os.X_OK)
    assert path.stat().st_size <= 3 * 1024 * 1024
    out = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True).stdout
    assert "static" in out, out
