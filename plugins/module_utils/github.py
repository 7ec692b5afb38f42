# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small GitHub REST client (github.com and GitHub Enterprise Server) on httpx.

What a rollback needs and no more: workflows, runs, re-runs, dispatches,
pull requests and issues. It knows GitHub's habits:

- errors are ``{"message", "documentation_url", "errors"}`` bodies and become a
  :class:`RollbackError` that quotes GitHub's message;
- 5xx answers and connection failures are retried with exponential backoff.
  A POST is re-sent only when GitHub certainly did not act on it (a refused
  connection, a 429/403 rate-limit answer, 502/503/504), so a re-run or a
  dispatch is never started twice because an answer was lost;
- rate limits: ``Retry-After`` (secondary limits) and ``x-ratelimit-reset`` with
  ``x-ratelimit-remaining: 0`` (primary limit) are honoured by waiting, when the
  wait is within ``rate_limit_wait`` seconds; otherwise the call fails and says
  when the limit resets;
- ``Link`` headers drive pagination.
"""

from __future__ import annotations

import datetime
import re
import time
import traceback
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.trust import tls_verify

try:
    import httpx
except ImportError:  # pragma: no cover - reported by the module via missing_required_lib
    httpx = None
    HTTPX_IMPORT_ERROR = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "sre.rollback-ansible-collection"
# GitHub refuses re-runs of runs created more than this long ago.
RERUN_WINDOW_DAYS = 30
# Secondary rate limits without Retry-After: GitHub asks to wait at least a minute.
SECONDARY_LIMIT_WAIT_S = 60
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
RUN_ACTIVE = ("queued", "in_progress", "requested", "waiting", "pending")

GITHUB_ARGSPEC = dict(
    api_url=dict(type="str", fallback=(env_fallback, ["GITHUB_API_URL"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["GITHUB_TOKEN", "GH_TOKEN"])),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    api_timeout=dict(type="float", default=30),
    api_retries=dict(type="int", default=3),
    rate_limit_wait=dict(type="int", default=60),
)


def github_argspec(prefix=""):
    """GITHUB_ARGSPEC with every option under ``prefix``, for a module where GitHub is secondary
    (git_revert names them github_api_url, github_token...)."""
    return {prefix + name: dict(spec) for name, spec in GITHUB_ARGSPEC.items()}


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')


class GitHubError(RollbackError):
    """A GitHub API call failed; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message, status=None, **details):
        super().__init__(message, status=status, **details)
        self.status = status


# ---------------------------------------------------------------------------- helpers
def parse_link_header(value):
    """``Link`` header -> {rel: url}."""
    return {rel: url for url, rel in _LINK.findall(value or "")}


def rate_limit_wait(status, headers, body_message, now):
    """Seconds to wait before retrying a rate-limited answer, or None if it is not one.

    - 429, or 403 with ``Retry-After``: that many seconds (secondary limit);
    - 403/429 with ``x-ratelimit-remaining: 0``: until ``x-ratelimit-reset`` (epoch seconds), plus one;
    - 403/429 whose message names a secondary rate limit but no header: a minute.
    """
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            try:
                when = datetime.datetime.strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT")
                return max(when.replace(tzinfo=datetime.timezone.utc).timestamp() - now, 0.0)
            except ValueError:
                pass
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(float(headers["x-ratelimit-reset"]) - now, 0.0) + 1.0
        except ValueError:
            pass
    if status == 429 or "rate limit" in (body_message or "").lower():
        return float(SECONDARY_LIMIT_WAIT_S)
    return None


def iso_to_epoch(value):
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def utc_iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_repository(repository):
    """'owner/name' -> (owner, name); a clear error otherwise."""
    parts = (repository or "").strip().strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise RollbackError("repository must be 'owner/name', got %r" % repository)
    return parts[0], parts[1]


# ----------------------------------------------------------------------------- client
class GitHubClient:
    """One API endpoint with one token."""

    def __init__(self, api_url, token, timeout=30, retries=3, verify=True, ca_path=None, rate_limit_wait=60,
                 transport=None, sleep=time.sleep, clock=time.time):
        if not token:
            raise RollbackError("No GitHub token: set the token option, or GITHUB_TOKEN / GH_TOKEN.")
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        if not self.api_url.startswith(("https://", "http://")):
            raise RollbackError("api_url must be an http(s) URL, got %r" % api_url)
        self.retries = max(int(retries), 0)
        self.max_rate_limit_wait = max(float(rate_limit_wait), 0.0)
        self._sleep = sleep
        self._clock = clock
        self.calls = 0
        self.waited_s = 0.0
        if verify is True:
            verify = tls_verify(True, ca_path)
        kwargs = dict(
            timeout=timeout, verify=verify, follow_redirects=True,
            headers={"Authorization": "Bearer %s" % token, "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT},
        )
        if transport is not None:
            kwargs["transport"] = transport
        self._http = httpx.Client(**kwargs)

    @classmethod
    def from_params(cls, params, prefix=""):
        """The client a module's GITHUB_ARGSPEC options (under ``prefix``, see github_argspec) describe."""
        def option(name):
            return params[prefix + name]
        return cls(option("api_url"), option("token"), timeout=option("api_timeout"), retries=option("api_retries"),
                   verify=option("validate_certs"), ca_path=option("ca_path"),
                   rate_limit_wait=option("rate_limit_wait"))

    def close(self):
        self._http.close()

    # `with GitHubClient.from_params(params) as client:` closes the connection pool.
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- transport -----------------------------------------------------------------------
    def url(self, path):
        return path if path.startswith(("https://", "http://")) else self.api_url + path

    def request(self, method, path, params=None, json=None, expected=(200,)):
        """One call with retries; returns the httpx.Response (status in ``expected``)."""
        url = self.url(path)
        what = "%s %s" % (method, url[len(self.api_url):] if url.startswith(self.api_url) else url)
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                response = self._http.request(method, url, params=params, json=json)
            except httpx.HTTPError as error:
                # A POST may have reached GitHub unless the connection never opened.
                safe = method == "GET" or isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
                if safe and attempt <= self.retries:
                    self._backoff(attempt)
                    continue
                raise GitHubError("GitHub API %s failed: %s: %s" % (what, type(error).__name__, error)) from None
            if response.status_code in expected:
                return response
            message, body = _error_message(response)
            wait = rate_limit_wait(response.status_code, response.headers, message, self._clock())
            if wait is not None:
                if attempt > self.retries or wait > self.max_rate_limit_wait:
                    raise self._rate_limit_error(what, response, message, wait)
                self._wait(wait)
                continue
            # As azure-core does: any 5xx for a read; for a POST only the answers that
            # mean "not done" (500, 502, 503, 504), never a lost answer.
            retryable = response.status_code in (500, 502, 503, 504) or (method == "GET" and response.status_code >= 500)
            if retryable and attempt <= self.retries:
                self._backoff(attempt)
                continue
            raise self._api_error(what, response, message, body)

    def _backoff(self, attempt):
        self._wait(min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S))

    def _wait(self, seconds):
        self.waited_s += seconds
        self._sleep(seconds)

    def _rate_limit_error(self, what, response, message, wait):
        headers = response.headers
        details = {"status": response.status_code, "rate_limit": {
            "limit": headers.get("x-ratelimit-limit"), "remaining": headers.get("x-ratelimit-remaining"),
            "reset": headers.get("x-ratelimit-reset"), "resource": headers.get("x-ratelimit-resource"),
            "retry_after": headers.get("retry-after")}}
        resets = utc_iso(self._clock() + wait)
        if wait > self.max_rate_limit_wait:
            hint = ("it resets at %s (in %d s), beyond rate_limit_wait=%d s; retry after that time or use another token"
                    % (resets, round(wait), self.max_rate_limit_wait))
        else:
            hint = "still limited after %d attempts; it resets at %s" % (self.retries + 1, resets)
        return GitHubError("GitHub API rate limit hit on %s (%d: %s); %s." % (what, response.status_code, message, hint),
                           resets_at=resets, **details)

    def _api_error(self, what, response, message, body):
        status = response.status_code
        hints = {
            401: " Check the token (option token, or GITHUB_TOKEN / GH_TOKEN); it is wrong, expired or revoked.",
            404: " The repository, workflow or run does not exist, or the token cannot see it.",
        }
        details = {"status": status}
        if isinstance(body, dict):
            if body.get("documentation_url"):
                details["documentation_url"] = body["documentation_url"]
            if body.get("errors"):
                details["errors"] = body["errors"]
        return GitHubError("GitHub API %s returned %d: %s.%s" % (what, status, message, hints.get(status, "")),
                           **details)

    # -- JSON conveniences -----------------------------------------------------------------
    def get(self, path, params=None):
        return self.request("GET", path, params=params).json()

    def paginate(self, path, params=None, key=None, limit=None):
        """Yield items over every page (``key`` names the list in an object body)."""
        params = dict(params or {})
        params.setdefault("per_page", 100)
        url, count = path, 0
        while url:
            response = self.request("GET", url, params=params)
            body = response.json()
            items = body.get(key, []) if key else body
            for item in items:
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            url = parse_link_header(response.headers.get("link")).get("next")
            params = None  # the next link carries the query

    # -- repositories, workflows and runs --------------------------------------------------
    @staticmethod
    def repo_path(owner, repo):
        return "/repos/%s/%s" % (quote(owner, safe=""), quote(repo, safe=""))

    def get_repository(self, owner, repo):
        return self.get(self.repo_path(owner, repo))

    def resolve_ref(self, owner, repo, ref):
        """The commit sha of a branch, tag or sha."""
        try:
            return self.get("%s/commits/%s" % (self.repo_path(owner, repo), quote(ref, safe="")))["sha"]
        except GitHubError as error:
            if error.status in (404, 422):
                raise GitHubError("No branch, tag or commit %r in %s/%s." % (ref, owner, repo), status=error.status) from None
            raise

    def get_workflow(self, owner, repo, workflow):
        """A workflow by numeric id, file name (deploy.yml) or path (.github/workflows/deploy.yml)."""
        ident = str(workflow).strip()
        if "/" in ident:
            ident = ident.rsplit("/", 1)[-1]
        try:
            return self.get("%s/actions/workflows/%s" % (self.repo_path(owner, repo), quote(ident, safe="")))
        except GitHubError as error:
            if error.status == 404:
                names = []
                try:
                    names = [w["path"].rsplit("/", 1)[-1] for w in
                             self.paginate("%s/actions/workflows" % self.repo_path(owner, repo), key="workflows")]
                except GitHubError:
                    pass
                raise GitHubError("No workflow %r in %s/%s%s." % (workflow, owner, repo,
                                  "; it has %s" % ", ".join(sorted(names)) if names else ""), status=404) from None
            raise

    def list_runs(self, owner, repo, workflow_id=None, limit=None, **filters):
        """Runs newest first; filters: branch, status, event, head_sha, created, actor."""
        base = self.repo_path(owner, repo)
        path = "%s/actions/workflows/%s/runs" % (base, workflow_id) if workflow_id else "%s/actions/runs" % base
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self.paginate(path, params, key="workflow_runs", limit=limit))

    def list_deployments(self, owner, repo, environment=None, sha=None, limit=None):
        """Deployments newest first, optionally to one environment and/or of one commit."""
        params = {k: v for k, v in (("environment", environment), ("sha", sha)) if v is not None}
        return list(self.paginate("%s/deployments" % self.repo_path(owner, repo), params, limit=limit))

    def deployment_statuses(self, owner, repo, deployment_id):
        """A deployment's statuses, newest first (the first is its current state)."""
        return list(self.paginate("%s/deployments/%s/statuses" % (self.repo_path(owner, repo), int(deployment_id))))

    def get_run(self, owner, repo, run_id):
        return self.get("%s/actions/runs/%s" % (self.repo_path(owner, repo), int(run_id)))

    def list_jobs(self, owner, repo, run_id):
        return list(self.paginate("%s/actions/runs/%s/jobs" % (self.repo_path(owner, repo), int(run_id)), key="jobs"))

    def rerun(self, owner, repo, run_id, failed_only=False):
        suffix = "rerun-failed-jobs" if failed_only else "rerun"
        self.request("POST", "%s/actions/runs/%s/%s" % (self.repo_path(owner, repo), int(run_id), suffix),
                     json={}, expected=(201,))

    def dispatch(self, owner, repo, workflow_id, ref, inputs=None):
        body = {"ref": ref}
        if inputs:
            body["inputs"] = inputs
        self.request("POST", "%s/actions/workflows/%s/dispatches" % (self.repo_path(owner, repo), workflow_id),
                     json=body, expected=(204, 200))

    def wait_for_run(self, owner, repo, run_id, timeout_s, poll_interval=5.0, attempt=None):
        """Poll a run until it completes or the deadline passes.

        Returns (run, progress) where progress lists status changes with elapsed
        seconds. A run still active at the deadline raises, with its URL.
        """
        started = time.monotonic()
        progress = []
        last = None
        while True:
            run = self.get_run(owner, repo, run_id)
            status = run["status"]
            label = status if status != "completed" else "completed/%s" % run.get("conclusion")
            if attempt is not None and run.get("run_attempt") != attempt:
                label = "%s (attempt %s)" % (label, run.get("run_attempt"))
            if label != last:
                progress.append({"elapsed_s": round(time.monotonic() - started, 2), "status": status,
                                 "conclusion": run.get("conclusion"), "run_attempt": run.get("run_attempt")})
                last = label
            if status == "completed":
                return run, progress
            remaining = timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                raise GitHubError("Run %s did not finish within %s s (last status: %s); it may still be running: %s"
                                  % (run_id, timeout_s, status, run.get("html_url")),
                                  run_id=run_id, html_url=run.get("html_url"), progress=progress)
            self._sleep(min(poll_interval, remaining))

    # -- pull requests and issues ---------------------------------------------------------
    def create_pull_request(self, owner, repo, head, base, title, body=None, draft=False):
        """Open a pull request; an open one for the same head and base is returned instead (changed False).

        Returns (pull_request, created).
        """
        existing = self.find_pull_requests(owner, repo, head=head, base=base)
        if existing:
            return existing[0], False
        payload = {"title": title, "head": head, "base": base, "draft": bool(draft)}
        if body is not None:
            payload["body"] = body
        response = self.request("POST", "%s/pulls" % self.repo_path(owner, repo), json=payload, expected=(201,))
        return response.json(), True

    def find_pull_requests(self, owner, repo, head=None, base=None, state="open"):
        params = {"state": state}
        if head:
            params["head"] = head if ":" in head else "%s:%s" % (owner, head)
        if base:
            params["base"] = base
        return list(self.paginate("%s/pulls" % self.repo_path(owner, repo), params))

    def find_issues(self, owner, repo, title, state="open", labels=None):
        """Issues (not pull requests) whose title is exactly ``title``."""
        params = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        return [i for i in self.paginate("%s/issues" % self.repo_path(owner, repo), params)
                if "pull_request" not in i and i.get("title") == title]

    def create_issue(self, owner, repo, title, body=None, labels=None, assignees=None):
        payload = {"title": title}
        if body is not None:
            payload["body"] = body
        if labels:
            payload["labels"] = list(labels)
        if assignees:
            payload["assignees"] = list(assignees)
        return self.request("POST", "%s/issues" % self.repo_path(owner, repo), json=payload, expected=(201,)).json()


def _error_message(response):
    """GitHub's message (plus the first validation error), and the parsed body."""
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return (text[:200] or response.reason_phrase or "no message"), None
    if not isinstance(body, dict):
        return str(body)[:200], body
    message = body.get("message") or response.reason_phrase or "no message"
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts = []
        for error in errors:
            if isinstance(error, dict):
                parts.append(error.get("message") or "%s %s %s" % (error.get("resource", ""), error.get("field", ""),
                                                                   error.get("code", "")))
            else:
                parts.append(str(error))
        message = "%s (%s)" % (message, "; ".join(p.strip() for p in parts))
    return message, body


def run_summary(run):
    """The fields of a run a person follows up with."""
    if not run:
        return {}
    return {key: run.get(key) for key in ("id", "name", "run_number", "run_attempt", "event", "status", "conclusion",
                                          "head_branch", "head_sha", "created_at", "run_started_at", "html_url")}


def run_age_days(run, now):
    created = iso_to_epoch(run.get("created_at"))
    return None if created is None else (now - created) / 86400.0
