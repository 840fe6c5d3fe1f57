"""Errors the sandbox answers with, in the cloud's shape.

Every error body is the POP gateway's ``{"RequestId", "HostId", "Code", "Message", "Recommend"}``
(reference §5.4), JSON, with the request id also in the ``x-acs-request-id`` header; throttling adds
``x-acs-retry-after`` (milliseconds). Handlers raise :class:`ApiError`; the app turns it into the
response.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json;charset=utf-8"

# The product code the troubleshooting link names (as the real Recommend URLs do).
RECOMMEND_PRODUCT = {"dlc": "pai-dlc", "aiworkspace": "AIWorkSpace", "ecs": "Ecs", "paistudio": "PaiStudio"}


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


class ApiError(Exception):
    """An error response: HTTP ``status``, ``code`` and ``message`` as the cloud words them."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, headers=headers, media_type=JSON_TYPE)


def error_body(code: str, message: str, *, request_id: str, host_id: str, product: str) -> dict[str, Any]:
    recommend_product = RECOMMEND_PRODUCT.get(product, product)
    return {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product={recommend_product}&requestId={request_id}",
    }


# -- the errors several handlers share ---------------------------------------------------------------


def missing(name: str) -> ApiError:
    return ApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def invalid(name: str, detail: str) -> ApiError:
    return ApiError(400, "InvalidParameter", f'The specified parameter "{name}" is not valid: {detail}')


def not_found_action() -> ApiError:
    return ApiError(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
