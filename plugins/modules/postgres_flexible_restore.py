#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_flexible_restore
short_description: Restore an Azure Database for PostgreSQL flexible server to a point in time, into a new server
version_added: 0.1.0
description:
  - Creates a new flexible server from the backups of a source server as they were at O(restore_time), as
    C(az postgres flexible-server restore) does, and waits until the new server is ready. Returns the new
    server's FQDN for the connection-string cut-over (runbooks fundrbolt "Restore from Backup" and
    fusionnet 4.2).
  - The source server is never changed; a restore always creates a new server. Rows written after
    O(restore_time) exist only on the source.
  - Before anything is sent to Azure, the module checks that the source exists, that O(name) is free (or
    already is this restore), and that O(restore_time) lies between the source's earliest restore point and now.
  - Idempotent. When a server named O(name) already exists as a restore of the same source (its
    C(sourceServerResourceId)) to the same point, the task reports no change; if an earlier run timed out
    while that restore was still provisioning, it waits for it. A server of that name that is anything
    else fails the task and changes nothing.
  - Check mode validates everything above and reports the server it would create.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  name:
    description: The name of the new server (3 to 63 lower-case letters, digits and hyphens).
    type: str
    required: true
  resource_group:
    description: The resource group of the new server; it may differ from the source's.
    type: str
    required: true
  source_server:
    description:
      - The server to restore from, by name (in O(source_resource_group)) or by full resource id.
    type: str
    required: true
  source_resource_group:
    description: The resource group of O(source_server) when it is given by name. Defaults to O(resource_group).
    type: str
  restore_time:
    description:
      - The point in time to restore to, ISO 8601 with a UTC offset, for example C(2026-01-15T10:30:00Z)
        or C(2026-01-15T11:30:00+01:00).
      - Relative times such as C(-15m) are not accepted because a re-run would name a different instant.
        Compute the instant once (for example the last known good time from the incident timeline) and pass it.
      - A time without an offset is refused rather than guessed.
    type: str
    required: true
  tags:
    description:
      - Tags for the new server. The module adds C(sre-rollback-restore-point) with the restore point,
        because ARM does not report a server's restore point and a re-run needs it.
    type: dict
  wait_timeout:
    description:
      - Seconds to wait for the new server to be ready. Real restores take from minutes to hours, depending
        on the data and the WAL to replay.
      - When the time is up the task fails, says that the restore may still be running and names its
        operation; running the task again waits for the same restore instead of starting another.
    type: float
    default: 3600
  polling_interval:
    description: Seconds between status polls when Azure does not say how long to wait.
    type: float
    default: 15
notes:
  - Needs C(Microsoft.DBforPostgreSQL/flexibleServers/read) on the source and
    C(Microsoft.DBforPostgreSQL/flexibleServers/write) in the target resource group.
  - The new server inherits the source's region, compute, storage, version, network mode and administrator
    login and password.
  - Uses C(azure-mgmt-postgresqlflexibleservers), the dedicated, generally available management SDK for
    flexible servers (API version 2026-10-01 in 3.0.0), rather than C(azure-mgmt-rdbms), whose flexible-server
    clients only receive pre-release updates pinned to older API versions.
  - Cross-region restores (C(GeoRestore)) and restores of deleted servers are not covered.
seealso:
  - module: sre.rollback.webapp_restart
requirements:
  - azure-mgmt-postgresqlflexibleservers >= 3.0.0
"""

EXAMPLES = r"""
- name: Restore the production database to just before the bad migration (fundrbolt runbook)
  sre.rollback.postgres_flexible_restore:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-db-restored
    source_server: fundrbolt-production-db
    restore_time: "2024-01-15T10:30:00Z"
    wait_timeout: 5400
  register: restored

- name: Put the new server into the connection string
  ansible.builtin.debug:
    msg: "postgresql://admin@{{ restored.fqdn }}:5432/fundrbolt"

- name: Restore into a separate resource group, from a source given by id
  sre.rollback.postgres_flexible_restore:
    resource_group: fusionnet-restore-rg
    name: fusionnet-db-pitr-20240115
    source_server: /subscriptions/0000/resourceGroups/fusionnet-prod-rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/fusionnet-db
    restore_time: "{{ last_known_good_utc }}"
    tags:
      incident: INC-2041
"""

RETURN = r"""
id:
  description: The resource id of the new server (in check mode, the id it would get).
  returned: always
  type: str
name:
  description: The new server's name.
  returned: always
  type: str
resource_group:
  description: The new server's resource group.
  returned: always
  type: str
fqdn:
  description: The host name of the new server, for the connection string.
  returned: always
  type: str
  sample: fundrbolt-production-db-restored.postgres.database.azure.com
state:
  description: The new server's state (C(Ready) after a restore); null in check mode.
  returned: always
  type: str
restore_time:
  description: The restore point, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2024-01-15T10:30:00Z"
source_server_id:
  description: The resource id of the source server.
  returned: always
  type: str
earliest_restore_time:
  description: The source's earliest restore point when the task ran, ISO 8601 UTC.
  returned: always
  type: str
operation_id:
  description: The id of the Azure restore operation; null when nothing was started.
  returned: always
  type: str
progress:
  description: The status changes of the restore operation, with seconds since it started.
  returned: when a restore ran
  type: list
  elements: dict
before:
  description: The server named O(name) before the task; empty when there was none.
  returned: always
  type: dict
after:
  description: The server after the task (in check mode, the one that would be created).
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import (
    AZURE_AUTH_ARGSPEC,
    AZURE_IDENTITY_IMPORT_ERROR,
    AzureSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_postgres import (
    AZURE_POSTGRES_IMPORT_ERROR,
    FlexibleServers,
    restore_to_new_server,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            resource_group=dict(type="str", required=True),
            source_server=dict(type="str", required=True),
            source_resource_group=dict(type="str"),
            restore_time=dict(type="str", required=True),
            tags=dict(type="dict"),
            wait_timeout=dict(type="float", default=3600),
            polling_interval=dict(type="float", default=15),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries([("azure-identity", AZURE_IDENTITY_IMPORT_ERROR),
                              ("azure-mgmt-postgresqlflexibleservers", AZURE_POSTGRES_IMPORT_ERROR)])
    params = module.params

    def restore():
        servers = FlexibleServers.connect(AzureSettings.from_params(params))
        changed, result = restore_to_new_server(
            servers, params["name"], params["resource_group"], params["source_server"], params["restore_time"],
            source_resource_group=params["source_resource_group"], tags=params["tags"],
            wait_timeout=params["wait_timeout"], polling_interval=params["polling_interval"],
            check_mode=module.check_mode)
        for warning in result.pop("warnings", []):
            module.warn(warning)
        if not module.diff_mode:
            result.pop("diff", None)
        return changed, result

    module.run(restore)


if __name__ == "__main__":
    main()
