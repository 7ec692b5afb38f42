#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: staticwebapp_info
short_description: Show the environments of an Azure Static Web App and what each one serves
version_added: 0.1.0
description:
  - Lists the environments (ARM builds) of a Static Web App, production (C(default)) first, with each one's
    host name, status, source branch, pull request title and creation and last update times.
  - With O(probe_version=true) it also asks every environment's host which version it really serves
    (C(GET https://{hostname}/version.json) by default) and reports the version and commit found there.
  - Static Web Apps have no deployment slots, so a frontend rollback redeploys the previous version
    through the deploy workflow. This module is the evidence before that step and the verification after it
    ("does production now serve 1.2.2?"), and the C(az staticwebapp environment list) of the mystira runbook.
  - Read-only; check mode gives the same answer.
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
  environments:
    description:
      - Only these environments. C(default) (or C(production)) names production; a pull request environment
        is named by its number. All environments when omitted.
      - An environment that does not exist fails the task, naming those that do.
    type: list
    elements: str
  probe_version:
    description:
      - Ask each environment's host for its version document and report what it serves.
      - A host that does not answer, or answers without a version, is reported in that environment's
        C(probe.error); it does not fail the task.
    type: bool
    default: false
  probe_path:
    description: The path of the version document on each environment's host.
    type: str
    default: /version.json
  version_field:
    description: The key of the version in the version document; dots reach into nested objects (C(build.version)).
    type: str
    default: version
  probe_timeout:
    description: Seconds to wait for each host's answer.
    type: float
    default: 10
  validate_certs:
    description: Verify the TLS certificates of the hosts probed.
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle (file or directory) to verify the hosts probed with.
      - Defaults to E(SSL_CERT_FILE), E(REQUESTS_CA_BUNDLE) or E(SSL_CERT_DIR), then the system's.
    type: path
notes:
  - Needs C(Microsoft.Web/staticSites/read) and C(Microsoft.Web/staticSites/builds/read) (the C(Reader) role has both).
  - Version probes need the C(httpx) Python library.
seealso:
  - module: sre.rollback.staticwebapp_environment
  - module: sre.rollback.health_check
requirements:
  - azure-mgmt-web >= 7.2
  - httpx (with O(probe_version=true))
"""

EXAMPLES = r"""
- name: List the environments of the admin UI (mystira runbook, SWA Rollback)
  sre.rollback.staticwebapp_info:
    resource_group: rg-mystira-prod
    name: mystira-admin-ui
  register: swa

- name: What does production serve before the frontend rollback? (fundrbolt runbook)
  sre.rollback.staticwebapp_info:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-web
    environments: [default]
    probe_version: true
  register: before

- name: After redeploying v1.2.2, production must serve it
  sre.rollback.staticwebapp_info:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-web
    environments: [production]
    probe_version: true
  register: after
  until: after.environments.default.served_version == '1.2.2'
  retries: 20
  delay: 15

- name: The app writes its version under build.version in /meta.json
  sre.rollback.staticwebapp_info:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-web
    probe_version: true
    probe_path: /meta.json
    version_field: build.version
"""

RETURN = r"""
site:
  description: The Static Web App.
  returned: always
  type: dict
  contains:
    name:
      description: The Static Web App name.
      type: str
    id:
      description: Its ARM resource id.
      type: str
    resource_group:
      description: Its resource group.
      type: str
    location:
      description: Its Azure region.
      type: str
    default_hostname:
      description: The host name of production.
      type: str
    repository_url:
      description: The repository it deploys from.
      type: str
    branch:
      description: The branch production deploys from.
      type: str
    provider:
      description: The deployment source (C(GitHub), C(DevOps), C(SwaCli)...).
      type: str
    sku:
      description: C(Free) or C(Standard).
      type: str
  sample:
    name: fundrbolt-production-web
    default_hostname: gentle-sea-0a1b2c3d4.azurestaticapps.net
    repository_url: https://github.com/fundrbolt/fundrbolt-platform
    branch: main
    provider: GitHub
    sku: Standard
environments:
  description: Every environment asked for, keyed by name (C(default) is production).
  returned: always
  type: dict
  contains:
    name:
      description: The environment (build) name; a pull request number for pull request environments.
      type: str
    is_production:
      description: Whether this is the production (C(default)) environment.
      type: bool
    hostname:
      description: The environment's host name.
      type: str
    url:
      description: C(https://) and the host name.
      type: str
    status:
      description: C(Ready), C(Uploading), C(Deploying), C(WaitingForDeployment), C(Failed), C(Deleting) or C(Detached).
      type: str
    source_branch:
      description: The branch the environment was built from.
      type: str
    pull_request_title:
      description: The title of the pull request the environment belongs to, if any.
      type: str
    created:
      description: When the environment was created (ISO 8601).
      type: str
    last_updated:
      description: When the environment was last deployed to (ISO 8601).
      type: str
    served_version:
      description: The version the host reported (with O(probe_version=true) and a successful probe).
      type: str
    served_commit:
      description: The commit the host reported, if its version document names one.
      type: str
    probe:
      description:
        - The probe of the host (with O(probe_version=true)), namely C(url), C(status_code), C(version), C(commit),
          C(elapsed_ms) and C(error) (null when the probe succeeded).
      type: dict
  sample:
    default:
      name: default
      is_production: true
      hostname: gentle-sea-0a1b2c3d4.azurestaticapps.net
      status: Ready
      source_branch: main
      last_updated: "2025-02-17T14:30:00+00:00"
      served_version: 1.2.3
      served_commit: bad0c0de1234567890abcdef1234567890abcdef
    "42":
      name: "42"
      is_production: false
      hostname: gentle-sea-0a1b2c3d4-42.westeurope.azurestaticapps.net
      status: Ready
      source_branch: feature/donor-export
      pull_request_title: Add donor CSV export
environment_names:
  description: The environment names, production first.
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

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import (
    AZURE_AUTH_ARGSPEC,
    AZURE_IDENTITY_IMPORT_ERROR,
    AzureSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_staticsites import (
    AZURE_WEB_IMPORT_ERROR,
    HTTPX_IMPORT_ERROR,
    StaticWebApp,
    VersionProbe,
    environment_name,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.trust import tls_verify


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            name=dict(type="str", required=True, aliases=["app"]),
            environments=dict(type="list", elements="str"),
            probe_version=dict(type="bool", default=False),
            probe_path=dict(type="str", default="/version.json"),
            version_field=dict(type="str", default="version"),
            probe_timeout=dict(type="float", default=10),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    libraries = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-web", AZURE_WEB_IMPORT_ERROR)]
    if module.params["probe_version"]:
        libraries.append(("httpx", HTTPX_IMPORT_ERROR))
    module.require_libraries(libraries)
    params = module.params

    def describe():
        probe = None
        if params["probe_version"]:
            # Bad probe options fail before any call.
            probe = VersionProbe(params["probe_path"], params["version_field"], params["probe_timeout"],
                                 tls_verify(params["validate_certs"], params["ca_path"]))
        app = StaticWebApp.connect(AzureSettings.from_params(params), params["resource_group"], params["name"])
        site = app.site()
        states = app.environments()
        if params["environments"]:
            by_name = {state.name.lower(): state for state in states}
            wanted = [environment_name(name) for name in params["environments"]]
            missing = [name for name in wanted if name.lower() not in by_name]
            if missing:
                raise RollbackError(
                    "Environment %s does not exist on Static Web App '%s'. Its environments are: %s."
                    % (", ".join("'%s'" % name for name in missing), params["name"],
                       ", ".join(state.name for state in states)),
                    environment_names=[state.name for state in states],
                )
            states = [by_name[name.lower()] for name in dict.fromkeys(wanted)]
        if probe:
            probe.probe_all(states)
        return False, dict(
            site=site,
            environments={state.name: state.to_dict() for state in states},
            environment_names=[state.name for state in states],
        )

    module.run(describe)


if __name__ == "__main__":
    main()
