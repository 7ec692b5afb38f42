"""Azure RBAC as the caller sees it (Microsoft.Authorization): the effective permissions at a scope.

ARM (what azure-mgmt-authorization's `permissions.list_for_resource` /
`list_for_resource_group` and `az`'s permission checks call; any api-version is
accepted, the SDK sends 2022-04-01):

  GET {scope}/providers/Microsoft.Authorization/permissions

where {scope} is `/subscriptions/{sub}`, `.../resourceGroups/{rg}` or any
resource under it (`.../providers/Microsoft.Web/sites/{app}/slots/{slot}`). The
answer is `{"value": [{"actions", "notActions", "dataActions", "notDataActions"}]}`:
one entry per role assignment of the *calling* principal (the client id its
token was issued to) at that scope or above it, as real ARM answers (each role
keeps its own notActions; nothing is merged). An unknown subscription or
resource group is the usual ARM 404.

Seed: every principal (the seed's service principal included) holds
Contributor at the subscription plus Key Vault Secrets Officer and Storage Blob
Data Contributor, so everything the rollback procedures do is allowed, as with
the identity a team usually runs rollbacks with. Tests take actions away:

Admin (under /_sandbox/):
  GET  /_sandbox/authorization                  {"assignments": [...], "default": [...]}
  PUT  /_sandbox/authorization/assignments      {"assignments": [{"principal_id", "scope", "role",
                                                 "actions", "notActions", "dataActions", "notDataActions"}]}
                                                replaces every assignment; a principal with none of its own
                                                gets the default set; `"principal_id": "*"` means anyone
  POST /_sandbox/authorization/deny             {"actions": [...], "principal_id"?, "scope"?}: the common
                                                case in one call - the default roles minus these actions
                                                (added to each role's notActions) for that principal/scope
  POST /_sandbox/authorization/reset            back to the seed
The answer is computed, not enforced: other ARM routes do not check RBAC (a
403 at run time is what faults are for).
"""

import copy
import re

from .arm import ArmError
from .web import BadJson, Response

CONTRIBUTOR_NOT_ACTIONS = [
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
    "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
    "Microsoft.Subscription/cancel/action",
    "Microsoft.Subscription/enable/action",
]
# The built-in roles' permission blocks as `az role definition list` shows them.
DEFAULT_ROLES = [
    {"role": "Contributor", "actions": ["*"], "notActions": CONTRIBUTOR_NOT_ACTIONS,
     "dataActions": [], "notDataActions": []},
    {"role": "Key Vault Secrets Officer", "actions": ["Microsoft.Authorization/*/read",
                                                      "Microsoft.Insights/alertRules/*",
                                                      "Microsoft.Resources/deployments/*",
                                                      "Microsoft.Resources/subscriptions/resourceGroups/read",
                                                      "Microsoft.Support/*",
                                                      "Microsoft.KeyVault/checkNameAvailability/read",
                                                      "Microsoft.KeyVault/deletedVaults/read",
                                                      "Microsoft.KeyVault/locations/*/read",
                                                      "Microsoft.KeyVault/vaults/*/read",
                                                      "Microsoft.KeyVault/operations/read"],
     "notActions": [], "dataActions": ["Microsoft.KeyVault/vaults/secrets/*"], "notDataActions": []},
    {"role": "Storage Blob Data Contributor",
     "actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/delete",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"],
     "notActions": [],
     "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"],
     "notDataActions": []},
]
PERMISSION_KEYS = ("actions", "notActions", "dataActions", "notDataActions")
SCOPE = r"(?P<scope>/subscriptions/(?P<subscription>[^/]+)(?:/resourceGroups/(?P<resource_group>[^/]+)(?:/.+?)?)?)"


def _admin_error(message, status=400):
    return Response.json({"error": message}, status)


class AuthorizationProvider:
    name = "authorization"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.assignments = []
        # first=True: broader provider routes must not answer a permissions read under their resource.
        arm.arm_route("GET", SCOPE + r"/providers/Microsoft\.Authorization/permissions", self._permissions, first=True)
        add = sandbox.admin.add
        add("GET", r"/_sandbox/authorization", self._admin_state)
        add("PUT", r"/_sandbox/authorization/assignments", self._admin_put)
        add("POST", r"/_sandbox/authorization/deny", self._admin_deny)
        add("POST", r"/_sandbox/authorization/reset", self._admin_reset)
        sandbox.on_reset(self._reset)

    def _reset(self):
        self.assignments = []

    # -- the ARM read --------------------------------------------------------------------
    def _caller(self, request):
        token = (request.headers.get("Authorization") or "").partition(" ")[2].strip()
        info = self.arm.identity.token_info(token) or {}
        return (info.get("client_id") or "").lower()

    def _subscription_scope(self):
        return f"/subscriptions/{self.sandbox.subscription_id}"

    def effective(self, principal, scope):
        """The permission entries of `principal` at `scope`: its assignments at the scope or above."""
        # SDKs build `.../providers/Microsoft.Web//sites/x` for an empty parent path; ARM reads it as one slash.
        scope = re.sub(r"/+", "/", scope).rstrip("/").lower()
        own = [a for a in self.assignments if a["principal_id"].lower() in (principal, "*")]
        if not any(a["principal_id"].lower() == principal for a in self.assignments) and not own:
            own = [dict(role, principal_id=principal, scope=self._subscription_scope()) for role in DEFAULT_ROLES]
        entries = []
        for assignment in own:
            at = assignment["scope"].rstrip("/").lower()
            if scope == at or scope.startswith(at + "/"):
                entries.append({key: list(assignment.get(key) or []) for key in PERMISSION_KEYS})
        return entries

    def _permissions(self, request):
        params = request.params
        if params["subscription"].lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{params['subscription']}' could not be found.")
        if params.get("resource_group"):
            self.arm.resource_group(params)  # the ARM 404 for an unknown resource group
        return Response.json({"value": self.effective(self._caller(request), params["scope"])})

    # -- admin ---------------------------------------------------------------------------
    def _admin_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    @staticmethod
    def _parse(request):
        try:
            body = request.json()
        except BadJson as err:
            raise ValueError(f"invalid JSON: {err}") from err
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        return body

    def _admin_put(self, request):
        try:
            body = self._parse(request)
            assignments = body.get("assignments")
            if not isinstance(assignments, list):
                raise ValueError('expected {"assignments": [...]}')
            parsed = []
            for item in assignments:
                if not isinstance(item, dict) or not item.get("principal_id") or not item.get("scope"):
                    raise ValueError("each assignment needs principal_id and scope")
                if not re.fullmatch(r"/subscriptions/[^/]+(/.*)?", item["scope"]):
                    raise ValueError(f"scope must be an ARM resource id, got {item['scope']!r}")
                entry = {"principal_id": item["principal_id"], "scope": item["scope"], "role": item.get("role", "custom")}
                for key in PERMISSION_KEYS:
                    entry[key] = [str(a) for a in item.get(key) or []]
                parsed.append(entry)
        except ValueError as err:
            return _admin_error(str(err))
        with self.sandbox.lock:
            self.assignments = parsed
            return Response.json(self.snapshot())

    def _admin_deny(self, request):
        try:
            body = self._parse(request)
            actions = body.get("actions")
            if not isinstance(actions, list) or not actions:
                raise ValueError('expected {"actions": ["Microsoft.Web/sites/slots/slotsswap/action", ...]}')
        except ValueError as err:
            return _admin_error(str(err))
        principal = body.get("principal_id") or self.sandbox.seed["client_id"]
        scope = body.get("scope") or self._subscription_scope()
        with self.sandbox.lock:
            kept = [a for a in self.assignments if a["principal_id"].lower() != principal.lower()]
            for role in DEFAULT_ROLES:
                entry = copy.deepcopy(role)
                entry.update(principal_id=principal, scope=scope)
                entry["notActions"] = entry["notActions"] + [a for a in actions if not a.startswith("data:")]
                entry["notDataActions"] = entry["notDataActions"] + [a[5:] for a in actions if a.startswith("data:")]
                kept.append(entry)
            self.assignments = kept
            return Response.json(self.snapshot())

    def _admin_reset(self, request):
        with self.sandbox.lock:
            self._reset()
            return Response.json(self.snapshot())

    # -- provider interface ----------------------------------------------------------------
    def snapshot(self):
        return {"assignments": copy.deepcopy(self.assignments), "default": copy.deepcopy(DEFAULT_ROLES)}

    def env(self):
        return {}

    def stop(self):
        pass
