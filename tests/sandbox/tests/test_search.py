"""Azure AI Search data plane, driven by the unchanged azure-search-documents clients
(SearchIndexClient, SearchIndexerClient, SearchClient) with only an endpoint and a key."""

import time

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient, SearchIndexerClient

INDEX = "knowledge-articles"
INDEXER = "knowledge-articles-indexer"
DATASOURCE = "knowledge-articles-blob"
SERVICE = "srch-sf-ai-sandbox"


@pytest.fixture
def srch(sbx):
    sbx.admin("PUT", "search/settings", {"indexer_duration_s": 0.6})
    return sbx


def endpoint(sandbox):
    return sandbox.env["SRE_SANDBOX_SEARCH_ENDPOINT"]


def key(sandbox, kind="ADMIN"):
    return AzureKeyCredential(sandbox.env[f"SRE_SANDBOX_SEARCH_{kind}_KEY"])


def indexes(sandbox, credential=None, **kwargs):
    return SearchIndexClient(endpoint(sandbox), credential or key(sandbox), **kwargs)


def indexers(sandbox, **kwargs):
    return SearchIndexerClient(endpoint(sandbox), key(sandbox), **kwargs)


def documents(sandbox, index=INDEX, credential=None, **kwargs):
    return SearchClient(endpoint(sandbox), index, credential or key(sandbox), **kwargs)


def state(sandbox):
    return next(s for s in sandbox.admin("GET", "search")["services"] if s["name"] == SERVICE)


def search_calls(sandbox):
    return sandbox.admin("GET", "search/calls")["calls"]


def wait_for_run(client, name, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_indexer_status(name)
        if status.last_result and status.last_result.status not in ("inProgress", "reset"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"indexer {name} still running after {timeout}s")


def definition(sandbox, name=INDEX):
    raw = indexes(sandbox).get_index(name).as_dict()
    return {k: v for k, v in raw.items() if not k.startswith("@odata.")}


def test_environment_names_the_seeded_service(srch):
    env = srch.env
    assert env["SRE_SANDBOX_SEARCH_ENDPOINT"].startswith("https://127.0.0.1:")
    assert env["SRE_SANDBOX_SEARCH_SRCH_SF_AI_SANDBOX_ENDPOINT"] == env["SRE_SANDBOX_SEARCH_ENDPOINT"]
    assert (env["SRE_SANDBOX_SEARCH_INDEX"], env["SRE_SANDBOX_SEARCH_INDEXER"], env["SRE_SANDBOX_SEARCH_PUSH_INDEX"]) \
        == (INDEX, INDEXER, "sf-knowledge-sync")


def test_keys_admin_query_wrong_and_none(srch):
    assert documents(srch, credential=key(srch, "QUERY")).get_document_count() == 120
    with pytest.raises(HttpResponseError) as query_key_writes:
        indexes(srch, credential=key(srch, "QUERY")).delete_index(INDEX)
    assert query_key_writes.value.status_code == 403
    with pytest.raises(HttpResponseError) as wrong:
        indexes(srch, credential=AzureKeyCredential("not-a-key")).get_index(INDEX)
    assert wrong.value.status_code == 403
    unauthenticated = requests.get(f"{endpoint(srch)}/indexes?api-version=2026-04-01", timeout=10)
    assert unauthenticated.status_code == 401 and unauthenticated.content == b""
    assert state(srch)["indexes"][INDEX]["document_count"] == 120  # the refused delete changed nothing


def test_entra_token_for_the_search_audience(srch):
    client = indexes(srch, credential=srch.credential())  # the SDK asks for https://search.azure.com/.default
    assert sorted(client.list_index_names()) == [INDEX, "sf-knowledge-sync"]
    arm_token = srch.credential().get_token(f"{srch.arm}/.default").token
    other_audience = requests.get(f"{endpoint(srch)}/indexes?api-version=2026-04-01",
                                  headers={"Authorization": f"Bearer {arm_token}"}, timeout=10)
    assert other_audience.status_code == 401
    with pytest.raises(ClientAuthenticationError):
        # A token for another audience is refused the way the SDK maps to an authentication error.
        SearchIndexClient(endpoint(srch), srch.credential(), audience=srch.arm).get_index(INDEX)


def test_get_index_in_both_url_forms_and_stats(srch):
    index = indexes(srch).get_index(INDEX)
    assert [f.name for f in index.fields if f.key] == ["id"]
    assert index.fields[1].analyzer_name == "en.microsoft" and index.fields[0].searchable is False
    assert index.fields[3].retrievable is True  # filled in by the service
    plain = requests.get(f"{endpoint(srch)}/indexes/{INDEX}?api-version=2024-07-01",
                         headers={"api-key": srch.env["SRE_SANDBOX_SEARCH_ADMIN_KEY"]}, timeout=10)
    assert plain.status_code == 200 and plain.json()["name"] == INDEX and plain.json()["@odata.etag"]
    stats = indexes(srch).get_index_statistics(INDEX)
    assert stats["documentCount"] == 120 and stats["storageSize"] > 0
    paths = [c["path"] for c in search_calls(srch)]
    assert f"/indexes('{INDEX}')" in paths and f"/indexes/{INDEX}" in paths


def test_invalid_definitions_are_refused_and_nothing_is_stored(srch):
    client = indexes(srch)
    good = definition(srch)
    cases = {
        "no key": (lambda d: d["fields"][0].update(key=False),
                   "Found 0 key fields in index 'knowledge-copy'. Each index must have exactly one key field."),
        "two keys": (lambda d: d["fields"][1].update(key=True), "Found 2 key fields"),
        "bad type": (lambda d: d["fields"][2].update(type="Edm.Text"), "invalid data type 'Edm.Text'"),
        "bad analyzer": (lambda d: d["fields"][2].update(analyzer="klingon.lucene"), "klingon.lucene"),
        "suggester on a missing field": (lambda d: d["suggesters"][0].update(sourceFields=["summary"]), "summary"),
    }
    for name, (breaks, message) in cases.items():
        broken = {**good, "name": "knowledge-copy", "fields": [dict(f) for f in good["fields"]],
                  "suggesters": [dict(s) for s in good["suggesters"]]}
        breaks(broken)
        with pytest.raises(HttpResponseError) as refused:
            client.create_index(broken)
        assert refused.value.status_code == 400, name
        assert refused.value.error.message.startswith("The request is invalid. Details: "), name
        assert message in refused.value.error.message, name
    assert sorted(client.list_index_names()) == [INDEX, "sf-knowledge-sync"]


def test_create_update_delete(srch):
    client = indexes(srch)
    good = definition(srch)
    with pytest.raises(ResourceExistsError):
        client.create_index(good)
    grown = {**good, "fields": good["fields"] + [{"name": "summary", "type": "Edm.String"}]}
    assert [f.name for f in client.create_or_update_index(grown).fields][-1] == "summary"
    changed_type = {**good, "fields": [dict(good["fields"][0])] + [
        dict(f, type="Edm.Int32") if f["name"] == "category" else f for f in good["fields"][1:]]}
    with pytest.raises(HttpResponseError) as refused:
        client.create_or_update_index(changed_type)
    assert refused.value.status_code == 400 and "category" in refused.value.error.message
    assert documents(srch).get_document_count() == 120  # an update keeps the documents
    client.delete_index(INDEX)
    client.delete_index(INDEX)  # the SDK takes the 404 of a second delete as done
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_index(INDEX)
    assert "No index with the name 'knowledge-articles'" in missing.value.error.message
    with pytest.raises(ResourceNotFoundError):
        documents(srch).get_document_count()


def test_documents_upload_count_search_and_unknown_fields(srch):
    client = documents(srch, "sf-knowledge-sync")
    results = client.upload_documents([{"id": "ka-9001", "title": "New", "content": "fresh", "category": "x"},
                                       {"id": "ka-0001", "title": "Changed"}])
    assert [(r.key, r.status_code) for r in results] == [("ka-9001", 201), ("ka-0001", 200)]
    assert client.get_document_count() == 121
    assert client.get_document("ka-0001")["title"] == "Changed"
    found = list(client.search("fresh"))
    assert [d["id"] for d in found] == ["ka-9001"]
    client.delete_documents([{"id": "ka-9001"}])
    assert client.get_document_count() == 120
    with pytest.raises(HttpResponseError) as unknown:
        client.upload_documents([{"id": "ka-9002", "summary": "no such field"}])
    assert unknown.value.status_code == 400 and "'summary' does not exist" in unknown.value.error.message


def test_recreated_index_is_refilled_only_after_reset(srch):
    index_client, indexer_client = indexes(srch), indexers(srch)
    good = definition(srch)
    index_client.delete_index(INDEX)
    index_client.create_index(good)
    indexer_client.run_indexer(INDEXER)
    first = wait_for_run(indexer_client, INDEXER)
    # The indexer remembers what it indexed: a run without reset finds nothing new.
    assert first.last_result.status == "success" and first.last_result.item_count == 0
    assert documents(srch).get_document_count() == 0

    indexer_client.reset_indexer(INDEXER)
    indexer_client.run_indexer(INDEXER)
    running = indexer_client.get_indexer_status(INDEXER)
    assert running.last_result.status == "inProgress"
    with pytest.raises(ResourceExistsError) as concurrent:
        indexer_client.run_indexer(INDEXER)
    assert "currently in progress" in concurrent.value.error.message
    time.sleep(0.35)
    partial = documents(srch).get_document_count()
    assert 0 < partial < 120  # documents arrive while the run goes on
    done = wait_for_run(indexer_client, INDEXER)
    assert (done.last_result.status, done.last_result.item_count, done.last_result.failed_item_count) == \
        ("success", 120, 0)
    assert [h.status for h in done.execution_history[:3]] == ["success", "reset", "success"]
    assert done.status == "running" and done.limits.max_run_time
    assert documents(srch).get_document_count() == 120


def test_admin_switch_fails_the_next_run_or_shortens_the_source(srch):
    client = indexers(srch)
    srch.admin("PUT", f"search/services/{SERVICE}/indexers/{INDEXER}/next_run",
               {"outcome": "fail", "error": "Credentials provided in the connection string are invalid."})
    documents(srch).delete_documents([{"id": "ka-%04d" % n} for n in range(1, 121)])
    client.reset_indexer(INDEXER)
    client.run_indexer(INDEXER)
    failed = wait_for_run(client, INDEXER).last_result
    assert failed.status == "transientFailure"
    assert failed.error_message == "Credentials provided in the connection string are invalid."
    assert failed.errors[0].error_message == failed.error_message
    assert documents(srch).get_document_count() == 60  # it stopped half-way

    srch.admin("PUT", f"search/services/{SERVICE}/indexers/{INDEXER}/next_run", {"documents": 90})
    client.reset_indexer(INDEXER)
    client.run_indexer(INDEXER)
    short = wait_for_run(client, INDEXER).last_result
    assert (short.status, short.item_count) == ("success", 90)
    assert documents(srch).get_document_count() == 90  # the 60 of before are among the 90


def test_data_sources_and_indexers_crud(srch):
    client = indexers(srch)
    source = client.get_data_source_connection(DATASOURCE)
    assert source.type == "azureblob" and source.container.name == "knowledge-articles"
    assert source.connection_string is None  # secrets are never returned
    raw = {"name": "new-ds", "type": "azureblob", "container": {"name": "c"}, "credentials": {}}
    with pytest.raises(HttpResponseError) as no_secret:
        client.create_or_update_data_source_connection(raw)
    assert no_secret.value.status_code == 400 and "connection string" in no_secret.value.error.message
    raw["credentials"] = {"connectionString": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=eA=="}
    assert client.create_or_update_data_source_connection(raw).name == "new-ds"
    orphan = {"name": "orphan", "dataSourceName": "new-ds", "targetIndexName": "no-such-index"}
    with pytest.raises(HttpResponseError) as no_index:
        client.create_or_update_indexer(orphan)
    assert no_index.value.status_code == 400 and "no-such-index" in no_index.value.error.message
    made = client.create_or_update_indexer(dict(orphan, targetIndexName="sf-knowledge-sync"))
    assert made.target_index_name == "sf-knowledge-sync"
    assert sorted(client.get_indexer_names()) == [INDEXER, "orphan"]
    client.delete_indexer("orphan")
    client.delete_data_source_connection("new-ds")
    with pytest.raises(ResourceNotFoundError):
        client.get_indexer("orphan")


def test_faults_throttle_and_overload_are_retried_errors_surface(srch):
    srch.admin("POST", "search/faults", {"kind": "throttle", "method": "GET", "path": r"/docs/\$count", "retry_after": 1})
    srch.admin("POST", "search/faults", {"kind": "error", "status": 503, "method": "POST", "path": r"search\.run",
                                         "retry_after": 0})
    assert documents(srch).get_document_count() == 120
    indexers(srch).run_indexer(INDEXER)  # 503 answers to a POST are retried by azure-core
    faulted = [(c["method"], c["status"], c["fault"]) for c in search_calls(srch) if c["fault"]]
    assert faulted == [("GET", 429, "throttle"), ("POST", 503, "error")]
    srch.admin("POST", "search/faults", {"kind": "error", "status": 500, "path": "indexes", "count": 5})
    with pytest.raises(HttpResponseError) as failed:
        indexes(srch, retry_total=0).get_index(INDEX)
    assert failed.value.status_code == 500
    srch.admin("DELETE", "search/faults")
    srch.admin("POST", "search/faults", {"kind": "throttle", "path": "indexes", "retry_after": 7})
    throttled = requests.get(f"{endpoint(srch)}/indexes?api-version=2026-04-01",
                             headers={"api-key": srch.env["SRE_SANDBOX_SEARCH_ADMIN_KEY"]}, timeout=10)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"


def test_reset_goes_back_to_the_seed(srch):
    indexes(srch).delete_index(INDEX)
    srch.admin("POST", "search/faults", {"kind": "error", "path": "indexes"})
    srch.admin("POST", "reset")
    assert srch.admin("GET", "search/faults")["faults"] == []
    assert documents(srch).get_document_count() == 120
    assert state(srch)["indexers"][INDEXER]["tracking"] == 1
