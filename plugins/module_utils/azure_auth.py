# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure credentials, cloud endpoints and HTTP pipeline settings.

Every Azure module shares these options (doc fragment ``sre.rollback.azure``).
Credentials come from ``azure-identity`` so that the environment variables,
managed identity and ``az login`` work exactly as in every other Azure tool;
nothing here talks HTTP itself.  Retries are azure-core's own RetryPolicy,
configured rather than re-implemented: it backs off on 408/429/5xx, honours
``Retry-After``, and never re-sends a POST after a lost response, which is
what keeps a swap from being sent twice.
"""

from __future__ import annotations

import importlib.util
import traceback
from dataclasses import dataclass
from urllib.parse import urlparse

from ansible.module_utils.basic import env_fallback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

# azure-identity costs about 0.4 s of CPU to import. Modules that take the Azure
# options but may never sign in (rollback_trigger probing HTTP, rollback_lock on a
# file) must not pay it in every task, so only its presence is checked here and
# it is imported when a credential is made.
try:
    AZURE_IDENTITY_IMPORT_ERROR = None if importlib.util.find_spec("azure.identity") else "No module named 'azure.identity'"
except ImportError:  # not even the azure namespace package
    AZURE_IDENTITY_IMPORT_ERROR = traceback.format_exc()


# Public endpoints of the clouds users name in `cloud`.  A sovereign or private
# cloud (Azure Stack Hub) is reached with `arm_endpoint` and `authority_host`.
CLOUDS = {
    "AzurePublicCloud": ("https://management.azure.com", "login.microsoftonline.com"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "login.chinacloudapi.cn"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net", "login.microsoftonline.us"),
}

AZURE_AUTH_ARGSPEC = dict(
    subscription_id=dict(type="str", fallback=(env_fallback, ["AZURE_SUBSCRIPTION_ID"])),
    tenant_id=dict(type="str", fallback=(env_fallback, ["AZURE_TENANT_ID"])),
    client_id=dict(type="str", fallback=(env_fallback, ["AZURE_CLIENT_ID"])),
    secret=dict(type="str", no_log=True, fallback=(env_fallback, ["AZURE_CLIENT_SECRET"])),
    cloud=dict(type="str", default="AzurePublicCloud", choices=sorted(CLOUDS)),
    arm_endpoint=dict(type="str", fallback=(env_fallback, ["AZURE_ARM_ENDPOINT"])),
    authority_host=dict(type="str", fallback=(env_fallback, ["AZURE_AUTHORITY_HOST"])),
    api_retries=dict(type="int", default=5),
    api_timeout=dict(type="float", default=60),
)


@dataclass(frozen=True)
class AzureSettings:
    """The resolved connection settings of one module run."""

    subscription_id: str | None  # None only for data-plane clients (require_subscription=False)
    arm_endpoint: str
    authority_host: str
    tenant_id: str | None = None
    client_id: str | None = None
    secret: str | None = None
    api_retries: int = 5
    api_timeout: float = 60.0

    @classmethod
    def from_params(cls, params, require_subscription=True):
        """Validate the shared options and fill in the cloud's endpoints.

        Data-plane clients (Key Vault, Blob storage) sign in with the same
        credential but have no subscription: they pass require_subscription=False.
        """
        if require_subscription and not params.get("subscription_id"):
            raise RollbackError(
                "No Azure subscription given: set the subscription_id option or the "
                "AZURE_SUBSCRIPTION_ID environment variable."
            )
        default_arm, default_authority = CLOUDS[params.get("cloud") or "AzurePublicCloud"]
        arm_endpoint = (params.get("arm_endpoint") or default_arm).rstrip("/")
        authority_host = params.get("authority_host") or default_authority
        if "://" not in authority_host:
            authority_host = "https://" + authority_host
        for option, url in (("arm_endpoint", arm_endpoint), ("authority_host", authority_host)):
            if urlparse(url).scheme != "https":
                raise RollbackError(
                    "%s must be an https URL (Azure SDKs refuse to send a token over plain http): %s" % (option, url)
                )
        has_secret = bool(params.get("secret"))
        if has_secret and not (params.get("client_id") and params.get("tenant_id")):
            raise RollbackError(
                "A client secret was given without client_id and tenant_id: set all three "
                "(or AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET)."
            )
        if params.get("api_retries", 0) < 0 or params.get("api_timeout", 1) <= 0:
            raise RollbackError("api_retries must be 0 or more and api_timeout more than 0.")
        return cls(
            subscription_id=params.get("subscription_id"),
            arm_endpoint=arm_endpoint,
            authority_host=authority_host.rstrip("/"),
            tenant_id=params.get("tenant_id"),
            client_id=params.get("client_id"),
            secret=params.get("secret"),
            api_retries=params.get("api_retries", 5),
            api_timeout=params.get("api_timeout", 60.0),
        )

    @property
    def credential_scope(self):
        return self.arm_endpoint + "/.default"

    @property
    def is_known_authority(self):
        # The authority hosts of the public clouds (azure.identity.AzureAuthorityHosts).
        known = {authority for _arm, authority in CLOUDS.values()}
        return urlparse(self.authority_host).hostname in known

    def credential(self):
        """The credential azure-identity would pick for these settings.

        A client secret, when given, is used directly; otherwise
        DefaultAzureCredential walks environment, workload identity, managed
        identity and the Azure CLI login.  Instance discovery asks
        login.microsoftonline.com about the authority, which a sovereign or
        private authority host does not need and cannot answer.
        """
        try:
            from azure.identity import ClientSecretCredential, DefaultAzureCredential
        except ImportError as err:  # present (find_spec) but broken, e.g. msal missing
            raise RollbackError("azure-identity is installed but cannot be imported (%s): "
                                "pip install --force-reinstall azure-identity." % err,
                                exception=traceback.format_exc()) from err

        discovery_off = not self.is_known_authority
        if self.secret:
            return ClientSecretCredential(
                self.tenant_id,
                self.client_id,
                self.secret,
                authority=self.authority_host,
                disable_instance_discovery=discovery_off,
            )
        return DefaultAzureCredential(
            authority=self.authority_host,
            disable_instance_discovery=discovery_off,
            exclude_interactive_browser_credential=True,
        )

    def client_kwargs(self):
        """Keyword arguments for any azure-mgmt-* client: endpoint, scope, retries, timeouts."""
        return dict(
            base_url=self.arm_endpoint,
            credential_scopes=[self.credential_scope],
            retry_total=self.api_retries,
            retry_backoff_factor=0.5,
            retry_backoff_max=30,
            connection_timeout=min(self.api_timeout, 30),
            read_timeout=self.api_timeout,
        )


def authentication_failure(error):
    """Turn azure-identity's long chained message into one a person can act on."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RollbackError(
        "Azure authentication failed: %s. Give client_id, secret and tenant_id (or the AZURE_CLIENT_ID, "
        "AZURE_CLIENT_SECRET and AZURE_TENANT_ID variables), a managed identity, or an `az login` session; "
        "for a sovereign or private cloud also set cloud or arm_endpoint and authority_host." % first_line.rstrip(".")
    )
