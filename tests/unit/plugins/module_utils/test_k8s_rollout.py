# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_rollout: revision choice, template comparison, the undo body, rollout status, diff and the fleet runner.

Pure Python: a small in-memory API stands in for the server where the runner needs one.
"""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import KubernetesError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_rollout import (
    CHANGE_CAUSE_ANNOTATION,
    UNDO_ANNOTATION,
    FleetError,
    RevisionNotFound,
    RolloutUndo,
    Target,
    build_diff,
    canonical_kind,
    choose_target,
    fleet_summary,
    history_from_controller_revisions,
    history_from_replicasets,
    normalize_template,
    rollout_status,
    rollout_undo,
    sort_events,
    template_fingerprint,
    templates_equal,
    undo_body,
)

UID = "uid-api"


def template(image, hash_label=None, **spec_extra):
    labels = {"app": "api"}
    if hash_label:
        labels["pod-template-hash"] = hash_label
    spec = {"containers": [{"name": "api", "image": image}]}
    spec.update(spec_extra)
    return {"metadata": {"labels": labels}, "spec": spec}


def replicaset(revision, image, cause=None, ready=0, owner=UID):
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        annotations[CHANGE_CAUSE_ANNOTATION] = cause
    return {
        "metadata": {"name": "api-h%d" % revision, "annotations": annotations, "creationTimestamp": "2026-12-0%dT10:00:00Z" % revision,
                     "ownerReferences": [{"kind": "Deployment", "uid": owner, "controller": True}]},
        "spec": {"template": template(image, "h%d" % revision)},
        "status": {"replicas": ready, "readyReplicas": ready},
    }


def deployment(image, revision, annotations=None, generation=5, **status):
    metadata_annotations = {"deployment.kubernetes.io/revision": str(revision), "team": "mystira"}
    metadata_annotations.update(annotations or {})
    return {
        "metadata": {"name": "api", "namespace": "mystira", "uid": UID, "generation": generation,
                     "resourceVersion": "100", "labels": {"app": "api", "tier": "backend"},
                     "annotations": metadata_annotations},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}}, "template": template(image)},
        "status": status,
    }


def three_revisions():
    return history_from_replicasets(deployment("api:v3", 3), [
        replicaset(1, "api:v1", "deploy v1"), replicaset(2, "api:v2", "deploy v2"), replicaset(3, "api:v3", "deploy v3", 3)])


# ------------------------------------------------------------------------------ kinds
@pytest.mark.parametrize("given, expected", [("Deployment", "Deployment"), ("deploy", "Deployment"), ("sts", "StatefulSet"),
                                             ("daemonsets", "DaemonSet"), (None, "Deployment")])
def test_canonical_kind(given, expected):
    assert canonical_kind(given) == expected


def test_kind_that_cannot_be_rolled_back_names_the_ones_that_can():
    with pytest.raises(RollbackError, match="kind ReplicaSet cannot be rolled back.*Deployment, StatefulSet and DaemonSet"):
        canonical_kind("ReplicaSet")


# ------------------------------------------------------------------ template comparison
def test_pod_template_hash_and_defaults_do_not_make_templates_differ():
    defaulted = template("api:v2", "abc", restartPolicy="Always", dnsPolicy="ClusterFirst", terminationGracePeriodSeconds=30,
                         schedulerName="default-scheduler", securityContext={})
    defaulted["metadata"]["creationTimestamp"] = None
    container = defaulted["spec"]["containers"][0]
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                     terminationMessagePolicy="File", resources={}, ports=[{"containerPort": 80, "protocol": "TCP"}])
    plain = template("api:v2")
    plain["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    assert templates_equal(defaulted, plain)
    assert template_fingerprint(defaulted) == template_fingerprint(plain)


def test_a_real_difference_is_seen():
    assert not templates_equal(template("api:v2"), template("api:v3"))
    assert not templates_equal(template("api:v2"), template("api:v2", restartPolicy="Never"))
    env = template("api:v2")
    env["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "safe"}]
    assert not templates_equal(env, template("api:v2"))


def test_latest_tag_defaults_to_always_pull():
    latest = template("api:latest")
    latest["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert templates_equal(latest, template("api:latest"))
    pinned = template("api:v1")
    pinned["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert not templates_equal(pinned, template("api:v1"))


def test_normalize_does_not_change_its_input():
    original = template("api:v1", "h1", restartPolicy="Always")
    kept = copy.deepcopy(original)
    normalize_template(original)
    assert original == kept


# --------------------------------------------------------------------------- history
def test_history_keeps_only_owned_revisions_in_order():
    history = history_from_replicasets(deployment("api:v3", 3), [
        replicaset(3, "api:v3", "deploy v3"), replicaset(1, "api:v1"), replicaset(7, "other:v7", owner="someone-else"),
        {"metadata": {"name": "no-revision", "ownerReferences": [{"uid": UID, "controller": True}]}, "spec": {}}])
    assert [entry["revision"] for entry in history] == [1, 3]
    assert history[0]["change_cause"] is None and history[1]["change_cause"] == "deploy v3"
    assert history[1]["images"] == ["api:v3"]


def test_controller_revision_history_reads_the_patch_template():
    owner = {"metadata": {"uid": "sts-uid"}}
    revisions = [{"metadata": {"name": "cache-%d" % number, "ownerReferences": [{"uid": "sts-uid", "controller": True}],
                               "annotations": {CHANGE_CAUSE_ANNOTATION: "cache %d" % number}},
                  "revision": number,
                  "data": {"spec": {"template": dict(template("cache:%d" % number), **{"$patch": "replace"})}}}
                 for number in (2, 1)]
    history = history_from_controller_revisions(owner, revisions)
    assert [entry["revision"] for entry in history] == [1, 2]
    assert "$patch" not in history[0]["template"]
    assert history[1]["images"] == ["cache:2"] and history[1]["change_cause"] == "cache 2"


# ------------------------------------------------------------------ revision selection
def test_previous_is_the_newest_older_revision_with_another_template():
    entry, already, _note = choose_target(three_revisions(), template("api:v3"))
    assert (entry["revision"], already) == (2, False)


def test_previous_skips_an_older_revision_equal_to_the_live_template():
    history = history_from_replicasets(deployment("api:v2", 3), [
        replicaset(1, "api:v1"), replicaset(2, "api:v2"), replicaset(3, "api:v2")])
    entry, already, _note = choose_target(history, template("api:v2"))
    assert entry["revision"] == 1 and not already


def test_previous_while_the_controller_has_not_made_the_new_revision_yet():
    # The template was just changed to v4: no ReplicaSet has it, so revision 3 is "previous".
    entry, _already, _note = choose_target(three_revisions(), template("api:v4"))
    assert entry["revision"] == 3


def test_to_revision_equal_to_live_is_already_there():
    entry, already, _note = choose_target(three_revisions(), template("api:v3"), to_revision=3)
    assert entry["revision"] == 3 and already


def test_to_revision_not_in_history_lists_the_revisions():
    with pytest.raises(RevisionNotFound, match=r"revision 9 is not in the rollout history of the object \(revisions: 1, 2, 3\)"):
        choose_target(three_revisions(), template("api:v3"), to_revision=9)


def test_nothing_to_roll_back_to():
    history = history_from_replicasets(deployment("api:v3", 3), [replicaset(3, "api:v3")])
    with pytest.raises(RevisionNotFound, match="no previous revision to roll back to.*revisionHistoryLimit 0"):
        choose_target(history, template("api:v3"), what="deployment mystira/api")


def after_undo_history():
    """Revision 2 (v2) was rolled back to from 3: the controller renumbered it to 4."""
    return history_from_replicasets(deployment("api:v2", 4), [
        replicaset(1, "api:v1"), replicaset(3, "api:v3"), replicaset(4, "api:v2", ready=3)])


def marker(left, to, image):
    return {"from": left, "to": to, "template": template_fingerprint(template(image))}


def test_rerun_of_previous_recognises_its_own_undo():
    entry, already, note = choose_target(after_undo_history(), template("api:v2"), marker=marker(3, 2, "api:v2"))
    assert already and entry["revision"] == 4
    assert "already rolled back from revision 3" in note


def test_rerun_before_the_controller_renumbered_is_also_recognised():
    history = three_revisions()  # the template is v2 already, revision 2 not yet renumbered
    entry, already, _note = choose_target(history, template("api:v2"), marker=marker(3, 2, "api:v2"))
    assert already and entry["revision"] == 2


def test_without_the_marker_previous_goes_back_again_as_kubectl_would():
    entry, already, _note = choose_target(after_undo_history(), template("api:v2"))
    assert entry["revision"] == 3 and not already


def test_a_release_after_the_undo_makes_previous_work_again():
    history = history_from_replicasets(deployment("api:v5", 5), [
        replicaset(1, "api:v1"), replicaset(3, "api:v3"), replicaset(4, "api:v2"), replicaset(5, "api:v5")])
    entry, already, _note = choose_target(history, template("api:v5"), marker=marker(3, 2, "api:v2"))
    assert entry["revision"] == 4 and not already


def test_rerun_with_to_revision_after_renumbering_is_unchanged():
    entry, already, note = choose_target(after_undo_history(), template("api:v2"), to_revision=2, marker=marker(3, 2, "api:v2"))
    assert already and entry["revision"] == 4 and "renumbered it to 4" in note


def test_a_stale_marker_does_not_hide_a_missing_revision():
    # The live template is not the one the marker recorded: revision 2 is simply gone.
    with pytest.raises(RevisionNotFound):
        choose_target(after_undo_history(), template("api:v3"), to_revision=2, marker=marker(3, 2, "api:v2"))


# ------------------------------------------------------------------------- undo body
def test_undo_body_keeps_annotations_and_labels_and_moves_change_cause():
    live = deployment("api:v3", 3, annotations={CHANGE_CAUSE_ANNOTATION: "deploy v3", "owner": "payments"})
    entry = three_revisions()[1]
    body = undo_body(live, entry, 3)
    annotations = body["metadata"]["annotations"]
    assert annotations["owner"] == "payments" and annotations["team"] == "mystira"
    assert annotations[CHANGE_CAUSE_ANNOTATION] == "deploy v2"
    assert json.loads(annotations[UNDO_ANNOTATION]) == {"from": 3, "to": 2, "template": template_fingerprint(template("api:v2"))}
    assert body["metadata"]["labels"] == {"app": "api", "tier": "backend"}
    assert body["metadata"]["resourceVersion"] == "100"  # the PUT is conditional
    assert "pod-template-hash" not in body["spec"]["template"]["metadata"]["labels"]
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == "api:v2"
    assert "status" not in body
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "api:v3"  # input untouched


def test_undo_body_drops_a_change_cause_the_target_does_not_have():
    live = deployment("api:v3", 3, annotations={CHANGE_CAUSE_ANNOTATION: "deploy v3"})
    body = undo_body(live, three_revisions()[0] | {"change_cause": None}, 3)
    assert CHANGE_CAUSE_ANNOTATION not in body["metadata"]["annotations"]


# ------------------------------------------------------------------------ status
def test_deployment_status_follows_kubectl():
    done = deployment("api:v2", 4, generation=6, observedGeneration=6, replicas=3, updatedReplicas=3, availableReplicas=3,
                      readyReplicas=3)
    status = rollout_status("Deployment", done)
    assert status["state"] == "complete" and status["complete"]
    assert status["message"] == 'deployment "api" successfully rolled out'

    unobserved = deployment("api:v2", 4, generation=7, observedGeneration=6)
    assert rollout_status("Deployment", unobserved)["message"] == "Waiting for deployment spec update to be observed..."

    rolling = deployment("api:v2", 4, generation=6, observedGeneration=6, replicas=4, updatedReplicas=1, availableReplicas=3)
    assert "1 out of 3 new replicas have been updated" in rollout_status("Deployment", rolling)["message"]
    old = deployment("api:v2", 4, generation=6, observedGeneration=6, replicas=4, updatedReplicas=3, availableReplicas=3)
    assert "1 old replicas are pending termination" in rollout_status("Deployment", old)["message"]
    unavailable = deployment("api:v2", 4, generation=6, observedGeneration=6, replicas=3, updatedReplicas=3, availableReplicas=2)
    assert "2 of 3 updated replicas are available" in rollout_status("Deployment", unavailable)["message"]

    stalled = deployment("api:v2", 4, generation=6, observedGeneration=6, replicas=3, updatedReplicas=1,
                         conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    status = rollout_status("Deployment", stalled)
    assert status["state"] == "progress_deadline_exceeded"
    assert status["message"] == 'deployment "api" exceeded its progress deadline'


def test_a_deadline_from_an_older_generation_is_not_trusted():
    stale = deployment("api:v2", 4, generation=7, observedGeneration=6,
                       conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}])
    assert rollout_status("Deployment", stale)["state"] == "progressing"


def test_statefulset_and_daemonset_status():
    sts = {"metadata": {"name": "cache", "generation": 2}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentReplicas": 2,
                      "currentRevision": "cache-1", "updateRevision": "cache-2"}}
    assert rollout_status("StatefulSet", sts)["message"] == "waiting for statefulset rolling update to complete 2 pods at revision cache-2..."
    sts["status"]["currentRevision"] = "cache-2"
    assert rollout_status("StatefulSet", sts)["state"] == "complete"
    sts["status"]["readyReplicas"] = 1
    assert rollout_status("StatefulSet", sts)["message"] == "Waiting for 1 pods to be ready..."
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert rollout_status("StatefulSet", sts)["state"] == "not_supported"

    ds = {"metadata": {"name": "agent", "generation": 3}, "spec": {},
          "status": {"observedGeneration": 3, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1, "numberAvailable": 2}}
    assert rollout_status("DaemonSet", ds)["message"] == 'Waiting for daemon set "agent" rollout to finish: 1 out of 2 new pods have been updated...'
    ds["status"]["updatedNumberScheduled"] = 2
    assert rollout_status("DaemonSet", ds)["message"] == 'daemon set "agent" successfully rolled out'


# ------------------------------------------------------------------ diff, summary, events
def test_diff_shows_revision_images_and_change_cause():
    diff = build_diff("mystira/deployment/api", {"revision": 3, "images": ["api:v3"], "change_cause": "deploy v3"},
                      {"revision": 4, "images": ["api:v2"], "change_cause": None})
    assert diff["before"] == "revision: 3\nimage: api:v3\nchange-cause: deploy v3\n"
    assert diff["after"] == "revision: 4\nimage: api:v2\n"
    assert diff["before_header"] == "mystira/deployment/api (before)"


def test_fleet_summary_counts():
    results = [{"target": "a", "changed": True, "failed": False}, {"target": "b", "changed": False, "failed": False},
               {"target": "c", "changed": True, "failed": True}]
    assert fleet_summary(results) == {"total": 3, "changed": 1, "unchanged": 1, "failed": 1, "failed_targets": ["c"]}


def test_events_newest_first_and_limited():
    events = [{"lastTimestamp": "2026-12-06T10:0%d:00Z" % minute, "type": "Normal", "reason": "R%d" % minute,
               "involvedObject": {"kind": "Pod", "name": "api-x"}, "message": "m"} for minute in range(5)]
    shaped = sort_events(events, 2)
    assert [event["reason"] for event in shaped] == ["R4", "R3"]
    assert shaped[0]["object"] == "Pod/api-x" and shaped[0]["count"] == 1


# -------------------------------------------------------------------- the runner
class FakeCluster:
    """Deployments and ReplicaSets in memory; a write makes the 'controller' renumber as the real one does."""

    def __init__(self, conflicts=0, complete_after=1):
        self.objects = {}
        self.replicasets = {}
        self.conflicts = conflicts
        self.complete_after = complete_after
        self.writes = []
        self.reads = 0
        self.rest = type("Rest", (), {"server": "https://k8s.test", "calls": 0})()

    def add(self, name, images, namespace="ns"):
        uid = "uid-" + name
        rss = []
        for number, image in enumerate(images, 1):
            rs = replicaset(number, image, "deploy " + image, ready=3 if number == len(images) else 0, owner=uid)
            rs["metadata"]["name"] = "%s-h%d" % (name, number)
            rss.append(rs)
        obj = deployment(images[-1], len(images), generation=2, observedGeneration=2, replicas=3, updatedReplicas=3,
                         availableReplicas=3, readyReplicas=3)
        obj["metadata"].update(name=name, namespace=namespace, uid=uid)
        self.objects[(namespace, name)] = obj
        self.replicasets[namespace] = self.replicasets.get(namespace, []) + rss

    def read(self, kind, namespace, name):
        self.reads += 1
        if (namespace, name) not in self.objects:
            raise RollbackError("Deployment %s/%s not found" % (namespace, name), status=404)
        return copy.deepcopy(self.objects[(namespace, name)])

    def list_objects(self, kind, namespace):
        return {name: copy.deepcopy(obj) for (ns, name), obj in self.objects.items() if ns == namespace}

    def history(self, kind, obj):
        return history_from_replicasets(obj, self.replicasets.get(obj["metadata"]["namespace"], []))

    def history_items(self, kind, namespace):
        return copy.deepcopy(self.replicasets.get(namespace, []))

    def replace(self, kind, body):
        if self.conflicts:
            self.conflicts -= 1
            # Someone else changed the object meanwhile: bump its resourceVersion.
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self.objects[key]["metadata"]["resourceVersion"] = str(int(self.objects[key]["metadata"]["resourceVersion"]) + 1)
            raise KubernetesError("conflict", status=409, reason="Conflict")
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        assert body["metadata"]["resourceVersion"] == self.objects[key]["metadata"]["resourceVersion"]
        self.writes.append(key)
        stored = copy.deepcopy(body)
        stored["metadata"]["generation"] = self.objects[key]["metadata"]["generation"] + 1
        stored["status"] = dict(self.objects[key]["status"], observedGeneration=stored["metadata"]["generation"])
        self.objects[key] = stored
        return copy.deepcopy(stored)


def runner(cluster, **kwargs):
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds
    kwargs.setdefault("wait", False)
    return RolloutUndo(cluster, clock=lambda: clock["now"], sleep=sleep, **kwargs)


def test_single_undo_writes_once_and_rerun_is_unchanged():
    cluster = FakeCluster()
    cluster.add("api", ["api:v1", "api:v2", "api:v3"])
    target = Target("Deployment", "ns", "api")
    runner(cluster).run([target])
    assert target.result["changed"] and target.result["to_revision"] == 2
    assert target.result["after"] == {"revision": 4, "images": ["api:v2"], "change_cause": "deploy api:v2"}
    assert cluster.writes == [("ns", "api")]
    again = Target("Deployment", "ns", "api")
    runner(cluster).run([again])
    assert not again.result["changed"] and cluster.writes == [("ns", "api")]
    assert "already rolled back" in again.result["note"]


def test_check_mode_writes_nothing():
    cluster = FakeCluster()
    cluster.add("api", ["api:v1", "api:v2"])
    target = Target("deploy", "ns", "api", to_revision=1)
    runner(cluster, check_mode=True).run([target])
    assert target.result["changed"] and cluster.writes == []


def test_a_conflict_is_answered_by_reading_again():
    cluster = FakeCluster(conflicts=2)
    cluster.add("api", ["api:v1", "api:v2"])
    target = Target("Deployment", "ns", "api")
    runner(cluster).run([target])
    assert target.result["changed"] and target.result["conflicts"] == 2
    assert cluster.writes == [("ns", "api")]


def test_fleet_bad_input_changes_nothing_and_reports_every_target():
    cluster = FakeCluster()
    for index in range(6):
        cluster.add("svc%d" % index, ["img:v1", "img:v2"])
    targets = [Target("Deployment", "ns", "svc%d" % index) for index in range(6)]
    targets.append(Target("Deployment", "ns", "missing"))
    targets.append(Target("Deployment", "ns", "svc0-typo", to_revision=1))
    with pytest.raises(FleetError) as raised:
        runner(cluster, parallelism=4).run(targets)
    assert cluster.writes == []
    assert raised.value.message.startswith("2 of 8 targets failed (nothing was changed)")
    assert "ns/deployment/missing" in raised.value.message
    planned = [target for target in targets if not target.result["failed"]]
    assert all(target.result["would_change"] and not target.result["changed"] for target in planned)


def test_fleet_reads_a_namespace_with_one_list_and_writes_every_target():
    cluster = FakeCluster()
    for index in range(20):
        cluster.add("svc%d" % index, ["img:v1", "img:v2"])
    targets = [Target("Deployment", "ns", "svc%d" % index) for index in range(20)]
    changed, result = rollout_undo(cluster, targets, fleet=True, parallelism=5, wait=False)
    assert changed and result["summary"] == {"total": 20, "changed": 20, "unchanged": 0, "failed": 0, "failed_targets": []}
    assert cluster.reads == 0  # LIST, not GET per object
    assert sorted(cluster.writes) == sorted(("ns", "svc%d" % index) for index in range(20))
    assert [item["target"] for item in result["results"]] == ["ns/deployment/svc%d" % index for index in range(20)]
    assert len(result["diff"]) == 20 and result["before"]["ns/deployment/svc0"]["images"] == ["img:v2"]


def test_a_write_that_fails_fails_the_fleet_but_others_are_done():
    cluster = FakeCluster()
    for index in range(3):
        cluster.add("svc%d" % index, ["img:v1", "img:v2"])
    original = cluster.replace

    def replace(kind, body):
        if body["metadata"]["name"] == "svc1":
            raise KubernetesError("Kubernetes API: cannot update deployment ns/svc1: denied (Forbidden, HTTP 403).",
                                  status=403)
        return original(kind, body)
    cluster.replace = replace
    targets = [Target("Deployment", "ns", "svc%d" % index) for index in range(3)]
    with pytest.raises(RollbackError) as raised:
        rollout_undo(cluster, targets, fleet=True, wait=False)
    details = raised.value.details
    assert details["changed"] is True
    assert details["summary"]["failed_targets"] == ["ns/deployment/svc1"]
    assert details["summary"]["changed"] == 2
    assert "1 of 3 targets failed" in raised.value.message and "Forbidden" in raised.value.message


def test_wait_times_out_and_names_the_live_revision():
    cluster = FakeCluster()
    cluster.add("api", ["api:v1", "api:v2"])
    original = cluster.replace

    def replace(kind, body):
        stored = original(kind, body)
        # The pods of the rolled-back template never become available.
        cluster.objects[("ns", "api")]["status"].update(updatedReplicas=1, availableReplicas=2)
        return stored
    cluster.replace = replace
    target = Target("Deployment", "ns", "api")
    with pytest.raises(FleetError) as raised:
        runner(cluster, wait=True, wait_timeout=5).run([target])
    message = raised.value.message
    assert "did not complete within wait_timeout=5s" in message
    assert "The live revision is 1 (api:v1); 0 of 3 desired pods of it are ready." in message
    assert "Last status: Waiting for deployment" in message
    assert "Still serving: revision 2 (3 ready)" in message
    assert target.result["changed"] is True


def test_wait_fails_at_the_progress_deadline():
    cluster = FakeCluster()
    cluster.add("api", ["api:v1", "api:v2"])
    original = cluster.replace

    def replace(kind, body):
        stored = original(kind, body)
        cluster.objects[("ns", "api")]["status"].update(
            updatedReplicas=1, conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
        return stored
    cluster.replace = replace
    with pytest.raises(FleetError, match="exceeded its progress deadline. The live revision is 1"):
        runner(cluster, wait=True, wait_timeout=60).run([Target("Deployment", "ns", "api")])


def test_a_target_listed_twice_is_refused():
    with pytest.raises(RollbackError, match="listed twice"):
        runner(FakeCluster()).run([Target("Deployment", "ns", "a"), Target("deploy", "ns", "a")])


def test_target_validation():
    with pytest.raises(RollbackError, match="to_revision must be 1 or more"):
        Target("Deployment", "ns", "a", to_revision=0)
    with pytest.raises(RollbackError, match="cannot be rolled back"):
        Target("CronJob", "ns", "a")


def test_paused_deployment_is_refused():
    cluster = FakeCluster()
    cluster.add("api", ["api:v1", "api:v2"])
    cluster.objects[("ns", "api")]["spec"]["paused"] = True
    with pytest.raises(FleetError, match="is paused"):
        runner(cluster).run([Target("Deployment", "ns", "api")])
    assert cluster.writes == []


# --------------------------------------------------------------------------- waiting by watch
class WatchingCluster(FakeCluster):
    """A FakeCluster whose API can watch: each watch() plays the next list of events (or raises it)."""

    can_watch = True

    def __init__(self, streams, clock=None, **kwargs):
        super().__init__(**kwargs)
        self.streams = list(streams)
        self.watches = []
        self.clock = clock

    def watch(self, kind, namespace, name, resource_version, timeout):
        self.watches.append({"name": name, "resource_version": resource_version, "timeout": timeout})
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream

        def events():
            for event in stream:
                if callable(event):
                    event()  # a step of the test's clock between events
                    continue
                yield event
        return events()


def rolled_out(cluster, name, **status):
    """The stored object as the controller leaves it: observed, with the given status counters."""
    obj = copy.deepcopy(cluster.objects[("ns", name)])
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion") or 0) + 10)
    obj["status"].update(status)
    return obj


def progressing_after_write(cluster):
    """Writes are answered as the real API server does: generation bumped, status not yet observed."""
    original = cluster.replace

    def replace(kind, body):
        stored = original(kind, body)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        cluster.objects[key]["status"]["observedGeneration"] = stored["metadata"]["generation"] - 1
        stored["status"]["observedGeneration"] = stored["metadata"]["generation"] - 1
        return stored
    cluster.replace = replace


def test_one_target_is_waited_for_by_watch_from_the_writes_version():
    cluster = WatchingCluster([])
    cluster.add("api", ["api:v1", "api:v2"])
    cluster.objects[("ns", "api")]["metadata"]["resourceVersion"] = "100"
    progressing_after_write(cluster)
    halfway = None

    def stream():
        nonlocal halfway
        obj = cluster.objects[("ns", "api")]
        halfway = rolled_out(cluster, "api", observedGeneration=obj["metadata"]["generation"], updatedReplicas=1)
        done = rolled_out(cluster, "api", observedGeneration=obj["metadata"]["generation"], updatedReplicas=3)
        done["metadata"]["resourceVersion"] = "120"
        return [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "105"}}},
                {"type": "MODIFIED", "object": halfway}, {"type": "MODIFIED", "object": done}]
    original_watch = cluster.watch
    cluster.watch = lambda *args: (cluster.streams.append(stream()), original_watch(*args))[1]
    target = Target("Deployment", "ns", "api")
    runner(cluster, wait=True, wait_timeout=30).run([target])
    assert target.result["status"]["state"] == "complete" and not target.result["failed"]
    assert cluster.reads == 1  # the planning read only: no poll, the watch saw the rollout complete
    # One watch, from the version the write answered with, for the whole wait_timeout.
    assert cluster.watches == [{"name": "api", "resource_version": "100", "timeout": 30}]


def test_watch_error_event_hands_over_to_polling():
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    cluster = WatchingCluster([[gone]])
    cluster.add("api", ["api:v1", "api:v2"])
    progressing_after_write(cluster)
    original_read = cluster.read

    def read(kind, namespace, name):
        # The controller catches up by the first poll.
        cluster.objects[(namespace, name)]["status"]["observedGeneration"] = cluster.objects[(namespace, name)]["metadata"]["generation"]
        return original_read(kind, namespace, name)
    cluster.read = read
    target = Target("Deployment", "ns", "api")
    runner(cluster, wait=True, wait_timeout=30).run([target])
    assert target.result["status"]["state"] == "complete" and len(cluster.watches) == 1


def test_broken_watch_hands_over_to_polling_and_keeps_the_error():
    from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import TransportError
    cluster = WatchingCluster([TransportError("lost", "connection reset")])
    cluster.add("api", ["api:v1", "api:v2"])
    progressing_after_write(cluster)
    original_read = cluster.read

    def read(kind, namespace, name):
        cluster.objects[(namespace, name)]["status"]["observedGeneration"] = cluster.objects[(namespace, name)]["metadata"]["generation"]
        return original_read(kind, namespace, name)
    cluster.read = read
    target = Target("Deployment", "ns", "api")
    runner(cluster, wait=True, wait_timeout=30).run([target])
    assert target.result["status"]["state"] == "complete"
    assert target.result["last_wait_error"] == "connection reset"


def test_watch_that_ends_is_reopened_and_the_deadline_fails_the_wait():
    clock = {"now": 0.0}

    def tick(seconds):
        return lambda: clock.__setitem__("now", clock["now"] + seconds)
    # Two quiet streams the server ends (timeoutSeconds), each taking time; the rollout never completes.
    cluster = WatchingCluster([[tick(4)], [tick(4)]])
    cluster.add("api", ["api:v1", "api:v2"])
    progressing_after_write(cluster)
    undo = RolloutUndo(cluster, wait=True, wait_timeout=6, clock=lambda: clock["now"],
                       sleep=lambda seconds: clock.__setitem__("now", clock["now"] + seconds))
    with pytest.raises(FleetError, match="did not complete within wait_timeout=6s. The live revision is 1 .*Waiting for deployment spec update"):
        undo.run([Target("Deployment", "ns", "api")])
    assert [round(item["timeout"]) for item in cluster.watches] == [6, 2]


def test_a_fleet_is_polled_not_watched():
    cluster = WatchingCluster([])
    for name in ("a", "b"):
        cluster.add(name, [name + ":v1", name + ":v2"])
    runner(cluster, wait=True, wait_timeout=30).run([Target("Deployment", "ns", "a"), Target("Deployment", "ns", "b")])
    assert cluster.watches == []
