#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_rollout_info
short_description: Rollout history, current revision, rollout status and recent events of a Deployment, StatefulSet or DaemonSet
version_added: 0.1.0
description:
  - The evidence step of a Kubernetes rollback (mystira runbook, C(kubectl rollout history) and
    C(kubectl rollout status)). Reads one object and returns its revision history (revision number, change-cause,
    images, creation time), the revision that is live, the rollout status as C(kubectl rollout status) judges it,
    and the object's recent events.
  - A Deployment's revisions are its ReplicaSets (annotation C(deployment.kubernetes.io/revision)); a StatefulSet's
    or DaemonSet's are its ControllerRevisions. Only those the object owns are listed.
  - Reads only; never changes anything, so it runs the same in check mode.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.kubernetes
attributes:
  check_mode:
    support: full
    description: Reads only; check mode changes nothing about it.
  diff_mode:
    support: none
    description: Reads only; there is nothing to compare.
options:
  kind:
    description:
      - The kind of the object, V(Deployment), V(StatefulSet) or V(DaemonSet). The short names C(kubectl) takes
        (V(deploy), V(sts), V(ds)) and lower case are accepted.
      - Any other kind fails with a message that says which kinds can be rolled back.
    type: str
    default: Deployment
  name:
    description: Name of the object.
    type: str
    required: true
  namespace:
    description: Namespace of the object.
    type: str
    default: default
  events_limit:
    description:
      - How many of the most recent events to return, of the object and of the objects it made (its ReplicaSets or
        revisions, its pods), newest first. V(0) reads no events.
      - Events are read from the namespace's event list and filtered by the name of the involved object (the object's
        name, or its name followed by C(-)); an object whose name extends this one's (V(api) and V(api-worker)) shows
        up too.
    type: int
    default: 10
notes:
  - The status follows C(kubectl rollout status) exactly, including its messages. StatefulSets and DaemonSets have
    no progress deadline, so their rollout is only ever V(progressing) or V(complete); with the C(OnDelete)
    update strategy the state is V(not_supported), as kubectl says.
  - RV(last_undo) is the record M(sre.rollback.k8s_rollout_undo) leaves on the object when it rolls back.
seealso:
  - module: sre.rollback.k8s_rollout_undo
  - name: kubectl rollout
    description: The commands this module mirrors.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/
"""

EXAMPLES = r"""
# mystira runbook, "Evidence first": what runs, what ran before, is the rollout stuck?
- name: Read the rollout of the API (kubectl rollout history / status)
  sre.rollback.k8s_rollout_info:
    kind: Deployment
    name: mystira-api
    namespace: mystira
  register: api_rollout

- name: Show history and status
  ansible.builtin.debug:
    msg:
      - "live revision {{ api_rollout.current_revision }}: {{ api_rollout.current_images | join(', ') }}"
      - "{{ api_rollout.status.message }}"
      - "{{ api_rollout.revisions | map(attribute='revision') | list }}"

- name: Stop when the rollout is stuck and there is nothing to roll back to
  ansible.builtin.assert:
    that: api_rollout.revisions | length > 1
    fail_msg: "No earlier revision of mystira-api is kept (revisionHistoryLimit: {{ api_rollout.revision_history_limit }})"

- name: A StatefulSet in another cluster, with an AWX bearer-token credential (K8S_AUTH_HOST, K8S_AUTH_API_KEY)
  sre.rollback.k8s_rollout_info:
    kind: sts
    name: mystira-cache
    namespace: mystira
    events_limit: 20
"""

RETURN = r"""
kind:
  description: The kind read, in its canonical spelling.
  returned: success
  type: str
  sample: Deployment
name:
  description: Name of the object.
  returned: success
  type: str
namespace:
  description: Namespace of the object.
  returned: success
  type: str
uid:
  description: The object's uid.
  returned: success
  type: str
revisions:
  description:
    - The revision history, oldest first, as C(kubectl rollout history) lists it.
    - Each has C(revision), C(name) (of the ReplicaSet or ControllerRevision), C(change_cause) (null when none),
      C(images), C(created) (creation time of the revision's object; a revision rolled back to keeps its old time);
      for Deployments also C(replicas) and C(ready_replicas) of the ReplicaSet.
  returned: success
  type: list
  elements: dict
  sample:
    - {"revision": 1, "name": "mystira-api-5d8f7c9b4", "change_cause": "deploy v1.0.0", "images": ["mystira-api:v1.0.0"],
       "created": "2026-12-01T10:00:00Z", "replicas": 0, "ready_replicas": 0}
current_revision:
  description:
    - The revision the object's pod template is at (for a Deployment, its C(deployment.kubernetes.io/revision)).
    - Null while the controller has not yet made a revision of a just-changed template.
  returned: success
  type: int
  sample: 3
current_images:
  description: The images of the object's pod template now.
  returned: success
  type: list
  elements: str
status:
  description:
    - The rollout status. C(state) is V(complete), V(progressing), V(progress_deadline_exceeded) (Deployments) or
      V(not_supported) (C(OnDelete) strategy); C(complete) is the same as a bool; C(message) is C(kubectl rollout
      status)'s text.
    - Counters C(replicas) (desired), C(current_replicas), C(updated_replicas), C(ready_replicas),
      C(available_replicas), C(generation), C(observed_generation), and the object's C(conditions).
  returned: success
  type: dict
  sample: {"state": "complete", "complete": true, "message": "deployment \"mystira-api\" successfully rolled out",
           "replicas": 3, "updated_replicas": 3, "ready_replicas": 3, "available_replicas": 3}
paused:
  description: Whether the Deployment's rollout is paused (always false for other kinds).
  returned: success
  type: bool
revision_history_limit:
  description: The object's C(revisionHistoryLimit) (how many old revisions are kept).
  returned: success
  type: int
progress_deadline_seconds:
  description: The Deployment's C(progressDeadlineSeconds); null for other kinds.
  returned: success
  type: int
last_undo:
  description: The record of the last undo by M(sre.rollback.k8s_rollout_undo) (C(from), C(to), C(template)), or null.
  returned: success
  type: dict
events:
  description:
    - Recent events of the object, its ReplicaSets or revisions and its pods, newest first, at most O(events_limit).
    - Each has C(time), C(type), C(reason), C(object) (kind/name), C(message), C(count).
  returned: success
  type: list
  elements: dict
cluster:
  description: The API server and kubeconfig context used (never a credential).
  returned: success
  type: dict
  sample: {"server": "https://127.0.0.1:6443", "context": "production", "source": "kubeconfig"}
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    KubernetesSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.k8s_rollout import RolloutApi, rollout_info


def main():
    module = RollbackModule(
        argument_spec=dict(
            kind=dict(type="str", default="Deployment"),
            name=dict(type="str", required=True),
            namespace=dict(type="str", default="default"),
            events_limit=dict(type="int", default=10),
        ),
        fragments=[K8S_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("kubernetes", KUBERNETES_IMPORT_ERROR)])
    params = module.params

    def read():
        settings = KubernetesSettings.from_params(params)
        api = RolloutApi(settings.rest(pool_size=2))
        result = rollout_info(api, params["kind"], params["namespace"], params["name"], params["events_limit"])
        result["cluster"] = settings.describe()
        return False, result

    module.run(read)


if __name__ == "__main__":
    main()
