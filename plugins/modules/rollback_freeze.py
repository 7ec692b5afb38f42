#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback_freeze
short_description: Count automatic rollbacks in a row per service and freeze after too many
version_added: 0.1.0
description:
  - The pre-rollback checklist's "refuse the N-th automatic rollback in a row and freeze". A service that an
    automatic rollback had to rescue O(limit) times within O(window) is broken in a way another rollback will not
    fix; from then on an automatic run stops before acting, and a person must look.
  - O(action=check) fails with a message a person can act on when the count has reached O(limit), and changes
    nothing. Run it before an automatic rollback acts.
  - O(action=record) appends one automatic rollback (with O(reason) and O(holder)); run it after an automatic
    rollback. Each call is one more rollback, so it always reports a change; it does not fail when the count
    reaches the limit (RV(frozen) says so), the next O(action=check) does.
  - O(action=reset) clears the count, after a verified healthy deploy or when a person has fixed the cause.
  - The count lives in C(<path>/<name>.freeze.json) on the machine the task runs on (run it on the controller).
    Every change runs under an C(flock) and replaces the file atomically, so two runs recording at the same time
    are both counted. Under AWX the directory must be on a persistent volume that every job of the service sees,
    or every job starts from zero and the freeze never happens.
author:
  - sre.rollback maintainers (@sre-rollback)
attributes:
  check_mode:
    support: full
    description: O(action=record) and O(action=reset) report the count they would leave and write nothing.
  diff_mode:
    support: none
    description: The result carries the count as RV(before) and RV(after) instead.
options:
  name:
    description:
      - The service, for example V(fundrbolt-api-production); the same naming rule as M(sre.rollback.rollback_lock)
        (lower-case letters, digits, V(-) and V(.)).
    type: str
    required: true
  action:
    description: V(check) refuses when frozen, V(record) counts one automatic rollback, V(reset) clears the count.
    type: str
    choices: [check, record, reset]
    default: check
  limit:
    description: How many automatic rollbacks in a row freeze the service.
    type: int
    default: 3
  window:
    description:
      - Seconds within which automatic rollbacks count as "in a row". Older ones no longer count (and are
        dropped from the file after seven windows).
    type: int
    default: 86400
  path:
    description: The directory of the freeze files, created (mode 0700) if missing; the lock directory by default.
    type: path
    default: ~/.sre-rollback/locks
  reason:
    description: With O(action=record), why the rollback happened (the trigger that fired, for example).
    type: str
  holder:
    description: With O(action=record), the run that rolled back (the lock holder, an AWX job).
    type: str
seealso:
  - module: sre.rollback.rollback_lock
  - module: sre.rollback.rollback_trigger
"""

EXAMPLES = r"""
- name: Refuse a 4th automatic rollback of the day; a person must look
  sre.rollback.rollback_freeze:
    name: fundrbolt-api-production
    action: check
    limit: 3
  delegate_to: localhost
  run_once: true
  when: rollback_automatic | bool

# ... the automatic rollback ...

- name: Count the automatic rollback just done
  sre.rollback.rollback_freeze:
    name: fundrbolt-api-production
    action: record
    reason: "{{ trigger_result.fired | map(attribute='name') | join(', ') }}"
    holder: "{{ rollback_lock.holder }}"
  delegate_to: localhost
  run_once: true

- name: After the fix, and a deploy that verified healthy, start counting from zero
  sre.rollback.rollback_freeze:
    name: fundrbolt-api-production
    action: reset
  delegate_to: localhost
"""

RETURN = r"""
name:
  description: The service.
  returned: always
  type: str
freeze_file:
  description: The freeze file.
  returned: always
  type: str
  sample: /home/ops/.sre-rollback/locks/fundrbolt-api-production.freeze.json
count:
  description: Automatic rollbacks within the window (after the task; predicted in check mode).
  returned: always
  type: int
  sample: 2
limit:
  description: O(limit).
  returned: always
  type: int
window:
  description: O(window).
  returned: always
  type: int
frozen:
  description: Whether RV(count) has reached O(limit).
  returned: always
  type: bool
since:
  description: The first automatic rollback within the window, UTC; null when none.
  returned: always
  type: str
  sample: "2026-12-06T09:14:02Z"
history:
  description: The automatic rollbacks within the window, oldest first, each C(at), C(reason), C(holder).
  returned: always
  type: list
  elements: dict
  sample: [{at: "2026-12-06T09:14:02Z", reason: error_rate, holder: "awx-job-4411"}]
recorded:
  description: With O(action=record), the entry added.
  returned: with O(action=record)
  type: dict
cleared:
  description: With O(action=reset), how many entries were removed.
  returned: with O(action=reset)
  type: int
before:
  description: C(count) and C(frozen) before the task (O(action=record) and O(action=reset)).
  returned: always
  type: dict
after:
  description: C(count) and C(frozen) after the task (O(action=record) and O(action=reset)).
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.rollback_freeze import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW_S,
    RollbackFreeze,
)
from ansible_collections.sre.rollback.plugins.module_utils.rollback_lock import DEFAULT_LOCK_DIR


def main():
    module = RollbackModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            action=dict(type="str", default="check", choices=["check", "record", "reset"]),
            limit=dict(type="int", default=DEFAULT_LIMIT),
            window=dict(type="int", default=DEFAULT_WINDOW_S),
            path=dict(type="path", default=DEFAULT_LOCK_DIR),
            reason=dict(type="str"),
            holder=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def work():
        freeze = RollbackFreeze(params["name"], params["path"], limit=params["limit"], window=params["window"])
        if params["action"] == "check":
            return freeze.check()
        if params["action"] == "record":
            return freeze.record(reason=params["reason"], holder=params["holder"], check_mode=module.check_mode)
        return freeze.reset(check_mode=module.check_mode)

    module.run(work)


if __name__ == "__main__":
    main()
