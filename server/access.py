"""Which tools a caller sees and may call: one MCP middleware on every transport.

A tool whose ``ToolAnnotations.read_only_hint`` is False changes something (creates, stops, deletes, labels,
saves templates, cleans up) and needs the ``jobs:write`` scope; every other tool needs ``jobs:read``, which
the HTTP layer already demanded of every request. A tool the caller may not use is left out of
``tools/list``, and calling it anyway is refused with a message naming the missing scope and how to get it
(over HTTP the refusal comes earlier, as a 403 ``insufficient_scope`` challenge: stepup.py).
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult, ListToolsResult, TextContent, Tool

from cloudjobs_mcp.server.identity import SCOPE_WRITE, Caller, current_caller


def writes(tool: Tool) -> bool:
    return tool.annotations is not None and tool.annotations.read_only_hint is False


def caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
    return current_caller(getattr(ctx.session, "client_params", None))


def refusal(tool: Tool, caller: Caller) -> str | None:
    """Why ``caller`` may not call ``tool``, or None when it may."""
    if writes(tool) and not caller.can_write:
        return (
            f"Refused: {tool.name} changes jobs and needs the {SCOPE_WRITE} scope; the token of {caller.identity!r} "
            f"has only read access. To get it: an API token with {SCOPE_WRITE} from the server's operator "
            f"(`cloudjobs-mcp token add NAME --scopes {SCOPE_WRITE}`), or an OAuth access token issued with the "
            f"{SCOPE_WRITE} scope (sign in again asking your identity provider for it)."
        )
    return None


class ToolAccess:
    """The middleware: filters ``tools/list`` and refuses ``tools/call`` by the caller's scopes."""

    def __init__(self, mcp: MCPServer) -> None:
        self._mcp = mcp

    async def tool(self, name: object) -> Tool | None:
        return next((t for t in await self._mcp.list_tools() if t.name == name), None)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/call":
            tool = await self.tool((ctx.params or {}).get("name"))
            reason = refusal(tool, caller_of(ctx)) if tool is not None else None
            if reason is not None:
                return CallToolResult(content=[TextContent(type="text", text=reason)], is_error=True)
            return await call_next(ctx)
        result = await call_next(ctx)
        if ctx.method == "tools/list":
            caller = caller_of(ctx)
            if isinstance(result, ListToolsResult):
                result = result.model_copy(update={"tools": [t for t in result.tools if refusal(t, caller) is None]})
            elif isinstance(result, dict) and isinstance(result.get("tools"), list):  # already serialized
                shown = [t for t in result["tools"] if refusal(Tool.model_validate(t), caller) is None]
                result = {**result, "tools": shown}
        return result
