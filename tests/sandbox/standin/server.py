"""Assemble the sandbox and run it in the foreground until SIGTERM/SIGINT.

One HTTPS port serves identity, ARM and the admin API (what a client
configures as authority host and ARM endpoint); providers may open more ports
(App Service: one per slot for the apps themselves).

While running, the state directory holds:
  ca.pem, ca-key.pem        the CA (reused across runs); trust ca.pem
  server.pem, server-key.pem
  runtime.json              pid and ports (sandboxctl reads it)
  env.sh, env.json          the client environment
runtime.json and env.* are removed on a clean stop.
"""

import json
import os
import signal
import sys
import threading

from . import tls
from .acr import AcrProvider
from .admin import Admin
from .appservice import AppServiceProvider
from .arm import Arm, ArmError, arm_error_response, request_headers
from .authorization import AuthorizationProvider
from .azurite import AzuriteProvider
from .blobstore import BlobStoreProvider
from .bluegreen import BlueGreenProvider
from .compute import ComputeProvider
from .core import Sandbox, load_seed
from .cosmosdb import CosmosDbProvider
from .deployments import DeploymentsProvider
from .faults import Faults
from .github import GitHubProvider
from .identity import Identity
from .keyvault import KeyVaultProvider
from .kubernetes import KubernetesProvider
from .monitor import MonitorProvider
from .notify import NotifyProvider
from .operations import Operations
from .postgres import PostgresProvider
from .postgresflex import PostgresFlexProvider
from .redis import RedisProvider
from .search import SearchProvider
from .serverfarms import ServerFarmsProvider
from .staticsites import StaticSitesProvider
from .web import DropConnection, HttpsServer, Response

# Add a stand-in for another service by appending its provider class here.
# Order matters where one uses another's hook: postgres before postgresflex.
PROVIDERS = [
    AppServiceProvider,
    BlueGreenProvider,
    StaticSitesProvider,
    GitHubProvider,
    NotifyProvider,
    PostgresProvider,
    PostgresFlexProvider,
    KeyVaultProvider,
    CosmosDbProvider,
    RedisProvider,
    ComputeProvider,
    DeploymentsProvider,
    BlobStoreProvider,
    AzuriteProvider,
    AcrProvider,
    SearchProvider,
    ServerFarmsProvider,
    MonitorProvider,
    KubernetesProvider,
    AuthorizationProvider,
]


def selected_providers(names=None):
    """The provider classes to start: all, or those named in SRE_SANDBOX_PROVIDERS (comma-separated).

    Starting a subset makes a stand-in quicker to work on alone; the tests and
    the demo always start them all.
    """
    names = names if names is not None else os.environ.get("SRE_SANDBOX_PROVIDERS", "")
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    if not wanted:
        return list(PROVIDERS)
    known = {p.name for p in PROVIDERS}
    unknown = wanted - known
    if unknown:
        raise ValueError(f"SRE_SANDBOX_PROVIDERS names unknown providers {sorted(unknown)}; known: {sorted(known)}")
    return [p for p in PROVIDERS if p.name in wanted]


RUNTIME_FILES = ("runtime.json", "env.sh", "env.json")


class SandboxServer:
    def __init__(self, state_dir, seed_dir, port=0):
        self.state_dir = os.path.abspath(state_dir)
        ssl_context, ca_path = tls.server_ssl_context(self.state_dir)
        self.sandbox = Sandbox(load_seed(seed_dir), ssl_context, ca_path)
        self.faults = Faults()
        # Bind the main port first: identity and ARM build URLs from it.
        self.main = HttpsServer(ssl_context, self.dispatch, port=port, name="main")
        self.sandbox.base_url = f"https://127.0.0.1:{self.main.port}"
        self.identity = Identity(self.sandbox)
        self.arm = Arm(self.sandbox, self.identity)
        self.operations = Operations(self.sandbox, self.arm)
        for provider_class in selected_providers():
            self.sandbox.providers.append(provider_class(self.sandbox, self.arm, self.operations, self.faults))
        Admin(self.sandbox, self.faults, self.operations)

    # -- request dispatch on the main port ----------------------------------------------
    def dispatch(self, request):
        if request.path.startswith("/_sandbox/"):
            handler, params = self.sandbox.admin.match(request.method, request.path)
            if handler is None:
                return Response.json({"error": f"no admin route {request.method} {request.path}"},
                                     405 if params else 404)
            request.params = params
            return handler(request)

        is_arm = request.path.lower().startswith("/subscriptions/")
        headers = request_headers(request) if is_arm else {}
        fault = None
        try:
            response, fault = self.faults.apply_inbound(request, arm_error_response)
            if response is None:
                response = self._route(request)
        except DropConnection:
            self.sandbox.record_call(request, None, "timeout")
            raise
        except ArmError as err:
            response = arm_error_response(err.status, err.code, err.message, err.headers)
        except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
            self._log(f"unhandled error for {request.method} {request.path}: {err!r}")
            response = arm_error_response(500, "InternalServerError", f"sandbox bug: {err!r}")
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        self.sandbox.record_call(request, response.status, fault)
        return response

    def _route(self, request):
        handler, params = self.sandbox.public.match(request.method, request.path)
        if handler is None:
            if params:
                raise ArmError(405, "MethodNotAllowed",
                               f"The requested method {request.method} is not allowed; allowed: {', '.join(params)}.")
            raise ArmError(404, "NotFound", f"The sandbox does not model {request.method} {request.path}.")
        request.params = params
        return handler(request)

    # -- lifecycle -----------------------------------------------------------------------
    def env(self):
        ca = self.sandbox.ca_path
        env = {
            "AZURE_SUBSCRIPTION_ID": self.sandbox.subscription_id,
            "AZURE_TENANT_ID": self.sandbox.tenant_id,
            "AZURE_CLIENT_ID": self.sandbox.seed["client_id"],
            "AZURE_CLIENT_SECRET": self.sandbox.seed["client_secret"],
            "AZURE_AUTHORITY_HOST": self.sandbox.base_url,
            "AZURE_ARM_ENDPOINT": self.sandbox.base_url,
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "SRE_SANDBOX_URL": f"{self.sandbox.base_url}/_sandbox",
            "SRE_SANDBOX_DIR": self.state_dir,
        }
        for provider in self.sandbox.providers:
            env.update(provider.env())
        return env

    def write_runtime_files(self):
        env = self.env()
        runtime = {
            "pid": os.getpid(),
            "main_port": self.main.port,
            "ports": [self.main.port] + self._provider_ports(),
            "base_url": self.sandbox.base_url,
        }
        _atomic_write(os.path.join(self.state_dir, "env.json"), json.dumps(env, indent=2) + "\n")
        lines = ["# Generated by tests/sandbox/sandboxctl.py start; source it: . .sandbox/env.sh"]
        lines += [f"export {k}={_sh_quote(v)}" for k, v in env.items()]
        _atomic_write(os.path.join(self.state_dir, "env.sh"), "\n".join(lines) + "\n")
        # runtime.json last: its presence means "up and described".
        _atomic_write(os.path.join(self.state_dir, "runtime.json"), json.dumps(runtime, indent=2) + "\n")

    def _provider_ports(self):
        ports = []
        for provider in self.sandbox.providers:
            dataplane = getattr(provider, "dataplane", None)
            if dataplane:
                ports.extend(dataplane.ports().values())
        return ports

    def remove_runtime_files(self):
        for name in RUNTIME_FILES:
            try:
                os.remove(os.path.join(self.state_dir, name))
            except FileNotFoundError:
                pass

    def stop(self):
        for provider in self.sandbox.providers:
            provider.stop()
        self.main.stop()

    @staticmethod
    def _log(message):
        print(message, file=sys.stderr, flush=True)


def _sh_quote(value):
    return "'" + str(value).replace("'", "'\"'\"'") + "'"


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def run(state_dir, seed_dir, port=0):
    """Serve until SIGTERM or SIGINT; return the process exit code."""
    server = SandboxServer(state_dir, seed_dir, port)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())
    server.main.start()
    server.write_runtime_files()
    print(f"sandbox listening on {server.sandbox.base_url} (pid {os.getpid()})", file=sys.stderr, flush=True)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        # Remove the description first, so nobody picks up endpoints that are going away.
        server.remove_runtime_files()
        server.stop()
        print("sandbox stopped", file=sys.stderr, flush=True)
    return 0
