"""Verifying ``ACS3-HMAC-SHA256`` requests as the Alibaba Cloud gateway does.

Checks, in order, each answered with the cloud's code:

1. an ``Authorization`` header that parses, signing at least ``host``, ``x-acs-action``,
   ``x-acs-version``, ``x-acs-date``, ``x-acs-signature-nonce`` and ``x-acs-content-sha256``
   (400 ``IncompleteSignature``);
2. a known AccessKey id (404 ``InvalidAccessKeyId.NotFound``); for an STS credential, its security
   token in the signed ``x-acs-security-token`` header (400 ``MissingSecurityToken`` /
   ``InvalidSecurityToken.Mismatch``);
3. ``x-acs-date`` well formed and within ±15 minutes (400 ``InvalidTimeStamp.Format`` /
   ``InvalidTimeStamp.Expired``);
4. the signature, recomputed from the headers named in ``SignedHeaders`` only, over the body's hash
   (400 ``SignatureDoesNotMatch``, whose message carries the server's string to sign like the real one);
5. a nonce not seen in the date window (400 ``SignatureNonceUsed``); nonces are remembered until the
   request's date leaves the window, at most ``max_nonces`` of them.

Queries are decoded with ``+`` and ``%20`` both meaning a space (the official SDK's URLs use ``+``).
"""

from __future__ import annotations

import heapq
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from cloudjobs_mcp.server.providers.pai import signing
from cloudjobs_mcp.server.sandbox.errors import ApiError
from cloudjobs_mcp.server.sandbox.settings import AccessKey

REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
_INCOMPLETE = "The request signature does not conform to Aliyun standards."


def _incomplete(detail: str) -> ApiError:
    return ApiError(400, "IncompleteSignature", f"{_INCOMPLETE} {detail}")


class NonceCache:
    """Nonces seen recently, each kept until its request's date is stale; bounded in size."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: str, expires: float, now: float) -> bool:
        """True when ``key`` is still remembered; otherwise remember it until ``expires``."""
        while self._heap and self._heap[0][0] <= now:
            when, old = heapq.heappop(self._heap)
            if self._expiry.get(old) == when:
                del self._expiry[old]
        if key in self._expiry:
            return True
        while len(self._expiry) >= self.max_entries and self._heap:
            when, old = heapq.heappop(self._heap)
            if self._expiry.get(old) == when:
                del self._expiry[old]
        self._expiry[key] = expires
        heapq.heappush(self._heap, (expires, key))
        return False


class Authenticator:
    """Checks one request against the configured credentials; raises :class:`ApiError` when it fails."""

    def __init__(
        self,
        keys: Iterable[AccessKey],
        *,
        window_seconds: float = 900.0,
        max_nonces: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys: dict[str, AccessKey] = {}
        for key in keys:
            self.add(key)
        self.window = window_seconds
        self.nonces = NonceCache(max_nonces)
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, key: AccessKey) -> None:
        self._keys[key.access_key_id] = key

    def remove(self, access_key_id: str) -> None:
        self._keys.pop(access_key_id, None)

    @property
    def keys(self) -> list[AccessKey]:
        return list(self._keys.values())

    def check(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes) -> AccessKey:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get("authorization", "")
        if not header.strip():
            raise _incomplete("The Authorization header is missing.")
        try:
            ak_id, signed, claimed = signing.parse_authorization(header)
        except signing.SignatureError as exc:
            raise _incomplete(str(exc).capitalize() + ".") from None
        signed = [h.lower() for h in signed]
        for name in REQUIRED_SIGNED:
            if name not in signed:
                raise _incomplete(f"The header {name} must be signed (listed in SignedHeaders).")
        for name in signed:
            if name not in lowered:
                raise _incomplete(f"The signed header {name} is missing from the request.")

        key = self._keys.get(ak_id)
        if key is None:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if key.security_token:
            token = lowered.get("x-acs-security-token")
            if not token:
                raise ApiError(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
            if "x-acs-security-token" not in signed:
                raise _incomplete("The header x-acs-security-token must be signed (listed in SignedHeaders).")
            if not hmac.compare_digest(token, key.security_token):
                raise ApiError(
                    400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken mismatch with the AccessKey."
                )

        raw_date = lowered.get("x-acs-date", "").strip()
        try:
            date = datetime.strptime(raw_date, signing.DATE_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ApiError(
                400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
            ) from None
        now = self._clock()
        if abs(now - date) > self.window:
            raise ApiError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

        content_hash = lowered.get("x-acs-content-sha256", "")
        canonical = signing.canonical_request(
            method, raw_path, signing.parse_query(raw_query), lowered, signed, content_hash
        )
        expected = signing.signature(key.access_key_secret, canonical)
        if content_hash != signing.hash_body(body) or not hmac.compare_digest(expected, claimed):
            raise ApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + signing.string_to_sign(canonical),
            )

        nonce = lowered.get("x-acs-signature-nonce", "")
        with self._lock:
            if self.nonces.seen(f"{ak_id}\n{nonce}", date + self.window, now):
                raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        return key
