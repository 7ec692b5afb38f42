"""Control the local Azure stand-in ("sandbox").

  sandboxctl.py start  [--state-dir DIR] [--port N]   start in the background, write DIR/env.sh
  sandboxctl.py stop   [--state-dir DIR]              stop it; returns once process and ports are gone
  sandboxctl.py status [--state-dir DIR]              0 running, 3 not running, 1 unhealthy
  sandboxctl.py run    [--state-dir DIR] [--port N]   run in the foreground (debugging)

DIR defaults to $SRE_SANDBOX_DIR, else <repo>/.sandbox. The port defaults to
$SRE_SANDBOX_PORT, else a free one. Exit codes: 0 ok, 1 failure, 2 usage,
3 not running (status).
"""

import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SEED_DIR = os.path.join(HERE, "seed")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


def state_dir_of(args):
    return os.path.abspath(args.state_dir or os.environ.get("SRE_SANDBOX_DIR") or os.path.join(REPO, ".sandbox"))


def port_of(args):
    value = args.port if args.port is not None else os.environ.get("SRE_SANDBOX_PORT") or 0
    return int(value)


def read_runtime(state_dir):
    try:
        with open(os.path.join(state_dir, "runtime.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, ValueError):
        return None


def read_env(state_dir):
    try:
        with open(os.path.join(state_dir, "env.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, ValueError):
        return None


def process_alive(pid):
    """True if pid runs (a zombie left behind by a non-reaping init counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def is_sandbox_process(pid):
    """Guard against a recycled pid: only signal our own server process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except FileNotFoundError:
        return False
    return any(a.endswith(b"sandboxctl.py") for a in argv) and b"run" in argv


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthz(state_dir, port, timeout=2.0):
    """GET /_sandbox/healthz over HTTPS, trusting only the sandbox CA."""
    ctx = ssl.create_default_context(cafile=os.path.join(state_dir, "ca.pem"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", "/_sandbox/healthz")
        resp = conn.getresponse()
        return resp.status == 200 and json.loads(resp.read()).get("status") == "ok"
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def running(state_dir):
    """The runtime description if a live server owns state_dir, else None (stale files removed)."""
    runtime = read_runtime(state_dir)
    if runtime is None:
        return None
    if not process_alive(runtime["pid"]) or not is_sandbox_process(runtime["pid"]):
        remove_runtime_files(state_dir)
        return None
    return runtime


def remove_runtime_files(state_dir):
    for name in ("runtime.json", "env.sh", "env.json"):
        try:
            os.remove(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass


def print_endpoints(state_dir):
    env = read_env(state_dir) or {}
    print(f"  ARM endpoint:    {env.get('AZURE_ARM_ENDPOINT')}")
    print(f"  authority host:  {env.get('AZURE_AUTHORITY_HOST')}")
    print(f"  admin API:       {env.get('SRE_SANDBOX_URL')}")
    print(f"  CA bundle:       {env.get('REQUESTS_CA_BUNDLE')}")
    print(f"  environment:     . {os.path.join(state_dir, 'env.sh')}")


# -- commands ----------------------------------------------------------------------------
def cmd_start(args):
    state_dir = state_dir_of(args)
    os.makedirs(state_dir, exist_ok=True)
    runtime = running(state_dir)
    if runtime and healthz(state_dir, runtime["main_port"]):
        print(f"sandbox already running (pid {runtime['pid']}) in {state_dir}")
        print_endpoints(state_dir)
        return EXIT_OK
    if runtime:
        print(f"sandbox process {runtime['pid']} exists but does not answer; run 'stop' first", file=sys.stderr)
        return EXIT_FAIL

    log_path = os.path.join(state_dir, "sandbox.log")
    cmd = [sys.executable, os.path.abspath(__file__), "run", "--state-dir", state_dir,
           "--port", str(port_of(args)), "--seed-dir", args.seed_dir]
    with open(log_path, "ab") as log:
        # A new session detaches the server from our terminal and process group,
        # so it outlives this command and ignores the caller's Ctrl-C.
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, cwd=state_dir)

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"sandbox exited during start (code {child.returncode}); last log lines:", file=sys.stderr)
            print(_tail(log_path), file=sys.stderr)
            return EXIT_FAIL
        runtime = read_runtime(state_dir)
        if runtime and runtime["pid"] == child.pid and healthz(state_dir, runtime["main_port"]):
            print(f"sandbox started (pid {child.pid}) in {state_dir}")
            print_endpoints(state_dir)
            return EXIT_OK
        time.sleep(0.1)
    print(f"sandbox did not answer within {args.timeout}s; stopping it. Log: {log_path}", file=sys.stderr)
    child.kill()
    child.wait()
    remove_runtime_files(state_dir)
    return EXIT_FAIL


def cmd_stop(args):
    state_dir = state_dir_of(args)
    runtime = running(state_dir)
    if runtime is None:
        print(f"sandbox not running in {state_dir}")
        return EXIT_OK
    pid, ports = runtime["pid"], runtime.get("ports", [])
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, ports, args.timeout):
        print(f"sandbox (pid {pid}) ignored SIGTERM for {args.timeout}s; killing it", file=sys.stderr)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not _wait_gone(pid, ports, 5):
            print(f"sandbox (pid {pid}) is still there", file=sys.stderr)
            return EXIT_FAIL
    remove_runtime_files(state_dir)
    print(f"sandbox stopped (pid {pid})")
    return EXIT_OK


def _wait_gone(pid, ports, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid) and not any(port_open(p) for p in ports):
            return True
        time.sleep(0.1)
    return False


def cmd_status(args):
    state_dir = state_dir_of(args)
    runtime = running(state_dir)
    if runtime is None:
        print(f"sandbox not running in {state_dir}")
        return EXIT_NOT_RUNNING
    if not healthz(state_dir, runtime["main_port"]):
        print(f"sandbox process {runtime['pid']} runs but does not answer on port {runtime['main_port']}")
        return EXIT_FAIL
    print(f"sandbox running (pid {runtime['pid']}) in {state_dir}")
    print_endpoints(state_dir)
    return EXIT_OK


def cmd_run(args):
    state_dir = state_dir_of(args)
    os.makedirs(state_dir, exist_ok=True)
    runtime = running(state_dir)
    if runtime and runtime["pid"] != os.getpid():
        print(f"sandbox already running (pid {runtime['pid']}) in {state_dir}", file=sys.stderr)
        return EXIT_FAIL
    sys.path.insert(0, HERE)
    from standin.server import run  # noqa: E402 - the package lives next to this script

    return run(state_dir, args.seed_dir, port_of(args))


def _tail(path, lines=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("start", cmd_start, "start in the background"),
        ("stop", cmd_stop, "stop and wait until nothing is left"),
        ("status", cmd_status, "report whether it runs"),
        ("run", cmd_run, "run in the foreground"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        p.add_argument("--state-dir", help="default: $SRE_SANDBOX_DIR or <repo>/.sandbox")
        if name in ("start", "run"):
            p.add_argument("--port", type=int, default=None, help="main HTTPS port (default $SRE_SANDBOX_PORT or free)")
            p.add_argument("--seed-dir", default=DEFAULT_SEED_DIR, help="directory of seed *.json files")
        if name in ("start", "stop"):
            # Generous: a start launches PostgreSQL, Redis, Azurite and Prometheus; on a busy 2-core machine that takes a while.
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
