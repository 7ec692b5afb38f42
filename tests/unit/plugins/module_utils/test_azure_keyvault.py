# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_keyvault import (
    MASK,
    RESTORED_FROM_TAG,
    SecretRollback,
    VersionInfo,
    order_versions,
    pick_previous,
    restore_tags,
    validate_vault_url,
    values_equal,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

VAULT = "https://kv.vault.azure.net/"


def version(vid, created, enabled=True, tags=None, content_type="text/plain"):
    return VersionInfo(version=vid, enabled=enabled, created=created, tags=dict(tags or {}), content_type=content_type)


class FakeSecret:
    """KeyVaultSecret's interface over an in-memory list of (VersionInfo, value)."""

    def __init__(self, versions=(), deleted=None):
        self.vault_url = VAULT
        self.name = "database-url"
        self.items = list(versions)
        self.deleted_info = deleted
        self.writes = []
        self.recovered = False

    def versions(self):
        return order_versions([v for v, _value in self.items]) if self.items else None

    def deleted(self):
        return self.deleted_info

    def value_of(self, vid=None):
        info, value = self.items[-1] if vid is None else next(i for i in self.items if i[0].version == vid)
        return value if info.enabled else None

    def write(self, value, content_type=None, tags=None):
        info = version("w%d" % len(self.writes), "2026-01-0%dT00:00:00+00:00" % (len(self.writes) + 5),
                       tags=tags, content_type=content_type)
        self.items.append((info, value))
        self.writes.append(value)
        return info


def seeded():
    return FakeSecret([
        (version("v1", "2026-01-01T00:00:00+00:00", enabled=False), "value-1"),
        (version("v2", "2026-01-02T00:00:00+00:00", tags={"owner": "a"}), "value-2"),
        (version("v3", "2026-01-03T00:00:00+00:00"), "value-3-bad"),
    ])


def test_order_versions_sorts_by_creation_and_marks_current():
    ordered = order_versions([version("b", "2026-01-02"), version("a", "2026-01-01"), version("c", "2026-01-02")])
    assert [v.version for v in ordered] == ["a", "b", "c"]  # ties keep listing order
    assert [v.current for v in ordered] == [False, False, True]


def test_pick_previous_skips_disabled_and_follows_the_restore_marker():
    versions = order_versions([version("v1", "1"), version("v2", "2", enabled=False), version("v3", "3")])
    assert pick_previous(versions).version == "v1"
    restored = order_versions(versions + [version("v4", "4", tags={RESTORED_FROM_TAG: "v1"})])
    assert pick_previous(restored).version == "v1"
    with pytest.raises(RollbackError, match="no enabled version before"):
        pick_previous(order_versions([version("v1", "1", enabled=False), version("v2", "2")]))


def test_values_equal_and_restore_tags():
    assert values_equal("a", "a") and not values_equal("a", "b") and not values_equal(None, "a")
    assert restore_tags({"x": "1", RESTORED_FROM_TAG: "old"}, "v2") == {"x": "1", RESTORED_FROM_TAG: "v2"}
    with pytest.raises(RollbackError, match="15"):
        restore_tags({str(i): "t" for i in range(15)}, "v2")


@pytest.mark.parametrize("url", ["http://kv.vault.azure.net", "kv.vault.azure.net", "https://kv.vault.azure.net/x"])
def test_vault_url_must_be_an_https_vault_root(url):
    with pytest.raises(RollbackError, match="vault_url"):
        validate_vault_url(url)
    assert validate_vault_url("https://kv.vault.azure.net") == VAULT


def test_check_mode_predicts_and_writes_nothing():
    secret = seeded()
    changed, result = SecretRollback(secret, check_mode=True, diff_mode=True).make_current(previous=True)
    assert changed and secret.writes == []
    assert result["target_version"] == "v2" and result["written_version"] is None
    assert result["after"]["value_of_version"] == "v2" and result["after"]["tags"][RESTORED_FROM_TAG] == "v2"
    assert MASK in result["diff"]["after"]


def test_rollback_writes_the_old_value_once_and_never_returns_it():
    secret = seeded()
    changed, result = SecretRollback(secret).make_current(previous=True)
    assert changed and secret.writes == ["value-2"]
    assert result["current_version"] == result["written_version"] == "w0"
    assert secret.items[-1][0].tags == {"owner": "a", RESTORED_FROM_TAG: "v2"}
    changed_again, again = SecretRollback(secret).make_current(previous=True)
    assert not changed_again and len(secret.writes) == 1 and again["target_version"] == "v2"
    for outcome in (result, again):
        text = json.dumps(outcome)
        assert "value-2" not in text and "value-3-bad" not in text and outcome["secret_value"] is None


def test_set_value_is_idempotent_and_keeps_content_type():
    secret = seeded()
    assert SecretRollback(secret).make_current(value="new")[0]
    assert not SecretRollback(secret).make_current(value="new")[0]
    assert secret.writes == ["new"] and secret.items[-1][0].content_type == "text/plain"
    _changed, result = SecretRollback(secret).make_current(value="new", return_value=True)
    assert result["secret_value"] == "new"


def test_bad_targets_fail_before_any_write():
    secret = seeded()
    with pytest.raises(RollbackError, match="has no version nope"):
        SecretRollback(secret).make_current(version="nope")
    with pytest.raises(RollbackError, match="disabled"):
        SecretRollback(secret).make_current(version="v1")
    with pytest.raises(RollbackError, match="does not exist"):
        SecretRollback(FakeSecret()).make_current(previous=True)
    assert secret.writes == []


def test_deleted_secret_must_be_recovered_first():
    from ansible_collections.sre.rollback.plugins.module_utils.azure_keyvault import DeletedInfo
    deleted = FakeSecret(deleted=DeletedInfo("2026-01-01", "2026-04-01", VAULT + "deletedsecrets/database-url"))
    with pytest.raises(RollbackError, match="recover it first"):
        SecretRollback(deleted).make_current(value="x")
    changed, result = SecretRollback(deleted, check_mode=True).recovered(10)
    assert changed and result["before"]["state"] == "deleted" and result["deleted"]["recovery_id"].endswith("database-url")
