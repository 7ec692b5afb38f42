#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: appservice_plan_scale
short_description: Scale an Azure App Service plan up/down (SKU) or out/in (instances) and wait until it serves
version_added: 0.1.0
description:
  - The "scale up" answer to a P2 (degraded) incident in the sf-ai-assistant runbook's decision matrix, as a
    desired state. Brings an App Service plan to a size, that is a SKU (pricing tier and size, for example
    V(P1v3)) and a capacity (instances), given directly (O(sku), O(capacity)), by a step (O(step) instances,
    O(sku_step) sizes within the tier), or as a size an earlier run recorded (O(to)).
  - Returns the size before the change in RV(before), so the procedure can scale back after the incident by
    passing it to O(to) (for example C(to="{{ scaled.before }}")).
  - Everything is checked before any change, and a refusal changes nothing. The SKU must be one the plan
    can take, as App Service lists them for this very plan (C(GET .../serverfarms/{name}/skus)), so a SKU
    that does not exist, or that the plan's scale unit does not offer, is refused with the list of those it
    can take. The capacity must be within the SKU's instance limit, and the size within O(floor) and
    O(ceiling) (which the inventory sets).
  - Scales with the same call as C(az appservice plan update) (a PUT of the plan with the new C(sku)) and
    waits for its long-running operation, then until the plan reports C(provisioningState) Succeeded at the
    size asked for and C(numberOfWorkers) has reached the capacity, that is until the new capacity serves.
  - Idempotent by desired state for O(sku), O(capacity) and O(to). O(step) and O(sku_step) are relative to the
    size found, so running such a task again steps again; record RV(after) and use O(capacity) or O(sku)
    when a re-run must be a no-op.
  - When an update of the plan is already running (another run's scale), waits for it to end before deciding.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
attributes:
  check_mode:
    support: full
    description: Reads the plan and its SKU list and runs every check; reports the size it would scale to. Writes nothing.
  diff_mode:
    support: full
    description: Shows the SKU and the capacity before and after.
options:
  resource_group:
    description:
      - The resource group of the App Service plan, or with O(app), of the app (its plan may be in another one).
    type: str
    required: true
  name:
    description:
      - The name of the App Service plan.
      - Exactly one of O(name) and O(app) is required.
    type: str
    aliases: [plan]
  app:
    description:
      - Scale the plan that hosts this App Service app instead (found from the app's C(serverFarmId)), which is
        how the inventory usually names a service. Every app in that plan gets the new size.
    type: str
  sku:
    description:
      - The SKU to scale to, for example V(P2v3) (up) or V(S1) (down). Case does not matter.
      - Must be one of the SKUs the plan can take (RV(selectable_skus) on a refusal lists them).
      - Without O(sku), O(sku_step) and O(to), the SKU stays as it is.
    type: str
  sku_step:
    description:
      - Scale up (positive) or down (negative) by this many sizes within the plan's current tier, in the
        order of the plan's SKU list (V(1) from V(P1v3) is V(P2v3)).
      - Leaving the tier is refused; name the SKU with O(sku) for that.
    type: int
  capacity:
    description:
      - The number of instances to scale out or in to (C(sku.capacity)). At least 1, at most what the SKU allows
        (for example 3 for Basic, 10 for Standard, 30 for PremiumV3).
      - Without O(capacity), O(step) and O(to), the capacity stays as it is (also across a change of SKU).
    type: int
  step:
    description:
      - Add (positive) or remove (negative) this many instances from the capacity found.
      - V(0) keeps the size, which makes the task a read of the plan's size (RV(before)).
    type: int
  to:
    description:
      - A size to restore, the RV(before) of an earlier run, with keys C(sku), C(tier) and C(capacity) (C(tier)
        optional and only checked against C(sku); either of the other two may be left out).
      - Cannot be combined with O(sku), O(sku_step), O(capacity) or O(step).
    type: dict
  floor:
    description:
      - The smallest size this task may leave the plan at, with keys C(sku) and/or C(capacity) (for example
        SKU V(P1v3) and 2 instances). A size below it is refused before any change.
      - SKUs compare by tier (Free, Shared, Basic, Standard, Premium, PremiumV2, PremiumV3, PremiumMV3,
        Isolated, IsolatedV2), then by size within the tier.
    type: dict
  ceiling:
    description:
      - The largest size this task may scale the plan to, with keys C(sku) and/or C(capacity) (for example
        SKU V(P3v3) and 10 instances), compared as O(floor). A size above it is refused before any change.
    type: dict
  wait_timeout:
    description:
      - Seconds to wait, in all, for an update already running, the scale operation, and the new instances to
        serve. On the deadline the task fails saying what the plan reports; the scale may still complete in
        Azure.
    type: int
    default: 600
notes:
  - Needs C(Microsoft.Web/serverfarms/read) and C(Microsoft.Web/serverfarms/write).
  - A plan that autoscale rules manage may be scaled back by them; this module does not change autoscale
    settings.
  - Every app in the plan runs on the new size; a change of tier briefly restarts them on new workers.
seealso:
  - module: sre.rollback.webapp_restart
  - module: sre.rollback.health_check
  - name: Scale up an app in Azure App Service
    description: The SKUs, tiers and what a scale up changes.
    link: https://learn.microsoft.com/azure/app-service/manage-scale-up
requirements:
  - azure-mgmt-web >= 7.2
  - azure-identity
"""

EXAMPLES = r"""
# sf-ai-assistant runbook, P2 (degraded, 30 minutes): "revert config change or scale up".
- name: Scale the plan up one size and out to 4 instances, within the inventory's limits
  sre.rollback.appservice_plan_scale:
    resource_group: sf-ai-assistant-production-rg
    name: sf-ai-assistant-production-plan
    sku_step: 1
    capacity: 4
    floor: "{{ scale_floor }}"        # for example {sku: P1v3, capacity: 2}
    ceiling: "{{ scale_ceiling }}"    # for example {sku: P3v3, capacity: 10}
  register: scaled

- name: Verify the app answers within its threshold again
  sre.rollback.health_check:
    url: https://sf-ai-assistant-production.azurewebsites.net/health
    max_latency_p95_ms: 800

# After the incident: back to the size recorded before the scale.
- name: Scale back to the size before the incident
  sre.rollback.appservice_plan_scale:
    resource_group: sf-ai-assistant-production-rg
    name: sf-ai-assistant-production-plan
    to: "{{ scaled.before }}"
    floor: "{{ scale_floor }}"

- name: Add two instances to the plan of the mystira app, to see what would change first
  sre.rollback.appservice_plan_scale:
    resource_group: mystira-production-rg
    app: mystira-production-app
    step: 2
    ceiling: {capacity: 10}
  check_mode: true
  register: prediction

- name: Scale up to a named SKU, keeping the instance count
  sre.rollback.appservice_plan_scale:
    resource_group: fundrbolt-production-rg
    plan: fundrbolt-production-plan
    sku: P2v3
    wait_timeout: 900
"""

RETURN = r"""
plan_id:
  description: The ARM id of the plan.
  returned: always
  type: str
  sample: /subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/serverfarms/asp-fundrbolt
resource_group:
  description: The plan's resource group.
  returned: always
  type: str
name:
  description: The plan's name.
  returned: always
  type: str
app:
  description: The app whose plan was scaled, when O(app) was given; else null.
  returned: always
  type: str
before:
  description:
    - The size before the task, C(sku), C(tier), C(capacity). Give it to O(to) to scale back.
  returned: always
  type: dict
  sample: {"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}
requested:
  description: The size the task scaled (or would scale) to, after O(step), O(sku_step) or O(to) were applied.
  returned: always
  type: dict
  sample: {"sku": "P2v3", "tier": "PremiumV3", "capacity": 4}
after:
  description: The size the plan reports at the end; in check mode, the size it would have.
  returned: always
  type: dict
  sample: {"sku": "P2v3", "tier": "PremiumV3", "capacity": 4}
number_of_workers:
  description: Instances serving at the end (C(numberOfWorkers)); in check mode, those serving now.
  returned: always
  type: int
  sample: 4
changes:
  description: What changed (or would change), one line per dimension.
  returned: always
  type: list
  elements: str
  sample: ["scale up: sku P1v3 -> P2v3", "scale out: capacity 2 -> 4"]
progress:
  description: The scale operation's status changes and the wait for the workers, with elapsed seconds.
  returned: always
  type: list
  elements: dict
  sample: [{"elapsed_s": 0.4, "status": "InProgress"}, {"elapsed_s": 41.2, "status": "Succeeded"}]
waited_s:
  description: Seconds from the first read until the plan served at the size asked for.
  returned: always
  type: float
selectable_skus:
  description: On a refused SKU, the SKUs the plan can take.
  returned: failure
  type: list
  elements: str
plan_state:
  description:
    - On a failure or timeout during the scale, what the plan reports then (C(sku), C(tier), C(capacity),
      C(number_of_workers), C(provisioning_state)).
  returned: failure
  type: dict
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.appservice_plan import PLAN_LIBRARIES, scale_plan
from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            name=dict(type="str", aliases=["plan"]),
            app=dict(type="str"),
            sku=dict(type="str"),
            sku_step=dict(type="int"),
            capacity=dict(type="int"),
            step=dict(type="int"),
            to=dict(type="dict"),
            floor=dict(type="dict"),
            ceiling=dict(type="dict"),
            wait_timeout=dict(type="int", default=600),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        mutually_exclusive=[("name", "app")],
        required_one_of=[("name", "app")],
        supports_check_mode=True,
    )
    module.require_libraries(PLAN_LIBRARIES)

    def scale():
        changed, result = scale_plan(module.params, module.check_mode)
        diff = result.pop("diff")
        if module.diff_mode:
            result["diff"] = diff
        return changed, result

    module.run(scale)


if __name__ == "__main__":
    main()
