# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read and move an application's alembic migrations with the application's own alembic.

An application's ``env.py`` imports the application (its models, its settings),
so alembic can only run in the application's own Python environment. This
module therefore never imports alembic itself: it runs :data:`APP_SIDE_SCRIPT`
with the application's interpreter (``python -c``, in the application's
directory), sends it one JSON request on stdin and reads one JSON answer from
stdout. The script uses alembic's Python API (``ScriptDirectory``,
``EnvironmentContext``, ``command.downgrade``/``upgrade``), so nothing depends
on alembic's human-readable output, and it does everything in one process:
read the history and the current revision, resolve the target, refuse a path
with a step that has no downgrade, produce the offline SQL (check mode), take
the ``pg_dump`` backup, migrate, and read the revision again.

The database URL travels only in the environment variable the application
reads (``DATABASE_URL`` by default), never on a command line, and is masked
in everything that comes back.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

from urllib.parse import quote, unquote, urlsplit

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

RESULT_MARKER = "@@SRE_ROLLBACK_ALEMBIC_RESULT@@"
MASK = "********"

# The script run in the application's interpreter. Kept Python 3.8 compatible
# (the application's Python may be older than the controller's). Its pure
# functions (has_real_downgrade, resolve_target, migration_path) are also
# loaded into this module below, so the unit tests exercise the very code the
# application's interpreter runs.
APP_SIDE_SCRIPT = r'''
import ast
import io
import json
import os
import re
import subprocess
import sys
import traceback

MARKER = "@@SRE_ROLLBACK_ALEMBIC_RESULT@@"


class Failure(Exception):
    def __init__(self, kind, message, **details):
        Exception.__init__(self, message)
        self.kind = kind
        self.details = details


def has_real_downgrade(source):
    """False when downgrade() is missing, only pass/.../a docstring, or only raises NotImplementedError."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [stmt for stmt in node.body
                    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))]
            body = [stmt for stmt in body if not isinstance(stmt, ast.Pass)]
            if not body:
                return False
            if len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None:
                exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
                if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                    return False
            return True
    return False


def resolve_target(spec, heads, down_of):
    """The revision a target names: None for base. down_of maps revision -> tuple of down revisions.

    '-N' counts N steps down from the head of the scripts (not from the database's
    current revision), so the same target always names the same revision.
    """
    spec = (spec or "").strip()
    if spec == "base":
        return None
    if spec in ("head", "heads") or re.match(r"^-\d+$", spec):
        if len(heads) != 1:
            raise Failure("multiple_heads", "the migration scripts have %d heads (%s); name the revision"
                          % (len(heads), ", ".join(sorted(heads))))
        revision = heads[0]
        steps = 0 if spec in ("head", "heads") else int(spec[1:])
        for taken in range(steps):
            downs = down_of[revision]
            if len(downs) > 1:
                raise Failure("merge_point", "%s is a merge of %s; name the target revision instead of %s"
                              % (revision, ", ".join(downs), spec))
            if not downs:
                if taken + 1 == steps:
                    return None
                raise Failure("unknown_revision", "%s goes below base: there are only %d migrations"
                              % (spec, taken + 1))
            revision = downs[0]
        return revision
    if spec in down_of:
        return spec
    matches = [rev for rev in down_of if rev.startswith(spec)] if len(spec) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Failure("unknown_revision", "revision %r is ambiguous: %s" % (spec, ", ".join(sorted(matches))))
    raise Failure("unknown_revision", "revision %r is not in the migration scripts; known: %s, base, head"
                  % (spec, ", ".join(sorted(down_of))))


def migration_path(upper, lower, down_of):
    """The revisions from upper down to lower (upper first, lower excluded), or None if lower is not below."""
    path = []
    revision = upper
    while revision != lower:
        if revision is None:
            return None
        if revision not in down_of:
            raise Failure("unknown_revision", "the database is at revision %r, which is not in the migration "
                          "scripts (a newer release's migration?)" % revision)
        downs = down_of[revision]
        if len(downs) > 1:
            raise Failure("merge_point", "%s is a merge revision; this module follows a single line of history"
                          % revision)
        path.append(revision)
        revision = downs[0] if downs else None
    return path


def _downs(value):
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _database_error(error):
    return Failure("database", "cannot reach the database: %s" % (str(error).strip().splitlines() or [""])[0],
                   error_type=type(error).__name__)


def current_heads(config, script, EnvironmentContext):
    seen = {}

    def read(rev, context):
        seen["heads"] = list(context.get_current_heads())
        return []

    try:
        with EnvironmentContext(config, script, fn=read, dont_mutate=True):
            script.run_env()
    except Failure:
        raise
    except Exception as error:  # env.py connects: every driver has its own errors
        raise _database_error(error)
    return seen.get("heads", [])


def database_url(request, config):
    return os.environ.get(request["url_env"]) or config.get_main_option("sqlalchemy.url")


def backup(request, config):
    from sqlalchemy.engine import make_url
    raw = database_url(request, config)
    if not raw:
        raise Failure("backup", "backup_path needs the database URL (database_url or %s)" % request["url_env"])
    url = make_url(raw)
    path = request["backup_path"]
    partial = path + ".partial"
    cmd = [request["pg_dump"], "--format=custom", "--file", partial, "--no-password"]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username),
                        ("--dbname", url.database)):
        if value:
            cmd += [flag, str(value)]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              timeout=request.get("timeout"))
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Failure("backup", "pg_dump could not run: %s" % error)
    if proc.returncode != 0:
        if os.path.exists(partial):
            os.remove(partial)
        raise Failure("backup", "pg_dump failed (%d): %s" % (proc.returncode, proc.stderr.strip()))
    os.replace(partial, path)
    return path


def work(request, result):
    """Fills ``result`` as it learns (a Failure's answer carries what was read before it)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    config = Config(request["config"])
    if request.get("set_url") and os.environ.get(request["url_env"]):
        config.set_main_option("sqlalchemy.url", os.environ[request["url_env"]].replace("%", "%%"))
    script = ScriptDirectory.from_config(config)
    heads = list(script.get_heads())
    down_of = {}
    history = []
    for revision in script.walk_revisions():
        down_of[revision.revision] = _downs(revision.down_revision)
        with open(revision.path, encoding="utf-8") as handle:
            has_downgrade = has_real_downgrade(handle.read())
        history.append({"revision": revision.revision, "down_revision": revision.down_revision,
                        "doc": revision.doc, "is_head": revision.revision in heads,
                        "has_downgrade": has_downgrade})
    downgradable = dict((item["revision"], item["has_downgrade"]) for item in history)
    result.update({"heads": heads, "history": history, "steps": [], "sql": None, "backup": None, "target": None})
    before = current_heads(config, script, EnvironmentContext)
    result["current_before"] = before
    result["current"] = before
    action = request["action"]
    if action == "info":
        return result
    if len(before) > 1:
        raise Failure("multiple_heads", "the database is at several heads (%s); migrate it by hand"
                      % ", ".join(before))
    current = before[0] if before else None
    target = resolve_target(request["target"], heads, down_of)
    result["target"] = target
    if action == "downgrade":
        path = migration_path(current, target, down_of)
        if path is None:
            raise Failure("not_below", "the target %s is not below the current revision %s: nothing to downgrade; "
                          "use action=upgrade to move forward" % (target or "base", current or "base"))
        missing = [rev for rev in path if not downgradable[rev]]
        if missing:
            raise Failure("no_downgrade", "%s %s %s no downgrade (downgrade() is missing, only 'pass' or raises "
                          "NotImplementedError), so the database cannot go from %s to %s; nothing was changed"
                          % ("revisions" if len(missing) > 1 else "revision", ", ".join(missing),
                             "have" if len(missing) > 1 else "has", current, target or "base"))
    else:
        upward = migration_path(target, current, down_of)
        if upward is None:
            raise Failure("not_above", "the target %s is not above the current revision %s: nothing to upgrade; "
                          "use action=downgrade to go back" % (target or "base", current or "base"))
        path = list(reversed(upward))
    result["steps"] = path
    if not path:
        return result
    if request["check"]:
        buffer = io.StringIO()
        config.output_buffer = buffer
        try:
            if action == "downgrade":
                command.downgrade(config, "%s:%s" % (current, target or "base"), sql=True)
            elif current is None:
                command.upgrade(config, target, sql=True)
            else:
                command.upgrade(config, "%s:%s" % (current, target), sql=True)
        except Failure:
            raise
        except Exception as error:
            raise Failure("offline_sql", "alembic could not produce the SQL of this %s: %s: %s"
                          % (action, type(error).__name__, error))
        result["sql"] = buffer.getvalue()
        return result
    if request.get("backup_path") and action == "downgrade":
        result["backup"] = backup(request, config)
    if request.get("apply", True):
        try:
            if action == "downgrade":
                command.downgrade(config, target or "base")
            else:
                command.upgrade(config, target)
        except Exception as error:
            try:
                result["current"] = current_heads(config, script, EnvironmentContext)
            except Failure:
                pass
            raise Failure("apply_failed", "alembic %s to %s failed: %s: %s"
                          % (action, target or "base", type(error).__name__, error))
        result["current"] = current_heads(config, script, EnvironmentContext)
    return result


def main():
    request = json.loads(sys.stdin.read())
    result = {}
    try:
        answer = {"ok": True}
        answer.update(work(request, result))
    except Failure as failure:
        answer = dict(result, ok=False, kind=failure.kind, message=str(failure))
        answer.update(failure.details)
    except Exception as error:
        answer = dict(result, ok=False, kind="unexpected", message="%s: %s" % (type(error).__name__, error),
                      traceback=traceback.format_exc())
    sys.stdout.write("\n" + MARKER + json.dumps(answer, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
'''

# The same pure functions the application's interpreter runs, for this module and its unit tests.
_APP_SIDE = {"__name__": "sre_rollback_alembic_app_side"}
exec(compile(APP_SIDE_SCRIPT, "<alembic_migration app-side script>", "exec"), _APP_SIDE)  # pylint: disable=exec-used
AppSideFailure = _APP_SIDE["Failure"]
has_real_downgrade = _APP_SIDE["has_real_downgrade"]
resolve_target = _APP_SIDE["resolve_target"]
migration_path = _APP_SIDE["migration_path"]

ACTIONS = ("info", "downgrade", "upgrade")


def url_secrets(url):
    """The strings that must never leave the module: the URL and its password (raw and URL-encoded)."""
    if not url:
        return []
    found = [url]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found += [password, unquote(password), quote(unquote(password), safe="")]
    return sorted({s for s in found if s and len(s) >= 3}, key=len, reverse=True)


def mask(value, secrets):
    """``value`` (str, list, dict, nested) with every secret replaced by ``********``."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, list):
        return [mask(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: mask(item, secrets) for key, item in value.items()}
    return value


def single(heads):
    """A list of current heads as the one revision it names (None = base); several are joined with ','."""
    if not heads:
        return None
    return heads[0] if len(heads) == 1 else ",".join(heads)


def stderr_tail(text, lines=12):
    return "\n".join(text.strip().splitlines()[-lines:])


class AlembicApp:
    """One application's alembic, run in the application's interpreter."""

    def __init__(self, app_path, config="alembic.ini", python=None, alembic_command=None, database_url=None,
                 database_url_env="DATABASE_URL", environment=None, timeout=600):
        self.app_path = os.path.abspath(os.path.expanduser(app_path))
        self.config = config if os.path.isabs(config) else os.path.join(self.app_path, config)
        self.python = shlex.split(python) if python else [sys.executable]
        self.alembic_command = shlex.split(alembic_command) if alembic_command else None
        self.database_url = database_url
        self.database_url_env = database_url_env
        self.environment = dict(environment or {})
        self.timeout = timeout
        self.secrets = url_secrets(database_url)
        for key, value in self.environment.items():
            if key == database_url_env:
                self.secrets = sorted(set(self.secrets) | set(url_secrets(str(value))), key=len, reverse=True)

    @classmethod
    def from_params(cls, params):
        return cls(params["app_path"], params["config"], params["python"], params["alembic_command"],
                   params["database_url"], params["database_url_env"], params["environment"], params["timeout"])

    def check_paths(self):
        if not os.path.isdir(self.app_path):
            raise RollbackError("app_path %s is not a directory." % self.app_path)
        if not os.path.isfile(self.config):
            raise RollbackError("The alembic configuration %s does not exist." % self.config)

    def env(self):
        env = dict(os.environ)
        env.update({key: str(value) for key, value in self.environment.items()})
        if self.database_url:
            env[self.database_url_env] = self.database_url
        # The answer is JSON on stdout; keep Python from buffering it behind a crash.
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run_script(self, request):
        """Run the app-side script with one request; return its answer (masked)."""
        request = dict(request, config=self.config, url_env=self.database_url_env,
                       set_url=bool(self.database_url), timeout=self.timeout)
        cmd = self.python + ["-c", APP_SIDE_SCRIPT]
        try:
            # run_command needs an AnsibleModule, which module_utils classes never get
            proc = subprocess.run(  # pylint: disable=ansible-bad-function
                cmd, input=json.dumps(request), capture_output=True, text=True, cwd=self.app_path,
                env=self.env(), timeout=self.timeout, check=False)
        except FileNotFoundError as error:
            raise RollbackError("The application's Python %s was not found: %s" % (self.python[0], error)) from error
        except subprocess.TimeoutExpired as error:
            raise RollbackError("alembic did not finish within %s s (timeout); the database may be mid-migration: "
                                "read it with action=info" % self.timeout) from error
        answer = None
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_MARKER):
                answer = json.loads(line[len(RESULT_MARKER):])
                break
        stderr = mask(stderr_tail(proc.stderr), self.secrets)
        if answer is None:
            raise RollbackError("The application's Python (%s) did not run the alembic script (exit %d): %s"
                                % (" ".join(self.python), proc.returncode, stderr or mask(proc.stdout, self.secrets)),
                                stderr=stderr)
        answer = mask(answer, self.secrets)
        answer["stderr"] = stderr
        return answer

    def run_cli(self, action, target):
        """``<alembic_command> -c <config> downgrade|upgrade <target>``, for apps that wrap alembic."""
        cmd = self.alembic_command + ["-c", self.config, action, target or "base"]
        try:
            proc = subprocess.run(  # pylint: disable=ansible-bad-function
                cmd, capture_output=True, text=True, cwd=self.app_path, env=self.env(), timeout=self.timeout,
                check=False)
        except FileNotFoundError as error:
            raise RollbackError("alembic_command %s was not found: %s" % (self.alembic_command[0], error)) from error
        except subprocess.TimeoutExpired as error:
            raise RollbackError("alembic did not finish within %s s (timeout); the database may be mid-migration: "
                                "read it with action=info" % self.timeout) from error
        if proc.returncode != 0:
            raise RollbackError("%s %s failed (exit %d): %s" % (
                self.alembic_command[0], action, proc.returncode, mask(stderr_tail(proc.stderr), self.secrets)))


def _shape(answer):
    """The result keys every call returns."""
    before = single(answer.get("current_before", []))
    after = single(answer.get("current", answer.get("current_before", [])))
    return dict(
        current_before=before,
        current=after,
        heads=answer.get("heads", []),
        history=answer.get("history", []),
        target=answer.get("target"),
        steps=answer.get("steps", []),
        sql=answer.get("sql"),
        backup=answer.get("backup"),
        before=dict(revision=before),
        after=dict(revision=after),
    )


FAILURE_HINTS = {
    "database": "Check the database URL, the credentials and that the server is reachable.",
    "unknown_revision": "Use a revision from the history (action=info lists it), base, head or -N.",
    "no_downgrade": "Restore the database from a backup (point-in-time restore) instead.",
}


def migrate(app, action, target=None, check_mode=False, backup_path=None, pg_dump="pg_dump"):
    """Report, downgrade or upgrade; returns ``(changed, result)``. Raises RollbackError before any change
    when the target, the path or the database is wrong."""
    if action not in ACTIONS:
        raise RollbackError("action must be one of %s." % ", ".join(ACTIONS))
    if action == "downgrade" and not target:
        raise RollbackError("action=downgrade needs a target: -1, -2, a revision or base.")
    if action == "upgrade" and not target:
        target = "head"
    app.check_paths()
    if backup_path:
        backup_path = os.path.abspath(os.path.expanduser(backup_path))
        if not os.path.isdir(os.path.dirname(backup_path)):
            raise RollbackError("The directory of backup_path %s does not exist." % backup_path)
    request = dict(action=action, target=target, check=check_mode, backup_path=backup_path, pg_dump=pg_dump,
                   apply=app.alembic_command is None)
    answer = app.run_script(request)
    if not answer["ok"]:
        shaped = _shape(answer)
        hint = FAILURE_HINTS.get(answer["kind"])
        message = answer["message"] + (" " + hint if hint else "")
        details = dict(shaped, failure=answer["kind"], stderr=answer.get("stderr"))
        if answer.get("traceback"):
            details["traceback"] = answer["traceback"]
        if answer["kind"] == "apply_failed":
            message += " The database is now at %s." % (shaped["current"] or "base")
        raise RollbackError(message, **details)
    if app.alembic_command is not None and answer["steps"] and not check_mode:
        app.run_cli(action, answer["target"])
        after = app.run_script(dict(action="info", target=None, check=False, backup_path=None, pg_dump=pg_dump))
        if not after["ok"]:
            raise RollbackError("alembic ran, but reading the revision afterwards failed: %s" % after["message"])
        answer["current"] = after["current"]
    result = _shape(answer)
    changed = bool(result["steps"])
    if changed and not check_mode:
        expected = answer["target"]
        if result["current"] != expected:
            raise RollbackError("alembic finished but the database is at %s, not %s."
                                % (result["current"] or "base", expected or "base"), **result)
    result["diff"] = dict(before="revision: %s\n" % (result["current_before"] or "base"),
                          after="revision: %s\n" % ((answer["target"] if changed else result["current"]) or "base"))
    return changed, result
