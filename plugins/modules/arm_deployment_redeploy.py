#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: arm_deployment_redeploy
short_description: Roll infrastructure back by redeploying an earlier ARM deployment or template, what-if first
version_added: 0.1.0
description:
  - The runbooks' "Infrastructure Rollback" (Bicep deployment rollback) as one task. The source is one of
    an earlier deployment of the history by name (O(deployment_name)), the last deployment that Succeeded
    (O(last_successful=true), optionally the last one before a given deployment with O(before)), or a
    template file (O(template_file), ARM JSON or Bicep) with O(parameters) and O(parameters_file).
  - A history deployment is redeployed with its own template (ARM's export template operation) and its
    own parameter values. ARM never returns the values of C(secureString) and C(secureObject) parameters,
    so they cannot be read back; give them again in O(secure_parameters), or the module fails before
    anything is deployed and names them.
  - Every run first asks ARM to validate the deployment (a failure stops here with ARM's error, nothing
    deployed), then runs the ARM what-if operation (C(az deployment group what-if)). When what-if reports
    no change at all (only C(NoChange) and C(Ignore)), nothing is deployed and the task reports no change,
    unless O(force=true). Otherwise the deployment is created and awaited until it ends or O(wait_timeout)
    passes; a deployment that ends C(Failed) fails the task with ARM's error and the state reached.
  - In check mode only validate and what-if run; the result lists what would change.
  - A C(.bicep) O(template_file) is built to ARM JSON with the C(bicep) CLI (C(bicep build FILE --stdout))
    when C(bicep) is on E(PATH); without it the task fails and says how to build the JSON yourself.
  - Uses the C(azure-mgmt-resource-deployments) SDK, where C(azure-mgmt-resource) 26 moved deployments
    (it has what-if, validate and export template at resource-group and subscription scope).
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  resource_group:
    description:
      - The resource group to deploy to.
      - Without it, the deployment is at subscription scope (C(az deployment sub)), which needs a O(location)
        (taken from the source deployment when redeploying one from the history).
    type: str
  deployment_name:
    description: Redeploy this earlier deployment of the history (it must have Succeeded).
    type: str
  last_successful:
    description: Redeploy the newest deployment of the history that Succeeded (see O(before) and O(exclude)).
    type: bool
    default: false
  before:
    description:
      - With O(last_successful), take the last Succeeded deployment older than this one (the deployment being
        rolled back). Without it, the newest Succeeded deployment is taken, which is usually the one running now.
    type: str
  exclude:
    description: With O(last_successful), deployment names never to pick.
    type: list
    elements: str
    default: []
  template_file:
    description:
      - Deploy this template file instead of one from the history. C(.json) is an ARM template; C(.bicep) is
        built with the C(bicep) CLI first.
    type: path
  parameters_file:
    description:
      - An ARM parameters file (C({"$schema", "contentVersion", "parameters"}) or a plain name to value object)
        for O(template_file). C(.bicepparam) files must be built to JSON first.
    type: path
  parameters:
    description:
      - Parameter values by name, for example C(appServiceSku=P1v3). They override the source deployment's values
        or the O(parameters_file). A value written the ARM way, a dictionary whose only key is C(value), is
        accepted too.
      - These values are logged like any task argument; put secrets in O(secure_parameters).
    type: dict
    default: {}
  secure_parameters:
    description:
      - Values of secure parameters (C(secureString), C(secureObject)), which ARM never returns and which
        therefore cannot come from the history. Never logged or returned.
    type: dict
    default: {}
  new_deployment_name:
    description:
      - Name of the new deployment. Default C(rollback-<source>-<UTC yyyymmddHHMMSS>).
      - Redeploying under the name of an existing deployment replaces that history entry, so the default
        keeps the history of what was rolled back.
    type: str
  mode:
    description:
      - C(incremental) changes only the resources in the template.
      - C(complete) also deletes every resource of the resource group the template does not declare; it is
        refused unless O(allow_complete_mode=true).
    type: str
    default: incremental
    choices: [incremental, complete]
  allow_complete_mode:
    description: Confirm O(mode=complete).
    type: bool
    default: false
  force:
    description: Deploy even when what-if reports no change.
    type: bool
    default: false
  location:
    description: Location of a subscription-scope deployment (metadata location, not the resources').
    type: str
  wait_timeout:
    description:
      - Seconds to wait for each of validate, what-if and the deployment. On timeout the task fails with the
        last state seen; the deployment may still be running in Azure.
    type: int
    default: 1800
notes:
  - Needs C(Microsoft.Resources/deployments/write), C(validate/action), C(whatIf/action) and
    C(exportTemplate/action), plus write access to the resources the template declares.
  - What-if predicts changes from the providers' answers; some resource types report C(Ignore) or
    C(Unsupported) and are not compared.
seealso:
  - module: sre.rollback.arm_deployment_info
requirements:
  - azure-mgmt-resource-deployments >= 2.0
  - bicep CLI on PATH, only for a C(.bicep) O(template_file)
"""

EXAMPLES = r"""
- name: Preview the rollback of infra-2026-11-23 (what-if only)
  sre.rollback.arm_deployment_redeploy:
    resource_group: fundrbolt-production-rg
    last_successful: true
    before: infra-2026-11-23
    secure_parameters:
      postgresAdminPassword: "{{ vault_postgres_admin_password }}"
  check_mode: true
  register: preview

- name: Show what would change
  ansible.builtin.debug:
    var: preview.what_if.changes

- name: Redeploy the last good infrastructure (runbook steps 2-4)
  sre.rollback.arm_deployment_redeploy:
    resource_group: fundrbolt-production-rg
    last_successful: true
    before: infra-2026-11-23
    secure_parameters:
      postgresAdminPassword: "{{ vault_postgres_admin_password }}"
  register: rollback

- name: Redeploy the Bicep template of a known-good commit (checked out beforehand)
  sre.rollback.arm_deployment_redeploy:
    location: eastus
    template_file: infrastructure/bicep/main.bicep
    parameters:
      environment: production
      location: eastus
    secure_parameters:
      postgresAdminPassword: "{{ vault_postgres_admin_password }}"
"""

RETURN = r"""
deployment_name:
  description: Name of the new deployment (also when nothing was deployed).
  returned: always
  type: str
source_name:
  description: The history deployment redeployed, or the template file's base name.
  returned: always
  type: str
source:
  description: The source deployment as M(sre.rollback.arm_deployment_info) describes it, or C({template_file}).
  returned: always
  type: dict
mode:
  description: C(Incremental) or C(Complete).
  returned: always
  type: str
what_if:
  description: ARM what-if's prediction.
  returned: always
  type: dict
  contains:
    create:
      description: Resources that would be created.
      type: int
    modify:
      description: Resources that would be modified.
      type: int
    delete:
      description: Resources that would be deleted (complete mode).
      type: int
    no_change:
      description: Resources already as declared.
      type: int
    ignore:
      description: Resources of the scope the template does not declare and leaves alone.
      type: int
    has_changes:
      description: Whether anything would be created, modified, deleted or deployed.
      type: bool
    changes:
      description: One entry per resource, C(resource_id), C(change_type) and, for a modify, C(delta) (path, change type, before, after).
      type: list
      elements: dict
deployment:
  description: The new deployment (name, id, state, timestamp, duration, duration_s, outputs...), null when nothing was deployed.
  returned: always
  type: dict
outputs:
  description: The new deployment's output values (empty when nothing was deployed).
  returned: always
  type: dict
progress:
  description: Status changes of the deployment with elapsed seconds.
  returned: when deployed
  type: list
  elements: dict
before:
  description: What-if counts before acting.
  returned: always
  type: dict
after:
  description: The deployment name and state reached.
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.arm_deployments import (
    REQUIRED_LIBRARIES,
    ArmDeployments,
    RedeployRequest,
    redeploy,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str"),
            deployment_name=dict(type="str"),
            last_successful=dict(type="bool", default=False),
            before=dict(type="str"),
            exclude=dict(type="list", elements="str", default=[]),
            template_file=dict(type="path"),
            parameters_file=dict(type="path"),
            parameters=dict(type="dict", default={}),
            secure_parameters=dict(type="dict", default={}, no_log=True),
            new_deployment_name=dict(type="str"),
            mode=dict(type="str", default="incremental", choices=["incremental", "complete"]),
            allow_complete_mode=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            location=dict(type="str"),
            wait_timeout=dict(type="int", default=1800),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(REQUIRED_LIBRARIES)
    params = module.params
    request = RedeployRequest(
        deployment_name=params["deployment_name"],
        last_successful=params["last_successful"],
        before=params["before"],
        exclude=params["exclude"],
        template_file=params["template_file"],
        parameters=params["parameters"],
        parameters_file=params["parameters_file"],
        secure_parameters=params["secure_parameters"],
        new_name=params["new_deployment_name"],
        mode=params["mode"],
        allow_complete_mode=params["allow_complete_mode"],
        force=params["force"],
        location=params["location"],
        wait_timeout=params["wait_timeout"],
    )

    def act():
        request.check()  # input errors first, before any credential or Azure call
        deployments = ArmDeployments.from_params(params)
        return redeploy(deployments, request, check_mode=module.check_mode, diff_mode=module.diff_mode)

    module.run(act)


if __name__ == "__main__":
    main()
