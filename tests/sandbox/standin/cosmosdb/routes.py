"""ARM routes of Microsoft.DocumentDB (azure-mgmt-cosmosdb 10, api-version 2026-03-15).

Paths and status codes are those of azure/mgmt/cosmosdb/operations/_operations.py:

  database_accounts.get / list_by_resource_group / list / check_name_exists (HEAD)
  database_accounts.begin_create_or_update   PUT   200 + Azure-AsyncOperation (the SDK accepts 200 only)
  database_accounts.begin_delete             DELETE 202 + Azure-AsyncOperation
  sql_resources.get/list_sql_databases, get/list_sql_containers
  sql_resources.begin_create_update_sql_database / _container   PUT 202 + Azure-AsyncOperation
  sql_resources.begin_delete_sql_database / _container           DELETE 202 + Azure-AsyncOperation
  restorable_database_accounts.list / list_by_location / get_by_location
  restorable_sql_databases.list, restorable_sql_containers.list, restorable_sql_resources.list

Long-running operations are polled the way Cosmos DB answers: an
`Azure-AsyncOperation` URL `.../providers/Microsoft.DocumentDB/locations/{loc}/operationsStatus/{id}`
returning `{"status": "InProgress" | "Succeeded" | "Failed", "error"}`; azure-core's
ARMPolling then GETs the resource itself for a PUT. (The sandbox's shared
`operationResults` route serves Location polling; Cosmos DB does not use it here.)
"""

import threading
import uuid

from ..arm import RG_PREFIX, ArmError
from ..web import Response
from . import model

API_VERSION = "2026-03-15"
NS = "Microsoft.DocumentDB"
SUB = r"/subscriptions/(?P<subscription>[^/]+)"
ACCOUNTS = RG_PREFIX + r"/providers/Microsoft\.DocumentDB/databaseAccounts"
ACCOUNT = ACCOUNTS + r"/(?P<account>[^/]+)"
DATABASE = ACCOUNT + r"/sqlDatabases/(?P<database>[^/]+)"
CONTAINER = DATABASE + r"/containers/(?P<container>[^/]+)"
LOCATION = SUB + r"/providers/Microsoft\.DocumentDB/locations/(?P<location>[^/]+)"
RESTORABLE = LOCATION + r"/restorableDatabaseAccounts/(?P<instance>[^/]+)"


def _bad_request(message, code="BadRequest"):
    return ArmError(400, code, message)


def _not_found(kind, name, rg=None):
    where = f" under resource group '{rg}'" if rg else ""
    return ArmError(404, "NotFound", f"The {kind} '{name}'{where} was not found.")


class AsyncOperations:
    """Cosmos DB's operationsStatus resources."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.ops = {}
        self.timers = []

    def start(self, location, duration_s, work, failure=None, on_failure=None):
        op_id = str(uuid.uuid4())
        self.ops[op_id] = {"status": "InProgress", "error": None, "location": location}

        def complete():
            with self.sandbox.lock:
                op = self.ops.get(op_id)
                if op is None:
                    return  # reset meanwhile
                try:
                    if failure:
                        op["status"], op["error"] = "Failed", failure
                        if on_failure:
                            on_failure()
                    else:
                        work()
                        op["status"] = "Succeeded"
                except Exception as err:  # a sandbox bug must end the operation, not hang it
                    op["status"], op["error"] = "Failed", {"code": "InternalServerError", "message": repr(err)}
        timer = threading.Timer(max(duration_s, 0), complete)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()
        url = (f"{self.sandbox.base_url}/subscriptions/{self.sandbox.subscription_id}/providers/{NS}/locations/"
               f"{location}/operationsStatus/{op_id}?api-version={API_VERSION}")
        return {"Azure-AsyncOperation": url, "Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))}

    def reset(self):
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        self.ops.clear()


class CosmosRoutes:
    def __init__(self, provider):
        self.p = provider
        self.arm = provider.arm
        self.sandbox = provider.sandbox

    def register(self):
        route = self.arm.arm_route
        route("GET", SUB + r"/providers/Microsoft\.DocumentDB/databaseAccounts", self.list_all)
        route("HEAD", r"/providers/Microsoft\.DocumentDB/databaseAccountNames/(?P<name>[^/]+)", self.name_exists)
        route("GET", ACCOUNTS, self.list_in_group)
        route("GET", ACCOUNT, self.get_account)
        route("PUT", ACCOUNT, self.put_account)
        route("DELETE", ACCOUNT, self.delete_account)
        route("GET", ACCOUNT + "/sqlDatabases", self.list_databases)
        route("GET", DATABASE, self.get_database)
        route("PUT", DATABASE, self.put_database)
        route("DELETE", DATABASE, self.delete_database)
        route("GET", DATABASE + "/containers", self.list_containers)
        route("GET", CONTAINER, self.get_container)
        route("PUT", CONTAINER, self.put_container)
        route("DELETE", CONTAINER, self.delete_container)
        route("GET", SUB + r"/providers/Microsoft\.DocumentDB/restorableDatabaseAccounts", self.restorable_all)
        route("GET", LOCATION + r"/restorableDatabaseAccounts", self.restorable_in_location)
        route("GET", RESTORABLE, self.restorable_one)
        route("GET", RESTORABLE + "/restorableSqlDatabases", self.restorable_databases)
        route("GET", RESTORABLE + "/restorableSqlContainers", self.restorable_containers)
        route("GET", RESTORABLE + "/restorableSqlResources", self.restorable_resources)
        route("GET", LOCATION + r"/operationsStatus/(?P<operation>[^/]+)", self.operation_status)

    # -- lookups ---------------------------------------------------------------------
    def _sub(self, request):
        sub = request.params["subscription"]
        if sub.lower() != self.sandbox.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")

    def _account(self, request):
        rg = self.arm.resource_group(request.params)
        account = self.p.state.account(rg["name"], request.params["account"])
        if account is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{NS}/databaseAccounts/{request.params['account']}' under resource group "
                           f"'{rg['name']}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return account

    def _ready_account(self, request):
        account = self._account(request)
        if account.provisioning_state != "Succeeded":
            raise ArmError(412, "PreconditionFailed", f"Database account '{account.name}' is in state "
                           f"{account.provisioning_state}; operations are not allowed until it succeeds.")
        return account

    def _database(self, request, account=None):
        account = account or self._account(request)
        db = account.databases.get(request.params["database"].lower())
        if db is None:
            raise _not_found("SQL database", request.params["database"])
        return account, db

    def _restorable(self, request):
        self._sub(request)
        account = self.p.state.restorable_by_instance(request.params["instance"])
        if account is None or account.location.replace(" ", "").lower() != \
                request.params["location"].replace(" ", "").lower():
            raise ArmError(404, "NotFound", f"Restorable database account with instance id "
                           f"'{request.params['instance']}' was not found in location '{request.params['location']}'.")
        return account

    # -- JSON -------------------------------------------------------------------------
    def account_id(self, account):
        return (f"/subscriptions/{self.sandbox.subscription_id}/resourceGroups/{account.resource_group}"
                f"/providers/{NS}/databaseAccounts/{account.name}")

    def restorable_id(self, account):
        return (f"/subscriptions/{self.sandbox.subscription_id}/providers/{NS}/locations/"
                f"{account.location.replace(' ', '')}/restorableDatabaseAccounts/{account.instance_id}")

    def account_json(self, account):
        endpoint = f"https://{account.name}.documents.azure.com:443/"
        region = {"id": f"{account.name}-{account.location}", "locationName": account.location,
                  "documentEndpoint": endpoint, "provisioningState": account.provisioning_state,
                  "failoverPriority": 0, "isZoneRedundant": False}
        if account.continuous:
            backup = {"type": "Continuous", "continuousModeProperties": {"tier": account.tier}}
        else:
            backup = {"type": "Periodic", "periodicModeProperties": {
                "backupIntervalInMinutes": 240, "backupRetentionIntervalInHours": 8, "backupStorageRedundancy": "Geo"}}
        properties = {
            "provisioningState": account.provisioning_state,
            "documentEndpoint": endpoint,
            "databaseAccountOfferType": "Standard",
            "consistencyPolicy": {"defaultConsistencyLevel": "Session", "maxIntervalInSeconds": 5,
                                  "maxStalenessPrefix": 100},
            "locations": [region], "writeLocations": [region], "readLocations": [region],
            "failoverPolicies": [{"id": region["id"], "locationName": account.location, "failoverPriority": 0}],
            "enableAutomaticFailover": False,
            "enableMultipleWriteLocations": False,
            "publicNetworkAccess": "Enabled",
            "instanceId": account.instance_id,
            "createMode": account.create_mode,
            "backupPolicy": backup,
            "disableLocalAuth": False,
            "minimalTlsVersion": "Tls12",
        }
        if account.restore_parameters:
            properties["restoreParameters"] = account.restore_parameters
        return {"id": self.account_id(account), "name": account.name, "location": account.location,
                "type": f"{NS}/databaseAccounts", "kind": "GlobalDocumentDB", "tags": dict(account.tags),
                "systemData": {"createdAt": model.rfc3339(account.created)}, "properties": properties}

    def restorable_json(self, account):
        return {
            "id": self.restorable_id(account), "name": account.instance_id, "location": account.location,
            "type": f"{NS}/locations/restorableDatabaseAccounts",
            "properties": {
                "accountName": account.name, "creationTime": model.rfc3339(account.created),
                "oldestRestorableTime": model.rfc3339(account.oldest_restorable),
                "deletionTime": model.rfc3339(account.deleted), "apiType": "Sql",
                "restorableLocations": [{
                    "locationName": account.location,
                    "regionalDatabaseAccountInstanceId": str(uuid.uuid5(uuid.NAMESPACE_URL, account.instance_id)),
                    "creationTime": model.rfc3339(account.created),
                    "deletionTime": model.rfc3339(account.deleted)}],
            },
        }

    def database_json(self, account, db):
        return {"id": f"{self.account_id(account)}/sqlDatabases/{db['name']}", "name": db["name"],
                "type": f"{NS}/databaseAccounts/sqlDatabases",
                "properties": {"resource": {"id": db["name"], "_rid": db["rid"], "_ts": 0,
                                            "_etag": f"\"{db['rid']}\"", "_colls": "colls/", "_users": "users/"}}}

    def container_json(self, account, db, container):
        return {"id": f"{self.account_id(account)}/sqlDatabases/{db['name']}/containers/{container['name']}",
                "name": container["name"], "type": f"{NS}/databaseAccounts/sqlDatabases/containers",
                "properties": {"resource": {
                    "id": container["name"], "_rid": container["rid"], "_ts": 0,
                    "partitionKey": {"paths": [container.get("partition_key", "/id")], "kind": "Hash", "version": 2},
                    "indexingPolicy": {"indexingMode": "consistent", "automatic": True,
                                       "includedPaths": [{"path": "/*"}], "excludedPaths": []}}}}

    # -- accounts ---------------------------------------------------------------------
    def list_all(self, request):
        self._sub(request)
        return Response.json({"value": [self.account_json(a) for a in self.p.state.accounts.values()]})

    def list_in_group(self, request):
        rg = self.arm.resource_group(request.params)
        return Response.json({"value": [self.account_json(a) for a in self.p.state.accounts.values()
                                        if a.resource_group.lower() == rg["name"].lower()]})

    def name_exists(self, request):
        return Response(200 if self.p.state.name_taken(request.params["name"]) else 404)

    def get_account(self, request):
        return Response.json(self.account_json(self._account(request)))

    def put_account(self, request):
        rg = self.arm.resource_group(request.params)
        name = request.params["account"]
        body = self.arm.body(request)
        props = body.get("properties") or {}
        existing = self.p.state.account(rg["name"], name)
        create_mode = props.get("createMode") or "Default"
        if existing is not None:
            if create_mode == "Restore":
                raise _bad_request(f"Database account '{name}' already exists; createMode Restore is only allowed "
                                   "when creating a new account.")
            # An update: only tags are modelled.
            existing.tags = dict(body.get("tags") or existing.tags)
            return Response.json(self.account_json(existing))
        if not (3 <= len(name) <= 44) or not all(c.islower() or c.isdigit() or c == "-" for c in name) \
                or name.startswith("-") or name.endswith("-"):
            raise _bad_request(f"Database account name '{name}' is invalid: use 3-44 lower-case letters, digits "
                               "and hyphens.", "InvalidResourceName")
        if self.p.state.name_taken(name):
            raise _bad_request(f"Database account name '{name}' is already in use. Account names are global; "
                               "choose another name.", "DatabaseAccountNameConflict")
        location = body.get("location")
        if not location:
            raise _bad_request("The location property is required.", "LocationRequired")
        if create_mode != "Restore":
            raise _bad_request("The sandbox creates new accounts only as restores (createMode Restore).")
        source, when = self._restore_source(props.get("restoreParameters") or {}, account_restore=True)
        at_time = source.existing_at(when)
        wanted = props["restoreParameters"].get("databasesToRestore")
        if wanted:
            for entry in wanted:
                db = at_time.get(str(entry.get("databaseName", "")).lower())
                if db is None:
                    raise _bad_request(f"Database '{entry.get('databaseName')}' did not exist in the source "
                                       f"account at {model.rfc3339(when)}.", "InvalidRestoreParameters")
                for coll in entry.get("collectionNames") or []:
                    if coll.lower() not in db["containers"]:
                        raise _bad_request(f"Container '{coll}' did not exist in database '{db['name']}' at "
                                           f"{model.rfc3339(when)}.", "InvalidRestoreParameters")
        seed = {"name": name, "location": location, "tags": body.get("tags") or {},
                "instance_id": str(uuid.uuid4()), "create_mode": "Restore",
                "tier": source.tier,
                "restore_parameters": dict(props["restoreParameters"], restoreMode="PointInTime")}
        account = model.Account(seed, rg["name"], created=model.utcnow())
        account.provisioning_state = "Creating"
        self.p.state.accounts[(rg["name"].lower(), name.lower())] = account

        def work():
            for db in at_time.values():
                entry = next((e for e in wanted or [] if e.get("databaseName", "").lower() == db["name"].lower()),
                             None)
                if wanted and entry is None:
                    continue
                names = [c["name"] for c in db["containers"].values()]
                if entry and entry.get("collectionNames"):
                    names = [n for n in names if n.lower() in {c.lower() for c in entry["collectionNames"]}]
                account.add_database(db["name"], "Create", names)
            account.provisioning_state = "Succeeded"

        def failed():
            account.provisioning_state = "Failed"

        headers = self.p.operations.start(location.replace(" ", "").lower(), self.p.settings["restore_duration_s"],
                                          work, self._lro_failure(request, "RestoreFailed"), failed)
        return Response.json(self.account_json(account), 200, headers)

    def delete_account(self, request):
        account = self._account(request)

        def work():
            self.p.state.accounts.pop((account.resource_group.lower(), account.name.lower()), None)
            account.deleted = model.utcnow()
            self.p.state.deleted_accounts.append(account)
        account.provisioning_state = "Deleting"
        headers = self.p.operations.start(account.location.replace(" ", "").lower(),
                                          self.p.settings["restore_duration_s"], work)
        return Response(202, b"", headers)

    def _restore_source(self, params, account_restore=False, account=None):
        """(restorable account, timestamp) of restoreParameters, validated like the service does."""
        source_id = params.get("restoreSource") or ""
        stamp = params.get("restoreTimestampInUtc")
        if not source_id or not stamp:
            raise _bad_request("restoreParameters needs restoreSource and restoreTimestampInUtc.",
                               "InvalidRestoreParameters")
        instance = source_id.rstrip("/").rsplit("/", 1)[-1]
        source = self.p.state.restorable_by_instance(instance)
        if source is None or "/restorabledatabaseaccounts/" not in source_id.lower():
            raise _bad_request(f"Restore source '{source_id}' is not a restorable database account.",
                               "InvalidRestoreSource")
        if account is not None and source is not account:
            raise _bad_request("A database or container can be restored only from the same account's restorable "
                               f"account ({self.restorable_id(account)}).", "InvalidRestoreSource")
        try:
            when = model.parse_time(stamp)
        except ValueError as err:
            raise _bad_request(f"restoreTimestampInUtc '{stamp}' is not a valid date-time: {err}",
                               "InvalidRestoreParameters") from err
        oldest, latest = source.oldest_restorable, source.latest_restorable
        if not oldest <= when <= latest:
            raise _bad_request(
                f"The restore timestamp {model.rfc3339(when)} is outside the restorable time range of account "
                f"'{source.name}' ({model.rfc3339(oldest)} to {model.rfc3339(latest)}).",
                "InvalidRestoreTimestamp")
        return source, when

    def _lro_failure(self, request, code):
        fault = self.p.faults.take(request.method, request.path, ("lro_fail",))
        if fault is None:
            return None
        return {"code": fault.code or code,
                "message": fault.message or "Injected sandbox fault: the restore failed; nothing was restored."}

    # -- SQL databases and containers ---------------------------------------------------
    def list_databases(self, request):
        account = self._account(request)
        return Response.json({"value": [self.database_json(account, db) for db in account.databases.values()]})

    def get_database(self, request):
        account, db = self._database(request)
        return Response.json(self.database_json(account, db))

    def put_database(self, request):
        account = self._ready_account(request)
        name = request.params["database"]
        resource = ((self.arm.body(request).get("properties") or {}).get("resource") or {})
        if resource.get("id") and resource["id"].lower() != name.lower():
            raise _bad_request(f"The resource id '{resource['id']}' does not match the database name '{name}'.")
        exists = name.lower() in account.databases
        if resource.get("createMode") == "Restore":
            if exists:
                raise _bad_request(f"Database '{name}' already exists; only a deleted database can be restored "
                                   "into the same account.", "DatabaseAlreadyExists")
            source, when = self._restore_source(resource.get("restoreParameters") or {}, account=account)
            db_then = source.existing_at(when).get(name.lower())
            if db_then is None:
                raise _bad_request(f"Database '{name}' did not exist in account '{account.name}' at "
                                   f"{model.rfc3339(when)}; nothing to restore.", "InvalidRestoreParameters")
            containers = [c["name"] for c in db_then["containers"].values()]

            def work():
                account.add_database(db_then["name"], "Recreate", containers)
            code = "RestoreFailed"
        else:
            if exists:
                return Response(202, b"", self.p.operations.start(self._loc(account), 0, lambda: None))

            def work():
                account.add_database(name)
            code = "CreateFailed"
        headers = self.p.operations.start(self._loc(account), self.p.settings["restore_duration_s"], work,
                                          self._lro_failure(request, code))
        return Response(202, b"", headers)

    def delete_database(self, request):
        account, db = self._database(request, self._ready_account(request))
        headers = self.p.operations.start(self._loc(account), 0, lambda: account.delete_database(db["name"]))
        return Response(202, b"", headers)

    def list_containers(self, request):
        account, db = self._database(request)
        return Response.json({"value": [self.container_json(account, db, c) for c in db["containers"].values()]})

    def _container(self, request):
        account, db = self._database(request)
        container = db["containers"].get(request.params["container"].lower())
        if container is None:
            raise _not_found("SQL container", request.params["container"])
        return account, db, container

    def get_container(self, request):
        return Response.json(self.container_json(*self._container(request)))

    def put_container(self, request):
        account, db = self._database(request, self._ready_account(request))
        name = request.params["container"]
        resource = ((self.arm.body(request).get("properties") or {}).get("resource") or {})
        exists = name.lower() in db["containers"]
        if resource.get("createMode") == "Restore":
            if exists:
                raise _bad_request(f"Container '{name}' already exists in database '{db['name']}'; only a deleted "
                                   "container can be restored.", "ContainerAlreadyExists")
            source, when = self._restore_source(resource.get("restoreParameters") or {}, account=account)
            db_then = source.existing_at(when).get(db["name"].lower())
            if db_then is None or name.lower() not in db_then["containers"]:
                raise _bad_request(f"Container '{name}' did not exist in database '{db['name']}' at "
                                   f"{model.rfc3339(when)}; nothing to restore.", "InvalidRestoreParameters")
            restored_name = db_then["containers"][name.lower()]["name"]

            def work():
                account.add_container(db, restored_name, "Recreate")
            code = "RestoreFailed"
        else:
            if exists:
                return Response(202, b"", self.p.operations.start(self._loc(account), 0, lambda: None))
            key = (resource.get("partitionKey") or {}).get("paths") or ["/id"]

            def work():
                account.add_container(db, name, "Create", key[0])
            code = "CreateFailed"
        headers = self.p.operations.start(self._loc(account), self.p.settings["restore_duration_s"], work,
                                          self._lro_failure(request, code))
        return Response(202, b"", headers)

    def delete_container(self, request):
        account, db, container = self._container(request)
        headers = self.p.operations.start(self._loc(account), 0,
                                          lambda: account.delete_container(db, container["name"]))
        return Response(202, b"", headers)

    @staticmethod
    def _loc(account):
        return account.location.replace(" ", "").lower()

    # -- restorable accounts and their events --------------------------------------------
    def restorable_all(self, request):
        self._sub(request)
        return Response.json({"value": [self.restorable_json(a) for a in self.p.state.restorable()]})

    def restorable_in_location(self, request):
        self._sub(request)
        loc = request.params["location"].replace(" ", "").lower()
        return Response.json({"value": [self.restorable_json(a) for a in self.p.state.restorable()
                                        if self._loc(a) == loc]})

    def restorable_one(self, request):
        return Response.json(self.restorable_json(self._restorable(request)))

    def _event_json(self, account, event, kind):
        base = self.restorable_id(account)
        resource = {"_rid": event.id[:12], "operationType": event.operation,
                    "canUndelete": "invalid" if event.operation != "Delete" else "valid",
                    "eventTimestamp": model.rfc3339(event.timestamp)}
        if kind == "database":
            resource.update(ownerId=event.database, ownerResourceId=event.database_rid,
                            database={"id": event.database, "_rid": event.database_rid})
            path = "restorableSqlDatabases"
        else:
            resource.update(ownerId=event.container, ownerResourceId=event.container_rid,
                            container={"id": event.container, "_rid": event.container_rid})
            path = "restorableSqlContainers"
        return {"id": f"{base}/{path}/{event.id}", "name": event.id,
                "type": f"{NS}/locations/restorableDatabaseAccounts/{path}", "properties": {"resource": resource}}

    def restorable_databases(self, request):
        account = self._restorable(request)
        return Response.json({"value": [self._event_json(account, e, "database") for e in account.events
                                        if e.container is None]})

    def restorable_containers(self, request):
        account = self._restorable(request)
        db_rid = request.query.get("restorablesqldatabaserid")
        try:
            start = model.parse_time(request.query["starttime"]) if request.query.get("starttime") else None
            end = model.parse_time(request.query["endtime"]) if request.query.get("endtime") else None
        except ValueError as err:
            raise _bad_request(f"startTime/endTime must be date-times: {err}") from err
        events = [e for e in account.events if e.container is not None
                  and (not db_rid or e.database_rid == db_rid)
                  and (start is None or e.timestamp >= start) and (end is None or e.timestamp <= end)]
        return Response.json({"value": [self._event_json(account, e, "container") for e in events]})

    def restorable_resources(self, request):
        account = self._restorable(request)
        stamp = request.query.get("restoretimestampinutc")
        try:
            when = model.parse_time(stamp) if stamp else account.latest_restorable
        except ValueError as err:
            raise _bad_request(f"restoreTimestampInUtc must be a date-time: {err}") from err
        if not account.oldest_restorable <= when <= account.latest_restorable:
            raise _bad_request(
                f"The restore timestamp {model.rfc3339(when)} is outside the restorable time range of account "
                f"'{account.name}' ({model.rfc3339(account.oldest_restorable)} to "
                f"{model.rfc3339(account.latest_restorable)}).", "InvalidRestoreTimestamp")
        items = [{"id": db["name"], "name": db["name"], "type": f"{NS}/locations/restorableDatabaseAccounts/"
                  "restorableSqlResources", "databaseName": db["name"],
                  "collectionNames": [c["name"] for c in db["containers"].values()]}
                 for db in account.existing_at(when).values()]
        return Response.json({"value": items})

    def operation_status(self, request):
        self._sub(request)
        op_id = request.params["operation"]
        op = self.p.operations.ops.get(op_id)
        if op is None:
            raise ArmError(404, "NotFound", f"Operation '{op_id}' was not found.")
        body = {"id": request.path, "name": op_id, "status": op["status"]}
        if op["error"]:
            body["error"] = op["error"]
        headers = {"Retry-After": str(int(self.sandbox.settings["lro_retry_after_s"]))} \
            if op["status"] == "InProgress" else {}
        return Response.json(body, 200, headers)
