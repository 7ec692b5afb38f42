"""Key Vault secrets data plane, driven by the unchanged azure-keyvault-secrets SecretClient."""

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache

VAULT = "kv-fundrbolt-sandbox"
PROTECTED_VAULT = "kv-sf-ai-sandbox"


@pytest.fixture
def kv(sbx):
    sbx.admin("PUT", "keyvault/settings", {"transition_s": 0.2})
    sbx.admin("DELETE", "keyvault/calls")
    return sbx


def vault_url(sandbox, vault=VAULT):
    return sandbox.env["SRE_SANDBOX_KEYVAULT_%s_URL" % vault.upper().replace("-", "_")]


def client(sandbox, vault=VAULT, **kwargs):
    # Only the vault URL and the CA bundle (exported by conftest) point it at the sandbox.
    return SecretClient(vault_url(sandbox, vault), sandbox.credential(), **kwargs)


def seeded(sandbox, name, vault=VAULT):
    state = sandbox.admin("GET", "keyvault")
    return next(v for v in state["vaults"] if v["name"] == vault)["secrets"][name]


def kv_calls(sandbox):
    return sandbox.admin("GET", "keyvault/calls")["calls"]


def test_challenge_then_bearer_token(kv):
    url = vault_url(kv)
    unauthenticated = requests.get(f"{url}secrets/database-url?api-version=7.6", timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "Unauthorized"
    challenge = unauthenticated.headers["WWW-Authenticate"]
    port = url.rstrip("/").rsplit(":", 1)[1]
    assert challenge.startswith(f'Bearer authorization="{kv.env["AZURE_AUTHORITY_HOST"]}/{kv.env["AZURE_TENANT_ID"]}"')
    assert f'resource="https://0.0.1:{port}"' in challenge

    # The SDK caches challenges per host for the process; start cold so its own challenge round shows.
    http_challenge_cache.clear()
    kv.admin("DELETE", "keyvault/calls")
    # verify_challenge_resource stays on: the resource is a parent domain of 127.0.0.1:PORT.
    secret = client(kv).get_secret("database-url")
    current = seeded(kv, "database-url")["versions"][-1]
    assert (secret.properties.version, secret.value) == (current["version"], current["value"])
    assert secret.properties.content_type == "application/x-postgresql-url"
    assert secret.properties.tags["change"] == "CHG-1077"
    assert secret.id == f"{url}secrets/database-url/{current['version']}"
    statuses = [(c["status"], c["path"]) for c in kv_calls(kv)]
    assert statuses == [(401, "/secrets/database-url/"), (200, "/secrets/database-url/")]


def test_arm_token_and_unknown_token_are_refused(kv):
    arm = kv.env["AZURE_ARM_ENDPOINT"]
    arm_token = kv.credential().get_token(f"{arm}/.default").token
    for token in (arm_token, "not-a-token"):
        resp = requests.get(f"{vault_url(kv)}secrets/database-url?api-version=7.6",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
        assert resp.json()["error"]["message"].startswith("AKV100")


def test_versions_are_paged_and_carry_no_values(kv):
    versions = list(client(kv).list_properties_of_secret_versions("database-url", max_page_size=2))
    assert [v.version for v in versions] == [v["version"] for v in seeded(kv, "database-url")["versions"]]
    assert [v.enabled for v in versions] == [False, True, True, True]
    assert all(not hasattr(v, "value") for v in versions)
    pages = [c["query"] for c in kv_calls(kv) if c["path"] == "/secrets/database-url/versions" and c["status"] == 200]
    assert len(pages) == 2 and "$skiptoken=2" in pages[1]
    assert sorted(s.name for s in client(kv).list_properties_of_secrets()) == ["database-url", "openai-api-key"]


def test_set_adds_a_version_and_reenabling_an_old_one_does_not_make_it_current(kv):
    kvc = client(kv)
    first = seeded(kv, "database-url")["versions"][0]
    written = kvc.set_secret("database-url", "postgresql://new", content_type="text/plain", tags={"a": "b"})
    assert kvc.get_secret("database-url").properties.version == written.properties.version
    with pytest.raises(HttpResponseError) as disabled:
        kvc.get_secret("database-url", first["version"])
    assert disabled.value.status_code == 403 and disabled.value.error.code == "Forbidden"
    assert "disabled" in disabled.value.error.message

    updated = kvc.update_secret_properties("database-url", first["version"], enabled=True)
    assert updated.enabled is True
    assert kvc.get_secret("database-url", first["version"]).value == first["value"]
    current = kvc.get_secret("database-url")
    assert (current.value, current.properties.content_type, current.properties.tags) == (
        "postgresql://new", "text/plain", {"a": "b"})


def test_missing_secret_and_version(kv):
    kvc = client(kv)
    with pytest.raises(ResourceNotFoundError) as missing:
        kvc.get_secret("no-such-secret")
    assert missing.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        kvc.get_secret("database-url", "0" * 32)
    with pytest.raises(ResourceNotFoundError):
        list(kvc.list_properties_of_secret_versions("no-such-secret"))


def test_soft_delete_recover_and_purge(kv):
    kvc = client(kv)
    kvc.begin_delete_secret("openai-api-key", _polling_interval=0.1).wait()
    deleted = kvc.get_deleted_secret("openai-api-key")
    assert deleted.recovery_id == f"{vault_url(kv)}deletedsecrets/openai-api-key"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date > deleted.deleted_date
    with pytest.raises(ResourceNotFoundError):
        kvc.get_secret("openai-api-key")
    with pytest.raises(ResourceExistsError) as conflict:
        kvc.set_secret("openai-api-key", "x")
    assert "deleted but recoverable" in conflict.value.error.message

    poller = kvc.begin_recover_deleted_secret("openai-api-key", _polling_interval=0.1)
    poller.wait()
    assert kvc.get_secret("openai-api-key").value == "sk-sandbox-openai-key-2"
    gets = [c["status"] for c in kv_calls(kv) if c["path"] == "/secrets/openai-api-key/"]
    assert 404 in gets and gets[-1] == 200  # the poller waited until the recovery finished

    assert [d.name for d in kvc.list_deleted_secrets()] == ["stripe-webhook-secret"]
    kvc.purge_deleted_secret("stripe-webhook-secret")
    assert list(kvc.list_deleted_secrets()) == []


def test_purge_protection_and_missing_permission(kv):
    protected = client(kv, PROTECTED_VAULT)
    protected.begin_delete_secret("sf-client-secret", _polling_interval=0.1).wait()
    with pytest.raises(HttpResponseError) as refused:
        protected.purge_deleted_secret("sf-client-secret")
    assert refused.value.status_code == 403 and "purge protection" in refused.value.error.message

    kv.admin("PUT", f"keyvault/vaults/{VAULT}/permissions", {"secrets": ["get", "list"]})
    kvc = client(kv)
    assert kvc.get_secret("database-url").value
    with pytest.raises(HttpResponseError) as forbidden:
        kvc.set_secret("database-url", "x")
    assert forbidden.value.status_code == 403 and "does not have secrets set permission" in forbidden.value.message
    assert len(seeded(kv, "database-url")["versions"]) == 4


def test_throttling_and_server_errors_are_retried_by_the_sdk(kv):
    kv.fault(kind="throttle", method="PUT", path="^/secrets/openai-api-key$", retry_after=1)
    kv.fault(kind="error", method="GET", path="^/secrets/openai-api-key/$", status=500)
    kvc = client(kv, retry_backoff_factor=0.1)
    kvc.set_secret("openai-api-key", "sk-3")
    assert kvc.get_secret("openai-api-key").value == "sk-3"
    faulted = [(c["method"], c["status"], c["fault"]) for c in kv_calls(kv) if c["fault"]]
    assert faulted == [("PUT", 429, "throttle"), ("GET", 500, "error")]
    assert len(seeded(kv, "openai-api-key")["versions"]) == 3


def test_api_version_is_required(kv):
    token = kv.credential().get_token(vault_url(kv).replace("127.0.0.1", "0.0.1").rstrip("/") + "/.default").token
    resp = requests.get(f"{vault_url(kv)}secrets/database-url", headers={"Authorization": f"Bearer {token}"},
                        timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadParameter"
