"""JSON bodies with GitHub's field names (REST API 2022-11-28)."""

from .model import iso


class Urls:
    """GitHub Enterprise Server layout: API under /api/v3, web pages at the host root."""

    def __init__(self, base_url):
        self.base = base_url
        self.api = f"{base_url}/api/v3"

    def repo_api(self, full_name):
        return f"{self.api}/repos/{full_name}"

    def repo_html(self, full_name):
        return f"{self.base}/{full_name}"


def user(login, urls):
    return {"login": login, "id": 41898282, "node_id": "MDQ6VXNlcjQxODk4Mjgy", "type": "User",
            "site_admin": False, "url": f"{urls.api}/users/{login}", "html_url": f"{urls.base}/{login}"}


def repository(entry, urls, login):
    repo = entry["repo"]
    full = repo.full_name
    return {
        "id": entry["id"], "node_id": "R_kgDOSandbox", "name": repo.name, "full_name": full,
        "owner": {"login": repo.owner, "id": 90000001, "type": "Organization",
                  "url": f"{urls.api}/users/{repo.owner}", "html_url": f"{urls.base}/{repo.owner}"},
        "private": True, "visibility": "private", "html_url": urls.repo_html(full),
        "description": entry["spec"].get("description"), "fork": False, "url": urls.repo_api(full),
        # The stand-in's git transport is the file system: the bare repository's path.
        "clone_url": repo.path, "git_url": repo.path, "ssh_url": repo.path,
        "default_branch": repo.default_branch, "archived": False, "disabled": False,
        "created_at": iso(entry["created_at"]), "updated_at": iso(entry["pushed_at"]),
        "pushed_at": iso(entry["pushed_at"]),
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        "has_issues": True,
    }


def workflow(wf, urls, full_name, created_at):
    base = urls.repo_api(full_name)
    return {
        "id": wf["id"], "node_id": f"W_kwDOSandbox{wf['id']}", "name": wf["name"], "path": wf["path"],
        "state": wf.get("state", "active"), "created_at": iso(created_at), "updated_at": iso(created_at),
        "url": f"{base}/actions/workflows/{wf['id']}",
        "html_url": f"{urls.repo_html(full_name)}/blob/main/{wf['path']}",
        "badge_url": f"{urls.repo_html(full_name)}/workflows/{wf['name'].replace(' ', '%20')}/badge.svg",
    }


def workflow_run(state, run, urls, full_name, attempt=None):
    attempt = attempt or run.latest
    status = state.status(attempt)
    base = urls.repo_api(full_name)
    run_url = f"{base}/actions/runs/{run.id}"
    repo = state.repos[run.workflow["_repo"]]["repo"]
    info = repo.commit_info(run.head_sha)
    updated = attempt.completed_at if status == "completed" else attempt.started_at
    repo_brief = {"id": state.repos[run.workflow["_repo"]]["id"], "name": repo.name, "full_name": full_name,
                  "private": True, "url": base, "html_url": urls.repo_html(full_name)}
    return {
        "id": run.id, "name": run.workflow["name"], "node_id": f"WFR_kwLOSandbox{run.id}",
        "head_branch": run.head_branch, "head_sha": run.head_sha,
        "path": f"{run.workflow['path']}@{repo.default_branch}", "display_title": run.display_title,
        "run_number": run.run_number, "event": run.event, "status": status,
        "conclusion": attempt.conclusion if status == "completed" else None,
        "workflow_id": run.workflow["id"], "check_suite_id": 30000000000 + run.id % 1000000000,
        "check_suite_node_id": f"CS_kwDOSandbox{run.id}", "url": run_url,
        "html_url": f"{urls.repo_html(full_name)}/actions/runs/{run.id}",
        "pull_requests": [], "created_at": iso(run.created_at), "updated_at": iso(updated),
        "actor": user(run.actor, urls), "run_attempt": attempt.number,
        "referenced_workflows": [], "run_started_at": iso(attempt.started_at),
        "triggering_actor": user(run.actor, urls),
        "jobs_url": f"{run_url}/jobs", "logs_url": f"{run_url}/logs",
        "check_suite_url": f"{base}/check-suites/{30000000000 + run.id % 1000000000}",
        "artifacts_url": f"{run_url}/artifacts", "cancel_url": f"{run_url}/cancel", "rerun_url": f"{run_url}/rerun",
        "previous_attempt_url": f"{run_url}/attempts/{attempt.number - 1}" if attempt.number > 1 else None,
        "workflow_url": f"{base}/actions/workflows/{run.workflow['id']}",
        "head_commit": {
            "id": info["sha"], "tree_id": info["tree"], "message": info["message"],
            "timestamp": info["committer"]["date"],
            "author": {"name": info["author"]["name"], "email": info["author"]["email"]},
            "committer": {"name": info["committer"]["name"], "email": info["committer"]["email"]},
        },
        "repository": repo_brief, "head_repository": repo_brief,
    }


def job(state, run, attempt, entry, index, urls, full_name):
    status = state.status(attempt)
    base = urls.repo_api(full_name)
    if entry["conclusion"] is not None:
        job_status = "completed"
    elif status == "completed":
        job_status = "completed"
    else:
        job_status = status
    started = attempt.started_at
    completed = attempt.completed_at if job_status == "completed" else None
    steps = [
        {"name": "Set up job", "status": job_status, "conclusion": "success" if job_status == "completed" else None,
         "number": 1, "started_at": iso(started), "completed_at": iso(completed)},
        {"name": entry["name"], "status": job_status, "conclusion": entry["conclusion"],
         "number": 2, "started_at": iso(started), "completed_at": iso(completed)},
    ]
    return {
        "id": entry["id"], "run_id": run.id, "workflow_name": run.workflow["name"], "head_branch": run.head_branch,
        "run_url": f"{base}/actions/runs/{run.id}", "run_attempt": attempt.number, "node_id": f"CR_kwDOSandbox{entry['id']}",
        "head_sha": run.head_sha, "url": f"{base}/actions/jobs/{entry['id']}",
        "html_url": f"{urls.repo_html(full_name)}/actions/runs/{run.id}/job/{entry['id']}",
        "status": job_status, "conclusion": entry["conclusion"],
        "created_at": iso(attempt.started_at), "started_at": iso(started), "completed_at": iso(completed),
        "name": entry["name"], "steps": steps, "check_run_url": f"{base}/check-runs/{entry['id']}",
        "labels": ["ubuntu-latest"], "runner_id": 10 + index, "runner_name": f"GitHub Actions {10 + index}",
        "runner_group_id": 2, "runner_group_name": "GitHub Actions",
    }


def deployment(dep, urls, full_name, login):
    base = urls.repo_api(full_name)
    return {
        "url": f"{base}/deployments/{dep['id']}", "id": dep["id"], "node_id": f"DE_kwDOSandbox{dep['id']}",
        "sha": dep["sha"], "ref": dep["ref"], "task": dep["task"], "payload": dict(dep["payload"]),
        "original_environment": dep["environment"], "environment": dep["environment"],
        "description": dep["description"], "creator": user(login, urls),
        "created_at": iso(dep["created_at"]), "updated_at": iso(dep["updated_at"]),
        "statuses_url": f"{base}/deployments/{dep['id']}/statuses", "repository_url": base,
        "transient_environment": dep["transient_environment"],
        "production_environment": dep["production_environment"],
        "performed_via_github_app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
    }


def deployment_status(status, dep, urls, full_name, login):
    base = urls.repo_api(full_name)
    run_html = f"{urls.repo_html(full_name)}/actions/runs/{status['run_id']}"
    return {
        "url": f"{base}/deployments/{dep['id']}/statuses/{status['id']}", "id": status["id"],
        "node_id": f"DES_kwDOSandbox{status['id']}", "state": status["state"], "creator": user(login, urls),
        "description": status["description"], "environment": status["environment"],
        "target_url": run_html, "log_url": run_html, "environment_url": "",
        "created_at": iso(status["created_at"]), "updated_at": iso(status["created_at"]),
        "deployment_url": f"{base}/deployments/{dep['id']}", "repository_url": base,
        "performed_via_github_app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
    }


def label(name):
    return {"id": abs(hash(name)) % 10 ** 9, "node_id": f"LA_kwDOSandbox{name}", "name": name,
            "color": "d73a4a" if name == "bug" else "ededed", "default": name == "bug", "description": None}


def issue(item, urls, full_name, login):
    base = urls.repo_api(full_name)
    body = {
        "id": item["id"], "node_id": f"I_kwDOSandbox{item['id']}", "number": item["number"],
        "url": f"{base}/issues/{item['number']}", "repository_url": base,
        "html_url": f"{urls.repo_html(full_name)}/{'pull' if item['pull'] else 'issues'}/{item['number']}",
        "title": item["title"], "body": item["body"], "state": item["state"],
        "state_reason": None, "locked": False, "user": user(item["user"], urls),
        "labels": [label(name) for name in item["labels"]],
        "assignees": [user(a, urls) for a in item["assignees"]],
        "assignee": user(item["assignees"][0], urls) if item["assignees"] else None,
        "comments": 0, "created_at": iso(item["created_at"]), "updated_at": iso(item["updated_at"]),
        "closed_at": iso(item["closed_at"]), "author_association": "MEMBER",
    }
    if item["pull"]:
        body["pull_request"] = {"url": f"{base}/pulls/{item['number']}",
                                "html_url": f"{urls.repo_html(full_name)}/pull/{item['number']}", "merged_at": None}
    return body


def pull(item, urls, full_name, owner):
    base = urls.repo_api(full_name)
    pr = item["pull"]
    return {
        "id": item["id"], "node_id": f"PR_kwDOSandbox{item['id']}", "number": item["number"],
        "url": f"{base}/pulls/{item['number']}", "html_url": f"{urls.repo_html(full_name)}/pull/{item['number']}",
        "issue_url": f"{base}/issues/{item['number']}", "state": item["state"], "locked": False,
        "title": item["title"], "body": item["body"], "user": user(item["user"], urls), "draft": pr["draft"],
        "created_at": iso(item["created_at"]), "updated_at": iso(item["updated_at"]), "closed_at": None,
        "merged_at": None, "merged": False, "mergeable": None, "merge_commit_sha": None,
        "head": {"label": f"{owner}:{pr['head']}", "ref": pr["head"], "sha": pr["head_sha"]},
        "base": {"label": f"{owner}:{pr['base']}", "ref": pr["base"], "sha": pr["base_sha"]},
        "labels": [], "assignees": [],
    }
