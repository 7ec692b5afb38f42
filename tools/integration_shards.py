# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every integration target in shards, each with its own sandbox and staged collection.

Most of an integration target's time is one ansible-playbook process on one core
(a task costs 0.3-1 s of CPU) or a wait on the sandbox, so two shards side by
side on a 2-core machine take about half the wall time of one serial run.  Each
shard is isolated the way a second developer would be: its own sandbox state
directory (own ports, own PostgreSQL, Redis, Azurite, Prometheus) and its own
staged copy of the collection (own tests/output, own ./incidents).

Targets are dealt to shards longest first (LPT), by the times in
tests/integration/target-times.json; a target not listed there counts as
DEFAULT_SECONDS.  Refresh that file after adding slow targets:
    tools/integration_shards.py --refresh-times
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS_DIR = os.path.join(ROOT, "tests", "integration", "targets")
TIMES_FILE = os.path.join(ROOT, "tests", "integration", "target-times.json")
DEFAULT_SECONDS = 40
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
# What one shard runs: the same steps as `make integration TARGETS=...`.
SHARD_SCRIPT = (
    'cd "$("$PY" "$ROOT/tools/stage_collection.py")" && '
    '"$PY" "$ROOT/tools/integration_config.py" > tests/integration/integration_config.yml && '
    'ansible-test integration --python "$PYVER" --color no "$@"'
)


def runnable_targets():
    """The targets ansible-test would run by default: not hidden, not setup_ helpers."""
    targets = []
    for path in sorted(glob.glob(os.path.join(TARGETS_DIR, "*", "aliases"))):
        name = os.path.basename(os.path.dirname(path))
        with open(path) as handle:
            aliases = {line.split("#")[0].strip() for line in handle}
        if name.startswith("setup_") or aliases & {"hidden", "disabled", "unsupported"}:
            continue
        targets.append(name)
    return targets


def known_times():
    try:
        with open(TIMES_FILE) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def deal(targets, times, shards):
    """Longest processing time first: each target goes to the shard with the least work so far."""
    loads = [[0.0, []] for _shard in range(shards)]
    for name in sorted(targets, key=lambda t: (-times.get(t, DEFAULT_SECONDS), t)):
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += times.get(name, DEFAULT_SECONDS)
        lightest[1].append(name)
    return [(seconds, names) for seconds, names in loads if names]


def stage_base():
    configured = os.environ.get("SRE_ROLLBACK_STAGE")
    if configured:
        return configured.rstrip("/")
    return os.path.join(os.path.expanduser("~/.cache/sre-rollback"), hashlib.sha1(ROOT.encode()).hexdigest()[:10])


def shard_environment(index, pyver):
    env = dict(os.environ)
    env["SRE_SANDBOX_DIR"] = "%s-shard%d" % (os.environ.get("SRE_SANDBOX_DIR") or os.path.join(ROOT, ".sandbox"), index)
    env["SRE_ROLLBACK_STAGE"] = "%s-shard%d" % (stage_base(), index)
    env.update(PY=PYTHON, ROOT=ROOT, PYVER=pyver, PATH=os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", ""))
    return env


def stream(prefix, pipe, log):
    for line in iter(pipe.readline, ""):
        log.write(line)
        log.flush()
        sys.stdout.write("%s %s" % (prefix, line))
        sys.stdout.flush()


def run(shards, pyver, only):
    plan = deal([t for t in runnable_targets() if not only or t in only], known_times(), shards)
    logs_dir = os.path.join(ROOT, ".cache", "integration")
    os.makedirs(logs_dir, exist_ok=True)
    running = []
    for index, (seconds, names) in enumerate(plan, start=1):
        print("== shard %d: %d targets, about %d s: %s" % (index, len(names), seconds, " ".join(names)), flush=True)
        log_path = os.path.join(logs_dir, "shard%d.log" % index)
        log = open(log_path, "w")
        process = subprocess.Popen(
            [os.path.join(ROOT, "tools", "with_sandbox.sh"), "bash", "-c", SHARD_SCRIPT, "shard"] + names,
            env=shard_environment(index, pyver), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        reader = threading.Thread(target=stream, args=("[shard %d]" % index, process.stdout, log), daemon=True)
        reader.start()
        running.append((index, process, reader, log, log_path, time.monotonic()))
    failed = []
    for index, process, reader, log, log_path, started in running:
        rc = process.wait()
        reader.join()
        log.close()
        print("== shard %d %s in %d s (log: %s)" % (
            index, "passed" if rc == 0 else "FAILED, exit %d" % rc, time.monotonic() - started, log_path), flush=True)
        if rc:
            failed.append(index)
    if failed:
        print("== integration failed in shard(s) %s; each shard's full output is in .cache/integration/" %
              ", ".join(map(str, failed)))
        return 1
    return 0


def refresh_times(shards):
    """Merge the newest ansible-test timing data of every shard's stage into target-times.json."""
    times = known_times()
    for index in range(1, shards + 1):
        reports = sorted(glob.glob(os.path.join(
            "%s-shard%d" % (stage_base(), index), "ansible_collections", "sre", "rollback",
            "tests", "output", "data", "integration-*.json")))
        if not reports:
            continue
        with open(reports[-1]) as handle:
            for name, data in json.load(handle)["targets"].items():
                times[name] = int(data["run_time_seconds"])
    with open(TIMES_FILE, "w") as handle:
        json.dump(dict(sorted(times.items())), handle, indent=2)
        handle.write("\n")
    print("wrote %s (%d targets)" % (TIMES_FILE, len(times)))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--shards", type=int, default=int(os.environ.get("SRE_INTEGRATION_SHARDS", "2")))
    parser.add_argument("--python", default="%d.%d" % sys.version_info[:2], help="ansible-test --python")
    parser.add_argument("--plan", action="store_true", help="print how the targets are dealt and stop")
    parser.add_argument("--refresh-times", action="store_true", help="update target-times.json from the last run")
    parser.add_argument("only", nargs="*", metavar="TARGET", help="run only these targets (default: all)")
    args = parser.parse_args()
    if args.refresh_times:
        return refresh_times(args.shards)
    if args.plan:
        for index, (seconds, names) in enumerate(deal(runnable_targets(), known_times(), args.shards), start=1):
            print("shard %d (about %d s): %s" % (index, seconds, " ".join(names)))
        return 0
    return run(args.shards, args.python, set(args.only))


if __name__ == "__main__":
    sys.exit(main())
