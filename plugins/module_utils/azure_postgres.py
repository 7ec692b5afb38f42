# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure Database for PostgreSQL flexible server: point-in-time restore into a new server.

What the runbooks do by hand (fundrbolt "Restore from Backup", fusionnet 4.2)
as ``az postgres flexible-server restore`` and then ``show --query state`` in
a loop: check the restore window, create a new server from the source's
backups at a point in time, wait until it is Ready, and hand back its FQDN for
the connection-string cut-over. The source server is never written to.

``FlexibleServers`` talks to ARM through azure-mgmt-postgresqlflexibleservers;
``restore_to_new_server`` decides (by desired state), validates, acts and
waits.  Neither imports AnsibleModule.
"""

from __future__ import annotations

import datetime
import re
import time
import traceback

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import (
    arm_call,
    arm_error_code,
    arm_error_message,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import OperationTimeout, wait_for_operation

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
except ImportError:
    AZURE_POSTGRES_IMPORT_ERROR = traceback.format_exc()
    HttpResponseError = ResourceNotFoundError = None
else:
    AZURE_POSTGRES_IMPORT_ERROR = None

RESOURCE_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
FQDN_SUFFIX = "postgres.database.azure.com"
# ARM does not report a server's restore point (pointInTimeUTC is write-only), so the
# module records it as a tag on the new server: the re-run checks it, and a person sees it.
RESTORE_POINT_TAG = "sre-rollback-restore-point"
# Server names are DNS labels: 3-63 lower-case letters, digits and hyphens, no hyphen at either end.
SERVER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
# States of a server that is a finished restore (a restored server may have been stopped since).
DONE_STATES = ("Ready", "Stopped")
# States that end on their own: an earlier restore still provisioning, a start or an update.
TRANSIENT_STATES = ("Provisioning", "Starting", "Updating", "Restarting")
_ISO_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(value):
    """An aware datetime as ISO 8601 UTC with a Z (what ARM and az print)."""
    if value is None:
        return None
    value = value.astimezone(datetime.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_restore_time(text):
    """The restore point from ISO 8601 text with a UTC offset, as an aware UTC datetime.

    Relative times ("-15m") are refused on purpose: a re-run would name another
    instant, and a restore is idempotent only for a fixed point. Times without
    an offset are refused too: at 3 a.m. nobody should have to guess whose
    local time "10:30" was.
    """
    value = (text or "").strip() if isinstance(text, str) else text
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        match = _ISO_TIME.match(value or "")
        if not match:
            raise RollbackError(
                "restore_time %r is not an ISO 8601 time such as 2026-01-15T10:30:00Z (relative times are not "
                "accepted: a re-run would restore to a different point)." % (text,))
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        if offset is None:
            raise RollbackError(
                "restore_time %r has no UTC offset: add Z for UTC (2026-01-15T10:30:00Z) or an offset "
                "such as +01:00." % (text,))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        if offset in ("Z", "z"):
            zone = datetime.timezone.utc
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        try:
            parsed = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                                       micro, tzinfo=zone)
        except ValueError as error:
            raise RollbackError("restore_time %r is not a valid time: %s." % (text, error)) from None
    if parsed.tzinfo is None:
        raise RollbackError("restore_time has no UTC offset: add Z for UTC or an offset such as +01:00.")
    return parsed.astimezone(datetime.timezone.utc)


def check_restore_window(point, earliest, now, source_name):
    """Refuse a restore point outside [earliest restore point, now] before anything is asked of Azure."""
    if point > now:
        raise RollbackError(
            "restore_time %s is in the future (now is %s): a server can only be restored to a time that has "
            "passed." % (format_time(point), format_time(now)),
            earliest_restore_time=format_time(earliest))
    if earliest is not None and point < earliest:
        raise RollbackError(
            "restore_time %s is before the earliest restore point of server '%s' (%s): the backups that old "
            "are gone (retention). Choose a time between %s and now." % (
                format_time(point), source_name, format_time(earliest), format_time(earliest)),
            earliest_restore_time=format_time(earliest))


def validate_server_name(name, option="name"):
    if not SERVER_NAME.match(name or ""):
        raise RollbackError(
            "%s %r is not a valid flexible server name: 3 to 63 lower-case letters, digits and hyphens, "
            "not starting or ending with a hyphen." % (option, name))


def server_resource_id(subscription_id, resource_group, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/%s/%s" % (subscription_id, resource_group, RESOURCE_TYPE, name)


def same_resource_id(first, second):
    """ARM resource ids compare without regard to case (and a trailing slash)."""
    return bool(first) and bool(second) and first.rstrip("/").lower() == second.rstrip("/").lower()


def parse_source_reference(source, default_resource_group, subscription_id):
    """(resource group, name) of the source: a server name (in ``default_resource_group``) or its resource id."""
    text = (source or "").strip()
    if text.startswith("/"):
        parts = [part for part in text.split("/") if part]
        lowered = [part.lower() for part in parts]
        if not (len(parts) == 8 and lowered[0] == "subscriptions" and lowered[2] == "resourcegroups"
                and lowered[4] == "providers" and "/".join(lowered[5:7]) == RESOURCE_TYPE.lower()):
            raise RollbackError("source_server %r is neither a server name nor a flexible server resource id." % text)
        if parts[1].lower() != (subscription_id or "").lower():
            raise RollbackError(
                "source_server is in subscription %s, but the restore runs in %s: a point-in-time restore stays "
                "in the source's subscription." % (parts[1], subscription_id))
        return parts[3], parts[7]
    validate_server_name(text, "source_server")
    return default_resource_group, text


def _text(value):
    """An SDK enum (ServerState.READY) or a string, as the plain string."""
    if value is None:
        return None
    return getattr(value, "value", value)


def _attr(obj, *path):
    for name in path:
        if obj is None:
            return None
        try:
            obj = getattr(obj, name)
        except AttributeError:
            return None
    return obj


def _as_datetime(value):
    if value is None or isinstance(value, datetime.datetime):
        return value
    try:
        return parse_restore_time(str(value))
    except RollbackError:
        return None


def server_summary(server, resource_group):
    """What a person needs to know about a server, as plain data."""
    tags = dict(_attr(server, "tags") or {})
    earliest = _as_datetime(_attr(server, "backup", "earliest_restore_date"))
    recorded = tags.get(RESTORE_POINT_TAG)
    return {
        "id": _attr(server, "id"),
        "name": _attr(server, "name"),
        "resource_group": resource_group,
        "location": _attr(server, "location"),
        "state": _text(_attr(server, "state")),
        "fqdn": _attr(server, "fully_qualified_domain_name"),
        "version": _text(_attr(server, "version")),
        "sku": _attr(server, "sku", "name"),
        "source_server_id": _attr(server, "source_server_resource_id"),
        "restore_time": recorded,
        "earliest_restore_time": format_time(earliest),
        "tags": tags,
    }


class FlexibleServers:
    """Reads and creates flexible servers of one subscription."""

    def __init__(self, client, subscription_id):
        self.client = client
        self.subscription_id = subscription_id

    @classmethod
    def connect(cls, settings):
        client = PostgreSQLManagementClient(settings.credential(), settings.subscription_id, **settings.client_kwargs())
        return cls(client, settings.subscription_id)

    def get(self, resource_group, name):
        """The server, or None when it does not exist; a missing resource group is an error."""
        with arm_call("Reading flexible server %s" % name):
            try:
                return self.client.servers.get(resource_group, name)
            except ResourceNotFoundError as error:
                if arm_error_code(error) == "ResourceNotFound":
                    return None
                raise

    def begin_restore(self, resource_group, name, location, source_id, point, tags, polling_interval, on_response):
        """Start the point-in-time restore; returns the azure-core poller.

        ``on_response`` sees every raw response (the initial 202 and each poll),
        which is where the operation's URL comes from.
        """
        body = {
            "location": location,
            "tags": tags,
            "properties": {
                "createMode": "PointInTimeRestore",
                "sourceServerResourceId": source_id,
                "pointInTimeUTC": format_time(point),
            },
        }
        return self.client.servers.begin_create_or_update(
            resource_group, name, body, polling_interval=polling_interval, raw_response_hook=on_response)


class OperationTracker:
    """Remembers the Azure-AsyncOperation URL of the restore (the id a person follows up with)."""

    def __init__(self):
        self.url = None

    def __call__(self, pipeline_response):
        headers = pipeline_response.http_response.headers
        url = headers.get("Azure-AsyncOperation") or headers.get("Location")
        if url and self.url is None:
            self.url = url

    @property
    def operation_id(self):
        if not self.url:
            return None
        return self.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _wait_until_settled(servers, resource_group, name, deadline, polling_interval):
    """Poll a server that an earlier run is still restoring until it is Ready (or another end state)."""
    while True:
        server = servers.get(resource_group, name)
        state = _text(_attr(server, "state")) if server is not None else None
        if state not in TRANSIENT_STATES:
            return server
        if time.monotonic() >= deadline:
            raise RollbackError(
                "Flexible server '%s' is still %s after waiting: an earlier restore may still be running. "
                "Re-run the task to keep waiting." % (name, state), state=state)
        time.sleep(min(polling_interval, max(deadline - time.monotonic(), 0.1)))


def restore_to_new_server(servers, name, resource_group, source_server, restore_time, source_resource_group=None,
                          tags=None, wait_timeout=3600, polling_interval=15, check_mode=False, now=None):
    """Make ``resource_group/name`` a point-in-time restore of the source; returns ``(changed, result)``.

    Idempotent: a target that already is a restore of that source (by its
    ``sourceServerResourceId``, and by the recorded restore point when there
    is one) is left alone. Everything that can be checked is checked before
    the create is sent, so bad input changes nothing.
    """
    if wait_timeout <= 0 or polling_interval <= 0:
        raise RollbackError("wait_timeout and polling_interval must be more than 0.")
    started = time.monotonic()
    validate_server_name(name)
    point = parse_restore_time(restore_time)
    source_rg, source_name = parse_source_reference(source_server, source_resource_group or resource_group,
                                                    servers.subscription_id)
    if source_rg.lower() == resource_group.lower() and source_name.lower() == name.lower():
        raise RollbackError("name must differ from source_server: a point-in-time restore always creates a new "
                            "server and never overwrites the source.")
    source = servers.get(source_rg, source_name)
    if source is None:
        raise RollbackError("Source server '%s' not found in resource group '%s'; nothing was restored."
                            % (source_name, source_rg))
    source_info = server_summary(source, source_rg)
    source_id = source_info["id"] or server_resource_id(servers.subscription_id, source_rg, source_name)
    result = dict(name=name, resource_group=resource_group, source_server_id=source_id,
                  restore_time=format_time(point), earliest_restore_time=source_info["earliest_restore_time"],
                  id=None, fqdn=None, state=None, operation_id=None, warnings=[])

    existing = servers.get(resource_group, name)
    if existing is not None:
        return _already_there(servers, existing, result, point, started, wait_timeout, polling_interval, check_mode)

    earliest = _as_datetime(_attr(source, "backup", "earliest_restore_date"))
    check_restore_window(point, earliest, now or utcnow(), source_name)

    record = {str(key): str(value) for key, value in (tags or {}).items()}
    record[RESTORE_POINT_TAG] = format_time(point)
    predicted = {
        "id": server_resource_id(servers.subscription_id, resource_group, name),
        "name": name,
        "resource_group": resource_group,
        "location": source_info["location"],
        "state": "Ready",
        "fqdn": "%s.%s" % (name, FQDN_SUFFIX),
        "version": source_info["version"],
        "sku": source_info["sku"],
        "source_server_id": source_id,
        "restore_time": format_time(point),
        "tags": record,
    }
    if check_mode:
        result.update(id=predicted["id"], fqdn=predicted["fqdn"], state=None, before={}, after=predicted,
                      diff=dict(before={}, after=predicted))
        return True, result

    what = "Point-in-time restore of %s into %s" % (source_name, name)
    tracker = OperationTracker()
    try:
        with arm_call("Starting the %s" % what):
            poller = servers.begin_restore(resource_group, name, source_info["location"], source_id, point, record,
                                           polling_interval, tracker)
    except RollbackError as error:
        # azure-core re-sends a PUT whose answer was lost; the re-sent one then finds the server
        # its first copy created. That server is this restore: wait for it rather than fail.
        if getattr(error.__cause__, "status_code", None) != 409:
            raise
        started_by_us = servers.get(resource_group, name)
        current = server_summary(started_by_us, resource_group) if started_by_us is not None else {}
        if not (same_resource_id(current.get("source_server_id"), source_id)
                and _as_datetime(current.get("restore_time")) == point):
            raise
        settled = _wait_until_settled(servers, resource_group, name, started + wait_timeout, polling_interval)
        after = server_summary(settled, resource_group) if settled is not None else {}
        if after.get("state") not in DONE_STATES:
            raise RollbackError("%s failed: the server is in state %s." % (what, after.get("state")), after=after)
        result.update(id=after["id"], fqdn=after["fqdn"], state=after["state"], before={}, after=after,
                      diff=dict(before={}, after=after))
        return True, result
    remaining = wait_timeout - (time.monotonic() - started)
    try:
        with arm_call(what):
            progress = wait_for_operation(poller, max(remaining, 0.1), what)
    except OperationTimeout as error:
        raise RollbackError(
            "%s did not finish within %s s; it may still be running in Azure (operation %s). Re-run the task "
            "to keep waiting (it will not start a second restore), or follow it with `az postgres flexible-server "
            "show -g %s -n %s --query state`." % (what, wait_timeout, tracker.operation_id, resource_group, name),
            operation_id=tracker.operation_id, operation_url=tracker.url, **error.details) from None
    except RollbackError as error:
        cause = error.__cause__
        if HttpResponseError is None or not isinstance(cause, HttpResponseError):
            raise
        reached = servers.get(resource_group, name)
        state = _text(_attr(reached, "state")) if reached is not None else None
        where = ("the new server is in state %s" % state) if reached is not None else \
            "no server was left behind"
        raise RollbackError(
            "%s failed (operation %s, status %s): %s: %s. State reached: %s. The source server was not changed."
            % (what, tracker.operation_id, _text(poller.status()), arm_error_code(cause),
               arm_error_message(cause).rstrip("."), where),
            operation_id=tracker.operation_id, state=state,
            after=server_summary(reached, resource_group) if reached is not None else {}) from None

    created = servers.get(resource_group, name)
    if created is None:
        raise RollbackError("%s reported success, but server '%s' does not exist." % (what, name),
                            operation_id=tracker.operation_id)
    after = server_summary(created, resource_group)
    if after["state"] not in DONE_STATES:
        created = _wait_until_settled(servers, resource_group, name, started + wait_timeout, polling_interval)
        after = server_summary(created, resource_group)
    result.update(id=after["id"], fqdn=after["fqdn"], state=after["state"], operation_id=tracker.operation_id,
                  progress=progress, before={}, after=after, diff=dict(before={}, after=after))
    return True, result


def _already_there(servers, existing, result, point, started, wait_timeout, polling_interval, check_mode=False):
    """The target name exists: no change when it is this restore, a clear error when it is anything else."""
    resource_group, name = result["resource_group"], result["name"]
    current = server_summary(existing, resource_group)
    if not same_resource_id(current["source_server_id"], result["source_server_id"]):
        raise RollbackError(
            "A different server named '%s' already exists in resource group '%s' (%s); it is not a restore of "
            "'%s'. Nothing was changed: choose another name for the restored server." % (
                name, resource_group, "a restore of %s" % current["source_server_id"]
                if current["source_server_id"] else "not a restore", result["source_server_id"].rsplit("/", 1)[-1]),
            existing=current)
    recorded = _as_datetime(current["restore_time"])
    if recorded is not None and recorded != point:
        raise RollbackError(
            "Server '%s' already exists as a restore of the same source, but to %s, not %s. Nothing was changed: "
            "use another name for a restore to a different point." % (name, format_time(recorded),
                                                                      format_time(point)),
            existing=current)
    if recorded is None:
        result["warnings"].append(
            "Server '%s' is a restore of the source, but its restore point was not recorded (the %s tag is "
            "missing, so it was not made by this module): it is taken as the restore asked for." % (
                name, RESTORE_POINT_TAG))
    if current["state"] in TRANSIENT_STATES and check_mode:
        result["warnings"].append("Server '%s' is still %s: an earlier run's restore is not finished; a run "
                                  "without check mode waits for it." % (name, current["state"]))
        result.update(id=current["id"], fqdn=current["fqdn"], state=current["state"], before=current, after=current)
        return False, result
    if current["state"] in TRANSIENT_STATES:
        existing = _wait_until_settled(servers, resource_group, name, started + wait_timeout, polling_interval)
        if existing is None:
            raise RollbackError("Server '%s' disappeared while an earlier restore was being waited for: that "
                                "restore failed. Run the task again to restore anew." % name)
        current = server_summary(existing, resource_group)
    if current["state"] not in DONE_STATES:
        raise RollbackError(
            "Server '%s' exists as a restore of the source but is in state %s, not Ready: probably a failed "
            "earlier restore. Delete it or choose another name." % (name, current["state"]), existing=current)
    result.update(id=current["id"], fqdn=current["fqdn"], state=current["state"], before=current, after=current)
    return False, result
