#!/usr/bin/env python
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark: `alembic_migration` downgrade -1 versus `alembic downgrade -1`, on the same real database.

Contenders, each taking the sample app (tests/sandbox/apps/fundrbolt_api) from head one revision down
on the sandbox's PostgreSQL (the database is put back at head, untimed, before every run):

1. `alembic downgrade -1` run directly (the app's alembic console script): the runbook's command;
2. the module's work function in-process (`migrate(AlembicApp(...), "downgrade", "-1")`): what the
   module itself costs (one run of the app's interpreter that reads, checks, migrates, re-reads);
3. one `sre.rollback.alembic_migration` task through `ansible-playbook`, its wall time, and minus a
   one-`debug`-task playbook (ansible-playbook's own start-up), and the module's own `duration_s`.

Contenders are interleaved run by run so machine drift hits all alike; one warm-up round is not
counted. Uses the sandbox in $SRE_SANDBOX_DIR (env.json), else starts nothing and says so: run it
as `tools/with_sandbox.sh .venv/bin/python bench/alembic_downgrade.py` or against a running one.
It RESETS that sandbox (the application database is recreated empty) at the start and the end.
Results: a table on stdout, everything in bench/results/alembic_downgrade-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
APP = ROOT / "tests" / "sandbox" / "apps" / "fundrbolt_api"
VENV_BIN = Path(sys.executable).parent
COLLECTIONS = ROOT / ".cache" / "collections"

sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.sre.rollback.plugins.module_utils.alembic_migration import AlembicApp, migrate  # noqa: E402


def sandbox_env():
    state_dir = os.environ.get("SRE_SANDBOX_DIR") or str(ROOT / ".sandbox")
    try:
        with open(os.path.join(state_dir, "env.json"), encoding="utf-8") as handle:
            env = json.load(handle)
    except FileNotFoundError:
        sys.exit("No running sandbox in %s: start one (tools/with_sandbox.sh) first." % state_dir)
    if "SRE_SANDBOX_PG_URL" not in env:
        sys.exit("The sandbox in %s runs without the postgres provider." % state_dir)
    return env


def admin(env, method, path):
    context = ssl.create_default_context(cafile=env["REQUESTS_CA_BUNDLE"])
    request = urllib.request.Request(env["SRE_SANDBOX_URL"] + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, context=context, timeout=60) as response:
        return json.loads(response.read() or b"null")


def alembic_cli(env, *args):
    cmd = [str(VENV_BIN / "alembic"), "-c", str(APP / "alembic.ini"), *args]
    proc = subprocess.run(cmd, cwd=APP, env=dict(os.environ, DATABASE_URL=env["SRE_SANDBOX_PG_URL"]),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("alembic %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))
    return proc


def timed(func):
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
  tasks:
{tasks}
    - name: Report
      ansible.builtin.debug:
        msg: "BENCH_DURATION={{{{ result.duration_s | default('') }}}} CHANGED={{{{ result.changed | default('') }}}}"
"""

TASK = """
    - name: Downgrade one revision below head
      sre.rollback.alembic_migration:
        app_path: {app}
        python: {python}
        database_url: "{{{{ lookup('ansible.builtin.env', 'BENCH_DATABASE_URL') }}}}"
        action: downgrade
        target: "-1"
      register: result
"""


def write_playbooks(directory):
    python = sys.executable
    task_book = os.path.join(directory, "downgrade.yml")
    noop_book = os.path.join(directory, "noop.yml")
    with open(task_book, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK.format(python=python, tasks=TASK.format(app=APP, python=python)))
    with open(noop_book, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK.format(python=python, tasks="    - {name: No-op, ansible.builtin.set_fact: {result: {}}}"))
    return task_book, noop_book


def run_playbook(env, book):
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", book]
    child_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                     BENCH_DATABASE_URL=env["SRE_SANDBOX_PG_URL"], ANSIBLE_NOCOLOR="1")
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook failed:\n" + proc.stdout[-3000:])
    match = re.search(r"BENCH_DURATION=([0-9.]*) CHANGED=(\w*)", proc.stdout)
    duration = float(match.group(1)) if match and match.group(1) else None
    return wall, duration, (match.group(2) if match else None)


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = sandbox_env()
    admin(env, "POST", "/reset")
    alembic_cli(env, "upgrade", "head")
    app = AlembicApp(str(APP), python=sys.executable, database_url=env["SRE_SANDBOX_PG_URL"])

    def cli():
        elapsed, _unused = timed(lambda: alembic_cli(env, "downgrade", "-1"))
        return elapsed

    def in_process():
        elapsed, (changed, result) = timed(lambda: migrate(app, "downgrade", "-1"))
        assert changed and result["current"] == "2b3c4d5e6f70", result
        return elapsed

    samples = {"alembic downgrade -1 (CLI)": [], "alembic_migration work function (in-process)": [],
               "alembic_migration via ansible-playbook (wall)": [], "module duration_s": [],
               "ansible-playbook one set_fact task (wall)": []}
    with tempfile.TemporaryDirectory() as directory:
        task_book, noop_book = write_playbooks(directory)

        def playbook():
            wall, duration, changed = run_playbook(env, task_book)
            assert changed == "True", changed
            return wall, duration

        for round_index in range(args.runs + 1):
            record = round_index > 0  # round 0 warms caches
            for name, func in (("alembic downgrade -1 (CLI)", cli),
                               ("alembic_migration work function (in-process)", in_process),
                               ("alembic_migration via ansible-playbook (wall)", playbook)):
                alembic_cli(env, "upgrade", "head")  # untimed: back at head
                value = func()
                if isinstance(value, tuple):
                    value, duration = value
                    if record:
                        samples["module duration_s"].append(duration)
                if record:
                    samples[name].append(value)
            noop_wall = run_playbook(env, noop_book)[0]
            if record:
                samples["ansible-playbook one set_fact task (wall)"].append(noop_wall)
            print("round %d/%d done" % (round_index, args.runs), file=sys.stderr)
    admin(env, "POST", "/reset")

    stats = {name: summary(values) for name, values in samples.items()}
    cli_median = stats["alembic downgrade -1 (CLI)"]["median"]
    task_alone = [w - n for w, n in zip(samples["alembic_migration via ansible-playbook (wall)"],
                                        samples["ansible-playbook one set_fact task (wall)"])]
    stats["alembic_migration task alone (wall minus one-task playbook)"] = summary(task_alone)
    print("\n%-62s %8s %8s %8s %8s" % ("contender (downgrade -1, same database)", "median", "min", "max", "/cli"))
    for name, row in stats.items():
        print("%-62s %7.3fs %7.3fs %7.3fs %7.2fx" % (
            name, row["median"], row["min"], row["max"], row["median"] / cli_median))
    ratio = stats["alembic_migration work function (in-process)"]["median"] / cli_median
    print("\nmodule work / alembic CLI: %.2fx (goal < 1.5x) -> %s" % (ratio, "met" if ratio < 1.5 else "NOT met"))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / ("alembic_downgrade-%s.json" % stamp)
    path.write_text(json.dumps({"runs": args.runs, "samples": samples, "stats": stats, "ratio_work_vs_cli": ratio,
                                "load_average": os.getloadavg()}, indent=2) + "\n")
    print("results: %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
