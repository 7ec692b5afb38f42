#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_app_settings
short_description: Snapshot and restore the app settings and connection strings of an Azure App Service app or slot
version_added: 0.1.0
description:
  - The "revert config change" action of the P2 (degraded) row of the sf-ai-assistant runbook's decision
    matrix. Reads the application settings, connection strings and slot-specific (sticky) setting names of
    an App Service app or one of its slots, saves them as a snapshot file, and restores a snapshot or a given
    set of settings.
  - O(action=info) reads and reports names, types and masked values. O(action=snapshot) writes the snapshot
    file O(snapshot_path) (mode 0600, written atomically) holding every value, the connection string types,
    the sticky names and the site, slot and time it was taken. O(action=restore) makes the slot's settings
    what the snapshot (or O(app_settings) and O(connection_strings)) say.
  - Idempotent by desired state. A restore compares first and writes only the parts that differ; App Service
    replaces a whole set on every write, so a part that differs is written whole, once. A snapshot whose file
    already holds exactly the current settings of the same slot is left as it is (with its original time).
  - Values never appear in the result, the diff or messages, they show as C(********). Names and connection
    string types do. A Key Vault reference (V(@Microsoft.KeyVault(...))) is a pointer, not a secret, so it is
    shown, saved and written back verbatim and never resolved; after a restore the app resolves it again
    from Key Vault.
  - Sticky names (C(slotConfigNames)) belong to the whole app, not to one slot. A restore from a snapshot
    puts them back as well (see O(sections)); a restore of given settings leaves them as they are.
  - O(restart=true) restarts the slot after a change, and only then. App Service itself recycles the app
    when its settings change; the explicit restart makes the moment, and the wait for O(health_url), part
    of the task.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
attributes:
  check_mode:
    support: full
    description: Reads the slot and reports what would change; writes neither the app nor the snapshot file.
  diff_mode:
    support: full
    description:
      - One line per setting and connection string, values masked; a changed value is marked C((changed)).
        Settings a restore with O(mode=exact) removes are missing from the after side.
options:
  action:
    description:
      - V(info) reads and reports; V(snapshot) saves the slot's settings to O(snapshot_path); V(restore) makes
        the slot's settings those of O(snapshot_path), or of O(app_settings) and O(connection_strings).
    type: str
    choices: [info, snapshot, restore]
    default: info
  slot:
    description: The slot to work on; V(production) is the app itself.
    type: str
    default: production
  snapshot_path:
    description:
      - The snapshot file on the controller (where the module runs; use a local connection). Its directory is
        created (mode 0700) when missing.
      - Required for O(action=snapshot). For O(action=restore), either this or O(app_settings) and/or
        O(connection_strings).
      - The file holds every value in clear text; keep it with the incident's evidence, not in a repository.
      - A snapshot must be of the same app and slot (subscription when recorded, resource group, app, slot);
        otherwise the task fails before any change unless O(force=true).
      - A file that is not a snapshot of this module (not JSON, another format or version, unknown or missing
        keys, a connection string type App Service does not know) fails the task before any change.
    type: path
  app_settings:
    description:
      - App settings to restore, a dictionary of names to values (see the examples).
      - Values must be strings (integers are accepted); quote V(on), V(off), V(yes), V(no), V(true) and
        V(false), which YAML would otherwise turn into booleans. With O(mode=merge) a null value removes
        the setting.
      - Not C(no_log), because Ansible would then mask every occurrence of short values such as V(5) in all
        of the task's output. Values never appear in the result; to keep literal secrets out of C(-vvv)
        output, set C(no_log) on the task, or better, give a Key Vault reference.
    type: dict
  connection_strings:
    description:
      - Connection strings to restore, name to C({value, type}). C(type) defaults to the
        connection string's current type, else V(Custom); App Service knows V(MySql), V(SQLServer),
        V(SQLAzure), V(Custom), V(NotificationHub), V(ServiceBus), V(EventHub), V(ApiHub), V(DocDb),
        V(RedisCache) and V(PostgreSQL). With O(mode=merge) a null removes the connection string.
      - C(no_log), as connection strings usually hold passwords; Ansible therefore also masks the types
        given here wherever they appear in the output of the task.
    type: dict
  mode:
    description:
      - V(exact) makes the restored parts exactly the snapshot's or the given set, removing names not in it
        (reported in RV(changes) and the diff). V(merge) adds and changes the names given and leaves the
        others; a null value removes a name.
      - Defaults to V(exact) with O(snapshot_path) and to V(merge) with O(app_settings) or
        O(connection_strings).
      - For sticky names, V(exact) restores the snapshot's lists and V(merge) only adds the snapshot's names.
    type: str
    choices: [exact, merge]
  sections:
    description:
      - The parts of a snapshot to restore; all three by default. V(slot_config_names) are the sticky names
        (site-wide, so restoring them affects every slot's swaps).
      - Only with O(snapshot_path). A restore of given settings restores the parts given.
    type: list
    elements: str
    choices: [app_settings, connection_strings, slot_config_names]
  force:
    description:
      - Restore a snapshot taken from another app or slot (a warning says so), or overwrite a file at
        O(snapshot_path) that is not a snapshot of this slot.
    type: bool
    default: false
  restart:
    description: Restart the slot after a restore that changed something. Nothing changed, no restart.
    type: bool
    default: false
  health_url:
    description:
      - With O(restart=true), a URL to probe after the restart until it answers with status 200, or
        O(wait_timeout) passes. Checked before any change.
    type: str
  wait_timeout:
    description: Seconds to wait for O(health_url) after the restart.
    type: int
    default: 300
notes:
  - Unknown setting names are names that App Service does not accept, letters, digits, periods and
    underscores only (names already on the app are accepted as they are), and unknown keys in a snapshot
    file. Both fail before any change, as do malformed Key Vault references among the values a restore
    would write.
  - After writing, the module reads the settings back and fails if they are not what it wrote.
  - Needs C(Microsoft.Web/sites/config/list/action) and C(Microsoft.Web/sites/config/read) to read,
    C(Microsoft.Web/sites/config/write) to restore (C(.../slots/config/...) for a slot), and
    C(Microsoft.Web/sites/restart/action) to restart.
seealso:
  - module: sre.rollback.webapp_restart
  - module: sre.rollback.keyvault_secret_rollback
  - module: sre.rollback.health_check
requirements:
  - azure-mgmt-web >= 7.2
  - httpx, for health_url only
"""

EXAMPLES = r"""
# At deploy time: keep the known-good configuration with the release.
- name: Snapshot production's settings before the release
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    action: snapshot
    snapshot_path: /var/lib/rollback/sf-ai-assistant/settings-{{ release_id }}.json

# P2 (degraded), "revert config change": capture, look, then revert.
- name: Capture the settings as they are now (evidence)
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    action: snapshot
    snapshot_path: "{{ incident_dir }}/settings-before-revert.json"

- name: What would reverting to the deploy-time snapshot change?
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    action: restore
    snapshot_path: /var/lib/rollback/sf-ai-assistant/settings-{{ release_id }}.json
  check_mode: true
  diff: true
  register: revert_plan

- name: Revert the configuration change and restart
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    action: restore
    snapshot_path: /var/lib/rollback/sf-ai-assistant/settings-{{ release_id }}.json
    restart: true
    health_url: https://app-sf-ai-assistant-crm.azurewebsites.net/health
    wait_timeout: 120

# Revert one named setting only; the others stay as they are.
- name: Switch the new retrieval setting back
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    action: restore
    app_settings:
      RAG_TOP_K: "5"
      EXPERIMENTAL_RERANKER: null

- name: Point the staging slot's database connection string back at the Key Vault secret
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    slot: staging
    action: restore
    connection_strings:
      KnowledgeDb:
        value: "@Microsoft.KeyVault(VaultName=kv-sf-ai-prod;SecretName=knowledge-db)"
        type: SQLAzure

- name: List the names, types and Key Vault references of production's settings
  sre.rollback.webapp_app_settings:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
  register: settings
"""

RETURN = r"""
resource_group:
  description: The resource group of the app.
  returned: always
  type: str
site:
  description: The app (site) name.
  returned: always
  type: str
  sample: app-sf-ai-assistant-crm
slot:
  description: The slot worked on.
  returned: always
  type: str
  sample: production
app_settings:
  description: The slot's app settings after the task (in check mode, as they would be), values masked except Key Vault references.
  returned: always
  type: dict
  sample: {"RAG_TOP_K": "********", "SF_CLIENT_SECRET": "@Microsoft.KeyVault(VaultName=kv-sf-ai;SecretName=sf-client-secret)"}
connection_strings:
  description: The slot's connection strings after the task, C({type, value}) with the value masked except Key Vault references.
  returned: always
  type: dict
  sample: {"KnowledgeDb": {"type": "SQLAzure", "value": "********"}}
slot_config_names:
  description: The app's sticky names after the task, C(app_setting_names) and C(connection_string_names).
  returned: always
  type: dict
  sample: {"app_setting_names": ["SLOT_NAME"], "connection_string_names": ["KnowledgeDb"]}
key_vault_references:
  description: Names of the app settings and connection strings whose value is a Key Vault reference.
  returned: always
  type: list
  elements: str
snapshot:
  description:
    - The snapshot written (O(action=snapshot)) or restored from; C(path), C(subscription_id), C(resource_group),
      C(site), C(slot), C(taken_at) (UTC). Never the values.
  returned: when O(action=snapshot), or O(action=restore) with O(snapshot_path)
  type: dict
mode:
  description: The restore mode used, V(exact) or V(merge).
  returned: when O(action=restore)
  type: str
sections:
  description: The parts restored.
  returned: when O(action=restore)
  type: list
  elements: str
changes:
  description:
    - Names changed (in check mode, that would change), never values. C(app_settings) and C(connection_strings)
      have C(added), C(changed) and C(removed); C(slot_config_names) has C(app_setting_names) and
      C(connection_string_names), each with C(added) and C(removed).
  returned: when O(action=restore)
  type: dict
  sample: {"app_settings": {"added": [], "changed": ["RAG_TOP_K"], "removed": ["EXPERIMENTAL_RERANKER"]},
           "connection_strings": {"added": [], "changed": [], "removed": []},
           "slot_config_names": {"app_setting_names": {"added": [], "removed": []},
                                 "connection_string_names": {"added": [], "removed": []}}}
restarted:
  description: Whether the slot was restarted (in check mode, would be).
  returned: when O(action=restore)
  type: bool
restart:
  description: The restart's own result (C(answered_after_s), C(before), C(after)).
  returned: when the slot was restarted
  type: dict
before:
  description: C(app_settings), C(connection_strings) and C(slot_config_names) before the task, values masked.
  returned: always
  type: dict
after:
  description: The same after the task (in check mode, as they would be).
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    WEBAPP_ARGSPEC,
    WEBAPP_LIBRARIES,
    AppServiceSlots,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.health import HTTPX_IMPORT_ERROR
from ansible_collections.sre.rollback.plugins.module_utils.webapp_settings import (
    MODES,
    SECTIONS,
    AppConfigurationApi,
    AppSettingsRollback,
)


def main():
    module = RollbackModule(
        argument_spec=dict(
            action=dict(type="str", default="info", choices=["info", "snapshot", "restore"]),
            slot=dict(type="str", default="production"),
            snapshot_path=dict(type="path"),
            app_settings=dict(type="dict"),
            connection_strings=dict(type="dict", no_log=True),
            mode=dict(type="str", choices=list(MODES)),
            sections=dict(type="list", elements="str", choices=list(SECTIONS)),
            force=dict(type="bool", default=False),
            restart=dict(type="bool", default=False),
            health_url=dict(type="str"),
            wait_timeout=dict(type="int", default=300),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        supports_check_mode=True,
    )
    params = module.params
    module.require_libraries(WEBAPP_LIBRARIES + ([("httpx", HTTPX_IMPORT_ERROR)] if params["health_url"] else []))

    def work():
        action = params["action"]
        restore_only = [name for name in ("app_settings", "connection_strings", "mode", "sections", "health_url")
                        if params[name] is not None] + (["restart"] if params["restart"] else [])
        if action != "restore" and restore_only:
            raise RollbackError("%s only apply to action=restore." % ", ".join(restore_only))
        if action == "snapshot" and not params["snapshot_path"]:
            raise RollbackError("action=snapshot needs snapshot_path.")
        if action == "info" and params["snapshot_path"]:
            raise RollbackError("snapshot_path applies to action=snapshot or action=restore.")
        if params["health_url"] and not params["restart"]:
            raise RollbackError("health_url is probed after a restart: set restart=true as well.")
        if params["wait_timeout"] <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        settings = AzureSettings.from_params(params)
        slots = AppServiceSlots.connect(settings, params["resource_group"], params["name"])
        rollback = AppSettingsRollback(AppConfigurationApi(slots), params["slot"], module.check_mode, module.diff_mode,
                                       subscription_id=settings.subscription_id)
        if action == "info":
            return rollback.info()
        if action == "snapshot":
            return rollback.snapshot(params["snapshot_path"], force=params["force"])
        return rollback.restore(
            snapshot_path=params["snapshot_path"], app_settings=params["app_settings"],
            connection_strings=params["connection_strings"], mode=params["mode"], sections=params["sections"],
            force=params["force"], restart=params["restart"], health_url=params["health_url"],
            wait_timeout=params["wait_timeout"],
        )

    module.run(work)


if __name__ == "__main__":
    main()
