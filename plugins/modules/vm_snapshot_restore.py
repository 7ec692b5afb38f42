#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_snapshot_restore
short_description: Restore an Azure VM's OS disk or a data disk from a managed-disk snapshot
version_added: 0.1.0
description:
  - The infrastructure rollback of the runbooks ("restore the last VM snapshot"). Copies a snapshot into a new
    managed disk, deallocates the VM, swaps the new disk in (Azure swaps an OS disk only while the VM is
    deallocated), starts the VM and waits until it reports C(PowerState/running).
  - The old disk is never deleted. Its id is returned (RV(old_disk_id)), so a person can swap it back.
  - Idempotent by desired state. When the disk in the slot was already copied from the snapshot, nothing changes
    (a VM left deallocated by an earlier failed run is started when O(start_vm=true)). A re-run after a failure
    between the copy and the swap reuses the disk already copied, instead of copying again.
  - The snapshot must have been taken of the disk in that slot, or of a disk it was itself restored from (the
    C(creationData.sourceResourceId) chain). A snapshot of another VM's disk, or of another disk of this VM, is
    refused unless O(allow_foreign_snapshot=true).
  - Every input is checked before anything changes (VM, lun, snapshot, ownership, disk name).
    In check mode the module reports the snapshot it chose, the disk it would create and what it would swap.
    With C(--diff) it shows the disk in the slot before and after.
  - When a step fails half way (for example the VM does not start after the swap), the task fails with the
    state reached, that is the power state, which disk is attached, and the new and old disk ids.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  resource_group:
    description: The resource group of the VM. Snapshots given by name are looked up here as well.
    type: str
    required: true
  vm_name:
    description: The virtual machine to restore.
    type: str
    required: true
    aliases: [name]
  lun:
    description:
      - Restore the data disk at this logical unit number instead of the OS disk.
    type: int
  snapshot:
    description:
      - The snapshot to restore, by name (in O(resource_group)) or by full resource id.
      - Exactly one of O(snapshot) and O(latest_before) is required.
    type: str
  latest_before:
    description:
      - Restore the newest snapshot of the disk taken before this time (ISO 8601, for example
        C(2025-03-03T14:05:00Z); a time without offset is UTC). Use the time the bad change went out, as
        the incident timeline states it.
      - Snapshots of the disk in O(resource_group) are considered.
    type: str
  disk_name:
    description:
      - The name of the new disk. Defaults to C(<old disk name>-restored-<UTC yyyymmddHHMMSS>).
    type: str
  allow_foreign_snapshot:
    description:
      - Restore a snapshot that was not taken of this slot's disk (another VM's, or another disk of this VM).
    type: bool
    default: false
  start_vm:
    description:
      - Start the VM after the swap and wait until it runs. With V(false) the VM is left deallocated.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole restore (copy, deallocate, swap, start) may take. When it passes, the task fails
        with the state reached; Azure may still be working on the last step.
    type: int
    default: 1800
notes:
  - Needs C(Microsoft.Compute/snapshots/read), C(Microsoft.Compute/disks/read) and C(write),
    C(Microsoft.Compute/virtualMachines/read), C(write), C(deallocate/action) and C(start/action).
  - The VM is deallocated for the swap, for a data disk as well (a disk is not pulled from under a running
    system). Expect the VM to be down for the deallocate, swap and start, typically a few minutes.
  - The new disk gets the old disk's SKU, the VM's location and zone, and the tags
    C(sre-rollback-restored-from) and C(sre-rollback-replaces).
seealso:
  - module: sre.rollback.health_check
requirements:
  - azure-mgmt-compute >= 37
"""

EXAMPLES = r"""
- name: Restore the OS disk from the last snapshot taken before the bad deploy (fusionnet runbook 4.3)
  sre.rollback.vm_snapshot_restore:
    resource_group: rg-fusionnet-production
    vm_name: vm-fusionnet-api-01
    latest_before: "2025-03-03T14:05:00Z"
    wait_timeout: 1200
  register: restored

- name: Tell the channel how to swap back if needed
  ansible.builtin.debug:
    msg: "Restored from {{ restored.snapshot.name }}; the old disk is {{ restored.old_disk_id }}"

- name: Preview restoring the data disk at lun 0 from a named snapshot
  sre.rollback.vm_snapshot_restore:
    resource_group: rg-fusionnet-production
    vm_name: vm-fusionnet-api-01
    lun: 0
    snapshot: snap-fusionnet-api-01-data0-20250301
  check_mode: true
  diff: true
"""

RETURN = r"""
vm:
  description: The VM name.
  returned: always
  type: str
vm_id:
  description: The VM resource id.
  returned: always
  type: str
target:
  description: The slot restored, C(os_disk) or C(data_disk_lun_<n>).
  returned: always
  type: str
snapshot:
  description: The snapshot restored (C(id), C(name), C(time_created), C(source_disk_id), C(os_type), C(size_gb)).
  returned: always
  type: dict
new_disk_id:
  description: The disk copied from the snapshot (in check mode, the id it would get). Null when nothing changed.
  returned: always
  type: str
new_disk_name:
  description: Its name.
  returned: always
  type: str
old_disk_id:
  description: The disk that was in the slot before; kept, to swap back. Null when nothing changed.
  returned: always
  type: str
old_disk_name:
  description: Its name.
  returned: when changed
  type: str
reused_disk:
  description: Whether a disk copied from the snapshot by an earlier, interrupted run was reused.
  returned: when changed
  type: bool
before:
  description: The slot before (C(disk_id), C(disk_name), C(disk_source_id), C(power_state), C(provisioning_error)).
  returned: always
  type: dict
after:
  description: The slot after, read back from Azure (in check mode, the prediction).
  returned: always
  type: dict
progress:
  description: The steps taken (C(create_disk), C(deallocate), C(swap_disk), C(start)), each with its operation's status log.
  returned: always
  type: list
  elements: dict
message:
  description: What was done, in one sentence.
  returned: always
  type: str
state_reached:
  description:
    - On failure, where the VM was left (C(power_state), C(disk_id), C(disk_name), C(disk_source_id),
      C(provisioning_error)), together with RV(new_disk_id) and RV(old_disk_id).
  returned: on failure after a change
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_vm_disks import (
    VM_DISK_LIBRARIES,
    SnapshotRestore,
    VmDisks,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            vm_name=dict(type="str", required=True, aliases=["name"]),
            lun=dict(type="int"),
            snapshot=dict(type="str"),
            latest_before=dict(type="str"),
            disk_name=dict(type="str"),
            allow_foreign_snapshot=dict(type="bool", default=False),
            start_vm=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
        required_one_of=[("snapshot", "latest_before")],
        mutually_exclusive=[("snapshot", "latest_before")],
    )
    module.require_libraries(VM_DISK_LIBRARIES)
    params = module.params

    def restore():
        # Inputs are checked before any Azure call.
        restore_plan = SnapshotRestore(
            None, lun=params["lun"], snapshot=params["snapshot"], latest_before=params["latest_before"],
            disk_name=params["disk_name"], allow_foreign_snapshot=params["allow_foreign_snapshot"],
            start_vm=params["start_vm"], wait_timeout=params["wait_timeout"],
        )
        restore_plan.api = VmDisks.from_params(params)
        changed, result = restore_plan.run(check_mode=module.check_mode)
        if not module.diff_mode:
            result.pop("diff", None)
        return changed, result

    module.run(restore)


if __name__ == "__main__":
    main()
