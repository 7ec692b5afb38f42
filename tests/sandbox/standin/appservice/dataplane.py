"""The apps themselves: one HTTPS listener per site slot.

Real App Service gives every slot its own host name (app.azurewebsites.net,
app-staging.azurewebsites.net). Here every slot gets its own port on
127.0.0.1, and ARM reports `127.0.0.1:PORT` as its host name, so the template
`https://{defaultHostName}{path}` works unchanged against both.

A host name belongs to the slot, not to its content: after a swap the same
port answers with whatever build was swapped in.
"""

import time

from ..hosts import HostPool
from ..web import Response


class DataPlane(HostPool):
    def ensure_hosts(self):
        """Give every slot a listener; set each slot's host name."""
        for site, slot in self.provider.state.all_slots():
            key = (site.resource_group.lower(), site.name.lower(), slot.name.lower())
            slot.host = self.host_for(key, f"app:{site.name}/{slot.name}")

    def _dispatcher(self, key):
        def dispatch(request):
            with self.sandbox.lock:
                site = self.provider.state.site(key[0], key[1])
                slot = site.slot(key[2]) if site else None
                if slot is None:
                    return Response.text("404 Web Site not found.\n", 404)
                build = self.provider.state.builds.describe(slot.serving_image, slot.app_settings)
                names = {"site": site.name, "slot": slot.name}
            started = time.monotonic()
            # Sleep outside the lock: a slow app must not stall ARM.
            if build["latency_ms"]:
                time.sleep(build["latency_ms"] / 1000.0)
            response = self._serve(request, build, names)
            # The monitoring stand-ins (Azure Monitor, Prometheus) count what the app really served.
            report = self.sandbox.hooks.get("app_request")
            if report:
                report(site.resource_group, site.name, slot.name, response.status, time.monotonic() - started)
            return response
        return dispatch

    @staticmethod
    def _serve(request, build, names):
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 Method Not Allowed\n", 405, {"Allow": "GET, HEAD"})
        if build.get("pull_error"):
            # The container never started (its image could not be pulled): App Service's
            # front end answers every path with its own 503 page.
            return Response.text(f":( Application Error\n\n{names['site']} ({names['slot']}): the container "
                                 f"could not start. {build['pull_error']}\n", 503)
        if request.path == "/health":
            health = "healthy" if build["healthy"] else "unhealthy"
            body = {"status": health, "health": health, "version": build["version"],
                    "image": build["image"], **names}
            return Response.json(body, 200 if build["healthy"] else 503)
        if request.path == "/":
            return Response.text(f"{names['site']} ({names['slot']}) running version {build['version']}\n")
        return Response.text("404 Not Found\n", 404)
