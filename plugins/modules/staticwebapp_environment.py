#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: staticwebapp_environment
short_description: Delete an environment of an Azure Static Web App and wait for the delete to end
version_added: 0.1.0
description:
  - Deletes one environment (ARM build) of a Static Web App, as C(az staticwebapp environment delete) does,
    and waits for the long-running delete to finish.
  - Idempotent, so an environment that does not exist is left alone and the task reports no change.
  - The production environment (C(default)) is refused unless O(confirm=true). Deleting it removes what
    production serves until the next deploy; the mystira runbook's "delete current and redeploy previous".
    Production counts as already deleted when nothing is deployed to it (status C(WaitingForDeployment)).
  - Check mode reports what would be deleted and changes nothing.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  resource_group:
    description: The resource group of the Static Web App.
    type: str
    required: true
  name:
    description: The Static Web App name.
    type: str
    required: true
    aliases: [app]
  environment:
    description:
      - The environment to delete; a pull request environment is named by its number.
      - C(default) or C(production) names production, which needs O(confirm=true).
    type: str
    required: true
  state:
    description: Only C(absent) is supported; environments are created by deploys, not by this module.
    type: str
    choices: [absent]
    default: absent
  confirm:
    description: Allow deleting the production environment (C(default)).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the delete to finish. A delete still running then fails the task.
    type: float
    default: 600
  polling_interval:
    description: Seconds between polls of the delete when Azure does not say how long to wait.
    type: float
    default: 2
notes:
  - Needs C(Microsoft.Web/staticSites/builds/delete) on the Static Web App.
seealso:
  - module: sre.rollback.staticwebapp_info
requirements:
  - azure-mgmt-web >= 7.2
"""

EXAMPLES = r"""
- name: Remove the preview environment of pull request 42
  sre.rollback.staticwebapp_environment:
    resource_group: rg-mystira-prod
    name: mystira-admin-ui
    environment: "42"

- name: Delete what production serves, then redeploy the previous version (mystira runbook, SWA Rollback)
  sre.rollback.staticwebapp_environment:
    resource_group: rg-mystira-prod
    name: mystira-admin-ui
    environment: default
    confirm: true
"""

RETURN = r"""
environment:
  description: The environment name as ARM knows it (C(default) for production).
  returned: always
  type: str
  sample: "42"
before:
  description: The environment before the task (as M(sre.rollback.staticwebapp_info) reports one); empty when absent.
  returned: always
  type: dict
after:
  description: The environment after the task; empty when it no longer exists (or, in check mode, would not).
  returned: always
  type: dict
progress:
  description: The status changes of the delete operation, with seconds since it started.
  returned: when the environment was deleted (not in check mode)
  type: list
  elements: dict
  sample: [{elapsed_s: 0.0, status: InProgress}, {elapsed_s: 12.4, status: Succeeded}]
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import (
    AZURE_AUTH_ARGSPEC,
    AZURE_IDENTITY_IMPORT_ERROR,
    AzureSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_staticsites import (
    AZURE_WEB_IMPORT_ERROR,
    StaticWebApp,
    remove_environment,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            name=dict(type="str", required=True, aliases=["app"]),
            environment=dict(type="str", required=True),
            state=dict(type="str", default="absent", choices=["absent"]),
            confirm=dict(type="bool", default=False),
            timeout=dict(type="float", default=600),
            polling_interval=dict(type="float", default=2),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-web", AZURE_WEB_IMPORT_ERROR)])
    params = module.params

    def delete():
        app = StaticWebApp.connect(AzureSettings.from_params(params), params["resource_group"], params["name"])
        changed, result = remove_environment(
            app, params["environment"], confirm=params["confirm"], timeout=params["timeout"],
            polling_interval=params["polling_interval"], check_mode=module.check_mode)
        if not module.diff_mode:
            result.pop("diff", None)
        return changed, result

    module.run(delete)


if __name__ == "__main__":
    main()
