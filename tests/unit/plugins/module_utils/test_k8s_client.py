# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_client: where the cluster comes from, error mapping and retries, the plain-JSON client."""

from __future__ import annotations

import json
import os

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    KubernetesError,
    KubernetesRest,
    KubernetesSettings,
    k8s_call,
    label_selector_string,
    status_of,
)

KUBECONFIG = """
apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: prod
  cluster: {server: "https://prod.example.com:6443", insecure-skip-tls-verify: true}
- name: staging
  cluster: {server: "https://staging.example.com:6443", insecure-skip-tls-verify: true}
users:
- name: deployer
  user: {token: kubeconfig-token}
contexts:
- name: production
  context: {cluster: prod, user: deployer, namespace: mystira}
- name: staging
  context: {cluster: staging, user: deployer}
"""


@pytest.fixture(name="kubeconfig")
def kubeconfig_fixture(tmp_path):
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    return str(path)


def status_error(code, reason, message, headers=None):
    error = ApiException(status=code, reason=reason)
    error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                             "reason": reason, "code": code})
    error.headers = headers or {}
    return error


class Flaky:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors, answer="ok"):
        self.errors = list(errors)
        self.calls = 0
        self.answer = answer

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


# ------------------------------------------------------------------------ settings
def test_argspec_matches_kubernetes_core_names_and_variables():
    assert set(K8S_AUTH_ARGSPEC) == {"kubeconfig", "context", "host", "api_key", "ca_cert", "validate_certs", "request_timeout"}
    assert K8S_AUTH_ARGSPEC["api_key"]["no_log"] is True
    assert K8S_AUTH_ARGSPEC["validate_certs"]["fallback"][1] == ["K8S_AUTH_VERIFY_SSL"]
    assert K8S_AUTH_ARGSPEC["ca_cert"]["fallback"][1] == ["K8S_AUTH_SSL_CA_CERT"]


def test_kubeconfig_option_and_context(kubeconfig):
    settings = KubernetesSettings(kubeconfig=kubeconfig, context="production", environ={})
    assert settings.source == "kubeconfig"
    assert settings.describe() == {"server": "https://prod.example.com:6443", "context": "production",
                                   "source": "kubeconfig", "kubeconfig": kubeconfig}
    configuration = settings.configuration()
    assert configuration.api_key["BearerToken"] == "Bearer kubeconfig-token"
    assert configuration.retries is False  # k8s_call is the one place that retries


def test_current_context_is_the_default(kubeconfig):
    settings = KubernetesSettings(environ={"KUBECONFIG": kubeconfig})
    assert settings.describe()["server"] == "https://staging.example.com:6443"
    assert settings.active_context() == "staging"


def test_kubeconfig_list_keeps_existing_files(kubeconfig, tmp_path):
    missing = str(tmp_path / "missing")
    settings = KubernetesSettings(environ={"KUBECONFIG": missing + os.pathsep + kubeconfig})
    assert settings.kubeconfig == kubeconfig


def test_missing_kubeconfig_says_what_to_set(tmp_path):
    with pytest.raises(RollbackError, match="No Kubernetes credentials.*does not exist.*K8S_AUTH_HOST"):
        KubernetesSettings(kubeconfig=str(tmp_path / "nope"), environ={})


def test_unknown_context_lists_the_known_ones(kubeconfig):
    with pytest.raises(RollbackError, match="Context 'dev' is not in the kubeconfig .* \\(it has: production, staging\\)"):
        KubernetesSettings(kubeconfig=kubeconfig, context="dev", environ={}).api_client()


def test_host_mode_reads_no_kubeconfig_and_overrides_apply(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here")
    settings = KubernetesSettings(host="https://api.example.com/", api_key="secret-token", ca_cert=str(ca),
                                  environ={"KUBECONFIG": "/does/not/exist"})
    configuration = settings.configuration()
    assert settings.source == "host" and configuration.host == "https://api.example.com"
    assert configuration.api_key["BearerToken"] == "Bearer secret-token"
    assert configuration.ssl_ca_cert == str(ca)
    assert "secret-token" not in json.dumps(settings.describe())
    view = settings.kubeconfig_view()
    assert view["kubeconfig"] is None and view["server"] == "https://api.example.com" and view["api_key"] == "secret-token"


def test_api_key_replaces_the_kubeconfig_token(kubeconfig):
    settings = KubernetesSettings(kubeconfig=kubeconfig, api_key="explicit", validate_certs=False, environ={})
    configuration = settings.configuration()
    assert configuration.get_api_key_with_prefix("BearerToken") == "Bearer explicit"
    assert configuration.verify_ssl is False


def test_in_cluster_when_nothing_else_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = KubernetesSettings(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert settings.source == "in-cluster"
    with pytest.raises(RollbackError, match="service account"):
        settings.configuration()


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(RollbackError, match="host must be the API server URL"):
        KubernetesSettings(host="api.example.com")
    with pytest.raises(RollbackError, match="ca_cert .* is not a file"):
        KubernetesSettings(host="https://api.example.com", ca_cert=str(tmp_path / "none.pem"))


def test_write_kubeconfig_reuses_the_users_file_or_writes_a_private_one(kubeconfig, tmp_path):
    assert KubernetesSettings(kubeconfig=kubeconfig, environ={}).write_kubeconfig() == kubeconfig
    settings = KubernetesSettings(host="https://api.example.com", api_key="tok", validate_certs=False)
    path = settings.write_kubeconfig(str(tmp_path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    document = json.loads(open(path).read())
    assert document["clusters"][0]["cluster"] == {"server": "https://api.example.com", "insecure-skip-tls-verify": True}
    assert document["users"][0]["user"] == {"token": "tok"}
    rebuilt = KubernetesSettings(kubeconfig=path, environ={})
    assert rebuilt.describe()["server"] == "https://api.example.com"
    assert rebuilt.active_context() == "sre-rollback"


def test_write_kubeconfig_of_a_merged_list_keeps_the_context_name(kubeconfig, tmp_path):
    other = tmp_path / "other"
    other.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    settings = KubernetesSettings(context="production", environ={"KUBECONFIG": kubeconfig + os.pathsep + str(other)})
    path = settings.write_kubeconfig(str(tmp_path))
    rebuilt = KubernetesSettings(kubeconfig=path, context=settings.kubeconfig_view()["context"], environ={})
    assert rebuilt.describe()["server"] == "https://prod.example.com:6443"


def test_api_client_is_per_pool_size_and_leaves_the_global_default_alone(kubeconfig):
    from kubernetes.client import Configuration
    before = Configuration.get_default_copy().host
    settings = KubernetesSettings(kubeconfig=kubeconfig, environ={})
    client = settings.api_client(pool_size=25)
    assert client is settings.api_client(pool_size=25)
    assert client.configuration.connection_pool_maxsize == 25
    assert Configuration.get_default_copy().host == before
    settings.close()


# ----------------------------------------------------------------------- k8s_call
def test_status_body_becomes_the_message():
    error = status_error(404, "NotFound", 'deployments.apps "api" not found')
    with pytest.raises(KubernetesError) as raised:
        k8s_call(Flaky(error), what="read deployment ns/api", server="https://k8s")
    assert raised.value.message == 'Kubernetes API: cannot read deployment ns/api: deployments.apps "api" not found (NotFound, HTTP 404).'
    assert raised.value.status == 404 and raised.value.reason == "NotFound"


@pytest.mark.parametrize("code, reason", [(400, "BadRequest"), (404, "NotFound"), (409, "Conflict"), (422, "Invalid")])
def test_client_errors_are_never_retried(code, reason):
    function = Flaky(status_error(code, reason, "no"))
    with pytest.raises(KubernetesError):
        k8s_call(function, sleep=lambda seconds: None)
    assert function.calls == 1


def test_throttling_waits_for_retry_after_then_succeeds():
    slept = []
    function = Flaky(status_error(429, "TooManyRequests", "slow down", {"Retry-After": "2"}),
                     status_error(503, "ServiceUnavailable", "busy"))
    assert k8s_call(function, sleep=slept.append) == "ok"
    assert function.calls == 3 and slept[0] == 2.0 and 0 < slept[1] < 1


def test_retry_after_is_capped():
    slept = []
    k8s_call(Flaky(status_error(429, "TooManyRequests", "x", {"Retry-After": "3600"})), sleep=slept.append)
    assert slept == [20.0]


def test_server_errors_give_up_after_the_retries():
    function = Flaky(*[status_error(500, "InternalError", "etcd timeout")] * 10)
    with pytest.raises(KubernetesError, match="etcd timeout .*still failing after 3 attempts"):
        k8s_call(function, retries=2, sleep=lambda seconds: None)
    assert function.calls == 3


def test_unreachable_api_names_the_server():
    refused = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    function = Flaky(*[refused] * 10)
    with pytest.raises(KubernetesError) as raised:
        k8s_call(function, what="list deployments", server="https://10.0.0.1:6443", retries=1, sleep=lambda seconds: None)
    assert raised.value.message.startswith("cannot reach the Kubernetes API at https://10.0.0.1:6443: ")
    assert "Connection refused" in raised.value.message and raised.value.status is None
    assert function.calls == 2


def test_a_lost_answer_is_not_resent_for_a_non_idempotent_call():
    lost = urllib3.exceptions.ProtocolError("Connection aborted.")
    function = Flaky(lost)
    with pytest.raises(KubernetesError, match="cannot reach"):
        k8s_call(function, idempotent=False, sleep=lambda seconds: None)
    assert function.calls == 1
    assert k8s_call(Flaky(lost), sleep=lambda seconds: None) == "ok"


def test_tls_failure_is_not_retried_and_says_what_to_do():
    function = Flaky(urllib3.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    with pytest.raises(KubernetesError, match="TLS verification failed.*ca_cert"):
        k8s_call(function, sleep=lambda seconds: None)
    assert function.calls == 1


def test_tls_failure_wrapped_by_the_client_as_status_zero():
    wrapped = ApiException(status=0, reason="SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    function = Flaky(wrapped)
    with pytest.raises(KubernetesError) as raised:
        k8s_call(function, server="https://k8s", sleep=lambda seconds: None)
    assert raised.value.message.startswith("cannot reach the Kubernetes API at https://k8s: TLS verification failed ([SSL")
    assert function.calls == 1


def test_forbidden_carries_an_rbac_hint():
    with pytest.raises(KubernetesError, match="RBAC"):
        k8s_call(Flaky(status_error(403, "Forbidden", 'user "ci" cannot update resource "deployments"')))


def test_status_of_plain_text_body():
    error = ApiException(status=502, reason="Bad Gateway")
    error.body = "<html>bad gateway</html>"
    assert status_of(error) == (502, "Bad Gateway", "<html>bad gateway</html>")


# ------------------------------------------------------------------- KubernetesRest
class FakeResponse:
    def __init__(self, status, body, headers=None):
        self.status = status
        self.reason = "reason"
        self.data = None
        self._body = json.dumps(body).encode() if body is not None else b""
        self.headers = headers or {}

    def read(self):
        self.data = self._body
        return self.data


class FakeApiClient:
    """Answers from a list of (status, body) and records what was sent."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []
        self.configuration = type("Configuration", (), {"host": "https://k8s.test"})()

    def param_serialize(self, method, resource_path, query_params=None, header_params=None, body=None, auth_settings=None):
        return method, self.configuration.host + resource_path, query_params, header_params, body

    def call_api(self, method, url, query, headers, body, _request_timeout=None):
        self.sent.append({"method": method, "url": url, "query": query, "headers": headers, "body": body,
                          "timeout": _request_timeout})
        status, answer = self.answers.pop(0)
        return FakeResponse(status, answer)


def test_list_follows_continue_tokens_and_drops_empty_query_values():
    client = FakeApiClient([(200, {"items": [{"n": 1}], "metadata": {"continue": "abc"}}),
                            (200, {"items": [{"n": 2}], "metadata": {"resourceVersion": "77"}})])
    rest = KubernetesRest(client, request_timeout=7)
    items, version = rest.list("/apis/apps/v1/namespaces/ns/replicasets", label_selector="app=api")
    assert items == [{"n": 1}, {"n": 2}] and version == "77"
    assert client.sent[0]["query"] == [("labelSelector", "app=api"), ("limit", 500)]
    assert ("continue", "abc") in client.sent[1]["query"]
    assert client.sent[0]["timeout"] == 7 and rest.calls == 2


def test_patch_content_types_and_error_status():
    conflict = {"kind": "Status", "reason": "Conflict", "code": 409, "message": "the object has been modified"}
    client = FakeApiClient([(200, {"ok": True}), (409, conflict)])
    rest = KubernetesRest(client, sleep=lambda seconds: None)
    rest.patch("/x", {"a": 1}, patch_type="strategic")
    assert client.sent[0]["headers"]["Content-Type"] == "application/strategic-merge-patch+json"
    with pytest.raises(KubernetesError) as raised:
        rest.put("/x", {"a": 1}, what="update deployment ns/api")
    assert raised.value.status == 409
    assert "cannot update deployment ns/api: the object has been modified (Conflict, HTTP 409)" in raised.value.message


def test_label_selector_string():
    selector = {"matchLabels": {"b": "2", "a": "1"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                     {"key": "env", "operator": "NotIn", "values": ["dev"]},
                                     {"key": "canary", "operator": "DoesNotExist"}, {"key": "team", "operator": "Exists"}]}
    assert label_selector_string(selector) == "a=1,b=2,tier in (web,api),env notin (dev),!canary,team"
    assert label_selector_string(None) == ""


# ------------------------------------------------------- the kubeconfig without the client
def write(path, text):
    path.write_text(text)
    return str(path)


def test_fast_path_reads_the_kubeconfig_without_importing_the_client(kubeconfig):
    settings = KubernetesSettings(kubeconfig=kubeconfig, context="production", environ={})
    spec = settings.connection_spec()
    assert spec.server == "https://prod.example.com:6443" and spec.verify is False
    assert spec.authorization == "Bearer kubeconfig-token" and spec.context == "production"
    assert settings.describe()["server"] == "https://prod.example.com:6443"
    assert KubernetesSettings(kubeconfig=kubeconfig, environ={}).connection_spec().server == "https://staging.example.com:6443"


def test_fast_path_unknown_context_lists_the_known_ones(kubeconfig):
    with pytest.raises(RollbackError, match="Context 'dev' is not in the kubeconfig .* \\(it has: production, staging\\)"):
        KubernetesSettings(kubeconfig=kubeconfig, context="dev", environ={}).rest()


def test_merged_list_first_definition_wins_and_the_last_current_context(tmp_path):
    # The kubernetes client's KubeConfigMerger: names from the first file that has them;
    # current-context overwritten by every file that sets one.
    first = write(tmp_path / "first", """
current-context: a
clusters: [{name: c, cluster: {server: "https://first:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: first-token}}]
contexts: [{name: a, context: {cluster: c, user: u}}]
""")
    second = write(tmp_path / "second", """
current-context: b
clusters: [{name: c, cluster: {server: "https://second:6443"}}]
users: [{name: u, user: {token: second-token}}]
contexts: [{name: b, context: {cluster: c, user: u}}, {name: a, context: {cluster: none, user: none}}]
""")
    settings = KubernetesSettings(environ={"KUBECONFIG": first + os.pathsep + second})
    spec = settings.connection_spec()
    assert settings.active_context() == "b"
    assert spec.server == "https://first:6443" and spec.authorization == "Bearer first-token"


def test_relative_files_are_relative_to_the_kubeconfig_and_data_wins_over_files(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("CA")
    (tmp_path / "certs" / "client.pem").write_text("CERT")
    (tmp_path / "token").write_text("file-token\n")
    path = write(tmp_path / "config", """
current-context: x
clusters: [{name: c, cluster: {server: "https://k8s:6443/", certificate-authority: certs/ca.pem, tls-server-name: api.internal}}]
users: [{name: u, user: {tokenFile: token, client-certificate: certs/client.pem, client-key-data: S0VZ}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
""")
    spec = KubernetesSettings(kubeconfig=path, environ={}).connection_spec()
    assert spec.server == "https://k8s:6443" and spec.tls_server_name == "api.internal"
    assert spec.ca_file == str(tmp_path / "certs" / "ca.pem") and spec.ca_data is None
    assert spec.cert_file == str(tmp_path / "certs" / "client.pem")
    assert spec.key_file is None and spec.key_data == b"KEY"
    assert spec.authorization == "Bearer file-token"


def test_basic_auth_and_a_plain_http_server(tmp_path):
    path = write(tmp_path / "config", """
current-context: x
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080", certificate-authority: /nowhere.pem}}]
users: [{name: u, user: {username: admin, password: "s3cret"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
""")
    spec = KubernetesSettings(kubeconfig=path, environ={}).connection_spec()
    # The CA is used (and must exist) only for an https server, as in the client.
    assert spec.ca_file is None and spec.authorization == "Basic YWRtaW46czNjcmV0"


@pytest.mark.parametrize("user, cluster_extra", [
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}, {}),
    ({"auth-provider": {"name": "oidc", "config": {}}, "token": "ignored"}, {}),
    ({"token": "t"}, {"proxy-url": "http://proxy:3128"}),
])
def test_plugins_and_proxies_fall_back_to_the_kubernetes_client(tmp_path, user, cluster_extra):
    cluster = dict({"server": "https://k8s:6443", "insecure-skip-tls-verify": True}, **cluster_extra)
    document = {"current-context": "x", "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}], "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}
    path = write(tmp_path / "config", json.dumps(document))
    settings = KubernetesSettings(kubeconfig=path, environ={})
    assert settings.connection_spec() is None
    if "proxy-url" not in cluster_extra:
        # An explicit api_key replaces the plugin: the fast path again.
        with_key = KubernetesSettings(kubeconfig=path, api_key="explicit", environ={}).connection_spec()
        assert with_key.authorization == "Bearer explicit" and with_key.server == "https://k8s:6443"


def test_a_token_before_exec_needs_no_plugin(tmp_path):
    document = {"current-context": "x", "clusters": [{"name": "c", "cluster": {"server": "https://k8s"}}],
                "users": [{"name": "u", "user": {"token": "t", "exec": {"command": "never-run"}}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}
    spec = KubernetesSettings(kubeconfig=write(tmp_path / "config", json.dumps(document)), environ={}).connection_spec()
    assert spec.authorization == "Bearer t"


def test_options_override_the_kubeconfig_on_the_fast_path(kubeconfig, tmp_path):
    ca = write(tmp_path / "ca.pem", "CA")
    spec = KubernetesSettings(kubeconfig=kubeconfig, api_key="explicit", ca_cert=ca, environ={}).connection_spec()
    assert spec.authorization == "Bearer explicit" and spec.ca_file == ca
    host = KubernetesSettings(host="https://api.example.com/", api_key="k", validate_certs=False).connection_spec()
    assert host.server == "https://api.example.com" and host.verify is False and host.authorization == "Bearer k"


def test_in_cluster_uses_the_kubernetes_client(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert KubernetesSettings(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).connection_spec() is None


def test_broken_kubeconfig_is_a_clear_error(tmp_path):
    path = write(tmp_path / "config", "clusters: [\n")
    with pytest.raises(RollbackError, match="Cannot read the kubeconfig .*config"):
        KubernetesSettings(kubeconfig=path, environ={}).rest()
    empty = write(tmp_path / "empty", "")
    with pytest.raises(RollbackError, match="empty"):
        KubernetesSettings(kubeconfig=empty, environ={}).rest()


def test_the_fast_path_agrees_with_the_clients_loader(tmp_path):
    # The same file through both loaders: server, TLS switches and the Authorization header agree.
    (tmp_path / "ca.pem").write_text("CA")
    path = write(tmp_path / "config", """
current-context: x
clusters: [{name: c, cluster: {server: "https://k8s:6443", certificate-authority: ca.pem, tls-server-name: api.internal}}]
users: [{name: u, user: {token: tok}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
""")
    settings = KubernetesSettings(kubeconfig=path, environ={})
    spec, configuration = settings.connection_spec(), settings.configuration()
    assert spec.server == configuration.host and spec.ca_file == configuration.ssl_ca_cert
    assert spec.tls_server_name == configuration.tls_server_name and spec.verify == configuration.verify_ssl
    assert spec.authorization == configuration.get_api_key_with_prefix("BearerToken")


# ----------------------------------------------------------------------- HttpTransport
@pytest.fixture(name="api_server")
def api_server_fixture():
    """A local plain-HTTP server playing a few API answers; records each request and connection."""
    import http.server
    import threading

    state = {"requests": [], "connections": set(), "answers": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state["requests"].append({"method": self.command, "path": self.path, "body": body,
                                      "headers": dict(self.headers)})
            state["connections"].add(self.client_address)
            status, payload, headers = state["answers"].pop(0) if state["answers"] else (200, {"ok": True}, {})
            if isinstance(payload, list):  # a watch: one JSON line per event, then the end of the stream
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in payload:
                    line = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.write(b"0\r\n\r\n")
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = "http://127.0.0.1:%d" % server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()


def fast_rest(url, **kwargs):
    settings = KubernetesSettings(host=url, api_key="tok")
    return settings, settings.rest(**kwargs)


def test_transport_sends_json_with_the_token_on_one_kept_alive_connection(api_server):
    api_server["answers"] = [(200, {"items": [{"n": 1}], "metadata": {"resourceVersion": "9"}}, {}),
                             (200, {"written": True}, {})]
    settings, rest = fast_rest(api_server["url"])
    items, version = rest.list("/apis/apps/v1/namespaces/ns/replicasets", label_selector="app=api")
    assert items == [{"n": 1}] and version == "9"
    assert rest.put("/apis/apps/v1/namespaces/ns/deployments/api", {"spec": {}}) == {"written": True}
    first, second = api_server["requests"]
    assert first["path"] == "/apis/apps/v1/namespaces/ns/replicasets?labelSelector=app%3Dapi&limit=500"
    assert first["headers"]["Authorization"] == "Bearer tok" and first["headers"]["Accept"] == "application/json"
    assert json.loads(second["body"]) == {"spec": {}} and second["headers"]["Content-Type"] == "application/json"
    assert len(api_server["connections"]) == 1  # keep-alive: the second request reused the connection
    assert rest.calls == 2
    settings.close()


def test_transport_errors_keep_the_status_message_and_retries(api_server):
    conflict = {"kind": "Status", "reason": "Conflict", "code": 409, "message": "the object has been modified"}
    api_server["answers"] = [(429, {"kind": "Status", "reason": "TooManyRequests", "code": 429, "message": "slow"},
                              {"Retry-After": "1"}),
                             (500, {"kind": "Status", "reason": "InternalError", "code": 500, "message": "etcd"}, {}),
                             (200, {"ok": True}, {}), (409, conflict, {})]
    slept = []
    settings = KubernetesSettings(host=api_server["url"], api_key="tok")
    rest = KubernetesRest(settings.rest().transport, sleep=slept.append)
    assert rest.get("/x") == {"ok": True}
    assert slept[0] == 1.0 and len(slept) == 2
    with pytest.raises(KubernetesError) as raised:
        rest.put("/x", {}, what="update deployment ns/api")
    assert raised.value.status == 409 and len(api_server["requests"]) == 4
    assert raised.value.message == ("Kubernetes API: cannot update deployment ns/api: the object has been modified "
                                    "(Conflict, HTTP 409).")


def test_transport_watch_streams_events(api_server):
    events = [{"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "5"}}},
              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}]
    api_server["answers"] = [(200, events, {})]
    _settings, rest = fast_rest(api_server["url"])
    assert rest.can_watch
    assert list(rest.watch("/apis/apps/v1/namespaces/ns/deployments", {"resourceVersion": "4"}, timeout=5)) == events
    assert api_server["requests"][0]["path"] == "/apis/apps/v1/namespaces/ns/deployments?resourceVersion=4&watch=1"


def test_transport_that_cannot_connect_names_the_server():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = KubernetesSettings(host="http://127.0.0.1:%d" % port)
    rest = KubernetesRest(settings.rest().transport, retries=1, sleep=lambda seconds: None)
    with pytest.raises(KubernetesError) as raised:
        rest.get("/version", what="read the version")
    assert raised.value.message.startswith("cannot reach the Kubernetes API at http://127.0.0.1:%d: " % port)
    assert "ConnectionRefusedError" in raised.value.message and raised.value.message.endswith("while trying to read the version.")


def test_transport_reconnects_when_the_server_closed_an_idle_connection(api_server):
    _settings, rest = fast_rest(api_server["url"])
    rest.get("/a")
    # The server ends the idle keep-alive connection (an idle timeout): the next request must not fail.
    for connection in rest.transport._idle:
        connection.sock.shutdown(2)
    assert rest.get("/b") == {"ok": True}
    assert len(api_server["requests"]) == 2


def test_certificate_data_from_the_kubeconfig_loads_into_tls(tmp_path, monkeypatch):
    # A self-signed certificate as a kubeconfig carries it: base64 PEM in *-data fields.
    import base64
    import datetime
    import tempfile
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deployer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    document = {"current-context": "x",
                "clusters": [{"name": "c", "cluster": {"server": "https://k8s:6443",
                                                       "certificate-authority-data": base64.b64encode(cert_pem).decode()}}],
                "users": [{"name": "u", "user": {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                                 "client-key-data": base64.b64encode(key_pem).decode()}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}
    spec = KubernetesSettings(kubeconfig=write(tmp_path / "config", json.dumps(document)), environ={}).connection_spec()
    assert spec.cert_data == cert_pem and spec.key_data == key_pem and spec.ca_data == cert_pem
    assert spec.authorization is None
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    context = spec.ssl_context()
    assert context.cert_store_stats()["x509_ca"] == 1
    assert list(private.iterdir()) == []  # the private copies of the key were removed
