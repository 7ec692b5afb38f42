"""Cosmos DB continuous backup and point-in-time restore, driven by azure-mgmt-cosmosdb 10."""

import datetime

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.cosmosdb import CosmosDBManagementClient
from azure.mgmt.cosmosdb import models as m

RG = "rg-mystira-sandbox"
ACCOUNT = "mystira-cosmos-sandbox"
LOCATION = "westeurope"


@pytest.fixture
def cosmos(sbx):
    sbx.admin("PUT", "cosmosdb/settings", {"restore_duration_s": 0.3})
    sbx.admin("DELETE", "calls")
    return sbx


@pytest.fixture(scope="module")
def cdb(sandbox):
    arm = sandbox.arm
    # polling_interval applies because the fixture sets Retry-After to 0.
    return CosmosDBManagementClient(sandbox.credential(), sandbox.env["AZURE_SUBSCRIPTION_ID"], base_url=arm,
                                    credential_scopes=[f"{arm}/.default"], polling_interval=0.1)


def ago(**delta):
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**delta)


def source_of(cdb, name=ACCOUNT):
    return next(r for r in cdb.restorable_database_accounts.list() if r.properties.account_name == name)


def state(sandbox, name=ACCOUNT):
    return next(a for a in sandbox.admin("GET", "cosmosdb")["accounts"] if a["name"] == name)


def restore_container_params(source, when, name="scenarios"):
    return m.SqlContainerCreateUpdateParameters(properties=m.SqlContainerCreateUpdateProperties(
        resource=m.SqlContainerResource(id=name, create_mode="Restore", restore_parameters=m.ResourceRestoreParameters(
            restore_source=source.id, restore_timestamp_in_utc=when)), options={}))


def restore_account_params(source, when):
    return m.DatabaseAccountCreateUpdateParameters(
        location=LOCATION, kind="GlobalDocumentDB",
        properties=m.DatabaseAccountCreateUpdateProperties(
            locations=[m.Location(location_name=LOCATION, failover_priority=0)], database_account_offer_type="Standard",
            create_mode="Restore", restore_parameters=m.RestoreParameters(
                restore_mode="PointInTime", restore_source=source.id, restore_timestamp_in_utc=when)))


def test_accounts_and_restorable_accounts(cosmos, cdb):
    account = cdb.database_accounts.get(RG, ACCOUNT)
    assert account.backup_policy.type == "Continuous"
    assert account.backup_policy.continuous_mode_properties.tier == "Continuous30Days"
    assert account.kind == "GlobalDocumentDB" and account.provisioning_state == "Succeeded"
    assert sorted(a.name for a in cdb.database_accounts.list_by_resource_group(RG)) == [
        "mystira-cosmos-periodic", ACCOUNT]

    restorable = {r.properties.account_name: r for r in cdb.restorable_database_accounts.list()}
    assert sorted(restorable) == ["mystira-cosmos-legacy", ACCOUNT]  # periodic backup is not restorable
    live, legacy = restorable[ACCOUNT], restorable["mystira-cosmos-legacy"]
    assert live.name == account.instance_id and live.properties.deletion_time is None
    assert live.id.endswith(f"/providers/Microsoft.DocumentDB/locations/{LOCATION}/restorableDatabaseAccounts/"
                            f"{account.instance_id}")
    assert live.properties.oldest_restorable_time == live.properties.creation_time
    # A 7-day tier deleted 3 days ago: restorable from 7 days before its deletion up to it.
    span = legacy.properties.deletion_time - legacy.properties.oldest_restorable_time
    assert span == datetime.timedelta(days=7)
    assert [r.name for r in cdb.restorable_database_accounts.list_by_location(LOCATION)] == [live.name, legacy.name]
    assert cdb.restorable_database_accounts.get_by_location(LOCATION, live.name).properties.account_name == ACCOUNT
    with pytest.raises(ResourceNotFoundError):
        cdb.restorable_database_accounts.get_by_location(LOCATION, "00000000-0000-0000-0000-000000000000")
    assert cdb.database_accounts.check_name_exists(ACCOUNT) is True
    assert cdb.database_accounts.check_name_exists("free-name") is False


def test_events_and_what_existed_when(cosmos, cdb):
    source = source_of(cdb)
    databases = list(cdb.restorable_sql_databases.list(LOCATION, source.name))
    assert [(d.properties.resource.owner_id, d.properties.resource.operation_type) for d in databases] == [
        ("mystira", "Create"), ("analytics", "Create"), ("analytics", "Delete")]
    mystira_rid = databases[0].properties.resource.owner_resource_id
    containers = list(cdb.restorable_sql_containers.list(LOCATION, source.name, restorable_sql_database_rid=mystira_rid))
    assert [(c.properties.resource.owner_id, c.properties.resource.operation_type) for c in containers] == [
        ("scenarios", "Create"), ("users", "Create"), ("sessions", "Create"), ("scenarios", "Delete")]
    recent = list(cdb.restorable_sql_containers.list(LOCATION, source.name, start_time=ago(hours=2).isoformat()))
    assert [c.properties.resource.owner_id for c in recent] == ["scenarios"]

    then = {r.database_name: r.collection_names for r in cdb.restorable_sql_resources.list(
        LOCATION, source.name, restore_location=LOCATION, restore_timestamp_in_utc=ago(days=2).isoformat())}
    assert then == {"mystira": ["scenarios", "users", "sessions"], "analytics": ["events"]}
    with pytest.raises(HttpResponseError) as outside:
        list(cdb.restorable_sql_resources.list(LOCATION, source.name, restore_location=LOCATION,
                                               restore_timestamp_in_utc="2020-01-01T00:00:00Z"))
    assert outside.value.error.code == "InvalidRestoreTimestamp"


def test_restore_a_deleted_container_polls_the_async_operation(cosmos, cdb):
    source = source_of(cdb)
    poller = cdb.sql_resources.begin_create_update_sql_container(
        RG, ACCOUNT, "mystira", "scenarios", restore_container_params(source, ago(hours=2)))
    container = poller.result()
    assert container.name == "scenarios" and poller.status() == "Succeeded"
    assert sorted(state(cosmos)["databases"]["mystira"]) == ["scenarios", "sessions", "users"]
    paths = [c["path"] for c in cosmos.calls()]
    assert any("/operationsStatus/" in p for p in paths)
    assert paths[-1].endswith("/sqlDatabases/mystira/containers/scenarios")  # the SDK's final GET

    with pytest.raises(HttpResponseError) as exists:
        cdb.sql_resources.begin_create_update_sql_container(
            RG, ACCOUNT, "mystira", "scenarios", restore_container_params(source, ago(hours=2)))
    assert exists.value.status_code == 400 and exists.value.error.code == "ContainerAlreadyExists"


def test_restore_refuses_bad_timestamps_and_missing_resources(cosmos, cdb):
    source = source_of(cdb)
    for when, code in ((ago(days=40), "InvalidRestoreTimestamp"), (ago(minutes=1), "InvalidRestoreParameters")):
        with pytest.raises(HttpResponseError) as refused:
            cdb.sql_resources.begin_create_update_sql_container(
                RG, ACCOUNT, "mystira", "scenarios", restore_container_params(source, when))
        assert refused.value.error.code == code  # a minute ago scenarios was already deleted
    legacy = source_of(cdb, "mystira-cosmos-legacy")
    with pytest.raises(HttpResponseError) as other_account:
        cdb.sql_resources.begin_create_update_sql_container(
            RG, ACCOUNT, "mystira", "scenarios", restore_container_params(legacy, ago(days=5)))
    assert other_account.value.error.code == "InvalidRestoreSource"
    assert "scenarios" not in state(cosmos)["databases"]["mystira"]


def test_delete_then_restore_a_database(cosmos, cdb):
    before = ago(seconds=1)
    cdb.sql_resources.begin_delete_sql_database(RG, ACCOUNT, "mystira").result()
    assert "mystira" not in state(cosmos)["databases"]
    with pytest.raises(ResourceNotFoundError):
        cdb.sql_resources.get_sql_database(RG, ACCOUNT, "mystira")
    params = m.SqlDatabaseCreateUpdateParameters(properties=m.SqlDatabaseCreateUpdateProperties(
        resource=m.SqlDatabaseResource(id="mystira", create_mode="Restore", restore_parameters=m.ResourceRestoreParameters(
            restore_source=source_of(cdb).id, restore_timestamp_in_utc=before)), options={}))
    assert cdb.sql_resources.begin_create_update_sql_database(RG, ACCOUNT, "mystira", params).result().name == "mystira"
    assert sorted(c.name for c in cdb.sql_resources.list_sql_containers(RG, ACCOUNT, "mystira")) == ["sessions", "users"]
    assert state(cosmos)["events"][-1]["operation"] == "Recreate"


def test_restore_an_account_into_a_new_account(cosmos, cdb):
    source = source_of(cdb)
    when = ago(hours=2)
    poller = cdb.database_accounts.begin_create_or_update(RG, "mystira-restored", restore_account_params(source, when))
    assert cdb.database_accounts.get(RG, "mystira-restored").provisioning_state == "Creating"
    restored = poller.result()
    assert (restored.provisioning_state, restored.create_mode) == ("Succeeded", "Restore")
    assert restored.restore_parameters.restore_source == source.id
    assert abs((restored.restore_parameters.restore_timestamp_in_utc - when).total_seconds()) < 1
    assert restored.instance_id != source.name
    assert state(cosmos, "mystira-restored")["databases"] == {"mystira": ["scenarios", "sessions", "users"]}
    assert state(cosmos)["databases"]["mystira"] == ["sessions", "users"]  # the source is untouched

    with pytest.raises(HttpResponseError) as taken:
        cdb.database_accounts.begin_create_or_update(RG, "mystira-restored", restore_account_params(source, when))
    assert taken.value.status_code == 400
    with pytest.raises(HttpResponseError) as outside:
        cdb.database_accounts.begin_create_or_update(RG, "mystira-too-old", restore_account_params(source, ago(days=40)))
    assert outside.value.error.code == "InvalidRestoreTimestamp"


def test_a_failed_restore_operation(cosmos, cdb):
    cosmos.fault(kind="lro_fail", method="PUT", path="databaseAccounts/mystira-failed$")
    poller = cdb.database_accounts.begin_create_or_update(
        RG, "mystira-failed", restore_account_params(source_of(cdb), ago(hours=2)))
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    assert "RestoreFailed" in str(failed.value)
    assert state(cosmos, "mystira-failed")["provisioning_state"] == "Failed"
    assert state(cosmos, "mystira-failed")["databases"] == {}


def test_throttled_reads_are_retried(cosmos, cdb):
    cosmos.fault(kind="throttle", method="GET", path="/restorableDatabaseAccounts$", retry_after=1)
    assert source_of(cdb).properties.account_name == ACCOUNT
    assert [c["status"] for c in cosmos.calls() if c["path"].endswith("/restorableDatabaseAccounts")] == [429, 200]
