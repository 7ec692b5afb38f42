# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The slot swap procedure: decide by desired state, predict, act, wait, verify.

The desired state is "``target`` runs build ``expected_build``".  A swap is
made only when the target does not run it and the source does, so running
the same task twice never swaps the old build back in: the failure mode of
``az webapp deployment slot swap`` and ``azure_rm_webappslot`` in a re-run.
"""

from __future__ import annotations

import copy

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import build_matches
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import wait_for_operation

ACTIONS = ("swap", "preview", "complete", "reset")

# What moves with a slot's content when two slots swap.
CONTENT_FIELDS = ("image", "deployment_id", "version_setting", "fingerprint")


class SlotSwap:
    """One swap request against an AppServiceSlots."""

    def __init__(self, slots, source, target, action="swap", expected_build=None,
                 wait=True, wait_timeout=900, check_mode=False, polling_interval=2, source_check=None):
        if action not in ACTIONS:
            raise RollbackError("action must be one of %s" % ", ".join(ACTIONS))
        if source == target:
            raise RollbackError("The source slot and the target slot are both '%s': a slot cannot swap with itself." % source)
        if wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        self.slots = slots
        self.source = source
        self.target = target
        self.action = action
        self.expected_build = expected_build
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.check_mode = check_mode
        self.polling_interval = polling_interval
        # Probes the build in the source slot right before a swap (a SourceHealthCheck); None: no probe.
        self.source_check = source_check
        self.source_health = None
        self.warnings = []

    # ---- the procedure -----------------------------------------------------

    def run(self):
        """Returns ``(changed, result)``; raises RollbackError before any change on bad input."""
        # read_slots fails with the list of existing slots when one is missing,
        # so no separate existence check (one ARM round trip fewer per run).
        self._refuse_sticky_fingerprint()
        before = self.slots.read_slots([self.source, self.target])
        handler = getattr(self, "_" + self.action)
        changed, after, operation = handler(before)
        result = dict(
            before=_as_dicts(before),
            after=_as_dicts(after),
            operation=operation,
            swapped=bool(changed and self.action in ("swap", "complete")),
            warnings=self.warnings,
            source_health=self.source_health,
            diff=dict(
                before=_diff_view(before),
                after=_diff_view(after),
                before_header="%s slots before" % self.slots.app,
                after_header="%s slots after" % self.slots.app,
            ),
        )
        return changed, result

    def _swap(self, before):
        source, target = before[self.source], before[self.target]
        if source.target_swap_slot and source.target_swap_slot != self.target:
            raise RollbackError(
                "Slot '%s' has a swap with preview pending into '%s'; complete or reset it before swapping into '%s'."
                % (self.source, source.target_swap_slot, self.target)
            )
        if not self._swap_needed(source, target):
            return False, before, self._operation("none")
        return self._perform_swap(before)

    def _complete(self, before):
        source, target = before[self.source], before[self.target]
        if source.target_swap_slot != self.target:
            if self.expected_build and build_matches(target.fingerprint, self.expected_build):
                return False, before, self._operation("none")
            raise RollbackError(
                "No swap with preview of '%s' into '%s' is pending: start one with action=preview."
                % (self.source, self.target)
            )
        if not self._swap_needed(source, target):
            return False, before, self._operation("none")
        return self._perform_swap(before)

    def _preview(self, before):
        source, target = before[self.source], before[self.target]
        if source.target_swap_slot == self.target:
            return False, before, self._operation("none")
        if source.target_swap_slot:
            raise RollbackError(
                "Slot '%s' already has a swap with preview pending into '%s'; reset it first."
                % (self.source, source.target_swap_slot)
            )
        if self.expected_build and build_matches(target.fingerprint, self.expected_build):
            return False, before, self._operation("none")
        self._swap_needed(source, target)  # same checks: the build must be somewhere
        after = copy.deepcopy(before)
        after[self.source].target_swap_slot = self.target
        if self.check_mode:
            return True, after, self._operation("apply_slot_config", status="predicted")
        self.slots.apply_preview(self.source, self.target)
        return True, self.slots.read_slots([self.source, self.target]), self._operation("apply_slot_config", status="Succeeded")

    def _reset(self, before):
        if not before[self.source].target_swap_slot:
            return False, before, self._operation("none")
        after = copy.deepcopy(before)
        after[self.source].target_swap_slot = None
        if self.check_mode:
            return True, after, self._operation("reset_slot_config", status="predicted")
        self.slots.reset_preview(self.source)
        return True, self.slots.read_slots([self.source, self.target]), self._operation("reset_slot_config", status="Succeeded")

    # ---- decisions ---------------------------------------------------------

    def _swap_needed(self, source, target):
        if self.expected_build:
            if build_matches(target.fingerprint, self.expected_build):
                return False
            if build_matches(source.fingerprint, self.expected_build):
                return True
            raise RollbackError(
                "No slot runs build '%s': '%s' runs %s and '%s' runs %s (fingerprint: %s). Nothing was changed."
                % (self.expected_build, self.target, _show(target.fingerprint), self.source,
                   _show(source.fingerprint), self.slots.fingerprint)
            )
        for state in (source, target):
            if state.fingerprint is None:
                raise RollbackError(
                    "Slot '%s' has no %s to identify its build; choose another fingerprint "
                    "(image, deployment_id or app_setting). Nothing was changed." % (state.slot, self.slots.fingerprint)
                )
        if source.fingerprint == target.fingerprint:
            return False
        self.warnings.append(
            "No expected_build was given, so this swap is not idempotent: running it again swaps back. "
            "Set expected_build to the build '%s' must run (%s)." % (self.target, source.fingerprint)
        )
        return True

    def _refuse_sticky_fingerprint(self):
        if self.slots.fingerprint != "app_setting":
            return
        if self.slots.fingerprint_setting in self.slots.sticky_setting_names():
            raise RollbackError(
                "The app setting '%s' is slot-specific (sticky), so it stays with its slot during a swap and cannot "
                "identify a build. Use a non-sticky setting, or fingerprint image or deployment_id."
                % self.slots.fingerprint_setting
            )

    def _refuse_unhealthy_source(self, before):
        """Never swap in a build that is unhealthy in its own slot: it would not help production.

        Probed only when a swap is about to happen (a re-run that finds the target already right
        probes nothing), and in check mode too, so the plan predicts the refusal.
        """
        if self.source_check is None:
            return
        self.source_health = self.source_check.run()
        if not self.source_health["healthy"]:
            raise RollbackError(
                "Not swapping: the build in slot '%s' (%s) is unhealthy there too (%s). Swapping it in would not help. "
                "Nothing was changed: '%s' still runs %s."
                % (self.source, _show(before[self.source].fingerprint), self.source_health["verdict"]["summary"],
                   self.target, _show(before[self.target].fingerprint)),
                source_health=self.source_health, before=_as_dicts(before),
            )

    # ---- acting ------------------------------------------------------------

    def _perform_swap(self, before):
        self._refuse_unhealthy_source(before)
        predicted = _exchange_content(before, self.source, self.target)
        if self.check_mode:
            return True, predicted, self._operation("slotsswap", status="predicted")
        poller = self.slots.begin_swap(self.source, self.target, polling_interval=self.polling_interval)
        if not self.wait:
            self.warnings.append("wait=false: the swap was started and is still running; 'after' is the prediction.")
            return True, predicted, self._operation("slotsswap", status=poller.status())
        what = "The swap of '%s' into '%s' on %s" % (self.source, self.target, self.slots.app)
        try:
            with arm_call(what):
                progress = wait_for_operation(poller, self.wait_timeout, what)
        except RollbackError as error:
            self._raise_with_current_state(error, before)
        after = self.slots.read_slots([self.source, self.target])
        self._verify(before, after)
        return True, after, self._operation("slotsswap", status="Succeeded", progress=progress)

    def _verify(self, before, after):
        """The swap reported success; check the target really runs the source's build now."""
        moved = before[self.source].fingerprint
        landed = after[self.target].fingerprint
        if moved != landed:
            raise RollbackError(
                "The swap reported success, but '%s' runs %s instead of %s." % (self.target, _show(landed), _show(moved)),
                before=_as_dicts(before), after=_as_dicts(after),
            )

    def _raise_with_current_state(self, error, before):
        """A failed or timed-out swap: say what the slots run now, which is what the on-call needs next."""
        try:
            now = self.slots.read_slots([self.source, self.target])
        except RollbackError:
            now = None
        details = dict(error.details, before=_as_dicts(before), after=_as_dicts(now) if now else None)
        if now:
            message = "%s Now '%s' runs %s and '%s' runs %s." % (
                error.message, self.target, _show(now[self.target].fingerprint),
                self.source, _show(now[self.source].fingerprint))
        else:
            message = error.message + " The slots' state could not be read afterwards."
        raise RollbackError(message, **details) from error

    def _operation(self, kind, status="none", progress=None):
        return dict(
            action=self.action,
            kind=kind,
            source_slot=self.source,
            target_slot=self.target,
            expected_build=self.expected_build,
            fingerprint=self.slots.fingerprint,
            status=status,
            progress=progress or [],
        )


def _exchange_content(states, source, target):
    """The slots as they will be after a swap: content moves, host names and sticky settings stay."""
    after = copy.deepcopy(states)
    for name in CONTENT_FIELDS:
        source_value = getattr(states[source], name)
        setattr(after[source], name, getattr(states[target], name))
        setattr(after[target], name, source_value)
    after[source].target_swap_slot = None
    return after


def _as_dicts(states):
    return {name: state.to_dict() for name, state in (states or {}).items()}


def _diff_view(states):
    return {name: {"build": state.fingerprint, "pending_preview_into": state.target_swap_slot}
            for name, state in states.items()}


def _show(value):
    return "'%s'" % value if value is not None else "nothing identifiable"


class SourceHealthCheck:
    """The source slot's health probe (module_utils/health.py's HealthProbe), built before any call.

    health.py (and httpx with it) is imported only when a probe is asked for, so a swap
    without one loads nothing more than before. Bad probe options raise RollbackError here,
    before the slots are read or anything is changed. start() runs it beside the slot reads
    (its samples are seconds apart by design; the reads need not wait for them); SlotSwap
    asks for the result only when a swap is about to happen.
    """

    def __init__(self, url, samples=2, interval=0.5, body_match=None, verify=True, timeout=None, transport=None):
        from ansible_collections.sre.rollback.plugins.module_utils import health

        if health.HTTPX_IMPORT_ERROR:
            raise RollbackError("source_health_url needs the httpx Python library. Nothing was changed.")
        try:
            self.probe = health.HealthProbe(
                url,
                samples=samples,
                interval=interval,
                body_match=body_match,
                verify=verify,
                # Room for every sample and a slow answer, but bounded: the rollback must not hang on it.
                timeout=timeout if timeout is not None else max(samples - 1, 0) * interval + 15,
                transport=transport,
            )
        except health.HealthProbeError as error:
            raise RollbackError("Invalid source slot probe, nothing was changed: %s" % error, errors=error.errors) from None

        self._thread = None
        self._outcome = None

    def start(self):
        """Begin probing in the background, so the probe's samples overlap the sign-in and the slot reads."""
        import threading

        def probe():
            try:
                self._outcome = ("result", self.probe.run().to_dict())
            except Exception as error:  # pylint: disable=broad-except
                self._outcome = ("error", error)

        self._thread = threading.Thread(target=probe, name="source-health", daemon=True)
        self._thread.start()
        return self

    def run(self):
        """The probe's result: the one started in the background, else a probe now."""
        if self._thread is None:
            return self.probe.run().to_dict()
        self._thread.join()
        kind, value = self._outcome
        if kind == "error":
            raise value
        return value
