"""ARM routes of Microsoft.Web/staticSites (StaticSitesOperations in azure-mgmt-web).

Paths and accepted status codes are those of azure/mgmt/web/operations/_operations.py
(api-version 2025-05-01): GET answers 200; DELETE of a build answers 202 +
Location (the SDK accepts 200/202/204 and polls with ARMPolling).
"""

from ..arm import RG_PREFIX, ArmError, not_found
from ..faults import error_response_for_lro
from ..web import Response
from . import model, views

SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
STATIC_SITES = r"/providers/Microsoft\.Web/staticSites"
SITE = RG_PREFIX + STATIC_SITES + r"/(?P<site>[^/]+)"
BUILD = SITE + r"/builds/(?P<environment>[^/]+)"


class StaticSitesRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm

    def register(self):
        route = self.arm.arm_route
        route("GET", SUBSCRIPTION + STATIC_SITES, self.list_all)          # static_sites.list
        route("GET", RG_PREFIX + STATIC_SITES, self.list_in_group)        # get_static_sites_by_resource_group
        route("GET", SITE, self.get_site)                                 # get_static_site
        route("GET", SITE + "/builds", self.list_builds)                  # get_static_site_builds
        route("GET", BUILD, self.get_build)                               # get_static_site_build
        route("DELETE", BUILD, self.delete_build)                         # begin_delete_static_site_build

    # -- lookups -----------------------------------------------------------------------
    def _site(self, request):
        rg = self.arm.resource_group(request.params)
        site = self.p.state.site(rg["name"], request.params["site"])
        if site is None:
            raise not_found(views.STATIC_SITES, request.params["site"], rg["name"])
        return site

    def _environment(self, request):
        site = self._site(request)
        env = site.environment(request.params["environment"])
        if env is None:
            raise not_found(f"{views.STATIC_SITES}/builds", f"{site.name}/{request.params['environment']}",
                            site.resource_group)
        return site, env

    # -- reads -------------------------------------------------------------------------
    def list_all(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.p.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return Response.json(views.page([views.static_site_resource(self.arm, s)
                                         for s in self.p.state.sites.values()]))

    def list_in_group(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json(views.page([views.static_site_resource(self.arm, s)
                                         for s in self.p.state.sites_in(rg["name"])]))

    def get_site(self, request):
        return Response.json(views.static_site_resource(self.arm, self._site(request)))

    def list_builds(self, request):
        site = self._site(request)
        return Response.json(views.page([views.build_resource(self.arm, e) for e in site.environments.values()]))

    def get_build(self, request):
        _site, env = self._environment(request)
        return Response.json(views.build_resource(self.arm, env))

    # -- delete (long-running) ---------------------------------------------------------
    def delete_build(self, request):
        """Delete an environment.

        A preview environment disappears when the operation ends (its host then
        answers 404). The production environment (`default`) cannot disappear
        while the site exists: its content is removed and it waits for the next
        deploy (status WaitingForDeployment, host 404) — what the mystira
        runbook's "delete current and redeploy previous" relies on.
        """
        site, env = self._environment(request)
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        status_before = env.status
        env.status = model.DELETING
        site.deleting.add(env.name.lower())
        outcome = {"done": False}

        def work():
            if env.is_production:
                env.clear_content()
            else:
                site.remove_environment(env)
            outcome["done"] = True

        def release():
            site.deleting.discard(env.name.lower())
            if not outcome["done"] and env.status == model.DELETING:
                env.status = status_before

        failure = None
        if fault:
            status, code, message = error_response_for_lro(fault)
            failure = (status, fault.code or "StaticSiteBuildDeleteFailed", message)
        return self.p.operations.start(
            request, "Microsoft.Web", site.location.replace(" ", ""),
            self.p.sandbox.settings["swap_duration_s"],
            work=work, failure=failure, finally_=release,
        )
