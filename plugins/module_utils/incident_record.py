# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The incident record of a rollback run: its timeline, its recovery time and its reports.

Plain Python, no Ansible imports: the ``sre.rollback.recovery_timeline`` callback
turns Ansible events into :class:`Step` objects and hands them to an
:class:`IncidentRecord`, which does the accounting and renders JSON, Markdown and a
self-contained HTML page (inline CSS and SVG, nothing fetched from anywhere).

Recovery time (docs/incident-record.md says the same for people)
---------------------------------------------------------------
* It starts at the detection: ``detected_at`` when given (the incident was
  detected before the run, e.g. by an automatic trigger), else a detection a
  step reported (``detection_hint``: the callback passes rollback_trigger's
  ``fired_at``), else the start of the first step of the ``detect`` phase, else
  the start of the playbook.
* It ends at the end of the last step of the ``verify`` phase that succeeded
  (``ok`` or ``changed``).
* It only counts as recovered when the run ended with no host failed or
  unreachable (a failure handled by a block's ``rescue`` or ``ignore_errors``
  does not count) and at least one verify step succeeded.
* Verdicts: ``met`` (recovery time <= target), ``missed`` (> target),
  ``not_recovered`` (the run failed), ``unverified`` (the run succeeded but no
  verify step succeeded, so nothing shows the service is back) and ``no_target``
  (recovered, but no severity or an unknown one gives no target).

The targets come from the decision matrix of ``module_utils/policy.py`` (the
``rollback_decision`` filter's data), never from a copy here.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import re
import tempfile

from ansible_collections.sre.rollback.plugins.module_utils.policy import (
    PolicyError,
    build_matrix,
    normalise_severity_name,
    normalise_situation,
)

SCHEMA = "sre.rollback/incident-record/v1"

PHASES = ("detect", "decide", "act", "verify", "notify", "record")
# Words people and the collection's roles already use for the same phases
# ("Report | ..." is how the roles name their closing summary).
PHASE_ALIASES = {
    "detection": "detect", "decision": "decide", "action": "act", "rollback": "act",
    "verification": "verify", "notification": "notify", "report": "record", "reporting": "record",
}
UNPHASED = "other"
STATUSES = ("ok", "changed", "failed", "skipped", "unreachable")
SUCCEEDED = ("ok", "changed")
META_KEYS = ("incident_id", "severity", "component", "env", "detected_at")

# Result keys kept by default: the collection's modules keep before/after
# summaries secret-free (design.md), and the rest are numbers or verdicts.
DEFAULT_RESULT_KEYS = (
    "before", "after", "duration_s", "healthy", "verdict", "error_rate", "swapped", "rolled_back",
    "reverted", "rc", "attempts", "skip_reason",
)
MESSAGE_LIMIT = 300
RESULT_VALUE_LIMIT = 2000

PHASE_COLOURS = {
    "detect": "#6f42c1", "decide": "#1f6feb", "act": "#d97706", "verify": "#15803d",
    "notify": "#0e7490", "record": "#6b7280", UNPHASED: "#9ca3af",
}
STATUS_COLOURS = {"failed": "#dc2626", "unreachable": "#991b1b"}

_PHASE_PREFIX_RE = re.compile(r"^\s*([A-Za-z]+)\s*\|\s*(.*)$", re.S)
_UNSAFE_DIR_CHARS_RE = re.compile(r"[^A-Za-z0-9._-]+")


class IncidentRecordError(ValueError):
    """A value the record cannot use (an unparseable time); the message says what is accepted."""


# ---- small helpers -------------------------------------------------------------


def normalise_phase(value):
    """``Act``, ``ACT``, ``phase_act``, ``report`` -> ``act`` / ``record``; None when not a phase."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text.startswith("phase_"):
        text = text[len("phase_"):]
    text = PHASE_ALIASES.get(text, text)
    return text if text in PHASES else None


def phase_from_tags(tags):
    """The phase named by a ``phase_<name>`` tag, or None; two different phase tags are ambiguous (None)."""
    found = {normalise_phase(tag) for tag in tags or () if isinstance(tag, str) and tag.lower().startswith("phase_")}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def split_phase_prefix(name):
    """``Act | swap the build`` -> (``act``, ``swap the build``); a role prefix (``role : ``) is dropped."""
    text = (name or "").split(" : ", 1)[-1]
    match = _PHASE_PREFIX_RE.match(text)
    if match:
        phase = normalise_phase(match.group(1))
        if phase:
            return phase, match.group(2).strip()
    return None, text.strip()


def parse_time(value):
    """ISO 8601 (``2026-01-02T03:04:05Z``, with or without offset) or epoch seconds -> epoch float.

    A time without an offset is taken as UTC, as the runbooks write times.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise IncidentRecordError("detected_at must be an ISO 8601 time or epoch seconds, got %r" % (value,))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise IncidentRecordError(
                "detected_at must be an ISO 8601 time such as 2026-01-02T03:04:05Z or epoch seconds, got %r"
                % (value,)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def iso(epoch):
    """Epoch seconds -> ``2026-01-02T03:04:05.123Z``; None stays None."""
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def format_duration(seconds):
    """A duration as a person reads it: ``42.3 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return "%.1f s" % seconds
    whole = int(round(seconds))
    if whole < 3600:
        return "%d min %02d s" % (whole // 60, whole % 60)
    return "%d h %02d min" % (whole // 3600, (whole % 3600) // 60)


def truncate(text, limit=MESSAGE_LIMIT):
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def safe_result(result, keys=DEFAULT_RESULT_KEYS, limit=RESULT_VALUE_LIMIT):
    """Only the named keys of a task result, each JSON-safe and at most ``limit`` characters serialised.

    A value too long to keep is replaced by a note saying how long it was, so a
    record never balloons with a module's full output.
    """
    kept = {}
    if not isinstance(result, dict):
        return kept
    for key in keys:
        if key not in result:
            continue
        try:
            text = json.dumps(result[key], sort_keys=True, default=str)
        except (TypeError, ValueError):
            continue
        if len(text) > limit:
            kept[key] = "(omitted: %d characters)" % len(text)
        else:
            kept[key] = json.loads(text)
    return kept


def recovery_target(severity, matrix=None):
    """The recovery-time target of a severity, from the rollback_decision matrix.

    ``severity`` is a matrix severity (``P1``, ``sev1``, ``1``...) or a recovery class
    of mvp011 (``critical``, ``performance``, ``feature``, ``non-critical``).
    Returns ``{severity, label, recovery_class, target_s}`` or raises
    :class:`IncidentRecordError` naming the accepted values.
    """
    try:
        policy = build_matrix(matrix or None)
    except PolicyError as exc:
        raise IncidentRecordError("rollback_decision_matrix: %s" % exc) from None
    severities = policy["severities"]
    name = normalise_severity_name(severity)
    if name in severities:
        entry = severities[name]
    else:
        wanted = normalise_situation(severity)
        matches = [key for key, item in severities.items() if item.get("recovery_class") == wanted]
        if not matches:
            classes = sorted({item["recovery_class"] for item in severities.values()})
            raise IncidentRecordError("unknown severity %r; accepted: %s or a recovery class (%s)"
                                      % (severity, ", ".join(severities), ", ".join(classes)))
        name = matches[0]
        entry = severities[name]
    return {"severity": name, "label": entry["label"], "recovery_class": entry["recovery_class"],
            "target_s": entry["recovery_target_s"]}


def union_length(intervals):
    """Length of the union of (start, end) intervals: time some step of a phase was running."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


# ---- the model -----------------------------------------------------------------


class Step:
    """One task on one host: when, how long, which phase, how it ended, and only secret-free details."""

    def __init__(self, host, task, phase, status, started, ended, play=None, role=None, module=None,
                 phase_source=None, ignored=False, message=None, result=None, no_log=False, items=None):
        if status not in STATUSES:
            raise IncidentRecordError("status must be one of %s, got %r" % (", ".join(STATUSES), status))
        self.host = host
        self.task = task
        self.phase = normalise_phase(phase) or UNPHASED
        self.phase_source = phase_source
        self.status = status
        self.started = float(started)
        self.ended = max(float(ended), self.started)
        self.play = play
        self.role = role
        self.no_log = bool(no_log)
        self.ignored = bool(ignored) and status == "failed"
        # A no_log task keeps its name, status and timing, nothing it ran with or returned.
        self.module = None if self.no_log else module
        self.message = None if self.no_log or status not in ("failed", "unreachable") else truncate(message)
        self.result = {} if self.no_log else dict(result or {})
        self.items = None if self.no_log else items

    @property
    def duration_s(self):
        return self.ended - self.started

    @property
    def succeeded(self):
        return self.status in SUCCEEDED

    @property
    def counts_as_failure(self):
        return self.status == "unreachable" or (self.status == "failed" and not self.ignored)

    def to_dict(self, origin):
        data = {
            "host": self.host, "play": self.play, "role": self.role, "task": self.task,
            "phase": self.phase, "phase_source": self.phase_source, "status": self.status,
            "ignored": self.ignored, "module": self.module,
            "started": iso(self.started), "ended": iso(self.ended),
            "offset_s": round(self.started - origin, 3), "duration_s": round(self.duration_s, 3),
            "no_log": self.no_log,
        }
        if self.message:
            data["message"] = self.message
        if self.result:
            data["result"] = self.result
        if self.items is not None:
            data["items"] = self.items
        return data


class IncidentRecord:
    """The steps of a run plus the incident's metadata -> phases, recovery time, verdict, reports."""

    def __init__(self, playbook=None, started=None, ended=None, meta=None, steps=None, host_stats=None,
                 matrix=None, warnings=None, detection_hint=None):
        self.playbook = playbook
        self.started = started
        self.ended = ended
        self.meta = {key: None for key in META_KEYS}
        self.meta.update({key: value for key, value in (meta or {}).items() if key in META_KEYS})
        self.steps = list(steps or [])
        # {host: {"failures": n, "unreachable": n, ...}} from Ansible's recap; None -> judge by the steps.
        self.host_stats = host_stats
        self.matrix = matrix
        self.warnings = list(warnings or [])
        # (time, source) of a detection a step reported, e.g. rollback_trigger's fired_at:
        # used when no detected_at was given, before the first detect step.
        self.detection_hint = detection_hint

    # ---- accounting ----

    def add(self, step):
        self.steps.append(step)

    def ordered_steps(self):
        return sorted(self.steps, key=lambda step: (step.started, step.ended))

    def _bounds(self):
        starts = [step.started for step in self.steps]
        ends = [step.ended for step in self.steps]
        started = self.started if self.started is not None else (min(starts) if starts else None)
        ended = self.ended if self.ended is not None else (max(ends) if ends else started)
        return started, ended

    def detection(self):
        """(epoch, source) of the moment the recovery clock starts."""
        given = self.meta.get("detected_at")
        if given not in (None, ""):
            try:
                return parse_time(given), "detected_at"
            except IncidentRecordError as exc:
                self._warn(str(exc) + "; the recovery clock starts at the first detect step instead")
        if self.detection_hint and self.detection_hint[0] not in (None, ""):
            try:
                return parse_time(self.detection_hint[0]), self.detection_hint[1]
            except IncidentRecordError as exc:
                self._warn("%s: %s" % (self.detection_hint[1], exc))
        detect = [step.started for step in self.steps if step.phase == "detect"]
        if detect:
            return min(detect), "first detect step"
        started, _ended = self._bounds()
        return started, "playbook start"

    def origin(self):
        """Time zero of the chart and of every offset: the earlier of detection and playbook start."""
        started, _ended = self._bounds()
        detected, _source = self.detection()
        candidates = [value for value in (started, detected) if value is not None]
        return min(candidates) if candidates else 0.0

    def _warn(self, text):
        if text not in self.warnings:
            self.warnings.append(text)

    def failed_hosts(self):
        if self.host_stats is not None:
            return sorted(host for host, stats in self.host_stats.items()
                          if stats.get("failures", 0) or stats.get("unreachable", 0))
        return sorted({step.host for step in self.steps if step.counts_as_failure})

    def target(self):
        severity = self.meta.get("severity")
        if severity in (None, ""):
            return None
        try:
            return recovery_target(severity, self.matrix)
        except IncidentRecordError as exc:
            self._warn(str(exc))
            return None

    def recovery(self):
        detected_at, detected_from = self.detection()
        verified = [step for step in self.steps if step.phase == "verify" and step.succeeded]
        recovered_at = max((step.ended for step in verified), default=None)
        failed_hosts = self.failed_hosts()
        target = self.target()
        target_s = target["target_s"] if target else None
        recovery_time_s = None
        if recovered_at is not None and detected_at is not None and not failed_hosts:
            recovery_time_s = max(recovered_at - detected_at, 0.0)

        if failed_hosts:
            verdict = "not_recovered"
            failures = [step for step in self.ordered_steps() if step.counts_as_failure]
            if failures:
                last = failures[-1]
                reason = "the run failed: %s on %s %s%s" % (
                    last.task, last.host, last.status, (" (%s)" % last.message) if last.message else "")
            else:
                reason = "the run failed on %s" % ", ".join(failed_hosts)
        elif recovered_at is None:
            verdict = "unverified"
            reason = "no verify step succeeded, so nothing shows the service recovered"
        elif target_s is None:
            verdict = "no_target"
            if target:
                why = "severity %s has none" % target["severity"]
            elif self.meta.get("severity") not in (None, ""):
                why = "unknown severity %r" % self.meta["severity"]
            else:
                why = "no severity given"
            reason = "recovered in %s; no target (%s)" % (format_duration(recovery_time_s), why)
        elif recovery_time_s <= target_s:
            verdict = "met"
            reason = "recovered in %s, within the %s target of %s" % (
                format_duration(recovery_time_s), target["severity"], format_duration(target_s))
        else:
            verdict = "missed"
            reason = "recovered in %s, %s over the %s target of %s" % (
                format_duration(recovery_time_s), format_duration(recovery_time_s - target_s),
                target["severity"], format_duration(target_s))
        return {
            "detected_at": iso(detected_at),
            "detected_from": detected_from,
            "recovered_at": iso(recovered_at) if not failed_hosts else None,
            "recovered": verdict in ("met", "missed", "no_target"),
            "recovery_time_s": round(recovery_time_s, 3) if recovery_time_s is not None else None,
            "target_s": target_s,
            "severity": target["severity"] if target else self.meta.get("severity"),
            "severity_label": target["label"] if target else None,
            "recovery_class": target["recovery_class"] if target else None,
            "verdict": verdict,
            "reason": reason,
            "failed_hosts": failed_hosts,
        }

    def phases(self):
        """Per phase, in the runbook's order: span, time busy, step counts."""
        origin = self.origin()
        summary = []
        for phase in PHASES + (UNPHASED,):
            steps = [step for step in self.steps if step.phase == phase and step.status != "skipped"]
            if not steps:
                continue
            start = min(step.started for step in steps)
            end = max(step.ended for step in steps)
            summary.append({
                "phase": phase,
                "started": iso(start),
                "ended": iso(end),
                "offset_s": round(start - origin, 3),
                "span_s": round(end - start, 3),
                "busy_s": round(union_length([(step.started, step.ended) for step in steps]), 3),
                "steps": len(steps),
                "failed": sum(1 for step in steps if step.counts_as_failure),
            })
        return summary

    def record_name(self):
        """The record's directory name: the incident id made path-safe, else the run's UTC start time."""
        incident = self.meta.get("incident_id")
        if incident not in (None, ""):
            name = re.sub(r"\.{2,}", ".", _UNSAFE_DIR_CHARS_RE.sub("-", str(incident))).strip(".-")
            if name:
                return name[:100]
        started, _ended = self._bounds()
        moment = datetime.datetime.fromtimestamp(started or 0, tz=datetime.timezone.utc)
        return moment.strftime("%Y%m%dT%H%M%SZ")

    def to_dict(self):
        origin = self.origin()
        started, ended = self._bounds()
        recovery = self.recovery()
        phases = self.phases()
        return {
            "schema": SCHEMA,
            "incident": {key: (None if self.meta.get(key) in (None, "") else str(self.meta[key]))
                         for key in META_KEYS},
            "playbook": self.playbook,
            "started": iso(started),
            "ended": iso(ended),
            "duration_s": round(ended - started, 3) if started is not None and ended is not None else None,
            "origin": iso(origin),
            "recovery": recovery,
            "phases": phases,
            "steps": [step.to_dict(origin) for step in self.ordered_steps()],
            "hosts": self.host_stats,
            "warnings": list(self.warnings),
        }

    # ---- renderers ----

    def render_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str) + "\n"

    def render_markdown(self):
        return render_markdown(self.to_dict())

    def render_html(self):
        return render_html(self.to_dict())

    def write(self, directory):
        """Write incident.json, incident.md and incident.html into ``directory/<record_name>/``.

        Each file is written to a temporary name and renamed, so a reader never
        sees half a record. Returns the three paths.
        """
        target = os.path.join(directory, self.record_name())
        os.makedirs(target, exist_ok=True)
        data = self.to_dict()
        contents = {
            "incident.json": json.dumps(data, indent=2, default=str) + "\n",
            "incident.md": render_markdown(data),
            "incident.html": render_html(data),
        }
        paths = []
        for name, text in contents.items():
            path = os.path.join(target, name)
            handle, temporary = tempfile.mkstemp(prefix="." + name, dir=target)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(text)
                os.replace(temporary, path)
            except BaseException:
                if os.path.exists(temporary):
                    os.remove(temporary)
                raise
            paths.append(path)
        return paths


# ---- renderers (from the record's dict, so a stored incident.json can be re-rendered) ----

VERDICT_WORDS = {
    "met": "target met",
    "missed": "target missed",
    "not_recovered": "not recovered",
    "unverified": "recovery not verified",
    "no_target": "recovered, no target",
}


def _headline(data):
    recovery = data["recovery"]
    time_text = format_duration(recovery["recovery_time_s"])
    target_text = format_duration(recovery["target_s"]) if recovery["target_s"] is not None else "none"
    return time_text, target_text, VERDICT_WORDS.get(recovery["verdict"], recovery["verdict"])


def _md_cell(value):
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def render_markdown(data):
    incident, recovery = data["incident"], data["recovery"]
    time_text, target_text, verdict_text = _headline(data)
    title = incident["incident_id"] or data["started"]
    lines = [
        "# Incident %s: %s" % (_md_cell(title), verdict_text),
        "",
        "| | |",
        "|---|---|",
        "| Severity | %s |" % _md_cell(" ".join(filter(None, [
            recovery["severity"], "(%s)" % recovery["severity_label"] if recovery["severity_label"] else None,
            recovery["recovery_class"] and "class %s" % recovery["recovery_class"]])) or "not given"),
        "| Component | %s |" % _md_cell(incident["component"] or "not given"),
        "| Environment | %s |" % _md_cell(incident["env"] or "not given"),
        "| Playbook | %s |" % _md_cell(data["playbook"]),
        "| Detected | %s (%s) |" % (_md_cell(recovery["detected_at"]), _md_cell(recovery["detected_from"])),
        "| Recovered | %s |" % _md_cell(recovery["recovered_at"] or "no"),
        "| Recovery time | %s (target %s) |" % (time_text, target_text),
        "| Verdict | **%s**: %s |" % (verdict_text, _md_cell(recovery["reason"])),
        "| Run | %s to %s (%s) |" % (_md_cell(data["started"]), _md_cell(data["ended"]),
                                     format_duration(data["duration_s"])),
        "",
        "## Phases",
        "",
        "| Phase | Starts at | Span | Busy | Steps | Failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase in data["phases"]:
        lines.append("| %s | +%.1f s | %s | %s | %d | %d |" % (
            phase["phase"], phase["offset_s"], format_duration(phase["span_s"]),
            format_duration(phase["busy_s"]), phase["steps"], phase["failed"]))
    lines += [
        "",
        "## Steps",
        "",
        "| # | At | Duration | Phase | Host | Step | Status | Note |",
        "|---:|---:|---:|---|---|---|---|---|",
    ]
    for number, step in enumerate(data["steps"], 1):
        status = step["status"] + (" (ignored)" if step["ignored"] else "")
        note = step.get("message") or ("no_log" if step["no_log"] else "")
        lines.append("| %d | +%.1f s | %s | %s | %s | %s | %s | %s |" % (
            number, step["offset_s"], format_duration(step["duration_s"]), step["phase"],
            _md_cell(step["host"]), _md_cell(step["task"]), status, _md_cell(note)))
    if data["warnings"]:
        lines += ["", "## Warnings", ""] + ["- %s" % _md_cell(text) for text in data["warnings"]]
    lines += ["", "Times are UTC. Offsets count from %s. Written by the sre.rollback.recovery_timeline callback."
              % data["origin"], ""]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;color:#fff;font-weight:600;font-size:18px}
.good{background:#15803d}.bad{background:#dc2626}.neutral{background:#6b7280}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left}
th{background:#f3f4f6}.num{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{color:#6b7280}.failed{color:#dc2626;font-weight:600}
"""


def _verdict_class(verdict):
    return {"met": "good", "missed": "bad", "not_recovered": "bad"}.get(verdict, "neutral")


def _svg_chart(data):
    """A Gantt-like chart: one lane per step (skipped steps left out), grouped by phase, over time.

    Vertical lines mark the detection, the recovery and the target deadline. A
    deadline far beyond the run (a 7 s recovery against a 2 min target) would
    squeeze every bar into a corner, so it is then named at the right edge instead.
    """
    steps = [step for step in data["steps"] if step["status"] != "skipped"]
    recovery = data["recovery"]
    origin = parse_time(data["origin"])
    marks = []
    if recovery["detected_at"]:
        marks.append(("detected", parse_time(recovery["detected_at"]) - origin, "#6f42c1", ""))
    if recovery["recovered_at"]:
        marks.append(("recovered", parse_time(recovery["recovered_at"]) - origin, "#15803d", ""))
    horizon = max([step["offset_s"] + step["duration_s"] for step in steps] + [mark[1] for mark in marks] + [1.0])
    off_scale = None
    if recovery["target_s"] is not None and recovery["detected_at"]:
        deadline = marks[0][1] + recovery["target_s"]
        if deadline <= horizon * 1.5:
            marks.append(("target", deadline, "#dc2626", ' stroke-dasharray="5,4"'))
            horizon = max(horizon, deadline)
        else:
            off_scale = deadline
    label_w, chart_w, right_w, row_h, top = 320, 620, 150, 18, 30
    order = {phase: index for index, phase in enumerate(PHASES + (UNPHASED,))}
    steps.sort(key=lambda step: (order.get(step["phase"], 99), step["offset_s"]))
    rows = []
    for step in steps:
        if not rows or rows[-1][0] == "step" and rows[-1][1]["phase"] != step["phase"]:
            rows.append(("phase", step["phase"]))
        rows.append(("step", step))
    chart_bottom = top + row_h * len(rows) + 4
    height = chart_bottom + 16 * max(len(marks), 1) + 8
    width = label_w + chart_w + right_w

    def x_of(seconds):
        return label_w + chart_w * max(seconds, 0.0) / horizon

    # Font attributes on the svg element itself, so the chart reads the same outside the page.
    parts = ['<svg role="img" aria-label="Recovery timeline" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="sans-serif" font-size="11">' % (width, height, width, height)]
    step_s = _tick_step(horizon)
    tick = 0.0
    while tick <= horizon + 1e-9:
        x = x_of(tick)
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e7eb"/>' % (x, top - 6, x, chart_bottom))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#6b7280">%s</text>'
                     % (x, top - 10, html.escape(_tick_label(tick))))
        tick += step_s
    y = top
    for kind, item in rows:
        if kind == "phase":
            phase_steps = [step for step in steps if step["phase"] == item]
            start = min(step["offset_s"] for step in phase_steps)
            end = max(step["offset_s"] + step["duration_s"] for step in phase_steps)
            colour = PHASE_COLOURS.get(item, PHASE_COLOURS[UNPHASED])
            parts.append('<text x="4" y="%d" font-weight="bold" fill="%s">%s</text>'
                         % (y + 13, colour, html.escape(item.upper())))
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.3">'
                         '<title>%s: +%.1f s to +%.1f s</title></rect>'
                         % (x_of(start), y + 3, max(x_of(end) - x_of(start), 2.0), row_h - 6, colour,
                            html.escape(item), start, end))
        else:
            step = item
            colour = STATUS_COLOURS.get(step["status"]) if not step["ignored"] else None
            colour = colour or PHASE_COLOURS.get(step["phase"], PHASE_COLOURS[UNPHASED])
            label = "%s (%s)" % (step["task"], step["host"])
            label = label if len(label) <= 50 else label[:49] + "\u2026"
            parts.append('<text x="14" y="%d" fill="#111827">%s</text>' % (y + 13, html.escape(label)))
            start_x = x_of(step["offset_s"])
            width_px = max(x_of(step["offset_s"] + step["duration_s"]) - start_x, 2.0)
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s">'
                         '<title>%s on %s: %s, +%.2f s, %.2f s</title></rect>'
                         % (start_x, y + 3, width_px, row_h - 6, colour, html.escape(step["task"]),
                            html.escape(step["host"]), html.escape(step["status"]),
                            step["offset_s"], step["duration_s"]))
            if step["status"] in ("failed", "unreachable"):
                parts.append('<text x="%.1f" y="%d" fill="%s">%s</text>'
                             % (start_x + width_px + 4, y + 13, colour,
                                html.escape(step["status"] + (" (ignored)" if step["ignored"] else ""))))
        y += row_h
    # One caption line per mark under the chart, so captions of close marks never overlap.
    for index, (name, seconds, colour, dash) in enumerate(marks):
        x = x_of(seconds)
        caption_y = chart_bottom + 14 + 16 * index
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"%s/>'
                     % (x, top - 4, x, caption_y - 10, colour, dash))
        parts.append('<text x="%.1f" y="%d" fill="%s">%s +%.1f s</text>' % (x + 3, caption_y, colour, name, seconds))
    if off_scale is not None:
        parts.append('<text x="%d" y="%d" fill="#dc2626">target at +%.1f s \u2192</text>'
                     % (label_w + chart_w + 6, top + 2, off_scale))
    parts.append("</svg>")
    return "\n".join(parts)


def _tick_step(horizon):
    raw = horizon / 6.0
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _tick_label(seconds):
    if seconds >= 120:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return ("%g" % round(seconds, 2)) + "s"


def render_html(data):
    incident, recovery = data["incident"], data["recovery"]
    time_text, target_text, verdict_text = _headline(data)
    esc = html.escape
    title = incident["incident_id"] or data["started"]
    meta_rows = [
        ("Severity", " ".join(filter(None, [
            recovery["severity"], "(%s)" % recovery["severity_label"] if recovery["severity_label"] else None,
            recovery["recovery_class"] and "class %s" % recovery["recovery_class"]])) or "not given"),
        ("Component", incident["component"] or "not given"),
        ("Environment", incident["env"] or "not given"),
        ("Playbook", data["playbook"]),
        ("Detected", "%s (%s)" % (recovery["detected_at"], recovery["detected_from"])),
        ("Recovered", recovery["recovered_at"] or "no"),
        ("Why", recovery["reason"]),
        ("Run", "%s to %s (%s)" % (data["started"], data["ended"], format_duration(data["duration_s"]))),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>Incident %s: %s</title>" % (esc(str(title)), esc(verdict_text)),
        "<style>%s</style>" % _CSS,
        "</head>",
        "<body>",
        "<h1>Incident %s</h1>" % esc(str(title)),
        '<p><span class="verdict %s">Recovery %s / target %s: %s</span></p>'
        % (_verdict_class(recovery["verdict"]), esc(time_text), esc(target_text), esc(verdict_text)),
        '<table class="meta">',
    ]
    out += ["<tr><td>%s</td><td>%s</td></tr>" % (esc(name), esc(str(value))) for name, value in meta_rows]
    out += ["</table>", "<h2>Timeline</h2>", _svg_chart(data), "<h2>Phases</h2>",
            "<table><tr><th>Phase</th><th>Starts at</th><th>Span</th><th>Busy</th><th>Steps</th><th>Failed</th></tr>"]
    for phase in data["phases"]:
        out.append('<tr><td>%s</td><td class="num">+%.1f s</td><td class="num">%s</td><td class="num">%s</td>'
                   '<td class="num">%d</td><td class="num">%d</td></tr>'
                   % (esc(phase["phase"]), phase["offset_s"], esc(format_duration(phase["span_s"])),
                      esc(format_duration(phase["busy_s"])), phase["steps"], phase["failed"]))
    out += ["</table>", "<h2>Steps</h2>",
            "<table><tr><th>#</th><th>At</th><th>Duration</th><th>Phase</th><th>Host</th><th>Step</th>"
            "<th>Status</th><th>Note</th></tr>"]
    for number, step in enumerate(data["steps"], 1):
        status = step["status"] + (" (ignored)" if step["ignored"] else "")
        css = ' class="failed"' if step["status"] in ("failed", "unreachable") and not step["ignored"] else ""
        note = step.get("message") or ("no_log" if step["no_log"] else "")
        out.append('<tr><td class="num">%d</td><td class="num">+%.1f s</td><td class="num">%s</td><td>%s</td>'
                   "<td>%s</td><td>%s</td><td%s>%s</td><td>%s</td></tr>"
                   % (number, step["offset_s"], esc(format_duration(step["duration_s"])), esc(step["phase"]),
                      esc(step["host"]), esc(step["task"]), css, esc(status), esc(note)))
    out.append("</table>")
    if data["warnings"]:
        out.append("<h2>Warnings</h2><ul>%s</ul>" % "".join("<li>%s</li>" % esc(text) for text in data["warnings"]))
    out += ["<p>Times are UTC; offsets count from %s. Written by the sre.rollback.recovery_timeline callback.</p>"
            % esc(str(data["origin"])), "</body>", "</html>", ""]
    return "\n".join(out)
