#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: github_workflow_rerun
short_description: Re-run the last successful run of a GitHub Actions workflow, idempotently, and wait for it
version_added: 0.1.0
description:
  - Finds the last successful run of a workflow (by file name or id) on a branch, for an event, for a commit or
    for a deployment environment, or takes a given run id, re-runs all its jobs or only the failed ones, and waits
    for the re-run to finish.
    This is the "re-run the last successful deployment workflow" rollback of the runbooks
    (fusionnet 4.1, fundrbolt "GitHub Actions Rerun").
  - A re-run uses the run's original commit and ref, as GitHub does; it does not pick up newer workflow files.
    GitHub re-runs only runs created within the last 30 days; an older run fails the task before anything is
    started, and the message names the run and the commit to dispatch instead.
  - B(Idempotent by desired state.) With O(jobs=all) nothing is started when the chosen run's latest attempt is
    already the most recently started run of the workflow on the run's branch and is queued, in progress or
    succeeded (the workflow's last activity on the branch already redeploys that commit). With O(jobs=failed)
    nothing is started when the run is queued, in progress or succeeded. A run still in progress is waited for,
    never re-run. O(force) re-runs anyway.
  - With O(wait) the task waits for the re-run with a deadline and reports its progress; a re-run that does not
    succeed fails the task with the run URL.
  - With O(environment) the run is the newest successful run of the workflow (also filtered by O(branch), O(event)
    and O(head_sha) when given) that deployed to that environment, through the GitHub Deployments API. A deployment
    counts when its latest status is C(success); it is matched to its run by the run id in the status C(log_url)
    (or C(target_url)), else by its commit and the workflow. This is the check of fusionnet 4.1 that the
    deployment targets the correct environment (for example C(production)). When no such deployment exists the
    task fails before anything is started and says so.
  - In check mode the module finds the run and reports whether it would re-run it, without any POST.
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
      - The workflow, by file name (C(deploy-frontend.yml)), path (C(.github/workflows/deploy-frontend.yml)) or
        numeric id. Required unless O(run_id) is given.
    type: str
  run_id:
    description:
      - Re-run this run instead of searching for the last successful one.
    type: int
  branch:
    description:
      - Only runs of this branch (C(head_branch)) count, for example C(main).
    type: str
  event:
    description:
      - Only runs triggered by this event count, for example C(push) or C(workflow_dispatch).
    type: str
  head_sha:
    description:
      - Only runs of this commit count (full or abbreviated sha), to redeploy a known good commit.
    type: str
  environment:
    description:
      - Only runs that deployed successfully to this GitHub environment count, for example C(production).
      - The latest status of the run's deployment to the environment must be C(success); a deployment since
        marked C(inactive), C(failure) or C(error) does not count.
      - Mutually exclusive with O(run_id).
    type: str
  jobs:
    description:
      - V(all) re-runs every job of the run. V(failed) re-runs only the failed jobs and those depending on them.
    type: str
    choices: [all, failed]
    default: all
  force:
    description:
      - Re-run even when the desired state described above already holds.
    type: bool
    default: false
  wait:
    description:
      - Wait for the run to finish and fail the task unless it concluded C(success).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the run. A run still going at the deadline fails the task, with its last status and URL.
    type: int
    default: 1800
  poll_interval:
    description:
      - Seconds between two reads of the run while waiting.
    type: float
    default: 5
notes:
  - The token needs C(actions:write) (fine-grained) or C(repo) (classic) on the repository, and with O(environment)
    also C(deployments:read) (fine-grained).
  - A deployment that waits for an environment approval stays C(waiting) until someone approves it in GitHub;
    O(wait_timeout) bounds that wait too.
seealso:
  - module: sre.rollback.github_workflow_dispatch
  - name: Re-running workflows and jobs
    description: GitHub's rules for re-runs (same commit, 30 days).
    link: https://docs.github.com/actions/managing-workflow-runs/re-running-workflows-and-jobs
requirements:
  - httpx >= 0.25
"""

EXAMPLES = r"""
- name: Re-run the last successful frontend deployment on main (fundrbolt "GitHub Actions Rerun")
  sre.rollback.github_workflow_rerun:
    repository: fundrbolt/fundrbolt-platform
    workflow: deploy-frontend.yml
    branch: main
    wait_timeout: 900
  register: rerun

- name: Redeploy a known good commit through its own deploy run, on GitHub Enterprise Server
  sre.rollback.github_workflow_rerun:
    api_url: https://github.example.com/api/v3
    token: "{{ github_token }}"
    repository: fusionnet/platform
    workflow: deploy.yml
    head_sha: 4f2c9e1
    event: push

- name: Re-run the last workflow run that deployed successfully to production (fusionnet 4.1)
  sre.rollback.github_workflow_rerun:
    api_url: https://github.example.com/api/v3
    token: "{{ github_token }}"
    repository: fusionnet/platform
    workflow: deploy.yml
    environment: production
    branch: main
  register: production_rerun

- name: Confirm the deployment targeted the correct environment
  ansible.builtin.assert:
    that:
      - production_rerun.deployment.environment == 'production'
      - production_rerun.conclusion == 'success'

- name: Re-run only the failed jobs of a given run, without waiting
  sre.rollback.github_workflow_rerun:
    repository: fundrbolt/fundrbolt-platform
    run_id: 9100000007
    jobs: failed
    wait: false
"""

RETURN = r"""
run_id:
  description: The id of the run that was (or would be) re-run, or that already satisfied the desired state.
  returned: always
  type: int
run_attempt:
  description: The run's attempt after the task (predicted in check mode).
  returned: always
  type: int
html_url:
  description: The run's page on GitHub.
  returned: always
  type: str
head_sha:
  description: The commit the run builds (a re-run always uses the original commit).
  returned: always
  type: str
head_branch:
  description: The branch or tag of the run.
  returned: always
  type: str
status:
  description: The run's status after the task (C(completed) when it was awaited).
  returned: always
  type: str
conclusion:
  description: The run's conclusion after the task, or null while it runs.
  returned: always
  type: str
rerun:
  description: Whether a re-run was (or, in check mode, would be) started.
  returned: always
  type: bool
reason:
  description: Why the module did or did not re-run, in one sentence.
  returned: always
  type: str
deployment:
  description:
    - With O(environment), the successful deployment that chose the run (id, environment, sha, ref, state,
      created_at, log_url); null without O(environment).
  returned: always
  type: dict
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
  description: The run before the task (id, attempt, status, conclusion, commit, times, URL).
  returned: always
  type: dict
after:
  description: The run after the task (a prediction in check mode).
  returned: always
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.github import GITHUB_ARGSPEC, HTTPX_IMPORT_ERROR, GitHubClient
from ansible_collections.sre.rollback.plugins.module_utils.github_workflows import WorkflowRerun


def main():
    module = RollbackModule(
        argument_spec=dict(
            repository=dict(type="str", required=True),
            workflow=dict(type="str"),
            run_id=dict(type="int"),
            branch=dict(type="str"),
            event=dict(type="str"),
            head_sha=dict(type="str"),
            environment=dict(type="str"),
            jobs=dict(type="str", default="all", choices=["all", "failed"]),
            force=dict(type="bool", default=False),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
            poll_interval=dict(type="float", default=5),
        ),
        fragments=[GITHUB_ARGSPEC],
        required_one_of=[("workflow", "run_id")],
        mutually_exclusive=[("run_id", "environment")],
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def rerun():
        with GitHubClient.from_params(params) as client:
            return WorkflowRerun(
                client, params["repository"], workflow=params["workflow"], run_id=params["run_id"],
                branch=params["branch"], event=params["event"], head_sha=params["head_sha"], jobs=params["jobs"],
                force=params["force"], wait=params["wait"], wait_timeout=params["wait_timeout"],
                poll_interval=params["poll_interval"], check_mode=module.check_mode,
                environment=params["environment"],
            ).run()

    module.run(rerun)


if __name__ == "__main__":
    main()
