"""Microsoft.Compute (VMs, disks, snapshots) through the unchanged azure-mgmt-compute client."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient

RG = "rg-fusionnet-sandbox"
VM = "vm-fusionnet-sandbox-01"
OTHER_VM = "vm-fusionnet-sandbox-02"
OS_DISK = "vm-fusionnet-sandbox-01_OsDisk_1"
DATA_DISK = "vm-fusionnet-sandbox-01-data-0"
GOOD = "snap-fusionnet-01-os-20250301-good"
FAST = {"deallocate_s": 0.2, "start_s": 0.2, "power_off_s": 0.2, "restart_s": 0.2, "vm_update_s": 0.2,
        "disk_create_s": 0.2, "disk_delete_s": 0.2}
# Each begin_* polls at this interval (the sandbox sends Retry-After: 0 in these tests).
POLL = {"polling_interval": 0.05}


@pytest.fixture
def csbx(sbx):
    """The session sandbox at seed state, with fast Compute operations."""
    sbx.admin("PUT", "compute/settings", FAST)
    sbx.admin("DELETE", "calls")
    return sbx


@pytest.fixture(scope="session")
def compute(sandbox):
    arm = sandbox.arm
    return ComputeManagementClient(sandbox.credential(), sandbox.env["AZURE_SUBSCRIPTION_ID"], base_url=arm,
                                   credential_scopes=[f"{arm}/.default"], retry_backoff_factor=0.1)


def vm_state(sbx, name=VM):
    return next(v for v in sbx.admin("GET", "compute")["virtual_machines"] if v["name"] == name)


def power(vm):
    return next(s.code for s in vm.instance_view.statuses if s.code.startswith("PowerState/"))


def copy_snapshot(compute, name, snapshot_name=GOOD):
    snapshot = compute.snapshots.get(RG, snapshot_name)
    body = {"location": "westeurope", "sku": {"name": "Premium_LRS"},
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot.id}}}
    return compute.disks.begin_create_or_update(RG, name, body, **POLL).result()


def test_get_vm_with_instance_view_and_lists(csbx, compute):
    vm = compute.virtual_machines.get(RG, VM, expand="instanceView")
    assert (vm.name, vm.type, vm.location, vm.provisioning_state) == (
        VM, "Microsoft.Compute/virtualMachines", "westeurope", "Succeeded")
    assert vm.storage_profile.os_disk.name == OS_DISK
    assert vm.storage_profile.os_disk.managed_disk.id.endswith(f"/providers/Microsoft.Compute/disks/{OS_DISK}")
    assert [(d.lun, d.name) for d in vm.storage_profile.data_disks] == [(0, DATA_DISK)]
    assert power(vm) == "PowerState/running"
    assert compute.virtual_machines.get(RG, VM).instance_view is None  # only with $expand
    assert power(compute.virtual_machines.get(RG.upper(), VM.upper(), expand="instanceView")) == "PowerState/running"
    assert sorted(v.name for v in compute.virtual_machines.list(RG)) == [VM, OTHER_VM]
    assert {v.name for v in compute.virtual_machines.list_all()} >= {VM, OTHER_VM}
    view = compute.virtual_machines.instance_view(RG, VM)
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]


def test_disks_and_snapshots_record_where_they_came_from(csbx, compute):
    disk = compute.disks.get(RG, OS_DISK)
    assert disk.managed_by.endswith(f"/virtualMachines/{VM}")
    assert (disk.disk_state, disk.os_type, disk.disk_size_gb, disk.sku.name) == ("Attached", "Linux", 64, "Premium_LRS")
    snapshots = {s.name: s for s in compute.snapshots.list_by_resource_group(RG)}
    assert set(snapshots) == {GOOD, "snap-fusionnet-01-os-20250303-bad", "snap-fusionnet-01-data0-20250301",
                              "snap-fusionnet-02-os-20250302"}
    good = snapshots[GOOD]
    assert good.creation_data.source_resource_id == disk.id
    assert good.creation_data.source_unique_id == disk.unique_id
    assert good.time_created.isoformat() == "2025-03-01T02:00:00+00:00"
    assert snapshots["snap-fusionnet-02-os-20250302"].creation_data.source_resource_id.endswith(
        "/disks/vm-fusionnet-sandbox-02_OsDisk_1")
    assert compute.snapshots.get(RG, GOOD).id == good.id
    assert {d.name for d in compute.disks.list_by_resource_group(RG)} == {
        OS_DISK, DATA_DISK, "vm-fusionnet-sandbox-02_OsDisk_1"}
    with pytest.raises(ResourceNotFoundError):
        compute.snapshots.get(RG, "snap-nope")
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(RG, "disk-nope")


def test_disk_copy_is_long_running_with_azure_async_operation(csbx, compute):
    started = time.monotonic()
    disk = copy_snapshot(compute, "restored-os")
    assert time.monotonic() - started >= 0.2
    assert (disk.provisioning_state, disk.disk_state, disk.managed_by) == ("Succeeded", "Unattached", None)
    assert disk.creation_data.create_option == "Copy"
    assert disk.creation_data.source_resource_id.endswith(f"/snapshots/{GOOD}")
    assert (disk.os_type, disk.disk_size_gb) == ("Linux", 64)
    put = next(c for c in csbx.calls() if c["method"] == "PUT")
    assert put["status"] == 202
    polls = [c for c in csbx.calls() if "/DiskOperations/" in c["path"]]
    assert polls and all(c["status"] == 200 for c in polls)
    # The disk carries the snapshot's content.
    disks = {d["name"]: d for d in csbx.admin("GET", "compute")["disks"]}
    assert disks["restored-os"]["content"] == "fusionnet-api 2.6.3 (last good)"


def test_os_disk_swaps_only_while_deallocated_and_the_vm_runs_the_new_disk(csbx, compute):
    disk = copy_snapshot(compute, "restored-os")
    vm = compute.virtual_machines.get(RG, VM)
    vm.storage_profile.os_disk.managed_disk.id = disk.id
    vm.storage_profile.os_disk.name = disk.name
    with pytest.raises(ResourceExistsError) as refused:
        compute.virtual_machines.begin_create_or_update(RG, VM, vm, **POLL).result()
    assert refused.value.error.code == "OperationNotAllowed"
    assert "deallocate" in refused.value.error.message
    assert vm_state(csbx)["os_disk"]["name"] == OS_DISK

    poller = compute.virtual_machines.begin_deallocate(RG, VM, **POLL)
    assert power(compute.virtual_machines.get(RG, VM, expand="instanceView")) == "PowerState/deallocating"
    poller.result()
    assert power(compute.virtual_machines.get(RG, VM, expand="instanceView")) == "PowerState/deallocated"
    assert compute.disks.get(RG, OS_DISK).disk_state == "Reserved"

    updated = compute.virtual_machines.begin_create_or_update(RG, VM, vm, **POLL).result()
    assert updated.storage_profile.os_disk.name == "restored-os"
    assert updated.provisioning_state == "Succeeded"
    compute.virtual_machines.begin_start(RG, VM, **POLL).result()
    state = vm_state(csbx)
    assert (state["power_state"], state["running_content"]) == ("running", "fusionnet-api 2.6.3 (last good)")
    old = compute.disks.get(RG, OS_DISK)
    assert (old.managed_by, old.disk_state) == (None, "Unattached")
    assert compute.disks.get(RG, "restored-os").managed_by.endswith(f"/virtualMachines/{VM}")
    # The old disk, now free, can be deleted; an attached one cannot.
    with pytest.raises(ResourceExistsError):
        compute.disks.begin_delete(RG, "restored-os", **POLL).result()
    compute.disks.begin_delete(RG, OS_DISK, **POLL).result()
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(RG, OS_DISK)


def test_a_disk_of_another_vm_cannot_be_attached(csbx, compute):
    compute.virtual_machines.begin_deallocate(RG, VM, **POLL).result()
    vm = compute.virtual_machines.get(RG, VM)
    other = compute.disks.get(RG, "vm-fusionnet-sandbox-02_OsDisk_1")
    vm.storage_profile.os_disk.managed_disk.id = other.id
    vm.storage_profile.os_disk.name = other.name
    with pytest.raises(ResourceExistsError) as refused:
        compute.virtual_machines.begin_create_or_update(RG, VM, vm, **POLL).result()
    assert "already attached" in refused.value.error.message


def test_data_disk_changes_by_lun_while_running(csbx, compute):
    disk = copy_snapshot(compute, "restored-data", "snap-fusionnet-01-data0-20250301")
    assert disk.os_type is None
    vm = compute.virtual_machines.get(RG, VM)
    vm.storage_profile.data_disks[0].managed_disk.id = disk.id
    vm.storage_profile.data_disks[0].name = disk.name
    compute.virtual_machines.begin_create_or_update(RG, VM, vm, **POLL).result()
    state = vm_state(csbx)
    assert state["power_state"] == "running"
    assert state["data_disks"]["0"]["content"] == "fusionnet uploads 2025-03-01"
    assert compute.disks.get(RG, DATA_DISK).managed_by is None


def test_power_actions(csbx, compute):
    compute.virtual_machines.begin_power_off(RG, VM, **POLL).result()
    assert vm_state(csbx)["power_state"] == "stopped"
    compute.virtual_machines.begin_start(RG, VM, **POLL).result()
    compute.virtual_machines.begin_restart(RG, VM, **POLL).result()
    assert vm_state(csbx)["power_state"] == "running"
    assert [h["event"] for h in vm_state(csbx)["history"]] == ["powerOff", "start", "restart"]


def test_one_operation_at_a_time(csbx, compute):
    csbx.admin("PUT", "compute/settings", {"deallocate_s": 1.0})
    poller = compute.virtual_machines.begin_deallocate(RG, VM, **POLL)
    with pytest.raises(ResourceExistsError) as refused:
        compute.virtual_machines.begin_start(RG, VM, **POLL)
    assert refused.value.error.code == "OperationNotAllowed"
    poller.result()


def test_failed_start_leaves_the_vm_deallocated(csbx, compute):
    compute.virtual_machines.begin_deallocate(RG, VM, **POLL).result()
    csbx.fault(kind="lro_fail", method="POST", path="/start$")
    with pytest.raises(HttpResponseError) as failed:
        compute.virtual_machines.begin_start(RG, VM, **POLL).result()
    assert failed.value.error.code == "AllocationFailed"
    vm = compute.virtual_machines.get(RG, VM, expand="instanceView")
    assert power(vm) == "PowerState/deallocated"
    assert vm.provisioning_state == "Failed"
    assert vm.instance_view.statuses[0].code == "ProvisioningState/failed/AllocationFailed"
    compute.virtual_machines.begin_start(RG, VM, **POLL).result()
    assert power(compute.virtual_machines.get(RG, VM, expand="instanceView")) == "PowerState/running"


def test_throttling_and_server_errors_are_retried(csbx, compute):
    csbx.fault(kind="throttle", method="GET", path="/snapshots$", retry_after=0, count=2)
    csbx.fault(kind="error", status=500, method="POST", path="/deallocate$", count=1)
    assert len(list(compute.snapshots.list_by_resource_group(RG))) == 4
    compute.virtual_machines.begin_deallocate(RG, VM, **POLL).result()
    statuses = [c["status"] for c in csbx.calls() if c["path"].endswith(("/snapshots", "/deallocate"))]
    assert statuses == [429, 429, 200, 500, 202]


def test_bad_requests(csbx, compute):
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, "vm-nope")
    with pytest.raises(ResourceNotFoundError) as no_rg:
        compute.virtual_machines.get("rg-nope", VM)
    assert no_rg.value.error.code == "ResourceGroupNotFound"
    body = {"location": "westeurope",
            "properties": {"creationData": {"createOption": "Copy",
                                            "sourceResourceId": f"/subscriptions/{csbx.env['AZURE_SUBSCRIPTION_ID']}"
                                            f"/resourceGroups/{RG}/providers/Microsoft.Compute/snapshots/snap-nope"}}}
    with pytest.raises(ResourceNotFoundError):
        compute.disks.begin_create_or_update(RG, "from-nothing", body, **POLL)
    assert "from-nothing" not in {d["name"] for d in csbx.admin("GET", "compute")["disks"]}
    # A failed copy leaves no disk behind.
    csbx.fault(kind="lro_fail", method="PUT", path="/disks/failing$")
    with pytest.raises(HttpResponseError):
        copy_snapshot(compute, "failing")
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(RG, "failing")
