# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure Static Web Apps: the environments of a site and what each one serves.

A Static Web App has no deployment slots.  It has environments, which ARM
calls builds: ``default`` is production, the others are preview environments
made for pull requests or branches, each on its own host name.  Rolling a
Static Web App back means deploying the previous version again (through the
deploy workflow) or deleting a preview environment; this module reads the
environments, optionally asks each one which version it really serves, and
deletes an environment.

``StaticWebApp`` reads and acts through azure-mgmt-web's StaticSitesOperations;
``VersionProbe`` asks a host for its version document with httpx.  Neither
imports AnsibleModule.
"""

from __future__ import annotations

import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call, arm_error_code
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import wait_for_operation

try:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.web import WebSiteManagementClient
except ImportError:
    AZURE_WEB_IMPORT_ERROR = traceback.format_exc()
    ResourceNotFoundError = None
else:
    AZURE_WEB_IMPORT_ERROR = None

try:
    import httpx
except ImportError:
    httpx = None
    HTTPX_IMPORT_ERROR = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

PRODUCTION = "default"
# What people and the GitHub deploy action call the production environment.
PRODUCTION_ALIASES = ("default", "production")
# Build statuses after which nothing is being deployed into or removed from an environment.
SETTLED_STATUSES = ("Ready", "Failed", "WaitingForDeployment", "Detached")
# The keys a version document may use for the commit it was built from.
COMMIT_KEYS = ("commit", "commit_sha", "sha", "git_commit", "revision")
# A version document is small; anything bigger is not one.
MAX_PROBE_BYTES = 256 * 1024


def environment_name(name):
    """The ARM build name for what a person calls an environment (``production`` is ``default``)."""
    text = (name or "").strip()
    return PRODUCTION if text.lower() in PRODUCTION_ALIASES or not text else text


def _text(value):
    """An SDK enum (BuildStatus.READY) or string as its plain value."""
    if value is None:
        return None
    return getattr(value, "value", value)


def _timestamp(value):
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _attr(resource, name):
    """A flattened property of an ARM resource model, or None."""
    try:
        return getattr(resource, name)
    except AttributeError:
        return None


@dataclass
class EnvironmentState:
    """One environment of a Static Web App, as the module reports it."""

    name: str
    is_production: bool
    hostname: str | None = None
    url: str | None = None
    status: str | None = None
    source_branch: str | None = None
    pull_request_title: str | None = None
    created: str | None = None
    last_updated: str | None = None
    served_version: str | None = None
    served_commit: str | None = None
    probe: dict | None = None

    def to_dict(self):
        return asdict(self)

    @property
    def settled(self):
        return self.status in SETTLED_STATUSES


def environment_from_build(build):
    """Parse a StaticSiteBuildARMResource (or anything with the same attributes)."""
    name = _attr(build, "build_id") or (_attr(build, "name") or "").rsplit("/", 1)[-1]
    hostname = _attr(build, "hostname")
    return EnvironmentState(
        name=name,
        is_production=name.lower() == PRODUCTION,
        hostname=hostname,
        url="https://%s" % hostname if hostname else None,
        status=_text(_attr(build, "status")),
        source_branch=_attr(build, "source_branch"),
        pull_request_title=_attr(build, "pull_request_title"),
        created=_timestamp(_attr(build, "created_time_utc")),
        last_updated=_timestamp(_attr(build, "last_updated_on")),
    )


def is_absent(state):
    """Is there nothing left to delete?  Production never disappears; it is empty when nothing is deployed."""
    return state is None or (state.is_production and state.status == "WaitingForDeployment")


def site_summary(site, resource_group):
    """The site-level facts a person needs: where it lives, where it deploys from."""
    sku = _attr(site, "sku")
    return {
        "name": _attr(site, "name"),
        "id": _attr(site, "id"),
        "resource_group": resource_group,
        "location": _attr(site, "location"),
        "default_hostname": _attr(site, "default_hostname"),
        "repository_url": _attr(site, "repository_url"),
        "branch": _attr(site, "branch"),
        "provider": _attr(site, "provider"),
        "sku": _text(_attr(sku, "name")) if sku is not None else None,
    }


def order_environments(states):
    """Production first, then the preview environments by name."""
    return sorted(states, key=lambda state: (not state.is_production, state.name.lower()))


def dig(document, path):
    """The value at a dotted ``path`` (``build.version``) of a JSON document, or None."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def parse_version_document(body, version_field="version"):
    """(version, commit) from the body of a version document such as ``/version.json``.

    Raises ValueError when the body is not a JSON object or has no version,
    with a message that says which.
    """
    try:
        document = json.loads(body)
    except (TypeError, ValueError):
        raise ValueError("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the answer is JSON but not an object")
    version = dig(document, version_field)
    if version is None or isinstance(version, (dict, list)):
        raise ValueError("the answer has no '%s' value" % version_field)
    commit = next((document[key] for key in COMMIT_KEYS if isinstance(document.get(key), str)), None)
    return str(version), commit


class StaticWebApp:
    """Read and delete the environments of one Static Web App."""

    def __init__(self, client, resource_group, name):
        self.client = client
        self.resource_group = resource_group
        self.name = name

    @classmethod
    def connect(cls, settings, resource_group, name):
        """Build the real azure-mgmt-web client from AzureSettings."""
        client = WebSiteManagementClient(settings.credential(), settings.subscription_id, **settings.client_kwargs())
        return cls(client, resource_group, name)

    def site(self):
        """The site summary; raises a clear error when the Static Web App does not exist."""
        with arm_call(
            "Reading Static Web App %s" % self.name,
            not_found="Static Web App '%s' not found in resource group '%s'." % (self.name, self.resource_group),
        ):
            return site_summary(self.client.static_sites.get_static_site(self.resource_group, self.name),
                                self.resource_group)

    def environments(self):
        """Every environment, production first."""
        with arm_call(
            "Listing the environments of Static Web App %s" % self.name,
            not_found="Static Web App '%s' not found in resource group '%s'." % (self.name, self.resource_group),
        ):
            builds = list(self.client.static_sites.get_static_site_builds(self.resource_group, self.name))
        return order_environments(environment_from_build(build) for build in builds)

    def environment(self, name):
        """One environment, or None when it does not exist (call ``site()`` first for a clear site error)."""
        name = environment_name(name)
        with arm_call("Reading environment %s of Static Web App %s" % (name, self.name)):
            try:
                build = self.client.static_sites.get_static_site_build(self.resource_group, self.name, name)
            except ResourceNotFoundError as error:
                if arm_error_code(error) == "ResourceNotFound":
                    return None
                raise
        return environment_from_build(build)

    def begin_delete(self, name, polling_interval=2):
        """Start deleting an environment; returns the azure-core poller."""
        with arm_call("Starting the delete of environment %s of Static Web App %s" % (name, self.name)):
            return self.client.static_sites.begin_delete_static_site_build(
                self.resource_group, self.name, name, polling_interval=polling_interval)


def remove_environment(app, environment, confirm=False, timeout=600, polling_interval=2, check_mode=False):
    """Make a Static Web App environment absent; returns ``(changed, result)``.

    Refuses production (``default``) unless ``confirm``: it would serve nothing until the next deploy.
    """
    name = environment_name(environment)
    if timeout <= 0 or polling_interval <= 0:
        raise RollbackError("timeout and polling_interval must be more than 0.")
    app.site()  # a missing site or resource group says so, before anything else
    current = app.environment(name)
    if current is not None and current.is_production and not confirm:
        raise RollbackError(
            "Refusing to delete the production environment ('default') of Static Web App '%s': production "
            "would serve nothing until the next deploy. Set confirm: true to do it, or redeploy the previous "
            "version instead." % app.name,
            before=current.to_dict(),
        )
    if current is None:
        return False, dict(environment=name, before={}, after={})
    before = current.to_dict()
    if is_absent(current):
        return False, dict(environment=name, before=before, after=before)
    predicted = {} if not current.is_production else dict(before, status="WaitingForDeployment")
    if check_mode:
        return True, dict(environment=name, before=before, after=predicted,
                          diff=dict(before=before, after=predicted))
    what = "Deleting environment %s of Static Web App %s" % (name, app.name)
    poller = app.begin_delete(name, polling_interval=polling_interval)
    with arm_call(what, before=before):
        progress = wait_for_operation(poller, timeout, what)
    remaining = app.environment(name)
    after = remaining.to_dict() if remaining else {}
    if remaining is not None and not is_absent(remaining):
        raise RollbackError(
            "%s finished, but the environment is still there (status %s)." % (what, remaining.status),
            before=before, after=after, progress=progress,
        )
    return True, dict(environment=name, before=before, after=after, progress=progress,
                      diff=dict(before=before, after=after))


class VersionProbe:
    """Ask each environment's host which version it serves (GET https://{hostname}{path})."""

    def __init__(self, path="/version.json", version_field="version", timeout=10.0, verify=True):
        if not path.startswith("/"):
            raise RollbackError("probe_path must start with '/', not %r." % path)
        if timeout <= 0:
            raise RollbackError("probe_timeout must be more than 0.")
        self.path = path
        self.version_field = version_field
        self.timeout = timeout
        self.verify = verify

    def probe(self, hostname, client):
        """The probe result for one host: url, status_code, version, commit, error, elapsed_ms."""
        url = "https://%s%s" % (hostname, self.path)
        result = {"url": url, "status_code": None, "version": None, "commit": None, "error": None, "elapsed_ms": None}
        started = time.monotonic()
        try:
            response = client.get(url)
            body = response.content[:MAX_PROBE_BYTES]
        except Exception as error:  # pylint: disable=broad-except
            # httpx's own exception names ("ConnectError", "ReadTimeout") say what happened.
            result["error"] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            return result
        finally:
            result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        result["status_code"] = response.status_code
        if response.status_code != 200:
            result["error"] = "HTTP %s from %s" % (response.status_code, url)
            return result
        try:
            result["version"], result["commit"] = parse_version_document(body, self.version_field)
        except ValueError as error:
            result["error"] = "%s: %s" % (url, error)
        return result

    def probe_all(self, states):
        """Probe every environment that has a host name, side by side; fills served_version/commit."""
        targets = [state for state in states if state.hostname]
        if not targets:
            return
        with httpx.Client(verify=self.verify, timeout=self.timeout, follow_redirects=False) as client:
            with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
                results = list(pool.map(lambda state: self.probe(state.hostname, client), targets))
        for state, result in zip(targets, results):
            state.probe = result
            state.served_version = result["version"]
            state.served_commit = result["commit"]
