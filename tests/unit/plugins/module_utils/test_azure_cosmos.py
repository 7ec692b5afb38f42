# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_cosmos import (
    CosmosRestore,
    RestorableAccount,
    check_in_range,
    check_not_future,
    choose_source,
    is_restore_of,
    parse_timestamp,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def restorable(name="acct", instance="i-live", deleted=None, oldest="2026-01-01T00:00:00Z"):
    return RestorableAccount(account_name=name, instance_id=instance, location="westeurope",
                             id="/subscriptions/s/providers/Microsoft.DocumentDB/locations/westeurope/"
                                "restorableDatabaseAccounts/" + instance,
                             creation_time=oldest, deletion_time=deleted, oldest_restorable_time=oldest,
                             latest_restorable_time=deleted or "2026-01-10T12:00:00Z")


def test_parse_timestamp_normalises_to_utc():
    assert parse_timestamp("2026-01-05T10:00:00Z") == datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert parse_timestamp("2026-01-05T12:00:00+02:00") == datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert parse_timestamp("2026-01-05T10:00:00") == datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)
    for bad in ("", "yesterday", None):
        with pytest.raises(RollbackError):
            parse_timestamp(bad)


def test_range_checks():
    live = restorable()
    check_in_range(parse_timestamp("2026-01-05T00:00:00Z"), live, NOW)
    with pytest.raises(RollbackError, match="outside the restorable range") as early:
        check_in_range(parse_timestamp("2025-12-31T00:00:00Z"), live, NOW)
    assert early.value.details["restorable_range"] == ["2026-01-01T00:00:00Z", "2026-01-10T12:00:00Z"]
    with pytest.raises(RollbackError, match="in the future"):
        check_not_future(parse_timestamp("2026-01-11T00:00:00Z"), NOW)
    gone = restorable(deleted="2026-01-06T00:00:00Z")
    with pytest.raises(RollbackError, match="deletion time"):
        check_in_range(parse_timestamp("2026-01-07T00:00:00Z"), gone, NOW)


def test_choose_source_prefers_live_then_newest_deleted():
    older = restorable(instance="i-old", deleted="2025-12-01T00:00:00Z")
    newer = restorable(instance="i-new", deleted="2026-01-02T00:00:00Z")
    live = restorable(instance="i-live")
    assert choose_source([older, live, newer], "ACCT").instance_id == "i-live"
    assert choose_source([older, newer], "acct").instance_id == "i-new"
    assert choose_source([older, newer], "acct", "I-OLD").instance_id == "i-old"
    assert choose_source([older], "other") is None
    with pytest.raises(RollbackError, match="no restorable instance"):
        choose_source([older], "acct", "i-missing")


def test_is_restore_of_compares_source_and_second():
    params = SimpleNamespace(restore_source="/X/restorableDatabaseAccounts/i-live",
                             restore_timestamp_in_utc=datetime.datetime(2026, 1, 5, 10, 0, 0, 400000, tzinfo=UTC))
    account = SimpleNamespace(create_mode="Restore", restore_parameters=params)
    assert is_restore_of(account, "/x/restorabledatabaseaccounts/i-live", "2026-01-05T10:00:00Z")
    assert not is_restore_of(account, "/x/restorabledatabaseaccounts/i-live", "2026-01-05T10:00:02Z")
    assert not is_restore_of(account, "/x/restorabledatabaseaccounts/other", "2026-01-05T10:00:00Z")
    assert not is_restore_of(SimpleNamespace(create_mode="Default", restore_parameters=None), "/x", NOW)


def test_databases_to_restore_must_have_existed():
    restore = CosmosRestore(client=None, subscription_id="s")
    held = {"mystira": ["scenarios", "users"]}
    assert restore._databases_to_restore([{"database_name": "MYSTIRA", "collection_names": ["users"]}], held, NOW) == [
        {"database_name": "mystira", "collection_names": ["users"]}]
    with pytest.raises(RollbackError, match="Database 'gone' did not exist"):
        restore._databases_to_restore([{"database_name": "gone"}], held, NOW)
    with pytest.raises(RollbackError, match="invoices"):
        restore._databases_to_restore([{"database_name": "mystira", "collection_names": ["invoices"]}], held, NOW)
