"""The REST surface of the API server stand-in: discovery, CRUD, list/watch, patch, subresources.

Paths, verbs, query parameters and Status bodies follow the real API server
(k8s.io/apiserver/pkg/endpoints): /api/v1/namespaces/{ns}/{resource}/{name}[/{sub}],
/apis/{group}/{version}/..., cluster-scoped and all-namespace collections without the
namespace segment. Tables (`Accept: ...;as=Table;g=meta.k8s.io`) are served for the kinds
kubectl prints, so `kubectl get` looks like it does against a cluster.
"""

import datetime
import json
import random
import re
import time

from . import patches
from .access import SSAR_PATH
from ..web import Stream
from .defaults import prune_unknown_fields
from .openapi import documents
from .resources import (aggregated_discovery, api_group, api_group_list, api_resource_list, lookup, GROUPS,
                        RESOURCES)
from .selectors import (SelectorError, fields_match, format_label_selector, labels_match, parse_field_selector,
                        parse_label_selector)
from .store import ApiError, clone, conflict, not_found, now_micro
from ..web import Response

PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
OPENAPI_ROOT, OPENAPI_DOCS = documents()
NAMESPACE = next(r for r in RESOURCES if r.kind == "Namespace")
STATUS_SUBRESOURCE_KINDS = {r.kind for r in RESOURCES if "status" in r.subresources}


def status_response(err):
    headers = dict(err.headers)
    return Response(err.code, json.dumps(err.status(), separators=(",", ":")).encode(), headers, "application/json")


def dumps(obj):
    """Compact JSON as the API server writes it. ControllerRevisions get sorted keys: their `data` is a
    RawExtension that kubectl compares byte for byte with its own Go json.Marshal of a map (sorted keys,
    no spaces) to decide "skipped rollback (current template already matches revision N)"."""
    kind = obj.get("kind") or (obj.get("object") or {}).get("kind") if isinstance(obj, dict) else None
    return json.dumps(obj, separators=(",", ":"),
                      sort_keys=kind in ("ControllerRevision", "ControllerRevisionList")).encode()


def ok_json(obj, status=200):
    return Response(status, dumps(obj), None, "application/json")


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def _random_suffix(n=5):
    # The alphabet k8s.io/apimachinery/pkg/util/rand uses for generated names.
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _unused in range(n))


class Api:
    def __init__(self, provider):
        self.provider = provider

    @property
    def store(self):
        return self.provider.store

    # -- entry --------------------------------------------------------------------------------
    def dispatch(self, request):
        authorized = self._authenticate(request)
        if authorized is not True:
            return authorized
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return ok_json(self.provider.version_info())
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", None, "text/plain; charset=utf-8")
        accept = request.headers.get("Accept") or ""
        if path == "/openapi/v3":
            return Response(200, OPENAPI_ROOT, None, "application/json")
        if path.startswith("/openapi/v3/") and path[len("/openapi/v3/"):] in OPENAPI_DOCS:
            return Response(200, OPENAPI_DOCS[path[len("/openapi/v3/"):]], {"Cache-Control": "public, immutable"},
                            "application/json")
        if path == "/api":
            if "as=APIGroupDiscoveryList" in accept and self.provider.settings["aggregated_discovery"]:
                return self._aggregated(True)
            return ok_json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.provider.port}"}]})
        if path == "/apis":
            if "as=APIGroupDiscoveryList" in accept and self.provider.settings["aggregated_discovery"]:
                return self._aggregated(False)
            return ok_json(api_group_list())
        if path == "/api/v1":
            return ok_json(api_resource_list("", "v1"))
        m = re.fullmatch(r"/apis/([^/]+)(?:/([^/]+))?", path)
        if m and m.group(1) in GROUPS and m.group(1):
            group, version = m.groups()
            if version is None:
                return ok_json({"kind": "APIGroup", "apiVersion": "v1", **api_group(group)})
            if version in GROUPS[group]:
                return ok_json(api_resource_list(group, version))
        if path == SSAR_PATH:  # answered, never stored: kubernetes/access.py
            try:
                return self.provider.access.handle(request)
            except ApiError as err:
                return status_response(err)
        m = re.fullmatch(r"/api/v1/(.+)", path) or re.fullmatch(r"/apis/([^/]+)/([^/]+)/(.+)", path)
        if m:
            if path.startswith("/api/v1/"):
                group, version, rest = "", "v1", m.group(1)
            else:
                group, version, rest = m.groups()
            try:
                response = self._resource_request(request, group, version, rest.split("/"))
            except ApiError as err:
                return status_response(err)
            if getattr(request, "warnings", None):
                response.headers["Warning"] = ", ".join(f'299 - "unknown field \\"{path}\\""'
                                                        for path in request.warnings)
            return response
        return status_response(ApiError(404, "NotFound", "the server could not find the requested resource",
                                        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))

    def _authenticate(self, request):
        header = request.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None and request.path.rstrip("/") in PUBLIC_PATHS:
            return True  # system:anonymous may read these (system:public-info-viewer)
        if token and token in self.provider.tokens():
            return True
        return status_response(ApiError(401, "Unauthorized", "Unauthorized"))

    def _aggregated(self, core):
        body = json.dumps(aggregated_discovery(core)).encode()
        return Response(200, body, None, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")

    # -- resource routing ---------------------------------------------------------------------
    def _resource_request(self, request, group, version, segments):
        namespace = None
        namespace_subresource = len(segments) == 3 and segments[2] in ("status", "finalize")
        if segments[0] == "namespaces" and len(segments) >= 3 and not namespace_subresource:
            namespace = segments[1]
            segments = segments[2:]
        plural = segments[0]
        res = lookup(group, version, plural)
        if res is None or (namespace is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = segments[1] if len(segments) > 1 else None
        sub = segments[2] if len(segments) > 2 else None
        if len(segments) > 3 or (sub is not None and sub not in res.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = request.method
        if name is None:
            if method == "GET":
                watch = request.query.get("watch", "").lower() in ("1", "true")
                return self._watch(request, res, namespace) if watch else self._list(request, res, namespace)
            if method == "POST":
                if res.namespaced and namespace is None:
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
                return self._create(request, res, namespace)
            if method == "DELETE" and (namespace is not None or not res.namespaced):
                return self._delete_collection(request, res, namespace)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "GET":
            return self._get(request, res, namespace, name, sub)
        if method == "PUT":
            return self._update(request, res, namespace, name, sub)
        if method == "PATCH":
            return self._patch(request, res, namespace, name, sub)
        if method == "DELETE" and sub is None:
            return self._delete(request, res, namespace, name)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- reads --------------------------------------------------------------------------------
    def _selectors(self, request, res):
        try:
            labels = parse_label_selector(request.query.get("labelselector", ""))
            fields = parse_field_selector(request.query.get("fieldselector", ""))
        except SelectorError as err:
            raise bad_request(str(err)) from err
        for path, _op, _value in fields:
            if path not in res.field_selectors:
                raise bad_request(f'field label not supported: {path}')
        return labels, fields

    def _list(self, request, res, namespace):
        labels, fields = self._selectors(request, res)
        with self.store.lock:
            items = [o for o in self.store.list(res, namespace, copy_items=False)
                     if labels_match(labels, o["metadata"].get("labels")) and fields_match(fields, o)]
            items = clone(items)
            rv = str(self.store.revision)
        meta = {"resourceVersion": rv}
        limit = int(request.query.get("limit") or 0)
        start = 0
        if request.query.get("continue"):
            try:
                start = int(request.query["continue"].split(":", 1)[1])
            except (IndexError, ValueError) as err:
                raise bad_request("continue key is not valid") from err
        if limit:
            if start + limit < len(items):
                meta["continue"] = f"c:{start + limit}"
                meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        elif start:
            items = items[start:]
        if self._wants_table(request):
            return ok_json(self._table(request, res, items, rv))
        return ok_json({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items})

    def _get(self, request, res, namespace, name, sub):
        obj = self.store.get(res, namespace, name)
        if obj is None:
            raise not_found(res, name)
        if sub == "scale":
            return ok_json(self._scale_of(res, obj))
        if self._wants_table(request):
            return ok_json(self._table(request, res, [obj], obj["metadata"]["resourceVersion"]))
        return ok_json(obj)

    def _watch(self, request, res, namespace):
        labels, fields = self._selectors(request, res)
        try:
            timeout = float(request.query.get("timeoutseconds") or 1800)
        except ValueError as err:
            raise bad_request("timeoutSeconds must be a number") from err
        rv_text = request.query.get("resourceversion") or ""
        send_initial = request.query.get("sendinitialevents", "").lower() == "true"
        bookmarks = request.query.get("allowwatchbookmarks", "").lower() in ("1", "true")
        store = self.store
        if rv_text not in ("", "0"):
            try:
                start_rv = int(rv_text)
            except ValueError as err:
                raise bad_request(f"invalid resource version: {rv_text}") from err
        else:
            start_rv = None

        def matches(obj):
            meta = obj["metadata"]
            return ((namespace is None or meta.get("namespace") == namespace)
                    and labels_match(labels, meta.get("labels")) and fields_match(fields, obj))

        def event(kind, obj):
            return dumps({"type": kind, "object": obj}) + b"\n"

        def bookmark(rv, initial_end=False):
            meta = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return event("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta})

        def chunks():
            deadline = time.monotonic() + timeout
            with store.lock:
                if start_rv is not None and start_rv < store.oldest_watchable():
                    gone = ApiError(410, "Expired", f"too old resource version: {start_rv} ({store.oldest_watchable() + 1})")
                    yield event("ERROR", gone.status())
                    return
                if start_rv is None or send_initial:
                    initial = [o for o in store.list(res, namespace) if matches(o)]
                    cursor = store.revision
                else:
                    initial, cursor = [], start_rv
            for obj in initial:
                yield event("ADDED", obj)
            if send_initial:
                yield bookmark(cursor, initial_end=True)
            last_bookmark = time.monotonic()
            while not self.provider.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with store.lock:
                    pending = store.events_after(cursor, res.key)
                    if not pending and store.revision == cursor:
                        store.changed.wait(min(remaining, 1.0))
                        pending = store.events_after(cursor, res.key)
                    cursor = max(cursor, store.revision)
                if not pending:
                    yield None  # idle: lets the listener notice a client that went away
                for _rv, kind, obj, previous in pending:
                    now_matches = matches(obj)
                    was_matching = previous is not None and matches(previous)
                    if kind == "MODIFIED" and now_matches and not was_matching:
                        kind = "ADDED"  # entered the selection
                    elif kind == "MODIFIED" and was_matching and not now_matches:
                        yield event("DELETED", obj)  # left the selection: the real server reports a delete
                        continue
                    if now_matches:
                        yield event(kind, obj)
                if bookmarks and time.monotonic() - last_bookmark > 5:
                    last_bookmark = time.monotonic()
                    yield bookmark(cursor)

        return Stream(chunks(), 200, {"Content-Type": "application/json", "Cache-Control": "no-cache, private"})

    # -- writes -------------------------------------------------------------------------------
    def _body(self, request):
        try:
            body = json.loads(request.body or b"null")
        except ValueError as err:
            raise bad_request(f"couldn't get version/kind; json parse error: {err}") from err
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        return body

    def _dry_run(self, request):
        return request.query.get("dryrun") == "All"

    def _create(self, request, res, namespace):
        obj = self._body(request)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
            if self.store.get(NAMESPACE, None, namespace) is None:
                raise not_found(NAMESPACE, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + _random_suffix()
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(key, None)
        manager = request.query.get("fieldmanager") or self._default_manager(request)
        self._check_fields(request, res, obj)
        created = self.provider.create_object(res, obj, manager=manager, dry_run=self._dry_run(request))
        return ok_json(created, 201)

    def _default_manager(self, request):
        agent = request.headers.get("User-Agent") or "unknown"
        return agent.split("/")[0]

    def _update(self, request, res, namespace, name, sub):
        body = self._body(request)
        with self.store.lock:
            old = self.store.get(res, namespace, name)
            if old is None:
                raise not_found(res, name)
            if sub == "scale":
                return ok_json(self._scale_of(res, self._set_scale(request, res, old, body)))
            if (body.get("metadata") or {}).get("name") not in (None, name):
                raise bad_request("the name of the object does not match the name on the URL")
            self.provider.take_conflict_fault(request, res, name)
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            body.setdefault("metadata", {})["name"] = name
            if res.namespaced:
                body["metadata"]["namespace"] = namespace
            manager = request.query.get("fieldmanager") or self._default_manager(request)
            if sub is None:
                self._check_fields(request, res, body)
            updated = self.provider.update_object(res, old, body, sub, manager, self._dry_run(request))
        return ok_json(updated)

    def _patch(self, request, res, namespace, name, sub):
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        manager = request.query.get("fieldmanager")
        with self.store.lock:
            old = self.store.get(res, namespace, name)
            if content_type == "application/apply-patch+yaml":
                if not manager:
                    raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                                   "value: is required for apply patch")
                return self._apply(request, res, namespace, name, old, manager, sub)
            if old is None:
                raise not_found(res, name)
            target = self._scale_of(res, old) if sub == "scale" else old
            try:
                if content_type == "application/json-patch+json":
                    patched = patches.json_patch(target, json.loads(request.body or b"[]"))
                elif content_type == "application/merge-patch+json":
                    patched = patches.merge_patch(target, self._body(request))
                elif content_type == "application/strategic-merge-patch+json":
                    patched = patches.strategic_merge(target, self._body(request))
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted media types include: "
                                   "application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml, application/strategic-merge-patch+json")
            except ValueError as err:
                raise bad_request(f"error decoding patch: {err}") from err
            if not isinstance(patched, dict):
                raise bad_request("the patch produced something that is not an object")
            if sub == "scale":
                return ok_json(self._scale_of(res, self._set_scale(request, res, old, patched)))
            self.provider.take_conflict_fault(request, res, name)
            if (patched.get("metadata") or {}).get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
                raise conflict(res, name)
            patched.setdefault("metadata", {})["name"] = name
            if sub is None:
                self._check_fields(request, res, patched)
            updated = self.provider.update_object(res, old, patched, sub, manager or self._default_manager(request),
                                                  self._dry_run(request))
        return ok_json(updated)

    def _apply(self, request, res, namespace, name, old, manager, sub):
        applied = patches.parse_apply_body(request.body)
        unknown = prune_unknown_fields(res, clone(applied))
        if unknown:
            # Apply builds a typed object from the configuration: an unknown field is an error, never dropped.
            raise bad_request(f"failed to create typed patch object ({res.api_version}, Kind={res.kind}): "
                              + ", ".join(f".{path}: field not declared in schema" for path in unknown))
        meta = applied.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise bad_request("the name of the object does not match the name on the URL")
        force = request.query.get("force", "").lower() == "true"
        api_version = applied.get("apiVersion") or res.api_version
        if old is None:
            if sub is not None:
                raise not_found(res, name)
            obj = clone(applied)
            obj.setdefault("metadata", {})["name"] = name
            if res.namespaced:
                obj["metadata"]["namespace"] = namespace
                if self.store.get(NAMESPACE, None, namespace) is None:
                    raise not_found(NAMESPACE, namespace)
            obj["metadata"].pop("managedFields", None)
            obj["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": api_version,
                                                 "time": now_micro()[:19] + "Z", "fieldsType": "FieldsV1",
                                                 "fieldsV1": patches.field_set(applied)}]
            return ok_json(self.provider.create_object(res, obj, manager=None, dry_run=self._dry_run(request)), 201)
        self.provider.take_conflict_fault(request, res, name)
        merged = patches.server_side_apply(old, applied, manager, api_version, force)
        updated = self.provider.update_object(res, old, merged, sub, None, self._dry_run(request), applied_fields=True)
        return ok_json(updated)

    def _delete(self, request, res, namespace, name):
        options = {}
        if request.body:
            try:
                options = json.loads(request.body) or {}
            except ValueError:
                options = {}
        policy = request.query.get("propagationpolicy") or options.get("propagationPolicy") or "Background"
        preconditions = options.get("preconditions") or {}
        with self.store.lock:
            old = self.store.get(res, namespace, name)
            if old is None:
                raise not_found(res, name)
            if preconditions.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
                raise conflict(res, name)
            if self._dry_run(request):
                return ok_json(old)
            deleted = self.provider.delete_object(res, namespace, name, policy)
        if res.kind in ("Pod", "Namespace"):
            return ok_json(deleted)
        return ok_json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": res.group, "kind": res.plural,
                                    "uid": deleted["metadata"]["uid"]}})

    def _delete_collection(self, request, res, namespace):
        labels, fields = self._selectors(request, res)
        with self.store.lock:
            items = [o for o in self.store.list(res, namespace)
                     if labels_match(labels, o["metadata"].get("labels")) and fields_match(fields, o)]
            for obj in items:
                if not self._dry_run(request):
                    self.provider.delete_object(res, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                                "Background")
        return ok_json({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(self.store.revision)}, "items": items})

    @staticmethod
    def _check_fields(request, res, obj):
        """Drop unknown fields with a warning, as the real server does, or refuse them (fieldValidation=Strict)."""
        dropped = prune_unknown_fields(res, obj)
        if not dropped:
            return
        if request.query.get("fieldvalidation") == "Strict":
            raise bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: strict '
                              "decoding error: " + ", ".join(f'unknown field "{path}"' for path in dropped))
        request.warnings = getattr(request, "warnings", []) + dropped

    # -- scale --------------------------------------------------------------------------------
    def _scale_of(self, res, obj):
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"],
                             "creationTimestamp": meta["creationTimestamp"]},
                "spec": {"replicas": obj["spec"].get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": format_label_selector(obj["spec"].get("selector"))}}

    def _set_scale(self, request, res, old, scale):
        name = old["metadata"]["name"]
        self.provider.take_conflict_fault(request, res, name)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                           f"{replicas}: must be greater than or equal to 0",
                           {"name": name, "group": "autoscaling", "kind": "Scale",
                            "causes": [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                        "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}]})
        new = clone(old)
        new["spec"]["replicas"] = replicas
        manager = request.query.get("fieldmanager") or self._default_manager(request)
        return self.provider.update_object(res, old, new, None, manager, self._dry_run(request))

    # -- tables -------------------------------------------------------------------------------
    @staticmethod
    def _wants_table(request):
        accept = request.headers.get("Accept") or ""
        return "as=Table" in accept and "g=meta.k8s.io" in accept

    def _table(self, request, res, items, rv):
        columns, cells = TABLES.get(res.kind, TABLES["default"])
        include = request.query.get("includeobject") or "PartialObjectMetadata"
        rows = []
        for obj in items:
            row = {"cells": cells(obj)}
            if include == "Object":
                row["object"] = obj
            elif include != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": obj["metadata"]}
            rows.append(row)
        definitions = [{"name": name, "type": kind, "format": "name" if name == "Name" else "",
                        "description": desc, "priority": priority} for name, kind, desc, priority in columns]
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
                "columnDefinitions": definitions, "rows": rows}


def human_age(timestamp):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration of now - timestamp."""
    if not timestamp:
        return "<unknown>"
    then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _images(obj):
    containers = (obj.get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _node_selector(obj):
    selector = ((obj["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"


def _pod_ready(pod):
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod):
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason", "Waiting")
    return status.get("phase", "Unknown")


_NAME = ("Name", "string", "Name must be unique within a namespace.", 0)
_AGE = ("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0)
TABLES = {
    "default": ([_NAME, _AGE], lambda o: [o["metadata"]["name"], human_age(o["metadata"].get("creationTimestamp"))]),
    "Deployment": ([_NAME, ("Ready", "string", "Number of the pod with ready state", 0),
                    ("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
                    ("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
                    _AGE, ("Containers", "string", "Names of each container in the template.", 1),
                    ("Images", "string", "Images referenced by each container in the template.", 1),
                    ("Selector", "string", "Label selector for pods.", 1)],
                   lambda o: [o["metadata"]["name"],
                              f"{o.get('status', {}).get('readyReplicas', 0)}/{o['spec'].get('replicas', 0)}",
                              o.get("status", {}).get("updatedReplicas", 0),
                              o.get("status", {}).get("availableReplicas", 0),
                              human_age(o["metadata"].get("creationTimestamp")), *_images(o),
                              format_label_selector(o["spec"].get("selector"))]),
    "ReplicaSet": ([_NAME, ("Desired", "integer", "Number of desired pods.", 0),
                    ("Current", "integer", "Number of actually running pods.", 0),
                    ("Ready", "integer", "Number of ready pods.", 0), _AGE,
                    ("Containers", "string", "Names of each container in the template.", 1),
                    ("Images", "string", "Images referenced by each container in the template.", 1),
                    ("Selector", "string", "Label selector for pods.", 1)],
                   lambda o: [o["metadata"]["name"], o["spec"].get("replicas", 0),
                              o.get("status", {}).get("replicas", 0), o.get("status", {}).get("readyReplicas", 0),
                              human_age(o["metadata"].get("creationTimestamp")), *_images(o),
                              format_label_selector(o["spec"].get("selector"))]),
    "StatefulSet": ([_NAME, ("Ready", "string", "Number of the pod with ready state", 0), _AGE,
                     ("Containers", "string", "Names of each container in the template.", 1),
                     ("Images", "string", "Images referenced by each container in the template.", 1)],
                    lambda o: [o["metadata"]["name"],
                               f"{o.get('status', {}).get('readyReplicas', 0)}/{o['spec'].get('replicas', 0)}",
                               human_age(o["metadata"].get("creationTimestamp")), *_images(o)]),
    "DaemonSet": ([_NAME, ("Desired", "integer", "The total number of nodes that should be running the daemon pod.", 0),
                   ("Current", "integer", "The number of nodes running at least one daemon pod.", 0),
                   ("Ready", "integer", "The number of nodes running the daemon pod and ready.", 0),
                   ("Up-to-date", "integer", "The total number of nodes running the updated daemon pod.", 0),
                   ("Available", "integer", "The number of nodes running the daemon pod and available.", 0),
                   ("Node Selector", "string", "The node selector of the daemon pods.", 0), _AGE,
                   ("Containers", "string", "Names of each container in the template.", 1),
                   ("Images", "string", "Images referenced by each container in the template.", 1)],
                  lambda o: [o["metadata"]["name"], o.get("status", {}).get("desiredNumberScheduled", 0),
                             o.get("status", {}).get("currentNumberScheduled", 0),
                             o.get("status", {}).get("numberReady", 0),
                             o.get("status", {}).get("updatedNumberScheduled", 0),
                             o.get("status", {}).get("numberAvailable", 0),
                             _node_selector(o),
                             human_age(o["metadata"].get("creationTimestamp")), *_images(o)]),
    "Pod": ([_NAME, ("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
             ("Status", "string", "The aggregate status of the containers in this pod.", 0),
             ("Restarts", "string", "The number of times the containers in this pod have been restarted.", 0), _AGE,
             ("IP", "string", "IP address allocated to the pod.", 1), ("Node", "string", "Name of the node.", 1)],
            lambda o: [o["metadata"]["name"], _pod_ready(o), _pod_status(o),
                       str(sum(s.get("restartCount", 0) for s in (o.get("status") or {}).get("containerStatuses") or [])),
                       human_age(o["metadata"].get("creationTimestamp")), (o.get("status") or {}).get("podIP", "<none>"),
                       (o.get("spec") or {}).get("nodeName", "<none>")]),
    "Event": ([("Last Seen", "string", "Time when this Event was last seen", 0),
               ("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future.", 0),
               ("Reason", "string", "Reason is why the action was taken. It is human-readable.", 0),
               ("Object", "string", "The object that this event is about.", 0),
               ("Message", "string", "A human-readable description of the status of this operation.", 0)],
              lambda o: [human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")), o.get("type", ""),
                         o.get("reason", ""),
                         f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                         f"{(o.get('involvedObject') or {}).get('name', '')}", o.get("message", "")]),
    "Service": ([_NAME, ("Type", "string", "The type of the service.", 0),
                 ("Cluster-IP", "string", "The cluster IP of the service.", 0),
                 ("External-IP", "string", "The external IP of the service.", 0),
                 ("Port(s)", "string", "The ports of the service.", 0), _AGE],
                lambda o: [o["metadata"]["name"], o["spec"].get("type", "ClusterIP"), o["spec"].get("clusterIP", ""),
                           "<none>", ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                                              for p in o["spec"].get("ports") or []) or "<none>",
                           human_age(o["metadata"].get("creationTimestamp"))]),
    "ConfigMap": ([_NAME, ("Data", "integer", "Number of data entries.", 0), _AGE],
                  lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                             human_age(o["metadata"].get("creationTimestamp"))]),
    "Secret": ([_NAME, ("Type", "string", "The type of the secret.", 0),
                ("Data", "integer", "Number of data entries.", 0), _AGE],
               lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}),
                          human_age(o["metadata"].get("creationTimestamp"))]),
    "Namespace": ([_NAME, ("Status", "string", "The status of the namespace.", 0), _AGE],
                  lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"),
                             human_age(o["metadata"].get("creationTimestamp"))]),
    # pkg/printers/internalversion: printLease (an unset holderIdentity prints as an empty cell).
    "Lease": ([_NAME, ("Holder", "string", "holderIdentity contains the identity of the holder of a current lease.", 0),
               _AGE],
              lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity") or "",
                         human_age(o["metadata"].get("creationTimestamp"))]),
    "ControllerRevision": ([_NAME, ("Controller", "string", "Controller of the object.", 0),
                            ("Revision", "integer", "Revision of the ControllerRevision.", 0), _AGE],
                           lambda o: [o["metadata"]["name"],
                                      next((f"{r['kind'].lower()}.apps/{r['name']}" for r in
                                            o["metadata"].get("ownerReferences") or [] if r.get("controller")), "<none>"),
                                      o.get("revision", 0), human_age(o["metadata"].get("creationTimestamp"))]),
}
