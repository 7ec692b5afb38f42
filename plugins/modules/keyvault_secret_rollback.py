#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: keyvault_secret_rollback
short_description: Make an older Key Vault secret value current again, set a new one, or recover a deleted secret
version_added: 0.1.0
description:
  - Lists the versions of an Azure Key Vault secret with their attributes (never their values), the
    C(az keyvault secret list-versions) step of the configuration rollback runbooks.
  - Makes the value of an older version (O(version), or O(previous)) the current value by writing it
    again as a new version, with the old version's content type and tags. Key Vault always serves the
    newest version; re-enabling an old version (C(az keyvault secret set-attributes --enabled true),
    as the sf-ai-assistant runbook suggests) does not make it current.
  - Writes a new value (O(value)), for the connection-string cut-over after a database restore.
  - Recovers a soft-deleted secret (O(state=recovered)) and waits until it can be read again.
  - Idempotent by desired state. When the current value already equals the value asked for, nothing is
    written. Values are compared in memory only.
  - Secret values never appear in the result, the diff, messages or logs, unless O(return_value=true),
    and then only on a task with C(no_log) set (see O(return_value)).
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  vault_url:
    description:
      - The vault's URL, for example C(https://fundrbolt-production-kv.vault.azure.net/).
      - The token is requested for the resource the vault names in its authentication challenge
        (C(https://vault.azure.net) in the public cloud), not for Resource Manager.
    type: str
    required: true
  name:
    description: The secret's name.
    type: str
    required: true
  state:
    description:
      - V(present) makes the value of O(version), of the previous version (O(previous)) or O(value)
        the current value (at most one of the three). With none of them the task only reports the
        versions (and the deleted secret, if it is deleted) and never changes anything.
      - V(recovered) recovers the secret from the vault's deleted secrets and waits until it reads.
        A secret that is not deleted is left alone.
    type: str
    choices: [present, recovered]
    default: present
  version:
    description:
      - The id of the version whose value becomes current (the last part of its identifier).
      - The version must be enabled, because Key Vault does not return the value of a disabled version.
    type: str
  previous:
    description:
      - Roll back to the version before the current one, the newest enabled older version.
      - When the current version was itself written by this module as a rollback (it carries the tag
        C(sre-rollback-restored-from)), the version it restored is meant, so running the task again
        changes nothing. To go back further, name the O(version).
      - Versions created within the same second are ordered as Key Vault lists them.
    type: bool
    default: false
  value:
    description:
      - The new value to make current, for example the connection string of a restored database.
      - Creates the secret when it does not exist; a soft-deleted secret must be recovered first.
    type: str
  content_type:
    description:
      - Content type of a new version written for O(value). Defaults to the current version's.
      - A rollback to O(version) or O(previous) copies the content type of that version.
    type: str
  tags:
    description:
      - Tags of a new version written for O(value). Default to the current version's tags.
      - A rollback to O(version) or O(previous) copies that version's tags and adds the tag
        C(sre-rollback-restored-from) with its id.
    type: dict
  return_value:
    description:
      - Return the value made current as RV(secret_value).
      - Only allowed on a task with C(no_log) set, so the value cannot reach the output, a callback or a
        log; the module fails before doing anything otherwise. Register the result and use it in later
        tasks that are themselves C(no_log).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for a recovered secret to become readable.
    type: int
    default: 120
notes:
  - Needs the secret permissions C(list) and C(get); C(set) for a rollback or a new value; C(get) and
    C(recover) for a recovery (access policy), or the Key Vault Secrets Officer role (RBAC).
  - The expiry and not-before dates of an old version are not copied; the new version has none.
  - O(subscription_id) is not needed for Key Vault; the other Azure connection options apply.
  - Supports check mode and diff. The diff shows version ids, attributes and tags; values show as
    C((value hidden)).
seealso:
  - module: sre.rollback.webapp_restart
requirements:
  - azure-keyvault-secrets >= 4.8
"""

EXAMPLES = r"""
- name: List the versions of the client secret (sf-ai-assistant runbook, Configuration Rollback)
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://sf-ai-production-kv.vault.azure.net/
    name: sf-client-secret
  register: sf_secret

- name: Make the previous value of the client secret current again
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://sf-ai-production-kv.vault.azure.net/
    name: sf-client-secret
    previous: true

- name: Make a named version current again
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://sf-ai-production-kv.vault.azure.net/
    name: sf-client-secret
    version: 3f2a1b0c4d5e6f708192a3b4c5d6e7f8

- name: Point the app at the restored database (fundrbolt runbook, Restore from Backup, step 4)
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://fundrbolt-production-kv.vault.azure.net/
    name: database-url
    value: "postgresql://{{ db_user }}:{{ db_password }}@{{ restored.fqdn }}:5432/fundrbolt"

- name: Recover a secret deleted by mistake (soft delete keeps it 90 days)
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://sf-ai-production-kv.vault.azure.net/
    name: sf-client-secret
    state: recovered
    wait_timeout: 60

- name: Read the value made current, for a later no_log task
  sre.rollback.keyvault_secret_rollback:
    vault_url: https://fundrbolt-production-kv.vault.azure.net/
    name: database-url
    previous: true
    return_value: true
  no_log: true
  register: database_url
"""

RETURN = r"""
vault_url:
  description: The vault URL, with a trailing slash.
  returned: always
  type: str
name:
  description: The secret name.
  returned: always
  type: str
versions:
  description: Every version, oldest first, with attributes and tags but never a value.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The version id.
      type: str
    enabled:
      description: Whether the version can be read.
      type: bool
    created:
      description: When the version was written (ISO 8601, UTC).
      type: str
    updated:
      description: When its attributes last changed.
      type: str
    not_before:
      description: Not-before date, if any.
      type: str
    expires:
      description: Expiry date, if any.
      type: str
    content_type:
      description: The content type.
      type: str
    tags:
      description: The version's tags.
      type: dict
    current:
      description: Whether this is the current (newest) version.
      type: bool
current_version:
  description: The current version id after the task (before it in check mode); null when the secret does not exist.
  returned: always
  type: str
target_version:
  description: The version whose value was (or, in check mode, would be) made current; null for O(value), a listing and a recovery.
  returned: always
  type: str
written_version:
  description: The id of the version this task wrote; null when nothing was written.
  returned: always
  type: str
deleted:
  description: The deleted secret (C(deleted_on), C(scheduled_purge_date), C(recovery_id)) when it is soft-deleted.
  returned: always
  type: dict
recovered_after_s:
  description: Seconds from the recover call until the secret could be read.
  returned: when O(state=recovered)
  type: float
secret_value:
  description: The value now current; null unless O(return_value=true) (which requires C(no_log) on the task).
  returned: when O(state=present)
  type: str
before:
  description: C(state), C(current_version), C(enabled), C(content_type), C(tags) before the task; the value is masked.
  returned: always
  type: dict
after:
  description: The same after the task (predicted in check mode), plus C(value_of_version) for a rollback.
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_keyvault import (
    KEYVAULT_LIBRARIES,
    KeyVaultSecret,
    SecretRollback,
    validate_vault_url,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule


def validate(params, task_no_log):
    """Every option problem, before any call to the vault."""
    validate_vault_url(params["vault_url"])
    chosen = [name for name in ("version", "previous", "value") if params[name] not in (None, False)]
    if params["state"] == "present":
        if len(chosen) > 1:
            raise RollbackError("Give at most one of version, previous=true or value; got %s." % ", ".join(chosen))
        if params["version"] is not None and not params["version"].strip():
            raise RollbackError("version must not be empty.")
    elif chosen:
        raise RollbackError("%s only apply to state=present." % ", ".join(chosen))
    if (params["content_type"] is not None or params["tags"] is not None) and params["value"] is None:
        raise RollbackError("content_type and tags apply only with value; a rollback copies them from the version.")
    if params["return_value"] and not task_no_log:
        raise RollbackError("return_value=true returns the secret value: set no_log: true on the task first.")
    if params["wait_timeout"] <= 0:
        raise RollbackError("wait_timeout must be more than 0 seconds.")


def main():
    module = RollbackModule(
        argument_spec=dict(
            vault_url=dict(type="str", required=True),
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "recovered"]),
            version=dict(type="str"),
            previous=dict(type="bool", default=False),
            value=dict(type="str", no_log=True),
            content_type=dict(type="str"),
            tags=dict(type="dict"),
            return_value=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=120),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(KEYVAULT_LIBRARIES)
    params = module.params

    def work():
        validate(params, module.ansible.no_log)
        rollback = SecretRollback(KeyVaultSecret.from_params(params), module.check_mode, module.diff_mode)
        if params["state"] == "present" and params["version"] is None and not params["previous"] \
                and params["value"] is None:
            return rollback.info()
        if params["state"] == "recovered":
            return rollback.recovered(params["wait_timeout"])
        return rollback.make_current(
            version=params["version"], previous=params["previous"], value=params["value"],
            content_type=params["content_type"], tags=params["tags"], return_value=params["return_value"],
        )

    module.run(work)


if __name__ == "__main__":
    main()
