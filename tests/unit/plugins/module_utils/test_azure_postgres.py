# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import enum
import time
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError

from ansible_collections.sre.rollback.plugins.module_utils.azure_postgres import (
    RESTORE_POINT_TAG,
    OperationTracker,
    check_restore_window,
    format_time,
    parse_restore_time,
    parse_source_reference,
    restore_to_new_server,
    same_resource_id,
    server_resource_id,
    server_summary,
    validate_server_name,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

UTC = datetime.timezone.utc
SUB = "00000000-0000-0000-0000-000000000001"
SOURCE_ID = server_resource_id(SUB, "rg-prod", "app-db")


class ServerState(str, enum.Enum):
    READY = "Ready"
    DISABLED = "Disabled"


def at(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def server(name, resource_group, state=ServerState.READY, source_id=None, tags=None, earliest=None):
    """The attributes of an azure-mgmt-postgresqlflexibleservers Server that the module reads."""
    return SimpleNamespace(
        id=server_resource_id(SUB, resource_group, name), name=name, location="westeurope", state=state,
        fully_qualified_domain_name="%s.postgres.database.azure.com" % name, version="15",
        sku=SimpleNamespace(name="Standard_B1ms"), source_server_resource_id=source_id, tags=tags or {},
        backup=SimpleNamespace(earliest_restore_date=earliest),
    )


class KnownServers:
    """A subscription's servers as FlexibleServers would read them; records creates instead of sending them."""

    subscription_id = SUB

    def __init__(self, *servers_by_group):
        self.servers = {(rg.lower(), s.name.lower()): s for rg, s in servers_by_group}
        self.creates = []

    def get(self, resource_group, name):
        return self.servers.get((resource_group.lower(), name.lower()))

    def begin_restore(self, *args, **kwargs):
        self.creates.append(args)
        raise AssertionError("no create may be sent in this test")


SOURCE = server("app-db", "rg-prod", earliest=at(2026, 1, 10, 0, 0))


# -- restore_time ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2026-01-15T10:30:00Z", at(2026, 1, 15, 10, 30)),
    ("2026-01-15T10:30Z", at(2026, 1, 15, 10, 30)),
    ("2026-01-15 10:30:00+00:00", at(2026, 1, 15, 10, 30)),
    ("2026-01-15T11:30:00+01:00", at(2026, 1, 15, 10, 30)),
    ("2026-01-15T05:00:00-0530", at(2026, 1, 15, 10, 30)),
    ("2026-01-15T10:30:00.250Z", at(2026, 1, 15, 10, 30, 0, 250000)),
    ("2026-01-15T10:30:00.123456789Z", at(2026, 1, 15, 10, 30, 0, 123456)),
])
def test_restore_time_is_iso_8601_with_an_offset(text, expected):
    assert parse_restore_time(text) == expected


@pytest.mark.parametrize("text, message", [
    ("-15m", "relative times are not accepted"),
    ("yesterday", "not an ISO 8601 time"),
    ("", "not an ISO 8601 time"),
    ("2026-01-15T10:30:00", "no UTC offset"),
    ("2026-02-30T10:30:00Z", "not a valid time"),
])
def test_restore_time_refuses_what_it_cannot_pin_down(text, message):
    with pytest.raises(RollbackError, match=message):
        parse_restore_time(text)


def test_format_time_is_utc_with_z():
    assert format_time(at(2026, 1, 15, 10, 30)) == "2026-01-15T10:30:00Z"
    assert format_time(at(2026, 1, 15, 10, 30, 0, 5)) == "2026-01-15T10:30:00.000005Z"
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    assert format_time(datetime.datetime(2026, 1, 15, 11, 30, tzinfo=plus_one)) == "2026-01-15T10:30:00Z"
    assert parse_restore_time(format_time(at(2026, 1, 15, 10, 30, 0, 123400))) == at(2026, 1, 15, 10, 30, 0, 123400)


def test_restore_window():
    earliest, now = at(2026, 1, 10), at(2026, 1, 15, 12)
    check_restore_window(earliest, earliest, now, "app-db")  # both ends are inside
    check_restore_window(now, earliest, now, "app-db")
    with pytest.raises(RollbackError, match="before the earliest restore point of server 'app-db' "
                                            r"\(2026-01-10T00:00:00Z\)") as too_old:
        check_restore_window(at(2026, 1, 9, 23, 59), earliest, now, "app-db")
    assert too_old.value.details == {"earliest_restore_time": "2026-01-10T00:00:00Z"}
    with pytest.raises(RollbackError, match="in the future"):
        check_restore_window(at(2026, 1, 15, 12, 0, 1), earliest, now, "app-db")


# -- names and ids ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["abc", "app-db-restored-1", "a" * 63])
def test_valid_server_names(name):
    validate_server_name(name)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "-app", "app-", "App-DB", "app_db", "app.db", ""])
def test_invalid_server_names(name):
    with pytest.raises(RollbackError, match="not a valid flexible server name"):
        validate_server_name(name)


def test_source_by_name_or_resource_id():
    assert parse_source_reference("app-db", "rg-default", SUB) == ("rg-default", "app-db")
    assert parse_source_reference(SOURCE_ID.upper().replace(SUB.upper(), SUB), "x", SUB)[1] == "APP-DB"
    assert parse_source_reference(SOURCE_ID, "rg-default", SUB) == ("rg-prod", "app-db")
    with pytest.raises(RollbackError, match="subscription"):
        parse_source_reference(SOURCE_ID.replace(SUB, "another-subscription"), "rg", SUB)
    with pytest.raises(RollbackError, match="neither a server name nor"):
        parse_source_reference("/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Sql/servers/x" % SUB, "rg", SUB)


def test_resource_ids_compare_without_case():
    assert same_resource_id(SOURCE_ID, SOURCE_ID.lower() + "/")
    assert not same_resource_id(SOURCE_ID, None)
    assert not same_resource_id(SOURCE_ID, SOURCE_ID.replace("app-db", "app-db2"))


def test_server_summary_reads_the_sdk_shape():
    summary = server_summary(server("app-db-pitr", "rg-dr", source_id=SOURCE_ID,
                                    tags={RESTORE_POINT_TAG: "2026-01-15T10:30:00Z"},
                                    earliest=at(2026, 1, 15, 11)), "rg-dr")
    assert summary["state"] == "Ready"  # the enum's value, not its repr
    assert summary["fqdn"] == "app-db-pitr.postgres.database.azure.com"
    assert summary["restore_time"] == "2026-01-15T10:30:00Z"
    assert summary["earliest_restore_time"] == "2026-01-15T11:00:00Z"
    assert summary["source_server_id"] == SOURCE_ID and summary["sku"] == "Standard_B1ms"


def test_operation_tracker_keeps_the_first_status_url():
    tracker = OperationTracker()
    assert tracker.operation_id is None
    for url in ("https://arm/subscriptions/s/providers/Microsoft.DBforPostgreSQL/locations/westeurope/"
                "azureAsyncOperation/op-1?api-version=2026-10-01", "https://arm/other/op-2"):
        tracker(SimpleNamespace(http_response=SimpleNamespace(headers={"Azure-AsyncOperation": url})))
    assert tracker.operation_id == "op-1"


# -- decisions before any create ------------------------------------------------------------
def restore(servers, name="app-db-pitr", restore_time="2026-01-15T10:30:00Z", **kwargs):
    kwargs.setdefault("source_resource_group", "rg-prod")
    return restore_to_new_server(servers, name, "rg-dr", "app-db", restore_time, polling_interval=0.01,
                                 now=at(2026, 1, 15, 12), **kwargs)


def test_check_mode_predicts_the_server_and_sends_nothing():
    servers = KnownServers(("rg-prod", SOURCE))
    changed, result = restore(servers, check_mode=True, tags={"incident": 42})
    assert changed and servers.creates == []
    assert result["after"]["fqdn"] == "app-db-pitr.postgres.database.azure.com"
    assert result["after"]["tags"] == {"incident": "42", RESTORE_POINT_TAG: "2026-01-15T10:30:00Z"}
    assert result["source_server_id"] == SOURCE_ID and result["before"] == {}


def test_an_existing_restore_of_the_source_to_that_point_is_no_change():
    done = server("app-db-pitr", "rg-dr", source_id=SOURCE_ID.lower(),
                  tags={RESTORE_POINT_TAG: "2026-01-15T11:30:00+01:00"})
    changed, result = restore(KnownServers(("rg-prod", SOURCE), ("rg-dr", done)))
    assert not changed
    assert result["state"] == "Ready" and result["before"] == result["after"] and result["warnings"] == []


def test_an_existing_restore_without_a_recorded_point_is_taken_with_a_warning():
    done = server("app-db-pitr", "rg-dr", source_id=SOURCE_ID)
    changed, result = restore(KnownServers(("rg-prod", SOURCE), ("rg-dr", done)))
    assert not changed and "was not recorded" in result["warnings"][0]


@pytest.mark.parametrize("existing, message", [
    (server("app-db-pitr", "rg-dr"), "A different server named 'app-db-pitr'"),
    (server("app-db-pitr", "rg-dr", source_id=SOURCE_ID.replace("app-db", "other-db")), "a restore of /subscriptions"),
    (server("app-db-pitr", "rg-dr", source_id=SOURCE_ID, tags={RESTORE_POINT_TAG: "2026-01-14T00:00:00Z"}),
     "but to 2026-01-14T00:00:00Z, not 2026-01-15T10:30:00Z"),
    (server("app-db-pitr", "rg-dr", source_id=SOURCE_ID, state=ServerState.DISABLED), "is in state Disabled"),
])
def test_a_name_taken_otherwise_fails_and_sends_nothing(existing, message):
    servers = KnownServers(("rg-prod", SOURCE), ("rg-dr", existing))
    with pytest.raises(RollbackError, match=message.replace("(", r"\(")):
        restore(servers)
    assert servers.creates == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(restore_time="2026-01-09T23:59:59Z"), "before the earliest restore point"),
    (dict(restore_time="2026-01-15T12:00:01Z"), "in the future"),
    (dict(source_resource_group="rg-nowhere"), "Source server 'app-db' not found in resource group 'rg-nowhere'"),
    (dict(name="Bad_Name"), "not a valid flexible server name"),
    (dict(wait_timeout=0), "wait_timeout"),
])
def test_bad_input_fails_before_any_create(kwargs, message):
    servers = KnownServers(("rg-prod", SOURCE))
    with pytest.raises(RollbackError, match=message):
        restore(servers, **kwargs)
    assert servers.creates == []


def test_the_source_cannot_be_its_own_target():
    servers = KnownServers(("rg-dr", server("app-db", "rg-dr", earliest=at(2026, 1, 10))))
    with pytest.raises(RollbackError, match="never overwrites the source"):
        restore_to_new_server(servers, "app-db", "rg-dr", "app-db", "2026-01-15T10:30:00Z")


class LostAnswerServers(KnownServers):
    """The first PUT created the server but its answer was lost; the re-sent PUT gets 409."""

    def begin_restore(self, resource_group, name, location, source_id, point, tags, polling_interval, on_response):
        self.creates.append(name)
        self.servers[(resource_group.lower(), name.lower())] = server(name, resource_group, source_id=source_id,
                                                                      tags=tags)
        try:
            raise RuntimeError("409 ServerNameAlreadyExists")
        except RuntimeError as cause:
            cause.status_code = 409
            raise RollbackError("Starting the restore failed: HTTP 409 ServerNameAlreadyExists") from cause


def test_a_conflict_from_our_own_lost_put_waits_for_that_restore():
    servers = LostAnswerServers(("rg-prod", SOURCE))
    changed, result = restore(servers)
    assert changed and servers.creates == ["app-db-pitr"]
    assert result["state"] == "Ready" and result["after"]["restore_time"] == "2026-01-15T10:30:00Z"


def test_a_conflict_with_someone_elses_server_still_fails():
    class TakenMeanwhile(KnownServers):
        def begin_restore(self, resource_group, name, *args):
            self.servers[(resource_group.lower(), name.lower())] = server(name, resource_group)
            try:
                raise RuntimeError("409")
            except RuntimeError as cause:
                cause.status_code = 409
                raise RollbackError("HTTP 409 ServerNameAlreadyExists") from cause

    with pytest.raises(RollbackError, match="409 ServerNameAlreadyExists"):
        restore(TakenMeanwhile(("rg-prod", SOURCE)))


def test_check_mode_does_not_wait_for_a_restore_still_provisioning():
    provisioning = server("app-db-pitr", "rg-dr", state="Provisioning", source_id=SOURCE_ID,
                          tags={RESTORE_POINT_TAG: "2026-01-15T10:30:00Z"})
    changed, result = restore(KnownServers(("rg-prod", SOURCE), ("rg-dr", provisioning)), check_mode=True,
                              wait_timeout=0.01)
    assert not changed and result["state"] == "Provisioning" and "still Provisioning" in result["warnings"][0]


def test_a_restore_still_provisioning_is_waited_for_until_the_deadline():
    provisioning = server("app-db-pitr", "rg-dr", state="Provisioning", source_id=SOURCE_ID,
                          tags={RESTORE_POINT_TAG: "2026-01-15T10:30:00Z"})
    with pytest.raises(RollbackError, match="still Provisioning after waiting"):
        restore(KnownServers(("rg-prod", SOURCE), ("rg-dr", provisioning)), wait_timeout=0.05)


class ScriptedPoller:
    """An azure-core LROPoller that ends as told: 'Succeeded', 'Failed' (with an ARM error) or never."""

    def __init__(self, outcome, error=None):
        self.outcome, self.error, self.polls = outcome, error, 0

    def status(self):
        return "InProgress" if self.outcome == "never" or self.polls == 0 else self.outcome

    def done(self):
        return self.outcome != "never" and self.polls > 0

    def wait(self, timeout=None):
        self.polls += 1
        if self.outcome == "never":
            time.sleep(min(timeout or 0, 0.01))

    def result(self):
        if self.outcome == "Failed":
            raise self.error


class RestoringServers(KnownServers):
    """Starts the restore (the server appears, Provisioning) and hands back a scripted poller."""

    def __init__(self, poller, end_state=None, *servers_by_group):
        super().__init__(*servers_by_group)
        self.poller, self.end_state = poller, end_state

    def begin_restore(self, resource_group, name, location, source_id, point, tags, polling_interval, on_response):
        self.creates.append(name)
        on_response(SimpleNamespace(http_response=SimpleNamespace(headers={
            "Azure-AsyncOperation": "https://arm/subscriptions/s/providers/Microsoft.DBforPostgreSQL/locations/"
                                    "westeurope/azureAsyncOperation/op-42?api-version=2026-10-01"})))
        if self.end_state is not None:
            self.servers[(resource_group.lower(), name.lower())] = server(
                name, resource_group, state=self.end_state, source_id=source_id, tags=tags)
        return self.poller


def test_a_successful_restore_reports_the_new_server():
    servers = RestoringServers(ScriptedPoller("Succeeded"), "Ready", ("rg-prod", SOURCE))
    changed, result = restore(servers)
    assert changed and result["state"] == "Ready" and result["operation_id"] == "op-42"
    assert result["fqdn"] == "app-db-pitr.postgres.database.azure.com"
    assert [step["status"] for step in result["progress"]] == ["InProgress", "Succeeded"]


def test_a_failed_restore_names_the_operation_and_the_state_reached():
    error = HttpResponseError(message="(RestoreFailed) WAL replay failed.")
    error.error = SimpleNamespace(code="RestoreFailed", message="WAL replay failed.")
    for end_state, reached in ((None, "no server was left behind"), ("Disabled", "the new server is in state Disabled")):
        servers = RestoringServers(ScriptedPoller("Failed", error), end_state, ("rg-prod", SOURCE))
        with pytest.raises(RollbackError) as failed:
            restore(servers)
        assert "operation op-42, status Failed): RestoreFailed: WAL replay failed. State reached: %s." % reached \
            in failed.value.message
        assert failed.value.details["operation_id"] == "op-42"


def test_a_restore_that_outlasts_the_deadline_may_still_be_running():
    servers = RestoringServers(ScriptedPoller("never"), "Provisioning", ("rg-prod", SOURCE))
    with pytest.raises(RollbackError) as late:
        restore(servers, wait_timeout=0.05)
    assert "may still be running in Azure (operation op-42)" in late.value.message
    assert late.value.details["operation_url"].endswith("op-42?api-version=2026-10-01")
