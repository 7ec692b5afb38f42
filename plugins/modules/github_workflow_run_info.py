#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: github_workflow_run_info
short_description: Find the GitHub Actions run a commit started and wait for it to finish
version_added: 0.1.0
description:
  - Finds the run of a workflow for a commit (or the commit a branch or tag points to), for example the deploy
    that a revert pushed to C(main) started ("git revert, git push, CI/CD will automatically re-deploy"), waits
    for it to appear and to finish, and fails with the run's URL unless it concluded C(success).
  - Only reads; it changes nothing, so it runs in check mode too.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.github
options:
  repository:
    description: The repository, as C(owner/name).
    type: str
    required: true
  workflow:
    description: The workflow, by file name (C(deploy-frontend.yml)), path or numeric id.
    type: str
    required: true
  head_sha:
    description: The commit whose run to find. Exactly one of O(head_sha) and O(ref).
    type: str
  ref:
    description: A branch or tag; the run for the commit it points to now is found.
    type: str
  event:
    description: Only runs started by this event, for example C(push) or C(workflow_dispatch).
    type: str
  branch:
    description: Only runs on this branch.
    type: str
  appear_timeout:
    description: Seconds to wait for the run to appear (GitHub starts runs a few seconds after a push).
    type: int
    default: 120
  wait:
    description: Wait for the run to finish and fail the task unless it concluded C(success).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the run to finish.
    type: int
    default: 1800
  poll_interval:
    description: Seconds between two reads of the run.
    type: float
    default: 5
notes:
  - The token needs C(actions:read) on the repository.
seealso:
  - module: sre.rollback.git_revert
  - module: sre.rollback.github_workflow_dispatch
requirements:
  - httpx >= 0.25
"""

EXAMPLES = r"""
- name: Revert the bad commit (sf-ai-assistant "Code Rollback")
  sre.rollback.git_revert:
    repo: https://github.com/your-org/sf-ai-assistant.git
    branch: main
    commit: 3f2c1ab
  register: revert

- name: Wait for the deploy the push started
  sre.rollback.github_workflow_run_info:
    repository: your-org/sf-ai-assistant
    workflow: deploy.yml
    head_sha: "{{ revert.revert_commit }}"
    event: push
    wait_timeout: 1200
"""

RETURN = r"""
run_id:
  description: The run's id.
  returned: always
  type: int
html_url:
  description: The run's page.
  returned: always
  type: str
head_sha:
  description: The commit the run built.
  returned: always
  type: str
status:
  description: The run's status when the task ended (C(completed) when it waited).
  returned: always
  type: str
conclusion:
  description: C(success), C(failure), C(cancelled)... or null while running.
  returned: always
  type: str
progress:
  description: Status changes while waiting, with elapsed seconds.
  returned: always
  type: list
  elements: dict
workflow:
  description: The workflow (id, name, path, html_url).
  returned: always
  type: dict
before:
  description: The run when it was found.
  returned: always
  type: dict
after:
  description: The run when the task ended.
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.github import (
    GITHUB_ARGSPEC,
    HTTPX_IMPORT_ERROR,
    GitHubClient,
)
from ansible_collections.sre.rollback.plugins.module_utils.github_workflows import WorkflowRunWait


def main():
    module = RollbackModule(
        argument_spec=dict(
            repository=dict(type="str", required=True),
            workflow=dict(type="str", required=True),
            head_sha=dict(type="str"),
            ref=dict(type="str"),
            event=dict(type="str"),
            branch=dict(type="str"),
            appear_timeout=dict(type="int", default=120),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
            poll_interval=dict(type="float", default=5),
        ),
        fragments=[GITHUB_ARGSPEC],
        mutually_exclusive=[("head_sha", "ref")],
        required_one_of=[("head_sha", "ref")],
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def find_and_wait():
        with GitHubClient.from_params(params) as client:
            return WorkflowRunWait(
                client, params["repository"], params["workflow"], head_sha=params["head_sha"], ref=params["ref"],
                event=params["event"], branch=params["branch"], appear_timeout=params["appear_timeout"],
                wait=params["wait"], wait_timeout=params["wait_timeout"], poll_interval=params["poll_interval"],
            ).run()

    module.run(find_and_wait)


if __name__ == "__main__":
    main()
