"""What every ARM (Azure Resource Manager) endpoint of the sandbox shares:
error bodies, response headers, bearer-token and api-version checks, and the
resource-group lookup. Providers register ARM routes through `arm_route` so
they get the same front door real ARM has.
"""

import re
import uuid

from .web import BadJson, Response

RG_PREFIX = r"/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview|-beta|-privatepreview)?", re.IGNORECASE)


class ArmError(Exception):
    """Raised anywhere inside an ARM handler; becomes {"error": {"code", "message"}}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def arm_error_response(status, code, message, headers=None):
    return Response.json({"error": {"code": code, "message": message}}, status, headers)


def not_found(resource_type, name, resource_group):
    return ArmError(
        404, "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def request_headers(request):
    """Headers ARM puts on every response; clients log and correlate with them."""
    request_id = str(uuid.uuid4())
    headers = {
        "x-ms-request-id": request_id,
        "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id") or request_id,
        "x-ms-routing-request-id": f"SANDBOX:{request_id}",
        "Cache-Control": "no-cache",
    }
    # ARM echoes the id azure-core sends, which ties client logs to server logs.
    if request.headers.get("x-ms-client-request-id"):
        headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    return headers


class Arm:
    """ARM front door: token check, api-version check, subscription / RG lookup."""

    def __init__(self, sandbox, identity):
        self.sandbox = sandbox
        self.identity = identity
        self.resource_groups = {}
        self.load_seed()
        sandbox.on_reset(self.load_seed)
        # Tools look a resource group up for its location before they act
        # (azure.azcollection does, through ResourceManagementClient).
        self.arm_route("GET", RG_PREFIX, self._get_resource_group)

    def load_seed(self):
        self.resource_groups = {
            rg["name"].lower(): {"name": rg["name"], "location": rg.get("location", "westeurope")}
            for rg in self.sandbox.seed_section("resource_groups") or []
        }

    # -- lookups used by providers -----------------------------------------------------
    def resource_group(self, params):
        """Resolve {subscription}/{resource_group} from route params or raise the ARM 404."""
        sub = params["subscription"]
        if sub.lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        rg = self.resource_groups.get(params["resource_group"].lower())
        if rg is None:
            raise ArmError(404, "ResourceGroupNotFound",
                           f"Resource group '{params['resource_group']}' could not be found.")
        return rg

    def _get_resource_group(self, request):
        rg = self.resource_group(request.params)
        return Response.json({
            "id": self.rg_id(rg),
            "name": rg["name"],
            "type": "Microsoft.Resources/resourceGroups",
            "location": rg["location"],
            "tags": {},
            "properties": {"provisioningState": "Succeeded"},
        })

    def rg_id(self, rg):
        return f"/subscriptions/{self.sandbox.subscription_id}/resourceGroups/{rg['name']}"

    # -- front door --------------------------------------------------------------------
    def _authenticate(self, request):
        challenge = (
            f'Bearer authorization_uri="{self.sandbox.base_url}/{self.sandbox.tenant_id}", '
            f'error="invalid_token", error_description="{{}}"'
        )
        header = request.headers.get("Authorization") or ""
        if not header:
            msg = "The authentication failed because of missing 'Authorization' header."
            raise ArmError(401, "AuthenticationFailed", f"Authentication failed. {msg}",
                           {"WWW-Authenticate": challenge.format(msg)})
        scheme, _space, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            msg = "The 'Authorization' header is not in the 'Bearer <token>' format."
            raise ArmError(401, "InvalidAuthenticationToken", msg,
                           {"WWW-Authenticate": challenge.format(msg)})
        problem = self.identity.check_arm_token(token.strip())
        if problem:
            code, msg = problem
            raise ArmError(401, code, msg, {"WWW-Authenticate": challenge.format(msg)})

    @staticmethod
    def _check_api_version(request):
        version = request.query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if not _API_VERSION.fullmatch(version):
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version '{version}' is invalid. The supported versions are "
                           "of the form 'yyyy-mm-dd' or 'yyyy-mm-dd-preview'.")

    def arm_route(self, method, pattern, handler, first=False):
        """Register an ARM handler(request) -> Response (or raise ArmError); first: see Router.add."""
        def wrapped(request):
            self._authenticate(request)
            self._check_api_version(request)
            try:
                with self.sandbox.lock:
                    return handler(request)
            except BadJson as err:
                raise ArmError(400, "InvalidRequestContent",
                               f"The request content was invalid and could not be deserialized: {err}")
        self.sandbox.public.add(method, pattern, wrapped, first=first)

    def body(self, request):
        """JSON body of a write; ARM rejects a missing/invalid one with 400."""
        data = request.json()
        if not isinstance(data, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: expected a JSON object.")
        return data
