"""Fault injection for the public (identity + ARM) endpoint.

A fault matches a request by method and a regex searched in the path, and
fires for the next `count` matching calls. Kinds:

  throttle  429 + Retry-After + ARM error TooManyRequests
  error     5xx (default 500) + ARM error InternalServerError
  timeout   hold the connection delay_s seconds, then close it without a response
  slow      wait delay_s seconds, then answer normally
  lro_fail  not applied on the way in: the long-running operation started by the
            matching call ends Failed and changes nothing (see operations.py)
"""

import re
import threading
import time

from .web import DropConnection

KINDS = ("throttle", "error", "timeout", "lro_fail", "slow")


class FaultSpecError(ValueError):
    pass


class Fault:
    def __init__(self, spec, fault_id):
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultSpecError(f"kind must be one of {', '.join(KINDS)}")
        try:
            self.path_re = re.compile(spec.get("path") or ".*", re.IGNORECASE)
        except re.error as err:
            raise FaultSpecError(f"path is not a valid regex: {err}") from err
        self.id = fault_id
        self.kind = kind
        self.method = (spec.get("method") or "").upper() or None
        self.count = int(spec.get("count", 1))
        self.retry_after = int(spec.get("retry_after", 1))
        default_status = {"error": 500, "lro_fail": 400}.get(kind)
        self.status = int(spec.get("status", default_status or 0)) or None
        self.delay_s = float(spec.get("delay_s", 3 if kind in ("timeout", "slow") else 0))
        self.code = spec.get("code")
        self.message = spec.get("message")
        self.spec = dict(spec)
        if self.count < 1:
            raise FaultSpecError("count must be >= 1")
        if kind == "error" and not 500 <= self.status <= 599:
            raise FaultSpecError("status of an 'error' fault must be 5xx")

    def matches(self, method, path):
        return (self.method in (None, method)) and self.path_re.search(path) is not None

    def describe(self):
        return {
            "id": self.id, "kind": self.kind, "method": self.method, "path": self.path_re.pattern,
            "remaining": self.count, "retry_after": self.retry_after, "status": self.status,
            "delay_s": self.delay_s,
        }


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._next_id = 1

    def add(self, spec):
        with self._lock:
            fault = Fault(spec, self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault.describe()

    def list(self):
        with self._lock:
            return [f.describe() for f in self._faults]

    def clear(self):
        with self._lock:
            self._faults.clear()

    def take(self, method, path, kinds):
        """Consume one firing of the first armed fault of one of `kinds` matching the call."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def apply_inbound(self, request, arm_error):
        """Apply a throttle/error/timeout/slow fault before routing.

        Returns (Response or None, fault kind or None). A 'slow' fault sleeps and
        then returns (None, 'slow') so the call is served normally.
        """
        fault = self.take(request.method, request.path, ("throttle", "error", "timeout", "slow"))
        if fault is None:
            return None, None
        if fault.kind == "throttle":
            body = arm_error(429, fault.code or "TooManyRequests",
                             fault.message or "The request is being throttled. Retry after the indicated time.")
            body.headers["Retry-After"] = str(fault.retry_after)
            return body, fault.kind
        if fault.kind == "error":
            return arm_error(fault.status, fault.code or "InternalServerError",
                             fault.message or "Injected sandbox fault: internal server error."), fault.kind
        time.sleep(fault.delay_s)
        if fault.kind == "timeout":
            raise DropConnection()
        return None, fault.kind


def error_response_for_lro(fault):
    """(status, code, message) that a failed operation reports."""
    return (
        fault.status or 400,
        fault.code or "SlotSwapFailed",
        fault.message or "Injected sandbox fault: the operation failed; nothing was changed.",
    )
