"""Azure AI Search state: services, index definitions and their documents, data sources, indexers.

What the real service does and the model keeps:

* An index definition is validated when it is created or updated: a valid name, at least one
  field, unique field names, known EDM types, exactly one key field and that of type Edm.String.
  A failure is `400` with the service's `"The request is invalid. Details: ..."` wording and
  nothing is stored.
* Updating an existing index may add fields, but an existing field cannot be removed or have its
  type or key flag changed (`400`): that is why a "rebuild" deletes and re-creates the index.
* Deleting an index deletes its documents. Indexers that target it are kept and fail when they
  run until an index of that name exists again.
* An indexer tracks what it has indexed (its high-water mark, as the blob indexer's built-in
  change detection does): a run after a successful run indexes only documents changed since, so
  an index re-created empty is refilled only after `reset` + `run`.
* An indexer run takes time: `inProgress` while documents arrive in batches, then `success` or
  `transientFailure` with `errorMessage` and item-level `errors`. A second run while one is in
  progress is refused (`409`).

Time only moves when someone looks: every request calls `advance()` first, which applies the
documents the running executions have reached by now. Everything here runs under the sandbox
lock; no locking in this module.
"""

import copy
import datetime
import json
import re
import time

INDEX_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){0,126}[a-z0-9]|[a-z0-9]")
FIELD_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
KEY_VALUE_RE = re.compile(r"[A-Za-z0-9_\-=]{1,1024}")
PRIMITIVE_TYPES = ("Edm.String", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset",
                   "Edm.GeographyPoint", "Edm.Single", "Edm.Half", "Edm.Int16", "Edm.SByte", "Edm.Byte",
                   "Edm.ComplexType")
BUILTIN_ANALYZERS = ("standard.lucene", "standardasciifolding.lucene", "keyword", "pattern", "simple", "stop",
                     "whitespace")
LANGUAGE_ANALYZER_RE = re.compile(r"[a-z]{2}(-[A-Za-z]+)?\.(lucene|microsoft)")
DATASOURCE_TYPES = ("azuresql", "cosmosdb", "azureblob", "azuretable", "mysql", "adlsgen2", "onelake", "sharepoint")
HISTORY_MAX = 50
# Properties the service fills in when a definition leaves them out (GET returns them).
STRING_FIELD_DEFAULTS = {"key": False, "retrievable": True, "stored": True, "searchable": True,
                         "filterable": True, "sortable": True, "facetable": True}
OTHER_FIELD_DEFAULTS = {"key": False, "retrievable": True, "stored": True, "searchable": False,
                        "filterable": True, "sortable": True, "facetable": True}
FIELD_NULLS = ("analyzer", "searchAnalyzer", "indexAnalyzer", "normalizer", "dimensions", "vectorSearchProfile",
               "vectorEncoding")


def iso_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class SearchError(Exception):
    """An error answer of the service: status and the message of {"error": {"code": "", "message"}}."""

    def __init__(self, status, message, code="", headers=None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


def invalid(details):
    return SearchError(400, f"The request is invalid. Details: {details}")


def _valid_type(type_name):
    inner = type_name[len("Collection("):-1] if type_name.startswith("Collection(") and type_name.endswith(")") \
        else type_name
    return inner in PRIMITIVE_TYPES


def validate_index(definition, name_in_url=None):
    """Raise SearchError(400) for a definition the service would refuse; return the name."""
    if not isinstance(definition, dict):
        raise invalid("The index definition must be a JSON object.")
    name = definition.get("name")
    if name_in_url is not None and name != name_in_url:
        raise invalid(f"The index name '{name}' in the request body does not match the name '{name_in_url}' "
                      "in the request URI.")
    if not isinstance(name, str) or not INDEX_NAME_RE.fullmatch(name):
        raise invalid(f"index.name : Invalid index name '{name}'. Index names must only contain lowercase "
                      "letters, digits or dashes, cannot start or end with dashes, cannot contain consecutive "
                      "dashes and are limited to 128 characters.")
    fields = definition.get("fields")
    if not isinstance(fields, list) or not fields:
        raise invalid(f"index : The index '{name}' must contain at least one field.")
    seen = set()
    keys = []
    for position, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            raise invalid(f"index.fields[{position}] : Every field must have a name.")
        field_name = field["name"]
        if not FIELD_NAME_RE.fullmatch(field_name):
            raise invalid(f"index.fields[{position}].name : Invalid field name '{field_name}'. Field names must "
                          "start with a letter and contain only letters, digits or underscores.")
        if field_name.lower() in seen:
            raise invalid(f"index.fields : The field name '{field_name}' is used more than once.")
        seen.add(field_name.lower())
        type_name = field.get("type")
        if not isinstance(type_name, str) or not _valid_type(type_name):
            raise invalid(f"index.fields[{position}].type : The field '{field_name}' has an invalid data type "
                          f"'{type_name}'.")
        if field.get("key"):
            keys.append(field)
    custom = {a.get("name") for a in definition.get("analyzers") or [] if isinstance(a, dict)}
    for position, field in enumerate(fields):
        for prop in ("analyzer", "searchAnalyzer", "indexAnalyzer"):
            analyzer = field.get(prop)
            if analyzer is None:
                continue
            if field["type"] not in ("Edm.String", "Collection(Edm.String)"):
                raise invalid(f"index.fields[{position}].{prop} : Only fields of type Edm.String or "
                              f"Collection(Edm.String) can have an analyzer; field '{field['name']}' is "
                              f"{field['type']}.")
            if analyzer not in BUILTIN_ANALYZERS and analyzer not in custom \
                    and not LANGUAGE_ANALYZER_RE.fullmatch(analyzer):
                raise invalid(f"index.fields[{position}].{prop} : The analyzer '{analyzer}' of field "
                              f"'{field['name']}' is not a predefined analyzer and not defined in the index.")
    for suggester in definition.get("suggesters") or []:
        for source in (suggester or {}).get("sourceFields") or []:
            if source.lower() not in seen:
                raise invalid(f"index.suggesters : The suggester '{suggester.get('name')}' refers to the field "
                              f"'{source}', which does not exist in the index.")
    if len(keys) != 1:
        raise invalid(f"index : Found {len(keys)} key fields in index '{name}'. Each index must have exactly one "
                      "key field.")
    if keys[0]["type"] != "Edm.String":
        raise invalid(f"index : The key field '{keys[0]['name']}' must be of type Edm.String.")
    return name


def with_defaults(definition):
    """The definition as GET returns it: every field property present."""
    stored = copy.deepcopy(definition)
    for key in [k for k in stored if k.startswith("@odata.")]:
        del stored[key]
    for field in stored["fields"]:
        defaults = STRING_FIELD_DEFAULTS if field["type"] in ("Edm.String", "Collection(Edm.String)") \
            else OTHER_FIELD_DEFAULTS
        for prop, value in defaults.items():
            field.setdefault(prop, value)
        for prop in FIELD_NULLS:
            field.setdefault(prop, None)
        field.setdefault("synonymMaps", [])
    for prop in ("scoringProfiles", "suggesters", "analyzers", "tokenizers", "tokenFilters", "charFilters",
                 "normalizers"):
        stored.setdefault(prop, [])
    stored.setdefault("defaultScoringProfile", None)
    stored.setdefault("corsOptions", None)
    stored.setdefault("encryptionKey", None)
    stored.setdefault("similarity", {"@odata.type": "#Microsoft.Azure.Search.BM25Similarity", "k1": None,
                                     "b": None})
    return stored


def key_field(definition):
    return next(f["name"] for f in definition["fields"] if f.get("key"))


class Index:
    def __init__(self, definition, etag_counter):
        self.definition = with_defaults(definition)
        self.documents = {}  # key value -> document
        self.etag = f'"0x8DD{etag_counter:012X}"'

    @property
    def name(self):
        return self.definition["name"]

    @property
    def key(self):
        return key_field(self.definition)

    def field_names(self):
        return {f["name"] for f in self.definition["fields"]}

    def storage_size(self):
        return sum(len(json.dumps(d)) for d in self.documents.values())


class DataSource:
    def __init__(self, definition, documents):
        self.definition = definition
        self.documents = documents  # [{"doc": {...}, "changed": int}], the data the indexer reads
        self.etag = '"0x8DD000000000001"'

    @property
    def name(self):
        return self.definition["name"]

    def max_changed(self):
        return max((d["changed"] for d in self.documents), default=0)


class Execution:
    """One indexer run: the documents it will write, when, and how it ends."""

    def __init__(self, items, duration_s, fail_error=None):
        self.items = items
        self.duration_s = max(0.0, float(duration_s))
        self.fail_error = fail_error
        self.started = time.monotonic()
        self.start_time = iso_now()
        self.end_time = None
        self.applied = 0
        self.status = "inProgress"
        self.error_message = None
        self.errors = []
        self.mark = 0  # the data source's change mark when the run started: the tracking state on success

    def view(self):
        return {"status": self.status, "statusDetail": None, "mode": "indexingAllDocs",
                "errorMessage": self.error_message, "startTime": self.start_time, "endTime": self.end_time,
                "errors": list(self.errors), "warnings": [], "itemsProcessed": self.applied,
                "itemsFailed": len(self.errors), "initialTrackingState": None, "finalTrackingState": None}


class Indexer:
    def __init__(self, definition):
        self.definition = definition
        self.etag = '"0x8DD000000000001"'
        self.tracking = None  # data-source change mark of the last successful run; None = index everything
        self.current = None  # running Execution
        self.history = []  # finished executions and reset marks, newest first (views)
        self.next_run = None  # admin switch: {"outcome": "fail"|"success", "error", "documents"}

    @property
    def name(self):
        return self.definition["name"]


class SearchService:
    def __init__(self, spec):
        self.name = spec["name"]
        self.admin_keys = list(spec["admin_keys"])
        self.query_keys = list(spec["query_keys"])
        self.indexes = {}
        self.datasources = {}
        self.indexers = {}
        self.host = None
        self._etags = 0
        for source in spec.get("datasources", []):
            documents = [{"doc": doc, "changed": 1} for doc in generate_documents(source.get("documents", {}))]
            definition = {k: v for k, v in source.items() if k != "documents"}
            self.datasources[source["name"].lower()] = DataSource(definition, documents)
        for index_spec in spec.get("indexes", []):
            index, _created = self.put_index(index_spec["definition"])
            source = self.datasources.get((index_spec.get("documents_from") or "").lower())
            if source is not None:
                fields = index.field_names()
                for entry in source.documents[:index_spec.get("document_count", len(source.documents))]:
                    doc = {k: copy.deepcopy(v) for k, v in entry["doc"].items() if k in fields}
                    index.documents[doc[index.key]] = doc
        for indexer_spec in spec.get("indexers", []):
            indexer = Indexer(dict(indexer_spec))
            self.indexers[indexer.name.lower()] = indexer
            if indexer_spec.get("seeded_run", True):
                # The seeded index was filled by this indexer: it has run once and is up to date.
                source = self.datasources[indexer_spec["dataSourceName"].lower()]
                indexer.tracking = source.max_changed()
                done = Execution([], 0)
                done.status, done.end_time = "success", done.start_time
                done.applied = len(source.documents)
                indexer.history.insert(0, done.view())

    # -- indexes --------------------------------------------------------------------------
    def index(self, name):
        index = self.indexes.get(name.lower())
        if index is None:
            raise SearchError(404, f"No index with the name '{name}' was found in the service '{self.name}'.")
        return index

    def put_index(self, definition, name_in_url=None, create_only=False):
        """Create or update; returns (index, created)."""
        name = validate_index(definition, name_in_url)
        existing = self.indexes.get(name.lower())
        if existing is not None and create_only:
            raise SearchError(409, f"Cannot create index '{name}' because it already exists.")
        self._etags += 1
        if existing is None:
            index = Index(definition, self._etags)
            self.indexes[name.lower()] = index
            return index, True
        old = {f["name"].lower(): f for f in existing.definition["fields"]}
        new = {f["name"].lower(): f for f in definition["fields"]}
        removed = [old[n]["name"] for n in old if n not in new]
        changed = [old[n]["name"] for n in old if n in new and (
            old[n]["type"] != new[n]["type"] or bool(old[n].get("key")) != bool(new[n].get("key")))]
        if removed or changed:
            raise invalid(f"definition : Existing field(s) {', '.join(sorted(removed + changed))} cannot be "
                          "removed or changed. Add new fields, or delete and re-create the index.")
        replacement = Index(definition, self._etags)
        replacement.documents = existing.documents
        self.indexes[name.lower()] = replacement
        return replacement, False

    def delete_index(self, name):
        if self.indexes.pop(name.lower(), None) is None:
            raise SearchError(404, f"No index with the name '{name}' was found in the service '{self.name}'.")

    # -- documents ------------------------------------------------------------------------
    def index_documents(self, index, actions):
        """Apply a search.index batch; returns (results, all_ok)."""
        results = []
        fields = index.field_names()
        for action in actions:
            kind = action.get("@search.action", "upload")
            doc = {k: v for k, v in action.items() if not k.startswith("@search.")}
            key = doc.get(index.key)
            unknown = sorted(set(doc) - fields)
            if unknown:
                raise invalid(f"The property '{unknown[0]}' does not exist on type 'search.documentFields'. Make "
                              "sure to only use property names that are defined by the type.")
            if kind not in ("upload", "merge", "mergeOrUpload", "delete"):
                raise invalid(f"Invalid action '{kind}'.")
            if not isinstance(key, str) or not KEY_VALUE_RE.fullmatch(key):
                results.append({"key": key, "status": False, "statusCode": 400,
                                "errorMessage": "Document key cannot be missing or empty, and can only contain "
                                                "letters, digits, underscore (_), dash (-), or equal sign (=)."})
                continue
            existed = key in index.documents
            if kind == "delete":
                index.documents.pop(key, None)
                results.append({"key": key, "status": True, "errorMessage": None, "statusCode": 200})
                continue
            if kind == "merge" and not existed:
                results.append({"key": key, "status": False, "statusCode": 404,
                                "errorMessage": f"Document not found. Document key: '{key}'"})
                continue
            if kind in ("merge", "mergeOrUpload") and existed:
                index.documents[key].update(doc)
            else:
                index.documents[key] = doc
            results.append({"key": key, "status": True, "errorMessage": None, "statusCode": 200 if existed else 201})
        return results, all(r["status"] for r in results)

    # -- data sources and indexers -------------------------------------------------------
    def datasource(self, name):
        source = self.datasources.get(name.lower())
        if source is None:
            raise SearchError(404, f"Data source '{name}' was not found in service '{self.name}'.")
        return source

    def put_datasource(self, definition, name_in_url):
        if not isinstance(definition, dict) or definition.get("name") != name_in_url:
            raise invalid(f"The data source name in the request body does not match '{name_in_url}'.")
        if definition.get("type") not in DATASOURCE_TYPES:
            raise invalid(f"dataSource.type : '{definition.get('type')}' is not a supported data source type; "
                          f"supported: {', '.join(DATASOURCE_TYPES)}.")
        if not (definition.get("container") or {}).get("name"):
            raise invalid("dataSource.container.name : The data container name is required.")
        existing = self.datasources.get(name_in_url.lower())
        connection = ((definition.get("credentials") or {}).get("connectionString"))
        if existing is None and not connection:
            raise invalid("dataSource.credentials : A connection string is required.")
        stored = {k: v for k, v in definition.items() if not k.startswith("@odata.")}
        stored["credentials"] = {"connectionString": None}  # never returned
        if existing is None:
            self.datasources[name_in_url.lower()] = DataSource(stored, [])
            return self.datasources[name_in_url.lower()], True
        existing.definition = stored
        return existing, False

    def indexer(self, name):
        indexer = self.indexers.get(name.lower())
        if indexer is None:
            raise SearchError(404, f"Indexer '{name}' was not found in service '{self.name}'.")
        return indexer

    def put_indexer(self, definition, name_in_url):
        if not isinstance(definition, dict) or definition.get("name") != name_in_url:
            raise invalid(f"The indexer name in the request body does not match '{name_in_url}'.")
        source_name = definition.get("dataSourceName") or ""
        index_name = definition.get("targetIndexName") or ""
        if source_name.lower() not in self.datasources:
            raise invalid(f"indexer.dataSourceName : Data source '{source_name}' does not exist.")
        if index_name.lower() not in self.indexes:
            raise invalid(f"indexer.targetIndexName : Index '{index_name}' does not exist.")
        stored = {k: v for k, v in definition.items() if not k.startswith("@odata.")}
        existing = self.indexers.get(name_in_url.lower())
        if existing is None:
            self.indexers[name_in_url.lower()] = Indexer(stored)
            return self.indexers[name_in_url.lower()], True
        existing.definition = stored
        return existing, False

    def run_indexer(self, indexer, duration_s):
        if indexer.definition.get("disabled"):
            raise SearchError(400, f"Indexer '{indexer.name}' is disabled; enable it to run it.")
        if indexer.current is not None:
            raise SearchError(409, "Another indexer invocation is currently in progress; concurrent invocations "
                                   "are not allowed.")
        source = self.datasources.get(indexer.definition["dataSourceName"].lower())
        entries = [e for e in (source.documents if source else [])
                   if indexer.tracking is None or e["changed"] > indexer.tracking]
        plan = indexer.next_run or {}
        indexer.next_run = None
        if plan.get("documents") is not None:
            entries = entries[:int(plan["documents"])]
        fail_error = plan.get("error") or ("Injected sandbox failure." if plan.get("outcome") == "fail" else None)
        execution = Execution([copy.deepcopy(e["doc"]) for e in entries], duration_s, fail_error)
        execution.mark = source.max_changed() if source else 0
        indexer.current = execution

    def reset_indexer(self, indexer):
        indexer.tracking = None
        mark = Execution([], 0)
        mark.status, mark.end_time = "reset", mark.start_time
        indexer.history.insert(0, mark.view())
        del indexer.history[HISTORY_MAX:]

    def advance(self):
        """Move every running indexer execution to where it is by now."""
        for indexer in self.indexers.values():
            execution = indexer.current
            if execution is None:
                continue
            elapsed = time.monotonic() - execution.started
            fraction = 1.0 if execution.duration_s == 0 else min(1.0, elapsed / execution.duration_s)
            # A failing run stops half-way: what it wrote stays, as with a real indexer.
            stop_at = 0.5 if execution.fail_error else 1.0
            index = self.indexes.get(indexer.definition["targetIndexName"].lower())
            if index is None:
                self._finish(indexer, execution, f"Index '{indexer.definition['targetIndexName']}' was not found "
                                                 f"in service '{self.name}'.")
                continue
            reached = int(len(execution.items) * min(fraction, stop_at))
            fields = index.field_names()
            while execution.applied < reached:
                # Source properties with no field of that name in the index are not indexed.
                doc = {k: v for k, v in execution.items[execution.applied].items() if k in fields}
                index.documents[doc[index.key]] = doc
                execution.applied += 1
            if fraction >= stop_at:
                self._finish(indexer, execution, execution.fail_error)

    @staticmethod
    def _finish(indexer, execution, error):
        execution.end_time = iso_now()
        if error:
            execution.status = "transientFailure"
            execution.error_message = error
            execution.errors = [{"key": None, "errorMessage": error, "statusCode": 500, "name": None,
                                 "details": None, "documentationLink": "https://go.microsoft.com/fwlink/?linkid=2049388"}]
        else:
            execution.status = "success"
            indexer.tracking = execution.mark
        indexer.current = None
        indexer.history.insert(0, execution.view())
        del indexer.history[HISTORY_MAX:]

    def indexer_status(self, indexer):
        history = ([indexer.current.view()] if indexer.current else []) + list(indexer.history)
        status = "running"
        if indexer.definition.get("disabled"):
            status = "unknown"
        return {"name": indexer.name, "status": status, "lastResult": history[0] if history else None,
                "executionHistory": history,
                "limits": {"maxRunTime": "PT2M", "maxDocumentExtractionSize": 16777216,
                           "maxDocumentContentCharactersToExtract": 32768}}


def generate_documents(spec):
    """The knowledge documents a data source holds, from the seed's generator spec."""
    documents = [copy.deepcopy(d) for d in spec.get("items", [])]
    count = int(spec.get("count", 0))
    topics = spec.get("topics") or ["general"]
    for n in range(1, count + 1):
        topic = topics[(n - 1) % len(topics)]
        documents.append({
            "id": spec.get("key_format", "doc-{n:04d}").format(n=n),
            "title": spec.get("title_format", "Article {n}: {topic}").format(n=n, topic=topic),
            "content": spec.get("content_format", "How to handle {topic} (article {n}).").format(n=n, topic=topic),
            "category": topic,
            "lastModified": spec.get("last_modified", "2026-11-20T08:00:00Z"),
        })
    return documents
