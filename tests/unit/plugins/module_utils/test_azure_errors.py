# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError


def http_error(status, code, message):
    error = HttpResponseError(message="(%s) %s" % (code, message))
    error.status_code = status
    error.error = SimpleNamespace(code=code, message=message)
    return error


def test_a_refused_request_names_its_http_status_and_code():
    with pytest.raises(RollbackError, match=r"^Swapping failed: HTTP 409 Conflict: busy$"):
        with arm_call("Swapping"):
            raise http_error(409, "Conflict", "busy")


def test_an_operation_that_ended_failed_names_the_operation_error_not_the_poll_status():
    # azure-core raises the operation's failure from a status poll that answered 200.
    with pytest.raises(RollbackError) as caught:
        with arm_call("Restoring server x", server="x"):
            raise http_error(200, "RestoreFailed", "WAL replay failed.")
    assert caught.value.message == "Restoring server x failed: the operation ended Failed with RestoreFailed: WAL replay failed."
    assert caught.value.details == {"server": "x"}
