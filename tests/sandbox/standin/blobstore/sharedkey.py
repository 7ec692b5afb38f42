"""Shared Key authorization of the Blob service, both sides of it.

The string to sign (learn.microsoft.com "Authorize with Shared Key", version
2015-02-21 and later): the verb, twelve standard headers (Content-Length
empty when 0), the canonicalized `x-ms-*` headers, then the canonicalized
resource `/{account}{path}` and the query parameters as `\\nname:value`
(names lower-cased and sorted, values URL-decoded, repeated names joined with
commas). The path is taken as sent: with path-style URLs
(`https://127.0.0.1:PORT/{account}/...`, as Azurite uses) the account name
appears twice, which is what the SDKs sign.

The service orders the `x-ms-*` names by a collation that ignores hyphens at
first (azure-storage-blob emulates it), so sorting on the name without
hyphens, then on the name, gives the same order for real header names.
"""

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

STANDARD_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
    "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)


def _header_order(name):
    return (name.replace("-", ""), name)


def string_to_sign(method, raw_path, raw_query, headers, account):
    """`headers`: an iterable of (name, value) pairs as sent."""
    lowered = {}
    for name, value in headers:
        lowered[name.lower()] = str(value).strip()
    lines = [method.upper()]
    for name in STANDARD_HEADERS:
        value = lowered.get(name, "")
        if name == "content-length" and value == "0":
            value = ""
        lines.append(value)
    canonical_headers = "".join(
        f"{name}:{lowered[name]}\n"
        for name in sorted((n for n in lowered if n.startswith("x-ms-")), key=_header_order)
    )
    query = {}
    for name, value in parse_qsl(raw_query or "", keep_blank_values=True):
        query.setdefault(name.lower(), []).append(value)
    resource = f"/{account}{raw_path}"
    for name in sorted(query):
        resource += f"\n{name}:{','.join(query[name])}"
    return "\n".join(lines) + "\n" + canonical_headers + resource


def signature(account_key, text):
    digest = hmac.new(base64.b64decode(account_key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization(account, account_key, method, raw_path, raw_query, headers):
    """The `Authorization` header value a client sends."""
    text = string_to_sign(method, raw_path, raw_query, headers, account)
    return f"SharedKey {account}:{signature(account_key, text)}"


def verify(account, account_key, method, raw_path, raw_query, headers, header_value):
    """None when `header_value` is a valid SharedKey signature, else (reason, string that was signed)."""
    scheme, _space, credential = (header_value or "").partition(" ")
    if scheme != "SharedKey" or ":" not in credential:
        return "The Authorization header is not a SharedKey header.", None
    name, _colon, sent = credential.partition(":")
    if name != account:
        return f"The account name {name!r} in the Authorization header does not match this account.", None
    text = string_to_sign(method, raw_path, raw_query, headers, account)
    if not hmac.compare_digest(signature(account_key, text), sent.strip()):
        return ("The MAC signature found in the HTTP request is not the same as any computed signature. "
                "Server used following string to sign: " + repr(text)), text
    return None
