# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for module_utils/policy.py: the runbooks' decision tables and decide()."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.policy import (
    DEFAULT_DECISION_MATRIX,
    PolicyError,
    build_matrix,
    decide,
    normalise_severity_name,
    normalise_situation,
)

RESULT_KEYS = {
    "severity", "label", "rollback", "action", "procedures", "investigate", "time_frame", "time_frame_s",
    "recovery_class", "recovery_target_s", "situation", "rule", "reason",
}


@pytest.mark.parametrize("severity, label, rollback, action, procedures, time_frame_s, rclass, target", [
    ("P1", "Service down", True, "Slot swap or revert last deploy", ["slot_swap", "redeploy_previous"], 900,
     "critical", 120),
    ("P2", "Degraded", True, "Revert config change or scale up", ["config_revert", "scale_up"], 1800,
     "performance", 300),
    ("P3", "Feature bug", True, "Git revert + CI/CD redeploy", ["code_revert"], 7200, "feature", 900),
    ("P4", "Cosmetic", False, "Fix forward in next sprint", [], None, "non_critical", 1800),
])
def test_every_severity(severity, label, rollback, action, procedures, time_frame_s, rclass, target):
    result = decide(severity)
    assert set(result) == RESULT_KEYS
    assert result["severity"] == severity
    assert result["label"] == label
    assert result["rollback"] is rollback
    assert result["action"] == action
    assert result["procedures"] == procedures
    assert result["time_frame_s"] == time_frame_s
    assert result["recovery_class"] == rclass
    assert result["recovery_target_s"] == target
    assert result["situation"] is None and result["rule"] is None
    assert result["reason"].startswith("%s (%s)" % (severity, label))


def test_time_frames_as_text():
    assert [decide(s)["time_frame"] for s in ("P1", "P2", "P3", "P4")] == [
        "within 15 min", "within 30 min", "within 2 hours", "next release"]


def test_reason_reads_as_a_sentence():
    assert decide("P1")["reason"] == (
        "P1 (Service down): roll back (slot swap or revert last deploy) within 15 min. "
        "Recovery target 2 min (critical).")
    assert decide("P4")["reason"] == (
        "P4 (Cosmetic): no rollback; fix forward in next sprint. Recovery target 30 min (non-critical).")


@pytest.mark.parametrize("spelling", ["P1", "p1", "1", "sev1", "SEV1", "Sev-1", "sev 1", " P1 ", 1, "P01"])
def test_severity_spellings(spelling):
    assert normalise_severity_name(spelling) == "P1"
    assert decide(spelling)["severity"] == "P1"


@pytest.mark.parametrize("spelling", ["Critical outage", "critical-outage", "CRITICAL_OUTAGE", " critical outage "])
def test_situation_spellings(spelling):
    assert normalise_situation(spelling) == "critical_outage"
    assert decide("P1", spelling)["situation"] == "critical_outage"


def test_critical_outage_rolls_back_with_the_severity_plan():
    result = decide("P1", "critical_outage")
    assert result["rollback"] is True
    assert result["action"] == "Slot swap or revert last deploy"
    assert result["procedures"] == ["slot_swap", "redeploy_previous"]
    assert result["rule"]["matched"] is True and result["rule"]["fact"] is None
    assert result["rule"]["outcome"] == "Roll back immediately"
    assert "Critical outage" in result["reason"]


def test_critical_outage_overrides_a_severity_that_would_not_roll_back():
    result = decide("P4", "critical_outage")
    assert result["rollback"] is True
    assert result["action"] == "Roll back immediately"
    assert result["procedures"] == ["redeploy_previous"]
    assert "overrides P4's own plan" in result["reason"]


def test_data_corruption_rolls_back_and_investigates():
    result = decide("P2", "data_corruption")
    assert result["rollback"] is True and result["investigate"] is True
    assert result["action"] == "Revert config change or scale up, then investigate"
    assert result["procedures"] == ["config_revert", "scale_up"]


def test_minor_bug_quick_fix_goes_forward():
    result = decide("P3", "minor_bug", {"fix_eta_minutes": 10})
    assert result["rollback"] is False
    assert result["action"] == "Fix forward"
    assert result["procedures"] == []
    assert result["rule"] == {
        "name": "minor_bug", "label": "Minor bug", "fact": "fix_eta_minutes", "value": 10, "compare": "lt",
        "threshold": 30, "matched": True, "outcome": "Fix forward"}
    assert "fix_eta_minutes 10 < 30" in result["reason"]
    assert "fix forward instead of rolling back" in result["reason"]


@pytest.mark.parametrize("eta", [30, 45, "60"])
def test_minor_bug_slow_fix_rolls_back(eta):
    result = decide("P3", "minor_bug", {"fix_eta_minutes": eta})
    assert result["rollback"] is True
    assert result["action"] == "Git revert + CI/CD redeploy"
    assert result["procedures"] == ["code_revert"]
    assert result["rule"]["matched"] is False and result["rule"]["outcome"] == "Roll back"
    assert ">= 30" in result["reason"]


def test_performance_degradation_above_20_percent_rolls_back():
    result = decide("P2", "performance_degradation", {"impact_percent": 35})
    assert result["rollback"] is True
    assert result["action"] == "Revert config change or scale up"
    assert result["rule"]["value"] == 35 and result["rule"]["matched"] is True
    assert result["reason"] == (
        "P2 (Degraded), Performance degradation with impact_percent 35 > 20: roll back "
        "(revert config change or scale up) within 30 min. Recovery target 5 min (performance).")


@pytest.mark.parametrize("impact", [20, 5, "12.5%", 0])
def test_performance_degradation_up_to_20_percent_goes_forward(impact):
    result = decide("P2", "performance_degradation", {"impact_percent": impact})
    assert result["rollback"] is False
    assert result["action"] == "Fix forward and keep watching"
    assert result["procedures"] == []
    assert "<= 20" in result["reason"]


def test_string_numbers_are_parsed():
    assert decide("P2", "performance_degradation", {"impact_percent": "35%"})["rule"]["value"] == 35
    assert decide("P2", "performance_degradation", {"impact_percent": " 12.5 "})["rule"]["value"] == 12.5


def test_defaults_are_not_mutated():
    before = copy.deepcopy(DEFAULT_DECISION_MATRIX)
    result = decide("P1", matrix={"severities": {"P1": {"procedures": ["x"]}}})
    result["procedures"].append("y")
    decide("P1")["procedures"].append("z")
    assert DEFAULT_DECISION_MATRIX == before


def test_override_merges_per_key():
    overrides = {
        "severities": {"p2": {"time_frame": "within 20 min", "time_frame_s": 1200}},
        "situations": {"Performance degradation": {"threshold": 10}},
    }
    result = decide("P2", "performance_degradation", {"impact_percent": 15}, overrides)
    assert result["rollback"] is True
    assert result["time_frame"] == "within 20 min" and result["time_frame_s"] == 1200
    # the fields not overridden keep their defaults
    assert result["action"] == "Revert config change or scale up"
    assert result["recovery_target_s"] == 300
    assert result["rule"]["threshold"] == 10 and result["rule"]["compare"] == "gt"
    assert "impact_percent 15 > 10" in result["reason"]
    # P1 untouched
    assert decide("P1", matrix=overrides)["time_frame_s"] == 900


def test_override_of_a_nested_outcome():
    overrides = {"situations": {"minor_bug": {"then": {"action": "Hotfix"}}}}
    result = decide("P3", "minor_bug", {"fix_eta_minutes": 5}, overrides)
    assert result["action"] == "Hotfix" and result["rollback"] is False


def test_override_adds_a_severity_and_a_situation():
    overrides = {
        "severities": {"P5": {
            "label": "Informational", "rollback": False, "action": "Note it", "procedures": [],
            "time_frame": "never", "time_frame_s": None, "recovery_class": "none", "recovery_target_s": None}},
        "situations": {"error_rate": {
            "label": "Error rate", "fact": "error_percent", "compare": "ge", "threshold": 5,
            "then": {"rollback": True, "action": "Roll back"},
            "otherwise": {"rollback": False, "action": "Watch"}}},
    }
    assert decide("sev5", matrix=overrides)["label"] == "Informational"
    assert "Recovery target" not in decide("P5", matrix=overrides)["reason"]
    result = decide("P1", "error_rate", {"error_percent": 5}, overrides)
    assert result["rollback"] is True and result["rule"]["matched"] is True
    assert decide("P1", "error_rate", {"error_percent": 4}, overrides)["rollback"] is False


def test_build_matrix_without_overrides_is_the_default():
    assert build_matrix() == DEFAULT_DECISION_MATRIX
    assert build_matrix({}) == DEFAULT_DECISION_MATRIX


@pytest.mark.parametrize("severity", ["P9", "critical", "p0", "sev"])
def test_unknown_severity_names_the_accepted_values(severity):
    with pytest.raises(PolicyError, match=r"unknown severity .*accepted: P1, P2, P3, P4"):
        decide(severity)


@pytest.mark.parametrize("severity", [None, "", "  "])
def test_missing_severity(severity):
    with pytest.raises(PolicyError, match=r"a severity is required; accepted: P1, P2, P3, P4"):
        decide(severity)


def test_unknown_situation_names_the_accepted_values():
    with pytest.raises(PolicyError, match=(r"unknown situation 'outage'; accepted: critical_outage, "
                                           r"data_corruption, minor_bug, performance_degradation")):
        decide("P1", "outage")


@pytest.mark.parametrize("situation, fact", [
    ("minor_bug", "fix_eta_minutes"), ("performance_degradation", "impact_percent")])
@pytest.mark.parametrize("facts", [None, {}, {"other": 1}, {"fix_eta_minutes": None, "impact_percent": None}])
def test_missing_fact_names_it(situation, fact, facts):
    with pytest.raises(PolicyError, match=r"situation '%s' needs facts\.%s" % (situation, fact)):
        decide("P2", situation, facts)


@pytest.mark.parametrize("value", ["soon", True, [1], "nan"])
def test_fact_must_be_a_number(value):
    with pytest.raises(PolicyError, match=r"facts\.impact_percent must be a number"):
        decide("P2", "performance_degradation", {"impact_percent": value})


def test_facts_must_be_a_dict():
    with pytest.raises(PolicyError, match=r"facts must be a dict"):
        decide("P2", "performance_degradation", ["impact_percent", 30])


@pytest.mark.parametrize("overrides, message", [
    ("P1", r"matrix must be a dict with the keys severities and/or situations"),
    ({"P1": {}}, r"unknown key\(s\) P1; accepted keys are severities, situations"),
    ({"severities": []}, r"matrix\.severities must be a dict"),
    ({"severities": {"P1": {"rollback": "yes"}}}, r"severities\.P1\.rollback must be a boolean"),
    ({"severities": {"P1": {"time_frame_s": True}}}, r"severities\.P1\.time_frame_s must be an integer or null"),
    ({"severities": {"P1": {"procedures": [1]}}}, r"severities\.P1\.procedures must be a list of strings"),
    ({"severities": {"P6": {"label": "x"}}},
     r"severities\.P6 is missing rollback, action, procedures, time_frame, time_frame_s, recovery_class, "
     r"recovery_target_s \(a new entry needs every field"),
    ({"severities": {"P1": "down"}}, r"severities\.P1 must be a dict"),
    ({"situations": {"minor_bug": {"compare": "eq"}}}, r"situations\.minor_bug\.compare must be one of lt, le"),
    ({"situations": {"minor_bug": {"threshold": "30"}}}, r"situations\.minor_bug\.threshold must be a number"),
    ({"situations": {"x": {"label": "X"}}}, r"situations\.x\.then must be an outcome dict"),
    ({"situations": {"x": {"label": "X", "then": {"rollback": True}}}}, r"situations\.x\.then is missing action"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(PolicyError, match=message):
        decide("P1", matrix=overrides)
