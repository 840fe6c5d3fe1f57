"""Huawei Cloud request signing (``SDK-HMAC-SHA256``), byte for byte as ``huaweicloudsdkcore`` 3.1.219 signs.

::

    CanonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n PayloadHash
    StringToSign     = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex(sha256(CanonicalRequest))
    Signature        = hex(hmac_sha256(SK, StringToSign))
    Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>

The SDK's quirks, all kept (the reference's §1):

* the canonical URI is the path *decoded*, split on ``/``, each segment re-encoded (RFC 3986, ``~`` kept)
  and a ``/`` appended when it does not end in one; the wire path gets no slash;
* the query is a list of ``(key, value)`` pairs sorted as raw tuples (by key, then by the value *as
  typed*: ints numerically), values rendered ``true``/``false`` for booleans and ``str()`` otherwise; a list
  value is sorted and repeated under its key (``str()`` of each item); ``None`` values are dropped. The
  wire query is exactly the canonical query (never let httpx encode ``params=``);
* every header present at signing time whose name has no ``_`` is signed (lower-cased, sorted), values
  only trimmed; ``X-Project-Id`` / ``X-Domain-Id`` / ``X-Security-Token`` are added *before* signing;
* a ``Content-Type`` that is neither JSON nor BSON adds ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD``
  (signed and sent); an empty body still hashes as the empty string.

Client side: :func:`sign_request`. Server side (the sandbox): :func:`parse_authorization`,
:func:`parse_query` and :func:`verify`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from cloudjobs_mcp.server.providers.authheader import SignatureError, authorization_fields

ALGORITHM = "SDK-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
HEADER_DATE = "X-Sdk-Date"
HEADER_CONTENT_SHA = "X-Sdk-Content-Sha256"

QueryValue = str | int | float | bool | list[Any] | None
QueryPairs = Sequence[tuple[str, QueryValue]]


def encode(value: str) -> str:
    """RFC 3986: only ``A-Za-z0-9-_.~`` stay literal; UTF-8 bytes as upper-case ``%XX``."""
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    uri = "/".join(encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _render(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _sorted_pairs(pairs: Iterable[tuple[str, QueryValue]]) -> list[tuple[str, Any]]:
    kept = [(k, v) for k, v in pairs if v is not None]
    try:
        return sorted(kept)
    except TypeError:  # mixed value types under one key: the SDK would fail; order by text instead
        return sorted(kept, key=lambda kv: (kv[0], str(kv[1])))


def canonical_query(pairs: Iterable[tuple[str, QueryValue]]) -> str:
    """The sorted, encoded query (also the wire query)."""
    parts: list[str] = []
    for key, value in _sorted_pairs(pairs):
        k = encode(key)
        if isinstance(value, list):
            try:
                items = sorted(value)
            except TypeError:
                items = sorted(value, key=str)
            parts.extend(f"{k}={encode(str(item))}" for item in items)
        else:
            parts.append(f"{k}={encode(_render(value))}")
    return "&".join(parts)


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    if not body:
        return EMPTY_SHA256
    declared = _get(headers, HEADER_CONTENT_SHA)
    return declared if declared else hashlib.sha256(body).hexdigest()


def _get(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for key, value in headers.items():
        if key.lower() == low:
            return value
    return None


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted(k.lower() for k in headers if "_" not in k)


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    body_hash: str,
) -> str:
    """``query`` is the already canonical query string; ``signed`` lower-case names, sorted."""
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    missing = [name for name in signed if name not in lowered]
    if missing:
        raise SignatureError(f"signed header {missing[0]!r} is missing from the request")
    block = "\n".join(f"{name}:{lowered[name]}" for name in signed) + "\n"
    return "\n".join([method.upper(), canonical_uri(path), query, block, ";".join(signed), body_hash])


def string_to_sign(canonical: str, date: str) -> str:
    return f"{ALGORITHM}\n{date}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sdk_date(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(DATE_FORMAT)


@dataclass(frozen=True)
class SignedRequest:
    """What one attempt sends: the path with its query, every header (Authorization included)."""

    path_and_query: str
    headers: dict[str, str]
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    authorization: str


def sign_request(
    *,
    method: str,
    host: str,
    path: str,
    query: QueryPairs = (),
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    access_key: str,
    secret_key: str,
    project_id: str | None = None,
    domain_id: str | None = None,
    security_token: str | None = None,
    date: str | None = None,
) -> SignedRequest:
    """Sign one request as the SDK does. ``path`` is the wire path (percent-encoded segments), ``host``
    the ``host[:port]`` that is sent (and signed). ``headers`` may carry ``X-Sdk-Date`` (then reused)."""
    if not access_key or not secret_key:
        raise ValueError("an access key and a secret key are required to sign")
    out: dict[str, str] = dict(headers or {})
    if project_id:
        out["X-Project-Id"] = project_id
    if domain_id:
        out["X-Domain-Id"] = domain_id
    if security_token:
        out["X-Security-Token"] = security_token
    content_type = _get(out, "Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        out[HEADER_CONTENT_SHA] = UNSIGNED_PAYLOAD
    stamp = _get(out, HEADER_DATE)
    if stamp is None:
        stamp = date or sdk_date()
        out[HEADER_DATE] = stamp
    if _get(out, "Host") is None:
        out["Host"] = host
    out = {k: str(v).strip() for k, v in out.items()}
    names = signed_header_names(out)
    query_string = canonical_query(query)
    canonical = canonical_request(method, path, query_string, out, names, payload_hash(body, out))
    to_sign = string_to_sign(canonical, stamp)
    auth = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={signature(secret_key, to_sign)}"
    )
    out["Authorization"] = auth
    return SignedRequest(
        path_and_query=path + (f"?{query_string}" if query_string else ""),
        headers=out,
        canonical_request=canonical,
        string_to_sign=to_sign,
        signed_headers=";".join(names),
        authorization=auth,
    )


# ------------------------------------------------------------------------------------- server side


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """``(access_key, signed_headers, signature)`` from an ``Authorization`` header."""
    fields = authorization_fields(value, ALGORITHM, ("Access", "SignedHeaders", "Signature"))
    return fields["Access"], [h for h in fields["SignedHeaders"].split(";") if h], fields["Signature"]


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Raw query string → decoded ``(key, value)`` pairs in order (repeated keys kept)."""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key.replace("+", "%20")), unquote(value.replace("+", "%20"))))
    return pairs


def verify(secret_key: str, method: str, path: str, raw_query: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Does the request's ``Authorization`` match ``secret_key``? Only the headers it lists are used.

    A client puts its canonical query on the wire, so the query is taken in the order received and,
    failing that, re-sorted as text (a client that sorted typed values, e.g. ``limit=9`` before
    ``limit=10``, still verifies)."""
    try:
        _, signed, claimed = parse_authorization(_get(headers, "Authorization") or "")
        date = _get(headers, HEADER_DATE) or ""
        body_hash = payload_hash(body, headers)
        pairs = parse_query(raw_query)
        in_order = "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
        candidates = dict.fromkeys([in_order, canonical_query(pairs)])
        for query in candidates:
            canonical = canonical_request(method, path, query, headers, sorted(signed), body_hash)
            if hmac.compare_digest(signature(secret_key, string_to_sign(canonical, date)), claimed):
                return True
    except SignatureError:
        return False
    return False


def parse_date(value: str) -> datetime:
    """``X-Sdk-Date`` → aware UTC datetime (ValueError when malformed)."""
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
