"""Azure Cosmos DB (Microsoft.DocumentDB, API for NoSQL) provider of the sandbox: continuous
backup and point-in-time restore (see routes.py for the ARM surface, model.py for the state).

Admin API (under /_sandbox/, never faulted or logged):

  GET        /_sandbox/cosmosdb            accounts (live and deleted) with databases, containers and events
  GET/PUT    /_sandbox/cosmosdb/settings   {"restore_duration_s": 1.0}: how long a restore or create runs

Faults: `/_sandbox/faults` applies (ARM on the main port); an `lro_fail` fault on a
restore PUT ends its operation Failed (code RestoreFailed unless the fault sets
`code`): a restored account is left in provisioningState Failed, a database or
container is not restored.
"""

from ..settings import AdminSettings
from ..web import Response
from . import model
from .routes import AsyncOperations, CosmosRoutes


DEFAULT_SETTINGS = {"restore_duration_s": 1.0}


class CosmosDbProvider:
    name = "cosmosdb"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.faults = faults
        self.settings = AdminSettings(sandbox, "cosmosdb", DEFAULT_SETTINGS)
        self.state = model.CosmosState(sandbox.seed_section(self.name))
        self.operations = AsyncOperations(sandbox)
        self.routes = CosmosRoutes(self)
        self.routes.register()
        sandbox.admin.add("GET", r"/_sandbox/cosmosdb", self._admin_state)
        sandbox.on_reset(self._reset)

    def _reset(self):
        self.operations.reset()
        self.state = model.CosmosState(self.sandbox.seed_section(self.name))
        self.settings.reset()

    def _admin_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    def snapshot(self):
        def describe(account):
            return {
                "id": self.routes.account_id(account),
                "resource_group": account.resource_group, "name": account.name, "location": account.location,
                "instance_id": account.instance_id, "backup": account.backup_type, "tier": account.tier,
                "create_mode": account.create_mode, "restore_parameters": account.restore_parameters,
                "provisioning_state": account.provisioning_state,
                "created": model.rfc3339(account.created), "deleted": model.rfc3339(account.deleted),
                "oldest_restorable": model.rfc3339(account.oldest_restorable),
                "databases": {db["name"]: sorted(c["name"] for c in db["containers"].values())
                              for db in account.databases.values()},
                "events": [{"operation": e.operation, "timestamp": model.rfc3339(e.timestamp),
                            "database": e.database, "container": e.container} for e in account.events],
            }
        return {"accounts": [describe(a) for a in self.state.accounts.values()],
                "deleted_accounts": [describe(a) for a in self.state.deleted_accounts],
                "operations": dict(self.operations.ops), "settings": dict(self.settings)}

    def env(self):
        return {}

    def stop(self):
        self.operations.reset()
