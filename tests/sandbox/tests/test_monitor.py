"""The monitoring stand-ins: Azure Monitor metrics through azure-mgmt-monitor, and the real Prometheus."""

import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.monitor import MonitorManagementClient

RG = "rg-fundrbolt-sandbox"
SITE = "fundrbolt-sandbox-api"


@pytest.fixture
def monitor(sbx):
    return MonitorManagementClient(sbx.credential(), sbx.env["AZURE_SUBSCRIPTION_ID"], base_url=sbx.arm,
                                   credential_scopes=[f"{sbx.arm}/.default"], retry_total=0)


def site_id(sbx, slot=None):
    sid = f"/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{SITE}"
    return sid + (f"/slots/{slot}" if slot else "")


def plan_id(sbx):
    site = sbx.web_client().web_apps.get(RG, SITE)
    return site.server_farm_id


def by_name(response):
    return {m.name.value: m.timeseries[0].data for m in response.value}


def test_served_requests_are_counted_per_minute(sbx, monitor):
    production = next(s for s in sbx.state()["appservice"]["sites"] if s["name"] == SITE)["slots"]["production"]
    for _n in range(5):
        requests.get(production["url"] + "/health", verify=sbx.ca, timeout=10)
    response = monitor.metrics.list(site_id(sbx), timespan="PT5M", interval="PT1M",
                                    metricnames="Requests,Http5xx,HttpResponseTime", aggregation="Total,Average")
    series = by_name(response)
    assert sum(p.total for p in series["Requests"]) == 5
    assert sum(p.total for p in series["Http5xx"]) == 0
    assert any(p.average is not None for p in series["HttpResponseTime"])
    assert response.interval == "PT1M" and response.value[0].unit == "Count"


def test_backfilled_errors_fill_every_grain_of_the_window(sbx, monitor):
    sbx.admin("POST", "monitor/requests", {"resource_group": RG, "site": SITE, "count": 600, "status": 503,
                                           "latency_ms": 3500, "minutes_ago": 10})
    response = monitor.metrics.list(site_id(sbx), timespan="PT8M", interval="PT1M",
                                    metricnames="Requests,Http5xx,HttpResponseTime", aggregation="Total,Average")
    series = by_name(response)
    full = [p for p in series["Requests"] if p.total][1:-1]  # whole minutes only
    assert len(full) >= 6 and all(p.total == 60 for p in full)
    assert all(p.average == pytest.approx(3.5) for p in series["HttpResponseTime"] if p.average is not None)
    # Another slot saw nothing: its response-time grains carry no value, its counts are 0.
    staging = by_name(monitor.metrics.list(site_id(sbx, "staging"), timespan="PT5M", interval="PT1M",
                                           metricnames="Requests,HttpResponseTime", aggregation="Total,Average"))
    assert all(p.total == 0 for p in staging["Requests"]) and all(p.average is None for p in staging["HttpResponseTime"])


def test_plan_gauges_from_a_moment_in_the_past(sbx, monitor):
    plan = plan_id(sbx)
    name = plan.rsplit("/", 1)[1]
    sbx.admin("PUT", f"monitor/plans/{RG}/{name}", {"cpu_percent": 97, "memory_percent": 91, "minutes_ago": 6})
    series = by_name(monitor.metrics.list(plan, timespan="PT5M", interval="PT1M",
                                          metricnames="CpuPercentage,MemoryPercentage", aggregation="Average"))
    assert {p.average for p in series["CpuPercentage"]} == {97.0}
    assert {p.average for p in series["MemoryPercentage"]} == {91.0}
    sbx.admin("POST", "reset")
    series = by_name(monitor.metrics.list(plan, timespan="PT5M", interval="PT1M", metricnames="CpuPercentage"))
    assert {p.average for p in series["CpuPercentage"]} == {20.0}


def test_refusals_are_azure_monitors(sbx, monitor):
    with pytest.raises(HttpResponseError) as err:
        monitor.metrics.list(site_id(sbx), metricnames="Latency")
    assert err.value.status_code == 400 and "Valid metrics: Requests" in str(err.value)
    missing = site_id(sbx).replace(SITE, "no-such-app")
    with pytest.raises(ResourceNotFoundError):
        monitor.metrics.list(missing, metricnames="Requests")
    with pytest.raises(HttpResponseError) as err:
        monitor.metrics.list(site_id(sbx), metricnames="Requests", interval="PT10S")
    assert "Invalid interval" in str(err.value)


def test_metrics_faults_apply(sbx, monitor):
    sbx.fault(kind="error", status=503, count=1, path="Microsoft.Insights/metrics")
    with pytest.raises(HttpResponseError) as err:
        monitor.metrics.list(site_id(sbx), metricnames="Requests")
    assert err.value.status_code == 503


def test_prometheus_scrapes_the_apps(sbx):
    prometheus = sbx.env["SRE_SANDBOX_PROMETHEUS_URL"]
    sbx.admin("POST", "monitor/requests", {"resource_group": RG, "site": SITE, "count": 40, "status": 500,
                                           "latency_ms": 100, "minutes_ago": 0.05})
    query = f'sum(http_requests_total{{site="{SITE}",slot="production",status="500"}})'
    deadline = time.monotonic() + 15
    value = None
    while time.monotonic() < deadline:
        result = requests.get(prometheus + "/api/v1/query", params={"query": query}, timeout=5).json()
        if result["data"]["result"]:
            value = float(result["data"]["result"][0]["value"][1])
            if value >= 40:
                break
        time.sleep(0.5)
    assert value == 40
    # A reset deletes every series: old traffic cannot fire a trigger in the next test.
    sbx.admin("POST", "reset")
    result = requests.get(prometheus + "/api/v1/query", params={"query": query}, timeout=5).json()
    assert result["data"]["result"] == [] or float(result["data"]["result"][0]["value"][1]) == 0
