"""State of the Azure Database for PostgreSQL flexible servers the sandbox stands in for.

Every server is backed by one real PostgreSQL cluster of the same name, run by
the `postgres` stand-in and reached through the `postgres_clusters` hook
(create / get / earliest_restore_time / restore / drop). The ARM side keeps
what the data plane does not know: resource group, location, SKU, storage,
tags, state, and where a restored server came from.

A create is a long-running operation: the server exists at once in state
`Provisioning`, the cluster work (an empty cluster for `Default`, a real
point-in-time recovery for `PointInTimeRestore`) runs on a background thread,
and the operation ends `Succeeded` (server `Ready`) or `Failed`.
"""

import datetime
import sys
import threading
import uuid

from ..core import iso, utcnow

RESOURCE_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
FQDN_SUFFIX = "postgres.database.azure.com"
CLUSTERS_HOOK = "postgres_clusters"

# Server states (ServerState in azure-mgmt-postgresqlflexibleservers).
READY = "Ready"
PROVISIONING = "Provisioning"
DISABLED = "Disabled"


def parse_time(text):
    """An ISO 8601 timestamp from a request body as an aware UTC datetime; ValueError if it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a timestamp")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        # ARM reads a timestamp without an offset as UTC.
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


class FlexServer:
    def __init__(self, resource_group, name, location, version="15", sku=None, storage_gb=32,
                 backup_retention_days=7, administrator_login="sandboxadmin", tags=None,
                 availability_zone="1"):
        self.resource_group = resource_group
        self.name = name
        self.location = location
        self.version = str(version)
        self.sku = dict(sku or {"name": "Standard_B1ms", "tier": "Burstable"})
        self.storage_gb = int(storage_gb)
        self.backup_retention_days = int(backup_retention_days)
        self.administrator_login = administrator_login
        self.tags = dict(tags or {})
        self.availability_zone = availability_zone
        self.state = READY
        self.created_at = utcnow()
        self.create_mode = "Default"
        self.source_server_id = None  # set for a point-in-time restore
        self.point_in_time = None     # the restore point, kept for the admin API only (ARM does not report it)
        self.operation_id = None      # the create operation, while and after it runs
        # The end of the cluster's first base backup, once known (the postgres stand-in takes it
        # in the background); until then the creation time stands in, which only narrows the window.
        self.earliest_restore = None

    @property
    def fqdn(self):
        return f"{self.name}.{FQDN_SUFFIX}"

    def inherit_from(self, source):
        """A restored server has the source's compute, storage, version and admin login."""
        self.version = source.version
        self.sku = dict(source.sku)
        self.storage_gb = source.storage_gb
        self.backup_retention_days = source.backup_retention_days
        self.administrator_login = source.administrator_login
        self.availability_zone = source.availability_zone


class Operation:
    """An Azure-AsyncOperation of the PostgreSQL resource provider."""

    def __init__(self, location, server_key):
        self.id = str(uuid.uuid4())
        self.location = location
        self.server_key = server_key
        self.status = "InProgress"
        self.started = utcnow()
        self.ended = None
        self.error = None  # (http status, code, message) once Failed

    def finish(self, error=None):
        self.ended = utcnow()
        self.status = "Failed" if error else "Succeeded"
        self.error = error

    def describe(self):
        body = {"name": self.id, "status": self.status, "startTime": iso(self.started)}
        if self.ended:
            body["endTime"] = iso(self.ended)
        if self.error:
            body["error"] = {"code": self.error[1], "message": self.error[2]}
        return body


class FlexState:
    """Servers by (resource group, name), lower-cased; operations by id."""

    def __init__(self, seed):
        self.servers = {}
        self.operations = {}
        # Names used by servers outside this sandbox (other subscriptions): server names are
        # global because they are DNS names under postgres.database.azure.com.
        self.taken_names = {n.lower() for n in seed.get("taken_names", [])}
        for entry in seed.get("servers", []):
            server = FlexServer(
                entry["resource_group"], entry["name"], entry.get("location", "westeurope"),
                version=entry.get("version", "15"), sku=entry.get("sku"), storage_gb=entry.get("storage_gb", 32),
                backup_retention_days=entry.get("backup_retention_days", 7),
                administrator_login=entry.get("administrator_login", "sandboxadmin"), tags=entry.get("tags"),
                availability_zone=entry.get("availability_zone", "1"),
            )
            self.add(server)
        self.generation = 0  # bumped on reset, so a restore thread of before the reset changes nothing

    @staticmethod
    def key(resource_group, name):
        return (resource_group.lower(), name.lower())

    def add(self, server):
        self.servers[self.key(server.resource_group, server.name)] = server

    def get(self, resource_group, name):
        return self.servers.get(self.key(resource_group, name))

    def remove(self, server):
        self.servers.pop(self.key(server.resource_group, server.name), None)

    def in_group(self, resource_group):
        return [s for s in self.servers.values() if s.resource_group.lower() == resource_group.lower()]

    def name_in_use(self, name):
        """Is the DNS name taken, by a server of any resource group here or by one outside the sandbox?"""
        lowered = name.lower()
        return lowered in self.taken_names or any(s.name.lower() == lowered for s in self.servers.values())


class Restorer:
    """Runs the cluster work of a create on a background thread and ends its operation."""

    def __init__(self, sandbox, state_ref):
        self.sandbox = sandbox
        self.state_ref = state_ref  # callable: the current FlexState (replaced on reset)
        self.threads = []

    def start(self, work, operation, server, fail_after=None):
        """Run ``work()`` (returns nothing, raises ValueError on refusal) for ``server``.

        ``fail_after``: an injected failure ``(status, code, message, leave_server)``: the work
        still runs (the restore gets that far), then the operation ends Failed.
        """
        generation = self.state_ref().generation

        def run():
            error = None
            try:
                work()
                if fail_after is None:
                    self.refresh_earliest(server)
            except (ValueError, RuntimeError) as err:
                # ValueError: the clusters refused (a race the ARM checks did not see);
                # RuntimeError (ClusterError): PostgreSQL did not recover.
                error = (400, "RestoreFailed", f"The restore of server '{server.name}' failed: {err}")
            except Exception as err:  # a sandbox or cluster bug must end the operation, not hang it
                error = (500, "InternalServerError", f"sandbox: {err!r}")
            if error is None and fail_after is not None:
                error = fail_after[:3]
            with self.sandbox.lock:
                state = self.state_ref()
                stale = state.generation != generation
            if stale:
                # A reset happened meanwhile: the server is gone from ARM, so its cluster goes too.
                self._drop_cluster(server.name)
                return
            with self.sandbox.lock:
                if error is None:
                    server.state = READY
                    operation.finish()
                    return
                operation.finish(error)
                leave = fail_after is not None and fail_after[3]
                if leave:
                    server.state = DISABLED
                else:
                    state.remove(server)
            if not leave:
                self._drop_cluster(server.name)

        thread = threading.Thread(target=run, name=f"postgresflex-create-{server.name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def refresh_earliest(self, server):
        """Ask the cluster for its earliest restore point (blocks until its base backup is done).

        Runs outside the sandbox lock: a base backup takes seconds, and ARM reads must not wait.
        """
        clusters = self.sandbox.hooks.get(CLUSTERS_HOOK)
        if clusters is None:
            return
        try:
            earliest = clusters.earliest_restore_time(server.name)
        except (ValueError, RuntimeError) as err:
            print(f"postgresflex: no earliest restore point for {server.name}: {err}", file=sys.stderr, flush=True)
            return
        with self.sandbox.lock:
            server.earliest_restore = earliest

    def refresh_in_background(self, servers):
        thread = threading.Thread(target=lambda: [self.refresh_earliest(s) for s in servers],
                                  name="postgresflex-earliest", daemon=True)
        thread.start()

    def _drop_cluster(self, name):
        clusters = self.sandbox.hooks.get(CLUSTERS_HOOK)
        if clusters is None:
            return
        try:
            clusters.drop(name)
        except Exception:  # pylint: disable=broad-except
            pass  # dropping what a failed restore left is best effort, as in the real service

    def wait_idle(self, timeout=30):
        for thread in list(self.threads):
            thread.join(timeout)
        self.threads = [t for t in self.threads if t.is_alive()]
