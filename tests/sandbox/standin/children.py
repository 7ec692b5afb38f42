"""A real server run as a child of the sandbox, on loopback (redis-server, prometheus).

The child must never outlive the sandbox. A clean stop sends SIGTERM and waits;
should the sandbox itself be killed, `setpriv --pdeathsig KILL` makes the kernel
kill the child with it (the signal is tied to the thread that started the
child, so providers start it on the sandbox's main thread, at start-up).
"""

import os
import shutil
import signal
import socket
import subprocess
import time

STOP_TIMEOUT_S = 5.0


class ChildStartError(RuntimeError):
    pass


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildServer:
    """Subclasses give `name`, `ready_timeout_s`, `log_path`, `work_dir`, and define `pick_ports()`
    (set the ports a start will use), `server_argv()` and `answers()` (True once it serves)."""

    name = "child"
    ready_timeout_s = 5.0

    def __init__(self, work_dir, log_name):
        self.work_dir = work_dir
        self.log_path = os.path.join(work_dir, log_name)
        self.process = None

    def argv(self):
        setpriv = shutil.which("setpriv")
        argv = self.server_argv()
        return [setpriv, "--pdeathsig", "KILL", "--"] + argv if setpriv else argv

    def start(self, attempts=3):
        """Start and wait until it answers; retry with new ports when one was taken meanwhile."""
        os.makedirs(self.work_dir, exist_ok=True)
        last_error = None
        for _attempt in range(attempts):
            self.pick_ports()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, close_fds=True, cwd=self.work_dir)
            try:
                self._wait_ready()
                return self
            except ChildStartError as err:
                last_error = err
                self.stop()
        raise ChildStartError(f"{self.name} did not start: {last_error}; log: {self.log_path}")

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChildStartError(f"exited with code {self.process.returncode}")
            if self.answers():
                return
            time.sleep(0.02)
        raise ChildStartError(f"no answer within {self.ready_timeout_s}s")

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
