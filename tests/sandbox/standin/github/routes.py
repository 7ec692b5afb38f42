"""GitHub REST routes under /api/v3 (GitHub Enterprise Server layout).

Every response carries the `x-ratelimit-*` headers; every call but
`GET /rate_limit` costs one from the `core` budget; an exhausted budget is
`403 API rate limit exceeded` until the reset time. Errors are GitHub's
`{"message", "documentation_url"}` bodies.
"""

import datetime
import json
import re
import uuid
from urllib.parse import parse_qsl, urlencode

from ..web import BadJson, Response
from . import views
from .model import MAX_ATTEMPTS, RERUN_WINDOW, ApiError, utcnow

API_PREFIX = "/api/v3"
DOCS = "https://docs.github.com"
REPO = API_PREFIX + r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
RUN_STATUSES = ("queued", "in_progress", "completed", "requested", "waiting", "pending")


def error_body(status, message, doc="rest", errors=None):
    body = {"message": message, "documentation_url": f"{DOCS}/{doc}", "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


class GitHubRoutes:
    def __init__(self, provider):
        self.provider = provider
        self.sandbox = provider.sandbox

    @property
    def state(self):
        return self.provider.state

    @property
    def urls(self):
        return views.Urls(self.sandbox.base_url)

    def register(self):
        routes = [
            ("GET", API_PREFIX + r"/rate_limit", self.rate_limit),
            ("GET", REPO, self.get_repo),
            ("GET", REPO + r"/commits/(?P<ref>.+)", self.get_commit),
            ("GET", REPO + r"/actions/workflows", self.list_workflows),
            ("GET", REPO + r"/actions/workflows/(?P<workflow>[^/]+)", self.get_workflow),
            ("GET", REPO + r"/actions/workflows/(?P<workflow>[^/]+)/runs", self.list_workflow_runs),
            ("POST", REPO + r"/actions/workflows/(?P<workflow>[^/]+)/dispatches", self.dispatch),
            ("GET", REPO + r"/actions/runs", self.list_runs),
            ("GET", REPO + r"/actions/runs/(?P<run>\d+)", self.get_run),
            ("GET", REPO + r"/actions/runs/(?P<run>\d+)/attempts/(?P<attempt>\d+)", self.get_attempt),
            ("GET", REPO + r"/actions/runs/(?P<run>\d+)/jobs", self.list_jobs),
            ("GET", REPO + r"/actions/runs/(?P<run>\d+)/attempts/(?P<attempt>\d+)/jobs", self.list_jobs),
            ("POST", REPO + r"/actions/runs/(?P<run>\d+)/rerun", self.rerun),
            ("POST", REPO + r"/actions/runs/(?P<run>\d+)/rerun-failed-jobs", self.rerun_failed),
            ("GET", REPO + r"/deployments", self.list_deployments),
            ("GET", REPO + r"/deployments/(?P<deployment>\d+)", self.get_deployment),
            ("GET", REPO + r"/deployments/(?P<deployment>\d+)/statuses", self.list_deployment_statuses),
            ("GET", REPO + r"/pulls", self.list_pulls),
            ("POST", REPO + r"/pulls", self.create_pull),
            ("GET", REPO + r"/pulls/(?P<number>\d+)", self.get_pull),
            ("GET", REPO + r"/issues", self.list_issues),
            ("POST", REPO + r"/issues", self.create_issue),
            ("GET", REPO + r"/issues/(?P<number>\d+)", self.get_issue),
        ]
        for method, pattern, handler in routes:
            # GitHub ignores one trailing slash; clients that join a base URL with "" send it.
            self.sandbox.public.add(method, pattern + "/?", self._front_door(handler, counts=handler != self.rate_limit))
        # Anything else under /api/v3 is GitHub's 404, not the ARM-shaped one.
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            self.sandbox.public.add(method, API_PREFIX + r"(/.*)?", self._front_door(self.not_found, counts=True))

    # -- front door ----------------------------------------------------------------------
    def _front_door(self, handler, counts):
        def serve(request):
            with self.sandbox.lock:
                try:
                    self._authenticate(request)
                    if counts and not self.state.rate.consume():
                        raise ApiError(403, "API rate limit exceeded for user ID 41898282. If you reach out to "
                                            "GitHub Support for help, please include the request ID "
                                            f"{request.headers.get('x-github-request-id') or 'SANDBOX'}.",
                                       "rest/overview/rate-limits-for-the-rest-api")
                    response = handler(request)
                except ApiError as err:
                    response = Response.json(error_body(err.status, err.message, err.doc, err.errors), err.status,
                                             err.headers)
                except BadJson as err:
                    response = Response.json(error_body(400, f"Problems parsing JSON: {err}"), 400)
                self.decorate(response)
                return response
        return serve

    def decorate(self, response):
        for name, value in self.state.rate.headers().items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("x-github-api-version-selected", "2022-11-28")
        response.headers.setdefault("x-github-media-type", "github.v3; format=json")
        response.headers.setdefault("x-github-request-id", uuid.uuid4().hex[:8].upper() + ":SANDBOX")
        response.headers.setdefault("x-github-enterprise-version", "3.14.0")

    def _authenticate(self, request):
        header = request.headers.get("Authorization") or ""
        scheme, _sep, credential = header.partition(" ")
        if not header:
            raise ApiError(401, "Requires authentication", "rest/overview/authenticating-to-the-rest-api")
        if scheme.lower() not in ("bearer", "token") or credential.strip() != self.state.token:
            raise ApiError(401, "Bad credentials", "rest")

    def not_found(self, request):
        raise ApiError(404, "Not Found", "rest")

    # -- helpers -------------------------------------------------------------------------
    def _repo(self, request):
        entry = self.state.repo(request.params["owner"], request.params["repo"])
        return entry, entry["repo"].full_name, entry["repo"].full_name.lower()

    def _page(self, request, items):
        """Slice by per_page/page and build the Link header GitHub sends."""
        try:
            per_page = min(max(int(request.query.get("per_page", 30)), 1), 100)
            page = max(int(request.query.get("page", 1)), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        pairs = [(k, v) for k, v in parse_qsl(request.raw_query, keep_blank_values=True) if k not in ("page",)]

        def link(number, rel):
            query = urlencode(pairs + [("page", str(number))])
            return f'<{self.sandbox.base_url}{request.path}?{query}>; rel="{rel}"'

        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page:page * per_page], headers

    # -- repository ----------------------------------------------------------------------
    def rate_limit(self, request):
        core = self.state.rate.describe()
        return Response.json({"resources": {"core": core}, "rate": core})

    def get_repo(self, request):
        entry, _full, _key = self._repo(request)
        return Response.json(views.repository(entry, self.urls, self.state.login))

    def get_commit(self, request):
        entry, full, _key = self._repo(request)
        sha = entry["repo"].resolve(request.params["ref"])
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {request.params['ref']}", "rest/commits/commits#get-a-commit")
        info = entry["repo"].commit_info(sha)
        return Response.json({
            "sha": sha, "node_id": f"C_kwDOSandbox{sha[:10]}", "url": f"{self.urls.repo_api(full)}/commits/{sha}",
            "html_url": f"{self.urls.repo_html(full)}/commit/{sha}",
            "commit": {"message": info["message"], "tree": {"sha": info["tree"]},
                       "author": info["author"], "committer": info["committer"]},
            "parents": [{"sha": p} for p in info["parents"]],
        })

    # -- workflows and runs --------------------------------------------------------------
    def list_workflows(self, request):
        entry, full, key = self._repo(request)
        items = [views.workflow(w, self.urls, full, entry["created_at"]) for w in self.state.workflows[key]]
        page, headers = self._page(request, items)
        return Response.json({"total_count": len(items), "workflows": page}, headers=headers)

    def get_workflow(self, request):
        entry, full, key = self._repo(request)
        wf = self.state.workflow(key, request.params["workflow"])
        return Response.json(views.workflow(wf, self.urls, full, entry["created_at"]))

    def list_workflow_runs(self, request):
        _entry, _full, key = self._repo(request)
        wf = self.state.workflow(key, request.params["workflow"])
        return self._runs_response(request, key, wf)

    def list_runs(self, request):
        _entry, _full, key = self._repo(request)
        return self._runs_response(request, key, None)

    def _runs_response(self, request, key, wf):
        full = self.state.repos[key]["repo"].full_name
        runs = self.state.runs_of(key, wf)
        query = request.query
        created = _parse_created(query.get("created")) if query.get("created") else None
        selected = []
        for run in runs:
            if query.get("branch") and run.head_branch != query["branch"]:
                continue
            if query.get("event") and run.event != query["event"]:
                continue
            if query.get("head_sha") and run.head_sha != query["head_sha"]:
                continue
            if query.get("actor") and run.actor != query["actor"]:
                continue
            if created and not created(run.created_at):
                continue
            wanted = query.get("status")
            if wanted:
                status = self.state.status(run.latest)
                if wanted in RUN_STATUSES:
                    if status != wanted:
                        continue
                elif not (status == "completed" and run.latest.conclusion == wanted):
                    continue
            selected.append(run)
        page, headers = self._page(request, selected)
        body = {"total_count": len(selected),
                "workflow_runs": [views.workflow_run(self.state, r, self.urls, full) for r in page]}
        return Response.json(body, headers=headers)

    def get_run(self, request):
        _entry, full, key = self._repo(request)
        run = self.state.run(key, request.params["run"])
        return Response.json(views.workflow_run(self.state, run, self.urls, full))

    def _attempt(self, run, request):
        number = request.params.get("attempt")
        if number is None:
            return run.latest
        number = int(number)
        if not 1 <= number <= len(run.attempts):
            raise ApiError(404, "Not Found", "rest/actions/workflow-runs#get-a-workflow-run-attempt")
        return run.attempts[number - 1]

    def get_attempt(self, request):
        _entry, full, key = self._repo(request)
        run = self.state.run(key, request.params["run"])
        return Response.json(views.workflow_run(self.state, run, self.urls, full, self._attempt(run, request)))

    def list_jobs(self, request):
        _entry, full, key = self._repo(request)
        run = self.state.run(key, request.params["run"])
        attempt = self._attempt(run, request)
        self.state.status(attempt)  # finalize if due, so the jobs carry conclusions
        entries = run.jobs.get(attempt.number, [])
        if request.query.get("filter", "latest") == "all" and "attempt" not in request.params:
            entries = [e for n in sorted(run.jobs) for e in run.jobs[n]]
        items = [views.job(self.state, run, attempt, e, i, self.urls, full) for i, e in enumerate(entries)]
        page, headers = self._page(request, items)
        return Response.json({"total_count": len(items), "jobs": page}, headers=headers)

    def _check_rerun(self, run):
        if utcnow() - run.created_at > RERUN_WINDOW:
            raise ApiError(403, "Unable to retry this workflow run because it was created over a month ago",
                           "rest/actions/workflow-runs#re-run-a-workflow")
        if self.state.status(run.latest) != "completed":
            raise ApiError(403, "This workflow is already running", "rest/actions/workflow-runs#re-run-a-workflow")
        if len(run.attempts) >= MAX_ATTEMPTS:
            raise ApiError(403, f"This workflow run has reached the maximum of {MAX_ATTEMPTS} attempts",
                           "rest/actions/workflow-runs#re-run-a-workflow")

    def rerun(self, request):
        _entry, _full, key = self._repo(request)
        run = self.state.run(key, request.params["run"])
        request.json({})
        self._check_rerun(run)
        self.state.rerun(run, failed_only=False)
        return Response.json({}, 201)

    def rerun_failed(self, request):
        _entry, _full, key = self._repo(request)
        run = self.state.run(key, request.params["run"])
        request.json({})
        self._check_rerun(run)
        if run.latest.conclusion == "success":
            raise ApiError(403, "This workflow run has no failed jobs to re-run",
                           "rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run")
        self.state.rerun(run, failed_only=True)
        return Response.json({}, 201)

    def dispatch(self, request):
        entry, _full, key = self._repo(request)
        wf = self.state.workflow(key, request.params["workflow"])
        body = request.json({}) or {}
        doc = "rest/actions/workflows#create-a-workflow-dispatch-event"
        if not isinstance(body, dict) or not body.get("ref"):
            raise ApiError(422, 'Invalid request.\n\n"ref" wasn\'t supplied.', doc)
        if "workflow_dispatch" not in wf.get("on", []):
            raise ApiError(422, "Workflow does not have 'workflow_dispatch' trigger", doc)
        ref = body["ref"]
        short = re.sub(r"^refs/(heads|tags)/", "", ref)
        repo = entry["repo"]
        if not (repo.branch_exists(short) or repo.tag_exists(short)):
            raise ApiError(422, f"No ref found for: {ref}", doc)
        sha = repo.resolve(short)
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ApiError(422, "Invalid request.\n\nFor 'properties/inputs', is not an object.", doc)
        declared = wf.get("inputs", {})
        unexpected = sorted(set(inputs) - set(declared))
        if unexpected:
            raise ApiError(422, f"Unexpected inputs provided: {json.dumps(unexpected)}", doc)
        for name, spec in declared.items():
            if spec.get("required") and name not in inputs and "default" not in spec:
                raise ApiError(422, f"Required input '{name}' not provided", doc)
            if name in inputs and spec.get("options") and str(inputs[name]) not in spec["options"]:
                raise ApiError(422, f"Provided value '{inputs[name]}' for input '{name}' not in the list of "
                                    "allowed values", doc)
        if len(json.dumps(inputs)) > 65535 or len(inputs) > 25:
            raise ApiError(422, "Too many inputs or inputs too large", doc)
        self.state.start_run(key, wf, sha, short, "workflow_dispatch", inputs)
        return Response(204)

    # -- deployments ---------------------------------------------------------------------
    def list_deployments(self, request):
        _entry, full, key = self._repo(request)
        self.state.finalize_due(key)
        query = request.query
        items = []
        for deployment in sorted(self.state.deployments[key], key=lambda d: (d["created_at"], d["id"]), reverse=True):
            if any(query.get(name) and deployment[name] != query[name] for name in ("sha", "ref", "task", "environment")):
                continue
            items.append(views.deployment(deployment, self.urls, full, self.state.login))
        page, headers = self._page(request, items)
        return Response.json(page, headers=headers)

    def get_deployment(self, request):
        _entry, full, key = self._repo(request)
        self.state.finalize_due(key)
        deployment = self.state.deployment(key, request.params["deployment"])
        return Response.json(views.deployment(deployment, self.urls, full, self.state.login))

    def list_deployment_statuses(self, request):
        _entry, full, key = self._repo(request)
        self.state.finalize_due(key)
        deployment = self.state.deployment(key, request.params["deployment"])
        items = [views.deployment_status(s, deployment, self.urls, full, self.state.login)
                 for s in sorted(deployment["statuses"], key=lambda s: (s["created_at"], s["id"]), reverse=True)]
        page, headers = self._page(request, items)
        return Response.json(page, headers=headers)

    # -- pull requests -------------------------------------------------------------------
    def list_pulls(self, request):
        entry, full, key = self._repo(request)
        state = request.query.get("state", "open")
        items = []
        for item in reversed(self.state.issues[key]):
            if not item["pull"] or (state != "all" and item["state"] != state):
                continue
            head = request.query.get("head")
            if head and f"{entry['repo'].owner}:{item['pull']['head']}" != head and item["pull"]["head"] != head:
                continue
            if request.query.get("base") and item["pull"]["base"] != request.query["base"]:
                continue
            items.append(views.pull(item, self.urls, full, entry["repo"].owner))
        page, headers = self._page(request, items)
        return Response.json(page, headers=headers)

    def get_pull(self, request):
        entry, full, key = self._repo(request)
        item = self._item(key, request.params["number"])
        if not item["pull"]:
            raise ApiError(404, "Not Found", "rest/pulls/pulls#get-a-pull-request")
        return Response.json(views.pull(item, self.urls, full, entry["repo"].owner))

    def create_pull(self, request):
        entry, full, key = self._repo(request)
        body = request.json({}) or {}
        doc = "rest/pulls/pulls#create-a-pull-request"
        repo = entry["repo"]
        missing = [f for f in ("head", "base") if not body.get(f)]
        if missing or not (body.get("title") or body.get("issue")):
            raise ApiError(422, "Validation Failed", doc, errors=[
                {"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing or ["title"]])
        head = body["head"].split(":", 1)[-1]
        base = body["base"]
        errors = []
        if not repo.branch_exists(base):
            errors.append({"resource": "PullRequest", "field": "base", "code": "invalid"})
        if not repo.branch_exists(head):
            errors.append({"resource": "PullRequest", "field": "head", "code": "invalid"})
        if errors:
            raise ApiError(422, "Validation Failed", doc, errors=errors)
        for item in self.state.issues[key]:
            if item["pull"] and item["state"] == "open" and item["pull"]["head"] == head and item["pull"]["base"] == base:
                raise ApiError(422, "Validation Failed", doc, errors=[{
                    "resource": "PullRequest", "code": "custom",
                    "message": f"A pull request already exists for {repo.owner}:{head}."}])
        head_sha, base_sha = repo.resolve(head), repo.resolve(base)
        if not repo.commits_between(base_sha, head_sha):
            raise ApiError(422, "Validation Failed", doc, errors=[{
                "resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"}])
        item = self.state.add_pull(key, body["title"], body.get("body"), head, base, head_sha, base_sha,
                                   body.get("draft"))
        return Response.json(views.pull(item, self.urls, full, repo.owner), 201,
                             {"Location": f"{self.urls.repo_api(full)}/pulls/{item['number']}"})

    # -- issues --------------------------------------------------------------------------
    def _item(self, key, number):
        for item in self.state.issues[key]:
            if str(item["number"]) == str(number):
                return item
        raise ApiError(404, "Not Found", "rest/issues/issues#get-an-issue")

    def list_issues(self, request):
        _entry, full, key = self._repo(request)
        state = request.query.get("state", "open")
        wanted_labels = [l.strip() for l in request.query.get("labels", "").split(",") if l.strip()]
        items = []
        for item in reversed(self.state.issues[key]):  # newest first, like sort=created&direction=desc
            if state != "all" and item["state"] != state:
                continue
            if any(l not in item["labels"] for l in wanted_labels):
                continue
            if request.query.get("creator") and item["user"] != request.query["creator"]:
                continue
            items.append(views.issue(item, self.urls, full, self.state.login))
        page, headers = self._page(request, items)
        return Response.json(page, headers=headers)

    def get_issue(self, request):
        _entry, full, key = self._repo(request)
        return Response.json(views.issue(self._item(key, request.params["number"]), self.urls, full, self.state.login))

    def create_issue(self, request):
        _entry, full, key = self._repo(request)
        body = request.json({}) or {}
        doc = "rest/issues/issues#create-an-issue"
        if not isinstance(body, dict) or not body.get("title"):
            raise ApiError(422, "Validation Failed", doc,
                           errors=[{"resource": "Issue", "field": "title", "code": "missing_field"}])
        labels = [l["name"] if isinstance(l, dict) else str(l) for l in body.get("labels") or []]
        assignees = [str(a) for a in body.get("assignees") or []]
        if body.get("assignee"):
            assignees.append(str(body["assignee"]))
        known = {self.state.login, *self.provider.collaborators(key)}
        bad = [a for a in assignees if a not in known]
        if bad:
            raise ApiError(422, "Validation Failed", doc, errors=[
                {"value": a, "resource": "Issue", "field": "assignees", "code": "invalid"} for a in bad])
        item = self.state.add_issue(key, body["title"], body.get("body"), labels, assignees)
        return Response.json(views.issue(item, self.urls, full, self.state.login), 201,
                             {"Location": f"{self.urls.repo_api(full)}/issues/{item['number']}"})


def _parse_created(expr):
    """GitHub search date syntax: DATE, >DATE, >=DATE, <DATE, <=DATE, A..B, A..*, *..B."""
    def parse(text, end=False):
        text = text.strip()
        if text == "*":
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
            return day + datetime.timedelta(days=1) - datetime.timedelta(microseconds=1) if end else day
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)

    try:
        if ".." in expr:
            low, high = expr.split("..", 1)
            lo, hi = parse(low), parse(high, end=True)
            return lambda ts: (lo is None or ts >= lo) and (hi is None or ts <= hi)
        for op in (">=", "<=", ">", "<"):
            if expr.startswith(op):
                bound = parse(expr[len(op):], end=op in ("<=", ">"))
                return {">=": lambda ts: ts >= bound, "<=": lambda ts: ts <= bound,
                        ">": lambda ts: ts > bound, "<": lambda ts: ts < bound}[op]
        lo, hi = parse(expr), parse(expr, end=True)
        if lo == hi:  # a full timestamp: that second
            hi = lo + datetime.timedelta(seconds=1)
        return lambda ts: lo <= ts <= hi
    except ValueError:
        raise ApiError(422, f"Invalid created filter: {expr}", "rest/actions/workflow-runs") from None
