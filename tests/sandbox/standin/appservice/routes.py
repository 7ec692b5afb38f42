"""ARM routes of Microsoft.Web/sites (WebAppsOperations in azure-mgmt-web).

Every per-slot operation exists twice, as in the REST API: on the site (the
production slot) and under /slots/{slot}. Handlers take (request, slot) and
do not care which form was used. Status codes are the ones the SDK accepts
(see azure/mgmt/web/operations/_operations.py): 200 everywhere, 202 + Location
for slotsswap.
"""

from ..arm import RG_PREFIX, ArmError, not_found
from ..core import utcnow
from ..faults import error_response_for_lro
from ..web import Response
from . import model, views

SITES = RG_PREFIX + r"/providers/Microsoft\.Web/sites"
SITE = SITES + r"/(?P<site>[^/]+)"
SLOT = SITE + r"/slots/(?P<slot>[^/]+)"


class AppServiceRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm

    def register(self):
        route = self.arm.arm_route
        route("GET", SITES, self.list_sites)
        route("GET", SITE + "/slots", self.list_slots)
        route("GET", SITE + "/config/slotConfigNames", self.get_slot_config_names)
        route("PUT", SITE + "/config/slotConfigNames", self.put_slot_config_names)
        # Per-slot operations: registered for the site and for /slots/{slot}.
        per_slot = [
            ("GET", "", self.get_site),
            ("GET", "/config/web", self.get_config),
            ("PUT", "/config/web", self.update_config),
            ("PATCH", "/config/web", self.update_config),
            ("POST", "/config/appsettings/list", self.list_app_settings),
            ("PUT", "/config/appsettings", self.put_app_settings),
            ("POST", "/config/connectionstrings/list", self.list_connection_strings),
            ("PUT", "/config/connectionstrings", self.put_connection_strings),
            ("GET", "/deployments", self.list_deployments),
            ("GET", "/deployments/(?P<deployment>[^/]+)", self.get_deployment),
            ("PUT", "/deployments/(?P<deployment>[^/]+)", self.put_deployment),
            ("POST", "/slotsswap", self.swap),
            ("POST", "/applySlotConfig", self.apply_slot_config),
            ("POST", "/resetSlotConfig", self.reset_slot_config),
            ("POST", "/restart", self.restart),
        ]
        for method, suffix, handler in per_slot:
            for prefix in (SITE, SLOT):
                route(method, prefix + suffix, self._with_slot(handler))

    # -- lookups -----------------------------------------------------------------------
    def _site(self, request):
        rg = self.arm.resource_group(request.params)
        site = self.p.state.site(rg["name"], request.params["site"])
        if site is None:
            raise not_found("Microsoft.Web/sites", request.params["site"], rg["name"])
        return site

    def _with_slot(self, handler):
        def resolve(request):
            site = self._site(request)
            slot_name = request.params.get("slot")
            # "production" is not a slot resource: the production slot is the site itself.
            slot = site.slot(slot_name) if slot_name and slot_name.lower() != model.PRODUCTION else None
            if slot_name and slot is None:
                raise not_found("Microsoft.Web/sites/slots", f"{site.name}/{slot_name}", site.resource_group)
            return handler(request, slot or site.slot(model.PRODUCTION))
        return resolve

    def _target_slot(self, source, body):
        """The other slot named by a CsmSlotEntity body ({"targetSlot": ...})."""
        target_name = body.get("targetSlot")
        if not target_name:
            raise ArmError(400, "BadRequest", "The parameter targetSlot is required.")
        target = source.site.slot(target_name)
        if target is None:
            raise not_found("Microsoft.Web/sites/slots", f"{source.site.name}/{target_name}",
                            source.site.resource_group)
        if target is source:
            raise ArmError(400, "BadRequest",
                           f"The source slot and the target slot of a swap must differ ('{source.name}').")
        return target

    # -- sites and slots ---------------------------------------------------------------
    def list_sites(self, request):
        rg = self.arm.resource_group(request.params)
        include_slots = request.query.get("includeslots", "").lower() == "true"
        items = []
        for site in self.p.state.sites_in(rg["name"]):
            slots = site.slots.values() if include_slots else [site.slot(model.PRODUCTION)]
            items.extend(views.site_resource(self.arm, s) for s in slots)
        return Response.json(views.page(items))

    def list_slots(self, request):
        site = self._site(request)
        return Response.json(views.page([views.site_resource(self.arm, s) for s in site.non_production_slots()]))

    def get_site(self, request, slot):
        return Response.json(views.site_resource(self.arm, slot))

    # -- config/web --------------------------------------------------------------------
    def get_config(self, request, slot):
        return Response.json(views.config_resource(self.arm, slot, "web", dict(slot.site_config)))

    def update_config(self, request, slot):
        # App Service treats omitted/null siteConfig properties as "leave unchanged",
        # for PUT as well as PATCH.
        props = self.arm.body(request).get("properties") or {}
        old_image = slot.image
        slot.site_config.update({k: v for k, v in props.items() if v is not None})
        if slot.image != old_image:
            slot.start_container(old_image, self.p.container_start_s)
        slot.last_modified = utcnow()
        return self.get_config(request, slot)

    # -- app settings / connection strings (PUT replaces the whole set) ----------------
    def list_app_settings(self, request, slot):
        return Response.json(views.config_resource(self.arm, slot, "appsettings", dict(slot.app_settings)))

    def put_app_settings(self, request, slot):
        props = self.arm.body(request).get("properties") or {}
        slot.app_settings = {k: "" if v is None else str(v) for k, v in props.items()}
        slot.last_modified = utcnow()
        return self.list_app_settings(request, slot)

    def list_connection_strings(self, request, slot):
        return Response.json(views.config_resource(self.arm, slot, "connectionstrings",
                                                   {k: dict(v) for k, v in slot.connection_strings.items()}))

    def put_connection_strings(self, request, slot):
        props = self.arm.body(request).get("properties") or {}
        strings = {}
        for name, pair in props.items():
            if not isinstance(pair, dict) or "value" not in pair:
                raise ArmError(400, "BadRequest", f"Connection string '{name}' needs a value and a type.")
            given = pair.get("type")
            # An omitted type is stored as Custom; a type App Service does not know is refused.
            kind = model.canonical_connection_string_type(given) if given not in (None, "") else "Custom"
            if kind is None:
                raise ArmError(400, "BadRequest",
                               f"Connection string '{name}' has an invalid type '{given}'. Valid types: "
                               f"{', '.join(model.CONNECTION_STRING_TYPES)}.")
            strings[name] = {"value": pair["value"], "type": kind}
        slot.connection_strings = strings
        slot.last_modified = utcnow()
        return self.list_connection_strings(request, slot)

    # -- sticky setting names (site level only) ----------------------------------------
    def _slot_config_names_body(self, site):
        return {
            "id": f"{views.site_id(self.arm, site)}/config/slotConfigNames",
            "name": "slotConfigNames",
            "type": "Microsoft.Web/sites/config",
            "location": site.location,
            "properties": {k: list(v) for k, v in site.slot_config_names.items()},
        }

    def get_slot_config_names(self, request):
        return Response.json(self._slot_config_names_body(self._site(request)))

    def put_slot_config_names(self, request):
        site = self._site(request)
        props = self.arm.body(request).get("properties") or {}
        for key in site.slot_config_names:
            site.slot_config_names[key] = list(props.get(key) or [])
        return self.get_slot_config_names(request)

    # -- deployments -------------------------------------------------------------------
    def list_deployments(self, request, slot):
        # Newest first, as Kudu lists them.
        records = list(reversed(slot.deployments))
        return Response.json(views.page([views.deployment_resource(self.arm, slot, d) for d in records]))

    def _deployment(self, request, slot):
        dep_id = request.params["deployment"]
        record = next((d for d in slot.deployments if d["id"].lower() == dep_id.lower()), None)
        if record is None:
            raise not_found("Microsoft.Web/sites/deployments", f"{slot.site.name}/{dep_id}",
                            slot.site.resource_group)
        return record

    def get_deployment(self, request, slot):
        return Response.json(views.deployment_resource(self.arm, slot, self._deployment(request, slot)))

    def put_deployment(self, request, slot):
        props = self.arm.body(request).get("properties") or {}
        record = slot.put_deployment(request.params["deployment"], props)
        return Response.json(views.deployment_resource(self.arm, slot, record))

    # -- swap --------------------------------------------------------------------------
    def swap(self, request, source):
        target = self._target_slot(source, self.arm.body(request))
        site = source.site
        if site.swap_in_progress:
            raise ArmError(409, "Conflict",
                           f"Cannot modify this site because another operation is in progress: swap of "
                           f"'{site.swap_in_progress[0]}' with '{site.swap_in_progress[1]}'.")
        for slot in (source, target):
            pending = slot.target_swap_slot
            completes_preview = slot is source and pending and pending.lower() == target.name.lower()
            if pending and not completes_preview:
                raise ArmError(409, "Conflict",
                               f"Slot '{slot.name}' has a pending swap with preview to '{pending}'. "
                               "Complete it or reset it (resetSlotConfig) first.")

        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        site.swap_in_progress = (source.name, target.name)

        def release():
            site.swap_in_progress = None

        return self.p.operations.start(
            request, "Microsoft.Web", site.location.replace(" ", ""),
            self.p.sandbox.settings["swap_duration_s"],
            work=lambda: model.swap(source, target),
            failure=error_response_for_lro(fault) if fault else None,
            finally_=release,
        )

    def apply_slot_config(self, request, source):
        target = self._target_slot(source, self.arm.body(request))
        if source.site.swap_in_progress:
            raise ArmError(409, "Conflict", "Cannot modify this site because another operation is in progress.")
        pending = source.target_swap_slot
        if pending and pending.lower() != target.name.lower():
            raise ArmError(409, "Conflict",
                           f"Slot '{source.name}' already has a pending swap with preview to '{pending}'.")
        model.apply_preview(source, target)
        return Response(200)

    def reset_slot_config(self, request, slot):
        if slot.site.swap_in_progress:
            raise ArmError(409, "Conflict", "Cannot modify this site because another operation is in progress.")
        model.reset_preview(slot)
        return Response(200)

    def restart(self, request, slot):
        slot.last_restart = utcnow()
        return Response(200)
