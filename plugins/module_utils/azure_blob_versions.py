# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restore blobs to an earlier version or snapshot, or bring deleted blobs back.

Azure Storage keeps history in two ways, and this class works with both:

* blob versioning: every write makes a new version whose id is its time;
  "restore a previous version" means copying that version over the base
  blob (Copy Blob with a ``?versionid=`` source), which makes a NEW current
  version with the old content. No version is removed.
* snapshots (all accounts, also Azurite): read-only copies taken at a time;
  restoring copies the snapshot over the base blob (``?snapshot=`` source).

``undelete`` calls Undelete Blob for blobs with soft-deleted pieces, and in a
versioning account, where deleting a blob leaves no current version but keeps
its versions, promotes the newest version back to current.

The work is planned first (one listing, every blob decided), so a bad input
fails before anything changes; then applied blob by blob.  Whether a blob
already holds the chosen content is decided by Content-MD5, or, when either
side has none, by hashing both downloads.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import re
import time
import traceback
from base64 import b64encode

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import authentication_failure
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.storage.blob import BlobServiceClient, ExponentialRetry
except ImportError:
    BLOB_IMPORT_ERROR = traceback.format_exc()
    ClientAuthenticationError = HttpResponseError = ResourceNotFoundError = None
    ServiceRequestError = ServiceResponseError = None
else:
    BLOB_IMPORT_ERROR = None

BLOB_ACCOUNT_ARGSPEC = dict(
    account_url=dict(type="str"),
    account_key=dict(type="str", no_log=True),
    connection_string=dict(type="str", no_log=True),
)

# Version ids and snapshot ids are UTC times with up to seven fractional digits.
_STAMP_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z?")


def parse_stamp(text):
    """A version id or snapshot id as an aware UTC datetime (microseconds; the 7th digit is dropped)."""
    match = _STAMP_RE.fullmatch((text or "").strip())
    if not match:
        return None
    when = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    fraction = (match.group(2) or "") + "000000"
    return when + datetime.timedelta(microseconds=int(fraction[:6]))


def parse_as_of(text):
    """`as_of` as an aware UTC datetime: ISO 8601 with a zone (``Z`` or ``+01:00``); no zone means UTC."""
    value = (text or "").strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise RollbackError("as_of %r is not an ISO 8601 time such as 2026-11-23T18:00:00Z." % text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None


class Piece:
    """One listed item of a blob: the current blob, a version or a snapshot."""

    def __init__(self, name, version_id=None, snapshot=None, is_current=False, deleted=False,
                 content_md5=None, etag=None, size=None):
        self.name = name
        self.version_id = version_id
        self.snapshot = snapshot
        self.is_current = is_current
        self.deleted = deleted
        self.content_md5 = bytes(content_md5) if content_md5 else None
        self.etag = etag
        self.size = size

    @classmethod
    def from_blob_properties(cls, item):
        """From azure-storage-blob's BlobProperties, as list_blobs yields them."""
        settings = getattr(item, "content_settings", None)
        snapshot = getattr(item, "snapshot", None)
        version_id = getattr(item, "version_id", None)
        deleted = bool(getattr(item, "deleted", False))
        # Without versioning the base blob has no version id and is current unless deleted.
        is_current = bool(getattr(item, "is_current_version", False)) or (
            not snapshot and not version_id and not deleted)
        return cls(item.name, version_id, snapshot, is_current and not snapshot and not deleted, deleted,
                   getattr(settings, "content_md5", None), getattr(item, "etag", None), getattr(item, "size", None))

    @property
    def time(self):
        return parse_stamp(self.snapshot or self.version_id)

    @property
    def md5_b64(self):
        return b64encode(self.content_md5).decode("ascii") if self.content_md5 else None

    def describe(self):
        return dict(version_id=self.version_id, snapshot=self.snapshot, content_md5=self.md5_b64, size=self.size)


class History:
    """Everything the service listed for one blob name."""

    def __init__(self, name):
        self.name = name
        self.pieces = []

    @property
    def current(self):
        return next((p for p in self.pieces if p.is_current), None)

    def versions(self, deleted=False):
        return sorted((p for p in self.pieces if p.version_id and not p.snapshot and p.deleted == deleted),
                      key=lambda p: p.time)

    def snapshots(self, deleted=False):
        return sorted((p for p in self.pieces if p.snapshot and p.deleted == deleted), key=lambda p: p.time)

    @property
    def soft_deleted(self):
        return [p for p in self.pieces if p.deleted]


def group_by_name(pieces):
    """{name: History}, names in listing order."""
    histories = {}
    for piece in pieces:
        histories.setdefault(piece.name, History(piece.name)).pieces.append(piece)
    return histories


def choose_source(history, use, as_of=None, version_id=None, snapshot=None):
    """The version or snapshot to restore `history` to, or (None, reason) when there is none."""
    if version_id:
        found = next((p for p in history.versions() if p.version_id == version_id), None)
        if found:
            return found, None
        if any(p.version_id == version_id for p in history.versions(deleted=True)):
            return None, "has version %s only soft-deleted: run with undelete=true first" % version_id
        known = ", ".join(p.version_id for p in history.versions()[-5:]) or "none"
        return None, "has no version %s (newest versions: %s)" % (version_id, known)
    if snapshot:
        found = next((p for p in history.snapshots() if p.snapshot == snapshot), None)
        if found:
            return found, None
        known = ", ".join(p.snapshot for p in history.snapshots()[-5:]) or "none"
        return None, "has no snapshot %s (newest snapshots: %s)" % (snapshot, known)
    candidates = history.versions() if use == "versions" else history.snapshots()
    earlier = [p for p in candidates if p.time <= as_of]
    if earlier:
        return earlier[-1], None
    what = "version" if use == "versions" else "snapshot"
    if candidates:
        return None, "has no %s at or before %s (the oldest is %s)" % (what, iso(as_of), iso(candidates[0].time))
    if use == "versions":
        return None, "has no versions (is blob versioning on for the account? use=snapshots reads snapshots)"
    return None, "has no snapshots"


def same_content(left, right):
    """True/False when both carry a Content-MD5, None when that cannot tell."""
    if left is None or right is None:
        return False if (left is None) != (right is None) else None
    if left.content_md5 and right.content_md5:
        return left.content_md5 == right.content_md5
    return None


@contextlib.contextmanager
def storage_call(what, **details):
    """Blob service failures as RollbackError, worded for the storage data plane."""
    if HttpResponseError is None:
        yield
        return
    try:
        yield
    except RollbackError:
        raise
    except ClientAuthenticationError as error:
        if getattr(error, "status_code", None) is None:
            # Raised by azure-identity before any request reached the account: a sign-in problem.
            raise authentication_failure(error) from error
        raise RollbackError(
            "%s failed: the storage account refused the credentials (%s). Check account_key / connection_string, "
            "or that the identity has a Storage Blob Data role on the account." % (what, _first_line(error)),
            **details) from error
    except ResourceNotFoundError as error:
        code = getattr(error, "error_code", None) or "NotFound"
        raise RollbackError("%s failed: %s (%s)." % (what, code, _first_line(error)), error_code=code,
                            **details) from error
    except HttpResponseError as error:
        code = getattr(error, "error_code", None) or getattr(error, "reason", None)
        raise RollbackError("%s failed: HTTP %s %s: %s" % (what, error.status_code, code, _first_line(error)),
                            error_code=code, **details) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise RollbackError(
            "%s failed: the blob endpoint did not answer (%s). Check account_url, the network and the CA bundle "
            "(REQUESTS_CA_BUNDLE)." % (what, _first_line(error)), **details) from error


def _first_line(error):
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def service_client(params, credential_factory=None):
    """A BlobServiceClient from connection_string, account_url + account_key, or an Entra ID credential.

    ``credential_factory`` returns the Entra ID credential (the collection's AzureSettings); it is only
    called when neither key nor connection string is given.
    """
    retries = params.get("api_retries", 5)
    timeout = params.get("api_timeout", 60)
    # Storage's own retry policy (5xx but 501/505, 408, ServerBusy) with a short first back-off:
    # its default waits 15 s before the first retry, too long for a rollback.
    kwargs = dict(retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=retries,
                                                random_jitter_range=1),
                  connection_timeout=min(timeout, 30), read_timeout=timeout)
    if params.get("connection_string"):
        try:
            return BlobServiceClient.from_connection_string(params["connection_string"], **kwargs)
        except ValueError as error:
            raise RollbackError("connection_string is not a storage connection string: %s" % _first_line(error))
    url = (params.get("account_url") or "").rstrip("/")
    if not url:
        raise RollbackError("Give account_url (https://ACCOUNT.blob.core.windows.net) or connection_string.")
    if not re.match(r"https?://", url):
        raise RollbackError("account_url must be an http(s) URL: %s" % url)
    if params.get("account_key"):
        return BlobServiceClient(url, credential=params["account_key"], **kwargs)
    if not url.startswith("https://"):
        raise RollbackError("account_url must be https to sign in with Microsoft Entra ID (tokens are never sent "
                            "over plain http); give account_key or connection_string for an http emulator.")
    return BlobServiceClient(url, credential=credential_factory(), **kwargs)


class BlobVersionRestore:
    """Plan, then restore the blobs of one container to a version, a snapshot, or undelete them."""

    def __init__(self, service, container, name=None, prefix=None, as_of=None, version_id=None, snapshot=None,
                 undelete=False, use="versions", copy_timeout=300):
        modes = [bool(as_of), bool(version_id), bool(snapshot), bool(undelete)]
        if sum(modes) != 1:
            raise RollbackError("Give exactly one of as_of, version_id, snapshot or undelete=true.")
        if (not name) == (prefix is None):
            raise RollbackError("Give either name (one blob) or prefix (every blob under it; '' for all).")
        if (version_id or snapshot) and not name:
            raise RollbackError("version_id and snapshot belong to one blob: give name, not prefix.")
        if copy_timeout <= 0:
            raise RollbackError("copy_timeout must be more than 0 seconds.")
        self.service = service
        self.container_name = container
        self.container = service.get_container_client(container)
        self.name = name
        self.prefix = prefix
        self.as_of = parse_as_of(as_of) if as_of else None
        self.version_id = version_id
        self.snapshot = snapshot
        self.undelete = undelete
        self.use = "snapshots" if snapshot else ("versions" if version_id or undelete else use)
        self.copy_timeout = copy_timeout
        self.where = "container '%s' of %s" % (container, service.url.rstrip("/"))

    # -- reading ---------------------------------------------------------------------------
    def _histories(self):
        if self.undelete:
            # Soft-deleted snapshots are listed only with both; an account without versioning has only those.
            include = ["versions", "deleted", "snapshots"]
        else:
            include = ["snapshots"] if self.use == "snapshots" else ["versions", "deleted"]
        with storage_call("Listing the blobs of %s" % self.where):
            if not self.container.exists():
                raise RollbackError("The %s does not exist." % self.where)
            listing = self.container.list_blobs(name_starts_with=self.name or self.prefix or None, include=include)
            pieces = [Piece.from_blob_properties(item) for item in listing]
        histories = group_by_name(pieces)
        if self.name:
            if self.name not in histories:
                raise RollbackError("Blob '%s' does not exist in the %s (no current blob, version or snapshot)."
                                    % (self.name, self.where))
            return {self.name: histories[self.name]}
        return histories

    def _digest(self, piece):
        """MD5 of a piece's content, downloaded: for blobs stored without a Content-MD5."""
        client = self.container.get_blob_client(piece.name, snapshot=piece.snapshot)
        kwargs = {"version_id": piece.version_id} if piece.version_id and not piece.snapshot else {}
        digest = hashlib.md5()
        with storage_call("Reading blob '%s'" % piece.name):
            for chunk in client.download_blob(**kwargs).chunks():
                digest.update(chunk)
        return digest.digest()

    def _holds(self, current, source):
        verdict = same_content(current, source)
        if verdict is None:
            verdict = self._digest(current) == self._digest(source)
        return verdict

    # -- planning ----------------------------------------------------------------------------
    def plan(self):
        """[{name, action, source, before, reason}] for every blob; raises on bad input before any change."""
        histories = self._histories()
        plan = []
        for history in histories.values():
            current = history.current
            before = current.describe() if current else None
            # revived: the soft-deleted base blob Undelete Blob brings back (accounts without versioning).
            revived = next((p for p in history.soft_deleted if not p.version_id and not p.snapshot), None)
            entry = dict(name=history.name, before=before, source=None, reason=None, undelete=False,
                         promote=False, revived=revived)
            if self.undelete:
                entry["undelete"] = bool(history.soft_deleted)
                if current is None:
                    # After Undelete Blob the soft-deleted versions are back: the newest of all is promoted.
                    versions = sorted(history.versions() + history.versions(deleted=True), key=lambda p: p.time)
                    if versions:
                        entry["promote"] = True
                        entry["source"] = versions[-1]
                if entry["undelete"] or entry["promote"]:
                    entry["action"] = "undelete"
                elif current is None:
                    entry["action"], entry["reason"] = "skipped", "is deleted and has nothing soft-deleted to restore"
                else:
                    entry["action"] = "unchanged"
            else:
                source, reason = choose_source(history, self.use, self.as_of, self.version_id, self.snapshot)
                if source is None:
                    entry["action"], entry["reason"] = "skipped", reason
                elif current is not None and (source is current or self._holds(current, source)):
                    entry["action"], entry["source"] = "unchanged", source
                else:
                    entry["action"], entry["source"] = "restore", source
            if entry["action"] == "skipped" and self.name:
                raise RollbackError("Blob '%s' %s; nothing was changed." % (history.name, entry["reason"]),
                                    container=self.container_name, blob=history.name)
            plan.append(entry)
        return plan

    # -- acting ------------------------------------------------------------------------------
    def _copy_over(self, name, source):
        """Copy a version or snapshot over the base blob, wait for the copy to end; returns the new current blob."""
        blob = self.container.get_blob_client(name)
        query = "snapshot=%s" % source.snapshot if source.snapshot else "versionid=%s" % source.version_id
        what = "Copying %s of '%s' over the current blob" % (query.replace("=", " "), name)
        with storage_call(what, blob=name):
            copy = blob.start_copy_from_url("%s?%s" % (blob.url, query))
            status = copy.get("copy_status")
            deadline = time.monotonic() + self.copy_timeout
            while status == "pending":
                if time.monotonic() > deadline:
                    raise RollbackError("%s did not finish within %s s (copy id %s); it may still complete."
                                        % (what, self.copy_timeout, copy.get("copy_id")), blob=name)
                time.sleep(1)
                status = blob.get_blob_properties().copy.status
            if status != "success":
                raise RollbackError("%s ended with copy status %s." % (what, status), blob=name)
        return self._current(name)

    def _current(self, name):
        with storage_call("Reading blob '%s'" % name, blob=name):
            props = self.container.get_blob_client(name).get_blob_properties()
        return Piece(name, getattr(props, "version_id", None), None, True, False,
                     props.content_settings.content_md5, props.etag, props.size).describe()

    def run(self, check_mode=False):
        """Returns (changed, result)."""
        plan = self.plan()
        blobs = []
        for entry in plan:
            source = entry["source"]
            report = dict(name=entry["name"], action=entry["action"], reason=entry["reason"],
                          source=self._source_view(source), before=entry["before"], after=entry["before"])
            if entry["action"] == "undelete":
                report["undeleted"] = entry["undelete"]
                report["promoted"] = entry["promote"]
            if entry["action"] in ("restore", "undelete") and not check_mode:
                if entry["undelete"]:
                    with storage_call("Undeleting blob '%s'" % entry["name"], blob=entry["name"]):
                        self.container.get_blob_client(entry["name"]).undelete_blob()
                if entry["action"] == "restore" or entry["promote"]:
                    report["after"] = self._copy_over(entry["name"], source)
                elif entry["before"] is None:
                    report["after"] = self._current(entry["name"])  # the undeleted base blob
            elif entry["action"] in ("restore", "undelete"):
                if source:
                    report["after"] = dict(source.describe(), version_id=None, snapshot=None)
                elif entry["revived"]:
                    report["after"] = entry["revived"].describe()
            blobs.append(report)
        counts = {action: sum(1 for b in blobs if b["action"] == action)
                  for action in ("restore", "undelete", "unchanged", "skipped")}
        changed = bool(counts["restore"] or counts["undelete"])
        result = dict(
            container=self.container_name,
            mode="undelete" if self.undelete else self.use,
            as_of=iso(self.as_of),
            # "skipped" is reserved in Ansible results (it marks a skipped task): the counts live in their own dict.
            counts=dict(restored=counts["restore"], undeleted=counts["undelete"], unchanged=counts["unchanged"],
                        skipped=counts["skipped"]),
            blobs=blobs,
            before={b["name"]: b["before"] for b in blobs},
            after={b["name"]: b["after"] for b in blobs},
        )
        result["diff"] = dict(before=_diff_text(blobs, "before"), after=_diff_text(blobs, "after"))
        return changed, result

    def _source_view(self, source):
        if source is None:
            return None
        return dict(version_id=None if source.snapshot else source.version_id, snapshot=source.snapshot,
                    time=iso(source.time), content_md5=source.md5_b64, size=source.size)


def _diff_text(blobs, side):
    lines = []
    for blob in blobs:
        if blob["action"] not in ("restore", "undelete"):
            continue
        state = blob[side]
        if side == "after" and blob["source"]:
            source = blob["source"]
            origin = "snapshot %s" % source["snapshot"] if source["snapshot"] else "version %s" % source["version_id"]
            lines.append("%s: content of %s (md5 %s)" % (blob["name"], origin, source["content_md5"]))
        elif state:
            lines.append("%s: version %s (md5 %s)" % (blob["name"], state.get("version_id") or "current",
                                                      state.get("content_md5")))
        else:
            lines.append("%s: (deleted)" % blob["name"])
    return "\n".join(lines) + ("\n" if lines else "")
