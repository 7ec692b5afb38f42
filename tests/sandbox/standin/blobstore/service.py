"""The Blob service REST API of the stand-in account (path-style URLs:
`https://127.0.0.1:PORT/{account}/{container}/{blob}`, as Azurite serves them).

Operations (what azure-storage-blob 12.x sends; learn.microsoft.com "Blob service REST API"):

  GET    /{account}?comp=list                                  List Containers
  PUT    /{account}/{c}?restype=container                      Create Container
  GET    /{account}/{c}?restype=container   (also HEAD)        Get Container Properties
  GET    /{account}/{c}?restype=container&comp=list            List Blobs (prefix, marker, maxresults,
                                                               include=snapshots,versions,deleted,metadata)
  PUT    /{account}/{c}/{b}  x-ms-blob-type: BlockBlob         Put Blob (a new version when versioning is on)
  PUT    /{account}/{c}/{b}?comp=block&blockid= / comp=blocklist   Put Block / Put Block List
  PUT    /{account}/{c}/{b}  x-ms-copy-source: URL             Copy Blob within the account (completes at once)
  PUT    /{account}/{c}/{b}?comp=snapshot                      Snapshot Blob
  PUT    /{account}/{c}/{b}?comp=undelete                      Undelete Blob
  GET    /{account}/{c}/{b}[?versionid=|snapshot=]             Get Blob (x-ms-range / Range)
  HEAD   /{account}/{c}/{b}[?versionid=|snapshot=]             Get Blob Properties
  DELETE /{account}/{c}/{b}[?versionid=|snapshot=]             Delete Blob (x-ms-delete-snapshots)

Every call needs `x-ms-version` and either a Shared Key signature (verified
against the account key) or a bearer token the sandbox's identity issued for
`https://storage.azure.com` (or the account URL). Errors are the service's XML
`<Error><Code/><Message/></Error>` with the code also in `x-ms-error-code`,
which is what the SDK maps to its exceptions (BlobNotFound and
ContainerNotFound → ResourceNotFoundError, AuthenticationFailed →
ClientAuthenticationError).
"""

import base64
import binascii
import datetime
import email.utils
import hashlib
import json
import re
import time
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from ..web import Response
from . import sharedkey
from .model import BlobError, blob_not_found, utcnow

STORAGE_AUDIENCES = ("https://storage.azure.com",)
SERVICE_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DEFAULT_MAX_RESULTS = 5000


def rfc1123(ts):
    return email.utils.format_datetime(ts.astimezone(datetime.timezone.utc), usegmt=True)


def _xml(text):
    return escape(str(text), {'"': "&quot;"})


def error_response(err, request_id=None):
    request_id = request_id or str(uuid.uuid4())
    message = f"{err.message}\nRequestId:{request_id}\nTime:{utcnow().strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z"
    extra = "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in getattr(err, "extra", {}).items())
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{_xml(err.code)}</Code>'
            f"<Message>{_xml(message)}</Message>{extra}</Error>")
    headers = {"x-ms-error-code": err.code, "x-ms-request-id": request_id}
    headers.update(err.headers)
    return Response(err.status, body, headers, "application/xml")


class BlobService:
    def __init__(self, provider):
        self.provider = provider
        self.sandbox = provider.sandbox
        self.uncommitted = {}  # (container, blob) -> {block id: bytes}

    @property
    def account(self):
        return self.provider.account

    # -- front door ------------------------------------------------------------------------
    def handle(self, request):
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request)
        except BlobError as err:
            response = error_response(err, request_id)
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers["x-ms-version"] = request.headers.get("x-ms-version") or "2025-11-05"
        response.headers["Date"] = rfc1123(utcnow())
        response.headers["Server"] = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    def _handle(self, request):
        segments = request.path.split("/", 3)  # "", account, container, blob
        account = unquote(segments[1]) if len(segments) > 1 else ""
        if account != self.account.name:
            raise BlobError(400, "InvalidUri" if account else "InvalidQueryParameterValue",
                            f"The account {account!r} is not served here; this endpoint serves "
                            f"{self.account.name!r} (https://127.0.0.1:PORT/{self.account.name}).")
        self._authenticate(request)
        version = request.headers.get("x-ms-version")
        if not version:
            raise BlobError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not "
                                                          "specified: x-ms-version.")
        if not SERVICE_VERSION_RE.fullmatch(version):
            raise BlobError(400, "InvalidHeaderValue", f"The value for one of the HTTP headers is not in the "
                                                       f"correct format: x-ms-version {version!r}.")
        query = {k.lower(): v for k, v in parse_qsl(request.raw_query, keep_blank_values=True)}
        container = unquote(segments[2]) if len(segments) > 2 and segments[2] else None
        blob = unquote(segments[3]) if len(segments) > 3 and segments[3] else None
        with self.sandbox.lock:
            if container is None:
                if request.method == "GET" and query.get("comp") == "list":
                    return self._list_containers(query)
                raise self._unsupported(request)
            if blob is None:
                return self._container_call(request, query, container)
            return self._blob_call(request, query, container, blob)

    def _unsupported(self, request):
        return BlobError(400, "UnsupportedHttpVerb" if request.method not in ("GET", "PUT", "HEAD", "DELETE")
                         else "InvalidQueryParameterValue",
                         f"The sandbox blob service does not model {request.method} {request.path}?{request.raw_query}.")

    def _authenticate(self, request):
        header = request.headers.get("Authorization")
        if not header:
            err = BlobError(401, "NoAuthenticationInformation",
                            "Server failed to authenticate the request. Please refer to the information in the "
                            "www-authenticate header.")
            err.headers["WWW-Authenticate"] = (
                f"Bearer authorization_uri={self.sandbox.base_url}/{self.sandbox.tenant_id}/oauth2/authorize "
                f"resource_id={STORAGE_AUDIENCES[0]}")
            raise err
        if header.startswith("Bearer "):
            problem = self._check_token(header[len("Bearer "):].strip())
        else:
            problem = self._check_date(request)
            if problem is None:
                reason = sharedkey.verify(self.account.name, self.account.key, request.method, request.path,
                                          request.raw_query, request.headers.items(), header)
                problem = reason[0] if reason else None
        if problem:
            err = BlobError(403, "AuthenticationFailed",
                            "Server failed to authenticate the request. Make sure the value of Authorization "
                            "header is formed correctly including the signature.")
            err.extra = {"AuthenticationErrorDetail": problem}
            raise err

    @staticmethod
    def _check_date(request):
        """A Shared Key request carries x-ms-date (or Date) within 15 minutes of the service's clock."""
        sent = request.headers.get("x-ms-date") or request.headers.get("Date")
        if not sent:
            return "Request date header not specified (x-ms-date or Date)."
        try:
            when = email.utils.parsedate_to_datetime(sent)
        except (TypeError, ValueError):
            return f"The request date {sent!r} is not an RFC 1123 date."
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        if abs((utcnow() - when).total_seconds()) > 15 * 60:
            return f"Request date header too old or too far in the future: {sent!r}."
        return None

    def _check_token(self, token):
        info = self.provider.identity.token_info(token)
        if info is None:
            return "Signature validation failed: the token was not issued by the sandbox identity."
        if info["expires_at"] < time.time():
            return "Lifetime validation failed. The token is expired."
        audience = info["audience"].rstrip("/").lower()
        accepted = {a.lower() for a in STORAGE_AUDIENCES} | {self.provider.account_url().lower(),
                                                             self.provider.service_url().lower()}
        if audience not in accepted:
            return f"Audience validation failed. Audience did not match: {info['audience']!r}."
        return None

    # -- containers --------------------------------------------------------------------------
    def _list_containers(self, query):
        names = sorted(n for n in self.account.containers if n.startswith(query.get("prefix", "")))
        names, next_marker = _page(names, query, key=lambda n: (n,))
        items = []
        for name in names:
            box = self.account.containers[name]
            items.append(
                f"<Container><Name>{_xml(name)}</Name><Properties><Last-Modified>{rfc1123(box.last_modified)}"
                f"</Last-Modified><Etag>{_xml(box.etag)}</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>"
                f"available</LeaseState><HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false"
                f"</HasLegalHold></Properties></Container>")
        body = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="'
                f'{_xml(self.provider.account_url())}/">{_echo(query)}<Containers>{"".join(items)}</Containers>'
                f"<NextMarker>{_xml(next_marker or '')}</NextMarker></EnumerationResults>")
        return Response(200, body, content_type="application/xml")

    def _container_call(self, request, query, container):
        if query.get("restype") != "container":
            raise self._unsupported(request)
        comp = query.get("comp")
        if request.method == "PUT" and comp is None:
            box = self.account.create_container(container, _metadata(request))
            return Response(201, b"", {"ETag": box.etag, "Last-Modified": rfc1123(box.last_modified)})
        if request.method in ("GET", "HEAD") and comp is None:
            box = self.account.container(container)
            headers = {"ETag": box.etag, "Last-Modified": rfc1123(box.last_modified),
                       "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available",
                       "x-ms-has-immutability-policy": "false", "x-ms-has-legal-hold": "false",
                       "x-ms-default-encryption-scope": "$account-encryption-key",
                       "x-ms-deny-encryption-scope-override": "false"}
            headers.update({f"x-ms-meta-{k}": v for k, v in box.metadata.items()})
            return Response(200, b"", headers)
        if request.method == "GET" and comp == "list":
            return self._list_blobs(container, query)
        raise self._unsupported(request)

    def _list_blobs(self, container, query):
        include = {part.strip().lower() for part in query.get("include", "").split(",") if part.strip()}
        unknown = include - {"snapshots", "versions", "deleted", "metadata", "tags", "copy", "uncommittedblobs",
                             "immutabilitypolicy", "legalhold", "deletedwithversions"}
        if unknown:
            raise BlobError(400, "InvalidQueryParameterValue",
                            f"Value for one of the query parameters specified in the request URI is invalid: "
                            f"include={','.join(sorted(unknown))}.")
        rows = self.account.listing(container, query.get("prefix", ""), include)
        rows, next_marker = _page(rows, query, key=_row_key)
        items = [self._blob_xml(blob, entry, include) for blob, entry in rows]
        body = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="'
                f'{_xml(self.provider.account_url())}/" ContainerName="{_xml(container)}">{_echo(query)}'
                f'<Blobs>{"".join(items)}</Blobs><NextMarker>{_xml(next_marker or "")}</NextMarker>'
                f"</EnumerationResults>")
        return Response(200, body, content_type="application/xml")

    def _blob_xml(self, blob, entry, include):
        parts = [f"<Name>{_xml(blob.name)}</Name>"]
        if entry.kind == "snapshot":
            parts.append(f"<Snapshot>{_xml(entry.id)}</Snapshot>")
        if entry.kind == "version":
            parts.append(f"<VersionId>{_xml(entry.id)}</VersionId>")
            if entry.is_current and not entry.deleted:
                parts.append("<IsCurrentVersion>true</IsCurrentVersion>")
        if "deleted" in include:
            parts.append(f"<Deleted>{'true' if entry.deleted else 'false'}</Deleted>")
        props = [
            f"<Creation-Time>{rfc1123(blob.created)}</Creation-Time>",
            f"<Last-Modified>{rfc1123(entry.last_modified)}</Last-Modified>",
            f"<Etag>{_xml(entry.etag.strip(chr(34)))}</Etag>",
            f"<Content-Length>{len(entry.content)}</Content-Length>",
            f"<Content-Type>{_xml(entry.content_type)}</Content-Type>",
            "<Content-Encoding /><Content-Language /><Content-CRC64 />",
            f"<Content-MD5>{base64.b64encode(entry.md5).decode('ascii')}</Content-MD5>" if entry.md5 else "<Content-MD5 />",
            "<Cache-Control /><Content-Disposition /><BlobType>BlockBlob</BlobType>",
            "<AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>",
            "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>",
            "<ServerEncrypted>true</ServerEncrypted>",
        ]
        if entry.copy:
            props.append(f"<CopyId>{entry.copy['id']}</CopyId><CopySource>{_xml(entry.copy['source'])}</CopySource>"
                         f"<CopyStatus>success</CopyStatus><CopyProgress>{len(entry.content)}/{len(entry.content)}"
                         f"</CopyProgress><CopyCompletionTime>{rfc1123(entry.copy['completion_time'])}"
                         f"</CopyCompletionTime>")
        if entry.deleted:
            props.append(f"<DeletedTime>{rfc1123(entry.deleted_time)}</DeletedTime>")
            days = self.account.remaining_retention_days(entry)
            if days is not None:
                props.append(f"<RemainingRetentionDays>{days}</RemainingRetentionDays>")
        parts.append(f"<Properties>{''.join(props)}</Properties>")
        if "metadata" in include:
            parts.append("<Metadata>" + "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in entry.metadata.items())
                         + "</Metadata>")
        return f"<Blob>{''.join(parts)}</Blob>"

    # -- blobs -------------------------------------------------------------------------------
    def _blob_call(self, request, query, container, name):
        self.account.container(container)  # ContainerNotFound before BlobNotFound, as the service does
        comp = query.get("comp")
        version_id, snapshot = query.get("versionid"), query.get("snapshot")
        if request.method == "PUT":
            if comp is None and request.headers.get("x-ms-copy-source"):
                return self._copy(request, container, name)
            if comp is None:
                return self._put_blob(request, container, name)
            if comp == "block":
                return self._put_block(request, query, container, name)
            if comp == "blocklist":
                return self._put_block_list(request, container, name)
            if comp == "snapshot":
                snap, base = self.account.snapshot(container, name, _metadata(request) or None)
                return Response(201, b"", {"x-ms-snapshot": snap.id, "ETag": base.etag,
                                           "Last-Modified": rfc1123(base.last_modified),
                                           **self._version_headers(base)})
            if comp == "undelete":
                self.account.undelete(container, name)
                return Response(200, b"")
        if request.method in ("GET", "HEAD") and comp is None:
            blob = self.account.blob(container, name)
            entry = blob.find(version_id, snapshot)
            if entry is None:
                raise blob_not_found()
            if request.method == "HEAD":
                # web.py writes Content-Length from the body and sends no body for HEAD: the blob's
                # content as body makes Content-Length its size, as the service reports it.
                return Response(200, entry.content, self._properties(blob, entry, full=True))
            return self._download(request, blob, entry)
        if request.method == "DELETE" and comp is None:
            self.account.delete(container, name, version_id, snapshot,
                                request.headers.get("x-ms-delete-snapshots"))
            return Response(202, b"", {"x-ms-delete-type-permanent": "false" if self.account.soft_delete_days
                                       else "true"})
        raise self._unsupported(request)

    def _version_headers(self, entry):
        if entry.kind != "version":
            return {}
        return {"x-ms-version-id": entry.id}

    def _properties(self, blob, entry, full):
        headers = {
            "Last-Modified": rfc1123(entry.last_modified), "ETag": entry.etag,
            "Content-Type": entry.content_type, "Accept-Ranges": "bytes",
            "x-ms-creation-time": rfc1123(blob.created), "x-ms-blob-type": "BlockBlob",
            "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available", "x-ms-server-encrypted": "true",
            "x-ms-access-tier": "Hot", "x-ms-access-tier-inferred": "true",
        }
        if entry.md5:
            md5 = base64.b64encode(entry.md5).decode("ascii")
            headers["Content-MD5" if full else "x-ms-blob-content-md5"] = md5
        if entry.kind == "version":
            headers["x-ms-version-id"] = entry.id
            if entry.is_current:
                headers["x-ms-is-current-version"] = "true"
        headers.update({f"x-ms-meta-{k}": v for k, v in entry.metadata.items()})
        if entry.copy:
            size = len(entry.content)
            headers.update({"x-ms-copy-id": entry.copy["id"], "x-ms-copy-source": entry.copy["source"],
                            "x-ms-copy-status": "success", "x-ms-copy-progress": f"{size}/{size}",
                            "x-ms-copy-completion-time": rfc1123(entry.copy["completion_time"])})
        return headers

    def _download(self, request, blob, entry):
        content = entry.content
        wanted = request.headers.get("x-ms-range") or request.headers.get("Range")
        if not wanted:
            return Response(200, content, self._properties(blob, entry, full=True))
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
        if not match:
            raise BlobError(400, "InvalidHeaderValue", f"The value for one of the HTTP headers is not in the correct "
                                                       f"format: range {wanted!r}.")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else len(content) - 1
        if start >= len(content):
            err = BlobError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
            err.headers["Content-Range"] = f"bytes */{len(content)}"
            raise err
        end = min(end, len(content) - 1)
        part = content[start:end + 1]
        headers = self._properties(blob, entry, full=False)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        if request.headers.get("x-ms-range-get-content-md5") == "true":
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(part).digest()).decode("ascii")
        return Response(206, part, headers)

    def _put_blob(self, request, container, name):
        blob_type = request.headers.get("x-ms-blob-type")
        if blob_type != "BlockBlob":
            raise BlobError(400, "InvalidHeaderValue" if blob_type else "MissingRequiredHeader",
                            "The sandbox blob service stores block blobs only (x-ms-blob-type: BlockBlob).")
        self._check_md5(request, request.body)
        entry = self.account.put(container, name, request.body,
                                 request.headers.get("x-ms-blob-content-type") or request.headers.get("Content-Type"),
                                 _metadata(request))
        return self._written(entry)

    def _written(self, entry):
        headers = {"ETag": entry.etag, "Last-Modified": rfc1123(entry.last_modified),
                   "x-ms-request-server-encrypted": "true"}
        if entry.md5:
            headers["Content-MD5"] = base64.b64encode(entry.md5).decode("ascii")
        headers.update(self._version_headers(entry))
        return Response(201, b"", headers)

    @staticmethod
    def _check_md5(request, body):
        sent = request.headers.get("Content-MD5")
        if sent:
            try:
                expected = base64.b64decode(sent, validate=True)
            except (binascii.Error, ValueError):
                raise BlobError(400, "InvalidMd5", "The MD5 value specified in the request is invalid.")
            if hashlib.md5(body).digest() != expected:
                raise BlobError(400, "Md5Mismatch", "The MD5 value specified in the request did not match with the "
                                                    "MD5 value calculated by the server.")

    def _put_block(self, request, query, container, name):
        block_id = query.get("blockid")
        if not block_id:
            raise BlobError(400, "MissingRequiredQueryParameter", "A query parameter that's mandatory for this "
                                                                  "request is not specified: blockid.")
        self._check_md5(request, request.body)
        self.uncommitted.setdefault((container, name), {})[block_id] = request.body
        return Response(201, b"", {"Content-MD5": base64.b64encode(hashlib.md5(request.body).digest()).decode(),
                                   "x-ms-request-server-encrypted": "true"})

    def _put_block_list(self, request, container, name):
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            raise BlobError(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")
        blocks = self.uncommitted.get((container, name), {})
        content = b""
        for element in root:
            if element.text not in blocks:
                raise BlobError(400, "InvalidBlockList", "The specified block list is invalid.")
            content += blocks[element.text]
        self.uncommitted.pop((container, name), None)
        entry = self.account.put(container, name, content, request.headers.get("x-ms-blob-content-type"),
                                 _metadata(request))
        # Put Block List stores no Content-MD5 unless the client sends one (the service does not hash
        # the whole blob), so such blobs list and download without one.
        md5_header = request.headers.get("x-ms-blob-content-md5")
        entry.md5 = base64.b64decode(md5_header) if md5_header else None
        return self._written(entry)

    def _copy(self, request, container, name):
        source = request.headers["x-ms-copy-source"]
        parts = urlsplit(source)
        own = {f"127.0.0.1:{self.provider.port}", f"localhost:{self.provider.port}"}
        path = parts.path.split("/", 3)
        if parts.netloc not in own or len(path) < 4 or unquote(path[1]) != self.account.name:
            err = BlobError(400, "CannotVerifyCopySource",
                            "The sandbox copies blobs only within its own account; the source must be "
                            f"{self.provider.account_url()}/<container>/<blob>.")
            raise err
        source_query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        try:
            source_blob = self.account.blob(unquote(path[2]), unquote(path[3]))
            entry = source_blob.find(source_query.get("versionid"), source_query.get("snapshot"))
        except BlobError:
            entry = None
        if entry is None:
            err = BlobError(404, "CannotVerifyCopySource", "The specified blob does not exist.")
            raise err
        copy_id = str(uuid.uuid4())
        metadata = _metadata(request) or entry.metadata
        written = self.account.put(container, name, entry.content, entry.content_type, metadata,
                                   copy_info=None)
        written.md5 = entry.md5
        written.copy = {"id": copy_id, "source": source, "completion_time": written.last_modified}
        headers = {"ETag": written.etag, "Last-Modified": rfc1123(written.last_modified),
                   "x-ms-copy-id": copy_id, "x-ms-copy-status": "success"}
        headers.update(self._version_headers(written))
        return Response(202, b"", headers)

    def admin_view(self):
        return json.loads(json.dumps(self.account.view()))


def _metadata(request):
    return {name[len("x-ms-meta-"):]: value for name, value in request.headers.items()
            if name.lower().startswith("x-ms-meta-")}


def _row_key(row):
    blob, entry = row
    rank = {"snapshot": 0, "version": 1, "base": 2}[entry.kind]
    return (blob.name, rank, entry.id or "")


def _page(items, query, key):
    """One page of `items` after the opaque `marker`; returns (page, NextMarker or None)."""
    try:
        limit = int(query.get("maxresults") or DEFAULT_MAX_RESULTS)
    except ValueError:
        limit = 0
    if not 1 <= limit <= DEFAULT_MAX_RESULTS:
        raise BlobError(400, "OutOfRangeQueryParameterValue", "One of the query parameters specified in the request "
                                                              "URI is outside the permissible range: maxresults.")
    marker = query.get("marker")
    if marker:
        try:
            start_key = tuple(json.loads(base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")))
        except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
            raise BlobError(400, "InvalidQueryParameterValue", "The marker is not valid: use the NextMarker the "
                                                               "service returned.")
        items = [item for item in items if key(item) >= start_key]
    page, rest = items[:limit], items[limit:]
    next_marker = base64.urlsafe_b64encode(json.dumps(key(rest[0])).encode("utf-8")).decode("ascii") if rest else None
    return page, next_marker


def _echo(query):
    out = ""
    if "prefix" in query:
        out += f"<Prefix>{_xml(query['prefix'])}</Prefix>"
    if "marker" in query:
        out += f"<Marker>{_xml(query['marker'])}</Marker>"
    if "maxresults" in query:
        out += f"<MaxResults>{_xml(query['maxresults'])}</MaxResults>"
    return out
