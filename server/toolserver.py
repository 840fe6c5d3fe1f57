"""The MCP server class: tools in toolsets, compact results and schemas.

Every tool names its toolset where it is registered (``@mcp.tool(..., toolset="observe")``; the names are
in ``toolsets.py``); a tool registered without one is refused at start, so a new tool is always placed.
``tools/list`` shows the enabled toolsets' tools only, with tight schemas (``compact.py``), built once and
kept until a toolset is enabled; calling a tool of a disabled toolset is refused with the way to enable it.
``enable_toolset`` (tools/toolsets.py) turns one on at run time and tells the client with
``notifications/tools/list_changed``. Results are dumped once, compactly (``compact.tool_result``).
Enabled toolsets belong to the server process (over HTTP every caller shares them); read-only mode and
scopes act on top of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from mcp.server import MCPServer
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, Icon, InputRequiredResult, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import BaseModel

from cloudjobs_mcp.server.compact import one_line, output_schema, tight_schema, tool_result
from cloudjobs_mcp.server.toolsets import ALWAYS, DEFAULT, TOOLSETS, parse_toolsets

_F = TypeVar("_F", bound=Callable[..., Any])


class CloudJobsServer(MCPServer[Any]):
    """An MCPServer whose tools belong to toolsets and whose results and schemas are compact."""

    def __init__(
        self, *args: Any, toolsets: Iterable[str] = DEFAULT, unlisted_args: Iterable[str] = (), **kwargs: Any
    ) -> None:
        """``unlisted_args``: arguments left out of every input schema (still accepted), e.g. ``provider``
        while only one provider is enabled: a choice with one option is nothing to read."""
        super().__init__(*args, **kwargs)
        self._unlisted_args = frozenset(unlisted_args)
        self._toolset_of: dict[str, str] = {}
        # Tools of disabled toolsets, registered with the SDK only when their toolset is enabled: building a
        # tool's argument model and schemas is most of a start's own CPU, and most sessions never need them.
        self._pending: dict[str, Callable[[], object]] = {}
        self._enabled = set(parse_toolsets(toolsets))
        self._listing: list[MCPTool] | None = None
        self._tight: dict[str, MCPTool] = {}
        # Handshake-era clients learn from the capability that tools/list can change (2026-07-28 ones
        # get listChanged from the subscriptions/listen the SDK serves).
        low = self._lowlevel_server
        low.create_initialization_options = partial(  # type: ignore[method-assign]
            low.create_initialization_options, NotificationOptions(tools_changed=True)
        )

    # -- registration ------------------------------------------------------------------------------
    def tool(  # the same decorator, with the toolset the tool belongs to
        self,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        *,
        toolset: str | None = None,
    ) -> Callable[[_F], _F]:
        if toolset != ALWAYS and toolset not in TOOLSETS:
            raise TypeError(f"tool {name or '?'}: name its toolset, one of {', '.join(TOOLSETS)} (toolset=...)")
        register = super().tool(name, title, description, annotations, icons, meta, structured_output)

        def decorator(fn: _F) -> _F:
            tool_name = name or fn.__name__
            self._toolset_of[tool_name] = toolset
            self._listing = None
            if self.is_listed(tool_name):
                return register(fn)
            self._pending[tool_name] = partial(register, fn)
            return fn

        return decorator

    # -- toolsets ----------------------------------------------------------------------------------
    @property
    def enabled_toolsets(self) -> tuple[str, ...]:
        return tuple(n for n in TOOLSETS if n in self._enabled)

    def tools_in(self, toolset: str) -> list[str]:
        return [name for name, ts in self._toolset_of.items() if ts == toolset]

    def is_listed(self, tool: str) -> bool:
        toolset = self._toolset_of.get(tool, ALWAYS)  # tools an extension adds are not ours to hide
        return toolset == ALWAYS or toolset in self._enabled

    def enable(self, toolset: str) -> list[str]:
        """Enable ``toolset`` (or ``all``); the names of the tools this adds to tools/list."""
        before = {n for n in self._toolset_of if self.is_listed(n)}
        self._enabled.update(parse_toolsets(toolset))
        self._listing = None
        self._register([n for n in self._pending if self.is_listed(n)])
        return [n for n in self._toolset_of if self.is_listed(n) and n not in before]

    def register_all(self) -> None:
        """Build every tool now, enabled or not (for checks that must know them all, e.g. scope refusals)."""
        self._register(list(self._pending))

    def _register(self, names: list[str]) -> None:
        for name in names:
            self._pending.pop(name)()

    # -- what the client sees ----------------------------------------------------------------------
    async def list_tools(self) -> list[MCPTool]:
        if self._listing is None:
            listing = []
            for tool in await super().list_tools():
                if not self.is_listed(tool.name):
                    continue
                if tool.name not in self._tight:
                    self._tight[tool.name] = tool.model_copy(
                        update={
                            "description": one_line(tool.description or ""),
                            "input_schema": tight_schema(self._listed_args(tool.input_schema)),
                            "output_schema": output_schema(tool.output_schema) if tool.output_schema else None,
                        }
                    )
                listing.append(self._tight[tool.name])
            self._listing = listing
        return self._listing

    def _listed_args(self, schema: dict[str, Any]) -> dict[str, Any]:
        props = schema.get("properties", {})
        if not self._unlisted_args & set(props):
            return schema
        shown = {name: sub for name, sub in props.items() if name not in self._unlisted_args}
        return {**schema, "properties": shown}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The SDK's call, refusing a tool of a disabled toolset, and dumping a model result once, compactly
        (the SDK would validate it again and dump it twice, once indented)."""
        if not self.is_listed(name):
            toolset = self._toolset_of[name]
            raise ToolError(
                f"{name} is in the {toolset!r} toolset, which is not enabled here: call "
                f"enable_toolset(toolset={toolset!r}) first (or start the server with CLOUDJOBS_TOOLSETS={toolset} "
                "added)."
            )
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            raise ToolError(f"Unknown tool: {name}")
        if context is None:
            context = Context(mcp_server=self, subscriptions=self._subscriptions)
        result = await tool.run(arguments, context, convert_result=False)
        if isinstance(result, CallToolResult | InputRequiredResult):
            return tool.fn_metadata.convert_result(result)
        if isinstance(result, BaseModel):
            return tool_result(result)
        return tool.fn_metadata.convert_result(result)
