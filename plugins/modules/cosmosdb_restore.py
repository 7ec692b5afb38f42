#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cosmosdb_restore
short_description: Point-in-time restore of Azure Cosmos DB accounts, databases and containers
version_added: 0.1.0
description:
  - Without O(restore_timestamp), lists the restorable Cosmos DB accounts (accounts with continuous
    backup, live or deleted) with the time range each can be restored to and, with O(account_name), the
    create and delete events of its databases and containers. A listing never changes anything.
  - Restores an account to a point in time into a new account (O(target_account_name)), as
    C(az cosmosdb restore) does. The source account is not touched.
  - Restores a deleted SQL database, or a deleted container of an existing database, into the same
    account (O(database_name), O(container_name)), as C(az cosmosdb sql database restore) and
    C(az cosmosdb sql container restore) (the mystira runbook) do.
  - Before anything is sent, the timestamp is checked against the source's restorable range (from its
    oldest restorable time up to now, or up to its deletion), and what is to be restored must have existed
    at that time. The restore is then awaited up to O(wait_timeout).
  - Idempotent by desired state. A target account that already is a restore of the same source at the same
    timestamp, or a database or container that exists again, means nothing to do.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  resource_group:
    description:
      - The resource group of the source account O(account_name).
      - Required to restore a database or container, and the default for O(target_resource_group).
    type: str
  account_name:
    description: The source Cosmos DB account (live or, for an account restore, deleted).
    type: str
  source_instance_id:
    description:
      - The instance id of the restorable account, when an account name had several lives (deleted and
        re-created). By default the live account is used, else the most recently deleted one.
    type: str
  restore_timestamp:
    description:
      - The point in time to restore to, ISO 8601 (C(2025-12-26T10:00:00Z)); a time without an offset is UTC.
      - Required to restore, with O(target_account_name) or O(database_name); without it the task lists.
    type: str
  target_account_name:
    description:
      - Restore the whole account into this NEW account. The name must be free (account names are global).
    type: str
  target_resource_group:
    description: Resource group of the new account; defaults to O(resource_group).
    type: str
  target_location:
    description: Region of the new account; defaults to the source account's region.
    type: str
  databases_to_restore:
    description:
      - With O(target_account_name), restore only these databases (and, if listed, only these containers).
        By default everything that existed at O(restore_timestamp) is restored.
    type: list
    elements: dict
    suboptions:
      database_name:
        description: A database that existed at O(restore_timestamp).
        type: str
        required: true
      collection_names:
        description: Containers of that database to restore; all when omitted.
        type: list
        elements: str
  database_name:
    description:
      - Restore this deleted SQL database into O(account_name) (with the containers it had at
        O(restore_timestamp)), or, with O(container_name), the database that holds the container.
    type: str
  container_name:
    description: Restore this deleted container into its (existing) database O(database_name).
    type: str
  wait_timeout:
    description: Seconds to wait for the restore to finish; a restore still running then fails the task.
    type: int
    default: 1800
notes:
  - Needs C(Microsoft.DocumentDB/locations/restorableDatabaseAccounts/*/read) and the restore action on the
    source, and write access to the target (the Cosmos DB Operator role covers both).
  - A restore creates data; it never overwrites an existing account, database or container.
  - Supports check mode (everything is validated, nothing is sent) and diff.
seealso:
  - module: sre.rollback.keyvault_secret_rollback
requirements:
  - azure-mgmt-cosmosdb >= 9.4
"""

EXAMPLES = r"""
- name: What can mystira-cosmos be restored to?
  sre.rollback.cosmosdb_restore:
    resource_group: rg-mystira-prod
    account_name: mystira-cosmos
  register: restorable

- name: Restore the scenarios container (mystira runbook, Database Rollback)
  sre.rollback.cosmosdb_restore:
    resource_group: rg-mystira-prod
    account_name: mystira-cosmos
    database_name: mystira
    container_name: scenarios
    restore_timestamp: "2025-12-26T10:00:00Z"

- name: Restore the whole account to a new account, then point the app at it
  sre.rollback.cosmosdb_restore:
    resource_group: rg-mystira-prod
    account_name: mystira-cosmos
    restore_timestamp: "2025-12-26T10:00:00Z"
    target_account_name: mystira-cosmos-restored
    wait_timeout: 3600
  register: restored
"""

RETURN = r"""
restorable_accounts:
  description: The restorable accounts (all, or the instances of O(account_name)).
  returned: when listing (no O(restore_timestamp))
  type: list
  elements: dict
  contains:
    account_name:
      description: The account name.
      type: str
    instance_id:
      description: The restorable account's instance id.
      type: str
    location:
      description: Its region.
      type: str
    id:
      description: The restorable account's resource id, the C(restoreSource) of a restore.
      type: str
    creation_time:
      description: When the account was created.
      type: str
    deletion_time:
      description: When it was deleted; null for a live account.
      type: str
    oldest_restorable_time:
      description: The earliest time it can be restored to.
      type: str
    latest_restorable_time:
      description: The latest time it can be restored to (now, or its deletion time).
      type: str
    api_type:
      description: The account's API (C(Sql) for the API for NoSQL).
      type: str
events:
  description: With O(account_name), create and delete events of databases and containers, oldest first.
  returned: when listing (no O(restore_timestamp))
  type: list
  elements: dict
source:
  description: The restorable account restored from (fields as in RV(restorable_accounts)).
  returned: always
  type: dict
restore_timestamp:
  description: The timestamp restored to, normalised to UTC.
  returned: when restoring
  type: str
target:
  description:
    - What was (or would be) restored, with C(kind) (account, database, container), C(name), C(id),
      C(provisioning_state), C(document_endpoint), C(restored_from), C(restore_timestamp) and C(databases).
  returned: when restoring
  type: dict
progress:
  description: Status changes of the restore operation with elapsed seconds.
  returned: when restoring
  type: list
  elements: dict
before:
  description: The target before the task.
  returned: always
  type: dict
after:
  description: The target after the task (predicted in check mode).
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_cosmos import (
    COSMOS_LIBRARIES,
    CosmosRestore,
    parse_timestamp,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule


def validate(params):
    """Option problems, before any call to Azure."""
    if params["wait_timeout"] <= 0:
        raise RollbackError("wait_timeout must be more than 0 seconds.")
    if params["restore_timestamp"] is None:
        if params["target_account_name"] or params["database_name"] or params["container_name"]:
            raise RollbackError("restore_timestamp is required to restore (e.g. 2025-12-26T10:00:00Z).")
        return
    if not params["account_name"] or not params["resource_group"]:
        raise RollbackError("A restore needs account_name and resource_group (of the source account).")
    parse_timestamp(params["restore_timestamp"])
    if params["target_account_name"]:
        if params["database_name"] or params["container_name"]:
            raise RollbackError("target_account_name restores a whole account; to restore only some databases or "
                                "containers into it use databases_to_restore, not database_name/container_name.")
    else:
        if not params["database_name"]:
            raise RollbackError("Give target_account_name (restore the account into a new one) or database_name "
                                "(restore a deleted database, or with container_name a deleted container).")
        if params["databases_to_restore"] or params["target_location"] or params["target_resource_group"]:
            raise RollbackError("databases_to_restore, target_location and target_resource_group apply only with "
                                "target_account_name.")


def main():
    module = RollbackModule(
        argument_spec=dict(
            resource_group=dict(type="str"),
            account_name=dict(type="str"),
            source_instance_id=dict(type="str"),
            restore_timestamp=dict(type="str"),
            target_account_name=dict(type="str"),
            target_resource_group=dict(type="str"),
            target_location=dict(type="str"),
            databases_to_restore=dict(type="list", elements="dict", options=dict(
                database_name=dict(type="str", required=True),
                collection_names=dict(type="list", elements="str"),
            )),
            database_name=dict(type="str"),
            container_name=dict(type="str"),
            wait_timeout=dict(type="int", default=1800),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(COSMOS_LIBRARIES)
    params = module.params

    def work():
        validate(params)
        restore = CosmosRestore.from_params(params, module.check_mode, module.diff_mode)
        if params["restore_timestamp"] is None:
            return restore.info(params["account_name"], params["source_instance_id"], params["resource_group"])
        if params["target_account_name"]:
            return restore.restore_account(
                params["account_name"], params["restore_timestamp"], params["target_account_name"],
                params["target_resource_group"] or params["resource_group"], params["target_location"],
                params["databases_to_restore"], params["source_instance_id"], params["resource_group"],
                params["wait_timeout"])
        return restore.restore_in_account(
            params["resource_group"], params["account_name"], params["database_name"], params["container_name"],
            params["restore_timestamp"], params["wait_timeout"])

    module.run(work)


if __name__ == "__main__":
    main()
