# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The automatic-rollback freeze: after N automatic rollbacks in a row, a person must look.

``<dir>/<name>.freeze.json`` holds the automatic rollbacks recorded for a service
(``{"history": [{"at", "reason", "holder"}]}``). "In a row" means within ``window`` seconds of now
and since the last reset; ``check`` refuses once ``limit`` of them are recorded. Every
read-change-write runs under the same kind of flock as the file lock, and the file is replaced
atomically, so two runs recording at once both count.
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.rollback_lock import (
    DEFAULT_LOCK_DIR,
    GUARD_TIMEOUT_S,
    check_name,
    ensure_directory,
    exclusive_guard,
    iso,
    parse_time,
    utcnow,
    write_temporary,
)

DEFAULT_LIMIT = 3
DEFAULT_WINDOW_S = 86400
# Entries older than this many windows are dropped when the file is written, so it stays small.
KEEP_WINDOWS = 7


class RollbackFreeze:
    def __init__(self, name, directory=None, limit=DEFAULT_LIMIT, window=DEFAULT_WINDOW_S, now=utcnow,
                 guard_timeout=GUARD_TIMEOUT_S):
        self.name = check_name(name)
        if limit is None or limit < 1:
            raise RollbackError("limit must be at least 1, got %s." % (limit,))
        if window is None or window < 1:
            raise RollbackError("window must be at least 1 second, got %s." % (window,))
        self.limit = int(limit)
        self.window = int(window)
        self.directory = os.path.abspath(os.path.expanduser(directory or DEFAULT_LOCK_DIR))
        self.path = os.path.join(self.directory, "%s.freeze.json" % self.name)
        self.now = now
        self.guard_timeout = guard_timeout

    # -- state -----------------------------------------------------------------------------
    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise RollbackError("%s is not a readable freeze record (%s). Fix or delete it (a person resetting the "
                                "freeze)." % (self.path, error)) from None
        history = data.get("history") if isinstance(data, dict) else None
        if not isinstance(history, list):
            raise RollbackError("%s is not a freeze record (no history list)." % self.path)
        return [entry for entry in history if isinstance(entry, dict) and parse_time(entry.get("at"))]

    def _save(self, history):
        ensure_directory(self.directory)
        temporary = write_temporary(self.directory, json.dumps({"name": self.name, "history": history},
                                                               indent=1, sort_keys=True) + "\n")
        os.replace(temporary, self.path)

    def _in_window(self, history, now):
        start = now - datetime.timedelta(seconds=self.window)
        return [entry for entry in history if parse_time(entry["at"]) > start]

    def _result(self, history, now, **values):
        recent = self._in_window(history, now)
        result = {"name": self.name, "freeze_file": self.path, "limit": self.limit, "window": self.window,
                  "count": len(recent), "frozen": len(recent) >= self.limit,
                  "since": recent[0]["at"] if recent else None, "history": recent}
        result.update(values)
        return result

    def frozen_message(self, result):
        return ("%s is frozen: %d automatic rollbacks since %s (limit %d); a person must look. Reset with "
                "action=reset after the fix." % (self.name, result["count"], result["since"], self.limit))

    # -- actions ---------------------------------------------------------------------------
    def check(self):
        now = self.now()
        result = self._result(self._load(), now)
        if result["frozen"]:
            raise RollbackError(self.frozen_message(result), changed=False, **result)
        return False, result

    def record(self, reason=None, holder=None, check_mode=False):
        """Append one automatic rollback (always a change: each call is one more rollback)."""
        now = self.now()
        entry = {"at": iso(now), "reason": reason or None, "holder": holder or None}
        if check_mode:
            history = self._load()
            before = self._result(history, now)
            return True, self._result(history + [entry], now, recorded=entry, before=_counts(before),
                                      after=_counts(self._result(history + [entry], now)))
        with exclusive_guard(self.directory, ".%s.freeze.guard" % self.name, self.guard_timeout,
                             "the freeze of %s" % self.name):
            history = self._load()
            before = self._result(history, now)
            keep_from = now - datetime.timedelta(seconds=self.window * KEEP_WINDOWS)
            history = [item for item in history if parse_time(item["at"]) > keep_from] + [entry]
            self._save(history)
        after = self._result(history, now, recorded=entry)
        after["before"], after["after"] = _counts(before), _counts(after)
        return True, after

    def reset(self, check_mode=False):
        """Clear the history (a verified healthy deploy, or a person after the fix)."""
        now = self.now()
        if check_mode:
            history = self._load()
            result = self._result([], now, cleared=len(history))
            result["before"], result["after"] = _counts(self._result(history, now)), _counts(result)
            return bool(history), result
        with exclusive_guard(self.directory, ".%s.freeze.guard" % self.name, self.guard_timeout,
                             "the freeze of %s" % self.name):
            history = self._load()
            if history:
                self._save([])
        result = self._result([], now, cleared=len(history))
        result["before"], result["after"] = _counts(self._result(history, now)), _counts(result)
        return bool(history), result


def _counts(result):
    return {"count": result["count"], "frozen": result["frozen"]}
