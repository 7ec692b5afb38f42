"""The static sites themselves: one HTTPS listener per environment.

Real Static Web Apps give every environment its own host name
(gentle-sea-0a1b.azurestaticapps.net, gentle-sea-0a1b-42.westeurope.azurestaticapps.net).
Here every environment gets its own port on 127.0.0.1 and ARM reports
`127.0.0.1:PORT` as `defaultHostname` / the build's `hostname`, so
`https://{hostname}/version.json` works unchanged against both.

Each host serves the last build deployed into its environment:
  GET /               HTML page naming site, environment, version and commit
  GET /index.html     the same
  GET /version.json   {"version", "commit", "environment", "deployed_at"}
An environment with nothing deployed (deleted, or production after a delete)
answers 404, as a Static Web App does.
"""

import html

from ..hosts import HostPool
from ..web import Response


class DataPlane(HostPool):
    def ensure_hosts(self):
        """Give every environment a listener; set each one's host name."""
        for site, env in self.provider.state.all_environments():
            key = (site.resource_group.lower(), site.name.lower(), env.name.lower())
            env.host = self.host_for(key, f"swa:{site.name}/{env.name}")

    def _dispatcher(self, key):
        def dispatch(request):
            with self.sandbox.lock:
                site = self.provider.state.site(key[0], key[1])
                env = site.environment(key[2]) if site else None
                current = dict(env.current) if env and env.current else None
                names = {"site": site.name if site else key[1], "environment": env.name if env else key[2]}
            return self._serve(request, current, names)
        return dispatch

    @staticmethod
    def _serve(request, current, names):
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 Method Not Allowed\n", 405, {"Allow": "GET, HEAD"})
        if current is None:
            return Response(404, _page("404: Not Found", "Nothing is deployed to this environment."),
                            content_type="text/html; charset=utf-8")
        if request.path == "/version.json":
            return Response.json({"version": current["version"], "commit": current["commit"],
                                  "environment": names["environment"], "deployed_at": current["deployed_at"]},
                                 headers={"Cache-Control": "no-cache"})
        if request.path in ("/", "/index.html"):
            title = f"{names['site']} {current['version']}"
            body = (f"{names['site']} ({names['environment']}) serving version {current['version']} "
                    f"(commit {current['commit']}), deployed {current['deployed_at']}")
            return Response(200, _page(title, body, current), content_type="text/html; charset=utf-8")
        return Response(404, _page("404: Not Found", f"{request.path} does not exist."),
                        content_type="text/html; charset=utf-8")


def _page(title, text, current=None):
    meta = ""
    if current:
        meta = (f'<meta name="app-version" content="{html.escape(str(current["version"]))}">'
                f'<meta name="app-commit" content="{html.escape(str(current["commit"]))}">')
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>{meta}</head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n")
