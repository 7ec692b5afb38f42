"""State of the GitHub stand-in: repositories, workflows, runs and their
attempts, jobs, pull requests, issues, and the REST rate limit.

A run's status is derived from the clock: `queued` for the first fifth of
`run_duration_s`, `in_progress` until the end, then `completed`. A timer (and
any read after the end, whichever comes first) finalizes it once: the
conclusion is `failure` when the commit has `frontend/BROKEN` (or failure is
forced), else `success`; a successful run of a workflow that `deploys_to` a
static site calls the `static_site_deploy` hook with the commit's
`frontend/VERSION`.

A run of a workflow that `deploys_to` also makes a GitHub deployment, as a job
with `environment:` does: one per attempt, for the run's head_sha, to the
dispatch input `environment` (when given and allowed) or `production`, with
statuses `in_progress` at the start and `success`/`failure` at the end
(`log_url` = the run's html_url). A `success` in a non-production environment
marks the environment's earlier successful deployments `inactive`, as
GitHub's `auto_inactive` does.
"""

import datetime
import threading

from .repo import BareRepo

DEFAULT_SETTINGS = {
    # Seconds from a run's (re-)start to its conclusion.
    "run_duration_s": 1.0,
    # true: every run started from now on concludes failure.
    "force_failure": False,
}
RATE_LIMIT = 5000
RATE_WINDOW_S = 3600
RERUN_WINDOW = datetime.timedelta(days=30)
MAX_ATTEMPTS = 50
BROKEN_MARKER = "frontend/BROKEN"
DEFAULT_ENVIRONMENT = "production"
VERSION_FILE = "frontend/VERSION"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    """GitHub's timestamps: seconds, Z."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


class ApiError(Exception):
    """Becomes a GitHub error body {"message", "documentation_url"[, "errors"]}."""

    def __init__(self, status, message, doc="rest", errors=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.doc = doc
        self.errors = errors
        self.headers = headers or {}


class RateLimit:
    """The `core` resource: every authenticated call but GET /rate_limit costs one."""

    def __init__(self):
        self.limit = RATE_LIMIT
        self.used = 0
        self.reset_at = utcnow() + datetime.timedelta(seconds=RATE_WINDOW_S)

    def _roll(self, now):
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + datetime.timedelta(seconds=RATE_WINDOW_S)

    def remaining(self, now=None):
        self._roll(now or utcnow())
        return max(self.limit - self.used, 0)

    def consume(self, now=None):
        """Count one call; False when the budget is exhausted (the call is refused)."""
        if self.remaining(now) <= 0:
            return False
        self.used += 1
        return True

    def set(self, remaining=None, reset_in_s=None, limit=None):
        now = utcnow()
        self._roll(now)
        if limit is not None:
            self.limit = int(limit)
        if reset_in_s is not None:
            self.reset_at = now + datetime.timedelta(seconds=float(reset_in_s))
        if remaining is not None:
            self.used = self.limit - int(remaining)

    def headers(self):
        remaining = self.remaining()
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(int(self.reset_at.timestamp()) + (1 if self.reset_at.microsecond else 0)),
            "x-ratelimit-used": str(self.limit - remaining),
            "x-ratelimit-resource": "core",
        }

    def describe(self):
        remaining = self.remaining()
        return {"limit": self.limit, "remaining": remaining, "used": self.limit - remaining,
                "reset": int(self.reset_at.timestamp()), "resource": "core"}


class Attempt:
    def __init__(self, number, started_at, duration_s, forced_failure, generation):
        self.number = number
        self.started_at = started_at
        self.duration_s = duration_s
        self.forced_failure = forced_failure
        self.generation = generation
        self.conclusion = None  # set once, when finalized
        self.completed_at = None
        self.failed_only = False
        self.deployment = None


class Run:
    def __init__(self, run_id, number, workflow, head_sha, head_branch, event, created_at, actor):
        self.id = run_id
        self.run_number = number
        self.workflow = workflow
        self.head_sha = head_sha
        self.head_branch = head_branch
        self.event = event
        self.created_at = created_at
        self.actor = actor
        self.attempts = []
        self.jobs = {}  # attempt number -> [job dict]
        self.display_title = ""
        self.environment = None  # the GitHub environment its deploy job targets, when the workflow deploys

    @property
    def latest(self):
        return self.attempts[-1]


class GitHubState:
    def __init__(self, sandbox, seed, git_root, hook_url):
        self.sandbox = sandbox
        self.seed = seed
        self.settings = dict(DEFAULT_SETTINGS)
        self.rate = RateLimit()
        self.token = seed["token"]
        self.login = seed.get("login", "sre-rollback-bot")
        self.repos = {}
        self.workflows = {}  # (full_name lower) -> [workflow dict]
        self.runs = {}  # run id -> Run
        self.issues = {}  # (full_name lower) -> [issue dict]; pull requests included, as on GitHub
        self.deploys = []  # what static_site_deploy was called with (also when no hook)
        self.deployments = {}  # (full_name lower) -> [deployment dict], oldest first
        self.generation = 0
        self._next_deployment_id = 1700000001
        self._next_deployment_status_id = 4100000001
        self._next_run_id = 9100000001
        self._next_job_id = 25000000001
        self._next_issue_id = 3000000001
        self._timers = []
        self.git_root = git_root
        self.hook_url = hook_url
        self._build()

    # -- construction --------------------------------------------------------------------
    def _build(self):
        now = utcnow()
        for spec in self.seed.get("repositories", []):
            repo = BareRepo(self.git_root, spec["owner"], spec["name"], spec.get("default_branch", "main"))
            shas = repo.create(spec["commits"], self.hook_url, self.sandbox.ca_path, now)
            key = repo.full_name.lower()
            self.repos[key] = {"repo": repo, "spec": spec, "id": spec.get("id", 700000001),
                               "created_at": now - datetime.timedelta(days=spec.get("created_days_ago", 400)),
                               "pushed_at": now}
            self.workflows[key] = [dict(w) for w in spec.get("workflows", [])]
            self.issues[key] = []
            self.deployments[key] = []
            for seeded in spec.get("runs", []):
                commit = seeded["commit"]
                sha = shas[commit] if isinstance(commit, int) else repo.resolve(commit)
                created = now - datetime.timedelta(days=seeded.get("days_ago", 0), hours=seeded.get("hours_ago", 0))
                workflow = self.workflow(key, seeded["workflow"])
                run = self._new_run(key, workflow, sha, seeded.get("branch", repo.default_branch),
                                    seeded.get("event", "push"), created,
                                    {"environment": seeded["environment"]} if seeded.get("environment") else None)
                attempt = run.latest
                attempt.conclusion = seeded.get("conclusion", "success")
                attempt.completed_at = created + datetime.timedelta(seconds=seeded.get("duration_s", 95))
                attempt.duration_s = seeded.get("duration_s", 95)
                self._make_jobs(run, attempt, attempt.conclusion)
                self._deployment_start(run, attempt)
                self._deployment_end(run, attempt)
            for issue in spec.get("issues", []):
                self._add_issue(key, issue["title"], issue.get("body"), issue.get("labels", []), [],
                                state=issue.get("state", "open"))

    def stop(self):
        self.generation += 1
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def remove_repos(self):
        for entry in self.repos.values():
            entry["repo"].remove()

    # -- lookups -------------------------------------------------------------------------
    def repo(self, owner, name):
        entry = self.repos.get(f"{owner}/{name}".lower())
        if entry is None:
            raise ApiError(404, "Not Found", "rest/repos/repos#get-a-repository")
        return entry

    def workflow(self, key, ident):
        """A workflow by numeric id, file name (deploy.yml) or path (.github/workflows/deploy.yml)."""
        ident = str(ident)
        for workflow in self.workflows.get(key, []):
            if ident == str(workflow["id"]) or ident == workflow["path"] or ident == workflow["path"].rsplit("/", 1)[-1]:
                return workflow
        raise ApiError(404, "Not Found", "rest/actions/workflows#get-a-workflow")

    def runs_of(self, key, workflow=None):
        runs = [r for r in self.runs.values() if r.workflow["_repo"] == key
                and (workflow is None or r.workflow["id"] == workflow["id"])]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def run(self, key, run_id):
        try:
            run = self.runs[int(run_id)]
        except (KeyError, ValueError):
            raise ApiError(404, "Not Found", "rest/actions/workflow-runs#get-a-workflow-run") from None
        if run.workflow["_repo"] != key:
            raise ApiError(404, "Not Found", "rest/actions/workflow-runs#get-a-workflow-run")
        return run

    # -- run lifecycle -------------------------------------------------------------------
    def _new_run(self, key, workflow, sha, branch, event, created_at, inputs=None):
        workflow["_repo"] = key
        number = 1 + sum(1 for r in self.runs.values() if r.workflow["id"] == workflow["id"])
        run = Run(self._next_run_id, number, workflow, sha, branch, event, created_at, self.login)
        self._next_run_id += 1
        repo = self.repos[key]["repo"]
        info = repo.commit_info(sha)
        run.display_title = workflow["name"] if event == "workflow_dispatch" else info["message"].splitlines()[0]
        run.environment = self._environment_of(workflow, inputs)
        run.attempts.append(Attempt(1, created_at, self.settings["run_duration_s"], self.settings["force_failure"],
                                    self.generation))
        self.runs[run.id] = run
        return run

    def start_run(self, key, workflow, sha, branch, event, inputs=None):
        run = self._new_run(key, workflow, sha, branch, event, utcnow(), inputs)
        self._schedule(run, run.latest)
        self._deployment_start(run, run.latest)
        return run

    def rerun(self, run, failed_only):
        previous = run.latest
        attempt = Attempt(previous.number + 1, utcnow(), self.settings["run_duration_s"],
                          self.settings["force_failure"], self.generation)
        attempt.failed_only = failed_only
        run.attempts.append(attempt)
        self._schedule(run, attempt)
        self._deployment_start(run, attempt)
        return attempt

    def _schedule(self, run, attempt):
        timer = threading.Timer(attempt.duration_s, self._finalize_locked, args=(run, attempt))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        self._make_jobs(run, attempt, None)
        timer.start()

    def _finalize_locked(self, run, attempt):
        with self.sandbox.lock:
            if attempt.generation == self.generation:
                self.finalize(run, attempt)

    def status(self, attempt, now=None):
        if attempt.conclusion is not None:
            return "completed"
        elapsed = ((now or utcnow()) - attempt.started_at).total_seconds()
        if elapsed < attempt.duration_s / 5:
            return "queued"
        if elapsed < attempt.duration_s:
            return "in_progress"
        self.finalize(self._run_of(attempt), attempt)
        return "completed"

    def _run_of(self, attempt):
        for run in self.runs.values():
            if attempt in run.attempts:
                return run
        raise KeyError("attempt without a run")

    def finalize(self, run, attempt):
        if attempt.conclusion is not None:
            return
        repo = self.repos[run.workflow["_repo"]]["repo"]
        broken = repo.show(run.head_sha, BROKEN_MARKER) is not None
        attempt.conclusion = "failure" if (broken or attempt.forced_failure) else "success"
        attempt.completed_at = attempt.started_at + datetime.timedelta(seconds=attempt.duration_s)
        self._make_jobs(run, attempt, attempt.conclusion)
        self._deployment_end(run, attempt)
        deploys_to = run.workflow.get("deploys_to")
        if attempt.conclusion == "success" and deploys_to:
            version = (repo.show(run.head_sha, VERSION_FILE) or "").strip() or None
            record = {"site": deploys_to.get("static_site"), "environment": deploys_to.get("environment", "default"),
                      "version": version, "commit_sha": run.head_sha, "run_id": run.id, "run_attempt": attempt.number,
                      "time": iso(utcnow()), "hooked": False}
            hook = getattr(self.sandbox, "hooks", {}).get("static_site_deploy")
            if hook is not None:
                try:
                    hook(record["site"], record["environment"], version, run.head_sha)
                    record["hooked"] = True
                except Exception as err:  # pylint: disable=broad-except  # a bad seed must not kill the timer
                    record["error"] = repr(err)
            self.deploys.append(record)

    # -- deployments -------------------------------------------------------------------
    @staticmethod
    def _environment_of(workflow, inputs):
        """The environment of the deploy job: the `environment` input when given and allowed, else production."""
        if not workflow.get("deploys_to"):
            return None
        wanted = (inputs or {}).get("environment")
        options = (workflow.get("inputs") or {}).get("environment", {}).get("options")
        if wanted and (not options or str(wanted) in options):
            return str(wanted)
        return DEFAULT_ENVIRONMENT

    def _deployment_start(self, run, attempt):
        if not run.environment:
            return
        key = run.workflow["_repo"]
        deployment = {
            "id": self._next_deployment_id, "sha": run.head_sha, "ref": run.head_branch, "task": "deploy",
            "environment": run.environment, "payload": {}, "description": None,
            "created_at": attempt.started_at, "updated_at": attempt.started_at,
            "production_environment": run.environment == DEFAULT_ENVIRONMENT, "transient_environment": False,
            "run_id": run.id, "run_attempt": attempt.number, "statuses": [],
        }
        self._next_deployment_id += 1
        self.deployments[key].append(deployment)
        attempt.deployment = deployment
        self._add_deployment_status(deployment, "in_progress", attempt.started_at)

    def _deployment_end(self, run, attempt):
        deployment = getattr(attempt, "deployment", None)
        if deployment is None or attempt.conclusion is None:
            return
        state = "success" if attempt.conclusion == "success" else "failure"
        at = attempt.completed_at or utcnow()
        self._add_deployment_status(deployment, state, at)
        if state == "success" and not deployment["production_environment"]:
            for other in self.deployments[run.workflow["_repo"]]:
                if (other is not deployment and other["environment"] == deployment["environment"]
                        and other["statuses"] and other["statuses"][-1]["state"] == "success"):
                    self._add_deployment_status(other, "inactive", at)

    def _add_deployment_status(self, deployment, state, at):
        run = self.runs[deployment["run_id"]]
        status = {"id": self._next_deployment_status_id, "state": state, "created_at": at,
                  "environment": deployment["environment"], "run_id": run.id,
                  "description": {"in_progress": "Deployment started", "success": "Deployment succeeded",
                                  "failure": "Deployment failed", "inactive": "Superseded"}.get(state, "")}
        self._next_deployment_status_id += 1
        deployment["statuses"].append(status)
        deployment["updated_at"] = at

    def deployment(self, key, deployment_id):
        for deployment in self.deployments.get(key, []):
            if str(deployment["id"]) == str(deployment_id):
                return deployment
        raise ApiError(404, "Not Found", "rest/deployments/deployments#get-a-deployment")

    def finalize_due(self, key):
        """Finalize every attempt whose time is up, so deployment statuses are current."""
        for run in self.runs_of(key):
            self.status(run.latest)

    # -- jobs --------------------------------------------------------------------------
    def _make_jobs(self, run, attempt, conclusion):
        """Jobs of an attempt; a failed attempt fails its last job (the deploy or the tests)."""
        names = run.workflow.get("jobs") or ["build"]
        previous = run.jobs.get(attempt.number - 1) if attempt.failed_only else None
        existing = run.jobs.get(attempt.number)
        jobs = []
        for index, name in enumerate(names):
            job_id = existing[index]["id"] if existing else self._next_job_id
            if not existing:
                self._next_job_id += 1
            carried = previous and previous[index]["conclusion"] == "success"
            if carried:
                job_conclusion = "success"
            elif conclusion is None:
                job_conclusion = None
            elif conclusion == "failure":
                job_conclusion = "failure" if index == len(names) - 1 else "success"
            else:
                job_conclusion = conclusion
            jobs.append({"id": job_id, "name": name, "conclusion": job_conclusion, "carried": bool(carried)})
        run.jobs[attempt.number] = jobs

    # -- issues and pull requests ------------------------------------------------------
    def _add_issue(self, key, title, body, labels, assignees, state="open", pull=None):
        items = self.issues[key]
        now = utcnow()
        issue = {
            "id": self._next_issue_id, "number": len(items) + 1, "title": title, "body": body, "state": state,
            "labels": list(labels), "assignees": list(assignees), "user": self.login,
            "created_at": now, "updated_at": now, "closed_at": now if state == "closed" else None,
            "pull": pull,
        }
        self._next_issue_id += 1
        items.append(issue)
        return issue

    def add_issue(self, key, title, body, labels, assignees):
        return self._add_issue(key, title, body, labels, assignees)

    def add_pull(self, key, title, body, head, base, head_sha, base_sha, draft):
        return self._add_issue(key, title, body, [], [], pull={"head": head, "base": base, "head_sha": head_sha,
                                                               "base_sha": base_sha, "draft": bool(draft)})
