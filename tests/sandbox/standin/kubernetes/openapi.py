"""A small OpenAPI v3 description of the served kinds (`/openapi/v3`, `/openapi/v3/<api path>`).

Not a schema of every field: what clients look up in it. kubectl (apply, create, replace with the
default --validate=strict) reads it to learn that the PATCH operation of a kind takes the
`fieldValidation` query parameter, and then leaves validation to the server instead of downloading
the full v2 schema; every served kind has its operations and a component carrying
`x-kubernetes-group-version-kind`. /openapi/v2 stays 404, as on servers that disable it.
"""

import hashlib
import json

from .resources import GROUPS, RESOURCES

QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
PACKAGES = {"": "io.k8s.api.core.v1", "apps": "io.k8s.api.apps.v1", "autoscaling": "io.k8s.api.autoscaling.v2",
            "networking.k8s.io": "io.k8s.api.networking.v1", "policy": "io.k8s.api.policy.v1",
            "coordination.k8s.io": "io.k8s.api.coordination.v1"}


def _gv_path(group, version):
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _operation(res, action, verb_suffix):
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    scope = "Namespaced" if res.namespaced else ""
    group_part = (res.group.split(".")[0].capitalize() if res.group else "Core") + res.version.capitalize()
    ref = {"$ref": f"#/components/schemas/{PACKAGES[res.group]}.{res.kind}"}
    parameters = [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for name in QUERY_PARAMS if action in ("patch", "put", "post") or name == "pretty"]
    return {"tags": [f"{res.group or 'core'}_{res.version}"],
            "operationId": f"{verb_suffix}{group_part}{scope}{res.kind}",
            "parameters": parameters,
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}},
                          "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}


def group_version_document(group, version):
    paths, schemas = {}, {}
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        prefix = f"/{_gv_path(group, version)}"
        collection = f"{prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{prefix}/{res.plural}"
        paths[collection] = {"get": _operation(res, "list", "list"), "post": _operation(res, "post", "create")}
        paths[f"{collection}/{{name}}"] = {
            "get": _operation(res, "get", "read"), "put": _operation(res, "put", "replace"),
            "patch": _operation(res, "patch", "patch"), "delete": _operation(res, "delete", "delete")}
        schemas[f"{PACKAGES[group]}.{res.kind}"] = {
            "description": f"{res.kind} (the sandbox does not describe fields)", "type": "object",
            "x-kubernetes-group-version-kind": [{"group": res.group, "kind": res.kind, "version": res.version}]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"},
            "paths": paths, "components": {"schemas": schemas}}


def documents():
    """{"api/v1": doc, "apis/apps/v1": doc} and the root listing with hashed URLs."""
    docs = {}
    for group, versions in GROUPS.items():
        for version in versions:
            docs[_gv_path(group, version)] = json.dumps(group_version_document(group, version)).encode()
    root = {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash="
                             f"{hashlib.sha512(body).hexdigest().upper()}"} for path, body in docs.items()}}
    return json.dumps(root).encode(), docs
