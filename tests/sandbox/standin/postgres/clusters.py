"""Real PostgreSQL clusters on loopback, with WAL archiving and point-in-time recovery.

Every cluster is a real `postgres` server process on 127.0.0.1 and a free port:

  <root>/template-<key>/        initdb output, made once and reused (keyed by the server version)
  <root>/clusters/<name>/data   the data directory (a copy of the template)
  <root>/clusters/<name>/archive  WAL archive (archive_command copies every finished segment here)
  <root>/clusters/<name>/base   a base backup (pg_basebackup) taken right after the cluster came up
  <root>/clusters/<name>/postgres.log

A restore is PostgreSQL's own point-in-time recovery: the source's base backup,
`restore_command` reading the source's archive, `recovery_target_time`, promotion.

When the sandbox runs as root the server runs as `nobody` (PostgreSQL refuses
root); every directory it writes is owned by `nobody`. The template is made with
1 MB WAL segments so that archiving a switched segment and replaying it are cheap.
"""

import datetime
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import psycopg
from psycopg import sql

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# A schema of the `postgres` database the sandbox writes to before a restore (see _heartbeat).
HEARTBEAT_TABLE = "sandbox_internal.heartbeat"
TEMPLATE_PASSWORD = "template-only"
# Bump when the initdb options or the template's contents change, so a cached template is rebuilt.
TEMPLATE_FORMAT = 2
DEFAULT_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def find_bin_dir():
    """The PostgreSQL bin dir: $SRE_SANDBOX_PG_BIN_DIR, else PostgreSQL 15, else the newest installed."""
    override = os.environ.get("SRE_SANDBOX_PG_BIN_DIR")
    candidates = [override] if override else list(DEFAULT_BIN_CANDIDATES)
    if not override and os.path.isdir("/usr/lib/postgresql"):
        versions = sorted((v for v in os.listdir("/usr/lib/postgresql") if v.isdigit()), key=int, reverse=True)
        candidates += [f"/usr/lib/postgresql/{v}/bin" for v in versions]
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "postgres")):
            return candidate
    raise RuntimeError(f"no PostgreSQL server binaries found in {', '.join(c for c in candidates if c)}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable_by_others(path):
    """True if every ancestor of path can be traversed by an unprivileged user (o+x)."""
    path = os.path.abspath(path)
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return True
        if os.path.exists(path) and not os.stat(path).st_mode & 0o001:
            return False
        path = parent


def pick_root(state_dir):
    """Where clusters live: <state_dir>/postgres, unless the server user could not reach it.

    As root the server runs as `nobody`, which cannot enter a 0700 directory such
    as pytest's /tmp/pytest-of-root; then /tmp/sre-sandbox-postgres/<hash of the
    state dir> is used instead (same layout, reported by the admin route; its
    template is shared in /tmp/sre-sandbox-postgres and its clusters are deleted
    on stop, as nothing else would clean them up).
    Returns (root, template_root, remove_on_stop).
    """
    preferred = os.path.join(os.path.abspath(state_dir), "postgres")
    if os.geteuid() != 0 or _reachable_by_others(os.path.dirname(preferred)):
        return preferred, preferred, False
    digest = hashlib.sha1(os.path.abspath(state_dir).encode()).hexdigest()[:12]
    shared = os.path.join(tempfile.gettempdir(), "sre-sandbox-postgres")
    return os.path.join(shared, digest), shared, True


class ClusterError(RuntimeError):
    """A cluster did not come up or a PostgreSQL tool failed (with the log tail)."""


class Cluster:
    def __init__(self, name, directory, port, admin_user, admin_password, created_at, restored_from=None):
        self.name = name
        self.directory = directory
        self.port = port
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.created_at = created_at
        self.restored_from = restored_from
        self.earliest_restore_time = None
        self.process = None
        self.stopping = False
        # The base backup runs in the background (start-up stays fast); restores wait for it.
        self.backup_done = threading.Event()
        self.backup_error = None
        self.backup_thread = None
        # Each new base backup goes into its own directory (pg_basebackup wants an empty one).
        self.base_generation = 0
        self.backup_lsn = None

    data = property(lambda self: os.path.join(self.directory, "data"))
    archive = property(lambda self: os.path.join(self.directory, "archive"))
    base = property(lambda self: os.path.join(self.directory, "base" if not self.base_generation
                                              else "base-%d" % self.base_generation))
    log_path = property(lambda self: os.path.join(self.directory, "postgres.log"))

    def info(self):
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "admin_user": self.admin_user,
                "admin_password": self.admin_password, "created_at": self.created_at}

    def connect(self, dbname="postgres", timeout=5):
        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.admin_user,
                               password=self.admin_password, dbname=dbname, connect_timeout=timeout,
                               autocommit=True)


class PostgresClusters:
    """Start, restore and drop real PostgreSQL clusters. Thread-safe.

    The interface other stand-ins use (sandbox.hooks["postgres_clusters"]) is
    documented in the package docstring (standin/postgres/__init__.py).
    """

    def __init__(self, root, bin_dir=None, admin_user="sandboxadmin", log=None, template_root=None,
                 remove_on_stop=False):
        self.root = os.path.abspath(root)
        self.template_root = os.path.abspath(template_root or root)
        self.remove_on_stop = remove_on_stop
        self.bin_dir = bin_dir or find_bin_dir()
        self.admin_user = admin_user
        self._log = log or (lambda message: None)
        self._lock = threading.RLock()
        self._clusters = {}
        self._reserved = set()  # names of restores in progress
        self._as_nobody = os.geteuid() == 0
        self.version = self._server_version()
        os.makedirs(self.root, exist_ok=True)
        self._stop_leftovers()
        self._remove_in_background(os.path.join(self.root, "clusters"))
        self._mkdir(os.path.join(self.root, "clusters"))

    # -- public interface ----------------------------------------------------------------
    def create(self, name):
        """Start a new empty cluster; idempotent by name. Returns its info dict."""
        self._check_name(name)
        with self._lock:
            existing = self._clusters.get(name)
            if existing is not None:
                return existing.info()
            if name in self._reserved:
                raise ValueError(f"cluster {name!r} is being restored")
            self._reserved.add(name)
        try:
            template = self._template()
            cluster = Cluster(name, os.path.join(self.root, "clusters", name), free_port(), self.admin_user,
                              TEMPLATE_PASSWORD, None)
            self._prepare_dir(cluster)
            self._run(["cp", "-a", template, cluster.data])
            self._start(cluster)
            # The template's password is shared by every copy; each cluster gets its own.
            password = secrets.token_hex(16)
            with cluster.connect() as conn:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(self.admin_user), sql.Literal(password)))
            cluster.admin_password = password
            cluster.created_at = utcnow()
            self._start_base_backup(cluster)
        except BaseException:
            with self._lock:
                self._reserved.discard(name)
            self._discard(locals().get("cluster"))
            raise
        with self._lock:
            self._reserved.discard(name)
            self._clusters[name] = cluster
        self._log(f"postgres: cluster {name} up on port {cluster.port}")
        return cluster.info()

    def get(self, name):
        with self._lock:
            cluster = self._clusters.get(name)
            return cluster.info() if cluster else None

    def earliest_restore_time(self, name):
        with self._lock:
            cluster = self._clusters.get(name)
            if cluster is None:
                raise ValueError(f"no cluster named {name!r}")
        self._wait_backup(cluster)
        return cluster.earliest_restore_time

    def names(self):
        with self._lock:
            return sorted(self._clusters)

    def describe(self):
        """Every cluster for the admin route (no passwords)."""
        with self._lock:
            return [{"name": c.name, "host": "127.0.0.1", "port": c.port, "created_at": c.created_at,
                     "earliest_restore_time": c.earliest_restore_time, "restored_from": c.restored_from,
                     "pid": c.process.pid if c.process else None, "data_directory": c.data}
                    for c in sorted(self._clusters.values(), key=lambda c: c.created_at)]

    def ports(self):
        with self._lock:
            return {name: c.port for name, c in self._clusters.items()}

    def restore(self, source_name, target_name, restore_time, timeout=120):
        """Point-in-time recovery of source into a new cluster target; returns the target's info."""
        self._check_name(target_name)
        if not isinstance(restore_time, datetime.datetime):
            raise ValueError("restore_time must be a datetime")
        if restore_time.tzinfo is None:
            raise ValueError("restore_time must be timezone-aware (UTC)")
        with self._lock:
            source = self._clusters.get(source_name)
            if source is None:
                raise ValueError(f"no cluster named {source_name!r} to restore from")
            if target_name in self._clusters or target_name in self._reserved:
                raise ValueError(f"a cluster named {target_name!r} already exists")
            self._reserved.add(target_name)
        target = None
        try:
            self._wait_backup(source)
            earliest = source.earliest_restore_time
            now = utcnow()
            if restore_time < earliest:
                raise ValueError(f"restore time {restore_time.isoformat()} is before the earliest restore point "
                                 f"{earliest.isoformat()} of {source_name!r}")
            if restore_time > now:
                raise ValueError(f"restore time {restore_time.isoformat()} is in the future (now {now.isoformat()})")
            self._heartbeat(source)
            target = Cluster(target_name, os.path.join(self.root, "clusters", target_name), free_port(),
                             source.admin_user, source.admin_password, None, restored_from=source_name)
            self._prepare_dir(target)
            self._run(["cp", "-a", source.base, target.data])
            self._as_owner(["touch", os.path.join(target.data, "recovery.signal")])
            self._start(target, recovery={
                "restore_command": f"cp {_q(source.archive)}/%f %p",
                "recovery_target_time": restore_time.astimezone(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S.%f+00"),
                "recovery_target_action": "promote",
                "recovery_target_timeline": "latest",
            }, timeout=timeout)
            self._wait_promoted(target, timeout)
            target.created_at = utcnow()
            self._start_base_backup(target)
        except BaseException:
            with self._lock:
                self._reserved.discard(target_name)
            self._discard(target)
            raise
        with self._lock:
            self._reserved.discard(target_name)
            self._clusters[target_name] = target
        self._log(f"postgres: restored {source_name} to {restore_time.isoformat()} as {target_name} "
                  f"on port {target.port}")
        return target.info()

    def drop(self, name):
        """Stop a cluster and delete its files. False if there was none."""
        with self._lock:
            cluster = self._clusters.pop(name, None)
        if cluster is None:
            return False
        self._discard(cluster)
        return True

    def stop_all(self):
        with self._lock:
            clusters = list(self._clusters.values())
            self._clusters.clear()
        for cluster in clusters:
            self._stop(cluster)
        if self.remove_on_stop:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- template ------------------------------------------------------------------------
    def _template(self):
        key = f"pg{self.version}-{self.admin_user}-f{TEMPLATE_FORMAT}"
        path = os.path.join(self.template_root, f"template-{key}")
        with self._lock:
            if os.path.isfile(os.path.join(path, "PG_VERSION")):
                return path
            os.makedirs(self.template_root, exist_ok=True)
            building = os.path.join(self.template_root, f".building-{key}-{os.getpid()}")
            shutil.rmtree(building, ignore_errors=True)
            self._mkdir(building)
            pwfile = os.path.join(building, "pwfile")
            with open(pwfile, "w", encoding="ascii") as fh:
                fh.write(TEMPLATE_PASSWORD + "\n")
            self._chown(pwfile)
            data = os.path.join(building, "data")
            self._run(self._cmd("initdb", "-D", data, "-U", self.admin_user, f"--pwfile={pwfile}",
                                "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                                "--wal-segsize=1", "--no-instructions"))
            # The heartbeat table lives in the template so every cluster has it.
            builder = Cluster("template", building, free_port(), self.admin_user, TEMPLATE_PASSWORD, utcnow())
            # Few, non-recycled WAL segments keep the template (copied for every cluster) small.
            self._start(builder, data_dir=data, extra={"min_wal_size": "2MB", "wal_recycle": "off"})
            try:
                with builder.connect() as conn:
                    conn.execute("CREATE SCHEMA sandbox_internal")
                    conn.execute(f"CREATE TABLE {HEARTBEAT_TABLE} (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
            finally:
                self._stop(builder)
            try:
                os.rename(data, path)
            except OSError:
                if not os.path.isfile(os.path.join(path, "PG_VERSION")):
                    raise
                # Another sandbox built the same template meanwhile: use theirs.
            shutil.rmtree(building, ignore_errors=True)
            self._log(f"postgres: template {path} built")
            return path

    # -- processes -----------------------------------------------------------------------
    def _settings(self, cluster):
        archive = _q(cluster.archive)
        return {
            "port": str(cluster.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "wal_level": "replica",
            "archive_mode": "on",
            # Copy then rename, so a restore never reads a half-written segment.
            "archive_command": f"test -f {archive}/%f || (cp %p {archive}/%f.part && mv {archive}/%f.part {archive}/%f)",
            "max_connections": "40",
            "shared_buffers": "16MB",
            # A sandbox: durability against power loss buys nothing and costs seconds.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "on",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] ",
        }

    def _start(self, cluster, recovery=None, timeout=30, data_dir=None, extra=None):
        settings = self._settings(cluster)
        settings.update(recovery or {})
        settings.update(extra or {})
        args = ["-D", data_dir or cluster.data]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(cluster.log_path, "ab")  # pylint: disable=consider-using-with
        try:
            cluster.process = subprocess.Popen(self._cmd("postgres", *args), stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        finally:
            log.close()
        self._wait_accepting(cluster, timeout)

    def _wait_accepting(self, cluster, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if cluster.process.poll() is not None:
                raise ClusterError(f"PostgreSQL for {cluster.name!r} exited with {cluster.process.returncode}:\n"
                                   f"{self._tail(cluster)}")
            try:
                with cluster.connect(timeout=2):
                    return
            except psycopg.OperationalError as err:
                if "authentication failed" in str(err):
                    raise ClusterError(f"PostgreSQL for {cluster.name!r} refused the admin login: {err}") from err
                last = err
                time.sleep(0.03)
        raise ClusterError(f"PostgreSQL for {cluster.name!r} did not accept connections within {timeout}s "
                           f"({last}):\n{self._tail(cluster)}")

    def _wait_promoted(self, cluster, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cluster.process.poll() is not None:
                raise ClusterError(f"recovery of {cluster.name!r} failed:\n{self._tail(cluster)}")
            try:
                with cluster.connect(timeout=2) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.05)
        raise ClusterError(f"{cluster.name!r} was not promoted within {timeout}s:\n{self._tail(cluster)}")

    def _heartbeat(self, source, timeout=30):
        """Make sure the archive holds a commit later than now, so recovery to any past time ends."""
        with source.connect() as conn:
            conn.execute(f"INSERT INTO {HEARTBEAT_TABLE} (at) VALUES (clock_timestamp())")
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        path = os.path.join(source.archive, segment)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise ClusterError(f"WAL segment {segment} of {source.name!r} was not archived within {timeout}s")
            time.sleep(0.02)

    def rebase(self, name, min_wal_bytes=32 * 1024 * 1024):
        """Take a new base backup when more than min_wal_bytes of WAL were written since the last.

        A recovery replays every WAL record since its base backup; a sandbox
        reset hundreds of times (each recreating the app database) would make a
        restore replay all of them. A fresh base backup bounds that, and moves
        the earliest restore point, as Azure's own backups do. Returns whether
        a backup was started.
        """
        with self._lock:
            cluster = self._clusters.get(name)
        if cluster is None or not cluster.backup_done.is_set() or cluster.backup_error is not None:
            return False
        with cluster.connect() as conn:
            written = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (cluster.backup_lsn,)).fetchone()[0]
        if written < min_wal_bytes:
            return False
        old_base = cluster.base
        cluster.base_generation += 1
        cluster.backup_done.clear()
        self._base_backup(cluster, discard=old_base)
        return True

    def _start_base_backup(self, cluster, discard=None):
        cluster.backup_thread = threading.Thread(target=self._base_backup, args=(cluster, discard),
                                                 name=f"pg-basebackup-{cluster.name}", daemon=True)
        cluster.backup_thread.start()

    def _base_backup(self, cluster, discard=None):
        try:
            self._run(self._cmd("pg_basebackup", "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                                cluster.admin_user, "-D", cluster.base, "-Fp", "-X", "fetch", "-c", "fast",
                                "--no-sync", "-w"),
                      env={"PGPASSWORD": cluster.admin_password})
            cluster.earliest_restore_time = utcnow()
            with cluster.connect() as conn:
                cluster.backup_lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
            if discard:
                self._remove_in_background(discard)
        # Any failure is kept and raised by _wait_backup, in the thread that needs the backup.
        except Exception as err:  # pylint: disable=broad-except
            cluster.backup_error = err
            if not cluster.stopping:
                self._log(f"postgres: base backup of {cluster.name} failed: {err}")
        finally:
            cluster.backup_done.set()

    @staticmethod
    def _wait_backup(cluster, timeout=120):
        if not cluster.backup_done.wait(timeout):
            raise ClusterError(f"the base backup of {cluster.name!r} did not finish within {timeout}s")
        if cluster.backup_error is not None:
            raise ClusterError(f"the base backup of {cluster.name!r} failed: {cluster.backup_error}")

    def _stop(self, cluster, timeout=15):
        cluster.stopping = True
        self._stop_process(cluster, timeout)
        if cluster.backup_thread is not None:
            cluster.backup_thread.join(timeout)

    @staticmethod
    def _stop_process(cluster, timeout):
        process = cluster.process
        if process is None or process.poll() is not None:
            return
        # SIGINT = fast shutdown: disconnect clients, checkpoint, exit.
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _discard(self, cluster):
        if cluster is None:
            return
        self._stop(cluster)
        shutil.rmtree(cluster.directory, ignore_errors=True)

    def _stop_leftovers(self):
        """Kill postmasters a crashed earlier sandbox left running on our data directories."""
        clusters_dir = os.path.join(self.root, "clusters")
        if not os.path.isdir(clusters_dir):
            return
        for name in os.listdir(clusters_dir):
            pid_file = os.path.join(clusters_dir, name, "data", "postmaster.pid")
            try:
                with open(pid_file, encoding="ascii") as fh:
                    pid = int(fh.readline().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmdline = fh.read()
            except (OSError, ValueError):
                continue
            if b"postgres" in cmdline and os.path.join(clusters_dir, name, "data").encode() in cmdline:
                try:
                    os.kill(pid, signal.SIGQUIT)
                except ProcessLookupError:
                    continue
                for _unused in range(100):
                    if not os.path.exists(f"/proc/{pid}"):
                        break
                    time.sleep(0.05)

    # -- helpers -------------------------------------------------------------------------
    def _server_version(self):
        out = subprocess.run([os.path.join(self.bin_dir, "postgres"), "--version"], capture_output=True, text=True,
                             check=True).stdout
        match = re.search(r"(\d+(?:\.\d+)*)", out)
        return match.group(1) if match else "unknown"

    def _cmd(self, tool, *args):
        cmd = [os.path.join(self.bin_dir, tool), *args]
        if self._as_nobody:
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
        return cmd

    def _as_owner(self, cmd):
        self._run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd] if self._as_nobody else cmd)

    def _run(self, cmd, env=None):
        full_env = dict(os.environ, **(env or {}))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
        if proc.returncode != 0:
            tool = next((os.path.basename(c) for c in cmd if not c.startswith("-") and c != "setpriv"), cmd[0])
            raise ClusterError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _remove_in_background(self, path):
        """Move a directory aside and delete it on a thread (start-up need not wait for it)."""
        if not os.path.exists(path):
            return
        trash = os.path.join(self.root, f".trash-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(path, trash)
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True},
                         name="pg-cleanup", daemon=True).start()

    def _prepare_dir(self, cluster):
        shutil.rmtree(cluster.directory, ignore_errors=True)
        self._mkdir(cluster.directory)
        self._mkdir(cluster.archive)

    def _mkdir(self, path):
        os.makedirs(path, exist_ok=True)
        self._chown(path)

    def _chown(self, path):
        if self._as_nobody:
            shutil.chown(path, "nobody", "nogroup")

    @staticmethod
    def _check_name(name):
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(f"invalid cluster name {name!r}: 2-63 lowercase letters, digits and hyphens")

    @staticmethod
    def _tail(cluster, lines=15):
        try:
            with open(cluster.log_path, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _q(path):
    """Quote a path for archive_command / restore_command (run by /bin/sh)."""
    return "'" + path.replace("'", "'\"'\"'") + "'"
