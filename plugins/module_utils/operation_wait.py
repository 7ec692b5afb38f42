# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Wait for an Azure long-running operation with a deadline, keeping a progress log."""

from __future__ import annotations

import time

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

# A poller is asked for news at least this often, so the progress log shows
# the operation moving even when the service asks for long Retry-After waits.
PROGRESS_EVERY_S = 5.0


class OperationTimeout(RollbackError):
    """The operation did not end before the deadline; it may still be running."""


def wait_for_operation(poller, timeout_s, what):
    """Block until ``poller`` finishes or ``timeout_s`` passes.

    Returns the progress log (status changes with elapsed seconds).  Raises
    OperationTimeout on the deadline; the operation's own failure surfaces as
    the azure-core exception, for the caller's ``arm_call`` to word.
    """
    started = time.monotonic()
    progress = []
    last_status = None
    while True:
        status = poller.status()
        elapsed = round(time.monotonic() - started, 2)
        if status != last_status:
            progress.append({"elapsed_s": elapsed, "status": status})
            last_status = status
        if poller.done():
            break
        remaining = timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            raise OperationTimeout(
                "%s did not finish within %s s (last status: %s); it may still be running in Azure."
                % (what, timeout_s, status),
                progress=progress,
            )
        poller.wait(min(PROGRESS_EVERY_S, remaining))
    poller.result()  # raises the operation's failure, if it failed
    # The status read in the loop can predate the end (the poller finished
    # between status() and done()): record the final one, once.
    final = poller.status()
    if final != last_status:
        progress.append({"elapsed_s": round(time.monotonic() - started, 2), "status": final})
    return progress
