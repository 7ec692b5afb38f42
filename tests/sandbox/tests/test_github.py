"""The GitHub stand-in, driven with httpx and the real git CLI."""

import os
import ssl
import subprocess
import time

import httpx
import pytest

REPO = "fundrbolt/fundrbolt-platform"


@pytest.fixture
def gh(sbx):
    sbx.admin("PUT", "github/settings", {"run_duration_s": 0.3, "force_failure": False})
    api = sbx.env["GITHUB_API_URL"]
    client = httpx.Client(base_url=f"{api}/repos/{REPO}", verify=ssl.create_default_context(cafile=sbx.ca), timeout=10,
                          headers={"Authorization": f"Bearer {sbx.env['SRE_SANDBOX_GITHUB_TOKEN']}",
                                   "Accept": "application/vnd.github+json"})
    client.api = api
    client.verify = ssl.create_default_context(cafile=sbx.ca)
    client.sbx = sbx
    yield client
    client.close()


def runs(gh, path="/actions/runs", **params):
    resp = gh.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["workflow_runs"]


def wait_completed(gh, run_id, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = gh.get(f"/actions/runs/{run_id}").json()
        if run["status"] == "completed":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not complete")


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def test_env_and_repository(gh):
    env = gh.sbx.env
    assert env["GITHUB_API_URL"].endswith("/api/v3")
    assert os.path.isdir(env["SRE_SANDBOX_GIT_ORIGIN"])
    repo = gh.get("").json()
    assert repo["full_name"] == REPO and repo["default_branch"] == "main"
    tags = git("tag", cwd=env["SRE_SANDBOX_GIT_ORIGIN"]).split()
    assert {"v1.2.1", "v1.2.2", "v1.2.3"} <= set(tags)
    assert git("show", "v1.2.2:frontend/VERSION", cwd=env["SRE_SANDBOX_GIT_ORIGIN"]) == "1.2.2"


def test_auth_errors_and_rate_limit_headers(gh):
    bad = httpx.get(f"{gh.api}/repos/{REPO}", headers={"Authorization": "Bearer nope"}, verify=gh.verify)
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials" and "documentation_url" in bad.json()
    assert bad.headers["x-ratelimit-limit"] == "5000"
    anonymous = httpx.get(f"{gh.api}/repos/{REPO}", verify=gh.verify)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    ok = gh.get("")
    for name in ("limit", "remaining", "reset", "used", "resource"):
        assert f"x-ratelimit-{name}" in ok.headers
    assert int(ok.headers["x-ratelimit-remaining"]) == 5000 - int(ok.headers["x-ratelimit-used"])
    token_style = httpx.get(f"{gh.api}/rate_limit", verify=gh.verify,
                            headers={"Authorization": f"token {gh.sbx.env['SRE_SANDBOX_GITHUB_TOKEN']}"})
    assert token_style.json()["resources"]["core"]["limit"] == 5000


def test_rate_limit_exhausted_then_reset(gh):
    gh.sbx.admin("PUT", "github/rate_limit", {"remaining": 0, "reset_in_s": 1})
    resp = gh.get("/actions/workflows")
    assert resp.status_code == 403
    assert resp.json()["message"].startswith("API rate limit exceeded")
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert int(resp.headers["x-ratelimit-reset"]) >= int(time.time())
    time.sleep(max(int(resp.headers["x-ratelimit-reset"]) - time.time(), 0) + 0.1)
    assert gh.get("/actions/workflows").status_code == 200


def test_workflows_by_id_and_file_name(gh):
    listed = gh.get("/actions/workflows").json()
    assert listed["total_count"] == 2
    by_id = {w["path"]: w for w in listed["workflows"]}
    deploy = by_id[".github/workflows/deploy-frontend.yml"]
    assert gh.get(f"/actions/workflows/{deploy['id']}").json()["name"] == "Deploy Frontend"
    assert gh.get("/actions/workflows/deploy-frontend.yml").json()["id"] == deploy["id"]
    missing = gh.get("/actions/workflows/nope.yml")
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"


def test_seeded_runs_and_filters(gh):
    deploy_runs = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", branch="main")
    assert [r["conclusion"] for r in deploy_runs] == ["failure", "success", "success"]
    newest_ok = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", branch="main", status="success")[0]
    assert newest_ok["head_sha"] == git("rev-parse", "v1.2.2^{commit}", cwd=gh.sbx.env["SRE_SANDBOX_GIT_ORIGIN"])
    assert runs(gh, status="completed", event="push", head_sha=newest_ok["head_sha"])
    assert runs(gh, branch="does-not-exist") == []
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 15 * 86400))
    recent = runs(gh, created=f">={since}")
    assert len(recent) == 4  # the 40- and 20-day-old runs are left out
    old = runs(gh, created=f"<{since}")
    assert len(old) == 3 and all(r["run_attempt"] == 1 for r in old)


def test_pagination_link_header(gh):
    first = gh.get("/actions/runs", params={"per_page": 3})
    assert len(first.json()["workflow_runs"]) == 3 and first.json()["total_count"] == 7
    links = httpx.Response(200, headers={"Link": first.headers["Link"]}).links
    assert "next" in links and "last" in links and "page=3" in links["last"]["url"]
    last = gh.get(links["last"]["url"])
    assert len(last.json()["workflow_runs"]) == 1
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]


def test_rerun_uses_original_sha_and_bumps_attempt(gh):
    target = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", status="success")[0]
    resp = gh.post(f"/actions/runs/{target['id']}/rerun")
    assert resp.status_code == 201
    again = gh.post(f"/actions/runs/{target['id']}/rerun")
    assert again.status_code == 403 and "already running" in again.json()["message"]
    run = wait_completed(gh, target["id"])
    assert run["run_attempt"] == 2 and run["head_sha"] == target["head_sha"] and run["conclusion"] == "success"
    assert run["created_at"] == target["created_at"] and run["run_started_at"] > target["run_started_at"]
    assert run["previous_attempt_url"].endswith("/attempts/1")
    first = gh.get(f"/actions/runs/{target['id']}/attempts/1").json()
    assert first["run_attempt"] == 1
    deploys = gh.sbx.admin("GET", "github/deploys")["deploys"]
    assert deploys[-1]["version"] == "1.2.2" and deploys[-1]["site"] == "fundrbolt-sandbox-web"


def test_rerun_failed_jobs_of_broken_commit_fails_again(gh):
    failed = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", status="failure")[0]
    jobs = gh.get(f"/actions/runs/{failed['id']}/jobs").json()["jobs"]
    assert [(j["name"], j["conclusion"]) for j in jobs] == [("build", "success"), ("deploy", "failure")]
    assert gh.post(f"/actions/runs/{failed['id']}/rerun-failed-jobs").status_code == 201
    assert gh.get(f"/actions/runs/{failed['id']}").json()["status"] in ("queued", "in_progress")
    run = wait_completed(gh, failed["id"])
    assert run["conclusion"] == "failure" and run["run_attempt"] == 2
    ok = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", status="success")[0]
    nothing = gh.post(f"/actions/runs/{ok['id']}/rerun-failed-jobs")
    assert nothing.status_code == 403


def test_run_older_than_30_days_cannot_be_rerun(gh):
    old = runs(gh, "/actions/workflows/deploy-frontend.yml/runs")[-1]
    resp = gh.post(f"/actions/runs/{old['id']}/rerun")
    assert resp.status_code == 403
    assert resp.json()["message"] == "Unable to retry this workflow run because it was created over a month ago"
    assert gh.get(f"/actions/runs/{old['id']}").json()["run_attempt"] == 1


def test_dispatch_on_tag_creates_a_run_and_deploys(gh):
    before = {r["id"] for r in runs(gh)}
    resp = gh.post("/actions/workflows/deploy-frontend.yml/dispatches",
                   json={"ref": "v1.2.2", "inputs": {"environment": "production"}})
    assert resp.status_code == 204 and resp.content == b""
    new = [r for r in runs(gh, event="workflow_dispatch") if r["id"] not in before]
    assert len(new) == 1 and new[0]["head_branch"] == "v1.2.2"
    assert wait_completed(gh, new[0]["id"])["conclusion"] == "success"
    assert gh.sbx.admin("GET", "github/deploys")["deploys"][-1]["commit_sha"] == new[0]["head_sha"]
    bad_ref = gh.post("/actions/workflows/deploy-frontend.yml/dispatches", json={"ref": "v9.9.9"})
    assert bad_ref.status_code == 422 and bad_ref.json()["message"] == "No ref found for: v9.9.9"
    no_trigger = gh.post("/actions/workflows/ci.yml/dispatches", json={"ref": "main"})
    assert no_trigger.status_code == 422 and "workflow_dispatch" in no_trigger.json()["message"]
    bad_input = gh.post("/actions/workflows/deploy-frontend.yml/dispatches", json={"ref": "main", "inputs": {"x": 1}})
    assert bad_input.status_code == 422 and "Unexpected inputs" in bad_input.json()["message"]


def test_forced_failure_and_broken_commit(gh):
    gh.sbx.admin("PUT", "github/settings", {"force_failure": True})
    gh.post("/actions/workflows/deploy-frontend.yml/dispatches", json={"ref": "v1.2.2"})
    run = runs(gh, event="workflow_dispatch")[0]
    assert wait_completed(gh, run["id"])["conclusion"] == "failure"
    gh.sbx.admin("PUT", "github/settings", {"force_failure": False})
    gh.post("/actions/workflows/deploy-frontend.yml/dispatches", json={"ref": "main"})
    run = runs(gh, event="workflow_dispatch")[0]
    assert wait_completed(gh, run["id"])["conclusion"] == "failure"  # main carries frontend/BROKEN
    assert gh.sbx.admin("GET", "github/deploys")["deploys"] == []


def test_revert_and_push_starts_ci_that_redeploys(gh, tmp_path):
    origin = gh.sbx.env["SRE_SANDBOX_GIT_ORIGIN"]
    clone = tmp_path / "clone"
    git("clone", "--quiet", origin, str(clone))
    git("-c", "user.name=SRE", "-c", "user.email=sre@example.com", "revert", "--no-edit", "HEAD", cwd=clone)
    sha = git("rev-parse", "HEAD", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)
    pushed = runs(gh, event="push", head_sha=sha)
    assert sorted(r["name"] for r in pushed) == ["CI", "Deploy Frontend"]
    deploy = next(r for r in pushed if r["name"] == "Deploy Frontend")
    assert wait_completed(gh, deploy["id"])["conclusion"] == "success"
    deploys = gh.sbx.admin("GET", "github/deploys")["deploys"]
    assert deploys[-1]["version"] == "1.2.2" and deploys[-1]["commit_sha"] == sha


def test_reset_recreates_repository_and_runs(gh, tmp_path):
    origin = gh.sbx.env["SRE_SANDBOX_GIT_ORIGIN"]
    head = git("rev-parse", "main", cwd=origin)
    clone = tmp_path / "c"
    git("clone", "--quiet", origin, str(clone))
    git("-c", "user.name=x", "-c", "user.email=x@y", "commit", "--allow-empty", "-m", "noise", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)
    assert git("rev-parse", "main", cwd=origin) != head
    gh.sbx.admin("POST", "reset")
    assert git("log", "--format=%s", "-1", "main", cwd=origin) == "frontend: release 1.2.3 (new donation form)"
    assert len(runs(gh)) == 7


def test_pulls_and_issues(gh, tmp_path):
    origin = gh.sbx.env["SRE_SANDBOX_GIT_ORIGIN"]
    clone = tmp_path / "p"
    git("clone", "--quiet", origin, str(clone))
    git("checkout", "--quiet", "-b", "revert-1.2.3", cwd=clone)
    git("-c", "user.name=SRE", "-c", "user.email=sre@example.com", "revert", "--no-edit", "HEAD", cwd=clone)
    git("push", "--quiet", "origin", "revert-1.2.3", cwd=clone)
    body = {"title": "Revert 1.2.3", "head": "revert-1.2.3", "base": "main", "body": "Rollback"}
    created = gh.post("/pulls", json=body)
    assert created.status_code == 201, created.text
    pr = created.json()
    assert pr["head"]["ref"] == "revert-1.2.3" and pr["state"] == "open" and pr["html_url"].endswith(f"/pull/{pr['number']}")
    duplicate = gh.post("/pulls", json=body)
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["message"] == "A pull request already exists for fundrbolt:revert-1.2.3."
    assert [p["number"] for p in gh.get("/pulls", params={"head": "fundrbolt:revert-1.2.3"}).json()] == [pr["number"]]
    issue = gh.post("/issues", json={"title": "RCA: 1.2.3 rollback", "labels": ["incident", "rca"]})
    assert issue.status_code == 201 and [l["name"] for l in issue.json()["labels"]] == ["incident", "rca"]
    listed = gh.get("/issues", params={"labels": "rca"}).json()
    assert [i["title"] for i in listed] == ["RCA: 1.2.3 rollback"]
    everything = gh.get("/issues").json()
    assert any("pull_request" in i for i in everything)  # the issues list includes pull requests, as on GitHub
    assert gh.post("/issues", json={"body": "no title"}).status_code == 422


def test_faults_are_github_shaped(gh):
    gh.sbx.fault(kind="throttle", count=1, method="GET", path="/api/v3/.*/actions/runs$", retry_after=2)
    throttled = gh.get("/actions/runs")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert "secondary rate limit" in throttled.json()["message"]
    assert "x-ratelimit-remaining" in throttled.headers
    gh.sbx.fault(kind="error", count=1, status=502, path="/api/v3/")
    failed = gh.get("")
    assert failed.status_code == 502 and failed.json()["message"] == "Server Error"
    assert gh.get("").status_code == 200


def deployments(gh, **params):
    resp = gh.get("/deployments", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def statuses(gh, deployment_id):
    resp = gh.get(f"/deployments/{deployment_id}/statuses")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_seeded_deployments_match_the_deploy_runs(gh):
    deploy_runs = runs(gh, "/actions/workflows/deploy-frontend.yml/runs")
    production = deployments(gh, environment="production")
    assert [d["sha"] for d in production] == [r["head_sha"] for r in deploy_runs]  # newest first, one per run
    assert deployments(gh, environment="staging") == []
    newest = production[0]
    for field in ("url", "id", "sha", "ref", "task", "payload", "environment", "original_environment", "creator",
                  "created_at", "updated_at", "statuses_url", "production_environment", "transient_environment"):
        assert field in newest
    assert newest["task"] == "deploy" and newest["ref"] == "main" and newest["production_environment"] is True
    by_run = {r["head_sha"]: r for r in deploy_runs}
    for deployment in production:
        states = statuses(gh, deployment["id"])
        run = by_run[deployment["sha"]]
        assert [s["state"] for s in states] == [run["conclusion"], "in_progress"]  # newest first
        assert states[0]["log_url"] == run["html_url"] and states[0]["environment"] == "production"
        assert states[0]["deployment_url"] == deployment["url"]
    # ci.yml does not deploy: no deployment for a sha only CI ran on
    ci_only = {r["head_sha"] for r in runs(gh, "/actions/workflows/ci.yml/runs")} - set(by_run)
    assert ci_only and all(deployments(gh, sha=sha) == [] for sha in ci_only)


def test_deployment_filters_pagination_and_404(gh):
    production = deployments(gh, environment="production")
    assert len(production) == 3
    assert [d["id"] for d in deployments(gh, sha=production[1]["sha"])] == [production[1]["id"]]
    assert len(deployments(gh, ref="main", task="deploy")) == 3
    assert deployments(gh, ref="release/9.9") == [] and deployments(gh, task="deploy:migrations") == []
    first = gh.get("/deployments", params={"per_page": 2})
    assert [d["id"] for d in first.json()] == [d["id"] for d in production[:2]]
    assert 'rel="next"' in first.headers["link"]
    second = gh.get("/deployments", params={"per_page": 2, "page": 2})
    assert [d["id"] for d in second.json()] == [production[2]["id"]]
    assert gh.get(f"/deployments/{production[0]['id']}").json()["id"] == production[0]["id"]
    missing = gh.get("/deployments/1/statuses")
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"


def test_runs_make_deployments_with_statuses_and_reset_clears_them(gh):
    before = {d["id"] for d in deployments(gh)}
    resp = gh.post("/actions/workflows/deploy-frontend.yml/dispatches",
                   json={"ref": "v1.2.2", "inputs": {"environment": "staging"}})
    assert resp.status_code == 204
    run = runs(gh, event="workflow_dispatch")[0]
    staging = deployments(gh, environment="staging")
    assert len(staging) == 1 and staging[0]["sha"] == run["head_sha"] and staging[0]["ref"] == "v1.2.2"
    assert staging[0]["production_environment"] is False
    assert statuses(gh, staging[0]["id"])[0]["state"] == "in_progress"
    wait_completed(gh, run["id"])
    assert [s["state"] for s in statuses(gh, staging[0]["id"])] == ["success", "in_progress"]
    # a second successful staging deployment makes the first inactive (auto_inactive, non-production)
    gh.post("/actions/workflows/deploy-frontend.yml/dispatches",
            json={"ref": "main", "inputs": {"environment": "staging"}})
    broken = [r for r in runs(gh, event="workflow_dispatch") if r["id"] != run["id"]][0]
    assert wait_completed(gh, broken["id"])["conclusion"] == "failure"  # main carries frontend/BROKEN
    assert statuses(gh, staging[0]["id"])[0]["state"] == "success"  # a failure does not supersede it
    # a re-run makes a new production deployment for the run's commit, with the run's URL
    good = runs(gh, "/actions/workflows/deploy-frontend.yml/runs", status="success", branch="main")[0]
    assert gh.post(f"/actions/runs/{good['id']}/rerun").status_code == 201
    wait_completed(gh, good["id"])
    newest = deployments(gh, environment="production")[0]
    assert newest["id"] not in before and newest["sha"] == good["head_sha"]
    assert statuses(gh, newest["id"])[0]["state"] == "success"
    assert statuses(gh, newest["id"])[0]["log_url"].endswith(f"/actions/runs/{good['id']}")
    gh.post("/actions/workflows/deploy-frontend.yml/dispatches", json={"ref": "v1.2.2"})
    default = [r for r in runs(gh, event="workflow_dispatch") if r["id"] not in (run["id"], broken["id"])][0]
    wait_completed(gh, default["id"])
    assert deployments(gh, environment="production")[0]["sha"] == default["head_sha"]
    assert len(deployments(gh, environment="staging")) == 2
    gh.sbx.admin("POST", "reset")
    assert {d["id"] for d in deployments(gh)} == before
    assert deployments(gh, environment="staging") == []


def test_staging_success_supersedes_earlier_staging_success(gh):
    for ref in ("v1.2.1", "v1.2.2"):
        gh.post("/actions/workflows/deploy-frontend.yml/dispatches",
                json={"ref": ref, "inputs": {"environment": "staging"}})
        wait_completed(gh, runs(gh, event="workflow_dispatch")[0]["id"])
    newer, older = deployments(gh, environment="staging")
    assert statuses(gh, newer["id"])[0]["state"] == "success"
    assert [s["state"] for s in statuses(gh, older["id"])] == ["inactive", "success", "in_progress"]
