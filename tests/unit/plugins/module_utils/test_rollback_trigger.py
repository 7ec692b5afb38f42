# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for module_utils/rollback_trigger.py: policy, the three sources, the watch loop."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

import httpx
import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.rollback_trigger import (
    AzureMonitorSource,
    HttpProbeSource,
    PrometheusSource,
    TriggerPolicy,
    TriggerWatch,
    recommendation,
    verdict,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


# -- policy --------------------------------------------------------------------------


def test_default_policy_is_the_runbooks():
    policy = TriggerPolicy.from_overrides({}).to_dict()
    assert policy["health_check_failures"]["threshold"] == 3
    assert policy["error_rate"] == {"threshold": 5.0, "window_s": 120, "category": "critical", "unit": "%", "enabled": True}
    assert policy["response_time"]["threshold"] == 3000 and policy["response_time"]["window_s"] == 300
    assert policy["memory"]["threshold"] == 90 and policy["memory"]["window_s"] == 600
    assert policy["cpu"]["threshold"] == 95 and policy["cpu"]["window_s"] == 300


def test_policy_overrides_and_every_error_at_once():
    policy = TriggerPolicy.from_overrides({"error_rate": {"threshold": 2, "window_s": 30}, "cpu": {"enabled": False}})
    assert [t.name for t in policy.enabled()] == ["health_check_failures", "error_rate", "response_time", "memory"]
    with pytest.raises(RollbackError) as err:
        TriggerPolicy.from_overrides({"latency": {}, "cpu": {"threshold": -1, "windw": 3}, "memory": {"category": "bad"}})
    text = err.value.message
    assert "unknown trigger(s) latency" in text and "windw" in text and "threshold must be more than 0" in text
    assert "category must be one of" in text and "Nothing was evaluated" in text


# -- HTTP probes ---------------------------------------------------------------------------


def http_source(clock, answers):
    """answers: list of (ok, latency_ms) consumed one per probe."""
    feed = iter(answers)

    def probe(_url):
        ok, latency = next(feed)
        return ok, latency, None if ok else "status 503"
    return HttpProbeSource(["https://app/health"], probe, clock=clock)


def test_three_consecutive_failures_fire_on_the_third():
    clock = Clock()
    policy = TriggerPolicy.from_overrides({})
    source = http_source(clock, [(True, 10), (False, 10), (False, 10), (False, 10)])
    statuses = []
    for _round in range(4):
        source.collect()
        statuses.append(source.observe(policy)["health_check_failures"].status)
        clock.sleep(5)
    assert statuses == ["ok", "ok", "ok", "fired"]
    observed = source.observe(policy)
    assert observed["memory"].status == "not_observed"
    assert observed["health_check_failures"].value == 3


def test_error_rate_is_pending_until_the_window_is_covered_then_fires():
    clock = Clock()
    policy = TriggerPolicy.from_overrides({"error_rate": {"window_s": 30}, "health_check_failures": {"threshold": 100}})
    # Every other probe fails: 50 % errors, never 3 in a row.
    source = http_source(clock, [(i % 2 == 0, 10) for i in range(20)])
    seen = []
    for _round in range(8):
        source.collect()
        seen.append(source.observe(policy)["error_rate"].status)
        clock.sleep(5)
    # Samples 5 s apart: six of them (0..25 s) stand for 30 s of observation, one interval each.
    assert seen[:5] == ["pending"] * 5
    assert seen[5:] == ["fired"] * 3


def test_slow_responses_fire_response_time_only_over_the_window():
    clock = Clock()
    policy = TriggerPolicy.from_overrides({"response_time": {"window_s": 20}})
    source = http_source(clock, [(True, 3500)] * 10)
    for _round in range(6):
        source.collect()
        clock.sleep(5)
    observed = source.observe(policy)["response_time"]
    assert observed.status == "fired" and observed.value == 3500


def test_watch_returns_as_soon_as_a_trigger_fires():
    clock = Clock()
    policy = TriggerPolicy.from_overrides({})
    source = http_source(clock, [(True, 10)] * 3 + [(False, 10)] * 20)
    result = TriggerWatch(source, policy, interval=2, watch_s=120, clock=clock, sleep=clock.sleep, wall=clock).run()
    assert result["verdict"] == "rollback" and result["fired"] == ["health_check_failures"]
    assert result["evaluations"] == 6  # 3 good, then the 3rd failure fires
    assert result["recommended_action"]["severity"] == "P1"
    assert result["recommended_action"]["recovery_target_s"] == 120


def test_watch_without_trouble_runs_to_its_end():
    clock = Clock()
    source = http_source(clock, [(True, 10)] * 100)
    result = TriggerWatch(source, TriggerPolicy.from_overrides({}), interval=5, watch_s=30,
                          clock=clock, sleep=clock.sleep, wall=clock).run()
    assert result["fired"] == [] and result["evaluations"] == 7  # at 0, 5, ... 30 s
    assert result["verdict"] == "watching"  # 30 s cannot cover the 2-minute error-rate window


# -- Prometheus ---------------------------------------------------------------------------


def prometheus(answer):
    """answer(query) -> a float, None (empty vector) or an exception to raise."""
    queries = []

    def handler(request):
        query = request.url.params["query"]
        queries.append(query)
        value = answer(query)
        if isinstance(value, Exception):
            raise value
        result = [] if value is None else [{"metric": {}, "value": [1700000000, str(value)]}]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return PrometheusSource("http://prom:9090", 'job="api"', scrape_interval_s=15, client=client), queries


def test_prometheus_fires_when_the_lowest_value_over_the_window_is_above():
    def answer(query):
        if query.startswith("count_over_time"):
            return 9
        if "http_requests_total" in query:
            return 7.5 if query.startswith("min_over_time") else 9.0
        return 1
    source, queries = prometheus(answer)
    policy = TriggerPolicy.from_overrides({"response_time": {"enabled": False}, "cpu": {"enabled": False}})
    observed = source.observe(policy)
    assert observed["error_rate"].status == "fired" and observed["error_rate"].value == 7.5
    assert any(q.startswith("min_over_time((100 * (sum(rate(http_requests_total{job=\"api\",status=~\"5..\"}") and
               q.endswith("[120s:15s])") for q in queries)
    assert observed["memory"].status == "not_observed"
    assert observed["health_check_failures"].status == "ok"


def test_prometheus_without_enough_points_is_pending_and_down_is_unknown():
    source, _queries = prometheus(lambda q: 2 if q.startswith("count_over_time") else 50.0)
    policy = TriggerPolicy.from_overrides({})
    assert source.observe(policy)["error_rate"].status == "pending"
    down, _queries = prometheus(lambda q: httpx.ConnectError("connection refused"))
    observed = down.observe(policy)
    assert {o.status for name, o in observed.items() if name != "memory"} == {"unknown"}
    assert "unreachable" in observed["error_rate"].detail
    assert verdict(observed) == "unknown"
    assert recommendation(observed, policy)["action"] == "investigate"


def test_prometheus_target_down_for_three_scrapes_fires():
    def answer(query):
        if query.startswith("max_over_time"):
            return 0
        if query.startswith("count_over_time"):
            return 3
        return None
    source, _queries = prometheus(answer)
    policy = TriggerPolicy.from_overrides({"error_rate": {"enabled": False}, "response_time": {"enabled": False},
                                           "cpu": {"enabled": False}, "memory": {"enabled": False}})
    assert source.observe(policy)["health_check_failures"].status == "fired"


def test_prometheus_rejected_query_names_the_error():
    def handler(request):
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error"})
    source = PrometheusSource("http://prom:9090", "job=x", client=httpx.Client(transport=httpx.MockTransport(handler)))
    observed = source.observe(TriggerPolicy.from_overrides({}))
    assert observed["cpu"].status == "unknown" and "bad_data parse error" in observed["cpu"].detail


def test_prometheus_unknown_query_name_is_refused():
    with pytest.raises(RollbackError, match="unknown trigger"):
        PrometheusSource("http://p", "job=x", queries={"latency": "up"}, client=object())


# -- Azure Monitor ---------------------------------------------------------------------------


def metric(name, points):
    data = [SimpleNamespace(time_stamp=t, total=total, average=avg) for t, total, avg in points]
    return SimpleNamespace(name=SimpleNamespace(value=name), timeseries=[SimpleNamespace(data=data)])


def monitor(site_points, plan_points=None):
    calls = []

    def metrics_list(resource_uri, **kwargs):
        calls.append((resource_uri, kwargs))
        points = plan_points if resource_uri.endswith("serverfarms/plan") else site_points
        return SimpleNamespace(value=[metric(n, p) for n, p in points.items()])
    return metrics_list, calls


def minutes(n):
    base = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
    return [base + datetime.timedelta(minutes=i) for i in range(n)]


def test_azure_monitor_error_rate_fires_when_every_grain_is_over():
    stamps = minutes(3)
    metrics_list, calls = monitor({
        "Requests": [(t, 100, None) for t in stamps],
        "Http5xx": [(stamps[0], 1, None), (stamps[1], 8, None), (stamps[2], 9, None)],
        "HttpResponseTime": [(t, None, 0.2) for t in stamps],
    })
    source = AzureMonitorSource(metrics_list, "/sites/app", plan_id=None)
    policy = TriggerPolicy.from_overrides({})
    observed = source.observe(policy)
    assert observed["error_rate"].status == "fired" and observed["error_rate"].value == 8.0
    assert observed["response_time"].status == "pending"  # 3 of 5 minutes
    assert observed["cpu"].status == "not_observed"
    assert calls[0][1]["interval"] == "PT1M" and "Http5xx" in calls[0][1]["metricnames"]


def test_azure_monitor_plan_cpu_and_a_failing_api_is_unknown():
    stamps = minutes(10)
    metrics_list, _calls = monitor({}, {"CpuPercentage": [(t, None, 97.0) for t in stamps],
                                        "MemoryPercentage": [(t, None, 40.0) for t in stamps]})
    source = AzureMonitorSource(metrics_list, "/sites/app", plan_id="/x/serverfarms/plan")
    observed = source.observe(TriggerPolicy.from_overrides({}))
    assert observed["cpu"].status == "fired" and observed["memory"].status == "ok"

    def broken(*_args, **_kwargs):
        raise RuntimeError("(ServiceUnavailable) metrics backend down")
    observed = AzureMonitorSource(broken, "/sites/app", plan_id="/p").observe(TriggerPolicy.from_overrides({}))
    assert observed["error_rate"].status == "unknown" and "ServiceUnavailable" in observed["error_rate"].detail
    json.dumps({k: v.to_dict() for k, v in observed.items()}, default=str)


def test_prometheus_credentials_in_the_url_never_reach_a_result():
    def refuse(request):
        raise httpx.ConnectError("connection refused to https://bob:s3cret@prom:9090/api/v1/query", request=request)
    client = httpx.Client(transport=httpx.MockTransport(refuse))
    source = PrometheusSource("https://bob:s3cret@prom:9090", 'job="api"', scrape_interval_s=15, client=client)
    observed = source.observe(TriggerPolicy.from_overrides({}))
    details = " ".join(str(o.detail) for o in observed.values())
    assert "unreachable" in details and "prom:9090" in details
    assert "s3cret" not in details and "bob" not in details
