"""App Service plans (Microsoft.Web/serverfarms) through the unchanged azure-mgmt-web client (app_service_plans)."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

RG = "rg-fundrbolt-sandbox"
PLAN = "asp-fundrbolt-sandbox"
MYSTIRA_RG = "rg-mystira-sandbox"
MYSTIRA_PLAN = "asp-mystira-sandbox"
# begin_* polls at this interval when the sandbox sends Retry-After: 0 (set by the sbx fixture).
POLL = {"polling_interval": 0.05}


@pytest.fixture
def fsbx(sbx):
    """The session sandbox at seed state, with fast scales."""
    sbx.admin("PUT", "serverfarms/settings", {"scale_s": 0.2, "workers_extra_s": 0})
    sbx.admin("DELETE", "calls")
    return sbx


def plan_state(sbx, name=PLAN):
    return next(p for p in sbx.admin("GET", "serverfarms")["plans"] if p["name"] == name)


def scale(client, plan, sku=None, capacity=None, tier=None):
    plan["sku"] = {"name": sku or plan["sku"]["name"], "tier": tier or plan["sku"]["tier"],
                   "capacity": capacity or plan["sku"]["capacity"]}
    return client.app_service_plans.begin_create_or_update(RG, PLAN, plan, **POLL)


def test_get_list_and_case_insensitive_names(fsbx, client):
    plan = client.app_service_plans.get(RG, PLAN)
    assert (plan.name, plan.type, plan.kind, plan.location) == (PLAN, "Microsoft.Web/serverfarms", "linux",
                                                                "West Europe")
    assert plan.sku.name == "P1v3" and plan.sku.tier == "PremiumV3" and plan.sku.capacity == 2
    assert plan.properties.number_of_workers == 2
    assert plan.properties.maximum_number_of_workers == 30
    assert plan.properties.provisioning_state == "Succeeded"
    assert plan.properties.reserved is True
    assert client.app_service_plans.get(RG.upper(), PLAN.upper()).name == PLAN
    assert [p.name for p in client.app_service_plans.list_by_resource_group(RG)] == [PLAN]
    assert {p.name for p in client.app_service_plans.list()} == {PLAN, MYSTIRA_PLAN, "asp-sf-ai-assistant-sandbox"}


def test_the_sites_plans_are_the_seeded_ones(fsbx, client):
    farms = [site.properties.server_farm_id for rg in (RG, MYSTIRA_RG)
             for site in client.web_apps.list_by_resource_group(rg)]
    assert len(farms) == 2
    for farm in farms:
        rg, name = farm.split("/resourceGroups/")[1].split("/")[0], farm.rsplit("/", 1)[1]
        assert client.app_service_plans.get(rg, name).id.lower() == farm.lower()


def test_missing_plan_is_arm_404(fsbx, client):
    with pytest.raises(ResourceNotFoundError) as err:
        client.app_service_plans.get(RG, "asp-nope")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.app_service_plans.get("rg-nope", PLAN)


def test_skus_lists_what_the_plan_can_take(fsbx, client):
    answer = client.app_service_plans.get_server_farm_skus(RG, PLAN)
    names = [item["sku"]["name"] for item in answer["skus"]]
    assert answer["resourceType"] == "Microsoft.Web/serverfarms"
    assert names[:2] == ["F1", "B1"] and "P1v3" in names and "P3v3" in names
    s1 = next(item for item in answer["skus"] if item["sku"]["name"] == "S1")
    assert s1["sku"]["tier"] == "Standard"
    assert (s1["capacity"]["minimum"], s1["capacity"]["maximum"], s1["capacity"]["scaleType"]) == (1, 10, "Automatic")
    # The mystira plan's scale unit has no PremiumV3.
    mystira = client.app_service_plans.get_server_farm_skus(MYSTIRA_RG, MYSTIRA_PLAN)
    assert not [i for i in mystira["skus"] if i["sku"]["tier"] == "PremiumV3"]


def test_scale_is_a_long_running_put(fsbx, client):
    poller = scale(client, client.app_service_plans.get(RG, PLAN), sku="P2v3", capacity=4)
    assert poller.status() == "InProgress"
    assert plan_state(fsbx)["provisioning_state"] == "InProgress"
    assert plan_state(fsbx)["sku"] == "P1v3"  # the old size serves until the scale completes
    plan = poller.result()
    assert (plan.sku.name, plan.sku.capacity, plan.properties.number_of_workers) == ("P2v3", 4, 4)
    assert plan.properties.provisioning_state == "Succeeded"
    put = [c for c in fsbx.calls() if c["method"] == "PUT"]
    assert [c["status"] for c in put] == [202]
    assert plan_state(fsbx)["history"][0]["to"] == {"sku": "P2v3", "capacity": 4}


def test_same_size_answers_200_at_once(fsbx, client):
    poller = scale(client, client.app_service_plans.get(RG, PLAN))
    assert poller.done()
    assert poller.result().sku.capacity == 2
    assert [c["status"] for c in fsbx.calls() if c["method"] == "PUT"] == [200]
    assert plan_state(fsbx)["history"] == []


def test_patch_scales_too(fsbx, client):
    plan = client.app_service_plans.update(RG, PLAN, {"sku": {"name": "p1v3", "capacity": 3}})
    assert plan.properties.provisioning_state == "InProgress"
    deadline = time.monotonic() + 5
    while plan_state(fsbx)["provisioning_state"] != "Succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.app_service_plans.get(RG, PLAN).sku.capacity == 3


@pytest.mark.parametrize("sku,capacity,tier,message", [
    ("P9v9", 2, None, "The SKU 'P9v9' is not a valid App Service plan SKU"),
    ("B1", 4, None, "exceeds the maximum (3) of the Basic tier"),
    ("S1", 2, "PremiumV3", "belongs to tier 'Standard'"),
    ("F1", 0, None, "must be a whole number of 1 or more"),
])
def test_bad_sizes_are_400_and_change_nothing(fsbx, client, sku, capacity, tier, message):
    plan = client.app_service_plans.get(RG, PLAN)
    plan["sku"] = {"name": sku, "tier": tier or "Free", "capacity": capacity}
    if tier is None:
        del plan["sku"]["tier"]
    with pytest.raises(HttpResponseError) as err:
        client.app_service_plans.begin_create_or_update(RG, PLAN, plan, **POLL)
    assert err.value.status_code == 400 and message in err.value.message
    assert (plan_state(fsbx)["sku"], plan_state(fsbx)["capacity"]) == ("P1v3", 2)


def test_a_tier_the_scale_unit_lacks_is_refused(fsbx, client):
    with pytest.raises(HttpResponseError) as err:
        client.app_service_plans.update(MYSTIRA_RG, MYSTIRA_PLAN, {"sku": {"name": "P1v3"}})
    assert err.value.status_code == 400 and "pricing tier 'PremiumV3' is not allowed" in err.value.message
    assert plan_state(fsbx, MYSTIRA_PLAN)["sku"] == "S1"


def test_put_without_location_is_refused(fsbx, client):
    with pytest.raises(HttpResponseError) as err:
        client.app_service_plans.begin_create_or_update(RG, PLAN, {"sku": {"name": "P2v3"}}, **POLL)
    assert err.value.status_code == 400 and err.value.error.code == "LocationRequired"


def test_one_operation_at_a_time(fsbx, client):
    fsbx.admin("PUT", "serverfarms/settings", {"scale_s": 1.0})
    poller = scale(client, client.app_service_plans.get(RG, PLAN), capacity=3)
    with pytest.raises(ResourceExistsError) as err:
        client.app_service_plans.update(RG, PLAN, {"sku": {"capacity": 4}})
    assert err.value.status_code == 409
    assert poller.result().sku.capacity == 3


def test_lro_fail_ends_failed_and_keeps_the_size(fsbx, client):
    fsbx.fault(kind="lro_fail", method="PUT", path=f"serverfarms/{PLAN}$")
    poller = scale(client, client.app_service_plans.get(RG, PLAN), sku="P3v3")
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert err.value.error.code == "ServerFarmScaleFailed"
    state = plan_state(fsbx)
    assert (state["sku"], state["capacity"], state["provisioning_state"]) == ("P1v3", 2, "Succeeded")
    assert state["history"][0]["status"] == "Failed"


def test_throttle_and_500_are_retried_by_azure_core(fsbx):
    client = fsbx.web_client(retry_backoff_factor=0.05)
    fsbx.fault(kind="throttle", method="GET", path=f"serverfarms/{PLAN}/skus$", retry_after=0)
    fsbx.fault(kind="error", status=500, method="PUT", path=f"serverfarms/{PLAN}$")
    assert client.app_service_plans.get_server_farm_skus(RG, PLAN)["skus"]
    assert scale(client, client.app_service_plans.get(RG, PLAN), capacity=3).result().sku.capacity == 3
    statuses = [c["status"] for c in fsbx.calls() if c["fault"]]
    assert statuses == [429, 500]


def test_new_workers_take_workers_extra_s_to_serve(fsbx, client):
    fsbx.admin("PUT", "serverfarms/settings", {"workers_extra_s": 0.5})
    plan = scale(client, client.app_service_plans.get(RG, PLAN), capacity=5).result()
    assert plan.sku.capacity == 5 and plan.properties.number_of_workers == 2
    time.sleep(0.6)
    assert client.app_service_plans.get(RG, PLAN).properties.number_of_workers == 5
    # Fewer instances take effect at once.
    plan = scale(client, client.app_service_plans.get(RG, PLAN), capacity=2).result()
    assert plan.properties.number_of_workers == 2


def test_reset_cancels_a_running_scale(fsbx, client):
    fsbx.admin("PUT", "serverfarms/settings", {"scale_s": 0.5})
    scale(client, client.app_service_plans.get(RG, PLAN), capacity=6)
    fsbx.admin("POST", "reset")
    time.sleep(0.7)
    state = plan_state(fsbx)
    assert (state["capacity"], state["provisioning_state"], state["history"]) == (2, "Succeeded", [])


def test_reset_restores_the_seed_sizes(fsbx, client):
    scale(client, client.app_service_plans.get(RG, PLAN), capacity=4).result()
    fsbx.admin("POST", "reset")
    assert client.app_service_plans.get(RG, PLAN).sku.capacity == 2
