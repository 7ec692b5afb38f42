# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Re-run and dispatch GitHub Actions workflows by desired state.

Re-run (``WorkflowRerun``), the rule that makes it idempotent:

  The target run is the one given by id, or the newest successful run of the
  workflow (on ``branch``, for ``event``, for ``head_sha`` when given). With
  ``environment`` it is the newest such run that deployed successfully to that
  environment: a deployment to it, of the run's commit, whose latest status is
  ``success``, matched to the run through the status ``log_url`` (its run id)
  or, when a status carries none, through head_sha and workflow.
  * ``jobs=all``: nothing is done when the target's latest attempt is the most
    recently started run of that workflow on the target's branch and it is
    queued, in progress or succeeded. That is "the last thing this workflow did
    on the branch is (re)deploying the target's commit, and it did not fail".
  * ``jobs=failed``: nothing is done when the target is queued, in progress or
    succeeded (there is nothing failed to re-run).
  * A target still running is never re-run (GitHub refuses it); it is waited for.
  ``force`` re-runs anyway (GitHub still refuses a running run).

Dispatch (``WorkflowDispatch``): nothing is done when the workflow's most
recently started run is for the commit ``ref`` points to and is queued, in
progress or succeeded. GitHub does not return a run's inputs, so inputs are
not compared; ``force`` dispatches anyway.
"""

from __future__ import annotations

import re
import time

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.github import (
    RERUN_WINDOW_DAYS,
    RUN_ACTIVE,
    iso_to_epoch,
    run_age_days,
    run_summary,
    split_repository,
    utc_iso,
)

# How many recent runs are compared to find the most recently started one.
RECENT_RUNS = 30
# Clock skew tolerated between this host and GitHub when looking for a dispatched run.
DISPATCH_SKEW_S = 120
# How many recent deployments to an environment are looked at to find the successful ones.
RECENT_DEPLOYMENTS = 100
_RUN_IN_URL = re.compile(r"/actions/runs/(\d+)(?:/|$|\?|#)")


def _run_id_in(url):
    match = _RUN_IN_URL.search(url or "")
    return int(match.group(1)) if match else None


def _started(run):
    return iso_to_epoch(run.get("run_started_at") or run.get("created_at")) or 0.0


def _good(run):
    return run["status"] in RUN_ACTIVE or (run["status"] == "completed" and run.get("conclusion") == "success")


def _workflow_summary(workflow):
    return {"id": workflow["id"], "name": workflow["name"], "path": workflow["path"],
            "html_url": workflow.get("html_url")}


class _Procedure:
    def __init__(self, client, repository, wait, wait_timeout, poll_interval, check_mode, clock=time.time):
        self.client = client
        self.owner, self.repo = split_repository(repository)
        self.repository = "%s/%s" % (self.owner, self.repo)
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.clock = clock

    def _latest_started(self, workflow_id, branch=None, extra=None):
        runs = self.client.list_runs(self.owner, self.repo, workflow_id, limit=RECENT_RUNS, branch=branch)
        if extra is not None:
            runs = [r for r in runs if r["id"] != extra["id"]] + [extra]
        return max(runs, key=lambda r: (_started(r), r["id"])) if runs else None

    def _finish(self, run, expected_attempt, what, started=False):
        """Wait (if asked) and fail with the run's URL when it did not succeed.

        ``started``: this task started the run, so a failure still reports changed.
        """
        progress = []
        if self.wait and run["status"] != "completed":
            run, progress = self.client.wait_for_run(self.owner, self.repo, run["id"], self.wait_timeout,
                                                     self.poll_interval, attempt=expected_attempt)
        if run["status"] == "completed" and run.get("conclusion") != "success":
            raise RollbackError("%s concluded %s: %s" % (what, run.get("conclusion"), run.get("html_url")),
                                run_id=run["id"], run_attempt=run.get("run_attempt"), html_url=run.get("html_url"),
                                conclusion=run.get("conclusion"), head_sha=run.get("head_sha"), progress=progress,
                                after=run_summary(run), changed=started)
        return run, progress

    @staticmethod
    def _result(run, workflow, before, after, progress, **extra):
        result = {
            "run_id": run["id"], "run_attempt": after.get("run_attempt", run.get("run_attempt")),
            "html_url": run.get("html_url"), "head_sha": run.get("head_sha"), "head_branch": run.get("head_branch"),
            "status": after.get("status"), "conclusion": after.get("conclusion"),
            "workflow": _workflow_summary(workflow), "progress": progress, "before": before, "after": after,
        }
        result.update(extra)
        return result


class WorkflowRerun(_Procedure):
    def __init__(self, client, repository, workflow=None, run_id=None, branch=None, event=None, head_sha=None,
                 jobs="all", force=False, wait=True, wait_timeout=1800, poll_interval=5.0, check_mode=False,
                 clock=time.time, environment=None):
        super().__init__(client, repository, wait, wait_timeout, poll_interval, check_mode, clock)
        if not workflow and not run_id:
            raise RollbackError("Give workflow (file name or id) to re-run its last successful run, or run_id.")
        if environment is not None and not str(environment).strip():
            raise RollbackError("environment must not be empty.")
        if environment and run_id:
            raise RollbackError("Give either run_id or environment (which finds the run), not both.")
        self.environment = str(environment).strip() if environment else None
        self.deployment = None
        self.workflow = workflow
        self.run_id = run_id
        self.branch = branch
        self.event = event
        self.head_sha = head_sha.lower() if head_sha else None
        self.jobs = jobs
        self.force = force

    def _select(self):
        if self.run_id:
            run = self.client.get_run(self.owner, self.repo, self.run_id)
            workflow = self.client.get_workflow(self.owner, self.repo, run["workflow_id"])
            if self.workflow:
                wanted = self.client.get_workflow(self.owner, self.repo, self.workflow)
                if wanted["id"] != workflow["id"]:
                    raise RollbackError("Run %s belongs to workflow %r, not %r."
                                        % (self.run_id, workflow["path"], self.workflow))
            return run, workflow
        workflow = self.client.get_workflow(self.owner, self.repo, self.workflow)
        exact = self.head_sha if self.head_sha and len(self.head_sha) == 40 else None
        if self.environment:
            return self._select_deployed(workflow, exact), workflow
        runs = self.client.list_runs(self.owner, self.repo, workflow["id"], limit=None if (self.head_sha and not exact) else 1,
                                     branch=self.branch, event=self.event, status="success", head_sha=exact)
        if self.head_sha:
            runs = [r for r in runs if r["head_sha"].startswith(self.head_sha)]
        if not runs:
            where = []
            if self.branch:
                where.append("on branch %r" % self.branch)
            if self.event:
                where.append("for event %r" % self.event)
            if self.head_sha:
                where.append("for commit %s" % self.head_sha)
            raise RollbackError("No successful run of workflow %r in %s%s; nothing to re-run. Dispatch the workflow "
                                "on a known good tag instead (sre.rollback.github_workflow_dispatch)."
                                % (workflow["path"], self.repository, " " + " ".join(where) if where else ""),
                                workflow=_workflow_summary(workflow))
        return runs[0], workflow

    def _where(self):
        where = []
        if self.branch:
            where.append("on branch %r" % self.branch)
        if self.event:
            where.append("for event %r" % self.event)
        if self.head_sha:
            where.append("for commit %s" % self.head_sha)
        return " " + " ".join(where) if where else ""

    def _successful_deployments(self, exact):
        """Deployments to the environment whose latest status is success, newest first, with that status."""
        found = []
        for deployment in self.client.list_deployments(self.owner, self.repo, environment=self.environment,
                                                       sha=exact, limit=RECENT_DEPLOYMENTS):
            if deployment.get("environment") not in (None, self.environment):
                continue
            if self.head_sha and not (deployment.get("sha") or "").startswith(self.head_sha):
                continue
            statuses = self.client.deployment_statuses(self.owner, self.repo, deployment["id"])
            if statuses and statuses[0].get("state") == "success":
                found.append((deployment, statuses[0]))
        return found

    def _select_deployed(self, workflow, exact):
        """The newest successful run of the workflow (filters applied) that deployed to the environment."""
        deployed = self._successful_deployments(exact)
        by_run, by_sha = {}, {}
        for deployment, status in deployed:
            run_id = _run_id_in(status.get("log_url")) or _run_id_in(status.get("target_url"))
            if run_id:
                by_run.setdefault(run_id, (deployment, status))
            else:
                by_sha.setdefault(deployment["sha"], (deployment, status))
        if by_run or by_sha:
            runs = self.client.list_runs(self.owner, self.repo, workflow["id"], branch=self.branch, event=self.event,
                                         status="success", head_sha=exact)
            for run in runs:
                if self.head_sha and not run["head_sha"].startswith(self.head_sha):
                    continue
                match = by_run.get(run["id"]) or by_sha.get(run["head_sha"])
                if match:
                    deployment, status = match
                    self.deployment = {"id": deployment["id"], "environment": self.environment,
                                       "sha": deployment.get("sha"), "ref": deployment.get("ref"),
                                       "state": status.get("state"), "created_at": deployment.get("created_at"),
                                       "log_url": status.get("log_url") or status.get("target_url")}
                    return run
        raise RollbackError(
            "No successful deployment of %r to environment %r in %s%s; nothing to re-run. %s"
            % (workflow["path"], self.environment, self.repository, self._where(),
               "The environment has %d successful deployment(s), none by a successful run of this workflow with "
               "these filters." % len(deployed) if deployed else
               "Check the environment name (GitHub, Settings, Environments), or dispatch the workflow on a known good "
               "tag with that environment instead (sre.rollback.github_workflow_dispatch)."),
            workflow=_workflow_summary(workflow), environment=self.environment, successful_deployments=len(deployed))

    def run(self):
        target, workflow = self._select()
        before = run_summary(target)
        what = "Re-run of %s run %s" % (workflow["name"], target["id"])
        latest = self._latest_started(workflow["id"], target.get("head_branch"), extra=target)
        if target["status"] in RUN_ACTIVE:
            reason = "the run is already %s" % target["status"]
            needed = False
        elif self.force:
            needed, reason = True, "force"
        elif self.jobs == "failed":
            needed = not _good(target)
            reason = "the run concluded %s" % target.get("conclusion")
        else:
            is_latest = latest["id"] == target["id"]
            needed = not (is_latest and _good(target))
            reason = ("the run's latest attempt is the workflow's most recent activity on %r and %s"
                      % (target.get("head_branch"), target.get("conclusion") or target["status"]) if not needed else
                      "the most recent run on %r is %s (%s)" % (target.get("head_branch"), latest["id"],
                                                                latest.get("conclusion") or latest["status"]))
        if not needed:
            run, progress = self._finish(target, target.get("run_attempt"), what)
            return False, self._result(run, workflow, before, run_summary(run), progress, rerun=False, deployment=self.deployment,
                                       reason="Nothing to do: " + reason)
        age = run_age_days(target, self.clock())
        if age is not None and age > RERUN_WINDOW_DAYS:
            raise RollbackError(
                "Run %s (%s) of %s was created %d days ago (%s); GitHub re-runs only runs created within the last %d "
                "days. Dispatch the workflow on a tag or branch at commit %s instead (sre.rollback.github_workflow_dispatch)."
                % (target["id"], target.get("html_url"), workflow["path"], int(age), target.get("created_at"),
                   RERUN_WINDOW_DAYS, target.get("head_sha")),
                run_id=target["id"], html_url=target.get("html_url"), before=before)
        if self.jobs == "failed" and _good(target):
            raise RollbackError("Run %s has no failed jobs to re-run (it concluded %s); use jobs=all."
                                % (target["id"], target.get("conclusion")), before=before)
        attempt = (target.get("run_attempt") or 1) + 1
        if self.check_mode:
            after = dict(before, run_attempt=attempt, status="queued", conclusion=None)
            return True, self._result(target, workflow, before, after, [], rerun=True, deployment=self.deployment,
                                      reason="Would re-run: " + reason)
        self.client.rerun(self.owner, self.repo, target["id"], failed_only=self.jobs == "failed")
        run = self.client.get_run(self.owner, self.repo, target["id"])
        run, progress = self._finish(run, attempt, what + " (attempt %d)" % attempt, started=True)
        return True, self._result(run, workflow, before, run_summary(run), progress, rerun=True, deployment=self.deployment,
                                  reason="Re-ran: " + reason)


class WorkflowDispatch(_Procedure):
    def __init__(self, client, repository, workflow, ref, inputs=None, force=False, wait=True, wait_timeout=1800,
                 poll_interval=5.0, find_timeout=60, check_mode=False, clock=time.time):
        super().__init__(client, repository, wait, wait_timeout, poll_interval, check_mode, clock)
        self.workflow = workflow
        self.ref = ref
        self.inputs = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in (inputs or {}).items()}
        self.force = force
        self.find_timeout = find_timeout

    def run(self):
        workflow = self.client.get_workflow(self.owner, self.repo, self.workflow)
        sha = self.client.resolve_ref(self.owner, self.repo, self.ref)
        latest = self._latest_started(workflow["id"])
        before = run_summary(latest)
        if not self.force and latest and latest["head_sha"] == sha and _good(latest):
            what = "%s run %s" % (workflow["name"], latest["id"])
            run, progress = self._finish(latest, latest.get("run_attempt"), what)
            return False, self._result(run, workflow, before, run_summary(run), progress, dispatched=False, sha=sha,
                                       reason="Nothing to do: the workflow's most recent run is for %s (%s) and %s"
                                              % (self.ref, sha[:12], latest.get("conclusion") or latest["status"]))
        if self.force:
            reason = "force"
        elif latest:
            reason = "the workflow's most recent run is %s for %s (%s)" % (
                latest["id"], latest["head_sha"][:12], latest.get("conclusion") or latest["status"])
        else:
            reason = "the workflow has never run"
        if self.check_mode:
            predicted = {"event": "workflow_dispatch", "head_branch": self.ref, "head_sha": sha, "status": "queued",
                         "conclusion": None}
            return True, {"run_id": None, "html_url": None, "head_sha": sha, "head_branch": self.ref, "status": "queued",
                          "conclusion": None, "run_attempt": None, "workflow": _workflow_summary(workflow),
                          "progress": [], "before": before, "after": predicted, "dispatched": True, "sha": sha,
                          "reason": "Would dispatch: " + reason}
        known = {r["id"] for r in self.client.list_runs(self.owner, self.repo, workflow["id"], limit=RECENT_RUNS,
                                                        event="workflow_dispatch", head_sha=sha)}
        dispatched_at = self.clock()
        self.client.dispatch(self.owner, self.repo, workflow["id"], self.ref, self.inputs)
        run = self._find_created(workflow, sha, known, dispatched_at)
        run, progress = self._finish(run, 1, "%s run %s on %s" % (workflow["name"], run["id"], self.ref), started=True)
        return True, self._result(run, workflow, before, run_summary(run), progress, dispatched=True, sha=sha,
                                  reason="Dispatched: " + reason)

    def _find_created(self, workflow, sha, known, dispatched_at):
        """The run the dispatch created: event workflow_dispatch, the ref's commit, created after it, new."""
        deadline = time.monotonic() + self.find_timeout
        created = ">=" + utc_iso(dispatched_at - DISPATCH_SKEW_S)
        while True:
            runs = self.client.list_runs(self.owner, self.repo, workflow["id"], limit=RECENT_RUNS,
                                         event="workflow_dispatch", head_sha=sha, created=created)
            new = [r for r in runs if r["id"] not in known]
            if new:
                return min(new, key=lambda r: (_started(r), r["id"]))
            if time.monotonic() >= deadline:
                raise RollbackError("Dispatched %s on %s, but no new workflow_dispatch run for %s appeared within %s s; "
                                    "look at %s/actions." % (workflow["path"], self.ref, sha[:12], self.find_timeout,
                                                             (workflow.get("html_url") or "").split("/blob/")[0]),
                                    dispatched=True, sha=sha)
            self.client._sleep(min(self.poll_interval, 2.0))  # pylint: disable=protected-access


class WorkflowRunWait(_Procedure):
    """Find the run a workflow started for a commit (a push, a merge) and wait for it.

    Read-only: this is how "revert, push, and let CI redeploy" knows the
    redeploy finished, and how it fails with the run's URL when it did not.
    """

    def __init__(self, client, repository, workflow, head_sha=None, ref=None, event=None, branch=None,
                 appear_timeout=120, wait=True, wait_timeout=1800, poll_interval=5.0, clock=time.time):
        super().__init__(client, repository, wait, wait_timeout, poll_interval, False, clock)
        if bool(head_sha) == bool(ref):
            raise RollbackError("Give exactly one of head_sha (a commit) or ref (a branch or tag).")
        if appear_timeout < 0:
            raise RollbackError("appear_timeout must be 0 or more seconds.")
        self.workflow = workflow
        self.head_sha = head_sha.lower() if head_sha else None
        self.ref = ref
        self.event = event
        self.branch = branch
        self.appear_timeout = appear_timeout

    def run(self):
        workflow = self.client.get_workflow(self.owner, self.repo, self.workflow)
        sha = self.client.resolve_ref(self.owner, self.repo, self.ref or self.head_sha)
        deadline = time.monotonic() + self.appear_timeout
        while True:
            runs = self.client.list_runs(self.owner, self.repo, workflow["id"], limit=RECENT_RUNS,
                                         event=self.event, branch=self.branch, head_sha=sha)
            if runs:
                break
            if time.monotonic() >= deadline:
                raise RollbackError(
                    "No run of %s for commit %s%s appeared within %s s: is the workflow triggered by this %s?"
                    % (workflow["path"], sha[:12], " (event %s)" % self.event if self.event else "",
                       self.appear_timeout, self.event or "change"),
                    sha=sha, workflow=_workflow_summary(workflow))
            self.client._sleep(min(self.poll_interval, 2.0))  # pylint: disable=protected-access
        run = max(runs, key=lambda r: (_started(r), r["id"]))
        before = run_summary(run)
        what = "%s run %s for %s" % (workflow["name"], run["id"], sha[:12])
        run, progress = self._finish(run, run.get("run_attempt"), what)
        return False, self._result(run, workflow, before, run_summary(run), progress, sha=sha)


def ensure_issue(client, repository, title, body=None, labels=None, assignees=None, check_mode=False):
    """An open issue titled ``title`` exists; returns (changed, result). An existing one is left as it is."""
    owner, repo = split_repository(repository)
    if not title or not title.strip():
        raise RollbackError("title must not be empty")
    existing = client.find_issues(owner, repo, title, state="open")
    if existing:
        issue = existing[0]
        summary = _issue_summary(issue)
        return False, {"issue": summary, "number": issue["number"], "html_url": issue.get("html_url"),
                       "created": False, "before": summary, "after": summary}
    if check_mode:
        after = {"title": title, "state": "open", "labels": list(labels or []), "assignees": list(assignees or [])}
        return True, {"issue": None, "number": None, "html_url": None, "created": True, "before": {}, "after": after}
    issue = client.create_issue(owner, repo, title, body, labels, assignees)
    summary = _issue_summary(issue)
    return True, {"issue": summary, "number": issue["number"], "html_url": issue.get("html_url"), "created": True,
                  "before": {}, "after": summary}


def _issue_summary(issue):
    return {"number": issue.get("number"), "title": issue.get("title"), "state": issue.get("state"),
            "html_url": issue.get("html_url"), "labels": [l.get("name") for l in issue.get("labels", [])],
            "assignees": [a.get("login") for a in issue.get("assignees") or []], "created_at": issue.get("created_at")}
