# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Revert commits with the real ``git`` CLI, and push the revert or open a pull request.

:class:`GitRepo` runs git with argument lists, a timeout, no prompt and an
environment of its own, so neither a user's global configuration (signing,
rerere, hooks path, colours, an editor) nor variables inherited from a git hook
(``GIT_DIR``, ``GIT_INDEX_FILE``) change what a command does.

:class:`GitRevert` is the procedure.  The desired state is "every target commit
is reverted on ``branch`` of ``origin``".  It always works from the tip of the
remote branch, in a throwaway worktree, so a user's clone (its HEAD, index,
working tree and branches) is never touched by a check, a conflict or a failed
push; only a revert that reached origin fast-forwards the clone's branch.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import traceback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    # HTTPX_IMPORT_ERROR is re-exported for the module, which requires httpx only for a pull request.
    from ansible_collections.sre.rollback.plugins.module_utils.github import (  # pylint: disable=unused-import
        HTTPX_IMPORT_ERROR,
        GitHubClient,
    )
except ImportError:
    GitHubClient = None
    HTTPX_IMPORT_ERROR = None
    GITHUB_IMPORT_ERROR = traceback.format_exc()
else:
    GITHUB_IMPORT_ERROR = None

DEFAULT_AUTHOR_NAME = "sre.rollback bot"
DEFAULT_AUTHOR_EMAIL = "sre-rollback-bot@users.noreply.github.com"

# Inherited variables a git run may keep: how to reach the remote, never what
# repository, index or identity to use.
PASSED_ENV = (
    "PATH", "HOME", "TMPDIR", "SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "all_proxy",
)

# Settings a repository's own config might carry that would change a bot's revert.
FORCED_CONFIG = (
    "commit.gpgSign=false",
    "rerere.enabled=false",
    "rerere.autoUpdate=false",
    "color.ui=never",
    "core.pager=cat",
    "core.editor=true",
    "core.fsmonitor=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "log.showSignature=false",
    "advice.detachedHead=false",
    "gc.auto=0",
)

REVERTS_RE = re.compile(r"^This reverts commit ([0-9a-f]{40}(?:[0-9a-f]{24})?)\b", re.MULTILINE)
URL_USERINFO_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def mask_url(text):
    """Hide credentials written into URLs (``https://user:token@host/...``)."""
    if text is None:
        return None
    return URL_USERINFO_RE.sub(r"\1***@", str(text))


class GitCommandError(RollbackError):
    """A git command that failed; the message carries its (masked) stderr."""

    def __init__(self, argv, returncode, stdout, stderr, what=None):
        command = mask_url(" ".join(argv))
        stderr_text = mask_url((stderr or "").strip())
        message = "%s failed (exit %s): %s" % (what or command, returncode, stderr_text or "(no output)")
        super().__init__(message, git_command=command, git_stderr=stderr_text)
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


# A name that can be a tag (and not a sha, a range or an option).
TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class GitRepo:
    """One git repository (a clone with a working tree, or a worktree of it)."""

    def __init__(self, path, timeout=120, author_name=DEFAULT_AUTHOR_NAME, author_email=DEFAULT_AUTHOR_EMAIL,
                 git_binary="git"):
        self.path = os.path.abspath(path)
        self.timeout = timeout
        self.author_name = author_name
        self.author_email = author_email
        self.git_binary = git_binary

    # ------------------------------------------------------------ running git
    def env(self):
        env = {key: value for key, value in os.environ.items() if key in PASSED_ENV}
        env.update(
            LC_ALL="C",
            LANG="C",
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_ASKPASS="",
            SSH_ASKPASS="",
            GIT_EDITOR="true",
            GIT_PAGER="cat",
            GIT_AUTHOR_NAME=self.author_name,
            GIT_AUTHOR_EMAIL=self.author_email,
            GIT_COMMITTER_NAME=self.author_name,
            GIT_COMMITTER_EMAIL=self.author_email,
        )
        env.setdefault("PATH", os.defpath)
        return env

    def argv(self, args):
        argv = [self.git_binary]
        for setting in FORCED_CONFIG:
            argv.extend(["-c", setting])
        argv.extend(args)
        return argv

    def run(self, *args, check=True, timeout=None, cwd=None, what=None):
        """Run ``git <args>`` in this repository; return the CompletedProcess (text)."""
        argv = self.argv(list(args))
        limit = timeout or self.timeout
        try:
            # run_command needs an AnsibleModule, which module_utils classes never get
            # (design-notes.md); this call keeps its habits: argv list, no shell, timeout.
            completed = subprocess.run(  # pylint: disable=ansible-bad-function
                argv, cwd=cwd or self.path, env=self.env(), check=False, capture_output=True,
                timeout=limit, stdin=subprocess.DEVNULL, text=True, errors="replace",
            )
        except subprocess.TimeoutExpired as error:
            raise RollbackError(
                "%s did not finish within %s seconds (git_timeout)." % (what or mask_url(" ".join(args)), limit),
                git_command=mask_url(" ".join(argv)),
            ) from error
        except OSError as error:
            raise RollbackError("Cannot run git (%s): %s" % (self.git_binary, error)) from error
        if check and completed.returncode != 0:
            raise GitCommandError(argv, completed.returncode, completed.stdout, completed.stderr, what=what)
        return completed

    def out(self, *args, **kwargs):
        return self.run(*args, **kwargs).stdout.strip()

    @classmethod
    def clone(cls, url, dest, branch=None, **kwargs):
        repo = cls(dest, **kwargs)
        args = ["clone", "--quiet", "--no-tags"]
        if branch:
            args.extend(["--branch", branch])
        args.extend(["--", url, dest])
        repo.run(*args, cwd=os.path.dirname(repo.path) or ".", what="git clone %s" % mask_url(url))
        return repo

    # ---------------------------------------------------------------- reading
    def is_work_tree(self):
        completed = self.run("rev-parse", "--is-inside-work-tree", check=False)
        return completed.returncode == 0 and completed.stdout.strip() == "true"

    def top_level(self):
        return self.out("rev-parse", "--show-toplevel")

    def rev_parse(self, ref):
        """The full sha of commit ``ref``, or None when there is no such commit."""
        completed = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", "%s^{commit}" % ref, check=False)
        sha = completed.stdout.strip()
        return sha if completed.returncode == 0 and sha else None

    def head(self):
        return self.rev_parse("HEAD")

    def symbolic_head(self):
        """The branch HEAD points at (``refs/heads/x``), or None when detached."""
        completed = self.run("symbolic-ref", "--quiet", "HEAD", check=False)
        return completed.stdout.strip() or None

    def status(self):
        """``git status --porcelain`` lines (untracked files included, ignored ones not)."""
        output = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
        return [entry for entry in output.split("\0") if entry]

    def is_clean(self):
        return not self.status()

    def refs(self):
        """Every ref and its target, to prove a repository was left as it was."""
        return self.out("for-each-ref", "--format=%(refname) %(objectname)")

    def snapshot(self):
        return {"head": self.head(), "symbolic_head": self.symbolic_head(), "status": self.status(), "refs": self.refs()}

    def parents(self, sha):
        return self.out("rev-list", "--parents", "-n", "1", sha).split()[1:]

    def subject(self, sha):
        return self.out("log", "-1", "--format=%s", sha)

    def is_ancestor(self, ancestor, descendant):
        completed = self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if completed.returncode not in (0, 1):
            raise GitCommandError(completed.args, completed.returncode, completed.stdout, completed.stderr)
        return completed.returncode == 0

    def rev_list(self, *args):
        return self.out("rev-list", *args).split()

    def messages(self, *revisions):
        """``{sha: full message}`` for the commits ``git log <revisions>`` lists."""
        output = self.run("log", "--format=%H%n%B%x00", *revisions).stdout
        result = {}
        for record in output.split("\0"):
            record = record.strip("\n")
            if record:
                sha, _sep, body = record.partition("\n")
                result[sha.strip()] = body
        return result

    def remote_url(self, remote="origin"):
        completed = self.run("remote", "get-url", remote, check=False)
        return completed.stdout.strip() if completed.returncode == 0 else None

    def ls_remote(self, remote, ref):
        """The sha ``ref`` (a full ref name) has on ``remote``, or None."""
        output = self.out("ls-remote", "--", remote, ref, what="git ls-remote %s" % mask_url(remote))
        for line in output.splitlines():
            sha, _sep, name = line.partition("\t")
            if name == ref:
                return sha
        return None

    def fetch(self, remote, ref):
        """Fetch ``ref`` (a full ref name) without updating any ref; return its sha.

        ``--refmap=`` keeps git from updating remote-tracking branches on the
        way, so a check leaves a user's clone with exactly the refs it had.
        """
        self.run("fetch", "--quiet", "--no-tags", "--refmap=", "--", remote, ref,
                 what="git fetch %s %s" % (mask_url(remote), ref))
        return self.rev_parse("FETCH_HEAD")

    # ---------------------------------------------------------------- changes
    def conflicts(self):
        output = self.run("diff", "--name-only", "--diff-filter=U", "-z").stdout
        return sorted({name for name in output.split("\0") if name})

    def staged_patch(self, base="HEAD"):
        return self.run("diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", base).stdout

    def staged_diffstat(self, base="HEAD"):
        numstat = self.run("diff", "--cached", "--numstat", "-z", "--no-renames", base).stdout
        stat = self.run("diff", "--cached", "--stat", "--no-color", base).stdout
        files = []
        for entry in numstat.split("\0"):
            if not entry.strip():
                continue
            added, removed, name = entry.split("\t", 2)
            files.append({
                "path": name,
                "insertions": None if added == "-" else int(added),
                "deletions": None if removed == "-" else int(removed),
                "binary": added == "-",
            })
        return {
            "files_changed": len(files),
            "insertions": sum(item["insertions"] or 0 for item in files),
            "deletions": sum(item["deletions"] or 0 for item in files),
            "files": files,
            "text": stat.rstrip("\n"),
        }

    def has_staged_changes(self, base="HEAD"):
        completed = self.run("diff", "--cached", "--quiet", base, check=False)
        if completed.returncode not in (0, 1):
            raise GitCommandError(completed.args, completed.returncode, completed.stdout, completed.stderr)
        return completed.returncode == 1

    def commit(self, message):
        """Commit the index with ``message`` as given; hooks are skipped (a bot's revert
        must not be stopped by a developer's lint hook). Return the new sha."""
        with tempfile.NamedTemporaryFile("w", suffix=".msg", delete=False, encoding="utf-8") as handle:
            handle.write(message)
            message_file = handle.name
        try:
            self.run("commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-F", message_file)
        finally:
            os.unlink(message_file)
        return self.head()

    def push(self, remote, source, ref):
        """Push ``source`` to ``ref`` on ``remote`` (never forced).

        Returns ``(status, detail)``: status ``ok``, ``rejected`` (a hook or a
        branch protection refused it), ``stale`` (the remote moved: fetch first),
        or ``error``; detail is what the remote said, credentials masked.
        """
        completed = self.run("push", "--porcelain", "--no-verify", "--", remote, "%s:%s" % (source, ref),
                             check=False, what="git push")
        said = mask_url("\n".join(part for part in (completed.stdout.strip(), completed.stderr.strip()) if part))
        if completed.returncode == 0:
            return "ok", said
        # What the remote and its hooks said, then git's verdict on the ref.
        remote_lines = [line.strip() for line in completed.stderr.splitlines() if line.startswith("remote:")]
        for line in completed.stdout.splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and fields[0] == "!":
                short = mask_url("; ".join([line for line in remote_lines if line != "remote:"] + [fields[2]]))
                if "[remote rejected]" in fields[2]:
                    return "rejected", short
                if "fetch first" in fields[2] or "non-fast-forward" in fields[2] or "stale info" in fields[2]:
                    return "stale", short
        if "protected branch" in said.lower() or "pre-receive hook declined" in said:
            return "rejected", said
        return "error", said

    @contextlib.contextmanager
    def temporary_worktree(self, commit):
        """A detached worktree at ``commit`` outside the clone, always removed afterwards."""
        parent = tempfile.mkdtemp(prefix="sre-rollback-worktree-")
        path = os.path.join(parent, "tree")
        self.run("worktree", "add", "--quiet", "--detach", path, commit)
        try:
            yield GitRepo(path, timeout=self.timeout, author_name=self.author_name, author_email=self.author_email,
                          git_binary=self.git_binary)
        finally:
            self.run("worktree", "remove", "--force", "--force", path, check=False)
            shutil.rmtree(parent, ignore_errors=True)
            self.run("worktree", "prune", check=False)


def github_repository_from_url(url):
    """``owner/name`` of a GitHub-style remote URL, or None."""
    if not url:
        return None
    match = re.match(r"^(?:[a-z][a-z0-9+.-]*://(?:[^/@]+@)?[^/]+/|[^/@:]+@[^/:]+:)(?:.*/)?([^/]+)/([^/]+?)(?:\.git)?/?$",
                     url.strip(), re.IGNORECASE)
    if not match or os.path.exists(url):
        return None
    return "%s/%s" % (match.group(1), match.group(2))


class GitRevert:
    """Revert commits on a branch of a remote; push, or push a branch and open a pull request."""

    def __init__(self, commit, branch="main", path=None, repo_url=None, remote="origin", mainline=None,
                 message=None, incident=None, pull_request=False, pull_request_on_reject=False,
                 pull_request_branch=None, pull_request_title=None, pull_request_body=None,
                 github_repository=None, github_client_factory=None, author_name=DEFAULT_AUTHOR_NAME,
                 author_email=DEFAULT_AUTHOR_EMAIL, git_timeout=120, check_mode=False, workdir=None):
        if bool(path) == bool(repo_url):
            raise RollbackError("Give exactly one of path (an existing clone) or repo (a URL to clone).")
        if not commit or not commit.strip():
            raise RollbackError("commit is empty: name the commit (or the range old..new) to revert.")
        if mainline is not None and mainline < 1:
            raise RollbackError("mainline counts parents from 1; got %s." % mainline)
        self.commit = commit.strip()
        self.branch = branch
        self.path = path
        self.repo_url = repo_url
        self.remote = remote
        self.mainline = mainline
        self.message = message
        self.incident = incident
        self.pull_request = pull_request
        self.pull_request_on_reject = pull_request_on_reject
        self.pull_request_branch = pull_request_branch
        self.pull_request_title = pull_request_title
        self.pull_request_body = pull_request_body
        self.github_repository = github_repository
        self.github_client_factory = github_client_factory
        self.author_name = author_name
        self.author_email = author_email
        self.git_timeout = git_timeout
        self.check_mode = check_mode
        self.workdir = workdir
        self.warnings = []
        self._fast_forwarded = False

    # ------------------------------------------------------------ workspace
    @contextlib.contextmanager
    def _clone(self):
        options = dict(timeout=self.git_timeout, author_name=self.author_name, author_email=self.author_email)
        if self.path:
            if not os.path.isdir(self.path):
                raise RollbackError("path %s does not exist or is not a directory." % self.path)
            repo = GitRepo(self.path, **options)
            if not repo.is_work_tree():
                raise RollbackError("path %s is not a git working tree." % self.path)
            yield repo
            return
        parent = tempfile.mkdtemp(prefix="sre-rollback-clone-", dir=self.workdir)
        try:
            yield GitRepo.clone(self.repo_url, os.path.join(parent, "repo"), **options)
        finally:
            shutil.rmtree(parent, ignore_errors=True)

    # ----------------------------------------------------------- targets
    def _resolve(self, repo, name):
        sha = repo.rev_parse(name)
        if sha is None and TAG_NAME.fullmatch(name):
            # Incident tickets name releases ("revert v1.2.3"); only the branch was
            # fetched, so ask the remote for a tag of that name (refs stay untouched).
            try:
                sha = repo.rev_parse(repo.fetch(self.remote, "refs/tags/" + name))
            except RollbackError:
                sha = None
        if sha is None:
            raise RollbackError(
                "Commit %s is unknown in %s (after fetching %s from %s)." % (
                    name, self._where(), self.branch, self.remote),
                commit=name)
        return sha

    def _where(self):
        return self.path or mask_url(self.repo_url)

    def _targets(self, repo, tip):
        """The commits to revert, newest first, and the revision that bounds the search for reverts."""
        if ".." in self.commit:
            if "..." in self.commit:
                raise RollbackError("commit %s: use a two-dot range old..new (the commits after old up to new)." % self.commit)
            old_name, _sep, new_name = self.commit.partition("..")
            if not old_name or not new_name:
                raise RollbackError("commit %s: a range needs both ends, old..new." % self.commit)
            old, new = self._resolve(repo, old_name), self._resolve(repo, new_name)
            self._require_on_branch(repo, new, new_name, tip)
            # First-parent only: a merge in the range stands for the work it merged
            # (reverted with mainline), so that work is not reverted twice.
            shas = repo.rev_list("--first-parent", new, "^" + old)
            if not shas:
                raise RollbackError("The range %s holds no commit: is it the wrong way round?" % self.commit)
            bound = old
        else:
            sha = self._resolve(repo, self.commit)
            self._require_on_branch(repo, sha, self.commit, tip)
            shas, bound = [sha], sha
            if not re.match(r"^[0-9a-fA-F]{7,64}$", self.commit):
                self.warnings.append(
                    "commit '%s' is a name, not a sha; it resolved to %s. Name the sha so that a re-run "
                    "finds this revert instead of reverting whatever '%s' points to then." % (
                        self.commit, sha, self.commit))
        targets = []
        for sha in shas:
            parents = repo.parents(sha)
            if len(parents) > 1:
                if self.mainline is None:
                    raise RollbackError(
                        "Commit %s is a merge with %d parents: set mainline to the parent whose side stays "
                        "(1 is the branch it was merged into)." % (sha, len(parents)), commit=sha, parents=parents)
                if self.mainline > len(parents):
                    raise RollbackError("mainline %d is out of range: merge %s has %d parents." % (
                        self.mainline, sha, len(parents)), commit=sha, parents=parents)
            elif not parents:
                raise RollbackError("Commit %s is a root commit; git cannot revert it." % sha, commit=sha)
            targets.append({"sha": sha, "parents": parents, "subject": repo.subject(sha), "merge": len(parents) > 1})
        if self.mainline is not None and not any(target["merge"] for target in targets):
            raise RollbackError("mainline is set but %s holds no merge commit; leave mainline out." % self.commit)
        return targets, bound

    def _require_on_branch(self, repo, sha, name, tip):
        if not repo.is_ancestor(sha, tip):
            raise RollbackError("Commit %s (%s) is not on branch %s of %s." % (name, sha, self.branch, self.remote),
                                commit=sha, branch=self.branch)

    @staticmethod
    def live_reverts(messages):
        """``{sha: revert sha}`` for each commit a revert in ``messages`` still undoes.

        A revert that was itself reverted no longer counts (revert of a revert
        re-applies the change), so a chain is followed to its end.
        """
        reverted_by = {}
        for sha, body in messages.items():
            for target in REVERTS_RE.findall(body):
                reverted_by.setdefault(target, []).append(sha)
        memo = {}

        def live(sha, depth=0):
            if sha not in memo:
                memo[sha] = None  # a cycle cannot happen in a DAG; guard anyway
                memo[sha] = next((rev for rev in reverted_by.get(sha, []) if depth < 50 and not live(rev, depth + 1)),
                                 None)
            return memo[sha]

        return {sha: live(sha) for sha in reverted_by if live(sha)}

    # ------------------------------------------------------------- message
    def _message(self, todo, repo):
        if len(todo) == 1 and not self.message:
            subject = 'Revert "%s"' % todo[0]["subject"]
            intro = ""
        elif not self.message:
            subject = "Revert %d commits of %s" % (len(todo), self.commit)
            intro = "Reverted, newest first:\n" + "\n".join(
                "  %s %s" % (target["sha"][:12], target["subject"]) for target in todo)
        else:
            subject, _sep, intro = self.message.strip().partition("\n")
            intro = intro.strip()
        lines = []
        for target in todo:
            if target["merge"]:
                lines.append("This reverts commit %s, reversing\nchanges made to %s." % (
                    target["sha"], target["parents"][self.mainline - 1]))
            else:
                lines.append("This reverts commit %s." % target["sha"])
        paragraphs = [subject]
        if intro:
            paragraphs.append(intro)
        paragraphs.append("\n".join(lines))
        if self.incident:
            paragraphs.append("Rollback-Incident: %s" % self.incident)
        return "\n\n".join(paragraphs) + "\n"

    # ------------------------------------------------------------- procedure
    def run(self):
        with self._clone() as repo:
            before = repo.snapshot() if self.path else None
            if self.path and before["status"]:
                raise RollbackError(
                    "The working tree of %s has uncommitted changes; commit, stash or discard them first." % self.path,
                    dirty_files=before["status"][:50])
            try:
                return self._run(repo)
            finally:
                if self.path:
                    self._verify_unchanged(repo, before)

    def _verify_unchanged(self, repo, before):
        # Only a pushed revert may move the user's branch (a fast-forward);
        # anything else is a bug worth a loud failure, not a silent mess.
        after = repo.snapshot()
        if self._fast_forwarded:
            return
        changed = [key for key in ("head", "symbolic_head", "status") if before[key] != after[key]]
        if changed:
            raise RollbackError("The clone at %s changed unexpectedly (%s); check it by hand." % (
                self.path, ", ".join(changed)), before=before, after=after)

    def _run(self, repo):
        remote_url = repo.remote_url(self.remote)
        if remote_url is None:
            raise RollbackError("The clone has no remote named %s." % self.remote)
        if self.pull_request or self.pull_request_on_reject:
            # Known before anything is pushed: a pull request that cannot be opened fails here.
            self._github_target(remote_url)
        branch_ref = "refs/heads/%s" % self.branch
        if repo.ls_remote(self.remote, branch_ref) is None:
            raise RollbackError("Branch %s does not exist on %s (%s)." % (self.branch, self.remote, mask_url(remote_url)),
                                branch=self.branch)
        tip = repo.fetch(self.remote, branch_ref)
        targets, bound = self._targets(repo, tip)
        live = self.live_reverts(repo.messages(tip, "^" + bound))
        already = [{"sha": t["sha"], "reverted_by": live[t["sha"]], "detected_by": "message"}
                   for t in targets if t["sha"] in live]
        todo = [t for t in targets if t["sha"] not in live]

        result = {
            "branch": self.branch,
            "remote_url": mask_url(remote_url),
            "targets": [t["sha"] for t in targets],
            "reverted": [],
            "already_reverted": already,
            "revert_commit": None,
            "pushed": False,
            "pushed_branch": None,
            "pull_request": None,
            "pull_request_url": None,
            "diffstat": None,
            "patch": "",
            "commit_message": None,
            "before": {"branch": self.branch, "tip": tip},
            "after": {"branch": self.branch, "tip": tip},
        }
        protected = self.pull_request
        pr_branch = self.pull_request_branch or "rollback/%s" % targets[0]["sha"][:7]
        if (self.pull_request or self.pull_request_on_reject) and todo:
            pending = self._pending_pull_request_branch(repo, pr_branch, tip, bound, todo)
            if pending:
                return self._existing_pull_request(repo, remote_url, pr_branch, pending, result)

        with repo.temporary_worktree(tip) as tree:
            empty_result = self._revert_in(tree, todo or targets, tolerate_conflicts=not todo)
            if not todo:
                if empty_result:
                    self.warnings.append(
                        "The branch records the revert of %s, yet reverting again would still change files "
                        "(a later commit re-applied part of it?). Nothing was done." % ", ".join(
                            t["sha"][:12] for t in targets))
                return False, result
            if not tree.has_staged_changes(tip):
                for target in todo:
                    already.append({"sha": target["sha"], "reverted_by": None, "detected_by": "tree"})
                return False, result
            result["patch"] = tree.staged_patch(tip)
            result["diffstat"] = tree.staged_diffstat(tip)
            result["commit_message"] = self._message(todo, repo)
            result["reverted"] = [t["sha"] for t in todo]
            if self.check_mode:
                result["after"] = {"branch": self.branch, "tip": None}
                return True, result
            new_sha = tree.commit(result["commit_message"])
        result["revert_commit"] = new_sha

        if not protected:
            status, said = repo.push(self.remote, new_sha, branch_ref)
            if status == "ok":
                result.update(pushed=True, pushed_branch=self.branch)
                result["after"] = {"branch": self.branch, "tip": new_sha}
                self._fast_forward_clone(repo, tip, new_sha)
                return True, result
            if status == "rejected" and self.pull_request_on_reject:
                self.warnings.append("%s refused the push to %s (protected branch?); opening a pull request instead." % (
                    self.remote, self.branch))
                result["push_rejection"] = said
            elif status == "rejected":
                raise RollbackError(
                    "%s rejected the push to %s (a pre-receive hook or branch protection) [%s]. Nothing was changed on "
                    "the remote. Set pull_request_on_reject=true (or pull_request=true) to push a branch and open a "
                    "pull request instead." % (self.remote, self.branch, said),
                    pushed=False, push_rejection=said, **self._clean_details(result))
            elif status == "stale":
                raise RollbackError(
                    "%s of %s moved while the revert was made (someone pushed); nothing was pushed. Run again to revert "
                    "on the new tip: %s" % (self.branch, self.remote, said), pushed=False, **self._clean_details(result))
            else:
                raise RollbackError("git push to %s failed; nothing was pushed: %s" % (self.remote, said),
                                    pushed=False, **self._clean_details(result))

        status, said = repo.push(self.remote, new_sha, "refs/heads/%s" % pr_branch)
        if status != "ok":
            raise RollbackError("Pushing the revert to branch %s of %s failed: %s" % (pr_branch, self.remote, said),
                                pushed=False, revert_commit=new_sha, **self._clean_details(result))
        result.update(pushed=True, pushed_branch=pr_branch)
        result["after"] = {"branch": self.branch, "tip": tip, "pull_request_branch": pr_branch,
                           "pull_request_tip": new_sha}
        pull = self._open_pull_request(remote_url, pr_branch, result["commit_message"])
        result.update(pull_request=pull, pull_request_url=pull.get("url"))
        return True, result

    @staticmethod
    def _clean_details(result):
        return {key: result[key] for key in ("branch", "targets", "reverted", "diffstat") if key in result}

    def _revert_in(self, tree, targets, tolerate_conflicts=False):
        """``git revert --no-commit`` each target in the worktree; True when changes are staged."""
        for target in targets:
            args = ["revert", "--no-commit"]
            if target["merge"]:
                args.extend(["-m", str(self.mainline)])
            completed = tree.run(*(args + [target["sha"]]), check=False)
            if completed.returncode != 0:
                conflicts = tree.conflicts()
                tree.run("revert", "--abort", check=False)
                if tolerate_conflicts:
                    return True
                if conflicts:
                    raise RollbackError(
                        "Reverting %s conflicts with later changes on %s in %s. Nothing was committed or pushed "
                        "and the clone is as it was; revert by hand, or revert the later commits too (a range)." % (
                            target["sha"], self.branch, ", ".join(conflicts)),
                        commit=target["sha"], conflicting_files=conflicts, branch=self.branch)
                raise GitCommandError(completed.args, completed.returncode, completed.stdout, completed.stderr,
                                      what="git revert %s" % target["sha"])
        return tree.has_staged_changes("HEAD")

    def _fast_forward_clone(self, repo, old_tip, new_sha):
        """Bring the user's branch along when it was at the old tip and is checked out."""
        if not self.path:
            return
        if repo.symbolic_head() == "refs/heads/%s" % self.branch and repo.head() == old_tip:
            repo.run("merge", "--quiet", "--ff-only", new_sha)
            self._fast_forwarded = True

    def _pending_pull_request_branch(self, repo, pr_branch, tip, bound, todo):
        """The sha of an existing pull-request branch that already carries the revert, or None."""
        pr_ref = "refs/heads/%s" % pr_branch
        if repo.ls_remote(self.remote, pr_ref) is None:
            return None
        pr_tip = repo.fetch(self.remote, pr_ref)
        live = self.live_reverts(repo.messages(pr_tip, "^" + bound))
        if all(t["sha"] in live for t in todo):
            return pr_tip
        raise RollbackError(
            "Branch %s already exists on %s and does not carry the revert of %s; set pull_request_branch to "
            "another name or delete that branch." % (pr_branch, self.remote, ", ".join(t["sha"][:12] for t in todo)),
            branch=self.branch)

    def _existing_pull_request(self, repo, remote_url, pr_branch, pr_tip, result):
        result.update(pushed_branch=pr_branch, revert_commit=pr_tip)
        result["after"] = dict(result["before"], pull_request_branch=pr_branch, pull_request_tip=pr_tip)
        result["pending"] = True
        if self.check_mode:
            return False, result
        pull = self._open_pull_request(remote_url, pr_branch, repo.messages("-1", pr_tip).get(pr_tip, ""),
                                       existing_ok=True)
        result.update(pull_request=pull, pull_request_url=pull.get("url"))
        return bool(pull.get("created")), result

    def _github_target(self, remote_url):
        if self.github_client_factory is None:
            raise RollbackError(
                "A pull request is asked for (pull_request or pull_request_on_reject) but cannot be opened: %s. "
                "Nothing was changed." % ("the GitHub client (module_utils/github.py) is not available"
                                          if GitHubClient is None else "github_token is not set"))
        repository = self.github_repository or github_repository_from_url(remote_url)
        if not repository or len(repository.split("/")) != 2:
            raise RollbackError(
                "The GitHub repository cannot be told from the remote URL %s; set github_repository (owner/name). "
                "Nothing was changed." % mask_url(remote_url))
        return repository

    def _open_pull_request(self, remote_url, pr_branch, message, existing_ok=False):
        repository = self._github_target(remote_url)
        owner, name = repository.split("/", 1)
        subject, _sep, body = message.strip().partition("\n")
        title = self.pull_request_title or subject
        body = self.pull_request_body or (body.strip() + "\n\nOpened by sre.rollback.git_revert because %s is protected." % (
            self.branch))
        try:
            client = self.github_client_factory()
            try:
                if existing_ok:
                    found = self._find_open_pull_request(client, owner, name, pr_branch)
                    if found:
                        return dict(found, created=False)
                pull = client.create_pull_request(owner, name, head=pr_branch, base=self.branch, title=title,
                                                  body=body)
            finally:
                closer = getattr(client, "close", None)
                if closer:
                    closer()
        except RollbackError as error:
            details = dict(error.details, pushed=not existing_ok, pushed_branch=pr_branch)
            raise RollbackError(
                "The revert is on branch %s of %s, but opening the pull request failed: %s. Run again to retry; "
                "the pushed branch is reused." % (pr_branch, self.remote, error.message), **details) from error
        created = True
        if isinstance(pull, tuple):  # GitHubClient answers (pull request, created)
            pull, created = pull
        return self._pull_summary(pull, created=created)

    def _find_open_pull_request(self, client, owner, name, pr_branch):
        finder = getattr(client, "find_pull_requests", None) or getattr(client, "find_pull_request", None)
        if finder is None:
            return None
        try:
            found = finder(owner, name, head="%s:%s" % (owner, pr_branch), base=self.branch, state="open")
        except TypeError:
            found = finder(owner, name, head="%s:%s" % (owner, pr_branch), base=self.branch)
        if isinstance(found, list):
            found = found[0] if found else None
        return self._pull_summary(found, created=False) if found else None

    @staticmethod
    def _pull_summary(pull, created):
        if not isinstance(pull, dict):
            pull = getattr(pull, "__dict__", {}) or {}
        return {
            "number": pull.get("number"),
            "url": pull.get("html_url") or pull.get("url"),
            "api_url": pull.get("url"),
            "state": pull.get("state"),
            "created": created,
        }
