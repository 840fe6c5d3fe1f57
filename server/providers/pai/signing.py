"""Alibaba Cloud V3 request signing (``ACS3-HMAC-SHA256``), for clients and for verifying servers.

The algorithm is the one in ``alibabacloud_tea_openapi`` 0.4.6 (``Utils.get_authorization``)::

    CanonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n BodyHash
    StringToSign     = "ACS3-HMAC-SHA256" \\n hex(sha256(CanonicalRequest))
    Signature        = hex(hmac_sha256(AccessKeySecret, StringToSign))
    Authorization: ACS3-HMAC-SHA256 Credential=<AK id>,SignedHeaders=<h1;h2;...>,Signature=<hex>

* CanonicalURI is the path exactly as sent (already percent-encoded; path parameters go through
  :func:`percent_encode`), ``/`` when empty.
* CanonicalQuery: keys sorted by code point, ``key=value`` joined with ``&``, both encoded with
  :func:`percent_encode` (RFC 3986: only ``A-Za-z0-9-_.~`` stay literal, space is ``%20``); ``None``
  values are dropped, ``""`` gives ``key=``. A client must put the *same* string in its URL
  (:func:`build_url`), which is why we never let httpx encode ``params=``.
* CanonicalHeaders: for each signed header (lower-case, sorted) ``name:value.strip()\\n``; so the
  canonical request has an empty line before the SignedHeaders line.
* The signer signs whatever headers it is given (:func:`authorization` signs all of them unless told
  otherwise), so both the minimal set (:data:`MINIMAL_SIGNED_HEADERS`) and the official SDK's full set
  (``accept``, ``user-agent``, ``x-acs-credentials-provider`` ...) reproduce their known answers.

Client side: :func:`sign_headers` returns the complete header set (date, nonce, content hash, host,
STS token, Authorization) for one attempt; call it again for every retry so date and nonce are fresh.

Server side (a sandbox emulating PAI): :func:`parse_authorization` splits the header,
:func:`parse_query` turns the raw query string back into a dict (``+`` and ``%20`` both mean space, so
requests from the official SDK, whose URL uses ``urlencode``, verify too), :func:`canonical_request`
and :func:`signature` recompute the signature, and :func:`verify` does all of it in one call using only
the headers listed in ``SignedHeaders`` (clients add unsigned headers such as ``accept-encoding``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote_plus

from cloudjobs_mcp.server.providers.authheader import SignatureError, authorization_fields

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Headers our client signs on every request (plus content-type with a body and the STS pair).
MINIMAL_SIGNED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding used for path segments, query keys and values (``quote(v, safe='~')``)."""
    return quote(value, safe="~")


def hash_body(body: bytes) -> str:
    """Hex SHA-256 of the exact body bytes (the ``x-acs-content-sha256`` value)."""
    return hashlib.sha256(body).hexdigest()


def canonical_query(query: Mapping[str, str | None]) -> str:
    """Sorted, RFC 3986-encoded ``k=v&...``; identical in the URL and in the canonical request."""
    pairs = [(k, v) for k, v in query.items() if v is not None]
    pairs.sort(key=lambda kv: kv[0])
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def canonical_headers(headers: Mapping[str, str], signed_headers: Iterable[str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in signed_headers:
        if name not in lowered:
            raise SignatureError(f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{lowered[name].strip()}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    body_hash: str,
) -> str:
    """The canonical request; ``signed_headers`` are lower-case names (sorted here)."""
    names = sorted(h.lower() for h in signed_headers)
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers(headers, names),
            ";".join(names),
            body_hash,
        ]
    )


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def signature(secret: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed with the raw AccessKey secret."""
    return hmac.new(secret.encode("utf-8"), string_to_sign(canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    access_key_id: str,
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    body_hash: str,
    signed_headers: Iterable[str] | None = None,
) -> str:
    """The ``Authorization`` value; signs every header in ``headers`` unless ``signed_headers`` is given."""
    names = sorted(h.lower() for h in (signed_headers if signed_headers is not None else headers.keys()))
    canonical = canonical_request(method, path, query, headers, names, body_hash)
    sig = signature(secret, canonical)
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={sig}"


def parse_authorization(header: str) -> tuple[str, list[str], str]:
    """``(access_key_id, signed_headers, signature)`` from an ``Authorization`` header value."""
    fields = authorization_fields(header, ALGORITHM, ("Credential", "SignedHeaders", "Signature"))
    return fields["Credential"], [h for h in fields["SignedHeaders"].split(";") if h], fields["Signature"]


def parse_query(raw_query: str) -> dict[str, str]:
    """Raw URL query string → dict of decoded values (the inverse of :func:`canonical_query`)."""
    result: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        result[unquote_plus(key)] = unquote_plus(value)
    return result


def verify(
    secret: str,
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Server side: does the request's ``Authorization`` match ``secret``? Checks the body hash too.

    ``path`` is the raw (still percent-encoded) path as received; ``headers`` may contain any extra,
    unsigned headers. Date freshness and nonce reuse are the caller's policy, not checked here.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        _, signed, claimed = parse_authorization(lowered.get("authorization", ""))
        content_hash = lowered.get("x-acs-content-sha256", "")
        if content_hash != hash_body(body):
            return False
        canonical = canonical_request(method, path, parse_query(raw_query), lowered, signed, content_hash)
    except SignatureError:
        return False
    return hmac.compare_digest(signature(secret, canonical), claimed)


def utc_timestamp(now: datetime | None = None) -> str:
    """``x-acs-date`` value: UTC, second precision, ``Z`` suffix."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(DATE_FORMAT)


def new_nonce() -> str:
    return secrets.token_hex(16)


def build_url(scheme: str, host: str, path: str, query: Mapping[str, str | None] | None = None) -> str:
    """The full URL with the query encoded exactly as :func:`canonical_query` does."""
    qs = canonical_query(query or {})
    return f"{scheme}://{host}{path or '/'}" + (f"?{qs}" if qs else "")


def sign_headers(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str | None],
    body: bytes,
    action: str,
    version: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None = None,
    content_type: str | None = None,
    date: str | None = None,
    nonce: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every header one attempt needs, ``Authorization`` included (minimal signed set, §5.1).

    ``extra_headers`` are sent but not signed (e.g. ``accept``). Pass ``date``/``nonce`` only in tests.
    """
    body_hash = hash_body(body)
    signed: dict[str, str] = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date or utc_timestamp(),
        "x-acs-signature-nonce": nonce or new_nonce(),
        "x-acs-content-sha256": body_hash,
    }
    if body:
        signed["content-type"] = content_type or JSON_CONTENT_TYPE
    if security_token:
        signed["x-acs-security-token"] = security_token
        signed["x-acs-accesskey-id"] = access_key_id
    auth = authorization(access_key_id, access_key_secret, method, path, query, signed, body_hash)
    return {**(extra_headers or {}), **signed, "authorization": auth}
