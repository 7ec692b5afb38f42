"""State of the Microsoft.Compute stand-in: virtual machines, managed disks, snapshots.

Names are case-insensitive within a resource group, as in ARM. Every disk and
snapshot carries a `content` label of the sandbox's own (what is "on" it). A
disk copied from a snapshot gets the snapshot's content, so which build a VM
boots is visible in /_sandbox/compute and follows the OS disk swapped in.
Real ARM has no such property and the stand-in never returns it through ARM.
"""

import uuid

from ..core import iso, utcnow

# Power states of a VM, as the instance view names them (PowerState/<state>).
RUNNING, DEALLOCATED, STOPPED = "running", "deallocated", "stopped"
STARTING, DEALLOCATING, STOPPING = "starting", "deallocating", "stopping"


def _key(resource_group, name):
    return (resource_group.lower(), name.lower())


class Disk:
    def __init__(self, resource_group, name, location, size_gb, sku, os_type=None, creation=None,
                 content=None, time_created=None, tags=None):
        self.resource_group = resource_group
        self.name = name
        self.location = location
        self.size_gb = int(size_gb)
        self.sku = sku or "Standard_LRS"
        self.os_type = os_type
        self.creation = dict(creation or {"createOption": "Empty"})
        self.content = content
        self.time_created = time_created or iso(utcnow())
        self.tags = dict(tags or {})
        self.unique_id = str(uuid.uuid4())
        self.managed_by = None  # id of the VM it is attached to
        self.provisioning_state = "Succeeded"


class Snapshot:
    def __init__(self, resource_group, name, location, source_disk, content, time_created, tags=None):
        self.resource_group = resource_group
        self.name = name
        self.location = location
        self.source_disk_id = source_disk["id"]
        self.source_unique_id = source_disk["unique_id"]
        self.os_type = source_disk["os_type"]
        self.size_gb = source_disk["size_gb"]
        self.content = content
        self.time_created = time_created
        self.tags = dict(tags or {})
        self.unique_id = str(uuid.uuid4())


class VirtualMachine:
    def __init__(self, resource_group, name, location, size, power_state, os_disk, data_disks, tags=None,
                 time_created=None):
        self.resource_group = resource_group
        self.name = name
        self.location = location
        self.size = size
        self.power_state = power_state
        self.provisioning_state = "Succeeded"
        self.provisioning_error = None  # (code, message) after a failed operation
        self.os_disk = os_disk              # Disk
        self.data_disks = dict(data_disks)  # lun -> Disk
        self.tags = dict(tags or {})
        self.time_created = time_created or iso(utcnow())
        self.vm_id = str(uuid.uuid4())
        self.busy = None  # name of the operation running on it
        self.history = []  # what happened, for /_sandbox/compute

    def record(self, event, **details):
        self.history.append({"time": iso(utcnow()), "event": event, **details})


class ComputeState:
    def __init__(self, seed, subscription_id, resource_groups):
        self.subscription_id = subscription_id
        self.disks = {}
        self.snapshots = {}
        self.vms = {}
        locations = {rg["name"].lower(): rg["location"] for rg in resource_groups}
        for entry in seed.get("disks", []):
            rg = entry["resource_group"]
            self.add_disk(Disk(rg, entry["name"], locations.get(rg.lower(), "westeurope"), entry.get("size_gb", 32),
                               entry.get("sku"), entry.get("os_type"), entry.get("creation"), entry.get("content"),
                               entry.get("time_created"), entry.get("tags")))
        for entry in seed.get("snapshots", []):
            rg = entry["resource_group"]
            source = self.disk(rg, entry["source_disk"])
            self.snapshots[_key(rg, entry["name"])] = Snapshot(
                rg, entry["name"], locations.get(rg.lower(), "westeurope"),
                {"id": self.disk_id(source), "unique_id": source.unique_id, "os_type": source.os_type,
                 "size_gb": source.size_gb},
                entry.get("content", source.content), entry["time_created"], entry.get("tags"))
        for entry in seed.get("virtual_machines", []):
            rg = entry["resource_group"]
            vm = VirtualMachine(
                rg, entry["name"], locations.get(rg.lower(), "westeurope"), entry.get("size", "Standard_D2s_v5"),
                entry.get("power_state", RUNNING), self.disk(rg, entry["os_disk"]),
                {int(d["lun"]): self.disk(rg, d["disk"]) for d in entry.get("data_disks", [])},
                entry.get("tags"), entry.get("time_created"))
            self.vms[_key(rg, vm.name)] = vm
            for disk in [vm.os_disk, *vm.data_disks.values()]:
                disk.managed_by = self.vm_id(vm)

    # -- ids -----------------------------------------------------------------------------
    def _rg_id(self, resource_group):
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}"

    def vm_id(self, vm):
        return f"{self._rg_id(vm.resource_group)}/providers/Microsoft.Compute/virtualMachines/{vm.name}"

    def disk_id(self, disk):
        return f"{self._rg_id(disk.resource_group)}/providers/Microsoft.Compute/disks/{disk.name}"

    def snapshot_id(self, snapshot):
        return f"{self._rg_id(snapshot.resource_group)}/providers/Microsoft.Compute/snapshots/{snapshot.name}"

    # -- lookups -------------------------------------------------------------------------
    def vm(self, resource_group, name):
        return self.vms.get(_key(resource_group, name))

    def disk(self, resource_group, name):
        return self.disks.get(_key(resource_group, name))

    def snapshot(self, resource_group, name):
        return self.snapshots.get(_key(resource_group, name))

    def add_disk(self, disk):
        self.disks[_key(disk.resource_group, disk.name)] = disk

    def remove_disk(self, disk):
        self.disks.pop(_key(disk.resource_group, disk.name), None)

    def by_id(self, resource_id):
        """The disk or snapshot an ARM id names (case-insensitive), or None."""
        parts = (resource_id or "").strip("/").split("/")
        if len(parts) != 8 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
            return None
        if parts[1].lower() != self.subscription_id.lower() or parts[4].lower() != "providers":
            return None
        kind = f"{parts[5]}/{parts[6]}".lower()
        if kind == "microsoft.compute/disks":
            return self.disk(parts[3], parts[7])
        if kind == "microsoft.compute/snapshots":
            return self.snapshot(parts[3], parts[7])
        return None

    def in_group(self, table, resource_group):
        return [item for (rg, _name), item in table.items() if rg == resource_group.lower()]
