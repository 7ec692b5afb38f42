# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitRepo helpers and the GitRevert procedure against real temporary repositories
(a bare ``origin`` and a clone), driven through the real git CLI."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.git_repo import (
    GitRepo,
    GitRevert,
    github_repository_from_url,
    mask_url,
)


def git(cwd, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
               GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com")
    return subprocess.run(["git"] + list(args), cwd=str(cwd), env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_file(clone, name, text, message):
    (clone / name).write_text(text)
    git(clone, "add", name)
    git(clone, "commit", "-q", "-m", message)
    return git(clone, "rev-parse", "HEAD")


@pytest.fixture
def repos(tmp_path):
    """origin.git (bare) and a clone with three commits on main: good, good, bad."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "-b", "main")
    shas = {
        "good1": commit_file(clone, "app.txt", "version 1\n", "good 1"),
        "good2": commit_file(clone, "other.txt", "other\n", "good 2"),
        "bad": commit_file(clone, "app.txt", "version 2 (bad)\n", "bad: version 2"),
    }
    git(clone, "push", "-q", "origin", "main")
    return origin, clone, shas


def origin_tip(origin):
    return git(origin, "rev-parse", "refs/heads/main")


# -------------------------------------------------------------------- GitRepo


def test_rev_parse_and_ancestry(repos):
    _origin, clone, shas = repos
    repo = GitRepo(str(clone))
    assert repo.rev_parse(shas["bad"][:10]) == shas["bad"]
    assert repo.rev_parse("0" * 40) is None
    assert repo.rev_parse("no-such-ref") is None
    assert repo.is_ancestor(shas["good1"], shas["bad"])
    assert not repo.is_ancestor(shas["bad"], shas["good1"])
    assert repo.parents(shas["bad"]) == [shas["good2"]]
    assert repo.subject(shas["bad"]) == "bad: version 2"


def test_status_and_snapshot(repos):
    _origin, clone, _shas = repos
    repo = GitRepo(str(clone))
    assert repo.is_clean()
    before = repo.snapshot()
    (clone / "new.txt").write_text("x")
    assert repo.status() == ["?? new.txt"]
    assert repo.snapshot() != before


def test_fetch_updates_no_ref(repos):
    origin, clone, _shas = repos
    repo = GitRepo(str(clone))
    refs = repo.refs()
    assert repo.fetch("origin", "refs/heads/main") == origin_tip(origin)
    assert repo.refs() == refs
    assert repo.ls_remote("origin", "refs/heads/main") == origin_tip(origin)
    assert repo.ls_remote("origin", "refs/heads/nope") is None


def test_global_config_is_not_read(repos, tmp_path, monkeypatch):
    """A user's global config that signs commits or runs rerere cannot reach a run."""
    _origin, clone, _shas = repos
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[commit]\n\tgpgSign = true\n[user]\n\tname = Someone\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", "/nonexistent")  # as under a git hook
    repo = GitRepo(str(clone))
    assert repo.out("config", "--get", "user.name", check=False) == ""
    assert repo.head()


def test_temporary_worktree_is_removed(repos):
    _origin, clone, shas = repos
    repo = GitRepo(str(clone))
    before = repo.snapshot()
    with repo.temporary_worktree(shas["good2"]) as tree:
        assert tree.head() == shas["good2"]
        assert (os.path.exists(os.path.join(tree.path, "other.txt")))
        path = tree.path
    assert not os.path.exists(path)
    assert "sre-rollback-worktree" not in repo.out("worktree", "list")
    assert repo.snapshot() == before


def test_push_statuses(repos, tmp_path):
    origin, clone, shas = repos
    repo = GitRepo(str(clone))
    # An old commit onto main: not a fast-forward.
    status, said = repo.push("origin", shas["good1"], "refs/heads/main")
    assert status == "stale", said
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'GH006: Protected branch update failed' >&2\nexit 1\n")
    hook.chmod(0o755)
    status, said = repo.push("origin", shas["bad"], "refs/heads/other")
    assert status == "rejected"
    assert "GH006" in said


def test_mask_url_and_repository_names():
    assert mask_url("fatal: https://user:tok3n@github.com/o/r.git denied") == "fatal: https://***@github.com/o/r.git denied"
    assert github_repository_from_url("https://github.com/contoso/api.git") == "contoso/api"
    assert github_repository_from_url("git@github.com:contoso/api.git") == "contoso/api"
    assert github_repository_from_url("ssh://git@ghe.example.com/contoso/api") == "contoso/api"
    assert github_repository_from_url("https://x:y@github.com/contoso/api") == "contoso/api"
    assert github_repository_from_url(None) is None


def test_live_reverts_follow_revert_chains():
    a, r1, r2, r3 = "a" * 40, "b" * 40, "c" * 40, "d" * 40
    messages = {
        r1: "Revert x\n\nThis reverts commit %s.\n" % a,
        r2: "Revert revert\n\nThis reverts commit %s.\n" % r1,
    }
    assert GitRevert.live_reverts(messages) == {r1: r2}  # a is re-applied
    messages[r3] = "Reapply\n\nThis reverts commit %s.\n" % r2
    assert GitRevert.live_reverts(messages)[a] == r1


# ------------------------------------------------------------------ GitRevert


def test_check_mode_changes_nothing(repos):
    origin, clone, shas = repos
    before = GitRepo(str(clone)).snapshot()
    changed, result = GitRevert(shas["bad"], path=str(clone), check_mode=True).run()
    assert changed
    assert result["reverted"] == [shas["bad"]]
    assert "-version 2 (bad)" in result["patch"] and "+version 1" in result["patch"]
    assert result["diffstat"]["files_changed"] == 1
    assert origin_tip(origin) == shas["bad"]
    assert GitRepo(str(clone)).snapshot() == before


def test_revert_push_and_rerun(repos, tmp_path):
    origin, _clone, shas = repos
    changed, result = GitRevert(shas["bad"], repo_url=str(origin), incident="INC-123").run()
    assert changed and result["pushed"]
    assert origin_tip(origin) == result["revert_commit"]
    message = git(origin, "log", "-1", "--format=%B", "main")
    assert message.startswith('Revert "bad: version 2"')
    assert "This reverts commit %s." % shas["bad"] in message
    assert message.endswith("Rollback-Incident: INC-123")
    assert git(origin, "log", "-1", "--format=%an <%ae>", "main") == "sre.rollback bot <sre-rollback-bot@users.noreply.github.com>"
    assert git(origin, "show", "main:app.txt") == "version 1"
    changed, again = GitRevert(shas["bad"], repo_url=str(origin)).run()
    assert not changed
    assert again["already_reverted"][0]["reverted_by"] == result["revert_commit"]
    assert origin_tip(origin) == result["revert_commit"]


def test_path_mode_fast_forwards_the_checked_out_branch(repos):
    origin, clone, shas = repos
    changed, result = GitRevert(shas["bad"], path=str(clone)).run()
    assert changed
    assert git(clone, "rev-parse", "HEAD") == result["revert_commit"] == origin_tip(origin)
    assert (clone / "app.txt").read_text() == "version 1\n"


def test_content_already_reverted_is_detected_by_tree(repos):
    origin, clone, shas = repos
    commit_file(clone, "app.txt", "version 1\n", "fix forward by hand")
    git(clone, "push", "-q", "origin", "main")
    changed, result = GitRevert(shas["bad"], path=str(clone)).run()
    assert not changed
    assert result["already_reverted"] == [{"sha": shas["bad"], "reverted_by": None, "detected_by": "tree"}]


def test_range_reverts_in_one_commit(repos):
    origin, _clone, shas = repos
    changed, result = GitRevert("%s..%s" % (shas["good1"], shas["bad"]), repo_url=str(origin)).run()
    assert changed
    assert result["reverted"] == [shas["bad"], shas["good2"]]
    assert git(origin, "ls-tree", "--name-only", "main") == "app.txt"
    changed, _again = GitRevert("%s..%s" % (shas["good1"], shas["bad"]), repo_url=str(origin)).run()
    assert not changed


def test_conflict_fails_cleanly(repos):
    origin, clone, shas = repos
    commit_file(clone, "app.txt", "version 3\n", "later change")
    git(clone, "push", "-q", "origin", "main")
    before = GitRepo(str(clone)).snapshot()
    with pytest.raises(RollbackError) as error:
        GitRevert(shas["bad"], path=str(clone)).run()
    assert error.value.details["conflicting_files"] == ["app.txt"]
    assert GitRepo(str(clone)).snapshot() == before
    assert GitRepo(str(clone)).out("worktree", "list").count("\n") == 0


@pytest.mark.parametrize("commit, text", [
    ("0123456789abcdef0123456789abcdef01234567", "unknown"),
    ("nope..main", "unknown"),
])
def test_unknown_commits(repos, commit, text):
    origin, _clone, _shas = repos
    with pytest.raises(RollbackError, match=text):
        GitRevert(commit, repo_url=str(origin)).run()


def test_commit_not_on_branch(repos):
    origin, clone, _shas = repos
    git(clone, "checkout", "-q", "-b", "feature")
    side = commit_file(clone, "side.txt", "x\n", "side")
    git(clone, "push", "-q", "origin", "feature")
    git(clone, "checkout", "-q", "main")
    with pytest.raises(RollbackError, match="not on branch main"):
        GitRevert(side, path=str(clone)).run()


def test_dirty_tree_is_refused(repos):
    _origin, clone, shas = repos
    (clone / "app.txt").write_text("local edit\n")
    with pytest.raises(RollbackError, match="uncommitted changes"):
        GitRevert(shas["bad"], path=str(clone)).run()
    assert (clone / "app.txt").read_text() == "local edit\n"


def test_merge_needs_mainline(repos):
    origin, clone, _shas = repos
    git(clone, "checkout", "-q", "-b", "feature")
    commit_file(clone, "feature.txt", "feature\n", "feature work")
    git(clone, "checkout", "-q", "main")
    git(clone, "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    merge = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", "main")
    with pytest.raises(RollbackError, match="set mainline"):
        GitRevert(merge, repo_url=str(origin)).run()
    with pytest.raises(RollbackError, match="out of range"):
        GitRevert(merge, repo_url=str(origin), mainline=3).run()
    changed, result = GitRevert(merge, repo_url=str(origin), mainline=1).run()
    assert changed
    assert "reversing\nchanges made to" in git(origin, "log", "-1", "--format=%B", "main")
    assert "feature.txt" not in git(origin, "ls-tree", "--name-only", "main")
    assert result["diffstat"]["deletions"] == 1


def test_rejected_push_without_fallback(repos):
    origin, _clone, shas = repos
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do\n"
                    "  [ \"$ref\" = refs/heads/main ] && { echo 'main is protected' >&2; exit 1; }\ndone\nexit 0\n")
    hook.chmod(0o755)
    with pytest.raises(RollbackError, match="rejected the push") as error:
        GitRevert(shas["bad"], repo_url=str(origin)).run()
    assert "main is protected" in error.value.details["push_rejection"]
    assert origin_tip(origin) == shas["bad"]


class FakeGitHub:
    def __init__(self):
        self.pulls = []

    def create_pull_request(self, owner, repo, head, base, title, body):
        pull = {"number": len(self.pulls) + 1, "html_url": "https://github.test/%s/%s/pull/%d" % (
            owner, repo, len(self.pulls) + 1), "state": "open", "head": head, "base": base, "title": title}
        self.pulls.append(pull)
        return pull

    def find_pull_requests(self, owner, repo, head=None, base=None, state="open"):
        return [pull for pull in self.pulls if "%s:%s" % (owner, pull["head"]) == head and pull["base"] == base]


def test_pull_request_on_reject_then_rerun(repos):
    origin, _clone, shas = repos
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do\n"
                    "  [ \"$ref\" = refs/heads/main ] && exit 1\ndone\nexit 0\n")
    hook.chmod(0o755)
    github = FakeGitHub()
    options = dict(repo_url=str(origin), pull_request_on_reject=True, github_repository="contoso/api",
                   github_client_factory=lambda: github)
    changed, result = GitRevert(shas["bad"], **options).run()
    assert changed and result["pushed_branch"] == "rollback/%s" % shas["bad"][:7]
    assert result["pull_request"]["number"] == 1
    assert origin_tip(origin) == shas["bad"]
    assert git(origin, "rev-parse", result["pushed_branch"]) == result["revert_commit"]
    changed, again = GitRevert(shas["bad"], **options).run()
    assert not changed
    assert again["pull_request_url"] == result["pull_request_url"]
    assert len(github.pulls) == 1
