#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_history_info
short_description: The revisions of a Helm release, the deployed one and any stuck pending one (helm history)
version_added: 0.1.0
description:
  - The evidence step before a Helm rollback, what the runbooks do with C(helm history RELEASE). Returns every
    stored revision (number, status, chart, app version, description, time), picks out the revision deployed
    now, says whether the release is stuck in C(pending-install), C(pending-upgrade) or C(pending-rollback)
    (the newest revision never finished, and Helm refuses upgrades until it is dealt with), and names the
    revision M(sre.rollback.helm_rollback) goes back to when no revision is given.
  - Works through the C(helm) binary (Helm 3 or 4) or, without one, through the Helm 4 library from PyPI
    (C(helm-python-sdk)); see O(backend).
  - Fails with a clear message when the release does not exist in the namespace and storage driver given.
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - the helm binary (Helm 3 or 4) on the host that runs the task, or the Python package helm-python-sdk
extends_documentation_fragment:
  - sre.rollback.kubernetes
  - sre.rollback.helm
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
notes:
  - The task reads what Helm stores and changes nothing.
seealso:
  - module: sre.rollback.helm_rollback
  - name: helm history
    description: The command this module reads like.
    link: https://helm.sh/docs/helm/helm_history/
"""

EXAMPLES = r"""
- name: Evidence first, what has this release run (runbook, Helm rollback step 1)
  sre.rollback.helm_history_info:
    release_name: mystira-api
    release_namespace: mystira
    kubeconfig: ~/.kube/mystira-production.yaml
  register: api_history

- name: Show the revisions the way helm history prints them
  ansible.builtin.debug:
    msg: >-
      {{ api_history.revisions | map(attribute='revision') | zip(api_history.revisions | map(attribute='status'),
         api_history.revisions | map(attribute='chart')) | map('join', ' ') | list }}

- name: Stop before a rollback when an upgrade is still pending (someone may be deploying)
  ansible.builtin.assert:
    that: not api_history.pending
    fail_msg: >-
      Revision {{ api_history.pending_revision.revision | default('?') }} is {{ api_history.pending_revision.status | default('') }}
      since {{ api_history.pending_revision.updated | default('') }}: check no deploy is running, then roll back with recover_pending.

- name: Releases kept by Helm's SQL storage driver in PostgreSQL
  sre.rollback.helm_history_info:
    release_name: mystira-worker
    release_namespace: mystira
    storage_driver: sql
    sql_connection_string: "{{ vault_helm_sql_connection_string }}"
    backend: library
"""

RETURN = r"""
release_name:
  description: The release read.
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
revisions:
  description: Every stored revision, oldest first, as C(helm history -o json) prints them.
  returned: always
  type: list
  elements: dict
  contains:
    revision:
      description: The revision number.
      type: int
      sample: 3
    status:
      description: V(deployed), V(superseded), V(failed), V(pending-install), V(pending-upgrade), V(pending-rollback), V(uninstalled), V(uninstalling).
      type: str
      sample: deployed
    chart:
      description: The chart as C(name-version).
      type: str
      sample: mystira-api-1.4.2
    app_version:
      description: The chart's appVersion.
      type: str
      sample: "2024.06.1"
    description:
      description: Helm's description, for example C(Upgrade complete) or C(Rollback to 2).
      type: str
      sample: Upgrade complete
    updated:
      description: When the revision was last deployed, as Helm prints it.
      type: str
      sample: "2026-12-06T13:40:00.123456+00:00"
latest_revision:
  description: The newest revision number.
  returned: always
  type: int
  sample: 3
deployed_revision:
  description: The revision deployed now, or null when none is (a first install that failed or is pending).
  returned: always
  type: int
  sample: 3
deployed:
  description: That revision's entry (as in RV(revisions)), or null.
  returned: always
  type: dict
pending:
  description: Whether the newest revision is stuck in a C(pending-*) status.
  returned: always
  type: bool
  sample: false
pending_revision:
  description: The pending revision's entry, or null.
  returned: always
  type: dict
previous_deployed_revision:
  description:
    - The revision M(sre.rollback.helm_rollback) rolls back to when given no revision, or null when there is
      none. That is the newest revision older than the deployed one that once ran (deployed or superseded);
      when the deployed revision is itself a rollback (C(Rollback to N)), it is N.
  returned: always
  type: int
  sample: 2
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.helm import (
    HELM_ARGSPEC,
    HelmTarget,
    history_info,
    select_backend,
)
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC


def main():
    module = RollbackModule(argument_spec={}, fragments=[K8S_AUTH_ARGSPEC, HELM_ARGSPEC], supports_check_mode=True)
    params = module.params

    def read():
        target = HelmTarget.from_params(params)
        backend = select_backend(params["backend"], target, params["binary_path"])
        try:
            return False, history_info(backend, params["release_name"], target)
        finally:
            backend.close()

    module.run(read)


if __name__ == "__main__":
    main()
