"""Azure Container Registry through the unchanged azure-containerregistry client, and App Service pulling from it."""

import base64
import hashlib
import json
import time

import pytest
import requests
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.core.rest import HttpRequest

RG = "rg-mystira-sandbox"
REGISTRY = "mystirasandboxacr"
REPO = "mystira/api"
APP = "mystira-sandbox-app"


@pytest.fixture
def acr(sbx):
    """A registry client configured only with endpoint, credential and (via the environment) the CA."""
    sbx.admin("DELETE", "acr/calls")
    with ContainerRegistryClient(sbx.env["SRE_SANDBOX_ACR_URL"], sbx.credential()) as client:
        yield client


def registry_calls(sbx):
    return sbx.admin("GET", "acr/calls")["calls"]


def test_arm_reports_the_login_server(sbx, client):
    sub = sbx.env["AZURE_SUBSCRIPTION_ID"]
    path = f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{REGISTRY}"
    one = client.send_request(HttpRequest("GET", path, params={"api-version": "2023-07-01"}))
    assert one.status_code == 200
    body = one.json()
    assert body["properties"]["loginServer"] == sbx.env["SRE_SANDBOX_ACR_LOGIN_SERVER"]
    assert (body["type"], body["sku"]["name"], body["properties"]["adminUserEnabled"]) == (
        "Microsoft.ContainerRegistry/registries", "Standard", False)
    listed = client.send_request(HttpRequest(
        "GET", f"/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries", params={"api-version": "2023-07-01"}))
    assert [r["name"] for r in listed.json()["value"]] == [REGISTRY]
    missing = client.send_request(HttpRequest("GET", path + "x", params={"api-version": "2023-07-01"}))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_unauthenticated_request_gets_the_acr_challenge(sbx):
    url = sbx.env["SRE_SANDBOX_ACR_URL"]
    resp = requests.get(f"{url}/acr/v1/mystira%2Fapi/_tags", timeout=10)
    assert resp.status_code == 401
    login_server = sbx.env["SRE_SANDBOX_ACR_LOGIN_SERVER"]
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{login_server}/oauth2/token",service="{login_server}",'
        f'scope="repository:mystira/api:metadata_read"')
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"
    ping = requests.get(f"{url}/v2/", timeout=10)
    assert ping.status_code == 401 and "scope=" not in ping.headers["WWW-Authenticate"]


def test_token_exchange_and_catalog(sbx, acr):
    assert list(acr.list_repository_names()) == ["mystira/api", "mystira/worker"]
    calls = [(c["method"], c["path"], c["status"]) for c in registry_calls(sbx)]
    # The SDK's flow: challenge, AAD token -> refresh token, refresh token -> access token, retry.
    assert calls[:4] == [("GET", "/acr/v1/_catalog", 401), ("POST", "/oauth2/exchange", 200),
                         ("POST", "/oauth2/token", 200), ("GET", "/acr/v1/_catalog", 200)]


def test_refresh_token_is_a_jwt_the_sdk_can_read(sbx):
    """azure-containerregistry reads `exp` from the refresh token with plain base64."""
    token = sbx.credential().get_token("https://containerregistry.azure.net/.default").token
    url = sbx.env["SRE_SANDBOX_ACR_URL"]
    login_server = sbx.env["SRE_SANDBOX_ACR_LOGIN_SERVER"]
    resp = requests.post(f"{url}/oauth2/exchange", data={
        "grant_type": "access_token", "service": login_server, "access_token": token}, timeout=10)
    refresh = resp.json()["refresh_token"]
    payload = refresh.split(".")[1]
    claims = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == login_server and claims["exp"] > claims["iat"]
    wrong = requests.post(f"{url}/oauth2/exchange", data={
        "grant_type": "access_token", "service": "other.azurecr.io", "access_token": token}, timeout=10)
    assert wrong.status_code == 400


def test_tags_newest_first_across_pages(sbx, acr):
    tags = list(acr.list_tag_properties(REPO, order_by="timedesc", results_per_page=2))
    assert [t.name for t in tags] == ["latest", "1.4.0", "1.3.0", "1.3.0-rc1", "1.2.1", "1.2.0", "1.1.0"]
    assert tags[0].digest == tags[1].digest  # latest is 1.4.0
    assert tags[2].created_on.isoformat() == "2025-02-17T14:20:00+00:00"
    pages = [c for c in registry_calls(sbx) if c["path"].endswith("/_tags") and c["status"] == 200]
    assert len(pages) == 4 and "last=1.4.0" in pages[1]["query"] and "orderby=timedesc" in pages[1]["query"]
    lexical = [t.name for t in acr.list_tag_properties(REPO)]
    assert lexical == sorted(lexical)


def test_tag_manifest_and_digest(sbx, acr):
    tag = acr.get_tag_properties(REPO, "1.4.0")
    manifest = acr.get_manifest_properties(REPO, "latest")
    assert manifest.digest == tag.digest and sorted(manifest.tags) == ["1.4.0", "latest"]
    pulled = acr.get_manifest(REPO, "1.3.0")  # the SDK checks the body against the digest
    assert pulled.digest == "sha256:" + hashlib.sha256(json.dumps(pulled.manifest, separators=(",", ":")).encode()).hexdigest()
    with pytest.raises(ResourceNotFoundError, match="TAG_UNKNOWN"):
        acr.get_tag_properties(REPO, "9.9.9")
    with pytest.raises(ResourceNotFoundError, match="NAME_UNKNOWN"):
        acr.get_repository_properties("mystira/nope")


def test_identity_without_pull_role_is_refused(sbx, acr):
    sbx.admin("PUT", f"acr/registries/{REGISTRY}/access", {"identity_can_pull": False})
    with pytest.raises(ClientAuthenticationError):
        acr.get_tag_properties(REPO, "1.3.0")
    sbx.admin("POST", "reset")
    assert acr.get_tag_properties(REPO, "1.3.0").name == "1.3.0"


def test_token_for_another_audience_is_refused(sbx):
    with ContainerRegistryClient(sbx.env["SRE_SANDBOX_ACR_URL"], sbx.credential(),
                                 audience="https://vault.azure.net") as client:
        with pytest.raises(ClientAuthenticationError, match="wrong audience"):
            client.get_tag_properties(REPO, "1.3.0")


def test_throttle_and_error_are_retried(sbx, acr):
    sbx.fault(kind="throttle", method="GET", path=r"_tags/1\.2\.0$", retry_after=0, count=1)
    sbx.fault(kind="error", status=500, method="GET", path=r"_tags/1\.2\.0$", count=1)
    assert acr.get_tag_properties(REPO, "1.2.0").name == "1.2.0"
    statuses = [c["status"] for c in registry_calls(sbx) if c["path"].endswith("_tags/1.2.0")]
    assert statuses[:2] == [429, 500] and statuses[-1] == 200


def test_app_service_pulls_from_the_registry(sbx, client):
    login_server = sbx.env["SRE_SANDBOX_ACR_LOGIN_SERVER"]
    host = client.web_apps.get_slot(RG, APP, "staging").default_host_name

    def run(tag):
        client.web_apps.update_configuration_slot(
            RG, APP, "staging", {"properties": {"linuxFxVersion": f"DOCKER|{login_server}/{REPO}:{tag}"}})
        return requests.get(f"https://{host}/health", timeout=10)

    good = run("1.3.0")
    assert good.status_code == 200 and good.json()["version"] == "1.3.0"
    bad = run("1.4.0")  # pulls, but the registry marks it bad: the app answers unhealthy
    assert bad.status_code == 503 and bad.json()["status"] == "unhealthy"
    missing = run("9.9.9")  # no such tag: no container at all
    assert missing.status_code == 503 and "Application Error" in missing.text and "manifest unknown" in missing.text
    slot = next(s for s in sbx.state()["sites"] if s["name"] == APP)["slots"]["staging"]
    assert slot["build"]["pull_error"] and not slot["build"]["healthy"]


def test_old_container_serves_while_the_new_image_starts(sbx, client):
    login_server = sbx.env["SRE_SANDBOX_ACR_LOGIN_SERVER"]
    host = client.web_apps.get_slot(RG, APP, "staging").default_host_name
    requests.put(f"{sbx.admin_url}/appservice/settings", json={"container_start_s": 1.0}, timeout=10).raise_for_status()
    client.web_apps.update_configuration_slot(
        RG, APP, "staging", {"properties": {"linuxFxVersion": f"DOCKER|{login_server}/{REPO}:1.3.0"}})
    assert requests.get(f"https://{host}/health", timeout=10).json()["version"] == "2.2.9"  # the seed's image
    # ARM already reports the new image: only the app itself tells when it runs.
    assert client.web_apps.get_configuration_slot(RG, APP, "staging").linux_fx_version.endswith(":1.3.0")
    time.sleep(1.1)
    assert requests.get(f"https://{host}/health", timeout=10).json()["version"] == "1.3.0"
    sbx.admin("POST", "reset")
    assert sbx.admin("GET", "appservice/settings") == {"container_start_s": 0.0}
