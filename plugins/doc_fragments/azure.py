# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The Azure connection options every Azure module of sre.rollback takes."""

    DOCUMENTATION = r"""
options:
  subscription_id:
    description:
      - The Azure subscription that holds the resources.
      - Falls back to the E(AZURE_SUBSCRIPTION_ID) environment variable.
    type: str
  tenant_id:
    description:
      - The Microsoft Entra tenant of the service principal.
      - Falls back to E(AZURE_TENANT_ID).
    type: str
  client_id:
    description:
      - The application (client) id of the service principal.
      - Falls back to E(AZURE_CLIENT_ID).
      - With O(secret) and O(tenant_id) the module signs in with that client secret;
        without them it uses C(DefaultAzureCredential) from azure-identity, which tries
        the environment, workload identity, managed identity and an C(az login) session.
    type: str
  secret:
    description:
      - The client secret of the service principal. Never logged or returned.
      - Falls back to E(AZURE_CLIENT_SECRET).
    type: str
  cloud:
    description:
      - The Azure cloud whose Resource Manager and sign-in endpoints to use.
      - O(arm_endpoint) and O(authority_host) override its endpoints.
    type: str
    default: AzurePublicCloud
    choices: [AzureChinaCloud, AzurePublicCloud, AzureUSGovernment]
  arm_endpoint:
    description:
      - The Azure Resource Manager endpoint, for a sovereign or private cloud
        (Azure Stack Hub) or the collection's local sandbox.
      - Falls back to E(AZURE_ARM_ENDPOINT). Must be https.
    type: str
  authority_host:
    description:
      - The Microsoft Entra authority host that issues tokens.
      - Falls back to E(AZURE_AUTHORITY_HOST), the variable azure-identity itself reads.
      - For a host other than the public, China and US Government ones, instance
        discovery is switched off.
    type: str
  api_retries:
    description:
      - How many times an Azure API call is retried on throttling (429, honouring
        C(Retry-After)), server errors (5xx) and connection errors, with exponential backoff.
      - A POST whose response was lost is never re-sent, so an operation is not started twice.
    type: int
    default: 5
  api_timeout:
    description:
      - Seconds to wait for one Azure API response.
    type: float
    default: 60
notes:
  - The HTTPS certificate authority bundle is taken from E(REQUESTS_CA_BUNDLE) or
    E(SSL_CERT_FILE) when set, as with every Azure SDK tool.
requirements:
  - azure-identity >= 1.15
"""

    # The App Service app a webapp_* module works on.
    WEBAPP = r"""
options:
  resource_group:
    description: The resource group of the App Service app.
    type: str
    required: true
  name:
    description: The App Service app (site) name.
    type: str
    required: true
    aliases: [app]
"""
