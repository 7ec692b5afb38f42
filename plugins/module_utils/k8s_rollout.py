# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rollout history, status and undo for Deployments, StatefulSets and DaemonSets.

What ``kubectl rollout history / status / undo`` do, as plain Python over
:class:`~k8s_client.KubernetesRest`, with what kubectl lacks:

- a revision is a ReplicaSet (Deployments) or a ControllerRevision
  (StatefulSets, DaemonSets) owned by the object, numbered by the
  ``deployment.kubernetes.io/revision`` annotation or the ``revision`` field;
- an undo writes the target revision's pod template into the object with one
  PUT carrying the resourceVersion (a 409 is answered by reading again and
  deciding again), and keeps every other annotation and label of the object;
  only ``kubernetes.io/change-cause`` follows the revision, as kubectl does;
- it is idempotent by desired state: the live template already equal to the
  target's is no change. Because the controller renumbers the revision it
  rolls back to (revision 2 becomes 4), the undo leaves one annotation,
  ``sre.rollback/undo``, that records from where, to where and the template
  fingerprint; a re-run recognises its own completed undo through it instead
  of rolling "back" to the release it just left;
- it waits like ``kubectl rollout status`` (observedGeneration, updated, ready
  and available replicas), fails at ProgressDeadlineExceeded or the wait
  timeout and says which revision is live and which revisions still serve;
  one object is followed with a watch (as kubectl does: it sees the rollout
  complete the moment the controller says so), a fleet by polling;
- a fleet (many objects) is planned, applied and watched concurrently on one
  shared client: objects of one kind in one namespace are read with one LIST
  each round rather than one GET per object.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    KubernetesError,
    TransportError,
    label_selector_string,
)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
UNDO_ANNOTATION = "sre.rollback/undo"
# Labels the controllers add to a revision's template copy, never part of the user's template.
CONTROLLER_LABELS = ("pod-template-hash", "controller-revision-hash")
CONFLICT_ATTEMPTS = 5
# Groups of at least this many objects of one kind in one namespace are read with one LIST.
LIST_THRESHOLD = 4
# A watch read waits at most this much longer than the wait's deadline (the server ends the watch at the
# deadline by timeoutSeconds; this only bounds a server that does not).
WATCH_READ_MARGIN_S = 2.0
# Waiting polls, first soon (a small rollout is often done within a fraction of a second), then
# backing off to POLL_MAX_S so a rollout of minutes costs about one read a second.
POLL_FIRST_S = 0.1
POLL_BACKOFF = 1.5
POLL_MAX_S = 1.0

KINDS = {
    "Deployment": {"group": "apps/v1", "plural": "deployments", "history_plural": "replicasets", "label": "deployment"},
    "StatefulSet": {"group": "apps/v1", "plural": "statefulsets", "history_plural": "controllerrevisions",
                    "label": "statefulset"},
    "DaemonSet": {"group": "apps/v1", "plural": "daemonsets", "history_plural": "controllerrevisions",
                  "label": "daemon set"},
}
KIND_ALIASES = {
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "daemonset": "DaemonSet", "daemonsets": "DaemonSet", "ds": "DaemonSet",
}

# Values the API server fills into a pod template when the user left them out
# (SetDefaults_*). The server defaults the object and its revisions alike, so
# they normally agree; dropping them also makes a template from a source that
# was not defaulted (an older server's revision, a hand-made object) compare equal.
POD_SPEC_DEFAULTS = {
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler", "securityContext": {}, "enableServiceLinks": True,
}
CONTAINER_DEFAULTS = {
    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {},
}


class RevisionNotFound(RollbackError):
    """The named revision is not in the object's history."""


# ----------------------------------------------------------------------- pure helpers
def canonical_kind(kind):
    """'deploy', 'deployment', 'Deployment' -> 'Deployment'; a clear error for anything else."""
    text = (kind or "Deployment").strip()
    if text in KINDS:
        return text
    if text.lower() in KIND_ALIASES:
        return KIND_ALIASES[text.lower()]
    raise RollbackError(
        "kind %s cannot be rolled back: rollout undo works on Deployment, StatefulSet and DaemonSet "
        "(a ReplicaSet or a Pod is rolled back through the Deployment that owns it)." % text, kind=text)


def _prune(value):
    """Drop None, empty dicts and empty lists (apimachinery's semantic equality treats nil and empty alike)."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _drop_defaults(mapping, defaults):
    for key, default in defaults.items():
        if key in mapping and mapping[key] == default:
            del mapping[key]


def normalize_template(template):
    """A pod template reduced to what makes it different from another.

    Removes the controllers' own labels (``pod-template-hash``,
    ``controller-revision-hash``), the ``$patch`` directive of a
    ControllerRevision, ``creationTimestamp: null``, server defaults, and empty
    values.
    """
    result = copy.deepcopy(template or {})
    result.pop("$patch", None)
    metadata = result.get("metadata") or {}
    labels = metadata.get("labels") or {}
    for label in CONTROLLER_LABELS:
        labels.pop(label, None)
    metadata.pop("creationTimestamp", None)
    spec = result.get("spec") or {}
    _drop_defaults(spec, POD_SPEC_DEFAULTS)
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or []:
            _drop_defaults(container, CONTAINER_DEFAULTS)
            if container.get("imagePullPolicy") == _default_pull_policy(container.get("image")):
                container.pop("imagePullPolicy")
            for port in container.get("ports") or []:
                if port.get("protocol") == "TCP":
                    port.pop("protocol")
    return _prune(result)


def _default_pull_policy(image):
    """The server's default: Always for ':latest' or no tag, IfNotPresent otherwise."""
    image = image or ""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def templates_equal(first, second):
    return normalize_template(first) == normalize_template(second)


def template_fingerprint(template):
    """A short stable digest of a normalized template (recorded in the undo annotation)."""
    text = json.dumps(normalize_template(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def template_images(template):
    """The images of a template's containers (init containers first), in order."""
    spec = (template or {}).get("spec") or {}
    return [container.get("image") for group in ("initContainers", "containers")
            for container in spec.get(group) or [] if container.get("image")]


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _owned_by(item, owner):
    uid = (owner.get("metadata") or {}).get("uid")
    for reference in (item.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller") and (uid is None or reference.get("uid") == uid):
            return True
    return False


def revision_entry(number, name, template, annotations, created):
    return {
        "revision": number,
        "name": name,
        "change_cause": (annotations or {}).get(CHANGE_CAUSE_ANNOTATION),
        "images": template_images(template),
        "created": created,
        "template": template,
    }


def history_from_replicasets(deployment, replicasets):
    """A Deployment's revisions from its ReplicaSets, oldest first (as kubectl rollout history)."""
    entries = []
    for replicaset in replicasets:
        if not _owned_by(replicaset, deployment):
            continue
        metadata = replicaset.get("metadata") or {}
        number = _int((metadata.get("annotations") or {}).get(REVISION_ANNOTATION))
        if number is None:
            continue
        template = (replicaset.get("spec") or {}).get("template") or {}
        entry = revision_entry(number, metadata.get("name"), template, metadata.get("annotations"),
                               metadata.get("creationTimestamp"))
        status = replicaset.get("status") or {}
        entry["replicas"] = status.get("replicas") or 0
        entry["ready_replicas"] = status.get("readyReplicas") or 0
        entries.append(entry)
    return sorted(entries, key=lambda item: item["revision"])


def history_from_controller_revisions(obj, revisions):
    """A StatefulSet's or DaemonSet's revisions from its ControllerRevisions, oldest first."""
    entries = []
    for revision in revisions:
        if not _owned_by(revision, obj):
            continue
        metadata = revision.get("metadata") or {}
        data = revision.get("data") or {}
        template = dict(((data.get("spec") or {}).get("template")) or {})
        template.pop("$patch", None)
        entries.append(revision_entry(_int(revision.get("revision")) or 0, metadata.get("name"), template,
                                      metadata.get("annotations"), metadata.get("creationTimestamp")))
    return sorted(entries, key=lambda item: item["revision"])


def live_entry(history, live_template):
    """The newest revision whose template is the live one (None while the controller has not caught up)."""
    live = normalize_template(live_template)
    matches = [entry for entry in history if normalize_template(entry["template"]) == live]
    return matches[-1] if matches else None


def parse_undo_marker(annotations):
    """The ``sre.rollback/undo`` annotation as a dict, or None."""
    text = (annotations or {}).get(UNDO_ANNOTATION)
    if not text:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def choose_target(history, live_template, to_revision=None, marker=None, what="the object"):
    """(target revision entry, already_there, note).

    ``to_revision``: that revision; if the controller renumbered it after this
    collection rolled back to it (the undo marker says so and the live template
    is the one recorded), it is already there.

    previous: the newest revision older than the live one whose template
    differs from the live template, as ``kubectl rollout undo`` picks. If the
    live template is the result of this collection's own undo and nothing was
    rolled out since (every revision newer than the one it left is the live
    template), it is already there: a re-run does not roll "back" onto the
    release the first run left. Name ``to_revision`` to go further back.
    """
    live = live_entry(history, live_template)
    fingerprint = template_fingerprint(live_template)
    numbers = ", ".join(str(entry["revision"]) for entry in history) or "none"
    marker = marker or {}
    marker_live = marker.get("template") == fingerprint
    if to_revision:
        for entry in history:
            if entry["revision"] == to_revision:
                return entry, templates_equal(entry["template"], live_template), None
        if marker_live and _int(marker.get("to")) == to_revision and live is not None:
            return live, True, ("revision %d was rolled back to earlier; the controller renumbered it to %d"
                                % (to_revision, live["revision"]))
        raise RevisionNotFound("revision %d is not in the rollout history of %s (revisions: %s)."
                               % (to_revision, what, numbers), revisions=[entry["revision"] for entry in history])
    left = _int(marker.get("from"))
    if marker_live and left is not None and live is not None:
        newer = [entry for entry in history if entry["revision"] > left]
        if all(templates_equal(entry["template"], live_template) for entry in newer):
            return live, True, ("already rolled back from revision %d (to revision %s, now revision %d)"
                                % (left, marker.get("to"), live["revision"]))
    ceiling = live["revision"] if live is not None else None
    candidates = [entry for entry in history
                  if (ceiling is None or entry["revision"] < ceiling)
                  and not templates_equal(entry["template"], live_template)]
    if not candidates:
        raise RevisionNotFound(
            "%s has no previous revision to roll back to: its history holds revision(s) %s only (with "
            "revisionHistoryLimit 0 no old revision is kept)." % (what, numbers),
            revisions=[entry["revision"] for entry in history])
    return candidates[-1], False, None


def target_template(entry):
    """The template to write into the object: the revision's, minus the controllers' labels."""
    template = copy.deepcopy(entry["template"])
    template.pop("$patch", None)
    labels = (template.get("metadata") or {}).get("labels") or {}
    for label in CONTROLLER_LABELS:
        labels.pop(label, None)
    return template


def undo_body(obj, entry, from_revision):
    """The object to PUT: the target template, the target's change-cause, the undo marker; all else kept."""
    body = copy.deepcopy(obj)
    body.pop("status", None)
    template = target_template(entry)
    body.setdefault("spec", {})["template"] = template
    annotations = body.setdefault("metadata", {}).get("annotations") or {}
    annotations = dict(annotations)
    if entry.get("change_cause"):
        annotations[CHANGE_CAUSE_ANNOTATION] = entry["change_cause"]
    else:
        # The object's change-cause describes the release being left; the
        # controller would copy it onto the revision it now makes live.
        annotations.pop(CHANGE_CAUSE_ANNOTATION, None)
    annotations[UNDO_ANNOTATION] = json.dumps(
        {"from": from_revision, "to": entry["revision"], "template": template_fingerprint(template)},
        sort_keys=True, separators=(",", ":"))
    body["metadata"]["annotations"] = annotations
    return body


def rollout_status(kind, obj):
    """The rollout state of an object as ``kubectl rollout status`` judges it.

    ``state``: complete, progressing, progress_deadline_exceeded (Deployments),
    or not_supported (OnDelete update strategy); ``message`` is kubectl's text.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = metadata.get("name")
    generation = metadata.get("generation") or 0
    observed = status.get("observedGeneration") or 0
    desired = spec.get("replicas", 1) if kind != "DaemonSet" else status.get("desiredNumberScheduled") or 0
    result = {
        "generation": generation, "observed_generation": observed, "replicas": desired,
        "current_replicas": status.get("replicas") or 0,
        "updated_replicas": status.get("updatedReplicas") or 0,
        "ready_replicas": status.get("readyReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "conditions": [{key: condition.get(key) for key in ("type", "status", "reason", "message")}
                       for condition in status.get("conditions") or []],
    }
    if kind == "Deployment":
        state, message = _deployment_state(name, spec, status, generation, observed, desired)
    elif kind == "StatefulSet":
        state, message = _statefulset_state(spec, status, generation, observed, desired)
        result["current_revision_name"] = status.get("currentRevision")
        result["update_revision_name"] = status.get("updateRevision")
    else:
        result["updated_replicas"] = status.get("updatedNumberScheduled") or 0
        result["ready_replicas"] = status.get("numberReady") or 0
        result["available_replicas"] = status.get("numberAvailable") or 0
        result["current_replicas"] = status.get("currentNumberScheduled") or 0
        state, message = _daemonset_state(name, spec, status, generation, observed, desired)
    result["state"] = state
    result["message"] = message
    result["complete"] = state == "complete"
    return result


def _deployment_state(name, spec, status, generation, observed, desired):
    if generation > observed:
        return "progressing", "Waiting for deployment spec update to be observed..."
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return "progress_deadline_exceeded", 'deployment "%s" exceeded its progress deadline' % name
    updated = status.get("updatedReplicas") or 0
    replicas = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < desired:
        return "progressing", ('Waiting for deployment "%s" rollout to finish: %d out of %d new replicas have been '
                               'updated...' % (name, updated, desired))
    if replicas > updated:
        return "progressing", ('Waiting for deployment "%s" rollout to finish: %d old replicas are pending '
                               'termination...' % (name, replicas - updated))
    if available < updated:
        return "progressing", ('Waiting for deployment "%s" rollout to finish: %d of %d updated replicas are '
                               'available...' % (name, available, updated))
    return "complete", 'deployment "%s" successfully rolled out' % name


def _statefulset_state(spec, status, generation, observed, desired):
    strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    if strategy != "RollingUpdate":
        return "not_supported", "rollout status is only available for RollingUpdate strategy type"
    if not observed or generation > observed:
        return "progressing", "Waiting for statefulset spec update to be observed..."
    ready = status.get("readyReplicas") or 0
    if ready < desired:
        return "progressing", "Waiting for %d pods to be ready..." % (desired - ready)
    partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
    updated = status.get("updatedReplicas") or 0
    if partition:
        if updated < desired - partition:
            return "progressing", ("Waiting for partitioned roll out to finish: %d out of %d new pods have been "
                                   "updated..." % (updated, desired - partition))
        return "complete", "partitioned roll out complete: %d new pods have been updated..." % updated
    if status.get("updateRevision") != status.get("currentRevision"):
        return "progressing", ("waiting for statefulset rolling update to complete %d pods at revision %s..."
                               % (updated, status.get("updateRevision")))
    return "complete", ("statefulset rolling update complete %d pods at revision %s..."
                        % (status.get("currentReplicas") or 0, status.get("currentRevision")))


def _daemonset_state(name, spec, status, generation, observed, desired):
    strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    if strategy != "RollingUpdate":
        return "not_supported", "rollout status is only available for RollingUpdate strategy type"
    if generation > observed:
        return "progressing", "Waiting for daemon set spec update to be observed..."
    updated = status.get("updatedNumberScheduled") or 0
    available = status.get("numberAvailable") or 0
    if updated < desired:
        return "progressing", ('Waiting for daemon set "%s" rollout to finish: %d out of %d new pods have been '
                               'updated...' % (name, updated, desired))
    if available < desired:
        return "progressing", ('Waiting for daemon set "%s" rollout to finish: %d of %d updated pods are '
                               'available...' % (name, available, desired))
    return "complete", 'daemon set "%s" successfully rolled out' % name


def public_revision(entry):
    """A history entry for results: no template."""
    if entry is None:
        return None
    return {key: value for key, value in entry.items() if key != "template"}


def revision_view(entry, number=None):
    """What before/after/diff show of a revision: its number, images and change-cause."""
    if entry is None:
        return {"revision": number, "images": [], "change_cause": None}
    return {"revision": entry["revision"] if number is None else number, "images": entry["images"],
            "change_cause": entry.get("change_cause")}


def diff_text(view):
    lines = ["revision: %s" % view.get("revision")]
    lines.extend("image: %s" % image for image in view.get("images") or [])
    if view.get("change_cause"):
        lines.append("change-cause: %s" % view["change_cause"])
    return "\n".join(lines) + "\n"


def build_diff(label, before, after):
    return {"before_header": label + " (before)", "after_header": label + " (after)",
            "before": diff_text(before), "after": diff_text(after)}


def fleet_summary(results):
    """Counts of a fleet run: total, changed, unchanged, failed (and the failed labels)."""
    failed = [item for item in results if item.get("failed")]
    changed = [item for item in results if item.get("changed") and not item.get("failed")]
    return {"total": len(results), "changed": len(changed), "unchanged": len(results) - len(changed) - len(failed),
            "failed": len(failed), "failed_targets": [item["target"] for item in failed]}


def sort_events(events, limit):
    """The ``limit`` most recent events, newest first, in a compact shape."""
    def when(event):
        return (event.get("lastTimestamp") or event.get("eventTime")
                or (event.get("metadata") or {}).get("creationTimestamp") or "")
    shaped = []
    for event in sorted(events, key=when, reverse=True)[:max(limit, 0)]:
        involved = event.get("involvedObject") or {}
        shaped.append({"time": when(event), "type": event.get("type"), "reason": event.get("reason"),
                       "object": "%s/%s" % (involved.get("kind"), involved.get("name")),
                       "message": event.get("message"), "count": event.get("count") or 1})
    return shaped


# --------------------------------------------------------------------------- API access
class RolloutApi:
    """Reads and writes rollout objects through a KubernetesRest."""

    def __init__(self, rest):
        self.rest = rest

    @staticmethod
    def path(kind, namespace, name=None):
        info = KINDS[kind]
        base = "/apis/%s/namespaces/%s/%s" % (info["group"], namespace, info["plural"])
        return base + ("/" + name if name else "")

    def read(self, kind, namespace, name):
        label = "%s %s/%s" % (KINDS[kind]["label"], namespace, name)
        try:
            return self.rest.get(self.path(kind, namespace, name), what="read " + label)
        except KubernetesError as error:
            if error.status == 404:
                raise RollbackError("%s %s/%s not found: check the name, the namespace and the context (%s)."
                                    % (kind, namespace, name, self.rest.server), status=404) from None
            raise

    def list_objects(self, kind, namespace):
        items, _version = self.rest.list(self.path(kind, namespace), what="list %ss in %s" % (kind, namespace))
        return {item["metadata"]["name"]: item for item in items}

    def history(self, kind, obj):
        """The object's revisions, oldest first."""
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace")
        selector = label_selector_string((obj.get("spec") or {}).get("selector"))
        plural = KINDS[kind]["history_plural"]
        items, _version = self.rest.list("/apis/apps/v1/namespaces/%s/%s" % (namespace, plural),
                                         label_selector=selector or None,
                                         what="list the %s of %s %s/%s" % (plural, kind, namespace, metadata.get("name")))
        return history_of(kind, obj, items)

    def history_items(self, kind, namespace):
        plural = KINDS[kind]["history_plural"]
        items, _version = self.rest.list("/apis/apps/v1/namespaces/%s/%s" % (namespace, plural),
                                         what="list the %s in %s" % (plural, namespace))
        return items

    @property
    def can_watch(self):
        return bool(getattr(self.rest, "can_watch", False))

    def watch(self, kind, namespace, name, resource_version, timeout):
        """The events of one object after ``resource_version`` (an iterator of dicts), for at most ``timeout`` s."""
        query = {"fieldSelector": "metadata.name=" + name, "resourceVersion": resource_version,
                 "timeoutSeconds": max(int(math.ceil(timeout)), 1), "allowWatchBookmarks": "true"}
        return self.rest.watch(self.path(kind, namespace), query, timeout + WATCH_READ_MARGIN_S,
                               what="watch %s %s/%s" % (KINDS[kind]["label"], namespace, name))

    def replace(self, kind, body):
        metadata = body["metadata"]
        return self.rest.put(self.path(kind, metadata["namespace"], metadata["name"]), body,
                             what="update %s %s/%s" % (KINDS[kind]["label"], metadata["namespace"], metadata["name"]))

    def events(self, namespace, names, limit):
        """Recent events of the objects whose names are given or start with one of them followed by '-'
        (the object, its ReplicaSets or revisions, its pods)."""
        items, _version = self.rest.list("/api/v1/namespaces/%s/events" % namespace,
                                         what="list the events in %s" % namespace)
        wanted = []
        for event in items:
            involved = (event.get("involvedObject") or {}).get("name") or ""
            if any(involved == name or involved.startswith(name + "-") for name in names):
                wanted.append(event)
        return sort_events(wanted, limit)


def history_of(kind, obj, items):
    if kind == "Deployment":
        return history_from_replicasets(obj, items)
    return history_from_controller_revisions(obj, items)


# ---------------------------------------------------------------------------------- info
def rollout_info(api, kind, namespace, name, events_limit=10):
    """kubectl rollout history + status for one object, plus its recent events."""
    kind = canonical_kind(kind)
    obj = api.read(kind, namespace, name)
    history = api.history(kind, obj)
    live_template = (obj.get("spec") or {}).get("template") or {}
    live = live_entry(history, live_template)
    status = rollout_status(kind, obj)
    spec = obj.get("spec") or {}
    metadata = obj.get("metadata") or {}
    current_revision = live["revision"] if live else None
    if kind == "Deployment":
        current_revision = _int((metadata.get("annotations") or {}).get(REVISION_ANNOTATION)) or current_revision
    result = {
        "kind": kind, "name": name, "namespace": namespace, "uid": metadata.get("uid"),
        "revisions": [public_revision(entry) for entry in history],
        "current_revision": current_revision,
        "current_images": template_images(live_template),
        "status": status,
        "paused": bool(spec.get("paused")),
        "revision_history_limit": spec.get("revisionHistoryLimit"),
        "progress_deadline_seconds": spec.get("progressDeadlineSeconds") if kind == "Deployment" else None,
        "last_undo": parse_undo_marker(metadata.get("annotations")),
    }
    if events_limit:
        result["events"] = api.events(namespace, [name], events_limit)
    else:
        result["events"] = []
    return result


# ---------------------------------------------------------------------------------- undo
class Target:
    """One object to roll back, and what happened to it."""

    def __init__(self, kind, namespace, name, to_revision=None):
        self.kind = canonical_kind(kind)
        if not name:
            raise RollbackError("every target needs a name.")
        if not namespace:
            raise RollbackError("%s %s needs a namespace." % (self.kind, name))
        if to_revision is not None and int(to_revision) < 1:
            raise RollbackError("to_revision must be 1 or more for %s %s/%s (leave it out for the previous "
                                "revision), got %s." % (self.kind, namespace, name, to_revision))
        self.namespace = namespace
        self.name = name
        self.to_revision = int(to_revision) if to_revision else None
        self.obj = None
        self.latest = None  # the newest copy of the object seen (the write's answer): where a watch starts
        self.history = None
        self.plan = None
        self.result = {"target": self.label, "kind": self.kind, "namespace": namespace, "name": name,
                       "changed": False, "failed": False}
        self.generation = None

    @property
    def label(self):
        return "%s/%s/%s" % (self.namespace, self.kind.lower(), self.name)

    def describe(self):
        return "%s %s/%s" % (KINDS[self.kind]["label"], self.namespace, self.name)


def plan_undo(target, obj, history):
    """Decide for one target from a read of the object and its history; raise before any change.

    Sets target.plan = {"entry", "already", "note", "body", "before", "after"}.
    """
    spec = obj.get("spec") or {}
    if target.kind == "Deployment" and spec.get("paused"):
        raise RollbackError("%s is paused: a paused deployment does not roll out, so an undo would not take "
                            "effect. Resume it first (kubectl rollout resume deployment/%s)."
                            % (target.describe(), target.name))
    live_template = spec.get("template") or {}
    marker = parse_undo_marker((obj.get("metadata") or {}).get("annotations"))
    entry, already, note = choose_target(history, live_template, target.to_revision, marker, target.describe())
    live = live_entry(history, live_template)
    live_number = live["revision"] if live else None
    if target.kind == "Deployment":
        live_number = _int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)) \
            or live_number
    before = revision_view(live, live_number)
    before["images"] = template_images(live_template)
    newest = max([item["revision"] for item in history] or [0])
    if already:
        after = dict(before)
        body = None
    else:
        # The controller makes the reused revision the newest: max + 1.
        after = revision_view(entry, newest + 1)
        body = undo_body(obj, entry, live_number)
    target.obj = obj
    target.history = history
    target.plan = {"entry": entry, "already": already, "note": note, "body": body, "before": before, "after": after}
    target.result.update({
        "from_revision": live_number,
        "to_revision": entry["revision"],
        "target_revision": public_revision(entry),
        "before": before,
        "after": after,
        "changed": not already,
    })
    if note:
        target.result["note"] = note
    return target.plan


class RolloutUndo:
    """Roll back one object or a fleet: plan all, act, wait; every target reported."""

    def __init__(self, api, parallelism=10, wait=True, wait_timeout=300, check_mode=False, clock=time.monotonic,
                 sleep=time.sleep):
        self.api = api
        self.parallelism = max(int(parallelism or 1), 1)
        self.wait = wait
        self.wait_timeout = float(wait_timeout)
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep

    # -- phases ---------------------------------------------------------------------------
    def run(self, targets):
        """Plan every target, then (not in check mode) apply and wait. Returns the targets."""
        self._check_unique(targets)
        self._map(self._plan_group, self._groups(targets))
        planning_errors = [target for target in targets if target.result["failed"]]
        if planning_errors:
            for target in targets:
                # Nothing is written when any target is bad input: say what would have changed.
                target.result["would_change"] = bool(target.result["changed"] and not target.result["failed"])
                target.result["changed"] = False
            raise FleetError(self._failure_message(planning_errors, targets, True), targets)
        if self.check_mode:
            return targets
        self._map(self._apply, [target for target in targets if target.result["changed"]])
        if self.wait:
            self._wait_all([target for target in targets if not target.result["failed"]])
        if any(target.result["failed"] for target in targets):
            failed = [target for target in targets if target.result["failed"]]
            raise FleetError(self._failure_message(failed, targets, False), targets)
        return targets

    @staticmethod
    def _check_unique(targets):
        seen = set()
        for target in targets:
            if target.label in seen:
                raise RollbackError("%s is listed twice in targets." % target.label)
            seen.add(target.label)

    @staticmethod
    def _failure_message(failed, targets, nothing_changed):
        """One target: its own message. Several: how many failed, and the first few messages."""
        if len(targets) == 1:
            return failed[0].result.get("msg")
        parts = ["%s: %s" % (target.label, target.result.get("msg")) for target in failed[:5]]
        more = " (and %d more)" % (len(failed) - 5) if len(failed) > 5 else ""
        return "%d of %d targets failed%s: %s%s" % (
            len(failed), len(targets), " (nothing was changed)" if nothing_changed else "", " | ".join(parts), more)

    def _map(self, function, items):
        items = list(items)
        if len(items) <= 1 or self.parallelism == 1:
            for item in items:
                function(item)
            return
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(items))) as pool:
            for _unused_result in pool.map(function, items):
                pass

    @staticmethod
    def _groups(targets):
        """Targets grouped by (kind, namespace): big groups are read with one LIST, small ones per object."""
        groups = {}
        for target in targets:
            groups.setdefault((target.kind, target.namespace), []).append(target)
        work = []
        for (kind, namespace), members in groups.items():
            if len(members) >= LIST_THRESHOLD:
                work.append((kind, namespace, members))
            else:
                work.extend((kind, namespace, [member]) for member in members)
        return work

    def _plan_group(self, group):
        kind, namespace, members = group
        if len(members) == 1:
            target = members[0]
            self._guard(target, lambda: self._plan_one(target))
            return
        try:
            objects = self.api.list_objects(kind, namespace)
            items = self.api.history_items(kind, namespace)
        except RollbackError as error:
            for target in members:
                self._fail(target, error)
            return
        for target in members:
            def plan(target=target):
                obj = objects.get(target.name)
                if obj is None:
                    raise RollbackError("%s %s/%s not found: check the name, the namespace and the context (%s)."
                                        % (kind, namespace, target.name, self.api.rest.server), status=404)
                plan_undo(target, obj, history_of(kind, obj, items))
            self._guard(target, plan)

    def _plan_one(self, target):
        obj = self.api.read(target.kind, target.namespace, target.name)
        plan_undo(target, obj, self.api.history(target.kind, obj))

    def _apply(self, target):
        self._guard(target, lambda: self._apply_one(target))

    def _apply_one(self, target):
        """PUT the planned object; on 409 read again, decide again, and try again."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            body = target.plan["body"]
            if body is None:
                # A fresh read found it already there (someone else rolled it back).
                target.result["changed"] = False
                target.generation = (target.obj.get("metadata") or {}).get("generation")
                return
            try:
                written = self.api.replace(target.kind, body)
            except KubernetesError as error:
                if error.status != 409 or attempt == CONFLICT_ATTEMPTS:
                    raise
                target.result["conflicts"] = attempt
                self._plan_one(target)
                continue
            target.generation = (written.get("metadata") or {}).get("generation")
            target.latest = written
            target.result["changed"] = True
            return

    # -- waiting --------------------------------------------------------------------------
    def _wait_all(self, targets):
        """Poll until every target's rollout is complete, failed, or the deadline passes."""
        deadline = self.clock() + self.wait_timeout
        pending = {target.label: target for target in targets}
        for target in targets:
            if target.generation is None:
                target.generation = ((target.obj or {}).get("metadata") or {}).get("generation")
        if len(targets) == 1 and getattr(self.api, "can_watch", False) and self._watch_one(targets[0], deadline):
            return
        interval = POLL_FIRST_S
        while pending:
            observed = self._observe(list(pending.values()))
            for label, (target, obj) in observed.items():
                if obj is not None and self._settle(target, obj):
                    pending.pop(label, None)
            if not pending:
                return
            if self.clock() >= deadline:
                for target in pending.values():
                    self._timed_out(target, observed.get(target.label, (None, None))[1] or target.obj)
                return
            self.sleep(min(interval, max(deadline - self.clock(), 0)))
            # A few objects are read with cheap GETs, a fleet with one LIST per namespace; both back off.
            interval = min(interval * (POLL_BACKOFF if len(pending) < LIST_THRESHOLD else 2), POLL_MAX_S)

    def _settle(self, target, obj):
        """Judge one read of a target's object: True when its wait is over (complete, or failed)."""
        status = rollout_status(target.kind, obj)
        target.result["status"] = status
        fresh = (status["observed_generation"] or 0) >= (target.generation or 0)
        if not fresh:
            return False
        if status["state"] == "complete":
            return True
        if status["state"] == "progress_deadline_exceeded":
            self._stalled(target, obj, status, "it exceeded its progress deadline")
            return True
        if status["state"] == "not_supported":
            target.result["warning"] = ("%s uses the OnDelete update strategy: its pods change only when "
                                        "deleted, so the rollout was not waited for." % target.describe())
            return True
        return False

    def _timed_out(self, target, obj):
        self._stalled(target, obj, target.result.get("status") or rollout_status(target.kind, obj),
                      "the rollout did not complete within wait_timeout=%gs" % self.wait_timeout)

    def _watch_one(self, target, deadline):
        """Follow one object with a watch until its wait is over; False hands over to polling.

        Starts from the newest copy seen (the write's answer, or the planning
        read), so no change after it is missed, and judges every event as the
        polling loop judges a read. Polling takes over when the watch cannot
        go on (410 Gone, an ERROR event, the object deleted, a broken stream
        before the deadline); a stream the server ended is opened again from
        the last resourceVersion seen.
        """
        obj = target.latest or target.obj
        if not obj:
            return False
        version = (obj.get("metadata") or {}).get("resourceVersion")
        while True:
            if self._settle(target, obj):
                return True
            remaining = deadline - self.clock()
            if remaining <= 0:
                self._timed_out(target, obj)
                return True
            try:
                for event in self.api.watch(target.kind, target.namespace, target.name, version, remaining):
                    kind = event.get("type")
                    if kind not in ("ADDED", "MODIFIED", "BOOKMARK"):
                        return False  # ERROR (410 Gone: too old a version) or DELETED: polling says what it is
                    version = ((event.get("object") or {}).get("metadata") or {}).get("resourceVersion") or version
                    if kind == "BOOKMARK":
                        continue
                    obj = event["object"]
                    if self._settle(target, obj):
                        return True
                    if self.clock() >= deadline:
                        break
            except (RollbackError, TransportError, ValueError) as error:
                if self.clock() < deadline:
                    target.result["last_wait_error"] = getattr(error, "message", None) or str(error)
                    return False
            if not version:
                return False

    def _observe(self, targets):
        """{label: (target, object or None)} read with one LIST per big (kind, namespace) group."""
        observed = {}
        lock = threading.Lock()

        def read(group):
            kind, namespace, members = group
            try:
                if len(members) == 1:
                    objects = {members[0].name: self.api.read(kind, namespace, members[0].name)}
                else:
                    objects = self.api.list_objects(kind, namespace)
            except RollbackError as error:
                # A read that fails while waiting is retried next round; the last error is kept.
                for target in members:
                    target.result["last_wait_error"] = error.message
                return
            with lock:
                for target in members:
                    observed[target.label] = (target, objects.get(target.name))
        self._map(read, self._groups(targets))
        return observed

    def _stalled(self, target, obj, status, why):
        """Fail a target whose rollout did not finish, saying which revision is live and which serve."""
        serving = []
        live = None
        live_number = (target.result.get("after") or {}).get("revision")
        try:
            history = self.api.history(target.kind, obj)
            live = live_entry(history, (obj.get("spec") or {}).get("template"))
            serving = [{"revision": entry["revision"], "ready_replicas": entry.get("ready_replicas"),
                        "images": entry["images"]} for entry in history
                       if entry.get("ready_replicas") and entry is not live]
        except RollbackError:
            pass
        if live is not None:
            live_number = live["revision"]
        images = template_images((obj.get("spec") or {}).get("template"))
        if live is not None and "ready_replicas" in live:
            # A Deployment's status counts old and new pods together; the ReplicaSet says what the live one has.
            readiness = "%d of %s desired pods of it are ready" % (live["ready_replicas"], status.get("replicas"))
        else:
            readiness = _counters(status)
        text = "%s: %s. The live revision is %s (%s); %s." % (
            target.describe(), why, live_number, ", ".join(images) or "no images", readiness)
        if status.get("state") != "progress_deadline_exceeded" and status.get("message"):
            text += " Last status: %s" % status["message"]
        if serving:
            text += " Still serving: %s." % ", ".join(
                "revision %s (%s ready)" % (item["revision"], item["ready_replicas"]) for item in serving)
        target.result.update({"failed": True, "msg": text.strip(), "live_revision": live_number,
                              "serving_revisions": serving, "status": status})

    # -- failure bookkeeping --------------------------------------------------------------
    def _guard(self, target, action):
        try:
            action()
        except RollbackError as error:
            self._fail(target, error)

    @staticmethod
    def _fail(target, error):
        target.result["failed"] = True
        target.result["changed"] = bool(target.result.get("changed") and target.generation)
        target.result["msg"] = error.message
        for key, value in error.details.items():
            target.result.setdefault(key, value)


def _counters(status):
    return ("%s updated, %s ready and %s available of %s desired"
            % (status.get("updated_replicas"), status.get("ready_replicas"), status.get("available_replicas"),
               status.get("replicas")))


class FleetError(RollbackError):
    """Some targets failed; ``targets`` carries every target's result."""

    def __init__(self, message, targets):
        super().__init__(message)
        self.targets = targets


# ----------------------------------------------------------------------------- module glue
def rollout_undo(api, targets, fleet, check_mode=False, wait=True, wait_timeout=300, parallelism=10):
    """Run an undo and shape the module result: (changed, result).

    One target (``fleet`` false): its fields at the top level. A fleet: ``results``
    (one per target, in the order given), ``summary``, and ``before``/``after``
    keyed by target. A failure raises RollbackError carrying the same result.
    """
    runner = RolloutUndo(api, parallelism=parallelism, wait=wait, wait_timeout=wait_timeout, check_mode=check_mode)
    error = None
    try:
        runner.run(targets)
    except FleetError as failure:
        error = failure
    results = [_shape(target) for target in targets]
    diffs = [build_diff(target.label, target.result["before"], target.result["after"])
             for target in targets if target.result.get("before") is not None and target.result.get("after")]
    changed = any(item["changed"] for item in results)
    if fleet:
        result = {
            "results": results,
            "summary": fleet_summary(results),
            "before": {item["target"]: item.get("before") for item in results},
            "after": {item["target"]: item.get("after") for item in results},
            "diff": diffs,
        }
    else:
        result = dict(results[0])
        result["diff"] = diffs[0] if diffs else {}
    result["changed"] = changed
    if error is not None:
        result.pop("changed")
        failed_result = {key: value for key, value in result.items() if key not in ("msg", "failed")}
        raise RollbackError(error.message, changed=changed, **failed_result)
    return changed, result


def _shape(target):
    result = dict(target.result)
    result.setdefault("before", None)
    result.setdefault("after", None)
    if not result.get("failed"):
        result.pop("msg", None)
    return result
