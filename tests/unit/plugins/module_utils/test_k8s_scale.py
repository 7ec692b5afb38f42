# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import KubernetesError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_scale import (
    ReplicaScale,
    ScaleRequest,
    WorkloadApi,
    canonical,
    replica_status,
)
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import OperationTimeout


def params(**kwargs):
    base = dict(kind="Deployment", name="api", namespace="shop", replicas=None, step=None, to=None, floor=None,
                ceiling=None, wait=True, wait_timeout=30)
    base.update(kwargs)
    return base


def deployment(replicas=3, ready=None, current=None, generation=4, observed=None):
    status = {"replicas": replicas if current is None else current,
              "observedGeneration": generation if observed is None else observed}
    ready = replicas if ready is None else ready
    if ready:
        status["readyReplicas"] = ready  # the API server leaves zero counts out
    return {"metadata": {"name": "api", "namespace": "shop", "generation": generation},
            "spec": {"replicas": replicas}, "status": status}


class FakeRest:
    """GETs answer from a script (the last answer repeats); PATCHes are recorded."""

    def __init__(self, *reads, after_patch=(), get_error=None):
        self.reads = list(reads)
        self.after_patch = list(after_patch)
        self.patches = []
        self.get_error = get_error

    def get(self, path, query=None, what=None):
        if self.get_error:
            raise self.get_error
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def patch(self, path, body, patch_type="merge", what=None):
        self.patches.append((path, body, patch_type))
        if self.after_patch:
            self.reads = list(self.after_patch)
        return {"spec": body["spec"]}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(rest, check_mode=False, wait=True, wait_timeout=30, kind="Deployment", **kwargs):
    clock = Clock()
    api = WorkloadApi(rest, kind, "shop", "api")
    scale = ReplicaScale(api, check_mode=check_mode, wait=wait, wait_timeout=wait_timeout, sleep=clock.sleep,
                         clock=clock)
    return scale.run(ScaleRequest.from_params(params(**kwargs)))


@pytest.mark.parametrize("kind,expected", [("deployment", "Deployment"), ("deploy", "Deployment"),
                                           ("StatefulSets", "StatefulSet"), ("sts", "StatefulSet")])
def test_canonical_kind(kind, expected):
    assert canonical(kind) == expected


def test_canonical_kind_refuses_others():
    with pytest.raises(RollbackError, match="Deployment or StatefulSet, not 'DaemonSet'"):
        canonical("DaemonSet")


def test_replica_status_reads_absent_counts_as_zero_and_absent_spec_as_one():
    state = replica_status({"metadata": {"generation": 2}, "spec": {}, "status": {"observedGeneration": 1}})
    assert state["replicas"] == 1 and state["ready_replicas"] == 0 and not state["serving"]
    assert replica_status(deployment(0))["serving"]


@pytest.mark.parametrize("kwargs,message", [
    ({}, "Say how many replicas"),
    ({"replicas": 2, "step": 1}, "give one of them"),
    ({"replicas": -1}, "replicas must be 0 or more"),
    ({"to": {"replicas": 2}, "step": 1}, "do not combine it with step"),
    ({"to": {"count": 2}}, "for example {replicas: 3}"),
    ({"to": {"replicas": 2, "kind": "x"}}, "not kind"),
    ({"to": {"replicas": "two"}}, "to.replicas must be a whole number"),
    ({"replicas": 2, "floor": 5, "ceiling": 3}, "floor 5 is above ceiling 3"),
    ({"replicas": 2, "floor": -1}, "floor must be 0 or more"),
])
def test_request_refusals(kwargs, message):
    with pytest.raises(RollbackError, match=message):
        ScaleRequest.from_params(params(**kwargs))


def test_check_mode_predicts_and_patches_nothing():
    rest = FakeRest(deployment(3))
    changed, result = run(rest, check_mode=True, step=2)
    assert changed and rest.patches == []
    assert result["before"] == {"replicas": 3} and result["after"] == {"replicas": 5}
    assert result["changes"] == ["scale out: replicas 3 -> 5"]


def test_scale_patches_the_scale_subresource_and_waits_for_ready():
    rest = FakeRest(deployment(3), after_patch=[
        deployment(5, ready=3, current=3, generation=5, observed=4),
        deployment(5, ready=4, generation=5),
        deployment(5, ready=5, generation=5)])
    changed, result = run(rest, replicas=5)
    assert changed
    assert rest.patches == [("/apis/apps/v1/namespaces/shop/deployments/api/scale", {"spec": {"replicas": 5}},
                             "merge")]
    assert [p["status"] for p in result["progress"]] == [
        "waiting for the controller to observe generation 5", "4/5 ready", "5/5 ready"]
    assert result["after"] == {"replicas": 5} and result["ready_replicas"] == 5


def test_statefulset_path():
    rest = FakeRest(deployment(2), after_patch=[deployment(1)])
    run(rest, kind="sts", to={"replicas": 1})
    assert rest.patches[0][0] == "/apis/apps/v1/namespaces/shop/statefulsets/api/scale"


def test_same_count_is_unchanged_but_still_waits_for_ready():
    rest = FakeRest(deployment(3, ready=2), deployment(3, ready=3))
    changed, result = run(rest, replicas=3)
    assert not changed and rest.patches == []
    assert result["ready_replicas"] == 3


@pytest.mark.parametrize("kwargs,message", [
    ({"step": -2, "floor": 2}, "1 replicas is below the floor of 2"),
    ({"replicas": 9, "ceiling": 8}, "9 replicas is above the ceiling of 8"),
    ({"step": -4}, "3-4 replicas is below 0"),
])
def test_floor_ceiling_and_zero_refuse_before_the_patch(kwargs, message):
    rest = FakeRest(deployment(3))
    with pytest.raises(RollbackError, match=message):
        run(rest, **kwargs)
    assert rest.patches == []


def test_missing_workload_is_a_clear_error():
    rest = FakeRest(get_error=KubernetesError("Kubernetes API: cannot read ...", status=404, reason="NotFound"))
    with pytest.raises(RollbackError, match="Deployment shop/api not found"):
        run(rest, replicas=2)


def test_replicas_that_never_get_ready_time_out_with_the_state():
    rest = FakeRest(deployment(3), after_patch=[deployment(5, ready=3, current=5)])
    with pytest.raises(OperationTimeout, match="did not serve 5 ready replicas within 5 s \\(now 3 ready") as err:
        run(rest, replicas=5, wait_timeout=5)
    assert err.value.details["changed"] is True
    assert err.value.details["state"]["ready_replicas"] == 3


def test_a_count_changed_by_someone_else_stops_the_wait():
    rest = FakeRest(deployment(3), after_patch=[deployment(4, ready=3)])
    with pytest.raises(RollbackError, match="set to 4 replicas by someone else while waiting for 5"):
        run(rest, replicas=5)


def test_without_wait_returns_after_the_patch():
    rest = FakeRest(deployment(3), after_patch=[deployment(5, ready=3)])
    changed, result = run(rest, wait=False, replicas=5)
    assert changed and result["ready_replicas"] == 3 and result["progress"] == []


def test_step_zero_reads_the_count_and_changes_nothing():
    rest = FakeRest(deployment(3))
    changed, result = run(rest, check_mode=True, step=0)
    assert not changed and rest.patches == []
    assert result["before"] == result["after"] == {"replicas": 3}
