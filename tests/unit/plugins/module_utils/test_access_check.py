# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""access_check: Azure RBAC wildcard evaluation (per-role notActions, data actions, conditions),
Kubernetes check normalisation in kubectl's spelling, the SelfSubjectAccessReview exchange over a
recording REST double, and the failure message."""

from __future__ import annotations

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.access_check import (
    SSAR_PATH,
    KubernetesAccess,
    action_matches,
    denied_message,
    describe_k8s_check,
    evaluate_permissions,
    normalize_k8s_check,
    validate_scope,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

SWAP = "Microsoft.Web/sites/slots/slotsswap/action"
CONTRIBUTOR = {"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write", "Microsoft.Authorization/*/Delete"],
               "dataActions": [], "notDataActions": []}


@pytest.mark.parametrize("pattern, action, expected", [
    ("*", SWAP, True),
    ("Microsoft.Web/*", SWAP, True),
    ("microsoft.web/sites/*/action", SWAP, True),  # case does not matter
    ("*/read", "Microsoft.Web/sites/read", True),
    ("*/read", SWAP, False),
    ("Microsoft.Web/sites/slots/*", "Microsoft.Web/sites/read", False),
    ("Microsoft.Web/sites/slots/slotsswap/action", SWAP, True),
    ("Microsoft.Web/sites/slots/slotsswap/actio", SWAP, False),  # whole-name match, not a prefix
    ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write", True),
    ("Microsoft.Web/sites.slots", "Microsoft.Web/sitesXslots", False),  # dots are literal
])
def test_action_matches(pattern, action, expected):
    assert action_matches(pattern, action) is expected


def test_contributor_allows_everything_but_its_not_actions():
    allowed, denied, conditional = evaluate_permissions(
        [CONTRIBUTOR], [SWAP, "Microsoft.Authorization/roleAssignments/write"])
    assert allowed == [SWAP]
    assert denied == ["Microsoft.Authorization/roleAssignments/write"]
    assert conditional == []


def test_not_actions_subtract_only_from_their_own_role():
    # A Reader-with-exclusions role does not take away what another role grants.
    narrow = {"actions": ["*/read"], "notActions": ["Microsoft.Web/*"]}
    website = {"actions": ["Microsoft.Web/sites/read"], "notActions": []}
    allowed, denied, _conditional = evaluate_permissions([narrow, website], ["Microsoft.Web/sites/read", SWAP])
    assert allowed == ["Microsoft.Web/sites/read"]
    assert denied == [SWAP]


def test_data_actions_are_checked_against_data_actions_only():
    kv = {"actions": [], "notActions": [], "dataActions": ["Microsoft.KeyVault/vaults/secrets/*"],
          "notDataActions": ["Microsoft.KeyVault/vaults/secrets/purge/action"]}
    needed = ["data:Microsoft.KeyVault/vaults/secrets/getSecret/action",
              "data:Microsoft.KeyVault/vaults/secrets/purge/action",
              "Microsoft.KeyVault/vaults/secrets/getSecret/action"]  # not a control-plane action anyone granted
    allowed, denied, _conditional = evaluate_permissions([CONTRIBUTOR, kv], needed)
    assert allowed == ["data:Microsoft.KeyVault/vaults/secrets/getSecret/action",
                       "Microsoft.KeyVault/vaults/secrets/getSecret/action"]  # Contributor's "*" covers actions
    assert denied == ["data:Microsoft.KeyVault/vaults/secrets/purge/action"]


def test_conditional_grants_are_reported():
    conditional_role = {"actions": [SWAP], "condition": "@Resource[...] StringEquals 'x'"}
    allowed, denied, conditional = evaluate_permissions([conditional_role], [SWAP])
    assert (allowed, denied, conditional) == ([SWAP], [], [SWAP])
    # Granted unconditionally by another role too: not conditional.
    assert evaluate_permissions([conditional_role, CONTRIBUTOR], [SWAP])[2] == []


def test_no_roles_means_everything_denied():
    assert evaluate_permissions([], [SWAP]) == ([], [SWAP], [])


@pytest.mark.parametrize("scope", [
    "/subscriptions/abc",
    "/subscriptions/abc/resourceGroups/rg",
    "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Web/sites/app",
    "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Web/sites/app/slots/staging/",
])
def test_valid_scopes(scope):
    assert validate_scope(scope) == scope.rstrip("/")


@pytest.mark.parametrize("scope", ["", None, "fundrbolt-api", "/resourceGroups/rg",
                                   "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Web/sites"])
def test_invalid_scopes(scope):
    with pytest.raises(RollbackError, match="scope must be an Azure resource ID"):
        validate_scope(scope)


# ------------------------------------------------------------------ Kubernetes
def test_kubectl_spellings_are_split_into_attributes():
    attrs = normalize_k8s_check({"verb": "PATCH", "resource": "deployments.apps/scale"}, "mystira")
    assert attrs == {"verb": "patch", "resource": "deployments", "group": "apps", "subresource": "scale", "name": "",
                     "namespace": "mystira"}
    assert describe_k8s_check(attrs) == "patch deployments.apps/scale -n mystira"


def test_explicit_keys_win_over_the_spelling():
    attrs = normalize_k8s_check({"verb": "get", "resource": "deployments.extensions", "group": "apps",
                                 "namespace": "other", "name": "api"}, "mystira")
    assert (attrs["group"], attrs["namespace"], attrs["name"]) == ("apps", "other", "api")
    assert describe_k8s_check(attrs) == "get deployments.apps api -n other"


def test_core_group_and_cluster_scope():
    attrs = normalize_k8s_check({"verb": "list", "resource": "nodes", "cluster_scoped": True}, "mystira")
    assert attrs["group"] == "" and "namespace" not in attrs
    assert describe_k8s_check(attrs) == "list nodes"


@pytest.mark.parametrize("check, message", [
    ({"resource": "deployments"}, "needs verb and resource"),
    ({"verb": "patch"}, "needs verb and resource"),
    ("patch deployments", "needs verb and resource"),
    ({"verb": "rollback", "resource": "deployments"}, "Unknown Kubernetes verb 'rollback'"),
])
def test_bad_checks(check, message):
    with pytest.raises(RollbackError, match=message):
        normalize_k8s_check(check, "default")


class RecordingRest:
    """Answers reviews as an API server whose RBAC denies one verb, and records what was posted."""

    def __init__(self, denied_verb):
        self.denied_verb = denied_verb
        self.posted = []

    def post(self, path, body, what=None):
        self.posted.append((path, body, what))
        allowed = body["spec"]["resourceAttributes"]["verb"] != self.denied_verb
        return dict(body, status={"allowed": True, "reason": "RBAC: allowed"} if allowed else {"allowed": False})


def test_reviews_are_posted_and_split():
    rest = RecordingRest(denied_verb="patch")
    result = KubernetesAccess(rest).check([{"verb": "get", "resource": "deployments.apps"},
                                           {"verb": "patch", "resource": "deployments.apps"}], "mystira")
    assert [p[0] for p in rest.posted] == [SSAR_PATH, SSAR_PATH]
    assert rest.posted[0][1]["kind"] == "SelfSubjectAccessReview"
    assert rest.posted[0][1]["spec"]["resourceAttributes"]["namespace"] == "mystira"
    assert "may get deployments.apps -n mystira" in rest.posted[0][2]
    assert result["allowed"] == ["get deployments.apps -n mystira"]
    assert result["denied"] == ["patch deployments.apps -n mystira"]
    assert result["reviews"][1]["reason"] == ""


def test_denied_message_names_identity_and_everything_missing():
    azure = [{"scope": "/subscriptions/s/resourceGroups/rg", "denied": [SWAP]},
             {"scope": "/subscriptions/s", "denied": []}]
    kubernetes = {"denied": ["patch deployments.apps -n mystira"]}
    message = denied_message("Azure client 123", azure, kubernetes, purpose="the P1 slot swap")
    assert message.startswith("Azure client 123 may not do what the P1 slot swap needs.")
    assert SWAP + " at /subscriptions/s/resourceGroups/rg" in message
    assert "Kubernetes: patch deployments.apps -n mystira" in message
    assert "/subscriptions/s." not in message  # a scope with nothing missing is not named
    assert "nothing was changed" in message
    assert denied_message("x", [{"scope": "/subscriptions/s", "denied": []}], {"denied": []}) is None
