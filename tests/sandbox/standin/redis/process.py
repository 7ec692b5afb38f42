"""Run a real redis-server as a child of the sandbox, on loopback.

Two listeners, as Azure Cache for Redis has: a plain port and a TLS port
(the sandbox's server certificate, issued by the sandbox CA; clients are not
asked for a certificate). No persistence: the data lives only as long as the
process, which is what a cache is.

It never outlives the sandbox (`children.ChildServer`).
"""

import secrets
import shutil

from ..children import ChildServer, free_port
from .resp import RespClient, RespError

REDIS_SERVER = "/usr/bin/redis-server"
ADMIN_USER = "sandbox-admin"


class RedisServerProcess(ChildServer):
    name = "redis-server"

    def __init__(self, work_dir, cert_file, key_file, ca_file, password):
        super().__init__(work_dir, "redis.log")
        self.cert_file = cert_file
        self.key_file = key_file
        self.ca_file = ca_file
        self.password = password
        self.host = "127.0.0.1"
        self.port = None
        self.tls_port = None
        # The sandbox's own ACL user, so that a test changing the default user's password
        # (CONFIG SET requirepass) or deleting users cannot lock the reset out.
        self.admin_user = ADMIN_USER
        self._admin_password = secrets.token_hex(16)

    def pick_ports(self):
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()

    def server_argv(self):
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
        return argv

    def answers(self):
        """PING with the password answers PONG."""
        try:
            with self.client(timeout=1.0) as client:
                return client.call("PING") == "PONG"
        except (OSError, ConnectionError, RespError):
            return False

    def client(self, timeout=5.0):
        return RespClient(self.host, self.port, username=self.admin_user, password=self._admin_password,
                          timeout=timeout)
