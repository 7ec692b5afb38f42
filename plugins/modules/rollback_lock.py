#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback_lock
short_description: Take or release the lock that lets only one rollback run act on a service at a time
version_added: 0.1.0
description:
  - The "take a lock" step of the pre-rollback checklist. Two runs against the same service (a person and the
    automatic rollback, or two AWX nodes) must not act at once; the second one stops before any change and is
    told who holds the lock, since when, why, and when it expires.
  - O(backend=file) keeps C(<path>/<name>.lock), a JSON record C({holder, reason, acquired_at, expires_at}), on
    the machine the task runs on (use it on one controller; run the task there with C(delegate_to) localhost
    and C(run_once)). The file appears atomically, complete, or not at all (a hard link of a written temporary
    file, which fails when the name exists), and every read-decide-write runs under an C(flock) on
    C(<path>/.<name>.lock.guard), which the kernel drops if the run dies.
  - O(backend=kubernetes_lease) keeps a C(coordination.k8s.io/v1) Lease named O(name) in O(namespace), for runs
    that may start on several AWX nodes. It is created with POST (a 409 means it is held, and the Lease is read
    to name the holder), taken over when expired with a PUT carrying the resourceVersion that was read (a 409
    then means another run won the race, and the task fails naming it), and released with a DELETE whose
    precondition is that resourceVersion. C(spec.holderIdentity) is the holder, C(leaseDurationSeconds) the
    O(ttl), C(acquireTime) and C(renewTime) the time it was taken, the reason the annotation
    C(sre.rollback/reason). C(kubectl get lease -n NAMESPACE) shows who holds which lock.
  - O(backend=blob_lease) keeps an infinite Azure Blob lease on the blob C(<container>/<name>.lock), with holder,
    reason and expiry in the blob's metadata (which only the lease holder can write), so O(ttl) works as with the
    other backends. Infinite rather than a 60 s lease because an Ansible task ends when it has taken the lock;
    nothing would be left running to renew a short lease during the rollback. The lease id is derived from the
    holder (a UUID 5), so a later task of the same run releases it without being given the id; it is returned as
    RV(lease_id) and accepted as O(lease_id).
  - Idempotent. Taking a lock this holder already holds changes nothing and keeps its expiry (the O(ttl) counts
    from the first acquire, so choose it to cover the whole rollback). Releasing a free lock changes nothing.
  - A lock older than its O(ttl) is expired. Taking an expired lock takes it over (RV(taken_over_from) names the
    run that held it); releasing someone else's live lock needs O(force=true).
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.kubernetes
attributes:
  check_mode:
    support: full
    description: Reads the lock and says what would happen (RV(acquired) stays false); writes nothing.
  diff_mode:
    support: none
    description: The result carries the lock record as RV(before) and RV(after) instead.
options:
  name:
    description:
      - The lock, usually the service and environment, for example V(fundrbolt-api-production).
      - Lower-case letters, digits, V(-) and V(.), starting and ending with a letter or digit (a Kubernetes object
        name), whatever the backend, so a lock keeps its name when it moves between backends.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock (or fails naming its holder), V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  backend:
    description: Where the lock lives (see the description).
    type: str
    choices: [file, kubernetes_lease, blob_lease]
    default: file
  holder:
    description:
      - Who takes or releases the lock; two runs must differ, and every task of one run must give the same one.
      - Defaults to C(<user>@<host>:<run>), where the run is C(job-<id>) from E(AWX_JOB_ID), E(TOWER_JOB_ID) or
        E(JOB_ID) (AWX and Tower set E(JOB_ID) in a job's environment), else the pid of the C(ansible-playbook)
        process the task runs under. That pid is only found when the task runs on the controller; when it runs
        elsewhere, pass a holder.
      - Under AWX you may also pass V({{ awx_job_id }}) or V({{ tower_job_id }}) (with a prefix that names the
        service owner, if you like).
    type: str
  ttl:
    description:
      - Seconds after the acquire at which the lock expires and another run may take it over.
      - Choose it longer than the whole rollback, including the post-rollback watch.
    type: int
    default: 1800
  reason:
    description: Why the lock is taken, stored with it and shown to a run that finds it held, for example V(P1 rollback of backend).
    type: str
  force:
    description:
      - With O(state=released), release the lock even if someone else holds it and it has not expired (that run
        is dead). A person decides this.
    type: bool
    default: false
  path:
    description:
      - O(backend=file) only. The directory of the lock files, created (mode 0700) if missing.
      - Under AWX it must be on a volume every job of the service sees, and that outlives the job.
    type: path
    default: ~/.sre-rollback/locks
  namespace:
    description: O(backend=kubernetes_lease) only. The namespace of the Lease; it must exist.
    type: str
    default: default
  container:
    description: O(backend=blob_lease) only. The container of the lock blob, created if missing.
    type: str
    default: rollback-locks
  account_url:
    description:
      - O(backend=blob_lease) only. The blob endpoint of the storage account, C(https://ACCOUNT.blob.core.windows.net),
        or a path-style emulator URL such as C(https://127.0.0.1:10000/devstoreaccount1).
      - Required for O(backend=blob_lease) unless O(connection_string) is given.
    type: str
  account_key:
    description:
      - O(backend=blob_lease) only. The storage account key. Never logged or returned.
      - Without it and without O(connection_string) the module signs in with Microsoft Entra ID through the shared
        Azure options; the identity needs Storage Blob Data Contributor on the account.
    type: str
  connection_string:
    description: O(backend=blob_lease) only. A storage connection string. Never logged or returned.
    type: str
  lease_id:
    description:
      - O(backend=blob_lease) only. The lease id to take or release the lock with, instead of the one derived from
        O(holder) (for a lease taken by another tool, or by a holder whose name is lost).
    type: str
notes:
  - The Kubernetes options (O(kubeconfig), O(context), O(host)...) are only read with O(backend=kubernetes_lease);
    the Azure sign-in options only with O(backend=blob_lease) and neither a key nor a connection string.
  - The identity needs C(get), C(create), C(update) and C(delete) on C(leases.coordination.k8s.io) in O(namespace)
    for the Kubernetes backend.
  - Expiry is judged with the clock of the machine the task runs on; keep the clocks of AWX nodes in sync.
  - Failures to reach the Kubernetes API (429, 5xx, connection errors) are retried like every Kubernetes module
    of the collection; a create whose answer was lost and is sent again finds the Lease with this holder and
    succeeds.
seealso:
  - module: sre.rollback.rollback_freeze
  - name: Leases (Kubernetes documentation)
    description: The Lease object and how it is used to coordinate.
    link: https://kubernetes.io/docs/concepts/architecture/leases/
  - name: Lease Blob (Azure Storage REST API)
    description: Acquire, renew, break and release a blob lease.
    link: https://learn.microsoft.com/rest/api/storageservices/lease-blob
requirements:
  - kubernetes >= 24.2 (for O(backend=kubernetes_lease))
  - azure-storage-blob >= 12.14 (for O(backend=blob_lease))
"""

EXAMPLES = r"""
# Pre-rollback checklist, last step: one run at a time on this service.
- name: Take the rollback lock of the service (one controller)
  sre.rollback.rollback_lock:
    name: "{{ app_service.name }}-{{ env }}"
    reason: "{{ severity }} rollback of {{ component }}"
    ttl: 3600
  delegate_to: localhost
  run_once: true
  register: rollback_lock

- name: Runs may start on several AWX nodes - hold a Lease in the cluster instead
  sre.rollback.rollback_lock:
    name: mystira-production
    backend: kubernetes_lease
    namespace: mystira
    holder: "awx-job-{{ awx_job_id }}"
    reason: P1 rollback of the story generator

- name: Or a blob lease in the storage account every node reaches
  sre.rollback.rollback_lock:
    name: fundrbolt-api-production
    backend: blob_lease
    account_url: https://fundrboltops.blob.core.windows.net
    container: rollback-locks
    holder: "awx-job-{{ tower_job_id }}"
    reason: P2 revert of app settings

# ... the rollback and the post-rollback checks ...

- name: Give the lock back at the end, also when the rollback failed (in an always section)
  sre.rollback.rollback_lock:
    name: "{{ app_service.name }}-{{ env }}"
    state: released
  delegate_to: localhost
  run_once: true

- name: A person found the holder's run dead - release its lock
  sre.rollback.rollback_lock:
    name: fundrbolt-api-production
    state: released
    force: true
"""

RETURN = r"""
name:
  description: The lock.
  returned: always
  type: str
  sample: fundrbolt-api-production
backend:
  description: O(backend).
  returned: always
  type: str
location:
  description: Where the lock lives, the file path, C(<namespace>/lease/<name>) or C(<container>/<name>.lock).
  returned: always
  type: str
  sample: /home/ops/.sre-rollback/locks/fundrbolt-api-production.lock
holder:
  description: The holder this task acts as (O(holder) or its default).
  returned: always
  type: str
  sample: ops@controller-1:48213
acquired:
  description: With O(state=acquired), whether this holder holds the lock now (false in check mode).
  returned: always
  type: bool
held_by:
  description:
    - The other holder that holds the lock (on a refused acquire or release), or whose lock a forced release
      released; null otherwise.
  returned: always
  type: str
acquired_at:
  description: When the lock (ours, or the holder's in RV(held_by)) was taken, UTC.
  returned: always
  type: str
  sample: "2026-12-06T17:02:11Z"
expires_at:
  description: When that lock expires, UTC.
  returned: always
  type: str
  sample: "2026-12-06T17:32:11Z"
taken_over_from:
  description: The holder of the expired lock this task took over; null otherwise.
  returned: always
  type: str
reason:
  description: The reason stored with the lock.
  returned: always
  type: str
held_reason:
  description: On a refused acquire, the reason the other holder gave.
  returned: on a refused acquire
  type: str
released:
  description: With O(state=released), whether a lock was released (false when it was free).
  returned: with O(state=released)
  type: bool
forced:
  description: With O(state=released), whether the released lock was someone else's.
  returned: when a lock was released
  type: bool
lock_file:
  description: The lock file (O(backend=file)).
  returned: with O(backend=file)
  type: str
namespace:
  description: The namespace of the Lease (O(backend=kubernetes_lease)).
  returned: with O(backend=kubernetes_lease)
  type: str
server:
  description: The Kubernetes API server (O(backend=kubernetes_lease)).
  returned: with O(backend=kubernetes_lease)
  type: str
container:
  description: The container of the lock blob (O(backend=blob_lease)).
  returned: with O(backend=blob_lease)
  type: str
blob:
  description: The lock blob (O(backend=blob_lease)).
  returned: with O(backend=blob_lease)
  type: str
  sample: fundrbolt-api-production.lock
lease_id:
  description: The blob lease id this holder takes and releases the lock with (O(backend=blob_lease)).
  returned: with O(backend=blob_lease)
  type: str
  sample: 5b0f3c1e-8d2a-5f47-9a51-0c7c2e6d4b1a
before:
  description: The lock record before the task (C(holder), C(reason), C(acquired_at), C(expires_at)); null when free.
  returned: always
  type: dict
after:
  description: The lock record after the task (predicted in check mode); null when free.
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
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    KubernetesError,
    KubernetesSettings,
)
from ansible_collections.sre.rollback.plugins.module_utils.rollback_lock import (
    DEFAULT_BLOB_CONTAINER,
    DEFAULT_LOCK_DIR,
    DEFAULT_TTL_S,
    BlobLeaseLockStore,
    FileLockStore,
    LeaseLockStore,
    RollbackLock,
    check_name,
    default_holder,
)


def blob_store(params, lease_id):
    from ansible_collections.sre.rollback.plugins.module_utils.azure_blob_versions import (
        BLOB_IMPORT_ERROR,
        service_client,
        storage_call,
    )
    if BLOB_IMPORT_ERROR:
        raise RollbackError("azure-storage-blob is needed for backend=blob_lease: pip install azure-storage-blob",
                            exception=BLOB_IMPORT_ERROR)
    from azure.core import exceptions as azure_errors
    from azure.storage.blob import BlobLeaseClient

    service = service_client(params, lambda: AzureSettings.from_params(params, require_subscription=False).credential())
    container = service.get_container_client(params["container"])
    blob = container.get_blob_client("%s.lock" % params["name"])
    return BlobLeaseLockStore(blob, container, lambda client, lease: BlobLeaseClient(client, lease_id=lease),
                              azure_errors, storage_call, lease_id=lease_id)


def main():
    module = RollbackModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="acquired", choices=["acquired", "released"]),
            backend=dict(type="str", default="file", choices=["file", "kubernetes_lease", "blob_lease"]),
            holder=dict(type="str"),
            ttl=dict(type="int", default=DEFAULT_TTL_S),
            reason=dict(type="str"),
            force=dict(type="bool", default=False),
            path=dict(type="path", default=DEFAULT_LOCK_DIR),
            namespace=dict(type="str", default="default"),
            container=dict(type="str", default=DEFAULT_BLOB_CONTAINER),
            account_url=dict(type="str"),
            account_key=dict(type="str", no_log=True),
            connection_string=dict(type="str", no_log=True),
            lease_id=dict(type="str", no_log=True),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, K8S_AUTH_ARGSPEC],
        mutually_exclusive=[("account_key", "connection_string")],
        supports_check_mode=True,
    )
    params = module.params
    if params["backend"] == "kubernetes_lease":
        module.require_libraries([("kubernetes", KUBERNETES_IMPORT_ERROR)])
    elif params["backend"] == "blob_lease" and not (params["account_key"] or params["connection_string"]):
        module.require_libraries([("azure-identity", AZURE_IDENTITY_IMPORT_ERROR)])

    def work():
        # Bad input fails here, before anything is read or written.
        check_name(params["name"])
        holder = params["holder"] or default_holder()
        if params["backend"] == "file":
            store = FileLockStore(params["path"], params["name"])
        elif params["backend"] == "kubernetes_lease":
            settings = KubernetesSettings.from_params(params)
            store = LeaseLockStore(settings.rest(pool_size=1), params["namespace"], params["name"], KubernetesError,
                                   server=settings.server())
        else:
            store = blob_store(params, params["lease_id"])
        lock = RollbackLock(store, params["name"], holder, ttl=params["ttl"], reason=params["reason"])
        if params["state"] == "acquired":
            return lock.acquire(check_mode=module.check_mode)
        return lock.release(force=params["force"], check_mode=module.check_mode)

    module.run(work)


if __name__ == "__main__":
    main()
