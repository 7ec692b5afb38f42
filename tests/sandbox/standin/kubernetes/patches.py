"""The four PATCH bodies the API server accepts, applied to plain JSON objects.

- application/json-patch+json            RFC 6902 (kubectl rollout undo for Deployments sends this)
- application/merge-patch+json           RFC 7386
- application/strategic-merge-patch+json lists merged by their patchMergeKey (containers by name...),
                                         directives $patch (replace/delete/merge), $retainKeys,
                                         $setElementOrder/<list>, $deleteFromPrimitiveList/<list>
                                         (kubectl set image, rollout undo of StatefulSets/DaemonSets)
- application/apply-patch+yaml           server-side apply: merge with the manager's field set in
                                         managedFields; fields the manager applied before and no longer
                                         applies are removed; conflicts with other appliers unless force

The merge keys are those of the Go types' `patchMergeKey` tags for the kinds served here.
"""

import json

import yaml

from .store import ApiError, clone, now_rfc3339


class PatchError(ApiError):
    def __init__(self, message, code=422, reason="Invalid"):
        super().__init__(code, reason, message)


# field name -> merge key (None: a list merged as a set of primitives). Lists not named here are atomic.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "conditions": "type",
    "ownerReferences": "uid", "resourceClaims": "name", "finalizers": None,
    "volumeClaimTemplates": None,
}


def merge_key_for(field, parent_field):
    if field == "ports":
        # Container ports merge by containerPort, Service ports by port.
        return "containerPort" if parent_field in ("containers", "initContainers", "ephemeralContainers") else "port"
    return MERGE_KEYS.get(field, "__atomic__")


# -- RFC 7386 ---------------------------------------------------------------------------------
def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- RFC 6902 ---------------------------------------------------------------------------------
def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts, op):
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path: /{'/'.join(parts)}")
    return node


def _get(doc, parts, op):
    if not parts:
        return doc
    parent = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing key: /{'/'.join(parts)}")


def _add(doc, parts, value, op="add"):
    if not parts:
        return value
    parent = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"jsonpatch {op} operation does not apply: index out of range: /{'/'.join(parts)}")
    else:
        raise PatchError(f"jsonpatch {op} operation does not apply: /{'/'.join(parts)}")
    return doc


def _remove(doc, parts, op="remove"):
    _get(doc, parts, op)
    parent = _parent(doc, parts, op)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return doc


def json_patch(doc, operations):
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", 400, "BadRequest")
    doc = clone(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid json patch operation {operation!r}", 400, "BadRequest")
        op = operation["op"]
        parts = _pointer(operation["path"])
        if op == "add":
            doc = _add(doc, parts, clone(operation.get("value")))
        elif op == "remove":
            doc = _remove(doc, parts)
        elif op == "replace":
            _get(doc, parts, op)
            if not parts:
                doc = clone(operation.get("value"))
            else:
                _remove(doc, parts, op)
                doc = _add(doc, parts, clone(operation.get("value")), op)
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = clone(_get(doc, source, op))
            if op == "move":
                _remove(doc, source, op)
            doc = _add(doc, parts, value, op)
        elif op == "test":
            if _get(doc, parts, op) != operation.get("value"):
                raise PatchError(f"testing value /{'/'.join(parts)} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}", 400, "BadRequest")
    return doc


# -- strategic merge patch ----------------------------------------------------------------------
def strategic_merge(original, patch, field=None):
    """Merge `patch` into `original` (a dict); returns a new dict, or None for `$patch: delete`."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", 400, "BadRequest")
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive!r}", 400, "BadRequest")
    result = clone(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [v for v in result[name] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key) if isinstance(result.get(key), dict) else {}, value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, key, field)
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original, patch, field, parent_field):
    merge_key = merge_key_for(field, parent_field)
    if merge_key == "__atomic__" or not isinstance(original, list):
        if merge_key not in ("__atomic__", None):
            # No original list: still honour per-item directives (a $patch: delete of nothing).
            return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "delete")
                    and not (isinstance(i, dict) and set(i) == {"$patch"})]
        return _strip_directives(clone(patch))
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if merge_key is None:
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    result = clone(original)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {merge_key}", 400, "BadRequest")
        index = next((i for i, o in enumerate(result) if isinstance(o, dict) and o.get(merge_key) == item[merge_key]),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge(result[index], item, field)
    return result


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# -- server-side apply --------------------------------------------------------------------------
def parse_apply_body(body):
    try:
        doc = yaml.safe_load(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise PatchError(f"error decoding YAML: {err}", 400, "BadRequest") from err
    if not isinstance(doc, dict):
        raise PatchError("apply patch must be an object", 400, "BadRequest")
    return doc


def field_set(value, field=None, parent_field=None):
    """The FieldsV1 form of the fields a value sets (what managedFields[].fieldsV1 holds)."""
    fields = {}
    if isinstance(value, dict):
        for key, sub in value.items():
            if field is None and key in ("apiVersion", "kind", "status"):
                continue
            if field is None and key == "metadata":
                kept = ("labels", "annotations", "finalizers", "ownerReferences")
                sub = {k: v for k, v in (sub or {}).items() if k in kept}
                if not sub:
                    continue
            fields[f"f:{key}"] = _field_set_value(sub, key, field)
    return fields


def _field_set_value(value, field, parent_field):
    if isinstance(value, dict):
        return field_set(value, field, parent_field) if value else {}
    if isinstance(value, list):
        merge_key = merge_key_for(field, parent_field)
        if merge_key == "__atomic__":
            return {}
        entries = {}
        for item in value:
            if merge_key is None:
                entries[f"v:{json.dumps(item)}"] = {}
            elif isinstance(item, dict) and merge_key in item:
                sub = field_set(item, field, parent_field)
                sub["."] = {}
                entries[f"k:{json.dumps({merge_key: item[merge_key]}, separators=(',', ':'))}"] = sub
        return entries
    return {}


def _leaf_paths(fields, prefix=()):
    paths = set()
    for key, sub in fields.items():
        if key == ".":
            continue
        path = prefix + (key,)
        paths.add(path)
        if sub:
            paths |= _leaf_paths(sub, path)
    return paths


def _remove_path(obj, path):
    node = obj
    for i, key in enumerate(path):
        last = i == len(path) - 1
        kind, name = key[0], key[2:]
        if kind == "f":
            if not isinstance(node, dict) or name not in node:
                return
            if last:
                del node[name]
                return
            node = node[name]
        elif kind == "k":
            wanted = json.loads(name)
            if not isinstance(node, list):
                return
            index = next((j for j, item in enumerate(node) if isinstance(item, dict)
                          and all(item.get(k) == v for k, v in wanted.items())), None)
            if index is None:
                return
            if last:
                del node[index]
                return
            node = node[index]
        elif kind == "v":
            wanted = json.loads(name)
            if isinstance(node, list) and wanted in node and last:
                node.remove(wanted)
            return


def _get_path(obj, path):
    node = obj
    for key in path:
        kind, name = key[0], key[2:]
        if kind == "f" and isinstance(node, dict) and name in node:
            node = node[name]
        elif kind == "k" and isinstance(node, list):
            wanted = json.loads(name)
            node = next((item for item in node if isinstance(item, dict)
                         and all(item.get(k) == v for k, v in wanted.items())), None)
            if node is None:
                return None, False
        else:
            return None, False
    return node, True


def server_side_apply(live, applied, manager, api_version, force):
    """Return the new object; `live` carries metadata.managedFields, which is updated."""
    applied = clone(applied)
    applied.get("metadata", {}).pop("managedFields", None)
    new_fields = field_set(applied)
    managed = list((live.get("metadata") or {}).get("managedFields") or [])
    previous = next((m for m in managed if m.get("manager") == manager and m.get("operation") == "Apply"), None)
    new_paths = _leaf_paths(new_fields)
    conflicts = []
    for other in managed:
        if other is previous or other.get("operation") != "Apply":
            continue
        for path in _leaf_paths(other.get("fieldsV1") or {}) & new_paths:
            mine, _found = _get_path(applied, path)
            theirs, present = _get_path(live, path)
            if present and not isinstance(mine, (dict, list)) and mine != theirs:
                conflicts.append((other["manager"], path))
    if conflicts and not force:
        lines = [f'conflict with "{m}" using {api_version}: .{".".join(k[2:] for k in p)}' for m, p in conflicts]
        raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                       f"{'s' if len(conflicts) > 1 else ''}: " + "\n".join(lines),
                       {"causes": [{"reason": "FieldManagerConflict", "message": line,
                                    "field": "." + ".".join(k[2:] for k in p)} for line, (_manager, p) in zip(lines, conflicts)]})
    result = clone(live)
    if previous is not None:
        for path in sorted(_leaf_paths(previous.get("fieldsV1") or {}) - new_paths, key=len, reverse=True):
            _remove_path(result, path)
    for key in ("apiVersion", "kind"):
        applied.pop(key, None)
    result = strategic_merge(result, applied)
    if conflicts and force:
        # Forced: the fields move to this manager.
        for other in managed:
            if other.get("operation") == "Apply" and other is not previous:
                mine = {p for m, p in conflicts if m == other["manager"]}
                if mine:
                    other["fieldsV1"] = _without(other.get("fieldsV1") or {}, mine)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now_rfc3339(),
             "fieldsType": "FieldsV1", "fieldsV1": new_fields}
    unchanged = {**result, "metadata": {k: v for k, v in result.get("metadata", {}).items() if k != "managedFields"}} \
        == {**live, "metadata": {k: v for k, v in live.get("metadata", {}).items() if k != "managedFields"}}
    if previous is not None and unchanged and previous.get("fieldsV1") == new_fields and not conflicts:
        # A no-op apply writes nothing: the manager's entry (and its time) stay as they were.
        result.setdefault("metadata", {})["managedFields"] = managed
        return result
    managed = [m for m in managed if m is not previous] + [entry]
    result.setdefault("metadata", {})["managedFields"] = managed
    return result


def _without(fields, paths, prefix=()):
    out = {}
    for key, sub in fields.items():
        path = prefix + (key,)
        if path in paths:
            continue
        out[key] = _without(sub, paths, path) if sub else sub
    return out
