"""Long-running operations the way the Compute resource provider announces them.

Unlike App Service (Location only, see ../operations.py), Compute answers a
long-running call with both headers, and azure-core's ARMPolling then follows
`Azure-AsyncOperation` (OperationResourcePolling):

  initial call    VM actions: 202, empty; VM PUT: 200/201 + the VM; disk PUT: 202; disk DELETE: 202
                  Azure-AsyncOperation: {arm}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/
                                        operations/{id}?p={guid}&api-version=...   (disks: .../DiskOperations/{id})
                  Location:             the same URL + &monitor=true
                  Retry-After:          the sandbox's lro_retry_after_s
  poll (async)    200 {"name", "startTime", "status": "InProgress"}  -> then "Succeeded" (+ "endTime";
                  disk operations add "properties": {"output": <disk>}) or "Failed" + "error": {code, message}
  poll (monitor)  202 while running, 200 when done (the final GET azure-core makes for a POST)

A failed operation is reported in the body of a 200 status poll, as ARM's
async-operation contract says; azure-core raises HttpResponseError with the
body's error code and message.
"""

import threading
import uuid

from ..arm import ArmError
from ..core import iso, utcnow
from ..web import Response

POLL_PATH = (
    r"/subscriptions/(?P<subscription>[^/]+)/providers/Microsoft\.Compute/locations/(?P<location>[^/]+)"
    r"/(?P<kind>operations|DiskOperations)/(?P<operation_id>[^/]+)"
)


class ComputeOperation:
    def __init__(self, kind, location, api_version):
        self.id = str(uuid.uuid4())
        self.kind = kind  # "operations" (VMs) or "DiskOperations" (disks)
        self.location = location
        self.api_version = api_version
        self.status = "InProgress"
        self.start_time = iso(utcnow())
        self.end_time = None
        self.error = None   # (code, message)
        self.output = None  # callable returning the output resource (disk operations)
        self.what = None

    def describe(self):
        return {"id": self.id, "what": self.what, "status": self.status, "start_time": self.start_time,
                "end_time": self.end_time, "error": self.error}


class ComputeOperations:
    def __init__(self, sandbox, arm):
        self.sandbox = sandbox
        self._ops = {}
        self._timers = []
        arm.arm_route("GET", POLL_PATH, self._poll)

    def start(self, request, kind, location, duration_s, what, work, failure=None, finally_=None, output=None):
        """Begin an operation; returns the response headers that announce it.

        work():     applied when the operation ends Succeeded (under the sandbox lock).
        failure:    (code, message) to end Failed instead; work() is not run.
        finally_(ok): always run at the end with whether it succeeded.
        output():   the resource a disk operation reports in properties.output.
        """
        op = ComputeOperation(kind, location.replace(" ", "").lower(),
                              request.query.get("api-version", "2026-04-01"))
        op.what = what
        op.output = output
        self._ops[op.id] = op

        def complete():
            with self.sandbox.lock:
                if self._ops.get(op.id) is not op:
                    return  # a reset happened meanwhile
                ok = False
                try:
                    if failure:
                        op.status, op.error = "Failed", failure
                    else:
                        work()
                        op.status, ok = "Succeeded", True
                except ArmError as err:
                    op.status, op.error = "Failed", (err.code, err.message)
                except Exception as err:  # a sandbox bug must end the operation, not hang the client
                    op.status, op.error = "Failed", ("InternalExecutionError", f"sandbox: {err!r}")
                finally:
                    op.end_time = iso(utcnow())
                    if finally_:
                        finally_(ok)

        timer = threading.Timer(max(float(duration_s), 0.0), complete)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return self.headers(op)

    def _url(self, op):
        return (f"{self.sandbox.base_url}/subscriptions/{self.sandbox.subscription_id}/providers/Microsoft.Compute"
                f"/locations/{op.location}/{op.kind}/{op.id}?p={uuid.uuid4()}&api-version={op.api_version}")

    def headers(self, op):
        url = self._url(op)
        return {
            "Azure-AsyncOperation": url,
            "Location": url + "&monitor=true",
            "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"])),
        }

    def _poll(self, request):
        op = self._ops.get(request.params["operation_id"])
        if (op is None or op.kind.lower() != request.params["kind"].lower()
                or request.params["subscription"].lower() != self.sandbox.subscription_id.lower()):
            raise ArmError(404, "NotFound", f"The operation '{request.params['operation_id']}' was not found.")
        if request.query.get("monitor", "").lower() == "true":
            if op.status == "InProgress":
                return Response(202, b"", {"Location": self._url(op) + "&monitor=true",
                                           "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))})
            return Response(200, b"")
        body = {"name": op.id, "startTime": op.start_time, "status": op.status}
        if op.end_time:
            body["endTime"] = op.end_time
        if op.status == "Failed":
            code, message = op.error
            body["error"] = {"code": code, "message": message}
        elif op.status == "Succeeded" and op.output:
            body["properties"] = {"output": op.output()}
        headers = {}
        if op.status == "InProgress":
            headers["Retry-After"] = str(int(self.sandbox.settings["lro_retry_after_s"]))
        return Response.json(body, 200, headers)

    def list(self):
        return [op.describe() for op in self._ops.values()]

    def reset(self):
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._ops.clear()
