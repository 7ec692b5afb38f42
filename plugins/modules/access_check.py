#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: access_check
short_description: Check that the credentials may do what a rollback procedure needs, before it starts
version_added: 0.1.0
description:
  - The "permissions" line of the fusionnet and mystira pre-rollback checklists. Finds out, before anything
    changes, whether the Azure identity and the Kubernetes user the procedure runs as hold every permission
    its steps need, so a rollback does not stop half-way on a 403.
  - Azure. For each entry of O(azure), reads the caller's effective permissions at the entry's scope with
    C(GET {scope}/providers/Microsoft.Authorization/permissions) (the call behind
    C(permissions.list_for_resource) of azure-mgmt-authorization), then evaluates every needed action against
    each role's C(actions) and C(notActions) with Azure's wildcard rules. A role's C(notActions) only take away
    what that same role grants, as Azure RBAC evaluates them.
  - Kubernetes. For each entry of O(kubernetes), sends a C(SelfSubjectAccessReview), exactly what
    C(kubectl auth can-i) sends, so the API server's own authorizers (RBAC, webhooks) answer.
  - Fails, naming the identity and every missing permission, when something is missing and O(fail_on_denied)
    is on. Reads only, so it runs the same in check mode and never reports a change.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.kubernetes
options:
  azure:
    description:
      - Azure scopes and the actions needed at each.
      - Azure is not contacted when this is empty.
    type: list
    elements: dict
    default: []
    suboptions:
      scope:
        description:
          - The resource ID the procedure acts on, for example
            C(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Web/sites/<app>); a resource group or
            subscription ID also works. Role assignments inherited from above count.
        type: str
        required: true
      actions:
        description:
          - The actions needed, for example V(Microsoft.Web/sites/slots/slotsswap/action).
          - Prefix a data action (a Key Vault secret's value, a blob's contents) with C(data:), for example
            V(data:Microsoft.KeyVault/vaults/secrets/getSecret/action); it is evaluated against C(dataActions).
        type: list
        elements: str
        required: true
  kubernetes:
    description:
      - The Kubernetes permissions needed, one C(SelfSubjectAccessReview) each.
      - The cluster is not contacted when this is empty.
    type: list
    elements: dict
    default: []
    suboptions:
      verb:
        description: The verb, for example V(patch), V(create), V(list).
        type: str
        required: true
      resource:
        description:
          - The resource (plural), as C(kubectl auth can-i) takes it, for example V(deployments),
            V(deployments.apps) or V(deployments/scale).
        type: str
        required: true
      group:
        description: The API group (V(apps) for Deployments). Overrides a group given in O(kubernetes[].resource).
        type: str
      subresource:
        description: The subresource, for example V(scale) or V(status).
        type: str
      name:
        description: One object only.
        type: str
      namespace:
        description: The namespace. Defaults to O(namespace).
        type: str
  namespace:
    description: The namespace of the O(kubernetes) checks that name none.
    type: str
    default: default
  identity:
    description:
      - How the error message names who lacks the permissions (for example the service principal's name).
      - Defaults to the Azure client ID and the Kubernetes context the module used.
    type: str
  purpose:
    description: What the permissions are for, named in the error message, for example V(the P1 slot swap).
    type: str
  fail_on_denied:
    description:
      - Fail when a permission is missing. With V(false), report RV(allowed) and RV(denied) and let the play decide.
    type: bool
    default: true
notes:
  - Azure deny assignments are not part of the permissions answer, so an action they block shows as allowed
    here and still fails at run time with a clear C(403 AuthorizationFailed).
  - An Azure role with an ABAC condition is counted as granting; such actions are also listed in RV(conditional).
  - Reading permissions needs no role beyond the one checked; any identity may read its own.
seealso:
  - module: sre.rollback.webapp_slot_swap
  - module: sre.rollback.k8s_rollout_undo
  - name: Permissions - List For Resource (REST)
    description: The Azure call this module makes.
    link: https://learn.microsoft.com/en-us/rest/api/authorization/permissions/list-for-resource
  - name: kubectl auth can-i
    description: The Kubernetes check this module makes.
    link: https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access
requirements:
  - azure-identity and azure-mgmt-core (for O(azure))
  - kubernetes (for O(kubernetes))
"""

EXAMPLES = r"""
- name: Can this service principal swap the fundrbolt slots? (pre-rollback checklist, permissions)
  sre.rollback.access_check:
    purpose: the fundrbolt slot swap
    azure:
      - scope: /subscriptions/{{ subscription_id }}/resourceGroups/fundrbolt-production-rg/providers/Microsoft.Web/sites/fundrbolt-production-api
        actions:
          - Microsoft.Web/sites/read
          - Microsoft.Web/sites/slots/read
          - Microsoft.Web/sites/config/list/action
          - Microsoft.Web/sites/slots/slotsswap/action

- name: Can we run "kubectl rollout undo deployment/mystira-publisher -n mystira"?
  sre.rollback.access_check:
    namespace: mystira
    kubernetes:
      - {verb: get, resource: deployments.apps, name: mystira-publisher}
      - {verb: list, resource: replicasets.apps}
      - {verb: patch, resource: deployments.apps, name: mystira-publisher}

- name: Report only, and decide in the play
  sre.rollback.access_check:
    fail_on_denied: false
    kubernetes:
      - {verb: patch, resource: deployments/scale, group: apps, namespace: mystira}
  register: access

- name: Say what is missing
  ansible.builtin.debug:
    msg: "Missing: {{ access.denied | join(', ') }}"
  when: access.denied | length > 0
"""

RETURN = r"""
allowed:
  description: Every needed permission that is granted (Azure actions, then Kubernetes checks in kubectl's words).
  returned: always
  type: list
  elements: str
  sample: [Microsoft.Web/sites/slots/slotsswap/action, patch deployments.apps -n mystira]
denied:
  description: Every needed permission that is missing.
  returned: always
  type: list
  elements: str
  sample: []
conditional:
  description: Azure actions granted only by roles with an ABAC condition (decided per request).
  returned: always
  type: list
  elements: str
identity:
  description: Who was checked.
  returned: always
  type: str
  sample: "Azure client 22222222-5a4d-4b0c-8e1f-5a4db0c5e1f0"
azure:
  description: Per scope, the needed, allowed and denied actions and how many role entries apply there.
  returned: always
  type: list
  elements: dict
kubernetes:
  description: Each SelfSubjectAccessReview with its attributes, C(allowed) and the authorizer's C(reason).
  returned: always
  type: list
  elements: dict
before:
  description: Empty; present for the collection's common result shape.
  returned: always
  type: dict
after:
  description: Empty; present for the collection's common result shape.
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.access_check import (
    AZURE_CORE_IMPORT_ERROR,
    AzurePermissions,
    KubernetesAccess,
    denied_message,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import (
    AZURE_AUTH_ARGSPEC,
    AZURE_IDENTITY_IMPORT_ERROR,
    AzureSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    KubernetesSettings,
)


def main():
    module = RollbackModule(
        argument_spec=dict(
            azure=dict(type="list", elements="dict", default=[], options=dict(
                scope=dict(type="str", required=True),
                actions=dict(type="list", elements="str", required=True),
            )),
            kubernetes=dict(type="list", elements="dict", default=[], options=dict(
                verb=dict(type="str", required=True),
                resource=dict(type="str", required=True),
                group=dict(type="str"),
                subresource=dict(type="str"),
                name=dict(type="str"),
                namespace=dict(type="str"),
            )),
            namespace=dict(type="str", default="default"),
            identity=dict(type="str"),
            purpose=dict(type="str"),
            fail_on_denied=dict(type="bool", default=True),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, K8S_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    params = module.params
    if params["azure"]:
        module.require_libraries([("azure-identity", AZURE_IDENTITY_IMPORT_ERROR),
                                  ("azure-mgmt-core", AZURE_CORE_IMPORT_ERROR)])
    if params["kubernetes"]:
        module.require_libraries([("kubernetes", KUBERNETES_IMPORT_ERROR)])

    def check():
        if not params["azure"] and not params["kubernetes"]:
            raise RollbackError("Nothing to check: give azure (scopes and actions) or kubernetes (verbs and resources).")
        names, azure_results, k8s_result = [], [], None
        if params["azure"]:
            settings = AzureSettings.from_params(params)
            names.append("Azure client %s" % (settings.client_id or "(the signed-in identity)"))
            permissions = AzurePermissions(settings)
            azure_results = [permissions.check(entry["scope"], entry["actions"]) for entry in params["azure"]]
        if params["kubernetes"]:
            k8s = KubernetesSettings.from_params(params)
            try:
                where = k8s.describe()
                names.append("Kubernetes context %s at %s" % (where["context"] or "(token)", where["server"]))
                # Omitted suboptions arrive as None; only what the user set overrides resource's own spelling.
                checks = [{key: value for key, value in entry.items() if value is not None}
                          for entry in params["kubernetes"]]
                k8s_result = KubernetesAccess(k8s.rest()).check(checks, params["namespace"])
            finally:
                k8s.close()
        identity = params["identity"] or " and ".join(names)
        allowed = [a for r in azure_results for a in r["allowed"]] + (k8s_result["allowed"] if k8s_result else [])
        denied = [a for r in azure_results for a in r["denied"]] + (k8s_result["denied"] if k8s_result else [])
        result = dict(allowed=allowed, denied=denied, identity=identity, azure=azure_results,
                      kubernetes=k8s_result["reviews"] if k8s_result else [],
                      conditional=[a for r in azure_results for a in r["conditional"]])
        message = denied_message(identity, azure_results, k8s_result, params["purpose"])
        if message and params["fail_on_denied"]:
            raise RollbackError(message, **result)
        return False, result

    module.run(check)


if __name__ == "__main__":
    main()
