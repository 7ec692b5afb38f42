#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: git_revert
short_description: Revert a commit, a range or a merge on a branch and push it, or open a pull request
version_added: 0.1.0
description:
  - The code rollback of the runbooks (C(git revert <sha>) then C(git push origin main), after which CI/CD
    redeploys), made idempotent and safe to run during an outage.
  - Works in an existing clone (O(path)) or in a temporary clone of O(repo), which is removed afterwards.
    The revert is always made on the tip of O(branch) as O(remote) has it, in a throwaway worktree, so the
    clone's HEAD, index, working tree and branches are untouched by a check, a conflict or a refused push.
    Only after a successful push to O(branch) is the clone's O(branch) fast-forwarded, and only when it is
    checked out and was at the old tip.
  - Reverts one commit, a range C(old..new) (the first-parent commits after C(old) up to C(new), newest first,
    in one commit), or a merge commit with O(mainline).
  - B(Idempotent.) A target commit counts as reverted when a commit on the branch after it carries
    C(This reverts commit <sha>) in its message (and that revert was not itself reverted), or when reverting
    it would change nothing (the inverse change is already on the branch). Reverted commits are skipped; when
    all are, nothing changes. Name commits by sha, not by C(HEAD), for a re-run to be a no-op.
  - When the branch is protected, with O(pull_request=true), or with O(pull_request_on_reject=true) after the
    remote refused the push (a pre-receive hook or a branch protection rule), the revert is pushed to a new
    branch (O(pull_request_branch)) and a GitHub pull request is opened against O(branch). A re-run finds the
    pushed branch and the open pull request and changes nothing.
  - For GitOps repositories (Argo CD, Flux) the revert must land in git, or the next sync re-applies the bad
    version; a revert through a pull request takes effect only once the pull request is merged.
  - In check mode the revert is made in a throwaway worktree and only reported (with C(--diff), as a patch);
    nothing is committed or pushed. A conflict fails the task with the conflicting files, leaving the clone
    as it was.
  - Uses the real C(git) command line with a private environment; the user's global and system git configuration
    is not read, prompts are off, and commit hooks are skipped.
author:
  - sre.rollback maintainers (@sre-rollback)
options:
  path:
    description:
      - An existing clone with a clean working tree. Mutually exclusive with O(repo).
    type: path
  repo:
    description:
      - A URL git can clone (https, ssh, C(file://) or the path of a bare repository), cloned into a temporary
        directory that is removed afterwards. Mutually exclusive with O(path).
      - Credentials written into the URL are masked in every result and message this module writes; Ansible
        itself echoes module arguments (C(invocation)), so give the same token as O(github_token), which is
        C(no_log), and Ansible masks it there too.
    type: str
  remote:
    description: The remote to fetch from and push to.
    type: str
    default: origin
  branch:
    description: The branch the revert goes on.
    type: str
    default: main
  commit:
    description:
      - The commit to revert (a sha, or any name git resolves after fetching O(branch)), or a range C(old..new).
      - Every commit must be on O(branch).
    type: str
    required: true
    aliases: [sha]
  mainline:
    description:
      - For a merge commit, the parent whose side is kept (C(1) is the branch it was merged into), as in
        C(git revert -m). Required when a target is a merge, refused when none is.
    type: int
  commit_message:
    description:
      - The commit message (first line the subject). The C(This reverts commit <sha>) lines are always added,
        so a re-run can find the revert.
      - Without it, git's own message is used (C(Revert "<subject>")).
    type: str
  incident:
    description: An incident id, written as a C(Rollback-Incident) trailer in the commit message.
    type: str
  author_name:
    description: Author and committer name of the revert commit.
    type: str
    default: sre.rollback bot
  author_email:
    description: Author and committer e-mail of the revert commit.
    type: str
    default: sre-rollback-bot@users.noreply.github.com
  pull_request:
    description: Push the revert to O(pull_request_branch) and open a pull request instead of pushing to O(branch).
    type: bool
    default: false
  pull_request_on_reject:
    description:
      - When the remote refuses the push to O(branch) (a pre-receive hook or a protected branch), push to
        O(pull_request_branch) and open a pull request instead of failing.
    type: bool
    default: false
  pull_request_branch:
    description: The branch for the pull request. Defaults to C(rollback/) and the first 7 characters of the newest reverted sha.
    type: str
  pull_request_title:
    description: Title of the pull request; defaults to the commit subject.
    type: str
  pull_request_body:
    description: Body of the pull request; defaults to the commit message body.
    type: str
  github_api_url:
    description:
      - The GitHub REST API URL; for GitHub Enterprise Server C(https://HOST/api/v3).
      - If not set, the environment variable C(GITHUB_API_URL) is used, then C(https://api.github.com).
    type: str
  github_token:
    description:
      - A GitHub token allowed to open pull requests. Needed only for a pull request.
      - If not set, the environment variables C(GITHUB_TOKEN) or C(GH_TOKEN) are used.
    type: str
  github_validate_certs:
    description: Verify the GitHub API's TLS certificate.
    type: bool
    default: true
  github_ca_path:
    description: A CA bundle to trust for O(github_api_url) (a private GitHub Enterprise Server).
    type: path
  github_repository:
    description: The GitHub repository (C(owner/name)); by default taken from the remote URL.
    type: str
  github_api_timeout:
    description: Seconds for each GitHub API call.
    type: float
    default: 30
  github_api_retries:
    description: Retries of a GitHub API call that failed with a rate limit, a 5xx answer or a connection error.
    type: int
    default: 3
  github_rate_limit_wait:
    description: Longest wait, in seconds, for a GitHub rate limit to reset before the task fails.
    type: int
    default: 60
  git_timeout:
    description: Seconds each git command (clone, fetch, push, revert) may take before the task fails.
    type: int
    default: 120
notes:
  - Pushing needs write access to the remote, through the URL, an SSH key (C(SSH_AUTH_SOCK), C(GIT_SSH_COMMAND))
    or C(GIT_SSL_CAINFO); the user's global git configuration, credential helpers included, is not read.
  - A range C(old..new) is reverted in one commit listing every reverted sha; a merge inside the range is
    reverted with O(mainline) and the commits it brought are not reverted a second time.
seealso:
  - module: sre.rollback.health_check
  - name: git-revert
    description: The git command this module drives.
    link: https://git-scm.com/docs/git-revert
requirements:
  - git >= 2.32 on the controller
  - httpx, for a pull request
"""

EXAMPLES = r"""
- name: Revert the bad MCP server commit and let CI/CD redeploy (sf-ai-assistant "Code Rollback")
  sre.rollback.git_revert:
    repo: git@github.com:contoso/sf-ai-assistant.git
    branch: main
    commit: 3f2c1e9a7b4d
    incident: INC-123
  register: revert

- name: Preview the revert first
  sre.rollback.git_revert:
    path: /srv/checkouts/mystira-admin-ui
    commit: "{{ bad_sha }}"
  check_mode: true
  diff: true

- name: Revert a merged pull request, keeping main's side
  sre.rollback.git_revert:
    repo: https://github.com/contoso/api.git
    commit: "{{ merge_sha }}"
    mainline: 1

- name: Revert a whole deploy (several commits) in a GitOps repository with a protected main
  sre.rollback.git_revert:
    repo: https://x-access-token:{{ gh_token }}@github.com/contoso/gitops.git
    commit: "{{ last_good_sha }}..{{ bad_sha }}"
    pull_request_on_reject: true
    github_token: "{{ gh_token }}"
    incident: INC-456
  register: revert

- name: Show the pull request to merge
  ansible.builtin.debug:
    msg: "Merge {{ revert.pull_request_url }} to finish the rollback"
  when: revert.pull_request_url
"""

RETURN = r"""
targets:
  description: The full shas the task was asked to revert, newest first.
  returned: success
  type: list
  elements: str
reverted:
  description: The shas reverted by this run (or, in check mode, that would be).
  returned: success
  type: list
  elements: str
already_reverted:
  description:
    - Targets found already reverted; C(detected_by) is C(message) (a revert commit, C(reverted_by)) or C(tree)
      (reverting would change nothing).
  returned: success
  type: list
  elements: dict
  sample: [{sha: 0b1c7e0d9f6f5c0ff9a1e2b3c4d5e6f708192a3b, reverted_by: 5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1, detected_by: message}]
revert_commit:
  description: The sha of the revert commit made (or found on a pending pull-request branch).
  returned: success
  type: str
branch:
  description: The branch reverted.
  returned: success
  type: str
pushed:
  description: Whether this run pushed a commit.
  returned: always
  type: bool
pushed_branch:
  description: Where the revert is, O(branch) or the pull-request branch.
  returned: success
  type: str
pull_request:
  description: The pull request opened or found (number, url, api_url, state, created).
  returned: when a pull request was used
  type: dict
pull_request_url:
  description: The web URL of the pull request.
  returned: success
  type: str
diffstat:
  description: What the revert changes (files_changed, insertions, deletions, files, text as C(git diff --stat)).
  returned: when a revert is made or predicted
  type: dict
commit_message:
  description: The commit message of the revert.
  returned: when a revert is made or predicted
  type: str
remote_url:
  description: The remote's URL, credentials masked.
  returned: success
  type: str
push_rejection:
  description: What the remote said when it refused the push to O(branch) (with O(pull_request_on_reject)).
  returned: when the push was refused
  type: str
before:
  description: The tip of O(branch) on the remote before the task.
  returned: always
  type: dict
after:
  description: The tip of O(branch) after the task (C(null) in check mode when a revert would be made).
  returned: always
  type: dict
conflicting_files:
  description: The files the revert conflicts in.
  returned: on a conflict
  type: list
  elements: str
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.git_repo import (
    DEFAULT_AUTHOR_EMAIL,
    DEFAULT_AUTHOR_NAME,
    HTTPX_IMPORT_ERROR,
    GitHubClient,
    GitRevert,
)
from ansible_collections.sre.rollback.plugins.module_utils.github import github_argspec


def main():
    module = RollbackModule(
        argument_spec=dict(
            path=dict(type="path"),
            repo=dict(type="str"),
            remote=dict(type="str", default="origin"),
            branch=dict(type="str", default="main"),
            commit=dict(type="str", required=True, aliases=["sha"]),
            mainline=dict(type="int"),
            commit_message=dict(type="str"),
            incident=dict(type="str"),
            author_name=dict(type="str", default=DEFAULT_AUTHOR_NAME),
            author_email=dict(type="str", default=DEFAULT_AUTHOR_EMAIL),
            pull_request=dict(type="bool", default=False),
            pull_request_on_reject=dict(type="bool", default=False),
            pull_request_branch=dict(type="str"),
            pull_request_title=dict(type="str"),
            pull_request_body=dict(type="str"),
            github_repository=dict(type="str"),
            git_timeout=dict(type="int", default=120),
        ),
        fragments=[github_argspec("github_")],
        mutually_exclusive=[("path", "repo")],
        required_one_of=[("path", "repo")],
        supports_check_mode=True,
    )
    params = module.params
    wants_pull = params["pull_request"] or params["pull_request_on_reject"]
    if wants_pull:
        module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])

    def github_client():
        return GitHubClient.from_params(params, prefix="github_")

    def revert():
        procedure = GitRevert(
            commit=params["commit"],
            branch=params["branch"],
            path=params["path"],
            repo_url=params["repo"],
            remote=params["remote"],
            mainline=params["mainline"],
            message=params["commit_message"],
            incident=params["incident"],
            pull_request=params["pull_request"],
            pull_request_on_reject=params["pull_request_on_reject"],
            pull_request_branch=params["pull_request_branch"],
            pull_request_title=params["pull_request_title"],
            pull_request_body=params["pull_request_body"],
            github_repository=params["github_repository"],
            github_client_factory=github_client if wants_pull and GitHubClient and params["github_token"] else None,
            author_name=params["author_name"],
            author_email=params["author_email"],
            git_timeout=params["git_timeout"],
            check_mode=module.check_mode,
        )
        try:
            changed, result = procedure.run()
        finally:
            for warning in procedure.warnings:
                module.warn(warning)
        patch = result.pop("patch")
        if module.diff_mode and patch:
            result["diff"] = {
                "before_header": "%s@%s" % (result["branch"], result["before"]["tip"][:12]),
                "after_header": "%s (reverted)" % result["branch"],
                "prepared": patch,
            }
        return changed, result

    module.run(revert)


if __name__ == "__main__":
    main()
