#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: github_workflow_dispatch
short_description: Run a GitHub Actions workflow on a branch or tag, find the run it created, and wait for it
version_added: 0.1.0
description:
  - Triggers a C(workflow_dispatch) of a workflow on a branch or tag with inputs, finds the run the dispatch
    created (event C(workflow_dispatch), the commit the ref points to, created after the dispatch, not seen before)
    and waits for it. This is how a frontend without deployment slots is rolled back, by redeploying the previous
    tag through its deploy workflow (fundrbolt "Frontend Rollback").
  - B(Idempotent by desired state.) Nothing is dispatched when the workflow's most recently started run is for the
    commit O(ref) points to and is queued, in progress or succeeded; a run in progress is waited for. GitHub does not
    return the inputs of a run, so inputs are not compared; O(force) dispatches anyway.
  - A run that does not conclude C(success) fails the task with the run URL.
  - In check mode the module resolves the workflow and the ref and reports whether it would dispatch, without any POST.
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
    description:
      - The workflow, by file name (C(deploy-frontend.yml)), path or numeric id. It must have a
        C(workflow_dispatch) trigger.
    type: str
    required: true
  ref:
    description:
      - The branch or tag to run the workflow on, for example C(v1.2.2) or C(main).
    type: str
    required: true
  inputs:
    description:
      - The workflow's inputs. Values are sent as strings (booleans as C(true)/C(false)), as GitHub expects.
    type: dict
    default: {}
  force:
    description:
      - Dispatch even when the desired state described above already holds.
    type: bool
    default: false
  wait:
    description:
      - Wait for the created run to finish and fail the task unless it concluded C(success).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the run. A run still going at the deadline fails the task, with its last status and URL.
    type: int
    default: 1800
  find_timeout:
    description:
      - Seconds to wait for the run that the dispatch created to appear in the API.
    type: int
    default: 60
  poll_interval:
    description:
      - Seconds between two reads of the run while waiting.
    type: float
    default: 5
notes:
  - The token needs C(actions:write) (fine-grained) or C(repo) (classic) on the repository.
seealso:
  - module: sre.rollback.github_workflow_rerun
  - name: Create a workflow dispatch event
    description: The REST call this module makes.
    link: https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event
requirements:
  - httpx >= 0.25
"""

EXAMPLES = r"""
- name: Redeploy the previous frontend tag (fundrbolt "Frontend Rollback")
  sre.rollback.github_workflow_dispatch:
    repository: fundrbolt/fundrbolt-platform
    workflow: deploy-frontend.yml
    ref: v1.2.2
    inputs:
      environment: production
    wait_timeout: 900
  register: redeploy

- name: Show where to follow it
  ansible.builtin.debug:
    msg: "Run {{ redeploy.run_id }} ({{ redeploy.conclusion }}): {{ redeploy.html_url }}"
"""

RETURN = r"""
run_id:
  description: The id of the run the dispatch created, or of the run that already satisfied the desired state.
    Null in check mode when a dispatch would happen.
  returned: always
  type: int
run_attempt:
  description: The attempt of that run.
  returned: always
  type: int
html_url:
  description: The run's page on GitHub.
  returned: always
  type: str
sha:
  description: The commit O(ref) points to.
  returned: always
  type: str
head_sha:
  description: The commit the run builds.
  returned: always
  type: str
head_branch:
  description: The branch or tag of the run.
  returned: always
  type: str
status:
  description: The run's status after the task.
  returned: always
  type: str
conclusion:
  description: The run's conclusion after the task, or null while it runs.
  returned: always
  type: str
dispatched:
  description: Whether a dispatch was (or, in check mode, would be) sent.
  returned: always
  type: bool
reason:
  description: Why the module did or did not dispatch.
  returned: always
  type: str
workflow:
  description: The workflow (id, name, path, html_url).
  returned: always
  type: dict
progress:
  description: Status changes while waiting, with elapsed seconds.
  returned: always
  type: list
  elements: dict
before:
  description: The workflow's most recently started run before the task.
  returned: always
  type: dict
after:
  description: The run after the task (a prediction in check mode).
  returned: always
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.github import GITHUB_ARGSPEC, HTTPX_IMPORT_ERROR, GitHubClient
from ansible_collections.sre.rollback.plugins.module_utils.github_workflows import WorkflowDispatch


def main():
    module = RollbackModule(
        argument_spec=dict(
            repository=dict(type="str", required=True),
            workflow=dict(type="str", required=True),
            ref=dict(type="str", required=True),
            inputs=dict(type="dict", default={}),
            force=dict(type="bool", default=False),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
            find_timeout=dict(type="int", default=60),
            poll_interval=dict(type="float", default=5),
        ),
        fragments=[GITHUB_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def dispatch():
        with GitHubClient.from_params(params) as client:
            return WorkflowDispatch(
                client, params["repository"], params["workflow"], params["ref"], inputs=params["inputs"],
                force=params["force"], wait=params["wait"], wait_timeout=params["wait_timeout"],
                poll_interval=params["poll_interval"], find_timeout=params["find_timeout"],
                check_mode=module.check_mode,
            ).run()

    module.run(dispatch)


if __name__ == "__main__":
    main()
