# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""helm: the helm binary's argv, environment, JSON and error texts (recorded outputs, since no helm
binary is installed here), reading a history, and the rollback decision against an in-memory Helm
that numbers and supersedes revisions as Helm's Rollback action does."""

from __future__ import annotations

import io
import json

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.helm import (
    HelmBackend,
    HelmCli,
    HelmFailure,
    HelmLibrary,
    HelmTarget,
    LIBRARY_WORKER,
    ReleaseHistory,
    changed_value_keys,
    classify_failure,
    history_info,
    normalize_revision,
    parse_history_json,
    parse_values_json,
    rollback_release,
    select_backend,
)

SQL = "host=db.internal port=5432 user=helm password=pg-s3cret dbname=helm sslmode=require"
TOKEN = "eyJhbGciOi.bearer-token"

# `helm history mystira-api -o json` (Helm 3.14), as recorded.
RECORDED_HISTORY = json.dumps([
    {"revision": 1, "updated": "2026-12-01T09:00:00.123456789Z", "status": "superseded",
     "chart": "mystira-api-1.4.0", "app_version": "2024.05.0", "description": "Install complete"},
    {"revision": 2, "updated": "2026-12-02T09:00:00.123456789Z", "status": "superseded",
     "chart": "mystira-api-1.4.2", "app_version": "2024.06.1", "description": "Upgrade complete"},
    {"revision": 3, "updated": "2026-12-03T09:00:00.123456789Z", "status": "failed",
     "chart": "mystira-api-1.5.0-rc1", "app_version": "2024.07.0-rc1",
     "description": "Upgrade \"mystira-api\" failed: context deadline exceeded"},
    {"revision": 4, "updated": "2026-12-04T09:00:00.123456789Z", "status": "deployed",
     "chart": "mystira-api-1.5.0", "app_version": "2024.07.0", "description": "Upgrade complete"},
])


def target(**kube):
    return HelmTarget("mystira", "sql", SQL, kube)


class Recorder:
    """A fake `run` for HelmCli: answers by subcommand, records every argv and environment."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, env, timeout):
        self.calls.append((argv, env, timeout))
        key = argv[1] if argv[1] != "get" else "get values"
        answer = self.answers[key]
        return answer(argv) if callable(answer) else answer


# -- the helm binary: argv, environment, output ---------------------------------------------


def test_history_argv_and_flags_for_every_kube_option():
    cli = HelmCli("/usr/local/bin/helm", target(kubeconfig="/k/config", context="prod", apiserver="https://api:6443",
                                                ca_file="/k/ca.pem", insecure=True, token=TOKEN))
    assert cli.history_argv("mystira-api") == [
        "/usr/local/bin/helm", "history", "mystira-api", "--output", "json", "--max", "256",
        "--namespace", "mystira", "--kubeconfig", "/k/config", "--kube-context", "prod",
        "--kube-apiserver", "https://api:6443", "--kube-ca-file", "/k/ca.pem", "--kube-insecure-skip-tls-verify"]


def test_secrets_travel_in_the_environment_never_in_argv():
    recorder = Recorder({"history": (0, RECORDED_HISTORY, ""), "get values": (0, "null", ""), "rollback": (0, "", "")})
    cli = HelmCli("helm", target(token=TOKEN), run=recorder)
    cli.history("mystira-api")
    cli.rollback("mystira-api", 2)
    for argv, env, _unused_timeout in recorder.calls:
        assert TOKEN not in " ".join(argv) and SQL not in " ".join(argv)
        assert env["HELM_KUBETOKEN"] == TOKEN
        assert env["HELM_DRIVER"] == "sql"
        assert env["HELM_DRIVER_SQL_CONNECTION_STRING"] == SQL


def test_rollback_argv_wait_timeout_cleanup():
    cli = HelmCli("helm", HelmTarget("mystira"))
    assert cli.rollback_argv("mystira-api", 2, wait=True, timeout=600, cleanup_on_fail=True) == [
        "helm", "rollback", "mystira-api", "2", "--timeout", "600s", "--wait", "--cleanup-on-fail",
        "--namespace", "mystira"]
    assert cli.rollback_argv("mystira-api", 2, wait=False, timeout=30) == [
        "helm", "rollback", "mystira-api", "2", "--timeout", "30s", "--namespace", "mystira"]


def test_rollback_process_timeout_outlasts_helms_own():
    recorder = Recorder({"rollback": (0, "Rollback was a success! Happy Helming!\n", "")})
    HelmCli("helm", HelmTarget("mystira"), run=recorder).rollback("mystira-api", 2, timeout=120)
    assert recorder.calls[0][2] > 120


def test_values_argv_and_null_values():
    recorder = Recorder({"get values": (0, "null\n", "")})
    cli = HelmCli("helm", HelmTarget("mystira"), run=recorder)
    assert cli.values("mystira-api", 3) == {}
    assert recorder.calls[0][0][:8] == ["helm", "get", "values", "mystira-api", "--revision", "3", "--output", "json"]
    assert parse_values_json('{"image": {"tag": "v2"}}\n') == {"image": {"tag": "v2"}}


def test_recorded_history_is_parsed_oldest_first():
    revisions = parse_history_json(RECORDED_HISTORY)
    assert [rev["revision"] for rev in revisions] == [1, 2, 3, 4]
    assert revisions[3] == {"revision": 4, "status": "deployed", "chart": "mystira-api-1.5.0",
                            "app_version": "2024.07.0", "description": "Upgrade complete",
                            "updated": "2026-12-04T09:00:00.123456789Z"}


@pytest.mark.parametrize("text", ["not json", '{"revision": 1}'])
def test_unparseable_history_is_a_clear_failure(text):
    with pytest.raises(HelmFailure) as caught:
        parse_history_json(text)
    assert "helm history printed" in caught.value.message


# Helm 3 and 4 error texts, as the binary prints them on stderr.
@pytest.mark.parametrize("stderr, kind", [
    ("Error: release: not found\n", "not_found"),
    ("Error: release has no 9 version\n", "not_found"),
    ('Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp 127.0.0.1:6443: '
     "connect: connection refused\n", "unreachable"),
    ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n", "in_progress"),
    ("Error: timed out waiting for the condition\n", "timeout"),
    ('Error: release mystira-api failed: context deadline exceeded\n', "timeout"),
    ('Error: query: failed to query with labels: secrets is forbidden: User "ci" cannot list resource '
     '"secrets"\n', "denied"),
    ("Error: unable to instantiate SQL driver: pq: password authentication failed\n", "storage"),
    ("Error: something new\n", "other"),
])
def test_error_texts_are_classified(stderr, kind):
    recorder = Recorder({"history": (1, "", stderr)})
    with pytest.raises(HelmFailure) as caught:
        HelmCli("helm", HelmTarget("mystira"), run=recorder).history("mystira-api")
    assert caught.value.kind == kind
    assert caught.value.message.startswith("helm history failed: ")
    assert "Error: " not in caught.value.message


def test_errors_never_echo_the_connection_string():
    recorder = Recorder({"history": (1, "", "Error: unable to instantiate SQL driver: bad DSN %s\n" % SQL)})
    with pytest.raises(HelmFailure) as caught:
        HelmCli("helm", target(), run=recorder).history("mystira-api")
    assert SQL not in caught.value.message and "********" in caught.value.message


def test_classify_unknown_text():
    assert classify_failure("") == "other"


def test_stored_release_shaped_entries_normalize_too():
    entry = {"name": "demo", "version": 2, "namespace": "x",
             "info": {"status": "superseded", "description": "Upgrade complete",
                      "last_deployed": "2026-12-06T13:00:00Z"},
             "chart": {"metadata": {"name": "demo", "version": "0.2.0", "appVersion": "2.0"}}}
    assert normalize_revision(entry) == {"revision": 2, "status": "superseded", "chart": "demo-0.2.0",
                                         "app_version": "2.0", "description": "Upgrade complete",
                                         "updated": "2026-12-06T13:00:00Z"}


# -- choosing a backend -----------------------------------------------------------------------


def test_auto_prefers_the_binary_then_the_library():
    assert isinstance(select_backend("auto", HelmTarget("x"), which=lambda name: "/usr/bin/helm",
                                     library_available=True), HelmCli)
    assert isinstance(select_backend("auto", HelmTarget("x"), which=lambda name: None, library_available=True),
                      HelmLibrary)


def test_missing_backends_say_what_to_install():
    with pytest.raises(RollbackError) as none_at_all:
        select_backend("auto", HelmTarget("x"), which=lambda name: None, library_available=False)
    assert "pip install helm-python-sdk" in none_at_all.value.message
    with pytest.raises(RollbackError) as no_binary:
        select_backend("cli", HelmTarget("x"), which=lambda name: None, library_available=True)
    assert "binary_path" in no_binary.value.message
    with pytest.raises(RollbackError) as bad_path:
        select_backend("cli", HelmTarget("x"), binary_path="/nonexistent/helm", which=lambda name: None)
    assert "/nonexistent/helm" in bad_path.value.message


def test_sql_driver_needs_a_connection_string():
    with pytest.raises(RollbackError) as caught:
        HelmTarget("x", "sql", None)
    assert "sql_connection_string" in caught.value.message


def test_target_from_module_options(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    made = HelmTarget.from_params({"release_namespace": "mystira", "storage_driver": None,
                                   "sql_connection_string": None, "kubeconfig": str(kubeconfig), "context": "c",
                                   "host": None, "api_key": TOKEN, "ca_cert": None, "validate_certs": False,
                                   "request_timeout": 30.0})
    assert made.storage_driver == "secret"
    assert made.kube == {"kubeconfig": str(kubeconfig), "context": "c", "apiserver": None, "token": TOKEN,
                         "ca_file": None, "insecure": True}


def test_a_kubeconfig_list_goes_through_the_environment():
    cli = HelmCli("helm", HelmTarget("x", kube={"kubeconfig": "/a/config:/b/config"}))
    assert "--kubeconfig" not in cli.global_args()
    assert cli.environment()["KUBECONFIG"] == "/a/config:/b/config"


def test_missing_kubeconfig_is_the_shared_clear_error(tmp_path):
    with pytest.raises(RollbackError) as caught:
        HelmTarget.from_params({"release_namespace": "x", "kubeconfig": str(tmp_path / "none"), "host": None,
                                "validate_certs": True, "request_timeout": 30.0})
    assert "No Kubernetes credentials" in caught.value.message


# -- reading a history ------------------------------------------------------------------------


def test_previous_deployed_skips_failed_revisions():
    history = ReleaseHistory("mystira-api", parse_history_json(RECORDED_HISTORY))
    assert history.deployed["revision"] == 4
    assert history.pending is None
    assert history.previous_deployed()["revision"] == 2


def test_after_a_rollback_the_previous_stays_the_rollback_target():
    revisions = parse_history_json(RECORDED_HISTORY)
    revisions[3]["status"] = "superseded"
    revisions.append(dict(revisions[1], revision=5, status="deployed", description="Rollback to 2"))
    assert ReleaseHistory("mystira-api", revisions).previous_deployed()["revision"] == 2


def test_changed_value_keys_names_paths_not_values():
    assert changed_value_keys({"image": {"tag": "v1", "repo": "r"}, "replicas": 2, "old": 1},
                              {"image": {"tag": "v2", "repo": "r"}, "replicas": 2, "new": {"x": 1}}) == [
        "image.tag", "new", "old"]


# -- the rollback decision against an in-memory Helm ------------------------------------------


class MemoryHelm(HelmBackend):
    """Revisions and values in memory; rollback does what Helm's Rollback action does to the records."""

    name = "memory"

    def __init__(self, revisions, values, fail_rollback=None):
        self.revisions = [dict(rev) for rev in revisions]
        self.stored_values = dict(values)
        self.fail_rollback = fail_rollback
        self.rollbacks = []

    def history(self, release):
        if not self.revisions:
            raise HelmFailure("not_found", "release: not found")
        return [dict(rev) for rev in self.revisions]

    def values(self, release, revision):
        return json.loads(json.dumps(self.stored_values[revision]))

    def rollback(self, release, revision, wait=True, timeout=300, cleanup_on_fail=False):
        self.rollbacks.append((revision, wait, timeout, cleanup_on_fail))
        source = next(rev for rev in self.revisions if rev["revision"] == revision)
        number = self.revisions[-1]["revision"] + 1
        self.stored_values[number] = self.stored_values[revision]
        made = dict(source, revision=number, description="Rollback to %s" % revision, status="deployed")
        if self.fail_rollback:
            made.update(status="failed", description="Release \"x\" failed: %s" % self.fail_rollback)
            self.revisions.append(made)
            raise HelmFailure("timeout", "helm rollback failed: release x failed: %s" % self.fail_rollback)
        for rev in self.revisions:
            if rev["status"] == "deployed":
                rev["status"] = "superseded"
        self.revisions.append(made)


def memory_helm(**kwargs):
    values = {1: {"image": {"tag": "1.0"}}, 2: {"image": {"tag": "1.1"}, "replicas": 2},
              3: {"image": {"tag": "1.2-rc"}}, 4: {"image": {"tag": "1.2"}, "replicas": 3}}
    return MemoryHelm(parse_history_json(RECORDED_HISTORY), values, **kwargs)


def test_check_mode_predicts_and_changes_nothing():
    helm = memory_helm()
    changed, result = rollback_release(helm, "mystira-api", target(), check_mode=True)
    assert changed and helm.rollbacks == []
    assert result["target_revision"] == 2 and result["new_revision"] is None
    assert result["before"]["revision"] == 4
    assert result["after"] == {"revision": 5, "chart": "mystira-api-1.4.2", "app_version": "2024.06.1",
                               "status": "deployed", "values_keys": ["image", "replicas"], "rolled_back_to": 2}
    assert result["values_changed_keys"] == ["image.tag", "replicas"]
    assert "revision: 4" in result["diff"]["before"] and "chart: mystira-api-1.4.2" in result["diff"]["after"]


def test_apply_then_again_is_unchanged():
    helm = memory_helm()
    changed, result = rollback_release(helm, "mystira-api", target(), timeout=90, cleanup_on_fail=True)
    assert changed and result["new_revision"] == 5 and helm.rollbacks == [(2, True, 90, True)]
    again_changed, again = rollback_release(helm, "mystira-api", target())
    assert not again_changed and again["target_revision"] == 2 and again["new_revision"] is None
    assert len(helm.rollbacks) == 1


def test_named_revision_already_running_is_unchanged():
    helm = memory_helm()
    changed, result = rollback_release(helm, "mystira-api", target(), revision=4)
    assert not changed and helm.rollbacks == [] and result["values_changed_keys"] == []


def test_same_chart_other_values_is_a_change():
    helm = memory_helm()
    helm.revisions[1]["chart"], helm.revisions[1]["app_version"] = "mystira-api-1.5.0", "2024.07.0"
    changed, result = rollback_release(helm, "mystira-api", target(), revision=2)
    assert changed and result["values_changed_keys"] == ["image.tag", "replicas"]


@pytest.mark.parametrize("revision, words", [(9, "Revision 9 is not in the history"), (0, "1 or more")])
def test_bad_revision_fails_before_any_change(revision, words):
    helm = memory_helm()
    with pytest.raises(RollbackError) as caught:
        rollback_release(helm, "mystira-api", target(), revision=revision)
    assert words in caught.value.message and helm.rollbacks == []


def test_unknown_release_names_namespace_and_driver():
    with pytest.raises(RollbackError) as caught:
        rollback_release(MemoryHelm([], {}), "nope", target())
    assert "Release nope not found (namespace mystira, storage driver sql)" in caught.value.message


def test_nothing_to_roll_back_to():
    helm = MemoryHelm(parse_history_json(RECORDED_HISTORY)[:1], {1: {}})
    helm.revisions[0]["status"] = "deployed"
    with pytest.raises(RollbackError) as caught:
        rollback_release(helm, "mystira-api", target())
    assert "no earlier deployed revision" in caught.value.message and helm.rollbacks == []


def pending_helm():
    helm = memory_helm()
    helm.revisions.append(dict(helm.revisions[3], revision=5, status="pending-upgrade",
                               chart="mystira-api-1.6.0", description="Preparing upgrade"))
    helm.stored_values[5] = {"image": {"tag": "1.3"}}
    return helm


def test_pending_is_refused_and_reported():
    helm = pending_helm()
    with pytest.raises(RollbackError) as caught:
        rollback_release(helm, "mystira-api", target())
    assert "stuck in pending-upgrade at revision 5" in caught.value.message
    assert "recover_pending: true" in caught.value.message
    assert caught.value.details["pending_revision"]["revision"] == 5
    assert helm.rollbacks == []


def test_recover_pending_rolls_back_to_the_deployed_revision():
    helm = pending_helm()
    info = history_info(helm, "mystira-api", target())
    assert info["pending"] and info["pending_revision"]["status"] == "pending-upgrade"
    assert info["deployed_revision"] == 4
    changed, result = rollback_release(helm, "mystira-api", target(), recover_pending=True)
    assert changed and result["target_revision"] == 4 and result["new_revision"] == 6
    assert result["recovered_pending"]["revision"] == 5
    assert history_info(helm, "mystira-api", target())["pending"] is False


def test_a_stuck_first_install_has_nothing_to_roll_back_to():
    helm = MemoryHelm([dict(parse_history_json(RECORDED_HISTORY)[0], status="pending-install")], {1: {}})
    with pytest.raises(RollbackError) as caught:
        rollback_release(helm, "mystira-api", target(), recover_pending=True)
    assert "nothing to roll back to" in caught.value.message and "helm uninstall" in caught.value.message
    assert helm.rollbacks == []


def test_a_rollback_that_never_becomes_ready_names_the_new_revision():
    helm = memory_helm(fail_rollback="context deadline exceeded")
    with pytest.raises(RollbackError) as caught:
        rollback_release(helm, "mystira-api", target(), timeout=5)
    assert "timed out" in caught.value.message
    assert caught.value.details["changed"] is True
    assert caught.value.details["new_revision"]["revision"] == 5
    assert caught.value.details["new_revision"]["status"] == "failed"
    assert caught.value.details["deployed_revision"] == 4


# -- the library backend: the worker's calls (with a recording double of helm_python's surface) ------------


class FakeHelmPython:
    """The parts of helm_python the worker uses: Config, the error classes, _native.call_status."""

    class HelmError(Exception):
        pass

    class HelmNotFoundError(HelmError):
        pass

    class HelmKubeError(HelmError):
        pass

    def __init__(self, history=None, error=None):
        self.calls = []
        fake = self

        class Config:
            def __init__(self, **options):
                fake.calls.append(("Config", options))

            def history(self, name):
                if error:
                    raise error
                return history

            def get_values(self, name, revision=None):
                fake.calls.append(("get_values", name, revision))
                return None

            def get_all(self, name, revision=None):
                fake.calls.append(("get_all", name, revision))
                return {"config": {"message": "x"}, "hooks": None, "summary": {},
                        "info": {"first_deployed": "2026-12-06T13:42:23.134388705Z",
                                 "last_deployed": "2026-12-06T13:42:23.134388705Z",
                                 "description": "Install complete", "status": "deployed"}}

            def rollback(self, name, **options):
                fake.calls.append(("rollback", name, options))

            def close(self):
                fake.calls.append(("close",))

            def _raw(self):
                return 7

        class Native:
            @staticmethod
            def call_status(function, handle, name, options):
                fake.calls.append((function, handle, name, json.loads(options)))

        self.Config = Config
        self._native = Native

    @staticmethod
    def helm_sdk_version():
        return "v4.2.3"


# Config.history() of helm-python-sdk 0.2.2, as recorded against the sandbox.
LIBRARY_HISTORY = [{"name": "demo", "namespace": "default", "revision": 1, "status": "deployed",
                    "deployed_at": "2026-12-06T13:42:23Z", "chart_name": "demo", "chart_version": "0.1.0",
                    "app_version": "1.0"}]


def worker():
    namespace = {"__name__": "helm_worker"}
    exec(LIBRARY_WORKER, namespace)  # pylint: disable=exec-used
    return namespace


def serve(fake, requests):
    answers = io.StringIO()
    worker()["serve"](fake, [json.dumps(request) + "\n" for request in requests], answers)
    return [json.loads(line) for line in answers.getvalue().splitlines()]


def test_worker_history_adds_descriptions_and_values_from_the_stored_records():
    fake = FakeHelmPython(history=LIBRARY_HISTORY)
    answers = serve(fake, [{"op": "config", "options": {"namespace": "x"}}, {"op": "history", "release": "demo"}])
    assert answers[0] == {"ok": "v4.2.3"}
    assert answers[1]["ok"][0]["description"] == "Install complete"
    assert answers[1]["ok"][0]["values"] == {"message": "x"}
    assert normalize_revision(answers[1]["ok"][0]) == {
        "revision": 1, "status": "deployed", "chart": "demo-0.1.0", "app_version": "1.0",
        "description": "Install complete", "updated": "2026-12-06T13:42:23.134388705Z"}
    assert fake.calls[-1] == ("close",)


def test_worker_rollback_options_and_cleanup_on_fail_through_the_c_abi():
    fake = FakeHelmPython()
    serve(fake, [{"op": "config", "options": {}},
                 {"op": "rollback", "release": "demo", "options": {"version": 2, "timeout_seconds": 45,
                                                                   "wait": "watcher"}},
                 {"op": "rollback", "release": "demo", "options": {"version": 3, "timeout_seconds": 10,
                                                                   "cleanup_on_fail": True}}])
    assert ("rollback", "demo", {"version": 2, "timeout": 45, "wait": "watcher"}) in fake.calls
    assert ("helm_rollback", 7, "demo", {"version": 3, "timeout_seconds": 10, "cleanup_on_fail": True}) in fake.calls


@pytest.mark.parametrize("error, kind", [
    (FakeHelmPython.HelmNotFoundError("release: not found"), "not_found"),
    (FakeHelmPython.HelmKubeError("unable to instantiate SQL driver: password authentication failed"), "storage"),
    (FakeHelmPython.HelmKubeError("kubernetes cluster unreachable: connection refused"), None),
])
def test_worker_errors_carry_their_kind(error, kind):
    answers = serve(FakeHelmPython(error=error), [{"op": "config", "options": {}}, {"op": "history", "release": "x"}])
    assert answers[1]["error"]["kind"] == kind


# -- the library backend: the child process, with a stand-in helm_python package on PYTHONPATH -----------

FAKE_PACKAGE = r"""
import json, os, sys, time

class HelmError(Exception):
    pass

class HelmNotFoundError(HelmError):
    pass

class HelmKubeError(HelmError):
    pass

def helm_sdk_version():
    return "v4.2.3"

class Config:
    def __init__(self, **options):
        self.options = options
        # What the Go runtime would see: the environment the process started with.
        with open(os.environ["FAKE_HELM_RECORD"], "w") as handle:
            json.dump({"options": options, "dsn": os.environ.get("HELM_DRIVER_SQL_CONNECTION_STRING")}, handle)
        print("chatter from the Go code on stdout")

    def history(self, name):
        if name == "missing":
            raise HelmNotFoundError("release: not found")
        if name == "crash":
            sys.stderr.write("panic: runtime error\n")
            os._exit(2)
        return [{"revision": 1, "status": "deployed", "chart_name": "demo", "chart_version": "0.1.0",
                 "app_version": "1.0", "deployed_at": "2026-12-06T13:42:23Z"}]

    def get_all(self, name, revision=None):
        return {"config": {"replicas": 2}, "info": {"description": "Install complete",
                                                    "last_deployed": "2026-12-06T13:42:23.1Z"}}

    def rollback(self, name, version=None, timeout=None, wait=None):
        time.sleep(5)

    def close(self):
        pass
"""


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    package = tmp_path / "helm_python"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_PACKAGE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("FAKE_HELM_RECORD", str(tmp_path / "record.json"))
    monkeypatch.setenv("HELM_DRIVER_SQL_CONNECTION_STRING", "the-one-from-the-controller")
    return tmp_path / "record.json"


def test_library_process_gets_the_connection_string_at_start_and_options_over_the_pipe(fake_library):
    kube = {"kubeconfig": "/k/config", "context": "prod", "token": TOKEN}
    library = HelmLibrary(HelmTarget("mystira", "sql", SQL, kube))
    try:
        revisions = library.history("demo")
        assert revisions[0]["description"] == "Install complete"
        assert library.values("demo", 1) == {"replicas": 2}
        assert library.helm_version == "v4.2.3"
        record = json.loads(fake_library.read_text())
        assert record["dsn"] == SQL
        assert record["options"] == {"kubeconfig_path": "/k/config", "kube_context": "prod", "kube_apiserver": None,
                                     "kube_token": TOKEN, "kube_ca_file": None,
                                     "kube_insecure_skip_tls_verify": False, "namespace": "mystira",
                                     "storage_driver": "sql"}
    finally:
        library.close()


def test_library_process_errors_crash_and_timeout(fake_library):
    library = HelmLibrary(HelmTarget("mystira", "sql", SQL), timeout_margin=0)
    try:
        with pytest.raises(HelmFailure) as missing:
            library.history("missing")
        assert missing.value.kind == "not_found"
        with pytest.raises(HelmFailure) as slow:
            library.rollback("demo", 1, timeout=1)
        assert slow.value.kind == "timeout" and "did not answer within 1s" in slow.value.message
        with pytest.raises(HelmFailure) as crashed:
            library.history("crash")
        assert "process ended" in crashed.value.message and "panic: runtime error" in crashed.value.message
    finally:
        library.close()


def test_cli_backend_through_the_whole_rollback_with_recorded_outputs():
    """history -> values of both revisions -> rollback -> history again, as the binary answers them."""
    after = json.loads(RECORDED_HISTORY)
    after[3]["status"] = "superseded"
    after.append({"revision": 5, "updated": "2026-12-05T09:00:00Z", "status": "deployed",
                  "chart": "mystira-api-1.4.2", "app_version": "2024.06.1", "description": "Rollback to 2"})
    histories = [RECORDED_HISTORY, json.dumps(after)]
    values = {"2": '{"image":{"tag":"1.1"}}\n', "4": '{"image":{"tag":"1.2"}}\n'}
    recorder = Recorder({
        "history": lambda argv: (0, histories.pop(0), ""),
        "get values": lambda argv: (0, values[argv[argv.index("--revision") + 1]], ""),
        "rollback": (0, "Rollback was a success! Happy Helming!\n", ""),
    })
    cli = HelmCli("helm", target(), run=recorder)
    changed, result = rollback_release(cli, "mystira-api", target(), timeout=120)
    assert changed and result["new_revision"] == 5 and result["values_changed_keys"] == ["image.tag"]
    assert [call[0][1] for call in recorder.calls] == ["history", "get", "get", "rollback", "history"]
    assert recorder.calls[3][0][:6] == ["helm", "rollback", "mystira-api", "2", "--timeout", "120s"]
