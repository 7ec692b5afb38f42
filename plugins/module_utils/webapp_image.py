# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make one App Service slot run a given container image, idempotently.

The image to run is named in full (``image``), as a tag of the slot's
repository (``tag``), or as "the image before the current one"
(``previous``).  Before anything changes, the image is looked up in its Azure
Container Registry; a missing tag fails with the tags a person probably
meant.

Where "previous" comes from.  App Service keeps no history of
``linuxFxVersion``: the only per-slot history its API has is the deployment
log (``sites/deployments``, Kudu's records, listed newest first and moved
with the slot's content by a swap).  Every image change made here therefore
writes one deployment record whose ``details`` is JSON
``{"image", "previous_image", "kind"}`` (``kind`` is ``deploy`` or
``rollback``), and ``previous`` reads those records back:

* the newest record is a deploy of the image the slot runs: its
  ``previous_image`` is the target;
* the newest record is a rollback to the image the slot runs: the slot
  already is where ``previous`` leads, so a second run changes nothing
  (going further back means naming the tag);
* anything else (no records, or the slot runs an image the records do not
  explain because it was changed by other means) is an error that names what
  the records say, before any change.

A CI pipeline that writes deployment records in the same shape makes its
deploys part of that history.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from ansible_collections.sre.rollback.plugins.module_utils.azure_acr import (
    ContainerRegistry,
    ImageRef,
    is_acr_login_server,
    resolve_login_server,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import PRODUCTION, short_name
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.health import HealthProbe, HealthProbeError
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle

DEPLOYER = "sre.rollback.webapp_container_image"
DEPLOYMENT_SUCCESS = 4  # Kudu's DeployStatus.Success


def ensure_image(slots, slot, image, restart=False, check_mode=False):
    """Set ``slot`` to ``image`` unless it runs it already; returns ``(changed, result)``.

    The original entry point (no registry check, no history record), kept for callers that only set an image.
    ``slots`` is an AppServiceSlots built with the ``image`` fingerprint.
    """
    if not image or any(ch.isspace() for ch in image) or "|" in image:
        raise RollbackError("image must be a container image reference such as myacr.azurecr.io/api:1.4.2, not %r." % image)
    before = slots.read_slot(slot)  # fails clearly, listing the slots, when it does not exist
    result = dict(before=dict(image=before.image), after=dict(image=image), slot=slot, restarted=False,
                  diff=dict(before="image: %s\n" % before.image, after="image: %s\n" % image))
    if before.image == image:
        result["after"] = dict(image=before.image)
        result["diff"]["after"] = result["diff"]["before"]
        return False, result
    if check_mode:
        result["restarted"] = restart
        return True, result
    slots.set_image(slot, image)
    if restart:
        slots.restart(slot)
        result["restarted"] = True
    now = slots.read_slot(slot)
    if now.image != image:
        raise RollbackError("Slot '%s' was set to %s but reports %s." % (slot, image, now.image), before=result["before"])
    result["after"] = dict(image=now.image)
    return True, result


# ---- deployment history --------------------------------------------------------------


def image_records(deployments):
    """The image changes among a slot's deployment records, newest first.

    Records without image details (zip or git deploys, CI that does not write
    them) are skipped.  Each item: ``{id, image, previous_image, kind, time, active}``.
    """
    records = []
    for order, deployment in enumerate(deployments):
        try:
            details = json.loads(getattr(deployment, "details", None) or "")
        except ValueError:
            continue
        if not isinstance(details, dict) or not details.get("image"):
            continue
        started = getattr(deployment, "start_time", None)
        records.append({
            "id": short_name(getattr(deployment, "name", None) or getattr(deployment, "id", "")),
            "image": details["image"],
            "previous_image": details.get("previous_image"),
            "kind": details.get("kind") or "deploy",
            "time": started.isoformat() if hasattr(started, "isoformat") else started,
            "active": bool(getattr(deployment, "active", False)),
            "_order": order,
        })
    # Newest first by start time; the listing order (newest first) breaks ties.
    records.sort(key=lambda r: (_sortable_time(r["time"]), -r["_order"]), reverse=True)
    for record in records:
        del record["_order"]
    return records


def _sortable_time(value):
    if not value:
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def previous_image(records, current):
    """The image ``previous`` leads to, given the records (newest first) and the image the slot runs."""
    if not records:
        raise RollbackError(
            "previous needs the slot's image history, and its deployment log records no image change "
            "(images set by this module are recorded; other tools may not). Name the image or tag to roll back to.")
    newest = records[0]
    if newest["image"] != current:
        raise RollbackError(
            "The slot runs %s, but its newest recorded image change (%s, %s) is to %s: it was changed by other means, "
            "so the image before it is unknown. Name the image or tag to roll back to."
            % (current, newest["id"], newest["time"], newest["image"]), history=records[:10])
    if newest["kind"] == "rollback":
        return current
    if newest.get("previous_image"):
        return newest["previous_image"]
    older = next((r for r in records[1:] if r["image"] != current), None)
    if older is None:
        raise RollbackError("The deployment log records only %s for this slot; there is no earlier image to roll "
                            "back to. Name the image or tag." % current, history=records[:10])
    return older["image"]


def deployment_id(image, when):
    digest = hashlib.sha256(image.encode("utf-8")).hexdigest()[:8]
    return "image-%s-%s" % (when.strftime("%Y%m%dT%H%M%S%fZ"), digest)


# ---- the module's work ----------------------------------------------------------------


class ContainerImage:
    """Lists a slot's registry tags and moves the slot to an image (by reference, tag or "previous")."""

    def __init__(self, slots, settings, slot=PRODUCTION, registry=None, repository=None,
                 audience="https://containerregistry.azure.net", cloud="AzurePublicCloud", registry_factory=None):
        self.slots = slots
        self.settings = settings
        self.slot = slot
        self.registry_option = registry
        self.repository_option = repository
        self.audience = audience
        self.cloud = cloud
        self._registry_factory = registry_factory or (lambda server: ContainerRegistry.connect(settings, server, audience))
        self._registries = {}
        self._login_server = None

    # -- reads ------------------------------------------------------------------------
    def web_apps(self):
        return self.slots.client.web_apps

    def history(self):
        on_slot = self.slot != PRODUCTION
        rg, app = self.slots.resource_group, self.slots.app
        with arm_call("Reading the deployment log of slot %s of %s" % (self.slot, app)):
            deployments = list(self.web_apps().list_deployments_slot(rg, app, self.slot) if on_slot
                               else self.web_apps().list_deployments(rg, app))
        return image_records(deployments)

    def login_server(self):
        """The registry named by the registry option (resolved once), or None."""
        if self.registry_option and self._login_server is None:
            self._login_server = resolve_login_server(self.slots.client, self.settings.subscription_id,
                                                      self.registry_option, self.cloud)
        return self._login_server

    def registry(self, login_server):
        if login_server not in self._registries:
            self._registries[login_server] = self._registry_factory(login_server)
        return self._registries[login_server]

    def is_checked_registry(self, image):
        """Can this image be looked up? Only Azure Container Registries are (by domain, or named by registry)."""
        return bool(image.registry) and (is_acr_login_server(image.registry) or image.registry == self.login_server())

    def repository_of(self, current):
        """(login server, repository) whose tags matter: the options, else the slot's current image."""
        current_ref = _parse_or_none(current)
        server = self.login_server() or (current_ref.registry if current_ref else None)
        repository = self.repository_option or (current_ref.repository if current_ref else None)
        if not server or not repository:
            raise RollbackError(
                "Cannot tell which registry and repository to use: slot '%s' runs %s. Give registry and repository "
                "(or a full image)." % (self.slot, current or "no container image"))
        return server, repository

    def list_tags(self, current, history, limit):
        server, repository = self.repository_of(current)
        tags = self.registry(server).list_tags(repository, limit=limit)
        base = ImageRef(server, repository)
        previous = None
        try:
            previous = previous_image(history, current) if history else None
        except RollbackError:
            previous = None
        for tag in tags:
            tag["image"] = base.with_tag(tag["name"]).reference
            tag["current"] = tag["image"] == current
        return dict(login_server=server, repository=repository, tags=tags, previous_image=previous)

    # -- decide -----------------------------------------------------------------------
    def target(self, current, history, image=None, tag=None, previous=False):
        """The image reference to run, and whether it came from "previous"."""
        if image:
            ref = ImageRef.parse(image)
            server = self.login_server()
            if server and ref.registry and ref.registry.lower() != server:
                raise RollbackError("image %s is in registry %s, but the registry option names %s. Give one or "
                                    "the other." % (image, ref.registry, server))
            return ref, "deploy"
        if tag:
            server, repository = self.repository_of(current)
            return ImageRef.parse("%s/%s:%s" % (server, repository, tag)), "deploy"
        if previous:
            return ImageRef.parse(previous_image(history, current)), "rollback"
        raise RollbackError("Give image, tag or previous (or list_tags to only list the registry's tags).")

    # -- act --------------------------------------------------------------------------
    def record(self, image, previous, kind):
        """Write the deployment record that makes this change part of the slot's history."""
        now = datetime.datetime.now(datetime.timezone.utc)
        dep_id = deployment_id(image, now)
        when = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"properties": {
            "status": DEPLOYMENT_SUCCESS,
            "message": "%s container image %s (was %s)" % ("Rolled back to" if kind == "rollback" else "Deployed",
                                                           image, previous),
            "author": "sre.rollback",
            "deployer": DEPLOYER,
            "start_time": when,
            "end_time": when,
            "active": True,
            "details": json.dumps({"image": image, "previous_image": previous, "kind": kind}, sort_keys=True),
        }}
        rg, app = self.slots.resource_group, self.slots.app
        with arm_call("Recording the image change in the deployment log of slot %s of %s" % (self.slot, app)):
            if self.slot == PRODUCTION:
                self.web_apps().create_deployment(rg, app, dep_id, body)
            else:
                self.web_apps().create_deployment_slot(rg, app, dep_id, self.slot, body)
        return dep_id


def health_probe(url, wait_timeout, version_field=None, expected_version=None, require_healthy=True):
    """A probe that waits (warm-up) until ``url`` answers, and reports the expected build when asked."""
    try:
        return HealthProbe(
            [url], samples=1, interval=1.0, warmup_timeout=wait_timeout, timeout=wait_timeout + 10,
            expected_status=None if require_healthy else list(range(100, 600)),
            version_field=version_field, expected_version=expected_version if version_field else None,
            verify=ca_bundle())
    except HealthProbeError as error:
        raise RollbackError("health_url: %s" % error) from error


def set_container_image(work, check_mode=False, image=None, tag=None, previous=False, restart=False,
                        verify_image=True, record_history=True, list_tags=False, tags_limit=20,
                        health_url=None, health_version_field=None, health_version_value="tag",
                        require_healthy=True, wait_timeout=300):
    """The whole module: returns ``(changed, result)``; ``work`` is a ContainerImage."""
    if wait_timeout <= 0:
        raise RollbackError("wait_timeout must be more than 0 seconds.")
    if tags_limit < 1:
        raise RollbackError("tags_limit must be 1 or more.")
    if tag is not None:
        ImageRef.parse("repository:" + tag)  # a malformed tag fails before anything else
    if health_version_field and not health_url:
        raise RollbackError("health_version_field needs health_url.")
    slots, slot = work.slots, work.slot
    state = slots.read_slot(slot)  # fails clearly, listing the slots, when it does not exist
    current = state.image
    wants_change = bool(image or tag or previous)
    history = work.history() if (previous or list_tags) else []
    result = dict(slot=slot, restarted=False, registry_checked=False, registry=None, deployment_id=None,
                  answered_after_s=None, before=dict(image=current), after=dict(image=current))
    if list_tags:
        result["tags"] = work.list_tags(current, history, tags_limit)
        result["history"] = history[:10]
    if not wants_change:
        result["diff"] = dict(before="image: %s\n" % current, after="image: %s\n" % current)
        return False, result

    target, kind = work.target(current, history, image=image, tag=tag, previous=previous)
    probe = None
    if health_url:
        # Built before any change, so a malformed URL fails first.
        expected = target.reference if health_version_value == "image" else (target.digest or target.tag or "latest")
        probe = health_probe(health_url, wait_timeout, health_version_field, expected, require_healthy)
    if verify_image and work.is_checked_registry(target):
        known = result["tags"]["tags"] if list_tags and result["tags"]["login_server"] == target.registry and \
            result["tags"]["repository"] == target.repository else None
        found = work.registry(target.registry).require(target, known)
        result["registry_checked"] = True
        result["registry"] = dict(login_server=target.registry, repository=target.repository,
                                  tag=target.tag, **{k: found.get(k) for k in ("digest", "created_on", "last_updated_on")})
    wanted = target.reference
    result["after"] = dict(image=wanted)
    result["diff"] = dict(before="image: %s\n" % current, after="image: %s\n" % wanted)
    if current == wanted:
        result["after"] = dict(image=current)
        return False, result
    if check_mode:
        result["restarted"] = restart
        return True, result

    slots.set_image(slot, wanted)
    if record_history:
        try:
            result["deployment_id"] = work.record(wanted, current, kind)
        except RollbackError as error:
            # The image did change: say so, or a person would retry a change that already happened.
            raise RollbackError("Slot '%s' now runs %s (was %s), but the change could not be recorded for a later "
                                "rollback with previous: %s" % (slot, wanted, current, error.message),
                                before=result["before"], after=dict(image=wanted), changed=True) from error
    if restart:
        slots.restart(slot)
        result["restarted"] = True
    now = slots.read_slot(slot)
    if now.image != wanted:
        raise RollbackError("Slot '%s' was set to %s but reports %s." % (slot, wanted, now.image),
                            before=result["before"], after=dict(image=now.image), changed=True)
    if probe:
        outcome = probe.run()
        if not outcome.healthy:
            expected = "healthy" if require_healthy else "at all"
            if health_version_field:
                expected += " with %s %s" % (health_version_field, probe.expected_version)
            raise RollbackError(
                "Slot '%s' now runs %s (was %s), but %s did not answer %s within %s s: %s"
                % (slot, wanted, current, health_url, expected, wait_timeout, outcome.summary()),
                before=result["before"], after=dict(image=now.image), deployment_id=result["deployment_id"],
                changed=True)
        result["answered_after_s"] = outcome.duration_s
    return True, result


def _parse_or_none(reference):
    if not reference:
        return None
    try:
        return ImageRef.parse(reference)
    except RollbackError:
        return None
