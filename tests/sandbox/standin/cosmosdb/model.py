"""Cosmos DB (API for NoSQL) state for point-in-time restore.

What is kept: database accounts (live and deleted) with their backup policy
and instance id, their SQL databases and containers, and the create/delete
events of those databases and containers, because continuous backup answers
"what existed at time T" from exactly those events. Documents are not modelled.

Every account with continuous backup is a *restorable database account*,
addressed by location and instance id, restorable from its oldest restorable
time (its creation, or the start of the 7/30-day window) up to now, or up to
its deletion time once deleted.

Everything here runs under the sandbox lock; no locking in this module.
"""

import datetime
import hashlib
import uuid

TIERS = {"Continuous7Days": 7, "Continuous30Days": 30}


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(ts):
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def parse_time(text):
    """ISO 8601 / RFC 3339 from a client; naive times are UTC. Raises ValueError."""
    value = datetime.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def ago(days=0, hours=0, minutes=0):
    return utcnow() - datetime.timedelta(days=days, hours=hours, minutes=minutes)


def rid(*parts):
    """A stable base64-looking resource id, as Cosmos DB's `_rid`."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:12]


class Event:
    """A create/delete/recreate of a database or a container."""

    def __init__(self, operation, timestamp, database, database_rid, container=None, container_rid=None):
        self.id = str(uuid.uuid4())
        self.operation = operation  # Create | Delete | Recreate
        self.timestamp = timestamp
        self.database = database
        self.database_rid = database_rid
        self.container = container
        self.container_rid = container_rid


class Account:
    def __init__(self, seed, resource_group, created=None):
        self.resource_group = resource_group
        self.name = seed["name"]
        self.location = seed.get("location", "westeurope")
        self.tags = dict(seed.get("tags", {}))
        self.instance_id = seed.get("instance_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"cosmos/{self.name}"))
        self.created = created or ago(days=seed.get("created_days_ago", 30))
        self.deleted = ago(days=seed["deleted_days_ago"]) if seed.get("deleted_days_ago") is not None else None
        self.backup_type = seed.get("backup", "Continuous")
        self.tier = seed.get("tier", "Continuous30Days")
        self.create_mode = seed.get("create_mode", "Default")
        self.restore_parameters = seed.get("restore_parameters")
        self.provisioning_state = "Succeeded"
        self.databases = {}  # lower name -> {"name", "rid", "containers": {lower: {"name", "rid", "partition_key"}}}
        self.events = []
        for db in seed.get("databases", []):
            self._seed_database(db)

    def _seed_database(self, db):
        db_rid = rid(self.instance_id, db["name"])
        created = ago(days=db.get("created_days_ago", 0), hours=db.get("created_hours_ago", 0)) \
            if ("created_days_ago" in db or "created_hours_ago" in db) else self.created
        self.events.append(Event("Create", created, db["name"], db_rid))
        containers = {}
        for c in db.get("containers", []):
            c_rid = rid(self.instance_id, db["name"], c["name"])
            c_created = ago(days=c.get("created_days_ago", 0), hours=c.get("created_hours_ago", 0)) \
                if ("created_days_ago" in c or "created_hours_ago" in c) else created
            self.events.append(Event("Create", c_created, db["name"], db_rid, c["name"], c_rid))
            entry = {"name": c["name"], "rid": c_rid, "partition_key": c.get("partition_key", "/id")}
            if c.get("deleted_hours_ago") is not None:
                self.events.append(Event("Delete", ago(hours=c["deleted_hours_ago"]), db["name"], db_rid,
                                         c["name"], c_rid))
            else:
                containers[c["name"].lower()] = entry
        if db.get("deleted_hours_ago") is not None:
            when = ago(hours=db["deleted_hours_ago"])
            for c in containers.values():
                self.events.append(Event("Delete", when, db["name"], db_rid, c["name"], c["rid"]))
            self.events.append(Event("Delete", when, db["name"], db_rid))
        else:
            self.databases[db["name"].lower()] = {"name": db["name"], "rid": db_rid, "containers": containers}
        self.events.sort(key=lambda e: e.timestamp)

    # -- continuous backup ------------------------------------------------------------
    @property
    def continuous(self):
        return self.backup_type == "Continuous"

    @property
    def oldest_restorable(self):
        window_start = (self.deleted or utcnow()) - datetime.timedelta(days=TIERS.get(self.tier, 30))
        return max(self.created, window_start)

    @property
    def latest_restorable(self):
        return self.deleted or utcnow()

    def existing_at(self, when):
        """{database name: {"rid", "containers": {name: rid}}} as of `when`, replayed from the events."""
        state = {}
        for event in self.events:
            if event.timestamp > when:
                break
            key = event.database.lower()
            if event.container is None:
                if event.operation == "Delete":
                    state.pop(key, None)
                else:
                    state[key] = {"name": event.database, "rid": event.database_rid, "containers": {}}
            elif key in state:
                if event.operation == "Delete":
                    state[key]["containers"].pop(event.container.lower(), None)
                else:
                    state[key]["containers"][event.container.lower()] = {
                        "name": event.container, "rid": event.container_rid}
        return state

    # -- changes ----------------------------------------------------------------------
    def add_database(self, name, operation="Create", containers=()):
        db_rid = rid(self.instance_id, name, str(len(self.events)))
        now = utcnow()
        self.events.append(Event(operation, now, name, db_rid))
        entry = {"name": name, "rid": db_rid, "containers": {}}
        self.databases[name.lower()] = entry
        for container in containers:
            self.add_container(entry, container, operation)
        return entry

    def add_container(self, database, name, operation="Create", partition_key="/id"):
        c_rid = rid(self.instance_id, database["name"], name, str(len(self.events)))
        self.events.append(Event(operation, utcnow(), database["name"], database["rid"], name, c_rid))
        entry = {"name": name, "rid": c_rid, "partition_key": partition_key}
        database["containers"][name.lower()] = entry
        return entry

    def delete_container(self, database, name):
        entry = database["containers"].pop(name.lower())
        self.events.append(Event("Delete", utcnow(), database["name"], database["rid"], entry["name"], entry["rid"]))

    def delete_database(self, name):
        entry = self.databases.pop(name.lower())
        for container in list(entry["containers"].values()):
            self.delete_container(entry, container["name"])
        self.events.append(Event("Delete", utcnow(), entry["name"], entry["rid"]))


class CosmosState:
    def __init__(self, seed):
        self.accounts = {}  # (rg lower, name lower) -> Account, live ones
        self.deleted_accounts = []  # Account with .deleted set
        for entry in seed.get("accounts", []):
            account = Account(entry, entry["resource_group"])
            if account.deleted:
                self.deleted_accounts.append(account)
            else:
                self.accounts[(account.resource_group.lower(), account.name.lower())] = account

    def account(self, resource_group, name):
        return self.accounts.get((resource_group.lower(), name.lower()))

    def name_taken(self, name):
        return any(key[1] == name.lower() for key in self.accounts)

    def restorable(self):
        """Every account with continuous backup, live or deleted."""
        return [a for a in list(self.accounts.values()) + self.deleted_accounts if a.continuous]

    def restorable_by_instance(self, instance_id):
        return next((a for a in self.restorable() if a.instance_id.lower() == instance_id.lower()), None)
