# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_vm_disks import (
    SnapshotRestore,
    default_disk_name,
    newest_before,
    parse_resource_id,
    parse_time,
    power_state_of,
    provisioning_error_of,
    valid_disk_name,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

UTC = datetime.timezone.utc
RG_ID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute"


def disk_id(name):
    return "%s/disks/%s" % (RG_ID, name)


def snap_id(name):
    return "%s/snapshots/%s" % (RG_ID, name)


def test_parse_resource_id():
    assert parse_resource_id(disk_id("d1")) == {
        "subscription": "sub", "resource_group": "rg", "type": "Microsoft.Compute/disks", "name": "d1"}
    assert parse_resource_id("snap-1") is None
    assert parse_resource_id("/subscriptions/sub/resourceGroups/rg") is None
    assert parse_resource_id(None) is None


def test_power_and_provisioning_states_from_instance_view():
    statuses = [SimpleNamespace(code="ProvisioningState/failed/AllocationFailed", message="no capacity"),
                SimpleNamespace(code="PowerState/deallocated", message=None)]
    assert power_state_of(statuses) == "deallocated"
    assert provisioning_error_of(statuses) == "AllocationFailed: no capacity"
    assert power_state_of([]) is None and power_state_of(None) is None
    assert provisioning_error_of([SimpleNamespace(code="ProvisioningState/succeeded")]) is None


def test_default_disk_name_is_timestamped_and_fits_80_characters():
    now = datetime.datetime(2025, 3, 3, 14, 5, 9, tzinfo=UTC)
    assert default_disk_name("vm1_OsDisk_1", now) == "vm1_OsDisk_1-restored-20250303140509"
    # A second restore replaces the first one's timestamp.
    assert default_disk_name("vm1_OsDisk_1-restored-20250301020000", now) == "vm1_OsDisk_1-restored-20250303140509"
    long_name = default_disk_name("x" * 80, now)
    assert len(long_name) == 80 and long_name.endswith("-restored-20250303140509")
    assert valid_disk_name(long_name)


@pytest.mark.parametrize("name,valid", [
    ("disk-1", True), ("a", True), ("disk_", True), ("-disk", False), ("disk-", False), ("disk name", False),
    ("d" * 81, False), ("", False),
])
def test_valid_disk_name(name, valid):
    assert valid_disk_name(name) is valid


def test_parse_time_accepts_z_offsets_and_naive_utc():
    assert parse_time("2025-03-03T14:05:00Z") == datetime.datetime(2025, 3, 3, 14, 5, tzinfo=UTC)
    assert parse_time("2025-03-03T16:05:00+02:00") == datetime.datetime(2025, 3, 3, 14, 5, tzinfo=UTC)
    assert parse_time("2025-03-03 14:05") == datetime.datetime(2025, 3, 3, 14, 5, tzinfo=UTC)
    with pytest.raises(RollbackError, match="ISO 8601"):
        parse_time("yesterday")


def test_newest_before_is_strictly_before():
    def at(day):
        return datetime.datetime(2025, 3, day, 2, tzinfo=UTC)
    snaps = [{"name": "a", "time_created": at(1)}, {"name": "b", "time_created": at(3)},
             {"name": "c", "time_created": None}]
    assert newest_before(snaps, at(2))["name"] == "a"
    assert newest_before(snaps, at(4))["name"] == "b"
    assert newest_before(snaps, at(3))["name"] == "a"
    assert newest_before(snaps, at(1)) is None


@pytest.mark.parametrize("kwargs,message", [
    (dict(), "exactly one of snapshot"),
    (dict(snapshot="s", latest_before="2025-03-01T00:00:00Z"), "exactly one of snapshot"),
    (dict(snapshot="s", lun=-1), "lun must be 0 or more"),
    (dict(snapshot="s", wait_timeout=0), "wait_timeout"),
    (dict(snapshot="s", disk_name="bad name"), "not a valid managed disk name"),
    (dict(latest_before="soon"), "ISO 8601"),
])
def test_inputs_are_checked_before_any_call(kwargs, message):
    with pytest.raises(RollbackError, match=message):
        SnapshotRestore(None, **kwargs)


class Catalog:
    """Disks and snapshots by id, answering the two reads the lineage walk makes."""

    def __init__(self):
        self.items = {}

    def add_disk(self, name, source=None):
        self.items[disk_id(name).lower()] = SimpleNamespace(
            id=disk_id(name), name=name, creation_data=SimpleNamespace(source_resource_id=source))

    def add_snapshot(self, name, source_disk):
        self.items[snap_id(name).lower()] = SimpleNamespace(
            id=snap_id(name), name=name, creation_data=SimpleNamespace(source_resource_id=disk_id(source_disk)))

    def disk(self, resource_id):
        return self.items.get(resource_id.lower())

    def snapshot(self, resource_id):
        return self.items.get(resource_id.lower())


def test_lineage_follows_restores_back_to_the_original_disk():
    catalog = Catalog()
    catalog.add_disk("os-original")
    catalog.add_snapshot("snap-1", "os-original")
    catalog.add_disk("os-restored-1", source=snap_id("snap-1"))
    catalog.add_snapshot("snap-2", "os-restored-1")
    catalog.add_disk("os-restored-2", source=snap_id("snap-2"))
    restore = SnapshotRestore(catalog, snapshot="snap-1")
    assert restore._lineage(catalog.disk(disk_id("os-restored-2"))) == [
        disk_id("os-restored-2").lower(), disk_id("os-restored-1").lower(), disk_id("os-original").lower()]


def test_lineage_stops_at_a_deleted_disk_and_at_a_cycle():
    catalog = Catalog()
    catalog.add_snapshot("snap-gone", "deleted-disk")
    catalog.add_disk("os-restored", source=snap_id("snap-gone"))
    restore = SnapshotRestore(catalog, snapshot="snap-gone")
    assert restore._lineage(catalog.disk(disk_id("os-restored"))) == [
        disk_id("os-restored").lower(), disk_id("deleted-disk").lower()]
    catalog.add_disk("loop", source=disk_id("loop"))
    assert restore._lineage(catalog.disk(disk_id("loop"))) == [disk_id("loop").lower()]
