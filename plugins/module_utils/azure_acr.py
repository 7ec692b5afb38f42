# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure Container Registry: image references, and the tags a repository holds.

``ImageRef`` parses and rebuilds container image references the way Docker
does.  ``ContainerRegistry`` reads tags through azure-containerregistry's
``ContainerRegistryClient``, which performs ACR's own token exchange (an
Entra ID token becomes an ACR refresh token, then a repository-scoped access
token); nothing here talks HTTP itself.  Registry failures become
RollbackError messages that say what to do: a 401 from the registry is a
missing pull role, not a failed Azure sign-in.
"""

from __future__ import annotations

import difflib
import re
import traceback
from dataclasses import dataclass

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.containerregistry import ContainerRegistryClient
except ImportError:
    ACR_IMPORT_ERROR = traceback.format_exc()
    ContainerRegistryClient = None
else:
    ACR_IMPORT_ERROR = None

try:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.core.rest import HttpRequest
except ImportError:  # reported by the module through the azure-identity requirement
    ClientAuthenticationError = HttpResponseError = ResourceNotFoundError = None
    ServiceRequestError = ServiceResponseError = HttpRequest = None

# Login-server domains of Azure Container Registry in each cloud.
ACR_DOMAINS = (".azurecr.io", ".azurecr.cn", ".azurecr.us")

# The audience of the Entra ID token exchanged for an ACR token, per cloud
# (azure-containerregistry's documented values).
ACR_AUDIENCES = {
    "AzurePublicCloud": "https://containerregistry.azure.net",
    "AzureChinaCloud": "https://management.chinacloudapi.cn",
    "AzureUSGovernment": "https://management.usgovcloudapi.net",
}
LOGIN_SERVER_SUFFIX = {"AzurePublicCloud": ".azurecr.io", "AzureChinaCloud": ".azurecr.cn",
                       "AzureUSGovernment": ".azurecr.us"}

REGISTRY_API_VERSION = "2023-07-01"
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag`` or ``registry/repository@digest``."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, reference):
        """Parse an image reference; raises RollbackError for anything Docker would refuse."""
        text = (reference or "").strip()
        if not text or any(ch.isspace() for ch in text) or "|" in text:
            raise RollbackError("%r is not a container image reference such as myacr.azurecr.io/api:1.4.2." % reference)
        name, _sep, digest = text.partition("@")
        first, slash, rest = name.partition("/")
        # Docker's rule: the first component is a registry host when it has a dot or a port, or is localhost.
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = None, name
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, _sep, tag = path.rpartition(":")
        if not _REPOSITORY.fullmatch(path or ""):
            raise RollbackError("%r is not a container image reference: repository %r is not valid "
                                "(lower-case letters, digits and . _ - separators)." % (reference, path))
        if tag is not None and not _TAG.fullmatch(tag):
            raise RollbackError("%r is not a container image reference: tag %r is not valid." % (reference, tag))
        if digest and not _DIGEST.fullmatch(digest):
            raise RollbackError("%r is not a container image reference: digest %r is not sha256:<64 hex>." % (reference, digest))
        return cls(registry=registry, repository=path, tag=tag, digest=digest or None)

    @property
    def reference(self):
        text = "%s/%s" % (self.registry, self.repository) if self.registry else self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    @property
    def tag_or_digest(self):
        return self.digest or self.tag or "latest"

    def with_tag(self, tag):
        return ImageRef(self.registry, self.repository, tag, None)

    def __str__(self):
        return self.reference


def is_acr_login_server(host):
    return bool(host) and host.lower().split(":", 1)[0].endswith(ACR_DOMAINS)


def close_tags(wanted, names, limit=5):
    """Tags a person probably meant: near spellings first, then tags sharing its prefix."""
    names = list(names)
    near = difflib.get_close_matches(wanted, names, n=len(names) or 1, cutoff=0.5)
    # Tags of the same release line (1.3.x for 1.3.2) come before merely similar ones (1.4.0).
    line = wanted.rsplit(".", 1)[0] if "." in wanted else wanted
    same_line = [n for n in near if n.startswith(line)] + [n for n in names if n.startswith(line) and n not in near]
    return (same_line + [n for n in near if n not in same_line])[:limit]


def _first_line(error):
    # ACR answers {"errors": [{"code", "message"}]}, which azure-core does not parse for a 401.
    try:
        acr_errors = error.response.json().get("errors") or []
    except Exception:  # pylint: disable=broad-except
        acr_errors = []
    if acr_errors and isinstance(acr_errors[0], dict) and acr_errors[0].get("message"):
        return "%s: %s" % (acr_errors[0].get("code") or "error", str(acr_errors[0]["message"]).rstrip("."))
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__


class ContainerRegistry:
    """Read-only view of one registry: its repositories' tags and their digests and dates."""

    def __init__(self, client, login_server):
        self.client = client
        self.login_server = login_server

    @classmethod
    def connect(cls, settings, login_server, audience):
        """A ContainerRegistryClient with the module's credential, retries and timeouts."""
        if ContainerRegistryClient is None:
            raise RollbackError("The azure-containerregistry Python library is needed to read the registry "
                                "(pip install azure-containerregistry), or set verify_image to false.",
                                exception=ACR_IMPORT_ERROR)
        kwargs = dict(settings.client_kwargs())
        # base_url and credential_scopes belong to ARM clients; the registry takes its endpoint and audience.
        kwargs.pop("base_url", None)
        kwargs.pop("credential_scopes", None)
        client = ContainerRegistryClient("https://" + login_server, settings.credential(), audience=audience, **kwargs)
        return cls(client, login_server)

    def _call(self, what, repository=None):
        return _registry_call(self.login_server, what, repository)

    def list_tags(self, repository, limit=None):
        """Tags newest first (by last update), each ``{name, digest, created_on, last_updated_on}``."""
        tags = []
        with self._call("Listing the tags of %s" % repository, repository):
            for tag in self.client.list_tag_properties(repository, order_by="timedesc",
                                                       results_per_page=min(limit or 100, 100)):
                tags.append(_tag_dict(tag))
                if limit and len(tags) >= limit:
                    break
        return tags

    def tag(self, repository, tag):
        """The tag's properties, or None when the repository has no such tag."""
        try:
            with self._call("Reading tag %s of %s" % (tag, repository), repository):
                return _tag_dict(self.client.get_tag_properties(repository, tag))
        except _TagMissing:
            return None

    def manifest(self, repository, digest):
        """The manifest's properties (with its tags), or None when the digest is unknown."""
        try:
            with self._call("Reading manifest %s of %s" % (digest, repository), repository):
                props = self.client.get_manifest_properties(repository, digest)
        except _TagMissing:
            return None
        return {"name": None, "digest": props.digest, "tags": list(props.tags or []),
                "created_on": _iso(props.created_on), "last_updated_on": _iso(props.last_updated_on)}

    def require(self, image, tags_for_hint=None):
        """The registry's record of ``image``; a clear error naming close tags when it has none."""
        if image.digest:
            found = self.manifest(image.repository, image.digest)
        else:
            found = self.tag(image.repository, image.tag_or_digest)
        if found is not None:
            return found
        wanted = image.digest or image.tag_or_digest
        tags = tags_for_hint if tags_for_hint is not None else self.list_tags(image.repository, limit=100)
        names = [t["name"] for t in tags]
        hint = close_tags(wanted, names)
        message = "Image %s does not exist: repository %s in registry %s has no %s %s." % (
            image.reference, image.repository, self.login_server, "digest" if image.digest else "tag", wanted)
        if hint:
            message += " Close tags: %s." % ", ".join(hint)
        if names:
            message += " Newest tags: %s." % ", ".join(names[:5])
        raise RollbackError(message + " Nothing was changed.", available_tags=names[:20])


class _TagMissing(Exception):
    """A 404 for a tag or digest (not for the repository) inside _registry_call."""


class _RegistryCall:
    """Context manager turning azure-core errors from the registry into RollbackError."""

    def __init__(self, login_server, what, repository):
        self.login_server = login_server
        self.what = what
        self.repository = repository

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or ClientAuthenticationError is None or isinstance(error, RollbackError):
            return False
        where = "registry %s" % self.login_server
        if isinstance(error, ClientAuthenticationError):
            raise RollbackError(
                "%s failed: %s refused access (HTTP 401: %s). The identity needs a pull role (AcrPull, or Reader) on "
                "the registry, or repository-scoped read permission on %s; an admin user or anonymous pull is not "
                "used." % (self.what, where, _first_line(error), self.repository or "the repository")
            ) from error
        if isinstance(error, ResourceNotFoundError):
            text = str(error)
            if "NAME_UNKNOWN" in text:
                raise RollbackError("%s failed: repository %s does not exist in %s. Check repository (or the "
                                    "image reference)." % (self.what, self.repository, where)) from error
            raise _TagMissing() from error
        if isinstance(error, HttpResponseError):
            raise RollbackError("%s failed: %s answered HTTP %s: %s" % (
                self.what, where, error.status_code, _first_line(error))) from error
        if isinstance(error, (ServiceResponseError, ServiceRequestError)):
            raise RollbackError("%s failed: cannot reach %s (%s). Check the registry name, the network and the CA "
                                "bundle (REQUESTS_CA_BUNDLE)." % (self.what, where, str(error).splitlines()[0])) from error
        return False


def _registry_call(login_server, what, repository=None):
    return _RegistryCall(login_server, what, repository)


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _tag_dict(tag):
    return {"name": tag.name, "digest": tag.digest, "created_on": _iso(tag.created_on),
            "last_updated_on": _iso(tag.last_updated_on)}


def resolve_login_server(arm_client, subscription_id, registry, cloud="AzurePublicCloud"):
    """The login server of ``registry``: given as one (host or https URL), or looked up by name in ARM.

    A bare name is searched among the subscription's registries, as
    ``az acr`` does, so private and sovereign clouds get their real login
    server; ``arm_client`` is any azure-mgmt client (its pipeline is reused).
    """
    text = (registry or "").strip().rstrip("/")
    if text.lower().startswith("https://"):
        text = text[len("https://"):]
    if "." in text or ":" in text:
        return text.lower()
    if not re.fullmatch(r"[A-Za-z0-9]{5,50}", text):
        raise RollbackError("registry must be a registry name (5-50 letters and digits), a login server such as "
                            "myacr.azurecr.io, or its https URL, not %r." % registry)
    url = "/subscriptions/%s/providers/Microsoft.ContainerRegistry/registries" % subscription_id
    params = {"api-version": REGISTRY_API_VERSION}
    seen = []
    with arm_call("Looking up container registry %s" % text):
        while url:
            response = arm_client.send_request(HttpRequest("GET", url, params=params))
            response.raise_for_status()
            body = response.json()
            for item in body.get("value", []):
                seen.append(item.get("name"))
                if (item.get("name") or "").lower() == text.lower():
                    server = (item.get("properties") or {}).get("loginServer")
                    if server:
                        return server.lower()
            url, params = body.get("nextLink"), None
    raise RollbackError("Container registry '%s' was not found in subscription %s (registries there: %s). Give its "
                        "login server (for example %s%s) if it lives in another subscription."
                        % (text, subscription_id, ", ".join(sorted(filter(None, seen))) or "none", text.lower(),
                           LOGIN_SERVER_SUFFIX.get(cloud, ".azurecr.io")))
