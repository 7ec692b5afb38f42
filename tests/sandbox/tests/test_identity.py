"""Identity and the ARM front door, driven by azure-identity and raw HTTP."""

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from sandbox_session import RG, SITE


def test_client_secret_credential_gets_token(sbx):
    token = sbx.credential().get_token(f"{sbx.arm}/.default")
    assert token.token
    assert token.expires_on > 0


def test_wrong_secret_raises_client_authentication_error(sbx):
    with pytest.raises(ClientAuthenticationError) as err:
        sbx.credential(secret="not-the-secret").get_token(f"{sbx.arm}/.default")
    assert "AADSTS7000215" in str(err.value)


def test_wrong_secret_fails_sdk_call(sbx):
    client = sbx.web_client(credential=sbx.credential(secret="nope"))
    with pytest.raises(ClientAuthenticationError):
        client.web_apps.get(RG, SITE)


def test_token_endpoint_error_body_is_aad_shaped(sbx):
    resp = requests.post(
        f"{sbx.env['AZURE_AUTHORITY_HOST']}/{sbx.env['AZURE_TENANT_ID']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sbx.env["AZURE_CLIENT_ID"],
              "client_secret": "wrong", "scope": f"{sbx.arm}/.default"},
        timeout=10,
    )
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert resp.json()["error_description"].startswith("AADSTS7000215: Invalid client secret provided")


def test_arm_without_token_is_401_with_bearer_challenge(sbx):
    url = f"{sbx.arm}/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{RG}" \
          f"/providers/Microsoft.Web/sites/{SITE}?api-version=2025-05-01"
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    assert resp.headers["x-ms-request-id"]


def test_arm_without_api_version_is_400(sbx):
    token = sbx.credential().get_token(f"{sbx.arm}/.default").token
    url = f"{sbx.arm}/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{RG}" \
          f"/providers/Microsoft.Web/sites/{SITE}"
    resp = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "MissingApiVersionParameter"
