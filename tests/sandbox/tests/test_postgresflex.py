"""The PostgreSQL flexible server stand-in, driven by azure-mgmt-postgresqlflexibleservers.

Point-in-time restores are real (the `postgres` stand-in's clusters), so the
data on a restored server is checked with psycopg.
"""

import datetime
import time

import psycopg
import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

RG = "rg-fundrbolt-sandbox"
RESTORE_RG = "rg-fundrbolt-sandbox-restore"
SOURCE = "fundrbolt-sandbox-db"


@pytest.fixture(scope="module")
def pg(sandbox):
    return PostgreSQLManagementClient(sandbox.credential(), sandbox.env["AZURE_SUBSCRIPTION_ID"],
                                      base_url=sandbox.arm, credential_scopes=[f"{sandbox.arm}/.default"])


def flex_server(sbx, name):
    found = [s for s in sbx.admin("GET", "postgresflex")["servers"] if s["name"] == name]
    return found[0] if found else None


def connect(info):
    return psycopg.connect(host=info["host"], port=info["port"], user=info["admin_user"],
                           password=info["admin_password"], dbname=info["database"], autocommit=True,
                           connect_timeout=5)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def restore_body(source, point, location="westeurope"):
    return {"location": location, "properties": {
        "createMode": "PointInTimeRestore", "sourceServerResourceId": source.id, "pointInTimeUTC": point.isoformat()}}


def test_seeded_server_reads_like_azure(sbx, pg):
    server = pg.servers.get(RG, SOURCE)
    assert server.state == "Ready"
    assert server.fully_qualified_domain_name == f"{SOURCE}.postgres.database.azure.com"
    assert server.id.endswith(f"/resourceGroups/{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{SOURCE}")
    assert (server.version, server.sku.name, server.sku.tier) == ("15", "Standard_B1ms", "Burstable")
    assert server.source_server_resource_id is None
    # The earliest restore point is the end of the real cluster's base backup, once that is done
    # (the postgres stand-in takes it in the background after start).
    deadline = time.monotonic() + 15
    while True:
        cluster = [c for c in sbx.admin("GET", "postgres")["clusters"] if c["name"] == SOURCE][0]
        earliest = pg.servers.get(RG, SOURCE).backup.earliest_restore_date
        if cluster["earliest_restore_time"] and earliest.isoformat()[:19] == cluster["earliest_restore_time"][:19]:
            break
        assert time.monotonic() < deadline, (earliest, cluster)
        time.sleep(0.2)
    assert earliest <= now()
    assert [s.name for s in pg.servers.list_by_resource_group(RG)] == [SOURCE]
    assert SOURCE in [s.name for s in pg.servers.list_by_subscription()]
    assert list(pg.servers.list_by_resource_group(RESTORE_RG)) == []
    with pytest.raises(ResourceNotFoundError):
        pg.servers.get(RG, "nope")
    # The real address of the server, for clients that cannot resolve the FQDN.
    info = flex_server(sbx, SOURCE)
    assert sbx.env["SRE_SANDBOX_PGFLEX_FUNDRBOLT_SANDBOX_DB_URL"].endswith(f"@127.0.0.1:{info['port']}/postgres")
    with connect(info) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_point_in_time_restore_is_real(sbx, pg):
    source_info = flex_server(sbx, SOURCE)
    with connect(source_info) as conn:
        conn.execute("DROP TABLE IF EXISTS pitr_probe; CREATE TABLE pitr_probe (label text)")
        conn.execute("INSERT INTO pitr_probe VALUES ('before')")
        time.sleep(0.5)
        point = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(0.5)
        conn.execute("INSERT INTO pitr_probe VALUES ('after')")
    source = pg.servers.get(RG, SOURCE)
    poller = pg.servers.begin_create_or_update(RESTORE_RG, "pitr-probe", restore_body(source, point),
                                               polling_interval=0.2)
    # The server exists at once, Provisioning, while the restore runs.
    assert pg.servers.get(RESTORE_RG, "pitr-probe").state in ("Provisioning", "Ready")
    restored = poller.result(timeout=30)
    assert restored.state == "Ready"
    assert restored.source_server_resource_id == source.id
    assert restored.location == source.location and restored.sku.name == source.sku.name
    assert restored.backup.earliest_restore_date > source.backup.earliest_restore_date
    target = flex_server(sbx, "pitr-probe")
    assert target["port"] != source_info["port"]
    with connect(target) as conn:
        assert conn.execute("SELECT label FROM pitr_probe").fetchall() == [("before",)]
    with connect(source_info) as conn:
        assert sorted(conn.execute("SELECT label FROM pitr_probe").fetchall()) == [("after",), ("before",)]
    # Delete is long-running too, and takes the cluster with it.
    pg.servers.begin_delete(RESTORE_RG, "pitr-probe", polling_interval=0.2).result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        pg.servers.get(RESTORE_RG, "pitr-probe")
    assert "pitr-probe" not in [c["name"] for c in sbx.admin("GET", "postgres")["clusters"]]


def test_create_answers_like_the_resource_provider(sbx, pg):
    """202 + Azure-AsyncOperation + Location + Retry-After; both status URLs work."""
    source = pg.servers.get(RG, SOURCE)
    token = sbx.credential().get_token(f"{sbx.arm}/.default").token
    url = f"{sbx.arm}/subscriptions/{sbx.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{RG}/providers/" \
          "Microsoft.DBforPostgreSQL/flexibleServers/raw-create?api-version=2026-10-01"
    auth = {"Authorization": f"Bearer {token}"}
    answer = requests.put(url, json={"location": "westeurope", "sku": source.sku.as_dict(),
                                     "properties": {"createMode": "Default", "version": "15"}},
                          headers=auth, verify=sbx.ca, timeout=10)
    assert answer.status_code == 202 and answer.content == b""
    status_url, location_url = answer.headers["Azure-AsyncOperation"], answer.headers["Location"]
    assert "/providers/Microsoft.DBforPostgreSQL/locations/westeurope/azureAsyncOperation/" in status_url
    assert "/operationResults/" in location_url and answer.headers["Retry-After"] == "0"
    deadline = time.monotonic() + 20
    while requests.get(status_url, headers=auth, verify=sbx.ca, timeout=10).json()["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert requests.get(status_url, headers=auth, verify=sbx.ca, timeout=10).json()["status"] == "Succeeded"
    result = requests.get(location_url, headers=auth, verify=sbx.ca, timeout=10)
    assert result.status_code == 200 and result.json()["properties"]["state"] == "Ready"
    assert flex_server(sbx, "raw-create")["port"] is not None  # an empty real cluster backs it


def test_refusals_create_nothing(sbx, pg):
    source = pg.servers.get(RG, SOURCE)
    earliest = source.backup.earliest_restore_date
    cases = [
        ("pitr-future", restore_body(source, now() + datetime.timedelta(hours=1)), 400, "InvalidParameterValue"),
        ("pitr-old", restore_body(source, earliest - datetime.timedelta(seconds=1)), 400, "InvalidParameterValue"),
        ("pitr-region", restore_body(source, now(), location="eastus"), 400, "InvalidParameterValue"),
        (SOURCE, restore_body(source, now()), 409, "ServerNameAlreadyExists"),
        ("fundrbolt-production-db", restore_body(source, now()), 409, "ServerNameAlreadyExists"),
    ]
    messages = {}
    for name, body, status, code in cases:
        with pytest.raises(HttpResponseError) as caught:
            pg.servers.begin_create_or_update(RESTORE_RG, name, body)
        assert (caught.value.status_code, caught.value.error.code) == (status, code), name
        messages[name] = caught.value.error.message
    assert "outside the restore window of server 'fundrbolt-sandbox-db'" in messages["pitr-future"]
    assert "outside the restore window" in messages["pitr-old"]
    missing = restore_body(source, now())
    missing["properties"]["sourceServerResourceId"] = source.id.replace(SOURCE, "nope")
    with pytest.raises(ResourceNotFoundError):
        pg.servers.begin_create_or_update(RESTORE_RG, "pitr-orphan", missing)
    with pytest.raises(ResourceExistsError):
        pg.servers.begin_create_or_update(RG, SOURCE, restore_body(source, now()))
    assert list(pg.servers.list_by_resource_group(RESTORE_RG)) == []


def test_failed_restore_ends_the_operation_failed(sbx, pg):
    source = pg.servers.get(RG, SOURCE)
    sbx.fault(kind="lro_fail", method="PUT", path="/flexibleServers/pitr-fails$")
    poller = pg.servers.begin_create_or_update(RESTORE_RG, "pitr-fails", restore_body(source, now()),
                                               polling_interval=0.2)
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=30)
    assert caught.value.error.code == "RestoreFailed"
    assert poller.status() == "Failed"
    # Nothing is left behind: no server, no cluster.
    assert flex_server(sbx, "pitr-fails") is None
    assert "pitr-fails" not in [c["name"] for c in sbx.admin("GET", "postgres")["clusters"]]


def test_a_server_left_by_a_failed_restore_goes_with_a_reset(sbx, pg):
    source = pg.servers.get(RG, SOURCE)
    # With leave_server the server stays, Disabled: the state the failed restore reached.
    sbx.fault(kind="lro_fail", method="PUT", path="/flexibleServers/pitr-left$", leave_server=True, code="Boom")
    poller = pg.servers.begin_create_or_update(RESTORE_RG, "pitr-left", restore_body(source, now()),
                                               polling_interval=0.2)
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=30)
    assert caught.value.error.code == "Boom"
    assert pg.servers.get(RESTORE_RG, "pitr-left").state == "Disabled"
    sbx.admin("POST", "reset")
    assert list(pg.servers.list_by_resource_group(RESTORE_RG)) == []
    clusters = [c["name"] for c in sbx.admin("GET", "postgres")["clusters"]]
    assert "pitr-left" not in clusters and SOURCE in clusters
    assert pg.servers.get(RG, SOURCE).state == "Ready"
