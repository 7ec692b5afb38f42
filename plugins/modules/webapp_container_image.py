#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_container_image
short_description: Set the container image an Azure App Service app or slot runs
version_added: 0.1.0
description:
  - Points an App Service app (or one of its deployment slots) at a container image, the
    C(az webapp config container set --docker-custom-image-name) step of the runbooks, used to deploy a
    build into the staging slot before a swap or to roll a container back to an earlier tag.
  - Idempotent, it changes nothing when the slot already runs the image. Supports check mode and diff
    (the image before and after).
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
options:
  slot:
    description: The slot to change; C(production) is the app itself.
    type: str
    default: production
  image:
    description: The full image reference, for example C(myacr.azurecr.io/api:1.4.2).
    type: str
    required: true
  restart:
    description: Restart the slot after changing the image, so the new container starts at once.
    type: bool
    default: false
notes:
  - Needs C(Microsoft.Web/sites/config/write) (or C(Microsoft.Web/sites/slots/config/write)) on the app.
seealso:
  - module: sre.rollback.webapp_slot_swap
requirements:
  - azure-mgmt-web >= 7.2
"""

EXAMPLES = r"""
- name: Deploy the new build to the staging slot (fundrbolt automatic flow, step 1)
  sre.rollback.webapp_container_image:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
    slot: staging
    image: fundrboltacr.azurecr.io/fundrbolt-api:1.6.0

- name: Container image rollback (mystira runbook)
  sre.rollback.webapp_container_image:
    resource_group: rg-mystira-prod
    name: mystira-app
    image: mystiraacr.azurecr.io/mystira-app:v1.2.3
    restart: true
"""

RETURN = r"""
before:
  description: The image before the task.
  returned: always
  type: dict
  sample: {image: "myacr.azurecr.io/api:1.5.0"}
after:
  description: The image after the task (predicted in check mode).
  returned: always
  type: dict
  sample: {image: "myacr.azurecr.io/api:1.4.2"}
slot:
  description: The slot that was changed.
  returned: always
  type: str
restarted:
  description: Whether the slot was (or in check mode would be) restarted.
  returned: always
  type: bool
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    WEBAPP_ARGSPEC,
    WEBAPP_LIBRARIES,
    AppServiceSlots,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.webapp_image import ensure_image


def main():
    module = RollbackModule(
        argument_spec=dict(
            slot=dict(type="str", default="production"),
            image=dict(type="str", required=True),
            restart=dict(type="bool", default=False),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(WEBAPP_LIBRARIES)
    params = module.params

    def set_image():
        slots = AppServiceSlots.from_params(params)
        changed, result = ensure_image(slots, params["slot"], params["image"], params["restart"], module.check_mode)
        if not module.diff_mode:
            result.pop("diff")
        return changed, result

    module.run(set_image)


if __name__ == "__main__":
    main()
