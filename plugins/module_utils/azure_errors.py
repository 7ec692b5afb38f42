# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Translate azure-core exceptions into RollbackError messages a person can act on."""

from __future__ import annotations

import contextlib

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import authentication_failure
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
except ImportError:  # reported by the module through AZURE_IDENTITY_IMPORT_ERROR
    ClientAuthenticationError = HttpResponseError = ResourceNotFoundError = ServiceRequestError = ServiceResponseError = None


def arm_error_code(error):
    """The ARM error code (``ResourceNotFound``, ``Conflict``...) of an HttpResponseError."""
    inner = getattr(error, "error", None)
    return getattr(inner, "code", None) or getattr(error, "reason", None) or "Error"


def arm_error_message(error):
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    return message.strip().splitlines()[0]


@contextlib.contextmanager
def arm_call(what, not_found=None, **details):
    """Run Azure calls for ``what`` and re-raise their failures as RollbackError.

    ``not_found`` is the message for a 404 (the resource the user named does
    not exist); ``details`` travel into the failed result.
    """
    if ClientAuthenticationError is None:
        yield
        return
    try:
        yield
    except RollbackError:
        raise
    except ClientAuthenticationError as error:
        raise authentication_failure(error) from error
    except ResourceNotFoundError as error:
        # A missing subscription or resource group also answers 404; saying "app not found"
        # then would send the on-call looking for the wrong thing.
        code = arm_error_code(error)
        if code == "SubscriptionNotFound":
            raise RollbackError(
                "%s failed: %s Check subscription_id (or AZURE_SUBSCRIPTION_ID) and that the identity has access "
                "to that subscription." % (what, arm_error_message(error)),
                **details
            ) from error
        if code == "ResourceGroupNotFound":
            raise RollbackError(
                "%s failed: %s Check resource_group." % (what, arm_error_message(error)), **details
            ) from error
        raise RollbackError(not_found or "%s: not found (%s)" % (what, arm_error_message(error)), **details) from error
    except HttpResponseError as error:
        if error.status_code is not None and 200 <= error.status_code < 300:
            # A long-running operation that ended Failed surfaces from a successful status poll:
            # its HTTP status says nothing, the operation's own error says what went wrong.
            raise RollbackError(
                "%s failed: the operation ended Failed with %s: %s" % (what, arm_error_code(error), arm_error_message(error)),
                **details
            ) from error
        raise RollbackError(
            "%s failed: HTTP %s %s: %s" % (what, error.status_code, arm_error_code(error), arm_error_message(error)),
            **details
        ) from error
    except ServiceResponseError as error:
        # The request went out but no answer came back in time (or the connection dropped):
        # Azure may be slow rather than unreachable, and a POST may have been acted on.
        raise RollbackError(
            "%s failed: Azure Resource Manager did not answer (%s). Retry, or raise api_timeout if "
            "the service is slow; check the current state before repeating a change." % (what, str(error).splitlines()[0]),
            **details
        ) from error
    except ServiceRequestError as error:
        raise RollbackError(
            "%s failed: cannot reach Azure Resource Manager (%s). Check arm_endpoint, the network and the CA "
            "bundle (REQUESTS_CA_BUNDLE)." % (what, str(error).splitlines()[0]),
            **details
        ) from error
