# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blue/green rollback decisions over an in-memory controller, and the HTTP
client's retries over httpx.MockTransport. The real controller API is covered
by the integration target against the sandbox."""

from __future__ import annotations

import copy

import httpx
import pytest

from ansible_collections.sre.rollback.plugins.module_utils.bluegreen import (
    BlueGreenRollback,
    ControllerClient,
    ControllerStatus,
    plain_http_secret_warning,
    plan_rollback,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

SEED = {
    "currentEnvironment": "green",
    "status": "stable",
    "environments": {"blue": {"version": "2.3.1", "health": "healthy"},
                     "green": {"version": "2.4.0", "health": "unhealthy"}},
    "deploymentHistory": [
        {"environment": "blue", "version": "2.3.1", "timestamp": "t1", "action": "deploy"},
        {"environment": "blue", "version": "2.3.1", "timestamp": "t2", "action": "switch"},
        {"environment": "green", "version": "2.4.0", "timestamp": "t3", "action": "deploy"},
        {"environment": "green", "version": "2.4.0", "timestamp": "t4", "action": "switch"},
    ],
}


def status(**changes):
    body = copy.deepcopy(SEED)
    body.update(changes)
    return ControllerStatus(body)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.01)


class FakeController:
    """The controller: switches after `switch_polls` status reads, or never (`switches=False`)."""

    base_url = "http://controller"

    def __init__(self, body=None, switches=True, switch_polls=1, health=None, latency_ms=10.0):
        self.body = copy.deepcopy(body or SEED)
        self.switches = switches
        self.switch_polls = switch_polls
        self.pending = None
        self.posts = 0
        self.health_override = health
        self.latency_ms = latency_ms

    def status(self):
        if self.pending is not None:
            self.pending -= 1
            if self.pending <= 0:
                self.pending = None
                target = next(e for e in self.body["environments"] if e != self.body["currentEnvironment"])
                self.body["currentEnvironment"] = target
                self.body["status"] = "stable"
                self.body["deploymentHistory"].append(
                    {"environment": target, "version": self.body["environments"][target]["version"],
                     "timestamp": "t9", "action": "rollback"})
        return ControllerStatus(copy.deepcopy(self.body))

    def rollback(self, before):
        self.posts += 1
        if self.switches:
            self.body["status"] = "switching"
            self.pending = self.switch_polls
        return 202, {"status": "switching"}, [{"status_code": 202, "error": None}]

    def health(self):
        current = self.body["currentEnvironment"]
        env = self.body["environments"][current]
        health = self.health_override or env["health"]
        return {"url": "http://controller/health", "ok": True, "error": None, "status_code": 200,
                "response_time_ms": self.latency_ms, "health": health, "version": env["version"],
                "environment": current}


def procedure(controller, **kwargs):
    clock = FakeClock()
    kwargs.setdefault("wait_timeout", 10)
    kwargs.setdefault("health_timeout", 3)
    return BlueGreenRollback(controller, clock=clock, sleep=clock.sleep, **kwargs)


# ---- status parsing -----------------------------------------------------------------------


def test_previous_environment_from_history():
    assert status().previous_environment() == "blue"


def test_versions_from_history_when_controller_reports_no_environments():
    parsed = status(environments=None)
    assert parsed.version_of("blue") == "2.3.1"
    assert parsed.version_of("green") == "2.4.0"
    assert parsed.previous_environment() == "blue"


def test_status_without_current_environment_is_a_clear_error():
    with pytest.raises(RollbackError, match="currentEnvironment"):
        ControllerStatus({"health": "healthy"})


def test_history_tail():
    assert [h["timestamp"] for h in status().history_tail(2)] == ["t3", "t4"]


# ---- decisions ----------------------------------------------------------------------------


def test_plan_rolls_back_to_previous_when_version_named():
    plan = plan_rollback(status(), expected_version="2.3.1")
    assert (plan.action, plan.target, plan.target_version) == ("rollback", "blue", "2.3.1")
    assert plan.warnings == []


def test_plan_is_noop_when_already_there():
    plan = plan_rollback(status(currentEnvironment="blue"), target_environment="blue", expected_version="2.3.1")
    assert plan.action == "none"


def test_plan_refuses_a_version_no_rollback_reaches():
    with pytest.raises(RollbackError, match="cannot reach version 9.9.9"):
        plan_rollback(status(), expected_version="9.9.9")


def test_plan_refuses_wrong_environment():
    with pytest.raises(RollbackError, match="cannot reach environment green"):
        plan_rollback(status(currentEnvironment="blue"), target_environment="green", expected_version="2.3.1")


def test_plan_nothing_to_roll_back_to():
    body = copy.deepcopy(SEED)
    body["environments"]["blue"] = {"version": None, "health": "empty"}
    body["deploymentHistory"] = body["deploymentHistory"][2:]
    with pytest.raises(RollbackError, match="Nothing to roll back to"):
        plan_rollback(ControllerStatus(body))


def test_plan_without_desired_state_after_rollback_is_noop():
    after = copy.deepcopy(SEED)
    after["currentEnvironment"] = "blue"
    after["deploymentHistory"].append({"environment": "blue", "version": "2.3.1", "action": "rollback"})
    plan = plan_rollback(ControllerStatus(after), active_healthy=True)
    assert plan.action == "none"
    assert "would make things worse" in plan.reason


def test_plan_refuses_to_switch_to_an_unhealthy_previous_environment():
    body = copy.deepcopy(SEED)
    body["environments"]["blue"]["health"] = "unhealthy"
    with pytest.raises(RollbackError, match="reports it unhealthy"):
        plan_rollback(ControllerStatus(body), active_healthy=False)


def test_plan_warns_when_not_idempotent():
    body = copy.deepcopy(SEED)
    body["environments"]["green"]["health"] = "healthy"
    plan = plan_rollback(ControllerStatus(body), active_healthy=True)
    assert plan.action == "rollback"
    assert "not idempotent" in plan.warnings[0]


# ---- the procedure ------------------------------------------------------------------------


def test_check_mode_predicts_and_posts_nothing():
    controller = FakeController()
    changed, result = procedure(controller, expected_version="2.3.1", check_mode=True).run()
    assert changed is True
    assert controller.posts == 0
    assert result["after"] == {"environment": "blue", "version": "2.3.1", "health": "healthy"}
    assert result["operation"]["status"] == "predicted"
    assert result["diff"]["before"] == {"active_environment": "green", "version": "2.4.0"}
    assert result["diff"]["after"] == {"active_environment": "blue", "version": "2.3.1"}


def test_apply_waits_verifies_then_rerun_is_noop():
    controller = FakeController(switch_polls=3)
    changed, result = procedure(controller, expected_version="2.3.1").run()
    assert changed is True and controller.posts == 1
    assert result["after"]["environment"] == "blue"
    assert result["health"]["healthy"] is True
    assert result["history"][-1]["action"] == "rollback"
    assert [p["status"] for p in result["operation"]["progress"]] == ["switching", "stable"]
    changed, result = procedure(controller, expected_version="2.3.1").run()
    assert changed is False and controller.posts == 1
    assert result["operation"]["action"] == "none"


def test_controller_that_does_not_switch_fails_naming_active_environment():
    controller = FakeController(switches=False)
    with pytest.raises(RollbackError, match="green is still the active environment") as err:
        procedure(controller, target_environment="blue", wait_timeout=3).run()
    assert err.value.details["active_environment"] == "green"


def test_unhealthy_after_switch_fails_with_evidence():
    controller = FakeController(health=None)
    controller.body["environments"]["blue"]["health"] = "healthy"
    original = controller.health

    def sick():
        probe = original()
        if probe["environment"] == "blue":
            probe["health"] = "unhealthy"
        return probe

    controller.health = sick
    with pytest.raises(RollbackError, match="Traffic was switched to blue") as err:
        procedure(controller, expected_version="2.3.1").run()
    assert err.value.details["health"]["healthy"] is False
    assert err.value.details["health"]["attempts"] > 1


def test_slow_health_fails_the_response_time_check():
    controller = FakeController(latency_ms=4500)
    with pytest.raises(RollbackError, match="response time 4500 ms exceeds 3000 ms"):
        procedure(controller, expected_version="2.3.1").run()


def test_already_on_target_but_unhealthy_fails_without_change():
    controller = FakeController(health="unhealthy")
    controller.body["currentEnvironment"] = "blue"
    with pytest.raises(RollbackError, match="a rollback would not help"):
        procedure(controller, expected_version="2.3.1").run()
    assert controller.posts == 0


def test_unknown_target_environment():
    with pytest.raises(RollbackError, match="Unknown target_environment 'purple'"):
        procedure(FakeController(), target_environment="purple").run()


# ---- HTTP client --------------------------------------------------------------------------


class Scripted:
    """A MockTransport handler answering from per-route scripts (the last answer repeats)."""

    def __init__(self, routes):
        self.routes = {k: list(v) for k, v in routes.items()}
        self.calls = []

    def __call__(self, request):
        key = "%s %s" % (request.method, request.url.path)
        self.calls.append(key)
        script = self.routes[key]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        code, body = answer
        return httpx.Response(code, json=body)


def client(routes, retries=2):
    handler = Scripted(routes)
    return ControllerClient("http://controller:8080", transport=httpx.MockTransport(handler), retries=retries,
                            backoff=0, sleep=lambda s: None), handler


def test_get_is_retried_on_5xx_and_connection_errors():
    ctl, handler = client({"GET /deployment/status": [
        (503, {}), httpx.ConnectError("refused"), (200, SEED)]})
    assert ctl.status().current == "green"
    assert len(handler.calls) == 3


def test_get_gives_up_with_clear_message():
    ctl, _handler = client({"GET /deployment/status": [httpx.ConnectError("Connection refused")]}, retries=1)
    with pytest.raises(RollbackError, match="failed 2 time.*Is the controller reachable"):
        ctl.status()


def test_post_500_then_success_is_resent_after_checking_status():
    ctl, handler = client({"POST /deployment/rollback": [(500, {"message": "boom"}), (202, {"status": "switching"})],
                           "GET /deployment/status": [(200, SEED)]})
    code, body, attempts = ctl.rollback(ControllerStatus(copy.deepcopy(SEED)))
    assert code == 202
    assert [a["status_code"] for a in attempts] == [500, 202]
    assert handler.calls == ["POST /deployment/rollback", "GET /deployment/status", "POST /deployment/rollback"]


def test_post_not_resent_when_the_switch_started_anyway():
    switching = dict(copy.deepcopy(SEED), status="switching")
    ctl, handler = client({"POST /deployment/rollback": [httpx.ReadTimeout("lost")],
                           "GET /deployment/status": [(200, switching)]})
    code, body, _attempts = ctl.rollback(ControllerStatus(copy.deepcopy(SEED)))
    assert code is None and body["status"] == "switching"
    assert handler.calls.count("POST /deployment/rollback") == 1


def test_post_409_is_a_refusal_not_retried():
    refusal = {"error": "NothingToRollBackTo", "message": "nothing to roll back to"}
    ctl, handler = client({"POST /deployment/rollback": [(409, refusal)]})
    with pytest.raises(RollbackError, match="refused the rollback.*HTTP 409.*nothing to roll back to"):
        ctl.rollback(ControllerStatus(copy.deepcopy(SEED)))
    assert handler.calls == ["POST /deployment/rollback"]


def test_bad_base_url_and_plain_http_warning():
    with pytest.raises(RollbackError, match="must be an http"):
        ControllerClient("localhost:8080")
    assert plain_http_secret_warning("http://deploy.example.com", {"Authorization": "x"})
    assert plain_http_secret_warning("http://localhost:8080", {"Authorization": "x"}) is None
    assert plain_http_secret_warning("https://deploy.example.com", {"Authorization": "x"}) is None
