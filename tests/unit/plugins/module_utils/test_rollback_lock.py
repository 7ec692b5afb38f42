# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import json
import multiprocessing
import os

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.rollback_freeze import RollbackFreeze
from ansible_collections.sre.rollback.plugins.module_utils.rollback_lock import (
    FileLockStore,
    LeaseLockStore,
    LockRecord,
    RollbackLock,
    _ansible_playbook_pid,
    default_holder,
    lease_id_for,
    micro_time,
    parse_time,
)

T0 = datetime.datetime(2026, 12, 6, 17, 0, 0, tzinfo=datetime.timezone.utc)


class Clock:
    def __init__(self, moment=T0):
        self.moment = moment

    def __call__(self):
        return self.moment

    def advance(self, seconds):
        self.moment += datetime.timedelta(seconds=seconds)


def file_lock(tmp_path, holder, clock, ttl=60, reason="P1 rollback of backend", name="fundrbolt-api-production"):
    return RollbackLock(FileLockStore(str(tmp_path), name), name, holder, ttl=ttl, reason=reason, now=clock)


# ----------------------------------------------------------------------------- file lock
def test_acquire_creates_the_record_and_a_second_acquire_changes_nothing(tmp_path):
    clock = Clock()
    changed, result = file_lock(tmp_path, "ops@a:1", clock).acquire()
    assert changed and result["acquired"]
    assert result["expires_at"] == "2026-12-06T17:01:00Z"
    record = json.loads((tmp_path / "fundrbolt-api-production.lock").read_text())
    assert record == {"holder": "ops@a:1", "reason": "P1 rollback of backend", "acquired_at": "2026-12-06T17:00:00Z",
                      "expires_at": "2026-12-06T17:01:00Z"}
    clock.advance(30)
    changed, again = file_lock(tmp_path, "ops@a:1", clock).acquire()
    assert not changed and again["acquired"]
    assert again["expires_at"] == "2026-12-06T17:01:00Z"  # re-acquiring does not renew


def test_a_live_lock_of_someone_else_is_refused_naming_the_holder(tmp_path):
    clock = Clock()
    file_lock(tmp_path, "ops@a:1", clock).acquire()
    before = (tmp_path / "fundrbolt-api-production.lock").read_text()
    with pytest.raises(RollbackError) as caught:
        file_lock(tmp_path, "ops@b:2", clock, reason="other").acquire()
    assert caught.value.message == (
        "lock fundrbolt-api-production is held by ops@a:1 since 2026-12-06T17:00:00Z (reason: P1 rollback of backend); "
        "expires 2026-12-06T17:01:00Z. Wait, or release it with state=released force=true if that run is dead.")
    assert caught.value.details["held_by"] == "ops@a:1"
    assert (tmp_path / "fundrbolt-api-production.lock").read_text() == before


def test_an_expired_lock_is_taken_over_and_says_from_whom(tmp_path):
    clock = Clock()
    file_lock(tmp_path, "ops@a:1", clock).acquire()
    clock.advance(60)
    changed, result = file_lock(tmp_path, "ops@b:2", clock).acquire()
    assert changed and result["taken_over_from"] == "ops@a:1"
    assert json.loads((tmp_path / "fundrbolt-api-production.lock").read_text())["holder"] == "ops@b:2"


def test_check_mode_writes_nothing(tmp_path):
    changed, result = file_lock(tmp_path / "missing", "ops@a:1", Clock()).acquire(check_mode=True)
    assert changed and not result["acquired"]
    assert not (tmp_path / "missing").exists()


def test_release_own_free_and_someone_elses(tmp_path):
    clock = Clock()
    file_lock(tmp_path, "ops@a:1", clock).acquire()
    with pytest.raises(RollbackError, match="held by ops@a:1 .* not by ops@b:2: refusing"):
        file_lock(tmp_path, "ops@b:2", clock).release()
    assert (tmp_path / "fundrbolt-api-production.lock").exists()
    changed, result = file_lock(tmp_path, "ops@b:2", clock).release(force=True)
    assert changed and result["forced"] and result["held_by"] == "ops@a:1"
    assert not (tmp_path / "fundrbolt-api-production.lock").exists()
    changed, result = file_lock(tmp_path, "ops@b:2", clock).release()
    assert not changed and result["released"] is False


def test_bad_name_and_ttl_are_refused_before_anything(tmp_path):
    with pytest.raises(RollbackError, match="cannot name a lock"):
        file_lock(tmp_path, "ops@a:1", Clock(), name="../etc/passwd")
    with pytest.raises(RollbackError, match="ttl must be at least 1"):
        file_lock(tmp_path, "ops@a:1", Clock(), ttl=0)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_lock_file_is_a_clear_error(tmp_path):
    (tmp_path / "svc.lock").write_text("{not json")
    with pytest.raises(RollbackError, match="svc.lock is not a readable lock record"):
        file_lock(tmp_path, "ops@a:1", Clock(), name="svc").acquire()


def _contend(directory, holder, start, results):
    start.wait()
    lock = RollbackLock(FileLockStore(directory, "svc"), "svc", holder, ttl=60)
    try:
        results.put((holder, lock.acquire()[1]["acquired"]))
    except RollbackError as error:
        results.put((holder, error.message))


def test_eight_processes_at_once_exactly_one_wins(tmp_path):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_contend, args=(str(tmp_path), "h%d" % i, start, results)) for i in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=30) for _worker in workers)
    for worker in workers:
        worker.join(10)
    winners = [holder for holder, outcome in outcomes.items() if outcome is True]
    assert len(winners) == 1
    assert all("is held by %s" % winners[0] in outcome for outcome in outcomes.values() if outcome is not True)


# ------------------------------------------------------------------------------ holder
def test_default_holder_prefers_the_awx_job(monkeypatch):
    assert default_holder({"JOB_ID": "4411"}).endswith(":job-4411")
    assert default_holder({"AWX_JOB_ID": "7"}).endswith(":job-7")


def test_the_outermost_ansible_playbook_is_the_run(tmp_path):
    # A fake /proc: python (40) <- sh (30) <- worker fork (20) <- ansible-playbook (10) <- bash (5) <- init
    chain = {40: ("python3", 30), 30: ("/bin/sh", 20), 20: ("/usr/bin/python3\0/venv/bin/ansible-playbook", 10),
             10: ("/usr/bin/python3\0/venv/bin/ansible-playbook", 5), 5: ("bash", 1)}
    for pid, (cmdline, ppid) in chain.items():
        os.makedirs(tmp_path / str(pid))
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline.encode() + b"\0site.yml\0")
        (tmp_path / str(pid) / "stat").write_text("%d (a (weird) name) S %d 1 1" % (pid, ppid))
    assert _ansible_playbook_pid(str(tmp_path), start=40) == 10
    # A playbook started by a task of another playbook (bash 5 <- shell 4 <- worker 3 <- ansible-playbook 2) is its own run.
    chain = {5: ("bash", 4), 4: ("/bin/sh", 3), 3: ("/venv/bin/ansible-playbook", 2), 2: ("/venv/bin/ansible-playbook", 1)}
    for pid, (cmdline, ppid) in chain.items():
        os.makedirs(tmp_path / str(pid), exist_ok=True)
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline.encode() + b"\0")
        (tmp_path / str(pid) / "stat").write_text("%d (x) S %d 1 1" % (pid, ppid))
    assert _ansible_playbook_pid(str(tmp_path), start=40) == 10


def test_lease_id_is_stable_per_holder():
    assert lease_id_for("ops@a:1") == lease_id_for("ops@a:1") != lease_id_for("ops@a:2")


# ----------------------------------------------------------------------- Lease (fake API)
class FakeRest:
    """The few Lease calls the store makes, with resourceVersion checks as the API server does them."""

    def __init__(self):
        self.lease = None
        self.rv = 0
        self.calls = []
        self.steal_before_put = None

    def _error(self, status):
        return FakeError(status)

    def get(self, path, what=None):
        self.calls.append("GET")
        if self.lease is None:
            raise self._error(404)
        return json.loads(json.dumps(self.lease))

    def post(self, path, body, what=None):
        self.calls.append("POST")
        if self.lease is not None:
            raise self._error(409)
        self.rv += 1
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.lease = body

    def put(self, path, body, what=None):
        self.calls.append("PUT")
        if self.steal_before_put:
            self.lease["spec"]["holderIdentity"] = self.steal_before_put
            self.rv += 1
            self.lease["metadata"]["resourceVersion"] = str(self.rv)
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise self._error(409)
        self.rv += 1
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.lease = body

    def request(self, method, path, body=None, what=None):
        self.calls.append(method)
        if body["preconditions"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise self._error(409)
        self.lease = None


class FakeError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


def lease_lock(rest, holder, clock, ttl=60):
    return RollbackLock(LeaseLockStore(rest, "mystira", "mystira-production", FakeError), "mystira-production",
                        holder, ttl=ttl, reason="P1", now=clock)


def test_lease_acquire_writes_micro_times_and_a_second_holder_is_refused():
    rest, clock = FakeRest(), Clock()
    changed, _result = lease_lock(rest, "awx-job-1", clock).acquire()
    spec = rest.lease["spec"]
    assert changed and spec["holderIdentity"] == "awx-job-1" and spec["leaseDurationSeconds"] == 60
    assert spec["acquireTime"] == spec["renewTime"] == "2026-12-06T17:00:00.000000Z"
    assert rest.lease["metadata"]["annotations"]["sre.rollback/reason"] == "P1"
    with pytest.raises(RollbackError, match="held by awx-job-1 since 2026-12-06T17:00:00Z .*expires 2026-12-06T17:01:00Z"):
        lease_lock(rest, "awx-job-2", clock).acquire()


def test_lease_take_over_counts_a_transition_and_a_lost_race_names_the_winner():
    rest, clock = FakeRest(), Clock()
    lease_lock(rest, "awx-job-1", clock).acquire()
    clock.advance(61)
    changed, result = lease_lock(rest, "awx-job-2", clock).acquire()
    assert changed and result["taken_over_from"] == "awx-job-1"
    assert rest.lease["spec"]["leaseTransitions"] == 1
    clock.advance(61)
    rest.steal_before_put = "awx-job-9"
    with pytest.raises(RollbackError, match="lost the race for an expired lock: lock mystira-production is held by awx-job-9"):
        lease_lock(rest, "awx-job-3", clock).acquire()


def test_lease_release_uses_the_resource_version_precondition():
    rest, clock = FakeRest(), Clock()
    lease_lock(rest, "awx-job-1", clock).acquire()
    changed, _result = lease_lock(rest, "awx-job-1", clock).release()
    assert changed and rest.lease is None and rest.calls[-1] == "DELETE"
    changed, _result = lease_lock(rest, "awx-job-1", clock).release()
    assert not changed


def test_a_lease_without_holder_is_free():
    assert LeaseLockStore.record_of({"spec": {"holderIdentity": ""}}) is None
    record = LeaseLockStore.record_of({"spec": {"holderIdentity": "x", "renewTime": "2026-12-06T17:00:00.123456Z",
                                                "leaseDurationSeconds": 10}})
    assert record.expires_at == parse_time("2026-12-06T17:00:10.123456Z")


def test_times():
    assert micro_time(T0) == "2026-12-06T17:00:00.000000Z"
    assert parse_time("2026-12-06T17:00:00.1234567Z") == T0.replace(microsecond=123456)
    assert parse_time("garbage") is None
    assert LockRecord("h", T0, T0).expired(T0)


# ------------------------------------------------------------------------------ freeze
def test_freeze_counts_in_a_row_and_refuses_the_limit(tmp_path):
    clock = Clock()
    freeze = RollbackFreeze("fundrbolt-api-production", str(tmp_path), limit=3, window=3600, now=clock)
    assert freeze.check()[1]["count"] == 0
    for number in range(1, 4):
        changed, result = freeze.record(reason="error_rate", holder="awx-job-%d" % number)
        assert changed and result["count"] == number
        clock.advance(60)
    assert result["frozen"]
    with pytest.raises(RollbackError) as caught:
        freeze.check()
    assert caught.value.message == (
        "fundrbolt-api-production is frozen: 3 automatic rollbacks since 2026-12-06T17:00:00Z (limit 3); a person "
        "must look. Reset with action=reset after the fix.")
    clock.advance(3510)  # now 18:01:30: the rollbacks of 17:00 and 17:01 leave the one-hour window
    assert freeze.check()[1]["count"] == 1


def test_freeze_check_mode_and_reset(tmp_path):
    clock = Clock()
    freeze = RollbackFreeze("svc", str(tmp_path), limit=2, window=3600, now=clock)
    changed, result = freeze.record(check_mode=True)
    assert changed and result["count"] == 1 and not (tmp_path / "svc.freeze.json").exists()
    freeze.record()
    freeze.record()
    changed, result = freeze.reset(check_mode=True)
    assert changed and result["cleared"] == 2 and freeze._result(freeze._load(), clock())["count"] == 2
    changed, result = freeze.reset()
    assert changed and result["count"] == 0 and result["before"] == {"count": 2, "frozen": True}
    assert freeze.reset() == (False, freeze.reset()[1])


def test_freeze_bad_input(tmp_path):
    with pytest.raises(RollbackError, match="limit must be at least 1"):
        RollbackFreeze("svc", str(tmp_path), limit=0)
    with pytest.raises(RollbackError, match="cannot name a lock"):
        RollbackFreeze("Bad Name", str(tmp_path))
