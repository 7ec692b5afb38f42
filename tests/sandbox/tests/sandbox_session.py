"""How the tests start the sandbox and talk to it (imported by conftest and tests;
not named conftest so `from ... import` cannot pick up another suite's conftest).

The sandbox is started through sandboxctl like a user would.

Clients reach it only through what a real user can set: the ARM endpoint
(base_url + credential scope), the authority host, and the CA bundle
(REQUESTS_CA_BUNDLE / SSL_CERT_FILE, exported for the session).
"""

import os
import subprocess
import sys

import requests
from azure.identity import ClientSecretCredential
from azure.mgmt.web import WebSiteManagementClient

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOXCTL = os.path.join(os.path.dirname(HERE), "sandboxctl.py")

# The checks sandboxctl stop relies on, for the tests that prove nothing is left behind.
sys.path.insert(0, os.path.dirname(HERE))
import sandboxctl as sandbox_cli  # noqa: E402  pylint: disable=wrong-import-position

port_open = sandbox_cli.port_open
process_alive = sandbox_cli.process_alive

RG = "rg-fundrbolt-sandbox"
SITE = "fundrbolt-sandbox-api"


def sandboxctl(*args, state_dir, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("SRE_SANDBOX_DIR", "SRE_SANDBOX_PORT")}
    proc = subprocess.run([sys.executable, SANDBOXCTL, *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"sandboxctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


class Sandbox:
    def __init__(self, state_dir, env):
        self.state_dir = state_dir
        self.env = env
        self.arm = env["AZURE_ARM_ENDPOINT"]
        self.admin_url = env["SRE_SANDBOX_URL"]
        self.ca = env["REQUESTS_CA_BUNDLE"]

    # -- admin API ---------------------------------------------------------------------
    def admin(self, method, path, body=None):
        resp = requests.request(method, f"{self.admin_url}/{path}", json=body, verify=self.ca, timeout=10)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def state(self):
        return self.admin("GET", "state")

    def calls(self):
        return self.admin("GET", "calls")["calls"]

    def fault(self, **spec):
        return self.admin("POST", "faults", spec)

    # -- real SDK clients ----------------------------------------------------------------
    def credential(self, secret=None):
        return ClientSecretCredential(
            self.env["AZURE_TENANT_ID"], self.env["AZURE_CLIENT_ID"], secret or self.env["AZURE_CLIENT_SECRET"],
            authority=self.env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
        )

    def web_client(self, credential=None, **kwargs):
        return WebSiteManagementClient(
            credential or self.credential(), self.env["AZURE_SUBSCRIPTION_ID"],
            base_url=self.arm, credential_scopes=[f"{self.arm}/.default"], **kwargs,
        )

    def health(self, host):
        resp = requests.get(f"https://{host}/health", timeout=10)
        return resp.status_code, resp.json()
