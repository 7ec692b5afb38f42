"""SelfSubjectAccessReview (authorization.k8s.io/v1): what `kubectl auth can-i` asks the API server.

  POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews
       {"spec": {"resourceAttributes": {namespace, verb, group, resource, subresource, name}}}
       or {"spec": {"nonResourceAttributes": {path, verb}}}
  -> 201 with the review echoed back plus
       "status": {"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding ..."} or {"allowed": false}

As a real API server: exactly one of resourceAttributes / nonResourceAttributes
(else 422 Invalid), the review is not stored (a GET of the collection is 405),
`dryRun` changes nothing. The sandbox token is bound to cluster-admin, so
everything is allowed unless a test denies it:

Admin (under /_sandbox/, not faulted or logged):
  GET /_sandbox/kubernetes/access     {"deny": [...]}
  PUT /_sandbox/kubernetes/access     {"deny": [{"verb", "resource", "group", "subresource", "namespace",
                                      "name", "path"}]}: each field omitted or "*" matches anything; a
                                      review matching any rule answers allowed=false (as RBAC does: no
                                      reason, denied unset). Replaces the list; {"deny": []} allows all.
Cleared on /_sandbox/reset. The answer is computed, not enforced: other requests are not checked.
"""

import json

from ..web import BadJson, Response
from .store import ApiError, now_rfc3339

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
# k8s.io/api/authorization/v1 generated.proto field numbers (what kubectl sends: it encodes built-in
# types as protobuf, `Content-Type: application/vnd.kubernetes.protobuf`, and accepts a JSON answer).
PROTOBUF_MAGIC = b"k8s\x00"
PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf"
RESOURCE_ATTRIBUTE_FIELDS = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
                             7: "name"}
NON_RESOURCE_ATTRIBUTE_FIELDS = {1: "path", 2: "verb"}
RULE_FIELDS = ("verb", "resource", "group", "subresource", "namespace", "name", "path")
ALLOWED_REASON = 'RBAC: allowed by ClusterRoleBinding "sandbox-admin" of ClusterRole "cluster-admin" to User "sandbox"'


def _matches(rule, attributes):
    return all(rule.get(field) in (None, "*") or str(rule[field]).lower() == str(attributes.get(field) or "").lower()
               for field in RULE_FIELDS)


def _varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data):
    """The top-level fields of one protobuf message: {number: [value, ...]} (bytes or int)."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _strings(message, names):
    fields = _fields(message)
    return {name: fields[number][0].decode() for number, name in names.items() if number in fields}


def decode_protobuf_review(body):
    """The JSON shape of a protobuf SelfSubjectAccessReview (runtime.Unknown envelope, then the object)."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise ValueError("missing the k8s protobuf magic number")
    envelope = _fields(body[len(PROTOBUF_MAGIC):])
    review = _fields((envelope.get(2) or [b""])[0])
    spec = _fields((review.get(2) or [b""])[0])
    decoded = {}
    if 1 in spec:
        decoded["resourceAttributes"] = _strings(spec[1][0], RESOURCE_ATTRIBUTE_FIELDS)
    if 2 in spec:
        decoded["nonResourceAttributes"] = _strings(spec[2][0], NON_RESOURCE_ATTRIBUTE_FIELDS)
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": decoded}


class AccessReviews:
    def __init__(self, provider):
        self.provider = provider
        self.deny = []
        sandbox = provider.sandbox
        sandbox.admin.add("GET", r"/_sandbox/kubernetes/access", self._admin_get)
        sandbox.admin.add("PUT", r"/_sandbox/kubernetes/access", self._admin_put)
        sandbox.on_reset(self._reset)

    def _reset(self):
        self.deny = []

    def handle(self, request):
        """The API route (called by Api.dispatch once the token is checked)."""
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        try:
            if (request.headers.get("Content-Type") or "").startswith(PROTOBUF_TYPE):
                body = decode_protobuf_review(request.body or b"")
            else:
                body = request.json()
        except (BadJson, ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, "BadRequest", f"the object provided is unrecognized: {err}") from err
        spec = (body or {}).get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            spec = {}
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (resource is None) == (non_resource is None):
            raise ApiError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                           "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes "
                           "or resourceAttributes must be specified",
                           {"kind": "SelfSubjectAccessReview", "group": "authorization.k8s.io"})
        attributes = dict(resource or non_resource)
        with self.provider.store.lock:
            denied = any(_matches(rule, attributes) for rule in self.deny)
        status = {"allowed": False} if denied else {"allowed": True, "reason": ALLOWED_REASON}
        answer = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None, "managedFields": [{
                "manager": request.headers.get("User-Agent", "unknown").split("/")[0], "operation": "Update",
                "apiVersion": "authorization.k8s.io/v1", "time": now_rfc3339()}]},
            "spec": spec,
            "status": status,
        }
        return Response(201, json.dumps(answer).encode(), None, "application/json")

    # -- admin ---------------------------------------------------------------------------
    def _admin_get(self, request):
        with self.provider.store.lock:
            return Response.json({"deny": list(self.deny)})

    def _admin_put(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        rules = body.get("deny") if isinstance(body, dict) else None
        if not isinstance(rules, list) or not all(isinstance(r, dict) and set(r) <= set(RULE_FIELDS) for r in rules):
            return Response.json({"error": f'expected {{"deny": [{{{", ".join(RULE_FIELDS)}}}]}}'}, 400)
        with self.provider.store.lock:
            self.deny = [dict(rule) for rule in rules]
            return Response.json({"deny": list(self.deny)})
