"""The real Azurite blob emulator, run by the sandbox as a child process.

Azurite (npm `azurite`, installed into `.cache/node` by
tools/install_system_deps.sh) serves the Blob REST API with snapshots but
without versioning or soft delete; the blob stand-in next door (`blobstore`)
covers those. The provider:

  - starts `azurite-blob` on a free 127.0.0.1 port, in memory (nothing on
    disk to clean up), over HTTPS with the sandbox's server certificate, so
    clients trust it through the same CA bundle as the rest of the sandbox;
  - seeds the containers, blobs and snapshots of `seed/azurite.json`
    (section `azurite.containers.{name}.blobs.{blob}`: `content_type`,
    `history: [{content, snapshot_after}]`, oldest first; each write is a
    Put Blob, `snapshot_after` takes a snapshot right after it);
  - on /_sandbox/reset deletes every container and seeds again;
  - stops Azurite with the sandbox (and the kernel stops it should the
    sandbox die: PR_SET_PDEATHSIG), leaving no node process behind.

Azurite runs with `--loose` (ignore headers it does not model) and
`--skipApiVersionCheck` (the SDK may be newer than the emulator). The
account is Azurite's well-known development account `devstoreaccount1`.

Environment: SRE_SANDBOX_AZURITE_BLOB_URL (`https://127.0.0.1:PORT/devstoreaccount1`),
SRE_SANDBOX_AZURITE_CONNECTION_STRING, SRE_SANDBOX_AZURITE_ACCOUNT, SRE_SANDBOX_AZURITE_KEY.
Admin: GET /_sandbox/azurite (containers, blobs, snapshots, content MD5s, the URL).
"""

import ctypes
import datetime
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from urllib.parse import quote
from xml.etree import ElementTree

from .. import tls
from ..blobstore import sharedkey
from ..web import Response

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
AZURITE_BLOB = os.path.join(REPO, ".cache", "node", "node_modules", ".bin", "azurite-blob")
# Azurite's documented development account (public, the same on every machine).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
API_VERSION = "2021-12-02"
START_TIMEOUT_S = 20


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent():
    # Runs in the child between fork and exec: if the sandbox process dies (even by SIGKILL)
    # the kernel sends Azurite SIGTERM, so no node process outlives the sandbox.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AzuriteError(RuntimeError):
    pass


class AzuriteProvider:
    name = "azurite"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.seed = sandbox.seed_section(self.name)
        state_dir = os.path.dirname(sandbox.ca_path)
        self.port = _free_port()
        self.log_path = os.path.join(state_dir, "azurite.log")
        self.process = self._start(state_dir)
        self.dataplane = self
        self._client_context = ssl.create_default_context(cafile=sandbox.ca_path)
        try:
            self._wait_until_up()
            self._seed()
        except Exception:
            self.stop()
            raise
        sandbox.admin.add("GET", r"/_sandbox/azurite", self._admin_state)
        sandbox.on_reset(self._reset)

    # -- process -------------------------------------------------------------------------------
    def _start(self, state_dir):
        if not os.access(AZURITE_BLOB, os.X_OK):
            raise AzuriteError(f"{AZURITE_BLOB} is missing: run tools/install_system_deps.sh (make system-deps)")
        cmd = [
            AZURITE_BLOB, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
            "--cert", os.path.join(state_dir, tls.SERVER_CERT), "--key", os.path.join(state_dir, tls.SERVER_KEY),
            "--disableTelemetry", "--silent", "--loose", "--skipApiVersionCheck",
        ]
        # In memory, Azurite still writes its debug log and nothing else; cwd keeps any stray file in the state dir.
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=state_dir,
                                    preexec_fn=_die_with_parent, close_fds=True)  # pylint: disable=subprocess-popen-preexec-fn

    def _wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AzuriteError(f"Azurite exited with {self.process.returncode} during start; see {self.log_path}")
            try:
                status, _headers, _body = self.call("GET", f"/{ACCOUNT}", "comp=list")
                if status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise AzuriteError(f"Azurite did not answer on port {self.port} within {START_TIMEOUT_S}s; see {self.log_path}")

    def ports(self):
        return {"azurite": self.port}

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    # -- a minimal Shared Key client (stdlib only, like the rest of the sandbox) ---------------
    def call(self, method, path, query="", body=b"", headers=None):
        headers = dict(headers or {})
        headers["x-ms-version"] = API_VERSION
        headers["x-ms-date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        headers["Authorization"] = sharedkey.authorization(ACCOUNT, ACCOUNT_KEY, method, path, query,
                                                           headers.items())
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self._client_context, timeout=10)
        try:
            conn.request(method, path + ("?" + query if query else ""), body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def _must(self, expected, method, path, query="", body=b"", headers=None):
        status, resp_headers, resp_body = self.call(method, path, query, body, headers)
        if status not in expected:
            raise AzuriteError(f"Azurite {method} {path}?{query} -> {status}: {resp_body[:300]!r}")
        return resp_headers, resp_body

    # -- seed and reset -------------------------------------------------------------------------
    def _seed(self):
        for cname, cspec in sorted(self.seed.get("containers", {}).items()):
            self._must((201,), "PUT", f"/{ACCOUNT}/{quote(cname)}", "restype=container")
            for bname, bspec in sorted(cspec.get("blobs", {}).items()):
                path = f"/{ACCOUNT}/{quote(cname)}/{quote(bname)}"
                for write in bspec.get("history", []):
                    content_type = write.get("content_type") or bspec.get("content_type") or "application/octet-stream"
                    self._must((201,), "PUT", path, body=write["content"].encode("utf-8"),
                               headers={"x-ms-blob-type": "BlockBlob", "Content-Type": content_type})
                    if write.get("snapshot_after"):
                        self._must((201,), "PUT", path, "comp=snapshot")

    def _container_names(self):
        _headers, body = self._must((200,), "GET", f"/{ACCOUNT}", "comp=list")
        return [el.text for el in ElementTree.fromstring(body).iter("Name")]

    def _reset(self):
        for name in self._container_names():
            self._must((202,), "DELETE", f"/{ACCOUNT}/{quote(name)}", "restype=container")
        self._seed()

    # -- provider interface ---------------------------------------------------------------------
    def account_url(self):
        return f"https://127.0.0.1:{self.port}/{ACCOUNT}"

    def env(self):
        url = self.account_url()
        return {
            "SRE_SANDBOX_AZURITE_BLOB_URL": url,
            "SRE_SANDBOX_AZURITE_ACCOUNT": ACCOUNT,
            "SRE_SANDBOX_AZURITE_KEY": ACCOUNT_KEY,
            "SRE_SANDBOX_AZURITE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={url};"),
        }

    def snapshot(self):
        """Containers and blobs as Azurite lists them now (with snapshots)."""
        try:
            containers = {}
            for cname in self._container_names():
                _headers, body = self._must((200,), "GET", f"/{ACCOUNT}/{quote(cname)}",
                                            "comp=list&include=snapshots&restype=container")
                blobs = containers.setdefault(cname, {})
                for blob in ElementTree.fromstring(body).iter("Blob"):
                    props = blob.find("Properties")
                    entry = {"snapshot": blob.findtext("Snapshot") or None,
                             "content_md5": props.findtext("Content-MD5"),
                             "size": int(props.findtext("Content-Length") or 0),
                             "etag": props.findtext("Etag")}
                    blobs.setdefault(blob.findtext("Name"), []).append(entry)
            return {"url": self.account_url(), "pid": self.process.pid, "containers": containers}
        except (OSError, http.client.HTTPException, AzuriteError, ElementTree.ParseError) as err:
            return {"url": self.account_url(), "error": str(err)}

    def _admin_state(self, request):
        return Response.json(self.snapshot())


__all__ = ["AzuriteProvider", "ACCOUNT", "ACCOUNT_KEY"]
