"""ARM routes of Microsoft.Web/serverfarms and the scale operation.

Rules of the real service the stand-in enforces on a PUT or PATCH:
- the SKU must be one the plan can take (its `/skus` list): an unknown name, or a
  tier the plan's scale unit does not offer, is `400` and nothing changes;
- `sku.tier`, when sent, must be the SKU's tier; `sku.capacity` is 1 or more and at
  most the tier's maximum instances (F1 1, Basic 3, Standard 10, Premium 30);
- one operation at a time: a write while a scale runs is `409 Conflict`;
- a PUT carries `location` (ARM refuses a PUT without it); a PUT to a plan that does
  not exist is refused (plans come from the seed: creating one is not modelled).
The wording of the 400s is the sandbox's own.
"""

import threading
import time
import uuid

from ..arm import RG_PREFIX, ArmError, arm_error_response, not_found
from ..core import iso, utcnow
from ..web import Response
from .model import PLAN_TYPE, plan_id, plan_view, sku_info, skus_view

SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
PLANS = r"/providers/Microsoft\.Web/serverfarms"
PLAN = RG_PREFIX + PLANS + r"/(?P<name>[^/]+)"
FAILURE = ("ServerFarmScaleFailed",
           "Not enough available reserved instance servers to satisfy this request. (injected by the sandbox)")


class ScaleOperation:
    def __init__(self, plan, target):
        self.id = str(uuid.uuid4())
        self.plan = plan
        self.before = plan.size()
        self.target = target  # {"sku", "capacity"}
        self.status = "InProgress"
        self.error = None  # (code, message)
        self.started = iso(utcnow())


class ServerFarmRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm
        self.sandbox = provider.sandbox
        self._operations = {}
        self._timers = []

    def register(self):
        route = self.arm.arm_route
        route("GET", SUBSCRIPTION + PLANS, self.list_all)                       # app_service_plans.list
        route("GET", RG_PREFIX + PLANS, self.list_by_resource_group)           # list_by_resource_group
        route("GET", PLAN, self.get)                                            # get
        route("PUT", PLAN, self.put)                                            # begin_create_or_update
        route("PATCH", PLAN, self.patch)                                        # update
        route("GET", PLAN + r"/skus", self.skus)                                # get_server_farm_skus
        route("GET", PLAN + r"/operationresults/(?P<operation_id>[^/]+)", self.poll)

    def cancel_all(self):
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._operations.clear()

    # -- lookups -----------------------------------------------------------------------
    @property
    def subscription_id(self):
        return self.sandbox.subscription_id

    def _plan(self, request):
        rg = self.arm.resource_group(request.params)
        plan = self.p.plan(rg["name"], request.params["name"])
        if plan is None:
            raise not_found(PLAN_TYPE, request.params["name"], rg["name"])
        return plan

    def _view(self, plan):
        return plan_view(self.subscription_id, plan)

    # -- reads -------------------------------------------------------------------------
    def list_all(self, request):
        if request.params["subscription"].lower() != self.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{request.params['subscription']}' "
                                                        "could not be found.")
        return Response.json({"value": [self._view(p) for p in self.p.plans.values()], "nextLink": None})

    def list_by_resource_group(self, request):
        rg = self.arm.resource_group(request.params)
        plans = [p for p in self.p.plans.values() if p.resource_group.lower() == rg["name"].lower()]
        return Response.json({"value": [self._view(p) for p in plans], "nextLink": None})

    def get(self, request):
        return Response.json(self._view(self._plan(request)))

    def skus(self, request):
        return Response.json(skus_view(self._plan(request)))

    # -- writes ------------------------------------------------------------------------
    def put(self, request):
        plan = self._plan(request)
        body = self.arm.body(request)
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        return self._write(request, plan, body)

    def patch(self, request):
        return self._write(request, self._plan(request), self.arm.body(request))

    def _write(self, request, plan, body):
        if plan.operation is not None:
            raise ArmError(409, "Conflict", f"Cannot modify App Service plan '{plan.name}' while another operation "
                                            "on it is in progress. Retry when it has completed.")
        target = self._target(plan, body.get("sku"))
        if isinstance(body.get("tags"), dict):
            plan.tags = dict(body["tags"])
        if target == {"sku": plan.sku, "capacity": plan.capacity}:
            return Response.json(self._view(plan))
        return self._start_scale(request, plan, target)

    def _target(self, plan, sku):
        """The size a write asks for, validated as App Service does; the current size when it asks none."""
        if sku is None:
            return {"sku": plan.sku, "capacity": plan.capacity}
        if not isinstance(sku, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'sku' must be an object.")
        name = sku.get("name") or plan.sku
        info = sku_info(name)
        if info is None:
            raise ArmError(400, "BadRequest", f"The SKU '{name}' is not a valid App Service plan SKU. "
                                              "GET the plan's /skus for the SKUs it can take.")
        if info["tier"].lower() in plan.unavailable_tiers:
            raise ArmError(400, "BadRequest", f"The pricing tier '{info['tier']}' is not allowed in this resource "
                                              f"group: the scale unit of App Service plan '{plan.name}' does not "
                                              "offer it.")
        if sku.get("tier") and sku["tier"].lower() != info["tier"].lower():
            raise ArmError(400, "BadRequest", f"The SKU '{info['name']}' belongs to tier '{info['tier']}', "
                                              f"not '{sku['tier']}'.")
        capacity = sku.get("capacity", plan.capacity)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ArmError(400, "BadRequest", f"sku.capacity must be a whole number of 1 or more, not {capacity!r}.")
        if capacity > info["maximum"]:
            raise ArmError(400, "BadRequest", f"Requested number of workers ({capacity}) exceeds the maximum "
                                              f"({info['maximum']}) of the {info['tier']} tier.")
        return {"sku": info["name"], "capacity": capacity}

    def _start_scale(self, request, plan, target):
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        failure = None
        if fault is not None:
            failure = (fault.code or FAILURE[0], fault.message or FAILURE[1])
        op = ScaleOperation(plan, target)
        self._operations[op.id] = op
        plan.operation = op
        plan.provisioning_state = "InProgress"

        def complete():
            with self.sandbox.lock:
                if self._operations.get(op.id) is not op:
                    return  # a reset happened meanwhile
                plan.operation = None
                plan.provisioning_state = "Succeeded"
                if failure:
                    op.status, op.error = "Failed", failure
                else:
                    op.status = "Succeeded"
                    shrink = target["capacity"] < plan.workers
                    plan.sku, plan.capacity = target["sku"], target["capacity"]
                    extra = self.p.settings["workers_extra_s"]
                    if shrink or extra <= 0:
                        # Removing instances takes effect at once; new ones need time to start.
                        plan.workers, plan.workers_ready_at = plan.capacity, None
                    else:
                        plan.workers_ready_at = time.monotonic() + extra
                plan.history.append({"time": iso(utcnow()), "from": op.before, "to": dict(target),
                                     "status": op.status})

        timer = threading.Timer(max(float(self.p.settings["scale_s"]), 0.0), complete)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        headers = self._monitor_headers(plan, op, request.query.get("api-version", "2025-05-01"))
        return Response.json(self._view(plan), 202, headers)

    # -- the status monitor ------------------------------------------------------------
    def _monitor_headers(self, plan, op, api_version):
        url = (f"{self.sandbox.base_url}{plan_id(self.subscription_id, plan)}/operationresults/{op.id}"
               f"?api-version={api_version}")
        return {"Location": url, "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))}

    def poll(self, request):
        plan = self._plan(request)
        op = self._operations.get(request.params["operation_id"])
        if op is None or op.plan is not plan:
            raise ArmError(404, "NotFound", f"The operation '{request.params['operation_id']}' was not found.")
        if op.status == "InProgress":
            return Response(202, b"", self._monitor_headers(plan, op, request.query.get("api-version", "2025-05-01")))
        if op.status == "Failed":
            code, message = op.error
            return arm_error_response(400, code, message)
        return Response.json(self._view(plan))
