"""App Service state: sites, their slots, and what a swap moves.

Real App Service swaps a slot's *content* and leaves *slot-specific* settings
where they are:

  moves with the content   container image (linuxFxVersion) and the rest of the
                           site config, non-sticky app settings and connection
                           strings, deployment history (so the running build)
  stays with the slot      host names, app settings / connection strings named
                           in slotConfigNames ("sticky"), settings ending in
                           _EXTENSION_VERSION, and the slot-specific site config
                           elements in STICKY_SITE_CONFIG

Everything here runs under the sandbox lock (taken by the ARM front door and by
the operation timer), so no locking is done in this module.
"""

import copy
import time

from ..core import iso, utcnow

PRODUCTION = "production"

# Site config elements App Service documents as not swapped (scale, Always On,
# networking and diagnostics belong to the slot, not to what is deployed in it).
STICKY_SITE_CONFIG = frozenset({
    "alwaysOn", "numberOfWorkers", "ipSecurityRestrictions", "ipSecurityRestrictionsDefaultAction",
    "scmIpSecurityRestrictions", "scmIpSecurityRestrictionsDefaultAction", "scmIpSecurityRestrictionsUseMain",
    "cors", "vnetName", "vnetRouteAllEnabled", "vnetPrivatePortsCount", "autoSwapSlotName",
    "httpLoggingEnabled", "detailedErrorLoggingEnabled", "requestTracingEnabled", "logsDirectorySizeLimit",
})

DEFAULT_SITE_CONFIG = {
    "numberOfWorkers": 1,
    "linuxFxVersion": "",
    "alwaysOn": True,
    "http20Enabled": True,
    "minTlsVersion": "1.2",
    "ftpsState": "Disabled",
    "healthCheckPath": "/health",
    "webSocketsEnabled": False,
    "autoHealEnabled": False,
}


# ConnectionStringType of the REST API (azure-mgmt-web models.ConnectionStringType). App Service
# parses the enum case-insensitively and answers with its own spelling.
CONNECTION_STRING_TYPES = ("MySql", "SQLServer", "SQLAzure", "Custom", "NotificationHub", "ServiceBus",
                           "EventHub", "ApiHub", "DocDb", "RedisCache", "PostgreSQL")


def canonical_connection_string_type(given):
    """App Service's spelling of a connection string type, or None when it is not one."""
    return {t.lower(): t for t in CONNECTION_STRING_TYPES}.get(str(given).lower())


def image_of(linux_fx_version):
    """The container image of a linuxFxVersion such as 'DOCKER|registry/app:1.4.2'."""
    kind, sep, rest = (linux_fx_version or "").partition("|")
    return rest if sep and kind.upper() == "DOCKER" else (linux_fx_version or "")


class Builds:
    """Catalog of container images: how the app built from each one behaves."""

    def __init__(self, entries, registry=None):
        self.entries = {}
        # image -> None (not in a sandbox registry) or {"exists", "bad", "digest", ...}: what a
        # container host pulling the image gets (sandbox.hooks["acr_image"], when the ACR stand-in runs).
        self.registry = registry
        self.merge(entries)

    def merge(self, entries):
        for image, entry in entries.items():
            current = self.entries.setdefault(image, {})
            current.update({k: v for k, v in entry.items()
                            if k in ("healthy", "version", "latency_ms", "unhealthy_with_settings",
                                     "slow_with_settings")})

    def describe(self, image, app_settings=None):
        """Behaviour of `image`; unknown images are healthy and report their tag as version.

        `unhealthy_with_settings` models the build that passes in staging and
        breaks on production's configuration (a slot-specific setting such as
        the production database): it is unhealthy in any slot whose app
        settings carry all of those values. `slow_with_settings` does the same
        for latency: the build answers after at least its `latency_ms` in any
        slot whose app settings carry all of its `settings`.
        """
        entry = self.entries.get(image, {})
        breaks_on = entry.get("unhealthy_with_settings") or {}
        broken_here = bool(breaks_on) and all((app_settings or {}).get(k) == v for k, v in breaks_on.items())
        # `slow_with_settings` ({"settings": {...}, "latency_ms": N}) models the P2 incident: a
        # configuration change (a pool size of 1, a cache switched off) that leaves the app healthy
        # but slow. Reverting the setting makes it fast again without a redeploy.
        slow = entry.get("slow_with_settings") or {}
        slow_on = slow.get("settings") or {}
        slow_here = bool(slow_on) and all((app_settings or {}).get(k) == v for k, v in slow_on.items())
        latency_ms = int(entry.get("latency_ms", 0))
        if slow_here:
            latency_ms = max(latency_ms, int(slow.get("latency_ms", 0)))
        name = image.rsplit("/", 1)[-1]
        tag = name.split(":", 1)[1] if ":" in name else (image or "latest")
        described = {
            "image": image,
            "healthy": bool(entry.get("healthy", True)) and not broken_here,
            "version": str(entry.get("version") or tag),
            "latency_ms": latency_ms,
            "slowed_by_settings": slow_here,
        }
        # An image in a sandbox registry is pulled from it when the container starts: a missing
        # repository or tag means no container at all, a tag the registry marks bad an unhealthy app.
        pulled = self.registry(image) if self.registry and image else None
        if pulled is not None:
            described["healthy"] = described["healthy"] and pulled["exists"] and not pulled["bad"]
            described["digest"] = pulled["digest"]
            described["pull_error"] = None if pulled["exists"] else (
                f"manifest for {image} not found: manifest unknown (repository {pulled['repository']} "
                f"has no tag or digest {pulled['reference']})")
        return described


class Slot:
    def __init__(self, site, name, seed):
        self.site = site
        self.name = name
        self.site_config = dict(DEFAULT_SITE_CONFIG)
        self.site_config.update(seed.get("site_config", {}))
        if "linux_fx_version" in seed:
            self.site_config["linuxFxVersion"] = seed["linux_fx_version"]
        self.app_settings = dict(seed.get("app_settings", {}))
        self.connection_strings = {
            k: {"value": v["value"], "type": v.get("type", "Custom")} if isinstance(v, dict)
            else {"value": v, "type": "Custom"}
            for k, v in seed.get("connection_strings", {}).items()
        }
        self.deployments = [self._seed_deployment(d) for d in seed.get("deployments", [])]
        self.state = "Running"
        self.target_swap_slot = None
        self.preview_saved = None  # this slot's own sticky values while a swap preview is applied
        self.slot_swap_status = None
        self.last_modified = utcnow()
        self.last_restart = None
        self.host = None  # "127.0.0.1:PORT", assigned by the data plane
        # While a new image's container starts, the old container keeps serving:
        # {"serving": image, "ready_at": monotonic seconds}, or None.
        self.starting = None

    @staticmethod
    def _seed_deployment(d):
        now = iso(utcnow())
        return {
            "id": d["id"], "status": d.get("status", 4), "message": d.get("message", ""),
            "author": d.get("author", "sandbox"), "deployer": d.get("deployer", "sandbox"),
            "author_email": d.get("author_email", ""), "start_time": d.get("start_time", now),
            "end_time": d.get("end_time", now), "active": bool(d.get("active", False)),
            "details": d.get("details", ""),
        }

    @property
    def is_production(self):
        return self.name == PRODUCTION

    @property
    def image(self):
        return image_of(self.site_config.get("linuxFxVersion"))

    def start_container(self, old_image, start_s):
        """The configured image changed: its container takes `start_s` to start, the old one serves meanwhile."""
        serving = self.serving_image if self.starting else old_image
        self.starting = {"serving": serving, "ready_at": time.monotonic() + start_s} if start_s > 0 else None

    @property
    def serving_image(self):
        """The image whose container answers on the slot's host now."""
        if self.starting and time.monotonic() < self.starting["ready_at"]:
            return self.starting["serving"]
        self.starting = None
        return self.image

    # -- sticky vs content -------------------------------------------------------------
    def _sticky_settings(self):
        names = {n.lower() for n in self.site.slot_config_names["appSettingNames"]}
        return {k for k in self.app_settings if k.lower() in names or k.upper().endswith("_EXTENSION_VERSION")}

    def _sticky_connection_strings(self):
        names = {n.lower() for n in self.site.slot_config_names["connectionStringNames"]}
        return {k for k in self.connection_strings if k.lower() in names}

    def sticky_values(self):
        sticky_app = self._sticky_settings()
        sticky_cs = self._sticky_connection_strings()
        return {
            "app_settings": {k: v for k, v in self.app_settings.items() if k in sticky_app},
            "connection_strings": {k: v for k, v in self.connection_strings.items() if k in sticky_cs},
        }

    def set_sticky_values(self, values):
        for key in self._sticky_settings():
            del self.app_settings[key]
        for key in self._sticky_connection_strings():
            del self.connection_strings[key]
        self.app_settings.update(values["app_settings"])
        self.connection_strings.update(values["connection_strings"])

    def take_content(self):
        """Remove and return what a swap moves out of this slot."""
        sticky_app = self._sticky_settings()
        sticky_cs = self._sticky_connection_strings()
        content = {
            "site_config": {k: v for k, v in self.site_config.items() if k not in STICKY_SITE_CONFIG},
            "app_settings": {k: v for k, v in self.app_settings.items() if k not in sticky_app},
            "connection_strings": {k: v for k, v in self.connection_strings.items() if k not in sticky_cs},
            "deployments": self.deployments,
        }
        self.site_config = {k: v for k, v in self.site_config.items() if k in STICKY_SITE_CONFIG}
        self.app_settings = {k: v for k, v in self.app_settings.items() if k in sticky_app}
        self.connection_strings = {k: v for k, v in self.connection_strings.items() if k in sticky_cs}
        self.deployments = []
        self.starting = None  # a swap serves each slot's content at once (its container was warm)
        return content

    def put_content(self, content):
        self.site_config.update(content["site_config"])
        self.app_settings.update(content["app_settings"])
        self.connection_strings.update(content["connection_strings"])
        self.deployments = content["deployments"]
        self.last_modified = utcnow()

    # -- deployments -------------------------------------------------------------------
    def put_deployment(self, dep_id, props):
        """Create or update a deployment record; the one written last becomes active."""
        now = iso(utcnow())
        existing = next((d for d in self.deployments if d["id"].lower() == dep_id.lower()), None)
        record = existing or {"id": dep_id, "status": 4, "message": "", "author": "", "deployer": "",
                              "author_email": "", "start_time": now, "end_time": now, "details": ""}
        for key in ("status", "message", "author", "deployer", "author_email", "start_time", "end_time", "details"):
            if props.get(key) is not None:
                record[key] = props[key]
        for d in self.deployments:
            d["active"] = False
        record["active"] = True
        if existing:
            self.deployments.remove(existing)
        self.deployments.append(record)
        return record


class Site:
    def __init__(self, resource_group, seed):
        self.resource_group = resource_group  # display name of the RG
        self.name = seed["name"]
        self.location = seed.get("location", "West Europe")
        self.kind = seed.get("kind", "app,linux,container")
        self.server_farm = seed.get("server_farm", f"asp-{self.name}")
        self.tags = dict(seed.get("tags", {}))
        names = seed.get("slot_config_names", {})
        self.slot_config_names = {
            "appSettingNames": list(names.get("app_setting_names", [])),
            "connectionStringNames": list(names.get("connection_string_names", [])),
            "azureStorageConfigNames": list(names.get("azure_storage_config_names", [])),
        }
        self.slots = {}
        for slot_name, slot_seed in seed.get("slots", {}).items():
            self.slots[slot_name.lower()] = Slot(self, slot_name, slot_seed)
        if PRODUCTION not in self.slots:
            self.slots[PRODUCTION] = Slot(self, PRODUCTION, {})
        self.swap_in_progress = None  # (source, target) while a swap operation runs

    def slot(self, name):
        return self.slots.get((name or PRODUCTION).lower())

    def non_production_slots(self):
        return [s for key, s in self.slots.items() if key != PRODUCTION]


class AppServiceState:
    def __init__(self, seed, registry=None):
        self.builds = Builds(seed.get("builds", {}), registry)
        self.sites = {}  # (rg lower, site lower) -> Site
        for site_seed in seed.get("sites", []):
            site = Site(site_seed["resource_group"], site_seed)
            self.sites[(site.resource_group.lower(), site.name.lower())] = site

    def site(self, resource_group, name):
        return self.sites.get((resource_group.lower(), name.lower()))

    def sites_in(self, resource_group):
        return [s for (rg, _site), s in self.sites.items() if rg == resource_group.lower()]

    def all_slots(self):
        for site in self.sites.values():
            for slot in site.slots.values():
                yield site, slot


def swap(source, target):
    """Exchange the content of two slots of one site (phase two of a swap).

    If `source` carries a preview (applySlotConfig) towards `target`, it runs
    with target's sticky values; it gets its own back once its content left.
    """
    moving_out = source.take_content()
    moving_in = target.take_content()
    source.put_content(moving_in)
    target.put_content(moving_out)
    if source.preview_saved is not None:
        source.set_sticky_values(source.preview_saved)
        source.preview_saved = None
    source.target_swap_slot = None
    status = {"timestampUtc": iso(utcnow()), "sourceSlotName": source.name, "destinationSlotName": target.name}
    source.slot_swap_status = dict(status)
    target.slot_swap_status = dict(status)


def apply_preview(source, target):
    """Phase one of a swap with preview: source runs with target's sticky settings."""
    if source.preview_saved is None:
        source.preview_saved = copy.deepcopy(source.sticky_values())
    source.set_sticky_values(copy.deepcopy(target.sticky_values()))
    source.target_swap_slot = target.name
    source.last_modified = utcnow()


def reset_preview(slot):
    """Cancel a swap preview: the slot's own sticky settings come back."""
    if slot.preview_saved is not None:
        slot.set_sticky_values(slot.preview_saved)
        slot.preview_saved = None
    slot.target_swap_slot = None
    slot.last_modified = utcnow()
