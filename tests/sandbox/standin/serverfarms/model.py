"""App Service plans (Microsoft.Web/serverfarms): the SKU catalog, the plans, and their JSON shapes.

A plan has a SKU (pricing tier and size, for example P1v3 in tier PremiumV3) and a
capacity (instances, `sku.capacity`); `properties.numberOfWorkers` is how many
instances it has now. A scale is an operation: while it runs the plan reports
`provisioningState: InProgress` and its old size; at its end the new SKU and
capacity apply at once, and the workers follow after `workers_extra_s`.
"""

import time

WEB = "Microsoft.Web"
PLAN_TYPE = "Microsoft.Web/serverfarms"

# (name, tier, family, maximum instances, scale type) as the App Service plan pricing page and
# the plan's `/skus` list give them, cheapest first within a tier. Isolated (App Service
# Environment) and Shared (Windows only) SKUs are not offered to the Linux plans modelled here.
CATALOG = [
    ("F1", "Free", "F", 1, "None"),
    ("B1", "Basic", "B", 3, "Manual"),
    ("B2", "Basic", "B", 3, "Manual"),
    ("B3", "Basic", "B", 3, "Manual"),
    ("S1", "Standard", "S", 10, "Automatic"),
    ("S2", "Standard", "S", 10, "Automatic"),
    ("S3", "Standard", "S", 10, "Automatic"),
    ("P1v2", "PremiumV2", "Pv2", 30, "Automatic"),
    ("P2v2", "PremiumV2", "Pv2", 30, "Automatic"),
    ("P3v2", "PremiumV2", "Pv2", 30, "Automatic"),
    ("P0v3", "PremiumV3", "Pv3", 30, "Automatic"),
    ("P1v3", "PremiumV3", "Pv3", 30, "Automatic"),
    ("P2v3", "PremiumV3", "Pv3", 30, "Automatic"),
    ("P3v3", "PremiumV3", "Pv3", 30, "Automatic"),
]
SKUS = {name.lower(): dict(name=name, tier=tier, family=family, maximum=maximum, scale_type=scale_type)
        for name, tier, family, maximum, scale_type in CATALOG}


def sku_info(name):
    """The catalog entry of a SKU name (any case), or None."""
    return SKUS.get((name or "").lower())


class Plan:
    def __init__(self, seed):
        self.resource_group = seed["resource_group"]
        self.name = seed["name"]
        self.location = seed.get("location", "West Europe")
        self.kind = seed.get("kind", "linux")
        self.tags = dict(seed.get("tags", {}))
        info = sku_info(seed["sku"])
        if info is None:
            raise ValueError(f"serverfarms seed: plan {self.name} has unknown sku {seed['sku']}")
        self.sku = info["name"]
        self.capacity = int(seed.get("capacity", 1))
        # Tiers the plan's scale unit cannot host (an older stamp without PremiumV3, for example):
        # left out of its `/skus` list and refused on update, as App Service does.
        self.unavailable_tiers = {t.lower() for t in seed.get("unavailable_tiers", [])}
        self.workers = self.capacity
        self.workers_ready_at = None  # monotonic time the workers reach `capacity` after a scale
        self.provisioning_state = "Succeeded"
        self.operation = None  # the running scale, if any
        self.history = []  # [{time, from: {sku, capacity}, to: {...}, status}]

    @property
    def tier(self):
        return sku_info(self.sku)["tier"]

    def selectable(self):
        """The catalog entries this plan can take (its `/skus` list)."""
        return [SKUS[name.lower()] for name, tier, *_rest in CATALOG if tier.lower() not in self.unavailable_tiers]

    def number_of_workers(self):
        """Instances that serve now: the workers catch up with `capacity` at `workers_ready_at`."""
        if self.workers_ready_at is not None and time.monotonic() >= self.workers_ready_at:
            self.workers, self.workers_ready_at = self.capacity, None
        return self.workers

    def size(self):
        return {"sku": self.sku, "tier": self.tier, "capacity": self.capacity}


def plan_id(subscription_id, plan):
    return f"/subscriptions/{subscription_id}/resourceGroups/{plan.resource_group}/providers/{WEB}/serverfarms/{plan.name}"


def plan_view(subscription_id, plan):
    """A plan as ARM returns it (AppServicePlan of azure-mgmt-web)."""
    info = sku_info(plan.sku)
    return {
        "id": plan_id(subscription_id, plan),
        "name": plan.name,
        "type": PLAN_TYPE,
        "location": plan.location,
        "kind": plan.kind,
        "tags": dict(plan.tags),
        "sku": {"name": info["name"], "tier": info["tier"], "size": info["name"], "family": info["family"],
                "capacity": plan.capacity},
        "properties": {
            "serverFarmId": 0,
            "name": plan.name,
            "workerSize": "Default",
            "workerSizeId": 0,
            "currentWorkerSize": "Default",
            "currentWorkerSizeId": 0,
            "currentNumberOfWorkers": plan.number_of_workers(),
            "status": "Ready",
            "resourceGroup": plan.resource_group,
            "geoRegion": plan.location,
            "maximumNumberOfWorkers": info["maximum"],
            "numberOfWorkers": plan.number_of_workers(),
            "perSiteScaling": False,
            "elasticScaleEnabled": False,
            "maximumElasticWorkerCount": 1,
            "isSpot": False,
            "reserved": plan.kind == "linux",
            "isXenon": False,
            "hyperV": False,
            "targetWorkerCount": 0,
            "targetWorkerSizeId": 0,
            "zoneRedundant": False,
            "provisioningState": plan.provisioning_state,
        },
    }


def skus_view(plan):
    """GET .../serverfarms/{name}/skus: the SKUs the plan can move to, with their instance limits."""
    return {
        "resourceType": PLAN_TYPE,
        "skus": [
            {"resourceType": PLAN_TYPE,
             "sku": {"name": s["name"], "tier": s["tier"]},
             "capacity": {"minimum": 1, "maximum": s["maximum"], "default": 1, "scaleType": s["scale_type"]}}
            for s in plan.selectable()
        ],
    }
