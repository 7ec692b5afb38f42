"""Slot swaps as long-running operations, with the real ARMPolling."""

import threading

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.web.models import CsmSlotEntity
from sandbox_session import RG, SITE


def entity(target):
    return CsmSlotEntity(target_slot=target, preserve_vnet=True)


def settings(client, slot=None):
    if slot:
        return client.web_apps.list_application_settings_slot(RG, SITE, slot).properties
    return client.web_apps.list_application_settings(RG, SITE).properties


def test_swap_with_production_changes_production_host(sbx, client):
    prod = client.web_apps.get(RG, SITE)
    stg = client.web_apps.get_slot(RG, SITE, "staging")
    assert sbx.health(prod.default_host_name)[1]["version"] == "1.4.2"

    client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2).result()

    # Host names stay with the slot; the content moved.
    prod_after = client.web_apps.get(RG, SITE)
    assert prod_after.default_host_name == prod.default_host_name
    assert sbx.health(prod.default_host_name)[1]["version"] == "1.4.1"
    assert sbx.health(stg.default_host_name)[1]["version"] == "1.4.2"
    assert prod_after.site_config.linux_fx_version.endswith(":1.4.1")
    # Non-sticky settings moved, sticky ones stayed.
    assert settings(client)["APP_VERSION"] == "1.4.1"
    assert settings(client)["SLOT_NAME"] == "production"
    assert settings(client, "staging")["SLOT_NAME"] == "staging"
    conns = client.web_apps.list_connection_strings(RG, SITE).properties
    assert "db-prod" in conns["Database"].value
    # Deployment history moved with the content.
    assert [d.name for d in client.web_apps.list_deployments(RG, SITE)] == ["dep-1.4.1"]
    status = prod_after.slot_swap_status
    assert (status.source_slot_name, status.destination_slot_name) == ("production", "staging")
    assert client.web_apps.get_slot(RG, SITE, "staging").slot_swap_status.timestamp_utc is not None


def test_swap_from_slot_side_and_back(sbx, client):
    prod_host = client.web_apps.get(RG, SITE).default_host_name
    client.web_apps.begin_swap_slot(RG, SITE, "staging", entity("production"), polling_interval=0.2).result()
    assert sbx.health(prod_host)[1]["version"] == "1.4.1"
    client.web_apps.begin_swap_slot(RG, SITE, "staging", entity("production"), polling_interval=0.2).result()
    assert sbx.health(prod_host)[1]["version"] == "1.4.2"
    assert settings(client)["APP_VERSION"] == "1.4.2"


def test_swap_returns_202_location_then_polls(sbx, client):
    client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2).result()
    calls = [c for c in sbx.calls() if "slotsswap" in c["path"] or "operationResults" in c["path"]]
    assert calls[0]["method"] == "POST" and calls[0]["status"] == 202
    assert calls[-1]["status"] == 200


def test_swap_with_itself_is_400(sbx, client):
    with pytest.raises(HttpResponseError) as err:
        client.web_apps.begin_swap_slot(RG, SITE, "staging", entity("staging"), polling_interval=0.2)
    assert err.value.status_code == 400


def test_concurrent_swap_is_409(sbx, client):
    sbx.admin("PUT", "settings", {"swap_duration_s": 1.0})
    poller = client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2)
    with pytest.raises(ResourceExistsError) as err:
        client.web_apps.begin_swap_slot(RG, SITE, "staging", entity("production"), polling_interval=0.2)
    assert err.value.status_code == 409
    poller.result()
    assert settings(client)["APP_VERSION"] == "1.4.1"


def test_swap_with_preview_apply_then_reset(sbx, client):
    client.web_apps.apply_slot_configuration_slot(RG, SITE, "staging", entity("production"))
    staging = client.web_apps.get_slot(RG, SITE, "staging")
    assert staging.target_swap_slot == "production"
    # Phase one: staging runs with production's sticky settings, its own content.
    assert settings(client, "staging")["SLOT_NAME"] == "production"
    assert settings(client, "staging")["APP_VERSION"] == "1.4.1"

    client.web_apps.reset_slot_configuration_slot(RG, SITE, "staging")
    assert client.web_apps.get_slot(RG, SITE, "staging").target_swap_slot is None
    assert settings(client, "staging")["SLOT_NAME"] == "staging"


def test_swap_with_preview_complete(sbx, client):
    prod_host = client.web_apps.get(RG, SITE).default_host_name
    client.web_apps.apply_slot_configuration_slot(RG, SITE, "staging", entity("production"))
    # A swap to another target while the preview is pending is refused.
    with pytest.raises(ResourceExistsError):
        client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2)
    client.web_apps.begin_swap_slot(RG, SITE, "staging", entity("production"), polling_interval=0.2).result()
    assert sbx.health(prod_host)[1]["version"] == "1.4.1"
    assert client.web_apps.get_slot(RG, SITE, "staging").target_swap_slot is None
    assert settings(client, "staging")["SLOT_NAME"] == "staging"
    assert settings(client)["SLOT_NAME"] == "production"
    assert settings(client, "staging")["APP_VERSION"] == "1.4.2"


def test_production_preview_via_site_level_calls(sbx, client):
    client.web_apps.apply_slot_config_to_production(RG, SITE, entity("staging"))
    assert client.web_apps.get(RG, SITE).target_swap_slot == "staging"
    assert settings(client)["SLOT_NAME"] == "staging"
    client.web_apps.reset_production_slot_config(RG, SITE)
    assert client.web_apps.get(RG, SITE).target_swap_slot is None
    assert settings(client)["SLOT_NAME"] == "production"


def test_swap_is_atomic_for_data_plane_readers(sbx, client):
    """While a swap runs, production answers with the old build, then with the new one; never an error."""
    sbx.admin("PUT", "settings", {"swap_duration_s": 0.5})
    host = client.web_apps.get(RG, SITE).default_host_name
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            status, body = sbx.health(host)
            seen.append((status, body["version"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2).result()
    finally:
        stop.set()
        watcher.join()
    assert {status for status, _version in seen} == {200}
    versions = [version for _status, version in seen]
    assert versions[0] == "1.4.2" and versions[-1] == "1.4.1"
    assert versions == sorted(versions, reverse=True)  # one switch, no flapping


def test_build_that_breaks_on_production_settings_fails_only_after_the_swap(sbx, client):
    # 1.6.0 is healthy in staging but unhealthy with production's sticky SLOT_NAME,
    # the case a staging health check cannot catch and an automatic swap-back must.
    client.web_apps.update_configuration_slot(
        RG, SITE, "staging", {"properties": {"linuxFxVersion": "DOCKER|registry.sandbox.local/fundrbolt-api:1.6.0"}})
    staging_host = client.web_apps.get_slot(RG, SITE, "staging").default_host_name
    production_host = client.web_apps.get(RG, SITE).default_host_name
    assert sbx.health(staging_host)[0] == 200
    client.web_apps.begin_swap_slot_with_production(RG, SITE, entity("staging"), polling_interval=0.2).result()
    status, body = sbx.health(production_host)
    assert (status, body["version"]) == (503, "1.6.0")
    assert sbx.health(staging_host)[0] == 200
