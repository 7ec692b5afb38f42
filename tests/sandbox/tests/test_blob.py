"""The blob stand-in (versioning, soft delete) and the real Azurite, driven by azure-storage-blob.

Only what a real user sets is configured: the account URL or connection string, the
key or an Entra ID credential, and the CA bundle (exported by conftest).
"""

import base64
import hashlib
import json
import os
import sys
import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, LinearRetry
from sandbox_session import sandboxctl

# The stand-in's own Shared Key signer, to send requests the SDK would never send (a stale date).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def blobstore(sandbox, **kwargs):
    return BlobServiceClient.from_connection_string(sandbox.env["SRE_SANDBOX_BLOBSTORE_CONNECTION_STRING"], **kwargs)


def azurite(sandbox):
    return BlobServiceClient.from_connection_string(sandbox.env["SRE_SANDBOX_AZURITE_CONNECTION_STRING"])


def md5(data):
    return hashlib.md5(data).digest()


@pytest.fixture
def store(sbx):
    sbx.admin("DELETE", "blobstore/calls")
    return blobstore(sbx)


def test_shared_key_is_verified(sbx, store):
    assert {c.name for c in store.list_containers()} == {"knowledge", "prompts"}
    wrong = BlobServiceClient(sbx.env["SRE_SANDBOX_BLOBSTORE_URL"], credential=base64.b64encode(b"not the key").decode())
    with pytest.raises(ClientAuthenticationError) as caught:
        list(wrong.list_containers())
    assert caught.value.status_code == 403
    assert caught.value.error_code == "AuthenticationFailed"


def test_shared_key_needs_a_fresh_date(sbx):
    from standin.blobstore import sharedkey  # pylint: disable=import-outside-toplevel

    url = sbx.env["SRE_SANDBOX_BLOBSTORE_URL"]
    account, key = sbx.env["SRE_SANDBOX_BLOBSTORE_ACCOUNT"], sbx.env["SRE_SANDBOX_BLOBSTORE_KEY"]
    path = "/" + account
    for date, status in (("Mon, 23 Nov 2020 10:00:00 GMT", 403), (None, 200)):
        headers = {"x-ms-version": "2021-12-02",
                   "x-ms-date": date or time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())}
        headers["Authorization"] = sharedkey.authorization(account, key, "GET", path, "comp=list", headers.items())
        resp = requests.get(url + "?comp=list", headers=headers, timeout=10)
        assert resp.status_code == status, resp.text
    stale = {**headers, "x-ms-date": "Mon, 23 Nov 2020 10:00:00 GMT"}
    assert "too old" in requests.get(url + "?comp=list", headers=stale, timeout=10).text


def test_entra_id_bearer_token(sbx):
    service = BlobServiceClient(sbx.env["SRE_SANDBOX_BLOBSTORE_URL"], credential=sbx.credential())
    names = [b.name for b in service.get_container_client("knowledge").list_blobs(name_starts_with="articles/")]
    assert "articles/sla.md" in names
    anonymous = requests.get(sbx.env["SRE_SANDBOX_BLOBSTORE_URL"] + "?comp=list", headers={"x-ms-version": "2021-12-02"},
                             timeout=10)
    assert anonymous.status_code == 401
    assert "resource_id=https://storage.azure.com" in anonymous.headers["WWW-Authenticate"]


def test_every_write_is_a_version_and_a_version_can_be_promoted(store):
    blob = store.get_blob_client("knowledge", "tests/one.txt")
    first = blob.upload_blob(b"first", overwrite=True)["version_id"]
    second = blob.upload_blob(b"second", overwrite=True)["version_id"]
    assert first < second
    items = list(store.get_container_client("knowledge").list_blobs(name_starts_with="tests/", include=["versions"]))
    assert [(i.version_id, bool(i.is_current_version)) for i in items] == [(first, False), (second, True)]
    assert blob.download_blob(version_id=first).readall() == b"first"
    props = blob.get_blob_properties(version_id=first)
    assert bytes(props.content_settings.content_md5) == md5(b"first")

    copy = blob.start_copy_from_url(f"{blob.url}?versionid={first}")
    assert copy["copy_status"] == "success"
    assert copy["version_id"] > second
    current = blob.get_blob_properties()
    assert current.version_id == copy["version_id"]
    assert bytes(current.content_settings.content_md5) == md5(b"first")
    assert blob.download_blob().readall() == b"first"
    assert len(list(store.get_container_client("knowledge").list_blobs(name_starts_with="tests/",
                                                                       include=["versions"]))) == 3


def test_delete_keeps_versions_and_undelete_restores_soft_deleted_ones(store):
    container = store.get_container_client("knowledge")
    blob = container.get_blob_client("tests/two.txt")
    old = blob.upload_blob(b"old")["version_id"]
    blob.upload_blob(b"new", overwrite=True)
    blob.delete_blob()
    with pytest.raises(ResourceNotFoundError) as caught:
        blob.get_blob_properties()
    assert caught.value.error_code == "BlobNotFound"
    blob.delete_blob(version_id=old)
    listed = list(container.list_blobs(name_starts_with="tests/two", include=["versions", "deleted"]))
    summary = [(i.version_id == old, i.deleted, i.is_current_version) for i in listed]
    assert summary == [(True, True, None), (False, False, None)]
    assert listed[0].deleted_time is not None and listed[0].remaining_retention_days == 7
    blob.undelete_blob()
    listed = list(container.list_blobs(name_starts_with="tests/two", include=["versions", "deleted"]))
    assert [i.deleted for i in listed] == [False, False]


def test_soft_delete_without_versioning(sbx, store):
    sbx.admin("PUT", "blobstore/settings", {"versioning": False})
    container = store.get_container_client("knowledge")
    blob = container.get_blob_client("tests/plain.txt")
    blob.upload_blob(b"v1")
    blob.upload_blob(b"v2", overwrite=True)  # the old content is kept as a soft-deleted snapshot
    blob.delete_blob(delete_snapshots="include")
    listed = list(container.list_blobs(name_starts_with="tests/plain", include=["deleted", "snapshots"]))
    assert [(bool(i.snapshot), i.deleted) for i in listed] == [(True, True), (False, True)]
    blob.undelete_blob()
    assert blob.download_blob().readall() == b"v2"
    snapshot = next(i.snapshot for i in container.list_blobs(name_starts_with="tests/plain", include=["snapshots"])
                    if i.snapshot)
    assert container.get_blob_client("tests/plain.txt", snapshot=snapshot).download_blob().readall() == b"v1"


def test_snapshots_paging_and_block_upload(sbx, store):
    container = store.get_container_client("prompts")
    blob = container.get_blob_client("system/assistant.txt")
    snap = blob.create_snapshot()["snapshot"]
    blob.upload_blob(b"changed", overwrite=True)
    blob.start_copy_from_url(f"{blob.url}?snapshot={snap}")
    assert blob.download_blob().readall().startswith(b"You are the SF AI assistant. BROKEN")

    knowledge = store.get_container_client("knowledge")
    pages = list(knowledge.list_blobs(include=["versions", "deleted"], results_per_page=3).by_page())
    paged = [(i.name, i.version_id) for page in pages for i in page]
    whole = [(i.name, i.version_id) for i in knowledge.list_blobs(include=["versions", "deleted"])]
    assert len(pages) == 4  # 11 seeded versions, 3 a page
    assert paged == whole and len(set(whole)) == 11

    # Tiny limits make the SDK upload with Put Block + Put Block List instead of one Put Blob.
    small = blobstore(sbx, max_single_put_size=4, max_block_size=4)
    data = b"0123456789abcdef-blocks"
    small.get_blob_client("prompts", "tests/blocks.txt").upload_blob(data)
    blocks = store.get_blob_client("prompts", "tests/blocks.txt")
    assert blocks.download_blob().readall() == data
    assert blocks.get_blob_properties().content_settings.content_md5 is None  # blocks carry no whole-blob MD5


def test_names_that_need_escaping_are_signed_and_copied(store):
    name = "docs/a b \u00fc%+&=.md"  # the signature covers the escaped path; the copy source must parse
    blob = store.get_blob_client("prompts", name)
    first = blob.upload_blob(b"x")["version_id"]
    blob.upload_blob(b"y", overwrite=True)
    blob.start_copy_from_url(f"{blob.url}?versionid={first}")
    assert blob.download_blob().readall() == b"x"
    assert [i.name for i in store.get_container_client("prompts").list_blobs(name_starts_with="docs/")] == [name]


def test_error_codes(store):
    with pytest.raises(ResourceNotFoundError) as caught:
        list(store.get_container_client("nope").list_blobs())
    assert caught.value.error_code == "ContainerNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        store.get_blob_client("knowledge", "nope.md").download_blob()
    assert caught.value.error_code == "BlobNotFound"


def test_server_errors_are_retried(sbx):
    sbx.admin("POST", "blobstore/faults", {"kind": "error", "status": 503, "count": 2, "method": "GET"})
    service = blobstore(sbx, retry_policy=LinearRetry(backoff=0, random_jitter_range=0))
    assert service.get_blob_client("knowledge", "articles/sla.md").download_blob().readall().startswith(b"# SLA")
    statuses = [c["status"] for c in sbx.admin("GET", "blobstore/calls")["calls"]]
    assert statuses[-3:] == [503, 503, 206]  # the SDK's first download call asks for a range


def test_azurite_is_seeded_with_snapshots_and_reset_restores_it(sbx):
    service = azurite(sbx)
    container = service.get_container_client("sf-ai-config")
    # Azurite lists the base blob before its snapshots (the service lists snapshots first): sort.
    listed = sorted(container.list_blobs(name_starts_with="prompts/tools", include=["snapshots"]),
                    key=lambda i: i.snapshot or "~")
    assert [bool(i.snapshot) for i in listed] == [True, True, False]
    blob = container.get_blob_client("prompts/tools.json")
    assert blob.download_blob().readall() == b'{"tools": BROKEN\n'
    blob.start_copy_from_url(f"{blob.url}?snapshot={listed[1].snapshot}")
    assert json.loads(blob.download_blob().readall()) == {"tools": ["search", "crm"]}
    sbx.admin("POST", "reset")
    assert blob.download_blob().readall() == b'{"tools": BROKEN\n'
    assert sbx.env["SRE_SANDBOX_AZURITE_BLOB_URL"].startswith("https://127.0.0.1:")


def test_azurite_starts_quickly_and_stop_leaves_no_node_process(tmp_path):
    started = time.monotonic()
    old = os.environ.get("SRE_SANDBOX_PROVIDERS")
    os.environ["SRE_SANDBOX_PROVIDERS"] = "azurite"
    try:
        sandboxctl("start", state_dir=tmp_path)
    finally:
        if old is None:
            os.environ.pop("SRE_SANDBOX_PROVIDERS")
        else:
            os.environ["SRE_SANDBOX_PROVIDERS"] = old
    startup_s = time.monotonic() - started
    try:
        with open(tmp_path / "env.json", encoding="utf-8") as fh:
            admin = json.load(fh)["SRE_SANDBOX_URL"]
        pid = requests.get(f"{admin}/azurite", verify=str(tmp_path / "ca.pem"), timeout=10).json()["pid"]
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            assert b"azurite" in fh.read()
    finally:
        sandboxctl("stop", state_dir=tmp_path)
    assert not os.path.exists(f"/proc/{pid}"), "Azurite outlived the sandbox"
    assert startup_s < 15  # the whole sandbox start; Azurite itself adds about a second
