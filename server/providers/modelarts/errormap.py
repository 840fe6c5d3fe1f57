"""Huawei Cloud error responses → the server's typed errors (the reference's §9).

Bodies, in the order the SDK's ``DefaultExceptionHandler`` reads them: ``{"error_code", "error_msg"}``
(training adds ``error_solution``, the gateway ``request_id``), ``{"errorCode", "errorMsg"}``,
``{"code", "message"}``, else a nested object holding one of those; non-JSON → the text. The request id
is the ``X-Request-Id`` header (or the body's ``request_id``).

* 401 / ``APIG.0301`` / ``ModelArts.0201``-``0212``: authentication; **never retried** — five failures in
  a row lock the AK for five minutes.
* 429 / ``APIG.0308`` / ``ModelArts.2799``, ``4206``, ``6101``: throttled, retried 2-5 s later (jittered).
* 5xx, ``ModelArts.0010``, 409 ``ModelArts.2878`` (the job's status is changing): retried.
* 400 ``ModelArts.2775`` and 404: not found (ModelArts answers a missing training job with **400**).
* 403 ``ModelArts.2785``: ModelArts has not been authorised to act for the account (a one-time step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import httpx

from cloudjobs_mcp.server.errors import AuthenticationError, PermissionDenied, ProviderError, Throttled
from cloudjobs_mcp.server.http import RemoteNotFound
from cloudjobs_mcp.server.providers.common import error_text, retry_after_seconds

NOT_FOUND_CODES = frozenset({"ModelArts.2775", "ModelArts.2890", "ModelArts.50015001"})
DUPLICATE_NAME = "ModelArts.2751"
NOT_STOPPABLE = "ModelArts.2796"
STATUS_CHANGING = "ModelArts.2878"
AUTHORIZATION_MISSING = "ModelArts.2785"
LOG_NOT_READY = frozenset({"ModelArts.2776", "ModelArts.2777"})
LOG_GONE = frozenset({"ModelArts.2818", "ModelArts.2819", "ModelArts.2820"})
_THROTTLE_CODES = frozenset({"APIG.0308", "APIGW.0308", "ModelArts.2799", "ModelArts.4206", "ModelArts.6101"})
_RETRY_CODES = frozenset({"ModelArts.0010", STATUS_CHANGING})
_AUTH_CODES = frozenset({"APIG.0301", "APIGW.0301", "APIG.0303", "ModelArts.2784", "ModelArts.2786"})
_PERMISSION_CODES = frozenset({"ModelArts.0108", "ModelArts.0112", "CBC.0151", "APIG.0302", "APIG.0305"})
THROTTLE_WINDOW = (2.0, 5.0)  # seconds, the gateway's advice for APIG.0308
_AUTH_RANGE = re.compile(r"^ModelArts\.02(0[1-9]|1[0-2])$")


def _pick(body: Any, depth: int = 0) -> tuple[str, str]:
    if not isinstance(body, dict) or depth > 3:
        return "", ""
    for code_key, msg_key in (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message")):
        if body.get(code_key) or body.get(msg_key):
            return str(body.get(code_key) or ""), str(body.get(msg_key) or "")
    for value in body.values():
        code, message = _pick(value, depth + 1)
        if code or message:
            return code, message
    return "", ""


def fields(response: httpx.Response) -> tuple[str, str, str, str]:
    """``(code, message, solution, request_id)`` of an error response."""
    text = response.text
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = None
    request_id = response.headers.get("x-request-id", "")
    if isinstance(body, dict):
        code, message = _pick(body)
        request_id = request_id or str(body.get("request_id") or "")
        return code, message, str(body.get("error_solution") or ""), request_id
    return "", " ".join(re.sub(r"<[^>]+>", " ", text).split())[:200], "", request_id


def parse_error(response: httpx.Response, *, service: str, action: str, redact: Iterable[str] = ()) -> ProviderError:
    """The typed error for one non-2xx response of ``action`` (``service``: ModelArts, IAM, BSS)."""
    code, raw_message, solution, request_id = fields(response)
    status = response.status_code
    message = (error_text(raw_message, list(redact)) or response.reason_phrase or f"HTTP {status}").rstrip(". ")
    ident = (code or f"HTTP {status}") + (f", request id {request_id}" if request_id else "")
    head = f"{service} {action} failed ({ident}): {message}"
    if solution:
        head += f" ({error_text(solution, list(redact)).rstrip('. ')})"
    kw: dict[str, Any] = {"code": code, "request_id": request_id, "status": status}

    if status == 401 or code in _AUTH_CODES or _AUTH_RANGE.match(code):
        return AuthenticationError(
            f"{head}. Huawei Cloud rejected the credentials: check HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK (or the "
            "profile file), that a temporary AK/SK comes with its HUAWEICLOUD_SDK_SECURITY_TOKEN, and that this "
            "machine's clock is within 15 minutes of the real time. Not retried: five failed signatures in a row "
            "lock the access key for five minutes.",
            retryable=False,
            **kw,
        )
    if status == 429 or code in _THROTTLE_CODES:
        return Throttled(
            f"{head}. The platform is rate-limiting calls; retry later.",
            retryable=True,
            retry_after=retry_after_seconds(response),
            retry_window=THROTTLE_WINDOW,
            **kw,
        )
    if code == AUTHORIZATION_MISSING:
        return PermissionDenied(
            f"{head}. ModelArts has not been authorised to use other services for this account yet. This is a "
            "one-time step: in the ModelArts console open Settings (Global Configuration), choose Add "
            "Authorization and grant the agency (an account administrator can do it for IAM users); then retry.",
            retryable=False,
            **kw,
        )
    if status == 403 or code in _PERMISSION_CODES:
        hint = (
            "The account may not read prices (BSS); ask an administrator for BSS read permission, or put the "
            "prices in CLOUDJOBS_PRICE_TABLE."
            if code.startswith("CBC.")
            else "The credentials are valid but lack a permission: ask an administrator to grant the ModelArts "
            "policy (e.g. ModelArts FullAccess or a custom policy with this action) to this IAM user."
        )
        return PermissionDenied(f"{head}. {hint}", retryable=False, **kw)
    if code in NOT_FOUND_CODES or (status == 404 and not code.startswith("APIG")):
        return RemoteNotFound(head + ".", retryable=False, **kw)
    if status >= 500 or code in _RETRY_CODES:
        return ProviderError(f"{head}. Temporary platform error.", retryable=True, **kw)
    return ProviderError(head + ".", retryable=False, **kw)
