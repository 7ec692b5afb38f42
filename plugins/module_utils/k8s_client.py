# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kubernetes connection settings, the API client and error handling.

Every Kubernetes module of the collection shares these options (doc fragment
``sre.rollback.kubernetes``) with the names and environment variables of
kubernetes.core, so an AWX "OpenShift or Kubernetes API Bearer Token"
credential or a user's kubeconfig works unchanged.

- :class:`KubernetesSettings` resolves the options once: a kubeconfig (the
  ``kubeconfig`` option, ``K8S_AUTH_KUBECONFIG``, ``KUBECONFIG`` - a list of
  files is merged as kubectl does - or ``~/.kube/config``), or ``host`` with
  ``api_key``, or the in-cluster service account. ``api_client()`` builds a
  ``kubernetes.client.ApiClient`` on its own ``Configuration`` (the library's
  global default is never touched), so threads of one module share it and its
  connection pool.
- :func:`k8s_call` runs one API call: an ``ApiException`` becomes a
  :class:`KubernetesError` quoting the API's ``Status`` (message, reason,
  code); 429 (honouring ``Retry-After``), 5xx and connection errors are retried
  a bounded number of times with backoff; other 4xx answers never are.
- :class:`KubernetesRest` sends plain JSON without the typed models, for
  callers that read and write whole objects (a Deployment read, changed and
  PUT back keeps every field, also those newer than the client's models).

The fast path. Importing the ``kubernetes`` package costs about half a second
of CPU per module run (it imports every model and auth plugin), more than the
rest of a one-object rollback. So ``rest()`` uses :class:`HttpTransport`
(``http.client`` + ``ssl``, keep-alive connections, a watch as a line stream)
with a :class:`ConnectionSpec` from :class:`KubeconfigFile`, which reads the
kubeconfig by the client's own loader rules, and imports nothing of the
client. Only what runs code of the client - ``exec`` and ``auth-provider``
plugins (token refresh), a ``proxy-url``, the in-cluster service account -
goes through a ``kubernetes.client.ApiClient`` as before (``api_client()``).
Both paths raise the same errors through :func:`k8s_call`.
"""

from __future__ import annotations

import base64
import copy
import http.client
import importlib.util
import json
import os
import random
import select
import socket
import ssl
import stat
import sys
import tempfile
import threading
import time
import traceback
import types
import urllib.parse

from ansible.module_utils.basic import env_fallback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

# The kubernetes package costs about half a second of CPU to import (its package
# imports every auth plugin), so it is imported on first use: a module that only
# needs kubeconfig_view() (the Helm modules) never pays for it.
try:
    KUBERNETES_IMPORT_ERROR = None if importlib.util.find_spec("kubernetes") else "No module named 'kubernetes'"
except (ImportError, ValueError):  # pragma: no cover - a broken meta path
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
_LIBRARY = {}


def kube():
    """The kubernetes client pieces this file uses, imported once (a namespace of classes and modules)."""
    if not _LIBRARY:
        try:
            import urllib3
            from kubernetes.client import ApiClient, Configuration
            from kubernetes.client.exceptions import ApiException
            from kubernetes.config import incluster_config, kube_config
            from kubernetes.config.config_exception import ConfigException
        except ImportError:
            raise RollbackError("The kubernetes Python client is needed: pip install kubernetes",
                                exception=traceback.format_exc()) from None
        _LIBRARY.update(urllib3=urllib3, ApiClient=ApiClient, Configuration=Configuration, ApiException=ApiException,
                        incluster_config=incluster_config, kube_config=kube_config, ConfigException=ConfigException)
    return types.SimpleNamespace(**_LIBRARY)


DEFAULT_KUBECONFIG = "~/.kube/config"
DEFAULT_REQUEST_TIMEOUT = 30.0
# How often one call is sent again after a 429, a 5xx or a connection error.
DEFAULT_API_RETRIES = 4
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 4.0
# A Retry-After longer than this is cut short: the module's own deadlines
# (wait_timeout, the job's) must stay in charge.
RETRY_AFTER_MAX_S = 20.0
# Answers that mean "not done, try again" (as client-go retries them).
RETRYABLE_STATUS = (429, 500, 502, 503, 504)

K8S_AUTH_ARGSPEC = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    ca_cert=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
    request_timeout=dict(type="float", default=DEFAULT_REQUEST_TIMEOUT),
)


class KubernetesError(RollbackError):
    """A Kubernetes API call failed.

    ``status`` is the HTTP code (None: no answer at all) and ``reason`` the
    ``Status`` reason (NotFound, Conflict, Invalid, ...), so callers can tell a
    missing object or a stale write from anything else.
    """

    def __init__(self, message, status=None, reason=None, **details):
        super().__init__(message, status=status, reason=reason, **details)
        self.status = status
        self.reason = reason


# ----------------------------------------------------------------------- settings
class KubernetesSettings:
    """The resolved connection options of one module run (see K8S_AUTH_ARGSPEC).

    Where the cluster comes from, in order:

    1. ``host``: the API server URL, with ``api_key`` (a bearer token) and
       ``ca_cert``; no kubeconfig is read (an AWX bearer-token credential).
    2. a kubeconfig: ``kubeconfig`` (or ``K8S_AUTH_KUBECONFIG``), else
       ``KUBECONFIG`` (several files separated by ``:`` are merged), else
       ``~/.kube/config``; ``context`` picks the context (default: the file's
       current context). ``api_key``, ``ca_cert`` and ``validate_certs=false``
       override what the kubeconfig says.
    3. in a pod with no kubeconfig: the pod's service account.
    """

    def __init__(self, kubeconfig=None, context=None, host=None, api_key=None, ca_cert=None,
                 validate_certs=True, request_timeout=DEFAULT_REQUEST_TIMEOUT, environ=None):
        env = os.environ if environ is None else environ
        self.context = context or None
        self.host = host.rstrip("/") if host else None
        self.api_key = api_key or None
        self.ca_cert = ca_cert or None
        self.validate_certs = True if validate_certs is None else bool(validate_certs)
        self.request_timeout = float(request_timeout or DEFAULT_REQUEST_TIMEOUT)
        if self.request_timeout <= 0:
            raise RollbackError("request_timeout must be more than 0 seconds, got %s." % request_timeout)
        if self.host and not self.host.startswith(("https://", "http://")):
            raise RollbackError("host must be the API server URL (https://HOST:PORT), got %r." % host)
        if self.ca_cert and not os.path.isfile(self.ca_cert):
            raise RollbackError("ca_cert %s is not a file: give the CA bundle of the API server." % self.ca_cert)
        self.kubeconfig = None
        self.source = None
        if self.host:
            self.source = "host"
        else:
            self.kubeconfig, self.source = _find_kubeconfig(kubeconfig, env)
        self._configuration = None
        self._clients = {}
        self._kubeconfig_file = None
        self._spec = None
        self._spec_resolved = False
        self._transport = None

    @classmethod
    def from_params(cls, params):
        """The settings a module's K8S_AUTH_ARGSPEC options describe."""
        return cls(kubeconfig=params.get("kubeconfig"), context=params.get("context"), host=params.get("host"),
                   api_key=params.get("api_key"), ca_cert=params.get("ca_cert"),
                   validate_certs=params.get("validate_certs"), request_timeout=params.get("request_timeout"))

    # -- what callers use ---------------------------------------------------------------
    def configuration(self):
        """The ``kubernetes.client.Configuration`` of these settings (loaded once; do not change it)."""
        if self._configuration is None:
            self._configuration = self._load_configuration()
        return self._configuration

    def api_client(self, pool_size=None):
        """A ``kubernetes.client.ApiClient`` for these settings, shared by every caller.

        Built on its own Configuration, never the library's global default,
        so it is safe to share across threads; ``pool_size`` is the most
        connections it keeps open to the API server (give the number of
        threads that use it). urllib3's own retries are off: k8s_call retries.
        """
        size = max(int(pool_size or 10), 1)
        if size not in self._clients:
            configuration = copy.deepcopy(self.configuration())
            configuration.connection_pool_maxsize = size
            self._clients[size] = kube().ApiClient(configuration=configuration)
        return self._clients[size]

    def rest(self, pool_size=None, retries=DEFAULT_API_RETRIES):
        """A :class:`KubernetesRest` (plain JSON).

        On an :class:`HttpTransport` when connection_spec() can say how to
        connect (no kubernetes import: about half a second of CPU less per
        task), else on api_client(pool_size), the kubernetes client itself.
        """
        spec = self.connection_spec()
        if spec is None:
            return KubernetesRest(self.api_client(pool_size), request_timeout=self.request_timeout, retries=retries)
        if self._transport is None:
            try:
                self._transport = HttpTransport(spec)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError: a bad CA or client key
                raise RollbackError("Cannot use the TLS settings for %s: %s: %s"
                                    % (spec.server, type(error).__name__, error)) from None
        return KubernetesRest(self._transport, request_timeout=self.request_timeout, retries=retries)

    def connection_spec(self):
        """The :class:`ConnectionSpec` of these settings, or None when only the kubernetes client can connect.

        None for the in-cluster service account and for kubeconfig users with
        an ``exec`` or ``auth-provider`` plugin (they run code of the client:
        token refresh) or a ``proxy-url`` cluster, unless ``api_key`` replaces
        the user's credentials. Options override the kubeconfig as in
        _load_configuration().
        """
        if self._spec_resolved:
            return self._spec
        spec = None
        if self.source == "host":
            spec = ConnectionSpec(self.host)
        elif self.source == "kubeconfig":
            spec = self.kubeconfig_file().connection(self.context)
            if spec is None and self.api_key:
                # An explicit token replaces the plugin's: what is left is the cluster, which the file says.
                spec = self.kubeconfig_file().connection(self.context, cluster_only=True)
        if spec is not None:
            if self.api_key:
                spec.authorization = "Bearer " + self.api_key
            if self.ca_cert:
                spec.ca_file, spec.ca_data = self.ca_cert, None
            if not self.validate_certs:
                spec.verify = False
        self._spec, self._spec_resolved = spec, True
        return spec

    def kubeconfig_file(self):
        """The kubeconfig (merged) as a :class:`KubeconfigFile` (kubeconfig mode only)."""
        if self._kubeconfig_file is None:
            try:
                self._kubeconfig_file = KubeconfigFile(self.kubeconfig)
            except (OSError, UnicodeDecodeError) as error:
                raise RollbackError("Cannot read the kubeconfig %s: %s: %s"
                                    % (self.kubeconfig, type(error).__name__, error)) from None
        return self._kubeconfig_file

    def close(self):
        for client in self._clients.values():
            client.close()
        self._clients = {}
        if self._transport is not None:
            self._transport.close()

    def describe(self):
        """Where the API is, for results and messages: server, context, source; never a credential."""
        server = self.server()
        return {"server": server, "context": self.active_context(), "source": self.source,
                "kubeconfig": self.kubeconfig}

    def server(self):
        try:
            spec = self.connection_spec()
            return spec.server if spec is not None else self.configuration().host
        except RollbackError:
            return self.host

    def active_context(self):
        """The kubeconfig context in use (None outside kubeconfig mode)."""
        if self.source != "kubeconfig":
            return None
        if self.context:
            return self.context
        try:
            return self.kubeconfig_file().active_context()
        except RollbackError:
            return None

    def kubeconfig_view(self):
        """What a command-line client (kubectl, helm) needs to reach the same cluster.

        ``{"kubeconfig": path or None, "context": name or None, "server": URL or None,
        "api_key": token or None, "ca_cert": path or None, "validate_certs": bool,
        "request_timeout": seconds, "in_cluster": bool}``. With a kubeconfig, ``server``
        is None and the file plus ``context`` say everything; ``api_key`` and
        ``ca_cert`` are set only when options override the file. With ``host``,
        ``kubeconfig`` is None. ``api_key`` is a secret: never put it in a result.
        Tools that only take a file use write_kubeconfig().
        """
        return {
            "kubeconfig": self.kubeconfig,
            "context": self.context if self.source == "kubeconfig" else None,
            "server": self.host,
            "api_key": self.api_key,
            "ca_cert": self.ca_cert,
            "validate_certs": self.validate_certs,
            "request_timeout": self.request_timeout,
            "in_cluster": self.source == "in-cluster",
        }

    def write_kubeconfig(self, directory=None):
        """A kubeconfig file for these settings, for tools that take only a file (Helm's library).

        In kubeconfig mode with no override, that is the user's own file (a
        ``:`` list is merged into one file). Otherwise a new file (mode 0600, in
        ``directory`` or a temporary directory; the caller deletes it) with one
        cluster, user and context, named after the kubeconfig context in use
        (``sre-rollback`` with ``host``), and that context current.
        """
        overrides = self.api_key or self.ca_cert or not self.validate_certs
        if self.source == "kubeconfig" and not overrides and os.pathsep not in self.kubeconfig:
            return self.kubeconfig
        configuration = self.configuration()
        cluster = {"server": configuration.host}
        if not configuration.verify_ssl:
            cluster["insecure-skip-tls-verify"] = True
        elif configuration.ssl_ca_cert:
            cluster["certificate-authority"] = os.path.abspath(configuration.ssl_ca_cert)
        if configuration.tls_server_name:
            cluster["tls-server-name"] = configuration.tls_server_name
        user = {}
        token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            user["token"] = token.split(" ", 1)[1] if token.lower().startswith("bearer ") else token
        if configuration.cert_file and configuration.key_file:
            user["client-certificate"] = os.path.abspath(configuration.cert_file)
            user["client-key"] = os.path.abspath(configuration.key_file)
        # Named after the context in use, so a caller that passes kubeconfig_view()["context"] finds it.
        name = self.active_context() or "sre-rollback"
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        }
        handle, path = tempfile.mkstemp(prefix="kubeconfig-", suffix=".json", dir=directory)
        os.fchmod(handle, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream)  # JSON is YAML: every kubeconfig reader takes it
        return path

    # -- loading ------------------------------------------------------------------------
    def _load_configuration(self):
        lib = kube()
        configuration = lib.Configuration()
        if self.source == "host":
            configuration.host = self.host
            if self.api_key:
                configuration.api_key["BearerToken"] = "Bearer " + self.api_key
        elif self.source == "in-cluster":
            try:
                lib.incluster_config.load_incluster_config(client_configuration=configuration)
            except lib.ConfigException as error:
                raise RollbackError("Cannot use the pod's service account: %s" % error) from None
        else:
            self._load_kubeconfig(configuration)
            if self.api_key:
                # An explicit token wins over the kubeconfig user's (and its refresh).
                configuration.refresh_api_key_hook = None
                configuration.api_key["BearerToken"] = "Bearer " + self.api_key
        if self.ca_cert:
            configuration.ssl_ca_cert = self.ca_cert
        if not self.validate_certs:
            configuration.verify_ssl = False
        # One place retries (k8s_call), with the collection's backoff and messages.
        configuration.retries = False
        return configuration

    def _load_kubeconfig(self, configuration):
        lib = kube()
        try:
            lib.kube_config.load_kube_config(config_file=self.kubeconfig, context=self.context,
                                             client_configuration=configuration, persist_config=False)
        except lib.ConfigException as error:
            text = str(error)
            if self.context and ("context" in text.lower() or "Expected key" in text):
                contexts = []
                try:
                    contexts = [item["name"] for item in lib.kube_config.list_kube_config_contexts(self.kubeconfig)[0]]
                except (lib.ConfigException, OSError, TypeError, KeyError):
                    pass
                raise RollbackError("Context %r is not in the kubeconfig %s (it has: %s)."
                                    % (self.context, self.kubeconfig, ", ".join(contexts) or "none")) from None
            raise RollbackError("Cannot use the kubeconfig %s: %s" % (self.kubeconfig, text)) from None
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise RollbackError("Cannot read the kubeconfig %s: %s: %s"
                                % (self.kubeconfig, type(error).__name__, error)) from None


def _find_kubeconfig(option, env):
    """(kubeconfig path or ':'-list, source) by the precedence in KubernetesSettings."""
    if option:
        candidates = [os.path.expanduser(option)]
        named = "the kubeconfig option (or K8S_AUTH_KUBECONFIG)"
    elif env.get("KUBECONFIG"):
        candidates = [os.path.expanduser(path) for path in env["KUBECONFIG"].split(os.pathsep) if path]
        named = "KUBECONFIG"
    else:
        default = os.path.expanduser(DEFAULT_KUBECONFIG)
        if not os.path.exists(default) and env.get("KUBERNETES_SERVICE_HOST"):
            return None, "in-cluster"
        candidates = [default]
        named = "the default location"
    existing = [path for path in candidates if os.path.isfile(path)]
    if not existing:
        raise RollbackError(
            "No Kubernetes credentials: the kubeconfig %s (from %s) does not exist. Set the kubeconfig option "
            "(or K8S_AUTH_KUBECONFIG / KUBECONFIG), or host and api_key (K8S_AUTH_HOST / K8S_AUTH_API_KEY)."
            % (os.pathsep.join(candidates), named))
    return os.pathsep.join(existing), "kubeconfig"


# ------------------------------------------------------------------ kubeconfig
class KubeconfigFile:
    """A kubeconfig (or a ``:`` list merged) read by the kubernetes client's rules, without importing it.

    The rules of ``kubernetes.config.kube_config`` (KubeConfigMerger and KubeConfigLoader) this follows:

    - files are read in order, missing ones skipped; a cluster, context or user
      named in several files is taken from the first; ``current-context`` is
      the one of the LAST file that sets it (the client's merger overwrites it);
    - the context is the ``context`` option, else ``current-context``;
    - a ``<key>-data`` value (base64) wins over the ``<key>`` file; a relative
      file path is relative to the directory of the file that named it;
    - ``certificate-authority``, ``client-certificate`` and ``client-key`` are
      used only for an ``https`` server; ``insecure-skip-tls-verify`` turns
      verification off, ``tls-server-name`` names the certificate's host;
    - authentication, first that applies: ``auth-provider``, ``token`` (or
      ``tokenFile``), ``exec``, ``username`` + ``password`` (basic auth).

    What needs code of the client (``auth-provider`` and ``exec`` plugins and
    their token refresh, ``proxy-url``) is not done here: :meth:`connection`
    returns None and KubernetesSettings uses the kubernetes client itself.
    """

    def __init__(self, paths):
        self.paths = [path for path in paths.split(os.pathsep) if path and os.path.exists(path)]
        self.clusters, self.contexts, self.users = {}, {}, {}
        self.current_context = None
        for path in self.paths:
            self._merge(path)

    def _merge(self, path):
        import yaml  # ansible-core's own dependency; the C loader when there is one
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(path) as stream:
            try:
                document = yaml.load(stream, Loader=loader)  # nosec - a safe loader
            except yaml.YAMLError as error:
                raise RollbackError("Cannot read the kubeconfig %s: %s"
                                    % (path, " ".join(str(error).split()))) from None
        if not isinstance(document, dict):
            raise RollbackError("Cannot use the kubeconfig %s: Invalid kube-config. %s file is empty or not a "
                                "mapping" % (os.pathsep.join(self.paths), path))
        base = os.path.dirname(os.path.abspath(path))
        for key, table in (("clusters", self.clusters), ("contexts", self.contexts), ("users", self.users)):
            for item in document.get(key) or []:
                if not isinstance(item, dict) or "name" not in item:
                    raise RollbackError("Cannot use the kubeconfig %s: Invalid kube-config file. Expected all values "
                                        "in %s list to have 'name' key" % (path, key))
                table.setdefault(item["name"], (item, base))
        if "current-context" in document:
            self.current_context = document["current-context"]

    def active_context(self):
        """The file's current context, if it names one that exists."""
        return self.current_context if self.current_context in self.contexts else None

    def connection(self, context=None, cluster_only=False):
        """The ConnectionSpec of the context, or None when only the kubernetes client can do it.

        ``cluster_only``: the user's credentials are replaced by the caller
        (the api_key option), so a plugin of the user does not matter.
        """
        name = context or self.current_context
        if name not in self.contexts:
            where = os.pathsep.join(self.paths)
            if context:
                raise RollbackError("Context %r is not in the kubeconfig %s (it has: %s)."
                                    % (context, where, ", ".join(sorted(self.contexts)) or "none"))
            raise RollbackError("Cannot use the kubeconfig %s: %s" % (
                where, "it names no current-context" if not name else "its current-context %r is not in it" % name))
        entry = (self.contexts[name][0].get("context") or {})
        cluster_name = entry.get("cluster")
        if cluster_name not in self.clusters:
            raise RollbackError("Cannot use the kubeconfig %s: context %r names the cluster %r, which is not in it."
                                % (os.pathsep.join(self.paths), name, cluster_name))
        cluster_item, cluster_base = self.clusters[cluster_name]
        cluster = cluster_item.get("cluster") or {}
        user_item, user_base = self.users.get(entry.get("user"), ({}, ""))
        user = user_item.get("user") or {}
        if "proxy-url" in cluster or ("auth-provider" in user and not cluster_only):
            return None
        server = (cluster.get("server") or "").rstrip("/")
        if not server:
            raise RollbackError("Cannot use the kubeconfig %s: the cluster %r has no server."
                                % (os.pathsep.join(self.paths), cluster_name))
        spec = ConnectionSpec(server, context=name)
        if "insecure-skip-tls-verify" in cluster:
            spec.verify = not cluster["insecure-skip-tls-verify"]
        spec.tls_server_name = cluster.get("tls-server-name")
        if server.startswith("https"):
            spec.ca_file, spec.ca_data = _file_or_data(cluster, "certificate-authority", cluster_base)
            spec.cert_file, spec.cert_data = _file_or_data(user, "client-certificate", user_base)
            spec.key_file, spec.key_data = _file_or_data(user, "client-key", user_base)
        if cluster_only:
            return spec
        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(os.path.join(user_base, user["tokenFile"])) as stream:
                token = stream.read().strip()
        if token:
            spec.authorization = "Bearer " + token
        elif "exec" in user:
            return None
        elif "username" in user and "password" in user:
            pair = ("%s:%s" % (user["username"], user["password"])).encode("utf-8")
            spec.authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        return spec


def _file_or_data(obj, key, base):
    """(file path, decoded bytes) of ``key`` / ``key-data``: the data wins, as the client's FileOrData."""
    if obj.get(key + "-data"):
        return None, base64.b64decode(obj[key + "-data"])
    if obj.get(key):
        path = os.path.normpath(os.path.join(base, obj[key]))
        if not os.path.isfile(path):
            raise RollbackError("Cannot use the kubeconfig: %s file %s does not exist." % (key, path))
        return path, None
    return None, None


class ConnectionSpec:
    """Where the API server is and how to authenticate: what HttpTransport needs."""

    def __init__(self, server, context=None):
        self.server = server
        self.context = context
        self.verify = True
        self.tls_server_name = None
        self.ca_file = self.ca_data = None
        self.cert_file = self.cert_data = None
        self.key_file = self.key_data = None
        self.authorization = None  # the Authorization header: a secret

    def ssl_context(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.verify:
            if self.ca_file or self.ca_data:
                context.load_verify_locations(cafile=self.ca_file,
                                              cadata=self.ca_data.decode("ascii") if self.ca_data else None)
            else:
                # The kubernetes client (urllib3) trusts certifi's bundle when no CA is named.
                try:
                    import certifi
                    context.load_verify_locations(cafile=certifi.where())
                except ImportError:
                    context.load_default_certs()
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file or self.cert_data:
            self._load_client_certificate(context)
        return context

    def _load_client_certificate(self, context):
        """Client certificate and key from files or kubeconfig data (ssl reads files only: private copies)."""
        if self.cert_data is None and self.key_data is None:
            context.load_cert_chain(self.cert_file, self.key_file)
            return
        directory = tempfile.mkdtemp(prefix="sre-k8s-")
        try:
            paths = []
            parts = (("cert.pem", self.cert_file, self.cert_data), ("key.pem", self.key_file, self.key_data))
            for name, path, data in parts:
                if data is not None:
                    path = os.path.join(directory, name)
                    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(handle, "wb") as stream:
                        stream.write(data)
                paths.append(path)
            context.load_cert_chain(paths[0], paths[1])
        finally:
            for name in os.listdir(directory):
                os.unlink(os.path.join(directory, name))
            os.rmdir(directory)


# --------------------------------------------------------------------- transport
class ApiAnswerError(Exception):
    """A non-2xx answer of the API server, with the attributes of the client's ApiException."""

    def __init__(self, status, reason, body, headers):
        super().__init__("(%s) Reason: %s" % (status, reason))
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers


class TransportError(Exception):
    """No answer: ``kind`` is 'tls', 'connect' (the request surely never arrived) or 'lost' (it may have)."""

    def __init__(self, kind, text, timed_out=False):
        super().__init__(text)
        self.kind = kind
        self.timed_out = timed_out


class _Connection(http.client.HTTPSConnection):
    """HTTPS with TCP_NODELAY and the kubeconfig's tls-server-name."""

    def __init__(self, host, port, timeout, context, server_hostname):
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_hostname = server_hostname or host

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise


class _PlainConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HttpTransport:
    """Plain JSON over keep-alive HTTP(S) connections (http.client, ssl): no kubernetes import, no models.

    Connections are pooled (threads of a fleet each take one, and put it back
    when the answer is read). A pooled connection the server has closed is
    noticed before reuse (as urllib3 does), so an idle-timeout close costs
    nothing. Errors are ApiAnswerError (an answer) or TransportError (none).
    """

    def __init__(self, spec, user_agent="sre.rollback"):
        url = urllib.parse.urlsplit(spec.server)
        self.server = spec.server
        self.secure = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.secure else 80)
        self.prefix = url.path.rstrip("/")
        self.server_hostname = spec.tls_server_name
        self.context = spec.ssl_context() if self.secure else None
        self.headers = {"Accept": "application/json", "User-Agent": user_agent}
        if spec.authorization:
            self.headers["Authorization"] = spec.authorization
        self._idle = []
        self._lock = threading.Lock()

    def _new(self, timeout):
        if self.secure:
            return _Connection(self.host, self.port, timeout, self.context, self.server_hostname)
        return _PlainConnection(self.host, self.port, timeout=timeout)

    def _acquire(self, timeout):
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                readable, _unused, _unused = select.select([connection.sock], [], [], 0)
                if not readable:
                    # Nothing to read on an idle connection: still open (EOF or junk would be readable).
                    connection.sock.settimeout(timeout)
                    return connection, True
                connection.close()
        return self._new(timeout), False

    def _release(self, connection):
        with self._lock:
            self._idle.append(connection)

    def _open(self, method, path, query, headers, body, timeout):
        """(connection, response) with the headers read; the caller reads the body."""
        url = self.prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        connection, reused = self._acquire(timeout)
        if not reused:
            try:
                connection.connect()
            except ssl.SSLError as error:
                raise TransportError("tls", "%s: %s" % (type(error).__name__, error)) from None
            except OSError as error:
                raise TransportError("connect", _os_error_text(error), timed_out=isinstance(error, TimeoutError)) \
                    from None
        try:
            connection.request(method, url, body=body, headers=all_headers)
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise TransportError("lost", _os_error_text(error), timed_out=isinstance(error, TimeoutError)) from None

    def send(self, method, path, query=None, headers=None, body=None, timeout=None):
        """One request; (status, reason, headers, body bytes). The connection goes back to the pool."""
        connection, response = self._open(method, path, query, headers, body, timeout)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise TransportError("lost", _os_error_text(error), timed_out=isinstance(error, TimeoutError)) from None
        if response.will_close:
            connection.close()
        else:
            self._release(connection)
        return response.status, response.reason, response.headers, data

    def stream(self, path, query=None, timeout=None):
        """A GET whose answer is read line by line (a watch): (status, reason, headers, lines, close)."""
        connection, response = self._open("GET", path, query, None, None, timeout)
        if not 200 <= response.status <= 299:
            try:
                data = response.read()
            finally:
                connection.close()
            return response.status, response.reason, response.headers, data, None

        def lines():
            try:
                while True:
                    line = response.readline()
                    if not line:
                        return
                    if line.strip():
                        yield line
            except (OSError, http.client.HTTPException) as error:
                raise TransportError("lost", _os_error_text(error), timed_out=isinstance(error, TimeoutError)) \
                    from None
            finally:
                connection.close()
        return response.status, response.reason, response.headers, lines(), connection.close

    def close(self):
        with self._lock:
            for connection in self._idle:
                connection.close()
            self._idle = []


def _os_error_text(error):
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "timed out"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer (%s)" % error
    return "%s: %s" % (type(error).__name__, error) if str(error) else type(error).__name__


# ------------------------------------------------------------------------ errors
def status_of(error):
    """(code, reason, message) of an ApiException, from its ``Status`` body when there is one."""
    code = getattr(error, "status", None)
    reason = getattr(error, "reason", None) or ""
    message = ""
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            message = body.strip()[:300]
        else:
            if isinstance(document, dict):
                message = document.get("message") or ""
                reason = document.get("reason") or reason
                code = document.get("code") or code
    return code, reason, message


def retry_after_seconds(error):
    """The Retry-After of an answer, in seconds (None if absent or not a number)."""
    headers = getattr(error, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None


HINTS = {
    401: " The credentials were refused: check api_key, or the user of the kubeconfig context (an expired token?).",
    403: " The user lacks the permission (RBAC): grant it with a Role and RoleBinding.",
}


def api_error(error, what, server, suffix=""):
    """A KubernetesError for an ApiException, quoting the API's own Status message."""
    code, reason, message = status_of(error)
    text = "Kubernetes API: cannot %s: %s" % (what, message or reason or "no message")
    if code:
        text += " (%s, HTTP %s)" % (reason or "error", code) if reason and reason != message else " (HTTP %s)" % code
    text += suffix
    if code in HINTS:
        text = text.rstrip(".") + "." + HINTS[code]
    return KubernetesError(text + ("" if text.endswith(".") else "."), status=code, reason=reason or None,
                           server=server, api_message=message or None)


def _server_of(function):
    owner = getattr(function, "__self__", None)
    client = getattr(owner, "api_client", owner)
    configuration = getattr(client, "configuration", None)
    return getattr(configuration, "host", None)


def _answer_errors():
    """The exception classes that carry an API answer: ours, and the kubernetes client's if it is loaded.

    Looked up in sys.modules, never imported: whoever raised an ApiException imported it.
    """
    module = sys.modules.get("kubernetes.client.exceptions")
    return (ApiAnswerError, module.ApiException) if module is not None else (ApiAnswerError,)


def _no_answer_errors():
    """The exception classes of a request that got no answer: ours, and urllib3's if it is loaded."""
    module = sys.modules.get("urllib3.exceptions")
    return (TransportError, module.HTTPError) if module is not None else (TransportError,)


def _connection_kind(error):
    """'tls', 'connect' (the request surely never arrived), or 'lost' (it may have)."""
    if isinstance(error, TransportError):
        return error.kind
    exceptions = sys.modules["urllib3.exceptions"]
    text = "%s %s" % (type(error).__name__, error)
    if isinstance(error, exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "tls"
    if isinstance(error, (exceptions.NewConnectionError, exceptions.ConnectTimeoutError, ConnectionRefusedError)):
        return "connect"
    return "lost"


def k8s_call(function, *args, what="call the Kubernetes API", server=None, retries=DEFAULT_API_RETRIES,
             idempotent=True, sleep=time.sleep, **kwargs):
    """``function(*args, **kwargs)`` with the collection's error mapping and retries.

    - ``ApiException`` -> :class:`KubernetesError` "Kubernetes API: cannot <what>:
      <Status message> (<reason>, HTTP <code>)", with ``status`` and ``reason``;
    - 429 is retried after its ``Retry-After`` (at most RETRY_AFTER_MAX_S), 500/502/503/504
      and connection errors with exponential backoff and jitter, ``retries`` times at most;
      any other 4xx is raised at once;
    - an API that cannot be reached raises "cannot reach the Kubernetes API at <server>: ...";
    - ``idempotent=False`` (a call whose replay could act twice) is not sent again after an
      answer was lost in transit (a read timeout, a reset connection), only when it certainly
      never arrived. Kubernetes writes are usually safe to replay: a PUT carries the
      resourceVersion (a replay gets 409), a merge patch sets the same values again.
    """
    server = server or _server_of(function) or "the configured server"
    answers, no_answers = _answer_errors(), _no_answer_errors()
    attempt = 0
    while True:
        attempt += 1
        try:
            return function(*args, **kwargs)
        except answers as error:
            status = error.status
            if not status:
                # The client wraps a TLS failure (and nothing else that reached no server) as status 0.
                raise _no_answer(error, what, server) from None
            if status not in RETRYABLE_STATUS or attempt > retries:
                suffix = "; still failing after %d attempts" % attempt if status in RETRYABLE_STATUS else ""
                raise api_error(error, what, server, suffix) from None
            wait = retry_after_seconds(error) if status == 429 else None
            sleep(min(wait, RETRY_AFTER_MAX_S) if wait is not None else backoff_seconds(attempt))
        except no_answers as error:
            kind = _connection_kind(error)
            if kind == "tls":
                raise _no_answer(error, what, server) from None
            retry = attempt <= retries and (idempotent or kind == "connect")
            if not retry:
                if isinstance(error, TransportError):
                    timed_out = error.timed_out
                else:
                    timed_out = isinstance(error, sys.modules["urllib3.exceptions"].TimeoutError) and kind == "lost"
                hint = " (no answer within request_timeout)" if timed_out else ""
                raise KubernetesError("cannot reach the Kubernetes API at %s: %s%s while trying to %s."
                                      % (server, _short(error), hint, what), server=server) from None
            sleep(backoff_seconds(attempt))


def _no_answer(error, what, server):
    text = " ".join(str(getattr(error, "reason", "") or error).split())
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return KubernetesError(
            "cannot reach the Kubernetes API at %s: TLS verification failed (%s). Give the server's CA with "
            "ca_cert, or check the kubeconfig's certificate-authority." % (server, text.replace("SSLError ", "")),
            server=server)
    return KubernetesError("cannot reach the Kubernetes API at %s: %s while trying to %s." % (server, text, what),
                           server=server)


def backoff_seconds(attempt):
    """Exponential backoff with jitter: 0.25, 0.5, 1, 2, 4 s (at most BACKOFF_MAX_S)."""
    base = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
    return base * (0.75 + random.random() / 2)  # nosec - jitter, not security


def _short(error):
    text = str(error)
    reason = getattr(error, "reason", None)
    if reason is not None and not isinstance(reason, str):
        text = str(reason)
    # urllib3 puts the pool object's repr first; the cause at the end is what helps.
    if ": " in text and "HTTPSConnection" in text:
        text = text.split(": ", 1)[1]
    return text.strip()


# -------------------------------------------------------------------------- JSON
class KubernetesRest:
    """Plain-JSON requests through an HttpTransport, or a kubernetes ApiClient (its auth, TLS and token refresh).

    Objects stay dicts exactly as the API server sent them, so reading an
    object, changing it and PUTting it back keeps every field. Each method
    goes through k8s_call (errors, retries). watch() streams events (on an
    HttpTransport only: ``can_watch``).
    """

    PATCH_TYPES = {
        "merge": "application/merge-patch+json",
        "strategic": "application/strategic-merge-patch+json",
        "json": "application/json-patch+json",
    }

    def __init__(self, client, request_timeout=DEFAULT_REQUEST_TIMEOUT, retries=DEFAULT_API_RETRIES,
                 sleep=time.sleep):
        self.transport = client if isinstance(client, HttpTransport) else None
        self.api_client = None if self.transport is not None else client
        self.request_timeout = request_timeout
        self.retries = retries
        self.sleep = sleep
        self.server = client.server if self.transport is not None else client.configuration.host
        self.calls = 0
        self._count_lock = threading.Lock()  # threads of a fleet share one client

    def request(self, method, path, query=None, body=None, content_type="application/json", what=None,
                expect_json=True):
        """Send one request; the decoded JSON answer (or None for an empty body)."""
        what = what or "%s %s" % (method, path)
        return k8s_call(self._send, method, path, query, body, content_type, expect_json, what=what,
                        server=self.server, retries=self.retries, sleep=self.sleep)

    def _send(self, method, path, query, body, content_type, expect_json):
        with self._count_lock:
            self.calls += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        query_params = [(key, value) for key, value in (query or {}).items() if value is not None]
        if self.transport is not None:
            payload = json.dumps(body).encode("utf-8") if body is not None else None
            status, reason, answer_headers, data = self.transport.send(method, path, query_params, headers, payload,
                                                                       self.request_timeout)
            if not 200 <= status <= 299:
                raise ApiAnswerError(status, reason, data.decode("utf-8", "replace"), answer_headers)
        elif hasattr(self.api_client, "param_serialize"):
            # kubernetes >= 35 (OpenAPI Generator 7): serialize (auth, token refresh), then send.
            request = self.api_client.param_serialize(method=method, resource_path=path, query_params=query_params,
                                                      header_params=headers, body=body, auth_settings=["BearerToken"])
            response = self.api_client.call_api(*request, _request_timeout=self.request_timeout)
            response.read()
            if not 200 <= response.status <= 299:
                raise kube().ApiException(http_resp=response)
            data = response.data
        else:  # pragma: no cover - older clients: one call_api does both, errors raised by the REST layer
            data = self.api_client.call_api(path, method, query_params=query_params, header_params=headers, body=body,
                                            auth_settings=["BearerToken"], _return_http_data_only=True,
                                            _preload_content=False, _request_timeout=self.request_timeout).data
        if not expect_json or not data:
            return None
        return json.loads(data)

    def get(self, path, query=None, what=None):
        return self.request("GET", path, query=query, what=what)

    @property
    def can_watch(self):
        return self.transport is not None

    def watch(self, path, query, timeout, what=None):
        """Open a watch (``?watch=1``) and return an iterator of its events (dicts: type, object).

        Opening goes through k8s_call (errors, retries); the iterator raises
        TransportError when the stream breaks and ends when the server ends it.
        ``timeout`` bounds each read, so a quiet stream cannot outlive the caller's deadline.
        """
        if self.transport is None:
            raise RollbackError("watch needs the plain HTTP transport (this connection uses the kubernetes client).")
        query = dict(query or {}, watch="1")

        def open_stream():
            with self._count_lock:
                self.calls += 1
            params = [(key, value) for key, value in query.items() if value is not None]
            status, reason, headers, lines, closer = self.transport.stream(path, params, timeout)
            if closer is None:
                raise ApiAnswerError(status, reason, lines.decode("utf-8", "replace"), headers)
            return lines
        lines = k8s_call(open_stream, what=what or "watch %s" % path, server=self.server, retries=self.retries,
                         sleep=self.sleep)
        return (json.loads(line) for line in lines)

    def list(self, path, label_selector=None, field_selector=None, limit=500, what=None):
        """Every item of a collection (follows ``continue`` pages); returns (items, list resourceVersion)."""
        items = []
        token = None
        while True:
            page = self.request("GET", path, query={"labelSelector": label_selector, "fieldSelector": field_selector,
                                                    "limit": limit, "continue": token}, what=what)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, metadata.get("resourceVersion")

    def put(self, path, body, what=None):
        return self.request("PUT", path, body=body, what=what)

    def patch(self, path, body, patch_type="merge", what=None):
        return self.request("PATCH", path, body=body, content_type=self.PATCH_TYPES[patch_type], what=what)

    def post(self, path, body, what=None):
        return self.request("POST", path, body=body, what=what)

    def delete(self, path, what=None):
        return self.request("DELETE", path, what=what)


def label_selector_string(selector):
    """A LabelSelector ({matchLabels, matchExpressions}) as the ``labelSelector`` query string."""
    parts = ["%s=%s" % (key, value) for key, value in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expression in (selector or {}).get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In":
            parts.append("%s in (%s)" % (key, ",".join(values)))
        elif operator == "NotIn":
            parts.append("%s notin (%s)" % (key, ",".join(values)))
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append("!" + key)
    return ",".join(parts)
