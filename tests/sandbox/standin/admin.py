"""Admin API under /_sandbox/: no auth, never faulted, never in the call log.

  GET    /_sandbox/healthz    liveness (sandboxctl waits on it)
  POST   /_sandbox/reset      back to the seed: state, faults, settings, call log
  GET    /_sandbox/state      every provider's state (+ settings, faults, operations)
  GET    /_sandbox/faults     armed faults       POST: arm one     DELETE: disarm all
  GET    /_sandbox/calls      ARM/identity call log               DELETE: clear it
  GET    /_sandbox/settings   runtime knobs                       PUT: merge
Providers add their own (App Service: GET/PUT /_sandbox/builds).
"""

import os

from .core import DEFAULT_SETTINGS
from .faults import FaultSpecError
from .web import BadJson, Response


def _error(status, message):
    return Response.json({"error": message}, status)


class Admin:
    def __init__(self, sandbox, faults, operations):
        self.sandbox = sandbox
        self.faults = faults
        self.operations = operations
        add = sandbox.admin.add
        add("GET", r"/_sandbox/healthz", self.healthz)
        add("POST", r"/_sandbox/reset", self.reset)
        add("GET", r"/_sandbox/state", self.state)
        add("GET", r"/_sandbox/faults", self.list_faults)
        add("POST", r"/_sandbox/faults", self.add_fault)
        add("DELETE", r"/_sandbox/faults", self.clear_faults)
        add("GET", r"/_sandbox/calls", self.list_calls)
        add("DELETE", r"/_sandbox/calls", self.clear_calls)
        add("GET", r"/_sandbox/settings", self.get_settings)
        add("PUT", r"/_sandbox/settings", self.put_settings)

    def healthz(self, request):
        return Response.json({"status": "ok", "pid": os.getpid()})

    def reset(self, request):
        self.faults.clear()
        self.sandbox.reset()
        return Response.json({"status": "reset"})

    def state(self, request):
        with self.sandbox.lock:
            body = {
                "subscription_id": self.sandbox.subscription_id,
                "tenant_id": self.sandbox.tenant_id,
                "settings": dict(self.sandbox.settings),
                "faults": self.faults.list(),
                "operations": self.operations.list(),
            }
            for provider in self.sandbox.providers:
                body[provider.name] = provider.snapshot()
            # The App Service part is what most callers want: also at top level.
            body.update(body.get("appservice", {}))
        return Response.json(body)

    def list_faults(self, request):
        return Response.json({"faults": self.faults.list()})

    def add_fault(self, request):
        try:
            spec = request.json()
            if not isinstance(spec, dict):
                raise FaultSpecError("expected a JSON object")
            return Response.json(self.faults.add(spec), 201)
        except (BadJson, FaultSpecError, TypeError, ValueError) as err:
            return _error(400, str(err))

    def clear_faults(self, request):
        self.faults.clear()
        return Response(204)

    def list_calls(self, request):
        with self.sandbox.lock:
            return Response.json({"calls": list(self.sandbox.calls)})

    def clear_calls(self, request):
        with self.sandbox.lock:
            self.sandbox.calls.clear()
        return Response(204)

    def get_settings(self, request):
        with self.sandbox.lock:
            return Response.json(dict(self.sandbox.settings))

    def put_settings(self, request):
        try:
            changes = request.json()
        except BadJson as err:
            return _error(400, str(err))
        if not isinstance(changes, dict):
            return _error(400, "expected a JSON object")
        unknown = set(changes) - set(DEFAULT_SETTINGS)
        if unknown:
            return _error(400, f"unknown settings: {', '.join(sorted(unknown))}; known: "
                               f"{', '.join(sorted(DEFAULT_SETTINGS))}")
        try:
            parsed = {k: float(v) for k, v in changes.items()}
        except (TypeError, ValueError):
            return _error(400, "settings are numbers")
        if any(v < 0 for v in parsed.values()):
            return _error(400, "settings must be >= 0")
        with self.sandbox.lock:
            self.sandbox.settings.update(parsed)
            return Response.json(dict(self.sandbox.settings))
