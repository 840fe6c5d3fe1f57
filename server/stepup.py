"""Over HTTP, a write tool called without ``jobs:write`` is refused with HTTP 403 before it runs.

The MCP authorization spec (2026-07-28, "Runtime Insufficient Scope Errors") asks a server to answer a
request whose token lacks a scope with ``403`` and ``WWW-Authenticate: Bearer error="insufficient_scope",
scope="…", resource_metadata="…"`` (RFC 6750 §3.1), so that an OAuth client can step up: ask its issuer
for the scope and send the call again. The SDK checks one scope for every request (``jobs:read``); a tool
that changes jobs needs ``jobs:write`` too, which only the JSON-RPC body says (the 2026-07-28 ``Mcp-Name``
header must equal it, and 2025 clients send no such header), so this ASGI layer reads the body of a caller
who has ``jobs:read`` and not ``jobs:write`` (a writer's requests pass untouched) and answers the ``tools/call``
of a write tool itself. The body is a JSON-RPC error naming the scope, which MCP clients show as the call's
error; the refusal is audited like every write attempt. The MCP middleware in access.py still refuses the
same calls on any path this layer does not see.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from mcp.server import MCPServer
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.types import INVALID_REQUEST, Tool
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudjobs_mcp.server.access import refusal, writes
from cloudjobs_mcp.server.audit import AuditTrail
from cloudjobs_mcp.server.identity import SCOPE_READ, SCOPE_WRITE, Caller, current_caller
from cloudjobs_mcp.server.toolserver import CloudJobsServer

CLIENT_INFO = "io.modelcontextprotocol/clientInfo"


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    """The ``tools/call`` requests of a JSON-RPC body (one message, or a 2025-03-26 batch)."""
    messages = message if isinstance(message, list) else [message]
    return [
        m
        for m in messages
        if isinstance(m, dict) and m.get("method") == "tools/call" and isinstance(m.get("params"), dict)
    ]


def _client_of(params: dict[str, Any]) -> str:
    """ "name version" of the client a 2026-07-28 request names in its ``_meta`` (2025 ones name none)."""
    meta = params.get("_meta")
    info = meta.get(CLIENT_INFO) if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        return ""
    return " ".join(str(info.get(k) or "") for k in ("name", "version")).strip()[:200]


class ScopeChallenge:
    """ASGI middleware in front of the MCP endpoint (inside the SDK's authentication)."""

    def __init__(self, app: ASGIApp, mcp: MCPServer, *, resource_metadata: str | None, trail: AuditTrail | None):
        self.app, self._mcp, self._trail = app, mcp, trail
        self._resource_metadata = resource_metadata
        self._writers: frozenset[str] | None = None

    async def write_tools(self) -> frozenset[str]:
        if self._writers is None:  # every tool, listed or not: a disabled toolset's need the scope too
            self._writers = frozenset(t.name for t in await self._tools() if writes(t))
        return self._writers

    async def _tools(self) -> list[Tool]:
        return self._mcp.all_tools() if isinstance(self._mcp, CloudJobsServer) else await self._mcp.list_tools()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = current_caller()
        # Without jobs:read the SDK answers 403 for that scope itself; with jobs:write nothing is refused here.
        if scope["type"] != "http" or scope["method"] != "POST" or caller.can_write or SCOPE_READ not in caller.scopes:
            await self.app(scope, receive, send)
            return
        body, replay = await _buffered(receive)
        if body is None:  # over the SDK's limit: let it answer 413
            await self.app(scope, replay, send)
            return
        try:
            calls = _tool_calls(json.loads(body))
        except (ValueError, RecursionError):
            calls = []  # the SDK answers a parse error
        writers = await self.write_tools() if calls else frozenset()
        refused = next((c for c in calls if isinstance(n := c["params"].get("name"), str) and n in writers), None)
        if refused is None:
            await self.app(scope, replay, send)
            return
        await self._refuse(refused, caller, scope, replay, send)

    async def _refuse(self, call: dict[str, Any], caller: Caller, scope: Scope, receive: Receive, send: Send) -> None:
        params = call["params"]
        name = str(params["name"])
        tool = next(t for t in await self._tools() if t.name == name)
        text = refusal(tool, caller) or f"{name} needs the {SCOPE_WRITE} scope."
        if self._trail is not None:
            args = params.get("arguments")
            await self._trail.refused(
                Caller(caller.identity, caller.scopes, _client_of(params)),
                name,
                args if isinstance(args, dict) else {},
                text,
            )
        challenge = [
            'error="insufficient_scope"',
            f'scope="{SCOPE_WRITE}"',
            f'error_description="{name} changes jobs and needs the {SCOPE_WRITE} scope"',
        ]
        if self._resource_metadata:
            challenge.append(f'resource_metadata="{self._resource_metadata}"')
        error = {"jsonrpc": "2.0", "id": call.get("id"), "error": {"code": INVALID_REQUEST, "message": text}}
        await Response(
            json.dumps(error, separators=(",", ":")),
            status_code=403,
            media_type="application/json",
            headers={"WWW-Authenticate": "Bearer " + ", ".join(challenge)},
        )(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None past the SDK's size limit) and a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    seen: deque[Message] = deque()
    while True:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > DEFAULT_MAX_REQUEST_BODY_SIZE or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return seen.popleft() if seen else await receive()

    complete = bool(seen) and seen[-1]["type"] == "http.request" and not seen[-1].get("more_body", False)
    return (b"".join(chunks) if complete and size <= DEFAULT_MAX_REQUEST_BODY_SIZE else None), replay


def challenge_scopes(app: Starlette, mcp: MCPServer, trail: AuditTrail | None, *, path: str = "/mcp") -> None:
    """Put :class:`ScopeChallenge` in front of the MCP endpoint ``path`` of ``app`` (when the server checks
    tokens)."""
    auth = mcp.settings.auth
    if auth is None:
        return
    metadata = str(build_resource_metadata_url(auth.resource_server_url)) if auth.resource_server_url else None
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == path:
            route.app = ScopeChallenge(route.app, mcp, resource_metadata=metadata, trail=trail)
