#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_slot_info
short_description: Show what each deployment slot of an Azure App Service app runs
version_added: 0.1.0
description:
  - Lists the slots of an App Service app (C(production) first) with their state and host names, and what
    each one runs, namely the container image or runtime stack (C(linuxFxVersion)), the active deployment id and the
    value of a version app setting.
  - Reports the slot-specific (sticky) setting names, which stay with their slot when slots swap.
  - The first step of every slot-swap runbook ("verify current slot status"), and the evidence the
    rollback roles capture before they act.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
options:
  slots:
    description:
      - Only these slots (C(production) names the app itself). All slots when omitted.
    type: list
    elements: str
  fingerprint:
    description:
      - Which value the C(fingerprint) of each slot in RV(slots) carries, as in M(sre.rollback.webapp_slot_swap).
    type: str
    choices: [image, deployment_id, app_setting]
    default: image
  fingerprint_setting:
    description: The app setting that carries the build version (reported as C(version_setting)).
    type: str
    default: APP_VERSION
notes:
  - Needs C(Microsoft.Web/sites/read), C(Microsoft.Web/sites/slots/read) and
    C(Microsoft.Web/sites/config/list/action) on the app (the C(Reader) role cannot list app settings).
  - App setting values are never returned; only the O(fingerprint_setting) value is.
seealso:
  - module: sre.rollback.webapp_slot_swap
requirements:
  - azure-mgmt-web >= 7.2
"""

EXAMPLES = r"""
- name: Verify current slot status (fundrbolt runbook, step 1)
  sre.rollback.webapp_slot_info:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
  register: slots

- name: Show what production and staging run
  ansible.builtin.debug:
    msg: "production runs {{ slots.slots.production.image }}, staging runs {{ slots.slots.staging.image }}"

- name: Derive the health URL of the staging slot from its host name
  sre.rollback.health_check:
    url: "https://{{ slots.slots.staging.default_host_name }}/health"
"""

RETURN = r"""
slots:
  description: Every slot asked for, keyed by slot name.
  returned: always
  type: dict
  contains:
    slot:
      description: The slot name (C(production) for the app itself).
      type: str
    state:
      description: C(Running) or C(Stopped).
      type: str
    default_host_name:
      description: The host name App Service gives the slot.
      type: str
    host_names:
      description: All host names of the slot, custom domains included.
      type: list
      elements: str
    image:
      description: The container image (or runtime stack) the slot runs.
      type: str
    deployment_id:
      description: The active deployment of the slot, if any.
      type: str
    version_setting:
      description: The value of O(fingerprint_setting) in the slot, if set.
      type: str
    fingerprint:
      description: The value that identifies the slot's build for O(fingerprint).
      type: str
    target_swap_slot:
      description: The slot a pending swap with preview goes into, if one is pending.
      type: str
    last_swap:
      description: The last swap of this slot (source slot, destination slot, time).
      type: dict
    sticky_setting_names:
      description: App setting and connection string names that stay with their slot during a swap.
      type: list
      elements: str
  sample:
    production:
      slot: production
      state: Running
      default_host_name: fundrbolt-production-api.azurewebsites.net
      image: fundrboltacr.azurecr.io/fundrbolt-api:1.5.0
      version_setting: 1.5.0
      fingerprint: fundrboltacr.azurecr.io/fundrbolt-api:1.5.0
    staging:
      slot: staging
      image: fundrboltacr.azurecr.io/fundrbolt-api:1.4.2
slot_names:
  description: The slot names, C(production) first.
  returned: always
  type: list
  elements: str
before:
  description: Empty; present for the collection's common result shape.
  returned: always
  type: dict
after:
  description: Empty; present for the collection's common result shape.
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    FINGERPRINTS,
    WEBAPP_ARGSPEC,
    WEBAPP_LIBRARIES,
    AppServiceSlots,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            slots=dict(type="list", elements="str"),
            fingerprint=dict(type="str", default="image", choices=list(FINGERPRINTS)),
            fingerprint_setting=dict(type="str", default="APP_VERSION"),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(WEBAPP_LIBRARIES)
    params = module.params

    def describe():
        app = AppServiceSlots.from_params(
            params, fingerprint=params["fingerprint"], fingerprint_setting=params["fingerprint_setting"])
        app.site()  # "app not found" first, before anything else is asked of it
        # read_slots fails clearly (listing the existing slots) on a slot that does not exist.
        names = params["slots"] or app.slot_names()
        states = app.read_slots(names, everything=True)
        return False, dict(slots={name: states[name].to_dict() for name in names}, slot_names=names)

    module.run(describe)


if __name__ == "__main__":
    main()
