"""enable_toolset: the toolsets, and turning one on while the server runs."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.models import Model
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.server.toolsets import ALL, ALWAYS, TOOLSETS, parse_toolsets
from cloudjobs_mcp.tools._common import tool_errors


class Toolset(Model):
    name: str
    enabled: bool
    about: str
    tools: list[str]


class Toolsets(Model):
    toolsets: list[Toolset]
    added: list[str] = Field(default_factory=list, description="Tools this call made available")
    note: str | None = None


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    @mcp.tool(
        title="List or enable toolsets",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        toolset=ALWAYS,
    )
    async def enable_toolset(
        ctx: Context[Any, Any],
        toolset: str | None = Field(default=None, description=f"Enable this one: {', '.join(TOOLSETS)} or {ALL}"),
    ) -> Toolsets:
        """Lists the toolsets (groups of tools) with their tools and whether each is enabled; with
        `toolset`, enables it now and the client's tool list grows (notifications/tools/list_changed).
        Use it when a task needs a tool you do not see: observe (metrics, diagnosis), team (labels,
        comparing runs, output models, spot prices), templates."""
        added: list[str] = []
        if toolset:
            with tool_errors():
                try:
                    parse_toolsets(toolset)
                except ValueError as exc:
                    raise InvalidRequest(str(exc)) from None
            added = mcp.enable(toolset)
            if added:
                await _tools_changed(ctx)
        enabled = set(mcp.enabled_toolsets)
        sets = [
            Toolset(name=name, enabled=name in enabled, about=about, tools=mcp.tools_in(name))
            for name, about in TOOLSETS.items()
        ]
        note = None
        if toolset and not added:
            note = f"{toolset} was already enabled: nothing changed."
        elif added:
            note = "Enabled. If these tools do not show yet, list the tools again."
        return Toolsets(toolsets=sets, added=added, note=note)


async def _tools_changed(ctx: Context[Any, Any]) -> None:
    """notifications/tools/list_changed: on the subscriptions/listen streams of 2026-07-28 clients, on the
    session of a handshake-era one."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await ctx.notify_tools_changed()
    else:
        await ctx.request_context.session.send_tool_list_changed()
