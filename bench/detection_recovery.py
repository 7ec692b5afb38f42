#!/usr/bin/env python
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark: detection latency and recovery time of a P1 slot-swap rollback by playbooks/auto-rollback.yml.

Each run, on the sandbox (reset first): production of rg-fundrbolt-sandbox/fundrbolt-sandbox-api runs a good
build, staging the previous good build. The real `ansible-playbook playbooks/auto-rollback.yml` starts watching
production (`rollback_trigger`, source http by default, 3 consecutive failed probes, `-e interval`). Once the
watch is probing, at a random phase of its probe schedule, the benchmark turns production's build bad through
the sandbox admin API (`PUT /_sandbox/builds {"<image>": {"healthy": false}}`): that request is t0. The
trigger fires; the playbook, armed before the watch (checklist, lock, target build), runs one task: `webapp_slot_swap`
probes the previous build in its own slot and swaps it back in.

The clocks, all wall-clock on this machine:
  t0           the benchmark's own time stamp, taken just before the admin request that turns the build bad;
  fired_at     `rollback_trigger`'s own result (written into the incident record by the recovery_timeline
               callback, whose result keys the benchmark extends with started_at/fired_at/evaluations);
  swap POST    the sandbox's ARM call log (`POST .../slotsswap`);
  swap done    the sandbox's `slotSwapStatus.timestampUtc` (the platform's operation ends there);
  healthy      the first 200 from production's /health after t0, from a thread polling it every 25 ms.

Derived: detection = fired_at - t0 against the policy's bound 3 x interval (goal: within one interval of it);
recovery = healthy - t0; platform time = swap done - swap POST; the waits the policy mandates after the trigger =
the source-slot probe's (samples - 1) x interval (read from the playbook's swap task, else the module's defaults);
tool's share = healthy - fired_at - mandated waits - platform (goal under 2 s): what the tool adds from the moment
the trigger fires. (recovery - bound - mandated - platform, the older accounting, is kept as a column: it also
credits a detection faster than the bound.) bench/README.md explains every column.
It RESETS the sandbox it runs against, at the start of every run and at the end.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from sandbox_admin import SandboxAdmin

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BIN = ROOT / ".venv" / "bin"
PLAYBOOK = ROOT / "playbooks" / "auto-rollback.yml"
SWAP_MODULE = ROOT / "plugins" / "modules" / "webapp_slot_swap.py"

HOST = "fundrbolt-api-sandbox"
RESOURCE_GROUP = "rg-fundrbolt-sandbox"
SITE = "fundrbolt-sandbox-api"
# The poller's cadence: the resolution of "healthy again" (and of "turned bad", a check on t0).
POLL_S = 0.025
# How often the tree's CPU is sampled from t0 on (to cut it at fired_at).
CPU_SAMPLE_S = 0.1
PLAYBOOK_TIMEOUT_S = 240
# Result keys the incident record keeps: the callback's defaults plus the trigger's own clocks (no secrets).
INCIDENT_RESULT_KEYS = ("before,after,duration_s,healthy,verdict,error_rate,swapped,rolled_back,reverted,rc,"
                        "attempts,skip_reason,started_at,fired_at,evaluations,watched_s,fired")
WATCH_TASK = "watch the triggers"
SWAP_TASK = "swap the last known good build into"


def log(message):
    print(message, file=sys.stderr, flush=True)


def epoch(iso_text):
    return datetime.datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


# ---- the sandbox ------------------------------------------------------------------------------


class Sandbox(SandboxAdmin):
    """The admin API (never logged, never faulted) of the sandbox whose environment is loaded."""

    def __init__(self):
        super().__init__(("AZURE_ARM_ENDPOINT",), "bench-detection")

    def site(self):
        state = self.call("GET", "/state")
        return next(s for s in state["sites"] if s["resource_group"] == RESOURCE_GROUP and s["name"] == SITE)

    def production_requests(self):
        """Requests production's data plane has served since the reset (the monitor stand-in counts them)."""
        apps = self.call("GET", "/monitor")["apps"]
        return apps.get("/".join((RESOURCE_GROUP, SITE, "production")).lower(), {}).get("requests", 0)

    @staticmethod
    def prometheus_queries():
        """Instant queries Prometheus has answered (its own metrics): only the watch queries its API here."""
        with urllib.request.urlopen(os.environ["SRE_SANDBOX_PROMETHEUS_URL"] + "/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line)

    def cpu_seconds(self):
        try:
            runtime = json.loads((Path(os.environ["SRE_SANDBOX_DIR"]) / "runtime.json").read_text())
            fields = Path("/proc/%d/stat" % runtime["pid"]).read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (KeyError, OSError, ValueError):
            return None


def tree_cpu_seconds(pid):
    """CPU seconds (user + system) of a process and all its descendants, living or already reaped by them.

    Other people's load does not change it: on a busy machine it is the honest measure of what the tool
    costs. Each living process counts its own time plus that of the children it has reaped (those are no
    longer in the tree, so nothing is counted twice).
    """
    parents, times = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path("/proc/%s/stat" % entry).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(p, 0.0) for p in tree)


class CpuSampler(threading.Thread):
    """The CPU of ansible-playbook's tree every CPU_SAMPLE_S from t0, to cut it at fired_at afterwards."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []       # (epoch, tree CPU seconds)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.samples.append((time.time(), tree_cpu_seconds(self.pid)))
            self.stopping.wait(CPU_SAMPLE_S)

    def at(self, when):
        """The tree's CPU at the last sample at or before `when` (a little early: counts a little more after it)."""
        before = [cpu for t, cpu in self.samples if t <= when]
        return before[-1] if before else None


class HealthPoller(threading.Thread):
    """GET production's /health every POLL_S over one keep-alive connection; notes each change of state.

    `sent` counts requests before they go out, so `production_requests() - sent` never over-counts the
    watch's own probes (the sandbox counts a request before it answers).
    """

    def __init__(self, url, tls):
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.tls = tls
        self.sent = 0
        self.changes = []       # (epoch, healthy, version)
        self.stopping = threading.Event()
        self.error = None
        # Set to ansible-playbook's pid after t0: the CPU its tree has used when production is healthy again.
        self.cpu_pid = None
        self.cpu_at_healthy = None

    def run(self):
        connection = None
        last = None
        while not self.stopping.is_set():
            try:
                if connection is None:
                    connection = http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=5)
                self.sent += 1
                connection.request("GET", "/health")
                response = connection.getresponse()
                body = response.read()
                now = time.time()
                healthy = response.status == 200
                version = json.loads(body).get("version") if body.startswith(b"{") else None
                if (healthy, version) != last:
                    self.changes.append((now, healthy, version))
                    if healthy and last is not None and not last[0] and self.cpu_pid and self.cpu_at_healthy is None:
                        self.cpu_at_healthy = tree_cpu_seconds(self.cpu_pid)
                    last = (healthy, version)
            except (OSError, http.client.HTTPException, ValueError) as error:
                self.error = repr(error)
                connection = None
            self.stopping.wait(POLL_S)

    def first(self, after, healthy):
        return next((t for t, ok, _v in self.changes if t >= after and ok == healthy), None)


# ---- the waits the policy mandates after the trigger ------------------------------------------


def _tasks(items):
    """Every task of a play's task list, blocks, rescues and always included."""
    for item in items or []:
        yield item
        for section in ("block", "rescue", "always"):
            yield from _tasks(item.get(section))


def mandated_waits_before_swap():
    """Seconds the swap task waits by design before the swap: its source-slot probe, (samples - 1) x interval.

    The samples and interval the playbook's swap task gives, else the module's documented defaults.
    """
    plays = yaml.safe_load(PLAYBOOK.read_text())
    swap = next(t for play in plays for t in _tasks(play.get("tasks"))
                if SWAP_TASK in t.get("name", "") and "sre.rollback.webapp_slot_swap" in t)
    args = swap["sre.rollback.webapp_slot_swap"]
    if "source_health_url" not in args:
        return 0.0, {"samples": 0, "interval": 0.0}
    text = SWAP_MODULE.read_text()
    options = yaml.safe_load(text.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])["options"]
    probe = {"samples": int(args.get("source_health_samples", options["source_health_samples"]["default"])),
             "interval": float(args.get("source_health_interval", options["source_health_interval"]["default"]))}
    return (probe["samples"] - 1) * probe["interval"], probe


# ---- the lean variant: the reaction alone, without the checklist and the verification -----------

# The same slot read, watch and swap task (with the playbook's source-slot probe), without the pre-rollback
# checklist, the freeze count and the post-rollback verification. Since the playbook arms the rollback before
# the watch, the reaction of both is the same one task: the difference is only in what runs outside it.
# It is not the collection's playbook.
LEAN_PLAYBOOK = """\
- name: Watch and swap back, lean
  hosts: {host}
  gather_facts: false
  module_defaults:
    group/sre.rollback.azure:
      subscription_id: "{{{{ azure_subscription_id }}}}"
      arm_endpoint: "{{{{ azure_arm_endpoint }}}}"
      authority_host: "{{{{ azure_authority_host }}}}"
  tasks:
    - name: "Detect | what the app's slots run now (evidence, and the swap-back target)"
      sre.rollback.webapp_slot_info:
        resource_group: "{{{{ app_service.resource_group }}}}"
        name: "{{{{ app_service.name }}}}"
        slots: [production, staging]
      register: slots
    - name: "Detect | watch the triggers"
      sre.rollback.rollback_trigger:
        source: http
        urls: ["https://{{{{ slots.slots.production.default_host_name }}}}/health"]
        interval: "{{{{ interval }}}}"
        watch: "{{{{ watch }}}}"
      register: triggers
    - name: "Act | {swap_task} production"
      sre.rollback.webapp_slot_swap:
        resource_group: "{{{{ app_service.resource_group }}}}"
        name: "{{{{ app_service.name }}}}"
        slot: staging
        target_slot: production
        expected_build: "{{{{ slots.slots.staging.fingerprint }}}}"
        source_health_url: "https://{{{{ slots.slots.staging.default_host_name }}}}/health"
        source_health_samples: {samples}
        source_health_interval: {probe_interval}
        source_health_body_match: "{{{{ app_service.health_body_match }}}}"
      when: triggers.verdict == 'rollback'
    - name: "Verify | probe the health of production"
      sre.rollback.health_check:
        url: "https://{{{{ slots.slots.production.default_host_name }}}}/health"
        samples: 3
        interval: 0.5
        body_match: "{{{{ app_service.health_body_match }}}}"
      when: triggers.verdict == 'rollback'
"""


def write_lean_playbook(directory):
    _waits, probe = mandated_waits_before_swap()
    path = Path(directory) / "lean-auto-rollback.yml"
    path.write_text(LEAN_PLAYBOOK.format(host=HOST, swap_task=SWAP_TASK,
                                         samples=probe["samples"], probe_interval=probe["interval"]))
    return path


def policy_bound(args):
    """The earliest the policy can fire after the app turns bad (the probes being instantaneous).

    http: 3 consecutive failed probes, `interval` apart: 3 x interval at the worst phase (2 x interval at the
    best). prometheus: the error_rate trigger must hold over its whole window (window_s).
    """
    return 3 * args.interval if args.source == "http" else args.prometheus_error_window


# ---- one run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, bench, number):
        self.bench = bench
        self.args = bench.args
        self.sandbox = bench.sandbox
        self.number = number
        self.dir = Path(bench.workdir) / ("run-%02d" % number)
        self.dir.mkdir()

    def command(self):
        a = self.args
        playbook = "playbooks/auto-rollback.yml" if a.variant == "playbook" else str(self.bench.lean_playbook)
        cmd = [str(BIN / "ansible-playbook"), playbook, "-e", "env=sandbox", "--limit", HOST,
               "-e", "watch=%s" % a.watch, "-e", "interval=%s" % a.interval, "-e", "trigger_source=%s" % a.source]
        # Each run is a new incident with its own state: the checklist's lock and automatic-rollback freeze
        # count (3 in a row freeze the service) and its evidence bundle stay in the run's directory.
        cmd += ["-e", "incident_id=bench-detection-run-%02d" % self.number,
                "-e", "pre_rollback_checklist_lock_dir=%s" % (self.dir / "locks"),
                "-e", "incident_evidence_dir=%s" % (self.dir / "evidence")]
        for extra in a.extra_vars:
            cmd += ["-e", extra]
        if a.source == "prometheus":
            # The sandbox's real Prometheus as host_vars describe it (1 s scrapes, 5 s rates); the error_rate
            # window shortened so one run takes seconds, not the runbook's 2 minutes.
            extra = {"rollback_trigger_policy": {"error_rate": {"window_s": a.prometheus_error_window}}}
            (self.dir / "extra.json").write_text(json.dumps(extra))
            cmd += ["-e", "@%s" % (self.dir / "extra.json")]
        return cmd

    def env(self):
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PYTHONUNBUFFERED="1",
                   PATH="%s:%s" % (BIN, os.environ.get("PATH", "")),
                   ANSIBLE_CALLBACKS_ENABLED="sre.rollback.recovery_timeline",
                   SRE_ROLLBACK_INCIDENT_DIR=str(self.dir / "incidents"),
                   SRE_ROLLBACK_INCIDENT_RESULT_KEYS=INCIDENT_RESULT_KEYS)
        return env

    def wait_for_watch(self, process, poller, output):
        """Until the watch is probing: http, a probe the poller did not send; prometheus, a query on its API.

        Counted only from the watch task's banner on: before it, the pre-rollback checklist (now before the
        watch) probes production too (its evidence's one trigger evaluation).
        """
        deadline = time.time() + PLAYBOOK_TIMEOUT_S
        while WATCH_TASK not in output.read_text():
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError("ansible-playbook did not reach the watch:\n%s" % output.read_text()[-3000:])
            time.sleep(0.02)
        # The most seen over 0.1 s: a poller request counted in `sent` but not yet by the sandbox lowers one
        # reading by one (the watch module's own start-up takes far longer than that).
        others_before = 0
        for _reading in range(5):
            others_before = max(others_before, self.sandbox.production_requests() - poller.sent)
            time.sleep(0.02)
        queries_before = self.sandbox.prometheus_queries() if self.args.source == "prometheus" else 0
        while time.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError("ansible-playbook ended before the watch started:\n%s" % output.read_text()[-3000:])
            if self.args.source == "http":
                if self.sandbox.production_requests() - poller.sent - others_before >= 1:
                    return time.time()
            elif self.sandbox.prometheus_queries() > queries_before:
                return time.time()
            time.sleep(0.02)
        raise RuntimeError("the watch did not start within %s s" % PLAYBOOK_TIMEOUT_S)

    def execute(self):
        a, sandbox = self.args, self.sandbox
        sandbox.call("POST", "/reset")
        settings = sandbox.call("PUT", "/settings",
                                {"swap_duration_s": a.swap_duration, "lro_retry_after_s": a.retry_after})
        site = sandbox.site()
        production, staging = site["slots"]["production"], site["slots"]["staging"]
        if not (production["build"]["healthy"] and staging["build"]["healthy"]):
            raise RuntimeError("the seed must start with two healthy builds: %s / %s"
                               % (production["build"], staging["build"]))
        bad_image = production["build"]["image"]
        poller = HealthPoller(production["url"], sandbox.admin_tls)
        poller.start()
        output = self.dir / "ansible.out"
        sampler = None
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        sandbox_cpu_before = sandbox.cpu_seconds()
        started = time.time()
        if a.bad_before_start:
            # A deploy pipeline that starts the watch after the bad build is live: start-up counts.
            t0 = time.time()
            sandbox.call("PUT", "/builds", {bad_image: {"healthy": False}})
            t0_acknowledged = time.time()
        with output.open("w") as sink:
            process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env(), stdout=sink, stderr=subprocess.STDOUT)
        try:
            poller.cpu_pid = process.pid
            if a.bad_before_start:
                watching = None
                cpu_at_t0 = 0.0  # the whole tree's CPU counts: it started after t0
            else:
                watching = self.wait_for_watch(process, poller, output)
                # A random phase of the probe schedule: a build goes bad at any moment, not just after a probe.
                time.sleep(a.interval * (1 + self.bench.random.random()))
                cpu_at_t0 = tree_cpu_seconds(process.pid)
                sampler = CpuSampler(process.pid)
                sampler.start()
                t0 = time.time()
                sandbox.call("PUT", "/builds", {bad_image: {"healthy": False}})
                t0_acknowledged = time.time()
            rc = process.wait(PLAYBOOK_TIMEOUT_S)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            ended = time.time()
            time.sleep(3 * POLL_S)
            poller.stopping.set()
            poller.join(5)
            if sampler is not None:
                sampler.stopping.set()
                sampler.join(5)
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sandbox_cpu_after = sandbox.cpu_seconds()
        if rc != 0:
            raise RuntimeError("ansible-playbook failed (rc %s):\n%s" % (rc, output.read_text()[-4000:]))
        calls = sandbox.call("GET", "/calls")["calls"]
        after = sandbox.site()
        record = self.measure(dict(
            t0=t0, t0_ack_s=t0_acknowledged - t0, started=started, ended=ended, watching=watching,
            bad_image=bad_image, poller=poller, calls=calls, site_after=after, settings=settings,
            cpu_s=(cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            sandbox_cpu_s=(sandbox_cpu_after - sandbox_cpu_before) if sandbox_cpu_before is not None else None,
            load=os.getloadavg()[0], sampler=sampler,
            tool_cpu_recovery=(poller.cpu_at_healthy - cpu_at_t0) if poller.cpu_at_healthy is not None else None))
        return record

    def incident(self):
        records = sorted((self.dir / "incidents").glob("*/incident.json"))
        if not records:
            raise RuntimeError("no incident record written in %s" % (self.dir / "incidents"))
        return json.loads(records[-1].read_text())

    def measure(self, raw):
        a = self.args
        t0, poller = raw["t0"], raw["poller"]
        incident = self.incident()
        steps = incident["steps"]
        watch = next(s for s in steps if WATCH_TASK in s["task"])
        swap = next(s for s in steps if s["task"].startswith(SWAP_TASK))
        result = watch.get("result") or {}
        fired_at = epoch(result.get("fired_at") or incident["recovery"]["detected_at"])
        watch_started = epoch(result["started_at"]) if result.get("started_at") else None
        swap_posts = [c for c in raw["calls"] if c["method"] == "POST" and c["path"].lower().endswith("/slotsswap")]
        if len(swap_posts) != 1:
            raise RuntimeError("expected one slot swap, the sandbox logged %d" % len(swap_posts))
        swap_post = epoch(swap_posts[0]["time"])
        production_after = raw["site_after"]["slots"]["production"]
        if production_after["build"]["image"] == raw["bad_image"] or not production_after["build"]["healthy"]:
            raise RuntimeError("production was not rolled back: %s" % production_after["build"])
        swap_done = epoch(production_after["slot_swap_status"]["timestampUtc"])
        bad_seen = poller.first(t0, healthy=False)
        healthy = poller.first(bad_seen or t0, healthy=True) if bad_seen else None
        if healthy is None:
            raise RuntimeError("the poller never saw production healthy again (%s)"
                               % (poller.error or poller.changes[-5:]))
        bound = policy_bound(a)
        mandated_role, _probe = mandated_waits_before_swap()
        platform = swap_done - swap_post
        recovery = healthy - t0
        detection = fired_at - t0
        sampler = raw.get("sampler")
        cpu_at_fired = sampler.at(fired_at) if sampler else None
        record = {
            "run": self.number,
            "detection_s": detection,
            "detection_excess_s": detection - bound,
            "recovery_s": recovery,
            "reaction_s": healthy - fired_at,
            "platform_s": platform,
            "mandated_s": bound + mandated_role,
            # The goal's measure: what the tool adds after the trigger fired.
            "tool_share_s": (healthy - fired_at) - mandated_role - platform,
            # The older accounting, from t0: it also credits a detection faster than the bound.
            "tool_share_from_t0_s": recovery - bound - mandated_role - platform,
            "playbook_wall_s": raw["ended"] - raw["started"],
            "startup_to_watch_s": (watch_started - raw["started"]) if watch_started else None,
            "startup_to_first_task_s": epoch(steps[0]["started"]) - raw["started"],
            "cpu_s": raw["cpu_s"],
            "tool_cpu_during_recovery_s": raw["tool_cpu_recovery"],
            # The tool's share in CPU: ansible-playbook's tree from fired_at (sampled every 0.1 s) to healthy.
            "tool_cpu_after_fired_s": (poller.cpu_at_healthy - cpu_at_fired)
            if poller.cpu_at_healthy is not None and cpu_at_fired is not None else None,
            "sandbox_cpu_s": raw["sandbox_cpu_s"],
            "load1": raw["load"],
            "t0_ack_s": raw["t0_ack_s"],
            "bad_seen_after_t0_s": (bad_seen - t0) if bad_seen else None,
            "healthy_after_swap_done_s": healthy - swap_done,
            "evaluations": result.get("evaluations"),
            "fired": result.get("fired"),
            "watch_probes_before_t0": None,
            # Negative: the watch began after the build turned bad (its start-up is in the detection).
            "t0_after_watch_start_s": (t0 - watch_started) if watch_started else None,
        }
        if watch_started and a.source == "http":
            # The watch probes at started + k * interval (its loop sleeps to the next tick). The first probe
            # at or after t0 fails; the third failure is the earliest the policy can fire at this phase.
            k = max(0, math.ceil((t0 - watch_started) / a.interval))
            third = watch_started + (k + 2) * a.interval
            record["phase_bound_s"] = third - t0
            record["fired_after_third_probe_s"] = fired_at - third
            record["watch_probes_before_t0"] = k
        record["segments"], record["kinds"] = self.segments(steps, watch, swap, fired_at, swap_post, swap_done, healthy)
        record["steps"] = [{k: s.get(k) for k in ("task", "module", "status", "started", "ended", "duration_s")}
                           | {"module_duration_s": (s.get("result") or {}).get("duration_s")} for s in steps]
        return record

    @staticmethod
    def segments(steps, watch, swap, fired_at, swap_post, swap_done, healthy):
        """The reaction, fired -> healthy, cut at every task boundary the incident record knows.

        A module step is cut in two with the module's own `duration_s` (from its argument parsing to its
        exit_json): the rest of the step's wall time is Ansible's cost of running a module (templating,
        AnsiballZ packaging, a new interpreter, imports, the result's way back). The segments sum to the
        reaction; `kinds` sums them by what they are.
        """
        cuts = [("watch module exits, result back to the controller", "task start-up and exit",
                 epoch(watch["ended"]) - fired_at)]
        previous_end = epoch(watch["ended"])
        for step in steps[steps.index(watch) + 1:steps.index(swap)]:
            begin, end = epoch(step["started"]), epoch(step["ended"])
            cuts.append(("(controller between tasks)", "controller between tasks", begin - previous_end))
            label = "%s [%s%s]" % (step["task"][:50], step["module"].split(".")[-1],
                                   "" if step["status"] != "skipped" else ", skipped")
            work = (step.get("result") or {}).get("duration_s")
            if work is None or step["status"] == "skipped":
                cuts.append((label, "tasks with no duration_s (builtins, loops, no_log, skipped)", end - begin))
            else:
                cuts.append((label + ": start-up and exit", "task start-up and exit", end - begin - float(work)))
                cuts.append((label + ": module's duration_s", "module work", float(work)))
            previous_end = end
        cuts.append(("(controller between tasks)", "controller between tasks", epoch(swap["started"]) - previous_end))
        cuts.append(("swap task: start-up, token, reads until the POST", "swap task until its POST",
                     swap_post - epoch(swap["started"])))
        cuts.append(("platform: swap POST -> swap done (sandbox)", "platform", swap_done - swap_post))
        cuts.append(("poller sees production healthy", "poller resolution", healthy - swap_done))
        merged, kinds = {}, {}
        for label, kind, length in cuts:
            merged[label] = merged.get(label, 0.0) + length
            kinds[kind] = kinds.get(kind, 0.0) + length
        return merged, kinds


# ---- where a module task's start-up goes ------------------------------------------------------

# The modules the reaction runs, in order, and the library every module loads.
IMPORTED = (("python -c pass", None), ("ansible.module_utils.basic (every module)", "ansible.module_utils.basic"),
            ("rollback_trigger (watch)", "ansible_collections.sre.rollback.plugins.modules.rollback_trigger"),
            ("webapp_slot_info", "ansible_collections.sre.rollback.plugins.modules.webapp_slot_info"),
            ("webapp_slot_swap", "ansible_collections.sre.rollback.plugins.modules.webapp_slot_swap"),
            ("health_check", "ansible_collections.sre.rollback.plugins.modules.health_check"))


def import_costs(repeats=3):
    """Wall and CPU seconds to start a fresh interpreter and import each module (what every task pays)."""
    collections = ROOT / ".cache" / "collections"
    if not collections.exists():
        return None
    costs = {}
    for label, module in IMPORTED:
        code = "pass" if module is None else "import sys; sys.path.insert(0, %r); import %s" % (
            str(collections), module)
        walls, cpus = [], []
        for _attempt in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", code], check=True)
            walls.append(time.monotonic() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        costs[label] = {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}
    return costs


# ---- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandbox = Sandbox()
        self.random = random.Random(args.seed)
        self.workdir = tempfile.mkdtemp(prefix="bench-detection-")
        self.lean_playbook = write_lean_playbook(self.workdir) if args.variant == "lean" else None

    def main(self):
        a = self.args
        runs, failures = [], []
        load_start = os.getloadavg()
        wall_start = time.time()
        try:
            for number in range(1, a.runs + 1):
                log("run %d/%d (source %s, interval %s s)..." % (number, a.runs, a.source, a.interval))
                try:
                    record = Run(self, number).execute()
                except RuntimeError as error:
                    log("  run %d FAILED: %s" % (number, str(error)[-1500:]))
                    failures.append({"run": number, "error": str(error)[-4000:]})
                    continue
                runs.append(record)
                log("  detection %.2f s (bound %.1f), recovery %.2f s, tool's share %.2f s, cpu %.1f s, load %.1f"
                    % (record["detection_s"], policy_bound(a), record["recovery_s"], record["tool_share_s"],
                       record["cpu_s"], record["load1"]))
        finally:
            self.sandbox.call("POST", "/reset")
        imports = None
        if not a.skip_import_costs:
            log("import costs...")
            imports = import_costs()
        mandated_role, probe = mandated_waits_before_swap()
        return {
            "benchmark": "detection_recovery",
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "args": vars(a),
            "host": {"cpus": os.cpu_count(), "load_start": load_start, "load_end": os.getloadavg()},
            "wall_s": time.time() - wall_start,
            "policy": {"trigger": "health_check_failures" if a.source == "http" else "error_rate",
                       "bound_s": policy_bound(a), "waits_before_swap_s": mandated_role,
                       "source_probe": probe},
            "runs": runs,
            "failures": failures,
            "import_costs": imports,
            "workdir": self.workdir,
        }


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(report):
    runs, a = report["runs"], report["args"]
    keys = ("detection_s", "detection_excess_s", "phase_bound_s", "fired_after_third_probe_s", "recovery_s",
            "reaction_s", "platform_s", "mandated_s", "tool_share_s", "tool_share_from_t0_s", "startup_to_first_task_s",
            "startup_to_watch_s", "playbook_wall_s", "cpu_s", "tool_cpu_during_recovery_s", "tool_cpu_after_fired_s", "sandbox_cpu_s", "load1",
            "t0_ack_s",
            "bad_seen_after_t0_s", "healthy_after_swap_done_s", "t0_after_watch_start_s")
    summary = {k: stats([r.get(k) for r in runs]) for k in keys}
    labels = []
    for r in runs:
        labels += [label for label in r["segments"] if label not in labels]
    summary["segments"] = {label: stats([r["segments"].get(label, 0.0) for r in runs]) for label in labels}
    kinds = []
    for r in runs:
        kinds += [kind for kind in r["kinds"] if kind not in kinds]
    summary["kinds"] = {kind: stats([r["kinds"].get(kind, 0.0) for r in runs]) for kind in kinds}
    goals = {}
    if summary["detection_s"]:
        excess = summary["detection_excess_s"]["median"]
        goals["detection"] = {"median_excess_s": excess, "limit_s": a["interval"], "met": excess <= a["interval"],
                              "worst_excess_s": summary["detection_excess_s"]["max"]}
        share = summary["tool_share_s"]["median"]
        goals["tool_share"] = {"median_s": share, "limit_s": 2.0, "met": share < 2.0}
    report["summary"], report["goals"] = summary, goals
    return report


def seconds(value):
    return "%7.2f" % value if value is not None else "      -"


def print_report(report):
    a, s, policy = report["args"], report["summary"], report["policy"]
    print("Detection and recovery: %s, P1 slot swap, %s on the sandbox"
          % ("playbooks/auto-rollback.yml" if a["variant"] == "playbook" else "the LEAN sketch (not the playbook)",
             HOST))
    print("source %s, interval %s s, trigger %s (bound %.1f s = %s); swap_duration_s %s, lro_retry_after_s %s%s"
          % (a["source"], a["interval"], policy["trigger"], policy["bound_s"],
             "3 x interval" if a["source"] == "http" else "its window_s", a["swap_duration"], a["retry_after"],
             "; the build turns bad BEFORE ansible-playbook starts" if a["bad_before_start"] else ""))
    if a["extra_vars"]:
        print("extra vars: %s" % " ".join(a["extra_vars"]))
    print("%d run(s) measured, %d failed; %.0f s; load %.1f -> %.1f on %d CPUs"
          % (len(report["runs"]), len(report["failures"]), report["wall_s"], report["host"]["load_start"][0],
             report["host"]["load_end"][0], report["host"]["cpus"]))
    if not report["runs"]:
        return
    print()
    print("%-62s %7s %7s %7s" % ("seconds", "median", "min", "max"))
    rows = [
        ("detection: fired_at - t0", "detection_s"),
        ("  minus the policy's bound (goal <= 1 interval)", "detection_excess_s"),
        ("  the phase's own bound: 3rd failing probe tick - t0", "phase_bound_s"),
        ("  fired_at - 3rd failing probe tick (probe + evaluation)", "fired_after_third_probe_s"),
        ("recovery: production healthy again - t0", "recovery_s"),
        ("  reaction: healthy - fired_at", "reaction_s"),
        ("  platform: swap POST -> swap done", "platform_s"),
        ("  policy-mandated waits: bound + source probe's waits", "mandated_s"),
        ("  tool's share: healthy - fired_at - probe waits - platform (goal < 2 s)", "tool_share_s"),
        ("  (older accounting: recovery - mandated - platform, from t0)", "tool_share_from_t0_s"),
        ("ansible-playbook start -> first task", "startup_to_first_task_s"),
        ("ansible-playbook start -> watch started (its started_at)", "startup_to_watch_s"),
        ("ansible-playbook wall", "playbook_wall_s"),
        ("CPU of ansible-playbook and its children", "cpu_s"),
        ("  of which from t0 to healthy again", "tool_cpu_during_recovery_s"),
        ("  of which from fired_at to healthy again (the tool's share in CPU)", "tool_cpu_after_fired_s"),
        ("CPU of the sandbox meanwhile", "sandbox_cpu_s"),
        ("load average (1 min) at the end of the run", "load1"),
        ("checks: t0 - the watch's started_at", "t0_after_watch_start_s"),
        ("        admin PUT round trip at t0", "t0_ack_s"),
        ("        poller saw the bad build after t0", "bad_seen_after_t0_s"),
        ("        poller saw healthy after the sandbox's swap done", "healthy_after_swap_done_s"),
    ]
    for label, key in rows:
        value = s.get(key)
        if value:
            print("%-62s %s %s %s" % (label, seconds(value["median"]), seconds(value["min"]), seconds(value["max"])))
    print()
    print("The reaction, fired -> healthy, by task (medians; module's own duration_s in the JSON):")
    for label, value in s["segments"].items():
        print("  %-70s %s" % (label[:70], seconds(value["median"])))
    print("The same by kind (medians):")
    for kind, value in s["kinds"].items():
        print("  %-70s %s" % (kind, seconds(value["median"])))
    imports = report.get("import_costs")
    if imports:
        print("Import cost of each module in a fresh interpreter (median of 3; wall / CPU):")
        for name, value in imports.items():
            print("  %-70s %s %s" % (name, seconds(value["wall_s"]), seconds(value["cpu_s"])))
    print()
    goals = report["goals"]
    d, t = goals["detection"], goals["tool_share"]
    print("Goal detection within one interval of the bound: median excess %+.2f s (worst %+.2f s), limit %.2f s: %s"
          % (d["median_excess_s"], d["worst_excess_s"], d["limit_s"], "MET" if d["met"] else "NOT MET"))
    print("Goal tool's share of recovery under 2 s: median %.2f s: %s"
          % (t["median_s"], "MET" if t["met"] else "NOT MET"))
    for failure in report["failures"]:
        print("run %d failed: %s" % (failure["run"], failure["error"].splitlines()[0][:200]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (default %(default)s)")
    parser.add_argument("--interval", type=float, default=1.0, help="probe interval, -e interval (default %(default)s)")
    parser.add_argument("--watch", type=float, default=60, help="watch window, -e watch (default %(default)s)")
    parser.add_argument("--source", choices=("http", "prometheus"), default="http",
                        help="-e trigger_source (default %(default)s)")
    parser.add_argument("--prometheus-error-window", type=float, default=5,
                        help="error_rate window_s for --source prometheus (default %(default)s)")
    parser.add_argument("--swap-duration", type=float, default=0.8,
                        help="sandbox swap_duration_s (default %(default)s)")
    parser.add_argument("--retry-after", type=float, default=1, help="sandbox lro_retry_after_s (default %(default)s)")
    parser.add_argument("--bad-before-start", action="store_true",
                        help="turn the build bad just before ansible-playbook starts (start-up counts in detection)")
    parser.add_argument("--variant", choices=("playbook", "lean"), default="playbook",
                        help="playbooks/auto-rollback.yml, or the lean sketch of the proposed change "
                        "(default %(default)s)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[],
                        help="passed to ansible-playbook, e.g. -e pre_rollback_checklist=false (repeatable)")
    parser.add_argument("--skip-import-costs", action="store_true", help="do not time the modules' imports")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random phase of t0 (default %(default)s)")
    args = parser.parse_args()
    if args.runs < 1 or args.interval <= 0 or args.watch <= 3 * args.interval:
        parser.error("--runs >= 1, --interval > 0 and --watch > 3 x interval")
    if args.variant == "lean" and args.source != "http":
        parser.error("--variant lean watches with the http source only")
    report = summarise(Bench(args).main())
    print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / ("detection_recovery-%s-%s-%s.json" % (args.variant, args.source, stamp))
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\nJSON: %s" % path.relative_to(ROOT))
    if not report["runs"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
