#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_scale
short_description: Scale a Kubernetes Deployment or StatefulSet out/in and wait until the replicas are ready
version_added: 0.1.0
description:
  - The Kubernetes half of the "scale up/out" answer to a P2 (degraded) incident, as a desired state. Brings a
    Deployment or StatefulSet to a replica count given directly (O(replicas)), by a step (O(step)), or as a
    count an earlier run recorded (O(to)).
  - Returns the count before the change in RV(before), so the procedure can scale back after the incident by
    passing it to O(to) (for example C(to="{{ scaled.before }}")).
  - A count below O(floor) or above O(ceiling) (which the inventory sets), or below 0, is refused before any
    change. A workload that does not exist is a clear error.
  - Scales as C(kubectl scale) does (a merge patch of the C(scale) subresource) and, with O(wait), waits as
    C(kubectl rollout status) does, until the controller has observed the change (C(status.observedGeneration))
    and C(status.readyReplicas) and C(status.replicas) equal the count asked for.
  - Idempotent by desired state for O(replicas) and O(to); a count already in place changes nothing (the task
    still waits for the replicas to be ready). O(step) is relative to the count found, so running such a task
    again steps again.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.kubernetes
attributes:
  check_mode:
    support: full
    description: Reads the workload and runs every check; reports the count it would scale to. Writes nothing.
  diff_mode:
    support: full
    description: Shows the replica count before and after.
options:
  kind:
    description: The kind of workload; C(deploy), C(sts) and the plurals are accepted too.
    type: str
    default: Deployment
  name:
    description: The name of the Deployment or StatefulSet.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    default: default
  replicas:
    description: The replica count to scale to.
    type: int
  step:
    description:
      - Add (positive) or remove (negative) this many replicas from the count found.
      - V(0) keeps the count, which makes the task a read of it (RV(before)).
    type: int
  to:
    description:
      - A count to restore, the RV(before) of an earlier run, with the key C(replicas).
      - Cannot be combined with O(replicas) or O(step).
    type: dict
  floor:
    description: The fewest replicas this task may leave; a smaller count is refused before any change.
    type: int
  ceiling:
    description: The most replicas this task may scale to; a larger count is refused before any change.
    type: int
  wait:
    description: Wait until the replicas asked for are ready.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the replicas to be ready. On the deadline the task fails saying how many are ready;
        the controller keeps working.
    type: int
    default: 300
notes:
  - Needs C(get) on the workload and C(patch) on its C(scale) subresource (for example C(deployments/scale)).
  - A HorizontalPodAutoscaler that targets the workload sets the count itself and may undo this one; the task
    fails if the count changes under it while it waits. Change the autoscaler's bounds instead.
seealso:
  - module: sre.rollback.appservice_plan_scale
  - name: kubectl scale
    description: What the module does, as a command.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_scale/
requirements:
  - kubernetes (the Python client)
"""

EXAMPLES = r"""
# sf-ai-assistant runbook, P2 (degraded, 30 minutes): "revert config change or scale up".
- name: Add two replicas to the API, within the inventory's limits
  sre.rollback.k8s_scale:
    namespace: sf-ai-assistant
    name: sf-ai-assistant-api
    step: 2
    floor: "{{ k8s_replicas_floor }}"      # for example 2
    ceiling: "{{ k8s_replicas_ceiling }}"  # for example 12
    wait_timeout: 600
  register: scaled

# After the incident: back to the count recorded before the scale.
- name: Scale back to the replicas before the incident
  sre.rollback.k8s_scale:
    namespace: sf-ai-assistant
    name: sf-ai-assistant-api
    to: "{{ scaled.before }}"
    floor: "{{ k8s_replicas_floor }}"

- name: Scale a StatefulSet to 3 replicas in another cluster context
  sre.rollback.k8s_scale:
    context: aks-mystira-production
    kind: StatefulSet
    namespace: mystira
    name: mystira-worker
    replicas: 3
"""

RETURN = r"""
kind:
  description: The kind of workload, C(Deployment) or C(StatefulSet).
  returned: always
  type: str
namespace:
  description: Its namespace.
  returned: always
  type: str
name:
  description: Its name.
  returned: always
  type: str
before:
  description: The count before the task, C(replicas). Give it to O(to) to scale back.
  returned: always
  type: dict
  sample: {"replicas": 3}
requested:
  description: The count the task scaled (or would scale) to, after O(step) or O(to) were applied.
  returned: always
  type: dict
  sample: {"replicas": 5}
after:
  description: The count at the end (C(spec.replicas)); in check mode, the count it would have.
  returned: always
  type: dict
  sample: {"replicas": 5}
ready_replicas:
  description: Replicas ready at the end (in check mode, ready now).
  returned: always
  type: int
  sample: 5
changes:
  description: What changed (or would change).
  returned: always
  type: list
  elements: str
  sample: ["scale out: replicas 3 -> 5"]
progress:
  description: How the ready count moved while waiting, with elapsed seconds.
  returned: always
  type: list
  elements: dict
  sample: [{"elapsed_s": 0.1, "status": "3/5 ready"}, {"elapsed_s": 9.3, "status": "5/5 ready"}]
waited_s:
  description: Seconds from the first read until the replicas were ready (or the end of the task without O(wait)).
  returned: always
  type: float
state:
  description: On a timeout or a count changed by someone else, the replica counts the workload reported.
  returned: failure
  type: dict
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC, KUBERNETES_IMPORT_ERROR
from ansible_collections.sre.rollback.plugins.module_utils.k8s_scale import scale_replicas


def main():
    module = RollbackModule(
        argument_spec=dict(
            kind=dict(type="str", default="Deployment"),
            name=dict(type="str", required=True),
            namespace=dict(type="str", default="default"),
            replicas=dict(type="int"),
            step=dict(type="int"),
            to=dict(type="dict"),
            floor=dict(type="int"),
            ceiling=dict(type="int"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
        ),
        fragments=[K8S_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("kubernetes", KUBERNETES_IMPORT_ERROR)])

    def scale():
        changed, result = scale_replicas(module.params, module.check_mode)
        diff = result.pop("diff")
        if module.diff_mode:
            result["diff"] = diff
        return changed, result

    module.run(scale)


if __name__ == "__main__":
    main()
