# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cosmos DB point-in-time restore (continuous backup) through azure-mgmt-cosmosdb.

Three restores, the ones the runbooks and ``az cosmosdb`` offer:

* an account to a timestamp, into a NEW account (``createMode: Restore``);
* a deleted SQL database back into the same account;
* a deleted SQL container back into its database (``az cosmosdb sql container restore``).

Every restore is validated before anything is sent: the source must be a
restorable account (continuous backup), the timestamp inside its restorable
range (oldest restorable time up to now, or up to its deletion), and what is
to be restored must have existed at that timestamp.  The restore is then
awaited with a deadline.  Idempotent by desired state: a target account that
already is a restore of the same source at the same timestamp, or a database
or container that exists again, means nothing to do.
"""

from __future__ import annotations

import datetime
import re
import time
import traceback
from dataclasses import asdict, dataclass, field

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_IDENTITY_IMPORT_ERROR, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call, arm_error_code
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import wait_for_operation

try:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.cosmosdb import CosmosDBManagementClient
    from azure.mgmt.cosmosdb import models as cosmos_models
except ImportError:
    AZURE_COSMOS_IMPORT_ERROR = traceback.format_exc()
    CosmosDBManagementClient = cosmos_models = ResourceNotFoundError = None
else:
    AZURE_COSMOS_IMPORT_ERROR = None

COSMOS_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-cosmosdb", AZURE_COSMOS_IMPORT_ERROR)]

ACCOUNT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,42}[a-z0-9])")
# Used only when the service sends no Retry-After with a running operation.
POLLING_INTERVAL_S = 5
# Polling a target account that an earlier run left being created.
CREATING_POLL_S = 2


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(value):
    if value is None:
        return None
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text):
    """An ISO 8601 timestamp as an aware UTC datetime; a time without an offset is UTC."""
    if isinstance(text, datetime.datetime):
        value = text
    else:
        raw = str(text or "").strip()
        if not raw:
            raise RollbackError("restore_timestamp is required, e.g. 2025-12-26T10:00:00Z.")
        try:
            value = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise RollbackError("restore_timestamp %r is not an ISO 8601 time such as 2025-12-26T10:00:00Z." % raw) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


@dataclass
class RestorableAccount:
    """One restorable database account (one instance: a name can have a live and deleted ones)."""

    account_name: str
    instance_id: str
    location: str
    id: str
    creation_time: str | None = None
    deletion_time: str | None = None
    oldest_restorable_time: str | None = None
    latest_restorable_time: str | None = None
    api_type: str | None = None

    @property
    def deleted(self):
        return self.deletion_time is not None

    def to_dict(self):
        return asdict(self)


def restorable_from(item, now=None):
    props = item.properties
    latest = props.deletion_time or now or utcnow()
    return RestorableAccount(
        account_name=props.account_name,
        instance_id=item.name,
        location=item.location,
        id=item.id,
        creation_time=iso(props.creation_time),
        deletion_time=iso(props.deletion_time),
        oldest_restorable_time=iso(props.oldest_restorable_time or props.creation_time),
        latest_restorable_time=iso(latest),
        api_type=str(getattr(props.api_type, "value", props.api_type)) if props.api_type else None,
    )


def choose_source(restorables, account_name, instance_id=None):
    """The restorable account a restore reads from: the named instance, else the live one, else the newest deleted."""
    named = [r for r in restorables if (r.account_name or "").lower() == account_name.lower()]
    if instance_id:
        found = next((r for r in named if r.instance_id.lower() == instance_id.lower()), None)
        if found is None:
            raise RollbackError(
                "Account '%s' has no restorable instance %s; its instances: %s."
                % (account_name, instance_id, ", ".join(describe(r) for r in named) or "none"))
        return found
    if not named:
        return None
    live = [r for r in named if not r.deleted]
    if live:
        return live[0]
    return sorted(named, key=lambda r: r.deletion_time)[-1]


def describe(restorable):
    state = "deleted %s" % restorable.deletion_time if restorable.deleted else "live"
    return "%s (%s, restorable %s .. %s)" % (
        restorable.instance_id, state, restorable.oldest_restorable_time, restorable.latest_restorable_time)


def check_in_range(timestamp, source, now=None):
    """Refuse a timestamp outside the source's restorable range, with the range in the message."""
    now = now or utcnow()
    oldest = parse_timestamp(source.oldest_restorable_time)
    latest = parse_timestamp(source.deletion_time) if source.deleted else now
    check_not_future(timestamp, now)
    if not oldest <= timestamp <= latest:
        raise RollbackError(
            "restore_timestamp %s is outside the restorable range of account '%s' (%s .. %s%s)."
            % (iso(timestamp), source.account_name, iso(oldest), iso(latest),
               ", its deletion time" if source.deleted else ", now"),
            restorable_range=[iso(oldest), iso(latest)])


def check_not_future(timestamp, now=None):
    """A restore point in the future is a typo whatever the state: refuse it before anything else."""
    now = now or utcnow()
    if timestamp > now:
        raise RollbackError("restore_timestamp %s is in the future (now %s)." % (iso(timestamp), iso(now)))


def same_second(left, right):
    if left is None or right is None:
        return False
    return abs((parse_timestamp(left) - parse_timestamp(right)).total_seconds()) < 1


def is_restore_of(account, source_id, timestamp):
    """Is this database account a restore of ``source_id`` at ``timestamp``?"""
    mode = getattr(account.create_mode, "value", account.create_mode)
    params = account.restore_parameters
    if str(mode) != "Restore" or params is None:
        return False
    return (params.restore_source or "").lower() == source_id.lower() and \
        same_second(params.restore_timestamp_in_utc, timestamp)


@dataclass
class RestoreTarget:
    """What a restore produced (or would produce), as the module reports it."""

    kind: str
    name: str
    resource_group: str | None = None
    database: str | None = None
    id: str | None = None
    exists: bool = False
    provisioning_state: str | None = None
    document_endpoint: str | None = None
    restored_from: str | None = None
    restore_timestamp: str | None = None
    databases: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)


class CosmosRestore:
    """Find restorable accounts and restore accounts, databases and containers."""

    def __init__(self, client, subscription_id, check_mode=False, diff_mode=False):
        self.client = client
        self.subscription_id = subscription_id
        self.check_mode = check_mode
        self.diff_mode = diff_mode

    @classmethod
    def from_params(cls, params, check_mode=False, diff_mode=False):
        settings = AzureSettings.from_params(params)
        credential = settings.credential()
        with arm_call("Signing in to Azure"):
            credential.get_token(settings.credential_scope)
        client = CosmosDBManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
        return cls(client, settings.subscription_id, check_mode, diff_mode)

    # ---- reads -----------------------------------------------------------------------
    def restorable_accounts(self, now=None):
        with arm_call("Listing restorable Cosmos DB accounts"):
            return [restorable_from(item, now) for item in self.client.restorable_database_accounts.list()]

    def account(self, resource_group, name):
        """The live account, or None."""
        with arm_call("Reading Cosmos DB account %s" % name):
            try:
                return self.client.database_accounts.get(resource_group, name)
            except ResourceNotFoundError as error:
                # Only the account's own 404 means "no such account"; a missing resource group or
                # subscription is reported by arm_call as what it is.
                if arm_error_code(error) in ("ResourceGroupNotFound", "SubscriptionNotFound"):
                    raise
                return None

    def source(self, account_name, instance_id=None, resource_group=None):
        found = choose_source(self.restorable_accounts(), account_name, instance_id)
        if found is not None:
            return found
        live = self.account(resource_group, account_name) if resource_group else None
        if live is not None:
            policy = getattr(getattr(live, "backup_policy", None), "type", None)
            raise RollbackError(
                "Account '%s' has %s backup; point-in-time restore needs continuous backup (restore a periodic "
                "backup through an Azure support request)." % (account_name, getattr(policy, "value", policy)))
        raise RollbackError("There is no restorable Cosmos DB account named '%s' (live or deleted) in subscription %s."
                            % (account_name, self.subscription_id))

    def existed_at(self, source, timestamp):
        """{database: [containers]} as of ``timestamp`` in ``source``."""
        with arm_call("Listing what account %s held at %s" % (source.account_name, iso(timestamp))):
            items = self.client.restorable_sql_resources.list(
                source.location, source.instance_id, restore_location=source.location,
                restore_timestamp_in_utc=iso(timestamp))
            return {item.database_name: list(item.collection_names or []) for item in items}

    def events(self, source):
        """Create/delete events of the source's databases and containers, oldest first."""
        with arm_call("Listing database and container events of %s" % source.account_name):
            databases = list(self.client.restorable_sql_databases.list(source.location, source.instance_id))
            containers = list(self.client.restorable_sql_containers.list(source.location, source.instance_id))

        def event(item, kind):
            res = item.properties.resource
            operation = getattr(res.operation_type, "value", res.operation_type)
            return dict(kind=kind, name=res.owner_id, operation=str(operation),
                        timestamp=res.event_timestamp, resource_id=res.owner_resource_id,
                        database=(res.database.id if kind == "database" and res.database else None))
        return sorted([event(i, "database") for i in databases] + [event(i, "container") for i in containers],
                      key=lambda e: e["timestamp"] or "")

    # ---- state: info -----------------------------------------------------------------
    def info(self, account_name=None, instance_id=None, resource_group=None):
        restorables = self.restorable_accounts()
        result = dict(restorable_accounts=[r.to_dict() for r in restorables], source=None, events=[])
        if account_name:
            source = choose_source(restorables, account_name, instance_id)
            if source is None:
                self.source(account_name, instance_id, resource_group)  # raises the clear error
            result["source"] = source.to_dict()
            result["restorable_accounts"] = [r.to_dict() for r in restorables
                                             if r.account_name.lower() == account_name.lower()]
            result["events"] = self.events(source)
        result["before"] = result["after"] = {}
        return False, result

    # ---- restore an account into a new account ---------------------------------------
    def restore_account(self, account_name, timestamp, target_name, target_resource_group, location=None,
                        databases_to_restore=None, instance_id=None, resource_group=None, wait_timeout=1800):
        timestamp = parse_timestamp(timestamp)
        check_not_future(timestamp)
        if not ACCOUNT_NAME_RE.fullmatch(target_name or ""):
            raise RollbackError("target_account_name %r is not a valid account name: 3-44 lower-case letters, digits "
                                "and hyphens, not starting or ending with a hyphen." % target_name)
        source = self.source(account_name, instance_id, resource_group)
        result = dict(source=source.to_dict(), restore_timestamp=iso(timestamp), progress=[])
        existing = self.account(target_resource_group, target_name)
        if existing is not None:
            return self._existing_target(existing, source, timestamp, target_resource_group, wait_timeout, result)
        with arm_call("Checking whether account name %s is free" % target_name):
            taken = self.client.database_accounts.check_name_exists(target_name)
        if taken:
            raise RollbackError("Cosmos DB account name '%s' is taken by another account (names are global); choose "
                                "another target_account_name." % target_name)
        check_in_range(timestamp, source)
        held = self.existed_at(source, timestamp)
        wanted = self._databases_to_restore(databases_to_restore, held, timestamp)
        before = RestoreTarget("account", target_name, target_resource_group)
        after = RestoreTarget("account", target_name, target_resource_group, exists=True,
                              provisioning_state="Succeeded", restored_from=source.id,
                              restore_timestamp=iso(timestamp),
                              databases={d["database_name"]: d["collection_names"] for d in wanted} if wanted
                              else held)
        result.update(before=before.to_dict(), target=after.to_dict())
        if self.check_mode:
            result["after"] = after.to_dict()
            return True, self._with_diff(result)

        params = cosmos_models.DatabaseAccountCreateUpdateParameters(
            location=location or source.location,
            kind="GlobalDocumentDB",
            properties=cosmos_models.DatabaseAccountCreateUpdateProperties(
                locations=[cosmos_models.Location(location_name=location or source.location, failover_priority=0)],
                database_account_offer_type="Standard",
                create_mode="Restore",
                restore_parameters=cosmos_models.RestoreParameters(
                    restore_mode="PointInTime",
                    restore_source=source.id,
                    restore_timestamp_in_utc=timestamp,
                    databases_to_restore=[cosmos_models.DatabaseRestoreResource(
                        database_name=d["database_name"], collection_names=d["collection_names"] or None)
                        for d in wanted] or None,
                ),
            ),
        )
        what = "Restoring account %s to %s into %s" % (account_name, iso(timestamp), target_name)
        try:
            with arm_call(what):
                poller = self.client.database_accounts.begin_create_or_update(
                    target_resource_group, target_name, params, polling_interval=POLLING_INTERVAL_S)
                result["progress"] = wait_for_operation(poller, wait_timeout, what)
        except RollbackError as error:
            raise self._failed(error, target_resource_group, target_name, result) from None
        restored = self.account(target_resource_group, target_name)
        result["after"] = result["target"] = self._account_target(restored, target_resource_group).to_dict()
        return True, self._with_diff(result)

    def _databases_to_restore(self, requested, held, timestamp):
        if not requested:
            return []
        wanted = []
        for entry in requested:
            name = entry.get("database_name")
            match = next((db for db in held if db.lower() == str(name).lower()), None)
            if match is None:
                raise RollbackError("Database '%s' did not exist at %s; databases then: %s."
                                    % (name, iso(timestamp), ", ".join(sorted(held)) or "none"))
            collections = entry.get("collection_names") or []
            missing = [c for c in collections if c.lower() not in {x.lower() for x in held[match]}]
            if missing:
                raise RollbackError("Container(s) %s did not exist in database '%s' at %s; containers then: %s."
                                    % (", ".join(missing), match, iso(timestamp), ", ".join(held[match]) or "none"))
            wanted.append(dict(database_name=match, collection_names=list(collections)))
        return wanted

    def _existing_target(self, existing, source, timestamp, resource_group, wait_timeout, result):
        if not is_restore_of(existing, source.id, timestamp):
            params = existing.restore_parameters
            raise RollbackError(
                "Target account '%s' already exists and is not a restore of '%s' at %s (it is %s); choose another "
                "target_account_name." % (
                    existing.name, source.account_name, iso(timestamp),
                    "a restore of %s at %s" % (params.restore_source, iso(params.restore_timestamp_in_utc))
                    if params else "not a restore"))
        state = existing.provisioning_state
        started = time.monotonic()
        # An earlier run may have stopped waiting; the restore it started still counts.
        while state in ("Creating", "Updating") and not self.check_mode:
            if time.monotonic() - started > wait_timeout:
                raise RollbackError("Target account '%s' is still %s after %s s." % (existing.name, state, wait_timeout),
                                    target=self._account_target(existing, resource_group).to_dict())
            time.sleep(CREATING_POLL_S)
            existing = self.account(resource_group, existing.name)
            state = existing.provisioning_state if existing else "Deleted"
        if state != "Succeeded":
            raise RollbackError("Target account '%s' is a restore of '%s' at %s but is in state %s: delete it and run "
                                "the restore again." % (existing.name if existing else "?", source.account_name,
                                                        iso(timestamp), state))
        target = self._account_target(existing, resource_group).to_dict()
        result.update(before=target, after=target, target=target)
        return False, result

    def _account_target(self, account, resource_group):
        params = account.restore_parameters
        databases = {}
        with arm_call("Listing the databases of %s" % account.name):
            for db in self.client.sql_resources.list_sql_databases(resource_group, account.name):
                databases[db.name] = sorted(c.name for c in self.client.sql_resources.list_sql_containers(
                    resource_group, account.name, db.name))
        return RestoreTarget(
            "account", account.name, resource_group, id=account.id, exists=True,
            provisioning_state=account.provisioning_state, document_endpoint=account.document_endpoint,
            restored_from=params.restore_source if params else None,
            restore_timestamp=iso(params.restore_timestamp_in_utc) if params else None, databases=databases)

    def _failed(self, error, resource_group, name, result):
        """The restore failed or timed out: say what state the target reached."""
        target = self.account(resource_group, name)
        state = target.provisioning_state if target is not None else "absent"
        details = dict(error.details, source=result.get("source"), restore_timestamp=result.get("restore_timestamp"),
                       target_state=state)
        return RollbackError("%s Target account '%s' is now %s." % (error.message, name, state), **details)

    # ---- restore a deleted database or container into the same account -----------------
    def restore_in_account(self, resource_group, account_name, database, container, timestamp, wait_timeout=1800):
        timestamp = parse_timestamp(timestamp)
        check_not_future(timestamp)
        live = self.account(resource_group, account_name)
        if live is None:
            raise RollbackError("Cosmos DB account '%s' not found in resource group '%s'. To restore a deleted account, "
                                "give target_account_name." % (account_name, resource_group))
        kind = "container" if container else "database"
        name = container or database
        current = self._current_databases(resource_group, account_name)
        db_now = next((d for d in current if d.lower() == database.lower()), None)
        if container and db_now is None:
            raise RollbackError("Database '%s' does not exist in account '%s' now; restore the database (it brings "
                                "back its containers) before a container." % (database, account_name))
        exists = db_now is not None if not container else \
            any(c.lower() == container.lower() for c in current[db_now])
        target = RestoreTarget(kind, name, resource_group, database=database if container else None, exists=exists)
        source = next((r for r in self.restorable_accounts() if r.instance_id.lower() ==
                       (live.instance_id or "").lower()), None)
        if source is None:
            policy = getattr(getattr(live, "backup_policy", None), "type", None)
            raise RollbackError("Account '%s' has %s backup; restoring a database or container needs continuous "
                                "backup." % (account_name, getattr(policy, "value", policy)))
        result = dict(source=source.to_dict(), restore_timestamp=iso(timestamp), progress=[])
        if exists:
            # The desired state (it exists again) holds; a second restore would be refused by the service.
            result.update(before=target.to_dict(), after=target.to_dict(), target=target.to_dict())
            return False, result
        check_in_range(timestamp, source)
        held = self.existed_at(source, timestamp)
        db_then = next((d for d in held if d.lower() == database.lower()), None)
        if db_then is None:
            raise RollbackError("Database '%s' did not exist in account '%s' at %s; databases then: %s."
                                % (database, account_name, iso(timestamp), ", ".join(sorted(held)) or "none"))
        if container and not any(c.lower() == container.lower() for c in held[db_then]):
            raise RollbackError("Container '%s' did not exist in database '%s' at %s; containers then: %s."
                                % (container, db_then, iso(timestamp), ", ".join(held[db_then]) or "none"))
        after = RestoreTarget(kind, name, resource_group, database=target.database, exists=True,
                              restored_from=source.id, restore_timestamp=iso(timestamp))
        result.update(before=target.to_dict(), target=after.to_dict())
        if self.check_mode:
            result["after"] = after.to_dict()
            return True, self._with_diff(result)

        restore = cosmos_models.ResourceRestoreParameters(restore_source=source.id, restore_timestamp_in_utc=timestamp)
        what = "Restoring %s %s of account %s to %s" % (kind, name, account_name, iso(timestamp))
        try:
            poller = self._begin_in_account(resource_group, account_name, db_now, database, container, restore, what)
            with arm_call(what):
                result["progress"] = wait_for_operation(poller, wait_timeout, what)
                restored = poller.result()
        except RollbackError as error:
            # Say what the failed (or unfinished) restore left behind, so nobody has to look it up.
            now = self._current_databases(resource_group, account_name)
            there = any(d.lower() == database.lower() and (not container or any(
                c.lower() == container.lower() for c in cs)) for d, cs in now.items())
            raise RollbackError("%s %s %s %s now." % (error.message, kind.capitalize(), name,
                                                      "exists" if there else "does not exist"),
                                **dict(error.details, target_exists=there, source=result["source"],
                                       restore_timestamp=result["restore_timestamp"])) from None
        after.id = restored.id
        if not container:
            after.databases = {database: sorted(self._current_databases(resource_group, account_name).get(database, []))}
        result["after"] = result["target"] = after.to_dict()
        return True, self._with_diff(result)

    def _begin_in_account(self, resource_group, account_name, db_now, database, container, restore, what):
        with arm_call(what):
            if container:
                return self.client.sql_resources.begin_create_update_sql_container(
                    resource_group, account_name, db_now, container,
                    cosmos_models.SqlContainerCreateUpdateParameters(
                        properties=cosmos_models.SqlContainerCreateUpdateProperties(
                            resource=cosmos_models.SqlContainerResource(
                                id=container, create_mode="Restore", restore_parameters=restore),
                            options={})),
                    polling_interval=POLLING_INTERVAL_S)
            return self.client.sql_resources.begin_create_update_sql_database(
                resource_group, account_name, database,
                cosmos_models.SqlDatabaseCreateUpdateParameters(
                    properties=cosmos_models.SqlDatabaseCreateUpdateProperties(
                        resource=cosmos_models.SqlDatabaseResource(
                            id=database, create_mode="Restore", restore_parameters=restore),
                        options={})),
                polling_interval=POLLING_INTERVAL_S)

    def _current_databases(self, resource_group, account_name):
        with arm_call("Listing the databases of %s" % account_name):
            return {db.name: [c.name for c in self.client.sql_resources.list_sql_containers(
                resource_group, account_name, db.name)]
                for db in self.client.sql_resources.list_sql_databases(resource_group, account_name)}

    def _with_diff(self, result):
        if self.diff_mode:
            result["diff"] = dict(before=result.get("before"), after=result.get("after"))
        return result
