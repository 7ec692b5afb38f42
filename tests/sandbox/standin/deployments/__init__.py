"""ARM template deployments (Microsoft.Resources/deployments) provider of the sandbox.

Deployment history at resource-group and subscription scope, long-running
create-or-update, validate, what-if, export template and deployment
operations (see routes.py for the wire contract), a small template engine
(template.py) and a generic resource store the deployments write into
(model.py), so that what-if is a real diff and complete mode really deletes.

The seed (`seed/deployments.json`, section `deployments`) holds a history of
deployments that are replayed through the same engine at start and reset, so
their state (Succeeded / Failed) and the store are computed, not typed in:

  {"failing_values": [{"type", "path", "equals", "code", "message"}],
   "history": [{"resource_group" (absent: subscription scope), "location" (subscription scope),
                "name", "timestamp", "duration_s", "mode", "template", "parameters", "tags"}]}

Admin:
  GET /_sandbox/deployments            this provider's part of /_sandbox/state
  GET, PUT /_sandbox/deployments/settings   {"duration_s": 1.0, "what_if_duration_s": 0.5}: how long
                                        a deployment and a what-if run; PUT merges
"""

from ..settings import AdminSettings
from ..web import Response
from . import model
from .routes import DeploymentsRoutes


DEFAULT_SETTINGS = {"duration_s": 1.0, "what_if_duration_s": 0.5}


class DeploymentsProvider:
    name = "deployments"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.operations = operations
        self.faults = faults
        self.settings = AdminSettings(sandbox, "deployments", DEFAULT_SETTINGS)
        self.state = self._load()
        self.routes = DeploymentsRoutes(self)
        self.routes.register()
        sandbox.admin.add("GET", r"/_sandbox/deployments", self._get_state)
        sandbox.on_reset(self._reset)

    def _load(self):
        return model.DeploymentsState(self.sandbox.seed_section(self.name), self.sandbox.subscription_id,
                                      self.sandbox.tenant_id, self.arm.resource_groups)

    def _reset(self):
        self.routes.reset()
        self.settings.reset()
        self.state = self._load()

    # -- views ----------------------------------------------------------------------------------
    def view(self, dep):
        """DeploymentExtended as ARM returns it; secure parameter and output values are never echoed."""
        secure = model.tpl.secure_parameter_names(dep.template)
        declared = (dep.template.get("parameters") or {}) if isinstance(dep.template, dict) else {}
        params = {}
        for name, value in dep.parameters.items():
            ptype = model.tpl.PARAMETER_TYPES.get(str(declared.get(name, {}).get("type", "")).lower(), "String")
            params[name] = {"type": ptype} if name.lower() in secure else {"type": ptype, "value": value}
        outputs = {}
        for name, out in dep.outputs.items():
            outputs[name] = {"type": out["type"]} if str(out["type"]).lower().startswith("secure") else dict(out)
        props = {
            "templateHash": dep.template_hash,
            "parameters": params,
            "mode": dep.mode,
            "provisioningState": dep.state,
            "timestamp": model.iso(dep.timestamp),
            "duration": model.iso_duration(dep.duration_s),
            "correlationId": dep.correlation_id,
            "providers": _providers(dep.template),
            "dependencies": [],
        }
        if dep.state == "Succeeded":
            props["outputs"] = outputs
            props["outputResources"] = list(dep.output_resources)
        if dep.error:
            props["error"] = dep.error
        view = {"id": self.state.deployment_id(dep), "name": dep.name, "type": model.DEPLOYMENTS_TYPE,
                "properties": props, "tags": dict(dep.tags)}
        if dep.location:
            view["location"] = dep.location
        return view

    def snapshot(self):
        scopes = {}
        for key, scope in self.state.scopes.items():
            label = scope.resource_group["name"] if scope.resource_group else "subscription"
            scopes[label] = {
                "deployments": [{"name": d.name, "state": d.state, "mode": d.mode, "timestamp": model.iso(d.timestamp),
                                 "template_hash": d.template_hash} for d in scope.history()],
                "resources": [model.stored_view(r) for r in scope.resources.values()],
            }
        return {"settings": dict(self.settings), "scopes": scopes}

    # -- admin ----------------------------------------------------------------------------------
    def _get_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    # -- provider interface ---------------------------------------------------------------------
    def env(self):
        return {}

    def stop(self):
        self.routes.reset()


def _providers(template):
    """properties.providers: the namespaces and resource types the template deploys."""
    by_ns = {}
    for res in (template.get("resources") or []) if isinstance(template, dict) else []:
        rtype = res.get("type", "") if isinstance(res, dict) else ""
        if "/" in rtype and not rtype.startswith("["):
            namespace, _slash, rest = rtype.partition("/")
            by_ns.setdefault(namespace, [])
            if rest not in by_ns[namespace]:
                by_ns[namespace].append(rest)
    return [{"namespace": ns, "resourceTypes": [{"resourceType": t} for t in types]}
            for ns, types in by_ns.items()]
