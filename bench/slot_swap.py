#!/usr/bin/env python
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark: one App Service slot swap, four ways, on the local sandbox.

Contenders, all doing the same swap (staging into production of
fundrbolt-sandbox-api) against the same sandbox with the same settings:

1. the bare SDK call (azure-identity + azure-mgmt-web ``begin_swap_slot().result()``),
   timed in this process and as a fresh ``python -c`` process;
2. one ``sre.rollback.webapp_slot_swap`` task run by ``ansible-playbook``,
   and the same task again (the idempotent no-op);
3. ``azure.azcollection.azure_rm_webappslot`` with ``swap:`` run by
   ``ansible-playbook`` from its own venv (``.cache/bench-venv``).

Run it with ``make bench`` (the sandbox must be up and its environment
loaded, which ``tools/with_sandbox.sh`` does).  bench/README.md explains the
output.
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
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BENCH_VENV = ROOT / ".cache" / "bench-venv"

RESOURCE_GROUP = "rg-fundrbolt-sandbox"
APP = "fundrbolt-sandbox-api"
SOURCE_SLOT = "staging"

# The sandbox's swap takes exactly swap_duration_s after the POST, and the SDKs
# poll every Retry-After seconds.  A duration equal to the poll interval makes
# each run a coin toss between one and two polls (the timer and the first poll
# race), which shows up as 1 s of noise; 0.8 s < 1 s makes it one poll for all.
DEFAULT_SWAP_DURATION_S = 0.8
DEFAULT_RETRY_AFTER_S = 1


# ---- the sandbox ------------------------------------------------------------------------


class Sandbox:
    """The sandbox's admin API (never logged, never faulted), and the env it exported."""

    def __init__(self):
        missing = [name for name in ("SRE_SANDBOX_URL", "AZURE_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST",
                                     "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                                     "AZURE_CLIENT_SECRET", "REQUESTS_CA_BUNDLE") if not os.environ.get(name)]
        if missing:
            sys.exit("The sandbox environment is not loaded (%s missing): run this through "
                     "tools/with_sandbox.sh, or `make bench`." % ", ".join(missing))
        self.url = os.environ["SRE_SANDBOX_URL"].rstrip("/")
        self.arm = os.environ["AZURE_ARM_ENDPOINT"].rstrip("/")
        self.authority = os.environ["AZURE_AUTHORITY_HOST"].rstrip("/")
        self.subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
        self.tenant = os.environ["AZURE_TENANT_ID"]
        self.client_id = os.environ["AZURE_CLIENT_ID"]
        self.secret = os.environ["AZURE_CLIENT_SECRET"]
        self._tls = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self._tls, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset(self, swap_duration_s, retry_after_s):
        self._call("POST", "/reset")
        return self._call("PUT", "/settings", {"swap_duration_s": swap_duration_s, "lro_retry_after_s": retry_after_s})

    def calls(self):
        return self._call("GET", "/calls")["calls"]

    def clear_calls(self):
        self._call("DELETE", "/calls")

    def site(self):
        state = self._call("GET", "/state")
        for site in state["sites"]:
            if site["name"] == APP and site["resource_group"] == RESOURCE_GROUP:
                return site
        raise RuntimeError("The sandbox has no site %s/%s" % (RESOURCE_GROUP, APP))

    def images(self):
        """(production image, staging image, swap in progress)."""
        site = self.site()
        slots = site["slots"]
        return slots["production"]["build"]["image"], slots[SOURCE_SLOT]["build"]["image"], bool(site["swap_in_progress"])

    def last_swap_epoch(self):
        """When the sandbox last completed a swap of this site (its own clock, same machine)."""
        status = self.site()["slots"]["production"]["slot_swap_status"]
        if not status:
            return None
        return datetime.datetime.fromisoformat(status["timestampUtc"].replace("Z", "+00:00")).timestamp()

    def wait_idle(self, timeout_s=30):
        """Block until no swap runs, so the next contender never meets a 409."""
        deadline = time.monotonic() + timeout_s
        while self.images()[2]:
            if time.monotonic() > deadline:
                raise RuntimeError("A swap is still running after %s s" % timeout_s)
            time.sleep(0.02)


def summarize_calls(calls):
    """Count the identity/ARM calls of one run and place the swap's LRO in time."""
    def epoch(call):
        return datetime.datetime.fromisoformat(call["time"].replace("Z", "+00:00")).timestamp()

    kinds = {"token": 0, "read": 0, "swap": 0, "poll": 0, "other": 0}
    post = last_poll = None
    for call in calls:
        path = call["path"]
        if "/oauth2/" in path or "openid-configuration" in path:
            kinds["token"] += 1
        elif "/operationResults/" in path:
            kinds["poll"] += 1
            last_poll = epoch(call)
        elif path.endswith("/slotsswap"):
            kinds["swap"] += 1
            post = epoch(call)
        elif call["method"] == "GET" or path.endswith("/list"):
            kinds["read"] += 1
        else:
            kinds["other"] += 1
    return dict(
        count=len(calls),
        kinds=kinds,
        first=epoch(calls[0]) if calls else None,
        last=epoch(calls[-1]) if calls else None,
        swap_post=post,
        last_poll=last_poll,
        paths=["%s %s %s" % (c["method"], re.sub(r"^/subscriptions/[^/]+", "", c["path"]), c["status"]) for c in calls],
    )


# ---- contenders ---------------------------------------------------------------------------

# The bare SDK call: exactly the set-up tests/sandbox/README.md documents.
SDK_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    started = time.perf_counter()
    from azure.identity import ClientSecretCredential
    from azure.mgmt.web import WebSiteManagementClient
    imported = time.perf_counter()
    arm = os.environ["AZURE_ARM_ENDPOINT"].rstrip("/")
    credential = ClientSecretCredential(
        os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"],
        authority=os.environ["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True)
    client = WebSiteManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"],
                                     base_url=arm, credential_scopes=[arm + "/.default"])
    client.web_apps.begin_swap_slot(sys.argv[1], sys.argv[2], sys.argv[3],
                                    {"targetSlot": "production", "preserveVnet": True}).result()
    done = time.perf_counter()
    print(json.dumps({"imports_s": imported - started, "call_s": done - imported}))
""")


class SdkInProcess:
    """The SDK call timed from client creation to result, imports already paid."""

    def __init__(self):
        namespace = {}
        # Same code as the fresh process, minus the process: import once, call per run.
        exec(compile("from azure.identity import ClientSecretCredential\n"
                     "from azure.mgmt.web import WebSiteManagementClient\n", "<sdk>", "exec"), namespace)
        self.credential_class = namespace["ClientSecretCredential"]
        self.client_class = namespace["WebSiteManagementClient"]

    def swap(self, sandbox):
        started = time.perf_counter()
        credential = self.credential_class(sandbox.tenant, sandbox.client_id, sandbox.secret,
                                           authority=sandbox.authority, disable_instance_discovery=True)
        client = self.client_class(credential, sandbox.subscription, base_url=sandbox.arm,
                                   credential_scopes=[sandbox.arm + "/.default"])
        client.web_apps.begin_swap_slot(RESOURCE_GROUP, APP, SOURCE_SLOT,
                                        {"targetSlot": "production", "preserveVnet": True}).result()
        return time.perf_counter() - started


def sdk_fresh_process():
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SDK_SCRIPT, RESOURCE_GROUP, APP, SOURCE_SLOT],
                         check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - started
    return wall, json.loads(out.strip().splitlines()[-1])


class Playbooks:
    """Writes the playbooks and inventories once and runs them, timing the whole process."""

    def __init__(self, workdir, sandbox, az_python=None):
        self.dir = Path(workdir)
        self.tree = self.dir / "tree"
        self.sandbox = sandbox
        # localhost only, run locally with the venv's own python: nothing else to discover.
        (self.dir / "ours.ini").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                           % sys.executable)
        if az_python:
            (self.dir / "az.ini").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                             % az_python)
        play = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        self._write("noop", play + "    - ansible.builtin.meta: noop\n")
        self._write("ping", play + "    - ansible.builtin.ping:\n")
        self._write("ours", play + textwrap.indent(textwrap.dedent("""\
                - sre.rollback.webapp_slot_swap:
                    resource_group: %s
                    name: %s
                    slot: %s
                    expected_build: "{{ expected_build }}"
            """ % (RESOURCE_GROUP, APP, SOURCE_SLOT)), "    "))
        # azure_rm_webappslot reads AZURE_SECRET/AZURE_TENANT, not our names, so say it explicitly.
        # The cloud comes from sre_bench_cloud (see write_cloud_shim), enabled for this task only.
        # Set on the task, so only the module's process sees them (JSON is valid YAML flow style).
        environment = {"SRE_BENCH_AZURE_CLOUD": json.dumps({"arm": sandbox.arm, "authority": sandbox.authority})}
        self._write("az", play + textwrap.indent(textwrap.dedent("""\
                - azure.azcollection.azure_rm_webappslot:
                    resource_group: %s
                    webapp_name: %s
                    name: %s
                    swap:
                      action: swap
                    subscription_id: %s
                    tenant: %s
                    client_id: %s
                    secret: %s
                    cloud_environment: SreSandbox
                    disable_instance_discovery: true
                  environment: %s
            """ % (RESOURCE_GROUP, APP, SOURCE_SLOT, sandbox.subscription, sandbox.tenant,
                   sandbox.client_id, sandbox.secret, json.dumps(environment))), "    "))

    def _write(self, name, text):
        (self.dir / (name + ".yml")).write_text("---\n" + text)

    def run(self, name, bin_dir, inventory, extra_vars=None):
        """Run one playbook; returns (wall seconds, the task's result from the tree callback, start epoch)."""
        result_file = self.tree / "localhost"
        if result_file.exists():
            result_file.unlink()
        env = dict(os.environ,
                   ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   # The tree callback drops each host's last task result as JSON: a cheap way to get
                   # changed / duration_s back without parsing screen output. Enabled for every run.
                   ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                   ANSIBLE_CALLBACK_TREE_DIR=str(self.tree))
        command = [str(Path(bin_dir) / "ansible-playbook"), "-i", str(self.dir / inventory),
                   str(self.dir / (name + ".yml"))]
        for key, value in (extra_vars or {}).items():
            command += ["-e", "%s=%s" % (key, value)]
        start_epoch = time.time()
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        if proc.returncode != 0:
            raise PlaybookFailed(name, proc.stdout[-3000:] + proc.stderr[-3000:], result)
        return wall, result, start_epoch


class PlaybookFailed(RuntimeError):
    def __init__(self, name, output, result):
        super().__init__("playbook %s failed: %s" % (name, result.get("msg") or output.strip().splitlines()[-1:]))
        self.output = output
        self.result = result


# ---- the azure.azcollection venv -------------------------------------------------------------

# A .pth line runs at interpreter start-up.  azcollection 3.x resolves
# cloud_environment only against azure.cli.core.cloud's built-in clouds (its
# "metadata discovery URL" path matches the URL against those same built-ins
# and never fetches anything), so without this no private endpoint is
# reachable.  The shim adds one named cloud, and only in a process that has
# SRE_BENCH_AZURE_CLOUD set: the playbook sets it on the azure_rm_webappslot
# task alone, so the controller and every other process are untouched.
CLOUD_SHIM = textwrap.dedent('''\
    # Written by bench/slot_swap.py; see CLOUD_SHIM there for why.
    import json
    import os

    _spec = os.environ.get("SRE_BENCH_AZURE_CLOUD")
    if _spec:
        from azure.cli.core import cloud as _cloud

        _spec = json.loads(_spec)
        SRE_SANDBOX = _cloud.Cloud(
            "SreSandbox",
            endpoints=_cloud.CloudEndpoints(
                management=_spec["arm"] + "/",
                resource_manager=_spec["arm"] + "/",
                active_directory=_spec["authority"],
                active_directory_resource_id=_spec["arm"] + "/",
            ),
            suffixes=_cloud.CloudSuffixes(),
        )
        _cloud.SRE_SANDBOX = SRE_SANDBOX  # azcollection finds clouds with inspect.getmembers(cloud)
        _cloud.KNOWN_CLOUDS.append(SRE_SANDBOX)
''')


def ensure_az_venv(log):
    """Create .cache/bench-venv once: the newest `ansible` and azcollection's own requirements."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if not stamp.exists():
        log("Creating %s (newest ansible + azcollection requirements; takes several minutes, once)" % BENCH_VENV)
        # Base interpreter, not this venv's, so the bench venv does not depend on .venv.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run(pip + ["--upgrade", "ansible"], check=True)
        requirements = azcollection_dir(python) / "requirements.txt"
        subprocess.run(pip + ["-r", str(requirements)], check=True)
        stamp.write_text("installed %s\n" % datetime.datetime.now().isoformat())
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        check=True, capture_output=True, text=True).stdout.strip())
    (site_packages / "sre_bench_cloud.py").write_text(CLOUD_SHIM)
    (site_packages / "sre_bench_cloud.pth").write_text("import sre_bench_cloud\n")
    return python


def azcollection_dir(python):
    out = subprocess.run([str(python), "-c", "import ansible_collections.azure.azcollection as m; print(m.__path__[0])"],
                         check=True, capture_output=True, text=True).stdout
    return Path(out.strip())


def versions(python, names):
    code = ("import importlib.metadata as m, json, sys\n"
            "print(json.dumps({n: (m.version(n) if n != 'python' else sys.version.split()[0]) for n in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code] + names, capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


# ---- where our task's time goes -------------------------------------------------------------------

IMPORT_PROBE = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])  # .cache/collections: where ansible_collections.sre.rollback lives
    steps = [
        ("ansible.module_utils.basic", "import ansible.module_utils.basic"),
        ("azure.identity", "import azure.identity"),
        ("azure.mgmt.web", "from azure.mgmt.web import WebSiteManagementClient"),
        ("sre.rollback module_utils + module",
         "import ansible_collections.sre.rollback.plugins.modules.webapp_slot_swap"),
    ]
    out = {}
    for name, statement in steps:
        started = time.perf_counter()
        exec(statement)
        out[name] = time.perf_counter() - started
    print(json.dumps(out))
""")


def measure_imports(samples):
    """Import cost of what the module loads, in load order, each step on top of the previous."""
    runs = []
    for _sample in range(samples):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(ROOT / ".cache" / "collections")],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out))
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def heaviest_imports(top=8):
    """`python -X importtime` of the SDK imports, self time summed per package: where the import time goes."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import azure.identity; from azure.mgmt.web import WebSiteManagementClient"],
                          capture_output=True, text=True, check=False)
    per_package = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if not match:
            continue
        parts = match.group(2).split(".")
        # azure.* is one namespace of many distributions: keep azure.core, azure.identity, azure.mgmt.web apart.
        package = ".".join(parts[:3] if parts[:2] == ["azure", "mgmt"] else parts[:2] if parts[0] == "azure" else parts[:1])
        per_package[package] = per_package.get(package, 0) + int(match.group(1)) / 1e6
    ranked = sorted(per_package.items(), key=lambda item: item[1], reverse=True)[:top]
    return [{"package": name, "self_s": round(seconds, 3)} for name, seconds in ranked]


def interpreter_start(samples):
    times = []
    for _sample in range(samples):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ---- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandbox = Sandbox()
        self.samples = {}          # contender -> [seconds]
        self.calls = {}            # contender -> [summarize_calls(...)]
        self.extra = {}            # contender -> [per-run details]
        self.notes = []
        self.not_measured = {}     # contender -> reason

    def log(self, message):
        print(message, file=sys.stderr, flush=True)

    def record(self, name, seconds, calls=None, **details):
        self.samples.setdefault(name, []).append(seconds)
        if calls is not None:
            self.calls.setdefault(name, []).append(calls)
        if details:
            self.extra.setdefault(name, []).append(details)

    def expected_next(self):
        """The build that a swap now moves into production: whatever staging runs."""
        self.sandbox.wait_idle()
        production, staging, _running = self.sandbox.images()
        return production, staging

    def check_swapped(self, contender, before_production, staging):
        production, _staging, _running = self.sandbox.images()
        if production != staging or production == before_production:
            raise RuntimeError("%s did not swap: production runs %s, expected %s" % (contender, production, staging))

    # -- one run of each contender ---------------------------------------------------------------

    def run_sdk_in_process(self, sdk):
        before, staging = self.expected_next()
        self.sandbox.clear_calls()
        seconds = sdk.swap(self.sandbox)
        self.check_swapped("sdk in-process", before, staging)
        self.record("sdk_in_process", seconds, summarize_calls(self.sandbox.calls()))

    def run_sdk_fresh(self):
        before, staging = self.expected_next()
        self.sandbox.clear_calls()
        wall, inner = sdk_fresh_process()
        self.check_swapped("sdk fresh process", before, staging)
        self.record("sdk_fresh_process", wall, summarize_calls(self.sandbox.calls()), **inner)

    def run_ours(self, playbooks):
        before, staging = self.expected_next()
        expected = staging.rsplit(":", 1)[1]  # the tag, as an incident ticket names it
        self.sandbox.clear_calls()
        wall, result, start_epoch = playbooks.run("ours", ROOT / ".venv" / "bin", "ours.ini",
                                                  {"expected_build": expected})
        calls = summarize_calls(self.sandbox.calls())
        self.check_swapped("webapp_slot_swap", before, staging)
        if not result.get("changed") or not result.get("swapped"):
            raise RuntimeError("webapp_slot_swap reported no swap: %s" % result)
        self.record("ours", wall, calls, duration_s=result["duration_s"], start_epoch=start_epoch,
                    progress=result["operation"]["progress"])
        self.record("ours_duration_s", result["duration_s"])

        # The same task again: production already runs the build, so nothing may change.
        self.sandbox.clear_calls()
        wall, result, _start = playbooks.run("ours", ROOT / ".venv" / "bin", "ours.ini", {"expected_build": expected})
        if result.get("changed"):
            raise RuntimeError("the second webapp_slot_swap run changed something: %s" % result)
        self.record("ours_rerun", wall, summarize_calls(self.sandbox.calls()), duration_s=result["duration_s"])
        self.record("ours_rerun_duration_s", result["duration_s"])

    def run_az(self, playbooks, az_bin):
        before, staging = self.expected_next()
        self.sandbox.clear_calls()
        wall, result, start_epoch = playbooks.run("az", az_bin, "az.ini")
        # The module returned without waiting; the swap finishes (or not) on the sandbox's clock.
        self.sandbox.wait_idle()
        completed = self.sandbox.last_swap_epoch()
        calls = summarize_calls(self.sandbox.calls())
        self.check_swapped("azure_rm_webappslot", before, staging)
        self.record("az", wall, calls, changed=result.get("changed"))
        self.record("az_until_swapped", completed - start_epoch)
        return result

    def run_baselines(self, playbooks, az_bin):
        """Playbook runs that swap nothing: what ansible-playbook itself costs, per controller."""
        self.record("noop_playbook", playbooks.run("noop", ROOT / ".venv" / "bin", "ours.ini")[0])
        self.record("ping_playbook", playbooks.run("ping", ROOT / ".venv" / "bin", "ours.ini")[0])
        if az_bin:
            self.record("az_noop_playbook", playbooks.run("noop", az_bin, "az.ini")[0])

    # -- azcollection twice: what a re-run does ------------------------------------------------------

    def az_twice(self, playbooks, az_bin):
        runs = []
        for attempt in (1, 2):
            before, _staging, _production_host = self.sandbox.images()
            _wall, result, _start = playbooks.run("az", az_bin, "az.ini")
            self.sandbox.wait_idle()
            after, _staging, _production_host = self.sandbox.images()
            runs.append({"run": attempt, "changed": result.get("changed"),
                         "production_before": before, "production_after": after})
        return runs

    def ours_twice(self, playbooks):
        runs = []
        _production, staging = self.expected_next()
        expected = staging.rsplit(":", 1)[1]
        for attempt in (1, 2):
            before, _staging, _production_host = self.sandbox.images()
            _wall, result, _start = playbooks.run("ours", ROOT / ".venv" / "bin", "ours.ini",
                                                  {"expected_build": expected})
            after, _staging, _production_host = self.sandbox.images()
            runs.append({"run": attempt, "changed": result.get("changed"), "swapped": result.get("swapped"),
                         "production_before": before, "production_after": after})
        return runs

    # -- everything -----------------------------------------------------------------------------------

    def main(self):
        args = self.args
        settings = self.sandbox.reset(args.swap_duration, args.retry_after)
        self.log("Sandbox reset; settings %s" % settings)

        az_python = az_bin = None
        if args.skip_azcollection:
            self.not_measured["az"] = "skipped (--skip-azcollection)"
        else:
            try:
                az_python = ensure_az_venv(self.log)
                az_bin = az_python.parent
            except (subprocess.CalledProcessError, OSError) as error:
                self.not_measured["az"] = "could not build %s: %s" % (BENCH_VENV, error)

        sdk = SdkInProcess()
        with tempfile.TemporaryDirectory(prefix="sre-bench-") as workdir:
            playbooks = Playbooks(workdir, self.sandbox, az_python)
            if az_bin:
                try:  # one try before the timed runs: fail fast with the reason, keep the others going
                    self.run_az(playbooks, az_bin)
                except (PlaybookFailed, RuntimeError) as error:
                    self.not_measured["az"] = str(error)
                    self.notes.append("azure_rm_webappslot output: %s" % getattr(error, "output", "")[-1500:])
                    az_bin = None
            # Warm-up (with the azcollection try above): first runs pay cold disk caches and
            # .pyc writes; none of it is counted.
            self.run_sdk_in_process(sdk)
            self.run_ours(playbooks)
            self.run_baselines(playbooks, az_bin)
            for bucket in (self.samples, self.calls, self.extra):
                bucket.clear()

            for run in range(1, args.runs + 1):
                self.log("run %d/%d" % (run, args.runs))
                # Interleaved, so drift on the machine spreads over every contender alike.
                self.run_sdk_in_process(sdk)
                self.run_sdk_fresh()
                self.run_ours(playbooks)
                if az_bin:
                    self.run_az(playbooks, az_bin)
                self.run_baselines(playbooks, az_bin)

            reruns = {"ours": self.ours_twice(playbooks)}
            if az_bin:
                reruns["azure_rm_webappslot"] = self.az_twice(playbooks, az_bin)

        self.log("Measuring interpreter start and imports")
        breakdown_inputs = dict(
            interpreter_start_s=interpreter_start(args.runs),
            imports_s=measure_imports(args.runs),
            heaviest_imports=heaviest_imports(),
        )
        report = self.report(settings, reruns, breakdown_inputs, az_python)
        self.sandbox.reset(args.swap_duration, args.retry_after)
        return report

    # -- reporting ------------------------------------------------------------------------------------

    def med(self, name):
        values = self.samples.get(name)
        return statistics.median(values) if values else None

    def report(self, settings, reruns, inputs, az_python):
        noop = self.med("noop_playbook")
        az_noop = self.med("az_noop_playbook")
        derived = {}
        if "ours" in self.samples:
            derived["ours_task"] = [s - noop for s in self.samples["ours"]]
            derived["ours_rerun_task"] = [s - noop for s in self.samples["ours_rerun"]]
        if "az" in self.samples and az_noop is not None:
            derived["az_task"] = [s - az_noop for s in self.samples["az"]]
            derived["az_task_until_swapped"] = [s - az_noop for s in self.samples["az_until_swapped"]]
        self.samples.update(derived)

        rows = [
            ("sdk_in_process", "bare SDK, in-process (client creation -> result)"),
            ("sdk_fresh_process", "bare SDK, fresh `python -c` (start+imports+call)"),
            ("ours", "webapp_slot_swap: ansible-playbook wall"),
            ("ours_task", "webapp_slot_swap: task alone (wall - no-op playbook)"),
            ("ours_duration_s", "webapp_slot_swap: module duration_s"),
            ("ours_rerun", "webapp_slot_swap 2nd run (no-op): playbook wall"),
            ("ours_rerun_task", "webapp_slot_swap 2nd run (no-op): task alone"),
            ("az", "azure_rm_webappslot: ansible-playbook wall"),
            ("az_task", "azure_rm_webappslot: task alone (wall - no-op)"),
            ("az_until_swapped", "azure_rm_webappslot: playbook start -> swap done"),
            ("az_task_until_swapped", "azure_rm_webappslot: task start -> swap done"),
            ("noop_playbook", "reference: no-op playbook (repo venv)"),
            ("ping_playbook", "reference: ping playbook (repo venv)"),
            ("az_noop_playbook", "reference: no-op playbook (bench venv)"),
        ]
        base_in, base_fresh = self.med("sdk_in_process"), self.med("sdk_fresh_process")
        table = []
        for key, label in rows:
            values = self.samples.get(key)
            if not values:
                continue
            median = statistics.median(values)
            calls = self.calls.get(key)
            table.append(dict(key=key, contender=label, median_s=median, min_s=min(values), max_s=max(values),
                              n=len(values), vs_sdk_in_process=median / base_in, vs_sdk_fresh=median / base_fresh,
                              api_calls=statistics.median(c["count"] for c in calls) if calls else None))

        breakdown = self.breakdown(inputs)
        verdict = self.verdict()
        return dict(
            benchmark="slot_swap",
            timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            swap="%s into production of %s/%s" % (SOURCE_SLOT, RESOURCE_GROUP, APP),
            runs=self.args.runs,
            sandbox_settings=settings,
            task_time_method="no-op playbook subtraction (ansible.posix.profile_tasks is not installed in the "
                             "repo venv); the module's own duration_s is shown too",
            versions=dict(repo=versions(sys.executable, ["python", "ansible-core", "azure-mgmt-web", "azure-identity",
                                                         "azure-core", "msal"]),
                          bench_venv=versions(az_python, ["python", "ansible", "ansible-core", "azure-mgmt-web",
                                                          "azure-identity", "azure-core", "msal", "azure-cli-core"])
                          if az_python else {}),
            table=table,
            breakdown=breakdown,
            verdict=verdict,
            reruns=reruns,
            not_measured=self.not_measured,
            notes=self.notes,
            samples=self.samples,
            api_calls={key: [dict(c.items()) for c in calls] for key, calls in self.calls.items()},
            details=self.extra,
        )

    def breakdown(self, inputs):
        """Where one webapp_slot_swap task's time goes, medians over the runs."""
        noop, ping = self.med("noop_playbook"), self.med("ping_playbook")
        runs = []
        for calls, extra, wall in zip(self.calls["ours"], self.extra["ours"], self.samples["ours"]):
            start = extra["start_epoch"]
            runs.append(dict(
                start_to_first_call=calls["first"] - start,
                auth_and_reads=calls["swap_post"] - calls["first"],
                lro_wait=calls["last_poll"] - calls["swap_post"],
                verify_reads=calls["last"] - calls["last_poll"],
                last_call_to_exit=start + wall - calls["last"],
            ))
        phases = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        kinds = self.calls["ours"][-1]["kinds"]
        imports = inputs["imports_s"]
        return dict(
            timeline_s=phases,
            timeline_help=dict(
                start_to_first_call="ansible-playbook start, module transfer, interpreter start, imports, "
                                    "argument parsing, credential set-up (ends at the first token call)",
                auth_and_reads="token, then the reads that decide (site, slot, both configurations)",
                lro_wait="slotsswap POST to the poll that reported completion",
                verify_reads="reading both slots again to verify the fingerprint moved",
                last_call_to_exit="result back to the controller, ansible-playbook shutdown",
            ),
            api_calls=kinds,
            api_call_list=self.calls["ours"][-1]["paths"],
            rerun_api_calls=self.calls["ours_rerun"][-1]["kinds"],
            module_duration_s=self.med("ours_duration_s"),
            lro_progress=self.extra["ours"][-1]["progress"],
            no_op_playbook_s=noop,
            module_execution_overhead_s=ping - noop,
            interpreter_start_s=inputs["interpreter_start_s"],
            imports_s=imports,
            imports_total_s=sum(imports.values()),
            heaviest_sdk_imports=inputs["heaviest_imports"],
        )

    def verdict(self):
        out = {}
        ours = self.med("ours_task")
        out["overhead_vs_sdk_in_process_s"] = ours - self.med("sdk_in_process")
        out["overhead_vs_sdk_fresh_process_s"] = ours - self.med("sdk_fresh_process")
        out["goal_overhead_under_1s_vs_in_process"] = out["overhead_vs_sdk_in_process_s"] < 1.0
        if self.samples.get("az_task"):
            out["ours_task_minus_az_task_s"] = ours - self.med("az_task")
            out["ours_task_minus_az_task_until_swapped_s"] = ours - self.med("az_task_until_swapped")
            out["goal_not_slower_than_azcollection_until_swapped"] = ours <= self.med("az_task_until_swapped")
        return out


# ---- output -------------------------------------------------------------------------------------


def print_report(report):
    print("\nSlot swap benchmark: %s, %d runs each (medians; min-max)" % (report["swap"], report["runs"]))
    print("Sandbox settings (all contenders): swap_duration_s=%s, lro_retry_after_s=%s"
          % (report["sandbox_settings"]["swap_duration_s"], report["sandbox_settings"]["lro_retry_after_s"]))
    print("Task time: %s\n" % report["task_time_method"])
    header = "%-56s %7s %7s %7s  %7s %7s  %5s" % ("contender", "median", "min", "max", "/sdk-in", "/sdk-py", "calls")
    print(header)
    print("-" * len(header))
    for row in report["table"]:
        calls = "%5d" % row["api_calls"] if row["api_calls"] is not None else "    -"
        print("%-56s %6.2fs %6.2fs %6.2fs  %6.2fx %6.2fx  %s" % (
            row["contender"], row["median_s"], row["min_s"], row["max_s"],
            row["vs_sdk_in_process"], row["vs_sdk_fresh"], calls))
    for contender, reason in report["not_measured"].items():
        print("%-56s not measured: %s" % ("azure_rm_webappslot" if contender == "az" else contender, reason))

    for note in report["notes"]:
        print("note: " + note)

    b = report["breakdown"]
    print("\nWhere one webapp_slot_swap task's time goes (medians)")
    print("  timeline of a run, from the sandbox's call log:")
    for key, seconds in b["timeline_s"].items():
        print("    %-20s %6.3fs  %s" % (key, seconds, b["timeline_help"][key]))
    print("  API calls of a swapping run: %s" % ", ".join("%s %d" % kv for kv in b["api_calls"].items() if kv[1]))
    print("  API calls of the no-op re-run: %s"
          % ", ".join("%s %d" % kv for kv in b["rerun_api_calls"].items() if kv[1]))
    print("  module duration_s (argument parsing -> exit_json): %.3fs; LRO progress %s"
          % (b["module_duration_s"], b["lro_progress"]))
    print("  no-op playbook %.3fs; running any module (ping - no-op) %.3fs; python start %.3fs"
          % (b["no_op_playbook_s"], b["module_execution_overhead_s"], b["interpreter_start_s"]))
    print("  imports (each on top of the previous, %.3fs in all):" % b["imports_total_s"])
    for name, seconds in b["imports_s"].items():
        print("    %-40s %6.3fs" % (name, seconds))
    print("  SDK import time by package (python -X importtime, self time summed):")
    for row in b["heaviest_sdk_imports"]:
        print("    %-40s %6.3fs" % (row["package"], row["self_s"]))

    v = report["verdict"]
    print("\nGoals")
    print("  our task minus the bare SDK call: %+.2fs in-process, %+.2fs fresh process (goal < 1 s in-process: %s)"
          % (v["overhead_vs_sdk_in_process_s"], v["overhead_vs_sdk_fresh_process_s"],
             "met" if v["goal_overhead_under_1s_vs_in_process"] else "NOT met"))
    if "ours_task_minus_az_task_s" in v:
        print("  our task minus azure_rm_webappslot's task: %+.2fs (it returns before the swap is done); "
              "minus its task until the swap is done: %+.2fs (goal <= 0: %s)"
              % (v["ours_task_minus_az_task_s"], v["ours_task_minus_az_task_until_swapped_s"],
                 "met" if v["goal_not_slower_than_azcollection_until_swapped"] else "NOT met"))

    print("\nRunning each twice (same arguments)")
    for tool, runs in report["reruns"].items():
        for run in runs:
            print("  %-20s run %d: changed=%s, production %s -> %s" % (
                tool, run["run"], run["changed"], run["production_before"].rsplit(":", 1)[1],
                run["production_after"].rsplit(":", 1)[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=7, help="repetitions per contender (default 7)")
    parser.add_argument("--swap-duration", type=float, default=DEFAULT_SWAP_DURATION_S,
                        help="sandbox swap_duration_s (default %(default)s)")
    parser.add_argument("--retry-after", type=int, default=DEFAULT_RETRY_AFTER_S,
                        help="sandbox lro_retry_after_s (default %(default)s)")
    parser.add_argument("--skip-azcollection", action="store_true", help="do not build or run the azcollection venv")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be 1 or more")

    report = Bench(args).main()
    print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / ("slot_swap-%s.json" % datetime.datetime.now().strftime("%Y%m%dT%H%M%S"))
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\nJSON: %s" % path.relative_to(ROOT))


if __name__ == "__main__":
    main()
