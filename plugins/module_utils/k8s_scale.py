# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Scale a Kubernetes Deployment or StatefulSet out/in and wait until the replicas serve.

The Kubernetes half of the P2 "scale up/out" answer: a replica count reached
directly, by a step, or from a record a previous run returned
(``to: "{{ scaled.before }}"``), within a ``floor`` and a ``ceiling`` the
inventory sets. What ``kubectl scale`` does (a merge patch of the ``/scale``
subresource), then what ``kubectl rollout status`` waits for: the controller
has observed the change (``status.observedGeneration`` >= ``metadata.generation``)
and ``status.readyReplicas`` and ``status.replicas`` equal the replicas asked for.

- :class:`WorkloadApi` reads the object and patches its scale (plain JSON
  through :class:`KubernetesRest`, so errors and retries are the collection's).
- :class:`ReplicaScale` decides, refuses before any change, scales and waits.

Nothing here imports AnsibleModule.
"""

from __future__ import annotations

import time

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, whole_number
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import KubernetesError, KubernetesSettings
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import OperationTimeout

KINDS = {"deployment": ("Deployment", "deployments"), "statefulset": ("StatefulSet", "statefulsets")}
POLL_INTERVAL_S = 1.0


def canonical(kind):
    """``Deployment`` or ``StatefulSet`` from any spelling (``deploy``, ``sts``, ``statefulsets``)."""
    aliases = {"deploy": "deployment", "deployments": "deployment", "sts": "statefulset",
               "statefulsets": "statefulset"}
    key = (kind or "").lower()
    key = aliases.get(key, key)
    if key not in KINDS:
        raise RollbackError("kind must be Deployment or StatefulSet, not %r." % kind)
    return KINDS[key][0]


def _int(value):
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def replica_status(obj):
    """What the object reports about its replicas, and whether that is the desired count served."""
    metadata, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas")
    desired = 1 if desired is None else _int(desired)  # the API server defaults an absent count to 1
    generation = _int(metadata.get("generation"))
    observed = _int(status.get("observedGeneration"))
    state = {
        "replicas": desired,
        "current_replicas": _int(status.get("replicas")),
        "ready_replicas": _int(status.get("readyReplicas")),
        "available_replicas": _int(status.get("availableReplicas")),
        "updated_replicas": _int(status.get("updatedReplicas")),
        "generation": generation,
        "observed_generation": observed,
    }
    state["serving"] = (observed >= generation and state["ready_replicas"] == desired
                        and state["current_replicas"] == desired)
    return state


class ScaleRequest:
    """What the task asks for, checked for shape before the cluster is asked anything."""

    def __init__(self, replicas=None, step=None, floor=None, ceiling=None):
        self.replicas = replicas
        self.step = step
        self.floor = floor
        self.ceiling = ceiling

    @classmethod
    def from_params(cls, params):
        to = params.get("to")
        given = [o for o in ("replicas", "step") if params.get(o) is not None]
        if to is not None:
            if given:
                raise RollbackError("to restores a recorded replica count; do not combine it with %s."
                                    % ", ".join(given))
            if not isinstance(to, dict) or "replicas" not in to:
                raise RollbackError("to must be a replica count recorded by an earlier run (its before), for "
                                    "example {replicas: 3}.")
            unknown = sorted(set(to) - {"replicas"})
            if unknown:
                raise RollbackError("to takes replicas (the before of an earlier run), not %s." % ", ".join(unknown))
            request = cls(replicas=whole_number(to["replicas"], "to.replicas"))
        elif not given:
            raise RollbackError("Say how many replicas: replicas, step, or to (a recorded count).")
        elif len(given) == 2:
            raise RollbackError("replicas and step both set the replica count: give one of them.")
        else:
            request = cls(replicas=params.get("replicas"), step=params.get("step"))
        if request.replicas is not None and request.replicas < 0:
            raise RollbackError("replicas must be 0 or more, not %s." % request.replicas)
        for option in ("floor", "ceiling"):
            value = params.get(option)
            if value is not None and value < 0:
                raise RollbackError("%s must be 0 or more, not %s." % (option, value))
            setattr(request, option, value)
        if request.floor is not None and request.ceiling is not None and request.floor > request.ceiling:
            raise RollbackError("floor %s is above ceiling %s." % (request.floor, request.ceiling))
        return request

    def target(self, current, where):
        """The replica count to reach from ``current``, within floor and ceiling."""
        # step 0 keeps the count: a read of the size now (the evidence step of a procedure).
        replicas = current + self.step if self.step is not None else self.replicas
        problems = []
        if replicas < 0:
            problems.append("%s%+d replicas is below 0" % (current, self.step))
        if self.floor is not None and replicas < self.floor:
            problems.append("%s replicas is below the floor of %s" % (replicas, self.floor))
        if self.ceiling is not None and replicas > self.ceiling:
            problems.append("%s replicas is above the ceiling of %s" % (replicas, self.ceiling))
        if problems:
            raise RollbackError("Scaling %s to %s replicas is refused: %s. Change floor/ceiling in the inventory "
                                "if this count is really wanted." % (where, replicas, "; ".join(problems)),
                                requested={"replicas": replicas}, floor=self.floor, ceiling=self.ceiling)
        return replicas


class WorkloadApi:
    """Reads and the scale call for one Deployment or StatefulSet (apps/v1)."""

    def __init__(self, rest, kind, namespace, name):
        self.rest = rest
        self.kind = canonical(kind)
        self.namespace = namespace
        self.name = name
        plural = KINDS[self.kind.lower()][1]
        self.path = "/apis/apps/v1/namespaces/%s/%s/%s" % (namespace, plural, name)

    @classmethod
    def from_params(cls, params):
        settings = KubernetesSettings.from_params(params)
        return cls(settings.rest(), params["kind"], params["namespace"], params["name"])

    def __str__(self):
        return "%s %s/%s" % (self.kind, self.namespace, self.name)

    def read(self):
        try:
            return self.rest.get(self.path, what="read %s" % self)
        except KubernetesError as error:
            if error.status == 404:
                raise RollbackError("%s not found: check kind, namespace and name (and the kubeconfig context)."
                                    % self, status=404) from error
            raise

    def scale(self, replicas):
        """``kubectl scale``: a merge patch of the scale subresource; returns the Scale object."""
        return self.rest.patch(self.path + "/scale", {"spec": {"replicas": replicas}},
                               what="scale %s to %s replicas" % (self, replicas))


class ReplicaScale:
    """Bring one workload to the replica count asked for and wait until they serve."""

    def __init__(self, api, check_mode=False, wait=True, wait_timeout=300, sleep=time.sleep, clock=time.monotonic):
        self.api = api
        self.check_mode = check_mode
        self.wait = wait
        self.wait_timeout = wait_timeout
        self._sleep = sleep
        self._clock = clock

    def run(self, request):
        """Returns ``(changed, result)``; every refusal comes before the write."""
        if self.wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        started = self._clock()
        obj = self.api.read()
        before = replica_status(obj)
        target = request.target(before["replicas"], str(self.api))
        changed = target != before["replicas"]
        result = {
            "kind": self.api.kind,
            "namespace": self.api.namespace,
            "name": self.api.name,
            "before": {"replicas": before["replicas"]},
            "requested": {"replicas": target},
            "changes": [],
            "progress": [],
            "diff": {"before": "replicas: %s\n" % before["replicas"], "after": "replicas: %s\n" % target},
        }
        if changed:
            way = "out" if target > before["replicas"] else "in"
            result["changes"].append("scale %s: replicas %s -> %s" % (way, before["replicas"], target))
        if self.check_mode:
            result.update(after={"replicas": target}, ready_replicas=before["ready_replicas"], waited_s=0.0)
            return changed, result
        if changed:
            self.api.scale(target)
        if self.wait:
            state = self._wait_serving(target, started, result["progress"], changed)
        else:
            state = replica_status(self.api.read())
        result.update(after={"replicas": state["replicas"]}, ready_replicas=state["ready_replicas"],
                      waited_s=round(self._clock() - started, 2))
        return changed, result

    def _wait_serving(self, target, started, progress, changed):
        deadline = started + self.wait_timeout
        while True:
            state = replica_status(self.api.read())
            if state["replicas"] != target:
                # Someone else (an autoscaler, another run) set another count meanwhile.
                raise RollbackError("%s was set to %s replicas by someone else while waiting for %s (a "
                                    "HorizontalPodAutoscaler?)." % (self.api, state["replicas"], target),
                                    changed=changed, state=state, progress=progress)
            status = "%s/%s ready" % (state["ready_replicas"], target)
            if state["observed_generation"] < state["generation"]:
                status = "waiting for the controller to observe generation %s" % state["generation"]
            if not progress or progress[-1]["status"] != status:
                progress.append({"elapsed_s": round(self._clock() - started, 2), "status": status})
            if state["serving"]:
                return state
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise OperationTimeout(
                    "%s did not serve %s ready replicas within %s s (now %s ready, %s current, observed generation "
                    "%s of %s); the controller may still be working." % (
                        self.api, target, self.wait_timeout, state["ready_replicas"], state["current_replicas"],
                        state["observed_generation"], state["generation"]),
                    changed=changed, state=state, progress=progress)
            self._sleep(min(POLL_INTERVAL_S, remaining))


def scale_replicas(params, check_mode=False, connect=WorkloadApi.from_params):
    """The module's work: ``(changed, result)``. The request is checked before the cluster is asked anything."""
    canonical(params["kind"])
    request = ScaleRequest.from_params(params)
    scale = ReplicaScale(connect(params), check_mode=check_mode, wait=params["wait"],
                         wait_timeout=params["wait_timeout"])
    return scale.run(request)
