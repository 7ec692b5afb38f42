"""The Azure AI Search data plane: one HTTPS listener per search service.

A real service is `https://<service>.search.windows.net`; here every service has its own port and
its endpoint is `https://127.0.0.1:PORT`. Paths are those azure-search-documents 12 sends (OData
key syntax, `/indexes('name')`), and the plain form of the older REST reference
(`/indexes/name`) is accepted as the service accepts both:

  GET    /indexes                              list ($select=name for list_index_names)
  POST   /indexes                              create (409 when it exists)
  GET|PUT|DELETE /indexes('x')                 get, create or update, delete (204; 404 when missing)
  GET    /indexes('x')/search.stats            {documentCount, storageSize, vectorIndexSize} (also /stats)
  GET    /indexes('x')/docs/$count             the document count as text
  POST   /indexes('x')/docs/search.index       upload / merge / mergeOrUpload / delete (200, 207 partial)
  POST   /indexes('x')/docs/search.post.search search ("*" or words; top, skip, count, select)
  GET    /indexes('x')/docs('key')             one document
  GET|POST /datasources, GET|PUT|DELETE /datasources('x')
  GET|POST /indexers,    GET|PUT|DELETE /indexers('x')
  POST   /indexers('x')/search.run             202; 409 while a run is in progress
  POST   /indexers('x')/search.reset           204: forget the high-water mark
  GET    /indexers('x')/search.status          status, lastResult, executionHistory, limits

Authentication: the `api-key` header. An admin key may do everything; a query key only reads
documents (count, search, get) and gets `403` elsewhere; a key that is neither gets `403`, no key
`401` (both with an empty body, as the service answers). A bearer token from the sandbox identity
for `https://search.azure.com` (the SDK's default audience with a TokenCredential) is accepted as
an admin (the RBAC roles Search Service Contributor + Search Index Data Contributor).
Errors are `{"error": {"code": "", "message": "..."}}`.
"""

import json
import re
import time
import uuid
from urllib.parse import unquote

from ..hosts import HostPool
from ..web import BadJson, DropConnection, Response, Router
from .model import SearchError

SEARCH_AUDIENCES = ("https://search.azure.com",)
API_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
ODATA_KEY_RE = re.compile(r"\('([^']*)'\)")
N = r"(?P<name>[^/]+)"


def error_response(status, message, code="", headers=None):
    return Response.json({"error": {"code": code, "message": message}}, status, headers)


class DataPlane(HostPool):
    def __init__(self, sandbox, provider):
        super().__init__(sandbox, provider)
        self.routes = Router(ignore_case=True)
        query = "query"
        for method, pattern, handler, access in (
            ("GET", r"/indexes/?", self.list_indexes, "admin"),
            ("POST", r"/indexes/?", self.create_index, "admin"),
            ("GET", rf"/indexes/{N}/(search\.)?stats", self.index_stats, "admin"),
            ("GET", rf"/indexes/{N}/docs/\$count", self.count, query),
            ("POST", rf"/indexes/{N}/docs/(search\.)?index", self.index_documents, "admin"),
            ("POST", rf"/indexes/{N}/docs/search\.post\.search", self.search_post, query),
            ("GET", rf"/indexes/{N}/docs/?", self.search_get, query),
            ("GET", rf"/indexes/{N}/docs/(?P<key>[^/]+)", self.get_document, query),
            ("GET", rf"/indexes/{N}", self.get_index, "admin"),
            ("PUT", rf"/indexes/{N}", self.put_index, "admin"),
            ("DELETE", rf"/indexes/{N}", self.delete_index, "admin"),
            ("GET", r"/datasources/?", self.list_datasources, "admin"),
            ("POST", r"/datasources/?", self.create_datasource, "admin"),
            ("GET", rf"/datasources/{N}", self.get_datasource, "admin"),
            ("PUT", rf"/datasources/{N}", self.put_datasource, "admin"),
            ("DELETE", rf"/datasources/{N}", self.delete_datasource, "admin"),
            ("GET", r"/indexers/?", self.list_indexers, "admin"),
            ("POST", r"/indexers/?", self.create_indexer, "admin"),
            ("POST", rf"/indexers/{N}/(search\.)?run", self.run_indexer, "admin"),
            ("POST", rf"/indexers/{N}/(search\.)?reset", self.reset_indexer, "admin"),
            ("GET", rf"/indexers/{N}/(search\.)?status", self.indexer_status, "admin"),
            ("GET", rf"/indexers/{N}", self.get_indexer, "admin"),
            ("PUT", rf"/indexers/{N}", self.put_indexer, "admin"),
            ("DELETE", rf"/indexers/{N}", self.delete_indexer, "admin"),
        ):
            self.routes.add(method, pattern, self._guarded(handler, access))

    def ensure_hosts(self):
        for service in self.provider.state.values():
            service.host = self.host_for((service.name.lower(),), f"search:{service.name}")

    # -- front door ------------------------------------------------------------------
    def _dispatcher(self, key):
        def dispatch(request):
            fault = None
            try:
                response, fault = self.provider.apply_fault(request)
                if response is None:
                    response = self._serve(key[0], request)
            except DropConnection:
                self.provider.record_call(key[0], request, None, "timeout")
                raise
            except SearchError as err:
                if err.status in (401, 403) and not err.message:
                    response = Response(err.status)  # the service sends no body with these
                else:
                    response = error_response(err.status, err.message, err.code, err.headers)
            except Exception as err:  # a sandbox bug must look like a server error, not a dropped socket
                response = error_response(500, f"sandbox bug: {err!r}")
            response.headers.setdefault("request-id", str(uuid.uuid4()))
            response.headers.setdefault("elapsed-time", "3")
            if request.headers.get("client-request-id"):
                response.headers["client-request-id"] = request.headers["client-request-id"]
            self.provider.record_call(key[0], request, response.status, fault)
            return response
        return dispatch

    def _serve(self, service_key, request):
        with self.sandbox.lock:
            service = self.provider.state.get(service_key)
        if service is None:
            raise DropConnection()  # the service is gone from the state: DNS would fail for real
        access = self._authenticate(service, request)
        version = request.query.get("api-version")
        if not version or not API_VERSION_RE.fullmatch(version):
            raise SearchError(400, "Invalid or missing api-version query string parameter.")
        path = ODATA_KEY_RE.sub(lambda m: "/" + m.group(1), unquote(request.path))
        handler, params = self.routes.match(request.method, path)
        if handler is None:
            if params:
                raise SearchError(405, f"The requested resource does not support http method '{request.method}'.")
            raise SearchError(404, f"The sandbox search service does not model {request.method} {request.path}.")
        request.params = params
        with self.sandbox.lock:
            service.advance()
            return handler(service, request, access)

    def _authenticate(self, service, request):
        key = (request.headers.get("api-key") or "").strip()
        if key:
            if key in service.admin_keys:
                return "admin"
            if key in service.query_keys:
                return "query"
            raise SearchError(403, "", headers={})
        scheme, _space, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            info = self.provider.identity.token_info(token.strip())
            if info and info["expires_at"] >= time.time() and \
                    info["audience"].rstrip("/").lower() in SEARCH_AUDIENCES:
                return "admin"
        raise SearchError(401, "")

    def _guarded(self, handler, access):
        def guarded(service, request, granted):
            if access == "admin" and granted != "admin":
                raise SearchError(403, "")
            return handler(service, request)
        return guarded

    # -- helpers -----------------------------------------------------------------------
    def _context(self, service, what):
        return f"https://{service.host}/$metadata#{what}"

    def _index_view(self, service, index):
        body = {"@odata.context": self._context(service, "indexes/$entity"), "@odata.etag": index.etag}
        body.update(index.definition)
        return body

    @staticmethod
    def _select(items, request):
        select = request.query.get("$select")
        if not select or select == "*":
            return items
        wanted = [s.strip() for s in select.split(",")]
        return [{k: v for k, v in item.items() if k in wanted} for item in items]

    # -- indexes -------------------------------------------------------------------------
    def list_indexes(self, service, request):
        items = [self._index_view(service, i) for _n, i in sorted(service.indexes.items())]
        for item in items:
            item.pop("@odata.context", None)
        return Response.json({"@odata.context": self._context(service, "indexes"),
                              "value": self._select(items, request)})

    def create_index(self, service, request):
        index, _created = service.put_index(_body(request), create_only=True)
        return Response.json(self._index_view(service, index), 201)

    def get_index(self, service, request):
        return Response.json(self._index_view(service, service.index(request.params["name"])))

    def put_index(self, service, request):
        index, created = service.put_index(_body(request), name_in_url=request.params["name"])
        if (request.headers.get("Prefer") or "").lower() != "return=representation" and not created:
            return Response(204)
        return Response.json(self._index_view(service, index), 201 if created else 200)

    def delete_index(self, service, request):
        service.delete_index(request.params["name"])
        return Response(204)

    def index_stats(self, service, request):
        index = service.index(request.params["name"])
        return Response.json({"@odata.context": self._context(service, "Microsoft.Azure.Search.V2026_04_01.IndexStatistics"),
                              "documentCount": len(index.documents), "storageSize": index.storage_size(),
                              "vectorIndexSize": 0})

    # -- documents ---------------------------------------------------------------------
    def count(self, service, request):
        index = service.index(request.params["name"])
        return Response(200, str(len(index.documents)), content_type="text/plain; charset=utf-8")

    def index_documents(self, service, request):
        index = service.index(request.params["name"])
        body = _body(request)
        actions = body.get("value")
        if not isinstance(actions, list) or not actions:
            raise SearchError(400, "The request is invalid. Details: actions : No indexing actions found in the "
                                   "request. Please include between 1 and 32000 indexing actions in your request.")
        results, all_ok = service.index_documents(index, actions)
        return Response.json({"value": results}, 200 if all_ok else 207)

    def _search(self, service, index, text, top, skip, count, select):
        docs = [index.documents[k] for k in sorted(index.documents)]
        words = [w.lower() for w in (text or "*").split() if w != "*"]
        if words:
            docs = [d for d in docs if all(w in json.dumps(d).lower() for w in words)]
        total = len(docs)
        page = docs[skip:skip + top]
        if select and select != "*":
            wanted = [s.strip() for s in select.split(",")]
            page = [{k: v for k, v in d.items() if k in wanted} for d in page]
        body = {"value": [dict(d, **{"@search.score": 1.0}) for d in page]}
        if count:
            body["@odata.count"] = total
        return Response.json(body)

    def search_post(self, service, request):
        index = service.index(request.params["name"])
        body = _body(request)
        return self._search(service, index, body.get("search"), int(body.get("top") or 50),
                            int(body.get("skip") or 0), bool(body.get("count")), body.get("select"))

    def search_get(self, service, request):
        index = service.index(request.params["name"])
        q = request.query
        return self._search(service, index, q.get("search"), int(q.get("$top") or 50), int(q.get("$skip") or 0),
                            q.get("$count", "false").lower() == "true", q.get("$select"))

    def get_document(self, service, request):
        index = service.index(request.params["name"])
        document = index.documents.get(request.params["key"])
        if document is None:
            raise SearchError(404, f"Document with key '{request.params['key']}' was not found.")
        return Response.json(document)

    # -- data sources ------------------------------------------------------------------
    def _datasource_view(self, service, source):
        return dict({"@odata.context": self._context(service, "datasources/$entity"), "@odata.etag": source.etag},
                    **source.definition)

    def list_datasources(self, service, request):
        items = [self._datasource_view(service, s) for _n, s in sorted(service.datasources.items())]
        return Response.json({"@odata.context": self._context(service, "datasources"),
                              "value": self._select(items, request)})

    def get_datasource(self, service, request):
        return Response.json(self._datasource_view(service, service.datasource(request.params["name"])))

    def create_datasource(self, service, request):
        body = _body(request)
        if (body.get("name") or "").lower() in service.datasources:
            raise SearchError(409, f"Cannot create data source '{body.get('name')}' because it already exists.")
        source, _created = service.put_datasource(body, body.get("name"))
        return Response.json(self._datasource_view(service, source), 201)

    def put_datasource(self, service, request):
        source, created = service.put_datasource(_body(request), request.params["name"])
        return Response.json(self._datasource_view(service, source), 201 if created else 200)

    def delete_datasource(self, service, request):
        if service.datasources.pop(request.params["name"].lower(), None) is None:
            raise SearchError(404, f"Data source '{request.params['name']}' was not found in service '{service.name}'.")
        return Response(204)

    # -- indexers ----------------------------------------------------------------------
    def _indexer_view(self, service, indexer):
        return dict({"@odata.context": self._context(service, "indexers/$entity"), "@odata.etag": indexer.etag},
                    **indexer.definition)

    def list_indexers(self, service, request):
        items = [self._indexer_view(service, i) for _n, i in sorted(service.indexers.items())]
        return Response.json({"@odata.context": self._context(service, "indexers"),
                              "value": self._select(items, request)})

    def get_indexer(self, service, request):
        return Response.json(self._indexer_view(service, service.indexer(request.params["name"])))

    def create_indexer(self, service, request):
        body = _body(request)
        if (body.get("name") or "").lower() in service.indexers:
            raise SearchError(409, f"Cannot create indexer '{body.get('name')}' because it already exists.")
        indexer, _created = service.put_indexer(body, body.get("name"))
        return Response.json(self._indexer_view(service, indexer), 201)

    def put_indexer(self, service, request):
        indexer, created = service.put_indexer(_body(request), request.params["name"])
        return Response.json(self._indexer_view(service, indexer), 201 if created else 200)

    def delete_indexer(self, service, request):
        if service.indexers.pop(request.params["name"].lower(), None) is None:
            raise SearchError(404, f"Indexer '{request.params['name']}' was not found in service '{service.name}'.")
        return Response(204)

    def run_indexer(self, service, request):
        indexer = service.indexer(request.params["name"])
        service.run_indexer(indexer, self.provider.settings["indexer_duration_s"])
        service.advance()  # a zero-duration run is over at once
        return Response(202)

    def reset_indexer(self, service, request):
        service.reset_indexer(service.indexer(request.params["name"]))
        return Response(204)

    def indexer_status(self, service, request):
        indexer = service.indexer(request.params["name"])
        body = {"@odata.context": self._context(service, "Microsoft.Azure.Search.V2026_04_01.IndexerExecutionInfo")}
        body.update(service.indexer_status(indexer))
        return Response.json(body)


def _body(request):
    try:
        data = request.json()
    except BadJson as err:
        raise SearchError(400, f"The request is invalid. Details: Invalid JSON: {err}") from err
    if not isinstance(data, dict):
        raise SearchError(400, "The request is invalid. Details: The request body must be a JSON object.")
    return data
