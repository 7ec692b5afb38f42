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


# ------------------------------------------------------------------ environment (Deployments API)
def _deployment(dep_id, sha, environment="production"):
    return {"id": dep_id, "sha": sha, "ref": "main", "task": "deploy", "environment": environment,
            "created_at": "2023-11-14T00:00:00Z", "payload": {}}


def _status(state, run_id=None, environment="production"):
    url = f"https://ghe/o/r/actions/runs/{run_id}/job/55" if run_id else ""
    return {"id": 1, "state": state, "environment": environment, "log_url": url, "target_url": url}


def _env_api(runs, deployments, statuses, posts, calls=None):
    """`_fake_api` plus GET /deployments (environment/sha filters) and /deployments/{id}/statuses."""
    inner = _fake_api(runs, posts)

    def handler(request):
        path = request.url.path
        if calls is not None:
            calls.append((path, dict(request.url.params)))
        if path.endswith("/deployments"):
            params = request.url.params
            selected = [d for d in deployments if params.get("environment") in (None, d["environment"])
                        and params.get("sha") in (None, d["sha"])]
            return httpx.Response(200, json=selected)
        if path.endswith("/statuses"):
            return httpx.Response(200, json=statuses[int(path.split("/")[-2])])
        if request.method == "GET" and "/actions/runs/" in path:
            run = next(r for r in runs if r["id"] == int(path.rsplit("/", 1)[-1]))
            return httpx.Response(200, json=dict(run, status="queued", conclusion=None, run_attempt=2))
        return inner(request)
    return handler


def _sha_run(run_id, sha, started, conclusion="success"):
    return dict(_run(run_id, started, conclusion), head_sha=sha)


def test_environment_picks_newest_run_with_successful_deployment_via_log_url():
    runs = [_sha_run(3, "c" * 40, "2023-11-14T10:00:00Z"), _sha_run(2, "b" * 40, "2023-11-13T10:00:00Z"),
            _sha_run(1, "a" * 40, "2023-11-12T10:00:00Z")]
    deployments = [_deployment(30, "c" * 40, "staging"), _deployment(21, "b" * 40), _deployment(20, "b" * 40),
                   _deployment(10, "a" * 40)]
    statuses = {30: [_status("success", 3, "staging")], 21: [_status("failure", 2), _status("in_progress", 2)],
                20: [_status("inactive", 2), _status("success", 2)], 10: [_status("success", 1)]}
    posts, calls = [], []
    client, _slept = make_client(_env_api(runs, deployments, statuses, posts, calls))
    changed, result = WorkflowRerun(client, "o/r", workflow="deploy.yml", environment="production", check_mode=True,
                                    clock=lambda: NOW).run()
    # run 3 deployed only to staging; run 2's deployments failed or went inactive; run 1's still succeeds
    assert changed and result["run_id"] == 1 and posts == []
    assert result["deployment"]["id"] == 10 and result["deployment"]["environment"] == "production"
    assert ("/api/v3/repos/o/r/deployments", {"environment": "production", "per_page": "100"}) in calls


def test_environment_matches_by_head_sha_when_status_has_no_run_url():
    runs = [_sha_run(3, "c" * 40, "2023-11-14T10:00:00Z"), _sha_run(2, "b" * 40, "2023-11-13T10:00:00Z")]
    deployments = [_deployment(20, "b" * 40)]
    statuses = {20: [_status("success")]}
    posts = []
    client, _slept = make_client(_env_api(runs, deployments, statuses, posts))
    changed, result = WorkflowRerun(client, "o/r", workflow="deploy.yml", environment="production", check_mode=True,
                                    clock=lambda: NOW).run()
    assert changed and result["run_id"] == 2 and result["deployment"]["sha"] == "b" * 40


def test_environment_ignores_deployments_by_runs_of_other_workflows():
    runs = [_sha_run(2, "b" * 40, "2023-11-13T10:00:00Z")]
    deployments = [_deployment(20, "b" * 40)]
    statuses = {20: [_status("success", 99)]}  # run 99 is not a run of deploy.yml
    posts = []
    client, _slept = make_client(_env_api(runs, deployments, statuses, posts))
    with pytest.raises(RollbackError) as err:
        WorkflowRerun(client, "o/r", workflow="deploy.yml", environment="production", clock=lambda: NOW).run()
    assert "No successful deployment of '.github/workflows/deploy.yml' to environment 'production'" in err.value.message
    assert "none by a successful run of this workflow" in err.value.message and posts == []


def test_environment_without_successful_deployment_fails_before_posting():
    runs = [_sha_run(2, "b" * 40, "2023-11-13T10:00:00Z")]
    deployments = [_deployment(20, "b" * 40)]
    statuses = {20: [_status("success", 2)]}
    posts = []
    client, _slept = make_client(_env_api(runs, deployments, statuses, posts))
    with pytest.raises(RollbackError) as err:
        WorkflowRerun(client, "o/r", workflow="deploy.yml", environment="staging", branch="main",
                      clock=lambda: NOW).run()
    assert err.value.message.startswith("No successful deployment of '.github/workflows/deploy.yml' to environment "
                                        "'staging' in o/r on branch 'main'")
    assert err.value.details["successful_deployments"] == 0 and posts == []


def test_environment_and_run_id_are_exclusive():
    client, _slept = make_client(lambda request: httpx.Response(500))
    with pytest.raises(RollbackError, match="not both"):
        WorkflowRerun(client, "o/r", run_id=5, environment="production")
    with pytest.raises(RollbackError, match="must not be empty"):
        WorkflowRerun(client, "o/r", workflow="deploy.yml", environment=" ")


def test_environment_rerun_posts_for_the_deployed_run():
    runs = [_sha_run(3, "c" * 40, "2023-11-14T10:00:00Z", "failure"), _sha_run(2, "b" * 40, "2023-11-13T10:00:00Z")]
    deployments = [_deployment(30, "c" * 40), _deployment(20, "b" * 40)]
    statuses = {30: [_status("failure", 3)], 20: [_status("success", 2)]}
    posts = []
    client, _slept = make_client(_env_api(runs, deployments, statuses, posts))
    changed, result = WorkflowRerun(client, "o/r", workflow="deploy.yml", environment="production", wait=False,
                                    clock=lambda: NOW).run()
    assert changed and posts == ["/api/v3/repos/o/r/actions/runs/2/rerun"]
    assert result["run_id"] == 2 and result["run_attempt"] == 2 and result["deployment"]["id"] == 20


def test_list_deployments_and_statuses_client():
    seen = []

    def handler(request):
        seen.append((request.url.path, dict(request.url.params)))
        if request.url.path.endswith("/statuses"):
            return httpx.Response(200, json=[{"id": 2, "state": "success"}, {"id": 1, "state": "in_progress"}])
        return httpx.Response(200, json=[{"id": 7}, {"id": 6}, {"id": 5}])
    client, _slept = make_client(handler)
    assert [d["id"] for d in client.list_deployments("o", "r", environment="production", sha="a" * 40, limit=2)] == [7, 6]
    assert seen[0] == ("/api/v3/repos/o/r/deployments", {"environment": "production", "sha": "a" * 40, "per_page": "100"})
    assert [s["state"] for s in client.deployment_statuses("o", "r", 7)] == ["success", "in_progress"]
    assert seen[1][0] == "/api/v3/repos/o/r/deployments/7/statuses"
