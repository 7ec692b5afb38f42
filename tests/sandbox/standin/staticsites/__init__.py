"""Static Web Apps (Microsoft.Web/staticSites) provider of the sandbox.

ARM: the static sites of a resource group, one site, its environments
("builds": `default` = production, plus preview environments) and the
long-running delete of an environment. Data plane: one HTTPS host per
environment serving the build deployed last (see dataplane.py).

Deploys do not go through ARM (a real deploy uploads content with the site's
deployment token). They arrive through:

  sandbox.hooks["static_site_deploy"](site_name, environment, version, commit_sha, **details)
      called by the GitHub stand-in when a deploy workflow run succeeds.
      environment: "default" (also "", None or "production") or a preview
      environment name (created if absent). details may carry source_branch,
      pull_request_title and source (default "workflow").
      Returns the deploy record {site, resource_group, environment, hostname,
      version, commit, deployed_at, source}; raises ValueError for an unknown or
      ambiguous site name or an empty version.

  POST /_sandbox/staticsites/{name}/deploy {"environment", "version", "commit"}
      the same, for tests and the demo (source "admin"); 201 + the record.

  GET /_sandbox/staticsites
      this provider's part of /_sandbox/state.
"""

from ..web import BadJson, Response
from . import model
from .dataplane import DataPlane
from .routes import StaticSitesRoutes
from .views import site_id

DEPLOY_HOOK = "static_site_deploy"


class StaticSitesProvider:
    name = "staticsites"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.operations = operations
        self.faults = faults
        self.state = model.StaticSitesState(sandbox.seed_section(self.name))
        self.dataplane = DataPlane(sandbox, self)
        self.dataplane.ensure_hosts()
        StaticSitesRoutes(self).register()
        sandbox.hooks[DEPLOY_HOOK] = self.deploy
        sandbox.admin.add("POST", r"/_sandbox/staticsites/(?P<site>[^/]+)/deploy", self._post_deploy)
        sandbox.admin.add("GET", r"/_sandbox/staticsites", self._get_state)
        sandbox.on_reset(self._reset)

    def _reset(self):
        self.state = model.StaticSitesState(self.sandbox.seed_section(self.name))
        self.dataplane.ensure_hosts()

    # -- deploys -----------------------------------------------------------------------
    def deploy(self, site_name, environment, version, commit_sha, **details):
        """Make `environment` of `site_name` serve `version` built from `commit_sha`."""
        if version is None or not str(version).strip():
            raise ValueError("a deploy needs a version")
        with self.sandbox.lock:
            site = self.state.by_name(site_name)
            if site is None:
                known = sorted(s.name for s in self.state.sites.values())
                raise ValueError(f"no single static site named {site_name!r}; known: {', '.join(known)}")
            name = model.environment_name(environment)
            env = site.environment(name)
            if env is None:
                env = site.add_environment(
                    name,
                    source_branch=details.get("source_branch") or name,
                    pull_request_title=details.get("pull_request_title"),
                    history=[],
                )
                self.dataplane.ensure_hosts()
            record = env.deploy(str(version).strip(), commit_sha, details.get("source") or "workflow")
            return {"site": site.name, "resource_group": site.resource_group, "environment": env.name,
                    "hostname": env.host, **record}

    def _post_deploy(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        if not isinstance(body, dict) or not body.get("version"):
            return Response.json({"error": 'expected {"environment": "default", "version": "1.2.2", '
                                           '"commit": "<sha>"}'}, 400)
        unknown = set(body) - {"environment", "version", "commit", "source_branch", "pull_request_title"}
        if unknown:
            return Response.json({"error": f"unknown fields: {', '.join(sorted(unknown))}"}, 400)
        try:
            record = self.deploy(request.params["site"], body.get("environment"), body["version"],
                                 body.get("commit"), source="admin", source_branch=body.get("source_branch"),
                                 pull_request_title=body.get("pull_request_title"))
        except ValueError as err:
            return Response.json({"error": str(err)}, 404)
        return Response.json(record, 201)

    def _get_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        sites = []
        for site in self.state.sites.values():
            envs = {}
            for env in site.environments.values():
                current = env.current
                envs[env.name] = {
                    "host": env.host,
                    "url": f"https://{env.host}",
                    "status": env.status,
                    "source_branch": env.source_branch,
                    "pull_request_title": env.pull_request_title,
                    "version": current["version"] if current else None,
                    "commit": current["commit"] if current else None,
                    "history": [dict(d) for d in env.history],
                }
            sites.append({
                "id": site_id(self.arm, site),
                "resource_group": site.resource_group,
                "name": site.name,
                "default_hostname": site.default.host,
                "deleting": sorted(site.deleting),
                "environments": envs,
            })
        return {"sites": sites}

    def env(self):
        """SRE_SANDBOX_SWA_<SITE>_URL: the production URL of each seeded static site."""
        with self.sandbox.lock:
            return {
                "SRE_SANDBOX_SWA_%s_URL" % site.name.upper().replace("-", "_"): f"https://{site.default.host}"
                for site in self.state.sites.values()
            }

    def stop(self):
        self.dataplane.stop()
