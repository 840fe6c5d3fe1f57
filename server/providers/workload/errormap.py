"""Primus-SaFE error answers → the server's typed errors, with messages a user can act on.

Every error body is ``{"errorCode": "<code>", "errorMessage": "<text>"}`` (not the seed README's
``{"code", "message"}``). Codes are ``Primus.000NN`` (``common/pkg/errors/error_code.go``), except for
answers that come straight from the Kubernetes API, whose code is the plain reason (``NotFound``,
``AlreadyExists``). What is retried: 5xx and ``Primus.00010`` (resource being processed), except the 503
``Primus.00008`` (no capacity: an answer, not an outage) and the 500 "can only be edited when it is
running" (retrying cannot change it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import httpx

from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    CapacityUnavailable,
    PermissionDenied,
    ProviderError,
    Throttled,
)
from cloudjobs_mcp.server.http import RemoteNotFound
from cloudjobs_mcp.server.providers.common import error_text

LABEL = "Workload platform"
CAPACITY = "Primus.00008"
NOT_FOUND_CODES = ("Primus.01001", "Primus.02001", "Primus.00005", "NotFound")
# What each code means, in words a user can act on (the platform's own message follows it).
MEANINGS = {
    "Primus.00001": "internal error",
    "Primus.00002": "bad request",
    "Primus.00003": "not allowed for this user",
    "Primus.00004": "already exists",
    "Primus.00005": "not found",
    "Primus.00006": "request too large (over 2 MiB)",
    "Primus.00007": "feature not enabled on this platform",
    "Primus.00008": "not enough resources",
    "Primus.00009": "not authenticated",
    "Primus.00010": "resource is being processed",
    "Primus.00011": "user not registered",
    "Primus.00012": "conflict",
    "Primus.01001": "workload not found",
    "Primus.02001": "workspace not found",
    "NotFound": "gone from the cluster",
    "AlreadyExists": "already exists",
}
_HINTS = {
    "Primus.00003": " Ask a workspace manager for access, or use a workspace and priority you may use.",
    "Primus.00008": (
        " This is a capacity answer, not an outage: use fewer workers or a smaller spec (list_ecs_specs "
        "shows what a node can hold), or try again later."
    ),
    "Primus.00009": " Check CLOUDJOBS_WORKLOAD_API_KEY, or CLOUDJOBS_WORKLOAD_USER and CLOUDJOBS_WORKLOAD_PASSWORD.",
    "Primus.00011": " Check CLOUDJOBS_WORKLOAD_USER.",
    "Primus.02001": " Check CLOUDJOBS_WORKLOAD_WORKSPACE (list_ecs_specs shows the workspaces you can use).",
}
_NOT_EDITABLE = "can only be edited"


def fields(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, errorMessage) of an error answer; ("", short text) when the body is not the platform's."""
    try:
        body = json.loads(response.text) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("errorCode" in body or "errorMessage" in body):
        return str(body.get("errorCode") or ""), str(body.get("errorMessage") or "")
    text = " ".join(response.text.split())[:200]
    return "", text


def parse_error(response: httpx.Response, *, what: str, redact: Iterable[str] = ()) -> ProviderError:
    """The typed error for a non-2xx answer to ``what`` (e.g. "GET workload w-1")."""
    status = response.status_code
    code, message = fields(response)
    message = error_text(message, redact)
    meaning = MEANINGS.get(code, "")
    head = f"{LABEL}: {what} failed with HTTP {status}"
    head += f" {code}" + (f" ({meaning})" if meaning else "") if code else ""
    text = f"{head}: {message}" if message else head
    text = text.rstrip(".") + "." + _HINTS.get(code, "")
    code = code or f"HTTP{status}"
    if code == CAPACITY or (status == 503 and "insufficient resource" in message.lower()):
        return CapacityUnavailable(text, code=code, status=status)
    if status == 401 or code in ("Primus.00009", "Primus.00011"):
        return AuthenticationError(text, code=code, status=status)
    if status == 403 or code == "Primus.00003":
        return PermissionDenied(text, code=code, status=status)
    if status == 404 or code in NOT_FOUND_CODES:
        return RemoteNotFound(text, code=code, status=status)
    if status == 429:
        after = response.headers.get("retry-after")
        wait = float(after) if after and after.isdigit() else None
        return Throttled(text, code=code, status=status, retryable=True, retry_after=wait)
    retryable = (status >= 500 and _NOT_EDITABLE not in message) or code == "Primus.00010"
    return ProviderError(text, code=code, status=status, retryable=retryable)
