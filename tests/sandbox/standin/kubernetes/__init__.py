"""Kubernetes API server stand-in (with the controllers rollback depends on) of the sandbox.

Its own HTTPS port on 127.0.0.1 (the sandbox CA), bearer-token auth, JSON only. The real
`kubectl` and the `kubernetes` Python client work against it unchanged, pointed at it only by the
kubeconfig the sandbox writes (`<state dir>/kubeconfig`, context `sandbox`, namespace `default`).

Environment (env.sh / env.json): SRE_SANDBOX_KUBECONFIG, SRE_SANDBOX_K8S_URL, SRE_SANDBOX_K8S_TOKEN.
KUBECONFIG itself is never exported (it would redirect the user's own kubectl). The kubeconfig is
written at start and removed on a clean stop, like env.sh.

Admin API (under /_sandbox/, never faulted or logged):

  GET        /_sandbox/kubernetes                  summary: url, kubeconfig, settings, faults, bad images, counts
  GET        /_sandbox/kubernetes/objects          every stored object ({"items": [...]}, ?namespace=&kind=)
  GET/PUT    /_sandbox/kubernetes/settings         {"pod_ready_delay_s": 1.0, "controller_tick_s": 0.1,
                                                    "aggregated_discovery": 1}
  GET/DELETE /_sandbox/kubernetes/calls            {"calls": [{time, method, path, query, status, fault, user_agent}]}
  GET/POST/DELETE /_sandbox/kubernetes/faults      {"kind": throttle|error|timeout|slow|conflict, "method", "path"
                                                    (regex on the API path), "count", "status", "retry_after",
                                                    "delay_s"}; conflict = 409 on the next N updates (PUT/PATCH)
  GET        /_sandbox/kubernetes/images           {"bad": {"<image>": "<waiting reason>"}}
  POST       /_sandbox/kubernetes/images           {"image": "<image>", "bad": true|false, "reason"?}: pods of a bad
                                                    image never become ready; marking it good readies them
  POST       /_sandbox/kubernetes/fleet            {"namespace": "fleet", "count": 200, "revisions": 2,
                                                    "replicas": 1, "prefix": "svc"}: N Deployments with history
  POST       /_sandbox/kubernetes/settle           run the controllers until idle (pods become ready only on time)

Faults do not go through /_sandbox/faults: they are this port's own, like bluegreen's and blobstore's.
The state is rebuilt from seed/kubernetes.json on /_sandbox/reset.
"""

import datetime
import json
import os
import re
import sys
import threading
import time

import yaml

from ..calls import CallLog
from ..faults import FaultSpecError, Faults
from ..settings import AdminSettings
from ..web import BadJson, DropConnection, Response
from . import controllers as ctl
from .access import AccessReviews
from .api import Api, status_response, STATUS_SUBRESOURCE_KINDS
from .defaults import apply_defaults, validate
from .listener import ApiListener
from .resources import RESOURCES, by_kind, lookup
from .store import ApiError, Store, already_exists, clone, conflict, invalid, now_rfc3339

DEFAULT_SETTINGS = {"pod_ready_delay_s": 1.0, "controller_tick_s": 0.1, "aggregated_discovery": 1}
HTTP_FAULT_KINDS = ("throttle", "error", "timeout", "slow")
NAMESPACES = lookup("", "v1", "namespaces")
CASCADE_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"}


def _admin_error(status, message):
    return Response.json({"error": message}, status)


class KubernetesProvider:
    name = "kubernetes"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.stopping = threading.Event()
        self.settings = AdminSettings(sandbox, "kubernetes", DEFAULT_SETTINGS)
        self.calls = CallLog(sandbox, "kubernetes")
        self.faults = Faults()
        self.conflict_faults = []
        self.api = Api(self)
        self.store = Store()
        self.access = AccessReviews(self)  # SelfSubjectAccessReview (kubectl auth can-i)
        self.bad_images = {}
        self.controllers = ctl.Controllers(self)
        self.dataplane = ApiListener(sandbox.ssl_context, self._dispatch)
        self.port = self.dataplane.port
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig_path = os.path.join(os.path.dirname(sandbox.ca_path), "kubeconfig")
        self._load_seed()
        self._write_kubeconfig()
        add = sandbox.admin.add
        add("GET", r"/_sandbox/kubernetes", self._admin_state)
        add("GET", r"/_sandbox/kubernetes/objects", self._admin_objects)
        add("GET", r"/_sandbox/kubernetes/faults", self._admin_list_faults)
        add("POST", r"/_sandbox/kubernetes/faults", self._admin_add_fault)
        add("DELETE", r"/_sandbox/kubernetes/faults", self._admin_clear_faults)
        add("GET", r"/_sandbox/kubernetes/images", self._admin_images)
        add("POST", r"/_sandbox/kubernetes/images", self._admin_mark_image)
        add("POST", r"/_sandbox/kubernetes/fleet", self._admin_fleet)
        add("POST", r"/_sandbox/kubernetes/settle", self._admin_settle)
        sandbox.on_reset(self._reset)
        self.controllers.start()

    # -- seed --------------------------------------------------------------------------------
    def _load_seed(self):
        seed = self.sandbox.seed_section(self.name)
        self.seed = seed
        with self.store.lock:
            self.store.clear()
            self.bad_images = dict(seed.get("bad_images") or {})
            self.controllers.pod_ready_at.clear()
            self.controllers.progress_at.clear()
            self.controllers.deadlines.clear()
            self.controllers.pod_ready_since.clear()
            for node in seed.get("nodes") or ["sandbox-node-1"]:
                self.create_object(lookup("", "v1", "nodes"), {
                    "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}},
                    "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                           "message": "kubelet is posting ready status"}]}})
            for namespace in seed.get("namespaces") or ["default"]:
                self.create_object(NAMESPACES, {"metadata": {"name": namespace}})
            for obj in seed.get("objects") or []:
                res = by_kind(obj.get("apiVersion"), obj.get("kind"))
                self.create_object(res, clone(obj))
            self.seed_workloads(seed.get("workloads") or [])
            # Seeding leaves no watch history and no events: a fresh cluster's past is its objects.
            for event in self.store.list(lookup("", "v1", "events")):
                self.store.delete(lookup("", "v1", "events"), event["metadata"]["namespace"],
                                  event["metadata"]["name"])
            self.store.events.clear()

    def seed_workloads(self, workloads):
        """Create workloads and roll each through its revisions, instantly (pods ready at once)."""
        self.controllers.instant = True
        try:
            depth = max([len(w.get("revisions") or [{}]) for w in workloads] or [0])
            for step in range(depth):
                touched = []
                for workload in workloads:
                    revisions = workload.get("revisions") or [{}]
                    if step < len(revisions):
                        touched.append((workload, self._apply_revision(workload, revisions[step], step)))
                self.controllers.settle(max_rounds=200)
                for workload, revision in touched:
                    self._backdate(workload, revision)
        finally:
            self.controllers.instant = False

    def _workload_object(self, workload, revision):
        kind = workload["kind"]
        labels = {"app.kubernetes.io/name": workload["name"], **(workload.get("labels") or {})}
        image = f"{workload['image']}:{revision.get('tag', 'latest')}"
        container = {"name": workload.get("container", workload["name"]), "image": image}
        if workload.get("port"):
            container["ports"] = [{"containerPort": workload["port"], "name": "http"}]
        env = {**(workload.get("env") or {}), **(revision.get("env") or {})}
        if env:
            container["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        annotations = dict(workload.get("annotations") or {})
        if revision.get("change_cause"):
            annotations["kubernetes.io/change-cause"] = revision["change_cause"]
        spec = {"selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}
        if kind != "DaemonSet":
            spec["replicas"] = workload.get("replicas", 1)
        for key in ("revisionHistoryLimit", "progressDeadlineSeconds", "strategy", "minReadySeconds",
                    "serviceName", "updateStrategy", "podManagementPolicy"):
            if key in workload:
                spec[key] = clone(workload[key])
        return {"apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": workload["name"], "namespace": workload["namespace"],
                             "labels": dict(labels), "annotations": annotations},
                "spec": spec}

    def _apply_revision(self, workload, revision, step):
        res = by_kind("apps/v1", workload["kind"])
        desired = self._workload_object(workload, revision)
        old = self.store.get(res, workload["namespace"], workload["name"])
        if old is None:
            self.create_object(res, desired)
        else:
            new = clone(old)
            new["metadata"]["annotations"] = {**(old["metadata"].get("annotations") or {}),
                                              **desired["metadata"]["annotations"]}
            if "kubernetes.io/change-cause" not in desired["metadata"]["annotations"]:
                new["metadata"]["annotations"].pop("kubernetes.io/change-cause", None)
            new["spec"]["template"] = desired["spec"]["template"]
            self.update_object(res, old, new, None, None, False)
        return revision

    def _backdate(self, workload, revision):
        """Give the objects of this revision the creation time the seed says (days_ago / hours_ago)."""
        ago = datetime.timedelta(days=revision.get("days_ago", 0), hours=revision.get("hours_ago", 0))
        if not ago:
            return
        stamp = (datetime.datetime.now(datetime.timezone.utc) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
        res = by_kind("apps/v1", workload["kind"])
        owner = self.store.peek(res, workload["namespace"], workload["name"])
        if revision is (workload.get("revisions") or [None])[0]:
            owner["metadata"]["creationTimestamp"] = stamp
        child_res = ctl.REPLICASETS if workload["kind"] == "Deployment" else ctl.REVISIONS
        children = [o for o in self.store.list(child_res, workload["namespace"], copy_items=False)
                    if (ctl.controller_of(o) or {}).get("uid") == owner["metadata"]["uid"]]
        if not children:
            return
        if workload["kind"] == "Deployment":
            newest = max(children, key=ctl.revision_of)
        else:
            newest = max(children, key=lambda r: r.get("revision", 0))
        newest["metadata"]["creationTimestamp"] = stamp
        # The pods of the live revision have run since it rolled out.
        for pod in self.store.list(ctl.PODS, workload["namespace"], copy_items=False):
            if (ctl.controller_of(pod) or {}).get("uid") in (owner["metadata"]["uid"], newest["metadata"]["uid"]):
                pod["metadata"]["creationTimestamp"] = stamp
                for cs in pod.get("status", {}).get("containerStatuses") or []:
                    if "running" in cs.get("state", {}):
                        cs["state"]["running"]["startedAt"] = stamp

    def _write_kubeconfig(self):
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "sandbox",
                          "cluster": {"server": self.url, "certificate-authority": self.sandbox.ca_path}}],
            "users": [{"name": "sandbox", "user": {"token": self.token}}],
            "contexts": [{"name": "sandbox",
                          "context": {"cluster": "sandbox", "user": "sandbox", "namespace": "default"}}],
            "current-context": "sandbox",
        }
        tmp = self.kubeconfig_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, default_flow_style=False, sort_keys=False)
        os.replace(tmp, self.kubeconfig_path)

    @property
    def token(self):
        return self.seed.get("token", "sandbox-kubernetes-token")

    def tokens(self):
        return {self.token}

    def version_info(self):
        version = self.seed.get("version", "v1.32.4")
        major, minor = version.lstrip("v").split(".")[:2]
        return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                "gitVersion": version, "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-04-22T16:00:00Z", "goVersion": "go1.23.8",
                "compiler": "gc", "platform": "linux/amd64"}

    def node_names(self):
        return [n["metadata"]["name"] for n in self.store.list(lookup("", "v1", "nodes"), copy_items=False)]

    def log(self, message):
        print(f"kubernetes: {message}", file=sys.stderr, flush=True)

    # -- the port -----------------------------------------------------------------------------
    def _dispatch(self, request):
        fault = None
        try:
            response, fault = self.faults.apply_inbound(request, _fault_response)
            if response is None:
                response = self.api.dispatch(request)
            elif fault == "throttle":
                # As the real server's Status for 429: details.retryAfterSeconds matches the header.
                body = json.loads(response.body)
                body["details"]["retryAfterSeconds"] = int(response.headers.get("Retry-After", 1))
                response.body = json.dumps(body, separators=(",", ":")).encode()
        except DropConnection:
            self._record(request, None, "timeout")
            raise
        except ApiError as err:
            response = status_response(err)
        except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
            self.log(f"unhandled error for {request.method} {request.path}: {err!r}")
            response = status_response(ApiError(500, "InternalError", f"sandbox bug: {err!r}"))
        self._record(request, response.status, fault)
        response.headers.setdefault("Audit-Id", os.urandom(16).hex())
        return response

    def _record(self, request, status, fault):
        with self.sandbox.lock:
            self.calls.append({"time": now_rfc3339(), "method": request.method, "path": request.path,
                               "query": request.raw_query, "status": status, "fault": fault,
                               "user_agent": request.headers.get("User-Agent")})

    def take_conflict_fault(self, request, res, name):
        with self.store.lock:
            for fault in self.conflict_faults:
                if fault["method"] in (None, request.method) and fault["path_re"].search(request.path):
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        self.conflict_faults.remove(fault)
                    raise conflict(res, name)

    # -- object lifecycle (used by the API and the seed) ----------------------------------------
    def create_object(self, res, obj, manager=None, dry_run=False):
        with self.store.lock:
            apply_defaults(res, obj, self)
            validate(res, obj)
            if manager:
                obj["metadata"]["managedFields"] = [{"manager": manager, "operation": "Update",
                                                     "apiVersion": res.api_version, "time": now_rfc3339(),
                                                     "fieldsType": "FieldsV1", "fieldsV1": {}}]
            if dry_run:
                existing = self.store.get(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                if existing is not None:
                    raise already_exists(res, obj["metadata"]["name"])
                obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                obj["metadata"].update({"creationTimestamp": now_rfc3339(), "uid": "00000000-0000-0000-0000-000000000000"})
                if res.has_generation:
                    obj["metadata"]["generation"] = 1
                return obj
            created = self.store.create(res, obj)
        self.controllers.kick()
        return created

    def update_object(self, res, old, body, sub, manager, dry_run, applied_fields=False):
        """Store `body` as the new state of `old`. managedFields stay the server's: a client's copy (with its own
        time formatting) is ignored, unless the caller is server-side apply (applied_fields=True)."""
        with self.store.lock:
            new = clone(body)
            meta = new.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "generation", "namespace", "deletionTimestamp"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            meta["name"] = old["metadata"]["name"]
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if not applied_fields:
                meta.pop("managedFields", None)
                if "managedFields" in old["metadata"]:
                    meta["managedFields"] = clone(old["metadata"]["managedFields"])
            if sub == "status":
                status = new.get("status")
                new = clone(old)
                new["status"] = status
            elif res.kind in STATUS_SUBRESOURCE_KINDS:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
            new["apiVersion"], new["kind"] = res.api_version, res.kind
            if res.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet") and sub != "status":
                apply_defaults(res, new, self)
                if new["spec"].get("selector") != old["spec"].get("selector"):
                    raise invalid(res, meta["name"], [("spec.selector", "FieldValueInvalid",
                                                       f"Invalid value: {json.dumps(new['spec'].get('selector'))}: "
                                                       "field is immutable")])
            elif sub != "status":
                apply_defaults(res, new, self)
            validate(res, new)
            if res.has_generation and new.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
            if new == old:
                return old  # a no-op update does not bump resourceVersion, as on a real server
            if manager:
                entries = [m for m in meta.get("managedFields") or []
                           if not (m.get("manager") == manager and m.get("operation") == "Update")]
                entries.append({"manager": manager, "operation": "Update", "apiVersion": res.api_version,
                                "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": {}})
                meta["managedFields"] = entries
            if dry_run:
                return new
            updated = self.store.replace(res, new)
        self.controllers.kick()
        return updated

    def delete_object(self, res, namespace, name, policy):
        with self.store.lock:
            deleted = self.store.delete(res, namespace, name)
            self.controllers.pod_ready_at.pop(deleted["metadata"]["uid"], None)
            self.controllers.pod_ready_since.pop(deleted["metadata"]["uid"], None)
            if res.kind == "Namespace":
                for other in RESOURCES:
                    if other.namespaced:
                        for obj in self.store.list(other, name, copy_items=False):
                            self.store.delete(other, name, obj["metadata"]["name"])
            elif res.kind in CASCADE_KINDS and policy != "Orphan":
                uid = deleted["metadata"]["uid"]
                for other in RESOURCES:
                    if not other.namespaced:
                        continue
                    for obj in self.store.list(other, namespace, copy_items=False):
                        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or []):
                            self.delete_object(other, namespace, obj["metadata"]["name"], policy)
        self.controllers.kick()
        return deleted

    def allocate_cluster_ip(self):
        used = {s["spec"].get("clusterIP") for s in self.store.list(lookup("", "v1", "services"), copy_items=False)}
        for i in range(10, 65000):
            ip = f"10.96.{i // 250}.{i % 250 + 1}"
            if ip not in used:
                return ip
        raise ApiError(500, "InternalError", "no cluster IPs left")

    # -- admin -----------------------------------------------------------------------------------
    def _reset(self):
        self.faults.clear()
        self.conflict_faults.clear()
        self.settings.reset()
        self.calls.clear()
        self._load_seed()

    def snapshot(self):
        with self.store.lock:
            counts = {}
            for key, _namespace, _name in self.store.objects:
                counts[key] = counts.get(key, 0) + 1
            workloads = {}
            for res in (ctl.DEPLOYMENTS, ctl.STATEFULSETS, ctl.DAEMONSETS):
                for obj in self.store.list(res, copy_items=False):
                    images = [c.get("image") for c in obj["spec"]["template"]["spec"].get("containers") or []]
                    key = f"{res.plural}/{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                    workloads[key] = {"images": images, "generation": obj["metadata"].get("generation"),
                                      "revision": (obj["metadata"].get("annotations") or {}).get(ctl.REVISION),
                                      "status": clone(obj.get("status"))}
            return {"url": self.url, "kubeconfig": self.kubeconfig_path, "settings": dict(self.settings),
                    "faults": self._faults_view(), "bad_images": dict(self.bad_images),
                    "resource_version": self.store.revision, "counts": counts, "workloads": workloads}

    def env(self):
        return {"SRE_SANDBOX_KUBECONFIG": self.kubeconfig_path, "SRE_SANDBOX_K8S_URL": self.url,
                "SRE_SANDBOX_K8S_TOKEN": self.token}

    def stop(self):
        self.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self.dataplane.stop()
        # Like env.sh, the kubeconfig describes a running server: it goes with it.
        try:
            os.remove(self.kubeconfig_path)
        except FileNotFoundError:
            pass

    def _admin_state(self, request):
        return Response.json(self.snapshot())

    def _admin_objects(self, request):
        namespace = request.query.get("namespace")
        kind = request.query.get("kind")
        with self.store.lock:
            items = [clone(o) for (_kind, ns, _name), o in sorted(self.store.objects.items())
                     if (namespace is None or ns == namespace) and (kind is None or o.get("kind") == kind)]
        return Response.json({"items": items})

    def _faults_view(self):
        return self.faults.list() + [{"kind": "conflict", "method": f["method"], "path": f["path_re"].pattern,
                                      "remaining": f["remaining"]} for f in self.conflict_faults]

    def _admin_list_faults(self, request):
        with self.store.lock:
            return Response.json({"faults": self._faults_view()})

    def _admin_add_fault(self, request):
        try:
            spec = request.json()
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(spec, dict):
            return _admin_error(400, "expected a JSON object")
        if spec.get("kind") == "conflict":
            try:
                count = int(spec.get("count", 1))
                path_re = re.compile(spec.get("path") or ".*")
            except (TypeError, ValueError, re.error) as err:
                return _admin_error(400, f"bad conflict fault: {err}")
            if count < 1:
                return _admin_error(400, "count must be >= 1")
            fault = {"method": (spec.get("method") or "").upper() or None, "path_re": path_re, "remaining": count}
            with self.store.lock:
                self.conflict_faults.append(fault)
            return Response.json({"kind": "conflict", "method": fault["method"], "path": path_re.pattern,
                                  "remaining": count}, 201)
        if spec.get("kind") not in HTTP_FAULT_KINDS:
            return _admin_error(400, f"kind must be one of {', '.join(HTTP_FAULT_KINDS + ('conflict',))}")
        try:
            return Response.json(self.faults.add(spec), 201)
        except (FaultSpecError, TypeError, ValueError) as err:
            return _admin_error(400, str(err))

    def _admin_clear_faults(self, request):
        self.faults.clear()
        with self.store.lock:
            self.conflict_faults.clear()
        return Response(204)

    def _admin_images(self, request):
        with self.store.lock:
            return Response.json({"bad": dict(self.bad_images)})

    def _admin_mark_image(self, request):
        try:
            body = request.json() or {}
            image = body["image"]
            bad = bool(body.get("bad", True))
            if not isinstance(image, str) or not image:
                raise ValueError("image must be a non-empty string")
        except (BadJson, KeyError, TypeError, ValueError) as err:
            return _admin_error(400, f'expected {{"image": "<image>", "bad": true|false, "reason"?}}: {err}')
        with self.store.lock:
            if bad:
                self.bad_images[image] = body.get("reason") or "CrashLoopBackOff"
            else:
                self.bad_images.pop(image, None)
                # Unready pods of a now-good image recover, as a fixed registry or crash would let them.
                for pod in self.store.list(ctl.PODS, copy_items=False):
                    images = [c.get("image") for c in pod["spec"].get("containers") or []]
                    if image in images and not ctl.Controllers.pod_ready(pod):
                        self.controllers.pod_ready_at[pod["metadata"]["uid"]] = (
                            time.monotonic(), pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.controllers.kick()
        return Response.json({"bad": dict(self.bad_images)})

    def _admin_fleet(self, request):
        try:
            body = request.json() or {}
            namespace = body.get("namespace", "fleet")
            count = int(body.get("count", 10))
            revisions = int(body.get("revisions", 2))
            replicas = int(body.get("replicas", 1))
            prefix = body.get("prefix", "svc")
            if count < 1 or revisions < 1 or replicas < 0:
                raise ValueError("count and revisions must be >= 1, replicas >= 0")
        except (BadJson, TypeError, ValueError) as err:
            return _admin_error(400, f'expected {{"namespace", "count", "revisions", "replicas", "prefix"}}: {err}')
        started = time.monotonic()
        workloads = [{"kind": "Deployment", "namespace": namespace, "name": f"{prefix}-{i:03d}", "replicas": replicas,
                      "container": "app", "image": f"sandbox.azurecr.io/fleet/{prefix}",
                      "revisions": [{"tag": f"v1.{r}.0", "change_cause": f"release v1.{r}.0"}
                                    for r in range(revisions)]} for i in range(count)]
        with self.store.lock:
            if self.store.get(NAMESPACES, None, namespace) is None:
                self.create_object(NAMESPACES, {"metadata": {"name": namespace}})
            for workload in workloads:
                if self.store.get(ctl.DEPLOYMENTS, namespace, workload["name"]) is not None:
                    return _admin_error(409, f"deployment {namespace}/{workload['name']} already exists")
            self.seed_workloads(workloads)
        return Response.json({"namespace": namespace, "deployments": [w["name"] for w in workloads],
                              "images": [f"sandbox.azurecr.io/fleet/{prefix}:v1.{r}.0" for r in range(revisions)],
                              "seconds": round(time.monotonic() - started, 3)}, 201)

    def _admin_settle(self, request):
        rounds = self.controllers.settle(max_rounds=200)
        return Response.json({"rounds": rounds})


def _fault_response(status, code, message):
    reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
              504: "Timeout"}.get(status, code)
    if status == 429:
        message = "the server has received too many requests and has asked us to try again later"
    elif status == 500:
        message = "an error on the server (\"injected sandbox fault\") has prevented the request from succeeding"
    return status_response(ApiError(status, reason, message, {"causes": [{"reason": code, "message": message}]}))
