# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import hashlib
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_blob_versions import (
    BlobVersionRestore,
    History,
    Piece,
    choose_source,
    group_by_name,
    parse_as_of,
    parse_stamp,
    same_content,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

UTC = datetime.timezone.utc


def version(name, stamp, content=b"x", current=False, deleted=False):
    return Piece(name, version_id=stamp, is_current=current, deleted=deleted, content_md5=hashlib.md5(content).digest())


def snapshot(name, stamp, content=b"x"):
    return Piece(name, snapshot=stamp, content_md5=hashlib.md5(content).digest())


def history(*pieces):
    found = History(pieces[0].name)
    found.pieces.extend(pieces)
    return found


def test_parse_stamp_reads_seven_fraction_digits():
    assert parse_stamp("2026-11-23T14:14:26.8065770Z") == datetime.datetime(2026, 11, 23, 14, 14, 26, 806577, tzinfo=UTC)
    assert parse_stamp("2026-11-23T14:14:26Z") == datetime.datetime(2026, 11, 23, 14, 14, 26, tzinfo=UTC)
    assert parse_stamp("yesterday") is None


def test_parse_as_of_zones():
    assert parse_as_of("2026-11-23T18:00:00Z") == datetime.datetime(2026, 11, 23, 18, tzinfo=UTC)
    assert parse_as_of("2026-11-23T19:00:00+01:00") == datetime.datetime(2026, 11, 23, 18, tzinfo=UTC)
    assert parse_as_of("2026-11-23T18:00:00") == datetime.datetime(2026, 11, 23, 18, tzinfo=UTC)
    with pytest.raises(RollbackError, match="not an ISO 8601 time"):
        parse_as_of("an hour ago")


def test_as_of_picks_the_newest_version_at_or_before_the_time():
    blob = history(version("a", "2026-11-23T10:00:00.0000000Z"), version("a", "2026-11-23T12:00:00.0000000Z"),
                   version("a", "2026-11-23T14:00:00.0000000Z", current=True))
    source, reason = choose_source(blob, "versions", as_of=parse_as_of("2026-11-23T13:00:00Z"))
    assert (source.version_id, reason) == ("2026-11-23T12:00:00.0000000Z", None)
    exact, _unused = choose_source(blob, "versions", as_of=parse_as_of("2026-11-23T12:00:00Z"))
    assert exact is source


def test_as_of_before_the_first_version_is_reported():
    blob = history(version("a", "2026-11-23T10:00:00.0000000Z", current=True))
    source, reason = choose_source(blob, "versions", as_of=parse_as_of("2026-11-23T09:00:00Z"))
    assert source is None
    assert "no version at or before 2026-11-23T09:00:00" in reason and "oldest is 2026-11-23T10:00:00" in reason


def test_soft_deleted_versions_are_not_restore_sources():
    blob = history(version("a", "2026-11-23T10:00:00.0000000Z"), version("a", "2026-11-23T12:00:00.0000000Z", deleted=True))
    source, _unused = choose_source(blob, "versions", as_of=parse_as_of("2026-11-23T13:00:00Z"))
    assert source.version_id == "2026-11-23T10:00:00.0000000Z"


def test_snapshots_and_named_ids():
    blob = history(snapshot("a", "2026-11-23T10:00:00.0000000Z"), snapshot("a", "2026-11-23T11:00:00.0000000Z"),
                   version("a", "2026-11-23T12:00:00.0000000Z", current=True))
    by_time, _unused = choose_source(blob, "snapshots", as_of=parse_as_of("2026-11-23T11:30:00Z"))
    assert by_time.snapshot == "2026-11-23T11:00:00.0000000Z"
    named, _unused = choose_source(blob, "snapshots", snapshot="2026-11-23T10:00:00.0000000Z")
    assert named.snapshot == "2026-11-23T10:00:00.0000000Z"
    missing, reason = choose_source(blob, "versions", version_id="2020-01-01T00:00:00.0000000Z")
    assert missing is None and "has no version 2020-01-01" in reason and "2026-11-23T12:00:00" in reason


def test_same_content_by_md5():
    assert same_content(Piece("a", content_md5=b"1"), Piece("a", content_md5=b"1")) is True
    assert same_content(Piece("a", content_md5=b"1"), Piece("a", content_md5=b"2")) is False
    assert same_content(Piece("a"), Piece("a", content_md5=b"2")) is None  # unknown: compare the bytes
    assert same_content(None, Piece("a")) is False


def test_pieces_from_the_sdk_listing():
    def item(**kw):
        base = dict(name="a", snapshot=None, version_id=None, is_current_version=None, deleted=False, etag="e", size=1,
                    content_settings=SimpleNamespace(content_md5=bytearray(b"m")))
        base.update(kw)
        return SimpleNamespace(**base)

    plain = Piece.from_blob_properties(item())  # no versioning: the base blob is current
    assert plain.is_current and plain.content_md5 == b"m"
    old = Piece.from_blob_properties(item(version_id="2026-11-23T10:00:00.0000000Z"))
    assert not old.is_current
    snap = Piece.from_blob_properties(item(snapshot="2026-11-23T10:00:00.0000000Z"))
    assert not snap.is_current and snap.time == datetime.datetime(2026, 11, 23, 10, tzinfo=UTC)
    gone = Piece.from_blob_properties(item(deleted=True))
    assert not gone.is_current
    grouped = group_by_name([plain, old, Piece("b")])
    assert list(grouped) == ["a", "b"] and len(grouped["a"].pieces) == 2


class _NoService:
    url = "https://example.blob.core.windows.net/"

    def get_container_client(self, name):
        raise AssertionError("bad input must fail before any call")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="a"), "exactly one of as_of"),
    (dict(name="a", as_of="2026-11-23T10:00:00Z", undelete=True), "exactly one of as_of"),
    (dict(as_of="2026-11-23T10:00:00Z"), "either name"),
    (dict(name="a", prefix="p/", as_of="2026-11-23T10:00:00Z"), "either name"),
    (dict(prefix="p/", version_id="2026-11-23T10:00:00.0000000Z"), "give name, not prefix"),
    (dict(name="a", as_of="2026-11-23T10:00:00Z", copy_timeout=0), "copy_timeout"),
])
def test_bad_combinations_fail_before_any_call(kwargs, message):
    with pytest.raises(RollbackError, match=message):
        BlobVersionRestore(_NoService(), "c", **kwargs)


def test_hints_for_missing_history():
    blob = history(version("a", "2026-11-23T10:00:00.0000000Z", deleted=True), Piece("a", is_current=True))
    _none, reason = choose_source(blob, "versions", version_id="2026-11-23T10:00:00.0000000Z")
    assert "only soft-deleted: run with undelete=true first" in reason
    plain = history(Piece("a", is_current=True))
    _none, reason = choose_source(plain, "versions", as_of=parse_as_of("2026-11-23T10:00:00Z"))
    assert "is blob versioning on" in reason


# -- planning and acting against a small in-memory account (versioning on) ----------------------------
class FakeAccount:
    """Versions per blob name: [{"id", "data", "deleted", "md5"}]; the last live one flagged current."""

    url = "https://acct.blob.core.windows.net/"

    def __init__(self, blobs, store_md5=True):
        self.blobs = blobs
        self.store_md5 = store_md5
        self.calls = []
        self.clock = 0

    def get_container_client(self, name):
        return FakeContainer(self, name)


class FakeContainer:
    def __init__(self, account, name):
        self.account = account
        self.name = name

    def exists(self):
        return self.name == "c"

    def list_blobs(self, name_starts_with=None, include=None):
        for name, versions in sorted(self.account.blobs.items()):
            if not name.startswith(name_starts_with or ""):
                continue
            for entry in versions:
                if entry["deleted"] and "deleted" not in include:
                    continue
                md5 = hashlib.md5(entry["data"]).digest() if entry.get("md5", self.account.store_md5) else None
                yield SimpleNamespace(name=name, snapshot=None, version_id=entry["id"],
                                      is_current_version=entry.get("current", False), deleted=entry["deleted"],
                                      etag="e", size=len(entry["data"]),
                                      content_settings=SimpleNamespace(content_md5=md5))

    def get_blob_client(self, name, snapshot=None):
        return FakeBlob(self.account, name)


class FakeBlob:
    def __init__(self, account, name):
        self.account = account
        self.name = name
        self.url = "https://acct.blob.core.windows.net/c/" + name

    def _versions(self):
        return self.account.blobs[self.name]

    def download_blob(self, version_id=None):
        self.account.calls.append(("download", self.name, version_id))
        data = next(v["data"] for v in self._versions() if v["id"] == version_id)
        return SimpleNamespace(chunks=lambda: iter([data]))

    def start_copy_from_url(self, url):
        self.account.calls.append(("copy", self.name, url))
        version_id = url.split("versionid=")[1]
        data = next(v["data"] for v in self._versions() if v["id"] == version_id)
        for entry in self._versions():
            entry["current"] = False
        self.account.clock += 1
        self._versions().append({"id": "2026-11-24T00:00:0%d.0000000Z" % self.account.clock, "data": data,
                                 "deleted": False, "current": True})
        return {"copy_status": "success", "copy_id": "x"}

    def get_blob_properties(self):
        current = next(v for v in self._versions() if v.get("current"))
        md5 = hashlib.md5(current["data"]).digest() if self.account.store_md5 else None
        return SimpleNamespace(version_id=current["id"], etag="e", size=len(current["data"]),
                               content_settings=SimpleNamespace(content_md5=md5), copy=SimpleNamespace(status="success"))

    def undelete_blob(self):
        self.account.calls.append(("undelete", self.name))
        for entry in self._versions():
            entry["deleted"] = False


def _v(stamp, data, current=False, deleted=False):
    return {"id": "2026-11-23T%s:00:00.0000000Z" % stamp, "data": data, "current": current, "deleted": deleted}


def _account(**kwargs):
    return FakeAccount({
        "p/a": [_v("10", b"good"), _v("14", b"bad", current=True)],
        "p/b": [_v("10", b"same", current=True)],
        "p/new": [_v("15", b"late", current=True)],
        "q/gone": [_v("09", b"old"), _v("11", b"last", deleted=True)],
    }, **kwargs)


def test_check_mode_plans_and_changes_nothing():
    account = _account()
    changed, result = BlobVersionRestore(account, "c", prefix="p/", as_of="2026-11-23T12:00:00Z").run(check_mode=True)
    assert changed
    assert result["counts"] == {"restored": 1, "undeleted": 0, "unchanged": 1, "skipped": 1}
    actions = [(b["name"], b["action"]) for b in result["blobs"]]
    assert actions == [("p/a", "restore"), ("p/b", "unchanged"), ("p/new", "skipped")]
    assert result["blobs"][0]["source"]["version_id"] == "2026-11-23T10:00:00.0000000Z"
    assert "p/a: content of version 2026-11-23T10:00:00.0000000Z" in result["diff"]["after"]
    assert account.calls == []


def test_apply_then_again_is_unchanged():
    account = _account()
    job = BlobVersionRestore(account, "c", prefix="p/", as_of="2026-11-23T12:00:00Z")
    changed, result = job.run()
    assert changed and result["blobs"][0]["after"]["version_id"] == "2026-11-24T00:00:01.0000000Z"
    assert [c[0] for c in account.calls] == ["copy"]
    changed, result = BlobVersionRestore(account, "c", prefix="p/", as_of="2026-11-23T12:00:00Z").run()
    assert not changed and result["counts"]["unchanged"] == 2


def test_without_md5_the_content_is_compared():
    account = _account(store_md5=False)
    account.blobs["p/a"].append(_v("16", b"good"))
    for entry in account.blobs["p/a"][:-1]:
        entry["current"] = False
    account.blobs["p/a"][-1]["current"] = True
    changed, result = BlobVersionRestore(account, "c", name="p/a", as_of="2026-11-23T12:00:00Z").run()
    assert not changed and result["blobs"][0]["action"] == "unchanged"
    assert sorted(c[2] for c in account.calls if c[0] == "download") == ["2026-11-23T10:00:00.0000000Z",
                                                                         "2026-11-23T16:00:00.0000000Z"]


def test_undelete_restores_soft_deleted_versions_and_promotes_the_newest():
    account = _account()
    changed, result = BlobVersionRestore(account, "c", prefix="q/", undelete=True).run()
    assert changed and result["counts"]["undeleted"] == 1
    assert [c[0] for c in account.calls] == ["undelete", "copy"]
    assert account.calls[1][2].endswith("versionid=2026-11-23T11:00:00.0000000Z")
    changed, result = BlobVersionRestore(account, "c", prefix="q/", undelete=True).run()
    assert not changed


def test_unknown_container_blob_and_early_as_of_fail_before_any_change():
    account = _account()
    with pytest.raises(RollbackError, match="container 'x' .* does not exist"):
        BlobVersionRestore(account, "x", prefix="", as_of="2026-11-23T12:00:00Z").run()
    with pytest.raises(RollbackError, match="'p/zzz' does not exist"):
        BlobVersionRestore(account, "c", name="p/zzz", as_of="2026-11-23T12:00:00Z").run()
    with pytest.raises(RollbackError, match="no version at or before .* nothing was changed"):
        BlobVersionRestore(account, "c", name="p/new", as_of="2026-11-23T12:00:00Z").run()
    assert account.calls == []


class _ListingOnly:
    """An account whose container lists the given SDK-shaped items and must not be changed."""

    url = "https://acct.blob.core.windows.net/"

    def __init__(self, items):
        self.items = items
        self.included = None

    def get_container_client(self, name):
        account = self

        class Container:
            def exists(self):
                return True

            def list_blobs(self, name_starts_with=None, include=None):
                account.included = include
                return iter(account.items)

        return Container()


def test_undelete_without_versioning_undeletes_the_base_blob_only():
    def item(**kw):
        base = dict(name="a", snapshot=None, version_id=None, is_current_version=None, deleted=False, etag="e",
                    size=1, content_settings=SimpleNamespace(content_md5=b"m"))
        base.update(kw)
        return SimpleNamespace(**base)

    account = _ListingOnly([item(snapshot="2026-11-23T10:00:00.0000000Z", deleted=True), item(deleted=True),
                            item(name="b")])
    changed, result = BlobVersionRestore(account, "c", prefix="", undelete=True).run(check_mode=True)
    assert changed and "snapshots" in account.included
    first, second = result["blobs"]
    assert (first["action"], first["undeleted"], first["promoted"]) == ("undelete", True, False)
    assert first["before"] is None and first["after"]["content_md5"] == "bQ=="  # the base blob comes back
    assert second["action"] == "unchanged"
