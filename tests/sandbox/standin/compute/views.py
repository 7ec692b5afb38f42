"""ARM JSON shapes of Microsoft.Compute virtual machines, disks and snapshots, as
azure-mgmt-compute 39 (VirtualMachine, Disk, Snapshot, VirtualMachineInstanceView)
deserializes them. The sandbox's `content` labels are never part of them.
"""

from . import model

POWER_DISPLAY = {
    model.RUNNING: "VM running",
    model.DEALLOCATED: "VM deallocated",
    model.STOPPED: "VM stopped",
    model.STARTING: "VM starting",
    model.DEALLOCATING: "VM deallocating",
    model.STOPPING: "VM stopping",
}


def _managed_disk(state, disk):
    return {"id": state.disk_id(disk), "storageAccountType": disk.sku}


def os_disk_view(state, disk):
    return {
        "osType": disk.os_type or "Linux",
        "name": disk.name,
        "createOption": "FromImage",
        "caching": "ReadWrite",
        "managedDisk": _managed_disk(state, disk),
        "deleteOption": "Detach",
        "diskSizeGB": disk.size_gb,
    }


def data_disk_view(state, lun, disk):
    return {
        "lun": lun,
        "name": disk.name,
        "createOption": "Attach",
        "caching": "ReadOnly",
        "writeAcceleratorEnabled": False,
        "managedDisk": _managed_disk(state, disk),
        "deleteOption": "Detach",
        "diskSizeGB": disk.size_gb,
        "toBeDetached": False,
    }


def instance_view(state, vm):
    if vm.provisioning_state == "Failed" and vm.provisioning_error:
        code, message = vm.provisioning_error
        provisioning = {"code": f"ProvisioningState/failed/{code}", "level": "Error",
                        "displayStatus": "Provisioning failed", "message": message}
    else:
        provisioning = {"code": f"ProvisioningState/{vm.provisioning_state.lower()}", "level": "Info",
                        "displayStatus": "Provisioning succeeded" if vm.provisioning_state == "Succeeded"
                        else vm.provisioning_state}
    statuses = [provisioning,
                {"code": f"PowerState/{vm.power_state}", "level": "Info",
                 "displayStatus": POWER_DISPLAY.get(vm.power_state, vm.power_state)}]
    disks = [vm.os_disk, *[vm.data_disks[lun] for lun in sorted(vm.data_disks)]]
    return {
        "computerName": vm.name,
        "osName": "ubuntu",
        "osVersion": "22.04",
        "hyperVGeneration": "V2",
        "disks": [{"name": d.name, "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                                                 "displayStatus": "Provisioning succeeded"}]} for d in disks],
        "statuses": statuses,
    }


def vm_resource(state, vm, with_instance_view=False):
    properties = {
        "vmId": vm.vm_id,
        "hardwareProfile": {"vmSize": vm.size},
        "storageProfile": {
            "imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                               "sku": "22_04-lts-gen2", "version": "latest"},
            "osDisk": os_disk_view(state, vm.os_disk),
            "dataDisks": [data_disk_view(state, lun, vm.data_disks[lun]) for lun in sorted(vm.data_disks)],
            "diskControllerType": "SCSI",
        },
        "osProfile": {
            "computerName": vm.name,
            "adminUsername": "azureuser",
            "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True},
            "secrets": [],
            "allowExtensionOperations": True,
        },
        "networkProfile": {"networkInterfaces": [{
            "id": f"/subscriptions/{state.subscription_id}/resourceGroups/{vm.resource_group}"
                  f"/providers/Microsoft.Network/networkInterfaces/{vm.name}-nic"}]},
        "provisioningState": vm.provisioning_state,
        "timeCreated": vm.time_created,
    }
    if with_instance_view:
        properties["instanceView"] = instance_view(state, vm)
    return {
        "id": state.vm_id(vm),
        "name": vm.name,
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": dict(vm.tags),
        "properties": properties,
    }


def disk_state(state, disk):
    if disk.managed_by is None:
        return "Unattached"
    vm = next((v for v in state.vms.values() if state.vm_id(v).lower() == disk.managed_by.lower()), None)
    # A disk of a deallocated VM is "Reserved": attached, but to no running host.
    return "Reserved" if vm is not None and vm.power_state == model.DEALLOCATED else "Attached"


def disk_resource(state, disk):
    properties = {
        "hyperVGeneration": "V2" if disk.os_type else None,
        "creationData": dict(disk.creation),
        "diskSizeGB": disk.size_gb,
        "diskSizeBytes": disk.size_gb * 1024 ** 3,
        "uniqueId": disk.unique_id,
        "provisioningState": disk.provisioning_state,
        "timeCreated": disk.time_created,
        "diskState": disk_state(state, disk),
        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        "networkAccessPolicy": "AllowAll",
        "publicNetworkAccess": "Enabled",
    }
    if disk.os_type:
        properties["osType"] = disk.os_type
    body = {
        "id": state.disk_id(disk),
        "name": disk.name,
        "type": "Microsoft.Compute/disks",
        "location": disk.location,
        "tags": dict(disk.tags),
        "sku": {"name": disk.sku, "tier": disk.sku.split("_", 1)[0]},
        "properties": {k: v for k, v in properties.items() if v is not None},
    }
    if disk.managed_by:
        body["managedBy"] = disk.managed_by
    return body


def snapshot_resource(state, snapshot):
    body = {
        "id": state.snapshot_id(snapshot),
        "name": snapshot.name,
        "type": "Microsoft.Compute/snapshots",
        "location": snapshot.location,
        "tags": dict(snapshot.tags),
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "properties": {
            "osType": snapshot.os_type,
            "hyperVGeneration": "V2" if snapshot.os_type else None,
            "creationData": {"createOption": "Copy", "sourceResourceId": snapshot.source_disk_id,
                             "sourceUniqueId": snapshot.source_unique_id},
            "diskSizeGB": snapshot.size_gb,
            "diskSizeBytes": snapshot.size_gb * 1024 ** 3,
            "uniqueId": snapshot.unique_id,
            "provisioningState": "Succeeded",
            "timeCreated": snapshot.time_created,
            "incremental": True,
            "diskState": "Unattached",
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        },
    }
    body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
    return body


def page(items):
    return {"value": items}
