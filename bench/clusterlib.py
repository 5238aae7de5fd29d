"""Fresh cluster-enabled redis-server processes for the cluster benchmarks (loopback only,
free ports, never 6379; stopped by pid)."""
import pathlib
import socket
import subprocess
import time

import redis  # redis-py, from the project's venv

PASSWORD = "bench-cluster-pw"


def free_port(taken):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p in taken or p in (6379, 26379) or p > 55000:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
        except OSError:
            continue
        taken.add(p)
        return p


class Node:
    def __init__(self, port, base, extra=""):
        self.port = port
        self.dir = pathlib.Path(base) / str(port)
        self.dir.mkdir()
        conf = self.dir / "redis.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\nlogfile {self.dir}/redis.log\n"
            f"save \"\"\nappendonly no\ncluster-enabled yes\ncluster-node-timeout 15000\n"
            f"requirepass {PASSWORD}\nmasterauth {PASSWORD}\n{extra}"
        )
        self.client = None
        self.proc = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.cmd("PING"):
                    return
            except (OSError, redis.exceptions.ConnectionError):
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on {port} did not start")

    def cmd(self, *args):
        if self.client is None:
            self.client = redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD,
                                      socket_timeout=2)
        try:
            return self.client.execute_command(*args)
        except redis.exceptions.ResponseError as e:
            return str(e)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


