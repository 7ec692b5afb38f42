# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""azure_search: definition checks and comparison as plain logic, and the rebuild procedure's
decisions and order of steps against an in-memory search service."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_search import (
    IndexRebuild,
    clean_definition,
    definition_differences,
    definition_problems,
    search_call,
    write_definition,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

DEFINITION = {
    "@odata.context": "https://x/$metadata#indexes/$entity",
    "@odata.etag": '"0x1"',
    "name": "kb",
    "fields": [
        {"name": "id", "type": "Edm.String", "key": True, "searchable": False, "analyzer": None, "synonymMaps": []},
        {"name": "title", "type": "Edm.String", "key": False, "searchable": True, "analyzer": "en.microsoft"},
        {"name": "tags", "type": "Collection(Edm.String)", "key": False},
    ],
    "suggesters": [],
    "corsOptions": None,
}


def definition(**changes):
    result = copy.deepcopy(DEFINITION)
    result.update(changes)
    return result


# -- definitions ------------------------------------------------------------------------------

def test_a_definition_as_the_service_returns_it_is_valid():
    assert definition_problems(DEFINITION) == []


@pytest.mark.parametrize("breaks, problem", [
    (lambda d: d["fields"][0].update(key=False), "exactly one field must be the key (key: true), found 0"),
    (lambda d: d["fields"][1].update(key=True), "found 2"),
    (lambda d: d["fields"][0].update(type="Edm.Int32"), "the key field 'id' must be of type Edm.String"),
    (lambda d: d["fields"][1].update(type="Edm.Text"), "field 'title' has an unknown type 'Edm.Text'"),
    (lambda d: d["fields"][2].update(type="Collection(Edm.Strin)"), "unknown type 'Collection(Edm.Strin)'"),
    (lambda d: d["fields"].append({"name": "Title", "type": "Edm.String"}), "field 'Title' appears more than once"),
    (lambda d: d["fields"].append({"type": "Edm.String"}), "fields[3] has no name"),
    (lambda d: d.update(name="KB--index"), "is not a valid index name"),
    (lambda d: d.update(fields=[]), "fields must be a non-empty list"),
])
def test_definition_problems_name_the_mistake(breaks, problem):
    broken = definition()
    breaks(broken)
    assert any(problem in p for p in definition_problems(broken)), definition_problems(broken)


def test_clean_definition_drops_only_service_bookkeeping():
    cleaned = clean_definition(DEFINITION)
    assert "@odata.etag" not in cleaned and "@odata.context" not in cleaned
    assert cleaned["fields"] == DEFINITION["fields"] and cleaned["fields"] is not DEFINITION["fields"]


def test_definitions_compare_on_what_the_saved_one_states():
    # A hand-written file leaves out what the service fills in; that is not a difference.
    short = {"name": "kb", "fields": [{"name": "id", "type": "Edm.String", "key": True},
                                      {"name": "title", "type": "Edm.String"},
                                      {"name": "tags", "type": "Collection(Edm.String)"}]}
    assert definition_differences(short, DEFINITION) == []
    assert definition_differences(DEFINITION, DEFINITION) == []
    changed = definition()
    changed["fields"][1]["analyzer"] = "standard.lucene"
    changed["fields"].append({"name": "summary", "type": "Edm.String"})
    changed["suggesters"] = [{"name": "sg", "sourceFields": ["title"]}]
    assert definition_differences(changed, DEFINITION) == [
        "field title differs (analyzer)", "field summary is missing", "suggesters differs"]
    fewer = definition(fields=DEFINITION["fields"][:2])
    assert definition_differences(fewer, DEFINITION) == ["field tags is not in the saved definition"]


def test_write_definition_is_idempotent_and_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "evidence" / "kb.json"
    assert write_definition(str(path), DEFINITION, check_mode=True) is True
    assert not path.exists()
    assert write_definition(str(path), DEFINITION, check_mode=False) is True
    assert json.loads(path.read_text()) == DEFINITION
    assert write_definition(str(path), DEFINITION, check_mode=False) is False


def test_search_call_turns_service_answers_into_actionable_messages():
    exceptions = pytest.importorskip("azure.core.exceptions")
    with pytest.raises(RollbackError) as forbidden:
        with search_call("Deleting index kb", index="kb"):
            error = exceptions.HttpResponseError(message="Operation returned an invalid status 'Forbidden'")
            error.status_code = 403
            raise error
    assert "admin key" in forbidden.value.message and forbidden.value.details == {"index": "kb"}
    with pytest.raises(RollbackError) as missing:
        with search_call("Reading indexer x", not_found="Indexer x does not exist."):
            raise exceptions.ResourceNotFoundError(message="Indexer 'x' was not found")
    assert missing.value.message == "Indexer x does not exist."


# -- the procedure against an in-memory service ------------------------------------------------

class FakeService:
    """What SearchService offers, in memory; `calls` records every change in order."""

    endpoint = "https://srch.example.net"

    def __init__(self, missing=False, documents=120, indexers=None, run_outcome="success", refill=120, refuse=None):
        self.definitions = {} if missing else {"kb": copy.deepcopy(DEFINITION)}
        self.counts = {} if missing else {"kb": documents}
        self.indexer_targets = {"kb-indexer": "kb"} if indexers is None else indexers
        self.run_outcome = run_outcome
        self.refill = refill
        self.refuse = refuse  # a message the service answers a create with
        self.calls = []
        self.last = {"status": "success", "startTime": "t0", "itemsProcessed": 120}

    def get_definition(self, index):
        return copy.deepcopy(self.definitions.get(index))

    def document_count(self, index):
        return self.counts[index]

    def create_index(self, definition, what=None):
        self.calls.append(("create", definition["name"]))
        if self.refuse:
            raise RollbackError("%s failed: HTTP 400: %s" % (what, self.refuse))
        self.definitions[definition["name"]] = definition
        self.counts[definition["name"]] = 0

    def delete_index(self, index, what=None):
        self.calls.append(("delete", index))
        self.definitions.pop(index, None)
        self.counts.pop(index, None)

    def indexers_of(self, index):
        return sorted(n for n, target in self.indexer_targets.items() if target == index)

    def indexer(self, name):
        return {"name": name, "targetIndexName": self.indexer_targets[name]}

    def indexer_status(self, name):
        return {"lastResult": self.last}

    def reset_and_run(self, name):
        self.calls.append(("run", name))
        if self.run_outcome == "success":
            self.counts["kb"] = self.refill
            self.last = {"status": "success", "startTime": "t1", "itemsProcessed": self.refill}
        else:
            self.counts["kb"] = self.refill
            self.last = {"status": "transientFailure", "startTime": "t1", "errorMessage": self.run_outcome,
                         "errors": [{"errorMessage": self.run_outcome}]}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def rebuild(service, **options):
    clock = Clock()
    options.setdefault("poll_interval", 1)
    options.setdefault("wait_timeout", 30)
    return IndexRebuild(service, "kb", clock=clock, sleep=clock.sleep, **options).run()


def test_nothing_to_do_changes_nothing():
    service = FakeService()
    changed, result = rebuild(service, expected_document_count=120)
    assert (changed, result["rebuilt"], result["reasons"], service.calls) == (False, False, [], [])
    unchanged = {"exists": True, "field_count": 3, "document_count": 120, "etag": '"0x1"'}
    assert result["before"] == result["after"] == unchanged


def test_check_mode_reports_what_would_be_dropped_and_changes_nothing():
    service = FakeService(documents=80)
    changed, result = rebuild(service, expected_document_count=120, check_mode=True)
    assert changed and result["rebuilt"] and service.calls == []
    assert result["would_drop"] == {"index": "kb", "field_count": 3, "document_count": 80}
    assert result["reasons"] == ["it holds 80 documents, fewer than the expected 120"]
    assert result["indexer"] == "kb-indexer"
    assert result["diff"] == {"before": "index kb: 3 fields, 80 documents\n",
                              "after": "index kb: 3 fields, 120 documents\n"}


def test_a_needed_rebuild_without_confirm_fails_before_any_change():
    service = FakeService(documents=80)
    with pytest.raises(RollbackError) as refused:
        rebuild(service, expected_document_count=120)
    assert "Set confirm: true" in refused.value.message and "drops its 80 documents" in refused.value.message
    assert service.calls == []


def test_rebuild_validates_drops_creates_refills_and_waits():
    service = FakeService(documents=80)
    changed, result = rebuild(service, expected_document_count=120, confirm=True)
    assert changed and result["rebuilt"]
    probe = service.calls[0][1]
    assert probe.startswith("kb-validate-")
    assert service.calls == [("create", probe), ("delete", probe), ("delete", "kb"), ("create", "kb"),
                             ("run", "kb-indexer")]
    assert result["document_count"] == 120 and result["indexer_result"]["status"] == "success"
    assert "@odata.etag" not in service.definitions["kb"]  # bookkeeping is never sent back


def test_a_definition_the_service_refuses_drops_nothing():
    service = FakeService(refuse="The request is invalid. Details: unknown analyzer")
    with pytest.raises(RollbackError) as refused:
        rebuild(service, force=True, confirm=True)
    assert "unknown analyzer" in refused.value.message and "temporary index" in refused.value.message
    assert [c[0] for c in service.calls] == ["create"] and "kb" in service.definitions


def test_an_invalid_definition_file_fails_before_anything(tmp_path):
    path = tmp_path / "kb.json"
    broken = definition()
    broken["fields"][0]["key"] = False
    path.write_text(json.dumps(broken))
    service = FakeService()
    with pytest.raises(RollbackError) as invalid:
        rebuild(service, definition_file=str(path), confirm=True)
    assert "not valid, nothing was changed" in invalid.value.message
    assert invalid.value.details["problems"] == ["exactly one field must be the key (key: true), found 0"]
    assert service.calls == []
    path.write_text(json.dumps(definition(name="other")))
    with pytest.raises(RollbackError, match="defines index 'other', not 'kb'"):
        rebuild(service, definition_file=str(path), confirm=True)
    path.write_text("{not json")
    with pytest.raises(RollbackError, match="is not valid JSON"):
        rebuild(service, definition_file=str(path), confirm=True)


def test_missing_index_and_no_definition_is_a_clear_error():
    with pytest.raises(RollbackError, match="does not exist .* no definition_file"):
        rebuild(FakeService(missing=True), confirm=True)


def test_a_saved_definition_that_differs_rebuilds_then_matches(tmp_path):
    path = tmp_path / "kb.json"
    saved = definition()
    saved["fields"].append({"name": "summary", "type": "Edm.String"})
    path.write_text(json.dumps(saved))
    service = FakeService()
    changed, result = rebuild(service, definition_file=str(path), confirm=True)
    assert changed and result["differences"] == ["field summary is missing"]
    again_changed, again = rebuild(service, definition_file=str(path), confirm=True)
    assert (again_changed, again["reasons"]) == (False, [])


def test_a_failed_indexer_run_names_its_error_and_reports_the_index():
    service = FakeService(documents=80, run_outcome="Credentials are invalid.", refill=60)
    with pytest.raises(RollbackError) as failed:
        rebuild(service, expected_document_count=120, confirm=True)
    assert "Indexer kb-indexer failed: Credentials are invalid." in failed.value.message
    assert "now holds 60 documents of the expected 120" in failed.value.message
    assert failed.value.details["indexer_result"]["status"] == "transientFailure"


def test_a_short_refill_times_out_with_the_count():
    service = FakeService(documents=120, refill=90)
    with pytest.raises(RollbackError) as short:
        rebuild(service, force=True, confirm=True, wait_timeout=5)
    assert "holds 90 documents, fewer than the expected 120" in short.value.message


def test_no_indexer_and_no_command_fails_before_any_change():
    service = FakeService(documents=80, indexers={})
    with pytest.raises(RollbackError, match="No indexer fills index kb"):
        rebuild(service, expected_document_count=120, confirm=True)
    assert service.calls == []


def test_resync_command_gets_the_endpoint_and_index_and_its_failure_is_reported():
    service = FakeService(documents=120, indexers={})
    seen = {}

    def runner(argv, **kwargs):
        seen.update(argv=argv, env=kwargs["env"])
        service.counts["kb"] = 120
        return subprocess.CompletedProcess(argv, 0, "pushed 120\n", "")
    clock = Clock()
    changed, result = IndexRebuild(service, "kb", resync_command=["sync", "--full"], force=True, confirm=True,
                                   clock=clock, sleep=clock.sleep, runner=runner).run()
    assert changed and result["command_rc"] == 0 and seen["argv"] == ["sync", "--full"]
    assert (seen["env"]["AZURE_SEARCH_ENDPOINT"], seen["env"]["AZURE_SEARCH_INDEX"]) == (service.endpoint, "kb")

    def failing(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 3, "", "Traceback...\nSalesforceAuthError: expired token\n")
    with pytest.raises(RollbackError) as failed:
        IndexRebuild(service, "kb", resync_command=["sync"], force=True, confirm=True, clock=clock,
                     sleep=clock.sleep, runner=failing).run()
    assert "exited with 3: SalesforceAuthError: expired token" in failed.value.message


def test_export_only_saves_the_definition(tmp_path):
    path = tmp_path / "kb.json"
    service = FakeService()
    changed, result = rebuild(service, state="exported", export_definition=str(path))
    assert changed and result["exported_to"] == str(path) and service.calls == []
    assert json.loads(path.read_text())["name"] == "kb"
    assert rebuild(service, state="exported", export_definition=str(path))[0] is False


def test_an_indexer_already_running_is_not_raced():
    service = FakeService(documents=80)
    service.last = {"status": "inProgress", "startTime": "t0"}
    with pytest.raises(RollbackError, match="Indexer kb-indexer is running now"):
        rebuild(service, expected_document_count=120, confirm=True)
    assert service.calls == []


def test_an_indexer_still_running_at_the_deadline_is_a_failure_with_the_count():
    service = FakeService(documents=80)

    def stays_running(name):
        service.calls.append(("run", name))
        service.counts["kb"] = 30
        service.last = {"status": "inProgress", "startTime": "t1", "itemsProcessed": 30}
    service.reset_and_run = stays_running
    with pytest.raises(RollbackError) as slow:
        rebuild(service, expected_document_count=120, confirm=True, wait_timeout=3)
    assert "still running after wait_timeout (3s)" in slow.value.message and "holds 30 documents" in slow.value.message
    assert slow.value.details["after"]["document_count"] == 30


def test_a_failed_re_create_says_the_index_is_missing_and_hands_back_the_definition():
    service = FakeService(documents=80)
    creates = []

    def create_fails_after_the_probe(definition, what=None):
        creates.append(definition["name"])
        if definition["name"] == "kb":
            raise RollbackError("%s failed: HTTP 503: Service Unavailable" % what)
    service.create_index = create_fails_after_the_probe
    with pytest.raises(RollbackError) as failed:
        rebuild(service, expected_document_count=120, confirm=True)
    assert "Re-creating index kb (it is missing now; its definition is in this result's definition)" \
        in failed.value.message
    assert failed.value.details["definition"]["name"] == "kb" and "@odata.etag" not in failed.value.details["definition"]
    assert creates[-1] == "kb" and "kb" not in service.definitions
