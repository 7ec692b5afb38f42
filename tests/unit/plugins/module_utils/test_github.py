# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitHubClient: rate-limit arithmetic, pagination, retries and error shaping (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.github import (
    GitHubClient,
    GitHubError,
    parse_link_header,
    rate_limit_wait,
    split_repository,
)
from ansible_collections.sre.rollback.plugins.module_utils.github_workflows import WorkflowRerun, ensure_issue

API = "https://ghe.example.com/api/v3"
NOW = 1_700_000_000.0


def make_client(handler, **kwargs):
    slept = []
    client = GitHubClient(API, "tok", retries=kwargs.pop("retries", 3), transport=httpx.MockTransport(handler),
                          sleep=slept.append, clock=lambda: NOW, verify=False, **kwargs)
    return client, slept


def gh_error(status, message, headers=None, **extra):
    body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
    body.update(extra)
    return httpx.Response(status, json=body, headers=headers or {})


# ------------------------------------------------------------------ rate-limit arithmetic
@pytest.mark.parametrize("status, headers, message, expected", [
    (429, {"retry-after": "7"}, "secondary", 7.0),
    (403, {"retry-after": "0"}, "You have exceeded a secondary rate limit", 0.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}, "API rate limit exceeded", 31.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) - 5)}, "API rate limit exceeded", 1.0),
    (403, {}, "You have exceeded a secondary rate limit", 60.0),
    (429, {}, "", 60.0),
    (403, {"x-ratelimit-remaining": "12"}, "Resource not accessible by integration", None),
    (404, {"retry-after": "3"}, "Not Found", None),
    (500, {}, "Server Error", None),
])
def test_rate_limit_wait(status, headers, message, expected):
    assert rate_limit_wait(status, headers, message, NOW) == expected


def test_retry_after_http_date():
    assert rate_limit_wait(429, {"retry-after": "Tue, 14 Nov 2023 22:13:40 GMT"}, "", NOW) == pytest.approx(20.0)


def test_rate_limit_waited_out_within_bound():
    answers = iter([
        gh_error(403, "API rate limit exceeded for user ID 1.",
                 {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 10)}),
        httpx.Response(200, json={"ok": True}),
    ])
    client, slept = make_client(lambda request: next(answers), rate_limit_wait=60)
    assert client.get("/rate_limit") == {"ok": True}
    assert slept == [11.0]


def test_rate_limit_beyond_bound_fails_with_reset_time():
    def handler(request):
        return gh_error(403, "API rate limit exceeded for user ID 1.",
                        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600),
                         "x-ratelimit-limit": "5000"})
    client, slept = make_client(handler, rate_limit_wait=60)
    with pytest.raises(GitHubError) as err:
        client.get("/repos/o/r")
    assert slept == []
    assert "resets at 2023-11-14T23:13:21Z (in 3601 s)" in err.value.message
    assert err.value.details["rate_limit"]["remaining"] == "0"
    assert err.value.status == 403


def test_secondary_limit_retry_after_then_success_on_post():
    calls = []

    def handler(request):
        calls.append(request.method)
        if len(calls) == 1:
            return gh_error(429, "You have exceeded a secondary rate limit", {"retry-after": "2"})
        return httpx.Response(201, json={})
    client, slept = make_client(handler)
    client.rerun("o", "r", 5)
    assert calls == ["POST", "POST"] and slept == [2.0]


# ------------------------------------------------------------------ retries
def test_5xx_on_get_retried_with_backoff():
    answers = iter([gh_error(502, "Server Error"), gh_error(500, "Server Error"), httpx.Response(200, json=[])])
    client, slept = make_client(lambda request: next(answers))
    assert client.get("/x") == []
    assert slept == [0.5, 1.0]


def test_retries_exhausted_shapes_error():
    client, slept = make_client(lambda request: gh_error(503, "Service Unavailable"), retries=2)
    with pytest.raises(GitHubError) as err:
        client.get("/repos/o/r")
    assert len(slept) == 2
    assert err.value.message.startswith("GitHub API GET /repos/o/r returned 503: Service Unavailable")


def test_lost_answer_to_post_is_not_resent():
    calls = []

    def handler(request):
        calls.append(request.method)
        raise httpx.ReadTimeout("timed out", request=request)
    client, _slept = make_client(handler)
    with pytest.raises(GitHubError) as err:
        client.dispatch("o", "r", 1, "main")
    assert calls == ["POST"]
    assert "ReadTimeout" in err.value.message


def test_refused_connection_is_retried_even_for_post():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(204)
    client, _slept = make_client(handler)
    client.dispatch("o", "r", 1, "main", {"environment": "production"})
    assert len(calls) == 3


# ------------------------------------------------------------------ errors
def test_401_message_and_hint_never_echo_token():
    client, _slept = make_client(lambda request: gh_error(401, "Bad credentials"))
    with pytest.raises(GitHubError) as err:
        client.get("/user")
    assert "401: Bad credentials" in err.value.message and "GITHUB_TOKEN" in err.value.message
    assert "tok" not in err.value.message.replace("token", "")


def test_validation_errors_are_quoted():
    def handler(request):
        return gh_error(422, "Validation Failed",
                        errors=[{"resource": "PullRequest", "code": "custom",
                                 "message": "A pull request already exists for o:fix."}])
    client, _slept = make_client(handler)
    with pytest.raises(GitHubError) as err:
        client.request("POST", "/repos/o/r/pulls", json={}, expected=(201,))
    assert "Validation Failed (A pull request already exists for o:fix.)" in err.value.message
    assert err.value.details["errors"][0]["code"] == "custom"


def test_non_json_error_body():
    client, _slept = make_client(lambda request: httpx.Response(404, text="<html>nope</html>"))
    with pytest.raises(GitHubError) as err:
        client.get("/repos/o/r")
    assert "404: <html>nope</html>" in err.value.message


def test_missing_token_and_bad_repository():
    with pytest.raises(RollbackError, match="No GitHub token"):
        GitHubClient(API, None)
    with pytest.raises(RollbackError, match="owner/name"):
        split_repository("just-a-name")
    assert split_repository("o/r") == ("o", "r")


# ------------------------------------------------------------------ pagination
def test_parse_link_header():
    value = ('<https://h/api/v3/x?per_page=2&page=2>; rel="next", <https://h/api/v3/x?per_page=2&page=5>; rel="last"')
    assert parse_link_header(value) == {"next": "https://h/api/v3/x?per_page=2&page=2",
                                        "last": "https://h/api/v3/x?per_page=2&page=5"}
    assert parse_link_header(None) == {}


def test_paginate_follows_next_links_and_limit():
    def handler(request):
        page = int(request.url.params.get("page", "1"))
        headers = {}
        if page < 3:
            headers["link"] = f'<{API}/repos/o/r/actions/runs?per_page=2&page={page + 1}>; rel="next"'
        runs = [{"id": page * 10 + i} for i in range(2)]
        return httpx.Response(200, json={"total_count": 6, "workflow_runs": runs}, headers=headers)
    client, _slept = make_client(handler)
    assert [r["id"] for r in client.paginate("/repos/o/r/actions/runs", key="workflow_runs")] == [10, 11, 20, 21, 30, 31]
    assert len(client.list_runs("o", "r", limit=3)) == 3


# ------------------------------------------------------------------ procedures
def _run(run_id, started, conclusion="success", status="completed", attempt=1, created="2023-11-10T00:00:00Z"):
    return {"id": run_id, "status": status, "conclusion": conclusion, "run_attempt": attempt, "head_sha": "a" * 40,
            "head_branch": "main", "created_at": created, "run_started_at": started, "workflow_id": 7,
            "html_url": f"https://ghe/o/r/actions/runs/{run_id}", "event": "push"}


def _fake_api(runs, posts):
    def handler(request):
        path = request.url.path
        if request.method == "POST":
            posts.append(path)
            return httpx.Response(201, json={})
        if path.endswith("/actions/workflows/deploy.yml") or path.endswith("/actions/workflows/7"):
            return httpx.Response(200, json={"id": 7, "name": "Deploy", "path": ".github/workflows/deploy.yml"})
        if path.endswith("/runs"):
            selected = [r for r in runs if request.url.params.get("status") in (None, r["conclusion"])]
            return httpx.Response(200, json={"total_count": len(selected), "workflow_runs": selected})
        return httpx.Response(404, json={"message": "Not Found"})
    return handler


def test_rerun_rule_reruns_when_newer_failed_run_exists_check_mode():
    runs = [_run(2, "2023-11-14T10:00:00Z", "failure"), _run(1, "2023-11-10T00:00:00Z")]
    posts = []
    client, _slept = make_client(_fake_api(runs, posts))
    changed, result = WorkflowRerun(client, "o/r", workflow="deploy.yml", check_mode=True, clock=lambda: NOW).run()
    assert changed and result["run_id"] == 1 and result["after"]["run_attempt"] == 2 and posts == []


def test_rerun_rule_noop_when_target_is_latest_activity():
    runs = [_run(2, "2023-11-14T10:00:00Z", "failure"), _run(1, "2023-11-14T11:00:00Z", attempt=2)]
    posts = []
    client, _slept = make_client(_fake_api(runs, posts))
    changed, result = WorkflowRerun(client, "o/r", workflow="deploy.yml", clock=lambda: NOW).run()
    assert not changed and result["run_id"] == 1 and posts == [] and "Nothing to do" in result["reason"]


def test_rerun_refuses_run_older_than_30_days_before_posting():
    runs = [_run(2, "2023-11-14T10:00:00Z", "failure"), _run(1, "2023-10-01T00:00:00Z", created="2023-10-01T00:00:00Z")]
    posts = []
    client, _slept = make_client(_fake_api(runs, posts))
    with pytest.raises(RollbackError, match="within the last 30 days"):
        WorkflowRerun(client, "o/r", workflow="deploy.yml", clock=lambda: NOW).run()
    assert posts == []


def test_ensure_issue_finds_open_issue_by_exact_title_and_skips_pull_requests():
    posts = []

    def handler(request):
        if request.method == "POST":
            posts.append(json.loads(request.content))
            return httpx.Response(201, json={"number": 9, "title": "RCA", "state": "open", "labels": [], "html_url": "u"})
        return httpx.Response(200, json=[
            {"number": 3, "title": "RCA", "state": "open", "pull_request": {"url": "x"}},
            {"number": 2, "title": "RCA 2", "state": "open"},
        ])
    client, _slept = make_client(handler)
    changed, result = ensure_issue(client, "o/r", "RCA", labels=["rca"])
    assert changed and result["number"] == 9 and posts == [{"title": "RCA", "labels": ["rca"]}]
