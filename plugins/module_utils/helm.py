# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helm release history and rollback, through the helm binary or the Helm library.

The runbooks run ``helm history RELEASE`` and ``helm rollback RELEASE [REVISION]``.
Two backends do that behind one interface (:class:`HelmBackend`):

- :class:`HelmCli` runs the ``helm`` binary users have (Helm 3 or 4): argv
  built here, ``-o json`` output parsed here, Helm's error texts mapped to
  :class:`HelmFailure` kinds here.  Secrets (the bearer token, the SQL
  connection string) travel in the environment, never on the command line
  where ``ps`` shows them.
- :class:`HelmLibrary` calls Helm 4's own Go code through ``helm_python``
  (PyPI ``helm-python-sdk``), so no binary is needed.

The procedure is backend-free: :class:`ReleaseHistory` reads a history the
way a person does (which revision is deployed, which one is stuck pending,
which one ran before), :func:`history_info` and :func:`rollback_release` are
what the two modules run.  Nothing here imports AnsibleModule.
"""

from __future__ import annotations

import abc
import importlib.util
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile

from ansible.module_utils.basic import env_fallback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import KubernetesSettings

# The library is never imported here: it runs in a child process (see LIBRARY_WORKER).
HELM_PYTHON_IMPORT_ERROR = None if importlib.util.find_spec("helm_python") else (
    "No module named 'helm_python' (PyPI package helm-python-sdk)")

BACKENDS = ("auto", "cli", "library")
STORAGE_DRIVERS = ("secret", "configmap", "sql")
PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
# Revisions that once ran as the release (the deployed one, and the ones it replaced).
RAN_STATUSES = ("deployed", "superseded")
ROLLBACK_DESCRIPTION = re.compile(r"^Rollback to (\d+)$")

HELM_ARGSPEC = dict(
    release_name=dict(type="str", required=True, aliases=["name"]),
    release_namespace=dict(type="str", default="default", aliases=["namespace"]),
    backend=dict(type="str", default="auto", choices=list(BACKENDS)),
    binary_path=dict(type="path"),
    storage_driver=dict(type="str", choices=list(STORAGE_DRIVERS), fallback=(env_fallback, ["HELM_DRIVER"])),
    sql_connection_string=dict(type="str", no_log=True,
                               fallback=(env_fallback, ["HELM_DRIVER_SQL_CONNECTION_STRING"])),
)


# --------------------------------------------------------------------------
# Where the release lives
# --------------------------------------------------------------------------


class HelmTarget:
    """The cluster, namespace and release storage one Helm call works on.

    ``kube`` holds the cluster options as Helm names them: ``kubeconfig``
    (a file), ``context``, ``apiserver``, ``token``, ``ca_file``, ``insecure``.
    """

    def __init__(self, namespace, storage_driver="secret", sql_connection_string=None, kube=None):
        self.namespace = namespace
        self.storage_driver = storage_driver or "secret"
        self.sql_connection_string = sql_connection_string
        self.kube = dict(kube or {})
        self.settings = None
        if self.storage_driver not in STORAGE_DRIVERS:
            raise RollbackError("storage_driver must be one of %s, not %s."
                                % (", ".join(STORAGE_DRIVERS), self.storage_driver))
        if self.storage_driver == "sql" and not sql_connection_string:
            raise RollbackError("storage_driver sql needs sql_connection_string (or HELM_DRIVER_SQL_CONNECTION_STRING), "
                                "the PostgreSQL connection string Helm stores releases with.")

    @classmethod
    def from_params(cls, params, settings=None):
        """From the module's options: Helm's own plus the collection's Kubernetes auth options.

        The auth options are resolved by KubernetesSettings (k8s_client.py), so
        Helm reaches the same cluster as the other Kubernetes modules, with the
        same precedence and the same clear errors (no kubeconfig, bad host).
        """
        settings = settings or KubernetesSettings.from_params(params)
        view = settings.kubeconfig_view()
        kube = {
            "kubeconfig": view["kubeconfig"],
            "context": view["context"],
            "apiserver": view["server"],
            "token": view["api_key"],
            "ca_file": view["ca_cert"],
            "insecure": not view["validate_certs"],
        }
        made = cls(params["release_namespace"], params.get("storage_driver"), params.get("sql_connection_string"),
                   kube)
        made.settings = settings
        return made

    def describe(self):
        return "namespace %s, storage driver %s" % (self.namespace, self.storage_driver)


class HelmFailure(Exception):
    """A Helm call that failed, sorted by what a person does about it.

    ``kind``: ``not_found`` (release or revision), ``unreachable`` (API
    server), ``in_progress`` (another operation holds the release),
    ``timeout`` (resources never became ready), ``denied`` (credentials or
    RBAC), ``storage`` (the release storage), ``other``.
    """

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


# Helm 3 and 4 messages (helm.sh/helm pkg/action, pkg/storage/driver, client-go).
_FAILURE_PATTERNS = (
    ("not_found", re.compile(r"release: not found|has no \d+ version|has no deployed releases", re.I)),
    ("in_progress", re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.I)),
    ("unreachable", re.compile(r"kubernetes cluster unreachable|connection refused|no such host|"
                               r"i/o timeout|x509|certificate", re.I)),
    ("denied", re.compile(r"unauthorized|forbidden", re.I)),
    ("timeout", re.compile(r"context deadline exceeded|timed out waiting|timeout waiting", re.I)),
    ("storage", re.compile(r"sql driver|unable to instantiate|storage", re.I)),
)


def classify_failure(text):
    """The HelmFailure kind for one of Helm's error messages."""
    for kind, pattern in _FAILURE_PATTERNS:
        if pattern.search(text or ""):
            return kind
    return "other"


def scrub(text, secrets):
    """``text`` with every secret in ``secrets`` masked (Helm quotes connection strings in some errors)."""
    text = text or ""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


# --------------------------------------------------------------------------
# One interface, two backends
# --------------------------------------------------------------------------


class HelmBackend(abc.ABC):
    """What the modules need from Helm.  Revisions are plain dicts (see :func:`normalize_revision`)."""

    name = "abstract"

    @abc.abstractmethod
    def history(self, release):
        """Every stored revision of ``release``, oldest first; HelmFailure(not_found) if none."""

    @abc.abstractmethod
    def values(self, release, revision):
        """The user-supplied values of one revision (``helm get values --revision N``), a dict."""

    @abc.abstractmethod
    def rollback(self, release, revision, wait=True, timeout=300, cleanup_on_fail=False):
        """``helm rollback release revision``: a new revision with that revision's chart and values."""

    def close(self):
        """Release what the backend holds (the library's native config); the binary holds nothing."""


def normalize_revision(entry):
    """One history entry, from ``helm history -o json`` or from the library, as the modules report it.

    ``{"revision", "status", "chart", "app_version", "description", "updated"}``; ``chart`` is
    ``name-version`` as ``helm history`` prints it.  The CLI prints ``chart`` already joined; the
    library's summaries carry ``chart_name`` and ``chart_version`` (and no description: see
    HelmLibrary.history); a stored release carries ``chart.metadata`` and ``info``.
    """
    info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
    chart = entry.get("chart")
    app_version = entry.get("app_version", entry.get("appVersion"))
    if isinstance(chart, dict):
        metadata = chart.get("metadata") if isinstance(chart.get("metadata"), dict) else chart
        app_version = app_version or metadata.get("appVersion") or metadata.get("app_version")
        chart = "%s-%s" % (metadata.get("name"), metadata.get("version"))
    elif chart is None and entry.get("chart_name"):
        chart = "%s-%s" % (entry["chart_name"], entry.get("chart_version"))
    revision = entry.get("revision", entry.get("version"))
    return {
        "revision": int(revision),
        "status": str(entry.get("status") or info.get("status") or "unknown").lower(),
        "chart": chart,
        "app_version": app_version or "",
        "description": entry.get("description", info.get("description", "")) or "",
        "updated": (entry.get("updated") or info.get("last_deployed") or entry.get("last_deployed")
                    or entry.get("deployed_at") or ""),
    }


class HelmCli(HelmBackend):
    """The ``helm`` binary.  ``run(argv, env)`` is injectable: it returns (rc, stdout, stderr)."""

    name = "cli"

    def __init__(self, binary, target, run=None, timeout_margin=60):
        self.binary = binary
        self.target = target
        self._run = run or _run_process
        self.timeout_margin = timeout_margin

    # -- argv and environment --------------------------------------------------------------
    def global_args(self):
        kube = self.target.kube
        argv = ["--namespace", self.target.namespace]
        if kube.get("kubeconfig") and os.pathsep not in kube["kubeconfig"]:
            argv += ["--kubeconfig", kube["kubeconfig"]]
        if kube.get("context"):
            argv += ["--kube-context", kube["context"]]
        if kube.get("apiserver"):
            argv += ["--kube-apiserver", kube["apiserver"]]
        if kube.get("ca_file"):
            argv += ["--kube-ca-file", kube["ca_file"]]
        if kube.get("insecure"):
            argv += ["--kube-insecure-skip-tls-verify"]
        return argv

    def environment(self):
        """The process environment: the storage driver and the secrets Helm reads from it."""
        env = dict(os.environ)
        env["HELM_DRIVER"] = self.target.storage_driver
        if self.target.sql_connection_string:
            env["HELM_DRIVER_SQL_CONNECTION_STRING"] = self.target.sql_connection_string
        if self.target.kube.get("token"):
            env["HELM_KUBETOKEN"] = self.target.kube["token"]
        if self.target.kube.get("kubeconfig") and os.pathsep in self.target.kube["kubeconfig"]:
            # Several files: Helm merges a KUBECONFIG list the way kubectl does; --kubeconfig takes one.
            env["KUBECONFIG"] = self.target.kube["kubeconfig"]
        return env

    def history_argv(self, release):
        return [self.binary, "history", release, "--output", "json", "--max", "256"] + self.global_args()

    def values_argv(self, release, revision):
        return [self.binary, "get", "values", release, "--revision", str(revision), "--output", "json"] + \
            self.global_args()

    def rollback_argv(self, release, revision, wait=True, timeout=300, cleanup_on_fail=False):
        argv = [self.binary, "rollback", release, str(revision), "--timeout", "%ss" % int(timeout)]
        if wait:
            # Helm 3: a bool; Helm 4: a strategy whose bare flag means "watcher". Both accept it bare.
            argv.append("--wait")
        if cleanup_on_fail:
            argv.append("--cleanup-on-fail")
        return argv + self.global_args()

    # -- calls -------------------------------------------------------------------------------
    def _call(self, argv, timeout):
        rc, out, err = self._run(argv, self.environment(), timeout)
        if rc != 0:
            message = (err or out or "").strip()
            if message.startswith("Error: "):
                message = message[len("Error: "):]
            message = scrub(message, [self.target.sql_connection_string, self.target.kube.get("token")])
            raise HelmFailure(classify_failure(message), "helm %s failed: %s" % (argv[1], message))
        return out

    def history(self, release):
        out = self._call(self.history_argv(release), 60)
        return parse_history_json(out)

    def values(self, release, revision):
        out = self._call(self.values_argv(release, revision), 60)
        return parse_values_json(out)

    def rollback(self, release, revision, wait=True, timeout=300, cleanup_on_fail=False):
        self._call(self.rollback_argv(release, revision, wait, timeout, cleanup_on_fail),
                   timeout + self.timeout_margin)


def _run_process(argv, env, timeout):
    """Run helm with a deadline (AnsibleModule.run_command has none, and a hung helm must not hang the task)."""
    try:
        done = subprocess.run(  # pylint: disable=ansible-bad-function
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise HelmFailure("timeout", "%s %s did not finish within %ss." % (argv[0], argv[1], timeout))
    except OSError as err:
        raise HelmFailure("other", "Cannot run %s: %s" % (argv[0], err))
    return done.returncode, done.stdout, done.stderr


def parse_history_json(text):
    """``helm history -o json``: a JSON list, oldest first."""
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        raise HelmFailure("other", "helm history printed something that is not JSON: %s" % (text or "")[:200])
    if not isinstance(entries, list):
        raise HelmFailure("other", "helm history printed %s, not a list of revisions." % type(entries).__name__)
    return sorted((normalize_revision(entry) for entry in entries), key=lambda rev: rev["revision"])


def parse_values_json(text):
    """``helm get values -o json``: the user-supplied values; ``null`` when there are none."""
    try:
        values = json.loads(text or "null")
    except ValueError:
        raise HelmFailure("other", "helm get values printed something that is not JSON.")
    return values or {}


# The Helm library runs in a child Python process that speaks one JSON request and one JSON answer per
# line.  Why not in the module's own process: Helm's sql driver reads HELM_DRIVER_SQL_CONNECTION_STRING
# with Go's os.Getenv, and the Go runtime of a c-shared library copies the environment the process was
# started with (not os.environ as it is when the library loads), so the only way to give Helm the
# connection string of this task is a process started with it.  It also keeps a crash of the Go code
# (or anything it prints) out of the module's JSON result.
LIBRARY_WORKER = r"""
import json
import os
import sys


def error_answer(helm, err):
    kind = "not_found" if isinstance(err, helm.HelmNotFoundError) else None
    if isinstance(err, helm.HelmKubeError) and "sql driver" in str(err).lower():
        kind = "storage"
    return {"error": {"kind": kind, "type": type(err).__name__, "message": str(err)}}


def history(config, release):
    # Config.history() summaries carry no description ("Rollback to 2"); the stored records do.
    revisions = []
    for entry in config.history(release):
        number = int(entry.get("revision", entry.get("version")))
        stored = config.get_all(release, revision=number)
        info = stored.get("info") or {}
        merged = dict(entry)
        merged.setdefault("description", info.get("description", ""))
        merged["updated"] = info.get("last_deployed") or entry.get("deployed_at") or ""
        merged["values"] = stored.get("config") or {}
        revisions.append(merged)
    return revisions


def rollback(helm, config, release, options):
    if options.get("cleanup_on_fail"):
        # Config.rollback() of helm-python-sdk 0.2 does not pass cleanup_on_fail, which the C ABI's
        # helm_rollback options accept (Helm's Rollback.CleanupOnFail).
        helm._native.call_status("helm_rollback", config._raw(), release, json.dumps(options))
    else:
        config.rollback(release, version=options["version"], timeout=options["timeout_seconds"],
                        wait=options.get("wait"))


def handle(helm, state, request):
    op = request["op"]
    if op == "config":
        state["config"] = helm.Config(**request["options"])
        return helm.helm_sdk_version()
    config = state["config"]
    if op == "history":
        return history(config, request["release"])
    if op == "values":
        return config.get_values(request["release"], revision=request["revision"]) or {}
    if op == "rollback":
        rollback(helm, config, request["release"], request["options"])
        return None
    raise ValueError("unknown request %s" % op)


def serve(helm, lines, out):
    state = {}
    try:
        for line in lines:
            try:
                answer = {"ok": handle(helm, state, json.loads(line))}
            except helm.HelmError as err:
                answer = error_answer(helm, err)
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        if state.get("config") is not None:
            state["config"].close()


if __name__ == "__main__":
    # Answers go to a copy of stdout; fd 1 becomes stderr, so whatever the Go code prints cannot
    # break the protocol.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import helm_python
    serve(helm_python, sys.stdin, answers)
"""


class HelmLibrary(HelmBackend):
    """Helm 4's Go code through helm_python, in a child process (see LIBRARY_WORKER)."""

    name = "library"

    def __init__(self, target, python=None, worker_source=LIBRARY_WORKER, timeout_margin=60, connect_timeout=60):
        self.target = target
        self.python = python or sys.executable
        self.worker_source = worker_source
        self.timeout_margin = timeout_margin
        self.connect_timeout = connect_timeout
        self.helm_version = None
        self._process = None
        self._stderr = None
        self._written_kubeconfig = None
        self._values = {}

    def _kubeconfig_file(self):
        """One kubeconfig file: the library takes a path, not a KUBECONFIG list."""
        path = self.target.kube.get("kubeconfig")
        if not path or os.pathsep not in path:
            return path or None
        if self.target.settings is None:
            raise RollbackError("The Helm library takes one kubeconfig file, not the list %s." % path)
        self._written_kubeconfig = self.target.settings.write_kubeconfig()
        return self._written_kubeconfig

    def config_options(self):
        """helm_python.Config's options; sent over the pipe, so the token never shows in a process list."""
        kube = self.target.kube
        return {
            "kubeconfig_path": self._kubeconfig_file(),
            "kube_context": kube.get("context") or None,
            "kube_apiserver": kube.get("apiserver") or None,
            "kube_token": kube.get("token") or None,
            "kube_ca_file": kube.get("ca_file") or None,
            "kube_insecure_skip_tls_verify": bool(kube.get("insecure")),
            "namespace": self.target.namespace,
            "storage_driver": self.target.storage_driver,
        }

    def _start(self):
        env = dict(os.environ)
        env.pop("HELM_DRIVER_SQL_CONNECTION_STRING", None)
        if self.target.sql_connection_string:
            env["HELM_DRIVER_SQL_CONNECTION_STRING"] = self.target.sql_connection_string
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(  # pylint: disable=ansible-bad-function,consider-using-with
                [self.python, "-c", self.worker_source], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, env=env, text=True)
        except OSError as err:
            raise HelmFailure("other", "Cannot start %s for the Helm library: %s" % (self.python, err))
        self.helm_version = self._ask({"op": "config", "options": self.config_options()}, self.connect_timeout,
                                      "connecting")

    def _ask(self, request, timeout, doing):
        if self._process is None:
            self._start()
        process = self._process
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._ended(doing)
        ready, _unused_w, _unused_x = select.select([process.stdout], [], [], timeout)
        if not ready:
            # A worker stuck in Helm is ended at once; Helm's own timeout had already passed.
            process.kill()
            self.close()
            raise HelmFailure("timeout", "Helm library %s did not answer within %ss." % (doing, timeout))
        line = process.stdout.readline()
        if not line:
            raise self._ended(doing)
        answer = json.loads(line)
        if "error" in answer:
            error = answer["error"]
            message = scrub(error["message"], [self.target.sql_connection_string, self.target.kube.get("token")])
            raise HelmFailure(error.get("kind") or classify_failure(message),
                              "Helm library %s failed: %s" % (doing, message))
        return answer["ok"]

    def _ended(self, doing):
        """The worker died (a missing library, a crash in the Go code): say so with what it printed."""
        if self._process is not None:
            self._process.wait(timeout=10)
        self._stderr.seek(0)
        printed = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        tail = scrub(" | ".join(printed[-5:]), [self.target.sql_connection_string, self.target.kube.get("token")])
        code = self._process.returncode if self._process is not None else None
        self._process = None
        return HelmFailure("other", "The Helm library process ended while %s (exit %s): %s" % (doing, code, tail))

    def close(self):
        """End the worker, delete a kubeconfig written for it."""
        if self._process is not None:
            process, self._process = self._process, None
            try:
                process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._written_kubeconfig:
            try:
                os.remove(self._written_kubeconfig)
            except OSError:
                pass
            self._written_kubeconfig = None

    def history(self, release):
        revisions = []
        for entry in self._ask({"op": "history", "release": release}, self.connect_timeout + 60, "reading history"):
            values = entry.pop("values", {})
            revision = normalize_revision(entry)
            self._values[revision["revision"]] = values
            revisions.append(revision)
        return sorted(revisions, key=lambda rev: rev["revision"])

    def values(self, release, revision):
        if revision not in self._values:
            self._values[revision] = self._ask({"op": "values", "release": release, "revision": revision},
                                               self.connect_timeout, "reading values")
        return self._values[revision]

    def rollback(self, release, revision, wait=True, timeout=300, cleanup_on_fail=False):
        options = {"version": int(revision), "timeout_seconds": int(timeout)}
        if wait:
            options["wait"] = "watcher"
        if cleanup_on_fail:
            options["cleanup_on_fail"] = True
        self._ask({"op": "rollback", "release": release, "options": options}, timeout + self.timeout_margin,
                  "rolling back")


def select_backend(choice, target, binary_path=None, which=shutil.which, library_available=None):
    """The backend for ``backend`` (auto, cli, library): auto prefers the helm binary users have."""
    if library_available is None:
        library_available = HELM_PYTHON_IMPORT_ERROR is None
    binary = binary_path or which("helm")
    if binary_path and not os.access(binary_path, os.X_OK):
        raise RollbackError("binary_path %s is not an executable file." % binary_path)
    if choice == "cli" or (choice == "auto" and binary):
        if not binary:
            raise RollbackError("backend cli needs the helm binary: it is not on PATH; set binary_path, "
                                "or use backend library (pip install helm-python-sdk).")
        return HelmCli(binary, target)
    if not library_available:
        if choice == "library":
            raise RollbackError("backend library needs the Python package helm-python-sdk (import helm_python): "
                                "pip install helm-python-sdk.")
        raise RollbackError("Neither the helm binary (PATH or binary_path) nor the Helm library "
                            "(pip install helm-python-sdk) is available on the host that runs the task.")
    return HelmLibrary(target)


# --------------------------------------------------------------------------
# Reading a history the way a person does
# --------------------------------------------------------------------------


class ReleaseHistory:
    """A release's revisions (oldest first) and what they say about its state."""

    def __init__(self, release, revisions):
        self.release = release
        self.revisions = list(revisions)
        self.by_number = {rev["revision"]: rev for rev in self.revisions}

    @property
    def latest(self):
        return self.revisions[-1] if self.revisions else None

    @property
    def deployed(self):
        """The revision running now (Helm marks exactly one ``deployed``; the newest wins if several)."""
        deployed = [rev for rev in self.revisions if rev["status"] == "deployed"]
        return deployed[-1] if deployed else None

    @property
    def pending(self):
        """The newest revision when an install, upgrade or rollback never finished (Helm's lock), else None."""
        latest = self.latest
        return latest if latest and latest["status"] in PENDING_STATUSES else None

    def get(self, number):
        return self.by_number.get(number)

    def numbers(self):
        return [rev["revision"] for rev in self.revisions]

    def previous_deployed(self):
        """The revision to roll back to when none is named.

        The newest revision older than the deployed one that once ran (deployed
        or superseded; failed ones never ran right).  When the deployed revision
        is itself a rollback (``Rollback to N``), the last change is already
        undone and the answer is N again, so running the same task twice does
        not walk further back.
        """
        current = self.deployed or self.latest
        if current is None:
            return None
        undone = ROLLBACK_DESCRIPTION.match(current["description"] or "")
        if undone and self.get(int(undone.group(1))):
            return self.get(int(undone.group(1)))
        earlier = [rev for rev in self.revisions
                   if rev["revision"] < current["revision"] and rev["status"] in RAN_STATUSES]
        return earlier[-1] if earlier else None


def _summary(rev):
    if rev is None:
        return None
    return {key: rev[key] for key in ("revision", "status", "chart", "app_version", "description", "updated")}


def changed_value_keys(before, after, prefix=""):
    """Dotted paths of the values that differ, never the values themselves (they may hold secrets)."""
    keys = []
    for key in sorted(set(before) | set(after), key=str):
        path = "%s%s" % (prefix, key)
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            keys.extend(changed_value_keys(old, new, path + "."))
        elif key not in before or key not in after or old != new:
            keys.append(path)
    return keys


def _read_history(backend, release, target):
    try:
        revisions = backend.history(release)
    except HelmFailure as failure:
        raise _as_error(failure, release, target)
    if not revisions:
        raise RollbackError("Release %s not found (%s)." % (release, target.describe()), release_name=release)
    return ReleaseHistory(release, revisions)


def _as_error(failure, release, target, doing=None, **details):
    where = "release %s (%s)" % (release, target.describe())
    if failure.kind == "not_found" and doing is None:
        message = ("Release %s not found (%s). Check release_name, release_namespace and storage_driver "
                   "(Helm looks for its records where the driver keeps them). %s"
                   % (release, target.describe(), failure.message))
    elif failure.kind == "unreachable":
        message = "Cannot reach the Kubernetes API for %s: %s" % (where, failure.message)
    elif failure.kind == "denied":
        message = "The Kubernetes API refused the credentials for %s: %s" % (where, failure.message)
    elif failure.kind == "storage":
        message = "Helm cannot use its release storage for %s: %s" % (where, failure.message)
    elif failure.kind == "in_progress":
        message = ("Another Helm operation holds %s (a revision is pending): %s. Wait for it, or set "
                   "recover_pending: true to roll back from it." % (where, failure.message))
    elif failure.kind == "timeout":
        message = "Helm timed out %s on %s: %s" % (doing or "working", where, failure.message)
    else:
        message = "Helm failed %s on %s: %s" % (doing or "reading", where, failure.message)
    return RollbackError(message, release_name=release, failure_kind=failure.kind, **details)


# --------------------------------------------------------------------------
# The two procedures
# --------------------------------------------------------------------------


def history_info(backend, release, target):
    """What ``helm history`` says, with the deployed and pending revisions picked out."""
    history = _read_history(backend, release, target)
    return {
        "release_name": release,
        "namespace": target.namespace,
        "storage_driver": target.storage_driver,
        "backend": backend.name,
        "revisions": [_summary(rev) for rev in history.revisions],
        "latest_revision": history.latest["revision"],
        "deployed_revision": history.deployed["revision"] if history.deployed else None,
        "deployed": _summary(history.deployed),
        "pending": history.pending is not None,
        "pending_revision": _summary(history.pending),
        "previous_deployed_revision": (history.previous_deployed() or {}).get("revision"),
    }


def _state(rev, values):
    if rev is None:
        return {"revision": None, "chart": None, "app_version": None, "status": None, "values_keys": []}
    return {"revision": rev["revision"], "chart": rev["chart"], "app_version": rev["app_version"],
            "status": rev["status"], "values_keys": sorted(str(key) for key in values)}


def _diff_text(state):
    if state["revision"] is None:
        return "(no deployed revision)\n"
    return "revision: %s\nchart: %s\napp_version: %s\nstatus: %s\n" % (
        state["revision"], state["chart"], state["app_version"], state["status"])


def rollback_release(backend, release, target, revision=None, wait=True, timeout=300, cleanup_on_fail=False,
                     recover_pending=False, check_mode=False):
    """Roll ``release`` back to ``revision`` (or the previous deployed one); return ``(changed, result)``.

    Idempotent: when the deployed revision already carries the target's chart
    and values (and nothing is pending), no new revision is made.  Every
    refusal (unknown release or revision, nothing to go back to, a pending
    revision without ``recover_pending``) comes before any change.
    """
    if revision is not None and revision < 1:
        raise RollbackError("revision must be 1 or more (Helm numbers revisions from 1), not %s." % revision)
    if timeout < 1:
        raise RollbackError("timeout must be 1 second or more.")
    history = _read_history(backend, release, target)
    deployed, pending = history.deployed, history.pending

    if pending and not recover_pending:
        raise RollbackError(
            "Release %s is stuck in %s at revision %s (%s, since %s): Helm refuses upgrades while it lasts. "
            "Nothing was changed. If no Helm operation is still running, set recover_pending: true to roll "
            "back from it (to revision %s unless revision says otherwise)." % (
                release, pending["status"], pending["revision"], pending["description"] or "no description",
                pending["updated"] or "unknown time",
                (deployed or history.previous_deployed() or {}).get("revision", "?")),
            release_name=release, pending_revision=_summary(pending), revisions=history.numbers())

    if revision is not None:
        chosen = history.get(revision)
        if chosen is None:
            raise RollbackError("Revision %s is not in the history of release %s (revisions: %s). Nothing was "
                                "changed." % (revision, release, ", ".join(str(n) for n in history.numbers())),
                                release_name=release, revisions=history.numbers())
    elif pending and deployed:
        # The stuck revision never finished: go back to what ran before it.
        chosen = deployed
    else:
        chosen = history.previous_deployed()
        if chosen is None and pending:
            raise RollbackError("Release %s is stuck in %s at revision %s and no revision before it ever ran, so "
                                "there is nothing to roll back to. Nothing was changed. A stuck first install is "
                                "removed with helm uninstall and installed again." % (
                                    release, pending["status"], pending["revision"]),
                                release_name=release, pending_revision=_summary(pending),
                                revisions=history.numbers())
        if chosen is None:
            raise RollbackError("Release %s has no earlier deployed revision to roll back to (revisions: %s). "
                                "Nothing was changed; name one with revision." % (
                                    release, ", ".join("%s %s" % (r["revision"], r["status"])
                                                       for r in history.revisions)),
                                release_name=release, revisions=history.numbers())

    try:
        target_values = backend.values(release, chosen["revision"])
        deployed_values = backend.values(release, deployed["revision"]) if deployed else {}
    except HelmFailure as failure:
        raise _as_error(failure, release, target, "reading values")

    before = _state(deployed, deployed_values)
    same = (deployed is not None and deployed["chart"] == chosen["chart"]
            and deployed["app_version"] == chosen["app_version"] and deployed_values == target_values)
    result = {
        "release_name": release,
        "namespace": target.namespace,
        "storage_driver": target.storage_driver,
        "backend": backend.name,
        "target_revision": chosen["revision"],
        "target": _summary(chosen),
        "values_changed_keys": changed_value_keys(deployed_values, target_values),
        "recovered_pending": None,
        "new_revision": None,
    }
    if same and not pending:
        result.update(before=before, after=before, diff={"before": _diff_text(before), "after": _diff_text(before)})
        return False, result

    predicted = _state(chosen, target_values)
    predicted.update(revision=history.latest["revision"] + 1, status="deployed", rolled_back_to=chosen["revision"])
    if pending:
        result["recovered_pending"] = _summary(pending)
    if check_mode:
        result.update(before=before, after=predicted,
                      diff={"before": _diff_text(before), "after": _diff_text(predicted)})
        return True, result

    failure = None
    try:
        backend.rollback(release, chosen["revision"], wait=wait, timeout=timeout, cleanup_on_fail=cleanup_on_fail)
    except HelmFailure as err:
        failure = err
    try:
        history_after = ReleaseHistory(release, backend.history(release))
    except HelmFailure:
        history_after = None
    if failure is not None:
        latest = history_after.latest if history_after else None
        made = latest if latest and latest["revision"] > history.latest["revision"] else None
        raise _as_error(failure, release, target, "rolling back to revision %s" % chosen["revision"],
                        changed=made is not None, new_revision=_summary(made),
                        deployed_revision=(history_after.deployed or {}).get("revision") if history_after else None)
    if history_after is None or history_after.latest["revision"] <= history.latest["revision"]:
        raise RollbackError("Helm reported the rollback of %s to revision %s done, but the history shows no new "
                            "revision." % (release, chosen["revision"]), release_name=release, changed=True)
    made = history_after.latest
    after = _state(made, target_values)
    after["rolled_back_to"] = chosen["revision"]
    result.update(new_revision=made["revision"], before=before, after=after,
                  diff={"before": _diff_text(before), "after": _diff_text(after)})
    if made["status"] != "deployed":
        raise RollbackError("The rollback of %s to revision %s made revision %s, which is %s: %s" % (
            release, chosen["revision"], made["revision"], made["status"], made["description"]),
            changed=True, **result)
    return True, result
