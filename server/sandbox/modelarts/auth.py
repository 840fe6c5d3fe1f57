"""The ModelArts face's gateway: SDK-HMAC-SHA256 checks as Huawei's API gateway answers them.

Every call must carry ``Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`` over at
least ``host`` and ``x-sdk-date``; the date must be within 15 minutes of the sandbox's clock; a temporary
credential's ``X-Security-Token`` must be sent and signed. Failures are ``401 APIG.0301`` ("Incorrect IAM
authentication information: …"). Like the real gateway, **five failures in a row lock an access key for five
minutes** (a good client never retries an authentication failure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cloudjobs_mcp.server.providers.modelarts import signing
from cloudjobs_mcp.server.sandbox.errors import ApiError
from cloudjobs_mcp.server.sandbox.settings import AccessKey

AUTH_CODE = "APIG.0301"
LOCK_AFTER = 5
LOCK_SECONDS = 300.0


def auth_error(detail: str) -> ApiError:
    return ApiError(401, AUTH_CODE, f"Incorrect IAM authentication information: {detail}")


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class Gateway:
    def __init__(
        self, keys: Sequence[AccessKey], *, window_seconds: float = 900.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.keys: list[AccessKey] = list(keys)
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def add(self, key: AccessKey) -> None:
        self.keys.append(key)

    def _key(self, access_key: str) -> AccessKey | None:
        return next((k for k in self.keys if k.access_key_id == access_key), None)

    def _fail(self, access_key: str, detail: str) -> ApiError:
        with self._lock:
            record = self._failures.setdefault(access_key, _Failures())
            record.count += 1
            if record.count >= LOCK_AFTER:
                record.locked_until = self.clock() + LOCK_SECONDS
        return auth_error(detail)

    def check(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes) -> AccessKey:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get("authorization", "")
        if not header:
            raise auth_error("Authorization not found")
        try:
            access, signed, _ = signing.parse_authorization(header)
        except signing.SignatureError as exc:
            raise auth_error(f"verify aksk signature fail ({exc})") from None
        with self._lock:
            record = self._failures.get(access)
            if record is not None and record.locked_until > self.clock():
                raise auth_error(
                    f"the access key is locked for {LOCK_SECONDS / 60:g} minutes after {LOCK_AFTER} failed "
                    "authentications in a row"
                )
        key = self._key(access)
        if key is None:
            raise self._fail(access, "verify aksk signature fail (the access key does not exist)")
        if "host" not in signed or "x-sdk-date" not in signed:
            raise self._fail(access, "verify aksk signature fail (host and x-sdk-date must be signed)")
        try:
            when = signing.parse_date(lowered.get("x-sdk-date", ""))
        except ValueError:
            raise self._fail(access, "verify aksk signature fail (X-Sdk-Date is not yyyyMMddTHHmmssZ)") from None
        if abs(when.timestamp() - self.clock()) > self.window:
            raise self._fail(
                access,
                "verify aksk signature fail (X-Sdk-Date differs from the server's clock by more than 15 minutes)",
            )
        if key.security_token is not None and (
            lowered.get("x-security-token") != key.security_token or "x-security-token" not in signed
        ):
            raise self._fail(
                access, "verify aksk signature fail (the temporary access key's security token is missing or wrong)"
            )
        if not signing.verify(key.access_key_secret, method, raw_path, raw_query, lowered, body):
            raise self._fail(access, "verify aksk signature fail")
        with self._lock:
            self._failures.pop(access, None)
        return key
