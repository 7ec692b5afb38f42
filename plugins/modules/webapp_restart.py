#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_restart
short_description: Restart an Azure App Service app or slot and wait until it answers again
version_added: 0.1.0
description:
  - Restarts an App Service app (or one of its slots), the C(az webapp restart) step of the runbooks
    after a connection string cut-over or a cache flush ("to clear in-memory state").
  - A restart is an action, not a state, so the task always reports a change (and, in check mode,
    that it would restart). With O(health_url) it then waits until the app answers healthy again.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
options:
  slot:
    description: The slot to restart; C(production) is the app itself.
    type: str
    default: production
  health_url:
    description:
      - A URL to probe after the restart until it answers with status 200, or O(wait_timeout) passes.
      - Use M(sre.rollback.health_check) afterwards for a full verdict.
    type: str
  wait_timeout:
    description: Seconds to wait for O(health_url) to answer 200 after the restart.
    type: int
    default: 300
notes:
  - Needs C(Microsoft.Web/sites/restart/action) (or C(Microsoft.Web/sites/slots/restart/action)).
  - The CA bundle for O(health_url) is taken from E(SSL_CERT_FILE) or E(REQUESTS_CA_BUNDLE) when set.
seealso:
  - module: sre.rollback.health_check
requirements:
  - azure-mgmt-web >= 7.2
  - httpx
"""

EXAMPLES = r"""
- name: Restart App Service (fundrbolt runbook, after the database cut-over)
  sre.rollback.webapp_restart:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
    health_url: https://fundrbolt-production-api.azurewebsites.net/health
"""

RETURN = r"""
slot:
  description: The slot that was restarted.
  returned: always
  type: str
answered_after_s:
  description: Seconds from the restart until O(health_url) answered 200; null without O(health_url) or in check mode.
  returned: always
  type: float
before:
  description: The slot's state before the restart.
  returned: always
  type: dict
after:
  description: The slot's state after the restart.
  returned: always
  type: dict
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
from ansible_collections.sre.rollback.plugins.module_utils.health import HTTPX_IMPORT_ERROR
from ansible_collections.sre.rollback.plugins.module_utils.webapp_restart import restart_and_wait


def main():
    module = RollbackModule(
        argument_spec=dict(
            slot=dict(type="str", default="production"),
            health_url=dict(type="str"),
            wait_timeout=dict(type="int", default=300),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(WEBAPP_LIBRARIES + [("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def restart():
        slots = AppServiceSlots.from_params(params)
        return restart_and_wait(slots, params["slot"], params["health_url"], params["wait_timeout"], module.check_mode)

    module.run(restart)


if __name__ == "__main__":
    main()
