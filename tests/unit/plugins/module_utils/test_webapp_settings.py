# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot and restore decisions over an in-memory slot.  The real ARM calls (and the SDK's shapes) are
covered by the webapp_app_settings integration target against the sandbox; here only the logic is."""

from __future__ import annotations

import copy
import json
import os
import stat
from datetime import datetime, timezone

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.webapp_settings import (
    MASK,
    AppConfiguration,
    AppSettingsRollback,
    load_snapshot,
)

REFERENCE = "@Microsoft.KeyVault(VaultName=kv-sf-ai;SecretName=sf-client-secret)"
PASSWORD_IN_CONNECTION = "Server=tcp:sql;Password=hunter2-not-shown"


def seeded():
    return AppConfiguration(
        app_settings={"RAG_TOP_K": "5", "SLOT_NAME": "production", "SF_CLIENT_SECRET": REFERENCE, "LOG_LEVEL": "info"},
        connection_strings={"KnowledgeDb": {"value": PASSWORD_IN_CONNECTION, "type": "SQLAzure"}},
        sticky_app_settings=["SLOT_NAME", "SF_CLIENT_SECRET"],
        sticky_connection_strings=["KnowledgeDb"],
        sticky_storage=["logs"],
    )


class InMemoryApi:
    """One app with a production and a staging slot, recording every write."""

    resource_group = "rg-sf-ai"
    app = "app-sf-ai"

    def __init__(self):
        self.slots = {"production": seeded(), "staging": seeded()}
        self.writes = []
        self.restarts = []
        self.stored_wrongly = False

    def require_slot(self, slot):
        if slot not in self.slots:
            raise RollbackError("Slot '%s' does not exist" % slot)

    def read(self, slot):
        return copy.deepcopy(self.slots[slot])

    def write_app_settings(self, slot, settings):
        self.writes.append(("app_settings", slot))
        self.slots[slot].app_settings = dict(settings)
        if self.stored_wrongly:
            self.slots[slot].app_settings["SURPRISE"] = "1"

    def write_connection_strings(self, slot, strings):
        self.writes.append(("connection_strings", slot))
        self.slots[slot].connection_strings = copy.deepcopy(strings)

    def write_sticky_names(self, app_names, connection_names, storage_names):
        self.writes.append(("slot_config_names", storage_names))
        for configuration in self.slots.values():
            configuration.sticky_app_settings = list(app_names)
            configuration.sticky_connection_strings = list(connection_names)
            configuration.sticky_storage = list(storage_names)

    def restart(self, slot, health_url=None, wait_timeout=300):
        self.restarts.append(slot)
        return {"answered_after_s": None}


def at(day):
    return lambda: datetime(2026, 12, day, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def api():
    return InMemoryApi()


@pytest.fixture
def snapshot_file(api, tmp_path):
    path = str(tmp_path / "evidence" / "settings.json")
    AppSettingsRollback(api, "production", subscription_id="sub-1", clock=at(1)).snapshot(path)
    return path


# ---- reading and snapshots ---------------------------------------------------------------------


def test_info_masks_values_but_shows_key_vault_references(api):
    changed, result = AppSettingsRollback(api, "production").info()
    assert not changed
    assert result["app_settings"] == {"LOG_LEVEL": MASK, "RAG_TOP_K": MASK, "SF_CLIENT_SECRET": REFERENCE, "SLOT_NAME": MASK}
    assert result["connection_strings"] == {"KnowledgeDb": {"type": "SQLAzure", "value": MASK}}
    assert result["key_vault_references"] == ["SF_CLIENT_SECRET"]
    assert "hunter2" not in json.dumps(result)


def test_snapshot_is_private_complete_and_kept_when_nothing_changed(api, snapshot_file):
    assert stat.S_IMODE(os.stat(snapshot_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(snapshot_file)).st_mode) == 0o700
    with open(snapshot_file, encoding="utf-8") as handle:
        saved = json.load(handle)
    assert saved["connection_strings"]["KnowledgeDb"] == {"value": PASSWORD_IN_CONNECTION, "type": "SQLAzure"}
    assert saved["app_settings"]["SF_CLIENT_SECRET"] == REFERENCE
    assert (saved["site"], saved["slot"], saved["taken_at"]) == ("app-sf-ai", "production", "2026-12-01T09:30:00Z")

    changed, result = AppSettingsRollback(api, "production", subscription_id="sub-1", clock=at(2)).snapshot(snapshot_file)
    assert not changed and result["snapshot"]["taken_at"] == "2026-12-01T09:30:00Z"
    assert "hunter2" not in json.dumps(result)

    api.slots["production"].app_settings["RAG_TOP_K"] = "50"
    changed, result = AppSettingsRollback(api, "production", subscription_id="sub-1", clock=at(3)).snapshot(snapshot_file)
    assert changed and load_snapshot(snapshot_file).configuration.app_settings["RAG_TOP_K"] == "50"


def test_snapshot_in_check_mode_writes_nothing(api, tmp_path):
    path = str(tmp_path / "never.json")
    changed, _result = AppSettingsRollback(api, "production", check_mode=True).snapshot(path)
    assert changed and not os.path.exists(path)


def test_snapshot_never_overwrites_another_slots_file_or_a_stranger_without_force(api, snapshot_file, tmp_path):
    with pytest.raises(RollbackError, match="holds the snapshot of slot production"):
        AppSettingsRollback(api, "staging", subscription_id="sub-1").snapshot(snapshot_file)
    stranger = tmp_path / "notes.json"
    stranger.write_text("my notes\n")
    with pytest.raises(RollbackError, match="left as it is"):
        AppSettingsRollback(api, "production").snapshot(str(stranger))
    assert stranger.read_text() == "my notes\n"
    assert AppSettingsRollback(api, "production").snapshot(str(stranger), force=True)[0]


# ---- restore -----------------------------------------------------------------------------------


def bad_change(api):
    production = api.slots["production"]
    production.app_settings.update(RAG_TOP_K="50", EXPERIMENTAL="on", SF_CLIENT_SECRET=REFERENCE[:-1] + ";SecretVersion=1)")
    del production.app_settings["LOG_LEVEL"]
    production.connection_strings["KnowledgeDb"] = {"value": "Server=tcp:other", "type": "SQLAzure"}
    for configuration in api.slots.values():
        configuration.sticky_app_settings = ["SLOT_NAME"]


def test_restore_check_mode_predicts_exactly_and_writes_nothing(api, snapshot_file):
    bad_change(api)
    changed, result = AppSettingsRollback(api, "production", check_mode=True, diff_mode=True,
                                          subscription_id="sub-1").restore(snapshot_path=snapshot_file)
    assert changed and api.writes == []
    assert result["changes"]["app_settings"] == {"added": ["LOG_LEVEL"], "changed": ["RAG_TOP_K", "SF_CLIENT_SECRET"],
                                                 "removed": ["EXPERIMENTAL"]}
    assert result["changes"]["connection_strings"]["changed"] == ["KnowledgeDb"]
    assert result["changes"]["slot_config_names"]["app_setting_names"] == {"added": ["SF_CLIENT_SECRET"], "removed": []}
    assert "app setting RAG_TOP_K = ******** (changed)" in result["diff"]["after"]
    assert "EXPERIMENTAL" in result["diff"]["before"] and "EXPERIMENTAL" not in result["diff"]["after"]
    assert "hunter2" not in json.dumps(result) and "Server=tcp:other" not in json.dumps(result)


def test_restore_writes_each_differing_part_once_then_nothing(api, snapshot_file):
    bad_change(api)
    rollback = AppSettingsRollback(api, "production", subscription_id="sub-1")
    changed, result = rollback.restore(snapshot_path=snapshot_file, restart=True)
    assert changed and result["restarted"] and api.restarts == ["production"]
    # Sticky names first, with the storage names read; then the two sets.
    assert api.writes == [("slot_config_names", ["logs"]), ("app_settings", "production"),
                          ("connection_strings", "production")]
    assert api.slots["production"] == seeded()
    assert api.slots["production"].app_settings["SF_CLIENT_SECRET"] == REFERENCE

    changed, result = rollback.restore(snapshot_path=snapshot_file, restart=True)
    assert not changed and not result["restarted"]
    assert len(api.writes) == 3 and api.restarts == ["production"]


def test_restore_of_one_section_leaves_the_others(api, snapshot_file):
    bad_change(api)
    changed, _result = AppSettingsRollback(api, "production", subscription_id="sub-1").restore(
        snapshot_path=snapshot_file, sections=["connection_strings"])
    assert changed and api.writes == [("connection_strings", "production")]
    assert api.slots["production"].app_settings["RAG_TOP_K"] == "50"


def test_merge_keeps_unnamed_settings_and_null_removes(api):
    changed, result = AppSettingsRollback(api, "production").restore(app_settings={"RAG_TOP_K": 7, "LOG_LEVEL": None})
    assert changed and result["mode"] == "merge"
    assert api.slots["production"].app_settings == {"RAG_TOP_K": "7", "SLOT_NAME": "production",
                                                    "SF_CLIENT_SECRET": REFERENCE}
    # Sticky names are not touched by a restore of given settings.
    assert not any(kind == "slot_config_names" for kind, _slot in api.writes)


def test_exact_with_given_settings_removes_what_is_not_named(api):
    changed, result = AppSettingsRollback(api, "staging").restore(app_settings={"SLOT_NAME": "staging"}, mode="exact")
    assert changed and result["changes"]["app_settings"]["removed"] == ["LOG_LEVEL", "RAG_TOP_K", "SF_CLIENT_SECRET"]
    assert api.slots["staging"].app_settings == {"SLOT_NAME": "staging"}


def test_connection_string_type_defaults_to_the_current_one(api):
    AppSettingsRollback(api, "production").restore(connection_strings={"KnowledgeDb": {"value": "Server=tcp:restored"},
                                                                       "Reports": {"value": "x", "type": "postgresql"}})
    strings = api.slots["production"].connection_strings
    assert strings["KnowledgeDb"] == {"value": "Server=tcp:restored", "type": "SQLAzure"}
    assert strings["Reports"]["type"] == "PostgreSQL"


def test_a_snapshot_of_another_slot_needs_force_and_warns(api, snapshot_file):
    rollback = AppSettingsRollback(api, "staging", subscription_id="sub-1")
    with pytest.raises(RollbackError, match="is the snapshot of slot production .* Nothing was changed"):
        rollback.restore(snapshot_path=snapshot_file)
    _changed, result = rollback.restore(snapshot_path=snapshot_file, force=True)
    assert "snapshot of slot production" in result["warnings"][0]


def test_a_snapshot_of_another_subscription_is_another_app(api, snapshot_file):
    with pytest.raises(RollbackError, match="is the snapshot of"):
        AppSettingsRollback(api, "production", subscription_id="sub-2").restore(snapshot_path=snapshot_file)


@pytest.mark.parametrize("edit, message", [
    (lambda doc: doc.update(extra=1), "unknown keys: extra"),
    (lambda doc: doc.pop("app_settings"), "lacks app_settings"),
    (lambda doc: doc.update(version=2), "snapshot version 2"),
    (lambda doc: doc.update(format="other"), "is not an app settings snapshot"),
    (lambda doc: doc["app_settings"].update(RAG_TOP_K=5), "not an object of names to string values"),
    (lambda doc: doc["connection_strings"]["KnowledgeDb"].update(type="Oracle"), "the type 'Oracle'"),
    (lambda doc: doc["connection_strings"]["KnowledgeDb"].update(secret="x"), "is not {\"value\""),
    (lambda doc: doc["slot_config_names"].update(names=[]), "slot_config_names that are not"),
])
def test_a_snapshot_that_fails_its_schema_changes_nothing(api, snapshot_file, edit, message):
    with open(snapshot_file, encoding="utf-8") as handle:
        document = json.load(handle)
    edit(document)
    with open(snapshot_file, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    bad_change(api)
    with pytest.raises(RollbackError, match=message):
        AppSettingsRollback(api, "production", subscription_id="sub-1").restore(snapshot_path=snapshot_file)
    assert api.writes == []


def test_missing_and_corrupt_snapshot_files(api, tmp_path):
    with pytest.raises(RollbackError, match="does not exist"):
        AppSettingsRollback(api, "production").restore(snapshot_path=str(tmp_path / "nope.json"))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": ')
    with pytest.raises(RollbackError, match="is not valid JSON"):
        AppSettingsRollback(api, "production").restore(snapshot_path=str(corrupt))
    assert api.writes == []


@pytest.mark.parametrize("settings, strings, message", [
    ({"BAD NAME": "1"}, None, "Unknown setting names: 'BAD NAME'"),
    ({"FEATURE-X": "1"}, None, "Unknown setting names: 'FEATURE-X'"),
    (None, {"bad:name": {"value": "x"}}, "connection string bad:name"),
    ({"FEATURE_X": True}, None, "is a bool, not a string: quote it"),
    ({"FEATURE_X": 1.5}, None, "is a float"),
    (None, {"KnowledgeDb": {"value": "x", "type": "Oracle"}}, "the type 'Oracle'"),
    (None, {"KnowledgeDb": {"value": 5}}, "must be {value"),
    ({"SF_CLIENT_SECRET": "@Microsoft.KeyVault(sf-client-secret)"}, None, "Malformed Key Vault references"),
    ({"SF_CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=http://kv/secrets/x)"}, None, "Malformed Key Vault"),
])
def test_bad_given_settings_change_nothing(api, settings, strings, message):
    with pytest.raises(RollbackError, match=message):
        AppSettingsRollback(api, "production").restore(app_settings=settings, connection_strings=strings)
    assert api.writes == []


def test_names_already_on_the_app_are_accepted_as_they_are(api):
    # App Service accepted them once (the portal is laxer than the documented rule): a restore must not refuse them.
    api.slots["production"].app_settings["Legacy-Name"] = "1"
    changed, _result = AppSettingsRollback(api, "production").restore(app_settings={"Legacy-Name": "2"})
    assert changed and api.slots["production"].app_settings["Legacy-Name"] == "2"


def test_key_vault_references_in_both_forms_are_written_verbatim(api):
    uri = "@Microsoft.KeyVault(SecretUri=https://kv-sf-ai.vault.azure.net/secrets/sf-client-secret/abc123)"
    AppSettingsRollback(api, "production").restore(app_settings={"SF_CLIENT_SECRET": uri, "OTHER": REFERENCE})
    assert api.slots["production"].app_settings["SF_CLIENT_SECRET"] == uri
    assert api.slots["production"].app_settings["OTHER"] == REFERENCE


def test_exact_null_is_refused_and_options_are_checked_before_any_call(api, snapshot_file):
    with pytest.raises(RollbackError, match="only mode=merge removes"):
        AppSettingsRollback(api, "production").restore(app_settings={"LOG_LEVEL": None}, mode="exact")
    with pytest.raises(RollbackError, match="either snapshot_path or"):
        AppSettingsRollback(api, "production").restore(snapshot_path=snapshot_file, app_settings={})
    with pytest.raises(RollbackError, match="needs snapshot_path"):
        AppSettingsRollback(api, "production").restore()
    with pytest.raises(RollbackError, match="sections applies"):
        AppSettingsRollback(api, "production").restore(app_settings={"A": "1"}, sections=["app_settings"])
    with pytest.raises(RollbackError, match="does not exist"):
        AppSettingsRollback(api, "qa").restore(app_settings={"A": "1"})
    assert api.writes == []


def test_a_write_that_reads_back_differently_fails(api):
    api.stored_wrongly = True
    with pytest.raises(RollbackError, match="reads back something else"):
        AppSettingsRollback(api, "production").restore(app_settings={"RAG_TOP_K": "6"})
