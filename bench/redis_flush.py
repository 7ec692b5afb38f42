#!/usr/bin/env python
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark: delete 1,000,000 ``session:*`` keys among 2,000,000 on a real redis-server.

Contenders, each on the same freshly loaded data (1,000,000 ``session:N`` and
1,000,000 ``cache:N`` string keys, made with ``DEBUG POPULATE``; the deleted
keys are loaded again between runs, and every run is checked: no matching key
left, every ``cache:*`` key still there):

1. ``redis_flush`` work function in this process (``clear_cache``, SCAN COUNT
   1000 + pipelined UNLINK), and its check mode (SCAN only, no reload needed);
2. the module as its own process (``python plugins/modules/redis_flush.py
   args.json``, what Ansible runs), for its peak RSS (``wait4``), next to the
   same process on a pattern that matches nothing (the baseline: same imports,
   same SCAN walk over 2,000,000 keys, nothing deleted);
3. one ``sre.rollback.redis_flush`` task through ``ansible-playbook``;
4. ``redis-cli --scan --pattern 'session:*' | xargs redis-cli unlink``, the
   shell one-liner (redis-cli's SCAN uses its default COUNT of 10; xargs packs
   about 10,000 keys into each UNLINK).

Memory: besides the RSS pair above, the work function deletes ``session:1*``
(111,111 keys) under tracemalloc, for the peak of its Python allocations
(tracemalloc slows Python several times, so not the full million; the peak
does not depend on the count: it is one SCAN page).

Server responsiveness, per run:

- ``INFO latencystats`` (Redis 7 per-command latency histograms, reset with
  ``CONFIG RESETSTAT`` before each run, percentile p100 = the slowest single
  call of that command inside the server);
- ``SLOWLOG`` with threshold 0 is not used: it keeps only the newest entries,
  so the slowest could be evicted; commands over 10 ms are still kept there
  and listed;
- a probe process that sends PING every 2 ms on its own connection and
  records the round trip it sees (client side: includes scheduling on a
  shared machine, so it is an upper bound).

The goal from the issue: no command blocks the server more than 50 ms.

Runs its own redis-server (loopback, plain port, no persistence) in a temp
directory and stops it at the end; needs no sandbox. One to two and a half
minutes on two shared cores (the numbers move with the machine's load: the
table prints the load average and a noise column).
Output: one table on stdout, everything in ``bench/results/redis_flush-<UTC>.json``.

    .venv/bin/python bench/redis_flush.py [--keys 1000000] [--skip-playbook] [--skip-redis-cli]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
COLLECTIONS = ROOT / ".cache" / "collections"
MODULE = ROOT / "plugins" / "modules" / "redis_flush.py"
GOAL_MS = 50.0
SUBSET_PATTERN = "session:1*"
SLOWLOG_THRESHOLD_US = 10_000
# Commands the bench itself sends around a run (stats reset) and the probe's PING: not the contenders'.
BENCH_COMMANDS = ("config|resetstat", "slowlog|reset", "ping")

sys.path.insert(0, str(COLLECTIONS))
import redis  # noqa: E402  (the venv's redis-py, as the module uses it)
from ansible_collections.sre.rollback.plugins.module_utils.redis_flush import (  # noqa: E402
    RedisEndpoint,
    clear_cache,
)

PROBE = textwrap.dedent("""
    import json, socket, sys, time
    port, interval = int(sys.argv[1]), float(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    import select
    while not select.select([sys.stdin], [], [], 0)[0]:
        started = time.perf_counter()
        sock.sendall(b"PING\\r\\n")
        reply = b""
        while not reply.endswith(b"\\r\\n"):
            reply += sock.recv(64)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(interval)
    samples.sort()
    print(json.dumps({"pings": len(samples), "max_ms": samples[-1] if samples else None,
                      "p99_ms": samples[int(len(samples) * 0.99)] if samples else None,
                      "median_ms": samples[len(samples) // 2] if samples else None}))
""")


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchRedis:
    """A redis-server of our own, loaded with the benchmark's keys."""

    def __init__(self, work_dir, keys):
        self.port = free_port()
        self.keys = keys
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(work_dir), "--enable-debug-command", "local",
                "--slowlog-log-slower-than", str(SLOWLOG_THRESHOLD_US), "--slowlog-max-len", "1024",
                "--latency-tracking", "yes", "--latency-tracking-info-percentiles", "50 99 99.9 100"]
        if shutil.which("setpriv"):
            # Killed or not, the bench never leaves its server behind.
            argv = [shutil.which("setpriv"), "--pdeathsig", "KILL", "--"] + argv
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, protocol=2, socket_timeout=120)
        deadline = time.monotonic() + 5
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.version = self.client.info("server")["redis_version"]

    def load(self):
        """Both halves present: DEBUG POPULATE skips keys that exist, so this only refills what was deleted."""
        started = time.monotonic()
        self.client.execute_command("DEBUG", "POPULATE", self.keys, "session")
        self.client.execute_command("DEBUG", "POPULATE", self.keys, "cache")
        size = self.client.dbsize()
        if size != 2 * self.keys:
            raise RuntimeError("expected %d keys, found %d" % (2 * self.keys, size))
        return round(time.monotonic() - started, 2)

    def count(self, pattern):
        return sum(1 for _unused in self.client.scan_iter(match=pattern, count=5000))

    def reset_stats(self):
        self.client.config_resetstat()
        self.client.slowlog_reset()

    def latency(self):
        """The slowest single call per command since reset_stats(), from INFO latencystats (µs)."""
        stats = self.client.info("latencystats")
        slowest = {}
        for name, value in stats.items():
            command = name.replace("latency_percentiles_usec_", "")
            if isinstance(value, dict):
                slowest[command] = {k: float(v) for k, v in value.items()}
        contenders = {k: v for k, v in slowest.items() if k not in BENCH_COMMANDS}
        worst = max(contenders.items(), key=lambda item: item[1].get("p100", 0), default=(None, {}))
        slow = [{"duration_ms": round(e["duration"] / 1000, 2), "command": _command_text(e["command"])}
                for e in self.client.slowlog_get(128)]
        return {
            "max_command": worst[0],
            "max_command_ms": round(worst[1].get("p100", 0) / 1000, 3) if worst[0] else None,
            # One slow call in thousands can be the machine, not the command: p99.9 says which.
            "p999_ms": round(max((v.get("p99.9", 0) for v in contenders.values()), default=0) / 1000, 3),
            # PING is O(1): any time it took inside the server is the machine's scheduling noise.
            "ping_max_ms": round(slowest.get("ping", {}).get("p100", 0) / 1000, 3),
            "per_command_us": slowest,
            "over_%d_ms" % (SLOWLOG_THRESHOLD_US // 1000): sorted(slow, key=lambda e: -e["duration_ms"])[:10],
        }

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _command_text(command):
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    return command if len(command) < 80 else command[:77] + "..."


class Probe:
    """PING every 2 ms from another process, so the measuring never competes with the measured for the GIL."""

    def __init__(self, port, interval_s=0.002):
        self.process = subprocess.Popen([sys.executable, "-c", PROBE, str(port), str(interval_s)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.process.stdout.readline()

    def stop(self):
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        out = self.process.stdout.read()
        self.process.wait(10)
        return json.loads(out)


def measured(server, action):
    """Run ``action()`` with stats reset and the probe on; return its outcome and the latency figures."""
    server.reset_stats()
    probe = Probe(server.port)
    started = time.perf_counter()
    try:
        outcome = action()
    finally:
        elapsed = time.perf_counter() - started
        pings = probe.stop()
    return {"seconds": round(elapsed, 3), "outcome": outcome, "server": server.latency(), "probe": pings}


# ---- contenders ---------------------------------------------------------------------------------


def run_in_process(server, pattern, check_mode=False, scan_count=1000):
    endpoint = RedisEndpoint(host="127.0.0.1", port=server.port, tls=False, command_timeout=60)
    changed, result = clear_cache(endpoint, [pattern], scan_count=scan_count, check_mode=check_mode)
    return {"changed": changed, "deleted": result["deleted"], "scan_calls": result["scan_calls"],
            "work_s": result["work_s"]}


def run_tracemalloc(server, pattern):
    tracemalloc.start()
    try:
        outcome = run_in_process(server, pattern)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outcome["tracemalloc_peak_kib"] = round(peak / 1024, 1)
    return outcome


def run_module_process_rss(server, pattern, work_dir):
    """Like run_module_process, but reaps the child itself with wait4 to read its own peak RSS."""
    args = Path(work_dir) / "args-rss.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "host": "127.0.0.1", "port": server.port, "tls": False, "patterns": [pattern], "command_timeout": 60}}))
    out_path = Path(work_dir) / "module-out.json"
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    with open(out_path, "wb") as out:
        pid = subprocess.Popen([sys.executable, str(MODULE), str(args)], env=env, stdout=out,
                               stderr=subprocess.DEVNULL).pid
        _pid, status, usage = os.wait4(pid, 0)
    result = json.loads(out_path.read_text() or "{}")
    if result.get("failed") or os.waitstatus_to_exitcode(status):
        raise RuntimeError("module process failed: %s" % result.get("msg"))
    return {"changed": result["changed"], "deleted": result["deleted"], "work_s": result["work_s"],
            "duration_s": result["duration_s"], "max_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def run_playbook(server, pattern, work_dir):
    playbook = Path(work_dir) / "flush.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars:
            ansible_python_interpreter: "{{ ansible_playbook_python }}"
          tasks:
            - name: Delete the sessions
              sre.rollback.redis_flush:
                host: 127.0.0.1
                port: %d
                tls: false
                patterns: ["%s"]
                command_timeout: 60
        """ % (server.port, pattern)))
    # The minimal callback prints "localhost | CHANGED => {result as JSON}" and nothing else.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="minimal",
               ANSIBLE_CONFIG=str(Path(work_dir) / "none.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    playbook_bin = str(Path(sys.executable).parent / "ansible-playbook")
    proc = subprocess.run([playbook_bin, "-i", "localhost,", str(playbook)], env=env, cwd=work_dir,
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError("ansible-playbook failed: %s %s" % (proc.stdout[-1500:], proc.stderr[-1500:]))
    task = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {"changed": task["changed"], "deleted": task["deleted"], "work_s": task["work_s"],
            "duration_s": task["duration_s"]}


def run_redis_cli(server, pattern):
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    command = "%s -p %d --scan --pattern '%s' | xargs %s -p %d unlink > /dev/null" % (
        cli, server.port, pattern, cli, server.port)
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError("redis-cli pipeline failed: %s" % proc.stderr[-500:])
    return {"command": command.replace(" > /dev/null", "")}


# ---- the run --------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys per half (default 1,000,000)")
    parser.add_argument("--skip-playbook", action="store_true")
    parser.add_argument("--skip-redis-cli", action="store_true")
    args = parser.parse_args()
    pattern = "session:*"
    bench_started = time.monotonic()
    work_dir = tempfile.mkdtemp(prefix="bench-redis-")
    server = BenchRedis(work_dir, args.keys)
    rows = []
    report = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(), "keys_total": 2 * args.keys,
              "load_average_start": os.getloadavg(), "cpus": os.cpu_count(),
              "keys_matching": args.keys, "pattern": pattern, "redis_version": server.version,
              "goal_max_command_ms": GOAL_MS, "runs": {}}

    def record(name, label, run, gone_pattern=None, latency_contender=True):
        """Keep a run after checking the data: ``gone_pattern`` matches nothing now, the other half is intact."""
        if gone_pattern:
            left = server.count(gone_pattern)
            if left:
                raise RuntimeError("%s left %d keys matching %s" % (name, left, gone_pattern))
            if server.count("cache:*") != args.keys:
                raise RuntimeError("%s deleted keys it should not have" % name)
        run["latency_contender"] = latency_contender
        report["runs"][name] = run
        rows.append((label, run))
        log("  %-50s %7.2f s  max command %s ms (%s), probe max %.1f ms" % (
            label, run["seconds"], run["server"]["max_command_ms"], run["server"]["max_command"],
            run["probe"]["max_ms"] or 0))

    def expect_deleted(run, count):
        if run["outcome"]["deleted"] != count:
            raise RuntimeError("expected %d deleted, got %s" % (count, run["outcome"]))

    try:
        log("loading %d keys (DEBUG POPULATE)..." % (2 * args.keys))
        report["load_s"] = [server.load()]

        log("running:")
        run = measured(server, lambda: run_in_process(server, pattern, check_mode=True))
        expect_deleted(run, args.keys)
        record("check_mode_in_process", "redis_flush check mode (SCAN only), in-process", run)

        run = measured(server, lambda: run_module_process_rss(server, "nomatch:*", work_dir))
        record("module_process_no_match", "redis_flush module process, pattern matching nothing", run)

        run = measured(server, lambda: run_in_process(server, pattern))
        expect_deleted(run, args.keys)
        record("module_in_process", "redis_flush work function, in-process", run, gone_pattern=pattern)

        # tracemalloc makes Python several times slower: its run is for the memory figure only,
        # on the keys session:1* (about a ninth); the peak does not grow with the count (flat).
        report["load_s"].append(server.load())
        subset = server.count(SUBSET_PATTERN)
        run = measured(server, lambda: run_tracemalloc(server, SUBSET_PATTERN))
        expect_deleted(run, subset)
        record("module_in_process_tracemalloc", "  %s keys under tracemalloc (memory only)" % format(subset, ","),
               run, gone_pattern=SUBSET_PATTERN, latency_contender=False)

        report["load_s"].append(server.load())
        run = measured(server, lambda: run_module_process_rss(server, pattern, work_dir))
        expect_deleted(run, args.keys)
        record("module_process", "redis_flush module process (python module.py)", run, gone_pattern=pattern)

        if not args.skip_playbook:
            report["load_s"].append(server.load())
            run = measured(server, lambda: run_playbook(server, pattern, work_dir))
            expect_deleted(run, args.keys)
            record("ansible_playbook", "redis_flush task via ansible-playbook", run, gone_pattern=pattern)

        if not args.skip_redis_cli:
            report["load_s"].append(server.load())
            run = measured(server, lambda: run_redis_cli(server, pattern))
            record("redis_cli_xargs", "redis-cli --scan | xargs redis-cli unlink", run, gone_pattern=pattern)
    finally:
        server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    report["total_s"] = round(time.monotonic() - bench_started, 1)
    report["load_average_end"] = os.getloadavg()
    print_table(rows, report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / ("redis_flush-%s.json" % stamp)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\nresults: %s" % path)
    return 0


def print_table(rows, report):
    base = report["runs"]["module_in_process"]["seconds"]
    cli = report["runs"].get("redis_cli_xargs", {}).get("seconds")
    print("\nredis_flush benchmark: delete %s of %s keys (%s), Redis %s, loopback, no TLS; %s CPUs, "
          "load average %.1f at start, %.1f at end" % (
              format(report["keys_matching"], ","), format(report["keys_total"], ","), report["pattern"],
              report["redis_version"], report["cpus"], report["load_average_start"][0],
              report["load_average_end"][0]))
    header = "%-56s %7s %7s %7s %5s %9s %11s %8s %8s %8s" % (
        "contender", "time s", "work s", "/module", "/cli", "keys/s", "max cmd ms", "p99.9", "noise", "probe")
    print(header)
    print("-" * len(header))
    for label, run in rows:
        outcome = run["outcome"]
        deleted = outcome.get("deleted", report["keys_matching"])
        rate = deleted / run["seconds"] if run["seconds"] else 0
        work = outcome.get("work_s")
        verdict = "" if not run["latency_contender"] else (
            "ok" if (run["server"]["max_command_ms"] or 0) <= GOAL_MS else "OVER")
        print("%-56s %7.2f %7s %7.2f %5s %9s %6.1f %-4s %8.1f %8.1f %8.1f" % (
            label, run["seconds"], "%.2f" % work if work is not None else "-", run["seconds"] / base,
            "%.2f" % (run["seconds"] / cli) if cli else "-",
            format(int(rate), ","), run["server"]["max_command_ms"] or 0, verdict, run["server"]["p999_ms"],
            run["server"]["ping_max_ms"], run["probe"]["max_ms"] or 0))
    mem = report["runs"].get("module_in_process_tracemalloc", {}).get("outcome", {})
    rss = report["runs"].get("module_process", {}).get("outcome", {})
    rss0 = report["runs"].get("module_process_no_match", {}).get("outcome", {})
    print("\nmodule memory: tracemalloc peak %s KiB (Python allocations during the walk); peak RSS of the module "
          "process %s MiB deleting %s keys, %s MiB matching nothing" % (
              mem.get("tracemalloc_peak_kib"), rss.get("max_rss_mib"), format(report["keys_matching"], ","),
              rss0.get("max_rss_mib")))
    for name, label in (("module_process", "redis_flush (module process)"), ("redis_cli_xargs", "redis-cli | xargs")):
        run = report["runs"].get(name)
        if run:
            per = run["server"]["per_command_us"]
            print("%s inside redis-server: %s" % (label, ", ".join(
                "%s p50 %.2f / p99 %.2f / max %.2f ms" % (cmd, v["p50"] / 1000, v["p99"] / 1000, v["p100"] / 1000)
                for cmd, v in sorted(per.items()) if cmd in ("scan", "unlink"))))
    ours = [r for n, r in report["runs"].items() if r["latency_contender"] and n != "redis_cli_xargs"]
    worst = max(ours, key=lambda r: r["server"]["max_command_ms"] or 0)
    noise = max(r["server"]["ping_max_ms"] for r in ours)
    print("redis_flush, slowest single command in any run: %s ms (%s); goal none over %d ms: %s" % (
        worst["server"]["max_command_ms"], worst["server"]["max_command"], GOAL_MS,
        "met" if (worst["server"]["max_command_ms"] or 0) <= GOAL_MS else
        "NOT met (a PING, O(1), took up to %s ms in the same runs: compare with p99.9)" % noise))
    cli_run = report["runs"].get("redis_cli_xargs")
    if cli_run:
        print("redis-cli | xargs, slowest single command: %s ms (%s), %s the goal" % (
            cli_run["server"]["max_command_ms"], cli_run["server"]["max_command"],
            "within" if (cli_run["server"]["max_command_ms"] or 0) <= GOAL_MS else "over"))
    print("data loads (s): %s; total %s s" % (report["load_s"], report["total_s"]))
    print("columns: time = wall clock of the run; work = the module's own work_s (first command to last);\n"
          "  max cmd = slowest single command inside redis-server (INFO latencystats p100, its name in the JSON),\n"
          "  p99.9 = the worst command's 99.9th percentile; noise = slowest PING inside the server in the same\n"
          "  run (O(1): scheduling noise of a shared machine); probe = slowest PING round trip the probe process saw")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
