# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the recovery_timeline callback on real Play objects and a fake clock.

The plays are loaded by Ansible's own Play.load, so the phase lookup walks the
same task / block / include / role / play objects a playbook run gives it; only
the results and the clock are made up, which makes every duration exact.
"""

from __future__ import annotations

import datetime
import json
import os

import pytest
import yaml

from ansible import constants as C
from ansible.executor.stats import AggregateStats
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.block import Block
from ansible.playbook.play import Play
from ansible.vars.manager import VariableManager

from ansible_collections.sre.rollback.plugins.callback import recovery_timeline
from ansible_collections.sre.rollback.plugins.callback.recovery_timeline import CallbackModule
from ansible_collections.sre.rollback.plugins.module_utils.incident_record import DEFAULT_RESULT_KEYS

LOAD_NAME = "sre.rollback.recovery_timeline"


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def time(self):
        return self.now


class Result:
    """What a callback reads from a task result: host, task and the result dict."""

    def __init__(self, host, task, result):
        self.host, self.task, self.result = host, task, result
        self._host, self._task, self._result = host, task, result


class Playbook:
    _file_name = "/somewhere/rollback.yml"


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(recovery_timeline, "time", fake)
    return fake


@pytest.fixture
def ansible_env():
    loader = DataLoader()
    inventory = InventoryManager(loader=loader)
    return loader, VariableManager(loader=loader, inventory=inventory), inventory


def make_callback(tmp_path, warnings=None):
    """The callback with its options set from its own DOCUMENTATION, as the plugin loader does."""
    options = yaml.safe_load(recovery_timeline.DOCUMENTATION)["options"]
    C.config.initialize_plugin_configuration_definitions("callback", LOAD_NAME, options)
    callback = CallbackModule()
    callback._load_name = LOAD_NAME
    callback.set_options(direct={"incident_dir": str(tmp_path)})
    if warnings is not None:
        callback._display.warning = warnings.append
    callback._display.display = lambda *args, **kwargs: None
    callback._display.banner = lambda *args, **kwargs: None
    return callback


def tasks_of(play):
    """Every task of a compiled play, in order, nested blocks flattened."""
    found = []

    def walk(block):
        for item in block.block + block.rescue + block.always:
            if isinstance(item, Block):
                walk(item)
            else:
                found.append(item)
    for block in play.compile():
        walk(block)
    return [task for task in found if task.action not in ("meta", "ansible.builtin.meta")]


def run(callback, clock, play, host, plan, stats=None):
    """Feed the callback: each task of the play takes ``plan[name] = (seconds, status, result)``."""
    stats = stats or AggregateStats()
    callback.v2_playbook_on_start(Playbook())
    callback.v2_playbook_on_play_start(play)
    for task in tasks_of(play):
        seconds, status, result = plan[task.get_name()]
        callback.v2_playbook_on_task_start(task, False)
        callback.v2_runner_on_start(host, task)
        clock.now += seconds
        event = Result(host, task, dict(result))
        if status == "failed":
            stats.increment("failures", host.name)
            callback.v2_runner_on_failed(event)
        elif status == "skipped":
            stats.increment("skipped", host.name)
            callback.v2_runner_on_skipped(event)
        else:
            stats.increment("ok", host.name)
            callback.v2_runner_on_ok(event)
    callback.v2_playbook_on_stats(stats)


def load_play(ansible_env, data, tmp_path, actions=None):
    """A play loaded from a YAML file, as ansible-playbook loads it (so its templates are trusted).

    ``actions`` maps task names to a module set after loading: the unit tests run
    without the collection loader, so a task cannot name sre.rollback modules itself.
    """
    loader, variable_manager, _inventory = ansible_env
    base = {"hosts": "localhost", "gather_facts": False}
    base.update(data)
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(base))
    try:
        data = loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:  # ansible-core before 2.19 trusts every template
        data = loader.load_from_file(str(path))
    play = Play.load(data, variable_manager=variable_manager, loader=loader)
    for task in tasks_of(play):
        if task.get_name() in (actions or {}):
            task.action = actions[task.get_name()]
            # What the module lookup would have found: a property over _resolved_action
            # since ansible-core 2.19, a plain attribute in 2.16 to 2.18.
            if isinstance(getattr(type(task), "resolved_action", None), property):
                task._resolved_action = actions[task.get_name()]
            else:
                task.resolved_action = actions[task.get_name()]
    return play


def read_record(tmp_path, name):
    with open(os.path.join(str(tmp_path), name, "incident.json")) as handle:
        return json.load(handle)


PLAY = {
    "vars": {"incident_id": "INC-{{ number }}", "number": 42, "severity": "sev1", "component": "api",
             "env": "prod"},
    "tasks": [
        {"name": "look", "tags": ["phase_detect"], "debug": {"msg": "x"}},
        {"name": "Decide | pick the build", "debug": {"msg": "x"}},
        {"block": [
            {"name": "swap", "command": "true"},
            {"name": "set the secret", "command": "echo s3cret", "no_log": True},
            {"name": "tagged inside", "tags": ["phase_verify"], "debug": {"msg": "x"}},
        ], "vars": {"rollback_phase": "act"}},
        {"name": "plain", "debug": {"msg": "x"}},
    ],
}


def test_phases_durations_and_recovery_from_real_play_objects(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    plan = {
        "look": (2.0, "ok", {}),
        "Decide | pick the build": (1.0, "ok", {}),
        "swap": (5.0, "changed", {"changed": True, "rc": 0, "stdout": "swapped", "invocation": {"x": 1}}),
        "set the secret": (0.5, "changed", {"changed": True, "_ansible_no_log": True}),
        "tagged inside": (3.0, "ok", {}),
        "plain": (0.25, "ok", {}),
    }
    run(callback, clock, load_play(ansible_env, PLAY, tmp_path), host, plan)
    data = read_record(tmp_path, "INC-42")
    steps = {entry["task"]: entry for entry in data["steps"]}
    assert {name: entry["phase"] for name, entry in steps.items()} == {
        "look": "detect", "pick the build": "decide", "swap": "act", "set the secret": "act",
        "tagged inside": "verify", "plain": "other"}
    assert steps["look"]["phase_source"] == "tag on the task"
    assert steps["pick the build"]["phase_source"] == "name prefix of the task"
    assert steps["swap"]["phase_source"] == "rollback_phase on the enclosing block"
    assert [entry["duration_s"] for entry in data["steps"]] == [2.0, 1.0, 5.0, 0.5, 3.0, 0.25]
    assert steps["swap"]["result"] == {"rc": 0}  # stdout and invocation are not whitelisted
    assert steps["set the secret"]["module"] is None and "result" not in steps["set the secret"]
    assert "s3cret" not in json.dumps(data)
    assert data["incident"]["severity"] == "sev1"
    assert data["recovery"]["recovery_time_s"] == 11.5
    assert (data["recovery"]["verdict"], data["recovery"]["severity"]) == ("met", "P1")
    assert data["playbook"] == "rollback.yml"


def test_task_beats_block_beats_play_and_the_play_var_is_the_last_resort(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    play = load_play(ansible_env, {
        "vars": {"rollback_phase": "decide", "incident_id": "INC-2"},
        "tags": ["phase_detect"],
        "tasks": [
            {"name": "from the play tag", "debug": {"msg": "x"}},
            {"block": [{"name": "from the block tag", "debug": {"msg": "x"}},
                       {"name": "own var", "vars": {"rollback_phase": "verify"}, "debug": {"msg": "x"}}],
             "tags": ["phase_act"]},
        ],
    }, tmp_path)
    plan = {name: (1.0, "ok", {}) for name in ("from the play tag", "from the block tag", "own var")}
    run(callback, clock, play, host, plan)
    phases = {entry["task"]: (entry["phase"], entry["phase_source"]) for entry in read_record(tmp_path, "INC-2")["steps"]}
    assert phases == {
        "from the play tag": ("detect", "tag on the enclosing play"),
        "from the block tag": ("act", "tag on the enclosing block"),
        "own var": ("verify", "rollback_phase on the task"),
    }


def test_collection_modules_fall_back_to_their_phase(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    actions = {"probe before": "sre.rollback.health_check", "swap": "sre.rollback.webapp_slot_swap",
               "slots after": "sre.rollback.webapp_slot_info", "tell": "sre.rollback.notify",
               "issue": "sre.rollback.github_issue", "not ours": "community.general.slack"}
    play = load_play(ansible_env, {"vars": {"incident_id": "INC-3"}, "tasks": [
        {"name": name, "debug": {"msg": "x"}} for name in actions
    ]}, tmp_path, actions=actions)
    plan = {name: (1, "ok", {}) for name in actions}
    plan["probe before"] = (1, "ok", {"healthy": False})
    run(callback, clock, play, host, plan)
    steps = read_record(tmp_path, "INC-3")["steps"]
    assert [entry["phase"] for entry in steps] == ["detect", "act", "verify", "notify", "record", "other"]
    assert steps[2]["phase_source"] == "module webapp_slot_info (after the first act step)"
    assert steps[0]["result"] == {"healthy": False}


def test_a_failed_verify_is_not_recovered(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    play = load_play(ansible_env, {"vars": {"incident_id": "INC-4", "severity": "P2"}, "tasks": [
        {"name": "Act | swap", "debug": {"msg": "x"}},
        {"name": "Verify | healthy", "debug": {"msg": "x"}},
    ]}, tmp_path)
    plan = {"Act | swap": (1, "changed", {"changed": True}),
            "Verify | healthy": (1, "failed", {"failed": True, "msg": "HTTP 503 from /health"})}
    run(callback, clock, play, host, plan)
    recovery = read_record(tmp_path, "INC-4")["recovery"]
    assert recovery["verdict"] == "not_recovered"
    assert "healthy on localhost failed (HTTP 503 from /health)" in recovery["reason"]


def test_set_fact_and_set_stats_fill_the_incident(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    play = load_play(ansible_env, {"tasks": [
        {"name": "Detect | trigger fired", "set_fact": {"detected_at": "x"}},
        {"name": "Verify | ok", "debug": {"msg": "x"}},
    ]}, tmp_path)
    detected = "%.3f" % (clock.now - 60)
    plan = {"Detect | trigger fired": (1, "ok", {"ansible_facts": {"detected_at": detected, "unrelated": 1}}),
            "Verify | ok": (1, "ok", {})}
    stats = AggregateStats()
    stats.set_custom_stats("incident", {"incident_id": "INC-5", "severity": "P1", "password": "no"})
    run(callback, clock, play, host, plan, stats)
    data = read_record(tmp_path, "INC-5")
    assert data["incident"]["severity"] == "P1" and "password" not in data["incident"]
    assert data["recovery"]["detected_from"] == "detected_at"
    assert data["recovery"]["recovery_time_s"] == 62


def test_a_record_that_cannot_be_written_is_a_warning(tmp_path, clock, ansible_env):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    warnings = []
    callback = make_callback(blocker, warnings)
    host = ansible_env[2].get_host("localhost")
    play = load_play(ansible_env, {"vars": {"incident_id": "INC-6"}, "tasks": [{"name": "x", "debug": {}}]}, tmp_path)
    run(callback, clock, play, host, {"x": (1, "ok", {})})
    assert len(warnings) == 1 and "could not write the incident record into" in warnings[0]


def test_the_default_directory_follows_ansible_runner_then_awx_then_the_cwd(tmp_path, monkeypatch):
    callback = make_callback(tmp_path)
    callback.set_options(direct={"incident_dir": None})
    monkeypatch.delenv("SRE_ROLLBACK_INCIDENT_DIR", raising=False)
    monkeypatch.setenv("AWX_ISOLATED_DATA_DIR", "/runner/artifacts/7")
    monkeypatch.setenv("AWX_PRIVATE_DATA_DIR", "/tmp/awx_7_x")
    assert callback.incident_dir() == "/runner/artifacts/7/incidents"
    monkeypatch.delenv("AWX_ISOLATED_DATA_DIR")
    assert callback.incident_dir() == "/tmp/awx_7_x/artifacts/incidents"
    monkeypatch.delenv("AWX_PRIVATE_DATA_DIR")
    monkeypatch.chdir(str(tmp_path))
    assert callback.incident_dir() == os.path.join(str(tmp_path), "incidents")


def test_the_documented_result_keys_are_the_model_defaults():
    documented = yaml.safe_load(recovery_timeline.DOCUMENTATION)["options"]["result_keys"]["default"]
    assert documented == list(DEFAULT_RESULT_KEYS)


def test_a_fired_rollback_trigger_starts_the_clock(tmp_path, clock, ansible_env):
    callback = make_callback(tmp_path)
    host = ansible_env[2].get_host("localhost")
    actions = {"watch": "sre.rollback.rollback_trigger", "swap": "sre.rollback.webapp_slot_swap",
               "probe": "sre.rollback.health_check"}
    play = load_play(ansible_env, {"vars": {"incident_id": "INC-7", "severity": "P1"}, "tasks": [
        {"name": name, "debug": {"msg": "x"}} for name in actions]}, tmp_path, actions=actions)
    fired = clock.now + 30  # the trigger fired 30 s into a 40 s watch
    fired_at = datetime.datetime.fromtimestamp(fired, tz=datetime.timezone.utc).isoformat()
    plan = {"watch": (40, "ok", {"verdict": "rollback", "fired_at": fired_at}), "swap": (20, "changed", {}),
            "probe": (5, "ok", {"healthy": True})}
    run(callback, clock, play, host, plan)
    recovery = read_record(tmp_path, "INC-7")["recovery"]
    assert recovery["detected_from"] == "rollback_trigger fired_at"
    assert recovery["recovery_time_s"] == 35
