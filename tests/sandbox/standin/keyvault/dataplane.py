"""The Key Vault secrets data plane: one HTTPS listener per vault.

A real vault is `https://<vault>.vault.azure.net/`; here every vault has its own
port, and its URL is `https://127.0.0.1:PORT/`. Paths, bodies, status codes
and error codes are those of the Key Vault REST API that azure-keyvault-secrets
4.x sends and parses (`_generated/_operations`):

  PUT    /secrets/{name}                     set (new version)            200 SecretBundle
  GET    /secrets/{name}/{version}           get; empty version = latest  200 SecretBundle
  PATCH  /secrets/{name}/{version}           update attributes, tags      200 SecretBundle (no value)
  GET    /secrets/{name}/versions            list versions (paged)        200 {value: [SecretItem], nextLink}
  GET    /secrets                            list secrets (paged)         200 {value, nextLink}
  DELETE /secrets/{name}                     soft delete                  200 DeletedSecretBundle
  GET    /deletedsecrets[/{name}]            deleted secrets              200
  POST   /deletedsecrets/{name}/recover      recover                      200 SecretBundle (no value)
  DELETE /deletedsecrets/{name}              purge                        204

Authentication is Key Vault's challenge protocol: a request without a bearer
token gets `401` with `WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
resource="<resource>"`; the SDK then asks the credential for `<resource>/.default`
and repeats the request with the token. The SDK checks (verify_challenge_resource)
that the vault host is a sub-domain of the resource host: for
`x.vault.azure.net` the resource is `https://vault.azure.net`. For
`127.0.0.1:PORT` the resource announced is `https://0.0.1:PORT`, of which
`127.0.0.1:PORT` is a sub-domain textually, so the unchanged check passes.
Tokens issued for that resource, or for `https://vault.azure.net` (what a
client that skips the challenge would ask for), are accepted.

The sandbox's fault injection (`/_sandbox/faults`) applies here too, matched
on the data-plane path (`/secrets/...`); calls are logged per vault
(`/_sandbox/keyvault/calls`).
"""

import re
import threading
import time
import uuid
from urllib.parse import quote

from ..hosts import HostPool
from ..web import BadJson, DropConnection, Response, Router
from . import model

PUBLIC_RESOURCE = "https://vault.azure.net"
API_VERSION_RE = re.compile(r"(\d+\.\d+|\d{4}-\d{2}-\d{2})(-preview)?")
PAGE_MAX = 25
NAME = r"(?P<name>[^/]+)"


class KvError(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.inner, self.headers = status, code, message, inner, headers


def error_response(status, code, message, headers=None, inner=None):
    error = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response.json({"error": error}, status, headers)


def _not_found(name, version=None):
    what = f"{name}/{version}" if version else name
    return KvError(404, "SecretNotFound",
                   f"A secret with (name/id) {what} was not found in this key vault. If you recently deleted this "
                   "secret you may be able to recover it using the correct recovery command. For help resolving "
                   "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


class DataPlane(HostPool):
    def __init__(self, sandbox, provider):
        super().__init__(sandbox, provider)
        self.routes = Router(ignore_case=True)
        for method, pattern, handler, permission in (
            ("GET", r"/secrets/?", self.list_secrets, "list"),
            ("GET", rf"/secrets/{NAME}/versions/?", self.list_versions, "list"),
            ("PUT", rf"/secrets/{NAME}/?", self.set_secret, "set"),
            ("DELETE", rf"/secrets/{NAME}/?", self.delete_secret, "delete"),
            ("GET", rf"/secrets/{NAME}(/(?P<version>[^/]*))?", self.get_secret, "get"),
            ("PATCH", rf"/secrets/{NAME}(/(?P<version>[^/]*))?", self.update_secret, "set"),
            ("GET", r"/deletedsecrets/?", self.list_deleted, "list"),
            ("GET", rf"/deletedsecrets/{NAME}/?", self.get_deleted, "get"),
            ("DELETE", rf"/deletedsecrets/{NAME}/?", self.purge, "purge"),
            ("POST", rf"/deletedsecrets/{NAME}/recover/?", self.recover, "recover"),
        ):
            self.routes.add(method, pattern, self._guarded(handler, permission))
        self._timers = []

    def ensure_hosts(self):
        for vault in self.provider.state.vaults.values():
            vault.host = self.host_for((vault.name.lower(),), f"keyvault:{vault.name}")

    def cancel_timers(self):
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- front door ------------------------------------------------------------------
    def _dispatcher(self, key):
        def dispatch(request):
            fault = None
            try:
                response, fault = self.provider.faults.apply_inbound(request, error_response)
                if response is None:
                    response = self._serve(key[0], request)
            except DropConnection:
                self.provider.record_call(key[0], request, None, "timeout")
                raise
            except KvError as err:
                response = error_response(err.status, err.code, err.message, err.headers, err.inner)
            except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
                response = error_response(500, "InternalServerError", f"sandbox bug: {err!r}")
            response.headers.setdefault("x-ms-keyvault-service-version", "1.9.0.0")
            response.headers.setdefault("x-ms-keyvault-region", "westeurope")
            if request.headers.get("x-ms-client-request-id"):
                response.headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
            response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            self.provider.record_call(key[0], request, response.status, fault)
            return response
        return dispatch

    def _serve(self, vault_key, request):
        with self.sandbox.lock:
            vault = self.provider.state.vault(vault_key)
        if vault is None:
            # The vault was removed from the state (reset with another seed): DNS would fail for real.
            raise DropConnection()
        self._authenticate(vault, request)
        version = request.query.get("api-version")
        if not version:
            raise KvError(400, "BadParameter", "The request URI must contain the api-version query parameter.")
        if not API_VERSION_RE.fullmatch(version):
            raise KvError(400, "BadParameter", f"The specified version ({version}) is not recognized. "
                          "Consider using the latest supported version (2025-07-01).")
        handler, params = self.routes.match(request.method, request.path)
        if handler is None:
            if params:
                raise KvError(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")
            raise KvError(404, "NotFound", f"The sandbox Key Vault does not model {request.method} {request.path}.")
        request.params = params
        with self.sandbox.lock:
            return handler(vault, request)

    def _challenge(self, vault):
        port = vault.host.rsplit(":", 1)[1]
        return (f'Bearer authorization="{self.sandbox.base_url}/{self.sandbox.tenant_id}", '
                f'resource="{resource_of(port)}"')

    def _authenticate(self, vault, request):
        header = request.headers.get("Authorization") or ""
        challenge = {"WWW-Authenticate": self._challenge(vault)}
        scheme, _space, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise KvError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                          headers=challenge)
        info = self.provider.token_info(token.strip())
        if info is None:
            raise KvError(401, "Unauthorized", "AKV10022: Invalid token: the token was not issued by this tenant.",
                          headers=challenge)
        if info["expires_at"] < time.time():
            raise KvError(401, "Unauthorized", "AKV10032: Invalid token: the token has expired.", headers=challenge)
        port = vault.host.rsplit(":", 1)[1]
        accepted = {resource_of(port), PUBLIC_RESOURCE}
        if info["audience"].rstrip("/").lower() not in accepted:
            raise KvError(401, "Unauthorized",
                          f"AKV10022: Invalid audience. Expected {PUBLIC_RESOURCE}, found: {info['audience']}.",
                          headers=challenge)

    def _guarded(self, handler, permission):
        def guarded(vault, request):
            if permission not in vault.permissions:
                raise KvError(
                    403, "Forbidden",
                    f"The user, group or application 'appid={self.sandbox.seed['client_id']};"
                    f"iss={self.sandbox.base_url}/{self.sandbox.tenant_id}/' does not have secrets {permission} "
                    f"permission on key vault '{vault.name};location={vault.location}'. For help resolving this "
                    "issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    inner="AccessDenied")
            return handler(vault, request)
        return guarded

    # -- JSON ------------------------------------------------------------------------
    @staticmethod
    def _url(vault):
        return f"https://{vault.host}"

    def _attributes(self, vault, version):
        attrs = {"enabled": version.enabled, "created": version.created, "updated": version.updated,
                 "recoveryLevel": vault.recovery_level, "recoverableDays": vault.retention_days}
        if version.not_before is not None:
            attrs["nbf"] = version.not_before
        if version.expires is not None:
            attrs["exp"] = version.expires
        return attrs

    def _bundle(self, vault, secret, version, with_value=True):
        body = {"id": f"{self._url(vault)}/secrets/{secret.name}/{version.id}",
                "attributes": self._attributes(vault, version)}
        if with_value:
            body["value"] = version.value
        if version.content_type is not None:
            body["contentType"] = version.content_type
        if version.tags:
            body["tags"] = dict(version.tags)
        return body

    def _item(self, vault, secret, version, with_version=True):
        body = self._bundle(vault, secret, version, with_value=False)
        if not with_version:
            body["id"] = f"{self._url(vault)}/secrets/{secret.name}"
        return body

    def _deleted(self, vault, deleted, item=False):
        secret = deleted.secret
        body = self._item(vault, secret, secret.current, with_version=not item)
        body.update({"recoveryId": f"{self._url(vault)}/deletedsecrets/{secret.name}",
                     "deletedDate": deleted.deleted, "scheduledPurgeDate": deleted.scheduled_purge})
        return body

    def _page(self, vault, request, items):
        """A page of `items` and the nextLink to the rest (`$skiptoken` is an offset here)."""
        try:
            size = int(request.query.get("maxresults") or PAGE_MAX)
            start = int(request.query.get("$skiptoken") or 0)
        except ValueError as err:
            raise KvError(400, "BadParameter", f"Invalid paging parameter: {err}") from err
        if not 1 <= size <= PAGE_MAX:
            raise KvError(400, "BadParameter", f"maxresults must be between 1 and {PAGE_MAX}.")
        page = items[start:start + size]
        next_link = None
        if start + size < len(items):
            next_link = (f"{self._url(vault)}{request.path}?api-version={quote(request.query['api-version'])}"
                         f"&$skiptoken={start + size}&maxresults={size}")
        return Response.json({"value": page, "nextLink": next_link})

    # -- lookups -----------------------------------------------------------------------
    @staticmethod
    def _live_secret(vault, name):
        secret = vault.secret(name)
        if secret is None or name.lower() in vault.in_transition:
            raise _not_found(name)
        return secret

    # -- secrets -------------------------------------------------------------------
    def set_secret(self, vault, request):
        name = request.params["name"]
        if not model.NAME_RE.fullmatch(name):
            raise KvError(400, "BadParameter", "The request URI contains an invalid name: "
                          f"{name}. Secret names may contain only 0-9, a-z, A-Z and -, up to 127 characters.")
        body = _body(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise KvError(400, "BadParameter", "Property value is required.")
        if len(value) > model.MAX_VALUE_CHARS:
            raise KvError(400, "BadParameter", "Secret value is too long; the maximum is 25 KB.")
        if vault.deleted_secret(name) is not None or name.lower() in vault.in_transition:
            raise KvError(409, "Conflict",
                          f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
                          "reused; in this state, the secret can only be recovered or purged.",
                          inner="ObjectIsDeletedButRecoverable")
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, dict) or len(tags) > 15):
            raise KvError(400, "BadParameter", "Tags must be an object of at most 15 string pairs.")
        attrs = body.get("attributes") or {}
        secret = vault.secret(name)
        if secret is None:
            secret = model.Secret(name)
            vault.secrets[name.lower()] = secret
        version = secret.add_version(value, body.get("contentType"), tags, attrs.get("enabled", True),
                                     attrs.get("nbf"), attrs.get("exp"))
        return Response.json(self._bundle(vault, secret, version))

    def get_secret(self, vault, request):
        name, version_id = request.params["name"], request.params.get("version") or ""
        secret = self._live_secret(vault, name)
        version = secret.version(version_id)
        if version is None:
            raise _not_found(name, version_id)
        if not version.enabled:
            raise KvError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                          inner="SecretDisabled")
        return Response.json(self._bundle(vault, secret, version))

    def update_secret(self, vault, request):
        name, version_id = request.params["name"], request.params.get("version") or ""
        secret = self._live_secret(vault, name)
        version = secret.version(version_id)
        if version is None:
            raise _not_found(name, version_id)
        body = _body(request)
        attrs = body.get("attributes") or {}
        if attrs.get("enabled") is not None:
            version.enabled = bool(attrs["enabled"])
        if "nbf" in attrs:
            version.not_before = attrs["nbf"]
        if "exp" in attrs:
            version.expires = attrs["exp"]
        if body.get("contentType") is not None:
            version.content_type = body["contentType"]
        if body.get("tags") is not None:
            version.tags = dict(body["tags"])
        version.updated = model.now_s()
        return Response.json(self._bundle(vault, secret, version, with_value=False))

    def list_versions(self, vault, request):
        secret = self._live_secret(vault, request.params["name"])
        return self._page(vault, request, [self._item(vault, secret, v) for v in secret.versions])

    def list_secrets(self, vault, request):
        items = [self._item(vault, s, s.current, with_version=False)
                 for key, s in sorted(vault.secrets.items()) if key not in vault.in_transition and s.current]
        return self._page(vault, request, items)

    # -- soft delete -----------------------------------------------------------------
    def delete_secret(self, vault, request):
        name = request.params["name"]
        secret = self._live_secret(vault, name)
        key = name.lower()
        del vault.secrets[key]
        deleted = model.DeletedSecret(secret, model.now_s(), vault.retention_days)
        vault.in_transition.add(key)

        def finish():
            vault.deleted[key] = deleted
            vault.in_transition.discard(key)
        self._later(finish)
        return Response.json(self._deleted(vault, deleted))

    def _deleted_or_404(self, vault, name):
        deleted = vault.deleted_secret(name)
        if deleted is None:
            raise KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return deleted

    def get_deleted(self, vault, request):
        return Response.json(self._deleted(vault, self._deleted_or_404(vault, request.params["name"])))

    def list_deleted(self, vault, request):
        items = [self._deleted(vault, d, item=True) for _key, d in sorted(vault.deleted.items())]
        return self._page(vault, request, items)

    def recover(self, vault, request):
        name = request.params["name"]
        deleted = self._deleted_or_404(vault, name)
        key = name.lower()
        del vault.deleted[key]
        vault.in_transition.add(key)

        def finish():
            vault.secrets[key] = deleted.secret
            vault.in_transition.discard(key)
        self._later(finish)
        secret = deleted.secret
        return Response.json(self._bundle(vault, secret, secret.current, with_value=False))

    def purge(self, vault, request):
        name = request.params["name"]
        self._deleted_or_404(vault, name)
        if vault.purge_protection:
            raise KvError(403, "Forbidden", f"Operation \"purge\" is not allowed because purge protection is "
                          f"enabled for this vault. Key Vault service will automatically purge it after the "
                          f"retention period has passed. Secret: {name}")
        del vault.deleted[name.lower()]
        return Response(204)

    def _later(self, work):
        """Finish a delete or recover after the configured delay, as the service does a moment later."""
        delay = float(self.provider.settings["transition_s"])

        def run():
            with self.sandbox.lock:
                work()
        if delay <= 0:
            work()
            return
        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()


def resource_of(port):
    """The challenge resource for a vault on 127.0.0.1:PORT (see the module docstring)."""
    return f"https://0.0.1:{port}"


def _body(request):
    try:
        data = request.json()
    except BadJson as err:
        raise KvError(400, "BadParameter", f"The request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise KvError(400, "BadParameter", "The request body must be a JSON object.")
    return data
