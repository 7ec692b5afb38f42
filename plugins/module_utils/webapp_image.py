# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make one App Service slot run a given container image, idempotently."""

from __future__ import annotations

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError


def ensure_image(slots, slot, image, restart=False, check_mode=False):
    """Set ``slot`` to ``image`` unless it runs it already; returns ``(changed, result)``.

    ``slots`` is an AppServiceSlots built with the ``image`` fingerprint.
    """
    if not image or any(ch.isspace() for ch in image) or "|" in image:
        raise RollbackError("image must be a container image reference such as myacr.azurecr.io/api:1.4.2, not %r." % image)
    before = slots.read_slot(slot)  # fails clearly, listing the slots, when it does not exist
    result = dict(before=dict(image=before.image), after=dict(image=image), slot=slot, restarted=False,
                  diff=dict(before="image: %s\n" % before.image, after="image: %s\n" % image))
    if before.image == image:
        result["after"] = dict(image=before.image)
        result["diff"]["after"] = result["diff"]["before"]
        return False, result
    if check_mode:
        result["restarted"] = restart
        return True, result
    slots.set_image(slot, image)
    if restart:
        slots.restart(slot)
        result["restarted"] = True
    now = slots.read_slot(slot)
    if now.image != image:
        raise RollbackError("Slot '%s' was set to %s but reports %s." % (slot, image, now.image), before=result["before"])
    result["after"] = dict(image=now.image)
    return True, result
