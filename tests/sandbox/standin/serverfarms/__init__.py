"""App Service plans (Microsoft.Web/serverfarms) provider of the sandbox: scale up/down and out/in.

ARM (AppServicePlansOperations of azure-mgmt-web 11, api-version 2025-05-01; any is accepted):

  GET    /subscriptions/{sub}/providers/Microsoft.Web/serverfarms          list
  GET    .../resourceGroups/{rg}/providers/Microsoft.Web/serverfarms       list_by_resource_group
  GET    .../serverfarms/{name}                                            get
  PUT    .../serverfarms/{name}                                            begin_create_or_update (existing plans)
  PATCH  .../serverfarms/{name}                                            update
  GET    .../serverfarms/{name}/skus                                       get_server_farm_skus
  GET    .../serverfarms/{name}/operationresults/{id}                      the scale's status monitor

A PUT or PATCH that changes the SKU or the capacity is long-running, as the REST
spec says (200 or 202 with the plan): `202` + the plan (`provisioningState:
InProgress`, old size) + `Location` (the status monitor) + `Retry-After`. The
monitor answers `202` while the scale runs, `200` + the plan when it succeeded,
`400` + ARM error when it failed (non-2xx, as azure-core's LocationPolling needs;
see ../operations.py). A write that changes neither answers `200` at once.

Hook: sandbox.hooks["serverfarm_size"](resource_group, plan) -> {sku, tier, capacity,
number_of_workers, provisioning_state} or None (what the plan serves with now).

Admin:
  GET        /_sandbox/serverfarms            this provider's state (plans, sizes, workers, history)
  GET / PUT  /_sandbox/serverfarms/settings   {"scale_s", "workers_extra_s"} (PUT merges)

Faults: `/_sandbox/faults` applies as everywhere; `lro_fail` on a PUT/PATCH ends
the scale Failed (code `ServerFarmScaleFailed` unless the fault names one), the
plan keeps its size.
"""

from ..settings import AdminSettings
from ..web import Response
from .model import Plan, plan_id, plan_view
from .routes import ServerFarmRoutes

# A real scale takes from seconds (capacity within a tier) to a few minutes (a new tier needs
# new workers). The default keeps that shape at a pace a demo can sit through; tests PUT
# small values. workers_extra_s: how long after the plan reports Succeeded the new instances
# take to serve (numberOfWorkers catches up with sku.capacity).
DEFAULT_SETTINGS = {"scale_s": 3.0, "workers_extra_s": 0.0}


class ServerFarmsProvider:
    name = "serverfarms"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.faults = faults
        self.settings = AdminSettings(sandbox, self.name, DEFAULT_SETTINGS)
        self.plans = self._seeded_plans()
        self.routes = ServerFarmRoutes(self)
        self.routes.register()
        sandbox.admin.add("GET", r"/_sandbox/serverfarms", self._get_state)
        sandbox.on_reset(self._reset)
        # Other stand-ins (the App Service data plane, say) may ask what a plan serves with now.
        sandbox.hooks["serverfarm_size"] = self.size_of

    def _seeded_plans(self):
        plans = {}
        for seed in self.sandbox.seed_section(self.name).get("plans", []):
            plan = Plan(seed)
            plans[(plan.resource_group.lower(), plan.name.lower())] = plan
        return plans

    def _reset(self):
        self.routes.cancel_all()
        self.settings.reset()
        self.plans = self._seeded_plans()

    def plan(self, resource_group, name):
        return self.plans.get((resource_group.lower(), name.lower()))

    def size_of(self, resource_group, name):
        """The `serverfarm_size` hook: {sku, tier, capacity, number_of_workers, provisioning_state} or None."""
        with self.sandbox.lock:
            plan = self.plan(resource_group, name)
            if plan is None:
                return None
            return dict(plan.size(), number_of_workers=plan.number_of_workers(),
                        provisioning_state=plan.provisioning_state)

    # -- admin -------------------------------------------------------------------------
    def _get_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        sub = self.sandbox.subscription_id
        return {
            "settings": dict(self.settings),
            "plans": [{
                "id": plan_id(sub, plan),
                "resource_group": plan.resource_group,
                "name": plan.name,
                "sku": plan.sku,
                "tier": plan.tier,
                "capacity": plan.capacity,
                "number_of_workers": plan.number_of_workers(),
                "provisioning_state": plan.provisioning_state,
                "scaling": plan.operation is not None,
                "selectable_skus": [s["name"] for s in plan.selectable()],
                "history": list(plan.history),
                "view": plan_view(sub, plan),
            } for plan in self.plans.values()],
        }

    def env(self):
        return {}

    def stop(self):
        self.routes.cancel_all()
