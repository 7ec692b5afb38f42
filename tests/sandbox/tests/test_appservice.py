"""App Service reads and writes through azure-mgmt-web's WebAppsOperations."""

import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.web.models import (
    ConnectionStringDictionary,
    ConnStringValueTypePair,
    Deployment,
    SiteConfigResource,
    SlotConfigNamesResource,
    StringDictionary,
)
from sandbox_session import RG, SITE


def test_get_site_and_slot(sbx, client):
    site = client.web_apps.get(RG, SITE)
    assert site.name == SITE
    assert site.site_config.linux_fx_version == "DOCKER|registry.sandbox.local/fundrbolt-api:1.4.2"
    assert site.default_host_name in site.host_names and site.default_host_name in site.enabled_host_names
    slot = client.web_apps.get_slot(RG, SITE, "staging")
    assert slot.name == f"{SITE}/staging"
    assert slot.default_host_name != site.default_host_name
    assert [s.name for s in client.web_apps.list_slots(RG, SITE)] == [f"{SITE}/staging"]
    assert [s.name for s in client.web_apps.list_by_resource_group(RG)] == [SITE]


def test_names_are_case_insensitive(sbx, client):
    assert client.web_apps.get(RG.upper(), SITE.upper()).name == SITE
    assert client.web_apps.get_slot(RG, SITE, "STAGING").name == f"{SITE}/staging"


def test_not_found_raises_resource_not_found(sbx, client):
    with pytest.raises(ResourceNotFoundError) as err:
        client.web_apps.get(RG, "no-such-site")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.web_apps.get_slot(RG, SITE, "no-such-slot")
    with pytest.raises(ResourceNotFoundError) as err:
        client.web_apps.get("rg-nope", SITE)
    assert err.value.error.code == "ResourceGroupNotFound"


def test_config_settings_and_sticky_names(sbx, client):
    assert client.web_apps.get_configuration_slot(RG, SITE, "staging").linux_fx_version.endswith(":1.4.1")
    settings = client.web_apps.list_application_settings(RG, SITE).properties
    assert settings["APP_VERSION"] == "1.4.2"
    conns = client.web_apps.list_connection_strings_slot(RG, SITE, "staging").properties
    assert conns["Database"].type == "PostgreSQL"
    names = client.web_apps.list_slot_configuration_names(RG, SITE)
    assert "SLOT_NAME" in names.app_setting_names and names.connection_string_names == ["Database"]

    client.web_apps.update_application_settings_slot(
        RG, SITE, "staging", StringDictionary(properties={**settings, "NEW": "1"}))
    assert client.web_apps.list_application_settings_slot(RG, SITE, "staging").properties["NEW"] == "1"
    client.web_apps.update_slot_configuration_names(
        RG, SITE, SlotConfigNamesResource(app_setting_names=["SLOT_NAME", "NEW"]))
    assert client.web_apps.list_slot_configuration_names(RG, SITE).app_setting_names == ["SLOT_NAME", "NEW"]


def test_config_change_changes_what_the_host_serves(sbx, client):
    host = client.web_apps.get_slot(RG, SITE, "staging").default_host_name
    client.web_apps.update_configuration_slot(
        RG, SITE, "staging",
        SiteConfigResource(linux_fx_version="DOCKER|registry.sandbox.local/fundrbolt-api:1.5.1-bad"))
    status, body = sbx.health(host)
    assert (status, body["status"], body["version"]) == (503, "unhealthy", "1.5.1-bad")
    # Other config survives a partial update.
    assert client.web_apps.get_configuration_slot(RG, SITE, "staging").health_check_path == "/health"


def test_unknown_image_is_healthy_and_reports_its_tag(sbx, client):
    client.web_apps.create_or_update_configuration_slot(
        RG, SITE, "staging", SiteConfigResource(linux_fx_version="DOCKER|registry.sandbox.local/other:9.9.9"))
    host = client.web_apps.get_slot(RG, SITE, "staging").default_host_name
    status, body = sbx.health(host)
    assert (status, body["status"], body["version"]) == (200, "healthy", "9.9.9")


def test_deployments_newest_is_active(sbx, client):
    deps = list(client.web_apps.list_deployments(RG, SITE))
    assert [(d.name, d.active) for d in deps] == [("dep-1.4.2", True), ("dep-1.4.1", False)]
    client.web_apps.create_deployment(
        RG, SITE, "dep-1.5.0",
        Deployment(status=4, author="rollback-bot", message="release 1.5.0", active=True))
    got = client.web_apps.get_deployment(RG, SITE, "dep-1.5.0")
    assert (got.author, got.message, got.active) == ("rollback-bot", "release 1.5.0", True)
    assert got.start_time is not None
    assert [d.active for d in client.web_apps.list_deployments(RG, SITE)] == [True, False, False]


def test_restart(sbx, client):
    client.web_apps.restart(RG, SITE)
    client.web_apps.restart_slot(RG, SITE, "staging")
    slots = next(s for s in sbx.state()["sites"] if s["name"] == SITE)["slots"]
    assert slots["production"]["last_restart"] and slots["staging"]["last_restart"]


def test_resource_group_lookup_answers_like_arm(sbx):
    # ResourceManagementClient.resource_groups.get, as azure.azcollection calls it (lower-case path).
    token = sbx.credential().get_token(sbx.arm + "/.default").token
    response = requests.get(
        f"{sbx.arm}/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourcegroups/{RG}",
        params={"api-version": "2022-09-01"}, headers={"Authorization": f"Bearer {token}"},
        verify=sbx.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert response.status_code == 200
    assert response.json()["location"] == "westeurope"
    assert response.json()["properties"]["provisioningState"] == "Succeeded"
    missing = requests.get(
        f"{sbx.arm}/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourcegroups/rg-nope",
        params={"api-version": "2022-09-01"}, headers={"Authorization": f"Bearer {token}"},
        verify=sbx.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceGroupNotFound"


# -- app settings, connection strings and sticky names, as webapp_app_settings uses them ----------------

SF_RG = "rg-sf-ai-assistant-sandbox"
SF_SITE = "app-sf-ai-assistant-sandbox-crm"


def test_connection_strings_round_trip_with_their_types(sbx, client):
    before = client.web_apps.list_connection_strings_slot(RG, SITE, "staging").properties
    assert {name: pair.type for name, pair in before.items()} == {"Database": "PostgreSQL", "Cache": "RedisCache"}
    client.web_apps.update_connection_strings_slot(RG, SITE, "staging", ConnectionStringDictionary(properties={
        "Database": ConnStringValueTypePair(value="Server=db-restored.sandbox.local", type="PostgreSQL"),
        "Reports": ConnStringValueTypePair(value="Server=tcp:sql.sandbox.local", type="sqlazure"),
    }))
    after = client.web_apps.list_connection_strings_slot(RG, SITE, "staging").properties
    # PUT replaces the whole set (Cache is gone) and App Service answers with its own spelling of the type.
    assert {name: (pair.value, pair.type) for name, pair in after.items()} == {
        "Database": ("Server=db-restored.sandbox.local", "PostgreSQL"),
        "Reports": ("Server=tcp:sql.sandbox.local", "SQLAzure"),
    }
    # Production was not touched.
    assert set(client.web_apps.list_connection_strings(RG, SITE).properties) == {"Database", "Cache"}


def test_connection_string_of_an_unknown_type_is_refused_and_nothing_changes(sbx, client):
    with pytest.raises(HttpResponseError) as err:
        client.web_apps.update_connection_strings(RG, SITE, ConnectionStringDictionary(properties={
            "Database": ConnStringValueTypePair(value="x", type="Oracle"),
        }))
    assert err.value.status_code == 400 and "Oracle" in err.value.error.message
    assert set(client.web_apps.list_connection_strings(RG, SITE).properties) == {"Database", "Cache"}


def test_key_vault_references_are_stored_and_listed_verbatim(sbx, client):
    settings = client.web_apps.list_application_settings(SF_RG, SF_SITE).properties
    reference = "@Microsoft.KeyVault(VaultName=kv-sf-ai-sandbox;SecretName=sf-client-secret)"
    assert settings["SF_CLIENT_SECRET"] == reference
    client.web_apps.update_application_settings(
        SF_RG, SF_SITE, StringDictionary(properties={**settings, "RAG_TOP_K": "7"}))
    again = client.web_apps.list_application_settings(SF_RG, SF_SITE).properties
    assert again["SF_CLIENT_SECRET"] == reference and again["RAG_TOP_K"] == "7"


def test_slot_config_names_put_replaces_every_list(sbx, client):
    names = client.web_apps.list_slot_configuration_names(SF_RG, SF_SITE)
    assert (names.app_setting_names, names.connection_string_names) == (["SLOT_NAME", "SF_CLIENT_SECRET"],
                                                                        ["KnowledgeDb"])
    client.web_apps.update_slot_configuration_names(SF_RG, SF_SITE, SlotConfigNamesResource(
        app_setting_names=["SLOT_NAME"], connection_string_names=[], azure_storage_config_names=["logs"]))
    names = client.web_apps.list_slot_configuration_names(SF_RG, SF_SITE)
    assert (names.app_setting_names, names.connection_string_names, names.azure_storage_config_names) == (
        ["SLOT_NAME"], [], ["logs"])


def test_a_setting_can_make_a_build_slow_and_reverting_it_makes_it_fast(sbx, client):
    # The seed's slow rule waits 3.5 s; a shorter one keeps the test quick.
    image = "registry.sandbox.local/sf-ai-assistant-crm:2.8.0"
    sbx.admin("PUT", "builds", {image: {"slow_with_settings": {"settings": {"RAG_TOP_K": "50"}, "latency_ms": 800}}})
    host = client.web_apps.get(SF_RG, SF_SITE).default_host_name
    settings = client.web_apps.list_application_settings(SF_RG, SF_SITE).properties

    def timed_health():
        started = time.monotonic()
        status, body = sbx.health(host)
        return status, body["status"], time.monotonic() - started

    assert timed_health()[2] < 0.5
    client.web_apps.update_application_settings(SF_RG, SF_SITE, StringDictionary(properties={**settings, "RAG_TOP_K": "50"}))
    status, health, elapsed = timed_health()
    # Slow, not broken: the P2 (degraded) incident of the runbook's decision matrix.
    assert (status, health) == (200, "healthy") and elapsed >= 0.8
    production = next(s for s in sbx.state()["sites"] if s["name"] == SF_SITE)["slots"]["production"]
    assert production["build"]["slowed_by_settings"] and production["build"]["latency_ms"] == 800
    client.web_apps.update_application_settings(SF_RG, SF_SITE, StringDictionary(properties=settings))
    assert timed_health()[2] < 0.5


@pytest.mark.parametrize("rule", [
    {"settings": {}, "latency_ms": 100},
    {"settings": {"RAG_TOP_K": 50}, "latency_ms": 100},
    {"settings": {"RAG_TOP_K": "50"}, "latency_ms": "slow"},
    {"settings": {"RAG_TOP_K": "50"}, "latency_ms": 100, "when": "always"},
])
def test_a_malformed_slow_rule_is_refused(sbx, rule):
    response = requests.put(f"{sbx.admin_url}/builds", json={"registry.sandbox.local/x:1": {"slow_with_settings": rule}},
                            verify=sbx.ca, timeout=10)
    assert response.status_code == 400 and "slow_with_settings" in response.json()["error"]
    assert "registry.sandbox.local/x:1" not in sbx.admin("GET", "builds")
