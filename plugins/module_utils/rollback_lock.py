# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rollback lock: one run at a time acts on a service.

:class:`RollbackLock` holds the decisions (free -> take it; ours -> nothing to do; someone else's and
live -> refuse, naming the holder; someone else's and expired -> take it over) and talks to one of
three stores, each of which makes "create if absent" and "replace if unchanged" atomic on its own:

- :class:`FileLockStore`: ``<dir>/<name>.lock`` (JSON) on one controller. Every read-decide-write
  runs under an ``flock`` on ``<dir>/.<name>.lock.guard`` (released by the kernel if the process
  dies), and the lock file appears with ``link()`` of a complete temporary file, which fails if the
  name exists (O_EXCL semantics without a window in which the file is empty).
- :class:`LeaseLockStore`: a ``coordination.k8s.io/v1`` Lease; POST creates (409 = held), PUT with the
  read resourceVersion takes over (409 = lost the race), DELETE with a resourceVersion precondition
  releases.
- :class:`BlobLeaseLockStore`: an infinite Azure Blob lease on ``<container>/<name>.lock`` whose id is
  derived from the holder (uuid5), with holder, reason and expiry in the blob's metadata, which only
  the lease holder can write.

No AnsibleModule here; errors are RollbackError.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import getpass
import json
import os
import re
import socket
import tempfile
import time
import uuid
from urllib.parse import quote, unquote

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

DEFAULT_LOCK_DIR = "~/.sre-rollback/locks"
DEFAULT_TTL_S = 1800
DEFAULT_BLOB_CONTAINER = "rollback-locks"
GUARD_TIMEOUT_S = 10.0
# A Kubernetes object name (RFC 1123 subdomain): the one naming rule every backend can honour.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
REASON_ANNOTATION = "sre.rollback/reason"
LEASE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/sre-rollback/sre.rollback/rollback_lock")


# ------------------------------------------------------------------------------- helpers
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    """UTC, seconds: what results and messages show."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def micro_time(moment):
    """metav1.MicroTime (RFC3339 with exactly six fractional digits, as the API server parses it)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """An ISO 8601 / RFC 3339 time as an aware UTC datetime; None for empty or unreadable text."""
    if not text or not isinstance(text, str):
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # fromisoformat takes at most 6 fractional digits.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def check_name(name):
    if not name or len(name) > 253 or not NAME_RE.match(name):
        raise RollbackError(
            "name %r cannot name a lock: use lower-case letters, digits, '-' and '.', starting and ending with a "
            "letter or digit (a Kubernetes object name), for example fundrbolt-api-production." % (name,))
    return name


def check_ttl(ttl):
    if ttl is None or ttl < 1:
        raise RollbackError("ttl must be at least 1 second, got %s." % (ttl,))
    return int(ttl)


def _ansible_playbook_pid(proc="/proc", start=None):
    """The pid of the ansible-playbook main process this task runs under, or None.

    A task runs in a worker forked from ansible-playbook (same command line), so the main process is
    the top of the nearest unbroken chain of ansible-playbook processes above this one: the same for
    every task of a run, different for two runs at the same time.
    """
    pid = start or os.getpid()
    found = None
    for _depth in range(64):
        try:
            with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
                argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
            with open(os.path.join(proc, str(pid), "stat"), "rb") as handle:
                stat = handle.read().decode("utf-8", "replace")
        except OSError:
            break
        if any(os.path.basename(arg).startswith("ansible-playbook") for arg in argv[:2]):
            found = pid
        elif found:
            # The parent of the nearest ansible-playbook main process: stop there, so a playbook started
            # by a task of another playbook is its own run.
            break
        # The command name in stat may hold spaces and parentheses: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid <= 1:
            break
        pid = ppid
    return found


def default_holder(environ=None, proc="/proc"):
    """``<user>@<host>:<run>``, the run being the AWX/Tower job (JOB_ID) or the ansible-playbook pid."""
    env = os.environ if environ is None else environ
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "uid%d" % os.getuid()
    job = env.get("AWX_JOB_ID") or env.get("TOWER_JOB_ID") or env.get("JOB_ID")
    if job:
        run = "job-%s" % job
    else:
        pid = _ansible_playbook_pid(proc)
        run = str(pid) if pid else "pid-%d" % os.getppid()
    return "%s@%s:%s" % (user, socket.gethostname(), run)


def lease_id_for(holder):
    """The blob lease id of a holder: the same holder always proposes the same id."""
    return str(uuid.uuid5(LEASE_ID_NAMESPACE, holder))


class LockRecord:
    """Who holds a lock, since when, until when, and why."""

    def __init__(self, holder, acquired_at, expires_at, reason=None):
        self.holder = holder
        self.acquired_at = acquired_at
        self.expires_at = expires_at
        self.reason = reason or None

    def expired(self, now):
        return self.expires_at is not None and self.expires_at <= now

    def view(self):
        return {"holder": self.holder, "reason": self.reason, "acquired_at": iso(self.acquired_at),
                "expires_at": iso(self.expires_at)}

    def to_json(self):
        return json.dumps(self.view(), sort_keys=True) + "\n"

    @classmethod
    def from_view(cls, data):
        return cls(data.get("holder"), parse_time(data.get("acquired_at")), parse_time(data.get("expires_at")),
                   data.get("reason"))


class LockTaken(Exception):
    """The store refused a create or replace because the lock changed since it was read."""


def held_message(name, record):
    return ("lock %s is held by %s since %s (reason: %s); expires %s. Wait, or release it with state=released "
            "force=true if that run is dead." % (name, record.holder, iso(record.acquired_at) or "an unknown time",
                                                 record.reason or "none given",
                                                 iso(record.expires_at) or "never"))


# -------------------------------------------------------------------------- the lock
class RollbackLock:
    """Acquire or release one named lock in a store."""

    def __init__(self, store, name, holder, ttl=DEFAULT_TTL_S, reason=None, now=utcnow):
        self.store = store
        self.name = check_name(name)
        self.holder = holder
        self.ttl = check_ttl(ttl)
        self.reason = reason
        self.now = now

    def _result(self, **values):
        result = {"name": self.name, "backend": self.store.backend, "location": self.store.location,
                  "holder": self.holder, "acquired": False, "held_by": None, "acquired_at": None,
                  "expires_at": None, "taken_over_from": None, "reason": self.reason}
        result.update(self.store.extra_result(self.holder))
        result.update(values)
        return result

    def _conflict(self, record, lost_race=False):
        message = held_message(self.name, record)
        if lost_race:
            message = "lost the race for an expired lock: " + message
        return RollbackError(message, **self._result(held_by=record.holder, acquired_at=iso(record.acquired_at),
                                                     expires_at=iso(record.expires_at), held_reason=record.reason,
                                                     changed=False))

    def acquire(self, check_mode=False):
        """(changed, result). Taking a lock this holder already holds changes nothing and keeps its expiry."""
        now = self.now()
        new = LockRecord(self.holder, now, now + datetime.timedelta(seconds=self.ttl), self.reason)
        with self.store.guard(self.name, check_mode):
            current, token = self.store.read()
            before = current.view() if current else None
            if current is not None and current.holder == self.holder:
                self.store.confirm_ours(current, token)
                return False, self._result(acquired=True, acquired_at=iso(current.acquired_at),
                                           expires_at=iso(current.expires_at), reason=current.reason,
                                           before=before, after=before)
            if current is not None and not current.expired(now):
                raise self._conflict(current)
            taken_over_from = current.holder if current is not None else None
            if not check_mode:
                try:
                    if current is None and token is None:
                        self.store.create(new)
                    else:
                        self.store.replace(new, token)
                except LockTaken:
                    again, _token = self.store.read(wait_for_holder=True)
                    if again is None or again.holder != self.holder:
                        raise self._conflict(again or LockRecord("an unknown holder", None, None),
                                             lost_race=current is not None) from None
            return True, self._result(acquired=not check_mode, acquired_at=iso(new.acquired_at),
                                      expires_at=iso(new.expires_at), taken_over_from=taken_over_from,
                                      before=before, after=new.view())

    def release(self, force=False, check_mode=False):
        """(changed, result). Releasing a free lock changes nothing; someone else's needs force (or expiry)."""
        now = self.now()
        with self.store.guard(self.name, check_mode):
            current, token = self.store.read()
            if current is None:
                return False, self._result(released=False, before=None, after=None)
            ours = current.holder == self.holder
            if not ours and not force and not current.expired(now):
                raise RollbackError(
                    "lock %s is held by %s since %s (reason: %s), not by %s: refusing to release someone else's "
                    "lock. Pass force=true if that run is dead." % (
                        self.name, current.holder, iso(current.acquired_at), current.reason or "none given",
                        self.holder),
                    **self._result(held_by=current.holder, acquired_at=iso(current.acquired_at),
                                   expires_at=iso(current.expires_at), released=False, changed=False))
            if not check_mode:
                try:
                    self.store.remove(current, token, ours)
                except LockTaken:
                    again, _token = self.store.read()
                    raise RollbackError("lock %s changed while it was being released: %s" % (
                        self.name, held_message(self.name, again) if again else "it is free now."),
                        **self._result(held_by=again.holder if again else None, released=False)) from None
            return True, self._result(released=True, held_by=None if ours else current.holder,
                                      forced=not ours, acquired_at=iso(current.acquired_at),
                                      expires_at=iso(current.expires_at), before=current.view(), after=None)


# ----------------------------------------------------------------------------- stores
class FileLockStore:
    """``<directory>/<name>.lock`` on the controller's file system."""

    backend = "file"

    def __init__(self, directory, name, guard_timeout=GUARD_TIMEOUT_S):
        self.directory = os.path.abspath(os.path.expanduser(directory or DEFAULT_LOCK_DIR))
        self.name = name
        self.path = os.path.join(self.directory, "%s.lock" % name)
        self.location = self.path
        self.guard_timeout = guard_timeout

    def extra_result(self, holder):
        return {"lock_file": self.path}

    @contextlib.contextmanager
    def guard(self, name, check_mode):
        """An exclusive flock for the read-decide-write (none in check mode, which writes nothing)."""
        if check_mode:
            yield
            return
        with exclusive_guard(self.directory, ".%s.lock.guard" % name, self.guard_timeout,
                             "lock %s" % name):
            yield

    def read(self, wait_for_holder=False):
        return read_record(self.path), None

    def confirm_ours(self, record, token):
        return None

    def create(self, record):
        ensure_directory(self.directory)
        temporary = write_temporary(self.directory, record.to_json())
        try:
            os.link(temporary, self.path)
        except FileExistsError:
            raise LockTaken() from None
        finally:
            os.unlink(temporary)

    def replace(self, record, token):
        ensure_directory(self.directory)
        temporary = write_temporary(self.directory, record.to_json())
        os.replace(temporary, self.path)

    def remove(self, record, token, ours):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def ensure_directory(directory):
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as error:
        raise RollbackError("cannot create the lock directory %s: %s" % (directory, error.strerror)) from None


def write_temporary(directory, text):
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def read_record(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise RollbackError("%s is not a readable lock record (%s). Check that no run holds it, then delete the "
                            "file." % (path, error)) from None
    if not isinstance(data, dict) or not data.get("holder"):
        raise RollbackError("%s is not a lock record (no holder). Check that no run holds it, then delete the "
                            "file." % path)
    return LockRecord.from_view(data)


@contextlib.contextmanager
def exclusive_guard(directory, filename, timeout, what):
    """flock(LOCK_EX) on ``directory/filename`` for at most ``timeout`` seconds of waiting."""
    import fcntl  # POSIX only; the file backend runs on the controller

    ensure_directory(directory)
    path = os.path.join(directory, filename)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise RollbackError("cannot lock %s: %s" % (path, error.strerror)) from None
                if time.monotonic() >= deadline:
                    raise RollbackError("another run has been working on %s for %s s (%s is locked); try again."
                                        % (what, timeout, path)) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(descriptor)  # closing drops the flock


class LeaseLockStore:
    """A coordination.k8s.io/v1 Lease named after the lock, through a KubernetesRest client."""

    backend = "kubernetes_lease"

    def __init__(self, rest, namespace, name, not_found_error, server=None):
        self.rest = rest
        self.namespace = namespace
        self.name = name
        self.collection = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % namespace
        self.path = "%s/%s" % (self.collection, name)
        self.location = "%s/lease/%s" % (namespace, name)
        self.error_type = not_found_error
        self.server = server

    def extra_result(self, holder):
        return {"namespace": self.namespace, "server": self.server}

    @contextlib.contextmanager
    def guard(self, name, check_mode):
        yield  # the API server's resourceVersion is the guard

    def read(self, wait_for_holder=False):
        try:
            lease = self.rest.get(self.path, what="read Lease %s/%s" % (self.namespace, self.name))
        except self.error_type as error:
            if getattr(error, "status", None) == 404:
                return None, None
            raise
        return self.record_of(lease), lease

    @staticmethod
    def record_of(lease):
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder:
            return None  # released (or never held): free to take
        acquired = parse_time(spec.get("acquireTime"))
        renewed = parse_time(spec.get("renewTime")) or acquired
        duration = spec.get("leaseDurationSeconds")
        expires = renewed + datetime.timedelta(seconds=duration) if renewed and duration else None
        reason = ((lease.get("metadata") or {}).get("annotations") or {}).get(REASON_ANNOTATION)
        return LockRecord(holder, acquired, expires, reason)

    def confirm_ours(self, record, token):
        return None

    def _body(self, record, old=None):
        seconds = int(round((record.expires_at - record.acquired_at).total_seconds()))
        metadata = {"name": self.name, "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "sre.rollback"},
                    "annotations": {REASON_ANNOTATION: record.reason or ""}}
        transitions = 0
        if old is not None:
            old_meta = old.get("metadata") or {}
            metadata["resourceVersion"] = old_meta.get("resourceVersion")
            metadata["labels"] = dict(old_meta.get("labels") or {}, **metadata["labels"])
            metadata["annotations"] = dict(old_meta.get("annotations") or {}, **metadata["annotations"])
            old_spec = old.get("spec") or {}
            transitions = int(old_spec.get("leaseTransitions") or 0) + (1 if old_spec.get("holderIdentity") else 0)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": record.holder, "leaseDurationSeconds": seconds,
                         "acquireTime": micro_time(record.acquired_at), "renewTime": micro_time(record.acquired_at),
                         "leaseTransitions": transitions}}

    def create(self, record):
        try:
            self.rest.post(self.collection, self._body(record),
                           what="create Lease %s/%s" % (self.namespace, self.name))
        except self.error_type as error:
            if getattr(error, "status", None) == 409:
                raise LockTaken() from None
            raise

    def replace(self, record, token):
        try:
            self.rest.put(self.path, self._body(record, old=token),
                          what="take over Lease %s/%s" % (self.namespace, self.name))
        except self.error_type as error:
            if getattr(error, "status", None) in (404, 409):
                raise LockTaken() from None
            raise

    def remove(self, record, token, ours):
        rv = (token.get("metadata") or {}).get("resourceVersion")
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": rv}}
        try:
            self.rest.request("DELETE", self.path, body=body,
                              what="delete Lease %s/%s" % (self.namespace, self.name))
        except self.error_type as error:
            if getattr(error, "status", None) == 404:
                return
            if getattr(error, "status", None) == 409:
                raise LockTaken() from None
            raise


class BlobLeaseLockStore:
    """An infinite Azure Blob lease on ``<container>/<name>.lock``; holder and expiry in the blob's metadata.

    ``blob`` is an azure.storage.blob BlobClient, ``lease_client`` builds a BlobLeaseClient,
    ``errors`` carries the azure-core exception classes and ``storage_call`` the error wording.
    """

    backend = "blob_lease"

    def __init__(self, blob, container_client, lease_client, errors, storage_call, lease_id=None,
                 sleep=time.sleep):
        self.blob = blob
        self.container = container_client
        self.lease_client = lease_client
        self.errors = errors
        self.storage_call = storage_call
        self.explicit_lease_id = lease_id
        self.location = "%s/%s" % (blob.container_name, blob.blob_name)
        self.sleep = sleep

    def lease_id(self, holder):
        return self.explicit_lease_id or lease_id_for(holder)

    def extra_result(self, holder):
        return {"container": self.blob.container_name, "blob": self.blob.blob_name, "lease_id": self.lease_id(holder)}

    @contextlib.contextmanager
    def guard(self, name, check_mode):
        yield  # the lease itself is the guard

    def read(self, wait_for_holder=False):
        # A lease taken a moment ago carries its holder's metadata a moment later: wait a little for it.
        for _attempt in range(20 if wait_for_holder else 1):
            record, properties = self._read_once()
            if record is None or record.holder != "an unknown holder":
                break
            self.sleep(0.1)
        return record, properties

    def _read_once(self):
        try:
            with self.storage_call("read lock blob %s" % self.location):
                properties = self.blob.get_blob_properties()
        except RollbackError as error:
            if error.details.get("error_code") in ("BlobNotFound", "ContainerNotFound", "ResourceNotFound"):
                return None, None
            raise
        lease = properties.lease
        if getattr(lease, "status", None) != "locked":
            return None, properties
        meta = {key.lower(): unquote(value) for key, value in (properties.metadata or {}).items()}
        if not meta.get("holder"):
            return LockRecord("an unknown holder", None, None,
                              "a lease without sre.rollback metadata, or one being taken right now"), properties
        return LockRecord(meta["holder"], parse_time(meta.get("acquired_at")), parse_time(meta.get("expires_at")),
                          meta.get("reason")), properties

    def confirm_ours(self, record, token):
        # The metadata says so; the lease id proves it (renewing an infinite lease changes nothing).
        try:
            with self.storage_call("renew the lease of %s" % self.location):
                self.lease_client(self.blob, self.lease_id(record.holder)).renew()
        except RollbackError as error:
            raise RollbackError("the metadata of %s names %s as holder, but the blob lease is not held with that "
                                "holder's lease id (%s): pass lease_id, or release it with force=true."
                                % (self.location, record.holder, error.message)) from None

    @staticmethod
    def _metadata(record):
        view = record.view()
        return {key: quote(value, safe=" :@/()-._,+") for key, value in view.items() if value}

    def _acquire(self, record):
        lease_id = self.lease_id(record.holder)
        try:
            self.lease_client(self.blob, lease_id).acquire(lease_duration=-1)
        except self.errors.ResourceExistsError:
            raise LockTaken() from None  # 409 LeaseAlreadyPresent: someone else got it first
        except self.errors.HttpResponseError as error:
            if getattr(error, "status_code", None) in (409, 412):
                raise LockTaken() from None
            raise
        try:
            # Only the holder of the lease can write the metadata: if this fails, the lease was broken
            # by a racing take-over between the two calls, and that run holds the lock.
            self.blob.set_blob_metadata(self._metadata(record), lease=lease_id)
        except self.errors.HttpResponseError as error:
            if getattr(error, "status_code", None) in (409, 412):
                raise LockTaken() from None
            raise

    def create(self, record):
        with self.storage_call("create lock blob %s" % self.location):
            try:
                self.container.create_container()
            except self.errors.ResourceExistsError:
                pass
            try:
                self.blob.upload_blob(b"", overwrite=False)
            except self.errors.ResourceExistsError:
                pass  # exists and unleased (released before), or being taken right now: the lease decides
            self._acquire(record)

    def replace(self, record, token):
        with self.storage_call("take over lock blob %s" % self.location):
            if getattr(token.lease, "status", None) == "locked":
                try:
                    # Only if nobody wrote the blob since we read it (a new holder writes its metadata).
                    self.lease_client(self.blob, None).break_lease(lease_break_period=0,
                                                                   if_unmodified_since=token.last_modified)
                except self.errors.HttpResponseError as error:
                    if getattr(error, "status_code", None) in (409, 412):
                        raise LockTaken() from None
                    raise
            self._acquire(record)

    def remove(self, record, token, ours):
        with self.storage_call("release lock blob %s" % self.location):
            if ours:
                lease_id = self.lease_id(record.holder)
                try:
                    self.blob.set_blob_metadata({}, lease=lease_id)
                    self.lease_client(self.blob, lease_id).release()
                except self.errors.HttpResponseError as error:
                    if getattr(error, "status_code", None) in (409, 412):
                        code = getattr(error, "error_code", None) or error
                        raise RollbackError(
                            "cannot release %s: the blob lease is not held with lease id %s (%s). Pass the lease_id "
                            "the lock was taken with, or force=true." % (self.location, lease_id, code)) from None
                    raise
            else:
                # Only if nobody wrote the blob since we read it: a run that took the expired lock meanwhile
                # has written its metadata, and breaking its lease would destroy a live lock.
                try:
                    self.lease_client(self.blob, None).break_lease(lease_break_period=0,
                                                                   if_unmodified_since=token.last_modified)
                except self.errors.HttpResponseError as error:
                    if getattr(error, "status_code", None) in (409, 412):
                        raise LockTaken() from None
                    raise
                self.blob.set_blob_metadata({})
