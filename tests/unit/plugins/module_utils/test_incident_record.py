# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for module_utils/incident_record.py: phases, recovery time, verdicts, renderers, secrets."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.incident_record import (
    PHASES,
    IncidentRecord,
    IncidentRecordError,
    Step,
    format_duration,
    normalise_phase,
    parse_time,
    phase_from_tags,
    recovery_target,
    safe_result,
    split_phase_prefix,
)
from ansible_collections.sre.rollback.plugins.module_utils.policy import DEFAULT_DECISION_MATRIX

T0 = parse_time("2026-03-01T10:00:00Z")


def step(phase, start, end, status="ok", host="app", task=None, **extra):
    """A step from offsets in seconds after T0."""
    return Step(host=host, task=task or "%s step at %s" % (phase, start), phase=phase, status=status,
                started=T0 + start, ended=T0 + end, **extra)


def rollback(severity="P1", steps=None, **kwargs):
    """A clean rollback: detect 0-5, decide 5-7, act 7-40, verify 40-50, notify 50-51."""
    if steps is None:
        steps = [step("detect", 0, 5), step("decide", 5, 7), step("act", 7, 40, "changed"),
                 step("verify", 40, 50), step("notify", 50, 51)]
    meta = {"incident_id": "INC-1", "severity": severity, "component": "api", "env": "prod"}
    meta.update(kwargs.pop("meta", {}))
    return IncidentRecord(playbook="rollback.yml", started=T0 - 1, ended=T0 + 52, meta=meta, steps=steps, **kwargs)


# ---- phases and names ------------------------------------------------------------

@pytest.mark.parametrize("value, phase", [
    ("Act", "act"), ("VERIFY", "verify"), ("phase_detect", "detect"), ("report", "record"),
    ("decision", "decide"), ("notify", "notify"), ("rollback", "act"), ("deploy", None), (None, None), (3, None),
])
def test_normalise_phase(value, phase):
    assert normalise_phase(value) == phase


def test_phase_from_tags_needs_exactly_one_phase():
    assert phase_from_tags(["slow", "phase_act"]) == "act"
    assert phase_from_tags(["phase_act", "phase_verify"]) is None  # ambiguous: the next level decides
    assert phase_from_tags(["act"]) is None  # only the phase_ prefix names a phase
    assert phase_from_tags(None) is None


@pytest.mark.parametrize("name, phase, title", [
    ("Act | swap the build", "act", "swap the build"),
    ("app_service_rollback : Verify | production is healthy", "verify", "production is healthy"),
    ("Report | what was done", "record", "what was done"),
    ("Show a | b", None, "Show a | b"),
    ("plain name", None, "plain name"),
])
def test_split_phase_prefix(name, phase, title):
    assert split_phase_prefix(name) == (phase, title)


# ---- time parsing ---------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "2026-03-01T10:00:00Z", "2026-03-01T10:00:00+00:00", "2026-03-01T11:00:00+01:00", "2026-03-01T10:00:00",
    T0, str(T0), int(T0),
])
def test_parse_time_accepts_iso_and_epoch(value):
    assert parse_time(value) == pytest.approx(T0)


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", True])
def test_parse_time_refuses_with_an_example(value):
    with pytest.raises(IncidentRecordError, match="ISO 8601|epoch"):
        parse_time(value)


# ---- targets come from the rollback_decision matrix ----------------------------

@pytest.mark.parametrize("severity", ["P1", "p2", "sev3", "4", "critical", "performance", "feature", "non-critical"])
def test_recovery_target_reads_the_decision_matrix(severity):
    target = recovery_target(severity)
    entry = DEFAULT_DECISION_MATRIX["severities"][target["severity"]]
    assert target["target_s"] == entry["recovery_target_s"]
    assert target["recovery_class"] == entry["recovery_class"]


def test_recovery_target_classes_map_to_their_severity():
    assert recovery_target("critical")["severity"] == "P1"
    assert recovery_target("non_critical")["severity"] == "P4"


def test_recovery_target_follows_a_matrix_override():
    assert recovery_target("P1", {"severities": {"P1": {"recovery_target_s": 60}}})["target_s"] == 60


def test_recovery_target_names_what_is_accepted():
    with pytest.raises(IncidentRecordError, match=r"unknown severity 'P9'; accepted: P1, P2, P3, P4.*critical"):
        recovery_target("P9")
    with pytest.raises(IncidentRecordError, match="rollback_decision_matrix"):
        recovery_target("P1", {"nonsense": {}})


# ---- recovery time and verdicts ------------------------------------------------

def test_recovery_runs_from_the_first_detect_step_to_the_last_verify_step():
    recovery = rollback().recovery()
    assert recovery["detected_from"] == "first detect step"
    assert recovery["detected_at"] == "2026-03-01T10:00:00.000Z"
    assert recovery["recovered_at"] == "2026-03-01T10:00:50.000Z"
    assert recovery["recovery_time_s"] == 50
    assert (recovery["verdict"], recovery["target_s"], recovery["recovered"]) == ("met", 120, True)


def test_detected_at_starts_the_clock_before_the_playbook():
    record = rollback(meta={"detected_at": "2026-03-01T09:58:00Z"})
    recovery = record.recovery()
    assert recovery["detected_from"] == "detected_at"
    assert recovery["recovery_time_s"] == 170
    assert recovery["verdict"] == "missed"
    assert recovery["reason"] == "recovered in 2 min 50 s, 50.0 s over the P1 target of 2 min 00 s"
    # The chart starts at the detection, so every offset counts from there.
    assert record.to_dict()["steps"][0]["offset_s"] == 120


def test_a_reported_detection_comes_after_detected_at_and_before_the_first_detect_step():
    hint = ("2026-03-01T09:59:30Z", "rollback_trigger fired_at")
    recovery = rollback(detection_hint=hint).recovery()
    assert (recovery["detected_from"], recovery["recovery_time_s"]) == ("rollback_trigger fired_at", 80)
    given = rollback(detection_hint=hint, meta={"detected_at": "2026-03-01T09:59:00Z"}).recovery()
    assert (given["detected_from"], given["recovery_time_s"]) == ("detected_at", 110)


def test_without_detect_steps_the_clock_starts_with_the_playbook():
    record = rollback(steps=[step("act", 0, 10, "changed"), step("verify", 10, 20)])
    assert record.recovery()["detected_from"] == "playbook start"
    assert record.recovery()["recovery_time_s"] == 21


def test_an_unparseable_detected_at_is_a_warning_and_the_clock_falls_back():
    record = rollback(meta={"detected_at": "when the pager rang"})
    data = record.to_dict()
    assert data["recovery"]["detected_from"] == "first detect step"
    assert any("detected_at must be an ISO 8601 time" in text for text in data["warnings"])


def test_exactly_on_target_is_met_and_a_second_over_is_missed():
    on_time = rollback(steps=[step("detect", 0, 1), step("verify", 100, 120)])
    late = rollback(steps=[step("detect", 0, 1), step("verify", 100, 121)])
    assert on_time.recovery()["verdict"] == "met"
    assert late.recovery()["verdict"] == "missed"


def test_the_last_succeeded_verify_step_ends_recovery_even_after_a_failed_ignored_one():
    steps = [step("detect", 0, 1), step("verify", 10, 12, "failed", ignored=True),
             step("verify", 12, 30), step("verify", 30, 31, "skipped")]
    recovery = rollback(steps=steps).recovery()
    assert recovery["recovery_time_s"] == 30
    assert recovery["verdict"] == "met"


def test_a_failed_run_is_not_recovered_and_says_which_step():
    steps = [step("detect", 0, 1), step("act", 1, 5, "changed"), step("verify", 5, 6),
             step("verify", 6, 8, "failed", task="production answers healthy", message="HTTP 503")]
    recovery = rollback(steps=steps).recovery()
    assert recovery["verdict"] == "not_recovered"
    assert recovery["recovered"] is False
    assert recovery["recovery_time_s"] is None and recovery["recovered_at"] is None
    assert recovery["reason"] == "the run failed: production answers healthy on app failed (HTTP 503)"
    assert recovery["failed_hosts"] == ["app"]


def test_an_unreachable_host_is_not_recovered():
    steps = [step("detect", 0, 1), step("verify", 1, 2), step("act", 2, 3, "unreachable", host="db")]
    assert rollback(steps=steps).recovery()["verdict"] == "not_recovered"


def test_the_recap_decides_so_a_rescued_failure_still_recovers():
    steps = [step("act", 0, 5, "failed"), step("act", 5, 9, "changed"), step("verify", 9, 10)]
    stats = {"app": {"ok": 2, "changed": 1, "failures": 0, "unreachable": 0, "rescued": 1}}
    assert rollback(steps=steps, host_stats=stats).recovery()["verdict"] == "met"
    failed_stats = {"app": {"failures": 1, "unreachable": 0}}
    assert rollback(steps=steps, host_stats=failed_stats).recovery()["verdict"] == "not_recovered"


def test_a_run_without_a_succeeded_verify_step_is_unverified():
    steps = [step("detect", 0, 1), step("act", 1, 5, "changed"), step("verify", 5, 6, "skipped")]
    recovery = rollback(steps=steps).recovery()
    assert (recovery["verdict"], recovery["recovery_time_s"]) == ("unverified", None)


@pytest.mark.parametrize("severity, why", [(None, "no severity given"), ("P9", "unknown severity 'P9'")])
def test_no_target_without_a_known_severity(severity, why):
    record = rollback(severity=severity)
    data = record.to_dict()
    assert data["recovery"]["verdict"] == "no_target"
    assert data["recovery"]["recovery_time_s"] == 50
    assert why in data["recovery"]["reason"]
    assert bool(data["warnings"]) is (severity is not None)


def test_a_severity_given_as_a_class_uses_its_target():
    recovery = rollback(severity="performance", steps=[step("detect", 0, 1), step("verify", 200, 250)]).recovery()
    assert (recovery["severity"], recovery["target_s"], recovery["verdict"]) == ("P2", 300, "met")


# ---- phase accounting ----------------------------------------------------------

def test_phases_in_runbook_order_with_span_busy_and_counts():
    steps = [
        step("verify", 40, 45, host="a"), step("act", 10, 20, "changed", host="a"),
        step("act", 15, 30, "changed", host="b"),  # overlaps a's step: busy counts the overlap once
        step("act", 35, 36, "failed", host="b", ignored=True), step("act", 36, 37, "skipped", host="b"),
        step("detect", 0, 4, host="a"), step("deploy", 4, 5, host="a"),
    ]
    phases = {entry["phase"]: entry for entry in rollback(steps=steps).phases()}
    assert list(phases) == ["detect", "act", "verify", "other"]
    assert phases["act"]["span_s"] == 26
    assert phases["act"]["busy_s"] == 21
    assert phases["act"]["steps"] == 3  # the skipped one is not a step that ran
    assert phases["act"]["failed"] == 0  # ignored
    assert phases["act"]["offset_s"] == 11  # offsets count from the playbook start, a second before T0


# ---- secrets -----------------------------------------------------------------

def test_a_no_log_step_keeps_only_its_name_status_and_timing():
    secret = "hunter2-do-not-print"
    quiet = step("act", 0, 1, "failed", task="set the password", no_log=True, module="ansible.builtin.command",
                 message="failed with " + secret, result={"rc": 1, "after": secret}, items=3)
    data = quiet.to_dict(T0)
    assert secret not in json.dumps(data)
    assert (data["module"], data.get("message"), data.get("result"), data.get("items")) == (None, None, None, None)
    assert (data["task"], data["status"], data["no_log"]) == ("set the password", "failed", True)


def test_a_failure_message_is_truncated():
    data = step("act", 0, 1, "failed", message="x" * 1000).to_dict(T0)
    assert len(data["message"]) == 300


def test_a_message_is_kept_only_for_failures():
    assert "message" not in step("act", 0, 1, "ok", message="fine").to_dict(T0)


def test_safe_result_keeps_only_the_named_keys_and_bounds_their_size():
    result = {"before": {"build": "1.4.2"}, "after": "x" * 5000, "stdout": "password=abc", "invocation": {"a": 1},
              "duration_s": 1.5}
    kept = safe_result(result, ("before", "after", "duration_s", "healthy"))
    assert kept == {"before": {"build": "1.4.2"}, "after": "(omitted: 5002 characters)", "duration_s": 1.5}
    assert safe_result("not a dict") == {}


def test_an_unknown_status_is_refused():
    with pytest.raises(IncidentRecordError, match="status must be one of ok, changed, failed, skipped, unreachable"):
        step("act", 0, 1, "done")


# ---- renderers -----------------------------------------------------------------

class StrictHTML(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects attributes that load anything."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "base", "col", "embed", "track"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.loads, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.loads += [(tag, name, value) for name, value in attrs if name in ("src", "href", "xlink:href", "action")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.loads += [(tag, name, value) for name, value in attrs if name in ("src", "href", "xlink:href", "action")]

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, "closing </%s> while <%s> is open" % (tag, self.stack[-1:])
        self.stack.pop()


def parse_html(text):
    parser = StrictHTML()
    parser.feed(text)
    parser.close()
    assert parser.stack == [], "unclosed: %s" % parser.stack
    return parser


def hostile_record():
    """A record whose names try to break out of the HTML and the Markdown table."""
    steps = [step("detect", 0, 2, task="<script>alert(1)</script>"), step("act", 2, 9, "changed", task="a | b"),
             step("verify", 9, 10, "failed", task="check & see", message="</td><b>boom"), step("verify", 10, 12)]
    return rollback(steps=steps, meta={"incident_id": "INC-<7>"}, host_stats={"app": {"failures": 0}})


def test_html_is_well_formed_self_contained_and_escaped():
    text = hostile_record().render_html()
    parser = parse_html(text)
    assert parser.loads == []
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "http" not in text and "url(" not in text and "@import" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "svg" in parser.tags and "rect" in parser.tags


def test_html_header_shows_time_target_and_verdict_in_colour():
    met = rollback().render_html()
    assert 'class="verdict good">Recovery 50.0 s / target 2 min 00 s: target met<' in met
    missed = rollback(meta={"detected_at": "2026-03-01T09:50:00Z"}).render_html()
    assert 'class="verdict bad">Recovery 10 min 50 s / target 2 min 00 s: target missed<' in missed
    failed = rollback(steps=[step("verify", 0, 1, "failed")]).render_html()
    assert 'class="verdict bad">Recovery n/a / target 2 min 00 s: not recovered<' in failed


def test_html_chart_marks_detection_recovery_and_a_target_within_reach():
    text = rollback(steps=[step("detect", 0, 5), step("verify", 5, 100)]).render_html()
    # The chart's zero is the playbook start, a second before the detection.
    assert "detected +1.0 s" in text and "recovered +101.0 s" in text and "target +121.0 s" in text


def test_html_chart_names_a_far_target_instead_of_squeezing_the_bars():
    text = rollback().render_html()
    assert "target +121.0 s" not in text
    assert "target at +121.0 s" in text


def test_markdown_has_summary_phases_and_every_step_with_pipes_escaped():
    text = hostile_record().render_markdown()
    assert text.startswith("# Incident INC-<7>: target met\n")
    assert "| Recovery time | 12.0 s (target 2 min 00 s) |" in text
    assert "| act | +3.0 s | 7.0 s | 7.0 s | 1 | 0 |" in text
    assert "| a \\| b |" in text
    assert text.count("\n| 4 | +11.0 s |") == 1
    assert "</td><b>boom" in text  # Markdown keeps the message; only the HTML must escape it


def test_json_is_the_whole_record():
    data = json.loads(rollback().render_json())
    assert data["schema"] == "sre.rollback/incident-record/v1"
    assert data["incident"] == {"incident_id": "INC-1", "severity": "P1", "component": "api", "env": "prod",
                                "detected_at": None}
    assert [entry["phase"] for entry in data["steps"]] == ["detect", "decide", "act", "verify", "notify"]
    assert data["duration_s"] == 53
    assert set(data["recovery"]) >= {"detected_at", "recovered_at", "recovery_time_s", "target_s", "verdict", "reason"}


def test_every_phase_has_a_colour_and_a_known_order():
    assert PHASES == ("detect", "decide", "act", "verify", "notify", "record")


@pytest.mark.parametrize("seconds, text", [(None, "n/a"), (4.25, "4.2 s"), (125, "2 min 05 s"), (3720, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# ---- writing -------------------------------------------------------------------

def test_write_puts_three_files_under_the_incident_id(tmp_path):
    paths = rollback().write(str(tmp_path))
    assert [os.path.relpath(path, str(tmp_path)) for path in paths] == [
        os.path.join("INC-1", name) for name in ("incident.json", "incident.md", "incident.html")]
    assert sorted(os.listdir(str(tmp_path / "INC-1"))) == ["incident.html", "incident.json", "incident.md"]
    assert json.loads((tmp_path / "INC-1" / "incident.json").read_text())["recovery"]["verdict"] == "met"


def test_write_overwrites_an_earlier_run_of_the_same_incident(tmp_path):
    rollback().write(str(tmp_path))
    rollback(steps=[step("verify", 0, 1, "failed")]).write(str(tmp_path))
    data = json.loads((tmp_path / "INC-1" / "incident.json").read_text())
    assert data["recovery"]["verdict"] == "not_recovered"
    assert sorted(os.listdir(str(tmp_path / "INC-1"))) == ["incident.html", "incident.json", "incident.md"]


@pytest.mark.parametrize("incident, name", [
    ("INC/../../etc", "INC-.-.-etc"), ("..", "20260301T095959Z"), (None, "20260301T095959Z"), ("a b", "a-b"),
])
def test_the_directory_name_cannot_leave_the_incident_dir(incident, name):
    assert rollback(meta={"incident_id": incident}).record_name() == name


def test_write_raises_when_the_directory_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        rollback().write(str(blocker))
