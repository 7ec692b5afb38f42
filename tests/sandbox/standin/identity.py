"""Microsoft Entra ID stand-in: OIDC discovery and the client-credentials token endpoint.

What MSAL (behind azure-identity's ClientSecretCredential) asks for, with
authority=https://127.0.0.1:PORT and disable_instance_discovery=True:

  GET  /{tenant}/v2.0/.well-known/openid-configuration   (tenant discovery)
  POST /{tenant}/oauth2/v2.0/token                        (grant_type=client_credentials)

Without disable_instance_discovery MSAL first calls
https://login.microsoftonline.com/common/discovery/instance for any authority
host it does not know, which cannot work offline; the sandbox cannot serve
that host. The v1 endpoints (/{tenant}/.well-known/openid-configuration and
/{tenant}/oauth2/token with resource=) are served too for older clients.

Tokens are opaque random strings remembered in memory with their audience
and expiry; ARM accepts only tokens it issued, unexpired, for an ARM audience.
"""

import secrets
import time

from .web import Response

# Audiences ARM accepts besides the sandbox's own URL: a client that keeps the
# SDK's default credential scope (https://management.azure.com/.default) while
# pointing base_url at the sandbox would be accepted by real ARM as well.
_PUBLIC_ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")


def _aad_error(status, error, description, codes=None):
    body = {
        "error": error,
        "error_description": description,
        "error_codes": codes or [],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": secrets.token_hex(16),
        "correlation_id": secrets.token_hex(16),
    }
    return Response.json(body, status)


class Identity:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self._tokens = {}  # token -> {"audience", "expires_at", "client_id"}
        tenant = r"/(?P<tenant>[^/]+)"
        sandbox.public.add("GET", tenant + r"/v2\.0/\.well-known/openid-configuration", self._openid_v2)
        sandbox.public.add("GET", tenant + r"/\.well-known/openid-configuration", self._openid_v1)
        sandbox.public.add("POST", tenant + r"/oauth2/v2\.0/token", self._token_v2)
        sandbox.public.add("POST", tenant + r"/oauth2/token", self._token_v1)
        # Tokens survive /_sandbox/reset on purpose: clients cache them, and a reset
        # is about resource state, not about logging everybody out.

    # -- discovery ---------------------------------------------------------------------
    def _tenant_or_error(self, request):
        tenant = request.params["tenant"]
        if tenant.lower() != self.sandbox.tenant_id.lower():
            return None, _aad_error(
                400, "invalid_tenant",
                f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.", [90002])
        return tenant, None

    def _openid(self, request, v2):
        tenant, error = self._tenant_or_error(request)
        if error:
            return error
        base = f"{self.sandbox.base_url}/{tenant}"
        suffix = "/v2.0" if v2 else ""
        oauth = f"{base}/oauth2/v2.0" if v2 else f"{base}/oauth2"
        return Response.json({
            "issuer": f"{base}{suffix}" if v2 else f"{self.sandbox.base_url}/{tenant}/",
            "authorization_endpoint": f"{oauth}/authorize",
            "token_endpoint": f"{oauth}/token",
            "device_authorization_endpoint": f"{oauth}/devicecode",
            "jwks_uri": f"{base}/discovery{suffix}/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "sandbox.local",
        })

    def _openid_v2(self, request):
        return self._openid(request, v2=True)

    def _openid_v1(self, request):
        return self._openid(request, v2=False)

    # -- tokens ------------------------------------------------------------------------
    def _token(self, request, audience_of):
        tenant, error = self._tenant_or_error(request)
        if error:
            return error
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type",
                              "AADSTS70003: The app requested an unsupported grant type. "
                              "The sandbox supports client_credentials only.", [70003])
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id:
            return _aad_error(400, "invalid_request",
                              "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
                              [900144])
        if client_id.lower() != self.sandbox.seed["client_id"].lower():
            return _aad_error(400, "unauthorized_client",
                              f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                              f"directory '{tenant}'.", [700016])
        if secret != self.sandbox.seed["client_secret"]:
            return _aad_error(401, "invalid_client",
                              "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                              f"request is the client secret value, not the client secret ID, for a secret added "
                              f"to app '{client_id}'.", [7000215])
        audience = audience_of(form)
        if not audience:
            return _aad_error(400, "invalid_scope",
                              "AADSTS1002012: The provided value for scope or resource is not valid. "
                              "Client credential flows must have a scope value with /.default suffixed "
                              "to the resource identifier.", [1002012])
        lifetime = int(self.sandbox.settings["token_lifetime_s"])
        token = "sandbox." + secrets.token_urlsafe(32)
        with self.sandbox.lock:
            self._tokens[token] = {"audience": audience, "expires_at": time.time() + lifetime,
                                   "client_id": client_id}
        return Response.json({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _token_v2(self, request):
        def audience(form):
            scopes = [s for s in (form.get("scope") or "").split() if s.endswith("/.default")]
            return scopes[0][: -len("/.default")] if len(scopes) == 1 else None
        return self._token(request, audience)

    def _token_v1(self, request):
        return self._token(request, lambda form: form.get("resource"))

    # -- used by ARM and the data-plane stand-ins --------------------------------------------
    def token_info(self, token):
        """{"audience", "expires_at", "client_id"} of a token this identity issued, else None.

        Data planes (Key Vault, Container Registry) check their own audiences with it.
        """
        with self.sandbox.lock:
            info = self._tokens.get(token)
            return dict(info) if info else None

    def check_arm_token(self, token):
        """None if the token may call ARM, else (ARM error code, message)."""
        with self.sandbox.lock:
            info = self._tokens.get(token)
        if info is None:
            return "InvalidAuthenticationToken", "The access token is invalid."
        if info["expires_at"] < time.time():
            return "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."
        own = self.sandbox.base_url.rstrip("/")
        # Cert and server answer to both spellings of loopback, so both are valid audiences.
        accepted = {own, own.replace("127.0.0.1", "localhost")} | set(_PUBLIC_ARM_AUDIENCES)
        if info["audience"].rstrip("/").lower() not in {a.lower() for a in accepted}:
            return ("InvalidAuthenticationTokenAudience",
                    f"The access token has been obtained for wrong audience or resource '{info['audience']}'. "
                    f"It should exactly match with one of the allowed audiences '{self.sandbox.base_url}/'.")
        return None
