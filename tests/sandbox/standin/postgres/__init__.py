"""PostgreSQL provider of the sandbox: real PostgreSQL servers on loopback.

Not a stand-in but the real thing: PostgreSQL (15, from /usr/lib/postgresql)
clusters on 127.0.0.1, each on a free port, with password (SCRAM) login, WAL
archiving and a base backup taken right after creation, so point-in-time
recovery is PostgreSQL's own (see clusters.py for the directory layout).

At start the provider creates the seeded cluster (`fundrbolt-sandbox-db`) with
an application database and login, and exports it:

  SRE_SANDBOX_PG_HOST, SRE_SANDBOX_PG_PORT          127.0.0.1 and the cluster's port
  SRE_SANDBOX_PG_USER, SRE_SANDBOX_PG_PASSWORD      the application login (owner of the database)
  SRE_SANDBOX_PG_DATABASE                           the application database
  SRE_SANDBOX_PG_URL                                postgresql+psycopg://user:password@host:port/database (SQLAlchemy)
  SRE_SANDBOX_PG_BIN                                the PostgreSQL bin directory (pg_dump, psql)

Other stand-ins use the clusters through

  sandbox.hooks["postgres_clusters"]   (a PostgresClusters; look it up with .get())
      create(name) -> info
          Start a new empty cluster; idempotent by name (returns the existing
          one). name: 2-63 of [a-z0-9-] (ValueError otherwise).
          info = {"name", "host": "127.0.0.1", "port": int, "admin_user",
                  "admin_password", "created_at": aware UTC datetime}
      get(name) -> info or None
      earliest_restore_time(name) -> aware UTC datetime
          The end of the base backup taken right after the cluster came up.
          ValueError for an unknown name.
      restore(source_name, target_name, restore_time) -> info      (optional timeout=120 seconds)
          Real point-in-time recovery into a new cluster: the source's base
          backup, restore_command from its WAL archive, recovery_target_time =
          restore_time, recovery_target_action = promote; returns once the new
          cluster accepts connections and is promoted (it gets its own archive
          and base backup, so it can be restored in turn). The new cluster has
          the source's logins and passwords, as an Azure restore does.
          ValueError: unknown source, target name taken, restore_time naive,
          before earliest_restore_time(source) or in the future.
          ClusterError (a RuntimeError) if PostgreSQL fails to recover.
          The source is untouched apart from one row in its internal
          `sandbox_heartbeat` database and a WAL switch (so that the archive
          holds a commit after restore_time, which PostgreSQL 15 needs to
          finish a recovery to that time).
      drop(name) -> bool
          Stop the cluster and delete its files (False if there was none).
      stop_all()
          Stop every cluster (the provider's stop()).

Admin:

  GET /_sandbox/postgres   {"bin_dir", "version", "root", "clusters": [{name, host, port, created_at,
                            earliest_restore_time, restored_from, pid, data_directory}]}  (no passwords)

Files: <state dir>/postgres (template-<version>/ reused across starts, clusters/ wiped at start);
when the sandbox runs as root in a directory `nobody` cannot enter (pytest's tmp dirs), under
/tmp/sre-sandbox-postgres/ instead, deleted at stop (see clusters.pick_root). The base backup
runs in the background after a cluster comes up; earliest_restore_time() and restore() wait for it.

`/_sandbox/reset` drops every cluster created after start (restores too),
recreates the seeded clusters if they were dropped, and recreates their
application database empty (and resets the application login's password).
"""

import datetime
import os
import sys
import urllib.parse

import psycopg
from psycopg import sql

from ..core import iso
from ..web import Response
from .clusters import ClusterError, PostgresClusters, find_bin_dir, pick_root  # noqa: F401 - re-exported

HOOK = "postgres_clusters"


class PostgresDataPlane:
    """The ports of the running clusters, for runtime.json (sandboxctl stop waits for them)."""

    def __init__(self, clusters):
        self.clusters = clusters

    def ports(self):
        return self.clusters.ports()


class PostgresProvider:
    name = "postgres"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.seed = sandbox.seed_section(self.name)
        state_dir = getattr(sandbox, "state_dir", None) or os.path.dirname(sandbox.ca_path)
        root, template_root, remove_on_stop = pick_root(state_dir)
        self.clusters = PostgresClusters(root, bin_dir=find_bin_dir(),
                                         admin_user=self.seed.get("admin_user", "sandboxadmin"),
                                         log=lambda message: print(message, file=sys.stderr, flush=True),
                                         template_root=template_root, remove_on_stop=remove_on_stop)
        self.dataplane = PostgresDataPlane(self.clusters)
        try:
            self._create_seeded()
        except BaseException:
            self.clusters.stop_all()
            raise
        sandbox.hooks[HOOK] = self.clusters
        sandbox.admin.add("GET", r"/_sandbox/postgres", self._get_state)
        sandbox.on_reset(self._reset)

    # -- seed ----------------------------------------------------------------------------
    def _seeded(self):
        return self.seed.get("clusters", [])

    def _create_seeded(self):
        for spec in self._seeded():
            self.clusters.create(spec["name"])
            self._recreate_app_database(spec)

    def _recreate_app_database(self, spec):
        """The application's login and an empty database it owns."""
        info = self.clusters.get(spec["name"])
        user, database = sql.Identifier(spec["app_user"]), sql.Identifier(spec["database"])
        with self._admin_connection(info) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec["app_user"],)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(user, sql.Literal(spec["app_password"])))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, user))

    @staticmethod
    def _admin_connection(info):
        return psycopg.connect(host=info["host"], port=info["port"], user=info["admin_user"],
                               password=info["admin_password"], dbname="postgres", autocommit=True,
                               connect_timeout=5)

    def _reset(self):
        seeded = {spec["name"] for spec in self._seeded()}
        for name in self.clusters.names():
            if name not in seeded:
                self.clusters.drop(name)
        self._create_seeded()
        # Back to seed state includes a restore window that does not reach over every reset before.
        for name in seeded:
            self.clusters.rebase(name)

    # -- admin ---------------------------------------------------------------------------
    def _get_state(self, request):
        return Response.json(self.snapshot())

    # -- provider interface --------------------------------------------------------------
    def snapshot(self):
        clusters = []
        for entry in self.clusters.describe():
            clusters.append({k: iso(v) if isinstance(v, datetime.datetime) else v for k, v in entry.items()})
        return {"bin_dir": self.clusters.bin_dir, "version": self.clusters.version, "root": self.clusters.root,
                "clusters": clusters}

    def env(self):
        exported = [spec for spec in self._seeded() if spec.get("export")] or self._seeded()[:1]
        if not exported:
            return {"SRE_SANDBOX_PG_BIN": self.clusters.bin_dir}
        spec = exported[0]
        info = self.clusters.get(spec["name"])
        url = "postgresql+psycopg://%s:%s@%s:%d/%s" % (
            urllib.parse.quote(spec["app_user"], safe=""), urllib.parse.quote(spec["app_password"], safe=""),
            info["host"], info["port"], urllib.parse.quote(spec["database"], safe=""))
        return {
            "SRE_SANDBOX_PG_HOST": info["host"],
            "SRE_SANDBOX_PG_PORT": str(info["port"]),
            "SRE_SANDBOX_PG_USER": spec["app_user"],
            "SRE_SANDBOX_PG_PASSWORD": spec["app_password"],
            "SRE_SANDBOX_PG_DATABASE": spec["database"],
            "SRE_SANDBOX_PG_URL": url,
            "SRE_SANDBOX_PG_BIN": self.clusters.bin_dir,
        }

    def stop(self):
        self.clusters.stop_all()
