#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_rollout_undo
short_description: Roll a Deployment, StatefulSet or DaemonSet (or a fleet of them) back to the previous or a named revision, and wait
version_added: 0.1.0
description:
  - The "roll back" step of the mystira runbook (C(kubectl rollout undo) and C(kubectl rollout status)), done so it
    can run twice. Writes the pod template of the previous revision, or of O(to_revision), into the object and waits
    until the controller has rolled it out.
  - Deployments are rolled back from their ReplicaSets, StatefulSets and DaemonSets from their ControllerRevisions.
    The controller-owned labels (C(pod-template-hash), C(controller-revision-hash)) are left out of the template.
  - Unlike C(kubernetes.core.k8s_rollback), the object's other annotations and labels are kept. Only
    C(kubernetes.io/change-cause) follows the revision rolled back to (removed when that revision has none), as the
    controller would copy it onto the new revision, and the module records what it did in the annotation
    C(sre.rollback/undo) (C(from), C(to) and a fingerprint of the template).
  - Idempotent by desired state. When the live pod template already equals the target revision's, nothing is
    written. The controller renumbers the revision rolled back to (revision 2 becomes revision 4), so the previous
    revision is relative; a re-run recognises an undo it already did through C(sre.rollback/undo) (the live template is
    the recorded one, and nothing newer was rolled out since) and reports no change instead of rolling back again
    onto the release the first run left. The same record lets a re-run with O(to_revision) succeed after that
    revision was renumbered. To go further back after an undo, name O(to_revision).
  - Every write is one C(PUT) of the whole object with its C(resourceVersion). A 409 Conflict (someone changed the
    object in between) makes the module read the object again, decide again and retry.
  - Bad input fails before anything is written, with a message that says what to do. A revision not in the
    history, a kind that cannot be rolled back, a missing object, a paused Deployment, and an object whose history
    holds no other revision (for example with C(revisionHistoryLimit) set to 0).
  - With O(wait), waits as C(kubectl rollout status) does. The controller must have observed the new generation,
    and all replicas must be updated, ready and available. A Deployment that reaches C(ProgressDeadlineExceeded),
    or any object still rolling out after O(wait_timeout), fails the task. The message names the live revision,
    its images, the replica counts, and the revisions that still serve ready pods. One object is followed with a
    watch on it from the version the write answered with, as C(kubectl rollout status) does, so the task returns
    the moment the controller reports the rollout complete; if the watch cannot go on (the version expired, the
    stream broke), the module polls instead.
  - O(targets) rolls back a fleet (a release that went bad everywhere) in one task. Every target is read and
    planned first, concurrently; if any target is bad input, nothing is changed at all. Then the writes run with at
    most O(parallelism) at a time on one shared connection pool, and one loop polls every rollout (objects of
    one kind in one namespace with one C(LIST) per round). Each target is reported in RV(results); the task fails if
    any target fails, after all were worked.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.kubernetes
attributes:
  check_mode:
    support: full
    description:
      - Reads and decides (revision, images, and the new revision number the controller will give) and writes
        nothing.
  diff_mode:
    support: full
    description: Shows the revision number, images and change-cause before and after, per target.
options:
  kind:
    description:
      - The kind of the object, V(Deployment), V(StatefulSet) or V(DaemonSet). The short names C(kubectl) takes
        (V(deploy), V(sts), V(ds)) and lower case are accepted.
      - The kind of every entry of O(targets) that does not name its own.
    type: str
    default: Deployment
  name:
    description:
      - Name of the object to roll back.
      - Exactly one of O(name) and O(targets) is required.
    type: str
  namespace:
    description:
      - Namespace of the object; also of every entry of O(targets) that does not name its own.
    type: str
    default: default
  to_revision:
    description:
      - The revision to roll back to, as listed by M(sre.rollback.k8s_rollout_info) or C(kubectl rollout history).
      - Without it, the previous revision, the newest older revision whose template differs from the live one.
    type: int
  targets:
    description:
      - A fleet of objects to roll back in one task, each a dict with C(name) and optionally C(kind), C(namespace) and
        C(to_revision). Without them an entry takes O(kind), O(namespace) and the previous revision.
      - Exactly one of O(name) and O(targets) is required.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the object.
        type: str
        required: true
      kind:
        description: Its kind; defaults to O(kind).
        type: str
      namespace:
        description: Its namespace; defaults to O(namespace).
        type: str
      to_revision:
        description: The revision to roll it back to; defaults to its previous revision.
        type: int
  parallelism:
    description:
      - With O(targets), how many objects are read or written at the same time (also the size of the connection
        pool).
      - Keep it modest against a production API server; its priority and fairness limits throttle a burst of writes
        (429s are retried after their C(Retry-After)).
    type: int
    default: 10
  wait:
    description:
      - Wait until every rollout is complete (observed generation, updated, ready and available replicas).
      - Without it, the task returns once the new templates are written; follow with
        M(sre.rollback.k8s_rollout_info) to see the rollout.
      - A target that needed no change is waited for too, so a re-run while a rollout is still going waits for it.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for all rollouts together. A rollout still going at the end fails the task.
    type: int
    default: 300
notes:
  - The module takes C(kubectl rollout undo)'s choice of revision but does not replace the object's annotations with
    the revision's, as C(kubectl rollout undo) and C(kubernetes.core.k8s_rollback) do; a paused Deployment is
    refused, as by kubectl.
  - C(OnDelete) StatefulSets and DaemonSets change pods only when they are deleted; for them the rollout is not
    waited for and the result carries a C(warning).
  - "Speed of one task. The module speaks JSON to the API server over keep-alive HTTPS (Python's C(http.client) and
    C(ssl)) and reads the kubeconfig itself by the rules of the C(kubernetes) client's loader, so a task does not
    import the C(kubernetes) package (about half a second of CPU). Kubeconfig users with an C(exec) or
    C(auth-provider) plugin, clusters with a C(proxy-url), and the in-cluster service account go through the
    C(kubernetes) client as before."
  - "Fleet design, why one task and not one task per host. An Ansible task costs about 0.3 to 1 s of controller CPU
    per host, so 200 hosts cost minutes before any API call. Here one module run reads each namespace with one
    C(LIST) per kind (objects and their ReplicaSets or ControllerRevisions), writes with O(parallelism) threads
    sharing one pool of keep-alive connections, and watches all rollouts with one poll loop. The wall time grows with the
    number of writes divided by O(parallelism), not with process start-ups."
seealso:
  - module: sre.rollback.k8s_rollout_info
  - name: kubectl rollout undo
    description: The command this module improves on.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_undo/
"""

EXAMPLES = r"""
# mystira runbook, "Kubernetes rollback": kubectl rollout undo deployment/mystira-api -n mystira, then
# kubectl rollout status. Safe to run again: the second run reports no change.
- name: Roll the API back to the previous revision and wait for it
  sre.rollback.k8s_rollout_undo:
    kind: Deployment
    name: mystira-api
    namespace: mystira
    wait_timeout: 600
  register: undo

- name: Say what changed
  ansible.builtin.debug:
    msg: "revision {{ undo.from_revision }} -> {{ undo.after.revision }} ({{ undo.after.images | join(', ') }})"

- name: Preview a rollback to a named revision (kubectl rollout undo --to-revision=2), change nothing
  sre.rollback.k8s_rollout_undo:
    name: mystira-api
    namespace: mystira
    to_revision: 2
  check_mode: true
  diff: true

- name: Roll back a StatefulSet through its ControllerRevisions
  sre.rollback.k8s_rollout_undo:
    kind: StatefulSet
    name: mystira-cache
    namespace: mystira
    to_revision: 1

# A release that went bad everywhere: every service of every tenant namespace in one task.
- name: Roll back the fleet, 20 at a time
  sre.rollback.k8s_rollout_undo:
    namespace: mystira
    targets:
      - name: mystira-api
      - name: mystira-worker
      - {name: mystira-web, namespace: mystira-edge}
      - {kind: DaemonSet, name: log-shipper, namespace: observability, to_revision: 4}
    parallelism: 20
    wait_timeout: 900
  register: fleet

- name: Report the fleet
  ansible.builtin.debug:
    msg: "{{ fleet.summary.changed }} rolled back, {{ fleet.summary.unchanged }} already there"

- name: With a bearer token from AWX instead of a kubeconfig
  sre.rollback.k8s_rollout_undo:
    host: "{{ aks_api_server }}"
    api_key: "{{ aks_deployer_token }}"
    ca_cert: /etc/pki/aks-production-ca.pem
    name: mystira-api
    namespace: mystira
"""

RETURN = r"""
kind:
  description: The kind of the object (single object only).
  returned: success and O(name) given
  type: str
  sample: Deployment
name:
  description: Name of the object (single object only).
  returned: success and O(name) given
  type: str
namespace:
  description: Namespace of the object (single object only).
  returned: success and O(name) given
  type: str
target:
  description: The object as C(namespace/kind/name).
  returned: success and O(name) given
  type: str
  sample: mystira/deployment/mystira-api
from_revision:
  description: The revision that was live before.
  returned: success and O(name) given
  type: int
  sample: 3
to_revision:
  description:
    - The revision rolled back to, by its number in the history when the module read it.
    - The controller gives it a new number, the C(revision) in RV(after).
  returned: success and O(name) given
  type: int
  sample: 2
target_revision:
  description: The history entry rolled back to (C(revision), C(name), C(change_cause), C(images), C(created)).
  returned: success and O(name) given
  type: dict
before:
  description:
    - One object, the live revision before (C(revision), C(images), C(change_cause)). A fleet, that per
      C(namespace/kind/name).
  returned: always
  type: dict
  sample: {"revision": 3, "images": ["registry.sandbox.local/mystira-api:v1.2.0"], "change_cause": "deploy v1.2.0"}
after:
  description:
    - The live revision after; in check mode, as predicted (the revision number the controller will give). A fleet,
      per C(namespace/kind/name).
  returned: always
  type: dict
  sample: {"revision": 4, "images": ["registry.sandbox.local/mystira-api:v1.1.0"], "change_cause": "deploy v1.1.0"}
status:
  description: The rollout status at the end of the wait, as in M(sre.rollback.k8s_rollout_info).
  returned: when O(wait) is true
  type: dict
note:
  description: Why nothing changed when the module recognised its own earlier undo.
  returned: when it applies
  type: str
  sample: already rolled back from revision 3 (to revision 2, now revision 4)
conflicts:
  description: How many 409 Conflicts were answered by reading again.
  returned: when there was one
  type: int
warning:
  description: Why the rollout was not waited for (C(OnDelete) strategy).
  returned: when it applies
  type: str
live_revision:
  description: On a failed wait, the revision the object is at.
  returned: failure
  type: int
serving_revisions:
  description: On a failed wait, the revisions that still have ready pods (C(revision), C(ready_replicas), C(images)).
  returned: failure
  type: list
  elements: dict
results:
  description:
    - Fleet only, one entry per target in the order given, each with the fields of a single object
      (C(target), C(kind), C(name), C(namespace), C(changed), C(failed), C(from_revision), C(to_revision),
      C(before), C(after), C(status)) and C(msg) when it failed.
  returned: O(targets) given
  type: list
  elements: dict
summary:
  description: Fleet only, C(total), C(changed), C(unchanged), C(failed) and C(failed_targets).
  returned: O(targets) given
  type: dict
  sample: {"total": 200, "changed": 198, "unchanged": 2, "failed": 0, "failed_targets": []}
parallelism:
  description: Fleet only, the O(parallelism) the fleet was worked with.
  returned: O(targets) given
  type: int
  sample: 10
cluster:
  description: The API server and kubeconfig context used (never a credential).
  returned: always
  type: dict
api_calls:
  description: Requests sent to the API server.
  returned: always
  type: int
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    KubernetesSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.k8s_rollout import RolloutApi, Target, rollout_undo


def main():
    module = RollbackModule(
        argument_spec=dict(
            kind=dict(type="str", default="Deployment"),
            name=dict(type="str"),
            namespace=dict(type="str", default="default"),
            to_revision=dict(type="int"),
            targets=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                kind=dict(type="str"),
                namespace=dict(type="str"),
                to_revision=dict(type="int"),
            )),
            parallelism=dict(type="int", default=10),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
        ),
        fragments=[K8S_AUTH_ARGSPEC],
        mutually_exclusive=[("name", "targets"), ("to_revision", "targets")],
        required_one_of=[("name", "targets")],
        supports_check_mode=True,
    )
    module.require_libraries([("kubernetes", KUBERNETES_IMPORT_ERROR)])
    params = module.params

    def undo():
        if params["parallelism"] < 1:
            raise RollbackError("parallelism must be 1 or more, got %d." % params["parallelism"])
        if params["wait_timeout"] < 0:
            raise RollbackError("wait_timeout must be 0 or more seconds, got %d." % params["wait_timeout"])
        fleet = params["targets"] is not None
        if fleet:
            if not params["targets"]:
                raise RollbackError("targets is empty: list at least one object to roll back.")
            targets = [Target(entry.get("kind") or params["kind"], entry.get("namespace") or params["namespace"],
                              entry["name"], entry.get("to_revision")) for entry in params["targets"]]
        else:
            targets = [Target(params["kind"], params["namespace"], params["name"], params["to_revision"])]
        settings = KubernetesSettings.from_params(params)
        rest = settings.rest(pool_size=params["parallelism"] if fleet else 2)
        api = RolloutApi(rest)
        try:
            changed, result = rollout_undo(api, targets, fleet, check_mode=module.check_mode, wait=params["wait"],
                                           wait_timeout=params["wait_timeout"], parallelism=params["parallelism"])
        except RollbackError as error:
            error.details.update(cluster=settings.describe(), api_calls=rest.calls)
            if not module.diff_mode:
                error.details.pop("diff", None)
            raise
        result.pop("changed", None)
        if fleet:
            result["parallelism"] = params["parallelism"]
        result["cluster"] = settings.describe()
        result["api_calls"] = rest.calls
        if not module.diff_mode:
            result.pop("diff", None)
        return changed, result

    module.run(undo)


if __name__ == "__main__":
    main()
