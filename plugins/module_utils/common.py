# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The base every sre.rollback module stands on.

A module builds a :class:`RollbackModule` from its own argument spec, calls one
provider class from module_utils, and hands back a result with the same shape
as every other module: ``changed``, ``before``, ``after``, ``duration_s`` and
the provider ids a person needs to follow up.  Provider classes never import
AnsibleModule; they raise :class:`RollbackError`, which this base turns into a
``fail_json`` that still carries the state observed so far.
"""

from __future__ import annotations

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib


class RollbackError(Exception):
    """A failure a person can act on.

    ``details`` travels into the failed result (for example what production
    runs now after a swap that failed), so the caller never has to guess the
    state it was left in.
    """

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


def whole_number(value, option):
    """``value`` as an int, refusing booleans, fractions and text that is not a plain integer.

    Sizes in a dict option (``to: {capacity: "3"}``, a recorded ``before``) arrive unvalidated by the
    argument spec; ``option`` names the field in the message.
    """
    if isinstance(value, bool):
        raise RollbackError("%s must be a whole number, not %r." % (option, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RollbackError("%s must be a whole number, not %r." % (option, value)) from None
    if str(number) != str(value).strip():
        raise RollbackError("%s must be a whole number, not %r." % (option, value))
    return number


class RollbackModule:
    """An AnsibleModule with the collection's shared behaviour.

    - ``extra_argument_spec`` fragments (the Azure auth options, for example)
      merge into the module's own spec;
    - the result always carries ``duration_s``, measured from module start;
    - :class:`RollbackError` becomes a clean ``fail_json`` with its details;
    - missing third-party libraries are reported with the install hint.
    """

    def __init__(self, argument_spec, fragments=(), **kwargs):
        self._started = time.monotonic()
        spec = {}
        for fragment in fragments:
            spec.update(fragment)
        spec.update(argument_spec)
        self.ansible = AnsibleModule(argument_spec=spec, **kwargs)

    @property
    def params(self):
        return self.ansible.params

    @property
    def check_mode(self):
        return self.ansible.check_mode

    @property
    def diff_mode(self):
        return self.ansible._diff

    def elapsed(self):
        return round(time.monotonic() - self._started, 3)

    def require_libraries(self, requirements):
        """Fail early when an import guarded in module_utils did not succeed.

        ``requirements`` is a list of ``(library name, import error or None)``.
        """
        for library, import_error in requirements:
            if import_error is not None:
                self.ansible.fail_json(msg=missing_required_lib(library), exception=import_error)

    def warn(self, message):
        self.ansible.warn(message)

    def exit(self, changed, **result):
        result.setdefault("before", {})
        result.setdefault("after", {})
        self.ansible.exit_json(changed=changed, duration_s=self.elapsed(), **result)

    def fail(self, message, **details):
        self.ansible.fail_json(msg=message, duration_s=self.elapsed(), **details)

    def run(self, action):
        """Call ``action()`` and turn its errors into a failed result.

        ``action`` returns ``(changed, result_dict)``.
        """
        try:
            changed, result = action()
        except RollbackError as error:
            self.fail(error.message, **error.details)
        except Exception as error:  # pylint: disable=broad-except
            # An unexpected error must still end the task cleanly; the
            # traceback goes to -vvv output, never a secret (options are no_log).
            self.ansible.fail_json(
                msg="Unexpected error: %s: %s" % (type(error).__name__, error),
                exception=traceback.format_exc(),
                duration_s=self.elapsed(),
            )
        else:
            self.exit(changed, **result)
