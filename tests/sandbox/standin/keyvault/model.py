"""Key Vault secrets state: vaults, secrets, their versions, and deleted secrets.

What the real service does and the model keeps:

* Setting a secret always adds a new version; the newest version (by
  creation) is the secret's current value, whatever the `enabled` flag of
  older versions says. Re-enabling an old version does not make it current.
* A disabled version cannot be read (403 SecretDisabled), not even by version id.
* Deleting a secret (soft delete) moves all its versions into the vault's
  deleted secrets for the retention period; while there, its name cannot be
  set again (409), only recovered or purged.
* Delete and recover take a moment: meanwhile the secret is neither readable
  nor listed as deleted (what the SDK's poller waits out by polling).

Everything here runs under the sandbox lock; no locking in this module.
"""

import datetime
import hashlib
import re
import secrets as _random
import time

NAME_RE = re.compile(r"[0-9a-zA-Z-]{1,127}")
MAX_VALUE_CHARS = 25 * 1024


def now_s():
    return int(time.time())


def seconds_ago(days=0, hours=0):
    return int(time.time() - datetime.timedelta(days=days, hours=hours).total_seconds())


class Version:
    def __init__(self, version_id, value, content_type=None, tags=None, enabled=True, not_before=None,
                 expires=None, created=None):
        self.id = version_id
        self.value = value
        self.content_type = content_type
        self.tags = dict(tags or {})
        self.enabled = True if enabled is None else bool(enabled)
        self.not_before = not_before
        self.expires = expires
        self.created = created if created is not None else now_s()
        self.updated = self.created


class Secret:
    def __init__(self, name):
        self.name = name
        self.versions = []  # creation order; the last one is current

    @property
    def current(self):
        return self.versions[-1] if self.versions else None

    def version(self, version_id):
        if not version_id:
            return self.current
        return next((v for v in self.versions if v.id.lower() == version_id.lower()), None)

    def add_version(self, value, content_type=None, tags=None, enabled=True, not_before=None, expires=None,
                    created=None, version_id=None):
        version = Version(version_id or _random.token_hex(16), value, content_type, tags, enabled, not_before,
                          expires, created)
        self.versions.append(version)
        return version


class DeletedSecret:
    def __init__(self, secret, deleted, retention_days):
        self.secret = secret
        self.deleted = deleted
        self.scheduled_purge = deleted + retention_days * 86400


class Vault:
    def __init__(self, seed):
        self.name = seed["name"]
        self.resource_group = seed.get("resource_group")
        self.location = seed.get("location", "westeurope")
        self.retention_days = int(seed.get("soft_delete_retention_days", 90))
        self.purge_protection = bool(seed.get("purge_protection", False))
        # Secret permissions of the sandbox identity (access-policy style); admin can narrow them.
        self.permissions = set(seed.get("permissions", PERMISSIONS))
        self.secrets = {}  # lower name -> Secret
        self.deleted = {}  # lower name -> DeletedSecret
        # Names whose delete or recover is still running: neither readable nor listed as deleted.
        self.in_transition = set()
        self.host = None  # 127.0.0.1:PORT, set by the data plane
        for entry in seed.get("secrets", []):
            self.secrets[entry["name"].lower()] = self._seed_secret(entry)
        for entry in seed.get("deleted_secrets", []):
            secret = self._seed_secret(entry)
            deleted = seconds_ago(days=entry.get("deleted_days_ago", 1))
            self.deleted[secret.name.lower()] = DeletedSecret(secret, deleted, self.retention_days)

    def _seed_secret(self, entry):
        secret = Secret(entry["name"])
        for index, v in enumerate(entry.get("versions", [])):
            # Deterministic ids, so tests and demos can name a seeded version.
            version_id = v.get("version") or hashlib.md5(
                f"{self.name}/{entry['name']}/{index}".encode()).hexdigest()
            secret.add_version(
                v["value"], v.get("content_type", entry.get("content_type")), v.get("tags", entry.get("tags")),
                v.get("enabled", True), None, None,
                seconds_ago(days=v.get("days_ago", 0), hours=v.get("hours_ago", 0)), version_id,
            )
        return secret

    @property
    def recovery_level(self):
        return "Recoverable" if self.purge_protection else "Recoverable+Purgeable"

    def secret(self, name):
        return self.secrets.get(name.lower())

    def deleted_secret(self, name):
        return self.deleted.get(name.lower())


PERMISSIONS = ("get", "list", "set", "delete", "recover", "purge", "backup", "restore")


class KeyVaultState:
    def __init__(self, seed):
        self.vaults = {}
        for vault_seed in seed.get("vaults", []):
            vault = Vault(vault_seed)
            self.vaults[vault.name.lower()] = vault

    def vault(self, name):
        return self.vaults.get(name.lower())
