"""Object storage with the API server's bookkeeping: one global resourceVersion counter (etcd's
revision), uid, creationTimestamp, generation, and a bounded event log that watches replay from.

Objects are plain JSON dicts. Every read hands out a deep copy; every write stores one, so a
caller can never change stored state behind the store's back.
"""

import bisect
import datetime
import threading
import time
import uuid

WATCH_LOG_SIZE = 20000


def clone(value):
    """A deep copy of JSON data; several times faster than copy.deepcopy, which the controllers lean on."""
    if value.__class__ is dict:
        return {k: clone(v) for k, v in value.items()}
    if value.__class__ is list:
        return [clone(v) for v in value]
    return value


_STAMP = [0, ""]


def now_rfc3339():
    second = int(time.time())
    if _STAMP[0] != second:  # strftime is slow enough to show in a 200-deployment fleet
        _STAMP[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))]
    return _STAMP[1]


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ownerReferences name kinds; the work queue holds store keys.
OWNER_KINDS = {"Deployment": "apps/deployments", "ReplicaSet": "apps/replicasets", "StatefulSet": "apps/statefulsets",
               "DaemonSet": "apps/daemonsets"}


class ApiError(Exception):
    """Becomes a metav1.Status body with this code and reason."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def already_exists(res, name):
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                    {"name": name, "group": res.group, "kind": res.plural})


def conflict(res, name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
                    f"please apply your changes to the latest version and try again",
                    {"name": name, "group": res.group, "kind": res.plural})


def invalid(res, name, causes):
    """causes: [(field, reason, message)] as field.ErrorList renders them."""
    text = ", ".join(f"{field}: {message}" for field, _reason, message in causes)
    return ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: {text}' if name
                    else f"{res.kind} is invalid: {text}",
                    {"name": name, "group": res.group, "kind": res.kind,
                     "causes": [{"reason": reason, "message": message, "field": field}
                                for field, reason, message in causes]})


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects = {}  # (resource key, namespace, name) -> object
        self.by_resource = {}  # resource key -> {(namespace, name): object}, the same objects
        self.owned = {}  # controller owner uid -> {(resource key, namespace, name)}
        # Keys written since the controllers last looked, with their controller owners: the work queue.
        self.dirty = set()
        self.revision = 0
        self.events = []  # (rv, type, resource key, object)

    # -- reads -----------------------------------------------------------------------------
    def get(self, res, namespace, name):
        with self.lock:
            obj = self.objects.get((res.key, namespace or "", name))
            return clone(obj) if obj is not None else None

    def peek(self, res, namespace, name):
        """The stored object itself (no copy): for the controllers, under the lock, read-only."""
        return self.objects.get((res.key, namespace or "", name))

    def list(self, res, namespace=None, copy_items=True):
        with self.lock:
            items = [obj for (ns, _name), obj in self.by_resource.get(res.key, {}).items()
                     if namespace is None or ns == namespace]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return [clone(o) for o in items] if copy_items else items

    # -- writes ----------------------------------------------------------------------------
    def _next_rv(self):
        self.revision += 1
        return str(self.revision)

    def _track(self, key, obj, added):
        ref = next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        self.dirty.add(key)
        if ref is None:
            return
        owner_key = (OWNER_KINDS.get(ref.get("kind"), ref.get("kind")), key[1], ref.get("name"))
        self.dirty.add(owner_key)
        children = self.owned.setdefault(ref["uid"], set())
        if added:
            children.add(key)
        else:
            children.discard(key)

    def children(self, owner_uid, res_key):
        return [self.objects[k] for k in self.owned.get(owner_uid, ()) if k[0] == res_key and k in self.objects]

    def take_dirty(self):
        with self.lock:
            dirty, self.dirty = self.dirty, set()
            return dirty

    def _emit(self, kind, res, stored, previous=None):
        # Stored objects are never changed in place, so the event log can share them. The previous
        # version lets a filtered watch tell "changed" from "entered/left the selection".
        self.events.append((int(stored["metadata"]["resourceVersion"]), kind, res.key, stored, previous))
        if len(self.events) > WATCH_LOG_SIZE:
            del self.events[: len(self.events) - WATCH_LOG_SIZE]
        self.changed.notify_all()

    def create(self, res, obj):
        with self.lock:
            meta = obj.setdefault("metadata", {})
            key = (res.key, meta.get("namespace", "") if res.namespaced else "", meta["name"])
            if key in self.objects:
                raise already_exists(res, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["resourceVersion"] = self._next_rv()
            if res.has_generation:
                meta["generation"] = 1
            obj["apiVersion"] = res.api_version
            obj["kind"] = res.kind
            self.objects[key] = stored = clone(obj)
            self.by_resource.setdefault(key[0], {})[key[1:]] = stored
            self._track(key, stored, True)
            self._emit("ADDED", res, stored)
            return obj

    def replace(self, res, obj):
        """Store obj as the new version (the caller has done the merge); bumps resourceVersion."""
        with self.lock:
            meta = obj["metadata"]
            key = (res.key, meta.get("namespace", "") if res.namespaced else "", meta["name"])
            if key not in self.objects:
                raise not_found(res, meta["name"])
            meta["resourceVersion"] = self._next_rv()
            obj["apiVersion"] = res.api_version
            obj["kind"] = res.kind
            self.objects[key] = stored = clone(obj)
            previous = self.by_resource[key[0]][key[1:]]
            self.by_resource[key[0]][key[1:]] = stored
            if previous["metadata"].get("ownerReferences") != stored["metadata"].get("ownerReferences"):
                self._track(key, previous, False)
            self._track(key, stored, True)
            self._emit("MODIFIED", res, stored, previous)
            return obj

    def delete(self, res, namespace, name):
        with self.lock:
            key = (res.key, namespace or "", name)
            obj = self.objects.pop(key, None)
            if obj is None:
                raise not_found(res, name)
            del self.by_resource[key[0]][key[1:]]
            self._track(key, obj, False)
            self.owned.pop(obj["metadata"].get("uid"), None)
            obj = clone(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("DELETED", res, obj)
            return clone(obj)

    def clear(self):
        with self.lock:
            self.objects.clear()
            self.by_resource.clear()
            self.owned.clear()
            self.dirty.clear()
            self.events.clear()
            self.changed.notify_all()

    # -- watch -----------------------------------------------------------------------------
    def oldest_watchable(self):
        """The lowest resourceVersion a watch may start from (older ones are compacted: 410)."""
        with self.lock:
            return self.events[0][0] - 1 if self.events else self.revision

    def events_after(self, rv, res_key):
        with self.lock:
            start = bisect.bisect_right(self.events, rv, key=lambda event: event[0])
            return [(erv, kind, obj, prev) for erv, kind, key, obj, prev in self.events[start:] if key == res_key]
