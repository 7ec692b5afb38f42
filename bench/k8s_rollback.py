#!/usr/bin/env python
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark: Kubernetes Deployments rolled back to their previous revision, on the sandbox's stand-in.

Part 1, one Deployment, undo to the previous revision and wait until the rollout is complete:

1. `kubectl rollout undo deployment/X` then `kubectl rollout status deployment/X` (the runbook's
   commands; the real kubectl with the sandbox kubeconfig);
2. one `sre.rollback.k8s_rollout_undo` task with `wait: true` through `ansible-playbook`;
3. one `kubernetes.core.k8s_rollback` task (from the `ansible` package, in `.cache/bench-k8s-venv`),
   which returns without waiting: the time until the rollout is complete is measured too.

Part 2, a fleet of 1, 10, 50 and 200 Deployments (a release that went bad everywhere): ours as ONE
task with `targets`, kubectl as a sequential loop and through `xargs -P 10`, and k8s_rollback as a
`loop:` (only up to --max-k8s-rollback Deployments: it is slow and it does not wait).

Every run starts from a fresh fleet (the stand-in is reset through its admin API and the fleet
re-created, untimed), contenders are interleaved run by run, one warm-up round is not counted. A
watch on the namespace's Deployments (one HTTPS stream, opened before each contender starts) notes
when every Deployment is complete at its previous revision's template: that clock is the same for
all, and it proves every contender did the rollback (a run that leaves one Deployment behind fails
the benchmark). Run it as `make bench-k8s`; bench/README.md explains the output. It RESETS the
sandbox it runs against, at the start and at the end.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
from pathlib import Path

from sandbox_admin import SandboxAdmin

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
REPO_BIN = ROOT / ".venv" / "bin"
BENCH_VENV = ROOT / ".cache" / "bench-k8s-venv"

NAMESPACE = "fleet"
# Low but not zero: every contender's wait is real (pods become ready after it), yet short, so the
# numbers are about the tools and not about the stand-in's clock.
POD_READY_DELAY_S = 0.2
FLEET_SIZES = (1, 10, 50, 200)
QUICK_FLEET_SIZES = (1, 10, 50)
XARGS_PARALLELISM = 10
# How long any one contender may take before the benchmark calls it stuck.
CONTENDER_TIMEOUT_S = 300
# The benchmark's own reads and watch say who they are, so the stand-in's call log can leave them out.
BENCH_USER_AGENT = "sre-bench-k8s-clock"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- the sandbox: admin API ---------------------------------------------------------------------


class Sandbox(SandboxAdmin):
    """The admin API (never logged, never faulted) of the sandbox whose environment is loaded."""

    def __init__(self):
        super().__init__(("SRE_SANDBOX_KUBECONFIG",), "bench-k8s")
        self.kubeconfig = os.environ["SRE_SANDBOX_KUBECONFIG"]

    def api_calls(self):
        """The Kubernetes API requests the contenders made since the last reset (not the benchmark's own)."""
        calls = self.call("GET", "/kubernetes/calls")["calls"]
        return [c for c in calls if c.get("user_agent") != BENCH_USER_AGENT]

    def cpu_seconds(self):
        """CPU time the sandbox process has used so far (user + system), or None if it is not on this machine."""
        try:
            runtime = json.loads((Path(os.environ["SRE_SANDBOX_DIR"]) / "runtime.json").read_text())
            fields = Path("/proc/%d/stat" % runtime["pid"]).read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (KeyError, OSError, ValueError):
            return None

    def reset(self):
        """Back to the seed, then the bench's pod-ready delay; returns the stand-in's settings."""
        self.call("POST", "/reset")
        return self.call("PUT", "/kubernetes/settings", {"pod_ready_delay_s": POD_READY_DELAY_S})

    def fleet(self, count):
        """A fresh fleet of `count` Deployments, each rolled out twice (v1.0.0, then the bad release v1.1.0)."""
        self.reset()
        answer = self.call("POST", "/kubernetes/fleet", {"namespace": NAMESPACE, "count": count, "revisions": 2})
        return sorted(answer["deployments"])


# ---- the Kubernetes API, read side (what the benchmark checks with, not a contender) ------------------


class Kube:
    """Plain HTTPS reads of the API server named by the kubeconfig: cheap enough to run beside a contender.

    The kubernetes client's model classes cost milliseconds per object; a watch over 200 Deployments
    would then take CPU from the contender it times. Credentials come from the client's own
    kubeconfig loader, so whatever the kubeconfig holds (token, client certificate) works.
    """

    def __init__(self, kubeconfig):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        url = urllib.parse.urlsplit(configuration.host)
        self.host, self.port = url.hostname, url.port or 443
        self.prefix = url.path.rstrip("/")
        self.tls = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            self.tls.load_cert_chain(configuration.cert_file, configuration.key_file)
        self.headers = {"Accept": "application/json", "User-Agent": BENCH_USER_AGENT}
        token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
        if token:
            prefix = configuration.api_key_prefix.get("authorization", "")
            self.headers["Authorization"] = ("%s %s" % (prefix, token)).strip() if prefix else token

    def open(self, path, timeout=60):
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=timeout)
        connection.request("GET", self.prefix + path, headers=self.headers)
        response = connection.getresponse()
        if response.status != 200:
            body = response.read()[:500]
            connection.close()
            raise RuntimeError("GET %s: %s %s" % (path, response.status, body))
        return connection, response

    def get(self, path):
        connection, response = self.open(path)
        try:
            return json.loads(response.read())
        finally:
            connection.close()

    def deployments(self):
        return self.get("/apis/apps/v1/namespaces/%s/deployments" % NAMESPACE)

    def targets(self, names):
        """For each Deployment: the container images of its previous revision (what undo must bring back).

        "Previous" as kubectl means it: the ReplicaSet with the highest revision below the current one.
        """
        deployments = {d["metadata"]["name"]: d for d in self.deployments()["items"]}
        replicasets = self.get("/apis/apps/v1/namespaces/%s/replicasets" % NAMESPACE)["items"]
        by_owner = {}
        for replicaset in replicasets:
            for owner in replicaset["metadata"].get("ownerReferences") or []:
                if owner.get("kind") == "Deployment":
                    by_owner.setdefault(owner["uid"], []).append(replicaset)
        targets = {}
        for name in names:
            deployment = deployments[name]
            current = revision(deployment)
            older = [rs for rs in by_owner.get(deployment["metadata"]["uid"], []) if revision(rs) < current]
            if not older:
                raise RuntimeError("Deployment %s has no revision before %s: nothing to undo" % (name, current))
            previous = max(older, key=revision)
            targets[name] = dict(template=deployment_template(previous), images=images(previous["spec"]["template"]),
                                 from_revision=current, to_revision=revision(previous),
                                 bad_images=images(deployment["spec"]["template"]))
        return targets


def revision(obj):
    return int((obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))


def deployment_template(replicaset):
    """The pod template a Deployment has when it runs this ReplicaSet's revision: the RS's minus its hash label.

    The whole template, not just the images: a rollback that brings back the right image with another
    Deployment's labels is not a rollback (and a real API server refuses it).
    """
    template = json.loads(json.dumps(replicaset["spec"]["template"]))
    labels = template.get("metadata", {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return template


def images(template):
    return sorted(c["image"] for c in template["spec"]["containers"])


def rollout_complete(deployment):
    """kubectl rollout status's test (DeploymentStatusViewer): the controller saw the spec, all replicas
    are updated and available, none of the old ones is left."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    return updated >= wanted and status.get("replicas", 0) <= updated and status.get("availableReplicas", 0) >= updated


class RolloutClock:
    """One watch on the namespace's Deployments: when did each reach its target template, complete?

    Opened (and the API's answer received) before the contender starts, so no event is missed; it
    costs the contender nothing but the stand-in's writes of the events.
    """

    def __init__(self, kube, targets):
        self.targets = targets
        self.done = {}
        self.finished = threading.Event()
        self.error = None
        listing = kube.deployments()
        self._check(listing["items"], time.time())
        self.connection, self.response = kube.open(
            "/apis/apps/v1/namespaces/%s/deployments?watch=1&resourceVersion=%s&timeoutSeconds=%d"
            % (NAMESPACE, listing["metadata"]["resourceVersion"], CONTENDER_TIMEOUT_S + 60),
            timeout=CONTENDER_TIMEOUT_S + 90)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _check(self, deployments, now):
        for deployment in deployments:
            name = deployment["metadata"]["name"]
            if name in self.targets and name not in self.done and rollout_complete(deployment) \
                    and deployment["spec"]["template"] == self.targets[name]["template"]:
                self.done[name] = now
        if len(self.done) == len(self.targets):
            self.finished.set()

    def _run(self):
        try:
            while not self.finished.is_set():
                line = self.response.readline()
                if not line:
                    self.error = "the watch ended before every Deployment was rolled back"
                    return
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self._check([event["object"]], time.time())
        except (OSError, ValueError, http.client.HTTPException) as error:
            if not self.finished.is_set():
                self.error = "watch failed: %r" % error
        finally:
            self.finished.set()

    def wait(self, timeout):
        """The epoch when the last Deployment was complete at its target, or an exception saying which were not."""
        self.finished.wait(timeout)
        self.connection.close()
        missing = sorted(set(self.targets) - set(self.done))
        if missing:
            raise RuntimeError("%d of %d Deployments not rolled back within %s s (%s)%s"
                               % (len(missing), len(self.targets), timeout, ", ".join(missing[:5]),
                                  "; " + self.error if self.error else ""))
        return max(self.done.values())


# ---- contenders ----------------------------------------------------------------------------------


class Contenders:
    """Writes the playbooks and inventories once; each method runs one contender, timing the whole process."""

    def __init__(self, workdir, sandbox, k8s_python):
        self.dir = Path(workdir)
        self.tree = self.dir / "tree"
        self.sandbox = sandbox
        # kubectl caches discovery per API server; private, so the warm-up warms it for the timed runs.
        self.kubectl_env = dict(os.environ, KUBECONFIG=sandbox.kubeconfig, KUBECACHEDIR=str(self.dir / "kubecache"))
        # localhost only, run locally with each venv's own python: nothing else to discover.
        (self.dir / "ours.ini").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                           % sys.executable)
        if k8s_python:
            (self.dir / "k8s.ini").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                                              % k8s_python)
        play = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        self._write("noop", play + "    - ansible.builtin.meta: noop\n")
        self._write("ours", play + textwrap.indent(textwrap.dedent("""\
            - sre.rollback.k8s_rollout_undo:
                kind: Deployment
                name: "{{ fleet[0] }}"
                namespace: "{{ fleet_namespace }}"
                kubeconfig: "{{ kubeconfig }}"
                wait: true
            """), "    "))
        # The fleet as ONE task: the module works the targets concurrently, bounded by its parallelism.
        self._write("ours_fleet", play + textwrap.indent(textwrap.dedent("""\
            - sre.rollback.k8s_rollout_undo:
                targets: "{{ targets }}"
                kubeconfig: "{{ kubeconfig }}"
                wait: true
            """), "    "))
        self._write("k8s", play + textwrap.indent(textwrap.dedent("""\
            - kubernetes.core.k8s_rollback:
                api_version: apps/v1
                kind: Deployment
                name: "{{ fleet[0] }}"
                namespace: "{{ fleet_namespace }}"
                kubeconfig: "{{ kubeconfig }}"
            """), "    "))
        # What a user of kubernetes.core writes for a fleet: one task looped over the names.
        self._write("k8s_fleet", play + textwrap.indent(textwrap.dedent("""\
            - kubernetes.core.k8s_rollback:
                api_version: apps/v1
                kind: Deployment
                name: "{{ item }}"
                namespace: "{{ fleet_namespace }}"
                kubeconfig: "{{ kubeconfig }}"
              loop: "{{ fleet }}"
            """), "    "))

    def _write(self, name, text):
        (self.dir / (name + ".yml")).write_text("---\n" + text)

    def playbook(self, name, bin_dir, inventory, fleet=()):
        """Run one playbook; returns (wall seconds, the task's result from the tree callback)."""
        result_file = self.tree / "localhost"
        if result_file.exists():
            result_file.unlink()
        variables = self.dir / "vars.json"
        variables.write_text(json.dumps({
            "fleet": list(fleet), "fleet_namespace": NAMESPACE, "kubeconfig": self.sandbox.kubeconfig,
            "targets": [{"kind": "Deployment", "name": name, "namespace": NAMESPACE} for name in fleet]}))
        env = dict(os.environ,
                   ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   # The tree callback drops each host's last task result as JSON: changed and the
                   # module's own numbers without parsing screen output. The only callback enabled.
                   ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                   ANSIBLE_CALLBACK_TREE_DIR=str(self.tree))
        command = [str(Path(bin_dir) / "ansible-playbook"), "-i", str(self.dir / inventory),
                   str(self.dir / (name + ".yml")), "-e", "@" + str(variables)]
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                              timeout=CONTENDER_TIMEOUT_S)
        wall = time.perf_counter() - started
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        if proc.returncode != 0:
            raise ContenderFailed(name, (proc.stdout[-3000:] + proc.stderr[-3000:]).strip(), result)
        return wall, result

    def kubectl_one(self, name):
        """The runbook's two commands for one Deployment; returns (wall, undo's share)."""
        started = time.perf_counter()
        self._kubectl("rollout", "undo", "deployment/" + name, "-n", NAMESPACE)
        undone = time.perf_counter()
        self._kubectl("rollout", "status", "deployment/" + name, "-n", NAMESPACE, "--timeout=%ds" % CONTENDER_TIMEOUT_S)
        return time.perf_counter() - started, undone - started

    def _kubectl(self, *args):
        proc = subprocess.run(["kubectl"] + list(args), env=self.kubectl_env, capture_output=True, text=True,
                              check=False, timeout=CONTENDER_TIMEOUT_S)
        if proc.returncode != 0:
            raise ContenderFailed("kubectl " + " ".join(args), (proc.stdout + proc.stderr).strip(), {})
        return proc.stdout

    def kubectl_sequential(self, names):
        """A shell loop: undo every Deployment, then wait for each (so the waits overlap)."""
        script = textwrap.dedent("""\
            set -e
            ns=$1; shift
            for d in "$@"; do kubectl rollout undo "deployment/$d" -n "$ns" >/dev/null; done
            for d in "$@"; do kubectl rollout status "deployment/$d" -n "$ns" --timeout=%ds >/dev/null; done
            """ % CONTENDER_TIMEOUT_S)
        return self._shell("kubectl sequential loop", ["bash", "-c", script, "bash", NAMESPACE] + list(names))

    def kubectl_xargs(self, names):
        """`xargs -P 10`: ten at a time, each `undo && status`."""
        script = ("xargs -P %d -I{} sh -c 'kubectl rollout undo deployment/{} -n %s >/dev/null && "
                  "kubectl rollout status deployment/{} -n %s --timeout=%ds >/dev/null'"
                  % (XARGS_PARALLELISM, NAMESPACE, NAMESPACE, CONTENDER_TIMEOUT_S))
        return self._shell("kubectl xargs -P %d" % XARGS_PARALLELISM, ["bash", "-c", script],
                           stdin="\n".join(names) + "\n")

    def _shell(self, label, command, stdin=None):
        started = time.perf_counter()
        proc = subprocess.run(command, env=self.kubectl_env, input=stdin, capture_output=True, text=True,
                              check=False, timeout=CONTENDER_TIMEOUT_S)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise ContenderFailed(label, (proc.stdout + proc.stderr).strip()[-3000:], {})
        return wall


class ContenderFailed(RuntimeError):
    def __init__(self, name, output, result):
        message = result.get("msg") or (output.splitlines()[-1] if output else "no output")
        super().__init__("%s failed: %s" % (name, message))
        self.output = output
        self.result = result


# ---- the kubernetes.core venv -----------------------------------------------------------------------


def ensure_k8s_venv():
    """Create .cache/bench-k8s-venv once: the newest `ansible` (it bundles kubernetes.core) and `kubernetes`."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if not stamp.exists():
        log("Creating %s (newest ansible + kubernetes; a few minutes, once)" % BENCH_VENV)
        # The base interpreter, not this venv's, so the bench venv does not depend on .venv.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--upgrade", "ansible", "kubernetes"], check=True)
        stamp.write_text("installed %s\n" % datetime.datetime.now().isoformat())
    return python


def versions(python, names):
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n"
            "    try:\n"
            "        return sys.version.split()[0] if n == 'python' else m.version(n)\n"
            "    except m.PackageNotFoundError:\n"
            "        return None\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code] + names, capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def collection_version(python, collection):
    code = ("import json, pathlib, ansible_collections.%s as m\n"
            "print(json.loads((pathlib.Path(m.__path__[0]) / 'MANIFEST.json').read_text())"
            "['collection_info']['version'])" % collection)
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def kubectl_version():
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError):
        return None


# ---- the benchmark -------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandbox = Sandbox()
        self.kube = Kube(self.sandbox.kubeconfig)
        self.samples = {}          # key -> [seconds]
        self.details = {}          # key -> [per-run details]
        self.not_measured = {}     # key -> reason
        self.notes = []
        self.load_start = os.getloadavg()

    def record(self, key, seconds, **details):
        self.samples.setdefault(key, []).append(seconds)
        if details:
            self.details.setdefault(key, []).append(details)

    def timed(self, key, count, run):
        """Fresh fleet, the clock's watch opened, then `run()`; records the wall and start -> all complete.

        `run` returns (wall seconds, details). Raises when any Deployment was not rolled back.
        """
        names = self.sandbox.fleet(count)
        targets = self.kube.targets(names)
        clock = RolloutClock(self.kube, targets)
        # CPU of the contender's own processes (all of them end and are reaped inside run()), so the load
        # other people put on the machine does not count; and the stand-in's, which serves them all alike.
        client_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = self.sandbox.cpu_seconds()
        start_epoch = time.time()
        wall, details = run(names)
        returned = start_epoch + wall
        completed = clock.wait(CONTENDER_TIMEOUT_S)
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_after = self.sandbox.cpu_seconds()
        calls = self.sandbox.api_calls()
        details = dict(details, count=count, returned_before_complete=returned < completed - 0.05,
                       api_calls=len(calls),
                       api_calls_by_method={m: sum(1 for c in calls if c["method"] == m)
                                            for m in sorted({c["method"] for c in calls})},
                       api_errors=[c for c in calls if c["status"] >= 400][:20])
        self.record(key, wall, **details)
        self.record(key + "+until_complete", max(completed, returned) - start_epoch)
        self.record(key + "+client_cpu", (client_after.ru_utime - client_cpu.ru_utime)
                    + (client_after.ru_stime - client_cpu.ru_stime))
        if server_cpu is not None and server_after is not None:
            self.record(key + "+standin_cpu", server_after - server_cpu)
        if details.get("duration_s") is not None:
            self.record(key + "+duration_s", details["duration_s"])
        return wall

    # -- the contenders, as run(names) -> (wall, details) ---------------------------------------------

    def ours(self, playbook):
        def run(names):
            wall, result = self.contenders.playbook(playbook, REPO_BIN, "ours.ini", names)
            if not result.get("changed"):
                raise RuntimeError("k8s_rollout_undo reported nothing changed: %s" % json.dumps(result)[:1000])
            return wall, dict(duration_s=result.get("duration_s"), parallelism=result.get("parallelism"))
        return run

    def k8s_rollback(self, playbook):
        def run(names):
            wall, result = self.contenders.playbook(playbook, self.k8s_bin, "k8s.ini", names)
            if not result.get("changed"):
                raise RuntimeError("k8s_rollback reported nothing changed: %s" % json.dumps(result)[:1000])
            return wall, {}
        return run

    def kubectl_one(self, names):
        wall, undo = self.contenders.kubectl_one(names[0])
        return wall, dict(undo_s=undo)

    def kubectl_sequential(self, names):
        return self.contenders.kubectl_sequential(names), {}

    def kubectl_xargs(self, names):
        return self.contenders.kubectl_xargs(names), {}

    # -- rounds ------------------------------------------------------------------------------------

    def single_round(self):
        self.timed("single/kubectl", 1, self.kubectl_one)
        if "single/ours" not in self.not_measured:
            self.timed("single/ours", 1, self.ours("ours"))
        if self.k8s_bin:
            self.timed("single/k8s_rollback", 1, self.k8s_rollback("k8s"))
        # What ansible-playbook itself costs on each controller: subtracted to get the task alone.
        self.reference("reference/noop_playbook", REPO_BIN, "ours.ini")
        if self.k8s_bin:
            self.reference("reference/noop_playbook_k8s_venv", self.k8s_bin, "k8s.ini")

    def reference(self, key, bin_dir, inventory):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = self.contenders.playbook("noop", bin_dir, inventory)[0]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.record(key, wall)
        self.record(key + "+client_cpu", after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    def fleet_round(self, sizes):
        for count in sizes:
            if "fleet/ours" not in self.not_measured:
                self.timed("fleet/ours/%d" % count, count, self.ours("ours_fleet"))
            if count <= self.args.max_sequential:
                self.timed("fleet/kubectl_sequential/%d" % count, count, self.kubectl_sequential)
            self.timed("fleet/kubectl_xargs/%d" % count, count, self.kubectl_xargs)
            if self.k8s_bin and count <= self.args.max_k8s_rollback:
                self.timed("fleet/k8s_rollback_loop/%d" % count, count, self.k8s_rollback("k8s_fleet"))

    def probe_k8s_rollback_other_deployment(self):
        """Untimed: k8s_rollback on the LAST Deployment of a fleet of three, where the fleet loop goes first to last.

        k8s_rollback lists ReplicaSets with the selector's label keys only (it passes matchLabels, a dict,
        where a list of selectors is expected), so it may take another Deployment's ReplicaSet of revision
        N-1. The fleet loop hides that (in name order each earlier one has been renumbered already); this
        shows what happens otherwise, and that ours rolls the same Deployment back correctly.
        """
        names = self.sandbox.fleet(3)
        last = names[-1]
        before = self.kube.targets([last])[last]
        outcome = {"deployment": last, "fleet": names}
        try:
            _wall, result = self.contenders.playbook("k8s", self.k8s_bin, "k8s.ini", [last])
            patched = (result.get("rollback_info") or [{}])[0].get("body") or []
            outcome["k8s_rollback"] = "changed=%s, patched template labels %s" % (
                result.get("changed"), next((op["value"]["metadata"].get("labels") for op in patched
                                             if op.get("path") == "/spec/template"), None))
        except ContenderFailed as error:
            # The API server's Status message says why (it is in the HTTP body the module prints).
            text = (error.result.get("msg") or "") + error.output
            status = re.search(r'HTTP response body: .*?"message":\s*"((?:[^"\\]|\\.)*)"', text, re.S)
            code = re.search(r"Module failed: (\d{3})", text)
            outcome["k8s_rollback"] = "failed, HTTP %s: %s" % (
                code.group(1) if code else "?",
                json.loads('"%s"' % status.group(1)) if status else " ".join(str(error).split())[:300])
        deployment = self.kube.get("/apis/apps/v1/namespaces/%s/deployments/%s" % (NAMESPACE, last))
        outcome["after_k8s_rollback"] = "revision %s, images %s, labels %s" % (
            revision(deployment), images(deployment["spec"]["template"]),
            deployment["spec"]["template"]["metadata"].get("labels"))
        outcome["expected"] = "revision %s, images %s" % (before["from_revision"] + 1, before["images"])
        if "single/ours" not in self.not_measured:
            try:
                self.contenders.playbook("ours", REPO_BIN, "ours.ini", [last])
                deployment = self.kube.get("/apis/apps/v1/namespaces/%s/deployments/%s" % (NAMESPACE, last))
                outcome["after_k8s_rollout_undo"] = "revision %s, images %s, template %s" % (
                    revision(deployment), images(deployment["spec"]["template"]),
                    "as expected" if deployment["spec"]["template"] == before["template"] else "NOT as expected")
            except ContenderFailed as error:
                outcome["after_k8s_rollout_undo"] = "failed: %s" % error
        return outcome

    def try_first(self, key, count, run):
        """One untimed try before the runs: a contender that cannot work is reported, the others go on."""
        try:
            self.timed(key, count, run)
            return True
        except (ContenderFailed, RuntimeError, subprocess.TimeoutExpired) as error:
            self.not_measured[key] = str(error)
            if getattr(error, "output", ""):
                self.notes.append("%s output: %s" % (key, error.output[-1500:]))
            log("%s: not measured: %s" % (key, error))
            return False

    def main(self):
        args = self.args
        settings = self.sandbox.reset()
        log("Sandbox reset; kubernetes settings %s" % settings)
        self.k8s_bin = k8s_python = None
        if args.skip_k8s_rollback:
            self.not_measured["k8s_rollback"] = "skipped (--skip-k8s-rollback)"
        else:
            try:
                k8s_python = ensure_k8s_venv()
                self.k8s_bin = k8s_python.parent
            except (subprocess.CalledProcessError, OSError) as error:
                self.not_measured["k8s_rollback"] = "could not build %s: %s" % (BENCH_VENV, error)
        sizes = args.sizes or (QUICK_FLEET_SIZES if args.quick else FLEET_SIZES)

        with tempfile.TemporaryDirectory(prefix="sre-bench-k8s-") as workdir:
            self.contenders = Contenders(workdir, self.sandbox, k8s_python)
            # Warm-up, not counted: cold disk caches, .pyc writes, kubectl's discovery cache. Also the
            # first try of each contender, so one that cannot work is reported and the others go on.
            log("warm-up")
            self.try_first("single/kubectl", 1, self.kubectl_one)
            if not self.try_first("single/ours", 1, self.ours("ours")):
                self.not_measured["fleet/ours"] = "the single-target task failed, see single/ours"
            elif not self.try_first("fleet/ours/10", 10, self.ours("ours_fleet")):
                self.not_measured["fleet/ours"] = self.not_measured.pop("fleet/ours/10")
            if self.k8s_bin and not self.try_first("single/k8s_rollback", 1, self.k8s_rollback("k8s")):
                self.k8s_bin = None
            self.try_first("fleet/kubectl_xargs/10", 10, self.kubectl_xargs)
            self.samples.clear()
            self.details.clear()

            for run in range(1, args.runs + 1):
                log("run %d/%d: one Deployment" % (run, args.runs))
                self.single_round()
            for run in range(1, args.fleet_runs + 1):
                log("run %d/%d: fleets of %s" % (run, args.fleet_runs, ", ".join(map(str, sizes))))
                self.fleet_round(sizes)

            probe = None
            if self.k8s_bin:
                log("k8s_rollback on the last Deployment of a fleet of 3 (untimed)")
                probe = self.probe_k8s_rollback_other_deployment()

        report = self.report(settings, sizes, k8s_python)
        report["k8s_rollback_last_of_fleet"] = probe
        self.sandbox.reset()
        return report

    # -- reporting -----------------------------------------------------------------------------------

    def med(self, key):
        values = self.samples.get(key)
        return statistics.median(values) if values else None

    def report(self, settings, sizes, k8s_python):
        noop, noop_k8s = self.med("reference/noop_playbook"), self.med("reference/noop_playbook_k8s_venv")
        for key, values in list(self.samples.items()):
            # Task alone = playbook wall minus the no-op playbook on the same controller (as slot_swap).
            contender, _plus, measure = key.partition("+")
            ours = "/ours" in contender
            base = noop if ours else noop_k8s if "/k8s_rollback" in contender else None
            if base is not None and measure in ("", "until_complete"):
                self.samples[contender + "+task" + ("_" + measure if measure else "")] = [v - base for v in values]
            if base is not None and measure == "client_cpu":
                # The same subtraction for CPU: what the task costs beyond ansible-playbook's own start and stop.
                cpu_base = self.med("reference/noop_playbook%s+client_cpu" % ("" if ours else "_k8s_venv"))
                self.samples[contender + "+task+client_cpu"] = [v - cpu_base for v in values]

        kubectl = self.med("single/kubectl")
        single = [self.row(key, label, kubectl) for key, label in (
            ("single/kubectl", "kubectl rollout undo + rollout status"),
            ("single/ours", "k8s_rollout_undo wait=true: ansible-playbook wall"),
            ("single/ours+task", "k8s_rollout_undo wait=true: task alone"),
            ("single/ours+duration_s", "k8s_rollout_undo wait=true: module duration_s"),
            ("single/k8s_rollback", "k8s_rollback: ansible-playbook wall (returns early)"),
            ("single/k8s_rollback+task", "k8s_rollback: task alone (returns early)"),
            ("single/k8s_rollback+until_complete", "k8s_rollback: playbook start -> rollout complete"),
            ("single/k8s_rollback+task_until_complete", "k8s_rollback: task start -> rollout complete"),
            ("reference/noop_playbook", "reference: no-op playbook (repo venv)"),
            ("reference/noop_playbook_k8s_venv", "reference: no-op playbook (bench venv)"),
        ) if self.samples.get(key)]

        fleet = []
        for count in sizes:
            ours = self.med("fleet/ours/%d" % count)
            for kind, label in (
                    ("ours", "k8s_rollout_undo, one task, targets: wall"),
                    ("ours+task", "k8s_rollout_undo, one task, targets: task alone"),
                    ("ours+duration_s", "k8s_rollout_undo, one task, targets: duration_s"),
                    ("kubectl_sequential", "kubectl loop: undo each, then status each"),
                    ("kubectl_xargs", "kubectl undo && status, xargs -P %d" % XARGS_PARALLELISM),
                    ("k8s_rollback_loop", "k8s_rollback loop: wall (returns early)"),
                    ("k8s_rollback_loop+until_complete", "k8s_rollback loop: start -> all complete")):
                contender, plus, measure = kind.partition("+")
                key = "fleet/%s/%d%s" % (contender, count, plus + measure)
                if self.samples.get(key):
                    row = self.row(key, label, ours)
                    row.update(count=count, per_deployment_s=row["median_s"] / count)
                    fleet.append(row)

        return dict(
            benchmark="k8s_rollback",
            timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            runs=self.args.runs,
            fleet_runs=self.args.fleet_runs,
            fleet_sizes=list(sizes),
            namespace=NAMESPACE,
            sandbox_settings=settings,
            task_time_method="ansible-playbook wall minus the median no-op playbook on the same controller",
            load_average=dict(start=self.load_start, end=os.getloadavg()),
            versions=dict(kubectl=kubectl_version(),
                          repo=versions(sys.executable, ["python", "ansible-core", "kubernetes"]),
                          bench_venv=dict(versions(k8s_python, ["python", "ansible", "ansible-core", "kubernetes"]),
                                          **{"kubernetes.core": collection_version(k8s_python, "kubernetes.core")})
                          if k8s_python else {}),
            single=single,
            fleet=fleet,
            verdict=self.verdict(sizes),
            ours_parallelism=sorted({run.get("parallelism") for key, runs in self.details.items()
                                     if key.startswith("fleet/ours/") for run in runs if run.get("parallelism")}),
            returned_before_complete=self.returned_early(),
            not_measured=self.not_measured,
            notes=self.notes,
            samples=self.samples,
            details=self.details,
        )

    def row(self, key, label, reference):
        """One table row: the measure's spread, and for a contender's wall its CPU and API calls."""
        values = self.samples[key]
        median = statistics.median(values)
        row = dict(key=key, contender=label, median_s=median, min_s=min(values), max_s=max(values), n=len(values),
                   ratio=median / reference if reference else None, client_cpu_s=None, standin_cpu_s=None,
                   api_calls=None)
        if "+" not in key or key.endswith("+task"):
            row["client_cpu_s"] = self.med(key + "+client_cpu")
        if "+" not in key:
            row["standin_cpu_s"] = self.med(key + "+standin_cpu")
            calls = [run["api_calls"] for run in self.details.get(key, []) if "api_calls" in run]
            row["api_calls"] = statistics.median(calls) if calls else None
        return row

    def returned_early(self):
        """Per contender, in how many runs it returned before the watch saw the rollout complete."""
        out = {}
        for key, runs in self.details.items():
            flags = [run["returned_before_complete"] for run in runs if "returned_before_complete" in run]
            if flags:
                out[key] = "%d of %d" % (sum(flags), len(flags))
        return out

    def paired(self, *terms):
        """Median over the runs of sum(sign * samples[key][run]): differences taken run by run.

        Contenders run back to back in each round, so a run-by-run difference cancels the load of that
        moment, which on a shared machine moves every wall time by seconds; medians of differences are
        steadier than differences of medians. None when a key is missing or the counts differ.
        """
        series = [(sign, self.samples.get(key)) for sign, key in terms]
        if any(not values for _sign, values in series) or len({len(values) for _sign, values in series}) != 1:
            return None
        return statistics.median(sum(sign * values[run] for sign, values in series)
                                 for run in range(len(series[0][1])))

    def verdict(self, sizes):
        out = {}
        noop, noop_k8s = "reference/noop_playbook", "reference/noop_playbook_k8s_venv"
        # One Deployment against kubectl: our task alone (playbook minus the same round's no-op) minus kubectl.
        task_minus_kubectl = self.paired((1, "single/ours"), (-1, noop), (-1, "single/kubectl"))
        if task_minus_kubectl is not None:
            out["single_ours_task_minus_kubectl_s"] = task_minus_kubectl
            out["single_ours_wall_minus_kubectl_s"] = self.paired((1, "single/ours"), (-1, "single/kubectl"))
            out["goal_single_within_1s_of_kubectl"] = task_minus_kubectl <= 1.0
            # The same in CPU seconds, which the load other people put on the machine does not change.
            out["single_ours_task_cpu_minus_kubectl_cpu_s"] = self.paired(
                (1, "single/ours+client_cpu"), (-1, noop + "+client_cpu"), (-1, "single/kubectl+client_cpu"))
        # Against k8s_rollback until its rollout is complete (it returns without waiting).
        ours_minus_k8s = self.paired((1, "single/ours"), (-1, "single/k8s_rollback+until_complete"))
        if ours_minus_k8s is not None:
            out["single_ours_minus_k8s_rollback_until_complete_s"] = ours_minus_k8s
            out["single_ours_task_minus_k8s_rollback_task_until_complete_s"] = self.paired(
                (1, "single/ours"), (-1, noop), (-1, "single/k8s_rollback+until_complete"), (1, noop_k8s))
            out["single_ours_minus_k8s_rollback_return_s"] = self.paired((1, "single/ours"), (-1, "single/k8s_rollback"))
            out["single_ours_cpu_minus_k8s_rollback_cpu_s"] = self.paired(
                (1, "single/ours+client_cpu"), (-1, "single/k8s_rollback+client_cpu"))
            out["goal_single_faster_than_k8s_rollback"] = ours_minus_k8s < 0
        largest = max(sizes)
        ten, big = self.med("fleet/ours/10"), self.med("fleet/ours/%d" % largest)
        if ten and big and largest > 10:
            ten_task, big_task = self.med("fleet/ours/10+task"), self.med("fleet/ours/%d+task" % largest)
            out["fleet_ours_largest"] = largest
            out["fleet_ours_largest_over_10_wall"] = big / ten
            out["fleet_ours_largest_over_10_task"] = big_task / ten_task if ten_task and ten_task > 0 else None
            out["goal_fleet_200_under_3x_of_10"] = big / ten < 3.0 if largest == 200 else None
            out["fleet_ours_over_10_wall"] = {count: self.med("fleet/ours/%d" % count) / ten for count in sizes
                                              if self.med("fleet/ours/%d" % count)}
        return out


# ---- output -------------------------------------------------------------------------------------


def seconds(value, width=6):
    return ("%*.2fs" % (width, value)) if value is not None else " " * width + "-"


def print_report(report):
    settings = report["sandbox_settings"]
    print("\nKubernetes rollback benchmark: undo to the previous revision, wait until the rollout is complete")
    print("Runs: %d (one Deployment), %d (fleets); medians, min, max. Load average %s at the start, %s at the end."
          % (report["runs"], report["fleet_runs"], "/".join("%.1f" % v for v in report["load_average"]["start"]),
             "/".join("%.1f" % v for v in report["load_average"]["end"])))
    print("Stand-in settings (all contenders): %s" % ", ".join("%s=%s" % kv for kv in sorted(settings.items())))
    print("Versions: kubectl %s; repo %s; bench venv %s" % (
        report["versions"]["kubectl"], report["versions"]["repo"], report["versions"]["bench_venv"]))
    print("Task time: %s. cpu: CPU seconds of the contender's own processes; api cpu: of the stand-in meanwhile;"
          % report["task_time_method"])
    print("calls: Kubernetes API requests the contender made.\n")

    header = "%-54s %7s %7s %7s %8s %7s %7s %5s" % (
        "one Deployment", "median", "min", "max", "/kubectl", "cpu", "api cpu", "calls")
    print(header)
    print("-" * len(header))
    for row in report["single"]:
        print("%-54s %s %s %s %s %s %s %5s" % (
            row["contender"], seconds(row["median_s"]), seconds(row["min_s"]), seconds(row["max_s"]),
            "%7.2fx" % row["ratio"] if row["ratio"] else "       -", seconds(row["client_cpu_s"]),
            seconds(row["standin_cpu_s"]), "%d" % row["api_calls"] if row["api_calls"] is not None else "-"))

    header = "%-50s %4s %7s %7s %7s %8s %6s %7s %7s %5s" % ("fleet", "N", "median", "min", "max", "per dep", "/ours",
                                                            "cpu", "api cpu", "calls")
    print("\n" + header)
    print("-" * len(header))
    last = None
    for row in report["fleet"]:
        if last is not None and row["count"] != last:
            print()
        last = row["count"]
        print("%-50s %4d %s %s %s %7.3fs %s %s %s %5s" % (
            row["contender"], row["count"], seconds(row["median_s"]), seconds(row["min_s"]), seconds(row["max_s"]),
            row["per_deployment_s"], "%5.2fx" % row["ratio"] if row["ratio"] else "     -",
            seconds(row["client_cpu_s"]), seconds(row["standin_cpu_s"]),
            "%d" % row["api_calls"] if row["api_calls"] is not None else "-"))

    if report["ours_parallelism"]:
        print("k8s_rollout_undo parallelism (as the module reported it): %s"
              % ", ".join(map(str, report["ours_parallelism"])))
    for key, reason in report["not_measured"].items():
        print("%-50s not measured: %s" % (key, reason))
    probe = report.get("k8s_rollback_last_of_fleet")
    if probe:
        print("\nk8s_rollback on %s, the last of a fleet of 3 (untimed; it selects ReplicaSets by label keys only):"
              % probe["deployment"])
        for key in ("k8s_rollback", "after_k8s_rollback", "expected", "after_k8s_rollout_undo"):
            if key in probe:
                print("  %-24s %s" % (key, probe[key]))
    for note in report["notes"]:
        print("note: " + note)
    early = {key: runs for key, runs in report["returned_before_complete"].items() if not runs.startswith("0 ")}
    print("\nRuns that returned before the watch saw every rollout complete: %s"
          % (", ".join("%s %s" % kv for kv in sorted(early.items())) or "none"))

    v = report["verdict"]
    print("\nGoals (differences taken run by run, then the median: see Bench.paired)")
    if "goal_single_within_1s_of_kubectl" in v:
        print("  one Deployment, our task alone minus kubectl undo+status: %+.2fs (playbook wall: %+.2fs); "
              "goal <= 1 s: %s" % (v["single_ours_task_minus_kubectl_s"], v["single_ours_wall_minus_kubectl_s"],
                                   "met" if v["goal_single_within_1s_of_kubectl"] else "NOT met"))
        print("    in CPU seconds (not changed by the machine's load): task alone minus kubectl %+.2fs"
              % v["single_ours_task_cpu_minus_kubectl_cpu_s"])
    if "goal_single_faster_than_k8s_rollback" in v:
        print("  one Deployment, ours minus k8s_rollback until its rollout is complete: %+.2fs playbook wall, "
              "%+.2fs task alone (minus its early return: %+.2fs); goal < 0: %s"
              % (v["single_ours_minus_k8s_rollback_until_complete_s"],
                 v["single_ours_task_minus_k8s_rollback_task_until_complete_s"],
                 v["single_ours_minus_k8s_rollback_return_s"],
                 "met" if v["goal_single_faster_than_k8s_rollback"] else "NOT met"))
        print("    in CPU seconds: ours minus k8s_rollback %+.2fs" % v["single_ours_cpu_minus_k8s_rollback_cpu_s"])
    if "fleet_ours_largest_over_10_wall" in v:
        goal = v["goal_fleet_200_under_3x_of_10"]
        task = v["fleet_ours_largest_over_10_task"]
        print("  fleet, ours %d / ours 10: %.2fx playbook wall, %s task alone; goal (200 under 3x of 10): %s"
              % (v["fleet_ours_largest"], v["fleet_ours_largest_over_10_wall"],
                 "%.2fx" % task if task else "-",
                 "not run (largest fleet %d)" % v["fleet_ours_largest"] if goal is None else "met" if goal else "NOT met"))
        print("    ours N / ours 10 (playbook wall): %s"
              % ", ".join("N=%s %.2fx" % kv for kv in v["fleet_ours_over_10_wall"].items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per contender (default 5)")
    parser.add_argument("--fleet-runs", type=int, help="repetitions of the fleet part (default: --runs, at most 3)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 runs, fleets up to 50")
    parser.add_argument("--sizes", type=lambda text: tuple(int(n) for n in text.split(",")),
                        help="fleet sizes, comma-separated (default %s; --quick: %s)"
                        % (",".join(map(str, FLEET_SIZES)), ",".join(map(str, QUICK_FLEET_SIZES))))
    parser.add_argument("--max-sequential", type=int, default=50,
                        help="largest fleet for the sequential kubectl loop (default %(default)s)")
    parser.add_argument("--max-k8s-rollback", type=int, default=10,
                        help="largest fleet for the k8s_rollback loop (default %(default)s)")
    parser.add_argument("--skip-k8s-rollback", action="store_true", help="do not build or run the kubernetes.core venv")
    args = parser.parse_args()
    if args.quick:
        args.runs = 2
    # The fleet rounds cost minutes each; three runs give a median and still fit the time budget.
    args.fleet_runs = args.fleet_runs or min(args.runs, 3)
    if args.runs < 1 or args.fleet_runs < 1:
        parser.error("--runs and --fleet-runs must be 1 or more")

    report = Bench(args).main()
    print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / ("k8s_rollback-%s.json" % datetime.datetime.now().strftime("%Y%m%dT%H%M%S"))
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\nJSON: %s" % path.relative_to(ROOT))


if __name__ == "__main__":
    main()
