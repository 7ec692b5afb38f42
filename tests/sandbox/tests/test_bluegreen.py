"""The blue/green controller stand-in (mvp011), driven with httpx like the module."""

import ssl
import time

import httpx
import pytest
import requests


@pytest.fixture
def bg(sbx):
    """An httpx client on the controller's HTTPS port, sandbox at seed, fast switches."""
    sbx.admin("PUT", "bluegreen/settings", {"switch_duration_s": 0.2})
    with httpx.Client(base_url=sbx.env["SRE_SANDBOX_BLUEGREEN_URL"], verify=ssl.create_default_context(cafile=sbx.ca), timeout=10) as client:
        yield client


def _wait_stable(client, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/deployment/status").json()
        if status["status"] == "stable":
            return status
        time.sleep(0.05)
    raise AssertionError("controller still switching")


def test_env_exports_both_urls(sbx):
    assert sbx.env["SRE_SANDBOX_BLUEGREEN_URL"].startswith("https://127.0.0.1:")
    assert sbx.env["SRE_SANDBOX_BLUEGREEN_HTTP_URL"].startswith("http://127.0.0.1:")


def test_seed_status_green_bad_blue_good(bg):
    status = bg.get("/deployment/status").json()
    assert status["currentEnvironment"] == "green"
    assert status["status"] == "stable"
    assert status["environments"]["green"] == {**status["environments"]["green"], "version": "2.4.0",
                                               "health": "unhealthy", "active": True}
    assert status["environments"]["blue"]["version"] == "2.3.1"
    assert status["environments"]["blue"]["health"] == "healthy"
    tail = status["deploymentHistory"][-2:]
    assert [(h["environment"], h["version"], h["action"]) for h in tail] == [
        ("green", "2.4.0", "deploy"), ("green", "2.4.0", "switch")]
    health = bg.get("/health")
    assert health.status_code == 503
    assert health.json()["health"] == "unhealthy"
    assert (health.json()["version"], health.json()["environment"]) == ("2.4.0", "green")


def test_rollback_switches_after_duration_and_health_follows(bg):
    resp = bg.post("/deployment/rollback")
    assert resp.status_code == 202
    body = resp.json()
    assert (body["from"], body["to"], body["fromVersion"], body["toVersion"], body["status"]) == (
        "green", "blue", "2.4.0", "2.3.1", "switching")
    during = bg.get("/deployment/status").json()
    assert during["status"] == "switching"
    assert during["currentEnvironment"] == "green"  # traffic moves at the end of the switch
    assert during["switching"]["to"] == "blue"
    assert bg.post("/deployment/rollback").status_code == 409
    status = _wait_stable(bg)
    assert status["currentEnvironment"] == "blue"
    assert status["deploymentHistory"][-1]["action"] == "rollback"
    assert status["deploymentHistory"][-1]["environment"] == "blue"
    assert status["lastOperation"]["status"] == "succeeded"
    health = bg.get("/health")
    assert health.status_code == 200
    assert health.json() == {**health.json(), "health": "healthy", "version": "2.3.1", "environment": "blue"}


def test_instant_switch_answers_200_completed(sbx, bg):
    sbx.admin("PUT", "bluegreen/settings", {"switch_duration_s": 0})
    resp = bg.post("/deployment/rollback")
    assert resp.status_code == 200
    assert resp.json()["status"] == "completed"
    assert bg.get("/deployment/status").json()["currentEnvironment"] == "blue"


def test_plain_http_port_serves_the_same_controller(sbx, bg):
    with httpx.Client(base_url=sbx.env["SRE_SANDBOX_BLUEGREEN_HTTP_URL"], timeout=10) as plain:
        assert plain.get("/deployment/status").json()["currentEnvironment"] == "green"
        sbx.admin("POST", "bluegreen/deploy", {"version": "2.5.0"})
        assert plain.get("/health").json()["version"] == "2.5.0"
    assert bg.get("/health").json()["environment"] == "blue"


def test_nothing_to_roll_back_to_is_409(sbx, bg):
    sbx.admin("DELETE", "bluegreen/environments/blue")
    resp = bg.post("/deployment/rollback")
    assert resp.status_code == 409
    assert resp.json()["error"] == "NothingToRollBackTo"
    assert bg.get("/deployment/status").json()["currentEnvironment"] == "green"


def test_deploy_mark_bad_and_ai_query(sbx, bg):
    status = sbx.admin("POST", "bluegreen/deploy", {"version": "2.5.0", "healthy": False})
    assert status["currentEnvironment"] == "blue"
    assert [h["action"] for h in status["deploymentHistory"][-2:]] == ["deploy", "switch"]
    query = {"content": "test message", "tenantId": "demo-tenant"}
    assert bg.post("/api/ai/query", json=query).status_code == 500
    sbx.admin("PUT", "bluegreen/versions", {"2.5.0": {"healthy": True}})
    resp = bg.post("/api/ai/query", json=query)
    assert resp.status_code == 200
    assert resp.json()["tenantId"] == "demo-tenant"
    assert bg.post("/api/ai/query", json={}).status_code == 400


def test_slow_version_delays_health(sbx, bg):
    sbx.admin("PUT", "bluegreen/versions", {"2.4.0": {"latency_ms": 300}})
    started = time.monotonic()
    bg.get("/health")
    assert time.monotonic() - started >= 0.3


def test_no_switch_fault_accepts_and_does_nothing(sbx, bg):
    sbx.admin("POST", "bluegreen/faults", {"kind": "no_switch"})
    assert bg.post("/deployment/rollback").status_code == 202
    time.sleep(0.4)
    status = bg.get("/deployment/status").json()
    assert (status["currentEnvironment"], status["status"]) == ("green", "stable")
    assert status["deploymentHistory"][-1]["action"] == "switch"
    assert sbx.admin("GET", "bluegreen/faults")["faults"] == []


def test_switch_fail_fault_reports_failed_operation(sbx, bg):
    sbx.admin("POST", "bluegreen/faults", {"kind": "switch_fail"})
    assert bg.post("/deployment/rollback").status_code == 202
    status = _wait_stable(bg)
    assert status["currentEnvironment"] == "green"
    assert status["lastOperation"]["status"] == "failed"


def test_http_faults_and_call_log(sbx, bg):
    sbx.admin("DELETE", "bluegreen/calls")
    sbx.admin("POST", "bluegreen/faults", {"kind": "error", "method": "POST", "path": "rollback$", "status": 503})
    sbx.admin("POST", "bluegreen/faults", {"kind": "throttle", "method": "GET", "path": "status$", "retry_after": 2})
    assert bg.get("/deployment/status").status_code == 429
    resp = bg.post("/deployment/rollback")
    assert resp.status_code == 503
    assert bg.get("/deployment/status").json()["currentEnvironment"] == "green"
    calls = sbx.admin("GET", "bluegreen/calls")["calls"]
    assert [(c["method"], c["status"], c["fault"]) for c in calls] == [
        ("GET", 429, "throttle"), ("POST", 503, "error"), ("GET", 200, None)]
    with pytest.raises(requests.HTTPError):
        sbx.admin("POST", "bluegreen/faults", {"kind": "teleport"})


def test_api_token_guards_the_controller_not_health(sbx, bg):
    settings = sbx.admin("PUT", "bluegreen/settings", {"api_token": "t0ken"})
    assert settings["api_token"] == "***"
    assert bg.get("/deployment/status").status_code == 401
    assert bg.post("/deployment/rollback").status_code == 401
    assert bg.get("/health").status_code == 503  # open, and green is still bad
    authorized = bg.get("/deployment/status", headers={"Authorization": "Bearer t0ken"})
    assert authorized.json()["currentEnvironment"] == "green"


def test_reset_restores_the_seed_and_cancels_a_pending_switch(sbx, bg):
    sbx.admin("PUT", "bluegreen/settings", {"switch_duration_s": 0.5})
    assert bg.post("/deployment/rollback").status_code == 202
    sbx.admin("POST", "reset")
    time.sleep(0.7)
    status = bg.get("/deployment/status").json()
    assert (status["currentEnvironment"], status["status"]) == ("green", "stable")
    assert "lastOperation" not in status
