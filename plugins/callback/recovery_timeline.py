# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: recovery_timeline
type: aggregate
short_description: Time every rollback step by phase and write the incident record with its recovery time
version_added: 0.1.0
author:
  - sre.rollback maintainers (@sre-rollback)
description:
  - Records each task on each host with its start, end, duration, status (ok, changed, failed, skipped,
    unreachable), module and phase (detect, decide, act, verify, notify, record).
  - The phase of a step is the first found of the task's own C(phase_<name>) tag or C(rollback_phase) var,
    the task name's prefix before C(|) as the collection's roles write it (C(Act | swap the build)),
    then the same tag or var on each enclosing block and include, innermost first, then on the role, then on the play.
    Without any, the collection's own modules give it (C(notify) is notify, C(github_issue) is record,
    the C(*_info) modules, C(health_check) and C(rollback_trigger) are detect before the first act step and
    verify after it, every other module of the collection is act); anything else is C(other).
  - The incident comes from the play and extra vars C(incident_id), C(severity), C(component), C(env) and
    C(detected_at) (ISO 8601 or epoch seconds, for a detection made before the playbook started),
    from a later C(set_fact) of the same names, or from C(set_stats) data under the key C(incident).
  - Recovery time runs from C(detected_at), else the C(fired_at) of the first
    P(sre.rollback.rollback_trigger#module) that fired, else the start of the first detect step, else the playbook start,
    to the end of the last verify step that succeeded. It counts only when no host failed or was unreachable
    and a verify step succeeded. It is compared with the target of the severity in the
    P(sre.rollback.rollback_decision#filter) matrix (P1 to P4 or critical, performance, feature, non-critical;
    the play var C(rollback_decision_matrix) overrides it as the filter's O(sre.rollback.rollback_decision#filter:matrix) does).
  - Verdict C(met), C(missed), C(not_recovered), C(unverified) (no verify step succeeded) or C(no_target).
  - Writes C(incident.json), C(incident.md) and C(incident.html) (one page with an inline SVG timeline,
    nothing fetched from the network) into C(<incident_dir>/<incident_id or UTC start time>/), overwriting
    the record of an earlier run of the same incident, and prints a summary.
  - Never records task arguments or whole results. It keeps the name, status and timing of a C(no_log) task and
    nothing else, the C(msg) of a failure (truncated to 300 characters) and only the result keys in O(result_keys).
  - A record that cannot be written is a warning; it never fails the play.
requirements:
  - enable in ansible.cfg with C(callbacks_enabled = sre.rollback.recovery_timeline)
options:
  incident_dir:
    description:
      - Directory the incident records are written into, one sub-directory per incident.
      - When unset, the C(incidents) directory inside the ansible-runner artifact directory
        (C(AWX_ISOLATED_DATA_DIR), set by ansible-runner and so by AWX), else C(artifacts/incidents) inside
        C(AWX_PRIVATE_DATA_DIR), else C(incidents) in the current directory.
    type: path
    env:
      - name: SRE_ROLLBACK_INCIDENT_DIR
    ini:
      - section: recovery_timeline
        key: incident_dir
  result_keys:
    description:
      - The keys of a task result copied into the record. The defaults are secret-free summaries
        the collection's modules return. Add a key only if no module you run puts a secret in it.
    type: list
    elements: str
    default: [before, after, duration_s, healthy, verdict, error_rate, swapped, rolled_back, reverted, rc, attempts,
              skip_reason]
    env:
      - name: SRE_ROLLBACK_INCIDENT_RESULT_KEYS
    ini:
      - section: recovery_timeline
        key: result_keys
  show_steps:
    description:
      - Print every step of every host in the end-of-run summary, not only the recovery time and verdict.
      - The steps are in the incident record either way.
    type: bool
    default: true
    env:
      - name: SRE_ROLLBACK_TIMELINE_STEPS
    ini:
      - section: recovery_timeline
        key: show_steps
seealso:
  - plugin: sre.rollback.rollback_decision
    plugin_type: filter
"""

import os
import time

from ansible.plugins.callback import CallbackBase
from ansible.utils.sentinel import Sentinel

from ansible_collections.sre.rollback.plugins.module_utils.incident_record import (
    META_KEYS,
    PHASES,
    UNPHASED,
    IncidentRecord,
    Step,
    format_duration,
    normalise_phase,
    phase_from_tags,
    safe_result,
    split_phase_prefix,
    union_length,
)

PHASE_VAR = "rollback_phase"
MATRIX_VAR = "rollback_decision_matrix"
# Housekeeping that is not a step of the rollback.
UNTIMED_ACTIONS = {
    "include_tasks", "include_role", "import_tasks", "import_role", "include_vars", "meta", "validate_argument_spec",
}
SET_FACT_ACTIONS = {"set_fact"}
# Phases of the collection's own modules, used only when nothing else names one.
# "observe": detect before the first act step of the run, verify after it.
OBSERVING_MODULES = {"health_check", "rollback_trigger"}  # and every *_info module
MODULE_PHASES = {"notify": "notify", "github_issue": "record"}
COLLECTION_PREFIX = "sre.rollback."


def short_action(action):
    """``ansible.builtin.set_fact`` / ``ansible.legacy.set_fact`` -> ``set_fact``."""
    action = str(action or "")
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if action.startswith(prefix):
            return action[len(prefix):]
    return action


def own(node, attribute):
    """A playbook object's own value of an attribute, not what it inherits (None when unset)."""
    value = getattr(node, "_" + attribute, None)
    return None if value is Sentinel else value


def lineage(task, play, originals=None):
    """The task, then each enclosing block / include (innermost first), its role(s), then the play.

    ``originals`` maps a task uuid to the task as written: an include's blocks hang
    under the copy of the include that ran, whose own tags and vars are already merged.
    """
    nodes, seen_roles = [], set()
    node = task
    while node is not None:
        node = (originals or {}).get(getattr(node, "_uuid", None), node) if describe(node) == "task" else node
        nodes.append(node)
        role = getattr(node, "_role", None)
        parent = getattr(node, "_parent", None)
        if role is not None and id(role) not in seen_roles and getattr(parent, "_role", None) is not role:
            seen_roles.add(id(role))
            nodes.append(role)
        node = parent
    if play is not None:
        nodes.append(play)
    return nodes


def describe(node):
    kind = type(node).__name__.lower()
    if kind in ("task", "handler", "taskinclude", "includerole", "handlertaskinclude"):
        return "task"
    return kind


def phase_of_node(node, is_step):
    """(phase, source) that one playbook object names for itself, or (None, None)."""
    kind = describe(node)
    phase = phase_from_tags(own(node, "tags") or [])
    if phase:
        return phase, "tag on %s" % ("the task" if is_step else "the enclosing " + ("include" if kind == "task" else kind))
    if kind == "role":
        variables = {}
        for attribute in ("default_vars", "role_vars", "role_params"):
            value = getattr(node, "_" + attribute, None)
            if isinstance(value, dict):
                variables.update(value)
    else:
        variables = own(node, "vars") or {}
    phase = normalise_phase(variables.get(PHASE_VAR)) if isinstance(variables, dict) else None
    if phase:
        return phase, "%s on %s" % (PHASE_VAR, "the task" if is_step else "the enclosing " + ("include" if kind == "task" else kind))
    if kind == "task":
        name = node.get_name() if is_step else (own(node, "name") or "")
        phase, _title = split_phase_prefix(str(name))
        if phase:
            return phase, "name prefix of %s" % ("the task" if is_step else "the enclosing include")
    return None, None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sre.rollback.recovery_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = IncidentRecord()
        self.play = None
        self.play_name = None
        self.started = {}
        self.task_started = {}
        # The task objects as written in the playbook, by uuid: a result carries a
        # copy whose own tags and vars already hold everything it inherited.
        self.tasks = {}
        self.acted = False

    # ---- events -------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        self.record.started = time.time()
        self.record.playbook = os.path.basename(getattr(playbook, "_file_name", "") or "") or None

    def v2_playbook_on_play_start(self, play):
        self.play = play
        self.play_name = play.get_name()
        self._guard(self._read_play_vars, play)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_started[task._uuid] = time.time()
        self.tasks[task._uuid] = task

    def v2_playbook_on_handler_task_start(self, task):
        self.task_started[task._uuid] = time.time()
        self.tasks[task._uuid] = task

    def v2_runner_on_start(self, host, task):
        self.started[(task._uuid, host.get_name())] = time.time()
        self.tasks.setdefault(task._uuid, task)

    def v2_runner_on_ok(self, result):
        self._guard(self._record, result, "changed" if result_dict(result).get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._guard(self._record, result, "failed", ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._guard(self._record, result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._guard(self._record, result, "unreachable")

    # No v2_runner_on_async_ok / _failed: an async task polled to its end also
    # ends with v2_runner_on_ok / _failed, and recording both would count it twice.

    def v2_playbook_on_stats(self, stats):
        self._guard(self._finish, stats)

    # ---- work ---------------------------------------------------------------

    def _guard(self, function, *args):
        """The record must never fail or stop a rollback: a fault here is a warning."""
        try:
            function(*args)
        except Exception as exc:  # pylint: disable=broad-except
            self._display.warning("recovery_timeline: %s: %s" % (type(exc).__name__, exc))

    def _read_play_vars(self, play):
        """Incident metadata from the play and extra vars, templated; the first play that names a key wins."""
        wanted = [key for key in META_KEYS if self.record.meta.get(key) in (None, "")]
        if self.record.matrix is None:
            wanted.append(MATRIX_VAR)
        manager = play.get_variable_manager()
        if not wanted or manager is None:
            return
        variables = manager.get_vars(play=play, include_hostvars=False)
        from ansible.template import Templar  # imported late: only needed with a variable manager
        templar = Templar(loader=play.get_loader(), variables=variables)
        for key in wanted:
            if key not in variables:
                continue
            try:
                value = templar.template(variables[key])
            except Exception as exc:  # pylint: disable=broad-except
                self.record.warnings.append("could not resolve %s: %s" % (key, exc))
                continue
            if key == MATRIX_VAR:
                self.record.matrix = value if isinstance(value, dict) else None
            elif value not in (None, ""):
                self.record.meta[key] = value if key == "detected_at" and isinstance(value, (int, float)) else str(value)

    def _record(self, result, status, ignore_errors=False):
        task, host = result_task(result), result_host(result)
        action = short_action(task.action)
        if action in UNTIMED_ACTIONS:
            return
        data = result_dict(result)
        now = time.time()
        host_name = host.get_name()
        began = self.started.pop((task._uuid, host_name), None) or self.task_started.get(task._uuid, now)
        no_log = bool(data.get("_ansible_no_log")) or task.no_log is True
        module = module_name(task)
        phase, source = self._phase(task, module)
        if phase == "act" and status != "skipped":
            self.acted = True
        if (module == COLLECTION_PREFIX + "rollback_trigger" and not no_log and data.get("fired_at")
                and self.record.detection_hint is None):
            self.record.detection_hint = (data["fired_at"], "rollback_trigger fired_at")
        if action in SET_FACT_ACTIONS and status == "ok" and not no_log:
            facts = data.get("ansible_facts") or {}
            for key in META_KEYS:
                if facts.get(key) not in (None, ""):
                    self.record.meta[key] = facts[key]
        items = data.get("results")
        self.record.add(Step(
            host=host_name,
            task=split_phase_prefix(task.get_name())[1] if source and source.startswith("name prefix of the task")
            else task.get_name(),
            phase=phase,
            phase_source=source,
            status=status,
            started=began,
            ended=now,
            play=self.play_name,
            role=task._role.get_name() if getattr(task, "_role", None) else None,
            module=module,
            ignored=ignore_errors,
            message=data.get("msg") if status in ("failed", "unreachable") else None,
            result=safe_result(data, self.get_option("result_keys") or ()),
            no_log=no_log,
            items=len(items) if isinstance(items, list) else None,
        ))

    def _phase(self, task, module):
        for index, node in enumerate(lineage(task, self.play, self.tasks)):
            phase, source = phase_of_node(node, is_step=index == 0)
            if phase:
                return phase, source
        if module.startswith(COLLECTION_PREFIX):
            name = module[len(COLLECTION_PREFIX):]
            if name in OBSERVING_MODULES or name.endswith("_info"):
                return ("verify" if self.acted else "detect"), "module %s (%s the first act step)" % (
                    name, "after" if self.acted else "before")
            return MODULE_PHASES.get(name, "act"), "module %s" % name
        return None, None

    def _finish(self, stats):
        self.record.ended = time.time()
        custom = getattr(stats, "custom", {}) or {}
        incident = (custom.get("_run") or {}).get("incident")
        if isinstance(incident, dict):
            self.record.meta.update({key: value for key, value in incident.items() if key in META_KEYS})
        self.record.host_stats = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            self.record.host_stats[host] = {key: summary.get(key, 0) for key in (
                "ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")}
        if not self.record.steps or self.record.started is None:
            return  # nothing ran, or an ad-hoc command: no playbook, no incident
        recovery = self.record.recovery()
        self._display.banner("RECOVERY TIMELINE")
        self._display.display("%s: recovery %s, target %s, %s. %s" % (
            self.record.meta.get("incident_id") or "incident", format_duration(recovery["recovery_time_s"]),
            format_duration(recovery["target_s"]) if recovery["target_s"] is not None else "none",
            recovery["verdict"], recovery["reason"]))
        if self.get_option("show_steps"):
            for line in self.step_lines():
                self._display.display(line)
        directory = self.incident_dir()
        try:
            paths = self.record.write(directory)
        except (OSError, ValueError) as exc:
            self._display.warning("recovery_timeline: could not write the incident record into %s: %s"
                                  % (directory, exc))
            return
        self._display.display("incident record: %s" % ", ".join(paths))

    def step_lines(self):
        """Per host: each step that ran, at its offset from the record's time zero, then the busy time by phase."""
        origin = self.record.origin()
        by_host = {}
        for step in self.record.ordered_steps():
            if step.status != "skipped":
                by_host.setdefault(step.host, []).append(step)
        lines = []
        for host, steps in by_host.items():
            lines.append("%s (%s):" % (host, self.record.playbook or "playbook"))
            for step in steps:
                status = step.status + (" (ignored)" if step.ignored else "")
                if step.result.get("healthy") is False:
                    # health_check with fail_on_unhealthy=false: the finding is the point of the step
                    status += " (unhealthy)"
                title = step.task if len(step.task) <= 70 else step.task[:69] + "\u2026"
                lines.append("  +%7.2fs %7.2fs  %-7s %-70s %s" % (
                    step.started - origin, step.duration_s, step.phase, title, status))
            phases = []
            for phase in PHASES + (UNPHASED,):
                intervals = [(step.started, step.ended) for step in steps if step.phase == phase]
                if intervals:
                    phases.append("%s %s" % (phase, format_duration(union_length(intervals))))
            lines.append("  %s from first to last step; busy by phase: %s" % (
                format_duration(max(step.ended for step in steps) - steps[0].started), ", ".join(phases)))
        return lines

    def incident_dir(self):
        configured = self.get_option("incident_dir")
        if configured:
            return configured
        if os.environ.get("AWX_ISOLATED_DATA_DIR"):
            return os.path.join(os.environ["AWX_ISOLATED_DATA_DIR"], "incidents")
        if os.environ.get("AWX_PRIVATE_DATA_DIR"):
            return os.path.join(os.environ["AWX_PRIVATE_DATA_DIR"], "artifacts", "incidents")
        return os.path.abspath("incidents")


# ansible-core 2.19 names these host / task / result; 2.16 to 2.18 only have the underscored ones.
def result_host(result):
    return getattr(result, "host", None) or result._host


def result_task(result):
    return getattr(result, "task", None) or result._task


def module_name(task):
    """The module's full name even when the task used a short one under ``collections:``."""
    return str(getattr(task, "resolved_action", None) or task.action)


def result_dict(result):
    value = getattr(result, "result", None)
    return value if isinstance(value, dict) or hasattr(value, "get") else result._result
