"""Blue/green deployment controller provider of the sandbox (mvp011).

The runbook drives a controller at `http://localhost:8080`:

  GET  /deployment/status     {"currentEnvironment", "status", "environments": {blue, green},
                               "deploymentHistory": [...oldest first], "switching"?, "lastOperation"?}
  POST /deployment/rollback   switch traffic back to the previous environment:
                              202 {"action", "from", "to", "fromVersion", "toVersion", "status": "switching"}
                              (200 "completed" when the switch takes no time); 409 NothingToRollBackTo /
                              SwitchInProgress
  GET  /health, /api/health   {"health", "version", "environment"} of the ACTIVE environment (503 if unhealthy)
  POST /api/ai/query          the runbook's smoke test ({"content", "tenantId"})

The controller listens on two ports of its own, both serving the same state:
HTTPS with the sandbox CA (`SRE_SANDBOX_BLUEGREEN_URL`, the one tests and the
inventory use: a controller that can roll production back must not take its
token over plain HTTP) and plain HTTP (`SRE_SANDBOX_BLUEGREEN_HTTP_URL`, the
runbook's literal `http://` form, so clients are tested against both).

Admin API, under the sandbox admin URL (never faulted, never logged):

  GET    /_sandbox/bluegreen                      state, settings, faults, urls
  POST   /_sandbox/bluegreen/deploy               {"version", "switch": true, "environment"?, "healthy"?,
                                                   "latency_ms"?}: deploy to the idle environment, switch to it
  GET/PUT /_sandbox/bluegreen/versions            catalog {"<version>": {"healthy", "latency_ms"}}; PUT merges
  DELETE /_sandbox/bluegreen/environments/{env}   empty an idle environment (nothing to roll back to)
  GET/PUT /_sandbox/bluegreen/settings            {"switch_duration_s": 1.0, "api_token": null}; PUT merges
  GET/POST/DELETE /_sandbox/bluegreen/faults      arm {"kind", "count", "method", "path", "status", "delay_s",
                                                   "retry_after"}: throttle | error | timeout | slow (HTTP level,
                                                   as /_sandbox/faults) or no_switch | switch_fail (controller)
  GET/DELETE /_sandbox/bluegreen/calls            {"calls": [{time, method, path, status, fault}]} on the controller
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..calls import CallLog
from ..faults import FaultSpecError, Faults
from ..web import BadJson, DropConnection, HttpsServer, Response, Router, _make_handler
from .model import ENVIRONMENTS, Controller, ControllerError, stamp


HTTP_FAULT_KINDS = ("throttle", "error", "timeout", "slow")
CONTROLLER_FAULT_KINDS = ("no_switch", "switch_fail")
SETTINGS = {"switch_duration_s": float, "api_token": str}


def _error(status, error, message, headers=None, **extra):
    return Response.json({"error": error, "message": message, **extra}, status, headers)


def _admin_error(status, message):
    return Response.json({"error": message}, status)


class BlueGreenProvider:
    name = "bluegreen"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.controller = Controller(sandbox.seed_section(self.name), sandbox.lock)
        self.faults = Faults()
        self.calls = CallLog(sandbox, "bluegreen")
        self.routes = Router()
        for method, path, handler in (
            ("GET", r"/deployment/status", self._status),
            ("POST", r"/deployment/rollback", self._rollback),
            ("GET", r"/health", self._health),
            ("GET", r"/api/health", self._health),
            ("POST", r"/api/ai/query", self._ai_query),
        ):
            self.routes.add(method, path, handler)
        self.dataplane = _Listeners(sandbox, self._dispatch)
        add = sandbox.admin.add
        add("GET", r"/_sandbox/bluegreen", self._admin_state)
        add("POST", r"/_sandbox/bluegreen/deploy", self._admin_deploy)
        add("GET", r"/_sandbox/bluegreen/versions", self._admin_get_versions)
        add("PUT", r"/_sandbox/bluegreen/versions", self._admin_put_versions)
        add("DELETE", r"/_sandbox/bluegreen/environments/(?P<env>[^/]+)", self._admin_clear)
        add("GET", r"/_sandbox/bluegreen/settings", self._admin_get_settings)
        add("PUT", r"/_sandbox/bluegreen/settings", self._admin_put_settings)
        add("GET", r"/_sandbox/bluegreen/faults", self._admin_list_faults)
        add("POST", r"/_sandbox/bluegreen/faults", self._admin_add_fault)
        add("DELETE", r"/_sandbox/bluegreen/faults", self._admin_clear_faults)
        sandbox.on_reset(self._reset)

    def _reset(self):
        with self.sandbox.lock:
            self.controller.stop()
            self.controller = Controller(self.sandbox.seed_section(self.name), self.sandbox.lock)
            self.faults.clear()
            self.calls.clear()

    # -- the controller's own ports ------------------------------------------------------------
    def _dispatch(self, request):
        fault = None
        try:
            response, fault = self.faults.apply_inbound(request, _fault_response)
            if response is None:
                response = self._route(request)
        except DropConnection:
            self._record(request, None, "timeout")
            raise
        except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
            response = _error(500, "InternalServerError", f"sandbox bug: {err!r}")
        self._record(request, response.status, fault)
        return response

    def _route(self, request):
        handler, params = self.routes.match(request.method, request.path)
        if handler is None:
            if params:
                return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}",
                              {"Allow": ", ".join(params)})
            return _error(404, "NotFound", f"No route {request.method} {request.path}.")
        token = self.controller.settings.get("api_token")
        if token and request.path != "/health" and request.path != "/api/health":
            if request.headers.get("Authorization") != f"Bearer {token}":
                return _error(401, "Unauthorized", "A valid bearer token is required.",
                              {"WWW-Authenticate": 'Bearer realm="deployment-controller"'})
        request.params = params
        return handler(request)

    def _record(self, request, status, fault):
        with self.sandbox.lock:
            self.calls.append({"time": stamp(), "method": request.method, "path": request.path,
                               "status": status, "fault": fault})

    def _status(self, request):
        with self.sandbox.lock:
            return Response.json(self.controller.status())

    def _rollback(self, request):
        with self.sandbox.lock:
            try:
                status, body = self.controller.rollback()
            except ControllerError as err:
                return _error(err.status, err.error, err.message, **err.extra)
        return Response.json(body, status)

    def _health(self, request):
        with self.sandbox.lock:
            environment, version, info = self.controller.active()
        _sleep_ms(info["latency_ms"])  # outside the lock: a slow version must not stall the controller
        health = "healthy" if info["healthy"] else "unhealthy"
        return Response.json({"health": health, "status": health, "version": version, "environment": environment,
                              "timestamp": stamp()}, 200 if info["healthy"] else 503)

    def _ai_query(self, request):
        try:
            body = request.json({})
        except BadJson as err:
            return _error(400, "BadRequest", f"invalid JSON: {err}")
        if not isinstance(body, dict) or not isinstance(body.get("content"), str) or not body["content"]:
            return _error(400, "BadRequest", 'expected {"content": "<text>", "tenantId": "<tenant>"}')
        with self.sandbox.lock:
            environment, version, info = self.controller.active()
        _sleep_ms(info["latency_ms"])
        if not info["healthy"]:
            return _error(500, "InternalServerError", f"version {version} failed to answer the query",
                          environment=environment, version=version)
        return Response.json({"response": f"echo: {body['content']}", "tenantId": body.get("tenantId", "default"),
                              "environment": environment, "version": version})

    # -- admin ------------------------------------------------------------------------------------
    def snapshot(self):
        with self.sandbox.lock:
            return {
                **self.controller.status(),
                "versions": {k: dict(v) for k, v in self.controller.versions.items()},
                "settings": self._settings_view(),
                "faults": self.faults.list() + [dict(f) for f in self.controller.controller_faults],
                "urls": self.urls(),
            }

    def urls(self):
        return {"https": f"https://127.0.0.1:{self.dataplane.https.port}",
                "http": f"http://127.0.0.1:{self.dataplane.http_port}"}

    def env(self):
        urls = self.urls()
        return {"SRE_SANDBOX_BLUEGREEN_URL": urls["https"], "SRE_SANDBOX_BLUEGREEN_HTTP_URL": urls["http"]}

    def stop(self):
        with self.sandbox.lock:
            self.controller.stop()
        self.dataplane.stop()

    def _settings_view(self):
        settings = dict(self.controller.settings)
        settings["api_token"] = "***" if settings.get("api_token") else None
        return settings

    def _admin_state(self, request):
        return Response.json(self.snapshot())

    def _admin_deploy(self, request):
        try:
            spec = request.json({})
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(spec, dict) or not isinstance(spec.get("version"), str) or not spec["version"]:
            return _admin_error(400, 'expected {"version": "<version>", "switch": true, "environment": "blue"|"green", '
                                     '"healthy": bool, "latency_ms": int}')
        with self.sandbox.lock:
            if "healthy" in spec or "latency_ms" in spec:
                entry = self.controller.versions.setdefault(spec["version"], {})
                for key in ("healthy", "latency_ms"):
                    if key in spec:
                        entry[key] = spec[key]
            try:
                self.controller.deploy(spec["version"], bool(spec.get("switch", True)), spec.get("environment"))
            except ControllerError as err:
                return _admin_error(err.status, err.message)
            return Response.json(self.controller.status(), 201)

    def _admin_get_versions(self, request):
        with self.sandbox.lock:
            return Response.json(self.controller.versions)

    def _admin_put_versions(self, request):
        try:
            entries = request.json()
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            return _admin_error(400, 'expected {"<version>": {"healthy": bool, "latency_ms": int}}')
        with self.sandbox.lock:
            for version, entry in entries.items():
                self.controller.versions.setdefault(version, {}).update(entry)
            return Response.json(self.controller.versions)

    def _admin_clear(self, request):
        with self.sandbox.lock:
            try:
                self.controller.clear(request.params["env"])
            except ControllerError as err:
                return _admin_error(err.status, err.message)
            return Response.json(self.controller.status())

    def _admin_get_settings(self, request):
        with self.sandbox.lock:
            return Response.json(self._settings_view())

    def _admin_put_settings(self, request):
        try:
            changes = request.json()
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(changes, dict):
            return _admin_error(400, "expected a JSON object")
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            return _admin_error(400, f"unknown settings: {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
        parsed = {}
        for key, value in changes.items():
            if value is None and key == "api_token":
                parsed[key] = None
                continue
            try:
                parsed[key] = SETTINGS[key](value)
            except (TypeError, ValueError):
                return _admin_error(400, f"{key} must be a {SETTINGS[key].__name__}")
        if parsed.get("switch_duration_s", 0) < 0:
            return _admin_error(400, "switch_duration_s must be >= 0")
        with self.sandbox.lock:
            self.controller.settings.update(parsed)
            return Response.json(self._settings_view())

    def _admin_list_faults(self, request):
        with self.sandbox.lock:
            return Response.json({"faults": self.faults.list() + [dict(f) for f in self.controller.controller_faults]})

    def _admin_add_fault(self, request):
        try:
            spec = request.json()
        except BadJson as err:
            return _admin_error(400, str(err))
        if not isinstance(spec, dict):
            return _admin_error(400, "expected a JSON object")
        kind = spec.get("kind")
        if kind in CONTROLLER_FAULT_KINDS:
            try:
                count = int(spec.get("count", 1))
            except (TypeError, ValueError):
                return _admin_error(400, "count must be an integer")
            if count < 1:
                return _admin_error(400, "count must be >= 1")
            fault = {"kind": kind, "remaining": count}
            with self.sandbox.lock:
                self.controller.controller_faults.append(fault)
            return Response.json(dict(fault), 201)
        if kind not in HTTP_FAULT_KINDS:
            return _admin_error(400, f"kind must be one of {', '.join(HTTP_FAULT_KINDS + CONTROLLER_FAULT_KINDS)}")
        try:
            return Response.json(self.faults.add(spec), 201)
        except (FaultSpecError, TypeError, ValueError) as err:
            return _admin_error(400, str(err))

    def _admin_clear_faults(self, request):
        with self.sandbox.lock:
            self.faults.clear()
            self.controller.controller_faults.clear()
        return Response(204)


def _fault_response(status, code, message):
    return _error(status, code, message)


def _sleep_ms(ms):
    if ms:
        time.sleep(ms / 1000.0)


class _Listeners:
    """The controller's two ports: HTTPS (sandbox CA) and plain HTTP, one dispatcher.

    Named `dataplane` on the provider so the server lists its ports in
    runtime.json and `sandboxctl stop` waits for them to close.
    """

    def __init__(self, sandbox, dispatch):
        self.https = HttpsServer(sandbox.ssl_context, dispatch, name="bluegreen-https").start()
        handler = _make_handler(dispatch, lambda: self.http_port)

        class PlainHandler(handler):
            def handle(self):
                # The shared handler starts with a TLS handshake; plain HTTP has none.
                BaseHTTPRequestHandler.handle(self)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), PlainHandler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="bluegreen-http", daemon=True)
        self._thread.start()

    def ports(self):
        return {"bluegreen/https": self.https.port, "bluegreen/http": self.http_port}

    def stop(self):
        self.https.stop()
        self._http.shutdown()
        self._http.server_close()


__all__ = ["BlueGreenProvider", "ENVIRONMENTS"]
