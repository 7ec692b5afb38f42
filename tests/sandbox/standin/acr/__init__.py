"""Azure Container Registry (Microsoft.ContainerRegistry/registries) provider of the sandbox.

ARM (main port): GET a registry, list the registries of a resource group or
of the subscription, as azure-mgmt-containerregistry reads them; `loginServer`
is the registry's own port. Data plane (one HTTPS port per registry): the ACR
token exchange and the catalog/tags/manifests API that
azure-containerregistry's ContainerRegistryClient uses (see registry.py).

Offered to other stand-ins:

  sandbox.hooks["acr_image"](image) -> None | dict
      None when `image` is not in a sandbox registry (its host is no registry
      login server here). Otherwise {"registry", "repository", "reference",
      "exists", "digest", "bad"}: what a container host pulling `image` would
      get. `exists` False means the pull fails (unknown repository or tag);
      `bad` means the image pulls but its app answers unhealthy.

Admin (no auth, never faulted):
  GET  /_sandbox/acr                                  this provider's part of /_sandbox/state
  PUT  /_sandbox/acr/registries/{name}/access         {"identity_can_pull": false} takes the
                                                      sandbox identity's pull role away (and back)
  GET|DELETE /_sandbox/acr/calls                      calls on the registry ports
"""

from ..arm import ArmError
from ..calls import CallLog
from ..core import iso, utcnow
from ..web import BadJson, Response
from . import model
from .registry import DataPlane


PROVIDERS_PATH = r"/providers/Microsoft\.ContainerRegistry/registries"
SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
RG = SUBSCRIPTION + r"/resourceGroups/(?P<resource_group>[^/]+)"
IMAGE_HOOK = "acr_image"


class AcrProvider:
    name = "acr"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.identity = arm.identity
        self.faults = faults
        self.calls = CallLog(sandbox, "acr")
        self.state = model.AcrState(sandbox.seed_section(self.name))
        self._check_resource_groups()
        self.dataplane = DataPlane(sandbox, self)
        self.dataplane.ensure_hosts()
        arm.arm_route("GET", RG + PROVIDERS_PATH + r"/(?P<registry>[^/]+)", self._get_registry)
        arm.arm_route("GET", RG + PROVIDERS_PATH, self._list_in_group)
        arm.arm_route("GET", SUBSCRIPTION + PROVIDERS_PATH, self._list_in_subscription)
        sandbox.admin.add("GET", r"/_sandbox/acr", self._admin_state)
        sandbox.admin.add("PUT", r"/_sandbox/acr/registries/(?P<registry>[^/]+)/access", self._admin_access)
        sandbox.hooks[IMAGE_HOOK] = self.image_info
        sandbox.on_reset(self._reset)

    def _check_resource_groups(self):
        known = {rg["name"].lower() for rg in self.sandbox.seed.get("resource_groups", [])}
        for registry in self.state.registries.values():
            if registry.resource_group.lower() not in known:
                raise ValueError(f"seed acr: registry {registry.name} names unknown resource group "
                                 f"{registry.resource_group}")

    def _reset(self):
        self.state = model.AcrState(self.sandbox.seed_section(self.name))
        self.dataplane.ensure_hosts()
        self.dataplane.refresh_tokens.clear()
        self.dataplane.access_tokens.clear()
        self.calls.clear()

    # -- hook for other stand-ins ------------------------------------------------------
    def image_info(self, image):
        host, _sep, rest = (image or "").partition("/")
        with self.sandbox.lock:
            registry = self.state.by_login_server(host)
            if registry is None or not rest:
                return None
            if "@" in rest:
                repository, _sep, reference = rest.partition("@")
            else:
                repository, _sep, reference = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
            repo = registry.repository(repository)
            digest = None
            if repo is not None:
                digest = repo.tags[reference]["digest"] if reference in repo.tags else (
                    reference if reference in repo.manifests else None)
            manifest = repo.manifests.get(digest) if repo is not None and digest else None
            return {"registry": registry.name, "repository": repository, "reference": reference,
                    "exists": manifest is not None, "digest": digest if manifest else None,
                    "bad": bool(manifest and manifest.bad)}

    # -- call log of the registry ports --------------------------------------------------
    def record_call(self, registry, request, status, fault=None):
        with self.sandbox.lock:
            self.calls.append({"time": iso(utcnow()), "registry": registry, "method": request.method,
                               "path": request.path, "query": request.raw_query, "status": status, "fault": fault})

    # -- ARM ---------------------------------------------------------------------------
    def _resource(self, registry):
        rg = self.arm.resource_groups[registry.resource_group.lower()]
        return {
            "id": f"{self.arm.rg_id(rg)}/providers/Microsoft.ContainerRegistry/registries/{registry.name}",
            "name": registry.name,
            "type": "Microsoft.ContainerRegistry/registries",
            "location": registry.location,
            "tags": dict(registry.tags),
            "sku": {"name": registry.sku, "tier": registry.sku},
            "systemData": {"createdAt": iso(registry.created)},
            "properties": {
                "loginServer": registry.login_server,
                "creationDate": iso(registry.created),
                "provisioningState": "Succeeded",
                "adminUserEnabled": False,
                "anonymousPullEnabled": False,
                "publicNetworkAccess": "Enabled",
                "dataEndpointEnabled": False,
                "zoneRedundancy": "Disabled",
            },
        }

    def _get_registry(self, request):
        rg = self.arm.resource_group(request.params)
        registry = self.state.registry(request.params["registry"])
        if registry is None or registry.resource_group.lower() != rg["name"].lower():
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.ContainerRegistry/registries/{request.params['registry']}' "
                           f"under resource group '{rg['name']}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return Response.json(self._resource(registry))

    def _list_in_group(self, request):
        rg = self.arm.resource_group(request.params)
        items = [self._resource(r) for r in self.state.registries.values()
                 if r.resource_group.lower() == rg["name"].lower()]
        return Response.json({"value": items})

    def _list_in_subscription(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return Response.json({"value": [self._resource(r) for r in self.state.registries.values()]})

    # -- admin -------------------------------------------------------------------------
    def _admin_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    def _admin_access(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("identity_can_pull"), bool):
            return Response.json({"error": 'expected {"identity_can_pull": true|false}'}, 400)
        with self.sandbox.lock:
            registry = self.state.registry(request.params["registry"])
            if registry is None:
                return Response.json({"error": f"no registry {request.params['registry']}"}, 404)
            registry.identity_can_pull = body["identity_can_pull"]
            return Response.json({"registry": registry.name, "identity_can_pull": registry.identity_can_pull})

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        registries = []
        for registry in self.state.registries.values():
            repositories = {}
            for repo in registry.repositories.values():
                repositories[repo.name] = {
                    "tags": {name: {"digest": t["digest"], "created": iso(t["created"]), "updated": iso(t["updated"]),
                                    "bad": repo.manifests[t["digest"]].bad}
                             for name, t in sorted(repo.tags.items())},
                }
            registries.append({"name": registry.name, "resource_group": registry.resource_group,
                               "login_server": registry.login_server, "url": f"https://{registry.login_server}",
                               "identity_can_pull": registry.identity_can_pull, "repositories": repositories})
        return {"registries": registries}

    def env(self):
        """SRE_SANDBOX_ACR_<NAME>_LOGIN_SERVER per registry; SRE_SANDBOX_ACR_* for the first one."""
        with self.sandbox.lock:
            env = {}
            for registry in self.state.registries.values():
                prefix = "SRE_SANDBOX_ACR_%s" % registry.name.upper().replace("-", "_")
                env[prefix + "_LOGIN_SERVER"] = registry.login_server
            first = next(iter(self.state.registries.values()), None)
            if first is not None:
                env.update({"SRE_SANDBOX_ACR_NAME": first.name, "SRE_SANDBOX_ACR_LOGIN_SERVER": first.login_server,
                            "SRE_SANDBOX_ACR_URL": f"https://{first.login_server}"})
            return env

    def stop(self):
        self.dataplane.stop()
