"""Long-running ARM operations, polled the way azure-mgmt-core's ARMPolling
polls them (LocationPolling, since we answer with a Location header only):

  initial call   202 + Location: <operation URL> + Retry-After
  poll, running  202 (+ Location, Retry-After)
  poll, done     200, empty body             -> poller.result() returns
  poll, failed   4xx/5xx + ARM error body     -> poller.result() raises HttpResponseError

azure-core's LocationPolling treats any 2xx other than 202 as success, so a
failed operation must answer with a non-2xx status; 400 is the default because
azure-core's RetryPolicy would retry a 5xx poll several times before giving up.

The work of an operation runs on a timer thread when its duration has passed,
under the sandbox lock, so state changes atomically as seen by every client.
"""

import threading
import uuid

from .arm import ArmError, arm_error_response
from .web import Response

OPERATION_PATH = (
    r"/subscriptions/(?P<subscription>[^/]+)/providers/(?P<namespace>[^/]+)"
    r"/locations/(?P<location>[^/]+)/operationResults/(?P<operation_id>[^/]+)"
)


class Operation:
    def __init__(self, namespace, location):
        self.id = str(uuid.uuid4())
        self.namespace = namespace
        self.location = location
        self.status = "InProgress"
        self.error = None  # (http status, code, message) once Failed

    def describe(self):
        return {"id": self.id, "status": self.status, "error": self.error}


class Operations:
    def __init__(self, sandbox, arm):
        self.sandbox = sandbox
        self._ops = {}
        self._timers = []
        arm.arm_route("GET", OPERATION_PATH, self._poll)
        sandbox.on_reset(self._reset)

    def start(self, request, namespace, location, duration_s, work, failure=None, finally_=None):
        """Begin an operation and return the 202 that announces it.

        work():      applied when the operation succeeds.
        failure:     (status, code, message) to end Failed instead, changing nothing.
        finally_():  always run at the end (e.g. release a per-site lock).
        """
        op = Operation(namespace, location)
        self._ops[op.id] = op

        def complete():
            with self.sandbox.lock:
                if self._ops.get(op.id) is not op:
                    return  # reset happened meanwhile
                try:
                    if failure:
                        op.status, op.error = "Failed", failure
                    else:
                        work()
                        op.status = "Succeeded"
                except Exception as err:  # a bug in work() must surface as a failed op, not a hang
                    op.status, op.error = "Failed", (500, "InternalServerError", f"sandbox: {err!r}")
                finally:
                    if finally_:
                        finally_()

        timer = threading.Timer(max(duration_s, 0), complete)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return Response(202, b"", self._poll_headers(op))

    def _url(self, op):
        return (f"{self.sandbox.base_url}/subscriptions/{self.sandbox.subscription_id}/providers/"
                f"{op.namespace}/locations/{op.location}/operationResults/{op.id}?api-version=2025-05-01")

    def _poll_headers(self, op):
        return {"Location": self._url(op), "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))}

    def _poll(self, request):
        op = self._ops.get(request.params["operation_id"])
        if op is None or request.params["subscription"].lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "OperationNotFound",
                           f"The operation '{request.params['operation_id']}' could not be found.")
        if op.status == "InProgress":
            return Response(202, b"", self._poll_headers(op))
        if op.status == "Failed":
            status, code, message = op.error
            return arm_error_response(status, code, message)
        return Response(200, b"")

    def list(self):
        return [op.describe() for op in self._ops.values()]

    def _reset(self):
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._ops.clear()
