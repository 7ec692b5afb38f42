"""Azure Database for PostgreSQL flexible servers (Microsoft.DBforPostgreSQL/flexibleServers).

ARM (routes.py): list, get, create (`Default` or `PointInTimeRestore`) and
delete servers, with the resource provider's long-running operations
(Azure-AsyncOperation + Location). Data plane: every server is one REAL
PostgreSQL cluster of the same name, run by the `postgres` stand-in behind the
`postgres_clusters` hook; a point-in-time restore is a real recovery of the
source cluster's base backup and WAL up to the restore point, into a new cluster.

The name clients see (`<name>.postgres.database.azure.com`) does not resolve
here, so each server's real address is given by the admin API and, for the
seeded servers, by the environment:

  GET /_sandbox/postgresflex
      {data_plane, settings, servers: [{id, resource_group, name, state, fqdn, host, port,
       admin_user, admin_password, database, create_mode, source_server_id, point_in_time,
       earliest_restore_time, operation_id}], operations: [...]}
  GET/PUT /_sandbox/postgresflex/settings
      {"create_extra_s": 0}: seconds a create stays InProgress after its cluster is ready
      (to make a wait time out); PUT merges.

  SRE_SANDBOX_PGFLEX_<NAME>_URL = postgresql://<admin>:<password>@127.0.0.1:<port>/postgres
      (<NAME> upper-cased, '-' -> '_'), for every seeded server with a cluster.

`backup.earliestRestoreDate` is the end of the cluster's first base backup
(asked of the hook outside the sandbox lock, since the postgres stand-in takes
that backup in the background); until it is known, the server's creation time.

Faults: an `lro_fail` fault on the PUT (`{"kind": "lro_fail", "method": "PUT",
"path": "flexibleServers/<name>"}`) lets the restore run, then ends the
operation Failed (code `RestoreFailed` unless the fault sets `code`); the new
server is removed and its cluster dropped, or, with `"leave_server": true` in
the fault, stays in state `Disabled`.
"""

import time

from ..core import iso
from ..settings import AdminSettings
from ..web import Response
from . import model
from .routes import FlexRoutes, server_id


DEFAULT_SETTINGS = {"create_extra_s": 0.0}


class PostgresFlexProvider:
    name = "postgresflex"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.operations = operations
        self.faults = faults
        self.settings = AdminSettings(sandbox, "postgresflex", DEFAULT_SETTINGS)
        self._seeded_clusters_ensured = False
        self.state = model.FlexState(sandbox.seed_section(self.name))
        self.restorer = model.Restorer(sandbox, lambda: self.state)
        self._ensure_seeded_clusters()
        FlexRoutes(self).register()
        sandbox.admin.add("GET", r"/_sandbox/postgresflex", self._get_state)
        sandbox.on_reset(self._reset)

    # -- the data plane, through the postgres stand-in's hook ---------------------------
    @property
    def clusters(self):
        clusters = self.sandbox.hooks.get(model.CLUSTERS_HOOK)
        if clusters is not None and not self._seeded_clusters_ensured:
            # The postgres provider may have started after this one: back the seeded servers now.
            self._ensure_seeded_clusters(clusters)
        return clusters

    def _ensure_seeded_clusters(self, clusters=None):
        clusters = clusters or self.sandbox.hooks.get(model.CLUSTERS_HOOK)
        if clusters is None:
            return
        for server in self.state.servers.values():
            clusters.create(server.name)
        self._seeded_clusters_ensured = True
        self.restorer.refresh_in_background(list(self.state.servers.values()))

    def cluster_info(self, name):
        clusters = self.clusters
        return clusters.get(name) if clusters is not None else None

    @staticmethod
    def earliest_restore_time(server):
        """From the cluster's base backup once known; the server's creation time until then."""
        return server.earliest_restore or server.created_at

    def create_cluster(self, name):
        clusters = self.clusters
        if clusters is not None:
            clusters.create(name)
        self._extra_wait()

    def restore_cluster(self, source_name, target_name, point):
        clusters = self.clusters
        if clusters is not None:
            clusters.restore(source_name, target_name, point)
        self._extra_wait()

    def drop_cluster(self, name):
        clusters = self.clusters
        if clusters is not None:
            clusters.drop(name)

    def _extra_wait(self):
        extra = float(self.settings.get("create_extra_s") or 0)
        if extra > 0:
            time.sleep(extra)

    # -- reset -------------------------------------------------------------------------
    def _reset(self):
        seeded = {model.FlexState.key(s["resource_group"], s["name"])
                  for s in self.sandbox.seed_section(self.name).get("servers", [])}
        created = [s.name for key, s in self.state.servers.items() if key not in seeded]
        generation = self.state.generation + 1
        previous = self.state
        self.state = model.FlexState(self.sandbox.seed_section(self.name))
        self.state.generation = generation
        for key, server in self.state.servers.items():
            # The seeded clusters outlive a reset: keep what is known of their backups until
            # the refresh below has asked again.
            if key in previous.servers:
                server.earliest_restore = previous.servers[key].earliest_restore
        self.settings.reset()
        # Servers made since the start (restores) go, with their clusters; the seeded ones stay.
        for name in created:
            try:
                self.drop_cluster(name)
            except Exception:  # pylint: disable=broad-except
                pass
        self._ensure_seeded_clusters()

    # -- admin -------------------------------------------------------------------------
    def _get_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        servers = []
        for server in self.state.servers.values():
            info = self.cluster_info(server.name) if server.state != model.PROVISIONING else None
            servers.append({
                "id": server_id(self.sandbox.subscription_id, server),
                "resource_group": server.resource_group,
                "name": server.name,
                "location": server.location,
                "state": server.state,
                "fqdn": server.fqdn,
                "host": info["host"] if info else None,
                "port": info["port"] if info else None,
                "admin_user": info["admin_user"] if info else None,
                "admin_password": info["admin_password"] if info else None,
                "database": "postgres",
                "create_mode": server.create_mode,
                "source_server_id": server.source_server_id,
                "point_in_time": iso(server.point_in_time),
                "earliest_restore_time": iso(self.earliest_restore_time(server)),
                "operation_id": server.operation_id,
                "tags": dict(server.tags),
            })
        return {
            "data_plane": self.clusters is not None,
            "settings": dict(self.settings),
            "servers": servers,
            "operations": [dict(op.describe(), server=list(op.server_key)) for op in self.state.operations.values()],
        }

    def env(self):
        env = {}
        for server in self.state.servers.values():
            info = self.cluster_info(server.name)
            if info:
                key = "SRE_SANDBOX_PGFLEX_%s_URL" % server.name.upper().replace("-", "_")
                env[key] = (f"postgresql://{info['admin_user']}:{info['admin_password']}"
                            f"@{info['host']}:{info['port']}/postgres")
        return env

    def stop(self):
        self.restorer.wait_idle(timeout=10)
