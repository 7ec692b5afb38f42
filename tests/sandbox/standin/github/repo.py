"""The real git bare repository behind the GitHub stand-in.

Created with the `git` CLI at start and on every reset, from the seed's commit
list: each commit writes (or deletes, with null) files and may carry a tag;
author and committer dates lie `days_ago` in the past, so runs seeded for
those commits have believable timestamps. A `post-receive` hook tells the
stand-in about every push (curl to the admin API, trusting the sandbox CA),
so a push to `main` starts the `push` workflows for the pushed commit.
"""

import datetime
import os
import shutil
import subprocess
import tempfile

ZERO_SHA = "0" * 40

HOOK = """#!/bin/sh
# Installed by the sre.rollback sandbox: tell the GitHub stand-in about this push.
# post-receive cannot reject a push; if the sandbox is down the push still succeeds.
while read -r old new ref; do
  curl -sS --max-time 10 --cacert {ca} -H 'Content-Type: application/json' \\
    -d "{{\\"repository\\": \\"{full_name}\\", \\"ref\\": \\"$ref\\", \\"before\\": \\"$old\\", \\"after\\": \\"$new\\"}}" \\
    {url} >/dev/null || echo "sandbox: could not notify the GitHub stand-in" >&2
done
exit 0
"""


class GitError(Exception):
    pass


def git(*args, cwd=None, env=None, check=True, stdin=None):
    full_env = dict(os.environ)
    # Never let a developer's global config (signing, hooks, templates) change the seed.
    full_env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"})
    full_env.update(env or {})
    proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, input=stdin, capture_output=True,
                          text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class BareRepo:
    """One bare repository `<root>/<owner>/<name>.git` and the reads the API needs."""

    def __init__(self, root, owner, name, default_branch="main"):
        self.owner = owner
        self.name = name
        self.default_branch = default_branch
        self.path = os.path.join(root, owner, f"{name}.git")

    @property
    def full_name(self):
        return f"{self.owner}/{self.name}"

    # -- creation ----------------------------------------------------------------------
    def create(self, commits, hook_url, ca_path, now):
        """(Re)create the repository from the seed's commit list; return the created shas in order."""
        if os.path.exists(self.path):
            shutil.rmtree(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        git("init", "--quiet", "--bare", f"--initial-branch={self.default_branch}", self.path)
        shas = []
        with tempfile.TemporaryDirectory(prefix="sbx-github-seed-") as work:
            git("init", "--quiet", f"--initial-branch={self.default_branch}", work)
            for commit in commits:
                for rel, content in commit.get("files", {}).items():
                    target = os.path.join(work, rel)
                    if content is None:
                        if os.path.exists(target):
                            git("rm", "--quiet", rel, cwd=work)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "w", encoding="utf-8") as fh:
                        fh.write(content)
                    git("add", rel, cwd=work)
                when = now - datetime.timedelta(days=commit.get("days_ago", 0), hours=commit.get("hours_ago", 0))
                stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
                author = commit.get("author", {"name": "Fundrbolt Dev", "email": "dev@fundrbolt.example"})
                env = {
                    "GIT_AUTHOR_NAME": author["name"], "GIT_AUTHOR_EMAIL": author["email"],
                    "GIT_COMMITTER_NAME": author["name"], "GIT_COMMITTER_EMAIL": author["email"],
                    "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
                }
                git("commit", "--quiet", "--no-verify", "-m", commit["message"], cwd=work, env=env)
                sha = git("rev-parse", "HEAD", cwd=work).stdout.strip()
                shas.append(sha)
                if commit.get("tag"):
                    git("tag", "-a", commit["tag"], "-m", f"Release {commit['tag']}", cwd=work, env=env)
            git("push", "--quiet", "--follow-tags", self.path, f"HEAD:refs/heads/{self.default_branch}", cwd=work)
            git("push", "--quiet", "--tags", self.path, cwd=work)
        self._install_hook(hook_url, ca_path)
        return shas

    def _install_hook(self, url, ca_path):
        hook = os.path.join(self.path, "hooks", "post-receive")
        with open(hook, "w", encoding="utf-8") as fh:
            fh.write(HOOK.format(ca=_sh_quote(ca_path), url=_sh_quote(url), full_name=self.full_name))
        os.chmod(hook, 0o755)

    def remove(self):
        if os.path.exists(self.path):
            shutil.rmtree(self.path)

    # -- reads -------------------------------------------------------------------------
    def resolve(self, ref):
        """The commit sha a branch, tag or (abbreviated) sha names, or None."""
        if not ref:
            return None
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            proc = git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=self.path, check=False)
            if proc.returncode == 0:
                return proc.stdout.strip()
        return None

    def branch_exists(self, branch):
        return git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=self.path,
                   check=False).returncode == 0

    def tag_exists(self, tag):
        return git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", cwd=self.path,
                   check=False).returncode == 0

    def show(self, sha, path):
        """A file's content at a commit, or None when the commit lacks it."""
        proc = git("show", f"{sha}:{path}", cwd=self.path, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def commit_info(self, sha):
        fmt = "%H%x00%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%P%x00%B"
        out = git("show", "-s", f"--format={fmt}", sha, cwd=self.path).stdout
        parts = out.split("\x00")
        return {
            "sha": parts[0], "tree": parts[1],
            "author": {"name": parts[2], "email": parts[3], "date": parts[4]},
            "committer": {"name": parts[5], "email": parts[6], "date": parts[7]},
            "parents": parts[8].split(),
            "message": parts[9].strip(),
        }

    def commits_between(self, base, head):
        """Shas reachable from head and not from base (what a pull request would contain)."""
        out = git("rev-list", f"{base}..{head}", cwd=self.path, check=False)
        return out.stdout.split() if out.returncode == 0 else []


def _sh_quote(value):
    return "'" + str(value).replace("'", "'\"'\"'") + "'"
