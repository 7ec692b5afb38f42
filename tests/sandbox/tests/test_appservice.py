"""App Service reads and writes through azure-mgmt-web's WebAppsOperations."""

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.web.models import Deployment, SiteConfigResource, SlotConfigNamesResource, StringDictionary
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
