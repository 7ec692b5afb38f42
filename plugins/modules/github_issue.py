#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: github_issue
short_description: Open the root-cause issue after a rollback, once
version_added: 0.1.0
description:
  - Makes sure an open issue with the given title exists in a repository, as the post-rollback checklist asks
    ("Create GitHub issue for root cause analysis"). Works with github.com and GitHub Enterprise Server.
  - B(Idempotent by title and open state.) When an open issue (not a pull request) has exactly this title, nothing
    changes and that issue is returned; its body, labels and assignees are left as they are. Otherwise the issue is
    created with O(body), O(labels) and O(assignees). A closed issue with the same title does not count, so a new
    incident gets a new issue.
  - In check mode the module looks the issue up and reports whether it would create it, without any POST.
  - No existing collection module fits. C(community.general.github_issue) only reads an issue's state and
    C(community.general.github_repo) manages repositories.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.github
options:
  repository:
    description: The repository, as C(owner/name).
    type: str
    required: true
  title:
    description: The issue title; it identifies the issue, so include the incident (id, date, version).
    type: str
    required: true
  body:
    description: The issue body (Markdown), for example the rollback timeline and the evidence.
    type: str
  labels:
    description: Labels to put on a new issue; labels that do not exist yet are created by GitHub.
    type: list
    elements: str
    default: []
  assignees:
    description: Logins to assign a new issue to; each must be able to be assigned in the repository.
    type: list
    elements: str
    default: []
notes:
  - The token needs C(issues:write) (fine-grained) or C(repo) (classic) on the repository.
seealso:
  - module: sre.rollback.github_workflow_rerun
requirements:
  - httpx >= 0.25
"""

EXAMPLES = r"""
- name: Open the root-cause issue of the rollback (fundrbolt post-rollback checklist)
  sre.rollback.github_issue:
    repository: fundrbolt/fundrbolt-platform
    title: "RCA: frontend 1.2.3 rolled back to 1.2.2 ({{ incident_id }})"
    body: |
      Rolled back by {{ ansible_user_id }} at {{ now(utc=true).isoformat() }}.
      Failed health checks and the timeline are attached to the incident record.
    labels: [incident, rca, P2]
  register: rca_issue
"""

RETURN = r"""
number:
  description: The issue number (null in check mode when it would be created).
  returned: always
  type: int
html_url:
  description: The issue's page.
  returned: always
  type: str
created:
  description: Whether the issue was (or, in check mode, would be) created.
  returned: always
  type: bool
issue:
  description: The issue (number, title, state, html_url, labels, assignees, created_at).
  returned: always
  type: dict
before:
  description: The open issue with that title before the task, or empty.
  returned: always
  type: dict
after:
  description: The issue after the task (a prediction in check mode).
  returned: always
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.github import GITHUB_ARGSPEC, HTTPX_IMPORT_ERROR, GitHubClient
from ansible_collections.sre.rollback.plugins.module_utils.github_workflows import ensure_issue


def main():
    module = RollbackModule(
        argument_spec=dict(
            repository=dict(type="str", required=True),
            title=dict(type="str", required=True),
            body=dict(type="str"),
            labels=dict(type="list", elements="str", default=[]),
            assignees=dict(type="list", elements="str", default=[]),
        ),
        fragments=[GITHUB_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def issue():
        with GitHubClient.from_params(params) as client:
            return ensure_issue(client, params["repository"], params["title"], body=params["body"],
                                labels=params["labels"], assignees=params["assignees"], check_mode=module.check_mode)

    module.run(issue)


if __name__ == "__main__":
    main()
