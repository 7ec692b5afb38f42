"""GitHub provider of the sandbox: the REST API parts a rollback uses (workflows,
runs, re-run, dispatch, jobs, pulls, issues, rate limit), GitHub Enterprise
Server style under `/api/v3` on the main port, tied to a real git bare
repository (`<state dir>/git/<owner>/<repo>.git`).

Admin (no auth, never faulted):
  POST /_sandbox/github/push         what the repository's post-receive hook calls
  GET/PUT /_sandbox/github/settings  {"run_duration_s": 1.0, "force_failure": false}
  GET/PUT /_sandbox/github/rate_limit {"remaining", "reset_in_s", "limit"}
  GET /_sandbox/github/deploys       static site deploys done by successful runs
"""

import os

from ..web import BadJson, Response
from .model import DEFAULT_SETTINGS, GitHubState, iso, utcnow
from .repo import ZERO_SHA
from .routes import API_PREFIX, GitHubRoutes, error_body


class GitHubProvider:
    name = "github"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.faults = faults
        self.seed = sandbox.seed_section(self.name)
        state_dir = os.path.dirname(sandbox.ca_path)
        self.git_root = os.path.join(state_dir, "git")
        self.routes = GitHubRoutes(self)
        self.state = None
        self._build()
        self.routes.register()
        self._shape_faults(faults)
        add = sandbox.admin.add
        add("POST", r"/_sandbox/github/push", self._push)
        add("GET", r"/_sandbox/github/settings", self._get_settings)
        add("PUT", r"/_sandbox/github/settings", self._put_settings)
        add("GET", r"/_sandbox/github/rate_limit", self._get_rate_limit)
        add("PUT", r"/_sandbox/github/rate_limit", self._put_rate_limit)
        add("GET", r"/_sandbox/github/deploys", self._get_deploys)
        sandbox.on_reset(self._reset)

    def _hook_url(self):
        # The main port is bound before providers are built (server.py), so base_url is known.
        return f"{self.sandbox.base_url}/_sandbox/github/push"

    def _build(self):
        self.state = GitHubState(self.sandbox, self.seed, self.git_root, self._hook_url())

    def _reset(self):
        self.state.stop()
        self._build()

    def _shape_faults(self, faults):
        """Faults on /api/v3 answer with GitHub's error body and rate-limit headers, not ARM's.

        server.py applies faults to every public path with the ARM error shape;
        wrapping the instance keeps that one place and chains with any other wrapper.
        """
        inner = faults.apply_inbound

        def github_error(status, code, message):
            if status == 429:
                text = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                        "If you reach out to GitHub Support for help, please include the request ID SANDBOX.")
                doc = "rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            else:
                text, doc = "Server Error", "rest"
            response = Response.json(error_body(status, text, doc), status)
            with self.sandbox.lock:
                self.routes.decorate(response)
            return response

        def apply_inbound(request, error_response):
            if request.path.startswith(API_PREFIX):
                return inner(request, github_error)
            return inner(request, error_response)

        faults.apply_inbound = apply_inbound

    def collaborators(self, key):
        return self.state.repos[key]["spec"].get("collaborators", [])

    # -- admin -------------------------------------------------------------------------
    def _push(self, request):
        try:
            body = request.json({}) or {}
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        full_name, ref, after = body.get("repository", ""), body.get("ref", ""), body.get("after", "")
        with self.sandbox.lock:
            entry = self.state.repos.get(full_name.lower())
            if entry is None:
                return Response.json({"error": f"unknown repository {full_name!r}"}, 404)
            entry["pushed_at"] = utcnow()
            started = []
            if ref.startswith("refs/heads/") and after and after != ZERO_SHA:
                branch = ref[len("refs/heads/"):]
                key = full_name.lower()
                for wf in self.state.workflows[key]:
                    branches = wf.get("push_branches", [entry["repo"].default_branch])
                    if "push" in wf.get("on", []) and branch in branches:
                        run = self.state.start_run(key, wf, after, branch, "push")
                        started.append(run.id)
            return Response.json({"runs": started})

    def _get_settings(self, request):
        with self.sandbox.lock:
            return Response.json(dict(self.state.settings))

    def _put_settings(self, request):
        try:
            changes = request.json({}) or {}
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        unknown = set(changes) - set(DEFAULT_SETTINGS) if isinstance(changes, dict) else {"?"}
        if unknown:
            return Response.json({"error": f"unknown settings; known: {', '.join(sorted(DEFAULT_SETTINGS))}"}, 400)
        with self.sandbox.lock:
            if "run_duration_s" in changes:
                self.state.settings["run_duration_s"] = max(float(changes["run_duration_s"]), 0.0)
            if "force_failure" in changes:
                self.state.settings["force_failure"] = bool(changes["force_failure"])
            return Response.json(dict(self.state.settings))

    def _get_rate_limit(self, request):
        with self.sandbox.lock:
            return Response.json(self.state.rate.describe())

    def _put_rate_limit(self, request):
        try:
            body = request.json({}) or {}
            with self.sandbox.lock:
                self.state.rate.set(body.get("remaining"), body.get("reset_in_s"), body.get("limit"))
                return Response.json(self.state.rate.describe())
        except (BadJson, TypeError, ValueError) as err:
            return Response.json({"error": str(err)}, 400)

    def _get_deploys(self, request):
        with self.sandbox.lock:
            return Response.json({"deploys": list(self.state.deploys)})

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        repos = []
        for key, entry in self.state.repos.items():
            repo = entry["repo"]
            runs = []
            for run in self.state.runs_of(key):
                attempt = run.latest
                runs.append({"id": run.id, "workflow": run.workflow["path"], "event": run.event,
                             "head_branch": run.head_branch, "head_sha": run.head_sha,
                             "created_at": iso(run.created_at), "run_attempt": attempt.number,
                             "status": self.state.status(attempt), "conclusion": attempt.conclusion})
            repos.append({
                "full_name": repo.full_name, "path": repo.path, "default_branch": repo.default_branch,
                "head": repo.resolve(repo.default_branch), "runs": runs,
                "issues": [{"number": i["number"], "title": i["title"], "state": i["state"], "labels": i["labels"],
                            "pull_request": bool(i["pull"])} for i in self.state.issues[key]],
            })
        return {"repositories": repos, "settings": dict(self.state.settings), "rate_limit": self.state.rate.describe(),
                "deploys": list(self.state.deploys)}

    def env(self):
        first = next(iter(self.state.repos.values()), None)
        env = {
            "GITHUB_API_URL": f"{self.sandbox.base_url}{API_PREFIX}",
            "SRE_SANDBOX_GITHUB_TOKEN": self.state.token,
        }
        if first is not None:
            env["SRE_SANDBOX_GIT_ORIGIN"] = first["repo"].path
            env["SRE_SANDBOX_GITHUB_REPOSITORY"] = first["repo"].full_name
        return env

    def stop(self):
        self.state.stop()
