"""App Service (Microsoft.Web/sites) provider of the sandbox.

A provider is a class with:
  name                    its section in the seed and in /_sandbox/state
  __init__(sandbox, arm, operations, faults)   build state from the seed, register routes
  snapshot() -> dict      its part of GET /_sandbox/state
  env() -> dict           extra variables for env.sh (may be empty)
  stop()                  release listeners
and is listed in server.PROVIDERS. Key Vault, storage, Kubernetes stand-ins
follow the same shape.
"""

from ..web import BadJson, Response
from .dataplane import DataPlane
from .model import AppServiceState
from .routes import AppServiceRoutes
from .views import slot_id


class AppServiceProvider:
    name = "appservice"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.operations = operations
        self.faults = faults
        self.state = AppServiceState(sandbox.seed_section(self.name), self._registry_image)
        self.dataplane = DataPlane(sandbox, self)
        self.dataplane.ensure_hosts()
        AppServiceRoutes(self).register()
        sandbox.admin.add("PUT", r"/_sandbox/builds", self._put_builds)
        sandbox.admin.add("GET", r"/_sandbox/builds", self._get_builds)
        sandbox.admin.add("GET", r"/_sandbox/appservice/settings", self._get_settings)
        sandbox.admin.add("PUT", r"/_sandbox/appservice/settings", self._put_settings)
        # Seconds a new image's container takes to start after linuxFxVersion changes (the old one
        # serves meanwhile). 0, the default, switches at once.
        self.container_start_s = 0.0
        sandbox.on_reset(self._reset)

    def _get_settings(self, request):
        with self.sandbox.lock:
            return Response.json({"container_start_s": self.container_start_s})

    def _put_settings(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        value = body.get("container_start_s") if isinstance(body, dict) and set(body) == {"container_start_s"} else None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            return Response.json({"error": 'expected {"container_start_s": <seconds >= 0>}'}, 400)
        with self.sandbox.lock:
            self.container_start_s = float(value)
            return Response.json({"container_start_s": self.container_start_s})

    def _reset(self):
        self.container_start_s = 0.0
        self.state = AppServiceState(self.sandbox.seed_section(self.name), self._registry_image)
        self.dataplane.ensure_hosts()

    def _registry_image(self, image):
        """What pulling `image` from a sandbox registry gives (the ACR stand-in, if it runs), else None."""
        lookup = self.sandbox.hooks.get("acr_image")
        return lookup(image) if lookup else None

    # -- admin -------------------------------------------------------------------------
    def _get_builds(self, request):
        with self.sandbox.lock:
            return Response.json(self.state.builds.entries)

    def _put_builds(self, request):
        try:
            entries = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            return Response.json({"error": 'expected {"<image>": {"healthy": bool, "version": str, '
                                           '"latency_ms": int}}'}, 400)
        for image, entry in entries.items():
            problem = _slow_rule_problem(entry.get("slow_with_settings"))
            if problem:
                return Response.json({"error": f"{image}: slow_with_settings {problem}"}, 400)
        with self.sandbox.lock:
            self.state.builds.merge(entries)
            return Response.json(self.state.builds.entries)

    def snapshot(self):
        sites = []
        for site in self.state.sites.values():
            slots = {}
            for slot in site.slots.values():
                build = self.state.builds.describe(slot.serving_image, slot.app_settings)
                slots[slot.name] = {
                    "id": slot_id(self.arm, slot),
                    "host": slot.host,
                    "url": f"https://{slot.host}",
                    "linux_fx_version": slot.site_config.get("linuxFxVersion"),
                    "build": build,
                    "app_settings": dict(slot.app_settings),
                    "connection_strings": {k: dict(v) for k, v in slot.connection_strings.items()},
                    "deployments": [dict(d) for d in slot.deployments],
                    "target_swap_slot": slot.target_swap_slot,
                    "slot_swap_status": slot.slot_swap_status,
                    "last_restart": slot.last_restart.isoformat() if slot.last_restart else None,
                }
            sites.append({
                "resource_group": site.resource_group,
                "name": site.name,
                "slot_config_names": {k: list(v) for k, v in site.slot_config_names.items()},
                "swap_in_progress": list(site.swap_in_progress) if site.swap_in_progress else None,
                "slots": slots,
            })
        return {"sites": sites, "builds": dict(self.state.builds.entries)}

    def env(self):
        return {}

    def stop(self):
        self.dataplane.stop()


def _slow_rule_problem(rule):
    """Why a build's `slow_with_settings` entry is unusable, or None (absent or well formed)."""
    if rule is None:
        return None
    if not isinstance(rule, dict) or set(rule) - {"settings", "latency_ms"}:
        return 'must be {"settings": {"<name>": "<value>"}, "latency_ms": <int>}'
    settings = rule.get("settings")
    if not isinstance(settings, dict) or not settings or not all(isinstance(v, str) for v in settings.values()):
        return "needs settings: a non-empty object of app setting names to string values"
    latency = rule.get("latency_ms")
    if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
        return "needs latency_ms: an integer >= 0"
    return None
