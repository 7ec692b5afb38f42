#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: search_index_rebuild
short_description: Rebuild an Azure AI Search index from a saved or its current definition and refill it
version_added: 0.1.0
description:
  - The "Knowledge Index Rollback" step of the sf-ai-assistant runbook (C(AI Search) in its resource
    table, re-create the index from the knowledge sync pipeline). Drops the index, re-creates it from a
    definition saved earlier (O(definition_file), JSON as the REST API's Get Index returns it) or from
    its current definition, refills it, and waits until it holds the expected number of documents.
  - The index is refilled by its indexer (reset, then run, so that documents already indexed once are
    indexed again) or by a re-sync job given as O(resync_command), for example the runbook's
    C(sync_knowledge_articles) with C(full_sync=True).
  - "A rebuild is an action, not a state, so it happens only when one of the O(rebuild_if) conditions
    holds: the index is missing, its definition differs from O(definition_file), or it holds fewer
    documents than O(expected_document_count). After a rebuild none of them holds any more, so running
    the task again changes nothing. O(force=true) rebuilds anyway."
  - The index is empty while it is refilled, so a rebuild needs O(confirm=true). Everything that can
    fail early is checked before the index is dropped, the definition (locally, then by the service on
    a temporary index, see O(validate_with_service)), the indexer or command, and the confirmation. A
    definition the service refuses never costs the live index.
  - O(state=exported) only saves the current definition to O(export_definition), the evidence step
    before a change; with O(state=rebuilt) O(export_definition) saves it before the index is dropped.
  - The module runs where Ansible runs it (use a local connection) and needs azure-search-documents there.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
requirements:
  - azure-search-documents >= 12.0 (its models return definitions as the REST API spells them)
attributes:
  check_mode:
    support: full
    description:
      - Reads the index, its document count and the indexer, saves nothing and drops nothing, and
        reports what would be dropped (O(index), field count, document count) and re-created.
      - Needs no O(confirm).
  diff_mode:
    support: full
    description: The index's field and document counts before and after.
options:
  endpoint:
    description:
      - The search service, C(https://<service>.search.windows.net).
      - Falls back to E(AZURE_SEARCH_ENDPOINT).
    type: str
  api_key:
    description:
      - An admin key of the service (a query key can only read documents). Never logged or returned.
      - Falls back to E(AZURE_SEARCH_API_KEY).
      - Without it the module signs in with Microsoft Entra ID through the shared Azure options
        (O(client_id), O(secret), O(tenant_id), or C(DefaultAzureCredential)); the identity then needs the
        Search Service Contributor and Search Index Data Contributor roles.
    type: str
  index:
    description: The index to rebuild or export.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - V(rebuilt) rebuilds the index when a O(rebuild_if) condition holds (or O(force)).
      - V(exported) only saves the current definition to O(export_definition); changed when the file changed.
    type: str
    choices: [rebuilt, exported]
    default: rebuilt
  definition_file:
    description:
      - A definition saved earlier (by O(export_definition), or the body the REST API's Get Index returns).
        Its C(name) must be O(index). Service bookkeeping such as C(@odata.etag) is ignored.
      - Without it the index is re-created from its current definition, which then must exist.
      - Properties the file leaves out are not compared (the service fills in defaults), but the set of
        fields must be the same for the definitions to match.
    type: path
  export_definition:
    description:
      - Save the current definition to this file (JSON, as the REST API returns it) before anything else.
        Written only when its content changes; never in check mode.
      - Required with O(state=exported).
    type: path
  indexer:
    description:
      - The indexer that refills the index. It must target O(index).
      - Defaults to the one indexer whose target is O(index); when there is none, give O(resync_command).
      - Mutually exclusive with O(resync_command).
    type: str
  resync_command:
    description:
      - A command (argv list, no shell) that pushes the documents into the re-created index, run on the
        Ansible controller after the index is re-created. Its environment has E(AZURE_SEARCH_ENDPOINT)
        and E(AZURE_SEARCH_INDEX) set (add the key with the task's C(environment)).
      - A non-zero exit status fails the task with the last line of its standard error.
    type: list
    elements: str
  expected_document_count:
    description:
      - The number of documents the index must hold again; the task waits for it after the refill.
      - Defaults to the document count before the rebuild (nothing to wait for when the index was missing).
      - The V(short_of_documents) condition of O(rebuild_if) needs it.
    type: int
  rebuild_if:
    description:
      - When a rebuild is needed. V(missing) the index does not exist; V(definition_differs) it differs
        from O(definition_file); V(short_of_documents) it holds fewer than O(expected_document_count).
    type: list
    elements: str
    choices: [missing, definition_differs, short_of_documents]
    default: [missing, definition_differs, short_of_documents]
  force:
    description: Rebuild even when no O(rebuild_if) condition holds. Not idempotent, use it on purpose.
    type: bool
    default: false
  confirm:
    description:
      - Confirms the rebuild, which drops the index and its documents and leaves searches empty or
        partial until the refill is done.
      - Without it a needed rebuild fails before any change, and says why.
    type: bool
    default: false
  validate_with_service:
    description:
      - Before dropping the index, create a temporary index C(<index>-validate-<random>) from the
        definition and delete it again, so the service validates everything (analyzers, vector profiles,
        suggesters) while the live index still stands.
      - Turn it off only when the service has no room for one more index (its tier's index limit).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the refill, the indexer run or O(resync_command) and the document count.
      - A timeout is a failure that reports how many documents the index holds.
    type: int
    default: 900
  poll_interval:
    description: Seconds between two looks at the indexer status and the document count.
    type: float
    default: 5
notes:
  - The indexer is reset before it runs. An indexer remembers what it indexed (its high-water mark),
    so without the reset it would index only documents changed since its last run, not the whole source.
  - A failed indexer run fails the task with the indexer's error message; the index then exists, short of
    documents, and running the task again rebuilds it again.
  - The subscription options of the shared Azure fragment are not used; the Entra ID options are used only
    without O(api_key).
seealso:
  - name: Azure AI Search REST API, indexes
    description: Index definitions, as O(definition_file) holds them.
    link: https://learn.microsoft.com/rest/api/searchservice/indexes
  - name: Reset and run an indexer
    description: Why a full re-index needs a reset.
    link: https://learn.microsoft.com/azure/search/search-howto-run-reset-indexers
"""

EXAMPLES = r"""
# Evidence first: keep the definition as it is now, next to the incident record.
- name: Save the knowledge index definition
  sre.rollback.search_index_rebuild:
    endpoint: https://srch-sf-ai-prod.search.windows.net
    api_key: "{{ search_admin_key }}"
    index: knowledge-articles
    state: exported
    export_definition: "{{ incident_dir }}/knowledge-articles.definition.json"

- name: Plan the rebuild from the definition saved at the last release (changes nothing)
  sre.rollback.search_index_rebuild:
    endpoint: https://srch-sf-ai-prod.search.windows.net
    api_key: "{{ search_admin_key }}"
    index: knowledge-articles
    definition_file: releases/2026-11-20/knowledge-articles.definition.json
    expected_document_count: 1200
  check_mode: true
  register: plan

- name: Knowledge Index Rollback - re-create from the saved definition and re-run the indexer
  sre.rollback.search_index_rebuild:
    endpoint: https://srch-sf-ai-prod.search.windows.net
    api_key: "{{ search_admin_key }}"
    index: knowledge-articles
    definition_file: releases/2026-11-20/knowledge-articles.definition.json
    export_definition: "{{ incident_dir }}/knowledge-articles.before.json"
    expected_document_count: 1200
    confirm: true
    wait_timeout: 1800
  register: rebuilt

- name: Knowledge Index Rollback - re-create and re-sync from Salesforce, as the runbook does
  sre.rollback.search_index_rebuild:
    index: sf-knowledge-sync
    force: true
    confirm: true
    resync_command:
      - /opt/sf-ai-assistant/.venv/bin/python
      - -c
      - "import asyncio; from shared.knowledge_sync import sync_knowledge_articles; asyncio.run(sync_knowledge_articles(full_sync=True))"
  environment:
    AZURE_SEARCH_ENDPOINT: https://srch-sf-ai-prod.search.windows.net
    AZURE_SEARCH_API_KEY: "{{ search_admin_key }}"
"""

RETURN = r"""
index:
  description: The index worked on.
  returned: always
  type: str
  sample: knowledge-articles
endpoint:
  description: The search service.
  returned: always
  type: str
rebuilt:
  description: Whether the index was dropped and re-created (in check mode, whether it would be).
  returned: always
  type: bool
reasons:
  description: The O(rebuild_if) conditions that held (or V(force)); empty when nothing was needed.
  returned: always
  type: list
  elements: str
  sample: ["it holds 80 documents, fewer than the expected 120"]
differences:
  description: How the live definition differs from O(definition_file).
  returned: always
  type: list
  elements: str
  sample: ["field summary is not in the saved definition"]
definition_source:
  description: O(definition_file), or V(current) when the index was re-created from its own definition.
  returned: when a definition was needed
  type: str
exported_to:
  description: Where the current definition was saved (O(export_definition)).
  returned: always
  type: str
would_drop:
  description: What the rebuild drops, C(index), C(field_count) and C(document_count); null when the index is missing.
  returned: when a rebuild is needed
  type: dict
  sample: {"index": "knowledge-articles", "field_count": 5, "document_count": 80}
indexer:
  description: The indexer that refills the index, when one does.
  returned: always
  type: str
resync_command:
  description: The re-sync command, when it refills the index.
  returned: always
  type: list
  elements: str
indexer_result:
  description:
    - The indexer run started by the task, C(status) (V(success), V(transientFailure)), C(items_processed),
      C(items_failed), C(error_message), C(errors), C(start_time), C(end_time).
  returned: always
  type: dict
expected_document_count:
  description: The document count the task waited for.
  returned: always
  type: int
document_count:
  description: The documents the index holds at the end.
  returned: always
  type: int
command_rc:
  description: Exit status of O(resync_command).
  returned: when O(resync_command) ran
  type: int
command_stdout:
  description: The end of the command's standard output.
  returned: when O(resync_command) ran
  type: str
command_stderr:
  description: The end of the command's standard error.
  returned: when O(resync_command) ran
  type: str
before:
  description: The index before, C(exists), C(field_count), C(document_count), C(etag).
  returned: always
  type: dict
  sample: {"exists": true, "field_count": 5, "document_count": 80, "etag": "\"0x8DD000000000001\""}
after:
  description: The same after the task; in check mode, as predicted.
  returned: always
  type: dict
progress:
  description: What the task did, step by step.
  returned: always
  type: list
  elements: str
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_search import (
    REBUILD_CONDITIONS,
    SEARCH_ARGSPEC,
    SEARCH_IMPORT_ERROR,
    IndexRebuild,
    SearchService,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            index=dict(type="str", required=True, aliases=["name"]),
            state=dict(type="str", choices=["rebuilt", "exported"], default="rebuilt"),
            definition_file=dict(type="path"),
            export_definition=dict(type="path"),
            indexer=dict(type="str"),
            resync_command=dict(type="list", elements="str"),
            expected_document_count=dict(type="int"),
            rebuild_if=dict(type="list", elements="str", choices=list(REBUILD_CONDITIONS),
                            default=list(REBUILD_CONDITIONS)),
            force=dict(type="bool", default=False),
            confirm=dict(type="bool", default=False),
            validate_with_service=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
            poll_interval=dict(type="float", default=5),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, SEARCH_ARGSPEC],
        mutually_exclusive=[("indexer", "resync_command")],
        required_if=[("state", "exported", ["export_definition"])],
        supports_check_mode=True,
    )
    module.require_libraries([("azure-search-documents", SEARCH_IMPORT_ERROR)])
    params = module.params

    def rebuild():
        service = SearchService.from_params(params)
        changed, result = IndexRebuild(
            service, params["index"], definition_file=params["definition_file"],
            export_definition=params["export_definition"], state=params["state"], indexer=params["indexer"],
            resync_command=params["resync_command"], expected_document_count=params["expected_document_count"],
            rebuild_if=params["rebuild_if"], force=params["force"], confirm=params["confirm"],
            validate_with_service=params["validate_with_service"], wait_timeout=params["wait_timeout"],
            poll_interval=params["poll_interval"], check_mode=module.check_mode,
        ).run()
        diff = result.pop("diff", None)
        if module.diff_mode and diff:
            result["diff"] = diff
        return changed, result

    module.run(rebuild)


if __name__ == "__main__":
    main()
