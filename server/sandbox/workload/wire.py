"""The platform's wire conventions, as the sandbox answers them: errors, times, durations, quantities."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class PrimusError(Exception):
    """An error answer: ``{"errorCode": code, "errorMessage": message}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_request(detail: str) -> PrimusError:
    return PrimusError(400, "Primus.00002", f"Bad request. {detail}")


def webhook_denied(problems: list[str]) -> PrimusError:
    return bad_request(f'admission webhook "vworkload.kb.io" denied the request: Bad request. [{", ".join(problems)}]')


def workload_not_found(workload_id: str) -> PrimusError:
    return PrimusError(404, "Primus.01001", f"Workload {workload_id} not found.")


def cr_not_found(workload_id: str) -> PrimusError:
    return PrimusError(404, "NotFound", f'workloads.amd.com "{workload_id}" not found')


def stamp(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S") if t else ""


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole seconds: ``0s``, ``45s``, ``2m0s``, ``1h2m3s``."""
    s = int(max(seconds, 0))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status, media_type=JSON_TYPE)


def decode_entry_point(raw: str) -> str:
    """The webhook's rule: a value that is valid base64 is taken as encoded, anything else as the command."""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return raw


def quantity(raw: Any) -> float:
    from cloudjobs_mcp.server.providers.workload.mapping import quantity

    return quantity(raw)


def parse_time(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
