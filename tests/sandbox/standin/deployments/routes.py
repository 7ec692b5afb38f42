"""ARM routes of Microsoft.Resources/deployments, as azure-mgmt-resource-deployments 2.x sends them.

Paths, verbs and accepted status codes are those of
azure/mgmt/resource/deployments/operations/_operations.py (api-version 2026-06-01):

  GET    {scope}/providers/Microsoft.Resources/deployments                  list ($filter, $top)   200
  GET    {scope}/.../deployments/{name}                                     get                    200
  HEAD   {scope}/.../deployments/{name}                                     check_existence        204/404
  PUT    {scope}/.../deployments/{name}                                     begin_create_or_update 201 + Azure-AsyncOperation
  GET    {scope}/.../deployments/{name}/operationStatuses/{id}              (polled)               200 {status}
  POST   {scope}/.../deployments/{name}/validate                            begin_validate         200 / 400
  POST   {scope}/.../deployments/{name}/whatIf                              begin_what_if          202 + Location
  GET    /subscriptions/{sub}/operationresults/{id}                         (polled)               202 / 200 result
  POST   {scope}/.../deployments/{name}/exportTemplate                      export_template        200
  GET    {rg-or-sub scope}/deployments/{name}/operations                    deployment_operations.list
         (resource group: /subscriptions/{sub}/resourcegroups/{rg}/deployments/..., no providers segment)

{scope} is /subscriptions/{sub}/resourcegroups/{rg} or /subscriptions/{sub}.

How ARM runs a deployment, and so the stand-in: the PUT validates the template
synchronously (400 InvalidTemplate / InvalidTemplateDeployment, nothing
recorded), then answers 201 with the deployment in provisioningState Accepted
and an Azure-AsyncOperation URL; the deployment goes Running, then Succeeded or
Failed (with properties.error). azure-mgmt-core's ARMPolling polls the status
URL ({"status": ...}) and, once it is terminal, GETs the deployment. What-if
answers 202 + Location; the Location answers 202 while running and then 200
with the WhatIfOperationResult (the body ARMPolling returns for a POST).
"""

import threading
import uuid

from ..arm import ArmError
from ..core import utcnow
from ..web import Response
from . import model
from . import template as tpl

SUB = r"/subscriptions/(?P<subscription>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<resource_group>[^/]+)"
DEPLOYMENTS = r"/providers/Microsoft\.Resources/deployments"
NAME = r"/(?P<name>[^/]+)"
OPERATION_RESULTS = SUB + r"/operationresults/(?P<token>[^/]+)"
RUNNING_STATES = ("Accepted", "Running")


class DeploymentsRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm
        self.sandbox = provider.sandbox
        self.what_ifs = {}   # token -> {"status", "result"}
        self.timers = []

    def register(self):
        def route(method, pattern, handler):
            self.arm.arm_route(method, pattern, _with_inner_errors(handler))
        for prefix in (RG, SUB):
            base = prefix + DEPLOYMENTS
            route("GET", base, self.list)
            route("GET", base + NAME, self.get)
            route("HEAD", base + NAME, self.head)
            route("PUT", base + NAME, self.create_or_update)
            route("GET", base + NAME + r"/operationStatuses/(?P<operation>[^/]+)", self.operation_status)
            route("POST", base + NAME + r"/validate", self.validate)
            route("POST", base + NAME + r"/whatIf", self.what_if)
            route("POST", base + NAME + r"/exportTemplate", self.export_template)
        # Deployment operations: the resource-group path has no providers/Microsoft.Resources segment.
        route("GET", RG + r"/deployments" + NAME + r"/operations", self.list_operations)
        route("GET", SUB + DEPLOYMENTS + NAME + r"/operations", self.list_operations)
        route("GET", OPERATION_RESULTS, self.operation_result)

    def reset(self):
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        self.what_ifs.clear()

    # -- lookups ------------------------------------------------------------------------------
    def _scope(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if request.params.get("resource_group") is None:
            return self.p.state.scope(None)
        rg = self.arm.resource_group(request.params)
        return self.p.state.scope(rg["name"])

    def _deployment(self, request):
        scope = self._scope(request)
        dep = scope.deployments.get(request.params["name"].lower())
        if dep is None:
            raise ArmError(404, "DeploymentNotFound", f"Deployment '{request.params['name']}' could not be found.")
        return scope, dep

    def _body(self, request, scope):
        body = self.arm.body(request)
        props = body.get("properties")
        if not isinstance(props, dict):
            raise ArmError(400, "InvalidRequestContent",
                           "The request content was invalid and could not be deserialized: "
                           "'Required property 'properties' not found in JSON.'.")
        if "templateLink" in props or "parametersLink" in props:
            raise ArmError(400, "InvalidTemplate", "The sandbox does not fetch templateLink or parametersLink: send "
                                                   "the template and parameters inline.")
        if "template" not in props:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: one of 'template' or "
                                                         "'templateLink' must be specified.")
        mode = props.get("mode")
        if str(mode).lower() not in ("incremental", "complete"):
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid: 'mode' must be 'Incremental' or 'Complete', "
                           f"not '{mode}'.")
        if scope.resource_group is None and not body.get("location"):
            raise ArmError(400, "LocationRequired",
                           f"The location property is required for this definition: deployment "
                           f"'{request.params['name']}' at subscription scope.")
        if scope.resource_group is None and str(mode).lower() == "complete":
            raise ArmError(400, "InvalidDeploymentMode", "Complete mode is only supported for resource group "
                                                         "deployments.")
        return body, props, "Complete" if str(mode).lower() == "complete" else "Incremental"

    def _evaluate(self, request, scope, props, location):
        """Template + parameter validation, then preflight; raises the 400 ARM would send."""
        params = props.get("parameters") or {}
        if not isinstance(params, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'parameters' must be "
                                                         "an object.")
        try:
            evaluated = self.p.state.evaluate(scope, request.params["name"], props["template"], params, location)
        except tpl.TemplateError as err:
            raise ArmError(400, err.code, err.message) from err
        details = self.p.state.preflight(scope, evaluated)
        if details:
            raise _TemplateDeploymentError(request.params["name"], details)
        return evaluated

    # -- reads --------------------------------------------------------------------------------
    def list(self, request):
        scope = self._scope(request)
        deps = scope.history()  # ARM documents no order: creation order here, clients must sort
        flt = request.query.get("$filter")
        if flt:
            state = _state_filter(flt)
            deps = [d for d in deps if d.state.lower() == state.lower()]
        top = request.query.get("$top")
        if top:
            deps = deps[:int(top)]
        return Response.json({"value": [self.p.view(d) for d in deps]})

    def get(self, request):
        _scope, dep = self._deployment(request)
        return Response.json(self.p.view(dep))

    def head(self, request):
        self._deployment(request)
        return Response(204, b"")

    def export_template(self, request):
        _scope, dep = self._deployment(request)
        return Response.json({"template": dep.template})

    def list_operations(self, request):
        _scope, dep = self._deployment(request)
        dep_id = self.p.state.deployment_id(dep)
        return Response.json({"value": [
            {"id": f"{dep_id}/operations/{op['operationId']}", "operationId": op["operationId"],
             "properties": {**{k: v for k, v in op.items() if k != "operationId"},
                            "timestamp": model.iso(dep.timestamp),
                            "statusCode": "OK" if op["provisioningState"] == "Succeeded" else "BadRequest"}}
            for op in dep.operations]})

    # -- validate -----------------------------------------------------------------------------
    def validate(self, request):
        scope = self._scope(request)
        body, props, mode = self._body(request, scope)
        evaluated = self._evaluate(request, scope, props, body.get("location"))
        name = request.params["name"]
        dep = model.Deployment(scope, name, props["template"], props.get("parameters"), mode,
                               location=body.get("location"))
        dep.parameters = evaluated.parameters
        view = self.p.view(dep)
        view["properties"]["provisioningState"] = "Succeeded"
        view["properties"]["validatedResources"] = [{"id": r["id"]} for r in evaluated.resources]
        for key in ("outputs", "outputResources", "duration", "timestamp", "error"):
            view["properties"].pop(key, None)
        return Response.json(view)

    # -- what-if ------------------------------------------------------------------------------
    def what_if(self, request):
        scope = self._scope(request)
        body, props, mode = self._body(request, scope)
        token = uuid.uuid4().hex
        try:
            evaluated = self._evaluate(request, scope, props, body.get("location"))
        except ArmError as err:
            # What-if reports validation errors as the operation's result error, after a 202.
            error = {"code": err.code, "message": err.message}
            if getattr(err, "details", None):
                error["details"] = err.details
            result = {"status": "Failed", "error": error}
            self.what_ifs[token] = {"status": "Running", "result": result}
        else:
            changes = self.p.state.what_if(scope, evaluated, mode)
            self.what_ifs[token] = {"status": "Running", "result": {"status": "Succeeded",
                                                                    "properties": {"changes": changes}}}
        self._later(self.p.settings["what_if_duration_s"], lambda: self.what_ifs.get(token, {}).update(status="Done"))
        return Response(202, b"", self._location_headers(token))

    def _location_headers(self, token):
        return {"Location": (f"{self.sandbox.base_url}/subscriptions/{self.sandbox.subscription_id}"
                             f"/operationresults/{token}?api-version=2026-06-01"),
                "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))}

    def operation_result(self, request):
        entry = self.what_ifs.get(request.params["token"])
        if entry is None or request.params["subscription"].lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{request.params['token']}' could not be found.")
        if entry["status"] == "Running":
            return Response(202, b"", self._location_headers(request.params["token"]))
        result = entry["result"]
        if result["status"] == "Failed":
            # ARMPolling treats a 2xx as success: a failed what-if must answer with its error and 400.
            return Response.json({"error": result["error"]}, 400)
        return Response.json(result)

    # -- create or update (long-running) ------------------------------------------------------
    def create_or_update(self, request):
        scope = self._scope(request)
        body, props, mode = self._body(request, scope)
        name = request.params["name"]
        existing = scope.deployments.get(name.lower())
        if existing is not None and existing.state in RUNNING_STATES:
            raise ArmError(409, "DeploymentActive",
                           f"Unable to edit or replace deployment '{name}': previous deployment from "
                           f"'{model.iso(existing.started)}' is still active (state: {existing.state}). Please see "
                           "https://aka.ms/arm-deploy for usage details.")
        evaluated = self._evaluate(request, scope, props, body.get("location"))
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        dep = model.Deployment(scope, name, props["template"], props.get("parameters"), mode,
                               location=body.get("location"), tags=body.get("tags"))
        dep.parameters = evaluated.parameters
        dep.started = dep.timestamp = utcnow()
        dep.operation_id = uuid.uuid4().hex.upper()
        # Re-using a name replaces that deployment; it moves to the end of the history, as the newest.
        scope.deployments.pop(name.lower(), None)
        scope.deployments[name.lower()] = dep
        fault_error = None
        if fault:
            fault_error = {"code": fault.code or "DeploymentFailed",
                           "message": fault.message or "Injected sandbox fault: the deployment failed; nothing "
                                                       "was changed."}
        duration = self.p.settings["duration_s"]

        def running():
            if dep.state == "Accepted":
                dep.state = "Running"

        def finish():
            if scope.deployments.get(name.lower()) is dep:
                self.p.state.apply(dep, evaluated, utcnow(), fault_error)

        self._later(duration / 3, running)
        self._later(duration, finish)
        headers = {"Azure-AsyncOperation": (f"{self.sandbox.base_url}{self.p.state.deployment_id(dep)}"
                                            f"/operationStatuses/{dep.operation_id}?api-version=2026-06-01"),
                   "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))}
        return Response.json(self.p.view(dep), 201, headers)

    def operation_status(self, request):
        _scope, dep = self._deployment(request)
        if dep.operation_id is None or dep.operation_id.lower() != request.params["operation"].lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{request.params['operation']}' could not be "
                                                     "found.")
        body = {"status": dep.state}
        if dep.state == "Failed":
            body["error"] = dep.error
        headers = {}
        if dep.state in RUNNING_STATES:
            headers["Retry-After"] = str(int(self.sandbox.settings["lro_retry_after_s"]))
        return Response.json(body, 200, headers)

    # -- timers -------------------------------------------------------------------------------
    def _later(self, delay, fn):
        def run():
            with self.sandbox.lock:
                fn()
        timer = threading.Timer(max(delay, 0), run)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()


class _TemplateDeploymentError(ArmError):
    """InvalidTemplateDeployment with inner errors: ARM's preflight failure shape."""

    def __init__(self, name, details):
        tracking = str(uuid.uuid4())
        super().__init__(400, "InvalidTemplateDeployment",
                         f"The template deployment '{name}' is not valid according to the validation procedure. "
                         f"The tracking id is '{tracking}'. See inner errors for details.")
        self.details = details


def _with_inner_errors(handler):
    """The front door renders {code, message}; a preflight failure also carries its inner errors."""
    def wrapped(request):
        try:
            return handler(request)
        except _TemplateDeploymentError as err:
            return Response.json({"error": {"code": err.code, "message": err.message, "details": err.details}},
                                 err.status)
    return wrapped


def _state_filter(text):
    """ARM supports one $filter on deployments: provisioningState eq '<state>'."""
    parts = text.split()
    if len(parts) == 3 and parts[0].lower() == "provisioningstate" and parts[1].lower() == "eq":
        return parts[2].strip("'")
    raise ArmError(400, "InvalidFilterInQueryString",
                   f"The filter '{text}' is not supported. Supported: provisioningState eq '{{state}}'.")
