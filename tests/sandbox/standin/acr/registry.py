"""The registries themselves: one HTTPS listener per registry, its login server.

A real registry answers at https://<name>.azurecr.io; here each registry gets
its own port and ARM reports `127.0.0.1:PORT` as `loginServer`, so an image
reference `127.0.0.1:PORT/mystira/api:1.3.0` is a real login-server reference.

Authentication is ACR's token exchange, as azure-containerregistry performs it
(azure/containerregistry/_authentication_policy.py, _exchange_client.py):

  1. any request without a valid ACR access token -> 401 and
     WWW-Authenticate: Bearer realm="https://HOST/oauth2/token",service="HOST",scope="repository:REPO:metadata_read"
  2. POST /oauth2/exchange  (form: grant_type=access_token, service, access_token=<Entra ID token>)
     -> {"refresh_token": <JWT>}
  3. POST /oauth2/token     (form: grant_type=refresh_token, service, scope, refresh_token)
     -> {"access_token": <JWT>} granting what the identity may do within `scope`
  4. the request again, with the access token.

The SDK never caches the access token: every call goes through steps 1-4
(step 2 is skipped while the refresh token is fresh). An identity without a
pull role on the registry gets an access token with an empty grant, so the
retried request is refused again with 401, which the SDK raises as
ClientAuthenticationError, as with a real registry.

Routes (api-version 2021-07-01 is what the SDK sends; any is accepted):
  GET /v2/                                   anonymous ping: 401 challenge, or {} with a token
  GET /acr/v1/_catalog                       {"repositories"} (+ Link), scope registry:catalog:*
  GET /acr/v1/{repo}                         repository properties
  GET /acr/v1/{repo}/_tags                   {"registry", "imageName", "tags"} (+ Link), n/last/orderby/digest
  GET /acr/v1/{repo}/_tags/{tag}             {"registry", "imageName", "tag"}
  GET /acr/v1/{repo}/_manifests              {"registry", "imageName", "manifests"} (+ Link)
  GET /acr/v1/{repo}/_manifests/{digest}     {"registry", "imageName", "manifest"}
  GET|HEAD /v2/{repo}/manifests/{tag|digest} the image manifest, Docker-Content-Digest (scope pull)
Errors are ACR's {"errors": [{"code", "message", "detail"}]}: NAME_UNKNOWN,
TAG_UNKNOWN, MANIFEST_UNKNOWN, UNAUTHORIZED, DENIED, UNSUPPORTED.
"""

import base64
import json
import secrets
import time
from urllib.parse import quote, unquote

from ..hosts import HostPool
from ..web import DropConnection, Response, Router
from . import model

# Audiences a registry accepts for the Entra ID token in /oauth2/exchange: the
# SDK's default (containerregistry.azure.net and its sovereign twins) and ARM's.
ACR_AUDIENCES = (
    "https://containerregistry.azure.net", "https://containerregistry.azure.cn", "https://containerregistry.azure.us",
    "https://management.azure.com", "https://management.core.windows.net",
)
# What a pull role (AcrPull, Reader) allows; push and delete need other roles.
PULL_ACTIONS = {"pull", "metadata_read"}
REFRESH_TOKEN_LIFETIME_S = 3 * 3600
ACCESS_TOKEN_LIFETIME_S = 75 * 60
REPO = r"(?P<repo>[^?]+?)"


def acr_error(status, code, message, detail=None, headers=None):
    error = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return Response.json({"errors": [error]}, status, headers)


def fault_error(status, code, message):
    """Shape of an injected fault on a registry port (what faults.apply_inbound builds)."""
    return acr_error(status, code, message)


def _jwt(claims):
    """A JWT-shaped token (the signature is random: only the sandbox checks it, by lookup).

    azure-containerregistry reads the refresh token's `exp` with base64.b64decode
    (not the URL-safe alphabet), so a payload whose encoding contains '-' or '_'
    would not parse there; a nonce is varied until the encoding avoids both.
    """
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    while True:
        claims["jti"] = secrets.token_hex(16)
        payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
        if "-" not in payload and "_" not in payload:
            break
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def parse_scopes(text):
    """'repository:a/b:pull,push registry:catalog:*' -> [{"type", "name", "actions"}]."""
    scopes = []
    for item in (text or "").split():
        kind, _sep, rest = item.partition(":")
        name, _sep, actions = rest.rpartition(":")
        if kind and name and actions:
            scopes.append({"type": kind, "name": name, "actions": sorted(set(actions.split(",")))})
    return scopes


class DataPlane(HostPool):
    """One listener per registry; `self.provider` is the AcrProvider."""

    def __init__(self, sandbox, provider):
        super().__init__(sandbox, provider)
        self.refresh_tokens = {}  # token -> {"service", "client_id", "expires_at"}
        self.access_tokens = {}   # token -> {"service", "access", "expires_at"}
        self.router = Router()
        self.router.add("POST", r"/oauth2/exchange", self._exchange)
        self.router.add("POST", r"/oauth2/token", self._token)
        self.router.add("GET", r"/v2/?", self._ping)
        self.router.add("GET", r"/acr/v1/_catalog", self._catalog)
        self.router.add("GET", r"/acr/v1/" + REPO + r"/_tags/(?P<tag>[^/]+)", self._tag)
        self.router.add("GET", r"/acr/v1/" + REPO + r"/_tags", self._tags)
        self.router.add("GET", r"/acr/v1/" + REPO + r"/_manifests/(?P<digest>[^/]+)", self._manifest_properties)
        self.router.add("GET", r"/acr/v1/" + REPO + r"/_manifests", self._manifests)
        self.router.add("GET", r"/acr/v1/" + REPO, self._repository)
        for method in ("GET", "HEAD"):
            self.router.add(method, r"/v2/" + REPO + r"/manifests/(?P<reference>[^/]+)", self._manifest)

    def ensure_hosts(self):
        for registry in self.provider.state.registries.values():
            registry.login_server = self.host_for((registry.name.lower(),), f"acr:{registry.name}")

    # -- dispatch ----------------------------------------------------------------------
    def _dispatcher(self, key):
        def dispatch(request):
            fault = None
            try:
                response, fault = self.provider.faults.apply_inbound(request, fault_error)
                if response is None:
                    response = self._route(key[0], request)
            except DropConnection:
                self.provider.record_call(key[0], request, None, "timeout")
                raise
            response.headers.setdefault("Docker-Distribution-Api-Version", "registry/2.0")
            response.headers.setdefault("X-Ms-Correlation-Request-Id", secrets.token_hex(16))
            self.provider.record_call(key[0], request, response.status, fault)
            return response
        return dispatch

    def _route(self, registry_key, request):
        handler, params = self.router.match(request.method, request.path)
        if handler is None:
            if params:
                return acr_error(405, "UNSUPPORTED", "The operation is unsupported.", headers={"Allow": ", ".join(params)})
            return acr_error(404, "NOT_FOUND", f"The sandbox does not model {request.method} {request.path}.")
        request.params = {k: unquote(v) for k, v in params.items()}
        with self.sandbox.lock:
            registry = self.provider.state.registry(registry_key)
            return handler(request, registry)

    # -- authentication ----------------------------------------------------------------
    def _challenge(self, registry, scope=None, detail=None, error=None):
        realm = f"https://{registry.login_server}/oauth2/token"
        value = f'Bearer realm="{realm}",service="{registry.login_server}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return acr_error(401, "UNAUTHORIZED",
                         "authentication required, visit https://aka.ms/acr/authorization for more information.",
                         detail, {"WWW-Authenticate": value})

    def _authorize(self, request, registry, kind=None, name=None, action=None):
        """None when the bearer token grants `action` on `kind:name`, else the 401 challenge."""
        scope = f"{kind}:{name}:{action}" if kind else None
        detail = [{"Type": kind, "Name": name, "Action": action}] if kind else None
        scheme, _sep, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._challenge(registry, scope, detail)
        info = self.access_tokens.get(token.strip())
        if info is None or info["service"] != registry.login_server:
            return self._challenge(registry, scope, detail, "invalid_token")
        if info["expires_at"] < time.time():
            return self._challenge(registry, scope, detail, "invalid_token")
        if kind is None:
            return None
        for grant in info["access"]:
            if grant["type"] == kind and grant["name"] == name and (action in grant["actions"] or "*" in grant["actions"]):
                return None
        return self._challenge(registry, scope, detail, "insufficient_scope")

    def _entra_token(self, token):
        """{"audience", "expires_at", "client_id"} of a token the sandbox identity issued, else None."""
        return self.provider.identity.token_info(token)

    def _exchange(self, request, registry):
        form = request.form()
        if form.get("grant_type") not in ("access_token", "access_token_refresh_token"):
            return acr_error(400, "UNSUPPORTED", "grant_type must be access_token (the sandbox has no AAD refresh tokens).")
        if form.get("service") != registry.login_server:
            return acr_error(400, "UNAUTHORIZED", f"service must be '{registry.login_server}', not '{form.get('service')}'.")
        info = self._entra_token(form.get("access_token") or "")
        if info is None:
            return acr_error(401, "UNAUTHORIZED", "The access token is invalid: it was not issued by the tenant.")
        if info["expires_at"] < time.time():
            return acr_error(401, "UNAUTHORIZED", "The access token has expired.")
        own = self.sandbox.base_url.rstrip("/").lower()
        if info["audience"].rstrip("/").lower() not in {a.lower() for a in ACR_AUDIENCES} | {own}:
            return acr_error(401, "UNAUTHORIZED",
                             f"The access token has the wrong audience '{info['audience']}'; expected "
                             f"https://containerregistry.azure.net or https://management.azure.com.")
        now = int(time.time())
        claims = {"sub": info.get("client_id"), "tenant": self.sandbox.tenant_id, "aud": registry.login_server,
                  "iss": "Azure Container Registry", "grant_type": "refresh_token", "version": "1.0",
                  "iat": now, "nbf": now, "exp": now + REFRESH_TOKEN_LIFETIME_S}
        token = _jwt(claims)
        self.refresh_tokens[token] = {"service": registry.login_server, "client_id": info.get("client_id"),
                                      "expires_at": claims["exp"]}
        return Response.json({"refresh_token": token})

    def _token(self, request, registry):
        form = request.form()
        grant_type = form.get("grant_type")
        if form.get("service") != registry.login_server:
            return acr_error(400, "UNAUTHORIZED", f"service must be '{registry.login_server}'.")
        if grant_type == "password":
            # The SDK's anonymous flow: allowed only with anonymous pull, which the sandbox registries lack.
            return acr_error(401, "UNAUTHORIZED", "Anonymous pull is not enabled on this registry.")
        if grant_type != "refresh_token":
            return acr_error(400, "UNSUPPORTED", "grant_type must be refresh_token.")
        info = self.refresh_tokens.get(form.get("refresh_token") or "")
        if info is None or info["service"] != registry.login_server or info["expires_at"] < time.time():
            return acr_error(401, "UNAUTHORIZED", "The refresh token is invalid or expired.")
        access = []
        if registry.identity_can_pull:
            for scope in parse_scopes(form.get("scope")):
                allowed = [a for a in scope["actions"] if a in PULL_ACTIONS or
                           (scope["type"] == "registry" and scope["name"] == "catalog")]
                if allowed:
                    access.append({"type": scope["type"], "name": scope["name"], "actions": allowed})
        now = int(time.time())
        claims = {"sub": info["client_id"], "aud": registry.login_server, "iss": "Azure Container Registry",
                  "iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_LIFETIME_S, "access": access, "version": "1.0"}
        token = _jwt(claims)
        self.access_tokens[token] = {"service": registry.login_server, "access": access, "expires_at": claims["exp"]}
        return Response.json({"access_token": token})

    # -- reads -------------------------------------------------------------------------
    def _ping(self, request, registry):
        return self._authorize(request, registry) or Response.json({})

    def _repo_or_error(self, request, registry, action="metadata_read"):
        name = request.params["repo"]
        denied = self._authorize(request, registry, "repository", name, action)
        if denied:
            return None, denied
        repo = registry.repository(name)
        if repo is None:
            return None, acr_error(404, "NAME_UNKNOWN", "repository name not known to registry",
                                   {"name": name})
        return repo, None

    @staticmethod
    def _link(path, last, n, **extra):
        query = f"last={quote(last, safe='')}&n={n}" + "".join(f"&{k}={v}" for k, v in extra.items() if v)
        return {"Link": f"<{path}?{query}>; rel=\"next\""}

    def _catalog(self, request, registry):
        denied = self._authorize(request, registry, "registry", "catalog", "*")
        if denied:
            return denied
        n = _int(request.query.get("n"))
        names, more = model.page(sorted(registry.repositories), n, request.query.get("last"))
        headers = self._link("/acr/v1/_catalog", names[-1], n or model.LIST_PAGE_DEFAULT) if more else {}
        return Response.json({"repositories": names}, headers=headers)

    def _repository(self, request, registry):
        repo, error = self._repo_or_error(request, registry)
        if error:
            return error
        return Response.json({
            "registry": registry.login_server, "imageName": repo.name,
            "createdTime": model.acr_time(repo.created), "lastUpdateTime": model.acr_time(repo.updated),
            "manifestCount": len(repo.manifests), "tagCount": len(repo.tags),
            "changeableAttributes": _changeable(), })

    @staticmethod
    def _tag_body(repo, name):
        tag = repo.tags[name]
        return {"name": name, "digest": tag["digest"], "createdTime": model.acr_time(tag["created"]),
                "lastUpdateTime": model.acr_time(tag["updated"]), "signed": False,
                "changeableAttributes": _changeable()}

    def _tags(self, request, registry):
        repo, error = self._repo_or_error(request, registry)
        if error:
            return error
        orderby = (request.query.get("orderby") or "").lower() or None
        names = repo.tag_names(orderby)
        if request.query.get("digest"):
            names = [n for n in names if repo.tags[n]["digest"] == request.query["digest"]]
        n = _int(request.query.get("n"))
        chunk, more = model.page(names, n, request.query.get("last"))
        headers = {}
        if more:
            headers = self._link(f"/acr/v1/{quote(repo.name, safe='')}/_tags", chunk[-1],
                                 n or model.LIST_PAGE_DEFAULT, orderby=orderby)
        return Response.json({"registry": registry.login_server, "imageName": repo.name,
                              "tags": [self._tag_body(repo, name) for name in chunk]}, headers=headers)

    def _tag(self, request, registry):
        repo, error = self._repo_or_error(request, registry)
        if error:
            return error
        name = request.params["tag"]
        if name not in repo.tags:
            return acr_error(404, "TAG_UNKNOWN", "the specified tag does not exist", {"Tag": name})
        return Response.json({"registry": registry.login_server, "imageName": repo.name,
                              "tag": self._tag_body(repo, name)})

    @staticmethod
    def _manifest_body(repo, manifest):
        return {"digest": manifest.digest, "imageSize": manifest.size,
                "createdTime": model.acr_time(manifest.created), "lastUpdateTime": model.acr_time(manifest.updated),
                "architecture": "amd64", "os": "linux",
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "configMediaType": "application/vnd.docker.container.image.v1+json",
                "tags": repo.tags_of(manifest.digest), "changeableAttributes": _changeable(quarantine=True)}

    def _manifests(self, request, registry):
        repo, error = self._repo_or_error(request, registry)
        if error:
            return error
        orderby = (request.query.get("orderby") or "").lower() or None
        manifests = sorted(repo.manifests.values(), key=lambda m: (m.updated, m.digest),
                           reverse=orderby == "timedesc")
        if orderby not in ("timedesc", "timeasc"):
            manifests = sorted(repo.manifests.values(), key=lambda m: m.digest)
        digests = [m.digest for m in manifests]
        n = _int(request.query.get("n"))
        chunk, more = model.page(digests, n, request.query.get("last"))
        headers = {}
        if more:
            headers = self._link(f"/acr/v1/{quote(repo.name, safe='')}/_manifests", chunk[-1],
                                 n or model.LIST_PAGE_DEFAULT, orderby=orderby)
        return Response.json({"registry": registry.login_server, "imageName": repo.name,
                              "manifests": [self._manifest_body(repo, repo.manifests[d]) for d in chunk]},
                             headers=headers)

    def _manifest_properties(self, request, registry):
        repo, error = self._repo_or_error(request, registry)
        if error:
            return error
        manifest = repo.manifests.get(request.params["digest"])
        if manifest is None:
            return acr_error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Digest": request.params["digest"]})
        return Response.json({"registry": registry.login_server, "imageName": repo.name,
                              "manifest": self._manifest_body(repo, manifest)})

    def _manifest(self, request, registry):
        repo, error = self._repo_or_error(request, registry, action="pull")
        if error:
            return error
        reference = request.params["reference"]
        digest = repo.tags[reference]["digest"] if reference in repo.tags else reference
        manifest = repo.manifests.get(digest)
        if manifest is None:
            return acr_error(404, "MANIFEST_UNKNOWN", "manifest tagged by \"%s\" is not found" % reference,
                             {"Tag": reference})
        return Response(200, manifest.body, {"Docker-Content-Digest": manifest.digest},
                        "application/vnd.docker.distribution.manifest.v2+json")


def _changeable(quarantine=False):
    attrs = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
    if quarantine:
        attrs["quarantineState"] = "Passed"
    return attrs


def _int(text):
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None
