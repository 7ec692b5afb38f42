"""Run a real redis-server as a child of the sandbox, on loopback.

Two listeners, as Azure Cache for Redis has: a plain port and a TLS port
(the sandbox's server certificate, issued by the sandbox CA; clients are not
asked for a certificate). No persistence: the data lives only as long as the
process, which is what a cache is.

The child must never outlive the sandbox. A clean stop sends SIGTERM and waits;
should the sandbox itself be killed, `setpriv --pdeathsig KILL` makes the kernel
kill redis-server with it (the signal is tied to the thread that started the
child, so the provider starts it on the sandbox's main thread, at start-up).
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

from .resp import RespClient, RespError

REDIS_SERVER = "/usr/bin/redis-server"
ADMIN_USER = "sandbox-admin"
READY_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


class RedisStartError(RuntimeError):
    pass


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServerProcess:
    def __init__(self, work_dir, cert_file, key_file, ca_file, password):
        self.work_dir = work_dir
        self.cert_file = cert_file
        self.key_file = key_file
        self.ca_file = ca_file
        self.password = password
        self.host = "127.0.0.1"
        self.port = None
        self.tls_port = None
        self.process = None
        self.log_path = os.path.join(work_dir, "redis.log")
        # The sandbox's own ACL user, so that a test changing the default user's password
        # (CONFIG SET requirepass) or deleting users cannot lock the reset out.
        self.admin_user = ADMIN_USER
        self._admin_password = secrets.token_hex(16)

    def argv(self):
        server = shutil.which("redis-server") or REDIS_SERVER
        argv = [
            server,
            "--bind", self.host,
            "--port", str(self.port),
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", self.cert_file,
            "--tls-key-file", self.key_file,
            "--tls-ca-cert-file", self.ca_file,
            "--tls-auth-clients", "no",
            "--requirepass", self.password,
            "--user", self.admin_user, "on", f">{self._admin_password}", "~*", "&*", "+@all",
            # A cache: nothing written to disk, ever.
            "--save", "",
            "--appendonly", "no",
            "--dir", self.work_dir,
            "--logfile", self.log_path,
            "--daemonize", "no",
            "--databases", "16",
            # DEBUG POPULATE loads many keys quickly (admin route and benchmark); local clients only.
            "--enable-debug-command", "local",
            # Every command goes to the slow log, so tests can read how long the longest took.
            "--slowlog-log-slower-than", "0",
            "--slowlog-max-len", "1024",
            "--latency-monitor-threshold", "1",
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
        return argv

    def start(self, attempts=3):
        """Start and wait until it answers PING with the password; retry on a port taken meanwhile."""
        os.makedirs(self.work_dir, exist_ok=True)
        last_error = None
        for _attempt in range(attempts):
            self.port, self.tls_port = free_port(), free_port()
            if self.port == self.tls_port:
                continue
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, close_fds=True, cwd=self.work_dir)
            try:
                self._wait_ready()
                return self
            except RedisStartError as err:
                last_error = err
                self.stop()
        raise RedisStartError(f"redis-server did not start: {last_error}; log: {self.log_path}")

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisStartError(f"exited with code {self.process.returncode}")
            try:
                with self.client(timeout=1.0) as client:
                    if client.call("PING") == "PONG":
                        return
            except (OSError, ConnectionError, RespError):
                pass
            time.sleep(0.01)
        raise RedisStartError(f"no answer on port {self.port} within {READY_TIMEOUT_S}s")

    def client(self, timeout=5.0):
        return RespClient(self.host, self.port, username=self.admin_user, password=self._admin_password,
                          timeout=timeout)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
