"""Blob storage stand-in with versioning and soft delete (what Azurite lacks).

One storage account (seed `blobstore.account`, e.g. `sfaisandboxdocs`) on its
own HTTPS port with the sandbox CA, path-style like Azurite:
`https://127.0.0.1:PORT/{account}`. The REST API is in service.py, the state
and the data-protection rules in model.py, Shared Key in sharedkey.py.

Admin API, under the sandbox admin URL (never faulted, never logged):

  GET        /_sandbox/blobstore                 account, settings, every blob's entries (+ text content)
  GET/PUT    /_sandbox/blobstore/settings        {"versioning": true, "soft_delete_days": 7}; PUT merges
  GET/POST/DELETE /_sandbox/blobstore/faults     throttle | error | timeout | slow, as /_sandbox/faults,
                                                 answered with Blob service XML errors (throttle: 503
                                                 ServerBusy + Retry-After, as storage throttles)
  GET/DELETE /_sandbox/blobstore/calls           {"calls": [{time, method, path, query, status, fault, auth}]}
                                                 (auth: SharedKey, Bearer or null)

Environment: SRE_SANDBOX_BLOBSTORE_URL (the account URL), SRE_SANDBOX_BLOBSTORE_ACCOUNT,
SRE_SANDBOX_BLOBSTORE_KEY, SRE_SANDBOX_BLOBSTORE_CONNECTION_STRING.
"""

from ..calls import CallLog
from ..faults import FaultSpecError, Faults
from ..web import BadJson, DropConnection, HttpsServer, Response
from .model import BlobError, account_from_seed, utcnow
from .service import BlobService, error_response


SETTINGS = {"versioning": bool, "soft_delete_days": int}


def _admin_error(status, message):
    return Response.json({"error": message}, status)


def _fault_response(status, code, message):
    # Blob storage throttles with 503 ServerBusy, never 429: a "throttle" fault answers that way
    # (with Retry-After), which is also what the storage SDK's retry policy retries.
    if status == 429:
        status, code = 503, "ServerBusy"
        message = "The server is busy. (Injected sandbox throttle.)"
    return error_response(BlobError(status, code, message))


class BlobStoreProvider:
    name = "blobstore"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.identity = arm.identity
        self.account = account_from_seed(sandbox.seed_section(self.name))
        self.faults = Faults()
        self.calls = CallLog(sandbox, "blobstore")
        self.service = BlobService(self)
        self.dataplane = _Listener(sandbox, self._dispatch)
        add = sandbox.admin.add
        add("GET", r"/_sandbox/blobstore", self._admin_state)
        add("GET", r"/_sandbox/blobstore/settings", self._admin_get_settings)
        add("PUT", r"/_sandbox/blobstore/settings", self._admin_put_settings)
        add("GET", r"/_sandbox/blobstore/faults", self._admin_list_faults)
        add("POST", r"/_sandbox/blobstore/faults", self._admin_add_fault)
        add("DELETE", r"/_sandbox/blobstore/faults", self._admin_clear_faults)
        sandbox.on_reset(self._reset)

    @property
    def port(self):
        return self.dataplane.server.port

    def service_url(self):
        return f"https://127.0.0.1:{self.port}"

    def account_url(self):
        return f"{self.service_url()}/{self.account.name}"

    def _reset(self):
        with self.sandbox.lock:
            self.account = account_from_seed(self.sandbox.seed_section(self.name))
            self.service.uncommitted.clear()
            self.faults.clear()
            self.calls.clear()

    def _dispatch(self, request):
        fault = None
        try:
            response, fault = self.faults.apply_inbound(request, _fault_response)
            if response is None:
                response = self.service.handle(request)
        except DropConnection:
            self._record(request, None, "timeout")
            raise
        except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
            response = error_response(BlobError(500, "InternalError", f"sandbox bug: {err!r}"))
        self._record(request, response.status, fault)
        return response

    def _record(self, request, status, fault):
        with self.sandbox.lock:
            # Which scheme signed the call (SharedKey or Bearer), so tests can tell how a client signed in.
            auth = (request.headers.get("Authorization") or "").split(" ", 1)[0] or None
            self.calls.append({"time": utcnow().isoformat(), "method": request.method, "path": request.path,
                               "query": request.raw_query, "status": status, "fault": fault, "auth": auth})

    # -- provider interface --------------------------------------------------------------------
    def snapshot(self):
        with self.sandbox.lock:
            view = self.account.view()
            view["url"] = self.account_url()
            view["faults"] = self.faults.list()
            return view

    def env(self):
        url = self.account_url()
        return {
            "SRE_SANDBOX_BLOBSTORE_URL": url,
            "SRE_SANDBOX_BLOBSTORE_ACCOUNT": self.account.name,
            "SRE_SANDBOX_BLOBSTORE_KEY": self.account.key,
            "SRE_SANDBOX_BLOBSTORE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=https;AccountName={self.account.name};AccountKey={self.account.key};"
                f"BlobEndpoint={url};"),
        }

    def stop(self):
        self.dataplane.stop()

    # -- admin -----------------------------------------------------------------------------------
    def _admin_state(self, request):
        return Response.json(self.snapshot())

    def _settings_view(self):
        return {"versioning": self.account.versioning, "soft_delete_days": self.account.soft_delete_days}

    def _admin_get_settings(self, request):
        with self.sandbox.lock:
            return Response.json(self._settings_view())

    def _admin_put_settings(self, request):
        try:
            changes = request.json()
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(changes, dict) or set(changes) - set(SETTINGS):
            return _admin_error(400, f"expected a JSON object with some of {', '.join(SETTINGS)}")
        for key, value in changes.items():
            if not isinstance(value, SETTINGS[key]) or (key == "soft_delete_days" and not 0 <= value <= 365):
                return _admin_error(400, f"{key} must be a {SETTINGS[key].__name__}"
                                         + (" from 0 to 365" if key == "soft_delete_days" else ""))
        with self.sandbox.lock:
            for key, value in changes.items():
                setattr(self.account, key, value)
            return Response.json(self._settings_view())

    def _admin_list_faults(self, request):
        return Response.json({"faults": self.faults.list()})

    def _admin_add_fault(self, request):
        try:
            spec = request.json()
            if not isinstance(spec, dict) or spec.get("kind") == "lro_fail":
                raise FaultSpecError("expected a JSON object; kind throttle, error, timeout or slow")
            return Response.json(self.faults.add(spec), 201)
        except (BadJson, FaultSpecError, TypeError, ValueError) as err:
            return _admin_error(400, str(err))

    def _admin_clear_faults(self, request):
        self.faults.clear()
        return Response(204)


class _Listener:
    """The account's own HTTPS port; `dataplane` so runtime.json lists it and stop waits for it."""

    def __init__(self, sandbox, dispatch):
        self.server = HttpsServer(sandbox.ssl_context, dispatch, name="blobstore").start()

    def ports(self):
        return {"blobstore": self.server.port}

    def stop(self):
        self.server.stop()


__all__ = ["BlobStoreProvider"]
