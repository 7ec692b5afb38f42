# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_timeline
type: aggregate
short_description: Print and record the timeline of a rollback, each step timed
version_added: 0.1.0
description:
  - Records every task that ran (not the skipped ones) with its start offset, duration, host and status,
    and the phase it belongs to, taken from the task name's prefix before C(|) as the collection's roles
    name them (C(Detect), C(Decide), C(Act), C(Verify), C(Record), C(Report)).
  - At the end of the playbook prints one timeline per host with the time spent in each phase, and writes
    it as JSON when O(output_dir) is set, so an incident record can quote exactly what was done and when.
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - enable in ansible.cfg with C(callbacks_enabled = sre.rollback.rollback_timeline)
options:
  output_dir:
    description: Directory to write C(timeline-<UTC time>.json) into. Nothing is written when unset.
    type: path
    env:
      - name: SRE_ROLLBACK_TIMELINE_DIR
    ini:
      - section: rollback_timeline
        key: output_dir
"""

import datetime
import json
import os
import time

from ansible.plugins.callback import CallbackBase

PHASES = ("Detect", "Decide", "Act", "Verify", "Record", "Report")
# Housekeeping that says nothing about the rollback itself.
UNTIMED_ACTIONS = {"ansible.builtin.include_tasks", "include_tasks", "ansible.builtin.validate_argument_spec",
                   "validate_argument_spec", "ansible.builtin.meta", "meta"}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sre.rollback.rollback_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started_wall = None
        self.started = None
        self.playbook = None
        self.task_started = {}
        self.steps = []

    # ---- recording ----------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        self.started = time.monotonic()
        self.started_wall = datetime.datetime.now(datetime.timezone.utc)
        self.playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_started[task._uuid] = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self.task_started[task._uuid] = time.monotonic()

    def v2_runner_on_ok(self, result):
        status = "changed" if result._result.get("changed") else "ok"
        if result._result.get("healthy") is False:
            # health_check with fail_on_unhealthy=false: the finding is the point of the step
            status += " (unhealthy)"
        self._record(result, status)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed (ignored)" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def _record(self, result, status):
        task = result._task
        if task.action in UNTIMED_ACTIONS or self.started is None:
            return
        now = time.monotonic()
        began = self.task_started.get(task._uuid, now)
        phase, title = split_phase(task.get_name())
        step = {
            "host": result._host.get_name(),
            "phase": phase,
            "task": title,
            "status": status,
            "offset_s": round(began - self.started, 2),
            "duration_s": round(now - began, 2),
        }
        if status.startswith("failed"):
            step["message"] = str(result._result.get("msg", ""))[:300]
        self.steps.append(step)

    # ---- reporting ----------------------------------------------------------

    def v2_playbook_on_stats(self, stats):
        if not self.steps:
            return
        timeline = self.timeline()
        for host, entry in timeline["hosts"].items():
            self._display.banner("ROLLBACK TIMELINE: %s (%s)" % (host, self.playbook))
            for step in entry["steps"]:
                self._display.display("  +%7.2fs %7.2fs  %-7s %-70s %s" % (
                    step["offset_s"], step["duration_s"], step["phase"] or "", step["task"][:70], step["status"]))
            phases = ", ".join("%s %.2fs" % (name, seconds) for name, seconds in entry["phase_totals_s"].items())
            self._display.display("  total %.2fs   by phase: %s" % (entry["total_s"], phases))
        output_dir = self.get_option("output_dir")
        if output_dir:
            os.makedirs(output_dir, exist_ok=True)
            path = os.path.join(output_dir, "timeline-%s.json" % self.started_wall.strftime("%Y%m%dT%H%M%SZ"))
            with open(path, "w") as handle:
                json.dump(timeline, handle, indent=2)
            self._display.display("  timeline written to %s" % path)

    def timeline(self):
        hosts = {}
        for step in self.steps:
            hosts.setdefault(step["host"], []).append(step)
        report = {"playbook": self.playbook, "started": self.started_wall.isoformat(), "hosts": {}}
        for host, steps in hosts.items():
            totals = {}
            for step in steps:
                if step["phase"]:
                    totals[step["phase"]] = round(totals.get(step["phase"], 0) + step["duration_s"], 2)
            end = max(step["offset_s"] + step["duration_s"] for step in steps)
            report["hosts"][host] = {
                "steps": steps,
                "phase_totals_s": totals,
                "total_s": round(end - steps[0]["offset_s"], 2),
            }
        return report


def split_phase(name):
    """'Act | swap the build' -> ('Act', 'swap the build'); role prefixes ('role : ') are dropped."""
    name = name.split(" : ", 1)[-1]
    head, separator, tail = name.partition("|")
    if separator and head.strip() in PHASES:
        return head.strip(), tail.strip()
    return None, name.strip()
