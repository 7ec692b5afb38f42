#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: arm_deployment_info
short_description: Read the ARM deployment history of a resource group or a subscription
version_added: 0.1.0
description:
  - Lists the Azure Resource Manager template deployments of a resource group (or, without
    O(resource_group), of the subscription) newest first, as C(az deployment group list) and
    C(az deployment sub list) do in the runbooks' "Infrastructure Rollback" step "List recent deployments".
  - Each entry has the name, timestamp, state, template hash, parameters, outputs, duration and error.
    ARM never returns the values of C(secureString) and C(secureObject) parameters; they show as
    C(VALUE_NOT_RETURNED_BY_ARM) and are named in RV(deployments[].secure_parameters).
  - O(last_successful=true) picks the newest deployment that Succeeded, optionally skipping the one being
    rolled back (O(exclude)), which is what M(sre.rollback.arm_deployment_redeploy) would redeploy.
  - Uses the C(azure-mgmt-resource-deployments) SDK, where C(azure-mgmt-resource) 26 moved deployments.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  resource_group:
    description:
      - The resource group whose deployments to read.
      - Without it, the subscription-scope deployments (C(az deployment sub)) are read.
    type: str
  name:
    description: Only the deployment with this name (case-insensitive). An unknown name gives an empty list.
    type: str
  state:
    description: Only deployments in this provisioning state, for example C(Succeeded) or C(Failed).
    type: str
  last_successful:
    description: Return only the newest deployment whose state is C(Succeeded) (after O(exclude)).
    type: bool
    default: false
  exclude:
    description: Deployment names to leave out, for example the deployment being rolled back.
    type: list
    elements: str
    default: []
  include_template:
    description: Add each returned deployment's template (the ARM export template operation; one call per deployment).
    type: bool
    default: false
notes:
  - Needs C(Microsoft.Resources/deployments/read) (and C(exportTemplate/action) for O(include_template)).
  - ARM keeps the last 800 deployments per scope and deletes older ones automatically.
  - Supports check mode; it only reads.
seealso:
  - module: sre.rollback.arm_deployment_redeploy
requirements:
  - azure-mgmt-resource-deployments >= 2.0
"""

EXAMPLES = r"""
- name: List recent deployments (runbook "List recent deployments")
  sre.rollback.arm_deployment_info:
    resource_group: fundrbolt-production-rg
  register: history

- name: Show the outputs of the last good deployment before the one being rolled back
  sre.rollback.arm_deployment_info:
    resource_group: fundrbolt-production-rg
    last_successful: true
    exclude: [infra-2026-11-23]
  register: good

- name: Subscription-scope history (az deployment sub list), failures only
  sre.rollback.arm_deployment_info:
    state: Failed
"""

RETURN = r"""
scope:
  description: C(resourceGroup) or C(subscription).
  returned: always
  type: str
deployments:
  description: The deployments, newest first, after the filters.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Deployment name.
      type: str
    id:
      description: ARM id of the deployment.
      type: str
    timestamp:
      description: When the deployment ended (or its last state change), ISO 8601 UTC.
      type: str
    state:
      description: Provisioning state (C(Succeeded), C(Failed), C(Running), C(Canceled)...).
      type: str
    mode:
      description: C(Incremental) or C(Complete).
      type: str
    template_hash:
      description: ARM's hash of the template; equal hashes mean the same template.
      type: str
    duration:
      description: ISO 8601 duration as ARM reports it.
      type: str
    duration_s:
      description: The duration in seconds.
      type: float
    parameters:
      description: Parameter values; secure ones are C(VALUE_NOT_RETURNED_BY_ARM).
      type: dict
    secure_parameters:
      description: Names of the secure parameters (their values must be given again to redeploy).
      type: list
      elements: str
    outputs:
      description: Output values.
      type: dict
    output_resources:
      description: Ids of the resources the deployment wrote.
      type: list
      elements: str
    error:
      description: ARM's error (code, message, details) when the deployment failed, else null.
      type: dict
    template:
      description: The deployment's template, with O(include_template=true).
      type: dict
deployment:
  description: The first entry of RV(deployments) (the last successful one with O(last_successful)), or null.
  returned: always
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.arm_deployments import (
    REQUIRED_LIBRARIES,
    ArmDeployments,
    filter_history,
    last_successful,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str"),
            name=dict(type="str"),
            state=dict(type="str"),
            last_successful=dict(type="bool", default=False),
            exclude=dict(type="list", elements="str", default=[]),
            include_template=dict(type="bool", default=False),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(REQUIRED_LIBRARIES)
    params = module.params

    def read():
        deployments = ArmDeployments.from_params(params)
        history = deployments.history()
        selected = filter_history(history, name=params["name"], state=params["state"])
        excluded = {n.lower() for n in params["exclude"]}
        selected = [d for d in selected if d["name"].lower() not in excluded]
        if params["last_successful"]:
            best = last_successful(selected)
            selected = [best] if best else []
        if params["include_template"]:
            for entry in selected:
                entry["template"] = deployments.export_template(entry["name"])
        return False, dict(
            scope="resourceGroup" if params["resource_group"] else "subscription",
            deployments=selected,
            deployment=selected[0] if selected else None,
        )

    module.run(read)


if __name__ == "__main__":
    main()
