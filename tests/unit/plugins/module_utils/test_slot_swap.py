# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swap decisions, over an in-memory app.  The real ARM calls are covered
by the integration targets against the sandbox; here only the logic is."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_web import SlotState
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import SlotSwap


class DonePoller:
    def status(self):
        return "Succeeded"

    def done(self):
        return True

    def wait(self, timeout=None):
        return None

    def result(self):
        return None


class InMemoryApp:
    """Two slots whose content moves on swap, counting every write."""

    app = "api"
    fingerprint = "image"
    fingerprint_setting = "APP_VERSION"

    def __init__(self, production, staging, sticky=()):
        self.states = {
            "production": SlotState(slot="production", image=production, fingerprint=production),
            "staging": SlotState(slot="staging", image=staging, fingerprint=staging),
        }
        self.sticky = list(sticky)
        self.writes = []

    def require_slot(self, slot):
        if slot not in self.states:
            raise RollbackError("Slot '%s' does not exist" % slot)

    def sticky_setting_names(self):
        return self.sticky

    def read_slots(self, slots, everything=False):
        for slot in slots:
            self.require_slot(slot)
        return {name: copy.deepcopy(self.states[name]) for name in slots}

    def begin_swap(self, source, target, polling_interval=2):
        self.writes.append(("swap", source, target))
        a, b = self.states[source], self.states[target]
        a.image, b.image = b.image, a.image
        a.fingerprint, b.fingerprint = b.fingerprint, a.fingerprint
        return DonePoller()

    def apply_preview(self, source, target):
        self.writes.append(("preview", source, target))
        self.states[source].target_swap_slot = target

    def reset_preview(self, source):
        self.writes.append(("reset", source))
        self.states[source].target_swap_slot = None


def swap(app, **kwargs):
    kwargs.setdefault("source", "staging")
    kwargs.setdefault("target", "production")
    return SlotSwap(app, **kwargs).run()


def test_swaps_when_the_expected_build_is_in_the_source():
    app = InMemoryApp("acr/api:1.5.1", "acr/api:1.4.2")
    changed, result = swap(app, expected_build="1.4.2")
    assert changed and result["swapped"]
    assert result["after"]["production"]["image"] == "acr/api:1.4.2"
    assert app.writes == [("swap", "staging", "production")]


def test_second_run_changes_nothing():
    app = InMemoryApp("acr/api:1.5.1", "acr/api:1.4.2")
    swap(app, expected_build="1.4.2")
    changed, result = swap(app, expected_build="1.4.2")
    assert not changed and not result["swapped"]
    assert len(app.writes) == 1


def test_check_mode_predicts_and_writes_nothing():
    app = InMemoryApp("acr/api:1.5.1", "acr/api:1.4.2")
    changed, result = swap(app, expected_build="1.4.2", check_mode=True)
    assert changed
    assert result["after"]["production"]["image"] == "acr/api:1.4.2"
    assert result["operation"]["status"] == "predicted"
    assert app.writes == []


def test_unknown_build_fails_before_any_change():
    app = InMemoryApp("acr/api:1.5.1", "acr/api:1.4.2")
    with pytest.raises(RollbackError) as error:
        swap(app, expected_build="1.3.0")
    assert "No slot runs build '1.3.0'" in error.value.message
    assert app.writes == []


def test_same_slot_is_refused():
    with pytest.raises(RollbackError):
        swap(InMemoryApp("a", "b"), source="production", target="production")


def test_without_expected_build_swaps_and_warns():
    app = InMemoryApp("acr/api:2", "acr/api:1")
    changed, result = swap(app)
    assert changed
    assert any("not idempotent" in warning for warning in result["warnings"])
    assert swap(InMemoryApp("same", "same"))[0] is False


def test_sticky_fingerprint_setting_is_refused():
    app = InMemoryApp("a", "b", sticky=["APP_VERSION"])
    app.fingerprint = "app_setting"
    with pytest.raises(RollbackError) as error:
        swap(app, expected_build="b")
    assert "slot-specific" in error.value.message


def test_preview_complete_and_reset_are_idempotent():
    app = InMemoryApp("acr/api:2", "acr/api:1")
    assert swap(app, action="preview", expected_build="1")[0] is True
    assert swap(app, action="preview", expected_build="1")[0] is False
    assert swap(app, action="reset")[0] is True
    assert swap(app, action="reset")[0] is False
    with pytest.raises(RollbackError):
        swap(app, action="complete", expected_build="1")
    swap(app, action="preview", expected_build="1")
    assert swap(app, action="complete", expected_build="1")[0] is True
    assert swap(app, action="complete", expected_build="1")[0] is False
    assert [write[0] for write in app.writes] == ["preview", "reset", "preview", "swap"]


def test_a_pending_preview_into_another_slot_blocks_a_swap():
    app = InMemoryApp("acr/api:2", "acr/api:1")
    app.states["staging"].target_swap_slot = "qa"
    with pytest.raises(RollbackError) as error:
        swap(app, expected_build="1")
    assert "pending" in error.value.message


# ---- the source slot's health, probed right before the swap --------------------------------------


class RecordedCheck:
    """A source check with a fixed answer, remembering when it was asked (relative to the app's writes)."""

    def __init__(self, app, healthy):
        self.app = app
        self.healthy = healthy
        self.asked_at_writes = []

    def run(self):
        self.asked_at_writes.append(len(self.app.writes))
        return {"healthy": self.healthy, "verdict": {"summary": "https://staging/health: error_rate 1.0 > 0.05"}}


def test_a_healthy_source_is_probed_before_the_swap():
    app = InMemoryApp(production="api:1.4.2", staging="api:1.4.1")
    check = RecordedCheck(app, healthy=True)
    changed, result = swap(app, expected_build="1.4.1", source_check=check)
    assert changed and app.writes == [("swap", "staging", "production")]
    assert check.asked_at_writes == [0]  # before the swap, not after
    assert result["source_health"]["healthy"] is True


def test_an_unhealthy_source_is_refused_and_nothing_changes():
    app = InMemoryApp(production="api:1.4.2", staging="api:1.4.1")
    with pytest.raises(RollbackError) as error:
        swap(app, expected_build="1.4.1", source_check=RecordedCheck(app, healthy=False))
    assert app.writes == []
    assert "unhealthy there too" in error.value.message
    assert "error_rate 1.0" in error.value.message
    assert "'production' still runs 'api:1.4.2'" in error.value.message
    assert error.value.details["source_health"]["healthy"] is False


def test_check_mode_predicts_the_refusal():
    app = InMemoryApp(production="api:1.4.2", staging="api:1.4.1")
    with pytest.raises(RollbackError):
        swap(app, expected_build="1.4.1", check_mode=True, source_check=RecordedCheck(app, healthy=False))
    assert app.writes == []


def test_nothing_is_probed_when_the_target_already_runs_the_build():
    app = InMemoryApp(production="api:1.4.1", staging="api:1.4.2")
    check = RecordedCheck(app, healthy=False)
    changed, result = swap(app, expected_build="1.4.1", source_check=check)
    assert not changed and check.asked_at_writes == [] and result["source_health"] is None


def test_source_health_check_probes_over_http():
    httpx = pytest.importorskip("httpx")
    from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import SourceHealthCheck

    answers = iter([200, 503])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers), json={"status": "healthy"}))
    result = SourceHealthCheck("https://staging.example/health", samples=2, interval=0, transport=transport).run()
    assert result["healthy"] is False and result["samples_taken"] == 2 and result["successes"] == 1


def test_source_health_check_refuses_bad_options_before_any_call():
    from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import SourceHealthCheck

    with pytest.raises(RollbackError) as error:
        SourceHealthCheck("not a url", samples=0)
    assert "nothing was changed" in error.value.message
    assert any("samples" in problem for problem in error.value.details["errors"])


def test_source_health_check_started_in_the_background_gives_the_same_result():
    httpx = pytest.importorskip("httpx")
    from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import SourceHealthCheck

    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "healthy"}))
    check = SourceHealthCheck("https://staging.example/health", samples=2, interval=0, transport=transport).start()
    result = check.run()
    assert result["healthy"] is True and result["samples_taken"] == 2
    assert check.run() == result  # asked again (a second swap decision): the same probe, not a new one


def test_source_health_check_error_in_the_background_is_raised_to_the_caller():
    httpx = pytest.importorskip("httpx")
    from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import SourceHealthCheck

    check = SourceHealthCheck("https://staging.example/health", samples=1, interval=0,
                              transport=httpx.MockTransport(lambda request: httpx.Response(200)))

    def broken_probe():
        raise RuntimeError("probe broke")

    check.probe.run = broken_probe
    with pytest.raises(RuntimeError, match="probe broke"):
        check.start().run()
