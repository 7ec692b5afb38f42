"""ARM routes of Microsoft.DBforPostgreSQL/flexibleServers (ServersOperations of
azure-mgmt-postgresqlflexibleservers 3.0.0, api-version 2026-10-01).

Long-running operations are answered the way the PostgreSQL resource provider
answers them: `202` with an `Azure-AsyncOperation` header (the status monitor,
`{"name", "status", "startTime", "endTime"?, "error"?}`, what ARMPolling
follows), a `Location` header (`operationResults`: 202 while running, then the
server or the error) and `Retry-After`. The SDK's create accepts only 202 on
the initial call and, when the status monitor says Succeeded, GETs the server.
"""

from ..arm import RG_PREFIX, ArmError
from ..core import iso
from ..web import Response
from . import model

SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
PROVIDER = r"/providers/Microsoft\.DBforPostgreSQL"
SERVERS = PROVIDER + r"/flexibleServers"
SERVER = RG_PREFIX + SERVERS + r"/(?P<server>[^/]+)"
OPERATION = SUBSCRIPTION + PROVIDER + r"/locations/(?P<location>[^/]+)/(?P<kind>azureAsyncOperation|operationResults)/(?P<operation_id>[^/]+)"


def server_id(subscription_id, server):
    return (f"/subscriptions/{subscription_id}/resourceGroups/{server.resource_group}"
            f"/providers/{model.RESOURCE_TYPE}/{server.name}")


def parse_server_id(resource_id):
    """(subscription, resource group, name) of a flexible server resource id, or None."""
    parts = [p for p in (resource_id or "").split("/") if p]
    lowered = [p.lower() for p in parts]
    if (len(parts) == 8 and lowered[0] == "subscriptions" and lowered[2] == "resourcegroups"
            and lowered[4] == "providers" and lowered[5] == "microsoft.dbforpostgresql"
            and lowered[6] == "flexibleservers"):
        return parts[1], parts[3], parts[7]
    return None


class FlexRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm
        self.sandbox = provider.sandbox

    def register(self):
        route = self.arm.arm_route
        route("GET", SUBSCRIPTION + SERVERS, self.list_all)            # servers.list_by_subscription
        route("GET", RG_PREFIX + SERVERS, self.list_in_group)         # servers.list_by_resource_group
        route("GET", SERVER, self.get_server)                         # servers.get
        route("PUT", SERVER, self.create_server)                      # servers.begin_create_or_update
        route("DELETE", SERVER, self.delete_server)                   # servers.begin_delete
        # ARMPolling. The shared Location-polling route (operations.py) matches every
        # .../locations/{l}/operationResults/{id}; this provider's operations live here.
        route("GET", OPERATION, self.poll, first=True)

    # -- views -------------------------------------------------------------------------
    def server_view(self, server):
        sub = self.sandbox.subscription_id
        earliest = self.p.earliest_restore_time(server)
        properties = {
            "administratorLogin": server.administrator_login,
            "version": server.version,
            "minorVersion": "8" if server.version == "15" else "0",
            "state": server.state,
            "fullyQualifiedDomainName": server.fqdn,
            "storage": {"storageSizeGB": server.storage_gb, "autoGrow": "Disabled", "tier": "P4",
                        "iops": 120, "type": "Premium_LRS"},
            "authConfig": {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
            "dataEncryption": {"type": "SystemManaged"},
            "backup": {"backupRetentionDays": server.backup_retention_days, "geoRedundantBackup": "Disabled",
                       "earliestRestoreDate": iso(earliest)},
            "network": {"publicNetworkAccess": "Enabled"},
            "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
            "maintenanceWindow": {"customWindow": "Disabled", "dayOfWeek": 0, "startHour": 0, "startMinute": 0},
            "availabilityZone": server.availability_zone,
            "replicationRole": "Primary",
            "replicaCapacity": 5,
            "replica": {"role": "Primary", "capacity": 5},
        }
        if server.source_server_id:
            # Readable per the API (visibility read/create); createMode and pointInTimeUTC are not.
            properties["sourceServerResourceId"] = server.source_server_id
        return {
            "id": server_id(sub, server),
            "name": server.name,
            "type": model.RESOURCE_TYPE,
            "location": server.location,
            "tags": dict(server.tags),
            "sku": dict(server.sku),
            "systemData": {"createdAt": iso(server.created_at), "createdByType": "Application"},
            "properties": properties,
        }

    # -- lookups -----------------------------------------------------------------------
    def _server(self, request):
        rg = self.arm.resource_group(request.params)
        server = self.p.state.get(rg["name"], request.params["server"])
        if server is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{model.RESOURCE_TYPE}/{request.params['server']}' under resource group "
                           f"'{rg['name']}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return server

    # -- reads -------------------------------------------------------------------------
    def list_all(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return Response.json({"value": [self.server_view(s) for s in self.p.state.servers.values()]})

    def list_in_group(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json({"value": [self.server_view(s) for s in self.p.state.in_group(rg["name"])]})

    def get_server(self, request):
        return Response.json(self.server_view(self._server(request)))

    # -- create (long-running) ---------------------------------------------------------
    def create_server(self, request):
        """Create a server: `Default` (empty) or `PointInTimeRestore` from another server.

        Everything that can be checked is checked before the 202, as the
        resource provider validates a request before it accepts it: a taken
        name, an unknown source, a restore point outside the source's window.
        """
        rg = self.arm.resource_group(request.params)
        name = request.params["server"]
        body = self.arm.body(request)
        properties = body.get("properties") or {}
        mode = properties.get("createMode") or "Default"
        location = body.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        # A PUT naming an existing server would be an update in Azure; the sandbox models creates
        # only, and refuses them as the service refuses a name in use anywhere.
        if self.p.state.name_in_use(name):
            raise ArmError(409, "ServerNameAlreadyExists", "Specified server name is already used by another server.")
        if mode.lower() in ("default", "create"):
            server = model.FlexServer(rg["name"], name, location, version=properties.get("version", "15"),
                                      sku=body.get("sku"),
                                      storage_gb=(properties.get("storage") or {}).get("storageSizeGB", 32),
                                      administrator_login=properties.get("administratorLogin") or "sandboxadmin",
                                      tags=body.get("tags"))
            return self._start_create(request, server, lambda: self.p.create_cluster(server.name))
        if mode.lower() != "pointintimerestore":
            raise ArmError(400, "InvalidParameterValue",
                           f"The sandbox models createMode Default and PointInTimeRestore, not '{mode}'.")
        return self._start_restore(request, rg, name, location, body, properties)

    def _start_restore(self, request, rg, name, location, body, properties):
        source_id = properties.get("sourceServerResourceId")
        parsed = parse_server_id(source_id)
        if parsed is None:
            raise ArmError(400, "InvalidParameterValue",
                           f"sourceServerResourceId '{source_id}' is not the resource id of a flexible server.")
        source_sub, source_rg, source_name = parsed
        source = (self.p.state.get(source_rg, source_name)
                  if source_sub.lower() == self.sandbox.subscription_id.lower() else None)
        if source is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{model.RESOURCE_TYPE}/{source_name}' under resource group "
                           f"'{source_rg}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        if source.state != model.READY:
            raise ArmError(409, "ServerNotReady",
                           f"Server '{source.name}' is in state '{source.state}'; a restore needs it Ready.")
        if location.replace(" ", "").lower() != source.location.replace(" ", "").lower():
            raise ArmError(400, "InvalidParameterValue",
                           f"A point-in-time restore must be in the source server's region ('{source.location}'); "
                           f"use GeoRestore for another region.")
        try:
            point = model.parse_time(properties.get("pointInTimeUTC"))
        except (ValueError, TypeError):
            raise ArmError(400, "InvalidParameterValue",
                           f"pointInTimeUTC '{properties.get('pointInTimeUTC')}' is not an ISO 8601 time.") from None
        earliest = self.p.earliest_restore_time(source)
        now = model.utcnow()
        if point < earliest or point > now:
            raise ArmError(400, "InvalidParameterValue",
                           f"The point in time '{iso(point)}' is outside the restore window of server "
                           f"'{source.name}': it must be between the earliest restore date '{iso(earliest)}' "
                           f"and the current time '{iso(now)}'.")
        server = model.FlexServer(rg["name"], name, source.location, tags=body.get("tags"))
        server.inherit_from(source)
        server.create_mode = "PointInTimeRestore"
        server.source_server_id = server_id(self.sandbox.subscription_id, source)
        server.point_in_time = point
        return self._start_create(request, server, lambda: self.p.restore_cluster(source.name, server.name, point))

    def _start_create(self, request, server, work):
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        fail_after = None
        if fault is not None:
            fail_after = (fault.status or 400, fault.code or "RestoreFailed",
                          fault.message or (f"Injected sandbox fault: the restore of server '{server.name}' failed "
                                            f"after the server reached state '{model.PROVISIONING}'."),
                          bool(fault.spec.get("leave_server")))
        server.state = model.PROVISIONING
        operation = model.Operation(server.location.replace(" ", "").lower(), (server.resource_group, server.name))
        server.operation_id = operation.id
        self.p.state.add(server)
        self.p.state.operations[operation.id] = operation
        self.p.restorer.start(work, operation, server, fail_after)
        return Response(202, b"", self._operation_headers(operation, request))

    # -- delete (long-running) ---------------------------------------------------------
    def delete_server(self, request):
        server = self._server(request)
        operation = model.Operation(server.location.replace(" ", "").lower(), (server.resource_group, server.name))
        self.p.state.operations[operation.id] = operation
        self.p.state.remove(server)
        self.p.restorer.start(lambda: self.p.drop_cluster(server.name), operation, server)
        return Response(202, b"", self._operation_headers(operation, request))

    # -- operations --------------------------------------------------------------------
    def _operation_headers(self, operation, request):
        base = f"{self.sandbox.base_url}/subscriptions/{self.sandbox.subscription_id}/providers/Microsoft.DBforPostgreSQL/locations/{operation.location}"
        version = request.query.get("api-version")
        return {
            "Azure-AsyncOperation": f"{base}/azureAsyncOperation/{operation.id}?api-version={version}",
            "Location": f"{base}/operationResults/{operation.id}?api-version={version}",
            "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"])),
        }

    def poll(self, request):
        operation = self.p.state.operations.get(request.params["operation_id"])
        if operation is None or request.params["subscription"].lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "OperationNotFound",
                           f"The operation '{request.params['operation_id']}' could not be found.")
        if request.params["kind"].lower() == "azureasyncoperation":
            return Response.json(operation.describe())
        # Location polling: 202 while running, the error when failed, the server (or nothing) when done.
        if operation.status == "InProgress":
            return Response(202, b"", self._operation_headers(operation, request))
        if operation.status == "Failed":
            status, code, message = operation.error
            raise ArmError(status if status >= 400 else 400, code, message)
        server = self.p.state.get(*operation.server_key)
        if server is None:
            return Response(204)
        return Response.json(self.server_view(server))
