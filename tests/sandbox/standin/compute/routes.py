"""ARM routes of Microsoft.Compute (VirtualMachinesOperations, DisksOperations and
SnapshotsOperations of azure-mgmt-compute 39; VMs api-version 2026-04-01, disks
and snapshots 2026-03-02, any api-version is accepted).

Accepted status codes are the SDK's: VM GET 200; VM PUT 200/201; VM actions
(deallocate, start, powerOff, restart) 200/202; disk GET 200; disk PUT 200/202;
disk DELETE 200/202/204. Every write is long-running (see asyncops.py).

Rules of the real service that the stand-in enforces:
- the OS disk of a VM can be swapped only while the VM is deallocated
  (409 OperationNotAllowed otherwise); data disks may change at any time;
- a disk attached to one VM cannot be attached to another, nor deleted
  (409 OperationNotAllowed);
- a VM runs one operation at a time (409 OperationNotAllowed while one runs);
- `osDisk.name` must name the managed disk given in `osDisk.managedDisk.id`.
"""

from ..arm import RG_PREFIX, ArmError, not_found
from ..faults import error_response_for_lro
from ..web import Response
from . import model, views

SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
PROVIDER = r"/providers/Microsoft\.Compute"
VMS = PROVIDER + r"/virtualMachines"
VM = RG_PREFIX + VMS + r"/(?P<vm>[^/]+)"
DISKS = PROVIDER + r"/disks"
DISK = RG_PREFIX + DISKS + r"/(?P<disk>[^/]+)"
SNAPSHOTS = PROVIDER + r"/snapshots"
SNAPSHOT = RG_PREFIX + SNAPSHOTS + r"/(?P<snapshot>[^/]+)"

# What a VM action does: (setting with its duration, transitional power state, final power state).
ACTIONS = {
    "deallocate": ("deallocate_s", model.DEALLOCATING, model.DEALLOCATED),
    "start": ("start_s", model.STARTING, model.RUNNING),
    "powerOff": ("power_off_s", model.STOPPING, model.STOPPED),
    "restart": ("restart_s", model.STARTING, model.RUNNING),
}
# The code an injected lro_fail ends an action with unless the fault names one:
# what the real service reports most often for each of them.
FAILURE_CODES = {
    "start": ("AllocationFailed", "Allocation failed. We do not have sufficient capacity for the requested VM "
                                  "size in this region. (injected by the sandbox)"),
    "restart": ("AllocationFailed", "Allocation failed. (injected by the sandbox)"),
    "deallocate": ("InternalExecutionError", "An internal execution error occurred. (injected by the sandbox)"),
    "powerOff": ("InternalExecutionError", "An internal execution error occurred. (injected by the sandbox)"),
    "update": ("InternalExecutionError", "An internal execution error occurred. (injected by the sandbox)"),
    "disk": ("InternalDiskManagementError", "An internal disk management error occurred. (injected by the sandbox)"),
}


def not_allowed(message):
    return ArmError(409, "OperationNotAllowed", message)


class ComputeRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm

    @property
    def state(self):
        return self.p.state

    def register(self):
        route = self.arm.arm_route
        route("GET", SUBSCRIPTION + VMS, self.list_all_vms)                 # virtual_machines.list_all
        route("GET", RG_PREFIX + VMS, self.list_vms)                        # virtual_machines.list
        route("GET", VM, self.get_vm)                                       # virtual_machines.get (+ $expand)
        route("PUT", VM, self.put_vm)                                       # begin_create_or_update
        route("GET", VM + "/instanceView", self.get_instance_view)          # instance_view
        for action in ACTIONS:                                              # begin_deallocate/start/power_off/restart
            route("POST", VM + "/" + action, self._action_handler(action))
        route("GET", SUBSCRIPTION + DISKS, self.list_all_disks)             # disks.list
        route("GET", RG_PREFIX + DISKS, self.list_disks)                    # disks.list_by_resource_group
        route("GET", DISK, self.get_disk)                                   # disks.get
        route("PUT", DISK, self.put_disk)                                   # disks.begin_create_or_update
        route("DELETE", DISK, self.delete_disk)                             # disks.begin_delete
        route("GET", SUBSCRIPTION + SNAPSHOTS, self.list_all_snapshots)     # snapshots.list
        route("GET", RG_PREFIX + SNAPSHOTS, self.list_snapshots)            # snapshots.list_by_resource_group
        route("GET", SNAPSHOT, self.get_snapshot)                           # snapshots.get

    # -- lookups -----------------------------------------------------------------------
    def _subscription(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.p.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")

    def _vm(self, request):
        rg = self.arm.resource_group(request.params)
        vm = self.state.vm(rg["name"], request.params["vm"])
        if vm is None:
            raise not_found("Microsoft.Compute/virtualMachines", request.params["vm"], rg["name"])
        return vm

    def _disk(self, request):
        rg = self.arm.resource_group(request.params)
        disk = self.state.disk(rg["name"], request.params["disk"])
        if disk is None:
            raise not_found("Microsoft.Compute/disks", request.params["disk"], rg["name"])
        return disk

    def _lro_failure(self, request, kind):
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        if fault is None:
            return None
        _status, _code, _message = error_response_for_lro(fault)
        code, message = FAILURE_CODES[kind]
        return (fault.code or code, fault.message or message)

    # -- virtual machines: reads -------------------------------------------------------
    def list_all_vms(self, request):
        self._subscription(request)
        return Response.json(views.page([views.vm_resource(self.state, vm) for vm in self.state.vms.values()]))

    def list_vms(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json(views.page([views.vm_resource(self.state, vm)
                                         for vm in self.state.in_group(self.state.vms, rg["name"])]))

    def get_vm(self, request):
        vm = self._vm(request)
        expand = (request.query.get("$expand") or "").lower()
        return Response.json(views.vm_resource(self.state, vm, with_instance_view=expand == "instanceview"))

    def get_instance_view(self, request):
        return Response.json(views.instance_view(self.state, self._vm(request)))

    # -- virtual machines: actions -----------------------------------------------------
    def _action_handler(self, action):
        return lambda request: self.act(request, action)

    def act(self, request, action):
        vm = self._vm(request)
        self._require_idle(vm, action)
        setting, transitional, final = ACTIONS[action]
        failure = self._lro_failure(request, action)
        power_before = vm.power_state
        if action == "start" and vm.power_state == model.RUNNING and not failure:
            transitional = model.RUNNING  # starting a running VM succeeds and changes nothing
        vm.busy = action
        vm.power_state = transitional
        vm.provisioning_state = "Updating"
        vm.provisioning_error = None

        def work():
            vm.power_state = final
            vm.record(action, power_state=final)

        def finish(ok):
            vm.busy = None
            if ok:
                vm.provisioning_state = "Succeeded"
                return
            vm.provisioning_state = "Failed"
            vm.provisioning_error = failure or ("InternalExecutionError", "the operation failed")
            # A start that fails to allocate leaves the VM deallocated; other failures leave it where it was.
            vm.power_state = model.DEALLOCATED if action in ("start", "restart") and \
                power_before in (model.DEALLOCATED, model.STOPPED) else power_before
            vm.record(action + " failed", code=vm.provisioning_error[0], power_state=vm.power_state)

        headers = self.p.operations.start(request, "operations", vm.location, self.p.duration(setting),
                                          f"{action} {vm.name}", work, failure=failure, finally_=finish)
        return Response(202, b"", headers)

    def _require_idle(self, vm, what):
        if vm.busy:
            raise not_allowed(f"Operation '{what}' is not allowed on VM '{vm.name}' since the VM is marked for "
                              f"'{vm.busy}' and another operation is in progress. Retry after it completes.")

    # -- virtual machines: update (disk swap) ------------------------------------------
    def put_vm(self, request):
        rg = self.arm.resource_group(request.params)
        vm = self.state.vm(rg["name"], request.params["vm"])
        body = self.arm.body(request)
        if vm is None:
            raise ArmError(400, "InvalidParameter",
                           "The sandbox does not model creating virtual machines; only updates of seeded VMs.")
        location = (body.get("location") or "").replace(" ", "").lower()
        if location != vm.location.replace(" ", "").lower():
            raise ArmError(400, "InvalidParameter" if location else "LocationRequired",
                           f"The location '{body.get('location')}' does not match the VM's location '{vm.location}'.")
        self._require_idle(vm, "update")
        storage = ((body.get("properties") or {}).get("storageProfile")) or {}
        new_os = self._os_disk_change(vm, storage.get("osDisk"))
        new_data = self._data_disks_change(vm, storage.get("dataDisks"))
        tags = body.get("tags") if isinstance(body.get("tags"), dict) else vm.tags
        failure = self._lro_failure(request, "update")
        vm.busy = "update"
        vm.provisioning_state = "Updating"
        vm_id = self.state.vm_id(vm)

        def work():
            if new_os is not None and new_os is not vm.os_disk:
                vm.os_disk.managed_by = None
                new_os.managed_by = vm_id
                vm.record("os disk swapped", old=vm.os_disk.name, new=new_os.name)
                vm.os_disk = new_os
            if new_data is not None:
                for lun, disk in vm.data_disks.items():
                    if new_data.get(lun) is not disk:
                        disk.managed_by = None
                for lun, disk in new_data.items():
                    if vm.data_disks.get(lun) is not disk:
                        vm.record("data disk attached", lun=lun, disk=disk.name)
                    disk.managed_by = vm_id
                vm.data_disks = dict(new_data)
            vm.tags = dict(tags)

        def finish(ok):
            vm.busy = None
            vm.provisioning_state = "Succeeded" if ok else "Failed"
            vm.provisioning_error = None if ok else failure

        headers = self.p.operations.start(request, "operations", vm.location, self.p.duration("vm_update_s"),
                                          f"update {vm.name}", work, failure=failure, finally_=finish)
        # The response shows the VM as it will be, still Updating (as Compute answers a PUT).
        view = views.vm_resource(self.state, vm)
        if new_os is not None:
            view["properties"]["storageProfile"]["osDisk"] = views.os_disk_view(self.state, new_os)
        if new_data is not None:
            view["properties"]["storageProfile"]["dataDisks"] = [
                views.data_disk_view(self.state, lun, new_data[lun]) for lun in sorted(new_data)]
        return Response.json(view, 200, headers)

    def _attachable(self, vm, disk, where):
        if disk.managed_by and disk.managed_by.lower() != self.state.vm_id(vm).lower():
            raise not_allowed(f"Disk '{disk.name}' is already attached to VM '{disk.managed_by}' and cannot be "
                              f"attached as {where} of VM '{vm.name}'.")

    def _referenced_disk(self, spec, where):
        disk_id = ((spec or {}).get("managedDisk") or {}).get("id")
        if not disk_id:
            raise ArmError(400, "InvalidParameter", f"Required parameter 'managedDisk.id' is missing in {where}.")
        disk = self.state.by_id(disk_id)
        if not isinstance(disk, model.Disk):
            raise ArmError(404, "NotFound", f"Disk '{disk_id}' referenced in {where} was not found.")
        return disk

    def _os_disk_change(self, vm, spec):
        """The disk the PUT makes the OS disk (None: unchanged), after the service's checks."""
        if not spec:
            return None
        disk = self._referenced_disk(spec, "osDisk")
        name = spec.get("name")
        if disk is vm.os_disk:
            if name and name.lower() != disk.name.lower():
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'osDisk.name' is not allowed.")
            return None
        if name and name.lower() != disk.name.lower():
            raise ArmError(400, "InvalidParameter",
                           f"The value '{name}' of parameter 'osDisk.name' does not match the name "
                           f"'{disk.name}' of the managed disk in 'osDisk.managedDisk.id'.")
        if vm.power_state != model.DEALLOCATED:
            raise not_allowed(
                f"The OS disk of VM '{vm.name}' cannot be swapped while the VM is {vm.power_state} "
                f"(PowerState/{vm.power_state}). Stop (deallocate) the VM, swap the OS disk, then start it.")
        if not disk.os_type:
            raise ArmError(400, "InvalidParameter",
                           f"Disk '{disk.name}' has no osType and cannot be the OS disk of VM '{vm.name}'.")
        if vm.os_disk.os_type and disk.os_type.lower() != vm.os_disk.os_type.lower():
            raise not_allowed(f"The OS type '{disk.os_type}' of disk '{disk.name}' differs from the OS type "
                              f"'{vm.os_disk.os_type}' of VM '{vm.name}'.")
        self._attachable(vm, disk, "the OS disk")
        return disk

    def _data_disks_change(self, vm, specs):
        if specs is None:
            return None
        if not isinstance(specs, list):
            raise ArmError(400, "InvalidParameter", "'dataDisks' must be a list.")
        result = {}
        for spec in specs:
            if spec.get("toBeDetached"):
                continue
            try:
                lun = int(spec.get("lun"))
            except (TypeError, ValueError):
                raise ArmError(400, "InvalidParameter", "Every data disk needs an integer 'lun'.") from None
            if lun in result:
                raise ArmError(400, "InvalidParameter", f"Two data disks use lun {lun}.")
            disk = self._referenced_disk(spec, f"dataDisks[lun {lun}]")
            if disk is vm.os_disk:
                raise ArmError(400, "InvalidParameter", f"Disk '{disk.name}' is the OS disk of VM '{vm.name}'.")
            if spec.get("name") and spec["name"].lower() != disk.name.lower():
                raise ArmError(400, "InvalidParameter",
                               f"The data disk name '{spec['name']}' at lun {lun} does not match the managed disk "
                               f"'{disk.name}'.")
            self._attachable(vm, disk, f"data disk lun {lun}")
            result[lun] = disk
        return result

    # -- disks -------------------------------------------------------------------------
    def list_all_disks(self, request):
        self._subscription(request)
        return Response.json(views.page([views.disk_resource(self.state, d) for d in self.state.disks.values()]))

    def list_disks(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json(views.page([views.disk_resource(self.state, d)
                                         for d in self.state.in_group(self.state.disks, rg["name"])]))

    def get_disk(self, request):
        return Response.json(views.disk_resource(self.state, self._disk(request)))

    def put_disk(self, request):
        """Create a disk (createOption Copy of a snapshot or a disk, or Empty); a PUT on an
        existing disk may change tags only."""
        rg = self.arm.resource_group(request.params)
        body = self.arm.body(request)
        props = body.get("properties") or {}
        creation = props.get("creationData") or {}
        existing = self.state.disk(rg["name"], request.params["disk"])
        if existing is not None:
            if creation and (creation.get("createOption") != existing.creation.get("createOption")
                             or (creation.get("sourceResourceId") or "").lower()
                             != (existing.creation.get("sourceResourceId") or "").lower()):
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'creationData' is not allowed.")
            if isinstance(body.get("tags"), dict):
                existing.tags = dict(body["tags"])
            headers = self.p.operations.start(request, "DiskOperations", existing.location, 0, f"update {existing.name}",
                                              lambda: None, output=lambda: views.disk_resource(self.state, existing))
            return Response(202, b"", headers)
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        option = creation.get("createOption")
        if option not in ("Copy", "Empty"):
            raise ArmError(400, "InvalidParameter",
                           f"The sandbox models createOption 'Copy' and 'Empty' only, not '{option}'.")
        source = None
        if option == "Copy":
            source = self.state.by_id(creation.get("sourceResourceId"))
            if source is None:
                raise ArmError(404, "NotFound",
                               f"Source '{creation.get('sourceResourceId')}' of the disk copy was not found.")
            size = int(props.get("diskSizeGB") or source.size_gb)
            if size < source.size_gb:
                raise ArmError(400, "BadRequest", f"Disk size {size} GB is smaller than the size of the source "
                                                  f"({source.size_gb} GB).")
        else:
            size = props.get("diskSizeGB")
            if not size:
                raise ArmError(400, "InvalidParameter", "diskSizeGB is required for createOption 'Empty'.")
            size = int(size)
        sku = (body.get("sku") or {}).get("name") or "Standard_LRS"
        recorded = {"createOption": option}
        if source:
            recorded.update(sourceResourceId=creation["sourceResourceId"], sourceUniqueId=source.unique_id)
        disk = model.Disk(
            rg["name"], request.params["disk"], body["location"], size, sku,
            os_type=props.get("osType") or (source.os_type if source else None),
            creation=recorded,
            content=source.content if source else None,
            tags=body.get("tags"),
        )
        disk.provisioning_state = "Updating"
        failure = self._lro_failure(request, "disk")
        # The disk exists (Updating) while it is being copied, as in Azure.
        self.state.add_disk(disk)

        def work():
            disk.provisioning_state = "Succeeded"

        def finish(ok):
            if not ok:
                self.state.remove_disk(disk)

        headers = self.p.operations.start(request, "DiskOperations", disk.location, self.p.duration("disk_create_s"),
                                          f"create disk {disk.name}", work, failure=failure, finally_=finish,
                                          output=lambda: views.disk_resource(self.state, disk))
        return Response(202, b"", headers)

    def delete_disk(self, request):
        rg = self.arm.resource_group(request.params)
        disk = self.state.disk(rg["name"], request.params["disk"])
        if disk is None:
            return Response(204)  # deleting what does not exist succeeds, as in ARM
        if disk.managed_by:
            raise not_allowed(f"Disk '{disk.name}' is attached to VM '{disk.managed_by}'. Detach it first.")
        failure = self._lro_failure(request, "disk")
        headers = self.p.operations.start(request, "DiskOperations", disk.location, self.p.duration("disk_delete_s"),
                                          f"delete disk {disk.name}", lambda: self.state.remove_disk(disk),
                                          failure=failure)
        return Response(202, b"", headers)

    # -- snapshots ---------------------------------------------------------------------
    def list_all_snapshots(self, request):
        self._subscription(request)
        return Response.json(views.page([views.snapshot_resource(self.state, s)
                                         for s in self.state.snapshots.values()]))

    def list_snapshots(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json(views.page([views.snapshot_resource(self.state, s)
                                         for s in self.state.in_group(self.state.snapshots, rg["name"])]))

    def get_snapshot(self, request):
        rg = self.arm.resource_group(request.params)
        snapshot = self.state.snapshot(rg["name"], request.params["snapshot"])
        if snapshot is None:
            raise not_found("Microsoft.Compute/snapshots", request.params["snapshot"], rg["name"])
        return Response.json(views.snapshot_resource(self.state, snapshot))
