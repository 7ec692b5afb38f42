# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

BASE = dict(subscription_id="sub", cloud="AzurePublicCloud", api_retries=5, api_timeout=60.0)


def test_public_cloud_defaults():
    settings = AzureSettings.from_params(BASE)
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.credential_scope == "https://management.azure.com/.default"
    assert settings.is_known_authority


def test_sovereign_cloud_and_private_endpoints():
    gov = AzureSettings.from_params(dict(BASE, cloud="AzureUSGovernment"))
    assert gov.arm_endpoint == "https://management.usgovcloudapi.net"
    assert gov.authority_host == "https://login.microsoftonline.us"
    private = AzureSettings.from_params(dict(BASE, arm_endpoint="https://127.0.0.1:8443/", authority_host="https://127.0.0.1:8443"))
    assert private.credential_scope == "https://127.0.0.1:8443/.default"
    assert not private.is_known_authority


def test_client_kwargs_configure_retries_and_endpoint():
    kwargs = AzureSettings.from_params(dict(BASE, api_retries=2, api_timeout=7)).client_kwargs()
    assert kwargs["retry_total"] == 2
    assert kwargs["read_timeout"] == 7
    assert kwargs["base_url"] == "https://management.azure.com"


@pytest.mark.parametrize("params, fragment", [
    (dict(BASE, subscription_id=None), "No Azure subscription"),
    (dict(BASE, secret="s3cr3t"), "without client_id and tenant_id"),
    (dict(BASE, arm_endpoint="http://127.0.0.1:1"), "must be an https URL"),
    (dict(BASE, api_retries=-1), "api_retries"),
])
def test_bad_settings_fail_with_a_clear_message(params, fragment):
    with pytest.raises(RollbackError) as error:
        AzureSettings.from_params(params)
    assert fragment in error.value.message
    assert "s3cr3t" not in error.value.message
