"""Azure AI Search provider of the sandbox (data plane; see dataplane.py for the REST surface).

Every seeded search service gets its own HTTPS port. Environment (first seeded service):
`SRE_SANDBOX_SEARCH_ENDPOINT` (`https://127.0.0.1:PORT`), `SRE_SANDBOX_SEARCH_ADMIN_KEY`,
`SRE_SANDBOX_SEARCH_QUERY_KEY`, `SRE_SANDBOX_SEARCH_SERVICE`, and the seeded names
`SRE_SANDBOX_SEARCH_INDEX` (filled by an indexer), `SRE_SANDBOX_SEARCH_INDEXER`,
`SRE_SANDBOX_SEARCH_DATASOURCE`, `SRE_SANDBOX_SEARCH_PUSH_INDEX` (filled by a push sync, no indexer);
every service also as `SRE_SANDBOX_SEARCH_<SERVICE>_ENDPOINT`.

Admin API (under /_sandbox/, never faulted or logged):

  GET        /_sandbox/search                        services: index definitions, document counts and keys,
                                                     data sources, indexers (tracking, running, history), settings
  GET        /_sandbox/search/services/{svc}/indexes/{index}/documents   {"documents": [...]} (sorted by key)
  PUT        /_sandbox/search/services/{svc}/indexers/{indexer}/next_run
                                                     {"outcome": "fail", "error": "..."} and/or {"documents": N}:
                                                     the next run fails half-way with that error, or the data
                                                     source yields only N documents; {} disarms
  GET/PUT    /_sandbox/search/settings               {"indexer_duration_s": 2.0}: how long an indexer run takes
  GET/POST/DELETE /_sandbox/search/faults            faults on the search hosts: {"kind": "throttle"|"error"|
                                                     "timeout"|"slow", "count", "method", "path" (regex on the
                                                     request path as sent, e.g. "search\\.run"), "status",
                                                     "retry_after", "delay_s"}; 429 and 503 carry Retry-After
  GET/DELETE /_sandbox/search/calls                  {"calls": [{time, service, method, path, query, status, fault}]}

`POST /_sandbox/reset` puts everything back to the seed (faults, settings, calls included).
"""

import time

from ..calls import CallLog
from ..core import iso, utcnow
from ..faults import FaultSpecError, Faults
from ..settings import AdminSettings
from ..web import BadJson, DropConnection, Response
from .dataplane import DataPlane, error_response
from .model import SearchService

DEFAULT_SETTINGS = {"indexer_duration_s": 2.0}
FAULT_KINDS = ("throttle", "error", "timeout", "slow")


def _admin_error(status, message):
    return Response.json({"error": message}, status)


class SearchProvider:
    name = "search"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.identity = arm.identity
        self.faults = Faults()
        self.settings = AdminSettings(sandbox, "search", DEFAULT_SETTINGS)
        self.calls = CallLog(sandbox, "search")
        self.state = self._load()
        self.dataplane = DataPlane(sandbox, self)
        self.dataplane.ensure_hosts()
        add = sandbox.admin.add
        add("GET", r"/_sandbox/search", self._admin_state)
        add("GET", r"/_sandbox/search/services/(?P<svc>[^/]+)/indexes/(?P<index>[^/]+)/documents",
            self._admin_documents)
        add("PUT", r"/_sandbox/search/services/(?P<svc>[^/]+)/indexers/(?P<indexer>[^/]+)/next_run",
            self._admin_next_run)
        add("GET", r"/_sandbox/search/faults", self._admin_list_faults)
        add("POST", r"/_sandbox/search/faults", self._admin_add_fault)
        add("DELETE", r"/_sandbox/search/faults", self._admin_clear_faults)
        sandbox.on_reset(self._reset)

    def _load(self):
        seed = self.sandbox.seed_section(self.name)
        return {spec["name"].lower(): SearchService(spec) for spec in seed.get("services", [])}

    def _reset(self):
        self.state = self._load()
        self.dataplane.ensure_hosts()
        self.settings.reset()
        self.calls.clear()
        self.faults.clear()

    # -- used by the data plane ----------------------------------------------------------
    def record_call(self, service, request, status, fault):
        with self.sandbox.lock:
            self.calls.append({"time": iso(utcnow()), "service": service, "method": request.method,
                               "path": request.path, "query": request.raw_query, "status": status, "fault": fault})

    def apply_fault(self, request):
        """(Response or None, fault kind or None) for an armed fault matching the request."""
        fault = self.faults.take(request.method, request.path, FAULT_KINDS)
        if fault is None:
            return None, None
        if fault.kind == "throttle":
            response = error_response(429, fault.message or "You are sending too many requests. Please try again "
                                      "later.", fault.code or "")
        elif fault.kind == "error":
            response = error_response(fault.status, fault.message or "Injected sandbox fault: the service had an "
                                      "internal error.", fault.code or "")
        else:
            time.sleep(fault.delay_s)
            if fault.kind == "timeout":
                raise DropConnection()
            return None, fault.kind
        if response.status in (429, 503):
            # Throttling and overload tell the client when to come back, as the service does.
            response.headers["Retry-After"] = str(fault.retry_after)
        return response, fault.kind

    # -- admin ---------------------------------------------------------------------------
    def _service(self, request):
        service = self.state.get(request.params["svc"].lower())
        if service is None:
            return None, _admin_error(404, f"no search service {request.params['svc']}")
        service.advance()
        return service, None

    def _admin_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    def _admin_documents(self, request):
        with self.sandbox.lock:
            service, error = self._service(request)
            if error:
                return error
            index = service.indexes.get(request.params["index"].lower())
            if index is None:
                return _admin_error(404, f"no index {request.params['index']}")
            return Response.json({"documents": [index.documents[k] for k in sorted(index.documents)]})

    def _admin_next_run(self, request):
        try:
            plan = request.json() or {}
            if not isinstance(plan, dict) or set(plan) - {"outcome", "error", "documents"}:
                raise ValueError("known keys: outcome, error, documents")
            if plan.get("outcome") not in (None, "fail", "success"):
                raise ValueError("outcome is fail or success")
            if plan.get("documents") is not None and int(plan["documents"]) < 0:
                raise ValueError("documents must be >= 0")
        except (BadJson, TypeError, ValueError) as err:
            return _admin_error(400, str(err))
        with self.sandbox.lock:
            service, error = self._service(request)
            if error:
                return error
            indexer = service.indexers.get(request.params["indexer"].lower())
            if indexer is None:
                return _admin_error(404, f"no indexer {request.params['indexer']}")
            indexer.next_run = plan or None
            return Response.json({"indexer": indexer.name, "next_run": indexer.next_run})

    def _admin_list_faults(self, request):
        return Response.json({"faults": self.faults.list()})

    def _admin_add_fault(self, request):
        try:
            spec = request.json()
            if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
                raise FaultSpecError(f"expected a JSON object with kind one of {', '.join(FAULT_KINDS)}")
            return Response.json(self.faults.add(spec), 201)
        except (BadJson, FaultSpecError, TypeError, ValueError) as err:
            return _admin_error(400, str(err))

    def _admin_clear_faults(self, request):
        self.faults.clear()
        return Response(204)

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        services = []
        for service in self.state.values():
            service.advance()
            services.append({
                "name": service.name,
                "endpoint": f"https://{service.host}",
                "indexes": {i.name: {"definition": i.definition, "etag": i.etag, "document_count": len(i.documents),
                                     "keys": sorted(i.documents)} for i in service.indexes.values()},
                "datasources": {s.name: {"definition": s.definition, "document_count": len(s.documents)}
                                for s in service.datasources.values()},
                "indexers": {x.name: {"definition": x.definition, "tracking": x.tracking,
                                      "running": x.current is not None, "next_run": x.next_run,
                                      "status": service.indexer_status(x)} for x in service.indexers.values()},
            })
        return {"services": services, "settings": dict(self.settings), "faults": self.faults.list()}

    def env(self):
        with self.sandbox.lock:
            services = list(self.state.values())
            env = {}
            for service in services:
                env["SRE_SANDBOX_SEARCH_%s_ENDPOINT" % service.name.upper().replace("-", "_")] = \
                    f"https://{service.host}"
            if services:
                first = services[0]
                seed = next(s for s in self.sandbox.seed[self.name]["services"] if s["name"] == first.name)
                names = seed.get("exported", {})
                env.update({
                    "SRE_SANDBOX_SEARCH_ENDPOINT": f"https://{first.host}",
                    "SRE_SANDBOX_SEARCH_SERVICE": first.name,
                    "SRE_SANDBOX_SEARCH_ADMIN_KEY": first.admin_keys[0],
                    "SRE_SANDBOX_SEARCH_QUERY_KEY": first.query_keys[0],
                    "SRE_SANDBOX_SEARCH_INDEX": names.get("index", ""),
                    "SRE_SANDBOX_SEARCH_INDEXER": names.get("indexer", ""),
                    "SRE_SANDBOX_SEARCH_DATASOURCE": names.get("datasource", ""),
                    "SRE_SANDBOX_SEARCH_PUSH_INDEX": names.get("push_index", ""),
                })
            return env

    def stop(self):
        self.dataplane.stop()
