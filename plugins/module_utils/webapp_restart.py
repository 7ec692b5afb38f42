# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restart one App Service slot, then wait until it answers again."""

from __future__ import annotations

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.health import HealthProbe, HealthProbeError
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle


def restart_and_wait(slots, slot, health_url=None, wait_timeout=300, check_mode=False):
    """Returns ``(changed, result)``.  A restart is an action: it always changes."""
    if wait_timeout <= 0:
        raise RollbackError("wait_timeout must be more than 0 seconds.")
    probe = None
    if health_url:
        # Built before the restart so a malformed URL fails before anything happens.
        try:
            probe = HealthProbe([health_url], samples=1, warmup_timeout=wait_timeout,
                                timeout=wait_timeout + 10, verify=ca_bundle())
        except HealthProbeError as error:
            raise RollbackError("health_url: %s" % error) from error
    before = slots.read_slot(slot)
    result = dict(slot=slot, answered_after_s=None, before=dict(state=before.state, image=before.image))
    if check_mode:
        result["after"] = result["before"]
        return True, result
    slots.restart(slot)
    if probe:
        outcome = probe.run()
        if not outcome.healthy:
            raise RollbackError("Slot '%s' was restarted but %s did not answer healthy within %s s: %s"
                                % (slot, health_url, wait_timeout, outcome.summary()), before=result["before"])
        result["answered_after_s"] = outcome.duration_s
    after = slots.read_slot(slot)
    result["after"] = dict(state=after.state, image=after.image)
    return True, result
