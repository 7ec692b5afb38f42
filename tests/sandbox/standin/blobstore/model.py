"""State of the blob stand-in: one storage account, its containers and every
blob's history (versions, snapshots, soft-deleted pieces).

The account-level data-protection settings decide what a write or a delete
leaves behind, as in Azure Storage:

  versioning on   every write makes a new version (version id = its time);
                  the previous current version becomes a previous version.
                  Deleting the base blob leaves no current version (the
                  versions stay); deleting a version or a snapshot by id
                  soft-deletes it when soft delete is on.
  versioning off  the blob is one base blob; with soft delete on, an
                  overwrite keeps the old content as a soft-deleted snapshot
                  and a delete soft-deletes the base blob (and its snapshots
                  when asked to).
  Undelete Blob   restores every soft-deleted piece of the blob.

Soft-deleted pieces are not purged when the retention ends (the sandbox
never lives that long); `RemainingRetentionDays` is computed honestly.
"""

import base64
import copy
import datetime
import hashlib
import itertools

_etag_counter = itertools.count(0x8DD0000000000)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def version_stamp(ts):
    """Version ids and snapshot ids: UTC with seven fractional digits, as the service writes them."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond:06d}0Z"


def new_etag():
    return f'"0x{next(_etag_counter):X}"'


class BlobError(Exception):
    """A Blob service error: HTTP status, x-ms-error-code, message."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def blob_not_found():
    return BlobError(404, "BlobNotFound", "The specified blob does not exist.")


def container_not_found():
    return BlobError(404, "ContainerNotFound", "The specified container does not exist.")


class Entry:
    """One stored piece of a blob: the base blob, a version or a snapshot."""

    def __init__(self, kind, content, when, content_type="application/octet-stream", metadata=None):
        self.kind = kind  # "base" | "version" | "snapshot"
        self.id = version_stamp(when) if kind != "base" else None
        self.content = content
        self.content_type = content_type or "application/octet-stream"
        self.metadata = dict(metadata or {})
        self.created = when
        self.last_modified = when
        self.etag = new_etag()
        self.md5 = hashlib.md5(content).digest()
        self.is_current = kind == "version"
        self.deleted_time = None
        self.copy = None  # {"id", "source", "status", "completion_time"} after a Copy Blob

    @property
    def deleted(self):
        return self.deleted_time is not None

    def clone(self, kind, when):
        twin = Entry(kind, self.content, when, self.content_type, self.metadata)
        twin.etag = self.etag if kind == "snapshot" else twin.etag
        twin.last_modified = self.last_modified if kind == "snapshot" else when
        twin.copy = copy.deepcopy(self.copy)
        return twin

    def view(self):
        text = None
        try:
            text = self.content.decode("utf-8")
        except UnicodeDecodeError:
            pass
        return {
            "kind": self.kind, "id": self.id, "is_current": self.is_current if self.kind == "version" else None,
            "deleted": self.deleted, "deleted_time": self.deleted_time.isoformat() if self.deleted_time else None,
            "size": len(self.content),
            "content_md5": base64.b64encode(self.md5).decode("ascii") if self.md5 else None,
            "etag": self.etag, "last_modified": self.last_modified.isoformat(), "content_type": self.content_type,
            "metadata": dict(self.metadata), "content": text,
        }


class Blob:
    def __init__(self, name, created):
        self.name = name
        self.created = created
        self.entries = []  # oldest first within each kind

    def pieces(self, kind):
        return [e for e in self.entries if e.kind == kind]

    def current(self):
        """The live base blob (current version or base), or None when there is none."""
        for entry in self.entries:
            if entry.kind == "base" and not entry.deleted:
                return entry
            if entry.kind == "version" and entry.is_current and not entry.deleted:
                return entry
        return None

    def find(self, version_id=None, snapshot=None, include_deleted=False):
        """The entry a request addresses, or None."""
        if version_id:
            matches = [e for e in self.pieces("version") if e.id == version_id]
        elif snapshot:
            matches = [e for e in self.pieces("snapshot") if e.id == snapshot]
        else:
            return self.current()
        if matches and (include_deleted or not matches[0].deleted):
            return matches[0]
        return None


class Container:
    def __init__(self, name, created, metadata=None):
        self.name = name
        self.created = created
        self.last_modified = created
        self.etag = new_etag()
        self.metadata = dict(metadata or {})
        self.blobs = {}


class Account:
    def __init__(self, name, key, versioning=True, soft_delete_days=7):
        self.name = name
        self.key = key
        self.versioning = versioning
        self.soft_delete_days = soft_delete_days  # 0 = soft delete off
        self.containers = {}
        self._last_stamp = None

    # -- time ----------------------------------------------------------------------------
    def stamp(self, when=None):
        """A time strictly after the previous one handed out: ids must be unique and ordered."""
        when = when or utcnow()
        if self._last_stamp is not None and when <= self._last_stamp:
            when = self._last_stamp + datetime.timedelta(microseconds=1)
        self._last_stamp = when
        return when

    # -- containers ------------------------------------------------------------------------
    def container(self, name):
        found = self.containers.get(name)
        if found is None:
            raise container_not_found()
        return found

    def create_container(self, name, metadata=None, when=None):
        if name in self.containers:
            raise BlobError(409, "ContainerAlreadyExists", "The specified container already exists.")
        self.containers[name] = Container(name, self.stamp(when), metadata)
        return self.containers[name]

    def blob(self, container, name):
        found = self.container(container).blobs.get(name)
        if found is None:
            raise blob_not_found()
        return found

    # -- writes ----------------------------------------------------------------------------
    def put(self, container, name, content, content_type=None, metadata=None, when=None, copy_info=None):
        """Put Blob (or the end of Copy Blob): the new content becomes the current blob."""
        box = self.container(container)
        when = self.stamp(when)
        blob = box.blobs.get(name)
        if blob is None:
            blob = box.blobs[name] = Blob(name, when)
        if self.versioning:
            for entry in blob.pieces("version"):
                entry.is_current = False
            entry = Entry("version", content, when, content_type, metadata)
            blob.entries.append(entry)
        else:
            base = next((e for e in blob.pieces("base")), None)
            if base is not None:
                blob.entries.remove(base)
                if self.soft_delete_days and not base.deleted:
                    kept = base.clone("snapshot", when)
                    kept.deleted_time = when
                    blob.entries.append(kept)
            entry = Entry("base", content, when, content_type, metadata)
            blob.entries.append(entry)
        entry.copy = copy_info
        return entry

    def snapshot(self, container, name, metadata=None, when=None):
        blob = self.blob(container, name)
        base = blob.current()
        if base is None:
            raise blob_not_found()
        when = self.stamp(when)
        snap = base.clone("snapshot", when)
        if metadata:
            snap.metadata = dict(metadata)
        blob.entries.append(snap)
        return snap, base

    def delete(self, container, name, version_id=None, snapshot=None, delete_snapshots=None, when=None):
        blob = self.blob(container, name)
        when = self.stamp(when)
        if version_id or snapshot:
            target = blob.find(version_id, snapshot)
            if target is None:
                raise blob_not_found()
            if target.kind == "version" and target.is_current:
                # Deleting the current version by id is what a plain delete does.
                return self.delete(container, name, delete_snapshots=delete_snapshots, when=when)
            self._remove(blob, [target], when)
            return
        base = blob.current()
        if base is None:
            raise blob_not_found()
        live_snapshots = [e for e in blob.pieces("snapshot") if not e.deleted]
        if live_snapshots and delete_snapshots not in ("include", "only"):
            raise BlobError(409, "SnapshotsPresent", "This operation is not permitted because the blob has snapshots.")
        if delete_snapshots == "only":
            self._remove(blob, live_snapshots, when)
            return
        self._remove(blob, live_snapshots, when)
        if base.kind == "version":
            base.is_current = False  # the versions stay; there is no current blob now
        else:
            self._remove(blob, [base], when)

    def _remove(self, blob, entries, when):
        for entry in entries:
            if self.soft_delete_days:
                entry.deleted_time = when
            else:
                blob.entries.remove(entry)

    def undelete(self, container, name):
        blob = self.blob(container, name)
        for entry in blob.entries:
            if entry.deleted:
                if entry.kind == "base" and blob.current() is not None:
                    continue  # a newer base blob was written since; the service keeps it
                entry.deleted_time = None

    def remaining_retention_days(self, entry):
        if entry.deleted_time is None or not self.soft_delete_days:
            return None
        left = entry.deleted_time + datetime.timedelta(days=self.soft_delete_days) - utcnow()
        return max(0, left.days + (1 if left.seconds or left.microseconds else 0))

    # -- listing ---------------------------------------------------------------------------
    def listing(self, container, prefix="", include=()):
        """Every entry List Blobs returns, in the service's order: by name, then snapshots
        (oldest first), then versions (oldest first), then the base blob."""
        box = self.container(container)
        rows = []
        for name in sorted(box.blobs):
            if not name.startswith(prefix or ""):
                continue
            blob = box.blobs[name]
            for entry in blob.pieces("snapshot"):
                if "snapshots" in include and (not entry.deleted or "deleted" in include):
                    rows.append((blob, entry))
            for entry in blob.pieces("version"):
                if entry.deleted and "deleted" not in include:
                    continue
                if entry.is_current and not entry.deleted or "versions" in include:
                    rows.append((blob, entry))
            for entry in blob.pieces("base"):
                if not entry.deleted or "deleted" in include:
                    rows.append((blob, entry))
        return rows

    # -- views -----------------------------------------------------------------------------
    def view(self):
        return {
            "account": self.name,
            "versioning": self.versioning,
            "soft_delete_days": self.soft_delete_days,
            "containers": {
                cname: {
                    bname: {"current": (blob.current().id or "base") if blob.current() else None,
                            "entries": [e.view() for e in blob.entries]}
                    for bname, blob in sorted(box.blobs.items())
                }
                for cname, box in sorted(self.containers.items())
            },
        }


def account_from_seed(section):
    """Build the account and replay the seed's history with its (relative) times."""
    account = Account(section["account"], section["account_key"], section.get("versioning", True),
                      section.get("soft_delete_days", 7))
    now = utcnow()
    events = []  # (when, order, action)
    order = itertools.count()
    for cname, cspec in sorted(section.get("containers", {}).items()):
        events.append((now - datetime.timedelta(days=30), next(order), ("container", cname, None, None)))
        for bname, bspec in sorted(cspec.get("blobs", {}).items()):
            for write in bspec.get("history", []):
                when = now - datetime.timedelta(minutes=write["minutes_ago"])
                events.append((when, next(order), ("put", cname, bname, write)))
                if write.get("snapshot_after"):
                    events.append((when + datetime.timedelta(seconds=1), next(order), ("snapshot", cname, bname, None)))
            if bspec.get("deleted_minutes_ago") is not None:
                when = now - datetime.timedelta(minutes=bspec["deleted_minutes_ago"])
                events.append((when, next(order), ("delete", cname, bname, None)))
            if bspec.get("version_deleted_minutes_ago") is not None:
                when = now - datetime.timedelta(minutes=bspec["version_deleted_minutes_ago"])
                events.append((when, next(order), ("delete_latest_version", cname, bname, None)))
    for when, _order, (action, cname, bname, spec) in sorted(events, key=lambda e: (e[0], e[1])):
        if action == "container":
            account.create_container(cname, when=when)
        elif action == "put":
            account.put(cname, bname, spec["content"].encode("utf-8"), spec.get("content_type"),
                        spec.get("metadata"), when)
        elif action == "snapshot":
            account.snapshot(cname, bname, when=when)
        elif action == "delete":
            account.delete(cname, bname, delete_snapshots="include", when=when)
        else:
            blob = account.blob(cname, bname)
            account._remove(blob, [blob.pieces("version")[-1]], account.stamp(when))
    return account
