# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure App Service deployment slots: what each slot runs, and the swap calls.

``AppServiceSlots`` reads and acts; it does not decide.  The decisions (is a
swap needed, what would it change, did it do what was asked) live in
``slot_swap.py``.  "production" is the site itself; every other slot is a
child resource ``sites/{app}/slots/{slot}``.
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_IDENTITY_IMPORT_ERROR, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.mgmt.web import WebSiteManagementClient
except ImportError:
    AZURE_WEB_IMPORT_ERROR = traceback.format_exc()
else:
    AZURE_WEB_IMPORT_ERROR = None

# What a webapp_* module checks before it starts (RollbackModule.require_libraries).
WEBAPP_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-web", AZURE_WEB_IMPORT_ERROR)]

PRODUCTION = "production"

# The options of every webapp_* module that name the app (doc fragment sre.rollback.azure.webapp).
WEBAPP_ARGSPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True, aliases=["app"]),
)

# What identifies "a build" in a slot.  The value moves with the slot's content
# when slots swap, which is what makes a swap idempotent by desired state.
FINGERPRINTS = ("image", "deployment_id", "app_setting")


@dataclass
class SlotState:
    """What one slot runs now, as the module reports it."""

    slot: str
    state: str | None = None
    default_host_name: str | None = None
    host_names: list = field(default_factory=list)
    image: str | None = None
    deployment_id: str | None = None
    version_setting: str | None = None
    fingerprint: str | None = None
    target_swap_slot: str | None = None
    last_swap: dict | None = None
    sticky_setting_names: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def image_of(site_config):
    """The container image (or runtime stack) a slot runs, without the ``DOCKER|`` prefix."""
    fx_version = getattr(site_config, "linux_fx_version", None) or getattr(site_config, "windows_fx_version", None)
    if not fx_version:
        return None
    kind, _separator, reference = fx_version.partition("|")
    return reference if kind.upper() in ("DOCKER", "COMPOSE", "KUBE") and reference else fx_version


def build_matches(fingerprint, expected):
    """Does a slot's fingerprint name the build the user asked for?

    An image matches its full reference, ``repository:tag`` without the
    registry, or just the tag, because incident tickets say "1.4.2", not the
    registry path.
    """
    if fingerprint is None or expected is None:
        return False
    if fingerprint == expected:
        return True
    reference = fingerprint.split("@", 1)[0]
    without_registry = reference.split("/", 1)[1] if "/" in reference else reference
    tag = reference.rsplit(":", 1)[1] if ":" in reference.rsplit("/", 1)[-1] else None
    return expected in (without_registry, reference.rsplit("/", 1)[-1], tag)


def short_name(resource_name):
    """ARM names a slot ``app/slot`` and a deployment ``app/id``: keep the last part."""
    return (resource_name or "").rsplit("/", 1)[-1]


class AppServiceSlots:
    """Read and swap the deployment slots of one App Service app."""

    def __init__(self, client, resource_group, app, fingerprint="image", fingerprint_setting="APP_VERSION"):
        if fingerprint not in FINGERPRINTS:
            raise RollbackError("fingerprint must be one of %s, not %r" % (", ".join(FINGERPRINTS), fingerprint))
        self.client = client
        self.resource_group = resource_group
        self.app = app
        self.fingerprint = fingerprint
        self.fingerprint_setting = fingerprint_setting
        self._site = None

    @classmethod
    def connect(cls, settings, resource_group, app, **kwargs):
        """Build the real azure-mgmt-web client from AzureSettings."""
        credential = settings.credential()
        # Sign in before anything else: a credential problem is reported as one
        # clear error, and the parallel reads that follow share the cached token.
        with arm_call("Signing in to Azure"):
            credential.get_token(settings.credential_scope)
        client = WebSiteManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
        return cls(client, resource_group, app, **kwargs)

    @classmethod
    def from_params(cls, params, **kwargs):
        """The app named by a module's options (WEBAPP_ARGSPEC and the Azure connection options)."""
        return cls.connect(AzureSettings.from_params(params), params["resource_group"], params["name"], **kwargs)

    # ---- reads -------------------------------------------------------------

    def site(self):
        """The production site; raises a clear error when the app does not exist."""
        if self._site is None:
            with arm_call(
                "Reading App Service app %s" % self.app,
                not_found="App Service app '%s' not found in resource group '%s'." % (self.app, self.resource_group),
            ):
                self._site = self.client.web_apps.get(self.resource_group, self.app)
        return self._site

    def slot_names(self):
        """``production`` first, then the other slots by name."""
        with arm_call("Listing the slots of %s" % self.app):
            slots = sorted(short_name(slot.name) for slot in self.client.web_apps.list_slots(self.resource_group, self.app))
        return [PRODUCTION] + slots

    def require_slot(self, slot):
        """Fail before any change when the slot does not exist, naming those that do."""
        self.site()
        if slot != PRODUCTION:
            self._get_slot(slot)

    def _get_slot(self, slot):
        """GET one slot; a 404 becomes an error that lists the slots the app has."""
        try:
            with arm_call("Reading slot %s of %s" % (slot, self.app)):
                return self.client.web_apps.get_slot(self.resource_group, self.app, slot)
        except RollbackError:
            names = self.slot_names()
            if slot in names:
                raise
            raise RollbackError(
                "Slot '%s' does not exist on App Service app '%s'. Its slots are: %s." % (slot, self.app, ", ".join(names))
            ) from None

    def sticky_setting_names(self):
        """App setting and connection string names that stay with their slot during a swap."""
        with arm_call("Reading slot-specific setting names of %s" % self.app):
            names = self.client.web_apps.list_slot_configuration_names(self.resource_group, self.app)
        return sorted(list(names.app_setting_names or []) + list(names.connection_string_names or []))

    def read_slot(self, slot, everything=False):
        """What ``slot`` runs now.

        Only the fingerprint's source is read unless ``everything`` is set,
        so a swap costs the fewest calls; the info module reads everything.
        """
        web_apps = self.client.web_apps
        on_slot = slot != PRODUCTION
        resource = self._get_slot(slot) if on_slot else self.site()
        with arm_call("Reading slot %s of %s" % (slot, self.app)):
            state = SlotState(
                slot=slot,
                state=getattr(resource, "state", None),
                default_host_name=getattr(resource, "default_host_name", None),
                host_names=sorted(getattr(resource, "host_names", None) or []),
                target_swap_slot=getattr(resource, "target_swap_slot", None),
                last_swap=_swap_status(getattr(resource, "slot_swap_status", None)),
            )
            if everything or self.fingerprint == "image":
                config = web_apps.get_configuration_slot(self.resource_group, self.app, slot) if on_slot else \
                    web_apps.get_configuration(self.resource_group, self.app)
                state.image = image_of(config)
            if everything or self.fingerprint == "deployment_id":
                deployments = web_apps.list_deployments_slot(self.resource_group, self.app, slot) if on_slot else \
                    web_apps.list_deployments(self.resource_group, self.app)
                state.deployment_id = _active_deployment(deployments)
            if (everything or self.fingerprint == "app_setting") and self.fingerprint_setting:
                settings = web_apps.list_application_settings_slot(self.resource_group, self.app, slot) if on_slot else \
                    web_apps.list_application_settings(self.resource_group, self.app)
                state.version_setting = (settings.properties or {}).get(self.fingerprint_setting)
        state.fingerprint = {
            "image": state.image,
            "deployment_id": state.deployment_id,
            "app_setting": state.version_setting,
        }[self.fingerprint]
        return state

    def read_slots(self, slots, everything=False):
        """Read several slots at once: the calls are independent, so they run side by side.

        Production is waited for first, so that when the app itself does not
        exist its clear "app not found" error is the one raised.
        """
        ordered = sorted(slots, key=lambda slot: slot != PRODUCTION)
        with ThreadPoolExecutor(max_workers=len(ordered) + 1) as pool:
            sticky = pool.submit(self.sticky_setting_names) if everything else None
            reads = [pool.submit(self.read_slot, slot, everything) for slot in ordered]
            states = {state.slot: state for state in (read.result() for read in reads)}
            sticky_names = sticky.result() if sticky else []
        for state in states.values():
            state.sticky_setting_names = list(sticky_names)
        self._site = None  # later reads (after a swap) must see the new state
        return {slot: states[slot] for slot in slots}

    # ---- actions -----------------------------------------------------------

    def begin_swap(self, source, target, polling_interval=2):
        """Start swapping ``source`` into ``target``; returns the azure-core poller."""
        body = {"targetSlot": target, "preserveVnet": True}
        with arm_call("Starting the swap of %s into %s on %s" % (source, target, self.app)):
            if source == PRODUCTION:
                return self.client.web_apps.begin_swap_slot_with_production(
                    self.resource_group, self.app, body, polling_interval=polling_interval)
            return self.client.web_apps.begin_swap_slot(
                self.resource_group, self.app, source, body, polling_interval=polling_interval)

    def apply_preview(self, source, target):
        """Phase one of swap with preview: ``source`` takes ``target``'s slot-specific settings."""
        body = {"targetSlot": target, "preserveVnet": True}
        with arm_call("Applying %s's configuration to %s on %s" % (target, source, self.app)):
            if source == PRODUCTION:
                self.client.web_apps.apply_slot_config_to_production(self.resource_group, self.app, body)
            else:
                self.client.web_apps.apply_slot_configuration_slot(self.resource_group, self.app, source, body)

    def reset_preview(self, source):
        """Cancel a pending swap with preview: ``source`` gets its own settings back."""
        with arm_call("Resetting the swap preview of %s on %s" % (source, self.app)):
            if source == PRODUCTION:
                self.client.web_apps.reset_production_slot_config(self.resource_group, self.app)
            else:
                self.client.web_apps.reset_slot_configuration_slot(self.resource_group, self.app, source)

    def set_image(self, slot, image):
        """Point ``slot`` at a container image (``linuxFxVersion``), as ``az webapp config container set`` does."""
        body = {"properties": {"linuxFxVersion": "DOCKER|" + image}}
        with arm_call("Setting the container image of slot %s of %s" % (slot, self.app)):
            if slot == PRODUCTION:
                self.client.web_apps.update_configuration(self.resource_group, self.app, body)
            else:
                self.client.web_apps.update_configuration_slot(self.resource_group, self.app, slot, body)

    def restart(self, slot):
        with arm_call("Restarting slot %s of %s" % (slot, self.app)):
            if slot == PRODUCTION:
                self.client.web_apps.restart(self.resource_group, self.app)
            else:
                self.client.web_apps.restart_slot(self.resource_group, self.app, slot)


def _swap_status(status):
    if status is None:
        return None
    timestamp = getattr(status, "timestamp_utc", None)
    return {
        "source_slot": getattr(status, "source_slot_name", None),
        "destination_slot": getattr(status, "destination_slot_name", None),
        "timestamp": timestamp.isoformat() if hasattr(timestamp, "isoformat") else timestamp,
    }


def _active_deployment(deployments):
    """The id of the active deployment, or of the newest one when none is marked active."""
    newest = None
    for deployment in deployments:
        if getattr(deployment, "active", False):
            return short_name(deployment.name)
        started = getattr(deployment, "start_time", None)
        if newest is None or (started and (newest[0] is None or started > newest[0])):
            newest = (started, short_name(deployment.name))
    return newest[1] if newest else None
