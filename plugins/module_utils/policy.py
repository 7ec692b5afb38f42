# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The runbooks' rollback policy as data, and the decision it implies.

Plain Python, no Ansible imports: the ``sre.rollback.rollback_decision`` filter
is a thin wrapper around :func:`decide`.

Sources
-------
* sf-ai-assistant-rollback.md, "Decision Matrix": severity P1-P4 -> action and time frame.
* mvp011-blue-green-rollback-playbook.md, "Recovery Time Objectives": critical 2 min,
  performance 5 min, feature 15 min, non-critical 30 min (mapped to P1-P4).
* mystira-rollback.md, "Decide: Rollback vs Fix Forward": situation -> rollback or fix forward.

Override shape
--------------
``matrix`` (the user's overrides) is a dict with up to two keys, each merged over
the defaults *per key*: an entry named in the overrides is merged field by field
(nested dicts such as ``then`` / ``otherwise`` too) over the default entry of the
same name, and a new name adds an entry, which must then be complete::

    severities:
      P2: {time_frame: "within 20 min", time_frame_s: 1200}        # change two fields of P2
      P5: {label: Informational, rollback: false, action: "Note it", procedures: [],
           time_frame: "never", time_frame_s: null,
           recovery_class: none, recovery_target_s: null}      # a new severity
    situations:
      performance_degradation: {threshold: 10}                # roll back above 10 %

A severity entry has ``label``, ``rollback`` (bool), ``action``, ``procedures``
(list of names), ``time_frame`` (text), ``time_frame_s`` (int or null),
``recovery_class`` and ``recovery_target_s`` (int or null).

A situation entry has ``label``, ``then`` (an outcome) and, for a rule that
depends on a fact, ``fact`` (the key looked up in ``facts``), ``compare``
(``lt``, ``le``, ``gt`` or ``ge``), ``threshold`` (number), ``otherwise`` (the
outcome when the comparison is false) and ``fact_help`` (how to describe the
fact in an error). Without ``fact`` the rule always applies ``then``. An outcome
is ``{rollback: bool, action: text, investigate: bool}``.
"""

from __future__ import annotations

import copy
import math
import re

SOURCES = {
    "severities": "sf-ai-assistant-rollback.md (Decision Matrix) and mvp011-blue-green-rollback-playbook.md "
                  "(Recovery Time Objectives)",
    "situations": "mystira-rollback.md (Decide: Rollback vs Fix Forward)",
}

DEFAULT_SEVERITIES = {
    "P1": {
        "label": "Service down",
        "rollback": True,
        "action": "Slot swap or revert last deploy",
        "procedures": ["slot_swap", "redeploy_previous"],
        "time_frame": "within 15 min",
        "time_frame_s": 15 * 60,
        "recovery_class": "critical",
        "recovery_target_s": 2 * 60,
    },
    "P2": {
        "label": "Degraded",
        "rollback": True,
        "action": "Revert config change or scale up",
        "procedures": ["config_revert", "scale_up"],
        "time_frame": "within 30 min",
        "time_frame_s": 30 * 60,
        "recovery_class": "performance",
        "recovery_target_s": 5 * 60,
    },
    "P3": {
        "label": "Feature bug",
        "rollback": True,
        "action": "Git revert + CI/CD redeploy",
        "procedures": ["code_revert"],
        "time_frame": "within 2 hours",
        "time_frame_s": 2 * 60 * 60,
        "recovery_class": "feature",
        "recovery_target_s": 15 * 60,
    },
    "P4": {
        "label": "Cosmetic",
        "rollback": False,
        "action": "Fix forward in next sprint",
        "procedures": [],
        "time_frame": "next release",
        "time_frame_s": None,
        "recovery_class": "non_critical",
        "recovery_target_s": 30 * 60,
    },
}

DEFAULT_SITUATIONS = {
    "critical_outage": {
        "label": "Critical outage",
        "then": {"rollback": True, "action": "Roll back immediately", "investigate": False},
    },
    "data_corruption": {
        "label": "Data corruption",
        "then": {"rollback": True, "action": "Roll back and investigate", "investigate": True},
    },
    "minor_bug": {
        "label": "Minor bug",
        "fact": "fix_eta_minutes",
        "fact_help": "the minutes a fix forward is expected to take",
        "compare": "lt",
        "threshold": 30,
        "then": {"rollback": False, "action": "Fix forward", "investigate": False},
        "otherwise": {"rollback": True, "action": "Roll back", "investigate": False},
    },
    "performance_degradation": {
        "label": "Performance degradation",
        "fact": "impact_percent",
        "fact_help": "the share of requests or users affected, in percent",
        "compare": "gt",
        "threshold": 20,
        "then": {"rollback": True, "action": "Roll back", "investigate": False},
        "otherwise": {"rollback": False, "action": "Fix forward and keep watching", "investigate": False},
    },
}

DEFAULT_DECISION_MATRIX = {
    "severities": DEFAULT_SEVERITIES,
    "situations": DEFAULT_SITUATIONS,
}

# When a situation calls for a rollback the severity itself does not plan
# (a P4 during a critical outage), these procedures are proposed.
FALLBACK_ROLLBACK_PROCEDURES = ["redeploy_previous"]

COMPARATORS = {
    "lt": ("<", lambda value, limit: value < limit),
    "le": ("<=", lambda value, limit: value <= limit),
    "gt": (">", lambda value, limit: value > limit),
    "ge": (">=", lambda value, limit: value >= limit),
}

SEVERITY_FIELDS = {
    "label": (str,),
    "rollback": (bool,),
    "action": (str,),
    "procedures": (list,),
    "time_frame": (str,),
    "time_frame_s": (int, type(None)),
    "recovery_class": (str,),
    "recovery_target_s": (int, type(None)),
}
OUTCOME_FIELDS = {"rollback": (bool,), "action": (str,), "investigate": (bool,)}

_SEVERITY_RE = re.compile(r"^(?:p|sev|severity)?[\s_-]*(\d+)$", re.IGNORECASE)


class PolicyError(ValueError):
    """Bad severity, situation, fact or override; the message names what is accepted."""


def _merge(base, override):
    """Deep-merge ``override`` over ``base`` (dicts only; other values replace)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _type_names(types):
    names = {bool: "a boolean", str: "a string", list: "a list", int: "an integer", type(None): "null"}
    return " or ".join(names[t] for t in types)


def _check_fields(where, entry, fields, optional=()):
    missing = [name for name in fields if name not in entry and name not in optional]
    if missing:
        raise PolicyError("%s is missing %s (a new entry needs every field: %s)"
                          % (where, ", ".join(missing), ", ".join(fields)))
    for name, types in fields.items():
        if name not in entry:
            continue
        value = entry[name]
        # bool is an int in Python; an integer field must not take true/false.
        if bool not in types and isinstance(value, bool) or not isinstance(value, types):
            raise PolicyError("%s.%s must be %s, got %r" % (where, name, _type_names(types), value))


def _validate_severity(name, entry):
    where = "severities.%s" % name
    if not isinstance(entry, dict):
        raise PolicyError("%s must be a dict, got %r" % (where, entry))
    _check_fields(where, entry, SEVERITY_FIELDS)
    if not all(isinstance(item, str) for item in entry["procedures"]):
        raise PolicyError("%s.procedures must be a list of strings, got %r" % (where, entry["procedures"]))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_situation(name, entry):
    where = "situations.%s" % name
    if not isinstance(entry, dict):
        raise PolicyError("%s must be a dict, got %r" % (where, entry))
    if not isinstance(entry.get("label"), str):
        raise PolicyError("%s.label must be a string" % where)
    outcomes = ["then"]
    if entry.get("fact") is not None:
        if not isinstance(entry["fact"], str):
            raise PolicyError("%s.fact must be a string naming a key of facts" % where)
        if entry.get("compare") not in COMPARATORS:
            raise PolicyError("%s.compare must be one of %s, got %r"
                              % (where, ", ".join(COMPARATORS), entry.get("compare")))
        if not _is_number(entry.get("threshold")):
            raise PolicyError("%s.threshold must be a number, got %r" % (where, entry.get("threshold")))
        outcomes.append("otherwise")
    for key in outcomes:
        outcome = entry.get(key)
        if not isinstance(outcome, dict):
            raise PolicyError("%s.%s must be an outcome dict {rollback, action, investigate}" % (where, key))
        _check_fields("%s.%s" % (where, key), outcome, OUTCOME_FIELDS, optional=("investigate",))


def build_matrix(overrides=None):
    """Return the decision matrix: the defaults with ``overrides`` merged per key, validated."""
    matrix = copy.deepcopy(DEFAULT_DECISION_MATRIX)
    if overrides:
        if not isinstance(overrides, dict):
            raise PolicyError("matrix must be a dict with the keys severities and/or situations, got %r"
                              % (overrides,))
        unknown = sorted(set(overrides) - set(matrix))
        if unknown:
            raise PolicyError("matrix has unknown key(s) %s; accepted keys are severities, situations"
                              % ", ".join(map(str, unknown)))
        for section, entries in overrides.items():
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise PolicyError("matrix.%s must be a dict of name -> fields, got %r" % (section, entries))
            for name, fields in entries.items():
                key = normalise_severity_name(name) if section == "severities" else normalise_situation(name)
                if key in matrix[section] and isinstance(fields, dict):
                    matrix[section][key] = _merge(matrix[section][key], fields)
                else:
                    matrix[section][key] = copy.deepcopy(fields)
    for name, entry in matrix["severities"].items():
        _validate_severity(name, entry)
    for name, entry in matrix["situations"].items():
        _validate_situation(name, entry)
    return matrix


def normalise_severity_name(value):
    """``P1``, ``p1``, ``1``, ``sev1``, ``SEV-1`` -> ``P1``; other names upper-cased."""
    text = str(value).strip()
    match = _SEVERITY_RE.match(text)
    if match:
        return "P%d" % int(match.group(1))
    return text.upper()


def normalise_situation(value):
    """``Critical outage``, ``critical-outage`` -> ``critical_outage``."""
    return re.sub(r"[\s-]+", "_", str(value).strip()).lower()


def _number_fact(situation, rule, facts):
    fact = rule["fact"]
    help_text = rule.get("fact_help") or "a number"
    if not isinstance(facts, dict) or facts.get(fact) is None:
        raise PolicyError(
            "situation %r needs facts.%s (%s), e.g. facts={'%s': %s}; facts given: %s"
            % (situation, fact, help_text, fact, rule["threshold"],
               ", ".join(sorted(map(str, facts))) if isinstance(facts, dict) and facts else "none"))
    value = facts[fact]
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            value = None
    if not _is_number(value) or math.isnan(value):
        raise PolicyError("facts.%s must be a number (%s), got %r" % (fact, help_text, facts[fact]))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def _format_seconds(seconds):
    if seconds is None:
        return "none"
    if seconds % 3600 == 0:
        return "%d h" % (seconds // 3600)
    if seconds % 60 == 0:
        return "%d min" % (seconds // 60)
    return "%d s" % seconds


def _lower_first(text):
    return text[:1].lower() + text[1:]


def decide(severity, situation=None, facts=None, matrix=None):
    """Map a severity (and optionally a situation with its facts) to what to do.

    ``matrix`` holds the user's overrides (see the module docstring for the shape).
    Returns a plain dict; raises :class:`PolicyError` with a message naming the
    accepted values for an unknown severity or situation or a missing fact.
    """
    policy = build_matrix(matrix)
    severities, situations = policy["severities"], policy["situations"]

    if severity is None or (isinstance(severity, str) and not severity.strip()):
        raise PolicyError("a severity is required; accepted: %s (also p1, 1, sev1)" % ", ".join(severities))
    sev_name = normalise_severity_name(severity)
    if sev_name not in severities:
        raise PolicyError("unknown severity %r; accepted: %s (also written p1, 1, sev1)"
                          % (severity, ", ".join(severities)))
    sev = severities[sev_name]
    if facts is not None and not isinstance(facts, dict):
        raise PolicyError("facts must be a dict such as {'impact_percent': 35}, got %r" % (facts,))

    rollback = sev["rollback"]
    action = sev["action"]
    investigate = False
    rule_info = None
    sev_text = "%s (%s)" % (sev_name, sev["label"])
    if rollback:
        reason = "%s: roll back (%s) %s." % (sev_text, _lower_first(sev["action"]), sev["time_frame"])
    else:
        reason = "%s: no rollback; %s." % (sev_text, _lower_first(sev["action"]))

    sit_name = None
    if situation is not None and str(situation).strip():
        sit_name = normalise_situation(situation)
        if sit_name not in situations:
            raise PolicyError("unknown situation %r; accepted: %s" % (situation, ", ".join(situations)))
        rule = situations[sit_name]
        if rule.get("fact") is None:
            outcome = rule["then"]
            why = "%s" % rule["label"]
            rule_info = {"name": sit_name, "label": rule["label"], "fact": None, "value": None,
                         "compare": None, "threshold": None, "matched": True}
        else:
            value = _number_fact(sit_name, rule, facts)
            symbol, test = COMPARATORS[rule["compare"]]
            matched = test(value, rule["threshold"])
            outcome = rule["then"] if matched else rule["otherwise"]
            if not matched:
                symbol = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}[symbol]
            why = "%s with %s %s %s %s" % (rule["label"], rule["fact"], value, symbol, rule["threshold"])
            rule_info = {"name": sit_name, "label": rule["label"], "fact": rule["fact"], "value": value,
                         "compare": rule["compare"], "threshold": rule["threshold"], "matched": matched}
        rule_info["outcome"] = outcome["action"]
        rollback = outcome["rollback"]
        investigate = bool(outcome.get("investigate", False))
        # The severity's own action stands when the situation agrees with it;
        # otherwise the situation's verdict is the action.
        if rollback == sev["rollback"]:
            action = sev["action"] if not investigate else "%s, then investigate" % sev["action"]
        else:
            action = outcome["action"]
        if rollback and sev["rollback"]:
            reason = "%s, %s: roll back (%s) %s." % (sev_text, why, _lower_first(action), sev["time_frame"])
        elif rollback:
            reason = "%s, %s: %s; the situation overrides %s's own plan (%s)." % (
                sev_text, why, _lower_first(action), sev_name, _lower_first(sev["action"]))
        else:
            reason = "%s, %s: %s instead of rolling back." % (sev_text, why, _lower_first(outcome["action"]))

    procedures = []
    if rollback:
        procedures = list(sev["procedures"]) or list(FALLBACK_ROLLBACK_PROCEDURES)
    if sev["recovery_target_s"] is not None:
        reason += " Recovery target %s (%s)." % (_format_seconds(sev["recovery_target_s"]),
                                                 sev["recovery_class"].replace("_", "-"))

    return {
        "severity": sev_name,
        "label": sev["label"],
        "rollback": rollback,
        "action": action,
        "procedures": procedures,
        "investigate": investigate,
        "time_frame": sev["time_frame"],
        "time_frame_s": sev["time_frame_s"],
        "recovery_class": sev["recovery_class"],
        "recovery_target_s": sev["recovery_target_s"],
        "situation": sit_name,
        "rule": rule_info,
        "reason": reason,
    }
