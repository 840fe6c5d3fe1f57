"""The MCP server class: tools in toolsets, compact results and schemas, and a start that builds no schema.

Every tool names its toolset where it is registered (``@mcp.tool(..., toolset="observe")``; the names are
in ``toolsets.py``); a tool registered without one is refused at start, so a new tool is always placed.
``tools/list`` shows the enabled toolsets' tools only, with tight schemas (``compact.py``), built once and
kept until a toolset is enabled; calling a tool of a disabled toolset is refused with the way to enable it.
``enable_toolset`` (tools/toolsets.py) turns one on at run time and tells the client with
``notifications/tools/list_changed``. Results are dumped once, compactly (``compact.tool_result``).
Enabled toolsets belong to the server process (over HTTP every caller shares them); read-only mode and
scopes act on top of them.

A start registers no tool with the SDK. The SDK builds a tool's argument model and JSON schemas when it is
registered (``Tool.from_function``): for our 17 default tools that was ~55 ms, the largest part of a start's
own CPU. Their listed schemas are read instead from ``tool_schemas.json``, a snapshot of what that build
gives, written by ``scripts/tool_schemas.py`` and checked against a fresh build by tests/test_tool_schemas.py;
a tool is built with the SDK on its first call. A tool whose parameters changed since the snapshot (its
fingerprint differs), or that the snapshot lacks, is built and listed the SDK's way, so a stale snapshot
costs time, never a wrong schema of a tool's arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mcp.server import MCPServer
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, Icon, InputRequiredResult, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cloudjobs_mcp.server.compact import one_line, output_schema, tight_schema, tool_result
from cloudjobs_mcp.server.toolsets import ALWAYS, DEFAULT, TOOLSETS, parse_toolsets

_F = TypeVar("_F", bound=Callable[..., Any])
SNAPSHOT = Path(__file__).with_name("tool_schemas.json")
_snapshot: dict[str, dict[str, Any]] | None = None


def read_snapshot() -> dict[str, dict[str, Any]]:
    """The committed schemas, by tool name, as the file holds them now (empty when it is missing or broken)."""
    try:
        tools: dict[str, dict[str, Any]] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["tools"]
    except (OSError, ValueError, KeyError):
        return {}
    return tools


def snapshot() -> dict[str, dict[str, Any]]:
    """:func:`read_snapshot`, read once a process."""
    global _snapshot
    if _snapshot is None:
        _snapshot = read_snapshot()
    return _snapshot


def fingerprint(fn: Callable[..., Any]) -> str:
    """What a tool's input schema is made of that can change without its models changing: parameter names,
    annotations and defaults (their ``Field`` descriptions included). A model's own change is caught by
    tests/test_tool_schemas.py, not here."""
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    defaults = [*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).items()]
    parts = (names, fn.__annotations__, [_plain(d) for d in defaults])
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def _plain(default: object) -> object:
    # A Field's own repr costs ~0.3 ms (pydantic's repr machinery); what it says of the schema is these.
    if isinstance(default, FieldInfo):
        f = default
        return (f.default, f.default_factory, f.description, f.metadata, f.alias, f.examples, f.json_schema_extra)
    if isinstance(default, tuple) and len(default) == 2 and isinstance(default[1], FieldInfo):
        return (default[0], _plain(default[1]))
    return default


@dataclass(frozen=True)
class Registered:
    """A tool as registered with ``@mcp.tool``: what the SDK needs to build it, and where it belongs."""

    fn: Callable[..., Any]
    name: str
    toolset: str
    title: str | None = None
    description: str | None = None
    annotations: ToolAnnotations | None = None
    icons: list[Icon] | None = None
    meta: dict[str, Any] | None = None
    structured_output: bool | None = None


class CloudJobsServer(MCPServer[Any]):
    """An MCPServer whose tools belong to toolsets, whose results and schemas are compact, and whose tools
    are built on first use."""

    def __init__(
        self, *args: Any, toolsets: Iterable[str] = DEFAULT, unlisted_args: Iterable[str] = (), **kwargs: Any
    ) -> None:
        """``unlisted_args``: arguments left out of every input schema (still accepted), e.g. ``provider``
        while only one provider is enabled: a choice with one option is nothing to read."""
        super().__init__(*args, **kwargs)
        self._unlisted_args = frozenset(unlisted_args)
        self._registered: dict[str, Registered] = {}
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
    def tool(  # the same decorator, with the toolset the tool belongs to; the SDK builds it on first use
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
        if toolset is None or (toolset != ALWAYS and toolset not in TOOLSETS):
            raise TypeError(f"tool {name or '?'}: name its toolset, one of {', '.join(TOOLSETS)} (toolset=...)")
        placed: str = toolset
        if callable(name):
            raise TypeError("use @mcp.tool(toolset=...), with parentheses")

        def decorator(fn: _F) -> _F:
            tool_name = name or fn.__name__
            if tool_name in self._registered:
                raise ValueError(f"tool {tool_name} is registered twice")
            self._registered[tool_name] = Registered(
                fn, tool_name, placed, title, description, annotations, icons, meta, structured_output
            )
            self._listing = None
            return fn

        return decorator

    def built(self, name: str) -> Tool | None:
        """The SDK's tool ``name``, built now if it was not yet (argument model, schemas); None if unknown."""
        tool = self._tool_manager.get_tool(name)
        reg = self._registered.get(name)
        if tool is None and reg is not None:
            self.add_tool(
                reg.fn, reg.name, reg.title, reg.description, reg.annotations, reg.icons, reg.meta,
                reg.structured_output,
            )  # fmt: skip
            tool = self._tool_manager.get_tool(name)
        return tool

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        # The SDK reads a tool's input schema before the call (Mcp-Param headers over HTTP): build it first.
        tool = self.built(name)
        return None if tool is None else tool.parameters

    # -- toolsets ----------------------------------------------------------------------------------
    @property
    def enabled_toolsets(self) -> tuple[str, ...]:
        return tuple(n for n in TOOLSETS if n in self._enabled)

    def tools_in(self, toolset: str) -> list[str]:
        return [name for name, reg in self._registered.items() if reg.toolset == toolset]

    def is_listed(self, tool: str) -> bool:
        reg = self._registered.get(tool)
        return reg is None or reg.toolset == ALWAYS or reg.toolset in self._enabled  # an extension's: not ours

    def enable(self, toolset: str) -> list[str]:
        """Enable ``toolset`` (or ``all``); the names of the tools this adds to tools/list."""
        before = {n for n in self._registered if self.is_listed(n)}
        self._enabled.update(parse_toolsets(toolset))
        self._listing = None
        return [n for n in self._registered if self.is_listed(n) and n not in before]

    # -- what the client sees ----------------------------------------------------------------------
    async def list_tools(self) -> list[MCPTool]:
        if self._listing is None:
            ours = [self.listed(name) for name in self._registered if self.is_listed(name)]
            others = [t for t in await super().list_tools() if t.name not in self._registered]
            self._listing = ours + others
        return self._listing

    def all_tools(self) -> list[MCPTool]:
        """Every tool of ours as tools/list would show it, its toolset enabled or not (e.g. for the HTTP scope
        challenge, which must know every write tool)."""
        return [self.listed(name) for name in self._registered]

    def listed(self, name: str) -> MCPTool:
        """Tool ``name`` as tools/list shows it: from the snapshot when it is current, else built."""
        if name not in self._tight:
            reg = self._registered[name]
            known = snapshot().get(name)
            if known is not None and known.get("fingerprint") == fingerprint(reg.fn):
                input_schema, out_schema = known["input_schema"], known.get("output_schema")
            else:
                input_schema, out_schema = self.schemas(name)
            self._tight[name] = MCPTool(
                name=name,
                title=reg.title,
                description=one_line(reg.description or reg.fn.__doc__ or ""),
                input_schema=self._listed_args(input_schema),
                output_schema=out_schema,
                annotations=reg.annotations,
                icons=reg.icons,
                _meta=reg.meta,
            )
        return self._tight[name]

    def schemas(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Tool ``name``'s tight input schema (every argument) and compact output schema, built by the SDK."""
        tool = self.built(name)
        assert tool is not None, name
        out = tool.output_schema
        return tight_schema(tool.parameters), output_schema(out) if out else None

    def fresh_snapshot(self) -> dict[str, dict[str, Any]]:
        """What ``tool_schemas.json`` should hold for every tool registered here, built now by the SDK
        (scripts/tool_schemas.py)."""
        entries = {}
        for name in sorted(self._registered):
            input_schema, out_schema = self.schemas(name)
            entry = {"fingerprint": fingerprint(self._registered[name].fn), "input_schema": input_schema}
            if out_schema is not None:
                entry["output_schema"] = out_schema
            entries[name] = entry
        return entries

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
            toolset = self._registered[name].toolset
            raise ToolError(
                f"{name} is in the {toolset!r} toolset, which is not enabled here: call "
                f"enable_toolset(toolset={toolset!r}) first (or start the server with CLOUDJOBS_TOOLSETS={toolset} "
                "added)."
            )
        tool = self.built(name)
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
