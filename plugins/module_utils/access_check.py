# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Can the credentials do what a rollback procedure needs? Asked before anything changes.

- Azure: ``GET {scope}/providers/Microsoft.Authorization/permissions`` (what
  ``az role assignment``-free tooling and azure-mgmt-authorization's
  ``permissions.list_for_resource`` call) returns one entry per role the caller
  holds at that scope (inherited ones included), each with ``actions`` and
  ``notActions`` (and their data-plane twins). An action is allowed when one
  entry grants it (wildcards) and that same entry does not exclude it: a role's
  ``notActions`` subtract only from that role, as Azure RBAC evaluates them.
  Deny assignments are not in this answer (Azure does not expose them here);
  a denied call at run time still fails with a clear ARM 403.
- Kubernetes: one ``SelfSubjectAccessReview`` per needed verb and resource,
  exactly what ``kubectl auth can-i`` sends; the API server's authorizers
  (RBAC, webhooks) answer, so the result is what the real request would meet.

Both answers are computed before the procedure runs; nothing here changes
anything, so check mode runs the same checks.
"""

from __future__ import annotations

import re
import traceback

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, map_error
    from azure.core.pipeline import policies
    from azure.core.rest import HttpRequest
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.exceptions import ARMErrorFormat
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
except ImportError:
    AZURE_CORE_IMPORT_ERROR = traceback.format_exc()
else:
    AZURE_CORE_IMPORT_ERROR = None

# The api-version azure-mgmt-authorization 4 uses for permissions.list_for_resource(_group).
PERMISSIONS_API_VERSION = "2022-04-01"

_RESOURCE_ID = re.compile(r"/subscriptions/[^/]+(/resourceGroups/[^/]+(/providers/[^/]+(/[^/]+/[^/]+)+)?)?",
                          re.IGNORECASE)


# ------------------------------------------------------------------ Azure evaluation
def action_matches(pattern, action):
    """Azure RBAC wildcard match: ``*`` stands for any run of characters; case does not matter."""
    regex = ".*".join(re.escape(part) for part in (pattern or "").split("*"))
    return re.fullmatch(regex, action or "", re.IGNORECASE) is not None


def _granted_by(entry, action, data):
    allow, exclude = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    if not any(action_matches(pattern, action) for pattern in entry.get(allow) or []):
        return False
    return not any(action_matches(pattern, action) for pattern in entry.get(exclude) or [])


def is_data_action(action):
    """Data-plane actions (secret values, blob contents) live in dataActions, not actions.

    Azure names them under provider paths that only data roles grant; the
    caller marks them with a ``data:`` prefix, since the name alone cannot
    always tell (both kinds end in ``/read`` or ``/action``).
    """
    return action.lower().startswith("data:")


def evaluate_permissions(entries, needed):
    """Split the needed actions into (allowed, denied) given the permission entries of a scope.

    ``needed``: action names; a ``data:`` prefix marks a data action.
    Entries carrying an ABAC ``condition`` are counted as granting (the condition
    is evaluated per request and cannot be judged here) and reported.
    """
    allowed, denied, conditional = [], [], []
    for name in needed:
        data = is_data_action(name)
        action = name[len("data:"):] if data else name
        granting = [entry for entry in entries if _granted_by(entry, action, data)]
        if granting:
            allowed.append(name)
            if all(entry.get("condition") for entry in granting):
                conditional.append(name)
        else:
            denied.append(name)
    return allowed, denied, conditional


def validate_scope(scope):
    if not scope or not _RESOURCE_ID.fullmatch(scope.rstrip("/")):
        raise RollbackError("scope must be an Azure resource ID such as /subscriptions/<id>/resourceGroups/<rg>/"
                            "providers/Microsoft.Web/sites/<app> (or a resource group or subscription), got %r."
                            % (scope,))
    return scope.rstrip("/")


class AzurePermissions:
    """Reads the caller's effective permissions at a scope through ARM (azure-core pipeline, azure-identity)."""

    def __init__(self, settings, client=None):
        self.settings = settings
        self.client = client

    def _client(self):
        if self.client is None:
            kwargs = self.settings.client_kwargs()
            pipeline = [
                policies.RequestIdPolicy(),
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(sdk_moniker="sre-rollback-access-check"),
                policies.RetryPolicy(retry_total=kwargs["retry_total"], retry_backoff_factor=kwargs["retry_backoff_factor"],
                                     retry_backoff_max=kwargs["retry_backoff_max"]),
                ARMChallengeAuthenticationPolicy(self.settings.credential(), *kwargs["credential_scopes"]),
                policies.NetworkTraceLoggingPolicy(),
                ARMHttpLoggingPolicy(),
            ]
            self.client = ARMPipelineClient(base_url=self.settings.arm_endpoint, policies=pipeline,
                                            per_call_policies=[], per_retry_policies=[])
            self._timeouts = dict(connection_timeout=kwargs["connection_timeout"], read_timeout=kwargs["read_timeout"])
        return self.client

    def entries(self, scope):
        """Every permission entry the caller holds at ``scope`` (follows nextLink pages)."""
        client = self._client()
        timeouts = getattr(self, "_timeouts", {})
        url, params = scope + "/providers/Microsoft.Authorization/permissions", {"api-version": PERMISSIONS_API_VERSION}
        found = []
        with arm_call("Reading the permissions of the Azure identity at %s" % scope,
                      not_found="Cannot read permissions at %s: the resource does not exist (check the scope)." % scope):
            while url:
                # PipelineClient.send_request sends the URL as given: make it absolute (nextLink already is).
                response = client.send_request(HttpRequest("GET", client.format_url(url), params=params), **timeouts)
                if response.status_code != 200:
                    # As the generated SDK clients do, so arm_call tells a missing group from a failure.
                    map_error(status_code=response.status_code, response=response,
                              error_map={401: ClientAuthenticationError, 404: ResourceNotFoundError})
                    raise HttpResponseError(response=response, error_format=ARMErrorFormat)
                body = response.json()
                found.extend(body.get("value") or [])
                url, params = body.get("nextLink"), None
        return found

    def check(self, scope, needed):
        scope = validate_scope(scope)
        entries = self.entries(scope)
        allowed, denied, conditional = evaluate_permissions(entries, needed)
        return dict(scope=scope, needed=list(needed), allowed=allowed, denied=denied, conditional=conditional,
                    roles=len(entries))


# --------------------------------------------------------------------- Kubernetes
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
          "impersonate", "use", "approve", "sign", "*")


def normalize_k8s_check(check, default_namespace):
    """One needed permission as SelfSubjectAccessReview resourceAttributes.

    ``resource`` may carry the group and subresource as kubectl spells them:
    ``deployments.apps``, ``deployments/scale``; explicit keys win.
    """
    if not isinstance(check, dict) or not check.get("verb") or not check.get("resource"):
        raise RollbackError("Each kubernetes check needs verb and resource (for example {verb: patch, resource: "
                            "deployments, group: apps}), got %r." % (check,))
    verb = str(check["verb"]).lower()
    if verb not in _VERBS:
        raise RollbackError("Unknown Kubernetes verb %r in %r; use one of %s." % (check["verb"], check, ", ".join(_VERBS)))
    resource, _slash, subresource = str(check["resource"]).partition("/")
    plural, _dot, group = resource.partition(".")
    attributes = {
        "verb": verb,
        "resource": plural.lower(),
        "group": check.get("group", group) or "",
        "subresource": check.get("subresource", subresource) or "",
        "name": check.get("name") or "",
    }
    namespace = check.get("namespace", default_namespace)
    if namespace and not check.get("cluster_scoped"):
        attributes["namespace"] = namespace
    return attributes


def describe_k8s_check(attributes):
    """kubectl's words for one check: ``patch deployments.apps/scale -n mystira``."""
    text = "%s %s" % (attributes["verb"], attributes["resource"])
    if attributes.get("group"):
        text += "." + attributes["group"]
    if attributes.get("subresource"):
        text += "/" + attributes["subresource"]
    if attributes.get("name"):
        text += " " + attributes["name"]
    if attributes.get("namespace"):
        text += " -n " + attributes["namespace"]
    return text


class KubernetesAccess:
    """Sends SelfSubjectAccessReviews through a KubernetesRest (auth, TLS, retries of k8s_client)."""

    def __init__(self, rest):
        self.rest = rest

    def review(self, attributes):
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        answer = self.rest.post(SSAR_PATH, body, what="ask the API server whether we may %s (SelfSubjectAccessReview)"
                                % describe_k8s_check(attributes))
        status = (answer or {}).get("status") or {}
        return dict(check=describe_k8s_check(attributes), attributes=attributes, allowed=bool(status.get("allowed")),
                    reason=status.get("reason") or status.get("evaluationError") or "")

    def check(self, checks, default_namespace):
        attributes = [normalize_k8s_check(check, default_namespace) for check in checks]
        reviews = [self.review(item) for item in attributes]
        return dict(reviews=reviews, allowed=[r["check"] for r in reviews if r["allowed"]],
                    denied=[r["check"] for r in reviews if not r["allowed"]])


# -------------------------------------------------------------------------- verdict
def denied_message(identity, azure=None, kubernetes=None, purpose=None):
    """One message naming the identity and every missing permission, or None when nothing is missing."""
    parts = []
    for result in azure or []:
        if result["denied"]:
            parts.append("Azure actions %s at %s" % (", ".join(result["denied"]), result["scope"]))
    if kubernetes and kubernetes["denied"]:
        parts.append("Kubernetes: %s" % "; ".join(kubernetes["denied"]))
    if not parts:
        return None
    return ("%s may not do what %s needs. Missing: %s. Grant them (an Azure role assignment or a Kubernetes "
            "Role/RoleBinding) or run with credentials that have them; nothing was changed."
            % (identity, purpose or "the rollback procedure", " | ".join(parts)))
