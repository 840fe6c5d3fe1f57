"""Alibaba Cloud error responses → the server's typed errors, with messages a user can act on.

Error bodies (POP gateway, ROA and RPC alike) look like
``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` (sometimes lower-case keys, sometimes XML
``<Error>``); ``x-acs-retry-after`` (milliseconds) marks a throttled call. Every message carries the
Code and the RequestId and never a credential: the signature diagnostics of ``SignatureDoesNotMatch``
("server string to sign is: ...") are cut, and any value in ``redact`` is masked.
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
from cloudjobs_mcp.server.providers.pai.endpoints import Product

PRODUCT_LABELS = {
    "dlc": "PAI-DLC",
    "aiworkspace": "PAI AIWorkspace",
    "ecs": "ECS",
    "paistudio": "PAI Studio",
    "sts": "STS",
}

_AUTH_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "SignatureNonceUsed",
    "MissingSecurityToken",
    "AuthenticationFail",
    "InvalidAuthorization",
    "UnsupportedSignatureVersion",
)
_PERMISSION_PREFIXES = (
    "Forbidden",
    "NoPermission",
    "AccessDenied",
    "NotAuthorized",
    "OperationForbidden",
    "Unauthorized",
    "UserNotAuthorized",
)
_RETRYABLE_CODES = ("ServiceUnavailable", "InternalError", "OperationTimeout", "Timeout", "SystemBusy")
_API_MISMATCH_PREFIXES = ("InvalidAction", "InvalidApi", "InvalidVersion", "UnsupportedHTTPMethod")
# "No such resource" codes that do not always come with HTTP 404 (PaiStudio answers e.g.
# ``TRAINING_JOB_INSTANCE_NOT_FOUND`` for an instance that has no logs yet).
_NOT_FOUND_SUFFIXES = ("NotFound", "NOT_FOUND", "NotExist", "NOT_EXIST")
_STRING_TO_SIGN = re.compile(r"[\s:,;.]*(server\s+)?string\s*to\s*sign\s*(is)?\s*:.*", re.IGNORECASE | re.DOTALL)
_XML_FIELD = re.compile(r"<(RequestId|Code|Message|HostId)>(.*?)</\1>", re.DOTALL)


def _clean(message: str, redact: Iterable[str]) -> str:
    return error_text(_STRING_TO_SIGN.sub("", message).strip(), redact)


def _fields(response: httpx.Response) -> dict[str, Any]:
    text = response.text
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = None
    if isinstance(body, dict):
        nested = body.get("Error")
        err: dict[str, Any] = nested if isinstance(nested, dict) else body
        return {
            "RequestId": str(
                body.get("RequestId")
                or body.get("RequestID")  # DLC sanity-check APIs spell it with a capital ID
                or body.get("requestId")
                or err.get("RequestId")
                or ""
            ),
            "Code": str(err.get("Code") or err.get("code") or ""),
            "Message": str(err.get("Message") or err.get("message") or ""),
            "AccessDeniedDetail": body.get("AccessDeniedDetail") or body.get("accessDeniedDetail"),
        }
    xml = dict(_XML_FIELD.findall(text))
    if xml:
        return {"RequestId": xml.get("RequestId", ""), "Code": xml.get("Code", ""), "Message": xml.get("Message", "")}
    snippet = re.sub(r"<[^>]+>", " ", text)
    return {"RequestId": "", "Code": "", "Message": " ".join(snippet.split())[:200]}


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("x-acs-retry-after")
    if raw:
        try:
            ms = float(raw)
        except ValueError:
            return None
        return ms / 1000.0 if ms > 0 else None
    return retry_after_seconds(response)


def ram_action(product: Product, action: str, detail: Any = None) -> str:
    """The RAM action to grant: the gateway's ``AccessDeniedDetail.AuthAction`` when present."""
    if isinstance(detail, dict) and detail.get("AuthAction"):
        return str(detail["AuthAction"])
    return f"{product.ram_prefix}:{action}"


def parse_error(
    response: httpx.Response, *, product: Product, action: str, redact: Iterable[str] = ()
) -> ProviderError:
    """The typed error for one non-2xx response of ``action`` on ``product``."""
    redact = [r for r in redact if r]
    f = _fields(response)
    status = response.status_code
    code: str = f["Code"]
    request_id: str = f["RequestId"] or response.headers.get("x-acs-request-id", "")
    # The platform's messages usually end with "." and every hint below adds its own.
    message = (_clean(f["Message"], redact) or response.reason_phrase or f"HTTP {status}").rstrip(". ")
    label = PRODUCT_LABELS.get(product.key, product.key)
    ident = f"{code or f'HTTP {status}'}" + (f", RequestId {request_id}" if request_id else "")
    head = f"{label} {action} failed ({ident}): {message}"
    retry_after = _retry_after(response)
    kw: dict[str, Any] = {"code": code, "request_id": request_id, "status": status, "retry_after": retry_after}

    if code.startswith("Throttling") or status == 429 or (retry_after is not None and status != 404):
        return Throttled(f"{head}. The platform is rate-limiting calls; retry later.", retryable=True, **kw)
    if code.startswith(_AUTH_PREFIXES) or status == 401:
        if code.startswith("InvalidTimeStamp"):
            hint = (
                "The request time differs from Alibaba Cloud's by more than 15 minutes: "
                "fix this machine's clock (enable NTP)."
            )
        elif code.startswith(("InvalidSecurityToken", "MissingSecurityToken")):
            hint = (
                "The STS security token is invalid or expired: refresh ALIBABA_CLOUD_SECURITY_TOKEN "
                "(or the profile's sts_token), or use an AccessKey or OIDC role instead."
            )
        elif code.startswith("AuthenticationFail"):
            hint = (
                "STS refused the OIDC token: check ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN "
                "and that ALIBABA_CLOUD_OIDC_TOKEN_FILE holds a current token."
            )
        else:
            hint = (
                "Check the AccessKey the server runs with (ALIBABA_CLOUD_ACCESS_KEY_ID / "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or the ~/.aliyun/config.json profile): it must exist, be "
                "enabled, and the secret must belong to that key id."
            )
        return AuthenticationError(f"{head}. {hint}", retryable=False, **kw)
    if code.startswith(_PERMISSION_PREFIXES) or status == 403:
        if code.startswith("OperationForbidden"):
            hint = (
                "PAI refused the operation; this usually means a missing or wrong workspace: set "
                "CLOUDJOBS_PAI_WORKSPACE_ID to a workspace you can use, or unset it to let the server pick one."
            )
        else:
            needed = ram_action(product, action, f.get("AccessDeniedDetail"))
            hint = (
                f"The credentials are valid but not allowed to call {action}: ask an account administrator "
                f"to grant the RAM action {needed} (e.g. attach a policy allowing it) to this user or role."
            )
        return PermissionDenied(f"{head}. {hint}", retryable=False, **kw)
    if code.startswith(_API_MISMATCH_PREFIXES):
        return ProviderError(
            f"{head}. The API rejected the call itself (action/version/method); this is a cloudjobs-mcp "
            "bug or an unsupported region/endpoint override.",
            retryable=False,
            **kw,
        )
    if status < 500 and code.endswith(_NOT_FOUND_SUFFIXES):
        return RemoteNotFound(head + ".", retryable=False, **kw)
    if status >= 500 or code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_CODES):
        return ProviderError(f"{head}. Temporary platform error.", retryable=True, **kw)
    if status == 404:
        return RemoteNotFound(head + ".", retryable=False, **kw)
    return ProviderError(head + ".", retryable=False, **kw)
