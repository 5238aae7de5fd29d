"""Real redis-server / redis-sentinel processes for the Ansible-level tests.

Started from the Debian packages on 127.0.0.1, on ports picked here (never 6379/26379), in a temp
dir, and stopped by pid afterwards. No mocks: the modules under test talk to these.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

_next = [20000 + (os.getpid() % 300) * 30 + 15000]


def free_port():
    """A port free now on 127.0.0.1, with port+10000 free too (cluster bus)."""
    while True:
        _next[0] += 1
        p = _next[0]
        if p >= 55000:
            _next[0] = 35000
            continue
        if p in (6379, 26379):
            continue
        ok = True
        for q in (p, p + 10000):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", q))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p


def _ping(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                data = s.recv(64)
                if data.startswith(b"+PONG") or data.startswith(b"-NOAUTH"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class RedisProc:
    """One redis-server or redis-sentinel; use as a context manager or call stop()."""

    def __init__(self, lines=(), binary="redis-server", port=None):
        self.dir = tempfile.mkdtemp(prefix="cfredis-")
        self.port = port or free_port()
        self.password = None
        conf = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}",
                f"logfile {self.dir}/redis.log", "daemonize no"]
        if binary == "redis-server":
            conf += ['save ""', "appendonly no"]
        for line in lines:
            conf.append(line)
            if line.startswith("requirepass "):
                self.password = line.split(" ", 1)[1]
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([binary, self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _ping(self.port):
            log = open(f"{self.dir}/redis.log").read() if os.path.exists(f"{self.dir}/redis.log") else ""
            self.stop()
            raise RuntimeError(f"{binary} did not start on port {self.port}:\n{log}")

    def cli(self, *args):
        """redis-cli against this process (password through REDISCLI_AUTH, never argv)."""
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                             capture_output=True, text=True, env=env, timeout=10)
        return out.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
