"""Fault injection, seen through the SDK's retry and polling policies."""

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.web.models import CsmSlotEntity
from sandbox_session import RG, SITE


def test_throttle_is_retried_by_azure_core(sbx, client):
    sbx.fault(kind="throttle", count=1, method="GET", path=f"/sites/{SITE}$", retry_after=1)
    sbx.admin("DELETE", "calls")
    assert client.web_apps.get(RG, SITE).name == SITE
    statuses = [c["status"] for c in sbx.calls() if c["path"].endswith(f"/sites/{SITE}")]
    assert statuses == [429, 200]
    assert sbx.admin("GET", "faults")["faults"] == []


def test_error_fault_is_arm_shaped(sbx, client):
    sbx.fault(kind="error", count=1, method="GET", path="/slots$", status=503)
    resp = requests.get(f"{sbx.arm}/subscriptions/x/resourceGroups/{RG}/providers/Microsoft.Web/sites/{SITE}/slots",
                        timeout=10)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "InternalServerError"


def test_lro_fail_raises_and_changes_nothing(sbx, client):
    prod_host = client.web_apps.get(RG, SITE).default_host_name
    sbx.fault(kind="lro_fail", count=1, method="POST", path="slotsswap")
    poller = client.web_apps.begin_swap_slot_with_production(
        RG, SITE, CsmSlotEntity(target_slot="staging", preserve_vnet=True), polling_interval=0.2)
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert err.value.status_code == 400
    assert sbx.health(prod_host)[1]["version"] == "1.4.2"
    assert client.web_apps.list_application_settings(RG, SITE).properties["APP_VERSION"] == "1.4.2"
    assert client.web_apps.get(RG, SITE).slot_swap_status is None
    # The site is free again: a normal swap works.
    client.web_apps.begin_swap_slot_with_production(
        RG, SITE, CsmSlotEntity(target_slot="staging", preserve_vnet=True), polling_interval=0.2).result()
    assert sbx.health(prod_host)[1]["version"] == "1.4.1"


def test_timeout_fault_drops_the_connection(sbx):
    sbx.fault(kind="timeout", count=1, path="/dropme", delay_s=0.2)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sbx.arm}/dropme", timeout=10)
    assert sbx.calls()[-1]["fault"] == "timeout"


def test_calls_log_shows_no_write(sbx, client):
    sbx.admin("DELETE", "calls")
    client.web_apps.get(RG, SITE)
    assert all(c["method"] == "GET" for c in sbx.calls() if c["path"].startswith("/subscriptions/"))


def test_builds_admin_merges_catalog(sbx, client):
    sbx.admin("PUT", "builds", {"registry.sandbox.local/fundrbolt-api:1.4.1": {"healthy": False}})
    host = client.web_apps.get_slot(RG, SITE, "staging").default_host_name
    status, body = sbx.health(host)
    assert (status, body["version"]) == (503, "1.4.1")
    assert sbx.state()["builds"]["registry.sandbox.local/fundrbolt-api:1.5.0"]["healthy"] is True
