#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: blob_version_restore
short_description: Restore Azure blobs to an earlier version or snapshot, or undelete them
version_added: 0.1.0
description:
  - The storage step of the rollback runbooks ("Blob versioning enabled, restore previous versions").
    Restores one blob (O(name)) or every blob under a O(prefix) of a container to its version as of a
    time (O(as_of)), to a named version (O(version_id)), to a snapshot (O(snapshot), or O(as_of) with
    O(use=snapshots) for accounts that keep snapshots instead of versions, such as Azurite), or brings
    soft-deleted blobs back (O(undelete=true)).
  - Restoring copies the chosen version or snapshot over the current blob (Copy Blob within the account).
    With versioning on, that makes a B(new) current version holding the old content; every earlier
    version, including the bad one, stays and can be restored in turn.
  - Idempotent by content. A blob whose current content already equals the chosen version (same
    Content-MD5, or the same bytes when a side has no MD5) is left alone and reported C(unchanged).
  - Everything is planned from one listing before anything changes, so an unknown container, blob,
    version or snapshot, or an O(as_of) before the first version of O(name), fails with nothing changed.
  - With O(prefix), a blob that has no version (or snapshot) at O(as_of) (created later, for example) is
    reported as C(skipped) with the reason and left as it is; the other blobs are restored.
  - O(undelete=true) calls Undelete Blob for blobs with soft-deleted versions or snapshots. In a
    versioning account, deleting a blob leaves no current version but keeps the versions, so the newest
    version is then copied back to current (what the Azure portal calls "promote").
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
options:
  account_url:
    description:
      - The blob endpoint of the storage account, C(https://ACCOUNT.blob.core.windows.net), or a
        path-style emulator URL such as C(https://127.0.0.1:10000/devstoreaccount1).
      - Required unless O(connection_string) is given.
    type: str
  account_key:
    description:
      - The storage account key (Shared Key authorization). Never logged or returned.
      - Without it and without O(connection_string) the module signs in with Microsoft Entra ID through the
        shared Azure options (service principal or C(DefaultAzureCredential)); the identity needs
        Storage Blob Data Contributor on the account.
    type: str
  connection_string:
    description:
      - A storage connection string (account name, key and endpoint). Never logged or returned.
    type: str
  container:
    description: The container that holds the blobs.
    type: str
    required: true
  name:
    description:
      - The blob to restore. Exactly one of O(name) and O(prefix).
    type: str
    aliases: [blob]
  prefix:
    description:
      - Restore every blob whose name starts with this prefix; an empty string means the whole container.
    type: str
  as_of:
    description:
      - Restore each blob to its content at this time, ISO 8601 (C(2026-11-23T18:00:00Z); no zone means
        UTC). That is the newest version (or, with O(use=snapshots), snapshot) created at or before it.
      - Exactly one of O(as_of), O(version_id), O(snapshot) and O(undelete).
    type: str
  version_id:
    description: The version id to restore O(name) to, as listed by the service (C(2026-11-23T14:14:26.8065770Z)).
    type: str
  snapshot:
    description: The snapshot (its time stamp id) to restore O(name) to.
    type: str
  undelete:
    description: Bring soft-deleted blobs back (see the description).
    type: bool
    default: false
  use:
    description:
      - Which history O(as_of) reads. C(versions) needs blob versioning on the account; C(snapshots)
        works on every account and on Azurite, which has no versioning.
    type: str
    choices: [versions, snapshots]
    default: versions
  copy_timeout:
    description: Seconds to wait for one copy to finish. Copies inside an account are normally immediate.
    type: int
    default: 300
notes:
  - Uses Copy Blob with the version or snapshot URL as the source, so no blob content passes through the
    controller, except to compare content when a blob has no Content-MD5 (blocks uploaded without one).
  - Restoring does not delete or change any version or snapshot; the bad content stays as a previous version.
  - An as-of restore cannot know when a deleted blob was deleted; a blob deleted before O(as_of) is brought
    back with its last version. Use O(undelete) for deleted blobs.
  - Retries throttling (503 ServerBusy) and server errors (5xx) with exponential back-off, O(api_retries) times.
  - In check mode nothing is copied or undeleted; the result says per blob what would be restored, and from
    which version or snapshot.
  - The subscription and ARM options are not used by the data plane; only the Entra ID sign-in options are.
seealso:
  - name: Restore a previous version (Azure Storage documentation)
    description: Blob versioning and how a previous version is promoted by copying it.
    link: https://learn.microsoft.com/azure/storage/blobs/versioning-overview
requirements:
  - azure-storage-blob >= 12.14
"""

EXAMPLES = r"""
- name: Restore the knowledge articles to what they were before the bad sync (sf-ai-assistant runbook)
  sre.rollback.blob_version_restore:
    account_url: https://sfaiassistantdocs.blob.core.windows.net
    container: knowledge
    prefix: articles/
    as_of: "2026-11-23T18:00:00Z"
  register: restored

- name: Preview first, in check mode, and show which version each blob would get
  sre.rollback.blob_version_restore:
    connection_string: "{{ storage_connection_string }}"
    container: knowledge
    prefix: articles/
    as_of: "{{ incident_started_at }}"
  check_mode: true
  diff: true

- name: Put one blob back to a named version
  sre.rollback.blob_version_restore:
    account_url: https://sfaiassistantdocs.blob.core.windows.net
    account_key: "{{ storage_account_key }}"
    container: prompts
    name: system/assistant.txt
    version_id: "2026-11-23T10:54:26.8065770Z"

- name: Bring back everything deleted under archive/
  sre.rollback.blob_version_restore:
    account_url: https://sfaiassistantdocs.blob.core.windows.net
    container: knowledge
    prefix: archive/
    undelete: true

- name: Restore from snapshots (account without versioning, or Azurite)
  sre.rollback.blob_version_restore:
    connection_string: "{{ azurite_connection_string }}"
    container: sf-ai-config
    prefix: prompts/
    as_of: "{{ now(utc=true).isoformat() }}Z"
    use: snapshots
"""

RETURN = r"""
container:
  description: The container worked on.
  returned: always
  type: str
mode:
  description: C(versions), C(snapshots) or C(undelete).
  returned: always
  type: str
as_of:
  description: O(as_of) as read, in UTC; null without it.
  returned: always
  type: str
counts:
  description:
    - How many blobs were C(restored) (in check mode, would be), C(undeleted) (undeleted or promoted back to
      current), C(unchanged) (already hold the chosen content) and C(skipped) (under O(prefix) with nothing
      to restore to; RV(blobs) gives the reason).
  returned: always
  type: dict
  sample: {restored: 2, undeleted: 0, unchanged: 1, skipped: 1}
blobs:
  description:
    - One entry per blob, in name order; C(action) is C(restore), C(undelete), C(unchanged) or C(skipped).
    - C(source) is the version or snapshot restored from; C(before) and C(after) the current blob's
      version id, Content-MD5 and size (C(after.version_id) is the new version a restore made).
  returned: always
  type: list
  elements: dict
  sample:
    - name: articles/refund-policy.md
      action: restore
      reason: null
      source: {version_id: "2026-11-23T14:34:26.8065770Z", snapshot: null, time: "2026-11-23T14:34:26.806577Z",
               content_md5: "YcvMLLx...", size: 41}
      before: {version_id: "2026-11-23T18:59:26.8065770Z", snapshot: null, content_md5: "GSu6...", size: 55}
      after: {version_id: "2026-11-23T19:20:01.1234560Z", snapshot: null, content_md5: "YcvMLLx...", size: 41}
before:
  description: The current blob per name before the task (null for a deleted blob).
  returned: always
  type: dict
after:
  description: The current blob per name after the task (predicted in check mode).
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
from ansible_collections.sre.rollback.plugins.module_utils.azure_blob_versions import (
    BLOB_ACCOUNT_ARGSPEC,
    BLOB_IMPORT_ERROR,
    BlobVersionRestore,
    service_client,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            name=dict(type="str", aliases=["blob"]),
            prefix=dict(type="str"),
            as_of=dict(type="str"),
            version_id=dict(type="str"),
            snapshot=dict(type="str"),
            undelete=dict(type="bool", default=False),
            use=dict(type="str", default="versions", choices=["versions", "snapshots"]),
            copy_timeout=dict(type="int", default=300),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, BLOB_ACCOUNT_ARGSPEC],
        mutually_exclusive=[("name", "prefix"), ("as_of", "version_id", "snapshot"),
                            ("account_key", "connection_string")],
        supports_check_mode=True,
    )
    module.require_libraries([("azure-storage-blob", BLOB_IMPORT_ERROR), ("azure-identity", AZURE_IDENTITY_IMPORT_ERROR)])
    params = module.params

    def entra_credential():
        # The blob data plane has no subscription, only the credential.
        return AzureSettings.from_params(params, require_subscription=False).credential()

    def restore():
        service = service_client(params, entra_credential)
        job = BlobVersionRestore(
            service, params["container"], name=params["name"], prefix=params["prefix"], as_of=params["as_of"],
            version_id=params["version_id"], snapshot=params["snapshot"], undelete=params["undelete"],
            use=params["use"], copy_timeout=params["copy_timeout"],
        )
        changed, result = job.run(check_mode=module.check_mode)
        diff = result.pop("diff")
        if module.diff_mode:
            result["diff"] = diff
        return changed, result

    module.run(restore)


if __name__ == "__main__":
    main()
