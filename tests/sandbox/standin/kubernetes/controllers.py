"""What kube-controller-manager and the kubelet do that rollback depends on.

- Deployment controller (pkg/controller/deployment): one ReplicaSet per distinct pod template, named
  `<deployment>-<pod-template-hash>`; `deployment.kubernetes.io/revision` = highest old revision + 1,
  also when an old ReplicaSet's template comes back (it is reused, its old number goes into
  `deployment.kubernetes.io/revision-history`); the deployment's annotations (change-cause...) are
  copied to the new ReplicaSet; RollingUpdate within maxSurge/maxUnavailable, or Recreate; status
  counts and the Available/Progressing conditions, including ProgressDeadlineExceeded; old
  ReplicaSets beyond revisionHistoryLimit deleted once the rollout is complete.
- ReplicaSet controller: pods up and down to spec.replicas (not-ready and newest pods go first).
- StatefulSet and DaemonSet controllers: ControllerRevisions holding the template as a strategic
  merge patch `{"spec":{"template":{...,"$patch":"replace"}}}`, an equal template reusing its
  revision with the next number, ordered rolling updates, status with current/update revisions.
- The "kubelet": a pod becomes Running and Ready `pod_ready_delay_s` after it is created, unless one
  of its images is marked bad, in which case it stays unready (CrashLoopBackOff or the reason given).

Everything runs under the store lock, in ticks: after every API write and every `controller_tick_s`.
"""

import datetime
import hashlib
import json
import math
import random
import threading
import time

from .resources import lookup
from .store import clone, now_rfc3339

DEPLOYMENTS = lookup("apps", "v1", "deployments")
REPLICASETS = lookup("apps", "v1", "replicasets")
STATEFULSETS = lookup("apps", "v1", "statefulsets")
DAEMONSETS = lookup("apps", "v1", "daemonsets")
REVISIONS = lookup("apps", "v1", "controllerrevisions")
PODS = lookup("", "v1", "pods")
EVENTS = lookup("", "v1", "events")
NODES = lookup("", "v1", "nodes")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Annotations the deployment controller never copies to a ReplicaSet (deployment_util.go).
SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED,
                    MAX_REPLICAS, "deprecated.deployment.rollback.to"}
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_EVENTS = 5000


def safe_encode(text):
    """k8s.io/apimachinery/pkg/util/rand.SafeEncodeString."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def fnv32a(data):
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def compute_hash(obj, collision_count=0):
    """controller.ComputeHash: fnv32a of the object (here its canonical JSON) + collisionCount."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def template_without_hash(template):
    template = clone(template)
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop("pod-template-hash", None)
    return template


def equal_ignore_hash(a, b):
    """deployment_util.EqualIgnoreHash: templates equal apart from the pod-template-hash label."""
    if a.get("spec") != b.get("spec"):
        return False
    meta_a, meta_b = a.get("metadata") or {}, b.get("metadata") or {}
    if {k: v for k, v in meta_a.items() if k != "labels"} != {k: v for k, v in meta_b.items() if k != "labels"}:
        return False
    labels_a = {k: v for k, v in (meta_a.get("labels") or {}).items() if k != "pod-template-hash"}
    labels_b = {k: v for k, v in (meta_b.get("labels") or {}).items() if k != "pod-template-hash"}
    return labels_a == labels_b


def controller_of(obj):
    return next((ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def owner_ref(owner, kind):
    return {"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def revision_of(rs):
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def resolve_percent(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        raw = int(value[:-1]) * total / 100.0
        return int(math.ceil(raw) if round_up else math.floor(raw))
    return int(value or 0)


def _parse_time(text):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


class Controllers:
    def __init__(self, provider):
        self.provider = provider
        self.store = provider.store
        self._wake = threading.Event()
        self._thread = None
        self.pod_ready_at = {}      # pod uid -> monotonic time it becomes ready
        self.progress_at = {}       # deployment uid -> time.time() of the last progress (precise deadline)
        self.instant = False        # seeding: pods ready at once
        self.deadlines = {}         # key -> time.time() to look again (progress deadline, minReadySeconds)
        self.pod_ready_since = {}   # pod uid -> time.time() it became Ready (0: since seeding)

    # -- loop -------------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="kubernetes-controllers", daemon=True)
        self._thread.start()

    def kick(self):
        self._wake.set()

    def _run(self):
        last_full = time.monotonic()
        while not self.provider.stopping.is_set():
            self._wake.wait(self.provider.settings["controller_tick_s"] or 0.05)
            self._wake.clear()
            try:
                # Like the real controllers' periodic resync: now and then look at everything.
                full = time.monotonic() - last_full > 30
                if full:
                    last_full = time.monotonic()
                self.settle(max_rounds=6, full=full)
            except Exception as err:  # keep the loop alive; a sandbox bug shows in the log
                self.provider.log(f"controller error: {err!r}")

    def settle(self, max_rounds=50, full=False):
        """Run ticks until the work queue is empty (or max_rounds); returns the rounds that did work."""
        rounds = 0
        for i in range(max_rounds):
            if not self.tick(full=full and i == 0):
                break
            rounds += 1
        return rounds

    def tick(self, full=False):
        """One pass over the queued objects (all of them if full); True if it changed anything.

        The store lock is taken per object, not for the whole pass, so API requests interleave with a
        controller that has hundreds of rollouts in flight."""
        with self.store.lock:
            self.changed = False
            keys = set(self.store.take_dirty())
            now = time.time()
            for key in [k for k, due in self.deadlines.items() if due <= now]:
                del self.deadlines[key]
                keys.add(key)
            if full:
                for res in (DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS):
                    keys |= {(res.key, ns, name) for ns, name in self.store.by_resource.get(res.key, {})}
        self._kubelet()
        for res, sync in ((DEPLOYMENTS, self._sync_deployment), (REPLICASETS, self._sync_replicaset),
                          (STATEFULSETS, self._sync_statefulset), (DAEMONSETS, self._sync_daemonset)):
            for key in sorted(k for k in keys if k[0] == res.key):
                with self.store.lock:
                    obj = self.store.by_resource.get(res.key, {}).get(key[1:])
                    if obj is not None:
                        sync(obj)
                    else:
                        self.deadlines.pop(key, None)
        with self.store.lock:
            return self.changed or bool(self.store.dirty)

    def _children(self, res, owner):
        return self.store.children(owner["metadata"]["uid"], res.key)

    def _save(self, res, old, new):
        """Store `new` if it differs from the stored `old` (no resourceVersion churn otherwise)."""
        if new != old:
            self.store.replace(res, new)
            self.changed = True
            return True
        return False

    def _create(self, res, obj):
        created = self.store.create(res, obj)
        self.changed = True
        return created

    def _delete(self, res, obj):
        self.provider.delete_object(res, obj["metadata"].get("namespace"), obj["metadata"]["name"], "Background")
        self.changed = True

    def event(self, obj, reason, message, kind="Normal", component="deployment-controller"):
        if self.instant:
            return  # seeding: a fresh cluster's past is its objects, not a burst of events
        meta = obj["metadata"]
        events = self.store.by_resource.get(EVENTS.key, {})
        if len(events) >= MAX_EVENTS:
            # Real events expire after an hour; here the oldest go once there are too many.
            for key in sorted(events, key=lambda k: events[k]["metadata"]["resourceVersion"].zfill(12))[:len(events) // 10]:
                self.store.delete(EVENTS, *key)
        name = f"{meta['name']}.{random.getrandbits(64):016x}"[:253]
        stamp = now_rfc3339()
        self.store.create(EVENTS, {
            "metadata": {"name": name, "namespace": meta.get("namespace", "default")},
            "involvedObject": {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta["name"],
                               "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "source": {"component": component},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": kind,
            "eventTime": None, "reportingComponent": component, "reportingInstance": "",
        })

    # -- kubelet ----------------------------------------------------------------------------
    def new_pod(self, owner, owner_kind, name, template, extra_labels, node):
        meta = clone(template.get("metadata") or {})
        meta.pop("creationTimestamp", None)
        meta["name"] = name
        meta["namespace"] = owner["metadata"]["namespace"]
        meta["labels"] = {**(meta.get("labels") or {}), **extra_labels}
        meta["ownerReferences"] = [owner_ref(owner, owner_kind)]
        spec = clone(template.get("spec") or {})
        spec["nodeName"] = node
        pod = {"metadata": meta, "spec": spec,
               "status": {"phase": "Pending", "qosClass": "BestEffort",
                          "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                          "lastTransitionTime": now_rfc3339()}]}}
        pod = self._create(PODS, pod)
        if self.instant:
            # Seeding: the pod has been running all along (no Pending step, no extra tick).
            self._run_pod(self.store.peek(PODS, meta["namespace"], name), pod["metadata"]["uid"])
            return self.store.peek(PODS, meta["namespace"], name)
        delay = self.provider.settings["pod_ready_delay_s"]
        self.pod_ready_at[pod["metadata"]["uid"]] = (time.monotonic() + delay, meta["namespace"], name)
        return pod

    def _kubelet(self):
        now = time.monotonic()
        with self.store.lock:
            due = [(uid, entry) for uid, entry in self.pod_ready_at.items() if entry[0] <= now]
        for uid, (_due, namespace, name) in due:
            with self.store.lock:
                self._start_pod(uid, namespace, name)

    def _start_pod(self, uid, namespace, name):
        if self.pod_ready_at.pop(uid, None) is None:
            return
        pod = self.store.peek(PODS, namespace, name)
        if pod is not None and pod["metadata"]["uid"] == uid:
            self._run_pod(pod, uid)

    def _run_pod(self, pod, uid):
        """What the kubelet reports once the pod has started: Running, and Ready unless an image is bad."""
        new = clone(pod)
        bad = [c for c in new["spec"].get("containers") or [] if c.get("image") in self.provider.bad_images]
        stamp = now_rfc3339()
        statuses = []
        for container in new["spec"].get("containers") or []:
            reason = self.provider.bad_images.get(container.get("image"))
            status = {"name": container["name"], "image": container.get("image"), "imageID": "",
                      "ready": reason is None, "restartCount": 0 if reason is None else 1,
                      "started": reason is None,
                      "containerID": "containerd://" + hashlib.sha256((uid + container["name"]).encode()).hexdigest()}
            if reason is None:
                status["state"] = {"running": {"startedAt": stamp}}
            else:
                status["state"] = {"waiting": {"reason": reason, "message":
                                               f"back-off 10s restarting failed container={container['name']} "
                                               f"pod={new['metadata']['name']}"}}
            statuses.append(status)
        ready = "False" if bad else "True"
        new["status"] = {
            "phase": "Running", "qosClass": "BestEffort", "hostIP": "10.0.0.10",
            "podIP": f"10.244.{random.randint(0, 255)}.{random.randint(2, 254)}", "startTime": stamp,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp},
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": ready, "lastProbeTime": None, "lastTransitionTime": stamp},
                {"type": "Ready", "status": ready, "lastProbeTime": None, "lastTransitionTime": stamp}],
            "containerStatuses": statuses,
        }
        self._save(PODS, pod, new)
        if not bad:
            self.pod_ready_since[uid] = 0 if self.instant else time.time()
        if bad:
            self.event(new, "BackOff", f"Back-off restarting failed container {bad[0]['name']} in pod "
                       f"{new['metadata']['name']}_{new['metadata']['namespace']}({uid})", "Warning", "kubelet")

    def _available(self, owner, pods, min_ready):
        """Pods Ready for at least minReadySeconds; the owner is looked at again when the next one gets there."""
        if not min_ready:
            return sum(1 for p in pods if self.pod_ready(p))
        now = time.time()
        count, next_due = 0, None
        for pod in pods:
            if not self.pod_ready(pod):
                continue
            due = self.pod_ready_since.get(pod["metadata"]["uid"], 0) + min_ready
            if due <= now:
                count += 1
            else:
                next_due = due if next_due is None else min(next_due, due)
        if next_due is not None:
            res = {"ReplicaSet": REPLICASETS, "StatefulSet": STATEFULSETS, "DaemonSet": DAEMONSETS}[owner["kind"]]
            self.deadlines[(res.key, owner["metadata"]["namespace"], owner["metadata"]["name"])] = next_due + 0.01
        return count

    @staticmethod
    def pod_ready(pod):
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or [])

    # -- ReplicaSet -------------------------------------------------------------------------
    def _sync_replicaset(self, rs):
        pods = self._children(PODS, rs)
        want = rs["spec"].get("replicas", 0)
        if len(pods) < want:
            for _unused in range(want - len(pods)):
                name = f"{rs['metadata']['name']}-{''.join(random.choice(SAFE_ALPHABET) for _unused in range(5))}"
                pods.append(self.new_pod(rs, "ReplicaSet", name, rs["spec"]["template"], {}, self._node_for(rs)))
                self.event(rs, "SuccessfulCreate", f"Created pod: {name}", component="replicaset-controller")
        elif len(pods) > want:
            # Not-ready pods go first, then the newest (controller.ActivePods ordering, simplified).
            victims = sorted(pods, key=lambda p: (self.pod_ready(p), p["metadata"]["creationTimestamp"],
                                                  p["metadata"]["name"]))
            for pod in victims[: len(pods) - want]:
                self._delete(PODS, pod)
                pods.remove(pod)
                self.event(rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                           component="replicaset-controller")
        ready = sum(1 for p in pods if self.pod_ready(p))
        available = self._available(rs, pods, rs["spec"].get("minReadySeconds", 0))
        new = dict(rs)
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": available, "observedGeneration": rs["metadata"].get("generation", 1)}
        new["status"] = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        self._save(REPLICASETS, rs, new)

    def _node_for(self, owner):
        nodes = self.provider.node_names()
        return random.choice(nodes) if nodes else "sandbox-node-1"

    # -- Deployment -------------------------------------------------------------------------
    def _sync_deployment(self, dep):
        spec = dep["spec"]
        rss = sorted(self._children(REPLICASETS, dep),
                     key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))
        template = spec["template"]
        new_rs = next((r for r in rss if equal_ignore_hash(r["spec"]["template"], template)), None)
        old_rss = [r for r in rss if r is not new_rs]
        max_old = max([revision_of(r) for r in old_rss] or [0])
        # Shallow copies of the parts this sync may change; _save compares and stores a deep copy.
        dep_new = {**dep, "metadata": {**dep["metadata"],
                                       "annotations": dict(dep["metadata"].get("annotations") or {})}}
        status_before = dep.get("status") or {}
        rollout_started = None
        if spec.get("paused"):
            self._deployment_status(dep, dep_new, new_rs, old_rss, None)
            self._save(DEPLOYMENTS, dep, dep_new)
            return
        replicas = spec.get("replicas", 1)
        if new_rs is None:
            collision = (dep.get("status") or {}).get("collisionCount", 0)
            while True:
                pod_hash = compute_hash(template_without_hash(template), collision)
                name = f"{dep['metadata']['name']}-{pod_hash}"
                if self.store.peek(REPLICASETS, dep["metadata"]["namespace"], name) is None:
                    break
                collision += 1
            if collision:
                dep_new["status"] = {**(dep.get("status") or {}), "collisionCount": collision}
            rs_template = clone(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
            selector = clone(spec["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            annotations = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items()
                           if k not in SKIP_ANNOTATIONS}
            surge = self._surge(spec, replicas)
            annotations.update({REVISION: str(max_old + 1), DESIRED: str(replicas),
                                MAX_REPLICAS: str(replicas + surge)})
            initial = 0 if (spec.get("strategy") or {}).get("type") == "Recreate" and old_rss else \
                self._new_rs_replicas(spec, replicas, 0, old_rss)
            new_rs = self._create(REPLICASETS, {
                "metadata": {"name": name, "namespace": dep["metadata"]["namespace"],
                             "labels": dict(rs_template["metadata"]["labels"]), "annotations": annotations,
                             "ownerReferences": [owner_ref(dep, "Deployment")]},
                "spec": {"replicas": initial, **({"minReadySeconds": spec["minReadySeconds"]}
                                                 if spec.get("minReadySeconds") else {}),
                         "selector": selector, "template": rs_template},
                "status": {"replicas": 0}})
            self.event(dep, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {initial}")
            rollout_started = ("NewReplicaSetCreated", f'Created new replica set "{name}"')
        else:
            rs_new = {**new_rs, "metadata": {**new_rs["metadata"],
                                             "annotations": dict(new_rs["metadata"].get("annotations") or {})}}
            annotations = rs_new["metadata"]["annotations"]
            for key, value in (dep["metadata"].get("annotations") or {}).items():
                if key not in SKIP_ANNOTATIONS:
                    annotations[key] = value
            min_ready = spec.get("minReadySeconds") or 0
            if (new_rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs_new["spec"] = {k: v for k, v in new_rs["spec"].items() if k != "minReadySeconds"}
                if min_ready:
                    rs_new["spec"]["minReadySeconds"] = min_ready
            current = revision_of(new_rs)
            if current <= max_old:
                # An old template is back: the ReplicaSet gets the next revision, its old number is kept.
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                annotations[REVISION_HISTORY] = ",".join(history + [str(current)])
                annotations[REVISION] = str(max_old + 1)
                rollout_started = ("FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"')
            if self._save(REPLICASETS, new_rs, rs_new):
                new_rs = self.store.peek(REPLICASETS, rs_new["metadata"]["namespace"], rs_new["metadata"]["name"])
        dep_new["metadata"].setdefault("annotations", {})[REVISION] = str(revision_of(new_rs))
        self._scale(dep, new_rs, old_rss, replicas)
        # Re-read what scaling changed.
        ns = dep["metadata"]["namespace"]
        new_rs = self.store.peek(REPLICASETS, ns, new_rs["metadata"]["name"])
        old_rss = [o for o in (self.store.peek(REPLICASETS, ns, r["metadata"]["name"]) for r in old_rss) if o]
        complete = self._deployment_status(dep, dep_new, new_rs, old_rss, rollout_started, status_before)
        key = (DEPLOYMENTS.key, dep["metadata"]["namespace"], dep["metadata"]["name"])
        stalled = any(c.get("reason") == "ProgressDeadlineExceeded" for c in dep_new["status"].get("conditions", []))
        deadline = spec.get("progressDeadlineSeconds")
        if complete or stalled or deadline is None or spec.get("paused"):
            self.deadlines.pop(key, None)
        else:
            # Look again when the deadline passes, unless progress (a write) brings it here earlier.
            since = self.progress_at.get(dep["metadata"]["uid"], time.time())
            self.deadlines[key] = since + deadline + 0.01
        if complete:
            self._cleanup(dep, old_rss)
        self._save(DEPLOYMENTS, dep, dep_new)

    @staticmethod
    def _surge(spec, replicas):
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return 0
        return resolve_percent((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), replicas, True)

    @staticmethod
    def _unavailable(spec, replicas):
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return 0
        rolling = strategy.get("rollingUpdate") or {}
        surge = resolve_percent(rolling.get("maxSurge", "25%"), replicas, True)
        unavailable = resolve_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return min(unavailable, replicas)

    def _new_rs_replicas(self, spec, replicas, current, old_rss):
        all_replicas = current + sum(r["spec"].get("replicas", 0) for r in old_rss)
        if current >= replicas:
            return replicas
        allowed = replicas + self._surge(spec, replicas)
        if all_replicas >= allowed:
            return current
        return min(replicas, current + allowed - all_replicas)

    def _scale_rs(self, dep, rs, count):
        if rs["spec"].get("replicas", 0) == count:
            return
        before = rs["spec"].get("replicas", 0)
        new = clone(rs)
        new["spec"]["replicas"] = count
        annotations = new["metadata"].setdefault("annotations", {})
        replicas = dep["spec"].get("replicas", 1)
        annotations[DESIRED] = str(replicas)
        annotations[MAX_REPLICAS] = str(replicas + self._surge(dep["spec"], replicas))
        self._save(REPLICASETS, rs, new)
        direction = "up" if count > before else "down"
        self.event(dep, "ScalingReplicaSet", f"Scaled {direction} replica set {rs['metadata']['name']} "
                   f"from {before} to {count}")

    def _scale(self, dep, new_rs, old_rss, replicas):
        spec = dep["spec"]
        ns = dep["metadata"]["namespace"]

        def fresh(rs):
            return self.store.peek(REPLICASETS, ns, rs["metadata"]["name"])

        if (spec.get("strategy") or {}).get("type") == "Recreate":
            active_old = [r for r in old_rss if r["spec"].get("replicas", 0) > 0]
            for rs in active_old:
                self._scale_rs(dep, rs, 0)
            if active_old or any((r.get("status") or {}).get("replicas", 0) for r in old_rss):
                return
            self._scale_rs(dep, new_rs, replicas)
            return
        # Scale up the new ReplicaSet within maxSurge.
        target = self._new_rs_replicas(spec, replicas, new_rs["spec"].get("replicas", 0), old_rss)
        self._scale_rs(dep, new_rs, target)
        new_rs = fresh(new_rs)
        old_rss = [fresh(r) for r in old_rss]
        old_total = sum(r["spec"].get("replicas", 0) for r in old_rss)
        if old_total == 0:
            return
        all_pods = old_total + new_rs["spec"].get("replicas", 0)
        min_available = replicas - self._unavailable(spec, replicas)
        new_unavailable = new_rs["spec"].get("replicas", 0) - (new_rs.get("status") or {}).get("availableReplicas", 0)
        budget = all_pods - min_available - new_unavailable
        # Old pods that are not available anyway go first (cleanupUnhealthyReplicas).
        for rs in sorted(old_rss, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"])):
            if budget <= 0:
                break
            unhealthy = rs["spec"].get("replicas", 0) - (rs.get("status") or {}).get("availableReplicas", 0)
            if unhealthy <= 0:
                continue
            take = min(unhealthy, budget)
            self._scale_rs(dep, rs, rs["spec"]["replicas"] - take)
            budget -= take
        old_rss = [fresh(r) for r in old_rss]
        new_rs = fresh(new_rs)
        available = sum((r.get("status") or {}).get("availableReplicas", 0) for r in old_rss + [new_rs])
        can_remove = available - min_available
        for rs in sorted(old_rss, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"])):
            if can_remove <= 0:
                break
            count = rs["spec"].get("replicas", 0)
            if count == 0:
                continue
            take = min(count, can_remove)
            self._scale_rs(dep, rs, count - take)
            can_remove -= take

    def _deployment_status(self, dep, dep_new, new_rs, old_rss, rollout_started, before=None):
        before = before if before is not None else (dep.get("status") or {})
        spec = dep["spec"]
        replicas = spec.get("replicas", 1)
        all_rss = ([new_rs] if new_rs else []) + old_rss

        def st(rs, key):
            return (rs.get("status") or {}).get(key, 0)
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": sum(st(r, "replicas") for r in all_rss),
            "updatedReplicas": st(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(st(r, "readyReplicas") for r in all_rss),
            "availableReplicas": sum(st(r, "availableReplicas") for r in all_rss),
        }
        total_spec = sum(r["spec"].get("replicas", 0) for r in all_rss)
        status["unavailableReplicas"] = max(total_spec - status["availableReplicas"], 0)
        if before.get("collisionCount") or (dep_new.get("status") or {}).get("collisionCount"):
            status["collisionCount"] = (dep_new.get("status") or {}).get("collisionCount") or before["collisionCount"]
        conditions = clone(before.get("conditions") or [])
        stamp = now_rfc3339()
        uid = dep["metadata"]["uid"]

        def set_condition(ctype, cstatus, reason, message, touch=True):
            current = next((c for c in conditions if c["type"] == ctype), None)
            if current and current["status"] == cstatus and current["reason"] == reason \
                    and current["message"] == message and not touch:
                return
            entry = {"type": ctype, "status": cstatus, "lastUpdateTime": stamp,
                     "lastTransitionTime": stamp, "reason": reason, "message": message}
            if current and current["status"] == cstatus:
                entry["lastTransitionTime"] = current["lastTransitionTime"]
            if current:
                conditions[conditions.index(current)] = entry
            else:
                conditions.append(entry)

        min_available = replicas - self._unavailable(spec, replicas)
        if status["availableReplicas"] >= min_available:
            set_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                          touch=False)
        else:
            set_condition("Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", touch=False)
        complete = (status["updatedReplicas"] == replicas and status["availableReplicas"] == replicas
                    and status["replicas"] == replicas)
        name = new_rs["metadata"]["name"] if new_rs else ""
        progressing = next((c for c in conditions if c["type"] == "Progressing"), None)
        if spec.get("paused"):
            set_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", touch=False)
        elif rollout_started:
            set_condition("Progressing", "True", *rollout_started)
            self.progress_at[uid] = time.time()
        elif complete:
            if not progressing or progressing["reason"] != "NewReplicaSetAvailable":
                set_condition("Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{name}" has successfully progressed.')
        elif (status["updatedReplicas"] > before.get("updatedReplicas", 0)
              or status["readyReplicas"] > before.get("readyReplicas", 0)
              or status["availableReplicas"] > before.get("availableReplicas", 0)
              or status["replicas"] - status["updatedReplicas"]
              < before.get("replicas", 0) - before.get("updatedReplicas", 0)):
            set_condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
            self.progress_at[uid] = time.time()
        elif progressing and progressing["reason"] != "ProgressDeadlineExceeded" \
                and spec.get("progressDeadlineSeconds") is not None:
            since = self.progress_at.get(uid) or _parse_time(progressing.get("lastUpdateTime")) or time.time()
            self.progress_at.setdefault(uid, since)
            if time.time() - since > spec["progressDeadlineSeconds"]:
                set_condition("Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{name}" has timed out progressing.')
        elif progressing is None:
            set_condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
            self.progress_at[uid] = time.time()
        # Keep the order the real controller produces: Available first, then Progressing.
        conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        status["conditions"] = conditions
        dep_new["status"] = status
        return complete and not spec.get("paused")

    def _cleanup(self, dep, old_rss):
        limit = dep["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        idle = [r for r in old_rss if r["spec"].get("replicas", 0) == 0 and (r.get("status") or {}).get("replicas", 0) == 0]
        excess = len(idle) - limit
        if excess <= 0:
            return
        for rs in sorted(idle, key=revision_of)[:excess]:
            self._delete(REPLICASETS, rs)

    # -- ControllerRevisions (StatefulSet, DaemonSet) ---------------------------------------
    @staticmethod
    def revision_data(template):
        patch_template = clone(template)
        patch_template["$patch"] = "replace"
        return {"spec": {"template": patch_template}}

    def _revisions(self, owner, kind, hash_label):
        """Ensure the ControllerRevision for the owner's template; return (update, all revisions sorted)."""
        revisions = sorted(self._children(REVISIONS, owner), key=lambda r: r.get("revision", 0))
        data = self.revision_data(owner["spec"]["template"])
        latest = revisions[-1]["revision"] if revisions else 0
        equal = [r for r in revisions if r.get("data") == data]
        if equal:
            update = equal[-1]
            if update["revision"] < latest:
                new = clone(update)
                new["revision"] = latest + 1
                self._save(REVISIONS, update, new)
                update = self.store.peek(REVISIONS, new["metadata"]["namespace"], new["metadata"]["name"])
                revisions = sorted(self._children(REVISIONS, owner), key=lambda r: r.get("revision", 0))
                revisions = [update if r["metadata"]["uid"] == update["metadata"]["uid"] else r for r in revisions]
                revisions.sort(key=lambda r: r.get("revision", 0))
            return update, revisions
        collision = (owner.get("status") or {}).get("collisionCount", 0)
        while True:
            digest = compute_hash(data, collision)
            name = f"{owner['metadata']['name']}-{digest}"
            if self.store.peek(REVISIONS, owner["metadata"]["namespace"], name) is None:
                break
            collision += 1
        labels = dict((owner["spec"]["template"].get("metadata") or {}).get("labels") or {})
        labels[hash_label] = digest
        update = self._create(REVISIONS, {
            "metadata": {"name": name, "namespace": owner["metadata"]["namespace"], "labels": labels,
                         "annotations": dict(owner["metadata"].get("annotations") or {}),
                         "ownerReferences": [owner_ref(owner, kind)]},
            "data": data, "revision": latest + 1})
        return update, revisions + [update]

    def _template_of(self, revision):
        template = clone(revision["data"]["spec"]["template"])
        template.pop("$patch", None)
        return template

    def _truncate_history(self, owner, revisions, live_names):
        limit = owner["spec"].get("revisionHistoryLimit", 10)
        idle = [r for r in revisions if r["metadata"]["name"] not in live_names]
        for revision in idle[: max(len(idle) - limit, 0)]:
            self._delete(REVISIONS, revision)

    # -- StatefulSet ------------------------------------------------------------------------
    def _sync_statefulset(self, sts):
        update, revisions = self._revisions(sts, "StatefulSet", "controller.kubernetes.io/hash")
        by_name = {r["metadata"]["name"]: r for r in revisions}
        status_before = sts.get("status") or {}
        current_name = status_before.get("currentRevision") or update["metadata"]["name"]
        current = by_name.get(current_name, update)
        replicas = sts["spec"].get("replicas", 1)
        name = sts["metadata"]["name"]
        pods = {p["metadata"]["name"]: p for p in self._children(PODS, sts)}
        rolling = (sts["spec"].get("updateStrategy") or {}).get("type") == "RollingUpdate"
        partition = ((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0) \
            if rolling else replicas
        ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name in pods:
                continue
            if ordered and not all(self.pod_ready(pods[f"{name}-{i}"]) for i in range(ordinal)
                                   if f"{name}-{i}" in pods):
                break
            revision = current if (ordinal < partition and rolling) or not rolling else update
            labels = {"controller-revision-hash": revision["metadata"]["name"],
                      "statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": str(ordinal)}
            pods[pod_name] = self.new_pod(sts, "StatefulSet", pod_name, self._template_of(revision), labels,
                                          self._node_for(sts))
            self.event(sts, "SuccessfulCreate", f"create Pod {pod_name} in StatefulSet {name} successful",
                       component="statefulset-controller")
            if ordered:
                break
        # Scale down from the highest ordinal, one at a time.
        extra = sorted((p for n, p in pods.items() if int(n.rsplit("-", 1)[1]) >= replicas),
                       key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[1]))
        if extra and all(self.pod_ready(p) for n, p in pods.items() if p not in extra) or (extra and not ordered):
            self._delete(PODS, extra[0])
            pods.pop(extra[0]["metadata"]["name"])
        # Rolling update: the highest ordinal not on the update revision, once all pods are ready.
        update_name = update["metadata"]["name"]
        if rolling and len(pods) == replicas and all(self.pod_ready(p) for p in pods.values()):
            stale = sorted((p for p in pods.values()
                            if p["metadata"]["labels"].get("controller-revision-hash") != update_name
                            and int(p["metadata"]["name"].rsplit("-", 1)[1]) >= partition),
                           key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[1]))
            if stale:
                self._delete(PODS, stale[0])
                pods.pop(stale[0]["metadata"]["name"])
        # Otherwise a pod that is not Running and Ready blocks the rollout (OrderedReady), whatever its revision:
        # after rolling back from a broken template the stuck pod must be deleted by hand, as on a real cluster
        # ("forced rollback" in the StatefulSet documentation).
        live = list(pods.values())
        ready = sum(1 for p in live if self.pod_ready(p))
        available = self._available(sts, live, sts["spec"].get("minReadySeconds", 0))
        updated = sum(1 for p in live if p["metadata"]["labels"].get("controller-revision-hash") == update_name)
        current_count = sum(1 for p in live if p["metadata"]["labels"].get("controller-revision-hash") == current_name)
        if updated == replicas and ready == replicas and len(live) == replicas:
            current_name, current_count = update_name, updated
        new = dict(sts)
        new["status"] = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(live),
                         "readyReplicas": ready, "currentReplicas": current_count, "updatedReplicas": updated,
                         "currentRevision": current_name, "updateRevision": update_name,
                         "collisionCount": status_before.get("collisionCount", 0), "availableReplicas": available}
        self._save(STATEFULSETS, sts, new)
        self._truncate_history(sts, revisions, {current_name, update_name} |
                               {p["metadata"]["labels"].get("controller-revision-hash") for p in live})

    # -- DaemonSet --------------------------------------------------------------------------
    def _sync_daemonset(self, ds):
        update, revisions = self._revisions(ds, "DaemonSet", "controller-revision-hash")
        update_hash = update["metadata"]["labels"]["controller-revision-hash"]
        nodes = self.provider.node_names()
        pods = self._children(PODS, ds)
        by_node = {}
        for pod in pods:
            by_node.setdefault(pod["spec"].get("nodeName"), []).append(pod)
        for node in nodes:
            if node not in by_node:
                name = f"{ds['metadata']['name']}-{''.join(random.choice(SAFE_ALPHABET) for _unused in range(5))}"
                labels = {"controller-revision-hash": update_hash,
                          "pod-template-generation": str(ds["metadata"].get("generation", 1))}
                by_node[node] = [self.new_pod(ds, "DaemonSet", name, ds["spec"]["template"], labels, node)]
                self.event(ds, "SuccessfulCreate", f"Created pod: {name}", component="daemonset-controller")
        for node, node_pods in list(by_node.items()):
            if node not in nodes:
                for pod in node_pods:
                    self._delete(PODS, pod)
                del by_node[node]
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "RollingUpdate":
            max_unavailable = resolve_percent((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1),
                                              len(nodes), True) or 1
            unavailable = sum(1 for node_pods in by_node.values() if not any(self.pod_ready(p) for p in node_pods))
            for node, node_pods in sorted(by_node.items()):
                old = [p for p in node_pods if p["metadata"]["labels"].get("controller-revision-hash") != update_hash]
                if not old:
                    continue
                pod = old[0]
                if not self.pod_ready(pod):
                    self._delete(PODS, pod)  # an unavailable old pod is replaced at once
                    node_pods.remove(pod)
                elif unavailable < max_unavailable:
                    self._delete(PODS, pod)
                    node_pods.remove(pod)
                    unavailable += 1
        live = [p for node_pods in by_node.values() for p in node_pods]
        ready = sum(1 for p in live if self.pod_ready(p))
        available = self._available(ds, live, ds["spec"].get("minReadySeconds", 0))
        updated = sum(1 for p in live if p["metadata"]["labels"].get("controller-revision-hash") == update_hash)
        scheduled = sum(1 for node_pods in by_node.values() if node_pods)
        new = dict(ds)
        status = {"currentNumberScheduled": scheduled, "numberMisscheduled": 0, "desiredNumberScheduled": len(nodes),
                  "numberReady": ready, "observedGeneration": ds["metadata"].get("generation", 1),
                  "updatedNumberScheduled": updated, "numberAvailable": available,
                  "numberUnavailable": len(nodes) - available}
        new["status"] = {k: v for k, v in status.items() if v or k in (
            "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady")}
        self._save(DAEMONSETS, ds, new)
        live_hashes = {p["metadata"]["labels"].get("controller-revision-hash") for p in live}
        self._truncate_history(ds, revisions, {update["metadata"]["name"]} |
                               {r["metadata"]["name"] for r in revisions
                                if r["metadata"]["labels"].get("controller-revision-hash") in live_hashes})
