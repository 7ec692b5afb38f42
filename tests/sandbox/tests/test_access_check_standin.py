"""The caller's permissions: ARM Microsoft.Authorization/permissions read with the unchanged
azure-mgmt-authorization client, and SelfSubjectAccessReview asked by the real `kubectl auth can-i`
and the `kubernetes` Python client."""

import os
import shutil
import subprocess

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from kubernetes import client as k8s
from kubernetes import config as k8s_config

RG = "rg-fundrbolt-sandbox"
SITE = "fundrbolt-sandbox-api"
SWAP = "Microsoft.Web/sites/slots/slotsswap/action"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def authz(sandbox):
    sandbox.admin("POST", "reset")
    return AuthorizationManagementClient(sandbox.credential(), sandbox.env["AZURE_SUBSCRIPTION_ID"],
                                         base_url=sandbox.arm, credential_scopes=[f"{sandbox.arm}/.default"])


def site_permissions(authz):
    return list(authz.permissions.list_for_resource(RG, "Microsoft.Web", "", "sites", SITE))


def test_default_identity_is_contributor_like(authz):
    entries = site_permissions(authz)
    contributor = next(e for e in entries if e.actions == ["*"])
    assert "Microsoft.Authorization/*/Write" in contributor.not_actions
    # The data-plane roles the procedures need (Key Vault secret versions, blob versions) are there too.
    assert any("Microsoft.KeyVault/vaults/secrets/*" in (e.data_actions or []) for e in entries)
    at_rg = list(authz.permissions.list_for_resource_group(RG))
    assert [e.actions for e in at_rg] == [e.actions for e in entries]  # inherited from the subscription


def test_deny_adds_not_actions_for_that_principal_only(sandbox, authz):
    sandbox.admin("POST", "authorization/deny", {"actions": [SWAP]})
    entries = site_permissions(authz)
    assert all(SWAP in e.not_actions for e in entries)
    sandbox.admin("POST", "authorization/deny", {"actions": [SWAP], "principal_id": "someone-else"})
    assert all(SWAP in e.not_actions for e in site_permissions(authz))  # the caller's own rule is unchanged
    sandbox.admin("POST", "authorization/reset")
    assert not any(SWAP in e.not_actions for e in site_permissions(authz))


def test_scoped_assignment_applies_below_its_scope_only(sandbox, authz):
    sub = sandbox.env["AZURE_SUBSCRIPTION_ID"]
    site_id = f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{SITE}"
    sandbox.admin("PUT", "authorization/assignments", {"assignments": [
        {"principal_id": sandbox.env["AZURE_CLIENT_ID"], "scope": site_id, "role": "Website Contributor",
         "actions": ["Microsoft.Web/sites/*"]}]})
    assert [e.actions for e in site_permissions(authz)] == [["Microsoft.Web/sites/*"]]
    assert list(authz.permissions.list_for_resource_group(RG)) == []


def test_unknown_resource_group_is_the_arm_404(authz):
    with pytest.raises(ResourceNotFoundError) as error:
        list(authz.permissions.list_for_resource_group("rg-does-not-exist"))
    assert error.value.error.code == "ResourceGroupNotFound"


def test_admin_rejects_a_bad_assignment(sandbox):
    import requests
    resp = requests.put(f"{sandbox.admin_url}/authorization/assignments", json={"assignments": [{"scope": "x"}]},
                        verify=sandbox.ca, timeout=10)
    assert resp.status_code == 400


# ----------------------------------------------------------------------------- Kubernetes
@pytest.fixture
def kube(sandbox):
    sandbox.admin("POST", "reset")
    api_client = k8s_config.new_client_from_config(config_file=sandbox.env["SRE_SANDBOX_KUBECONFIG"])
    yield k8s.AuthorizationV1Api(api_client)
    api_client.close()


def review(api, **attributes):
    body = k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec(
        resource_attributes=k8s.V1ResourceAttributes(**attributes)))
    return api.create_self_subject_access_review(body).status


def test_python_client_review_allowed_then_denied(sandbox, kube):
    status = review(kube, verb="patch", group="apps", resource="deployments", namespace="mystira")
    assert status.allowed and "cluster-admin" in status.reason
    sandbox.admin("PUT", "kubernetes/access", {"deny": [{"verb": "patch", "resource": "deployments",
                                                         "namespace": "mystira"}]})
    denied = review(kube, verb="patch", group="apps", resource="deployments", namespace="mystira")
    assert denied.allowed is False and not denied.reason  # RBAC gives no reason for a "no"
    assert review(kube, verb="patch", group="apps", resource="deployments", namespace="default").allowed
    assert review(kube, verb="get", group="apps", resource="deployments", namespace="mystira").allowed


def test_review_needs_exactly_one_kind_of_attributes(kube):
    with pytest.raises(k8s.ApiException) as error:
        kube.create_self_subject_access_review(k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec()))
    assert error.value.status == 422


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
def test_kubectl_auth_can_i(sandbox, tmp_path):
    sandbox.admin("POST", "reset")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)

    def can_i(*args):
        # kubectl sends the review as protobuf; the answer comes back as JSON.
        proc = subprocess.run([KUBECTL, "--kubeconfig", sandbox.env["SRE_SANDBOX_KUBECONFIG"], "--cache-dir",
                               str(tmp_path / "cache"), "auth", "can-i", *args], capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        return proc.returncode, proc.stdout.strip()

    assert can_i("patch", "deployments", "-n", "mystira") == (0, "yes")
    sandbox.admin("PUT", "kubernetes/access", {"deny": [{"verb": "patch", "resource": "deployments",
                                                         "group": "apps", "namespace": "mystira"}]})
    assert can_i("patch", "deployments", "-n", "mystira") == (1, "no")
    assert can_i("patch", "deployments", "-n", "default") == (0, "yes")
    assert can_i("create", "replicasets.apps", "-n", "mystira") == (0, "yes")
