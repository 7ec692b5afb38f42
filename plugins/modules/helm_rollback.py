#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_rollback
short_description: Roll a Helm release back to the previous deployed or a named revision, and wait for it (helm rollback)
version_added: 0.1.0
description:
  - The Helm step of the runbooks (C(helm rollback RELEASE [REVISION])), made safe to run twice. Reads the
    release history first, picks the target revision (O(revision), or the one deployed before the current
    one), and rolls back only when needed. When the deployed revision already carries the target's chart
    (name, version and app version) and the same user-supplied values, nothing is done and the task reports
    no change, so no new revision piles up in the history.
  - Waits for the rolled-back resources to be ready (O(wait), O(timeout)); a rollback that does not become
    ready is a failure that names the new revision and its status.
  - A release stuck in a C(pending-*) status (an interrupted install, upgrade or rollback) is reported
    clearly and left alone, unless O(recover_pending=true) says to roll back from it.
  - Unknown release, revision not in the history, nothing earlier to roll back to, an unreachable API
    server or storage all fail before anything changes.
  - Works through the C(helm) binary (Helm 3 or 4) or, without one, through the Helm 4 library from PyPI
    (C(helm-python-sdk)); see O(backend).
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - the helm binary (Helm 3 or 4) on the host that runs the task, or the Python package helm-python-sdk
extends_documentation_fragment:
  - sre.rollback.kubernetes
  - sre.rollback.helm
options:
  revision:
    description:
      - The revision to roll back to, as listed by C(helm history) (RV(sre.rollback.helm_history_info#module:revisions)).
      - Without it, the revision deployed before the current one (the newest older revision that once ran,
        skipping failed ones; unlike C(helm rollback RELEASE), which takes the number before the newest whatever
        its status). When the current revision is itself a rollback (C(Rollback to N)), the target stays N, so
        running the task again changes nothing; name a revision to go further back.
      - A revision not in the history fails before anything changes and lists the ones there are.
    type: int
  wait:
    description:
      - Wait until the rolled-back resources are ready (C(helm rollback --wait)), and fail if they are not
        within O(timeout). The new revision is then marked V(failed) by Helm.
      - Without waiting, the task ends once Kubernetes accepted the objects.
      - The V(library) backend always waits with Helm 4's C(watcher) strategy.
    type: bool
    default: true
  timeout:
    description:
      - Seconds Helm may take, for the rollback, its hooks and the wait (C(helm rollback --timeout)).
    type: int
    default: 300
  cleanup_on_fail:
    description:
      - When the rollback fails, delete the resources it newly created (C(helm rollback --cleanup-on-fail)).
    type: bool
    default: false
  recover_pending:
    description:
      - What to do when the newest revision is stuck in C(pending-install), C(pending-upgrade) or
        C(pending-rollback), the lock an interrupted Helm command leaves behind.
      - V(false) (the default) fails before any change and reports the stuck revision, its status and
        since when, because the operation may still be running.
      - V(true) rolls back from the stuck revision, as Helm users do by hand (C(helm rollback RELEASE N)); without
        O(revision) the target is the revision that was deployed when the stuck one started. The stuck revision
        stays in the history with its status, and the new revision is the newest, so Helm upgrades work again.
        Make sure no Helm command still works on the release first.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the history and both revisions' values, and predicts the new revision; changes nothing.
  diff_mode:
    support: full
    description:
      - Revision, chart, app version and status before and after. RV(values_changed_keys) names the values
        that differ, never their content (values often hold secrets).
notes:
  - Helm numbers every rollback as a new revision with the description C(Rollback to N).
seealso:
  - module: sre.rollback.helm_history_info
  - name: helm rollback
    description: The command this module runs (or runs the library equivalent of).
    link: https://helm.sh/docs/helm/helm_rollback/
"""

EXAMPLES = r"""
- name: Roll the API back to the revision deployed before the bad upgrade (runbook, Helm rollback)
  sre.rollback.helm_rollback:
    release_name: mystira-api
    release_namespace: mystira
    kubeconfig: ~/.kube/mystira-production.yaml
    timeout: 600
  register: api_rollback

- name: Say what runs now
  ansible.builtin.debug:
    msg: >-
      {{ api_rollback.release_name }} revision {{ api_rollback.after.revision }} runs
      {{ api_rollback.after.chart }} ({{ api_rollback.after.app_version }}), rolled back to revision {{ api_rollback.target_revision }}

- name: Preview a rollback to a named revision from helm history, change nothing
  sre.rollback.helm_rollback:
    release_name: mystira-api
    release_namespace: mystira
    revision: 4
  check_mode: true
  diff: true
  register: preview

- name: Roll back a release stuck in pending-upgrade after a deploy job was killed
  sre.rollback.helm_rollback:
    release_name: mystira-worker
    release_namespace: mystira
    recover_pending: true
    cleanup_on_fail: true

- name: Without a helm binary, with releases kept in PostgreSQL (Helm's sql driver)
  sre.rollback.helm_rollback:
    release_name: mystira-worker
    release_namespace: mystira
    backend: library
    storage_driver: sql
    sql_connection_string: "{{ vault_helm_sql_connection_string }}"
    revision: 2
"""

RETURN = r"""
release_name:
  description: The release worked on.
  returned: always
  type: str
  sample: mystira-api
namespace:
  description: Its namespace.
  returned: always
  type: str
  sample: mystira
storage_driver:
  description: The Helm storage driver used.
  returned: always
  type: str
  sample: secret
backend:
  description: V(cli) (the helm binary) or V(library) (helm-python-sdk).
  returned: always
  type: str
  sample: cli
target_revision:
  description: The revision rolled back to (or that would be, or that already runs).
  returned: always
  type: int
  sample: 2
target:
  description: That revision's history entry (revision, status, chart, app_version, description, updated).
  returned: always
  type: dict
new_revision:
  description: The revision the rollback made, or null when nothing was done (and in check mode).
  returned: always
  type: int
  sample: 5
values_changed_keys:
  description: Dotted paths of the user-supplied values that differ between the deployed and the target revision.
  returned: always
  type: list
  elements: str
  sample: ["image.tag", "replicaCount"]
recovered_pending:
  description: The stuck C(pending-*) revision rolled back from (with O(recover_pending)), else null.
  returned: always
  type: dict
before:
  description: The deployed revision before, C(revision), C(chart), C(app_version), C(status), C(values_keys).
  returned: always
  type: dict
  sample: {"revision": 3, "chart": "mystira-api-1.5.0", "app_version": "2024.07.0", "status": "deployed", "values_keys": ["image"]}
after:
  description: The same after (in check mode, as predicted), with C(rolled_back_to) when a rollback was made.
  returned: always
  type: dict
  sample: {"revision": 4, "chart": "mystira-api-1.4.2", "app_version": "2024.06.1", "status": "deployed", "values_keys": ["image"],
           "rolled_back_to": 2}
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
failure_kind:
  description: On failure from Helm, its kind, V(not_found), V(unreachable), V(denied), V(storage), V(in_progress), V(timeout) or V(other).
  returned: failure
  type: str
pending_revision:
  description: On the refusal of a pending release, the stuck revision.
  returned: failure
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.helm import (
    HELM_ARGSPEC,
    HelmTarget,
    rollback_release,
    select_backend,
)
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC


def main():
    module = RollbackModule(
        argument_spec=dict(
            revision=dict(type="int"),
            wait=dict(type="bool", default=True),
            timeout=dict(type="int", default=300),
            cleanup_on_fail=dict(type="bool", default=False),
            recover_pending=dict(type="bool", default=False),
        ),
        fragments=[K8S_AUTH_ARGSPEC, HELM_ARGSPEC],
        supports_check_mode=True,
    )
    params = module.params

    def roll_back():
        target = HelmTarget.from_params(params)
        backend = select_backend(params["backend"], target, params["binary_path"])
        try:
            changed, result = rollback_release(
                backend, params["release_name"], target, revision=params["revision"], wait=params["wait"],
                timeout=params["timeout"], cleanup_on_fail=params["cleanup_on_fail"],
                recover_pending=params["recover_pending"], check_mode=module.check_mode)
        finally:
            backend.close()
        diff = result.pop("diff")
        if module.diff_mode:
            result["diff"] = diff
        return changed, result

    module.run(roll_back)


if __name__ == "__main__":
    main()
