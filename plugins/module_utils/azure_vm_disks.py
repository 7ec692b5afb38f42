# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restore an Azure VM's OS disk (or a data disk) from a managed-disk snapshot.

The runbook step "restore the last VM snapshot" is, in Azure, four operations:
copy the snapshot into a new managed disk, deallocate the VM, swap the new disk
in (Azure refuses to swap an OS disk of a VM that is not deallocated), start
the VM.  ``VmDisks`` makes the Azure calls; ``SnapshotRestore`` decides, checks
the inputs before anything changes, and reports the state reached when a step
fails half way, so a person can finish or undo it.  The old disk is never
deleted: its id is returned so it can be swapped back.

Which snapshots belong to a disk: its *lineage*.  A disk created from a
snapshot records the snapshot in ``creationData.sourceResourceId``, and the
snapshot records the disk it was taken from; following that chain upwards
gives every disk the VM's slot ran before, so the snapshots of the original OS
disk still count as "this VM's" after an earlier restore.
"""

from __future__ import annotations

import datetime
import re
import time
import traceback

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_IDENTITY_IMPORT_ERROR, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import wait_for_operation

try:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.compute import ComputeManagementClient
except ImportError:
    AZURE_COMPUTE_IMPORT_ERROR = traceback.format_exc()
    ResourceNotFoundError = None
else:
    AZURE_COMPUTE_IMPORT_ERROR = None

VM_DISK_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-compute", AZURE_COMPUTE_IMPORT_ERROR)]

# azure-core polls at the service's Retry-After; without one, this often (seconds).
POLL_INTERVAL_S = 1
# How far up a disk's creation chain the lineage is followed.
MAX_LINEAGE_DEPTH = 10
# Tags on a disk this module created: what it was restored from and what it replaced.
TAG_RESTORED_FROM = "sre-rollback-restored-from"
TAG_REPLACES = "sre-rollback-replaces"

_RESTORED_SUFFIX = re.compile(r"-restored-[0-9]{14}$")
_DISK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]$|^[A-Za-z0-9]$")


# ---- pure helpers (unit-tested) ---------------------------------------------------------

def parse_resource_id(resource_id):
    """``{"resource_group", "type", "name"}`` of an ARM id, or None when it is not one."""
    parts = (resource_id or "").strip("/").split("/")
    if len(parts) != 8 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" \
            or parts[4].lower() != "providers":
        return None
    return {"subscription": parts[1], "resource_group": parts[3], "type": "%s/%s" % (parts[5], parts[6]),
            "name": parts[7]}


def same_id(first, second):
    """ARM ids compare case-insensitively."""
    return bool(first) and bool(second) and first.lower() == second.lower()


def power_state_of(statuses):
    """``running``, ``deallocated``... from instance-view statuses (None when absent)."""
    for status in statuses or []:
        code = getattr(status, "code", None) or ""
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return None


def provisioning_error_of(statuses):
    """The message of a failed provisioning status (e.g. after a failed start), or None."""
    for status in statuses or []:
        code = getattr(status, "code", None) or ""
        if code.startswith("ProvisioningState/failed"):
            return "%s: %s" % (code.split("/", 2)[-1], getattr(status, "message", None) or "")
    return None


def default_disk_name(current_disk_name, now):
    """``<disk>-restored-<UTC yyyymmddHHMMSS>``, shortened to Azure's 80 characters.

    The timestamp of an earlier restore is replaced, not stacked, so names stay readable.
    """
    base = _RESTORED_SUFFIX.sub("", current_disk_name)
    suffix = "-restored-" + now.strftime("%Y%m%d%H%M%S")
    return base[:80 - len(suffix)] + suffix


def valid_disk_name(name):
    return bool(_DISK_NAME.match(name or ""))


def parse_time(value):
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime."""
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise RollbackError("latest_before must be an ISO 8601 time such as 2025-03-03T14:05:00Z, not %r."
                                % value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def newest_before(snapshots, before):
    """The snapshot (dict with ``time_created``) taken last strictly before ``before``, or None."""
    eligible = [s for s in snapshots if s["time_created"] is not None and s["time_created"] < before]
    return max(eligible, key=lambda s: s["time_created"]) if eligible else None


def describe_snapshot(snapshot):
    """Plain data of an SDK Snapshot."""
    creation = getattr(snapshot, "creation_data", None)
    created = getattr(snapshot, "time_created", None)
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "time_created": created,
        "source_disk_id": getattr(creation, "source_resource_id", None),
        "os_type": enum_value(getattr(snapshot, "os_type", None)),
        "size_gb": getattr(snapshot, "disk_size_gb", None),
    }


def enum_value(value):
    """``Linux`` rather than ``OperatingSystemTypes.LINUX`` (SDK enums are str subclasses)."""
    return getattr(value, "value", value) if value is not None else None


def snapshot_summary(snapshots):
    """``name (time)`` of each, newest first, for error messages."""
    ordered = sorted(snapshots, key=lambda s: s["time_created"] or datetime.datetime.min.replace(
        tzinfo=datetime.timezone.utc), reverse=True)
    return ", ".join("%s (%s)" % (s["name"], iso(s["time_created"])) for s in ordered) or "none"


def iso(value):
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# ---- Azure calls ------------------------------------------------------------------------

class VmDisks:
    """The Compute calls one restore needs, each worded for a person when it fails."""

    def __init__(self, client, resource_group, vm_name):
        self.client = client
        self.resource_group = resource_group
        self.vm_name = vm_name

    @classmethod
    def from_params(cls, params):
        settings = AzureSettings.from_params(params)
        credential = settings.credential()
        with arm_call("Signing in to Azure"):
            credential.get_token(settings.credential_scope)
        client = ComputeManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
        return cls(client, params["resource_group"], params["vm_name"])

    def vm(self):
        with arm_call("Reading VM %s" % self.vm_name,
                      not_found="VM '%s' not found in resource group '%s'." % (self.vm_name, self.resource_group)):
            return self.client.virtual_machines.get(self.resource_group, self.vm_name, expand="instanceView")

    def disk(self, disk_id):
        """The disk an id names, or None when it does not exist (any more)."""
        parts = parse_resource_id(disk_id)
        return self.disk_by_name(parts["name"], parts["resource_group"]) if parts else None

    def disk_by_name(self, name, resource_group=None):
        with arm_call("Reading disk %s" % name):
            try:
                return self.client.disks.get(resource_group or self.resource_group, name)
            except ResourceNotFoundError:
                return None  # a disk of the lineage may have been deleted since

    def snapshot(self, name_or_id):
        parts = parse_resource_id(name_or_id)
        resource_group, name = (parts["resource_group"], parts["name"]) if parts else (self.resource_group, name_or_id)
        if parts and parts["type"].lower() != "microsoft.compute/snapshots":
            raise RollbackError("snapshot %r is not a Microsoft.Compute/snapshots id." % name_or_id)
        with arm_call("Reading snapshot %s" % name):
            try:
                return self.client.snapshots.get(resource_group, name)
            except ResourceNotFoundError:
                return None

    def snapshots(self):
        with arm_call("Listing the snapshots of resource group %s" % self.resource_group):
            return [describe_snapshot(s) for s in self.client.snapshots.list_by_resource_group(self.resource_group)]

    def disks(self):
        with arm_call("Listing the disks of resource group %s" % self.resource_group):
            return list(self.client.disks.list_by_resource_group(self.resource_group))

    # -- long-running ----------------------------------------------------------------------
    def _wait(self, what, begin, timeout_s):
        with arm_call(what):
            poller = begin()
            return wait_for_operation(poller, timeout_s, what), poller

    def create_disk(self, name, body, timeout_s):
        progress, poller = self._wait("Creating disk %s" % name, lambda: self.client.disks.begin_create_or_update(
            self.resource_group, name, body, polling_interval=POLL_INTERVAL_S), timeout_s)
        return poller.result(), progress

    def deallocate(self, timeout_s):
        return self._wait("Deallocating VM %s" % self.vm_name, lambda: self.client.virtual_machines.begin_deallocate(
            self.resource_group, self.vm_name, polling_interval=POLL_INTERVAL_S), timeout_s)[0]

    def start(self, timeout_s):
        return self._wait("Starting VM %s" % self.vm_name, lambda: self.client.virtual_machines.begin_start(
            self.resource_group, self.vm_name, polling_interval=POLL_INTERVAL_S), timeout_s)[0]

    def update(self, vm, timeout_s):
        return self._wait("Swapping the disk of VM %s" % self.vm_name,
                          lambda: self.client.virtual_machines.begin_create_or_update(
                              self.resource_group, self.vm_name, vm, polling_interval=POLL_INTERVAL_S), timeout_s)[0]


# ---- the decision and the procedure -------------------------------------------------------

class SnapshotRestore:
    """Restore one disk slot of one VM from a snapshot, by desired state."""

    def __init__(self, api, lun=None, snapshot=None, latest_before=None, disk_name=None,
                 allow_foreign_snapshot=False, start_vm=True, wait_timeout=1800, now=None):
        if (snapshot is None) == (latest_before is None):
            raise RollbackError("Give exactly one of snapshot (a name or id) and latest_before (a time).")
        if lun is not None and lun < 0:
            raise RollbackError("lun must be 0 or more.")
        if wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        if disk_name is not None and not valid_disk_name(disk_name):
            raise RollbackError("disk_name %r is not a valid managed disk name (1-80 letters, digits, '_', '.', '-'; "
                                "starting with a letter or digit, ending with a letter, digit or '_')." % disk_name)
        self.api = api
        self.lun = lun
        self.snapshot_ref = snapshot
        self.latest_before = parse_time(latest_before) if latest_before is not None else None
        self.disk_name = disk_name
        self.allow_foreign_snapshot = allow_foreign_snapshot
        self.start_vm = start_vm
        self.wait_timeout = wait_timeout
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.progress = []

    @property
    def slot(self):
        return "os_disk" if self.lun is None else "data_disk_lun_%d" % self.lun

    def _slot_label(self):
        return "OS disk" if self.lun is None else "data disk at lun %d" % self.lun

    # -- reading the VM ------------------------------------------------------------------
    def _slot_disk_ref(self, vm):
        """(name, id) of the disk now in the slot; fails clearly for a lun with no disk."""
        storage = vm.storage_profile
        if self.lun is None:
            return storage.os_disk.name, storage.os_disk.managed_disk.id
        for data_disk in storage.data_disks or []:
            if data_disk.lun == self.lun:
                return data_disk.name, data_disk.managed_disk.id
        luns = sorted(d.lun for d in storage.data_disks or [])
        raise RollbackError("VM '%s' has no data disk at lun %d; its data disks are at lun %s."
                            % (self.api.vm_name, self.lun, ", ".join(str(n) for n in luns) or "(none)"))

    def _vm_disks(self, vm):
        """{disk id (lowercase): label} of every disk attached to the VM."""
        storage = vm.storage_profile
        disks = {storage.os_disk.managed_disk.id.lower(): "the OS disk"}
        for data_disk in storage.data_disks or []:
            disks[data_disk.managed_disk.id.lower()] = "the data disk at lun %d" % data_disk.lun
        return disks

    def _lineage(self, disk):
        """Ids (lowercase) of the disk and of every disk it was restored from, nearest first."""
        lineage = [disk.id.lower()]
        current = disk
        for _depth in range(MAX_LINEAGE_DEPTH):
            source_id = getattr(current.creation_data, "source_resource_id", None) if current else None
            parts = parse_resource_id(source_id)
            if parts is None:
                break
            if parts["type"].lower() == "microsoft.compute/snapshots":
                snapshot = self.api.snapshot(source_id)
                disk_id = getattr(getattr(snapshot, "creation_data", None), "source_resource_id", None)
            else:
                disk_id = source_id
            if not disk_id or disk_id.lower() in lineage:
                break
            lineage.append(disk_id.lower())
            current = self.api.disk(disk_id)
        return lineage

    def state(self, vm=None):
        """What the slot runs and the VM's power state, as plain data."""
        vm = vm or self.api.vm()
        name, disk_id = self._slot_disk_ref(vm)
        disk = self.api.disk(disk_id)
        statuses = getattr(getattr(vm, "instance_view", None), "statuses", None)
        return {
            "disk_id": disk_id,
            "disk_name": name,
            "disk_source_id": getattr(getattr(disk, "creation_data", None), "source_resource_id", None),
            "power_state": power_state_of(statuses),
            "provisioning_error": provisioning_error_of(statuses),
        }

    # -- choosing the snapshot ------------------------------------------------------------
    def _choose_snapshot(self, lineage):
        if self.snapshot_ref is not None:
            snapshot = self.api.snapshot(self.snapshot_ref)
            if snapshot is None:
                own = [s for s in self.api.snapshots() if (s["source_disk_id"] or "").lower() in lineage]
                raise RollbackError(
                    "Snapshot '%s' not found (resource group '%s'). Snapshots of the %s of VM '%s': %s."
                    % (self.snapshot_ref, self.api.resource_group, self._slot_label(), self.api.vm_name,
                       snapshot_summary(own)))
            return describe_snapshot(snapshot)
        own = [s for s in self.api.snapshots() if (s["source_disk_id"] or "").lower() in lineage]
        chosen = newest_before(own, self.latest_before)
        if chosen is None:
            raise RollbackError(
                "No snapshot of the %s of VM '%s' was taken before %s in resource group '%s'. Its snapshots: %s."
                % (self._slot_label(), self.api.vm_name, iso(self.latest_before), self.api.resource_group,
                   snapshot_summary(own)))
        return chosen

    def _check_ownership(self, vm, snapshot, lineage):
        source = (snapshot["source_disk_id"] or "").lower()
        if source in lineage or self.allow_foreign_snapshot:
            return
        other_slot = self._vm_disks(vm).get(source)
        if other_slot:
            whose = "%s of VM '%s'" % (other_slot, self.api.vm_name)
        else:
            source_disk = self.api.disk(snapshot["source_disk_id"]) if source else None
            owner = parse_resource_id(getattr(source_disk, "managed_by", None) or "")
            whose = "disk '%s'%s" % ((parse_resource_id(snapshot["source_disk_id"]) or {}).get("name") or "(unknown)",
                                     ", attached to VM '%s'" % owner["name"] if owner else "")
        raise RollbackError(
            "Snapshot '%s' was taken of %s, not of the %s of VM '%s' (or a disk it was restored from). "
            "Nothing was changed. Set allow_foreign_snapshot=true to restore it anyway."
            % (snapshot["name"], whose, self._slot_label(), self.api.vm_name),
            snapshot=snapshot["id"])

    # -- the new disk ---------------------------------------------------------------------
    def _reusable_disk(self, snapshot, current_name):
        """A disk this module already copied from the snapshot for this slot and never attached
        (a run that failed after the copy): reusing it makes the re-run converge."""
        for disk in self.api.disks():
            tags = getattr(disk, "tags", None) or {}
            if disk.managed_by or not same_id(getattr(disk.creation_data, "source_resource_id", None), snapshot["id"]):
                continue
            if self.disk_name is not None and disk.name.lower() == self.disk_name.lower():
                return disk
            if self.disk_name is None and tags.get(TAG_REPLACES) == current_name:
                return disk
        return None

    def _plan_disk(self, snapshot, current_name):
        reusable = self._reusable_disk(snapshot, current_name)
        if reusable is not None:
            return reusable.name, reusable
        name = self.disk_name or default_disk_name(current_name, self.now)
        existing = self.api.disk_by_name(name)
        if existing is not None:
            raise RollbackError("A disk named '%s' already exists in resource group '%s' and was not copied from "
                                "snapshot '%s' (or is attached). Choose another disk_name." %
                                (name, self.api.resource_group, snapshot["name"]))
        return name, None

    # -- run ------------------------------------------------------------------------------
    def run(self, check_mode=False):
        vm = self.api.vm()
        before = self.state(vm)
        current_disk = self.api.disk(before["disk_id"])
        if current_disk is None:
            raise RollbackError("The %s of VM '%s' (%s) cannot be read." % (self._slot_label(), self.api.vm_name,
                                                                            before["disk_id"]))
        lineage = self._lineage(current_disk)
        snapshot = self._choose_snapshot(lineage)
        self._check_ownership(vm, snapshot, lineage)
        result = {
            "vm": self.api.vm_name,
            "vm_id": vm.id,
            "target": self.slot,
            "snapshot": {k: (iso(v) if k == "time_created" else v) for k, v in snapshot.items()},
            "old_disk_id": None,
            "new_disk_id": None,
            "new_disk_name": None,
            "progress": self.progress,
        }
        restored = same_id(before["disk_source_id"], snapshot["id"])
        needs_start = self.start_vm and before["power_state"] != "running"
        if restored:
            after = dict(before, power_state="running" if needs_start else before["power_state"])
            result.update(before=before, after=after, diff=self._diff(before, after, snapshot))
            if needs_start and not check_mode:
                self._act(self._start, result, before)
                result["after"] = self.state()
            result["message"] = "The %s of VM '%s' already runs a disk copied from snapshot '%s'%s." % (
                self._slot_label(), self.api.vm_name, snapshot["name"],
                "; the VM was %s and is started" % before["power_state"] if needs_start else "")
            return needs_start, result

        new_name, reusable = self._plan_disk(snapshot, before["disk_name"])
        planned_id = "%s/%s" % (current_disk.id.rsplit("/", 1)[0], new_name)
        after = {"disk_id": reusable.id if reusable else planned_id, "disk_name": new_name,
                 "disk_source_id": snapshot["id"],
                 "power_state": "running" if self.start_vm else "deallocated", "provisioning_error": None}
        result.update(before=before, after=after, old_disk_id=before["disk_id"], old_disk_name=before["disk_name"],
                      new_disk_id=after["disk_id"], new_disk_name=new_name, reused_disk=reusable is not None,
                      diff=self._diff(before, after, snapshot))
        if check_mode:
            result["message"] = "Would copy snapshot '%s' into disk '%s', deallocate VM '%s', swap it in as the %s%s." % (
                snapshot["name"], new_name, self.api.vm_name, self._slot_label(), " and start the VM" if self.start_vm else "")
            return True, result

        def procedure(deadline):
            disk = reusable
            if disk is None:
                disk = self._create_disk(new_name, snapshot, current_disk, vm, before["disk_name"], deadline)
            result["new_disk_id"] = disk.id
            if power_state_of(self.api.vm().instance_view.statuses) != "deallocated":
                self.progress.append({"step": "deallocate", "operation": self.api.deallocate(self._left(deadline))})
            self._swap(disk, deadline)
            if self.start_vm:
                self._start(deadline)

        self._act(procedure, result, before)
        result["after"] = self.state()
        result["diff"] = self._diff(before, result["after"], snapshot)
        result["message"] = "The %s of VM '%s' now runs disk '%s', copied from snapshot '%s'; the old disk '%s' is kept." % (
            self._slot_label(), self.api.vm_name, new_name, snapshot["name"], before["disk_name"])
        return True, result

    def _left(self, deadline):
        """Seconds left of wait_timeout for the next step (whole tenths, for readable messages)."""
        left = round(deadline - time.monotonic(), 1)
        if left <= 0:
            raise RollbackError("wait_timeout (%s s) passed before the restore finished." % self.wait_timeout)
        return left

    def _create_disk(self, name, snapshot, current_disk, vm, current_name, deadline):
        properties = {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot["id"]}}
        if self.lun is None and snapshot.get("os_type"):
            properties["osType"] = snapshot["os_type"]
        body = {
            "location": vm.location,
            "sku": {"name": str(current_disk.sku.name)} if getattr(current_disk, "sku", None) else None,
            "tags": {TAG_RESTORED_FROM: snapshot["name"], TAG_REPLACES: current_name},
            "properties": properties,
        }
        if getattr(vm, "zones", None):
            body["zones"] = list(vm.zones)
        disk, operation = self.api.create_disk(name, {k: v for k, v in body.items() if v is not None},
                                               self._left(deadline))
        self.progress.append({"step": "create_disk", "disk": name, "operation": operation})
        return disk

    def _swap(self, disk, deadline):
        vm = self.api.vm()
        storage = vm.storage_profile
        if self.lun is None:
            storage.os_disk.managed_disk.id = disk.id
            storage.os_disk.name = disk.name
        else:
            for data_disk in storage.data_disks:
                if data_disk.lun == self.lun:
                    data_disk.managed_disk.id = disk.id
                    data_disk.name = disk.name
        # Read-only parts (instanceView, provisioningState) are left out of the PUT by the SDK.
        self.progress.append({"step": "swap_disk", "disk": disk.name, "operation": self.api.update(vm, self._left(deadline))})

    def _start(self, deadline):
        self.progress.append({"step": "start", "operation": self.api.start(self._left(deadline))})
        # The start operation ends when Azure reports the VM running; confirm it from the instance view.
        while True:
            power = power_state_of(self.api.vm().instance_view.statuses)
            if power == "running":
                return
            self._left(deadline)
            time.sleep(POLL_INTERVAL_S)

    def _act(self, procedure, result, before):
        deadline = time.monotonic() + self.wait_timeout
        try:
            procedure(deadline)
        except RollbackError as error:
            raise self._failure(error, result, before) from error

    def _failure(self, error, result, before):
        """The failed step, and exactly where the VM was left, for a person to act on."""
        try:
            reached = self.state()
        except RollbackError as read_error:
            reached = {"unknown": "the state could not be read after the failure: %s" % read_error.message}
        swapped = not same_id(reached.get("disk_id"), before["disk_id"]) if "disk_id" in reached else None
        advice = []
        if swapped:
            advice.append("the new disk is attached; start the VM (or re-run this task) to finish")
        elif result.get("new_disk_id"):
            advice.append("the new disk exists but is not attached; re-run this task to reuse it")
        if result.get("old_disk_id"):
            advice.append("the old disk %s is kept and can be swapped back" % result.get("old_disk_name"))
        advice_text = "; ".join(advice) or "check the VM"
        message = "%s. State reached: VM %s is %s, its %s is '%s'%s. %s." % (
            error.message.rstrip("."), self.api.vm_name, reached.get("power_state") or "in an unknown state",
            self._slot_label(), reached.get("disk_name") or "unknown",
            " (the restored disk)" if swapped else " (not swapped)" if swapped is False else "",
            advice_text[0].upper() + advice_text[1:])
        details = dict(error.details)
        details.update(state_reached=reached, new_disk_id=result.get("new_disk_id"),
                       old_disk_id=result.get("old_disk_id"), snapshot=result.get("snapshot"),
                       progress=self.progress)
        return RollbackError(message, **details)

    def _diff(self, before, after, snapshot):
        def view(state):
            return "%s: %s\n  id: %s\n  copied from: %s\nVM power state: %s\n" % (
                self._slot_label(), state.get("disk_name"), state.get("disk_id"), state.get("disk_source_id") or "-",
                state.get("power_state"))
        return {"before": view(before), "after": view(after),
                "before_header": "%s (now)" % self.api.vm_name,
                "after_header": "%s (restored from %s)" % (self.api.vm_name, snapshot["name"])}
