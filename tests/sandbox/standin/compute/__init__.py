"""Microsoft.Compute provider of the sandbox: virtual machines, managed disks, snapshots.

ARM (see routes.py): VMs (get with $expand=instanceView, list, instanceView,
create-or-update used to swap disks, deallocate, start, powerOff, restart),
disks (get, list, create as a copy of a snapshot, delete) and snapshots (get,
list), all writes long-running with Azure-AsyncOperation (asyncops.py).

Admin:
  GET        /_sandbox/compute           this provider's part of /_sandbox/state
  GET / PUT  /_sandbox/compute/settings  operation durations in seconds (PUT merges)

Faults: `/_sandbox/faults` applies as everywhere (throttle, error, timeout,
slow); `lro_fail` on a write makes its operation end Failed (a start: code
AllocationFailed, the VM stays deallocated), unless the fault sets `code`.
"""

from ..settings import AdminSettings
from ..web import Response
from .asyncops import ComputeOperations
from .model import ComputeState
from .routes import ComputeRoutes

# Seconds each operation stays InProgress. Azure takes about 30-90 s to
# deallocate or start a VM and seconds to minutes to copy a disk; these
# defaults keep the shape (a start is slower than a disk copy) at a pace a demo
# can sit through. Tests PUT small values.
DEFAULT_DURATIONS = {
    "deallocate_s": 4.0,
    "start_s": 5.0,
    "power_off_s": 3.0,
    "restart_s": 5.0,
    "vm_update_s": 2.0,
    "disk_create_s": 3.0,
    "disk_delete_s": 1.0,
}


class ComputeProvider:
    name = "compute"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.faults = faults
        self.durations = AdminSettings(sandbox, "compute", DEFAULT_DURATIONS)
        self.state = self._seeded_state()
        self.operations = ComputeOperations(sandbox, arm)
        ComputeRoutes(self).register()
        sandbox.admin.add("GET", r"/_sandbox/compute", self._get_state)
        sandbox.on_reset(self._reset)

    def _seeded_state(self):
        return ComputeState(self.sandbox.seed_section(self.name), self.sandbox.subscription_id,
                            self.sandbox.seed_section("resource_groups") or [])

    def _reset(self):
        self.operations.reset()
        self.durations.reset()
        self.state = self._seeded_state()

    def duration(self, setting):
        return self.durations[setting]

    # -- admin -------------------------------------------------------------------------
    def _get_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        state = self.state

        def disk_view(disk):
            return {"id": state.disk_id(disk), "name": disk.name, "content": disk.content,
                    "source": disk.creation.get("sourceResourceId"), "managed_by": disk.managed_by,
                    "provisioning_state": disk.provisioning_state, "os_type": disk.os_type,
                    "size_gb": disk.size_gb, "tags": dict(disk.tags)}

        vms = []
        for vm in state.vms.values():
            vms.append({
                "id": state.vm_id(vm),
                "resource_group": vm.resource_group,
                "name": vm.name,
                "power_state": vm.power_state,
                "provisioning_state": vm.provisioning_state,
                "busy": vm.busy,
                "os_disk": disk_view(vm.os_disk),
                "data_disks": {str(lun): disk_view(d) for lun, d in sorted(vm.data_disks.items())},
                # What the VM serves now: its OS disk's content while it runs, nothing otherwise.
                "running_content": vm.os_disk.content if vm.power_state == "running" else None,
                "history": list(vm.history),
            })
        return {
            "settings": dict(self.durations),
            "virtual_machines": vms,
            "disks": [disk_view(d) for d in state.disks.values()],
            "snapshots": [{"id": state.snapshot_id(s), "name": s.name, "source": s.source_disk_id,
                           "time_created": s.time_created, "content": s.content}
                          for s in state.snapshots.values()],
            "operations": self.operations.list(),
        }

    def env(self):
        return {}

    def stop(self):
        self.operations.reset()
