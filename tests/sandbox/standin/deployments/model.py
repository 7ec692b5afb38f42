"""State of the deployments stand-in: deployment history per scope and a generic resource store.

A scope is a resource group (key "rg:<name lower>") or the subscription
("sub"). Each scope has its deployment history (by name, case-insensitive,
kept in creation order) and the resources that deployments put there (by id,
case-insensitive). A deployment is evaluated by template.py, validated, then
applied when its long-running operation completes: incremental mode writes
only the template's resources, complete mode also deletes the scope's other
resources (resource-group scope only, as in ARM).

The store keeps what a resource provider would return on GET: write-only
properties (passwords) are dropped, as real providers never return them, so
neither what-if nor any view can leak them.
"""

import copy
import datetime
import uuid

from . import template as tpl

WRITE_ONLY_PROPERTIES = {"administratorloginpassword", "adminpassword", "password", "secret"}
DEPLOYMENTS_TYPE = "Microsoft.Resources/deployments"
# Regions preflight accepts (a subset of Azure's public regions, plus "global").
REGIONS = {
    "global", "westeurope", "northeurope", "swedencentral", "uksouth", "ukwest", "francecentral",
    "germanywestcentral", "norwayeast", "switzerlandnorth", "eastus", "eastus2", "westus", "westus2", "westus3",
    "centralus", "northcentralus", "southcentralus", "canadacentral", "brazilsouth", "australiaeast",
    "japaneast", "koreacentral", "southeastasia", "eastasia", "centralindia", "southafricanorth", "uaenorth",
}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z" if ts else None


def iso_duration(seconds):
    return "PT%sS" % (f"{seconds:.7f}".rstrip("0").rstrip("."))


def strip_write_only(value):
    if isinstance(value, dict):
        return {k: strip_write_only(v) for k, v in value.items() if k.lower() not in WRITE_ONLY_PROPERTIES}
    if isinstance(value, list):
        return [strip_write_only(v) for v in value]
    return value


def stored_view(resource):
    """What a GET of the resource returns (and what what-if compares)."""
    view = {k: copy.deepcopy(resource[k]) for k in ("id", "type", "name", "apiVersion") if k in resource}
    for key in ("location", "sku", "kind", "tags", "properties"):
        if key in resource:
            view[key] = strip_write_only(copy.deepcopy(resource[key]))
    return view


class Deployment:
    def __init__(self, scope, name, template, supplied_parameters, mode, location=None, tags=None):
        self.scope = scope
        self.name = name
        self.template = template
        self.supplied_parameters = supplied_parameters or {}
        self.mode = mode
        self.location = location
        self.tags = tags or {}
        self.state = "Accepted"
        self.timestamp = None
        self.started = None
        self.duration_s = 0.0
        self.correlation_id = str(uuid.uuid4())
        self.template_hash = tpl.template_hash(template)
        self.parameters = {}        # bound values incl. defaults (secure ones never shown)
        self.outputs = {}
        self.output_resources = []
        self.error = None
        self.operation_id = None
        self.operations = []        # deployment operations: one per resource written / deleted


class Scope:
    def __init__(self, key, resource_group=None):
        self.key = key
        self.resource_group = resource_group  # {"name", "location"} or None
        self.deployments = {}  # lower name -> Deployment, insertion = creation order
        self.resources = {}    # lower id -> resource dict

    def history(self):
        return list(self.deployments.values())


class FailingValueRule:
    """Seed rule: a resource whose property equals a value makes the deployment fail, as a provider would."""

    def __init__(self, spec):
        self.type = spec["type"].lower()
        self.path = spec["path"].split(".")
        self.equals = spec["equals"]
        self.code = spec.get("code", "ResourceDeploymentFailure")
        self.message = spec.get("message", "The resource provider rejected the resource.")

    def matches(self, resource):
        if resource["type"].lower() != self.type:
            return False
        node = resource
        for part in self.path:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return node == self.equals


class DeploymentsState:
    def __init__(self, seed, subscription_id, tenant_id, resource_groups):
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self.resource_groups = resource_groups  # the ARM front door's {lower name: {"name", "location"}}
        self.scopes = {}
        self.failing_values = [FailingValueRule(r) for r in seed.get("failing_values", [])]
        self.sub_location = seed.get("subscription_location", "westeurope")
        for entry in seed.get("history", []):
            self._replay(entry)

    # -- scopes -------------------------------------------------------------------------------
    def scope(self, resource_group_name=None):
        if resource_group_name is None:
            return self.scopes.setdefault("sub", Scope("sub"))
        rg = self.resource_groups[resource_group_name.lower()]
        key = "rg:" + rg["name"].lower()
        if key not in self.scopes:
            self.scopes[key] = Scope(key, rg)
        return self.scopes[key]

    def deployment_id(self, dep):
        if dep.scope.resource_group:
            return (f"/subscriptions/{self.subscription_id}/resourceGroups/{dep.scope.resource_group['name']}"
                    f"/providers/{DEPLOYMENTS_TYPE}/{dep.name}")
        return f"/subscriptions/{self.subscription_id}/providers/{DEPLOYMENTS_TYPE}/{dep.name}"

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, scope, name, template, parameters, location=None):
        ctx = tpl.Context(self.subscription_id, self.tenant_id, name, scope.resource_group,
                          location or (scope.resource_group or {}).get("location"))
        return tpl.evaluate(template, parameters, ctx)

    def preflight(self, scope, evaluated):
        """Checks ARM runs after template validation: InvalidTemplateDeployment with inner errors."""
        details = []
        for res in evaluated.resources:
            location = str(res.get("location", "global")).replace(" ", "").lower()
            if location not in REGIONS:
                details.append({"code": "LocationNotAvailableForResourceType",
                                "message": f"The provided location '{res.get('location')}' is not available for "
                                           f"resource type '{res['type']}'. List of available regions for the "
                                           f"resource type is '{','.join(sorted(REGIONS - {'global'}))}'.",
                                "target": res["id"]})
            elif scope.resource_group is None and res["type"].lower() != "microsoft.resources/resourcegroups":
                details.append({"code": "InvalidResourceScope",
                                "message": f"The resource '{res['type']}/{res['name']}' cannot be deployed at "
                                           "subscription scope by the sandbox; only resource groups can."})
        return details

    # -- what-if ------------------------------------------------------------------------------
    def what_if(self, scope, evaluated, mode):
        """Diff of the template's resources against the store, in ARM's WhatIfChange shape."""
        changes, seen = [], set()
        for res in evaluated.resources:
            key = res["id"].lower()
            seen.add(key)
            after = stored_view(res)
            current = scope.resources.get(key)
            if current is None:
                changes.append({"resourceId": res["id"], "changeType": "Create", "before": None, "after": after})
                continue
            before = stored_view(current)
            delta = property_delta(before, after)
            change = {"resourceId": res["id"], "changeType": "Modify" if delta else "NoChange",
                      "before": before, "after": after}
            if delta:
                change["delta"] = delta
            changes.append(change)
        for key, res in scope.resources.items():
            if key in seen:
                continue
            deletes = mode.lower() == "complete" and scope.resource_group is not None
            changes.append({"resourceId": res["id"], "changeType": "Delete" if deletes else "Ignore",
                            "before": stored_view(res), "after": None})
        return changes

    # -- apply (end of the long-running operation) ---------------------------------------------
    def failure_for(self, evaluated):
        for res in evaluated.resources:
            for rule in self.failing_values:
                if rule.matches(res):
                    return {"code": "DeploymentFailed",
                            "message": "At least one resource deployment operation failed. Please list deployment "
                                       "operations for details. Please see https://aka.ms/arm-deployment-operations "
                                       "for usage details.",
                            "details": [{"code": rule.code, "message": rule.message, "target": res["id"]}]}
        return None

    def apply(self, dep, evaluated, ended_at, fault_error=None):
        """Finish a deployment: write resources (or fail, changing nothing), record outputs and state."""
        scope = dep.scope
        dep.duration_s = max((ended_at - dep.started).total_seconds(), 0.001)
        dep.timestamp = ended_at
        error = fault_error or self.failure_for(evaluated)
        if error:
            dep.state, dep.error = "Failed", error
            failed_target = (error.get("details") or [{}])[0].get("target")
            dep.operations = [self._operation(res, "Create", "Failed" if res["id"] == failed_target else "Succeeded")
                              for res in evaluated.resources]
            return
        written = set()
        ops = []
        for res in evaluated.resources:
            key = res["id"].lower()
            existed = key in scope.resources
            scope.resources[key] = copy.deepcopy(res)
            written.add(key)
            ops.append(self._operation(res, "Write" if existed else "Create", "Succeeded"))
        if dep.mode.lower() == "complete" and scope.resource_group is not None:
            for key in [k for k in scope.resources if k not in written]:
                ops.append(self._operation(scope.resources.pop(key), "Delete", "Succeeded"))
        dep.operations = ops
        dep.outputs = evaluated.outputs()
        dep.output_resources = [{"id": res["id"]} for res in evaluated.resources]
        dep.state = "Succeeded"

    def _operation(self, res, kind, state):
        target = {"id": res["id"], "resourceType": res["type"], "resourceName": res["name"]}
        return {"operationId": uuid.uuid4().hex[:16].upper(), "provisioningOperation": kind,
                "provisioningState": state, "targetResource": target}

    # -- seed replay ---------------------------------------------------------------------------
    def _replay(self, entry):
        """Run a seeded deployment through the same engine, so its state and the store are computed, not typed."""
        scope = self.scope(entry.get("resource_group"))
        dep = Deployment(scope, entry["name"], entry["template"], entry.get("parameters"),
                         entry.get("mode", "Incremental"), location=entry.get("location"), tags=entry.get("tags"))
        evaluated = self.evaluate(scope, dep.name, dep.template, dep.supplied_parameters, dep.location)
        dep.parameters = evaluated.parameters
        ended = parse_time(entry["timestamp"])
        dep.started = ended - datetime.timedelta(seconds=float(entry.get("duration_s", 60)))
        self.apply(dep, evaluated, ended)
        scope.deployments[dep.name.lower()] = dep


def property_delta(before, after, prefix=""):
    """WhatIfPropertyChange list for what differs; nested objects flatten to dotted paths, arrays compare whole."""
    changes = []
    keys = list(before or {}) + [k for k in (after or {}) if k not in (before or {})]
    for key in keys:
        if not prefix and key in ("id", "type", "name", "apiVersion"):
            continue
        path = f"{prefix}{key}"
        b_has, a_has = key in (before or {}), key in (after or {})
        b, a = (before or {}).get(key), (after or {}).get(key)
        if b_has and not a_has:
            # Incremental PUT semantics: a property the template omits is not deleted by ARM what-if
            # for top-level keys; nested omissions are reported as Delete as ARM does.
            if prefix:
                changes.append({"path": path, "propertyChangeType": "Delete", "before": b})
            continue
        if a_has and not b_has:
            changes.append({"path": path, "propertyChangeType": "Create", "after": a})
            continue
        if isinstance(b, dict) and isinstance(a, dict):
            changes.extend(property_delta(b, a, path + "."))
        elif b != a:
            changes.append({"path": path, "propertyChangeType": "Modify", "before": b, "after": a})
    return changes
